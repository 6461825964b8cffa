"""Transport points derived from the layers real downloads have (issue: real data, item 3):
junctions from the road topology, stations and airports from BDOT10k complexes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from omw_sites.criteria.network import build_graph, node_times, snap_points
from omw_sites.etl.derive import airports_from_bdot, junctions_from_roads, stations_from_bdot
from omw_sites.layers import WORK_CRS

X0, Y0 = 640_000.0, 480_000.0  # near Warsaw, EPSG:2180


def _roads(rows):
    lines = [shapely.LineString([(X0 + a, Y0 + b), (X0 + c, Y0 + d)]) for (a, b, c, d), *_ in rows]
    return gpd.GeoDataFrame(
        {"road_class": [r[1] for r in rows], "number": [r[2] for r in rows]},
        geometry=lines,
        crs=WORK_CRS,
    )


# A2 along y = 0 from x = 0 to 10 km, cut at 5 km where a ramp of class G ends (an
# entry) and at 7 km where a Z road crosses on the same level (an entry); at 10 km it
# ends on a D road (an entry). At 2 km a road passes over it: no shared point, no entry.
ROADS = [
    ((0, 0, 5000, 0), "A", "A2"),
    ((5000, 0, 7000, 0), "A", "A2"),
    ((7000, 0, 10000, 0), "A", "A2"),
    ((2000, -1000, 2000, 1000), "Z", "2801W"),
    ((7000, -1000, 7000, 0), "Z", "2802W"),
    ((7000, 0, 7000, 1000), "Z", "2802W"),
    ((5000, 0, 5000, -2000), "G", "721"),
    ((10000, 0, 11000, 0), "D", ""),
    ((5000, -2000, 0, -2000), "L", ""),  # a local road away from the motorway
]


def test_junctions_are_where_the_motorway_shares_a_point_with_a_lower_road():
    got = junctions_from_roads(_roads(ROADS))
    xy = shapely.get_coordinates(got.geometry.to_numpy()) - [X0, Y0]
    assert sorted(map(tuple, xy.round(3))) == [(5000.0, 0.0), (7000.0, 0.0), (10000.0, 0.0)]
    assert list(got["road"]) == ["A2", "A2", "A2"]
    assert got.crs == WORK_CRS and list(got.columns) == ["name", "road", "number", "geometry"]


def test_road_number_without_its_letter_gets_the_class():
    rows = [((0, 0, 1000, 0), "S", "7"), ((1000, 0, 1000, 500), "G", "")]
    assert list(junctions_from_roads(_roads(rows))["road"]) == ["S7"]
    rows = [((0, 0, 1000, 0), "S", ""), ((1000, 0, 1000, 500), "G", "")]
    assert list(junctions_from_roads(_roads(rows))["road"]) == ["S"]


def test_no_motorway_or_no_roads_gives_an_empty_layer():
    assert len(junctions_from_roads(_roads([((0, 0, 1000, 0), "G", "7")]))) == 0
    assert len(junctions_from_roads(_roads([((0, 0, 1000, 0), "A", "A2")]))) == 0
    assert len(junctions_from_roads(_roads(ROADS).iloc[:0])) == 0
    assert len(junctions_from_roads(None)) == 0


def test_derived_junctions_are_where_the_graph_lets_traffic_onto_the_motorway():
    """With the derived points the graph enters the motorway at the ramp (known
    minutes), and the road passing over it at 2 km stays off it."""
    roads = _roads(ROADS)
    graph = build_graph(roads, junctions_from_roads(roads))
    target = snap_points(graph, np.array([shapely.Point(X0 + 10000, Y0)]), 10.0)
    start = snap_points(graph, np.array([shapely.Point(X0, Y0 - 2000)]), 10.0)
    t = node_times(graph, target)[start[0]]
    # L 5 km at 40 km/h, G 2 km at 60 km/h, A 5 km at 110 km/h
    expected = 5 / 40 * 60 + 2 / 60 * 60 + 5 / 110 * 60
    assert abs(t - expected) < 1e-9
    over = snap_points(graph, np.array([shapely.Point(X0 + 2000, Y0 - 1000)]), 10.0)
    assert np.isinf(node_times(graph, target)[over[0]])


def _polys(rows):
    geoms = [shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h) for x, y, w, h, *_ in rows]
    return gpd.GeoDataFrame(
        {"X_KOD": [r[4] for r in rows], "NAZWA": [r[5] for r in rows]},
        geometry=geoms,
        crs=WORK_CRS,
    )


def test_stations_and_airports_from_bdot_complexes():
    complexes = _polys(
        [
            (0, 0, 1000, 1000, "KUKO02", "Lotnisko Chopina"),  # 100 ha: an airport
            (5000, 0, 30, 30, "KUKO02", "Lądowisko szpitalne"),  # 0.09 ha: a helipad
            (8000, 0, 200, 100, "KUKO06", "Stacja Pruszków"),
            (9000, 0, 200, 100, "KUKO08", "Stacja paliw"),
        ]
    )
    points = gpd.GeoDataFrame(
        {"X_KOD": ["OIKM05", "OIKM04"], "NAZWA": ["Przystanek Nowa Wieś", "Autobus"]},
        geometry=[shapely.Point(X0 + 100, Y0 + 7000), shapely.Point(X0, Y0)],
        crs=WORK_CRS,
    )
    airports = airports_from_bdot(complexes)
    assert list(airports["name"]) == ["Lotnisko Chopina"]
    assert shapely.get_coordinates(airports.geometry.to_numpy()).tolist() == [[X0 + 500, Y0 + 500]]
    stations = stations_from_bdot(complexes, points)
    assert sorted(stations["name"]) == ["Przystanek Nowa Wieś", "Stacja Pruszków"]
    assert set(stations["kind"]) == {"passenger"}
    assert len(stations_from_bdot(None, None)) == 0 and len(airports_from_bdot(None)) == 0
