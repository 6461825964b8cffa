"""OGC API – Features routes: landing, collections, items (Parts 1–3), queryables, MVT tiles."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import anyio.to_thread
import numpy as np
import orjson
import pandas as pd
import shapely
from fastapi import APIRouter, Path, Query, Request
from starlette.datastructures import URL
from starlette.responses import HTMLResponse, Response

from omw_sites.api.catalog import (
    CRS84_URI,
    OUTPUT_CRS,
    STORAGE_CRS_URI,
    Box,
    Catalog,
    Layer,
    Snapshot,
)
from omw_sites.api.cql import CQL2_TEXT, FILTER_LANGS, FilterEvaluator, parse_filter
from omw_sites.api.negotiation import (
    DOC_FORMATS,
    FEATURE_FORMATS,
    SCHEMA_FORMATS,
    VARY,
    Format,
    negotiate,
    offers,
)
from omw_sites.api.pages import as_format, browser_links, geometry_summary, html_page
from omw_sites.api.pages import crumbs_for as _crumbs
from omw_sites.api.params import check_params, format_query
from omw_sites.api.problems import PROBLEM_MEDIA_TYPE, ProblemError, bad_parameter
from omw_sites.api.tiling import (
    EPSG3857_URI,
    MERCATOR_HALF,
    TILE_MATRIX_SETS,
    TMS_CONFORMANCE,
    WEB_MERCATOR_QUAD,
    WEB_MERCATOR_QUAD_URI,
)
from omw_sites.api.write import PART4_CONFORMANCE, feature_etag
from omw_sites.layers import RECORD_COLUMNS, SITE_COLUMNS, SITES

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
SCHEMA_JSON = "application/schema+json"
MVT = "application/vnd.mapbox-vector-tile"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
TILESETS_VECTOR_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILING_SCHEME_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
TILING_SCHEMES_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = CRS84_URI
STORAGE_CRS = STORAGE_CRS_URI
SUPPORTED_CRS = tuple(OUTPUT_CRS)  # CRS84 (default), EPSG:4326, 4258, 2180, PL-2000 zones
CRS_LIST = ", ".join(SUPPORTED_CRS)


def _crs_label(uri: str) -> str:
    crs = OUTPUT_CRS[uri]
    order = "lat/lon" if crs.geographic else "northing/easting"
    return f"{crs.code} ({'storage CRS, ' if uri == STORAGE_CRS else ''}{order})"


OUTPUT_CRS_LIST_TEXT = ", ".join(
    f"{uri} = {_crs_label(uri)}" for uri in SUPPORTED_CRS if uri != CRS84
)
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000  # features per page at most; a larger limit is served as this many

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    *TMS_CONFORMANCE,
    *PART4_CONFORMANCE,
]

router = APIRouter()

_problem = {"description": "problem details", "content": {PROBLEM_MEDIA_TYPE: {}}}
_bad_request = {400: {**_problem, "description": "a query parameter is invalid"}}
_not_found = {404: {**_problem, "description": "no such collection or feature"}}
_not_modified = {304: {"description": "not modified since the ETag / Last-Modified given"}}
_not_acceptable = {
    406: {**_problem, "description": "no format offered is acceptable (Accept header)"}
}


# ---------------------------------------------------------------------------- helpers


def json_response(
    obj: Any,
    media_type: str = JSON,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        orjson.dumps(obj), status_code=status_code, media_type=media_type, headers=headers
    )


def link(href: Any, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    out = {"href": str(href), "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def crumbs_for(request: Request, layer: Layer | None = None) -> list[dict[str, str]]:
    """Breadcrumbs (HTML pages) down to ``layer``'s collection page."""
    return _crumbs(request, layer.name if layer is not None else None)


def html_alternate(url: URL | str, what: str) -> dict[str, str]:
    return link(as_format(url, "html"), "alternate", HTML, f"{what} as HTML")


def cache_headers(request: Request, snap: Snapshot, variant: str = "") -> dict[str, str]:
    """ETag (store version, the URL and the format served) and Last-Modified (the newest
    record update), with ``Vary: Accept`` (the format may come from that header)."""
    key = repr((snap.signature, str(request.url), variant or request.headers.get("accept", "")))
    tag = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    modified = snap.modified
    return {
        "ETag": f'W/"{tag}"',
        "Last-Modified": format_datetime(modified, usegmt=True),
        "Cache-Control": "no-cache",
        "Vary": VARY,
    }


def not_modified(request: Request, headers: dict[str, str]) -> Response | None:
    """A 304 when ``If-None-Match`` (or, without it, ``If-Modified-Since``) says so."""
    match = request.headers.get("if-none-match")
    if match is not None:
        ours = headers["ETag"].removeprefix("W/")
        tags = [t.strip().removeprefix("W/") for t in match.split(",")]
        if "*" in tags or ours in tags:
            return Response(status_code=304, headers=headers)
        return None
    since = request.headers.get("if-modified-since")
    if since:
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is not None and parsedate_to_datetime(headers["Last-Modified"]) <= when:
            return Response(status_code=304, headers=headers)
    return None


async def snapshot(request: Request) -> Snapshot:
    catalog: Catalog = request.app.state.catalog
    return await catalog.current()


def get_layer(snap: Snapshot, collection_id: str) -> Layer:
    try:
        return snap.layers[collection_id]
    except KeyError:
        msg = f"no collection {collection_id!r}; collections: {', '.join(snap.layers)}"
        raise ProblemError(404, msg) from None


def parse_bbox(text: str, crs: str = CRS84) -> list[Box]:
    """``bbox`` in the axis order of ``crs`` → (minx, miny, maxx, maxy) boxes to query with.

    CRS84: minlon,minlat,maxlon,maxlat (or the 6-number 3D form); a box whose minlon >
    maxlon crosses the antimeridian and is split in two. EPSG:4326 and EPSG:4258: minlat,
    minlon,maxlat,maxlon, returned as (lon, lat) boxes. EPSG:2180 and the PL-2000 zones:
    minN,minE,maxN,maxE (northing first, the CRS's own axis order), returned as (E, N)
    boxes.
    """
    parts = text.split(",")
    if len(parts) not in (4, 6):
        reason = f"expected 4 comma-separated numbers minx,miny,maxx,maxy, got {len(parts)}"
        raise bad_parameter("bbox", reason)
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise bad_parameter("bbox", f"not numbers: {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise bad_parameter("bbox", "values must be finite numbers")
    if len(values) == 6:  # minx,miny,minz,maxx,maxy,maxz: the data are 2D
        values = [values[0], values[1], values[3], values[4]]
    axes = OUTPUT_CRS[crs]
    if not axes.geographic:  # EPSG:2180, PL-2000: (northing, easting)
        min_n, min_e, max_n, max_e = values
        if min_n > max_n or min_e > max_e:
            raise bad_parameter("bbox", "expected minN,minE,maxN,maxE with min <= max")
        return [(min_e, min_n, max_e, max_n)]
    if axes.swap:  # EPSG:4326, EPSG:4258: minlat,minlon,maxlat,maxlon
        miny, minx, maxy, maxx = values
        order = f"{axes.code} minlat,minlon,maxlat,maxlon"
    else:
        minx, miny, maxx, maxy = values
        order = "CRS84 minlon,minlat,maxlon,maxlat"
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        reason = (
            f"expected {order} with longitude in [-180, 180], latitude in [-90, 90], "
            "min latitude <= max latitude"
        )
        raise bad_parameter("bbox", reason)
    if minx > maxx:
        return [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]
    return [(minx, miny, maxx, maxy)]


def check_crs(name: str, value: str | None) -> str:
    if value is None:
        return CRS84
    if value not in SUPPORTED_CRS:
        raise bad_parameter(name, f"unsupported CRS {value!r}; supported: {CRS_LIST}")
    return value


async def ensure_view(layer: Layer, crs: str) -> None:
    """Build the layer's view in ``crs`` off the event loop if it is not there yet."""
    if crs not in layer.views:
        await anyio.to_thread.run_sync(layer.view, crs)


_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$", re.IGNORECASE
)
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)


TEMPORAL_PROPERTY = "updated_at"  # sites: when the inventory record last changed


def parse_datetime(text: str) -> tuple[str | None, str | None]:
    """An RFC 3339 instant or interval (``..`` or empty for an open end) as a half-open
    ``[start, end)`` range of store timestamps (ISO UTC text); ``None`` for an open end.
    A date-only instant is that whole day; a date-time instant that second."""
    ends = text.split("/")
    if len(ends) > 2 or (len(ends) == 2 and all(e in ("", "..") for e in ends)):
        raise bad_parameter("datetime", f"not an RFC 3339 instant or interval: {text!r}")
    parsed: list[dt.datetime | None] = []
    for end in ends:
        if len(ends) == 2 and end in ("", ".."):
            parsed.append(None)
            continue
        if not _INSTANT.match(end):
            raise bad_parameter("datetime", f"not an RFC 3339 date-time: {end!r}")
        try:
            t = dt.datetime.fromisoformat(end.upper().replace("Z", "+00:00"))
        except ValueError:
            raise bad_parameter("datetime", f"not a valid date-time: {end!r}") from None
        parsed.append(t if t.tzinfo else t.replace(tzinfo=dt.UTC))

    def stamp(t: dt.datetime) -> str:
        return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    if len(parsed) == 1:
        start = parsed[0]
        assert start is not None
        width = dt.timedelta(days=1) if len(ends[0]) == 10 else dt.timedelta(seconds=1)
        return stamp(start), stamp(start + width)
    start, end = parsed
    if len(ends[1]) == 10 and end is not None:  # an end date includes that day
        end = end + dt.timedelta(days=1)
    elif end is not None:
        end = end + dt.timedelta(microseconds=1)  # inclusive end instant
    if start is not None and end is not None and end <= start:
        raise bad_parameter("datetime", f"the interval ends before it starts: {text!r}")
    return (stamp(start) if start else None), (stamp(end) if end else None)


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


def time_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def collection_doc(request: Request, layer: Layer) -> dict[str, Any]:
    self_url = request.url_for("collection", collectionId=layer.name)
    items_url = request.url_for("items", collectionId=layer.name)
    doc: dict[str, Any] = {
        "id": layer.name,
        "title": layer.title,
        "description": layer.description,
        "links": [
            link(self_url, "self", JSON, f"collection {layer.name}"),
            html_alternate(self_url, f"collection {layer.name}"),
            link(items_url, "items", GEOJSON, f"{layer.title} as GeoJSON"),
            link(
                request.url_for("queryables", collectionId=layer.name),
                QUERYABLES_REL,
                SCHEMA_JSON,
                f"properties of {layer.name} that filter and sortby take",
            ),
        ]
        + (
            [
                link(
                    request.url_for("tilesets", collectionId=layer.name),
                    TILESETS_VECTOR_REL,
                    JSON,
                    f"vector tilesets of {layer.name}",
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


GREGORIAN_TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
TEMPORAL_START = "created_at"  # sites: when the record was created


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


# ---------------------------------------------------------------------------- routes


async def layer_request(
    request: Request,
    collection_id: str,
    f: str | None,
    formats: tuple[Format, ...] = DOC_FORMATS,
    pick: Any = None,
) -> tuple[str, Snapshot, Layer, dict[str, str], Response | None]:
    """The common start of a per-collection document: check the parameters, negotiate
    the format, take the snapshot and the layer, and the cache headers with a 304
    response when the client's copy is current. Returns (format, snapshot, layer,
    headers, 304)."""
    check_params(request, frozenset({"f"}))
    fmt = negotiate(request, f, formats)
    snap = await snapshot(request)
    layer = (pick or get_layer)(snap, collection_id)
    headers = cache_headers(request, snap, fmt)
    return fmt, snap, layer, headers, not_modified(request, headers)


@router.get(
    "/",
    name="landing",
    summary="Landing page",
    response_class=Response,
    responses={
        200: {"content": {JSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_acceptable,
    },
)
async def landing(
    request: Request,
    f: str | None = format_query("json", "html"),
) -> Response:
    check_params(request, frozenset({"f"}))
    fmt = negotiate(request, f, DOC_FORMATS)
    snap = await snapshot(request)
    headers = cache_headers(request, snap, fmt)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    links = [
        link(request.url_for("landing"), "self", JSON, "this document"),
        html_alternate(request.url_for("landing"), "this document"),
        link(request.url_for("openapi"), "service-desc", OPENAPI, "the API definition"),
        link(request.url_for("conformance"), "conformance", JSON, "conformance classes"),
        link(request.url_for("collections"), "data", JSON, "the collections"),
        link(
            request.url_for("tile_matrix_sets"),
            TILING_SCHEMES_REL,
            JSON,
            "tile matrix sets (tiling schemes) of the vector tiles",
        ),
    ]
    for p in snap.profiles.values():
        links.append(
            link(
                request.url_for("map", profile=p.name),
                "related",
                HTML,
                f"map of sites ranked for {p.title}",
            )
        )
    doc = {
        "title": "omw-sites",
        "description": "Inventory and ranking of investment land for the Warsaw metropolitan "
        "area (OMW), as OGC API – Features.",
        "links": links,
    }
    run = {k: snap.run_info[k] for k in ("run_id", "created") if k in snap.run_info}
    if run:
        doc["run"] = run
    if fmt == "html":
        return html_page(
            request,
            "landing.html",
            doc["title"],
            headers=headers,
            doc=doc,
            links=browser_links(links),
            collections_html=as_format(request.url_for("collections"), "html"),
            conformance_html=as_format(request.url_for("conformance"), "html"),
            tms_html=as_format(request.url_for("tile_matrix_sets"), "html"),
        )
    return json_response(doc, headers=headers)


@router.get(
    "/conformance",
    name="conformance",
    summary="Conformance classes",
    response_class=Response,
    responses={200: {"content": {JSON: {}, HTML: {}}}, **_bad_request, **_not_acceptable},
)
async def conformance(
    request: Request,
    f: str | None = format_query("json", "html"),
) -> Response:
    check_params(request, frozenset({"f"}))
    headers = {"Vary": VARY}
    if negotiate(request, f, DOC_FORMATS) == "html":
        return html_page(
            request, "conformance.html", "Conformance", headers=headers, conforms=CONFORMANCE
        )
    return json_response({"conformsTo": CONFORMANCE}, headers=headers)


@router.get(
    "/collections",
    name="collections",
    summary="Feature collections",
    response_class=Response,
    responses={
        200: {"content": {JSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_acceptable,
    },
)
async def collections(
    request: Request,
    f: str | None = format_query("json", "html"),
) -> Response:
    check_params(request, frozenset({"f"}))
    fmt = negotiate(request, f, DOC_FORMATS)
    snap = await snapshot(request)
    headers = cache_headers(request, snap, fmt)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    if fmt == "html":
        rows = []
        for layer in snap.layers.values():
            items_url = request.url_for("items", collectionId=layer.name)
            rows.append(
                {
                    "id": layer.name,
                    "title": layer.title,
                    "description": layer.description,
                    "count": len(layer),
                    "html": as_format(
                        request.url_for("collection", collectionId=layer.name), "html"
                    ),
                    "items_html": as_format(items_url, "html"),
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


_collection_id = Path(alias="collectionId", description="collection: sites or a reference layer")


@router.get(
    "/collections/{collectionId}",
    name="collection",
    summary="One feature collection",
    response_class=Response,
    responses={
        200: {"content": {JSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_found,
        **_not_acceptable,
    },
)
async def collection(
    request: Request,
    collection_id: str = _collection_id,
    f: str | None = format_query("json", "html"),
) -> Response:
    fmt, snap, layer, headers, unchanged = await layer_request(request, collection_id, f)
    if unchanged is not None:
        return unchanged
    doc = collection_doc(request, layer)
    if fmt == "html":
        return html_page(
            request,
            "collection.html",
            layer.title,
            crumbs=crumbs_for(request),
            headers=headers,
            doc=doc,
            links=browser_links(doc["links"]),
            count=len(layer),
            geometry_types=layer.geometry_types,
            items_html=as_format(request.url_for("items", collectionId=layer.name), "html"),
            properties=queryables_doc(request, layer, snap)["properties"],
        )
    return Response(orjson.dumps(doc), media_type=JSON, headers=headers)


# properties holding dates or instants as RFC 3339 text: their JSON schema "format"
TIME_UNITS = {"UTC": "date-time", "date": "date"}  # unit in SITE_COLUMNS / RECORD_COLUMNS
DATE_COLUMNS = frozenset({"zoning_adopted"})  # dates whose unit column is blank
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def time_format(layer: Layer, column: str) -> str | None:
    """``date-time`` or ``date`` for a property holding instants or dates, else None."""
    dtype = layer.table[column].dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date-time"
    if layer.name != SITES or pd.api.types.is_numeric_dtype(dtype):
        return None
    if column in DATE_COLUMNS:
        return "date"
    return TIME_UNITS.get(_describe(column)[0])


def _json_type(dtype: Any) -> dict[str, str]:
    if pd.api.types.is_bool_dtype(dtype):
        return {"type": "boolean"}
    if pd.api.types.is_integer_dtype(dtype):
        return {"type": "integer"}
    if pd.api.types.is_numeric_dtype(dtype):
        return {"type": "number"}
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}


def property_schema(layer: Layer, column: str) -> dict[str, str]:
    """JSON schema type (and date format) of one property of ``layer``."""
    schema = _json_type(layer.table[column].dtype)
    fmt = time_format(layer, column)
    return {**schema, "format": fmt} if fmt else schema


def property_schemas(layer: Layer) -> dict[str, dict[str, str]]:
    """JSON schema type of each property of ``layer``."""
    return {c: property_schema(layer, c) for c in layer.columns}


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
                raise bad_parameter(name, f"expected true or false, not {text!r}")
            hit = series.to_numpy() == (text.lower() == "true")
        elif pd.api.types.is_numeric_dtype(series):
            try:
                value = float(text)
            except ValueError:
                raise bad_parameter(name, f"expected a number, not {text!r}") from None
            hit = series.to_numpy(dtype=float, na_value=np.nan) == value
        else:
            fmt = time_format(layer, name)
            pattern = {"date-time": _DATE_TIME, "date": _DATE}.get(fmt or "")
            if pattern is not None and not pattern.match(text):
                raise bad_parameter(name, f"expected an RFC 3339 {fmt}, not {text!r}")
            hit = (series.astype("string") == text).fillna(False).to_numpy(dtype=bool)
        mask = hit if mask is None else mask & hit
    return mask


def _describe(column: str) -> tuple[str, str]:
    """(unit, description) of a site-table column."""
    if column in SITE_COLUMNS:
        return SITE_COLUMNS[column]
    if column in RECORD_COLUMNS:
        return RECORD_COLUMNS[column]
    for prefix, text in (
        ("score_", "score for profile {} (0..1, null when excluded)"),
        ("rank_", "rank for profile {} (1 = best, 0 = excluded)"),
        ("excluded_", "why the site is excluded for profile {} (empty when eligible)"),
    ):
        if column.startswith(prefix):
            return "", text.format(column[len(prefix) :])
    return "", ""


def queryables_doc(request: Request, layer: Layer, snap: Snapshot) -> dict[str, Any]:
    """JSON Schema of the properties ``filter``, ``sortby`` and ``properties`` take."""
    units = snap.run_info.get("units") or {} if layer.name == SITES else {}
    types = layer.geometry_types
    kind = types[0].lower() if len(types) == 1 else "any"
    props: dict[str, Any] = {
        "geometry": {
            "title": "geometry",
            "description": f"{', '.join(types) or 'no'} geometries; S_INTERSECTS and friends",
            "format": f"geometry-{kind}",
            "x-ogc-role": "primary-geometry",
        }
    }
    for column in layer.columns:
        unit, description = _describe(column) if layer.name == SITES else ("", "")
        unit = str(units.get(column) or unit)
        entry: dict[str, Any] = {"title": column, **property_schema(layer, column)}
        if unit in TIME_UNITS:  # a time zone or "date": said by the format, not a unit
            description += f" ({unit})" if unit == "UTC" else ""
            unit = ""
        if column == TEMPORAL_PROPERTY:
            description += "; the datetime parameter of the items filters on it"
            entry["x-ogc-role"] = "primary-instant"
        if description:
            entry["description"] = description + (f" [{unit}]" if unit else "")
        if unit:
            entry["x-ogc-unit"] = unit
        props[column] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": str(request.url_for("queryables", collectionId=layer.name)),
        "type": "object",
        "title": layer.title,
        "description": f"queryable properties of {layer.name}",
        "properties": props,
        "additionalProperties": False,
    }


@router.get(
    "/collections/{collectionId}/queryables",
    name="queryables",
    summary="Queryable properties of a collection (JSON Schema)",
    response_class=Response,
    responses={
        200: {"content": {SCHEMA_JSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_found,
        **_not_acceptable,
    },
)
async def queryables(
    request: Request,
    collection_id: str = _collection_id,
    f: str | None = format_query("json", "html"),
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
            f"{layer.title}: queryables",
            json_type=SCHEMA_JSON,
            crumbs=crumbs_for(request, layer),
            headers=headers,
            doc=doc,
            temporal=TEMPORAL_PROPERTY if TEMPORAL_PROPERTY in layer.columns else None,
        )
    return Response(orjson.dumps(doc), media_type=SCHEMA_JSON, headers=headers)


ITEMS_PARAMS = frozenset(
    {
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
_crs_param = Query(
    None,
    description=f"CRS of the returned coordinates, in the CRS's own axis order: {CRS84} "
    f"(default, lon/lat), {OUTPUT_CRS_LIST_TEXT}",
    json_schema_extra={"enum": list(SUPPORTED_CRS)},
)


def _unknown_property(param: str, name: str, layer: Layer) -> ProblemError:
    valid = ", ".join(layer.columns)
    return bad_parameter(param, f"unknown property {name!r}; queryables: {valid}")


def parse_sortby(text: str, layer: Layer) -> list[tuple[str, bool]]:
    """``-score_logistics,area_ha`` → [(column, descending)]; ``+`` or no sign is ascending."""
    keys = []
    for part in text.split(","):
        name = part.strip()
        descending = name.startswith("-")
        name = name.lstrip("+-").strip()
        if not name:
            raise bad_parameter("sortby", f"empty sort key in {text!r}")
        if name not in layer.table.columns:
            raise _unknown_property("sortby", name, layer)
        keys.append((name, descending))
    return keys


def parse_properties(text: str, layer: Layer) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in layer.table.columns:
            raise _unknown_property("properties", name, layer)
    return list(dict.fromkeys(names))


def filter_mask(
    layer: Layer, text: str, lang: str | None, crs: str | None
) -> tuple[np.ndarray, str]:
    """Row mask of a CQL2 filter, and the CRS its geometry literals are in.

    Bounded work (``api/limits.py``); still CPU-bound, so ``items`` runs it in a worker
    thread rather than on the event loop.
    """
    lang = lang or CQL2_TEXT
    if lang not in FILTER_LANGS:
        raise bad_parameter("filter-lang", f"must be one of {', '.join(FILTER_LANGS)}")
    fcrs = check_crs("filter-crs", crs)
    node = parse_filter(text, lang)
    evaluator = FilterEvaluator(
        layer.table,
        lambda geom, predicate: layer.spatial_rows(geom, predicate, fcrs),
        swap_axes=OUTPUT_CRS[fcrs].swap,
        geometries=layer.storage_geometries,  # S_INTERSECTS(geometry, geometry)
    )
    return evaluator.mask(node), fcrs


@router.get(
    "/collections/{collectionId}/items",
    name="items",
    summary="Features of a collection (GeoJSON, CRS84)",
    response_class=Response,
    responses={
        200: {"content": {GEOJSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_found,
        **_not_acceptable,
    },
)
async def items(
    request: Request,
    collection_id: str = _collection_id,
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
    crs: str | None = _crs_param,
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
            raise bad_parameter("profile", f"only the {SITES!r} collection is ranked")
        if profile not in snap.profiles:
            valid = ", ".join(snap.profiles) or "none in this store"
            raise bad_parameter("profile", f"unknown profile {profile!r}; valid: {valid}")
    sort_keys = parse_sortby(sortby, layer) if sortby is not None else []
    selected = parse_properties(properties, layer) if properties is not None else None
    if filter_lang is not None and filter_lang not in FILTER_LANGS:
        raise bad_parameter("filter-lang", f"must be one of {', '.join(FILTER_LANGS)}")
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
        return items_html(
            request, layer, features, matched, offset, out_crs, next_url, prev_url, headers
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


def items_html(
    request: Request,
    layer: Layer,
    features: list[bytes],
    matched: int,
    offset: int,
    crs: str,
    next_url: URL | None,
    prev_url: URL | None,
    headers: dict[str, str],
) -> HTMLResponse:
    """One page of features as an HTML table: a row per feature, a column per property."""
    decoded = orjson.loads(b"[%b]" % b",".join(features))
    columns: list[str] = []
    for feature in decoded:  # every feature of a page has the same properties
        columns = list(feature.get("properties") or {})
        break
    rows = []
    for feature in decoded:
        props = feature.get("properties") or {}
        href = request.url_for("item", collectionId=layer.name, featureId=str(feature["id"]))
        rows.append(
            {
                "id": feature["id"],
                "href": as_format(href, "html"),
                "geometry": geometry_summary(feature.get("geometry")),
                "cells": [props.get(c) for c in columns],
            }
        )
    return html_page(
        request,
        "items.html",
        f"{layer.title}: features",
        json_type=GEOJSON,
        crumbs=crumbs_for(request, layer),
        headers=headers,
        matched=matched,
        first=offset + 1 if rows else 0,
        last=offset + len(rows),
        crs=crs,
        columns=columns,
        features=rows,
        next=str(next_url) if next_url is not None else None,
        prev=str(prev_url) if prev_url is not None else None,
    )


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    name="item",
    summary="One feature (GeoJSON, CRS84)",
    response_class=Response,
    responses={
        200: {"content": {GEOJSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_found,
        **_not_acceptable,
    },
)
async def item(
    request: Request,
    collection_id: str = _collection_id,
    feature_id: str = Path(alias="featureId", description="site_id for sites, fid otherwise"),
    crs: str | None = _crs_param,
    properties: str | None = Query(
        None, description="comma-separated properties to return (default: all)"
    ),
    f: str | None = format_query("json", "geojson", "html"),
) -> Response:
    check_params(request, frozenset({"crs", "f", "properties"}))
    fmt = negotiate(request, f, FEATURE_FORMATS)
    out_crs = check_crs("crs", crs)
    snap = await snapshot(request)
    layer = get_layer(snap, collection_id)
    selected = parse_properties(properties, layer) if properties is not None else None
    row = layer.index.get(feature_id)
    if row is None:
        msg = f"collection {layer.name!r} has no feature {feature_id!r}"
        raise ProblemError(404, msg)
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
        decoded = orjson.loads(feature)
        return html_page(
            request,
            "item.html",
            f"{layer.title}: {feature_id}",
            json_type=GEOJSON,
            crumbs=crumbs_for(request, layer),
            headers=headers,
            geometry=geometry_summary(decoded.get("geometry")),
            crs=out_crs,
            properties=decoded.get("properties") or {},
        )
    body = b'%b,"links":%b}' % (feature[:-1], orjson.dumps(links))
    return Response(body, media_type=GEOJSON, headers=headers)


# ---------------------------------------------------------------------- vector tiles

TILE_EXTENT = 4096
TILE_BUFFER = 64  # tile units of geometry kept beyond the edge, so strokes join
MAX_ZOOM = 24
TILE_CACHE_SIZE = 4096  # encoded tiles kept per layer (pure-Python MVT encoding is ~0.2 ms/feature)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """EPSG:3857 bounds of a WebMercatorQuad tile (y counted down from the north)."""
    size = 2 * MERCATOR_HALF / 2**z
    minx = -MERCATOR_HALF + x * size
    maxy = MERCATOR_HALF - y * size
    return (minx, maxy - size, minx + size, maxy)


def _tile_index(name: str, text: str, upper: int) -> int:
    if not re.fullmatch(r"\d{1,10}", text) or int(text) > upper:
        raise bad_parameter(name, f"must be an integer 0..{upper}, not {text!r}")
    return int(text)


def tile_attributes(layer: Layer) -> list[str]:
    cols = [c for c in layer.columns if c.startswith(("score_", "rank_"))]
    return (["site_id"] if "site_id" in layer.columns else []) + cols


def encode_tile(layer: Layer, z: int, x: int, y: int) -> bytes | None:
    """The MVT tile of ``layer`` (layer name = collection id), or None when empty."""
    import mapbox_vector_tile  # imported on first tile: the rest of the API does not need it

    geoms, tree = layer.mercator()
    bounds = tile_bounds(z, x, y)
    pad = (bounds[2] - bounds[0]) * TILE_BUFFER / TILE_EXTENT
    padded = (bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad)
    rows = np.sort(tree.query(shapely.box(*padded), predicate="intersects"))
    if len(rows) == 0:
        return None
    clipped = shapely.clip_by_rect(geoms[rows], *padded)
    origin = np.array(bounds[:2])
    scale = TILE_EXTENT / (bounds[2] - bounds[0])
    clipped = shapely.transform(clipped, lambda c: np.round((c - origin) * scale))  # tile units
    records = layer.table.iloc[rows][tile_attributes(layer)].to_dict(orient="records")
    features = []
    for geom, rec in zip(clipped.tolist(), records, strict=True):
        if geom is None or geom.is_empty:
            continue
        props = {
            k: v
            for k, v in rec.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        }
        features.append({"geometry": geom, "properties": props})
    if not features:
        return None
    options = {"extents": TILE_EXTENT}
    return mapbox_vector_tile.encode(
        [{"name": layer.name, "features": features}], default_options=options
    )


def tile_matrix_set_limits(bbox: tuple[float, float, float, float]) -> list[dict[str, Any]]:
    """The tiles of each tile matrix (0..MAX_ZOOM) that cover a CRS84 box (2DTMS
    ``tileMatrixSetLimits``), so clients ask only for tiles where there are data."""
    radius = MERCATOR_HALF / math.pi  # the WGS 84 semi-major axis of EPSG:3857

    def mercator(lon: float, lat: float) -> tuple[float, float]:
        lat = max(min(lat, 85.05112878), -85.05112878)
        y = radius * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        return radius * math.radians(lon), y

    (minx, miny), (maxx, maxy) = mercator(*bbox[:2]), mercator(*bbox[2:])
    limits = []
    for z in range(MAX_ZOOM + 1):
        size, last = 2 * MERCATOR_HALF / 2**z, 2**z - 1

        def index(v: float, last: int = last, size: float = size) -> int:
            return min(max(int(v // size), 0), last)

        limits.append(
            {
                "tileMatrix": str(z),
                "minTileRow": index(MERCATOR_HALF - maxy),
                "maxTileRow": index(MERCATOR_HALF - miny),
                "minTileCol": index(minx + MERCATOR_HALF),
                "maxTileCol": index(maxx + MERCATOR_HALF),
            }
        )
    return limits


def tiled_layer(snap: Snapshot, collection_id: str) -> Layer:
    layer = get_layer(snap, collection_id)
    if layer.name != SITES:
        raise ProblemError(404, f"only the {SITES!r} collection has vector tiles")
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


_tms_id = Path(alias="tileMatrixSetId", description=f"tile matrix set: {WEB_MERCATOR_QUAD}")
MVT_FORMATS = offers({"mvt": (MVT,)})


@router.get(
    "/collections/{collectionId}/tiles",
    name="tilesets",
    summary="Vector tilesets of a collection (OGC API – Tiles)",
    response_class=Response,
    responses={
        200: {"content": {JSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_found,
        **_not_acceptable,
    },
)
async def tilesets(
    request: Request,
    collection_id: str = _collection_id,
    f: str | None = format_query("json", "html"),
) -> Response:
    fmt, snap, layer, headers, unchanged = await layer_request(
        request, collection_id, f, pick=tiled_layer
    )
    if unchanged is not None:
        return unchanged
    summary = tileset_summary(request, layer)
    if fmt == "html":
        rows = [
            {
                **summary,
                "html": summary["links"][1]["href"],
                "tms_html": as_format(summary["links"][2]["href"], "html"),
            }
        ]
        return html_page(
            request,
            "tilesets.html",
            f"{layer.title}: vector tilesets",
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
    responses={
        200: {"content": {JSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_found,
        **_not_acceptable,
    },
)
async def tileset(
    request: Request,
    collection_id: str = _collection_id,
    tile_matrix_set_id: str = _tms_id,
    f: str | None = format_query("json", "html"),
) -> Response:
    check_params(request, frozenset({"f"}))
    fmt = negotiate(request, f, DOC_FORMATS)
    snap = await snapshot(request)
    layer = tiled_layer(snap, collection_id)
    if tile_matrix_set_id != WEB_MERCATOR_QUAD:
        msg = f"no tile matrix set {tile_matrix_set_id!r}; tiles are served in {WEB_MERCATOR_QUAD}"
        raise ProblemError(404, msg)
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
                    name: {**schemas[name], "description": _describe(name)[1] or name}
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
            f"{layer.title}: {WEB_MERCATOR_QUAD} tileset",
            crumbs=crumbs_for(request, layer),
            headers=headers,
            doc=doc,
            tile_template=template,
            tms_html=as_format(doc["links"][2]["href"], "html"),
        )
    return Response(orjson.dumps(doc), media_type=JSON, headers=headers)


def _tile_path_param(description: str, maximum: int | None = None) -> Any:
    """A tile index in the path: declared as the integer it must be (checked in the route,
    which answers a 400 problem for anything else)."""
    schema: dict[str, Any] = {"type": "integer", "minimum": 0}
    if maximum is not None:
        schema["maximum"] = maximum
    return Path(description=description, json_schema_extra=schema)


@router.get(
    "/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}",
    name="tile",
    summary="Mapbox vector tile of the sites (site_id, score_* and rank_* attributes)",
    response_class=Response,
    responses={
        200: {"content": {MVT: {}}},
        204: {"description": "no feature in this tile"},
        **_not_modified,
        **_bad_request,
        **_not_found,
        **_not_acceptable,
    },
)
async def tile(
    request: Request,
    collection_id: str = _collection_id,
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
    tiles = layer.cache.setdefault("tiles", {})  # per store version: a reload starts afresh
    key = (zoom, col, row)
    if key in tiles:
        data = tiles[key]
    else:
        data = await anyio.to_thread.run_sync(encode_tile, layer, zoom, col, row)
        if len(tiles) >= TILE_CACHE_SIZE:
            tiles.pop(next(iter(tiles)), None)  # oldest first
        tiles[key] = data
    if data is None:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


# ------------------------------------------------------------------ tile matrix sets


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


@router.get(
    "/tileMatrixSets",
    name="tile_matrix_sets",
    summary="Tile matrix sets (tiling schemes) the tiles use",
    response_class=Response,
    responses={
        200: {"content": {JSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_acceptable,
    },
)
async def tile_matrix_sets(
    request: Request, f: str | None = format_query("json", "html")
) -> Response:
    check_params(request, frozenset({"f"}))
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
    responses={
        200: {"content": {JSON: {}, HTML: {}}},
        **_not_modified,
        **_bad_request,
        **_not_found,
        **_not_acceptable,
    },
)
async def tile_matrix_set(
    request: Request,
    tile_matrix_set_id: str = _tms_id,
    f: str | None = format_query("json", "html"),
) -> Response:
    check_params(request, frozenset({"f"}))
    fmt = negotiate(request, f, DOC_FORMATS)
    tms = TILE_MATRIX_SETS.get(tile_matrix_set_id)
    if tms is None:
        msg = f"no tile matrix set {tile_matrix_set_id!r}; served: {', '.join(TILE_MATRIX_SETS)}"
        raise ProblemError(404, msg)
    headers = cache_headers(request, await snapshot(request), fmt)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    if fmt == "html":
        crumbs = [
            {
                "href": as_format(request.url_for("tile_matrix_sets"), "html"),
                "title": "tile matrix sets",
            }
        ]
        return html_page(
            request, "tilematrixset.html", tms["title"], crumbs=crumbs, headers=headers, doc=tms
        )
    return json_response(tms, headers=headers)
