"""Single-record writes on both backends: versions and ``if_version``, the lifecycle check
and the write as one conditional statement, edits racing other writers (real processes),
records replaced or ended under an edit, and ends made by people."""

from __future__ import annotations

import contextlib
import pickle
import random
import re
from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import geopandas as gpd
import pandas as pd
import pytest
from cli_run import cli
from records_worker import Writers
from sample_store import sample_data

from omw_sites.layers import SITES
from omw_sites.store import Inventory, InventoryError, open_inventory
from omw_sites.store.lifecycle import current_record, user_ended_ids

N_SITES = 80


@pytest.fixture
def loaded(target):
    sites, reference, info = sample_data(N_SITES, seed=11)
    inv = open_inventory(target)
    inv.apply(sites, reference, info)
    return inv, sites, reference, info


def other_inventory(target: str) -> Inventory:
    """The same store through its own connections (another writer)."""
    if not target.startswith("postgresql"):
        return open_inventory(target)
    from omw_sites.store.postgis import PostGISBackend

    parts = urlsplit(target)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", "public")
    return Inventory(PostGISBackend(urlunsplit(parts._replace(query=urlencode(query))), schema))


@contextlib.contextmanager
def before_first_write(inv: Inventory, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` (another writer) after ``inv`` has read and checked a record, just
    before its write transaction begins: the interleaving a race produces."""
    real = inv.backend.transaction
    pending = [action]

    @contextlib.contextmanager
    def transaction():
        while pending:
            pending.pop()()
        with real() as tx:
            yield tx

    inv.backend.transaction = transaction  # type: ignore[method-assign]
    try:
        yield
    finally:
        del inv.backend.transaction


def user_rows(inv: Inventory, site_id: str, field: str = "status") -> pd.DataFrame:
    h = inv.history(site_id)
    return h[(h["field"] == field) & h["source"].str.startswith("user:")]


# ----------------------------------------------------------------- versions, if_version
def test_every_write_moves_the_version_and_if_version_is_checked_in_the_write(loaded):
    inv, sites, *_ = loaded
    sid = sites["site_id"].iloc[0]
    v0 = inv.record_version(current_record(inv, sid))
    rec = inv.edit(sid, {"price_pln_m2": 120}, by="anna", if_version=v0)
    v1 = inv.record_version(rec)
    assert v1 != v0 and v1 == inv.record_version(current_record(inv, sid))
    # a second writer with the same (now stale) version is refused and writes nothing
    with pytest.raises(InventoryError) as err:
        inv.edit(sid, {"price_pln_m2": 99}, by="ewa", if_version=v0)
    assert err.value.status == 412 and v1 in str(err.value)
    assert current_record(inv, sid)["price_pln_m2"] == 120.0
    assert len(user_rows(inv, sid, "price_pln_m2")) == 1
    # the same instant twice still gives two versions (updated_at moves on)
    now = current_record(inv, sid)["updated_at"]
    v2 = inv.record_version(inv.edit(sid, {"notes": "a"}, by="anna", now=now))
    v3 = inv.record_version(inv.edit(sid, {"notes": "b"}, by="anna", now=now))
    assert len({v1, v2, v3}) == 3
    # "*" is any current record; a no-op keeps the version
    rec = inv.edit(sid, {"notes": "b"}, by="anna", if_version="*")
    assert inv.record_version(rec) == v3


def test_version_changes_when_a_run_rescores_the_site(loaded):
    inv, sites, reference, info = loaded
    sid = sites["site_id"].iloc[3]
    before = inv.record_version(current_record(inv, sid))
    new = sites.copy()
    score = next(c for c in new.columns if c.startswith("score_"))
    new[score] = new[score].fillna(0) * 0.5  # every site rescored, nothing measured changed
    inv.apply(new, None, {**info, "run_id": "rescore"})
    rec = current_record(inv, sid)
    assert rec["scored_run"] == "rescore"
    assert inv.record_version(rec) != before


def test_if_version_is_checked_inside_the_write_not_before(loaded, target):
    inv, sites, *_ = loaded
    sid = sites["site_id"].iloc[1]
    v0 = inv.record_version(current_record(inv, sid))
    other = other_inventory(target)
    # the other writer lands between this edit's read and its write
    with (
        before_first_write(inv, lambda: other.edit(sid, {"notes": "first"}, by="ewa")),
        pytest.raises(InventoryError) as err,
    ):
        inv.edit(sid, {"notes": "second"}, by="anna", if_version=v0)
    assert err.value.status == 412
    assert current_record(inv, sid)["notes"] == "first"
    assert user_rows(inv, sid, "notes")["new_value"].tolist() == ["first"]
    other.backend.close()


def test_cli_shows_the_version_and_takes_if_version(loaded, target):
    inv, sites, *_ = loaded
    sid = sites["site_id"].iloc[2]
    shown = cli("site", "show", sid, "--store", target)
    assert shown.returncode == 0, shown.stderr
    v0 = inv.record_version(current_record(inv, sid))
    assert f"version={v0}" in shown.stdout and "status=available" in shown.stdout
    inv.edit(sid, {"notes": "changed meanwhile"}, by="ewa")
    stale = cli(
        "site", "set-status", sid, "reserved", "--by", "anna", "--if-version", v0, "--store", target
    )
    assert stale.returncode == 2
    lines = [ln for ln in stale.stderr.strip().splitlines() if ln.strip()]
    # no HTTP status in a CLI message (a version is hex: it may hold the digits 412)
    assert len(lines) == 1 and not re.search(r"\b412\b", lines[0]), lines
    assert "read it again" in lines[0], lines
    assert current_record(inv, sid)["status"] == "available"
    v1 = inv.record_version(current_record(inv, sid))
    ok = cli(
        "site", "edit", sid, "--by", "anna", "--price", "150", "--if-version", v1, "--store", target
    )
    assert ok.returncode == 0, ok.stderr
    v2 = inv.record_version(current_record(inv, sid))
    assert f"version={v2}" in ok.stdout and v2 != v1


# ----------------------------------------------------------------- lifecycle races
def test_sold_landing_between_read_and_write_makes_withdrawn_refused(loaded, target):
    inv, sites, *_ = loaded
    sid = sites["site_id"].iloc[4]
    other = other_inventory(target)
    with (
        before_first_write(inv, lambda: other.set_status(sid, "sold", by="ewa")),
        pytest.raises(InventoryError) as err,
    ):
        inv.set_status(sid, "withdrawn", by="anna")
    assert err.value.status == 409 and "sold is final" in str(err.value)
    assert current_record(inv, sid)["status"] == "sold"
    assert user_rows(inv, sid)[["old_value", "new_value"]].values.tolist() == [
        ["available", "sold"]
    ]
    other.backend.close()


@pytest.mark.parametrize("via", ["inventory", "cli"])
def test_sold_and_withdrawn_at_once_from_two_processes_exactly_one_wins(loaded, target, via):
    inv, sites, *_ = loaded
    rounds = 24 if via == "inventory" else 8
    ids = sites["site_id"].iloc[10 : 10 + rounds].tolist()
    outcomes = []
    with Writers(target) as writers:
        for sid in ids:
            if via == "cli":
                tasks = [
                    ("cli", ["site", "set-status", sid, s, "--by", who, "--store", target])
                    for s, who in (("sold", "anna"), ("withdrawn", "ewa"))
                ]
            else:
                tasks = [("status", sid, "sold", "anna"), ("status", sid, "withdrawn", "ewa")]
            outcomes.append((sid, writers.race(*tasks)))
    for sid, (sold, withdrawn) in outcomes:
        assert "error" not in (sold[0], withdrawn[0]), (sold, withdrawn)
        if via == "cli":
            won = [r[1] == 0 for r in (sold, withdrawn)]
            told = [r[2] for r in (sold, withdrawn) if r[1] != 0]
            assert all(r[1] in (0, 2) for r in (sold, withdrawn)), (sold, withdrawn)
        else:
            won = [r[0] == "ok" for r in (sold, withdrawn)]
            told = [r[2] for r in (sold, withdrawn) if r[0] == "refused"]
            assert all(r[1] == 409 for r in (sold, withdrawn) if r[0] == "refused")
        assert sum(won) == 1, (sid, sold, withdrawn)  # exactly one wins, the other is told
        winner = "sold" if won[0] else "withdrawn"
        assert told and "cannot move from" in told[0], told
        rec = current_record(inv, sid)
        assert rec["status"] == winner
        rows = user_rows(inv, sid)
        # the history holds exactly the accepted write
        assert rows[["old_value", "new_value"]].values.tolist() == [["available", winner]]


# ----------------------------------------------------------------- replaced or ended
def _replace_record(other: Inventory, sid: str, status: str) -> None:
    """End the current record of ``sid`` and add a new current one with the same ID."""
    from omw_sites.store.base import utc_now

    old = current_record(other, sid)
    row = other.backend.read_layer(SITES, where=f"fid = {int(old.name)}")
    now = utc_now()
    row = row.assign(created_at=now, updated_at=now, status=status)
    with other.backend.transaction() as tx:
        ended = {"ended_at": now, "ended_reason": "replaced in test", "updated_at": now}
        assert tx.conditional_update(SITES, int(old.name), ended, {"ended_at": None}) == 1
        tx.insert(SITES, gpd.GeoDataFrame(row, geometry="geometry", crs=row.crs))


def test_edit_is_carried_to_a_same_id_replacement_and_rechecked(loaded, target):
    inv, sites, *_ = loaded
    sid, sid2 = sites["site_id"].iloc[5], sites["site_id"].iloc[6]
    other = other_inventory(target)
    old_fid = int(current_record(inv, sid).name)
    with before_first_write(inv, lambda: _replace_record(other, sid, "reserved")):
        rec = inv.set_status(sid, "sold", by="anna")
    assert int(rec.name) != old_fid and rec["status"] == "sold"
    cur = current_record(inv, sid)
    assert int(cur.name) == int(rec.name) and cur["status"] == "sold"
    ended = inv.backend.read_layer(SITES, where=f"fid = {old_fid}")
    assert ended["status"].iloc[0] == "available"  # the ended record is left as it was
    assert user_rows(inv, sid)[["old_value", "new_value"]].values.tolist() == [["reserved", "sold"]]
    # the lifecycle is checked again on the replacement: sold there is final
    with (
        before_first_write(inv, lambda: _replace_record(other, sid2, "sold")),
        pytest.raises(InventoryError) as err,
    ):
        inv.set_status(sid2, "withdrawn", by="anna")
    assert err.value.status == 409 and "sold is final" in str(err.value)
    assert user_rows(inv, sid2).empty
    other.backend.close()


def _ending(sites: gpd.GeoDataFrame, gone: list[str], tag: str) -> gpd.GeoDataFrame:
    """``sites`` without ``gone``, each replaced by a successor (another ID on the same
    land, ``derived_from`` the one it replaces)."""
    keep = sites[~sites["site_id"].isin(gone)]
    successors = sites[sites["site_id"].isin(gone)].copy()
    successors["derived_from"] = successors["site_id"]
    successors["site_id"] = [f"N{tag}{i:03d}" for i in range(len(successors))]
    successors["dist_sewer_m"] = successors["dist_sewer_m"] + 1
    return gpd.GeoDataFrame(pd.concat([keep, successors]), crs=sites.crs)


def test_edit_on_a_site_an_ingest_ended_meanwhile_is_refused_naming_successors(loaded, target):
    inv, sites, reference, info = loaded
    sid = sites["site_id"].iloc[7]
    other = other_inventory(target)
    new = _ending(sites, [sid], "x")
    with (
        before_first_write(inv, lambda: other.apply(new, None, {**info, "run_id": "r2"})),
        pytest.raises(InventoryError) as err,
    ):
        inv.set_status(sid, "reserved", by="anna")
    assert err.value.status == 409
    message = str(err.value)
    assert "Nx000" in message and "has ended" in message and "\n" not in message
    assert user_rows(inv, sid).empty  # nothing written, on the ended record or elsewhere
    assert inv.backend.query(f"SELECT status FROM {SITES} WHERE site_id = ?", (sid,))[
        "status"
    ].tolist() == ["available"]
    other.backend.close()


def test_edits_racing_an_ingest_that_ends_the_sites_are_told_the_truth(loaded, target):
    """Real processes: an ingest ends three sites (each replaced by a successor) while
    another process sets their status, at random moments around the ingest's commit.
    Every edit reported done is in the history; every refused one is not, and was told
    the successor."""
    inv, sites, reference, info = loaded
    rng = random.Random(5)
    frame = sites
    rounds = 6
    results = []
    with Writers(target) as writers:
        for r in range(rounds):
            current = frame["site_id"][~frame["site_id"].str.startswith("N")].tolist()
            gone = current[r * 3 : r * 3 + 3]
            frame = _ending(frame, gone, f"{r}_")
            job = pickle.dumps((frame, None, {**info, "run_id": f"race{r}"}))
            edits = [(rng.uniform(0, 0.3), ("status", sid, "reserved", "anna")) for sid in gone]
            applied, edited = writers.race(("apply", job, None), ("many", edits))
            assert applied[0] == "ok", applied
            for sid, result in zip(gone, edited[1], strict=True):
                successor = frame.loc[frame["derived_from"] == sid, "site_id"].iloc[0]
                results.append((sid, successor, result))
    outcomes = {"ok": 0, "refused": 0}
    for sid, successor, result in results:
        assert result[0] in ("ok", "refused"), result
        outcomes[result[0]] += 1
        rows = user_rows(inv, sid)
        if result[0] == "ok":
            assert rows["new_value"].tolist() == ["reserved"], (sid, result)
        else:
            assert result[1] == 409 and successor in result[2], result
            assert rows.empty, (sid, result)
        # the site itself has ended either way, and nothing was written to it after its
        # end (the end is its last write); its successor is current
        ended = inv.backend.query(
            f"SELECT ended_at, updated_at FROM {SITES} WHERE site_id = ?", (sid,)
        )
        assert len(ended) == 1 and ended["ended_at"].notna().all(), (sid, ended)
        assert ended["updated_at"].iloc[0] == ended["ended_at"].iloc[0], (sid, result, ended)
        assert current_record(inv, successor)["site_id"] == successor
    assert sum(outcomes.values()) == 3 * rounds


# ----------------------------------------------------------------- ends by people
def test_end_site_keeps_the_record_and_a_later_update_does_not_end_it_again(loaded):
    inv, sites, reference, info = loaded
    sid = sites["site_id"].iloc[8]
    v0 = inv.record_version(current_record(inv, sid))
    with pytest.raises(InventoryError) as err:
        inv.end_site(sid, by="anna", if_version="0" * 24)
    assert err.value.status == 412
    rec = inv.end_site(sid, by="anna", reason="withdrawn via API by anna", if_version=v0)
    assert rec["ended_reason"] == "withdrawn via API by anna"
    with pytest.raises(InventoryError) as err:
        current_record(inv, sid)
    assert err.value.status == 409 and "withdrawn via API by anna" in str(err.value)
    h = inv.history(sid)
    ended = h[h["kind"] == "ended"]
    assert ended[["source", "new_value"]].values.tolist() == [
        ["user:anna", "withdrawn via API by anna"]
    ]
    assert user_ended_ids(inv, [sid, sites["site_id"].iloc[9]]) == {sid}
    # an update without the site does not end it a second time
    without = sites[sites["site_id"] != sid]
    report = inv.apply(without, None, {**info, "run_id": "r2"})
    assert report.ended == 0
    rows = inv.backend.query(f"SELECT ended_at FROM {SITES} WHERE site_id = ?", (sid,))
    assert len(rows) == 1 and rows["ended_at"].iloc[0] == rec["ended_at"]
    assert len(inv.history(sid).query("kind == 'ended'")) == 1


def test_a_later_update_does_not_bring_back_a_site_a_person_ended(loaded):
    inv, sites, reference, info = loaded
    sid = sites["site_id"].iloc[12]
    inv.end_site(sid, by="anna", reason="withdrawn via API by anna")
    report = inv.apply(sites, None, {**info, "run_id": "r2"})  # the run still measures it
    rows = inv.backend.query(f"SELECT ended_at FROM {SITES} WHERE site_id = ?", (sid,))
    assert rows["ended_at"].notna().all(), "the site came back as a new current record"
    assert report.added == 0 and report.kept_ended == 1
