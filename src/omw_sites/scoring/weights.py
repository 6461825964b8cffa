"""Criterion weights: AHP pairwise comparisons (principal eigenvector) and Shannon entropy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from omw_sites.scoring.methods import check_matrix

# Saaty's random consistency index for n = 1..10
RANDOM_INDEX = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49)
CR_LIMIT = 0.1


@dataclass(frozen=True)
class Judgement:
    """One pairwise judgement and how far it is from what the weights imply."""

    row: int
    col: int
    given: float  # a_ij as entered
    implied: float  # w_i / w_j from the priority vector
    error: float  # |ln(a_ij · w_j / w_i)|, 0 when consistent
    names: tuple[str, str] = ("", "")

    def describe(self) -> str:
        a, b = self.names if all(self.names) else (f"#{self.row + 1}", f"#{self.col + 1}")
        return (
            f"{a} vs {b}: given {_fmt_ratio(self.given)}, "
            f"the other judgements imply about {_fmt_ratio(self.implied)}"
        )


@dataclass(frozen=True)
class AhpResult:
    """AHP priorities and consistency of a pairwise comparison matrix."""

    weights: np.ndarray
    lambda_max: float
    ci: float
    cr: float
    ri: float
    n: int
    worst: tuple[Judgement, ...] = field(default_factory=tuple)

    @property
    def consistent(self) -> bool:
        return self.cr <= CR_LIMIT

    def advice(self) -> str:
        """A sentence on whether the matrix can be used, and what to revisit if not."""
        if self.n <= 2:
            return "two or fewer criteria are always consistent"
        if self.consistent:
            return f"consistency ratio {self.cr:.3f} ≤ {CR_LIMIT}: judgements are acceptable"
        tips = "; ".join(j.describe() for j in self.worst[:3])
        return (
            f"consistency ratio {self.cr:.3f} > {CR_LIMIT}: revise the judgements that "
            f"contribute most to the inconsistency — {tips}"
        )


def _fmt_ratio(x: float) -> str:
    return f"{x:.2g}" if x >= 1 else f"1/{1 / x:.2g}"


def parse_judgement(value: object) -> float:
    """A pairwise judgement as a float: numbers or strings such as ``"1/3"``, ``"5"``."""
    if isinstance(value, bool):
        msg = f"judgement {value!r} is not a number"
        raise ValueError(msg)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError) as exc:
            msg = f"judgement {value!r} is not a number or fraction like '1/3'"
            raise ValueError(msg) from exc
    msg = f"judgement {value!r} is not a number"
    raise ValueError(msg)


def ahp(pairwise: Any, names: Sequence[str] | None = None) -> AhpResult:
    """Priority weights of a reciprocal pairwise comparison matrix (Saaty).

    Parameters
    ----------
    pairwise : n × n matrix, a_ij = importance of criterion i over j on Saaty's 1..9 scale;
        numbers or fraction strings ("1/3"); a_ji must be 1/a_ij and a_ii = 1 (anything read
        from a file: checked here)
    names : criterion names for messages

    Returns
    -------
    AhpResult
        ``weights`` (principal right eigenvector, sums to 1), ``lambda_max``,
        ``ci = (λmax − n)/(n − 1)``, ``cr = ci / RI(n)`` (0 for n ≤ 2) and, the judgements
        that contribute most to the inconsistency (``worst``, largest first).
    """
    rows = [list(r) for r in pairwise] if not isinstance(pairwise, np.ndarray) else pairwise
    try:
        a = np.array([[parse_judgement(x) for x in r] for r in rows], dtype=float)
    except TypeError as exc:
        msg = "pairwise matrix must be a list of rows"
        raise ValueError(msg) from exc
    n = a.shape[0]
    labels = list(names) if names is not None else [f"#{i + 1}" for i in range(n)]
    if a.ndim != 2 or a.shape != (n, n) or n == 0:
        msg = f"pairwise matrix must be square, got shape {a.shape}"
        raise ValueError(msg)
    if n > len(RANDOM_INDEX):
        msg = f"AHP with {n} criteria: Saaty's random index is tabulated up to 10; group them"
        raise ValueError(msg)
    if not (np.isfinite(a).all() and (a > 0).all()):
        msg = "pairwise judgements must be positive numbers"
        raise ValueError(msg)
    if not np.allclose(np.diag(a), 1.0):
        msg = "pairwise matrix diagonal must be 1 (a criterion compared with itself)"
        raise ValueError(msg)
    recip = np.isclose(a * a.T, 1.0, rtol=1e-3)
    if not recip.all():
        i, j = (int(x) for x in np.argwhere(~recip)[0])
        msg = (
            f"pairwise matrix is not reciprocal: a[{labels[i]}, {labels[j]}] = {a[i, j]:g} "
            f"but a[{labels[j]}, {labels[i]}] = {a[j, i]:g} (should be {1 / a[i, j]:g})"
        )
        raise ValueError(msg)
    vals, vecs = np.linalg.eig(a)
    k = int(np.argmax(vals.real))
    w = np.abs(vecs[:, k].real)
    w = w / w.sum()
    lam = float(vals[k].real)
    ci = (lam - n) / (n - 1) if n > 2 else 0.0
    ri = RANDOM_INDEX[n - 1]
    cr = ci / ri if ri > 0 else 0.0
    implied = w[:, None] / w[None, :]
    err = np.abs(np.log(a / implied))
    iu, ju = np.triu_indices(n, 1)
    order = np.argsort(-err[iu, ju], kind="stable")
    worst = tuple(
        Judgement(
            int(iu[o]),
            int(ju[o]),
            float(a[iu[o], ju[o]]),
            float(implied[iu[o], ju[o]]),
            float(err[iu[o], ju[o]]),
            (labels[iu[o]], labels[ju[o]]),
        )
        for o in order[:5]
        if err[iu[o], ju[o]] > 1e-9
    )
    return AhpResult(w, lam, max(ci, 0.0), max(cr, 0.0), ri, n, worst)


def entropy(matrix: np.ndarray) -> np.ndarray:
    """Shannon-entropy objective weights (0·ln 0 = 0).

    ``p_ij = x_ij / Σ_i x_ij``, ``E_j = −Σ_i p_ij ln p_ij / ln m``,
    ``w_j = (1 − E_j) / Σ_k (1 − E_k)``: criteria that discriminate more weigh more.

    Parameters
    ----------
    matrix : alternatives × criteria of non-negative values (DataFrame columns name
        criteria in errors)

    Returns
    -------
    ndarray
        Weights summing to 1.
    """
    m, _, _ = check_matrix(matrix)
    if (m < 0).any():
        j = int(np.flatnonzero((m < 0).any(axis=0))[0])
        names = list(matrix.columns) if hasattr(matrix, "columns") else None
        label = names[j] if names else f"criterion #{j + 1}"
        msg = f"entropy weights need non-negative values; {label!r} has negatives"
        raise ValueError(msg)
    n = m.shape[0]
    if n < 2:
        msg = "entropy weights need at least two alternatives"
        raise ValueError(msg)
    p = m / m.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
    e = -plogp.sum(axis=0) / np.log(n)
    d = 1.0 - e
    if not d.sum() > 1e-12:
        msg = "every criterion is equal across alternatives; entropy gives no weights"
        raise ValueError(msg)
    return d / d.sum()
