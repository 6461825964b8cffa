"""`/maps/{profile}` and `/sites/{siteId}/sheet`: the HTML pages the maps and reports
packages render (a profile's map, rendered once per store and language; a site's sheet),
each in Polish or English: ``?lang=``, then ``Accept-Language``, else Polish."""

from __future__ import annotations

import threading
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse, Response

from omw_sites.api.catalog import Catalog
from omw_sites.api.negotiation import HTML_ONLY, negotiate
from omw_sites.api.pages import PAGE_VARY, page_language
from omw_sites.api.params import check_params, lang_query
from omw_sites.api.problems import PROBLEM_MEDIA_TYPE, ProblemError, message

router = APIRouter()
LANGUAGES = ("pl", "en")
_problem: dict[str, Any] = {"content": {PROBLEM_MEDIA_TYPE: {}}}
_f_html = Query(
    None,
    description="response format: html (the only one; without it the Accept header must "
    "allow text/html)",
    json_schema_extra={"enum": ["html"]},
)


class MapCache:
    """Rendered pages keyed by (store signature, profile, language); rendering happens off
    the loop."""

    def __init__(self) -> None:
        self._pages: dict[tuple[tuple[int, int, int], str, str], str] = {}
        self._lock = threading.Lock()

    def render(
        self, catalog: Catalog, signature: tuple[int, int, int], profile: str, lang: str = "pl"
    ) -> str:
        key = (signature, profile, lang)
        with self._lock:  # one render at a time: folium pages are large
            page = self._pages.get(key)
            if page is None:
                from omw_sites.maps import render_map  # optional edge, imported on use

                sheets = "../sites/{id}/sheet?lang=" + lang  # the sheet in the map's language
                page = render_map(catalog.store_path, profile, sheet_url=sheets, lang=lang)
                self._pages = {k: v for k, v in self._pages.items() if k[0] == signature}
                self._pages[key] = page
            return page


@router.get(
    "/maps/{profile}",
    name="map",
    summary="HTML map of the sites ranked for one profile",
    response_class=HTMLResponse,
    responses={
        400: {"description": "an unknown query parameter", **_problem},
        404: {"description": "unknown profile", **_problem},
        406: {"description": "the client does not accept HTML", **_problem},
        503: {"description": "map rendering unavailable", **_problem},
    },
)
async def map_page(
    request: Request,
    profile: str = Path(description="scoring profile name"),
    f: str | None = _f_html,
    lang: str | None = lang_query,
) -> Response:
    check_params(request, frozenset({"f", "lang"}))
    negotiate(request, f, HTML_ONLY)
    language = page_language(request)
    catalog: Catalog = request.app.state.catalog
    snap = await catalog.current()
    if profile not in snap.profiles:
        valid = ", ".join(snap.profiles) or message("none in this store")
        raise ProblemError(
            404, "no profile %(name)s; profiles: %(valid)s", name=repr(profile), valid=valid
        )
    cache: MapCache = request.app.state.map_cache
    try:
        page = await anyio.to_thread.run_sync(
            cache.render, catalog, snap.signature, profile, language
        )
    except ImportError as exc:
        msg = "map rendering is not available on this server (%(error)s)"
        raise ProblemError(503, msg, error=str(exc)) from None
    return HTMLResponse(page, headers={"Vary": PAGE_VARY, "Content-Language": language})


@router.get(
    "/sites/{siteId}/sheet",
    name="site_sheet",
    summary="Site sheet (karta terenu inwestycyjnego) as an HTML page, Polish or English",
    response_class=HTMLResponse,
    responses={
        400: {"description": "unsupported language or unknown parameter", **_problem},
        404: {"description": "unknown site", **_problem},
        406: {"description": "the client does not accept HTML", **_problem},
    },
)
async def site_sheet(
    request: Request,
    site_id: str = Path(alias="siteId", description="site ID, e.g. S0123456789"),
    lang: str | None = lang_query,
    f: str | None = _f_html,
) -> Response:
    from omw_sites.reports.sheet import UnknownSiteError, render_sheet

    check_params(request, frozenset({"lang", "f"}))  # a lang other than pl or en is a 400
    negotiate(request, f, HTML_ONLY)
    language = page_language(request)
    catalog: Catalog = request.app.state.catalog
    snap = await catalog.current()
    if site_id not in snap.layers["sites"].index:
        raise ProblemError(404, "no site %(id)s in the inventory", id=repr(site_id))
    try:
        page = await anyio.to_thread.run_sync(render_sheet, catalog.store_path, site_id, language)
    except UnknownSiteError as exc:  # the store changed between the lookup and the render
        raise ProblemError(404, str(exc)) from None
    return HTMLResponse(page, headers={"Vary": PAGE_VARY, "Content-Language": language})
