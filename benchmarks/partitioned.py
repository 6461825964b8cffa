"""Benchmark the partitioned run (Dask, one task per powiat) against one process.

Usage: python benchmarks/partitioned.py [--sizes 1000000,3000000,10000000] [--workers 2]
       [--worker-memory 8GB] [--cap-gb 20] [--data DIR] [--store postgis|gpkg]
       [--partitioned-only] [--again]

For each size a demo "country" (tiles of at most 1M parcels, ``omw-sites demo build``) is
generated once into ``--data``. Then, in the same run and on the same folder:

- the baseline: ``omw-sites run`` in one process;
- ``omw-sites run --scheduler local --workers N --worker-memory M``;

- with ``--again``, the partitioned run once more into its own store: an update that
  finds every site unchanged (a gmina's routine re-run);

all into a new schema of a throw-away PostGIS server (``tests/pgcluster.py``, durable),
the store for this size (``--store gpkg``: GeoPackage files). The server is a process
of its own: its memory is in no figure here.

Each command runs in a subprocess whose process tree is sampled (every 0.2 s): the peak
RSS of the main process and of each worker process, and of the tree (the main process's
RSS plus what each child holds alone — a forked GML reader shares its parent's pages).
A run whose tree passes ``--cap-gb`` is stopped and reported as not fitting. The partitioned store's
``run_info['partitioned']`` gives each task's seconds and peak; the two stores' sites
are compared (IDs, every criterion and rank). Results go to ``_work/partitioned.json``
and a Markdown table on stdout, with the extrapolation to 35M parcels on 8 workers from
the measured per-partition costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

WORK = Path(__file__).parent / "_work"
POLAND_PARCELS = 35_000_000


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores, {mem:.0f} GB RAM, {cpu}"


def measured(cmd: list[str], cap_gb: float) -> dict:
    """Run ``cmd``; wall seconds, exit code, peak RSS (MB) of the main process, of each
    of its descendants, and of the whole tree; stopped past ``cap_gb``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peaks: dict[int, float] = {}
    tree_peak = 0.0
    stopped = False
    done = threading.Event()
    out: dict[str, str] = {}

    def drain() -> None:
        out["stdout"], out["stderr"] = proc.communicate()
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    while not done.wait(0.2):
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        total = 0.0
        for p in procs:
            try:
                rss = p.memory_info().rss / 2**20
                # a forked child shares its parent's pages until it writes them: only
                # what it holds alone adds to the tree
                own = rss if p.pid == proc.pid else p.memory_full_info().uss / 2**20
            except psutil.NoSuchProcess:
                continue
            peaks[p.pid] = max(peaks.get(p.pid, 0.0), rss)
            total += own
        tree_peak = max(tree_peak, total)
        if total > cap_gb * 1024 and not stopped:
            stopped = True
            for p in reversed(procs):
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
    others = [v for k, v in peaks.items() if k != proc.pid]
    return {
        "seconds": round(time.perf_counter() - t0, 1),
        "returncode": proc.returncode,
        "stopped_at_cap": stopped,
        "main_peak_mb": round(peaks.get(proc.pid, 0.0)),
        "worker_peaks_mb": sorted((round(v) for v in others if v > 200), reverse=True),
        "tree_peak_mb": round(tree_peak),
        "stderr_tail": out.get("stderr", "")[-1500:],
        # the CLI's closing words: seconds per stage (scoring, store …) and the peak
        "done": _closing(out.get("stderr", "")),
    }


def _closing(stderr: str) -> str:
    """The CLI's closing words (``done: …``, wrapped over lines by the console) as one
    line; "" when the run did not get there."""
    _, said, rest = stderr.rpartition("done:")
    return " ".join((said + rest).split()) if said else ""


def compare(a: Path, b: Path) -> dict:
    """Sites of two stores: same IDs, and the largest difference over numeric columns."""
    from omw_sites.store import read_sites

    left = read_sites(a).set_index("site_id").sort_index()
    right = read_sites(b).set_index("site_id").sort_index()
    same_ids = list(left.index) == list(right.index)
    worst, differ = 0.0, []
    examples: dict[str, list[str]] = {}
    if same_ids:
        for col in left.columns:
            if col in ("created_at", "updated_at", "measured_run", "scored_run", "geometry"):
                continue
            x, y = left[col], right[col]
            if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
                xv, yv = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
                ok = np.isclose(xv, yv, rtol=1e-9, atol=1e-9, equal_nan=True)
                if ok.all():
                    with np.errstate(invalid="ignore"):
                        d = np.nanmax(np.abs(xv - yv)) if np.isfinite(xv).any() else 0.0
                    worst = max(worst, float(d))
            else:
                tx = x.astype(object).where(x.notna(), "").astype(str).to_numpy()
                ty = y.astype(object).where(y.notna(), "").astype(str).to_numpy()
                ok = tx == ty
            if not ok.all():
                differ.append(f"{col} ({int((~ok).sum())})")
                examples[col] = [str(i) for i in left.index[~ok][:3]]
    return {
        "sites": len(left),
        "same_ids": same_ids,
        "differ": differ,
        "examples": examples,  # a few site IDs per differing column
        "max_abs_diff": worst,
    }


def omw(*args: str) -> list[str]:
    return [sys.executable, "-m", "omw_sites", *args]


def bench_size(n: int, args: argparse.Namespace) -> dict:
    from omw_sites.store import read_run_info

    raw = Path(args.data) / f"country_{n}"
    row: dict = {"parcels": n, "workers": args.workers}
    if not (raw / "manifest.json").is_file():
        row["generate"] = measured(omw("demo", "build", "--parcels", str(n), "--out", str(raw)), 23)
        print(f"{n:,}: generated in {row['generate']['seconds']} s", flush=True)
    stores = {}
    for name in ("one", "part"):
        if args.url:
            stores[name] = f"{args.url}?schema={name}_{n}_{uuid.uuid4().hex[:6]}"
        else:
            stores[name] = str(WORK / f"partitioned_{n}" / name / "omw_sites.gpkg")
            Path(stores[name]).unlink(missing_ok=True)
            Path(stores[name]).parent.mkdir(parents=True, exist_ok=True)
    row["store"] = "PostGIS" if args.url else "GeoPackage"
    if args.partitioned_only:  # a follow-up of the partitioned side: no baseline
        row["one_process"] = {"seconds": 0, "returncode": None, "stopped_at_cap": False,
                              "tree_peak_mb": 0, "done": ""}  # fmt: skip
    else:
        cmd = omw("run", "--raw", str(raw), "--store", stores["one"])
        row["one_process"] = measured(cmd, args.cap_gb)
        print(f"{n:,}: one process {row['one_process']['seconds']} s", flush=True)
    cmd = omw(
        "run", "--raw", str(raw), "--store", stores["part"], "--scheduler", "local",
        "--workers", str(args.workers), "--worker-memory", args.worker_memory,
    )  # fmt: skip
    row["partitioned"] = measured(cmd, args.cap_gb)
    print(f"{n:,}: partitioned {row['partitioned']['seconds']} s", flush=True)
    if args.again and row["partitioned"]["returncode"] == 0:
        row["again"] = measured(cmd, args.cap_gb)
        print(f"{n:,}: partitioned again (an update) {row['again']['seconds']} s", flush=True)
    if row["partitioned"]["returncode"] == 0:
        info = read_run_info(stores["part"])
        row["tasks"] = info["partitioned"]
        row["stages"] = {k: info.get(k) for k in ("counts",)}
    if row["one_process"]["returncode"] == 0 and row["partitioned"]["returncode"] == 0:
        row["compare"] = compare(stores["one"], stores["part"])
    return row


def extrapolate(rows: list[dict], workers: int = 8) -> dict:
    """35M parcels on ``workers`` workers from the largest measured run's per-task costs:
    the network task scales with the region (serial, first); the partitions' summed
    seconds per parcel, shared by the workers; the coordinator's own stages per site."""
    r = max((x for x in rows if "tasks" in x), key=lambda x: x["parcels"])
    tasks = r["tasks"]
    n = r["parcels"]
    part_s = sum(p["seconds"] for p in tasks["partitions"])
    net_s = tasks["network"]["seconds"]
    total = r["partitioned"]["seconds"]
    # what is neither the network nor the partitions: plan, join, score, store, start-up
    rest = max(total - net_s - part_s / r["workers"], 0.0)
    scale = POLAND_PARCELS / n
    est = net_s * scale + part_s * scale / workers + rest * scale
    peaks = task_peaks(tasks)
    return {
        "from_parcels": n,
        "network_s": round(net_s * scale),
        "partitions_s": round(part_s * scale / workers),
        "rest_s": round(rest * scale),
        "total_s": round(est),
        # a partition's own peak does not grow with the country (its powiat and the
        # network within 45 minutes of it); the worker holding the network does
        "worker_peak_mb": peaks["task_peak_mb"],
        "network_worker_mb": round(peaks["network_mb"] * scale) + peaks["task_peak_mb"],
        "coordinator_mb": round(r["partitioned"]["main_peak_mb"] * scale),
    }


def task_peaks(tasks: dict) -> dict:
    """Peaks (MB) of the partition tasks on workers that do not hold the network, of
    those on the worker that does, and of the network task."""
    holder = tasks["network"].get("worker_pid")
    own = [p["peak_rss_mb"] for p in tasks["partitions"] if p.get("worker_pid") != holder]
    with_net = [p["peak_rss_mb"] for p in tasks["partitions"] if p.get("worker_pid") == holder]
    return {
        "task_peak_mb": round(max(own or [0])),
        "network_worker_peak_mb": round(max([*with_net, tasks["network"]["peak_rss_mb"]])),
        "network_mb": round(tasks["network"]["peak_rss_mb"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,3000000,10000000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-memory", default="8GB")
    ap.add_argument("--cap-gb", type=float, default=20.0)
    ap.add_argument("--data", default=str(WORK))
    ap.add_argument("--store", choices=("postgis", "gpkg"), default="postgis")
    ap.add_argument(
        "--partitioned-only", action="store_true",
        help="skip the one-process baseline (a follow-up of a full run, not a result alone)",
    )  # fmt: skip
    ap.add_argument(
        "--again", action="store_true",
        help="run the partitioned side a second time into its store (an update)",
    )  # fmt: skip
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    rows = []
    result_file = WORK / "partitioned.json"
    with tempfile.TemporaryDirectory() as tmp:
        args.url, stop = None, lambda: None
        if args.store == "postgis":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from pgcluster import start_cluster  # test infrastructure, not in the package

            args.url, stop = start_cluster(Path(tmp) / "pg", durable=True)
        try:
            for n in (int(s) for s in args.sizes.split(",")):
                rows.append(bench_size(n, args))
                result_file.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
        finally:
            stop()
    print(f"\nmachine: {machine()}; {args.workers} workers, {args.worker_memory} each\n")
    print(
        "| parcels | sites | one process s | one process peak MB | partitioned s "
        "| task peak MB (worker without / with the network) | worker peaks MB (sampled) "
        "| main peak MB | network task s / MB | partitions: n, sum s, mean s | same results |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        one, part = r["one_process"], r["partitioned"]
        t = r.get("tasks", {})
        parts = t.get("partitions", [])
        peaks = task_peaks(t) if t else {}
        one_s = "stopped at cap" if one["stopped_at_cap"] else f"{one['seconds']}"
        same = r.get("compare", {})
        task_s = sum(p["seconds"] for p in parts)
        print(
            f"| {r['parcels']:,} | {same.get('sites', '')} | {one_s} | {one['tree_peak_mb']:,} "
            f"| {part['seconds']} "
            f"| {peaks.get('task_peak_mb', '')} / {peaks.get('network_worker_peak_mb', '')} "
            f"| {', '.join(f'{v:,}' for v in part['worker_peaks_mb'])} "
            f"| {part['main_peak_mb']:,} "
            f"| {t.get('network', {}).get('seconds', '')} / "
            f"{t.get('network', {}).get('peak_rss_mb', '')} "
            f"| {len(parts)}, {task_s:.0f}, {task_s / max(len(parts), 1):.1f} "
            f"| {'yes' if same.get('same_ids') and not same.get('differ') else same} |"
        )
    for r in rows:
        if "again" in r:
            a = r["again"]
            print(f"{r['parcels']:,} again (an update): {a['seconds']} s, coordinator "
                  f"{a['main_peak_mb']:,} MB; {a['done']}")  # fmt: skip
    est = extrapolate(rows)
    print(f"\n35M parcels on 8 workers, from the {est['from_parcels']:,} run: {est}")
    result_file.write_text(
        json.dumps({"machine": machine(), "rows": rows, "extrapolation": est}, indent=1)
    )


if __name__ == "__main__":
    main()
