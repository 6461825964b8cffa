"""``/catalogue``: the investor catalogue, a searchable list and a vector map side by side.

The page's state (filters, profile, sort, page, map view, language) is its query string.
The server turns that state into one CQL2 filter (:func:`state_filter`); the page asks
``/catalogue/matches`` for it with the ids it matches (the map shows exactly those) and
lists one page of ``/collections/sites/items?filter=…`` (its ``numberMatched`` is the
count shown). Both read the same snapshot through the same CQL2 evaluator, so map and
list agree. ``/catalogue/basemap`` holds the reference layers the map draws under the
sites (gminy with names, main roads, rail, water when the store has it) as one GeoJSON
document: a few thousand simplified features, cached per store version — one request
instead of a tile pyramid, and no pure-Python MVT encoding on the way.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import NoMatchFound

from omw_sites import i18n
from omw_sites.api.catalog import Snapshot
from omw_sites.api.pages import language_switch
from omw_sites.api.params import check_params, get_layer, snapshot
from omw_sites.api.problems import bad_parameter
from omw_sites.api.responses import GEOJSON, JSON
from omw_sites.api.routes.items import filter_mask
from omw_sites.api.served_layer import Layer
from omw_sites.layers import SITES, WEB_CRS, WORK_CRS, rank_col, score_col

router = APIRouter()

NETWORKS = ("water", "sewer", "power", "gas", "heat", "telecom")
TIMES = {  # filter key -> column (minutes by road)
    "junction": "time_junction_min",
    "airport": "time_airport_min",
    "rail_freight": "time_rail_freight_min",
}
MINIMUMS = {  # filter key -> column: the investor's hard requirement "at least N"
    "workforce": "workforce_30min",  # working-age people within 30 min by road
    "height": "max_height_m",  # maximum building height the plan allows, m
}
STATUSES = ("available", "reserved", "sold", "withdrawn")
DEFAULT_STATUS = ("available",)
SORTS = {  # sort key -> items parameters ("rank" orders by the profile)
    "rank": {},
    "area_desc": {"sortby": "-area_ha"},
    "area_asc": {"sortby": "area_ha"},
    "price": {"sortby": "price_pln_m2"},
}
PAGE_SIZE = 20
LIST_COLUMNS = (  # what a list row shows (those the store has)
    "site_id",
    "gmina",
    "parcel_ids",
    "area_ha",
    "zoning_class",
    "zoning_symbol",
    "status",
    "price_pln_m2",
    "lease_pln_m2_year",
)
BASEMAP_LAYERS = ("gminy", "water", "roads_main", "rail")
BASEMAP_LINES = ("roads_main", "rail")  # merged into one feature per road or line
BASEMAP_TOLERANCE_M = 20.0  # simplification in EPSG:2180: below a pixel at zoom 12
# score classes of the map and its legend: upper bounds and colours (ColorBrewer RdYlGn)
SCORE_BREAKS = (0.2, 0.4, 0.6, 0.8)
SCORE_COLOURS = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
EXCLUDED_COLOUR = "#8c8c8c"

MULTI_PARAMS = ("gmina", "zoning", "ownership", "status")
STATE_PARAMS = frozenset(
    {"lang", "profile", "area_min", "area_max", "eligible", "sort", "page", "map"}
    | set(MULTI_PARAMS)
    | {f"util_{n}" for n in NETWORKS}
    | {f"max_{t}" for t in TIMES}
    | {f"min_{k}" for k in MINIMUMS}
)


# ------------------------------------------------------------------------ the state


def options(snap: Snapshot) -> dict[str, Any]:
    """What the filters offer in this store: gminy, designation classes, ownership
    classes, networks, travel times and profiles present."""
    table = get_layer(snap, SITES).table

    def distinct(column: str) -> list[str]:
        if column not in table.columns:
            return []
        values = table[column].dropna().astype(str)
        return sorted(v for v in values.unique().tolist() if v)

    gminy: list[tuple[str, str]] = []
    if {"teryt", "gmina"} <= set(table.columns):
        pairs = table[["teryt", "gmina"]].dropna().astype(str).drop_duplicates()
        gminy = sorted(zip(pairs["teryt"], pairs["gmina"], strict=True), key=lambda p: p[1])
    return {
        "gminy": gminy,
        "zoning": distinct("zoning_class"),
        "ownership": distinct("ownership"),
        "networks": [n for n in NETWORKS if f"{n}_on_site" in table.columns],
        "times": [t for t, col in TIMES.items() if col in table.columns],
        "minimums": [k for k, col in MINIMUMS.items() if col in table.columns],
        "profiles": list(snap.profiles),
    }


def _number(name: str, text: str | None, low: float = 0.0, high: float = 1e9) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise bad_parameter(name, f"expected a number, not {text!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise bad_parameter(name, f"must be between {low:g} and {high:g}, not {text!r}")
    return value


def _choices(request: Request, name: str, valid: list[str]) -> list[str]:
    values = [v for v in request.query_params.getlist(name) if v]
    wrong = [v for v in values if v not in valid]
    if wrong:
        raise bad_parameter(name, f"unknown value(s) {', '.join(wrong)}; valid: {', '.join(valid)}")
    return values


def _map_view(text: str | None) -> list[float] | None:
    if not text:
        return None
    parts = text.split("/")
    try:
        zoom, lat, lon = (float(p) for p in parts)
    except ValueError:
        raise bad_parameter("map", f"expected zoom/latitude/longitude, not {text!r}") from None
    if not (0 <= zoom <= 22 and -85 <= lat <= 85 and -180 <= lon <= 180):
        raise bad_parameter("map", f"zoom 0..22, latitude -85..85, longitude -180..180: {text!r}")
    return [zoom, lat, lon]


def read_state(request: Request, snap: Snapshot, opts: dict[str, Any]) -> dict[str, Any]:
    """The catalogue state of the request's query string, checked (a 400 problem naming
    the parameter otherwise); ``status`` defaults to available sites."""
    check_params(request, STATE_PARAMS)
    q = request.query_params
    profile = q.get("profile") or (opts["profiles"][0] if opts["profiles"] else None)
    if profile is not None and profile not in snap.profiles:
        raise bad_parameter(
            "profile", f"unknown profile {profile!r}; valid: {', '.join(snap.profiles) or 'none'}"
        )
    sort = q.get("sort") or "rank"
    if sort not in SORTS:
        raise bad_parameter("sort", f"must be one of {', '.join(SORTS)}")
    utilities: dict[str, str] = {}
    for net in opts["networks"]:
        text = (q.get(f"util_{net}") or "").strip()
        if text and text != "site":
            text = f"{_number(f'util_{net}', text, 0, 100000):g}"
        if text:
            utilities[net] = text
    times = {t: _number(f"max_{t}", q.get(f"max_{t}"), 0, 10000) for t in opts["times"]}
    minimums = {k: _number(f"min_{k}", q.get(f"min_{k}"), 0, 1e8) for k in opts["minimums"]}
    statuses = _choices(request, "status", list(STATUSES)) if "status" in q else []
    return {
        "lang": i18n.negotiate(q.get("lang"), request.headers.get("accept-language")),
        "profile": profile,
        "sort": sort,
        "page": int(_number("page", q.get("page"), 1, 1e6) or 1),
        "area_min": _number("area_min", q.get("area_min")),
        "area_max": _number("area_max", q.get("area_max")),
        "gmina": _choices(request, "gmina", [t for t, _ in opts["gminy"]]),
        "zoning": _choices(request, "zoning", opts["zoning"]),
        "ownership": _choices(request, "ownership", opts["ownership"]),
        "status": statuses or list(DEFAULT_STATUS),
        "utilities": utilities,
        "times": {t: v for t, v in times.items() if v is not None},
        "minimums": {k: v for k, v in minimums.items() if v is not None},
        "eligible": q.get("eligible") in ("1", "on", "true"),
        "map": _map_view(q.get("map")),
    }


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def state_filter(state: dict[str, Any]) -> str:
    """The catalogue state as one CQL2 text filter over the site queryables."""
    parts = []
    if state["area_min"] is not None:
        parts.append(f"area_ha >= {state['area_min']:g}")
    if state["area_max"] is not None:
        parts.append(f"area_ha <= {state['area_max']:g}")
    for key, column in (("gmina", "teryt"), ("zoning", "zoning_class"), ("ownership", "ownership")):
        if state[key]:
            parts.append(f"{column} IN ({_quoted(state[key])})")
    parts.append(f"status IN ({_quoted(state['status'])})")
    for net, rule in state["utilities"].items():
        on_site = f"{net}_on_site = TRUE"
        parts.append(on_site if rule == "site" else f"({on_site} OR dist_{net}_m <= {rule})")
    for key, minutes in state["times"].items():
        parts.append(f"{TIMES[key]} <= {minutes:g}")
    # a site with no figure does not match: the minimum is the investor's hard requirement
    for key, least in state["minimums"].items():
        parts.append(f"{MINIMUMS[key]} >= {least:g}")
    if state["eligible"] and state["profile"]:
        parts.append(f"{rank_col(state['profile'])} >= 1")
    return " AND ".join(parts)


def items_query(state: dict[str, Any], layer: Layer, cql: str) -> dict[str, str]:
    """The ``/collections/sites/items`` parameters of the list's current page."""
    profile = state["profile"]
    extra = [score_col(profile), rank_col(profile), f"tier_{profile}"] if profile else []
    props = [c for c in (*LIST_COLUMNS, *extra) if c in layer.columns]
    query = {
        "filter": cql,
        "limit": str(PAGE_SIZE),
        "offset": str((state["page"] - 1) * PAGE_SIZE),
        "properties": ",".join(props),
    }
    sort = SORTS[state["sort"]]
    if sort:
        query.update(sort)
    elif profile:
        query["profile"] = profile
    return query


# --------------------------------------------------------------------------- routes


@router.get(
    "/catalogue",
    name="catalogue",
    summary="Investor catalogue (HTML)",
    response_class=HTMLResponse,
    include_in_schema=False,  # a page of this server, not a resource of the API
)
async def catalogue(request: Request) -> HTMLResponse:
    snap = await snapshot(request)
    opts = options(snap)
    state = read_state(request, snap, opts)
    lang = state["lang"]
    layer = get_layer(snap, SITES)
    env = i18n.environment("omw_sites.api", "templates", lang)
    _ = i18n.translations(lang).gettext
    config = {
        "lang": lang,
        "pageSize": PAGE_SIZE,
        "matches": str(request.url_for("catalogue_matches")),
        "basemap": str(request.url_for("catalogue_basemap")),
        "items": str(request.url_for("items", collectionId=SITES)),
        "tiles": str(
            request.url_for("tileset", collectionId=SITES, tileMatrixSetId="WebMercatorQuad")
        )
        + "/{z}/{x}/{y}",
        "site": site_link(request, lang),
        "bounds": list(layer.bbox) if layer.bbox else None,
        "view": state["map"],
        "breaks": SCORE_BREAKS,
        "colours": SCORE_COLOURS,
        "excludedColour": EXCLUDED_COLOUR,
        "labels": js_labels(lang),
    }
    page = env.get_template("catalogue.html").render(
        title=_("Investment land catalogue"),
        state=state,
        opts=opts,
        profiles=[(p.name, profile_title(p.name, p.title, lang)) for p in snap.profiles.values()],
        statuses=STATUSES,
        sorts=list(SORTS),
        legend=legend(lang),
        config=orjson.dumps(config).decode().replace("</", "<\\/"),
        **language_switch(request, lang),
        home=str(request.url_for("landing")) + "?f=html",
        static=str(request.url_for("static", path="")),
        lang=lang,
        compare=str(request.url_for("catalogue_compare")),
        shortlist_full=_("The shortlist holds at most %(n)s sites: remove one first.") % {"n": 10},
    )
    return HTMLResponse(page, headers={"Vary": "Accept-Language", "Content-Language": lang})


@router.get(
    "/catalogue/matches",
    name="catalogue_matches",
    summary="The catalogue state as a CQL2 filter, the ids of the sites it matches and the "
    "items query of the list's page",
    response_class=Response,
    include_in_schema=False,
)
async def matches(request: Request) -> Response:
    snap = await snapshot(request)
    opts = options(snap)
    state = read_state(request, snap, opts)
    layer = get_layer(snap, SITES)
    cql = state_filter(state)
    mask, _ = await anyio.to_thread.run_sync(filter_mask, layer, cql, None, None)
    rows = np.flatnonzero(mask)
    ids = layer.table["site_id"].to_numpy(dtype=object)[rows].tolist()
    query = items_query(state, layer, cql)
    doc = {
        "filter": cql,
        "numberMatched": len(ids),
        "ids": ids,
        "items": str(request.url_for("items", collectionId=SITES)) + "?" + urlencode(query),
    }
    return Response(orjson.dumps(doc), media_type=JSON, headers={"Cache-Control": "no-cache"})


_basemap_cache: dict[tuple, bytes] = {}


@router.get(
    "/catalogue/basemap",
    name="catalogue_basemap",
    summary="The catalogue map's reference layers (gminy with names, main roads, rail, "
    "water) as one simplified GeoJSON document",
    response_class=Response,
    include_in_schema=False,
)
async def basemap(request: Request) -> Response:
    check_params(request, frozenset())
    snap = await snapshot(request)
    body = _basemap_cache.get(snap.signature)
    if body is None:
        body = await anyio.to_thread.run_sync(cached_basemap, snap)
    return Response(body, media_type=GEOJSON, headers={"Cache-Control": "no-cache"})


def cached_basemap(snap: Snapshot) -> bytes:
    """:func:`basemap_geojson` of ``snap``, kept for its store version (one at a time)."""
    body = _basemap_cache.get(snap.signature)
    if body is None:
        body = basemap_geojson(snap)
        _basemap_cache.clear()
        _basemap_cache[snap.signature] = body
    return body


def basemap_geojson(snap: Snapshot) -> bytes:
    """The basemap layers present, simplified, in CRS84, each feature tagged with its
    ``layer``; gminy also as label points (``gmina_label``, inside the polygon)."""
    frames = []
    for name in BASEMAP_LAYERS:
        layer = snap.layers.get(name)
        if layer is None or len(layer) == 0:
            continue
        columns = [c for c in ("name", "teryt", "number", "road_class") if c in layer.table]
        frame = gpd.GeoDataFrame(
            layer.table[columns].astype(object).reset_index(drop=True),
            geometry=layer.storage_geometries,
            crs=WORK_CRS,
        )
        if name in BASEMAP_LINES:
            # a road is published as thousands of short segments: one feature per road
            # (class and number) is a sixth of the bytes for the browser to read and tile
            keys = frame.fillna({c: "" for c in columns})
            frame = (
                keys.dissolve(by=columns, as_index=False) if columns else keys.dissolve()
            ).reset_index(drop=True)
            merged = shapely.line_merge(shapely.simplify(frame.geometry.array, BASEMAP_TOLERANCE_M))
            frame = frame.set_geometry(merged)
            frame[columns] = frame[columns].replace("", None)
        else:
            frame = frame.set_geometry(shapely.simplify(frame.geometry.array, BASEMAP_TOLERANCE_M))
        props = frame[columns].assign(layer=name)
        frames.append(gpd.GeoDataFrame(props, geometry=frame.geometry.array, crs=WORK_CRS))
        if name == "gminy":
            points = shapely.point_on_surface(layer.storage_geometries)
            labels = props.assign(layer="gmina_label")
            frames.append(gpd.GeoDataFrame(labels, geometry=points, crs=WORK_CRS))
    if not frames:
        return b'{"type":"FeatureCollection","features":[]}'
    gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=WORK_CRS).to_crs(WEB_CRS)
    gdf = gdf[~gdf.geometry.is_empty & gdf.geometry.notna()]
    gdf = gdf.set_geometry(shapely.set_precision(gdf.geometry.array, 1e-5))
    gdf = gdf.astype({c: object for c in gdf.columns if c != "geometry"})
    return gdf.to_json(drop_id=True, na="drop").encode()


def site_link(request: Request, lang: str) -> str:
    """The URL template (``SITE_ID`` to replace) of a list row's link: the catalogue's
    site page where this server has one, else the API's HTML feature page."""
    try:
        return str(request.url_for("catalogue_site", siteId="SITE_ID")) + f"?lang={lang}"
    except NoMatchFound:
        return str(request.url_for("item", collectionId=SITES, featureId="SITE_ID")) + "?f=html"


# ----------------------------------------------------------------------- the words


def profile_title(name: str, title: str, lang: str) -> str:
    """A profile's title in ``lang``: the catalogue's translation of its name if any,
    else the title the run recorded."""
    key = f"profile:{name}"
    text = i18n.gettext(lang, key)
    return title if text == key else text


def legend(lang: str) -> list[tuple[str, str]]:
    """(colour, label) of the map's score classes and of excluded sites."""
    bounds = (0.0, *SCORE_BREAKS, 1.0)
    rows = [
        (colour, f"{i18n.format_number(lo, lang, 1)}–{i18n.format_number(hi, lang, 1)}")
        for colour, lo, hi in zip(SCORE_COLOURS, bounds[:-1], bounds[1:], strict=True)
    ]
    rows.append((EXCLUDED_COLOUR, i18n.gettext(lang, "excluded by the profile")))
    return rows


JS_MESSAGES = (
    "Sites found:",
    "No site matches these filters.",
    "Page %(page)s of %(pages)s",
    "precinct",
    "not ranked",
    "PLN/m²",
    "PLN/m²/year",
    "Loading…",
    "The map could not be drawn:",
    "The list could not be loaded:",
    "Shortlist",
    *(f"status:{s}" for s in STATUSES),
)


def js_labels(lang: str) -> dict[str, str]:
    """The words the page's script writes, in ``lang``."""
    return {msgid: i18n.gettext(lang, msgid) for msgid in JS_MESSAGES}


__all__ = ["router", "state_filter", "read_state", "options"]
