"""Investment sites from parcels: candidates, assembly of contiguous parcels, lineage."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

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


NOMINATED = "nominated"  # zoning_key prefix of nominated parcels ("nominated:<offer name>")


def select_candidates(
    parcels: gpd.GeoDataFrame,
    zoning: gpd.GeoDataFrame | None,
    plan_zones: gpd.GeoDataFrame | None,
    min_area_ha: float = MIN_PARCEL_AREA_HA,
    nominated: Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """Parcels that can be part of a site: not a sliver, with an investment designation,
    or nominated.

    A parcel qualifies when its area is at least ``min_area_ha`` and the MPZP
    designation under its representative point has an investment class (P, U, …), or,
    where no MPZP covers it, the plan ogólny zone allows investment (SP, SU, …). A
    parcel of ``nominated`` (parcel ID → offer name, "" when unnamed) qualifies whatever
    its zoning and size: the gmina offers it. The result carries ``zoning_key`` (the
    designation class or plan zone; ``nominated:<offer name>`` for nominated parcels)
    for assembly and ``nominated`` (bool).
    """
    nominated = nominated or {}
    picked = (
        parcels["parcel_id"].isin(list(nominated)).to_numpy()
        if nominated
        else np.zeros(len(parcels), dtype=bool)
    )
    big = (parcels["area_ha"].to_numpy() >= min_area_ha) | picked
    cand = parcels[big]
    picked = picked[big]
    pts = shapely.point_on_surface(cand.geometry.to_numpy())
    zi, classes = _zoning_under(pts, zoning)
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
    keep = by_mpzp | by_plan | picked
    key = np.where(zi >= 0, "mpzp:" + classes.astype(str), "plan:" + sym.astype(str))
    if picked.any():
        names = cand["parcel_id"].map(nominated).fillna("").astype(str).to_numpy()
        key = np.where(picked, NOMINATED + ":" + names.astype(object), key)
    out = cand[keep].assign(zoning_key=key[keep], nominated=picked[keep])
    return out.reset_index(drop=True)


def _zoning_under(
    pts: np.ndarray, zoning: gpd.GeoDataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the zoning polygon under each point (-1: none) and its classes ("")."""
    if zoning is None or not len(zoning):
        return np.full(len(pts), -1, dtype=np.int64), np.full(len(pts), "", dtype=object)
    zi = point_in_polygon(pts, zoning)
    classes = np.where(zi >= 0, zoning["classes"].to_numpy()[np.maximum(zi, 0)], "")
    return zi, classes


def why_no_candidates(
    parcels: gpd.GeoDataFrame,
    zoning: gpd.GeoDataFrame | None,
    plan_zones: gpd.GeoDataFrame | None,
    nominated_listed: int = 0,
    nominated_found: int = 0,
    candidates: int = 0,
) -> str:
    """Why a run has no site, and what would help — one sentence for the error line."""
    n = len(parcels)
    nominate = "list the parcels the gmina offers with --nominated FILE (a parcel_id column)"
    if candidates:
        return (
            f"the {candidates:,} candidate parcels form no site of at least "
            f"{MIN_CANDIDATE_AREA_HA:g} ha; {nominate}"
        )
    has_zoning = zoning is not None and len(zoning) > 0
    has_plan = plan_zones is not None and len(plan_zones) > 0
    nominated = ""
    if nominated_listed:
        nominated = (
            f"; none of the {nominated_listed:,} nominated parcel IDs is among the "
            f"{n:,} parcels (check that the list and the parcels are of the same gmina)"
        )
    if not has_zoning and not has_plan:
        if nominated_listed:
            return "nothing can be selected: no zoning data (MPZP, plan ogólny)" + nominated
        return (
            "nothing can be selected: no zoning data (MPZP mpzp/mpzp.gpkg, plan ogólny "
            f"in app/) and no nomination list; add the gmina's MPZP layer, or {nominate}"
        )
    pts = shapely.point_on_surface(parcels.geometry.to_numpy())
    zi, _ = _zoning_under(pts, zoning)
    covered = zi >= 0
    if has_plan:
        covered |= point_in_polygon(pts, plan_zones) >= 0
    if not covered.any():
        layers = " and ".join(
            w for w, h in (("the MPZP layer", has_zoning), ("the plan ogólny", has_plan)) if h
        )
        verb = "cover" if has_zoning and has_plan else "covers"
        return (
            f"{layers} {verb} none of the {n:,} parcels (another area, or another CRS?); "
            f"add the zoning of the parcels' gminy, or {nominate}{nominated}"
        )
    return (
        f"none of the {int(covered.sum()):,} parcels under a plan has an investment "
        f"designation ({', '.join(INVESTMENT_CLASSES)}; plan ogólny "
        f"{', '.join(INVESTMENT_PLAN_ZONES)}); {nominate}{nominated}"
    )


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

    Returns one row per site, in site ID order, with ``site_id`` (stable: hash of its
    sorted parcel IDs), ``parcel_ids``, ``n_parcels``, ``teryt`` (of its largest parcel),
    ``area_ha`` (sum of parcel polygons), ``registered_area_ha`` (sum of registered areas) and
    ``ownership``; and ``nominated`` where ``cand`` has it (a site of nominated parcels
    is kept whatever its area: the gmina offers it).
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
    keep = sites["area_ha"].to_numpy() >= min_area_ha
    if "nominated" in cand:
        sites["nominated"] = cand["nominated"].to_numpy(dtype=bool)[first_row]
        keep |= sites["nominated"].to_numpy()
    # in site ID order: the same sites come out in the same order however the parcels
    # were read (one process, or partitions of a region)
    return sites[keep].sort_values("site_id").reset_index(drop=True)


def nomination_offers(sites: pd.DataFrame, offers: pd.DataFrame) -> pd.DataFrame:
    """The offer of each nominated site from the nomination list's rows of its parcels.

    ``offers`` has ``parcel_id``, ``name``, ``contact``, ``price_pln_m2``, ``notes``.
    Returns ``price_pln_m2`` (the parcels' price; their mean where they differ, the
    range then in the notes), ``contact`` (the distinct contacts) and ``notes``
    (``"Nominated: <name>. <notes>"``), indexed like ``sites``; empty (NaN / None)
    for sites that are not nominated.
    """
    out = pd.DataFrame(
        {
            "price_pln_m2": np.nan,
            "contact": pd.Series(None, index=sites.index, dtype=object),
            "notes": pd.Series(None, index=sites.index, dtype=object),
        },
        index=sites.index,
    )
    if "nominated" not in sites or not len(offers):
        return out
    table = offers.set_index("parcel_id")
    for idx in sites.index[sites["nominated"].to_numpy(dtype=bool)]:
        rows = table.loc[table.index.intersection(str(sites.at[idx, "parcel_ids"]).split(","))]
        if not len(rows):
            continue

        def distinct(col: str, rows: pd.DataFrame = rows) -> list[str]:
            return list(dict.fromkeys(v for v in rows[col].astype(str) if v))

        prices = rows["price_pln_m2"].dropna().unique()
        notes = distinct("notes")
        if len(prices) > 1:
            out.at[idx, "price_pln_m2"] = round(float(np.mean(prices)), 2)
            notes.append(f"prices per parcel {prices.min():g}–{prices.max():g} PLN/m²")
        elif len(prices) == 1:
            out.at[idx, "price_pln_m2"] = float(prices[0])
        names = distinct("name")
        head = "Nominated" + (f": {'; '.join(names)}" if names else "")
        out.at[idx, "notes"] = ". ".join([head, *notes])[:4000]
        contacts = distinct("contact")
        out.at[idx, "contact"] = "; ".join(contacts)[:500] if contacts else None
    return out


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
