"""Power lines (BDOT10k SULN), GESUT utility lines along the roads, and GPZ substations."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree

from omw_sites.demo._common import CENTRE, KM, catmull_rom, explode_lines, km, meander
from omw_sites.demo.geography import Geography
from omw_sites.demo.settlement import INDUSTRY, Sectors, Tiles, gmina_of
from omw_sites.demo.transport import Backbone
from omw_sites.layers import WORK_CRS

# 400 kV ring stations around the city, km
RING = {"Mościska": (-20, 6), "Piaseczno": (-5, -24), "Miłosna": (22, -3), "Mory": (-10, -2)}
GESUT_COLUMNS = (
    "RODZAJSIECI", "STATUS", "TYP", "SREDNICA", "WLADAJACY", "EKSPLOATACJA",
)  # fmt: skip

# per network: lateral offset from the road axis (m), then the chance of a pipe/cable along
# a road in the core city, near settlements (decaying with distance, length scale m), and
# along main roads anyway
NETWORK_RULES = {
    "w": (4.0, 0.92, 0.85, 450.0, 0.35),
    "k": (-2.0, 0.88, 0.65, 300.0, 0.15),
    "e": (7.0, 0.95, 0.9, 1600.0, 0.6),
    "g": (-5.0, 0.85, 0.6, 500.0, 0.45),
    "c": (9.0, 0.55, 0.0, 1.0, 0.0),
    "t": (2.5, 0.95, 0.85, 900.0, 0.6),
}
# share of settlements (by sector class: city, outer city, industrial, town, rural, forest)
# that a network reaches at all; unserved villages are why distances run to several km
SERVED = {
    "w": np.array([1.0, 0.97, 0.8, 0.92, 0.5, 0.3]),
    "k": np.array([1.0, 0.9, 0.6, 0.8, 0.2, 0.1]),
    "e": np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.8]),
    "g": np.array([1.0, 0.85, 0.6, 0.75, 0.3, 0.1]),
    "c": np.array([1.0, 0.6, 0.1, 0.3, 0.0, 0.0]),
    "t": np.array([1.0, 0.95, 0.8, 0.9, 0.65, 0.4]),
}
DIAMETERS = {  # mm by road class: trunk for main roads, distribution for local ones
    "w": ((300, 400, 500, 800), (90, 110, 160, 225)),
    "k": ((600, 800, 1000, 1200), (160, 200, 250, 315)),
    "g": ((250, 315, 400), (40, 63, 90, 125)),
    "c": ((300, 400, 500, 600), (100, 150, 200)),
}


@dataclass(frozen=True)
class Utilities:
    """Utility layers (EPSG:2180)."""

    power_lines: gpd.GeoDataFrame  # OT_SULN_L: X_KOD, NAPIECIE (kV)
    lines: gpd.GeoDataFrame  # GESUT przewody
    devices: gpd.GeoDataFrame  # GESUT urzadzenia (GPZ substations)


def build_utilities(
    rng: np.random.Generator,
    geo: Geography,
    sectors: Sectors,
    tiles: Tiles,
    backbone: Backbone,
    roads: gpd.GeoDataFrame,
) -> Utilities:
    """High-voltage grid, substations and GESUT networks along the roads."""
    gpz_xy, gpz_name = _substations(rng, geo, backbone)
    power = _power_lines(rng, gpz_xy, geo)
    devices = gpd.GeoDataFrame(
        {
            "RODZAJSIECI": "e",
            "RODZAJ": "GPZ",
            "NAZWA": [f"GPZ {n}" for n in gpz_name],
            "NAPIECIE": "110/15 kV",
            "MOC_MW": np.round(rng.uniform(2.0, 60.0, len(gpz_xy)), 1),
            "WLADAJACY": np.where(
                gmina_of(geo, gpz_xy) == 0, "Stoen Operator Sp. z o.o.", "PGE Dystrybucja S.A."
            ),
        },
        geometry=shapely.points(gpz_xy),
        crs=WORK_CRS,
    )
    along = _along_roads(rng, geo, sectors, tiles, roads)
    grid = gpd.GeoDataFrame(
        {
            "RODZAJSIECI": "e",
            "STATUS": "i",
            "TYP": np.where(power["NAPIECIE"] >= 220, "ww", "w"),
            "SREDNICA": pd.array([pd.NA] * len(power), dtype="Int32"),
            "WLADAJACY": np.where(
                power["NAPIECIE"] >= 220,
                "Polskie Sieci Elektroenergetyczne S.A.",
                "PGE Dystrybucja S.A.",
            ),
            "EKSPLOATACJA": "c",
        },
        geometry=power.geometry.values,
        crs=WORK_CRS,
    )
    transit = _gas_transit(rng, geo)
    lines = pd.concat([grid, transit, along], ignore_index=True)
    return Utilities(power_lines=power, lines=lines, devices=devices)


def _substations(
    rng: np.random.Generator, geo: Geography, backbone: Backbone
) -> tuple[NDArray[np.float64], list[str]]:
    """GPZ points: one by each gmina seat, more in the city and by motorway junctions."""
    names = list(geo.gminy["JPT_NAZWA_"][1:])
    xy = [geo.seats[1:] + rng.uniform(-900, 900, (len(names), 2))]
    city = {"Śródmieście": (0.8, -1.2), "Wola": (-3.5, 0.5), "Mokotów": (0.5, -5.5),
            "Ursynów": (-1.0, -11.0), "Bemowo": (-8.5, 2.5), "Bielany": (-4.0, 8.0),
            "Białołęka": (6.0, 10.0), "Targówek": (6.5, 3.5), "Wawer": (9.0, -8.0),
            "Ursus": (-9.0, -4.0), "Żerań": (3.5, 7.0), "Okęcie": (-4.5, -7.5)}  # fmt: skip
    names += list(city)
    xy.append(km(list(city.values())))
    seeds = backbone.junction_seeds
    far = np.hypot(*(seeds - CENTRE).T) > 8 * KM
    pick = np.flatnonzero(far)[:: max(1, int(far.sum() // 10))]
    names += [f"Węzeł {i + 1}" for i in range(len(pick))]
    xy.append(seeds[pick] + rng.uniform(-1200, 1200, (len(pick), 2)))
    return np.vstack(xy), names


def _power_lines(
    rng: np.random.Generator, gpz: NDArray[np.float64], geo: Geography
) -> gpd.GeoDataFrame:
    """400 kV ring, 220 kV spurs into the city and a 110 kV tree joining the substations."""
    ring_pts = km([(-20, 6), (-14, -18), (-5, -24), (12, -19), (22, -3), (18, 14), (3, 20),
                   (-12, 18), (-20, 6)])  # fmt: skip
    ring = shapely.LineString(catmull_rom(ring_pts, 300.0))
    spurs = [
        shapely.LineString(meander(catmull_rom(km([a, b]), 200.0), rng, 400.0, 6 * KM))
        for a, b in (((-20, 6), (-10, -2)), ((22, -3), (3, -1)), ((-5, -24), (-2, -8)))
    ]
    ends = np.vstack([gpz, km(list(RING.values()))])
    d = np.hypot(*(ends[:, None, :] - ends[None, :, :]).transpose(2, 0, 1))
    tree = minimum_spanning_tree(d).tocoo()
    hv = []
    for a, b in zip(tree.row, tree.col, strict=True):
        mid = (ends[a] + ends[b]) / 2 + rng.uniform(-600, 600, 2)
        hv.append(shapely.LineString([ends[a], mid, ends[b]]))
    geoms = np.array([ring, *spurs, *hv], dtype=object)
    kv = np.array([400] + [220] * len(spurs) + [110] * len(hv), dtype=np.int32)
    parts, idx = explode_lines(shapely.intersection(geoms, geo.region))
    return gpd.GeoDataFrame({"X_KOD": "SULN01", "NAPIECIE": kv[idx]}, geometry=parts, crs=WORK_CRS)


def _gas_transit(rng: np.random.Generator, geo: Geography) -> gpd.GeoDataFrame:
    """High-pressure transmission pipeline arcing around the south and east."""
    ctrl = km([(-40, -10), (-22, -20), (-6, -27), (12, -24), (24, -10), (26, 8), (40, 20)])
    line = shapely.LineString(meander(catmull_rom(ctrl, 300.0), rng, 700.0, 10 * KM))
    parts, _ = explode_lines(shapely.intersection(np.array([line]), geo.region))
    return gpd.GeoDataFrame(
        {
            "RODZAJSIECI": "g",
            "STATUS": "i",
            "TYP": None,
            "SREDNICA": pd.array([700] * len(parts), dtype="Int32"),
            "WLADAJACY": "GAZ-SYSTEM S.A.",
            "EKSPLOATACJA": "c",
        },
        geometry=parts,
        crs=WORK_CRS,
    )


def _along_roads(
    rng: np.random.Generator,
    geo: Geography,
    sectors: Sectors,
    tiles: Tiles,
    roads: gpd.GeoDataFrame,
) -> gpd.GeoDataFrame:
    """Distribution networks offset a few metres from the roads they follow.

    Dense in the city and by settlements, thinning out with distance from them, so
    distances from a parcel to the nearest pipe range from 0 to several km.
    """
    road_class = roads["KLASADROGI"].to_numpy()
    ok = ~np.isin(road_class, ["A", "S"])
    geoms, road_class = roads.geometry.values[ok], road_class[ok]
    mid = shapely.get_coordinates(shapely.line_interpolate_point(geoms, 0.5, normalized=True))
    settled = tiles.order
    tile_xy = shapely.get_coordinates(shapely.centroid(tiles.geom[settled]))
    d_settled, nearest = cKDTree(tile_xy).query(mid)
    industrial = tiles.use[settled][nearest] == INDUSTRY
    near_sector = tiles.sector[settled][nearest]
    gmina = gmina_of(geo, mid)
    in_city = (gmina == 0) & (np.hypot(*(mid - CENTRE).T) < 11 * KM)
    d_seat = np.min(np.hypot(*(mid[:, None, :] - geo.seats[None, 1:, :]).transpose(2, 0, 1)), 1)
    main = np.isin(road_class, ["GP", "G", "Z"])
    names = geo.gminy["JPT_NAZWA_"].to_numpy()
    frames = []
    for net, (offset, p_city, p_near, scale, p_main) in NETWORK_RULES.items():
        served = (rng.random(len(sectors.klass)) < SERVED[net][sectors.klass])[near_sector]
        p = np.where(in_city, p_city, p_near * np.exp(-d_settled / scale) * served)
        p = np.maximum(p, np.where(main & ~in_city, p_main * np.exp(-d_seat / 6000), 0.0))
        if net == "c":  # district heating: the city and town centres only
            p = np.where(in_city & (np.hypot(*(mid - CENTRE).T) < 9 * KM), p_city, 0.0)
            p = np.maximum(p, np.where(d_seat < 1500, 0.35, 0.0))
        take = rng.random(len(geoms)) < p
        if not take.any():
            continue
        lines = shapely.offset_curve(geoms[take], offset, join_style="mitre")
        parts, idx = explode_lines(lines)
        src = np.flatnonzero(take)[idx]
        planned = rng.random(len(src)) < np.where(industrial[src], 0.25, 0.05)
        frames.append(
            gpd.GeoDataFrame(
                {
                    "RODZAJSIECI": net,
                    "STATUS": np.where(planned, "p", "i"),
                    "TYP": _power_type(net, road_class[src]),
                    "SREDNICA": _diameter(rng, net, main[src]),
                    "WLADAJACY": _operator(rng, net, gmina[src], names),
                    "EKSPLOATACJA": np.where(planned, "n", "c"),
                },
                geometry=parts,
                crs=WORK_CRS,
            )
        )
    return pd.concat(frames, ignore_index=True)


def _power_type(net: str, klass: NDArray[np.object_]) -> NDArray[np.object_]:
    if net != "e":
        return np.full(len(klass), None, dtype=object)
    return np.where(np.isin(klass, ["GP", "G", "Z"]), "s", "n").astype(object)


def _diameter(
    rng: np.random.Generator, net: str, main: NDArray[np.bool_]
) -> pd.arrays.IntegerArray:
    if net not in DIAMETERS:
        return pd.array([pd.NA] * len(main), dtype="Int32")
    trunk, local = DIAMETERS[net]
    out = np.where(main, rng.choice(trunk, len(main)), rng.choice(local, len(main)))
    return pd.array(out.astype(np.int32), dtype="Int32")


def _operator(
    rng: np.random.Generator, net: str, gmina: NDArray[np.intp], names: NDArray[np.object_]
) -> NDArray[np.object_]:
    city = gmina == 0
    where = names[np.maximum(gmina, 0)]
    if net in ("w", "k"):
        local = np.char.add("Przedsiębiorstwo Wodociągów i Kanalizacji ", where.astype(str))
        return np.where(city, "MPWiK w m.st. Warszawie S.A.", local).astype(object)
    if net == "e":
        return np.where(city, "Stoen Operator Sp. z o.o.", "PGE Dystrybucja S.A.").astype(object)
    if net == "g":
        return np.full(len(gmina), "Polska Spółka Gazownictwa Sp. z o.o.", dtype=object)
    if net == "c":
        local = np.char.add("Przedsiębiorstwo Energetyki Cieplnej ", where.astype(str))
        return np.where(city, "Veolia Energia Warszawa S.A.", local).astype(object)
    ops = np.array(["Orange Polska S.A.", "Netia S.A.", "T-Mobile Polska S.A."], dtype=object)
    return ops[np.searchsorted([0.6, 0.85], rng.random(len(gmina)))]
