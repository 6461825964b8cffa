"""The census population grid (GUS NSP 2021, 1 km cells) consistent with the settlements.

Residents live on the lattice tiles the settlement grid lays out (all of them, built on
in this run or not, so the grid does not depend on how many parcels were asked for):
dense on urban blocks, less on single-family housing, a few on services, industry and
farmland. The totals are scaled to the real region: about 1.86 million in Warsaw and
1.45 million in the rest of the metropolitan area (GUS 2021). Cells are those of the GUS
grid: 1 km squares of EPSG:3035 named ``CRS3035RES1000mN…E…`` by their lower-left
corner, written in EPSG:2180 as GUS publishes them; a cell of fewer than
``SECRET_BELOW`` residents is blank (statistical secrecy), as in the real file.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer

from omw_sites.demo.geography import Geography
from omw_sites.demo.settlement import (
    AGRICULTURE,
    GREEN,
    INDUSTRY,
    RESIDENTIAL,
    SERVICES,
    URBAN,
    WOODLAND,
    Tiles,
)
from omw_sites.layers import WORK_CRS

WARSAW_RESIDENTS = 1_860_000
OTHER_RESIDENTS = 1_450_000
SECRET_BELOW = 3
# residents per hectare of a tile by land use (relative; the totals are scaled)
DENSITY = {
    RESIDENTIAL: 30.0,
    URBAN: 160.0,
    SERVICES: 15.0,
    INDUSTRY: 1.0,
    AGRICULTURE: 0.4,
    WOODLAND: 0.05,
    GREEN: 2.0,
}
AGE_SHARES = np.array([0.16, 0.63, 0.21])  # 0–14, 15–64, 65+ (Mazowieckie, NSP 2021)
CELL_M = 1000.0


def build_population(rng: np.random.Generator, tiles: Tiles, geo: Geography) -> gpd.GeoDataFrame:
    """The ``GRID_NSP2021_RES`` layer: CODE, RES, RES_MALE, RES_FEM, RES_0_14, RES_15_64,
    RES_65_ per 1 km cell of the region with residents."""
    area_ha = shapely.area(tiles.geom) / 1e4
    density = np.array([DENSITY[int(u)] for u in tiles.use])
    people = area_ha * density * rng.lognormal(0.0, 0.3, len(area_ha))
    centre = shapely.centroid(tiles.geom)
    in_warsaw = shapely.contains(geo.warsaw, centre)
    for sel, total in ((in_warsaw, WARSAW_RESIDENTS), (~in_warsaw, OTHER_RESIDENTS)):
        if people[sel].sum() > 0:
            people[sel] *= total / people[sel].sum()
    to_3035 = Transformer.from_crs(WORK_CRS, "EPSG:3035", always_xy=True)
    ex, ny = to_3035.transform(*shapely.get_coordinates(centre).T)
    ci, cj = np.floor(np.asarray(ex) / CELL_M), np.floor(np.asarray(ny) / CELL_M)
    keys, inv = np.unique(np.column_stack([ci, cj]), axis=0, return_inverse=True)
    res = np.rint(np.bincount(inv.ravel(), weights=people, minlength=len(keys)))
    keep = res > 0
    keys, res = keys[keep], res[keep]
    return _cells(rng, keys, res)


def _cells(rng: np.random.Generator, keys: NDArray[np.float64], res: NDArray) -> gpd.GeoDataFrame:
    """The grid's cells (EPSG:3035 lower-left corners ``keys`` in km) with their counts."""
    shares = rng.dirichlet(AGE_SHARES * 200, len(res))
    young = np.rint(res * shares[:, 0])
    working = np.rint(res * shares[:, 1])
    old = np.maximum(res - young - working, 0)
    male = np.rint(res * rng.uniform(0.46, 0.49, len(res)))
    e0, n0 = keys[:, 0] * CELL_M, keys[:, 1] * CELL_M
    to_2180 = Transformer.from_crs("EPSG:3035", WORK_CRS, always_xy=True)
    xs = np.stack([e0, e0 + CELL_M, e0 + CELL_M, e0, e0], axis=-1)
    ys = np.stack([n0, n0, n0 + CELL_M, n0 + CELL_M, n0], axis=-1)
    x, y = to_2180.transform(xs.ravel(), ys.ravel())
    rings = np.stack([np.asarray(x), np.asarray(y)], axis=-1).reshape(len(res), 5, 2)
    secret = res < SECRET_BELOW

    def blank(values: NDArray) -> NDArray[np.object_]:
        out = values.astype(np.int64).astype(object)
        out[secret] = None
        return out

    codes = [f"CRS3035RES1000mN{int(n)}E{int(e)}" for e, n in zip(e0, n0, strict=True)]
    return gpd.GeoDataFrame(
        {
            "CODE": codes,
            "RES": blank(res),
            "RES_MALE": blank(male),
            "RES_FEM": blank(res - male),
            "RES_0_14": blank(young),
            "RES_15_64": blank(working),
            "RES_65_": blank(old),
        },
        geometry=shapely.polygons(rings),
        crs=WORK_CRS,
    )
