"""Road-network travel times checked against brute-force routing on small graphs."""

from __future__ import annotations

import heapq

import geopandas as gpd
import numpy as np
import pytest
from shapely import LineString, Point, box

from omw_sites.criteria.network import (
    DEFAULT_SPEEDS_KMH,
    access_points,
    build_graph,
    node_times,
    site_times,
    snap_points,
)


def _grid_roads(rng: np.random.Generator, n: int = 6, step: float = 1000.0) -> gpd.GeoDataFrame:
    """A jittered n×n grid of road segments with random classes."""
    xy = {
        (i, j): (i * step + rng.uniform(-150, 150), j * step + rng.uniform(-150, 150))
        for i in range(n)
        for j in range(n)
    }
    lines, classes = [], []
    for (i, j), p in xy.items():
        for q in ((i + 1, j), (i, j + 1)):
            if q in xy and rng.uniform() > 0.15:  # some links missing
                lines.append(LineString([p, xy[q]]))
                classes.append(rng.choice(["GP", "G", "Z", "L", "D"]))
    return gpd.GeoDataFrame({"road_class": classes}, geometry=lines, crs=2180)


def _brute_force(roads: gpd.GeoDataFrame, source_xy: list[tuple[float, float]]) -> dict:
    """Plain Dijkstra with a heap over a dict graph keyed by rounded coordinates."""
    adj: dict = {}
    for geom, cls in zip(roads.geometry, roads["road_class"], strict=True):
        a, b = tuple(np.round(geom.coords[0], 3)), tuple(np.round(geom.coords[-1], 3))
        w = geom.length / 1000 / DEFAULT_SPEEDS_KMH[cls] * 60
        adj.setdefault(a, []).append((b, w))
        adj.setdefault(b, []).append((a, w))
    dist = {k: np.inf for k in adj}
    heap = []
    for s in source_xy:
        k = tuple(np.round(s, 3))
        dist[k] = 0.0
        heap.append((0.0, k))
    heapq.heapify(heap)
    while heap:
        d, k = heapq.heappop(heap)
        if d > dist[k]:
            continue
        for nb, w in adj[k]:
            if d + w < dist[nb]:
                dist[nb] = d + w
                heapq.heappush(heap, (d + w, nb))
    return dist


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_multi_source_times_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    roads = _grid_roads(rng)
    graph = build_graph(roads)
    sources = rng.choice(graph.n_nodes, size=3, replace=False)
    ours = node_times(graph, sources)
    ref = _brute_force(roads, [tuple(graph.node_xy[s]) for s in sources])
    for node in range(graph.n_nodes):
        expected = ref[tuple(np.round(graph.node_xy[node], 3))]
        assert ours[node] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_motorway_is_entered_only_at_junctions():
    # a local road crossing an expressway at a shared vertex, and a second crossing
    # where a junction is mapped
    roads = gpd.GeoDataFrame(
        {"road_class": ["S", "S", "L", "L", "L", "L"]},
        geometry=[
            LineString([(0, 0), (5000, 0)]),
            LineString([(5000, 0), (10000, 0)]),
            LineString([(5000, -2000), (5000, 0)]),  # meets S at (5000, 0): no junction
            LineString([(5000, 0), (5000, 2000)]),
            LineString([(10000, -2000), (10000, 0)]),  # meets S at (10000, 0): junction
            LineString([(0, -2000), (0, 0)]),  # meets S at (0, 0): junction
        ],
        crs=2180,
    )
    junctions = gpd.GeoDataFrame(geometry=[Point(10000, 20), Point(0, -30)], crs=2180)
    graph = build_graph(roads, junctions)
    start = snap_points(graph, np.array([Point(5000, -2000)]))
    t = node_times(graph, start)
    mid = snap_points(graph, np.array([Point(5000, 2000)]))[0]
    # from the south end of the viaduct road, the north end is 4 km on an L road: the
    # shared vertex with the S road is a plain crossing of the local road itself
    assert t[mid] == pytest.approx(4.0 / 40 * 60)
    far = snap_points(graph, np.array([Point(10000, -2000)]))[0]
    # to get to the other local road one cannot hop on the expressway at (5000, 0)
    assert np.isinf(t[far])
    # from the junction at x=0 the expressway leads to the junction at x=10000
    t0 = node_times(graph, snap_points(graph, np.array([Point(0, -2000)])))
    assert t0[far] == pytest.approx(2 / 40 * 60 + 10 / 100 * 60 + 2 / 40 * 60)


def test_site_time_adds_access_leg_and_position_on_segment():
    roads = gpd.GeoDataFrame(
        {"road_class": ["L", "L"]},
        geometry=[LineString([(0, 0), (1000, 0)]), LineString([(1000, 0), (3000, 0)])],
        crs=2180,
    )
    graph = build_graph(roads)
    site = box(1400, 150, 1600, 350)  # 150 m north of the second segment, at x 1400–1600
    access = access_points(graph, np.array([site]))
    assert access.leg_m[0] == pytest.approx(150)
    times = node_times(graph, snap_points(graph, np.array([Point(0, 0)])))
    t = site_times(graph, access, times)[0]
    # entry where the site's centre projects (x=1500): 1.5 km on L at 40 km/h,
    # + the 150 m access leg at 15 km/h
    assert t == pytest.approx(1.5 / 40 * 60 + 0.15 / 15 * 60, rel=1e-6)


def test_network_time_is_never_shorter_than_straight_line_at_top_speed(demo_store):
    from omw_sites.store import read_sites

    s = read_sites(demo_store, read_geometry=False)
    fastest = max(DEFAULT_SPEEDS_KMH.values())
    lower = s["dist_junction_m"] / 1000 / fastest * 60
    finite = np.isfinite(s["time_junction_min"])
    assert finite.mean() > 0.95
    assert (s.loc[finite, "time_junction_min"] >= lower[finite] - 1e-6).all()
