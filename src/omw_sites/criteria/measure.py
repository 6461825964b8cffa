"""Measure every site: planning, access, utilities, constraints and terrain.

Only parcels are certain to be there. A criterion whose layer is missing or empty is not
measured: NaN for numbers, NA for flags, "" for text — never ``inf``, never a made-up
best or worst. :class:`Coverage` records why, once per cause, for the run summary and
``run_info``; a site that cannot be measured where the others can (off the road
network, outside the terrain model) carries the reason in :data:`SITE_NO_DATA`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from omw_sites.config import CORE_CENTRE_2180, HV_CORRIDOR_M
from omw_sites.criteria.catchment import (
    LIMITS_MIN,
    NodePopulation,
    catchment,
    population_nodes,
    within_reach,
)
from omw_sites.criteria.geometry import (
    class_shares,
    largest_overlap,
    nearest_distance,
    overlap_pairs,
    overlap_share,
    point_in_polygon,
)
from omw_sites.criteria.land import buildings_on_site, land_use_shares, soil_shares
from omw_sites.criteria.network import (
    MAX_ACCESS_LEG_M,
    Access,
    RoadGraph,
    access_points,
    build_graph,
    node_times,
    site_times,
    snap_points,
)
from omw_sites.criteria.terrain import zonal_slope
from omw_sites.etl.ingest import RawData
from omw_sites.layers import NETWORKS, RAW_BY_KEY, SITE_NO_DATA, WORK_CRS

TIME_COLUMNS = (
    "time_junction_min",
    "time_centre_min",
    "time_airport_min",
    "time_rail_freight_min",
    "time_station_min",
)
BOOL_COLUMNS = (
    *(f"{net}_on_site" for net in NETWORKS.values()),
    "no_plan_ogolny",
    "brownfield",
)
NAMED_ACCESS = (
    "junction_road",
    "airport_name",
    "station_name",
    "rail_freight_name",
    "national_road",
    "voivodeship_road",
    "access_road_class",
)
TEXT_NO_DATA = (
    "gmina",
    "junction_name",
    "power_voltage",
    "zoning_symbol",
    "zoning_class",
    "plan_zone",
    *NAMED_ACCESS,
)
WORKFORCE_COLUMNS = ("population_30min", "workforce_30min", "population_45min", "workforce_45min")
# plan parameter column -> (the zoning layers' column, factor to the site column's unit)
PLAN_PARAMETERS = {
    "max_height_m": (("max_height_m", "max_height_m"), 1.0),
    "max_coverage_share": (("max_coverage_pct", "max_building_share_pct"), 0.01),
    "intensity_min": (("intensity_min", None), 1.0),
    "intensity_max": (("intensity_max", "max_intensity"), 1.0),
    "min_bio_active_share": (("min_bio_active_pct", "min_biologically_active_pct"), 0.01),
}
NETWORK_WORDS = {
    "water": "water mains",
    "sewer": "sewers",
    "power": "power lines",
    "gas": "gas pipes",
    "heat": "district-heating pipes",
    "telecom": "telecom lines",
}


@dataclass
class Coverage:
    """What this run could not measure, and why.

    ``not_measured`` maps a column to the reason it is empty for every site;
    ``partial`` a column to what it was computed without; ``site_counts`` a per-site
    reason (``"time_centre_min: not reachable on the road network"``) to the number of
    sites it applies to.
    """

    not_measured: dict[str, str] = field(default_factory=dict)
    partial: dict[str, str] = field(default_factory=dict)
    site_counts: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The run summary's lines: one per cause, naming the columns it leaves empty."""
        by_reason: dict[str, list[str]] = {}
        for col, why in self.not_measured.items():
            by_reason.setdefault(why, []).append(col)
        out = [f"{why}: {', '.join(cols)} not measured" for why, cols in by_reason.items()]
        out += [f"{col} computed without {what}" for col, what in self.partial.items()]
        out += [f"{n:,} site(s): {why}" for why, n in self.site_counts.items()]
        return out

    def record(self) -> dict[str, object]:
        """What ``run_info`` keeps of it."""
        return {
            "not_measured": dict(self.not_measured),
            "partial": dict(self.partial),
            "sites_not_measured": dict(self.site_counts),
        }


class _Measure:
    """The site table being filled, with the coverage record beside it."""

    def __init__(self, sites: gpd.GeoDataFrame, raw: RawData):
        self.out = sites.copy()
        self.raw = raw
        self.cov = Coverage()
        self.geoms = self.out.geometry.to_numpy()
        self.areas = shapely.area(self.geoms)
        self.site_gaps = np.full(len(self.out), "", dtype=object)
        # the road graph and the sites' entries to it, once built (``_network_times``)
        self.graph: RoadGraph | None = None
        self.access: Access | None = None
        self.zoning_pick: np.ndarray | None = None  # MPZP designation covering most
        self.plan_pick: np.ndarray | None = None  # plan ogólny zone covering most
        self.network: RoadNetwork  # set by ``measure``

    def absent(self, key: str, what: str) -> str:
        """Reason text for a missing layer: ``what`` and where it was looked for."""
        detail = self.raw.absent.get(key)
        if detail is None:
            spec = RAW_BY_KEY.get(key)
            detail = f"no {spec.path}" if spec else "not provided"
        return f"{what} ({detail})"

    def none(self, columns: list[str] | tuple[str, ...], reason: str) -> None:
        """Leave ``columns`` empty for every site, for ``reason`` (the first reason given
        for a column is the one kept)."""
        n = len(self.out)
        for col in columns:
            if col in BOOL_COLUMNS:
                self.out[col] = pd.array([pd.NA] * n, dtype="boolean")
            elif col in TEXT_NO_DATA or (col.startswith("zoning_") and col != "zoning_share"):
                self.out[col] = ""
            else:
                self.out[col] = np.nan
            self.cov.not_measured.setdefault(col, reason)

    def per_site(self, mask: np.ndarray, columns: list[str] | tuple[str, ...], why: str) -> None:
        """Record that ``columns`` are NaN for the sites of ``mask``, because ``why``."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        text = f"{', '.join(columns)}: {why}"
        self.cov.site_counts[text] = self.cov.site_counts.get(text, 0) + int(mask.sum())
        current = self.site_gaps[mask]
        self.site_gaps[mask] = np.where(current == "", text, current + "; " + text)


def measure(
    sites: gpd.GeoDataFrame, raw: RawData, network: RoadNetwork | None = None
) -> tuple[gpd.GeoDataFrame, Coverage]:
    """Every criterion column of ``layers.SITE_COLUMNS`` added to ``sites``, and what
    could not be measured.

    Distances are straight-line metres from the site's edge (0 = on site); shares are
    0..1 of the site's area; slope in percent. All spatial queries use STRtrees. The
    frame also holds :data:`SITE_NO_DATA` (per-site reasons, "" for most sites).
    ``network`` is the whole road network's answers (:func:`road_network`), built from
    ``raw`` when not given.
    """
    m = _Measure(sites, raw)
    m.network = network if network is not None else road_network(raw)
    _gmina(m)
    _planning(m)
    _access(m)
    _network_times(m)
    _workforce(m)
    _road_names(m)
    _utilities(m)
    _constraints(m)
    _shape(m.out, m.geoms, m.areas)
    _plan_ogolny(m)
    _plan_parameters(m)
    _land(m)
    _terrain(m)
    out = m.out
    for col in out.columns:
        if col.endswith("_share"):
            out[col] = np.round(out[col].astype(float), 4)
        elif col.startswith("dist_"):
            out[col] = np.round(out[col].astype(float), 1)
    out["area_ha"] = np.round(out["area_ha"], 4)
    for col in out.columns:  # a source value such as "inf" must not become a measurement
        if pd.api.types.is_float_dtype(out[col]):
            bad = np.isinf(out[col].to_numpy(dtype=float))
            if bad.any():
                out.loc[bad, col] = np.nan
                m.per_site(bad, [col], "not a finite number in the source data")
    out[SITE_NO_DATA] = m.site_gaps
    return out, m.cov


def measure_sites(sites: gpd.GeoDataFrame, raw: RawData) -> gpd.GeoDataFrame:
    """:func:`measure` without the coverage record."""
    return measure(sites, raw)[0]


def _gmina(m: _Measure) -> None:
    """Gmina name and TERYT: from the parcel ID, or by location where the ID's unit is not
    a gmina of the boundary layer (e.g. Warsaw's districts 146501_8…146518_8)."""
    out = m.out
    if not m.raw.has("gminy"):
        m.none(["gmina"], m.absent("gminy", "no gmina boundaries; TERYT from the parcel IDs"))
        return
    gminy = m.raw["gminy"]
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


ZONING_COLUMNS = (
    "zoning_symbol",
    "zoning_class",
    "zoning_share",
    "zoning_classes",
    "zoning_plan",
    "zoning_adopted",
)


def _planning(m: _Measure) -> None:
    out, geoms, areas = m.out, m.geoms, m.areas
    has_zoning = m.raw.has("zoning")
    if has_zoning:
        zoning = m.raw["zoning"]
        pairs = overlap_pairs(geoms, areas, zoning.geometry.to_numpy())
        zi, zshare = largest_overlap(geoms, areas, zoning, pairs)
        has = zi >= 0
        out["zoning_symbol"] = _pick(zoning["symbol_raw"], zi)
        out["zoning_class"] = _pick(zoning["classes"], zi)
        out["zoning_share"] = zshare
        out["zoning_classes"] = class_shares(geoms, areas, zoning, "classes", pairs)
        out["zoning_plan"] = _pick(zoning["plan_name"], zi)
        out["zoning_adopted"] = _pick(zoning["adopted"], zi)
        m.zoning_pick = zi
    else:
        has = np.zeros(len(out), dtype=bool)
        m.none(ZONING_COLUMNS, m.absent("zoning", "no MPZP zoning layer"))
    plan = m.raw.get("plan_zones")
    if m.raw.has("plan_zones") and plan is not None:
        pi, _ = largest_overlap(geoms, areas, plan)
        out["plan_zone"] = _pick(plan["symbol"], pi)
        m.plan_pick = pi
    else:
        m.none(["plan_zone"], m.absent("plan_zones", "no plan ogólny zones"))
    # "none": the zoning layer has no plan there; "unknown": there is no zoning layer
    fallback = "none" if has_zoning else "unknown"
    out["planning_instrument"] = np.where(
        has, "mpzp", np.where(out["plan_zone"].to_numpy() != "", "plan_ogolny", fallback)
    )


def _access(m: _Measure) -> None:
    out, geoms, raw = m.out, m.geoms, m.raw
    out["junction_name"] = ""
    if raw.has("junctions"):
        junctions = raw["junctions"]
        d, i = nearest_distance(geoms, junctions.geometry.to_numpy())
        out["dist_junction_m"] = d
        label = (junctions["road"] + " " + junctions["name"]).str.strip().to_numpy()
        out["junction_name"] = np.where(i >= 0, label[np.maximum(i, 0)], "")
        out["junction_road"] = _pick(junctions["road"].fillna("").astype(str).str.strip(), i)
    else:
        why = m.absent("junctions", "no motorway junctions")
        m.none(["dist_junction_m", "junction_name", "junction_road"], why)
    centre = shapely.Point(*CORE_CENTRE_2180)
    out["dist_centre_m"] = shapely.distance(geoms, centre)
    names = {"dist_station_m": "station_name", "dist_rail_freight_m": "rail_freight_name"}
    for col, pts, why in _station_targets(m):
        if pts is None:
            m.none([col, names[col]], why)
            continue
        out[col], i = nearest_distance(geoms, pts)
        stations = raw["stations"]
        kind = "freight" if "freight" in col else "passenger"
        label = stations.loc[stations["kind"].to_numpy() == kind, "name"]
        out[names[col]] = _pick(label.fillna("").astype(str).str.strip(), i)
    if raw.has("airports"):
        airports = raw["airports"]
        out["dist_airport_m"], i = nearest_distance(geoms, airports.geometry.to_numpy())
        iata = airports["iata"].fillna("").astype(str).str.strip()
        label = airports["name"].fillna("").astype(str).str.strip()
        label = label.where(iata == "", label + " (" + iata + ")")
        out["airport_name"] = _pick(label, i)
    else:
        m.none(["dist_airport_m", "airport_name"], m.absent("airports", "no airports"))


def _pick(values: pd.Series, i: np.ndarray) -> np.ndarray:
    """``values`` at the indices ``i`` (positions), "" where ``i`` is -1."""
    v = values.to_numpy(dtype=object)
    if not len(v):
        return np.full(len(i), "", dtype=object)
    return np.where(i >= 0, v[np.maximum(i, 0)], "")


def _take(values: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Numbers ``values`` at the indices ``i``, NaN where ``i`` is -1."""
    if not len(values):
        return np.full(len(i), np.nan)
    return np.where(i >= 0, values[np.maximum(i, 0)], np.nan)


def _station_targets(m: _Measure):
    """(distance column, station points or None, reason when None) per station kind."""
    if not m.raw.has("stations"):
        why = m.absent("stations", "no rail stations")
        return [("dist_station_m", None, why), ("dist_rail_freight_m", None, why)]
    stations = m.raw["stations"]
    kind = stations["kind"].to_numpy()
    pts = stations.geometry.to_numpy()
    out = []
    for col, k, words in (
        ("dist_station_m", "passenger", "no passenger stations in the stations layer"),
        ("dist_rail_freight_m", "freight", "no rail freight terminals in the stations layer"),
    ):
        sel = pts[kind == k]
        out.append((col, sel if len(sel) else None, words))
    return out


@dataclass
class RoadNetwork:
    """What the travel-time and catchment criteria need of the whole road network: the
    graph, the minutes from every node to each time column's destinations, the census
    grid's people on its nodes, and each road segment's class and width. Built once per
    run (:func:`road_network`); a partitioned run shares it with every partition, which
    then needs only its own sites."""

    graph: RoadGraph | None
    why: str  # why there is no graph ("" when there is one)
    node_minutes: dict[str, np.ndarray]  # time column -> minutes per node
    not_reached: dict[str, str]  # time column -> why it has no destinations
    people: NodePopulation | None
    people_why: str  # why there are no people on the graph ("" when there are)
    road_class: np.ndarray  # per segment (row of the roads layer)
    road_width: np.ndarray | None  # per segment, m; None when the data gives none

    def reach(self, bounds: tuple[float, float, float, float]) -> RoadNetwork:
        """The part of the network that sites lying within ``bounds`` use, for the same
        answers as the whole: the road segments they may enter from (within
        ``MAX_ACCESS_LEG_M``), and the graph within the catchment's longest limit of
        those segments' ends, with its minutes and people. A partition of a country
        needs its surroundings, not the country's graph."""
        if self.graph is None:
            return self
        graph = self.graph
        x0, y0, x1, y1 = bounds
        pad = MAX_ACCESS_LEG_M + 1.0
        segments = graph.local_segments((x0 - pad, y0 - pad, x1 + pad, y1 + pad))
        ends = np.unique(np.concatenate([graph.edge_u[segments], graph.edge_v[segments]]))
        nodes = within_reach(graph, ends, max(LIMITS_MIN))
        index = np.cumsum(nodes) - 1
        people = self.people
        if people is not None:
            on = nodes[people.node]
            people = replace(people, node=index[people.node[on]], values=people.values[on])
        return replace(
            self,
            graph=graph.subgraph(nodes, segments),
            node_minutes={c: t[nodes] for c, t in self.node_minutes.items()},
            people=people,
            road_class=self.road_class[segments],
            road_width=None if self.road_width is None else self.road_width[segments],
        )


def no_road_network(why: str) -> RoadNetwork:
    """A network without roads: the criteria measured on a network are left empty, for
    ``why``."""
    return RoadNetwork(None, why, {}, {}, None, "", np.array([], dtype=object), None)


def road_network(raw: RawData) -> RoadNetwork:
    """The road network of ``raw`` with every per-node answer the criteria need."""
    m = _Measure(gpd.GeoDataFrame(geometry=[], crs=WORK_CRS), raw)
    none = no_road_network("")
    if not raw.has("roads"):
        none.why = m.absent("roads", "no road network")
        return none
    graph = build_graph(raw["roads"], raw.get("junctions"))
    if graph.motorway.all():
        none.why = "no road network: the road layer holds only motorways and expressways"
        return none
    # time_* -> (its destinations, why they are missing); the junction and station
    # reasons are those of the distance columns
    targets: dict[str, tuple[np.ndarray | None, str]] = {
        "time_centre_min": (np.array([shapely.Point(*CORE_CENTRE_2180)]), ""),
    }
    if raw.has("junctions"):
        targets["time_junction_min"] = (raw["junctions"].geometry.to_numpy(), "")
    else:
        targets["time_junction_min"] = (None, m.absent("junctions", "no motorway junctions"))
    if raw.has("airports"):
        targets["time_airport_min"] = (raw["airports"].geometry.to_numpy(), "")
    else:
        targets["time_airport_min"] = (None, m.absent("airports", "no airports"))
    stations = dict((c, (p, w)) for c, p, w in _station_targets(m))
    targets["time_station_min"] = stations["dist_station_m"]
    targets["time_rail_freight_min"] = stations["dist_rail_freight_m"]
    minutes, not_reached = {}, {}
    for col in TIME_COLUMNS:
        pts, why = targets[col]
        if pts is None:
            not_reached[col] = why
            continue
        nodes = snap_points(graph, pts, max_distance=MAX_ACCESS_LEG_M)
        nodes = nodes[nodes >= 0]
        if len(nodes) == 0:
            what = col.removeprefix("time_").removesuffix("_min").replace("_", " ")
            not_reached[col] = f"the road network does not reach any {what} destination"
            continue
        minutes[col] = node_times(graph, nodes)
    people, people_why = None, ""
    if raw.has("population"):
        people = population_nodes(graph, raw["population"])
    else:
        people_why = m.absent("population", "no population grid (GUS census 2021)")
    roads = raw["roads"]
    width = pd.to_numeric(roads["width_m"], errors="coerce") if "width_m" in roads else None
    return RoadNetwork(
        graph,
        "",
        minutes,
        not_reached,
        people,
        people_why,
        _text(roads, "road_class").to_numpy(dtype=object),
        None if width is None or width.isna().all() else width.to_numpy(dtype=float),
    )


def _network_times(m: _Measure) -> None:
    """Travel minutes on the road network (free-flow speeds per road class)."""
    out, geoms, net = m.out, m.geoms, m.network
    columns = [*TIME_COLUMNS, "access_leg_m"]
    if net.graph is None:
        m.none(columns, net.why)
        return
    graph = net.graph
    access = access_points(graph, geoms)
    m.graph, m.access = graph, access
    out["access_leg_m"] = np.round(access.leg_m, 1)
    off = access.segment < 0
    m.per_site(off, columns, f"no road within {MAX_ACCESS_LEG_M / 1000:g} km in the road data")
    for col in TIME_COLUMNS:
        if col not in net.node_minutes:
            m.none([col], net.not_reached[col])
            continue
        t = site_times(graph, access, net.node_minutes[col])
        m.per_site(np.isnan(t) & ~off, [col], "not reachable on the road network")
        out[col] = np.round(t, 2)


def _utilities(m: _Measure) -> None:
    """Per network: on site, distance to the nearest existing and planned line; capacity."""
    out, geoms, raw = m.out, m.geoms, m.raw
    has = raw.has("utilities")
    why_all = m.absent("utilities", "no utility network (GESUT)")
    planned_cols = []
    if has:
        util = raw["utilities"]
        existing = util["status"].to_numpy() == "existing"
        network = util["network"].to_numpy()
        lines = util.geometry.to_numpy()
    for name in NETWORKS.values():
        cols = [f"dist_{name}_m", f"{name}_on_site"]
        if name in ("water", "sewer", "gas", "heat"):
            cols.append(f"{name}_diameter_mm")
        if name == "power":
            cols.append("power_voltage")
        if not has:
            m.none([*cols, f"dist_{name}_planned_m"], why_all)
            continue
        this = network == name
        if (existing & this).any():
            d, i = nearest_distance(geoms, lines[existing & this])
            out[f"dist_{name}_m"] = d
            out[f"{name}_on_site"] = d == 0.0
            if name in ("water", "sewer", "gas", "heat"):
                diam = util["diameter_mm"].to_numpy(dtype=float)[existing & this]
                out[f"{name}_diameter_mm"] = np.where(i >= 0, diam[np.maximum(i, 0)], np.nan)
            if name == "power":
                volt = util["voltage"].to_numpy()[existing & this]
                out["power_voltage"] = np.where(i >= 0, volt[np.maximum(i, 0)], "")
        else:
            m.none(cols, f"no existing {NETWORK_WORDS[name]} in the utility data")
        if (~existing & this).any():
            out[f"dist_{name}_planned_m"], _ = nearest_distance(geoms, lines[~existing & this])
        else:
            planned_cols.append(f"dist_{name}_planned_m")
    if planned_cols:
        m.none(planned_cols, "no planned lines of these networks in the utility data")
    if raw.has("substations"):
        subs = raw["substations"]
        d, si = nearest_distance(geoms, subs.geometry.to_numpy())
        cap = subs["capacity_mw"].to_numpy(dtype=float)
        out["power_capacity_mw"] = np.where(si >= 0, cap[np.maximum(si, 0)], np.nan)
        out["dist_substation_m"] = d
    else:
        why = m.absent("substations", "no substations (GESUT devices)")
        m.none(["power_capacity_mw", "dist_substation_m"], why)


def _hv_lines(raw: RawData) -> np.ndarray:
    """High-voltage (≥ 110 kV) overhead lines: BDOT10k SULN and GESUT power lines w/ww."""
    parts = []
    pl = raw.get("power_lines")
    if pl is not None and len(pl):
        kv_col = next((c for c in ("voltage_kv", "NAPIECIE") if c in pl), None)
        if kv_col is not None:
            kv = pd.to_numeric(pl[kv_col], errors="coerce").to_numpy()
            parts.append(pl.geometry.to_numpy()[kv >= 110])
    util = raw.get("utilities")
    if util is not None and len(util):
        hv = (util["network"].to_numpy() == "power") & np.isin(
            util["voltage"].to_numpy(), ("w", "ww")
        )
        parts.append(util.geometry.to_numpy()[hv & (util["status"].to_numpy() == "existing")])
    return np.concatenate(parts) if parts else np.array([], dtype=object)


CONSTRAINT_LAYERS = {
    "flood": "Q1% flood zones",
    "natura2000": "Natura 2000",
    "forest": "forest",
    "water": "surface water",
}


def _constraints(m: _Measure) -> None:
    """Flood, Natura 2000, forest, HV corridors, and what stays buildable after them."""
    out, geoms, areas, raw = m.out, m.geoms, m.areas, m.raw
    blocked, missing = [], []
    for key, col, what in (
        ("flood", "flood_share", "no flood hazard zones (ISOK)"),
        ("natura2000", "natura_share", "no Natura 2000 areas"),
        ("forest", "forest_share", "no forest layer"),
        ("water", None, ""),
    ):
        if raw.has(key):
            polys = raw[key].geometry.to_numpy()
            blocked.append(polys)
            if col:
                out[col] = overlap_share(geoms, areas, polys)
        else:
            missing.append(CONSTRAINT_LAYERS[key])
            if col:
                m.none([col], m.absent(key, what))
    hv = _hv_lines(raw)
    if len(hv):
        corridor = shapely.buffer(hv, HV_CORRIDOR_M)
        out["dist_hv_line_m"], _ = nearest_distance(geoms, hv)
        out["hv_corridor_share"] = overlap_share(geoms, areas, corridor)
        blocked.append(corridor)
    else:
        why = "no high-voltage lines in the data (BDOT10k power lines, GESUT)"
        m.none(["dist_hv_line_m", "hv_corridor_share"], why)
        missing.append("high-voltage corridors")
    if not blocked:
        m.none(["buildable_share"], "no constraint layers (flood, Natura 2000, forest, water, HV)")
        return
    out["buildable_share"] = 1.0 - overlap_share(geoms, areas, np.concatenate(blocked))
    if missing:
        m.cov.partial["buildable_share"] = ", ".join(missing) + " (no data)"


def _shape(out: gpd.GeoDataFrame, geoms: np.ndarray, areas: np.ndarray) -> None:
    """Compactness (Polsby–Popper 4πA/P², 1 = circle) and usable width (m)."""
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["compactness"] = np.round(
            np.where(perimeter > 0, 4 * np.pi * areas / perimeter**2, 0.0), 3
        )
    # the widest circle that fits: a building footprint's limiting dimension
    mic = shapely.maximum_inscribed_circle(geoms, tolerance=1.0)
    out["usable_width_m"] = np.round(2 * shapely.length(mic), 1)


def _plan_ogolny(m: _Measure) -> None:
    """Whether the site's gmina has adopted a plan ogólny (required from 1 July 2026)."""
    plan = m.raw.get("plan_zones")
    if not m.raw.has("plan_zones") or plan is None or "teryt" not in plan:
        m.none(["no_plan_ogolny"], m.absent("plan_zones", "no plan ogólny zones"))
        return
    m.out["no_plan_ogolny"] = ~m.out["teryt"].isin(set(plan["teryt"])).to_numpy()


def _workforce(m: _Measure) -> None:
    """Residents and working-age residents within 30 and 45 minutes by road."""
    cols = list(WORKFORCE_COLUMNS)
    people = m.network.people
    if people is None and m.network.people_why:
        m.none(cols, m.network.people_why)
        return
    if m.graph is None or m.access is None or people is None:
        m.none(cols, m.cov.not_measured.get("time_centre_min", "no road network"))
        return
    counts = catchment(m.graph, m.access, people)  # (limit, site, residents/working age)
    for j, minutes in enumerate((30, 45)):
        m.out[f"population_{minutes}min"] = np.round(counts[j, :, 0])
        m.out[f"workforce_{minutes}min"] = np.round(counts[j, :, 1])
    m.per_site(m.access.segment < 0, cols, "no road within reach of the site")
    if people.cells_off_network:
        m.cov.partial["population_30min"] = (
            f"{people.cells_off_network:,} populated grid cell(s) with no road within "
            f"{MAX_ACCESS_LEG_M / 1000:g} km ({people.people_off_network:,.0f} residents)"
        )


ROAD_MANAGEMENT = {"national_road": "K", "voivodeship_road": "W"}


def _road_names(m: _Measure) -> None:
    """The nearest national and voivodeship roads by number, the access road's class and
    carriageway width (BDOT10k ``katZarzadzania``, ``numerDrogi``, ``klasaDrogi``,
    ``szerokoscNawierzchni``)."""
    out, raw = m.out, m.raw
    width_col = ["access_road_class", "access_road_width_m"]
    if not raw.has("roads"):
        why = m.absent("roads", "no road network")
        m.none([*ROAD_MANAGEMENT, *(f"dist_{c}_m" for c in ROAD_MANAGEMENT), *width_col], why)
        return
    roads = raw["roads"]
    mgmt = _text(roads, "management").str.upper().to_numpy()
    number = _text(roads, "number")
    for col, code in ROAD_MANAGEMENT.items():
        sel = mgmt == code
        if not sel.any():
            what = "national" if code == "K" else "voivodeship"
            m.none([col, f"dist_{col}_m"], f"no {what} roads (management {code}) in the roads")
            continue
        d, i = nearest_distance(m.geoms, roads.geometry.to_numpy()[sel])
        out[f"dist_{col}_m"] = d
        out[col] = _pick(number[sel].reset_index(drop=True), i)
    if m.access is None:
        m.none(width_col, m.cov.not_measured.get("time_centre_min", "no road network"))
        return
    seg = m.access.segment
    out["access_road_class"] = _pick(pd.Series(m.network.road_class), seg)
    w = m.network.road_width
    if w is None:
        m.none(["access_road_width_m"], "the road data gives no carriageway width")
    else:
        out["access_road_width_m"] = np.where(seg >= 0, w[np.maximum(seg, 0)], np.nan)


def _text(frame: pd.DataFrame, col: str) -> pd.Series:
    if col not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[col].fillna("").astype(str).str.strip()


def _plan_parameters(m: _Measure) -> None:
    """What the plan allows: from the MPZP designation covering most of the site, else,
    where no MPZP covers it, from its plan ogólny zone (APP 2.0 parameters)."""
    zoning, plan = m.raw.get("zoning"), m.raw.get("plan_zones")
    n = len(m.out)
    found = False
    for col, ((mpzp_col, pog_col), factor) in PLAN_PARAMETERS.items():
        value = np.full(n, np.nan)
        if m.zoning_pick is not None and zoning is not None and mpzp_col in zoning:
            found = True
            v = pd.to_numeric(zoning[mpzp_col], errors="coerce").to_numpy(dtype=float)
            value = _take(v, m.zoning_pick)
        no_mpzp = m.zoning_pick < 0 if m.zoning_pick is not None else np.ones(n, dtype=bool)
        if m.plan_pick is not None and plan is not None and pog_col and pog_col in plan:
            found = True
            v = pd.to_numeric(plan[pog_col], errors="coerce").to_numpy(dtype=float)
            from_pog = _take(v, m.plan_pick)
            value = np.where(no_mpzp, from_pog, value)
        m.out[col] = value * factor
    if not found:
        why = "no plan parameters (height, coverage, intensity) in the MPZP or plan ogólny data"
        m.none(list(PLAN_PARAMETERS), why)


def _land(m: _Measure) -> None:
    """Farmland by soil class, forest land and buildings on the site."""
    raw, geoms, areas, out = m.raw, m.geoms, m.areas, m.out
    if raw.has("land_use"):
        lu = raw["land_use"]
        agri, forest = land_use_shares(geoms, areas, lu.geometry.to_numpy(), lu["ofu"].to_numpy())
        out["agri_share"], out["forest_land_share"] = agri, forest
    else:
        why = m.absent("land_use", "no EGiB land-use contours")
        m.none(["agri_share", "forest_land_share"], why)
    if raw.has("soil_classes"):
        sc = raw["soil_classes"]
        ozu = sc["ozu"].to_numpy() if "ozu" in sc else np.full(len(sc), "")
        good, poor = soil_shares(geoms, areas, sc.geometry.to_numpy(), ozu, sc["ozk"].to_numpy())
        out["soil_i_iii_share"], out["soil_iv_vi_share"] = good, poor
    else:
        why = m.absent("soil_classes", "no EGiB soil-class contours")
        m.none(["soil_i_iii_share", "soil_iv_vi_share"], why)
    if raw.has("buildings"):
        share, brown = buildings_on_site(geoms, areas, raw["buildings"].geometry.to_numpy())
        out["built_up_share"] = share
        out["brownfield"] = pd.array(brown, dtype="boolean")
    else:
        why = m.absent("buildings", "no building footprints (BDOT10k OT_BUBD_A, EGiB)")
        m.none(["built_up_share", "brownfield"], why)


def _terrain(m: _Measure) -> None:
    cols = ["slope_mean_pct", "slope_max_pct"]
    if m.raw.dem_path is None:
        m.none(cols, m.absent("dem", "no terrain model (NMT)"))
        return
    mean, mx = zonal_slope(m.raw.dem_path, m.geoms)
    m.out["slope_mean_pct"] = np.round(mean, 2)
    m.out["slope_max_pct"] = np.round(mx, 2)
    m.per_site(np.isnan(mean), cols, "outside the terrain model")
