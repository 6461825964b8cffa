"""The investor catalogue in headless Chromium: time to ready (list and map drawn) and
time from a filter change until list and map agree again, on a generated store.

Run: ``python benchmarks/catalogue.py [--sites 20000 | --store GPKG] [--loads 10]
[--changes 40] [--settle 30]``. ``omw-sites serve`` runs in its own process; Debian's
``/usr/bin/chromium`` is driven by Playwright. "ready" is navigation start → the page's
``catalogue.ready`` (the list rendered and the map idle with the matched sites drawn).
The first load comes the moment the server is up, while it is still encoding the first
tiles in the background; the later ones meet a warm server with a fresh browser context
(no browser cache); a second server is then left to run ``--settle`` seconds before its
first visitor. A filter change is the form's ``change`` event → ``catalogue:ready``
(the state sent to ``/catalogue/matches``, the list's page fetched and drawn, the map
re-filtered and idle). Aims: ready ≤ 2 s, filter change ≤ 300 ms (p95).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cli_run import serving  # noqa: E402
from sample_store import make_sample_store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"

CHANGE = """async ([name, value]) => {
    const el = document.querySelector(`[name="${name}"]`);
    const done = new Promise((r) => document.addEventListener('catalogue:ready', r, {once: true}));
    const t0 = performance.now();
    if (el.type === 'checkbox') el.checked = !el.checked; else el.value = value;
    el.dispatchEvent(new Event('change', {bubbles: true}));
    await done;
    return [performance.now() - t0, window.catalogue.matched, window.catalogue.ids.length];
}"""


def machine() -> str:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram:.0f} GiB RAM, Chromium (SwiftShader WebGL); "
        f"load average {load} at the end"
    )


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def load(browser, url: str) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function("window.catalogue && window.catalogue.ready", timeout=60000)
    elapsed = time.perf_counter() - t0
    context.close()
    return elapsed


def changes(browser, url: str, n: int) -> tuple[list[float], list[int]]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.catalogue && window.catalogue.ready", timeout=60000)
    steps = [
        ("area_min", "1"),
        ("area_max", "15"),
        ("status", "reserved"),
        ("area_min", "0.5"),
        ("util_water", "500"),
        ("area_min", "2"),
        ("util_water", ""),
        ("area_max", ""),
    ]
    times, counts = [], []
    for i in range(n):
        name, value = steps[i % len(steps)]
        ms, matched, ids = page.evaluate(CHANGE, [name, value])
        assert matched == ids, "list and map disagree"
        times.append(ms)
        counts.append(matched)
    context.close()
    return times, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20_000, help="sites in the generated store")
    parser.add_argument("--loads", type=int, default=10, help="page loads timed")
    parser.add_argument("--changes", type=int, default=40, help="filter changes timed")
    parser.add_argument("--store", type=Path, help="an existing store instead of a generated one")
    parser.add_argument(
        "--settle",
        type=float,
        default=30,
        help="seconds the second server runs before its first visitor",
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or make_sample_store(Path(tmp) / "omw_sites.gpkg", n=args.sites)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            # the first visitor the moment the server is up: its tiles race the warm-up
            with serving(store) as (base, _):
                url = f"{base}/catalogue?lang=pl"
                cold = load(browser, url)
                warm = [load(browser, url) for _ in range(args.loads)]
                times, counts = changes(browser, url, args.changes)
            # the first visitor of a server that has run for a while (tiles warmed)
            with serving(store) as (base, _):
                time.sleep(args.settle)
                settled = load(browser, f"{base}/catalogue?lang=pl")
            browser.close()
        what = f"{args.store}" if args.store else f"{args.sites:,} sites (generated store)"
    print(f"# {machine()}\n")
    print(f"Catalogue on {what}, headless Chromium:\n")
    print("| measure | n | median | p95 | aim |")
    print("|---|---:|---:|---:|---:|")
    print(f"| ready, first visitor the moment the server is up | 1 | {cold:.2f} s | – | ≤ 2 s |")
    print(
        f"| ready, first visitor {args.settle:.0f} s after the server started | 1 | "
        f"{settled:.2f} s | – | ≤ 2 s |"
    )
    print(
        f"| ready, later loads (fresh browser context) | {len(warm)} | "
        f"{statistics.median(warm):.2f} s | {p95(warm):.2f} s | ≤ 2 s |"
    )
    print(
        f"| filter change → list and map agree | {len(times)} | "
        f"{statistics.median(times):.0f} ms | {p95(times):.0f} ms | ≤ 300 ms |"
    )
    print(f"\nSites matched by the timed filters: {min(counts):,} to {max(counts):,}.")


if __name__ == "__main__":
    main()
