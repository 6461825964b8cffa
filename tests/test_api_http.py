"""HTTP and OGC behaviour of the API against a real server: content negotiation, HEAD,
limit clamping, gzip, unknown parameters, local tile matrix sets (GDAL's OGC API Tiles
driver, offline), date formats and the temporal extent, and OWSLib paging every collection.

The store holds 10,050 sites: more than one page of the 10,000-feature maximum.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import httpx
import pyproj
import pytest
from conftest import need
from sample_store import make_sample_store
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from test_api import assert_problem, iter_coords, strict_json

from omw_sites.layers import REFERENCE_LAYERS

N_SITES = 10_050
MAX_LIMIT = 10_000
ITEMS = "/collections/sites/items"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
GDAL_ACCEPT = "application/geo+json, application/json"  # what GDAL's OGC API drivers send
TMS = "/tileMatrixSets/WebMercatorQuad"
TILESET = "/collections/sites/tiles/WebMercatorQuad"
CHANGES = "/collections/sites/changes?since=2000-01-01"
WMQ_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
MERCATOR_HALF = 20037508.342789244  # metres: half the side of the EPSG:3857 world square
TILE_SIZE, PIXEL_SIZE = 256, 0.00028  # pixels per tile; metres per pixel of OGC scales
WARSAW_TILE_11 = (1143, 674)  # column, row of the tile of the Palace of Culture at zoom 11
WARSAW_TILE = f"{TILESET}/11/{WARSAW_TILE_11[0]}/{WARSAW_TILE_11[1]}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_store(tmp_path_factory.mktemp("api_http") / "omw.gpkg", n=N_SITES, seed=4)


@pytest.fixture(scope="module")
def first_id(sites: gpd.GeoDataFrame) -> str:
    return str(sites["site_id"].iloc[0])


def json_resources(first_id: str) -> dict[str, str]:
    """Every resource that has JSON, and the JSON media type it is served as."""
    return {
        "/": "application/json",
        "/conformance": "application/json",
        "/collections": "application/json",
        "/collections/sites": "application/json",
        "/collections/rail": "application/json",
        f"{ITEMS}?limit=3": "application/geo+json",
        f"{ITEMS}/{first_id}": "application/geo+json",
        "/collections/rail/items?limit=3": "application/geo+json",
        "/collections/sites/queryables": "application/schema+json",
        "/collections/sites/tiles": "application/json",
        TILESET: "application/json",
        "/tileMatrixSets": "application/json",
        TMS: "application/json",
        CHANGES: "application/json",
    }


def media(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def with_param(url: str, **params: str) -> str:
    return str(httpx.URL(url).copy_merge_params(params))


# ----------------------------------------------------------------- content negotiation


def test_a_browser_gets_html_of_every_resource(client: httpx.Client, first_id: str) -> None:
    for url in json_resources(first_id):
        r = client.get(url, headers={"Accept": BROWSER})
        assert r.status_code == 200, (url, r.text[:300])
        assert media(r) == "text/html", url
        assert r.text.lstrip().lower().startswith("<!doctype html>"), url
        assert "Accept" in r.headers["vary"], url


def test_json_stays_the_default_for_clients(client: httpx.Client, first_id: str) -> None:
    owslib = {"User-Agent": "OWSLib 0.35.0 (https://owslib.readthedocs.io)", "Accept": "*/*"}
    for url, json_type in json_resources(first_id).items():
        for headers in ({}, {"Accept": "*/*"}, {"Accept": GDAL_ACCEPT}, owslib):
            r = client.get(url, headers=headers)
            assert r.status_code == 200, (url, headers, r.text[:300])
            assert media(r) == json_type, (url, headers)
            json.loads(r.content)
        # GDAL's JSON request is answered in its own media type, an equal-q tie goes to JSON
        tie = client.get(url, headers={"Accept": "text/html, application/json"})
        assert media(tie) == json_type, url
        assert "Accept" in tie.headers["vary"], url


def test_f_overrides_accept(client: httpx.Client, first_id: str) -> None:
    for url, json_type in json_resources(first_id).items():
        as_json = client.get(with_param(url, f="json"), headers={"Accept": BROWSER})
        assert media(as_json) == json_type, url
        as_html = client.get(with_param(url, f="html"), headers={"Accept": "application/json"})
        assert media(as_html) == "text/html", url
    geojson = client.get(f"{ITEMS}/{first_id}", params={"f": "geojson"})
    assert media(geojson) == "application/geo+json"


def test_nothing_acceptable_is_406(client: httpx.Client, first_id: str) -> None:
    for url in json_resources(first_id):
        r = client.get(url, headers={"Accept": "application/xml, text/csv;q=0.5"})
        body = assert_problem(r, 406, "application/xml")
        assert "f=json" in body["detail"], url
        assert "Accept" in r.headers["vary"]
    # q=0 excludes a type even when */* allows the rest
    r = client.get("/collections", headers={"Accept": "application/json;q=0, */*;q=0.1"})
    assert media(r) == "text/html"
    assert_problem(client.get("/maps/office", headers={"Accept": "application/json"}), 406)
    # a tile is MVT only: what a browser or GDAL (no Accept) asks for gets it
    assert_problem(client.get(WARSAW_TILE, headers={"Accept": "application/json"}), 406)
    for accept in (BROWSER, "*/*", "application/vnd.mapbox-vector-tile"):
        tile = client.get(WARSAW_TILE, headers={"Accept": accept})
        assert media(tile) == "application/vnd.mapbox-vector-tile", accept


def test_pages_link_each_format_explicitly(client: httpx.Client, base_url: str) -> None:
    """A browser following a page's JSON link gets JSON, its HTML links HTML."""
    page = client.get("/collections/sites", headers={"Accept": BROWSER}).text
    assert f'href="{base_url}/collections/sites?f=json" type="application/json"' in page
    assert f'href="{base_url}/collections/sites/queryables?f=json"' in page
    assert f'href="{base_url}/collections/sites/items?f=json"' in page
    queryables = client.get(f"{base_url}/collections/sites/queryables?f=html").text
    assert f'href="{base_url}/collections/sites/queryables?f=json"' in queryables
    followed = client.get("/collections/sites/queryables?f=json", headers={"Accept": BROWSER})
    assert media(followed) == "application/schema+json"


def test_html_of_queryables_tiles_and_changes(client: httpx.Client, first_id: str) -> None:
    english = {"Accept-Language": "en"}  # pages without a language are Polish
    queryables = client.get("/collections/sites/queryables", params={"f": "html"}, headers=english)
    assert "<td>updated_at</td><td>string</td><td>date-time</td>" in queryables.text
    assert "datetime parameter filters on updated_at" in queryables.text
    tileset = client.get(TILESET, params={"f": "html"}).text
    assert "/{tileMatrix}/{tileCol}/{tileRow}</code>" in tileset
    assert f"{TMS}?f=html" in tileset
    tms = client.get(TMS, params={"f": "html"}, headers=english).text
    assert tms.count("<tr><td>") == 25 and "559,082,264.028717" in tms
    changes = client.get(with_param(CHANGES, f="html", limit="5"), headers=english).text
    assert changes.count(f"{ITEMS}/") == 5 and "next page" in changes
    assert "offset=5" in changes and "f=html" in changes
    assert f'{ITEMS}/{first_id}?f=html">{first_id}</a></td><td>created</td>' in changes


# ------------------------------------------------------------------------------- HEAD


def test_head_wherever_get(client: httpx.Client, first_id: str) -> None:
    identity = {"Accept-Encoding": "identity"}
    urls = [*json_resources(first_id), "/openapi.json", WARSAW_TILE]
    for url in urls:
        for accept in ("*/*", BROWSER):
            headers = {**identity, "Accept": accept}
            get = client.get(url, headers=headers)
            head = client.head(url, headers=headers)
            assert head.status_code == get.status_code, url
            assert head.content == b"", url
            for name in ("content-type", "content-length", "etag", "vary", "last-modified"):
                assert head.headers.get(name) == get.headers.get(name), (url, name)
    # compressed: the headers of the gzip body a GET would get
    head = client.head(f"{ITEMS}?limit=500", headers={"Accept-Encoding": "gzip"})
    assert head.headers["content-encoding"] == "gzip" and int(head.headers["content-length"]) > 0
    # errors too: a 404 problem's headers, no body
    missing = client.head("/collections/nope")
    assert missing.status_code == 404 and missing.content == b""
    assert missing.headers["content-type"] == "application/problem+json"


# ------------------------------------------------------------------------------ limit


def test_limit_above_the_maximum_is_clamped(client: httpx.Client) -> None:
    doc = strict_json(client.get(ITEMS, params={"limit": MAX_LIMIT + 1}))
    assert doc["numberReturned"] == MAX_LIMIT and doc["numberMatched"] == N_SITES
    (nxt,) = [ln["href"] for ln in doc["links"] if ln["rel"] == "next"]
    query = parse_qs(urlsplit(nxt).query)
    assert query["offset"] == [str(MAX_LIMIT)] and query["limit"] == [str(MAX_LIMIT)]
    rest = strict_json(client.get(nxt))
    assert rest["numberReturned"] == N_SITES - MAX_LIMIT
    huge = client.get(ITEMS, params={"limit": 10**12, "properties": "site_id"})
    assert strict_json(huge)["numberReturned"] == MAX_LIMIT
    for bad in ("0", "-1", "ten"):
        assert_problem(client.get(ITEMS, params={"limit": bad}), 400, "limit")
    feed = strict_json(client.get(with_param(CHANGES, limit="50000")))
    assert feed["numberReturned"] == MAX_LIMIT and feed["numberMatched"] == N_SITES
    assert "offset=10000" in next(ln["href"] for ln in feed["links"] if ln["rel"] == "next")
    assert_problem(client.get(with_param(CHANGES, limit="0")), 400, "limit")


# ------------------------------------------------------------------------------- gzip


def test_large_bodies_are_gzipped(base_url: str) -> None:
    url = f"{base_url}{ITEMS}?limit={MAX_LIMIT}"
    with httpx.Client(trust_env=False, timeout=60) as raw:
        with raw.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
            wire = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == "gzip"
        assert int(r.headers["content-length"]) == len(wire)
        assert {"Accept", "Accept-Encoding"} <= {v.strip() for v in r.headers["vary"].split(",")}
        body = gzip.decompress(wire)
        assert json.loads(body)["numberReturned"] == MAX_LIMIT
        assert len(body) > 4 * len(wire)  # GeoJSON of 10,000 sites compresses well
        plain = raw.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert int(plain.headers["content-length"]) == len(plain.content) > 4 * len(wire)
        # a small body is sent as it is
        small = raw.get(f"{base_url}/tileMatrixSets", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers
        assert int(small.headers["content-length"]) == len(small.content) < 1024


def test_etags_and_304_with_gzip(client: httpx.Client, first_id: str) -> None:
    gz, plain = {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "identity"}
    first = client.get(ITEMS, params={"limit": 500}, headers=gz)
    assert first.headers["content-encoding"] == "gzip"
    etag = first.headers["etag"]
    assert etag.startswith('W/"')  # weak: the same for either coding
    assert client.get(ITEMS, params={"limit": 500}, headers=plain).headers["etag"] == etag
    again = client.get(ITEMS, params={"limit": 500}, headers={**gz, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and "content-encoding" not in again.headers
    # the format served is part of the tag: HTML and JSON of one URL differ
    html = client.get(ITEMS, params={"limit": 500}, headers={**gz, "Accept": BROWSER})
    assert html.headers["etag"] != etag
    # a site's own strong ETag (the If-Match of writes) names the bytes sent: not compressed
    item = client.get(f"{ITEMS}/{first_id}", headers=gz)
    if not item.headers["etag"].startswith("W/"):
        assert "content-encoding" not in item.headers
        assert int(item.headers["content-length"]) == len(item.content) > 1024
    stale = client.get(
        ITEMS, params={"limit": 500}, headers={"Accept": BROWSER, "If-None-Match": etag}
    )
    assert stale.status_code == 200


def _app() -> Starlette:
    from omw_sites.api.middleware import CompressionMiddleware, HeadMiddleware

    big = b"x" * 5000

    async def weak(request: Any) -> Response:
        return Response(big, media_type="application/json", headers={"ETag": 'W/"w"'})

    async def strong(request: Any) -> Response:
        return Response(big, media_type="application/json", headers={"ETag": '"s"'})

    async def write(request: Any) -> Response:
        return Response(b"")

    app = Starlette(
        routes=[
            Route("/weak", weak),
            Route("/strong", strong),
            Route("/write", write, methods=["PATCH"]),
        ]
    )
    app.add_middleware(CompressionMiddleware)
    app.add_middleware(HeadMiddleware)
    return app


def test_strong_etags_are_not_compressed_and_head_lists_allow() -> None:
    """A strong validator names one byte sequence: that response goes out uncompressed,
    so If-Match with the tag a client got still matches."""
    with TestClient(_app()) as tc:
        weak = tc.get("/weak", headers={"Accept-Encoding": "gzip"})
        assert weak.headers["content-encoding"] == "gzip" and weak.content == b"x" * 5000
        strong = tc.get("/strong", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in strong.headers
        assert strong.headers["etag"] == '"s"' and strong.headers["content-length"] == "5000"
        head = tc.head("/strong")
        assert head.status_code == 200 and head.headers["content-length"] == "5000"
        assert head.content == b""
        not_allowed = tc.head("/write")
        assert not_allowed.status_code == 405 and "HEAD" not in not_allowed.headers["allow"]
        assert tc.head("/weak").status_code == 200


# ------------------------------------------------------------------ unknown parameters


def test_unknown_parameters_are_refused_everywhere(client: httpx.Client, first_id: str) -> None:
    urls = [
        *json_resources(first_id),
        WARSAW_TILE,
        "/maps/office",
        f"/sites/{first_id}/sheet",
        "/openapi.json",
    ]
    for url in urls:
        r = client.get(with_param(url, bogus="1", limti="5"))
        body = assert_problem(r, 400, "bogus", "limti")
        names = sorted(p["name"] for p in body["invalid-params"])
        assert names == ["bogus", "limti"], url
    # the names the change feed does take
    assert client.get(with_param(CHANGES, limit="2", offset="1", f="json")).status_code == 200
    assert_problem(client.get(f"/sites/{first_id}/sheet", params={"lang": "de"}), 400, "lang")


# ---------------------------------------------------------------- tile matrix sets


def test_tile_matrix_sets_are_served_locally(client: httpx.Client, base_url: str) -> None:
    listing = strict_json(client.get("/tileMatrixSets"))
    (entry,) = listing["tileMatrixSets"]
    assert entry["id"] == "WebMercatorQuad" and entry["uri"] == WMQ_URI
    self_link = next(ln for ln in entry["links"] if ln["rel"] == "self")
    assert self_link["href"] == f"{base_url}{TMS}"
    tms = strict_json(client.get(self_link["href"]))
    assert tms["id"] == "WebMercatorQuad" and tms["uri"] == WMQ_URI
    assert tms["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert tms["orderedAxes"] == ["X", "Y"]
    assert (
        tms["wellKnownScaleSet"] == "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible"
    )
    matrices = tms["tileMatrices"]
    assert [m["id"] for m in matrices] == [str(z) for z in range(25)]
    for z, m in enumerate(matrices):  # OGC 17-083r4 Annex D.1
        cell = 2 * MERCATOR_HALF / TILE_SIZE / 2**z
        assert m["cellSize"] == pytest.approx(cell, rel=1e-13)
        assert m["scaleDenominator"] == pytest.approx(cell / PIXEL_SIZE, rel=1e-13)
        assert m["matrixWidth"] == m["matrixHeight"] == 2**z
        assert m["tileWidth"] == m["tileHeight"] == 256
        assert m["cornerOfOrigin"] == "topLeft"
        assert m["pointOfOrigin"] == [-20037508.3427892, 20037508.3427892]
    # the registry's own figures, digit for digit
    assert matrices[0]["scaleDenominator"] == 559082264.028717
    assert matrices[24]["cellSize"] == 0.0093306919293428
    assert_problem(client.get("/tileMatrixSets/WorldCRS84Quad"), 404, "WebMercatorQuad")


def test_tileset_and_landing_link_the_local_definition(client: httpx.Client, base_url: str) -> None:
    tileset = strict_json(client.get(TILESET))
    assert tileset["tileMatrixSetURI"] == WMQ_URI  # the identifier stays the OGC URI
    scheme = [ln for ln in tileset["links"] if ln["rel"].endswith("/tiling-scheme")]
    assert [ln["href"] for ln in scheme] == [f"{base_url}{TMS}"]
    assert not [ln for ln in tileset["links"] if "opengis.net" in ln["href"]]
    listed = strict_json(client.get("/collections/sites/tiles"))["tilesets"][0]["links"]
    assert f"{base_url}{TMS}" in [ln["href"] for ln in listed]
    landing = strict_json(client.get("/"))
    schemes = [ln for ln in landing["links"] if ln["rel"].endswith("/tiling-schemes")]
    assert [ln["href"] for ln in schemes] == [f"{base_url}/tileMatrixSets"]
    conforms = strict_json(client.get("/conformance"))["conformsTo"]
    assert "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset" in conforms
    # the tiles that hold data, per tile matrix
    limits = {lim["tileMatrix"]: lim for lim in tileset["tileMatrixSetLimits"]}
    assert len(limits) == 25 and limits["0"]["maxTileCol"] == 0
    z11 = limits["11"]
    col, row = WARSAW_TILE_11
    assert z11["minTileCol"] <= col <= z11["maxTileCol"]
    assert z11["minTileRow"] <= row <= z11["maxTileRow"]
    assert z11["maxTileCol"] - z11["minTileCol"] < 10  # the sites' region, not the world


GDAL_TILES = textwrap.dedent(
    """
    import json, sys
    import pyogrio, pyproj
    pyogrio.set_gdal_config_options(
        {"GDAL_HTTP_TIMEOUT": "60", "GDAL_HTTP_MAX_RETRY": "0", "CPL_DEBUG": "ON"}
    )
    url, bbox = sys.argv[1], json.loads(sys.argv[2])
    # GDAL takes the collection's extent to be in the tile matrix set's CRS; the extent
    # in EPSG:3857 is given as its documented open options
    x0, y0, x1, y1 = pyproj.Transformer.from_crs(
        "OGC:CRS84", "EPSG:3857", always_xy=True
    ).transform_bounds(*bbox)
    source = f"OGCAPI:{url}/collections/sites"
    df = pyogrio.read_dataframe(
        source, layer="Zoom level 11", MINX=x0, MINY=y0, MAXX=x1, MAXY=y1
    )
    print(json.dumps({"ids": df["site_id"].tolist(), "crs": df.crs.to_string()}))
    """
)


def test_gdal_reads_the_vector_tiles_offline(
    client: httpx.Client, base_url: str, sites: gpd.GeoDataFrame
) -> None:
    """GDAL's OGC API driver (pyogrio's GDAL): collection → tilesets → tileset → the tile
    matrix set definition → MVT tiles, every request to this server."""
    bbox = strict_json(client.get("/collections/sites"))["extent"]["spatial"]["bbox"][0]
    proc = subprocess.run(
        [sys.executable, "-c", GDAL_TILES, base_url, json.dumps(bbox)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    fetched = [ln.split("Fetch(", 1)[1] for ln in proc.stderr.splitlines() if "Fetch(" in ln]
    assert any(f.startswith(f"{base_url}{TMS}") for f in fetched), fetched[:10]
    assert all(f.startswith(base_url) for f in fetched), [f for f in fetched if base_url not in f]
    got = json.loads(proc.stdout)
    assert got["crs"] == "EPSG:3857"
    # a site crossing tile edges comes once per tile: every site is there
    assert set(got["ids"]) == set(sites["site_id"])


def test_tiles_conformance_classes_are_declared(client: httpx.Client) -> None:
    """OGC API – Tiles clients look for its classes before they ask for tilesets."""
    conforms = set(strict_json(client.get("/conformance"))["conformsTo"])
    base = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
    for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt", "oas30"):
        assert base + name in conforms, name


def test_gdal_3_6_understands_the_served_tile_matrix_set(base_url: str) -> None:
    """Debian 12's ``ogrinfo`` (GDAL 3.6, as in QGIS 3.28 LTR builds) reads a served tile
    matrix set only by the members of its 1.0 encoding; with a 2.0-only document it fails
    with "Invalid tiling matrix set name" before any tile. (Debian's build of that
    driver has no vector-tile reading at all, so the open itself still fails there.)"""
    ogrinfo = shutil.which("ogrinfo")
    need(ogrinfo is not None, "Debian's gdal-bin (ogrinfo) is not installed")
    assert ogrinfo is not None
    proc = subprocess.run(
        [ogrinfo, "--debug", "on", "-ro", "-so", f"OGCAPI:{base_url}/collections/sites"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if (
        "GDAL 3.6"
        not in subprocess.run(
            [ogrinfo, "--version"], capture_output=True, text=True, check=True
        ).stdout
    ):
        pytest.skip("the check is about GDAL 3.6's tile matrix set reader")
    assert f"Fetch({base_url}{TMS})" in proc.stderr, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
    assert errors == [], errors


# ----------------------------------------------------- queryables, temporal extent


def test_date_properties_have_formats(client: httpx.Client) -> None:
    props = strict_json(client.get("/collections/sites/queryables"))["properties"]
    for name in ("created_at", "updated_at"):
        assert props[name]["type"] == "string" and props[name]["format"] == "date-time", name
        assert "x-ogc-unit" not in props[name]  # UTC is a time zone, said by the format
    assert props["status_date"]["format"] == "date"
    assert props["updated_at"]["x-ogc-role"] == "primary-instant"
    assert "datetime parameter" in props["updated_at"]["description"]
    assert "format" not in props["area_ha"] and "format" not in props["site_id"]
    openapi = strict_json(client.get("/openapi.json"))
    params = {p["name"]: p for p in openapi["paths"][ITEMS]["get"]["parameters"]}
    assert params["updated_at"]["schema"]["format"] == "date-time"
    assert "updated_at" in params["datetime"]["description"]


def test_date_equality_filters_check_the_format(
    client: httpx.Client, sites: gpd.GeoDataFrame
) -> None:
    stamp = str(sites["updated_at"].iloc[0])
    doc = strict_json(client.get(ITEMS, params={"updated_at": stamp, "limit": 1}))
    assert doc["numberMatched"] == (sites["updated_at"] == stamp).sum() > 0
    assert_problem(client.get(ITEMS, params={"updated_at": "yesterday"}), 400, "date-time")
    assert_problem(client.get(ITEMS, params={"status_date": "2026-13"}), 400, "RFC 3339 date")


def test_temporal_extent_is_the_records_interval(
    client: httpx.Client, sites: gpd.GeoDataFrame
) -> None:
    doc = strict_json(client.get("/collections"))
    colls = {c["id"]: c for c in doc["collections"]}
    temporal = colls["sites"]["extent"]["temporal"]
    assert temporal["trs"] == "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
    ((start, end),) = temporal["interval"]
    created = sorted(sites["created_at"].dropna())
    updated = sorted(sites["updated_at"].dropna())
    assert start == created[0] and end == updated[-1]
    for name in REFERENCE_LAYERS:
        if name in colls:
            assert "temporal" not in colls[name]["extent"], name
    # the extent's ends, given as datetime, select the first and the last record
    assert strict_json(client.get(ITEMS, params={"datetime": end}))["numberMatched"] > 0
    html = client.get("/collections/sites", params={"f": "html"}).text
    assert f"{start} – {end}" in html


# -------------------------------------------------------------------------- OpenAPI


def test_openapi_declares_what_the_server_takes(client: httpx.Client) -> None:
    doc = strict_json(client.get("/openapi.json"))
    served = strict_json(client.get("/collections/sites"))["crs"]
    for path, item in doc["paths"].items():
        get = item.get("get")
        if get is None:
            continue
        params = {p["name"]: p for p in get.get("parameters", []) if p["in"] == "query"}
        assert "f" in params and params["f"]["schema"]["enum"], path
        if path.endswith("/items") or path.endswith("{featureId}"):
            assert params["crs"]["schema"]["enum"] == served, path
            assert "406" in get["responses"], path
        if "limit" in params:
            assert params["limit"]["schema"]["minimum"] == 1, path
            assert "maximum" not in params["limit"]["schema"], path  # clamped, not refused
    tile = doc["paths"]["/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}"]["get"]
    schemas = {p["name"]: p["schema"] for p in tile["parameters"] if p["in"] == "path"}
    assert schemas["z"] == {**schemas["z"], "type": "integer", "minimum": 0, "maximum": 24}
    assert schemas["x"]["type"] == schemas["y"]["type"] == "integer"
    sheet = doc["paths"]["/sites/{siteId}/sheet"]["get"]
    lang = next(p for p in sheet["parameters"] if p["name"] == "lang")
    assert lang["schema"]["enum"] == ["pl", "en"]
    assert "/tileMatrixSets/{tileMatrixSetId}" in doc["paths"]


# --------------------------------------------------------------------------- OWSLib


def test_owslib_pages_through_every_collection(base_url: str, store: Path) -> None:
    """OWSLib's Features client reads each collection to the end by its next links and
    gets every feature once; the sites with a limit above the maximum (clamped)."""
    from owslib.ogcapi.features import Features

    from omw_sites.store import open_backend

    api = Features(base_url, timeout=120)
    collections = api.feature_collections()
    assert collections[0] == "sites" and len(collections) > 1
    present = set(open_backend(store).list_layers())
    for cid in collections:
        limit = 20_000 if cid == "sites" else 7
        params: dict[str, Any] = {"limit": limit}
        seen: list[Any] = []
        pages = 0
        while True:
            page = api.collection_items(cid, **params)
            pages += 1
            seen += [f["id"] for f in page["features"]]
            nxt = [ln["href"] for ln in page["links"] if ln["rel"] == "next"]
            if not nxt:
                break
            assert nxt[0].startswith(base_url)
            params = {k: v[0] for k, v in parse_qs(urlsplit(nxt[0]).query).items()}
            assert pages < 100, cid
        assert len(seen) == len(set(seen)) == page["numberMatched"], cid
        if cid == "sites":
            assert len(seen) == N_SITES and pages == 2
        else:
            assert cid in present and pages == -(-len(seen) // limit) or len(seen) == 0


def test_crs_list_round_trip_in_epsg4258(client: httpx.Client, first_id: str) -> None:
    """ETRS89 answers in (latitude, longitude), as its EPSG definition orders the axes."""
    crs84 = strict_json(client.get(f"{ITEMS}/{first_id}"))
    etrs = client.get(
        f"{ITEMS}/{first_id}", params={"crs": "http://www.opengis.net/def/crs/EPSG/0/4258"}
    )
    assert etrs.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4258>"
    lon, lat = next(iter_coords(crs84["geometry"]))
    a, b = next(iter_coords(strict_json(etrs)["geometry"]))
    want = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:4258").transform(lon, lat)
    assert (a, b) == pytest.approx(want, abs=1e-6) and 52 < a < 53 and 20 < b < 22
