"""Value functions: raw criterion values (with units) → 0..1 desirability."""

from __future__ import annotations

import numpy as np

from omw_sites.scoring.profiles import Criterion


def value(crit: Criterion, raw: np.ndarray) -> np.ndarray:
    """Desirability 0..1 of ``raw`` under ``crit``; missing values (NaN) score 0.

    Functions: ``linear`` between fixed bounds; ``piecewise`` through (x, value) points;
    ``threshold`` (1 at or beyond the threshold on the good side — below it for cost
    criteria — else 0); ``gaussian`` around an ideal value, ``exp(−(x − ideal)² / 2σ²)``
    with σ = ``spread`` (for criteria with a sweet spot, e.g. plot size for a data centre);
    ``boolean`` (non-zero is true). Bounds are fixed per criterion in the profile, so one
    site's value never depends on the others (adding or removing a site never reorders the
    rest).
    """
    x = np.asarray(raw, dtype=float)
    f = crit.function
    if f == "boolean":
        v = (np.nan_to_num(x, nan=0.0) != 0).astype(float)
        return 1.0 - v if crit.direction == "cost" else v
    # each function's parameters are there: Criterion checks them when it is made
    if f == "piecewise":
        assert crit.points is not None
        xs, vs = zip(*crit.points, strict=True)
        v = np.interp(x, xs, vs)
    elif f == "threshold":
        assert crit.threshold is not None
        v = (x <= crit.threshold) if crit.direction == "cost" else (x >= crit.threshold)
        v = v.astype(float)
    elif f == "gaussian":
        assert crit.ideal is not None and crit.spread is not None
        v = np.exp(-0.5 * ((x - crit.ideal) / crit.spread) ** 2)
    else:
        assert crit.bounds is not None
        lo, hi = crit.bounds
        v = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
        if crit.direction == "cost":
            v = 1.0 - v
    return np.where(np.isnan(x), 0.0, v)
