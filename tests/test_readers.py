"""Readers on the real fixtures: EGiB GML/GPKG/GeoJSON, APP, BDOT10k SHP, GESUT, NMT ASC."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from omw_sites.etl.bdot import read_bdot
from omw_sites.etl.detect import detect_format, ingest_paths
from omw_sites.etl.egib import parse_parcel_ids, read_egib_gml, read_egib_vector
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gesut import counts_per_network, read_gesut
from omw_sites.etl.planning_acts import ZONE_SYMBOLS, read_app
from omw_sites.etl.raster import read_asc


def test_mokotow_gpkg_ids_obreby_and_ownership(fixtures_dir):
    d = fixtures_dir / "egib_warszawa_mokotow"
    r = read_egib_vector(d / "mokotow_dzialki_epsg2180.gpkg", ownership_table=d / "ownership.csv")
    f = r.frame
    assert r.read == r.kept == 4413 and f.crs.to_epsg() == 2180
    assert f["obreb"].nunique() == 58
    assert int(f["ownership_known"].sum()) == 4024
    assert set(f["ownership"]) == {"municipal", "state", "private", "other"}
    assert (f["teryt"] == "1465058").any() and f["area_ha"].gt(0).all()


def test_mokotow_geojson_wfs_style_reprojected(fixtures_dir):
    d = fixtures_dir / "egib_warszawa_mokotow"
    r = read_egib_vector(d / "mokotow_dzialki_wfs_epsg4326.geojson")
    gpkg = read_egib_vector(d / "mokotow_dzialki_epsg2180.gpkg")
    assert r.kept == 4413 and r.crs_in == "OGC:CRS84" and r.frame["obreb"].nunique() == 58
    a = r.frame.set_index("parcel_id").geometry.centroid
    b = gpkg.frame.set_index("parcel_id").geometry.centroid
    assert a.distance(b.reindex(a.index)).median() < 1.0  # metres


def test_egib_2021_current_versions(fixtures_dir):
    r = read_egib_gml(fixtures_dir / "cgeo_2021/dane-EGiB.gml")
    assert r.source_format == "egib-gml-2021" and r.crs_in == "EPSG:2179"
    assert r.read == 47 and r.kept == 29 and r.frame["parcel_id"].is_unique
    assert (r.frame["version_start"] == "2024-11-14T11:31:36").sum() == 18
    # 2179 (zone 8, N-E order) → 2180: eastern Poland, easting ≈ 776 km
    x0, y0, x1, y1 = r.frame.total_bounds
    assert 770_000 < x0 < x1 < 780_000 and 420_000 < y0 < y1 < 430_000
    row = r.frame.set_index("parcel_id").loc["061304_5.0012.809/1"]
    assert row["registered_area_ha"] == pytest.approx(0.242) and row["land_use"] == "R"


def test_egib_2015_every_file_2177_and_area_difference(fixtures_dir):
    files = sorted((fixtures_dir / "egib_gml_2015").glob("*.gml"))
    assert len(files) == 10
    results = [read_egib_gml(p) for p in files]
    assert all(r.source_format == "egib-gml-2015" and r.crs_in == "EPSG:2177" for r in results)
    ids = [r.frame["parcel_id"].iloc[0] for r in results]
    assert all(i.startswith("221101_1.0001.") for i in ids)
    mismatch = {r.frame["parcel_id"].iloc[0]: r.frame["area_mismatch"].iloc[0] for r in results}
    assert mismatch["221101_1.0001.152/3"] and not mismatch["221101_1.0001.111/2"]
    rel = [
        abs(r.frame["area_ha"].iloc[0] / r.frame["registered_area_ha"].iloc[0] - 1) for r in results
    ]
    assert 0.05 < max(rel) < 0.2
    # 2177 is zone 6 (18° E); 221101 is powiat gdański: ≈ 18.7° E, 54.2° N in 2180
    x, y = results[0].frame.geometry.iloc[0].centroid.coords[0]
    assert 470_000 < x < 500_000 and 720_000 < y < 780_000


def test_parcel_id_reasons():
    import pandas as pd

    p = parse_parcel_ids(pd.Series(["146505_8.0231.14/14", "14650_8.0231.1", "146505_8.231.1", ""]))
    assert p["valid"].tolist() == [True, False, False, False]
    assert p.loc[0, "base_number"] == "14" and p.loc[0, "sub_number"] == "14"
    assert "WWPPGG_R" in p.loc[1, "reason"] and "obręb" in p.loc[2, "reason"]
    assert p.loc[3, "reason"] == "empty parcel ID"


def test_app_set1_zones_parameters_titles(fixtures_dir):
    d = read_app(fixtures_dir / "app_pog/set1/strefy/StrefaPlanistyczna.gml")
    z = d.zones.frame
    assert d.version == "2.0" and d.zones.crs_in == "EPSG:2176" and len(z) == 28
    # SOURCES.md says "all 13 symbols"; the file holds 12 (no SI zone)
    assert set(z["symbol"]) == ZONE_SYMBOLS - {"SI"}
    assert z.geometry.area.sum() / 1e6 == pytest.approx(94.57, abs=0.1)
    assert z["status"].eq("w opracowaniu").all() and z["status_code"].eq("elaboration").all()
    sp = z[z["symbol"] == "SP"].iloc[0]
    assert sp["name"] == "strefa gospodarcza" and sp["profiles"] == "P,K,ZP,ZD,I"
    params = ["max_intensity", "max_building_share_pct", "max_height_m"]
    needs = z["symbol"].isin(["SW", "SJ", "SZ", "SU", "SH", "SP", "SR"])
    assert z.loc[needs, [*params, "min_biologically_active_pct"]].notna().all().all()
    acts = read_app(fixtures_dir / "app_pog/set1/pog/AktPlanowaniaPrzestrzennego.gml").acts.frame
    a = acts.iloc[0]
    assert a["plan_type"] == "plan ogólny gminy" and a["teryt"] == "321202"
    assert a["area_km2"] == pytest.approx(94.57, abs=0.1) and a["in_force_from"] == "2024-12-04"


@pytest.mark.parametrize("folder", ["set3", "set4"])
def test_app_acts_2177(fixtures_dir, folder):
    r = read_app(fixtures_dir / f"app_pog/{folder}/pog/AktPlanowaniaPrzestrzennego.gml").acts
    assert r.kept == 1 and r.crs_in == "EPSG:2177" and r.frame.geometry.area.iloc[0] > 0


def test_app_1_0_namespace_is_read(fixtures_dir, tmp_path):
    text = (fixtures_dir / "app_pog/set3/pog/AktPlanowaniaPrzestrzennego.gml").read_text("utf-8")
    p = tmp_path / "akt10.gml"
    p.write_text(text.replace("/schemas/app/2.0", "/schemas/app/1.0"), "utf-8")
    d = read_app(p)
    assert d.version == "1.0" and d.acts.kept == 1 and d.acts.source_format == "app-gml-1.0"


def test_bdot_roads_torun_shp(fixtures_dir):
    r = read_bdot(fixtures_dir / "bdot_roads_torun/directedRoadsSample.shp")
    f = r.frame
    assert r.key == "roads" and r.kept == 1199 and r.crs_in == "EPSG:2180"
    assert f["road_class"].value_counts().to_dict() == {"I": 632, "L": 400, "Z": 147, "D": 20}
    assert set(f["road_class_name"]) == {"other", "local", "collector", "access"}
    assert set(f["management"]) <= set("KWPGZI") and len(f["surface"].unique()) > 1


def test_gesut_counts_per_network(fixtures_dir):
    lines, devices = read_gesut(fixtures_dir / "cgeo_2021/dane-GESUT.gml")
    assert lines.read == 85 and devices.read == 85 and lines.crs_in == "EPSG:2179"
    assert lines.kept == 77 and lines.extra["historical"] == 8
    assert counts_per_network(lines.frame) == {
        "heat": 2,
        "power": 15,
        "sewer": 12,
        "telecom": 28,
        "water": 20,
    }
    power = lines.frame[lines.frame["network"] == "power"]
    assert (
        {"low", "medium"}
        <= set(power["voltage_class"])
        <= {"", "low", "medium", "high", "extra high"}
    )
    assert lines.frame["status"].isin(["existing", "planned"]).all()
    assert lines.frame["diameter_mm"].notna().any() and lines.frame["operator"].ne("").mean() > 0.9


@pytest.mark.parametrize("corner", [True, False])
def test_asc_corner_and_centre_headers(tmp_path, corner):
    cs = 0.99936
    x = (
        "xllcorner 600000.0\nyllcorner 480000.0"
        if corner
        else (f"xllcenter {600000 + cs / 2}\nyllcenter {480000 + cs / 2}")
    )
    body = "1 2 3\n4 -9999 6\n"
    p = tmp_path / "nmt.asc"
    p.write_text(f"ncols 3\nnrows 2\n{x}\ncellsize {cs}\nNODATA_value -9999\n{body}")
    with pytest.raises(Exception, match="no CRS"):
        read_asc(p)
    dem = read_asc(p, crs="EPSG:2180")
    assert dem.transform.c == pytest.approx(600000.0) and dem.cell_size[0] == pytest.approx(cs)
    assert dem.bounds[3] == pytest.approx(480000.0 + 2 * cs)
    assert np.isnan(dem.heights[1, 1]) and dem.heights[0, 2] == 3


@pytest.mark.parametrize("origin", ["xllcorner 600000.0", "xllcenter 600000.5\nyllcorner 0"])
def test_asc_header_without_its_y_origin_is_refused(tmp_path, origin):
    # was a KeyError from the reader instead of the header rule naming what is missing
    p = tmp_path / "nmt.asc"
    p.write_text(f"ncols 2\nnrows 1\n{origin}\ncellsize 1\n1 2\n")
    with pytest.raises(IngestError, match="ASC header needs") as err:
        read_asc(p, crs="EPSG:2180")
    assert err.value.rule == "ASC header"


def test_detect_and_ingest_fixtures(fixtures_dir):
    assert detect_format(fixtures_dir / "cgeo_2021/dane-GESUT.gml") == "gesut-gml-2021"
    assert detect_format(fixtures_dir / "cgeo_2021/dane-EGiB.gml") == "egib-gml-2021"
    assert detect_format(fixtures_dir / "app_pog/set2/strefy/StrefaPlanistyczna_OK.gml") == (
        "app-gml-2.0"
    )
    results = ingest_paths([fixtures_dir / "egib_gml_2015", fixtures_dir / "bdot_roads_torun"])
    assert [r.key for r in results].count("parcels") == 10 and results[-1].key == "roads"


@pytest.mark.parametrize("name", ["cgeo_2021/dane-EGiB.gml", "egib_gml_2015/*.gml"])
def test_batched_polygons_equal_the_per_feature_geometry(fixtures_dir, name):
    """PolygonBatch (one parse, one reprojection) gives what geometry() + to_work_crs give."""
    from pathlib import Path

    from omw_sites.etl.egib import egib_schema
    from omw_sites.etl.gml import (
        PolygonBatch,
        geometry,
        iter_features,
        require_namespace,
        to_work_crs,
    )

    for path in sorted(fixtures_dir.glob(name)):
        ns = require_namespace(Path(path), egib_schema, "EGiB")
        batch, plain, srs = PolygonBatch(), [], []
        for i, el in enumerate(iter_features(path, ns, ["EGB_DzialkaEwidencyjna"])):
            geom_el = el.find(f"{{{ns}}}geometria")
            assert batch.add(i, geom_el[0])  # the real exports are plain polygons
            g, s = geometry(geom_el)
            plain.append(g)
            srs.append(s)
        fast = np.empty(len(plain), dtype=object)
        done = np.zeros(len(plain), dtype=bool)
        batch.build(fast, done)
        slow, _ = to_work_crs(path, "p", plain, srs)
        assert done.all() and len(fast) > 0
        assert shapely.equals_exact(fast, slow, tolerance=1e-6).all()
