"""ETL units: parcel IDs, ownership, MPZP symbols, CRS recognition, geometry repair."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from pyproj import CRS
from shapely import Polygon, box

from omw_sites.etl.crs import resolve_epsg
from omw_sites.etl.egib import area_mismatch, ownership_class, parse_parcel_ids
from omw_sites.etl.mpzp import parse_symbols
from omw_sites.etl.validate import repair_geometries


def test_parcel_ids_parts_and_rejects():
    ids = pd.Series(
        [
            "146510_8.0309.24/35",
            "141201_1.0001.1867/2",
            "302107_2.0003.AR_1.52/11",
            "14651_8.1.2",
            "x",
        ]
    )
    p = parse_parcel_ids(ids)
    assert p["valid"].tolist() == [True, True, True, False, False]
    assert p.loc[0, "teryt"] == "1465108" and p.loc[0, "obreb"] == "0309"
    assert p.loc[0, "number"] == "24/35"
    assert p.loc[2, "sheet"] == "1" and p.loc[2, "number"] == "52/11"
    assert p.loc[1, "sheet"] is np.nan or pd.isna(p.loc[1, "sheet"])


def test_all_real_mokotow_ids_parse(fixtures_dir):
    df = pyogrio.read_dataframe(
        fixtures_dir / "egib_warszawa_mokotow/mokotow_dzialki_epsg2180.gpkg", read_geometry=False
    )
    p = parse_parcel_ids(df["ID_DZIALKI"])
    assert p["valid"].all() and len(p) == 4413
    assert set(p["teryt"]) >= {"1465058"}


def test_ownership_codes_and_text(fixtures_dir):
    own = pd.read_csv(fixtures_dir / "egib_warszawa_mokotow/ownership.csv")
    cls = ownership_class(own["ownership"])
    assert set(cls) <= {"municipal", "state", "private", "other"}
    assert (cls == "municipal").sum() == (own["ownership"] == "miejska").sum()
    assert ownership_class(pd.Series([4, 1, 7, 99, None])).tolist() == [
        "municipal",
        "state",
        "private",
        "other",
        "other",
    ]


def test_area_mismatch_flag():
    flag = area_mismatch(np.array([1.0, 1.0, 2.0]), np.array([1.02, 1.2, np.nan]), 0.05)
    assert flag.tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("symbol", "number", "classes", "known"),
    [
        ("12P/U", 12, "P/U", True),
        ("2MN", 2, "MN", True),
        ("3KDD", 3, "KDZ", True),
        ("5R", 5, "RN", True),
        ("12U/P", 12, "U/P", True),
        ("7 MW", 7, "MW", True),
        ("4XYZ", 4, "XYZ", False),
        # as real Warsaw plans write them: area labels, 2003-era and compact symbols
        ("B7.MN", 7, "MN", True),
        ("C1.MW/U", 1, "MW/U", True),
        ("A12.U", 12, "U", True),
        ("12KPJ", 12, "K", True),
        ("KDW", None, "KDZ", True),
        ("KP", None, "K", True),
        ("MNU", None, "MN/U", True),
        ("MW-U", None, "MW/U", True),
        ("1KD-GP", 1, "KDG", True),
        ("3KD-D", 3, "KDZ", True),
        ("UKr", None, "UK", True),
        ("MN1", 1, "MN", True),
        ("2 P, U", 2, "P/U", True),
        ("1U+ZP", 1, "U/ZP", True),
        ("5P-XY", 5, "PXY", False),
        ("", None, "", False),
    ],
)
def test_mpzp_symbols(symbol, number, classes, known):
    p = parse_symbols(pd.Series([symbol])).iloc[0]
    assert pd.isna(p["number"]) if number is None else p["number"] == number
    assert p["classes"] == classes and p["known"] == known


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2,5", 2.5),
        ("0,1234", 0.1234),
        ("1 234,5", 1234.5),
        ("1\u00a0234", 1234.0),
        ("3.75", 3.75),
        ("", None),
        ("n/d", None),
        (None, None),
    ],
)
def test_numbers_with_a_decimal_comma(text, value):
    from omw_sites.etl.numbers import to_number

    got = to_number(pd.Series([text], dtype=object)).iloc[0]
    assert pd.isna(got) if value is None else got == pytest.approx(value)


def test_esri_uwpp_crs_is_recognised(fixtures_dir):
    wkt = (fixtures_dir / "bdot_roads_torun/directedRoadsSample.prj").read_text()
    assert resolve_epsg(CRS.from_wkt(wkt)) == 2180
    assert resolve_epsg("EPSG:2178") == 2178


def test_repair_bowtie_and_quarantine_empty():
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])
    gdf = gpd.GeoDataFrame(
        {"ID_DZIALKI": ["a", "b", "c"]},
        geometry=[box(0, 0, 1, 1), bowtie, Polygon()],
        crs=2180,
    )
    ok, q, repaired = repair_geometries(gdf, "dzialki", "f.gpkg", "ID_DZIALKI")
    assert repaired == 1 and len(ok) == 2 and ok.is_valid.all()
    assert ok.geometry.iloc[1].area == pytest.approx(50.0)
    assert q["record"].tolist() == ["c"] and "empty" in q["detail"].iloc[0]


def test_warsaw_designation_layer_with_fun_symb(tmp_path):
    """A municipal MPZP layer as Warsaw publishes it: ``fun_symb`` with area labels."""
    from omw_sites.etl.mpzp import read_mpzp

    symbols = ["B7.MN", "C1.MW/U", "A12.U", "12KPJ", "KDW", "MW-U", "9QQ"]
    x = 637_000 + 30.0 * np.arange(len(symbols))
    gdf = gpd.GeoDataFrame(
        {"fun_symb": symbols}, geometry=box(x, 486_000, x + 20, 486_020), crs=2180
    )
    path = tmp_path / "mpzp_warszawa.gpkg"
    gdf.to_file(path)
    result = read_mpzp(path)
    assert result.frame["classes"].tolist() == ["MN", "MW/U", "U", "K", "KDZ", "MW/U", "QQ"]
    assert result.frame["symbol_raw"].tolist() == symbols  # the raw text is kept
    assert result.quarantine["record"].tolist() == ["9QQ"]  # unknown: kept and reported
