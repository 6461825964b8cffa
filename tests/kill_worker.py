"""Child process for the SIGKILL test: applies two inventory states alternately, forever.

Usage: python kill_worker.py TARGET. Prints "ready" once loaded, then "applied N" after
each committed update. The parent kills it at random moments.
"""

from __future__ import annotations

import sys

from sample_store import sample_data

from omw_sites.store import open_inventory


def states():
    """Two versions of the same region: B changes 30 sites, drops 20 and adds 15."""
    a, reference, info = sample_data(400, seed=11)
    b = a.copy()
    b.loc[b.index[:30], "dist_water_m"] = b.loc[b.index[:30], "dist_water_m"] + 123.0
    b = b.drop(index=b.index[30:50])
    extra, _, _ = sample_data(15, seed=12)
    extra["site_id"] = [f"Snew{i:07d}" for i in range(15)]
    extra["parcel_ids"] = [f"146501_1.0200.{i}" for i in range(15)]
    extra = extra.set_geometry(extra.geometry.translate(200_000, 0))  # away from the others
    import geopandas as gpd
    import pandas as pd

    b = gpd.GeoDataFrame(pd.concat([b, extra], ignore_index=True), crs=a.crs)
    return (a, b), reference, info


def main(target: str) -> None:
    (a, b), reference, info = states()
    inv = open_inventory(target)
    print("ready", flush=True)
    n = 0
    while True:
        state = b if n % 2 == 0 else a
        inv.apply(state, reference, {**info, "run_id": f"k{n}"})
        n += 1
        print(f"applied {n}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
