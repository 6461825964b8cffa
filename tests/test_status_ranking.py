"""Status respected everywhere (issue 18, item 4): a sold or withdrawn site is in no
ranking. On the demo region's store, on both backends: the rank-1 site of a profile set
sold through the CLI has rank 0 "not on offer" in every profile and keeps its score, the
others close the gap; `top`, the profile map, the balance shortlist, the servicing plan
and the API's profile order leave it out, and a new run keeps it out. Withdrawn and back
to available ranks a site again exactly as before; the API's own writes re-rank its
served copy in place, the same as a reload."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_run import cli
from fastapi.testclient import TestClient

from omw_sites.layers import excluded_col, rank_col, score_col
from omw_sites.store import open_inventory, read_sites

PROFILE = "logistics"
NOT_ON_OFFER = "not on offer"


@pytest.fixture(params=["gpkg", "postgis"])
def store(request, demo_store, demo_raw, tmp_path) -> Iterator[str]:
    """A writable copy of the demo region's inventory on each backend."""
    if request.param == "gpkg":
        path = tmp_path / "inventory.gpkg"
        shutil.copyfile(demo_store, path)
        yield str(path)
        return
    from omw_sites.pipeline import run

    url = request.getfixturevalue("postgis_url")
    target = f"{url}?schema=s_{uuid.uuid4().hex[:10]}"
    run(demo_raw, tmp_path / "first", store=target)
    yield target
    open_inventory(target).backend.close()


def _sites(store: str) -> pd.DataFrame:
    return read_sites(store, read_geometry=False).set_index("site_id")


def _profiles(sites: pd.DataFrame) -> list[str]:
    return sorted(c.removeprefix("rank_") for c in sites.columns if c.startswith("rank_"))


def _first_two(sites: pd.DataFrame, profile: str) -> tuple[str, str]:
    """The rank-1 and rank-2 sites of ``profile`` (one each in the demo region)."""
    ranks = sites[rank_col(profile)]
    one, two = ranks.index[ranks == 1], ranks.index[ranks == 2]
    assert len(one) == 1 and len(two) == 1, "the demo region should have no tie at the top"
    return one[0], two[0]


def _shifted(before: pd.DataFrame, gone: str, profile: str) -> pd.Series:
    """Known answer: "min" ranks with one site taken out — those behind it move up one."""
    old = before[rank_col(profile)].astype(int)
    r0 = old[gone]
    new = old - ((old > r0) & (r0 > 0)).astype(int)
    new[gone] = 0
    return new


def _assert_not_ranked(sites: pd.DataFrame, sid: str, before: pd.DataFrame) -> None:
    for p in _profiles(sites):
        assert sites.loc[sid, rank_col(p)] == 0, p
        was = str(before.loc[sid, excluded_col(p)] or "")
        # a site the profile ranked says why it is not ranked now; a failed constraint stays
        assert sites.loc[sid, excluded_col(p)] == (NOT_ON_OFFER if was == "" else was), p
        # the score is kept: the land is worth what it was worth
        np.testing.assert_array_equal(sites.loc[sid, score_col(p)], before.loc[sid, score_col(p)])


def test_a_sold_site_leaves_every_ranking_and_a_new_run_keeps_it_out(store, demo_raw, tmp_path):
    before = _sites(store)
    first, second = _first_two(before, PROFILE)
    res = cli("site", "set-status", first, "sold", "--by", "test", "--store", store)
    assert res.returncode == 0, res.stderr

    after = _sites(store)
    assert after.loc[first, "status"] == "sold"
    _assert_not_ranked(after, first, before)
    assert after.loc[second, rank_col(PROFILE)] == 1
    for p in _profiles(after):  # every profile's ranks close the gap, nothing else moves
        expected = _shifted(before, first, p)
        pd.testing.assert_series_equal(
            after[rank_col(p)].astype(int), expected.loc[after.index], check_names=False
        )
        changed = after.index[after[rank_col(p)] != before.loc[after.index, rank_col(p)]]
        assert set(after.loc[changed, "scored_run"].str.split("@").str[1]) == {
            after.loc[first, "updated_at"]
        }

    # `top` lists the former rank 2 first and not the sold site
    res = cli("top", "--profile", PROFILE, "--n", "5", "--store", store)
    assert res.returncode == 0, res.stderr
    assert first not in res.stdout and second in res.stdout
    assert res.stdout.index(second) < min(
        res.stdout.index(s)
        for s in after.index[after[rank_col(PROFILE)].between(2, 5)]
        if s in res.stdout
    )

    _check_outputs(store, first, after)

    # a new run reads the status the store holds: the site stays out of every ranking
    from omw_sites.pipeline import run

    run(demo_raw, tmp_path / "again", store=store)
    again = _sites(store)
    _assert_not_ranked(again, first, before)
    for p in _profiles(again):
        pd.testing.assert_series_equal(
            again[rank_col(p)].astype(int),
            _shifted(before, first, p).loc[again.index],
            check_names=False,
        )


def _check_outputs(store: str, sold: str, sites: pd.DataFrame) -> None:
    """The outputs that read the store: none ranks the sold site."""
    from omw_sites.maps.map_data import load_map_data
    from omw_sites.maps.profile_map import render_map
    from omw_sites.reports.balance import balance_from_store
    from omw_sites.reports.servicing import plan_from_store

    data = load_map_data(store)
    ranked = data.sites.loc[data.sites[rank_col(PROFILE)] > 0, "site_id"]
    assert sold not in set(ranked)
    html = render_map(store, PROFILE)
    assert f'"nEligible": {int((sites[rank_col(PROFILE)] > 0).sum())}' in html

    report = balance_from_store(store, PROFILE, k=10, cap=2)
    assert sold not in set(report.plain["site_id"]) | set(report.balanced["site_id"])
    top10 = sites.index[sites[rank_col(PROFILE)].between(1, 10)]
    assert set(report.plain["site_id"]) == set(top10)

    plan = plan_from_store(store, PROFILE)
    assert sold not in set(plan.table["site_id"])
    stored = sites.loc[plan.table["site_id"], rank_col(PROFILE)].to_numpy()
    np.testing.assert_array_equal(plan.table["rank_before"].to_numpy(), stored)


def test_withdrawn_and_back_to_available_ranks_the_site_as_before(store):
    before = _sites(store)
    first, second = _first_two(before, PROFILE)
    res = cli("site", "set-status", first, "withdrawn", "--by", "test", "--store", store)
    assert res.returncode == 0, res.stderr
    out = _sites(store)
    _assert_not_ranked(out, first, before)
    assert out.loc[second, rank_col(PROFILE)] == 1
    res = cli("site", "set-status", first, "available", "--by", "test", "--store", store)
    assert res.returncode == 0, res.stderr
    back = _sites(store)
    for p in _profiles(back):
        pd.testing.assert_series_equal(back[rank_col(p)], before[rank_col(p)], check_names=False)
        pd.testing.assert_series_equal(
            back[excluded_col(p)].fillna(""), before[excluded_col(p)].fillna(""), check_names=False
        )
    # reserved is still on offer: ranked, shown as reserved
    res = cli("site", "set-status", first, "reserved", "--by", "test", "--store", store)
    assert res.returncode == 0, res.stderr
    reserved = _sites(store)
    assert (
        reserved.loc[first, rank_col(PROFILE)] == 1 and reserved.loc[first, "status"] == "reserved"
    )


def _order(client: TestClient, n: int = 8) -> list[tuple[str, int]]:
    res = client.get(f"/collections/sites/items?profile={PROFILE}&limit={n}&f=json")
    assert res.status_code == 200, res.text
    return [(f["id"], f["properties"][rank_col(PROFILE)]) for f in res.json()["features"]]


def _item(client: TestClient, sid: str):
    res = client.get(f"/collections/sites/items/{sid}?f=json")
    assert res.status_code == 200, res.text
    return res


def test_the_api_write_reranks_its_served_copy_as_a_reload_does(store, monkeypatch):
    from omw_sites.api import catalog
    from omw_sites.api.server import create_app

    before = _sites(store)
    first, second = _first_two(before, PROFILE)
    key = open_inventory(store).add_api_key("BOI OMW", ["*"])
    auth = {"Authorization": f"Bearer {key}"}
    loads = []
    real_load = catalog.load_snapshot
    monkeypatch.setattr(catalog, "load_snapshot", lambda *a: loads.append(1) or real_load(*a))
    with TestClient(create_app(store)) as client:
        assert _order(client)[:2] == [(first, 1), (second, 1 + 1)]
        tag = _item(client, second).headers["etag"]
        res = client.patch(
            f"/collections/sites/items/{first}", json={"status": "sold"}, headers=auth
        )
        assert res.status_code == 200, res.text
        props = res.json()["properties"]
        assert props[rank_col(PROFILE)] == 0 and props[excluded_col(PROFILE)] == NOT_ON_OFFER
        served = _order(client)
        assert served[0] == (second, 1) and first not in dict(served)
        moved = _item(client, second)
        assert moved.json()["properties"][rank_col(PROFILE)] == 1
        assert moved.headers["etag"] != tag  # its rank changed: a cached copy is stale
        # sorted by rank among the ranked ones: the same order
        res = client.get(
            f"/collections/sites/items?filter={rank_col(PROFILE)}>0&sortby={rank_col(PROFILE)}"
            "&limit=8&f=json"
        )
        assert [f["id"] for f in res.json()["features"]] == [s for s, _ in served]
        # withdrawn and back through the API: ranked again as before
        for status in ("withdrawn", "available"):
            res = client.patch(
                f"/collections/sites/items/{second}", json={"status": status}, headers=auth
            )
            assert res.status_code == 200, res.text
        assert _order(client)[0] == (second, 1)
        in_place = _order(client, 50)
        etags = {s: _item(client, s).headers["etag"] for s, _ in in_place[:5]}
        assert len(loads) == 1  # the writes re-ranked the served copy, no reload
    # a fresh load of the store serves the same order and versions
    with TestClient(create_app(store)) as client:
        assert _order(client, 50) == in_place
        assert {s: _item(client, s).headers["etag"] for s, _ in in_place[:5]} == etags
    stored = _sites(store)
    assert stored.loc[first, rank_col(PROFILE)] == 0
    assert stored.loc[second, rank_col(PROFILE)] == 1


def test_deleting_a_site_closes_the_gap(store):
    from omw_sites.api.server import create_app

    before = _sites(store)
    first, second = _first_two(before, PROFILE)
    key = open_inventory(store).add_api_key("BOI OMW", ["*"])
    with TestClient(create_app(store)) as client:
        res = client.delete(
            f"/collections/sites/items/{first}", headers={"Authorization": f"Bearer {key}"}
        )
        assert res.status_code == 204, res.text
        assert _order(client)[0] == (second, 1)
    after = _sites(store)
    assert first not in after.index
    for p in _profiles(after):
        pd.testing.assert_series_equal(
            after[rank_col(p)].astype(int),
            _shifted(before, first, p).drop(first).loc[after.index],
            check_names=False,
        )


def test_scoring_ranks_only_the_sites_on_offer(demo_store):
    """The engine on its own: statuses given, the one sort skips sold and withdrawn."""
    from omw_sites.scoring import load_profiles, score_profile
    from omw_sites.scoring.engine import offer_ranks, on_offer

    sites = read_sites(Path(demo_store), read_geometry=False)
    prof = load_profiles([PROFILE])[0]
    base = score_profile(sites.drop(columns="status"), prof)
    order = base[rank_col(PROFILE)].to_numpy()
    top = np.flatnonzero(order == 1)[0]
    status = np.full(len(sites), "available", dtype=object)
    status[top] = "sold"
    res = score_profile(sites, prof, status=status)
    assert res[rank_col(PROFILE)].iloc[top] == 0
    assert res[excluded_col(PROFILE)].iloc[top] == NOT_ON_OFFER
    assert res[score_col(PROFILE)].iloc[top] == base[score_col(PROFILE)].iloc[top]
    expected = np.where(order > 1, order - 1, order)
    expected[top] = 0
    np.testing.assert_array_equal(res[rank_col(PROFILE)].to_numpy(), expected)
    # the stored results re-ranked give the same answer without the profile
    rank, reason = offer_ranks(
        base[score_col(PROFILE)].to_numpy(),
        base[excluded_col(PROFILE)].to_numpy(),
        on_offer(status, len(status)),
    )
    np.testing.assert_array_equal(rank, expected)
    np.testing.assert_array_equal(reason, res[excluded_col(PROFILE)].to_numpy())


def test_a_run_prepared_before_a_status_edit_stores_the_ranks_of_the_status_at_commit(store):
    """An update scored with the statuses it read, committed after a site was sold: the
    ranks stored are those of the statuses the store holds at the commit."""
    from omw_sites.store import read_run_info

    inv = open_inventory(store)
    scored = read_sites(store)  # what a run scored, with the sold site still on offer
    before = scored.set_index("site_id")
    first, second = _first_two(before, PROFILE)
    inv.set_status(first, "sold", by="test")
    info = {**read_run_info(store), "run_id": "late0run0001"}
    inv.apply(scored, run_info=info, source="test")
    after = _sites(store)
    _assert_not_ranked(after, first, before)
    for p in _profiles(after):
        pd.testing.assert_series_equal(
            after[rank_col(p)].astype(int),
            _shifted(before, first, p).loc[after.index],
            check_names=False,
        )
