"""``/enquiries``: investor enquiries through the API, for the regional office's tools and
the gminy's.

Every request carries an API key (:mod:`omw_sites.store.keys`). The regional office's key
(scope ``region``, ``omw-sites apikey add NAME --region``) records an enquiry, matches
it, moves its status and reads it whole, the investor's confidential contact included.
A gmina's key reads only the enquiries whose current shortlist holds a site of its
gminy, as :func:`omw_sites.store.enquiries.gmina_view` shows them (no contact, no other
gmina's sites), and answers for its own sites. Every write is a history row of the
enquiry under the key holder's name; ``/enquiries/changes`` is the feed of those rows
since a moment, filtered the same way for a gmina's key.

Responses are JSON, never cached by a shared cache (``Cache-Control: private,
no-store``); errors are problem bodies in the request's language.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import orjson
import pandas as pd
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from omw_sites.api.catalog import Catalog
from omw_sites.api.params import check_format, check_params, format_query, lang_query
from omw_sites.api.problems import ProblemError, Text, bad_parameter
from omw_sites.api.responses import JSON
from omw_sites.api.routes.writes import _holder
from omw_sites.api.write_bodies import json_body
from omw_sites.store import Inventory, InventoryError, StoreError
from omw_sites.store import enquiries as E
from omw_sites.store.keys import is_regional

router = APIRouter()

_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
_HEADERS = {"Cache-Control": "private, no-store", "Vary": "Authorization, X-API-Key"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key, or an unknown or revoked one"},
    403: {
        "description": "the key may not do this (a gmina's key for an office's task, or "
        "an enquiry that does not concern its gminy)"
    },
    404: {"description": "no enquiry with this id"},
    503: {"description": "the store is busy or unreachable; nothing was changed"},
}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    409: {
        "description": "the enquiry's status does not allow this, or the site is not on "
        "its shortlist"
    },
    415: {"description": "the body is not JSON"},
    422: {"description": "a field is invalid (named, with the rule)"},
}
_TEXT = {"type": "string"}
ENQUIRY_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code_name"],
    "additionalProperties": False,
    "properties": {
        "code_name": {**_TEXT, "maxLength": 100, "description": "the investor's code name"},
        "sector": {**_TEXT, "maxLength": 100},
        "deadline": {**_TEXT, "format": "date", "description": "answer by (YYYY-MM-DD)"},
        "contact": {
            **_TEXT,
            "description": "the investor's contact: confidential, never "
            "published, shown only to the regional office's key",
        },
        "requirements": {
            "type": "object",
            "description": "area_ha {min, max}, profile, limits {criterion: {min, max}}, "
            "max_price_pln_m2, zoning_classes, ownership, statuses (as the enquiry file)",
        },
        "preferences": {"type": "object", "description": "profile and weights"},
    },
}
MATCH_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "top": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
        "cap_per_gmina": {"type": "integer", "minimum": 1, "nullable": True},
        "near": {"type": "integer", "minimum": 0, "maximum": 100, "default": 10},
    },
}
ANSWER_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["site_id", "answer"],
    "additionalProperties": False,
    "properties": {
        "site_id": _TEXT,
        "answer": {"type": "string", "enum": list(E.ANSWERS)},
        "price_pln_m2": {"type": "number", "minimum": 0, "nullable": True},
        "contact": {**_TEXT, "nullable": True, "description": "the gmina's contact"},
    },
}
STATUS_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "additionalProperties": False,
    "properties": {
        "status": {"type": "string", "enum": ["site_visit", "won", "lost", "withdrawn"]},
        "reason": {**_TEXT, "description": "why (required for won, lost, withdrawn)"},
        "site": {**_TEXT, "description": "with won: the site the investor chose"},
    },
}


# ------------------------------------------------------------------------ helpers
def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(doc, default=str, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(
        body, status_code=status, media_type=JSON, headers={**_HEADERS, **(headers or {})}
    )


def _inventory(request: Request) -> Inventory:
    catalog: Catalog = request.app.state.catalog
    return Inventory(catalog.backend)


async def _run(do: Callable[[], Any]) -> Any:
    """A store call in a worker thread; its refusals as problem bodies."""
    try:
        return await anyio.to_thread.run_sync(do)
    except InventoryError as exc:
        params = [{"name": exc.field or "body", "reason": str(exc)}]
        raise ProblemError(exc.status, str(exc), invalid_params=params) from exc
    except StoreError as exc:
        raise ProblemError(
            503,
            "the store cannot take the request now; nothing was changed: %(error)s",
            headers={"Retry-After": "5"},
            error=str(exc),
        ) from exc


async def _office(request: Request, inv: Inventory, action: str) -> str:
    """The holder of the request's key, which must be the regional office's (else 403)."""
    holder, gminy = await _holder(request, inv)
    if not is_regional(gminy):
        raise ProblemError(
            403,
            "only the regional office's key may %(action)s; the key of %(holder)s is a "
            "gmina's (omw-sites apikey add NAME --region makes the office's key)",
            action=Text(action),
            holder=repr(holder),
        )
    return holder


def _scope(holder: str, gminy: frozenset[str], gmina: str | None) -> frozenset[str]:
    """The gminy a gmina's key reads for: ``?gmina=`` (one of its own) or all of them."""
    if gmina is None:
        return gminy
    if not (gmina.isdigit() and len(gmina) == 7):
        raise bad_parameter("gmina", "a gmina TERYT code has 7 digits, not %(v)s", v=repr(gmina))
    if "*" not in gminy and gmina not in gminy:
        raise ProblemError(
            403,
            "the key of %(holder)s speaks for gmina(s) %(gminy)s, not %(gmina)s",
            holder=repr(holder),
            gminy=", ".join(sorted(gminy)),
            gmina=gmina,
        )
    return frozenset({gmina})


def _not_concerned(enquiry_id: str, holder: str, gminy: frozenset[str]) -> ProblemError:
    return ProblemError(
        403,
        "enquiry %(id)s has no shortlisted site in gmina(s) %(gminy)s: it does not "
        "concern the key of %(holder)s",
        id=enquiry_id,
        gminy=", ".join(sorted(gminy)),
        holder=repr(holder),
    )


def _links(request: Request, enquiry_id: str) -> list[dict[str, str]]:
    return [
        {
            "href": str(request.url_for("enquiry", enquiryId=enquiry_id)),
            "rel": "self",
            "type": JSON,
        }
    ]


async def _object_body(request: Request, optional: bool = False) -> dict[str, Any]:
    if optional and not await request.body():
        return {}
    body = await json_body(request, (JSON,))
    if not isinstance(body, dict):
        raise ProblemError(
            422,
            Text("the body must be a JSON object"),
            invalid_params=[{"name": "body", "reason": "not an object"}],
        )
    return body


def _integer(body: dict[str, Any], name: str, default: int | None, low: int) -> int | None:
    value = body.get(name, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 100:
        reason = Text("must be a whole number from %(low)s to 100", {"low": low})
        raise ProblemError(
            422,
            Text("%(name)s: %(reason)s", {"name": name, "reason": reason}),
            invalid_params=[{"name": name, "reason": reason}],
        )
    return value


def _unknown_fields(body: dict[str, Any], known: tuple[str, ...]) -> None:
    for name in body:
        if name not in known:
            reason = Text("unknown field; known: %(known)s", {"known": ", ".join(known)})
            raise ProblemError(
                422,
                Text("%(name)s: %(reason)s", {"name": name, "reason": reason}),
                invalid_params=[{"name": name, "reason": reason}],
            )


# ------------------------------------------------------------------------- routes
@router.post(
    "/enquiries",
    name="add_enquiry",
    summary="Record an investor enquiry (the regional office's key)",
    description=(
        "Body: the enquiry as its file writes it (code_name, sector, deadline, contact, "
        "requirements, preferences). It is recorded with status new; the answer is its "
        "public view (never the contact), with Location. A field that breaks a rule is "
        "a 422 naming the field and the rule."
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {JSON: {"schema": ENQUIRY_BODY_SCHEMA}}},
        "security": _SECURITY,
    },
    responses={201: {"description": "recorded", "content": {JSON: {}}}, **_WRITE_ERRORS},
    response_class=Response,
    status_code=201,
)
async def add_enquiry(request: Request) -> Response:
    check_params(request, frozenset({"lang"}))
    inv = _inventory(request)
    holder = await _office(request, inv, "record enquiries")
    body = await _object_body(request)
    rec = await _run(lambda: E.add(inv, body, holder))
    view = {**E.public_view(rec), "links": _links(request, rec["enquiry_id"])}
    location = str(request.url_for("enquiry", enquiryId=rec["enquiry_id"]))
    return _json(view, 201, {"Location": location})


@router.get(
    "/enquiries",
    name="enquiries",
    summary="Enquiries: all of them for the regional office; a gmina's feed for its key",
    description=(
        "The regional office's key: every enquiry (oldest first, the contact included; "
        "`status` filters). A gmina's key: the open enquiries whose current shortlist "
        "holds a site of its gminy (`gmina` narrows to one of them), without the "
        "investor's identity or contact, each with its sites and their answers so far."
    ),
    openapi_extra={"security": _SECURITY},
    responses={200: {"content": {JSON: {}}}, 400: {"description": "a bad parameter"}, **_ERRORS},
    response_class=Response,
)
async def list_enquiries(
    request: Request,
    gmina: str | None = Query(None, description="TERYT of one of the key's gminy"),
    status: str | None = Query(None, description="only enquiries with this status (office)"),
    f: str | None = format_query("json"),
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"gmina", "status", "f", "lang"}))
    check_format(f)
    inv = _inventory(request)
    holder, gminy = await _holder(request, inv)
    if is_regional(gminy):
        if gmina is not None:
            rows = await _run(lambda: E.gmina_feed(inv, frozenset({gmina})))
        else:
            rows = await _run(lambda: E.records(inv, status))
            for row in rows:
                row.pop("match", None)
    else:
        if status is not None:
            raise bad_parameter("status", "only the regional office's key filters by status")
        scope = _scope(holder, gminy, gmina)
        rows = await _run(lambda: E.gmina_feed(inv, scope))
    for row in rows:
        row["links"] = _links(request, row["enquiry_id"])
    return _json({"enquiries": rows, "numberReturned": len(rows)})


@router.get(
    "/enquiries/changes",
    name="enquiry_changes",
    summary="Change feed of the enquiries: history rows since a moment",
    description=(
        "Every change of an enquiry after `since` (ISO 8601), oldest first: created, "
        "matched, status, answer, offer. The regional office's key sees all; a gmina's "
        "key the changes of the enquiries that concern its gminy (their creation, "
        "matches and status moves, and the answers about its own sites). Keep the last "
        "`changed_at` as the next `since`."
    ),
    openapi_extra={"security": _SECURITY},
    responses={200: {"content": {JSON: {}}}, 400: {"description": "bad since"}, **_ERRORS},
    response_class=Response,
)
async def enquiry_changes(
    request: Request,
    since: str = Query(description="ISO 8601 date or date-time, e.g. 2026-11-01T00:00:00Z"),
    f: str | None = format_query("json"),
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"since", "f", "lang"}))
    check_format(f)
    inv = _inventory(request)
    _, gminy = await _holder(request, inv)
    scope = None if is_regional(gminy) else gminy
    try:
        rows = await anyio.to_thread.run_sync(lambda: E.changes_since(inv, since, scope))
    except InventoryError as exc:
        raise bad_parameter("since", str(exc)) from exc
    return _json({"since": since, "numberReturned": len(rows), "changes": rows})


@router.get(
    "/enquiries/{enquiryId}",
    name="enquiry",
    summary="One enquiry (whole for the regional office; a gmina's view for its key)",
    openapi_extra={"security": _SECURITY},
    responses={200: {"content": {JSON: {}}}, **_ERRORS},
    response_class=Response,
)
async def get_enquiry(
    enquiryId: str,  # noqa: N803
    request: Request,
    f: str | None = format_query("json"),
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"f", "lang"}))
    check_format(f)
    inv = _inventory(request)
    holder, gminy = await _holder(request, inv)
    rec = await _run(lambda: E.get(inv, enquiryId))
    rec.pop("fid", None)
    if is_regional(gminy):
        sites = await _run(lambda: E.matched_sites(inv, enquiryId))
        doc = {**rec, "sites": orjson.loads(sites.to_json(orient="records", force_ascii=False))}
    else:
        doc = await _run(lambda: E.gmina_view(inv, rec, gminy))
        if doc is None:
            raise _not_concerned(enquiryId, holder, gminy)
    doc["links"] = _links(request, enquiryId)
    return _json(doc)


@router.post(
    "/enquiries/{enquiryId}/match",
    name="match_enquiry",
    summary="Match an enquiry against the current sites (the regional office's key)",
    description=(
        "Body (optional): top (shortlist length, default 10), cap_per_gmina (most sites "
        "per gmina, the regional balance rule), near (near misses listed, default 10). "
        "The match is stored on the enquiry (status matched); the answer is the "
        "enquiry's public view with the match."
    ),
    openapi_extra={
        "requestBody": {"required": False, "content": {JSON: {"schema": MATCH_BODY_SCHEMA}}},
        "security": _SECURITY,
    },
    responses={200: {"content": {JSON: {}}}, **_WRITE_ERRORS},
    response_class=Response,
)
async def match_enquiry(enquiryId: str, request: Request) -> Response:  # noqa: N803
    check_params(request, frozenset({"lang"}))
    inv = _inventory(request)
    holder = await _office(request, inv, "match enquiries")
    body = await _object_body(request, optional=True)
    _unknown_fields(body, ("top", "cap_per_gmina", "near"))
    top = _integer(body, "top", 10, 1)
    cap = _integer(body, "cap_per_gmina", None, 1)
    near = _integer(body, "near", 10, 0)

    def run() -> dict[str, Any]:
        from omw_sites.reports.balance import balanced_shortlist
        from omw_sites.scoring.matching import (
            RequirementError,
            match,
            parse_preferences,
            parse_requirements,
        )

        rec = E.get(inv, enquiryId)
        try:
            req = parse_requirements(rec["requirements"] or {})
            prefs = parse_preferences(rec["preferences"], req)
            sites = inv.read_sites(read_geometry=False)
            result = match(
                sites, req, prefs, top=top or 10, cap=cap, near=near or 0,
                spread=balanced_shortlist,
            )  # fmt: skip
        except RequirementError as exc:
            raise InventoryError(str(exc), exc.field) from exc
        return E.record_match(inv, enquiryId, result, holder)

    rec = await _run(run)
    return _json({**E.public_view(rec), "links": _links(request, enquiryId)})


@router.post(
    "/enquiries/{enquiryId}/answers",
    name="answer_enquiry",
    summary="A gmina's answer for one of its shortlisted sites (its key)",
    description=(
        "Body: site_id, answer (confirmed: available for this offer; withdrawn: taken out "
        "of it), optionally price_pln_m2 and the gmina's contact. Only a site of the "
        "key's gminy (403 otherwise) on the enquiry's current shortlist (409 otherwise), "
        "while the enquiry is matched, sent or at a site visit (409 otherwise). The "
        "answer is the site's row with its answer."
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {JSON: {"schema": ANSWER_BODY_SCHEMA}}},
        "security": _SECURITY,
    },
    responses={200: {"content": {JSON: {}}}, **_WRITE_ERRORS},
    response_class=Response,
)
async def answer_enquiry(enquiryId: str, request: Request) -> Response:  # noqa: N803
    check_params(request, frozenset({"lang"}))
    inv = _inventory(request)
    holder, gminy = await _holder(request, inv)
    speaks_for = frozenset({"*"}) if is_regional(gminy) else gminy
    body = await _object_body(request)
    _unknown_fields(body, ("site_id", "answer", "price_pln_m2", "contact"))
    site, word = body.get("site_id"), body.get("answer")
    price, contact = body.get("price_pln_m2"), body.get("contact")
    checks = (
        ("site_id", isinstance(site, str) and bool(site), "a site ID is required"),
        ("answer", word in E.ANSWERS, "must be confirmed or withdrawn"),
        (
            "price_pln_m2",
            price is None or (isinstance(price, int | float) and not isinstance(price, bool)),
            "must be a number (PLN/m²) or null",
        ),
        ("contact", contact is None or isinstance(contact, str), "must be text or null"),
    )
    for name, ok, reason in checks:
        if not ok:
            raise ProblemError(
                422,
                Text("%(name)s: %(reason)s", {"name": name, "reason": Text(reason)}),
                invalid_params=[{"name": name, "reason": Text(reason)}],
            )

    def run() -> dict[str, Any]:
        rec = E.get(inv, enquiryId)
        if E.gmina_view(inv, rec, speaks_for) is None:
            raise _not_concerned(enquiryId, holder, gminy)
        return E.answer(
            inv, enquiryId, str(site), word == "confirmed", holder,
            price=None if price is None else float(price), contact=contact, gminy=speaks_for,
        )  # fmt: skip

    row = await _run(run)
    return _json(orjson.loads(pd.Series(row).to_json(force_ascii=False)))


@router.post(
    "/enquiries/{enquiryId}/status",
    name="enquiry_status",
    summary="Move an enquiry on: site visit, won, lost, withdrawn (the regional office's key)",
    description=(
        "Body: status, reason (required for won, lost and withdrawn), site (with won: the "
        "chosen site, one that went out in the offer). A move the lifecycle does not "
        "allow is a 409 naming the allowed ones."
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {JSON: {"schema": STATUS_BODY_SCHEMA}}},
        "security": _SECURITY,
    },
    responses={200: {"content": {JSON: {}}}, **_WRITE_ERRORS},
    response_class=Response,
)
async def enquiry_status(enquiryId: str, request: Request) -> Response:  # noqa: N803
    check_params(request, frozenset({"lang"}))
    inv = _inventory(request)
    holder = await _office(request, inv, "move enquiries on")
    body = await _object_body(request)
    _unknown_fields(body, ("status", "reason", "site"))
    values = {k: body.get(k) for k in ("status", "reason", "site")}
    for name, value in values.items():
        if value is not None and not isinstance(value, str):
            reason = Text("must be text")
            raise ProblemError(
                422,
                Text("%(name)s: %(reason)s", {"name": name, "reason": reason}),
                invalid_params=[{"name": name, "reason": reason}],
            )
    rec = await _run(
        lambda: E.set_status(
            inv,
            enquiryId,
            str(values["status"] or ""),
            holder,
            reason=values["reason"],
            site=values["site"],
        )  # fmt: skip
    )
    return _json({**E.public_view(rec), "links": _links(request, enquiryId)})


__all__ = ["router"]
