"""Roads (motorways, radials, rings, local grid), junctions, rail, stations and airports."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from omw_sites.demo._common import KM, catmull_rom, explode_lines, km, meander
from omw_sites.demo.geography import GMINY
from omw_sites.layers import STATION_FREIGHT, STATION_PASSENGER, WORK_CRS

# interchanges between motorways / expressways, km from the centre
NODES = {
    "Konotopa": (-15.0, -1.5),
    "Opacz": (-8.5, -10.0),
    "Lotnisko": (-4.5, -12.3),
    "Lubelska": (15.0, -5.0),
    "Młociny": (-2.5, 8.5),
}
_N = NODES

# number, class, chains of control points (a chain ends at an interchange or off the map)
MOTORWAYS: tuple[tuple[str, str, tuple[tuple[tuple[float, float], ...], ...]], ...] = (
    ("A2", "A", (((-46, -6.5), (-32, -5.0), (-22, -3.6), _N["Konotopa"]),)),
    ("A2", "A", ((_N["Lubelska"], (22, -6.2), (30, -7.0), (46, -8.0)),)),
    (
        "S2",
        "S",
        (
            (_N["Konotopa"], (-12, -6.0), _N["Opacz"]),
            (_N["Opacz"], _N["Lotnisko"]),
            (_N["Lotnisko"], (-0.5, -13.0), (3, -13.2), (8, -12), (12, -9), _N["Lubelska"]),
        ),
    ),
    ("S8", "S", (((-44, -29), (-22, -18.5), (-13, -14.5), _N["Opacz"]),)),
    (
        "S8",
        "S",
        (
            (_N["Konotopa"], (-12, 3), (-7, 6.5), _N["Młociny"]),
            (_N["Młociny"], (3.5, 9), (9, 9.8), (17, 16.5), (27, 27), (44, 40)),
        ),
    ),
    ("S7", "S", ((_N["Młociny"], (-6, 16), (-11, 24), (-17, 30), (-23, 44)),)),
    ("S7", "S", ((_N["Lotnisko"], (-6, -18), (-9, -23), (-12, -33), (-15, -46)),)),
    ("S17", "S", ((_N["Lubelska"], (21, -10.5), (28, -17), (44, -28)),)),
    ("S79", "S", (((-1.8, -3.0), (-3.0, -8.0), _N["Lotnisko"]),)),
)

# number, class, managing authority, control points (km); radials start at the centre
MAIN_ROADS: tuple[tuple[str, str, str, tuple[tuple[float, float], ...]], ...] = (
    ("7", "GP", "K", ((0, 0), (-2, 6), (-5, 12), (-5.5, 17.5), (-9, 27), (-13, 36), (-16, 44))),
    ("61", "GP", "K", ((0, 0), (2, 5), (3, 12), (3.2, 20), (3, 26), (5, 33), (7, 44))),
    ("631", "G", "W", ((0, 0), (5, 6), (8, 14), (11, 23), (13, 32), (16, 44))),
    ("8", "GP", "K", ((0, 0), (5, 4), (10, 11), (18, 21), (28, 33), (36, 44))),
    ("634", "G", "W", ((0, 0), (7, 3), (13, 5), (16, 13), (23, 15), (32, 19), (46, 23))),
    ("2", "GP", "K", ((0, 0), (7, 0.8), (13, 0.5), (20, 0), (30, 0.8), (46, 1.5))),
    ("17", "GP", "K", ((0, 0), (6, -3), (12, -6.5), (20, -10), (30, -15), (44, -22))),
    ("801", "G", "W", ((0, 0), (5, -5), (9, -11), (13, -17), (17, -23), (22, -32), (27, -44))),
    ("79", "G", "K", ((0, 0), (3, -5), (3.5, -11), (4, -20), (5, -30), (6, -46))),
    ("7", "GP", "K", ((0, 0), (-0.5, -6), (-1.5, -12), (-3, -20), (-4.5, -30), (-6, -46))),
    ("8", "GP", "K", ((0, 0), (-4, -5), (-10, -12), (-21, -16), (-30, -21), (-44, -28))),
    ("719", "G", "W", ((0, 0), (-6, -2), (-14, -5), (-18, -6), (-28, -9), (-46, -13))),
    ("2", "GP", "K", ((0, 0), (-7, 1), (-12, 2.5), (-18, 3), (-31, 0), (-46, -1))),
    ("580", "G", "W", ((0, 0), (-6, 4), (-15, 9), (-25, 12), (-46, 15))),
    ("721", "G", "W", ((4, -20), (-3, -20), (-11, -21), (-21, -16), (-25, -8), (-31, 0))),
    ("631", "G", "W", ((11, 23), (3, 26), (-5, 17))),
)

# line number, name, control points (km)
RAIL_LINES: tuple[tuple[str, str, tuple[tuple[float, float], ...]], ...] = (
    ("1", "Warszawa Zachodnia – Katowice",
     ((-3, -1), (-9, -3), (-13, -4), (-18, -6.2), (-28, -10), (-46, -15))),
    ("447", "Warszawa Zachodnia – Grodzisk Mazowiecki",
     ((-3, -1), (-8, -3.6), (-13, -4.7), (-18, -6.9), (-30, -11.6), (-46, -16.5))),
    ("3", "Warszawa Zachodnia – Kunowice",
     ((-3, -1), (-8, 0.5), (-12, 1.5), (-18, 2.6), (-25, 1.5), (-31, 0.6), (-46, 0))),
    ("448", "Warszawa Zachodnia – Warszawa Lotnisko Chopina", ((-3, -1), (-3.5, -4), (-3.2, -7.2))),
    ("8", "Warszawa Zachodnia – Kraków Główny",
     ((-3, -1), (-2.5, -5), (-2, -10), (-3, -20), (-4, -30), (-5.5, -46))),
    ("2", "Warszawa Zachodnia – Terespol",
     ((-3, -1), (-0.6, -0.6), (3.8, 0.3), (12, 1), (20, 0.5), (30, 0), (46, 0.5))),
    ("7", "Warszawa Wschodnia – Dorohusk",
     ((3.8, 0.3), (7, -5), (10, -12), (13, -17), (17, -23), (22, -32), (28, -46))),
    ("6", "Warszawa Wschodnia – Białystok",
     ((3.8, 0.3), (8, 3), (13, 5.5), (16, 13), (23, 15.5), (32, 20), (46, 25))),
    ("9", "Warszawa Wschodnia – Gdańsk Główny",
     ((3.8, 0.3), (4, 5), (4, 12), (3.5, 20), (3.2, 26), (4, 34), (6, 46))),
    ("20", "Warszawa Gołąbki – Warszawa Praga", ((-10, 1.2), (-5, 3.5), (-1, 4.2), (4.6, 4.7))),
)  # fmt: skip

STATIONS: tuple[tuple[str, str, tuple[float, float]], ...] = (
    ("Warszawa Centralna", STATION_PASSENGER, (-0.6, -0.6)),
    ("Warszawa Zachodnia", STATION_PASSENGER, (-3.0, -1.0)),
    ("Warszawa Wschodnia", STATION_PASSENGER, (3.8, 0.3)),
    ("Warszawa Ursus", STATION_PASSENGER, (-9.0, -3.0)),
    ("Piastów", STATION_PASSENGER, (-13.0, -4.0)),
    ("Pruszków", STATION_PASSENGER, (-18.0, -6.2)),
    ("Brwinów", STATION_PASSENGER, (-25.0, -8.8)),
    ("Warszawa Włochy", STATION_PASSENGER, (-7.5, -3.2)),
    ("Michałowice", STATION_PASSENGER, (-13.5, -4.9)),
    ("Ożarów Mazowiecki", STATION_PASSENGER, (-18.0, 2.6)),
    ("Płochocin", STATION_PASSENGER, (-24.0, 1.7)),
    ("Błonie", STATION_PASSENGER, (-31.0, 0.6)),
    ("Warszawa Służewiec", STATION_PASSENGER, (-2.3, -7.5)),
    ("Warszawa Lotnisko Chopina", STATION_PASSENGER, (-3.2, -7.2)),
    ("Warszawa Dawidy", STATION_PASSENGER, (-2.2, -13.5)),
    ("Piaseczno", STATION_PASSENGER, (-3.0, -20.0)),
    ("Złotokłos", STATION_PASSENGER, (-4.0, -28.0)),
    ("Warszawa Rembertów", STATION_PASSENGER, (12.0, 1.0)),
    ("Sulejówek Miłosna", STATION_PASSENGER, (20.0, 0.5)),
    ("Warszawa Falenica", STATION_PASSENGER, (10.0, -12.0)),
    ("Józefów", STATION_PASSENGER, (13.0, -17.0)),
    ("Otwock", STATION_PASSENGER, (17.0, -23.0)),
    ("Ząbki", STATION_PASSENGER, (13.0, 5.5)),
    ("Kobyłka", STATION_PASSENGER, (16.0, 13.0)),
    ("Wołomin", STATION_PASSENGER, (23.0, 15.5)),
    ("Warszawa Praga", STATION_PASSENGER, (4.0, 5.0)),
    ("Warszawa Żerań", STATION_PASSENGER, (4.0, 10.0)),
    ("Chotomów", STATION_PASSENGER, (3.4, 21.5)),
    ("Legionowo", STATION_PASSENGER, (3.2, 26.0)),
    ("Warszawa Gdańska", STATION_PASSENGER, (-1.0, 4.2)),
    ("Warszawa Praga Towarowa", STATION_FREIGHT, (4.6, 4.7)),
    ("Warszawa Gołąbki Towarowa", STATION_FREIGHT, (-10.0, 1.2)),
    ("Warszawa Główna Towarowa", STATION_FREIGHT, (-4.2, -1.6)),
    ("Pruszków Towarowa", STATION_FREIGHT, (-19.0, -7.4)),
    ("Błonie Bocznica", STATION_FREIGHT, (-29.5, 0.8)),
    ("Piaseczno Towarowa", STATION_FREIGHT, (-3.2, -22.0)),
    ("Kobyłka Towarowa", STATION_FREIGHT, (17.5, 13.6)),
    ("Otwock Towarowa", STATION_FREIGHT, (18.0, -24.5)),
)

AIRPORTS = (
    ("Lotnisko Chopina w Warszawie", "WAW", "EPWA", (-3.0, -7.0)),
    ("Warszawa-Modlin", "WMI", "EPMO", (-25.0, 35.0)),
)

# names for junctions: the nearest free one is used
PLACES: dict[str, tuple[float, float]] = {
    **NODES,
    "Puławska": (-0.5, -13.0),
    "Janki": (-12.5, -14.3),
    "Grodzisk": (-31.0, -5.0),
    "Łomianki": (-6.0, 16.0),
    "Wiązowna": (21.0, -10.5),
    "Marki": (9.0, 9.8),
    "Modlińska": (3.5, 9.0),
    "Powązkowska": (-7.0, 6.5),
    "Przyczółkowa": (3.0, -13.2),
    "Wał Miedzeszyński": (8.0, -12.0),
    "Pruszków": (-22.0, -3.6),
    "Ożarów": (-14.0, 1.0),
    "Halinów": (28.0, -6.8),
    "Emów": (27.0, -16.0),
    "Paszków": (-22.0, -18.5),
    "Nadarzyn": (-19.0, -17.0),
    "Lesznowola": (-9.0, -23.0),
    "Tarczyn": (-12.0, -33.0),
    "Kazuń": (-17.0, 30.0),
    "Czosnów": (-11.0, 24.0),
    "Radzymin": (27.0, 27.0),
    "Kobyłka": (17.0, 16.5),
    "Zakręt": (19.0, -7.5),
    "Sękocin": (-11.0, -15.5),
    "Marynarska": (-2.2, -3.9),
    "Głosków": (-6.0, -18.0),
    "Wólka Kosowska": (-8.0, -21.5),
    "Konik": (24.0, -6.5),
    "Zielonka": (13.0, 12.5),
    "Kiełpin": (-8.5, 20.0),
    "Słupno": (22.0, 21.0),
    "Mińsk": (40.0, -7.8),
    "Kołbiel": (40.0, -26.0),
    "Grójec": (-14.5, -42.0),
    "Wrocław": (-40.0, -27.0),
    "Gdańsk": (-21.0, 40.0),
    "Białystok": (40.0, 37.0),
    "Poznań": (-42.0, -6.3),
    "Kampinos": (-24.0, -4.0),
}

ROAD_PRIORITY = {"A": 0, "S": 1, "GP": 2, "G": 3, "Z": 4, "L": 5, "D": 6}
ROAD_COLUMNS = ("X_KOD", "KLASADROGI", "KATZARZADZANIA", "NUMERDROGI", "MATERIALNAWIERZCHNI")


@dataclass(frozen=True)
class Backbone:
    """Regional transport backbone (EPSG:2180), drawn before the local road grid."""

    roads: gpd.GeoDataFrame  # motorways, expressways, main roads and rings (ROAD_COLUMNS)
    rail: gpd.GeoDataFrame  # OT_SKTR_L: X_KOD, LINIA, NAZWA
    stations: gpd.GeoDataFrame  # NAZWA, RODZAJ, LINIA
    airports: gpd.GeoDataFrame  # NAZWA, KOD_IATA, KOD_ICAO
    junction_seeds: NDArray[np.float64]  # (n, 2) where motorways meet main roads or each other

    @property
    def motorways(self) -> gpd.GeoDataFrame:
        """Motorways and expressways only."""
        return self.roads[self.roads["KLASADROGI"].isin(["A", "S"])]


def _road_frame(rows: list[dict[str, object]], geoms: list[shapely.Geometry]) -> gpd.GeoDataFrame:
    df = pd.DataFrame(rows, columns=list(ROAD_COLUMNS))
    return gpd.GeoDataFrame(df, geometry=np.asarray(geoms, dtype=object), crs=WORK_CRS)


def build_backbone(rng: np.random.Generator, region: shapely.Polygon) -> Backbone:
    """Motorways, expressways, main radial and ring roads, rail, stations and airports."""
    rows: list[dict[str, object]] = []
    geoms: list[shapely.Geometry] = []
    for number, klass, chains in MOTORWAYS:
        for chain in chains:
            path = meander(catmull_rom(km(chain), 200.0), rng, 180.0, 9 * KM)
            geoms.append(shapely.LineString(path))
            surface = "betonowa" if number in ("A2", "S8") and rng.random() < 0.5 else "bitumiczna"
            rows.append(
                {"X_KOD": "SKDR01", "KLASADROGI": klass, "KATZARZADZANIA": "K",
                 "NUMERDROGI": number, "MATERIALNAWIERZCHNI": surface}
            )  # fmt: skip
    for number, klass, kat, ctrl in MAIN_ROADS:
        path = meander(catmull_rom(km(ctrl), 120.0), rng, 260.0, 4 * KM)
        geoms.append(shapely.LineString(path))
        rows.append(
            {"X_KOD": "SKDR02", "KLASADROGI": klass, "KATZARZADZANIA": kat,
             "NUMERDROGI": number, "MATERIALNAWIERZCHNI": "bitumiczna"}
        )  # fmt: skip
    for radius, ratio, klass in ((4.0, 1.1, "G"), (8.3, 1.18, "GP")):
        theta = np.linspace(0, 2 * np.pi, 400)
        r = radius * KM * (1 + 0.06 * np.sin(3 * theta + rng.uniform(0, 6.3)))
        ring = np.column_stack([r * np.cos(theta), ratio * r * np.sin(theta)]) + km([[0, 0]])
        ring[-1] = ring[0]
        geoms.append(shapely.LineString(ring))
        rows.append(
            {"X_KOD": "SKDR02", "KLASADROGI": klass, "KATZARZADZANIA": "G",
             "NUMERDROGI": None, "MATERIALNAWIERZCHNI": "bitumiczna"}
        )  # fmt: skip
    roads = _road_frame(rows, geoms)
    parts, idx = explode_lines(shapely.intersection(roads.geometry.values, region))
    roads = gpd.GeoDataFrame(
        roads.drop(columns="geometry").iloc[idx].reset_index(drop=True),
        geometry=parts,
        crs=WORK_CRS,
    )

    rail_geoms = [
        shapely.LineString(meander(catmull_rom(km(ctrl), 150.0), rng, 120.0, 6 * KM))
        for _, _, ctrl in RAIL_LINES
    ]
    rail_parts, ridx = explode_lines(shapely.intersection(np.asarray(rail_geoms), region))
    rail = gpd.GeoDataFrame(
        {
            "X_KOD": "SKTR01",
            "LINIA": [RAIL_LINES[i][0] for i in ridx],
            "NAZWA": [RAIL_LINES[i][1] for i in ridx],
            "ELEKTRYFIKACJA": "zelektryfikowana",
        },
        geometry=rail_parts,
        crs=WORK_CRS,
    )
    stations = _stations(rail)
    airports = gpd.GeoDataFrame(
        {
            "NAZWA": [a[0] for a in AIRPORTS],
            "KOD_IATA": [a[1] for a in AIRPORTS],
            "KOD_ICAO": [a[2] for a in AIRPORTS],
        },
        geometry=shapely.points(km([a[3] for a in AIRPORTS])),
        crs=WORK_CRS,
    )
    return Backbone(roads, rail, stations, airports, _junction_seeds(roads))


def _stations(rail: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Stations snapped onto the nearest rail line."""
    pts = shapely.points(km([s[2] for s in STATIONS]))
    tree = shapely.STRtree(rail.geometry.values)
    line_idx = tree.nearest(pts)
    lines = rail.geometry.values[line_idx]
    on_line = shapely.line_interpolate_point(lines, shapely.line_locate_point(lines, pts))
    return gpd.GeoDataFrame(
        {
            "NAZWA": [s[0] for s in STATIONS],
            "RODZAJ": [s[1] for s in STATIONS],
            "LINIA": rail["LINIA"].to_numpy()[line_idx],
        },
        geometry=on_line,
        crs=WORK_CRS,
    )


def _junction_seeds(roads: gpd.GeoDataFrame) -> NDArray[np.float64]:
    """Crossings of motorways with main roads, plus the interchanges, merged within 1 km."""
    fast = roads["KLASADROGI"].isin(["A", "S"]).to_numpy()
    mw, main = roads.geometry.values[fast], roads.geometry.values[~fast]
    a, b = np.meshgrid(np.arange(len(mw)), np.arange(len(main)), indexing="ij")
    cross = shapely.intersection(mw[a.ravel()], main[b.ravel()])
    pts = shapely.get_coordinates(cross)
    seeds = np.vstack([km(list(NODES.values())), pts])
    keep: list[int] = []
    for i, p in enumerate(seeds):
        if all(np.hypot(*(seeds[j] - p)) > 1.0 * KM for j in keep):
            keep.append(i)
    return seeds[keep]


def assemble_roads(
    backbone: Backbone,
    local: gpd.GeoDataFrame,
    spacing: float = 4.5 * KM,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Node all roads into one network and place the motorway junctions.

    Every road is split where it meets another at grade, so features end at the
    intersections and share their end vertices (BDOT10k-style segments). Motorways and
    expressways are grade-separated: they share a vertex with the rest of the network only
    at junctions (``wezly``) and at interchanges between themselves.

    Parameters
    ----------
    local : local roads (``ROAD_COLUMNS``) from the settlement grid
    spacing : float
        Least distance between junctions added on collector-road crossings, m.

    Returns
    -------
    roads : OT_SKDR_L segments
    junctions : wezly points (NAZWA, NUMER, DROGA, TYP)
    """
    src = pd.concat([backbone.roads, local], ignore_index=True)
    src_geom = src.geometry.values
    prio = src["KLASADROGI"].map(ROAD_PRIORITY).to_numpy()
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(src_geom)))
    seg_src = _source_of(noded, src_geom, prio)
    noded, seg_src = _drop_stubs(noded, seg_src)
    klass = src["KLASADROGI"].to_numpy()[seg_src]
    fast = np.isin(klass, ["A", "S"])

    # nodes where motorway segments meet: candidate junctions (exact shared vertices)
    ends = _endpoints(noded)
    keys = _keys(ends)
    fast_keys = np.unique(keys[np.repeat(fast, 2)])
    slow_keys = keys[np.repeat(~fast, 2)]
    meet = np.intersect1d(fast_keys, slow_keys)
    uniq, first = np.unique(keys, return_index=True)
    meet_xy = ends[first[np.searchsorted(uniq, meet)]]
    # motorway-motorway interchanges: end points shared by different numbers
    number = src["NUMERDROGI"].to_numpy(dtype=object)[seg_src]
    chosen = _choose_junctions(
        backbone.junction_seeds, meet_xy, ends, keys, fast, number, klass, spacing
    )
    # merge each motorway back into long lines, then split them at the junctions only
    junction_keys = set(_keys(chosen).tolist())
    mw_geoms, mw_src = _split_motorways(noded[fast], seg_src[fast], junction_keys)
    geoms = np.concatenate([mw_geoms, noded[~fast]])
    which = np.concatenate([mw_src, seg_src[~fast]])
    roads = gpd.GeoDataFrame(
        src.drop(columns="geometry").iloc[which].reset_index(drop=True),
        geometry=geoms,
        crs=WORK_CRS,
    )
    junctions = _name_junctions(chosen, roads)
    return roads, junctions


def _source_of(
    segs: NDArray[np.object_], src: NDArray[np.object_], prio: NDArray[np.int64]
) -> NDArray[np.intp]:
    """Index of the highest-class source line each noded segment came from."""
    mid = shapely.line_interpolate_point(segs, 0.5, normalized=True)
    s_idx, l_idx = shapely.STRtree(src).query(mid, predicate="dwithin", distance=0.01)
    best = np.full(len(segs), 99, dtype=np.int64)
    np.minimum.at(best, s_idx, prio[l_idx])
    ok = prio[l_idx] == best[s_idx]
    out = np.full(len(segs), -1, dtype=np.intp)
    out[s_idx[ok][::-1]] = l_idx[ok][::-1]  # first source of the best class
    if (out < 0).any():
        msg = "road noding produced a segment that matches no source road"
        raise RuntimeError(msg)
    return out


def _endpoints(lines: NDArray[np.object_]) -> NDArray[np.float64]:
    """(2n, 2) start and end points of n lines, interleaved."""
    start = shapely.get_coordinates(shapely.get_point(lines, 0))
    end = shapely.get_coordinates(shapely.get_point(lines, -1))
    return np.stack([start, end], axis=1).reshape(-1, 2)


def _keys(xy: NDArray[np.float64]) -> NDArray[np.int64]:
    """Integer keys of coordinates rounded to the millimetre (for exact node matching)."""
    q = np.round(np.asarray(xy) * 1000).astype(np.int64)
    return q[:, 0] * 1_000_000_000 + q[:, 1]


def _drop_stubs(
    segs: NDArray[np.object_], src: NDArray[np.intp], max_len: float = 6.0
) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """Remove the short overshoots left past a crossing (dangling, shorter than max_len)."""
    ends = _keys(_endpoints(segs))
    _, inv, counts = np.unique(ends, return_inverse=True, return_counts=True)
    deg = counts[inv].reshape(-1, 2)
    stub = (shapely.length(segs) < max_len) & (deg.min(axis=1) == 1)
    return segs[~stub], src[~stub]


def _choose_junctions(
    seeds: NDArray[np.float64],
    meet_xy: NDArray[np.float64],
    ends: NDArray[np.float64],
    keys: NDArray[np.int64],
    fast: NDArray[np.bool_],
    number: NDArray[np.object_],
    klass: NDArray[np.object_],
    spacing: float,
) -> NDArray[np.float64]:
    """Junction points: network nodes at the seeds, then collector crossings every few km."""
    fast_ends = ends[np.repeat(fast, 2)]
    fast_keys = keys[np.repeat(fast, 2)]
    fast_num = np.repeat(number[fast], 2)
    # interchanges: one node shared by motorways of different numbers
    inter = []
    for k in np.unique(fast_keys):
        if len(set(fast_num[fast_keys == k])) > 1:
            inter.append(fast_ends[fast_keys == k][0])
    chosen = list(inter)
    if len(meet_xy):
        tree = shapely.STRtree(shapely.points(meet_xy))
        near = tree.nearest(shapely.points(seeds))
        dist = np.hypot(*(meet_xy[near] - seeds).T)
        for i in np.flatnonzero(dist < 30.0):
            p = meet_xy[near[i]]
            if all(np.hypot(*(p - q)) > 600.0 for q in chosen):
                chosen.append(p)
        # collector crossings far from every other junction
        slow_klass = np.repeat(klass[~fast], 2)
        z_keys = set(keys[np.repeat(~fast, 2)][np.isin(slow_klass, ["Z", "GP", "G"])].tolist())
        for p, k in zip(meet_xy, _keys(meet_xy), strict=True):
            if k in z_keys and all(np.hypot(*(p - q)) > spacing for q in chosen):
                chosen.append(p)
    return np.array(chosen)


def _split_motorways(
    segs: NDArray[np.object_], src: NDArray[np.intp], junction_keys: set[int]
) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """Merge motorway segments of one source line and split them only at junctions."""
    out_geoms: list[shapely.Geometry] = []
    out_src: list[int] = []
    for s in np.unique(src):
        merged = shapely.line_merge(shapely.multilinestrings(segs[src == s]))
        for part in shapely.get_parts(merged):
            xy = shapely.get_coordinates(part)
            k = _keys(xy)
            cut = [0] + [i for i in range(1, len(xy) - 1) if int(k[i]) in junction_keys]
            cut.append(len(xy) - 1)
            for a, b in zip(cut[:-1], cut[1:], strict=True):
                out_geoms.append(shapely.LineString(xy[a : b + 1]))
                out_src.append(int(s))
    return np.asarray(out_geoms, dtype=object), np.asarray(out_src, dtype=np.intp)


def _name_junctions(points: NDArray[np.float64], roads: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Names, road numbers and sequence numbers of the junctions."""
    fast = roads[roads["KLASADROGI"].isin(["A", "S"])]
    pts = shapely.points(points)
    idx_p, idx_l = shapely.STRtree(fast.geometry.values).query(
        pts, predicate="dwithin", distance=0.01
    )
    numbers: list[list[str]] = [[] for _ in range(len(points))]
    for p, line in zip(idx_p, idx_l, strict=True):
        num = fast["NUMERDROGI"].iloc[line]
        if num not in numbers[p]:
            numbers[p].append(num)
    order = {"A": 0, "S": 1}
    main = [sorted(n, key=lambda x: (order[x[0]], int(x[1:])))[0] if n else "" for n in numbers]
    kind = ["węzeł systemowy" if len(n) > 1 else "węzeł" for n in numbers]
    place_xy = km(list(PLACES.values()))
    place_names = list(PLACES.keys())
    # closest (junction, place) pairs first, each place used once
    d = np.hypot(*(points[:, None, :] - place_xy[None, :, :]).transpose(2, 0, 1))
    names = [""] * len(points)
    for flat in np.argsort(d, axis=None, kind="stable"):
        p, j = divmod(int(flat), len(place_names))
        if not names[p] and place_names[j] not in names:
            names[p] = place_names[j]
    # a junction far from every free place is named after the nearest gmina seat
    seats = km([g[2] for g in GMINY])
    for p in range(len(points)):
        j = place_names.index(names[p]) if names[p] else -1
        if j >= 0 and d[p, j] <= 6 * KM:
            continue
        s = int(np.argmin(np.hypot(*(seats - points[p]).T)))
        dx, dy = points[p] - seats[s]
        side = (
            ("Wschód" if dx > 0 else "Zachód")
            if abs(dx) > abs(dy)
            else ("Północ" if dy > 0 else "Południe")
        )
        name = f"{GMINY[s][1]} {side}"
        names[p] = name if name not in names else f"{name} {p}"
    # junction numbers: running along each road from west/south to east/north
    df = gpd.GeoDataFrame({"NAZWA": names, "DROGA": main, "TYP": kind}, geometry=pts, crs=WORK_CRS)
    along = points[:, 0] + points[:, 1]
    df["NUMER"] = 0
    for road in df["DROGA"].unique():
        sel = np.flatnonzero(df["DROGA"].to_numpy() == road)
        df.loc[df.index[sel[np.argsort(along[sel])]], "NUMER"] = np.arange(1, len(sel) + 1)
    df["NUMER"] = df["NUMER"].astype(np.int32)
    return df[["NAZWA", "NUMER", "DROGA", "TYP", "geometry"]]


# typical BDOT10k carriageway width (szerNawierzchni, m) per road class
CARRIAGEWAY_M = {"A": 7.5, "S": 7.0, "GP": 7.0, "G": 7.0, "Z": 6.0, "L": 5.5, "D": 4.5, "I": 3.5}


def carriageway_widths(rng: np.random.Generator, roads: gpd.GeoDataFrame) -> NDArray[np.float64]:
    """Carriageway width of each road (m, half-metre steps around its class's typical)."""
    base = roads["KLASADROGI"].map(CARRIAGEWAY_M).fillna(4.0).to_numpy(dtype=float)
    return np.round((base + rng.uniform(-0.5, 0.5, len(base))) * 2) / 2
