"""Per-site explanations: each criterion's raw value, value, weight and contribution, in words."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from omw_sites.layers import SITE_COLUMNS
from omw_sites.scoring.profiles import Criterion, Profile
from omw_sites.scoring.value import value

if TYPE_CHECKING:
    from omw_sites.scoring.engine import Evaluation

NEUTRAL = 0.5  # a criterion at value 0.5 neither lifts nor lowers a site
MIN_SHOWN = 0.005  # drivers smaller than this are left out of the sentence
MINUS = "\u2212"


def fmt_quantity(raw: np.ndarray, unit: str) -> np.ndarray:
    """Raw values as short text with units: 350 m, 4.2 km, 12.0 ha, 8 MW, 3 %."""
    x = np.asarray(raw, dtype=float)
    if unit == "m":
        out = [
            "unknown" if np.isnan(v) else (f"{v:.0f} m" if v < 1000 else f"{v / 1000:.1f} km")
            for v in x.tolist()
        ]
    elif unit == "share":
        out = ["unknown" if np.isnan(v) else f"{100 * v:.0f} %" for v in x.tolist()]
    elif unit == "":
        out = ["unknown" if np.isnan(v) else ("yes" if v else "no") for v in x.tolist()]
    else:
        prec = 0 if unit == "MW" else 1
        out = ["unknown" if np.isnan(v) else f"{v:.{prec}f} {unit}" for v in x.tolist()]
    return np.array(out, dtype=object)


def zero_point(crit: Criterion) -> float | None:
    """For a cost criterion, the raw value from which it is worth nothing (None if never)."""
    # each function's parameters are there: Criterion checks them when it is made
    if crit.direction == "cost" and crit.function == "linear":
        assert crit.bounds is not None
        return crit.bounds[1]
    if crit.direction == "cost" and crit.function == "threshold":
        return crit.threshold
    points = crit.points
    if crit.function == "piecewise" and points is not None and points[-1][1] == 0 < points[0][1]:
        return next(x for x, v in points if v == 0)
    return None


def phrases(crit: Criterion, raw: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One phrase per site for a criterion: "motorway junction 1.2 km", "no sewer within 2 km"."""
    unit = crit.unit
    if crit.function == "boolean" or unit == "":
        yes = np.nan_to_num(raw, nan=0.0) != 0
        return np.where(yes, crit.label, "not " + crit.label).astype(object)
    text = crit.label + " " + fmt_quantity(raw, unit)
    zp = zero_point(crit)
    if zp is not None and unit == "m":
        none = (values <= 0) & ~np.isnan(raw)
        within = fmt_quantity(np.array([zp]), "m")[0]
        text = np.where(none, f"no {crit.label} within {within}", text)
    return text.astype(object)


def contributions(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Contribution w·v (sums to the WLC score) and lift w·(v − 0.5) of every cell.

    A criterion not measured for a site lifts it by nothing (its contribution is the
    site's own mean, see :class:`~omw_sites.scoring.engine.Evaluation`): it is never a
    driver, and the gaps say "no data".
    """
    contrib = ev.values * ev.weights
    lift = ev.weights * (ev.values - NEUTRAL)
    if ev.measured is not None:
        lift = np.where(ev.measured, lift, 0.0)
    return contrib, lift


def drivers_text(ev: Evaluation, n_pos: int = 3, n_neg: int = 2) -> np.ndarray:
    """Top positive and negative drivers of every site, in words.

    A driver's signed number is its lift ``w·(v − 0.5)``: how much the criterion raises
    (+) or lowers (−) the site's weighted score against a neutral mid-range value; the
    lifts add up to ``score − 0.5`` under WLC for a site measured on every criterion (an
    unmeasured criterion lifts by nothing and is never a driver; the gaps name it).
    Excluded sites get ``excluded: <reason>``.

    Returns
    -------
    ndarray of str
        e.g. ``"+ motorway junction 1.2 km (+0.16); + plot size 12.0 ha (+0.05);
        − no sewer within 2.0 km (−0.03)"``.
    """
    n, k = ev.values.shape
    _, lift = contributions(ev)
    words = (
        np.column_stack(
            [phrases(c, ev.raw[:, j], ev.values[:, j]) for j, c in enumerate(ev.profile.criteria)]
        )
        if k
        else np.empty((n, 0), dtype=object)
    )
    order = np.argsort(-lift, axis=1, kind="stable")
    top = order[:, : min(n_pos, k)]
    bottom = order[:, ::-1][:, : min(n_neg, k)]
    rows = np.arange(n)[:, None]
    pos_l, neg_l = lift[rows, top], lift[rows, bottom]
    pos_w, neg_w = words[rows, top], words[rows, bottom]
    out = np.empty(n, dtype=object)
    reason = ev.reason
    for i in range(n):
        if reason[i]:
            out[i] = f"excluded: {reason[i]}"
            continue
        parts = [
            f"+ {w} (+{v:.2f})" for w, v in zip(pos_w[i], pos_l[i], strict=True) if v >= MIN_SHOWN
        ]
        parts += [
            f"{MINUS} {w} ({MINUS}{-v:.2f})"
            for w, v in zip(neg_w[i], neg_l[i], strict=True)
            if v <= -MIN_SHOWN
        ]
        out[i] = "; ".join(parts)
    return out.astype(str)


def explain_table(ev: Evaluation, site_ids: np.ndarray | None = None) -> pd.DataFrame:
    """Long table: one row per site and criterion with raw value and unit, value, weight,
    contribution (w·v), lift (w·(v − 0.5)) and whether it was measured for the site.

    Parameters
    ----------
    ev : the profile evaluated on the sites (``engine.evaluate_profile``)
    site_ids : identifiers to label the rows (default 0..n−1)
    """
    n, k = ev.values.shape
    ids = np.arange(n) if site_ids is None else np.asarray(site_ids)
    contrib, lift = contributions(ev)
    crit = ev.profile.criteria
    return pd.DataFrame(
        {
            "site_id": np.repeat(ids, k),
            "criterion": np.tile([c.name for c in crit], n),
            "label": np.tile([c.label for c in crit], n),
            "raw": ev.raw.reshape(-1),
            "unit": np.tile([c.unit for c in crit], n),
            "value": ev.values.reshape(-1).round(4),
            "weight": np.tile(ev.weights, n).round(4),
            "contribution": contrib.reshape(-1).round(4),
            "lift": lift.reshape(-1).round(4),
            "measured": (
                ev.measured.reshape(-1) if ev.measured is not None else np.ones(n * k, bool)
            ),
            "excluded": np.repeat(ev.reason.astype(str), k),
        }
    )


# --------------------------------------------------------------------------------------
# One site's drivers, gaps and readiness rules in Polish or English
# --------------------------------------------------------------------------------------
#
# The store keeps the drivers and gaps as English text (``drivers_<p>``, ``gaps_<p>``).
# A page in Polish renders them again from what the store also keeps: the site's
# criterion values, the profile and the weights the run used (``run_info``). English
# from here is the stored text, word for word (tests/test_reports.py checks it).

LANGS = ("pl", "en")
# the reason of a sold or withdrawn site: it keeps its drivers (they describe the land)
NOT_ON_OFFER = "not on offer"

# Polish names of what a criterion or check measures: (nominative, genitive). The
# English words are the profile's criterion labels (or EN_NOUNS for other columns).
PL_NOUNS: dict[str, tuple[str, str]] = {
    "time_junction_min": ("węzeł autostrady/drogi ekspresowej", "węzła autostrady/drogi ekspr."),
    "dist_junction_m": ("węzeł autostrady/drogi ekspresowej", "węzła autostrady/drogi ekspr."),
    "time_centre_min": ("centrum Warszawy", "centrum Warszawy"),
    "dist_centre_m": ("centrum Warszawy", "centrum Warszawy"),
    "time_airport_min": ("lotnisko", "lotniska"),
    "dist_airport_m": ("lotnisko", "lotniska"),
    "time_rail_freight_min": ("kolejowy terminal towarowy", "kolejowego terminalu towarowego"),
    "dist_rail_freight_m": ("kolejowy terminal towarowy", "kolejowego terminalu towarowego"),
    "time_station_min": ("stacja kolejowa", "stacji kolejowej"),
    "dist_station_m": ("stacja kolejowa", "stacji kolejowej"),
    "dist_water_m": ("wodociąg", "wodociągu"),
    "dist_sewer_m": ("kanalizacja", "kanalizacji"),
    "dist_power_m": ("linia elektroenergetyczna", "linii elektroenergetycznej"),
    "dist_gas_m": ("gazociąg", "gazociągu"),
    "dist_heat_m": ("sieć ciepłownicza", "sieci ciepłowniczej"),
    "dist_telecom_m": ("linia telekomunikacyjna", "linii telekomunikacyjnej"),
    "dist_substation_m": ("GPZ", "GPZ"),
    "dist_hv_line_m": ("linia WN", "linii WN"),
    "power_capacity_mw": ("wolna moc GPZ", "wolnej mocy GPZ"),
    "area_ha": ("powierzchnia", "powierzchni"),
    "slope_mean_pct": ("spadek terenu", "spadku terenu"),
    "slope_max_pct": ("spadek maksymalny", "spadku maksymalnego"),
    "flood_share": ("strefa zalewowa Q1%", "strefy zalewowej Q1%"),
    "natura_share": ("Natura 2000", "Natura 2000"),
    "forest_share": ("las", "lasu"),
    "buildable_share": ("część do zabudowy", "części do zabudowy"),
    "compactness": ("zwartość kształtu", "zwartości kształtu"),
    "usable_width_m": ("szerokość użytkowa", "szerokości użytkowej"),
    "zoning_share": ("udział przeważającego przeznaczenia", "udziału przeznaczenia"),
    "access_leg_m": ("dojazd od drogi", "dojazdu od drogi"),
}
EN_NOUNS: dict[str, str] = {
    "dist_water_m": "water main",
    "dist_sewer_m": "sewer",
    "dist_power_m": "power line",
    "dist_gas_m": "gas pipe",
    "dist_heat_m": "district heating",
    "dist_telecom_m": "telecom line",
    "power_capacity_mw": "substation capacity",
    "time_junction_min": "motorway junction",
    "time_airport_min": "airport",
    "time_station_min": "rail station",
    "time_rail_freight_min": "rail freight terminal",
    "time_centre_min": "Warsaw centre",
    "area_ha": "plot size",
    "slope_mean_pct": "slope",
    "flood_share": "Q1% flood zone",
    "natura_share": "Natura 2000",
    "forest_share": "forest",
}
# (Polish, English) of the words around the nouns
WORDS: dict[str, tuple[str, str]] = {
    "unknown": ("brak danych", "unknown"),
    "yes": ("tak", "yes"),
    "no": ("nie", "no"),
    "not": ("brak: {n}", "not {n}"),
    "none_within": ("brak {g} w promieniu {x}", "no {n} within {x}"),
    "within": ("{n} w promieniu {x}", "{n} within {x}"),
    "within_min": ("{n} w zasięgu {x}", "{n} within {x}"),
    "beyond_min": ("{n} dalej niż {x}", "{n} further than {x}"),
    "at_least": ("{n} co najmniej {x}", "{n} at least {x}"),
    "below": ("{n} poniżej {x}", "{n} below {x}"),
    "at_most": ("{n} poniżej {x}", "{n} below {x}"),
    "over": ("{n}: {x} lub więcej", "{n} {x} or more"),
    "area_below": ("poniżej {x}", "below {x}"),
    "area_ok": ("powierzchnia co najmniej {x}", "at least {x}"),
    "excluded": ("wykluczony: {r}", "excluded: {r}"),
    "not_checked": ("nie sprawdzono (brak danych): {r}", "not checked (no data): {r}"),
    "no_data": ("brak danych: {r}", "no data: {r}"),
    "zoning_compatible": (
        "przeznaczenie w planie zgodne z profilem",
        "zoning compatible",
    ),
    "zoning_not_compatible": (
        "przeznaczenie w planie niezgodne z profilem",
        "zoning not compatible",
    ),
    "owner_public": ("własność publiczna", "public ownership"),
    "owner_municipal": ("własność gminna", "municipal ownership"),
}


def _word(key: str, lang: str, **kw: str) -> str:
    return WORDS[key][LANGS.index(lang)].format(**kw)


def _lang(lang: str) -> str:
    if lang not in LANGS:
        msg = f"language {lang!r} is not supported; use one of: {', '.join(LANGS)}"
        raise ValueError(msg)
    return lang


def quantity(raw: float, unit: str, lang: str = "en") -> str:
    """One raw value as short text with its unit, as :func:`fmt_quantity` writes it; in
    Polish with a decimal comma (``4,2 km``) and Polish words for flags and no data."""
    if unit == "ha" and not np.isnan(raw):  # thresholds as written: "below 2 ha"
        text = f"{raw:g} ha"
    else:
        text = str(fmt_quantity(np.array([raw], dtype=float), unit)[0])
    if lang == "en":
        return text
    return {
        "unknown": _word("unknown", lang),
        "yes": _word("yes", lang),
        "no": _word("no", lang),
    }.get(text, text.replace(".", ","))


def _number(v: float, lang: str) -> str:
    text = f"{v:.2f}"
    return text.replace(".", ",") if lang == "pl" else text


def _noun(column: str, lang: str, profile: Profile | None = None, genitive: bool = False) -> str:
    if lang == "pl" and column in PL_NOUNS:
        return PL_NOUNS[column][1 if genitive else 0]
    crit = {c.name: c for c in profile.criteria}.get(column) if profile else None
    return (crit.label if crit and crit.label else None) or EN_NOUNS.get(column, column)


def _raw(site: Mapping[str, Any], column: str) -> float:
    v = site.get(column)
    if v is None:
        return float("nan")
    try:
        if pd.isna(v):
            return float("nan")
    except (TypeError, ValueError):
        return float("nan")
    return float(v) if not isinstance(v, str) else float("nan")


def _phrase(crit: Criterion, raw: float, v: float, lang: str) -> str:
    """:func:`phrases` of one site in ``lang``."""
    if lang == "en":
        return str(phrases(crit, np.array([raw]), np.array([v]))[0])
    noun = _noun(crit.name, lang, None)
    if crit.function == "boolean" or crit.unit == "":
        return noun if (not np.isnan(raw) and raw != 0) else _word("not", lang, n=noun)
    zp = zero_point(crit)
    if zp is not None and crit.unit == "m" and v <= 0 and not np.isnan(raw):
        gen = _noun(crit.name, lang, None, genitive=True)
        return _word("none_within", lang, g=gen, n=noun, x=quantity(zp, "m", lang))
    text = str(fmt_quantity(np.array([raw]), crit.unit)[0])
    return (
        f"{noun} {quantity(raw, crit.unit, lang) if crit.unit != 'ha' else text.replace('.', ',')}"
    )


def site_drivers(
    site: Mapping[str, Any],
    profile: Profile,
    lang: str = "en",
    weights: Mapping[str, float] | None = None,
    n_pos: int = 3,
    n_neg: int = 2,
) -> list[str]:
    """A site's top positive and negative drivers under ``profile``, one string each,
    in ``lang`` (``"pl"`` or ``"en"``): what :func:`drivers_text` wrote into
    ``drivers_<p>``, rebuilt from the site's own criterion values.

    Parameters
    ----------
    site : the site's columns (a store row as ``pd.Series`` or a dict)
    profile : the profile (``scoring.profiles.load_profiles([name])[0]``)
    lang : ``"pl"`` or ``"en"``
    weights : the weights the run used (``run_info["scoring"][name]["weights"]``; they
        differ from the profile's when a criterion had no data or under entropy
        weighting); default the profile's own
    """
    lang = _lang(lang)
    reason = str(site.get(f"excluded_{profile.name}") or "")
    if reason and reason != NOT_ON_OFFER:
        return [_word("excluded", lang, r=site_exclusion(site, profile, lang))]
    crits = profile.criteria
    w = np.array([(weights or {}).get(c.name, c.weight) for c in crits], dtype=float)
    raw = np.array([_raw(site, c.name) for c in crits], dtype=float)
    vals = np.array([float(value(c, raw[j : j + 1])[0]) for j, c in enumerate(crits)])
    lift = np.where(np.isnan(raw), 0.0, w * (vals - NEUTRAL))
    order = np.argsort(-lift, kind="stable")
    out = [
        f"+ {_phrase(crits[j], raw[j], vals[j], lang)} (+{_number(lift[j], lang)})"
        for j in order[:n_pos]
        if lift[j] >= MIN_SHOWN
    ]
    out += [
        f"{MINUS} {_phrase(crits[j], raw[j], vals[j], lang)} ({MINUS}{_number(-lift[j], lang)})"
        for j in order[::-1][:n_neg]
        if lift[j] <= -MIN_SHOWN
    ]
    return out


def _comparison(node: ast.expr) -> tuple[str, type, float] | None:
    """(column, operator, number) of ``column OP number``, else None."""
    if not (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.left, ast.Name)
        and isinstance(node.comparators[0], ast.Constant)
        and isinstance(node.comparators[0].value, int | float)
    ):
        return None
    return node.left.id, type(node.ops[0]), float(node.comparators[0].value)


def check_words(expr: str, lang: str, profile: Profile | None = None) -> tuple[str, str]:
    """(passed, failed) of one simple check in words: ``dist_sewer_m < 300`` →
    ("sewer within 300 m", "no sewer within 300 m"); in Polish ("kanalizacja w promieniu
    300 m", "brak kanalizacji w promieniu 300 m"). ("", "") when the check is not a
    single comparison or flag this module knows how to say."""
    node = ast.parse(expr, mode="eval").body
    if isinstance(node, ast.Name):
        if node.id == "zoning_compatible":
            return _word("zoning_compatible", lang), _word("zoning_not_compatible", lang)
        if node.id in ("owner_public", "owner_municipal"):
            ok = _word(node.id, lang)
            return ok, _word("not", lang, n=ok)
        noun = _noun(node.id, lang, profile)
        return noun, _word("not", lang, n=noun)
    cmp = _comparison(node)
    if cmp is None:
        return "", ""
    col, op, x = cmp
    unit = SITE_COLUMNS.get(col, ("", ""))[0] or ("%" if col.endswith("_pct") else "")
    n, g = _noun(col, lang, profile), _noun(col, lang, profile, genitive=True)
    q = quantity(x, unit, lang)
    if op in (ast.Lt, ast.LtE) and unit == "m":
        return _word("within", lang, n=n, x=q), _word("none_within", lang, n=n, g=g, x=q)
    if op in (ast.Lt, ast.LtE) and unit == "min":
        return _word("within_min", lang, n=n, x=q), _word("beyond_min", lang, n=n, x=q)
    if op in (ast.Lt, ast.LtE):
        return _word("at_most", lang, n=n, x=q), _word("over", lang, n=n, x=q)
    if op in (ast.Gt, ast.GtE):
        return _word("at_least", lang, n=n, x=q), _word("below", lang, n=n, x=q)
    return "", ""


def _parts(expr: str) -> list[str]:
    """The terms of a check joined by ``and`` (the check itself otherwise)."""
    node = ast.parse(expr, mode="eval").body
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [ast.unparse(v) for v in node.values]
    return [expr]


def _site_columns(site: Mapping[str, Any], profile: Profile) -> tuple[dict, dict]:
    from omw_sites.scoring.engine import derived_columns, site_columns  # engine imports us

    frame = pd.DataFrame([dict(site)])
    for col in ("zoning_class", "planning_instrument", "plan_zone", "ownership"):
        if col not in frame:
            frame[col] = ""
    cols, unknown = site_columns(frame)
    cols.update(derived_columns(frame, profile))
    if str(site.get("planning_instrument") or "") == "unknown":
        unknown["zoning_compatible"] = np.array([True])
    return cols, unknown


def _failed_terms(
    expr: str, gap: str, cols: dict, unknown: dict, lang: str, profile: Profile
) -> tuple[list[str], list[str]]:
    """(failed, not checked) of one readiness check, each term named on its own."""
    from omw_sites.scoring.expr import evaluate, names_in

    failed, blind = [], []
    terms = _parts(expr)
    for term in terms:
        if any(bool(unknown.get(n, np.zeros(1, bool))[0]) for n in names_in(term)):
            blind.append(term)
        elif not bool(np.asarray(evaluate(term, cols)).reshape(-1)[0]):
            failed.append(term)

    def say(group: list[str]) -> list[str]:
        words = [check_words(t, lang, profile)[1] for t in group]
        if lang == "en" and group == terms:
            return [gap]  # the whole check fails: the profile's own words
        return [w or gap for w in words]

    return (say(failed) if failed else []), (say(blind) if blind else [])


def site_gaps(site: Mapping[str, Any], profile: Profile, lang: str = "en") -> list[str]:
    """What keeps a site from readiness tier A under ``profile``, in ``lang``: each
    failed check by name — of a check made of several terms (``dist_water_m < 300 and
    dist_sewer_m < 300``) only the terms that fail, so a site with water but no sewer
    reads "no sewer within 300 m" — then the checks the data could not decide, then the
    profile's criteria without a value for the site."""
    lang = _lang(lang)
    cols, unknown = _site_columns(site, profile)
    out: list[str] = []
    area = _raw(site, "area_ha")
    if profile.min_area_ha > 0 and not area >= profile.min_area_ha:
        out.append(_word("area_below", lang, x=quantity(profile.min_area_ha, "ha", lang)))
    checks = [(c.expr, c.gap) for c in profile.readiness] or [
        ("zoning_compatible", "zoning not compatible")
    ]
    blind: list[str] = []
    for expr, gap in checks:
        failed, unchecked = _failed_terms(expr, gap, cols, unknown, lang, profile)
        out += failed
        blind += unchecked
    if blind:
        out.append(_word("not_checked", lang, r=", ".join(blind)))
    missing = [c for c in profile.criteria if np.isnan(_raw(site, c.name))]
    if missing:
        names = ", ".join(_noun(c.name, lang, profile) for c in missing)
        out.append(_word("no_data", lang, r=names))
    return out


def readiness_rules(profile: Profile, lang: str = "en") -> list[str]:
    """The checks of the readiness tiers as a site passes them, in ``lang``: the
    minimum area first, then the profile's ``[[readiness]]`` checks (tier A passes all,
    B fails one, C two or more)."""
    lang = _lang(lang)
    rules = []
    if profile.min_area_ha > 0:
        rules.append(_word("area_ok", lang, x=quantity(profile.min_area_ha, "ha", lang)))
    checks = [c.expr for c in profile.readiness] or ["zoning_compatible"]
    for expr in checks:
        words = [check_words(t, lang, profile)[0] for t in _parts(expr)]
        rules.append(" + ".join(w or t for w, t in zip(words, _parts(expr), strict=True)))
    return rules


def site_exclusion(site: Mapping[str, Any], profile: Profile, lang: str = "en") -> str:
    """Why a site is excluded under ``profile`` in ``lang`` (the stored ``excluded_<p>``
    reason; in Polish the failed constraint said in Polish where it is a simple one)."""
    reason = str(site.get(f"excluded_{profile.name}") or "")
    if lang == "en" or not reason:
        return reason
    if reason == NOT_ON_OFFER:
        return "poza ofertą"
    if reason.startswith("area below "):
        return _word("area_below", lang, x=quantity(profile.min_area_ha, "ha", lang))
    for con in profile.constraints:
        if con.reason == reason:
            failed = check_words(con.expr, lang, profile)[1]
            return failed or reason
    return reason
