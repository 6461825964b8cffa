"""What a user does: the real pipeline's store served by `omw-sites serve`, read by httpx,
GDAL's OAPIF client and headless Chromium; `omw-sites map` and `omw-sites top`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from cli_run import serving
from test_api import gdal_read
from test_maps import _chromium, _decode_png, _run_chromium

from omw_sites.maps.assets import check_offline
from omw_sites.store import read_sites


@pytest.fixture(scope="module")
def served(demo_store: Path) -> Iterator[str]:
    with serving(demo_store) as (url, _):
        yield url


def test_served_ranking_matches_the_store(served: str, demo_store: Path):
    sites = read_sites(demo_store, read_geometry=False)
    r = httpx.get(f"{served}/collections/sites/items", params={"profile": "logistics", "limit": 50})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    doc = r.json()
    assert doc["numberMatched"] == len(sites) and doc["numberReturned"] == 50
    ranks = [f["properties"]["rank_logistics"] for f in doc["features"]]
    eligible = [r for r in ranks if r > 0]
    assert ranks[0] == 1 and eligible == sorted(eligible)
    assert ranks == eligible + [0] * (len(ranks) - len(eligible))  # excluded sites last
    lon, lat = (
        doc["features"][0]["geometry"]["coordinates"][0][0][:2]
        if doc["features"][0]["geometry"]["type"] == "Polygon"
        else doc["features"][0]["geometry"]["coordinates"][0][0][0][:2]
    )
    assert 20.3 < lon < 21.7 and 51.9 < lat < 52.7  # the OMW, in CRS84
    one = httpx.get(f"{served}/collections/sites/items/{doc['features'][0]['id']}").json()
    assert one["properties"]["rank_logistics"] == 1


def test_gdal_reads_the_whole_pipeline_output(served: str, demo_store: Path):
    sites = read_sites(demo_store, read_geometry=False)
    got = gdal_read(served, "sites")
    assert got["n"] == len(sites)
    assert sorted(r["site_id"] for r in got["records"]) == sorted(sites["site_id"])


@pytest.mark.browser
def test_served_map_renders_sites_in_chromium(served: str, tmp_path: Path):
    exe = _chromium()
    png = tmp_path / "map.png"
    _run_chromium(exe, tmp_path / "profile", f"{served}/maps/logistics", f"--screenshot={png}")
    pixels = _decode_png(png.read_bytes()).reshape(-1, 3)
    colours = np.unique(pixels, axis=0)
    assert len(colours) > 50, "blank or near-blank page"
    dom = _run_chromium(exe, tmp_path / "profile2", f"{served}/maps/logistics", "--dump-dom")
    html = dom.decode(errors="replace")
    assert "leaflet-container" in html and html.count("leaflet-interactive") > 50


def test_map_command_and_top_command(demo_store: Path, tmp_path: Path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "omw_sites",
            "map",
            "--all",
            "--store",
            str(demo_store),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert {p.name for p in tmp_path.glob("*.html")} >= {
        "logistics.html",
        "office.html",
        "index.html",
    }
    check_offline((tmp_path / "logistics.html").read_text())  # raises on any web asset
    res = subprocess.run(
        [sys.executable, "-m", "omw_sites", "top", "--profile", "nope", "--store", str(demo_store)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "logistics" in res.stderr


def test_served_site_sheet(served: str, demo_store: Path):
    sites = read_sites(demo_store, read_geometry=False)
    best = sites.loc[sites["rank_logistics"] == 1, "site_id"].iloc[0]
    r = httpx.get(f"{served}/sites/{best}/sheet", params={"lang": "en"}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert best in r.text and "Land register" in r.text
    pl = httpx.get(f"{served}/sites/{best}/sheet", timeout=60)
    assert pl.status_code == 200 and "Księga wieczysta" in pl.text
    missing = httpx.get(f"{served}/sites/S0000000000/sheet")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "S0000000000" in missing.json()["detail"]
    assert httpx.get(f"{served}/sites/{best}/sheet", params={"lang": "de"}).status_code == 400


def test_map_compare_command(demo_store: Path, tmp_path: Path):
    cmd = [sys.executable, "-m", "omw_sites", "map", "--store", str(demo_store)]
    res = subprocess.run(
        [*cmd, "--compare", "logistics", "manufacturing", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "compare_logistics_manufacturing.html").read_text(encoding="utf-8")
    check_offline(page)
    assert "Spearman" in page
    bad = subprocess.run(
        [*cmd, "--compare", "logistics", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_map_popups_carry_drivers_and_link_to_the_served_sheet(served: str, demo_store: Path):
    import json
    from urllib.parse import urljoin

    sites = read_sites(demo_store, read_geometry=False)
    best = sites.loc[sites["rank_logistics"] == 1].iloc[0]
    page = httpx.get(f"{served}/maps/logistics?lang=en", timeout=120).text
    assert json.dumps(best["drivers_logistics"], ensure_ascii=False)[1:-1] in page
    # the popups link the sheet in the map's language
    assert '"sheetUrl": "../sites/{id}/sheet?lang=en"' in page
    link = urljoin(f"{served}/maps/logistics", f"../sites/{best['site_id']}/sheet?lang=en")
    sheet = httpx.get(link, timeout=60)
    assert sheet.status_code == 200 and sheet.headers["content-language"] == "en"
