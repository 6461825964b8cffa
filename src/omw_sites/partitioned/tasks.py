"""The work a Dask worker does in a partitioned run: the whole road network once, then
one powiat at a time.

Both are plain functions of picklable values, so that any Dask worker — a process on
this machine or on another one that sees the raw folder at the same path — can run
them.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from distributed import Variable

from omw_sites.config import ASSEMBLY_GAP_M
from omw_sites.criteria.measure import Coverage, RoadNetwork, measure, road_network
from omw_sites.etl import load_raw
from omw_sites.etl.nominations import Nominations
from omw_sites.etl.raw_folder import RawFile
from omw_sites.etl.window import WHOLE_LAYERS, Bounds, Window
from omw_sites.layers import NETWORKS, RAW_LAYERS, REFERENCE_COLUMNS, REFERENCE_LAYERS, SITE_NO_DATA
from omw_sites.partitioned.plan import Partition, Plan, files_outside
from omw_sites.pipeline import with_offers
from omw_sites.sites import assemble_sites, lineage, select_candidates
from omw_sites.store import open_backend, open_inventory
from omw_sites.store.base import StagedLayer
from omw_sites.store.edits import OFFER_FIELDS
from omw_sites.store.update import for_staging

# what the road-network task reads, whole: the network, its destinations, the census grid
# and the layers the store publishes beside the sites
NETWORK_KEYS = frozenset(
    {"roads", "junctions", "stations", "airports", "population", *WHOLE_LAYERS, *REFERENCE_LAYERS}
)
# what a partition reads (within its window, but for WHOLE_LAYERS): all but the census
# grid, whose people the network task has put on the road graph
PARTITION_KEYS = frozenset(
    {*(r.key for r in RAW_LAYERS if r.key != "population"), "bdot_complexes", "bdot_points"}
)
# how far around its powiat a partition reads parcels and the layers measured by overlap:
# sites assembled across its edge reach into it (a site coming close to its edge makes
# the partition read again with twice the margin)
ASSEMBLY_HALO_M = 1_000.0
MAX_HALO_M = 200_000.0  # a site spanning more than this is not a site


def _reset_peak() -> None:
    """Start this process's peak memory afresh (Linux: ``/proc/self/clear_refs``), so
    that a task's peak is its own, not the worker's earlier tasks'."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak is the process's since it started


def _peak_mb() -> float:
    """This process's peak resident memory (MB) since :func:`_reset_peak`."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class NetworkResult:
    """The network task's answer: the shared network and what the store publishes."""

    network: RoadNetwork | None  # None once summarised for the coordinator
    # what the store publishes beside the sites: frames, or tables staged in its database
    reference: dict[str, gpd.GeoDataFrame] | dict[str, StagedLayer]
    data_dates: dict[str, str]
    absent: dict[str, str]
    stats: dict[str, dict[str, int]]
    notes: list[str]
    files: list[dict]
    seconds: float
    peak_mb: float  # the worker's, while the task ran
    pid: int  # the worker process that ran it
    road_nodes: int = 0  # of the whole road graph


class SharedNetwork:
    """The road network of a partitioned run, built once and held by one worker (a
    Dask actor): each partition asks it for the part its sites use
    (:meth:`RoadNetwork.reach`), so that no other process holds the whole graph."""

    def __init__(
        self,
        raw_dir: str | Path,
        files: list[RawFile] | None = None,
        stage: tuple[str, str] | None = None,
    ):
        self._result = network_task(raw_dir, files)
        if stage is not None:
            # (store URL, schema): the reference layers (the whole utility network
            # among them) go from here into the PostGIS store's database, staged for
            # the store's transaction; neither this worker nor the coordinator keeps them
            store, schema = stage
            staged = open_backend(store).stage(schema, self._result.reference)
            self._result.reference = staged

    def summary(self) -> NetworkResult:
        """What the run records of the network task, without the network."""
        return replace(self._result, network=None)

    def reach(self, bounds: Bounds) -> RoadNetwork:
        net = self._result.network
        assert net is not None
        return net.reach(bounds)


def network_task(raw_dir: str | Path, files: list[RawFile] | None = None) -> NetworkResult:
    """Read the layers that must be whole, build the road network and its per-node
    minutes once, for every partition."""
    _reset_peak()
    t0 = time.perf_counter()
    raw = load_raw(raw_dir, keys=NETWORK_KEYS, files=files)
    network = road_network(raw)
    reference = {
        k: raw.layers[k][[*REFERENCE_COLUMNS[k], "geometry"]]
        for k in REFERENCE_LAYERS
        if k in raw.layers
    }
    keep = NETWORK_KEYS | {"roads_main"}
    return NetworkResult(
        network,
        reference,
        {k: v for k, v in raw.data_dates.items() if k in keep},
        {k: v for k, v in raw.absent.items() if k in keep},
        raw.stats,
        raw.notes,
        raw.files,
        round(time.perf_counter() - t0, 3),
        _peak_mb(),
        os.getpid(),
        network.graph.n_nodes if network.graph is not None else 0,
    )


@dataclass
class PartitionResult:
    """One powiat's measured sites and what its reads said."""

    key: str
    sites: gpd.GeoDataFrame
    coverage: Coverage
    parcels: int  # its own parcels, after the ingest's checks
    candidates: int  # its own candidate parcels
    halo_m: float  # the margin its sites' assembly needed
    notes: list[str]
    absent: dict[str, str]
    data_dates: dict[str, str]
    stats: dict[str, dict[str, int]]
    quarantine: pd.DataFrame
    files: list[dict]
    seconds: float
    peak_mb: float  # the worker's, while the task ran
    pid: int  # the worker process that ran it
    # per column: sites whose nearest feature may lie beyond the window (left empty)
    beyond_halo: dict[str, int] = field(default_factory=dict)
    road_nodes: int = 0  # of the part of the road network it received


def partition_task(
    raw_dir: str | Path,
    part: Partition,
    plan: Plan,
    network: str | RoadNetwork,
    halo_m: float,
    nominated: dict[str, str] | None = None,
) -> PartitionResult:
    """Measure the sites of one powiat.

    The powiat's window is read: its parcels' extent plus :data:`ASSEMBLY_HALO_M`, and
    ``halo_m`` for the layers of nearest-feature distances (``window.FAR_LAYERS``).
    ``network`` names the Dask variable holding the :class:`SharedNetwork` actor (or is
    the network itself, to run the task in this process).
    Sites are assembled from every candidate parcel in it, and the powiat keeps the sites whose
    first parcel ID (in ID order) is its own — each site in exactly one partition,
    neighbours' parcels included. A kept site that comes within the assembly gap of the
    window's edge might go on beyond it: the window is then doubled and read again.
    """
    _reset_peak()
    t0 = time.perf_counter()
    halo = ASSEMBLY_HALO_M
    while True:
        near = part.window(halo)
        win = Window(near, part.window(max(halo, halo_m)))
        skip = files_outside(plan, win)
        raw = load_raw(
            raw_dir,
            within=win,
            keys=PARTITION_KEYS,
            skip=skip,
            files=plan.files,
            vector_layers=plan.vector_layers,
        )
        parcels = raw["parcels"]
        own_parcels = parcels["parcel_id"].astype(str).str[:4].to_numpy() == part.key
        cand = select_candidates(
            parcels, raw.get("zoning"), raw.get("plan_zones"), nominated=nominated or {}
        )
        sites = assemble_sites(cand)
        sites = sites[sites["parcel_ids"].str[:4].to_numpy() == part.key].reset_index(drop=True)
        if _inside(sites, near, ASSEMBLY_GAP_M + 1.0) or halo >= MAX_HALO_M:
            break
        halo *= 2
    own_cand = int((cand["parcel_id"].astype(str).str[:4].to_numpy() == part.key).sum())
    # the part of the road network these sites use, from the worker holding it (its
    # actor is under the Dask variable named ``network``; it may still be building,
    # while this task read its window)
    box = _extent(sites, near)
    if isinstance(network, RoadNetwork):  # in this process
        reach = network.reach(box)
    else:
        reach = Variable(network).get().result().reach(box).result()
    measured, coverage = measure(sites, raw, reach)
    beyond = _beyond_window(measured, coverage, win.far)
    return PartitionResult(
        part.key,
        measured,
        coverage,
        int(own_parcels.sum()),
        own_cand,
        halo,
        raw.notes,
        dict(raw.absent),
        dict(raw.data_dates),
        raw.stats,
        raw.quarantine,
        raw.files,
        round(time.perf_counter() - t0, 3),
        _peak_mb(),
        os.getpid(),
        beyond,
        reach.graph.n_nodes if reach.graph is not None else 0,
    )


def outline(result: PartitionResult, columns: Collection[str]) -> PartitionResult:
    """``result`` as the coordinator receives it when the sites are staged: its sites
    without shapes, with only ``columns`` (what scoring and the run's summary read); the
    whole result stays on the worker for :func:`stage_task`."""
    keep = [c for c in result.sites.columns if c in columns]
    return replace(result, sites=pd.DataFrame(result.sites[keep]).copy())


def stage_task(
    result: PartitionResult,
    elsewhere: list[str],
    nominations: Nominations | None,
    store: str,
    schema: str,
) -> pd.DataFrame:
    """Write one partition's measured sites into the schema ``schema`` beside the
    PostGIS ``store`` (:meth:`~omw_sites.store.postgis.PostGISBackend.stage_sites`), as
    the one-process run would hand them to the store: with the columns measured only by
    other partitions marked (:func:`measured_elsewhere`), the nomination list's offers,
    their lineage from the store's current sites around them, and their content hashes.
    Returns what the coordinator needs of them: IDs, content hashes and offers."""
    sites = result.sites.copy()
    measured_elsewhere(sites, elsewhere)
    sites = with_offers(sites, nominations)
    previous = None
    inv = open_inventory(store)
    if len(sites) and inv.has_sites():  # only stored sites that can meet these matter
        box = tuple(float(v) for v in sites.total_bounds)
        previous = inv.read_sites(columns=["site_id"], bbox=box)
    sites["derived_from"] = lineage(sites, previous)
    staged = for_staging(sites.drop(columns=[SITE_NO_DATA]))
    open_backend(store).stage_sites(schema, result.key, staged)
    keep = ["site_id", "content_hash", *(c for c in OFFER_FIELDS if c in staged.columns)]
    return pd.DataFrame(staged[keep])


def measured_elsewhere(sites: pd.DataFrame, columns: list[str]) -> None:
    """Mark, in one partition's ``sites``, the ``columns`` it found nothing of in its
    window while other partitions measured them: a flag (``*_on_site``) is False — no
    line of it near — and a distance's nearest feature lies beyond the window, said in
    the sites' own no-data reasons (the distance stays empty)."""
    for col in columns:
        flag = col.removeprefix("dist_").removesuffix("_m") + "_on_site"
        if flag in sites and flag in columns:
            sites[flag] = pd.array([False] * len(sites), dtype="boolean")
        if col.startswith("dist_") and SITE_NO_DATA in sites:
            add_gap(sites, np.ones(len(sites), dtype=bool), f"{col}: {BEYOND_WINDOW}")


def _extent(sites: gpd.GeoDataFrame, win: Bounds) -> Bounds:
    """The sites' bounds (a point of the window when there are none)."""
    if not len(sites):
        x, y = win[0], win[1]
        return (x, y, x, y)
    x0, y0, x1, y1 = sites.total_bounds
    return (float(x0), float(y0), float(x1), float(y1))


def _inside(sites: gpd.GeoDataFrame, win: Bounds, margin: float) -> bool:
    """Whether every site lies at least ``margin`` inside the window."""
    if not len(sites):
        return True
    b = sites.geometry.bounds.to_numpy()
    x0, y0, x1, y1 = win
    return bool(
        (b[:, 0] >= x0 + margin).all()
        and (b[:, 1] >= y0 + margin).all()
        and (b[:, 2] <= x1 - margin).all()
        and (b[:, 3] <= y1 - margin).all()
    )


def _nearest_columns() -> dict[str, tuple[str, ...]]:
    """Distance columns a partition measures from layers read within its window, with
    the columns that come from the same nearest feature."""
    cols: dict[str, tuple[str, ...]] = {}
    for name in NETWORKS.values():
        extra: tuple[str, ...] = ()
        if name in ("water", "sewer", "gas", "heat"):
            extra = (f"{name}_diameter_mm",)
        extra += ("power_voltage",) if name == "power" else ()
        cols[f"dist_{name}_m"] = extra
        cols[f"dist_{name}_planned_m"] = ()
    cols["dist_hv_line_m"] = ()
    cols["dist_national_road_m"] = ("national_road",)
    cols["dist_voivodeship_road_m"] = ("voivodeship_road",)
    return cols


def _beyond_window(sites: gpd.GeoDataFrame, coverage: Coverage, win: Bounds) -> dict[str, int]:
    """Nearest-feature distances the window cannot vouch for, left empty and counted.

    A distance found within the site's own margin to the window's edge is exact (any
    nearer feature would meet the window); a larger one, or none found in a window
    while the folder has the layer, might be beaten by a feature outside it.
    """
    if not len(sites):
        return {}
    b = sites.geometry.bounds.to_numpy()
    x0, y0, x1, y1 = win
    margin = np.minimum.reduce([b[:, 0] - x0, b[:, 1] - y0, x1 - b[:, 2], y1 - b[:, 3]])
    counts: dict[str, int] = {}
    for col, same in _nearest_columns().items():
        # a column with nothing of its layer in the window: the run's merge decides
        if col not in sites or col in coverage.not_measured:
            continue
        bad = sites[col].to_numpy(dtype=float) > margin
        if not bad.any():
            continue
        counts[col] = int(bad.sum())
        sites.loc[bad, col] = np.nan
        for c in same:
            if c in sites:
                sites.loc[bad, c] = "" if sites[c].dtype == object else np.nan
        add_gap(sites, bad, f"{col}: {BEYOND_WINDOW}")
    return counts


BEYOND_WINDOW = "nearest feature may lie beyond the partition's window (widen --halo-km)"


def add_gap(sites: gpd.GeoDataFrame, mask: np.ndarray, text: str) -> None:
    """Add ``text`` to the per-site reasons (:data:`SITE_NO_DATA`) of the sites of
    ``mask``."""
    gaps = sites[SITE_NO_DATA].to_numpy(dtype=object).copy()
    gaps[mask] = np.where(gaps[mask] == "", text, gaps[mask] + "; " + text)
    sites[SITE_NO_DATA] = gaps
