"""Rivers, water bodies, the Q1% flood zone, forests and Natura 2000 sites."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from omw_sites.demo._common import (
    KM,
    band,
    blob,
    catmull_rom,
    chainage,
    km,
    meander,
    smooth_noise,
    to_multipolygons,
)
from omw_sites.layers import WORK_CRS

# control points of the river centrelines, km from the centre
WISLA_KM = (
    (13, -46), (10, -30), (7.5, -20), (6, -13), (4.5, -7), (2.6, -2), (2.0, 3), (0.5, 9),
    (-2, 15), (-6, 21), (-12, 26), (-18, 29.5), (-24, 31), (-32, 33.5), (-46, 37),
)  # fmt: skip
NAREW_KM = (
    (46, 27), (32, 30), (22, 32), (12, 30.5), (4, 32), (-6, 33), (-14, 33), (-20, 32.2),
    (-24, 31),
)  # fmt: skip


@dataclass(frozen=True)
class River:
    """A river centreline with its widths along the way (all in m)."""

    name: str
    path: NDArray[np.float64]  # (n, 2) centreline, upstream first
    width: NDArray[np.float64]  # channel width per vertex
    flood_left: NDArray[np.float64]  # flood-zone half width on the left bank
    flood_right: NDArray[np.float64]  # flood-zone half width on the right bank
    terrace_left: NDArray[np.float64]  # distance to the valley edge (escarpment), left bank
    terrace_right: NDArray[np.float64]  # distance to the valley edge, right bank

    @property
    def chainage(self) -> NDArray[np.float64]:
        """Distance along the river from its upstream end, m."""
        return chainage(self.path)


@dataclass(frozen=True)
class Environment:
    """Hydrography, flood hazard, forests and nature protection layers (EPSG:2180)."""

    rivers: tuple[River, ...]
    water: gpd.GeoDataFrame  # OT_PTWP_A
    flood: gpd.GeoDataFrame  # obszary_zagrozenia
    forest: gpd.GeoDataFrame  # OT_PTLZ_A
    natura: gpd.GeoDataFrame  # OT_TCON_A
    kampinos: shapely.Geometry  # the dune forest (terrain uses it for dune ridges)

    @property
    def water_union(self) -> shapely.Geometry:
        """All surface water as one geometry."""
        return shapely.union_all(self.water.geometry.values)


def _wisla(rng: np.random.Generator) -> River:
    path = meander(catmull_rom(km(WISLA_KM), step=200.0), rng, 600.0, 9 * KM)
    s = chainage(path)
    y = (path[:, 1] - km([[0, 0]])[0, 1]) / KM
    width = 480 + 90 * smooth_noise(s, rng, 7 * KM)
    width = np.where(y > 29, width + 150, width)  # below the Narew mouth
    city = np.clip(1 - (np.abs(y - -1.0) - 12.0) / 4.0, 0, 1)  # 1 between the embankments
    left = (1 - city) * (1800 + 700 * smooth_noise(s, rng, 12 * KM)) + city * (
        480 + 120 * smooth_noise(s, rng, 5 * KM)
    )
    right = (1 - city) * (3000 + 1300 * smooth_noise(s, rng, 14 * KM)) + city * (
        620 + 180 * smooth_noise(s, rng, 5 * KM)
    )
    north = np.clip((y - 27) / 3, 0, 1)  # keep Modlin airport (north bank) out of the zone
    right = right * (1 - 0.55 * north)
    terrace_left = left + 650 + 400 * smooth_noise(s, rng, 8 * KM)
    terrace_right = right + 900 + 500 * smooth_noise(s, rng, 10 * KM)
    return River("Wisła", path, width, left, right, terrace_left, terrace_right)


def _narew(rng: np.random.Generator) -> River:
    path = meander(catmull_rom(km(NAREW_KM), step=200.0), rng, 400.0, 7 * KM)
    s = chainage(path)
    width = 260 + 50 * smooth_noise(s, rng, 6 * KM)
    left = 900 + 350 * smooth_noise(s, rng, 9 * KM)
    right = 700 + 300 * smooth_noise(s, rng, 9 * KM)
    return River("Narew", path, width, left, right, left + 700, right + 900)


def _sections(river: River, length: float = 10 * KM) -> list[tuple[str, shapely.Geometry]]:
    """Flood-zone polygons of a river, one per ``length`` m section (gap-free)."""
    s = river.chainage
    cuts = np.searchsorted(s, np.arange(0, s[-1], length))
    cuts = np.unique(np.append(cuts, len(s) - 1))
    out = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        sl = slice(a, b + 1)
        poly = band(river.path[sl], river.flood_left[sl], river.flood_right[sl])
        out.append((f"{river.name} km {s[a] / KM:.0f}–{s[b] / KM:.0f}", poly))
    return out


def build_environment(rng: np.random.Generator, region: shapely.Polygon) -> Environment:
    """Rivers, lakes, flood zones, forests and Natura 2000 sites of the region."""
    wisla, narew = _wisla(rng), _narew(rng)
    zegrze = blob(km((15, 30.9)), 4.6 * KM, 1.1 * KM, rng, angle=0.05, rough=0.12)
    lakes: list[tuple[str | None, str, shapely.Geometry]] = [
        ("Wisła", "PTWP02", band(wisla.path, wisla.width / 2, wisla.width / 2)),
        ("Narew", "PTWP02", band(narew.path, narew.width / 2, narew.width / 2)),
        ("Jezioro Zegrzyńskie", "PTWP03", zegrze),
        ("Jezioro Czerniakowskie", "PTWP03", blob(km((3.6, -7.8)), 520, 220, rng, 0.9)),
        ("Stawy Raszyńskie", "PTWP03", blob(km((-8.6, -13.4)), 700, 380, rng, 0.3)),
        ("Jezioro Kamionkowskie", "PTWP03", blob(km((4.4, -0.6)), 420, 120, rng, 1.2)),
    ]
    for x, y in rng.uniform(-34, 34, size=(40, 2)):
        rx, ry, ang = rng.uniform(80, 260), rng.uniform(50, 160), rng.uniform(0, 3)
        lakes.append((None, "PTWP03", blob(km((x, y)), rx, ry, rng, ang)))
    water_geom = shapely.intersection(np.array([g for *_, g in lakes]), region)
    river_mask = shapely.union_all(water_geom[:2])
    small = np.arange(len(water_geom)) >= 6
    # small ponds never sit in the river channel
    water_geom[small] = shapely.difference(water_geom[small], river_mask)
    keep = ~shapely.is_empty(water_geom) & (shapely.area(water_geom) > 1000)
    water = gpd.GeoDataFrame(
        {
            "X_KOD": [k for (_, k, _), ok in zip(lakes, keep, strict=True) if ok],
            "NAZWA": [n for (n, _, _), ok in zip(lakes, keep, strict=True) if ok],
        },
        geometry=to_multipolygons(water_geom[keep]),
        crs=WORK_CRS,
    )

    flood_rows = _sections(wisla) + _sections(narew, 12 * KM)
    flood_geom = shapely.intersection(np.array([g for _, g in flood_rows]), region)
    # Wisła sections first: the Narew zones are cut where they meet it (no overlaps)
    n_w = len(_sections(wisla))
    wisla_zone = shapely.union_all(flood_geom[:n_w])
    flood_geom[n_w:] = shapely.difference(flood_geom[n_w:], wisla_zone)
    keep = ~shapely.is_empty(flood_geom) & (shapely.area(flood_geom) > 0)
    flood = gpd.GeoDataFrame(
        {
            "NAZWA": [n for (n, _), ok in zip(flood_rows, keep, strict=True) if ok],
            "SCENARIUSZ": "Q1%",
        },
        geometry=to_multipolygons(flood_geom[keep]),
        crs=WORK_CRS,
    )

    kampinos = blob(km((-27, 19)), 13.5 * KM, 5.5 * KM, rng, angle=0.08, rough=0.14)
    forests: list[tuple[str | None, shapely.Geometry]] = [
        ("Puszcza Kampinoska", kampinos),
        ("Lasy Chojnowskie", blob(km((-1, -27.5)), 4.2 * KM, 2.6 * KM, rng, 0.2)),
        ("Mazowiecki Park Krajobrazowy", blob(km((23, -21)), 6.0 * KM, 3.6 * KM, rng, -0.5)),
        ("Las Kabacki", blob(km((0.3, -15.6)), 1.8 * KM, 1.0 * KM, rng, 0.1)),
        ("Las Bielański", blob(km((-2.6, 8.0)), 0.8 * KM, 0.55 * KM, rng, 0.4)),
        ("Lasy Legionowskie", blob(km((8, 25.5)), 2.6 * KM, 1.8 * KM, rng, 0.3)),
        ("Lasy Drewnickie", blob(km((22, 8)), 3.0 * KM, 1.8 * KM, rng, 0.6)),
        ("Las Sobieskiego", blob(km((16.5, -2.8)), 2.0 * KM, 1.2 * KM, rng, 0.2)),
        ("Lasy Sękocińskie", blob(km((-14, -15)), 1.6 * KM, 1.1 * KM, rng, 0.7)),
    ]
    n_small = 60
    pts = rng.uniform(-36, 36, size=(n_small, 2))
    pts = pts[np.hypot(pts[:, 0], pts[:, 1]) > 9]
    for x, y in pts:
        r, q, ang = rng.uniform(250, 900), rng.uniform(0.4, 0.9), rng.uniform(0, 3)
        forests.append((None, blob(km((x, y)), r, r * q, rng, ang)))
    forest_geom = shapely.intersection(np.array([g for _, g in forests]), region)
    forest_geom = shapely.difference(forest_geom, shapely.union_all(water.geometry.values))
    # one layer without overlaps: later woods lose what earlier ones already cover
    covered = shapely.union_all(forest_geom[:9])
    forest_geom[9:] = shapely.difference(forest_geom[9:], covered)
    keep = ~shapely.is_empty(forest_geom) & (shapely.area(forest_geom) > 5000)
    forest = gpd.GeoDataFrame(
        {
            "X_KOD": "PTLZ01",
            "NAZWA": [n for (n, _), ok in zip(forests, keep, strict=True) if ok],
        },
        geometry=to_multipolygons(forest_geom[keep]),
        crs=WORK_CRS,
    )

    natura_rows = [
        ("PLC140001", "Puszcza Kampinoska", "PLC", shapely.buffer(kampinos, 600).simplify(50)),
        (
            "PLB140004",
            "Dolina Środkowej Wisły",
            "PLB",
            band(
                wisla.path, np.minimum(wisla.flood_left, 900), np.minimum(wisla.flood_right, 1300)
            ),
        ),
        ("PLB140014", "Dolina Dolnej Narwi", "PLB", band(narew.path, 700, 800)),
        ("PLH140032", "Bagno Całowanie", "PLH", blob(km((25, -28)), 3.2 * KM, 1.4 * KM, rng, 0.4)),
        (
            "PLH140043",
            "Łęgi Czarnej Strugi",
            "PLH",
            blob(km((19, 19)), 1.4 * KM, 0.6 * KM, rng, 1.0),
        ),
    ]
    kinds = {
        "PLB": "obszar specjalnej ochrony ptaków",
        "PLH": "specjalny obszar ochrony siedlisk",
        "PLC": "obszar ptasi i siedliskowy",
    }
    natura_geom = shapely.intersection(np.array([g for *_, g in natura_rows]), region)
    natura = gpd.GeoDataFrame(
        {
            "X_KOD": "TCON01",
            "KOD": [r[0] for r in natura_rows],
            "NAZWA": [r[1] for r in natura_rows],
            "RODZAJ": [kinds[r[2]] for r in natura_rows],
        },
        geometry=to_multipolygons(natura_geom),
        crs=WORK_CRS,
    )
    return Environment(
        rivers=(wisla, narew),
        water=water,
        flood=flood,
        forest=forest,
        natura=natura,
        kampinos=kampinos,
    )
