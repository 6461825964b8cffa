"""The inventory through the CLI, as a gmina uses it: load the region, load a newer
dataset of one gmina, edit offers and statuses, read history and the change feed, export."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from cli_run import cli

from omw_sites.store import open_inventory, read_sites

MARKI = "1434022"  # parcel IDs of Marki start with 143402_2


@pytest.fixture(scope="module")
def region(demo_raw: Path, tmp_path_factory) -> dict[str, Path]:
    """The demo region, and a copy where Marki's newer EGiB dataset lost half its parcels."""
    work = tmp_path_factory.mktemp("dbcli")
    newer = work / "raw_newer"
    shutil.copytree(demo_raw, newer)
    path = newer / "egib" / "dzialki.gpkg"
    parcels = pyogrio.read_dataframe(path)
    marki = parcels.index[parcels["ID_DZIALKI"].str.startswith("143402_2.")]
    assert len(marki) > 50
    parcels = parcels.drop(index=marki[::2])
    pyogrio.write_dataframe(parcels, path, layer="dzialki", driver="GPKG")
    return {"raw": demo_raw, "newer": newer, "store": work / "inventory.gpkg", "work": work}


@pytest.mark.slow
def test_gmina_update_history_lifecycle_and_export(region):
    store = str(region["store"])
    res = cli("db", "init", "--store", store)
    assert res.returncode == 0, res.stderr
    res = cli("db", "load", str(region["raw"]), "--store", store, "--out", str(region["work"]))
    assert res.returncode == 0, res.stderr
    assert "load" in res.stdout
    before = read_sites(store, read_geometry=False)
    per_gmina = before.groupby("teryt")["site_id"].apply(set)
    assert MARKI in per_gmina.index

    # Marki's newer dataset lost half its parcels: most of its sites would end, which is
    # how a wrong CRS or a partial dataset looks too; refused before writing …
    load_marki = (
        "db", "load", str(region["newer"]), "--gmina", MARKI, "--store", store,
        "--out", str(region["work"]),
    )  # fmt: skip
    runs_before = open_inventory(store).summary()["runs"]
    res = cli(*load_marki)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert f"current sites in scope {MARKI}" in res.stderr and "--allow-mass-end" in res.stderr
    assert open_inventory(store).summary()["runs"] == runs_before  # nothing written
    # … unless the loss is confirmed
    res = cli(*load_marki, "--allow-mass-end")
    assert res.returncode == 0, res.stderr
    inv = open_inventory(store)
    last = inv.summary()["runs"][0]
    assert last["kind"] == "update" and last["scope"] == MARKI
    assert last["ended"] > 0  # Marki lost parcels: some of its sites are gone or changed
    after = read_sites(store, read_geometry=False)
    after_per_gmina = after.groupby("teryt")["site_id"].apply(set)
    for teryt, ids in per_gmina.items():
        if teryt != MARKI:
            assert after_per_gmina[teryt] == ids, teryt  # other gminy untouched
    assert after_per_gmina.get(MARKI, set()) != per_gmina[MARKI]
    untouched = after[after["teryt"] != MARKI]
    assert (
        untouched["measured_run"]
        == before.set_index("site_id").loc[untouched["site_id"], "measured_run"].to_numpy()
    ).all()

    ended = sorted(per_gmina[MARKI] - after_per_gmina.get(MARKI, set()))
    res = cli("db", "history", ended[0], "--store", store, "--json")
    assert res.returncode == 0, res.stderr
    kinds = [row["kind"] for row in json.loads(res.stdout)]
    assert kinds[0] == "created" and kinds[-1] in ("ended", "merged")

    res = cli("db", "changes", "--since", last["created"][:10], "--store", store, "--json")
    feed = pd.DataFrame(json.loads(res.stdout))
    assert set(ended) <= set(feed.loc[feed["change"] == "ended", "site_id"])

    sid = after["site_id"].iloc[0]
    res = cli("site", "set-status", sid, "reserved", "--by", "coi.marki", "--store", store)
    assert res.returncode == 0, res.stderr
    res = cli(
        "site", "edit", sid, "--by", "coi.marki", "--price", "380", "--contact",
        "inwestor@marki.pl", "--document", "Wypis MPZP=https://bip.marki.pl/wypis.pdf",
        "--document", "internal:Operat=https://intra.marki.pl/operat.pdf", "--store", store,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rec = inv.record(sid)
    assert rec["status"] == "reserved" and rec["price_pln_m2"] == 380.0
    assert [d["public"] for d in json.loads(rec["documents"])] == [True, False]

    res = cli("site", "set-status", sid, "rented", "--by", "x", "--store", store)
    assert res.returncode == 2 and "unknown status" in res.stderr
    res = cli("site", "set-status", sid, "sold", "--by", "coi.marki", "--store", store)
    assert res.returncode == 0
    res = cli("site", "set-status", sid, "available", "--by", "coi.marki", "--store", store)
    assert res.returncode == 2 and "sold is final" in res.stderr
    res = cli("site", "set-status", "Snotthere00", "sold", "--by", "x", "--store", store)
    assert res.returncode == 2 and "Snotthere00" in res.stderr

    res = cli("db", "history", sid, "--store", store, "--json")
    hist = pd.DataFrame(json.loads(res.stdout))
    assert hist.loc[hist["field"] == "status", "new_value"].tolist() == ["reserved", "sold"]
    assert set(hist.loc[hist["kind"] == "offer", "source"]) == {"user:coi.marki"}

    res = cli("db", "status", "--store", store, "--json")
    status = json.loads(res.stdout)
    assert status["by_status"]["sold"] == 1 and status["ended"] >= len(ended)

    out = region["work"] / "export.xlsx"
    res = cli("db", "export", str(out), "--store", store)
    assert res.returncode == 0, res.stderr
    assert len(pd.read_excel(out)) == len(after)
    res = cli("db", "export", str(region["work"] / "x.shp"), "--store", store)
    assert res.returncode == 2 and "export format" in res.stderr
    # the old name still runs, saying once what it is now called
    res = cli("db", "ingest", str(region["raw"]), "--gmina", "14", "--store", store)
    assert res.returncode == 2 and "7 digits" in res.stderr
    assert res.stderr.count("`db ingest` is now `db load`") == 1, res.stderr


def test_db_commands_on_a_missing_store_fail_cleanly(tmp_path):
    store = str(tmp_path / "nothing.gpkg")
    for args in (("db", "history", "S1"), ("site", "set-status", "S1", "sold", "--by", "x")):
        res = cli(*args, "--store", store)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr
        assert "nothing.gpkg" in res.stderr
    assert not Path(store).exists()


def _run(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "omw_sites", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def test_db_status_of_a_missing_or_unreachable_store_is_an_error(tmp_path):
    """Not "0 current sites": there is no inventory there (or it cannot be reached)."""
    missing = tmp_path / "none.gpkg"
    line = _one_error_line(_run("db", "status", "--store", str(missing)))
    assert "none.gpkg" in line
    assert not missing.exists()
    line = _one_error_line(_run("db", "status", "--store", "postgresql://omw:s3cret@127.0.0.1:1/x"))
    assert "127.0.0.1:1" in line and "s3cret" not in line


def test_run_and_the_db_commands_find_the_same_store(demo_raw, tmp_path):
    """Without --store, `run` writes the inventory the other commands read: OMW_STORE
    (OMW_DATABASE_URL before it; `run --out DIR` puts it in DIR, as other tests show)."""
    store = tmp_path / "inventory.gpkg"
    env = {"OMW_STORE": str(store), "OMW_DATABASE_URL": ""}
    res = _run("run", "--raw", str(demo_raw), "--profile", "logistics", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert store.exists() and not (tmp_path / "data").exists()  # not the built-in default
    res = _run("db", "status", "--json", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["sites"] == len(read_sites(store, read_geometry=False)) > 0
    # --store beats the environment …
    other = tmp_path / "other.gpkg"
    assert _run("db", "init", "--store", str(other), env=env, cwd=tmp_path).returncode == 0
    assert other.exists()
    # … and OMW_DATABASE_URL beats OMW_STORE (here a server that is not there)
    url = "postgresql://omw:s3cret@127.0.0.1:1/x"
    line = _one_error_line(_run("db", "status", env={**env, "OMW_DATABASE_URL": url}))
    assert "127.0.0.1:1" in line and "s3cret" not in line


def test_the_store_rule_in_order(tmp_path, monkeypatch):
    """--store, else OMW_DATABASE_URL, else OUT/omw_sites.gpkg for `run`/`db load --out
    OUT`, else OMW_STORE, else data/processed/omw_sites.gpkg."""
    from omw_sites.config import store_target

    monkeypatch.delenv("OMW_DATABASE_URL", raising=False)
    monkeypatch.delenv("OMW_STORE", raising=False)
    out = tmp_path / "out"
    assert store_target() == str(Path("data/processed/omw_sites.gpkg"))
    assert store_target(out_dir=out) == str(out / "omw_sites.gpkg")
    monkeypatch.setenv("OMW_STORE", str(tmp_path / "env.gpkg"))
    assert store_target() == str(tmp_path / "env.gpkg")
    assert store_target(out_dir=out) == str(out / "omw_sites.gpkg")
    monkeypatch.setenv("OMW_DATABASE_URL", "postgresql://h/db")
    assert store_target() == store_target(out_dir=out) == "postgresql://h/db"
    assert store_target("given.gpkg", out) == "given.gpkg"


HOLD = """
import sys, time
from omw_sites.store import open_backend
with open_backend(sys.argv[1]).transaction():
    print("holding", flush=True)
    time.sleep(30)
"""


def test_a_lock_held_too_long_fails_a_command_cleanly(target):
    """Another process holds the store's write lock longer than OMW_LOCK_TIMEOUT: the
    command says so in one line, exit 2, and changes nothing."""
    from omw_sites.store import open_inventory

    open_inventory(target).init()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, target], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        res = _run(
            "apikey", "add", "COI Marki", "--gmina", MARKI, "--store", target,
            env={"OMW_LOCK_TIMEOUT": "1"},
        )  # fmt: skip
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    line = _one_error_line(res)
    assert "lock" in line and "more than 1 s" in line, line
    assert open_inventory(target).api_keys().empty


def test_a_store_without_permission_fails_cleanly(tmp_path):
    """A store the user may not read, or not write: one line naming the store and the
    reason, exit 2, nothing changed. (Root may read anything: then only the write side
    is tried, on a file made immutable.)"""
    import os

    from conftest import need

    from omw_sites.store import open_inventory

    store = tmp_path / "inventory.gpkg"
    open_inventory(store).init()
    root = os.geteuid() == 0
    if not root:
        store.chmod(0)
        line = _one_error_line(_run("db", "status", "--store", str(store)))
        assert "permission denied" in line.lower() and str(store) in line, line
        store.chmod(0o444)
        tmp_path.chmod(0o555)  # no journal can be made beside it either
    else:
        made = subprocess.run(["chattr", "+i", str(store)], capture_output=True, check=False)
        need(made.returncode == 0, "a read-only store file as root needs chattr +i")
    try:
        line = _one_error_line(_run("apikey", "add", "x", "--gmina", "*", "--store", str(store)))
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(store)], check=True)
        else:
            tmp_path.chmod(0o755)
            store.chmod(0o600)
    assert "permission denied or read-only" in line and str(store) in line, line
    assert open_inventory(store).api_keys().empty


HOOKED_CLI = """
import sys, time
from pathlib import Path
from omw_sites.store.gpkg_backend import GeoPackageBackend
from omw_sites.store import update

# both loads meet once after reading the store and before writing to it
meet, me = Path(sys.argv[1]), sys.argv[2]
met = []

def rendezvous():
    if met:
        return
    met.append(True)
    (meet / me).touch()
    deadline = time.monotonic() + 300
    while len(list(meet.iterdir())) < 2:
        if time.monotonic() > deadline:
            raise SystemExit("the other load never came")
        time.sleep(0.05)

real_load, real_last_read = GeoPackageBackend.bulk_load, update._unchanged_layers

def bulk_load(self, *args, **kwargs):
    rendezvous()
    return real_load(self, *args, **kwargs)

def last_read(self, *args, **kwargs):
    result = real_last_read(self, *args, **kwargs)
    rendezvous()
    return result

GeoPackageBackend.bulk_load = bulk_load
update._unchanged_layers = last_read
from omw_sites.cli import app
app(sys.argv[3:], prog_name="omw-sites")
"""


@pytest.mark.slow
def test_two_gminy_loaded_at_once_into_an_empty_inventory(region, tmp_path):
    """Two `db load --gmina` of different gminy into an empty inventory at once, both
    having read the empty store before either writes: both gminy's sites end up in it
    (one load, one update), each reported as added once."""
    from omw_sites.store import open_inventory

    store = str(tmp_path / "inventory.gpkg")
    assert cli("db", "init", "--store", store).returncode == 0
    meet = tmp_path / "meet"
    meet.mkdir()
    gminy = (MARKI, "1408011")

    def load(code: str) -> list[str]:
        return [
            sys.executable, "-c", HOOKED_CLI, str(meet), code, "db", "load",
            str(region["raw"]), "--gmina", code, "--store", store,
            "--out", str(tmp_path / f"out-{code}"),
        ]  # fmt: skip

    procs = {
        code: subprocess.Popen(
            load(code), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for code in gminy
    }
    done = {code: p.communicate(timeout=600) for code, p in procs.items()}
    for code, p in procs.items():
        assert p.returncode == 0, done[code][1]
    inv = open_inventory(store)
    runs = inv.summary()["runs"]
    assert sorted(r["kind"] for r in runs) == ["load", "update"]
    added = {r["scope"]: r["added"] for r in runs}
    current = inv.read_sites(read_geometry=False)
    assert not current["site_id"].duplicated().any()
    per_gmina = current.groupby("teryt")["site_id"].count().to_dict()
    assert per_gmina == added and set(per_gmina) == set(gminy)
