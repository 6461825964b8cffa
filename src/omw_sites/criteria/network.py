"""Road-network travel times: a routable graph from BDOT10k roads, multi-source Dijkstra."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from shapely import STRtree

from omw_sites.etl.derive import MOTORWAY_CLASSES, NODE_TOLERANCE_M, single_lines

# Free-flow speeds per BDOT10k road class (km/h); configurable per call.
DEFAULT_SPEEDS_KMH = {
    "A": 110.0,  # motorway
    "S": 100.0,  # expressway
    "GP": 70.0,  # main accelerated
    "G": 60.0,  # main
    "Z": 50.0,  # collector
    "L": 40.0,  # local
    "D": 30.0,  # access
    "I": 20.0,  # other
}
ACCESS_SPEED_KMH = 15.0  # from the site's edge to the road: driveway / site road
# a site or a destination farther than this from every road of the layer lies outside
# what the road data covers: not reachable (NaN), never a time made of a long walk
MAX_ACCESS_LEG_M = 3000.0
JUNCTION_SNAP_M = 150.0  # a motorway meets local roads only within this of a junction


@dataclass
class RoadGraph:
    """An undirected road graph with travel times in minutes on its edges."""

    matrix: csr_matrix  # node × node, minutes
    node_xy: np.ndarray  # (n_nodes, 2) EPSG:2180
    edge_u: np.ndarray  # per road segment: start node
    edge_v: np.ndarray  # per road segment: end node
    edge_min: np.ndarray  # per road segment: minutes end to end
    lines: np.ndarray  # segment geometries
    motorway: np.ndarray  # per segment: A/S class
    local_nodes: np.ndarray  # bool per node: reachable from a non-motorway road
    # the non-motorway segments' tree, built on first use and kept with the graph (a
    # partitioned run's worker keeps one graph for all its partitions)
    _local_tree: STRtree | None = field(default=None, repr=False, compare=False)

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    def local_tree(self) -> STRtree:
        """STRtree of the non-motorway segments (``lines[~motorway]``)."""
        if self._local_tree is None:
            self._local_tree = STRtree(self.lines[~self.motorway])
        return self._local_tree

    def local_segments(self, bounds: tuple[float, float, float, float]) -> np.ndarray:
        """The non-motorway segments (indices into ``lines``, ascending) meeting
        ``bounds``: those a site inside it may enter from."""
        hit = self.local_tree().query(shapely.box(*bounds))
        return np.sort(np.flatnonzero(~self.motorway)[hit])

    def subgraph(self, nodes: np.ndarray, segments: np.ndarray) -> RoadGraph:
        """The graph on the nodes of the bool mask ``nodes`` (every edge between two of
        them, renumbered in the same order), with the road segments ``segments``
        (ascending indices, both ends among ``nodes``) as its entries. Searches within
        ``nodes`` give the same minutes as on the whole graph when ``nodes`` holds every
        node of the trips searched (:func:`~omw_sites.criteria.catchment.within_reach`)."""
        index = np.where(nodes, np.cumsum(nodes) - 1, -1)
        keep = np.flatnonzero(nodes)
        matrix = self.matrix[keep][:, keep].tocsr()
        u, v = index[self.edge_u[segments]], index[self.edge_v[segments]]
        if len(segments) and ((u < 0) | (v < 0)).any():
            raise ValueError("a segment of the subgraph ends outside its nodes")
        return RoadGraph(
            matrix,
            self.node_xy[keep],
            u,
            v,
            self.edge_min[segments],
            self.lines[segments],
            self.motorway[segments],
            self.local_nodes[keep],
        )


def build_graph(
    roads: gpd.GeoDataFrame,
    junctions: gpd.GeoDataFrame | None = None,
    speeds_kmh: dict[str, float] | None = None,
) -> RoadGraph:
    """Routable graph from road centre lines (``road_class`` column, EPSG:2180).

    Nodes are segment end points (merged within ``NODE_TOLERANCE_M``). Motorways and
    expressways (A, S) connect to other roads only at junctions: where an A/S end point
    coincides with a local road's end point farther than ``JUNCTION_SNAP_M`` from any
    junction, the two get separate nodes (a viaduct, not an entry). Edge weight = length /
    class speed, in minutes; unknown classes use the slowest speed.
    """
    speeds = {**DEFAULT_SPEEDS_KMH, **(speeds_kmh or {})}
    lines = single_lines(roads.geometry.to_numpy())
    cls = roads["road_class"].astype(str).to_numpy()
    speed = np.array([speeds.get(c, min(speeds.values())) for c in cls])
    length = shapely.length(lines)
    minutes = length / 1000.0 / speed * 60.0
    start = shapely.get_coordinates(shapely.get_point(lines, 0))
    end = shapely.get_coordinates(shapely.get_point(lines, -1))
    ends = np.vstack([start, end])
    key = np.round(ends / NODE_TOLERANCE_M).astype(np.int64)
    _, node = np.unique(key, axis=0, return_inverse=True)
    node = node.ravel()
    n = len(lines)
    motorway = np.isin(cls, MOTORWAY_CLASSES)
    is_mw_end = np.concatenate([motorway, motorway])
    n_nodes = int(node.max()) + 1 if len(node) else 0
    has_local = np.zeros(n_nodes, dtype=bool)
    has_local[node[~is_mw_end]] = True
    has_mw = np.zeros(n_nodes, dtype=bool)
    has_mw[node[is_mw_end]] = True
    mixed = has_local & has_mw
    if mixed.any():
        xy_all = np.zeros((n_nodes, 2))
        xy_all[node] = ends
        near_junction = np.zeros(n_nodes, dtype=bool)
        if junctions is not None and len(junctions):
            cand = np.flatnonzero(mixed)
            tree = STRtree(junctions.geometry.to_numpy())
            pts = shapely.points(xy_all[cand])
            hit, _ = tree.query(pts, predicate="dwithin", distance=JUNCTION_SNAP_M)
            near_junction[cand[np.unique(hit)]] = True
        split = mixed & ~near_junction
        # the motorway ends at split nodes move to fresh nodes of their own
        remap = np.full(n_nodes, -1, dtype=np.int64)
        remap[split] = n_nodes + np.arange(split.sum())
        sel = is_mw_end & split[node]
        node = node.copy()
        node[sel] = remap[node[sel]]
        n_nodes += int(split.sum())
    u, v = node[:n], node[n:]
    xy = np.zeros((n_nodes, 2))
    xy[u] = start
    xy[v] = end
    local_nodes = np.zeros(n_nodes, dtype=bool)
    local_nodes[u[~motorway]] = True
    local_nodes[v[~motorway]] = True
    # parallel edges: keep the fastest (csr sums duplicates, so reduce first)
    a, b = np.minimum(u, v), np.maximum(u, v)
    order = np.lexsort((minutes, b, a))
    a, b, w = a[order], b[order], minutes[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    a, b, w = a[first], b[first], w[first]
    loop = a == b
    a, b, w = a[~loop], b[~loop], np.maximum(w[~loop], 1e-9)  # 0 would mean "no edge"
    matrix = csr_matrix((w, (a, b)), shape=(n_nodes, n_nodes))
    return RoadGraph(matrix, xy, u, v, minutes, lines, motorway, local_nodes)


def node_times(graph: RoadGraph, sources: np.ndarray) -> np.ndarray:
    """Minutes from every node to the nearest of ``sources`` (node indices); inf if cut off.

    One multi-source Dijkstra over the whole graph (``scipy.sparse.csgraph``), not one
    search per site.
    """
    sources = np.unique(np.asarray(sources, dtype=np.int64))
    if len(sources) == 0:
        return np.full(graph.n_nodes, np.inf)
    return dijkstra(graph.matrix, directed=False, indices=sources, min_only=True)


def snap_points(
    graph: RoadGraph,
    points: np.ndarray,
    local_only: bool = True,
    max_distance: float | None = None,
) -> np.ndarray:
    """Nearest graph node of each point (local-road nodes only when ``local_only``).

    With ``max_distance``, points farther than that from every such node get ``-1``.
    """
    cand = np.flatnonzero(graph.local_nodes) if local_only else np.arange(graph.n_nodes)
    out = np.full(len(points), -1, dtype=np.int64)
    if len(cand) == 0 or len(points) == 0:
        return out
    tree = STRtree(shapely.points(graph.node_xy[cand]))
    (left, right) = tree.query_nearest(
        points, max_distance=max_distance, return_distance=False, all_matches=False
    )
    out[left] = cand[right]
    return out


@dataclass
class Access:
    """How each site enters the network: the nearest non-motorway segment."""

    segment: np.ndarray  # index into graph.lines
    frac: np.ndarray  # position of the entry point along the segment, 0..1
    leg_m: np.ndarray  # distance from the site's edge to the segment
    leg_min: np.ndarray  # minutes of the access leg


def access_points(
    graph: RoadGraph, geoms: np.ndarray, access_speed_kmh: float = ACCESS_SPEED_KMH
) -> Access:
    """Snap each site (polygon) to its nearest non-motorway road segment.

    A site with no such segment within ``MAX_ACCESS_LEG_M`` gets segment ``-1`` and a
    NaN leg: the road data does not reach it.
    """
    local = np.flatnonzero(~graph.motorway)
    seg = np.full(len(geoms), -1, dtype=np.int64)
    leg = np.full(len(geoms), np.nan)
    if len(local) and len(geoms):
        tree = graph.local_tree()
        (left, right), dist = tree.query_nearest(
            geoms, max_distance=MAX_ACCESS_LEG_M, return_distance=True, all_matches=True
        )
        # equally near segments (a site nearest to a road node touches every segment
        # meeting there): the first in road order, whatever the tree's order — a part
        # of the graph (:meth:`RoadGraph.subgraph`) gives the same answer as the whole
        order = np.lexsort((right, left))
        left, right, dist = left[order], right[order], dist[order]
        first = np.ones(len(left), dtype=bool)
        first[1:] = left[1:] != left[:-1]
        seg[left[first]] = local[right[first]]
        leg[left[first]] = dist[first]
    frac = np.zeros(len(geoms))
    ok = seg >= 0
    # entry point: where the site's centre projects onto its road (the nearest point of
    # a long frontage is ambiguous; the projection of the centre is not)
    centre = shapely.point_on_surface(geoms[ok])
    frac[ok] = shapely.line_locate_point(graph.lines[seg[ok]], centre, normalized=True)
    return Access(seg, frac, leg, leg / 1000.0 / access_speed_kmh * 60.0)


def site_times(graph: RoadGraph, access: Access, times: np.ndarray) -> np.ndarray:
    """Minutes from each site to the nearest source, given per-node ``times``; NaN where
    the site has no access segment or its part of the network does not lead there."""
    seg = access.segment
    ok = seg >= 0
    out = np.full(len(seg), np.nan)
    s = seg[ok]
    f = access.frac[ok]
    w = graph.edge_min[s]
    via_u = times[graph.edge_u[s]] + f * w
    via_v = times[graph.edge_v[s]] + (1.0 - f) * w
    out[ok] = access.leg_min[ok] + np.minimum(via_u, via_v)
    out[np.isinf(out)] = np.nan  # cut off from every source
    return out
