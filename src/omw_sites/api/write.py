"""Writes (OGC API Features Part 4 on ``sites``) and the change feed.

``PATCH`` (merge the offer and status fields), ``PUT`` (replace them) and ``DELETE`` (end
the record) on ``/collections/sites/items/{featureId}``, with the per-gmina API keys and
every write in the inventory history; ``POST`` to ``/collections/sites/items`` is refused
(405): a site is made by a run, which measures and scores it. ``OPTIONS`` lists the
methods of the items and item resources. ``GET /collections/sites/changes`` is the change
feed for synchronising clients.

Optimistic locking: every site feature has a strong ETag made of its record version
(:func:`omw_sites.store.lifecycle.record_version`) and the representation served
(:func:`feature_etag`); writes honour ``If-Match`` (strong comparison, ``*`` allowed)
and, without it, ``If-Unmodified-Since``, answering 412 when the record changed. The
check happens in the store's conditional write, not before it. Each write answers with
the new ETag and ``Last-Modified``.

After a write the served snapshot is updated in place of a reload when nothing else was
written meanwhile (:meth:`omw_sites.api.catalog.Catalog.refresh_site`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable, Iterable
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import anyio.to_thread
import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely
from fastapi import APIRouter, Query, Request
from starlette.responses import Response
from starlette.routing import Match

from omw_sites.api.catalog import OUTPUT_CRS, Catalog, Layer, public_sites, to_crs_xy
from omw_sites.api.negotiation import DOC_FORMATS, VARY, negotiate
from omw_sites.api.pages import changes_page
from omw_sites.api.params import check_params, format_query
from omw_sites.api.problems import PROBLEM_MEDIA_TYPE, ProblemError
from omw_sites.layers import SITES, WEB_CRS
from omw_sites.store import Inventory, InventoryError, StoreError
from omw_sites.store.inventory import EDITABLE, SiteEdit, may_edit
from omw_sites.store.lifecycle import VERSION_COLUMNS, parse_stamp, record_version, version_of

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
GEOJSON = "application/geo+json"
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
CHANGES_MAX = 10_000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ITEMS_PATH = f"/collections/{SITES}/items"
ITEM_PATH = ITEMS_PATH + "/{featureId}"
# properties the server maintains: a body may carry them (a feature read and sent back),
# and they are ignored, whatever their value
SERVER_MAINTAINED = frozenset({"created_at", "updated_at", "measured_run", "scored_run"})
# how far a geometry sent back may be from the stored one and still count as the same
# (the served coordinates are rounded: 7 decimals of a degree, 1 cm)
GEOMETRY_TOLERANCE = {True: 1e-6, False: 0.05}  # degrees (geographic) / metres


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` inlined (OpenAPI request bodies)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


EDIT_SCHEMA = _inline_refs(SiteEdit.model_json_schema())
EDIT_SCHEMA["minProperties"] = 1
_OFFER_PROPERTIES = {k: v for k, v in EDIT_SCHEMA["properties"].items()}
# a site feature as PUT (and PATCH as a Feature) take it: the offer and status fields in
# properties; the other properties and the geometry may be sent back unchanged
FEATURE_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "properties"],
    "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "id": {"type": "string", "description": "if given, the featureId of the URL"},
        "geometry": {
            "type": "object",
            "nullable": True,
            "description": "the stored geometry or null (the pipeline's: cannot be changed)",
        },
        "properties": {
            "type": "object",
            "properties": _OFFER_PROPERTIES,
            "additionalProperties": True,
            "description": "offer and status fields; any other property must hold its "
            "current value (measured attributes and scores are the pipeline's)",
        },
    },
}
# PUT: a replacement gives the status (the offer fields it leaves out are cleared)
REPLACE_BODY_SCHEMA: dict[str, Any] = {
    **FEATURE_BODY_SCHEMA,
    "properties": {
        **FEATURE_BODY_SCHEMA["properties"],
        "properties": {**FEATURE_BODY_SCHEMA["properties"]["properties"], "required": ["status"]},
    },
}
_SECURITY = [{"bearerAuth": []}, {"apiKeyHeader": []}]
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


# ------------------------------------------------------------------------------- ETags
def feature_etag(layer: Layer, row: int, request: Request, variant: str = "") -> str | None:
    """The strong ETag of one served site feature: its record version (from the snapshot
    row) and the representation (URL with its query, format, Accept), or None for a
    layer without record versions. Read it *before* the feature's bytes: a snapshot is
    never changed in place, so tag and bytes come from the same state."""
    if layer.name != SITES or not set(VERSION_COLUMNS) <= set(layer.table.columns):
        return None
    table = layer.table
    version = version_of(*(table[c].iat[row] for c in VERSION_COLUMNS))
    return etag(version, request, variant)


def etag(version: str, request: Request, variant: str = "") -> str:
    """``"<version>-<representation>"``: the version part is what ``If-Match`` compares."""
    key = repr((str(request.url), variant, request.headers.get("accept", "")))
    shape = hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
    return f'"{version}-{shape}"'


def if_match_versions(header: str | None) -> list[str] | None:
    """Record versions an ``If-Match`` header accepts (``["*"]``: any), None without one.
    Weak tags never match (strong comparison)."""
    if header is None:
        return None
    tags = [t.strip() for t in header.split(",") if t.strip()]
    if "*" in tags:
        return ["*"]
    return [t.strip('"').split("-")[0] for t in tags if not t.startswith("W/")]


def _if_unmodified_since(request: Request) -> dt.datetime | None:
    """``If-Unmodified-Since`` as a datetime, when there is no ``If-Match`` (RFC 9110
    §13.2.2); an invalid date is ignored."""
    text = request.headers.get("if-unmodified-since")
    if not text or request.headers.get("if-match") is not None:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _written_headers(record: pd.Series, request: Request, variant: str) -> dict[str, str]:
    headers = {"ETag": etag(record_version(record), request, variant)}
    stamp = record.get("updated_at")
    if isinstance(stamp, str) and stamp:
        headers["Last-Modified"] = format_datetime(parse_stamp(stamp), usegmt=True)
    return headers


# ------------------------------------------------------------------------------- helpers
def _key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def _feature(record: pd.Series) -> dict[str, Any]:
    """One site record as a GeoJSON feature (CRS84, published columns)."""
    frame = gpd.GeoDataFrame([record], geometry="geometry", crs="EPSG:2180")
    frame = public_sites(frame).to_crs(WEB_CRS)
    geom = frame.geometry.iloc[0]
    props = orjson.loads(frame.drop(columns="geometry").to_json(orient="records"))[0]
    return {
        "type": "Feature",
        "id": str(record["site_id"]),
        "geometry": orjson.loads(shapely.to_geojson(geom)),
        "properties": props,
    }


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


async def _json_body(request: Request, media_types: Iterable[str]) -> Any:
    allowed = tuple(media_types)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in allowed:
        raise ProblemError(415, f"send the body as {' or '.join(allowed)}, not {media or 'none'}")
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ProblemError(
            422,
            f"the body is not valid JSON: {exc}",
            invalid_params=[{"name": "body", "reason": "not JSON"}],
        ) from exc


def _unprocessable(name: str, reason: str) -> ProblemError:
    return ProblemError(422, f"{name}: {reason}", invalid_params=[{"name": name, "reason": reason}])


def _is_feature(body: Any, media: str) -> bool:
    return isinstance(body, dict) and (media == GEOJSON or body.get("type") == "Feature")


def _documents(value: Any) -> Any:
    """``documents`` as a feature carries them (the published JSON text) or as a list."""
    if isinstance(value, str):
        try:
            return orjson.loads(value) if value.strip() else None
        except orjson.JSONDecodeError:
            return value  # refused by the edit, naming the field
    return value


def _offer(properties: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in properties.items() if k in EDITABLE}
    if "documents" in out:
        out["documents"] = _documents(out["documents"])
    return out


def _same(a: Any, b: Any) -> bool:
    """Whether a property sent back equals the served one (numbers to 1e-9)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _content_crs(request: Request) -> str:
    text = request.headers.get("content-crs")
    if not text:
        return CRS84
    uri = text.strip().removeprefix("<").removesuffix(">").strip()
    if uri not in OUTPUT_CRS:
        msg = f"Content-Crs {text!r} is not supported; one of {', '.join(OUTPUT_CRS)}"
        raise ProblemError(400, msg, invalid_params=[{"name": "Content-Crs", "reason": msg}])
    return uri


def _read_only_check(
    feature_id: str, body: dict[str, Any], crs: str
) -> Callable[[pd.Series], None]:
    """A check of a Feature body against the record written: its id, geometry and every
    property that is not an offer or status field must be the stored ones (the
    pipeline's); a differing one is refused (422) by name."""
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise _unprocessable("properties", "a Feature needs a properties object")
    geometry = body.get("geometry")
    shape = None
    if geometry is not None:
        try:
            shape = shapely.from_geojson(orjson.dumps(geometry))
        except Exception as exc:
            raise _unprocessable("geometry", f"not a GeoJSON geometry: {exc}") from exc
    given = {
        k: v for k, v in properties.items() if k not in EDITABLE and k not in SERVER_MAINTAINED
    }

    def check(rec: pd.Series) -> None:
        if "id" in body and str(body["id"]) != feature_id:
            reason = f"the feature is {feature_id!r}, the body says {body['id']!r}"
            raise _unprocessable("id", reason)
        served = _feature(rec)["properties"]
        unknown = sorted(k for k in given if k not in served)
        if unknown:
            raise _unprocessable(unknown[0], f"no such property of a site ({', '.join(unknown)})")
        differ = sorted(k for k, v in given.items() if not _same(v, served[k]))
        if shape is not None and not _same_shape(shape, rec["geometry"], crs):
            differ.insert(0, "geometry")
        if differ:
            reason = (
                "measured attributes, scores and the geometry are the pipeline's and cannot "
                f"be changed here; send them as served or leave them out ({', '.join(differ)})"
            )
            raise ProblemError(
                422,
                f"{', '.join(differ)}: {reason}",
                invalid_params=[
                    {"name": name, "reason": "differs from the stored value"} for name in differ
                ],
            )

    return check


def _same_shape(shape: shapely.Geometry, stored: shapely.Geometry, crs: str) -> bool:
    """Whether ``shape`` (in ``crs``'s axis order) is the stored geometry as served."""
    out = OUTPUT_CRS[crs]
    geoms = to_crs_xy(np.array([stored], dtype=object), crs)
    if out.swap:
        geoms = shapely.transform(geoms, lambda c: c[:, ::-1])
    if shapely.get_type_id(shape) != shapely.get_type_id(geoms[0]):
        # a Polygon sent for a one-part MultiPolygon is the same land
        shape = shapely.multipolygons([shape]) if shapely.get_type_id(shape) == 3 else shape
    tolerance = GEOMETRY_TOLERANCE[out.geographic]
    return bool(shapely.hausdorff_distance(shape, geoms[0]) <= tolerance)


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
    headers = {**_written_headers(record, request, "write"), "Content-Crs": f"<{CRS84}>"}
    return Response(orjson.dumps(_feature(record)), media_type=GEOJSON, headers=headers)


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
    body = await _json_body(request, (JSON, MERGE_PATCH, GEOJSON))
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not isinstance(body, dict):
        raise ProblemError(
            422,
            "the body must be a JSON object of fields to change",
            invalid_params=[{"name": "body", "reason": "not an object"}],
        )
    validate = None
    changes: dict[str, Any] = body
    if _is_feature(body, media):
        validate = _read_only_check(featureId, body, _content_crs(request))
        changes = _offer(body.get("properties") or {})
    elif "documents" in changes:
        changes = {**changes, "documents": _documents(changes["documents"])}
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
            if_unmodified_since=_if_unmodified_since(request),
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
    body = await _json_body(request, (GEOJSON, JSON))
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise _unprocessable("body", "a replacement is a GeoJSON Feature (type: Feature)")
    validate = _read_only_check(featureId, body, _content_crs(request))
    changes = _offer(body.get("properties") or {})
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
                if_unmodified_since=_if_unmodified_since(request),
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
        "`db ingest`): its criteria (distances, shares, areas) and scores come from the "
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
        "pipeline (omw-sites run / db ingest, or the gmina's nomination list in its next "
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


@router.get(
    "/collections/sites/changes",
    name="site_changes",
    summary="Change feed: sites created, changed or ended since a moment",
    description=(
        "For synchronising clients: every site record changed after `since` (ISO 8601), "
        "oldest first, with the kind of change (created, changed, ended) and the fields "
        "that changed. Page with `limit` and the `next` link; keep the last `updated_at` "
        "as the next `since`."
    ),
    responses={
        200: {"content": {"application/json": {}, "text/html": {}}},
        400: {"description": "bad since, or an unknown query parameter"},
        406: {"description": "no format offered is acceptable (Accept header)"},
    },
    response_class=Response,
)
async def site_changes(
    request: Request,
    since: str = Query(description="ISO 8601 date or date-time, e.g. 2026-11-01T00:00:00Z"),
    limit: int = Query(
        1000,
        ge=1,
        description=f"changes per page; at most {CHANGES_MAX:,} (a larger limit is served "
        "as that many, with a next link)",
    ),
    offset: int = Query(0, ge=0, le=10_000_000, description="changes to skip"),
    f: str | None = format_query("json", "html"),
) -> Response:
    check_params(request, frozenset({"since", "limit", "offset", "f"}))
    fmt = negotiate(request, f, DOC_FORMATS)
    limit = min(limit, CHANGES_MAX)
    inv = _inventory(request)
    try:
        feed = await anyio.to_thread.run_sync(inv.changed_since, since)
    except InventoryError as exc:
        raise ProblemError(
            400, str(exc), invalid_params=[{"name": "since", "reason": str(exc)}]
        ) from exc
    page = feed.iloc[offset : offset + limit]
    records = orjson.loads(page.to_json(orient="records", force_ascii=False))
    links = [{"href": str(request.url), "rel": "self", "type": "application/json"}]
    nxt = prev = None
    if offset + limit < len(feed):
        nxt = str(request.url.include_query_params(offset=offset + limit, limit=limit))
        links.append({"href": nxt, "rel": "next", "type": "application/json"})
    if offset > 0:
        prev = str(request.url.include_query_params(offset=max(0, offset - limit), limit=limit))
        links.append({"href": prev, "rel": "prev", "type": "application/json"})
    body = {
        "since": since,
        "numberMatched": len(feed),
        "numberReturned": len(records),
        "changes": records,
        "links": links,
    }
    headers = {"Vary": VARY}
    if fmt == "html":
        return changes_page(request, body, offset, nxt, prev, headers)
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


__all__ = ["PART4_CONFORMANCE", "PROBLEM_MEDIA_TYPE", "feature_etag", "if_match_versions", "router"]
