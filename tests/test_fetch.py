"""`omw-sites fetch` against a local server answering like each official service
(tests/fake_services.py): the same code path as production, only the base URLs differ.

A generated region stands behind the server; the gmina is the one whose plan ogólny the
region publishes as APP GML (Piaseczno, 1418043)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fake_services import FakeServices

GMINA = "1418043"
POWIAT = "1418"
SOURCES_ALL = {"boundaries", "parcels", "bdot10k", "nmt", "app", "flood", "natura2000", "osm"}


@pytest.fixture
def services(demo_raw):
    fake = FakeServices(demo_raw)
    fake.start()
    yield fake
    fake.stop()


def fetch(services: FakeServices, cache: Path, *args: str, env: dict | None = None):
    env = {**os.environ, **(env or services.env(cache))}
    return subprocess.run(
        [sys.executable, "-m", "omw_sites", "fetch", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def manifest(out: Path) -> dict:
    return json.loads((out / "fetch_manifest.json").read_text(encoding="utf-8"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.replace("\n ", " ").splitlines() if line.startswith("error:")]


def test_fetch_then_run_end_to_end(services, demo_raw, tmp_path):
    """The gmina's data arrives in the services' formats, every file with its provenance;
    `run --raw` then reads it (parcels from the WFS and from ULDK, roads from the BDOT10k
    zip, plan ogólny from APP, terrain from the WCS tiles, OSM) and carries the
    provenance into run_info."""
    # the gmina's own nomination list: its four largest parcels (≥ 0.5 ha)
    parcels = gpd.read_file(demo_raw / "egib/dzialki.gpkg")
    ours = parcels[parcels["ID_DZIALKI"].str.startswith("141804_3.")]
    ids = ours.sort_values("POLE_EWIDENCYJNE", ascending=False)["ID_DZIALKI"].head(4)
    nominated = tmp_path / "nominated.csv"
    nominated.write_text("parcel_id,name\n" + "".join(f"{i},offer\n" for i in ids))
    out, cache = tmp_path / "raw", tmp_path / "cache"
    r = fetch(
        services, cache, "--gmina", GMINA, "--out", str(out), "--parcels-by-id", str(nominated)
    )
    assert r.returncode == 0, r.stderr
    m = manifest(out)
    assert {f["source"] for f in m["files"]} == SOURCES_ALL | {"parcels-uldk"}
    assert m["failed"] == [] and m["area"]["gminy"] == [GMINA]
    for f in m["files"]:  # what is in the folder is what the manifest says
        assert sha(out / f["file"]) == f["sha256"] and (out / f["file"]).stat().st_size == f["size"]
        assert f["licence"]["pl"] and f["licence"]["en"]
        assert all(a["url"].startswith(services.url) for a in f["answers"])
        assert f["date"] == "2026-11-30"  # the services' Last-Modified, not today
    # BDOT10k of every powiat the buffered area touches, found by ULDK's GetCountyByXY
    gminy = gpd.read_file(demo_raw / "admin/gminy.gpkg")
    touched = set(
        gminy[gminy.intersects(shapely.box(*m["area"]["bbox_2180"]))]["JPT_KOD_JE"].str[:4]
    )
    bdot = {f["file"]: f for f in m["files"] if f["source"] == "bdot10k"}
    powiaty = {name.split("/")[1][:4] for name in bdot}
    assert {POWIAT, "1465"} <= powiaty <= touched and len(powiaty) >= 5
    assert m["area"]["powiaty"][0] == POWIAT and set(m["area"]["powiaty"]) == powiaty
    assert bdot[f"bdot10k/{POWIAT}_GML.zip"]["url"].endswith("/14/1418_GML.zip")
    with zipfile.ZipFile(out / f"bdot10k/{POWIAT}_GML.zip") as z:
        assert f"PL.PZGiK.994.{POWIAT}__OT_SKDR_L.xml" in z.namelist()
    uldk = gpd.read_file(out / "egib/dzialki_uldk.gpkg")
    assert sorted(uldk["ID_DZIALKI"]) == sorted(ids)
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary left

    run = subprocess.run(
        [sys.executable, "-m", "omw_sites", "run", "--raw", str(out), "--out",
         str(tmp_path / "processed"), "--nominated", str(nominated)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    from omw_sites.store import read_run_info

    info = read_run_info(tmp_path / "processed" / "omw_sites.gpkg")
    files = {f["file"]: f for f in info["files"]}
    wfs = files[f"egib/{POWIAT}_dzialki_wfs.gml"]
    assert wfs["status"] == "used" and wfs["provenance"]["source"] == "parcels"
    assert wfs["provenance"]["url"].startswith(services.url + "/egib/1418?")
    member = files[f"bdot10k/{POWIAT}_GML.zip/PL.PZGiK.994.{POWIAT}__OT_SKDR_L.xml"]
    assert member["status"] == "used" and member["provenance"]["source"] == "bdot10k"
    assert files[f"app/{GMINA}_app.gml"]["status"] == "used"
    assert files["nmt/nmt_00_00.tif"]["status"] == "used"
    assert info["counts"]["sites"] >= 1
    assert info["data_dates"]["roads"] == "2026-11-30"
    assert "fetch_manifest.json" not in files  # the manifest is read, not a data file


def test_download_dropped_mid_file_resumes_with_range(services, tmp_path):
    """The link goes down after 50,000 bytes of the BDOT10k zip: the next attempt asks
    for the rest (Range, If-Range with the ETag) and the file arrives whole."""
    services.fault("bdot10k", "drop", value=50_000)
    out = tmp_path / "raw"
    r = fetch(
        services, tmp_path / "cache", "--gmina", GMINA, "--only", "bdot10k", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    first, second = services.requests("bdot10k")
    assert first["status"] == 200 and "Range" not in first
    assert second["status"] == 206 and second["Range"] == "bytes=50000-"
    assert second["If-Range"].startswith('"')
    (entry,) = manifest(out)["files"]
    assert entry["answers"][0]["status"] == "resumed"
    body, _ = services.body("bdot10k", f"/bdot10k/14/{POWIAT}_GML.zip", {}, b"")
    assert sha(out / entry["file"]) == hashlib.sha256(body).hexdigest()
    with zipfile.ZipFile(out / entry["file"]) as z:
        assert z.testzip() is None


def test_etag_304_reuses_the_cache(services, tmp_path):
    out, cache = tmp_path / "raw", tmp_path / "cache"
    args = ("--gmina", GMINA, "--only", "boundaries", "--only", "bdot10k", "--out", str(out))
    assert fetch(services, cache, *args).returncode == 0
    before = {f["file"]: f["sha256"] for f in manifest(out)["files"]}
    n = len(services.log)
    r = fetch(services, cache, *args)
    assert r.returncode == 0, r.stderr
    again = services.log[n:]
    assert {e["status"] for e in again} == {304}  # ULDK's answers and every zip
    assert all(e["If-None-Match"].startswith('"') for e in again)
    files = manifest(out)["files"]
    assert {f["file"]: f["sha256"] for f in files} == before
    assert {a["status"] for f in files for a in f["answers"]} == {"not modified"}


def test_500_timeout_and_malformed_each_named_others_arrive(services, tmp_path):
    """A good first fetch; then NMT answers 500, the EGiB WFS stalls past the timeout
    and BDOT10k sends a cut zip. Each is one line naming the source and the URL, the
    other sources arrive, the earlier files and cached copies are as they were, exit 2."""
    out, cache = tmp_path / "raw", tmp_path / "cache"
    args = ("--gmina", GMINA, "--out", str(out))
    assert fetch(services, cache, *args).returncode == 0
    before = {f["file"]: f["sha256"] for f in manifest(out)["files"]}
    cached = {p.name: sha(p) for p in cache.glob("*.body")}
    services.fault("nmt", "status", times=3, value=500)
    services.fault("egib", "stall", times=3, value=4)
    services.fault("bdot10k", "garbage")
    r = fetch(services, cache, *args)
    assert r.returncode == 2
    errors = error_lines(r.stderr)
    assert len(errors) == 3, r.stderr
    nmt, parcels, bdot = (
        next(e for e in errors if e.startswith(f"error: {s}:"))
        for s in ("nmt", "parcels", "bdot10k")
    )
    assert "HTTP 500" in nmt and f"{services.url}/nmt?" in nmt
    assert "timed out" in parcels and f"{services.url}/egib/1418?" in parcels
    assert "malformed answer" in bdot and "zip" in bdot and f"/bdot10k/14/{POWIAT}_GML.zip" in bdot
    m = manifest(out)
    assert {f["source"] for f in m["failed"]} == {"nmt", "parcels", "bdot10k"}
    fresh = {f["source"] for f in m["files"] if not f.get("stale")}
    assert fresh == {"boundaries", "bdot10k", "app", "flood", "natura2000", "osm"}
    for f in m["files"]:  # failed sources keep their earlier, whole files
        assert sha(out / f["file"]) == before[f["file"]] == f["sha256"]
    assert {f["file"] for f in m["files"] if f.get("stale")} == {
        "nmt/nmt_00_00.tif",
        f"egib/{POWIAT}_dzialki_wfs.gml",
        f"bdot10k/{POWIAT}_GML.zip",
    }
    now = {p.name: sha(p) for p in cache.glob("*.body")}
    assert all(now[k] == v for k, v in cached.items())  # nothing cached was spoilt
    assert not list(cache.glob("*.part"))  # the cut zip was not kept to resume from


def test_offline_rebuilds_the_folder_from_the_cache(services, tmp_path):
    out, cache = tmp_path / "raw", tmp_path / "cache"
    assert fetch(services, cache, "--gmina", GMINA, "--out", str(out)).returncode == 0
    online = {f["file"]: f["sha256"] for f in manifest(out)["files"]}
    env = services.env(cache)
    services.stop()  # the same settings, the server gone: nothing may be asked of it
    rebuilt = tmp_path / "rebuilt"
    r = fetch(services, cache, "--gmina", GMINA, "--out", str(rebuilt), "--offline", env=env)
    assert r.returncode == 0, r.stderr
    m = manifest(rebuilt)
    assert {f["file"]: f["sha256"] for f in m["files"]} == online
    assert {a["status"] for f in m["files"] for a in f["answers"]} == {"offline"}
    for name, digest in online.items():
        assert sha(rebuilt / name) == digest
    # a source never fetched is named, not invented
    env["OMW_SOURCE_CACHE"] = str(tmp_path / "empty")
    r = fetch(services, cache, "--gmina", GMINA, "--out", str(tmp_path / "x"), "--offline", env=env)
    assert r.returncode == 2 and "not in the cache" in r.stderr


def test_service_exception_and_status_lines_are_refused(tmp_path):
    """The checks each answer passes before it is kept."""
    from omw_sites.sources import answers

    cases = {
        "uldk.txt": (
            answers.uldk_text,
            b"-1 brak wynik\xc3\xb3w\n",
            "ULDK found nothing \\(status '-1 brak wyników'\\)",
        ),
        "ex.xml": (
            answers.wfs_collection,
            b'<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1"><ows:Exception>'
            b"<ows:ExceptionText>Unknown TYPENAMES</ows:ExceptionText></ows:Exception>"
            b"</ows:ExceptionReport>",
            "exception: Unknown TYPENAMES",
        ),
        "capped.xml": (
            answers.wfs_collection,
            b'<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0" '
            b'numberMatched="25000" numberReturned="10000"/>',
            "only 10000 of 25000 features returned",
        ),
        "cut.xml": (answers.wfs_collection, b"<wfs:FeatureCollection xmlns:wfs='x'><a>", "cut"),
        "err.tif": (answers.elevation_grid, b"<ServiceExceptionReport/>", "got XML"),
        "remark.osm": (
            answers.osm_xml,
            b"<osm><remark>runtime error: Query timed out</remark></osm>",
            "Overpass: runtime error",
        ),
        "page.zip": (answers.zip_package, b"<html>busy</html>", "not a zip"),
    }
    for name, (check, body, said) in cases.items():
        (tmp_path / name).write_bytes(body)
        with pytest.raises(answers.BadAnswer, match=said):
            check(tmp_path / name)
    asc = tmp_path / "sheet.asc"
    asc.write_text("ncols 2\nnrows 2\nxllcenter 500000.0\nyllcenter 400000.0\ncellsize 0.99936\n"
                   "nodata_value -9999\n1 2\n3 4\n")  # fmt: skip
    answers.elevation_grid(asc)  # an ASC sheet's header passes


def test_bad_arguments_are_one_line(tmp_path):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "omw_sites", "fetch", "--out", str(tmp_path), *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    for args, said in (
        (("--gmina", "1418"), "not a gmina TERYT"),
        (("--gmina", GMINA, "--only", "cadastre"), "unknown source(s) cadastre"),
        (("--bbox", "1,2,3"), "expected xmin,ymin,xmax,ymax"),
        ((), "give --gmina"),
    ):
        r = cli(*args)
        assert r.returncode == 2 and len(error_lines(r.stderr)) == 1 and said in r.stderr, r.stderr


def test_retries_after_500_and_waits_its_turn_per_host(services, tmp_path):
    """Two 500s, then the answer: it arrives on the third attempt, after the backoff; the
    requests to one host are spaced by the rate limit."""
    from omw_sites.sources import answers
    from omw_sites.sources.downloads import Downloader

    services.fault("bdot10k", "status", times=2, value=500)
    dl = Downloader(tmp_path / "cache", retries=2, backoff=0.2, min_interval=0.5, timeout=5)
    url = f"{services.url}/bdot10k/14/{POWIAT}_GML.zip"
    t0 = time.monotonic()
    got = dl.get("bdot10k", url, answers.zip_package)
    took = time.monotonic() - t0
    assert [e["status"] for e in services.requests("bdot10k")] == [500, 500, 200]
    assert took >= 0.2 + 0.4  # the backoff doubled; the rate limit is shorter than both
    assert got.status == "downloaded" and got.size == Path(got.path).stat().st_size
    t0 = time.monotonic()
    for tag in ("a", "b"):  # no backoff now: only the per-host interval spaces them
        dl.get("boundaries", f"{services.url}/uldk/?request=GetCommuneById&id=141804_3&x={tag}",
               answers.uldk_text)  # fmt: skip
    assert time.monotonic() - t0 >= 0.5


def test_unknown_gmina_is_named_and_the_area_sources_say_why(services, tmp_path):
    r = fetch(services, tmp_path / "cache", "--gmina", "1499999", "--out", str(tmp_path / "raw"))
    assert r.returncode == 2
    lines = error_lines(r.stderr)
    assert lines[0].startswith("error: boundaries: ULDK found nothing (status '-1 brak wyników')")
    assert "id=149999_9" in lines[0]
    assert any(line.startswith("error: nmt: the area's extent is unknown") for line in lines)
    assert not (tmp_path / "raw" / "admin").exists()  # nothing half-made


def test_a_fetch_cut_off_resumes_in_the_next_one(services, tmp_path):
    """No retries left when the link drops: the fetch names the source and ends with 2,
    the folder has no half file; the next fetch continues from the bytes it has."""
    services.fault("bdot10k", "drop", value=30_000)
    out, cache = tmp_path / "raw", tmp_path / "cache"
    env = {**services.env(cache), "OMW_SOURCE_RETRIES": "0"}
    args = ("--gmina", GMINA, "--only", "bdot10k", "--out", str(out))
    r = fetch(services, cache, *args, env=env)
    assert r.returncode == 2
    (line,) = error_lines(r.stderr)
    assert line.startswith("error: bdot10k: connection closed after 30,000 of ")
    assert "bytes (after 1 attempt)" in line
    assert f"/bdot10k/14/{POWIAT}_GML.zip" in line
    assert not (out / "bdot10k").exists() or not list((out / "bdot10k").iterdir())
    (part,) = cache.glob("*.part")
    assert part.stat().st_size == 30_000
    r = fetch(services, cache, *args, env=env)
    assert r.returncode == 0, r.stderr
    assert services.requests("bdot10k")[-1]["Range"] == "bytes=30000-"
    with zipfile.ZipFile(out / f"bdot10k/{POWIAT}_GML.zip") as z:
        assert z.testzip() is None
