"""The FastAPI application of the API (routes, middleware, OpenAPI document) and the uvicorn
server that runs it."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from omw_sites.api.catalog import Catalog
from omw_sites.api.limits import RequestLimitMiddleware, body_limit_from_env
from omw_sites.api.middleware import (
    CompressionMiddleware,
    ForwardedHostMiddleware,
    HeadMiddleware,
    ServerTimingMiddleware,
)
from omw_sites.api.openapi import ogc_openapi
from omw_sites.api.params import check_format, check_params
from omw_sites.api.problems import install_problem_handlers
from omw_sites.api.properties import property_schemas
from omw_sites.api.responses import OPENAPI
from omw_sites.api.routes import ROUTERS
from omw_sites.api.routes.catalogue import cached_basemap
from omw_sites.api.routes.map_pages import MapCache
from omw_sites.api.static_files import StaticAssets
from omw_sites.api.tiling import warm_tiles
from omw_sites.layers import SITES

log = logging.getLogger(__name__)


def create_app(store_path: str | Path, *, max_body_bytes: int | None = None) -> FastAPI:
    """The API over the store at ``store_path`` (loaded into memory now).

    Request bodies over ``max_body_bytes`` (default ``OMW_MAX_BODY_BYTES`` or 1 MiB) are
    refused with 413.

    Raises ``StoreError`` when the store is missing or has no site table.
    """
    app = FastAPI(
        title="omw-sites",
        version="0.1.0",
        summary="Investment land of the Warsaw metropolitan area (OGC API – Features)",
        description=(
            "Read API over the omw-sites store: the ranked site table and the reference "
            "layers, as OGC API – Features Part 1 (Core, GeoJSON, OpenAPI 3.0), Part 2 "
            "(CRS) and Part 3 (CQL2 filters, queryables), with sortby, properties, ETags "
            "and Mapbox vector tiles of the sites. Geometries in CRS84 (longitude, "
            "latitude), 7 decimals. Errors are RFC 7807 problem bodies."
        ),
        openapi_url=None,  # served below, as OpenAPI 3.0 for the oas30 conformance class
        docs_url=None,  # Swagger UI would pull its JS from a CDN
        redoc_url=None,
    )
    app.state.catalog = Catalog(store_path)
    app.state.map_cache = MapCache()
    install_problem_handlers(app)
    for router in ROUTERS:  # writes first: before the generic /collections/{id}/… routes
        app.include_router(router)
    # the pages' scripts and styles, MapLibre GL JS among them: served here to work offline
    app.mount("/static", StaticAssets(packages=[("omw_sites.api", "static")]), name="static")

    cached: dict[str, bytes] = {}

    @app.get("/openapi.json", name="openapi", include_in_schema=False)
    async def openapi(request: Request) -> Response:
        check_params(request, frozenset({"f"}))
        check_format(request.query_params.get("f"))  # JSON only: Swagger UI needs a CDN
        if "doc" not in cached:
            snap = await app.state.catalog.current()
            props = {n: property_schemas(layer) for n, layer in snap.layers.items()}
            cached["doc"] = orjson.dumps(ogc_openapi(app, props))
        return Response(cached["doc"], media_type=OPENAPI)

    app.add_middleware(CompressionMiddleware)  # gzip for bodies of 1 KiB or more
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        # a portal in another origin sends its key and JSON body, revalidates by ETag and
        # writes with preconditions (If-Match / If-Unmodified-Since)
        allow_headers=[
            "Authorization",
            "X-API-Key",
            "Content-Type",
            "Content-Crs",
            "If-None-Match",
            "If-Match",
            "If-Unmodified-Since",
        ],
        expose_headers=["ETag", "Last-Modified", "Content-Crs", "Allow", "Accept-Patch"],
    )
    app.add_middleware(ServerTimingMiddleware)
    # 413/414 before anything reads the body or parses the query
    limit = max_body_bytes or body_limit_from_env()
    app.add_middleware(RequestLimitMiddleware, max_body_bytes=limit)
    app.add_middleware(HeadMiddleware)  # outermost: HEAD runs as GET through the rest
    return app


#: seconds between two warm-ups: a stream of edits that re-rank sites (each drops the
#: tiles) must not keep a core busy re-encoding them
WARM_PAUSE_S = 30.0
WARM_POLL_S = 2.0


def start_tile_warming(catalog: Catalog) -> threading.Thread:
    """Encode, in a background thread, the site tiles a map opening on the whole region
    asks for first (:func:`omw_sites.api.tiling.warm_tiles`): at the start, and again
    after the served copy changed (a write that re-ranks sites drops its tiles), at most
    once every ``WARM_PAUSE_S``. The catalogue's first visitor would otherwise wait for
    the pure-Python encoding of every tile on screen."""

    def warm_when_changed() -> None:
        # a weak reference: the copy warmed last must not outlive a reload because of us
        warmed: weakref.ref[Any] | None = None
        while True:
            layer = catalog.snapshot.layers.get(SITES)
            if layer is None or (warmed is not None and warmed() is layer):
                del layer
                time.sleep(WARM_POLL_S)
                continue
            try:
                warm_tiles(layer)
                cached_basemap(catalog.snapshot)  # the catalogue map's other layers
            except Exception:  # warming is an optimisation: a failure only logs
                log.exception("preparing the catalogue map failed")
            warmed = weakref.ref(layer)
            del layer
            time.sleep(WARM_PAUSE_S)

    thread = threading.Thread(target=warm_when_changed, name="tile-warming", daemon=True)
    thread.start()
    return thread


def make_server(
    store_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    forwarded_allow_ips: str = "127.0.0.1",
    **config: Any,
) -> uvicorn.Server:
    """A uvicorn server for the API, honouring X-Forwarded-Proto/-For/-Host from trusted proxies.

    ``forwarded_allow_ips`` lists the proxies trusted for those headers ("*" trusts any
    client). Run it with ``server.run()`` (or ``server.run(sockets=[sock])`` on an
    already bound socket made with ``socket.IPPROTO_TCP``: asyncio turns Nagle's
    algorithm off only on such sockets, and with it on, a gzipped page waits ~40 ms for
    the client's delayed ACK).
    """
    api = create_app(store_path)
    start_tile_warming(api.state.catalog)
    app: ASGIApp = api
    app = ProxyHeadersMiddleware(app, trusted_hosts=forwarded_allow_ips)  # type: ignore[arg-type,assignment]
    app = ForwardedHostMiddleware(app, trusted=forwarded_allow_ips)
    cfg = uvicorn.Config(app, host=host, port=port, proxy_headers=False, **config)
    return uvicorn.Server(cfg)


def serve(
    store_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    forwarded_allow_ips: str = "127.0.0.1",
    log_level: str = "info",
) -> None:
    """Serve the API until interrupted (what ``omw-sites serve`` calls)."""
    make_server(
        store_path, host, port, forwarded_allow_ips=forwarded_allow_ips, log_level=log_level
    ).run()
