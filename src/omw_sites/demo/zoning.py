"""Local plans (MPZP designations) and plan ogólny zones (APP StrefaPlanistyczna)."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from omw_sites.demo._common import explode_polygons, pieces, to_multipolygons
from omw_sites.demo.geography import GMINY, Geography
from omw_sites.demo.parcels import Parcels
from omw_sites.demo.settlement import (
    AGRICULTURE,
    CITY_OUTER,
    GREEN,
    INDUSTRIAL,
    INDUSTRY,
    RESIDENTIAL,
    SERVICES,
    TOWN,
    URBAN,
    WOODLAND,
    Sectors,
    Tiles,
    tile_footprints,
)
from omw_sites.demo.transport import Backbone
from omw_sites.layers import WORK_CRS

PLAN_SHARE = 0.6  # share of the parcels under a local plan
# likelihood of a local plan per sector class (city, outer city, industrial, town, rural, forest)
PLAN_BIAS = np.array([1.5, 1.3, 2.2, 1.2, 0.6, 0.4])

# MPZP designations per land use: (symbols, odds); fields near industry/towns are zoned
# for development already (the investment land the ranking looks for)
DESIGNATIONS = {
    RESIDENTIAL: (("MN", "MN/U"), (0.75, 0.25)),
    URBAN: (("MW", "MW/U", "U"), (0.45, 0.3, 0.25)),
    SERVICES: (("U", "U/P", "US"), (0.7, 0.15, 0.15)),
    INDUSTRY: (("P/U", "P", "U/P"), (0.45, 0.35, 0.2)),
    AGRICULTURE: (("R", "RM"), (0.85, 0.15)),
    WOODLAND: (("ZL",), (1.0,)),
    GREEN: (("ZP",), (1.0,)),
}
FIELDS_ZONED = {INDUSTRIAL: (("P/U", "P", "U/P"), 0.55), TOWN: (("MN",), 0.35),
                CITY_OUTER: (("MN", "U"), 0.4)}  # fmt: skip

POG_GMINY = ("1418043", "1418032", "1421052", "1421042", "1432072")
POG_DATES = ("2025-12-18", "2026-03-26", "2026-05-28", "2026-06-18", "2026-06-25")
ZONE_NAMES = {
    "SW": "strefa wielofunkcyjna z zabudową mieszkaniową wielorodzinną",
    "SJ": "strefa wielofunkcyjna z zabudową mieszkaniową jednorodzinną",
    "SZ": "strefa wielofunkcyjna z zabudową zagrodową",
    "SU": "strefa usługowa",
    "SH": "strefa handlu wielkopowierzchniowego",
    "SP": "strefa gospodarcza",
    "SR": "strefa produkcji rolniczej",
    "SI": "strefa infrastrukturalna",
    "SN": "strefa zieleni i rekreacji",
    "SC": "strefa cmentarzy",
    "SO": "strefa otwarta",
    "SK": "strefa komunikacyjna",
}
ZONE_PROFILES = {
    "SW": "MW, U, K, ZP, ZD, I",
    "SJ": "MN, U, K, ZP, ZD, I",
    "SZ": "RZM, MN, U, K, ZP, ZD, I",
    "SU": "U, K, ZP, ZD, I",
    "SH": "UHD, U, K, ZP, I",
    "SP": "P, K, ZP, ZD, I",
    "SR": "RZP, RZW, K, I",
    "SI": "I, K, ZD",
    "SN": "ZP, ZD, ZN, US, W",
    "SC": "C, ZP",
    "SO": "RN, L, W, ZN",
    "SK": "KDA, KDS, KDG, KK, I",
}
# intensity, building cover %, height m, biologically active %: (base, spread)
ZONE_PARAMS = {
    "SW": ((1.6, 0.4), (40, 8), (16, 4), (30, 5)),
    "SJ": ((0.6, 0.2), (30, 5), (10, 2), (45, 8)),
    "SZ": ((0.4, 0.1), (25, 5), (9, 1), (55, 8)),
    "SU": ((1.2, 0.4), (45, 8), (14, 4), (25, 5)),
    "SH": ((0.9, 0.2), (55, 8), (14, 3), (20, 4)),
    "SP": ((1.5, 0.5), (60, 8), (20, 5), (20, 4)),
    "SR": ((0.3, 0.1), (20, 5), (10, 2), (60, 8)),
}
USE_TO_ZONE = {RESIDENTIAL: "SJ", URBAN: "SW", SERVICES: "SU", INDUSTRY: "SP",
               AGRICULTURE: "SR", WOODLAND: "SN", GREEN: "SN"}  # fmt: skip


def build_mpzp(
    rng: np.random.Generator,
    sectors: Sectors,
    tiles: Tiles,
    parcels: Parcels,
    geo: Geography,
) -> gpd.GeoDataFrame:
    """MPZP designations (layer ``przeznaczenie``) covering about 60 % of the parcels.

    A plan covers the settled tiles of one sector within one gmina and the free tiles next
    to them; each tile is one designation (``1MN``, ``2P/U`` …) and the streets between
    them one ``KDD`` designation.
    """
    settled = tiles.take > 0
    group_key = tiles.sector.astype(np.int64) * 100 + tiles.gmina
    g_keys, g_of = np.unique(group_key, return_inverse=True)
    g_parcels = np.bincount(g_of, weights=tiles.take, minlength=len(g_keys))
    g_class = sectors.klass[g_keys // 100]
    key = rng.random(len(g_keys)) * PLAN_BIAS[g_class] * (g_parcels > 0)
    order = np.argsort(-key, kind="stable")
    cum = np.cumsum(g_parcels[order])
    n_plans = int(np.searchsorted(cum, PLAN_SHARE * cum[-1])) + 1
    planned = np.zeros(len(g_keys), dtype=bool)
    planned[order[:n_plans]] = True

    # tiles of a plan: the settled ones and free tiles up to 300 m beyond them
    reach = np.zeros(len(g_keys))
    np.maximum.at(reach, g_of[settled], tiles.dist[settled])
    in_plan = planned[g_of] & (settled | (tiles.dist <= reach[g_of] + 300.0))
    t_idx = np.flatnonzero(in_plan)
    plan_of = np.searchsorted(np.flatnonzero(planned), g_of[t_idx])
    t_idx = t_idx[np.lexsort((tiles.ij[t_idx, 1], tiles.ij[t_idx, 0], plan_of))]
    plan_of = np.searchsorted(np.flatnonzero(planned), g_of[t_idx])

    symbols = _designations(rng, tiles.use[t_idx], sectors.klass[tiles.sector[t_idx]])
    first = np.r_[0, np.flatnonzero(np.diff(plan_of)) + 1]
    number = np.arange(len(t_idx)) - np.repeat(first, np.diff(np.r_[first, len(t_idx)])) + 1
    n_per_plan = np.bincount(plan_of)

    # streets between the tiles of a plan; the few that stick out of the sector or the
    # gmina are clipped (only those: clipping re-computes vertices)
    strips, strip_plan = _street_strips(sectors, tiles, t_idx, plan_of)
    inset = shapely.buffer(sectors.quads, -12.0, join_style="mitre")
    s_sec = tiles.sector[t_idx[first]][strip_plan]
    s_area = geo.gminy.geometry.values[tiles.gmina[t_idx[first]][strip_plan]]
    out = ~(shapely.within(strips, inset[s_sec]) & shapely.within(strips, s_area))
    strips[out] = shapely.intersection(
        shapely.intersection(strips[out], inset[s_sec[out]]), s_area[out]
    )
    strips, part_of = explode_polygons(strips)
    strip_plan = strip_plan[part_of]
    kdd_plans = np.unique(strip_plan)
    kdd_geom = shapely.multipolygons(strips, indices=np.searchsorted(kdd_plans, strip_plan))
    kdd_number = n_per_plan[kdd_plans] + 1

    plan_gmina = tiles.gmina[t_idx[first]]
    teryt = np.array([g[0] for g in GMINY])[plan_gmina]
    # plan numbers run per gmina; the name comes from the obręb it lies in
    plan_no = np.zeros(len(first), dtype=np.int64)
    for g in np.unique(plan_gmina):
        sel = np.flatnonzero(plan_gmina == g)
        plan_no[sel] = np.cumsum(rng.integers(1, 5, len(sel)))
    plan_id = np.array([f"{t}_MPZP_{n:03d}" for t, n in zip(teryt, plan_no, strict=True)])
    area_name = _plan_area_names(parcels, tiles, t_idx[first])
    names = np.array(
        [f"Miejscowy plan zagospodarowania przestrzennego – {a}, {GMINY[g][1]}"
         for a, g in zip(area_name, plan_gmina, strict=True)]
    )  # fmt: skip
    dates = _dates(rng, len(first), dt.date(2004, 1, 1), dt.date(2026, 6, 30))

    geoms = np.concatenate([tile_footprints(sectors, tiles, t_idx), kdd_geom])
    bad = ~shapely.is_valid(geoms)
    geoms[bad] = shapely.make_valid(geoms[bad])
    plans = np.concatenate([plan_of, kdd_plans])
    symbol = np.concatenate(
        [np.char.add(number.astype(str), symbols), np.char.add(kdd_number.astype(str), "KDD")]
    )
    # a footprint that make_valid reduces to a line or a point (a sliver) makes no zone
    keep = np.zeros(len(geoms), dtype=bool)
    keep[explode_polygons(geoms)[1]] = True
    geoms, plans, symbol = geoms[keep], plans[keep], symbol[keep]
    order = np.lexsort((np.r_[number, kdd_number][keep], plans))
    frame = gpd.GeoDataFrame(
        {
            "PLAN_ID": plan_id[plans],
            "TERYT": teryt[plans],
            "NAZWA_PLANU": names[plans],
            "DATA_UCHWALENIA": dates[plans],
            "SYMBOL": symbol,
            **_mpzp_params(rng, symbol),
        },
        geometry=to_multipolygons(geoms),
        crs=WORK_CRS,
    )
    return frame.iloc[order].reset_index(drop=True)


# MPZP building parameters per designation class: height m, coverage %, intensity min,
# intensity max, biologically active %: (base, spread)
MPZP_PARAMS = {
    "P": ((18, 6), (60, 10), (0.2, 0.1), (1.6, 0.4), (15, 5)),
    "U": ((14, 4), (50, 10), (0.2, 0.1), (1.4, 0.4), (25, 5)),
    "MW": ((20, 6), (35, 5), (0.6, 0.2), (2.0, 0.5), (30, 5)),
    "MN": ((10, 2), (30, 5), (0.1, 0.05), (0.6, 0.2), (50, 10)),
}
MPZP_PARAM_COLUMNS = ("WYS_MAX", "POW_ZAB_MAX", "INTENS_MIN", "INTENS_MAX", "PBC_MIN")


def _mpzp_params(rng: np.random.Generator, symbol: NDArray[np.str_]) -> dict[str, NDArray]:
    """The plan's parameters as municipal layers often carry them: text with a decimal
    comma (``12,5``); none for streets, farmland and greenery."""
    letters = np.array([str(x).lstrip("0123456789").split("/")[0] for x in symbol])
    out = {c: np.full(len(symbol), None, dtype=object) for c in MPZP_PARAM_COLUMNS}
    for cls, params in MPZP_PARAMS.items():
        sel = letters == cls
        for col, (base, spread) in zip(MPZP_PARAM_COLUMNS, params, strict=True):
            v = np.round(np.maximum(base + spread * rng.uniform(-1, 1, int(sel.sum())), 0.05), 1)
            out[col][sel] = [f"{x:.1f}".replace(".", ",") for x in v]
    return out


def _designations(
    rng: np.random.Generator, use: NDArray[np.int64], klass: NDArray[np.int64]
) -> NDArray[np.str_]:
    out = np.empty(len(use), dtype=object)
    u = rng.random(len(use))
    for k, (symbols, odds) in DESIGNATIONS.items():
        sel = use == k
        pick = np.minimum(np.searchsorted(np.cumsum(odds), u[sel]), len(symbols) - 1)
        out[sel] = np.array(symbols)[pick]
    v, w = rng.random(len(use)), rng.random(len(use))
    for c, (symbols, share) in FIELDS_ZONED.items():
        sel = (use == AGRICULTURE) & (klass == c) & (v < share)
        out[sel] = np.array(symbols)[(w[sel] * len(symbols)).astype(int)]
    return out.astype(str)


def _street_strips(
    sectors: Sectors, tiles: Tiles, t_idx: NDArray[np.intp], plan_of: NDArray[np.intp]
) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """Street strips between neighbouring tiles of the same plan (east and north sides)."""
    sec = tiles.sector[t_idx]
    ij = tiles.ij[t_idx]
    code = (sec.astype(np.int64) * 10_000 + ij[:, 0] + 5000) * 10_000 + ij[:, 1] + 5000
    srt = np.argsort(code)
    size, pitch = sectors.tile_size[sec], sectors.pitch[sec]
    cx, cy = ij[:, 0] * pitch[:, 0], ij[:, 1] * pitch[:, 1]
    out_geoms, out_plan = [], []
    for di, dj in ((1, 0), (0, 1)):
        ncode = code + di * 10_000 + dj
        pos = np.clip(np.searchsorted(code[srt], ncode), 0, len(code) - 1)
        nb = srt[pos]
        ok = (code[nb] == ncode) & (plan_of[nb] == plan_of)
        if di:
            x0, x1 = cx + size[:, 0] / 2, cx + pitch[:, 0] - size[:, 0] / 2
            y0, y1 = cy - size[:, 1] / 2, cy + size[:, 1] / 2
        else:
            x0, x1 = cx - size[:, 0] / 2, cx + size[:, 0] / 2
            y0, y1 = cy + size[:, 1] / 2, cy + pitch[:, 1] - size[:, 1] / 2
        xs = np.stack([x0, x1, x1, x0, x0], axis=-1)[ok]
        ys = np.stack([y0, y0, y1, y1, y0], axis=-1)[ok]
        out_geoms.append(shapely.polygons(sectors.to_world(sec[ok][:, None], xs, ys)))
        out_plan.append(plan_of[ok])
    geoms, plan = np.concatenate(out_geoms), np.concatenate(out_plan)
    order = np.argsort(plan, kind="stable")
    return geoms[order], plan[order]


def _plan_area_names(parcels: Parcels, tiles: Tiles, first_tiles: NDArray[np.intp]) -> list[str]:
    """Obręb name of a parcel on each plan's first tile (or of the nearest settled one)."""
    obr = parcels.frame["NAZWA_OBREBU"].to_numpy()
    srt = np.argsort(parcels.tile, kind="stable")
    pos = np.clip(np.searchsorted(parcels.tile[srt], first_tiles), 0, len(srt) - 1)
    hit = parcels.tile[srt[pos]] == first_tiles
    out = obr[srt[pos]].astype(object)
    if not hit.all():  # plans whose first tile is still free: the nearest parcel's obręb
        probe = shapely.get_coordinates(shapely.centroid(tiles.geom[first_tiles[~hit]]))
        _, near = cKDTree(parcels.centroid).query(probe)
        out[~hit] = obr[near]
    return [str(x) for x in out]


def _dates(rng: np.random.Generator, n: int, start: dt.date, end: dt.date) -> NDArray[np.str_]:
    days = rng.integers(0, (end - start).days, n)
    return np.array([(start + dt.timedelta(days=int(d))).isoformat() for d in days])


def build_plan_zones(
    rng: np.random.Generator,
    tiles: Tiles,
    geo: Geography,
    backbone: Backbone,
) -> gpd.GeoDataFrame:
    """Plan ogólny zones (APP 2.0 ``StrefaPlanistyczna``) tiling five gminy, gap-free."""
    frames = []
    mw_lines = pieces(backbone.motorways.geometry.values)
    for teryt, date in zip(POG_GMINY, POG_DATES, strict=True):
        g = [x[0] for x in GMINY].index(teryt)
        poly = geo.gminy.geometry.values[g]
        n = max(12, int(poly.area / 2.5e6))
        xmin, ymin, xmax, ymax = poly.bounds
        cand = np.column_stack([rng.uniform(xmin, xmax, 40 * n), rng.uniform(ymin, ymax, 40 * n)])
        cand = cand[shapely.contains_xy(poly, cand[:, 0], cand[:, 1])][:n]
        cells = shapely.get_parts(
            shapely.voronoi_polygons(
                shapely.multipoints(cand), extend_to=poly.envelope.buffer(1000), ordered=True
            )
        )
        zones = shapely.intersection(cells, poly)
        zones = zones[~shapely.is_empty(zones) & (shapely.area(zones) > 0)]
        symbol = _zone_symbols(rng, zones, tiles, g, mw_lines)
        k = np.arange(1, len(zones) + 1)
        ozn = [f"{i}{s}" for i, s in zip(k, symbol, strict=True)]
        params = [_zone_params(rng, s) for s in symbol]
        frames.append(
            gpd.GeoDataFrame(
                {
                    "lokalnyId": [f"{teryt}-POG-{i:04d}" for i in k],
                    "oznaczenie": ozn,
                    "symbol": symbol,
                    "nazwa": [ZONE_NAMES[s] for s in symbol],
                    "profilPodstawowy": [ZONE_PROFILES[s] for s in symbol],
                    "maksNadziemnaIntensywnoscZabudowy": [p[0] for p in params],
                    "maksUdzialPowierzchniZabudowy": [p[1] for p in params],
                    "maksWysokoscZabudowy": [p[2] for p in params],
                    "minUdzialPowierzchniBiologicznieCzynnej": [p[3] for p in params],
                    "TERYT": teryt,
                    "obowiazujeOd": date,
                },
                geometry=to_multipolygons(zones),
                crs=WORK_CRS,
            )
        )
    return pd.concat(frames, ignore_index=True)


def _zone_symbols(
    rng: np.random.Generator,
    zones: NDArray[np.object_],
    tiles: Tiles,
    gmina: int,
    motorways: NDArray[np.object_],
) -> list[str]:
    """Zone symbol from the prevailing land use of the tiles inside it."""
    mine = np.flatnonzero(tiles.gmina == gmina)
    centres = shapely.centroid(tiles.geom[mine])
    z_idx, t_pos = shapely.STRtree(zones).query(centres, predicate="within")[::-1]
    votes = np.zeros((len(zones), 7))
    weight = np.where(tiles.take[mine[t_pos]] > 0, 3.0, 1.0)
    np.add.at(votes, (z_idx, tiles.use[mine[t_pos]]), weight)
    near_mw = np.zeros(len(zones), dtype=bool)
    hit, _ = shapely.STRtree(motorways).query(zones, predicate="dwithin", distance=500.0)
    near_mw[hit] = True
    u = rng.random(len(zones))
    out = []
    for z in range(len(zones)):
        if votes[z].sum() == 0:
            out.append("SK" if near_mw[z] and u[z] < 0.5 else "SO")
            continue
        s = USE_TO_ZONE[int(np.argmax(votes[z]))]
        if s == "SR" and near_mw[z] and u[z] < 0.6:
            s = "SP"
        elif s == "SR" and u[z] < 0.25:
            s = "SZ"
        elif s == "SU" and near_mw[z]:
            s = "SH"
        out.append(s)
    small = int(np.argmin(shapely.area(zones)))
    out[small] = "SC"
    free = [z for z in range(len(zones)) if out[z] in ("SO", "SR") and z != small]
    if free:
        out[free[0]] = "SI"
    return out


def _zone_params(rng: np.random.Generator, symbol: str) -> tuple[float | None, ...]:
    """The four required parameters (one decimal) of zones that need them, else None."""
    if symbol not in ZONE_PARAMS:
        return (None, None, None, None)
    return tuple(
        float(round(max(base + spread * rng.uniform(-1, 1), 0.1), 1))
        for base, spread in ZONE_PARAMS[symbol]
    )
