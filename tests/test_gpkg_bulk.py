"""The GeoPackage bulk writer (C column binding, packed R-tree) against GDAL's own write.

A first load of the store goes through :mod:`omw_sites.store.gpkg_bulk`; every file it
makes must be what GDAL would have made: same schema, same values, same geometry blobs,
a valid spatial index that answers window queries exactly, the GeoPackage metadata (feature
count, extent, triggers) GDAL and QGIS rely on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pytest
import shapely

from omw_sites.layers import WORK_CRS
from omw_sites.store import _sqlite_bulk, gpkg_bulk
from omw_sites.store.gpkg_backend import _create_layer, _write

POLISH = "Zażółć gęślą jaźń ąęłńóśźż"


def _frame(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = 600_000 + rng.uniform(0, 50_000, n)
    y = 450_000 + rng.uniform(0, 50_000, n)
    w = rng.uniform(10, 300, n)
    geoms = shapely.multipolygons(shapely.box(x, y, x + w, y + w).reshape(-1, 1))
    geoms[3] = shapely.from_wkt("MULTIPOLYGON EMPTY")
    geoms[5] = None
    text = rng.choice(["P", "U", "", POLISH, 'it\'s "quoted"\nline 2', "a\x00b"], n)
    text = pd.Series(text, dtype="str")
    text[7] = None
    floats = rng.uniform(-1e6, 1e6, n).round(3)
    floats[[1, 8]] = np.nan
    floats[2] = np.inf
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
            "nothing_text": pd.Series([None] * n, dtype=object),
            "nothing_float": np.full(n, np.nan),
            "status": pd.Series(["available"] * n, dtype="str"),
        },
        geometry=geoms,
        crs=WORK_CRS,
    )


def _both(tmp_path, frame, **kwargs):
    fast, slow = tmp_path / "fast.gpkg", tmp_path / "gdal.gpkg"
    assert gpkg_bulk.write_features(fast, "sites", frame, _create_layer, **kwargs)
    _write(slow, "sites", frame, "MultiPolygon")
    return fast, slow


def _sql(path, query, *params):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    frame = _frame(3_000)
    return frame, *_both(tmp_path_factory.mktemp("bulk"), frame)


def test_values_read_back_as_gdal_writes_them(written):
    frame, fast, slow = written
    a = pyogrio.read_dataframe(fast, layer="sites", use_arrow=True, fid_as_index=True)
    b = pyogrio.read_dataframe(slow, layer="sites", use_arrow=True, fid_as_index=True)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    same = shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), tolerance=0)
    assert same.sum() == len(frame) - 1  # None ≠ None
    assert a.geometry.isna().sum() == b.geometry.isna().sum() == 1
    assert a.loc[4, "label"] == frame.loc[3, "label"]  # fid = row + 1
    # text is stored whole (GDAL's own reader stops at a NUL, as for a GDAL-written file)
    nul = np.flatnonzero(frame["label"].to_numpy() == "a\x00b")[0]
    assert _sql(fast, "SELECT label FROM sites WHERE fid = ?", int(nul) + 1) == [("a\x00b",)]


def test_geometry_blobs_are_byte_identical_to_gdal(written):
    _, fast, slow = written
    a = _sql(fast, "SELECT fid, geom FROM sites ORDER BY fid")
    b = _sql(slow, "SELECT fid, geom FROM sites ORDER BY fid")
    differ = [fa for (fa, ga), (_, gb) in zip(a, b, strict=True) if ga != gb]
    assert differ == []


def test_schema_and_metadata_match_gdal(written):
    frame, fast, slow = written
    ddl = "SELECT sql FROM sqlite_master WHERE name = 'sites'"
    assert _sql(fast, ddl) == _sql(slow, ddl)
    trig = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
    assert _sql(fast, trig) == _sql(slow, trig)
    for q in (
        "SELECT table_name, feature_count FROM gpkg_ogr_contents",
        "SELECT * FROM gpkg_geometry_columns",
        "SELECT * FROM gpkg_extensions",
        "SELECT table_name, data_type, srs_id FROM gpkg_contents",
    ):
        assert _sql(fast, q) == _sql(slow, q), q
    extent = "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 'sites'"
    assert np.allclose(_sql(fast, extent)[0], _sql(slow, extent)[0])
    info = pyogrio.read_info(fast, layer="sites")
    assert info["features"] == len(frame) and info["geometry_type"] == "MultiPolygon"


def test_packed_rtree_is_valid_and_holds_what_gdal_indexes(written):
    frame, fast, slow = written
    assert _sql(fast, "SELECT rtreecheck('rtree_sites_geom')") == [("ok",)]
    boxes = "SELECT id, minx, maxx, miny, maxy FROM rtree_sites_geom ORDER BY id"
    a, b = np.array(_sql(fast, boxes)), np.array(_sql(slow, boxes))
    assert len(a) == len(frame) - 2  # the empty and the missing geometry are not indexed
    np.testing.assert_array_equal(a[:, 0], b[:, 0])
    # each box holds the geometry's bounds and is at most one float32 step wider
    true = shapely.bounds(frame.geometry.to_numpy()[a[:, 0].astype(int) - 1])
    lo, hi = true[:, [0, 1]], true[:, [2, 3]]
    assert (a[:, [1, 3]] <= lo).all() and (a[:, [2, 4]] >= hi).all()
    assert np.allclose(a[:, 1:], b[:, 1:], rtol=2e-7, atol=0)


def test_window_queries_find_exactly_the_intersecting_sites(written):
    frame, fast, _ = written
    rng = np.random.default_rng(3)
    geoms = frame.geometry.to_numpy()
    for _ in range(20):
        x, y = rng.uniform(600_000, 650_000), rng.uniform(450_000, 500_000)
        window = (x, y, x + rng.uniform(100, 8_000), y + rng.uniform(100, 8_000))
        got = pyogrio.read_dataframe(fast, layer="sites", bbox=window, fid_as_index=True)
        hits = shapely.intersects(geoms, shapely.box(*window))
        assert set(got.index - 1) == set(np.flatnonzero(hits & ~shapely.is_empty(geoms)))


def test_sort_by_writes_each_slice_in_key_order(tmp_path, monkeypatch):
    monkeypatch.setattr(gpkg_bulk, "CHUNK_ROWS", 400)
    frame = _frame(1_000)
    path = tmp_path / "sorted.gpkg"
    assert gpkg_bulk.write_features(path, "sites", frame, _create_layer, sort_by="site_id")
    got = pyogrio.read_dataframe(path, layer="sites", fid_as_index=True)
    ids = got["site_id"].to_numpy()
    for a, b in ((0, 50), (50, 200), (200, 400), (400, 800), (800, 1000)):  # the slices
        assert (ids[a : b - 1] < ids[a + 1 : b]).all()
    by_id = frame.set_index("site_id")
    pd.testing.assert_series_equal(
        got.set_index("site_id")["value"].sort_index(), by_id["value"].sort_index()
    )
    same = shapely.equals(got.set_index("site_id").geometry.sort_index().values,
                          by_id.geometry.sort_index().values)  # fmt: skip
    assert same.sum() == len(frame) - 1  # None ≠ None
    assert _sql(path, "SELECT rtreecheck('rtree_sites_geom')") == [("ok",)]


def test_sorted_slices_of_repeated_and_unique_text_match_gdal(tmp_path, monkeypatch):
    """Slices big enough for the dictionary path: columns of few distinct values are bound
    through their dictionary, the others through permuted starts and ends, geometry blobs
    made in the frame's order then put in the slice's; each site reads back as GDAL wrote
    it."""
    monkeypatch.setattr(gpkg_bulk, "CHUNK_ROWS", 12_000)
    n = 30_000
    frame = _frame(n, seed=3)
    rng = np.random.default_rng(4)
    tiers = pd.Series(rng.choice(["A", "B", POLISH, ""], n), dtype="str")
    tiers[rng.choice(n, 500, replace=False)] = None
    frame = frame.assign(
        tier=tiers,
        note=pd.Series(
            np.char.add("uwaga ąę ", rng.integers(0, 10**9, n).astype(str)), dtype="str"
        ),
    )
    fast, slow = _both(tmp_path, frame, sort_by="site_id")
    a = pyogrio.read_dataframe(fast, layer="sites", use_arrow=True).set_index("site_id")
    b = pyogrio.read_dataframe(slow, layer="sites", use_arrow=True).set_index("site_id")
    a, b = a.sort_index(), b.sort_index()
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    blobs = "SELECT site_id, geom FROM sites ORDER BY site_id"
    assert _sql(fast, blobs) == _sql(slow, blobs)
    ids = _sql(fast, "SELECT site_id FROM sites ORDER BY fid")
    ids = np.array([i for (i,) in ids])
    for lo, hi in ((0, 1_500), (1_500, 6_000), (6_000, 12_000), (12_000, 24_000), (24_000, 30_000)):
        assert (ids[lo : hi - 1] < ids[lo + 1 : hi]).all()
    assert _sql(fast, "SELECT rtreecheck('rtree_sites_geom')") == [("ok",)]
    assert _sql(fast, "PRAGMA integrity_check") == [("ok",)]


def test_derived_columns_are_computed_slice_by_slice(tmp_path, monkeypatch):
    monkeypatch.setattr(gpkg_bulk, "CHUNK_ROWS", 400)
    frame = _frame(1_000).assign(twice=pd.Series([None] * 1_000, dtype=object))
    seen = []

    def derive(rows):
        seen.append(len(rows))
        return {"twice": rows["count"].to_numpy() * 2}

    path = tmp_path / "derived.gpkg"
    assert gpkg_bulk.write_features(path, "sites", frame, _create_layer, derive)
    assert seen == [50, 150, 200, 400, 200]
    got = pyogrio.read_dataframe(path, layer="sites")
    assert (got["twice"] == got["count"] * 2).all()
    ddl = _sql(path, "SELECT sql FROM sqlite_master WHERE name = 'sites'")[0][0]
    assert '"twice" INTEGER' in ddl


def test_a_large_rtree_with_three_levels(tmp_path):
    rng = np.random.default_rng(5)
    n = 60_000  # 51 boxes per node: 1,177 leaves, 24 inner nodes, the root
    x, y = rng.uniform(0, 1e5, n), rng.uniform(0, 1e5, n)
    frame = gpd.GeoDataFrame(
        {"k": np.arange(n)}, geometry=shapely.box(x, y, x + 5, y + 5), crs=WORK_CRS
    )
    path = tmp_path / "big.gpkg"
    assert gpkg_bulk.write_features(path, "boxes", frame, _create_layer)
    assert _sql(path, "SELECT rtreecheck('rtree_boxes_geom')") == [("ok",)]
    depth = _sql(path, "SELECT hex(substr(data, 1, 2)) FROM rtree_boxes_geom_node WHERE nodeno = 1")
    assert depth == [("0002",)]
    for _ in range(10):
        qx, qy = rng.uniform(0, 1e5, 2)
        got = _sql(
            path,
            "SELECT id FROM rtree_boxes_geom WHERE maxx >= ? AND minx <= ? AND maxy >= ? "
            "AND miny <= ?",
            qx, qx + 2_000, qy, qy + 2_000,
        )  # fmt: skip
        want = np.flatnonzero((x + 5 >= qx) & (x <= qx + 2_000) & (y + 5 >= qy) & (y <= qy + 2_000))
        assert sorted(i for (i,) in got) == list(want + 1)


def test_updates_through_sqlite_keep_the_index_and_counts(written, tmp_path):
    _, fast, _ = written
    copy = tmp_path / "copy.gpkg"
    copy.write_bytes(fast.read_bytes())
    from omw_sites.store.gpkg_backend import GeoPackageBackend, _register_functions

    conn = sqlite3.connect(copy)
    _register_functions(conn)
    with conn:
        moved = shapely.multipolygons([shapely.box(0, 0, 10, 10)])
        blob = gpkg_bulk.gpkg_blob_array(np.array([moved], dtype=object))[0][0].as_py()
        conn.execute("UPDATE sites SET geom = ? WHERE fid = 10", (blob,))
        conn.execute("DELETE FROM sites WHERE fid = 11")
    assert conn.execute("SELECT rtreecheck('rtree_sites_geom')").fetchone() == ("ok",)
    assert conn.execute("SELECT minx, maxy FROM rtree_sites_geom WHERE id = 10").fetchone() == (
        0.0,
        10.0,
    )
    assert conn.execute("SELECT count(*) FROM rtree_sites_geom WHERE id = 11").fetchone() == (0,)
    conn.close()
    assert GeoPackageBackend(copy).read_layer("sites", bbox=(-1, -1, 11, 11)).index.size == 1
    assert pyogrio.read_info(copy, layer="sites")["features"] == 2_999


def test_unsupported_columns_leave_it_to_gdal(tmp_path, monkeypatch):
    frame = _frame(50).assign(when=pd.Timestamp("2026-01-01"))
    path = tmp_path / "x.gpkg"
    assert not gpkg_bulk.write_features(path, "sites", frame, _create_layer)
    assert not path.exists()
    mixed = _frame(50).assign(odd=pd.Series([1, "a"] * 25, dtype=object))
    assert not gpkg_bulk.write_features(path, "sites", mixed, _create_layer)
    # text in the first slice, a number in a later one: found before anything is written
    monkeypatch.setattr(gpkg_bulk, "CHUNK_ROWS", 100)
    late = _frame(400).assign(odd=pd.Series(["a"] * 399 + [1], dtype=object))
    assert not gpkg_bulk.write_features(path, "sites", late, _create_layer)
    assert not path.exists()
    mixed_z = [shapely.Point(0, 0), shapely.Point(1, 1, 1)]
    points = gpd.GeoDataFrame({"a": [1, 2]}, geometry=mixed_z, crs=WORK_CRS)
    assert not gpkg_bulk.write_features(path, "pts", points, _create_layer)  # one is 3-D


def test_a_failing_insert_names_the_row_and_writes_nothing(tmp_path):
    path = tmp_path / "t.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)")
    conn.commit()
    conn.close()
    n = 100
    b = pa.array(["x"] * 41 + [None] + ["y"] * 58, pa.large_string())
    columns = [("i8", np.arange(n, dtype=np.int64), None), gpkg_bulk._binary_spec("text", b)]
    with pytest.raises(
        sqlite3.OperationalError, match=r"rows 32 to 63: NOT NULL constraint failed"
    ):
        gpkg_bulk._insert(path, "t", ["a", "b"], columns, n)
    columns = [(k, a[90:], *rest) for k, a, *rest in columns[:1]] + [
        gpkg_bulk._binary_spec("text", pa.array(["z"] * 5 + [None] * 5, pa.large_string()))
    ]  # 10 rows: fewer than a multi-row statement takes, so one at a time
    with pytest.raises(sqlite3.OperationalError, match=r"at row 5: NOT NULL constraint failed"):
        gpkg_bulk._insert(path, "t", ["a", "b"], columns, 10)
    assert _sql(path, "SELECT count(*) FROM t") == [(0,)]


def test_the_c_module_checks_its_buffers(tmp_path):
    path = tmp_path / "t.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (a)").connection.close()
    sql = "INSERT INTO t (a) VALUES (?)"
    with pytest.raises(ValueError, match="values buffer holds 16 bytes, needs 24"):
        _sqlite_bulk.insert(str(path), sql, 1, sql, [("f8", np.zeros(2))], 3, "")
    bad = ("text", np.array([0, 5, 2], dtype=np.int64), np.zeros(8, np.uint8), None)
    with pytest.raises(ValueError, match="bad offsets at row 1"):
        _sqlite_bulk.insert(str(path), sql, 1, sql, [bad], 2, "")
    ranges = ("text", np.array([0, 4]), np.array([3, 9]), np.zeros(8, np.uint8), None)
    with pytest.raises(ValueError, match="bad offsets at row 1"):
        _sqlite_bulk.insert(str(path), sql, 1, sql, [ranges], 2, "")
    headers = np.zeros((2, 40), np.uint8)
    with pytest.raises(ValueError, match="headers buffer holds 80 bytes, needs 120"):
        _sqlite_bulk.insert(
            str(path), sql, 1, sql, [("gpkg", headers, np.zeros(4, np.int64), b"", None)], 3, ""
        )
    with pytest.raises(ValueError, match="unknown kind"):
        _sqlite_bulk.insert(str(path), sql, 1, sql, [("f4", np.zeros(2))], 2, "")
    with pytest.raises(RuntimeError, match="takes 1 values per row, 2 columns given"):
        _sqlite_bulk.insert(str(path), sql, 1, sql, [("null",), ("null",)], 2, "")
    assert _sql(path, "SELECT count(*) FROM t") == [(0,)]


def test_text_in_any_order_and_gpkg_blobs_bind_what_they_point_at(tmp_path):
    path = tmp_path / "t.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (a, b, g)").connection.close()
    sql = "INSERT INTO t (a, b, g) VALUES (?, ?, ?)"
    data = np.frombuffer("ząbxyz".encode(), np.uint8)  # z, ą (2 bytes), b, x, y, z
    starts, ends = np.array([4, 0, 0]), np.array([7, 4, 0])
    headers = np.zeros((3, 40), np.uint8)
    headers[:, 0], headers[:, 1], headers[:, 39] = ord("G"), ord("P"), 7
    headers[1, 3] = 0x10  # empty: 8-byte header
    wkb = np.array([0, 2, 2, 5], np.int64), np.frombuffer(b"WKBWKB", np.uint8)
    columns = [
        ("text", starts, ends, data, np.array([1, 1, 0], np.uint8)),
        ("blob", starts, ends, data, None),
        ("gpkg", headers, *wkb, None),
    ]
    # 2 rows per statement, then 1: each row's blob is built in its own place
    assert (
        _sqlite_bulk.insert(str(path), sql.replace("?)", "?), (?, ?, ?)"), 2, sql, columns, 3, "")
        == 3
    )
    rows = _sql(path, "SELECT a, b, g FROM t ORDER BY rowid")
    head = bytes(headers[0])
    assert rows == [
        ("xyz", b"xyz", head + b"WK"),
        ("ząb", "ząb".encode(), bytes(headers[1, :8])),
        (None, b"", head + b"BWK"),
    ]


def test_the_module_is_built_with_the_vendored_sqlite():
    vendored = Path(__file__).parents[1] / "third_party" / "sqlite" / "sqlite3.c.xz"
    if vendored.exists():
        assert _sqlite_bulk.sqlite_version == "3.50.4"
