"""HTML pages of the API: Jinja2 templates in ``api/templates``, every value escaped.

Each JSON resource has an HTML twin rendered here from the same document (OGC API
Features Part 1, ``conf/html``); the routes choose between them by content negotiation.
"""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import HTMLResponse

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
_JSON = frozenset({JSON, GEOJSON, "application/schema+json"})  # what ``f=json`` answers

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("omw_sites.api", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

_TYPE_TITLES = {GEOJSON: "GeoJSON", "application/schema+json": "JSON Schema"}


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
    page = TEMPLATES.get_template(template).render(
        title=title,
        home=as_format(request.url_for("landing"), "html"),
        crumbs=crumbs or [],
        alternates=[
            {
                "href": as_format(request.url, "json"),
                "type": json_type,
                "title": _TYPE_TITLES.get(json_type, "JSON"),
            }
        ],
        **context,
    )
    return HTMLResponse(page, headers=headers)


def crumbs_for(request: Request, collection: str | None = None) -> list[dict[str, str]]:
    """Breadcrumbs (HTML pages) down to ``collection``'s page."""
    out = [{"href": as_format(request.url_for("collections"), "html"), "title": "collections"}]
    if collection is not None:
        href = as_format(request.url_for("collection", collectionId=collection), "html")
        out.append({"href": href, "title": collection})
    return out


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


def browser_links(links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A document's links as a page shows them: each with the ``f`` of its media type, so
    that a browser (which asks for HTML first) gets the format the link names."""
    out = []
    for ln in links:
        fmt = "html" if ln.get("type") == HTML else "json" if ln.get("type") in _JSON else None
        if fmt is None or ln.get("templated"):
            out.append(ln)
        else:
            out.append({**ln, "href": as_format(ln["href"], fmt)})
    return out


def changes_page(
    request: Request,
    doc: dict[str, Any],
    offset: int,
    next_url: str | None,
    prev_url: str | None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The change feed (``/collections/sites/changes``) as a table, a row per record."""
    changes = doc["changes"]
    columns = list(changes[0]) if changes else ["site_id", "change", "fields", "updated_at"]
    rows = []
    for change in changes:
        href = None
        if change.get("change") != "ended" and change.get("site_id"):
            url = request.url_for("item", collectionId="sites", featureId=str(change["site_id"]))
            href = as_format(url, "html")
        rows.append({"href": href, "cells": change})
    return html_page(
        request,
        "changes.html",
        "Changes of the sites",
        crumbs=crumbs_for(request, "sites"),
        headers=headers,
        since=doc["since"],
        matched=doc["numberMatched"],
        first=offset + 1 if changes else 0,
        last=offset + len(changes),
        columns=columns,
        rows=rows,
        next=as_format(next_url, "html") if next_url else None,
        prev=as_format(prev_url, "html") if prev_url else None,
    )
