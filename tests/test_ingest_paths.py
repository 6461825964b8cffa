"""`omw-sites ingest` on the paths the reader tests do not reach: BDOT10k GML and 2021
GPKG, NMT GeoTIFF and both ASC headers, EGiB ownership through JRG, non-UTF-8 text."""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from pyproj import CRS
from rasterio.transform import from_origin
from typer.testing import CliRunner

from omw_sites.cli import app
from omw_sites.etl.raster import read_dem

BDOT_2021 = "urn:gugik:specyfikacje:gmlas:bazaDanychObiektowTopograficznych10k:2.0"
GML = "http://www.opengis.net/gml/3.2"
TORUN_CLASSES = {"I": 632, "L": 400, "Z": 147, "D": 20}
POLISH = "ąęłńóśźż ĄĘŁŃÓŚŹŻ"


def ingest(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["ingest", *map(str, args)])
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def torun(fixtures_dir) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(fixtures_dir / "bdot_roads_torun/directedRoadsSample.shp")


def _roads_out(out) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(out, layer="roads")


# ----------------------------------------------------------------------------- BDOT10k


def test_bdot_roads_as_2021_gml(tmp_path, torun):
    """Toruń's roads written as BDOT10k 2021 GML (OT_SKDR_L, EPSG:2180 northing first)."""
    lines = torun.set_crs(2180, allow_override=True)
    members = []
    for i, row in enumerate(lines.itertuples()):
        xy = shapely.get_coordinates(row.geometry)
        pos = " ".join(f"{y:.3f} {x:.3f}" for x, y in xy)
        members.append(
            f'<gml:featureMember><bdot:OT_SKDR_L gml:id="r{i}">'
            f'<bdot:geometria><gml:LineString gml:id="g{i}" '
            f'srsName="urn:ogc:def:crs:EPSG::2180"><gml:posList>{pos}</gml:posList>'
            f"</gml:LineString></bdot:geometria>"
            f"<bdot:katZarzadzania>{row.katZarzadz}</bdot:katZarzadzania>"
            f"<bdot:klasaDrogi>{row.klasaDrogi}</bdot:klasaDrogi>"
            f"<bdot:materialNawierzchni>{row.materialNa}</bdot:materialNawierzchni>"
            f"</bdot:OT_SKDR_L></gml:featureMember>"
        )
    path = tmp_path / "PL.PZGiK.994.0463__OT_SKDR_L.xml"
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<gml:FeatureCollection gml:id="c" '
        f'xmlns:gml="{GML}" xmlns:bdot="{BDOT_2021}">\n' + "\n".join(members) + "\n"
        "</gml:FeatureCollection>\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.gpkg"
    code, text = ingest(path, "--out", out)
    assert code == 0, text
    assert "bdot10k-gml-2.0" in text and "OT_SKDR_L" in text and "1,199" in text
    roads = _roads_out(out)
    assert roads["road_class"].value_counts().to_dict() == TORUN_CLASSES
    assert (roads["management"].to_numpy() == lines["katZarzadz"].to_numpy()).all()
    # easting first again, to the millimetre
    d = shapely.hausdorff_distance(roads.geometry.values, lines.geometry.values)
    assert d.max() < 0.002


def test_bdot_roads_as_gpkg_with_upper_case_2021_columns(tmp_path, torun):
    gpkg = torun.rename(
        columns={
            "klasaDrogi": "KLASADROGI",
            "katZarzadz": "KATZARZADZANIA",
            "materialNa": "MATERIALNAWIERZCHNI",
        }
    )[["KLASADROGI", "KATZARZADZANIA", "MATERIALNAWIERZCHNI", "geometry"]]
    gpkg = gpkg.to_crs(2178)  # PL-2000 zone 7, as a powiat would deliver it
    path = tmp_path / "bdot10k.gpkg"
    pyogrio.write_dataframe(gpkg, path, layer="OT_SKDR_L", driver="GPKG")
    out = tmp_path / "out.gpkg"
    code, text = ingest(path, "--out", out)
    assert code == 0, text
    assert "EPSG:2178" in text and "OT_SKDR_L → roads" in text
    roads = _roads_out(out)
    assert len(roads) == 1199 and roads.crs.to_epsg() == 2180
    assert roads["road_class"].value_counts().to_dict() == TORUN_CLASSES
    assert set(roads["road_class_name"]) == {"other", "local", "collector", "access"}
    assert (roads["surface"].to_numpy() == torun["materialNa"].to_numpy()).all()
    back = shapely.hausdorff_distance(roads.geometry.values, torun.geometry.values)
    assert back.max() < 0.01  # 2180 → 2178 → 2180


# ----------------------------------------------------------------------------- NMT


def _grid() -> np.ndarray:
    rng = np.random.default_rng(3)
    heights = np.round(90 + rng.random((40, 60)) * 30, 2)
    heights[5, 7] = -9999.0
    return heights


def test_nmt_geotiff(tmp_path):
    heights = _grid()
    path = tmp_path / "nmt.tif"
    profile = dict(
        driver="GTiff", width=60, height=40, count=1, dtype="float32", nodata=-9999.0,
        transform=from_origin(637000.0, 487000.0, 1.0, 1.0),
    )  # fmt: skip
    with rasterio.open(path, "w", crs="EPSG:2180", **profile) as dst:
        dst.write(heights.astype("float32"), 1)
    code, text = ingest(path)
    assert code == 0, text
    assert "nmt-geotiff" in text and "EPSG:2180" in text and "2,400" in text
    dem = read_dem(path)
    assert np.isnan(dem.heights[5, 7]) and np.isnan(dem.heights).sum() == 1
    assert np.allclose(dem.heights[~np.isnan(dem.heights)], heights[heights != -9999], atol=1e-3)
    assert dem.bounds == pytest.approx((637000.0, 486960.0, 637060.0, 487000.0))
    # the same raster without a CRS: refused unless the user names it
    bare = tmp_path / "bare.tif"
    with rasterio.open(bare, "w", **profile) as dst:
        dst.write(heights.astype("float32"), 1)
    code, text = ingest(bare)
    assert code == 2 and "bare.tif" in text and "no CRS" in text
    code, text = ingest(bare, "--crs", "EPSG:2180")
    assert code == 0, text


@pytest.mark.parametrize("header", ["corner", "center"])
def test_nmt_asc_corner_and_center(tmp_path, header):
    heights, cs = _grid(), 0.99936
    x0, y0 = 637000.0, 486960.0
    if header == "corner":
        origin = f"xllcorner {x0}\nyllcorner {y0}"
    else:
        origin = f"xllcenter {x0 + cs / 2}\nyllcenter {y0 + cs / 2}"
    rows = "\n".join(" ".join(f"{v:g}" for v in r) for r in heights)
    path = tmp_path / f"nmt_{header}.asc"
    path.write_text(
        f"ncols 60\nnrows 40\n{origin}\ncellsize {cs}\nNODATA_value -9999\n{rows}\n", "ascii"
    )
    path.with_suffix(".prj").write_text(CRS.from_epsg(2180).to_wkt("WKT1_ESRI"), "ascii")
    code, text = ingest(path)
    assert code == 0, text
    assert "nmt-asc" in text and "EPSG:2180" in text and "2,400" in text
    dem = read_dem(path)
    assert dem.bounds == pytest.approx((x0, y0, x0 + 60 * cs, y0 + 40 * cs))
    assert np.isnan(dem.heights[5, 7]) and dem.heights[0, 0] == heights[0, 0]


# ----------------------------------------------------------------------------- ownership


def test_egib_gml_ownership_through_jrg(tmp_path, fixtures_dir):
    """The real 2021 export links parcels to registration units (JRG2) but holds none, so
    ownership is unknown; a file that carries the unit gives the group's class."""
    src = (fixtures_dir / "cgeo_2021/dane-EGiB.gml").read_text("utf-8")
    assert "EGB_JednostkaRejestrowaGruntow" not in src and "grupaRejestrowa" not in src
    out = tmp_path / "real.gpkg"
    code, text = ingest(fixtures_dir / "cgeo_2021/dane-EGiB.gml", "--out", out)
    assert code == 0, text
    parcels = pyogrio.read_dataframe(out, layer="parcels")
    assert len(parcels) == 29 and (parcels["ownership"] == "other").all()
    # the same export with its registration unit (gmina land, group 4) added
    unit = (
        '<gml:featureMember><egb:EGB_JednostkaRejestrowaGruntow gml:id="JRG-G4">'
        "<egb:idIIP><egb:EGB_IdentyfikatorIIP><egb:lokalnyId>JRG-G4</egb:lokalnyId>"
        "</egb:EGB_IdentyfikatorIIP></egb:idIIP>"
        "<egb:grupaRejestrowa>4</egb:grupaRejestrowa>"
        "</egb:EGB_JednostkaRejestrowaGruntow></gml:featureMember>\n"
    )
    target = "061304_5.0012.809/1"
    head, sep, tail = src.partition(f"<egb:idDzialki>{target}</egb:idDzialki>")
    assert sep  # link every version of one parcel: its JRG2 follows the ID
    tail = tail.replace("<egb:JRG2 />", '<egb:JRG2 xlink:href="#JRG-G4" />', 1)
    text_with_unit = (head + sep + tail).replace(
        "</gml:FeatureCollection>", unit + "</gml:FeatureCollection>"
    )
    path = tmp_path / "with_unit.gml"
    path.write_text(text_with_unit, "utf-8")
    out2 = tmp_path / "with_unit.gpkg"
    code, text = ingest(path, "--out", out2)
    assert code == 0, text
    own = pyogrio.read_dataframe(out2, layer="parcels").set_index("parcel_id")["ownership"]
    assert own[target] == "municipal" and (own.drop(target) == "other").all()


# ----------------------------------------------------------------------------- encodings


def _parcels_with_polish_names() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "ID_DZIALKI": ["146505_8.0231.1", "146505_8.0231.2", "146505_8.0231.3"],
            "NAZWA_OBREBU": ["Służew", POLISH, "Sadyba"],
        },
        geometry=[shapely.box(637_000 + x, 486_000, 637_010 + x, 486_010) for x in (0, 20, 40)],
        crs=2180,
    )


@pytest.mark.parametrize("cpg", ["1250", "CP1250", "UTF-8"])
def test_shp_with_cpg_keeps_polish_letters(tmp_path, cpg):
    path = tmp_path / "dzialki.shp"
    encoding = "utf-8" if cpg == "UTF-8" else "cp1250"
    pyogrio.write_dataframe(_parcels_with_polish_names(), path, encoding=encoding)
    path.with_suffix(".cpg").write_text(cpg, "ascii")
    out = tmp_path / "out.gpkg"
    code, text = ingest(path, "--out", out)
    assert code == 0, text
    names = pyogrio.read_dataframe(out, layer="parcels")["obreb_name"].tolist()
    assert names == ["Służew", POLISH, "Sadyba"]


def test_shp_without_cpg_utf8_is_read_cp1250_is_refused(tmp_path):
    utf8 = tmp_path / "utf8" / "dzialki.shp"
    utf8.parent.mkdir()
    pyogrio.write_dataframe(_parcels_with_polish_names(), utf8, encoding="utf-8")
    utf8.with_suffix(".cpg").unlink()
    out = tmp_path / "utf8.gpkg"
    code, text = ingest(utf8, "--out", out)
    assert code == 0, text
    names = pyogrio.read_dataframe(out, layer="parcels")["obreb_name"].tolist()
    assert names == ["Służew", POLISH, "Sadyba"]

    legacy = tmp_path / "cp1250" / "dzialki.shp"
    legacy.parent.mkdir()
    pyogrio.write_dataframe(_parcels_with_polish_names(), legacy, encoding="cp1250")
    legacy.with_suffix(".cpg").unlink()
    out = tmp_path / "cp1250.gpkg"
    code, text = ingest(legacy, "--out", out)
    flat = " ".join(text.split())
    assert code == 2 and not out.exists()
    assert "dzialki.shp" in flat and "record row 0" in flat and "'NAZWA_OBRE'" in flat
    assert "[rule: text in the declared encoding]" in flat and ".cpg" in flat


def test_gpkg_with_non_utf8_text_is_refused(tmp_path):
    path = tmp_path / "dzialki.gpkg"
    pyogrio.write_dataframe(_parcels_with_polish_names(), path, layer="dzialki")
    with sqlite3.connect(path) as con:  # a writer that stored cp1250 bytes as TEXT
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            con.execute(f'DROP TRIGGER "{name}"')
        bad = POLISH.encode("cp1250")
        con.execute("UPDATE dzialki SET NAZWA_OBREBU = CAST(? AS TEXT) WHERE fid = 2", (bad,))
    out = tmp_path / "out.gpkg"
    code, text = ingest(path, "--out", out)
    flat = " ".join(text.split())
    assert code == 2 and not out.exists()
    assert "dzialki.gpkg" in flat and "record FID 2" in flat and "NAZWA_OBREBU" in flat
    assert "not valid UTF-8" in flat and "[rule: text in the declared encoding]" in flat


def test_gml_declared_windows_1250_is_read(tmp_path, fixtures_dir):
    text = (fixtures_dir / "cgeo_2021/dane-GESUT.gml").read_text("utf-8")
    assert "WŁAŚCICIEL DZIAŁKI" in text
    text = text.replace('encoding="UTF-8"', 'encoding="windows-1250"', 1)
    path = tmp_path / "gesut_cp1250.gml"
    path.write_bytes(text.encode("cp1250"))
    out = tmp_path / "out.gpkg"
    code, output = ingest(path, "--out", out)
    assert code == 0, output
    operators = set(pyogrio.read_dataframe(out, layer="utilities")["operator"])
    assert "WŁAŚCICIEL DZIAŁKI" in operators
    assert any("MIEDŹ" in o for o in operators)


# ----------------------------------------------------------------- the raw folder itself
def test_ingest_reads_a_whole_raw_folder(tmp_path, demo_raw):
    """`omw-sites ingest RAW` reads every file of the raw layout: the official formats with
    their own readers, the layout's own files (gminy, transport points, GESUT GPKG, flood,
    BDOT10k layers) exactly as `run` reads them."""
    from omw_sites.layers import RAW_LAYERS

    out = tmp_path / "ingested.gpkg"
    code, text = ingest(demo_raw, "--out", out)
    assert code == 0, text
    written = {str(name) for name, _ in pyogrio.list_layers(out)}
    vector_keys = {spec.key for spec in RAW_LAYERS if spec.geom != "raster"}
    missing = vector_keys - written
    assert not missing, f"raw layers not ingested: {missing}"
    lines = pyogrio.read_info(demo_raw / "gesut" / "gesut.gpkg", layer="przewody")["features"]
    assert "raw-layout" in text and f"{lines:,}" in text
