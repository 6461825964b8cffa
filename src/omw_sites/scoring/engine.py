"""Apply profiles to the site table: constraints, values, weights, method, rank and explanation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from omw_sites.layers import SITE_COLUMNS, SITE_NO_DATA, excluded_col, rank_col, score_col
from omw_sites.scoring.explain import drivers_text
from omw_sites.scoring.expr import evaluate, names_in
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


NO_DATA_REASON = "no data for any criterion of the profile"
#: sites explained (drivers, tiers, gaps) at a time
EXPLAIN_ROWS = 20_000
#: statuses of a site that is no longer offered: it keeps its score but has no rank
OFF_OFFER = ("sold", "withdrawn")
#: the exclusion reason of a site the profile would rank but that is not on offer
NOT_ON_OFFER = "not on offer"


def on_offer(status: object, n: int) -> np.ndarray:
    """Per site: True unless its status is sold or withdrawn (``status``: the sites'
    statuses, or None when they are not known — every site is then on offer)."""
    if status is None:
        return np.ones(n, dtype=bool)
    values = pd.Series(np.asarray(status, dtype=object)).fillna("").astype(str)
    return ~values.isin(OFF_OFFER).to_numpy()


@dataclass(frozen=True)
class Evaluation:
    """A profile applied to a site table, before aggregation.

    ``raw`` and ``values`` are sites × criteria (criterion units; 0..1 desirability),
    ``weights`` sum to 1, ``reason`` holds the exclusion reason ("" when eligible).

    Missing data: ``measured`` (sites × criteria) is False where a criterion has no value
    for a site (NaN). A criterion measured for no site at all gets weight 0 and the
    others are renormalised (``dropped`` names them). Where one site lacks a value the
    others have, its cell in ``values`` holds the site's own weighted mean of its
    measured values — the same score as renormalising that site's weights over what
    was measured, neither a best nor a worst. ``unknown`` maps a column to the sites
    without a value for it; ``unchecked`` a constraint's reason to the number of sites
    it could not be checked on for want of data (it is not applied to them).
    """

    profile: Profile
    raw: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    reason: np.ndarray
    columns: dict[str, np.ndarray]
    measured: np.ndarray | None = None
    unknown: Mapping[str, np.ndarray] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    unchecked: Mapping[str, int] = field(default_factory=dict)

    @property
    def eligible(self) -> np.ndarray:
        return self.reason == ""

    def rows(self, part: slice) -> Evaluation:
        """The same evaluation of the sites ``part`` only (weights stay the whole
        table's): what explains those sites, a slice at a time."""

        def cut(v: np.ndarray) -> np.ndarray:
            return v[part] if isinstance(v, np.ndarray) and v.ndim and len(v) == n else v

        n = len(self.reason)
        return replace(
            self,
            raw=self.raw[part],
            values=self.values[part],
            reason=self.reason[part],
            columns={k: cut(v) for k, v in self.columns.items()},
            measured=None if self.measured is None else self.measured[part],
            unknown={k: cut(v) for k, v in self.unknown.items()},
        )

    def notes(self) -> dict[str, object]:
        """What missing data did to this profile (for the run summary and ``run_info``)."""
        return {
            "weights": {
                c.name: round(float(w), 6)
                for c, w in zip(self.profile.criteria, self.weights, strict=True)
            },
            "criteria_without_data": list(self.dropped),
            "constraints_not_applied": dict(self.unchecked),
            "sites_missing_some_criteria": int((~self.measured).any(axis=1).sum())
            if self.measured is not None and self.measured.size
            else 0,
        }


#: the site columns :func:`derived_columns` reads
DERIVED_FROM = ("zoning_class", "planning_instrument", "plan_zone", "ownership")


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


def profile_names(profile: Profile) -> set[str]:
    """The site columns a profile reads: its criteria, the names in its constraints and
    readiness checks, and what every profile reads (area, the site's own no-data
    reason, the columns of :func:`derived_columns`)."""
    names = {c.name for c in profile.criteria}
    for expr in [*(c.expr for c in profile.constraints), *(r.expr for r in profile.readiness)]:
        names |= names_in(expr)
    return names | {"area_ha", SITE_NO_DATA, *DERIVED_FROM}


def site_columns(
    sites: pd.DataFrame, names: Iterable[str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The site table as arrays for expressions, and per column the sites without a value
    (only the columns ``names``, when given: a text column becomes one Python string per
    site, and a profile uses a few of the table's hundred columns).

    Numbers: NaN is no value. Flags with no value (nullable booleans, NA; or, as read
    back from the store, objects holding True/False/None) are given as False to
    expressions — the ``unknown`` mask says they are not known.
    """
    cols: dict[str, np.ndarray] = {}
    unknown: dict[str, np.ndarray] = {}
    wanted = None if names is None else set(names)
    for c in sites.columns:
        if c == "geometry" or (wanted is not None and c not in wanted):
            continue
        s = sites[c]
        if s.dtype == object and _nullable_flags(s):
            s = s.astype("boolean")
        if isinstance(s.dtype, pd.BooleanDtype):
            na = s.isna().to_numpy()
            cols[c] = s.fillna(False).to_numpy(dtype=bool)
            if na.any():
                unknown[c] = na
        elif pd.api.types.is_float_dtype(s):
            cols[c] = s.to_numpy(dtype=float, na_value=np.nan)
            na = np.isnan(cols[c])
            if na.any():
                unknown[c] = na
        else:
            cols[c] = s.to_numpy()
    return cols, unknown


def _nullable_flags(s: pd.Series) -> bool:
    """An object column of True/False with some or all missing (a flag without data, as
    the store gives it back)."""
    na = s.isna()
    if not na.any():
        return False
    return na.all() or pd.api.types.infer_dtype(s[~na], skipna=True) == "boolean"


def evaluate_profile(sites: pd.DataFrame, profile: Profile) -> Evaluation:
    """Constraints, value-scaled criteria and resolved weights of one profile.

    A constraint is not applied to a site that lacks the data it tests (it neither
    passes on a guess nor excludes on one); ``Evaluation.unchecked`` counts those sites.
    """
    cols, unknown = site_columns(sites, profile_names(profile))
    cols.update(derived_columns(sites, profile))
    if "planning_instrument" in cols:  # no zoning layer at all: compatibility not known
        blind = np.asarray(cols["planning_instrument"] == "unknown", dtype=bool)
        if blind.any():
            unknown["zoning_compatible"] = blind
    # a measured column the table predates (a store written before it was measured) is
    # no data for every site: its criterion drops out, its constraint is not applied
    named = {n for con in profile.constraints for n in names_in(con.expr)}
    for name in named | {c.name for c in profile.criteria}:
        if name in SITE_COLUMNS and name not in cols:
            cols[name] = np.full(len(sites), np.nan)
            unknown[name] = np.ones(len(sites), dtype=bool)
    missing = [c.name for c in profile.criteria if c.name not in cols]
    if missing:
        msg = f"profile {profile.name!r}: the site table has no column {', '.join(missing)}"
        raise ValueError(msg)
    n = len(sites)
    reason = np.full(n, "", dtype=object)
    area = sites["area_ha"].to_numpy(dtype=float)
    reason[area < profile.min_area_ha] = f"area below {profile.min_area_ha:g} ha"
    unchecked: dict[str, int] = {}
    for con in profile.constraints:
        ok = np.broadcast_to(np.asarray(evaluate(con.expr, cols), dtype=bool), (n,))
        blind = _blind(con.expr, unknown, n)
        if blind.any():
            unchecked[con.reason] = int(blind.sum())
            ok = ok | blind
        reason[(reason == "") & ~ok] = con.reason
    k = len(profile.criteria)
    raw = (
        np.column_stack([_numbers(cols[c.name], unknown.get(c.name)) for c in profile.criteria])
        if k
        else np.empty((n, 0))
    )
    values = (
        np.column_stack([value(c, raw[:, j]) for j, c in enumerate(profile.criteria)])
        if k
        else np.empty((n, 0))
    )
    measured = ~np.isnan(raw)
    live = np.asarray(measured.any(axis=0)) if n else np.ones(k, dtype=bool)
    weights = np.array([c.weight for c in profile.criteria], dtype=float)
    dropped = tuple(c.name for c, ok in zip(profile.criteria, live, strict=True) if not ok)
    if dropped and weights[live].sum() > 0:
        weights = np.where(live, weights, 0.0) / weights[live].sum()
    values, nothing = _fill_missing(values, measured & live, weights)
    reason[(reason == "") & nothing] = NO_DATA_REASON
    eligible = reason == ""
    if profile.weighting == "entropy" and eligible.sum() >= 2:
        sub = values[eligible]
        use = sub.any(axis=0) & live
        w = np.zeros(len(weights))
        if use.any() and np.ptp(sub[:, use], axis=0).any():
            w[use] = entropy(sub[:, use])
            weights = w
    return Evaluation(
        profile, raw, values, weights, reason, cols, measured, unknown, dropped, unchecked
    )


def _blind(expr: str, unknown: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Sites without a value for some column ``expr`` refers to."""
    out = np.zeros(n, dtype=bool)
    for name in names_in(expr):
        if name in unknown:
            out |= unknown[name]
    return out


def _numbers(column: np.ndarray, unknown: np.ndarray | None) -> np.ndarray:
    x = np.asarray(column, dtype=float).copy()
    if unknown is not None:
        x[unknown] = np.nan
    return x


def _fill_missing(
    values: np.ndarray, measured: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``values`` with each unmeasured cell set to its site's weighted mean of the
    measured ones (see :class:`Evaluation`), and the sites with nothing measured."""
    if measured.all():
        return values, np.zeros(len(values), dtype=bool)
    w = measured * weights
    total = w.sum(axis=1)
    nothing = total <= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(nothing, 0.0, (values * w).sum(axis=1) / np.where(nothing, 1, total))
    return np.where(measured, values, mean[:, None]), nothing


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


def score_profile(
    sites: pd.DataFrame,
    profile: Profile,
    explain: bool = True,
    notes: dict[str, dict[str, object]] | None = None,
    status: object = None,
) -> pd.DataFrame:
    """Score, rank, exclusion reason, drivers and readiness of every site under one profile.

    Returns a frame indexed like ``sites`` with ``score_<p>`` (0..1, NaN when excluded),
    ``rank_<p>`` (1 = best, "min" ties, 0 when excluded), ``excluded_<p>`` (the first failed
    constraint, "" when eligible) and, with ``explain``, ``drivers_<p>`` (top positive and
    negative criteria in words), ``tier_<p>`` (readiness A/B/C) and ``gaps_<p>``.

    Status: a site sold or withdrawn (``status``, else the ``status`` column of ``sites``
    when it has one) is not ranked: rank 0 and the reason :data:`NOT_ON_OFFER` when the
    profile would rank it (a failed constraint stays its reason). It keeps its score,
    drivers and tier: they describe the land, not the offer, so the site's page still
    shows what it is worth, and when it comes back on offer (withdrawn → available) its
    rank follows from the stored score at once (:func:`offer_ranks`). Weights (entropy)
    and scores do not depend on statuses, so a status change moves ranks only.

    With ``method = "promethee2"`` the WLC score is kept and the profile's ``shortlist``
    best sites by WLC are re-ranked by PROMETHEE II net flow; the rest follow by WLC.

    ``notes``, when given, receives ``notes[profile.name]``: the weights used, the
    criteria without data and the constraints not applied (:meth:`Evaluation.notes`).
    """
    ev = evaluate_profile(sites, profile)
    if notes is not None:
        notes[profile.name] = ev.notes()
    eligible = ev.eligible
    if status is None and "status" in sites.columns:
        status = sites["status"]
    offer = on_offer(status, len(sites))
    score = aggregate(ev.values, ev.weights, profile.method, profile.vikor_v)
    score = np.where(eligible, np.round(score, 6), np.nan)
    rank = rank_scores(score, eligible & offer)
    if profile.method == "promethee2":
        rank = _promethee_shortlist(ev, score, rank)
    reason = ev.reason.astype(str)
    reason[eligible & ~offer] = NOT_ON_OFFER
    out = {
        score_col(profile.name): score,
        rank_col(profile.name): rank,
        excluded_col(profile.name): reason,
    }
    frame = pd.DataFrame(out, index=sites.index)
    if explain:
        words: dict[str, list[pd.Series]] = {
            drivers_col(profile.name): [],
            tier_col(profile.name): [],
            gaps_col(profile.name): [],
        }
        # a slice of sites at a time: the texts are built as fixed-width arrays as wide
        # as their longest text (hundreds of characters), one cell per site
        for start in range(0, len(sites), EXPLAIN_ROWS):
            part = ev.rows(slice(start, start + EXPLAIN_ROWS))
            tiers, gaps = readiness_tiers(part)
            for col, text in zip(words, (drivers_text(part), tiers, gaps), strict=True):
                words[col].append(pd.Series(pd.array(text, dtype="str")))
        for col, parts in words.items():
            frame[col] = (
                pd.concat(parts, ignore_index=True).set_axis(sites.index)
                if parts
                else pd.Series(pd.array([], dtype="str"), index=sites.index)
            )
    return frame


def _promethee_shortlist(ev: Evaluation, score: np.ndarray, rank: np.ndarray) -> np.ndarray:
    size = min(ev.profile.shortlist, int((rank > 0).sum()))
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


def score_sites(
    sites: pd.DataFrame,
    profiles: list[Profile],
    notes: dict[str, dict[str, object]] | None = None,
    status: object = None,
) -> pd.DataFrame:
    """``sites`` with score/rank/excluded/drivers/tier columns for every profile appended
    (``notes``, ``status``: see :func:`score_profile`)."""
    parts = [score_profile(sites, p, notes=notes, status=status) for p in profiles]
    return pd.concat([sites, *parts], axis=1)


def offer_ranks(
    score: np.ndarray,
    excluded: object,
    offer: np.ndarray,
    rank: np.ndarray | None = None,
    keep_order: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One profile's ranks and exclusion reasons made again from its stored results when
    statuses change (a status edit, a site ended): the same one sort as
    :func:`score_profile`, without evaluating the profile again.

    The sites the profile ranks are those with no reason or :data:`NOT_ON_OFFER` (both
    keep their score); of those, the ones on offer (``offer``) are ranked by score, the
    others get :data:`NOT_ON_OFFER`. Other reasons (failed constraints) stay.

    With ``keep_order`` the stored order (``rank``) is kept instead, the gaps closed, and
    a site back on offer goes before the first ranked site with a lower score: for
    PROMETHEE II, whose shortlist order comes from net flows that need the criteria
    (the next ``score``/``run`` computes them again), and for ranks a run has just
    written, which only the statuses may move.
    """
    reason = pd.Series(np.asarray(excluded, dtype=object)).fillna("").astype(str).to_numpy()
    score = np.asarray(score, dtype=float)
    scored = (reason == "") | (reason == NOT_ON_OFFER)
    ranked = scored & offer
    reason = np.where(scored, np.where(offer, "", NOT_ON_OFFER), reason).astype(object)
    if not keep_order or rank is None:
        return rank_scores(score, ranked), reason
    return _kept_order(score, np.asarray(rank, dtype=float), ranked), reason


def _kept_order(score: np.ndarray, rank: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """Ranks of ``ranked`` sites in their stored order, gaps closed; a site without a
    stored rank goes before the first ranked site with a lower score."""
    had = ranked & (np.nan_to_num(rank) > 0)
    key = np.where(had, rank, np.nan)
    back = np.flatnonzero(ranked & ~had)
    if len(back):
        rows = np.flatnonzero(had)
        rows = rows[np.argsort(rank[rows], kind="stable")]
        last = float(np.nanmax(key)) + 1 if len(rows) else 1.0
        for i in back:
            lower = rows[score[rows] < score[i]]
            key[i] = rank[lower[0]] - 0.5 if len(lower) else last
    return rank_values(key, higher_is_better=False)
