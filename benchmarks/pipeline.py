"""Benchmark the whole `run` per stage, with peak memory, at 100k and 1M parcels.

Usage: python benchmarks/pipeline.py [--sizes 100000 1000000] [--repeat 3]
                                     [--before PYTHON]

Each run happens in a fresh subprocess (so peak RSS is that run's own). The baseline,
measured in the same run on the same data, is a plain pyogrio read of the parcel layer
(the I/O floor); the table shows the pipeline's time as a multiple of it.

``--before PYTHON`` also runs the same data through another install of omw-sites (the
interpreter of a virtualenv holding an older checkout), alternating run by run with this
one so that a busy machine weighs on both alike; each keeps its own store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).parent / "_work"

# peak memory is VmHWM: ru_maxrss carries the forking parent's peak (the region it has
# just generated) over execve
CHILD = r"""
import json, sys, time
from omw_sites.pipeline import run
t = time.perf_counter()
s = run(sys.argv[1], sys.argv[2])
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
print(json.dumps({"total": time.perf_counter() - t, "stages": s.stage_seconds,
                  "sites": s.sites, "parcels": s.parcels, "peak_mb": hwm / 1024}))
"""

BASELINE = r"""
import sys, time, pyogrio
t = time.perf_counter()
df = pyogrio.read_dataframe(sys.argv[1], layer="dzialki", use_arrow=True)
print(time.perf_counter() - t)
"""


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores, {mem:.0f} GB RAM, {cpu}, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", help="python of another omw-sites install to compare with")
    args = ap.parse_args()
    installs = [("after", sys.executable)]
    if args.before:
        installs.insert(0, ("before", args.before))
    from omw_sites.demo import build_region

    print(f"machine: {machine()}")
    rows = []
    for n in args.sizes:
        raw = WORK / f"raw_{n}"
        out = WORK / f"out_{n}"
        t = time.perf_counter()
        build_region(raw, parcels=n, seed=1)
        gen = time.perf_counter() - t
        base = []
        runs: dict[str, list[dict]] = {name: [] for name, _ in installs}
        for name, _ in installs:  # the first run loads the store, the rest update it
            shutil.rmtree(out.with_name(f"{out.name}_{name}"), ignore_errors=True)
        for _ in range(args.repeat):
            b = subprocess.run(
                [sys.executable, "-c", BASELINE, str(raw / "egib/dzialki.gpkg")],
                capture_output=True,
                text=True,
                check=True,
            )
            base.append(float(b.stdout))
            for name, python in installs:
                r = subprocess.run(
                    [python, "-c", CHILD, str(raw), str(out.with_name(f"{out.name}_{name}"))],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs[name].append(json.loads(r.stdout.strip().splitlines()[-1]))
        b = statistics.median(base)
        for name, _ in installs:
            done = runs[name]
            med = {k: statistics.median(r["stages"][k] for r in done) for k in done[0]["stages"]}
            total = statistics.median(r["total"] for r in done)
            peak = statistics.median(r["peak_mb"] for r in done)
            load = done[0]["stages"]["store"]
            label = f"{n:,}" if len(installs) == 1 else f"{n:,} {name}"
            rows.append((label, done[0]["sites"], gen, med, total, peak, b, load))
    print()
    print(
        "| parcels | sites | generate s | "
        + " | ".join(f"{k} s" for k in rows[0][3])
        + " | run total s | peak RSS MB | parcel read s (baseline) | run / baseline "
        + "| store s, first run (load) |"
    )
    print("|" + "---|" * (9 + len(rows[0][3])))
    for n, sites, gen, med, total, peak, b, load in rows:
        stages = " | ".join(f"{v:.2f}" for v in med.values())
        print(
            f"| {n} | {sites:,} | {gen:.1f} | {stages} | {total:.1f} | {peak:,.0f} "
            f"| {b:.2f} | {total / b:.1f}× | {load:.2f} |"
        )
    print(f"\nmedians of {args.repeat} runs each; the first loads a new store, the rest update it")


if __name__ == "__main__":
    main()
