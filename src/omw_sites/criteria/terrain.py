"""Terrain: slope (%) from the DEM and zonal statistics per site."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize

from omw_sites.etl.crs import resolve_epsg


def slope_percent(dem: np.ndarray, cell_x: float, cell_y: float) -> np.ndarray:
    """Slope in percent (rise / run × 100) by central differences; NaN where no data."""
    dzdy, dzdx = np.gradient(dem, abs(cell_y), abs(cell_x))
    return 100.0 * np.hypot(dzdx, dzdy)


def zonal_slope(dem_path: str | Path, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and maximum slope (%) of each polygon, from a DEM in EPSG:2180.

    Cells whose centre falls in the polygon are averaged; polygons smaller than a cell
    take the value of the cell under their representative point. NaN outside the DEM.
    """
    with rasterio.open(dem_path) as src:
        if resolve_epsg(src.crs.to_wkt()) != 2180:
            msg = f"{dem_path}: the DEM must be in EPSG:2180 (found {src.crs}); reproject it first"
            raise ValueError(msg)
        dem = src.read(1, masked=True).astype("float64").filled(np.nan)
        transform = src.transform
        shape = src.shape
    slope = slope_percent(dem, transform.a, transform.e)
    n = len(geoms)
    labels = rasterize(
        zip(geoms, np.arange(1, n + 1), strict=True),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )
    flat_l = labels.ravel()
    flat_s = slope.ravel()
    ok = (flat_l > 0) & ~np.isnan(flat_s)
    counts = np.bincount(flat_l[ok], minlength=n + 1)[1:]
    sums = np.bincount(flat_l[ok], weights=flat_s[ok], minlength=n + 1)[1:]
    maxs = np.full(n + 1, -np.inf)
    np.maximum.at(maxs, flat_l[ok], flat_s[ok])
    maxs = maxs[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(counts > 0, sums / counts, np.nan)
    small = counts == 0
    if small.any():
        pts = shapely.point_on_surface(geoms[small])
        x, y = shapely.get_x(pts), shapely.get_y(pts)
        rows, cols = rasterio.transform.rowcol(transform, x, y)
        rows, cols = np.asarray(rows), np.asarray(cols)
        inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
        vals = np.full(small.sum(), np.nan)
        vals[inside] = slope[rows[inside], cols[inside]]
        mean[small] = vals
        maxs[small] = vals
    maxs[np.isinf(maxs)] = np.nan
    return mean, maxs
