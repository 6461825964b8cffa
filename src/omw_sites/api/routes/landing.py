"""``/`` (the landing page) and ``/conformance`` (the conformance classes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from omw_sites.api.negotiation import DOC_FORMATS, VARY, negotiate
from omw_sites.api.pages import browser_links, html_href, html_page, page_language
from omw_sites.api.params import check_params, document_request, format_query, lang_query
from omw_sites.api.responses import (
    BAD_REQUEST,
    DOC_RESPONSES,
    HTML,
    JSON,
    NOT_ACCEPTABLE,
    OPENAPI,
    TILING_SCHEMES_REL,
    html_alternate,
    json_response,
    link,
)
from omw_sites.api.routes.writes import PART4_CONFORMANCE
from omw_sites.api.tiling import TILES_CONFORMANCE, TMS_CONFORMANCE
from omw_sites.i18n import gettext

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


def landing_links(request: Request, profiles: Any, lang: str = "en") -> list[dict[str, str]]:
    """The landing page's links, titled in ``lang`` (the JSON document's in English)."""

    def t(text: str, **values: Any) -> str:
        return gettext(lang, text, **values)

    links = [
        link(request.url_for("landing"), "self", JSON, t("this document")),
        html_alternate(request.url_for("landing"), "this document"),
        link(request.url_for("openapi"), "service-desc", OPENAPI, t("the API definition")),
        link(request.url_for("conformance"), "conformance", JSON, t("conformance classes")),
        link(request.url_for("collections"), "data", JSON, t("the collections")),
        link(
            request.url_for("tile_matrix_sets"),
            TILING_SCHEMES_REL,
            JSON,
            t("tile matrix sets (tiling schemes) of the vector tiles"),
        ),
    ]
    if lang != "en":
        links[1]["title"] = t("this document as HTML")
    for p in profiles:
        url = request.url_for("map", profile=p.name)
        if lang != "en":
            url = url.include_query_params(lang=lang)
        name = gettext(lang, f"profile:{p.name}") if lang != "en" else p.title
        name = p.title if name == f"profile:{p.name}" else name
        links.append(
            link(url, "related", HTML, t("map of sites ranked for %(profile)s", profile=name))
        )
    return links


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
    lang: str | None = lang_query,
) -> Response:
    fmt, snap, headers, unchanged = await document_request(request, f)
    if unchanged is not None:
        return unchanged
    links = landing_links(request, snap.profiles.values())
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
        page_lang = page_language(request)
        catalogue = request.url_for("catalogue")  # negotiates its language as pages do
        if "lang" in request.query_params:
            catalogue = catalogue.include_query_params(lang=page_lang)
        return html_page(
            request,
            "landing.html",
            doc["title"],
            headers=headers,
            doc=doc,
            links=browser_links(request, landing_links(request, snap.profiles.values(), page_lang)),
            catalogue_html=str(catalogue),
            collections_html=html_href(request, request.url_for("collections")),
            conformance_html=html_href(request, request.url_for("conformance")),
            tms_html=html_href(request, request.url_for("tile_matrix_sets")),
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
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"f", "lang"}))
    headers = {"Vary": VARY}
    if negotiate(request, f, DOC_FORMATS) == "html":
        return html_page(
            request, "conformance.html", "Conformance", headers=headers, conforms=CONFORMANCE
        )
    return json_response({"conformsTo": CONFORMANCE}, headers=headers)
