"""The store as the API holds it in memory: a snapshot of the site records and reference
layers (each a :class:`~omw_sites.api.served_layer.Layer`), updated in place after a
write of this process and, when another process commits, brought up to date by reading
only the records that changed (:func:`refreshed`; a full reload when that cannot be done
or costs more)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import geopandas as gpd
import numpy as np
import orjson
import pandas as pd

from omw_sites.api.served_layer import (
    TAIL_HEAD,
    Layer,
    build_layer,
    json_default,
    storage_geometries,
    with_rows,
)
from omw_sites.layers import REFERENCE_LAYERS, SITE_COLUMNS, SITES, rank_col
from omw_sites.store import open_backend, read_layer, read_run_info, read_sites
from omw_sites.store.hashing import LAYER_DIGESTS
from omw_sites.store.lifecycle import RERANKED
from omw_sites.store.record_stamps import (
    STAMP_COLUMNS,
    column_dtypes,
    current_stamps,
    read_records,
)
from omw_sites.store.update import derived_columns

log = logging.getLogger(__name__)

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
    "water": ("Surface water", "lakes, rivers and other surface water (BDOT10k)"),
}


@dataclass(frozen=True)
class Profile:
    """A scoring profile whose rank column is in the site table."""

    name: str
    title: str


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
    # per served site row (same order: feature ids ascending): the record's hashes, the
    # part of its stamp (store.record_stamps) the served table does not publish; None
    # when the copy cannot be refreshed in place (no site IDs)
    hashes: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    # the site table's columns as read without NULLs (record_stamps.column_dtypes)
    dtypes: dict[str, str] | None = field(default=None, repr=False, compare=False)


class Catalog:
    """The store held in memory; followed when a write to it commits (see
    :meth:`omw_sites.store.base.Backend.signature`)."""

    def __init__(self, store: Any) -> None:
        self.backend = open_backend(store)
        self.store_path = self.backend.target  # what maps/sheets are rendered from
        self._lock = threading.Lock()
        self._snapshot = load_snapshot(self.backend)
        # how the served copy followed the store: "incremental" (another process's commit
        # applied in place), "full" (read again), "own" (a write of this process)
        self.refreshes: Counter[str] = Counter()

    def _signature(self) -> tuple | None:
        try:
            return self.backend.signature()
        except Exception:  # a store briefly unreachable: keep serving what we have
            return None

    def is_stale(self) -> bool:
        sig = self._signature()
        return sig is not None and sig != self._snapshot.signature

    def reload_if_stale(self) -> Snapshot:
        """Follow the store when it changed: read only the records that changed since the
        served copy was read and apply them to it (:func:`refreshed`), or, when that cannot
        be done or costs more, read the whole store again; keep serving the old copy if
        that fails."""
        with self._lock:
            sig = self._signature()
            if sig is not None and sig != self._snapshot.signature:
                start = time.perf_counter()
                try:
                    updated = refreshed(self.backend, self._snapshot)
                except Exception:  # a full reload is always right
                    log.exception("updating the served copy of %s failed", self.store_path)
                    updated = None
                if updated is not None:
                    self._snapshot = updated
                    self.refreshes["incremental"] += 1
                    _trim_heap_now_and_then()
                    took = time.perf_counter() - start
                    log.info("followed %s in place in %.2f s", self.store_path, took)
                else:
                    self._reload(sig)
                    took = time.perf_counter() - start
                    log.info("reloaded %s in %.2f s", self.store_path, took)
            return self._snapshot

    def _reload(self, sig: tuple) -> None:
        try:
            old = self._snapshot
            # the lazily built extras (tiles, Web Mercator geometries, sort keys) of the
            # old copy go before the new one is built, not with the old copy
            for layer in old.layers.values():
                layer.cache.clear()
            gc.collect()
            self._snapshot = load_snapshot(self.backend)
            self.refreshes["full"] += 1
            # requests still answering from the old copy hold it: its memory is
            # handed back once the last of them lets go
            weakref.finalize(old, _trim_heap)
            del old
            _release_freed_memory()
        except Exception:
            log.exception("reloading %s failed; serving the previous copy", self.store_path)
            self._snapshot = replace(self._snapshot, signature=sig)

    @property
    def snapshot(self) -> Snapshot:
        """The copy served now, without looking at the store."""
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
        the site's element in them in place: copying lists of a million entries on every
        write would take time (an incref per cold object) and churn memory, while
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
        self.refreshes["own"] += 1
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
        dtypes = column_dtypes(backend) if SITES in present else None
        records = read_sites(backend, fid_as_index=True)
        hashes = _hashes(records)
        sites = public_sites(records)
        del records
        if not sites.index.is_monotonic_increasing:
            # served in record order (feature id): a GeoPackage returns the current
            # records in whichever order SQLite's planner picks (along the unique index
            # of current IDs, or not), so that order could differ from one read to the
            # next; the record order is the same for every reader and keeps pages in
            # place as records are added (:func:`refreshed` follows it)
            sites = sites.sort_index()
            hashes = None if hashes is None else hashes.sort_index()
        reference = {
            name: read_layer(backend, name, fid_as_index=True)
            for name in REFERENCE_LAYERS
            if name in present
        }
        if backend.signature() == signature:
            break
    profiles = _profiles(sites, run_info)
    layers = {SITES: _sites_layer(sites, profiles, run_info)}
    modified = _modified(run_info, sites)
    del sites
    for name, gdf in reference.items():
        title, description = REFERENCE_TITLES.get(name, (name, name))
        ids = np.asarray(gdf.index, dtype=np.int64)
        layers[name] = build_layer(name, title, description, gdf, ids)
    return Snapshot(
        signature,
        layers,
        profiles,
        run_info,
        modified,
        version,
        hashes=hashes,
        dtypes=dtypes,
    )


def _hashes(records: pd.DataFrame) -> pd.DataFrame | None:
    """The private part of each record's stamp, by feature id (None: the copy cannot be
    refreshed in place, the records have no IDs)."""
    if "site_id" not in records.columns:
        return None
    wanted = [c for c in STAMP_COLUMNS if c in PRIVATE_COLUMNS and c in records.columns]
    return records[wanted].copy()  # a copy: a view would keep the frame's blocks alive


def _modified(run_info: dict[str, Any], sites: pd.DataFrame) -> datetime:
    """When the inventory last changed: the run's time or the newest record update."""
    stamps = [str(run_info.get("created") or "")]
    if "updated_at" in sites.columns and sites["updated_at"].notna().any():
        stamps.append(str(sites["updated_at"].dropna().max()))
    modified = datetime(1970, 1, 1, tzinfo=UTC)
    for stamp in filter(None, stamps):
        t = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        modified = max(modified, t.replace(microsecond=0))
    return modified


def _store_version(backend: Any) -> int | None:
    try:
        return int(backend.version())
    except Exception:  # a store briefly unreachable, or a backend without versions
        return None


def _text_value(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return str(value)


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


#: a write that re-ranks more records than this is served after a reload instead of in
#: place: re-serialising each changed feature costs about what reading it does
MAX_RERANKED_IN_PLACE = 50_000


def _row_changes(layer: Layer, row: int, record: pd.Series) -> dict[int, dict[str, Any]] | None:
    """Per served row, the published values a write changed: the written record's offer
    and status fields, and the ranks a status change moved (``attrs[RERANKED]``, also on
    other records). None when a re-ranked site is not served (the reload places it)."""
    table = layer.table
    found: dict[int, dict[str, Any]] = {}

    def note(r: int, name: str, value: Any) -> None:
        value = _published(name, value)
        if name in table.columns and _text_value(value) != _text_value(table[name].iat[r]):
            found.setdefault(r, {})[name] = value

    for name in WRITTEN_COLUMNS:
        if name in record.index:
            note(row, name, record.get(name))
    ranked = record.attrs.get(RERANKED)
    if ranked is None or not len(ranked):
        return found
    for site_id, values in zip(ranked.index, ranked.to_dict("records"), strict=True):
        r = layer.index.get(str(site_id))
        if r is None:
            return None
        for name, value in values.items():
            note(r, name, value)
    return found


def _with_record(
    snap: Snapshot, record: pd.Series, signature: tuple, version: int
) -> Snapshot | None:
    """``snap`` with the site of ``record`` as written (see :meth:`Catalog.refresh_site`)
    and the records its status change re-ranked (their ranks, reasons and versions; the
    profile orders made again); None when the write cannot be placed (a site not served,
    a column it cannot take, too many re-ranked)."""
    layer = snap.layers.get(SITES)
    row = None if layer is None else layer.index.get(str(record.get("site_id")))
    if layer is None or row is None:
        return None
    edits = _row_changes(layer, row, record)
    if edits is None or len(edits) > MAX_RERANKED_IN_PLACE:
        return None
    table = layer.table
    changed = {name for values in edits.values() for name in values}
    new_table = table.copy(deep=False)
    for name in changed:
        column = table[name].copy()
        at = [r for r, values in edits.items() if name in values]
        given = [edits[r][name] for r in at]
        if pd.api.types.is_numeric_dtype(column.dtype):  # a cleared number is NaN there
            given = [np.nan if v is None else v for v in given]
        column.iloc[at] = given  # raises for a value the column's dtype cannot hold
        new_table[name] = column
    # the properties as served, with the changed ones replaced: the other values read back
    # from the served JSON serialise to the same bytes (a reload gives the same feature)
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    tails = {}
    for r, values in edits.items():
        old_tail = layer.tail(r)
        props = orjson.loads(old_tail[len(TAIL_HEAD) : -1])
        if not isinstance(props, dict) or not set(values) <= set(props):
            return None
        props.update(values)
        tails[r] = b"%b%b}" % (TAIL_HEAD, orjson.dumps(props, default=json_default, option=option))
    # the bytes first, the table (and with it the version readers tag them with) after;
    # under the layer's lock, so that no CRS view is being built from the fragments
    with layer._lock:
        for view in list(layer.views.values()):
            for r, tail in tails.items():
                feature = view.features[r]
                view.features[r] = feature[: feature.find(TAIL_HEAD)] + tail
    # lazily built extras that depend on the changed columns go (tiles carry the ranks);
    # geometry-only ones stay
    reranked = any(c.startswith(RANK_PREFIX) for c in changed)
    cache = {
        key: value
        for key, value in list(layer.cache.items())
        if key == "mercator"
        or (key == "tiles" and not reranked)
        or (isinstance(key, tuple) and key[0] == "sort" and key[1] not in changed)
    }
    orders, positions = dict(layer.orders), dict(layer.positions)
    for name in layer.orders:
        if rank_col(name) in changed:
            orders[name], positions[name] = _profile_order(new_table[rank_col(name)])
    new_layer = replace(layer, table=new_table, cache=cache, orders=orders, positions=positions)
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
    columns = [str(c) for c in sites.columns]
    names = [c[len(RANK_PREFIX) :] for c in columns if c.startswith(RANK_PREFIX)]
    ordered = [n for n in titles if n in names] + [n for n in names if n not in titles]
    return {n: Profile(n, titles.get(n, n)) for n in ordered}


def _sites_description(profiles: dict[str, Profile], run_info: dict[str, Any]) -> str:
    run = ", ".join(f"{k} {run_info[k]}" for k in ("run_id", "created") if k in run_info)
    return (
        "Investment sites of the Warsaw metropolitan area (OMW), one feature per site: "
        "criteria with units "
        f"({', '.join(f'{c} [{u}]' for c, (u, _) in SITE_COLUMNS.items() if u)}), "
        "and per profile score_<profile> (0..1, null when excluded), rank_<profile> "
        "(1 = best, 0 = excluded) and excluded_<profile> (reason). Sold and withdrawn "
        "sites are not ranked (rank 0, reason 'not on offer') but keep their score. "
        f"Profiles: {', '.join(profiles) or 'none'}." + (f" Run: {run}." if run else "")
    )


def _sites_layer(
    sites: gpd.GeoDataFrame, profiles: dict[str, Profile], run_info: dict[str, Any]
) -> Layer:
    description = _sites_description(profiles, run_info)
    if "site_id" in sites.columns:
        ids = sites["site_id"].astype(str).to_numpy(dtype=object)
    else:  # a store without site ids still serves, with row numbers as ids
        ids = np.arange(1, len(sites) + 1, dtype=np.int64)
    layer = build_layer(SITES, "Investment sites", description, sites, ids)
    orders, positions = {}, {}
    for name in profiles:
        orders[name], positions[name] = _profile_order(sites[rank_col(name)])
    return replace(layer, orders=orders, positions=positions)


def _profile_order(ranks: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Rows best first by rank (ties and the excluded, rank 0, in storage order, the
    excluded last), and each row's place in that order."""
    rank = pd.to_numeric(ranks, errors="coerce").to_numpy(dtype=float)
    rows = np.arange(len(rank))
    excluded = ~(rank >= 1)  # rank 0 (and a missing rank) means excluded
    order = np.lexsort((rows, np.where(excluded, 0.0, rank), excluded))
    position = np.empty(len(order), dtype=np.intp)
    position[order] = rows
    return order, position


# ------------------------------------------------------- following another process's writes
#: above this share of the current records to read again in full (new or re-measured), a
#: full reload is cheaper; re-scored records only need their scores and ranks and never
#: make it cheaper
MAX_REREAD_SHARE = 0.5
#: columns whose value can change without a record's content hash or ``updated_at`` moving
_RESCORED_EXTRA = ("scored_run",)


@dataclass(frozen=True)
class _Changes:
    """What changed in the store since a snapshot was read (see :func:`refreshed`)."""

    signature: tuple
    version: int | None
    run_info: dict[str, Any]
    stamps: pd.DataFrame  # the current records' stamps, by feature id ascending
    source: np.ndarray  # per current record: its served row, or -(j + 1) for fresh row j
    fresh: gpd.GeoDataFrame  # the records read whole (new, re-measured, edited), in order
    replaced: np.ndarray  # per fresh record: the served row it replaces, or -1 (new)
    # values read for records that stay in their row: (frame by feature id, their rows in
    # the new table) — the re-scored records' scores, ranks and explanations
    patches: tuple[tuple[pd.DataFrame, np.ndarray], ...]


def refreshed(backend: Any, snap: Snapshot) -> Snapshot | None:
    """``snap`` brought up to the store's current version by reading only what changed
    since it was read, or None when a full reload is needed (the reference layers, the
    profiles or the site table's columns changed, a column's type as read would change,
    most records are new or re-measured, or the store kept moving while it was read).

    The records to read are found by comparing each record's stamp with the served one
    (:mod:`omw_sites.store.record_stamps`): new and re-measured or edited records are read
    whole and serialised as a load would; re-scored ones (a scoped update re-ranks every
    gmina) only their scores, ranks and explanations, patched into their served features
    in place (as a write of this process is, see :meth:`Catalog.refresh_site`); ended ones
    leave. Kept features are shared with ``snap``, not copied."""
    layer = snap.layers.get(SITES)
    if layer is None or snap.hashes is None or snap.dtypes is None:
        return None
    for attempt in range(3):
        try:
            changes = _read_changes(backend, snap, layer)
        except _Moved:
            continue
        if changes is None:
            return None
        # a store that keeps moving (a stream of edits) is followed with what was read:
        # records read after their stamp may be newer than it, and the snapshot keeps the
        # signature from before the reads, so the next request follows the rest
        if attempt == 2 or changes.signature == backend.signature():
            return _applied(snap, layer, changes)
    return None


class _Moved(Exception):
    """A write committed while the changes were read: read them again."""


def _same_reference(snap: Snapshot, present: set[str], run_info: dict[str, Any]) -> bool:
    """Whether the reference layers the store holds are those ``snap`` serves."""
    served = {name for name in snap.layers if name != SITES}
    if served != {name for name in REFERENCE_LAYERS if name in present}:
        return False
    digests = run_info.get(LAYER_DIGESTS)
    if digests is not None or snap.run_info.get(LAYER_DIGESTS) is not None:
        return digests == snap.run_info.get(LAYER_DIGESTS)
    return run_info.get("run_id") == snap.run_info.get("run_id")  # only edits since


def _read_changes(backend: Any, snap: Snapshot, layer: Layer) -> _Changes | None:
    signature = backend.signature()
    version = _store_version(backend)
    present = set(backend.list_layers())
    run_info = read_run_info(backend)
    if SITES not in present or not _same_reference(snap, present, run_info):
        return None
    if column_dtypes(backend) != snap.dtypes:
        return None  # a column added (new profile, new criterion): the layout changed
    stamps = current_stamps(backend)
    plan = _plan(layer, snap.hashes, stamps)
    if plan is None:
        return None
    source, reread, rescored, replaced = plan
    fids = stamps.index.to_numpy()
    fresh = read_records(backend, fids[reread], current_count=len(fids))
    names = [*derived_columns(snap.dtypes), *(c for c in _RESCORED_EXTRA if c in snap.dtypes)]
    scored = read_records(
        backend, fids[rescored], columns=names, geometry=False, current_count=len(fids)
    )
    if len(fresh) != int(reread.sum()) or len(scored) != int(rescored.sum()):
        raise _Moved  # records ended meanwhile
    fresh = fresh.loc[fids[reread]]  # in served order
    patches = ((scored, np.flatnonzero(rescored)),)
    return _Changes(signature, version, run_info, stamps, source, fresh, replaced, patches)


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality of two columns, missing equal to missing."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    if a.dtype != b.dtype:
        a, b = a.astype(object), b.astype(object)
    equal = (a == b).fillna(False).to_numpy(dtype=bool)
    return equal | (a.isna() & b.isna()).to_numpy(dtype=bool)


def _plan(
    layer: Layer, hashes: pd.DataFrame, stamps: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Per current record: its served row (-(j + 1): the j-th record to read whole), which
    records to read whole (new, re-measured, edited) and which are only re-scored, and the
    served row each record read whole replaces (-1: new); None when reading most records
    whole costs more than a reload."""
    fids = stamps.index.to_numpy()
    pos = pd.Index(hashes.index).get_indexer(fids)
    found = pos >= 0
    rows = pos[found]
    table = layer.table
    same = np.ones(len(rows), dtype=bool)
    for name in ("site_id", "updated_at", "content_hash"):
        if name in stamps.columns:
            held = hashes[name] if name in hashes.columns else table[name]
            same &= _same(held.take(rows), stamps[name][found])
    scored = np.ones(len(rows), dtype=bool)
    for name in ("scores_hash", "scored_run"):
        if name in stamps.columns:
            held = hashes[name] if name in hashes.columns else table[name]
            scored &= _same(held.take(rows), stamps[name][found])
    reread = ~found
    reread[np.flatnonzero(found)[~same]] = True
    if reread.sum() > MAX_REREAD_SHARE * max(len(fids), 1):
        return None
    rescored = np.zeros(len(fids), dtype=bool)
    rescored[np.flatnonzero(found)[same & ~scored]] = True
    source = np.where(found, pos, -1)
    replaced = source[reread]
    source[reread] = -(np.arange(int(reread.sum())) + 1)
    return source, reread, rescored, replaced


def _as_read(column: pd.Series, dtype: str) -> pd.Series:
    """``column`` with the type a reader gives it (see ``record_stamps.column_dtypes``): an
    integer column holding a NULL is float, a boolean one object."""
    if dtype not in ("int64", "float64", "bool", "str", "object"):
        return column
    missing = bool(column.isna().any())
    if dtype == "int64" and missing:
        dtype = "float64"
    elif dtype == "bool" and missing:
        dtype = "object"
    return column if str(column.dtype) == dtype else column.astype(dtype)


Rescored = dict[str, tuple[np.ndarray, pd.Series]]


def _rescored_changes(table: pd.DataFrame, changes: _Changes) -> Rescored:
    """Per column, the records staying in their row whose served value changed: their rows
    in the new table and their values as read. Most re-scored columns do not change (a
    re-rank moves ranks and reasons, not scores and explanations), nor most columns of an
    edited record; only those that do are rebuilt."""
    fids = changes.stamps.index.to_numpy()
    found: dict[str, list[tuple[np.ndarray, pd.Series]]] = {}
    for given, rows in changes.patches:
        if not len(rows):
            continue
        at = given.index.get_indexer(fids[rows])
        old_rows = changes.source[rows]
        for name in given.columns:
            if name not in table.columns:
                continue
            new = given[name].take(at)
            differs = ~_same(table[name].take(old_rows), new)
            if differs.any():
                part = (rows[differs], new[differs].reset_index(drop=True))
                found.setdefault(name, []).append(part)
    return {
        name: (
            np.concatenate([r for r, _ in parts]),
            pd.concat([v for _, v in parts], ignore_index=True) if len(parts) > 1 else parts[0][1],
        )
        for name, parts in found.items()
    }


def _new_column(
    old: pd.Series,
    changes: _Changes,
    fresh: pd.DataFrame,
    order: np.ndarray | None,
    rescored: tuple[np.ndarray, pd.Series] | None,
) -> pd.Series:
    """One column of the new table: the kept rows' values and the fresh rows', in the new
    order (``order``: positions in kept-then-fresh; None: the rows did not move), with
    the changed re-scored values set."""
    name = old.name
    column = old
    if order is not None:
        kept = old.iloc[changes.source[changes.source >= 0]]
        column = pd.concat([kept, fresh[name]], ignore_index=True).take(order)
        column = column.reset_index(drop=True)
    if rescored is not None:
        rows, given = rescored
        same_type = given.dtype == column.dtype
        values = (column if same_type else column.astype(object)).to_numpy(copy=True)
        values[rows] = (given if same_type else given.astype(object)).to_numpy()
        if same_type:
            return pd.Series(values, name=name, dtype=column.dtype)
        column = pd.Series(values, name=name).infer_objects()
    return column


def _new_table(
    table: pd.DataFrame, changes: _Changes, dtypes: dict[str, str], rescored: Rescored
) -> pd.DataFrame | None:
    """The served table at the store's version, or None when a column's type as a reader
    gives it would change (every row's serialisation of it would move: reload)."""
    source = changes.source
    order = None
    fresh = table.iloc[:0]
    if bool((source < 0).any()) or len(source) != len(table):
        fresh = public_sites(changes.fresh).drop(columns=changes.fresh.geometry.name)
        if list(fresh.columns) != list(table.columns):
            return None
        kept = source >= 0
        order = np.empty(len(source), dtype=np.intp)
        order[kept] = np.arange(int(kept.sum()))
        order[~kept] = int(kept.sum()) + (-source[~kept] - 1)
    columns = {}
    for name in table.columns:
        old = table[name]
        if order is None and name not in rescored:
            columns[name] = old  # shared: pandas copies on write
            continue
        column = _new_column(old, changes, fresh, order, rescored.get(name))
        # a column the API publishes transformed (documents) stays as load_snapshot makes it
        column = _as_read(column, "object" if old.dtype == object else dtypes.get(name, ""))
        if column.dtype != old.dtype:
            return None
        columns[name] = column
    return pd.DataFrame(columns, index=pd.RangeIndex(len(source)))


def _rescored_tails(
    layer: Layer, table: pd.DataFrame, changes: _Changes, rescored: Rescored
) -> dict[int, bytes] | None:
    """The new properties of the records whose served values changed in their row, by
    served row of ``layer``; None when a feature cannot take them."""
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    edits: dict[int, dict[bytes, bytes]] = {}
    for name, (rows, _) in rescored.items():
        key = orjson.dumps(name) + b":"
        values = table[name].take(rows).tolist()
        for r, value in zip(changes.source[rows].tolist(), values, strict=True):
            written = orjson.dumps(_published(name, value), default=json_default, option=option)
            edits.setdefault(r, {})[key] = written
    tails = {}
    for r, changed in edits.items():
        tail = _spliced(layer.tail(r), changed)
        if tail is None:
            return None
        tails[r] = tail
    return tails


def _spliced(tail: bytes, values: dict[bytes, bytes]) -> bytes | None:
    """A feature's ``,"properties":{…}}`` with the values of some keys replaced (key:
    ``"name":``, value: its JSON), as serialising the changed properties again would
    write it: a key, quotes and all, cannot occur inside a JSON string (its quotes would
    be escaped), and a scalar value ends at the next ``,`` or ``}`` or closing quote.
    None when a key is missing or its value is not a scalar."""
    for key, value in values.items():
        at = tail.find(b"," + key)
        if at < 0:
            at = tail.find(b"{" + key)
        if at < 0:
            return None
        start = at + 1 + len(key)
        end = _value_end(tail, start)
        if end < 0:
            return None
        tail = tail[:start] + value + tail[end:]
    return tail


def _value_end(text: bytes, start: int) -> int:
    """Where the scalar JSON value starting at ``start`` ends (-1: not a scalar)."""
    first = text[start : start + 1]
    if first in (b"{", b"["):
        return -1
    if first != b'"':
        ends = [i for i in (text.find(b",", start), text.find(b"}", start)) if i >= 0]
        return min(ends) if ends else -1
    i = start + 1
    while (i := text.find(b'"', i)) >= 0:
        slashes = len(text[start + 1 : i]) - len(text[start + 1 : i].rstrip(b"\\"))
        if slashes % 2 == 0:
            return i + 1
        i += 1
    return -1


def _patch_in_place(layer: Layer, tails: dict[int, bytes]) -> None:
    """Replace the properties of ``tails``' rows in every served view of ``layer`` (under
    its lock, so that no view is being built from the fragments meanwhile)."""
    with layer._lock:
        for view in list(layer.views.values()):
            features = view.features
            for r, tail in tails.items():
                feature = features[r]
                features[r] = feature[: feature.find(TAIL_HEAD)] + tail


def _edited_in_place(layer: Layer, changes: _Changes) -> _Changes:
    """``changes`` with the records read whole that replace a served record of the same
    shape (an edit, a status change: nothing added or ended, no geometry moved) turned
    into patches of their row, so that the rows do not move."""
    fresh = changes.fresh
    if len(changes.source) != len(layer) or not len(fresh) or (changes.replaced < 0).any():
        return changes
    old = layer.storage_geometries[changes.replaced]
    new = storage_geometries(fresh)
    if not all(
        (a is None and b is None) or (a is not None and b is not None and a.equals_exact(b, 0))
        for a, b in zip(old.tolist(), new.tolist(), strict=True)
    ):
        return changes
    source = changes.source.copy()
    rows = np.flatnonzero(source < 0)
    source[rows] = changes.replaced[-source[rows] - 1]
    values = public_sites(fresh).drop(columns=fresh.geometry.name)
    patch = (pd.DataFrame(values), rows)
    return replace(changes, source=source, fresh=fresh.iloc[:0], patches=(*changes.patches, patch))


def _applied(snap: Snapshot, layer: Layer, changes: _Changes) -> Snapshot | None:
    """``snap`` with ``changes`` applied (see :func:`refreshed`); None: reload instead."""
    changes = _edited_in_place(layer, changes)
    rescored = _rescored_changes(layer.table, changes)
    table = _new_table(layer.table, changes, snap.dtypes or {}, rescored)
    if table is None:
        return None
    profiles = _profiles(table, changes.run_info)
    if list(profiles) != list(snap.profiles):
        return None
    tails = _rescored_tails(layer, table, changes, rescored)
    if tails is None:
        return None
    changed = set(rescored)
    moved = bool((changes.source < 0).any()) or len(changes.source) != len(layer)
    # the bytes first, the table (and with it the ETags readers tag them with) after; a
    # request still on the old copy may serve a re-ranked feature with the old tag (a
    # refetch), never a new tag with old bytes
    _patch_in_place(layer, tails)
    if moved:
        fresh_ids = changes.fresh["site_id"].astype(str).to_numpy(dtype=object)
        new_layer = with_rows(layer, changes.source, changes.fresh, fresh_ids, table)
        ids = table["site_id"].astype(str).tolist()
        new_layer = replace(new_layer, index={i: row for row, i in enumerate(ids)})
    else:
        cache = {
            key: value
            for key, value in list(layer.cache.items())
            if key == "mercator"
            or (isinstance(key, tuple) and key[0] == "sort" and key[1] not in changed)
        }
        new_layer = replace(layer, table=table, cache=cache)
    orders, positions = {}, {}
    for name in profiles:
        if moved or rank_col(name) in changed:
            orders[name], positions[name] = _profile_order(table[rank_col(name)])
        else:
            orders[name], positions[name] = layer.orders[name], layer.positions[name]
    new_layer = replace(
        new_layer,
        orders=orders,
        positions=positions,
        description=_sites_description(profiles, changes.run_info),
    )
    hashes = changes.stamps[[c for c in snap.hashes.columns]] if snap.hashes is not None else None
    return replace(
        snap,
        signature=changes.signature,
        layers={**snap.layers, SITES: new_layer},
        profiles=profiles,
        run_info=changes.run_info,
        modified=_modified(changes.run_info, table),
        version=changes.version,
        hashes=hashes,
    )
