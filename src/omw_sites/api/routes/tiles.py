"""Vector tiles of the sites (OGC API – Tiles): ``/collections/sites/tiles…`` (tilesets,
tileset metadata, the tiles) and ``/tileMatrixSets…`` (the tiling scheme they use)."""

from __future__ import annotations

import re
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from omw_sites.api.catalog import Snapshot
from omw_sites.api.conditional import cache_headers, not_modified
from omw_sites.api.negotiation import DOC_FORMATS, negotiate, offers
from omw_sites.api.pages import crumbs_for, html_href, html_page, layer_title, page_language
from omw_sites.api.params import (
    CRS84,
    check_params,
    collection_id_path,
    format_query,
    get_layer,
    lang_query,
    layer_request,
    snapshot,
)
from omw_sites.api.problems import ProblemError, Text, bad_parameter
from omw_sites.api.properties import describe, property_schemas
from omw_sites.api.responses import (
    BAD_REQUEST,
    HTML,
    JSON,
    MVT,
    NOT_ACCEPTABLE,
    NOT_FOUND,
    NOT_MODIFIED,
    TILING_SCHEME_REL,
    Responses,
    html_alternate,
    json_response,
    link,
)
from omw_sites.api.served_layer import Layer
from omw_sites.api.tiling import (
    EPSG3857_URI,
    MAX_ZOOM,
    TILE_MATRIX_SETS,
    WEB_MERCATOR_QUAD,
    WEB_MERCATOR_QUAD_URI,
    cached_tile,
    peek_tile,
    tile_attributes,
    tile_matrix_set_limits,
)
from omw_sites.i18n import gettext
from omw_sites.layers import SITES

MVT_FORMATS = offers({"mvt": (MVT,)})
_DOC_RESPONSES: Responses = {
    200: {"content": {JSON: {}, HTML: {}}},
    **NOT_MODIFIED,
    **BAD_REQUEST,
    **NOT_FOUND,
    **NOT_ACCEPTABLE,
}
_tms_id = Path(alias="tileMatrixSetId", description=f"tile matrix set: {WEB_MERCATOR_QUAD}")

router = APIRouter()


def tiled_layer(snap: Snapshot, collection_id: str) -> Layer:
    """The layer of ``collection_id`` if it has vector tiles (sites), else a 404."""
    layer = get_layer(snap, collection_id)
    if layer.name != SITES:
        raise ProblemError(404, "only the %(name)s collection has vector tiles", name=repr(SITES))
    return layer


def tileset_summary(request: Request, layer: Layer) -> dict[str, Any]:
    """The tileset's entry in the tileset list (OGC API – Tiles ``tileSet-item``)."""
    url = request.url_for("tileset", collectionId=layer.name, tileMatrixSetId=WEB_MERCATOR_QUAD)
    tms_url = request.url_for("tile_matrix_set", tileMatrixSetId=WEB_MERCATOR_QUAD)
    return {
        "title": f"{layer.title}, Mapbox vector tiles",
        "dataType": "vector",
        "crs": EPSG3857_URI,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD_URI,
        "links": [
            link(url, "self", JSON, f"{WEB_MERCATOR_QUAD} tileset of {layer.name}"),
            html_alternate(url, f"{WEB_MERCATOR_QUAD} tileset of {layer.name}"),
            # served here, so that clients need not reach opengis.net for the definition
            link(tms_url, TILING_SCHEME_REL, JSON, "the WebMercatorQuad definition"),
        ],
    }


def tile_matrix_set_entry(request: Request, tms_id: str) -> dict[str, Any]:
    """A tile matrix set's entry in ``/tileMatrixSets`` (a link to its definition)."""
    tms = TILE_MATRIX_SETS[tms_id]
    url = request.url_for("tile_matrix_set", tileMatrixSetId=tms_id)
    return {
        "id": tms_id,
        "title": tms["title"],
        "uri": tms["uri"],
        "crs": tms["crs"],
        "links": [
            link(url, "self", JSON, f"the {tms_id} definition"),
            html_alternate(url, f"the {tms_id} definition"),
        ],
    }


def _tile_path_param(description: str, maximum: int | None = None) -> Any:
    """A tile index in the path: declared as the integer it must be (checked in the route,
    which answers a 400 problem for anything else)."""
    schema: dict[str, Any] = {"type": "integer", "minimum": 0}
    if maximum is not None:
        schema["maximum"] = maximum
    return Path(description=description, json_schema_extra=schema)


def _tile_index(name: str, text: str, upper: int) -> int:
    if not re.fullmatch(r"\d{1,10}", text) or int(text) > upper:
        reason = "must be an integer 0..%(upper)s, not %(value)s"
        raise bad_parameter(name, reason, upper=str(upper), value=repr(text))
    return int(text)


# ------------------------------------------------------------------------- tilesets


@router.get(
    "/collections/{collectionId}/tiles",
    name="tilesets",
    summary="Vector tilesets of a collection (OGC API – Tiles)",
    response_class=Response,
    responses=_DOC_RESPONSES,
)
async def tilesets(
    request: Request,
    collection_id: str = collection_id_path,
    f: str | None = format_query("json", "html"),
    lang: str | None = lang_query,
) -> Response:
    fmt, snap, layer, headers, unchanged = await layer_request(
        request, collection_id, f, pick=tiled_layer
    )
    if unchanged is not None:
        return unchanged
    summary = tileset_summary(request, layer)
    if fmt == "html":
        lang = page_language(request)
        title = gettext(lang, "%(layer)s, Mapbox vector tiles", layer=layer_title(layer, lang))
        rows = [
            {
                **summary,
                "title": title,
                "html": html_href(request, summary["links"][1]["href"]),
                "tms_html": html_href(request, summary["links"][2]["href"]),
            }
        ]
        return html_page(
            request,
            "tilesets.html",
            Text(
                "%(layer)s: vector tilesets", {"layer": layer_title(layer, page_language(request))}
            ),
            crumbs=crumbs_for(request, layer),
            headers=headers,
            tilesets=rows,
        )
    url = request.url_for("tilesets", collectionId=layer.name)
    doc = {
        "links": [
            link(url, "self", JSON, "tilesets"),
            html_alternate(url, "tilesets"),
            link(
                request.url_for("collection", collectionId=layer.name),
                "collection",
                JSON,
                layer.title,
            ),
        ],
        "tilesets": [summary],
    }
    return Response(orjson.dumps(doc), media_type=JSON, headers=headers)


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}",
    name="tileset",
    summary="Tileset metadata: tile URL template and the vector layer's fields",
    response_class=Response,
    responses=_DOC_RESPONSES,
)
async def tileset(
    request: Request,
    collection_id: str = collection_id_path,
    tile_matrix_set_id: str = _tms_id,
    f: str | None = format_query("json", "html"),
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"f", "lang"}))
    fmt = negotiate(request, f, DOC_FORMATS)
    snap = await snapshot(request)
    layer = tiled_layer(snap, collection_id)
    if tile_matrix_set_id != WEB_MERCATOR_QUAD:
        msg = "no tile matrix set %(name)s; tiles are served in %(served)s"
        raise ProblemError(404, msg, name=repr(tile_matrix_set_id), served=WEB_MERCATOR_QUAD)
    headers = cache_headers(request, snap, fmt)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    doc = tileset_summary(request, layer)
    # the route is /{z}/{x}/{y}: tile matrix, column, row; the template names each variable
    template = (
        str(request.url_for("tileset", collectionId=layer.name, tileMatrixSetId=WEB_MERCATOR_QUAD))
        + "/{tileMatrix}/{tileCol}/{tileRow}"
    )
    doc["links"].append({**link(template, "item", MVT, "a Mapbox vector tile"), "templated": True})
    schemas = property_schemas(layer)
    fields = tile_attributes(layer)
    doc["layers"] = [
        {
            "id": layer.name,
            "title": layer.title,
            "dataType": "vector",
            "geometryDimension": 2,
            "minTileMatrix": "0",
            "maxTileMatrix": str(MAX_ZOOM),
            "propertiesSchema": {
                "type": "object",
                "required": [],
                "properties": {
                    name: {**schemas[name], "description": describe(name)[1] or name}
                    for name in fields
                },
            },
        }
    ]
    if layer.bbox is not None:
        doc["boundingBox"] = {
            "lowerLeft": list(layer.bbox[:2]),
            "upperRight": list(layer.bbox[2:]),
            "crs": CRS84,
        }
        doc["tileMatrixSetLimits"] = tile_matrix_set_limits(layer.bbox)
    doc["mediaTypes"] = [MVT]
    if fmt == "html":
        return html_page(
            request,
            "tileset.html",
            Text(
                "%(layer)s: %(tms)s tileset",
                {"layer": layer_title(layer, page_language(request)), "tms": WEB_MERCATOR_QUAD},
            ),
            crumbs=crumbs_for(request, layer),
            headers=headers,
            doc=doc,
            tile_template=template,
            tms_html=html_href(request, doc["links"][2]["href"]),
        )
    return Response(orjson.dumps(doc), media_type=JSON, headers=headers)


# ---------------------------------------------------------------------------- tiles


@router.get(
    "/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}",
    name="tile",
    summary="Mapbox vector tile of the sites (site_id, score_* and rank_* attributes)",
    response_class=Response,
    responses={
        200: {"content": {MVT: {}}},
        204: {"description": "no feature in this tile"},
        **NOT_MODIFIED,
        **BAD_REQUEST,
        **NOT_FOUND,
        **NOT_ACCEPTABLE,
    },
)
async def tile(
    request: Request,
    collection_id: str = collection_id_path,
    z: str = _tile_path_param(f"zoom level (tile matrix) 0..{MAX_ZOOM}", MAX_ZOOM),
    x: str = _tile_path_param("column 0..2^z-1 (west to east)"),
    y: str = _tile_path_param("row 0..2^z-1 (north to south)"),
    f: str | None = format_query("mvt"),
) -> Response:
    check_params(request, frozenset({"f"}))
    fmt = negotiate(request, f, MVT_FORMATS)
    snap = await snapshot(request)
    layer = tiled_layer(snap, collection_id)
    zoom = _tile_index("z", z, MAX_ZOOM)
    col = _tile_index("x", x, 2**zoom - 1)
    row = _tile_index("y", y, 2**zoom - 1)
    headers = cache_headers(request, snap, fmt)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    found, data = peek_tile(layer, zoom, col, row)  # a cached tile needs no thread
    if not found:
        data = await anyio.to_thread.run_sync(cached_tile, layer, zoom, col, row)
    if data is None:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


# ----------------------------------------------------------------- tile matrix sets


@router.get(
    "/tileMatrixSets",
    name="tile_matrix_sets",
    summary="Tile matrix sets (tiling schemes) the tiles use",
    response_class=Response,
    responses={
        200: {"content": {JSON: {}, HTML: {}}},
        **NOT_MODIFIED,
        **BAD_REQUEST,
        **NOT_ACCEPTABLE,
    },
)
async def tile_matrix_sets(
    request: Request,
    f: str | None = format_query("json", "html"),
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"f", "lang"}))
    fmt = negotiate(request, f, DOC_FORMATS)
    headers = cache_headers(request, await snapshot(request), fmt)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    entries = [tile_matrix_set_entry(request, tms_id) for tms_id in TILE_MATRIX_SETS]
    if fmt == "html":
        rows = [{**e, "html": e["links"][1]["href"]} for e in entries]
        return html_page(
            request, "tilematrixsets.html", "Tile matrix sets", headers=headers, sets=rows
        )
    url = request.url_for("tile_matrix_sets")
    doc = {
        "links": [
            link(url, "self", JSON, "tile matrix sets"),
            html_alternate(url, "tile matrix sets"),
        ],
        "tileMatrixSets": entries,
    }
    return json_response(doc, headers=headers)


@router.get(
    "/tileMatrixSets/{tileMatrixSetId}",
    name="tile_matrix_set",
    summary="A tile matrix set definition (OGC 2D Tile Matrix Set 2.0, JSON)",
    response_class=Response,
    responses=_DOC_RESPONSES,
)
async def tile_matrix_set(
    request: Request,
    tile_matrix_set_id: str = _tms_id,
    f: str | None = format_query("json", "html"),
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"f", "lang"}))
    fmt = negotiate(request, f, DOC_FORMATS)
    tms = TILE_MATRIX_SETS.get(tile_matrix_set_id)
    if tms is None:
        msg = "no tile matrix set %(name)s; served: %(valid)s"
        valid = ", ".join(TILE_MATRIX_SETS)
        raise ProblemError(404, msg, name=repr(tile_matrix_set_id), valid=valid)
    headers = cache_headers(request, await snapshot(request), fmt)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    if fmt == "html":
        crumbs = [
            {
                "href": html_href(request, request.url_for("tile_matrix_sets")),
                "title": gettext(page_language(request), "Tile matrix sets"),
            }
        ]
        return html_page(
            request,
            "tilematrixset.html",
            Text(tms["title"]),
            crumbs=crumbs,
            headers=headers,
            doc=tms,
        )
    return json_response(tms, headers=headers)
