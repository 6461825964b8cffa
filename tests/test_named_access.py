"""Named access: what a site's access distances were measured to, by name and number.

A tiny region (EPSG:2180) around site A, a 1 ha square at x X0+500…X0+600,
y Y0+20…Y0+120:

    local street (L, gmina, 5.5 m wide) along y = Y0, 20 m south of A: A's access road
    national road 7 (GP, K, 7.0 m) at x = X0+2000: 1,400 m east of A
    voivodeship road 631 (G, W) at x = X0−500: 1,000 m west of A
    junctions "Opacz" on the S8 at (X0+1000, Y0+3000): 2,907.6 m; "Konotopa" on the A2
        at (X0+5000, Y0): 4,400.0 m — Opacz is the nearest
    a freight terminal 180 m north of A, a passenger station 680 m north, another one
        20 km away: the station is the passenger one, the terminal the freight one
    airports: Chopin (WAW) 3 km away and Modlin (WMI) 40 km away
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely import LineString, Point, box

from omw_sites.criteria.measure import measure
from omw_sites.etl.ingest import QUARANTINE_COLUMNS, RawData, read_raw_layer
from omw_sites.layers import RAW_BY_KEY, WORK_CRS

X0, Y0 = 640_000.0, 470_000.0
NAMED = (
    "junction_road",
    "airport_name",
    "station_name",
    "rail_freight_name",
    "national_road",
    "voivodeship_road",
    "access_road_class",
)


def _gdf(rows: list[dict], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=WORK_CRS)


ROADS = _gdf(
    [
        {"road_class": "L", "management": "G", "number": "", "width_m": 5.5},
        {"road_class": "GP", "management": "K", "number": "7", "width_m": 7.0},
        {"road_class": "G", "management": "W", "number": "631", "width_m": np.nan},
    ],
    [
        LineString([(X0, Y0), (X0 + 2000, Y0)]),
        LineString([(X0 + 2000, Y0 - 1000), (X0 + 2000, Y0 + 1000)]),
        LineString([(X0 - 500, Y0 - 1000), (X0 - 500, Y0 + 1000)]),
    ],
)
JUNCTIONS = _gdf(
    [
        {"name": "Opacz", "road": "S8", "number": "5"},
        {"name": "Konotopa", "road": "A2", "number": ""},
    ],
    [Point(X0 + 1000, Y0 + 3000), Point(X0 + 5000, Y0)],
)
STATIONS = _gdf(
    [
        {"name": "Warszawa Gołąbki Towarowa", "kind": "freight"},
        {"name": "Warszawa Zachodnia", "kind": "passenger"},
        {"name": "Pruszków", "kind": "passenger"},
    ],
    [Point(X0 + 550, Y0 + 300), Point(X0 + 550, Y0 + 800), Point(X0 + 20_000, Y0)],
)
AIRPORTS = _gdf(
    [{"name": "Lotnisko Chopina", "iata": "WAW"}, {"name": "Modlin", "iata": "WMI"}],
    [Point(X0 + 3000, Y0 + 2000), Point(X0, Y0 + 40_000)],
)
SITE = gpd.GeoDataFrame(
    {"site_id": ["A"], "teryt": ["1465011"], "area_ha": [1.0]},
    geometry=[box(X0 + 500, Y0 + 20, X0 + 600, Y0 + 120)],
    crs=WORK_CRS,
)
LAYERS = {"roads": ROADS, "junctions": JUNCTIONS, "stations": STATIONS, "airports": AIRPORTS}


def _raw(layers: dict) -> RawData:
    return RawData(dict(layers), None, {}, pd.DataFrame(columns=QUARANTINE_COLUMNS))


def test_each_destination_is_named():
    out, _ = measure(SITE, _raw(LAYERS))
    r = out.iloc[0]
    assert r["junction_road"] == "S8" and r["junction_name"] == "S8 Opacz"
    assert r["dist_junction_m"] == round(math.hypot(400, 2880), 1)
    assert r["airport_name"] == "Lotnisko Chopina (WAW)"
    assert r["station_name"] == "Warszawa Zachodnia" and r["dist_station_m"] == 680.0
    assert r["rail_freight_name"] == "Warszawa Gołąbki Towarowa"
    assert (r["national_road"], r["dist_national_road_m"]) == ("7", 1400.0)
    assert (r["voivodeship_road"], r["dist_voivodeship_road_m"]) == ("631", 1000.0)
    assert (r["access_road_class"], r["access_road_width_m"]) == ("L", 5.5)


def test_each_name_is_empty_with_a_reason_when_its_layer_is_missing():
    for key, cols in (
        ("junctions", ["junction_road"]),
        ("stations", ["station_name", "rail_freight_name"]),
        ("airports", ["airport_name"]),
        ("roads", ["national_road", "voivodeship_road", "access_road_class"]),
    ):
        layers = {k: v for k, v in LAYERS.items() if k != key}
        out, cov = measure(SITE, _raw(layers))
        for col in cols:
            assert out[col].iloc[0] == "", (key, col)
            assert col in cov.not_measured, (key, col)
        others = [c for c in NAMED if c not in cols]
        assert (out[others].iloc[0] != "").all(), key


def test_a_region_without_national_roads_says_so():
    roads = ROADS[ROADS["management"] != "K"]
    out, cov = measure(SITE, _raw({**LAYERS, "roads": roads}))
    assert out["national_road"].iloc[0] == "" and np.isnan(out["dist_national_road_m"].iloc[0])
    assert cov.not_measured["national_road"] == "no national roads (management K) in the roads"
    assert out["voivodeship_road"].iloc[0] == "631"


def test_carriageway_width_from_a_real_bdot10k_shapefile(fixtures_dir: Path):
    """The Toruń roads (SHP, columns cut to 10 characters: szerNawier) give the access
    road's class and width; 0, an unknown width there, is no width."""
    path = fixtures_dir / "bdot_roads_torun" / "directedRoadsSample.shp"
    spec = dataclasses.replace(RAW_BY_KEY["roads"], layer="directedRoadsSample")
    roads = read_raw_layer(path, spec)[0]
    dbf = gpd.read_file(path)
    width = dbf["szerNawier"].astype(float)
    np.testing.assert_array_equal(roads["width_m"], width.where(width > 0))
    i = int(np.flatnonzero(roads["width_m"].to_numpy() >= 6)[0])
    line = roads.geometry.iloc[i]
    mid = line.interpolate(0.5, normalized=True)
    site = gpd.GeoDataFrame(
        {"site_id": ["T"], "teryt": ["0463011"], "area_ha": [0.0]},
        geometry=[mid.buffer(3).envelope],
        crs=WORK_CRS,
    )
    out, _ = measure(site, _raw({"roads": roads}))
    hit = out.iloc[0]
    assert hit["access_road_width_m"] == roads["width_m"].iloc[i]
    assert hit["access_road_class"] == roads["road_class"].iloc[i]
