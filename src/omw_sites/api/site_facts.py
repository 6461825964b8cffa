"""What the catalogue's site page and comparison show of a site, in one language.

Everything is read from the API's in-memory snapshot (documents there are already the
public ones): the facts with units, the offer, access with the names of the nearest
junction, airport and station and the numbers of the nearest national and voivodeship
roads, utilities, the workforce within 30 and 45 minutes, what the plan allows, the land
(farmland, soil classes, buildings), constraints, scores per profile with the readiness
tier explained check by check, and the data dates. ``FACTS`` is the one list
of rows the comparison shows and exports, so the page, its CSV and its PDF agree.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import shapely
from babel.numbers import format_decimal

from omw_sites import i18n
from omw_sites.api.catalog import Snapshot
from omw_sites.layers import SITES, excluded_col, rank_col, score_col
from omw_sites.reports.sheet_offer import road_number

NETWORKS = ("water", "sewer", "power", "gas", "heat", "telecom")
MAX_COMPARED = 10


class Words:
    """Texts and numbers in one language (the message catalogue of ``omw_sites.i18n``)."""

    def __init__(self, lang: str) -> None:
        if lang not in i18n.LANGUAGES:
            msg = f"unsupported language {lang!r}; supported: {', '.join(i18n.LANGUAGES)}"
            raise ValueError(msg)
        self.lang = lang

    def t(self, msgid: str, **values: Any) -> str:
        return i18n.gettext(self.lang, msgid, **values)

    def value(self, kind: str, code: Any) -> str:
        """A stored code (``municipal``, ``sold`` …) in words (message id ``kind:code``);
        a code the catalogue does not know as it is."""
        msgid = f"{kind}:{code}"
        text = self.t(msgid)
        return str(code) if text == msgid else text

    def num(self, v: Any, digits: int = 1, unit: str = "", grouping: bool = True) -> str:
        """``v`` with exactly ``digits`` decimals (``12 345,60 ha`` in Polish); "no data"
        when missing; without thousands separators for spreadsheets (``grouping``)."""
        if v is None or isinstance(v, str) or (isinstance(v, float) and math.isnan(v)):
            return self.t("no data") if grouping else ""
        pattern = ("#,##0" if grouping else "0") + ("." + "0" * digits if digits > 0 else "")
        text = format_decimal(float(v), format=pattern, locale=self.lang)
        return f"{text}\u00a0{unit}" if unit else text

    def dist(self, v: Any) -> str:
        """Metres under a kilometre, kilometres above."""
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return self.t("no data")
        v = float(v)
        return self.num(v, 0, "m") if v < 1000 else self.num(v / 1000, 1, "km")


class SiteGone(LookupError):
    """No current site has this ID; ``successors`` are the sites made from it, if any."""

    def __init__(self, site_id: str, successors: list[str]) -> None:
        self.site_id = site_id
        self.successors = successors
        if successors:
            msg = f"site {site_id!r} has ended; it continues as {', '.join(successors)}"
        else:
            msg = f"no site {site_id!r} in the inventory"
        super().__init__(msg)


# --------------------------------------------------------------------------------------
# Finding a site
# --------------------------------------------------------------------------------------


def locate(snap: Snapshot, site_id: str) -> int:
    """Row of ``site_id`` in the served site layer; ``SiteGone`` when it is not current."""
    layer = snap.layers[SITES]
    row = layer.index.get(site_id)
    if row is None:
        raise SiteGone(site_id, successors(snap, site_id))
    return row


def successors(snap: Snapshot, site_id: str) -> list[str]:
    """Current sites split or merged from ``site_id`` (their ``derived_from`` names it)."""
    table = snap.layers[SITES].table
    if "derived_from" not in table.columns or not site_id:
        return []
    text = table["derived_from"].fillna("").astype(str)
    whole_id = rf"(?:^|[,\s]){re.escape(site_id)}(?:$|[,\s])"  # never a part of another ID
    hit = text.str.contains(whole_id, regex=True).to_numpy()
    return [str(s) for s in table.loc[hit, "site_id"].tolist()] if hit.any() else []


def record(snap: Snapshot, row: int) -> dict[str, Any]:
    """The site's values as plain Python (NaN, NA and None all become None)."""
    series = snap.layers[SITES].table.iloc[row]
    return {str(k): _plain(v) for k, v in series.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# --------------------------------------------------------------------------------------
# Names and the title
# --------------------------------------------------------------------------------------


def precincts(rec: dict[str, Any]) -> list[str]:
    """Cadastral precinct (obręb) numbers of the site's parcels, in order, unique."""
    out: list[str] = []
    for pid in str(rec.get("parcel_ids") or "").split(","):
        bits = pid.strip().split(".")
        if len(bits) >= 3 and bits[1] not in out:
            out.append(bits[1])
    return out


def designation(rec: dict[str, Any], w: Words) -> str:
    """``P/U (18P/U)``, the plan ogólny zone, or "no plan"."""
    cls, sym = rec.get("zoning_class") or "", rec.get("zoning_symbol") or ""
    if cls or sym:
        return f"{cls} ({sym})" if cls and sym and sym != cls else cls or sym
    if rec.get("plan_zone"):
        return f"{w.t('plan ogólny zone')} {rec['plan_zone']}"
    return w.value("planning_instrument", rec.get("planning_instrument") or "none")


def title(rec: dict[str, Any], w: Words) -> str:
    """Gmina, precinct, hectares and designation: ``Marki, obręb 0014 · 19,84 ha · P/U``."""
    place = str(rec.get("gmina") or rec.get("teryt") or "")
    obr = precincts(rec)
    if obr:
        place += f", {w.t('precinct')} {obr[0]}" + (" +" if len(obr) > 1 else "")
    return f"{place} · {w.num(rec.get('area_ha'), 2, 'ha')} · {designation(rec, w)}"


def nearest_named(
    snap: Snapshot,
    geom: Any,
    layer_name: str,
    stored: Any,
    kind: str | None = None,
    rec: dict[str, Any] | None = None,
    column: str = "",
) -> str:
    """Name of the nearest feature of ``layer_name`` (of that ``kind``, for stations).

    A store measured since issue 21 holds it in the site's ``column`` (the feature the
    ``dist_*`` column measured to; "" when none was found), read as it is. An older store
    lacks the column: the feature nearest to ``geom`` is searched for and named when its
    distance agrees with the ``stored`` figure in metres; "" otherwise."""
    if rec is not None and column and column in rec:
        return str(rec.get(column) or "")
    layer = snap.layers.get(layer_name)
    if layer is None or geom is None or stored is None or not len(layer):
        return ""
    geoms = layer.storage_geometries
    table = layer.table
    keep = np.ones(len(table), dtype=bool)
    if kind is not None and "kind" in table.columns:
        keep = (table["kind"].astype(str) == kind).to_numpy()
    keep = keep & ~shapely.is_missing(geoms)
    if not keep.any():
        return ""
    rows = np.flatnonzero(keep)
    dist = shapely.distance(geom, geoms[rows])
    best = int(np.argmin(dist))
    if abs(float(dist[best]) - float(stored)) > max(5.0, 0.01 * float(stored)):
        return ""
    r = table.iloc[rows[best]]
    name = str(_plain(r.get("name")) or "")
    extra = [str(_plain(r.get(k))) for k in ("road", "iata") if _plain(r.get(k))]
    return f"{name} ({', '.join(extra)})" if name and extra else name


# --------------------------------------------------------------------------------------
# The facts: one definition, shown on the page, compared and exported
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One row of the comparison: a label (msgid), its unit and how to read the value.

    ``get`` returns the raw value (a number in ``unit``, a flag, or text already in the
    page's language); numbers are written with ``digits`` decimals.
    """

    key: str  # the site column, when ``get`` is not given
    label: str
    unit: str = ""
    digits: int = 0
    get: Callable[[dict[str, Any], Words], Any] | None = None

    def value(self, rec: dict[str, Any], w: Words) -> Any:
        return rec.get(self.key) if self.get is None else self.get(rec, w)


def _mapped(name: str) -> Callable[[dict[str, Any], Words], Any]:
    return lambda rec, w: w.value(name, rec.get(name)) if rec.get(name) is not None else None


def _utility(net: str) -> Callable[[dict[str, Any], Words], Any]:
    def get(rec: dict[str, Any], w: Words) -> Any:
        if rec.get(f"{net}_on_site"):
            return 0.0
        return rec.get(f"dist_{net}_m")

    return get


def _share(name: str) -> Callable[[dict[str, Any], Words], Any]:
    def get(rec: dict[str, Any], w: Words) -> Any:
        v = rec.get(name)
        return None if v is None else 100 * float(v)

    return get


FACTS: tuple[Fact, ...] = (
    Fact("gmina", "Gmina", "", 0, lambda r, w: f"{r.get('gmina') or ''} ({r.get('teryt') or ''})"),
    Fact("precinct", "Precinct (obręb)", "", 0, lambda r, w: ", ".join(precincts(r)) or None),
    Fact("area_ha", "Area", "ha", 2),
    Fact("n_parcels", "Number of parcels", "", 0),
    Fact("ownership", "Ownership", "", 0, _mapped("ownership")),
    Fact("designation", "Designation", "", 0, designation),
    Fact("planning_instrument", "Planning instrument", "", 0, _mapped("planning_instrument")),
    Fact("status", "Status", "", 0, lambda r, w: w.value("status", r.get("status") or "available")),
    Fact("price_pln_m2", "Price", "PLN/m²", 2),
    Fact("lease_pln_m2_year", "Lease", "PLN/m²/year", 2),
    Fact("sez_status", "SEZ / Polish Investment Zone", "", 0),
    Fact("contact", "Contact", "", 0),
    Fact("time_junction_min", "Motorway junction, drive", "min", 1),
    Fact("junction_name", "Nearest junction", "", 0),
    Fact("workforce_30min", "Working-age people within 30 min by road", "", 0),
    Fact("population_30min", "People within 30 min by road", "", 0),
    Fact("time_airport_min", "Airport, drive", "min", 1),
    Fact("time_rail_freight_min", "Rail freight terminal, drive", "min", 1),
    Fact("time_station_min", "Passenger station, drive", "min", 1),
    Fact("time_centre_min", "Warsaw centre, drive", "min", 1),
    Fact("util_water", "Water main (0 = on site)", "m", 0, _utility("water")),
    Fact("util_sewer", "Sewer (0 = on site)", "m", 0, _utility("sewer")),
    Fact("util_power", "Power line (0 = on site)", "m", 0, _utility("power")),
    Fact("util_gas", "Gas pipe (0 = on site)", "m", 0, _utility("gas")),
    Fact("util_heat", "District heating (0 = on site)", "m", 0, _utility("heat")),
    Fact("util_telecom", "Telecom line (0 = on site)", "m", 0, _utility("telecom")),
    Fact("power_capacity_mw", "Free substation capacity", "MW", 1),
    Fact("max_height_m", "Maximum building height", "m", 1),
    Fact("max_coverage_share", "Maximum building coverage", "%", 0, _share("max_coverage_share")),
    Fact("flood_share", "Q1% flood hazard zone", "%", 0, _share("flood_share")),
    Fact("natura_share", "Natura 2000", "%", 0, _share("natura_share")),
    Fact("forest_share", "Forest", "%", 0, _share("forest_share")),
    Fact("buildable_share", "Buildable share", "%", 0, _share("buildable_share")),
    Fact("slope_mean_pct", "Mean slope", "%", 1),
)  # fmt: skip


def fact_text(fact: Fact, rec: dict[str, Any], w: Words) -> str:
    """The fact as a person reads it: number with unit in the page's format, or text."""
    v = fact.value(rec, w)
    if v is None or v == "":
        return w.t("no data")
    if isinstance(v, bool):
        return w.t("yes") if v else w.t("no")
    if isinstance(v, int | float):
        if fact.key.startswith("util_"):  # distances: metres, kilometres above 1 km
            return w.dist(v)
        return w.num(v, fact.digits, fact.unit)
    return str(v)


def fact_cell(fact: Fact, rec: dict[str, Any], w: Words) -> str:
    """The fact for a spreadsheet: a bare number (unit in the header) or text."""
    v = fact.value(rec, w)
    if v is None:
        return ""
    if isinstance(v, bool):
        return w.t("yes") if v else w.t("no")
    if isinstance(v, int | float):
        return w.num(v, fact.digits, "", grouping=False)
    return str(v)


def fact_label(fact: Fact, w: Words, with_unit: bool = False) -> str:
    label = w.t(fact.label)
    return f"{label} [{fact.unit}]" if with_unit and fact.unit else label


# --------------------------------------------------------------------------------------
# Offer
# --------------------------------------------------------------------------------------


def documents(rec: dict[str, Any]) -> list[dict[str, str]]:
    """The public documents as ``{title, url}``; only http(s) links (never ``javascript:``)."""
    text = rec.get("documents")
    if not text:
        return []
    try:
        docs = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    out = []
    for d in docs if isinstance(docs, list) else []:
        if not isinstance(d, dict) or not d.get("public", True):
            continue
        url = str(d.get("url") or "")
        if url.lower().startswith(("http://", "https://")):
            out.append({"title": str(d.get("title") or url), "url": url})
    return out


def offer(rec: dict[str, Any], w: Words) -> dict[str, Any]:
    status = str(rec.get("status") or "available")
    rows = []
    if rec.get("price_pln_m2") is not None:
        rows.append((w.t("Price"), w.num(rec["price_pln_m2"], 2, "PLN/m²")))
    if rec.get("lease_pln_m2_year") is not None:
        rows.append((w.t("Lease"), w.num(rec["lease_pln_m2_year"], 2, w.t("PLN/m² a year"))))
    if not rows:
        rows.append((w.t("Price"), w.t("not given — ask the contact below or the gmina office")))
    for key, label in (
        ("sez_status", "SEZ / Polish Investment Zone"),
        ("contact", "Contact"),
        ("notes", "Notes"),
    ):
        if rec.get(key):
            rows.append((w.t(label), str(rec[key])))
    return {
        "status": status,
        "status_text": w.value("status", status),
        "status_date": str(rec.get("status_date") or ""),
        "rows": rows,
        "documents": documents(rec),
        "on_offer": status in ("available", "reserved"),
    }


# --------------------------------------------------------------------------------------
# Access, utilities, constraints (the page's detail tables)
# --------------------------------------------------------------------------------------

ACCESS = (  # (label msgid, time column, distance column, layer with names, name column)
    ("Motorway or expressway junction", "time_junction_min", "dist_junction_m", "junctions",
     "junction_name"),
    ("Airport", "time_airport_min", "dist_airport_m", "airports", "airport_name"),
    ("Rail freight terminal", "time_rail_freight_min", "dist_rail_freight_m", "stations",
     "rail_freight_name"),
    ("Passenger rail station", "time_station_min", "dist_station_m", "stations", "station_name"),
    ("Warsaw centre", "time_centre_min", "dist_centre_m", "", ""),
)  # fmt: skip
ROADS = (  # (label msgid, number column, distance column, number prefix)
    ("National road", "national_road", "dist_national_road_m", "DK"),
    ("Voivodeship road", "voivodeship_road", "dist_voivodeship_road_m", "DW"),
)


def access(snap: Snapshot, rec: dict[str, Any], geom: Any, w: Words) -> list[dict[str, str]]:
    """Drive times and distances to what investors ask for, each named; the nearest
    national and voivodeship roads by number; the road the site is reached from."""
    rows = []
    for label, tcol, dcol, layer, ncol in ACCESS:
        kind = None if layer != "stations" else "freight" if "freight" in dcol else "passenger"
        name = ""
        if layer:
            # stores made before the name columns: search the layer; a junction's name
            # column (with its road number) is older than the others
            column = ncol if ncol != "junction_name" or "junction_road" in rec else ""
            name = nearest_named(snap, geom, layer, rec.get(dcol), kind, rec, column)
        if not name and ncol == "junction_name":
            name = str(rec.get("junction_name") or "")
        rows.append(
            {
                "destination": w.t(label),
                "name": name,
                "time": w.num(rec.get(tcol), 1, "min"),
                "distance": w.dist(rec.get(dcol)),
            }
        )
    for label, ncol, dcol, prefix in ROADS:
        if ncol not in rec and dcol not in rec:
            continue  # a store made before these columns
        number = str(rec.get(ncol) or "")
        rows.append(
            {
                "destination": w.t(label),
                "name": road_number(prefix, number) or w.t("no data"),
                "time": "—",
                "distance": w.dist(rec.get(dcol)),
            }
        )
    if "access_road_class" in rec or "access_road_width_m" in rec:
        rows.append(
            {
                "destination": w.t("Access road"),
                "name": access_road(rec, w),
                "time": "—",
                "distance": w.dist(rec.get("access_leg_m")),
            }
        )
    return rows


def access_road(rec: dict[str, Any], w: Words) -> str:
    """The access road's BDOT10k class in words and its carriageway width:
    ``L — local road, carriageway 6.0 m``; "no data" for what is not known."""
    cls = str(rec.get("access_road_class") or "")
    text = f"{cls} — {w.value('road_class', cls)}" if cls else w.t("class not known")
    width = rec.get("access_road_width_m")
    if width is None:
        return f"{text}, {w.t('carriageway width')}: {w.t('no data')}"
    return f"{text}, {w.t('carriageway width')}: {w.num(width, 1, 'm')}"


def utilities(rec: dict[str, Any], w: Words) -> list[dict[str, str]]:
    rows = []
    for net in NETWORKS:
        cap = []
        if rec.get(f"{net}_diameter_mm") is not None:
            cap.append(f"⌀ {w.num(rec[f'{net}_diameter_mm'], 0, 'mm')}")
        if net == "power":
            if rec.get("power_voltage"):
                cap.append(w.value("power_voltage", rec["power_voltage"]))
            if rec.get("power_capacity_mw") is not None:
                sub = w.dist(rec.get("dist_substation_m"))
                free = w.num(rec["power_capacity_mw"], 1, "MW")
                cap.append(
                    w.t(
                        "substation %(distance)s away, %(capacity)s free",
                        distance=sub,
                        capacity=free,
                    )
                )
        on = rec.get(f"{net}_on_site")
        rows.append(
            {
                "network": w.value("network", net),
                "on_site": w.t("no data") if on is None else w.t("yes") if on else w.t("no"),
                "on_site_flag": "yes" if on else "no",
                "existing": w.dist(rec.get(f"dist_{net}_m")),
                "planned": w.dist(rec.get(f"dist_{net}_planned_m")),
                "capacity": "; ".join(cap),
            }
        )
    return rows


CONSTRAINT_LABELS = {  # column -> label (message id)
    "flood_share": "Q1% flood hazard zone",
    "natura_share": "Natura 2000",
    "forest_share": "Forest",
    "hv_corridor_share": "Within 30 m of a high-voltage line",
    "buildable_share": "Buildable share",
    "dist_hv_line_m": "High-voltage line (≥ 110 kV)",
    "slope_mean_pct": "Mean slope",
    "slope_max_pct": "Maximum slope",
    "usable_width_m": "Usable width",
}


def constraints(rec: dict[str, Any], w: Words) -> list[tuple[str, str]]:
    rows = []
    for col, label in CONSTRAINT_LABELS.items():
        v = rec.get(col)
        if col.endswith("_share"):
            text = w.t("no data") if v is None else w.num(100 * float(v), 0, "%")
        elif col.endswith("_m"):
            text = w.dist(v)
        else:
            text = w.num(v, 1, "%")
        rows.append((w.t(label), text))
    return rows


def planning(rec: dict[str, Any], w: Words) -> list[tuple[str, str]]:
    rows = [
        (w.t("Designation"), designation(rec, w)),
        (
            w.t("Planning instrument"),
            w.value("planning_instrument", rec.get("planning_instrument") or "unknown"),
        ),
    ]
    if rec.get("zoning_share") is not None:
        share = w.num(100 * rec["zoning_share"], 0, "%")
        rows.append((w.t("Share of the main designation"), share))
    if rec.get("zoning_classes"):
        rows.append((w.t("All designations (shares)"), str(rec["zoning_classes"])))
    if rec.get("zoning_plan"):
        plan = str(rec["zoning_plan"])
        if rec.get("zoning_adopted"):
            plan += f" ({w.t('adopted')} {rec['zoning_adopted']})"
        rows.append((w.t("Local plan (MPZP)"), plan))
    if rec.get("plan_zone"):
        rows.append((w.t("plan ogólny zone"), str(rec["plan_zone"])))
    if rec.get("no_plan_ogolny"):
        rows.append((w.t("Plan ogólny"), w.t("the gmina has not adopted one yet")))
    return rows


# --------------------------------------------------------------------------------------
# Workforce, what the plan allows, land (issue 21)
# --------------------------------------------------------------------------------------

WORKFORCE = (  # (column, label msgid)
    ("population_30min", "People within 30 min by road"),
    ("workforce_30min", "Working-age people (15–64) within 30 min by road"),
    ("population_45min", "People within 45 min by road"),
    ("workforce_45min", "Working-age people (15–64) within 45 min by road"),
)
PLAN_LIMITS = (  # (column, label msgid, unit, decimals; "share" shown in %)
    ("max_height_m", "Maximum building height", "m", 1),
    ("max_coverage_share", "Maximum building coverage", "share", 0),
    ("intensity_min", "Minimum building intensity", "", 2),
    ("intensity_max", "Maximum building intensity", "", 2),
    ("min_bio_active_share", "Minimum biologically active share", "share", 0),
)
LAND = (  # (column, label msgid); shares in %
    ("agri_share", "Agricultural land (EGiB)"),
    ("soil_i_iii_share", "Agricultural soil of classes I–III"),
    ("soil_iv_vi_share", "Agricultural soil of classes IV–VI"),
    ("forest_land_share", "Forest land (EGiB)"),
    ("built_up_share", "Under existing buildings"),
)


def _figure(rec: dict[str, Any], col: str, unit: str, digits: int, w: Words) -> str:
    v = rec.get(col)
    if v is None or isinstance(v, str):
        return w.t("no data")
    return w.num(100 * float(v), digits, "%") if unit == "share" else w.num(v, digits, unit)


def workforce(rec: dict[str, Any], w: Words) -> list[tuple[str, str]]:
    """People and working-age people within 30 and 45 minutes by road."""
    return [(w.t(label), _figure(rec, col, "", 0, w)) for col, label in WORKFORCE]


def plan_limits(rec: dict[str, Any], w: Words) -> list[tuple[str, str]]:
    """Height, coverage, intensity and biologically active share the plan sets."""
    return [(w.t(label), _figure(rec, col, u, d, w)) for col, label, u, d in PLAN_LIMITS]


def greenfield(rec: dict[str, Any], w: Words) -> str:
    """Brownfield (buildings stand on the site) or greenfield, in words; "no data"."""
    flag = rec.get("brownfield")
    if flag is None or isinstance(flag, str):
        return w.t("no data")
    return w.t("brownfield (existing buildings)") if flag else w.t("greenfield (no buildings)")


def land(rec: dict[str, Any], w: Words) -> list[tuple[str, str]]:
    """Farmland and its soil classes, forest land, buildings on the site."""
    rows = [(w.t(label), _figure(rec, col, "share", 0, w)) for col, label in LAND]
    rows.append((w.t("Greenfield or brownfield"), greenfield(rec, w)))
    return rows


def needs_farmland_consent(rec: dict[str, Any]) -> bool:
    """Part of the site lies on farmland of soil classes I–III."""
    v = rec.get("soil_i_iii_share")
    return v is not None and not isinstance(v, str) and float(v) > 0


# --------------------------------------------------------------------------------------
# Scores and readiness
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _builtin_profile(name: str, profile_hash: str) -> Any:
    """The built-in profile ``name`` if it is the one the store was scored with (same
    hash); None for a profile from elsewhere (its rules are then not known here)."""
    from omw_sites.scoring.profiles import ProfileError, load_profiles

    try:
        found = load_profiles([name])
    except (ProfileError, OSError, ValueError):
        return None
    return found[0] if found and found[0].hash == profile_hash else None


def profile_of(snap: Snapshot, name: str) -> Any:
    """The scoring profile ``name`` as the store's run used it, or None."""
    for p in snap.run_info.get("profiles", []):
        if isinstance(p, dict) and p.get("name") == name:
            return _builtin_profile(name, str(p.get("hash") or ""))
    return None


def _run_weights(snap: Snapshot, name: str) -> dict[str, float] | None:
    scoring = snap.run_info.get("scoring", {})
    found = scoring.get(name, {}) if isinstance(scoring, dict) else {}
    weights = found.get("weights") if isinstance(found, dict) else None
    return weights if isinstance(weights, dict) else None


def ranked_count(snap: Snapshot, name: str) -> int:
    """How many sites hold a rank (≥ 1) under profile ``name``."""
    ranks = pd.to_numeric(snap.layers[SITES].table[rank_col(name)], errors="coerce")
    return int((ranks >= 1).sum())


def scores(snap: Snapshot, rec: dict[str, Any], w: Words) -> list[dict[str, Any]]:
    """Per profile: score, rank among the ranked sites (or why not ranked), readiness
    tier with the rules behind it, drivers and gaps — in the page's language where the
    profile is known here (built in), else the stored English texts."""
    from omw_sites.scoring import explain

    out = []
    for name, prof in snap.profiles.items():
        profile = profile_of(snap, name)
        rank = rec.get(rank_col(name))
        rank = int(rank) if rank is not None and int(rank) > 0 else 0
        reason = str(rec.get(excluded_col(name)) or "")
        if profile is not None and reason:
            reason = explain.site_exclusion(rec, profile, w.lang)
        reason = w.t(reason) if reason else ""  # reasons the catalogue knows ("not on offer")
        if rank:
            rank_text = w.t("%(rank)s of %(count)s", rank=rank, count=ranked_count(snap, name))
        else:
            rank_text = w.t("not ranked") + (f": {reason}" if reason else "")
        tier = str(rec.get(f"tier_{name}") or "")
        if profile is not None:
            drivers = explain.site_drivers(rec, profile, w.lang, _run_weights(snap, name))
            gaps = explain.site_gaps(rec, profile, w.lang)
            rules = explain.readiness_rules(profile, w.lang)
            own_words = True
        else:
            drivers = [d for d in str(rec.get(f"drivers_{name}") or "").split("; ") if d]
            gaps = [g for g in str(rec.get(f"gaps_{name}") or "").split("; ") if g]
            rules, own_words = [], w.lang == "en"
        out.append(
            {
                "name": name,
                "title": profile_title(name, prof.title, w),
                "score": w.num(rec.get(score_col(name)), 3),
                "rank": rank,
                "rank_text": rank_text,
                "tier": tier,
                "rules": rules,
                "drivers": [] if reason else drivers,
                "gaps": gaps,
                "text_lang": w.lang if own_words else "en",
            }
        )
    return out


def profile_title(name: str, stored: str, w: Words) -> str:
    """A profile's title in the page's language (the stored title for one the catalogue
    does not know)."""
    text = w.value("profile", name)
    return stored if text == name else text


def data_dates(snap: Snapshot, w: Words) -> list[tuple[str, str]]:
    dates = snap.run_info.get("data_dates", {})
    return [(w.value("layer", k), str(v)) for k, v in sorted(dates.items()) if v]
