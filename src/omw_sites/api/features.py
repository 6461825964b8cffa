"""OGC API – Features routes: landing, collections, items (Parts 1–3), queryables, MVT tiles."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import anyio.to_thread
import jinja2
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
from omw_sites.api.problems import PROBLEM_MEDIA_TYPE, ProblemError, bad_parameter
from omw_sites.layers import SITE_COLUMNS, SITES

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
SCHEMA_JSON = "application/schema+json"
MVT = "application/vnd.mapbox-vector-tile"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
TILESETS_VECTOR_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TILING_SCHEME_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
WEB_MERCATOR_QUAD = "WebMercatorQuad"
WEB_MERCATOR_QUAD_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
EPSG3857_URI = "http://www.opengis.net/def/crs/EPSG/0/3857"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = CRS84_URI
STORAGE_CRS = STORAGE_CRS_URI
SUPPORTED_CRS = tuple(OUTPUT_CRS)  # CRS84 (default), EPSG:4326, EPSG:2180, EPSG:2178
CRS_LIST = ", ".join(SUPPORTED_CRS)
OUTPUT_CRS_LIST_TEXT = (
    f"{SUPPORTED_CRS[1]} (lat/lon), {SUPPORTED_CRS[2]} (storage CRS, northing/easting) or "
    f"{SUPPORTED_CRS[3]} (PL-2000 zone 7, northing/easting)"
)
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000

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
]

router = APIRouter()

_problem = {"description": "problem details", "content": {PROBLEM_MEDIA_TYPE: {}}}
_bad_request = {400: {**_problem, "description": "a query parameter is invalid"}}
_not_found = {404: {**_problem, "description": "no such collection or feature"}}
_not_modified = {304: {"description": "not modified since the ETag / Last-Modified given"}}


# ---------------------------------------------------------------------------- helpers


def json_response(obj: Any, media_type: str = JSON, status_code: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status_code, media_type=media_type)


def link(href: Any, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    out = {"href": str(href), "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out


def check_params(request: Request, allowed: frozenset[str]) -> None:
    """OGC API Features: a query parameter the API does not define is a 400."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        names, takes = ", ".join(unknown), ", ".join(sorted(allowed))
        msg = f"unknown query parameter(s) {names}; this endpoint takes {takes}"
        raise ProblemError(
            400, msg, invalid_params=[{"name": n, "reason": "unknown"} for n in unknown]
        )


def check_format(f: str | None, allowed: tuple[str, ...] = ("json",)) -> str:
    if f is None:
        return allowed[0]
    if f not in allowed:
        raise bad_parameter("f", f"must be one of {', '.join(allowed)}, not {f!r}")
    return f


# HTML pages: Jinja2 templates in api/templates, every value escaped (autoescape)
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("omw_sites.api", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def as_format(url: URL | str, fmt: str) -> str:
    """``url`` with ``f=fmt`` (the other query parameters kept)."""
    return str(URL(str(url)).include_query_params(f=fmt))


def html_page(
    request: Request,
    template: str,
    title: str,
    *,
    json_type: str = JSON,
    crumbs: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with a breadcrumb trail and a link to the JSON of the same URL."""
    json_title = "GeoJSON" if json_type == GEOJSON else "JSON"
    page = TEMPLATES.get_template(template).render(
        title=title,
        home=as_format(request.url_for("landing"), "html"),
        crumbs=crumbs or [],
        alternates=[
            {"href": as_format(request.url, "json"), "type": json_type, "title": json_title}
        ],
        **context,
    )
    return HTMLResponse(page, headers=headers)


def crumbs_for(request: Request, layer: Layer | None = None) -> list[dict[str, str]]:
    """Breadcrumbs (HTML pages) down to ``layer``'s collection page."""
    out = [{"href": as_format(request.url_for("collections"), "html"), "title": "collections"}]
    if layer is not None:
        href = as_format(request.url_for("collection", collectionId=layer.name), "html")
        out.append({"href": href, "title": layer.name})
    return out


def html_alternate(url: URL | str, what: str) -> dict[str, str]:
    return link(as_format(url, "html"), "alternate", HTML, f"{what} as HTML")


def geometry_summary(geometry: dict[str, Any] | None) -> str:
    """``Polygon, 5 vertices`` for the HTML tables (coordinates stay in the JSON)."""
    if not geometry:
        return "none"

    def count(c: Any) -> int:
        if isinstance(c, list) and c and isinstance(c[0], int | float):
            return 1
        return sum(count(part) for part in c) if isinstance(c, list) else 0

    parts = geometry.get("geometries")
    n = (
        sum(count(g.get("coordinates")) for g in parts)
        if parts
        else count(geometry.get("coordinates"))
    )
    return f"{geometry.get('type', '?')}, {n:,} vertices"


def format_query(*formats: str) -> Any:
    """The ``f`` query parameter: one of ``formats`` (the first is the default)."""
    names = ", ".join(formats)
    return Query(
        None,
        description=f"response format: {names} (default {formats[0]})",
        json_schema_extra={"enum": list(formats)},
    )


def cache_headers(request: Request, snap: Snapshot) -> dict[str, str]:
    """ETag (store version + the URL served) and Last-Modified (the store file's mtime)."""
    key = repr((snap.signature, str(request.url), request.headers.get("accept", "")))
    tag = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    modified = snap.modified
    return {
        "ETag": f'W/"{tag}"',
        "Last-Modified": format_datetime(modified, usegmt=True),
        "Cache-Control": "no-cache",
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
    maxlon crosses the antimeridian and is split in two. EPSG:4326: minlat,minlon,maxlat,
    maxlon, returned as (lon, lat) boxes. EPSG:2180 and EPSG:2178: minN,minE,maxN,maxE
    (northing first, the CRS's own axis order), returned as (E, N) boxes.
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
    if not axes.geographic:  # EPSG:2180, EPSG:2178: (northing, easting)
        min_n, min_e, max_n, max_e = values
        if min_n > max_n or min_e > max_e:
            raise bad_parameter("bbox", "expected minN,minE,maxN,maxE with min <= max")
        return [(min_e, min_n, max_e, max_n)]
    if axes.swap:  # EPSG:4326: minlat,minlon,maxlat,maxlon
        miny, minx, maxy, maxx = values
        order = "EPSG:4326 minlat,minlon,maxlat,maxlon"
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
        "extent": {
            "spatial": {"bbox": [list(layer.bbox)] if layer.bbox else [], "crs": CRS84},
            "temporal": None,
        },
        "itemType": "feature",
        "crs": list(SUPPORTED_CRS),
        "storageCrs": STORAGE_CRS,
    }
    return doc


# ---------------------------------------------------------------------------- routes


async def layer_request(
    request: Request,
    collection_id: str,
    f: str | None,
    formats: tuple[str, ...] = ("json",),
    pick: Any = None,
) -> tuple[str, Snapshot, Layer, dict[str, str], Response | None]:
    """The common start of a per-collection document: check the parameters and the
    format, take the snapshot and the layer, and the cache headers with a 304 response
    when the client's copy is current. Returns (format, snapshot, layer, headers, 304)."""
    check_params(request, frozenset({"f"}))
    fmt = check_format(f, formats)
    snap = await snapshot(request)
    layer = (pick or get_layer)(snap, collection_id)
    headers = cache_headers(request, snap)
    return fmt, snap, layer, headers, not_modified(request, headers)


@router.get(
    "/",
    name="landing",
    summary="Landing page",
    response_class=Response,
    responses={200: {"content": {JSON: {}, "text/html": {}}}, **_bad_request},
)
async def landing(
    request: Request,
    f: str | None = format_query("json", "html"),
) -> Response:
    check_params(request, frozenset({"f"}))
    fmt = check_format(f, ("json", "html"))
    snap = await snapshot(request)
    links = [
        link(request.url_for("landing"), "self", JSON, "this document"),
        link(
            request.url_for("landing").include_query_params(f="html"),
            "alternate",
            "text/html",
            "this document as HTML",
        ),
        link(request.url_for("openapi"), "service-desc", OPENAPI, "the API definition"),
        link(request.url_for("conformance"), "conformance", JSON, "conformance classes"),
        link(request.url_for("collections"), "data", JSON, "the collections"),
    ]
    for p in snap.profiles.values():
        links.append(
            link(
                request.url_for("map", profile=p.name),
                "related",
                "text/html",
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
        return html_page(request, "landing.html", doc["title"], doc=doc)
    return json_response(doc)


@router.get(
    "/conformance",
    name="conformance",
    summary="Conformance classes",
    response_class=Response,
    responses={200: {"content": {JSON: {}, HTML: {}}}, **_bad_request},
)
async def conformance(
    request: Request,
    f: str | None = format_query("json", "html"),
) -> Response:
    check_params(request, frozenset({"f"}))
    if check_format(f, ("json", "html")) == "html":
        return html_page(request, "conformance.html", "Conformance", conforms=CONFORMANCE)
    return json_response({"conformsTo": CONFORMANCE})


@router.get(
    "/collections",
    name="collections",
    summary="Feature collections",
    response_class=Response,
    responses={200: {"content": {JSON: {}, HTML: {}}}, **_not_modified, **_bad_request},
)
async def collections(
    request: Request,
    f: str | None = format_query("json", "html"),
) -> Response:
    check_params(request, frozenset({"f"}))
    fmt = check_format(f, ("json", "html"))
    snap = await snapshot(request)
    headers = cache_headers(request, snap)
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
                    "items_json": str(items_url),
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
    },
)
async def collection(
    request: Request,
    collection_id: str = _collection_id,
    f: str | None = format_query("json", "html"),
) -> Response:
    fmt, snap, layer, headers, unchanged = await layer_request(
        request, collection_id, f, ("json", "html")
    )
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
            count=len(layer),
            geometry_types=layer.geometry_types,
            items_html=as_format(request.url_for("items", collectionId=layer.name), "html"),
            properties=queryables_doc(request, layer, snap)["properties"],
        )
    return Response(orjson.dumps(doc), media_type=JSON, headers=headers)


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


def property_schemas(layer: Layer) -> dict[str, dict[str, str]]:
    """JSON schema type of each property of ``layer``."""
    return {c: _json_type(layer.table[c].dtype) for c in layer.columns}


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
            hit = (series.astype("string") == text).fillna(False).to_numpy(dtype=bool)
        mask = hit if mask is None else mask & hit
    return mask


def _describe(column: str) -> tuple[str, str]:
    """(unit, description) of a site-table column."""
    if column in SITE_COLUMNS:
        return SITE_COLUMNS[column]
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
        entry: dict[str, Any] = {"title": column, **_json_type(layer.table[column].dtype)}
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
    responses={200: {"content": {SCHEMA_JSON: {}}}, **_not_modified, **_bad_request, **_not_found},
)
async def queryables(
    request: Request,
    collection_id: str = _collection_id,
    f: str | None = format_query("json"),
) -> Response:
    _, snap, layer, headers, unchanged = await layer_request(request, collection_id, f)
    if unchanged is not None:
        return unchanged
    doc = queryables_doc(request, layer, snap)
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
    """Row mask of a CQL2 filter, and the CRS its geometry literals are in."""
    lang = lang or CQL2_TEXT
    if lang not in FILTER_LANGS:
        raise bad_parameter("filter-lang", f"must be one of {', '.join(FILTER_LANGS)}")
    fcrs = check_crs("filter-crs", crs)
    node = parse_filter(text, lang)
    evaluator = FilterEvaluator(
        layer.table,
        lambda geom, predicate: layer.spatial_rows(geom, predicate, fcrs),
        swap_axes=OUTPUT_CRS[fcrs].swap,
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
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"page size, 1..{MAX_LIMIT}"),
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
    fmt = check_format(f, ("json", "geojson", "html"))
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
    headers = cache_headers(request, snap)
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
        found, _ = filter_mask(layer, filter_, filter_lang, filter_crs)
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
    fmt = check_format(f, ("json", "geojson", "html"))
    out_crs = check_crs("crs", crs)
    snap = await snapshot(request)
    layer = get_layer(snap, collection_id)
    selected = parse_properties(properties, layer) if properties is not None else None
    row = layer.index.get(feature_id)
    if row is None:
        msg = f"collection {layer.name!r} has no feature {feature_id!r}"
        raise ProblemError(404, msg)
    headers = cache_headers(request, snap)
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

MERCATOR_HALF = 20037508.342789244  # half the side of the WebMercatorQuad square, metres
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


def tiled_layer(snap: Snapshot, collection_id: str) -> Layer:
    layer = get_layer(snap, collection_id)
    if layer.name != SITES:
        raise ProblemError(404, f"only the {SITES!r} collection has vector tiles")
    return layer


def tileset_summary(request: Request, layer: Layer) -> dict[str, Any]:
    """The tileset's entry in the tileset list (OGC API – Tiles ``tileSet-item``)."""
    url = request.url_for("tileset", collectionId=layer.name, tileMatrixSetId=WEB_MERCATOR_QUAD)
    return {
        "title": f"{layer.title}, Mapbox vector tiles",
        "dataType": "vector",
        "crs": EPSG3857_URI,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD_URI,
        "links": [
            link(url, "self", JSON, f"{WEB_MERCATOR_QUAD} tileset of {layer.name}"),
            link(WEB_MERCATOR_QUAD_URI, TILING_SCHEME_REL, JSON, "the WebMercatorQuad definition"),
        ],
    }


@router.get(
    "/collections/{collectionId}/tiles",
    name="tilesets",
    summary="Vector tilesets of a collection (OGC API – Tiles)",
    response_class=Response,
    responses={200: {"content": {JSON: {}}}, **_not_modified, **_bad_request, **_not_found},
)
async def tilesets(
    request: Request,
    collection_id: str = _collection_id,
    f: str | None = format_query("json"),
) -> Response:
    _, snap, layer, headers, unchanged = await layer_request(
        request, collection_id, f, pick=tiled_layer
    )
    if unchanged is not None:
        return unchanged
    doc = {
        "links": [
            link(request.url_for("tilesets", collectionId=layer.name), "self", JSON, "tilesets"),
            link(
                request.url_for("collection", collectionId=layer.name),
                "collection",
                JSON,
                layer.title,
            ),
        ],
        "tilesets": [tileset_summary(request, layer)],
    }
    return Response(orjson.dumps(doc), media_type=JSON, headers=headers)


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}",
    name="tileset",
    summary="Tileset metadata: tile URL template and the vector layer's fields",
    response_class=Response,
    responses={200: {"content": {JSON: {}}}, **_not_modified, **_bad_request, **_not_found},
)
async def tileset(
    request: Request,
    collection_id: str = _collection_id,
    tile_matrix_set_id: str = Path(
        alias="tileMatrixSetId", description=f"tile matrix set: {WEB_MERCATOR_QUAD}"
    ),
    f: str | None = format_query("json"),
) -> Response:
    check_params(request, frozenset({"f"}))
    check_format(f)
    snap = await snapshot(request)
    layer = tiled_layer(snap, collection_id)
    if tile_matrix_set_id != WEB_MERCATOR_QUAD:
        msg = f"no tile matrix set {tile_matrix_set_id!r}; tiles are served in {WEB_MERCATOR_QUAD}"
        raise ProblemError(404, msg)
    headers = cache_headers(request, snap)
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
    doc["mediaTypes"] = [MVT]
    return Response(orjson.dumps(doc), media_type=JSON, headers=headers)


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
    },
)
async def tile(
    request: Request,
    collection_id: str = _collection_id,
    z: str = Path(description=f"zoom level 0..{MAX_ZOOM}"),
    x: str = Path(description="column 0..2^z-1 (west to east)"),
    y: str = Path(description="row 0..2^z-1 (north to south)"),
) -> Response:
    check_params(request, frozenset())
    snap = await snapshot(request)
    layer = tiled_layer(snap, collection_id)
    zoom = _tile_index("z", z, MAX_ZOOM)
    col = _tile_index("x", x, 2**zoom - 1)
    row = _tile_index("y", y, 2**zoom - 1)
    headers = cache_headers(request, snap)
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
