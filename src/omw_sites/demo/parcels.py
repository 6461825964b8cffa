"""EGiB parcels: tiles cut into plots and strips, numbered, owned, with a few broken rings."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import Transformer

from omw_sites.demo.geography import GMINY, WARSAW, Geography
from omw_sites.demo.settlement import (
    AGRICULTURE,
    BLOCKED,
    GREEN,
    INDUSTRY,
    MODULES,
    RESIDENTIAL,
    SERVICES,
    URBAN,
    WOODLAND,
    Sectors,
    Tiles,
)

PARCEL_CRS = "EPSG:2178"  # PL-2000 zone 7, as Warsaw-area EGiB exports come
DEFECT_SHARE = 0.005

# ownership groups (grupy rejestrowe) and their odds per land use
GROUPS = np.array([1, 2, 4, 15, 7, 10, 8, 9])
GROUP_ODDS = {
    RESIDENTIAL: [0.01, 0.0, 0.04, 0.01, 0.84, 0.05, 0.03, 0.02],
    URBAN: [0.03, 0.04, 0.12, 0.05, 0.36, 0.28, 0.1, 0.02],
    SERVICES: [0.03, 0.03, 0.12, 0.04, 0.2, 0.55, 0.01, 0.02],
    INDUSTRY: [0.08, 0.08, 0.1, 0.04, 0.14, 0.56, 0.0, 0.0],
    AGRICULTURE: [0.04, 0.0, 0.03, 0.01, 0.88, 0.01, 0.01, 0.02],
    WOODLAND: [0.7, 0.0, 0.05, 0.0, 0.24, 0.0, 0.0, 0.01],
    GREEN: [0.05, 0.0, 0.8, 0.1, 0.05, 0.0, 0.0, 0.0],
}
# blocks whose parcels share one land-register book (one owner), per land use
SHARED_KW = np.array([0.12, 0.35, 0.3, 0.5, 0.08, 0.5, 1.0])
NO_KW = np.array([0.04, 0.02, 0.02, 0.02, 0.22, 0.15, 0.05])  # no land register at all
SUBDIVIDED = np.array([0.65, 0.5, 0.5, 0.7, 0.2, 0.3, 0.2])  # numbered "base/k"
TRAPEZOID = np.array([True, False, False, False, True, True, False])

# land-register courts (KW prefix) per gmina; Warsaw has several
COURTS = {
    "1432053": "WA1G", "1432063": "WA1G", "1432072": "WA1G", "1432013": "WA1G",
    "1408022": "WA1L", "1408011": "WA1L", "1408032": "WA1L",
    "1434022": "WA1W", "1434032": "WA1W", "1434011": "WA1W", "1434123": "WA1W",
    "1412021": "SI1M",
    "1417082": "WA1O", "1417011": "WA1O", "1417021": "WA1O",
    "1418023": "WA1I", "1418043": "WA1I", "1418032": "WA1I",
    "1421062": "WA1P", "1421042": "WA1P", "1421021": "WA1P", "1421052": "WA1P",
}  # fmt: skip
WARSAW_COURTS = ("WA1M", "WA2M", "WA3M", "WA4M", "WA5M", "WA6M")
AR_GMINY = ("1432013", "1421052", "1417082")  # gminy whose obręby keep map sheets (AR_n)

_STEMS = (
    "Iwiczna", "Zamienie", "Mysiadło", "Bobrowiec", "Jazgarzew", "Łazy", "Kosów", "Kajetany",
    "Sokołów", "Młochów", "Kanie", "Komorów", "Reguły", "Pęcice", "Sękocin", "Laszczki",
    "Falenty", "Dawidy", "Wypędy", "Macierzysz", "Umiastów", "Koczargi", "Topolin",
    "Borzęcin", "Zielonki", "Dziekanów", "Sadowa", "Kiełpin", "Chotomów", "Skierdy",
    "Izabelin", "Struga", "Duchnów", "Glinianka", "Majdan", "Duchnice", "Gołków", "Piaski",
    "Lipków", "Klaudyn", "Mościska", "Józefosław", "Julianów", "Wólka", "Rybie", "Janki",
    "Nowa Iwiczna", "Ustanów", "Kępa", "Zalesie", "Łoziska", "Żabieniec", "Wiśniewo",
    "Rembelszczyzna", "Michałów", "Grabów", "Szeligi", "Bronisze", "Święcice", "Pilaszków",
    "Rokitno", "Latchorzew", "Blizne", "Mokry Ług", "Stefanówka", "Czarnów", "Radość",
)  # fmt: skip
_PREFIXES = ("", "", "", "Nowe ", "Stare ", "Wola ", "Kolonia ")
_KW_VALUES = {c: v for v, c in enumerate("0123456789X")} | {
    c: 11 + i for i, c in enumerate("ABCDEFGHIJKLMNOPRSTUWYZ")
}


@dataclass(frozen=True)
class Parcels:
    """Parcels in EPSG:2178 with EGiB attributes, and what the other layers need of them."""

    frame: gpd.GeoDataFrame  # the dzialki layer (EPSG:2178)
    tile: NDArray[np.intp]  # tile of each parcel (index into ``Tiles``)
    area_m2: NDArray[np.float64]  # polygon area in EPSG:2180, m²
    centroid: NDArray[np.float64]  # (P, 2) EPSG:2180
    defects: dict[str, list[str]]  # kind -> parcel IDs


def build_parcels(
    rng: np.random.Generator, sectors: Sectors, tiles: Tiles, geo: Geography
) -> Parcels:
    """Cut the selected tiles into parcels and give them EGiB identities and owners."""
    t = tiles.order
    sec = tiles.sector[t]
    use = tiles.use[t]
    blocked = np.isin(use, BLOCKED)
    mask = tiles.module_ok[t] & blocked[:, None]
    mask[~blocked, 0] = True
    tpos, module = np.nonzero(mask)  # blocks, in tile order then block order
    bsec = sec[tpos]
    buse = use[tpos]
    shape = tiles.shape[t][tpos, np.where(blocked[tpos], module, 0)]
    nx, ny = shape[:, 0], shape[:, 1]

    # block rectangles in the lattice frame of their sector
    size = sectors.tile_size[bsec]
    pitch = sectors.pitch[bsec]
    mod = sectors.module[bsec]
    gi = sectors.gap_in[bsec]
    ij = tiles.ij[t][tpos]
    tx0 = ij[:, 0] * pitch[:, 0] - size[:, 0] / 2
    ty0 = ij[:, 1] * pitch[:, 1] - size[:, 1] / 2
    a, b = module // MODULES, module % MODULES
    is_b = blocked[tpos]
    x0 = np.where(is_b, tx0 + a * (mod[:, 0] + gi), tx0)
    y0 = np.where(is_b, ty0 + b * (mod[:, 1] + gi), ty0)
    x1 = np.where(is_b, x0 + mod[:, 0], tx0 + size[:, 0])
    y1 = np.where(is_b, y0 + mod[:, 1], ty0 + size[:, 1])

    # parcels per block, cut to what each tile gives
    per = nx * ny
    block_of = np.repeat(np.arange(len(per)), per)
    k = np.arange(len(block_of)) - np.repeat(np.cumsum(per) - per, per)
    tile_first = np.r_[0, np.flatnonzero(np.diff(tpos)) + 1]
    tile_start = np.repeat(tile_first, np.diff(np.r_[tile_first, len(tpos)]))
    per_before = np.cumsum(per) - per
    in_tile = per_before[block_of] - per_before[tile_start[block_of]] + k
    keep = in_tile < tiles.take[t][tpos[block_of]]
    block_of, k = block_of[keep], k[keep]
    col, row = k // ny[block_of], k % ny[block_of]

    # column edges (fractions across the block), bottom and top: strips may lean
    n_edges = nx + 1
    e_start = np.cumsum(n_edges) - n_edges
    col_block = np.repeat(np.arange(len(nx)), nx)
    col_pos = np.arange(len(col_block)) - np.repeat(np.cumsum(nx) - nx, nx)
    w_bottom = rng.uniform(0.7, 1.3, len(col_block))
    lean = TRAPEZOID[buse][col_block]
    w_top = np.where(lean, w_bottom * rng.uniform(0.8, 1.2, len(col_block)), w_bottom)
    eb = _edges(w_bottom, e_start[col_block] + 1 + col_pos, e_start, nx, n_edges.sum())
    et = _edges(w_top, e_start[col_block] + 1 + col_pos, e_start, nx, n_edges.sum())

    bx0, by0, bx1, by1 = x0[block_of], y0[block_of], x1[block_of], y1[block_of]
    ya = by0 + (by1 - by0) * row / ny[block_of]
    yb = by0 + (by1 - by0) * (row + 1) / ny[block_of]
    e0 = e_start[block_of] + col
    fa = (ya - by0) / (by1 - by0)
    fb = (yb - by0) / (by1 - by0)

    def x_at(edge: NDArray[np.intp], f: NDArray[np.float64]) -> NDArray[np.float64]:
        return bx0 + (bx1 - bx0) * (eb[edge] + (et[edge] - eb[edge]) * f)

    xs = np.stack([x_at(e0, fa), x_at(e0 + 1, fa), x_at(e0 + 1, fb), x_at(e0, fb)], axis=1)
    ys = np.stack([ya, ya, yb, yb], axis=1)
    corners = sectors.to_world(bsec[block_of][:, None], xs, ys)  # (P, 4, 2)
    n = len(corners)
    x, y = corners[..., 0], corners[..., 1]
    area = 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1))

    # reproject the corners, then build the rings once
    to_2178 = Transformer.from_crs("EPSG:2180", PARCEL_CRS, always_xy=True)
    px, py = to_2178.transform(x.ravel(), y.ravel())
    c2178 = np.stack([px, py], axis=-1).reshape(n, 4, 2)
    ring = np.concatenate([c2178, c2178[:, :1]], axis=1)

    # a few broken rings, as real exports have them
    n_def = int(round(n * DEFECT_SHARE))
    bad = rng.choice(n, size=n_def, replace=False) if n_def else np.zeros(0, dtype=np.intp)
    bowtie, dup = np.sort(bad[: n_def // 2]), np.sort(bad[n_def // 2 :])
    geoms = shapely.polygons(ring)
    if len(bowtie):
        geoms[bowtie] = shapely.polygons(ring[bowtie][:, [0, 2, 1, 3, 4]])
    if len(dup):
        geoms[dup] = shapely.polygons(ring[dup][:, [0, 1, 1, 2, 3, 4]])

    parcel_tile = t[tpos[block_of]]
    attrs = _attributes(rng, sectors, tiles, geo, parcel_tile, block_of, k, buse, area)
    frame = gpd.GeoDataFrame(attrs, geometry=geoms, crs=PARCEL_CRS)
    ids = frame["ID_DZIALKI"].to_numpy()
    return Parcels(
        frame=frame,
        tile=parcel_tile,
        area_m2=area,
        centroid=corners.mean(axis=1),
        defects={
            "bowtie": sorted(ids[bowtie].tolist()),
            "duplicate_vertex": sorted(ids[dup].tolist()),
        },
    )


def _edges(
    w: NDArray[np.float64],
    pos: NDArray[np.intp],
    e_start: NDArray[np.intp],
    nx: NDArray[np.int64],
    total: int,
) -> NDArray[np.float64]:
    """Edge fractions 0..1 of every block from column weights (one array for all blocks)."""
    full = np.zeros(total)
    full[pos] = w
    cs = np.cumsum(full)
    first = np.repeat(cs[e_start], nx + 1)
    last = np.repeat(cs[e_start + nx], nx + 1)
    out = (cs - first) / (last - first)
    out[e_start] = 0.0
    out[e_start + nx] = 1.0
    return out


def _attributes(
    rng: np.random.Generator,
    sectors: Sectors,
    tiles: Tiles,
    geo: Geography,
    ptile: NDArray[np.intp],
    pblock: NDArray[np.intp],
    k: NDArray[np.int64],
    buse: NDArray[np.int64],
    area: NDArray[np.float64],
) -> pd.DataFrame:
    """EGiB attributes: ID, numbers, obręb, gmina, registered area, owner group, KW."""
    n = len(ptile)
    gmina = tiles.gmina[ptile]
    teryt = np.array([g[0] for g in GMINY])
    names = np.array([g[1] for g in GMINY])
    use = tiles.use[ptile]

    # obręby: one per (gmina, sector), numbered within the gmina
    okey = gmina.astype(np.int64) * 100_000 + tiles.sector[ptile]
    ukey, obr_of = np.unique(okey, return_inverse=True)
    ugm = ukey // 100_000
    gap = rng.integers(1, 4, len(ukey))
    start = rng.integers(1, 30, len(GMINY))
    first_of = np.r_[0, np.flatnonzero(np.diff(ugm)) + 1]
    grp_start = np.repeat(first_of, np.diff(np.r_[first_of, len(ukey)]))
    cs = np.cumsum(gap)
    obr_num = cs - cs[grp_start] + start[ugm]
    obr_name = _obreb_names(rng, ugm, obr_num)

    # parcel numbers: blocks in lattice order within the obręb
    blk_first = np.r_[0, np.flatnonzero(np.diff(pblock)) + 1]
    b_id = pblock[blk_first]
    b_n = np.diff(np.r_[blk_first, n])
    b_obr = obr_of[blk_first]
    b_ij = tiles.ij[ptile[blk_first]]
    b_order = np.lexsort((b_id, b_ij[:, 1], b_ij[:, 0], b_obr))
    b_use = buse[b_id]
    b_sub = rng.random(len(b_id)) < SUBDIVIDED[b_use]
    uses = np.where(b_sub, 1, b_n)
    inc = uses[b_order] + rng.integers(0, 4, len(b_id))
    cs = np.cumsum(inc)
    o_sorted = b_obr[b_order]
    g_first = np.r_[0, np.flatnonzero(np.diff(o_sorted)) + 1]
    g_start = np.repeat(g_first, np.diff(np.r_[g_first, len(o_sorted)]))
    offset = rng.integers(0, 40, len(ukey))[o_sorted]
    base_sorted = cs - inc - (cs[g_start] - inc[g_start]) + 1 + offset
    base = np.empty_like(base_sorted)
    base[b_order] = base_sorted
    blk_of = np.repeat(np.arange(len(b_id)), b_n)
    kk = np.arange(n) - np.repeat(blk_first, b_n)
    lone = (b_n == 1) & b_sub
    sub_no = np.where(lone, rng.integers(1, 15, len(b_id)), 0)[blk_of] + kk + 1
    sub = b_sub[blk_of]
    num_main = np.where(sub, base[blk_of], base[blk_of] + kk).astype(str)
    number = np.where(sub, np.char.add(np.char.add(num_main, "/"), sub_no.astype(str)), num_main)

    tcode = teryt[gmina]
    unit = np.array([f"{c[:6]}_{c[6]}" for c in teryt])[gmina]  # WWPPGG_R
    obr_txt = np.char.zfill(obr_num[obr_of].astype(str), 4)
    ar = np.isin(tcode, AR_GMINY)
    sheet = 1 + (tiles.ij[ptile][:, 1] - tiles.ij[ptile][:, 1].min()) // 3
    ar_txt = np.where(ar, np.char.add(np.char.add("AR_", sheet.astype(str)), "."), "")
    ids = np.char.add(np.char.add(np.char.add(np.char.add(unit, "."), obr_txt), "."), ar_txt)
    ids = np.char.add(ids, number)

    # registered area: the legal figure drifts from the drawn polygon by up to ~3 %
    drift = np.clip(rng.normal(0.0, 0.01, n), -0.03, 0.03)
    pole = np.maximum(np.round(area / 10_000 * (1 + drift), 4), 0.0001)

    # owners and land-register books: shared across a block or one per parcel
    b_shared = rng.random(len(b_id)) < SHARED_KW[b_use]
    owner_unit = np.where(b_shared[blk_of], -1 - blk_of, np.arange(n))
    _, unit_of = np.unique(owner_unit, return_inverse=True)
    n_units = unit_of.max() + 1
    unit_use = np.zeros(n_units, dtype=np.int64)
    unit_use[unit_of] = use
    u = rng.random(n_units)
    odds = np.cumsum(np.array([GROUP_ODDS[x] for x in range(7)]), axis=1)
    grp_idx = np.minimum((u[:, None] > odds[unit_use]).sum(axis=1), len(GROUPS) - 1)
    grupa = GROUPS[grp_idx][unit_of].astype(np.int32)
    unit_gmina = np.zeros(n_units, dtype=np.int64)
    unit_gmina[unit_of] = gmina
    court_codes = np.array(sorted(set(COURTS.values()) | set(WARSAW_COURTS)))
    court_of_gmina = np.searchsorted(court_codes, [COURTS.get(c, "WA1M") for c in teryt])
    court = court_of_gmina[unit_gmina]
    warsaw = teryt[unit_gmina] == WARSAW
    court[warsaw] = np.searchsorted(court_codes, WARSAW_COURTS)[
        rng.integers(0, len(WARSAW_COURTS), warsaw.sum())
    ]
    kw_num = 10_000 + np.cumsum(rng.integers(1, 60, n_units))
    kw_num = kw_num[rng.permutation(n_units)]
    kw = _kw_numbers(court_codes, court, kw_num)
    kw = np.where(rng.random(n_units) < NO_KW[unit_use], np.array(None), kw.astype(object))[unit_of]

    return pd.DataFrame(
        {
            "ID_DZIALKI": ids.astype(object),
            "NUMER_DZIALKI": number.astype(object),
            "NUMER_OBREBU": obr_txt.astype(object),
            "NAZWA_OBREBU": obr_name[obr_of].astype(object),
            "NAZWA_GMINY": names[gmina].astype(object),
            "POLE_EWIDENCYJNE": pole,
            "GRUPA_REJESTROWA": grupa,
            "KW": kw,
        }
    )


def _obreb_names(
    rng: np.random.Generator, gmina: NDArray[np.int64], number: NDArray[np.int64]
) -> NDArray[np.str_]:
    """Obręb names: village names outside Warsaw, district codes (e.g. 1-05-04) inside it."""
    out = np.empty(len(gmina), dtype=object)
    stems = np.array([p + s for p in _PREFIXES for s in _STEMS if (p + s).strip()])
    for g in np.unique(gmina):
        sel = np.flatnonzero(gmina == g)
        if GMINY[g][0] == WARSAW:
            out[sel] = [f"{1 + (x // 200) % 9}-{(x // 20) % 20:02d}-{x % 20 + 1:02d}"
                        for x in number[sel]]  # fmt: skip
            continue
        pick = rng.choice(len(stems), size=len(sel), replace=len(sel) > len(stems))
        out[sel] = stems[pick]
        out[sel[0]] = GMINY[g][1]  # the seat's own obręb
    return out.astype(str)


def _kw_numbers(
    codes: NDArray[np.str_], court: NDArray[np.intp], number: NDArray[np.int64]
) -> NDArray[np.str_]:
    """Land-register numbers ``WA1M/00012345/6`` with the official check digit.

    The check digit is the sum of the 12 characters' values (digits as such, X = 10,
    A = 11 … Z = 33 skipping Q and V) weighted 1, 3, 7, 1, 3, 7, … modulo 10.
    """
    weights = np.array([1, 3, 7] * 4)
    court_val = np.array([sum(w * _KW_VALUES[ch] for w, ch in zip(weights[:4], c, strict=True))
                          for c in codes])  # fmt: skip
    d = (number[:, None] // 10 ** np.arange(7, -1, -1)) % 10
    check = (court_val[court] + (d * weights[4:]).sum(axis=1)) % 10
    digits = np.char.zfill(number.astype(str), 8)
    out = np.char.add(np.char.add(codes[court], "/"), digits)
    return np.char.add(np.char.add(out, "/"), check.astype(str))
