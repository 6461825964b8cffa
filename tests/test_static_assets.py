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
