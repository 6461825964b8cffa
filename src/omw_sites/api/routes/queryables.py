"""``/collections/{collectionId}/queryables``: the properties filters and sortby take."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from omw_sites.api.negotiation import SCHEMA_FORMATS
from omw_sites.api.pages import crumbs_for, html_page, layer_title, page_language
from omw_sites.api.params import collection_id_path, format_query, lang_query, layer_request
from omw_sites.api.problems import Text
from omw_sites.api.properties import TEMPORAL_PROPERTY, queryables_doc
from omw_sites.api.responses import (
    BAD_REQUEST,
    HTML,
    NOT_ACCEPTABLE,
    NOT_FOUND,
    NOT_MODIFIED,
    SCHEMA_JSON,
)

router = APIRouter()


@router.get(
    "/collections/{collectionId}/queryables",
    name="queryables",
    summary="Queryable properties of a collection (JSON Schema)",
    response_class=Response,
    responses={
        200: {"content": {SCHEMA_JSON: {}, HTML: {}}},
        **NOT_MODIFIED,
        **BAD_REQUEST,
        **NOT_FOUND,
        **NOT_ACCEPTABLE,
    },
)
async def queryables(
    request: Request,
    collection_id: str = collection_id_path,
    f: str | None = format_query("json", "html"),
    lang: str | None = lang_query,
) -> Response:
    fmt, snap, layer, headers, unchanged = await layer_request(
        request, collection_id, f, SCHEMA_FORMATS
    )
    if unchanged is not None:
        return unchanged
    doc = queryables_doc(request, layer, snap)
    if fmt == "html":
        return html_page(
            request,
            "queryables.html",
            Text("%(layer)s: queryables", {"layer": layer_title(layer, page_language(request))}),
            json_type=SCHEMA_JSON,
            crumbs=crumbs_for(request, layer),
            headers=headers,
            doc=doc,
            temporal=TEMPORAL_PROPERTY if TEMPORAL_PROPERTY in layer.columns else None,
        )
    return Response(orjson.dumps(doc), media_type=SCHEMA_JSON, headers=headers)
