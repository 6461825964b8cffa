"""Read API over the store: OGC API – Features (``create_app``) and its server (``serve``)."""

from omw_sites.api.app import create_app, make_server, serve

__all__ = ["create_app", "make_server", "serve"]
