"""HTML pages of the API: Jinja2 templates in ``api/templates``, every value escaped.

Each JSON resource has an HTML twin rendered here from the same document (OGC API
Features Part 1, ``conf/html``); the routes choose between them by content negotiation.
Pages are in Polish or English (:func:`page_language`: ``?lang=``, then
``Accept-Language``, else Polish), their words from the message catalogue
(``omw_sites.i18n``), numbers in the language's format, with a link to the same page in
the other language; a page asked for with ``?lang=`` keeps it in its links to pages.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlencode

import orjson
from markupsafe import Markup
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import HTMLResponse

from omw_sites.api.problems import Text, message
from omw_sites.api.responses import GEOJSON, HTML, JSON, SCHEMA_JSON, as_format
from omw_sites.api.served_layer import Layer
from omw_sites.i18n import LANGUAGE_NAMES, environment, format_number, gettext, negotiate
from omw_sites.layers import RECORD_COLUMNS, SITE_COLUMNS, SITES

_JSON = frozenset({JSON, GEOJSON, SCHEMA_JSON})  # what ``f=json`` answers
_TYPE_TITLES = {GEOJSON: "GeoJSON", SCHEMA_JSON: "JSON Schema"}
PAGE_VARY = "Accept, Accept-Language"  # a page's format and its language are negotiated


def html_page(
    request: Request,
    template: str,
    title: str | Text,
    *,
    json_type: str = JSON,
    crumbs: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` in the page's language with a breadcrumb trail, a link to the
    JSON of the same URL and one to the page in the other language. ``title`` is a
    message id (or a :class:`Text`)."""
    lang = page_language(request)
    env = environment("omw_sites.api", "templates", lang)
    page = env.get_template(template).render(
        title=message(title).render(lang),
        home=html_href(request, request.url_for("landing")),
        crumbs=crumbs or [],
        alternates=[
            {
                "href": as_format(request.url, "json"),
                "type": json_type,
                "title": _TYPE_TITLES.get(json_type, "JSON"),
            }
        ],
        **language_switch(request, lang),
        property_text=lambda name, schema: property_description(name, schema, lang),
        **context,
    )
    return HTMLResponse(
        page, headers={**(headers or {}), "Content-Language": lang, "Vary": PAGE_VARY}
    )


def html_href(request: Request, url: URL | str) -> str:
    """The HTML page of ``url``, in the language the request named with ``?lang=`` (else
    the browser's ``Accept-Language`` decides there too)."""
    href = URL(as_format(url, "html"))
    lang = request.query_params.get("lang")
    return str(href.include_query_params(lang=lang)) if lang else str(href)


def layer_title(layer: Layer, lang: str) -> str:
    """A collection's title in ``lang`` (its JSON title where the catalogue has none)."""
    if lang == "en":
        return layer.title
    key = f"layer:{layer.name}"
    text = gettext(lang, key)
    return layer.title if text == key else text


# the profile columns of the site table (``score_<profile>`` …): what each holds
PROFILE_COLUMNS = (
    ("score_", "score for profile %(profile)s (0..1, null when excluded)"),
    ("rank_", "rank for profile %(profile)s (1 = best, 0 = excluded)"),
    ("excluded_", "why the site is excluded for profile %(profile)s (empty when eligible)"),
)
TEMPORAL_NOTE = "; the datetime parameter of the items filters on it"
SITES_DESCRIPTION = (
    "Investment sites of the Warsaw metropolitan area (OMW), one feature per site: "
    "criteria with units (%(units)s), and per profile score_<profile> (0..1, null when "
    "excluded), rank_<profile> (1 = best, 0 = excluded) and excluded_<profile> (reason). "
    "Sold and withdrawn sites are not ranked (rank 0, reason 'not on offer') but keep "
    "their score. Profiles: %(profiles)s."
)


def column_meaning(column: str, lang: str) -> str:
    """What a column of the site table holds, in ``lang`` (the catalogue's
    ``column:<name>``, whose English text is the meaning in ``layers.SITE_COLUMNS``), ""
    for a column the catalogue does not know."""
    key = f"column:{column}"
    text = gettext(lang, key)
    if text != key:
        return text
    for prefix, msgid in PROFILE_COLUMNS:
        if column.startswith(prefix):
            return gettext(lang, msgid, profile=column[len(prefix) :])
    return ""


def property_description(name: str, schema: dict[str, Any], lang: str) -> str:
    """A property's description on a page in ``lang``, from its JSON Schema entry (the
    queryables', a tileset's): the JSON's English text on English pages; on the others the
    column's meaning in ``lang`` with the same time zone, datetime note and unit. A property
    the JSON leaves undescribed has no description here either."""
    described = str(schema.get("description") or "")
    if lang == "en" or not described:
        return described
    if name == "geometry" and schema.get("x-ogc-role") == "primary-geometry":
        types = described.partition(" geometries;")[0]  # GeoJSON type names, or "no"
        return gettext(
            lang,
            "geometries: %(types)s; S_INTERSECTS and the other spatial functions",
            types=gettext(lang, "none") if types == "no" else types,
        )
    meaning = column_meaning(name, lang)
    if not meaning:
        return described
    unit = (SITE_COLUMNS.get(name) or RECORD_COLUMNS.get(name) or ("", ""))[0]
    if unit == "UTC":
        meaning += " (UTC)"
    if described.endswith(TEMPORAL_NOTE) or TEMPORAL_NOTE + " [" in described:
        meaning += gettext(lang, TEMPORAL_NOTE)
    shown = schema.get("x-ogc-unit")
    return meaning + (f" [{shown}]" if shown else "")


def layer_description(layer: Layer, lang: str, run_info: dict[str, Any] | None = None) -> str:
    """A collection's description in ``lang``: its JSON description on English pages; the
    catalogue's ``layer_about:<name>`` for a reference layer, the sites' description (with
    the criteria's units, the profiles and the run of ``run_info``) in ``lang``."""
    if lang == "en":
        return layer.description
    if layer.name == SITES:
        units = ", ".join(f"{c} [{u}]" for c, (u, _) in SITE_COLUMNS.items() if u)
        profiles = ", ".join(layer.orders) or gettext(lang, "none")
        text = gettext(lang, SITES_DESCRIPTION, units=units, profiles=profiles)
        info = run_info or {}
        run = ", ".join(f"{k} {info[k]}" for k in ("run_id", "created") if k in info)
        return f"{text} {gettext(lang, 'Run: %(run)s.', run=run)}" if run else text
    key = f"layer_about:{layer.name}"
    text = gettext(lang, key)
    return layer.description if text == key else text


def crumbs_for(request: Request, collection: Layer | None = None) -> list[dict[str, str]]:
    """Breadcrumbs (HTML pages) down to ``collection``'s page."""
    lang = page_language(request)
    out = [
        {
            "href": html_href(request, request.url_for("collections")),
            "title": gettext(lang, "Collections"),
        }
    ]
    if collection is not None:
        href = html_href(request, request.url_for("collection", collectionId=collection.name))
        out.append({"href": href, "title": layer_title(collection, lang)})
    return out


def geometry_summary(geometry: dict[str, Any] | None, lang: str = "en") -> str:
    """``Polygon, 5 vertices`` for the HTML tables (coordinates stay in the JSON)."""
    if not geometry:
        return gettext(lang, "none")

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
    kind = str(geometry.get("type", "?"))
    return gettext(lang, "%(type)s, %(n)s vertices", type=kind, n=format_number(n, lang, 0))


def browser_links(request: Request, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A document's links as a page shows them: each with the ``f`` of its media type, so
    that a browser (which asks for HTML first) gets the format the link names; pages in
    the page's language."""
    out = []
    for ln in links:
        fmt = "html" if ln.get("type") == HTML else "json" if ln.get("type") in _JSON else None
        if fmt is None or ln.get("templated"):
            out.append(ln)
        elif fmt == "html":
            out.append({**ln, "href": html_href(request, ln["href"])})
        else:
            out.append({**ln, "href": as_format(ln["href"], fmt)})
    return out


def changes_page(
    request: Request,
    sites: Layer,
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
            href = html_href(request, url)
        rows.append({"href": href, "cells": change})
    return html_page(
        request,
        "changes.html",
        "Changes of the sites",
        crumbs=crumbs_for(request, sites),
        headers=headers,
        since=doc["since"],
        matched=doc["numberMatched"],
        first=offset + 1 if changes else 0,
        last=offset + len(changes),
        columns=columns,
        rows=rows,
        next=html_href(request, next_url) if next_url else None,
        prev=html_href(request, prev_url) if prev_url else None,
    )


def items_page(
    request: Request,
    layer: Layer,
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
    lang = page_language(request)
    rows = []
    for feature in decoded:
        props = feature.get("properties") or {}
        href = request.url_for("item", collectionId=layer.name, featureId=str(feature["id"]))
        rows.append(
            {
                "id": feature["id"],
                "href": html_href(request, href),
                "geometry": geometry_summary(feature.get("geometry"), lang),
                "cells": [formatted(c, props.get(c), lang) for c in columns],
            }
        )
    units = {c: SHOWN_UNIT.get(u, u) for c in columns if (u := SITE_COLUMNS.get(c, ("", ""))[0])}
    # what each column holds (a header's tooltip); reference layers' columns are not
    # the site table's, even where a name is the same (utilities' status)
    meanings = {c: column_meaning(c, lang) for c in columns} if layer.name == SITES else {}
    return html_page(
        request,
        "items.html",
        Text("%(layer)s: features", {"layer": layer_title(layer, lang)}),
        json_type=GEOJSON,
        crumbs=crumbs_for(request, layer),
        headers=headers,
        matched=matched,
        first=offset + 1 if rows else 0,
        last=offset + len(rows),
        crs=crs,
        columns=columns,
        units=units,
        meanings=meanings,
        features=rows,
        next=str(next_url) if next_url is not None else None,
        prev=str(prev_url) if prev_url is not None else None,
    )


# decimals shown per stored unit; shares are shown as per cent
UNIT_DECIMALS = {"m": 0, "km": 2, "ha": 2, "min": 1, "MW": 1, "mm": 0, "%": 1, "share": 1}
SHOWN_UNIT = {"share": "%"}


def language_switch(request: Request, lang: str) -> dict[str, str]:
    """The link to the same page in the other language (the query kept, ``lang`` set)."""
    other = "en" if lang == "pl" else "pl"
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return {
        "other_lang": other,
        "other_lang_name": LANGUAGE_NAMES[other],
        "other_lang_href": "?" + urlencode([*params, ("lang", other)]),
    }


def page_language(request: Request) -> str:
    """The language of a page: ``?lang=``, then ``Accept-Language`` (what a browser
    sends), Polish when the request names none."""
    return negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))


def formatted(name: str, value: Any, lang: str) -> dict[str, Any]:
    """One property as a page shows it: its value with the unit's decimals in ``lang``'s
    number format (``8,99`` in Polish), the unit, and links for the public documents."""
    unit = SITE_COLUMNS.get(name, ("", ""))[0]
    out: dict[str, Any] = {"name": name, "unit": SHOWN_UNIT.get(unit, unit), "links": None}
    if name == "documents" and value:
        docs = json.loads(value) if isinstance(value, str) else value
        out["links"] = [
            {"title": str(d.get("title", d.get("url", ""))), "url": str(d["url"])}
            for d in docs
            if isinstance(d, dict) and str(d.get("url", "")).startswith("http")
        ]
        out["text"] = ""
    elif isinstance(value, bool) or value is None:
        out["text"] = "" if value is None else gettext(lang, "yes" if value else "no")
    elif isinstance(value, float) and math.isfinite(value):
        if unit == "share":
            value = 100 * value
        decimals = UNIT_DECIMALS.get(unit, 3 if name.startswith("score_") else 2)
        out["text"] = format_number(value, lang, decimals)
    elif isinstance(value, int):
        out["text"] = format_number(value, lang, 0) if name.endswith(("_m", "_ha")) else str(value)
    elif name == "status":
        key = f"status:{value}"
        text = gettext(lang, key)
        out["text"] = str(value) if text == key else text
    else:
        out["text"] = str(value)
    out["numeric"] = isinstance(value, int | float) and not isinstance(value, bool)
    return out


def _rings(geometry: dict[str, Any] | None) -> list[list[list[float]]]:
    """Every ring or line of a GeoJSON geometry as a list of [x, y]."""
    if not geometry:
        return []
    kind = geometry.get("type")
    coords: Any = geometry.get("coordinates") or []
    if kind == "GeometryCollection":
        return [r for g in geometry.get("geometries", []) for r in _rings(g)]
    if kind in ("Point", "MultiPoint"):
        pts: list[Any] = [coords] if kind == "Point" else list(coords)
        return [[p[:2]] for p in pts]
    if kind == "LineString":
        return [coords]
    if kind in ("MultiLineString", "Polygon"):
        return list(coords)
    if kind == "MultiPolygon":
        return [ring for poly in coords for ring in poly]
    return []


def small_map(geometry: dict[str, Any] | None, crs: str, size: int = 240) -> Markup:
    """An inline SVG of one feature's outline, north up, with a scale note: no tiles and
    no script, so the page stays one request and readable offline."""
    rings = [r for r in _rings(geometry) if r]
    if not rings:
        return Markup("")
    xs = [p[0] for r in rings for p in r]
    ys = [p[1] for r in rings for p in r]
    geographic = crs.endswith(("CRS84", "4326"))
    if geographic and crs.endswith("4326"):  # EPSG:4326 axis order: lat, lon
        xs, ys = ys, xs
        rings = [[[p[1], p[0]] for p in r] for r in rings]
    kx = math.cos(math.radians(sum(ys) / len(ys))) if geographic else 1.0
    w, h = (max(xs) - min(xs)) * kx, max(ys) - min(ys)
    span = max(w, h) or 1.0
    scale = (size - 20) / span
    x0, y1 = min(xs), max(ys)
    paths = []
    for r in rings:
        pts = " L".join(
            f"{10 + (x - x0) * kx * scale:.1f},{10 + (y1 - y) * scale:.1f}" for x, y in r
        )
        paths.append(f"M{pts}" + (" Z" if len(r) > 2 and r[0] == r[-1] else ""))
    height = max(40, round(h * scale) + 20)
    return Markup(
        f'<svg class="small-map" width="{size}" height="{height}" role="img" '
        f'viewBox="0 0 {size} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect width="{size}" height="{height}" fill="#f4f2ec"/>'
        f'<path d="{" ".join(paths)}" fill="#e31a1c" fill-opacity="0.35" stroke="#b10026" '
        f'stroke-width="2" fill-rule="evenodd"/></svg>'
    )


def item_page(
    request: Request,
    layer: Layer,
    feature: bytes,
    crs: str,
    headers: dict[str, str],
) -> HTMLResponse:
    """One feature: a small map of it, its properties with units and numbers formatted
    in the page's language, public documents as links and, for a site, its sheet."""
    decoded = orjson.loads(feature)
    lang = page_language(request)
    props = decoded.get("properties") or {}
    sheet = None
    feature_id = str(decoded.get("id", ""))
    heading = f"{layer_title(layer, lang)}: {feature_id}"
    site = layer.name == SITES
    if site and decoded.get("id") is not None:
        url = request.url_for("site_sheet", siteId=str(decoded["id"]))
        sheet = str(url.include_query_params(lang=lang))
        area = format_number(props.get("area_ha"), lang, 2)
        parts = [
            str(props.get("gmina") or ""),
            f"{area} ha" if area else "",
            str(props.get("zoning_symbol") or ""),
        ]
        heading = " · ".join(p for p in parts if p) or heading
    return html_page(
        request,
        "item.html",
        Text(heading),
        json_type=GEOJSON,
        crumbs=crumbs_for(request, layer),
        headers=headers,
        feature_id=feature_id,
        geometry=geometry_summary(decoded.get("geometry"), lang),
        small_map=small_map(decoded.get("geometry"), crs),
        sheet=sheet,
        crs=crs,
        properties=[
            {**formatted(k, v, lang), "meaning": column_meaning(k, lang) if site else ""}
            for k, v in props.items()
        ],
    )
