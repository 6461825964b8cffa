"""OGC API – Features routes: landing, conformance, collections, items (Part 1, Part 2 crs)."""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse, Response

from omw_sites.api.catalog import CRS84_URI, STORAGE_CRS_URI, Box, Catalog, Layer, Snapshot
from omw_sites.api.problems import PROBLEM_MEDIA_TYPE, ProblemError, bad_parameter
from omw_sites.layers import SITES

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = CRS84_URI
STORAGE_CRS = STORAGE_CRS_URI
SUPPORTED_CRS = (CRS84, STORAGE_CRS)
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]

router = APIRouter()

_problem = {"description": "problem details", "content": {PROBLEM_MEDIA_TYPE: {}}}
_bad_request = {400: {**_problem, "description": "a query parameter is invalid"}}
_not_found = {404: {**_problem, "description": "no such collection or feature"}}


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
    maxlon crosses the antimeridian and is split in two. EPSG:2180: minN,minE,maxN,maxE
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
    if crs == STORAGE_CRS:
        min_n, min_e, max_n, max_e = values
        if min_n > max_n or min_e > max_e:
            raise bad_parameter("bbox", "expected minN,minE,maxN,maxE with min <= max")
        return [(min_e, min_n, max_e, max_n)]
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        reason = "expected CRS84 longitude in [-180, 180], latitude in [-90, 90], miny <= maxy"
        raise bad_parameter("bbox", reason)
    if minx > maxx:
        return [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]
    return [(minx, miny, maxx, maxy)]


def check_crs(name: str, value: str | None) -> str:
    if value is None:
        return CRS84
    if value not in SUPPORTED_CRS:
        raise bad_parameter(
            name, f"unsupported CRS {value!r}; supported: {', '.join(SUPPORTED_CRS)}"
        )
    return value


async def ensure_view(layer: Layer, crs: str) -> None:
    """Build the layer's view in ``crs`` off the event loop if it is not there yet."""
    if crs not in layer.views:
        await anyio.to_thread.run_sync(layer.view, crs)


_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$", re.IGNORECASE
)


def parse_datetime(text: str) -> None:
    """Check an RFC 3339 instant or interval (``..`` or empty for an open end)."""
    ends = text.split("/")
    if len(ends) > 2 or (len(ends) == 2 and all(e in ("", "..") for e in ends)):
        raise bad_parameter("datetime", f"not an RFC 3339 instant or interval: {text!r}")
    for end in ends:
        if len(ends) == 2 and end in ("", ".."):
            continue
        if not _INSTANT.match(end):
            raise bad_parameter("datetime", f"not an RFC 3339 date-time: {end!r}")
        try:
            dt.datetime.fromisoformat(end.upper().replace("Z", "+00:00"))
        except ValueError:
            raise bad_parameter("datetime", f"not a valid date-time: {end!r}") from None


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
            link(items_url, "items", GEOJSON, f"{layer.title} as GeoJSON"),
        ],
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


@router.get(
    "/",
    name="landing",
    summary="Landing page",
    response_class=Response,
    responses={200: {"content": {JSON: {}, "text/html": {}}}, **_bad_request},
)
async def landing(
    request: Request,
    f: str | None = Query(None, description="response format: json (default) or html"),
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
        return HTMLResponse(_landing_html(doc))
    return json_response(doc)


def _landing_html(doc: dict[str, Any]) -> str:
    items = "\n".join(
        f'<li><a href="{html.escape(ln["href"])}">{html.escape(ln.get("title", ln["rel"]))}</a>'
        f" <small>({html.escape(ln['rel'])}, {html.escape(ln['type'])})</small></li>"
        for ln in doc["links"]
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(doc['title'])}</title></head><body>"
        f"<h1>{html.escape(doc['title'])}</h1><p>{html.escape(doc['description'])}</p>"
        f"<ul>\n{items}\n</ul></body></html>"
    )


@router.get(
    "/conformance",
    name="conformance",
    summary="Conformance classes",
    response_class=Response,
    responses={200: {"content": {JSON: {}}}, **_bad_request},
)
async def conformance(
    request: Request, f: str | None = Query(None, description="response format: json")
) -> Response:
    check_params(request, frozenset({"f"}))
    check_format(f)
    return json_response({"conformsTo": CONFORMANCE})


@router.get(
    "/collections",
    name="collections",
    summary="Feature collections",
    response_class=Response,
    responses={200: {"content": {JSON: {}}}, **_bad_request},
)
async def collections(
    request: Request, f: str | None = Query(None, description="response format: json")
) -> Response:
    check_params(request, frozenset({"f"}))
    check_format(f)
    snap = await snapshot(request)
    return json_response(
        {
            "links": [link(request.url_for("collections"), "self", JSON, "the collections")],
            "collections": [collection_doc(request, layer) for layer in snap.layers.values()],
        }
    )


_collection_id = Path(alias="collectionId", description="collection: sites or a reference layer")


@router.get(
    "/collections/{collectionId}",
    name="collection",
    summary="One feature collection",
    response_class=Response,
    responses={200: {"content": {JSON: {}}}, **_bad_request, **_not_found},
)
async def collection(
    request: Request,
    collection_id: str = _collection_id,
    f: str | None = Query(None, description="response format: json"),
) -> Response:
    check_params(request, frozenset({"f"}))
    check_format(f)
    snap = await snapshot(request)
    return json_response(collection_doc(request, get_layer(snap, collection_id)))


ITEMS_PARAMS = frozenset({"bbox", "bbox-crs", "crs", "limit", "offset", "profile", "datetime", "f"})
_crs_param = Query(
    None,
    description=f"CRS of the returned coordinates: {CRS84} (default, lon/lat) or "
    f"{STORAGE_CRS} (northing, easting)",
)


@router.get(
    "/collections/{collectionId}/items",
    name="items",
    summary="Features of a collection (GeoJSON, CRS84)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}, **_bad_request, **_not_found},
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
        description="RFC 3339 instant or interval; the collections have no temporal "
        "property, so it is checked and does not filter",
    ),
    bbox_crs: str | None = Query(
        None,
        alias="bbox-crs",
        description=f"CRS of bbox: {CRS84} (default) or {STORAGE_CRS} (minN,minE,maxN,maxE)",
    ),
    crs: str | None = _crs_param,
    f: str | None = Query(None, description="response format: json (GeoJSON)"),
) -> Response:
    check_params(request, ITEMS_PARAMS)
    check_format(f, ("json", "geojson"))
    out_crs = check_crs("crs", crs)
    box_crs = check_crs("bbox-crs", bbox_crs)
    snap = await snapshot(request)
    layer = get_layer(snap, collection_id)
    boxes = parse_bbox(bbox, box_crs) if bbox is not None else None
    if datetime is not None:
        parse_datetime(datetime)
    if profile is not None:
        if layer.name != SITES:
            raise bad_parameter("profile", f"only the {SITES!r} collection is ranked")
        if profile not in snap.profiles:
            valid = ", ".join(snap.profiles) or "none in this store"
            raise bad_parameter("profile", f"unknown profile {profile!r}; valid: {valid}")
    await ensure_view(layer, out_crs)
    if boxes is not None:
        await ensure_view(layer, box_crs)
    matched, features = layer.page(boxes, profile, offset, limit, crs=out_crs, box_crs=box_crs)
    url = request.url
    links = [
        link(url, "self", GEOJSON, "this page"),
        link(
            request.url_for("collection", collectionId=layer.name), "collection", JSON, layer.title
        ),
    ]
    if offset + len(features) < matched:
        links.append(
            link(
                url.include_query_params(offset=offset + limit, limit=limit),
                "next",
                GEOJSON,
                "next page",
            )
        )
    if offset > 0:
        prev = max(0, offset - limit)
        links.append(
            link(
                url.include_query_params(offset=prev, limit=limit), "prev", GEOJSON, "previous page"
            )
        )
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
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{out_crs}>"})


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    name="item",
    summary="One feature (GeoJSON, CRS84)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}, **_bad_request, **_not_found},
)
async def item(
    request: Request,
    collection_id: str = _collection_id,
    feature_id: str = Path(alias="featureId", description="site_id for sites, fid otherwise"),
    crs: str | None = _crs_param,
    f: str | None = Query(None, description="response format: json (GeoJSON)"),
) -> Response:
    check_params(request, frozenset({"crs", "f"}))
    check_format(f, ("json", "geojson"))
    out_crs = check_crs("crs", crs)
    snap = await snapshot(request)
    layer = get_layer(snap, collection_id)
    row = layer.index.get(feature_id)
    if row is None:
        msg = f"collection {layer.name!r} has no feature {feature_id!r}"
        raise ProblemError(404, msg)
    links = [
        link(request.url, "self", GEOJSON, "this feature"),
        link(
            request.url_for("collection", collectionId=layer.name), "collection", JSON, layer.title
        ),
    ]
    await ensure_view(layer, out_crs)
    feature = layer.views[out_crs].features[row]
    body = b'%b,"links":%b}' % (feature[:-1], orjson.dumps(links))
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{out_crs}>"})
