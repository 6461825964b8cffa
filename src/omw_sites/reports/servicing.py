"""Utility-investment plan ("uzbrojenie"): which extensions unlock the most valuable land.

For every site and network (water, sewer, power, gas) whose existing line is farther than
``min_gap_m``, the candidate extension brings the network to the site's edge: cost =
distance × the network's cost per metre. The site is re-scored as if connected (distance
0, on site), all sites at once — fixed value-function bounds make each site's score
independent of the others — and its new rank is found among the other sites' unchanged
scores. Extensions are ranked by value per PLN: score gain × hectares per million PLN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from omw_sites.i18n import N_, gettext
from omw_sites.layers import WORK_CRS, rank_col, score_col
from omw_sites.reports.formatting import coded, fixed, profile_title
from omw_sites.scoring import Profile, load_profiles
from omw_sites.scoring.engine import on_offer, score_profile, tier_col
from omw_sites.store import read_layer, read_sites

NETWORKS = ("water", "sewer", "power", "gas")
# indicative construction cost per metre of a connection (PLN/m, 2026 prices): water
# main DN 150, gravity sewer DN 200, MV cable line 15 kV, gas pipe DN 100
DEFAULT_COST_PLN_PER_M = {"water": 600.0, "sewer": 1100.0, "power": 450.0, "gas": 500.0}
MIN_GAP_M = 50.0  # closer than this the connection is a service line, not an extension


@dataclass
class ServicingPlan:
    """Candidate extensions, best value per PLN first."""

    profile: str
    table: pd.DataFrame
    cost_pln_per_m: dict[str, float]


def plan_extensions(
    sites: pd.DataFrame,
    profile: Profile,
    cost_pln_per_m: Mapping[str, float] | None = None,
    min_gap_m: float = MIN_GAP_M,
) -> ServicingPlan:
    """Score and rank gain of bringing each network to each site.

    Parameters
    ----------
    sites : site table with the criteria columns (``dist_<net>_m`` in metres, area_ha)
    profile : the investor profile to score with
    cost_pln_per_m : cost per metre per network (PLN/m); defaults above
    min_gap_m : extensions shorter than this are not proposed

    Returns
    -------
    ServicingPlan whose table has one row per (site, network): length (m), cost (PLN),
    score and rank before/after, score gain, readiness tier before/after, hectares moved
    into tier A, and ``value_per_mpln`` = score gain × ha per million PLN.
    """
    costs = {**DEFAULT_COST_PLN_PER_M, **(cost_pln_per_m or {})}
    bad = [n for n, c in costs.items() if not (np.isfinite(c) and c > 0)]
    if bad:
        msg = f"cost per metre must be a positive number for: {', '.join(bad)}"
        raise ValueError(msg)
    p = profile.name
    base = score_profile(sites, profile)
    before = base[score_col(p)].to_numpy(dtype=float)
    tier_before = base[tier_col(p)].to_numpy()
    # sold and withdrawn sites keep their score but are in no ranking and no plan
    offered = on_offer(sites["status"] if "status" in sites else None, len(sites))
    ranked = np.sort(before[base[rank_col(p)].to_numpy() > 0])[::-1]
    rows = []
    for net in NETWORKS:
        col = f"dist_{net}_m"
        if col not in sites:
            continue
        dist = sites[col].to_numpy(dtype=float)
        cand = np.isfinite(dist) & (dist >= min_gap_m) & offered
        if not cand.any():
            continue
        connected = sites.copy()
        connected[col] = np.where(cand, 0.0, dist)
        if f"{net}_on_site" in connected:
            connected[f"{net}_on_site"] = np.where(cand, True, connected[f"{net}_on_site"])
        after_frame = score_profile(connected, profile)
        after = after_frame[score_col(p)].to_numpy(dtype=float)
        tier_after = after_frame[tier_col(p)].to_numpy()
        gain = np.nan_to_num(after, nan=0.0) - np.nan_to_num(before, nan=0.0)
        useful = cand & ((gain > 1e-9) | ((tier_after == "A") & (tier_before != "A")))
        if not useful.any():
            continue
        idx = np.flatnonzero(useful)
        new_score = after[idx]
        # rank among the others' unchanged scores: 1 + how many score strictly higher,
        # not counting the site's own old score
        higher = np.searchsorted(-ranked, -new_score, side="left")
        own_higher = np.nan_to_num(before[idx], nan=-1) > new_score
        new_rank = np.where(np.isnan(new_score), 0, higher + 1 - own_higher)
        length = dist[idx]
        cost = length * costs[net]
        area = sites["area_ha"].to_numpy(dtype=float)[idx]
        into_a = (tier_after[idx] == "A") & (tier_before[idx] != "A")
        rows.append(
            pd.DataFrame(
                {
                    "site_id": sites["site_id"].to_numpy()[idx],
                    "gmina": sites["gmina"].to_numpy()[idx] if "gmina" in sites else "",
                    "network": net,
                    "length_m": np.round(length, 1),
                    "cost_pln": np.round(cost, -2),
                    "score_before": before[idx],
                    "score_after": new_score,
                    "score_gain": np.round(gain[idx], 6),
                    "rank_before": base[rank_col(p)].to_numpy()[idx],
                    "rank_after": new_rank.astype(int),
                    "tier_before": tier_before[idx],
                    "tier_after": tier_after[idx],
                    "area_ha": np.round(area, 4),
                    "ha_into_tier_a": np.where(into_a, np.round(area, 4), 0.0),
                    "value_per_mpln": np.round(gain[idx] * area / (cost / 1e6), 4),
                }
            )
        )
    columns = [
        "site_id", "gmina", "network", "length_m", "cost_pln", "score_before", "score_after",
        "score_gain", "rank_before", "rank_after", "tier_before", "tier_after", "area_ha",
        "ha_into_tier_a", "value_per_mpln",
    ]  # fmt: skip
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    table = table.sort_values(
        ["value_per_mpln", "ha_into_tier_a", "site_id", "network"],
        ascending=[False, False, True, True],
        kind="stable",
    ).reset_index(drop=True)
    return ServicingPlan(p, table, dict(costs))


def plan_from_store(
    store: str | Path,
    profile: str,
    cost_pln_per_m: Mapping[str, float] | None = None,
    min_gap_m: float = MIN_GAP_M,
) -> ServicingPlan:
    """``plan_extensions`` for a built-in or TOML profile over the store's sites."""
    prof = load_profiles([profile])[0]
    sites = read_sites(store, read_geometry=False)
    return plan_extensions(sites, prof, cost_pln_per_m, min_gap_m)


NETWORK_COLORS = {"water": "#2171b5", "sewer": "#8c510a", "power": "#e31a1c", "gas": "#ff7f00"}


def extension_lines(store: str | Path, plan: ServicingPlan, top: int = 200) -> gpd.GeoDataFrame:
    """The ``top`` extensions as lines from the nearest existing network to the site's edge.

    Geometry is the shortest line between the site and the nearest existing line of that
    network (STRtree nearest), EPSG:2180, with the plan's columns.
    """
    rows = plan.table.head(top).reset_index(drop=True)
    sites = read_sites(store, columns=["site_id"]).set_index("site_id")
    util = read_layer(store, "utilities")
    geoms = np.empty(len(rows), dtype=object)
    for net, idx in rows.groupby("network").groups.items():
        lines = util.geometry.to_numpy()[
            (util["network"].to_numpy() == net) & (util["status"].to_numpy() == "existing")
        ]
        site_geoms = sites.geometry.loc[rows.loc[idx, "site_id"]].to_numpy()
        (left, right) = STRtree(lines).query_nearest(site_geoms, all_matches=False)
        geoms[np.asarray(idx)[left]] = shapely.shortest_line(lines[right], site_geoms[left])
    return gpd.GeoDataFrame(rows, geometry=list(geoms), crs=WORK_CRS)


# the extension's facts as the map labels them (tooltip and ranked table), with units
EXTENSION_LABELS = {
    "site_id": N_("Site"),
    "network": N_("Network"),
    "length_m": N_("Length [m]"),
    "cost_pln": N_("Cost [PLN]"),
    "score_gain": N_("Score gain (0–1)"),
    "rank_before": N_("Rank before"),
    "rank_after": N_("Rank after"),
    "value_per_mpln": N_("Gain × ha per million PLN"),
}
RANKED_ROWS = 15  # extensions listed in the map's ranked table
DIGITS = {"length_m": 0, "cost_pln": 0, "score_gain": 3, "value_per_mpln": 2}


def _facts(ext: pd.DataFrame, lang: str) -> list[dict[str, str]]:
    """The facts of each extension, formatted in ``lang`` (networks in words)."""
    rows = []
    for _, r in ext.iterrows():
        row = {}
        for c in EXTENSION_LABELS:
            if c == "network":
                row[c] = coded("network", r[c], lang)
            elif c in DIGITS or c.startswith("rank_"):
                row[c] = fixed(r[c], lang, DIGITS.get(c, 0))
            else:
                row[c] = str(r[c])
        rows.append(row)
    return rows


def ranked_table(ext: pd.DataFrame, lang: str = "en") -> str:
    """The best extensions as an HTML table for the map (best value per PLN first)."""
    from omw_sites.reports.templating import render

    head = [gettext(lang, label) for label in EXTENSION_LABELS.values()]
    rows = [list(row.values()) for row in _facts(ext, lang)]
    return str(render("ranked.html.j2", lang, head=head, rows=rows))


def servicing_map(store: str | Path, plan: ServicingPlan, top: int = 200, lang: str = "en") -> str:
    """A self-contained HTML map of the best ``top`` extensions over the sites they serve,
    its words and numbers in ``lang``."""
    from omw_sites.maps.assets import check_offline
    from omw_sites.maps.controls import LegendExtra, MapControl, render_legend, title_html
    from omw_sites.maps.geojson import feature_collection, web_geometries
    from omw_sites.maps.map_data import load_map_data
    from omw_sites.maps.map_layers import add_reference, base_map

    def n(value: float, digits: int = 0) -> str:
        return fixed(value, lang, digits)

    data = load_map_data(store)
    name = profile_title(plan.profile, plan.profile, lang)  # Polish title of a built-in one
    title = gettext(lang, "Utility extensions – %(profile)s", profile=name)
    m, bounds = base_map(data.sites, f"{title} (omw-sites)")
    for name in ("gminy", "flood", "natura2000", "roads_main"):
        add_reference(m, data, name, False, lang)
    ext = extension_lines(store, plan, top)
    served = data.sites.set_index("site_id").loc[ext["site_id"].unique()]
    site_word = gettext(lang, "Site")
    folium.GeoJson(
        feature_collection(
            web_geometries(served.geometry, 5.0), [{"site": s} for s in served.index]
        ),
        name=gettext(lang, "Sites served (%(n)s)", n=n(len(served))),
        style_function=lambda _f: {"color": "#333", "weight": 1, "fillColor": "#fee08b",
                                   "fillOpacity": 0.8},
        tooltip=folium.GeoJsonTooltip(fields=["site"], aliases=[site_word]),
    ).add_to(m)  # fmt: skip
    fields = list(EXTENSION_LABELS)
    aliases = [gettext(lang, label) for label in EXTENSION_LABELS.values()]
    drawn = []
    for net, color in NETWORK_COLORS.items():
        sub = ext[ext["network"] == net]
        if sub.empty:
            continue
        label = gettext(
            lang,
            "%(network)s extension (%(n)s)",
            network=coded("network", net, lang),
            n=n(len(sub)),
        )
        folium.GeoJson(
            feature_collection(web_geometries(sub.geometry, 0), _facts(sub, lang)),
            name=label,
            style_function=lambda _f, c=color: {"color": c, "weight": 4, "opacity": 0.9},
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases),
        ).add_to(m)
        drawn.append(LegendExtra(color, label, "line", color))
    legend = render_legend(
        gettext(lang, "Utility extensions"),
        gettext(lang, "lines from the nearest existing network to the site"),
        [LegendExtra("#fee08b", gettext(lang, "site it serves"), "box", "#333"), *drawn],
    )
    MapControl(legend, "bottomright", "omw-legend").add_to(m)
    MapControl(ranked_table(ext.head(RANKED_ROWS), lang), "bottomleft", "omw-ranked").add_to(m)
    lines = [
        gettext(lang, "best %(n)s extensions by score gain × ha per million PLN", n=n(len(ext))),
        gettext(
            lang,
            "total %(cost)s million PLN; each built alone would move %(ha)s ha into tier A",
            cost=n(ext["cost_pln"].sum() / 1e6, 1),
            ha=n(ext["ha_into_tier_a"].sum(), 1),
        ),
    ]
    MapControl(title_html(title, lines), "topleft", "omw-title").add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    if bounds:
        m.fit_bounds(bounds)
    return check_offline(m.get_root().render())
