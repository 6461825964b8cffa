"""Single-record writes: offer and status edits, replacements and ends of one site record.

Every write here is **one conditional statement**: the record is read, the lifecycle and
the caller's preconditions are checked against what was read, and the write is an
``UPDATE … WHERE fid = ? AND ended_at IS NULL AND status = ? AND updated_at = ? …``
(:meth:`~omw_sites.store.base.Transaction.conditional_update`) whose row count says
whether the record was still in the state the checks saw. When it was not (another
writer changed it, an ingest ended or replaced it), nothing was written; the record is
read again and:

- a current record with the same site ID (the same one changed, or a replacement) gets
  the edit again, re-checked against the lifecycle (``sold`` is final) and against the
  caller's version (``if_version``: 412 when it differs);
- a site that ended without a same-ID successor is refused with one line naming its
  successors (the current records whose ``derived_from`` lists it).

So a write is reported as done exactly when it landed, and refused exactly when it did
not. Each write moves the record's ``updated_at`` forward (at least by a microsecond), so
its :func:`record_version` changes with every write.

A record's version is an opaque strong validator of a current record: a hash of its
``created_at`` (a replacement is a new record), ``updated_at`` (every edit, measured
change and end moves it) and ``scored_run`` (a run that changes its scores sets it). All
three are published columns, so the API derives the same version from its in-memory
copy (:func:`version_of`) and the store from the record it writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from omw_sites.layers import RUN_INFO, SITES, excluded_col, rank_col, score_col
from omw_sites.scoring.engine import NOT_ON_OFFER, OFF_OFFER, offer_ranks, on_offer
from omw_sites.store.base import (
    CURRENT,
    HISTORY,
    SITE_RECORD_COLUMNS,
    as_text,
    history_rows,
    to_json,
    utc_now,
)
from omw_sites.store.edits import EDITABLE, STATUSES, TRANSITIONS, InventoryError, SiteEdit
from omw_sites.store.hashing import content_hash

if TYPE_CHECKING:
    from omw_sites.store.inventory import Inventory

#: columns of a record its version is made of (all published)
VERSION_COLUMNS = ("created_at", "updated_at", "scored_run")
#: how often an edit is re-tried on a record that keeps changing under it
MAX_ATTEMPTS = 20
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


class _Lost(Exception):
    """The conditional update matched no row: the record changed since it was read."""


# ------------------------------------------------------------------------------ versions
def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def version_of(created_at: Any, updated_at: Any, scored_run: Any) -> str:
    """The version of a record with these published columns (24 hex digits)."""
    key = "\x1f".join(_text(v) for v in (created_at, updated_at, scored_run))
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def record_version(record: Mapping[str, Any] | pd.Series) -> str:
    """The version of one site record (see the module docstring)."""
    return version_of(*(record.get(c) for c in VERSION_COLUMNS))


def parse_stamp(text: str) -> dt.datetime:
    """A store timestamp (ISO-8601 UTC text) as an aware datetime."""
    t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _next_stamp(now: str, previous: Any) -> str:
    """``now``, or a microsecond after ``previous`` if the clock has not passed it: each
    write moves ``updated_at`` (and so the record's version) forward."""
    if not _text(previous):
        return now
    try:
        after = parse_stamp(previous) + dt.timedelta(microseconds=1)
        if parse_stamp(now) >= after:
            return now
    except ValueError:
        return now
    return after.astimezone(dt.UTC).strftime(_STAMP)


# ------------------------------------------------------------------------------ reading
def current_record(inv: Inventory, site_id: str) -> pd.Series:
    """The current record of ``site_id`` (newest if there were ever two), the feature id
    as its ``name``. Refuses a site that never existed (404) and one that ended (409,
    naming its successors)."""
    for _ in range(MAX_ATTEMPTS):
        rows = inv.backend.query(
            f"SELECT fid, ended_at, ended_reason, updated_at FROM {SITES} WHERE site_id = ? "
            "ORDER BY created_at DESC",
            (site_id,),
        )
        live = rows[rows["ended_at"].isna()]
        if live.empty:
            if rows.empty:
                msg = f"no current site {site_id!r} in {inv.target}"
                raise InventoryError(msg, "site_id", status=404)
            raise ended_error(inv, site_id, rows.iloc[0])
        fid = int(live["fid"].iloc[0])
        frame = inv.backend.read_layer(SITES, where=f"fid = {fid} AND {CURRENT}", fid_as_index=True)
        if not frame.empty:
            return frame.iloc[0]
        # ended (or replaced) between the two reads: look again
    msg = f"site {site_id!r} kept changing while it was read; try again"
    raise InventoryError(msg, "site_id", status=409)


def successors(inv: Inventory, site_id: str) -> list[str]:
    """Current sites whose ``derived_from`` lists ``site_id`` (splits, merges, duplicates
    that took its land)."""
    if "derived_from" not in inv.backend.columns(SITES):
        return []
    escaped = site_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = inv.backend.query(
        f"SELECT site_id FROM {SITES} WHERE {CURRENT} "
        "AND (',' || derived_from || ',') LIKE ? ESCAPE '\\' ORDER BY site_id",
        (f"%,{escaped},%",),
    )
    return [str(s) for s in found["site_id"]]


def ended_error(inv: Inventory, site_id: str, row: Mapping[str, Any]) -> InventoryError:
    """The one-line refusal of a write to a site whose record has ended."""
    reason = _text(row.get("ended_reason")) or "no reason recorded"
    after = successors(inv, site_id)
    where = (
        f"its successor(s): {', '.join(after)} — change those instead"
        if after
        else "it has no current successor"
    )
    msg = f"site {site_id!r} has ended ({_text(row.get('ended_at'))}: {reason}); {where}"
    return InventoryError(msg, "site_id", status=409)


def user_ended_ids(inv: Inventory, site_ids: Iterable[str]) -> set[str]:
    """Of ``site_ids``, those without a current record whose latest record a person ended
    (``DELETE`` through the API, :func:`end_site`): an update must not bring them back as
    new "available" sites, nor end them again."""
    wanted = {str(s) for s in site_ids}
    if not wanted:
        return set()
    ends = inv.backend.query(
        f"SELECT site_id, changed_at FROM {HISTORY} WHERE kind = 'ended' AND source LIKE ?",
        ("user:%",),
    )
    ends = ends[ends["site_id"].astype(str).isin(wanted)]
    out = set()
    for sid, stamps in ends.groupby("site_id")["changed_at"]:
        rows = inv.backend.query(
            f"SELECT ended_at FROM {SITES} WHERE site_id = ? ORDER BY created_at DESC",
            (str(sid),),
        )
        if len(rows) and rows["ended_at"].notna().all() and rows["ended_at"].iloc[0] in set(stamps):
            out.add(str(sid))
    return out


DEFAULT_END_REASON = "withdrawn by {by}"  # the reason of an end by a person, by default


# ------------------------------------------------------------------------------ checks
def check_preconditions(
    site_id: str,
    rec: pd.Series,
    if_version: str | Iterable[str] | None,
    if_unmodified_since: dt.datetime | None,
) -> None:
    """412 when the record is not at one of the versions ``if_version`` names (``"*"``:
    any current record), or changed after ``if_unmodified_since`` (whole seconds, as
    HTTP dates have them)."""
    now = record_version(rec)
    if if_version is not None:
        wanted = {if_version} if isinstance(if_version, str) else set(if_version)
        if "*" not in wanted and now not in wanted:
            shown = ", ".join(sorted(wanted)) or "none"
            msg = (
                f"site {site_id!r} is at version {now}, not {shown}: it changed since it "
                "was read; read it again and retry"
            )
            raise InventoryError(msg, "if_version", status=412)
    if if_unmodified_since is not None:
        stamp = _text(rec.get("updated_at"))
        if stamp:
            changed = parse_stamp(stamp).replace(microsecond=0)
            since = if_unmodified_since
            since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
            if changed > since:
                msg = (
                    f"site {site_id!r} was modified at {stamp}, after "
                    f"{since.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}; read it again and retry"
                )
                raise InventoryError(msg, "if_unmodified_since", status=412)


def validated_changes(changes: Mapping[str, Any], replace: bool = False) -> dict[str, Any]:
    """The fields of ``changes`` (JSON values) checked against :class:`SiteEdit`; with
    ``replace`` every editable field, absent ones as None (cleared)."""
    if not isinstance(changes, Mapping):
        raise InventoryError("the changes must be an object of fields", "body")
    try:
        edit = SiteEdit.model_validate(dict(changes))
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "body"
        raise InventoryError(f"{name}: {err['msg']}", name) from exc
    if replace:
        given = edit.model_dump(mode="json")
        if given.get("status") is None:
            msg = "status: a replacement must give the status (available, reserved, …)"
            raise InventoryError(msg, "status")
        return given
    given = edit.model_dump(include=edit.model_fields_set, mode="json")
    if not given:
        raise InventoryError("nothing to change: give at least one field", "body")
    return given


def _documents(stored: Any, given: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """``given`` plus the stored non-public documents it does not list (by URL): a client
    that sees only the published documents does not drop the internal ones."""
    try:
        old = json.loads(stored) if isinstance(stored, str) and stored else []
    except ValueError:
        old = []
    listed = {str(d.get("url")) for d in given or []}
    kept = [
        d
        for d in old
        if isinstance(d, dict) and not d.get("public", True) and str(d.get("url")) not in listed
    ]
    out = [*(given or []), *kept]
    return out or None


def planned_values(
    rec: pd.Series, given: Mapping[str, Any], today: str, keep_private_documents: bool = False
) -> dict[str, Any]:
    """The fields of ``rec`` that ``given`` changes (store values), after the lifecycle
    check: a status move the lifecycle does not allow is refused (409; ``sold`` is final)."""
    given = dict(given)
    if "status" in given:
        new, old = given["status"], _text(rec.get("status"))
        if new is None:
            raise InventoryError("status cannot be cleared; give one of the statuses", "status")
        if new != old:
            if new not in TRANSITIONS.get(old, STATUSES):
                allowed = ", ".join(TRANSITIONS.get(old, ())) or "none (sold is final)"
                msg = f"status cannot move from {old!r} to {new!r}; allowed: {allowed}"
                raise InventoryError(msg, "status", status=409)
            if given.get("status_date") is None:
                given["status_date"] = today
    if "documents" in given:
        docs = given["documents"]
        if keep_private_documents:
            docs = _documents(rec.get("documents"), docs)
        given["documents"] = to_json(docs) if docs is not None else None
    return {
        name: value
        for name, value in given.items()
        if name in EDITABLE and as_text(rec.get(name)) != as_text(value)
    }


# ------------------------------------------------------------------------------ ranks
#: ``attrs`` key of a written record: the other records the write re-ranked (by site ID:
#: their new ``rank_<p>``, ``excluded_<p>``, ``scored_run``), for the API's served copy
RERANKED = "reranked"
_IN_CHUNK = 5000  # record ids per ``fid IN (…)`` read


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ranked_profiles(columns: Iterable[str]) -> list[str]:
    """Profiles whose score, rank and exclusion reason the site table holds."""
    have = set(columns)
    names = [c.removeprefix("rank_") for c in have if c.startswith("rank_")]
    return sorted(n for n in names if {score_col(n), excluded_col(n)} <= have)


def _methods(tx: Any) -> dict[str, str]:
    """The MCDA method of each profile of the latest run (PROMETHEE II keeps its order)."""
    try:
        row = tx.query(f"SELECT value FROM {RUN_INFO} WHERE key = ?", ("profiles",))
        entries = json.loads(row["value"].iloc[0]) if len(row) else []
    except Exception:  # no run record (an old store): every profile ranks by score
        return {}
    return {
        str(e["name"]): str(e.get("method") or "wlc")
        for e in entries
        if isinstance(e, dict) and "name" in e
    }


def rerank(tx: Any, columns: Sequence[str], stamp: str, keep_order: bool = False) -> pd.DataFrame:
    """Inside a write's transaction (under its lock): every profile's ranks made again
    over the current records with the statuses they hold now — sold and withdrawn sites
    get rank 0 and "not on offer", the others close the gap (one sort by score, see
    :func:`omw_sites.scoring.engine.offer_ranks`; ``keep_order``: the stored order, only
    the statuses move it — after a run). Only records whose rank or reason
    changed are written, and only those columns, with their scores hash made again (as
    the update engine makes it) and ``scored_run`` set to ``<run>@<stamp>`` (their
    version moves: a client's copy of them is stale). Returns the rows written (``fid``,
    ``site_id``, the changed columns)."""
    from omw_sites.store.update import derived_columns  # update imports this module

    names = ranked_profiles(columns)
    if not names or "status" not in columns:
        return pd.DataFrame()
    wanted = [c for p in names for c in (score_col(p), rank_col(p), excluded_col(p))]
    now = tx.query(
        f"SELECT fid, site_id, status, scored_run, {', '.join(map(_quoted, wanted))} "
        f"FROM {SITES} WHERE {CURRENT}"
    )
    offer = on_offer(now["status"], len(now))
    methods = _methods(tx)
    changes: dict[str, np.ndarray] = {}
    changed = np.zeros((len(now), len(names)), dtype=bool)
    for j, p in enumerate(names):
        old_rank = pd.to_numeric(now[rank_col(p)], errors="coerce").fillna(0).to_numpy(np.int64)
        old_reason = now[excluded_col(p)].fillna("").astype(str).to_numpy()
        rank, reason = offer_ranks(
            pd.to_numeric(now[score_col(p)], errors="coerce").to_numpy(dtype=float),
            old_reason,
            offer,
            old_rank,
            keep_order or methods.get(p) == "promethee2",
        )
        changed[:, j] = (rank != old_rank) | (reason != old_reason)
        if changed[:, j].any():
            changes[rank_col(p)], changes[excluded_col(p)] = rank, reason
    rows = np.flatnonzero(changed.any(axis=1))
    if not len(rows):
        return pd.DataFrame()
    out = pd.DataFrame({"fid": now["fid"].to_numpy()[rows].astype(np.int64)})
    out["site_id"] = now["site_id"].to_numpy()[rows]
    for name, values in changes.items():
        out[name] = values[rows]
    runs = now["scored_run"].fillna("").astype(str).str.split("@").str[0].to_numpy()[rows]
    out["scored_run"] = [f"{r}@{stamp}" for r in runs]
    out["scores_hash"] = _scores_hash(tx, out, derived_columns(columns))
    # one UPDATE per pattern of changed profiles: each record gets only its changed columns
    patterns, group = np.unique(changed[rows], axis=0, return_inverse=True)
    group = np.asarray(group).ravel()
    for g, pattern in enumerate(patterns):
        cols = [c for p, on in zip(names, pattern, strict=True) if on for c in _ranked(p)]
        part = out.loc[group == g, ["fid", *cols, "scored_run", "scores_hash"]]
        tx.update(SITES, "fid", part.reset_index(drop=True))
    return out.drop(columns="scores_hash")


def _ranked(profile: str) -> tuple[str, str]:
    return rank_col(profile), excluded_col(profile)


def offer_mismatch(tx: Any, columns: Sequence[str]) -> bool:
    """Inside a write's transaction: whether a current record's ranks disagree with its
    status — a sold or withdrawn site ranked, or a site on offer "not on offer" — in any
    profile (one scan, nothing read out: the check a run makes before :func:`rerank`)."""
    names = ranked_profiles(columns)
    if not names or "status" not in columns:
        return False
    off = ", ".join(f"'{s}'" for s in OFF_OFFER)
    ranked = " OR ".join(f"{_quoted(rank_col(p))} > 0" for p in names)
    marked = " OR ".join(f"{_quoted(excluded_col(p))} = ?" for p in names)
    found = tx.query(
        f"SELECT count(*) AS n FROM {SITES} WHERE {CURRENT} AND ("
        f"(status IN ({off}) AND ({ranked})) OR "
        f"(coalesce(status, '') NOT IN ({off}) AND ({marked})))",
        [NOT_ON_OFFER] * len(names),
    )
    return int(found["n"].iloc[0]) > 0


def _scores_hash(tx: Any, new: pd.DataFrame, derived: list[str]) -> np.ndarray:
    """The scores hash of the records ``new`` re-ranks: their stored derived columns, in
    the table's order, with the new ranks and reasons."""
    fids = new["fid"].to_numpy()
    parts = [
        tx.query(
            f"SELECT fid, {', '.join(map(_quoted, derived))} FROM {SITES} "
            f"WHERE fid IN ({', '.join(str(int(f)) for f in fids[i : i + _IN_CHUNK])})"
        )
        for i in range(0, len(fids), _IN_CHUNK)
    ]
    stored = pd.concat(parts, ignore_index=True).set_index("fid").loc[fids].reset_index(drop=True)
    for name in new.columns:
        if name in stored.columns:
            stored[name] = new[name].to_numpy()
    return content_hash(stored, derived, geometry=False)


# ------------------------------------------------------------------------------ writing
def _expect(rec: pd.Series) -> dict[str, Any]:
    """The state the conditional update requires: still current, same status, same
    version."""
    expect: dict[str, Any] = {"ended_at": None, "status": rec.get("status")}
    for name in VERSION_COLUMNS:
        expect[name] = rec.get(name) if name in rec.index else None
    return {k: (None if _text(v) == "" else str(v)) for k, v in expect.items()}


def _write(
    inv: Inventory,
    rec: pd.Series,
    values: Mapping[str, Any],
    history: list,
    ranks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One transaction: the conditional update, its history rows and, with ``ranks``
    (the site table's columns), the profiles re-ranked (:func:`rerank`, returned);
    :class:`_Lost` (and nothing written) when the record is no longer in the state
    ``rec`` shows."""
    with inv.backend.transaction() as tx:
        if tx.conditional_update(SITES, int(rec.name), dict(values), _expect(rec)) != 1:
            raise _Lost
        tx.insert(HISTORY, history_rows(history))
        if ranks is None:
            return pd.DataFrame()
        return rerank(tx, ranks, str(values["updated_at"]))


def _moves_offer(old: Any, new: Any) -> bool:
    """Whether a status change puts a site on offer or takes it off (ranks change)."""
    was, now = on_offer([_text(old)], 1)[0], on_offer([_text(new)], 1)[0]
    return bool(was != now)


def _written(rec: pd.Series, values: Mapping[str, Any], reranked: pd.DataFrame) -> pd.Series:
    """``rec`` as written: ``values``, its own new ranks, and the other re-ranked records
    in ``attrs[RERANKED]`` (by site ID)."""
    out = rec.copy()
    for name, value in values.items():
        out[name] = value
    if len(reranked):
        own = reranked["fid"].to_numpy() == int(rec.name)
        for name in reranked.columns.drop(["fid", "site_id"]):
            if own.any() and name in out.index:
                out[name] = reranked.loc[own, name].iloc[0]
        out.attrs[RERANKED] = reranked.drop(columns="fid").set_index("site_id")
    return out


def _typed(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if SITE_RECORD_COLUMNS.get(name) == "float":
            out[name] = None if value is None else float(value)
        else:
            out[name] = value
    return out


def edit(
    inv: Inventory,
    site_id: str,
    changes: Mapping[str, Any],
    by: str,
    now: str | None = None,
    *,
    if_version: str | Iterable[str] | None = None,
    if_unmodified_since: dt.datetime | None = None,
    replace: bool = False,
    keep_private_documents: bool = False,
    check: Callable[[pd.Series], None] | None = None,
    validate: Callable[[pd.Series], None] | None = None,
) -> pd.Series:
    """Change offer details and/or the status of the current record of ``site_id``.

    ``changes`` merge into the record (``replace``: they replace every offer and status
    field, absent ones cleared; ``keep_private_documents``: stored non-public documents
    the new list does not name stay). Every changed field is a history row by
    ``user:<by>``. Each attempt checks the record it is about to write, in this order:
    ``check(record)`` (may refuse it, e.g. an API key of another gmina), the
    preconditions ``if_version`` / ``if_unmodified_since`` (412), ``validate(record)``
    (may refuse the request against it, e.g. a measured value sent back changed), the
    lifecycle (409). Returns the record as written (as it was if nothing differed).
    """
    if not by or not str(by).strip():
        raise InventoryError("say who makes the change (--by / API key owner)", "by")
    given = validated_changes(changes, replace)
    for _ in range(MAX_ATTEMPTS):
        rec = current_record(inv, site_id)
        if check is not None:
            check(rec)
        check_preconditions(site_id, rec, if_version, if_unmodified_since)
        if validate is not None:
            validate(rec)
        stamp = _next_stamp(now or utc_now(), rec.get("updated_at"))
        values = _typed(planned_values(rec, given, stamp[:10], keep_private_documents))
        if not values:
            return rec
        history = [
            {
                "site_id": site_id,
                "field": name,
                "old_value": as_text(rec.get(name)),
                "new_value": as_text(value),
                "changed_at": stamp,
                "source": f"user:{by}",
                "run_id": "",
                "kind": "status" if name.startswith("status") else "offer",
            }
            for name, value in values.items()
        ]
        moves = "status" in values and _moves_offer(rec.get("status"), values["status"])
        ranks = inv.backend.columns(SITES) if moves else None
        written = {**values, "updated_at": stamp}
        try:
            reranked = _write(inv, rec, written, history, ranks)
        except _Lost:
            continue
        return _written(rec, written, reranked)
    msg = f"site {site_id!r} kept changing while this edit was retried; try again"
    raise InventoryError(msg, "site_id", status=409)


def end_site(
    inv: Inventory,
    site_id: str,
    by: str,
    reason: str | None = None,
    *,
    now: str | None = None,
    if_version: str | Iterable[str] | None = None,
    if_unmodified_since: dt.datetime | None = None,
    check: Callable[[pd.Series], None] | None = None,
) -> pd.Series:
    """End the current record of ``site_id`` (``ended_at``, the reason, a history row of
    kind ``ended`` by ``user:<by>``). The record is kept; the site is no longer current.
    Returns the ended record."""
    if not by or not str(by).strip():
        raise InventoryError("say who ends the site (--by / API key owner)", "by")
    reason = reason or DEFAULT_END_REASON.format(by=by)
    for _ in range(MAX_ATTEMPTS):
        rec = current_record(inv, site_id)
        if check is not None:
            check(rec)
        check_preconditions(site_id, rec, if_version, if_unmodified_since)
        stamp = _next_stamp(now or utc_now(), rec.get("updated_at"))
        values = {"ended_at": stamp, "ended_reason": reason, "updated_at": stamp}
        history = [
            {
                "site_id": site_id,
                "field": "",
                "old_value": None,
                "new_value": reason,
                "changed_at": stamp,
                "source": f"user:{by}",
                "run_id": "",
                "kind": "ended",
            }
        ]
        # a site on offer leaves the rankings: the others close the gap
        ranks = inv.backend.columns(SITES) if on_offer([_text(rec.get("status"))], 1)[0] else None
        try:
            reranked = _write(inv, rec, values, history, ranks)
        except _Lost:
            continue
        return _written(rec, values, reranked)
    msg = f"site {site_id!r} kept changing while it was being ended; try again"
    raise InventoryError(msg, "site_id", status=409)
