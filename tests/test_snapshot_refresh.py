"""The served copy of the store follows another process's writes in place: after a scoped
`db load --gmina` and a `site set-status … sold` run as real commands against the store a
server holds, what it serves equals what a server started fresh on that store serves, and
it got there by reading only what changed (no full reload)."""

from __future__ import annotations

import math
import shutil
import uuid
from pathlib import Path

import httpx
import numpy as np
import pyogrio
import pytest
from cli_run import cli
from test_api import running_server

from omw_sites.api.catalog import Catalog, Snapshot, load_snapshot
from omw_sites.api.output_crs import CRS84_URI, STORAGE_CRS_URI
from omw_sites.api.tiling import encode_tile
from omw_sites.layers import SITES
from omw_sites.store import open_backend, read_sites
from omw_sites.store.lifecycle import VERSION_COLUMNS, version_of

MARKI = "1434022"  # parcel IDs of Marki start with 143402_2
PL2000_ZONE7 = "http://www.opengis.net/def/crs/EPSG/0/2178"


@pytest.fixture(scope="module")
def region(demo_raw: Path, tmp_path_factory) -> dict[str, Path]:
    """The demo region, and a copy where Marki's newer EGiB dataset lost a tenth of its
    parcels (some sites end, some shrink and are re-measured, every gmina is re-ranked)."""
    work = tmp_path_factory.mktemp("refresh")
    newer = work / "raw_newer"
    shutil.copytree(demo_raw, newer)
    path = newer / "egib" / "dzialki.gpkg"
    parcels = pyogrio.read_dataframe(path)
    marki = parcels.index[parcels["ID_DZIALKI"].str.startswith("143402_2.")]
    assert len(marki) > 50
    pyogrio.write_dataframe(parcels.drop(index=marki[::10]), path, layer="dzialki", driver="GPKG")
    return {"raw": demo_raw, "newer": newer, "work": work}


@pytest.fixture(params=["gpkg", "postgis"])
def store(request, region) -> str:
    if request.param == "gpkg":
        return str(region["work"] / f"inventory-{uuid.uuid4().hex[:6]}.gpkg")
    url = request.getfixturevalue("postgis_url")
    return f"{url}?schema=r_{uuid.uuid4().hex[:10]}"


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def assert_serves_the_same(served: Snapshot, fresh: Snapshot) -> None:
    """Everything a client can read of the sites: every feature's bytes in every CRS
    the served copy has a view in, item pages in storage and in every profile's order
    (numberMatched, bytes), each feature's ETag, a vector tile, Last-Modified."""
    a, b = served.layers[SITES], fresh.layers[SITES]
    assert len(a) == len(b)
    assert a.index == b.index
    for uri in a.views:
        assert a.view(uri).features == b.view(uri).features, uri
    for profile in [None, *fresh.profiles]:
        assert a.page(None, profile, 0, len(b) + 1) == b.page(None, profile, 0, len(b) + 1)
    box = [(20.8, 52.2, 21.2, 52.4)]
    assert a.page(box, None, 0, 1000) == b.page(box, None, 0, 1000)
    tags = [version_of(*r) for r in a.table[list(VERSION_COLUMNS)].itertuples(index=False)]
    fresh_tags = [version_of(*r) for r in b.table[list(VERSION_COLUMNS)].itertuples(index=False)]
    assert tags == fresh_tags
    assert list(a.table.columns) == list(b.table.columns)
    assert (a.table.dtypes == b.table.dtypes).all()
    minx, miny, maxx, maxy = b.bbox
    for z in (9, 12):
        tile = _tile_of((minx + maxx) / 2, (miny + maxy) / 2, z)
        assert encode_tile(a, *tile) == encode_tile(b, *tile), tile
    assert (a.bbox, a.geometry_types, a.description) == (b.bbox, b.geometry_types, b.description)
    assert served.profiles == fresh.profiles
    assert (served.version, served.modified) == (fresh.version, fresh.modified)
    assert served.signature == fresh.signature


def _answers(url: str, fresh: Snapshot, site: str) -> list[tuple]:
    """What a client reads over HTTP: item pages in storage and profile order
    (numberMatched, every feature), one feature and its ETag, a vector tile. Links,
    timeStamp and the page ETags name the server's address and time, so they differ."""
    minx, miny, maxx, maxy = fresh.layers[SITES].bbox
    z, x, y = _tile_of((minx + maxx) / 2, (miny + maxy) / 2, 11)
    profile = next(iter(fresh.profiles))
    out: list[tuple] = []
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
        for path in (
            "/collections/sites/items?limit=10000",
            f"/collections/sites/items?limit=500&offset=100&profile={profile}",
        ):
            page = client.get(path).json()
            out.append((path, page["numberMatched"], page["features"]))
        res = client.get(f"/collections/sites/items/{site}")
        feature = res.json()
        version = res.headers["etag"].split("-")[0]  # the rest names the representation
        out.append((version, feature["geometry"], feature["properties"]))
        res = client.get(f"/collections/sites/tiles/WebMercatorQuad/{z}/{x}/{y}")
        assert res.status_code == 200
        out.append((res.content,))
    return out


@pytest.mark.slow
def test_out_of_process_writes_are_followed_in_place(region, store):
    res = cli("db", "load", str(region["raw"]), "--store", store, "--out", str(region["work"]))
    assert res.returncode == 0, res.stderr
    catalog = Catalog(store)
    before = catalog.reload_if_stale()
    sites = before.layers[SITES]
    # views and caches the server builds on demand, which must follow too
    sites.view(STORAGE_CRS_URI)
    sites.view(PL2000_ZONE7)
    sites.mercator()
    first = read_sites(store, read_geometry=False).set_index("site_id")

    # a scoped update of Marki by another process
    res = cli(
        "db", "load", str(region["newer"]), "--gmina", MARKI, "--store", store,
        "--out", str(region["work"]), "--allow-mass-end",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    after = read_sites(store, read_geometry=False).set_index("site_id")
    ended = first.index.difference(after.index)
    added = after.index.difference(first.index)
    assert len(ended) > 0 and len(added) > 0  # the update ended and added sites …
    common = first.index.intersection(after.index)
    ranks = [c for c in first.columns if c.startswith("rank_")]
    outside = common[first.loc[common, "teryt"] != MARKI]
    moved = (first.loc[outside, ranks] != after.loc[outside, ranks]).any(axis=1)
    assert moved.any()  # … and re-ranked sites of other gminy

    served = catalog.reload_if_stale()
    assert catalog.refreshes == {"incremental": 1}
    fresh = load_snapshot(store)
    assert_serves_the_same(served, fresh)
    assert len(served.layers[SITES]) == len(after)

    # a CLI status change by another process: the site leaves every ranking
    on_offer = after[after["status"].fillna("available") == "available"]
    site = str(on_offer[ranks[0]].where(on_offer[ranks[0]] > 0).idxmin())
    res = cli("site", "set-status", site, "sold", "--by", "test", "--store", store)
    assert res.returncode == 0, res.stderr
    served = catalog.reload_if_stale()
    assert catalog.refreshes == {"incremental": 2}
    fresh = load_snapshot(store)
    assert_serves_the_same(served, fresh)
    row = fresh.layers[SITES].index[site]
    assert fresh.layers[SITES].table["status"].iat[row] == "sold"
    assert int(fresh.layers[SITES].table[ranks[0]].iat[row]) == 0
    open_backend(store).close()


@pytest.mark.slow
def test_a_running_server_answers_as_a_fresh_one(region, store):
    """Over HTTP: a server that was serving while another process ran the scoped update
    and the status change answers byte for byte as a server started afterwards."""
    res = cli("db", "load", str(region["raw"]), "--store", store, "--out", str(region["work"]))
    assert res.returncode == 0, res.stderr
    with running_server(store) as url:
        site = str(read_sites(store, read_geometry=False)["site_id"].iloc[-1])
        _answers(url, load_snapshot(store), site)  # served (and cached) before the writes
        res = cli(
            "db", "load", str(region["newer"]), "--gmina", MARKI, "--store", store,
            "--out", str(region["work"]), "--allow-mass-end",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        current = read_sites(store, read_geometry=False)
        site = str(current.loc[current["teryt"] != MARKI, "site_id"].iloc[-1])
        res = cli("site", "set-status", site, "sold", "--by", "test", "--store", store)
        assert res.returncode == 0, res.stderr
        fresh = load_snapshot(store)
        running = _answers(url, fresh, site)
    with running_server(store) as url:
        assert running == _answers(url, fresh, site)
    open_backend(store).close()


def test_a_new_profile_is_a_full_reload(tmp_path):
    """A change the served copy cannot follow in place (the site table gained columns)
    reloads the store, and serves what a fresh server serves."""
    from sample_store import make_sample_store, sample_data

    from omw_sites.store import open_inventory

    path = make_sample_store(tmp_path / "s.gpkg", n=120)
    catalog = Catalog(path)
    sites, *rest = sample_data(120)
    sites["score_extra"] = np.linspace(0, 1, len(sites))
    sites["rank_extra"] = np.arange(1, len(sites) + 1)
    sites["excluded_extra"] = ""
    open_inventory(path).apply(sites, *rest)
    served = catalog.reload_if_stale()
    assert catalog.refreshes == {"full": 1}
    assert "extra" in served.profiles
    assert_serves_the_same(served, load_snapshot(path))
    assert served.layers[SITES].views[CRS84_URI].features


@pytest.mark.parametrize(
    ("name", "value"),
    [("b", 7), ("a", 'new "quoted" \\ text'), ("c", "z"), ("d", None), ("e", 2.25), ("f", True)],
)
def test_a_changed_property_is_written_as_serialising_again_would(name, value):
    """Re-ranked features get their changed values spliced into the served bytes: the
    result is what serialising the changed properties again gives, whatever the other
    values hold (escaped quotes, backslashes, text that looks like a key)."""
    import orjson

    from omw_sites.api.catalog import _spliced

    props = {"a": 'x\\"y,"b":1}', "b": 2, "c": None, "d": "q\\", "e": 1.5, "f": False}
    tail = b',"properties":' + orjson.dumps(props) + b"}"
    expected = b',"properties":' + orjson.dumps({**props, name: value}) + b"}"
    assert _spliced(tail, {orjson.dumps(name) + b":": orjson.dumps(value)}) == expected
    assert _spliced(tail, {b'"missing":': b"1"}) is None


def test_the_body_limit_is_a_setting(monkeypatch):
    """OMW_MAX_BODY_BYTES is read through Settings, as every other OMW_ setting; a wrong
    value is one line naming it."""
    from omw_sites.api.limits import MAX_BODY_BYTES, body_limit_from_env
    from omw_sites.config import Settings

    monkeypatch.delenv("OMW_MAX_BODY_BYTES", raising=False)
    assert Settings().max_body_bytes == MAX_BODY_BYTES == body_limit_from_env() == 1 << 20
    monkeypatch.setenv("OMW_MAX_BODY_BYTES", "4096")
    assert Settings().max_body_bytes == body_limit_from_env() == 4096
    monkeypatch.setenv("OMW_MAX_BODY_BYTES", "0")
    with pytest.raises(ValueError, match=r"^OMW_MAX_BODY_BYTES='0': expected a positive"):
        body_limit_from_env()
