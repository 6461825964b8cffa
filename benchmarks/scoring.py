"""Benchmark scoring: 1M × 12 WLC and TOPSIS re-scores beside pymcdm and scikit-criteria, and
1,000-draw rank stability on 100k sites.

Usage: python benchmarks/scoring.py [--sites 1000000] [--criteria 12] [--repeat 3]
       [--stability-sites 100000] [--draws 1000]

Every library scores the same random matrix in the same run; times are medians of
``--repeat`` runs and the ratio column is the library's time over ours. Results are
checked for agreement (max |difference|). pymcdm and scikit-criteria are benchmark-only
dependencies (``pip install pymcdm scikit-criteria``); a missing one is reported and
skipped. The stability baseline is a plain per-draw loop (``values @ w`` + pandas ranks)
timed on 50 draws and scaled to the draw count.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from omw_sites.scoring.engine import aggregate
from omw_sites.scoring.methods import topsis, wlc
from omw_sites.scoring.sensitivity import draw_weights, rank_stability


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores, {mem:.0f} GB RAM, {cpu}, Python {platform.python_version()}"


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def libraries(m: np.ndarray, w: np.ndarray, t: np.ndarray) -> dict[str, dict[str, Callable]]:
    libs: dict[str, dict[str, Callable]] = {}
    try:
        from pymcdm.methods import TOPSIS, WSM
        from pymcdm.normalizations import vector_normalization

        def identity(x, cost):
            return x

        libs["pymcdm"] = {
            "wlc": lambda: WSM(normalization_function=identity)(m, w, np.ones_like(t)),
            "topsis": lambda: TOPSIS(normalization_function=vector_normalization)(m, w, t),
        }
    except ImportError:
        print("pymcdm not installed: skipped")
    try:
        import skcriteria as skc
        from skcriteria.agg.simple import WeightedSumModel
        from skcriteria.agg.topsis import TOPSIS as SkTopsis
        from skcriteria.preprocessing.scalers import VectorScaler

        def sk_wlc():
            dm = skc.mkdm(m, [max] * m.shape[1], weights=w)
            return WeightedSumModel().evaluate(dm).e_.score

        def sk_topsis():
            dm = skc.mkdm(m, [max if x > 0 else min for x in t], weights=w)
            dm = VectorScaler(target="matrix").transform(dm)
            return SkTopsis().evaluate(dm).e_.similarity

        libs["scikit-criteria"] = {"wlc": sk_wlc, "topsis": sk_topsis}
    except ImportError:
        print("scikit-criteria not installed: skipped")
    return libs


def bench_rescore(n: int, k: int, repeat: int) -> list[dict]:
    rng = np.random.default_rng(0)
    m = rng.uniform(0.01, 1.0, (n, k))
    w = rng.uniform(0.5, 2.0, k)
    w /= w.sum()
    t = np.where(np.arange(k) % 3 == 0, -1.0, 1.0)
    ours = {
        "wlc": lambda: wlc(m, w),
        "topsis": lambda: topsis(m, w, t),
    }
    rows = []
    base = {}
    for method, fn in ours.items():
        sec, ref = timed(fn, repeat)
        base[method] = (sec, ref)
        rows.append({"task": f"{method} {n:,}×{k}", "impl": "omw_sites", "s": sec, "x": 1.0})
    sec, _ = timed(lambda: aggregate(m, w, "wlc"), repeat)
    rows.append(
        {"task": f"wlc {n:,}×{k}", "impl": "omw_sites engine (pre-validated)", "s": sec,
         "x": sec / base["wlc"][0]}
    )  # fmt: skip
    sec, _ = timed(lambda: aggregate(m, w, "topsis"), repeat)
    rows.append(
        {"task": f"topsis {n:,}×{k}", "impl": "omw_sites engine (fixed ideal)", "s": sec,
         "x": sec / base["topsis"][0]}
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lib, fns in libraries(m, w, t).items():
            for method, fn in fns.items():
                sec, got = timed(fn, repeat)
                diff = float(np.max(np.abs(np.asarray(got, dtype=float) - base[method][1])))
                rows.append(
                    {"task": f"{method} {n:,}×{k}", "impl": f"{lib} (max|Δ| {diff:.1e})",
                     "s": sec, "x": sec / base[method][0]}
                )  # fmt: skip
    return rows


def bench_stability(n: int, k: int, draws: int, repeat: int) -> list[dict]:
    rng = np.random.default_rng(1)
    v = rng.random((n, k))
    w = rng.uniform(0.5, 2.0, k)
    w /= w.sum()
    sec, st = timed(lambda: rank_stability(v, w, draws=draws, top_n=100, seed=0), repeat)
    rows = [{"task": f"stability {draws:,} draws × {n:,}", "impl": "omw_sites", "s": sec, "x": 1}]
    probe = 50
    dw = draw_weights(w, probe, seed=0)

    def naive():
        ranks = np.empty((probe, n))
        for i, d in enumerate(dw):
            ranks[i] = pd.Series(v @ d).rank(ascending=False, method="min").to_numpy()
        return np.percentile(ranks, [5, 95], axis=0)

    nsec, _ = timed(naive, 1)
    scaled = nsec * draws / probe
    rows.append(
        {"task": f"stability {draws:,} draws × {n:,}", "impl": f"naive loop ({probe} draws ×"
         f" {draws // probe})", "s": scaled, "x": scaled / sec}
    )  # fmt: skip
    assert (st.p5 <= st.p95).all()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=1_000_000)
    ap.add_argument("--criteria", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stability-sites", type=int, default=100_000)
    ap.add_argument("--draws", type=int, default=1000)
    args = ap.parse_args()
    print(f"machine: {machine()}; numpy {np.__version__}; medians of {args.repeat} runs")
    rows = bench_rescore(args.sites, args.criteria, args.repeat)
    rows += bench_stability(args.stability_sites, args.criteria, args.draws, args.repeat)
    print("\n| task | implementation | median s | × ours |\n|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['task']} | {r['impl']} | {r['s']:.3f} | {r['x']:.1f} |")


if __name__ == "__main__":
    main()
