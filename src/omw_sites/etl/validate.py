"""Geometry validation: repair what can be repaired, quarantine the rest with a reason."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

_POLYGONAL = ("Polygon", "MultiPolygon")


def repair_geometries(
    gdf: gpd.GeoDataFrame,
    layer: str,
    file: str,
    id_column: str | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, int]:
    """Make geometries valid; quarantine those that stay empty or of the wrong kind.

    Invalid polygons (self-intersections, bow-ties, duplicate points, wrong ring order)
    are repaired with ``shapely.make_valid(method="structure")``, which keeps the area
    the ring encloses; the polygonal part of the result is kept.

    Returns
    -------
    (accepted frame, quarantine rows [file, layer, record, rule, detail], repaired count)
    """
    geoms = gdf.geometry.array
    arr = np.asarray(geoms)
    missing = shapely.is_missing(arr) | shapely.is_empty(arr)
    valid = shapely.is_valid(arr) | missing
    invalid_idx = np.flatnonzero(~valid)
    reasons = pd.Series("", index=gdf.index, dtype=object)
    reasons[missing] = "empty or missing geometry"
    repaired = 0
    if invalid_idx.size:
        why = shapely.is_valid_reason(arr[invalid_idx])
        fixed = shapely.make_valid(arr[invalid_idx], method="structure", keep_collapsed=False)
        polygonal = gdf.geom_type.iloc[invalid_idx].isin(_POLYGONAL).to_numpy()
        # keep only the polygonal part of the repair of a polygon layer
        fixed = np.where(polygonal, _polygonal_part(fixed), fixed)
        bad = shapely.is_empty(fixed) | ~shapely.is_valid(fixed)
        arr = arr.copy()
        arr[invalid_idx] = fixed
        reasons.iloc[invalid_idx[bad]] = [
            f"invalid geometry, not repairable: {w}" for w in why[bad]
        ]
        repaired = int((~bad).sum())
    keep = (reasons == "").to_numpy()
    out = gdf.copy(deep=False)
    if invalid_idx.size:
        out = out.set_geometry(gpd.GeoSeries(arr, index=gdf.index, crs=gdf.crs))
    refused = ~keep
    if id_column and id_column in gdf:
        ids = gdf[id_column][refused].astype(str).to_numpy()
    else:
        ids = gdf.index[refused].astype(str).to_numpy()
    quarantine = pd.DataFrame(
        {
            "file": file,
            "layer": layer,
            "record": ids,
            "rule": "valid geometry",
            "detail": reasons[refused].to_numpy(),
        }
    )
    return (out if keep.all() else out[keep]), quarantine, repaired


def _polygonal_part(geoms: np.ndarray) -> np.ndarray:
    """Polygonal part of each geometry (collections from make_valid keep their polygons)."""
    out = geoms.copy()
    types = shapely.get_type_id(geoms)
    coll = np.flatnonzero(types == 7)  # GeometryCollection
    for i in coll:  # rare: only repaired records that collapsed into mixed parts
        parts = shapely.get_parts(geoms[i])
        polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        out[i] = shapely.union_all(polys) if len(polys) else shapely.Polygon()
    return out
