"""ETL: read raw source layers into validated canonical layers in EPSG:2180."""

from omw_sites.etl.errors import IngestError
from omw_sites.etl.ingest import RawData, load_raw

__all__ = ["IngestError", "RawData", "load_raw"]
