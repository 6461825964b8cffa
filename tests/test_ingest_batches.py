"""Large EGiB exports ingested in batches: the same layer and quarantine as one whole read,
duplicates across batches caught, the GeoPackage written by column name, and a bad batch
late in the file leaves nothing behind."""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

from omw_sites.cli import app
from omw_sites.etl.detect import ResultWriter
from omw_sites.etl.egib import iter_egib_vector, read_egib_vector
from omw_sites.etl.result import LayerResult, concat_quarantine


def _parcels(n: int) -> gpd.GeoDataFrame:
    """``n`` parcels with: an ID repeated within a batch and across batches (of 1,000),
    a malformed ID, a bow-tie (repaired) and a null geometry (quarantined)."""
    ids = [f"146505_8.0101.{k + 1}" for k in range(n)]
    ids[10] = ids[3]  # within the first batch
    ids[1500] = ids[20]  # across batches
    ids[2001] = ids[1999]  # across the boundary of the second and third
    ids[700] = "146505_8.01.7"  # malformed obręb
    x = np.arange(n) * 30.0
    geoms = list(shapely.box(600_000 + x, 480_000, 600_028 + x, 480_028))
    geoms[42] = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    geoms[1234] = None
    return gpd.GeoDataFrame(
        {
            "ID_DZIALKI": ids,
            "POLE_EWIDENCYJNE": 0.0784,
            "NAZWA_OBREBU": ["Służew" if k % 2 else "Czerniaków" for k in range(n)],
        },
        geometry=geoms,
        crs=2180,
    )


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "dzialki.gpkg"
    pyogrio.write_dataframe(_parcels(2_600), path, layer="dzialki")
    pd.DataFrame({"ID_DZIALKI": ["146505_8.0101.5"], "ownership": ["miejska"]}).to_csv(
        tmp_path / "ownership.csv", index=False
    )
    return path


def test_batches_put_together_are_the_whole_read(big):
    whole = read_egib_vector(big, ownership_table=big.parent / "ownership.csv")
    parts = list(iter_egib_vector(big, ownership_table=big.parent / "ownership.csv",
                                  batch_rows=1_000))  # fmt: skip
    assert len(parts) == 3 and [p.read for p in parts] == [1_000, 1_000, 600]
    frame = pd.concat([pd.DataFrame(p.frame) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(frame, pd.DataFrame(whole.frame))
    q = concat_quarantine([p.quarantine for p in parts])

    def ordered(t: pd.DataFrame) -> pd.DataFrame:  # batch by batch, not rule by rule
        return t.sort_values(["rule", "record"], ignore_index=True)

    pd.testing.assert_frame_equal(ordered(q), ordered(whole.quarantine))
    assert sum(p.repaired for p in parts) == whole.repaired == 1
    dups = q.loc[q["rule"] == "unique parcel ID", "record"].tolist()
    assert dups == ["146505_8.0101.4", "146505_8.0101.21", "146505_8.0101.2000"]
    assert whole.kept == 2_600 - 5
    assert frame.loc[frame["parcel_id"] == "146505_8.0101.5", "ownership"].item() == "municipal"


def _cli(*args) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["ingest", *map(str, args)])
    return res.exit_code, res.output


def test_cli_in_batches_writes_what_one_read_writes(big, tmp_path):
    code, text = _cli(big, "--out", tmp_path / "whole.gpkg")
    assert code == 0, text
    code, text_b = _cli(big, "--out", tmp_path / "batched.gpkg", "--batch-rows", 1000)
    assert code == 0, text_b
    # one report row for the file, with the batches' counts added up
    assert text_b.count("dzialki.gpkg") == 1 and "2,600" in text_b and "2,595" in text_b
    assert "3 unique parcel ID" in text_b and "1 malformed" not in text_b
    for layer in ("parcels", "quarantine"):
        a = pyogrio.read_dataframe(tmp_path / "whole.gpkg", layer=layer)
        b = pyogrio.read_dataframe(tmp_path / "batched.gpkg", layer=layer)
        if layer == "quarantine":  # batch by batch, not rule by rule
            a, b = (t.sort_values(["rule", "record"], ignore_index=True) for t in (a, b))
        pd.testing.assert_frame_equal(a, b)
    assert pyogrio.read_info(tmp_path / "batched.gpkg", layer="parcels")["geometry_type"] == (
        "MultiPolygon"
    )


def test_a_bad_batch_late_in_the_file_writes_nothing(big, tmp_path):
    conn = sqlite3.connect(big)
    with conn:  # a writer that stored cp1250 bytes as TEXT, in the third batch
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f'DROP TRIGGER "{name}"')
        bad = "Służew".encode("cp1250")
        conn.execute("UPDATE dzialki SET NAZWA_OBREBU = CAST(? AS TEXT) WHERE fid = 2300", (bad,))
    conn.close()
    out = tmp_path / "out.gpkg"
    code, text = _cli(big, "--out", out, "--batch-rows", 1000)
    flat = " ".join(text.split())
    assert code == 2 and "record FID 2300" in flat and "NAZWA_OBREBU" in flat, flat
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def _result(frame: gpd.GeoDataFrame, file: str) -> LayerResult:
    r = LayerResult("parcels", frame, concat_quarantine([]), "gpkg", "p", "EPSG:2180", len(frame))
    r.extra["file"] = file
    return r


def test_writer_appends_by_column_name(tmp_path):
    """A later result with other columns: values land under their own names (pyogrio
    appends by position), new columns are added, missing ones are null."""
    a = gpd.GeoDataFrame(
        {"parcel_id": ["a"], "kw": ["WA1M/1/1"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=2180
    )
    b = gpd.GeoDataFrame(
        {"local_id": ["L7"], "parcel_id": ["b"], "area_ha": [1.5]},
        geometry=[shapely.MultiPolygon([shapely.box(5, 5, 6, 6), shapely.box(7, 7, 8, 8)])],
        crs=2180,
    )
    out = tmp_path / "w.gpkg"
    with ResultWriter(out) as w:
        w.add(_result(a, "one.gpkg"))
        w.add(_result(b, "two.gml"))
        w.close()
    got = pyogrio.read_dataframe(out, layer="parcels")
    assert list(got.columns) == ["parcel_id", "kw", "source_file", "local_id", "area_ha",
                                 "geometry"]  # fmt: skip
    assert got["parcel_id"].tolist() == ["a", "b"] and got["source_file"].tolist() == [
        "one.gpkg",
        "two.gml",
    ]
    assert got["kw"].iloc[0] == "WA1M/1/1" and pd.isna(got["kw"].iloc[1])
    assert got["local_id"].iloc[1] == "L7" and got["area_ha"].iloc[1] == 1.5
    assert pd.isna(got["area_ha"].iloc[0]) and len(pyogrio.list_layers(out)) == 2
    assert shapely.area(got.geometry.array).tolist() == [1.0, 2.0]


def test_writer_removes_its_file_when_the_block_fails(tmp_path):
    a = gpd.GeoDataFrame({"parcel_id": ["a"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=2180)
    out = tmp_path / "w.gpkg"
    with pytest.raises(RuntimeError), ResultWriter(out) as w:
        w.add(_result(a, "one.gpkg"))
        raise RuntimeError("interrupted")
    assert not out.exists() and not list(tmp_path.glob(".w*"))
