"""``/`` (the landing page) and ``/conformance`` (the conformance classes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from omw_sites.api.negotiation import DOC_FORMATS, VARY, negotiate
from omw_sites.api.pages import browser_links, html_page
from omw_sites.api.params import check_params, document_request, format_query
from omw_sites.api.responses import (
    BAD_REQUEST,
    DOC_RESPONSES,
    HTML,
    JSON,
    NOT_ACCEPTABLE,
    OPENAPI,
    TILING_SCHEMES_REL,
    as_format,
    html_alternate,
    json_response,
    link,
)
from omw_sites.api.routes.writes import PART4_CONFORMANCE
from omw_sites.api.tiling import TILES_CONFORMANCE, TMS_CONFORMANCE

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
    *TILES_CONFORMANCE,
    *TMS_CONFORMANCE,
    *PART4_CONFORMANCE,
]

router = APIRouter()


@router.get(
    "/",
    name="landing",
    summary="Landing page",
    response_class=Response,
    responses=DOC_RESPONSES,
)
async def landing(
    request: Request,
    f: str | None = format_query("json", "html"),
) -> Response:
    fmt, snap, headers, unchanged = await document_request(request, f)
    if unchanged is not None:
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
    doc: dict[str, Any] = {
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
            catalogue_html=str(request.url_for("catalogue")),
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
    responses={200: {"content": {JSON: {}, HTML: {}}}, **BAD_REQUEST, **NOT_ACCEPTABLE},
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
