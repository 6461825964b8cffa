"""The site page's map: the site and its surroundings as inline SVG, drawn from the API's
in-memory reference layers (no tiles, no script: it prints in the PDF as on screen).

Every feature is clipped to the frame (nothing spills over the edge); each symbol has a
CSS class, and the page's key shows the same classes, so the key always matches.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer

from omw_sites.api.catalog import Snapshot
from omw_sites.api.output_crs import CRS84_URI
from omw_sites.layers import SITES, WEB_CRS, WORK_CRS

WIDTH, HEIGHT = 640, 420  # px
MIN_SPAN_M = 2000.0  # the narrowest frame: a small site still shows its neighbourhood
MARGIN = 3.0  # frame = site extent × this (at least MIN_SPAN_M)
NICE_BARS_M = (50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000)
# the reference layers drawn, bottom to top, with the CSS class of their symbols
AREAS = (("flood", "flood"), ("natura2000", "natura"))
LINES = (("roads_main", "road"), ("rail", "rail"), ("utilities", "util"))
POINTS = (("junctions", "junction"), ("stations", "station"), ("airports", "airport"))
NETWORKS = ("water", "sewer", "power", "gas", "heat", "telecom")


@dataclass(frozen=True)
class Frame:
    """The ground box drawn (EPSG:2180 metres) and its scale to pixels."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    @property
    def scale(self) -> float:
        return WIDTH / (self.xmax - self.xmin)

    def path(self, geom: Any) -> str:
        """SVG path data of a (clipped) geometry, in pixels, y down."""
        parts: list[str] = []
        for g in getattr(geom, "geoms", [geom]):
            if g.is_empty:
                continue
            if g.geom_type == "Polygon":
                for ring in (g.exterior, *g.interiors):
                    parts.append(self._ring(np.asarray(ring.coords), close=True))
            elif g.geom_type == "LineString":
                parts.append(self._ring(np.asarray(g.coords), close=False))
            elif g.geom_type in ("MultiPolygon", "MultiLineString", "GeometryCollection"):
                parts.append(self.path(g))
        return " ".join(p for p in parts if p)

    def _ring(self, xy: np.ndarray, close: bool) -> str:
        if len(xy) < 2:
            return ""
        px = self.pixels(xy)
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in px.tolist())
        return f"M{pts}{'Z' if close else ''}"

    def pixels(self, xy: np.ndarray) -> np.ndarray:
        s = self.scale
        return np.column_stack(((xy[:, 0] - self.xmin) * s, (self.ymax - xy[:, 1]) * s))


def frame_for(geom: Any) -> Frame:
    """A box around ``geom`` with the map's aspect ratio, ``MARGIN`` times its extent."""
    minx, miny, maxx, maxy = geom.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half_w = max((maxx - minx) * MARGIN, (maxy - miny) * MARGIN * WIDTH / HEIGHT, MIN_SPAN_M) / 2
    half_h = half_w * HEIGHT / WIDTH
    return Frame(cx - half_w, cy - half_h, cx + half_w, cy + half_h)


@functools.cache
def _to_lonlat() -> Transformer:
    return Transformer.from_crs(WORK_CRS, WEB_CRS, always_xy=True)


def _rows_in(snap: Snapshot, name: str, frame: Frame) -> np.ndarray:
    """Rows of layer ``name`` whose geometry may meet the frame (the CRS84 tree's hits)."""
    layer = snap.layers.get(name)
    if layer is None or not len(layer):
        return np.empty(0, dtype=np.intp)
    xs = [frame.xmin, frame.xmax, frame.xmin, frame.xmax]
    ys = [frame.ymin, frame.ymin, frame.ymax, frame.ymax]
    lon, lat = _to_lonlat().transform(xs, ys)
    box = shapely.box(min(lon), min(lat), max(lon), max(lat))
    return np.sort(layer.views[CRS84_URI].tree.query(box))


def _clipped(snap: Snapshot, name: str, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """(rows, geometries clipped to the frame) of layer ``name``, the empty ones left out."""
    rows = _rows_in(snap, name, frame)
    if not len(rows):
        return rows, np.empty(0, dtype=object)
    geoms = snap.layers[name].storage_geometries[rows]
    keep = ~shapely.is_missing(geoms)
    rows, geoms = rows[keep], geoms[keep]
    clipped = shapely.clip_by_rect(geoms, frame.xmin, frame.ymin, frame.xmax, frame.ymax)
    keep = ~shapely.is_empty(clipped)
    return rows[keep], clipped[keep]


def scale_bar(frame: Frame) -> dict[str, Any]:
    """A round length near a fifth of the map's width: metres and its width in pixels."""
    target = (frame.xmax - frame.xmin) / 5
    metres = min(NICE_BARS_M, key=lambda m: abs(math.log(m / target)))
    return {"metres": metres, "px": round(metres * frame.scale, 1)}


def site_map(snap: Snapshot, row: int) -> dict[str, Any]:
    """What the template draws for the site at ``row``: the frame size, paths per class,
    labelled points, the scale bar and which key entries are present."""
    geom = snap.layers[SITES].storage_geometries[row]
    frame = frame_for(geom)
    shapes: list[dict[str, str]] = []
    present: set[str] = set()
    for name, cls in AREAS:
        for g in _clipped(snap, name, frame)[1]:
            shapes.append({"cls": cls, "d": frame.path(g)})
            present.add(cls)
    gminy_rows, gminy = _clipped(snap, "gminy", frame)
    if len(gminy_rows):  # the boundary, not the area (nor the frame's edge across it)
        whole = snap.layers["gminy"].storage_geometries[gminy_rows]
        lines = shapely.clip_by_rect(
            shapely.boundary(whole), frame.xmin, frame.ymin, frame.xmax, frame.ymax
        )
        for g in lines[~shapely.is_empty(lines)]:
            shapes.append({"cls": "gmina", "d": frame.path(g)})
            present.add("gmina")
    for name, cls in LINES:
        rows, geoms = _clipped(snap, name, frame)
        table = snap.layers[name].table
        for r, g in zip(rows.tolist(), geoms.tolist(), strict=True):
            sub = cls
            if name == "utilities":
                net = str(table["network"].iat[r]) if "network" in table.columns else ""
                planned = "status" in table.columns and str(table["status"].iat[r]) == "planned"
                sub = f"util {net if net in NETWORKS else 'other'}"
                sub += " planned" if planned else ""
                present.add(f"util-{net}")
            else:
                present.add(cls)
            shapes.append({"cls": sub, "d": frame.path(g)})
    others_rows, others = _clipped(snap, SITES, frame)
    for r, g in zip(others_rows.tolist(), others.tolist(), strict=True):
        if r != row:
            shapes.append({"cls": "other-site", "d": frame.path(g)})
            present.add("other-site")
    site_clip = shapely.clip_by_rect(geom, frame.xmin, frame.ymin, frame.xmax, frame.ymax)
    shapes.append({"cls": "site", "d": frame.path(site_clip)})
    points = []
    for name, cls in POINTS:
        rows, geoms = _clipped(snap, name, frame)
        table = snap.layers[name].table
        for r, g in zip(rows.tolist(), geoms.tolist(), strict=True):
            x, y = frame.pixels(np.array([[g.x, g.y]]))[0].tolist()
            label = str(table["name"].iat[r]) if "name" in table.columns else ""
            kind = cls
            if name == "stations" and str(table.get("kind", [""] * len(table))[r]) == "freight":
                kind = "freight"
            points.append({"cls": kind, "x": round(x, 1), "y": round(y, 1), "label": label})
            present.add(kind)
    labels = _gmina_labels(snap, gminy_rows, gminy, frame)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "shapes": shapes,
        "points": points,
        "labels": labels,
        "bar": scale_bar(frame),
        "present": present,
    }


def _gmina_labels(
    snap: Snapshot, rows: np.ndarray, geoms: np.ndarray, frame: Frame
) -> list[dict[str, Any]]:
    """A gmina's name at a point inside its part of the frame (the larger parts only)."""
    table = snap.layers["gminy"].table if "gminy" in snap.layers else None
    out = []
    area = (frame.xmax - frame.xmin) * (frame.ymax - frame.ymin)
    for r, g in zip(rows.tolist(), geoms.tolist(), strict=True):
        if table is None or "name" not in table.columns or g.area < 0.08 * area:
            continue
        p = g.representative_point()
        x, y = frame.pixels(np.array([[p.x, p.y]]))[0].tolist()
        out.append({"x": round(x, 1), "y": round(y, 1), "text": str(table["name"].iat[r])})
    return out
