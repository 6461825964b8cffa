"""PostGIS store: bulk load of N synthetic sites and a 1 % update (medians of 3, peak RSS).

The sites are the real site table of a generated store (``data/processed/omw_sites.gpkg``,
``make demo``) repeated and shifted to N rows, padded to ~100 columns of mixed kinds;
without that store they are synthesised. Uses ``OMW_DATABASE_URL`` if set, otherwise a
throw-away durable cluster (fsync on) started under ``benchmarks/_work``.

    python benchmarks/store_postgis.py --sites 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work"
SOURCE = ROOT / "data" / "processed" / "omw_sites.gpkg"
COLUMNS = 100
SCHEMA = "bench"


def base_sites() -> gpd.GeoDataFrame:
    """The real site table if a generated store exists, else 1,000 synthetic sites."""
    if SOURCE.exists():
        return pyogrio.read_dataframe(SOURCE, layer="sites", use_arrow=True)
    rng = np.random.default_rng(0)
    n = 1000
    x, y = 600_000 + rng.uniform(0, 50_000, n), 470_000 + rng.uniform(0, 50_000, n)
    return gpd.GeoDataFrame(
        {
            "site_id": [f"S{i:06d}" for i in range(n)],
            "gmina": rng.choice(["1465011", "1432042", "1417052"], n),
            "area_ha": rng.uniform(1, 80, n),
            "parcels": rng.integers(1, 30, n),
            "flood": rng.random(n) < 0.1,
            "status": "available",
        },
        geometry=shapely.buffer(shapely.points(x, y), rng.uniform(50, 400, n), quad_segs=4),
        crs=2180,
    )


def make_sites(n: int) -> gpd.GeoDataFrame:
    """``n`` sites: the base table repeated, shifted by 60 km per copy, ``COLUMNS`` columns."""
    base = base_sites()
    take = np.arange(n) % len(base)
    copy = np.arange(n) // len(base)
    frame = pd.DataFrame(base.drop(columns="geometry")).iloc[take].reset_index(drop=True)
    geoms = np.asarray(base.geometry.values)[take]
    geoms = shapely.force_2d(geoms)
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    shift = np.column_stack([(copy % 40) * 1_000.0, (copy // 40) * 1_000.0])
    geoms = shapely.set_coordinates(geoms.copy(), coords + shift[index])
    frame["site_id"] = [f"B{i:07d}" for i in range(n)]
    rng = np.random.default_rng(1)
    k = len(frame.columns)
    for j in range(max(0, COLUMNS - k)):  # pad: floats, ints, bools, text
        kind = j % 4
        name = f"extra_{j:02d}"
        if kind == 0:
            frame[name] = rng.normal(size=n)
        elif kind == 1:
            frame[name] = rng.integers(0, 1000, n)
        elif kind == 2:
            frame[name] = rng.random(n) < 0.5
        else:
            frame[name] = np.array(["wolna", "zarezerwowana", "sprzedana"], dtype=object)[
                rng.integers(0, 3, n)
            ]
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=2180)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(url: str, data: Path, mode: str) -> None:
    """One measurement in a fresh process; prints JSON."""
    from omw_sites.store.base import BOOKKEEPING_TABLES, RUN_INFO_COLUMNS, empty_table
    from omw_sites.store.postgis import PostGISBackend

    sites = gpd.read_parquet(data)
    backend = PostGISBackend(url, schema=SCHEMA)
    if mode == "load":
        layers = {n: empty_table(c) for n, c in BOOKKEEPING_TABLES.items()}
        layers["run_info"] = empty_table(RUN_INFO_COLUMNS)
        before = current_rss_mb()
        t0 = time.perf_counter()
        backend.bulk_load(sites, layers)
        seconds = time.perf_counter() - t0
        print(json.dumps({"seconds": seconds, "rss_before": before, "peak": peak_rss_mb()}))
    else:
        rng = np.random.default_rng(int(mode.split(":")[1]))
        n = len(sites)
        pick = rng.choice(n, size=max(1, n // 100), replace=False)
        rows = pd.DataFrame(
            {
                "site_id": sites["site_id"].to_numpy()[pick],
                "status": rng.choice(["reserved", "sold"], len(pick)),
                "price_pln_m2": rng.uniform(50, 400, len(pick)),
                "extra_00": rng.normal(size=len(pick)),
                "extra_01": rng.integers(0, 1000, len(pick)),
                "geometry": shapely.buffer(np.asarray(sites.geometry.values)[pick], 1.0),
            }
        )
        with backend.transaction() as tx:
            tx.add_columns("sites", {"status": "text", "price_pln_m2": "float"})
        before = current_rss_mb()
        t0 = time.perf_counter()
        with backend.transaction() as tx:
            tx.update("sites", "site_id", rows)
        seconds = time.perf_counter() - t0
        print(json.dumps({"seconds": seconds, "rss_before": before, "peak": peak_rss_mb()}))
    backend.close()


def run_child(url: str, data: Path, mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--url", url, "--data", str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child:
        child(args.url, Path(args.data), args.child)
        return

    WORK.mkdir(parents=True, exist_ok=True)
    data = WORK / f"postgis_sites_{args.sites}.parquet"
    if not data.exists():
        t0 = time.perf_counter()
        make_sites(args.sites).to_parquet(data)
        print(f"generated {args.sites:,} sites in {time.perf_counter() - t0:.1f} s → {data}")
    info = pd.read_parquet(data, columns=["site_id"])
    ncols = len(pyarrow_schema_names(data)) - 1

    url = os.environ.get("OMW_DATABASE_URL")
    stop = None
    if not url:
        from omw_sites.store.pgcluster import start_cluster

        cluster_dir = WORK / "pgcluster"
        shutil.rmtree(cluster_dir, ignore_errors=True)
        url, stop_server = start_cluster(cluster_dir, durable=True)

        def stop() -> None:
            stop_server()
            shutil.rmtree(cluster_dir, ignore_errors=True)

    try:
        loads = [run_child(url, data, "load") for _ in range(args.repeat)]
        updates = [run_child(url, data, f"update:{i}") for i in range(args.repeat)]
    finally:
        if stop is not None:
            stop()
    server = (
        "OMW_DATABASE_URL"
        if os.environ.get("OMW_DATABASE_URL")
        else ("throw-away cluster (fsync on, wal_level=minimal)")
    )
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{ram:.0f} GiB RAM; {len(info):,} sites × {ncols} columns + geometry; {server}; "
        f"medians of {args.repeat}"
    )
    print(f"{'step':<28}{'median s':>10}{'runs s':>26}{'peak RSS MB':>14}{'Δ RSS MB':>10}")
    for label, rs in (("bulk_load", loads), (f"update {len(info) // 100:,} rows", updates)):
        secs = [r["seconds"] for r in rs]
        peak = max(r["peak"] for r in rs)
        delta = max(r["peak"] - r["rss_before"] for r in rs)
        runs = ", ".join(f"{s:.2f}" for s in secs)
        print(f"{label:<28}{statistics.median(secs):>10.2f}{runs:>26}{peak:>14.0f}{delta:>10.0f}")


def pyarrow_schema_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


if __name__ == "__main__":
    main()
