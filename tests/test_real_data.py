"""Real data as an analyst has it (issue 16): only parcels are required, every other layer
may be missing or empty; the five tracebacks of the demo-only code; nominated sites; the
real Mokotów parcels with nothing else; ``top`` on a profile no site passes.

The generated region (``demo_raw``) is copied and trimmed to ~800 parcels once; each
variant copies that and removes or empties one layer. The real fixtures are read in
place (copied into ``tmp_path`` only where a raw folder needs them).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from cli_run import cli

from omw_sites.etl.errors import IngestError
from omw_sites.layers import RAW_BY_KEY, STORE_FILE, excluded_col, rank_col
from omw_sites.store import read_run_info, read_sites

# units of the demo region kept by the trimmed copy: ~800 parcels in four gminy, two of
# them with a plan ogólny (so that a run without MPZP still has candidates)
KEEP_UNITS = ("143207_2", "140801_1", "141802_3", "143401_1", "141803_2", "142104_2")
# GML files that stand for a layer besides its GeoPackage
GML_DIRS = {"parcels": "egib", "plan_zones": "app", "utilities": "gesut"}
# what the run summary must name when the layer is not there
NEEDLES = {
    "gminy": "gmina not measured",
    "zoning": "zoning_symbol",
    "plan_zones": "no_plan_ogolny",
    "roads": "time_centre_min",
    "rail": "rail:",
    "natura2000": "natura_share",
    "forest": "forest_share",
    "water": "water",
    "power_lines": "power_lines:",
    "junctions": "dist_junction_m",
    "stations": "dist_station_m",
    "airports": "dist_airport_m",
    "utilities": "dist_water_m",
    "substations": "dist_substation_m",
    "flood": "flood_share",
    "dem": "slope_mean_pct",
}
# a column left empty for every site when the layer is not there
EMPTY_COLUMN = {
    "zoning": "zoning_share",
    "roads": "time_centre_min",
    "natura2000": "natura_share",
    "forest": "forest_share",
    "junctions": "dist_junction_m",
    "stations": "dist_station_m",
    "airports": "time_airport_min",
    "utilities": "dist_sewer_m",
    "substations": "power_capacity_mw",
    "flood": "flood_share",
    "dem": "slope_max_pct",
}
OPTIONAL = sorted(NEEDLES)
VECTOR = [k for k in OPTIONAL if RAW_BY_KEY[k].geom != "raster"]


# ---------------------------------------------------------------------------- helpers


def _rewrite(path: Path, changes: dict[str, pd.DataFrame | None]) -> None:
    """Write the GeoPackage ``path`` again with some layers replaced (None: dropped)."""
    kept = []
    for name, gtype in pyogrio.list_layers(path):
        frame = changes.get(name, pyogrio.read_dataframe(path, layer=name))
        if name in changes and changes[name] is None:
            continue
        kept.append((name, frame, gtype))
    path.unlink()
    for name, frame, gtype in kept:
        pyogrio.write_dataframe(frame, path, layer=name, geometry_type=gtype, driver="GPKG")


def drop_layer(raw: Path, key: str) -> None:
    """The raw folder without layer ``key`` (its file, or its layer of a shared GPKG)."""
    spec = RAW_BY_KEY[key]
    path = raw / spec.path
    if spec.layer is None or len(pyogrio.list_layers(path)) == 1:
        path.unlink()
    else:
        _rewrite(path, {spec.layer: None})
    for gml in (raw / GML_DIRS[key]).glob("*.gml") if key in GML_DIRS else ():
        gml.unlink()


def empty_layer(raw: Path, key: str) -> None:
    """The raw folder with layer ``key`` present, its schema intact, and no feature."""
    spec = RAW_BY_KEY[key]
    path = raw / spec.path
    frame = pyogrio.read_dataframe(path, layer=spec.layer)
    _rewrite(path, {spec.layer: frame.iloc[:0]})
    for gml in (raw / GML_DIRS[key]).glob("*.gml") if key in GML_DIRS else ():
        gml.unlink()


def _no_inf(store: Path) -> pd.DataFrame:
    """The store's sites, checked for ``inf`` in every numeric column."""
    sites = read_sites(store, read_geometry=False)
    numeric = sites.select_dtypes("number")
    bad = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype=float)).any()]
    assert not bad, f"inf in the store: {bad}"
    return sites


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def base_raw(demo_raw, tmp_path_factory) -> Path:
    """The demo region trimmed to ``KEEP_UNITS``, without its GML files (their merges
    are tested in test_pipeline and test_demo; here they would only slow every run)."""
    dst = tmp_path_factory.mktemp("trimmed") / "raw"
    shutil.copytree(demo_raw, dst)
    for gml in dst.glob("*/*.gml"):
        gml.unlink()
    path = dst / "egib/dzialki.gpkg"
    parcels = pyogrio.read_dataframe(path, layer="dzialki")
    keep = parcels["ID_DZIALKI"].str[:8].isin(KEEP_UNITS)
    path.unlink()
    pyogrio.write_dataframe(parcels[keep], path, layer="dzialki")
    return dst


@pytest.fixture
def raw(base_raw, tmp_path) -> Path:
    dst = tmp_path / "raw"
    shutil.copytree(base_raw, dst)
    return dst


def _run(raw: Path, out: Path, **kw):
    from omw_sites.pipeline import run

    return run(raw, out, profiles=["logistics"], **kw)


# ---------------------------------------------------------------- every layer in turn


def _check_derived_junctions(summary, sites, info) -> None:
    """Without a junction layer, junctions come from the road topology (the demo's
    roads hold motorways and expressways), and the summary says so."""
    text = "\n".join(summary.notes)
    assert "junctions derived from the road network" in text, text
    assert sites["dist_junction_m"].notna().all() and sites["time_junction_min"].notna().any()
    assert sites["junction_name"].str.match(r"^[AS]\d").all(), sites["junction_name"].unique()
    assert "junctions" not in info["absent_layers"]


@pytest.mark.parametrize("key", OPTIONAL)
def test_every_optional_layer_missing_in_turn(raw, tmp_path, key):
    drop_layer(raw, key)
    summary = _run(raw, tmp_path / "out")
    store = tmp_path / "out" / STORE_FILE
    sites = _no_inf(store)
    assert len(sites) > 5
    info = read_run_info(store)
    if key == "junctions":
        _check_derived_junctions(summary, sites, info)
        return
    text = "\n".join(summary.notes)
    assert NEEDLES[key] in text, text
    if key in EMPTY_COLUMN:
        assert sites[EMPTY_COLUMN[key]].isna().all(), key
    assert key in info["absent_layers"] and info["notes"] == summary.notes


@pytest.mark.parametrize("key", VECTOR)
def test_every_optional_layer_empty_in_turn(raw, tmp_path, key):
    empty_layer(raw, key)
    summary = _run(raw, tmp_path / "out")
    store = tmp_path / "out" / STORE_FILE
    sites = _no_inf(store)
    if key == "junctions":
        _check_derived_junctions(summary, sites, read_run_info(store))
        return
    assert "empty" in read_run_info(store)["absent_layers"][key]
    assert NEEDLES[key] in "\n".join(summary.notes)
    if key in EMPTY_COLUMN:
        assert sites[EMPTY_COLUMN[key]].isna().all(), key
    # the API serves the store, with an empty reference layer as an empty collection
    from omw_sites.api.catalog import load_snapshot

    snap = load_snapshot(store)
    if key in snap.layers:
        assert len(snap.layers[key]) == 0


@pytest.mark.parametrize("key", ["stations", "utilities"])
def test_a_layer_emptied_since_the_last_run_is_emptied_in_the_store(raw, tmp_path, key):
    from omw_sites.store import open_backend

    _run(raw, tmp_path / "out")
    store = tmp_path / "out" / STORE_FILE
    assert len(open_backend(store).read_layer(key)) > 0
    empty_layer(raw, key)
    _run(raw, tmp_path / "out")  # an update: the layer is replaced by its empty self
    assert len(open_backend(store).read_layer(key)) == 0
    _no_inf(store)


def test_parcels_are_the_one_required_layer(raw, tmp_path):
    empty_layer(raw, "parcels")
    with pytest.raises(IngestError, match="no parcels"):
        _run(raw, tmp_path / "out")
    assert not (tmp_path / "out" / STORE_FILE).exists()


def test_no_data_renormalises_weights_and_skips_constraints(raw, tmp_path):
    """Without roads, flood zones and junctions the travel times are NaN for every site
    (never inf), the profile's weights are renormalised over what was measured (said in
    run_info), the flood constraint is not applied, and each site's gaps say no data."""
    for key in ("roads", "flood", "junctions"):
        drop_layer(raw, key)
    summary = _run(raw, tmp_path / "out")
    store = tmp_path / "out" / STORE_FILE
    sites = _no_inf(store)
    info = read_run_info(store)
    logistics = info["scoring"]["logistics"]
    assert {"time_junction_min", "time_centre_min"} <= set(logistics["criteria_without_data"])
    weights = logistics["weights"]
    # each weight is kept to 6 decimals: their sum is 1 to within 1e-6 per criterion
    total = pytest.approx(1, abs=1e-6 * len(weights))
    assert weights["time_junction_min"] == 0 and sum(weights.values()) == total
    assert any("Q1% flood" in r for r in logistics["constraints_not_applied"])
    assert info["no_data"]["not_measured"]["time_centre_min"].startswith("no road network")
    text = "\n".join(summary.notes)
    assert "logistics: weights renormalised" in text and "no road network" in text
    eligible = sites[sites[rank_col("logistics")] > 0]
    assert len(eligible) and eligible["gaps_logistics"].str.contains("no data:").all()
    assert not sites["drivers_logistics"].str.contains("unknown|inf").any()


# ---------------------------------------------------------------- the five tracebacks


def _cli_run(raw: Path, out: Path, *extra: str):
    res = cli("run", "--raw", str(raw), "--out", str(out), "--profile", "logistics", *extra)
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    return res


def test_roads_without_a_main_road_class(raw, tmp_path):
    """Roads with no A/S/GP/G class: the main-road reference layer is empty."""
    path = raw / RAW_BY_KEY["roads"].path
    roads = pyogrio.read_dataframe(path, layer="OT_SKDR_L")
    roads["KLASADROGI"] = roads["KLASADROGI"].where(
        ~roads["KLASADROGI"].isin(["A", "S", "GP", "G"]), "Z"
    )
    _rewrite(path, {"OT_SKDR_L": roads})
    _run(raw, tmp_path / "out")
    _no_inf(tmp_path / "out" / STORE_FILE)


def test_gesut_without_district_heat(raw, tmp_path):
    path = raw / "gesut/gesut.gpkg"
    lines = pyogrio.read_dataframe(path, layer="przewody")
    _rewrite(path, {"przewody": lines[lines["RODZAJSIECI"] != "c"]})
    for gml in (raw / "gesut").glob("*.gml"):
        gml.unlink()
    notes = "\n".join(_run(raw, tmp_path / "out").notes)
    assert "district-heating pipes" in notes and "dist_heat_m" in notes
    sites = _no_inf(tmp_path / "out" / STORE_FILE)
    assert sites["dist_heat_m"].isna().all() and sites["heat_on_site"].isna().all()
    assert sites["dist_water_m"].notna().all()


def test_zero_junctions(raw, tmp_path):
    """No junction layer and no motorway or expressway in the roads: nothing to derive."""
    empty_layer(raw, "junctions")
    path = raw / "bdot10k/bdot10k.gpkg"
    roads = pyogrio.read_dataframe(path, layer="OT_SKDR_L")
    roads.loc[roads["KLASADROGI"].isin(["A", "S"]), "KLASADROGI"] = "GP"
    _rewrite(path, {"OT_SKDR_L": roads})
    notes = "\n".join(_run(raw, tmp_path / "out").notes)
    sites = _no_inf(tmp_path / "out" / STORE_FILE)
    assert sites["time_junction_min"].isna().all() and (sites["junction_name"] == "").all()
    assert "no motorway junctions" in notes


def test_no_constraint_layers_at_all(raw, tmp_path):
    """Flood, Natura 2000, forest, water and power lines empty, GESUT without HV lines."""
    empty_layer(raw, "flood")
    path = raw / "bdot10k/bdot10k.gpkg"
    layers = ("OT_TCON_A", "OT_PTLZ_A", "OT_PTWP_A", "OT_SULN_L")
    _rewrite(path, {n: pyogrio.read_dataframe(path, layer=n).iloc[:0] for n in layers})
    gesut = raw / "gesut/gesut.gpkg"
    lines = pyogrio.read_dataframe(gesut, layer="przewody")
    _rewrite(gesut, {"przewody": lines[~lines["TYP"].isin(["w", "ww"])]})
    for gml in (raw / "gesut").glob("*.gml"):
        gml.unlink()
    res = _cli_run(raw, tmp_path / "out")
    assert res.returncode == 0, res.stderr[-2000:]
    sites = _no_inf(tmp_path / "out" / STORE_FILE)
    assert sites["buildable_share"].isna().all() and sites["flood_share"].isna().all()
    assert "constraint '5 % or more in the Q1% flood hazard zone' not applied" in res.stderr
    assert (sites[rank_col("logistics")] > 0).any()


def test_zero_candidate_parcels_one_line_exit_2_store_untouched(raw, tmp_path):
    out = tmp_path / "out"
    _run(raw, out)
    before = _digest(out / STORE_FILE)
    path = raw / "mpzp/mpzp.gpkg"
    zoning = pyogrio.read_dataframe(path, layer="przeznaczenie")
    zoning["SYMBOL"] = "ZL"  # forest everywhere: nothing to invest in
    _rewrite(path, {"przeznaczenie": zoning})
    drop_layer(raw, "plan_zones")
    res = _cli_run(raw, out)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1 and "no candidate sites" in res.stderr
    assert "investment designation" in res.stderr and "--nominated" in res.stderr
    assert _digest(out / STORE_FILE) == before


def test_zero_candidates_without_zoning_says_how_to_fix(raw, tmp_path):
    drop_layer(raw, "zoning")
    drop_layer(raw, "plan_zones")
    res = _cli_run(raw, tmp_path / "out")
    assert res.returncode == 2
    assert "nothing can be selected: no zoning data" in res.stderr
    assert "--nominated" in res.stderr and not (tmp_path / "out" / STORE_FILE).exists()


# ---------------------------------------------------------------- nominated sites


def _write_list(path: Path, rows: list[dict], sep: str = ",") -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, sep=sep)
    return path


def test_nominated_parcels_become_sites_whatever_the_zoning(raw, tmp_path):
    parcels = pyogrio.read_dataframe(raw / "egib/dzialki.gpkg", layer="dzialki")
    ids = parcels["ID_DZIALKI"].iloc[[3, 50, 400]].tolist()
    nominated = _write_list(
        tmp_path / "oferta.csv",
        [
            {
                "parcel_id": ids[0],
                "name": "Teren A",
                "contact": "a@gmina.pl",
                "price_pln_m2": "150,5",
            },
            {"parcel_id": ids[1], "name": "Teren B", "contact": "", "price_pln_m2": ""},
            {"parcel_id": ids[2], "name": "", "contact": "", "price_pln_m2": "99"},
            {"parcel_id": "143207_2.0001.99999", "name": "", "contact": "", "price_pln_m2": ""},
        ],
        sep=";",
    )
    drop_layer(raw, "zoning")
    drop_layer(raw, "plan_zones")
    summary = _run(raw, tmp_path / "out", nominated=nominated)
    sites = _no_inf(tmp_path / "out" / STORE_FILE)
    assert len(sites) == 3  # nothing but the nominated parcels, each a site of its own
    by_parcel = sites.set_index("parcel_ids")
    assert by_parcel.loc[ids[0], "price_pln_m2"] == pytest.approx(150.5)
    assert by_parcel.loc[ids[0], "contact"] == "a@gmina.pl"
    assert by_parcel.loc[ids[0], "notes"] == "Nominated: Teren A"
    assert by_parcel.loc[ids[2], "notes"] == "Nominated"
    text = "\n".join(summary.notes)
    assert "3 of 4 parcels found" in text
    assert "parcel 143207_2.0001.99999 not found among the parcels" in text
    info = read_run_info(tmp_path / "out" / STORE_FILE)
    assert info["nominated"]["not_found"] == ["143207_2.0001.99999"]


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("name,contact\nA,B\n", ["no parcel_id column", "nomination list columns"]),
        ("parcel_id\n146505_8.0126.120\nnot-an-id\n", ["row 3", "WWPPGG_R"]),
        (
            "parcel_id\n146505_8.0126.120\n146505_8.0126.121\n146505_8.0126.120\n",
            ["listed 2 times", "rows 2, 4", "each parcel once"],
        ),
        ("parcel_id;price_pln_m2\n146505_8.0126.120;tanio\n", ["row 2", "price_pln_m2"]),
        ("parcel_id,price_pln_m2\n146505_8.0126.120,-5\n", ["row 2", "price_pln_m2"]),
        ("parcel_id\n", ["names no parcel"]),
    ],
)
def test_bad_nomination_list_names_file_record_and_rule(tmp_path, body, needles):
    from omw_sites.etl.nominations import read_nominations

    path = tmp_path / "lista.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(IngestError) as err:
        read_nominations(path)
    text = str(err.value)
    assert "lista.csv" in text and "[rule:" in text
    for needle in needles:
        assert needle in text, text


def test_nomination_list_as_xlsx_and_windows_csv(tmp_path):
    from omw_sites.etl.nominations import read_nominations

    rows = {"ID_DZIALKI": ["146505_8.0126.120"], "Nazwa": ["Łąka"], "Cena": ["1 200,5"]}
    pd.DataFrame(rows).to_excel(tmp_path / "lista.xlsx", index=False)
    got = read_nominations(tmp_path / "lista.xlsx").frame.iloc[0]
    assert (got["parcel_id"], got["name"], got["price_pln_m2"]) == (
        "146505_8.0126.120",
        "Łąka",
        1200.5,
    )
    (tmp_path / "lista.csv").write_bytes(
        "parcel_id;nazwa\n146505_8.0126.120;Łąka\n".encode("cp1250")
    )
    assert read_nominations(tmp_path / "lista.csv").frame["name"].tolist() == ["Łąka"]


def test_bad_nomination_list_stops_the_run_with_one_line(base_raw, tmp_path):
    bad = tmp_path / "lista.csv"
    bad.write_text("parcel_id\n146505_8.0126.120\nnot-an-id\n", encoding="utf-8")
    res = _cli_run(base_raw, tmp_path / "out", "--nominated", str(bad))
    assert res.returncode == 2
    assert "lista.csv" in res.stderr and "row 3" in res.stderr
    assert not (tmp_path / "out" / STORE_FILE).exists()


# ---------------------------------------------------------------- real files in place

MOKOTOW_NOMINATED = [
    # two touching municipal parcels of one offer: one site
    ("146505_8.0219.109/10", "Park Mokotów Południe", "inwestor@um.warszawa.pl", "1 250,50"),
    ("146505_8.0219.1/3", "Park Mokotów Południe", "inwestor@um.warszawa.pl", "1250,5"),
    ("146505_8.0412.3/1", "Teren Skarbu Państwa", "", "900"),
    ("146505_8.0207.106", "Mała działka", "", ""),  # 0.1 ha: kept, the gmina offers it
    ("146505_8.9999.1", "Nie ma takiej", "", ""),
]


def test_mokotow_parcels_ownership_and_nomination_list_only(fixtures_dir, tmp_path):
    """`omw-sites run` on the real Mokotów parcels (GPKG), their ownership table and a
    nomination list, and nothing else: exit 0, sites whose access criteria are "no data",
    named in the summary; no inf anywhere."""
    src = fixtures_dir / "egib_warszawa_mokotow"
    raw = tmp_path / "raw"
    (raw / "egib").mkdir(parents=True)
    shutil.copy(src / "mokotow_dzialki_epsg2180.gpkg", raw / "egib/dzialki.gpkg")
    shutil.copy(src / "ownership.csv", raw / "egib/ownership.csv")
    nominated = tmp_path / "nominacje.csv"
    body = "parcel_id;name;contact;price_pln_m2\n" + "".join(
        f'{p};{n};{c};"{v}"\n' for p, n, c, v in MOKOTOW_NOMINATED
    )
    nominated.write_text(body, encoding="utf-8")
    out = tmp_path / "out"
    res = cli("run", "--raw", str(raw), "--out", str(out), "--nominated", str(nominated))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    for needle in (
        "no road network",
        "time_junction_min",
        "time_centre_min",
        "no utility network",
        "parcel 146505_8.9999.1 not found",
        "weights renormalised",
    ):
        assert needle in res.stderr, needle
    store = out / STORE_FILE
    sites = _no_inf(store).set_index("parcel_ids")
    assert len(sites) == 3
    park = sites.loc["146505_8.0219.1/3,146505_8.0219.109/10"]
    assert park["ownership"] == "municipal" and park["price_pln_m2"] == pytest.approx(1250.5)
    assert park["notes"] == "Nominated: Park Mokotów Południe"
    assert sites.loc["146505_8.0412.3/1", "ownership"] == "state"
    assert sites.loc["146505_8.0207.106", "area_ha"] < 0.3
    for col in ("time_junction_min", "time_centre_min", "dist_junction_m", "dist_water_m"):
        assert sites[col].isna().all(), col
    assert sites["gaps_logistics"].str.contains("no data: motorway junction").all()
    # no constraint is applied on a guess: only the small site fails (on its area)
    excluded = sites[excluded_col("logistics")]
    assert excluded.loc["146505_8.0207.106"] == "area below 2 ha"
    assert (excluded.drop(index="146505_8.0207.106") == "").all()
    info = read_run_info(store)
    assert info["no_data"]["not_measured"]["time_centre_min"].startswith("no road network")
    # the sheet says "no data", not inf or a made-up number
    from omw_sites.reports.sheet import render_sheet

    html = render_sheet(store, park["site_id"], lang="en")
    assert "no data" in html and not re.search(r"\binf\b", html)


def test_roads_from_elsewhere_give_no_data_not_inf(fixtures_dir, tmp_path):
    """A placeholder: real BDOT10k-derived roads of Toruń (only I/L/Z/D classes, so no
    main road at all) under the real Mokotów parcels, 200 km away. No site reaches them:
    every travel time is NaN with the reason — never inf, never "Warsaw centre inf min"."""
    src = fixtures_dir / "egib_warszawa_mokotow"
    raw = tmp_path / "raw"
    (raw / "egib").mkdir(parents=True)
    (raw / "bdot10k").mkdir()
    shutil.copy(src / "mokotow_dzialki_epsg2180.gpkg", raw / "egib/dzialki.gpkg")
    shutil.copy(src / "ownership.csv", raw / "egib/ownership.csv")
    roads = pyogrio.read_dataframe(fixtures_dir / "bdot_roads_torun/directedRoadsSample.shp")
    pyogrio.write_dataframe(roads, raw / "bdot10k/bdot10k.gpkg", layer="OT_SKDR_L")
    nominated = _write_list(
        tmp_path / "n.csv", [{"parcel_id": p} for p, *_ in MOKOTOW_NOMINATED[:3]]
    )
    summary = _run(raw, tmp_path / "out", nominated=nominated)
    sites = _no_inf(tmp_path / "out" / STORE_FILE)
    assert len(sites) == 2
    for col in ("time_centre_min", "time_junction_min", "access_leg_m"):
        assert sites[col].isna().all(), col
    text = "\n".join(summary.notes)
    assert re.search(r"bdot10k/bdot10k.gpkg lies 1\d\d km from the parcels.*left out", text), text
    assert read_run_info(tmp_path / "out" / STORE_FILE)["absent_layers"]["roads"]
    assert not sites["drivers_logistics"].str.contains("inf|unknown").any()


def test_egib_gml_alone_is_enough(fixtures_dir, tmp_path):
    """Real EGiB GML 2015 exports without any GeoPackage: the parcels come from the GML."""
    raw = tmp_path / "raw"
    (raw / "egib").mkdir(parents=True)
    for gml in sorted((fixtures_dir / "egib_gml_2015").glob("*.gml")):
        shutil.copy(gml, raw / "egib" / gml.name)
    ids = ["221101_1.0001.34/7", "221101_1.0001.161/8"]
    nominated = _write_list(tmp_path / "n.csv", [{"parcel_id": i} for i in ids])
    summary = _run(raw, tmp_path / "out", nominated=nominated)
    sites = _no_inf(tmp_path / "out" / STORE_FILE)
    assert summary.parcels == 10 and len(sites) >= 1
    assert set(",".join(sites["parcel_ids"]).split(",")) == set(ids)
    assert sites["teryt"].eq("2211011").all()


# ---------------------------------------------------------------- top without a site


def test_top_with_no_eligible_site_counts_the_exclusions(raw, tmp_path):
    profile = tmp_path / "huge.toml"
    profile.write_text(
        'name = "huge"\n'
        "[[constraints]]\n"
        'expr = "area_ha > 5000"\n'
        'reason = "smaller than 5000 ha"\n'
        "[criteria.area_ha]\nweight = 1\nbounds = [0, 10]\n",
        encoding="utf-8",
    )
    from omw_sites.pipeline import run

    summary = run(raw, tmp_path / "out", profiles=[str(profile)])
    store = tmp_path / "out" / STORE_FILE
    n = summary.sites
    assert summary.exclusions == {"huge": {"smaller than 5000 ha": n}}  # `run` says it too
    res = cli("top", "--profile", "huge", "--store", str(store))
    assert res.returncode == 0, res.stderr
    assert "no eligible site" in res.stdout
    assert re.search(rf"\b{n:,}\s+smaller than 5000 ha", res.stdout), res.stdout
    sites = read_sites(store, read_geometry=False)
    assert (sites[excluded_col("huge")] == "smaller than 5000 ha").sum() == n


# ---------------------------------------------------------------- unreachable sites


def test_a_site_the_road_network_cannot_reach_gets_nan_and_the_reason():
    from omw_sites.criteria.measure import measure
    from omw_sites.etl.ingest import QUARANTINE_COLUMNS, RawData
    from omw_sites.layers import SITE_NO_DATA
    from omw_sites.scoring import load_profiles, score_sites

    x0, y0 = 630_000.0, 480_000.0
    roads = gpd.GeoDataFrame(
        {"road_class": ["L", "L", "L"]},
        geometry=[
            shapely.LineString([(x0, y0), (x0 + 2000, y0)]),
            shapely.LineString([(x0 + 2000, y0), (x0 + 4000, y0)]),
            # an island: no road leads from it to the rest
            shapely.LineString([(x0, y0 + 1000), (x0 + 1000, y0 + 1000)]),
        ],
        crs=2180,
    )
    junctions = gpd.GeoDataFrame(
        {"name": ["Węzeł"], "road": ["S8"], "number": [""]},
        geometry=[shapely.Point(x0 + 4000, y0)],
        crs=2180,
    )
    sites = gpd.GeoDataFrame(
        {
            "site_id": ["Sa", "Sb", "Sc"],
            "teryt": ["1465011"] * 3,
            "area_ha": [4.0, 4.0, 4.0],
            "registered_area_ha": [4.0, 4.0, 4.0],
            "ownership": ["municipal"] * 3,
            "parcel_ids": ["a", "b", "c"],
        },
        geometry=[
            shapely.box(x0 + 500, y0 - 250, x0 + 700, y0 - 50),  # on the main part
            shapely.box(x0 + 200, y0 + 1050, x0 + 400, y0 + 1250),  # on the island
            shapely.box(x0 + 20_000, y0, x0 + 20_200, y0 + 200),  # 16 km from any road
        ],
        crs=2180,
    )
    raw = RawData(
        {"roads": roads, "junctions": junctions},
        None,
        {},
        pd.DataFrame(columns=QUARANTINE_COLUMNS),
    )
    out, cov = measure(sites, raw)
    t = out["time_junction_min"].to_numpy()
    assert np.isfinite(t[0]) and np.isnan(t[1]) and np.isnan(t[2])
    assert "time_junction_min: not reachable on the road network" in out[SITE_NO_DATA].iloc[1]
    assert "no road within 3 km" in out[SITE_NO_DATA].iloc[2]
    assert np.isnan(out["access_leg_m"].iloc[2])
    assert any("not reachable" in k for k in cov.site_counts)
    prof = load_profiles(["logistics"])
    scored = score_sites(out, prof)
    assert np.isfinite(scored["score_logistics"]).all()
    gaps = scored["gaps_logistics"].iloc[1]
    assert "no data: motorway junction" in gaps and "not reachable on the road network" in gaps


def test_why_no_candidates_names_the_cause():
    from omw_sites.sites import select_candidates, why_no_candidates

    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["146505_8.0001.1", "146505_8.0001.2"], "area_ha": [1.0, 1.0]},
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)],
        crs=2180,
    )
    far = gpd.GeoDataFrame(
        {"classes": ["P"]}, geometry=[shapely.box(5000, 5000, 6000, 6000)], crs=2180
    )
    assert len(select_candidates(parcels, far, None)) == 0
    assert "covers none of the 2 parcels" in why_no_candidates(parcels, far, None)
    assert "no zoning data" in why_no_candidates(parcels, None, None)
    listed = why_no_candidates(parcels, None, None, nominated_listed=3)
    assert "none of the 3 nominated parcel IDs" in listed
    picked = select_candidates(parcels, far, None, nominated={"146505_8.0001.2": "Oferta"})
    assert picked["parcel_id"].tolist() == ["146505_8.0001.2"]
    assert picked["zoning_key"].tolist() == ["nominated:Oferta"] and picked["nominated"].all()


def test_zoning_with_warsaw_column_name_and_area_labels(base_raw, raw, tmp_path):
    """A municipal MPZP layer as Warsaw writes it (``fun_symb``, ``B12.P/U``) gives the
    same sites and zoning classes as the same plans written ``SYMBOL``/``12P/U``."""
    path = raw / RAW_BY_KEY["zoning"].path
    layer = RAW_BY_KEY["zoning"].layer
    zoning = pyogrio.read_dataframe(path, layer=layer)
    col = next(c for c in zoning.columns if c.upper() == "SYMBOL")
    labelled = zoning.rename(columns={col: "fun_symb"})
    labelled["fun_symb"] = (
        labelled["fun_symb"].astype(str).str.replace(r"^\s*(\d+)\s*", r"B\1.", regex=True)
    )
    assert labelled["fun_symb"].str.match(r"B\d+\.").any()
    _rewrite(path, {layer: labelled})
    _run(raw, tmp_path / "labelled")
    _run(base_raw, tmp_path / "plain")
    cols = ["site_id", "zoning_class"]
    got = read_sites(tmp_path / "labelled" / STORE_FILE, read_geometry=False)[cols]
    want = read_sites(tmp_path / "plain" / STORE_FILE, read_geometry=False)[cols]
    assert len(got) > 5 and (got["zoning_class"] != "").any()
    pd.testing.assert_frame_equal(
        got.sort_values("site_id").reset_index(drop=True),
        want.sort_values("site_id").reset_index(drop=True),
    )


def test_stations_and_airports_derived_from_bdot10k_complexes(raw, tmp_path):
    """No station or airport layer, but BDOT10k's transport complexes: the same airports
    and passenger stations (complexes centred on them) give the same distances; rail
    freight, which BDOT10k has no class for, is named as not measured."""
    before = _run(raw, tmp_path / "before")
    ref = read_sites(tmp_path / "before" / STORE_FILE, read_geometry=False).set_index("site_id")
    airports = pyogrio.read_dataframe(raw / RAW_BY_KEY["airports"].path)
    stations = pyogrio.read_dataframe(raw / RAW_BY_KEY["stations"].path)
    passenger = stations[stations["RODZAJ"].str.lower() == "pasazerska"]
    assert len(airports) and len(passenger) and before.sites
    complexes = gpd.GeoDataFrame(
        {
            "X_KOD": ["KUKO02"] * len(airports) + ["KUKO06"] * len(passenger),
            "NAZWA": [*airports["NAZWA"], *passenger["NAZWA"]],
        },
        geometry=[
            *shapely.buffer(airports.geometry.to_numpy(), 600, cap_style="square"),
            *shapely.buffer(passenger.geometry.to_numpy(), 80, cap_style="square"),
        ],
        crs=airports.crs,
    )
    pyogrio.write_dataframe(complexes, raw / "bdot10k/bdot10k.gpkg", layer="OT_KUKO_A")
    drop_layer(raw, "airports")
    drop_layer(raw, "stations")
    summary = _run(raw, tmp_path / "out")
    text = "\n".join(summary.notes)
    assert "airports derived from BDOT10k airport complexes" in text, text
    assert "stations derived from BDOT10k rail station complexes" in text, text
    got = _no_inf(tmp_path / "out" / STORE_FILE).set_index("site_id").loc[ref.index]
    for col in ("dist_airport_m", "dist_station_m", "time_airport_min", "time_station_min"):
        np.testing.assert_allclose(got[col], ref[col], atol=0.01, err_msg=col)
    assert got["dist_rail_freight_m"].isna().all()
    assert "no rail freight terminals" in text


@pytest.mark.parametrize("number", ["1385", "1421"])
def test_gesut_namespace_number_is_a_label_not_a_powiat(demo_raw, tmp_path, number):
    """Real GESUT exports carry the producer's register number (1385 holds lines of
    powiat 2211): the powiat a file replaces is told by where its lines lie. A number
    that is another powiat's code (1421) must not replace that powiat's lines."""
    from omw_sites.etl import load_raw

    raw = tmp_path / "raw"
    shutil.copytree(demo_raw, raw)
    (gml,) = (raw / "gesut").glob("*.gml")
    text = gml.read_text(encoding="utf-8")
    assert "PL.PZGiK.1418.GESUT" in text
    gml.write_text(text.replace("PL.PZGiK.1418.GESUT", f"PL.PZGiK.{number}.GESUT"), "utf-8")
    gpkg = pyogrio.read_dataframe(raw / RAW_BY_KEY["utilities"].path, layer="przewody")
    loaded = load_raw(raw)
    lines = loaded["utilities"]
    n_gml = int((lines["source"] == "gesut-gml-2021").sum())
    assert 50 < n_gml < len(gpkg)
    # the GML's lines replace exactly the GeoPackage's lines of powiat 1418: none doubled,
    # none of another powiat lost
    assert len(lines) == len(gpkg)
    assert any(
        f"{gml.name}: {n_gml} lines; replaces" in n and "powiat 1418" in n for n in loaded.notes
    )


def _boundaries_of_voivodeships(fixtures_dir) -> gpd.GeoDataFrame:
    return gpd.read_file(fixtures_dir / "boundaries/wojewodztwa.json").to_crs(2180)


def test_a_boundary_layer_of_voivodeships_is_not_taken_for_gminy(fixtures_dir, raw, tmp_path):
    """PRG voivodeships (real file) as admin/gminy.gpkg: before, sites got TERYT '14' and
    gmina 'mazowieckie'; now the layer is named as holding no gmina and left out."""
    (raw / "admin/gminy.gpkg").unlink()
    woj = _boundaries_of_voivodeships(fixtures_dir)
    pyogrio.write_dataframe(woj, raw / "admin/gminy.gpkg", layer="gminy")
    summary = _run(raw, tmp_path / "out")
    sites = _no_inf(tmp_path / "out" / STORE_FILE)
    assert sites["teryt"].str.fullmatch(r"\d{7}").all(), sites["teryt"].unique()
    assert not sites["gmina"].fillna("").str.contains("mazowieckie").any()
    text = "\n".join(summary.notes)
    assert "admin/gminy.gpkg holds no gmina: 16 voivodeship unit(s)" in text, text


def test_gminy_mixed_with_a_voivodeship_keep_the_gminy(fixtures_dir, raw, tmp_path):
    path = raw / "admin/gminy.gpkg"
    gminy = pyogrio.read_dataframe(path, layer="gminy")
    woj = _boundaries_of_voivodeships(fixtures_dir)
    woj = woj[woj["JPT_KOD_JE"] == "14"][["JPT_KOD_JE", "JPT_NAZWA_", "geometry"]].to_crs(gminy.crs)
    both = pd.concat([woj, gminy[["JPT_KOD_JE", "JPT_NAZWA_", "geometry"]]], ignore_index=True)
    path.unlink()
    pyogrio.write_dataframe(gpd.GeoDataFrame(both, crs=gminy.crs), path, layer="gminy")
    summary = _run(raw, tmp_path / "out")
    sites = _no_inf(tmp_path / "out" / STORE_FILE)
    assert set(sites["teryt"].str[:4]) <= {u[:4] for u in KEEP_UNITS}
    assert sites["gmina"].ne("").all() and not sites["gmina"].str.contains("mazow").any()
    text = "\n".join(summary.notes)
    assert (
        "1 voivodeship unit(s) ('14') that are not gminy (TERYT of 7 digits) left out; "
        f"{len(gminy)} gminy kept" in text
    ), text


def test_zoning_that_covers_no_parcel_is_left_out(raw, tmp_path):
    """MPZP zones of another gmina (here: the region's plans moved 60 km east) are named
    and left out rather than matched to nothing."""
    path = raw / RAW_BY_KEY["zoning"].path
    zoning = pyogrio.read_dataframe(path, layer=RAW_BY_KEY["zoning"].layer)
    zoning["geometry"] = zoning.geometry.translate(xoff=60_000)
    _rewrite(path, {RAW_BY_KEY["zoning"].layer: zoning})
    summary = _run(raw, tmp_path / "out")
    text = "\n".join(summary.notes)
    assert "mpzp/mpzp.gpkg covers none of the parcels (another gmina's plan?): left out" in text, (
        text
    )
    sites = _no_inf(tmp_path / "out" / STORE_FILE)
    assert sites["zoning_share"].isna().all()


def test_a_plan_ogolny_of_a_gmina_far_away_is_left_out(fixtures_dir, raw, tmp_path):
    """A real APP 2.0 plan ogólny (a gmina in PL-2000 zone 5, far from the OMW) dropped
    into app/ beside the region's own plans: it is named and left out, the others stay."""
    (raw / "app").mkdir(exist_ok=True)
    shutil.copy(fixtures_dir / "app_pog/set1/strefy/StrefaPlanistyczna.gml", raw / "app/far.gml")
    own = pyogrio.read_dataframe(raw / RAW_BY_KEY["plan_zones"].path, layer="StrefaPlanistyczna")
    from omw_sites.etl import load_raw

    loaded = load_raw(raw)
    text = "\n".join(loaded.notes)
    assert re.search(
        r"the plan ogólny of gmina \d+ lies more than 50 km from the parcels: left out", text
    ), text
    zones = loaded["plan_zones"]
    assert len(zones) == len(own) and set(zones["source"]) == {"gpkg"}


# ---------------------------------------------------------------- downloads as they come


def test_run_on_zips_as_downloaded_gives_the_same_sites(base_raw, tmp_path):
    """The region packed as downloads come, one zip per source with its files renamed
    and moved, runs to the same sites, scores and ranks as the demo layout; ``run_info``
    records what each file became, named inside its zip."""
    import zipfile

    zipped = tmp_path / "pobrane"
    zipped.mkdir()
    for folder in sorted(p for p in base_raw.iterdir() if p.is_dir()):
        with zipfile.ZipFile(zipped / f"{folder.name}_pobranie.zip", "w") as z:
            for i, f in enumerate(sorted(folder.rglob("*"))):
                z.write(f, f"paczka/{i:02d}_{f.stem.upper()}{f.suffix}")
    assert not [p for p in zipped.iterdir() if p.suffix != ".zip"]
    _run(base_raw, tmp_path / "plain")
    _run(zipped, tmp_path / "zipped")
    want = read_sites(tmp_path / "plain" / STORE_FILE, read_geometry=False)
    got = read_sites(tmp_path / "zipped" / STORE_FILE, read_geometry=False)
    # when it was read and by which run: the record's bookkeeping, not the data
    dated = ["created_at", "updated_at", "measured_run", "scored_run"]
    assert len(want) > 5
    pd.testing.assert_frame_equal(
        got.drop(columns=dated).sort_values("site_id").reset_index(drop=True),
        want.drop(columns=dated).sort_values("site_id").reset_index(drop=True),
    )
    files = {f["file"]: f for f in read_run_info(tmp_path / "zipped" / STORE_FILE)["files"]}
    assert all(f["status"] == "used" for f in files.values()), files
    wezly = files["transport_pobranie.zip/paczka/02_WEZLY.gpkg"]
    assert [(x["key"], x["layer"]) for x in wezly["layers"]] == [("junctions", "wezly")]
    bdot = files["bdot10k_pobranie.zip/paczka/00_BDOT10K.gpkg"]["layers"]
    assert {x["key"] for x in bdot} == {
        "roads", "rail", "natura2000", "forest", "water", "power_lines", "buildings",
    }  # fmt: skip


def test_unknown_designation_symbols_are_counted_per_symbol(raw):
    """Zones whose symbol is in no code list are kept (unmatched) and the summary counts
    them per symbol, most frequent first."""
    from omw_sites.etl import load_raw

    path = raw / RAW_BY_KEY["zoning"].path
    layer = RAW_BY_KEY["zoning"].layer
    zoning = pyogrio.read_dataframe(path, layer=layer)
    col = next(c for c in zoning.columns if c.upper() == "SYMBOL")
    zoning[col] = zoning[col].astype(object)
    zoning.loc[zoning.index[:3], col] = "XQZ"
    zoning.loc[zoning.index[3:4], col] = "7QQW"
    _rewrite(path, {layer: zoning})
    loaded = load_raw(raw)
    note = next(n for n in loaded.notes if n.startswith("zoning: "))
    assert note == (
        f"zoning: 4 of {len(zoning)} zones have a designation symbol not in the code list, "
        "kept but matched to no class: XQZ ×3, 7QQW ×1"
    ), note
    assert len(loaded["zoning"]) == len(zoning)  # kept, not dropped


def test_nmt_as_xyz_without_a_crs_gives_the_same_slopes(raw, tmp_path):
    """GUGiK's NMT as an XYZ grid (no CRS in the file): read, its CRS told from its
    coordinates and said in the summary, and the same slopes as the GeoTIFF gives."""
    import rasterio
    import rasterio.shutil

    before = _run(raw, tmp_path / "tif")
    assert before.sites
    ref = read_sites(tmp_path / "tif" / STORE_FILE, read_geometry=False).set_index("site_id")
    tif = raw / RAW_BY_KEY["dem"].path
    with rasterio.open(tif) as src:
        epsg = src.crs.to_epsg()
    xyz = tif.with_name("nmt_sheet.xyz")
    rasterio.shutil.copy(tif, xyz, driver="XYZ")
    tif.unlink()
    for extra in xyz.parent.glob("nmt_sheet.xyz.aux.xml"):
        extra.unlink()
    assert not xyz.with_suffix(".prj").exists()
    summary = _run(raw, tmp_path / "xyz")
    text = "\n".join(summary.notes)
    assert f"nmt_sheet.xyz: an XYZ grid has no CRS; EPSG:{epsg} from its coordinates" in text
    got = _no_inf(tmp_path / "xyz" / STORE_FILE).set_index("site_id").loc[ref.index]
    for col in ("slope_mean_pct", "slope_max_pct"):
        assert got[col].notna().all(), col
        np.testing.assert_allclose(got[col], ref[col], atol=0.011, err_msg=col)


def test_an_unexpected_error_is_one_line_naming_the_stage(raw, tmp_path, monkeypatch):
    """Held-back real folders may hold what no reader expects: whatever breaks, `run`
    ends with one line naming the stage, exit 2, no traceback, the store untouched;
    OMW_TRACEBACK=1 shows the traceback."""
    from typer.testing import CliRunner

    import omw_sites.pipeline as pipeline
    from omw_sites.cli import app

    def broken(*args, **kwargs):
        raise KeyError("KLASA_X")

    monkeypatch.setattr(pipeline, "measure", broken)
    out = tmp_path / "out"
    args = ["run", "--raw", str(raw), "--out", str(out), "--profile", "logistics"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: unexpected failure while the criteria stage (KeyError")
    assert "Traceback" not in res.output and "Traceback" not in res.stderr
    assert not (out / STORE_FILE).exists()
    monkeypatch.setenv("OMW_TRACEBACK", "1")
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, KeyError)
