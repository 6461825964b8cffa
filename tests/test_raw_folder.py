"""A raw folder as the official sources hand it out (issue 16, item 1): files told by
their content wherever they lie, zips opened, a report and a manifest on every file.

Small files are written here in the official layouts (a PRG shapefile named
``A03_Granice_gmin.shp``, a powiat's BDOT10k package of GML files named
``PL.PZGiK.<n>.<TERYT4>__OT_<CLASS>_<geom>.xml``, per-class GPKG and SHP, an OSM
extract); the real fixtures are read in place or zipped into ``tmp_path``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from typer.testing import CliRunner

from omw_sites.cli import app
from omw_sites.etl import load_raw
from omw_sites.etl.detect import detect_format, layer_key

BDOT_2021 = "urn:gugik:specyfikacje:gmlas:bazaDanychObiektowTopograficznych10k:2.0"
GML = "http://www.opengis.net/gml/3.2"
TORUN_CLASSES = {"I": 632, "L": 400, "Z": 147, "D": 20}
MOKOTOW = "egib_warszawa_mokotow/mokotow_dzialki_epsg2180.gpkg"
OWNERSHIP = "egib_warszawa_mokotow/ownership.csv"
BDOT_ZIP_CLASSES = ("SKDR", "KUKO", "PTTR")


def ingest(*args: object) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["ingest", *map(str, args)])
    return res.exit_code, res.output


def _zip(path: Path, members: dict[str, Path | bytes]) -> Path:
    """A zip at ``path`` holding ``members`` (name → file or bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, src in members.items():
            if isinstance(src, bytes):
                z.writestr(name, src)
            else:
                z.write(src, name)
    return path


def _shp_members(folder: Path, stem: str, prefix: str = "") -> dict[str, Path | bytes]:
    return {f"{prefix}{f.name}": f for f in sorted(folder.glob(f"{stem}.*"))}


@pytest.fixture(scope="module")
def mokotow(fixtures_dir) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(fixtures_dir / MOKOTOW)


@pytest.fixture(scope="module")
def torun_here(fixtures_dir, mokotow) -> gpd.GeoDataFrame:
    """Toruń's real BDOT10k roads moved under the Mokotów parcels (EPSG:2180)."""
    roads = pyogrio.read_dataframe(fixtures_dir / "bdot_roads_torun/directedRoadsSample.shp")
    roads = roads.set_crs(2180, allow_override=True)
    dx, dy = mokotow.total_bounds[:2] - roads.total_bounds[:2]
    roads["geometry"] = roads.geometry.translate(dx, dy)
    return roads


def _egib_zip(fixtures_dir, raw: Path) -> Path:
    """The Mokotów parcels and their ownership table, zipped as one download."""
    return _zip(
        raw / "EGiB_Mokotow.zip",
        {
            "dane/dzialki.gpkg": fixtures_dir / MOKOTOW,
            "dane/wlasnosc.csv": fixtures_dir / OWNERSHIP,
        },
    )


# ----------------------------------------------------------------------------- PRG


def _prg_shapefile(folder: Path, parcels: gpd.GeoDataFrame) -> Path:
    """PRG gminy as GUGiK ships them: ``A03_Granice_gmin.shp``, JPT columns, one gmina
    (Mokotów, TERYT 1465058) and, mixed in, its powiat (1465)."""
    x0, y0, x1, y1 = parcels.total_bounds
    frame = gpd.GeoDataFrame(
        {
            "JPT_KOD_JE": ["1465058", "1465"],
            "JPT_NAZWA_": ["Mokotów", "powiat Warszawa"],
            "JPT_SJR_KO": ["GM", "POW"],
        },
        geometry=[
            shapely.box(x0 - 50, y0 - 50, x1 + 50, y1 + 50),
            shapely.box(x0 - 9000, y0 - 9000, x1 + 9000, y1 + 9000),
        ],
        crs=2180,
    )
    folder.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(frame, folder / "A03_Granice_gmin.shp", encoding="UTF-8")
    return folder / "A03_Granice_gmin.shp"


def test_prg_shapefile_in_a_zip_keeps_the_gminy(fixtures_dir, mokotow, tmp_path):
    """A PRG download (zip of SHP files) and the EGiB parcels zipped with their ownership
    table: the parcels and gminy are found by content; the powiat unit is named and left
    out; the ownership table found inside the zip gives the parcels' owners."""
    shp = _prg_shapefile(tmp_path / "prg", mokotow)
    raw = tmp_path / "raw"
    _zip(raw / "PRG_jednostki_administracyjne.zip", _shp_members(shp.parent, shp.stem, "PRG/"))
    _egib_zip(fixtures_dir, raw)
    data = load_raw(raw)
    gminy = data["gminy"]
    assert gminy["teryt"].tolist() == ["1465058"] and gminy["name"].tolist() == ["Mokotów"]
    member = "PRG_jednostki_administracyjne.zip/PRG/A03_Granice_gmin.shp"
    assert (
        f"{member}: 1 powiat unit(s) ('1465') that are not gminy (TERYT of 7 digits) left out; "
        "1 gminy kept" in data.notes
    ), data.notes
    parcels = data["parcels"].set_index("parcel_id")
    assert len(parcels) == 4413
    # ownership.csv: 146505_8.0126.120 miejska (city), as listed in the real table
    assert parcels.loc["146505_8.0126.120", "ownership"] == "municipal"
    assert parcels["ownership"].value_counts()["other"] == 4413 - 4024
    files = {f["file"]: f for f in data.files}
    assert files[member]["layers"][0]["key"] == "gminy"
    assert files["EGiB_Mokotow.zip/dane/wlasnosc.csv"]["format"] == "ownership-csv"
    assert files["EGiB_Mokotow.zip/dane/dzialki.gpkg"]["layers"][0]["kept"] == 4413


@pytest.mark.parametrize("form", ["gml", "gpkg"])
def test_prg_as_gml_or_gpkg(fixtures_dir, mokotow, tmp_path, form):
    """PRG boundaries as GML (plain attributes, read with GDAL, no ``.gfs`` left in the
    folder) or GeoPackage: the same gmina, told by its JPT columns."""
    shp = _prg_shapefile(tmp_path / "prg", mokotow)
    frame = pyogrio.read_dataframe(shp)
    raw = tmp_path / "raw"
    (raw / "granice").mkdir(parents=True)
    driver = {"gml": "GML", "gpkg": "GPKG"}[form]
    pyogrio.write_dataframe(frame, raw / "granice" / f"A03_Granice_gmin.{form}", driver=driver)
    for xsd in (raw / "granice").glob("*.xsd"):  # GDAL's schema: a download has none
        xsd.unlink()
    _egib_zip(fixtures_dir, raw)
    before = sorted(p.name for p in raw.rglob("*"))
    data = load_raw(raw)
    assert data["gminy"]["teryt"].tolist() == ["1465058"]
    assert sorted(p.name for p in raw.rglob("*")) == before
    (prg,) = [f for f in data.files if f["file"].startswith("granice/")]
    assert prg["layers"][0]["key"] == "gminy" and prg["layers"][0]["crs"] == "EPSG:2180"


def test_layer_key_tells_layers_by_columns_and_names():
    assert layer_key("A03_Granice_gmin.shp", "A03_Granice_gmin", ["JPT_KOD_JE"], "Polygon") == (
        "gminy",
        "",
    )
    assert layer_key("x.gpkg", "plany", ["fun_symb"], "MultiPolygon")[0] == "zoning"
    assert layer_key("a.gpkg", "PL.PZGiK.994.BDOT10k.1465_OT_SKDR_L", [], "LineString")[0] == (
        "roads"
    )
    assert layer_key("OSZP_Q1.shp", "OSZP_Q1", ["NAZWA"], "Polygon")[0] == "flood"
    key, why = layer_key("b.gpkg", "OT_PTTR_A", ["X_KOD"], "Polygon")
    assert key is None and why == "BDOT10k class OT_PTTR_A is not used"
    assert layer_key("b.gpkg", "OT_BUBD_A", ["X_KOD"], "Polygon")[0] == "buildings"
    key, why = layer_key("c.gpkg", "cokolwiek", ["A", "B"], "Point")
    assert key is None and "cannot tell what it holds from its columns (A, B)" in why


# ----------------------------------------------------------------------------- BDOT10k


def _bdot_gml(cls: str, frame: gpd.GeoDataFrame, attrs: dict[str, str]) -> bytes:
    """One BDOT10k 2021 GML file of class ``cls`` (EPSG:2180, northing first), the
    attributes ``attrs`` (GML name → column)."""
    members = []
    for i, row in enumerate(frame.itertuples()):
        g = row.geometry
        if g.geom_type == "Polygon":
            pos = " ".join(f"{y:.3f} {x:.3f}" for x, y in shapely.get_coordinates(g.exterior))
            geom = (
                f'<gml:Polygon gml:id="g{i}" srsName="urn:ogc:def:crs:EPSG::2180"><gml:exterior>'
                f"<gml:LinearRing><gml:posList>{pos}</gml:posList></gml:LinearRing>"
                "</gml:exterior></gml:Polygon>"
            )
        else:
            pos = " ".join(f"{y:.3f} {x:.3f}" for x, y in shapely.get_coordinates(g))
            geom = (
                f'<gml:LineString gml:id="g{i}" srsName="urn:ogc:def:crs:EPSG::2180">'
                f"<gml:posList>{pos}</gml:posList></gml:LineString>"
            )
        props = "".join(f"<bdot:{k}>{getattr(row, c)}</bdot:{k}>" for k, c in attrs.items())
        members.append(
            f'<gml:featureMember><bdot:{cls} gml:id="{cls}.{i}">'
            f"<bdot:geometria>{geom}</bdot:geometria>{props}</bdot:{cls}></gml:featureMember>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<gml:FeatureCollection gml:id="c" '
        f'xmlns:gml="{GML}" xmlns:bdot="{BDOT_2021}">\n'
        + "\n".join(members)
        + "\n</gml:FeatureCollection>\n"
    ).encode()


def _station_complex(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    x, y = shapely.get_coordinates(parcels.geometry.iloc[0].centroid)[0]
    return gpd.GeoDataFrame(
        {"X_KOD": ["KUKO06"], "NAZWA": ["Warszawa Służewiec"]},
        geometry=[shapely.box(x - 60, y - 40, x + 60, y + 40)],
        crs=2180,
    )


def _bdot_package(raw: Path, roads: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame) -> Path:
    """A powiat's BDOT10k package as GUGiK ships it: one zip of GML files, one per class
    (roads, transport complexes, buildings), plus an ISO metadata file."""
    complexes = _station_complex(parcels)
    roads_attrs = {
        "katZarzadzania": "katZarzadz",
        "klasaDrogi": "klasaDrogi",
        "materialNawierzchni": "materialNa",
    }
    return _zip(
        raw / "1465_GML.zip",
        {
            "PL.PZGiK.994.1465__OT_SKDR_L.xml": _bdot_gml("OT_SKDR_L", roads, roads_attrs),
            "PL.PZGiK.994.1465__OT_KUKO_A.xml": _bdot_gml(
                "OT_KUKO_A", complexes, {"x_kod": "X_KOD", "nazwa": "NAZWA"}
            ),
            "PL.PZGiK.994.1465__OT_PTTR_A.xml": _bdot_gml(
                "OT_PTTR_A", complexes, {"x_kod": "X_KOD"}
            ),
            "PL.PZGiK.994.1465__OT_BUBD_A.xml": _bdot_gml(
                "OT_BUBD_A", complexes, {"x_kod": "X_KOD"}
            ),
            "PL.PZGiK.994.1465__metadane.xml": (
                b'<?xml version="1.0"?><gmd:MD_Metadata '
                b'xmlns:gmd="http://www.isotc211.org/2005/gmd"/>'
            ),
        },
    )


def test_bdot10k_package_as_a_zip_of_gml_files(fixtures_dir, mokotow, torun_here, tmp_path):
    """Roads from OT_SKDR_L, a station derived from the transport complex OT_KUKO_A,
    buildings from OT_BUBD_A; grassland and the metadata file listed as not used, and
    why."""
    raw = tmp_path / "raw"
    _egib_zip(fixtures_dir, raw)
    _bdot_package(raw, torun_here, mokotow)
    data = load_raw(raw)
    roads = data["roads"]
    assert roads["road_class"].value_counts().to_dict() == TORUN_CLASSES
    d = shapely.hausdorff_distance(roads.geometry.to_numpy(), torun_here.geometry.to_numpy())
    assert d.max() < 0.002
    stations = data["stations"]
    assert stations["name"].tolist() == ["Warszawa Służewiec"]
    assert stations["kind"].tolist() == ["passenger"]
    assert any(n.startswith("stations derived from BDOT10k rail station") for n in data.notes)
    files = {f["file"].split("/")[-1]: f for f in data.files}
    assert files["PL.PZGiK.994.1465__OT_PTTR_A.xml"] == {
        "file": "1465_GML.zip/PL.PZGiK.994.1465__OT_PTTR_A.xml",
        "format": "bdot10k-gml",
        "status": "not used",
        "why": "BDOT10k class OT_PTTR_A is not used",
        "layers": [],
    }
    # building footprints (OT_BUBD_A) are read: brownfield and built-up share
    assert len(data["buildings"]) == 1
    assert files["PL.PZGiK.994.1465__OT_BUBD_A.xml"]["status"] == "used"
    meta = files["PL.PZGiK.994.1465__metadane.xml"]
    assert meta["status"] == "not used" and "unknown GML namespace" in meta["why"]
    assert files["PL.PZGiK.994.1465__OT_SKDR_L.xml"]["layers"][0]["kept"] == 1199
    # no A/S road: no junction can be derived, and the reason says what would give one
    assert "junctions" in data.absent and "OpenStreetMap" in data.absent["junctions"]


@pytest.mark.parametrize("form", ["gpkg", "shp"])
def test_bdot10k_per_class_gpkg_and_shp_give_the_same_roads(
    fixtures_dir, mokotow, torun_here, tmp_path, form
):
    """The per-class downloads (``PL.PZGiK.994.BDOT10k.1465_OT_SKDR_L.gpkg`` / ``.shp``,
    SHP columns cut to 10 characters) give the roads the GML package gives."""
    raw = tmp_path / "raw"
    _egib_zip(fixtures_dir, raw)
    stem = "PL.PZGiK.994.BDOT10k.1465_OT_SKDR_L"
    (raw / "bdot").mkdir()
    if form == "gpkg":
        full = torun_here.rename(
            columns={"katZarzadz": "katZarzadzania", "materialNa": "materialNawierzchni"}
        )
        pyogrio.write_dataframe(full.to_crs(2178), raw / "bdot" / f"{stem}.gpkg", layer=stem)
    else:
        pyogrio.write_dataframe(torun_here, raw / "bdot" / f"{stem}.shp")
    gml_raw = tmp_path / "gml"
    _egib_zip(fixtures_dir, gml_raw)
    _bdot_package(gml_raw, torun_here, mokotow)
    got, want = load_raw(raw)["roads"], load_raw(gml_raw)["roads"]
    for col in ("road_class", "management"):
        assert got[col].tolist() == want[col].tolist(), col
    assert set(got["management"]) - {""}, "katZarzadz expanded to KATZARZADZANIA"
    d = shapely.hausdorff_distance(got.geometry.to_numpy(), want.geometry.to_numpy())
    assert d.max() < 0.01


# ----------------------------------------------------------------------------- OSM


def _osm(path: Path, parcels: gpd.GeoDataFrame) -> Path:
    """A tiny OSM XML extract around the parcels: an A2 motorway with a junction, an S8
    expressway (trunk + motorroad), a residential street, a footway (not a road), a rail
    line with a station, and an airport with an IATA code."""
    to_wgs = Transformer.from_crs(2180, 4326, always_xy=True)
    x0, y0, x1, y1 = parcels.total_bounds

    def node(i: int, x: float, y: float, tags: str = "") -> str:
        lon, lat = to_wgs.transform(x, y)
        return f'<node id="{i}" lat="{lat:.7f}" lon="{lon:.7f}">{tags}</node>'

    def way(i: int, nodes: list[int], tags: dict[str, str]) -> str:
        nds = "".join(f'<nd ref="{n}"/>' for n in nodes)
        return f'<way id="{i}">{nds}{"".join(_tag(k, v) for k, v in tags.items())}</way>'

    junction = _tag("highway", "motorway_junction") + _tag("name", "Węzeł Mokotów")
    station = _tag("railway", "station") + _tag("name", "Warszawa Służewiec")
    nodes = [
        node(1, x0 - 3000, y0 - 500),
        node(2, x0 - 1000, y0 - 500),
        node(3, x0, y0 - 500, junction + _tag("ref", "7")),
        node(4, x0, y1),
        node(5, x1, y1),
        node(6, x1 + 300, y1),
        node(7, x0 - 2000, y0 + 400),
        node(8, x0 - 1000, y0 + 400, station),
        node(9, x1, y0 + 400),
        *(node(10 + i, x, y) for i, (x, y) in enumerate(
            [(x0 - 5000, y0), (x0 - 3000, y0), (x0 - 3000, y0 + 2000), (x0 - 5000, y0 + 2000)]
        )),
    ]  # fmt: skip
    ways = [
        way(100, [1, 2, 3], {"highway": "motorway", "ref": "A2"}),
        way(101, [3, 4], {"highway": "trunk", "ref": "S8", "motorroad": "yes"}),
        way(102, [4, 5], {"highway": "residential", "name": "Ulica Testowa"}),
        way(103, [5, 6], {"highway": "footway"}),
        way(104, [7, 8, 9], {"railway": "rail", "ref": "8"}),
        way(105, [10, 11, 12, 13, 10], {"aeroway": "aerodrome", "iata": "WAW", "name": "Okęcie"}),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6">'])
    path.write_text(body + "\n".join([*nodes, *ways]) + "\n</osm>\n", encoding="utf-8")
    return path


def _tag(k: str, v: str) -> str:
    return f'<tag k="{k}" v="{v}"/>'


def test_openstreetmap_gives_what_the_folder_lacks(fixtures_dir, mokotow, tmp_path):
    raw = tmp_path / "raw"
    _egib_zip(fixtures_dir, raw)
    osm = _osm(raw / "mapa" / "mazowieckie.osm", mokotow)
    assert detect_format(osm) == "osm-xml"
    data = load_raw(raw)
    roads = data["roads"]
    assert sorted(roads["road_class"]) == ["A", "L", "S"]  # the footway is no road
    assert sorted(roads["number"]) == ["", "2", "8"]
    assert data["roads_main"]["road_class"].tolist() == ["A", "S"]
    assert data["junctions"]["name"].tolist() == ["Węzeł Mokotów"]
    assert data["stations"][["name", "kind"]].values.tolist() == [
        ["Warszawa Służewiec", "passenger"]
    ]
    assert data["airports"][["name", "iata"]].values.tolist() == [["Okęcie", "WAW"]]
    assert data["rail"]["line"].tolist() == ["8"]
    text = "\n".join(data.notes)
    for key in ("roads", "rail", "junctions", "stations", "airports"):
        assert f"{key} from OpenStreetMap (mapa/mazowieckie.osm)" in text, text
    # the airport lies where the way was drawn (centroid of the area, EPSG:2180)
    x0, y0 = mokotow.total_bounds[:2]
    got = shapely.get_coordinates(data["airports"].geometry.iloc[0])[0]
    np.testing.assert_allclose(got, [x0 - 4000, y0 + 1000], atol=1.0)


def test_openstreetmap_only_where_bdot10k_gives_nothing(
    fixtures_dir, mokotow, torun_here, tmp_path
):
    """With the BDOT10k package, roads and stations come from it; OSM adds only the
    junction (Toruń's roads have no motorway to derive one from), rail and the airport."""
    raw = tmp_path / "raw"
    _egib_zip(fixtures_dir, raw)
    _bdot_package(raw, torun_here, mokotow)
    _osm(raw / "mazowieckie.osm", mokotow)
    data = load_raw(raw)
    assert len(data["roads"]) == 1199 and set(data["roads"]["road_class"]) == set(TORUN_CLASSES)
    assert data["stations"]["name"].tolist() == ["Warszawa Służewiec"]  # BDOT10k's
    assert data["junctions"]["name"].tolist() == ["Węzeł Mokotów"]
    text = "\n".join(data.notes)
    assert "roads from OpenStreetMap" not in text
    assert "junctions from OpenStreetMap (mazowieckie.osm)" in text, text
    (osm,) = [f for f in data.files if f["file"] == "mazowieckie.osm"]
    used = {layer["key"] for layer in osm["layers"] if layer["key"]}
    assert used == {"junctions", "rail", "airports"}


# ----------------------------------------------------------------------------- ingest


def _downloads(fixtures_dir, tmp_path) -> Path:
    """A folder of real downloads as an analyst keeps them: zips and loose files."""
    fx = fixtures_dir
    dl = tmp_path / "pobrane"
    _zip(
        dl / "egib.zip",
        {
            "mokotow_dzialki_epsg2180.gpkg": fx / MOKOTOW,
            "ownership.csv": fx / OWNERSHIP,
            **{f"gml/{p.name}": p for p in sorted((fx / "egib_gml_2015").glob("*.gml"))},
        },
    )
    _zip(dl / "cgeo_2021.zip", {p.name: p for p in sorted((fx / "cgeo_2021").iterdir())})
    _zip(
        dl / "plan_ogolny.zip",
        {
            "akt.gml": fx / "app_pog/set2/pog/AktPlanowaniaPrzestrzennego.gml",
            "strefy.gml": fx / "app_pog/set2/strefy/StrefaPlanistyczna_OK.gml",
        },
    )
    torun = fx / "bdot_roads_torun"
    for f in torun.iterdir():
        (dl / "drogi").mkdir(exist_ok=True)
        (dl / "drogi" / f.name).write_bytes(f.read_bytes())
    (dl / "CZYTAJ.txt").write_text("Pobrano z geoportal.gov.pl\n", encoding="utf-8")
    (dl / "lista.csv").write_text("parcel_id;name\n146505_8.0126.120;Oferta\n", encoding="utf-8")
    return dl


def test_ingest_reports_every_file_and_writes_a_manifest(fixtures_dir, tmp_path):
    dl = _downloads(fixtures_dir, tmp_path)
    out = tmp_path / "warstwy.gpkg"
    code, text = ingest(dl, "--out", out)
    assert code == 0, text
    flat = " ".join(text.split())
    for needle in (
        "cgeo_2021.zip/dane-BDOT500.gml",
        "cgeo_2021.zip/EGIB.XSD",
        "CZYTAJ.txt",
        "lista.csv",
        "egib.zip/ownership.csv",
        "plan_ogolny.zip/akt.gml",
    ):
        assert needle in flat, needle
    written = {str(n) for n, _ in pyogrio.list_layers(out)}
    assert {"parcels", "roads", "utilities", "plan_zones", "quarantine"} <= written
    manifest = json.loads((tmp_path / "warstwy.manifest.json").read_text(encoding="utf-8"))
    files = {f["file"]: f for f in manifest["files"]}
    # egib: 10 GML, the GPKG, the table; cgeo: 3 GML, 3 XSD; app: 2; the SHP (its parts
    # are no files of their own), CZYTAJ.txt, lista.csv
    assert len(files) == 12 + 6 + 2 + 3
    bdot500 = files["cgeo_2021.zip/dane-BDOT500.gml"]
    assert bdot500["status"] == "not used" and "unknown GML namespace" in bdot500["why"]
    assert "not an ownership table" in files["lista.csv"]["why"]
    assert files["CZYTAJ.txt"]["why"] == "unknown file type .txt"
    gpkg = files["egib.zip/mokotow_dzialki_epsg2180.gpkg"]
    assert gpkg["format"] == "egib-vector" and gpkg["status"] == "used"
    assert gpkg["layers"] == [
        {"layer": "dzialki", "key": "parcels", "read": 4413, "kept": 4413, "crs": "EPSG:2180"}
    ]
    gesut = files["cgeo_2021.zip/dane-GESUT.gml"]
    assert gesut["format"] == "gesut-gml-2021" and {x["key"] for x in gesut["layers"]} >= {
        "utilities"
    }
    assert files["drogi/directedRoadsSample.shp"]["layers"][0]["kept"] == 1199
    # without --out, the manifest lies beside the folder, which is left as downloaded
    before = sorted(p.name for p in dl.rglob("*"))
    code, text = ingest(dl)
    assert code == 0, text
    assert (tmp_path / "pobrane.manifest.json").exists()
    assert sorted(p.name for p in dl.rglob("*")) == before


def test_ingest_a_broken_file_is_listed_and_the_others_read(fixtures_dir, tmp_path):
    """A file of a known format that cannot be read ends with exit 2 and writes nothing,
    after the report has listed every file, the good ones with their counts."""
    folder = tmp_path / "in"
    folder.mkdir()
    text = (fixtures_dir / "cgeo_2021/dane-EGiB.gml").read_bytes()[:5000]
    (folder / "ucięty.gml").write_bytes(text)
    for f in (fixtures_dir / "bdot_roads_torun").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "out.gpkg"
    code, output = ingest(folder, "--out", out)
    flat = " ".join(output.split())
    assert code == 2, output
    assert "directedRoadsSample.shp" in flat and "1,199" in flat
    assert "1 file(s) could not be read, nothing written: ucięty.gml:" in flat
    assert not out.exists()
    manifest = json.loads((tmp_path / "out.manifest.json").read_text(encoding="utf-8"))
    assert [f["status"] for f in manifest["files"]] == ["used", "not used"]


def test_ingest_a_zip_given_directly(fixtures_dir, mokotow, torun_here, tmp_path):
    package = _bdot_package(tmp_path, torun_here, mokotow)
    code, text = ingest(package, "--out", tmp_path / "o.gpkg")
    assert code == 0, text
    flat = " ".join(text.split())
    assert "1465_GML.zip/PL.PZGiK.994.1465__OT_SKDR_L.xml" in flat and "1,199" in flat
    assert "BDOT10k class OT_PTTR_A is not used" in flat
    roads = pyogrio.read_dataframe(tmp_path / "o.gpkg", layer="roads")
    assert roads["road_class"].value_counts().to_dict() == TORUN_CLASSES
    assert set(roads["source_file"]) == {"1465_GML.zip/PL.PZGiK.994.1465__OT_SKDR_L.xml"}


def test_run_on_real_downloads_records_what_each_file_became(fixtures_dir, tmp_path):
    """`omw-sites run` on the folder of real downloads (zips, loose files, a read-me):
    exit 0, the files it cannot use named in the summary, every file in run_info."""
    from cli_run import cli

    from omw_sites.layers import STORE_FILE
    from omw_sites.store import read_run_info, read_sites

    dl = _downloads(fixtures_dir, tmp_path)
    nominated = tmp_path / "oferty.csv"
    nominated.write_text("parcel_id;name\n146505_8.0219.1/3;Park\n", encoding="utf-8")
    out = tmp_path / "out"
    res = cli("run", "--raw", str(dl), "--out", str(out), "--nominated", str(nominated))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    flat = " ".join(res.stderr.split())
    assert "7 file(s) of the folder not used" in flat and "CZYTAJ.txt: unknown file type" in flat
    files = {f["file"]: f for f in read_run_info(out / STORE_FILE)["files"]}
    assert len(files) == 23
    assert files["egib.zip/ownership.csv"]["status"] == "used"
    assert files["plan_ogolny.zip/akt.gml"]["why"] == "an act without StrefaPlanistyczna zones"
    sites = read_sites(out / STORE_FILE, read_geometry=False)
    assert sites["parcel_ids"].tolist() == ["146505_8.0219.1/3"]
    assert sites["ownership"].tolist() == ["municipal"]
    numeric = sites.select_dtypes("number").to_numpy(dtype=float)
    assert not np.isinf(numeric).any()


def test_nmt_sheets_in_a_zip_are_made_one(fixtures_dir, mokotow, tmp_path):
    """NMT comes in sheets: two GeoTIFF tiles side by side in one zip give one terrain
    model covering both, heights unchanged."""
    import rasterio
    from rasterio.transform import from_origin

    raw = tmp_path / "raw"
    _egib_zip(fixtures_dir, raw)
    x0, y0, x1, y1 = mokotow.total_bounds
    left, top = float(np.floor(x0)), float(np.ceil(y1))
    width, height = int(np.ceil((x1 - x0) / 2 / 10)) + 1, int(np.ceil((y1 - y0) / 10)) + 1
    tiles = {}
    for i in range(2):
        heights = np.full((height, width), 100.0 + 10 * i, dtype="float32")
        path = tmp_path / f"N-34-139-A-c-{i + 1}.tif"
        origin = from_origin(left + i * width * 10, top, 10.0, 10.0)
        with rasterio.open(
            path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
            crs="EPSG:2180", transform=origin, nodata=-9999.0,
        ) as dst:  # fmt: skip
            dst.write(heights, 1)
        tiles[f"NMT/{path.name}"] = path
    _zip(raw / "NMT_arkusze.zip", tiles)
    data = load_raw(raw)
    assert data.dem_path is not None and "dem" not in data.absent
    with rasterio.open(data.dem_path) as src:
        assert (src.width, src.height) == (2 * width, height)
        grid = src.read(1)
    assert set(np.unique(grid[:, :width])) == {100.0} and set(np.unique(grid[:, width:])) == {110.0}
    used = [f for f in data.files if f["file"].startswith("NMT_arkusze.zip/")]
    assert len(used) == 2 and all(f["layers"][0]["key"] == "dem" for f in used)


def test_one_zip_is_a_raw_folder(fixtures_dir, tmp_path):
    """`--raw` may name the download itself: one zip holding the parcels and owners."""
    package = _egib_zip(fixtures_dir, tmp_path)
    data = load_raw(package)
    assert len(data["parcels"]) == 4413
    assert [f["file"] for f in data.files] == [
        "EGiB_Mokotow.zip/dane/dzialki.gpkg",
        "EGiB_Mokotow.zip/dane/wlasnosc.csv",
    ]


def test_a_large_gml_of_no_known_schema_is_not_read_whole_to_guess(tmp_path, monkeypatch):
    """A GML of plain attributes is told by its columns (GDAL reads it whole to learn
    them); above a size it is named as unknown instead of being read."""
    import geopandas as gpd
    import pyogrio
    import shapely

    from omw_sites.etl import detect
    from omw_sites.etl.errors import IngestError

    path = tmp_path / "granice.gml"
    frame = gpd.GeoDataFrame(
        {"JPT_KOD_JE": ["1465011"], "JPT_NAZWA_": ["Warszawa"]},
        geometry=[shapely.box(630_000, 480_000, 640_000, 490_000)],
        crs=2180,
    )
    pyogrio.write_dataframe(frame, path, driver="GML")
    assert detect.detect_format(path) == "raw-layout"  # PRG boundaries by their columns
    monkeypatch.setattr(detect, "PLAIN_GML_MAX_BYTES", path.stat().st_size - 1)
    with pytest.raises(IngestError, match="too large to tell by its columns"):
        detect.detect_format(path)
