"""MCDA aggregation methods over an alternatives × criteria matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd


def wlc(matrix: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted linear combination: Σ w_j·v_ij / Σ w_j over value-scaled columns (0..1)."""
    m = np.asarray(matrix, dtype=float)
    w = np.asarray(weights, dtype=float)
    if m.ndim != 2 or m.shape[1] != w.shape[0]:
        msg = f"matrix {m.shape} and weights {w.shape} do not match"
        raise ValueError(msg)
    if not w.sum() > 0:
        msg = "weights must sum to a positive number"
        raise ValueError(msg)
    return m @ (w / w.sum())


def rank_scores(scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Rank 1 = best among eligible sites ("min" ties: 1, 2, 2, 4); 0 for excluded."""
    s = pd.Series(np.where(eligible, scores, np.nan))
    return s.rank(ascending=False, method="min").fillna(0).astype(np.int64).to_numpy()
