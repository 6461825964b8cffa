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
import shapely
from distributed import Variable

from omw_sites.config import ASSEMBLY_GAP_M
from omw_sites.criteria.measure import (
    Coverage,
    RoadNetwork,
    measure,
    no_road_network,
    road_network,
)
from omw_sites.etl import load_raw
from omw_sites.etl.ingest import RawData
from omw_sites.etl.nominations import Nominations
from omw_sites.etl.raw_folder import RawFile
from omw_sites.etl.window import FAR_LAYERS, WHOLE_LAYERS, Bounds, Window
from omw_sites.layers import (
    NETWORKS,
    RAW_LAYERS,
    REFERENCE_COLUMNS,
    REFERENCE_LAYERS,
    SITE_NO_DATA,
    WORK_CRS,
)
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
    {
        "roads", "junctions", "stations", "airports", "population", *WHOLE_LAYERS,
        *REFERENCE_LAYERS,
        "power_lines",  # with the utilities and roads: which nearest features exist at all
    }
)  # fmt: skip
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
    # nearest-feature distance columns the folder has a feature for, anywhere
    nearest: frozenset[str] = frozenset()


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
    nearest = _nearest_present(raw)
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
        nearest,
    )


def _nearest_present(raw: RawData) -> frozenset[str]:
    """The nearest-feature distance columns that whole layers of ``raw`` have a feature
    for (what measuring no site says is measured)."""
    # the columns assemble_sites gives a site
    schema = ["site_id", "parcel_ids", "kw_numbers", "n_parcels", "teryt", "area_ha"]
    schema += ["registered_area_ha", "ownership"]
    none = gpd.GeoDataFrame({c: [] for c in schema}, geometry=[], crs=WORK_CRS)
    _, coverage = measure(none, raw, no_road_network(""))
    return frozenset(c for c in _nearest_columns() if c not in coverage.not_measured)


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
    # per column: sites whose nearest feature was looked for in a wider window
    widened: dict[str, int] = field(default_factory=dict)
    assembled: list[str] = field(default_factory=list)  # the site columns before measuring


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
    pending = _unvouched(measured, coverage, win.far)
    widened, left = _widened(measured, sites, pending, halo_m, raw_dir, plan)
    beyond = _beyond_window(measured, left)
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
        widened,
        list(sites.columns),
    )


def nearest_elsewhere(
    results: list[PartitionResult], present: frozenset[str]
) -> dict[str, list[str]]:
    """By partition: the nearest-feature distance columns it found nothing of in its
    window while the folder has such a feature (``present``: see
    :func:`network_task`): its sites' nearest feature lies farther than
    ``--halo-km``, and :func:`complete_task` looks for it."""
    out = {}
    for r in results:
        if not len(r.sites):
            continue
        cols = [c for c in r.coverage.not_measured if c in present]
        if cols:
            out[r.key] = cols
    return out


def complete_task(
    result: PartitionResult, columns: list[str], raw_dir: str | Path, plan: Plan, halo_m: float
) -> PartitionResult:
    """``result`` with the distance ``columns`` (see :func:`nearest_elsewhere`) measured
    for all its sites in wider windows (:func:`_widened`): then measured here too."""
    sites = result.sites.copy()
    pending = {c: np.ones(len(sites), dtype=bool) for c in columns}
    counts, left = _widened(sites, sites[result.assembled], pending, halo_m, raw_dir, plan)
    beyond = {**result.beyond_halo, **_beyond_window(sites, left)}
    nearest = _nearest_columns()
    done = {x for c in columns for x in (c, *nearest[c])}
    for col in columns:  # none of it within the window: none on the site either
        flag = col.removeprefix("dist_").removesuffix("_m") + "_on_site"
        if flag in sites:
            on_site = sites[col].to_numpy(dtype=float) == 0.0
            sites[flag] = pd.array(on_site, dtype="boolean")
            done.add(flag)
    coverage = replace(
        result.coverage,
        not_measured={c: w for c, w in result.coverage.not_measured.items() if c not in done},
    )
    widened = {**result.widened, **counts}
    return replace(result, sites=sites, coverage=coverage, widened=widened, beyond_halo=beyond)


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
    try:
        if len(sites) and inv.has_sites():  # only stored sites that can meet these matter
            box = tuple(float(v) for v in sites.total_bounds)
            previous = inv.read_sites(columns=["site_id"], bbox=box)
        sites["derived_from"] = lineage(sites, previous)
        staged = for_staging(sites.drop(columns=[SITE_NO_DATA]))
        inv.backend.stage_sites(schema, result.key, staged)
    finally:
        inv.backend.close()
    keep = ["site_id", "content_hash", *(c for c in OFFER_FIELDS if c in staged.columns)]
    return pd.DataFrame(staged[keep])


def measured_elsewhere(sites: pd.DataFrame, columns: list[str]) -> None:
    """Mark, in one partition's ``sites``, the ``columns`` it found nothing of in its
    window while other partitions measured them: a flag (``*_on_site``) is False — no
    line of it near — and a distance's nearest feature lies beyond the window, said in
    the sites' own no-data reasons (the distance stays empty)."""
    for col in columns:
        if col.endswith("_on_site"):  # no line of it within the window: none on the site
            sites[col] = pd.array([False] * len(sites), dtype="boolean")
        elif col.startswith("dist_") and SITE_NO_DATA in sites:
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


#: how far a partition looks, at most, for a site's nearest feature (beyond all of Poland)
MAX_FAR_M = 1_500_000.0


def _unvouched(sites: pd.DataFrame, coverage: Coverage, win: Bounds) -> dict[str, np.ndarray]:
    """Per nearest-feature column measured in the window ``win``: the sites whose
    distance the window cannot vouch for (larger than the site's margin to its edge)."""
    if not len(sites):
        return {}
    b = shapely.bounds(sites.geometry.to_numpy())
    x0, y0, x1, y1 = win
    margin = np.minimum.reduce([b[:, 0] - x0, b[:, 1] - y0, x1 - b[:, 2], y1 - b[:, 3]])
    out = {}
    for col in _nearest_columns():
        if col in sites and col not in coverage.not_measured:
            bad = sites[col].to_numpy(dtype=float) > margin
            if bad.any():
                out[col] = bad
    return out


def _widened(
    measured: gpd.GeoDataFrame,
    assembled: gpd.GeoDataFrame,
    pending: dict[str, np.ndarray],
    halo_m: float,
    raw_dir: str | Path,
    plan: Plan,
) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Nearest-feature distances a partition's window cannot give (``pending``: per
    column, the sites), looked for again in windows around just those sites, from twice
    ``halo_m`` and twice as wide each time, until each is within its site's margin to
    the window's edge (then exact) or :data:`MAX_FAR_M`: the distances one process gets
    from the whole layer. Only the layers of such distances are read
    (``window.FAR_LAYERS``). Written into ``measured`` (with the columns of the same
    feature); returns the sites looked for again, per column, and those still pending
    (none, unless nothing of a layer lies within :data:`MAX_FAR_M`)."""
    counts = {col: int(m.sum()) for col, m in pending.items()}
    same = _nearest_columns()
    halo = halo_m
    while pending and halo < MAX_FAR_M:
        halo *= 2
        rows = np.flatnonzero(np.logical_or.reduce(list(pending.values())))
        sub = assembled.iloc[rows].reset_index(drop=True)
        x0, y0, x1, y1 = (float(v) for v in sub.total_bounds)
        box = (x0 - halo, y0 - halo, x1 + halo, y1 + halo)
        wide = Window(box, box)
        raw = load_raw(
            raw_dir,
            within=wide,
            keys=FAR_LAYERS,
            skip=files_outside(plan, wide),
            files=plan.files,
            vector_layers=plan.vector_layers,
        )
        again, cov = measure(sub, raw, no_road_network("not needed here"))
        still = _unvouched(again, cov, box)
        for col, mask in pending.items():
            if col in cov.not_measured:
                continue  # nothing of it in this window either: wider still
            value = again[col].to_numpy(dtype=float)
            done = mask[rows] & np.isfinite(value) & ~still.get(col, np.zeros(len(sub), bool))
            at = rows[done]
            for c in (col, *same[col]):
                if c in measured and c in again:
                    measured.loc[measured.index[at], c] = again[c].to_numpy()[done]
            mask[at] = False
        pending = {c: m for c, m in pending.items() if m.any()}
    return counts, pending


def _beyond_window(sites: gpd.GeoDataFrame, pending: dict[str, np.ndarray]) -> dict[str, int]:
    """Nearest-feature distances still not vouched for (``pending``: per column, the
    sites), left empty with the columns of the same feature, said in the sites' no-data
    reasons, and counted."""
    counts: dict[str, int] = {}
    for col, bad in pending.items():
        counts[col] = int(bad.sum())
        sites.loc[bad, col] = np.nan
        for c in _nearest_columns()[col]:
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
