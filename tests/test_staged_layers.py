"""Reference layers staged beside a PostGIS store by another process
(:meth:`PostGISBackend.stage`) and moved in by :meth:`Inventory.apply`'s own transaction:
on a first load, on an update, left alone when unchanged, never half-applied; a
GeoPackage store refuses them."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from sample_store import sample_data

from omw_sites.store import InventoryError, open_inventory
from omw_sites.store.base import StagedLayer, StagedSites, StoreError
from omw_sites.store.hashing import layer_digest
from omw_sites.store.update import MASS_END_FLOOR


@pytest.fixture
def pg_target(postgis_url):
    from omw_sites.store import open_backend

    target = f"{postgis_url}?schema=t_{uuid.uuid4().hex[:10]}"
    yield target
    open_backend(target).close()


def _stage_names(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'stg_%'")
        return {r[0] for r in rows}


def _tables_in(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        return {r[0] for r in rows}


def _same_layer(stored: pd.DataFrame, frame: pd.DataFrame) -> None:
    cols = [c for c in frame.columns if c != "geometry"]
    left = pd.DataFrame(stored[cols]).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, pd.DataFrame(frame[cols]).reset_index(drop=True))
    a, b = stored.geometry.to_numpy(), frame.geometry.to_numpy()
    assert shapely.equals_exact(a, b, tolerance=1e-6).all()


def test_staged_layers_on_first_load_and_update(pg_target, postgis_url):
    sites, reference, info = sample_data(80, seed=5)
    inv = open_inventory(pg_target)
    backend = inv.backend
    stage = f"stg_{uuid.uuid4().hex[:10]}"
    staged = backend.stage(stage, {"junctions": reference["junctions"]})
    assert staged["junctions"] == StagedLayer(
        stage, layer_digest(reference["junctions"]), len(reference["junctions"])
    )
    # the store does not hold it before the apply; readers see nothing of the stage
    assert "junctions" not in backend.list_layers()
    layers = {**reference, "junctions": staged["junctions"]}
    report = inv.apply(sites, layers, info, now="2026-11-01T10:00:00.000000Z")
    assert report.kind == "load"
    _same_layer(backend.read_layer("junctions"), reference["junctions"])
    assert "junctions" not in _tables_in(postgis_url, stage)  # moved, not copied
    backend.drop_stage(stage)
    assert stage not in _stage_names(postgis_url)

    # an update with a changed staged layer replaces the stored one
    changed = reference["junctions"].copy()
    changed.loc[changed.index[2], "name"] = "Węzeł Nowy"
    changed.loc[changed.index[0], changed.geometry.name] = shapely.Point(640000, 480000)
    stage2 = f"stg_{uuid.uuid4().hex[:10]}"
    layers2 = {**reference, **backend.stage(stage2, {"junctions": changed})}
    before = backend.read_layer("junctions", fid_as_index=True).index
    inv.apply(sites, layers2, {**info, "run_id": "r2"}, now="2026-11-02T10:00:00.000000Z")
    after = backend.read_layer("junctions", fid_as_index=True)
    _same_layer(after, changed)
    assert not set(after.index) & set(before)  # written anew
    backend.drop_stage(stage2)

    # the same layer staged again: the store's copy is left alone
    stage3 = f"stg_{uuid.uuid4().hex[:10]}"
    layers3 = {**reference, **backend.stage(stage3, {"junctions": changed})}
    inv.apply(sites, layers3, {**info, "run_id": "r3"}, now="2026-11-03T10:00:00.000000Z")
    pd.testing.assert_index_equal(
        backend.read_layer("junctions", fid_as_index=True).index, after.index
    )
    assert "junctions" in _tables_in(postgis_url, stage3)  # not taken: the caller drops it
    backend.drop_stage(stage3)
    backend.drop_stage(stage3)  # dropping what is gone is no error
    assert stage3 not in _stage_names(postgis_url)


def test_a_refused_update_leaves_the_stored_layer_and_the_stage(pg_target, postgis_url):
    sites, reference, info = sample_data(80, seed=6)
    inv = open_inventory(pg_target)
    inv.apply(sites, reference, info, now="2026-11-01T10:00:00.000000Z")
    before = inv.backend.read_layer("substations", fid_as_index=True)
    changed = reference["substations"].copy()
    changed["capacity_mw"] = changed["capacity_mw"] + 1.0
    stage = f"stg_{uuid.uuid4().hex[:10]}"
    layers = {**reference, **inv.backend.stage(stage, {"substations": changed})}
    # a run that would end most sites is refused before it writes anything
    few = sites.head(len(sites) - MASS_END_FLOOR - 30)
    with pytest.raises(InventoryError, match="would end"):
        inv.apply(few, layers, {**info, "run_id": "r2"}, now="2026-11-02T10:00:00.000000Z")
    pd.testing.assert_frame_equal(
        pd.DataFrame(inv.backend.read_layer("substations", fid_as_index=True)),
        pd.DataFrame(before),
    )
    assert "substations" in _tables_in(postgis_url, stage)
    inv.backend.drop_stage(stage)


def test_a_geopackage_store_refuses_staged_layers(tmp_path):
    sites, reference, info = sample_data(20, seed=7)
    layers = {**reference, "junctions": StagedLayer("stg_x", "0" * 64, 3)}
    store = tmp_path / "inv.gpkg"
    with pytest.raises(StoreError, match="'junctions' was staged in a PostGIS database"):
        open_inventory(store).apply(sites, layers, info)
    assert not store.exists()


def test_a_geopackage_store_refuses_staged_sites(tmp_path):
    sites, reference, info = sample_data(20, seed=7)
    staged = StagedSites("stg_x", ("site_id",), {"site_id": "text"}, 20)
    store = tmp_path / "inv.gpkg"
    with pytest.raises(StoreError, match="sites were staged in a PostGIS database"):
        open_inventory(store).apply(sites, reference, info, staged=staged)
    assert not store.exists()
    with pytest.raises(StoreError, match="cannot stage sites"):
        open_inventory(store).backend.stage_sites("stg_x", "a", sites)


def test_staged_parts_of_other_kinds_are_one_view(pg_target):
    """Parts staged with a column empty in one (another kind) or missing from one are
    read through the view as one table, the wider kind winning."""
    sites, _, _ = sample_data(10, seed=2)
    inv = open_inventory(pg_target)
    backend = inv.backend
    stage = f"stg_{uuid.uuid4().hex[:10]}"
    a = sites.iloc[:4][["site_id", "gmina", "area_ha", "geometry"]].copy()
    b = sites.iloc[4:][["site_id", "gmina", "area_ha", "geometry"]].copy()
    b["gmina"] = np.nan  # empty: a float column here
    a["extra"] = 1
    try:
        assert backend.stage_sites(stage, "a", a) == 4
        assert backend.stage_sites(stage, "b", b) == 6
        staged = backend.staged_sites(stage, ["a", "b"])
        assert staged.rows == 10
        assert staged.columns == ("site_id", "gmina", "area_ha", "extra")
        assert staged.kinds["gmina"] == "text"
        back = backend.read_staged(staged)
        assert back["site_id"].tolist() == sorted(sites["site_id"])
        assert back["gmina"].isna().sum() == 6 and back["extra"].isna().sum() == 6
        two = backend.read_staged(staged, [sites["site_id"].iloc[5], "nope"])
        assert two["site_id"].tolist() == [sites["site_id"].iloc[5]]
    finally:
        backend.drop_stage(stage)
