"""Criteria primitives at their edges: empty targets, cells under a tiny polygon, zoning
slivers. The criteria themselves are checked against hand-worked answers in
test_criteria_known.py."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from shapely import box

from omw_sites.criteria.geometry import nearest_distance
from omw_sites.criteria.terrain import slope_percent, zonal_slope


def test_nearest_distance_edges_and_empty():
    geoms = np.array([box(0, 0, 10, 10), box(100, 0, 110, 10)])
    pts = np.array([shapely.Point(5, 5), shapely.Point(130, 5)])
    d, i = nearest_distance(geoms, pts)
    assert d.tolist() == [0.0, 20.0] and i.tolist() == [0, 1]
    d, i = nearest_distance(geoms, np.array([], dtype=object))
    assert np.isnan(d).all() and (i == -1).all()  # not measured: NaN, never inf


def test_slope_of_a_plane(tmp_path):
    # z rises 5 m per 100 m eastwards → 5 % everywhere
    x = np.arange(50) * 10.0
    dem = np.tile(x * 0.05, (40, 1)).astype("float32")
    assert np.nanmedian(slope_percent(dem, 10, -10)) == pytest.approx(5.0)
    path = tmp_path / "dem.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=50,
        height=40,
        count=1,
        dtype="float32",
        crs="EPSG:2180",
        transform=from_origin(600000, 500400, 10, 10),
        nodata=-9999,
    ) as dst:
        dst.write(dem, 1)
    geoms = np.array([box(600100, 500100, 600300, 500300), box(600201, 500201, 600203, 500203)])
    mean, mx = zonal_slope(path, geoms)
    assert mean.tolist() == pytest.approx([5.0, 5.0], abs=1e-6)
    assert mx.tolist() == pytest.approx([5.0, 5.0], abs=1e-6)


def test_class_shares_text_and_slivers():
    import geopandas as gpd

    from omw_sites.criteria.geometry import class_shares

    zones = gpd.GeoDataFrame(
        {"c": ["P/U", "ZL", "KDZ"]},
        geometry=[box(0, 0, 8, 10), box(8, 0, 10, 10), box(9.999, 0, 20, 10)],
    )
    geoms = np.array([box(0, 0, 10, 10), box(50, 50, 60, 60)])
    out = class_shares(geoms, shapely.area(geoms), zones, "c")
    assert out.tolist() == ["P/U 0.80; ZL 0.20", ""]
