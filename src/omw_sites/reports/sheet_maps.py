"""The sheet's two maps as inline SVG (no tiles, no CDN): the site's surroundings and
where it lies in the region. Python projects the geometries to SVG path data; the
templates ``location_map.svg.j2`` and ``overview_map.svg.j2`` draw them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from markupsafe import Markup

from omw_sites.reports.sheet_labels import Formatter
from omw_sites.reports.templating import render

MAP_W, MAP_H = 560, 400  # px of the location map
PAD_M = 600.0  # metres of surroundings shown around the site

# reference layers of the location map, bottom first, with their SVG attributes
LOCATION_LAYERS: dict[str, dict[str, str]] = {
    "flood": {"fill": "#9ecae1", "fill-opacity": "0.45", "stroke": "none"},
    "natura2000": {
        "fill": "#a1d99b",
        "fill-opacity": "0.45",
        "stroke": "#31a354",
        "stroke-width": "0.6",
    },
    "roads_main": {"fill": "none", "stroke": "#e6550d", "stroke-width": "2.2"},
    "rail": {"fill": "none", "stroke": "#333", "stroke-width": "1.4", "stroke-dasharray": "6 3"},
    "utilities": {
        "fill": "none",
        "stroke": "#756bb1",
        "stroke-width": "0.8",
        "stroke-opacity": "0.7",
    },
}
NEIGHBOURS = {"fill": "#bbb", "fill-opacity": "0.5", "stroke": "#777", "stroke-width": "0.7"}
SITE = {"fill": "#e31a1c", "fill-opacity": "0.35", "stroke": "#b10026", "stroke-width": "2.5"}


def svg_path_data(geom: Any, tf: Any) -> str:
    """SVG path data of a (multi)polygon or (multi)linestring after ``tf``."""
    parts = []
    for part in shapely.get_parts(np.atleast_1d(geom)):
        if part is None or part.is_empty:
            continue
        if part.geom_type == "Polygon":
            rings = [part.exterior, *part.interiors]
            close = " Z"
        elif part.geom_type in ("LineString", "LinearRing"):
            rings, close = [part], ""
        else:
            continue
        for ring in rings:
            xy = tf(np.asarray(ring.coords)[:, :2])
            pts = " L".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(f"M{pts}{close}")
    return " ".join(parts)


def _read_near(store: str | Path, name: str, bbox: tuple[float, ...]) -> gpd.GeoDataFrame | None:
    from omw_sites.store import list_layers, read_layer

    if name not in list_layers(store):
        return None
    try:
        return read_layer(store, name, bbox=bbox)
    except Exception:  # noqa: BLE001 - a missing context layer must not break the sheet
        return None


def _path(name: str, d: str, style: dict[str, str]) -> dict[str, str]:
    return {"class": name, "d": d, **style, "fill-rule": "evenodd"}


def _scale_bar(width_m: float, scale: float, fmt: Formatter) -> dict[str, Any]:
    """A round length near a quarter of the map's width, in pixels and as a label."""
    target = width_m / 4
    bar_m = 10 ** math.floor(math.log10(target))
    bar_m *= 5 if target / bar_m >= 5 else 2 if target / bar_m >= 2 else 1
    return {"px": bar_m * scale, "label": fmt.dist(bar_m), "y": MAP_H - 14}


def location_svg(store: str | Path, site: gpd.GeoDataFrame, fmt: Formatter) -> Markup:
    """An inline SVG map of the site with neighbouring sites and reference layers."""
    from omw_sites.store import read_sites

    geom = site.geometry.iloc[0]
    minx, miny, maxx, maxy = geom.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = max(maxx - minx, (maxy - miny) * MAP_W / MAP_H) / 2 + PAD_M
    half_w, half_h = half, half * MAP_H / MAP_W
    bbox = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    scale = MAP_W / (2 * half_w)

    def tf(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(((xy[:, 0] - bbox[0]) * scale, (bbox[3] - xy[:, 1]) * scale))

    paths = []
    for name, style in LOCATION_LAYERS.items():
        gdf = _read_near(store, name, bbox)
        if gdf is not None and len(gdf):
            paths.append(_path(name, svg_path_data(gdf.geometry.to_numpy(), tf), style))
    around = read_sites(store, bbox=bbox, columns=["site_id"])
    around = around[around["site_id"] != site["site_id"].iloc[0]]
    if len(around):
        paths.append(_path("neighbours", svg_path_data(around.geometry.to_numpy(), tf), NEIGHBOURS))
    paths.append(_path("site", svg_path_data(geom, tf), SITE))
    return render(
        "location_map.svg.j2",
        width=MAP_W,
        height=MAP_H,
        label=fmt.t("location"),
        paths=paths,
        scalebar=_scale_bar(2 * half_w, scale, fmt),
    )


def overview_svg(store: str | Path, site: gpd.GeoDataFrame, size: int = 220) -> Markup:
    """A small SVG of the region's gminy with the site marked (empty if no gminy layer)."""
    from omw_sites.store import list_layers, read_layer

    if "gminy" not in list_layers(store):
        return Markup("")
    gminy = read_layer(store, "gminy")
    if gminy.empty:
        return Markup("")
    minx, miny, maxx, maxy = gminy.total_bounds
    scale = size / max(maxx - minx, maxy - miny)

    def tf(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(((xy[:, 0] - minx) * scale, (maxy - xy[:, 1]) * scale))

    simple = shapely.simplify(gminy.geometry.to_numpy(), 1.0 / scale)
    mine = gminy["teryt"].astype(str).to_numpy() == str(site["teryt"].iloc[0])
    c = site.geometry.iloc[0].centroid
    px, py = tf(np.array([[c.x, c.y]]))[0]
    return render(
        "overview_map.svg.j2",
        width=size,
        height=(maxy - miny) * scale,
        others=svg_path_data(simple[~mine], tf),
        own=svg_path_data(simple[mine], tf),
        x=px,
        y=py,
    )
