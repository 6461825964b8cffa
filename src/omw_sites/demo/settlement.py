"""Settlement grid: sectors, their rotated lattices of tiles, land use and the local roads.

The region is cut into jittered ~2.4 km sectors (their edges are collector and local
roads). Each sector carries a rotated lattice of *tiles* (about 3 x 3 street blocks, 10-25
ha) separated by access streets. A tile has one land use (single-family housing, urban
blocks, services, industry, fields, forest, green) and is later subdivided into parcels.
Tiles never cross a sector edge, a gmina boundary, a main road, a railway or water, so
parcels never overlap each other or those features.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from omw_sites.demo._common import CENTRE, KM, explode_lines, pieces
from omw_sites.demo.environment import Environment
from omw_sites.demo.geography import Geography
from omw_sites.demo.transport import ROAD_COLUMNS, Backbone
from omw_sites.layers import STATION_FREIGHT, WORK_CRS

SECTOR_M = 2400.0  # sector grid spacing, m

# sector classes
CITY, CITY_OUTER, INDUSTRIAL, TOWN, RURAL, FOREST = range(6)
CLASS_NAMES = ("city", "city_outer", "industrial", "town", "rural", "forest")
# share of the requested parcels placed in each class (redistributed when one is full)
CLASS_SHARE = np.array([0.14, 0.18, 0.10, 0.33, 0.22, 0.03])
CLASS_WEIGHT = np.array([9.0, 5.0, 5.0, 5.0, 1.0, 0.3])
CLASS_SPREAD = np.array([0.3, 0.4, 0.5, 0.3, 0.9, 0.5])  # lognormal sigma of the weights
CLASS_DECAY = np.array([5000.0, 2200.0, 1500.0, 1500.0, 450.0, 500.0])  # cluster size, m

# tile land uses
RESIDENTIAL, URBAN, SERVICES, INDUSTRY, AGRICULTURE, WOODLAND, GREEN = range(7)
USE_NAMES = ("residential", "urban", "services", "industry", "agriculture", "forest", "green")
BLOCKED = (RESIDENTIAL, URBAN, SERVICES)  # tiles made of 3 x 3 street blocks
MODULES = 3  # blocks per tile side


@dataclass(frozen=True)
class Sectors:
    """The sector grid (EPSG:2180) and what each sector is like."""

    quads: NDArray[np.object_]  # (S,) sector polygons
    centre: NDArray[np.float64]  # (S, 2)
    angle: NDArray[np.float64]  # (S,) lattice rotation, rad
    klass: NDArray[np.int64]  # (S,) sector class
    focus: NDArray[np.float64]  # (S, 2) where the settlement of the sector grows from
    weight: NDArray[np.float64]  # (S,) attractiveness
    module: NDArray[np.float64]  # (S, 2) street-block size (x, y) in the lattice frame, m
    gap_in: NDArray[np.float64]  # (S,) street width between blocks of a tile, m
    gap_out: NDArray[np.float64]  # (S,) street width between tiles, m
    edges: gpd.GeoDataFrame  # sector-edge roads (ROAD_COLUMNS)

    @property
    def tile_size(self) -> NDArray[np.float64]:
        """(S, 2) tile size in the lattice frame, m."""
        return MODULES * self.module + (MODULES - 1) * self.gap_in[:, None]

    @property
    def pitch(self) -> NDArray[np.float64]:
        """(S, 2) lattice pitch (tile + street), m."""
        return self.tile_size + self.gap_out[:, None]

    def to_world(self, sector: NDArray[np.intp], x: NDArray, y: NDArray) -> NDArray[np.float64]:
        """Lattice-frame coordinates of sector ``sector`` to EPSG:2180 (shape (..., 2))."""
        c, s = np.cos(self.angle[sector]), np.sin(self.angle[sector])
        cx, cy = self.centre[sector, 0], self.centre[sector, 1]
        return np.stack([cx + x * c - y * s, cy + x * s + y * c], axis=-1)


@dataclass(frozen=True)
class Tiles:
    """Usable lattice tiles (EPSG:2180) with land use, capacity and selection."""

    sector: NDArray[np.intp]
    ij: NDArray[np.int64]  # (T, 2) lattice indices within the sector
    geom: NDArray[np.object_]  # tile rectangles
    use: NDArray[np.int64]
    dist: NDArray[np.float64]  # distance from the sector focus, m
    gmina: NDArray[np.intp]  # index into the gminy frame
    whole: NDArray[np.bool_]  # the whole tile is usable (else only ``module_ok`` blocks)
    module_ok: NDArray[np.bool_]  # (T, 9) usable street blocks
    shape: NDArray[np.int64]  # (T, 9, 2) columns x rows of parcels per block (merged: [:, 0])
    capacity: NDArray[np.int64]  # parcels the tile holds
    selected: NDArray[np.bool_]
    order: NDArray[np.intp]  # selected tiles, in the order they were filled
    take: NDArray[np.int64]  # parcels placed on each tile (the last of a class may be cut)


def build_sectors(
    rng: np.random.Generator, geo: Geography, env: Environment, backbone: Backbone
) -> Sectors:
    """Jittered sector grid over the region, classed by what lies around each sector."""
    n = int(np.ceil(44 * KM / SECTOR_M))
    ii = np.arange(-n, n + 2)
    gx, gy = np.meshgrid(ii, ii, indexing="ij")
    nodes = np.stack([gx, gy], axis=-1) * SECTOR_M - SECTOR_M / 2 + CENTRE
    nodes += rng.uniform(-0.1, 0.1, nodes.shape) * SECTOR_M
    corners = np.stack(
        [nodes[:-1, :-1], nodes[1:, :-1], nodes[1:, 1:], nodes[:-1, 1:], nodes[:-1, :-1]], axis=2
    ).reshape(-1, 5, 2)
    quads = shapely.polygons(corners)
    centre = corners[:, :4].mean(axis=1)
    inside = shapely.intersects(geo.region, shapely.points(centre))
    quads, centre = quads[inside], centre[inside]
    n_s = len(quads)

    seats = geo.seats
    freight = backbone.stations[backbone.stations["RODZAJ"] == STATION_FREIGHT]
    freight_xy = shapely.get_coordinates(freight.geometry.values)
    pts = shapely.points(centre)
    in_warsaw = shapely.contains(geo.warsaw, pts)
    d_centre = np.hypot(*(centre - CENTRE).T)
    d_junction, j_idx = _nearest(centre, backbone.junction_seeds)
    d_freight, f_idx = _nearest(centre, freight_xy)
    d_seat, s_idx = _nearest(centre, seats[1:])
    in_forest = shapely.intersects(shapely.union_all(env.forest.geometry.values), pts)
    klass = np.select(
        [
            in_warsaw & (d_centre < 7.5 * KM),
            in_warsaw,
            (d_junction < 2.6 * KM) | (d_freight < 1.8 * KM),
            d_seat < 2.8 * KM,
            in_forest,
        ],
        [CITY, CITY_OUTER, INDUSTRIAL, TOWN, FOREST],
        default=RURAL,
    )
    focus = centre + rng.uniform(-0.25, 0.25, (n_s, 2)) * SECTOR_M
    near_seat = (klass == TOWN) | ((klass == INDUSTRIAL) & (d_seat < 1.5 * KM))
    focus[near_seat] = seats[1:][s_idx[near_seat]]
    ind = klass == INDUSTRIAL
    use_j = ind & (d_junction <= d_freight)
    focus[use_j] = backbone.junction_seeds[j_idx[use_j]]
    use_f = ind & (d_freight < d_junction)
    focus[use_f] = freight_xy[f_idx[use_f]]
    # settlements grow from a point inside the sector; a far focus moves to the centre
    far = np.hypot(*(focus - centre).T) > 0.75 * SECTOR_M
    focus[far] = centre[far] + 0.4 * (focus[far] - centre[far])

    weight = CLASS_WEIGHT[klass] * rng.lognormal(0.0, CLASS_SPREAD[klass])
    module = np.column_stack([rng.uniform(125, 180, n_s), rng.uniform(80, 100, n_s)])
    module[klass == CITY] = np.column_stack(
        [rng.uniform(110, 150, n_s), rng.uniform(90, 120, n_s)]
    )[klass == CITY]
    module[ind] *= 1.3
    gap_in = np.where(klass <= CITY_OUTER, 14.0, 10.0)
    gap_out = np.where(klass <= CITY_OUTER, 24.0, 18.0)
    angle = rng.uniform(-0.35, 0.35, n_s)

    edges = _sector_edges(rng, nodes, geo, env)
    return Sectors(quads, centre, angle, klass, focus, weight, module, gap_in, gap_out, edges)


def _nearest(xy: NDArray[np.float64], targets: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    d = np.hypot(*(xy[:, None, :] - targets[None, :, :]).transpose(2, 0, 1))
    i = np.argmin(d, axis=1)
    return d[np.arange(len(xy)), i], i


def _sector_edges(
    rng: np.random.Generator, nodes: NDArray[np.float64], geo: Geography, env: Environment
) -> gpd.GeoDataFrame:
    """Roads along the sector edges: collectors every third grid line, local roads between."""
    a = np.concatenate([nodes[:-1, :].reshape(-1, 2), nodes[:, :-1].reshape(-1, 2)])
    b = np.concatenate([nodes[1:, :].reshape(-1, 2), nodes[:, 1:].reshape(-1, 2)])
    nx, ny = nodes.shape[0], nodes.shape[1]
    line_idx = np.concatenate(
        [np.broadcast_to(np.arange(ny), (nx - 1, ny)).ravel(),
         np.broadcast_to(np.arange(nx)[:, None], (nx, ny - 1)).ravel()]
    )  # fmt: skip
    lines = shapely.linestrings(np.stack([a, b], axis=1))
    collector = line_idx % 3 == 0
    mid = shapely.points((a + b) / 2)
    keep = shapely.intersects(geo.region, mid)
    keep &= ~shapely.intersects(env.water_union, lines)
    in_forest = shapely.intersects(shapely.union_all(env.forest.geometry.values), mid)
    keep &= collector | (rng.random(len(lines)) > np.where(in_forest, 0.5, 0.08))
    klass = np.where(collector, "Z", "L")
    lines = shapely.intersection(lines, geo.region)
    parts, idx = explode_lines(lines[keep])
    k = klass[keep][idx]
    surface = np.where((k == "L") & (rng.random(len(k)) < 0.25), "tłuczniowa", "bitumiczna")
    return gpd.GeoDataFrame(
        {
            "X_KOD": "SKDR03",
            "KLASADROGI": k,
            "KATZARZADZANIA": np.where(k == "Z", "P", "G"),
            "NUMERDROGI": None,
            "MATERIALNAWIERZCHNI": surface,
        },
        geometry=parts,
        crs=WORK_CRS,
    )[list(ROAD_COLUMNS) + ["geometry"]]


class _Conflicts:
    """Fast 'too close to something' tests for tiles and blocks."""

    def __init__(self, geo: Geography, env: Environment, backbone: Backbone) -> None:
        fast = backbone.roads["KLASADROGI"].isin(["A", "S"]).to_numpy()
        water = env.water.geometry.values
        boundaries = shapely.boundary(geo.gminy.geometry.values)
        self.checks = [
            (shapely.STRtree(pieces(backbone.roads.geometry.values[fast])), 45.0),
            (shapely.STRtree(pieces(backbone.roads.geometry.values[~fast])), 14.0),
            (shapely.STRtree(pieces(backbone.rail.geometry.values)), 16.0),
            (shapely.STRtree(pieces(boundaries)), 6.0),
            (shapely.STRtree(_chop(water)), 10.0),
            (shapely.STRtree(backbone.airports.geometry.values), 1600.0),
        ]
        self.region = geo.region
        shapely.prepare(self.region)

    def clear(self, geoms: NDArray[np.object_]) -> NDArray[np.bool_]:
        """True where a geometry lies inside the region and clear of every feature."""
        ok = shapely.contains(self.region, geoms)
        for tree, dist in self.checks:
            hit, _ = tree.query(geoms, predicate="dwithin", distance=dist)
            ok[hit] = False
        return ok


def _chop(polys: NDArray[np.object_], size: float = 2000.0) -> NDArray[np.object_]:
    """Cut large polygons into grid cells so an STRtree over them stays selective."""
    xmin, ymin, xmax, ymax = shapely.total_bounds(polys)
    xs = np.arange(xmin, xmax + size, size)
    ys = np.arange(ymin, ymax + size, size)
    gx, gy = np.meshgrid(xs[:-1], ys[:-1])
    cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + size, gy.ravel() + size)
    tree = shapely.STRtree(cells)
    p_idx, c_idx = tree.query(polys, predicate="intersects")
    parts = shapely.intersection(polys[p_idx], cells[c_idx])
    return parts[~shapely.is_empty(parts)]


def _rects(sectors: Sectors, sec: NDArray[np.intp], x0, y0, x1, y1) -> NDArray[np.object_]:
    """Lattice-frame rectangles to EPSG:2180 polygons."""
    xs = np.stack([x0, x1, x1, x0, x0], axis=-1)
    ys = np.stack([y0, y0, y1, y1, y0], axis=-1)
    return shapely.polygons(sectors.to_world(sec[:, None], xs, ys))


def candidate_tiles(
    sectors: Sectors,
    geo: Geography,
    env: Environment,
    backbone: Backbone,
) -> dict[str, NDArray]:
    """Every lattice tile that fits its sector, with its usable street blocks."""
    half = np.ceil(0.78 * SECTOR_M / sectors.pitch).astype(np.int64)  # (S, 2)
    n_per = (2 * half[:, 0] + 1) * (2 * half[:, 1] + 1)
    sec = np.repeat(np.arange(len(n_per)), n_per)
    k = np.arange(len(sec)) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    rows = 2 * half[sec, 1] + 1
    i = k // rows - half[sec, 0]
    j = k % rows - half[sec, 1]
    tw, th = sectors.tile_size[sec, 0], sectors.tile_size[sec, 1]
    px, py = sectors.pitch[sec, 0], sectors.pitch[sec, 1]
    cx, cy = i * px, j * py
    inset = shapely.buffer(sectors.quads, -12.0, join_style="mitre")
    shapely.prepare(inset)
    xy = sectors.to_world(sec, cx, cy)
    keep = shapely.contains_xy(inset[sec], xy[:, 0], xy[:, 1])  # tile centre in the sector
    sec, i, j, cx, cy, tw, th = (v[keep] for v in (sec, i, j, cx, cy, tw, th))
    tiles = _rects(sectors, sec, cx - tw / 2, cy - th / 2, cx + tw / 2, cy + th / 2)
    conflicts = _Conflicts(geo, env, backbone)
    inside = shapely.contains(inset[sec], tiles)
    clear = conflicts.clear(tiles)  # also: inside the region
    whole = inside & clear

    # street blocks of partly usable tiles: test only what failed for the whole tile
    part = np.flatnonzero(~whole)
    mw, mh = sectors.module[sec[part], 0], sectors.module[sec[part], 1]
    gi = sectors.gap_in[sec[part]]
    nm = MODULES * MODULES
    a = np.tile(np.repeat(np.arange(MODULES), MODULES), len(part))
    b = np.tile(np.tile(np.arange(MODULES), MODULES), len(part))
    rep = np.repeat(np.arange(len(part)), nm)
    x0 = (cx[part] - tw[part] / 2)[rep] + a * (mw + gi)[rep]
    y0 = (cy[part] - th[part] / 2)[rep] + b * (mh + gi)[rep]
    psec = sec[part][rep]
    blocks = _rects(sectors, psec, x0, y0, x0 + mw[rep], y0 + mh[rep])
    ok = np.ones(len(blocks), dtype=bool)
    test_in = ~inside[part][rep]
    ok[test_in] = shapely.contains(inset[psec[test_in]], blocks[test_in])
    test_clear = ok & ~clear[part][rep]
    ok[test_clear] = conflicts.clear(blocks[test_clear])
    module_ok = np.ones((len(sec), nm), dtype=bool)
    module_ok[part] = ok.reshape(-1, nm)

    # gmina of every tile; blocks of a partial tile in another gmina are not used
    gmina = gmina_of(geo, sectors.to_world(sec, cx, cy))
    block_xy = sectors.to_world(psec, x0 + mw[rep] / 2, y0 + mh[rep] / 2)
    block_gmina = np.where(ok, gmina_of(geo, block_xy), -1).reshape(-1, nm)
    first = np.argmax(block_gmina >= 0, axis=1)
    gmina[part] = block_gmina[np.arange(len(part)), first]
    module_ok[part] &= block_gmina == gmina[part][:, None]
    usable = module_ok.any(axis=1) & (gmina >= 0)

    centres = sectors.to_world(sec, cx, cy)
    dist = np.hypot(*(centres - sectors.focus[sec]).T)
    return {
        "sector": sec[usable],
        "ij": np.column_stack([i, j])[usable],
        "geom": tiles[usable],
        "whole": whole[usable],
        "module_ok": module_ok[usable],
        "gmina": gmina[usable],
        "dist": dist[usable],
    }


def gmina_of(geo: Geography, xy: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index of the gmina containing each point (-1 outside the region)."""
    out = np.full(len(xy), -1, dtype=np.intp)
    for g, poly in enumerate(geo.gminy.geometry.values):
        xmin, ymin, xmax, ymax = poly.bounds
        cand = np.flatnonzero(
            (out < 0) & (xy[:, 0] >= xmin) & (xy[:, 0] <= xmax) & (xy[:, 1] >= ymin)
            & (xy[:, 1] <= ymax)
        )  # fmt: skip
        shapely.prepare(poly)
        inside = shapely.contains_xy(poly, xy[cand, 0], xy[cand, 1])
        out[cand[inside]] = g
    return out


def _use_probabilities(klass: NDArray[np.int64], dist: NDArray[np.float64]) -> NDArray:
    """(T, 7) probabilities of each land use for tiles of a sector class at a distance."""
    p = np.zeros((len(klass), 7))
    table = {
        # class: [(max distance m, [res, urban, serv, ind, agri, forest, green]), ...]
        CITY: [(np.inf, [0.12, 0.58, 0.2, 0.03, 0.0, 0.0, 0.07])],
        CITY_OUTER: [
            (2500, [0.45, 0.25, 0.12, 0.08, 0.04, 0.0, 0.06]),
            (np.inf, [0.5, 0.08, 0.08, 0.1, 0.2, 0.0, 0.04]),
        ],
        INDUSTRIAL: [
            (1200, [0.0, 0.0, 0.2, 0.72, 0.08, 0.0, 0.0]),
            (2200, [0.25, 0.0, 0.15, 0.3, 0.3, 0.0, 0.0]),
            (np.inf, [0.35, 0.0, 0.05, 0.05, 0.55, 0.0, 0.0]),
        ],
        TOWN: [
            (700, [0.35, 0.35, 0.22, 0.0, 0.0, 0.0, 0.08]),
            (1800, [0.78, 0.06, 0.06, 0.02, 0.06, 0.0, 0.02]),
            (np.inf, [0.45, 0.0, 0.03, 0.02, 0.5, 0.0, 0.0]),
        ],
        RURAL: [
            (450, [0.7, 0.0, 0.06, 0.0, 0.24, 0.0, 0.0]),
            (np.inf, [0.12, 0.0, 0.01, 0.01, 0.81, 0.05, 0.0]),
        ],
        FOREST: [(np.inf, [0.08, 0.0, 0.0, 0.0, 0.12, 0.8, 0.0])],
    }
    for c, bands in table.items():
        lo = -np.inf
        for hi, probs in bands:
            sel = (klass == c) & (dist > lo) & (dist <= hi)
            p[sel] = probs
            lo = hi
    return p


def _shapes(rng: np.random.Generator, sectors: Sectors, sec: NDArray[np.intp]) -> NDArray:
    """(T, 7, 9, 2) parcel grid (columns, rows) per block for every possible land use."""
    n = len(sec)
    out = np.ones((n, 7, MODULES * MODULES, 2), dtype=np.int64)
    mw = sectors.module[sec, 0][:, None]
    tw = sectors.tile_size[sec, 0]
    u = rng.random((n, MODULES * MODULES, 3))
    out[:, RESIDENTIAL, :, 0] = np.clip(np.round(mw / (17 + 13 * u[..., 0])), 3, 12)
    out[:, RESIDENTIAL, :, 1] = 2
    out[:, URBAN, :, 0] = 2 + (u[..., 1] < 0.5)
    out[:, URBAN, :, 1] = 1 + (u[..., 2] < 0.6)
    out[:, SERVICES, :, 0] = 1 + (u[..., 1] < 0.55)
    # merged tiles use [:, use, 0, :]
    combos = np.array([[1, 1], [2, 1], [2, 2], [3, 2], [4, 2], [4, 3]])
    pick = np.searchsorted(np.cumsum([0.24, 0.26, 0.2, 0.14, 0.1, 0.06]), u[:, 0, 0])
    out[:, INDUSTRY, 0] = combos[np.minimum(pick, 5)]
    out[:, AGRICULTURE, 0, 0] = np.clip(np.round(tw / (13 + 32 * u[:, 1, 0])), 4, 60)
    out[:, AGRICULTURE, 0, 1] = 1 + (u[:, 1, 1] < 0.3)
    out[:, WOODLAND, 0] = combos[np.minimum((u[:, 2, 0] * 3).astype(int), 2)]
    out[:, GREEN, 0] = 1
    return out


def select_tiles(
    rng: np.random.Generator,
    sectors: Sectors,
    cand: dict[str, NDArray],
    geo: Geography,
    n_parcels: int,
) -> Tiles:
    """Give each tile a land use and fill tiles, best first, until ``n_parcels`` are placed.

    Each sector class gets its share of the parcels (``CLASS_SHARE``); within a class the
    tiles are filled in order of sector weight and closeness to the sector focus, so
    parcels come in compact clusters that grow with the requested count.
    """
    sec, dist = cand["sector"], cand["dist"]
    klass = sectors.klass[sec]
    n = len(sec)
    u_use, u_dense, u_pri = rng.random(n), rng.random(n), rng.random(n)
    probs = np.cumsum(_use_probabilities(klass, dist), axis=1)
    base_use = np.minimum((u_use[:, None] > probs).sum(axis=1), GREEN)
    shapes = _shapes(rng, sectors, sec)
    per_block = shapes[..., 0] * shapes[..., 1]  # (T, 7, 9)
    blocked_cap = (per_block * cand["module_ok"][:, None, :]).sum(axis=2)  # (T, 7)
    merged_cap = np.where(cand["whole"][:, None], per_block[:, :, 0], 0)
    cap_by_use = np.where(np.isin(np.arange(7), BLOCKED)[None, :], blocked_cap, merged_cap)

    priority = sectors.weight[sec] * np.exp(-dist / CLASS_DECAY[klass]) * (0.8 + 0.4 * u_pri)

    # when the region cannot hold the count, fields near settlements become housing
    for dense in (0.0, 0.25, 0.5, 0.75, 1.0):
        use = base_use.copy()
        grow = (use == AGRICULTURE) & (u_dense < dense) & (klass != FOREST)
        use[grow] = RESIDENTIAL
        cap = cap_by_use[np.arange(n), use]
        if cap.sum() >= n_parcels * 1.02:
            break
    else:
        msg = (
            f"the demo region holds at most {int(cap.sum())} parcels; "
            f"ask for fewer than {n_parcels}"
        )
        raise ValueError(msg)

    # every gmina gets a settlement at its seat, however few parcels are asked for
    seat_d = np.hypot(*(shapely.get_coordinates(shapely.centroid(cand["geom"]))
                        - geo.seats[cand["gmina"]]).T)  # fmt: skip
    pre = np.array(
        [np.flatnonzero(m)[np.argmin(seat_d[m])]
         for g in range(1, len(geo.seats)) if (m := (cand["gmina"] == g) & (cap > 0)).any()],
        dtype=np.intp,
    )  # fmt: skip
    takes = np.zeros(n, dtype=np.int64)
    per_seat = max(1, min(max(8, n_parcels // 300), n_parcels // (2 * len(geo.seats))))
    takes[pre] = np.minimum(cap[pre], per_seat)
    rest = cap.copy()
    rest[pre] = 0
    quota = _class_quota(rest, klass, n_parcels - int(takes.sum()))
    chosen: list[NDArray[np.intp]] = [pre]
    for c in range(len(CLASS_SHARE)):
        idx = np.flatnonzero((klass == c) & (rest > 0))
        idx = idx[np.argsort(-priority[idx], kind="stable")]
        cum = np.cumsum(rest[idx])
        k = min(int(np.searchsorted(cum, quota[c])) + 1, len(idx)) if quota[c] > 0 else 0
        pick = idx[:k]
        takes[pick] = rest[pick]
        if k and cum[k - 1] > quota[c]:
            takes[pick[-1]] -= int(cum[k - 1] - quota[c])
        chosen.append(pick)
    order = np.concatenate(chosen)
    selected = np.zeros(n, dtype=bool)
    selected[order] = True
    shape = shapes[np.arange(n), use]  # (T, 9, 2)
    return Tiles(
        sector=sec,
        ij=cand["ij"],
        geom=cand["geom"],
        use=use,
        dist=dist,
        gmina=cand["gmina"],
        whole=cand["whole"],
        module_ok=cand["module_ok"],
        shape=shape,
        capacity=cap,
        selected=selected,
        order=order,
        take=takes,
    )


def _class_quota(cap: NDArray[np.int64], klass: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """Parcels per sector class: the shares, with any shortfall moved to classes with room."""
    room = np.bincount(klass, weights=cap, minlength=len(CLASS_SHARE)).astype(np.int64)
    quota = np.minimum(np.floor(CLASS_SHARE * n).astype(np.int64), room)
    for _ in range(10):
        left = n - quota.sum()
        if left <= 0:
            break
        spare = room - quota
        w = CLASS_SHARE * (spare > 0)
        if w.sum() == 0:
            break
        add = np.minimum(np.ceil(left * w / w.sum()).astype(np.int64), spare)
        quota += add
    over = quota.sum() - n
    while over > 0:  # trim the rounding excess from the largest quotas
        c = int(np.argmax(quota))
        cut = min(over, quota[c])
        quota[c] -= cut
        over -= cut
    return quota


def lattice_roads(sectors: Sectors, tiles: Tiles, env: Environment) -> gpd.GeoDataFrame:
    """Access streets between the settled tiles of each sector, tied to the sector edges.

    Within a sector the streets run along the lattice gaps around and between the
    selected tiles; the street nearest the sector focus in each direction carries on to
    the sector edge (a local road) so every settlement joins the network.
    """
    sel = tiles.order
    sec = tiles.sector[sel]
    ij = tiles.ij[sel]
    us, inv = np.unique(sec, return_inverse=True)
    lo = np.full((len(us), 2), np.iinfo(np.int64).max)
    hi = np.full((len(us), 2), np.iinfo(np.int64).min)
    np.minimum.at(lo, inv, ij)
    np.maximum.at(hi, inv, ij)
    pitch = sectors.pitch[us]
    c, s = np.cos(sectors.angle[us]), np.sin(sectors.angle[us])
    rel = sectors.focus[us] - sectors.centre[us]
    focus_local = np.column_stack([rel[:, 0] * c + rel[:, 1] * s, -rel[:, 0] * s + rel[:, 1] * c])

    geoms, kinds = [], []
    for axis in (0, 1):  # 0: lines of constant x (running along y); 1: constant y
        other = 1 - axis
        n_lines = hi[:, axis] - lo[:, axis] + 2
        owner = np.repeat(np.arange(len(us)), n_lines)
        step = np.arange(len(owner)) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
        pos = (lo[owner, axis] - 0.5 + step) * pitch[owner, axis]
        a = (lo[owner, other] - 0.5) * pitch[owner, other] - 3.0
        b = (hi[owner, other] + 0.5) * pitch[owner, other] + 3.0
        # the line nearest the focus runs on to the sector edges
        gap = np.abs(pos - focus_local[owner, axis])
        first = np.cumsum(n_lines) - n_lines
        order = np.lexsort((gap, owner))  # per sector, nearest line first
        best = order[first]
        connector = np.zeros(len(owner), dtype=bool)
        connector[best] = True
        a = np.where(connector, -1.6 * SECTOR_M, a)
        b = np.where(connector, 1.6 * SECTOR_M, b)
        if axis == 0:
            xs, ys = np.column_stack([pos, pos]), np.column_stack([a, b])
        else:
            xs, ys = np.column_stack([a, b]), np.column_stack([pos, pos])
        geoms.append(shapely.linestrings(sectors.to_world(us[owner][:, None], xs, ys)))
        kinds.append(np.where(connector, "L", "D"))
    lines = np.concatenate(geoms)
    kind = np.concatenate(kinds)
    owner_sector = np.concatenate([np.repeat(us, hi[:, a] - lo[:, a] + 2) for a in (0, 1)])
    lines = shapely.intersection(lines, shapely.buffer(sectors.quads[owner_sector], 3.0))
    water = env.water_union
    wet = shapely.intersects(water, lines)
    lines[wet] = shapely.difference(lines[wet], water)
    parts, idx = explode_lines(lines)
    kind = kind[idx]
    city = sectors.klass[owner_sector[idx]] <= CITY_OUTER
    surface = np.where(
        (kind == "D") & ~city,
        np.where(np.arange(len(kind)) % 3 == 0, "grunt naturalny", "tłuczniowa"),
        "bitumiczna",
    )
    return gpd.GeoDataFrame(
        {
            "X_KOD": "SKDR03",
            "KLASADROGI": kind,
            "KATZARZADZANIA": np.where(kind == "L", "G", "Z"),
            "NUMERDROGI": None,
            "MATERIALNAWIERZCHNI": surface,
        },
        geometry=parts,
        crs=WORK_CRS,
    )


def tile_footprints(sectors: Sectors, tiles: Tiles, idx: NDArray[np.intp]) -> NDArray[np.object_]:
    """Land a tile really covers: the whole rectangle, or its usable blocks and inner streets.

    A partly usable tile is the union of a 5 x 5 grid of cells (3 blocks and 2 streets
    per side) built from one set of break points, so its outline shares exact vertices
    with the tile rectangle and with neighbouring street strips.
    """
    out = tiles.geom[idx].copy()
    part = idx[~tiles.whole[idx]]
    if not len(part):
        return out
    sec = tiles.sector[part]
    size, pitch, mod = sectors.tile_size[sec], sectors.pitch[sec], sectors.module[sec]
    gi = sectors.gap_in[sec]
    centre = tiles.ij[part] * pitch
    breaks = []
    for ax in (0, 1):
        lo = centre[:, ax] - size[:, ax] / 2
        step = mod[:, ax] + gi
        breaks.append(np.column_stack([
            lo, lo + mod[:, ax], lo + step, lo + step + mod[:, ax], lo + 2 * step,
            centre[:, ax] + size[:, ax] / 2,
        ]))  # fmt: skip
    ok = tiles.module_ok[part].reshape(-1, MODULES, MODULES)  # [tile, a (x), b (y)]
    cell = np.zeros((len(part), 5, 5), dtype=bool)
    cell[:, ::2, ::2] = ok
    cell[:, 1::2, ::2] = ok[:, :-1, :] & ok[:, 1:, :]
    cell[:, ::2, 1::2] = ok[:, :, :-1] & ok[:, :, 1:]
    cell[:, 1::2, 1::2] = ok[:, :-1, :-1] & ok[:, 1:, :-1] & ok[:, :-1, 1:] & ok[:, 1:, 1:]
    t, a, b = np.nonzero(cell)
    bx, by = breaks
    rects = _rects(sectors, sec[t], bx[t, a], by[t, b], bx[t, a + 1], by[t, b + 1])
    grid = np.full((len(part), 25), None, dtype=object)
    grid[t, a * 5 + b] = rects
    merged = shapely.coverage_union_all(grid, axis=1)
    # drop the (rotated, so only nearly) collinear break points left on straight edges
    out[~tiles.whole[idx]] = shapely.simplify(merged, 1e-6)
    return out
