"""`/maps/{profile}`: the self-contained HTML map of a profile, rendered once per store."""

from __future__ import annotations

import threading

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse, Response

from omw_sites.api.catalog import Catalog
from omw_sites.api.problems import PROBLEM_MEDIA_TYPE, ProblemError

router = APIRouter()


class MapCache:
    """Rendered pages keyed by (store signature, profile); rendering happens off the loop."""

    def __init__(self) -> None:
        self._pages: dict[tuple[tuple[int, int, int], str], str] = {}
        self._lock = threading.Lock()

    def render(self, catalog: Catalog, signature: tuple[int, int, int], profile: str) -> str:
        key = (signature, profile)
        with self._lock:  # one render at a time: folium pages are large
            page = self._pages.get(key)
            if page is None:
                from omw_sites.maps import render_map  # optional edge, imported on use

                page = render_map(catalog.store_path, profile)
                self._pages = {k: v for k, v in self._pages.items() if k[0] == signature}
                self._pages[key] = page
            return page


@router.get(
    "/maps/{profile}",
    name="map",
    summary="HTML map of the sites ranked for one profile",
    response_class=HTMLResponse,
    responses={
        404: {"description": "unknown profile", "content": {PROBLEM_MEDIA_TYPE: {}}},
        503: {"description": "map rendering unavailable", "content": {PROBLEM_MEDIA_TYPE: {}}},
    },
)
async def map_page(
    request: Request, profile: str = Path(description="scoring profile name")
) -> Response:
    catalog: Catalog = request.app.state.catalog
    snap = await catalog.current()
    if profile not in snap.profiles:
        valid = ", ".join(snap.profiles) or "none in this store"
        raise ProblemError(404, f"no profile {profile!r}; profiles: {valid}")
    cache: MapCache = request.app.state.map_cache
    try:
        page = await anyio.to_thread.run_sync(cache.render, catalog, snap.signature, profile)
    except ImportError as exc:
        msg = f"map rendering is not available on this server ({exc})"
        raise ProblemError(503, msg) from None
    return HTMLResponse(page)


@router.get(
    "/sites/{siteId}/sheet",
    name="site_sheet",
    summary="Site sheet (karta terenu inwestycyjnego) as an HTML page, Polish or English",
    response_class=HTMLResponse,
    responses={
        400: {"description": "unsupported language", "content": {PROBLEM_MEDIA_TYPE: {}}},
        404: {"description": "unknown site", "content": {PROBLEM_MEDIA_TYPE: {}}},
    },
)
async def site_sheet(
    request: Request,
    site_id: str = Path(alias="siteId", description="site ID, e.g. S0123456789"),
    lang: str = Query("pl", description="pl | en"),
) -> Response:
    from omw_sites.reports.sheet import UnknownSiteError, render_sheet

    if lang not in ("pl", "en"):
        raise ProblemError(400, f"lang must be pl or en (got {lang!r})")
    catalog: Catalog = request.app.state.catalog
    snap = await catalog.current()
    if site_id not in snap.layers["sites"].index:
        raise ProblemError(404, f"no site {site_id!r} in the inventory")
    try:
        page = await anyio.to_thread.run_sync(render_sheet, catalog.store_path, site_id, lang)
    except UnknownSiteError as exc:  # the store changed between the lookup and the render
        raise ProblemError(404, str(exc)) from None
    return HTMLResponse(page)
