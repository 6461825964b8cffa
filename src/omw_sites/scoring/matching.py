"""Investor enquiries matched against the sites: hard requirements, a ranking by the
investor's preferences, a shortlist spread across gminy, near misses, and why.

An enquiry's **requirements** are hard limits on site columns (area range, minutes to a
junction, free power, a maximum price …), allowed designation classes, ownership
classes and statuses, and optionally an investor profile whose own constraints a site
must pass. Its **preferences** (a built-in profile, its weights optionally changed) rank
the sites that meet them.

:func:`match` is a pure function of the current sites and the enquiry. Per site and
requirement it decides *pass*, *fail* or *unknown* (the column holds no value: the site
is not silently passed, it is kept with the requirement listed as uncertain). A site
meeting every requirement (none failed) is a candidate; sold and withdrawn sites never
are. Candidates are ordered by score (best first, ties by site ID) and the shortlist is
picked from them by the caller's ``spread`` (the regional balance rule with a cap per
gmina, :func:`omw_sites.reports.balance.balanced_shortlist`, passed in by the command
so the flow of packages stays one way). Sites failing exactly one requirement are the
near misses, the closest first (by how far they miss, relative to the limit).

Each listed site carries its checks as plain data (column, value, limit, unit, what
lies behind it: "substation 2.1 km"), stored with the enquiry; :func:`check_text`
says them in Polish or English from the one message catalogue.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from omw_sites.i18n import LANGUAGES, format_number, gettext
from omw_sites.layers import SITE_COLUMNS
from omw_sites.scoring.engine import NO_DATA_REASON, aggregate, evaluate_profile, on_offer
from omw_sites.scoring.explain import site_exclusion
from omw_sites.scoring.profiles import (
    NUMERIC_CRITERIA,
    Profile,
    ProfileError,
    builtin_dir,
    load_profile,
)

#: columns a hard limit may name: every numeric criterion and the offer's prices
LIMITABLE = (*NUMERIC_CRITERIA, "price_pln_m2", "lease_pln_m2_year")
#: yes/no columns among the numeric criteria (their limit is ``{min = 1}`` or ``{max = 0}``)
FLAGS = {c for c in NUMERIC_CRITERIA if c.endswith("_on_site")} | {"no_plan_ogolny", "brownfield"}
UNITS = {c: "flag" if c in FLAGS else SITE_COLUMNS[c][0] for c in NUMERIC_CRITERIA} | {
    "price_pln_m2": "PLN/m²",
    "lease_pln_m2_year": "PLN/m²/year",
}
#: requirements naming a set of allowed values, and the site column each tests
SETS = {"zoning_classes": "zoning_class", "ownership": "ownership", "statuses": "status"}
OWNERSHIP = ("municipal", "state", "private", "other")
OFFER_STATUSES = ("available", "reserved")  # sold and withdrawn are never offered
#: what lies behind a value, said with a limit on it ("substation 2.1 km")
CONTEXT = {
    "power_capacity_mw": "dist_substation_m",
    "water_diameter_mm": "dist_water_m",
    "sewer_diameter_mm": "dist_sewer_m",
    "gas_diameter_mm": "dist_gas_m",
    "heat_diameter_mm": "dist_heat_m",
}
REQUIREMENT_KEYS = ("area_ha", "profile", "limits", "max_price_pln_m2", *SETS)
PASS, UNKNOWN, FAIL = 1, 0, -1
STATE_NAMES = {PASS: "pass", UNKNOWN: "unknown", FAIL: "fail"}
SCORE, RANK = "score_enquiry", "rank_enquiry"  # columns handed to ``spread``

Spread = Callable[..., pd.DataFrame]


class RequirementError(ValueError):
    """An enquiry's requirement or preference that cannot be used; the message names the
    field and the rule."""

    def __init__(self, where: str, rule: str) -> None:
        super().__init__(f"{where}: {rule}")
        self.field = where


def closest(name: str, known: Sequence[str], n: int = 3) -> str:
    """``"closest known: a, b"`` for an unknown ``name`` (or the first known ones)."""
    # names sharing more of its words first ("power_mw": power_capacity_mw), then by
    # likeness of the letters
    words = {w for w in name.lower().split("_") if len(w) > 1}
    pool = set(difflib.get_close_matches(name, list(known), n=10, cutoff=0.5))
    pool |= {k for k in known if words & set(k.split("_")) - {"m", "min"}}

    def likeness(k: str) -> tuple[int, float, str]:
        shared = len(words & set(k.split("_")))
        return -shared, -difflib.SequenceMatcher(None, name, k).ratio(), k

    near = sorted(pool, key=likeness)[:n]
    if near:
        return "closest known: " + ", ".join(near)
    return "known: " + ", ".join(list(known)[:12]) + (", …" if len(known) > 12 else "")


# ------------------------------------------------------------------------ requirements
@dataclass(frozen=True)
class Limit:
    """A hard limit on one numeric column: ``low ≤ value ≤ high`` (either may be None)."""

    column: str
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Requirements:
    limits: tuple[Limit, ...] = ()
    profile: str | None = None
    allowed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # SETS key → values

    def to_json(self) -> dict[str, Any]:
        """The requirements as the enquiry file writes them (stored with the enquiry)."""
        out: dict[str, Any] = {}
        if self.profile:
            out["profile"] = self.profile
        limits: dict[str, dict[str, float]] = {}
        for lim in self.limits:
            limits[lim.column] = {
                k: v for k, v in (("min", lim.low), ("max", lim.high)) if v is not None
            }
        if limits:
            out["limits"] = limits
        out.update({k: list(v) for k, v in self.allowed.items() if v})
        return out


@dataclass(frozen=True)
class Preferences:
    profile: str
    weights: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            **({"weights": dict(self.weights)} if self.weights else {}),
        }


def builtin_profiles() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequirementError(where, f"must be a number, not {value!r}")
    return float(value)


def parse_limit(column: str, spec: Any, where: str) -> Limit:
    """One limit: ``{min = x}``, ``{max = y}``, both, or ``[min, max]``."""
    if column not in LIMITABLE:
        raise RequirementError(where, f"unknown criterion {column!r}; {closest(column, LIMITABLE)}")
    if isinstance(spec, list | tuple):
        if len(spec) != 2:
            raise RequirementError(where, "a range is [min, max]")
        spec = {"min": spec[0], "max": spec[1]}
    if not isinstance(spec, Mapping) or not spec or set(spec) - {"min", "max"}:
        raise RequirementError(where, "give {min = …}, {max = …} or both, or [min, max]")
    low = None if spec.get("min") is None else _number(spec["min"], f"{where}.min")
    high = None if spec.get("max") is None else _number(spec["max"], f"{where}.max")
    if low is None and high is None:
        raise RequirementError(where, "give a minimum, a maximum or both")
    if low is not None and high is not None and low > high:
        raise RequirementError(where, f"minimum {low:g} is above maximum {high:g}")
    return Limit(column, low, high)


def _values(key: str, spec: Any, where: str) -> tuple[str, ...]:
    if isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, list | tuple) or not all(isinstance(v, str) and v for v in spec):
        raise RequirementError(where, "must be a list of names")
    known = {"ownership": OWNERSHIP, "statuses": OFFER_STATUSES}.get(key)
    for v in spec:
        if known is not None and v not in known:
            rule = f"{v!r} is not one of {', '.join(known)}"
            if key == "statuses" and v in ("sold", "withdrawn"):
                rule += " (sold and withdrawn sites are never offered)"
            raise RequirementError(where, rule)
    return tuple(dict.fromkeys(spec))


def _profile_name(name: Any, where: str) -> str:
    known = builtin_profiles()
    if not isinstance(name, str) or name not in known:
        raise RequirementError(where, f"unknown profile {name!r}; {closest(str(name), known)}")
    return name


def parse_requirements(doc: Any, where: str = "requirements") -> Requirements:
    """The requirements of an enquiry from its file's table (or the CLI's options).

    Keys: ``area_ha`` (range), ``profile`` (built-in profile whose constraints must
    pass), ``limits`` (table column → range; a column may also be a key of its own),
    ``max_price_pln_m2``, ``zoning_classes``, ``ownership``, ``statuses``."""
    if not isinstance(doc, Mapping):
        raise RequirementError(where, "must be a table")
    limits: dict[str, Limit] = {}
    allowed: dict[str, tuple[str, ...]] = {}
    profile = None
    extra = dict(doc.get("limits") or {})
    if not isinstance(doc.get("limits", {}), Mapping):
        raise RequirementError(f"{where}.limits", "must be a table of criterion = {min, max}")
    for key, spec in doc.items():
        at = f"{where}.{key}"
        if key == "limits":
            continue
        if key == "profile":
            profile = _profile_name(spec, at)
        elif key in SETS:
            allowed[key] = _values(key, spec, at)
        elif key == "max_price_pln_m2":
            limits["price_pln_m2"] = Limit("price_pln_m2", None, _number(spec, at))
        elif key in LIMITABLE:
            limits[key] = parse_limit(key, spec, at)
        else:
            known = [*REQUIREMENT_KEYS, *LIMITABLE]
            raise RequirementError(at, f"unknown requirement {key!r}; {closest(key, known)}")
    for key, spec in extra.items():
        limits[key] = parse_limit(key, spec, f"{where}.limits.{key}")
    return Requirements(tuple(limits.values()), profile, allowed)


def parse_preferences(doc: Any, req: Requirements, where: str = "preferences") -> Preferences:
    """The preferences: ``profile`` (default: the requirements' profile) and ``weights``
    (criterion = weight, criteria of that profile; the others keep theirs)."""
    doc = {} if doc is None else doc
    if not isinstance(doc, Mapping):
        raise RequirementError(where, "must be a table")
    unknown = set(doc) - {"profile", "weights"}
    if unknown:
        name = sorted(unknown)[0]
        raise RequirementError(
            f"{where}.{name}", f"unknown key; {closest(name, ['profile', 'weights'])}"
        )
    name = doc.get("profile", req.profile)
    if name is None:
        rule = f"give the profile that ranks the sites (one of {', '.join(builtin_profiles())})"
        raise RequirementError(f"{where}.profile", rule)
    name = _profile_name(name, f"{where}.profile")
    weights = doc.get("weights") or {}
    if not isinstance(weights, Mapping):
        raise RequirementError(f"{where}.weights", "must be a table of criterion = weight")
    weights = {str(k): _number(v, f"{where}.weights.{k}") for k, v in weights.items()}
    prefs = Preferences(name, weights)
    ranking_profile(prefs)  # refuses weights of criteria the profile does not have
    return prefs


def ranking_profile(prefs: Preferences) -> Profile:
    """The profile that ranks the sites: the built-in one with the preferred weights."""
    profile = load_profile(builtin_dir() / f"{prefs.profile}.toml")
    if not prefs.weights:
        return profile
    unknown = sorted(set(prefs.weights) - set(profile.weights))
    if unknown:
        rule = (
            f"criterion {unknown[0]!r} is not in profile {profile.name!r}; "
            f"{closest(unknown[0], list(profile.weights))}"
        )
        raise RequirementError(f"preferences.weights.{unknown[0]}", rule)
    try:
        return profile.with_weights(dict(prefs.weights), origin="preferences.weights")
    except ProfileError as exc:
        raise RequirementError("preferences.weights", str(exc).split(": ", 1)[-1]) from exc


# ------------------------------------------------------------------------------ checks
@dataclass
class Checks:
    """Per requirement (key): the state of every site and how far it misses (relative)."""

    state: dict[str, np.ndarray] = field(default_factory=dict)
    miss: dict[str, np.ndarray] = field(default_factory=dict)
    reasons: np.ndarray | None = None  # the profile's exclusion reason per site

    def matrix(self) -> np.ndarray:
        n = len(next(iter(self.state.values()))) if self.state else 0
        return np.column_stack(list(self.state.values())) if self.state else np.zeros((n, 0))


def _numbers(sites: pd.DataFrame, column: str) -> np.ndarray:
    if column not in sites.columns:
        return np.full(len(sites), np.nan)
    return pd.to_numeric(sites[column], errors="coerce").to_numpy(dtype=float)


def _limit_state(v: np.ndarray, lim: Limit) -> tuple[np.ndarray, np.ndarray]:
    ok = np.ones(len(v), dtype=bool)
    miss = np.zeros(len(v))
    with np.errstate(invalid="ignore"):
        if lim.low is not None:
            ok &= v >= lim.low
            miss = np.maximum(miss, (lim.low - v) / max(abs(lim.low), 1e-9))
        if lim.high is not None:
            ok &= v <= lim.high
            miss = np.maximum(miss, (v - lim.high) / max(abs(lim.high), 1e-9))
    state = np.where(np.isnan(v), UNKNOWN, np.where(ok, PASS, FAIL))
    return state, np.where(state == FAIL, miss, 0.0)


def _set_state(sites: pd.DataFrame, key: str, allowed: tuple[str, ...]) -> np.ndarray:
    column = SETS[key]
    if column not in sites.columns:
        return np.full(len(sites), UNKNOWN)
    text = sites[column].fillna("").astype(str).to_numpy()
    if key == "zoning_classes":
        wanted = set(allowed)
        ok = np.fromiter(
            (bool(wanted & {*t.split("/"), t}) for t in text), dtype=bool, count=len(text)
        )
    else:
        ok = np.isin(text, allowed)
    return np.where(text == "", UNKNOWN, np.where(ok, PASS, FAIL))


def check_sites(sites: pd.DataFrame, req: Requirements) -> Checks:
    """The state of every site for every requirement (vectorised)."""
    out = Checks()
    for lim in req.limits:
        out.state[lim.column], out.miss[lim.column] = _limit_state(_numbers(sites, lim.column), lim)
    for key, allowed in req.allowed.items():
        if allowed:
            out.state[SETS[key]] = _set_state(sites, key, allowed)
            out.miss[SETS[key]] = np.where(out.state[SETS[key]] == FAIL, 1.0, 0.0)
    if req.profile:
        ev = evaluate_profile(sites, load_profile(builtin_dir() / f"{req.profile}.toml"))
        reason = ev.reason.astype(str)
        state = np.where(reason == "", PASS, np.where(reason == NO_DATA_REASON, UNKNOWN, FAIL))
        out.state["profile"] = state
        out.miss["profile"] = np.where(state == FAIL, 1.0, 0.0)
        out.reasons = reason
    return out


def scores(sites: pd.DataFrame, profile: Profile) -> np.ndarray:
    """Each site's score (0..1) under ``profile`` whatever its constraints say (they are
    requirements only when the enquiry names the profile there); NaN with no data."""
    ev = evaluate_profile(sites, profile)
    score = aggregate(ev.values, ev.weights, profile.method, profile.vikor_v)
    return np.where(ev.reason == NO_DATA_REASON, np.nan, np.round(score, 6))


# ------------------------------------------------------------------------------ match
@dataclass
class Match:
    """A match: the shortlist (pick order) and the near misses, each site with its
    checks; ``candidates`` met every requirement before the top and the cap."""

    shortlist: list[dict[str, Any]]
    near_misses: list[dict[str, Any]]
    candidates: int
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "candidates": self.candidates,
            "shortlist": self.shortlist,
            "near_misses": self.near_misses,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _check(sites: pd.DataFrame, i: int, key: str, req: Requirements, checks: Checks) -> dict:
    state = STATE_NAMES[int(checks.state[key][i])]
    if key == "profile":
        return {"key": key, "state": state, "profile": req.profile}
    if key in SETS.values():
        set_key = next(k for k, c in SETS.items() if c == key)
        value = sites[key].iloc[i] if key in sites.columns else None
        return {
            "key": key,
            "state": state,
            "value": _plain(value) or None,
            "allowed": list(req.allowed[set_key]),
        }
    lim = next(x for x in req.limits if x.column == key)
    v = _plain(_numbers(sites, key)[i])
    out: dict[str, Any] = {"key": key, "state": state, "value": v, "unit": UNITS.get(key, "")}
    out.update({k: b for k, b in (("min", lim.low), ("max", lim.high)) if b is not None})
    if key in CONTEXT:
        out["context"] = {"key": CONTEXT[key], "value": _plain(_numbers(sites, CONTEXT[key])[i])}
    return out


def _site(sites: pd.DataFrame, i: int, score: float, req: Requirements, checks: Checks) -> dict:
    row = sites.iloc[i]
    items = [_check(sites, i, key, req, checks) for key in checks.state]
    if req.profile and checks.reasons is not None and checks.reasons[i]:
        profile = load_profile(builtin_dir() / f"{req.profile}.toml")
        site = {**row.to_dict(), f"excluded_{req.profile}": checks.reasons[i]}
        for item in items:
            if item["key"] == "profile":
                item["reason"] = {lang: site_exclusion(site, profile, lang) for lang in LANGUAGES}
    return {
        "site_id": str(row["site_id"]),
        "teryt": str(row.get("teryt", "")),
        "gmina": str(row.get("gmina", "")),
        "area_ha": _plain(row.get("area_ha")),
        "score": _plain(score),
        "checks": items,
    }


def match(
    sites: pd.DataFrame,
    req: Requirements,
    prefs: Preferences,
    top: int = 10,
    cap: int | None = None,
    near: int = 10,
    spread: Spread | None = None,
) -> Match:
    """Shortlist and near misses of one enquiry among the current ``sites``.

    Parameters
    ----------
    sites : the current site records (``site_id``, ``teryt``, ``gmina``, ``status`` and
        the criterion columns)
    req, prefs : the enquiry's requirements and preferences
    top : most sites on the shortlist
    cap : most sites per gmina on the shortlist (None: no cap)
    near : most near misses listed
    spread : ``spread(frame, "enquiry", k=top, cap=cap, decay=1.0)`` picks the shortlist
        from the candidates (frame with ``site_id``, ``teryt``, ``score_enquiry``,
        ``rank_enquiry``), as the regional balance does; None: the best ``top`` (no cap)
    """
    if top < 1 or near < 0 or (cap is not None and cap < 1):
        raise RequirementError("match", "top and cap must be at least 1, near at least 0")
    if cap is not None and spread is None:
        raise RequirementError("match", "a cap per gmina needs the balance rule (spread)")
    sites = sites.reset_index(drop=True)
    ids = sites["site_id"].astype(str).to_numpy()
    offer = on_offer(sites["status"] if "status" in sites.columns else None, len(sites))
    checks = check_sites(sites, req)
    states = checks.matrix()
    failed = (states == FAIL).sum(axis=1)
    score = scores(sites, ranking_profile(prefs))
    cand = np.flatnonzero(offer & (failed == 0))
    order = cand[np.lexsort((ids[cand], np.nan_to_num(-score[cand], nan=np.inf)))]
    frame = pd.DataFrame(
        {
            "site_id": ids[order],
            "teryt": sites["teryt"].astype(str).to_numpy()[order],
            SCORE: np.nan_to_num(score[order], nan=0.0),
            RANK: np.arange(1, len(order) + 1),
            "_row": order,
        }
    )
    if spread is None:
        picked = frame.head(top)
    else:
        picked = spread(frame, "enquiry", k=top, cap=cap, decay=1.0)
    shortlist = [_site(sites, int(i), score[int(i)], req, checks) for i in picked["_row"]]
    misses = _near_misses(sites, checks, offer & (failed == 1), ids, near)
    near_items = []
    for i in misses:
        item = _site(sites, int(i), score[int(i)], req, checks)
        bad = next(c for c in item["checks"] if c["state"] == "fail")
        item["failed"] = bad["key"]
        near_items.append(item)
    for n, item in enumerate(shortlist, 1):
        item["position"] = n
    for n, item in enumerate(near_items, 1):
        item["position"] = n
    params = {"top": top, "cap": cap, "near": near, "profile": prefs.profile}
    return Match(shortlist, near_items, len(order), params)


def _near_misses(
    sites: pd.DataFrame, checks: Checks, one: np.ndarray, ids: np.ndarray, near: int
) -> np.ndarray:
    rows = np.flatnonzero(one)
    if not len(rows) or not near:
        return rows[:0]
    miss = np.zeros(len(sites))
    for key, values in checks.miss.items():
        miss = np.where(checks.state[key] == FAIL, values, miss)
    return rows[np.lexsort((ids[rows], miss[rows]))][:near]


# ------------------------------------------------------------------------------ words
def quantity(value: Any, unit: str, lang: str) -> str:
    """A value with its unit in ``lang``: ``2,1 km``, ``6 min``, ``35 %``, ``tak``
    (a flag), ``1,2`` (a ratio)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return gettext(lang, "no data")
    v = float(value)
    if unit == "m" and abs(v) >= 1000:
        return f"{format_number(v / 1000, lang, 1)} km"
    if unit == "share":
        return f"{format_number(100 * v, lang, 0)} %"
    if unit == "flag":
        return gettext(lang, "yes") if v else gettext(lang, "no")
    if unit == "":
        return format_number(v, lang, 2)
    if unit == "persons":
        return f"{format_number(v, lang, 0)} {gettext(lang, 'persons')}"
    if unit in ("PLN/m²", "PLN/m²/year"):
        return f"{format_number(v, lang, 2)} {gettext(lang, unit)}"
    return f"{format_number(v, lang, 1 if unit in ('ha', 'MW', 'min', '%') else 0)} {unit}"


def criterion_name(key: str, lang: str) -> str:
    """What a requirement is about, in ``lang`` (``criterion:<column>`` in the catalogue)."""
    return gettext(lang, f"criterion:{key}")


def _asked(check: Mapping[str, Any], lang: str) -> str:
    unit = check.get("unit", "")
    low, high = check.get("min"), check.get("max")
    if low is not None and high is not None:
        return gettext(
            lang, "%(low)s–%(high)s", low=quantity(low, unit, lang), high=quantity(high, unit, lang)
        )
    if low is not None:
        return gettext(lang, "at least %(x)s", x=quantity(low, unit, lang))
    return gettext(lang, "at most %(x)s", x=quantity(high, unit, lang))


def _set_words(key: str, values: Sequence[str], lang: str) -> list[str]:
    if key == "status":
        return [gettext(lang, f"status:{v}") for v in values]
    if key == "ownership":
        return [gettext(lang, f"ownership:{v}") for v in values]
    return [str(v) for v in values]


def check_text(check: Mapping[str, Any], lang: str) -> str:
    """One check of a site in words: why it fits, what is missing, what is uncertain."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; supported: {', '.join(LANGUAGES)}")
    key, state = check["key"], check["state"]
    what = criterion_name(key, lang)
    if key == "profile":
        name = gettext(lang, f"profile:{check.get('profile')}")
        if state == "pass":
            return gettext(lang, "meets the conditions of the profile %(p)s", p=name)
        if state == "unknown":
            return gettext(lang, "%(what)s: no data to check the profile %(p)s", what=what, p=name)
        reason = (check.get("reason") or {}).get(lang, "")
        return gettext(lang, "%(what)s %(p)s: %(reason)s", what=what, p=name, reason=reason)
    if "allowed" in check:
        allowed = ", ".join(_set_words(key, check["allowed"], lang))
        if state == "unknown":
            return gettext(lang, "%(what)s: no data (%(asked)s asked)", what=what, asked=allowed)
        value = ", ".join(_set_words(key, [check.get("value") or ""], lang))
        if state == "fail":
            return gettext(
                lang, "%(what)s: %(value)s, not one of %(asked)s", what=what, value=value,
                asked=allowed,
            )  # fmt: skip
        return gettext(
            lang, "%(what)s: %(value)s (%(asked)s asked)", what=what, value=value, asked=allowed
        )
    asked = _asked(check, lang)
    if state == "unknown":
        text = gettext(lang, "%(what)s: no data (%(asked)s asked)", what=what, asked=asked)
    else:
        value = quantity(check.get("value"), check.get("unit", ""), lang)
        if state == "fail":
            text = gettext(
                lang, "%(what)s: %(value)s available, %(asked)s asked", what=what, value=value,
                asked=asked,
            )  # fmt: skip
        else:
            text = gettext(
                lang, "%(what)s: %(value)s (%(asked)s asked)", what=what, value=value, asked=asked
            )
    ctx = check.get("context")
    if ctx and ctx.get("value") is not None:
        unit = UNITS.get(ctx["key"], "")
        near = quantity(ctx["value"], unit, lang)
        text += " — " + gettext(
            lang, "%(what)s %(x)s", what=criterion_name(ctx["key"], lang), x=near
        )
    return text


def site_lines(item: Mapping[str, Any], lang: str) -> dict[str, list[str]]:
    """A listed site's checks in words: ``fits``, ``missing`` and ``uncertain``."""
    out: dict[str, list[str]] = {"fits": [], "missing": [], "uncertain": []}
    group = {"pass": "fits", "fail": "missing", "unknown": "uncertain"}
    for check in item.get("checks", []):
        out[group[check["state"]]].append(check_text(check, lang))
    return out


def shortfall_text(item: Mapping[str, Any], lang: str) -> str:
    """How far a near miss misses its one failed requirement ("2 MW short")."""
    bad = next((c for c in item.get("checks", []) if c["state"] == "fail"), None)
    if bad is None or bad.get("value") is None or "unit" not in bad:
        return ""
    v, unit = float(bad["value"]), bad.get("unit", "")
    if bad.get("min") is not None and v < bad["min"]:
        return gettext(lang, "%(x)s too little", x=quantity(bad["min"] - v, unit, lang))
    if bad.get("max") is not None and v > bad["max"]:
        return gettext(lang, "%(x)s too much", x=quantity(v - bad["max"], unit, lang))
    return ""


def requirement_lines(req: Mapping[str, Any], lang: str) -> list[str]:
    """Stored requirements (:meth:`Requirements.to_json`) in words, for the offer pack."""
    lines = []
    if req.get("profile"):
        name = gettext(lang, f"profile:{req['profile']}")
        lines.append(gettext(lang, "meets the conditions of the profile %(p)s", p=name))
    for key, lim in (req.get("limits") or {}).items():
        check = {"unit": UNITS.get(key, ""), **lim}
        lines.append(f"{criterion_name(key, lang)}: {_asked(check, lang)}")
    for key, column in SETS.items():
        if req.get(key):
            words = ", ".join(_set_words(column, req[key], lang))
            lines.append(f"{criterion_name(column, lang)}: {words}")
    return lines
