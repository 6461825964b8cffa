"""Candidate investment sites from parcels (assembly of neighbours follows later)."""

from __future__ import annotations

import hashlib

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from omw_sites.config import INVESTMENT_CLASSES, INVESTMENT_PLAN_ZONES, MIN_CANDIDATE_AREA_HA
from omw_sites.criteria.geometry import point_in_polygon


def site_id(parcel_ids: list[str]) -> str:
    """Stable site ID: ``S`` + 10 hex digits of the SHA-1 of its sorted parcel IDs."""
    key = ",".join(sorted(parcel_ids)).encode()
    return "S" + hashlib.sha1(key).hexdigest()[:10]


def select_candidates(
    parcels: gpd.GeoDataFrame,
    zoning: gpd.GeoDataFrame,
    plan_zones: gpd.GeoDataFrame | None,
    min_area_ha: float = MIN_CANDIDATE_AREA_HA,
) -> gpd.GeoDataFrame:
    """Parcels worth measuring: enough area and an investment designation.

    A parcel qualifies when its area is at least ``min_area_ha`` and the MPZP
    designation under its representative point has an investment class (P, U, …), or,
    where no MPZP covers it, the plan ogólny zone allows investment (SP, SU, …). The
    exact zoning shares are measured later on the qualifying parcels only.
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
    if plan_zones is not None and len(plan_zones):
        pi = point_in_polygon(pts, plan_zones)
        sym = np.where(pi >= 0, plan_zones["symbol"].to_numpy()[np.maximum(pi, 0)], "")
        by_plan = (zi < 0) & np.isin(sym, INVESTMENT_PLAN_ZONES)
    return cand[by_mpzp | by_plan].reset_index(drop=True)


def sites_from_parcels(cand: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One site per candidate parcel, with its stable ID and parcel list."""
    ids = cand["parcel_id"].astype(str)
    sites = gpd.GeoDataFrame(
        {
            "site_id": [site_id([p]) for p in ids],
            "parcel_ids": ids.to_numpy(),
            "teryt": cand["teryt"].to_numpy(),
            "area_ha": cand.geometry.area.to_numpy() / 1e4,
            "registered_area_ha": cand["registered_area_ha"].to_numpy(),
            "ownership": cand["ownership"].to_numpy(),
        },
        geometry=cand.geometry.to_numpy(),
        crs=cand.crs,
    )
    dup = pd.Series(sites["site_id"]).duplicated()
    if dup.any():  # 40-bit hash collision: practically impossible, but never silent
        msg = f"site ID collision for parcels {list(ids[dup.to_numpy()])[:5]}"
        raise ValueError(msg)
    return sites
