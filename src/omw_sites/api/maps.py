"""`/maps/{profile}`: the self-contained HTML map of a profile, rendered once per store."""

from __future__ import annotations

import threading

import anyio.to_thread
from fastapi import APIRouter, Path, Request
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
