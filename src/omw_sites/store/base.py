"""The store protocol: what every inventory backend (GeoPackage, PostGIS) provides.

A backend knows tables and transactions, nothing about sites: the inventory logic
(:mod:`omw_sites.store.inventory`) computes what changes and hands the backend plain
frames to insert, update or replace inside **one** transaction. Both backends keep the
same tables with the same columns, so the same tests run against both.

Tables
------
``sites``        spatial (EPSG:2180, column ``geometry`` in frames); one row per site record,
                 current and ended (``ended_at`` set) — records are never deleted.
``site_history`` one row per changed field: site_id, field, old_value, new_value,
                 changed_at, source (``run:<id>`` or ``user:<name>``), run_id, kind.
``runs``         one row per ingest/update: run_id, created, kind, scope, counts, info (JSON).
``provenance``   per run and column: sources, data_date.
``run_info``     key/value JSON rows describing the latest run (read by maps/API/reports).
``api_keys``     who may write through the API, for which gminy (SHA-256 of each key).
reference layers (``gminy``, ``junctions``, ``utilities``, …) and ``quarantine``.

Timestamps are ISO-8601 UTC text (``2026-11-27T01:02:03.123456Z``) in both backends, so they
sort and compare as text.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

# the column kinds are the layers' own; re-exported for the backends
from omw_sites.layers import kind_of as kind_of


class StoreError(RuntimeError):
    """The store is missing, unreachable, full, locked too long, or does not hold what a
    reader needs. Backends turn their driver's errors into this, with one clear line."""


class StoreConflict(StoreError):
    """Another writer committed since the caller read the version it expected: nothing
    was written; read again and retry (see :meth:`Backend.version`)."""


@dataclass(frozen=True)
class StagedLayer:
    """A reference layer already written, by another process, as the table of its name
    in the schema ``schema`` of the PostGIS store's database
    (:meth:`~omw_sites.store.postgis.PostGISBackend.stage`): outside the store, seen by
    no reader. Given to :meth:`~omw_sites.store.inventory.Inventory.apply` in place of a
    frame, the store's own transaction moves it in (or leaves it, if its ``digest`` is
    the stored layer's), so the rows never pass through the process that applies."""

    schema: str
    digest: str  # omw_sites.store.hashing.layer_digest of the frame it was written from
    rows: int


@dataclass(frozen=True)
class StagedSites:
    """A run's measured sites already written, by the processes that measured them, as
    tables of the schema ``schema`` of the PostGIS store's database
    (:meth:`~omw_sites.store.postgis.PostGISBackend.stage_sites`) and read through its
    view ``sites``: every measured column, the shape and the content hash. Given to
    :meth:`~omw_sites.store.inventory.Inventory.apply` beside a frame of the sites'
    scores (without shapes), the update reads from it only the rows it adds or changes.
    """

    schema: str
    columns: tuple[str, ...]  # the measured columns (no geometry), in the run's order
    kinds: Mapping[str, str]  # their kinds (``kind_of``)
    rows: int


@dataclass(frozen=True)
class StagedLoad:
    """A first load's sites when their measured columns are staged
    (:class:`StagedSites`): ``records`` holds, per site in the order of the new records,
    the rest of its record (ID, hashes, scores, record columns, no shape), and
    ``columns`` the new site table's columns in order with their kinds. The backend
    joins the two inside its load (:meth:`Backend.bulk_load`)."""

    staged: StagedSites
    records: pd.DataFrame
    columns: Mapping[str, str]


class Transaction(ABC):
    """Writes inside one all-or-nothing transaction (see :meth:`Backend.transaction`)."""

    @abstractmethod
    def add_columns(self, table: str, columns: Mapping[str, str]) -> None:
        """Add columns ``{name: kind}`` (kind: ``float``, ``int``, ``bool``, ``text``) that
        ``table`` does not have yet; existing ones are left alone."""

    @abstractmethod
    def insert(self, table: str, rows: pd.DataFrame | gpd.GeoDataFrame) -> None:
        """Append rows. A GeoDataFrame's geometry goes to the table's geometry column;
        columns the table lacks are an error (call :meth:`add_columns` first)."""

    @abstractmethod
    def update(self, table: str, key: str, rows: pd.DataFrame) -> None:
        """Set the columns of ``rows`` (other than ``key``) on the records whose ``key``
        equals each row's ``key`` value. A ``geometry`` column (shapely) updates geometry.
        ``key`` may be ``"fid"``, the feature id every spatial table has (what
        ``read_layer(..., fid_as_index=True)`` returns as the index)."""

    @abstractmethod
    def replace(self, table: str, rows: pd.DataFrame | gpd.GeoDataFrame) -> None:
        """Replace every row of ``table`` by ``rows`` (the table must already exist with
        these columns: reference layers, ``quarantine``, ``run_info``)."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """A read inside the transaction, under its write lock (see
        :meth:`Backend.query` for the SQL): what the store holds now, before this
        transaction's commit, so a writer can check nobody changed what it read."""

    @abstractmethod
    def conditional_update(
        self, table: str, fid: int, values: Mapping[str, Any], expect: Mapping[str, Any]
    ) -> int:
        """Set ``values`` ``{column: value}`` on the row with feature id ``fid`` only if
        each ``expect`` column holds its value (None: is NULL), in one ``UPDATE … WHERE``
        statement; returns the number of rows changed (0: the row was not in that state
        and nothing was written). Single-record writes use it to make their check and
        their write one statement (see :mod:`omw_sites.store.lifecycle`)."""


class Backend(ABC):
    """One inventory database: GeoPackage file or PostGIS schema."""

    #: where the store lives: a file path or a ``postgresql://`` URL (password hidden)
    target: str
    #: whether :meth:`Inventory.apply` may be given :class:`StagedLayer` values
    takes_staged: bool = False

    @abstractmethod
    def exists(self) -> bool:
        """True when the store has been initialised (holds the inventory tables)."""

    @abstractmethod
    def init(self) -> None:
        """Create the store and its bookkeeping tables if they do not exist (idempotent)."""

    @abstractmethod
    def signature(self) -> tuple:
        """A value that changes whenever a transaction commits (readers use it to reload)."""

    @abstractmethod
    def version(self) -> int:
        """The store's version: a counter every committed write (each
        :meth:`transaction` and :meth:`bulk_load`) raises; 0 for a store not created yet.
        Cheap to read. A writer that read the store at version ``v`` passes
        ``expect_version=v`` to :meth:`transaction` / :meth:`bulk_load`, which refuse
        (:class:`StoreConflict`, nothing written) if anyone committed in between."""

    @abstractmethod
    def list_layers(self) -> list[str]:
        """Names of the tables/layers, spatial and not (excluding internal ones)."""

    @abstractmethod
    def columns(self, table: str) -> list[str]:
        """Column names of ``table`` (without the geometry and feature-id columns)."""

    @abstractmethod
    def read_layer(
        self,
        name: str,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        read_geometry: bool = True,
        max_features: int | None = None,
        fid_as_index: bool = False,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read one layer. ``where`` is an SQL condition written by this package (never
        user text); ``bbox`` (EPSG:2180) uses the spatial index. Spatial layers come back as
        GeoDataFrames in EPSG:2180 with a ``geometry`` column; tables as DataFrames."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a read-only SQL query on the non-spatial columns with bound parameters.
        Placeholders are written ``?`` and translated by the backend."""

    @abstractmethod
    def transaction(self, expect_version: int | None = None) -> AbstractContextManager[Transaction]:
        """All writes inside the ``with`` block commit together or not at all; a reader
        sees the state before or after, never between. The commit raises the version.

        Writers are serialised: entering waits (up to the backend's lock timeout) until no
        other writer is inside. With ``expect_version``, entering then raises
        :class:`StoreConflict` unless the store is still at that version, and the check
        holds until the commit (no other writer can commit in between)."""

    @abstractmethod
    def bulk_load(
        self,
        sites: gpd.GeoDataFrame | StagedLoad,
        layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
        derive: Derive | None = None,
        check: Callable[[], None] | None = None,
        expect_version: int | None = None,
    ) -> None:
        """Replace the whole store by ``sites`` and ``layers`` (every other table, spatial
        or not, including the empty bookkeeping tables) in one atomic step — the fast path
        for a first load. ``derive(rows)`` gives columns of ``sites`` computed row by row
        (the content hashes); a backend may compute them slice by slice as it writes.
        ``check()`` is called once everything is written, before the store is replaced:
        if it raises, the load is abandoned and the store stays as it was (checks of the
        input run while the load writes). With ``expect_version``, the store is replaced
        only if it is still at that version when it is replaced (checked under the write
        lock), else :class:`StoreConflict` and the store stays as it was. The new store's
        version is above the old one's. Only a database store takes staged sites
        (:class:`StagedLoad`)."""

    def stage(
        self, stage: str, layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame]
    ) -> dict[str, StagedLayer]:
        """Write ``layers`` beside the store, for a later :meth:`Inventory.apply` to move
        in (see :class:`StagedLayer`); only a database store can."""
        msg = f"store {self.target} cannot stage layers (only a PostGIS store can)"
        raise StoreError(msg)

    def stage_sites(self, stage: str, part: str, sites: gpd.GeoDataFrame) -> int:
        """Write measured ``sites`` beside the store as the part ``part`` of a
        :class:`StagedSites`; only a database store can."""
        msg = f"store {self.target} cannot stage sites (only a PostGIS store can)"
        raise StoreError(msg)

    def staged_sites(self, stage: str, parts: Sequence[str]) -> StagedSites:
        """The parts :meth:`stage_sites` wrote under ``stage``, as one."""
        msg = f"store {self.target} has no staged sites (only a PostGIS store can)"
        raise StoreError(msg)

    def read_staged(
        self, staged: StagedSites, ids: Sequence[str] | None = None
    ) -> gpd.GeoDataFrame:
        """Staged sites (all, or those of ``ids``), in ``site_id`` order."""
        msg = f"store {self.target} has no staged sites (only a PostGIS store can)"
        raise StoreError(msg)

    def drop_stage(self, stage: str) -> None:
        """Drop what :meth:`stage` wrote under ``stage``."""
        msg = f"store {self.target} has no staged layers (only a PostGIS store can)"
        raise StoreError(msg)

    def close(self) -> None:  # noqa: B027 - backends with connections override it
        """Release connections."""


Derive = Callable[[gpd.GeoDataFrame], Mapping[str, np.ndarray]]

LOCK_TIMEOUT = 60.0  # seconds a writer waits for another writer by default


def lock_timeout_setting() -> float:
    """Seconds a writer waits for another writer's lock before it gives up with a
    :class:`StoreError`: ``OMW_LOCK_TIMEOUT``, default :data:`LOCK_TIMEOUT`."""
    text = os.environ.get("OMW_LOCK_TIMEOUT", "").strip()
    if not text:
        return LOCK_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        msg = f"OMW_LOCK_TIMEOUT={text!r}: give the seconds a writer may wait, e.g. 60"
        raise StoreError(msg)
    return value


def duplicates_message(target: str, ids: Sequence[str]) -> str:
    """One line about current records sharing a site ID (a store from before the unique
    index): the index cannot be made until the extra records are ended."""
    shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
    return (
        f"store {target} holds more than one current record of {len(ids)} site ID(s) "
        f"({shown}); two current records of one site cannot be prevented until the "
        "extra ones are ended"
    )


def with_derived(sites: gpd.GeoDataFrame, derive: Derive | None) -> gpd.GeoDataFrame:
    """``sites`` with the columns ``derive`` computes (all rows at once)."""
    return sites if derive is None else sites.assign(**derive(sites))


def iter_chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    """``frame`` in consecutive slices of ``size`` rows."""
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


# ---------------------------------------------------------------- shared table schemas
# Column kinds: "text", "float", "int", "bool". Both backends create these tables alike.
HISTORY = "site_history"
CURRENT = "ended_at IS NULL"  # the condition of current site records
RUNS = "runs"
PROVENANCE = "provenance"

HISTORY_COLUMNS = {
    "site_id": "text",
    "field": "text",
    "old_value": "text",
    "new_value": "text",
    "changed_at": "text",
    "source": "text",
    "run_id": "text",
    "kind": "text",  # created | changed | ended | status | offer | merged
}
RUNS_COLUMNS = {
    "run_id": "text",
    "created": "text",
    "kind": "text",  # load | update | edit
    "scope": "text",  # "all" or comma-separated gmina TERYT codes
    "source": "text",
    "added": "int",
    "changed": "int",
    "ended": "int",
    "unchanged": "int",
    "merged": "int",
    "info": "text",  # JSON: profiles (name, hash, weights), data dates, counts
}
PROVENANCE_COLUMNS = {
    "run_id": "text",
    "column_name": "text",
    "sources": "text",
    "data_date": "text",
}
RUN_INFO_COLUMNS = {"key": "text", "value": "text"}
API_KEYS = "api_keys"
API_KEYS_COLUMNS = {
    "name": "text",  # who holds the key (kept in the history of every write)
    "key_hash": "text",  # SHA-256 of the key; the key itself is shown once, never stored
    "teryt": "text",  # comma-separated gmina TERYT codes the key may change, or "*"
    "created_at": "text",
    "revoked_at": "text",
}
BOOKKEEPING_TABLES = {
    HISTORY: HISTORY_COLUMNS,
    RUNS: RUNS_COLUMNS,
    PROVENANCE: PROVENANCE_COLUMNS,
    API_KEYS: API_KEYS_COLUMNS,
}

# Investor enquiries (:mod:`omw_sites.store.enquiries`): made by ``init`` beside the
# bookkeeping tables, not required of a store made before them (``exists``).
ENQUIRIES = "enquiries"
ENQUIRIES_COLUMNS = {
    "enquiry_id": "text",  # E0001, E0002, … in order of creation
    "code_name": "text",
    "sector": "text",
    "status": "text",  # new | matched | sent | site_visit | won | lost | withdrawn
    "status_reason": "text",
    "requirements": "text",  # JSON: hard requirements
    "preferences": "text",  # JSON: profile and weights that rank the sites
    "deadline": "text",  # ISO date
    "contact": "text",  # the investor's contact: confidential, never published
    "match": "text",  # JSON: the latest match (parameters, shortlist, near misses)
    "chosen_site": "text",  # the site the investor chose (status won)
    "created_at": "text",
    "created_by": "text",
    "updated_at": "text",
}
ENQUIRY_SITES = "enquiry_sites"  # one row per site of each match: shortlist and near misses
ENQUIRY_SITES_COLUMNS = {
    "row_key": "text",  # <enquiry_id>/<match_no>/<site_id>
    "enquiry_id": "text",
    "match_no": "int",  # 1, 2, … each match of the enquiry; the highest is current
    "site_id": "text",
    "teryt": "text",
    "gmina": "text",
    "role": "text",  # shortlist | near_miss
    "position": "int",  # order within its role, 1 = first
    "failed": "text",  # the requirement a near miss fails
    "answer": "text",  # confirmed | withdrawn (from this offer), set by the gmina
    "answer_price_pln_m2": "float",
    "answer_contact": "text",
    "answered_at": "text",
    "answered_by": "text",
    "offered": "int",  # 1 once the site went out in an offer pack
    "matched_at": "text",
}
ENQUIRY_HISTORY = "enquiry_history"
ENQUIRY_HISTORY_COLUMNS = {
    "enquiry_id": "text",
    "site_id": "text",  # the site an answer is about, else ""
    "field": "text",
    "old_value": "text",
    "new_value": "text",
    "changed_at": "text",
    "source": "text",  # user:<name>
    "kind": "text",  # created | changed | status | matched | answer | offer
}
ENQUIRY_TABLES = {
    ENQUIRIES: ENQUIRIES_COLUMNS,
    ENQUIRY_SITES: ENQUIRY_SITES_COLUMNS,
    ENQUIRY_HISTORY: ENQUIRY_HISTORY_COLUMNS,
}

# Columns every site record carries beside its measured criteria and scores.
SITE_RECORD_COLUMNS = {
    "status": "text",  # available | reserved | sold | withdrawn
    "status_date": "text",
    "price_pln_m2": "float",
    "lease_pln_m2_year": "float",
    "contact": "text",
    "documents": "text",  # JSON list of {"title", "url", "public"}
    "sez_status": "text",  # special economic zone / Polish Investment Zone status
    "notes": "text",
    "content_hash": "int",  # 64-bit hash of the measured attributes and geometry
    "scores_hash": "int",  # 64-bit hash of the scores, ranks and explanations
    "created_at": "text",
    "updated_at": "text",
    "ended_at": "text",  # NULL while the record is current
    "ended_reason": "text",
    "measured_run": "text",  # run that last changed the measured attributes
    "scored_run": "text",  # run whose profiles produced the scores
}


def empty_table(columns: Mapping[str, str]) -> pd.DataFrame:
    """A zero-row frame with the dtypes of ``columns`` kinds."""
    dtypes = {"text": object, "float": "float64", "int": "int64", "bool": "bool"}
    return pd.DataFrame({c: pd.Series([], dtype=dtypes[k]) for c, k in columns.items()})


def history_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of ``site_history`` (dicts of :data:`HISTORY_COLUMNS`) as a frame."""
    if not rows:
        return empty_table(HISTORY_COLUMNS)
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def utc_now() -> str:
    """Now as the store's timestamp text (ISO-8601 UTC, microseconds, ``Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_text(value: Any) -> str | None:
    """A value as the text a history row records (None for NULL/NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return format(float(value), ".10g")
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def to_json(value: Any) -> str:
    """JSON text as the store keeps it (UTF-8 as is, anything else by its ``str``)."""
    return json.dumps(value, ensure_ascii=False, default=str)
