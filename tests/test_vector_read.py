"""The threaded vector read (attributes on one thread, geometries decoded step by step with
their validity checked on another) gives what a plain pyogrio read and GEOS give."""

from __future__ import annotations

import datetime as dt
import gc
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from omw_sites.etl import vector
from omw_sites.etl.egib import read_egib_vector
from omw_sites.etl.errors import IngestError
from omw_sites.etl.vector import read_vector_file
from omw_sites.gcpause import gc_paused


@pytest.fixture
def threaded(monkeypatch):
    """Take the threaded path from 1 feature, in steps of 7 geometries."""
    monkeypatch.setattr(vector, "THREADS_FROM", 1)
    monkeypatch.setattr(vector, "_DECODE_STEP", 7)


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


def test_threaded_read_is_the_plain_read_with_validity(tmp_path, threaded):
    path = _layer(tmp_path)
    seen = []
    read = read_vector_file(path, on_attributes=lambda a: seen.append((threading.get_ident(), a)))
    plain = pyogrio.read_dataframe(path, use_arrow=True)
    plain = plain.rename(columns={c: c.upper() for c in plain.columns if c != "geometry"})
    pd.testing.assert_frame_equal(pd.DataFrame(read.frame), pd.DataFrame(plain))
    assert read.frame.crs.to_epsg() == 2180 and read.crs_in == "EPSG:2180"
    expected = shapely.is_valid(plain.geometry.array)
    assert np.array_equal(read.valid, expected) and not read.valid[5] and not read.valid[11]
    # the hook ran once, off this thread, with the attributes as the file names them
    assert len(seen) == 1 and seen[0][0] != threading.get_ident()
    assert list(seen[0][1].columns) == ["id_dzialki", "nazwa", "pole", "wpis", "dzien"]
    assert len(seen[0][1]) == 40 and read.frame["WPIS"].dtype.kind == "M"


def test_small_layer_is_one_plain_read(tmp_path):
    path = _layer(tmp_path)
    seen = []
    read = read_vector_file(path, on_attributes=seen.append)
    assert len(read.frame) == 40 and np.array_equal(
        read.valid, shapely.is_valid(read.frame.geometry.array)
    )
    assert len(seen) == 1 and list(seen[0].columns)[:3] == ["id_dzialki", "nazwa", "pole"]
    plain = pyogrio.read_dataframe(path, use_arrow=True)
    plain = plain.rename(columns={c: c.upper() for c in plain.columns if c != "geometry"})
    pd.testing.assert_frame_equal(pd.DataFrame(read.frame), pd.DataFrame(plain))


def test_reprojected_layer_hands_on_no_validity(tmp_path, threaded):
    gdf = gpd.GeoDataFrame(
        {"a": [1, 2]}, geometry=shapely.box([21.0, 21.1], 52.0, [21.01, 21.11], 52.01), crs=4326
    )
    path = tmp_path / "w.gpkg"
    pyogrio.write_dataframe(gdf, path)
    read = read_vector_file(path)
    assert read.valid is None and read.crs_in == "EPSG:4326"
    assert read.frame.crs.to_epsg() == 2180


def test_threaded_egib_read_equals_the_serial_one(tmp_path, monkeypatch):
    """IDs parsed on the attribute thread, validity from the reader: same layer and
    quarantine as the one-thread path (bow-tie repaired, null and empty quarantined)."""
    path = _layer(tmp_path)
    serial = read_egib_vector(path)
    monkeypatch.setattr(vector, "THREADS_FROM", 1)
    monkeypatch.setattr(vector, "_DECODE_STEP", 7)
    fast = read_egib_vector(path)
    pd.testing.assert_frame_equal(pd.DataFrame(fast.frame), pd.DataFrame(serial.frame))
    pd.testing.assert_frame_equal(fast.quarantine, serial.quarantine)
    assert fast.repaired == serial.repaired == 1 and fast.kept == serial.kept == 38
    assert set(fast.quarantine["record"]) == {"146505_8.0101.12", "146505_8.0101.18"}


def test_mokotow_threaded_equals_serial(fixtures_dir, monkeypatch):
    path = fixtures_dir / "egib_warszawa_mokotow" / "mokotow_dzialki_epsg2180.gpkg"
    serial = read_egib_vector(path)
    monkeypatch.setattr(vector, "THREADS_FROM", 1)
    fast = read_egib_vector(path)
    assert fast.kept == 4413
    pd.testing.assert_frame_equal(pd.DataFrame(fast.frame), pd.DataFrame(serial.frame))


def test_shapefile_cut_id_column_is_found_on_the_attribute_thread(tmp_path, threaded):
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


def test_a_failing_attribute_read_is_the_readers_error(tmp_path, threaded):
    path = _layer(tmp_path)

    def boom(attrs):
        raise RuntimeError("attribute hook failed")

    with pytest.raises(IngestError, match="attribute hook failed"):
        read_vector_file(path, on_attributes=boom)


def test_gc_is_paused_inside_and_restored_after(tmp_path, threaded):
    path = _layer(tmp_path)
    states = []
    read_vector_file(path, on_attributes=lambda a: states.append(gc.isenabled()))
    assert states == [False] and gc.isenabled()
    gc.disable()  # a caller who turned it off keeps it off
    try:
        read_vector_file(path)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_gc_pause_nests_and_is_shared_by_threads():
    barrier = threading.Barrier(2)
    seen = []

    def work():
        with gc_paused():
            barrier.wait()
            seen.append(gc.isenabled())
            barrier.wait()  # both inside: the first to leave must not turn it back on

    t = threading.Thread(target=work)
    t.start()
    with gc_paused():
        with gc_paused():
            barrier.wait()
            seen.append(gc.isenabled())
        barrier.wait()
        t.join()
        assert not gc.isenabled()
    assert seen == [False, False] and gc.isenabled()
