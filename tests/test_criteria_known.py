"""Every criterion of ``measure()`` against answers worked out by hand on a made-up region.

The region (EPSG:2180, east of Warsaw's core centre at x 636973, y 486980) has three
sites, each an exact rectangle:

    A  x 640150–640250, y 486900–487000   1 ha, TERYT 1465011 (Warszawa)
    B  x 641400–641600, y 486900–487000   2 ha, TERYT 1421042 (Stare Babice)
    C  x 636000–636100, y 492000–492100   1 ha, TERYT 1465118: a Warsaw district, found
                                          by location in Warszawa (TERYT 1465011)

and one layer of every kind the criteria read, placed so that each answer is a length
along an axis, a Pythagorean distance or a ratio of rectangle areas (see each layer).
Distances are rounded to 0.1 m, shares to 4 decimals, minutes and slopes to 2 and
compactness to 3 by ``measure()`` itself: the expected values below are rounded the same
way and compared to 1e-6, so a result one rounding step off fails. The inscribed-circle
width is the one exception: GEOS finds it to the 1 m tolerance ``measure()`` asks for.

The layers are the canonical ones :class:`RawData` holds after ingest (their columns as
``etl.ingest`` maps them), so the test starts where the pipeline's criteria stage does.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely import LineString, Point, box

from omw_sites.criteria.measure import measure
from omw_sites.etl.ingest import QUARANTINE_COLUMNS, RawData
from omw_sites.layers import SITE_NO_DATA, WORK_CRS

hyp = math.hypot
NAN = float("nan")
NA = pd.NA


def _gdf(rows: list[dict], geoms: list, columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=WORK_CRS)


def _h(x0: float, x1: float, y: float) -> LineString:
    return LineString([(x0, y), (x1, y)])


def _v(x: float, y0: float, y1: float) -> LineString:
    return LineString([(x, y0), (x, y1)])


SITES = gpd.GeoDataFrame(
    {
        "site_id": ["A", "B", "C"],
        "teryt": ["1465011", "1421042", "1465118"],
        "area_ha": [1.0, 2.0, 1.0],
    },
    geometry=[
        box(640150, 486900, 640250, 487000),
        box(641400, 486900, 641600, 487000),
        box(636000, 492000, 636100, 492100),
    ],
    crs=WORK_CRS,
)

# ------------------------------------------------------------------------ the layers
GMINY = _gdf(
    [{"teryt": "1465011", "name": "Warszawa"}, {"teryt": "1421042", "name": "Stare Babice"}],
    [box(630000, 480000, 641000, 495000), box(641000, 480000, 650000, 495000)],
    ("teryt", "name"),
)

_ZONING_COLS = ("plan_id", "teryt", "plan_name", "adopted", "symbol_raw", "number", "symbol")
_ZONING_COLS += ("classes", "known")


def _zone(plan: str, adopted: str, number: str, cls: str) -> dict:
    return dict(
        zip(
            _ZONING_COLS,
            (plan, "1465011", plan, adopted, number + cls, number, cls, cls, True),
            strict=True,
        )
    )


# A: 70 % under 1P/U of one plan, 30 % under 2ZL of another; B and C: no MPZP
ZONING = _gdf(
    [_zone("MPZP Alfa", "2015-03-01", "1", "P/U"), _zone("MPZP Beta", "2019-11-20", "2", "ZL")],
    [box(640150, 486900, 640220, 487000), box(640220, 486800, 640400, 487100)],
    _ZONING_COLS,
)

# Warszawa's plan ogólny: SP over 60 % of A, SU over its other 40 % and over all of C;
# Stare Babice has none
PLAN_ZONES = _gdf(
    [
        {"symbol": s, "designation": "", "name": "", "teryt": "1465011", "in_force_from": ""}
        for s in ("SP", "SU", "SU")
    ],
    [
        box(640000, 486000, 640210, 488000),
        box(640210, 486000, 641000, 488000),
        box(635000, 491000, 637000, 493000),
    ],
    ("symbol", "designation", "name", "teryt", "in_force_from"),
)

# Roads. A local chain along y 486850: N0 (x 636973, under the centre) – N1 (640000) –
# N2 (641000) – N3 (642000), classes G 60 km/h, L 40, Z 50 → 3.027, 1.5 and 1.2 min.
# Motorway A from N3 (junction J1) 2,000 m north to MA (junction J2): 2000/110 km/h; a
# 500 m class-D spur (30 km/h, 1 min) east from MA to P (642500, 488850). An expressway S
# from N2 to MA that would be a shortcut, but N2 has no junction within 150 m: a viaduct,
# not an entry. The sites' access legs are 50 m at 15 km/h = 0.2 min; C is 5 km from
# every road.
N0, N1, N2, N3 = (636973, 486850), (640000, 486850), (641000, 486850), (642000, 486850)
MA, P = (642000, 488850), (642500, 488850)
ROADS = _gdf(
    [{"road_class": c, "management": "", "number": ""} for c in ("G", "L", "Z", "A", "S", "D")],
    [
        LineString([N0, N1]),
        LineString([N1, N2]),
        LineString([N2, N3]),
        LineString([N3, MA]),
        LineString([N2, MA]),
        LineString([MA, P]),
    ],
    ("road_class", "management", "number"),
)
S1_MIN, S2_MIN = 1000 / 40 / 1000 * 60, 1000 / 50 / 1000 * 60  # 1.5, 1.2
S0_MIN, MW_MIN, SPUR_MIN, LEG_MIN = 3027 / 60 / 1000 * 60, 2000 / 110 / 1000 * 60, 1.0, 0.2
JUNCTIONS = _gdf(
    [
        {"name": "Węzeł Wschód", "road": "S17", "number": "1"},
        {"name": "Węzeł Północ", "road": "A2", "number": "2"},
    ],
    [Point(N3), Point(MA)],
    ("name", "road", "number"),
)
# a passenger station 50 m south of N1, a freight terminal 50 m south of N2 (each snaps
# to that node: the destination has no access leg of its own), an airport 100 m past P
STATIONS = _gdf(
    [{"name": "Stacja", "kind": "passenger"}, {"name": "Terminal", "kind": "freight"}],
    [Point(640000, 486800), Point(641000, 486800)],
    ("name", "kind"),
)
AIRPORTS = _gdf([{"name": "Lotnisko", "iata": "XXX"}], [Point(642600, 488850)], ("name", "iata"))

_UTIL = ("network", "status", "voltage", "diameter_mm", "operator")


def _u(network, geom, status="existing", voltage="", diameter=np.nan):
    return {
        "network": network,
        "status": status,
        "voltage": voltage,
        "diameter_mm": diameter,
        "operator": "",
        "geometry": geom,
    }


_UTIL_ROWS = [
    # water: W1 20 m north of A (DN150), W2 80 m north of B (DN300); planned 300 m south
    _u("water", _h(640000, 640500, 487020), diameter=150.0),
    _u("water", _h(641000, 642000, 487080), diameter=300.0),
    _u("water", _h(640200, 641600, 486600), status="planned"),
    # sewer: crosses A (DN400); a DN600 stub 50 m west of B; nothing planned
    _u("sewer", _v(640200, 486800, 487100), diameter=400.0),
    _u("sewer", _h(641300, 641350, 486950), diameter=600.0),
    # power: a 110 kV line ("w") 20 m north of A and B, the 30 m corridor of which takes
    # their northern 10 m; a low-voltage line touching B's northern edge; a planned HV
    # line across B (planned: no corridor)
    _u("power", _h(639000, 643000, 487020), voltage="w"),
    _u("power", _v(641500, 487000, 487200), voltage="n"),
    _u("power", _v(641450, 486800, 487100), status="planned", voltage="w"),
    # gas: along A's southern edge (touching is on site), DN110; planned 2 km south
    _u("gas", _h(640050, 640200, 486900), diameter=110.0),
    _u("gas", _h(640000, 642000, 484900), status="planned", diameter=250.0),
    # heat: only a planned pipe, 100 m north of A and B
    _u("heat", _h(640250, 641400, 487100), status="planned", diameter=200.0),
    # telecom: 200 m south of A and B; nothing planned
    _u("telecom", _h(640000, 642000, 486700)),
]
UTILITIES = gpd.GeoDataFrame(
    pd.DataFrame(_UTIL_ROWS)[[*_UTIL, "geometry"]], geometry="geometry", crs=WORK_CRS
)
SUBSTATIONS = _gdf(
    [{"name": "GPZ 1", "capacity_mw": 12.5}, {"name": "GPZ 2", "capacity_mw": 40.0}],
    [Point(640200, 487500), Point(641500, 486500)],
    ("name", "capacity_mw"),
)
# BDOT10k power lines (OT_SULN_L, voltage in kV): a 220 kV line 20 m east of C (its
# corridor takes C's eastern 10 m), and a 15 kV line across A, which is no HV line
POWER_LINES = _gdf(
    [{"X_KOD": "SULN01", "NAPIECIE": 220}, {"X_KOD": "SULN01", "NAPIECIE": 15}],
    [_v(636120, 491000, 493000), _v(640180, 486000, 488000)],
    ("X_KOD", "NAPIECIE"),
)
# constraints: flood over A's western 25 m; Natura 2000 (two overlapping areas, counted
# once) over B's eastern 80 m; forest over C's southern 30 m; surface water over B's
# western 40 m
FLOOD = _gdf([{"name": "Q1%"}], [box(640100, 486800, 640175, 487100)], ("name",))
NATURA = _gdf(
    [{"code": "PLH140001", "name": "N"}, {"code": "PLB140002", "name": "N2"}],
    [box(641520, 486800, 641700, 487100), box(641550, 486800, 641700, 487100)],
    ("code", "name"),
)
FOREST = _gdf([{"X_KOD": "PTLZ01"}], [box(636000, 492000, 636100, 492030)], ("X_KOD",))
WATER = _gdf([{"X_KOD": "PTWP02"}], [box(641400, 486900, 641440, 487000)], ("X_KOD",))

LAYERS = {
    "gminy": GMINY,
    "zoning": ZONING,
    "plan_zones": PLAN_ZONES,
    "roads": ROADS,
    "junctions": JUNCTIONS,
    "stations": STATIONS,
    "airports": AIRPORTS,
    "utilities": UTILITIES,
    "substations": SUBSTATIONS,
    "power_lines": POWER_LINES,
    "flood": FLOOD,
    "natura2000": NATURA,
    "forest": FOREST,
    "water": WATER,
}


def _dem(path) -> None:
    """DEM of 10 m cells over x 640000–642000, y 486500–487500 (C lies outside it).

    z rises 2 m per 100 m northwards everywhere, and eastwards 5 per 100 m west of
    x 641000, 10 per 100 m up to x 641500 and 2 per 100 m beyond. Central differences of
    a plane are exact, so every cell of A has hypot(5, 2) %. B's 20 columns of cells
    (centres x 641405…641595): nine at 10 %, the one left of the break at x 641500
    (641495: (100.1 − 98.5) / 20 m) at 8 %, the one right of it at 4 %, nine at 2 % —
    each with the 2 % northward rise.
    """
    xs = 640000 + 5 + 10 * np.arange(200)
    ys = 487500 - 5 - 10 * np.arange(100)
    fx = np.where(
        xs < 641000,
        0.05 * (xs - 640000),
        np.where(xs < 641500, 50 + 0.10 * (xs - 641000), 100 + 0.02 * (xs - 641500)),
    )
    z = fx[None, :] + 0.02 * (ys[:, None] - 486500)
    profile = {
        "driver": "GTiff",
        "width": 200,
        "height": 100,
        "count": 1,
        "dtype": "float64",
        "crs": WORK_CRS,
        "transform": from_origin(640000, 487500, 10, 10),
        "nodata": -9999,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(z, 1)


def _raw(layers: dict[str, gpd.GeoDataFrame], dem_path) -> RawData:
    quarantine = pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return RawData(dict(layers), dem_path, {}, quarantine)


# ------------------------------------------------------------------- the answers
# per column: [A, B, C]
_B_SLOPE_MEAN = (9 * hyp(10, 2) + hyp(8, 2) + hyp(4, 2) + 9 * hyp(2, 2)) / 20
# C is 5 km from any road: every travel time and its access leg are not measured
_OFF_ROAD = (
    "time_junction_min, time_centre_min, time_airport_min, time_rail_freight_min, "
    "time_station_min, access_leg_m: no road within 3 km in the road data"
)
_NO_DEM = "slope_mean_pct, slope_max_pct: outside the terrain model"

_NO_LAYER_HERE = (
    "population_30min",
    "population_45min",
    "workforce_30min",
    "workforce_45min",
    "max_height_m",
    "max_coverage_share",
    "intensity_min",
    "intensity_max",
    "min_bio_active_share",
    "agri_share",
    "forest_land_share",
    "soil_i_iii_share",
    "soil_iv_vi_share",
    "built_up_share",
)

EXPECTED: dict[str, list] = {
    "site_id": ["A", "B", "C"],
    "area_ha": [1.0, 2.0, 1.0],
    # C's district code is not a gmina of the boundary layer: found by location
    "teryt": ["1465011", "1421042", "1465011"],
    "gmina": ["Warszawa", "Stare Babice", "Warszawa"],
    # ---- planning
    "zoning_symbol": ["1P/U", "", ""],
    "zoning_class": ["P/U", "", ""],
    "zoning_share": [0.7, 0.0, 0.0],
    "zoning_classes": ["P/U 0.70; ZL 0.30", "", ""],
    "zoning_plan": ["MPZP Alfa", "", ""],
    "zoning_adopted": ["2015-03-01", "", ""],
    "plan_zone": ["SP", "", "SU"],
    "planning_instrument": ["mpzp", "none", "plan_ogolny"],
    "no_plan_ogolny": [False, True, False],
    # ---- straight-line access distances (from the site's edge)
    # J1 (642000, 486850) for A and B; J2 (642000, 488850) for C
    "dist_junction_m": [hyp(1750, 50), hyp(400, 50), hyp(5900, 3150)],
    "junction_name": ["S17 Węzeł Wschód", "S17 Węzeł Wschód", "A2 Węzeł Północ"],
    # the centre (636973, 486980) is level with A and B
    "dist_centre_m": [640150 - 636973, 641400 - 636973, hyp(873, 5020)],
    "dist_station_m": [hyp(150, 100), hyp(1400, 100), hyp(3900, 5200)],
    "dist_rail_freight_m": [hyp(750, 100), hyp(400, 100), hyp(4900, 5200)],
    "dist_airport_m": [hyp(2350, 1850), hyp(1000, 1850), hyp(6500, 3150)],
    # ---- travel minutes. A enters L (N1–N2) at x 640250, a fifth of the way from N1;
    # B enters Z (N2–N3) half-way. Each time is the 0.2 min leg plus the cheaper way
    # round from the entry point.
    "access_leg_m": [50.0, 50.0, NAN],
    "time_centre_min": [
        LEG_MIN + S0_MIN + 0.2 * S1_MIN,
        LEG_MIN + S0_MIN + S1_MIN + 0.5 * S2_MIN,
        NAN,
    ],
    "time_junction_min": [LEG_MIN + 0.8 * S1_MIN + S2_MIN, LEG_MIN + 0.5 * S2_MIN, NAN],
    # the airport is reached through junction J1, the motorway and the spur: taking the
    # S shortcut from N2 would give A 0.2 + 1.2 + 1.342 + 1 = 3.74 min
    "time_airport_min": [
        LEG_MIN + 0.8 * S1_MIN + S2_MIN + MW_MIN + SPUR_MIN,
        LEG_MIN + 0.5 * S2_MIN + MW_MIN + SPUR_MIN,
        NAN,
    ],
    "time_station_min": [LEG_MIN + 0.2 * S1_MIN, LEG_MIN + S1_MIN + 0.5 * S2_MIN, NAN],
    "time_rail_freight_min": [LEG_MIN + 0.8 * S1_MIN, LEG_MIN + 0.5 * S2_MIN, NAN],
    # ---- utilities: the nearest existing line, its diameter or voltage; planned lines
    "dist_water_m": [20.0, 80.0, hyp(3900, 4980)],
    "water_on_site": [False, False, False],
    "water_diameter_mm": [150.0, 300.0, 150.0],
    "dist_water_planned_m": [300.0, 300.0, hyp(4100, 5400)],
    "dist_sewer_m": [0.0, 50.0, hyp(4100, 4900)],
    "sewer_on_site": [True, False, False],
    "sewer_diameter_mm": [400.0, 600.0, 400.0],
    "dist_sewer_planned_m": [NAN, NAN, NAN],  # no planned sewers
    "dist_power_m": [20.0, 0.0, hyp(2900, 4980)],
    "power_on_site": [False, True, False],
    "power_voltage": ["w", "n", "w"],
    "dist_power_planned_m": [1200.0, 0.0, hyp(5350, 4900)],
    "dist_gas_m": [0.0, 1200.0, hyp(3950, 5100)],
    "gas_on_site": [True, False, False],
    "gas_diameter_mm": [110.0, 110.0, 110.0],
    "dist_gas_planned_m": [2000.0, 2000.0, hyp(3900, 7100)],
    # no existing heat pipe at all: not measured, not "far away"
    "dist_heat_m": [NAN, NAN, NAN],
    "heat_on_site": [NA, NA, NA],
    "heat_diameter_mm": [NAN, NAN, NAN],
    "dist_heat_planned_m": [100.0, 100.0, hyp(4150, 4900)],
    "dist_telecom_m": [200.0, 200.0, hyp(3900, 5300)],
    "telecom_on_site": [False, False, False],
    "dist_telecom_planned_m": [NAN, NAN, NAN],
    "dist_substation_m": [500.0, 400.0, hyp(4100, 4500)],
    "power_capacity_mw": [12.5, 40.0, 12.5],
    # ---- constraints (shares of the site's area)
    "flood_share": [0.25, 0.0, 0.0],
    "natura_share": [0.0, 0.4, 0.0],
    "forest_share": [0.0, 0.0, 0.3],
    # the 110 kV line for A and B; the 220 kV BDOT line for C (the 15 kV one across A
    # and the planned HV line across B do not count)
    "dist_hv_line_m": [20.0, 20.0, 20.0],
    "hv_corridor_share": [0.1, 0.1, 0.1],
    # A: flood 2,500 m² ∪ corridor 1,000 m² (overlap 250) = 3,250 of 10,000
    # B: Natura 8,000 ∪ water 4,000 ∪ corridor 2,000 (overlaps 800, 400) = 12,800 of 20,000
    # C: forest 3,000 ∪ corridor 1,000 (overlap 300) = 3,700 of 10,000
    "buildable_share": [1 - 0.325, 1 - 0.64, 1 - 0.37],
    # ---- shape: 4πA/P² of a square is π/4, of a 2:1 rectangle 4π·20,000/600²
    "compactness": [math.pi / 4, 4 * math.pi * 20000 / 600**2, math.pi / 4],
    "usable_width_m": [100.0, 100.0, 100.0],
    # ---- terrain
    "slope_mean_pct": [hyp(5, 2), _B_SLOPE_MEAN, NAN],
    "slope_max_pct": [hyp(5, 2), hyp(10, 2), NAN],
    SITE_NO_DATA: ["", "", f"{_OFF_ROAD}; {_NO_DEM}"],
    # ---- named access: what the distances above were measured to; no road here has a
    # national or voivodeship management code, nor a width; C is off the road network
    "junction_road": ["S17", "S17", "A2"],
    "airport_name": ["Lotnisko (XXX)"] * 3,
    "station_name": ["Stacja"] * 3,
    "rail_freight_name": ["Terminal"] * 3,
    "national_road": ["", "", ""],
    "dist_national_road_m": [NAN, NAN, NAN],
    "voivodeship_road": ["", "", ""],
    "dist_voivodeship_road_m": [NAN, NAN, NAN],
    "access_road_class": ["L", "Z", ""],
    "access_road_width_m": [NAN, NAN, NAN],
    # ---- no population grid, plan parameters, land-use, soil or building layers here
    # (tests/test_workforce.py, test_plan_parameters.py, test_land.py measure them)
    **{c: [NAN, NAN, NAN] for c in _NO_LAYER_HERE},
    "brownfield": [NA, NA, NA],
}

# the rounding measure() applies (see the module docstring)
DECIMALS = {"time_": 2, "slope_": 2, "compactness": 3, "area_ha": 4}


def _decimals(col: str) -> int | None:
    if col.startswith("dist_") or col == "access_leg_m":
        return 1
    if col.endswith("_share"):
        return 4
    return next((d for p, d in DECIMALS.items() if col.startswith(p)), None)


def _same(col: str, got, want) -> bool:
    if want is NA:  # a flag not measured
        return got is NA
    if got is NA or got is None:
        return False
    if isinstance(want, bool):
        return isinstance(got, (bool, np.bool_)) and bool(got) == want
    if isinstance(want, str):
        return isinstance(got, str) and got == want
    if math.isnan(want):
        return math.isnan(got)
    if col == "usable_width_m":  # the inscribed circle's 1 m search tolerance
        return abs(got - want) <= 1.0
    d = _decimals(col)
    return abs(got - (round(want, d) if d is not None else want)) <= 1e-6


def _check(out: gpd.GeoDataFrame, expected: dict[str, list]) -> None:
    """Every column of ``expected`` equals its answer for every site; all mismatches
    reported at once."""
    bad = [
        f"{col}[{site}]: got {g!r}, expected {w!r}"
        for col, want in expected.items()
        for site, g, w in zip(out["site_id"], out[col].tolist(), want, strict=True)
        if not _same(col, g, w)
    ]
    assert not bad, "\n".join(bad)


@pytest.fixture(scope="module")
def dem_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("dem") / "nmt.tif"
    _dem(path)
    return path


@pytest.fixture(scope="module")
def measured(dem_path):
    return measure(SITES, _raw(LAYERS, dem_path))


def test_every_criterion_has_its_known_answer(measured):
    out, _ = measured
    _check(out, EXPECTED)


def test_no_criterion_goes_unchecked(measured):
    """A column measure() adds that this test does not know fails here: give it a
    known answer in EXPECTED."""
    out, _ = measured
    produced = set(out.columns) - {"geometry"}
    assert produced - set(EXPECTED) == set(), "columns without a known-answer test"
    assert set(EXPECTED) - produced == set(), "expected columns measure() no longer makes"


_BASE_NOT_MEASURED = {
    "dist_heat_m",
    "heat_on_site",
    "heat_diameter_mm",
    "dist_sewer_planned_m",
    "dist_telecom_planned_m",
    "national_road",
    "dist_national_road_m",
    "voivodeship_road",
    "dist_voivodeship_road_m",
    "access_road_width_m",
    *_NO_LAYER_HERE,
    "brownfield",
}


def test_coverage_names_what_is_not_measured(measured):
    _, cov = measured
    assert set(cov.not_measured) == _BASE_NOT_MEASURED
    why = "no existing district-heating pipes in the utility data"
    assert cov.not_measured["dist_heat_m"] == why
    assert cov.partial == {}  # every constraint layer is there
    assert cov.site_counts == {_OFF_ROAD: 1, _NO_DEM: 1}


# ------------------------------------------------ each optional layer absent or empty
# What changes when a layer is missing, by hand; every other column keeps its answer.
_NETS = ("water", "sewer", "power", "gas", "heat", "telecom")
_UTILITY_COLUMNS = [
    c
    for c in EXPECTED
    if c not in ("power_capacity_mw", "power_voltage")
    and any(c.startswith((n, f"dist_{n}")) for n in _NETS)
]
CHANGES: dict[str, dict[str, list]] = {
    # C keeps its district code, so its gmina's plan ogólny is not found
    "gminy": {
        "gmina": ["", "", ""],
        "teryt": ["1465011", "1421042", "1465118"],
        "no_plan_ogolny": [False, True, True],
    },
    "zoning": {
        "zoning_symbol": ["", "", ""],
        "zoning_class": ["", "", ""],
        "zoning_share": [NAN, NAN, NAN],
        "zoning_classes": ["", "", ""],
        "zoning_plan": ["", "", ""],
        "zoning_adopted": ["", "", ""],
        # without an MPZP layer nobody knows there is none
        "planning_instrument": ["plan_ogolny", "unknown", "plan_ogolny"],
    },
    "plan_zones": {
        "plan_zone": ["", "", ""],
        "planning_instrument": ["mpzp", "none", "none"],
        "no_plan_ogolny": [NA, NA, NA],
    },
    "roads": {
        **{c: [NAN, NAN, NAN] for c in EXPECTED if c.startswith("time_")},
        "access_leg_m": [NAN, NAN, NAN],
        "access_road_class": ["", "", ""],
        SITE_NO_DATA: ["", "", _NO_DEM],
    },
    # without junctions the motorway has no entry: the airport (beyond it) is cut off
    "junctions": {
        "dist_junction_m": [NAN, NAN, NAN],
        "junction_name": ["", "", ""],
        "junction_road": ["", "", ""],
        "time_junction_min": [NAN, NAN, NAN],
        "time_airport_min": [NAN, NAN, NAN],
        SITE_NO_DATA: [
            "time_airport_min: not reachable on the road network",
            "time_airport_min: not reachable on the road network",
            f"{_OFF_ROAD}; {_NO_DEM}",
        ],
    },
    "stations": {
        **{
            c: [NAN, NAN, NAN]
            for c in (
                "dist_station_m",
                "dist_rail_freight_m",
                "time_station_min",
                "time_rail_freight_min",
            )
        },
        "station_name": ["", "", ""],
        "rail_freight_name": ["", "", ""],
    },
    "airports": {
        "dist_airport_m": [NAN, NAN, NAN],
        "time_airport_min": [NAN, NAN, NAN],
        "airport_name": ["", "", ""],
    },
    # every utility column; HV lines only from BDOT10k (the 220 kV line by C)
    "utilities": {
        **{c: [NA] * 3 if c.endswith("_on_site") else [NAN] * 3 for c in _UTILITY_COLUMNS},
        "power_voltage": ["", "", ""],
        "dist_hv_line_m": [
            hyp(640150 - 636120, 491000 - 487000),
            hyp(641400 - 636120, 491000 - 487000),
            20.0,
        ],
        "hv_corridor_share": [0.0, 0.0, 0.1],
        # A: flood 2,500; B: Natura 8,000 ∪ water 4,000; C unchanged
        "buildable_share": [0.75, 0.4, 0.63],
    },
    "substations": {"dist_substation_m": [NAN, NAN, NAN], "power_capacity_mw": [NAN, NAN, NAN]},
    # A: the corridor's 1,000 m² alone
    "flood": {"flood_share": [NAN, NAN, NAN], "buildable_share": [0.9, 0.36, 0.63]},
    # B: water 4,000 ∪ corridor 2,000 (overlap 400) = 5,600
    "natura2000": {"natura_share": [NAN, NAN, NAN], "buildable_share": [0.675, 0.72, 0.63]},
    # C: the corridor's 1,000 m² alone
    "forest": {"forest_share": [NAN, NAN, NAN], "buildable_share": [0.675, 0.36, 0.9]},
    # B: Natura 8,000 ∪ corridor 2,000 (overlap 800) = 9,200
    "water": {"buildable_share": [0.675, 0.54, 0.63]},
    # C: HV distance now to the 110 kV GESUT line, no corridor on C
    "power_lines": {
        "dist_hv_line_m": [20.0, 20.0, hyp(2900, 4980)],
        "hv_corridor_share": [0.1, 0.1, 0.0],
        "buildable_share": [0.675, 0.36, 0.7],
    },
    "dem": {
        "slope_mean_pct": [NAN, NAN, NAN],
        "slope_max_pct": [NAN, NAN, NAN],
        SITE_NO_DATA: ["", "", _OFF_ROAD],
    },
}
# all NaN here, but site by site (not reachable), not for want of the layer
PER_SITE_GAPS = {"junctions": {"time_airport_min"}}
_CASES = [(k, "absent") for k in CHANGES] + [(k, "empty") for k in LAYERS]


@pytest.mark.parametrize(("key", "how"), _CASES, ids=[f"{k}-{h}" for k, h in _CASES])
def test_a_missing_layer_leaves_only_its_criteria_unmeasured(key, how, dem_path):
    layers = dict(LAYERS)
    dem = dem_path
    if key == "dem":
        dem = None
    elif how == "absent":
        del layers[key]
    else:
        layers[key] = layers[key].iloc[:0]
    out, cov = measure(SITES, _raw(layers, dem))
    _check(out, {**EXPECTED, **CHANGES[key]})
    # the columns now empty for every site are recorded, with a reason
    empty = {
        c
        for c, v in CHANGES[key].items()
        if c != SITE_NO_DATA and all(x is NA or x == "" or x != x for x in v)
    }
    empty -= PER_SITE_GAPS.get(key, set())
    assert set(cov.not_measured) == _BASE_NOT_MEASURED | empty


def test_a_road_that_leads_nowhere(dem_path):
    """A site beside a road piece joined to nothing: its access leg is measured, its
    travel times are not (NaN, with the reason), and nothing else is invented."""
    site = gpd.GeoDataFrame(
        {"site_id": ["D"], "teryt": ["1421042"], "area_ha": [1.0]},
        geometry=[box(645200, 490020, 645300, 490120)],
        crs=WORK_CRS,
    )
    roads = pd.concat(
        [
            ROADS,
            _gdf(
                [{"road_class": "I", "management": "", "number": ""}],
                [_h(645000, 645500, 490000)],
                ("road_class", "management", "number"),
            ),
        ],
        ignore_index=True,
    )
    out, cov = measure(site, _raw({**LAYERS, "roads": roads}, dem_path))
    assert out["access_leg_m"].tolist() == [20.0]
    times = [c for c in EXPECTED if c.startswith("time_")]
    assert out[times].isna().all(axis=None)
    gaps = "; ".join(
        f"{c}: not reachable on the road network"
        for c in (
            "time_junction_min",
            "time_centre_min",
            "time_airport_min",
            "time_rail_freight_min",
            "time_station_min",
        )
    )
    assert out[SITE_NO_DATA].iloc[0] == f"{gaps}; {_NO_DEM}"
    assert cov.site_counts[_NO_DEM] == 1
