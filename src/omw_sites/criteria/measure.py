"""Measure every site: planning, access, utilities, constraints and terrain."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from omw_sites.config import CORE_CENTRE_2180
from omw_sites.criteria.geometry import (
    largest_overlap,
    nearest_distance,
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
    out["flood_share"] = overlap_share(geoms, areas, raw["flood"].geometry.to_numpy())
    out["natura_share"] = overlap_share(geoms, areas, raw["natura2000"].geometry.to_numpy())
    forest = raw.get("forest")
    out["forest_share"] = (
        overlap_share(geoms, areas, forest.geometry.to_numpy()) if forest is not None else 0.0
    )
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
    zi, zshare = largest_overlap(geoms, areas, zoning)
    has = zi >= 0
    pick = np.maximum(zi, 0)
    out["zoning_symbol"] = np.where(has, zoning["symbol_raw"].to_numpy()[pick], "")
    out["zoning_class"] = np.where(has, zoning["classes"].to_numpy()[pick], "")
    out["zoning_share"] = zshare
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
    util = raw["utilities"]
    existing = util["status"].to_numpy() == "existing"
    network = util["network"].to_numpy()
    lines = util.geometry.to_numpy()
    for name in NETWORKS.values():
        if name == "heat":  # heat is reported in later issues; not a skeleton criterion
            continue
        sel = lines[existing & (network == name)]
        out[f"dist_{name}_m"], _ = nearest_distance(geoms, sel)
    subs = raw.get("substations")
    if subs is not None and len(subs):
        _, si = nearest_distance(geoms, subs.geometry.to_numpy())
        cap = subs["capacity_mw"].to_numpy(dtype=float)
        out["power_capacity_mw"] = np.where(si >= 0, cap[np.maximum(si, 0)], np.nan)
    else:
        out["power_capacity_mw"] = np.nan
