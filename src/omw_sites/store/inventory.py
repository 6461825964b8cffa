"""The regional inventory: incremental updates, history, status lifecycle, provenance.

:class:`Inventory` sits on a :class:`~omw_sites.store.base.Backend` (GeoPackage or PostGIS)
and is the only writer of the store. An ingest hands it the freshly measured and scored
sites; it compares them with the current records by content hash and, in **one
transaction**, inserts the new sites, updates the changed ones field by field (each change
a history row), ends the sites that disappeared from the updated area (records are never
deleted), refreshes scores and ranks, and records the run with its provenance. Offer
details and the status lifecycle are edited by people (CLI, API) through :meth:`edit`.

Several writers may work on one store at once: an update is prepared from the store as
read at one version (:meth:`~omw_sites.store.base.Backend.version`) and commits only if
no one else committed since; otherwise it is prepared again from the new state. An
update that would end more than :data:`MASS_END_SHARE` of the sites in its scope is
refused unless allowed (:func:`check_mass_end`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from omw_sites.layers import QUARANTINE, RUN_INFO, SITE_COLUMNS, SITES, WORK_CRS
from omw_sites.store import _hash
from omw_sites.store.base import (
    API_KEYS,
    API_KEYS_COLUMNS,
    HISTORY,
    HISTORY_COLUMNS,
    PROVENANCE,
    PROVENANCE_COLUMNS,
    RUN_INFO_COLUMNS,
    RUNS,
    RUNS_COLUMNS,
    SITE_RECORD_COLUMNS,
    Backend,
    StoreConflict,
    StoreError,
    empty_table,
    kind_of,
)

CURRENT = "ended_at IS NULL"
# the columns an update reads of every record, first in a new table's rows
LOOKUP_COLUMNS = ("site_id", "ended_at", "content_hash", "scores_hash", "teryt")
STATUSES = ("available", "reserved", "sold", "withdrawn")
# allowed moves of the status lifecycle; sold is final
TRANSITIONS = {
    "available": ("reserved", "sold", "withdrawn"),
    "reserved": ("available", "sold", "withdrawn"),
    "withdrawn": ("available",),
    "sold": (),
}
OFFER_FIELDS = ("price_pln_m2", "lease_pln_m2_year", "contact", "documents", "sez_status", "notes")
EDITABLE = ("status", "status_date", *OFFER_FIELDS)
# measured attributes whose change is a change of the site (history, content hash)
UNTRACKED = frozenset({"site_id", "derived_from"})
_HISTORY_SELECT = ", ".join(HISTORY_COLUMNS)
DEDUPE_OVERLAP = 0.8  # share of the smaller site covered by the other → the same land
# times an update is prepared again when another writer committed while it was prepared
APPLY_ATTEMPTS = 5
# An update may end at most this share of the current sites in its scope without
# --allow-mass-end: a wrongly labelled CRS or a partial dataset ends most of a gmina's
# sites at once, a real newer dataset a few per cent (splits, sales, plan changes).
MASS_END_SHARE = 0.2
# ... and always up to this many: in a small scope (a gmina with a dozen sites, a test
# store) a share says little, and a handful of ended records is quickly checked
MASS_END_FLOOR = 10


def check_mass_end(
    ending: int, current: int, scope: str, allowed: bool, target: str = "the store"
) -> None:
    """Refuse (:class:`InventoryError`, before anything is written) an update that would
    end more than :data:`MASS_END_SHARE` of the ``current`` sites in its scope, and more
    than :data:`MASS_END_FLOOR`, unless ``allowed``."""
    if allowed or ending <= max(MASS_END_SHARE * current, MASS_END_FLOOR):
        return
    msg = (
        f"this update would end {ending:,} of the {current:,} current sites in scope "
        f"{scope} of {target} ({ending / max(current, 1):.0%}, more than "
        f"{MASS_END_SHARE:.0%}); nothing was written. Check the input (a wrong CRS, a "
        "partial dataset?) or pass --allow-mass-end if the sites are really gone"
    )
    raise InventoryError(msg, "allow_mass_end", status=409)


def utc_now() -> str:
    """Now as the store's timestamp text (ISO-8601 UTC, microseconds, ``Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class InventoryError(ValueError):
    """An edit or update the inventory refuses (unknown site, bad status move, bad value)."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    url: HttpUrl
    public: bool = True


class SiteEdit(BaseModel):
    """What a person may change on a site record (CLI ``site …``, API ``PATCH``)."""

    model_config = ConfigDict(extra="forbid")
    status: str | None = None
    status_date: dt.date | None = None
    price_pln_m2: float | None = Field(default=None, ge=0, le=1_000_000)
    lease_pln_m2_year: float | None = Field(default=None, ge=0, le=100_000)
    contact: str | None = Field(default=None, max_length=500)
    documents: list[Document] | None = Field(default=None, max_length=100)
    sez_status: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=4000)

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str | None) -> str | None:
        if value is not None and value not in STATUSES:
            msg = f"unknown status {value!r}; one of {', '.join(STATUSES)}"
            raise ValueError(msg)
        return value


@dataclass
class ChangeReport:
    """What one ingest/update did to the inventory."""

    run_id: str
    kind: str
    scope: str
    added: int = 0
    changed: int = 0
    ended: int = 0
    unchanged: int = 0
    rescored: int = 0
    merged: list[tuple[str, str, str]] = field(default_factory=list)  # (kept, ended, why)
    fields_changed: dict[str, int] = field(default_factory=dict)
    kept_ended: int = 0  # sites of the run that a person had ended (DELETE): left ended

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "scope": self.scope,
            "added": self.added,
            "changed": self.changed,
            "ended": self.ended,
            "unchanged": self.unchanged,
            "rescored": self.rescored,
            "merged": len(self.merged),
            "fields_changed": self.fields_changed,
            "kept_ended": self.kept_ended,
        }


# --------------------------------------------------------------------------- helpers
def tracked_columns(columns: Iterable[str]) -> list[str]:
    """The measured site attributes among ``columns`` (history and content hash cover them)."""
    return [c for c in columns if c in SITE_COLUMNS and c not in UNTRACKED]


def derived_columns(columns: Iterable[str]) -> list[str]:
    """Scores, ranks and explanations: refreshed by every run, not kept in history."""
    skip = set(SITE_COLUMNS) | set(SITE_RECORD_COLUMNS) | {"geometry"}
    return [c for c in columns if c not in skip]


def content_hash(
    sites: gpd.GeoDataFrame, columns: Sequence[str], geometry: bool = True
) -> np.ndarray:
    """A 64-bit hash per site of ``columns`` (floats to 6 decimals, integers and booleans
    by value, text by its SipHash, NaN/NULL as one value) and, with ``geometry``, of its
    shape.

    Each column gives one 64-bit word per site, absorbed in column order by xor, an odd
    multiply and an xor-shift — each step a bijection, so a change in any one column
    always changes the hash. The words of text, integer and boolean columns and of the
    shape are made with numpy and Arrow; the float columns' words and the absorbing are
    done in C (:mod:`omw_sites.store._hash`), a block of rows at a time. From
    ``HASH_THREADS_FROM`` rows, two threads make the words and then absorb one half of
    the rows each (the C loop releases the GIL)."""
    n = len(sites)
    out = np.full(n, 0x2545F4914F6CDD1D, dtype=np.uint64)
    jobs: list[Callable[[], tuple[str, np.ndarray]]] = [partial(_words, sites[c]) for c in columns]
    if geometry:
        jobs.append(lambda: ("u8", geometry_hash(sites.geometry.to_numpy())))
    if n < HASH_THREADS_FROM:
        _hash.absorb(out, [job() for job in jobs])
        return _mix(out).view(np.int64)
    halves = (slice(0, n // 2), slice(n // 2, n))
    with ThreadPoolExecutor(2, thread_name_prefix="omw-hash") as pool:
        # a group of columns at a time: the words of ~100 columns of 1M rows need not
        # all be held at once
        for at in range(0, len(jobs), HASH_GROUP):
            words = list(pool.map(lambda job: job(), jobs[at : at + HASH_GROUP]))
            list(pool.map(partial(_absorb_rows, out, words), halves))
    return _mix(out).view(np.int64)


def _absorb_rows(out: np.ndarray, words: list[tuple[str, np.ndarray]], rows: slice) -> None:
    _hash.absorb(out[rows], [(kind, w[rows]) for kind, w in words])


HASH_THREADS_FROM = 200_000  # rows from which columns are hashed in two threads
HASH_GROUP = 16  # columns whose words are made before they are absorbed


_NULL = np.uint64(0x6A09E667F3BCC909)  # NaN / NULL of any kind
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic; ``h`` is reused)."""
    tmp = np.empty_like(h)
    for shift, mult in ((30, _M1), (27, _M2), (31, None)):
        np.right_shift(h, np.uint64(shift), out=tmp)
        np.bitwise_xor(h, tmp, out=h)
        if mult is not None:
            np.multiply(h, mult, out=h)
    return h


def _words(s: pd.Series) -> tuple[str, np.ndarray]:
    """A site column as :func:`_hash.absorb` takes it: floats as they are ("f8": the C
    code takes them in whole millionths), integers and booleans by value, anything else
    the SipHash of its text (pandas' key) — ("u8", one 64-bit word per value)."""
    if pd.api.types.is_float_dtype(s):
        return "f8", np.ascontiguousarray(s.to_numpy(dtype="float64", na_value=np.nan))
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_integer_dtype(s):
        na = s.isna().to_numpy()
        if not na.any():
            return "u8", s.to_numpy().astype(np.int64).view(np.uint64)
        words = s.to_numpy(dtype="float64", na_value=0).astype(np.int64).view(np.uint64)
        words[na] = _NULL
        return "u8", words
    if isinstance(s.dtype, pd.CategoricalDtype):
        # text already dictionary-encoded (the GeoPackage writer's slices): each
        # distinct value hashed once, the same words as for the plain text
        codes = s.cat.codes.to_numpy()
        if len(s.cat.categories) == 0:
            return "u8", np.full(len(s), _NULL, dtype=np.uint64)
        words = _text_hash(_arrow_text(pd.Series(s.cat.categories)))[np.maximum(codes, 0)]
        words[codes < 0] = _NULL
        return "u8", words
    return "u8", _text_hash(_arrow_text(s))


def _arrow_text(s: pd.Series) -> pa.Array:
    """A column as one Arrow large_string array (non-text values by their ``str``)."""
    if isinstance(s.dtype, pd.StringDtype) or str(s.dtype) in ("str", "string"):
        arr = pa.array(s.array, type=pa.large_string(), from_pandas=True)
    else:
        values = s.astype(object).where(s.notna(), None).to_numpy()
        arr = pa.array(
            [v if v is None or isinstance(v, str) else str(v) for v in values],
            type=pa.large_string(),
        )
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _siphash(words: pa.Array) -> np.ndarray:
    values = words.to_numpy(zero_copy_only=False)
    out = pd.util.hash_array(values, categorize=False)
    if words.null_count:
        out[np.asarray(words.is_null())] = _NULL
    return out


def _text_hash(arr: pa.Array) -> np.ndarray:
    """SipHash of each string (NULL apart). A column of few distinct values (judged on a
    sample) is hashed through its Arrow dictionary: each distinct value once."""
    sample = arr.slice(0, 2048)
    if len(arr) <= 4 * len(sample) or pc.count_distinct(sample).as_py() * 4 > len(sample):
        return _siphash(arr)
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    return _siphash(enc.dictionary)[np.asarray(enc.indices).astype(np.int64)]


LAYER_DIGESTS = "layer_digests"  # run_info key: reference layer name → layer_digest


def layer_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a layer: its column names and kinds, and every row's
    :func:`content_hash` in row order (floats to 6 decimals, shapes to the millimetre,
    as for sites)."""
    geometry = isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name in frame
    geom_col = frame.geometry.name if geometry else None
    cols = [str(c) for c in frame.columns if c != geom_col]
    digest = hashlib.sha256(json.dumps([[c, kind_of(frame[c])] for c in cols]).encode())
    digest.update(f"geometry={geom_col}".encode())
    digest.update(content_hash(frame, cols, geometry=geometry).tobytes())
    return digest.hexdigest()


def geometry_hash(geoms: np.ndarray) -> np.ndarray:
    """A 64-bit hash per geometry of its coordinates rounded to the millimetre, in order,
    and its structure (vertices and parts) — equal shapes hash equal, any moved vertex
    or reordered ring changes it. Vectorised: no WKB round trip."""
    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):  # an empty layer (real downloads have them)
        return np.zeros(0, dtype=np.uint64)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    coords *= 1000.0  # whole millimetres, as float bits (-0.0 made 0.0)
    np.rint(coords, out=coords)
    coords += 0.0
    bits = coords.view(np.uint64)
    h = _mix(bits[:, 0] * np.uint64(0x9E3779B97F4A7C15) ^ bits[:, 1])
    counts = np.bincount(owner, minlength=len(geoms))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(owner)) - np.repeat(starts, counts)
    h = h * (np.uint64(2) * position.astype(np.uint64) + np.uint64(1))  # order-sensitive
    out = np.zeros(len(geoms), dtype=np.uint64)
    if len(h):  # owner is sorted: one reduceat sums each geometry's run (wrapping mod 2**64)
        has = counts > 0
        out[has] = np.add.reduceat(h, starts[has])
    parts = shapely.get_num_geometries(geoms).astype(np.uint64)
    return out ^ _mix(counts.astype(np.uint64)) ^ (parts << np.uint64(32))


def _positions(values: pa.Array, among: pd.Series) -> np.ndarray:
    """Position of each of ``values`` in ``among`` (-1 when absent): Arrow's hash join."""
    found = pc.index_in(values, value_set=pa.array(among.astype(str), type=pa.large_string()))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _hashes(stored: pd.Series) -> np.ndarray:
    """Stored hashes as int64; anything else (NULL, an older text hash) never matches."""
    values = pd.to_numeric(stored, errors="coerce")
    out = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)
    ok = values.notna().to_numpy()
    if values.dtype.kind in "iu":
        out[ok] = values[ok].to_numpy(dtype=np.int64)
    # a float column (NULLs read through a lossy path) cannot hold 64-bit hashes exactly:
    # leave the sentinel, so those records are rewritten rather than wrongly kept
    return out


def _rounded(geoms: np.ndarray) -> np.ndarray:
    """Geometries with coordinates rounded to the millimetre (float noise is no change)."""
    return shapely.transform(geoms, lambda c: np.round(c, 3))


def _isin(values: Any, among: Any) -> np.ndarray:
    """``values`` found in ``among`` (hashed object comparison: fast on any string dtype)."""
    index = pd.Index(np.asarray(values, dtype=object), dtype=object)
    return index.isin(np.asarray(among, dtype=object))


def _as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return format(float(value), ".10g")
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _differs(old: pd.Series, new: pd.Series) -> np.ndarray:
    """Element-wise 'value changed', NaN == NaN, floats to 1e-9."""
    if pd.api.types.is_float_dtype(old) and pd.api.types.is_float_dtype(new):
        a, b = old.to_numpy(dtype=float), new.to_numpy(dtype=float)
        both_nan = np.isnan(a) & np.isnan(b)
        return ~both_nan & ~(np.abs(a - b) <= 1e-9)
    a = old.astype(object).where(old.notna(), None).to_numpy()
    b = new.astype(object).where(new.notna(), None).to_numpy()
    if pd.api.types.is_bool_dtype(new) or pd.api.types.is_bool_dtype(old):
        a = np.array([None if v is None else bool(v) for v in a], dtype=object)
        b = np.array([None if v is None else bool(v) for v in b], dtype=object)
    return a != b


def _multi(sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Sites in EPSG:2180 with every polygon as a MultiPolygon (one geometry type)."""
    if sites.crs is None:
        msg = "the site table has no CRS; refusing to store it"
        raise StoreError(msg)
    if sites.crs.to_epsg() != 2180:
        sites = sites.to_crs(WORK_CRS)
    geoms = sites.geometry.to_numpy()
    single = shapely.get_type_id(geoms) == 3
    if single.any():
        geoms = geoms.copy()
        geoms[single] = shapely.multipolygons(geoms[single].reshape(-1, 1).tolist())
        sites = sites.set_geometry(gpd.GeoSeries(geoms, index=sites.index, crs=sites.crs))
    return sites


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _history_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_table(HISTORY_COLUMNS)
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def _twice(sites: pd.DataFrame) -> None:
    dup = sites.loc[sites["site_id"].duplicated(), "site_id"].iloc[0]
    msg = f"the update holds site {dup!r} twice; site IDs must be unique"
    raise StoreError(msg)


class _LazyFids:
    """fid of each current site ID, built on first use (only splits, merges and
    duplicates need it: a plain update does not pay for a 1M-entry index)."""

    def __init__(self, current: pd.DataFrame) -> None:
        self._current = current
        self._series: pd.Series | None = None

    @property
    def series(self) -> pd.Series:
        if self._series is None:
            c = self._current
            self._series = pd.Series(c.index.to_numpy(), index=c["site_id"].to_numpy())
        return self._series


def _merge_rescored(
    parts: list[pd.DataFrame], derived: pd.DataFrame
) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Fold the new scores of changed sites into their field updates, so each changed and
    rescored site is rewritten once; returns the update groups and the rescored sites
    that did not change otherwise."""
    if not len(derived) or not parts:
        return parts, derived
    scored = derived.set_index("fid")
    out: list[pd.DataFrame] = []
    folded: list[np.ndarray] = []
    for part in parts:
        hit = np.isin(part["fid"].to_numpy(), scored.index.to_numpy())
        if hit.any():
            rows = part[hit].reset_index(drop=True)
            extra = scored.loc[rows["fid"].to_numpy()].reset_index(drop=True)
            merged = pd.concat([rows, extra.drop(columns=rows.columns, errors="ignore")], axis=1)
            out.append(merged)
            folded.append(rows["fid"].to_numpy())
        if (~hit).any():
            out.append(part[~hit].reset_index(drop=True))
    done = np.concatenate(folded) if folded else np.zeros(0, np.int64)
    rest = derived[~np.isin(derived["fid"].to_numpy(), done)].reset_index(drop=True)
    return out, rest


def _in_list(values: Iterable[int]) -> str:
    """``fid IN (…)`` list of integers (internal ids, never user text)."""
    return ", ".join(str(int(v)) for v in values)


@dataclass
class _Job:
    """One :meth:`Inventory.apply`'s input, prepared once for all its attempts."""

    sites: gpd.GeoDataFrame
    ids: pa.Array
    tracked: list[str]
    scored: list[str]
    in_scope: np.ndarray
    scope: list[str] | None
    scope_text: str
    reference: Mapping[str, gpd.GeoDataFrame] | None
    info: dict[str, Any]
    digests: dict[str, str]
    quarantine: pd.DataFrame | None
    run_id: str
    now: str
    source: str
    dedupe_overlap: float
    allow_mass_end: bool
    hashed: gpd.GeoDataFrame | None = None  # ``sites`` with their hashes, once computed

    def hashes(self, rows: gpd.GeoDataFrame) -> dict[str, np.ndarray]:
        return {
            "content_hash": content_hash(rows, self.tracked),
            "scores_hash": content_hash(rows, self.scored, geometry=False),
        }


# --------------------------------------------------------------------------- inventory
class Inventory:
    """The inventory on one backend; see the module docstring."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def target(self) -> str:
        return self.backend.target

    # ---------------------------------------------------------------- reading
    def has_sites(self) -> bool:
        """True when the store holds a site table (then updates are incremental); False
        for a store not created yet. A store that cannot be read is an error, never "no
        sites" (a first load would replace it)."""
        try:
            return SITES in self.backend.list_layers()
        except StoreError:
            if not self.backend.exists():  # raises if the store cannot be read at all
                return False
            raise

    def read_sites(self, include_ended: bool = False, where: str | None = None, **kwargs: Any):
        """Site records (current ones unless ``include_ended``), EPSG:2180."""
        cond = [] if include_ended else [CURRENT]
        if where:
            cond.append(f"({where})")
        return self.backend.read_layer(SITES, where=" AND ".join(cond) or None, **kwargs)

    def record(self, site_id: str, include_ended: bool = False) -> pd.Series:
        """The current record of one site (the latest one with ``include_ended``)."""
        rows = self.backend.query(
            f"SELECT fid, ended_at FROM {SITES} WHERE site_id = ? ORDER BY created_at DESC",
            (site_id,),
        )
        if not include_ended:
            rows = rows[rows["ended_at"].isna()]
        if rows.empty:
            msg = f"no {'' if include_ended else 'current '}site {site_id!r} in {self.target}"
            raise InventoryError(msg, "site_id", status=404)
        fid = int(rows["fid"].iloc[0])
        frame = self.backend.read_layer(SITES, where=f"fid = {fid}", fid_as_index=True)
        return frame.iloc[0]

    def history(self, site_id: str) -> pd.DataFrame:
        """Every change of one site, oldest first (creation, fields, status, offer, end)."""
        recs = self.backend.query(
            f"SELECT created_at, ended_at, ended_reason, measured_run, derived_from "
            f"FROM {SITES} WHERE site_id = ? ORDER BY created_at",
            (site_id,),
        )
        if recs.empty:
            msg = f"no site {site_id!r} in {self.target}"
            raise InventoryError(msg, "site_id", status=404)
        rows = self.backend.query(
            f"SELECT {_HISTORY_SELECT} FROM {HISTORY} WHERE site_id = ? ORDER BY changed_at",
            (site_id,),
        )
        created = [
            {
                "site_id": site_id,
                "field": "",
                "old_value": None,
                "new_value": f"derived from {r.derived_from}" if r.derived_from else None,
                "changed_at": r.created_at,
                "source": f"run:{r.measured_run}",
                "run_id": r.measured_run,
                "kind": "created",
            }
            for r in recs.itertuples()
            if not ((rows["kind"] == "created") & (rows["changed_at"] == r.created_at)).any()
        ]
        out = pd.concat([_history_rows(created), rows], ignore_index=True)
        return out.sort_values("changed_at", kind="stable").reset_index(drop=True)

    def changed_since(self, since: str) -> pd.DataFrame:
        """Site records created, changed or ended after ``since`` (ISO timestamp), oldest
        change first, with the kind of change and the fields that changed."""
        since = normalise_timestamp(since)
        recs = self.backend.query(
            f"SELECT site_id, teryt, created_at, updated_at, ended_at, ended_reason, status "
            f"FROM {SITES} WHERE updated_at > ? ORDER BY updated_at",
            (since,),
        )
        kind = np.where(
            recs["ended_at"].notna(),
            "ended",
            np.where(recs["created_at"] > since, "created", "changed"),
        )
        recs.insert(1, "change", kind)
        hist = self.backend.query(
            f"SELECT site_id, field FROM {HISTORY} WHERE changed_at > ? AND field <> ''",
            (since,),
        )
        fields = hist.groupby("site_id")["field"].agg(lambda f: ",".join(sorted(set(f))))
        recs["fields"] = [fields.get(sid, "") for sid in recs["site_id"]]
        return recs.reset_index(drop=True)

    def provenance(self, site_id: str) -> pd.DataFrame:
        """Per attribute of one site: where its value came from (source datasets, data
        date, run or user, when)."""
        rec = self.record(site_id)
        runs = self.backend.query(f"SELECT run_id, created FROM {RUNS}")
        run_time = dict(zip(runs["run_id"], runs["created"], strict=True))
        prov = self.backend.query(
            f"SELECT column_name, sources, data_date, run_id FROM {PROVENANCE}"
        )
        prov = prov.set_index(["run_id", "column_name"])
        hist = self.history(site_id)
        last = hist[hist["field"] != ""].groupby("field").tail(1).set_index("field")
        rows = []
        for col in [*tracked_columns(rec.index), *EDITABLE]:
            if col in last.index:
                h = last.loc[col]
                run = h["run_id"] or ""
                by, when = h["source"], h["changed_at"]
            else:
                run = rec["measured_run"] if col not in EDITABLE else ""
                by, when = (f"run:{run}" if run else "inventory"), run_time.get(run, "")
            src = prov.loc[(run, col)] if (run, col) in prov.index else None
            rows.append(
                {
                    "field": col,
                    "value": _as_text(rec.get(col)),
                    "sources": "" if src is None else src["sources"],
                    "data_date": "" if src is None else src["data_date"],
                    "set_by": by,
                    "run_id": run,
                    "set_at": when,
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """Counts for ``db status``: current/ended records, by status and gmina, last runs,
        and the site IDs with more than one current record (a store from before they were
        prevented). A store that does not exist or cannot be reached is an error."""
        if not self.has_sites():
            if not self.backend.exists():
                msg = (
                    f"no inventory at {self.target}; run `omw-sites run` or "
                    "`omw-sites db init` first"
                )
                raise StoreError(msg)
            return {"store": self.target, "sites": 0, "ended": 0, "runs": []}
        by = self.backend.query(
            f"SELECT status, ended_at IS NULL AS current, count(*) AS n FROM {SITES} "
            "GROUP BY status, ended_at IS NULL"
        )
        by["current"] = by["current"].astype(bool)
        cur = by[by["current"]]
        gminy = self.backend.query(
            f"SELECT teryt, gmina, count(*) AS n FROM {SITES} WHERE {CURRENT} "
            "GROUP BY teryt, gmina ORDER BY teryt"
        )
        runs = self.backend.query(
            f"SELECT run_id, created, kind, scope, added, changed, ended, unchanged, merged "
            f"FROM {RUNS} ORDER BY created DESC"
        )
        hist = self.backend.query(f"SELECT count(*) AS n FROM {HISTORY}")
        return {
            "store": self.target,
            "sites": int(cur["n"].sum()),
            "ended": int(by.loc[~by["current"], "n"].sum()),
            "by_status": {str(k): int(v) for k, v in zip(cur["status"], cur["n"], strict=True)},
            "by_gmina": gminy.to_dict("records"),
            "history_rows": int(hist["n"].iloc[0]),
            "runs": runs.head(10).to_dict("records"),
            "duplicate_current": self.duplicate_current_ids(),
        }

    def duplicate_current_ids(self) -> list[str]:
        """Site IDs with more than one current record: none in a store made or initialised
        since the unique index exists; an older store's are named by ``db status``/``init``
        until the extra records are ended."""
        if not self.has_sites():
            return []
        rows = self.backend.query(
            f"SELECT site_id FROM {SITES} WHERE {CURRENT} GROUP BY site_id "
            "HAVING count(*) > 1 ORDER BY site_id"
        )
        return [str(v) for v in rows["site_id"]]

    # ---------------------------------------------------------------- writing
    def init(self) -> None:
        """Create an empty inventory (bookkeeping tables) if there is none."""
        self.backend.init()

    def apply(
        self,
        sites: gpd.GeoDataFrame,
        reference: Mapping[str, gpd.GeoDataFrame] | None = None,
        run_info: Mapping[str, Any] | None = None,
        quarantine: pd.DataFrame | None = None,
        scope: Sequence[str] | None = None,
        source: str | None = None,
        now: str | None = None,
        dedupe_overlap: float = DEDUPE_OVERLAP,
        allow_mass_end: bool = False,
    ) -> ChangeReport:
        """Bring the inventory up to date with freshly measured and scored ``sites``.

        Parameters
        ----------
        sites : the run's sites (site_id, measured columns, scores), EPSG:2180
        reference : reference layers to replace (junctions, utilities, …)
        run_info : the run's metadata (run_id, profiles, data dates, columns …)
        quarantine : records the ingest refused
        scope : gmina TERYT codes this update covers; sites of other gminy are neither
            added, changed nor ended (their scores and ranks are refreshed). ``None``:
            the whole region.
        source : who/what made the change (``run:<id>`` by default)
        now : timestamp of the change (default: now)
        dedupe_overlap : share of the smaller of two sites the other must cover for them
            to count as the same land
        allow_mass_end : write even an update that would end more than
            :data:`MASS_END_SHARE` of the current sites in scope (see
            :func:`check_mass_end`); without it such an update is refused before writing

        Everything happens in one transaction; on any error the store is as before. The
        update is prepared from the store as read, and its transaction commits only if no
        other writer changed the set of current records meanwhile (an update, a first
        load, an end) nor edited a record this update ends (see :func:`_unchanged_since`);
        otherwise it is prepared again from the new state, up to :data:`APPLY_ATTEMPTS`
        times. Edits of other records land beside it. A first load replaces the store
        only if nothing was written to it since it was found without sites.
        """
        info = dict(run_info or {})
        # a digest of each reference layer: an update leaves one that did not change
        # alone instead of rewriting it (1M parcels: ≈ 15 s)
        digests = {name: layer_digest(gdf) for name, gdf in (reference or {}).items()}
        info[LAYER_DIGESTS] = digests
        run_id = str(info.get("run_id") or uuid.uuid4().hex[:12])
        sites = _multi(sites).reset_index(drop=True)
        job = _Job(
            sites=sites,
            ids=pa.array(sites["site_id"].astype(str), type=pa.large_string()),
            tracked=tracked_columns(sites.columns),
            scored=derived_columns(sites.columns),
            in_scope=np.ones(len(sites), bool)
            if not scope
            else np.asarray(sites["teryt"].isin(list(scope))),
            scope=list(scope) if scope else None,
            scope_text="all" if not scope else ",".join(sorted(set(scope))),
            reference=reference,
            info=info,
            digests=digests,
            quarantine=quarantine,
            run_id=run_id,
            now=now or utc_now(),
            source=source or f"run:{run_id}",
            dedupe_overlap=dedupe_overlap,
            allow_mass_end=allow_mass_end,
        )
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                version = self.backend.version()
                if not self.has_sites() or self._legacy():
                    return self._load(job, version)
                return self._update(job)
            except StoreConflict as exc:
                if attempt == APPLY_ATTEMPTS:
                    msg = (
                        f"the update of {self.target} was prepared {attempt} times and "
                        "each time another writer committed first; nothing was written, "
                        "run it again"
                    )
                    raise StoreError(msg) from exc
                time.sleep(random.uniform(0.02, 0.2) * attempt)  # let the other one finish
        raise AssertionError("unreachable")  # pragma: no cover

    def _load(self, job: _Job, version: int) -> ChangeReport:
        """A first load (the store has no sites): the in-scope sites replace the store in
        one step, if the store is still at ``version`` then."""
        report = ChangeReport(job.run_id, "load", job.scope_text)
        sites, ids = job.sites, job.ids
        new = sites[job.in_scope].reset_index(drop=True)
        report.added = len(new)
        # IDs are checked for repeats on another thread while the load starts: the
        # backend asks before it replaces the store
        with ThreadPoolExecutor(1, thread_name_prefix="omw-unique") as pool:
            unique = pool.submit(lambda: len(pc.unique(ids)) == len(ids))

            def check() -> None:
                if not unique.result():
                    _twice(sites)

            # the backend hashes slice by slice as it writes (GeoPackage: while the
            # previous slices are inserted)
            self.backend.bulk_load(
                self._new_records(new, job.now, job.run_id),
                self._load_layers(
                    new, job.reference, job.info, job.quarantine, report, job.now, job.source
                ),
                derive=job.hashes,
                check=check,
                expect_version=version,
            )
        return report

    def _update(self, job: _Job) -> ChangeReport:
        """An incremental update, prepared from the store as read and written in one
        transaction that commits only if nothing it depends on changed meanwhile."""
        run_id, now, source, scope, scope_text = (
            job.run_id,
            job.now,
            job.source,
            job.scope,
            job.scope_text,
        )
        tracked, in_scope = job.tracked, job.in_scope
        report = ChangeReport(run_id, "update", scope_text)
        self.backend.init()  # bookkeeping tables added since the store was made
        # what other writers must not have changed when this update commits, read before
        # anything else (see _unchanged_since)
        shape = _store_shape(self.backend.query)
        # the current records are read (GDAL / the database, without the GIL) while this
        # thread hashes the incoming sites (once: a retry reuses the hashes)
        with ThreadPoolExecutor(1, thread_name_prefix="omw-read-current") as reader:
            reading = reader.submit(self._current, job.ids, bool(scope))
            if job.hashed is None:
                job.hashed = job.sites.assign(**job.hashes(job.sites))
        sites = job.hashed
        table_cols, current, pos = reading.result()
        # one hashed lookup: where each incoming site sits among the current records
        known = pos >= 0
        # an ID given twice: two rows found at one current record, or repeated among the
        # new ones (few, compared directly)
        if np.bincount(pos[known], minlength=1).max(initial=0) > 1:
            _twice(sites)
        if sites.loc[~known, "site_id"].duplicated().any():
            _twice(sites)
        current_fid = _LazyFids(current)
        fids = np.where(known, current.index.to_numpy()[np.maximum(pos, 0)], -1)
        adding = np.flatnonzero(~known & in_scope)  # usually few: take only those rows
        if len(adding):
            from omw_sites.store.lifecycle import user_ended_ids  # it imports this module

            # a site a person ended (DELETE through the API) stays ended although the
            # run still measures its land: it is not brought back as a new "available" site
            new_ids = sites["site_id"].iloc[adding].astype(str)
            withdrawn = user_ended_ids(self, new_ids)
            if withdrawn:
                adding = adding[~new_ids.isin(withdrawn).to_numpy()]
                report.kept_ended = len(withdrawn)
        new_sites = (sites.iloc[adding] if len(adding) else sites.iloc[:0]).reset_index(drop=True)
        same_rows = np.flatnonzero(known & in_scope)
        old_hash = _hashes(current["content_hash"])[pos[same_rows]]
        differs = sites["content_hash"].to_numpy()[same_rows] != old_hash
        changed_at = same_rows[differs]
        changed = sites[["site_id", *tracked, "content_hash", "geometry"]].iloc[changed_at]
        changed = changed.reset_index(drop=True)
        report.unchanged = int(len(same_rows) - differs.sum())
        seen = np.zeros(len(current), bool)
        seen[pos[known]] = True
        cur_in_scope = np.asarray(
            np.ones(len(current), bool) if not scope else current["teryt"].isin(list(scope))
        )
        gone = current[cur_in_scope & ~seen]

        history: list[dict[str, Any]] = []
        merged_away: dict[int, str] = {}
        if len(new_sites):
            report.merged = self._duplicates(new_sites, current, gone, job.dedupe_overlap)
            fid_of = current_fid.series.to_dict()
            for kept, old, why in report.merged:
                merged_away[int(fid_of[old])] = f"duplicate of {kept} ({why})"
        ended_fids = {int(f): f"not in the {scope_text} update of run {run_id}" for f in gone.index}
        ended_fids.update(merged_away)
        check_mass_end(
            len(ended_fids), int(cur_in_scope.sum()), scope_text, job.allow_mass_end, self.target
        )
        records = self._new_records(new_sites, now, run_id)
        if len(records):
            self._inherit(records, ended_fids, current_fid.series, report)
        report.added, report.ended = len(records), len(ended_fids)

        # every read happens before the write transaction (a GeoPackage writer may lock
        # readers out once its cache spills), then the transaction only writes
        new_cols = {c: kind_of(sites[c]) for c in sites.columns if c != "geometry"}
        updates: list[pd.DataFrame] = []
        if len(changed):
            parts, hist = self._changed_rows(
                changed, fids[changed_at], tracked, now, run_id, source, report
            )
            updates.extend(parts)
            history += hist
        derived = self._derived_rows(sites, fids, current, set(ended_fids), run_id)
        report.rescored = len(derived)
        updates, derived = _merge_rescored(updates, derived)
        if len(records):
            history += [
                {
                    "site_id": sid,
                    "field": "",
                    "old_value": None,
                    "new_value": f"derived from {d}" if d else None,
                    "changed_at": now,
                    "source": source,
                    "run_id": run_id,
                    "kind": "created",
                }
                for sid, d in zip(records["site_id"], records["derived_from"], strict=True)
            ]
        if ended_fids:
            updates.append(
                pd.DataFrame(
                    {
                        "fid": list(ended_fids),
                        "ended_at": now,
                        "ended_reason": list(ended_fids.values()),
                        "updated_at": now,
                    }
                )
            )
            ended_ids = current.loc[list(ended_fids), "site_id"]
            history += [
                {
                    "site_id": sid,
                    "field": "",
                    "old_value": None,
                    "new_value": why,
                    "changed_at": now,
                    "source": source,
                    "run_id": run_id,
                    "kind": "merged" if why.startswith("duplicate") else "ended",
                }
                for sid, why in zip(ended_ids, ended_fids.values(), strict=True)
            ]

        unchanged = self._unchanged_layers(job.digests)
        ending = current.loc[list(ended_fids), "updated_at"] if ended_fids else None
        with self.backend.transaction() as tx:
            _unchanged_since(tx, shape, ending, self.target)
            tx.add_columns(SITES, {c: k for c, k in new_cols.items() if c not in table_cols})
            for rows in updates:  # the ended records before the inserts below
                tx.update(SITES, "fid", rows)
            if len(derived):
                tx.update(SITES, "fid", derived)
            if len(records):
                tx.insert(SITES, records)
            tx.insert(HISTORY, _history_rows(history))
            self._record_run(tx, job.info, report, now, source)
            for name, gdf in (job.reference or {}).items():
                if name not in unchanged:
                    tx.replace(name, gdf)
            if job.quarantine is not None and len(job.quarantine.columns):
                tx.replace(QUARANTINE, pd.DataFrame(job.quarantine))
        return report

    def edit(
        self,
        site_id: str,
        changes: Mapping[str, Any],
        by: str,
        now: str | None = None,
        *,
        if_version: str | Iterable[str] | None = None,
        **options: Any,
    ) -> pd.Series:
        """Change offer details and/or the status of one current site; every changed field
        is a history row with ``user:<by>``. Returns the record as written.

        The lifecycle check and the write are one conditional statement; a record changed
        or replaced meanwhile gets the edit again, re-checked (see
        :func:`omw_sites.store.lifecycle.edit` for ``if_version`` and the other options).
        Raises :class:`InventoryError` naming the field for invalid values, a status move
        the lifecycle does not allow (409; ``sold`` is final), an ended site (409, naming
        its successors) or a version that differs from ``if_version`` (412)."""
        from omw_sites.store import lifecycle

        return lifecycle.edit(self, site_id, changes, by, now, if_version=if_version, **options)

    def set_status(
        self,
        site_id: str,
        status: str,
        by: str,
        date: str | None = None,
        *,
        if_version: str | Iterable[str] | None = None,
    ) -> pd.Series:
        """Move a site along the lifecycle (available → reserved → sold, or withdrawn)."""
        changes: dict[str, Any] = {"status": status}
        if date:
            changes["status_date"] = date
        return self.edit(site_id, changes, by, if_version=if_version)

    def end_site(
        self,
        site_id: str,
        by: str,
        reason: str | None = None,
        *,
        if_version: str | Iterable[str] | None = None,
        **options: Any,
    ) -> pd.Series:
        """End the current record of one site (kept, with the reason and a history row of
        kind ``ended``); see :func:`omw_sites.store.lifecycle.end_site`."""
        from omw_sites.store import lifecycle

        return lifecycle.end_site(self, site_id, by, reason, if_version=if_version, **options)

    @staticmethod
    def record_version(record: Mapping[str, Any] | pd.Series) -> str:
        """An opaque strong version of a current record: it changes whenever the record
        changes or is replaced (see :func:`omw_sites.store.lifecycle.record_version`)."""
        from omw_sites.store.lifecycle import record_version

        return record_version(record)

    # ---------------------------------------------------------------- API keys
    def add_api_key(self, name: str, teryt: Sequence[str]) -> str:
        """Create a write key for ``name`` limited to the gminy ``teryt`` (``["*"]``: the
        whole region). Returns the key — shown once; only its SHA-256 is stored."""
        name = str(name).strip()
        if not name:
            raise InventoryError("a key needs the name of who holds it", "name")
        codes = sorted(set(teryt))
        if not codes or any(c != "*" and not (c.isdigit() and len(c) == 7) for c in codes):
            msg = f"gminy must be 7-digit TERYT codes or '*', not {codes}"
            raise InventoryError(msg, "teryt")
        keys = self.api_keys()
        if (keys["name"] == name).any() and keys.loc[
            keys["name"] == name, "revoked_at"
        ].isna().any():
            raise InventoryError(f"an active key named {name!r} exists; revoke it first", "name")
        key = "omw_" + secrets.token_urlsafe(32)
        row = pd.DataFrame(
            [
                {
                    "name": name,
                    "key_hash": _key_hash(key),
                    "teryt": ",".join(codes),
                    "created_at": utc_now(),
                    "revoked_at": None,
                }
            ],
            columns=list(API_KEYS_COLUMNS),
        ).astype(object)
        self.backend.init()
        with self.backend.transaction() as tx:
            tx.insert(API_KEYS, row)
        return key

    def api_keys(self) -> pd.DataFrame:
        """Every key ever made (name, gminy, created, revoked) — hashes, not keys."""
        return self._existing(API_KEYS, API_KEYS_COLUMNS)

    def revoke_api_key(self, name: str) -> int:
        """Revoke the active key(s) of ``name``; returns how many."""
        keys = self.api_keys()
        active = keys[(keys["name"] == name) & keys["revoked_at"].isna()]
        if active.empty:
            raise InventoryError(f"no active key named {name!r}", "name", status=404)
        rows = pd.DataFrame({"key_hash": active["key_hash"].to_numpy(), "revoked_at": utc_now()})
        with self.backend.transaction() as tx:
            tx.update(API_KEYS, "key_hash", rows.astype(object))
        return len(active)

    def authorise(self, key: str | None) -> tuple[str, frozenset[str]] | None:
        """(holder, gminy) of an active key, or None for a missing/unknown/revoked key."""
        if not key:
            return None
        digest = _key_hash(key)
        keys = self.api_keys()
        for row in keys[keys["revoked_at"].isna()].itertuples():
            if hmac.compare_digest(str(row.key_hash), digest):
                return str(row.name), frozenset(str(row.teryt).split(","))
        return None

    # ---------------------------------------------------------------- internals
    def _current(
        self, ids: pa.Array, with_gmina: bool
    ) -> tuple[set[str], pd.DataFrame, np.ndarray]:
        """The site table's columns; ID, hashes (and gmina) of its current records (indexed
        by fid); and where each of ``ids`` sits among them (-1: not there)."""
        table_cols = set(self.backend.columns(SITES))
        wanted = [
            "site_id",
            *(["teryt"] if with_gmina else []),
            "content_hash",
            "scores_hash",
            "updated_at",  # of the records an update ends (see _unchanged_since)
        ]
        current = self.backend.read_layer(
            SITES,
            columns=[c for c in wanted if c in table_cols],
            where=CURRENT,
            read_geometry=False,
            fid_as_index=True,
        )
        if "scores_hash" not in current.columns:  # a store from before scores were hashed
            current["scores_hash"] = None
        if "updated_at" not in current.columns:
            current["updated_at"] = None
        return table_cols, current, _positions(ids, current["site_id"])

    def _new_records(self, new: gpd.GeoDataFrame, now: str, run_id: str) -> gpd.GeoDataFrame:
        out = new.copy(deep=False)  # new columns only: the measured ones are shared
        n = len(out)
        for name, kind in SITE_RECORD_COLUMNS.items():
            if name in out.columns:
                if kind == "text" and not pd.api.types.is_string_dtype(out[name]):
                    out[name] = out[name].astype(object)
                continue
            out[name] = pd.Series(
                np.full(n, np.nan) if kind == "float" else pa.nulls(n, pa.large_string()),
                index=out.index,
                dtype="float64" if kind == "float" else "str",
                copy=False,
            )
        fixed = {
            "status": "available",
            "status_date": now[:10],
            "created_at": now,
            "updated_at": now,
            "measured_run": run_id,
            "scored_run": run_id,
        }
        for name, value in fixed.items():
            out[name] = pd.array(pa.repeat(pa.scalar(value, pa.large_string()), n), dtype="str")
        if "derived_from" not in out.columns:
            out["derived_from"] = ""
        # what every update reads of all records first in the row: SQLite finds a
        # column by walking the record's header up to it (reading these four of 1M
        # records of ~110 columns: 0.7 s at the front, 1.9 s at the end of the row)
        front = [c for c in LOOKUP_COLUMNS if c in out.columns]
        return out[front + [c for c in out.columns if c not in front]]

    def _load_layers(self, new, reference, info, quarantine, report, now, source):
        layers: dict[str, Any] = dict(reference or {})
        layers[HISTORY] = empty_table(HISTORY_COLUMNS)
        layers[API_KEYS] = self._existing(API_KEYS, API_KEYS_COLUMNS)
        runs = _run_row(info, report, now, source)
        layers[RUNS] = runs
        layers[PROVENANCE] = _provenance_rows(info, report.run_id)
        layers[RUN_INFO] = _run_info_rows(info, report)
        if quarantine is not None and len(quarantine.columns):
            layers[QUARANTINE] = pd.DataFrame(quarantine)
        return layers

    def _unchanged_layers(self, digests: Mapping[str, str]) -> set[str]:
        """Reference layers the store holds with the same digest as the latest run
        recorded (see :func:`layer_digest`)."""
        if RUN_INFO not in (have := set(self.backend.list_layers())):
            return set()
        info = self.backend.read_layer(RUN_INFO, read_geometry=False)
        row = info.loc[info["key"] == LAYER_DIGESTS, "value"]
        try:
            stored = json.loads(row.iloc[0]) if len(row) else {}
        except (TypeError, ValueError):
            return set()
        if not isinstance(stored, dict):
            return set()
        return {n for n, d in digests.items() if n in have and stored.get(n) == d}

    def _legacy(self) -> bool:
        """A site table written before the inventory existed (no record columns): the
        first run replaces it with a loaded inventory (it has no history to keep)."""
        return "ended_at" not in self.backend.columns(SITES)

    def _existing(self, table: str, columns: Mapping[str, str]) -> pd.DataFrame:
        """Rows of a bookkeeping table the store already holds (kept over a first load);
        none if the store or the table does not exist. A store that cannot be read is an
        error: a first load must not drop the API keys it could not read."""
        try:
            layers = self.backend.list_layers()
        except StoreError:
            if not self.backend.exists():  # raises if the store cannot be read at all
                return empty_table(columns)
            raise
        if table in layers:
            return pd.DataFrame(self.backend.read_layer(table, read_geometry=False))
        return empty_table(columns)

    def _record_run(self, tx, info, report, now, source) -> None:
        tx.insert(RUNS, _run_row(info, report, now, source))
        tx.insert(PROVENANCE, _provenance_rows(info, report.run_id))
        tx.replace(RUN_INFO, _run_info_rows(info, report))

    def _changed_rows(self, changed, fids, tracked, now, run_id, source, report):
        """Update rows for the changed sites (at ``fids``) and one history row per changed
        field."""
        old = self.backend.read_layer(
            SITES, columns=tracked, where=f"fid IN ({_in_list(fids)})", fid_as_index=True
        ).loc[fids]
        new = changed.set_index(pd.Index(fids))
        history: list[dict[str, Any]] = []
        changed_cols: dict[str, np.ndarray] = {}
        for col in [*tracked, "geometry"]:
            if col == "geometry":
                a = _rounded(old.geometry.to_numpy())
                b = _rounded(new.geometry.to_numpy())
                diff = ~shapely.equals_exact(a, b, tolerance=0.0)
                olds = shapely.to_wkt(a[diff], rounding_precision=2).tolist()
                news = shapely.to_wkt(b[diff], rounding_precision=2).tolist()
            else:
                diff = _differs(old[col], new[col])
                olds = [_as_text(v) for v in old[col].to_numpy()[diff].tolist()]
                news = [_as_text(v) for v in new[col].to_numpy()[diff].tolist()]
            if not diff.any():
                continue
            changed_cols[col] = np.asarray(diff, dtype=bool)
            report.fields_changed[col] = int(diff.sum())
            for sid, o, n in zip(new["site_id"].to_numpy()[diff], olds, news, strict=True):
                history.append(
                    {
                        "site_id": sid,
                        "field": col,
                        "old_value": o,
                        "new_value": n,
                        "changed_at": now,
                        "source": source,
                        "run_id": run_id,
                        "kind": "changed",
                    }
                )
        report.changed = len(changed)
        # each changed site rewrites only the fields that changed (the geometry, and the
        # spatial index with it, only where the shape moved): the rows are grouped by
        # which fields changed, one UPDATE statement per group
        names = list(changed_cols)
        if names:
            mask = np.column_stack([changed_cols[c] for c in names])
            patterns, group = np.unique(mask, axis=0, return_inverse=True)
        else:
            patterns, group = np.zeros((1, 0), bool), np.zeros(len(new), np.int64)
        group = np.asarray(group).ravel()
        out = []
        for g, pattern in enumerate(patterns):
            take = group == g
            cols = [c for c, on in zip(names, pattern, strict=True) if on]
            attrs = [c for c in cols if c != "geometry"]
            part = pd.DataFrame(new.loc[take, [*attrs, "content_hash"]]).copy()
            part.insert(0, "fid", fids[take])
            part["updated_at"] = now
            part["measured_run"] = run_id
            if "geometry" in cols:
                part["geometry"] = new.geometry.to_numpy()[take]
                part = gpd.GeoDataFrame(part, geometry="geometry", crs=new.crs)
            out.append(part.reset_index(drop=True))
        return out, history

    def _derived_rows(self, sites, fids, current, ended: set[int], run_id: str):
        """Update rows for the scores/ranks/explanations of the current sites the run
        scored (in scope or not) whose scores hash differs from the stored one."""
        cols = derived_columns(sites.columns)
        if not cols:
            return pd.DataFrame()
        keep = fids >= 0
        if ended:
            keep &= ~np.isin(fids, np.fromiter(ended, dtype=np.int64))
        stored = _hashes(current["scores_hash"].reindex(fids[keep]))
        mine = sites.loc[keep, "scores_hash"].to_numpy()
        rows = np.flatnonzero(keep)[stored != mine]
        if not len(rows):
            return pd.DataFrame()
        out = sites[[*cols, "scores_hash"]].iloc[rows].reset_index(drop=True)
        out.insert(0, "fid", fids[rows])
        out["scored_run"] = run_id
        return out

    def _duplicates(self, new_sites, current, gone, threshold) -> list[tuple[str, str, str]]:
        """Current sites (not ended by this update) holding the same land as a new site:
        a shared parcel ID, or overlap ≥ ``threshold`` of the smaller one."""
        alive = current[~current.index.isin(gone.index)]
        if alive.empty:
            return []
        found: dict[str, tuple[str, str]] = {}
        if "parcel_ids" in new_sites.columns:
            cur_parcels = self.backend.read_layer(
                SITES, columns=["site_id", "parcel_ids"], where=CURRENT, read_geometry=False
            )
            cur_parcels = cur_parcels[_isin(cur_parcels["site_id"], alive["site_id"])]
            owner = (
                cur_parcels.assign(pid=cur_parcels["parcel_ids"].str.split(","))
                .explode("pid")
                .dropna(subset=["pid"])
                .drop_duplicates("pid")
                .set_index("pid")["site_id"]
            )
            mine = (
                new_sites[["site_id", "parcel_ids"]]
                .assign(pid=new_sites["parcel_ids"].str.split(","))
                .explode("pid")
            )
            hit = mine[_isin(mine["pid"], owner.index)]
            for sid, pid in zip(hit["site_id"], hit["pid"], strict=True):
                found.setdefault(owner[pid], (sid, f"shares parcel {pid}"))
        x0, y0, x1, y1 = new_sites.total_bounds
        near = self.backend.read_layer(
            SITES, columns=["site_id"], where=CURRENT, bbox=(x0, y0, x1, y1)
        )
        near = near[_isin(near["site_id"], alive["site_id"]) & ~_isin(near["site_id"], list(found))]
        if len(near):
            tree = shapely.STRtree(near.geometry.to_numpy())
            ia, ib = tree.query(new_sites.geometry.to_numpy(), predicate="intersects")
            if len(ia):
                a = new_sites.geometry.to_numpy()[ia]
                b = near.geometry.to_numpy()[ib]
                share = shapely.area(shapely.intersection(a, b)) / np.minimum(
                    shapely.area(a), shapely.area(b)
                )
                for i, j, s in zip(ia, ib, share, strict=True):
                    if s >= threshold:
                        found.setdefault(
                            near["site_id"].iloc[j],
                            (new_sites["site_id"].iloc[i], f"overlap {s:.0%}"),
                        )
        return [(kept, old, why) for old, (kept, why) in found.items()]

    def _inherit(self, records, ended_fids, current_fid, report) -> None:
        """New sites split/merged from (or duplicating) ended ones keep their offer and
        status, and list them in ``derived_from``."""
        if records.empty:
            return
        parents: dict[str, list[str]] = {}
        for kept, old, _ in report.merged:
            parents.setdefault(kept, []).append(old)
        ended_ids = set(current_fid[current_fid.isin(list(ended_fids))].index)
        for i, (sid, derived) in enumerate(
            zip(records["site_id"], records["derived_from"], strict=True)
        ):
            listed = [d for d in str(derived or "").split(",") if d]
            extra = [p for p in parents.get(sid, []) if p not in listed]
            if extra:
                records.loc[records.index[i], "derived_from"] = ",".join([*listed, *extra])
            parents[sid] = [p for p in [*listed, *extra] if p in ended_ids]
        wanted = sorted({p for ps in parents.values() for p in ps})
        if not wanted:
            return
        fids = current_fid.loc[wanted].to_numpy()
        old = self.backend.read_layer(
            SITES,
            columns=["site_id", *EDITABLE],
            where=f"fid IN ({_in_list(fids)})",
            read_geometry=False,
        ).set_index("site_id")
        for i, sid in enumerate(records["site_id"]):
            ps = parents.get(sid) or []
            if not ps:
                continue
            src = old.loc[ps[0]]
            for name in EDITABLE:
                records.loc[records.index[i], name] = src[name]


def _store_shape(query: Callable[..., pd.DataFrame]) -> tuple[int, int, int]:
    """What every write that changes the set of current records moves: the number of
    runs (each update and first load adds one), of current records (an end lowers it)
    and the highest record id (an insert raises it; records are never deleted)."""
    runs = query(f"SELECT count(*) AS n FROM {RUNS}")
    sites = query(f"SELECT count(*) AS n, max(fid) AS top FROM {SITES} WHERE {CURRENT}")
    top = sites["top"].iloc[0]
    return int(runs["n"].iloc[0]), int(sites["n"].iloc[0]), -1 if pd.isna(top) else int(top)


def _unchanged_since(
    tx: Any, shape: tuple[int, int, int], ending: pd.Series | None, target: str
) -> None:
    """Inside an update's transaction (under the write lock): raise
    :class:`StoreConflict` (the update is prepared again) if, since the update read the
    store, another writer changed the set of current records (:func:`_store_shape`: an
    update, a first load, an end) or edited a record this update ends (its successors
    inherit the offer and status read before the edit).

    Edits of the other records do not conflict: an update writes only measured values,
    scores and bookkeeping, an edit only offer and status, so both land. A version of
    the whole store would make every edit restart a running update, and a steady trickle
    of edits (the API under load) would starve a large ingest."""
    now = _store_shape(tx.query)
    if now != shape:
        msg = (
            f"store {target} changed meanwhile (runs, current records, last id: {now}, "
            f"not {shape}); nothing was written"
        )
        raise StoreConflict(msg)
    if ending is None or not len(ending):
        return
    fids = _in_list(ending.index)
    found = tx.query(f"SELECT fid, updated_at FROM {SITES} WHERE {CURRENT} AND fid IN ({fids})")
    now_at = {int(f): _as_text(t) for f, t in zip(found["fid"], found["updated_at"], strict=True)}
    if len(now_at) != len(ending) or any(
        now_at.get(int(f)) != _as_text(t) for f, t in ending.items()
    ):
        msg = f"a site that this update ends in {target} was edited meanwhile; nothing was written"
        raise StoreConflict(msg)


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def may_edit(gminy: frozenset[str], teryt: str) -> bool:
    """Whether a key for ``gminy`` may change a site of gmina ``teryt``."""
    return "*" in gminy or str(teryt) in gminy


def normalise_timestamp(value: str) -> str:
    """An ISO date or date-time (any offset) as the store's UTC timestamp text."""
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"not an ISO-8601 date or date-time: {value!r}"
        raise InventoryError(msg, "since", status=400) from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _run_row(info, report: ChangeReport, now: str, source: str) -> pd.DataFrame:
    row = {
        "run_id": report.run_id,
        "created": now,
        "kind": report.kind,
        "scope": report.scope,
        "source": source,
        "added": report.added,
        "changed": report.changed,
        "ended": report.ended,
        "unchanged": report.unchanged,
        "merged": len(report.merged),
        "info": _json({k: v for k, v in info.items() if k not in ("columns", "units")}),
    }
    return pd.DataFrame([row], columns=list(RUNS_COLUMNS)).astype(
        {c: "int64" for c, k in RUNS_COLUMNS.items() if k == "int"}
    )


def _provenance_rows(info, run_id: str) -> pd.DataFrame:
    cols = info.get("columns") or {}
    if not cols:
        return empty_table(PROVENANCE_COLUMNS)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "column_name": list(cols),
            "sources": [",".join(v.get("sources", [])) for v in cols.values()],
            "data_date": [str(v.get("data_date", "")) for v in cols.values()],
        },
        columns=list(PROVENANCE_COLUMNS),
    )


def _run_info_rows(info, report: ChangeReport) -> pd.DataFrame:
    info = {**info, "run_id": report.run_id, "changes": report.as_dict()}
    rows = {k: _json(v) for k, v in info.items()}
    return pd.DataFrame({"key": list(rows), "value": list(rows.values())}).astype(
        {c: object for c in RUN_INFO_COLUMNS}
    )
