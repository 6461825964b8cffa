"""``/collections`` and ``/collections/{collectionId}``: what the API serves, with extents."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
from fastapi import APIRouter, Request
from starlette.responses import Response

from omw_sites.api.pages import (
    browser_links,
    crumbs_for,
    html_href,
    html_page,
    layer_description,
    layer_title,
    page_language,
)
from omw_sites.api.params import (
    CRS84,
    STORAGE_CRS,
    SUPPORTED_CRS,
    collection_id_path,
    document_request,
    format_query,
    lang_query,
    layer_request,
)
from omw_sites.api.problems import Text
from omw_sites.api.properties import TEMPORAL_PROPERTY, queryables_doc
from omw_sites.api.responses import (
    BAD_REQUEST,
    DOC_RESPONSES,
    GEOJSON,
    HTML,
    JSON,
    NOT_ACCEPTABLE,
    NOT_FOUND,
    NOT_MODIFIED,
    QUERYABLES_REL,
    SCHEMA_JSON,
    TILESETS_VECTOR_REL,
    as_format,
    html_alternate,
    link,
)
from omw_sites.api.served_layer import Layer
from omw_sites.i18n import gettext
from omw_sites.layers import SITES

GREGORIAN_TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
TEMPORAL_START = "created_at"  # sites: when the record was created

router = APIRouter()


def collection_doc(request: Request, layer: Layer, lang: str = "en") -> dict[str, Any]:
    """The JSON description of one collection: links (titled in ``lang``), extent, CRS."""
    self_url = request.url_for("collection", collectionId=layer.name)
    items_url = request.url_for("items", collectionId=layer.name)
    name, title = layer.name, layer_title(layer, lang)
    alternate = html_alternate(self_url, f"collection {name}")
    if lang != "en":
        alternate["title"] = gettext(lang, "collection %(name)s as HTML", name=name)
    doc: dict[str, Any] = {
        "id": layer.name,
        "title": layer.title,
        "description": layer.description,
        "links": [
            link(self_url, "self", JSON, gettext(lang, "collection %(name)s", name=name)),
            alternate,
            link(items_url, "items", GEOJSON, gettext(lang, "%(title)s as GeoJSON", title=title)),
            link(
                request.url_for("queryables", collectionId=layer.name),
                QUERYABLES_REL,
                SCHEMA_JSON,
                gettext(lang, "properties of %(name)s that filter and sortby take", name=name),
            ),
        ]
        + (
            [
                link(
                    request.url_for("tilesets", collectionId=layer.name),
                    TILESETS_VECTOR_REL,
                    JSON,
                    gettext(lang, "vector tilesets of %(name)s", name=name),
                )
            ]
            if layer.name == SITES
            else []
        ),
        "extent": {"spatial": {"bbox": [list(layer.bbox)] if layer.bbox else [], "crs": CRS84}},
        "itemType": "feature",
        "crs": list(SUPPORTED_CRS),
        "storageCrs": STORAGE_CRS,
    }
    interval = temporal_extent(layer)
    if interval is not None:
        doc["extent"]["temporal"] = {"interval": [list(interval)], "trs": GREGORIAN_TRS}
    return doc


def temporal_extent(layer: Layer) -> tuple[str, str] | None:
    """(oldest ``created_at``, newest ``updated_at``) of a layer with a temporal property,
    as RFC 3339 UTC; None for a layer without one (or with no stamps)."""
    found = layer.cache.get("temporal_extent", False)
    if found is not False:
        return found
    interval = None
    table = layer.table
    if TEMPORAL_PROPERTY in table.columns:
        start_column = TEMPORAL_START if TEMPORAL_START in table.columns else TEMPORAL_PROPERTY
        starts = _utc_stamps(table[start_column])
        ends = _utc_stamps(table[TEMPORAL_PROPERTY])
        if len(starts) and len(ends):
            interval = (starts.min(), ends.max())
    layer.cache["temporal_extent"] = interval
    return interval


def _utc_stamps(values: pd.Series) -> pd.Series:
    """The non-empty time stamps of a column as RFC 3339 UTC text (sortable as text)."""
    values = values.dropna()
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values, utc=True)
    else:
        text = values.astype(str)
        text = text[text != ""]
        if len(text) == 0:
            return text
        # the store writes one format (…T…Z, UTC): compare as text, parse only the ends
        ends = pd.Series([text.min(), text.max()])
        stamps = pd.to_datetime(ends, utc=True, format="ISO8601", errors="coerce")
    return stamps.dropna().dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@router.get(
    "/collections",
    name="collections",
    summary="Feature collections",
    response_class=Response,
    responses=DOC_RESPONSES,
)
async def collections(
    request: Request,
    f: str | None = format_query("json", "html"),
    lang: str | None = lang_query,
) -> Response:
    fmt, snap, headers, unchanged = await document_request(request, f)
    if unchanged is not None:
        return unchanged
    if fmt == "html":
        page_lang = page_language(request)
        rows = []
        for layer in snap.layers.values():
            items_url = request.url_for("items", collectionId=layer.name)
            rows.append(
                {
                    "id": layer.name,
                    "title": layer_title(layer, page_lang),
                    "description": layer_description(layer, page_lang, snap.run_info),
                    "count": len(layer),
                    "html": html_href(
                        request, request.url_for("collection", collectionId=layer.name)
                    ),
                    "items_html": html_href(request, items_url),
                    "items_json": as_format(items_url, "json"),
                }
            )
        return html_page(
            request, "collections.html", "Collections", collections=rows, headers=headers
        )
    collections_url = request.url_for("collections")
    doc = {
        "links": [
            link(collections_url, "self", JSON, "the collections"),
            html_alternate(collections_url, "the collections"),
        ],
        "collections": [collection_doc(request, layer) for layer in snap.layers.values()],
    }
    return Response(orjson.dumps(doc), media_type=JSON, headers=headers)


@router.get(
    "/collections/{collectionId}",
    name="collection",
    summary="One feature collection",
    response_class=Response,
    responses={
        200: {"content": {JSON: {}, HTML: {}}},
        **NOT_MODIFIED,
        **BAD_REQUEST,
        **NOT_FOUND,
        **NOT_ACCEPTABLE,
    },
)
async def collection(
    request: Request,
    collection_id: str = collection_id_path,
    f: str | None = format_query("json", "html"),
    lang: str | None = lang_query,
) -> Response:
    fmt, snap, layer, headers, unchanged = await layer_request(request, collection_id, f)
    if unchanged is not None:
        return unchanged
    if fmt == "html":
        page_lang = page_language(request)
        doc = collection_doc(request, layer, page_lang)
        return html_page(
            request,
            "collection.html",
            Text(layer_title(layer, page_lang)),
            crumbs=crumbs_for(request),
            headers=headers,
            doc=doc,
            description=layer_description(layer, page_lang, snap.run_info),
            links=browser_links(request, doc["links"]),
            count=len(layer),
            geometry_types=layer.geometry_types,
            items_html=html_href(request, request.url_for("items", collectionId=layer.name)),
            properties=queryables_doc(request, layer, snap)["properties"],
        )
    doc = collection_doc(request, layer)
    return Response(orjson.dumps(doc), media_type=JSON, headers=headers)
