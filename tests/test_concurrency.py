"""Concurrent writers of one inventory, with real processes, on both backends.

Each case runs two writers in two spawned processes (a pool kept for the module) and
forces the interleaving the defects need: every writer pauses once, after it has read the
store and before it writes, until the other writer has read too (a barrier), or until the
other process has committed an edit (events). Several rounds per case and backend.

The outcome must be one a serial execution of the writes that were accepted would give
(either order); every write that was refused must have been told. The serial outcomes are
computed once per case in this process, with the same inputs and timestamps.

A last test mixes GDAL reads and ``sqlite3`` write transactions of one GeoPackage in
threads of one process while another process writes (item 3 of issue 17).
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sample_store import sample_data

from omw_sites.layers import score_col
from omw_sites.store import open_backend, open_inventory

SPAWN = mp.get_context("spawn")
ROUNDS = 3
G1, G2 = "1418043", "1421062"  # two of the sample's three gminy
T0 = "2026-11-01T10:00:00.000000Z"
TA, TB = "2026-12-01T10:00:00.000000Z", "2026-12-02T10:00:00.000000Z"
WAIT = 60  # seconds a worker waits for the other before giving up


@pytest.fixture(scope="module")
def workers():
    """Two long-lived worker processes and a manager for the barriers between them."""
    with SPAWN.Manager() as manager, ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        # start both workers (imports included) before the first round
        list(pool.map(_ready, range(2)))
        yield manager, pool


@pytest.fixture(params=["gpkg", "postgis"])
def new_target(request, tmp_path):
    """A function giving a fresh, empty store target on the backend."""
    if request.param == "gpkg":
        return lambda: str(tmp_path / f"inv_{uuid.uuid4().hex[:8]}.gpkg")
    url = request.getfixturevalue("postgis_url")
    return lambda: f"{url}?schema=c_{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------- worker side


def _ready(_: int) -> bool:
    import omw_sites.store.inventory  # noqa: F401 - the heavy imports, once

    return True


def _pause_once(backend: Any, sync) -> dict:
    """Make ``backend`` call ``sync()`` the first time a write starts (a first load or a
    write transaction): after the caller read the store, before it writes. Returns a
    count of the writes started (more than one: the first was refused and retried)."""
    done = {"paused": False, "writes": 0}

    def gate() -> None:
        done["writes"] += 1
        if not done["paused"]:
            done["paused"] = True
            sync()

    real_tx, real_load = backend.transaction, backend.bulk_load

    def transaction(*args, **kwargs):
        gate()
        return real_tx(*args, **kwargs)

    def bulk_load(*args, **kwargs):
        gate()
        return real_load(*args, **kwargs)

    backend.transaction, backend.bulk_load = transaction, bulk_load
    return done


def _unpatch(backend: Any) -> None:
    for name in ("transaction", "bulk_load"):
        backend.__dict__.pop(name, None)


def _apply_job(target: str, job: dict, sync) -> dict:
    """In a worker: ``Inventory.apply`` of ``job``, pausing once before writing."""
    inv = open_inventory(target)
    counts = _pause_once(inv.backend, sync)
    try:
        report = inv.apply(
            job["sites"], None, job["info"], scope=job["scope"], now=job["now"]
        ).as_dict()
        return {"ok": True, "report": _comparable(report), "writes": counts["writes"]}
    except Exception as exc:  # a refused write: told, and checked by the test
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "writes": counts["writes"]}
    finally:
        _unpatch(inv.backend)
        inv.backend.close()


def _barrier_apply(target: str, job: dict, barrier) -> dict:
    return _apply_job(target, job, lambda: barrier.wait(WAIT))


def _apply_after_edit(target: str, job: dict, read_done, edit_done) -> dict:
    def sync() -> None:
        read_done.set()
        edit_done.wait(WAIT)

    return _apply_job(target, job, sync)


def _edit_job(target: str, site_id: str, read_done, edit_done) -> dict:
    """In a worker: once the other worker has read the store, reserve ``site_id``."""
    try:
        if not read_done.wait(WAIT):
            return {"ok": False, "error": "the ingest never read the store"}
        inv = open_inventory(target)
        try:
            inv.set_status(site_id, "reserved", by="edit", date="2026-11-30")
        finally:
            inv.backend.close()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        edit_done.set()


def _comparable(report: dict) -> dict:
    return {k: report[k] for k in ("kind", "scope", "added", "changed", "ended", "unchanged")}


# ---------------------------------------------------------------- test side


def _state(target: str) -> dict[str, list]:
    """What a reader can see, without the wall-clock stamps of edits."""
    backend = open_backend(target)
    try:
        sites = pd.DataFrame(backend.read_layer("sites"))
        sites["wkt"] = shapely.to_wkt(sites.geometry.to_numpy(), rounding_precision=2)
        sites = sites.drop(columns=["geometry", "updated_at"])
        hist = pd.DataFrame(backend.read_layer("site_history", read_geometry=False))
        hist = hist.drop(columns=["changed_at"])
        runs = pd.DataFrame(backend.read_layer("runs", read_geometry=False))
        runs = runs[["run_id", "kind", "scope", "added", "changed", "ended", "unchanged"]]
    finally:
        if str(target).startswith("postgresql"):
            backend.close()
    return {
        name: _rows(frame) for name, frame in (("sites", sites), ("history", hist), ("runs", runs))
    }


def _rows(frame: pd.DataFrame) -> list:
    frame = frame[sorted(frame.columns)]
    rows = [
        tuple(
            None
            if v is None or (isinstance(v, float) and np.isnan(v))
            else round(v, 6)
            if isinstance(v, float)
            else str(v)
            for v in row
        )
        for row in frame.itertuples(index=False)
    ]
    return sorted(rows, key=repr)


def _check_serial(target: str, results: dict[str, dict], serial: dict[tuple, dict]) -> None:
    """The store and the reports are those of one serial order of the accepted writes."""
    for name, res in results.items():
        assert res["ok"] or res["error"], (name, res)  # a refusal says why
    accepted = tuple(n for n in sorted(results) if results[n]["ok"])
    assert accepted, f"every write was refused: {results}"
    state = _state(target)
    candidates = {order: s for order, s in serial.items() if sorted(order) == list(accepted)}
    for order, expected in candidates.items():
        reports_match = all(results[n].get("report") == expected["reports"].get(n) for n in order)
        if state == expected["state"] and reports_match:
            return
    # report the nearest serial outcome's differences
    order, expected = next(iter(candidates.items()))
    for table in ("sites", "history", "runs"):
        got, want = state[table], expected["state"][table]
        assert got == want, (
            f"{table}: not the outcome of running {order} one after the other: "
            f"{len(got)} rows vs {len(want)}; only here: {sorted(set(got) - set(want))[:4]}; "
            f"missing: {sorted(set(want) - set(got))[:4]}; reports {results}"
        )
    raise AssertionError(f"reports {results} are not those of a serial run {candidates}")


def _serial(new_target, setup, jobs: dict[str, Any], orders=None) -> dict[tuple, dict]:
    """The outcome of each order of ``jobs`` (both, or ``orders``) run one after the other
    on a fresh store."""
    out = {}
    for order in orders or (tuple(jobs), tuple(reversed(jobs))):
        target = new_target()
        setup(target)
        reports = {}
        for name in order:
            job = jobs[name]
            if callable(job):
                job(target)
                continue
            inv = open_inventory(target)
            report = inv.apply(job["sites"], None, job["info"], scope=job["scope"], now=job["now"])
            reports[name] = _comparable(report.as_dict())
        out[order] = {"state": _state(target), "reports": reports}
    return out


def _job(sites: gpd.GeoDataFrame, run_id: str, scope: list[str], now: str, info: dict) -> dict:
    return {"sites": sites, "info": {**info, "run_id": run_id}, "scope": scope, "now": now}


def _region(n: int = 60, seed: int = 11):
    return sample_data(n, seed=seed)


def _new_sites(sites: gpd.GeoDataFrame, teryt: str, prefix: str, k: int) -> gpd.GeoDataFrame:
    """``k`` new sites of gmina ``teryt`` far from the others (no duplicates)."""
    rows = sites.iloc[[0] * k].copy()
    rows["site_id"] = [f"S{prefix}{i:08d}" for i in range(k)]
    rows["parcel_ids"] = [f"146501_1.0900.{prefix}{i}" for i in range(k)]
    rows["teryt"] = teryt
    x = np.arange(k) * 1000.0
    rows = rows.set_geometry(gpd.GeoSeries(shapely.box(x, 0, x + 100, 100), crs=sites.crs).values)
    return rows


def _concat(*frames: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    crs = frames[0].crs
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)


def _gmina_update(sites, teryt: str, prefix: str, shift: float) -> gpd.GeoDataFrame:
    """The region as one gmina's newer dataset sees it: two of its sites gone, three new,
    a measured value changed on three, and every site re-scored (new profile weights)."""
    mine = sites.index[sites["teryt"] == teryt]
    out = sites.drop(index=mine[:2]).copy()
    out.loc[mine[2:5], "dist_sewer_m"] = [11.0, 22.0, 33.0]
    logistics = score_col("logistics")
    out[logistics] = (out[logistics] + shift) % 1.0
    return _concat(out, _new_sites(sites, teryt, prefix, 3))


def _run_pair(workers, target: str, jobs: dict[str, dict]) -> dict[str, dict]:
    """Both jobs at once, each pausing before its first write until both have read."""
    manager, pool = workers
    barrier = manager.Barrier(2)
    futures = {n: pool.submit(_barrier_apply, target, job, barrier) for n, job in jobs.items()}
    results = {n: f.result(timeout=300) for n, f in futures.items()}
    # both read the same state: one of them must have been refused and prepared again
    assert max(r["writes"] for r in results.values()) > 1, results
    return results


# ---------------------------------------------------------------- the cases


@pytest.mark.parametrize("start", ["missing", "initialised"])
def test_two_gminy_into_an_empty_inventory(workers, new_target, start):
    """Both first loads read an empty store; today the second replaces the first (only
    one gmina's sites remain, both report "added")."""
    sites, _, info = _region()

    def setup(target: str) -> None:
        if start == "initialised":
            open_inventory(target).init()

    jobs = {
        "a": _job(sites, "run-a", [G1], TA, info),
        "b": _job(sites, "run-b", [G2], TB, info),
    }
    serial = _serial(new_target, setup, jobs)
    for _ in range(ROUNDS):
        target = new_target()
        setup(target)
        results = _run_pair(workers, target, jobs)
        _check_serial(target, results, serial)
        kinds = sorted(r["report"]["kind"] for r in results.values() if r["ok"])
        assert kinds == ["load", "update"], results


def test_two_gminy_into_a_full_store(workers, new_target):
    """Two gminy's updates of a loaded store at once: each ends, adds and changes its own
    sites and re-scores the region; neither may write from what the other replaced."""
    sites, _, info = _region()
    jobs = {
        "a": _job(_gmina_update(sites, G1, "a", 0.25), "run-a", [G1], TA, info),
        "b": _job(_gmina_update(sites, G2, "b", 0.5), "run-b", [G2], TB, info),
    }

    def setup(target: str) -> None:
        open_inventory(target).apply(sites, None, {**info, "run_id": "base"}, now=T0)

    serial = _serial(new_target, setup, jobs)
    for _ in range(ROUNDS):
        target = new_target()
        setup(target)
        _check_serial(target, _run_pair(workers, target, jobs), serial)


def test_the_same_scope_twice_at_once(workers, new_target):
    """The same gmina's dataset ingested twice at once: today both add its 24 new sites
    (24 site IDs with two current records) and the history is doubled."""
    sites, _, info = _region()
    update = _concat(sites, _new_sites(sites, G1, "n", 24))
    jobs = {
        "a": _job(update, "run-a", [G1], TA, info),
        "b": _job(update, "run-b", [G1], TB, info),
    }

    def setup(target: str) -> None:
        open_inventory(target).apply(sites, None, {**info, "run_id": "base"}, now=T0)

    serial = _serial(new_target, setup, jobs)
    for _ in range(ROUNDS):
        target = new_target()
        setup(target)
        _check_serial(target, _run_pair(workers, target, jobs), serial)
        current = open_inventory(target).read_sites(read_geometry=False)
        assert not current["site_id"].duplicated().any()


def test_an_edit_between_the_read_and_the_write_of_an_ingest(workers, new_target):
    """A site is reserved after an ingest read the store and before it wrote; the ingest
    splits that site in two. Today the reservation stays on the ended record and the two
    successors come out "available"; it must reach the successors (the edit committed
    first, so the outcome is that of the edit, then the ingest)."""
    manager, pool = workers
    sites, _, info = _region()
    parent = sites[sites["teryt"] == G1].iloc[0]
    x0, y0, x1, y1 = parent.geometry.bounds
    xm = (x0 + x1) / 2
    children = gpd.GeoDataFrame([parent, parent], crs=sites.crs).reset_index(drop=True)
    children = children.set_geometry(
        gpd.GeoSeries([shapely.box(x0, y0, xm, y1), shapely.box(xm, y0, x1, y1)], crs=sites.crs)
    )
    children["site_id"] = ["Schild00001", "Schild00002"]
    children["parcel_ids"] = ["146501_1.0001.900/1", "146501_1.0001.900/2"]
    children["derived_from"] = parent["site_id"]
    split = _concat(sites[sites["site_id"] != parent["site_id"]], children)
    ingest = _job(split, "run-a", [G1], TA, info)

    def setup(target: str) -> None:
        open_inventory(target).apply(sites, None, {**info, "run_id": "base"}, now=T0)

    def edit(target: str) -> None:
        open_inventory(target).set_status(
            parent["site_id"], "reserved", by="edit", date="2026-11-30"
        )

    # the edit commits before the ingest writes: the outcome of the edit, then the ingest
    serial = _serial(new_target, setup, {"edit": edit, "ingest": ingest}, [("edit", "ingest")])
    for _ in range(ROUNDS):
        target = new_target()
        setup(target)
        read_done, edit_done = manager.Event(), manager.Event()
        a = pool.submit(_apply_after_edit, target, ingest, read_done, edit_done)
        b = pool.submit(_edit_job, target, parent["site_id"], read_done, edit_done)
        results = {"ingest": a.result(timeout=300), "edit": b.result(timeout=300)}
        assert results["edit"]["ok"], results
        assert results["ingest"]["writes"] == 2, results  # refused once, then from the edit
        _check_serial(target, results, serial)
        stored = open_inventory(target).read_sites(read_geometry=False).set_index("site_id")
        assert stored.loc[["Schild00001", "Schild00002"], "status"].tolist() == ["reserved"] * 2


def test_an_edit_of_a_site_the_ingest_keeps_does_not_restart_it(workers, new_target):
    """An edit of a site that an ingest changes but does not end, committed between the
    ingest's read and its write: the ingest commits at its first attempt and both land
    (an edit and an update touch different fields). With a check of the whole store's
    version every edit restarted the ingest, and a steady trickle of API edits made a
    large ingest give up after five attempts."""
    manager, pool = workers
    sites, _, info = _region()
    ingest = _job(_gmina_update(sites, G1, "a", 0.25), "run-a", [G1], TA, info)
    kept = sites.index[sites["teryt"] == G1][2]  # changed by the update (dist_sewer_m)
    site_id = sites.loc[kept, "site_id"]

    def setup(target: str) -> None:
        open_inventory(target).apply(sites, None, {**info, "run_id": "base"}, now=T0)

    def edit(target: str) -> None:
        open_inventory(target).set_status(site_id, "reserved", by="edit", date="2026-11-30")

    serial = _serial(new_target, setup, {"edit": edit, "ingest": ingest}, [("edit", "ingest")])
    for _ in range(ROUNDS):
        target = new_target()
        setup(target)
        read_done, edit_done = manager.Event(), manager.Event()
        a = pool.submit(_apply_after_edit, target, ingest, read_done, edit_done)
        b = pool.submit(_edit_job, target, site_id, read_done, edit_done)
        results = {"ingest": a.result(timeout=300), "edit": b.result(timeout=300)}
        assert results["edit"]["ok"] and results["ingest"]["ok"], results
        assert results["ingest"]["writes"] == 1, results  # not restarted by the edit
        _check_serial(target, results, serial)
        stored = open_inventory(target).record(site_id)
        assert stored["status"] == "reserved" and stored["dist_sewer_m"] == 11.0


# ---------------------------------------------------------------- one process, two SQLites


def _insert_runs(path: str, prefix: str, n: int) -> int:
    """In another process: ``n`` write transactions, one ``runs`` row each."""
    from omw_sites.store.gpkg_backend import GeoPackageBackend

    backend = GeoPackageBackend(path)
    for i in range(n):
        with backend.transaction() as tx:
            tx.insert("runs", _run_row(f"{prefix}{i}"))
    return n


def _run_row(run_id: str) -> pd.DataFrame:
    from omw_sites.store.base import RUNS_COLUMNS

    values = [run_id, "2026-11-27T00:00:00Z", "edit", "all", "test", 0, 0, 0, 0, 0, "{}"]
    return pd.DataFrame({c: [v] for c, v in zip(RUNS_COLUMNS, values, strict=True)})


def test_gdal_reads_and_sqlite_writes_of_one_geopackage_in_one_process(tmp_path):
    """Threads of one process read the store through GDAL while other threads commit
    ``sqlite3`` transactions and another process writes too. GDAL closing its descriptor
    of the file drops every POSIX lock the process holds on it (the writers' included):
    today COMMITs fail with "disk I/O error" and committed rows are lost."""
    from omw_sites.store.gpkg_backend import GeoPackageBackend

    path = tmp_path / "store.gpkg"
    sites, reference, info = sample_data(40, seed=2)
    open_inventory(path).apply(sites, reference, info)
    backend = GeoPackageBackend(path)
    writes, threads_n = 60, 2
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                backend.read_layer("runs", read_geometry=False)
                backend.read_layer("sites", columns=["site_id"], read_geometry=False)
                backend.list_layers()
            except Exception as exc:
                errors.append(f"read: {type(exc).__name__}: {exc}")

    def write(k: int) -> None:
        for i in range(writes):
            try:
                with backend.transaction() as tx:
                    tx.insert("runs", _run_row(f"t{k}-{i}"))
            except Exception as exc:
                errors.append(f"write t{k}-{i}: {type(exc).__name__}: {exc}")

    with ProcessPoolExecutor(1, mp_context=SPAWN) as other:
        list(other.map(_ready, [0]))
        outside = other.submit(_insert_runs, str(path), "p", writes)
        readers = [threading.Thread(target=read) for _ in range(2)]
        writers = [threading.Thread(target=write, args=(k,)) for k in range(threads_n)]
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join(timeout=300)
        try:
            outside.result(timeout=300)
        except Exception as exc:
            errors.append(f"other process: {type(exc).__name__}: {exc}")
        stop.set()
        for t in readers:
            t.join(timeout=60)
    assert not errors, errors[:5]
    runs = backend.read_layer("runs", read_geometry=False)
    expected = {"sample"} | {f"t{k}-{i}" for k in range(threads_n) for i in range(writes)}
    expected |= {f"p{i}" for i in range(writes)}
    assert set(runs["run_id"]) == expected
    assert len(runs) == len(expected)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
