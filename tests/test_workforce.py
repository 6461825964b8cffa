"""Workforce catchment: residents within 30 and 45 minutes by road, counted by hand.

The region: one class-G road (60 km/h: exactly 1 minute per kilometre) along y = Y0 from
x = X0 to X0 + 60 km, cut into 1 km segments (nodes 0 … 60). A 1 km census cell is
centred on every node k, with 1000 + k residents of whom 600 + k are of working age.
Three more cells: one at node 5 (1 km south of it) with 500 residents and a blank
working-age count, one at node 30 (1 km north) whose counts are blank (statistical
secrecy), and one 10 km north of the road (no road within 3 km: left out).

    S1  a 1 ha square 50 m north of the road, centred over the middle of segment 10–11:
        0.2 min of access leg (50 m at 15 km/h) + 0.5 min to node 10 or 11, then a
        minute per node: within 30 min nodes 0 … 40, within 45 min nodes 0 … 55.
    S2  a square touching the road at node 20 (no leg): node k is |k − 20| minutes
        away, so node 50 is exactly 30.0 minutes away and counts; within 45 min: all.
    S3  a square 8 km from any road: not measured.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely import LineString, box

from omw_sites.criteria.catchment import (
    catchment,
    core_graph,
    population_nodes,
    site_catchment_baseline,
)
from omw_sites.criteria.measure import measure, road_network
from omw_sites.criteria.network import access_points, build_graph
from omw_sites.etl.detect import classify_layers
from omw_sites.etl.ingest import QUARANTINE_COLUMNS, RawData, read_raw_layer
from omw_sites.layers import RAW_BY_KEY, SITE_NO_DATA, WORK_CRS

X0, Y0 = 600_000.0, 480_000.0
KM = 1000.0
COLUMNS = ("population_30min", "workforce_30min", "population_45min", "workforce_45min")

ROADS = gpd.GeoDataFrame(
    {"road_class": ["G"] * 60, "management": [""] * 60, "number": [""] * 60},
    geometry=[LineString([(X0 + k * KM, Y0), (X0 + (k + 1) * KM, Y0)]) for k in range(60)],
    crs=WORK_CRS,
)


def _cell(x: float, y: float):
    return box(x - 500, y - 500, x + 500, y + 500)


_ROWS = [(1000.0 + k, 600.0 + k, _cell(X0 + k * KM, Y0)) for k in range(61)]
_ROWS += [
    (500.0, np.nan, _cell(X0 + 5 * KM, Y0 - KM)),  # working age blank
    (np.nan, np.nan, _cell(X0 + 30 * KM, Y0 + KM)),  # secret
    (5000.0, 3000.0, _cell(X0 + 20 * KM, Y0 + 10 * KM)),  # off the road network
]
POPULATION = gpd.GeoDataFrame(
    {
        "code": [f"C{i}" for i in range(len(_ROWS))],
        "residents": [r[0] for r in _ROWS],
        "working_age": [r[1] for r in _ROWS],
    },
    geometry=[r[2] for r in _ROWS],
    crs=WORK_CRS,
)
SITES = gpd.GeoDataFrame(
    {"site_id": ["S1", "S2", "S3"], "teryt": ["1465011"] * 3, "area_ha": [1.0, 1.0, 1.0]},
    geometry=[
        box(X0 + 10_450, Y0 + 50, X0 + 10_550, Y0 + 150),
        box(X0 + 19_950, Y0, X0 + 20_050, Y0 + 100),
        box(X0 + 30_000, Y0 + 8_000, X0 + 30_100, Y0 + 8_100),
    ],
    crs=WORK_CRS,
)


def _sum(lo: int, hi: int, base: float) -> float:
    """Residents (base 1000) or working-age residents (base 600) of nodes lo … hi."""
    return sum(base + k for k in range(lo, hi + 1))


EXPECTED = {
    # node 5's extra cell: 500 residents, no working-age count
    "population_30min": [_sum(0, 40, 1000) + 500, _sum(0, 50, 1000) + 500, np.nan],
    "workforce_30min": [_sum(0, 40, 600), _sum(0, 50, 600), np.nan],
    "population_45min": [_sum(0, 55, 1000) + 500, _sum(0, 60, 1000) + 500, np.nan],
    "workforce_45min": [_sum(0, 55, 600), _sum(0, 60, 600), np.nan],
}


def _raw(layers: dict) -> RawData:
    return RawData(dict(layers), None, {}, pd.DataFrame(columns=QUARANTINE_COLUMNS))


def test_the_catchment_is_what_a_person_counts_by_hand():
    out, cov = measure(SITES, _raw({"roads": ROADS, "population": POPULATION}))
    for col, want in EXPECTED.items():
        np.testing.assert_array_equal(out[col].to_numpy(dtype=float), want, err_msg=col)
    assert EXPECTED["population_30min"][0] == 42_320  # 41 nodes: 41,000 + 820, and 500
    # the cell with no road within 3 km is named, with its residents
    assert cov.partial["population_30min"] == (
        "1 populated grid cell(s) with no road within 3 km (5,000 residents)"
    )
    assert "workforce_30min" in out[SITE_NO_DATA].iloc[2]
    assert not any(c in cov.not_measured for c in COLUMNS)


def test_a_partitions_part_of_the_network_gives_the_whole_networks_answers():
    """The road goes on 100 km east, people on every node: a partition holding S1 gets
    the segments it may enter from and the graph within 45 minutes of their ends (nodes
    0 … 59 of 0 … 160), and the same criteria, counted by hand, as with the whole."""
    east = gpd.GeoDataFrame(
        {"road_class": ["G"] * 100, "management": [""] * 100, "number": [""] * 100},
        geometry=[LineString([(X0 + k * KM, Y0), (X0 + (k + 1) * KM, Y0)]) for k in range(60, 160)],
        crs=WORK_CRS,
    )
    far_cells = gpd.GeoDataFrame(
        {
            "code": [f"E{k}" for k in range(61, 161)],
            "residents": [1000.0 + k for k in range(61, 161)],
            "working_age": [600.0 + k for k in range(61, 161)],
        },
        geometry=[_cell(X0 + k * KM, Y0) for k in range(61, 161)],
        crs=WORK_CRS,
    )
    roads = pd.concat([ROADS, east], ignore_index=True)
    people = pd.concat([POPULATION, far_cells], ignore_index=True)
    raw = _raw({"roads": roads, "population": people})
    whole = road_network(raw)
    s1 = SITES.iloc[[0]].reset_index(drop=True)
    part = whole.reach(tuple(s1.total_bounds))
    assert whole.graph is not None and part.graph is not None
    assert (whole.graph.n_nodes, part.graph.n_nodes) == (161, 60)
    assert len(part.graph.lines) == 7  # segments 7 … 13: within 3 km of S1
    a, _ = measure(s1, raw, whole)
    b, _ = measure(s1, raw, part)
    pd.testing.assert_frame_equal(a, b)
    assert b["population_45min"].iloc[0] == EXPECTED["population_45min"][0]
    assert b["workforce_30min"].iloc[0] == EXPECTED["workforce_30min"][0]
    assert b["access_road_class"].iloc[0] == "G"


def test_of_equally_near_roads_a_site_enters_from_the_first_listed():
    """S2 touches the road at node 20, on segments 19 and 20 alike: the first of them in
    the road layer's order, whichever order the layer is in (a partition holding part of
    the network picks as the whole does)."""
    s2 = SITES.geometry.to_numpy()[[1]]
    forward = access_points(build_graph(ROADS), s2)
    backward = access_points(build_graph(ROADS.iloc[::-1].reset_index(drop=True)), s2)
    assert forward.segment.tolist() == [19]  # segment 19 is row 19
    assert backward.segment.tolist() == [39]  # segment 20 is row 39 of the reversed layer
    assert forward.leg_m.tolist() == backward.leg_m.tolist() == [0.0]


def test_without_the_population_grid_nothing_is_invented():
    out, cov = measure(SITES, _raw({"roads": ROADS}))
    assert out[list(COLUMNS)].isna().all(axis=None)
    assert all(cov.not_measured[c].startswith("no population grid") for c in COLUMNS)


def test_without_roads_the_catchment_is_not_measured():
    out, cov = measure(SITES, _raw({"population": POPULATION}))
    assert out[list(COLUMNS)].isna().all(axis=None)
    assert all("road" in cov.not_measured[c] for c in COLUMNS)


def _lattice() -> gpd.GeoDataFrame:
    """A 12 × 12 km grid of local roads (1 km blocks) with dead-end spurs and a bent
    two-piece street: the reduction has dead ends and chains to remove."""
    lines, classes = [], []
    for i in range(13):
        for j in range(12):
            lines.append(LineString([(X0 + j * KM, Y0 + i * KM), (X0 + (j + 1) * KM, Y0 + i * KM)]))
            lines.append(LineString([(X0 + i * KM, Y0 + j * KM), (X0 + i * KM, Y0 + (j + 1) * KM)]))
            classes += ["L", "Z" if (i + j) % 3 else "D"]
    for j in range(12):  # spurs of two pieces each, south of the grid
        a, b, c = (X0 + j * KM, Y0), (X0 + j * KM, Y0 - 300), (X0 + j * KM + 200, Y0 - 700)
        lines += [LineString([a, b]), LineString([b, c])]
        classes += ["D", "D"]
    n = len(lines)
    return gpd.GeoDataFrame(
        {"road_class": classes, "management": [""] * n, "number": [""] * n},
        geometry=lines,
        crs=WORK_CRS,
    )


def _grid_population(step: int) -> gpd.GeoDataFrame:
    cells = [(x, y) for x in range(0, 12, step) for y in range(0, 12, step)]
    return gpd.GeoDataFrame(
        {
            "code": [f"C{i}" for i in range(len(cells))],
            "residents": [100.0 + i for i in range(len(cells))],
            "working_age": [60.0 + i for i in range(len(cells))],
        },
        geometry=[_cell(X0 + x * KM + 500, Y0 + y * KM + 500) for x, y in cells],
        crs=WORK_CRS,
    )


@pytest.mark.parametrize("step", [1, 4], ids=["more-cells-than-sites", "fewer-cells"])
def test_batched_search_equals_one_full_search_per_site(step):
    """The bounded, batched searches (from whichever side is smaller, on the reduced
    graph) give exactly the answer of one full Dijkstra per site on the whole graph;
    sites entering the network at the same point get the same answer."""
    roads = _lattice()
    graph = build_graph(roads)
    rng = np.random.default_rng(3)
    xy = rng.uniform([X0, Y0 - 500], [X0 + 12 * KM, Y0 + 12 * KM], (40, 2))
    geoms = np.array([box(x, y, x + 60, y + 60) for x, y in xy] + [box(X0, Y0, X0 + 60, Y0 + 60)])
    geoms = np.append(geoms, box(X0, Y0, X0 + 60, Y0 + 60))  # twice the same site
    access = access_points(graph, geoms)
    people = population_nodes(graph, _grid_population(step))
    limits = (8.0, 12.0)
    fast = catchment(graph, access, people, limits)
    slow = site_catchment_baseline(graph, access, people, np.arange(len(geoms)), limits)
    np.testing.assert_array_equal(fast, slow)
    assert (fast[0] < fast[1]).any() and (fast[:, -1] == fast[:, -2]).all()


def test_the_reduced_graph_keeps_every_minute_between_kept_nodes():
    from scipy.sparse.csgraph import dijkstra

    graph = build_graph(_lattice())
    rng = np.random.default_rng(5)
    keep = np.zeros(graph.n_nodes, dtype=bool)
    keep[rng.choice(graph.n_nodes, 25, replace=False)] = True
    core = core_graph(graph, keep)
    assert core.matrix.shape[0] < graph.n_nodes  # spurs and chains are gone
    nodes = np.flatnonzero(keep)
    full = dijkstra(graph.matrix, directed=False, indices=nodes)[:, nodes]
    reduced = dijkstra(core.matrix, directed=False, indices=core.index[nodes])
    np.testing.assert_allclose(reduced[:, core.index[nodes]], full, rtol=0, atol=1e-9)


def test_a_gus_grid_file_is_recognised_and_blank_cells_stay_unknown(tmp_path):
    """The census grid as GUS publishes it (GRID_NSP2021_RES.shp, EPSG:2180)."""
    grid = gpd.GeoDataFrame(
        {
            "CODE": ["CRS3035RES1000mN3245000E5065000", "CRS3035RES1000mN3246000E5065000"],
            "RES": [1234.0, None],
            "RES_MALE": [600.0, None],
            "RES_FEM": [634.0, None],
            "RES_0_14": [200.0, None],
            "RES_15_64": [800.0, None],
            "RES_65_": [234.0, None],
        },
        geometry=[_cell(X0, Y0), _cell(X0 + KM, Y0)],
        crs=WORK_CRS,
    )
    path = tmp_path / "GRID_NSP2021_RES.shp"
    grid.to_file(path)
    assert [key for _, key, _ in classify_layers(path)] == ["population"]
    frame = read_raw_layer(path, RAW_BY_KEY["population"])[0]
    assert frame["residents"].tolist()[0] == 1234.0 and np.isnan(frame["residents"].iloc[1])
    assert frame["working_age"].tolist()[0] == 800.0


def test_on_the_demo_region_the_ring_roads_have_the_largest_workforce(demo_raw):
    """The demo's census grid adds up to the metropolitan area's population, and sites
    near the expressway ring (S2, S8) reach more working-age residents within 30 minutes
    than sites far from it; no site reaches more people than live in the region."""
    import shapely

    from omw_sites.etl.ingest import load_raw
    from omw_sites.sites import assemble_sites, select_candidates

    raw = load_raw(demo_raw)
    grid = raw["population"]
    assert 3.2e6 < grid["residents"].sum() < 3.4e6  # GUS 2021: about 3.3 million
    sites = assemble_sites(select_candidates(raw["parcels"], raw["zoning"], raw["plan_zones"]))
    out, _ = measure(sites, raw)
    roads = raw["roads"]
    ring = roads[roads["number"].isin(["S2", "S8"])].geometry.to_numpy()
    d = shapely.distance(out.geometry.to_numpy()[:, None], ring[None, :]).min(axis=1)
    near, far = out["workforce_30min"][d <= 2000], out["workforce_30min"][d > 10_000]
    assert len(near) >= 5 and len(far) >= 5
    assert near.median() > 1.3 * far.median()
    assert out["workforce_30min"].max() <= grid["working_age"].sum()
    assert out["population_45min"].max() <= grid["residents"].sum()
    assert (out["workforce_30min"] <= out["workforce_45min"]).all()
