"""The pipeline on a Dask cluster, partitioned by powiat (``omw-sites run --scheduler``)."""

from omw_sites.partitioned.cluster import ClusterOptions, run_partitioned

__all__ = ["ClusterOptions", "run_partitioned"]
