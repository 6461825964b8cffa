"""What an investor asks first, for the offer sheet: the offer as the inventory holds it
(status, price or lease, contact, SEZ / Polish Investment Zone, public documents, notes),
a readable title, and the nearest airport, motorway junction and station by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from omw_sites.reports.formatting import Formatter, coded, date_text, missing


def status_word(status: Any, lang: str) -> str:
    """The lifecycle status in words (``available`` → ``dostępny``)."""
    return "" if missing(status) or not str(status) else coded("status", status, lang)


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
    t, none = fmt.t, fmt.t("not in the inventory — contact the gmina office")

    def text(col: str) -> str:
        v = r.get(col)
        return none if missing(v) or not str(v).strip() else str(v)

    status = status_word(r.get("status"), fmt.lang) or none
    if not missing(r.get("status_date")) and r.get("status_date"):
        status += f" ({t('since')} {date_text(r['status_date'], fmt.lang)})"
    price = r.get("price_pln_m2")
    lease = r.get("lease_pln_m2_year")
    rows = [(t("Status"), status)]
    rows.append((t("Price"), none if missing(price) else fmt.num(price, 2, t("PLN/m²"))))
    if not missing(lease):
        rows.append((t("Lease"), fmt.num(lease, 2, t("PLN/m²/year"))))
    rows += [(t("Contact"), text("contact"))]
    rows.append((t("SEZ / Polish Investment Zone"), text("sez_status")))
    if not missing(r.get("notes")) and str(r.get("notes")).strip():
        rows.append((t("Notes"), str(r["notes"])))
    return rows


def title_parts(r: pd.Series, fmt: Formatter) -> dict[str, str]:
    """The sheet's readable title: gmina, precinct (obręb), hectares, designation."""
    ids = [p.strip() for p in str(r.get("parcel_ids") or "").split(",") if p.strip()]
    precincts = sorted({p.split(".")[1] for p in ids if p.count(".") >= 2})
    designation = "" if missing(r.get("zoning_symbol")) else str(r.get("zoning_symbol") or "")
    if not designation and not missing(r.get("plan_zone")) and r.get("plan_zone"):
        designation = f"{fmt.t('zone')} {r['plan_zone']}"
    return {
        "gmina": str(r.get("gmina") or ""),
        "precinct": ", ".join(precincts),
        "area": fmt.num(r.get("area_ha"), 2, "ha"),
        "designation": designation
        or fmt.value("planning_instrument", r.get("planning_instrument")),
    }


def _nearest(
    store: str | Path, layer: str, site: gpd.GeoDataFrame, kind: str = ""
) -> pd.Series | None:
    """The feature of a reference layer (of that ``kind``, for stations) nearest to the
    site (straight line)."""
    from omw_sites.store import list_layers, read_layer

    if layer not in list_layers(store):
        return None
    gdf = read_layer(store, layer)
    if kind and "kind" in gdf:
        gdf = gdf[gdf["kind"] == kind]
    if gdf.empty:
        return None
    d = gdf.geometry.distance(site.geometry.iloc[0])
    return gdf.loc[d.idxmin()]


def road_number(prefix: str, number: str) -> str:
    """A road as Poles write it: ``DK 7``, ``DW 631``; a motorway or expressway that is
    also a national road keeps its own number (``A2``, ``S8``)."""
    number = number.strip()
    return f"{prefix} {number}" if number.isdigit() else number


NAME_COLUMNS = {  # key of a nearest name -> the site column naming it (issue 21)
    "airport": "airport_name",
    "station": "station_name",
    "rail_freight": "rail_freight_name",
}


def nearest_names(store: str | Path, site: gpd.GeoDataFrame) -> dict[str, str]:
    """Names of the nearest airport, station (passenger) and rail freight terminal — the
    features the ``dist_*`` columns measured to, read from the site's name columns; a
    store made before those columns is searched in its reference layers instead. The
    junction's name (with its road number) is a site column."""
    out: dict[str, str] = {}
    r = site.iloc[0]
    for key, column in NAME_COLUMNS.items():
        if column in site.columns:
            value = r.get(column)
            if not missing(value) and str(value).strip():
                out[key] = str(value).strip()
    if not set(NAME_COLUMNS.values()) <= set(site.columns):
        out = _searched_names(store, site) | out
    if not missing(r.get("junction_name")) and r.get("junction_name"):
        out["junction"] = str(r["junction_name"])
    return out


def _searched_names(store: str | Path, site: gpd.GeoDataFrame) -> dict[str, str]:
    """The names searched for in the store's reference layers (stores made before the
    name columns)."""
    out: dict[str, str] = {}
    airport = _nearest(store, "airports", site)
    if airport is not None and not missing(airport.get("name")):
        iata = airport.get("iata")
        out["airport"] = str(airport["name"]) + (f" ({iata})" if not missing(iata) and iata else "")
    for key, kind in (("station", "passenger"), ("rail_freight", "freight")):
        station = _nearest(store, "stations", site, kind)
        if station is not None and not missing(station.get("name")):
            out[key] = str(station["name"])
    return out
