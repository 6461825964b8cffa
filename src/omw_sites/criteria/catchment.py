"""Workforce catchment: residents within 30 and 45 minutes by road of every site.

The census grid's people are put on the road graph once: each 1 km cell's residents at
the graph node nearest the cell's centre (cells with no road within
``MAX_ACCESS_LEG_M`` are left out, and counted). A site enters the graph where its
time columns do (:func:`~omw_sites.criteria.network.access_points`): its access segment's
two end nodes, each at its own offset (the access leg plus the part of the segment to
that end). A cell counts for a site when the faster of the two ways reaches its node
within the limit.

The graph is undirected, so the minutes between the sites' access nodes and the
population nodes can be searched from whichever set is smaller, each search bounded at
the largest limit (``scipy.sparse.csgraph.dijkstra(limit=)``) and run in batches: sites
sharing an access node share its search; no search per site.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from omw_sites.criteria.network import MAX_ACCESS_LEG_M, Access, RoadGraph, snap_points

LIMITS_MIN = (30.0, 45.0)
BATCH = 128  # sources per Dijkstra call: 128 × nodes × 8 B (55k nodes: 57 MB)
FULL_BYTES = 256 * 2**20  # searching from the access nodes keeps their whole table


@dataclass
class NodePopulation:
    """People attached to graph nodes: one row per node holding any."""

    node: np.ndarray  # graph node index
    values: np.ndarray  # (n_nodes_with_people, k): residents, working-age residents …
    cells_off_network: int  # populated cells with no road within reach
    people_off_network: float  # their residents


def population_nodes(graph: RoadGraph, grid: gpd.GeoDataFrame) -> NodePopulation:
    """The census grid's residents and working-age residents on the nearest graph node of
    each cell's centre (blank cells, statistical secrecy, count as 0)."""
    res = np.nan_to_num(grid["residents"].to_numpy(dtype=float))
    work = np.nan_to_num(grid["working_age"].to_numpy(dtype=float))
    has = res > 0
    centres = shapely.centroid(grid.geometry.to_numpy()[has])
    node = snap_points(graph, centres, max_distance=MAX_ACCESS_LEG_M)
    values = np.column_stack([res[has], work[has]])
    on = node >= 0
    uniq, inv = np.unique(node[on], return_inverse=True)
    summed = np.zeros((len(uniq), values.shape[1]))
    np.add.at(summed, inv, values[on])
    return NodePopulation(uniq, summed, int((~on).sum()), float(res[has][~on].sum()))


@dataclass
class CoreGraph:
    """The road graph reduced for searches between its ``keep`` nodes: dead ends that
    hold none of them pruned, chains of degree-2 nodes contracted into one edge. Minutes
    between kept nodes are unchanged; every search visits fewer nodes."""

    matrix: csr_matrix  # undirected (upper triangle), minutes
    index: np.ndarray  # new index of each original node, -1 where it was removed


def within_reach(graph: RoadGraph, nodes: np.ndarray, minutes: float) -> np.ndarray:
    """Nodes (bool mask) that a trip of at most ``minutes`` from any of ``nodes`` may
    pass: one multi-source search bounded at ``minutes``. Every node of such a trip is
    that close to its start, so the searches between the sites and the people need no
    other part of the graph (a powiat of a country needs its 45-minute surroundings)."""
    if not len(nodes):
        return np.zeros(graph.n_nodes, dtype=bool)
    reach = dijkstra(graph.matrix, directed=False, indices=nodes, min_only=True, limit=minutes)
    return np.isfinite(reach)


def core_graph(graph: RoadGraph, keep: np.ndarray, inside: np.ndarray | None = None) -> CoreGraph:
    """Reduce ``graph`` around the nodes of the bool mask ``keep`` (exact); with
    ``inside`` (a node mask, :func:`within_reach`), to the edges between its nodes."""
    coo = graph.matrix.tocoo()
    a, b, w = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(float)
    if inside is not None:
        both = inside[a] & inside[b]
        a, b, w = a[both], b[both], w[both]
    n = graph.n_nodes
    rng = np.random.default_rng(0)  # priorities pick independent nodes; any choice is exact
    while True:
        m = len(a)
        a, b, w = _contract_round(a, b, w, n, keep, rng.random(n))
        a, b, w = _prune_round(a, b, w, n, keep)
        if len(a) == m:
            break
    alive = keep.copy()
    alive[a] = True
    alive[b] = True
    index = np.where(alive, np.cumsum(alive) - 1, -1)
    k = int(alive.sum())
    matrix = csr_matrix((w, (index[a], index[b])), shape=(k, k))
    return CoreGraph(matrix, index)


def _degree(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(a, minlength=n) + np.bincount(b, minlength=n)


def _prune_round(a, b, w, n, keep):
    """Drop the edges of dead ends (degree-1 nodes that are not kept)."""
    leaf = (_degree(a, b, n) == 1) & ~keep
    drop = leaf[a] | leaf[b]
    return a[~drop], b[~drop], w[~drop]


def _contract_round(a, b, w, n, keep, priority):
    """Replace degree-2 nodes that are not kept, an independent set of them per round
    (each a local minimum of ``priority``), by one edge joining their two neighbours."""
    cand = (_degree(a, b, n) == 2) & ~keep
    both = cand[a] & cand[b]  # a candidate beside a candidate of lower priority waits
    lower = np.zeros(n, dtype=bool)
    lower[np.where(priority[a] < priority[b], b, a)[both]] = True
    pick = cand & ~lower
    if not pick.any():
        return a, b, w
    at_a, at_b = pick[a], pick[b]
    touching = at_a | at_b
    mid = np.where(at_a, a, b)[touching]  # the picked node of each of its two edges
    other = np.where(at_a, b, a)[touching]
    order = np.argsort(mid, kind="stable")
    mid, other, wt = mid[order], other[order], w[touching][order]
    u, v, joined = other[0::2], other[1::2], wt[0::2] + wt[1::2]
    loop = u == v  # a ring hanging on one node: no way through it
    na = np.concatenate([a[~touching], np.minimum(u, v)[~loop]])
    nb = np.concatenate([b[~touching], np.maximum(u, v)[~loop]])
    nw = np.concatenate([w[~touching], joined[~loop]])
    # parallel edges: keep the fastest
    srt = np.lexsort((nw, nb, na))
    na, nb, nw = na[srt], nb[srt], nw[srt]
    first = np.ones(len(na), dtype=bool)
    first[1:] = (na[1:] != na[:-1]) | (nb[1:] != nb[:-1])
    return na[first], nb[first], nw[first]


def _minutes_blocks(
    matrix: csr_matrix, pop_nodes: np.ndarray, acc_nodes: np.ndarray, limit: float
) -> Iterator[tuple[slice, np.ndarray]]:
    """Minutes between population nodes and access nodes, as (rows of ``pop_nodes``,
    block of shape (rows, len(acc_nodes))) — inf beyond ``limit``. Searched from the
    smaller of the two sets, bounded at ``limit``."""
    if len(pop_nodes) <= len(acc_nodes) or len(pop_nodes) * len(acc_nodes) * 8 > FULL_BYTES:
        for a in range(0, len(pop_nodes), BATCH):
            rows = slice(a, min(a + BATCH, len(pop_nodes)))
            d = dijkstra(matrix, directed=False, indices=pop_nodes[rows], limit=limit)
            yield rows, d[:, acc_nodes]
        return
    full = np.empty((len(acc_nodes), len(pop_nodes)))
    for a in range(0, len(acc_nodes), BATCH):
        rows = slice(a, min(a + BATCH, len(acc_nodes)))
        d = dijkstra(matrix, directed=False, indices=acc_nodes[rows], limit=limit)
        full[rows] = d[:, pop_nodes]
    for a in range(0, len(pop_nodes), BATCH):
        rows = slice(a, min(a + BATCH, len(pop_nodes)))
        yield rows, np.ascontiguousarray(full[:, rows].T)


def catchment(
    graph: RoadGraph,
    access: Access,
    people: NodePopulation,
    limits: tuple[float, ...] = LIMITS_MIN,
) -> np.ndarray:
    """People within each limit of each site: shape (len(limits), n_sites, k), NaN for a
    site with no access segment."""
    seg = access.segment
    ok = seg >= 0
    n_sites, k = len(seg), people.values.shape[1]
    out = np.zeros((len(limits), n_sites, k))
    out[:, ~ok] = np.nan
    if not ok.any() or not len(people.node):
        return out
    s = seg[ok]
    u, v = graph.edge_u[s], graph.edge_v[s]
    w = graph.edge_min[s]
    # minutes from the site to each end of its access segment
    off_u = access.leg_min[ok] + access.frac[ok] * w
    off_v = access.leg_min[ok] + (1.0 - access.frac[ok]) * w
    acc_nodes, inv = np.unique(np.concatenate([u, v]), return_inverse=True)
    iu, iv = inv[: len(u)], inv[len(u) :]
    inside = within_reach(graph, acc_nodes, max(limits))
    near = inside[people.node]  # the others are farther than any limit
    pop_nodes, pop_values = people.node[near], people.values[near]
    keep = np.zeros(graph.n_nodes, dtype=bool)
    keep[acc_nodes] = True
    keep[pop_nodes] = True
    core = core_graph(graph, keep, inside)
    pop_core, acc_core = core.index[pop_nodes], core.index[acc_nodes]
    sums = np.zeros((len(limits), int(ok.sum()), k))
    for rows, block in _minutes_blocks(core.matrix, pop_core, acc_core, max(limits)):
        t = np.minimum(block[:, iu] + off_u, block[:, iv] + off_v)  # (rows, sites)
        vals = pop_values[rows]  # (rows, k)
        for j, lim in enumerate(limits):
            sums[j] += (t <= lim).T.astype(np.float64) @ vals
    out[:, ok] = sums
    return out


def site_catchment_baseline(
    graph: RoadGraph,
    access: Access,
    people: NodePopulation,
    sites: np.ndarray,
    limits: tuple[float, ...] = LIMITS_MIN,
) -> np.ndarray:
    """The same answer for the ``sites`` given (indices), one full, unbounded Dijkstra
    per site from its two access nodes: the naive way, kept to measure against."""
    k = people.values.shape[1]
    out = np.full((len(limits), len(sites), k), np.nan)
    for i, site in enumerate(sites):
        seg = access.segment[site]
        if seg < 0:
            continue
        u, v, w = graph.edge_u[seg], graph.edge_v[seg], graph.edge_min[seg]
        f, leg = access.frac[site], access.leg_min[site]
        d = dijkstra(graph.matrix, directed=False, indices=[u, v])
        off_u, off_v = leg + f * w, leg + (1.0 - f) * w
        t = np.minimum(d[0] + off_u, d[1] + off_v)[people.node]
        for j, lim in enumerate(limits):
            out[j, i] = (t <= lim).astype(float) @ people.values
    return out
