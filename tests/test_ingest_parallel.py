"""EGiB GML read in several processes (byte ranges cut at members) = the serial reader.

Same frame (rows, order, dtypes, geometries), same quarantine and counts, and the same
error (file, record, rule, message) for every malformed input. Also the GPKG reader's
two-thread validation against one thread.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import shapely

from omw_sites.etl import egib
from omw_sites.etl import gml_chunks as gc
from omw_sites.etl.egib import read_egib_gml, read_egib_vector
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import Limits

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<!-- generated for tests -->\n'
    '<gml:FeatureCollection gml:id="c" xmlns:gml="http://www.opengis.net/gml/3.2"\n'
    '    xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:egb="ewidencjaGruntowIBudynkow:1.0">\n'
    "<gml:boundedBy><gml:Envelope><gml:lowerCorner>0 0</gml:lowerCorner>"
    "<gml:upperCorner>1 1</gml:upperCorner></gml:Envelope></gml:boundedBy>\n"
)


def _parcel(k: int, pid: str, xy: np.ndarray, srs: str, *, ended: bool = False) -> str:
    north_first = srs.startswith("urn:")
    pos = " ".join(f"{y:.2f} {x:.2f}" if north_first else f"{x:.2f} {y:.2f}" for x, y in xy)
    end = "<egb:koniecWersjaObiekt>2024-06-01T00:00:00</egb:koniecWersjaObiekt>" if ended else ""
    start = "2020-01-01T00:00:00" if ended else "2024-01-01T00:00:00"
    jrg = f'<egb:JRG2 xlink:href="urn:pzgik:id:PL.EGiB:jrg{k % 50}"/>' if k % 3 else ""
    return (
        f'<gml:featureMember><egb:EGB_DzialkaEwidencyjna gml:id="d{k}{"e" if ended else ""}">'
        f"<egb:idIIP><egb:EGB_IdentyfikatorIIP><egb:lokalnyId>L{k}</egb:lokalnyId>"
        f"</egb:EGB_IdentyfikatorIIP></egb:idIIP>"
        f"<egb:startWersjaObiekt>{start}</egb:startWersjaObiekt>{end}"
        f"<egb:idDzialki>{pid}</egb:idDzialki><egb:geometria>"
        f'<gml:Polygon gml:id="g{k}" srsName="{srs}"><gml:exterior><gml:LinearRing>'
        f"<gml:posList>{pos}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
        '</egb:geometria><egb:poleEwidencyjne uom="ha">0.0784</egb:poleEwidencyjne>'
        f"<egb:klasouzytek><egb:EGB_Klasouzytek><egb:OFU>{'RB'[k % 2]}</egb:OFU>"
        f"</egb:EGB_Klasouzytek></egb:klasouzytek>{jrg}"
        "</egb:EGB_DzialkaEwidencyjna></gml:featureMember>\n"
    )


def write_parcels(path, n: int = 20_000) -> None:
    """``n`` parcels (some in EPSG:2177, some with an ended older version, a few bad IDs,
    one bow-tie) and, at the end of the file, the registration units they link to."""
    side = int(np.ceil(np.sqrt(n)))
    with path.open("w", encoding="utf-8") as f:
        f.write(HEAD)
        for k in range(n):
            x0, y0 = 600_000 + (k % side) * 30.0, 480_000 + (k // side) * 30.0
            xy = np.array([(x0, y0), (x0 + 28, y0), (x0 + 28, y0 + 28), (x0, y0 + 28), (x0, y0)])
            if k == 77:  # bow-tie: repaired
                xy = xy[[0, 2, 1, 3, 0]]
            srs = "urn:ogc:def:crs:EPSG::2180"
            if k % 10 == 0:  # the same place written in EPSG:2177 (zone 6, northing first)
                srs = "urn:ogc:def:crs:EPSG::2177"
                xy = _to_2177(xy)
            pid = f"146505_8.{(k // 5000) % 10000:04d}.{k % 5000 + 1}"
            if k in (5, 9001):
                pid = "14650_8.0001.1"  # malformed
            if k == 12:
                pid = "146505_8.0000.11"  # duplicate of parcel 10
            f.write(_parcel(k, pid, xy, srs))
            if k % 97 == 0:  # an older, ended version later in the file
                f.write(_parcel(k, pid, xy, srs, ended=True))
        for j in range(50):
            f.write(
                f'<gml:featureMember><egb:EGB_JednostkaRejestrowaGruntow gml:id="jrg{j}">'
                f"<egb:idIIP><egb:EGB_IdentyfikatorIIP><egb:lokalnyId>J{j}</egb:lokalnyId>"
                f"</egb:EGB_IdentyfikatorIIP></egb:idIIP>"
                f"<egb:grupaRejestrowa>{j % 10 + 1}</egb:grupaRejestrowa>"
                "</egb:EGB_JednostkaRejestrowaGruntow></gml:featureMember>\n"
            )
        f.write("</gml:FeatureCollection>\n")


@functools.cache
def _transformer():
    from pyproj import Transformer

    return Transformer.from_crs(2180, 2177, always_xy=True)


def _to_2177(xy: np.ndarray) -> np.ndarray:
    """Easting, northing in EPSG:2177 (``_parcel`` writes them northing first)."""
    return np.column_stack(_transformer().transform(xy[:, 0], xy[:, 1]))


@pytest.fixture
def parallel(monkeypatch):
    """Force the multi-process path on small files; count the ranges read."""
    monkeypatch.setenv(gc.WORKERS_ENV, "2")
    monkeypatch.setattr(gc, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(gc, "CHUNK_BYTES", 3000)
    seen: list[int] = []
    real = gc.map_chunks

    def spy(fn, path, split, workers, *args):
        seen.append(len(split.ranges))
        return real(fn, path, split, workers, *args)

    monkeypatch.setattr(gc, "map_chunks", spy)
    return seen


def _serial(monkeypatch, fn, *args, **kw):
    with monkeypatch.context() as m:
        m.setenv(gc.WORKERS_ENV, "1")
        return fn(*args, **kw)


def assert_same_result(a, b) -> None:
    pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
    assert list(a.frame.dtypes.astype(str)) == list(b.frame.dtypes.astype(str))
    assert (a.frame.geometry.to_wkb() == b.frame.geometry.to_wkb()).all()
    pd.testing.assert_frame_equal(a.quarantine, b.quarantine)
    assert (a.read, a.kept, a.repaired, a.crs_in, a.source_format, a.extra) == (
        b.read,
        b.kept,
        b.repaired,
        b.crs_in,
        b.source_format,
        b.extra,
    )


def test_workers_setting(monkeypatch):
    monkeypatch.setenv(gc.WORKERS_ENV, "3")
    assert gc.ingest_workers() == 3
    monkeypatch.setenv(gc.WORKERS_ENV, "0")
    assert gc.ingest_workers() == 1
    monkeypatch.delenv(gc.WORKERS_ENV)
    assert gc.ingest_workers() >= 1
    monkeypatch.setenv(gc.WORKERS_ENV, "many")
    with pytest.warns(RuntimeWarning, match="OMW_INGEST_WORKERS"):
        assert gc.ingest_workers() >= 1


@pytest.mark.parametrize("name", ["cgeo_2021/dane-EGiB.gml", "egib_gml_2015/*.gml"])
def test_parallel_equals_serial_on_real_files(fixtures_dir, monkeypatch, parallel, name):
    files = sorted(fixtures_dir.glob(name))
    assert files
    for path in files:
        fast = read_egib_gml(path)
        slow = _serial(monkeypatch, read_egib_gml, path)
        assert_same_result(fast, slow)
    assert len(parallel) == len(files) and min(parallel) >= 2  # really cut into ranges


def test_parallel_equals_serial_on_20k_parcels(tmp_path, monkeypatch, parallel):
    path = tmp_path / "p20k.gml"
    write_parcels(path)
    monkeypatch.setattr(gc, "CHUNK_BYTES", 200_000)
    fast = read_egib_gml(path)
    slow = _serial(monkeypatch, read_egib_gml, path)
    assert parallel and parallel[0] > 20  # links point from early ranges to the last one
    assert_same_result(fast, slow)
    f = fast.frame
    assert fast.read == 20_000 + len(range(0, 20_000, 97)) and fast.repaired == 1
    assert set(fast.quarantine["rule"]) == {
        "parcel ID WWPPGG_R.OOOO[.AR_n].NR[/sub]",
        "unique parcel ID",
    }
    assert fast.crs_in == "EPSG:2177, EPSG:2180"  # parcel 0 is in EPSG:2177
    # ownership through JRG2 links resolved against units at the very end of the file
    linked = f["local_id"].str[1:].astype(int) % 3 != 0
    assert (f.loc[linked, "ownership"] != "other").all()
    assert (f.loc[~linked, "ownership"] == "other").all()
    # the EPSG:2177 parcels land where they were drawn
    k10 = f.set_index("local_id").loc["L10"].geometry
    assert abs(k10.bounds[0] - (600_000 + 10 * 30.0)) < 0.05


def _cases(fixtures_dir):
    data = (fixtures_dir / "cgeo_2021/dane-EGiB.gml").read_bytes()
    cut_at_member = data[: data.rindex(b"</gml:featureMember>") + len(b"</gml:featureMember>")]
    return {
        "truncated": data[: len(data) // 2],
        "truncated at a member": cut_at_member + b"\n",
        "wrong namespace": data.replace(b"ewidencjaGruntowIBudynkow:1.0", b"example.com/p:9"),
        "non-UTF-8": data.replace(
            b"061304_5.0012.809/1", "061304_5.0012.809/ł".encode("cp1250"), 1
        ),
        "bad coordinate": data.replace(b"5724155.71 8430735.81", b"5724155.71 8430735,81", 1),
        "no CRS": data.replace(b' srsName="urn:ogc:def:crs:EPSG::2179"', b""),
        "garbage after root": data + b"<x/>",
    }


def _error(fn, *args, **kw) -> IngestError:
    with pytest.raises(IngestError) as e:
        fn(*args, **kw)
    return e.value


def _same_error(a: IngestError, b: IngestError) -> None:
    assert (str(a), a.file, a.layer, a.record, a.rule) == (
        str(b),
        b.file,
        b.layer,
        b.record,
        b.rule,
    )


@pytest.mark.parametrize(
    "case",
    [
        "truncated",
        "truncated at a member",
        "wrong namespace",
        "non-UTF-8",
        "bad coordinate",
        "no CRS",
        "garbage after root",
    ],
)
def test_parallel_errors_equal_serial(tmp_path, fixtures_dir, monkeypatch, parallel, case):
    p = tmp_path / "bad.gml"
    p.write_bytes(_cases(fixtures_dir)[case])
    fast = _error(read_egib_gml, p)
    slow = _serial(monkeypatch, _error, read_egib_gml, p)
    _same_error(fast, slow)
    assert fast.file == str(p) and fast.rule


def test_parallel_error_names_the_record_as_serial(tmp_path, monkeypatch, parallel):
    """A bad coordinate deep in a big file: same feature number as the serial reader."""
    path = tmp_path / "p.gml"
    write_parcels(path, 3000)
    text = path.read_text(encoding="utf-8")
    at = text.index('gml:id="d2500"')
    at = text.index("<gml:posList>", at) + len("<gml:posList>")
    path.write_text(text[:at] + "x" + text[at + 1 :], encoding="utf-8")
    monkeypatch.setattr(gc, "CHUNK_BYTES", 50_000)
    fast = _error(read_egib_gml, path)
    slow = _serial(monkeypatch, _error, read_egib_gml, path)
    _same_error(fast, slow)
    assert fast.rule == "GML coordinates"
    assert parallel and parallel[0] > 3


def test_parallel_limits_and_empty_file(tmp_path, fixtures_dir, monkeypatch, parallel):
    p = fixtures_dir / "cgeo_2021/dane-EGiB.gml"
    for limits in (Limits(max_features=10), Limits(max_bytes=10_000)):
        fast = _error(read_egib_gml, p, limits=limits)
        slow = _serial(monkeypatch, _error, read_egib_gml, p, limits=limits)
        _same_error(fast, slow)
    assert fast.rule == "size limit"
    fast = _error(read_egib_gml, p, limits=Limits(max_features=10))
    assert fast.rule == "feature limit" and "more than 10 features" in str(fast)
    empty = tmp_path / "empty.gml"
    empty.write_bytes(b"")
    assert _error(read_egib_gml, empty).rule == "non-empty file"


def test_split_members_covers_the_file(tmp_path):
    path = tmp_path / "p.gml"
    write_parcels(path, 500)
    data = path.read_bytes()
    split = gc.split_members(path, 10_000)
    assert split is not None and len(split.ranges) > 5
    assert split.ranges[0][0] == 0 and split.ranges[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(split.ranges, split.ranges[1:], strict=False))
    assert split.head.endswith(b'xmlns:egb="ewidencjaGruntowIBudynkow:1.0">')
    assert split.tail == b"</gml:FeatureCollection>"
    from lxml import etree

    for a, b in split.ranges:
        doc = gc.chunk_document(str(path), split.head, split.tail, a, b)
        root = etree.fromstring(doc)
        assert root.tag == "{http://www.opengis.net/gml/3.2}FeatureCollection"
        if a:
            assert data[a:b].lstrip().startswith(b"<gml:featureMember>")
    # files that cannot be cut safely are read serially
    dtd = tmp_path / "dtd.gml"
    dtd.write_bytes(data.replace(b"<!--", b'<!DOCTYPE x [<!ENTITY e "1">]><!--', 1))
    assert gc.split_members(dtd, 10_000) is None
    utf16 = tmp_path / "u16.gml"
    utf16.write_bytes(data.decode().encode("utf-16"))
    assert gc.split_members(utf16, 10_000) is None


def test_nested_features_fall_back_to_serial(tmp_path, monkeypatch, parallel):
    """A feature inside another (not a member of the collection): the serial reader decides."""
    path = tmp_path / "p.gml"
    write_parcels(path, 300)
    text = path.read_text(encoding="utf-8")
    unit = text[text.index("<egb:EGB_JednostkaRejestrowaGruntow") :]
    unit = unit[: unit.index("</gml:featureMember>")]
    text = text.replace("<egb:startWersjaObiekt>", unit + "<egb:startWersjaObiekt>", 1)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(gc, "CHUNK_BYTES", 20_000)
    calls = []
    real = egib._read_parcel_chunks
    monkeypatch.setattr(egib, "_read_parcel_chunks", lambda *a: calls.append(r := real(*a)) or r)
    fast = read_egib_gml(path)
    slow = _serial(monkeypatch, read_egib_gml, path)
    assert calls and calls[0] is None  # a range failed its check: read serially
    assert_same_result(fast, slow)


def test_gpkg_validation_in_two_threads_equals_one(tmp_path, monkeypatch):
    import geopandas as gpd
    import pyogrio

    n = 3000
    x = 637_000 + np.arange(n) * 30.0  # in Poland (EPSG:2180): readers check the extent
    geoms = shapely.box(x, 486_000, x + 28, 486_028)
    geoms[10] = shapely.Polygon()  # quarantined: the later duplicate of its ID is kept
    geoms[2500] = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)])  # repaired
    ids = [f"146505_8.0001.{k + 1}" for k in range(n)]
    ids[11] = ids[10]
    ids[2999] = "146505_8.0001.x"
    gdf = gpd.GeoDataFrame({"ID_DZIALKI": ids, "POLE_EWIDENCYJNE": 0.08}, geometry=geoms, crs=2180)
    path = tmp_path / "p.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="dzialki", driver="GPKG")
    one = read_egib_vector(path)
    monkeypatch.setattr(egib, "_THREADS_FROM", 100)
    two = read_egib_vector(path)
    assert_same_result(two, one)
    assert two.repaired == 1 and len(two.quarantine) == 2
