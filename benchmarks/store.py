"""Inventory benchmark: bulk load of N sites, an update touching 1 % of them, history and
change-feed queries — through :class:`omw_sites.store.Inventory` on each backend.

    python benchmarks/store.py --sites 1000000 --repeat 3 [--backend gpkg|postgis|both]

Synthetic sites carry the real site-table schema (every measured column, five profiles'
score/rank/excluded/drivers/tier/gaps): ~100 columns. PostGIS runs on a throw-away local
cluster (``tests/pgcluster.py``). Prints medians and peak RSS of this process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from omw_sites.layers import (
    SITE_COLUMNS,
    TEXT_COLUMNS,
    WORK_CRS,
    excluded_col,
    rank_col,
    score_col,
)
from omw_sites.store import open_inventory

PROFILES = ("logistics", "manufacturing", "office", "data_centre", "technology_park")
TERYT = ["1465011", "1418043", "1421062", "1434022", "1432013", "1408011", "1412021"]


def synthetic_sites(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = 600_000 + rng.uniform(0, 80_000, n)
    y = 450_000 + rng.uniform(0, 70_000, n)
    w = rng.uniform(40, 400, n)
    boxes = shapely.box(x, y, x + w, y + w * rng.uniform(0.5, 1.5, n))
    geom = shapely.multipolygons(boxes.reshape(-1, 1))  # sites are stored as MultiPolygons
    # real site IDs are hashes of their parcels (S + 10 hex digits): in no order
    ids = np.char.add("S", np.char.mod("%010x", rng.permutation(n)))
    data: dict[str, object] = {"site_id": ids}
    for col in SITE_COLUMNS:
        if col == "site_id":
            continue
        if col == "parcel_ids":
            data[col] = np.char.add("146501_1.0001.", np.arange(n).astype(str))
        elif col == "teryt":
            data[col] = rng.choice(TERYT, n)
        elif col.endswith("_on_site") or col == "no_plan_ogolny":
            data[col] = rng.uniform(0, 1, n) < 0.3
        elif col == "n_parcels":
            data[col] = rng.integers(1, 6, n)
        elif col in TEXT_COLUMNS:
            data[col] = rng.choice(["P", "U", "P/U", "SP", ""], n).astype(object)
        else:
            data[col] = rng.uniform(0, 20_000, n).round(2)
    for p in PROFILES:
        score = rng.uniform(0, 1, n).round(6)
        excluded = rng.uniform(0, 1, n) < 0.2
        score[excluded] = np.nan
        data[score_col(p)] = score
        data[rank_col(p)] = pd.Series(score).rank(ascending=False, method="min").fillna(0)
        data[rank_col(p)] = data[rank_col(p)].astype("int64").to_numpy()
        data[excluded_col(p)] = np.where(excluded, "flood_share >= 0.05", "").astype(object)
        data[f"drivers_{p}"] = np.where(excluded, "", "+ motorway junction 4.2 min").astype(object)
        data[f"tier_{p}"] = rng.choice(["A", "B", "C"], n).astype(object)
        data[f"gaps_{p}"] = np.where(excluded, "", "sewer").astype(object)
    return gpd.GeoDataFrame(data, geometry=geom, crs=WORK_CRS)


def one_percent_update(sites: gpd.GeoDataFrame, seed: int = 1) -> gpd.GeoDataFrame:
    """1 % of the sites with changed measurements (and rescored), the rest as they were."""
    rng = np.random.default_rng(seed)
    new = sites.copy()
    pick = rng.choice(len(new), max(1, len(new) // 100), replace=False)
    col = new.columns.get_loc("dist_sewer_m")
    new.iloc[pick, col] = new.iloc[pick, col] + 50.0
    s = new.columns.get_loc(score_col("logistics"))
    new.iloc[pick, s] = (new.iloc[pick, s] * 0.9).round(6)
    return new


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline_write(sites: gpd.GeoDataFrame, folder: Path, repeat: int) -> dict[str, float]:
    """The floor in the same run: GDAL writing the same frame to a fresh GeoPackage
    (what the whole-file store of session 1 did on every run)."""
    times = []
    for i in range(repeat):
        path = folder / f"baseline-{i}.gpkg"
        t = time.perf_counter()
        pyogrio.write_dataframe(sites, path, layer="sites", driver="GPKG", use_arrow=True)
        times.append(time.perf_counter() - t)
        path.unlink()
    return {
        "backend": "baseline: pyogrio GPKG write",
        "sites": len(sites),
        "bulk_load_s": statistics.median(times),
        "peak_rss_mb": _rss_mb(),
    }


def bench_backend(name: str, target_factory, sites, update, repeat: int) -> dict[str, float]:
    info = {"run_id": "bench-load", "columns": {}}
    loads, updates, hist, feed = [], [], [], []
    for _ in range(repeat):
        target = target_factory()
        inv = open_inventory(target)
        t = time.perf_counter()
        inv.apply(sites, None, info)
        loads.append(time.perf_counter() - t)
        t = time.perf_counter()
        report = inv.apply(update, None, {**info, "run_id": "bench-1pct"})
        updates.append(time.perf_counter() - t)
        assert report.changed == len(sites) // 100, report.as_dict()
        changed = update["site_id"].iloc[0]
        t = time.perf_counter()
        inv.history(changed)
        hist.append(time.perf_counter() - t)
        t = time.perf_counter()
        n_feed = len(inv.changed_since("2000-01-01T00:00:00Z"))
        feed.append(time.perf_counter() - t)
        assert n_feed == len(sites)
        inv.backend.close()
    return {
        "backend": name,
        "sites": len(sites),
        "bulk_load_s": statistics.median(loads),
        "update_1pct_s": statistics.median(updates),
        "history_s": statistics.median(hist),
        "changed_since_all_s": statistics.median(feed),
        "peak_rss_mb": _rss_mb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backend", choices=("gpkg", "postgis", "both"), default="both")
    args = ap.parse_args()
    t = time.perf_counter()
    sites = synthetic_sites(args.sites)
    update = one_percent_update(sites)
    print(f"generated {len(sites):,} sites × {sites.shape[1]} columns in "
          f"{time.perf_counter() - t:.1f} s")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="omw-bench-store-") as tmp:
        rows.append(baseline_write(sites, Path(tmp), args.repeat))
        print(rows[-1], flush=True)
        if args.backend in ("gpkg", "both"):
            rows.append(
                bench_backend(
                    "GeoPackage",
                    lambda: str(Path(tmp) / f"inv-{uuid.uuid4().hex[:6]}.gpkg"),
                    sites,
                    update,
                    args.repeat,
                )
            )
            print(rows[-1], flush=True)
        if args.backend in ("postgis", "both"):
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from pgcluster import start_cluster  # test infrastructure, not in the package

            url, stop = start_cluster(Path(tmp) / "pg")
            try:
                rows.append(
                    bench_backend(
                        "PostGIS",
                        lambda: f"{url}?schema=b_{uuid.uuid4().hex[:8]}",
                        sites,
                        update,
                        args.repeat,
                    )
                )
                print(rows[-1], flush=True)
            finally:
                stop()
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


if __name__ == "__main__":
    main()
