"""The synthetic OMW region: layout, formats, determinism and the realism the pipeline needs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from omw_sites.demo import DATA_DATES, build_region
from omw_sites.demo.geography import GMINY
from omw_sites.layers import MANIFEST, RAW_BY_KEY, RAW_LAYERS, STATION_FREIGHT

N_PARCELS = 2500
SEED = 7
CENTRE = shapely.Point(636973.0, 486980.0)
ID_RE = re.compile(r"^(\d{6})_(\d)\.(\d{4})\.(?:AR_(\d+)\.)?(\d+(?:/\d+)?)$")


def _read(root: Path, key: str, **kwargs: Any):
    raw = RAW_BY_KEY[key]
    return pyogrio.read_dataframe(root / raw.path, layer=raw.layer, use_arrow=True, **kwargs)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo") / "raw"
    stages: list[tuple[str, int]] = []
    manifest = build_region(
        out, parcels=N_PARCELS, seed=SEED, progress=lambda s, n: stages.append((s, n))
    )
    manifest["_stages"] = stages
    return out, manifest


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Another seed into a folder, then the first seed over it (overwrite in place)."""
    out = tmp_path_factory.mktemp("again") / "raw"
    build_region(out, parcels=N_PARCELS, seed=SEED + 1)
    other = _read(out, "parcels")
    build_region(out, parcels=N_PARCELS, seed=SEED)
    return {"other": other, "same": _read(out, "parcels"), "path": out}


@pytest.fixture(scope="module")
def parcels(region):
    return _read(region[0], "parcels")


def test_every_contract_layer_is_written_with_columns_and_crs(region) -> None:
    root, _ = region
    for raw in RAW_LAYERS:
        path = root / raw.path
        assert path.is_file(), raw.path
        if raw.geom == "raster":
            with rasterio.open(path) as src:
                assert src.crs.to_epsg() == 2180
            continue
        info = pyogrio.read_info(path, layer=raw.layer)
        assert info["features"] > 0, raw.key
        missing = set(raw.columns) - set(info["fields"])
        assert not missing, (raw.key, missing)
        epsg = 2178 if raw.key == "parcels" else 2180
        assert info["crs"] == f"EPSG:{epsg}", (raw.key, info["crs"])
        kind = {"polygon": "Polygon", "line": "LineString", "point": "Point"}[raw.geom]
        assert kind in info["geometry_type"], (raw.key, info["geometry_type"])


def test_manifest_records_seed_counts_dates_and_defects(region, parcels) -> None:
    root, manifest = region
    on_disk = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    assert on_disk["seed"] == SEED
    assert on_disk["parcels"] == len(parcels)
    assert on_disk["generator_version"]
    assert set(on_disk["data_dates"]) == {r.key for r in RAW_LAYERS}
    for date in on_disk["data_dates"].values():
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)
    assert on_disk["data_dates"]["dem"] == DATA_DATES["dem"] == "2025-11-20"
    assert on_disk["defects"] == {k: len(v) for k, v in on_disk["defect_ids"].items()}
    assert sum(on_disk["defects"].values()) >= 1
    stages = [s for s, _ in manifest["_stages"]]
    assert stages[0] == "gminy" and stages[-1] == "write" and "parcels" in stages


def test_same_seed_same_parcels_other_seed_differs(parcels, rebuilt) -> None:
    same, other = rebuilt["same"], rebuilt["other"]
    assert same["ID_DZIALKI"].tolist() == parcels["ID_DZIALKI"].tolist()
    assert shapely.equals_exact(same.geometry.values, parcels.geometry.values, 0.0).all()
    assert (same["POLE_EWIDENCYJNE"].to_numpy() == parcels["POLE_EWIDENCYJNE"].to_numpy()).all()
    assert other["ID_DZIALKI"].tolist() != parcels["ID_DZIALKI"].tolist()
    assert not (rebuilt["path"].parent / f".{rebuilt['path'].name}.tmp").exists()
    leftovers = [p for p in rebuilt["path"].parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_refuses_to_overwrite_a_folder_that_is_not_a_region(tmp_path: Path) -> None:
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a generated region"):
        build_region(precious, parcels=N_PARCELS)
    assert (precious / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="at least"):
        build_region(tmp_path / "x", parcels=5)


def test_a_failed_build_leaves_the_old_region_untouched(tmp_path: Path) -> None:
    old = tmp_path / "raw"
    old.mkdir()
    (old / MANIFEST).write_text('{"seed": 0}')

    def boom(stage: str, count: int) -> None:
        if stage == "tiles":
            msg = "interrupted"
            raise KeyboardInterrupt(msg)

    with pytest.raises(KeyboardInterrupt):
        build_region(old, parcels=N_PARCELS, progress=boom)
    assert (old / MANIFEST).read_text() == '{"seed": 0}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_parcel_ids_match_the_egib_pattern_and_are_unique(parcels, region) -> None:
    ids = parcels["ID_DZIALKI"]
    assert ids.str.fullmatch(ID_RE).all()
    assert ids.is_unique
    teryt = {name: code for code, name, _ in GMINY}
    unit = ids.str.slice(0, 8).str.replace("_", "")
    assert (unit == parcels["NAZWA_GMINY"].map(teryt)).all()
    assert parcels["KW"].dropna().str.fullmatch(r"[A-Z]{2}\d[A-Z]/\d{8}/\d").all()
    assert set(parcels["GRUPA_REJESTROWA"].unique()) >= {7, 10}


def test_gminy_partition_the_region_around_warsaw(region) -> None:
    gminy = _read(region[0], "gminy")
    expected = {code for code, _, _ in GMINY}
    assert len(expected & set(gminy["JPT_KOD_JE"])) >= 13
    assert gminy["JPT_KOD_JE"].str.fullmatch(r"\d{7}").all()
    warsaw = gminy.loc[gminy["JPT_KOD_JE"] == "1465011"].geometry.iloc[0]
    assert warsaw.contains(CENTRE)
    union = shapely.union_all(gminy.geometry.values)
    assert union.area == pytest.approx(gminy.area.sum(), rel=1e-6)  # no overlaps
    assert shapely.get_num_interior_rings(union) == 0  # no holes


def test_parcel_count_and_spread(parcels, region) -> None:
    assert abs(len(parcels) - N_PARCELS) <= 0.05 * N_PARCELS
    assert parcels["NAZWA_GMINY"].nunique() >= 20  # clusters in (nearly) every gmina
    assert parcels["NAZWA_OBREBU"].nunique() > 20


def test_parcel_sizes_span_plots_to_industrial_blocks(parcels) -> None:
    valid = parcels[parcels.geometry.is_valid]
    ha = valid.area / 10_000
    assert ha.min() < 0.2
    assert ha.max() > 10
    assert (ha < 0.2).mean() > 0.3


def test_registered_area_is_close_to_polygon_area(parcels) -> None:
    valid = parcels[parcels.geometry.is_valid]
    ratio = valid["POLE_EWIDENCYJNE"] / (valid.area / 10_000)
    assert ratio.between(0.95, 1.05).all()
    assert ratio.std() > 0.001  # registered area is a separate, legal figure


def test_only_documented_defects_are_invalid(parcels, region) -> None:
    _, manifest = region
    invalid = set(parcels.loc[~parcels.geometry.is_valid, "ID_DZIALKI"])
    assert invalid == set(manifest["defect_ids"]["bowtie"])
    dup = parcels[parcels["ID_DZIALKI"].isin(manifest["defect_ids"]["duplicate_vertex"])]
    for geom in dup.geometry.values:
        xy = shapely.get_coordinates(geom.exterior)
        assert (np.diff(xy, axis=0) == 0).all(axis=1).any()
    for key in ("gminy", "zoning", "plan_zones", "flood", "natura2000", "forest", "water"):
        layer = _read(region[0], key)
        assert layer.geometry.is_valid.all(), key


def test_parcels_do_not_overlap(parcels) -> None:
    geoms = parcels.geometry.values[parcels.geometry.is_valid.to_numpy()]
    a, b = shapely.STRtree(geoms).query(geoms, predicate="overlaps")
    assert len(a) == 0


def test_junctions_lie_on_motorways_and_expressways(region) -> None:
    junctions = _read(region[0], "junctions")
    roads = _read(region[0], "roads")
    assert len(junctions) >= 15
    fast = roads[roads["KLASADROGI"].isin(["A", "S"])]
    assert set(fast["NUMERDROGI"]) >= {"A2", "S2", "S7", "S8", "S17"}
    dist = shapely.distance(
        junctions.geometry.to_numpy()[:, None], fast.geometry.to_numpy()[None, :]
    )
    assert (dist.min(axis=1) < 1.0).all()
    assert set(junctions["DROGA"]) <= set(fast["NUMERDROGI"])
    assert junctions["NAZWA"].is_unique


def test_road_network_is_connected(region) -> None:
    roads = _read(region[0], "roads")
    geoms = roads.geometry.values
    ends = np.vstack(
        [shapely.get_coordinates(shapely.get_point(geoms, 0)),
         shapely.get_coordinates(shapely.get_point(geoms, -1))]
    )  # fmt: skip
    _, node = np.unique(np.round(ends, 3), axis=0, return_inverse=True)
    node = node.ravel()
    n = len(geoms)
    graph = coo_matrix((np.ones(n), (node[:n], node[n:])), shape=(node.max() + 1,) * 2)
    _, label = connected_components(graph, directed=False)
    largest = np.bincount(label[node[:n]]).max()
    assert largest / n > 0.95
    assert set(roads["KLASADROGI"]) >= {"A", "S", "GP", "G", "Z", "L", "D"}


def test_rail_stations_and_airports(region) -> None:
    root = region[0]
    rail, stations = _read(root, "rail"), _read(root, "stations")
    assert {"1", "3", "7", "8", "9", "447", "448"} <= set(rail["LINIA"])
    assert (stations["RODZAJ"] == STATION_FREIGHT).sum() >= 5
    dist = shapely.distance(
        stations.geometry.to_numpy()[:, None], rail.geometry.to_numpy()[None, :]
    )
    assert (dist.min(axis=1) < 1.0).all()
    airports = _read(root, "airports")
    assert set(airports["KOD_IATA"]) == {"WAW", "WMI"}


def test_zoning_covers_part_of_the_parcels(region, parcels) -> None:
    zoning = _read(region[0], "zoning")
    assert zoning["SYMBOL"].str.fullmatch(r"\d+[A-Z]+(/[A-Z]+)?").all()
    assert zoning["DATA_UCHWALENIA"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    classes = set(zoning["SYMBOL"].str.replace(r"^\d+", "", regex=True))
    assert {"MN", "KDD"} <= classes and classes & {"P", "P/U", "U/P"}
    pts = parcels.to_crs(2180).geometry.representative_point().values
    hit, _ = shapely.STRtree(zoning.geometry.values).query(pts, predicate="within")
    assert 0.45 < len(np.unique(hit)) / len(pts) < 0.8
    a, b = shapely.STRtree(zoning.geometry.values).query(zoning.geometry.values, "overlaps")
    overlap = shapely.area(
        shapely.intersection(zoning.geometry.values[a], zoning.geometry.values[b])
    )
    assert (overlap < 0.01).all()  # designations only touch (sub-mm float noise at most)


def test_plan_zones_tile_their_gminy(region) -> None:
    zones = _read(region[0], "plan_zones")
    gminy = _read(region[0], "gminy").set_index("JPT_KOD_JE")
    assert zones["TERYT"].nunique() >= 5
    assert zones["lokalnyId"].is_unique
    for teryt, grp in zones.groupby("TERYT"):
        area = gminy.geometry[teryt].area
        assert grp.area.sum() == pytest.approx(area, rel=1e-6)
        assert shapely.union_all(grp.geometry.values).area == pytest.approx(area, rel=1e-6)
        assert grp["oznaczenie"].is_unique
    needs = zones["symbol"].isin(["SW", "SJ", "SZ", "SU", "SH", "SP", "SR"])
    assert zones.loc[needs, "maksWysokoscZabudowy"].notna().all()


def test_utilities_reach_some_parcels_and_not_others(region, parcels) -> None:
    lines = _read(region[0], "utilities")
    assert set(lines["RODZAJSIECI"]) >= {"w", "k", "e", "g", "c", "t"}
    assert set(lines["STATUS"]) == {"i", "p"}
    assert set(lines.loc[lines["RODZAJSIECI"] == "e", "TYP"]) >= {"w", "s", "n"}
    water = lines[(lines["RODZAJSIECI"] == "w") & (lines["STATUS"] == "i")].geometry.values
    pts = parcels.to_crs(2180).geometry.representative_point().values
    _, dist = shapely.STRtree(water).query_nearest(pts, return_distance=True)
    assert np.quantile(dist, 0.25) < 100 and dist.max() > 2000
    devices = _read(region[0], "substations")
    assert (devices["RODZAJ"] == "GPZ").all()
    assert devices["MOC_MW"].between(2, 60).all()


def test_dem_has_relief_and_nodata(region) -> None:
    with rasterio.open(region[0] / RAW_BY_KEY["dem"].path) as src:
        assert src.nodata == -9999
        assert src.res == (50.0, 50.0)
        assert src.dtypes[0] == "float32"
        assert src.profile.get("compress", "").lower() == "deflate"
        heights = src.read(1, masked=True)
    assert heights.mask.any() and not heights.mask.all()
    assert heights.max() - heights.min() > 30
    assert 60 < heights.min() and heights.max() < 140


def test_one_powiat_utilities_come_as_gesut_2021_gml(region, rebuilt) -> None:
    """The GESUT GML holds exactly the generator's lines of powiat 1418, attribute for attribute."""
    import geopandas as gpd

    from omw_sites.etl.gesut import counts_per_network, read_gesut
    from omw_sites.layers import GESUT_GML_DIR

    root, manifest = region
    entry = manifest["layers"]["utilities_gml"]
    path = root / entry["path"]
    assert path.parent.name == GESUT_GML_DIR and entry["crs"] == "EPSG:2178"
    lines, devices = read_gesut(path)
    assert lines.source_format == "gesut-gml-2021" and lines.crs_in == "EPSG:2178"
    assert lines.read == lines.kept == entry["count"] > 50 and devices.read == 0
    # what the generator produced: the GPKG lines whose midpoint lies in powiat 1418,
    # found here with a spatial join (not the generator's own selection function)
    gpkg = _read(root, "utilities")
    gminy = _read(root, "gminy")
    mid = gpd.GeoDataFrame(
        geometry=gpkg.geometry.interpolate(0.5, normalized=True), crs=gpkg.crs
    ).sjoin(gminy[["JPT_KOD_JE", "geometry"]], predicate="within")
    ours = mid.index[mid["JPT_KOD_JE"].str.startswith("1418")]
    expected = gpkg.loc[np.sort(ours)].reset_index(drop=True)
    assert 0 < len(expected) < len(gpkg) and len(expected) == lines.kept
    got = lines.frame
    names = {"w": "water", "k": "sewer", "e": "power", "g": "gas", "c": "heat", "t": "telecom"}
    want_net = expected["RODZAJSIECI"].map(names)
    assert counts_per_network(got) == want_net.value_counts().sort_index().to_dict()
    assert len(set(got["network"])) >= 4
    assert (got["network"].to_numpy() == want_net.to_numpy()).all()
    status = expected["STATUS"].map({"i": "existing", "p": "planned"})
    assert (got["status"].to_numpy() == status.to_numpy()).all() and set(status) == {
        "existing",
        "planned",
    }
    assert (got["operator"].to_numpy() == expected["WLADAJACY"].to_numpy()).all()
    power = (expected["RODZAJSIECI"] == "e").to_numpy()
    assert (got["voltage"].to_numpy()[power] == expected["TYP"].to_numpy()[power]).all()
    diameter = expected["SREDNICA"].astype("float").to_numpy()
    assert np.allclose(got["diameter_mm"].to_numpy(dtype=float), diameter, equal_nan=True)
    # geometry: written in PL-2000 zone 7 to the centimetre, northing first, read back
    hausdorff = shapely.hausdorff_distance(got.geometry.values, expected.geometry.values)
    assert hausdorff.max() < 0.05
    # same seed, same file, byte for byte
    assert (rebuilt["path"] / entry["path"]).read_bytes() == path.read_bytes()


def test_raw_ingest_takes_the_powiat_utilities_from_the_gesut_gml(region) -> None:
    from omw_sites.etl import load_raw

    root, manifest = region
    entry = manifest["layers"]["utilities_gml"]
    raw = load_raw(root)
    lines = raw["utilities"]
    from_gml = lines[lines["source"] == "gesut-gml-2021"]
    assert len(from_gml) == entry["count"]
    assert raw.stats[Path(entry["path"]).name]["kept"] == entry["count"]
    # replaced, not doubled: the GPKG's lines of the powiat are gone
    assert len(lines) == manifest["layers"]["utilities"]["count"]
    assert set(lines.columns) >= {"network", "status", "voltage", "diameter_mm", "operator"}
