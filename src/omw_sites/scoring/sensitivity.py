"""Rank stability under weight uncertainty (Dirichlet Monte Carlo) and scenario comparison."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

STABILITY_METHODS = ("wlc", "topsis", "vikor")


@dataclass(frozen=True)
class Stability:
    """Rank distribution of every alternative over weight draws.

    ``p5``/``median``/``p95`` are rank percentiles (1 = best), ``p_top`` the share of draws
    in which the alternative ranks within ``top_n``.
    """

    p5: np.ndarray
    median: np.ndarray
    p95: np.ndarray
    p_top: np.ndarray
    top_n: int
    draws: int
    concentration: float
    seed: int


def draw_weights(
    weights: np.ndarray, n: int, concentration: float = 100.0, seed: int = 0
) -> np.ndarray:
    """Dirichlet draws around ``weights``: α = concentration · w (mean = w).

    Higher ``concentration`` means less perturbation (each weight's standard deviation is
    ``sqrt(w(1 − w)/(concentration + 1))``). Zero weights stay zero.

    Returns
    -------
    ndarray, shape (n, k)
    """
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    if not concentration > 0:
        msg = f"concentration must be positive, got {concentration}"
        raise ValueError(msg)
    live = w > 0
    out = np.zeros((n, len(w)))
    out[:, live] = np.random.default_rng(seed).dirichlet(concentration * w[live], size=n)
    return out


def _scores(values: np.ndarray, w: np.ndarray, method: str, v: float) -> np.ndarray:
    """Scores (sites × draws) of value-scaled criteria under draws ``w`` (draws × k)."""
    if method == "wlc":
        return values @ w.T
    if method == "topsis":
        w2 = (w**2).T
        d_plus = np.sqrt(((1.0 - values) ** 2) @ w2)
        d_minus = np.sqrt((values**2) @ w2)
        total = d_plus + d_minus
        return np.divide(d_minus, total, out=np.full_like(total, 0.5), where=total > 0)
    regret = (1.0 - values)[:, None, :] * w[None, :, :]
    return 1.0 - (v * regret.sum(axis=2) + (1 - v) * regret.max(axis=2) / w.max(axis=1))


def rank_stability(
    values: np.ndarray,
    weights: np.ndarray,
    draws: int = 1000,
    top_n: int = 10,
    concentration: float = 100.0,
    seed: int = 0,
    method: str = "wlc",
    v: float = 0.5,
    chunk: int | None = None,
    workers: int | None = None,
) -> Stability:
    """Monte Carlo rank stability of value-scaled alternatives under Dirichlet weight draws.

    For each draw the alternatives are scored and ranked ("min" ties: rank = 1 + number of
    strictly better alternatives); per alternative the 5th, 50th and 95th rank percentiles
    and P(rank ≤ top_n) are returned.

    Parameters
    ----------
    values : alternatives × criteria, 0..1 (eligible sites only)
    weights : the profile's weights (sum to 1)
    draws : number of Monte Carlo draws
    top_n : N of P(top N)
    concentration : Dirichlet concentration (see ``draw_weights``)
    seed : random seed (same seed, same result)
    method : ``wlc``, ``topsis`` or ``vikor`` (fixed-ideal variants, as in the engine)
    chunk : draws per block (bounds memory to sites × chunk floats)
    workers : threads (default: CPU count); results do not depend on it
    """
    if method not in STABILITY_METHODS:
        msg = f"stability method {method!r} not one of {', '.join(STABILITY_METHODS)}"
        raise ValueError(msg)
    vals = np.asarray(values, dtype=float)
    n = vals.shape[0]
    if n == 0:
        msg = "no eligible alternatives to rank"
        raise ValueError(msg)
    w = draw_weights(weights, draws, concentration, seed)
    dtype = np.uint16 if n < 2**16 else np.uint32
    ranks = np.empty((draws, n), dtype=dtype)
    if chunk is None:
        per = vals.shape[1] if method == "vikor" else 1
        chunk = max(1, min(32, 4_000_000 // max(1, n * per)))
    vals_c = vals.astype(np.float32) if method == "wlc" else vals

    def block(start: int) -> None:  # numpy's sort and matmul release the GIL
        wb = w[start : start + chunk].astype(vals_c.dtype)
        s = _scores(vals_c, wb, method, v).T  # draws × sites
        ranks[start : start + len(wb)] = _rank_rows(np.ascontiguousarray(s))

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(block, range(0, draws, chunk)))
    p5, med, p95 = _rank_percentiles(ranks, (5, 50, 95))
    p_top = (ranks <= top_n).mean(axis=0)
    return Stability(p5, med, p95, p_top, top_n, draws, concentration, seed)


def _rank_rows(s: np.ndarray) -> np.ndarray:
    """Rank each row, 1 = highest, "min" ties (1 + number of strictly greater values)."""
    d, n = s.shape
    order = np.argsort(-s, axis=1)
    srt = np.take_along_axis(s, order, axis=1)
    pos = np.broadcast_to(np.arange(n), (d, n))
    new = np.ones((d, n), dtype=bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    first = np.maximum.accumulate(np.where(new, pos, 0), axis=1) + 1
    out = np.empty((d, n), dtype=np.int64)
    np.put_along_axis(out, order, first, axis=1)
    return out


def _rank_percentiles(ranks: np.ndarray, qs: tuple[int, ...]) -> list[np.ndarray]:
    """Percentiles (nearest-rank "lower") of each column, without copying all as float."""
    d = ranks.shape[0]
    idx = [int(np.floor(q / 100 * (d - 1))) for q in qs]
    part = np.partition(ranks, idx, axis=0)
    return [part[i].astype(np.int64) for i in idx]


def ws_coefficient(x: np.ndarray, y: np.ndarray) -> float:
    """WS rank similarity coefficient (Sałabun & Urbaniak 2020), ``x`` the reference ranking.

    ``WS = 1 − Σ_i 2^(−x_i) · |x_i − y_i| / max(|x_i − 1|, |x_i − N|)``: differences near
    the top weigh more; 1 = identical top, asymmetric in x and y.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(x)
    if n < 2 or len(y) != n:
        msg = "WS coefficient needs two rankings of the same ≥ 2 alternatives"
        raise ValueError(msg)
    denom = np.maximum(np.abs(x - 1), np.abs(x - n))
    return float(1 - np.sum(2.0**-x * np.abs(x - y) / denom))


@dataclass(frozen=True)
class Comparison:
    """Two rankings of the same sites compared."""

    spearman: float
    ws: float
    common: int
    only_a: int
    only_b: int
    movers: pd.DataFrame  # id, rank_a, rank_b, change (+ = better in B), biggest |change| first


def compare_rankings(
    ids: np.ndarray, rank_a: np.ndarray, rank_b: np.ndarray, n_movers: int = 10
) -> Comparison:
    """Spearman ρ and WS coefficient between rankings A and B, and the biggest movers.

    Parameters
    ----------
    ids : site identifiers
    rank_a, rank_b : ranks (1 = best, 0 = excluded); compared on sites ranked in both,
        re-ranked 1..m within them ("min" ties)
    n_movers : how many of the largest rank changes to list
    """
    ids = np.asarray(ids)
    a = np.asarray(rank_a, dtype=float)
    b = np.asarray(rank_b, dtype=float)
    both = (a > 0) & (b > 0)
    m = int(both.sum())
    if m < 2:
        msg = f"the two rankings share {m} ranked sites; nothing to compare"
        raise ValueError(msg)
    ra = pd.Series(a[both]).rank(method="min").to_numpy()
    rb = pd.Series(b[both]).rank(method="min").to_numpy()
    rho = float(spearmanr(ra, rb).statistic)
    ws = ws_coefficient(ra, rb)
    change = ra - rb
    order = np.argsort(-np.abs(change), kind="stable")[:n_movers]
    movers = pd.DataFrame(
        {
            "site_id": ids[both][order],
            "rank_a": ra[order].astype(int),
            "rank_b": rb[order].astype(int),
            "change": change[order].astype(int),
        }
    )
    return Comparison(
        rho, ws, m, int(((a > 0) & ~(b > 0)).sum()), int((~(a > 0) & (b > 0)).sum()), movers
    )
