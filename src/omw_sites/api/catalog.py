"""In-memory copy of the store for the API: CRS84 features pre-serialised once, STRtree, orders."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import anyio.to_thread
import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyproj
import shapely

from omw_sites.layers import (
    REFERENCE_LAYERS,
    SITE_COLUMNS,
    SITES,
    WEB_CRS,
    WORK_CRS,
    rank_col,
)
from omw_sites.store import open_backend, read_layer, read_run_info, read_sites

log = logging.getLogger(__name__)

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326_URI = "http://www.opengis.net/def/crs/EPSG/0/4326"
STORAGE_CRS_URI = "http://www.opengis.net/def/crs/EPSG/0/2180"
EPSG4258_URI = "http://www.opengis.net/def/crs/EPSG/0/4258"
EPSG2178_URI = "http://www.opengis.net/def/crs/EPSG/0/2178"
PL2000_ZONES = {5: 2176, 6: 2177, 7: 2178, 8: 2179}  # PL-2000 zone -> EPSG code
COORD_DECIMALS = 7  # CRS84 degrees: ~1 cm at Warsaw's latitude
STORAGE_DECIMALS = 2  # EPSG:2180 metres: 1 cm


@dataclass(frozen=True)
class OutputCrs:
    """A CRS the API answers in: its pyproj code, authority axis order and rounding."""

    uri: str
    code: str  # what pyproj.CRS understands
    swap: bool  # authority axis order is (y, x): (latitude, longitude) or (northing, easting)
    geographic: bool  # degrees (x = longitude) rather than projected metres
    decimals: int


# CRS84 first: the default; EPSG:4326 (WGS 84) and EPSG:4258 (ETRS89) in (latitude,
# longitude) as the EPSG definitions say; the storage CRS and the four PL-2000 zones (5-8,
# zone 7 is Warsaw's) in their EPSG axis order (northing, easting).
OUTPUT_CRS: dict[str, OutputCrs] = {
    c.uri: c
    for c in (
        OutputCrs(CRS84_URI, "OGC:CRS84", False, True, COORD_DECIMALS),
        OutputCrs(EPSG4326_URI, "EPSG:4326", True, True, COORD_DECIMALS),
        OutputCrs(EPSG4258_URI, "EPSG:4258", True, True, COORD_DECIMALS),
        OutputCrs(STORAGE_CRS_URI, WORK_CRS, True, False, STORAGE_DECIMALS),
        *(
            OutputCrs(f"http://www.opengis.net/def/crs/EPSG/0/{code}", f"EPSG:{code}", True,
                      False, STORAGE_DECIMALS)
            for code in PL2000_ZONES.values()
        ),
    )
}  # fmt: skip


@functools.cache
def storage_transformer(uri: str) -> pyproj.Transformer:
    """EPSG:2180 (easting, northing) → ``uri`` in (x, y) = (lon, lat) or (E, N); built once.

    pyproj Transformers are thread-safe (pyproj ≥ 3.1), so one per CRS serves every thread.
    """
    return pyproj.Transformer.from_crs(WORK_CRS, OUTPUT_CRS[uri].code, always_xy=True)


def to_crs_xy(geoms: np.ndarray, uri: str) -> np.ndarray:
    """Storage geometries in ``uri``'s (x, y) order, all coordinates in one pyproj call."""
    transformer = storage_transformer(uri)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack((x, y))

    return shapely.transform(geoms, project)


Box = tuple[float, float, float, float]
RANK_PREFIX = "rank_"

REFERENCE_TITLES: dict[str, tuple[str, str]] = {
    "gminy": ("Gminy", "municipality (gmina) boundaries with TERYT codes"),
    "junctions": ("Motorway junctions", "motorway and expressway junctions"),
    "stations": ("Rail stations", "passenger stations and freight terminals/sidings"),
    "airports": ("Airports", "airports with IATA codes"),
    "rail": ("Railway lines", "railway lines (BDOT10k)"),
    "utilities": ("Utility networks", "GESUT water, sewer, power, gas, heat, telecom lines"),
    "substations": ("Substations", "power substations with free capacity in MW"),
    "flood": ("Flood hazard", "ISOK Q1% flood hazard areas"),
    "natura2000": ("Natura 2000", "Natura 2000 protected areas"),
    "roads_main": ("Main roads", "main road network (BDOT10k)"),
}


@dataclass(frozen=True)
class Profile:
    """A scoring profile whose rank column is in the site table."""

    name: str
    title: str


@dataclass(frozen=True)
class CrsView:
    """The features of a layer in one output CRS: serialised features and a tree to filter on."""

    features: list[bytes]  # one complete GeoJSON Feature per row, in storage order
    tree: shapely.STRtree  # over the geometries in this CRS, (x, y) = (lon, lat) or (E, N)
    bounds: np.ndarray  # (n, 4) envelopes of those geometries (NaN when missing)

    @classmethod
    def build(cls, features: list[bytes], geoms: np.ndarray) -> CrsView:
        return cls(features, shapely.STRtree(geoms), shapely.bounds(geoms))

    def intersecting(self, box: Box) -> np.ndarray:
        """Rows whose geometry intersects ``box``, ascending.

        Envelopes inside the box need no exact test; only those across its edge get one.
        """
        region = shapely.box(*box)
        candidates = self.tree.query(region)  # envelope hits
        env = self.bounds[candidates]
        minx, miny, maxx, maxy = box
        inside = (env[:, 0] >= minx) & (env[:, 1] >= miny) & (env[:, 2] <= maxx)
        inside &= env[:, 3] <= maxy
        edge = candidates[~inside]
        shapely.prepare(region)
        edge = edge[shapely.intersects(region, self.tree.geometries[edge])]
        return np.sort(np.concatenate((candidates[inside], edge)))


@dataclass(frozen=True)
class Layer:
    """One collection held in memory, ready to answer item pages by joining byte fragments."""

    name: str
    title: str
    description: str
    columns: tuple[str, ...]
    geometry_types: tuple[str, ...]
    bbox: tuple[float, float, float, float] | None  # CRS84
    index: dict[str, int]  # feature id (as text) -> row
    heads: list[bytes]  # per row: '{"type":"Feature","id":…,"geometry":'
    tails: list[bytes]  # per row: ',"properties":{…}}'
    storage_geometries: np.ndarray  # EPSG:2180 (easting, northing), for views built on demand
    views: dict[str, CrsView]  # CRS URI -> view; CRS84 built at load, others on first use
    orders: dict[str, np.ndarray] = field(default_factory=dict)  # profile -> rows, best first
    positions: dict[str, np.ndarray] = field(default_factory=dict)  # profile -> place in order
    table: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)  # lazy extras
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.heads)

    def view(self, crs: str) -> CrsView:
        """The view in ``crs`` (CRS84 built at load, the other ``OUTPUT_CRS`` on first use)."""
        found = self.views.get(crs)
        if found is not None:
            return found
        if crs not in OUTPUT_CRS:
            msg = f"unsupported CRS {crs!r}; supported: {', '.join(OUTPUT_CRS)}"
            raise ValueError(msg)
        with self._lock:
            if crs not in self.views:
                self.views[crs] = _crs_view(self, OUTPUT_CRS[crs])
            return self.views[crs]

    def select(
        self, boxes: Sequence[Box] | None, box_crs: str, profile: str | None
    ) -> np.ndarray | None:
        """Rows intersecting any of ``boxes`` (in ``box_crs``), in profile or storage order.

        Returns None for "every row in storage order", so that the caller can slice the
        feature list directly.
        """
        if boxes is None:
            return self.orders[profile] if profile else None
        view = self.view(box_crs)
        hits = [view.intersecting(b) for b in boxes]
        rows = hits[0] if len(hits) == 1 else np.unique(np.concatenate(hits))
        if profile:
            rows = rows[np.argsort(self.positions[profile][rows], kind="stable")]
        return rows

    def query(
        self,
        boxes: Sequence[Box] | None,
        box_crs: str,
        profile: str | None,
        mask: np.ndarray | None = None,
        sortby: Sequence[tuple[str, bool]] = (),
    ) -> np.ndarray | None:
        """Rows matching ``boxes`` and ``mask``, in ``sortby`` order (column, descending).

        Ties keep the profile order (or storage order). None means every row in storage
        order, as from ``select``.
        """
        rows = self.select(boxes, box_crs, profile)
        if mask is None and not sortby:
            return rows
        if rows is None:
            rows = np.arange(len(self))
        if mask is not None:
            rows = rows[mask[rows]]
        if sortby:
            keys = []
            for column, descending in reversed(sortby):
                key = self.sort_key(column)[rows]
                keys.append(np.where(np.isnan(key), np.inf, -key if descending else key))
            rows = rows[np.lexsort(keys)]  # stable: ties keep the incoming order
        return rows

    def sort_key(self, column: str) -> np.ndarray:
        """Float sort key of a property (NaN where missing); text sorts by its dense rank."""
        cached = self.cache.get(("sort", column))
        if cached is not None:
            return cached
        series = self.table[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            key = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        else:
            try:
                codes, _ = pd.factorize(series, sort=True)
            except TypeError:  # mixed types: compare as text
                codes, _ = pd.factorize(series.astype("string"), sort=True)
            key = np.where(codes < 0, np.nan, codes.astype(float))
        self.cache[("sort", column)] = key
        return key

    def spatial_rows(self, geom: shapely.Geometry, predicate: str, crs: str) -> np.ndarray:
        """Rows whose geometry (in ``crs``) satisfies ``predicate(geom, feature)``."""
        return self.view(crs).tree.query(geom, predicate=predicate)

    def page(
        self,
        boxes: Sequence[Box] | None,
        profile: str | None,
        offset: int,
        limit: int,
        *,
        crs: str = CRS84_URI,
        box_crs: str = CRS84_URI,
        mask: np.ndarray | None = None,
        sortby: Sequence[tuple[str, bool]] = (),
        properties: Sequence[str] | None = None,
    ) -> tuple[int, list[bytes]]:
        """Number of matching features and the serialised features of one page in ``crs``.

        ``properties`` (a subset of the columns) re-serialises just the page's properties.
        """
        rows = self.query(boxes, box_crs, profile, mask, sortby)
        features = self.view(crs).features
        matched = len(features) if rows is None else len(rows)
        offset = min(offset, matched)  # any offset past the end is an empty page
        if rows is None:
            picked = np.arange(offset, min(offset + limit, matched))
            if properties is None:
                return matched, features[offset : offset + limit]
        else:
            picked = rows[offset : offset + limit]
            if properties is None:
                return matched, [features[i] for i in picked.tolist()]
        return matched, self.with_properties(features, picked, properties)

    def with_properties(
        self, features: list[bytes], rows: np.ndarray, properties: Sequence[str]
    ) -> list[bytes]:
        """The features at ``rows`` with only ``properties`` (geometry from the fragments)."""
        names = list(properties)
        columns = [self.table[c].take(rows).to_numpy().tolist() for c in names]
        records = (
            [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
            if names
            else [{}] * len(rows)
        )
        option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        out = []
        for row, rec in zip(rows.tolist(), records, strict=True):
            # the geometry part ends where the properties begin (found in the feature
            # itself: a write may replace the row's feature and fragment at any moment,
            # see Catalog.refresh_site); the id and geometry cannot hold this text
            feature = features[row]
            props = orjson.dumps(rec, default=_json_default, option=option)
            out.append(b"%b%b%b}" % (feature[: feature.find(_TAIL_HEAD)], _TAIL_HEAD, props))
        return out

    def mercator(self) -> tuple[np.ndarray, shapely.STRtree]:
        """Geometries in Web Mercator (EPSG:3857) and their tree, for vector tiles."""
        found = self.cache.get("mercator")
        if found is None:
            with self._lock:
                found = self.cache.get("mercator")
                if found is None:
                    series = gpd.GeoSeries(self.storage_geometries, crs=WORK_CRS)
                    geoms = np.asarray(series.to_crs("EPSG:3857").array, dtype=object)
                    found = (geoms, shapely.STRtree(geoms))
                    self.cache["mercator"] = found
        return found


@dataclass(frozen=True)
class Snapshot:
    """Everything the API serves from one version of the store file."""

    signature: tuple
    layers: dict[str, Layer]  # sites first, then the reference layers present
    profiles: dict[str, Profile]
    run_info: dict[str, Any]
    # when the inventory last changed (Last-Modified): the newest record update
    modified: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    # the store's version (Backend.version) these layers were read at; None if unknown
    version: int | None = None


class Catalog:
    """The store held in memory; reloaded when a write to it commits (see
    :meth:`omw_sites.store.base.Backend.signature`)."""

    def __init__(self, store: Any) -> None:
        self.backend = open_backend(store)
        self.store_path = self.backend.target  # what maps/sheets are rendered from
        self._lock = threading.Lock()
        self._snapshot = load_snapshot(self.backend)

    def _signature(self) -> tuple | None:
        try:
            return self.backend.signature()
        except Exception:  # a store briefly unreachable: keep serving what we have
            return None

    def is_stale(self) -> bool:
        sig = self._signature()
        return sig is not None and sig != self._snapshot.signature

    def reload_if_stale(self) -> Snapshot:
        """Reload the store when it changed; keep serving the old copy if that fails."""
        with self._lock:
            sig = self._signature()
            if sig is not None and sig != self._snapshot.signature:
                try:
                    old, self._snapshot = self._snapshot, load_snapshot(self.backend)
                    log.info("reloaded %s", self.store_path)
                    # requests still answering from the old copy hold it: its memory is
                    # handed back once the last of them lets go
                    weakref.finalize(old, _trim_heap)
                    del old
                    _release_freed_memory()
                except Exception:
                    log.exception("reloading %s failed; serving the previous copy", self.store_path)
                    old = self._snapshot
                    self._snapshot = replace(old, signature=sig)
            return self._snapshot

    async def current(self) -> Snapshot:
        """The snapshot to answer a request with (reloads off the event loop if needed).

        The request that finds the store changed reloads it and answers from the new
        copy; requests that come while a reload (or a write of this process) is under
        way answer from the copy they find, instead of all waiting for it: a reload of
        a large store takes seconds, and readers would stall behind it."""
        if not self.is_stale():
            return self._snapshot
        if self._lock.locked():
            return self._snapshot
        return await anyio.to_thread.run_sync(self.reload_if_stale)

    # ---------------------------------------------------------------- incremental updates
    def store_version(self) -> int | None:
        """The store's version now (None when it cannot be read)."""
        return _store_version(self.backend)

    def write_through(self, write: Callable[[], pd.Series]) -> pd.Series:
        """Run ``write()`` (one record write of this process, returning the record as
        written) and serve its result without a reload when it was the only change
        (:meth:`refresh_site`). Writes of this process run one at a time, under the lock
        reloads take: a request that sees the store changed by this write waits for the
        update instead of reloading the whole store."""
        with self._lock:
            before = self.store_version()
            record = write()
            after = self.store_version()
            if after != before:
                self._refresh(record, before, after)
        _trim_heap_now_and_then()
        return record

    def refresh_site(self, record: pd.Series, before: int | None, after: int | None) -> bool:
        """Serve ``record`` (a site record this process just wrote: offer and status
        fields, ``updated_at``) without reloading the store, if this write is the only
        change since the snapshot was read: the snapshot is at version ``before`` (read
        just before the write) and the store at ``after == before + 1`` (read just
        after). Otherwise, or for a record that is no longer current, nothing changes
        here and the next request reloads (the store's signature moved). Returns whether
        the snapshot was updated.

        A reader holds the snapshot it started with. The new snapshot shares the old one's
        per-row lists (the properties fragments, each CRS view's features) and replaces
        the site's element in them in place: copying lists of 1M entries costs 150-250 ms
        each (an incref per cold object) and would churn memory on every write, while
        replacing one element is atomic in CPython. So a request that began before the
        write may serve the new feature (a page is not a transaction; any reader may see
        it), but its strong ETag, read from its snapshot's table *before* the bytes, is
        then the old one — a stale tag on new bytes only costs a refetch (If-Match fails,
        If-None-Match misses), while a new tag is never served with old bytes. The table
        is copy-on-write per changed column (a few ms at 1M sites), so filters, sorting
        and ETags of a snapshot stay those of its state; lazily built extras that depend
        on the changed columns are dropped from the new layer's cache.
        """
        with self._lock:
            return self._refresh(record, before, after)

    def _refresh(self, record: pd.Series, before: int | None, after: int | None) -> bool:
        if before is None or after is None or after != before + 1:
            return False
        if _text_value(record.get("ended_at")):
            return False  # an end: the feature leaves, which the reload does
        snap = self._snapshot
        if snap.version != before:
            return False
        signature = self._signature()
        if signature is None or self.store_version() != after:
            return False  # another writer committed after this one: reload
        try:
            updated = _with_record(snap, record, signature, after)
        except Exception:  # an unexpected column type: the reload is always right
            log.exception("updating the served copy of %s failed", self.store_path)
            updated = None
        if updated is None:
            return False
        self._snapshot = updated
        return True


def _release_freed_memory() -> None:
    """Hand the heap pages freed by the previous snapshot back to the system.

    A snapshot is hundreds of thousands of small objects; once the old one is garbage,
    glibc keeps its pages for reuse, so without this the server's resident memory stays
    at two snapshots after every reload. Other C libraries have no ``malloc_trim``.
    """
    gc.collect()  # the old snapshot's cycles (frames, caches) go now, not at some later GC
    _trim_heap()


_last_trim = [0.0]
TRIM_EVERY_S = 1.0  # a write frees a little (its reads, its request); trimming costs ~ms


def _trim_heap_now_and_then() -> None:
    """:func:`_trim_heap`, at most once a :data:`TRIM_EVERY_S`: the memory a stream of
    writes frees goes back to the system instead of piling up in the threads' arenas."""
    now = time.monotonic()
    if now - _last_trim[0] >= TRIM_EVERY_S:
        _last_trim[0] = now
        _trim_heap()


def _trim_heap() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


# bookkeeping columns of the inventory that are not for publication
PRIVATE_COLUMNS = ("content_hash", "scores_hash", "ended_at", "ended_reason")


def public_sites(sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The site records as published: no bookkeeping columns, only public documents."""
    sites = sites.drop(columns=[c for c in PRIVATE_COLUMNS if c in sites.columns])
    if "documents" in sites.columns:
        sites["documents"] = sites["documents"].map(_public_documents)
    return sites


def _public_documents(text: Any) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        docs = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    public = [d for d in docs if isinstance(d, dict) and d.get("public", True)]
    return orjson.dumps(public).decode() if public else None


def load_snapshot(store: Any) -> Snapshot:
    """Read the current site records and every reference layer of the store into memory.

    The signature is taken before reading and checked after: if a write committed while
    reading (the layers could come from two versions), it reads again."""
    backend = open_backend(store)
    for _ in range(5):
        signature = backend.signature()
        version = _store_version(backend)
        present = set(backend.list_layers())
        run_info = read_run_info(backend)
        sites = public_sites(read_sites(backend))
        reference = {
            name: read_layer(backend, name, fid_as_index=True)
            for name in REFERENCE_LAYERS
            if name in present
        }
        if backend.signature() == signature:
            break
    profiles = _profiles(sites, run_info)
    layers = {SITES: _sites_layer(sites, profiles, run_info)}
    for name, gdf in reference.items():
        title, description = REFERENCE_TITLES.get(name, (name, name))
        ids = np.asarray(gdf.index, dtype=np.int64)
        layers[name] = build_layer(name, title, description, gdf, ids)
    stamps = [str(run_info.get("created") or "")]
    if "updated_at" in sites.columns and sites["updated_at"].notna().any():
        stamps.append(str(sites["updated_at"].dropna().max()))
    modified = datetime(1970, 1, 1, tzinfo=UTC)
    for stamp in filter(None, stamps):
        t = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        modified = max(modified, t.replace(microsecond=0))
    return Snapshot(signature, layers, profiles, run_info, modified, version=version)


def _store_version(backend: Any) -> int | None:
    try:
        return int(backend.version())
    except Exception:  # a store briefly unreachable, or a backend without versions
        return None


def _text_value(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return str(value)


_TAIL_HEAD = b',"properties":'


def _published(name: str, value: Any) -> Any:
    """A record's value as the served table holds it (documents: the public ones)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return _public_documents(value) if name == "documents" else value


# the columns a write through the API changes (offer and status fields, the time)
WRITTEN_COLUMNS = (
    "status",
    "status_date",
    "price_pln_m2",
    "lease_pln_m2_year",
    "contact",
    "documents",
    "sez_status",
    "notes",
    "updated_at",
)


def _with_record(
    snap: Snapshot, record: pd.Series, signature: tuple, version: int
) -> Snapshot | None:
    """``snap`` with the site of ``record`` as written (see :meth:`Catalog.refresh_site`);
    None when the record cannot be placed (not served, or a column it cannot take)."""
    layer = snap.layers.get(SITES)
    row = None if layer is None else layer.index.get(str(record.get("site_id")))
    if layer is None or row is None:
        return None
    table = layer.table
    changed = {}
    for name in WRITTEN_COLUMNS:
        if name in table.columns and name in record.index:
            value = _published(name, record.get(name))
            if _text_value(value) != _text_value(table[name].iat[row]):
                changed[name] = value
    new_table = table.copy(deep=False)
    for name, value in changed.items():
        column = table[name].copy()
        column.iloc[row] = value  # raises for a value the column's dtype cannot hold
        new_table[name] = column
    # the properties as served, with the changed ones replaced: the other values read back
    # from the served JSON serialise to the same bytes (a reload gives the same feature)
    old_tail = layer.tails[row]
    props = orjson.loads(old_tail[len(_TAIL_HEAD) : -1])
    if not isinstance(props, dict) or not set(changed) <= set(props):
        return None
    props.update(changed)
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    tail = b"%b%b}" % (_TAIL_HEAD, orjson.dumps(props, default=_json_default, option=option))
    # the bytes first, the table (and with it the version readers tag them with) after;
    # under the layer's lock, so that no CRS view is being built from the fragments
    with layer._lock:
        for view in list(layer.views.values()):
            feature = view.features[row]
            view.features[row] = feature[: feature.find(_TAIL_HEAD)] + tail
        layer.tails[row] = tail
    # lazily built extras that depend on the changed columns go; geometry-only ones stay
    cache = {
        key: value
        for key, value in list(layer.cache.items())
        if key in ("mercator", "tiles")
        or (isinstance(key, tuple) and key[0] == "sort" and key[1] not in changed)
    }
    new_layer = replace(layer, table=new_table, cache=cache)
    modified = snap.modified
    stamp = _text_value(record.get("updated_at"))
    if stamp:
        t = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        modified = max(modified, t.replace(microsecond=0))
    layers = {**snap.layers, SITES: new_layer}
    return replace(snap, signature=signature, layers=layers, modified=modified, version=version)


def _profiles(sites: gpd.GeoDataFrame, run_info: dict[str, Any]) -> dict[str, Profile]:
    titles = {
        str(p["name"]): str(p.get("title") or p["name"])
        for p in run_info.get("profiles", [])
        if isinstance(p, dict) and "name" in p
    }
    names = [c[len(RANK_PREFIX) :] for c in sites.columns if c.startswith(RANK_PREFIX)]
    ordered = [n for n in titles if n in names] + [n for n in names if n not in titles]
    return {n: Profile(n, titles.get(n, n)) for n in ordered}


def _sites_layer(
    sites: gpd.GeoDataFrame, profiles: dict[str, Profile], run_info: dict[str, Any]
) -> Layer:
    run = ", ".join(f"{k} {run_info[k]}" for k in ("run_id", "created") if k in run_info)
    description = (
        "Investment sites of the Warsaw metropolitan area (OMW), one feature per site: "
        "criteria with units "
        f"({', '.join(f'{c} [{u}]' for c, (u, _) in SITE_COLUMNS.items() if u)}), "
        "and per profile score_<profile> (0..1, null when excluded), rank_<profile> "
        "(1 = best, 0 = excluded) and excluded_<profile> (reason). "
        f"Profiles: {', '.join(profiles) or 'none'}." + (f" Run: {run}." if run else "")
    )
    if "site_id" in sites.columns:
        ids = sites["site_id"].astype(str).to_numpy(dtype=object)
    else:  # a store without site ids still serves, with row numbers as ids
        ids = np.arange(1, len(sites) + 1, dtype=np.int64)
    layer = build_layer(SITES, "Investment sites", description, sites, ids)
    orders, positions = {}, {}
    rows = np.arange(len(sites))
    for name in profiles:
        rank = pd.to_numeric(sites[rank_col(name)], errors="coerce").to_numpy(dtype=float)
        excluded = ~(rank >= 1)  # rank 0 (and a missing rank) means excluded
        order = np.lexsort((rows, np.where(excluded, 0.0, rank), excluded))
        position = np.empty(len(order), dtype=np.intp)
        position[order] = rows
        orders[name], positions[name] = order, position
    return replace(layer, orders=orders, positions=positions)


def _json_default(value: Any) -> Any:
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # orjson itself writes NaN and ±inf as null


def _features(heads: list[bytes], geojson: np.ndarray, tails: list[bytes]) -> list[bytes]:
    return [
        b"%b%b%b" % (h, b"null" if g is None else g.encode(), t)
        for h, g, t in zip(heads, geojson.tolist(), tails, strict=True)
    ]


def _crs_view(layer: Layer, crs: OutputCrs) -> CrsView:
    """The layer in ``crs``: coordinates in its authority axis order, as OGC API Part 2 wants.

    The tree stays in (x, y) = (lon, lat) or (easting, northing); bbox and filter literals
    are turned into that order before they query it. EPSG:4326 shares the CRS84 tree.
    """
    lonlat = layer.views[CRS84_URI] if crs.code == "EPSG:4326" else None
    if lonlat is not None:
        geoms = lonlat.tree.geometries  # CRS84 is EPSG:4326 with (lon, lat) axes
    elif crs.uri == STORAGE_CRS_URI:
        geoms = layer.storage_geometries
    else:
        geoms = to_crs_xy(layer.storage_geometries, crs.uri)

    def written(c: np.ndarray) -> np.ndarray:
        return np.round(c[:, ::-1] if crs.swap else c, crs.decimals)

    geojson = shapely.to_geojson(shapely.transform(geoms, written))
    features = _features(layer.heads, geojson, layer.tails)
    if lonlat is not None:
        return CrsView(features, lonlat.tree, lonlat.bounds)  # the same (x, y): share the tree
    return CrsView.build(features, np.asarray(geoms, dtype=object))


def build_layer(
    name: str, title: str, description: str, gdf: gpd.GeoDataFrame, ids: np.ndarray
) -> Layer:
    """Reproject to CRS84 and serialise every feature once, as bytes."""
    if gdf.crs is None:
        gdf = gdf.set_crs(WORK_CRS)
    elif gdf.crs.to_epsg() != 2180:
        gdf = gdf.to_crs(WORK_CRS)
    storage = np.array(gdf.geometry.array, dtype=object)  # a copy: nulled below
    storage[shapely.is_empty(storage)] = None  # GeoJSON: an empty geometry is null
    geoms = np.asarray(gpd.GeoSeries(storage, crs=gdf.crs).to_crs(WEB_CRS).array, dtype=object)
    geoms = shapely.transform(geoms, lambda c: np.round(c, COORD_DECIMALS))
    geoms = shapely.orient_polygons(geoms)  # RFC 7946: exteriors counter-clockwise
    props = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    heads = [
        b'{"type":"Feature","id":%b,"geometry":' % orjson.dumps(i, default=_json_default)
        for i in ids.tolist()
    ]
    tails = [
        b',"properties":%b}' % orjson.dumps(rec, default=_json_default, option=option)
        for rec in props.to_dict(orient="records")
    ]
    view = CrsView.build(_features(heads, shapely.to_geojson(geoms), tails), geoms)
    valid = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    bbox = None
    if valid.any():
        minx, miny, maxx, maxy = shapely.total_bounds(geoms[valid]).tolist()
        bbox = (minx, miny, maxx, maxy)
    types = tuple(sorted({str(t) for t in gdf.geometry.geom_type.dropna().unique()}))
    return Layer(
        name=name,
        title=title,
        description=description,
        columns=tuple(str(c) for c in props.columns),
        geometry_types=types,
        bbox=bbox,
        index={str(i): row for row, i in enumerate(ids.tolist())},
        heads=heads,
        tails=tails,
        storage_geometries=storage,
        views={CRS84_URI: view},
        table=props.reset_index(drop=True),
    )
