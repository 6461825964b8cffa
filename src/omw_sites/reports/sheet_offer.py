"""What an investor asks first, for the offer sheet: the offer as the inventory holds it
(status, price or lease, contact, SEZ / Polish Investment Zone, public documents, notes),
a readable title, and the nearest airport, motorway junction and station by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from omw_sites.reports.sheet_labels import Formatter, missing

STATUS_WORDS = {
    "available": ("dostępny", "available"),
    "reserved": ("zarezerwowany", "reserved"),
    "sold": ("sprzedany", "sold"),
    "withdrawn": ("wycofany z oferty", "withdrawn"),
}


def status_word(status: Any, lang: str) -> str:
    """The lifecycle status in words (``available`` → ``dostępny``)."""
    s = "" if missing(status) else str(status)
    return STATUS_WORDS.get(s, (s, s))[0 if lang == "pl" else 1]


def public_documents(value: Any) -> list[dict[str, str]]:
    """The public documents of a site (title, url) from the stored JSON list; documents
    marked internal are never printed."""
    if missing(value) or not str(value).strip():
        return []
    try:
        docs = json.loads(str(value))
    except ValueError:
        return []
    return [
        {"title": str(d.get("title", "")), "url": str(d.get("url", ""))}
        for d in docs
        if isinstance(d, dict)
        and d.get("public", True)
        and str(d.get("url", "")).startswith("http")
    ]


def offer_rows(r: pd.Series, fmt: Formatter) -> list[tuple[str, str]]:
    """(label, value) of the offer; what the inventory does not hold reads "not in the
    inventory — contact the gmina office"."""
    t, none = fmt.t, fmt.t("offer_none")

    def text(col: str) -> str:
        v = r.get(col)
        return none if missing(v) or not str(v).strip() else str(v)

    status = status_word(r.get("status"), fmt.lang) or none
    if not missing(r.get("status_date")) and r.get("status_date"):
        status += f" ({t('since')} {r['status_date']})"
    price = r.get("price_pln_m2")
    lease = r.get("lease_pln_m2_year")
    rows = [(t("status"), status)]
    rows.append((t("price"), none if missing(price) else fmt.num(price, 2, t("pln_m2"))))
    if not missing(lease):
        rows.append((t("lease"), fmt.num(lease, 2, t("pln_m2_year"))))
    rows += [(t("contact"), text("contact")), (t("sez"), text("sez_status"))]
    if not missing(r.get("notes")) and str(r.get("notes")).strip():
        rows.append((t("notes"), str(r["notes"])))
    return rows


def title_parts(r: pd.Series, fmt: Formatter) -> dict[str, str]:
    """The sheet's readable title: gmina, precinct (obręb), hectares, designation."""
    ids = [p.strip() for p in str(r.get("parcel_ids") or "").split(",") if p.strip()]
    precincts = sorted({p.split(".")[1] for p in ids if p.count(".") >= 2})
    designation = "" if missing(r.get("zoning_symbol")) else str(r.get("zoning_symbol") or "")
    if not designation and not missing(r.get("plan_zone")) and r.get("plan_zone"):
        designation = f"{fmt.t('plan_zone_short')} {r['plan_zone']}"
    return {
        "gmina": str(r.get("gmina") or ""),
        "precinct": ", ".join(precincts),
        "area": fmt.num(r.get("area_ha"), 2, "ha"),
        "designation": designation
        or fmt.value("planning_instrument", r.get("planning_instrument")),
    }


def _nearest(
    store: str | Path, layer: str, site: gpd.GeoDataFrame, where: str = ""
) -> pd.Series | None:
    """The feature of a reference layer nearest to the site (straight line)."""
    from omw_sites.store import list_layers, read_layer

    if layer not in list_layers(store):
        return None
    gdf = read_layer(store, layer)
    if where and where in gdf:
        gdf = gdf[gdf[where] == "passenger"]
    if gdf.empty:
        return None
    d = gdf.geometry.distance(site.geometry.iloc[0])
    return gdf.loc[d.idxmin()]


def nearest_names(store: str | Path, site: gpd.GeoDataFrame) -> dict[str, str]:
    """Names of the nearest airport, station (passenger) and rail freight terminal from
    the store's reference layers; the junction's name (with its road) is a site column."""
    out: dict[str, str] = {}
    airport = _nearest(store, "airports", site)
    if airport is not None and not missing(airport.get("name")):
        iata = airport.get("iata")
        out["airport"] = str(airport["name"]) + (f" ({iata})" if not missing(iata) and iata else "")
    for key, kind in (("station", "passenger"), ("rail_freight", "freight")):
        station = _nearest(store, "stations", site, kind)
        if station is not None and not missing(station.get("name")):
            out[key] = str(station["name"])
    r = site.iloc[0]
    if not missing(r.get("junction_name")) and r.get("junction_name"):
        out["junction"] = str(r["junction_name"])
    return out
