"""Site sheet (karta terenu inwestycyjnego): one self-contained HTML page per site, PL or EN.

The sheet reads the store only: the site row, the store's reference layers around it (for
an inline SVG location map — no tiles, no CDN) and the run info (profiles, data dates).
Every figure carries its unit and the data date of the input it was computed from.
This module prepares the figures section by section; ``templates/sheet.html.j2`` lays
them out. ``sheet_pdf`` prints the page to PDF with headless Chromium.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from omw_sites.browser import CHROMIUM_TIMEOUT_S, chromium_command, find_chromium
from omw_sites.files import output_mode, write_text_atomic
from omw_sites.i18n import N_
from omw_sites.layers import column_source, excluded_col, rank_col, score_col
from omw_sites.reports.formatting import LANGS, Formatter, date_text, missing
from omw_sites.reports.sheet_maps import location_svg, overview_svg, parcel_shapes
from omw_sites.reports.sheet_offer import (
    nearest_names,
    offer_rows,
    public_documents,
    road_number,
    title_parts,
)
from omw_sites.reports.templating import render
from omw_sites.scoring.explain import readiness_rules, site_drivers, site_gaps
from omw_sites.scoring.profiles import Profile
from omw_sites.store import StoreError

__all__ = ["LANGS", "UnknownSiteError", "load_site", "render_sheet", "sheet_pdf", "write_sheet"]

Row = tuple[str, str, str]  # (figure, value, data date)
DataDate = Callable[[str], str]


class UnknownSiteError(StoreError, LookupError):
    """The site ID is not in the store."""


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
# The figures, section by section
# --------------------------------------------------------------------------------------


def _parcel_parts(pid: str) -> tuple[str, str, str]:
    """(cadastral unit WWPPGG_R, precinct OOOO, parcel number) of an EGiB parcel ID."""
    bits = pid.split(".")
    if len(bits) >= 3:
        return bits[0], bits[1], bits[-1]
    return pid, "", ""


def _location(site: gpd.GeoDataFrame, fmt: Formatter, dd: DataDate) -> list[Row]:
    r, t = site.iloc[0], fmt.t
    centroid = site.geometry.iloc[0].centroid
    wgs = gpd.GeoSeries([centroid], crs=site.crs).to_crs("EPSG:4326").iloc[0]
    return [
        (t("Municipality (gmina)"), f"{r['gmina']} ({r['teryt']})", dd("teryt")),
        (t("Site centre (EPSG:2180)"), f"x {centroid.x:.0f}, y {centroid.y:.0f}", dd("parcels")),
        (
            t("Site centre (WGS 84)"),
            f"{fmt.num(wgs.y, 5)}° N, {fmt.num(wgs.x, 5)}° E",
            dd("parcels"),
        ),
    ]


def _area(r: pd.Series, fmt: Formatter, dd: DataDate) -> list[Row]:
    t = fmt.t
    return [
        (t("Area (polygon)"), fmt.num(r.get("area_ha"), 2, "ha"), dd("area_ha")),
        (
            t("Registered area (EGiB)"),
            fmt.num(r.get("registered_area_ha"), 2, "ha"),
            dd("registered_area_ha"),
        ),
        (t("Number of parcels"), fmt.num(r.get("n_parcels"), 0), dd("n_parcels")),
        (t("Ownership"), fmt.value("ownership", r.get("ownership")), dd("ownership")),
    ]


def _parcels(r: pd.Series, fmt: Formatter) -> list[dict[str, str]]:
    """One row per parcel: its ID, the ID's parts and the land-register number."""
    ids = [p.strip() for p in str(r.get("parcel_ids") or "").split(",") if p.strip()]
    kws = str(r.get("kw_numbers") or "").split(",")
    kws = [k.strip() for k in kws] if len(kws) == len(ids) else [""] * len(ids)
    rows = []
    for i, (pid, kw) in enumerate(zip(ids, kws, strict=True), start=1):
        unit, precinct, number = _parcel_parts(pid)
        rows.append(
            {
                "no": str(i),
                "id": pid,
                "unit": unit,
                "precinct": precinct,
                "number": number,
                "kw": kw or fmt.t("no data"),
            }
        )
    return rows


PLANNING = (  # (column, label)
    ("zoning_symbol", N_("Zoning symbol (MPZP)")),
    ("zoning_class", N_("Designation class")),
    ("zoning_share", N_("Share of the main designation")),
    ("zoning_classes", N_("All designations (shares)")),
    ("zoning_plan", N_("Act (local plan, MPZP)")),
    ("zoning_adopted", N_("Adopted on")),
    ("plan_zone", N_("Plan ogólny zone")),
)


def _planning(r: pd.Series, fmt: Formatter, dd: DataDate) -> list[Row]:
    t = fmt.t
    rows = [
        (
            t("Planning instrument"),
            fmt.value("planning_instrument", r.get("planning_instrument")),
            dd("zoning_symbol"),
        )
    ]
    for col, label in PLANNING:
        value = fmt.share(r.get(col)) if col == "zoning_share" else fmt.value("", r.get(col))
        if col == "zoning_adopted" and not missing(r.get(col)) and r.get(col):
            value = date_text(r.get(col), fmt.lang)
        if col == "zoning_classes" and fmt.lang == "pl":  # "P/U 0.75, MN 0.25"
            value = value.replace(".", ",")
        rows.append((t(label), value, dd(col)))
    rows.append(
        (t("Gmina has no plan ogólny"), fmt.flag(r.get("no_plan_ogolny")), dd("no_plan_ogolny"))
    )
    return rows


NETWORKS = (  # (network, its name)
    ("water", N_("water")),
    ("sewer", N_("sewer")),
    ("power", N_("power")),
    ("gas", N_("gas")),
    ("heat", N_("district heating")),
    ("telecom", N_("telecom")),
)


def _utilities(r: pd.Series, fmt: Formatter, dd: DataDate) -> list[dict[str, str]]:
    t = fmt.t
    rows = []
    for net, net_name in NETWORKS:
        cap = []
        if f"{net}_diameter_mm" in r and not missing(r.get(f"{net}_diameter_mm")):
            cap.append(f"{t('diameter')} {fmt.num(r[f'{net}_diameter_mm'], 0, 'mm')}")
        if net == "power":
            cap.append(f"{t('voltage')}: {fmt.value('power_voltage', r.get('power_voltage'))}")
            cap.append(f"{t('substation')} {fmt.dist(r.get('dist_substation_m'))}")
            cap.append(f"{t('free capacity')} {fmt.num(r.get('power_capacity_mw'), 1, 'MW')}")
        rows.append(
            {
                "network": t(net_name),
                "on_site": fmt.flag(r.get(f"{net}_on_site")),
                "existing": fmt.dist(r.get(f"dist_{net}_m")),
                "planned": fmt.dist(r.get(f"dist_{net}_planned_m")),
                "capacity": "; ".join(cap),
                "date": dd(f"dist_{net}_m"),
            }
        )
    return rows


ACCESS = (  # (key of the nearest name, label, travel time column, distance column)
    ("junction", N_("motorway/expressway junction"), "time_junction_min", "dist_junction_m"),
    ("centre", N_("Warsaw centre"), "time_centre_min", "dist_centre_m"),
    ("airport", N_("airport"), "time_airport_min", "dist_airport_m"),
    ("rail_freight", N_("rail freight terminal"), "time_rail_freight_min", "dist_rail_freight_m"),
    ("station", N_("passenger rail station"), "time_station_min", "dist_station_m"),
)


def _access(
    r: pd.Series, fmt: Formatter, dd: DataDate, names: dict[str, str]
) -> list[dict[str, str]]:
    rows = []
    for key, label, tcol, dcol in ACCESS:
        name = fmt.t(label)
        if names.get(key):
            name += f": {names[key]}"
        rows.append(
            {
                "destination": name,
                "time": fmt.num(r.get(tcol), 1, "min"),
                "distance": fmt.dist(r.get(dcol)),
                "date": dd(tcol),
            }
        )
    return rows


ROADS = (  # (label, number column, distance column, number prefix)
    (N_("National road"), "national_road", "dist_national_road_m", "DK"),
    (N_("Voivodeship road"), "voivodeship_road", "dist_voivodeship_road_m", "DW"),
)


def _roads(r: pd.Series, fmt: Formatter) -> list[dict[str, str]]:
    """The nearest national and voivodeship road by number (stores measured since issue
    21; none for older ones)."""
    rows = []
    for label, ncol, dcol, prefix in ROADS:
        if ncol not in r.index and dcol not in r.index:
            continue
        number = "" if missing(r.get(ncol)) else str(r.get(ncol) or "").strip()
        rows.append(
            {
                "destination": f"{fmt.t(label)}: {road_number(prefix, number)}"
                if number
                else fmt.t(label),
                "time": "–",
                "distance": fmt.dist(r.get(dcol)),
                "date": "",
            }
        )
    return rows


def _access_road(r: pd.Series, fmt: Formatter, dd: DataDate) -> list[Row]:
    """How far the site is from its access road, the road's class and carriageway width."""
    t = fmt.t
    rows = [
        (t("Distance from the access road"), fmt.dist(r.get("access_leg_m")), dd("access_leg_m"))
    ]
    if "access_road_class" in r.index:
        cls = "" if missing(r.get("access_road_class")) else str(r.get("access_road_class") or "")
        text = f"{cls} — {fmt.value('road_class', cls)}" if cls else t("no data")
        rows.append((t("Access road class (BDOT10k)"), text, dd("access_road_class")))
    if "access_road_width_m" in r.index:
        width = fmt.num(r.get("access_road_width_m"), 1, "m")
        rows.append((t("Access road width"), width, dd("access_road_width_m")))
    return rows


WORKFORCE = (  # (column, label)
    ("population_30min", N_("People within 30 min by road")),
    ("workforce_30min", N_("Working-age people (15–64) within 30 min by road")),
    ("population_45min", N_("People within 45 min by road")),
    ("workforce_45min", N_("Working-age people (15–64) within 45 min by road")),
)
PLAN_LIMITS = (  # (column, label, unit, decimals; "share" in %)
    ("max_height_m", N_("Maximum building height"), "m", 1),
    ("max_coverage_share", N_("Maximum building coverage"), "share", 0),
    ("intensity_min", N_("Minimum building intensity"), "", 2),
    ("intensity_max", N_("Maximum building intensity"), "", 2),
    ("min_bio_active_share", N_("Minimum biologically active share"), "share", 0),
)
LAND = (  # (column, label); shares in %
    ("agri_share", N_("Agricultural land (EGiB)")),
    ("soil_i_iii_share", N_("Agricultural soil of classes I–III")),
    ("soil_iv_vi_share", N_("Agricultural soil of classes IV–VI")),
    ("forest_land_share", N_("Forest land (EGiB)")),
    ("built_up_share", N_("Under existing buildings")),
)


def _workforce(r: pd.Series, fmt: Formatter, dd: DataDate) -> list[Row]:
    return [(fmt.t(label), fmt.num(r.get(col), 0), dd(col)) for col, label in WORKFORCE]


def _plan_limits(r: pd.Series, fmt: Formatter, dd: DataDate) -> list[Row]:
    rows = []
    for col, label, unit, digits in PLAN_LIMITS:
        v = r.get(col)
        text = fmt.share(v) if unit == "share" else fmt.num(v, digits, unit)
        rows.append((fmt.t(label), text, dd(col)))
    return rows


def _land(r: pd.Series, fmt: Formatter, dd: DataDate) -> list[Row]:
    rows = [(fmt.t(label), fmt.share(r.get(col)), dd(col)) for col, label in LAND]
    flag = r.get("brownfield")
    if missing(flag):
        kind = fmt.t("no data")
    elif bool(flag):
        kind = fmt.t("brownfield (existing buildings)")
    else:
        kind = fmt.t("greenfield (no buildings)")
    rows.append((fmt.t("Greenfield or brownfield"), kind, dd("brownfield")))
    return rows


def _farmland_consent(r: pd.Series) -> bool:
    v = r.get("soil_i_iii_share")
    return not missing(v) and float(v) > 0


def _constraints(r: pd.Series, fmt: Formatter, dd: DataDate) -> list[Row]:
    t = fmt.t
    return [
        (t("Q1% flood hazard zone"), fmt.share(r.get("flood_share")), dd("flood_share")),
        (t("Natura 2000"), fmt.share(r.get("natura_share")), dd("natura_share")),
        (t("Forest"), fmt.share(r.get("forest_share")), dd("forest_share")),
        (
            t("Distance to HV line (≥ 110 kV)"),
            fmt.dist(r.get("dist_hv_line_m")),
            dd("dist_hv_line_m"),
        ),
        (
            t("Within 30 m of an HV line"),
            fmt.share(r.get("hv_corridor_share")),
            dd("hv_corridor_share"),
        ),
        (t("Buildable share"), fmt.share(r.get("buildable_share")), dd("buildable_share")),
        (t("Mean slope"), fmt.num(r.get("slope_mean_pct"), 1, "%"), dd("slope_mean_pct")),
        (t("Maximum slope"), fmt.num(r.get("slope_max_pct"), 1, "%"), dd("slope_max_pct")),
        (t("Compactness (1 = circle)"), fmt.num(r.get("compactness"), 2), dd("compactness")),
        (t("Usable width"), fmt.dist(r.get("usable_width_m")), dd("usable_width_m")),
    ]


def _explainers(info: dict[str, Any]) -> dict[str, tuple[Profile, dict[str, float]]]:
    """The profiles the run scored with, loaded again, and the weights the run used —
    only those whose file is unchanged since the run (same hash): the drivers and gaps
    are rendered from them in the sheet's language."""
    from omw_sites.scoring.profiles import ProfileError, load_profiles

    out = {}
    for rec in info.get("profiles", []):
        try:
            prof = load_profiles([str(rec.get("name"))])[0]
        except (ProfileError, OSError, ValueError):
            continue
        if prof.hash == rec.get("hash"):
            weights = info.get("scoring", {}).get(prof.name, {}).get("weights", {})
            out[prof.name] = (prof, dict(weights))
    return out


def _scores(
    r: pd.Series,
    fmt: Formatter,
    profiles: list[tuple[str, str]],
    counts: dict[str, int],
    explainers: dict[str, tuple[Profile, dict[str, float]]],
) -> list[dict[str, Any]]:
    """Score, rank among the eligible sites (or why excluded), readiness with its
    conditions, drivers and gaps in the sheet's language."""
    t = fmt.t
    rows = []
    for name, title in profiles:
        rank = r.get(rank_col(name))
        excluded = str(r.get(excluded_col(name)) or "")
        if missing(rank) or int(rank) <= 0:
            rank_text = f"{t('excluded')}: {excluded}" if excluded else t("excluded")
        else:
            rank_text = f"{int(rank)} {t('of')} {counts.get(name, 0)}"
        row: dict[str, Any] = {
            "profile": f"{fmt.profile(name, title)} ({name})",
            "score": fmt.num(r.get(score_col(name)), 3),
            "rank": rank_text,
            "tier": fmt.value("", r.get(f"tier_{name}")),
            "drivers": [d for d in str(r.get(f"drivers_{name}") or "").split("; ") if d],
            "gaps": [g for g in str(r.get(f"gaps_{name}") or "").split("; ") if g],
            "rules": [],
            "lang": "en",
        }
        if name in explainers:
            prof, weights = explainers[name]
            row["drivers"] = site_drivers(r, prof, fmt.lang, weights)
            row["gaps"] = site_gaps(r, prof, fmt.lang)
            row["rules"] = readiness_rules(prof, fmt.lang)
            row["lang"] = fmt.lang
        rows.append(row)
    return rows


MAP_KEY = {  # what each symbol of the location map is, for its key
    "site": N_("site"),
    "neighbours": N_("neighbouring sites"),
    "roads_main": N_("main roads (A, S, GP)"),
    "rail": N_("railway"),
    "utilities": N_("utility lines (GESUT)"),
    "flood": N_("Q1% flood zone"),
    "natura2000": N_("Natura 2000"),
    "parcel": N_("number on the map → parcel (table below)"),
}


# --------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------


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

    fmt = Formatter(lang)
    site = load_site(store, site_id)
    info = read_run_info(store)
    r = site.iloc[0]

    def dd(column: str) -> str:
        return _data_date(info, column)

    profiles = _profiles(info, site.columns)
    counts = _eligible_counts(store, [p for p, _ in profiles])
    parcels = _parcels(r, fmt)
    shapes = parcel_shapes(info, [p["id"] for p in parcels])
    numbers = {p["id"]: int(p["no"]) for p in parcels}
    location_map, drawn = location_svg(store, site, fmt, shapes, numbers)
    page = render(
        "sheet.html.j2",
        lang,
        key_words={k: fmt.t(v) for k, v in MAP_KEY.items()},
        site_id=str(r["site_id"]),
        title=title_parts(r, fmt),
        gmina=str(r["gmina"]),
        teryt=str(r["teryt"]),
        today=date_text(dt.date.today().isoformat(), lang),
        run_id=str(info.get("run_id", "")),
        location_map=location_map,
        map_key=drawn,
        parcels_drawn="parcel" in drawn,
        overview_map=overview_svg(store, site, lang),
        location=_location(site, fmt, dd),
        area=_area(r, fmt, dd),
        parcels=parcels,
        planning=_planning(r, fmt, dd),
        utilities=_utilities(r, fmt, dd),
        access=_access(r, fmt, dd, nearest_names(store, site)) + _roads(r, fmt),
        access_leg=_access_road(r, fmt, dd),
        workforce=_workforce(r, fmt, dd),
        plan_limits=_plan_limits(r, fmt, dd),
        land=_land(r, fmt, dd),
        farmland_consent=_farmland_consent(r),
        constraints=_constraints(r, fmt, dd),
        scores=_scores(r, fmt, profiles, counts, _explainers(info)),
        offer=offer_rows(r, fmt),
        documents=public_documents(r.get("documents")),
        sources=[(fmt.layer(k), str(v)) for k, v in sorted(info.get("data_dates", {}).items())],
    )
    return str(page)


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
        os.chmod(part, output_mode())
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
