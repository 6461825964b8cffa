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
    ],
)
def test_mpzp_symbols(symbol, number, classes, known):
    p = parse_symbols(pd.Series([symbol])).iloc[0]
    assert p["number"] == number and p["classes"] == classes and p["known"] == known


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
