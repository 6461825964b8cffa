"""Compact GeoJSON for the web maps: simplified, reprojected, rounded; hexagon summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely

from omw_sites.layers import WEB_CRS, WORK_CRS

COORD_DECIMALS = 6  # ~0.1 m at 52°N
SITE_TOLERANCE_M = 5.0
REFERENCE_TOLERANCE_M = 15.0
_SQRT3 = math.sqrt(3.0)


def web_geometries(geoms: gpd.GeoSeries, tolerance_m: float = SITE_TOLERANCE_M) -> np.ndarray:
    """Simplify in the working CRS, reproject to lon/lat and round the coordinates.

    Parameters
    ----------
    geoms : geometries in EPSG:2180 (other CRSs are reprojected first)
    tolerance_m : Douglas–Peucker tolerance in metres (topology preserved, so small
        polygons never collapse); 0 disables simplification

    Returns
    -------
    numpy.ndarray of shapely geometries
        lon/lat (OGC:CRS84) with ``COORD_DECIMALS`` decimals.
    """
    if geoms.crs is None:
        msg = "geometries have no CRS; expected EPSG:2180"
        raise ValueError(msg)
    if geoms.crs.to_epsg() != 2180:
        geoms = geoms.to_crs(WORK_CRS)
    values = geoms.values
    if tolerance_m > 0:
        values = shapely.simplify(np.asarray(values), tolerance_m, preserve_topology=True)
    web = gpd.GeoSeries(values, crs=WORK_CRS).to_crs(WEB_CRS).values
    return shapely.transform(np.asarray(web), lambda c: np.round(c, COORD_DECIMALS))


def feature_collection(
    geoms: np.ndarray | Sequence[Any],
    properties: Sequence[dict[str, Any]],
    ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection; missing or empty geometries are skipped.

    Parameters
    ----------
    geoms : lon/lat shapely geometries (see ``web_geometries``)
    properties : one JSON-serialisable dict per geometry
    ids : optional feature ids
    """
    arr = np.asarray(geoms, dtype=object)
    ok = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    texts = shapely.to_geojson(arr[ok])
    features = []
    for i, text in zip(np.flatnonzero(ok), texts, strict=True):
        feature: dict[str, Any] = {"type": "Feature"}
        if ids is not None:
            feature["id"] = ids[i]
        feature["geometry"] = orjson.loads(text)
        feature["properties"] = properties[i]
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts (native Python values, NaN/NA as None)."""
    clean = df.astype(object).where(df.notna(), None)
    return clean.to_dict("records")


# --------------------------------------------------------------------------------------
# Hexagon summary of the sites not drawn as polygons
# --------------------------------------------------------------------------------------


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
