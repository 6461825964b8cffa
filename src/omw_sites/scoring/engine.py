"""Apply profiles to the site table: constraints, values, weights, method, rank and explanation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from omw_sites.layers import excluded_col, rank_col, score_col
from omw_sites.scoring.explain import drivers_text
from omw_sites.scoring.expr import evaluate
from omw_sites.scoring.methods import promethee2, rank_scores, rank_values
from omw_sites.scoring.profiles import Profile
from omw_sites.scoring.segments import readiness_tiers
from omw_sites.scoring.value import value
from omw_sites.scoring.weights import entropy


def drivers_col(profile: str) -> str:
    """Column of the top positive/negative drivers in words."""
    return f"drivers_{profile}"


def tier_col(profile: str) -> str:
    """Column of the readiness tier (A/B/C)."""
    return f"tier_{profile}"


def gaps_col(profile: str) -> str:
    """Column of the readiness gaps in words."""
    return f"gaps_{profile}"


@dataclass(frozen=True)
class Evaluation:
    """A profile applied to a site table, before aggregation.

    ``raw`` and ``values`` are sites × criteria (criterion units; 0..1 desirability),
    ``weights`` sum to 1, ``reason`` holds the exclusion reason ("" when eligible).
    """

    profile: Profile
    raw: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    reason: np.ndarray
    columns: dict[str, np.ndarray]

    @property
    def eligible(self) -> np.ndarray:
        return self.reason == ""


def derived_columns(sites: pd.DataFrame, profile: Profile) -> dict[str, np.ndarray]:
    """Columns a profile can refer to besides the measured criteria."""
    classes = sites["zoning_class"].fillna("").astype(str).to_numpy()
    allowed = set(profile.compatible_classes)
    uniq, inv = np.unique(classes, return_inverse=True)
    ok = np.fromiter((bool(allowed.intersection(c.split("/"))) for c in uniq), bool, len(uniq))
    by_mpzp = ok[inv].reshape(-1)
    by_plan = (sites["planning_instrument"].to_numpy() == "plan_ogolny") & np.isin(
        sites["plan_zone"].to_numpy(), profile.compatible_plan_zones
    )
    owner = sites["ownership"].to_numpy()
    return {
        "zoning_compatible": by_mpzp | by_plan,
        "owner_public": np.isin(owner, ("municipal", "state")),
        "owner_municipal": owner == "municipal",
    }


def evaluate_profile(sites: pd.DataFrame, profile: Profile) -> Evaluation:
    """Constraints, value-scaled criteria and resolved weights of one profile."""
    cols = {c: sites[c].to_numpy() for c in sites.columns if c != "geometry"}
    cols.update(derived_columns(sites, profile))
    missing = [c.name for c in profile.criteria if c.name not in cols]
    if missing:
        msg = f"profile {profile.name!r}: the site table has no column {', '.join(missing)}"
        raise ValueError(msg)
    n = len(sites)
    reason = np.full(n, "", dtype=object)
    area = sites["area_ha"].to_numpy(dtype=float)
    reason[area < profile.min_area_ha] = f"area below {profile.min_area_ha:g} ha"
    for con in profile.constraints:
        ok = np.broadcast_to(np.asarray(evaluate(con.expr, cols), dtype=bool), (n,))
        reason[(reason == "") & ~ok] = con.reason
    raw = np.column_stack([np.asarray(cols[c.name], dtype=float) for c in profile.criteria])
    values = np.column_stack([value(c, raw[:, j]) for j, c in enumerate(profile.criteria)])
    weights = np.array([c.weight for c in profile.criteria])
    eligible = reason == ""
    if profile.weighting == "entropy" and eligible.sum() >= 2:
        sub = values[eligible]
        live = sub.any(axis=0)
        w = np.zeros(len(weights))
        if live.any() and np.ptp(sub[:, live], axis=0).any():
            w[live] = entropy(sub[:, live])
            weights = w
    return Evaluation(profile, raw, values, weights, reason, cols)


def aggregate(values: np.ndarray, weights: np.ndarray, method: str, v: float = 0.5) -> np.ndarray:
    """Score 0..1 (higher is better) of value-scaled criteria with a fixed ideal.

    The ideal (value 1) and anti-ideal (value 0) are fixed by the profile's bounds rather
    than by the data, so a site's score never depends on the others: ``wlc`` Σ w·v;
    ``topsis`` D⁻/(D⁺ + D⁻) with distances to the fixed ideal points; ``vikor`` 1 − Q with
    S* = R* = 0 and S⁻ = 1, R⁻ = max w.

    Parameters
    ----------
    values : sites × criteria, 0..1
    weights : sums to 1
    method : ``wlc``, ``topsis``, ``vikor`` (``promethee2`` is handled on shortlists)
    """
    if method in ("wlc", "promethee2"):
        return values @ weights
    if method == "topsis":
        w2 = weights**2
        d_plus = np.sqrt(((1.0 - values) ** 2) @ w2)
        d_minus = np.sqrt((values**2) @ w2)
        total = d_plus + d_minus
        return np.divide(d_minus, total, out=np.full(len(values), 0.5), where=total > 0)
    if method == "vikor":
        regret = (1.0 - values) * weights
        s, r = regret.sum(axis=1), regret.max(axis=1)
        return 1.0 - (v * s + (1 - v) * r / weights.max())
    msg = f"unknown method {method!r}"
    raise ValueError(msg)


def score_profile(sites: pd.DataFrame, profile: Profile, explain: bool = True) -> pd.DataFrame:
    """Score, rank, exclusion reason, drivers and readiness of every site under one profile.

    Returns a frame indexed like ``sites`` with ``score_<p>`` (0..1, NaN when excluded),
    ``rank_<p>`` (1 = best, "min" ties, 0 when excluded), ``excluded_<p>`` (the first failed
    constraint, "" when eligible) and, with ``explain``, ``drivers_<p>`` (top positive and
    negative criteria in words), ``tier_<p>`` (readiness A/B/C) and ``gaps_<p>``.

    With ``method = "promethee2"`` the WLC score is kept and the profile's ``shortlist``
    best sites by WLC are re-ranked by PROMETHEE II net flow; the rest follow by WLC.
    """
    ev = evaluate_profile(sites, profile)
    eligible = ev.eligible
    score = aggregate(ev.values, ev.weights, profile.method, profile.vikor_v)
    score = np.where(eligible, np.round(score, 6), np.nan)
    rank = rank_scores(score, eligible)
    if profile.method == "promethee2":
        rank = _promethee_shortlist(ev, score, rank)
    out = {
        score_col(profile.name): score,
        rank_col(profile.name): rank,
        excluded_col(profile.name): ev.reason.astype(str),
    }
    if explain:
        out[drivers_col(profile.name)] = drivers_text(ev)
        tiers, gaps = readiness_tiers(ev)
        out[tier_col(profile.name)] = tiers
        out[gaps_col(profile.name)] = gaps
    return pd.DataFrame(out, index=sites.index)


def _promethee_shortlist(ev: Evaluation, score: np.ndarray, rank: np.ndarray) -> np.ndarray:
    size = min(ev.profile.shortlist, int(ev.eligible.sum()))
    if size < 2:
        return rank
    short = np.flatnonzero((rank > 0) & (rank <= size))
    flows = promethee2(
        ev.values[short], ev.weights, np.ones(len(ev.weights)), max_alternatives=len(short)
    )
    out = rank.copy()
    out[short] = rank_values(np.round(flows, 9))
    rest = (rank > 0) & ~np.isin(np.arange(len(rank)), short)
    out[rest] = rank[rest] - rank[rest].min() + len(short) + 1 if rest.any() else out[rest]
    return out


def score_sites(sites: pd.DataFrame, profiles: list[Profile]) -> pd.DataFrame:
    """``sites`` with score/rank/excluded/drivers/tier columns for every profile appended."""
    parts = [score_profile(sites, p) for p in profiles]
    return pd.concat([sites, *parts], axis=1)
