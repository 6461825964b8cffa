"""Site sheet (karta terenu inwestycyjnego): one self-contained HTML page per site, PL or EN.

The sheet reads the store only: the site row, the store's reference layers around it (for
an inline SVG location map — no tiles, no CDN) and the run info (profiles, data dates).
Every figure carries its unit and the data date of the input it was computed from.
``sheet_pdf`` prints the page to PDF with headless Chromium.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from omw_sites.browser import CHROMIUM_TIMEOUT_S, chromium_command, find_chromium
from omw_sites.files import write_text_atomic
from omw_sites.layers import column_source, excluded_col, rank_col, score_col
from omw_sites.store import StoreError

LANGS = ("pl", "en")
MAP_W, MAP_H = 560, 400  # px of the location map
PAD_M = 600.0  # metres of surroundings shown around the site


class UnknownSiteError(StoreError, LookupError):
    """The site ID is not in the store."""


# --------------------------------------------------------------------------------------
# Labels (pl, en)
# --------------------------------------------------------------------------------------

L: dict[str, tuple[str, str]] = {
    "title": ("Karta terenu inwestycyjnego", "Investment site sheet"),
    "site": ("Teren", "Site"),
    "gmina": ("Gmina", "Municipality (gmina)"),
    "generated": ("Wygenerowano", "Generated"),
    "run": ("Przebieg analizy", "Analysis run"),
    "data_date": ("Stan danych", "Data as of"),
    "location": ("Lokalizacja", "Location"),
    "map_note": (
        "Teren (czerwony), sąsiednie tereny (szary), drogi główne, kolej, sieci, "
        "strefa zalewowa Q1% i Natura 2000; układ EPSG:2180.",
        "Site (red), neighbouring sites (grey), main roads, rail, utility lines, "
        "Q1% flood zone and Natura 2000; EPSG:2180.",
    ),
    "centroid_2180": ("Środek terenu (EPSG:2180)", "Site centre (EPSG:2180)"),
    "centroid_wgs": ("Środek terenu (WGS 84)", "Site centre (WGS 84)"),
    "area_parcels": ("Powierzchnia i działki", "Area and parcels"),
    "area_ha": ("Powierzchnia (z geometrii)", "Area (polygon)"),
    "registered_area_ha": ("Powierzchnia ewidencyjna (EGiB)", "Registered area (EGiB)"),
    "n_parcels": ("Liczba działek", "Number of parcels"),
    "parcel_id": ("Identyfikator działki (TERYT)", "Parcel ID (TERYT)"),
    "unit": ("Jednostka ewidencyjna", "Cadastral unit"),
    "precinct": ("Obręb", "Precinct (obręb)"),
    "number": ("Nr działki", "Parcel no."),
    "kw": ("Księga wieczysta", "Land register (KW)"),
    "unknown": ("brak danych", "no data"),
    "ownership": ("Własność", "Ownership"),
    "planning": ("Planowanie przestrzenne", "Planning status"),
    "planning_instrument": ("Instrument planistyczny", "Planning instrument"),
    "zoning_symbol": ("Symbol przeznaczenia (MPZP)", "Zoning symbol (MPZP)"),
    "zoning_class": ("Klasa przeznaczenia", "Designation class"),
    "zoning_share": ("Udział przeważającego przeznaczenia", "Share of the main designation"),
    "zoning_classes": ("Wszystkie przeznaczenia (udziały)", "All designations (shares)"),
    "zoning_plan": ("Akt (MPZP)", "Act (local plan, MPZP)"),
    "zoning_adopted": ("Data uchwalenia", "Adopted on"),
    "plan_zone": ("Strefa planu ogólnego", "Plan ogólny zone"),
    "no_plan_ogolny": ("Gmina bez planu ogólnego", "Gmina has no plan ogólny"),
    "utilities": ("Uzbrojenie terenu", "Utilities"),
    "network": ("Sieć", "Network"),
    "on_site": ("Na terenie", "On site"),
    "dist_existing": ("Odległość do istniejącej", "Distance to existing"),
    "dist_planned": ("Odległość do planowanej", "Distance to planned"),
    "capacity": ("Parametry", "Capacity"),
    "water": ("wodociąg", "water"),
    "sewer": ("kanalizacja", "sewer"),
    "power": ("energia elektryczna", "power"),
    "gas": ("gaz", "gas"),
    "heat": ("ciepło sieciowe", "district heating"),
    "telecom": ("telekomunikacja", "telecom"),
    "diameter": ("średnica", "diameter"),
    "voltage": ("napięcie", "voltage"),
    "substation": ("GPZ", "substation"),
    "free_capacity": ("wolna moc", "free capacity"),
    "access": ("Dostępność komunikacyjna", "Access"),
    "destination": ("Cel", "Destination"),
    "time": ("Czas dojazdu", "Travel time"),
    "distance": ("Odległość", "Distance"),
    "junction": ("węzeł autostrady/drogi ekspresowej", "motorway/expressway junction"),
    "centre": ("centrum Warszawy", "Warsaw centre"),
    "airport": ("lotnisko", "airport"),
    "rail_freight": ("terminal kolejowy towarowy", "rail freight terminal"),
    "station": ("stacja kolejowa pasażerska", "passenger rail station"),
    "access_leg_m": ("Dojazd od drogi", "Distance from the access road"),
    "constraints": ("Ograniczenia i teren", "Constraints and terrain"),
    "flood_share": ("Obszar zagrożenia powodziowego Q1%", "Q1% flood hazard zone"),
    "natura_share": ("Natura 2000", "Natura 2000"),
    "forest_share": ("Las", "Forest"),
    "dist_hv_line_m": ("Odległość do linii WN (≥ 110 kV)", "Distance to HV line (≥ 110 kV)"),
    "hv_corridor_share": ("W pasie 30 m od linii WN", "Within 30 m of an HV line"),
    "buildable_share": ("Udział terenu do zabudowy", "Buildable share"),
    "slope_mean_pct": ("Spadek średni", "Mean slope"),
    "slope_max_pct": ("Spadek maksymalny", "Maximum slope"),
    "compactness": ("Zwartość kształtu (1 = koło)", "Compactness (1 = circle)"),
    "usable_width_m": ("Szerokość użytkowa", "Usable width"),
    "scores": ("Ocena według profili inwestora", "Score per investor profile"),
    "profile": ("Profil", "Profile"),
    "score": ("Ocena (0–1)", "Score (0–1)"),
    "rank": ("Pozycja", "Rank"),
    "tier": ("Gotowość", "Readiness"),
    "drivers": ("Uzasadnienie", "Explanation"),
    "gaps": ("Braki", "Gaps"),
    "excluded": ("wykluczony", "excluded"),
    "of": ("z", "of"),
    "offer": ("Cena i kontakt", "Price and contact"),
    "price": ("Cena", "Price"),
    "contact": ("Kontakt", "Contact"),
    "offer_none": (
        "brak w inwentaryzacji — skontaktuj się z urzędem gminy",
        "not in the inventory — contact the gmina office",
    ),
    "figure": ("Wielkość", "Figure"),
    "value": ("Wartość", "Value"),
    "yes": ("tak", "yes"),
    "no": ("nie", "no"),
    "sources": ("Źródła i daty danych", "Sources and data dates"),
    "layer": ("Warstwa", "Layer"),
    "drivers_note": (
        "Uzasadnienie generowane automatycznie (w języku angielskim).",
        "Explanation generated by the scoring engine.",
    ),
}

VALUES: dict[str, dict[str, tuple[str, str]]] = {
    "ownership": {
        "municipal": ("gminna", "municipal"),
        "state": ("Skarbu Państwa", "State Treasury"),
        "private": ("prywatna", "private"),
        "other": ("inna", "other"),
    },
    "planning_instrument": {
        "mpzp": ("miejscowy plan (MPZP)", "local plan (MPZP)"),
        "plan_ogolny": ("plan ogólny", "plan ogólny (general plan)"),
        "none": ("brak planu", "no plan"),
        "unknown": ("brak danych (brak warstwy MPZP)", "no data (no zoning layer)"),
    },
    "power_voltage": {
        "ww": ("najwyższe napięcie (NN)", "extra-high voltage"),
        "w": ("wysokie napięcie (WN)", "high voltage"),
        "s": ("średnie napięcie (SN)", "medium voltage"),
        "n": ("niskie napięcie (nN)", "low voltage"),
    },
}

LAYER_NAMES = {
    "parcels": ("EGiB – działki", "EGiB parcels"),
    "zoning": ("MPZP – przeznaczenie", "MPZP zoning"),
    "plan_zones": ("plan ogólny (APP)", "plan ogólny (APP)"),
    "roads": ("BDOT10k – drogi", "BDOT10k roads"),
    "junctions": ("węzły", "junctions"),
    "stations": ("stacje kolejowe", "rail stations"),
    "airports": ("lotniska", "airports"),
    "utilities": ("GESUT – sieci", "GESUT utilities"),
    "substations": ("GESUT – GPZ", "GESUT substations"),
    "flood": ("ISOK – Q1%", "ISOK flood Q1%"),
    "natura2000": ("Natura 2000", "Natura 2000"),
    "forest": ("BDOT10k – lasy", "BDOT10k forest"),
    "water": ("BDOT10k – wody", "BDOT10k water"),
    "power_lines": ("BDOT10k – linie energetyczne", "BDOT10k power lines"),
    "dem": ("NMT", "DEM"),
    "gminy": ("PRG – gminy", "PRG gminy"),
}


class _Fmt:
    """Numbers, units, flags and dates in one language."""

    def __init__(self, lang: str):
        if lang not in LANGS:
            msg = f"language {lang!r} is not supported; use one of: {', '.join(LANGS)}"
            raise ValueError(msg)
        self.lang = lang
        self.i = LANGS.index(lang)

    def t(self, key: str) -> str:
        return L[key][self.i]

    def value(self, column: str, v: Any) -> str:
        if _missing(v) or v == "":
            return self.t("unknown")
        table = VALUES.get(column, {})
        return table[str(v)][self.i] if str(v) in table else str(v)

    def num(self, v: Any, digits: int = 1, unit: str = "") -> str:
        if _missing(v):
            return self.t("unknown")
        text = f"{float(v):,.{digits}f}"
        if self.lang == "pl":  # 12 345,6
            text = text.replace(",", "\u00a0").replace(".", ",")
        return f"{text}\u00a0{unit}" if unit else text

    def dist(self, v: Any) -> str:
        if _missing(v):
            return self.t("unknown")
        v = float(v)
        return self.num(v, 0, "m") if v < 1000 else self.num(v / 1000, 1, "km")

    def share(self, v: Any) -> str:
        return self.t("unknown") if _missing(v) else self.num(100 * float(v), 0, "%")

    def flag(self, v: Any) -> str:
        if _missing(v):
            return self.t("unknown")
        return self.t("yes") if bool(v) else self.t("no")


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------------------
# Reading the store
# --------------------------------------------------------------------------------------


def load_site(store: str | Path, site_id: str) -> gpd.GeoDataFrame:
    """The store's row for ``site_id`` (one-row GeoDataFrame, EPSG:2180).

    Raises
    ------
    UnknownSiteError
        When no site has that ID.
    """
    from omw_sites.store import read_sites

    quoted = str(site_id).replace("'", "''")
    row = read_sites(store, where=f"site_id = '{quoted}'")
    if row.empty:
        msg = (
            f"site {site_id!r} is not in the store {store}; "
            "list site IDs with `omw-sites top --profile NAME`"
        )
        raise UnknownSiteError(msg)
    return row.iloc[:1]


def _profiles(info: dict[str, Any], columns: pd.Index) -> list[tuple[str, str]]:
    """(name, title) of every profile scored in the store, run-info order first."""
    found = [c[len("rank_") :] for c in columns if c.startswith("rank_")]
    titled = {p["name"]: p.get("title", p["name"]) for p in info.get("profiles", [])}
    ordered = [n for n in titled if n in found] + sorted(n for n in found if n not in titled)
    return [(n, titled.get(n, n)) for n in ordered]


def _eligible_counts(store: str | Path, profiles: list[str]) -> dict[str, int]:
    from omw_sites.store import read_sites

    if not profiles:
        return {}
    ranks = read_sites(store, columns=[rank_col(p) for p in profiles], read_geometry=False)
    return {p: int((ranks[rank_col(p)].fillna(0) > 0).sum()) for p in profiles}


def _data_date(info: dict[str, Any], column: str) -> str:
    meta = info.get("columns", {}).get(column, {})
    if meta.get("data_date"):
        return str(meta["data_date"])
    dates = info.get("data_dates", {})
    found = [dates[s] for s in column_source(column) if s in dates]
    return min(found) if found else ""


# --------------------------------------------------------------------------------------
# The location map (inline SVG)
# --------------------------------------------------------------------------------------


def _svg_d(geom: Any, tf: Any) -> str:
    """SVG path data of a (multi)polygon or (multi)linestring after ``tf``."""
    parts = []
    for part in shapely.get_parts(np.atleast_1d(geom)):
        if part is None or part.is_empty:
            continue
        if part.geom_type == "Polygon":
            rings = [part.exterior, *part.interiors]
            close = " Z"
        elif part.geom_type in ("LineString", "LinearRing"):
            rings, close = [part], ""
        else:
            continue
        for ring in rings:
            xy = tf(np.asarray(ring.coords)[:, :2])
            pts = " L".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(f"M{pts}{close}")
    return " ".join(parts)


def _read_near(store: str | Path, name: str, bbox: tuple[float, ...]) -> gpd.GeoDataFrame | None:
    from omw_sites.store import list_layers, read_layer

    if name not in list_layers(store):
        return None
    try:
        return read_layer(store, name, bbox=bbox)
    except Exception:  # noqa: BLE001 - a missing context layer must not break the sheet
        return None


def location_svg(store: str | Path, site: gpd.GeoDataFrame, fmt: _Fmt) -> str:
    """An inline SVG map of the site with neighbouring sites and reference layers."""
    from omw_sites.store import read_sites

    geom = site.geometry.iloc[0]
    minx, miny, maxx, maxy = geom.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = max(maxx - minx, (maxy - miny) * MAP_W / MAP_H) / 2 + PAD_M
    half_w, half_h = half, half * MAP_H / MAP_W
    bbox = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    scale = MAP_W / (2 * half_w)

    def tf(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(((xy[:, 0] - bbox[0]) * scale, (bbox[3] - xy[:, 1]) * scale))

    layers = []
    styles = {
        "flood": 'fill="#9ecae1" fill-opacity="0.45" stroke="none"',
        "natura2000": 'fill="#a1d99b" fill-opacity="0.45" stroke="#31a354" stroke-width="0.6"',
        "roads_main": 'fill="none" stroke="#e6550d" stroke-width="2.2"',
        "rail": 'fill="none" stroke="#333" stroke-width="1.4" stroke-dasharray="6 3"',
        "utilities": 'fill="none" stroke="#756bb1" stroke-width="0.8" stroke-opacity="0.7"',
    }
    for name, style in styles.items():
        gdf = _read_near(store, name, bbox)
        if gdf is not None and len(gdf):
            d = _svg_d(gdf.geometry.to_numpy(), tf)
            layers.append(f'<path class="{name}" d="{d}" {style} fill-rule="evenodd"/>')
    around = read_sites(store, bbox=bbox, columns=["site_id"])
    around = around[around["site_id"] != site["site_id"].iloc[0]]
    if len(around):
        d = _svg_d(around.geometry.to_numpy(), tf)
        layers.append(
            f'<path class="neighbours" d="{d}" fill="#bbb" fill-opacity="0.5" '
            'stroke="#777" stroke-width="0.7" fill-rule="evenodd"/>'
        )
    layers.append(
        f'<path class="site" d="{_svg_d(geom, tf)}" fill="#e31a1c" fill-opacity="0.35" '
        'stroke="#b10026" stroke-width="2.5" fill-rule="evenodd"/>'
    )
    # scale bar: a round length near a quarter of the width
    target = 2 * half_w / 4
    bar_m = 10 ** math.floor(math.log10(target))
    bar_m *= 5 if target / bar_m >= 5 else 2 if target / bar_m >= 2 else 1
    bar_px = bar_m * scale
    label = fmt.dist(bar_m)
    y0 = MAP_H - 14
    scalebar = (
        f'<g class="scalebar"><rect x="10" y="{y0 - 6}" width="{bar_px:.1f}" height="6" '
        f'fill="#222"/><text x="{bar_px + 16:.1f}" y="{y0}" font-size="12">{label}</text></g>'
    )
    north = (
        f'<g class="north"><path d="M{MAP_W - 20},10 L{MAP_W - 27},30 L{MAP_W - 13},30 Z" '
        f'fill="#222"/><text x="{MAP_W - 24}" y="44" font-size="12">N</text></g>'
    )
    return (
        f'<svg class="location" xmlns="http://www.w3.org/2000/svg" width="{MAP_W}" '
        f'height="{MAP_H}" viewBox="0 0 {MAP_W} {MAP_H}" role="img" '
        f'aria-label="{html.escape(fmt.t("location"))}">'
        f'<rect width="{MAP_W}" height="{MAP_H}" fill="#f7f7f2"/>{"".join(layers)}'
        f"{scalebar}{north}</svg>"
    )


def overview_svg(store: str | Path, site: gpd.GeoDataFrame, size: int = 220) -> str:
    """A small SVG of the region's gminy with the site marked (empty if no gminy layer)."""
    from omw_sites.store import list_layers, read_layer

    if "gminy" not in list_layers(store):
        return ""
    gminy = read_layer(store, "gminy")
    if gminy.empty:
        return ""
    minx, miny, maxx, maxy = gminy.total_bounds
    scale = size / max(maxx - minx, maxy - miny)
    h = (maxy - miny) * scale

    def tf(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(((xy[:, 0] - minx) * scale, (maxy - xy[:, 1]) * scale))

    simple = shapely.simplify(gminy.geometry.to_numpy(), 1.0 / scale)
    own = str(site["teryt"].iloc[0])
    mine = gminy["teryt"].astype(str).to_numpy() == own
    d_all = _svg_d(simple[~mine], tf)
    d_own = _svg_d(simple[mine], tf)
    c = site.geometry.iloc[0].centroid
    px, py = tf(np.array([[c.x, c.y]]))[0]
    return (
        f'<svg class="overview" xmlns="http://www.w3.org/2000/svg" width="{size}" '
        f'height="{h:.0f}" viewBox="0 0 {size} {h:.0f}">'
        f'<path d="{d_all}" fill="#eee" stroke="#999" stroke-width="0.6"/>'
        f'<path d="{d_own}" fill="#fdd0a2" stroke="#666" stroke-width="1"/>'
        f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="#e31a1c" stroke="#fff"/></svg>'
    )


# --------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------


def _parcel_parts(pid: str) -> tuple[str, str, str]:
    """(cadastral unit WWPPGG_R, precinct OOOO, parcel number) of an EGiB parcel ID."""
    bits = pid.split(".")
    if len(bits) >= 3:
        return bits[0], bits[1], bits[-1]
    return pid, "", ""


def _rows(rows: list[tuple[str, str, str]], fmt: _Fmt) -> str:
    head = (
        f"<tr><th>{fmt.t('figure')}</th><th>{fmt.t('value')}</th><th>{fmt.t('data_date')}</th></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td>"
        f'<td class="date">{html.escape(c)}</td></tr>'
        for a, b, c in rows
    )
    return f"<table>{head}{body}</table>"


_CSS = """
@page { size: A4; margin: 12mm; }
body { font-family: "DejaVu Sans", system-ui, sans-serif; font-size: 11px; color: #222;
       margin: 0 auto; max-width: 190mm; }
h1 { font-size: 20px; margin: 0 0 2px; color: #b10026; }
h2 { font-size: 14px; border-bottom: 2px solid #b10026; margin: 14px 0 4px;
     break-after: avoid; }
table { border-collapse: collapse; width: 100%; break-inside: auto; }
th, td { border: 1px solid #ccc; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.date { color: #666; white-space: nowrap; width: 6em; }
.meta { color: #555; }
.maps { display: flex; gap: 10px; align-items: flex-start; }
.note { color: #666; font-size: 10px; }
section { break-inside: avoid; }
"""


def render_sheet(store: str | Path, site_id: str, lang: str = "pl") -> str:
    """The site sheet of ``site_id`` as a self-contained HTML page.

    Parameters
    ----------
    store : the store GeoPackage
    site_id : site identifier (``S`` + 10 hex digits)
    lang : ``"pl"`` or ``"en"``

    Raises
    ------
    UnknownSiteError
        ``site_id`` is not in the store.
    ValueError
        ``lang`` is not supported.
    """
    from omw_sites.store import read_run_info

    fmt = _Fmt(lang)
    site = load_site(store, site_id)
    info = read_run_info(store)
    r = site.iloc[0]
    dd = lambda col: _data_date(info, col)  # noqa: E731
    t = fmt.t
    esc = html.escape

    centroid = site.geometry.iloc[0].centroid
    wgs = gpd.GeoSeries([centroid], crs=site.crs).to_crs("EPSG:4326").iloc[0]
    location = [
        (t("gmina"), f"{r['gmina']} ({r['teryt']})", dd("teryt")),
        (t("centroid_2180"), f"x {centroid.x:.0f}, y {centroid.y:.0f}", dd("parcels")),
        (t("centroid_wgs"), f"{wgs.y:.5f}° N, {wgs.x:.5f}° E", dd("parcels")),
    ]

    parcel_ids = [p.strip() for p in str(r.get("parcel_ids") or "").split(",") if p.strip()]
    kws = str(r.get("kw_numbers") or "").split(",")
    kws = [k.strip() for k in kws] if len(kws) == len(parcel_ids) else [""] * len(parcel_ids)
    parcel_rows = "".join(
        "<tr>"
        + "".join(f"<td>{esc(v)}</td>" for v in (pid, *_parcel_parts(pid), kw or t("unknown")))
        + "</tr>"
        for pid, kw in zip(parcel_ids, kws, strict=True)
    )
    parcels_table = (
        f"<table><tr><th>{t('parcel_id')}</th><th>{t('unit')}</th><th>{t('precinct')}</th>"
        f"<th>{t('number')}</th><th>{t('kw')}</th></tr>{parcel_rows}</table>"
    )
    area = [
        (t("area_ha"), fmt.num(r.get("area_ha"), 2, "ha"), dd("area_ha")),
        (
            t("registered_area_ha"),
            fmt.num(r.get("registered_area_ha"), 2, "ha"),
            dd("registered_area_ha"),
        ),
        (t("n_parcels"), fmt.num(r.get("n_parcels"), 0), dd("n_parcels")),
        (t("ownership"), fmt.value("ownership", r.get("ownership")), dd("ownership")),
    ]

    planning = [
        (
            t("planning_instrument"),
            fmt.value("planning_instrument", r.get("planning_instrument")),
            dd("zoning_symbol"),
        ),
        (t("zoning_symbol"), fmt.value("", r.get("zoning_symbol")), dd("zoning_symbol")),
        (t("zoning_class"), fmt.value("", r.get("zoning_class")), dd("zoning_class")),
        (t("zoning_share"), fmt.share(r.get("zoning_share")), dd("zoning_share")),
        (t("zoning_classes"), fmt.value("", r.get("zoning_classes")), dd("zoning_classes")),
        (t("zoning_plan"), fmt.value("", r.get("zoning_plan")), dd("zoning_plan")),
        (t("zoning_adopted"), fmt.value("", r.get("zoning_adopted")), dd("zoning_adopted")),
        (t("plan_zone"), fmt.value("", r.get("plan_zone")), dd("plan_zone")),
        (t("no_plan_ogolny"), fmt.flag(r.get("no_plan_ogolny")), dd("no_plan_ogolny")),
    ]

    util_rows = []
    for net in ("water", "sewer", "power", "gas", "heat", "telecom"):
        cap = []
        if f"{net}_diameter_mm" in r and not _missing(r.get(f"{net}_diameter_mm")):
            cap.append(f"{t('diameter')} {fmt.num(r[f'{net}_diameter_mm'], 0, 'mm')}")
        if net == "power":
            cap.append(f"{t('voltage')}: {fmt.value('power_voltage', r.get('power_voltage'))}")
            cap.append(f"{t('substation')} {fmt.dist(r.get('dist_substation_m'))}")
            cap.append(f"{t('free_capacity')} {fmt.num(r.get('power_capacity_mw'), 1, 'MW')}")
        cells = (
            t(net),
            fmt.flag(r.get(f"{net}_on_site")),
            fmt.dist(r.get(f"dist_{net}_m")),
            fmt.dist(r.get(f"dist_{net}_planned_m")),
            "; ".join(cap),
            dd(f"dist_{net}_m"),
        )
        util_rows.append(
            "<tr>"
            + "".join(f"<td>{esc(c)}</td>" for c in cells[:-1])
            + f'<td class="date">{esc(cells[-1])}</td></tr>'
        )
    utilities = (
        f"<table><tr><th>{t('network')}</th><th>{t('on_site')}</th><th>{t('dist_existing')}</th>"
        f"<th>{t('dist_planned')}</th><th>{t('capacity')}</th><th>{t('data_date')}</th></tr>"
        f"{''.join(util_rows)}</table>"
    )

    acc_rows = []
    for key, tcol, dcol in (
        ("junction", "time_junction_min", "dist_junction_m"),
        ("centre", "time_centre_min", "dist_centre_m"),
        ("airport", "time_airport_min", "dist_airport_m"),
        ("rail_freight", "time_rail_freight_min", "dist_rail_freight_m"),
        ("station", "time_station_min", "dist_station_m"),
    ):
        name = t(key)
        if key == "junction" and not _missing(r.get("junction_name")) and r.get("junction_name"):
            name += f" ({r['junction_name']})"
        acc_rows.append(
            f"<tr><td>{esc(name)}</td><td>{esc(fmt.num(r.get(tcol), 1, 'min'))}</td>"
            f'<td>{esc(fmt.dist(r.get(dcol)))}</td><td class="date">{esc(dd(tcol))}</td></tr>'
        )
    access = (
        f"<table><tr><th>{t('destination')}</th><th>{t('time')}</th><th>{t('distance')}</th>"
        f"<th>{t('data_date')}</th></tr>{''.join(acc_rows)}</table>"
        + _rows([(t("access_leg_m"), fmt.dist(r.get("access_leg_m")), dd("access_leg_m"))], fmt)
    )

    constraints = [
        (t("flood_share"), fmt.share(r.get("flood_share")), dd("flood_share")),
        (t("natura_share"), fmt.share(r.get("natura_share")), dd("natura_share")),
        (t("forest_share"), fmt.share(r.get("forest_share")), dd("forest_share")),
        (t("dist_hv_line_m"), fmt.dist(r.get("dist_hv_line_m")), dd("dist_hv_line_m")),
        (t("hv_corridor_share"), fmt.share(r.get("hv_corridor_share")), dd("hv_corridor_share")),
        (t("buildable_share"), fmt.share(r.get("buildable_share")), dd("buildable_share")),
        (t("slope_mean_pct"), fmt.num(r.get("slope_mean_pct"), 1, "%"), dd("slope_mean_pct")),
        (t("slope_max_pct"), fmt.num(r.get("slope_max_pct"), 1, "%"), dd("slope_max_pct")),
        (t("compactness"), fmt.num(r.get("compactness"), 2), dd("compactness")),
        (t("usable_width_m"), fmt.dist(r.get("usable_width_m")), dd("usable_width_m")),
    ]

    profiles = _profiles(info, site.columns)
    counts = _eligible_counts(store, [p for p, _ in profiles])
    score_rows = []
    for name, title in profiles:
        rank = r.get(rank_col(name))
        excluded = str(r.get(excluded_col(name)) or "")
        if _missing(rank) or int(rank) <= 0:
            rank_text = f"{t('excluded')}: {excluded}" if excluded else t("excluded")
        else:
            rank_text = f"{int(rank)} {t('of')} {counts.get(name, 0)}"
        cells = (
            f"{title} ({name})",
            fmt.num(r.get(score_col(name)), 3),
            rank_text,
            fmt.value("", r.get(f"tier_{name}")),
            str(r.get(f"drivers_{name}") or ""),
            str(r.get(f"gaps_{name}") or ""),
        )
        score_rows.append(
            "<tr>"
            + "".join(
                f"<td{' lang=en' if i >= 4 else ''}>{esc(c)}</td>" for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    scores = (
        f"<table><tr><th>{t('profile')}</th><th>{t('score')}</th><th>{t('rank')}</th>"
        f"<th>{t('tier')}</th><th>{t('drivers')}</th><th>{t('gaps')}</th></tr>"
        f"{''.join(score_rows)}</table>"
        + (f'<p class="note">{t("drivers_note")}</p>' if lang == "pl" else "")
    )
    offer = _rows([(t("price"), t("offer_none"), ""), (t("contact"), t("offer_none"), "")], fmt)
    sources = "".join(
        f"<tr><td>{esc(LAYER_NAMES.get(k, (k, k))[fmt.i])}</td><td>{esc(str(v))}</td></tr>"
        for k, v in sorted(info.get("data_dates", {}).items())
    )
    sources_table = (
        f"<table><tr><th>{t('layer')}</th><th>{t('data_date')}</th></tr>{sources}</table>"
    )
    today = dt.date.today().isoformat()
    sid = esc(str(r["site_id"]))
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<title>{t("title")} {sid}</title><style>{_CSS}</style></head>
<body>
<h1>{t("title")}: {sid}</h1>
<p class="meta">{t("gmina")}: {esc(str(r["gmina"]))} ({esc(str(r["teryt"]))}) ·
{t("generated")}: {today} · {t("run")}: {esc(str(info.get("run_id", "")))}</p>
<section><h2>{t("location")}</h2>
<div class="maps">{location_svg(store, site, fmt)}{overview_svg(store, site)}</div>
<p class="note">{t("map_note")}</p>{_rows(location, fmt)}</section>
<section><h2>{t("area_parcels")}</h2>{_rows(area, fmt)}{parcels_table}</section>
<section><h2>{t("planning")}</h2>{_rows(planning, fmt)}</section>
<section><h2>{t("utilities")}</h2>{utilities}</section>
<section><h2>{t("access")}</h2>{access}</section>
<section><h2>{t("constraints")}</h2>{_rows(constraints, fmt)}</section>
<section><h2>{t("scores")}</h2>{scores}</section>
<section><h2>{t("offer")}</h2>{offer}</section>
<section><h2>{t("sources")}</h2>{sources_table}</section>
</body></html>
"""


# --------------------------------------------------------------------------------------
# PDF and files
# --------------------------------------------------------------------------------------


def html_to_pdf(html_text: str, pdf_path: str | Path, chromium: str | None = None) -> Path:
    """Print an HTML page to PDF with headless Chromium (A4, no header/footer)."""
    exe = chromium or find_chromium()
    pdf_path = Path(pdf_path).resolve()
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="omw-sheet-") as tmp:
        page = Path(tmp) / "sheet.html"
        page.write_text(html_text, encoding="utf-8")
        part = pdf_path.with_suffix(".pdf.part")
        cmd = chromium_command(
            exe,
            Path(tmp) / "profile",
            "--no-pdf-header-footer",
            f"--print-to-pdf={part}",
            page.as_uri(),
        )
        proc = subprocess.run(cmd, capture_output=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
        if proc.returncode != 0 or not part.exists() or part.stat().st_size == 0:
            part.unlink(missing_ok=True)
            err = proc.stderr.decode(errors="replace")[-800:]
            msg = f"Chromium could not print {pdf_path.name} (exit {proc.returncode}): {err}"
            raise RuntimeError(msg)
        os.replace(part, pdf_path)
    return pdf_path


def sheet_pdf(
    store: str | Path,
    site_id: str,
    pdf_path: str | Path,
    lang: str = "pl",
    chromium: str | None = None,
) -> Path:
    """Render the site sheet and print it to ``pdf_path`` with headless Chromium."""
    return html_to_pdf(render_sheet(store, site_id, lang), pdf_path, chromium)


def write_sheet(
    store: str | Path,
    site_id: str,
    out_dir: str | Path,
    lang: str = "pl",
    pdf: bool = False,
) -> dict[str, Path]:
    """Write ``sheet_<site>_<lang>.html`` (and ``.pdf`` with ``pdf``) into ``out_dir``."""
    text = render_sheet(store, site_id, lang)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"sheet_{site_id}_{lang}"
    paths = {"html": out / f"{stem}.html"}
    write_text_atomic(paths["html"], text)
    if pdf:
        paths["pdf"] = html_to_pdf(text, out / f"{stem}.pdf")
    return paths
