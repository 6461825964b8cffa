"""The part of a raw folder one partition of a partitioned run reads.

A partition (a powiat) reads its parcels and the layers around them, not the whole
folder: :func:`reading` sets a :class:`Window` (EPSG:2180 bounds) for the reads made
inside it, and :func:`layer` the part of it one canonical layer is read within.
GDAL reads a vector layer only within the window (``pyogrio`` ``bbox``, through the
GeoPackage's spatial index), and :func:`clip` keeps, of a layer read whole (GML), the
features whose extent meets the window — so either way a layer holds the same
features. Small point layers whose nearest feature may lie far away (junctions,
stations, airports, substations, gmina boundaries, the census grid) are read whole
(:data:`WHOLE_LAYERS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio
from pyproj import CRS, Transformer

from omw_sites.layers import WORK_CRS

Bounds = tuple[float, float, float, float]  # minx, miny, maxx, maxy in EPSG:2180

# canonical layers a window never limits (and the BDOT10k classes stations and airports
# are derived from)
WHOLE_LAYERS = frozenset(
    {
        "gminy",
        "junctions",
        "stations",
        "airports",
        "substations",
        "population",
        "bdot_complexes",
        "bdot_points",
    }
)

# layers a partition's nearest-feature distances are measured to: read within the far
# window; the others (overlaps, parcels, zoning, the terrain) only around the parcels
FAR_LAYERS = frozenset({"utilities", "power_lines", "roads"})


@dataclass(frozen=True)
class Window:
    """What a partition reads: ``near`` (its parcels' extent and a margin for the sites
    assembled across its edge) for most layers, ``far`` for :data:`FAR_LAYERS`."""

    near: Bounds
    far: Bounds

    def bounds_for(self, key: str) -> Bounds | None:
        if key in WHOLE_LAYERS:
            return None
        return self.far if key in FAR_LAYERS else self.near


_WINDOW: ContextVar[Window | None] = ContextVar("omw_read_window", default=None)
_ACTIVE: ContextVar[Bounds | None] = ContextVar("omw_read_bounds", default=None)


@contextmanager
def reading(win: Window | None) -> Iterator[None]:
    """Reads inside are limited to ``win`` (None: the whole folder)."""
    token = _WINDOW.set(win)
    try:
        yield
    finally:
        _WINDOW.reset(token)


@contextmanager
def layer(key: str) -> Iterator[None]:
    """Reads inside are of canonical layer ``key``: limited to its part of the window."""
    win = _WINDOW.get()
    token = _ACTIVE.set(win.bounds_for(key) if win is not None else None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def limited() -> bool:
    """Whether reads are limited to a window (a partition's)."""
    return _WINDOW.get() is not None


def misses(extent: Bounds | None) -> bool:
    """Whether a layer of this extent (EPSG:2180) has nothing within the current
    bounds (False when not known, or reads are not limited)."""
    bounds = current()
    if bounds is None or extent is None:
        return False
    x0, y0, x1, y1 = extent
    return x0 > bounds[2] or x1 < bounds[0] or y0 > bounds[3] or y1 < bounds[1]


def current() -> Bounds | None:
    """The bounds the read being made is limited to, or None."""
    return _ACTIVE.get()


def layer_bbox(path: Path, layer: str, crs: object | None = None) -> Bounds | None:
    """The current bounds in the layer's own CRS (for GDAL's spatial filter), or None
    when the read is not limited or the layer has no CRS (then it is read whole and
    clipped)."""
    bounds = current()
    if bounds is None:
        return None
    if crs is None:
        crs = pyogrio.read_info(path, layer=layer).get("crs")
    if not crs:
        return None
    src = CRS.from_user_input(crs)
    if src.equals(CRS.from_user_input(WORK_CRS)):
        return bounds
    # densified edges: the window's outline bends in another projection
    t = Transformer.from_crs(WORK_CRS, src, always_xy=True)
    return t.transform_bounds(*bounds, densify_pts=21)


def clip(frame: gpd.GeoDataFrame | None, key: str) -> gpd.GeoDataFrame | None:
    """The features of ``frame`` (EPSG:2180, canonical layer ``key``) whose extent meets
    its part of the window, in their order; ``frame`` itself when reads are not
    limited."""
    win = _WINDOW.get()
    bounds = win.bounds_for(key) if win is not None else None
    if bounds is None or frame is None or not len(frame):
        return frame
    minx, miny, maxx, maxy = bounds
    b = frame.geometry.bounds.to_numpy()
    keep = (b[:, 0] <= maxx) & (b[:, 2] >= minx) & (b[:, 1] <= maxy) & (b[:, 3] >= miny)
    if keep.all():
        return frame
    return frame[keep].reset_index(drop=True)
