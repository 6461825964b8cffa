"""CQL2 filters, queryables, sortby, properties, ETags and vector tiles against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
from sample_store import make_sample_store
from test_api import (
    CRS84,
    EPSG2180,
    WARSAW_BBOX,
    assert_geojson_feature,
    assert_problem,
    links_by_rel,
    running_server,
    strict_json,
)

from omw_sites.api.catalog import PRIVATE_COLUMNS
from omw_sites.api.tiling import tile_bounds

N_SITES = 800
ITEMS = "/collections/sites/items"
PART3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_store(tmp_path_factory.mktemp("api_query") / "omw.gpkg", n=N_SITES, seed=3)


def all_items(client: httpx.Client, **params: Any) -> dict[str, Any]:
    r = client.get(ITEMS, params={"limit": 10000, **params})
    assert r.status_code == 200, r.text
    return strict_json(r)


def ids_of(doc: dict[str, Any]) -> list[str]:
    return [f["id"] for f in doc["features"]]


# ------------------------------------------------------------------- conformance


def test_conformance_lists_filtering(client: httpx.Client) -> None:
    conforms = set(client.get("/conformance").json()["conformsTo"])
    assert {PART3 + "queryables", PART3 + "filter", PART3 + "features-filter"} <= conforms
    assert {CQL2 + "cql2-text", CQL2 + "cql2-json", CQL2 + "basic-cql2"} <= conforms
    assert {CQL2 + "advanced-comparison-operators", CQL2 + "basic-spatial-functions"} <= conforms


def test_queryables(client: httpx.Client, base_url: str, sites: gpd.GeoDataFrame) -> None:
    r = client.get("/collections/sites/queryables")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/schema+json")
    doc = r.json()
    assert doc["$id"] == f"{base_url}/collections/sites/queryables"
    props = doc["properties"]
    published = [c for c in sites.columns if c != "geometry" and c not in PRIVATE_COLUMNS]
    assert list(props) == ["geometry", *published]
    assert props["area_ha"]["type"] == "number" and props["area_ha"]["x-ogc-unit"] == "ha"
    assert props["time_junction_min"]["x-ogc-unit"] == "min"
    assert props["site_id"]["type"] == "string" and "x-ogc-unit" not in props["site_id"]
    assert props["rank_office"]["type"] == "integer"
    assert "office" in props["score_office"]["description"]
    assert props["geometry"]["format"].startswith("geometry-")
    collection = client.get("/collections/sites").json()
    rel = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
    assert links_by_rel(collection)[rel]["href"] == doc["$id"]
    rail = client.get("/collections/rail/queryables").json()
    assert rail["properties"]["geometry"]["format"] == "geometry-linestring"
    assert_problem(client.get("/collections/nope/queryables"), 404, "nope")


# ------------------------------------------------------------------------ filter


def _expected(sites: gpd.GeoDataFrame, name: str) -> pd.Series:
    s, crs84 = sites, sites.to_crs("OGC:CRS84")
    cases = {
        "compare-in": (s.area_ha > 5) & s.teryt.isin(["1465011", "1418043"]),
        "between-or": s.area_ha.between(1, 3) | (s.ownership == "state"),
        "not-ne": ~(s.ownership != "private"),
        "is-null": s.score_office.isna(),
        "not-null-and": s.score_office.notna() & (s.rank_office <= 100),
        "like": s.site_id.str.startswith("S000000001"),
        "like-single": s.site_id.str.fullmatch(r"S00000000.5"),
        "not-in": ~s.teryt.isin(["1465011"]),
        "bbox": crs84.intersects(shapely.box(*WARSAW_BBOX)),
        "polygon-and": crs84.intersects(shapely.box(20.9, 52.2, 21.0, 52.3)) & (s.area_ha < 4),
        "property-property": s.dist_water_m < s.dist_sewer_m,
        "not-group": ~((s.area_ha > 2) & (s.ownership == "private")),
        "casei-like": s.ownership.str.startswith("mun"),
        "within-mirrored": crs84.within(shapely.box(*WARSAW_BBOX)),
    }
    return s.loc[cases[name], "site_id"]


CQL2_TEXT_CASES = {
    "compare-in": "area_ha > 5 AND teryt IN ('1465011', '1418043')",
    "between-or": "area_ha BETWEEN 1 AND 3 OR ownership = 'state'",
    "not-ne": "NOT (ownership <> 'private')",
    "is-null": "score_office IS NULL",
    "not-null-and": "score_office IS NOT NULL AND rank_office <= 100",
    "like": "site_id LIKE 'S000000001%'",
    "like-single": "site_id LIKE 'S00000000_5'",
    "not-in": "teryt NOT IN ('1465011')",
    "bbox": "S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*WARSAW_BBOX),
    "polygon-and": "S_INTERSECTS(geometry, POLYGON((20.9 52.2, 21.0 52.2, 21.0 52.3, "
    "20.9 52.3, 20.9 52.2))) AND area_ha < 4",
    "property-property": "dist_water_m < dist_sewer_m",
    "not-group": "NOT (area_ha > 2 AND ownership = 'private')",
    "casei-like": "CASEI(ownership) LIKE CASEI('MUN%')",
    "within-mirrored": "S_CONTAINS(BBOX({}, {}, {}, {}), geometry)".format(*WARSAW_BBOX),
}


@pytest.mark.parametrize("name", list(CQL2_TEXT_CASES))
def test_cql2_text_filter(client: httpx.Client, sites: gpd.GeoDataFrame, name: str) -> None:
    expected = _expected(sites, name)
    assert 0 < len(expected) < N_SITES, "the case must select some sites, not all"
    doc = all_items(client, filter=CQL2_TEXT_CASES[name])
    assert doc["numberMatched"] == doc["numberReturned"] == len(expected)
    assert ids_of(doc) == expected.tolist()  # storage order kept


CQL2_JSON_CASES = {
    "compare-in": {
        "op": "and",
        "args": [
            {"op": ">", "args": [{"property": "area_ha"}, 5]},
            {"op": "in", "args": [{"property": "teryt"}, ["1465011", "1418043"]]},
        ],
    },
    "between-or": {
        "op": "or",
        "args": [
            {"op": "between", "args": [{"property": "area_ha"}, 1, 3]},
            {"op": "=", "args": [{"property": "ownership"}, "state"]},
        ],
    },
    "is-null": {"op": "isNull", "args": [{"property": "score_office"}]},
    "bbox": {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": list(WARSAW_BBOX)}]},
}


@pytest.mark.parametrize("name", list(CQL2_JSON_CASES))
def test_cql2_json_filter(client: httpx.Client, sites: gpd.GeoDataFrame, name: str) -> None:
    expected = _expected(sites, name)
    doc = all_items(
        client, filter=json.dumps(CQL2_JSON_CASES[name]), **{"filter-lang": "cql2-json"}
    )
    assert ids_of(doc) == expected.tolist()


def test_invalid_polygon_literal_is_repaired(client: httpx.Client) -> None:
    bowtie = "POLYGON((20.9 52.1, 21.1 52.3, 21.1 52.1, 20.9 52.3, 20.9 52.1))"
    r = client.get(ITEMS, params={"filter": f"S_INTERSECTS(geometry, {bowtie})"})
    assert r.status_code == 200, r.text


def test_filter_crs_storage(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    e0, n0, e1, n1 = 630000, 480000, 640000, 490000
    ring = f"{n0} {e0}, {n0} {e1}, {n1} {e1}, {n1} {e0}, {n0} {e0}"  # northing, easting
    params = {"filter": f"S_INTERSECTS(geometry, POLYGON(({ring})))", "filter-crs": EPSG2180}
    doc = all_items(client, **params)
    truth = sites.loc[sites.intersects(shapely.box(e0, n0, e1, n1)), "site_id"]
    assert 0 < len(truth) and ids_of(doc) == truth.tolist()
    with_bbox = all_items(client, bbox="21.0,52.0,21.5,52.5", **params)
    inside = sites.to_crs(CRS84).intersects(shapely.box(21.0, 52.0, 21.5, 52.5))
    both = sites.loc[sites.intersects(shapely.box(e0, n0, e1, n1)) & inside, "site_id"]
    assert ids_of(with_bbox) == both.tolist()


def test_property_equality_parameters(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    doc = all_items(client, teryt="1418043", ownership="state")
    truth = sites.loc[(sites.teryt == "1418043") & (sites.ownership == "state"), "site_id"]
    assert 0 < len(truth) and ids_of(doc) == truth.tolist()
    assert_problem(client.get(ITEMS, params={"area_ha": "big"}), 400, "area_ha", "number")


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        ({"filter": "nope > 1"}, ("filter", "nope")),
        ({"filter": "area_ha >> 1"}, ("filter", "cql2-text")),
        ({"filter": "area_ha > "}, ("filter",)),
        ({"filter": "teryt > 5"}, ("filter", "teryt")),
        ({"filter": "S_INTERSECTS(site_id, BBOX(20,52,21,53))"}, ("filter", "geometry")),
        ({"filter": "S_INTERSECTS(nope, BBOX(20,52,21,53))"}, ("filter", "nope")),
        ({"filter": "{not json", "filter-lang": "cql2-json"}, ("filter", "JSON")),
        ({"filter": '{"op": "frobnicate", "args": []}', "filter-lang": "cql2-json"}, ("filter",)),
        ({"filter": "area_ha > 1", "filter-lang": "sql"}, ("filter-lang",)),
        ({"filter": "S_INTERSECTS(geometry, POINT(1 2 3 4 5))"}, ("filter",)),
        ({"filter": "S_INTERSECTS(geometry, BBOX(1, 2))"}, ("filter",)),
        ({"filter": "area_ha"}, ("filter", "condition")),
        ({"filter": "area_ha = NULL"}, ("filter", "IS NULL")),
        ({"filter": "area_ha > 1", "filter-crs": "EPSG:4326"}, ("filter-crs",)),
        ({"sortby": "-nope"}, ("sortby", "nope")),
        ({"sortby": "area_ha,,"}, ("sortby",)),
        ({"properties": "site_id,nope"}, ("properties", "nope")),
    ],
)
def test_bad_filter_sortby_properties_are_400(
    client: httpx.Client, params: dict[str, str], needles: tuple[str, ...]
) -> None:
    body = assert_problem(client.get(ITEMS, params=params), 400, *needles)
    assert body["invalid-params"][0]["name"] == needles[0]


# ---------------------------------------------------------------- sortby, properties


def test_sortby(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    doc = all_items(client, sortby="-score_logistics,area_ha")
    truth = sites.sort_values(
        ["score_logistics", "area_ha"], ascending=[False, True], kind="stable", na_position="last"
    )
    assert ids_of(doc) == truth["site_id"].tolist()
    text = all_items(client, sortby="ownership,-site_id")
    truth = sites.sort_values(["ownership", "site_id"], ascending=[True, False])
    assert ids_of(text) == truth["site_id"].tolist()


def test_filter_sortby_paging_keeps_the_query(
    client: httpx.Client, sites: gpd.GeoDataFrame
) -> None:
    flt = "area_ha > 2 AND score_office IS NOT NULL"
    url: str | None = (
        ITEMS
        + "?"
        + str(httpx.QueryParams({"filter": flt, "sortby": "-score_office", "limit": 50}))
    )
    ids: list[str] = []
    pages = 0
    while url is not None and pages < 50:
        doc = strict_json(client.get(url))
        ids += ids_of(doc)
        rels = links_by_rel(doc)
        url = rels["next"]["href"] if "next" in rels else None
        if url is not None:
            assert "filter=" in url and "sortby=" in url
        pages += 1
    chosen = sites[(sites.area_ha > 2) & sites.score_office.notna()]
    truth = chosen.sort_values("score_office", ascending=False, kind="stable")["site_id"].tolist()
    assert pages == -(-len(truth) // 50) > 1
    assert ids == truth


def test_sortby_with_profile_breaks_ties_by_rank(client: httpx.Client) -> None:
    doc = all_items(client, sortby="teryt", profile="office", properties="teryt,rank_office")
    rows = [(f["properties"]["teryt"], f["properties"]["rank_office"]) for f in doc["features"]]
    assert [t for t, _ in rows] == sorted(t for t, _ in rows)
    for teryt in {t for t, _ in rows}:
        ranks = [r for t, r in rows if t == teryt]
        eligible = [r for r in ranks if r > 0]
        assert ranks == eligible + [0] * (len(ranks) - len(eligible))
        assert eligible == sorted(eligible)


def test_properties_selection(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    full = all_items(client, filter="area_ha > 10", sortby="-area_ha")
    some = all_items(
        client, filter="area_ha > 10", sortby="-area_ha", properties="area_ha,site_id,area_ha"
    )
    assert ids_of(full) == ids_of(some) and some["features"]
    by_id = sites.set_index("site_id")
    for a, b in zip(full["features"], some["features"], strict=True):
        assert_geojson_feature(b)
        assert b["geometry"] == a["geometry"]
        assert list(b["properties"]) == ["area_ha", "site_id"]
        assert b["properties"]["area_ha"] == by_id.loc[b["id"], "area_ha"]
    none = all_items(client, properties="", limit=3)
    assert [f["properties"] for f in none["features"]] == [{}, {}, {}]
    crs = all_items(client, properties="site_id", crs=EPSG2180, limit=2)
    assert all(f["geometry"]["coordinates"][0][0][0][0] > 400000 for f in crs["features"])
    site_id = sites.site_id.iloc[7]
    one = client.get(f"{ITEMS}/{site_id}", params={"properties": "rank_office"}).json()
    assert one["properties"] == {"rank_office": int(sites.rank_office.iloc[7])}
    assert links_by_rel(one)["self"]


# ------------------------------------------------------------------ ETag, 304


def test_etag_and_not_modified(client: httpx.Client) -> None:
    r = client.get(ITEMS, params={"limit": 5})
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert etag.startswith('W/"') and modified.endswith("GMT")
    again = client.get(ITEMS, params={"limit": 5}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = client.get(ITEMS, params={"limit": 6}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    since = client.get(ITEMS, params={"limit": 5}, headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get(ITEMS, headers={"If-Modified-Since": old}).status_code == 200
    stale = client.get(ITEMS, params={"limit": 5}, headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200
    for path in ("/collections", "/collections/sites", "/collections/sites/queryables"):
        first = client.get(path)
        assert first.headers["etag"]
        cached = client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert cached.status_code == 304


def test_etag_changes_with_the_store(tmp_path: Path) -> None:
    path = make_sample_store(tmp_path / "omw.gpkg", n=20)
    with running_server(path) as url:
        first = httpx.get(f"{url}{ITEMS}", trust_env=False)
        make_sample_store(path, n=25, seed=1)
        second = httpx.get(
            f"{url}{ITEMS}", headers={"If-None-Match": first.headers["etag"]}, trust_env=False
        )
        assert second.status_code == 200 and second.json()["numberMatched"] == 25
        assert second.headers["etag"] != first.headers["etag"]


# ----------------------------------------------------------------- vector tiles


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)
    return x, y


def test_vector_tile(client: httpx.Client, sites: gpd.GeoDataFrame) -> None:
    z = 12
    x, y = _tile_of(21.01, 52.23, z)
    r = client.get(f"/collections/sites/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert r.headers["etag"]
    layer = mapbox_vector_tile.decode(r.content)["sites"]
    got = {f["properties"]["site_id"] for f in layer["features"]}
    merc = sites.to_crs("EPSG:3857")
    bounds = tile_bounds(z, x, y)
    inner = set(merc.loc[merc.intersects(shapely.box(*bounds)), "site_id"])
    pad = (bounds[2] - bounds[0]) * 64 / 4096
    outer_box = shapely.box(bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad)
    outer = set(merc.loc[merc.intersects(outer_box), "site_id"])
    assert inner and inner <= got <= outer
    by_id = sites.set_index("site_id")
    for feature in layer["features"]:
        props = feature["properties"]
        assert set(props) <= {"site_id"} | {
            c for c in sites.columns if c.startswith(("score_", "rank_"))
        }
        assert props["rank_office"] == by_id.loc[props["site_id"], "rank_office"]
        if np.isnan(by_id.loc[props["site_id"], "score_office"]):
            assert "score_office" not in props
        else:
            assert props["score_office"] == pytest.approx(
                by_id.loc[props["site_id"], "score_office"]
            )
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert layer["extent"] == 4096
    # a site wholly inside the tile: its decoded outline is its Web Mercator outline in tile units
    inside = merc[merc.within(shapely.box(*bounds))]
    assert len(inside) > 0
    scale = 4096 / (bounds[2] - bounds[0])
    decoded = {f["properties"]["site_id"]: f["geometry"] for f in layer["features"]}
    for site_id, geom in zip(inside["site_id"], inside.geometry, strict=True):
        got_bounds = shapely.geometry.shape(decoded[site_id]).bounds
        want = (np.array(geom.bounds) - np.array(bounds[:2] * 2)) * scale
        assert np.allclose(got_bounds, want, atol=1.0), site_id


def test_vector_tile_empty_and_bad(client: httpx.Client) -> None:
    tiles = "/collections/sites/tiles/WebMercatorQuad"
    assert client.get(f"{tiles}/10/0/0").status_code == 204
    assert client.get(f"{tiles}/0/0/0").status_code == 200
    assert_problem(client.get(f"{tiles}/3/8/0"), 400, "'x'", "0..7")
    assert_problem(client.get(f"{tiles}/3/0/-1"), 400, "'y'")
    assert_problem(client.get(f"{tiles}/25/0/0"), 400, "'z'")
    assert_problem(client.get(f"{tiles}/a/0/0"), 400, "'z'")
    assert_problem(client.get("/collections/rail/tiles/WebMercatorQuad/0/0/0"), 404, "sites")
    assert_problem(client.get(f"{tiles}/0/0/0", params={"f": "json"}), 400, "f")


def test_openapi_describes_filters_and_tiles(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    concrete = doc["paths"]["/collections/sites/items"]["get"]["parameters"]
    names = {p["name"]: p for p in concrete}
    assert {"filter", "filter-lang", "filter-crs", "sortby", "properties", "area_ha"} <= set(names)
    assert "cql2-text" in names["filter-lang"]["schema"]["enum"]
    assert "collectionId" not in names
    tile = doc["paths"]["/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}"]["get"]
    mvt = tile["responses"]["200"]["content"]["application/vnd.mapbox-vector-tile"]
    assert mvt["schema"] == {"type": "string", "format": "binary"}
    assert "204" in tile["responses"]


# ------------------------------------------------------------------ GDAL as a client

GDAL_WHERE = textwrap.dedent(
    """
    import json, sys
    import pyogrio
    pyogrio.set_gdal_config_options(
        {"GDAL_HTTP_TIMEOUT": "60", "GDAL_HTTP_MAX_RETRY": "0", "CPL_DEBUG": "ON"}
    )
    df = pyogrio.read_dataframe(f"OAPIF:{sys.argv[1]}/", layer="sites", where=sys.argv[2])
    print(json.dumps({
        "crs": df.crs.to_string() if df.crs else None,
        "ids": df["site_id"].tolist(),
        "bounds": df.geometry.bounds.to_numpy().tolist(),
    }))
    """
)


def test_gdal_oapif_sends_the_filter_as_cql(base_url: str, sites: gpd.GeoDataFrame) -> None:
    where = "area_ha > 3 AND teryt = '1465011' AND score_logistics IS NOT NULL"
    proc = subprocess.run(
        [sys.executable, "-c", GDAL_WHERE, base_url, where],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    fetched = [ln for ln in proc.stderr.splitlines() if "Fetch(" in ln and "/items?" in ln]
    assert any("filter=" in ln and "EPSG/0/2180" in ln for ln in fetched), fetched
    assert "evaluated on client side" not in proc.stderr  # the server did the filtering
    got = json.loads(proc.stdout)
    assert got["crs"] == "EPSG:2180"
    chosen = sites[(sites.area_ha > 3) & (sites.teryt == "1465011") & sites.score_logistics.notna()]
    assert 0 < len(chosen) < N_SITES
    assert sorted(got["ids"]) == sorted(chosen["site_id"])
    truth = chosen.set_index("site_id").geometry.loc[got["ids"]].bounds.to_numpy()
    assert np.allclose(np.array(got["bounds"]), truth, atol=0.006)
