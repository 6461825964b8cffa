"""Writes (OGC API Features Part 4 on ``sites``): ``PATCH`` (merge the offer and status
fields), ``PUT`` (replace them) and ``DELETE`` (end the record) on
``/collections/sites/items/{featureId}``, with the per-gmina API keys and every write in
the inventory history; ``POST`` to ``/collections/sites/items`` is refused (405): a site
is made by a run, which measures and scores it. ``OPTIONS`` lists the methods of the
items and item resources.

Optimistic locking (:mod:`omw_sites.api.conditional`): writes honour ``If-Match`` and,
without it, ``If-Unmodified-Since``, answering 412 when the record changed. The check
happens in the store's conditional write, not before it. Each write answers with the new
ETag and ``Last-Modified``. After a write the served snapshot is updated in place of a
reload when nothing else was written meanwhile
(:meth:`omw_sites.api.catalog.Catalog.refresh_site`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import orjson
import pandas as pd
from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.routing import Match

from omw_sites.api.catalog import Catalog
from omw_sites.api.conditional import if_match_versions, if_unmodified_since, written_headers
from omw_sites.api.problems import ProblemError
from omw_sites.api.responses import GEOJSON, JSON
from omw_sites.api.write_bodies import (
    CRS84,
    EDIT_SCHEMA,
    FEATURE_BODY_SCHEMA,
    REPLACE_BODY_SCHEMA,
    content_crs,
    documents_value,
    is_feature,
    json_body,
    offer_fields,
    read_only_check,
    site_feature,
    unprocessable,
)
from omw_sites.layers import SITES
from omw_sites.store import Inventory, InventoryError, StoreError
from omw_sites.store.keys import may_edit

router = APIRouter()
# OGC API Features Part 4 (draft 20-002r1) classes this API implements on ``sites``: PUT
# and DELETE (Create/Replace/Delete: "not all operations need to be implemented", POST is
# refused, OPTIONS says so), PATCH (Update), ETags and If-Match, Last-Modified and
# If-Unmodified-Since. Not the "Features" class: it needs a /schema resource (Part 5).
PART4_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-timestamps",
]
MERGE_PATCH = "application/merge-patch+json"
ITEMS_PATH = f"/collections/{SITES}/items"
ITEM_PATH = ITEMS_PATH + "/{featureId}"
_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
_PRECONDITIONS = [
    {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "strong ETag(s) of the feature as read (or *): the write is done only "
        "if the feature has not changed since (else 412)",
        "schema": {"type": "string"},
    },
    {
        "name": "If-Unmodified-Since",
        "in": "header",
        "required": False,
        "description": "HTTP date (ignored with If-Match): the write is done only if the "
        "feature has not changed after it (else 412)",
        "schema": {"type": "string"},
    },
]
_CONTENT_CRS = {
    "name": "Content-Crs",
    "in": "header",
    "required": False,
    "description": f"CRS of the body's geometry, as <URI> (default <{CRS84}>)",
    "schema": {"type": "string"},
}
_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key, or an unknown or revoked one"},
    403: {"description": "the key's gminy do not include this site"},
    404: {"description": "no current site with this id"},
    409: {"description": "the status cannot move that way (sold is final), or the site ended"},
    412: {"description": "If-Match / If-Unmodified-Since: the site changed since it was read"},
    415: {"description": "the body is not in a supported media type"},
    422: {"description": "a field is invalid, or a measured attribute differs (named)"},
    503: {"description": "the store is busy or unreachable; nothing was changed"},
}
_WRITTEN_HEADERS = {
    "ETag": {"description": "strong ETag of the feature as written", "schema": {"type": "string"}},
    "Last-Modified": {"description": "when the feature changed", "schema": {"type": "string"}},
}


# ------------------------------------------------------------------ keys and writes
def _key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def _inventory(request: Request) -> Inventory:
    catalog: Catalog = request.app.state.catalog
    return Inventory(catalog.backend)


async def _holder(request: Request, inv: Inventory) -> tuple[str, frozenset[str]]:
    key = _key(request)
    who = await anyio.to_thread.run_sync(inv.authorise, key)
    if who is None:
        detail = "an API key is required" if not key else "unknown or revoked API key"
        raise ProblemError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="omw-sites"'})
    return who


def _gmina_check(holder: str, gminy: frozenset[str], site_id: str) -> Callable[[pd.Series], None]:
    def check(rec: pd.Series) -> None:
        if not may_edit(gminy, rec["teryt"]):
            msg = (
                f"the key of {holder!r} may change sites of gmina(s) {', '.join(sorted(gminy))}; "
                f"site {site_id} is in {rec['teryt']}"
            )
            raise ProblemError(403, msg)

    return check


async def _write(request: Request, do: Callable[[Inventory], pd.Series]) -> pd.Series:
    """Run one record write in a worker thread, one at a time in this process, and then
    serve the written record without a reload when nothing else changed the store."""
    catalog: Catalog = request.app.state.catalog
    inv = Inventory(catalog.backend)
    try:
        return await anyio.to_thread.run_sync(catalog.write_through, lambda: do(inv))
    except InventoryError as exc:
        params = [{"name": exc.field or "body", "reason": str(exc)}]
        raise ProblemError(exc.status, str(exc), invalid_params=params) from exc
    except StoreError as exc:  # nothing committed: backends never fail a committed write
        detail = f"the store cannot take the write now; nothing was changed: {exc}"
        raise ProblemError(503, detail, headers={"Retry-After": "5"}) from exc


def _feature_response(record: pd.Series, request: Request) -> Response:
    headers = {**written_headers(record, request, "write"), "Content-Crs": f"<{CRS84}>"}
    return Response(orjson.dumps(site_feature(record)), media_type=GEOJSON, headers=headers)


# ------------------------------------------------------------------------------- routes
@router.patch(
    ITEM_PATH,
    name="edit_site",
    summary="Change a site's offer details or status (API key of its gmina)",
    description=(
        "Body: a JSON merge patch (application/merge-patch+json or application/json) with "
        "any of status (available, reserved, sold, withdrawn; sold is final), status_date, "
        "price_pln_m2, lease_pln_m2_year, contact, documents ([{title, url, public}]), "
        "sez_status, notes — null clears a field; or a GeoJSON Feature "
        "(application/geo+json) whose offer and status properties are merged, its other "
        "properties and geometry as served. Send the key as `Authorization: Bearer <key>` "
        "or `X-API-Key`. A key changes only sites of its gminy; every change is kept in the "
        "inventory history with the key holder's name. With `If-Match` (the feature's "
        "ETag) or `If-Unmodified-Since`, the change is made only if nobody changed the site "
        "since it was read (else 412). Internal (non-public) documents are kept."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": {"oneOf": [EDIT_SCHEMA, FEATURE_BODY_SCHEMA]}},
                MERGE_PATCH: {"schema": EDIT_SCHEMA},
                GEOJSON: {"schema": FEATURE_BODY_SCHEMA},
            },
        },
        "parameters": _PRECONDITIONS,
        "security": _SECURITY,
    },
    responses={
        200: {
            "description": "the site as changed",
            "content": {GEOJSON: {}},
            "headers": _WRITTEN_HEADERS,
        },
        **_WRITE_RESPONSES,
    },
    response_class=Response,
)
async def edit_site(featureId: str, request: Request) -> Response:  # noqa: N803 (OGC name)
    inv = _inventory(request)
    holder, gminy = await _holder(request, inv)
    body = await json_body(request, (JSON, MERGE_PATCH, GEOJSON))
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not isinstance(body, dict):
        raise ProblemError(
            422,
            "the body must be a JSON object of fields to change",
            invalid_params=[{"name": "body", "reason": "not an object"}],
        )
    validate = None
    changes: dict[str, Any] = body
    if is_feature(body, media):
        validate = read_only_check(featureId, body, content_crs(request))
        changes = offer_fields(body.get("properties") or {})
    elif "documents" in changes:
        changes = {**changes, "documents": documents_value(changes["documents"])}
    return await _edit(request, featureId, changes, holder, gminy, validate)


async def _edit(
    request: Request,
    site_id: str,
    changes: dict[str, Any],
    holder: str,
    gminy: frozenset[str],
    validate: Callable[..., Any] | None,
    *,
    replace: bool = False,
) -> Response:
    """PATCH (merge) or PUT (``replace``) of one site's offer and status, under the
    request's preconditions and the key's gminy; the written site as the response."""
    record = await _write(
        request,
        lambda inv: inv.edit(
            site_id,
            changes,
            by=holder,
            if_version=if_match_versions(request.headers.get("if-match")),
            if_unmodified_since=if_unmodified_since(request),
            replace=replace,
            keep_private_documents=True,
            check=_gmina_check(holder, gminy, site_id),
            validate=validate,
        ),
    )
    return _feature_response(record, request)


@router.put(
    ITEM_PATH,
    name="replace_site",
    summary="Replace a site's offer details and status (API key of its gmina)",
    description=(
        "Body: the site as a GeoJSON Feature. Its offer and status properties replace the "
        "stored ones: status is required, and an offer field left out is cleared. The "
        "other properties (measured attributes, scores) and the geometry are the "
        "pipeline's: leave them out, or send them as served — a different value is "
        "refused (422, named). Server-kept times (created_at, updated_at, …) are ignored. "
        "A site cannot be created with PUT (404 for an unknown id). Preconditions and keys "
        "as for PATCH; internal (non-public) documents are kept."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                GEOJSON: {"schema": REPLACE_BODY_SCHEMA},
                JSON: {"schema": REPLACE_BODY_SCHEMA},
            },
        },
        "parameters": [*_PRECONDITIONS, _CONTENT_CRS],
        "security": _SECURITY,
    },
    responses={
        200: {
            "description": "the site as replaced",
            "content": {GEOJSON: {}},
            "headers": _WRITTEN_HEADERS,
        },
        400: {"description": "an unsupported Content-Crs"},
        **_WRITE_RESPONSES,
    },
    response_class=Response,
)
async def replace_site(featureId: str, request: Request) -> Response:  # noqa: N803
    inv = _inventory(request)
    holder, gminy = await _holder(request, inv)
    body = await json_body(request, (GEOJSON, JSON))
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise unprocessable("body", "a replacement is a GeoJSON Feature (type: Feature)")
    validate = read_only_check(featureId, body, content_crs(request))
    changes = offer_fields(body.get("properties") or {})
    return await _edit(request, featureId, changes, holder, gminy, validate, replace=True)


@router.delete(
    ITEM_PATH,
    name="end_site",
    summary="End a site's record: it leaves the inventory, its history is kept",
    description=(
        "The site's current record ends (ended_at, reason 'withdrawn via API by <key "
        "holder>', a history row of kind 'ended'); it is no longer served, and a later run "
        "that still finds the land does not bring it back. Keys and preconditions as for "
        "PATCH. An unknown or already ended site is a 404."
    ),
    openapi_extra={"parameters": _PRECONDITIONS, "security": _SECURITY},
    responses={
        204: {"description": "the record has ended"},
        **{k: v for k, v in _WRITE_RESPONSES.items() if k not in (409, 415, 422)},
    },
    response_class=Response,
    status_code=204,
)
async def end_site(featureId: str, request: Request) -> Response:  # noqa: N803
    inv = _inventory(request)
    holder, gminy = await _holder(request, inv)
    try:
        await _write(
            request,
            lambda inv: inv.end_site(
                featureId,
                by=holder,
                reason=f"withdrawn via API by {holder}",
                if_version=if_match_versions(request.headers.get("if-match")),
                if_unmodified_since=if_unmodified_since(request),
                check=_gmina_check(holder, gminy, featureId),
            ),
        )
    except ProblemError as exc:
        if exc.status == 409 and "has ended" in exc.detail:  # nothing left to delete
            raise ProblemError(404, exc.detail, invalid_params=exc.invalid_params) from exc
        raise
    return Response(status_code=204)


def allowed_methods(request: Request, path: str) -> list[str]:
    """The methods the app answers at ``path`` (HEAD wherever GET is, OPTIONS always),
    without POST of a site (a route that only refuses)."""
    methods = {"OPTIONS"}
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        scope = {
            "type": "http",
            "path": path,
            "root_path": "",
            "method": method,
            "app": request.app,
            "headers": [],
            "query_string": b"",
        }
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.routes):
            methods.add(method)
    if path.rstrip("/") == ITEMS_PATH:
        methods.discard("POST")  # create_site: always 405
    if "GET" in methods:
        methods.add("HEAD")
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return sorted(methods, key=order.index)


@router.post(
    ITEMS_PATH,
    name="create_site",
    summary="Not allowed: sites are made by runs",
    description=(
        "Always 405. A site is land measured by a run of the pipeline (`omw-sites run`, "
        "`db load`): its criteria (distances, shares, areas) and scores come from the "
        "layers of the region, so a posted feature could not become a correct site here. "
        "Nominate land through the gmina's data for the next run; change a site's offer "
        "and status with PUT or PATCH, end it with DELETE."
    ),
    responses={405: {"description": "sites are created by runs, not through the API"}},
    response_class=Response,
)
async def create_site(request: Request) -> Response:
    allow = ", ".join(allowed_methods(request, request.url.path))
    msg = (
        "sites cannot be created through the API: a site is land that a run of the "
        "pipeline (omw-sites run / db load, or the gmina's nomination list in its next "
        "run) has measured and scored; change a site with PUT or PATCH, end it with DELETE "
        f"on {ITEMS_PATH}/{{featureId}}"
    )
    raise ProblemError(405, msg, headers={"Allow": allow})


@router.options(
    "/collections/{collectionId}/items",
    name="items_options",
    summary="Methods allowed on a collection's items",
    responses={200: {"description": "the methods, in the Allow header"}},
    response_class=Response,
)
async def items_options(collectionId: str, request: Request) -> Response:  # noqa: N803
    return Response(
        status_code=200, headers={"Allow": ", ".join(allowed_methods(request, request.url.path))}
    )


@router.options(
    "/collections/{collectionId}/items/{featureId}",
    name="item_options",
    summary="Methods allowed on a feature (PUT, PATCH and DELETE on sites)",
    responses={200: {"description": "the methods, in Allow (and Accept-Patch)"}},
    response_class=Response,
)
async def item_options(collectionId: str, featureId: str, request: Request) -> Response:  # noqa: N803
    methods = allowed_methods(request, request.url.path)
    headers = {"Allow": ", ".join(methods)}
    if "PATCH" in methods:
        headers["Accept-Patch"] = f"{MERGE_PATCH}, {JSON}, {GEOJSON}"
    return Response(status_code=200, headers=headers)
