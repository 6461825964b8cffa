"""The partitioned run (``omw-sites run --scheduler``) on a two-worker Dask LocalCluster
gives the one-process run's sites, criteria, scores and ranks — sites that straddle a
powiat boundary included, with optional layers missing, into a GeoPackage and PostGIS.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest

from omw_sites.etl import load_raw
from omw_sites.etl.window import Window
from omw_sites.partitioned import ClusterOptions, run_partitioned
from omw_sites.partitioned.plan import plan_partitions
from omw_sites.partitioned.tasks import PARTITION_KEYS
from omw_sites.pipeline import run
from omw_sites.sites import assemble_sites, select_candidates
from omw_sites.store import read_run_info, read_sites

# columns that say when and by which run a record was written, not what it holds
RUN_COLUMNS = {"created_at", "updated_at", "measured_run", "scored_run", "fid"}
OPTIONS = ClusterOptions(workers=2, worker_memory="3GB")
GML_UNIT = "141803_2"  # the demo writes this unit's parcels as EGiB GML too


def _straddle(raw: Path) -> list[str]:
    """Re-code some parcels so that sites span two powiaty: in ~40 multi-parcel sites,
    the parcels after the first (in ID order) get the code of another powiat of the
    region. Returns the sites' first parcel IDs."""
    data = load_raw(raw)
    cand = select_candidates(data["parcels"], data.get("zoning"), data.get("plan_zones"))
    sites = assemble_sites(cand)
    multi = sites[(sites["n_parcels"] > 1) & ~sites["parcel_ids"].str.contains(GML_UNIT)]
    powiaty = sorted({p[:4] for p in data["parcels"]["parcel_id"]})
    recode: dict[str, str] = {}
    firsts = []
    for ids in multi["parcel_ids"].iloc[::3].head(40):
        parts = ids.split(",")
        other = next(p for p in powiaty if p != parts[0][:4])
        firsts.append(parts[0])
        for pid in parts[1:]:
            recode[pid] = other + pid[4:]
    assert len(firsts) >= 20, "the demo region has too few multi-parcel sites"
    path = raw / "egib" / "dzialki.gpkg"
    frame = pyogrio.read_dataframe(path, layer="dzialki")
    frame["ID_DZIALKI"] = frame["ID_DZIALKI"].replace(recode)
    pyogrio.write_dataframe(frame, path, layer="dzialki", driver="GPKG")
    own = raw / "egib" / "ownership.csv"
    if own.exists():
        table = pd.read_csv(own, dtype=str)
        table["ID_DZIALKI"] = table["ID_DZIALKI"].replace(recode)
        table.to_csv(own, index=False)
    return firsts


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> tuple[Path, list[str]]:
    from omw_sites.demo import build_region

    raw = tmp_path_factory.mktemp("partitioned") / "raw"
    build_region(raw, parcels=6000, seed=11)
    return raw, _straddle(raw)


@pytest.fixture(scope="module")
def one_process(region, tmp_path_factory) -> Path:
    return Path(run(region[0], tmp_path_factory.mktemp("one")).store)


def assert_same_sites(a: str | Path, b: str | Path) -> pd.DataFrame:
    """Every current site of store ``a`` in ``b`` with the same values (numbers within
    1e-9); returns ``b``'s sites."""
    left = read_sites(a).set_index("site_id").sort_index()
    right = read_sites(b).set_index("site_id").sort_index()
    assert list(left.index) == list(right.index)
    assert set(left.columns) == set(right.columns)
    differ = {}
    for col in left.columns:
        if col in RUN_COLUMNS:
            continue
        x, y = left[col], right[col]
        if col == "geometry":
            same = x.geom_equals_exact(y, 1e-6).to_numpy()
        elif pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            same = np.isclose(
                x.to_numpy(dtype=float), y.to_numpy(dtype=float), rtol=1e-9, atol=1e-9,
                equal_nan=True,
            )  # fmt: skip
        else:
            tx = x.astype(object).where(x.notna(), "<NA>").astype(str).to_numpy()
            ty = y.astype(object).where(y.notna(), "<NA>").astype(str).to_numpy()
            same = tx == ty
        if not same.all():
            differ[col] = list(zip(x[~same].head(3), y[~same].head(3), strict=True))
    assert not differ, differ
    return right


def test_two_workers_give_the_one_process_run(region, one_process, tmp_path):
    raw, firsts = region
    summary = run_partitioned(raw, OPTIONS, out_dir=tmp_path)
    sites = assert_same_sites(one_process, summary.store)
    # sites spanning two powiaty, each kept by one partition, assembled whole
    powiaty = sites["parcel_ids"].str.split(",").map(lambda ids: len({i[:4] for i in ids}))
    straddling = sites[powiaty.to_numpy() > 1]
    assert len(straddling) >= 20
    assert len(straddling) >= len(firsts) // 2  # (a re-coded site may fall apart by ownership)
    assert (straddling["n_parcels"] > 1).all()
    info = read_run_info(summary.store)
    assert info["counts"] == read_run_info(one_process)["counts"]  # parcels and sites
    part = info["partitioned"]
    assert len(part["partitions"]) >= 2
    assert sum(p["sites"] for p in part["partitions"]) == len(sites)
    assert all(not p["beyond_window"] for p in part["partitions"])
    # ranks too: the same order in every profile
    for p in summary.profiles:
        assert summary.top[p.name]["site_id"].tolist() == (
            read_sites(one_process)
            .query(f"rank_{p.name} > 0")
            .sort_values(f"rank_{p.name}")["site_id"]
            .head(len(summary.top[p.name]))
            .tolist()
        )


def test_the_plan_made_by_the_workers_is_the_one_made_here(region):
    """The folder's files are looked at by the workers, several at a time (the GML
    files are parsed whole for their extents): the same partitions, extents and layer
    listings as in one process."""
    from omw_sites.partitioned.cluster import dask_client

    raw = region[0]
    here = plan_partitions(raw)
    with dask_client(OPTIONS) as client:
        there = plan_partitions(raw, client)
    assert there == here
    assert here.gml_extents and here.vector_layers and len(here.partitions) >= 2


def test_on_a_dask_scheduler_with_its_own_workers(region, one_process, tmp_path):
    """The cluster commands the README gives: ``dask scheduler``, one ``dask worker
    --resources network=1`` for the road network and ``dask worker --nthreads 1
    --resources partition=1`` for the powiaty, then ``omw-sites run --scheduler
    tcp://…`` — the same sites; the network on its own worker, no partition there."""
    from distributed import Client

    dask = Path(sys.executable).with_name("dask")
    info = tmp_path / "scheduler.json"
    procs = [
        subprocess.Popen(
            [str(dask), "scheduler", "--port", "0", "--dashboard-address", ":0",
             "--scheduler-file", str(info)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        for _ in range(300):
            if info.exists() and info.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        for extra in (
            ["--nworkers", "1", "--resources", "network=1"],
            ["--nworkers", "2", "--resources", "partition=1"],
        ):
            procs.append(
                subprocess.Popen(
                    [str(dask), "worker", "--scheduler-file", str(info), *extra,
                     "--nthreads", "1", "--memory-limit", "3GB", "--dashboard-address", ":0"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(3, timeout=120)
        cmd = [
            sys.executable, "-m", "omw_sites", "run", "--raw", str(region[0]),
            "--out", str(tmp_path / "out"), "--scheduler", address,
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert_same_sites(one_process, tmp_path / "out" / "omw_sites.gpkg")
        part = read_run_info(tmp_path / "out" / "omw_sites.gpkg")["partitioned"]
        assert part["scheduler"] == address
        partition_pids = {p["worker_pid"] for p in part["partitions"]}
        assert len(partition_pids) == 2
        assert part["network"]["worker_pid"] not in partition_pids
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def test_a_small_halo_still_gives_every_nearest_distance(region, one_process, tmp_path):
    """A partition reads the layers of nearest-feature distances only ``--halo-km``
    around its powiat; a site whose nearest feature may lie farther is looked for again
    in wider windows around it alone: every distance is the one-process run's."""
    raw, _ = region
    options = ClusterOptions(workers=2, worker_memory="3GB", halo_km=0.5)
    summary = run_partitioned(raw, options, out_dir=tmp_path)
    assert_same_sites(one_process, summary.store)
    parts = read_run_info(summary.store)["partitioned"]["partitions"]
    widened = sum(p["widened"].get("dist_hv_line_m", 0) for p in parts)
    assert widened > 0  # sites whose nearest HV line lies beyond their powiat's window
    assert not any(p["beyond_window"] for p in parts)
    assert "beyond the partition's window" not in "\n".join(summary.notes)


def test_a_partition_without_a_layer_in_its_window_looks_farther(region, tmp_path, postgis_url):
    """Gas lines in one corner only: the powiaty with none within their windows look
    for the nearest farther, around their sites alone — the same distances as one
    process, nothing left empty; into a GeoPackage and with the sites staged into
    PostGIS."""
    raw = tmp_path / "raw"
    shutil.copytree(region[0], raw)
    (raw / "gesut" / "1418_gesut.gml").unlink()
    gpkg = raw / "gesut" / "gesut.gpkg"
    layers = {
        name: pyogrio.read_dataframe(gpkg, layer=name) for name, _ in pyogrio.list_layers(gpkg)
    }
    lines = layers["przewody"]
    gas = lines["RODZAJSIECI"] == "g"
    keep = lines[gas].geometry.centroid.x.rank(method="first") <= 3  # the 3 westernmost
    layers["przewody"] = lines[~gas | keep.reindex(lines.index, fill_value=False)]
    gpkg.unlink()
    for name, frame in layers.items():
        pyogrio.write_dataframe(frame, gpkg, layer=name)
    one = run(raw, tmp_path / "one")
    options = ClusterOptions(workers=2, worker_memory="3GB", halo_km=0.5)
    part = run_partitioned(raw, options, out_dir=tmp_path / "part")
    sites = assert_same_sites(one.store, part.store)
    assert sites["dist_gas_m"].notna().all()
    parts = read_run_info(part.store)["partitioned"]["partitions"]
    assert sum(p["widened"].get("dist_gas_m", 0) for p in parts) > 0
    assert "beyond the partition's window" not in "\n".join(part.notes)
    target = f"{postgis_url}?schema=far_{tmp_path.name[-8:].lower()}"
    run_partitioned(raw, options, store=target)
    assert_same_sites(one.store, target)


def _stripped(raw: Path, dest: Path) -> Path:
    """The region without the optional layers real downloads often lack."""
    shutil.copytree(raw, dest)
    for rel in ("gesut", "nmt", "gus", "hydro"):
        shutil.rmtree(dest / rel, ignore_errors=True)
    for f in (dest / "egib").glob("kontury*"):
        f.unlink()
    return dest


def test_cli_with_layers_missing_into_postgis(region, tmp_path, postgis_url):
    raw = _stripped(region[0], tmp_path / "raw")
    one = run(raw, tmp_path / "one")
    target = f"{postgis_url}?schema=part_{tmp_path.name[-8:].lower()}"
    cmd = [
        sys.executable, "-m", "omw_sites", "run", "--raw", str(raw), "--store", target,
        "--scheduler", "local", "--workers", "2", "--worker-memory", "3GB",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "partition" in done.stderr
    assert_same_sites(one.store, target)
    # the layers that are not there are named, as in one process
    for missing in ("no utility network", "no terrain model", "no population grid"):
        assert missing in done.stderr


def _staging_schemas(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'omw_stage_%'")
        return [r[0] for r in rows]


def test_reference_layers_are_staged_in_postgis_by_the_network_worker(
    region, one_process, tmp_path, postgis_url, monkeypatch
):
    """Into PostGIS, the worker holding the network writes the reference layers (the
    whole utility network among them) beside the store, and the store's transaction
    moves them in: the coordinator never holds them. The layers equal the one-process
    store's; the staging schema is gone after a run, a repeated run leaves unchanged
    layers alone, and a run that fails after staging leaves the store as it was."""
    import omw_sites.partitioned.cluster as cluster
    from omw_sites.store import open_backend, read_layer

    raw = region[0]
    target = f"{postgis_url}?schema=staged_{tmp_path.name[-8:].lower()}"
    said: list[str] = []
    first = run_partitioned(raw, OPTIONS, store=target, progress=lambda s, m, n: said.append(m))
    assert_same_sites(one_process, target)
    assert not _staging_schemas(postgis_url)
    assert not any("left behind" in m for m in said)
    for name in ("utilities", "gminy", "roads_main", "junctions", "substations"):
        mine = read_layer(target, name)
        theirs = read_layer(one_process, name)
        assert len(mine) == len(theirs) > 0, name
        cols = [c for c in theirs.columns if c != "geometry"]
        pd.testing.assert_frame_equal(
            pd.DataFrame(mine[cols]), pd.DataFrame(theirs[cols]), check_dtype=False
        )
        assert mine.geometry.geom_equals_exact(theirs.geometry, 1e-6).all(), name
    # the coordinator received table names and digests, not frames
    assert first.changes is not None and first.changes.kind == "load"
    staged = read_run_info(target)["partitioned"]["network"]["staged"]
    assert staged["utilities"] == len(read_layer(one_process, "utilities"))
    assert set(staged) >= {"gminy", "roads_main", "junctions"}
    fids = open_backend(target).read_layer("utilities", fid_as_index=True).index

    # the same data again: the staged copy is not taken, the stored layer stays as is
    run_partitioned(raw, OPTIONS, store=target)
    again = open_backend(target).read_layer("utilities", fid_as_index=True).index
    pd.testing.assert_index_equal(again, fids)
    assert not _staging_schemas(postgis_url)

    # a failure after the layers were staged: nothing written, nothing left behind
    before = read_sites(target)

    def broken(*args, **kwargs):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(cluster, "finish", broken)
    with pytest.raises(RuntimeError, match="scoring failed"):
        run_partitioned(raw, OPTIONS, store=target)
    assert not _staging_schemas(postgis_url)
    pd.testing.assert_frame_equal(pd.DataFrame(read_sites(target)), pd.DataFrame(before))


def test_bad_scheduler_and_bad_data_stop_before_the_store(region, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(region[0], raw)
    store = tmp_path / "inv.gpkg"
    base = [sys.executable, "-m", "omw_sites", "run", "--raw", str(raw), "--store", str(store)]
    done = subprocess.run(
        [*base, "--scheduler", "udp://nowhere"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "--scheduler must be 'local' or tcp://HOST:PORT" in done.stderr
    # a zoning file that cannot be read: the partition that meets it fails the run
    (raw / "mpzp" / "mpzp.gpkg").write_bytes(b"not a geopackage")
    done = subprocess.run(
        [*base, "--scheduler", "local", "--workers", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "mpzp.gpkg" in done.stderr
    assert "Traceback" not in done.stderr
    assert not store.exists()


def test_a_country_of_tiles_reads_and_receives_only_each_powiats_part(tmp_path):
    """Three OMW-like tiles 90 km apart (``demo build --tile-parcels``): the one-process
    run's sites, while each partition receives only its part of the road network (no
    road joins two tiles) and the tiles' layers far from it are not read."""
    from omw_sites.demo.country import build_country

    raw = tmp_path / "country"
    build_country(raw, 3 * 1500, seed=5, tile_parcels=1500)
    one = run(raw, tmp_path / "one")
    summary = run_partitioned(raw, OPTIONS, out_dir=tmp_path / "part")
    assert_same_sites(one.store, summary.store)
    info = read_run_info(summary.store)["partitioned"]
    whole = info["network"]["road_nodes"]
    parts = info["partitions"]
    assert len({p["powiat"][:2] for p in parts}) == 3  # three voivodeship codes
    assert all(0 < p["road_nodes"] < whole / 2 for p in parts if p["sites"])
    # a partition of the first tile opens no other tile's parcels, zoning or roads; it
    # reads every tile's layers that a window never limits (junctions, gminy …)
    plan = plan_partitions(raw)
    part = plan.partitions[0]
    win = Window(part.window(1_000.0), part.window(30_000.0))
    data = load_raw(
        raw, within=win, keys=PARTITION_KEYS, files=plan.files, vector_layers=plan.vector_layers
    )
    read = {(e["file"].split("/")[0], layer["key"]) for e in data.files for layer in e["layers"]}
    tiles = sorted({t for t, _ in read})
    own = f"tile_{part.key[:2]}"
    assert len(tiles) == 3 and own in tiles
    for tile in tiles:
        keys = {k for t, k in read if t == tile}
        assert {"junctions", "gminy"} <= keys
        assert ({"parcels", "zoning", "roads"} <= keys) == (tile == own), (tile, keys)


def test_sites_are_staged_by_the_partitions_into_postgis(
    region, tmp_path, postgis_url, monkeypatch
):
    """Into PostGIS, each partition writes its measured sites (shapes and all) beside
    the store from its own worker, and the coordinator receives only what scoring and
    the summary read. With a nomination list, the store equals a one-process run's —
    offers, lineage, content and score hashes included — and a partitioned run over
    the one-process store finds every site unchanged."""
    import omw_sites.partitioned.cluster as cluster

    raw = region[0]
    one = f"{postgis_url}?schema=one_{tmp_path.name[-8:].lower()}"
    part = f"{postgis_url}?schema=part_{tmp_path.name[-8:].lower()}"
    parcels = pyogrio.read_dataframe(raw / "egib" / "dzialki.gpkg", read_geometry=False)
    ids = parcels["ID_DZIALKI"].iloc[[10, 2000, 4000]].tolist()
    listed = tmp_path / "oferta.csv"
    listed.write_text(
        "parcel_id;name;contact;price_pln_m2\n"
        f"{ids[0]};Teren A;a@gmina.pl;150,5\n{ids[1]};Teren B;;\n{ids[2]};;;99\n",
        encoding="utf-8",
    )
    run(raw, store=one, nominated=listed)
    seen: dict = {}
    finish = cluster.finish

    def spy(measured, *args, **kwargs):
        seen["columns"] = list(measured.sites.columns)
        seen["staged"] = measured.staged
        return finish(measured, *args, **kwargs)

    monkeypatch.setattr(cluster, "finish", spy)
    summary = run_partitioned(raw, OPTIONS, store=part, nominated=listed)
    assert "geometry" not in seen["columns"] and "parcel_ids" not in seen["columns"]
    assert seen["staged"].rows == summary.sites
    assert read_run_info(part)["partitioned"]["staged_sites"] == summary.sites
    mine = assert_same_sites(one, part)
    assert mine["price_pln_m2"].notna().sum() >= 2
    theirs = read_sites(one).set_index("site_id").sort_index()
    for col in ("content_hash", "scores_hash", "notes", "contact", "derived_from"):
        pd.testing.assert_series_equal(mine[col], theirs[col], check_dtype=False)
    assert not _staging_schemas(postgis_url)

    again = run_partitioned(raw, OPTIONS, store=one, nominated=listed).changes
    assert again is not None and again.kind == "update"
    assert (again.added, again.changed, again.ended, again.rescored) == (0, 0, 0, 0)
    assert again.unchanged == summary.sites
