"""A first load of the GeoPackage store (GDAL writes a new file, renamed over the old
one): every value reads back as given, the file is a valid GeoPackage whose spatial index
answers window queries exactly, and later ``sqlite3`` writes keep index and counts.
(Crash safety: tests/test_inventory_kill.py; file mode, versions and refused loads:
tests/test_store_backends.py.)"""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from omw_sites.layers import WORK_CRS
from omw_sites.store.gpkg_backend import GeoPackageBackend
from omw_sites.store.gpkg_geometry import gpkg_blobs, register_functions

POLISH = "Zażółć gęślą jaźń ąęłńóśźż"


def _frame(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = 600_000 + rng.uniform(0, 50_000, n)
    y = 450_000 + rng.uniform(0, 50_000, n)
    w = rng.uniform(10, 300, n)
    geoms = shapely.multipolygons(shapely.box(x, y, x + w, y + w).reshape(-1, 1))
    geoms[3] = shapely.from_wkt("MULTIPOLYGON EMPTY")
    geoms[5] = None
    text = rng.choice(["P", "U", "", POLISH, 'it\'s "quoted"\nline 2'], n)
    text = pd.Series(text, dtype="str")
    text[7] = None
    floats = rng.uniform(-1e6, 1e6, n).round(3)
    floats[[1, 8]] = np.nan
    nullable_int = pd.array(rng.integers(-(2**62), 2**62, n), dtype="Int64")
    nullable_int[4] = pd.NA
    nullable_bool = pd.array(rng.uniform(0, 1, n) < 0.5, dtype="boolean")
    nullable_bool[6] = pd.NA
    return gpd.GeoDataFrame(
        {
            "site_id": pd.Series(
                np.char.add("S", np.char.mod("%010x", rng.permutation(n))), dtype="str"
            ),
            "label": text,
            "value": floats,
            "count": rng.integers(-5, 10**12, n),
            "flag": rng.uniform(0, 1, n) < 0.3,
            "maybe_count": nullable_int,
            "maybe_flag": nullable_bool,
            "nothing_text": pd.Series([None] * n, dtype="str"),
            "nothing_float": np.full(n, np.nan),
        },
        geometry=geoms,
        crs=WORK_CRS,
    )


def _sql(path, query, *params):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    frame = _frame(3_000)
    path = tmp_path_factory.mktemp("first-load") / "store.gpkg"

    def derive(rows):
        return {"twice": rows["count"].to_numpy() * 2}

    GeoPackageBackend(path).bulk_load(frame, {}, derive=derive)
    return frame, path


def test_values_read_back_as_given(loaded):
    frame, path = loaded
    got = pyogrio.read_dataframe(path, layer="sites", use_arrow=True, fid_as_index=True)
    assert list(got.index) == list(range(1, len(frame) + 1))  # fid = row + 1
    got = got.reset_index(drop=True)
    for col in ("site_id", "label", "value", "count", "flag", "maybe_flag"):
        want = frame[col].astype(object).where(frame[col].notna(), None).tolist()
        have = got[col].astype(object).where(got[col].notna(), None).tolist()
        assert have == want, col
    # 64-bit integers with NULLs are stored exactly (GDAL's reader gives them as floats)
    stored = [v for (v,) in _sql(path, "SELECT maybe_count FROM sites ORDER BY fid")]
    assert (
        stored
        == frame["maybe_count"].astype(object).where(frame["maybe_count"].notna(), None).tolist()
    )
    assert got["nothing_text"].isna().all() and got["nothing_float"].isna().all()
    assert (got["twice"] == frame["count"] * 2).all()  # the derived column
    same = shapely.equals_exact(got.geometry.to_numpy(), frame.geometry.to_numpy(), tolerance=0)
    assert same.sum() == len(frame) - 1  # None ≠ None
    assert got.geometry.isna().sum() == 1 and shapely.is_empty(got.geometry[3])


def test_the_file_is_a_valid_geopackage_with_its_metadata(loaded):
    frame, path = loaded
    assert _sql(path, "PRAGMA integrity_check") == [("ok",)]
    info = pyogrio.read_info(path, layer="sites")
    assert info["features"] == len(frame) and info["geometry_type"] == "MultiPolygon"
    count = "SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = 'sites'"
    assert _sql(path, count) == [(len(frame),)]
    extent = "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 'sites'"
    assert np.allclose(_sql(path, extent)[0], frame.total_bounds)


def test_window_queries_find_exactly_the_intersecting_sites(loaded):
    frame, path = loaded
    assert _sql(path, "SELECT rtreecheck('rtree_sites_geom')") == [("ok",)]
    assert _sql(path, "SELECT count(*) FROM rtree_sites_geom") == [(len(frame) - 2,)]
    rng = np.random.default_rng(3)
    geoms = frame.geometry.to_numpy()
    for _ in range(20):
        x, y = rng.uniform(600_000, 650_000), rng.uniform(450_000, 500_000)
        window = (x, y, x + rng.uniform(100, 8_000), y + rng.uniform(100, 8_000))
        got = pyogrio.read_dataframe(path, layer="sites", bbox=window, fid_as_index=True)
        hits = shapely.intersects(geoms, shapely.box(*window))
        assert set(got.index - 1) == set(np.flatnonzero(hits & ~shapely.is_empty(geoms)))


def test_updates_through_sqlite_keep_the_index_and_counts(loaded, tmp_path):
    _, path = loaded
    copy = tmp_path / "copy.gpkg"
    copy.write_bytes(path.read_bytes())
    conn = sqlite3.connect(copy)
    register_functions(conn)
    with conn:
        moved, empty = gpkg_blobs(
            np.array([shapely.multipolygons([shapely.box(0, 0, 10, 10)]),
                      shapely.from_wkt("MULTIPOLYGON EMPTY")], dtype=object)
        )  # fmt: skip
        conn.execute("UPDATE sites SET geom = ? WHERE fid = 10", (moved,))
        conn.execute("UPDATE sites SET geom = ? WHERE fid = 12", (empty,))
        conn.execute("DELETE FROM sites WHERE fid = 11")
    assert conn.execute("SELECT rtreecheck('rtree_sites_geom')").fetchone() == ("ok",)
    box = "SELECT minx, maxx, miny, maxy FROM rtree_sites_geom WHERE id = 10"
    assert conn.execute(box).fetchone() == (0.0, 10.0, 0.0, 10.0)
    gone = "SELECT count(*) FROM rtree_sites_geom WHERE id IN (11, 12)"
    assert conn.execute(gone).fetchone() == (0,)
    conn.close()
    store = GeoPackageBackend(copy)
    assert store.read_layer("sites", bbox=(-1, -1, 11, 11)).index.size == 1
    assert shapely.is_empty(store.read_layer("sites", where="fid = 12").geometry.iloc[0])
    assert pyogrio.read_info(copy, layer="sites")["features"] == 2_999
