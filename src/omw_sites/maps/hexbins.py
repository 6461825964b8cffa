"""Hexagon summary of the sites a map does not draw as polygons (pointy-top, axial)."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from omw_sites.layers import WORK_CRS

_SQRT3 = math.sqrt(3.0)


def hex_cells(x: np.ndarray, y: np.ndarray, size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Axial coordinates (q, r) of the pointy-top hexagon holding each point.

    Parameters
    ----------
    x, y : point coordinates in metres (EPSG:2180)
    size_m : hexagon circumradius in metres (centre to corner)
    """
    if size_m <= 0:
        msg = f"hexagon size must be positive, got {size_m} m"
        raise ValueError(msg)
    qf = (_SQRT3 / 3.0 * x - y / 3.0) / size_m
    rf = (2.0 / 3.0 * y) / size_m
    sf = -qf - rf
    q, r, s = np.round(qf), np.round(rf), np.round(sf)
    dq, dr, ds = np.abs(q - qf), np.abs(r - rf), np.abs(s - sf)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    return q.astype(np.int64), r.astype(np.int64)


def hex_polygons(q: np.ndarray, r: np.ndarray, size_m: float) -> np.ndarray:
    """Pointy-top hexagons (EPSG:2180 shapely polygons) for axial coordinates (q, r)."""
    cx = size_m * _SQRT3 * (q + r / 2.0)
    cy = size_m * 1.5 * r
    angles = np.deg2rad(30.0 + 60.0 * np.arange(7))  # closed ring
    xs = cx[:, None] + size_m * np.cos(angles)[None, :]
    ys = cy[:, None] + size_m * np.sin(angles)[None, :]
    return shapely.polygons(np.stack([xs, ys], axis=-1))


def hex_summary(
    sites: gpd.GeoDataFrame,
    size_m: float,
    agg: dict[str, tuple[str, str]],
) -> gpd.GeoDataFrame:
    """Group sites by the hexagon holding their centroid and aggregate columns.

    Parameters
    ----------
    sites : sites in EPSG:2180
    size_m : hexagon circumradius in metres
    agg : output column -> (input column, pandas aggregation), e.g.
        ``{"best_rank": ("rank", "min")}``; a count ``n`` is always added

    Returns
    -------
    geopandas.GeoDataFrame
        One row per occupied hexagon (EPSG:2180) with axial ``hex_q``, ``hex_r``, the count
        ``n`` and the ``agg`` columns.
    """
    if sites.empty:
        cols = ["hex_q", "hex_r", "n", *agg]
        return gpd.GeoDataFrame(columns=cols, geometry=[], crs=WORK_CRS)
    centroids = shapely.centroid(np.asarray(sites.geometry.values))
    q, r = hex_cells(shapely.get_x(centroids), shapely.get_y(centroids), size_m)
    frame = pd.DataFrame({"hex_q": q, "hex_r": r})
    grouped = frame.groupby(["hex_q", "hex_r"], sort=True)
    out = grouped.size().rename("n").to_frame()
    for name, (col, how) in agg.items():
        out[name] = (
            pd.Series(sites[col].to_numpy(), index=frame.index)
            .groupby([frame["hex_q"], frame["hex_r"]], sort=True)
            .agg(how)
        )
    out = out.reset_index()
    geom = hex_polygons(out["hex_q"].to_numpy(), out["hex_r"].to_numpy(), size_m)
    return gpd.GeoDataFrame(out, geometry=geom, crs=WORK_CRS)
