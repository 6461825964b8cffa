"""Investor enquiries in the inventory: the record, its status, its matches, the gminy's
answers, and its history.

Tables (:data:`~omw_sites.store.base.ENQUIRY_TABLES`, made by ``init`` on both
backends): ``enquiries`` (one row per enquiry; requirements, preferences and the latest
match as JSON), ``enquiry_sites`` (one row per site of each match: the shortlist and
the near misses, with the gmina's answer and whether the site went out in an offer) and
``enquiry_history`` (every change: field, old and new value, time, ``user:<name>``).

Every write is one transaction: the enquiry row is changed by one conditional
statement that holds only if the row is still as read (its ``updated_at`` and status),
so two writers never both move an enquiry on from the same state; the history rows go
in with it.

The investor's ``contact`` is confidential: :func:`public_view` is what anything
published (the API, an offer pack, a gmina's feed) may show of an enquiry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from omw_sites.scoring.matching import (
    Match,
    RequirementError,
    closest,
    parse_preferences,
    parse_requirements,
)
from omw_sites.store.base import (
    ENQUIRIES,
    ENQUIRIES_COLUMNS,
    ENQUIRY_HISTORY,
    ENQUIRY_HISTORY_COLUMNS,
    ENQUIRY_SITES,
    ENQUIRY_SITES_COLUMNS,
    StoreError,
    as_text,
    empty_table,
    to_json,
    utc_now,
)
from omw_sites.store.edits import InventoryError

if TYPE_CHECKING:
    from omw_sites.store.inventory import Inventory

STATUSES = ("new", "matched", "sent", "site_visit", "won", "lost", "withdrawn")
FINAL = ("won", "lost", "withdrawn")
#: moves a person makes with ``enquiry status`` (matching and sending have their commands)
MOVES = {
    "new": ("lost", "withdrawn"),
    "matched": ("lost", "withdrawn"),
    "sent": ("site_visit", "won", "lost", "withdrawn"),
    "site_visit": ("won", "lost", "withdrawn"),
}
MATCHABLE = ("new", "matched", "sent")  # a new match replaces the earlier shortlist
ANSWERABLE = ("matched", "sent", "site_visit")
OFFERABLE = ("matched", "sent", "site_visit")
ANSWERS = ("confirmed", "withdrawn")
ANSWER_FIELDS = (
    "answer",
    "answer_price_pln_m2",
    "answer_contact",
    "answered_at",
    "answered_by",
)
#: fields of an enquiry never published (API, offer pack, a gmina's feed)
PRIVATE = ("contact",)
FILE_KEYS = ("code_name", "sector", "deadline", "contact", "requirements", "preferences")
# contact: the catalogue form keeps there all the investor wrote (e-mail, phone, company,
# sites of interest, message): everything that may say who the investor is
MAX_TEXT = {"code_name": 100, "sector": 100, "contact": 2000, "reason": 1000}
ATTEMPTS = 10


class _Lost(Exception):
    """The enquiry changed since it was read: nothing of the attempt was written."""


# ------------------------------------------------------------------------------ reading
def _has_tables(inv: Inventory) -> bool:
    try:
        return ENQUIRIES in inv.backend.list_layers()
    except StoreError:
        if not inv.backend.exists():
            return False
        raise


def _frame(inv: Inventory, table: str, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    if not _has_tables(inv):
        columns = {ENQUIRIES: ENQUIRIES_COLUMNS, ENQUIRY_SITES: ENQUIRY_SITES_COLUMNS}
        return empty_table(columns.get(table, ENQUIRY_HISTORY_COLUMNS))
    return inv.backend.query(sql, params)


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: (None if as_text(v) is None else v) for k, v in row.items()}
    for name in ("requirements", "preferences", "match"):
        text = out.get(name)
        out[name] = json.loads(text) if isinstance(text, str) and text else None
    return out


def get(inv: Inventory, enquiry_id: str) -> dict[str, Any]:
    """One enquiry as stored, the confidential contact included (404 if unknown)."""
    rows = _frame(inv, ENQUIRIES, f"SELECT * FROM {ENQUIRIES} WHERE enquiry_id = ?", (enquiry_id,))
    if rows.empty:
        msg = f"no enquiry {enquiry_id!r} in {inv.target}; `omw-sites enquiry list` lists them"
        raise InventoryError(msg, "enquiry_id", status=404)
    return _record(rows.iloc[0].to_dict())


def public_view(enquiry: Mapping[str, Any]) -> dict[str, Any]:
    """What may be published of an enquiry: everything but the investor's contact (and
    the store's row id)."""
    return {k: v for k, v in enquiry.items() if k not in PRIVATE and k != "fid"}


def listing(inv: Inventory, status: str | None = None) -> pd.DataFrame:
    """Every enquiry (newest first), public columns; only ``status`` ones if given."""
    if status is not None and status not in STATUSES:
        msg = f"unknown enquiry status {status!r}; one of {', '.join(STATUSES)}"
        raise InventoryError(msg, "status")
    rows = _frame(inv, ENQUIRIES, f"SELECT * FROM {ENQUIRIES} ORDER BY enquiry_id DESC")
    if status is not None:
        rows = rows[rows["status"] == status]
    cols = ["enquiry_id", "code_name", "sector", "status", "deadline", "created_at", "updated_at"]
    return rows[cols].reset_index(drop=True)


def history(inv: Inventory, enquiry_id: str) -> pd.DataFrame:
    """Every change of one enquiry, oldest first."""
    get(inv, enquiry_id)
    rows = _frame(
        inv,
        ENQUIRY_HISTORY,
        f"SELECT * FROM {ENQUIRY_HISTORY} WHERE enquiry_id = ? ORDER BY changed_at",
        (enquiry_id,),
    )
    return rows[list(ENQUIRY_HISTORY_COLUMNS)].reset_index(drop=True)


_LATEST = (
    f"SELECT * FROM {ENQUIRY_SITES} WHERE enquiry_id = ? AND match_no = "
    f"(SELECT max(match_no) FROM {ENQUIRY_SITES} WHERE enquiry_id = ?)"
)


def matched_sites(
    inv: Inventory, enquiry_id: str, role: str | None = None, tx: Any = None
) -> pd.DataFrame:
    """The sites of the enquiry's latest match (shortlist then near misses, in order);
    read inside the write transaction ``tx`` when given."""
    if tx is not None:
        rows = tx.query(_LATEST, (enquiry_id, enquiry_id))
    else:
        rows = _frame(inv, ENQUIRY_SITES, _LATEST, (enquiry_id, enquiry_id))
    if role is not None:
        rows = rows[rows["role"] == role]
    rows = rows.sort_values(["role", "position"], ascending=[False, True], kind="stable")
    return rows[list(ENQUIRY_SITES_COLUMNS)].reset_index(drop=True)


def gmina_view(
    inv: Inventory, enquiry: Mapping[str, Any], gminy: frozenset[str]
) -> dict[str, Any] | None:
    """What a gmina of ``gminy`` (``"*"``: any) sees of one enquiry: its public view
    without the match (which names the other gminy' sites), with ``sites``, the sites of
    those gminy on the current shortlist and their answers so far; None when the
    shortlist holds none of them (the enquiry does not concern those gminy)."""
    sites = matched_sites(inv, str(enquiry["enquiry_id"]), "shortlist")
    if "*" not in gminy:
        sites = sites[sites["teryt"].astype(str).isin(gminy)]
    if sites.empty:
        return None
    view = public_view(enquiry)
    view.pop("match", None)
    cols = ["site_id", "teryt", "gmina", "position", *ANSWER_FIELDS]
    view["sites"] = [{k: _plain(v) for k, v in r.items()} for r in sites[cols].to_dict("records")]
    return view


def gmina_feed(inv: Inventory, gminy: frozenset[str]) -> list[dict[str, Any]]:
    """The open enquiries (not won, lost or withdrawn) whose current shortlist holds a
    site of ``gminy`` (``"*"``: any), oldest first: each one's :func:`gmina_view` (never
    the investor's contact, nor the match's other gminy)."""
    rows = _frame(inv, ENQUIRIES, f"SELECT * FROM {ENQUIRIES} ORDER BY enquiry_id")
    out = []
    for rec in rows.to_dict("records"):
        if rec["status"] in FINAL:
            continue
        view = gmina_view(inv, _record(rec), gminy)
        if view is not None:
            out.append(view)
    return out


def records(inv: Inventory, status: str | None = None) -> list[dict[str, Any]]:
    """Every enquiry as stored (the contact and the match included), oldest first; only
    ``status`` ones if given. For the regional office only."""
    listing(inv, status)  # checks the status
    rows = _frame(inv, ENQUIRIES, f"SELECT * FROM {ENQUIRIES} ORDER BY enquiry_id")
    out = []
    for rec in rows.to_dict("records"):
        if status is None or rec["status"] == status:
            full = _record(rec)
            full.pop("fid", None)
            out.append(full)
    return out


#: history kinds a gmina sees of an enquiry that concerns it (with its own sites' answers)
GMINA_KINDS = ("created", "matched", "status")


def changes_since(
    inv: Inventory, since: str, gminy: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """The enquiries' history rows after ``since`` (ISO date or date-time), oldest first.

    ``gminy`` None: every row (the regional office). Else only the rows of enquiries
    whose current shortlist holds a site of those gminy (``"*"``: any): their creation
    (without the contact row), match and status rows, and the answers about those gminy'
    own sites — never the investor's contact, the offer's site list or another gmina's
    answer."""
    from omw_sites.store.inventory import normalise_timestamp

    start = normalise_timestamp(since)
    rows = _frame(
        inv,
        ENQUIRY_HISTORY,
        f"SELECT * FROM {ENQUIRY_HISTORY} WHERE changed_at > ? ORDER BY changed_at",
        (start,),
    )
    rows = rows[list(ENQUIRY_HISTORY_COLUMNS)]
    if gminy is not None and not rows.empty:
        mine: dict[str, set[str]] = {}
        for eid in rows["enquiry_id"].astype(str).unique():
            sites = matched_sites(inv, eid, "shortlist")
            if "*" not in gminy:
                sites = sites[sites["teryt"].astype(str).isin(gminy)]
            if not sites.empty:
                mine[eid] = set(sites["site_id"].astype(str))
        eids = rows["enquiry_id"].astype(str)
        site = rows["site_id"].fillna("").astype(str)
        kind = rows["kind"].astype(str)
        own_answer = [
            k == "answer" and e in mine and s in mine[e]
            for k, e, s in zip(kind, eids, site, strict=True)
        ]
        shown = (eids.isin(list(mine)) & kind.isin(GMINA_KINDS)) | pd.Series(
            own_answer, index=rows.index
        )
        shown &= rows["field"].fillna("").astype(str) != "contact"
        rows = rows[shown]
    return [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict("records")]


# ------------------------------------------------------------------------------ checks
def _text(doc: Mapping[str, Any], name: str, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RequirementError(name, "is required")
        return None
    if not isinstance(value, str):
        raise RequirementError(name, f"must be text, not {value!r}")
    if len(value) > MAX_TEXT.get(name, 200):
        raise RequirementError(name, f"at most {MAX_TEXT.get(name, 200)} characters")
    return value.strip()


def _date(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError as exc:
        raise RequirementError(name, f"{value!r} is not a date (YYYY-MM-DD)") from exc


def validated(doc: Any) -> dict[str, Any]:
    """An enquiry (as its file's table) checked: the store's column values.

    Raises :class:`~omw_sites.scoring.matching.RequirementError` naming the field and the
    rule (unknown keys and criteria named with the closest known ones)."""
    if not isinstance(doc, Mapping):
        raise RequirementError("enquiry", "must be a table of code_name, requirements, …")
    for key in doc:
        if key not in FILE_KEYS:
            raise RequirementError(str(key), f"unknown field; {closest(str(key), FILE_KEYS)}")
    req = parse_requirements(doc.get("requirements") or {})
    prefs = parse_preferences(doc.get("preferences"), req)
    return {
        "code_name": _text(doc, "code_name", required=True),
        "sector": _text(doc, "sector"),
        "deadline": _date(doc.get("deadline"), "deadline"),
        "contact": _text(doc, "contact"),
        "requirements": to_json(req.to_json()),
        "preferences": to_json(prefs.to_json()),
    }


# ------------------------------------------------------------------------------ writing
def _who(by: str) -> str:
    if not by or not str(by).strip():
        raise InventoryError("say who makes the change (--by / API key owner)", "by")
    return f"user:{str(by).strip()}"


def _plain(value: Any) -> Any:
    """A value read from the store as a plain Python value (None for NULL/NaN)."""
    if as_text(value) is None:
        return None
    return value.item() if hasattr(value, "item") else value


def _history(enquiry_id: str, source: str, stamp: str, kind: str, **row: Any) -> dict[str, Any]:
    out = dict.fromkeys(ENQUIRY_HISTORY_COLUMNS)
    out.update(enquiry_id=enquiry_id, site_id="", field="", changed_at=stamp, source=source)
    out.update(kind=kind, **row)
    return out


def _rows(rows: list[dict[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns)) if rows else empty_table(columns)
    for name, kind in columns.items():
        if kind == "text":
            frame[name] = frame[name].astype(object)
    return frame


def add(inv: Inventory, doc: Mapping[str, Any], by: str, now: str | None = None) -> dict[str, Any]:
    """Record a new enquiry (status ``new``) from its file's table; returns it.

    Refused while the inventory holds no sites: there is nothing to match, and a first
    load replaces the whole store."""
    source = _who(by)
    try:
        values = validated(doc)
    except RequirementError as exc:
        raise InventoryError(str(exc), exc.field) from exc
    if not inv.has_sites():
        msg = f"the inventory {inv.target} holds no sites yet; load them first (`omw-sites run`)"
        raise InventoryError(msg, "store", status=409)
    inv.backend.init()  # makes the enquiry tables of a store from before them
    stamp = now or utc_now()
    with inv.backend.transaction() as tx:
        held = tx.query(f"SELECT enquiry_id FROM {ENQUIRIES}")
        numbers = [int(s[1:]) for s in held["enquiry_id"].astype(str) if s[1:].isdigit()]
        enquiry_id = f"E{max(numbers, default=0) + 1:04d}"
        row = {
            **dict.fromkeys(ENQUIRIES_COLUMNS),
            **values,
            "enquiry_id": enquiry_id,
            "status": "new",
            "created_at": stamp,
            "created_by": source[5:],
            "updated_at": stamp,
        }
        tx.insert(ENQUIRIES, _rows([row], ENQUIRIES_COLUMNS))
        hist = [_history(enquiry_id, source, stamp, "created", new_value=values["code_name"])]
        for name in ("sector", "deadline", "requirements", "preferences"):
            if values[name] is not None:
                hist.append(
                    _history(
                        enquiry_id, source, stamp, "created", field=name, new_value=values[name]
                    )
                )
        if values["contact"] is not None:  # the history says it was set, never what it is
            hist.append(
                _history(enquiry_id, source, stamp, "created", field="contact", new_value="(set)")
            )
        tx.insert(ENQUIRY_HISTORY, _rows(hist, ENQUIRY_HISTORY_COLUMNS))
    return get(inv, enquiry_id)


def _next_stamp(now: str | None, previous: Any) -> str:
    stamp = now or utc_now()
    prev = as_text(previous)
    if prev and stamp <= prev:  # every write moves updated_at forward
        t = dt.datetime.fromisoformat(prev.replace("Z", "+00:00")) + dt.timedelta(microseconds=1)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp


def _write(
    inv: Inventory,
    enquiry_id: str,
    plan: Any,
    now: str | None = None,
) -> dict[str, Any]:
    """Read the enquiry, let ``plan(rec, stamp, tx)`` check it and return
    ``(values, history rows)``, and write both in one transaction if the row is still as
    read (else read again and re-plan)."""
    for _ in range(ATTEMPTS):
        rec = get(inv, enquiry_id)
        stamp = _next_stamp(now, rec["updated_at"])
        expect = {"updated_at": rec["updated_at"], "status": rec["status"]}
        try:
            with inv.backend.transaction() as tx:
                values, hist = plan(rec, stamp, tx)
                values = {**values, "updated_at": stamp}
                if tx.conditional_update(ENQUIRIES, int(rec["fid"]), values, expect) != 1:
                    raise _Lost  # rolls back what this attempt wrote
                tx.insert(ENQUIRY_HISTORY, _rows(hist, ENQUIRY_HISTORY_COLUMNS))
        except _Lost:
            continue
        return get(inv, enquiry_id)
    msg = f"enquiry {enquiry_id!r} kept changing while it was written; try again"
    raise InventoryError(msg, "enquiry_id", status=409)


def _refuse_status(rec: Mapping[str, Any], allowed: Sequence[str], action: str) -> None:
    if rec["status"] not in allowed:
        msg = (
            f"enquiry {rec['enquiry_id']} is {rec['status']}: it cannot be {action} "
            f"(only when {', '.join(allowed)})"
        )
        raise InventoryError(msg, "status", status=409)


def record_match(
    inv: Inventory, enquiry_id: str, result: Match, by: str, now: str | None = None
) -> dict[str, Any]:
    """Store a match on the enquiry (status ``matched``; its shortlist and near misses
    replace the earlier match's as the current ones; a history row)."""
    source = _who(by)

    def plan(rec: Mapping[str, Any], stamp: str, tx: Any) -> tuple[dict, list]:
        _refuse_status(rec, MATCHABLE, "matched")
        held = tx.query(
            f"SELECT max(match_no) AS n FROM {ENQUIRY_SITES} WHERE enquiry_id = ?", (enquiry_id,)
        )
        number = int(pd.to_numeric(held["n"], errors="coerce").fillna(0).iloc[0]) + 1
        before = matched_sites(inv, enquiry_id, "shortlist", tx).set_index("site_id")
        rows = []
        for role, items in (("shortlist", result.shortlist), ("near_miss", result.near_misses)):
            for item in items:
                row = dict.fromkeys(ENQUIRY_SITES_COLUMNS)
                row.update(
                    row_key=f"{enquiry_id}/{number}/{item['site_id']}",
                    enquiry_id=enquiry_id,
                    match_no=number,
                    site_id=item["site_id"],
                    teryt=item["teryt"],
                    gmina=item["gmina"],
                    role=role,
                    position=item["position"],
                    failed=item.get("failed"),
                    offered=0,
                    matched_at=stamp,
                )
                if role == "shortlist" and item["site_id"] in before.index:
                    # a gmina's answer for a site still shortlisted stands
                    old = before.loc[item["site_id"]]
                    row.update({k: _plain(old[k]) for k in ANSWER_FIELDS})
                rows.append(row)
        frame = _rows(rows, ENQUIRY_SITES_COLUMNS)
        frame["answer_price_pln_m2"] = frame["answer_price_pln_m2"].astype(float)
        tx.insert(ENQUIRY_SITES, frame)
        summary = (
            f"match {number}: {len(result.shortlist)} shortlisted, "
            f"{len(result.near_misses)} near misses, {result.candidates} met every requirement"
        )
        hist = [_history(enquiry_id, source, stamp, "matched", field="match", new_value=summary)]
        if rec["status"] != "matched":
            hist.append(_status_row(enquiry_id, source, stamp, rec["status"], "matched"))
        return {
            "status": "matched",
            "match": to_json({**result.to_json(), "match_no": number}),
        }, hist

    return _write(inv, enquiry_id, plan, now)


def _status_row(enquiry_id: str, source: str, stamp: str, old: str, new: str) -> dict[str, Any]:
    return _history(
        enquiry_id, source, stamp, "status", field="status", old_value=old, new_value=new
    )


def answer(
    inv: Inventory,
    enquiry_id: str,
    site_id: str,
    confirmed: bool,
    by: str,
    price: float | None = None,
    contact: str | None = None,
    gminy: frozenset[str] | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """A gmina's answer for one shortlisted site: available for this offer (``confirmed``,
    optionally with a price and a contact) or withdrawn from it. ``gminy``: the gminy
    the one answering speaks for (``"*"``: any); a site of another gmina is refused
    (403), as is a site not on the current shortlist (409). Returns the site's row."""
    source = _who(by)
    if price is not None and not 0 <= price <= 1_000_000:
        raise InventoryError(f"price {price:g} PLN/m² is not between 0 and 1,000,000", "price")
    if contact is not None and len(contact) > MAX_TEXT["contact"]:
        raise InventoryError(f"contact: at most {MAX_TEXT['contact']} characters", "contact")
    word = "confirmed" if confirmed else "withdrawn"

    def plan(rec: Mapping[str, Any], stamp: str, tx: Any) -> tuple[dict, list]:
        _refuse_status(rec, ANSWERABLE, "answered")
        rows = matched_sites(inv, enquiry_id, "shortlist", tx)
        mine = rows[rows["site_id"] == site_id]
        if mine.empty:
            listed = ", ".join(rows["site_id"]) or "none"
            msg = f"site {site_id} is not on the shortlist of enquiry {enquiry_id} ({listed})"
            raise InventoryError(msg, "site", status=409)
        row = mine.iloc[0]
        if gminy is not None and "*" not in gminy and str(row["teryt"]) not in gminy:
            msg = f"site {site_id} lies in gmina {row['teryt']}, not one this answer speaks for"
            raise InventoryError(msg, "gmina", status=403)
        deadline = as_text(rec.get("deadline"))
        if gminy is not None and "*" not in gminy and deadline and stamp[:10] > deadline:
            # a gmina answers before the deadline; a late answer goes through the regional
            # office, which may still record it (CLI, regional key)
            msg = (
                f"the deadline of enquiry {enquiry_id} was {deadline}: answers from a gmina "
                "are closed; the regional office can still record one"
            )
            raise InventoryError(msg, "deadline", status=409)
        change = {
            "row_key": row["row_key"],
            "answer": word,
            "answer_price_pln_m2": None if price is None else float(price),
            "answer_contact": contact,
            "answered_at": stamp,
            "answered_by": source[5:],
        }
        frame = pd.DataFrame([change]).astype(object)
        frame["answer_price_pln_m2"] = frame["answer_price_pln_m2"].astype(float)
        tx.update(ENQUIRY_SITES, "row_key", frame)
        changed = [
            name
            for name in ("answer", "answer_price_pln_m2", "answer_contact")
            if as_text(row[name]) != as_text(change[name])
        ]
        # the same answer again is still a row: the gmina answered
        hist = [
            _history(
                enquiry_id,
                source,
                stamp,
                "answer",
                site_id=site_id,
                field=name,
                old_value=as_text(row[name]),
                new_value=as_text(change[name]),
            )
            for name in changed or ["answer"]
        ]
        return {}, hist

    _write(inv, enquiry_id, plan, now)
    rows = matched_sites(inv, enquiry_id, "shortlist")
    return rows[rows["site_id"] == site_id].iloc[0].to_dict()


def mark_offered(
    inv: Inventory, enquiry_id: str, site_ids: Sequence[str], by: str, now: str | None = None
) -> dict[str, Any]:
    """The offer pack went out with ``site_ids``: they are marked offered, the enquiry is
    ``sent`` (history rows)."""
    source = _who(by)

    def plan(rec: Mapping[str, Any], stamp: str, tx: Any) -> tuple[dict, list]:
        _refuse_status(rec, OFFERABLE, "offered")
        rows = matched_sites(inv, enquiry_id, "shortlist", tx)
        rows = rows[rows["site_id"].isin(list(site_ids))]
        if len(rows):
            tx.update(
                ENQUIRY_SITES,
                "row_key",
                pd.DataFrame({"row_key": rows["row_key"].to_numpy(), "offered": 1}),
            )
        hist = [
            _history(
                enquiry_id,
                source,
                stamp,
                "offer",
                field="offer",
                new_value=",".join(map(str, site_ids)) or "(no site)",
            )
        ]
        if rec["status"] != "sent":
            hist.append(_status_row(enquiry_id, source, stamp, rec["status"], "sent"))
        return {"status": "sent"}, hist

    return _write(inv, enquiry_id, plan, now)


def set_status(
    inv: Inventory,
    enquiry_id: str,
    status: str,
    by: str,
    reason: str | None = None,
    site: str | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """Move an enquiry on (site_visit, won, lost, withdrawn) with the reason; ``won``
    may name the chosen site (one that went out in the offer)."""
    source = _who(by)
    if status not in STATUSES:
        raise InventoryError(f"unknown status {status!r}; one of {', '.join(STATUSES)}", "status")
    if status in FINAL and not (reason or "").strip():
        raise InventoryError(f"status {status} needs the reason (--reason)", "reason")
    if reason and len(reason) > MAX_TEXT["reason"]:
        raise InventoryError(f"reason: at most {MAX_TEXT['reason']} characters", "reason")
    if site and status != "won":
        raise InventoryError("--site names the chosen site: only with status won", "site")

    def plan(rec: Mapping[str, Any], stamp: str, tx: Any) -> tuple[dict, list]:
        allowed = MOVES.get(rec["status"], ())
        if status not in allowed:
            shown = ", ".join(allowed) or f"none ({rec['status']} is final)"
            msg = (
                f"enquiry {enquiry_id} cannot move from {rec['status']} to {status}; "
                f"allowed: {shown}"
            )
            raise InventoryError(msg, "status", status=409)
        values: dict[str, Any] = {"status": status, "status_reason": reason}
        hist = [_status_row(enquiry_id, source, stamp, rec["status"], status)]
        if reason:
            hist.append(
                _history(
                    enquiry_id,
                    source,
                    stamp,
                    "status",
                    field="status_reason",
                    old_value=rec["status_reason"],
                    new_value=reason,
                )
            )
        if site:
            offered = matched_sites(inv, enquiry_id, "shortlist", tx)
            offered = offered[offered["offered"].fillna(0).astype(int) == 1]
            if site not in set(offered["site_id"]):
                msg = f"site {site} did not go out in the offer of enquiry {enquiry_id}"
                raise InventoryError(msg, "site", status=409)
            values["chosen_site"] = site
            hist.append(
                _history(
                    enquiry_id,
                    source,
                    stamp,
                    "status",
                    site_id=site,
                    field="chosen_site",
                    new_value=site,
                )
            )
        return values, hist

    return _write(inv, enquiry_id, plan, now)


# ------------------------------------------------------------------------------ summary
def summary(inv: Inventory, since: str | None = None) -> pd.DataFrame:
    """Per gmina, over the enquiries made since ``since`` (a date): in how many its sites
    were shortlisted, offered and chosen, and the requirement its near misses failed
    most often (with how many enquiries it failed)."""
    enq = _frame(inv, ENQUIRIES, f"SELECT enquiry_id, created_at, chosen_site FROM {ENQUIRIES}")
    if since:
        start = _date(since, "since")
        enq = enq[enq["created_at"].astype(str) >= str(start)]
    cols = ["teryt", "gmina", "shortlisted", "offered", "chosen", "most_failed", "failed_enquiries"]
    rows = _frame(inv, ENQUIRY_SITES, f"SELECT * FROM {ENQUIRY_SITES}")
    rows = rows[rows["enquiry_id"].isin(set(enq["enquiry_id"]))]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    latest = rows.groupby("enquiry_id")["match_no"].transform("max")
    current = rows[rows["match_no"] == latest]
    short = rows[rows["role"] == "shortlist"]  # a site offered in an earlier match counts
    names = rows.groupby("teryt")["gmina"].last()
    out = pd.DataFrame({"teryt": names.index, "gmina": names.to_numpy()}).set_index("teryt")
    out["shortlisted"] = short.groupby("teryt")["enquiry_id"].nunique()
    offered = short[pd.to_numeric(short["offered"], errors="coerce").fillna(0) == 1]
    out["offered"] = offered.groupby("teryt")["enquiry_id"].nunique()
    chosen = enq[enq["chosen_site"].notna()]
    won = short[
        short.set_index(["enquiry_id", "site_id"]).index.isin(
            list(zip(chosen["enquiry_id"], chosen["chosen_site"], strict=True))
        )
    ]
    out["chosen"] = won.groupby("teryt")["enquiry_id"].nunique()
    near = current[current["role"] == "near_miss"]
    counts = near.groupby(["teryt", "failed"])["enquiry_id"].nunique().reset_index(name="n")
    counts = counts.sort_values(["teryt", "n", "failed"], ascending=[True, False, True])
    top = counts.groupby("teryt").head(1).set_index("teryt")
    out["most_failed"] = top["failed"]
    out["failed_enquiries"] = top["n"]
    for name in ("shortlisted", "offered", "chosen", "failed_enquiries"):
        out[name] = out[name].fillna(0).astype(int)
    out["most_failed"] = out["most_failed"].fillna("")
    out = out.reset_index().sort_values(["shortlisted", "teryt"], ascending=[False, True])
    return out[cols].reset_index(drop=True)
