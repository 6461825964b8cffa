"""End to end: `omw-sites run` on a generated region, and every kind of bad input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pyogrio
import pytest
from cli_run import cli

from omw_sites.layers import PROFILES_DEFAULT, RECORD_COLUMNS, SITE_COLUMNS, rank_col, score_col
from omw_sites.store import list_layers, read_layer, read_run_info, read_sites


def test_store_has_sites_with_criteria_scores_and_ranks(demo_store):
    sites = read_sites(demo_store)
    assert sites.crs.to_epsg() == 2180
    assert len(sites) > 100
    assert set(SITE_COLUMNS) <= set(sites.columns)
    assert sites["site_id"].is_unique
    for p in PROFILES_DEFAULT:
        ranks = sites[rank_col(p)]
        scores = sites[score_col(p)]
        eligible = ranks > 0
        assert eligible.sum() > 10, p
        assert scores[eligible].between(0, 1).all() and scores[~eligible].isna().all()
        # rank order is score order
        order = sites[eligible].sort_values(rank_col(p))
        assert np.all(np.diff(order[score_col(p)].to_numpy()) <= 1e-12)
        assert ranks[eligible].min() == 1
    # measurements are plausible, not constants
    for col in ("dist_junction_m", "dist_centre_m", "dist_sewer_m", "slope_mean_pct"):
        assert sites[col].nunique() > 20, col
    assert (sites["dist_centre_m"] < 60_000).all()
    assert sites["area_ha"].max() > 5 and sites["teryt"].nunique() >= 8
    assert set(sites["gmina"]) > {"Warszawa"}


def test_store_reference_layers_and_run_info(demo_store):
    layers = set(list_layers(demo_store))
    assert {"sites", "junctions", "utilities", "flood", "natura2000", "run_info"} <= layers
    info = read_run_info(demo_store)
    assert {p["name"] for p in info["profiles"]} >= set(PROFILES_DEFAULT)
    assert info["data_dates"]["parcels"]
    assert info["units"]["dist_junction_m"] == "m"
    assert len(read_layer(demo_store, "junctions")) >= 15


def test_defects_are_repaired_or_quarantined(demo_raw, demo_store):
    info = read_run_info(demo_store)
    parcels = info["ingest"]["parcels"]
    assert parcels["repaired"] + parcels["quarantined"] > 0
    assert parcels["kept"] + parcels["quarantined"] == parcels["read"]
    assert read_sites(demo_store).is_valid.all()


def test_site_ids_are_stable_across_runs(demo_raw, demo_store, tmp_path):
    again = cli("run", "--raw", str(demo_raw), "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    a = read_sites(demo_store, read_geometry=False).set_index("site_id")
    b = read_sites(tmp_path / "omw_sites.gpkg", read_geometry=False).set_index("site_id")
    assert a.index.sort_values().equals(b.index.sort_values())
    assert (a["rank_logistics"] == b.loc[a.index, "rank_logistics"]).all()
    assert "Top 10" in again.stdout and "logistics" in again.stdout


# ---------------------------------------------------------------------------- bad input


@pytest.fixture
def raw_copy(demo_raw, tmp_path) -> Path:
    dst = tmp_path / "raw"
    shutil.copytree(demo_raw, dst)
    return dst


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_fails_cleanly(args, out: Path, *needles: str):
    before = _digest(out / "omw_sites.gpkg") if (out / "omw_sites.gpkg").exists() else None
    res = cli(*args, "--out", str(out))
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in res.stderr, res.stderr
    store = out / "omw_sites.gpkg"
    assert (_digest(store) if store.exists() else None) == before
    assert not list(out.glob(".*tmp*")), "temporary files left behind"


def test_missing_required_layer(raw_copy, tmp_path):
    """Parcels are the one required layer: without the GPKG and the EGiB GML files the run
    stops naming both ways to give them (every other layer may be missing)."""
    (raw_copy / "egib/dzialki.gpkg").unlink()
    for gml in (raw_copy / "egib").glob("*.gml"):
        gml.unlink()
    _assert_fails_cleanly(
        ["run", "--raw", str(raw_copy)], tmp_path / "o", "no parcels", "dzialki.gpkg", "*.gml"
    )


def test_layer_without_crs(raw_copy, tmp_path):
    path = raw_copy / "transport/wezly.gpkg"
    gdf = pyogrio.read_dataframe(path, layer="wezly")
    path.unlink()
    pyogrio.write_dataframe(gdf.set_crs(None, allow_override=True), path, layer="wezly")
    _assert_fails_cleanly(["run", "--raw", str(raw_copy)], tmp_path / "o", "wezly.gpkg", "CRS")


def test_bad_text_encoding_in_a_raw_layer(raw_copy, tmp_path):
    """`run` checks text like `ingest` does: cp1250 bytes stored as UTF-8 text in a
    GeoPackage stop the run naming the file, record, column and rule."""
    import sqlite3

    path = raw_copy / "admin/gminy.gpkg"
    with sqlite3.connect(path) as con:  # a writer that stored cp1250 bytes as TEXT
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            con.execute(f'DROP TRIGGER "{name}"')
        bad = "Łomianki".encode("cp1250")
        con.execute("UPDATE gminy SET JPT_NAZWA_ = CAST(? AS TEXT) WHERE fid = 3", (bad,))
    _assert_fails_cleanly(
        ["run", "--raw", str(raw_copy)], tmp_path / "o", "gminy.gpkg", "JPT_NAZWA_"
    )


def test_unreadable_file_keeps_previous_store(raw_copy, demo_store, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    shutil.copy(demo_store, out / "omw_sites.gpkg")
    (raw_copy / "gesut/gesut.gpkg").write_bytes(b"this is not a geopackage")
    _assert_fails_cleanly(["run", "--raw", str(raw_copy)], out, "gesut.gpkg", "cannot read")


def test_missing_column_and_folder(raw_copy, tmp_path):
    _assert_fails_cleanly(
        ["run", "--raw", str(tmp_path / "nope")], tmp_path / "o", "does not exist"
    )
    path = raw_copy / "transport/stacje.gpkg"
    gdf = pyogrio.read_dataframe(path, layer="stacje").drop(columns=["RODZAJ"])
    path.unlink()
    pyogrio.write_dataframe(gdf, path, layer="stacje")
    _assert_fails_cleanly(["run", "--raw", str(raw_copy)], tmp_path / "o", "stacje.gpkg", "RODZAJ")


def test_bad_profiles(demo_raw, tmp_path):
    bad = tmp_path / "moon.toml"
    bad.write_text("[criteria.dist_to_moon_m]\nweight = 1\nbounds = [0, 1]\n", encoding="utf-8")
    _assert_fails_cleanly(
        ["run", "--raw", str(demo_raw), "--profile", str(bad)],
        tmp_path / "o",
        "moon.toml",
        "dist_to_moon_m",
    )
    zero = tmp_path / "zero.toml"
    zero.write_text("[criteria.area_ha]\nweight = 0\nbounds = [0, 1]\n", encoding="utf-8")
    _assert_fails_cleanly(
        ["run", "--raw", str(demo_raw), "--profile", str(zero)],
        tmp_path / "o",
        "zero.toml",
        "positive",
    )
    _assert_fails_cleanly(
        ["run", "--raw", str(demo_raw), "--profile", "nosuch"],
        tmp_path / "o",
        "nosuch.toml",
        "not found",
    )


def test_bad_records_are_quarantined_with_file_record_and_rule(raw_copy, tmp_path):
    path = raw_copy / "egib/dzialki.gpkg"
    gdf = pyogrio.read_dataframe(path, layer="dzialki")
    gdf.loc[0, "ID_DZIALKI"] = "1465_1.12.x"  # malformed
    gdf.loc[1, "ID_DZIALKI"] = gdf.loc[2, "ID_DZIALKI"]  # duplicate
    path.unlink()
    pyogrio.write_dataframe(gdf, path, layer="dzialki")
    res = cli("run", "--raw", str(raw_copy), "--out", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr
    q = pyogrio.read_dataframe(tmp_path / "o/omw_sites.gpkg", layer="quarantine")
    bad = q[q["record"] == "1465_1.12.x"]
    assert len(bad) == 1 and bad["rule"].iloc[0].startswith("parcel ID")
    assert bad["file"].iloc[0].endswith("dzialki.gpkg")
    assert (q["rule"] == "unique parcel ID").sum() == 1
    info = read_run_info(tmp_path / "o/omw_sites.gpkg")
    assert info["ingest"]["parcels"]["kept"] == len(gdf) - 2


def test_every_column_is_documented_with_unit_source_and_date(demo_store):
    info = read_run_info(demo_store)
    sites = read_sites(demo_store, read_geometry=False)
    for col in SITE_COLUMNS:
        doc = info["columns"][col]
        assert doc["meaning"] and doc["sources"], col
        assert doc["data_date"], col
    per_profile = tuple(f"_{p['name']}" for p in info["profiles"])
    measured = [c for c in sites.columns if not c.endswith(per_profile)]
    undocumented = [c for c in measured if c not in SITE_COLUMNS and c not in RECORD_COLUMNS]
    assert not undocumented, f"site columns missing from layers.SITE_COLUMNS: {undocumented}"


def test_one_gmina_is_read_from_its_egib_2021_gml_export(demo_raw):
    import json

    from omw_sites.etl import load_raw

    manifest = json.loads((demo_raw / "manifest.json").read_text(encoding="utf-8"))
    n_gml = manifest["layers"]["parcels_gml"]["count"]
    raw = load_raw(demo_raw)
    parcels = raw["parcels"]
    from_gml = parcels[parcels["source"] == "egib-gml-2021"]
    assert n_gml > 0 and len(from_gml) == n_gml
    assert len(parcels) == manifest["parcels"]  # replaced, not duplicated
    gpkg = pyogrio.read_dataframe(demo_raw / "egib/dzialki.gpkg", layer="dzialki")
    same = gpkg.set_index("ID_DZIALKI").loc[from_gml["parcel_id"]]
    # the GML carries the same registered areas and, through its JRG links, ownership
    assert np.allclose(same["POLE_EWIDENCYJNE"], from_gml["registered_area_ha"], atol=1e-4)
    from omw_sites.etl.egib import ownership_class

    assert (ownership_class(same["GRUPA_REJESTROWA"]).to_numpy() == from_gml["ownership"]).all()
    areas = same.set_crs(2178, allow_override=True).to_crs(2180).area.to_numpy() / 1e4
    assert np.allclose(areas, from_gml["area_ha"], rtol=0.01)


def test_one_plan_ogolny_is_read_from_its_app_gml_and_validates(demo_raw):
    import json

    from omw_sites.etl import load_raw

    manifest = json.loads((demo_raw / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["layers"]["plan_zones_gml"]
    zones = load_raw(demo_raw)["plan_zones"]
    from_app = zones[zones["source"] == "app-gml-2.0"]
    assert entry["count"] > 0 and len(from_app) == entry["count"]
    assert set(from_app["teryt"]) == {"1418043"}
    gpkg = pyogrio.read_dataframe(demo_raw / "app/plan_ogolny.gpkg")
    assert len(zones) == len(gpkg)  # the gmina's GPKG zones were replaced, not doubled
    assert sorted(from_app["designation"]) == sorted(
        gpkg.loc[gpkg["TERYT"] == "1418043", "oznaczenie"]
    )
    res = cli("validate", "app", str(demo_raw / entry["path"]))
    assert res.returncode == 0, res.stdout + res.stderr


def test_ownership_side_table_overrides_the_layer(raw_copy):
    from omw_sites.etl import load_raw

    gdf = pyogrio.read_dataframe(raw_copy / "egib/dzialki.gpkg", layer="dzialki")
    private = gdf[gdf["GRUPA_REJESTROWA"] == 7]["ID_DZIALKI"].head(5).tolist()
    (raw_copy / "egib/ownership.csv").write_text(
        "ID_DZIALKI,ownership\n" + "".join(f"{p},miejska\n" for p in private), encoding="utf-8"
    )
    parcels = load_raw(raw_copy)["parcels"].set_index("parcel_id")
    assert len(private) == 5
    assert (parcels.loc[private, "ownership"] == "municipal").all()
