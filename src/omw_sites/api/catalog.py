"""The store as the API holds it in memory: a snapshot of the site records and reference
layers (each a :class:`~omw_sites.api.served_layer.Layer`), reloaded when the store
changes, and updated in place after a write of this process."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import geopandas as gpd
import numpy as np
import orjson
import pandas as pd

from omw_sites.api.served_layer import TAIL_HEAD, Layer, build_layer, json_default
from omw_sites.layers import REFERENCE_LAYERS, SITE_COLUMNS, SITES, rank_col
from omw_sites.store import open_backend, read_layer, read_run_info, read_sites
from omw_sites.store.lifecycle import RERANKED

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


def _sites_layer(
    sites: gpd.GeoDataFrame, profiles: dict[str, Profile], run_info: dict[str, Any]
) -> Layer:
    run = ", ".join(f"{k} {run_info[k]}" for k in ("run_id", "created") if k in run_info)
    description = (
        "Investment sites of the Warsaw metropolitan area (OMW), one feature per site: "
        "criteria with units "
        f"({', '.join(f'{c} [{u}]' for c, (u, _) in SITE_COLUMNS.items() if u)}), "
        "and per profile score_<profile> (0..1, null when excluded), rank_<profile> "
        "(1 = best, 0 = excluded) and excluded_<profile> (reason). Sold and withdrawn "
        "sites are not ranked (rank 0, reason 'not on offer') but keep their score. "
        f"Profiles: {', '.join(profiles) or 'none'}." + (f" Run: {run}." if run else "")
    )
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
