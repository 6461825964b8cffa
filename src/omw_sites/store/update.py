"""The update engine: bring the inventory up to date with a run's measured and scored
sites (:meth:`omw_sites.store.inventory.Inventory.apply`).

A first load (the store has no sites) replaces the store in one step
(:func:`load`). An incremental update (:func:`update`) goes in named steps:

1. :func:`read_state` — the current records (ID, hashes, gmina, ``updated_at``) and what
   other writers must not change before the commit (:func:`store_shape`);
2. :func:`classify` — each incoming site as added, changed or unchanged (by content
   hash), and the current sites in scope that the run no longer has (gone);
3. :func:`plan_ends` — the gone sites and those a new site duplicates (a shared parcel
   or a large overlap) are ended; refused if too many (:func:`check_mass_end`);
4. :func:`plan_writes` — new records (inheriting the offer of the sites they replace),
   field-by-field updates of the changed ones, new scores, ends and their history rows;
5. :func:`write` — one transaction that commits only if nothing it depends on changed
   (:func:`unchanged_since`); otherwise :func:`apply` prepares the update again.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from omw_sites.layers import QUARANTINE, RUN_INFO, SITE_COLUMNS, SITES, WORK_CRS
from omw_sites.store.base import (
    API_KEYS,
    CURRENT,
    HISTORY,
    HISTORY_COLUMNS,
    PROVENANCE,
    PROVENANCE_COLUMNS,
    RUN_INFO_COLUMNS,
    RUNS,
    RUNS_COLUMNS,
    SITE_RECORD_COLUMNS,
    Backend,
    StagedLayer,
    StagedLoad,
    StagedSites,
    StoreConflict,
    StoreError,
    as_text,
    empty_table,
    history_rows,
    kind_of,
    to_json,
    utc_now,
)
from omw_sites.store.edits import EDITABLE, OFFER_FIELDS, InventoryError
from omw_sites.store.hashing import LAYER_DIGESTS, content_hash, layer_digest, stored_hashes
from omw_sites.store.keys import api_keys
from omw_sites.store.lifecycle import offer_mismatch, rerank, user_ended_ids

if TYPE_CHECKING:
    from omw_sites.store.inventory import Inventory

# the columns an update reads of every record, first in a new table's rows
LOOKUP_COLUMNS = ("site_id", "ended_at", "content_hash", "scores_hash", "teryt")
# measured attributes whose change is a change of the site (history, content hash)
UNTRACKED = frozenset({"site_id", "derived_from"})
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


def tracked_columns(columns: Iterable[str]) -> list[str]:
    """The measured site attributes among ``columns`` (history and content hash cover them)."""
    return [c for c in columns if c in SITE_COLUMNS and c not in UNTRACKED]


def derived_columns(columns: Iterable[str]) -> list[str]:
    """Scores, ranks and explanations: refreshed by every run, not kept in history."""
    skip = set(SITE_COLUMNS) | set(SITE_RECORD_COLUMNS) | {"geometry"}
    return [c for c in columns if c not in skip]


def multi_sites(sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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


def for_staging(sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Measured sites as the process that measured them stages them
    (:meth:`~omw_sites.store.base.Backend.stage_sites`): multipolygons in EPSG:2180,
    with the content hash :meth:`Inventory.apply` would compute of them."""
    sites = multi_sites(sites).reset_index(drop=True)
    return sites.assign(content_hash=content_hash(sites, tracked_columns(sites.columns)))


# --------------------------------------------------------------------------- the input
@dataclass
class Job:
    """One :meth:`Inventory.apply`'s input, prepared once for all its attempts."""

    sites: gpd.GeoDataFrame
    ids: pa.Array
    tracked: list[str]
    scored: list[str]
    in_scope: np.ndarray
    scope: list[str] | None
    scope_text: str
    reference: Mapping[str, gpd.GeoDataFrame | StagedLayer] | None
    info: dict[str, Any]
    digests: dict[str, str]
    quarantine: pd.DataFrame | None
    run_id: str
    now: str
    source: str
    dedupe_overlap: float
    allow_mass_end: bool
    hashed: gpd.GeoDataFrame | None = None  # ``sites`` with their hashes, once computed
    # the measured columns and shapes, staged beside a PostGIS store: ``sites`` holds
    # the IDs, content hashes, what scoring read and the scores (see Inventory.apply)
    staged: StagedSites | None = None

    @classmethod
    def prepare(
        cls,
        sites: gpd.GeoDataFrame,
        reference: Mapping[str, gpd.GeoDataFrame | StagedLayer] | None,
        run_info: Mapping[str, Any] | None,
        quarantine: pd.DataFrame | None,
        scope: Sequence[str] | None,
        source: str | None,
        now: str | None,
        dedupe_overlap: float,
        allow_mass_end: bool,
        staged: StagedSites | None = None,
    ) -> Job:
        info = dict(run_info or {})
        # a digest of each reference layer: an update leaves one that did not change
        # alone instead of rewriting it (a big parcel layer takes long to write)
        digests = {
            name: gdf.digest if isinstance(gdf, StagedLayer) else layer_digest(gdf)
            for name, gdf in (reference or {}).items()
        }
        info[LAYER_DIGESTS] = digests
        run_id = str(info.get("run_id") or uuid.uuid4().hex[:12])
        if staged is None:
            sites = multi_sites(sites).reset_index(drop=True)
        else:
            if "content_hash" not in sites.columns:
                msg = "staged sites come with their content hashes; these have none"
                raise StoreError(msg)
            sites = sites.reset_index(drop=True)
        return cls(
            sites=sites,
            ids=pa.array(sites["site_id"].astype(str), type=pa.large_string()),
            tracked=tracked_columns(sites.columns if staged is None else staged.columns),
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
            staged=staged,
        )

    def hashes(self, rows: gpd.GeoDataFrame) -> dict[str, np.ndarray]:
        return {
            "content_hash": content_hash(rows, self.tracked),
            "scores_hash": content_hash(rows, self.scored, geometry=False),
        }

    def hashed_sites(self) -> gpd.GeoDataFrame:
        """The sites with their hashes (computed once: a retry reuses them)."""
        if self.hashed is None:
            if self.staged is None:
                self.hashed = self.sites.assign(**self.hashes(self.sites))
            else:  # hashed where they were measured (with their shapes)
                scores = content_hash(self.sites, self.scored, geometry=False)
                self.hashed = self.sites.assign(scores_hash=scores)
        return self.hashed

    def rows(self, backend: Backend, sites: pd.DataFrame, at: np.ndarray) -> gpd.GeoDataFrame:
        """The incoming ``sites`` at positions ``at`` with all their columns: for staged
        sites, the measured columns and shapes read from the stage, the rest from
        ``sites``."""
        part = sites.iloc[at]
        if self.staged is None:
            return part
        ids = part["site_id"].astype(str).to_numpy()
        if len(set(ids)) != len(ids):
            _twice(part)
        # most of them (a first run of new criteria changes every site): one plain read
        whole = len(at) > len(sites) / 2
        measured = backend.read_staged(self.staged, None if whole else ids)
        if whole and len(at) < len(sites):
            measured = measured[measured["site_id"].astype(str).isin(ids)]
        found = pd.Index(measured["site_id"].astype(str))
        pos = found.get_indexer(ids) if found.is_unique else np.array([-1])
        if len(found) != len(ids) or (pos < 0).any():
            msg = (
                f"the staged sites in schema {self.staged.schema} do not match the run's "
                f"({len(found):,} rows for {len(ids):,} sites)"
            )
            raise StoreError(msg)
        measured = measured.iloc[pos].reset_index(drop=True)
        extra = [c for c in part.columns if c not in measured.columns]
        out = pd.concat(
            [measured.drop(columns="geometry"), part[extra].reset_index(drop=True)], axis=1
        )
        return gpd.GeoDataFrame(out, geometry=measured.geometry.to_numpy(), crs=WORK_CRS)

    def kinds(self, sites: pd.DataFrame) -> dict[str, str]:
        """Column kinds of the incoming sites (without the shape), staged ones included."""
        lean = {c: kind_of(sites[c]) for c in sites.columns if c != "geometry"}
        if self.staged is None:
            return lean
        staged = {c: self.staged.kinds[c] for c in self.staged.columns}
        return staged | {c: k for c, k in lean.items() if c not in staged}


def apply(inv: Inventory, job: Job) -> ChangeReport:
    """A first load or an update of ``job``, prepared again from the new state while
    another writer commits first, up to :data:`APPLY_ATTEMPTS` times."""
    for attempt in range(1, APPLY_ATTEMPTS + 1):
        try:
            version = inv.backend.version()
            if not inv.has_sites() or _legacy(inv):
                return load(inv, job, version)
            return update(inv, job)
        except StoreConflict as exc:
            if attempt == APPLY_ATTEMPTS:
                msg = (
                    f"the update of {inv.target} was prepared {attempt} times and "
                    "each time another writer committed first; nothing was written, "
                    "run it again"
                )
                raise StoreError(msg) from exc
            time.sleep(random.uniform(0.02, 0.2) * attempt)  # let the other one finish
    raise AssertionError("unreachable")  # pragma: no cover


def _legacy(inv: Inventory) -> bool:
    """A site table written before the inventory existed (no record columns): the first
    run replaces it with a loaded inventory (it has no history to keep)."""
    return "ended_at" not in inv.backend.columns(SITES)


# --------------------------------------------------------------------------- first load
def load(inv: Inventory, job: Job, version: int) -> ChangeReport:
    """A first load (the store has no sites): the in-scope sites replace the store in
    one step, if the store is still at ``version`` then."""
    report = ChangeReport(job.run_id, "load", job.scope_text)
    sites, ids = job.sites, job.ids
    if job.staged is None:
        new = sites[job.in_scope].reset_index(drop=True)
        records: gpd.GeoDataFrame | StagedLoad = new_records(new, job.now, job.run_id)
    else:
        new = job.hashed_sites()[job.in_scope].reset_index(drop=True)
        records = _staged_load(inv, job, new)
    report.added = len(new)
    # IDs are checked for repeats on another thread while the load starts: the
    # backend asks before it replaces the store
    with ThreadPoolExecutor(1, thread_name_prefix="omw-unique") as pool:
        unique = pool.submit(lambda: len(pc.unique(ids)) == len(ids))

        def check() -> None:
            if not unique.result():
                _twice(sites)

        layers: dict[str, Any] = dict(job.reference or {})
        layers[HISTORY] = empty_table(HISTORY_COLUMNS)
        layers[API_KEYS] = api_keys(inv.backend)  # kept over a first load
        layers[RUNS] = _run_row(job.info, report, job.now, job.source)
        layers[PROVENANCE] = _provenance_rows(job.info, report.run_id)
        layers[RUN_INFO] = _run_info_rows(job.info, report)
        if job.quarantine is not None and len(job.quarantine.columns):
            layers[QUARANTINE] = pd.DataFrame(job.quarantine)
        inv.backend.bulk_load(
            records,
            layers,
            derive=job.hashes,
            check=check,
            expect_version=version,
        )
    return report


def _staged_load(inv: Inventory, job: Job, new: pd.DataFrame) -> StagedLoad:
    """A first load of staged sites: the records' own columns here, the measured ones
    staged, the table's columns as a first load of the same sites as a frame has them."""
    assert job.staged is not None
    staged = job.staged
    if new["site_id"].duplicated().any():
        _twice(new)
    # no rows: every column of the site table-to-be, with its kind, in its place (the
    # hashes are record columns: a load of a frame computes them as it writes)
    shape = job.rows(inv.backend, new, np.zeros(0, np.int64))
    shape = new_records(shape.drop(columns=["content_hash", "scores_hash"]), job.now, job.run_id)
    records = new_records(new, job.now, job.run_id)
    columns = {
        c: staged.kinds.get(c) or kind_of(records[c]) for c in shape.columns if c != "geometry"
    }
    return StagedLoad(staged, records, columns)


def new_records(new: gpd.GeoDataFrame, now: str, run_id: str) -> gpd.GeoDataFrame:
    """New site records of measured sites: record columns added (available, created now)."""
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
    # what every update reads of all records first in the row: SQLite finds a column
    # by walking the record's header up to it
    front = [c for c in LOOKUP_COLUMNS if c in out.columns]
    return out[front + [c for c in out.columns if c not in front]]


# --------------------------------------------------------------------------- update steps
@dataclass
class State:
    """The store as an update read it, and the incoming sites with their hashes."""

    shape: tuple[int, int, int]  # see store_shape
    table_cols: set[str]
    current: pd.DataFrame  # current records by fid: site_id, (teryt), hashes, updated_at
    pos: np.ndarray  # where each incoming site sits among ``current`` (-1: not there)
    sites: gpd.GeoDataFrame  # the incoming sites with their hashes


@dataclass
class Classes:
    """The incoming and current sites sorted by what the update does to them."""

    fids: np.ndarray  # record id of each incoming site (-1: new)
    new_sites: gpd.GeoDataFrame  # added (in scope, not current, not ended by a person)
    changed: gpd.GeoDataFrame  # current, in scope, another content hash
    changed_at: np.ndarray  # their rows among the incoming sites
    gone: pd.DataFrame  # current records in scope the run no longer has
    in_scope: int  # current records in scope
    fid_of: LazyFids


@dataclass
class Plan:
    """Everything an update writes, prepared before its transaction."""

    ended: dict[int, str]  # record id → reason
    records: gpd.GeoDataFrame  # new records
    updates: list[pd.DataFrame]  # rows of changed fields (and ends), by record id
    derived: pd.DataFrame  # new scores of otherwise unchanged records
    history: list[dict[str, Any]]
    new_cols: dict[str, str]  # columns of the incoming sites and their kinds
    not_current: int = 0  # incoming sites (ranked by the run) not current after it


def update(inv: Inventory, job: Job) -> ChangeReport:
    """An incremental update, prepared from the store as read and written in one
    transaction that commits only if nothing it depends on changed meanwhile."""
    report = ChangeReport(job.run_id, "update", job.scope_text)
    inv.backend.init()  # bookkeeping tables added since the store was made
    state = read_state(inv, job)
    classes = classify(inv, job, state, report)
    ended = plan_ends(inv, job, state, classes, report)
    plan = plan_writes(inv, job, state, classes, ended, report)
    write(inv, job, state, plan, report)
    return report


def read_state(inv: Inventory, job: Job) -> State:
    """The current records and the store's shape, read before anything else; the
    incoming sites are hashed meanwhile (GDAL / the database read without the GIL)."""
    shape = store_shape(inv.backend.query)
    with ThreadPoolExecutor(1, thread_name_prefix="omw-read-current") as reader:
        reading = reader.submit(_current, inv, job.ids, bool(job.scope))
        sites = job.hashed_sites()
        table_cols, current, pos = reading.result()
    return State(shape, table_cols, current, pos, sites)


def classify(inv: Inventory, job: Job, state: State, report: ChangeReport) -> Classes:
    """Added, changed and unchanged incoming sites; current sites in scope gone."""
    sites, current, pos, in_scope = state.sites, state.current, state.pos, job.in_scope
    known = pos >= 0
    # an ID given twice: two rows found at one current record, or repeated among the
    # new ones (few, compared directly)
    if np.bincount(pos[known], minlength=1).max(initial=0) > 1:
        _twice(sites)
    if sites.loc[~known, "site_id"].duplicated().any():
        _twice(sites)
    fids = np.where(known, current.index.to_numpy()[np.maximum(pos, 0)], -1)
    adding = np.flatnonzero(~known & in_scope)  # usually few: take only those rows
    if len(adding):
        # a site a person ended (DELETE through the API) stays ended although the run
        # still measures its land: it is not brought back as a new "available" site
        new_ids = sites["site_id"].iloc[adding].astype(str)
        withdrawn = user_ended_ids(inv, new_ids)
        if withdrawn:
            adding = adding[~new_ids.isin(withdrawn).to_numpy()]
            report.kept_ended = len(withdrawn)
    new_sites = job.rows(inv.backend, sites, adding).reset_index(drop=True)
    same_rows = np.flatnonzero(known & in_scope)
    old_hash = stored_hashes(current["content_hash"])[pos[same_rows]]
    differs = sites["content_hash"].to_numpy()[same_rows] != old_hash
    changed_at = same_rows[differs]
    changed = job.rows(inv.backend, sites, changed_at)
    changed = changed[["site_id", *job.tracked, "content_hash", "geometry"]]
    report.unchanged = int(len(same_rows) - differs.sum())
    seen = np.zeros(len(current), bool)
    seen[pos[known]] = True
    cur_in_scope = np.asarray(
        np.ones(len(current), bool) if not job.scope else current["teryt"].isin(job.scope)
    )
    return Classes(
        fids=fids,
        new_sites=new_sites,
        changed=changed.reset_index(drop=True),
        changed_at=changed_at,
        gone=current[cur_in_scope & ~seen],
        in_scope=int(cur_in_scope.sum()),
        fid_of=LazyFids(current),
    )


def plan_ends(
    inv: Inventory, job: Job, state: State, classes: Classes, report: ChangeReport
) -> dict[int, str]:
    """The records to end (id → reason): those gone, and those a new site duplicates;
    refused when too many (:func:`check_mass_end`)."""
    ended = {
        int(f): f"not in the {job.scope_text} update of run {job.run_id}"
        for f in classes.gone.index
    }
    if len(classes.new_sites):
        report.merged = _duplicates(
            inv, classes.new_sites, state.current, classes.gone, job.dedupe_overlap
        )
        fid_of = classes.fid_of.series.to_dict()
        for kept, old, why in report.merged:
            ended[int(fid_of[old])] = f"duplicate of {kept} ({why})"
    check_mass_end(len(ended), classes.in_scope, job.scope_text, job.allow_mass_end, inv.target)
    return ended


def plan_writes(
    inv: Inventory,
    job: Job,
    state: State,
    classes: Classes,
    ended: dict[int, str],
    report: ChangeReport,
) -> Plan:
    """The rows to write. Every read happens here, before the write transaction (a
    GeoPackage writer may lock readers out once its cache spills)."""
    now, run_id = job.now, job.run_id
    records = new_records(classes.new_sites, now, run_id)
    if len(records):
        _inherit(inv, records, ended, classes.fid_of.series, report)
    report.added, report.ended = len(records), len(ended)
    history: list[dict[str, Any]] = []
    updates: list[pd.DataFrame] = []
    if len(classes.changed):
        parts, changes = _changed_rows(
            inv, classes.changed, classes.fids[classes.changed_at], job, report
        )
        updates.extend(parts)
        history += changes
    offers, offer_history = _offer_rows(inv, state.sites, classes.fids, set(ended), job)
    updates.extend(offers)
    history += offer_history
    derived = _derived_rows(state.sites, classes.fids, state.current, set(ended), run_id)
    report.rescored = len(derived)
    updates, derived = _merge_rescored(updates, derived)
    created = zip(records["site_id"], records["derived_from"], strict=True)
    history += [
        _history_row(sid, f"derived from {d}" if d else None, "created", job) for sid, d in created
    ]
    if ended:
        updates.append(
            pd.DataFrame(
                {
                    "fid": list(ended),
                    "ended_at": now,
                    "ended_reason": list(ended.values()),
                    "updated_at": now,
                }
            )
        )
        ended_ids = state.current.loc[list(ended), "site_id"]
        history += [
            _history_row(sid, why, "merged" if why.startswith("duplicate") else "ended", job)
            for sid, why in zip(ended_ids, ended.values(), strict=True)
        ]
    sites = state.sites
    new_cols = job.kinds(sites)
    fids = classes.fids
    # not added (out of scope, or ended by a person) or ended by this update (duplicates)
    not_current = int((fids < 0).sum()) - len(records)
    not_current += int(np.isin(fids, np.fromiter(ended, np.int64, len(ended))).sum())
    return Plan(ended, records, updates, derived, history, new_cols, not_current)


def _history_row(site_id: str, new_value: str | None, kind: str, job: Job) -> dict[str, Any]:
    """A history row of a record's creation or end by this run."""
    return {
        "site_id": site_id,
        "field": "",
        "old_value": None,
        "new_value": new_value,
        "changed_at": job.now,
        "source": job.source,
        "run_id": job.run_id,
        "kind": kind,
    }


def write(inv: Inventory, job: Job, state: State, plan: Plan, report: ChangeReport) -> None:
    """Write ``plan`` in one transaction, if nothing it depends on changed meanwhile."""
    unchanged = _unchanged_layers(inv, job.digests)
    ended = plan.ended
    ending = state.current.loc[list(ended), "updated_at"] if ended else None
    added = {c: k for c, k in plan.new_cols.items() if c not in state.table_cols}
    columns = [*inv.backend.columns(SITES), *added]
    with inv.backend.transaction() as tx:
        unchanged_since(tx, state.shape, ending, inv.target)
        tx.add_columns(SITES, added)
        for rows in plan.updates:  # the ended records before the inserts below
            tx.update(SITES, "fid", rows)
        if len(plan.derived):
            tx.update(SITES, "fid", plan.derived)
        if len(plan.records):
            tx.insert(SITES, plan.records)
        # the run ranked with the statuses it read; the ranks stored are those of the
        # statuses held at the commit (an edit meanwhile, a new site inheriting a sold
        # one's status) and of the records current after it (a site of the run left
        # ended leaves a gap): usually there is nothing to do, and the check is one scan
        if plan.not_current or offer_mismatch(tx, columns):
            rerank(tx, columns, job.now, keep_order=True)
        tx.insert(HISTORY, history_rows(plan.history))
        tx.insert(RUNS, _run_row(job.info, report, job.now, job.source))
        tx.insert(PROVENANCE, _provenance_rows(job.info, report.run_id))
        tx.replace(RUN_INFO, _run_info_rows(job.info, report))
        for name, gdf in (job.reference or {}).items():
            if name not in unchanged:
                tx.replace(name, gdf)
        if job.quarantine is not None and len(job.quarantine.columns):
            tx.replace(QUARANTINE, pd.DataFrame(job.quarantine))


# --------------------------------------------------------------------------- conflicts
def store_shape(query: Callable[..., pd.DataFrame]) -> tuple[int, int, int]:
    """What every write that changes the set of current records moves: the number of
    runs (each update and first load adds one), of current records (an end lowers it)
    and the highest record id (an insert raises it; records are never deleted)."""
    runs = query(f"SELECT count(*) AS n FROM {RUNS}")
    sites = query(f"SELECT count(*) AS n, max(fid) AS top FROM {SITES} WHERE {CURRENT}")
    top = sites["top"].iloc[0]
    return int(runs["n"].iloc[0]), int(sites["n"].iloc[0]), -1 if pd.isna(top) else int(top)


def unchanged_since(
    tx: Any, shape: tuple[int, int, int], ending: pd.Series | None, target: str
) -> None:
    """Inside an update's transaction (under the write lock): raise
    :class:`StoreConflict` (the update is prepared again) if, since the update read the
    store, another writer changed the set of current records (:func:`store_shape`: an
    update, a first load, an end) or edited a record this update ends (its successors
    inherit the offer and status read before the edit).

    Edits of the other records do not conflict: an update writes only measured values,
    scores and bookkeeping, an edit only offer and status, so both land. A version of
    the whole store would make every edit restart a running update, and a steady trickle
    of edits (the API under load) would starve a large ingest."""
    now = store_shape(tx.query)
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
    now_at = {int(f): as_text(t) for f, t in zip(found["fid"], found["updated_at"], strict=True)}
    if len(now_at) != len(ending) or any(
        now_at.get(int(f)) != as_text(t) for f, t in ending.items()
    ):
        msg = f"a site that this update ends in {target} was edited meanwhile; nothing was written"
        raise StoreConflict(msg)


# --------------------------------------------------------------------------- reading
def _current(
    inv: Inventory, ids: pa.Array, with_gmina: bool
) -> tuple[set[str], pd.DataFrame, np.ndarray]:
    """The site table's columns; ID, hashes (and gmina) of its current records (indexed
    by fid); and where each of ``ids`` sits among them (-1: not there)."""
    table_cols = set(inv.backend.columns(SITES))
    wanted = [
        "site_id",
        *(["teryt"] if with_gmina else []),
        "content_hash",
        "scores_hash",
        "updated_at",  # of the records an update ends (see unchanged_since)
    ]
    current = inv.backend.read_layer(
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


def _positions(values: pa.Array, among: pd.Series) -> np.ndarray:
    """Position of each of ``values`` in ``among`` (-1 when absent): Arrow's hash join."""
    found = pc.index_in(values, value_set=pa.array(among.astype(str), type=pa.large_string()))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _unchanged_layers(inv: Inventory, digests: Mapping[str, str]) -> set[str]:
    """Reference layers the store holds with the same digest as the latest run recorded
    (see :func:`~omw_sites.store.hashing.layer_digest`)."""
    if RUN_INFO not in (have := set(inv.backend.list_layers())):
        return set()
    info = inv.backend.read_layer(RUN_INFO, read_geometry=False)
    row = info.loc[info["key"] == LAYER_DIGESTS, "value"]
    try:
        stored = json.loads(row.iloc[0]) if len(row) else {}
    except (TypeError, ValueError):
        return set()
    if not isinstance(stored, dict):
        return set()
    return {n for n, d in digests.items() if n in have and stored.get(n) == d}


class LazyFids:
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


# --------------------------------------------------------------------------- rows to write
def _changed_rows(
    inv: Inventory, changed: gpd.GeoDataFrame, fids: np.ndarray, job: Job, report: ChangeReport
) -> tuple[list[pd.DataFrame], list[dict[str, Any]]]:
    """Update rows for the changed sites (at ``fids``) and one history row per changed
    field."""
    tracked, now, run_id = job.tracked, job.now, job.run_id
    old = inv.backend.read_layer(
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
            olds = [as_text(v) for v in old[col].to_numpy()[diff].tolist()]
            news = [as_text(v) for v in new[col].to_numpy()[diff].tolist()]
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
                    "source": job.source,
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


def _derived_rows(sites, fids, current, ended: set[int], run_id: str) -> pd.DataFrame:
    """Update rows for the scores/ranks/explanations of the current sites the run
    scored (in scope or not) whose scores hash differs from the stored one."""
    cols = derived_columns(sites.columns)
    if not cols:
        return pd.DataFrame()
    keep = fids >= 0
    if ended:
        keep &= ~np.isin(fids, np.fromiter(ended, dtype=np.int64))
    stored = stored_hashes(current["scores_hash"].reindex(fids[keep]))
    mine = sites.loc[keep, "scores_hash"].to_numpy()
    rows = np.flatnonzero(keep)[stored != mine]
    if not len(rows):
        return pd.DataFrame()
    out = sites[[*cols, "scores_hash"]].iloc[rows].reset_index(drop=True)
    out.insert(0, "fid", fids[rows])
    out["scored_run"] = run_id
    return out


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


def _duplicates(inv: Inventory, new_sites, current, gone, threshold) -> list[tuple[str, str, str]]:
    """Current sites (not ended by this update) holding the same land as a new site:
    a shared parcel ID, or overlap ≥ ``threshold`` of the smaller one."""
    alive = current[~current.index.isin(gone.index)]
    if alive.empty:
        return []
    found: dict[str, tuple[str, str]] = {}
    if "parcel_ids" in new_sites.columns:
        cur_parcels = inv.backend.read_layer(
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
    near = inv.backend.read_layer(SITES, columns=["site_id"], where=CURRENT, bbox=(x0, y0, x1, y1))
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


def _inherit(inv: Inventory, records, ended_fids, current_fid, report) -> None:
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
    old = inv.backend.read_layer(
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
            given = records.at[records.index[i], name] if name in records else None
            if name in OFFER_FIELDS and as_text(given) not in (None, ""):
                continue  # the run's own offer (a nomination list) is the newer word
            records.loc[records.index[i], name] = src[name]


def _offer_rows(
    inv: Inventory, sites: gpd.GeoDataFrame, fids: np.ndarray, ended: set[int], job: Job
) -> tuple[list[pd.DataFrame], list[dict[str, Any]]]:
    """Offer fields the run brings (a nomination list's price, contact, notes) for sites
    the store already holds: written where the record has none, never over a value a
    person or an earlier list set — a run repeated with an old list must not undo an
    edit. One history row per field, as an offer edit by the run."""
    fields = [f for f in OFFER_FIELDS if f in sites.columns]
    keep = (fids >= 0) & ~np.isin(fids, np.fromiter(ended, np.int64, len(ended)))
    if not fields or not keep.any():
        return [], []
    given = sites.loc[keep, ["site_id", *fields]].assign(fid=fids[keep])
    has = np.zeros(len(given), dtype=bool)
    for name in fields:  # vectorised: every existing site passes here on every update
        col = given[name]
        has |= (col.notna() & (col.astype(str).str.strip() != "")).to_numpy()
    given = given[has]
    if not len(given):
        return [], []
    stored = inv.backend.read_layer(
        SITES,
        columns=fields,
        where=f"fid IN ({_in_list(given['fid'].tolist())})",
        read_geometry=False,
        fid_as_index=True,
    )
    rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for rec in given.itertuples(index=False):
        fid = int(rec.fid)
        if fid not in stored.index:
            continue
        row: dict[str, Any] = {}
        for name in fields:
            new = getattr(rec, name)
            if as_text(new) in (None, "") or as_text(stored.at[fid, name]) not in (None, ""):
                continue
            row[name] = new
            history.append(
                {
                    "site_id": rec.site_id, "field": name, "old_value": None,
                    "new_value": as_text(new), "changed_at": job.now, "source": job.source,
                    "run_id": job.run_id, "kind": "offer",
                }
            )  # fmt: skip
        if row:
            rows.append({"fid": fid, **row, "updated_at": job.now})
    if not rows:
        return [], []
    frame = pd.DataFrame(rows)
    # one frame per set of fields written (an update writes the columns it is given)
    parts = [
        part.dropna(axis=1, how="all")
        for _, part in frame.groupby(frame.drop(columns="fid").notna().apply(tuple, axis=1))
    ]
    return parts, history


# --------------------------------------------------------------------------- bookkeeping
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
        "info": to_json({k: v for k, v in info.items() if k not in ("columns", "units")}),
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
    rows = {k: to_json(v) for k, v in info.items()}
    return pd.DataFrame({"key": list(rows), "value": list(rows.values())}).astype(
        {c: object for c in RUN_INFO_COLUMNS}
    )


# --------------------------------------------------------------------------- small helpers
def _rounded(geoms: np.ndarray) -> np.ndarray:
    """Geometries with coordinates rounded to the millimetre (float noise is no change)."""
    return shapely.transform(geoms, lambda c: np.round(c, 3))


def _isin(values: Any, among: Any) -> np.ndarray:
    """``values`` found in ``among`` (hashed object comparison: fast on any string dtype)."""
    index = pd.Index(np.asarray(values, dtype=object), dtype=object)
    return index.isin(np.asarray(among, dtype=object))


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


def _twice(sites: pd.DataFrame) -> None:
    dup = sites.loc[sites["site_id"].duplicated(), "site_id"].iloc[0]
    msg = f"the update holds site {dup!r} twice; site IDs must be unique"
    raise StoreError(msg)


def _in_list(values: Iterable[int]) -> str:
    """``fid IN (…)`` list of integers (internal ids, never user text)."""
    return ", ".join(str(int(v)) for v in values)
