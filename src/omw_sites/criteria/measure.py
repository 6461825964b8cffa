"""Measure every site: planning, access, utilities, constraints and terrain."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from omw_sites.config import CORE_CENTRE_2180, HV_CORRIDOR_M
from omw_sites.criteria.geometry import (
    class_shares,
    largest_overlap,
    nearest_distance,
    overlap_pairs,
    overlap_share,
    point_in_polygon,
)
from omw_sites.criteria.network import (
    access_points,
    build_graph,
    node_times,
    site_times,
    snap_points,
)
from omw_sites.criteria.terrain import zonal_slope
from omw_sites.etl.ingest import RawData
from omw_sites.layers import NETWORKS


def measure_sites(sites: gpd.GeoDataFrame, raw: RawData) -> gpd.GeoDataFrame:
    """Add every criterion column of ``layers.SITE_COLUMNS`` to ``sites``.

    Distances are straight-line metres from the site's edge (0 = on site); shares are
    0..1 of the site's area; slope in percent. All spatial queries use STRtrees.
    """
    out = sites.copy()
    geoms = out.geometry.to_numpy()
    areas = shapely.area(geoms)
    _gmina(out, raw)
    _planning(out, geoms, areas, raw)
    _access(out, geoms, raw)
    _network_times(out, geoms, raw)
    _utilities(out, geoms, raw)
    _constraints(out, geoms, areas, raw)
    _shape(out, geoms, areas)
    _plan_ogolny(out, raw)
    if raw.dem_path is not None:
        mean, mx = zonal_slope(raw.dem_path, geoms)
        out["slope_mean_pct"] = np.round(mean, 2)
        out["slope_max_pct"] = np.round(mx, 2)
    else:
        out["slope_mean_pct"] = np.nan
        out["slope_max_pct"] = np.nan
    for col in out.columns:
        if col.endswith("_share"):
            out[col] = np.round(out[col].astype(float), 4)
        elif col.startswith("dist_"):
            out[col] = np.round(out[col].astype(float), 1)
    out["area_ha"] = np.round(out["area_ha"], 4)
    return out


def _gmina(out: gpd.GeoDataFrame, raw: RawData) -> None:
    """Gmina name and TERYT: from the parcel ID, or by location where the ID's unit is not
    a gmina of the boundary layer (e.g. Warsaw's districts 146501_8…146518_8)."""
    gminy = raw["gminy"]
    names = dict(zip(gminy["teryt"], gminy["name"], strict=True))
    name = out["teryt"].map(names)
    unknown = name.isna().to_numpy()
    if unknown.any():
        pts = shapely.point_on_surface(out.geometry.to_numpy()[unknown])
        gi = point_in_polygon(pts, gminy)
        hit = gi >= 0
        idx = np.flatnonzero(unknown)[hit]
        name.iloc[idx] = gminy["name"].to_numpy()[gi[hit]]
        out.iloc[idx, out.columns.get_loc("teryt")] = gminy["teryt"].to_numpy()[gi[hit]]
    out["gmina"] = name.fillna("").to_numpy()


def _planning(out, geoms, areas, raw: RawData) -> None:
    zoning = raw["zoning"]
    pairs = overlap_pairs(geoms, areas, zoning.geometry.to_numpy())
    zi, zshare = largest_overlap(geoms, areas, zoning, pairs)
    has = zi >= 0
    pick = np.maximum(zi, 0)
    out["zoning_symbol"] = np.where(has, zoning["symbol_raw"].to_numpy()[pick], "")
    out["zoning_class"] = np.where(has, zoning["classes"].to_numpy()[pick], "")
    out["zoning_share"] = zshare
    out["zoning_classes"] = class_shares(geoms, areas, zoning, "classes", pairs)
    out["zoning_plan"] = np.where(has, zoning["plan_name"].to_numpy()[pick], "")
    out["zoning_adopted"] = np.where(has, zoning["adopted"].to_numpy()[pick], "")
    plan = raw.get("plan_zones")
    if plan is not None and len(plan):
        pi, _ = largest_overlap(geoms, areas, plan)
        out["plan_zone"] = np.where(pi >= 0, plan["symbol"].to_numpy()[np.maximum(pi, 0)], "")
    else:
        out["plan_zone"] = ""
    out["planning_instrument"] = np.where(
        has, "mpzp", np.where(out["plan_zone"].to_numpy() != "", "plan_ogolny", "none")
    )


def _access(out, geoms, raw: RawData) -> None:
    junctions = raw["junctions"]
    d, i = nearest_distance(geoms, junctions.geometry.to_numpy())
    out["dist_junction_m"] = d
    label = (junctions["road"] + " " + junctions["name"]).to_numpy()
    out["junction_name"] = np.where(i >= 0, label[np.maximum(i, 0)], "")
    centre = shapely.Point(*CORE_CENTRE_2180)
    out["dist_centre_m"] = shapely.distance(geoms, centre)
    stations = raw["stations"]
    for col, kind in (("dist_station_m", "passenger"), ("dist_rail_freight_m", "freight")):
        pts = stations.geometry.to_numpy()[stations["kind"].to_numpy() == kind]
        out[col], _ = nearest_distance(geoms, pts)
    out["dist_airport_m"], _ = nearest_distance(geoms, raw["airports"].geometry.to_numpy())


def _network_times(out, geoms, raw: RawData) -> None:
    """Travel minutes on the road network (free-flow speeds per road class)."""
    graph = build_graph(raw["roads"], raw["junctions"])
    access = access_points(graph, geoms)
    out["access_leg_m"] = access.leg_m
    stations = raw["stations"]
    kind = stations["kind"].to_numpy()
    targets = {
        "time_junction_min": raw["junctions"].geometry.to_numpy(),
        "time_centre_min": np.array([shapely.Point(*CORE_CENTRE_2180)]),
        "time_airport_min": raw["airports"].geometry.to_numpy(),
        "time_rail_freight_min": stations.geometry.to_numpy()[kind == "freight"],
        "time_station_min": stations.geometry.to_numpy()[kind == "passenger"],
    }
    for col, pts in targets.items():
        if len(pts) == 0:
            out[col] = np.inf
            continue
        times = node_times(graph, snap_points(graph, pts))
        out[col] = np.round(site_times(graph, access, times), 2)


def _utilities(out, geoms, raw: RawData) -> None:
    """Per network: on site, distance to the nearest existing and planned line; capacity."""
    util = raw["utilities"]
    existing = util["status"].to_numpy() == "existing"
    network = util["network"].to_numpy()
    lines = util.geometry.to_numpy()
    for name in NETWORKS.values():
        this = network == name
        d, i = nearest_distance(geoms, lines[existing & this])
        out[f"dist_{name}_m"] = d
        out[f"{name}_on_site"] = d == 0.0
        out[f"dist_{name}_planned_m"], _ = nearest_distance(geoms, lines[~existing & this])
        if name in ("water", "sewer", "gas", "heat"):
            diam = util["diameter_mm"].to_numpy(dtype=float)[existing & this]
            out[f"{name}_diameter_mm"] = np.where(i >= 0, diam[np.maximum(i, 0)], np.nan)
        if name == "power":
            volt = util["voltage"].to_numpy()[existing & this]
            out["power_voltage"] = np.where(i >= 0, volt[np.maximum(i, 0)], "")
    subs = raw.get("substations")
    if subs is not None and len(subs):
        d, si = nearest_distance(geoms, subs.geometry.to_numpy())
        cap = subs["capacity_mw"].to_numpy(dtype=float)
        out["power_capacity_mw"] = np.where(si >= 0, cap[np.maximum(si, 0)], np.nan)
        out["dist_substation_m"] = d
    else:
        out["power_capacity_mw"] = np.nan
        out["dist_substation_m"] = np.inf


def _hv_lines(raw: RawData) -> np.ndarray:
    """High-voltage (≥ 110 kV) overhead lines: BDOT10k SULN and GESUT power lines w/ww."""
    parts = []
    pl = raw.get("power_lines")
    if pl is not None and len(pl):
        kv_col = next((c for c in ("voltage_kv", "NAPIECIE") if c in pl), None)
        if kv_col is not None:
            kv = pd.to_numeric(pl[kv_col], errors="coerce").to_numpy()
            parts.append(pl.geometry.to_numpy()[kv >= 110])
    util = raw["utilities"]
    hv = (util["network"].to_numpy() == "power") & np.isin(util["voltage"].to_numpy(), ("w", "ww"))
    parts.append(util.geometry.to_numpy()[hv & (util["status"].to_numpy() == "existing")])
    return np.concatenate(parts) if parts else np.array([], dtype=object)


def _constraints(out, geoms, areas, raw: RawData) -> None:
    """Flood, Natura 2000, forest, HV corridors, and what stays buildable after them."""
    flood = raw["flood"].geometry.to_numpy()
    natura = raw["natura2000"].geometry.to_numpy()
    forest_layer = raw.get("forest")
    forest = forest_layer.geometry.to_numpy() if forest_layer is not None else np.array([])
    water_layer = raw.get("water")
    water = water_layer.geometry.to_numpy() if water_layer is not None else np.array([])
    hv = _hv_lines(raw)
    corridor = shapely.buffer(hv, HV_CORRIDOR_M) if len(hv) else np.array([], dtype=object)
    out["flood_share"] = overlap_share(geoms, areas, flood)
    out["natura_share"] = overlap_share(geoms, areas, natura)
    out["forest_share"] = overlap_share(geoms, areas, forest)
    out["dist_hv_line_m"], _ = nearest_distance(geoms, hv)
    out["hv_corridor_share"] = overlap_share(geoms, areas, corridor)
    blocked = np.concatenate([a for a in (flood, natura, forest, water, corridor) if len(a)])
    out["buildable_share"] = 1.0 - overlap_share(geoms, areas, blocked)


def _shape(out, geoms, areas) -> None:
    """Compactness (Polsby–Popper 4πA/P², 1 = circle) and usable width (m)."""
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["compactness"] = np.round(
            np.where(perimeter > 0, 4 * np.pi * areas / perimeter**2, 0.0), 3
        )
    # the widest circle that fits: a building footprint's limiting dimension
    mic = shapely.maximum_inscribed_circle(geoms, tolerance=1.0)
    out["usable_width_m"] = np.round(2 * shapely.length(mic), 1)


def _plan_ogolny(out, raw: RawData) -> None:
    """Whether the site's gmina has adopted a plan ogólny (required from 1 July 2026)."""
    plan = raw.get("plan_zones")
    covered = set(plan["teryt"]) if plan is not None and "teryt" in plan else set()
    out["no_plan_ogolny"] = ~out["teryt"].isin(covered).to_numpy()
