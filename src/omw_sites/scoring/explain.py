"""Per-site explanations: each criterion's raw value, value, weight and contribution, in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from omw_sites.scoring.profiles import Criterion

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
