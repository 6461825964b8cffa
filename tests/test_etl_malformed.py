"""Malformed inputs: each a clear IngestError naming file and rule, and nothing written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from omw_sites.cli import app
from omw_sites.etl.detect import ingest_paths
from omw_sites.etl.egib import read_egib_gml
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import Limits


@pytest.fixture
def egib2021(fixtures_dir):
    return (fixtures_dir / "cgeo_2021/dane-EGiB.gml").read_bytes()


def _write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_truncated_gml(tmp_path, egib2021):
    p = _write(tmp_path, "cut.gml", egib2021[: len(egib2021) // 2])
    with pytest.raises(IngestError, match="malformed XML") as e:
        read_egib_gml(p)
    assert e.value.file == str(p) and "truncated" in e.value.rule


def test_wrong_namespace(tmp_path, egib2021):
    data = egib2021.replace(b"ewidencjaGruntowIBudynkow:1.0", b"example.com/parcels:9")
    p = _write(tmp_path, "ns.gml", data)
    with pytest.raises(IngestError, match="not an EGiB GML file") as e:
        read_egib_gml(p)
    assert e.value.rule == "known namespace"
    with pytest.raises(IngestError, match="unknown GML namespace"):
        ingest_paths([p])


def test_empty_file(tmp_path):
    p = _write(tmp_path, "empty.gml", b"")
    with pytest.raises(IngestError, match="empty") as e:
        ingest_paths([p])
    assert e.value.rule == "non-empty file"


def test_size_and_feature_limits(tmp_path, fixtures_dir):
    p = fixtures_dir / "cgeo_2021/dane-EGiB.gml"
    with pytest.raises(IngestError, match="beyond the limit") as e:
        read_egib_gml(p, limits=Limits(max_bytes=10_000))
    assert e.value.rule == "size limit"
    with pytest.raises(IngestError, match="more than 10 features") as e:
        read_egib_gml(p, limits=Limits(max_features=10))
    assert e.value.rule == "feature limit"
    shp = fixtures_dir / "bdot_roads_torun/directedRoadsSample.shp"
    with pytest.raises(IngestError, match="beyond the limit"):
        ingest_paths([shp], limits=Limits(max_features=100))


def test_non_utf8_attributes(tmp_path, egib2021):
    data = egib2021.replace(b"061304_5.0012.809/1", "061304_5.0012.809/ł".encode("cp1250"), 1)
    p = _write(tmp_path, "latin2.gml", data)
    with pytest.raises(IngestError, match="malformed XML") as e:
        read_egib_gml(p)
    assert "encoding" in e.value.rule


def test_non_utf8_side_table(tmp_path, fixtures_dir):
    from omw_sites.etl.egib import read_ownership_table

    p = _write(tmp_path, "own.csv", "ID_DZIALKI,ownership\nx,własność\n".encode("cp1250"))
    import pandas as pd

    with pytest.raises(IngestError, match="not UTF-8"):
        read_ownership_table(p, pd.Series(["x"]))


def test_no_crs_needs_explicit_crs(tmp_path, egib2021):
    data = egib2021.replace(b' srsName="urn:ogc:def:crs:EPSG::2179"', b"")
    p = _write(tmp_path, "nocrs.gml", data)
    with pytest.raises(IngestError, match="no srsName") as e:
        read_egib_gml(p)
    assert e.value.rule == "layer has a CRS"
    # EPSG:2179 given by the user: the short form is read easting first, as GDAL does;
    # these coordinates are northing first, which would put them outside Poland
    with pytest.raises(IngestError, match=r"EPSG:2179 written northing first") as e:
        read_egib_gml(p, crs="EPSG:2179")
    assert e.value.rule == "layer lies in Poland in its CRS"
    r = read_egib_gml(p, crs="urn:ogc:def:crs:EPSG::2179")  # the authority's axis order
    assert r.kept == 29
    assert 1e5 < r.frame.total_bounds[0] < 9e5  # EPSG:2180 easting


def test_cli_ingest_error_writes_nothing(tmp_path, fixtures_dir, egib2021):
    bad = _write(tmp_path, "cut.gml", egib2021[:5000])
    out = tmp_path / "out.gpkg"
    good = fixtures_dir / "bdot_roads_torun/directedRoadsSample.shp"
    res = CliRunner().invoke(app, ["ingest", str(good), str(bad), "--out", str(out)])
    assert res.exit_code == 2 and "cut.gml" in res.output
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_cli_ingest_report_and_output(tmp_path, fixtures_dir):
    out = tmp_path / "out.gpkg"
    res = CliRunner().invoke(
        app,
        [
            "ingest",
            str(fixtures_dir / "cgeo_2021/dane-EGiB.gml"),
            str(fixtures_dir / "bdot_roads_torun"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "egib-gml-2021" in res.output and "EPSG:2179" in res.output and "1,199" in res.output
    import pyogrio

    layers = {n for n, _ in pyogrio.list_layers(out)}
    assert layers == {"parcels", "roads", "quarantine"}


def test_coordinate_that_is_not_a_number(tmp_path, egib2021):
    data = egib2021.replace(b"5724155.71 8430735.81", b"5724155.71 8430735,81", 1)
    assert data != egib2021
    p = _write(tmp_path, "comma.gml", data)
    with pytest.raises(IngestError, match="bad coordinates") as e:
        read_egib_gml(p)
    assert e.value.rule == "GML coordinates" and e.value.file == str(p)
