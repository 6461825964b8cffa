"""Investment sites from parcels: candidates, assembly of contiguous parcels, lineage."""

from __future__ import annotations

import hashlib

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely import STRtree

from omw_sites.config import (
    ASSEMBLY_GAP_M,
    INVESTMENT_CLASSES,
    INVESTMENT_PLAN_ZONES,
    MIN_CANDIDATE_AREA_HA,
    MIN_PARCEL_AREA_HA,
)
from omw_sites.criteria.geometry import point_in_polygon


def site_id(parcel_ids: list[str]) -> str:
    """Stable site ID: ``S`` + 10 hex digits of the SHA-1 of its sorted parcel IDs."""
    key = ",".join(sorted(parcel_ids)).encode()
    return "S" + hashlib.sha1(key).hexdigest()[:10]


def select_candidates(
    parcels: gpd.GeoDataFrame,
    zoning: gpd.GeoDataFrame,
    plan_zones: gpd.GeoDataFrame | None,
    min_area_ha: float = MIN_PARCEL_AREA_HA,
) -> gpd.GeoDataFrame:
    """Parcels that can be part of a site: not a sliver, with an investment designation.

    A parcel qualifies when its area is at least ``min_area_ha`` and the MPZP
    designation under its representative point has an investment class (P, U, …), or,
    where no MPZP covers it, the plan ogólny zone allows investment (SP, SU, …). The
    result carries ``zoning_key`` (the designation class or plan zone) for assembly.
    """
    big = parcels["area_ha"].to_numpy() >= min_area_ha
    cand = parcels[big]
    pts = shapely.point_on_surface(cand.geometry.to_numpy())
    zi = point_in_polygon(pts, zoning)
    classes = np.where(zi >= 0, zoning["classes"].to_numpy()[np.maximum(zi, 0)], "")
    allowed = set(INVESTMENT_CLASSES)
    by_mpzp = np.fromiter(
        (bool(allowed.intersection(c.split("/"))) for c in classes), bool, len(classes)
    )
    by_plan = np.zeros(len(cand), dtype=bool)
    sym = np.full(len(cand), "", dtype=object)
    if plan_zones is not None and len(plan_zones):
        pi = point_in_polygon(pts, plan_zones)
        sym = np.where(pi >= 0, plan_zones["symbol"].to_numpy()[np.maximum(pi, 0)], "")
        by_plan = (zi < 0) & np.isin(sym, INVESTMENT_PLAN_ZONES)
    keep = by_mpzp | by_plan
    key = np.where(zi >= 0, "mpzp:" + classes.astype(str), "plan:" + sym.astype(str))
    return cand[keep].assign(zoning_key=key[keep]).reset_index(drop=True)


def assemble_sites(
    cand: gpd.GeoDataFrame,
    gap_m: float = ASSEMBLY_GAP_M,
    min_area_ha: float = MIN_CANDIDATE_AREA_HA,
) -> gpd.GeoDataFrame:
    """Join contiguous candidate parcels into investment sites.

    Parcels become one site when they touch or lie within ``gap_m`` of each other (a
    ditch, a boundary strip), have the same designation (``zoning_key``) and the same
    ownership class — land that one seller can offer under one plan. Connected
    components of that neighbour graph (STRtree ``dwithin`` + scipy) are the sites;
    sites under ``min_area_ha`` are dropped.

    Returns one row per site with ``site_id`` (stable: hash of its sorted parcel IDs),
    ``parcel_ids``, ``n_parcels``, ``teryt`` (of its largest parcel), ``area_ha``
    (sum of parcel polygons), ``registered_area_ha`` (sum of registered areas) and
    ``ownership``.
    """
    n = len(cand)
    geoms = cand.geometry.to_numpy()
    tree = STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=gap_m)
    key = cand["zoning_key"].to_numpy()
    owner = cand["ownership"].to_numpy()
    same = (left < right) & (key[left] == key[right]) & (owner[left] == owner[right])
    adj = coo_matrix((np.ones(same.sum()), (left[same], right[same])), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    area = shapely.area(geoms) / 1e4
    frame = pd.DataFrame(
        {
            "label": label,
            "parcel_id": cand["parcel_id"].astype(str).to_numpy(),
            "area": area,
            "registered": cand["registered_area_ha"].to_numpy(dtype=float),
            "teryt": cand["teryt"].to_numpy(),
            "ownership": owner,
            "kw": cand["kw"].fillna("").astype(str).to_numpy()
            if "kw" in cand
            else np.full(n, "", dtype=object),
        }
    )
    by_id = frame.sort_values(["label", "parcel_id"]).groupby("label")
    ids = by_id["parcel_id"].agg(",".join)
    kws = by_id["kw"].agg(",".join)  # aligned with parcel_ids; "" where not known
    frame = frame.sort_values(["label", "area"], ascending=[True, False])
    groups = frame.groupby("label", sort=True)
    size = groups.size().to_numpy()
    # geometry: singletons as they are, multi-parcel sites dissolved
    site_geom = np.empty(len(size), dtype=object)
    first_row = groups.head(1).index.to_numpy()  # largest parcel of each site
    single = size == 1
    site_geom[single] = geoms[first_row[single]]
    multi_labels = np.flatnonzero(~single)
    if len(multi_labels):
        members = frame[np.isin(frame["label"].to_numpy(), multi_labels)]
        parts = gpd.GeoDataFrame(
            {"label": members["label"].to_numpy()},
            geometry=geoms[members.index.to_numpy()],
            crs=cand.crs,
        )
        # parcels of a cadastre form a coverage (no overlaps): coverage union is exact
        # and several times faster than a general union; where the input is not a clean
        # coverage (overlapping digitising noise) fall back to a full union
        try:
            dissolved = parts.dissolve(by="label", method="coverage").geometry
            bad = ~dissolved.is_valid.to_numpy()
        except shapely.errors.GEOSException:
            dissolved, bad = None, None
        if dissolved is None or bad.all():
            dissolved = parts.dissolve(by="label").geometry
        elif bad.any():
            redo = dissolved.index[bad]
            sub = parts[parts["label"].isin(redo)].dissolve(by="label").geometry
            dissolved = dissolved.copy()
            dissolved.loc[redo] = sub.loc[redo]
        site_geom[multi_labels] = dissolved.loc[multi_labels].to_numpy()
    sites = gpd.GeoDataFrame(
        {
            "site_id": [site_id(p.split(",")) for p in ids],
            "parcel_ids": ids.to_numpy(),
            "kw_numbers": kws.to_numpy(),
            "n_parcels": size,
            "teryt": cand["teryt"].to_numpy()[first_row],
            "area_ha": groups["area"].sum().to_numpy(),
            "registered_area_ha": groups["registered"].sum().to_numpy(),
            "ownership": owner[first_row],
        },
        geometry=site_geom,
        crs=cand.crs,
    )
    dup = sites["site_id"].duplicated()
    if dup.any():  # 40-bit hash collision: practically impossible, but never silent
        msg = f"site ID collision for parcels {list(sites.loc[dup, 'parcel_ids'])[:5]}"
        raise ValueError(msg)
    return sites[sites["area_ha"] >= min_area_ha].reset_index(drop=True)


def lineage(sites: gpd.GeoDataFrame, previous: gpd.GeoDataFrame | None) -> np.ndarray:
    """For each site new since ``previous``, the previous site IDs whose land it overlaps.

    A site whose ID existed before keeps an empty entry; a site formed by a parcel split,
    merge or re-assembly lists (comma-separated) the earlier sites covering more than 1 %
    of its area. Used for the ``derived_from`` column.
    """
    out = np.full(len(sites), "", dtype=object)
    if previous is None or len(previous) == 0 or len(sites) == 0:
        return out
    known = set(previous["site_id"])
    new = np.flatnonzero(~sites["site_id"].isin(known).to_numpy())
    if len(new) == 0:
        return out
    geoms = sites.geometry.to_numpy()[new]
    prev_geoms = previous.geometry.to_numpy()
    left, right = STRtree(prev_geoms).query(geoms, predicate="intersects")
    inter = shapely.area(shapely.intersection(geoms[left], prev_geoms[right]))
    big = inter > 0.01 * shapely.area(geoms[left])
    prev_ids = previous["site_id"].to_numpy()
    pairs = pd.DataFrame({"site": left[big], "prev": prev_ids[right[big]]})
    for pos, ids in pairs.groupby("site")["prev"]:
        out[new[pos]] = ",".join(sorted(set(ids)))
    return out
