"""The pages' scripts and styles: MapLibre's 1 MB script and the catalogue's own files
travel gzip-compressed to browsers that accept it, with their own strong ETag, and
revalidate; clients that do not accept gzip get the file as it is."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest
from sample_store import make_sample_store
from starlette.testclient import TestClient

import omw_sites.api
from omw_sites.api.server import create_app
from omw_sites.api.tiling import cached_tile, peek_tile, warm_tiles, warm_zooms

STATIC = Path(omw_sites.api.__file__).with_name("static")
MAPLIBRE = "/static/vendor/maplibre-gl/maplibre-gl.js"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    store = make_sample_store(tmp_path_factory.mktemp("static") / "omw_sites.gpkg", n=60)
    return TestClient(create_app(store))


class Sent:
    """A response as the server sent it: status, headers and the body still encoded."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = b"".join(response.iter_raw())
        response.close()


def raw_get(client: TestClient, path: str, **headers: str) -> Sent:
    request = client.build_request("GET", path, headers=headers)
    return Sent(client.send(request, stream=True))


def test_maplibre_goes_gzipped_with_its_own_strong_etag(client: TestClient) -> None:
    plain = raw_get(client, MAPLIBRE, **{"Accept-Encoding": "identity"})
    zipped = raw_get(client, MAPLIBRE, **{"Accept-Encoding": "gzip, deflate, br"})
    original = (STATIC / "vendor/maplibre-gl/maplibre-gl.js").read_bytes()
    assert plain.status_code == zipped.status_code == 200
    assert "content-encoding" not in plain.headers
    assert plain.content == original
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == original
    assert len(zipped.content) < len(original) / 3  # what a visitor on a slow line feels
    for sent in (plain, zipped):
        assert "Accept-Encoding" in sent.headers["vary"]
    tags = plain.headers["etag"], zipped.headers["etag"]
    assert tags[0] != tags[1] and not any(t.startswith("W/") for t in tags)
    assert zipped.headers["content-type"] == plain.headers["content-type"]


def test_each_variant_revalidates_with_its_own_tag(client: TestClient) -> None:
    zipped = raw_get(client, MAPLIBRE, **{"Accept-Encoding": "gzip"})
    again = raw_get(
        client, MAPLIBRE, **{"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    plain = raw_get(client, MAPLIBRE, **{"Accept-Encoding": "identity"})
    again = raw_get(
        client, MAPLIBRE, **{"Accept-Encoding": "identity", "If-None-Match": plain.headers["etag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize("accept", ["gzip;q=0", "br", "", "identity, gzip;q=0.0"])
def test_no_gzip_unless_accepted(client: TestClient, accept: str) -> None:
    got = raw_get(client, "/static/catalogue.js", **{"Accept-Encoding": accept})
    assert got.status_code == 200 and "content-encoding" not in got.headers
    assert got.content == (STATIC / "catalogue.js").read_bytes()


def test_head_has_the_get_headers_and_no_body(client: TestClient) -> None:
    head = client.head(MAPLIBRE, headers={"Accept-Encoding": "gzip"})
    get = raw_get(client, MAPLIBRE, **{"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == str(len(get.content))


# ------------------------------------------------------------- tiles ready before the map


def test_the_first_zoom_warmed_is_the_one_that_fits_the_region() -> None:
    # 70 km across (the OMW's core) into an 800-pixel map of 512-pixel tiles: zoom 9.3
    order = warm_zooms((2_290_000.0, 6_800_000.0, 2_400_000.0, 6_906_000.0))
    assert order[:3] == [9, 10, 8]
    assert sorted(order) == list(range(25))


def test_warming_fills_the_cache_the_tile_route_answers_from(tmp_path: Path) -> None:
    store = make_sample_store(tmp_path / "omw_sites.gpkg", n=80)
    app = create_app(store)
    layer = app.state.catalog._snapshot.layers["sites"]
    assert warm_tiles(layer, max_tiles=40) > 0
    warmed = dict(layer.cache["tiles"])
    assert any(data is not None for data in warmed.values())
    client = TestClient(app)
    for (z, x, y), data in list(warmed.items())[:10]:
        assert peek_tile(layer, z, x, y) == (True, data)
        got = client.get(f"/collections/sites/tiles/WebMercatorQuad/{z}/{x}/{y}")
        assert got.status_code == (200 if data else 204)
        assert got.content == (data or b"")
        layer.cache["tiles"].pop((z, x, y))
        assert cached_tile(layer, z, x, y) == data  # encoding again gives the same bytes
