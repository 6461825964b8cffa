"""HTML pages of the API: Jinja2 templates in ``api/templates``, every value escaped.

Each JSON resource has an HTML twin rendered here from the same document (OGC API
Features Part 1, ``conf/html``); the routes choose between them by content negotiation.
"""

from __future__ import annotations

from typing import Any

import jinja2
import orjson
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import HTMLResponse

from omw_sites.api.responses import GEOJSON, HTML, JSON, SCHEMA_JSON, as_format

_JSON = frozenset({JSON, GEOJSON, SCHEMA_JSON})  # what ``f=json`` answers

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("omw_sites.api", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

_TYPE_TITLES = {GEOJSON: "GeoJSON", SCHEMA_JSON: "JSON Schema"}


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


def items_page(
    request: Request,
    layer_name: str,
    title: str,
    features: list[bytes],
    matched: int,
    offset: int,
    crs: str,
    next_url: URL | None,
    prev_url: URL | None,
    headers: dict[str, str],
) -> HTMLResponse:
    """One page of features as an HTML table: a row per feature, a column per property."""
    decoded = orjson.loads(b"[%b]" % b",".join(features))
    columns: list[str] = []
    for feature in decoded:  # every feature of a page has the same properties
        columns = list(feature.get("properties") or {})
        break
    rows = []
    for feature in decoded:
        props = feature.get("properties") or {}
        href = request.url_for("item", collectionId=layer_name, featureId=str(feature["id"]))
        rows.append(
            {
                "id": feature["id"],
                "href": as_format(href, "html"),
                "geometry": geometry_summary(feature.get("geometry")),
                "cells": [props.get(c) for c in columns],
            }
        )
    return html_page(
        request,
        "items.html",
        f"{title}: features",
        json_type=GEOJSON,
        crumbs=crumbs_for(request, layer_name),
        headers=headers,
        matched=matched,
        first=offset + 1 if rows else 0,
        last=offset + len(rows),
        crs=crs,
        columns=columns,
        features=rows,
        next=str(next_url) if next_url is not None else None,
        prev=str(prev_url) if prev_url is not None else None,
    )


def item_page(
    request: Request,
    layer_name: str,
    title: str,
    feature: bytes,
    crs: str,
    headers: dict[str, str],
) -> HTMLResponse:
    """One feature as an HTML table of its properties."""
    decoded = orjson.loads(feature)
    return html_page(
        request,
        "item.html",
        title,
        json_type=GEOJSON,
        crumbs=crumbs_for(request, layer_name),
        headers=headers,
        geometry=geometry_summary(decoded.get("geometry")),
        crs=crs,
        properties=decoded.get("properties") or {},
    )
