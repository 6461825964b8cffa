"""EGiB land-use and soil-class contours and BDOT10k buildings, from the settlement tiles.

Each lattice tile is one land-use contour (``OFU``): arable land, meadow or pasture on
farmland tiles, forest on woodland, built-up land on the others. Farmland and forest
tiles also carry a soil-class contour (``OZU``, ``OZK``), classes drawn with the
Mazovian mix (mostly IV–VI, a tenth I–IIIa). Parcels on built tiles get a building
footprint in their middle, and so do a few on farmland (farm buildings).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from omw_sites.demo.parcels import Parcels
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

# OFU per tile land use (built-up: B residential, Bi other built-up, Ba industrial, Bz
# recreational); farmland tiles are arable, meadow or pasture
OFU = {
    RESIDENTIAL: "B",
    URBAN: "B",
    SERVICES: "Bi",
    INDUSTRY: "Ba",
    WOODLAND: "Ls",
    GREEN: "Bz",
}
FARM_OFU, FARM_ODDS = ("R", "Ł", "Ps"), (0.75, 0.17, 0.08)
SOIL_CLASSES = ("I", "II", "IIIa", "IIIb", "IVa", "IVb", "V", "VI")
SOIL_ODDS = (0.01, 0.03, 0.07, 0.12, 0.22, 0.2, 0.22, 0.13)
FOREST_CLASSES, FOREST_ODDS = ("IV", "V", "VI"), (0.3, 0.4, 0.3)
# share of each tile use's parcels with a building, and the footprint's share of the parcel
BUILT_ODDS = {RESIDENTIAL: 0.8, URBAN: 0.9, SERVICES: 0.4, INDUSTRY: 0.2, AGRICULTURE: 0.04}
FOOTPRINT_SHARE = (0.15, 0.45)


def build_land(rng: np.random.Generator, tiles: Tiles) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(land-use contours with ``OFU``, soil-class contours with ``OZU``, ``OZK``)."""
    use = tiles.use
    geoms = tiles.geom
    ofu = np.array([OFU.get(int(u), "") for u in use], dtype=object)
    farm = use == AGRICULTURE
    ofu[farm] = np.array(FARM_OFU)[rng.choice(len(FARM_OFU), int(farm.sum()), p=FARM_ODDS)]
    ids = np.arange(1, len(geoms) + 1)
    land_use = gpd.GeoDataFrame(
        {"idUzytku": [f"UG.{i}" for i in ids], "OFU": ofu}, geometry=geoms, crs=WORK_CRS
    )
    classed = farm | (use == WOODLAND)
    ozk = np.empty(len(geoms), dtype=object)
    ozk[farm] = np.array(SOIL_CLASSES)[rng.choice(8, int(farm.sum()), p=SOIL_ODDS)]
    forest = use == WOODLAND
    ozk[forest] = np.array(FOREST_CLASSES)[rng.choice(3, int(forest.sum()), p=FOREST_ODDS)]
    soil = gpd.GeoDataFrame(
        {
            "idKonturu": [f"KL.{i}" for i in ids[classed]],
            "OZU": np.where(farm, ofu, "Ls")[classed],
            "OZK": ozk[classed],
        },
        geometry=geoms[classed],
        crs=WORK_CRS,
    )
    return land_use, soil


def build_buildings(rng: np.random.Generator, tiles: Tiles, parcels: Parcels) -> gpd.GeoDataFrame:
    """BDOT10k ``OT_BUBD_A``: one footprint in the middle of each built parcel."""
    use = tiles.use[parcels.tile]
    odds = np.array([BUILT_ODDS.get(int(u), 0.0) for u in use])
    built = rng.random(len(use)) < odds
    share = rng.uniform(*FOOTPRINT_SHARE, int(built.sum()))
    half = np.sqrt(parcels.area_m2[built] * share) / 2
    xy = parcels.centroid[built]
    squares = shapely.box(xy[:, 0] - half, xy[:, 1] - half, xy[:, 0] + half, xy[:, 1] + half)
    outline = shapely.make_valid(parcels.frame.geometry.to_crs(WORK_CRS).to_numpy()[built])
    footprint: NDArray[np.object_] = shapely.intersection(squares, outline)
    keep = (shapely.area(footprint) > 10.0) & np.isin(shapely.get_type_id(footprint), (3, 6))
    return gpd.GeoDataFrame(
        {"X_KOD": np.full(int(keep.sum()), "BUBD01")},
        geometry=footprint[keep],
        crs=WORK_CRS,
    )
