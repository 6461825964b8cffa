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

from omw_sites.reports.formatting import Formatter
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
PARCELS = {"fill": "none", "stroke": "#b10026", "stroke-width": "0.8", "stroke-dasharray": "3 2"}
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


def parcel_shapes(info: dict[str, Any], ids: list[str]) -> gpd.GeoDataFrame | None:
    """The outlines of the site's parcels (``ID_DZIALKI`` in ``ids``, EPSG:2180) from the
    run's raw EGiB layer, None when the run's raw folder or its parcel layer is gone (the
    store keeps sites, not parcels)."""
    import pyogrio

    from omw_sites.layers import RAW_BY_KEY

    spec = RAW_BY_KEY["parcels"]
    path = Path(str(info.get("raw_dir", ""))) / spec.path
    if not ids or not info.get("raw_dir") or not path.is_file():
        return None
    quoted = ", ".join("'" + i.replace("'", "''") + "'" for i in ids[:500])
    try:
        gdf = pyogrio.read_dataframe(
            path, layer=spec.layer, columns=["ID_DZIALKI"], where=f"ID_DZIALKI IN ({quoted})"
        )
    except Exception:  # noqa: BLE001 - a moved or changed raw folder must not break the sheet
        return None
    if gdf.empty or gdf.crs is None:
        return None
    return gdf.to_crs("EPSG:2180")


def _path(name: str, d: str, style: dict[str, str]) -> dict[str, str]:
    return {"class": name, "d": d, **style, "fill-rule": "evenodd"}


def _scale_bar(width_m: float, scale: float, fmt: Formatter) -> dict[str, Any]:
    """A round length near a quarter of the map's width, in pixels and as a label."""
    target = width_m / 4
    bar_m = 10 ** math.floor(math.log10(target))
    bar_m *= 5 if target / bar_m >= 5 else 2 if target / bar_m >= 2 else 1
    return {"px": bar_m * scale, "label": fmt.dist(bar_m), "y": MAP_H - 14}


def location_svg(
    store: str | Path,
    site: gpd.GeoDataFrame,
    fmt: Formatter,
    parcels: gpd.GeoDataFrame | None = None,
    numbers: dict[str, int] | None = None,
) -> tuple[Markup, list[str]]:
    """An inline SVG map of the site with neighbouring sites and reference layers, every
    line clipped to the frame, and the site's parcels numbered as in the sheet's parcel
    table (``numbers``: parcel ID → number). Returns the map and the layers drawn (for
    the map key)."""
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

    def clipped(geoms: Any) -> str:  # a line leaving the frame stops at its edge
        return svg_path_data(shapely.clip_by_rect(np.atleast_1d(geoms), *bbox), tf)

    paths, drawn = [], []
    for name, style in LOCATION_LAYERS.items():
        gdf = _read_near(store, name, bbox)
        if gdf is not None and len(gdf) and (d := clipped(gdf.geometry.to_numpy())):
            paths.append(_path(name, d, style))
            drawn.append(name)
    around = read_sites(store, bbox=bbox, columns=["site_id"])
    around = around[around["site_id"] != site["site_id"].iloc[0]]
    if len(around) and (d := clipped(around.geometry.to_numpy())):
        paths.append(_path("neighbours", d, NEIGHBOURS))
        drawn.append("neighbours")
    paths.append(_path("site", clipped(geom), SITE))
    labels = []
    if parcels is not None and len(parcels) and numbers:
        paths.append(_path("parcels", clipped(parcels.geometry.to_numpy()), PARCELS))
        spots = shapely.point_on_surface(parcels.geometry.to_numpy())
        xy = tf(np.column_stack([shapely.get_x(spots), shapely.get_y(spots)]))
        for pid, (x, y) in zip(parcels["ID_DZIALKI"], xy, strict=True):
            if pid in numbers and 0 <= x <= MAP_W and 0 <= y <= MAP_H:
                labels.append({"x": f"{x:.1f}", "y": f"{y:.1f}", "text": str(numbers[pid])})
        drawn.append("parcel")
    svg = render(
        "location_map.svg.j2",
        fmt.lang,
        width=MAP_W,
        height=MAP_H,
        label=fmt.t("Location"),
        paths=paths,
        labels=labels,
        scalebar=_scale_bar(2 * half_w, scale, fmt),
    )
    return svg, ["site", *drawn]


def overview_svg(store: str | Path, site: gpd.GeoDataFrame, lang: str, size: int = 220) -> Markup:
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
        lang,
        width=size,
        height=(maxy - miny) * scale,
        others=svg_path_data(simple[~mine], tf),
        own=svg_path_data(simple[mine], tf),
        x=px,
        y=py,
    )
