"""Region outline, the core city and the gminy (municipalities) around it."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from omw_sites.demo._common import CENTRE, KM, km
from omw_sites.layers import WORK_CRS

REGION_RADIUS_KM = 40.0  # half-size of the (rounded-square) metropolitan region

WARSAW = "1465011"

# TERYT, name, offset of the seat from the centre in km (x east, y north)
GMINY: tuple[tuple[str, str, tuple[float, float]], ...] = (
    (WARSAW, "Warszawa", (0.0, 0.0)),
    ("1432053", "Łomianki", (-5.0, 17.0)),
    ("1408022", "Jabłonna", (3.0, 20.0)),
    ("1408011", "Legionowo", (3.0, 26.0)),
    ("1408032", "Nieporęt", (11.0, 23.0)),
    ("1434022", "Marki", (10.0, 11.0)),
    ("1434032", "Ząbki", (13.0, 5.0)),
    ("1434011", "Kobyłka", (16.0, 13.0)),
    ("1434123", "Wołomin", (23.0, 15.0)),
    ("1412021", "Sulejówek", (20.0, 0.0)),
    ("1417082", "Wiązowna", (20.0, -10.0)),
    ("1417011", "Józefów", (13.0, -17.0)),
    ("1417021", "Otwock", (17.0, -23.0)),
    ("1418023", "Konstancin-Jeziorna", (4.0, -20.0)),
    ("1418043", "Piaseczno", (-3.0, -20.0)),
    ("1418032", "Lesznowola", (-11.0, -21.0)),
    ("1421062", "Raszyn", (-10.0, -12.0)),
    ("1421042", "Michałowice", (-14.0, -5.0)),
    ("1421021", "Pruszków", (-18.0, -6.0)),
    ("1421052", "Nadarzyn", (-21.0, -16.0)),
    ("1432063", "Ożarów Mazowiecki", (-18.0, 3.0)),
    ("1432072", "Stare Babice", (-15.0, 9.0)),
    ("1432013", "Błonie", (-31.0, 0.0)),
)

GMINA_KIND = {"1": "GM", "2": "GW", "3": "GMW"}  # PRG JPT_SJR_KO by the TERYT type digit


@dataclass(frozen=True)
class Geography:
    """The region outline, gminy polygons and seat points (EPSG:2180, m)."""

    region: shapely.Polygon
    gminy: gpd.GeoDataFrame  # JPT_KOD_JE, JPT_NAZWA_, RODZAJ, JPT_SJR_KO, geometry
    seats: NDArray[np.float64]  # (n, 2), same order as ``gminy``

    @property
    def warsaw(self) -> shapely.Geometry:
        """Polygon of the core city."""
        return self.gminy.geometry.iloc[0]


def region_outline(
    rng: np.random.Generator, radius_km: float = REGION_RADIUS_KM
) -> shapely.Polygon:
    """Rounded-square outline of the metropolitan region around the centre.

    Parameters
    ----------
    radius_km : float
        Half the side of the square the outline rounds off, km.
    """
    theta = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    p = 6.0
    c, s = np.cos(theta), np.sin(theta)
    r = radius_km * KM / (np.abs(c) ** p + np.abs(s) ** p) ** (1 / p)
    r *= (
        1
        + 0.015 * np.sin(3 * theta + rng.uniform(0, 6.3))
        + 0.01 * np.sin(7 * theta + rng.uniform(0, 6.3))
    )
    return shapely.Polygon(np.column_stack([CENTRE[0] + r * c, CENTRE[1] + r * s]))


def warsaw_outline(rng: np.random.Generator, seats: NDArray[np.float64]) -> shapely.Polygon:
    """Irregular polygon of the core city, about 13 km around the centre, clear of the seats."""
    theta = np.linspace(-np.pi, np.pi, 720, endpoint=False)
    a, b = 11.8 * KM, 15.0 * KM  # east-west and north-south semi-axes
    r = 1 / np.sqrt((np.cos(theta) / a) ** 2 + (np.sin(theta) / b) ** 2)
    for k, amp in ((3, 0.05), (5, 0.035), (9, 0.02), (17, 0.01)):
        r *= 1 + amp * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    d = seats - CENTRE
    dist = np.hypot(d[:, 0], d[:, 1])
    ang = np.arctan2(d[:, 1], d[:, 0])
    limit = dist[None, :] - 2.5 * KM + 8 * KM * (1 - np.cos(theta[:, None] - ang[None, :]))
    r = np.minimum(r, limit.min(axis=1))
    return shapely.Polygon(
        np.column_stack([CENTRE[0] + r * np.cos(theta), CENTRE[1] + r * np.sin(theta)])
    )


def build_geography(rng: np.random.Generator) -> Geography:
    """Region, core city and a gap-free partition of the rest among the surrounding gminy."""
    region = region_outline(rng)
    seats = km([g[2] for g in GMINY])
    warsaw = warsaw_outline(rng, seats[1:])
    # a planar partition: faces of all boundaries, each given to its gmina, so neighbours
    # share exact edges (no slivers, no overlaps)
    edges = shapely.voronoi_polygons(
        shapely.multipoints(seats[1:]), only_edges=True, extend_to=region.envelope.buffer(5 * KM)
    )
    lines = shapely.union_all(
        [edges, shapely.boundary(region), shapely.boundary(warsaw)]
    )  # edges run past the outline, so every crossing is a true one
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))))
    faces = faces[shapely.contains(region, shapely.point_on_surface(faces))]
    probe = shapely.point_on_surface(faces)
    owner = np.where(
        shapely.contains(warsaw, probe),
        0,
        1 + np.argmin(np.hypot(*(shapely.get_coordinates(probe)[:, None, :]
                                 - seats[None, 1:, :]).transpose(2, 0, 1)), axis=1),
    )  # fmt: skip
    geoms = np.array(
        [shapely.coverage_union_all(faces[owner == g]) for g in range(len(seats))], dtype=object
    )
    teryt = [g[0] for g in GMINY]
    gminy = gpd.GeoDataFrame(
        {
            "JPT_KOD_JE": teryt,
            "JPT_NAZWA_": [g[1] for g in GMINY],
            "RODZAJ": np.array([int(t[-1]) for t in teryt], dtype=np.int32),
            "JPT_SJR_KO": [GMINA_KIND[t[-1]] for t in teryt],
        },
        geometry=shapely.normalize(geoms),
        crs=WORK_CRS,
    )
    return Geography(region=region, gminy=gminy, seats=seats)
