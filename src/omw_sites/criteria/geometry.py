"""Vectorised spatial primitives over STRtrees: nearest distance and overlap shares."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree


def nearest_distance(
    geoms: np.ndarray, targets: np.ndarray, max_distance: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distance (m) from each geometry to its nearest target, and that target's index.

    Uses an STRtree over ``targets``; geometries with no target (empty target set or
    none within ``max_distance``) get NaN — not measured, never ``inf`` — and index
    ``-1``. Touching or overlapping targets give 0 ("on site"); of several equally near
    targets, the first.
    """
    n = len(geoms)
    dist = np.full(n, np.nan)
    idx = np.full(n, -1, dtype=np.int64)
    if len(targets) == 0 or n == 0:
        return dist, idx
    tree = STRtree(targets)
    (left, right), d = tree.query_nearest(
        geoms, max_distance=max_distance, return_distance=True, all_matches=True
    )
    # of equally near targets the first (in the layer's order): the same target whatever
    # else the layer holds (a partition reads only part of it)
    order = np.lexsort((right, left))
    left, right, d = left[order], right[order], d[order]
    first = np.ones(len(left), dtype=bool)
    first[1:] = left[1:] != left[:-1]
    dist[left[first]] = d[first]
    idx[left[first]] = right[first]
    return dist, idx


def overlap_share(geoms: np.ndarray, areas: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Share (0..1) of each geometry's area covered by the union of ``layer`` polygons.

    The layer is dissolved first (overlapping constraint polygons must not count twice)
    and split into its parts so the STRtree stays selective.
    """
    share = np.zeros(len(geoms))
    if len(layer) == 0 or len(geoms) == 0:
        return share
    dissolved = shapely.get_parts(shapely.union_all(shapely.make_valid(layer)))
    dissolved = dissolved[shapely.get_type_id(dissolved) == 3]
    if len(dissolved) == 0:
        return share
    tree = STRtree(dissolved)
    left, right = tree.query(geoms, predicate="intersects")
    if len(left) == 0:
        return share
    # parts fully inside a constraint polygon need no intersection computed
    inside = shapely.contains_properly(dissolved[right], geoms[left])
    covered = np.where(inside, areas[left], 0.0)
    todo = ~inside
    covered[todo] = shapely.area(shapely.intersection(geoms[left[todo]], dissolved[right[todo]]))
    total = np.bincount(left, weights=covered, minlength=len(geoms))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(areas > 0, total / areas, 0.0)
    return np.clip(share, 0.0, 1.0)


def overlap_pairs(
    geoms: np.ndarray, areas: np.ndarray, polys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (geometry, polygon) pair that overlaps, with the overlap area (m²).

    Pairs where the polygon contains the geometry need no intersection computed.
    """
    if len(polys) == 0 or len(geoms) == 0:
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([])
    left, right = STRtree(polys).query(geoms, predicate="intersects")
    inside = shapely.contains_properly(polys[right], geoms[left])
    inter = np.where(inside, areas[left], 0.0)
    todo = ~inside
    inter[todo] = shapely.area(shapely.intersection(geoms[left[todo]], polys[right[todo]]))
    keep = inter > 0
    return left[keep], right[keep], inter[keep]


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


def largest_overlap(
    geoms: np.ndarray, areas: np.ndarray, layer: gpd.GeoDataFrame, pairs: Pairs | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Index into ``layer`` of the polygon covering most of each geometry, and its share.

    Index ``-1`` and share 0 where nothing overlaps. ``pairs`` reuses an
    ``overlap_pairs`` result computed for the same inputs.
    """
    n = len(geoms)
    best = np.full(n, -1, dtype=np.int64)
    share = np.zeros(n)
    left, right, inter = pairs or overlap_pairs(geoms, areas, layer.geometry.to_numpy())
    if len(left) == 0:
        return best, share
    # per geometry, the pair with the largest intersection: sort by (left, -area)
    order = np.lexsort((-inter, left))
    first = np.ones(len(order), dtype=bool)
    first[1:] = left[order][1:] != left[order][:-1]
    pick = order[first]
    best[left[pick]] = right[pick]
    with np.errstate(divide="ignore", invalid="ignore"):
        share[left[pick]] = np.where(areas[left[pick]] > 0, inter[pick] / areas[left[pick]], 0)
    return best, np.clip(share, 0.0, 1.0)


def class_shares(
    geoms: np.ndarray,
    areas: np.ndarray,
    layer: gpd.GeoDataFrame,
    column: str,
    pairs: Pairs | None = None,
) -> np.ndarray:
    """Per geometry, the share of its area under each value of ``layer[column]``.

    Returned as text, largest first: ``"P/U 0.82; ZL 0.18"`` ("" where nothing overlaps);
    shares under 0.5 % (edge slivers) are left out.
    """
    out = np.full(len(geoms), "", dtype=object)
    left, right, inter = pairs or overlap_pairs(geoms, areas, layer.geometry.to_numpy())
    if len(left) == 0:
        return out
    df = pd.DataFrame({"site": left, "cls": layer[column].to_numpy()[right], "a": inter})
    df = df.groupby(["site", "cls"], sort=False)["a"].sum().reset_index()
    df["share"] = df["a"] / areas[df["site"].to_numpy()]
    df = df[df["share"] >= 0.005]  # boundary slivers from digitising noise are not zoning
    df = df.sort_values(["site", "share"], ascending=[True, False])
    df["text"] = df["cls"].astype(str) + " " + df["share"].round(2).map("{:.2f}".format)
    joined = df.groupby("site", sort=False)["text"].agg("; ".join)
    out[joined.index.to_numpy()] = joined.to_numpy()
    return out


def point_in_polygon(points: np.ndarray, layer: gpd.GeoDataFrame) -> np.ndarray:
    """Index into ``layer`` of a polygon containing each point (-1 where none)."""
    idx = np.full(len(points), -1, dtype=np.int64)
    if len(layer) == 0 or len(points) == 0:
        return idx
    tree = STRtree(layer.geometry.to_numpy())
    left, right = tree.query(points, predicate="within")
    idx[left] = right  # a point on a shared edge takes the last match; immaterial here
    return idx
