"""SIGKILL at random moments during inventory updates: the store is always the state
before or the state after, never between (both backends)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kill_worker import states

from omw_sites.store import open_inventory
from omw_sites.store.hashing import content_hash
from omw_sites.store.update import multi_sites, tracked_columns

KILLS = 20
TESTS = Path(__file__).parent


def _fingerprint(sites) -> frozenset[tuple[str, str]]:
    return frozenset(zip(sites["site_id"], sites["content_hash"], strict=True))


@pytest.mark.slow
def test_sigkill_during_updates_leaves_before_or_after(target):
    (a, b), reference, info = states()
    expected = {}
    for name, frame in (("A", a), ("B", b)):
        h = content_hash(multi_sites(frame).reset_index(drop=True), tracked_columns(frame.columns))
        expected[name] = frozenset(zip(frame["site_id"], h, strict=True))
    inv = open_inventory(target)
    inv.apply(a, reference, {**info, "run_id": "base"})
    rng = random.Random(20261127)
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    seen = {"A": 0, "B": 0}
    applied_total = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(TESTS / "kill_worker.py"), target],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read()
        time.sleep(rng.uniform(0.0, 2.5))  # an update takes ~0.3-1 s: kills land anywhere
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        applied_total += out.count("applied")
        current = inv.read_sites(columns=["site_id", "content_hash"], read_geometry=False)
        got = _fingerprint(current)
        state = next((k for k, v in expected.items() if v == got), None)
        assert state is not None, "store holds neither the state before nor after an update"
        seen[state] += 1
        runs = inv.backend.read_layer("runs", read_geometry=False)
        hist = inv.backend.read_layer("site_history", read_geometry=False)
        # every committed update wrote its history; no history without its run
        assert set(hist["run_id"]) <= set(runs["run_id"])
        # the store is usable: the next apply (back to A) works from whatever it holds
    assert applied_total > 0, "no update ever committed: the kills came too early"
    assert seen["A"] + seen["B"] == KILLS
    assert seen["B"] > 0, f"never killed after a committed update: {seen}"
    inv.apply(a, reference, {**info, "run_id": "final"})
    assert _fingerprint(inv.read_sites(columns=["site_id", "content_hash"])) == expected["A"]


HOLD_WRITE = """
import sys, time
import pandas as pd
import omw_sites.store.gpkg_backend as gpkg
from omw_sites.store import open_backend
gpkg.CACHE_KIB = 256  # a small page cache: the big transaction spills to the file
backend = open_backend(sys.argv[1])
fids = [int(f) for f in sys.argv[2].split(",")]
with backend.transaction() as tx:
    # several MB of changes: SQLite spills them to the file, the journal becomes hot
    tx.update("sites", "fid", pd.DataFrame({"fid": fids, "notes": ["x" * 20000] * len(fids)}))
    print("holding", flush=True)
    time.sleep(120)
"""


def test_geopackage_readers_recover_a_hot_journal(tmp_path):
    """A writer killed with a spilled transaction leaves a hot rollback journal; GDAL's
    read-only open cannot roll it back, so the store recovers it before reading and the
    readers see the state before."""
    (a, _), reference, info = states()
    target = str(tmp_path / "hot.gpkg")
    inv = open_inventory(target)
    inv.apply(a, reference, {**info, "run_id": "base"})
    before = inv.read_sites(columns=["site_id", "notes"], read_geometry=False)
    fids = inv.read_sites(columns=["site_id"], read_geometry=False, fid_as_index=True).index
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE, target, ",".join(map(str, fids))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.strip() == "holding", proc.stderr.read()
    journal = Path(target + "-journal")
    assert journal.exists() and journal.stat().st_size > 0  # the transaction spilled
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    after = inv.read_sites(columns=["site_id", "notes"], read_geometry=False)
    assert after.equals(before)
    assert not journal.exists()  # rolled back and removed


RELOAD = """
import sys
import geopandas as gpd
import numpy as np
import shapely
from omw_sites.layers import WORK_CRS
from omw_sites.store.gpkg_backend import GeoPackageBackend
n = 60_000
rng = np.random.default_rng(1)
x, y = rng.uniform(600_000, 650_000, n), rng.uniform(450_000, 500_000, n)
frame = gpd.GeoDataFrame(
    {"site_id": [f"S{i:010x}" for i in rng.permutation(n)], "v": rng.uniform(0, 1, n)},
    geometry=shapely.multipolygons(shapely.box(x, y, x + 50, y + 50).reshape(-1, 1)),
    crs=WORK_CRS,
)
print("ready", flush=True)
while True:
    GeoPackageBackend(sys.argv[1]).bulk_load(frame, {})
    print("loaded", flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_a_geopackage_first_load(tmp_path):
    """A first load builds a temporary file (GDAL) and renames it: a kill at any moment
    leaves the old store whole, or the new one whole."""
    import geopandas as gpd
    import shapely

    from omw_sites.layers import WORK_CRS
    from omw_sites.store.gpkg_backend import GeoPackageBackend

    path = tmp_path / "store.gpkg"
    old = gpd.GeoDataFrame(
        {"site_id": ["Sold"], "v": [0.5]},
        geometry=shapely.multipolygons([[shapely.box(0, 0, 1, 1)]]),
        crs=WORK_CRS,
    )
    GeoPackageBackend(path).bulk_load(old, {})
    rng = random.Random(7)
    seen = {"old": 0, "new": 0}
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", RELOAD, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 2.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        store = GeoPackageBackend(path)
        sites = store.read_layer("sites", read_geometry=False)
        assert len(sites) in (1, 60_000), len(sites)
        seen["old" if len(sites) == 1 else "new"] += 1
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("SELECT rtreecheck('rtree_sites_geom')").fetchone() == ("ok",)
            count = conn.execute("SELECT feature_count FROM gpkg_ogr_contents "
                                 "WHERE table_name = 'sites'").fetchone()[0]  # fmt: skip
            assert count == len(sites)
        finally:
            conn.close()
        hits = store.read_layer("sites", bbox=(600_000, 450_000, 610_000, 460_000))
        assert len(sites) == 1 or len(hits) > 0
    assert seen["new"] > 0, f"never killed after a load finished: {seen}"
    # the killed loads' temporary files (and SQLite journals) go with the next load; the
    # random kills above may all have landed between loads, so add the leftovers of a
    # load whose process is gone
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    for suffix in (".tmp.gpkg", ".tmp.gpkg-journal"):
        (tmp_path / f".store-{gone}-x1y2z3{suffix}").write_bytes(b"partial")
    GeoPackageBackend(path).bulk_load(old, {})
    assert list(tmp_path.glob(".store-*")) == []
