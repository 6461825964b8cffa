"""HTTP API over the store: OGC API – Features, reads and writes (``create_app``), and its
server (``serve``)."""

from omw_sites.api.server import create_app, make_server, serve

__all__ = ["create_app", "make_server", "serve"]
