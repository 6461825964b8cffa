"""The regional inventory: incremental updates, history, status lifecycle, provenance.

:class:`Inventory` sits on a :class:`~omw_sites.store.base.Backend` (GeoPackage or PostGIS)
and is the only writer of the store. An ingest hands it the freshly measured and scored
sites; it compares them with the current records by content hash and, in **one
transaction**, inserts the new sites, updates the changed ones field by field (each change
a history row), ends the sites that disappeared from the updated area (records are never
deleted), refreshes scores and ranks, and records the run with its provenance
(:mod:`omw_sites.store.update`). Offer details and the status lifecycle are edited by
people (CLI, API) through :meth:`Inventory.edit` (:mod:`omw_sites.store.lifecycle`); API
write keys are in :mod:`omw_sites.store.keys`, content hashes in
:mod:`omw_sites.store.hashing`.

Several writers may work on one store at once: an update is prepared from the store as
read at one version (:meth:`~omw_sites.store.base.Backend.version`) and commits only if
no one else committed since; otherwise it is prepared again from the new state. An
update that would end more than :data:`~omw_sites.store.update.MASS_END_SHARE` of the
sites in its scope is refused unless allowed
(:func:`~omw_sites.store.update.check_mass_end`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from omw_sites.layers import SITES
from omw_sites.store import keys, lifecycle, update
from omw_sites.store.base import (
    CURRENT,
    HISTORY,
    HISTORY_COLUMNS,
    PROVENANCE,
    RUNS,
    Backend,
    StagedLayer,
    StagedSites,
    StoreError,
    as_text,
    history_rows,
)
from omw_sites.store.edits import EDITABLE, InventoryError
from omw_sites.store.update import DEDUPE_OVERLAP, ChangeReport, tracked_columns

__all__ = ["CURRENT", "EDITABLE", "ChangeReport", "Inventory", "InventoryError"]

_HISTORY_SELECT = ", ".join(HISTORY_COLUMNS)


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

    def statuses(self, site_ids: Iterable[str]) -> np.ndarray | None:
        """The status the store holds for each of ``site_ids`` (a current record's; None
        where there is none), or None when the store holds no sites yet: scoring ranks
        only the sites on offer (:func:`omw_sites.scoring.engine.score_profile`)."""
        if not self.has_sites() or "status" not in self.backend.columns(SITES):
            return None
        held = self.backend.query(f"SELECT site_id, status FROM {SITES} WHERE {CURRENT}")
        found = pd.Series(held["status"].to_numpy(), index=held["site_id"].astype(str))
        found = found[~found.index.duplicated(keep="last")]
        ids = pd.Index(np.asarray(list(site_ids), dtype=object)).astype(str)
        return found.reindex(ids).to_numpy(dtype=object)

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
        out = pd.concat([history_rows(created), rows], ignore_index=True)
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
                    "value": as_text(rec.get(col)),
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
        reference: Mapping[str, gpd.GeoDataFrame | StagedLayer] | None = None,
        run_info: Mapping[str, Any] | None = None,
        quarantine: pd.DataFrame | None = None,
        scope: Sequence[str] | None = None,
        source: str | None = None,
        now: str | None = None,
        dedupe_overlap: float = DEDUPE_OVERLAP,
        allow_mass_end: bool = False,
        staged: StagedSites | None = None,
    ) -> ChangeReport:
        """Bring the inventory up to date with freshly measured and scored ``sites``.

        Parameters
        ----------
        sites : the run's sites (site_id, measured columns, scores), EPSG:2180
        reference : reference layers to replace (junctions, utilities, …): frames, or
            in a PostGIS store layers another process staged beside it
            (:class:`~omw_sites.store.base.StagedLayer`), moved in by the transaction
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
            :data:`~omw_sites.store.update.MASS_END_SHARE` of the current sites in scope
            (see :func:`~omw_sites.store.update.check_mass_end`); without it such an
            update is refused before writing
        staged : in a PostGIS store, the sites' measured columns and shapes, staged
            beside it by the processes that measured them
            (:class:`~omw_sites.store.base.StagedSites`); ``sites`` then holds their
            IDs, content hashes, the columns scoring read and the scores, without
            shapes, and only the rows the update adds or changes are read from the stage

        Everything happens in one transaction; on any error the store is as before. The
        update is prepared from the store as read, and its transaction commits only if no
        other writer changed the set of current records meanwhile (an update, a first
        load, an end) nor edited a record this update ends (see
        :func:`~omw_sites.store.update.unchanged_since`); otherwise it is prepared again
        from the new state, up to :data:`~omw_sites.store.update.APPLY_ATTEMPTS` times.
        Edits of other records land beside it. A first load replaces the store only if
        nothing was written to it since it was found without sites.
        """
        layers = [n for n, g in (reference or {}).items() if isinstance(g, StagedLayer)]
        if layers and not self.backend.takes_staged:
            msg = (
                f"reference layer {layers[0]!r} was staged in a PostGIS database; store "
                f"{self.target} cannot take it (only a PostGIS store can)"
            )
            raise StoreError(msg)
        if staged is not None and not self.backend.takes_staged:
            msg = (
                f"the sites were staged in a PostGIS database; store {self.target} "
                "cannot take them (only a PostGIS store can)"
            )
            raise StoreError(msg)
        job = update.Job.prepare(
            sites,
            reference,
            run_info,
            quarantine,
            scope,
            source,
            now,
            dedupe_overlap,
            allow_mass_end,
            staged,
        )
        return update.apply(self, job)

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
        return lifecycle.end_site(self, site_id, by, reason, if_version=if_version, **options)

    @staticmethod
    def record_version(record: Mapping[str, Any] | pd.Series) -> str:
        """An opaque strong version of a current record: it changes whenever the record
        changes or is replaced (see :func:`omw_sites.store.lifecycle.record_version`)."""
        return lifecycle.record_version(record)

    # ---------------------------------------------------------------- API keys
    def add_api_key(self, name: str, teryt: Sequence[str]) -> str:
        """See :func:`omw_sites.store.keys.add_api_key`."""
        return keys.add_api_key(self.backend, name, teryt)

    def api_keys(self) -> pd.DataFrame:
        """See :func:`omw_sites.store.keys.api_keys`."""
        return keys.api_keys(self.backend)

    def revoke_api_key(self, name: str) -> int:
        """See :func:`omw_sites.store.keys.revoke_api_key`."""
        return keys.revoke_api_key(self.backend, name)

    def authorise(self, key: str | None) -> tuple[str, frozenset[str]] | None:
        """See :func:`omw_sites.store.keys.authorise`."""
        return keys.authorise(self.backend, key)
