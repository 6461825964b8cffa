"""Self-contained Folium maps of the ranked sites, one per investor profile, plus an index."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode

from omw_sites.files import write_text_atomic
from omw_sites.layers import (
    NETWORKS,
    REFERENCE_COLUMNS,
    REFERENCE_LAYERS,
    SITES,
    WEB_CRS,
    WORK_CRS,
    excluded_col,
    rank_col,
    score_col,
)
from omw_sites.maps.assets import RawHtml, check_offline, make_offline
from omw_sites.maps.features import (
    REFERENCE_TOLERANCE_M,
    SITE_TOLERANCE_M,
    feature_collection,
    hex_cells,
    hex_polygons,
    hex_summary,
    records,
    web_geometries,
)
from omw_sites.maps.style import (
    EXCLUDED_COLOR,
    EXCLUDED_STROKE,
    FREIGHT_STATION_FILL,
    HEX_FILL_OPACITY,
    NETWORK_COLORS,
    REFERENCE_STYLES,
    SITE_FILL_OPACITY,
    CriterionField,
    LegendExtra,
    MapControl,
    ScoreClasses,
    criterion_fields,
    darken,
    display_values,
    legend_html,
    score_classes,
    title_html,
)
from omw_sites.store import display_target, list_layers, read_layer, read_run_info, read_sites

DEFAULT_MAX_POLYGONS = 5000
DEFAULT_HEX_SIZE_M = 1000.0
_FALLBACK_CENTRE = (52.2297, 21.0122)  # Warsaw, lat/lon
# site-table columns every map reads (besides the profile and criteria columns)
_SITE_BASE = ("site_id", "gmina", "teryt", "area_ha", "zoning_symbol", "zoning_class")
# basemap layers first (drawn below the sites), point layers last (drawn on top)
_BELOW_SITES = ("gminy", "flood", "natura2000", "roads_main", "rail", "utilities")
_ABOVE_SITES = ("substations", "stations", "junctions", "airports")


# --------------------------------------------------------------------------------------
# Reading the store
# --------------------------------------------------------------------------------------


@dataclass
class MapData:
    """What the maps need from one store, read once and shared by every profile's map."""

    path: str  # store target: GeoPackage path or PostGIS URL (shown without password)
    run_info: dict[str, Any]
    profiles: dict[str, dict[str, Any]]  # name -> {"title": ..., "weights": {...}}
    sites: gpd.GeoDataFrame
    reference: dict[str, gpd.GeoDataFrame]
    _reference_geojson: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reference_geojson(self, name: str) -> dict[str, Any]:
        """A reference layer as lon/lat GeoJSON (simplified ~15 m), cached."""
        if name not in self._reference_geojson:
            gdf = self.reference[name]
            cols = [c for c in REFERENCE_COLUMNS.get(name, ()) if c in gdf.columns]
            if name == "utilities" and len(gdf) > MAX_UTILITY_FEATURES:
                gdf, cols = _trunk_lines(gdf, [c for c in ("network", "status") if c in cols])
            geoms = web_geometries(gdf.geometry, REFERENCE_TOLERANCE_M)
            self._reference_geojson[name] = feature_collection(geoms, records(gdf[cols]))
        return self._reference_geojson[name]


DEFAULT_SHEET_URL = "../sites/{id}/sheet"  # as served by the API next to /maps/<profile>
MAX_UTILITY_FEATURES = 5_000  # above this, only trunk lines, merged per network and status
TRUNK_MIN_DIAMETER_MM = 200
TRUNK_VOLTAGES = ("ww", "w", "s")  # extra high, high, medium


def _trunk_lines(gdf: gpd.GeoDataFrame, keys: list[str]) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Trunk utility lines (HV/MV power, pipes ≥ 200 mm), one multi-line per ``keys`` group.

    A region's GESUT holds ~10⁵ service segments; drawn one feature each they make the
    page tens of MB. The region map shows the trunk networks; a site's own distances to
    every network are in its popup.
    """
    diameter = pd.to_numeric(gdf.get("diameter_mm"), errors="coerce")
    voltage = gdf["voltage"].astype(str) if "voltage" in gdf else pd.Series("", index=gdf.index)
    network = gdf["network"].astype(str)
    trunk = ((network == "power") & voltage.isin(TRUNK_VOLTAGES)) | (
        diameter >= TRUNK_MIN_DIAMETER_MM
    )
    rows, geoms = [], []
    for values, group in gdf[trunk.to_numpy()].groupby(keys, sort=True):
        merged = shapely.line_merge(shapely.multilinestrings(group.geometry.to_numpy()))
        values = values if isinstance(values, tuple) else (values,)
        rows.append(dict(zip(keys, values, strict=True)) | {"trunk": True})
        geoms.append(merged)
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=gdf.crs), [*keys, "trunk"]


def _profiles_from(info: Mapping[str, Any], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    raw = info.get("profiles")
    items: list[tuple[str, Any]] = []
    if isinstance(raw, Mapping):
        items = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping) and item.get("name"):
                items.append((str(item["name"]), item))
            elif isinstance(item, str):
                items.append((item, {}))
    out: dict[str, dict[str, Any]] = {}
    for name, meta in items:
        meta = meta if isinstance(meta, Mapping) else {}
        weights = meta.get("weights")
        out[name] = {
            "title": str(meta.get("title") or name.replace("_", " ").title()),
            "weights": dict(weights) if isinstance(weights, Mapping) else {},
        }
    if not out:  # no run info: every score_<profile> column is a profile
        for col in columns:
            if col.startswith("score_"):
                name = col.removeprefix("score_")
                out[name] = {"title": name.replace("_", " ").title(), "weights": {}}
    return out


def available_profiles(store_path: str | Path) -> dict[str, str]:
    """Profiles the store can map: name -> title (from run info, else the score columns)."""
    info = read_run_info(store_path)
    columns = list(read_sites(store_path, read_geometry=False, max_features=1).columns)
    return {k: v["title"] for k, v in _profiles_from(info, columns).items()}


def _check_profiles(requested: Sequence[str], data: MapData) -> None:
    valid = ", ".join(sorted(data.profiles)) or "(none: the store has no score_* columns)"
    for profile in requested:
        if profile not in data.profiles:
            msg = f"unknown profile {profile!r} for store {data.path}; valid profiles: {valid}"
            raise ValueError(msg)
        missing = [
            c for c in (score_col(profile), rank_col(profile)) if c not in data.sites.columns
        ]
        if missing:
            msg = (
                f"store {data.path} lists profile {profile!r} but its {SITES!r} layer has no "
                f"{', '.join(missing)} column; re-run `omw-sites run`"
            )
            raise ValueError(msg)


def load_map_data(store_path: str | Path) -> MapData:
    """Read the site columns the maps use, the reference layers and the run info.

    Parameters
    ----------
    store_path : the GeoPackage store (``data/processed/omw_sites.gpkg``)

    Returns
    -------
    MapData
    """
    path = display_target(store_path)
    store = store_path
    info = read_run_info(store)
    columns = list(read_sites(store, read_geometry=False, max_features=1).columns)
    profiles = _profiles_from(info, columns)
    wanted = [c for c in _SITE_BASE if c in columns]
    for p in profiles:
        per_profile = (score_col(p), rank_col(p), excluded_col(p), f"drivers_{p}")
        wanted += [c for c in per_profile if c in columns]
    wanted += [f.column for f in criterion_fields(columns, info.get("units"))]
    sites = read_sites(store, columns=list(dict.fromkeys(wanted)))
    if sites.crs is None:
        sites = sites.set_crs(WORK_CRS)
    layers = set(list_layers(store))
    reference = {name: read_layer(store, name) for name in REFERENCE_LAYERS if name in layers}
    reference = {k: v for k, v in reference.items() if not v.empty}
    return MapData(path, info, profiles, sites, reference)


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


def _round(value: Any, decimals: int) -> float | None:
    return None if pd.isna(value) else round(float(value), decimals)


def _style_js(style: Mapping[str, Any]) -> JsCode:
    return JsCode(f"function () {{ return {json.dumps(style)}; }}")


def _site_properties(
    df: pd.DataFrame, profile: str, fields: Sequence[CriterionField]
) -> list[dict[str, Any]]:
    """Compact popup properties (see static/omw_map.js for the keys)."""
    n = len(df)

    def col(name: str) -> list[Any]:
        if name not in df.columns:
            return [None] * n
        return df[name].astype(object).where(df[name].notna(), None).tolist()

    def rounded(name: str, decimals: int) -> list[Any]:
        if name not in df.columns:
            return [None] * n
        values = np.round(df[name].to_numpy(dtype=float), decimals).tolist()
        return [None if v != v else v for v in values]  # NaN -> None

    keys = {
        "i": col("site_id"),
        "g": col("gmina"),
        "t": col("teryt"),
        "a": rounded("area_ha", 3),
        "z": col("zoning_symbol"),
        "zc": col("zoning_class"),
        "s": rounded(score_col(profile), 4),
        "r": col(rank_col(profile)),
        "x": col(excluded_col(profile)),
        "d": col(f"drivers_{profile}"),
    }
    criteria = [display_values(f, df[f.column].to_numpy(dtype=float)) for f in fields]
    crit_rows = list(zip(*criteria, strict=True)) if criteria else [()] * n
    out = []
    for i in range(n):
        props = {k: v[i] for k, v in keys.items() if v[i] is not None and v[i] != ""}
        if "x" in props or not props.get("r"):  # rank 0 / NaN score: excluded
            props.pop("r", None)
            props.pop("s", None)
        else:
            props["r"] = int(props["r"])
        props["c"] = list(crit_rows[i])
        out.append(props)
    return out


def _add_site_layers(
    m: folium.Map,
    eligible: gpd.GeoDataFrame,
    excluded: gpd.GeoDataFrame,
    classes: ScoreClasses,
    profile: str,
    fields: Sequence[CriterionField],
) -> None:
    if not excluded.empty:
        fc = feature_collection(
            web_geometries(excluded.geometry, SITE_TOLERANCE_M),
            _site_properties(excluded, profile, fields),
        )
        style = {
            "color": EXCLUDED_STROKE,
            "weight": 0.8,
            "fillColor": EXCLUDED_COLOR,
            "fillOpacity": 0.6,
        }
        folium.GeoJson(
            fc,
            name=f"Excluded sites ({len(excluded):,})",
            show=False,
            style=_style_js(style),
            on_each_feature=JsCode("omw.bindSite"),
        ).add_to(m)
    if eligible.empty:
        return
    cls = classes.classify(eligible[score_col(profile)].to_numpy(dtype=float))
    geoms = web_geometries(eligible.geometry, SITE_TOLERANCE_M)
    props = _site_properties(eligible, profile, fields)
    for k in range(classes.k):  # lowest class first so the best sites are drawn on top
        idx = np.flatnonzero(cls == k)
        if idx.size == 0:
            continue
        color = classes.colors[k]
        style = {
            "color": darken(color, 0.55),
            "weight": 0.8,
            "fillColor": color,
            "fillOpacity": SITE_FILL_OPACITY,
        }
        folium.GeoJson(
            feature_collection(geoms[idx], [props[i] for i in idx]),
            name=f"Score {classes.label(k)} ({idx.size:,} sites)",
            style=_style_js(style),
            on_each_feature=JsCode("omw.bindSite"),
        ).add_to(m)


def _add_hex_layers(
    m: folium.Map,
    eligible: gpd.GeoDataFrame,
    excluded: gpd.GeoDataFrame,
    classes: ScoreClasses,
    profile: str,
    hex_size_m: float,
) -> None:
    if not eligible.empty:
        hexes = hex_summary(
            eligible,
            hex_size_m,
            {
                "r": (rank_col(profile), "min"),
                "s": (score_col(profile), "max"),
                "m": (score_col(profile), "median"),
            },
        )
        props = [
            {"n": int(n), "r": _int(r), "s": _round(s, 4), "m": _round(md, 4), "c": c}
            for n, r, s, md, c in zip(
                hexes["n"],
                hexes["r"],
                hexes["s"],
                hexes["m"],
                classes.classify(hexes["s"].to_numpy(dtype=float)).tolist(),
                strict=True,
            )
        ]
        base = {"color": "#ffffff", "weight": 0.6, "fillOpacity": HEX_FILL_OPACITY}
        style = JsCode(
            f"function (f) {{ return Object.assign({json.dumps(base)}, "
            f"{{fillColor: {json.dumps(list(classes.colors))}[f.properties.c]}}); }}"
        )
        folium.GeoJson(
            feature_collection(web_geometries(hexes.geometry, 0), props),
            name=f"Other eligible sites, per hexagon ({len(eligible):,})",
            style=style,
            on_each_feature=JsCode("omw.bindHex"),
        ).add_to(m)
    if not excluded.empty:
        col = excluded_col(profile)
        reasons = (
            excluded[col].fillna("").astype(str).replace("", "excluded").to_numpy()
            if col in excluded.columns
            else np.full(len(excluded), "excluded", dtype=object)
        )
        centroids = shapely.centroid(np.asarray(excluded.geometry.values))
        q, r = hex_cells(shapely.get_x(centroids), shapely.get_y(centroids), hex_size_m)
        counts = (
            pd.DataFrame({"hex_q": q, "hex_r": r, "reason": reasons})
            .groupby(["hex_q", "hex_r", "reason"])
            .size()
            .rename("k")
            .reset_index()
            .sort_values(["hex_q", "hex_r", "k", "reason"], ascending=[True, True, False, True])
        )
        cells: dict[tuple[int, int], dict[str, Any]] = {}
        for hq, hr, reason, k in counts.itertuples(index=False):
            cell = cells.setdefault((int(hq), int(hr)), {"n": 0, "x": []})
            cell["n"] += int(k)
            if len(cell["x"]) < 3:  # the three most frequent reasons
                cell["x"].append([reason, int(k)])
        keys = np.array(list(cells), dtype=np.int64).reshape(-1, 2)
        geoms = hex_polygons(keys[:, 0], keys[:, 1], hex_size_m)
        hexes = gpd.GeoSeries(geoms, crs=WORK_CRS)
        props = list(cells.values())
        style = {
            "color": "#ffffff",
            "weight": 0.6,
            "fillColor": EXCLUDED_COLOR,
            "fillOpacity": 0.5,
        }
        folium.GeoJson(
            feature_collection(web_geometries(hexes, 0), props),
            name=f"Excluded sites, per hexagon ({len(excluded):,})",
            show=False,
            style=_style_js(style),
            on_each_feature=JsCode("omw.bindHex"),
        ).add_to(m)


def _tooltip(name: str, fc: dict[str, Any], popup: bool) -> dict[str, Any]:
    spec = REFERENCE_STYLES[name]
    keys = fc["features"][0]["properties"].keys() if fc["features"] else ()
    pairs = [(c, label) for c, label in spec.fields if c in keys]
    if not pairs:
        return {}
    fields, aliases = [c for c, _ in pairs], [label for _, label in pairs]
    if popup:
        return {"popup": folium.GeoJsonPopup(fields=fields, aliases=aliases)}
    return {"tooltip": folium.GeoJsonTooltip(fields=fields, aliases=aliases, sticky=True)}


def _add_reference(m: folium.Map, data: MapData, name: str, tiles: bool) -> LegendExtra | None:
    if name not in data.reference or name not in REFERENCE_STYLES:
        return None
    spec = REFERENCE_STYLES[name]
    fc = data.reference_geojson(name)
    if not fc["features"]:
        return None
    style = dict(spec.style)
    if name == "gminy" and tiles:
        style["fillOpacity"] = 0.0  # let the tiles show through
    extra: dict[str, Any] = _tooltip(name, fc, spec.popup)
    if spec.radius is not None:
        style["radius"] = spec.radius
        extra["marker"] = folium.CircleMarker(radius=spec.radius)
    if name == "utilities":
        _add_utilities(m, fc, style)
        return None
    if name == "stations":
        freight = {**style, "fillColor": FREIGHT_STATION_FILL}
        js = JsCode(
            f"function (f) {{ return (f.properties.kind === 'freight') ? {json.dumps(freight)}"
            f" : {json.dumps(style)}; }}"
        )
    else:
        js = _style_js(style)
    label = f"{spec.label} ({len(fc['features']):,})" if spec.radius else spec.label
    folium.GeoJson(fc, name=label, show=spec.show, style=js, **extra).add_to(m)
    if name == "gminy":
        return None
    shape = "dot" if spec.radius else "line" if name in ("roads_main", "rail") else "box"
    color = style.get("fillColor", style.get("color", "#999999"))
    if shape == "line":
        color = style["color"]
    label = spec.label if spec.show else f"{spec.label} (layer off)"
    return LegendExtra(color, label, shape, style.get("color", "rgba(0,0,0,0.35)"))


def _add_utilities(m: folium.Map, fc: dict[str, Any], style: dict[str, Any]) -> None:
    by_network: dict[str, list[dict[str, Any]]] = {}
    for feat in fc["features"]:
        net = str(feat["properties"].get("network") or "other")
        by_network.setdefault(NETWORKS.get(net, net), []).append(feat)
    spec = REFERENCE_STYLES["utilities"]
    for net in sorted(by_network, key=lambda n: (n not in NETWORK_COLORS, n)):
        sub = {"type": "FeatureCollection", "features": by_network[net]}
        color = NETWORK_COLORS.get(net, "#636363")
        trunk = any(f["properties"].get("trunk") for f in sub["features"])
        count = "trunk lines" if trunk else f"{len(sub['features']):,}"
        folium.GeoJson(
            sub,
            name=f"Utilities: {net} ({count})",
            show=spec.show,
            style=_style_js({**style, "color": color}),
            **_tooltip("utilities", sub, popup=False),
        ).add_to(m)


# --------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------


def _data_date(info: Mapping[str, Any]) -> str:
    dates = info.get("data_dates")
    if isinstance(dates, Mapping) and dates:
        # parcels first (the inventory's own date), then the range of the other inputs
        parcels = dates.get("parcels")
        others = sorted(str(v) for k, v in dates.items() if k != "parcels" and v)
        parts = [f"parcels {parcels}"] if parcels else []
        if others:
            span = others[0] if others[0] == others[-1] else f"{others[0]} – {others[-1]}"
            parts.append(f"other layers {span}")
        return "; ".join(parts)
    created = info.get("created")
    return f"run {created}" if created else "unknown"


def _bounds(sites: gpd.GeoDataFrame) -> list[list[float]] | None:
    if sites.empty:
        return None
    minx, miny, maxx, maxy = sites.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return None
    corners = gpd.GeoSeries([shapely.box(minx, miny, maxx, maxy)], crs=WORK_CRS)
    w, s, e, n = corners.to_crs(WEB_CRS).total_bounds
    return [[float(s), float(w)], [float(n), float(e)]]


def base_map(sites: gpd.GeoDataFrame, title: str) -> tuple[folium.Map, list | None]:
    """An offline Leaflet map (no tiles, assets inlined) centred on ``sites``, and its bounds."""
    bounds = _bounds(sites)
    centre = (
        [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
        if bounds
        else list(_FALLBACK_CENTRE)
    )
    m = folium.Map(location=centre, zoom_start=10, tiles=None, control_scale=True)
    m.get_root().title = title
    make_offline(m)
    return m, bounds


def _json_script(js_call: str, payload: Any) -> str:
    text = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
    return f"<script>{js_call}({text});</script>"


def _render(
    data: MapData,
    profile: str,
    max_polygons: int,
    tiles_url: str | None,
    tiles_attribution: str | None,
    hex_size_m: float,
    classification: str,
    sheet_url: str | None = DEFAULT_SHEET_URL,
) -> str:
    _check_profiles([profile], data)
    if max_polygons < 0:
        msg = f"max_polygons must be >= 0, got {max_polygons}"
        raise ValueError(msg)
    meta = data.profiles[profile]
    sites = data.sites
    score = sites[score_col(profile)].astype(float)
    eligible = sites[score.notna()].copy()
    eligible["_rank"] = eligible[rank_col(profile)].astype(float)
    order = [c for c in ("_rank", "site_id") if c in eligible.columns]
    eligible = eligible.sort_values(order, kind="stable").drop(columns="_rank")
    excluded = sites[score.isna()]
    if {"area_ha", "site_id"} <= set(excluded.columns):  # largest first into the budget
        excluded = excluded.sort_values(["area_ha", "site_id"], ascending=[False, True])
    classes = score_classes(eligible[score_col(profile)].to_numpy(dtype=float), 5, classification)
    fields = criterion_fields(sites.columns, data.run_info.get("units"), meta["weights"])

    poly_el, rest_el = eligible.iloc[:max_polygons], eligible.iloc[max_polygons:]
    budget = max(max_polygons - len(poly_el), 0)
    poly_ex, rest_ex = excluded.iloc[:budget], excluded.iloc[budget:]

    m, bounds = base_map(sites, f"{meta['title']} – investment sites (omw-sites)")
    config = {
        "sheetUrl": sheet_url,
        "profile": meta["title"],
        "nEligible": len(eligible),
        "fields": [f.to_js() for f in fields],
    }
    m.get_root().header.add_child(RawHtml(_json_script("omw.configure", config)), name="omw_config")
    if tiles_url:
        folium.TileLayer(
            tiles=tiles_url,
            attr=tiles_attribution or "Map tiles",
            name="Tiles",
            overlay=False,
            control=True,
        ).add_to(m)

    extras: list[LegendExtra] = []
    tiles = bool(tiles_url)
    for name in _BELOW_SITES:
        if (x := _add_reference(m, data, name, tiles)) is not None:
            extras.append(x)
    _add_hex_layers(m, rest_el, rest_ex, classes, profile, hex_size_m)
    _add_site_layers(m, poly_el, poly_ex, classes, profile, fields)
    for name in _ABOVE_SITES:
        if (x := _add_reference(m, data, name, tiles)) is not None:
            extras.append(x)

    site_extras = []
    if not rest_el.empty:
        mid = classes.colors[len(classes.colors) // 2]
        site_extras.append(LegendExtra(mid, "other sites per hexagon (best score)", "hex"))
    if not excluded.empty:
        site_extras.append(
            LegendExtra(EXCLUDED_COLOR, f"excluded ({len(excluded):,}; layer off)", "box")
        )
    legend = legend_html(classes, f"Score – {meta['title']}", [*site_extras, *extras])
    lines = [
        f"Investor profile: {profile}",
        f"Data date: {_data_date(data.run_info)}",
        f"{len(eligible):,} eligible sites, {len(excluded):,} excluded",
    ]
    if not rest_el.empty:
        lines.append(
            f"Best {len(poly_el):,} drawn as polygons; the other {len(rest_el):,} "
            f"summarised in hexagons of {hex_size_m / 1000:g} km radius"
        )
    MapControl(
        title_html(f"{meta['title']}: investment sites", lines), "topleft", "omw-title"
    ).add_to(m)
    MapControl(legend, "bottomright", "omw-legend").add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    if bounds:
        m.fit_bounds(bounds)
    return check_offline(m.get_root().render())


def render_map(
    store_path: str | Path,
    profile: str,
    max_polygons: int = DEFAULT_MAX_POLYGONS,
    *,
    tiles_url: str | None = None,
    tiles_attribution: str | None = None,
    hex_size_m: float = DEFAULT_HEX_SIZE_M,
    classification: str = "quantile",
    sheet_url: str | None = DEFAULT_SHEET_URL,
) -> str:
    """Render the map of one investor profile as one self-contained HTML page.

    The page inlines Leaflet and every style/script it needs (no CDN, works offline). Sites
    are coloured by ``score_<profile>`` in 5 classes; the best ``max_polygons`` eligible sites
    are drawn as polygons (one layer per class), the others are summarised per hexagon.
    Excluded sites are grey, in their own layer, off by default (as polygons while the
    ``max_polygons`` budget lasts, then per hexagon). Reference layers in the store
    (junctions, rail, stations, airports, utilities by network, substations, flood zone,
    Natura 2000, gminy, main roads) are overlays; gminy, flood and roads draw the basemap.

    Parameters
    ----------
    store_path : the GeoPackage store
    profile : investor profile name (see ``available_profiles``)
    max_polygons : how many sites at most are drawn as polygons
    tiles_url : optional XYZ tile URL template (``https://…/{z}/{x}/{y}.png``) when a tile
        server is reachable; by default no tiles are used
    tiles_attribution : attribution shown with ``tiles_url``
    hex_size_m : hexagon circumradius in metres for the summary layers
    classification : ``"quantile"`` (default) or ``"fixed"`` (0–0.2, …, 0.8–1.0)
    sheet_url : link to each site's sheet in its popup, ``{id}`` replaced by the site ID;
        the default is relative to ``/maps/<profile>`` of the API; None drops the link

    Returns
    -------
    str
        The complete HTML page.

    Raises
    ------
    ValueError
        Unknown profile (the message names the valid ones) or bad arguments.
    omw_sites.store.StoreError
        Missing store or site layer.
    """
    data = load_map_data(store_path)
    return _render(
        data,
        profile,
        max_polygons,
        tiles_url,
        tiles_attribution,
        hex_size_m,
        classification,
        sheet_url,
    )


def _store_name(target: str) -> str:
    """A GeoPackage's file name, or the database URL (already without password)."""
    return target if "://" in target else Path(target).name


def _index_html(data: MapData, pages: Mapping[str, str]) -> str:
    e = html.escape
    n = len(data.sites)
    items = []
    for profile, filename in pages.items():
        meta = data.profiles[profile]
        eligible = int(data.sites[score_col(profile)].notna().sum())
        items.append(
            f'<li><a href="{e(filename)}">{e(meta["title"])}</a> '
            f'<span class="dim">({e(profile)}: {eligible:,} eligible of {n:,} sites)</span></li>'
        )
    run = data.run_info.get("run_id", "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>omw-sites maps</title><style>"
        "body{font:15px/1.5 'Helvetica Neue',Arial,sans-serif;margin:2em auto;max-width:46em;"
        "color:#222;padding:0 1em}a{color:#bd0026}.dim{color:#777}</style></head><body>"
        "<h1>Investment sites – maps per investor profile</h1>"
        f'<p class="dim">Data date: {e(_data_date(data.run_info))}'
        f"{' · run ' + e(str(run)) if run else ''} · store {e(_store_name(data.path))}</p>"
        f"<ul>{''.join(items)}</ul></body></html>\n"
    )


def write_maps(
    store_path: str | Path,
    out_dir: str | Path,
    profiles: list[str] | None = None,
    max_polygons: int = DEFAULT_MAX_POLYGONS,
    **kwargs: Any,
) -> list[Path]:
    """Write ``<profile>.html`` for each profile and an ``index.html`` linking them.

    Parameters
    ----------
    store_path : the GeoPackage store
    out_dir : output folder (created if missing)
    profiles : profiles to map; all profiles of the store's run info (or its score columns)
        when None
    max_polygons : see ``render_map``
    **kwargs : further keyword arguments of ``render_map`` (``tiles_url``, ``hex_size_m``, …)

    Returns
    -------
    list of Path
        The profile pages in order, then ``index.html``.
    """
    data = load_map_data(store_path)
    chosen = list(data.profiles) if profiles is None else list(profiles)
    _check_profiles(chosen, data)  # fail before writing anything
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    args = {
        "tiles_url": None,
        "tiles_attribution": None,
        "hex_size_m": DEFAULT_HEX_SIZE_M,
        "classification": "quantile",
    }
    unknown = set(kwargs) - set(args)
    if unknown:
        msg = f"unknown map option(s): {', '.join(sorted(unknown))}; use {', '.join(args)}"
        raise TypeError(msg)
    args |= kwargs
    paths, pages = [], {}
    for profile in chosen:
        path = out / f"{profile}.html"
        write_text_atomic(path, _render(data, profile, max_polygons, **args))
        paths.append(path)
        pages[profile] = path.name
    index = out / "index.html"
    write_text_atomic(index, _index_html(data, pages))
    paths.append(index)
    return paths


__all__ = [
    "DEFAULT_MAX_POLYGONS",
    "MapData",
    "available_profiles",
    "load_map_data",
    "render_map",
    "write_maps",
]
