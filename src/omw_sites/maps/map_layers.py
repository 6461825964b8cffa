"""The layers of a map page: an offline base map, the store's reference layers, the sites
drawn as polygons coloured by score class and the rest summarised per hexagon."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode
from jinja2 import Template

from omw_sites.i18n import format_number, gettext
from omw_sites.layers import NETWORKS, WEB_CRS, WORK_CRS, excluded_col, rank_col, score_col
from omw_sites.maps.assets import figure_of, make_offline
from omw_sites.maps.controls import LegendExtra
from omw_sites.maps.geojson import SITE_TOLERANCE_M, feature_collection, web_geometries
from omw_sites.maps.hexbins import hex_cells, hex_polygons, hex_summary
from omw_sites.maps.map_data import MapData
from omw_sites.maps.style import (
    EXCLUDED_COLOR,
    EXCLUDED_STROKE,
    FREIGHT_STATION_FILL,
    HEX_FILL_OPACITY,
    NETWORK_COLORS,
    REFERENCE_STYLES,
    SITE_FILL_OPACITY,
    CriterionField,
    ScoreClasses,
    darken,
    display_values,
)
from omw_sites.reports.formatting import coded

_FALLBACK_CENTRE = (52.2297, 21.0122)  # Warsaw, lat/lon
# basemap layers first (drawn below the sites), point layers last (drawn on top)
BELOW_SITES = ("gminy", "flood", "natura2000", "roads_main", "rail", "utilities")
ABOVE_SITES = ("substations", "stations", "junctions", "airports")


# --------------------------------------------------------------------------------------
# The base map
# --------------------------------------------------------------------------------------


def _bounds(sites: gpd.GeoDataFrame) -> list[list[float]] | None:
    if sites.empty:
        return None
    minx, miny, maxx, maxy = sites.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return None
    corners = gpd.GeoSeries([shapely.box(minx, miny, maxx, maxy)], crs=WORK_CRS)
    w, s, e, n = corners.to_crs(WEB_CRS).total_bounds
    return [[float(s), float(w)], [float(n), float(e)]]


class MetricScale(folium.MacroElement):
    """Leaflet's scale bar in metres and kilometres only (folium's also shows miles)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});"
        "{% endmacro %}"
    )


def base_map(sites: gpd.GeoDataFrame, title: str) -> tuple[folium.Map, list | None]:
    """An offline Leaflet map (no tiles, assets inlined) centred on ``sites``, and its bounds."""
    bounds = _bounds(sites)
    centre = (
        [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
        if bounds
        else list(_FALLBACK_CENTRE)
    )
    m = folium.Map(location=centre, zoom_start=10, tiles=None)
    MetricScale().add_to(m)
    figure_of(m).title = title
    make_offline(m)
    return m, bounds


# --------------------------------------------------------------------------------------
# Reference layers
# --------------------------------------------------------------------------------------


def _style_js(style: Mapping[str, Any]) -> JsCode:
    return JsCode(f"function () {{ return {json.dumps(style)}; }}")


# a reserved site keeps its score colour under a dashed black outline (legend: "reserved")
RESERVED_OUTLINE = {"color": "#000000", "weight": 2.5, "dashArray": "5 4"}


def _status_style_js(style: Mapping[str, Any]) -> JsCode:
    reserved = {**style, **RESERVED_OUTLINE}
    return JsCode(
        f"function (f) {{ return (f.properties.st === 'reserved') ? {json.dumps(reserved)}"
        f" : {json.dumps(style)}; }}"
    )


def _tooltip(name: str, fc: dict[str, Any], popup: bool, lang: str = "en") -> dict[str, Any]:
    spec = REFERENCE_STYLES[name]
    keys = fc["features"][0]["properties"].keys() if fc["features"] else ()
    pairs = [(c, gettext(lang, label)) for c, label in spec.fields if c in keys]
    if not pairs:
        return {}
    fields, aliases = [c for c, _ in pairs], [label for _, label in pairs]
    if popup:
        return {"popup": folium.GeoJsonPopup(fields=fields, aliases=aliases)}
    return {"tooltip": folium.GeoJsonTooltip(fields=fields, aliases=aliases, sticky=True)}


def add_reference(
    m: folium.Map, data: MapData, name: str, tiles: bool, lang: str = "en"
) -> LegendExtra | None:
    """Draw the reference layer ``name`` (if the store has it); its legend row or None;
    names and labels in ``lang``."""
    if name not in data.reference or name not in REFERENCE_STYLES:
        return None
    spec = REFERENCE_STYLES[name]
    fc = data.reference_geojson(name)
    if not fc["features"]:
        return None
    style = dict(spec.style)
    if name == "gminy" and tiles:
        style["fillOpacity"] = 0.0  # let the tiles show through
    extra: dict[str, Any] = _tooltip(name, fc, spec.popup, lang)
    if spec.radius is not None:
        # Leaflet draws a GeoJSON circle marker hollow unless ``fill`` is set, while the
        # legend shows the dot filled: both now show the same symbol
        style["radius"] = spec.radius
        style["fill"] = True
        extra["marker"] = folium.CircleMarker(radius=spec.radius, fill=True)
    if name == "utilities":
        _add_utilities(m, fc, style, lang)
        return None
    if name == "stations":
        freight = {**style, "fillColor": FREIGHT_STATION_FILL}
        js = JsCode(
            f"function (f) {{ return (f.properties.kind === 'freight') ? {json.dumps(freight)}"
            f" : {json.dumps(style)}; }}"
        )
    else:
        js = _style_js(style)
    own = gettext(lang, spec.label)
    label = f"{own} ({format_number(len(fc['features']), lang, 0)})" if spec.radius else own
    if name == "gminy":  # the gmina's name at its centre, always shown
        extra["on_each_feature"] = JsCode("omw.bindPlaceLabel")
    folium.GeoJson(fc, name=label, show=spec.show, style=js, **extra).add_to(m)
    if name == "gminy":
        return None
    shape = "dot" if spec.radius else "line" if name in ("roads_main", "rail") else "box"
    color = style.get("fillColor", style.get("color", "#999999"))
    if shape == "line":
        color = style["color"]
    label = own if spec.show else gettext(lang, "%(label)s (layer off)", label=own)
    return LegendExtra(color, label, shape, style.get("color", "rgba(0,0,0,0.35)"))


def _add_utilities(
    m: folium.Map, fc: dict[str, Any], style: dict[str, Any], lang: str = "en"
) -> None:
    by_network: dict[str, list[dict[str, Any]]] = {}
    for feat in fc["features"]:
        net = str(feat["properties"].get("network") or "other")
        by_network.setdefault(NETWORKS.get(net, net), []).append(feat)
    spec = REFERENCE_STYLES["utilities"]
    for net in sorted(by_network, key=lambda n: (n not in NETWORK_COLORS, n)):
        sub: dict[str, Any] = {"type": "FeatureCollection", "features": by_network[net]}
        color = NETWORK_COLORS.get(net, "#636363")
        trunk = any(f["properties"].get("trunk") for f in sub["features"])
        count = (
            gettext(lang, "trunk lines") if trunk else format_number(len(sub["features"]), lang, 0)
        )
        folium.GeoJson(
            sub,
            name=gettext(
                lang, "Utilities: %(net)s (%(count)s)", net=coded("network", net, lang), count=count
            ),
            show=spec.show,
            style=_style_js({**style, "color": color}),
            **_tooltip("utilities", sub, popup=False, lang=lang),
        ).add_to(m)


# --------------------------------------------------------------------------------------
# Sites: polygons by score class, the rest per hexagon
# --------------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


def _round(value: Any, decimals: int) -> float | None:
    return None if pd.isna(value) else round(float(value), decimals)


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
        "st": col("status"),
        "p": rounded("price_pln_m2", 2),
        "l": rounded("lease_pln_m2_year", 2),
        "j": rounded("time_junction_min", 1),
        "jn": col("junction_name"),
        "wf": rounded("workforce_30min", 0),
        "mh": rounded("max_height_m", 1),
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


def add_site_layers(
    m: folium.Map,
    eligible: gpd.GeoDataFrame,
    excluded: gpd.GeoDataFrame,
    classes: ScoreClasses,
    profile: str,
    fields: Sequence[CriterionField],
    lang: str = "en",
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
            name=gettext(lang, "Excluded sites (%(n)s)", n=format_number(len(excluded), lang, 0)),
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
            name=gettext(
                lang,
                "Score %(range)s (%(n)s sites)",
                range=classes.label(k, lang),
                n=format_number(idx.size, lang, 0),
            ),
            style=_status_style_js(style),
            on_each_feature=JsCode("omw.bindSite"),
        ).add_to(m)


def add_hex_layers(
    m: folium.Map,
    eligible: gpd.GeoDataFrame,
    excluded: gpd.GeoDataFrame,
    classes: ScoreClasses,
    profile: str,
    hex_size_m: float,
    lang: str = "en",
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
        by_class = JsCode(
            f"function (f) {{ return Object.assign({json.dumps(base)}, "
            f"{{fillColor: {json.dumps(list(classes.colors))}[f.properties.c]}}); }}"
        )
        folium.GeoJson(
            feature_collection(web_geometries(hexes.geometry, 0), props),
            name=gettext(
                lang,
                "Other eligible sites, per hexagon (%(n)s)",
                n=format_number(len(eligible), lang, 0),
            ),
            style=by_class,
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
            name=gettext(
                lang, "Excluded sites, per hexagon (%(n)s)", n=format_number(len(excluded), lang, 0)
            ),
            show=False,
            style=_style_js(style),
            on_each_feature=JsCode("omw.bindHex"),
        ).add_to(m)
