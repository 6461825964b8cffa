"""Compact GeoJSON for the web maps: simplified, reprojected, rounded coordinates."""

from __future__ import annotations

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
    for i, text in zip(np.flatnonzero(ok).tolist(), texts, strict=True):
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
