"""Shared helpers of the demo generator: stage RNGs, smooth paths, bands, blobs, pieces."""

from __future__ import annotations

import zlib

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

CENTRE = np.array([636973.0, 486980.0])  # Palace of Culture, Warsaw, EPSG:2180 (E, N), m
KM = 1000.0

FloatArray = NDArray[np.float64]


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """Independent random generator for one generator stage.

    Each stage draws from its own stream keyed by ``(seed, stage)``, so changing one
    stage never shifts the random numbers of another.
    """
    return np.random.default_rng([int(seed), zlib.crc32(stage.encode())])


def km(points: ArrayLike) -> FloatArray:
    """Offsets from the centre in km (x east, y north) to EPSG:2180 coordinates in m."""
    return CENTRE + np.asarray(points, dtype=float) * KM


def catmull_rom(ctrl: ArrayLike, step: float = 150.0) -> FloatArray:
    """Smooth path through control points, sampled about every ``step`` metres.

    Parameters
    ----------
    ctrl : (n, 2) control points in m; the path passes exactly through each of them
    step : float
        Sampling distance, m.
    """
    p = np.asarray(ctrl, dtype=float)
    if len(p) < 2:
        msg = "a path needs at least two control points"
        raise ValueError(msg)
    padded = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = [p[:1]]
    for i in range(len(p) - 1):
        p0, p1, p2, p3 = padded[i], padded[i + 1], padded[i + 2], padded[i + 3]
        n = max(2, int(np.ceil(np.hypot(*(p2 - p1)) / step)))
        t = np.linspace(0.0, 1.0, n + 1)[1:, None]
        seg = 0.5 * (
            2 * p1
            + (-p0 + p2) * t
            + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
            + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
        )
        seg[-1] = p2  # exact end point: chains meet bit-identically
        out.append(seg)
    return np.vstack(out)


def chainage(path: FloatArray) -> FloatArray:
    """Cumulative distance along a path, m."""
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])


def normals(path: FloatArray) -> FloatArray:
    """Unit left-hand normals of a path, one per vertex."""
    t = np.gradient(path, axis=0)
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
    return np.column_stack([-t[:, 1], t[:, 0]])


def smooth_noise(
    s: FloatArray, rng: np.random.Generator, wavelength: float, octaves: int = 3
) -> FloatArray:
    """Band-limited 1-D noise in about [-1, 1] along the chainage ``s`` (m)."""
    out = np.zeros_like(s)
    amp_total = 0.0
    for k in range(octaves):
        lam = wavelength / (2.1**k)
        amp = 0.55**k
        out += amp * np.sin(2 * np.pi * s / lam + rng.uniform(0, 2 * np.pi))
        amp_total += amp
    return out / amp_total


def meander(
    path: FloatArray, rng: np.random.Generator, amplitude: float, wavelength: float
) -> FloatArray:
    """Shift a path sideways by smooth noise, keeping both end points exactly in place.

    Parameters
    ----------
    amplitude : float
        Largest lateral shift, m.
    wavelength : float
        Main wavelength of the wiggle, m.
    """
    s = chainage(path)
    taper = np.clip(np.minimum(s, s[-1] - s) / max(wavelength / 4, 1.0), 0.0, 1.0)
    shift = amplitude * smooth_noise(s, rng, wavelength) * taper
    out = path + normals(path) * shift[:, None]
    out[0], out[-1] = path[0], path[-1]
    return out


def band(path: FloatArray, left: ArrayLike, right: ArrayLike) -> shapely.Geometry:
    """Polygon between two offset curves of a path (widths in m, may vary per vertex)."""
    n = normals(path)
    lw = np.broadcast_to(np.asarray(left, dtype=float), (len(path),))
    rw = np.broadcast_to(np.asarray(right, dtype=float), (len(path),))
    lft = path + n * lw[:, None]
    rgt = path - n * rw[:, None]
    quads = np.stack([lft[:-1], lft[1:], rgt[1:], rgt[:-1], lft[:-1]], axis=1)
    polys = shapely.make_valid(shapely.polygons(quads))
    return shapely.union_all(polys, grid_size=0.01)


def blob(
    centre: ArrayLike,
    rx: float,
    ry: float,
    rng: np.random.Generator,
    angle: float = 0.0,
    rough: float = 0.18,
    n: int = 96,
) -> shapely.Polygon:
    """Irregular closed shape (a deformed ellipse) with semi-axes ``rx``, ``ry`` in m."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 7):
        r += rough / k * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    x, y = rx * r * np.cos(theta), ry * r * np.sin(theta)
    c, s = np.cos(angle), np.sin(angle)
    pts = np.column_stack([x * c - y * s, x * s + y * c]) + np.asarray(centre, dtype=float)
    return shapely.Polygon(pts)


def pieces(lines: ArrayLike, max_len: float = 500.0) -> NDArray[np.object_]:
    """Cut lines into two-point segments of at most ``max_len`` m (for fast STRtree use)."""
    geoms = shapely.segmentize(np.asarray(lines, dtype=object), max_len)
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    same = idx[1:] == idx[:-1]
    start = coords[:-1][same]
    end = coords[1:][same]
    return shapely.linestrings(np.stack([start, end], axis=1))


def explode_lines(geoms: ArrayLike) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """Single LineStrings of (multi)line geometries, with the index of their source."""
    parts, idx = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & ~shapely.is_empty(parts)
    keep &= shapely.length(parts) > 0
    return parts[keep], idx[keep]


def explode_polygons(geoms: ArrayLike) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """Single Polygons of (multi)polygonal geometries, with the index of their source."""
    parts, idx = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    return parts[keep], idx[keep]


def to_multipolygons(geoms: ArrayLike) -> NDArray[np.object_]:
    """Promote (multi)polygons to MultiPolygons so a layer has one geometry type."""
    parts, idx = explode_polygons(geoms)
    n = len(np.asarray(geoms, dtype=object))
    out = shapely.multipolygons(parts, indices=idx)
    if len(out) != n:
        msg = "every geometry must have at least one polygonal part"
        raise ValueError(msg)
    return out
