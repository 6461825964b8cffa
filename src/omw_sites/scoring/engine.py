"""Apply profiles to the site table: constraints, values, weights, score and rank."""

from __future__ import annotations

import numpy as np
import pandas as pd

from omw_sites.layers import excluded_col, rank_col, score_col
from omw_sites.scoring.expr import evaluate
from omw_sites.scoring.methods import rank_scores, wlc
from omw_sites.scoring.profiles import Profile
from omw_sites.scoring.value import value


def derived_columns(sites: pd.DataFrame, profile: Profile) -> dict[str, np.ndarray]:
    """Columns a profile can refer to besides the measured criteria."""
    classes = sites["zoning_class"].fillna("").astype(str).to_numpy()
    allowed = set(profile.compatible_classes)
    by_mpzp = np.fromiter((bool(allowed.intersection(c.split("/"))) for c in classes), bool)
    by_plan = (sites["planning_instrument"].to_numpy() == "plan_ogolny") & np.isin(
        sites["plan_zone"].to_numpy(), profile.compatible_plan_zones
    )
    owner = sites["ownership"].to_numpy()
    return {
        "zoning_compatible": by_mpzp | by_plan,
        "owner_public": np.isin(owner, ("municipal", "state")),
        "owner_municipal": owner == "municipal",
    }


def score_profile(sites: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Score, rank and exclusion reason of every site under one profile.

    Returns a frame with ``score_<p>`` (0..1, NaN when excluded), ``rank_<p>`` (1 = best,
    0 when excluded) and ``excluded_<p>`` (the first failed constraint's reason, "" when
    eligible), indexed like ``sites``.
    """
    cols = {c: sites[c].to_numpy() for c in sites.columns if c != "geometry"}
    cols.update(derived_columns(sites, profile))
    n = len(sites)
    reason = np.full(n, "", dtype=object)
    area = sites["area_ha"].to_numpy(dtype=float)
    too_small = area < profile.min_area_ha
    reason[too_small] = f"area below {profile.min_area_ha:g} ha"
    for con in profile.constraints:
        ok = np.broadcast_to(np.asarray(evaluate(con.expr, cols), dtype=bool), (n,))
        reason[(reason == "") & ~ok] = con.reason
    eligible = reason == ""
    matrix = np.column_stack(
        [value(c, np.asarray(cols[c.name], dtype=float)) for c in profile.criteria]
    )
    weights = np.array([c.weight for c in profile.criteria])
    score = wlc(matrix, weights)
    score = np.where(eligible, np.round(score, 6), np.nan)
    return pd.DataFrame(
        {
            score_col(profile.name): score,
            rank_col(profile.name): rank_scores(score, eligible),
            excluded_col(profile.name): reason.astype(str),
        },
        index=sites.index,
    )


def score_sites(sites: pd.DataFrame, profiles: list[Profile]) -> pd.DataFrame:
    """``sites`` with score/rank/excluded columns for every profile appended."""
    parts = [score_profile(sites, p) for p in profiles]
    return pd.concat([sites, *parts], axis=1)
