"""The regional inventory on both backends: incremental updates, history, lifecycle,
provenance, de-duplication, change feed, exports and all-or-nothing writes."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sample_store import sample_data

from omw_sites.layers import RECORD_COLUMNS, SITE_COLUMNS, rank_col, score_col
from omw_sites.store import InventoryError, open_inventory, read_run_info, read_sites
from omw_sites.store.base import SITE_RECORD_COLUMNS, StoreError
from omw_sites.store.export import export_sites
from omw_sites.store.inventory import Inventory
from omw_sites.store.update import for_staging

#: measured columns a run's scores travel with when its sites are staged
LEAN = ("site_id", "teryt", "area_ha")


@pytest.fixture(params=["gpkg", "postgis", "postgis_staged"])
def target(request, tmp_path, monkeypatch):
    """A fresh, empty inventory: a GeoPackage, a PostGIS schema, and a PostGIS schema
    that is given every run's sites the way a partitioned run gives them — measured
    columns and shapes staged beside the store in two parts, scores as a frame without
    shapes (:func:`_staging`): every test of this file runs through both paths."""
    if request.param == "gpkg":
        yield str(tmp_path / "inventory.gpkg")
        return
    import uuid

    from omw_sites.store import open_backend

    url = request.getfixturevalue("postgis_url")
    target = f"{url}?schema=t_{uuid.uuid4().hex[:10]}"
    if request.param == "postgis_staged":
        monkeypatch.setattr(Inventory, "apply", _staging(Inventory.apply))
    yield target
    open_backend(target).close()


def _staging(apply):
    import uuid

    def staged_apply(inv, sites, *args, **kwargs):
        measured = for_staging(sites)
        scores = [c for c in sites.columns if c not in SITE_COLUMNS and c != "geometry"]
        stage = f"stg_{uuid.uuid4().hex[:10]}"
        half = len(measured) // 2
        parts = {"a": measured.iloc[:half], "b": measured.iloc[half:]}
        backend = inv.backend
        try:
            for key, part in parts.items():
                cols = [c for c in part.columns if c not in scores or c in SITE_RECORD_COLUMNS]
                backend.stage_sites(stage, key, part[cols])
            staged = backend.staged_sites(stage, list(parts))
            lean = pd.DataFrame(measured[[*LEAN, "content_hash", *scores]])
            return apply(inv, lean, *args, staged=staged, **kwargs)
        finally:
            backend.drop_stage(stage)

    return staged_apply


@pytest.fixture
def loaded(target):
    sites, reference, info = sample_data(120, seed=3)
    inv = open_inventory(target)
    report = inv.apply(sites, reference, info, now="2026-11-01T10:00:00.000000Z")
    assert report.kind == "load" and report.added == 120
    return inv, sites, reference, info


def _info(run_id: str, base: dict) -> dict:
    return {**base, "run_id": run_id}


def _snapshot(inv) -> dict[str, pd.DataFrame]:
    """Everything a reader can see, in a comparable form."""
    out = {}
    sites = inv.read_sites(include_ended=True)
    sites = pd.DataFrame(sites.assign(wkt=shapely.to_wkt(sites.geometry.to_numpy(), 3)))
    out["sites"] = sites.drop(columns="geometry").sort_values(["site_id", "created_at"])
    for table in ("site_history", "runs", "provenance", "run_info"):
        frame = pd.DataFrame(inv.backend.read_layer(table, read_geometry=False))
        out[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return {k: v.reset_index(drop=True) for k, v in out.items()}


def test_record_columns_documented_once():
    assert set(SITE_RECORD_COLUMNS) == set(RECORD_COLUMNS)


def test_first_load_then_identical_update_changes_nothing(loaded):
    inv, sites, reference, info = loaded
    stored = inv.read_sites()
    assert len(stored) == 120
    assert (stored["status"] == "available").all()
    assert stored["created_at"].eq("2026-11-01T10:00:00.000000Z").all()
    before = _snapshot(inv)
    report = inv.apply(sites, reference, _info("r2", info), now="2026-11-02T10:00:00.000000Z")
    assert (report.added, report.changed, report.ended, report.unchanged) == (0, 0, 0, 120)
    after = _snapshot(inv)
    pd.testing.assert_frame_equal(before["sites"], after["sites"])
    assert after["site_history"].empty
    assert list(after["runs"]["run_id"].sort_values()) == ["r2", "sample"]


def test_changed_fields_are_history_rows_and_other_sites_untouched(loaded):
    inv, sites, reference, info = loaded
    new = sites.copy()
    ids = new["site_id"].iloc[[4, 9, 30]].tolist()
    new.loc[new.index[[4, 9]], "dist_sewer_m"] = [12.5, 99.0]
    new.loc[new.index[30], "zoning_symbol"] = "7U"
    old = sites.set_index("site_id")
    report = inv.apply(new, None, _info("r2", info), now="2026-11-05T08:00:00.000000Z")
    assert (report.added, report.changed, report.ended) == (0, 3, 0)
    assert report.fields_changed == {"dist_sewer_m": 2, "zoning_symbol": 1}
    h = inv.history(ids[0])
    assert list(h["kind"]) == ["created", "changed"]
    row = h.iloc[1]
    assert row["field"] == "dist_sewer_m"
    assert float(row["old_value"]) == pytest.approx(old.loc[ids[0], "dist_sewer_m"])
    assert float(row["new_value"]) == 12.5
    assert row["source"] == "run:r2" and row["changed_at"] == "2026-11-05T08:00:00.000000Z"
    z = inv.history(ids[2])
    assert (z.iloc[-1]["field"], z.iloc[-1]["new_value"]) == ("zoning_symbol", "7U")
    stored = inv.read_sites().set_index("site_id")
    assert stored.loc[ids[0], "dist_sewer_m"] == 12.5
    untouched = stored.drop(index=ids)
    assert (untouched["updated_at"] == "2026-11-01T10:00:00.000000Z").all()
    assert (stored.loc[ids, "measured_run"] == "r2").all()


def test_mixed_changes_write_each_changed_field_and_nothing_else(loaded, target):
    """Changed sites are written in groups by which fields changed: every group's new
    values land, unchanged fields and sites stay as they were, and GDAL's feature counts
    follow the inserts."""
    inv, sites, reference, info = loaded
    before = inv.read_sites().set_index("site_id")
    new = sites.copy()
    idx = new.index
    new.loc[idx[[1, 2]], "dist_sewer_m"] = [1.5, 2.5]  # one field
    new.loc[idx[3], "zoning_symbol"] = "3U"  # another field
    new.loc[idx[4], ["dist_sewer_m", "zoning_symbol"]] = [4.5, "4U"]  # both
    moved = shapely.affinity.translate(new.geometry.iloc[5], 7.0, 0.0)
    new.loc[idx[5], "geometry"] = moved  # the shape only
    new.loc[idx[6], "dist_water_m"] = np.nan  # a value becomes unknown
    logistics = score_col("logistics")
    new.loc[idx[[1, 8]], logistics] = [0.111, 0.888]  # rescored: a changed site, and not
    report = inv.apply(new, reference, _info("r2", info), now="2026-11-05T08:00:00.000000Z")
    assert report.changed == 6
    assert report.fields_changed == {
        "dist_sewer_m": 3,
        "zoning_symbol": 2,
        "geometry": 1,
        "dist_water_m": 1,
    }
    after = inv.read_sites().set_index("site_id")
    ids = new["site_id"]
    assert after.loc[ids.iloc[[1, 2, 4]], "dist_sewer_m"].tolist() == [1.5, 2.5, 4.5]
    assert after.loc[ids.iloc[[3, 4]], "zoning_symbol"].tolist() == ["3U", "4U"]
    assert np.isnan(after.loc[ids.iloc[6], "dist_water_m"])
    assert after.loc[ids.iloc[[1, 8]], logistics].tolist() == [0.111, 0.888]
    assert report.rescored == 2
    assert shapely.equals_exact(
        after.loc[ids.iloc[5], "geometry"].geoms[0], moved, tolerance=1e-6
    ) or shapely.equals_exact(after.loc[ids.iloc[5], "geometry"], moved, tolerance=1e-6)
    # a site whose one field changed keeps every other field as it was
    skip = ("dist_sewer_m", "updated_at", "measured_run", "content_hash", "geometry")
    skip += (logistics, "scores_hash", "scored_run")
    keep = [c for c in before.columns if c not in skip]
    pd.testing.assert_series_equal(
        before.loc[ids.iloc[1], keep], after.loc[ids.iloc[1], keep], check_names=False
    )
    untouched = ids.iloc[9:]
    pd.testing.assert_frame_equal(
        pd.DataFrame(before.loc[untouched].drop(columns="geometry")),
        pd.DataFrame(after.loc[untouched].drop(columns="geometry")),
    )
    # the hashes now match the stored content: the same update again changes nothing
    again = inv.apply(new, reference, _info("r3", info))
    assert (again.changed, again.rescored) == (0, 0)
    if str(target).endswith(".gpkg"):
        import pyogrio

        counts = {
            table: pyogrio.read_info(target, layer=table)["features"]
            for table in ("sites", "site_history", "runs")
        }
        truth = {table: len(inv.backend.read_layer(table, read_geometry=False)) for table in counts}
        assert counts == truth


def test_scope_limits_adds_and_ends_to_the_given_gminy(loaded):
    inv, sites, reference, info = loaded
    in_a = sites.index[sites["teryt"] == "1418043"]
    in_b = sites.index[sites["teryt"] == "1421062"]
    gone_a, gone_b = sites.loc[in_a[0], "site_id"], sites.loc[in_b[0], "site_id"]
    new = sites.drop(index=[in_a[0], in_b[0]])
    report = inv.apply(new, None, _info("r2", info), scope=["1418043"])
    assert (report.ended, report.added, report.changed) == (1, 0, 0)
    current = set(inv.read_sites()["site_id"])
    assert gone_a not in current and gone_b in current
    ended = inv.read_sites(include_ended=True, where=f"site_id = '{gone_a}'")
    assert ended["ended_at"].notna().all()
    assert "1418043" in ended["ended_reason"].iloc[0]
    assert inv.history(gone_a)["kind"].tolist() == ["created", "ended"]


def test_split_creates_new_sites_that_inherit_offer_and_list_their_parent(loaded):
    inv, sites, reference, info = loaded
    parent = sites.iloc[5]
    inv.edit(parent["site_id"], {"status": "reserved", "price_pln_m2": 310.0}, by="gmina")
    x0, y0, x1, y1 = parent.geometry.bounds
    xm = (x0 + x1) / 2
    halves = [shapely.box(x0, y0, xm, y1), shapely.box(xm, y0, x1, y1)]
    children = gpd.GeoDataFrame([parent, parent], crs=sites.crs).reset_index(drop=True)
    children = children.set_geometry(gpd.GeoSeries(halves, crs=sites.crs))
    children["site_id"] = ["Schild00001", "Schild00002"]
    children["parcel_ids"] = ["146501_1.0001.900/1", "146501_1.0001.900/2"]
    children["derived_from"] = parent["site_id"]
    new = pd.concat([sites.drop(index=sites.index[5]), children], ignore_index=True)
    new = gpd.GeoDataFrame(new, geometry="geometry", crs=sites.crs)
    report = inv.apply(new, None, _info("r2", info))
    assert (report.added, report.ended) == (2, 1)
    stored = inv.read_sites().set_index("site_id")
    for child in ("Schild00001", "Schild00002"):
        assert stored.loc[child, "derived_from"] == parent["site_id"]
        assert stored.loc[child, "status"] == "reserved"
        assert stored.loc[child, "price_pln_m2"] == 310.0
        assert inv.history(child).iloc[0]["new_value"] == f"derived from {parent['site_id']}"
    assert parent["site_id"] not in stored.index


def test_a_run_fills_the_offer_of_existing_sites_but_never_overwrites_it(loaded):
    """A nomination list given to a later run carries its price and contact into sites
    the store already holds where they have none; a price a person set stays, also when
    the same (old) list comes again."""
    inv, sites, reference, info = loaded
    a, b = sites["site_id"].iloc[7], sites["site_id"].iloc[8]
    inv.edit(b, {"price_pln_m2": 410.0}, by="gmina")
    offered = sites.copy()
    offered["price_pln_m2"] = np.nan
    offered["contact"] = None
    rows = offered["site_id"].isin([a, b]).to_numpy()
    offered.loc[rows, "price_pln_m2"] = 250.0
    offered.loc[rows, "contact"] = "oferty@gmina.pl"
    inv.apply(offered, None, _info("r2", info))
    stored = inv.read_sites().set_index("site_id")
    assert stored.loc[a, "price_pln_m2"] == 250.0 and stored.loc[a, "contact"] == "oferty@gmina.pl"
    assert stored.loc[b, "price_pln_m2"] == 410.0  # the person's price stays
    assert stored.loc[b, "contact"] == "oferty@gmina.pl"  # an empty field is filled
    hist = inv.history(a)
    offer = hist[hist["kind"] == "offer"].set_index("field")
    assert (
        offer.loc["price_pln_m2", "new_value"] == "250"
        and offer.loc["contact", "source"] == "run:r2"
    )
    inv.edit(a, {"price_pln_m2": 275.0}, by="gmina")
    inv.apply(offered, None, _info("r3", info))  # the same list again
    assert inv.read_sites().set_index("site_id").loc[a, "price_pln_m2"] == 275.0


def test_a_new_site_keeps_its_own_offer_over_its_parents(loaded):
    """A split site nominated with its own price keeps it; its parent's fills only what
    the run does not give (here the contact), and the status is inherited."""
    inv, sites, reference, info = loaded
    parent = sites.iloc[5]
    inv.edit(
        parent["site_id"],
        {"status": "reserved", "price_pln_m2": 310.0, "contact": "rodzic@gmina.pl"},
        by="gmina",
    )
    x0, y0, x1, y1 = parent.geometry.bounds
    xm = (x0 + x1) / 2
    halves = [shapely.box(x0, y0, xm, y1), shapely.box(xm, y0, x1, y1)]
    children = gpd.GeoDataFrame([parent, parent], crs=sites.crs).reset_index(drop=True)
    children = children.set_geometry(gpd.GeoSeries(halves, crs=sites.crs))
    children["site_id"] = ["Schild00001", "Schild00002"]
    children["parcel_ids"] = ["146501_1.0001.900/1", "146501_1.0001.900/2"]
    children["derived_from"] = parent["site_id"]
    children["price_pln_m2"] = [199.0, np.nan]
    children["contact"] = None
    new = pd.concat([sites.drop(index=sites.index[5]), children], ignore_index=True)
    new = gpd.GeoDataFrame(new, geometry="geometry", crs=sites.crs)
    inv.apply(new, None, _info("r2", info))
    stored = inv.read_sites().set_index("site_id")
    assert stored.loc["Schild00001", "price_pln_m2"] == 199.0  # its own, from the run
    assert stored.loc["Schild00002", "price_pln_m2"] == 310.0  # none given: the parent's
    for child in ("Schild00001", "Schild00002"):
        assert stored.loc[child, "contact"] == "rodzic@gmina.pl"
        assert stored.loc[child, "status"] == "reserved"


def test_duplicates_by_parcel_and_by_overlap_are_merged_and_reported(loaded):
    inv, sites, reference, info = loaded
    a, b = sites.iloc[10], sites.iloc[11]
    # the same land from another source: different site IDs
    same_parcel = a.copy()
    same_parcel["site_id"] = "Sdupparcel1"
    same_parcel["parcel_ids"] = a["parcel_ids"] + ",146501_1.0099.1"
    overlap = b.copy()
    overlap["site_id"] = "Sdupgeom001"
    overlap["parcel_ids"] = "146501_1.0098.77"
    overlap["geometry"] = shapely.affinity.translate(b.geometry, xoff=b.geometry.bounds[2] * 0 + 5)
    extra = gpd.GeoDataFrame([same_parcel, overlap], crs=sites.crs)
    # the update covers another gmina only, so a and b are not ended as "gone"
    extra["teryt"] = "1434022"
    new = gpd.GeoDataFrame(pd.concat([sites, extra], ignore_index=True), crs=sites.crs)
    new = new[~new["site_id"].isin([a["site_id"], b["site_id"]])]
    report = inv.apply(new, None, _info("r2", info), scope=["1434022"])
    merged = {old: (kept, why) for kept, old, why in report.merged}
    assert merged[a["site_id"]][0] == "Sdupparcel1" and "parcel" in merged[a["site_id"]][1]
    assert merged[b["site_id"]][0] == "Sdupgeom001" and "overlap" in merged[b["site_id"]][1]
    stored = inv.read_sites().set_index("site_id")
    assert a["site_id"] not in stored.index and b["site_id"] not in stored.index
    assert a["site_id"] in stored.loc["Sdupparcel1", "derived_from"]
    assert inv.history(b["site_id"])["kind"].iloc[-1] == "merged"


def test_far_apart_sites_are_not_duplicates(loaded):
    inv, sites, reference, info = loaded
    far = sites.iloc[[0]].copy()
    far["site_id"] = "Sfaraway001"
    far["parcel_ids"] = "146501_1.0097.5"
    far["teryt"] = "1434022"
    far = far.set_geometry(gpd.GeoSeries([shapely.box(0, 0, 100, 100)], crs=sites.crs))
    report = inv.apply(
        gpd.GeoDataFrame(pd.concat([sites, far]), crs=sites.crs), None, _info("r2", info)
    )
    assert report.added == 1 and report.merged == []


def test_status_lifecycle_and_offer_edits(loaded):
    inv, sites, *_ = loaded
    sid = sites["site_id"].iloc[0]
    rec = inv.set_status(sid, "reserved", by="jan.kowalski", date="2026-11-20")
    assert (rec["status"], rec["status_date"]) == ("reserved", "2026-11-20")
    rec = inv.edit(
        sid,
        {
            "price_pln_m2": 420,
            "contact": "coi@piaseczno.eu",
            "documents": [
                {"title": "Wypis z MPZP", "url": "https://bip.example.pl/mpzp.pdf"},
                {"title": "Operat", "url": "https://intra.example.pl/o.pdf", "public": False},
            ],
            "sez_status": "Polska Strefa Inwestycji: decyzja 2026/11",
        },
        by="jan.kowalski",
    )
    assert rec["price_pln_m2"] == 420.0
    docs = json.loads(rec["documents"])
    assert [d["public"] for d in docs] == [True, False]
    inv.set_status(sid, "sold", by="jan.kowalski")
    with pytest.raises(InventoryError) as err:
        inv.set_status(sid, "available", by="jan.kowalski")
    assert err.value.field == "status" and "sold is final" in str(err.value)
    h = inv.history(sid)
    assert h["kind"].tolist()[0] == "created"
    status_rows = h[h["field"] == "status"]
    assert status_rows[["old_value", "new_value"]].values.tolist() == [
        ["available", "reserved"],
        ["reserved", "sold"],
    ]
    assert set(h.loc[h["kind"] == "offer", "source"]) == {"user:jan.kowalski"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price_pln_m2": -5}, "price_pln_m2"),
        ({"status": "rented"}, "status"),
        ({"documents": [{"title": "x", "url": "not a url"}]}, "documents.0.url"),
        ({"colour": "red"}, "colour"),
        ({}, "body"),
    ],
)
def test_invalid_edits_name_the_field_and_change_nothing(loaded, changes, field):
    inv, sites, *_ = loaded
    sid = sites["site_id"].iloc[1]
    before = _snapshot(inv)
    with pytest.raises(InventoryError) as err:
        inv.edit(sid, changes, by="anna")
    assert err.value.field == field
    after = _snapshot(inv)
    pd.testing.assert_frame_equal(before["sites"], after["sites"])


def test_edit_unknown_site_is_404(loaded):
    inv, *_ = loaded
    with pytest.raises(InventoryError) as err:
        inv.edit("Snotthere00", {"notes": "x"}, by="anna")
    assert err.value.status == 404


def test_changed_since_feed(loaded):
    inv, sites, reference, info = loaded
    t0 = "2026-11-03T00:00:00Z"
    assert inv.changed_since(t0).empty
    new = sites.drop(index=sites.index[0]).copy()
    new.loc[new.index[0], "slope_mean_pct"] = 3.25
    inv.apply(new, None, _info("r2", info), now="2026-11-04T00:00:00.000000Z")
    inv.edit(sites["site_id"].iloc[7], {"notes": "do sprzedaży w 2027"}, by="anna")
    feed = inv.changed_since(t0).set_index("site_id")
    assert feed.loc[sites["site_id"].iloc[0], "change"] == "ended"
    assert feed.loc[sites["site_id"].iloc[1], "change"] == "changed"
    assert feed.loc[sites["site_id"].iloc[1], "fields"] == "slope_mean_pct"
    assert feed.loc[sites["site_id"].iloc[7], "fields"] == "notes"
    assert len(feed) == 3
    assert inv.changed_since("2030-01-01").empty
    # the feed and a site's history are index lookups on both backends
    b = inv.backend
    if hasattr(b, "schema"):  # PostGIS
        names = b.query("SELECT indexname FROM pg_indexes WHERE schemaname = ?", [b.schema])
        names = set(names["indexname"])
        wanted = {"sites_updated_at_idx", "site_history_site_id_idx", "site_history_changed_at_idx"}
    else:
        names = set(b.query("SELECT name FROM sqlite_master WHERE type = 'index'")["name"])
        wanted = {"idx_sites_updated_at", "idx_site_history_site_id"}
    assert wanted <= names, names
    with pytest.raises(InventoryError):
        inv.changed_since("yesterday")


def test_unchanged_reference_layers_are_left_alone(loaded):
    """An update rewrites only the reference layers that changed (the row IDs of an
    untouched layer stay as they were; a replaced layer's rows are new)."""
    inv, sites, reference, info = loaded
    b = inv.backend
    before = {n: b.read_layer(n, fid_as_index=True) for n in ("junctions", "substations")}
    changed = {n: g.copy() for n, g in reference.items()}
    changed["substations"].loc[3, "capacity_mw"] = 99.5
    inv.apply(sites, changed, _info("r2", info), now="2026-11-05T00:00:00.000000Z")
    same = b.read_layer("junctions", fid_as_index=True)
    pd.testing.assert_index_equal(same.index, before["junctions"].index)
    subs = b.read_layer("substations", fid_as_index=True)
    assert subs["capacity_mw"].tolist()[3] == 99.5
    assert not set(subs.index) & set(before["substations"].index)  # written anew
    # the same layers again: nothing to rewrite; a moved point is a change
    moved = {n: g.copy() for n, g in changed.items()}
    geom = moved["junctions"].geometry.name
    moved["junctions"].loc[0, geom] = shapely.Point(0, 0)
    inv.apply(sites, moved, _info("r3", info), now="2026-11-06T00:00:00.000000Z")
    pd.testing.assert_index_equal(b.read_layer("substations", fid_as_index=True).index, subs.index)
    junctions = b.read_layer("junctions")
    assert junctions.geometry.iloc[0].equals(shapely.Point(0, 0))


def test_provenance_names_source_date_and_who(loaded):
    inv, sites, reference, info = loaded
    sid = sites["site_id"].iloc[2]
    inv.edit(sid, {"price_pln_m2": 199}, by="ewa")
    prov = inv.provenance(sid).set_index("field")
    assert prov.loc["dist_water_m", "sources"] == "parcels"
    assert prov.loc["dist_water_m", "data_date"] == "2026-10-01"
    assert prov.loc["dist_water_m", "set_by"] == "run:sample"
    assert prov.loc["price_pln_m2", "set_by"] == "user:ewa"
    assert prov.loc["price_pln_m2", "value"] == "199"


def test_scores_and_ranks_refreshed_without_history(loaded):
    inv, sites, reference, info = loaded
    new = sites.copy()
    col, rcol = score_col("logistics"), rank_col("logistics")
    new[col] = new[col] * 0.5
    report = inv.apply(new, None, _info("r2", info))
    assert report.changed == 0 and report.rescored > 0
    stored = inv.read_sites().set_index("site_id").loc[new["site_id"]]
    np.testing.assert_allclose(stored[col].to_numpy(), new[col].to_numpy())
    np.testing.assert_array_equal(stored[rcol].to_numpy(), new[rcol].to_numpy())
    assert inv.backend.read_layer("site_history", read_geometry=False).empty
    rescored = new[col].notna().to_numpy()  # excluded sites keep NaN: nothing to rewrite
    assert (stored["scored_run"].to_numpy()[rescored] == "r2").all()
    assert (stored["scored_run"].to_numpy()[~rescored] == "sample").all()


def test_new_profile_columns_are_added(loaded):
    inv, sites, reference, info = loaded
    new = sites.copy()
    new["score_airport_hub"] = np.linspace(0, 1, len(new))
    new["rank_airport_hub"] = np.arange(len(new), 0, -1)
    inv.apply(new, None, _info("r2", info))
    stored = inv.read_sites().set_index("site_id").loc[new["site_id"]]
    np.testing.assert_array_equal(stored["rank_airport_hub"].to_numpy(), np.arange(120, 0, -1))


def test_failed_update_leaves_everything_as_before(loaded, monkeypatch):
    inv, sites, reference, info = loaded
    before = _snapshot(inv)
    new = sites.drop(index=sites.index[:3]).copy()
    new.loc[new.index[0], "dist_gas_m"] = 1.0
    tx_type = type(inv.backend)
    real = inv.backend.transaction

    def failing_transaction(*args, **kwargs):
        ctx = real(*args, **kwargs)

        class Wrapped:
            def __enter__(self):
                self.tx = ctx.__enter__()
                original = self.tx.insert

                def insert(table, rows):
                    if table == "runs":  # late in the update: after sites and history
                        raise OSError("disk full (simulated)")
                    return original(table, rows)

                self.tx.insert = insert
                return self.tx

            def __exit__(self, *exc):
                return ctx.__exit__(*exc)

        return Wrapped()

    monkeypatch.setattr(inv.backend, "transaction", failing_transaction)
    with pytest.raises(OSError, match="simulated"):
        inv.apply(new, None, _info("r2", info))
    monkeypatch.setattr(inv.backend, "transaction", real)
    after = _snapshot(inv)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=f"{tx_type.__name__}.{name}")


def test_refuses_duplicate_site_ids(loaded):
    inv, sites, reference, info = loaded
    twice = gpd.GeoDataFrame(pd.concat([sites, sites.iloc[[0]]]), crs=sites.crs)
    with pytest.raises(StoreError, match="twice"):
        inv.apply(twice, None, _info("r2", info))
    # a new site (not in the store yet) given twice
    fresh = sites.iloc[[5, 5]].copy()
    fresh["site_id"] = "S-NEW"
    with pytest.raises(StoreError, match="S-NEW.*twice"):
        inv.apply(gpd.GeoDataFrame(pd.concat([sites, fresh]), crs=sites.crs), None, info)
    assert len(inv.read_sites()) == len(sites)  # nothing written


def test_first_load_refuses_duplicate_site_ids(target):
    sites, reference, info = sample_data(20, seed=1)
    twice = gpd.GeoDataFrame(pd.concat([sites, sites.iloc[[3]]]), crs=sites.crs)
    inv = open_inventory(target)
    # the repeat is found while the load writes: the store is not replaced
    with pytest.raises(StoreError, match=f"{sites['site_id'].iloc[3]}.*twice"):
        inv.apply(twice, reference, info)
    assert not inv.has_sites()
    if not str(target).startswith("postgresql"):
        assert not list(Path(target).parent.glob("*.tmp.gpkg"))  # nothing left behind
    inv.apply(sites, reference, info)  # and the store loads once the input is right
    assert len(inv.read_sites()) == len(sites)


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".csv", ".xlsx", ".parquet"])
def test_exports_round_trip(loaded, tmp_path, suffix):
    inv, sites, *_ = loaded
    inv.edit(sites["site_id"].iloc[0], {"notes": "Zażółć gęślą jaźń"}, by="anna")
    path, n = export_sites(inv, tmp_path / f"sites{suffix}")
    assert n == 120
    if suffix in (".gpkg", ".geojson"):
        back = gpd.read_file(path)
        if suffix == ".geojson":
            assert back.crs.to_epsg() == 4326
            assert back.total_bounds[0] > 19 and back.total_bounds[2] < 23
        else:
            assert back.crs.to_epsg() == 2180
    elif suffix == ".csv":
        back = pd.read_csv(path)
        assert {"lon", "lat", "wkt_epsg2180"} <= set(back.columns)
    elif suffix == ".xlsx":
        back = pd.read_excel(path, sheet_name="sites")
    else:
        back = gpd.read_parquet(path)
        assert back.crs.to_epsg() == 2180
    assert sorted(back["site_id"]) == sorted(sites["site_id"])
    assert "Zażółć gęślą jaźń" in set(back["notes"].dropna())
    with pytest.raises(ValueError, match="export format"):
        export_sites(inv, tmp_path / "sites.shp")


def test_read_helpers_return_current_records_and_latest_run(loaded):
    inv, sites, reference, info = loaded
    inv.apply(sites.iloc[1:], None, _info("r9", info))
    assert len(read_sites(inv.backend)) == 119
    assert len(read_sites(inv.backend, include_ended=True)) == 120
    run = read_run_info(inv.backend)
    assert run["run_id"] == "r9" and run["changes"]["ended"] == 1


def test_a_store_from_before_the_inventory_is_loaded_over(tmp_path):
    """A site table written by the whole-file store of the first version (no record
    columns) is replaced by a loaded inventory on the next run, not updated."""
    import pyogrio

    sites, reference, info = sample_data(30, seed=8)
    path = tmp_path / "old.gpkg"
    pyogrio.write_dataframe(sites, path, layer="sites", driver="GPKG")
    report = open_inventory(path).apply(sites, reference, info)
    assert report.kind == "load" and report.added == 30
    assert len(read_sites(path)) == 30
    assert open_inventory(path).apply(sites, reference, info).unchanged == 30


def test_an_update_ending_most_sites_in_scope_is_refused_unless_allowed(loaded):
    """A wrong CRS or a partial dataset looks like most sites disappeared: refused before
    anything is written, naming how many of how many and the flag."""
    inv, sites, reference, info = loaded
    before = _snapshot(inv)
    in_a = sites.index[sites["teryt"] == "1418043"]
    keep = sites.drop(index=in_a[: len(in_a) // 2])  # half of one gmina's sites gone
    ending = len(in_a) // 2
    assert ending > 10
    with pytest.raises(InventoryError) as err:
        inv.apply(keep, None, _info("r2", info), scope=["1418043"])
    message = str(err.value)
    assert f"would end {ending} of the {len(in_a)} current sites in scope 1418043" in message
    assert "--allow-mass-end" in message and "\n" not in message
    after = _snapshot(inv)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])
    # across the whole region the same loss is under a fifth: written
    report = inv.apply(keep, None, _info("r3", info))
    assert report.ended == ending
    # a few sites (up to the floor) may always end, whatever the share
    few = keep.drop(index=keep.index[keep["teryt"] == "1421062"][:3])
    assert inv.apply(few, None, _info("r4", info), scope=["1421062"]).ended == 3


def test_allow_mass_end_writes_the_update(loaded):
    inv, sites, reference, info = loaded
    rest = sites.iloc[:10]
    with pytest.raises(InventoryError, match="would end 110 of the 120"):
        inv.apply(rest, None, _info("r2", info))
    report = inv.apply(rest, None, _info("r2", info), allow_mass_end=True)
    assert report.ended == 110 and len(inv.read_sites()) == 10


def test_a_store_that_cannot_be_read_is_not_loaded_over(tmp_path):
    """Only a store that does not exist yet gets a first load; one that cannot be read
    (here: damaged) is an error, its file untouched."""
    sites, reference, info = sample_data(10, seed=1)
    path = tmp_path / "inv.gpkg"
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(StoreError):
        open_inventory(path).apply(sites, reference, info)
    assert path.read_bytes() == b"\0" * 4096
    with pytest.raises(StoreError):
        open_inventory(path).summary()


def test_status_of_a_missing_store_is_an_error(target):
    with pytest.raises(StoreError, match="no inventory"):
        open_inventory(target).summary()
    open_inventory(target).init()
    assert open_inventory(target).summary()["sites"] == 0


def test_a_first_load_into_a_store_that_gained_sites_becomes_an_update(target, monkeypatch):
    """The store had no sites when the load read it; another writer loaded sites before
    the load replaced it: the load is refused and the update made incrementally."""
    sites, reference, info = sample_data(40, seed=5)
    inv = open_inventory(target)
    other = open_inventory(target)
    a = sites[sites["teryt"] == "1418043"]
    b = sites[sites["teryt"] != "1418043"]
    real = type(inv.backend).bulk_load
    calls = []

    def bulk_load(self, *args, **kwargs):
        if not calls:  # the other writer's first load lands first
            calls.append(1)
            other.apply(b, reference, _info("other", info), scope=["1465011", "1421062"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(inv.backend), "bulk_load", bulk_load)
    report = inv.apply(a, reference, _info("mine", info), scope=["1418043"])
    assert report.kind == "update" and report.added == len(a)
    stored = inv.read_sites(read_geometry=False)
    assert sorted(stored["site_id"]) == sorted(sites["site_id"])
    runs = inv.backend.read_layer("runs", read_geometry=False)
    assert sorted(runs["run_id"]) == ["mine", "other"]


def test_staged_sites_leave_the_store_a_plain_apply_leaves(postgis_url):
    """A first load, then an update with changed, split, new and gone sites: given as a
    frame, and given staged (:func:`_staging`), the stores end up equal — records,
    column order and types, history, runs."""
    import uuid

    sites, reference, info = sample_data(60, seed=8)
    new = sites.iloc[2:].copy()  # two gone
    new.loc[new.index[0], "dist_sewer_m"] = 3.25
    new.loc[new.index[1], "geometry"] = shapely.affinity.translate(new.geometry.iloc[1], 5.0)
    new.loc[new.index[2], "zoning_symbol"] = "7P"
    new.loc[new.index[3], score_col("office")] = 0.5
    fresh = sites.iloc[[5]].copy()  # a new site over an old one's land
    fresh["site_id"] = "S_NEW"
    fresh["parcel_ids"] = "x/1"
    new = gpd.GeoDataFrame(pd.concat([new, fresh], ignore_index=True), crs=sites.crs)
    snaps, columns = [], []

    def types(inv):  # the site table's columns, in order, with their database types
        schema = inv.backend.schema
        return inv.backend.query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_schema = ? AND table_name = 'sites' ORDER BY ordinal_position",
            (schema,),
        ).values.tolist()

    for apply in (Inventory.apply, _staging(Inventory.apply)):
        inv = open_inventory(f"{postgis_url}?schema=t_{uuid.uuid4().hex[:10]}")
        apply(inv, sites, reference, info, now="2026-11-01T10:00:00.000000Z")
        loaded = _snapshot(inv)
        columns.append(types(inv))
        report = apply(inv, new, None, _info("r2", info), now="2026-11-02T10:00:00.000000Z")
        assert (report.added, report.ended, report.changed) == (1, 3, 3)
        snaps += [loaded, _snapshot(inv)]
        columns.append(types(inv))
    assert columns[0] == columns[2] and columns[1] == columns[3]
    for mine, theirs in ((snaps[0], snaps[2]), (snaps[1], snaps[3])):
        for table, frame in mine.items():
            pd.testing.assert_frame_equal(frame, theirs[table], obj=table)
