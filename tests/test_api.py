"""The read API against a real uvicorn server on loopback, with httpx and GDAL's OAPIF client."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import pytest
import shapely
from sample_store import make_sample_store

from omw_sites.api import make_server
from omw_sites.api.catalog import PRIVATE_COLUMNS
from omw_sites.api.served_layer import build_layer
from omw_sites.layers import (
    PROFILES_DEFAULT,
    REFERENCE_LAYERS,
    SITE_COLUMNS,
    SITES,
    excluded_col,
    rank_col,
    score_col,
)
from omw_sites.store import read_layer

N_SITES = 1200
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG2180 = "http://www.opengis.net/def/crs/EPSG/0/2180"
POLAND = (14.07, 49.0, 24.16, 54.84)  # lon/lat box
WARSAW_BBOX = (20.95, 52.15, 21.10, 52.28)


@contextmanager
def running_server(store: Path) -> Iterator[str]:
    """A real uvicorn server for ``store`` on a free loopback port, in a thread."""
    # IPPROTO_TCP, as uvicorn's own socket: asyncio then sets TCP_NODELAY on connections
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the port stays ours: uvicorn serves on this socket
    port = sock.getsockname()[1]
    server = make_server(
        store, "127.0.0.1", port, forwarded_allow_ips="*", log_level="warning", access_log=False
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while not server.started:
            if not thread.is_alive():
                msg = "the API server thread died during start-up"
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                msg = "the API server did not start within 30 s"
                raise TimeoutError(msg)
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
    assert not thread.is_alive(), "the API server did not stop within 15 s"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_store(tmp_path_factory.mktemp("api") / "omw_sites.gpkg", n=N_SITES)


def strict_json(response: httpx.Response) -> Any:
    """Parse a body, refusing NaN/Infinity (not JSON, and not allowed in GeoJSON)."""

    def refuse(token: str) -> None:
        msg = f"non-JSON constant {token} in the body"
        raise AssertionError(msg)

    return json.loads(response.text, parse_constant=refuse)


def assert_problem(response: httpx.Response, status: int, *needles: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    for needle in needles:
        assert needle in body["detail"], body["detail"]
    return body


def links_by_rel(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {link["rel"]: link for link in doc["links"]}


def expected_profile_order(sites: gpd.GeoDataFrame, profile: str) -> list[str]:
    rank = sites[rank_col(profile)].to_numpy()
    rows = np.arange(len(sites))
    order = np.lexsort((rows, np.where(rank == 0, 0, rank), rank == 0))
    return sites["site_id"].to_numpy()[order].tolist()


def iter_coords(geometry: dict[str, Any]) -> Iterator[list[float]]:
    def walk(c: Any) -> Iterator[list[float]]:
        if c and isinstance(c[0], int | float):
            yield c
        else:
            for part in c:
                yield from walk(part)

    yield from walk(geometry["coordinates"])


def assert_geojson_feature(feature: dict[str, Any], crs84: bool = True) -> None:
    assert feature["type"] == "Feature"
    assert {"id", "geometry", "properties"} <= feature.keys()
    geometry = feature["geometry"]
    assert geometry["type"] in {"Point", "LineString", "Polygon", "MultiPolygon"}
    coords = list(iter_coords(geometry))
    assert coords
    for x, y in coords:
        if crs84:
            assert POLAND[0] <= x <= POLAND[2] and POLAND[1] <= y <= POLAND[3], (x, y)
            assert round(x, 7) == x and round(y, 7) == y
    if geometry["type"] == "Polygon":
        for ring in geometry["coordinates"]:
            assert len(ring) >= 4 and ring[0] == ring[-1]
        if crs84:  # RFC 7946: exterior rings counter-clockwise
            assert shapely.Polygon(geometry["coordinates"][0]).exterior.is_ccw


# ------------------------------------------------------------------ landing, conformance


def test_landing_page_links(client: httpx.Client, base_url: str) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    rels = links_by_rel(doc)
    assert {"self", "service-desc", "conformance", "data"} <= rels.keys()
    assert rels["self"]["href"] == f"{base_url}/"
    assert rels["service-desc"]["href"] == f"{base_url}/openapi.json"
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert rels["conformance"]["href"] == f"{base_url}/conformance"
    assert rels["data"]["href"] == f"{base_url}/collections"
    maps = {
        ln["href"] for ln in doc["links"] if ln["type"] == "text/html" and "/maps/" in ln["href"]
    }
    assert maps == {f"{base_url}/maps/{p}" for p in PROFILES_DEFAULT}
    html = client.get("/", params={"f": "html"})
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    # a page links the JSON with f=json: a browser following a bare link would get HTML
    assert f'href="{base_url}/collections?f=json"' in html.text
    assert_problem(client.get("/", params={"f": "xml"}), 400, "'f'")


def test_conformance(client: httpx.Client) -> None:
    r = client.get("/conformance")
    assert r.status_code == 200
    conforms = set(r.json()["conformsTo"])
    base = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
    assert {base + "core", base + "oas30", base + "geojson"} <= conforms
    assert base + "html" in conforms  # landing, conformance, collections, items: f=html


def test_openapi_is_openapi_30(client: httpx.Client) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = r.json()
    assert doc["openapi"].startswith("3.0.")
    assert '"null"' not in r.text  # 3.1-only type
    items = doc["paths"]["/collections/{collectionId}/items"]["get"]
    params = {p["name"]: p for p in items["parameters"]}
    assert "maximum" not in params["limit"]["schema"]  # a larger limit is served as 10,000
    assert params["limit"]["schema"]["minimum"] == 1
    assert params["limit"]["schema"]["default"] == 10
    assert params["bbox"]["schema"]["type"] == "array"
    assert {"bbox", "offset", "profile", "datetime", "crs", "bbox-crs"} <= params.keys()
    assert "422" not in items["responses"]
    assert items["responses"]["400"]["content"]["application/problem+json"]
    assert "application/geo+json" in items["responses"]["200"]["content"]


def test_openapi_validates(client: httpx.Client) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(client.get("/openapi.json").json())


# ------------------------------------------------------------------------- collections


def test_collections(client: httpx.Client, base_url: str) -> None:
    r = client.get("/collections")
    assert r.status_code == 200
    doc = r.json()
    assert links_by_rel(doc)["self"]["href"] == f"{base_url}/collections"
    ids = [c["id"] for c in doc["collections"]]
    assert ids == [SITES, *REFERENCE_LAYERS]  # the sample store holds every reference layer
    for coll in doc["collections"]:
        assert coll["title"] and coll["description"]
        assert coll["itemType"] == "feature"
        assert CRS84 in coll["crs"] and EPSG2180 in coll["crs"]
        assert coll["storageCrs"] == EPSG2180
        (bbox,) = coll["extent"]["spatial"]["bbox"]
        assert POLAND[0] <= bbox[0] <= bbox[2] <= POLAND[2]
        assert POLAND[1] <= bbox[1] <= bbox[3] <= POLAND[3]
        if coll["id"] == SITES:  # oldest created_at .. newest updated_at
            ((start, end),) = coll["extent"]["temporal"]["interval"]
            assert start <= end
        else:  # reference layers have no time stamps
            assert "temporal" not in coll["extent"]
        rels = links_by_rel(coll)
        assert rels["self"]["href"] == f"{base_url}/collections/{coll['id']}"
        assert rels["items"]["href"] == f"{base_url}/collections/{coll['id']}/items"
        assert rels["items"]["type"] == "application/geo+json"
        assert client.get(f"/collections/{coll['id']}").json() == coll


def test_collection_extent_matches_data(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    bbox = client.get("/collections/sites").json()["extent"]["spatial"]["bbox"][0]
    truth = sites.to_crs("OGC:CRS84").total_bounds
    assert np.allclose(bbox, truth, atol=1e-6)


def test_unknown_collection_is_404_problem(client: httpx.Client) -> None:
    assert_problem(client.get("/collections/parcels"), 404, "parcels", "sites")
    assert_problem(client.get("/collections/parcels/items"), 404, "parcels")


# ------------------------------------------------------------------------------ items


def test_items_default_page(client: httpx.Client, base_url: str) -> None:
    r = client.get("/collections/sites/items")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["content-crs"] == f"<{CRS84}>"
    doc = strict_json(r)
    assert doc["type"] == "FeatureCollection"
    assert doc["numberMatched"] == N_SITES
    assert doc["numberReturned"] == len(doc["features"]) == 10
    assert time.strptime(doc["timeStamp"], "%Y-%m-%dT%H:%M:%SZ")
    rels = links_by_rel(doc)
    assert rels["self"]["href"] == f"{base_url}/collections/sites/items"
    assert rels["next"]["type"] == "application/geo+json"
    assert "offset=10" in rels["next"]["href"] and "limit=10" in rels["next"]["href"]
    assert "prev" not in rels
    for feature in doc["features"]:
        assert_geojson_feature(feature)
        assert feature["id"] == feature["properties"]["site_id"]


def test_items_properties_are_all_columns_with_nulls(
    client: httpx.Client, sites: gpd.GeoDataFrame
) -> None:
    doc = strict_json(client.get("/collections/sites/items", params={"limit": 10000}))
    assert doc["numberReturned"] == N_SITES
    columns = [c for c in sites.columns if c != sites.geometry.name and c not in PRIVATE_COLUMNS]
    by_id = sites.set_index("site_id")
    for feature in doc["features"]:
        props = feature["properties"]
        assert list(props) == columns
        assert set(SITE_COLUMNS) <= props.keys()
        row = by_id.loc[feature["id"]]
        for p in PROFILES_DEFAULT:
            if row[rank_col(p)] == 0:
                assert props[score_col(p)] is None  # NaN in the store → null
                assert props[excluded_col(p)]
            else:
                assert props[score_col(p)] == pytest.approx(row[score_col(p)])
        assert props["area_ha"] == pytest.approx(row["area_ha"])


def test_items_bbox_matches_geopandas(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    params = {"bbox": ",".join(map(str, WARSAW_BBOX)), "limit": 10000}
    doc = strict_json(client.get("/collections/sites/items", params=params))
    truth = sites.to_crs("OGC:CRS84")
    truth = truth[truth.intersects(shapely.box(*WARSAW_BBOX))]
    assert 0 < len(truth) < N_SITES
    got = [f["id"] for f in doc["features"]]
    assert sorted(got) == sorted(truth["site_id"])
    assert doc["numberMatched"] == doc["numberReturned"] == len(truth)
    assert got == sorted(got, key=lambda s: int(s[1:], 16))  # storage order


def test_items_bbox_paging_and_empty(client: httpx.Client) -> None:
    bbox = ",".join(map(str, WARSAW_BBOX))
    first = strict_json(client.get("/collections/sites/items", params={"bbox": bbox, "limit": 5}))
    assert first["numberReturned"] == 5 < first["numberMatched"]
    nxt = links_by_rel(first)["next"]["href"]
    assert "bbox=" in nxt  # other query parameters survive in the next link
    second = strict_json(httpx.get(nxt, timeout=30, trust_env=False))
    assert second["numberMatched"] == first["numberMatched"]
    assert not {f["id"] for f in first["features"]} & {f["id"] for f in second["features"]}
    empty = strict_json(
        client.get("/collections/sites/items", params={"bbox": "14.1,49.1,14.2,49.2"})
    )
    assert empty["numberMatched"] == empty["numberReturned"] == 0
    assert empty["features"] == []
    assert "next" not in links_by_rel(empty)


def test_items_bbox_crossing_antimeridian_is_accepted(client: httpx.Client) -> None:
    doc = strict_json(client.get("/collections/sites/items", params={"bbox": "170,50,22,54"}))
    assert doc["numberMatched"] == N_SITES  # 170°E → 22°E eastwards covers Warsaw


@pytest.mark.parametrize("profile", PROFILES_DEFAULT)
def test_items_profile_order_is_rank_order(
    client: httpx.Client, sites: gpd.GeoDataFrame, profile: str
) -> None:
    doc = strict_json(
        client.get("/collections/sites/items", params={"profile": profile, "limit": 10000})
    )
    got = [f["id"] for f in doc["features"]]
    assert got == expected_profile_order(sites, profile)
    ranks = [f["properties"][rank_col(profile)] for f in doc["features"]]
    eligible = [r for r in ranks if r > 0]
    assert eligible == sorted(eligible) and eligible[0] == 1
    n_excluded = len(ranks) - len(eligible)
    assert 0 < n_excluded < N_SITES
    assert ranks[len(eligible) :] == [0] * n_excluded  # excluded last, none dropped


def test_items_profile_with_bbox(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    params = {"bbox": ",".join(map(str, WARSAW_BBOX)), "profile": "office", "limit": 10000}
    doc = strict_json(client.get("/collections/sites/items", params=params))
    inside = set(
        sites.loc[sites.to_crs("OGC:CRS84").intersects(shapely.box(*WARSAW_BBOX)), "site_id"]
    )
    expected = [s for s in expected_profile_order(sites, "office") if s in inside]
    assert [f["id"] for f in doc["features"]] == expected


def test_paging_via_next_links_returns_every_site_once(
    client: httpx.Client, sites: gpd.GeoDataFrame
) -> None:
    url: str | None = "/collections/sites/items?limit=250&profile=logistics"
    ids: list[str] = []
    pages = 0
    while url is not None and pages < 100:  # bounded: 5 pages expected
        doc = strict_json(client.get(url))
        assert doc["numberMatched"] == N_SITES
        assert doc["numberReturned"] == len(doc["features"])
        ids += [f["id"] for f in doc["features"]]
        rels = links_by_rel(doc)
        if pages > 0:
            assert "prev" in rels and "profile=logistics" in rels["prev"]["href"]
        url = rels["next"]["href"] if "next" in rels else None
        pages += 1
    assert pages == 5
    assert len(ids) == len(set(ids)) == N_SITES
    assert ids == expected_profile_order(sites, "logistics")


def test_offset_and_prev_link(client: httpx.Client) -> None:
    doc = strict_json(client.get("/collections/sites/items", params={"offset": 15, "limit": 10}))
    rels = links_by_rel(doc)
    assert "offset=5" in rels["prev"]["href"] and "offset=25" in rels["next"]["href"]
    last = strict_json(client.get("/collections/sites/items", params={"offset": N_SITES - 3}))
    assert last["numberReturned"] == 3 and "next" not in links_by_rel(last)
    beyond = strict_json(client.get("/collections/sites/items", params={"offset": 5000}))
    assert beyond["numberReturned"] == 0 and beyond["numberMatched"] == N_SITES


def test_items_in_storage_crs(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    r = client.get("/collections/sites/items", params={"crs": EPSG2180, "limit": 50})
    assert r.headers["content-crs"] == f"<{EPSG2180}>"
    by_id = sites.set_index("site_id").geometry
    for feature in strict_json(r)["features"]:
        assert_geojson_feature(feature, crs84=False)
        assert feature["geometry"]["type"] == "MultiPolygon"  # the inventory stores multi
        ring = np.array(feature["geometry"]["coordinates"][0][0])
        truth = shapely.get_coordinates(by_id[feature["id"]].geoms[0].exterior)
        assert np.allclose(ring[:, ::-1], truth, atol=0.006)  # EPSG:2180 is (northing, easting)


def test_bbox_in_storage_crs(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    e0, n0, e1, n1 = 630000, 480000, 640000, 490000
    params = {"bbox": f"{n0},{e0},{n1},{e1}", "bbox-crs": EPSG2180, "limit": 10000}
    doc = strict_json(client.get("/collections/sites/items", params=params))
    truth = sites.loc[sites.intersects(shapely.box(e0, n0, e1, n1)), "site_id"]
    assert 0 < len(truth) and sorted(f["id"] for f in doc["features"]) == sorted(truth)


def test_bbox_is_exact_not_envelope(client: httpx.Client) -> None:
    # the sample rail lines run from (606973, 486980) to (666973, 487980), EPSG:2180 (E, N):
    # this box lies inside their envelope but off the lines, the second one crosses them
    off_line = {"bbox": "487800,607000,487950,608000", "bbox-crs": EPSG2180}
    doc = strict_json(client.get("/collections/rail/items", params=off_line))
    assert doc["numberMatched"] == 0
    on_line = {"bbox": "486900,607000,487100,608000", "bbox-crs": EPSG2180}
    assert strict_json(client.get("/collections/rail/items", params=on_line))["numberMatched"] == 10


def test_reference_layer_items(client: httpx.Client, store: Path) -> None:
    for name in REFERENCE_LAYERS:
        doc = strict_json(client.get(f"/collections/{name}/items", params={"limit": 100}))
        truth = read_layer(store, name, fid_as_index=True)
        assert doc["numberMatched"] == len(truth)
        assert [f["id"] for f in doc["features"]] == truth.index.tolist()
        for feature in doc["features"]:
            assert_geojson_feature(feature)
            assert list(feature["properties"]) == [c for c in truth.columns if c != "geometry"]


def test_single_item(client: httpx.Client, base_url: str, sites: gpd.GeoDataFrame) -> None:
    site_id = sites["site_id"].iloc[42]
    r = client.get(f"/collections/sites/items/{site_id}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    feature = strict_json(r)
    assert_geojson_feature(feature)
    assert feature["id"] == site_id == feature["properties"]["site_id"]
    rels = links_by_rel(feature)
    assert rels["self"]["href"] == f"{base_url}/collections/sites/items/{site_id}"
    assert rels["collection"]["href"] == f"{base_url}/collections/sites"
    rail = strict_json(client.get("/collections/rail/items/3"))
    assert rail["id"] == 3 and rail["geometry"]["type"] == "LineString"


def test_unknown_item_is_404_problem(client: httpx.Client) -> None:
    assert_problem(client.get("/collections/sites/items/S-nope"), 404, "S-nope")
    assert_problem(client.get("/collections/rail/items/999"), 404, "999")


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"bbox": "21,52,21.1"}, "bbox"),
        ({"bbox": "21,52,21.1,52.1,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "21,52,21.1,nan"}, "bbox"),
        ({"bbox": "21,95,21.1,96"}, "bbox"),
        ({"bbox": "21,52.3,21.1,52.1"}, "bbox"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"profile": "warehouses"}, "logistics, manufacturing, office"),
        ({"crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}, "crs"),
        ({"bbox-crs": "EPSG:2180", "bbox": "1,2,3,4"}, "bbox-crs"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"datetime": "../.."}, "datetime"),
        ({"f": "xml"}, "'f'"),
        ({"sort": "area_ha"}, "sort"),
    ],
)
def test_bad_query_parameters_are_400_problems(
    client: httpx.Client, params: dict[str, str], needle: str
) -> None:
    body = assert_problem(client.get("/collections/sites/items", params=params), 400, needle)
    assert body["invalid-params"]


def test_profile_on_a_reference_layer_is_400(client: httpx.Client) -> None:
    assert_problem(
        client.get("/collections/rail/items", params={"profile": "office"}), 400, "sites"
    )


def test_datetime_is_accepted(client: httpx.Client) -> None:
    for value in ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z/..", "../2026-01-01"):
        r = client.get("/collections/sites/items", params={"datetime": value})
        assert r.status_code == 200, r.text


def test_unknown_path_and_method_are_problems(client: httpx.Client) -> None:
    assert_problem(client.get("/nowhere"), 404, "/nowhere")
    assert_problem(client.post("/collections"), 405, "PATCH /collections/sites/items")
    assert_problem(client.patch("/collections/rail/items/1", json={}), 405)


def test_build_layer_serialises_nulls_and_types() -> None:
    frame = gpd.GeoDataFrame(
        {
            "name": ["a", None, "c"],
            "count": pd.array([1, None, 3], dtype="Int64"),
            "when": pd.to_datetime(["2026-01-01", None, "2026-03-01"]),
            "value": [1.5, np.nan, np.inf],
        },
        geometry=[shapely.Point(637000, 487000), None, shapely.Polygon()],
        crs="EPSG:2180",
    )
    layer = build_layer("t", "T", "test", frame, np.array([1, 2, 3]))
    features = [json.loads(f) for f in layer.views[CRS84].features]
    assert [f["id"] for f in features] == [1, 2, 3]
    assert features[0]["geometry"] == {"type": "Point", "coordinates": [21.0067041, 52.2319774]}
    assert features[1]["geometry"] is None and features[2]["geometry"] is None
    assert features[0]["properties"] == {
        "name": "a",
        "count": 1,
        "when": "2026-01-01T00:00:00",
        "value": 1.5,
    }
    assert set(features[1]["properties"].values()) == {None}
    assert features[2]["properties"]["value"] is None  # inf is not JSON either
    assert layer.page([(20.9, 52.1, 21.1, 52.3)], None, 0, 10)[0] == 1
    storage = json.loads(layer.view(EPSG2180).features[0])
    assert storage["geometry"]["coordinates"] == [487000.0, 637000.0]  # northing, easting


# ----------------------------------------------------------------- links and headers


def test_links_follow_the_host_header(base_url: str) -> None:
    url = f"{base_url}/collections/sites/items?limit=5&profile=office"
    r = httpx.get(url, headers={"Host": "example.org:9999"}, timeout=30, trust_env=False)
    rels = links_by_rel(r.json())
    assert rels["self"]["href"].startswith("http://example.org:9999/collections/sites/items?")
    nxt = rels["next"]["href"]
    assert nxt.startswith("http://example.org:9999/collections/sites/items?")
    assert "profile=office" in nxt and "offset=5" in nxt
    landing = httpx.get(f"{base_url}/", headers={"Host": "example.org:9999"}, trust_env=False)
    assert links_by_rel(landing.json())["data"]["href"] == "http://example.org:9999/collections"


def test_links_follow_forwarded_headers(base_url: str) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sites.example.pl"}
    r = httpx.get(f"{base_url}/collections/sites/items", headers=headers, trust_env=False)
    nxt = links_by_rel(r.json())["next"]["href"]
    assert nxt.startswith("https://sites.example.pl/collections/sites/items?")


def test_server_timing_and_cors_headers(client: httpx.Client) -> None:
    r = client.get("/collections/sites/items", headers={"Origin": "http://elsewhere.test"})
    name, dur = r.headers["server-timing"].split(";dur=")
    assert name == "app" and math.isfinite(float(dur)) and float(dur) >= 0
    assert r.headers["access-control-allow-origin"] == "*"


# ------------------------------------------------------------------------------- maps


def test_map_route(client: httpx.Client, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, str]] = []

    def render_map(store_path: Path, profile: str, lang: str = "en", **_: object) -> str:
        calls.append((Path(store_path), profile))
        return f"<!doctype html><html><body>map of {profile} ({lang})</body></html>"

    fake = types.ModuleType("omw_sites.maps")
    fake.render_map = render_map  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "omw_sites.maps", fake)
    r = client.get("/maps/manufacturing")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "map of manufacturing" in r.text
    assert calls == [(store, "manufacturing")]
    assert client.get("/maps/manufacturing").text == r.text
    assert len(calls) == 1  # rendered once per store version
    assert_problem(client.get("/maps/warehouses"), 404, "warehouses", "logistics")


def test_map_route_with_the_real_renderer(client: httpx.Client) -> None:
    maps = pytest.importorskip("omw_sites.maps")
    if not hasattr(maps, "render_map"):
        pytest.skip("omw_sites.maps has no render_map yet")
    r = client.get("/maps/logistics")
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()


# ----------------------------------------------------------------------------- reload


def test_reloads_when_the_store_file_changes(tmp_path: Path) -> None:
    path = make_sample_store(tmp_path / "omw_sites.gpkg", n=30)
    with running_server(path) as url:
        first = httpx.get(f"{url}/collections/sites/items", trust_env=False).json()
        assert first["numberMatched"] == 30
        make_sample_store(path, n=45, seed=1)  # atomic replace, as the pipeline writes it
        second = httpx.get(f"{url}/collections/sites/items", trust_env=False).json()
        assert second["numberMatched"] == 45


# ------------------------------------------------------------------ GDAL as a client

GDAL_CLIENT = textwrap.dedent(
    """
    import json, sys
    import pyogrio
    pyogrio.set_gdal_config_options({"GDAL_HTTP_TIMEOUT": "60", "GDAL_HTTP_MAX_RETRY": "0"})
    url, layer, bbox = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    bbox = tuple(bbox) if bbox else None
    df = pyogrio.read_dataframe(f"OAPIF:{url}/", layer=layer, bbox=bbox)
    print(json.dumps({
        "n": len(df),
        "columns": [c for c in df.columns if c != "geometry"],
        "crs": df.crs.to_string() if df.crs else None,
        "wkt": df.geometry.to_wkt().tolist(),
        "records": json.loads(df.drop(columns="geometry").to_json(orient="records")),
    }))
    """
)


def gdal_read(base_url: str, layer: str, bbox: tuple[float, ...] | None = None) -> dict[str, Any]:
    """Read a layer with GDAL's OAPIF driver in a separate process (a real third party)."""
    proc = subprocess.run(
        [sys.executable, "-c", GDAL_CLIENT, base_url, layer, json.dumps(bbox)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_gdal_oapif_reads_every_site(base_url: str, sites: gpd.GeoDataFrame) -> None:
    got = gdal_read(base_url, SITES)
    assert got["n"] == N_SITES
    published = [c for c in sites.columns if c != "geometry" and c not in PRIVATE_COLUMNS]
    assert [c for c in got["columns"] if c != "id"] == published
    assert got["crs"] == "EPSG:2180"  # GDAL asked for the storage CRS (Part 2)
    ids = [r["site_id"] for r in got["records"]]
    assert sorted(ids) == sorted(sites["site_id"]) and len(set(ids)) == N_SITES
    geoms = gpd.GeoSeries.from_wkt(got["wkt"], crs="EPSG:2180")
    truth = sites.set_index("site_id").geometry.loc[ids]
    assert np.allclose(geoms.bounds.to_numpy(), truth.bounds.to_numpy(), atol=0.006)


def test_gdal_oapif_bbox_filter(base_url: str, sites: gpd.GeoDataFrame) -> None:
    box = (630000.0, 480000.0, 640000.0, 490000.0)  # EPSG:2180 easting/northing
    got = gdal_read(base_url, SITES, box)
    truth = sites.loc[sites.intersects(shapely.box(*box)), "site_id"]
    assert 0 < got["n"] == len(truth)
    assert sorted(r["site_id"] for r in got["records"]) == sorted(truth)


def test_gdal_oapif_reads_a_reference_layer(base_url: str, store: Path) -> None:
    got = gdal_read(base_url, "substations")
    truth = read_layer(store, "substations")
    assert got["n"] == len(truth)
    assert {"name", "capacity_mw"} <= set(got["columns"])
    assert [r["capacity_mw"] for r in got["records"]] == pytest.approx(
        truth["capacity_mw"].tolist()
    )


# ------------------------------------------------------------------ tiles metadata


def test_tilesets_and_tileset_metadata(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    import mapbox_vector_tile

    collection = strict_json(client.get("/collections/sites"))
    tilesets_rel = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
    listing = strict_json(client.get(links_by_rel(collection)[tilesets_rel]["href"]))
    (entry,) = listing["tilesets"]
    assert entry["dataType"] == "vector"
    wmq = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    assert entry["tileMatrixSetURI"] == wmq
    meta = strict_json(client.get(links_by_rel(entry)["self"]["href"]))
    assert meta["tileMatrixSetURI"] == wmq and meta["dataType"] == "vector"
    assert meta["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    item = links_by_rel(meta)["item"]
    assert item["templated"] is True and item["type"] == "application/vnd.mapbox-vector-tile"
    (layer,) = meta["layers"]
    fields = layer["propertiesSchema"]["properties"]
    assert layer["id"] == SITES and "site_id" in fields
    for p in PROFILES_DEFAULT:
        assert fields[score_col(p)]["type"] == "number"
        assert fields[rank_col(p)]["type"] == "integer"
    # the template, filled by variable name, gives a tile that decodes with those fields
    lon, lat = sites.to_crs("OGC:CRS84").geometry.iloc[0].representative_point().coords[0]
    z = 12
    col = int((lon + 180) / 360 * 2**z)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    url = item["href"].format(tileMatrix=z, tileRow=row, tileCol=col)
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == item["type"]
    decoded = mapbox_vector_tile.decode(r.content)
    features = decoded[layer["id"]]["features"]
    assert sites["site_id"].iloc[0] in {f["properties"]["site_id"] for f in features}
    assert {k for f in features for k in f["properties"]} <= set(fields)
    assert client.get("/collections/rail/tiles").status_code == 404
    assert_problem(client.get("/collections/sites/tiles/WorldCRS84Quad"), 404, "WebMercatorQuad")
