"""MCDA methods over an alternatives × criteria matrix: WLC, TOPSIS, VIKOR, PROMETHEE II."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import pandas as pd

NORMALIZATIONS = ("vector", "minmax")
PREFERENCES = ("usual", "linear", "vshape")
PROMETHEE_MAX_ALTERNATIVES = 2000  # pairwise n² memory: 2,000 sites ≈ 32 MB per criterion


@dataclass(frozen=True)
class VikorResult:
    """VIKOR measures per alternative (lower is better for all three).

    ``S`` group utility (weighted sum of regrets), ``R`` individual regret (worst weighted
    criterion), ``Q`` compromise index ``v·S' + (1 − v)·R'`` of the min-max scaled S and R.
    """

    S: np.ndarray
    R: np.ndarray
    Q: np.ndarray


def criterion_names(matrix: object, n: int, names: Sequence[str] | None = None) -> list[str]:
    """Names used in error messages: ``names``, a DataFrame's columns or ``criterion #j``."""
    if names is not None:
        return [str(c) for c in names]
    if isinstance(matrix, pd.DataFrame):
        return [str(c) for c in matrix.columns]
    return [f"criterion #{j + 1}" for j in range(n)]


# what comes back is typed by what was given: weights and types only when they were passed
@overload
def check_matrix(
    matrix: object,
    weights: None = None,
    types: None = None,
    *,
    names: Sequence[str] | None = None,
    allow_zero_column: bool = False,
) -> tuple[np.ndarray, None, None]: ...
@overload
def check_matrix(
    matrix: object,
    weights: object,
    types: None = None,
    *,
    names: Sequence[str] | None = None,
    allow_zero_column: bool = False,
) -> tuple[np.ndarray, np.ndarray, None]: ...
@overload
def check_matrix(
    matrix: object,
    weights: object,
    types: object,
    *,
    names: Sequence[str] | None = None,
    allow_zero_column: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def check_matrix(
    matrix: object,
    weights: object | None = None,
    types: object | None = None,
    *,
    names: Sequence[str] | None = None,
    allow_zero_column: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate and convert a decision matrix with its weights and types.

    Parameters
    ----------
    matrix : alternatives × criteria, array-like or DataFrame (its columns name criteria)
    weights : one non-negative weight per criterion (normalised to sum 1 on return)
    types : +1 (benefit) or −1 (cost) per criterion
    names : criterion names for error messages (default: DataFrame columns or ``#j``)
    allow_zero_column : accept a criterion that is 0 for every alternative

    Raises
    ------
    ValueError
        Shapes do not match, a value is NaN/infinite (naming the criterion), a column is all
        zero, weights are negative or sum to 0, or types are not ±1.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        msg = f"decision matrix must be 2-D alternatives × criteria with data, got shape {m.shape}"
        raise ValueError(msg)
    labels = criterion_names(matrix, m.shape[1], names)
    finite = np.isfinite(m)
    if not finite.all():
        j = int(np.flatnonzero(~finite.all(axis=0))[0])
        i = int(np.flatnonzero(~finite[:, j])[0])
        msg = (
            f"criterion {labels[j]!r} has a missing or infinite value (row {i}: {m[i, j]}); "
            "fill or drop it before scoring"
        )
        raise ValueError(msg)
    if not allow_zero_column:
        zero = ~m.any(axis=0)
        if zero.any():
            bad = ", ".join(repr(labels[j]) for j in np.flatnonzero(zero))
            msg = f"criterion {bad} is zero for every alternative; cannot be normalised; drop it"
            raise ValueError(msg)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=float).reshape(-1)
        if w.shape[0] != m.shape[1]:
            msg = f"matrix {m.shape} and weights {w.shape} do not match"
            raise ValueError(msg)
        if not np.isfinite(w).all() or (w < 0).any():
            j = int(np.flatnonzero(~(np.isfinite(w) & (w >= 0)))[0])
            msg = f"weight of criterion {labels[j]!r} must be a finite number ≥ 0 (got {w[j]})"
            raise ValueError(msg)
        if not w.sum() > 0:
            msg = "weights must sum to a positive number"
            raise ValueError(msg)
        w = w / w.sum()
    t = None
    if types is not None:
        t = np.asarray(types, dtype=float).reshape(-1)
        if t.shape[0] != m.shape[1]:
            msg = f"matrix {m.shape} and types {t.shape} do not match"
            raise ValueError(msg)
        if not np.isin(t, (-1.0, 1.0)).all():
            j = int(np.flatnonzero(~np.isin(t, (-1.0, 1.0)))[0])
            msg = f"type of criterion {labels[j]!r} must be +1 (benefit) or -1 (cost), got {t[j]}"
            raise ValueError(msg)
    return m, w, t


def wlc(matrix: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted linear combination Σ_j w_j·v_ij / Σ_j w_j.

    Parameters
    ----------
    matrix : alternatives × criteria of value-scaled criteria (0..1, higher is better)
    weights : non-negative weights, one per criterion (normalised here)

    Returns
    -------
    ndarray
        Score per alternative, in the matrix's scale (0..1 for value-scaled input).
    """
    m, w, _ = check_matrix(matrix, weights, allow_zero_column=True)
    return m @ w


def _closeness(d_plus: np.ndarray, d_minus: np.ndarray) -> np.ndarray:
    total = d_plus + d_minus
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, d_minus / total, 0.5)


def topsis(
    matrix: np.ndarray,
    weights: np.ndarray,
    types: np.ndarray,
    normalization: str = "vector",
) -> np.ndarray:
    """TOPSIS closeness coefficient (Hwang & Yoon) of every alternative.

    Columns are normalised (``"vector"``: x / ‖x‖₂; ``"minmax"``: (x − min)/(max − min),
    reversed for cost criteria), weighted, and each alternative's Euclidean distances to the
    positive (D⁺) and negative (D⁻) ideal give ``C = D⁻ / (D⁺ + D⁻)``.

    Parameters
    ----------
    matrix : alternatives × criteria in the criteria's own units
    weights : non-negative weights (normalised here)
    types : +1 benefit, −1 cost, per criterion
    normalization : ``"vector"`` (default) or ``"minmax"``

    Returns
    -------
    ndarray
        Closeness 0..1 per alternative (1 = at the positive ideal).
    """
    if normalization not in NORMALIZATIONS:
        msg = f"normalization {normalization!r} not one of {', '.join(NORMALIZATIONS)}"
        raise ValueError(msg)
    m, w, t = check_matrix(matrix, weights, types)
    # weighted normalised matrix in one pass: v = m·a + b per column
    if normalization == "vector":
        a = w / np.sqrt(np.einsum("ij,ij->j", m, m))
        v = m * a
        pis = np.where(t > 0, v.max(axis=0), v.min(axis=0))
        nis = np.where(t > 0, v.min(axis=0), v.max(axis=0))
    else:
        lo, hi = m.min(axis=0), m.max(axis=0)
        live = hi > lo
        span = np.where(live, hi - lo, 1.0)
        a = np.where(live, t * w / span, 0.0)
        b = np.where(live, np.where(t > 0, -lo, hi) * w / span, 0.0)
        v = m * a
        v += b
        pis, nis = w * live, np.zeros_like(w)
    # ‖v − p‖² = Σv² − 2 v·p + Σp², with both reference points in one matrix product
    sq = np.einsum("ij,ij->i", v, v)
    cross = v @ np.column_stack([pis, nis])
    d_plus = np.sqrt(np.maximum(sq - 2 * cross[:, 0] + pis @ pis, 0.0))
    d_minus = np.sqrt(np.maximum(sq - 2 * cross[:, 1] + nis @ nis, 0.0))
    return _closeness(d_plus, d_minus)


def vikor(
    matrix: np.ndarray, weights: np.ndarray, types: np.ndarray, v: float = 0.5
) -> VikorResult:
    """VIKOR (Opricovic & Tzeng 2004): group utility S, regret R and compromise Q.

    Parameters
    ----------
    matrix : alternatives × criteria in the criteria's own units
    weights : non-negative weights (normalised here)
    types : +1 benefit, −1 cost, per criterion
    v : weight of the strategy of the majority of criteria (0..1)

    Returns
    -------
    VikorResult
        ``S``, ``R``, ``Q`` arrays; rank by ascending ``Q`` (0 = best). A criterion that
        is equal for every alternative contributes nothing.
    """
    if not 0 <= v <= 1:
        msg = f"v must be between 0 and 1, got {v}"
        raise ValueError(msg)
    m, w, t = check_matrix(matrix, weights, types, allow_zero_column=True)
    best = np.where(t > 0, m.max(axis=0), m.min(axis=0))
    worst = np.where(t > 0, m.min(axis=0), m.max(axis=0))
    span = best - worst
    safe = np.where(span != 0, span, 1.0)
    d = w * (best - m) / safe * (span != 0)
    s, r = d.sum(axis=1), d.max(axis=1)
    return VikorResult(S=s, R=r, Q=_vikor_q(s, r, v))


def _vikor_q(s: np.ndarray, r: np.ndarray, v: float) -> np.ndarray:
    s_span, r_span = s.max() - s.min(), r.max() - r.min()
    qs = (s - s.min()) / s_span if s_span > 0 else np.zeros_like(s)
    qr = (r - r.min()) / r_span if r_span > 0 else np.zeros_like(r)
    return v * qs + (1 - v) * qr


def promethee2(
    matrix: np.ndarray,
    weights: np.ndarray,
    types: np.ndarray,
    preference: str = "usual",
    q: np.ndarray | float | None = None,
    p: np.ndarray | float | None = None,
    *,
    max_alternatives: int = PROMETHEE_MAX_ALTERNATIVES,
) -> np.ndarray:
    """PROMETHEE II net outranking flow φ = φ⁺ − φ⁻ (flows divided by n − 1).

    Parameters
    ----------
    matrix : alternatives × criteria in the criteria's own units
    weights : non-negative weights (normalised here)
    types : +1 benefit, −1 cost, per criterion
    preference : ``"usual"`` (P = 1 if d > 0), ``"vshape"`` (P = d/p up to 1) or
        ``"linear"`` (0 up to q, linear to 1 at p)
    q, p : indifference and preference thresholds, in each criterion's units (scalar or per
        criterion); ``vshape`` needs ``p``, ``linear`` needs ``q`` and ``p`` with q < p
    max_alternatives : refuse larger inputs (the method compares all pairs)

    Returns
    -------
    ndarray
        Net flow per alternative in −1..1 (higher is better).
    """
    if preference not in PREFERENCES:
        msg = f"preference {preference!r} not one of {', '.join(PREFERENCES)}"
        raise ValueError(msg)
    m, w, t = check_matrix(matrix, weights, types, allow_zero_column=True)
    n, k = m.shape
    if n > max_alternatives:
        msg = (
            f"PROMETHEE II compares every pair of alternatives; {n:,} is above the limit of "
            f"{max_alternatives:,}. Shortlist first (e.g. the WLC top {max_alternatives:,}) or "
            "raise max_alternatives"
        )
        raise ValueError(msg)
    if n < 2:
        return np.zeros(n)
    qv = np.broadcast_to(np.asarray(0.0 if q is None else q, dtype=float), (k,))
    if preference != "usual":
        if p is None:
            msg = f"preference {preference!r} needs the preference threshold p"
            raise ValueError(msg)
        pv = np.broadcast_to(np.asarray(p, dtype=float), (k,))
        if preference == "linear" and q is None:
            msg = "preference 'linear' needs the indifference threshold q"
            raise ValueError(msg)
        lo = qv if preference == "linear" else np.zeros(k)
        if not (pv > lo).all():
            msg = "preference threshold p must be positive and greater than q"
            raise ValueError(msg)
    pi = np.zeros((n, n))
    for j in range(k):  # loop over criteria (few); pairs are vectorised
        d = (m[:, j, None] - m[None, :, j]) * t[j]
        if preference == "usual":
            pref = (d > 0).astype(float)
        elif preference == "vshape":
            pref = np.clip(d / pv[j], 0.0, 1.0)
        else:
            pref = np.clip((d - qv[j]) / (pv[j] - qv[j]), 0.0, 1.0)
        pi += w[j] * pref
    phi_plus = pi.sum(axis=1) / (n - 1)
    phi_minus = pi.sum(axis=0) / (n - 1)
    return phi_plus - phi_minus


def rank_values(values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Ranks 1 = best with the "min" tie convention (1, 2, 2, 4); NaN ranks 0.

    Parameters
    ----------
    values : scores (or Q/costs with ``higher_is_better=False``)
    """
    s = pd.Series(np.asarray(values, dtype=float))
    return (
        s.rank(ascending=not higher_is_better, method="min").fillna(0).astype(np.int64).to_numpy()
    )


def rank_scores(scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Rank 1 = best among eligible sites ("min" ties: 1, 2, 2, 4); 0 for excluded."""
    return rank_values(np.where(eligible, scores, np.nan))
