"""Score classes, ColorBrewer palette, display units and reference-layer styles of the maps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omw_sites.i18n import N_
from omw_sites.layers import SITE_COLUMNS
from omw_sites.reports.formatting import fixed

# ColorBrewer YlOrRd (sequential; Cynthia Brewer, Mark Harrower, Penn State, Apache-2.0):
# the best sites are the darkest, and the hues stay clear of the blue flood zones, the green
# Natura 2000 areas and the grey excluded sites.
YLORRD: dict[int, tuple[str, ...]] = {
    3: ("#ffeda0", "#feb24c", "#f03b20"),
    4: ("#ffffb2", "#fecc5c", "#fd8d3c", "#e31a1c"),
    5: ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"),
    6: ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"),
    7: ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026"),
}
EXCLUDED_COLOR = "#9e9e9e"
EXCLUDED_STROKE = "#616161"
SITE_FILL_OPACITY = 0.85
HEX_FILL_OPACITY = 0.35
CLASSIFICATIONS = ("quantile", "fixed")


def palette(k: int) -> tuple[str, ...]:
    """ColorBrewer YlOrRd with ``k`` classes (1 ≤ k ≤ 7), light (low score) to dark (high)."""
    if k < 1 or k > 7:
        msg = f"the score palette has 1 to 7 classes, not {k}"
        raise ValueError(msg)
    if k < 3:
        return YLORRD[3][-k:]
    return YLORRD[k]


def darken(color: str, factor: float = 0.6) -> str:
    """``#rrggbb`` scaled towards black by ``factor`` (0 = black, 1 = unchanged)."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#{:02x}{:02x}{:02x}".format(*(round(c * factor) for c in (r, g, b)))


@dataclass(frozen=True)
class ScoreClasses:
    """Score classes: ``breaks`` (k + 1 ascending edges), a colour and a count per class."""

    breaks: tuple[float, ...]
    colors: tuple[str, ...]
    counts: tuple[int, ...]
    method: str

    @property
    def k(self) -> int:
        return len(self.colors)

    def classify(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Class index 0…k-1 of each score (NaN scores get -1)."""
        values = np.asarray(scores, dtype=float)
        idx = np.searchsorted(np.asarray(self.breaks[1:-1]), values, side="right")
        return np.where(np.isnan(values), -1, idx).astype(int)

    def label(self, i: int, lang: str = "en") -> str:
        """``"0.40–0.60"`` (``"0,40–0,60"`` in Polish): the score range of class ``i``."""
        return f"{fixed(self.breaks[i], lang, 2)}–{fixed(self.breaks[i + 1], lang, 2)}"


def score_classes(
    scores: Sequence[float] | np.ndarray, k: int = 5, method: str = "quantile"
) -> ScoreClasses:
    """Classify eligible scores into ``k`` classes for colouring.

    Parameters
    ----------
    scores : scores of the eligible sites, 0…1 (NaN values are ignored)
    k : number of classes (1…7)
    method : ``"quantile"`` (equal counts; ties may merge classes) or ``"fixed"`` (equal
        intervals 0–1/k, …, (k-1)/k–1)

    Returns
    -------
    ScoreClasses
    """
    if method not in CLASSIFICATIONS:
        msg = f"unknown classification {method!r}; use one of {', '.join(CLASSIFICATIONS)}"
        raise ValueError(msg)
    values = np.asarray(scores, dtype=float)
    values = values[~np.isnan(values)]
    if method == "fixed" or values.size == 0:
        breaks = np.linspace(0.0, 1.0, k + 1)
        if values.size:
            breaks[0] = min(breaks[0], float(values.min()))
            breaks[-1] = max(breaks[-1], float(values.max()))
    else:
        breaks = np.unique(np.quantile(values, np.linspace(0.0, 1.0, k + 1)))
        if breaks.size < 2:  # every score equal
            breaks = np.array([breaks[0], breaks[0]])
    n = breaks.size - 1
    classes = ScoreClasses(tuple(float(b) for b in breaks), palette(n), (0,) * n, method)
    idx = classes.classify(values)
    counts = tuple(int(c) for c in np.bincount(idx, minlength=n)[:n])
    return ScoreClasses(classes.breaks, classes.colors, counts, method)


# --------------------------------------------------------------------------------------
# Criteria in popups: label, display unit and conversion from the stored unit
# --------------------------------------------------------------------------------------

CRITERION_LABELS: dict[str, str] = {
    "time_junction_min": N_("Drive to a motorway junction"),
    "time_centre_min": N_("Drive to Warsaw centre"),
    "time_airport_min": N_("Drive to an airport"),
    "time_rail_freight_min": N_("Drive to rail freight"),
    "time_station_min": N_("Drive to a rail station"),
    "dist_junction_m": N_("Motorway/expressway junction"),
    "dist_centre_m": N_("Warsaw city centre"),
    "dist_station_m": N_("Passenger rail station"),
    "dist_rail_freight_m": N_("Rail freight terminal/siding"),
    "dist_airport_m": N_("Airport"),
    "dist_water_m": N_("Water main"),
    "dist_sewer_m": N_("Sewer"),
    "dist_power_m": N_("Power line"),
    "dist_gas_m": N_("Gas pipe"),
    "dist_telecom_m": N_("Telecom line"),
    "power_capacity_mw": N_("Free substation capacity"),
    "zoning_share": N_("Under majority zoning"),
    "flood_share": N_("In Q1% flood zone"),
    "natura_share": N_("In Natura 2000"),
    "forest_share": N_("Under forest"),
    "slope_mean_pct": N_("Mean slope"),
    "dist_national_road_m": N_("National road"),
    "dist_voivodeship_road_m": N_("Voivodeship road"),
    "access_road_width_m": N_("Access road width"),
    "max_height_m": N_("Maximum building height (plan)"),
    "max_coverage_share": N_("Maximum building coverage (plan)"),
    "min_bio_active_share": N_("Minimum biologically active share (plan)"),
    "agri_share": N_("Agricultural land"),
    "soil_i_iii_share": N_("Soil classes I–III"),
    "soil_iv_vi_share": N_("Soil classes IV–VI"),
    "forest_land_share": N_("Registered forest land"),
    "built_up_share": N_("Under existing buildings"),
}
# stored unit -> (display unit, factor, decimals)
DISPLAY_UNITS: dict[str, tuple[str, float, int]] = {
    "m": ("km", 0.001, 2),
    "km": ("km", 1.0, 2),
    "share": ("%", 100.0, 1),
    "%": ("%", 1.0, 1),
    "MW": ("MW", 1.0, 1),
    "min": ("min", 1.0, 0),
    "ha": ("ha", 1.0, 2),
}
# site-table columns shown in the popup's header rather than as criteria
_NOT_CRITERIA = {"area_ha", "registered_area_ha"}


@dataclass(frozen=True)
class CriterionField:
    """A criterion column as shown in a popup: ``value * factor`` rounded, with ``unit``."""

    column: str
    label: str
    unit: str
    factor: float
    decimals: int
    weight: float | None = None

    def to_js(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "unit": self.unit, "decimals": self.decimals}
        if self.weight is not None:
            out["weight"] = self.weight
        return out


def _weight_for(column: str, weights: Mapping[str, Any]) -> float | None:
    for key in (column, column.rsplit("_", 1)[0]):
        value = weights.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def criterion_fields(
    columns: Iterable[str],
    units: Mapping[str, str] | None = None,
    weights: Mapping[str, Any] | None = None,
) -> list[CriterionField]:
    """The criteria a popup lists, weighted ones first (heaviest first), then the rest.

    Parameters
    ----------
    columns : columns present in the site table
    units : stored unit per column (``run_info["units"]``); defaults to ``SITE_COLUMNS``
    weights : the profile's criterion weights (keys: column names, with or without the
        unit suffix); criteria without a weight are still shown

    Returns
    -------
    list of CriterionField
        Distances in km, shares in %, slope in %, capacity in MW.
    """
    units = {c: u for c, (u, _) in SITE_COLUMNS.items()} | dict(units or {})
    weights = dict(weights or {})
    present = set(columns)
    fields = []
    for col, unit in units.items():
        if col not in present or col in _NOT_CRITERIA or unit not in DISPLAY_UNITS:
            continue
        shown, factor, decimals = DISPLAY_UNITS[unit]
        label = CRITERION_LABELS.get(col)
        if label is None:
            desc = SITE_COLUMNS.get(col, ("", col.replace("_", " ")))[1]
            label = desc[:1].upper() + desc[1:]
        fields.append(
            CriterionField(col, label, shown, factor, decimals, _weight_for(col, weights))
        )
    fields.sort(key=lambda f: (f.weight is None, -(f.weight or 0.0)))
    return fields


def display_values(field: CriterionField, values: np.ndarray) -> list[float | None]:
    """Stored values converted to ``field``'s display unit and rounded; NaN becomes None."""
    out = np.round(np.asarray(values, dtype=float) * field.factor, field.decimals)
    return [None if math.isnan(v) else v for v in out.tolist()]


# --------------------------------------------------------------------------------------
# Reference layers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceStyle:
    """How one reference layer is drawn: name in the layer control, Leaflet style, fields."""

    label: str
    style: dict[str, Any]
    show: bool = True
    fields: tuple[tuple[str, str], ...] = ()  # (column, label) for the tooltip/popup
    radius: float | None = None  # points: circle-marker radius in px
    interactive: bool = True
    popup: bool = False  # fields in a click popup instead of a hover tooltip


REFERENCE_STYLES: dict[str, ReferenceStyle] = {
    "gminy": ReferenceStyle(
        N_("Gminy (boundaries)"),
        {"color": "#9a958c", "weight": 1, "fillColor": "#fbfaf6", "fillOpacity": 1.0},
        fields=(("name", N_("Gmina")), ("teryt", N_("TERYT"))),
        popup=True,
    ),
    "flood": ReferenceStyle(
        N_("Flood hazard zone (Q1%)"),
        {"color": "#6baed6", "weight": 0.5, "fillColor": "#9ecae1", "fillOpacity": 0.55},
        fields=(("name", N_("Flood zone")),),
    ),
    "natura2000": ReferenceStyle(
        N_("Natura 2000"),
        {
            "color": "#41ab5d",
            "weight": 1,
            "dashArray": "4 3",
            "fillColor": "#a1d99b",
            "fillOpacity": 0.35,
        },
        fields=(("code", N_("Natura 2000")), ("name", N_("Name"))),
    ),
    "roads_main": ReferenceStyle(
        N_("Main roads"),
        {"color": "#c9834a", "weight": 2.2, "opacity": 0.9},
        fields=(("number", N_("Road")), ("road_class", N_("Class"))),
    ),
    "rail": ReferenceStyle(
        N_("Rail"),
        {"color": "#4d4d4d", "weight": 1.5, "dashArray": "6 3", "opacity": 0.9},
        fields=(("line", N_("Rail line")),),
    ),
    "utilities": ReferenceStyle(
        N_("Utility lines"),
        {"weight": 1.5, "opacity": 0.85},
        show=False,
        fields=(
            ("network", N_("Network")),
            ("status", N_("Line status")),
            ("voltage", N_("Voltage")),
            ("diameter_mm", N_("Diameter (mm)")),
            ("operator", N_("Operator")),
        ),
    ),
    "substations": ReferenceStyle(
        N_("Substations"),
        {"color": "#3f007d", "weight": 1.5, "fillColor": "#9e9ac8", "fillOpacity": 0.9},
        show=False,
        fields=(("name", N_("Substation")), ("capacity_mw", N_("Free capacity (MW)"))),
        radius=5,
    ),
    "junctions": ReferenceStyle(
        N_("Motorway junctions"),
        {"color": "#000000", "weight": 2, "fillColor": "#ffffff", "fillOpacity": 1.0},
        fields=(("name", N_("Junction")), ("road", N_("Road")), ("number", N_("No."))),
        radius=5,
    ),
    "stations": ReferenceStyle(
        N_("Rail stations"),
        {"color": "#08306b", "weight": 1.5, "fillColor": "#4292c6", "fillOpacity": 1.0},
        fields=(("name", N_("Station")), ("kind", N_("Kind"))),
        radius=4,
    ),
    "airports": ReferenceStyle(
        N_("Airports"),
        {"color": "#000000", "weight": 2, "fillColor": "#54278f", "fillOpacity": 1.0},
        fields=(("name", N_("Airport")), ("iata", N_("IATA"))),
        radius=7,
    ),
}
# station kinds: freight terminals drawn in a different fill
FREIGHT_STATION_FILL = "#f16913"
# GESUT networks (layers.NETWORKS values), one overlay each
NETWORK_COLORS: dict[str, str] = {
    "water": "#1f78b4",
    "sewer": "#8c6d31",
    "power": "#6a3d9a",
    "gas": "#e7298a",
    "heat": "#b15928",
    "telecom": "#33a02c",
}
