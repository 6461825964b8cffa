"""``/collections/{collectionId}/items`` and ``…/items/{featureId}``: the features, as
GeoJSON or HTML, selected by bbox, datetime, property values and CQL2 filters."""

from __future__ import annotations

import datetime as dt

import anyio.to_thread
import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from omw_sites.api.conditional import cache_headers, feature_etag, not_modified
from omw_sites.api.cql import CQL2_TEXT, FILTER_LANGS, parse_filter
from omw_sites.api.cql_evaluation import FilterEvaluator
from omw_sites.api.negotiation import FEATURE_FORMATS, negotiate
from omw_sites.api.output_crs import OUTPUT_CRS
from omw_sites.api.pages import item_page, items_page
from omw_sites.api.params import (
    CRS84,
    DATE,
    DATE_TIME,
    OUTPUT_CRS_LIST_TEXT,
    SUPPORTED_CRS,
    check_crs,
    check_params,
    collection_id_path,
    crs_query,
    format_query,
    get_layer,
    lang_query,
    parse_bbox,
    parse_datetime,
    parse_properties,
    parse_sortby,
    snapshot,
)
from omw_sites.api.problems import ProblemError, bad_parameter, message
from omw_sites.api.properties import TEMPORAL_PROPERTY, time_format
from omw_sites.api.responses import (
    BAD_REQUEST,
    GEOJSON,
    HTML,
    JSON,
    NOT_ACCEPTABLE,
    NOT_FOUND,
    NOT_MODIFIED,
    Responses,
    html_alternate,
    link,
)
from omw_sites.api.served_layer import Layer
from omw_sites.layers import SITES

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000  # features per page at most; a larger limit is served as this many
ITEMS_PARAMS = frozenset(
    {
        "lang",
        "bbox",
        "bbox-crs",
        "crs",
        "limit",
        "offset",
        "profile",
        "datetime",
        "f",
        "filter",
        "filter-lang",
        "filter-crs",
        "sortby",
        "properties",
    }
)
_RESPONSES: Responses = {
    200: {"content": {GEOJSON: {}, HTML: {}}},
    **NOT_MODIFIED,
    **BAD_REQUEST,
    **NOT_FOUND,
    **NOT_ACCEPTABLE,
}

router = APIRouter()


# ------------------------------------------------------------------- row selection


def equality_mask(layer: Layer, request: Request) -> np.ndarray | None:
    """Rows matching every ``<property>=<value>`` query parameter (Part 1 property filters)."""
    mask = None
    for name in layer.columns:
        if name in ITEMS_PARAMS or name not in request.query_params:
            continue
        text = request.query_params[name]
        series = layer.table[name]
        if pd.api.types.is_bool_dtype(series):
            if text.lower() not in ("true", "false"):
                raise bad_parameter(name, "expected true or false, not %(value)s", value=repr(text))
            hit = series.to_numpy() == (text.lower() == "true")
        elif pd.api.types.is_numeric_dtype(series):
            try:
                value = float(text)
            except ValueError:
                raise bad_parameter(
                    name, "expected a number, not %(value)s", value=repr(text)
                ) from None
            hit = series.to_numpy(dtype=float, na_value=np.nan) == value
        else:
            fmt = time_format(layer, name)
            pattern = {"date-time": DATE_TIME, "date": DATE}.get(fmt or "")
            if pattern is not None and not pattern.match(text):
                reason = "expected an RFC 3339 %(format)s, not %(value)s"
                raise bad_parameter(name, reason, format=fmt, value=repr(text))
            hit = (series.astype("string") == text).fillna(False).to_numpy(dtype=bool)
        mask = hit if mask is None else mask & hit
    return mask


def datetime_mask(layer: Layer, text: str) -> np.ndarray | None:
    """Rows whose temporal property falls in ``datetime``; None (no restriction) for a
    collection without one, as OGC API Features Part 1 says."""
    start, end = parse_datetime(text)
    if TEMPORAL_PROPERTY not in layer.table.columns:
        return None
    values = layer.table[TEMPORAL_PROPERTY]
    mask = values.notna().to_numpy().copy()
    text_values = values.astype(object).where(values.notna(), "").to_numpy(dtype=object)
    if start is not None:
        mask &= text_values >= start
    if end is not None:
        mask &= text_values < end
    return mask


def filter_mask(
    layer: Layer, text: str, lang: str | None, crs: str | None
) -> tuple[np.ndarray, str]:
    """Row mask of a CQL2 filter, and the CRS its geometry literals are in.

    Bounded work (``api/limits.py``); still CPU-bound, so ``items`` runs it in a worker
    thread rather than on the event loop.
    """
    lang = lang or CQL2_TEXT
    if lang not in FILTER_LANGS:
        raise bad_parameter(
            "filter-lang", "must be one of %(valid)s", valid=", ".join(FILTER_LANGS)
        )
    fcrs = check_crs("filter-crs", crs)
    node = parse_filter(text, lang)
    evaluator = FilterEvaluator(
        layer.table,
        lambda geom, predicate: layer.spatial_rows(geom, predicate, fcrs),
        swap_axes=OUTPUT_CRS[fcrs].swap,
        geometries=layer.storage_geometries,  # S_INTERSECTS(geometry, geometry)
    )
    return evaluator.mask(node), fcrs


async def ensure_view(layer: Layer, crs: str) -> None:
    """Build the layer's view in ``crs`` off the event loop if it is not there yet."""
    if crs not in layer.views:
        await anyio.to_thread.run_sync(layer.view, crs)


def time_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -------------------------------------------------------------------------- routes


@router.get(
    "/collections/{collectionId}/items",
    name="items",
    summary="Features of a collection (GeoJSON, CRS84)",
    response_class=Response,
    responses=_RESPONSES,
)
async def items(
    request: Request,
    collection_id: str = collection_id_path,
    bbox: str | None = Query(
        None,
        description="minx,miny,maxx,maxy in CRS84 (longitude, latitude); features whose "
        "geometry intersects the box",
    ),
    limit: int = Query(
        DEFAULT_LIMIT,
        ge=1,
        description=f"page size; at most {MAX_LIMIT:,} features are returned (a larger limit "
        "is served as that many, with a next link)",
    ),
    offset: int = Query(0, ge=0, description="number of matching features to skip"),
    profile: str | None = Query(
        None,
        description="sites only: order by rank_<profile>, best first, excluded sites (rank 0) last",
    ),
    datetime: str | None = Query(
        None,
        description="RFC 3339 instant or interval (e.g. 2026-11-01T00:00:00Z/..): sites "
        "whose inventory record last changed then (updated_at); reference layers have no "
        "temporal property, so it is checked and does not filter them",
    ),
    bbox_crs: str | None = Query(
        None,
        alias="bbox-crs",
        description=f"CRS of bbox, in its axis order: {CRS84} (default, minlon,minlat,"
        f"maxlon,maxlat), {OUTPUT_CRS_LIST_TEXT}",
        json_schema_extra={"enum": list(SUPPORTED_CRS)},
    ),
    crs: str | None = crs_query,
    filter_: str | None = Query(
        None,
        alias="filter",
        description="CQL2 filter (OGC API Features Part 3) over the queryables, e.g. "
        "\"area_ha > 5 AND teryt IN ('1465011') AND S_INTERSECTS(geometry, "
        'BBOX(20.9,52.1,21.1,52.3))"',
    ),
    filter_lang: str | None = Query(
        None, alias="filter-lang", description="cql2-text (default) or cql2-json"
    ),
    filter_crs: str | None = Query(
        None,
        alias="filter-crs",
        description=f"CRS of geometry literals in filter, in its axis order: {CRS84} "
        f"(default, lon/lat), {OUTPUT_CRS_LIST_TEXT}",
        json_schema_extra={"enum": list(SUPPORTED_CRS)},
    ),
    sortby: str | None = Query(
        None,
        description="comma-separated properties, '-' for descending, e.g. "
        "-score_logistics,area_ha; missing values last; ties keep profile/storage order",
    ),
    properties: str | None = Query(
        None, description="comma-separated properties to return (default: all)"
    ),
    f: str | None = format_query("json", "geojson", "html"),
    lang: str | None = lang_query,
) -> Response:
    snap = await snapshot(request)
    layer = get_layer(snap, collection_id)
    check_params(request, ITEMS_PARAMS | frozenset(layer.columns))
    fmt = negotiate(request, f, FEATURE_FORMATS)
    limit = min(limit, MAX_LIMIT)  # OGC API Features: the server may serve fewer than asked
    out_crs = check_crs("crs", crs)
    box_crs = check_crs("bbox-crs", bbox_crs)
    boxes = parse_bbox(bbox, box_crs) if bbox is not None else None
    time_mask = datetime_mask(layer, datetime) if datetime is not None else None
    if profile is not None:
        if layer.name != SITES:
            raise bad_parameter(
                "profile", "only the %(name)s collection is ranked", name=repr(SITES)
            )
        if profile not in snap.profiles:
            valid = ", ".join(snap.profiles) or message("none in this store")
            reason = "unknown profile %(name)s; valid: %(valid)s"
            raise bad_parameter("profile", reason, name=repr(profile), valid=valid)
    sort_keys = parse_sortby(sortby, layer) if sortby is not None else []
    selected = parse_properties(properties, layer) if properties is not None else None
    if filter_lang is not None and filter_lang not in FILTER_LANGS:
        raise bad_parameter(
            "filter-lang", "must be one of %(valid)s", valid=", ".join(FILTER_LANGS)
        )
    if filter_crs is not None:
        check_crs("filter-crs", filter_crs)
    headers = cache_headers(request, snap, fmt)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    await ensure_view(layer, out_crs)
    if boxes is not None:
        await ensure_view(layer, box_crs)
    mask = equality_mask(layer, request)
    if time_mask is not None:
        mask = time_mask if mask is None else mask & time_mask
    if filter_ is not None:
        await ensure_view(layer, check_crs("filter-crs", filter_crs))
        found, _ = await anyio.to_thread.run_sync(
            filter_mask, layer, filter_, filter_lang, filter_crs
        )
        mask = found if mask is None else mask & found
    matched, features = layer.page(
        boxes,
        profile,
        offset,
        limit,
        crs=out_crs,
        box_crs=box_crs,
        mask=mask,
        sortby=sort_keys,
        properties=selected,
    )
    url = request.url
    next_url = prev_url = None
    if offset + len(features) < matched:
        next_url = url.include_query_params(offset=offset + limit, limit=limit)
    if offset > 0:
        prev_url = url.include_query_params(offset=max(0, offset - limit), limit=limit)
    headers["Content-Crs"] = f"<{out_crs}>"
    if fmt == "html":
        return items_page(
            request,
            layer,
            features,
            matched,
            offset,
            out_crs,
            next_url,
            prev_url,
            headers,
        )
    links = [
        link(url, "self", GEOJSON, "this page"),
        html_alternate(url, "this page"),
        link(
            request.url_for("collection", collectionId=layer.name), "collection", JSON, layer.title
        ),
    ]
    if next_url is not None:
        links.append(link(next_url, "next", GEOJSON, "next page"))
    if prev_url is not None:
        links.append(link(prev_url, "prev", GEOJSON, "previous page"))
    head = b'{"type":"FeatureCollection","numberMatched":%d,"numberReturned":%d,' % (
        matched,
        len(features),
    )
    body = b"".join(
        (
            head,
            b'"timeStamp":"%b","links":%b,"features":['
            % (time_stamp().encode(), orjson.dumps(links)),
            b",".join(features),
            b"]}",
        )
    )
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    name="item",
    summary="One feature (GeoJSON, CRS84)",
    response_class=Response,
    responses=_RESPONSES,
)
async def item(
    request: Request,
    collection_id: str = collection_id_path,
    feature_id: str = Path(alias="featureId", description="site_id for sites, fid otherwise"),
    crs: str | None = crs_query,
    properties: str | None = Query(
        None, description="comma-separated properties to return (default: all)"
    ),
    f: str | None = format_query("json", "geojson", "html"),
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"crs", "f", "properties", "lang"}))
    fmt = negotiate(request, f, FEATURE_FORMATS)
    out_crs = check_crs("crs", crs)
    snap = await snapshot(request)
    layer = get_layer(snap, collection_id)
    selected = parse_properties(properties, layer) if properties is not None else None
    row = layer.index.get(feature_id)
    if row is None:
        msg = "collection %(name)s has no feature %(id)s"
        raise ProblemError(404, msg, name=repr(layer.name), id=repr(feature_id))
    headers = cache_headers(request, snap, fmt)
    # sites: a strong ETag of the record version, read before the bytes (If-Match of writes)
    if (strong := feature_etag(layer, row, request, fmt)) is not None:
        headers["ETag"] = strong
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    links = [
        link(request.url, "self", GEOJSON, "this feature"),
        html_alternate(request.url, "this feature"),
        link(
            request.url_for("collection", collectionId=layer.name), "collection", JSON, layer.title
        ),
    ]
    await ensure_view(layer, out_crs)
    features = layer.views[out_crs].features
    if selected is None:
        feature = features[row]
    else:
        feature = layer.with_properties(features, np.array([row]), selected)[0]
    headers["Content-Crs"] = f"<{out_crs}>"
    if fmt == "html":
        return item_page(request, layer, feature, out_crs, headers)
    body = b'%b,"links":%b}' % (feature[:-1], orjson.dumps(links))
    return Response(body, media_type=GEOJSON, headers=headers)
