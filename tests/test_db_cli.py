"""The inventory through the CLI, as a gmina uses it: load the region, re-ingest a newer
dataset of one gmina, edit offers and statuses, read history and the change feed, export."""

from __future__ import annotations

import json
import shutil
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
    res = cli("db", "ingest", str(region["raw"]), "--store", store, "--out", str(region["work"]))
    assert res.returncode == 0, res.stderr
    assert "load" in res.stdout
    before = read_sites(store, read_geometry=False)
    per_gmina = before.groupby("teryt")["site_id"].apply(set)
    assert MARKI in per_gmina.index

    res = cli(
        "db", "ingest", str(region["newer"]), "--gmina", MARKI, "--store", store,
        "--out", str(region["work"]),
    )  # fmt: skip
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
    res = cli("db", "ingest", str(region["raw"]), "--gmina", "14", "--store", store)
    assert res.returncode == 2 and "7 digits" in res.stderr


def test_db_commands_on_a_missing_store_fail_cleanly(tmp_path):
    store = str(tmp_path / "nothing.gpkg")
    for args in (("db", "history", "S1"), ("site", "set-status", "S1", "sold", "--by", "x")):
        res = cli(*args, "--store", store)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr
        assert "nothing.gpkg" in res.stderr
    assert not Path(store).exists()
