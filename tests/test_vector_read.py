"""Vector layers read through GDAL (pyogrio): what callers get from a whole read and from
batches, and the EGiB export reader on top of it."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from omw_sites.etl.egib import read_egib_vector
from omw_sites.etl.vector import iter_vector_file, read_vector_file


def _layer(tmp_path, n=40):
    """Squares, a bow-tie (invalid), a null and an empty geometry, text with Polish letters."""
    x, y = 637_000.0, 486_000.0  # Warsaw in EPSG:2180: readers refuse layers outside Poland
    geoms = list(shapely.box(x + np.arange(n) * 10.0, y, x + np.arange(n) * 10.0 + 8, y + 8))
    geoms[5] = shapely.Polygon([(x, y), (x + 10, y + 10), (x + 10, y), (x, y + 10)])
    geoms[11] = None
    geoms[17] = shapely.Polygon()
    gdf = gpd.GeoDataFrame(
        {
            "id_dzialki": [f"146505_8.0101.{k + 1}" for k in range(n)],
            "nazwa": ["Łódź-Śródmieście" if k % 3 else None for k in range(n)],
            "pole": np.linspace(0.1, 4.0, n),
            "wpis": pd.date_range("2021-03-01 08:30", periods=n, freq="37h"),
            "dzien": [dt.date(2020, 1, 1) + dt.timedelta(days=k) for k in range(n)],
        },
        geometry=geoms,
        crs=2180,
    )
    path = tmp_path / "p.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="dzialki")
    return path


def test_layer_read_in_epsg2180_with_upper_case_columns(tmp_path):
    path = _layer(tmp_path)
    read = read_vector_file(path)
    f = read.frame
    assert (read.format, read.layer, read.crs_in) == ("gpkg", "dzialki", "EPSG:2180")
    assert f.crs.to_epsg() == 2180 and len(f) == 40
    assert list(f.columns) == ["ID_DZIALKI", "NAZWA", "POLE", "WPIS", "DZIEN", "geometry"]
    assert f.loc[1, "NAZWA"] == "Łódź-Śródmieście" and pd.isna(f.loc[0, "NAZWA"])
    assert f["WPIS"].dtype.kind == "M" and f.loc[1, "WPIS"] == pd.Timestamp("2021-03-02 21:30")
    assert f.geometry.iloc[11] is None and f.geometry.iloc[17].is_empty
    assert f.geometry.iloc[2].bounds == (637_020.0, 486_000.0, 637_028.0, 486_008.0)


def test_batches_put_together_are_the_whole_read(tmp_path):
    path = _layer(tmp_path)
    whole = read_vector_file(path).frame
    parts = list(iter_vector_file(path, batch_rows=15))
    assert [len(p.frame) for p in parts] == [15, 15, 10]
    assert all(p.crs_in == "EPSG:2180" and p.layer == "dzialki" for p in parts)
    assert list(parts[2].frame.index) == list(range(30, 40))  # layer positions
    frame = pd.concat([p.frame for p in parts])
    assert list(frame.columns) == list(whole.columns)
    pd.testing.assert_series_equal(frame["ID_DZIALKI"], whole["ID_DZIALKI"])
    pd.testing.assert_series_equal(frame["POLE"], whole["POLE"])
    assert frame.geometry.to_wkb().tolist() == whole.geometry.to_wkb().tolist()


def test_reprojected_layer(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"a": [1, 2]}, geometry=shapely.box([21.0, 21.1], 52.0, [21.01, 21.11], 52.01), crs=4326
    )
    path = tmp_path / "w.gpkg"
    pyogrio.write_dataframe(gdf, path)
    read = read_vector_file(path)
    assert read.crs_in == "EPSG:4326" and read.frame.crs.to_epsg() == 2180
    # 21°E 52°N in EPSG:2180 (PL-1992): 637,222.6 E, 461,197.2 N
    x0, y0 = read.frame.geometry.iloc[0].bounds[:2]
    assert abs(x0 - 637_222.6) < 1 and abs(y0 - 461_197.2) < 1


def test_egib_export_repairs_and_quarantines(tmp_path):
    """Bow-tie repaired, null and empty geometries quarantined by parcel ID."""
    r = read_egib_vector(_layer(tmp_path))
    assert r.repaired == 1 and r.kept == 38 and r.read == 40
    assert set(r.quarantine["record"]) == {"146505_8.0101.12", "146505_8.0101.18"}
    assert set(r.quarantine["rule"]) == {"valid geometry"}


def test_shapefile_cut_id_column_is_found(tmp_path):
    """IDENTYFIKATOR cut to IDENTYFIKA by the DBF format is still the ID column."""
    gdf = gpd.GeoDataFrame(
        {"IDENTYFIKATOR": ["146505_8.0101.1", "146505_8.0101.2", "bad"]},
        geometry=shapely.box(
            [637_000, 637_010, 637_020], 486_000, [637_008, 637_018, 637_028], 486_008
        ),
        crs=2180,
    )
    path = tmp_path / "cut.shp"
    with pytest.warns(RuntimeWarning, match="IDENTYFIKA"):
        pyogrio.write_dataframe(gdf, path, encoding="UTF-8")
    r = read_egib_vector(path)
    assert r.kept == 2 and list(r.quarantine["record"]) == ["bad"]
