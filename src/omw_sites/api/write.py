"""Writes and the change feed: ``PATCH /collections/sites/items/{featureId}`` (offer and
status, per-gmina API keys, every write in the inventory history) and
``GET /collections/sites/changes`` (what changed since a moment, for synchronising clients).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import geopandas as gpd
import orjson
import shapely
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from omw_sites.api.catalog import Catalog, public_sites
from omw_sites.api.problems import PROBLEM_MEDIA_TYPE, ProblemError
from omw_sites.layers import WEB_CRS
from omw_sites.store import Inventory, InventoryError
from omw_sites.store.inventory import SiteEdit, may_edit

router = APIRouter()
GEOJSON = "application/geo+json"
CHANGES_MAX = 10_000


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


def _key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def _feature(record) -> dict[str, Any]:
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


@router.patch(
    "/collections/sites/items/{featureId}",
    name="edit_site",
    summary="Change a site's offer details or status (API key of its gmina)",
    description=(
        "Body: JSON with any of status (available, reserved, sold, withdrawn; sold is "
        "final), status_date, price_pln_m2, lease_pln_m2_year, contact, documents "
        "([{title, url, public}]), sez_status, notes. Send the key as `Authorization: "
        "Bearer <key>` or `X-API-Key`. A key changes only sites of its gminy; every change "
        "is kept in the inventory history with the key holder's name."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": EDIT_SCHEMA},
                "application/merge-patch+json": {"schema": EDIT_SCHEMA},
            },
        }
    },
    responses={
        200: {"description": "the updated site", "content": {GEOJSON: {}}},
        401: {"description": "no API key, or an unknown or revoked one"},
        403: {"description": "the key's gminy do not include this site"},
        404: {"description": "no current site with this id"},
        409: {"description": "the status cannot move that way (e.g. from sold)"},
        415: {"description": "the body is not JSON"},
        422: {"description": "a field is invalid (named in invalid-params)"},
    },
    response_class=Response,
)
async def edit_site(featureId: str, request: Request) -> Response:  # noqa: N803 (OGC name)
    inv = _inventory(request)
    key = _key(request)
    who = await anyio.to_thread.run_sync(inv.authorise, key)
    if who is None:
        detail = "an API key is required" if not key else "unknown or revoked API key"
        raise ProblemError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="omw-sites"'})
    holder, gminy = who
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/json", "application/merge-patch+json"):
        raise ProblemError(415, "send the changes as application/json")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ProblemError(
            422,
            f"the body is not valid JSON: {exc}",
            invalid_params=[{"name": "body", "reason": "not JSON"}],
        ) from exc
    if not isinstance(body, dict):
        raise ProblemError(
            422, "the body must be a JSON object of fields to change",
            invalid_params=[{"name": "body", "reason": "not an object"}],
        )  # fmt: skip

    def write():
        rec = inv.record(featureId)
        if not may_edit(gminy, rec["teryt"]):
            msg = (
                f"the key of {holder!r} may change sites of gmina(s) {', '.join(sorted(gminy))}; "
                f"site {featureId} is in {rec['teryt']}"
            )
            raise ProblemError(403, msg)
        return inv.edit(featureId, body, by=holder)

    try:
        record = await anyio.to_thread.run_sync(write)
    except InventoryError as exc:
        params = [{"name": exc.field or "body", "reason": str(exc)}]
        raise ProblemError(exc.status, str(exc), invalid_params=params) from exc
    return Response(orjson.dumps(_feature(record)), media_type=GEOJSON)


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
    responses={200: {"content": {"application/json": {}}}, 400: {"description": "bad since"}},
    response_class=Response,
)
async def site_changes(
    request: Request,
    since: str = Query(description="ISO 8601 date or date-time, e.g. 2026-11-01T00:00:00Z"),
    limit: int = Query(1000, ge=1, le=CHANGES_MAX, description="changes per page"),
    offset: int = Query(0, ge=0, le=10_000_000, description="changes to skip"),
) -> Response:
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
    if offset + limit < len(feed):
        nxt = request.url.include_query_params(offset=offset + limit, limit=limit)
        links.append({"href": str(nxt), "rel": "next", "type": "application/json"})
    body = {
        "since": since,
        "numberMatched": len(feed),
        "numberReturned": len(records),
        "changes": records,
        "links": links,
    }
    return Response(orjson.dumps(body), media_type="application/json")


__all__ = ["router", "PROBLEM_MEDIA_TYPE"]
