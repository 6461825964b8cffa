"""Offline map size and render time at 10k, 100k and 1M parcels.

Usage: python benchmarks/maps.py [--sizes 10000 100000 1000000] [--repeat 3]

For each size: generate the demo region (reused when present), run the pipeline, then
render the logistics map (`render_map`) and time headless Chromium loading it to a
screenshot. Baseline in the same run: Chromium loading a blank page the same way, so the
"page s" column is the map's own cost (Chromium start-up removed).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from omw_sites.browser import CHROMIUM_TIMEOUT_S, chromium_command, find_chromium
from omw_sites.demo import build_region
from omw_sites.maps import render_map
from omw_sites.pipeline import run
from omw_sites.store import read_sites

WORK = Path(__file__).parent / "_work"


def load_time(exe: str, url: str) -> float:
    """Seconds for headless Chromium to load ``url`` and write a screenshot."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = chromium_command(
            exe,
            Path(tmp) / "profile",
            "--window-size=1200,900",
            f"--screenshot={Path(tmp) / 'shot.png'}",
            url,
        )
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, timeout=CHROMIUM_TIMEOUT_S, check=True)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exe = find_chromium()
    blank = WORK / "blank.html"
    WORK.mkdir(parents=True, exist_ok=True)
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    rows = []
    for n in args.sizes:
        raw, out = WORK / f"raw_{n}", WORK / f"maps_out_{n}"
        if not (raw / "manifest.json").exists():
            build_region(raw, parcels=n, seed=1)
        store = run(raw, out).store
        sites = len(read_sites(store, read_geometry=False))
        renders, pages, bases = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            html = render_map(store, "logistics")
            renders.append(time.perf_counter() - t)
            page = out / "logistics.html"
            page.write_text(html, encoding="utf-8")
            bases.append(load_time(exe, blank.as_uri()))
            pages.append(load_time(exe, page.as_uri()))
        size_mb = page.stat().st_size / 1e6
        base = statistics.median(bases)
        load = statistics.median(pages)
        rows.append((n, sites, size_mb, statistics.median(renders), load, base, load - base))
    print("| parcels | sites | HTML MB | render_map s | Chromium load s | blank page s | page s |")
    print("|---|---|---|---|---|---|---|")
    for n, sites, mb, render, load, base, own in rows:
        print(
            f"| {n:,} | {sites:,} | {mb:.2f} | {render:.2f} | {load:.2f} | {base:.2f} | {own:.2f} |"
        )
    print(f"\nmedians of {args.repeat} runs")


if __name__ == "__main__":
    main()
