"""Terrain model (NMT): plateau, the Vistula and Narew valleys, the Warsaw escarpment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from numpy.typing import NDArray
from rasterio.features import rasterize
from scipy import ndimage

from omw_sites.demo._common import CENTRE, KM, chainage, normals
from omw_sites.demo.environment import Environment, River

CELL_M = 50.0
NODATA = -9999.0
HALF_EXTENT_M = 41_000.0


@dataclass(frozen=True)
class Dem:
    """A height grid in EPSG:2180 (m above PL-EVRF2007-NH), north-up."""

    heights: NDArray[np.float32]  # (rows, cols), NODATA outside the region
    transform: rasterio.Affine

    def write(self, path: Path) -> None:
        """Write a deflate-compressed, tiled GeoTIFF."""
        profile = {
            "driver": "GTiff",
            "dtype": "float32",
            "width": self.heights.shape[1],
            "height": self.heights.shape[0],
            "count": 1,
            "crs": "EPSG:2180",
            "transform": self.transform,
            "nodata": NODATA,
            "compress": "deflate",
            "predictor": 3,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(self.heights, 1)
            dst.update_tags(AREA_OR_POINT="Area", VERTICAL_DATUM="PL-EVRF2007-NH")


def _smooth_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    sigma: float,
    coarse: int = 1,
    anisotropy: tuple[float, float] = (1.0, 1.0),
) -> NDArray[np.float64]:
    """Gaussian-smoothed noise scaled to unit standard deviation (sigma in cells).

    ``coarse`` > 1 draws and smooths on a grid that many times coarser, then
    interpolates (much faster for broad features); ``anisotropy`` scales the sigma
    along rows and columns.
    """
    small = (shape[0] // coarse + 2, shape[1] // coarse + 2)
    sig = (sigma * anisotropy[0] / coarse, sigma * anisotropy[1] / coarse)
    field = ndimage.gaussian_filter(rng.standard_normal(small), sig, mode="wrap")
    if coarse > 1:
        field = ndimage.zoom(field, coarse, order=1)
    field = field[: shape[0], : shape[1]]
    return (field - field.mean()) / field.std()


def _blur(grid: NDArray[np.float64], sigma: float, factor: int = 4) -> NDArray[np.float64]:
    """Gaussian blur of a broad field, done on a ``factor`` times coarser grid."""
    rows, cols = grid.shape
    pad = (-rows % factor, -cols % factor)
    g = np.pad(grid, ((0, pad[0]), (0, pad[1])), mode="edge")
    small = g.reshape(g.shape[0] // factor, factor, g.shape[1] // factor, factor).mean((1, 3))
    small = ndimage.gaussian_filter(small, sigma / factor)
    return ndimage.zoom(small, factor, order=1)[:rows, :cols]


def _valley(
    river: River,
    xx: NDArray[np.float64],
    yy: NDArray[np.float64],
    transform: rasterio.Affine,
    level0: float,
    fall_per_km: float,
    left_wall: tuple[float, float, float],
    right_wall: tuple[float, float, float],
) -> NDArray[np.float64]:
    """Surface of a river valley: water level, flood plain, terrace edge and rising walls.

    Parameters
    ----------
    level0 : float
        Water level at the upstream end, m.
    fall_per_km : float
        Fall of the water level, m/km.
    left_wall, right_wall : (height m, width m, slope m/km) of the valley edge on each bank
    """
    path = river.path
    dense_s = np.arange(0, chainage(path)[-1], CELL_M / 2)
    s = chainage(path)
    pts = np.column_stack([np.interp(dense_s, s, path[:, 0]), np.interp(dense_s, s, path[:, 1])])
    vid = np.clip(np.searchsorted(s, dense_s), 0, len(path) - 1)
    burn = rasterize(
        zip(shapely.points(pts), vid + 1, strict=True),
        out_shape=xx.shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )
    dist, (ri, ci) = ndimage.distance_transform_edt(burn == 0, return_indices=True)
    v = burn[ri, ci] - 1
    dist *= CELL_M
    nrm = normals(path)[v]
    side_left = (xx - path[v, 0]) * nrm[:, :, 0] + (yy - path[v, 1]) * nrm[:, :, 1] > 0
    flood = np.where(side_left, river.flood_left[v], river.flood_right[v])
    terrace = np.maximum(np.where(side_left, river.terrace_left[v], river.terrace_right[v]),
                         flood + 100)  # fmt: skip
    level = level0 - fall_per_km * s[v] / KM
    floor = level + 1.0 + 2.0 * np.clip(dist / flood, 0, 1)
    floor += 2.0 * np.clip((dist - flood) / (terrace - flood), 0, 1)
    h, w, k = (np.where(side_left, a, b) for a, b in zip(left_wall, right_wall, strict=True))
    beyond = np.maximum(dist - terrace, 0)
    wall = h * (1 / (1 + np.exp(-(dist - terrace) / w)) - 1 / (1 + np.exp(terrace / w)))
    surface = floor + wall + k * beyond / KM
    half_width = np.where(side_left, river.width[v], river.width[v]) / 2
    return np.where(dist < half_width, level - 0.5, surface)


def build_dem(rng: np.random.Generator, env: Environment, region: shapely.Polygon) -> Dem:
    """Heights on a 50 m grid over the region (about 72–125 m)."""
    x0 = np.floor((CENTRE[0] - HALF_EXTENT_M) / CELL_M) * CELL_M
    y1 = np.ceil((CENTRE[1] + HALF_EXTENT_M) / CELL_M) * CELL_M
    n = int(round(2 * HALF_EXTENT_M / CELL_M))
    transform = rasterio.Affine(CELL_M, 0.0, x0, 0.0, -CELL_M, y1)
    cols = x0 + CELL_M / 2 + CELL_M * np.arange(n)
    rows = y1 - CELL_M / 2 - CELL_M * np.arange(n)
    xx, yy = np.meshgrid(cols, rows)

    # plateau: higher to the south-west, with hills at several scales
    plateau = 104.0 - 5.0 * (yy - CENTRE[1]) / (40 * KM) - 2.0 * (xx - CENTRE[0]) / (40 * KM)
    plateau += 4.5 * _smooth_noise(rng, (n, n), 60, coarse=8)
    plateau += 1.8 * _smooth_noise(rng, (n, n), 14, coarse=2)
    plateau += 0.5 * _smooth_noise(rng, (n, n), 3)
    # Kampinos dunes: ridges running west-east
    dunes = _smooth_noise(rng, (n, n), 1.0, coarse=2, anisotropy=(3.0, 24.0))
    kampinos = rasterize([env.kampinos.buffer(1500)], out_shape=(n, n), transform=transform)
    kampinos = _blur(kampinos.astype(float), 20.0)
    plateau += 6.0 * np.maximum(dunes, -0.5) * kampinos

    wisla, narew = env.rivers
    city = (np.abs(yy - CENTRE[1]) < 16 * KM).astype(float)
    skarpa_h = 12.0 + 16.0 * city  # the Warsaw escarpment is highest in the city
    z_w = _valley(wisla, xx, yy, transform, 86.0, 0.13,
                  (skarpa_h, 70.0, 2.5), (4.0, 400.0, 1.0))  # fmt: skip
    z_n = _valley(narew, xx, yy, transform, 79.5, 0.05, (8.0, 250.0, 2.0), (8.0, 250.0, 2.0))
    z = np.minimum(plateau, np.minimum(z_w, z_n))
    # soften the seams where the nearest river vertex changes (fans far from the river)
    valley = z < plateau - 0.01
    z = np.where(valley, ndimage.uniform_filter(z, 5), z)

    lakes = env.water.iloc[2:]
    lake_id = rasterize(
        zip(lakes.geometry.values, np.arange(1, len(lakes) + 1), strict=True),
        out_shape=(n, n),
        transform=transform,
        dtype="int32",
    )
    wet = lake_id > 0
    level = np.full(len(lakes) + 1, np.inf)
    np.minimum.at(level, lake_id[wet], z[wet])
    level[1:][(lakes["NAZWA"] == "Jezioro Zegrzyńskie").to_numpy()] = 79.5
    z[wet] = level[lake_id[wet]] - 0.5
    inside = rasterize([region], out_shape=(n, n), transform=transform).astype(bool)
    heights = np.where(inside, np.round(z, 2), NODATA).astype(np.float32)
    return Dem(heights=heights, transform=transform)
