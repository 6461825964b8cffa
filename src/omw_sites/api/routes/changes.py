"""``/collections/sites/changes``: the change feed for synchronising clients."""

from __future__ import annotations

import anyio.to_thread
import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from omw_sites.api.catalog import Catalog
from omw_sites.api.negotiation import DOC_FORMATS, VARY, negotiate
from omw_sites.api.pages import changes_page
from omw_sites.api.params import check_params, format_query, lang_query
from omw_sites.api.problems import bad_parameter
from omw_sites.layers import SITES
from omw_sites.store import Inventory, InventoryError

CHANGES_MAX = 10_000

router = APIRouter()


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
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"since", "limit", "offset", "f", "lang"}))
    fmt = negotiate(request, f, DOC_FORMATS)
    limit = min(limit, CHANGES_MAX)
    catalog: Catalog = request.app.state.catalog
    inv = Inventory(catalog.backend)
    try:
        feed = await anyio.to_thread.run_sync(inv.changed_since, since)
    except InventoryError as exc:
        raise bad_parameter("since", str(exc)) from exc  # the store's words in a frame
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
        sites = (await catalog.current()).layers[SITES]
        return changes_page(request, sites, body, offset, nxt, prev, headers)
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)
