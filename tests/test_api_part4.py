"""OGC API Features Part 4 on ``sites`` through a real server, on both backends: strong
ETags and If-Match / If-Unmodified-Since, PUT, PATCH, DELETE, POST refused, OPTIONS,
conformance and OpenAPI; the served copy updated in place of a reload after a write;
stale-ETag and lifecycle races from real client processes, against two servers."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
from cli_run import serving
from records_worker import Writers
from sample_store import sample_data
from test_api import assert_problem, running_server

from omw_sites.api import catalog as catalog_module
from omw_sites.api.output_crs import CRS84_URI
from omw_sites.store import open_inventory
from omw_sites.store.lifecycle import current_record

GMINA_A = "1418043"  # Piaseczno
GMINA_B = "1421062"  # Raszyn
PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/"
STORAGE_CRS = "http://www.opengis.net/def/crs/EPSG/0/2180"


class LoadCounter:
    """Counts the snapshot loads of the servers in this process."""

    def __init__(self) -> None:
        self.real = catalog_module.load_snapshot
        self.count = 0

    def __call__(self, *args, **kwargs):
        self.count += 1
        return self.real(*args, **kwargs)


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request, tmp_path_factory) -> Iterator[dict]:
    if request.param == "gpkg":
        target = str(tmp_path_factory.mktemp("part4") / "inventory.gpkg")
    else:
        url = request.getfixturevalue("postgis_url")
        target = f"{url}?schema=p4_{uuid.uuid4().hex[:10]}"
    sites, reference, info = sample_data(90, seed=9)
    inv = open_inventory(target)
    inv.apply(sites, reference, info)
    keys = {
        "a": inv.add_api_key("COI Piaseczno", [GMINA_A]),
        "region": inv.add_api_key("Biuro Obsługi Inwestora OMW", ["*"]),
    }
    loads = LoadCounter()
    catalog_module.load_snapshot = loads
    try:
        with running_server(target) as base, httpx.Client(base_url=base, timeout=30) as client:
            yield {
                "inv": inv,
                "sites": sites,
                "keys": keys,
                "client": client,
                "base": base,
                "target": target,
                "loads": loads,
                "used": set(),
            }
    finally:
        catalog_module.load_snapshot = loads.real
        inv.backend.close()


def _site(served, teryt: str = GMINA_A) -> str:
    """A site of ``teryt`` no other test has used."""
    sites = served["sites"]
    for sid in sites.loc[sites["teryt"] == teryt, "site_id"]:
        if sid not in served["used"]:
            served["used"].add(sid)
            return sid
    raise AssertionError("the sample has too few sites for the tests")


def _auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def _url(sid: str) -> str:
    return f"/collections/sites/items/{sid}"


def _version(tag: str) -> str:
    return tag.strip('"').split("-")[0]


def _user_rows(inv, sid: str, field: str | None = None):
    h = inv.history(sid)
    rows = h[h["source"].str.startswith("user:")]
    return rows if field is None else rows[rows["field"] == field]


# ------------------------------------------------------------------- ETags, preconditions
def test_strong_etag_and_a_stale_if_match_is_412(served):
    client, key, inv = served["client"], served["keys"]["a"], served["inv"]
    sid = _site(served)
    got = client.get(_url(sid))
    tag = got.headers["etag"]
    assert not tag.startswith("W/") and tag.startswith('"')
    assert client.get(_url(sid), headers={"If-None-Match": tag}).status_code == 304
    first = client.patch(
        _url(sid), json={"price_pln_m2": 210.0}, headers=_auth(key, **{"If-Match": tag})
    )
    assert first.status_code == 200, first.text
    new_tag = first.headers["etag"]
    assert not new_tag.startswith("W/") and _version(new_tag) != _version(tag)
    assert first.headers["last-modified"]
    # a second client with the same (now stale) ETag: refused, nothing written
    second = client.patch(
        _url(sid), json={"price_pln_m2": 99.0}, headers=_auth(key, **{"If-Match": tag})
    )
    assert_problem(second, 412, "changed since")
    assert _user_rows(inv, sid, "price_pln_m2")["new_value"].tolist() == ["210"]
    now = client.get(_url(sid))
    assert now.json()["properties"]["price_pln_m2"] == 210.0
    assert _version(now.headers["etag"]) == _version(new_tag)
    # weak tags never match; * matches any current record; several tags are a list
    weak = client.patch(
        _url(sid), json={"notes": "x"}, headers=_auth(key, **{"If-Match": f"W/{new_tag}"})
    )
    assert_problem(weak, 412)
    listed = client.patch(
        _url(sid), json={"notes": "y"}, headers=_auth(key, **{"If-Match": f'"0000", {new_tag}'})
    )
    assert listed.status_code == 200, listed.text
    star = client.patch(_url(sid), json={"notes": "z"}, headers=_auth(key, **{"If-Match": "*"}))
    assert star.status_code == 200, star.text


def test_if_unmodified_since(served):
    client, key = served["client"], served["keys"]["a"]
    sid = _site(served)
    got = client.get(_url(sid))
    since = got.headers["last-modified"]
    ok = client.patch(
        _url(sid), json={"notes": "a"}, headers=_auth(key, **{"If-Unmodified-Since": since})
    )
    assert ok.status_code == 200, ok.text
    old = "Sat, 01 Jan 2000 00:00:00 GMT"
    stale = client.patch(
        _url(sid), json={"notes": "b"}, headers=_auth(key, **{"If-Unmodified-Since": old})
    )
    assert_problem(stale, 412, "modified at")
    # If-Match wins over If-Unmodified-Since; a date that is not one is ignored
    both = client.patch(
        _url(sid),
        json={"notes": "c"},
        headers=_auth(key, **{"If-Match": ok.headers["etag"], "If-Unmodified-Since": old}),
    )
    assert both.status_code == 200, both.text
    bad = client.patch(
        _url(sid), json={"notes": "d"}, headers=_auth(key, **{"If-Unmodified-Since": "soon"})
    )
    assert bad.status_code == 200, bad.text


# ------------------------------------------------------------------- PUT, PATCH as Feature
def test_put_replaces_the_offer_and_refuses_changed_measurements(served):
    client, key, inv = served["client"], served["keys"]["a"], served["inv"]
    sid = _site(served)
    setup = client.patch(
        _url(sid),
        json={
            "contact": "coi@piaseczno.eu",
            "documents": [
                {"title": "MPZP", "url": "https://bip.piaseczno.eu/mpzp.pdf"},
                {"title": "Operat", "url": "https://intra.piaseczno.eu/o.pdf", "public": False},
            ],
        },
        headers=_auth(key),
    )
    assert setup.status_code == 200, setup.text
    got = client.get(_url(sid))
    feature = got.json()
    # the feature as read, sent back with a new price and without contact: a replace
    props = dict(feature["properties"])
    props["price_pln_m2"] = 333.0
    del props["contact"]
    body = {**feature, "properties": props}
    res = client.put(
        _url(sid),
        json=body,
        headers=_auth(
            key, **{"If-Match": got.headers["etag"], "Content-Type": "application/geo+json"}
        ),
    )
    assert res.status_code == 200, res.text
    assert res.headers["etag"] and not res.headers["etag"].startswith("W/")
    out = res.json()["properties"]
    assert out["price_pln_m2"] == 333.0 and out["contact"] is None
    assert out["status"] == feature["properties"]["status"]
    rec = current_record(inv, sid)
    assert "intra.piaseczno.eu" in rec["documents"]  # the internal document was kept
    assert set(_user_rows(inv, sid)["field"]) >= {"price_pln_m2", "contact"}
    # the replace is conditional like a patch
    stale = client.put(
        _url(sid), json=body, headers=_auth(key, **{"If-Match": got.headers["etag"]})
    )
    assert_problem(stale, 412)

    fresh = client.get(_url(sid)).json()
    changed = {**fresh, "properties": {**fresh["properties"], "area_ha": 999.0}}
    problem = assert_problem(
        client.put(_url(sid), json=changed, headers=_auth(key)), 422, "area_ha"
    )
    assert problem["invalid-params"][0]["name"] == "area_ha"
    moved = orjson.loads(orjson.dumps(fresh))
    ring = moved["geometry"]["coordinates"][0][0]
    ring[0] = [ring[0][0] + 0.01, ring[0][1]]
    ring[-1] = ring[0]
    assert_problem(client.put(_url(sid), json=moved, headers=_auth(key)), 422, "geometry")
    other_id = {**fresh, "id": "S-other"}
    assert_problem(client.put(_url(sid), json=other_id, headers=_auth(key)), 422, "id")
    no_status = {"type": "Feature", "geometry": None, "properties": {"notes": "x"}}
    assert_problem(client.put(_url(sid), json=no_status, headers=_auth(key)), 422, "status")
    assert_problem(client.put(_url("Snothere000"), json=fresh, headers=_auth(key)), 404)
    assert_problem(client.put(_url(sid), json=fresh), 401)
    other = _site(served, GMINA_B)
    assert_problem(client.put(_url(other), json=fresh, headers=_auth(key)), 403)
    # a minimal replacement: measured attributes and geometry left out
    minimal = {"type": "Feature", "geometry": None, "properties": {"status": "reserved"}}
    res = client.put(_url(sid), json=minimal, headers=_auth(key))
    assert res.status_code == 200, res.text
    out = res.json()["properties"]
    assert out["status"] == "reserved" and out["price_pln_m2"] is None
    assert out["area_ha"] == fresh["properties"]["area_ha"]


def test_put_geometry_in_another_crs_and_patch_as_a_feature(served):
    client, key = served["client"], served["keys"]["a"]
    sid = _site(served)
    stored = client.get(_url(sid), params={"crs": STORAGE_CRS}).json()
    body = {**stored, "properties": {**stored["properties"], "status": "reserved"}}
    res = client.put(
        _url(sid), json=body, headers=_auth(key, **{"Content-Crs": f"<{STORAGE_CRS}>"})
    )
    assert res.status_code == 200, res.text
    # the same coordinates read as CRS84 are elsewhere
    assert_problem(client.put(_url(sid), json=body, headers=_auth(key)), 422, "geometry")
    feature = client.get(_url(sid)).json()
    patch = {**feature, "properties": {**feature["properties"], "sez_status": "PSI 2026/3"}}
    res = client.patch(
        _url(sid),
        content=orjson.dumps(patch),
        headers=_auth(key, **{"Content-Type": "application/geo+json"}),
    )
    assert res.status_code == 200, res.text
    assert res.json()["properties"]["sez_status"] == "PSI 2026/3"
    assert res.json()["properties"]["status"] == "reserved"


# ------------------------------------------------------------------- DELETE, POST, OPTIONS
def test_delete_ends_the_record_and_keeps_its_history(served):
    client, key, inv = served["client"], served["keys"]["a"], served["inv"]
    sid = _site(served)
    tag = client.get(_url(sid)).headers["etag"]
    assert client.patch(_url(sid), json={"notes": "x"}, headers=_auth(key)).status_code == 200
    assert_problem(client.delete(_url(sid), headers=_auth(key, **{"If-Match": tag})), 412)
    assert_problem(client.delete(_url(sid)), 401)
    tag = client.get(_url(sid)).headers["etag"]
    res = client.delete(_url(sid), headers=_auth(key, **{"If-Match": tag}))
    assert res.status_code == 204, res.text
    assert_problem(client.get(_url(sid)), 404)
    ended = _user_rows(inv, sid).query("kind == 'ended'")
    assert ended["new_value"].tolist() == ["withdrawn via API by COI Piaseczno"]
    rows = inv.backend.query("SELECT ended_at FROM sites WHERE site_id = ?", (sid,))
    assert len(rows) == 1 and rows["ended_at"].notna().all()
    assert_problem(client.delete(_url(sid), headers=_auth(key)), 404, "has ended")
    assert_problem(
        client.patch(_url(sid), json={"notes": "y"}, headers=_auth(key)), 409, "has ended"
    )
    assert_problem(client.delete(_url(_site(served, GMINA_B)), headers=_auth(key)), 403)


def test_post_is_refused_with_the_methods_that_are_allowed(served):
    client, key = served["client"], served["keys"]["region"]
    feature = client.get(_url(_site(served))).json()
    res = client.post("/collections/sites/items", json=feature, headers=_auth(key))
    problem = assert_problem(res, 405, "run")
    allow = {m.strip() for m in res.headers["allow"].split(",")}
    assert "POST" not in allow and {"GET", "HEAD", "OPTIONS"} <= allow
    assert "measured" in problem["detail"] or "scored" in problem["detail"]


def test_options_lists_the_methods(served):
    client = served["client"]
    sid = _site(served)
    item = client.options(_url(sid))
    assert item.status_code == 200
    methods = {m.strip() for m in item.headers["allow"].split(",")}
    assert methods == {"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}
    assert "application/merge-patch+json" in item.headers["accept-patch"]
    items = client.options("/collections/sites/items")
    assert {m.strip() for m in items.headers["allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
    rail = client.options("/collections/rail/items/1")
    assert {m.strip() for m in rail.headers["allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}


def test_conformance_and_openapi_declare_the_writes(served):
    client = served["client"]
    conforms = set(client.get("/conformance").json()["conformsTo"])
    assert {
        PART4 + c
        for c in (
            "create-replace-delete",
            "update",
            "optimistic-locking-etags",
            "optimistic-locking-timestamps",
        )
    } <= conforms
    assert PART4 + "features" not in conforms  # needs a /schema resource (Part 5)
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["apiKeyHeader"] == {
        **schemes["apiKeyHeader"],
        "in": "header",
        "name": "X-API-Key",
    }
    path = doc["paths"]["/collections/sites/items/{featureId}"]
    for method in ("put", "patch", "delete"):
        op = path[method]
        assert op["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}], method
        assert {"401", "403", "404", "412"} <= set(op["responses"]), method
        assert {"If-Match", "If-Unmodified-Since"} <= {p["name"] for p in op["parameters"]}
    assert "application/geo+json" in path["put"]["requestBody"]["content"]
    assert "application/merge-patch+json" in path["patch"]["requestBody"]["content"]
    assert "405" in doc["paths"]["/collections/sites/items"]["post"]["responses"]


# ------------------------------------------------------------------- the served copy
def test_writes_update_the_served_copy_without_reloading(served):
    client, key, loads = served["client"], served["keys"]["a"], served["loads"]
    sids = [_site(served) for _ in range(4)]
    client.get(_url(sids[0]), params={"crs": STORAGE_CRS})  # a second view, built now
    client.get("/collections/sites/items", params={"sortby": "price_pln_m2", "limit": 1})
    start = loads.count
    tags = {}
    # readers page through the sites meanwhile: none of them may reload either
    stop = threading.Event()
    read_codes: list[int] = []

    def read() -> None:
        with httpx.Client(base_url=served["base"], timeout=30) as reader:
            while not stop.is_set():
                page = reader.get("/collections/sites/items", params={"limit": 50})
                read_codes.append(page.status_code)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i, sid in enumerate(sids * 2):
            res = client.patch(
                _url(sid),
                json={"price_pln_m2": 100.0 + i, "status": "reserved"},
                headers=_auth(key),
            )
            assert res.status_code == 200, res.text
            tags[sid] = res.headers["etag"]
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=30)
    assert read_codes and set(read_codes) == {200}
    put = client.put(
        _url(sids[0]),
        json={
            "type": "Feature",
            "geometry": None,
            "properties": {"status": "available", "notes": "p"},
        },
        headers=_auth(key),
    )
    assert put.status_code == 200, put.text
    tags[sids[0]] = put.headers["etag"]
    for sid in sids:
        got = client.get(_url(sid))
        assert _version(got.headers["etag"]) == _version(tags[sid])
    assert client.get(_url(sids[1])).json()["properties"]["price_pln_m2"] == 105.0
    assert client.get(_url(sids[0])).json()["properties"]["status"] == "available"
    assert loads.count == start, "a write by this server reloaded the whole store"
    # filters and sorting see the new values
    page = client.get(
        "/collections/sites/items",
        params={"filter": f"site_id = '{sids[1]}' AND price_pln_m2 = 105"},
    ).json()
    assert page["numberMatched"] == 1
    top = client.get("/collections/sites/items", params={"sortby": "-price_pln_m2", "limit": 1})
    assert top.json()["features"][0]["properties"]["price_pln_m2"] >= 105.0
    # byte for byte what a reload serves, in every view built
    fresh = catalog_module.load_snapshot.real(served["target"])
    row = fresh.layers["sites"].index[sids[1]]
    served_bytes = client.get(_url(sids[1])).content
    assert served_bytes.startswith(fresh.layers["sites"].views[CRS84_URI].features[row][:-1])
    other = client.get(_url(sids[1]), params={"crs": STORAGE_CRS}).content
    fresh_layer = fresh.layers["sites"]
    assert other.startswith(fresh_layer.view(STORAGE_CRS).features[row][:-1])
    assert loads.count == start


def test_a_write_by_another_process_is_served(served):
    client, loads = served["client"], served["loads"]
    sid = _site(served)
    client.get(_url(sid))
    start = loads.count
    from cli_run import cli

    done = cli(
        "site",
        "edit",
        sid,
        "--by",
        "ewa",
        "--notes",
        "from the command line",
        "--store",
        served["target"],
    )
    assert done.returncode == 0, done.stderr
    got = client.get(_url(sid)).json()
    assert got["properties"]["notes"] == "from the command line"
    assert loads.count == start  # followed in place, not reloaded (test_snapshot_refresh.py)


# ------------------------------------------------------------------- races, real processes
@contextlib.contextmanager
def second_server(target: str) -> Iterator[str]:
    """``omw-sites serve`` on the same store, in its own process."""
    with serving(target, env={"PYTHONUNBUFFERED": "1"}) as (url, _):
        yield url


def test_stale_etags_and_sold_or_withdrawn_from_client_processes_on_two_servers(served):
    """Two client processes, each talking to its own server process on the same store,
    PATCH one site at the same moment: with the same ETag exactly one is accepted (200)
    and the other told (412); sold against withdrawn, exactly one wins (200) and the
    other is told (409). The history holds exactly the accepted writes."""
    client, key, inv = served["client"], served["keys"]["region"], served["inv"]
    rounds = 6
    sids = [_site(served, t) for t in (GMINA_A, GMINA_B) for _ in range(rounds)]
    with second_server(served["target"]) as other, Writers(served["target"]) as writers:
        bases = [served["base"], other]
        for i, sid in enumerate(sids):
            tag = client.get(_url(sid)).headers["etag"]
            if i % 2 == 0:  # the same ETag, two different prices
                bodies = [{"price_pln_m2": 111.0}, {"price_pln_m2": 222.0}]
                headers = _auth(key, **{"If-Match": tag})
                expect_refused = 412
            else:  # no precondition: the lifecycle decides
                bodies = [{"status": "sold"}, {"status": "withdrawn"}]
                headers = _auth(key)
                expect_refused = 409
            results = writers.race(
                *(("http", "PATCH", bases[j] + _url(sid), headers, bodies[j]) for j in (0, 1))
            )
            codes = sorted(r[1] for r in results)
            assert codes == [200, expect_refused], (sid, results)
            won = bodies[[r[1] for r in results].index(200)]
            field, value = next(iter(won.items()))
            rows = _user_rows(inv, sid, field)
            assert len(rows) == 1, (sid, rows)
            assert current_record(inv, sid)[field] == value
            # both servers serve the winner
            for base in bases:
                got = httpx.get(base + _url(sid), timeout=30).json()["properties"]
                assert got[field] == value, (base, got[field], value)


def test_cross_origin_portal_may_replace_and_delete_with_preconditions(served):
    res = served["client"].options(
        _url("S1"),
        headers={
            "Origin": "https://inwestor.example.pl",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "authorization, if-match, if-unmodified-since",
        },
    )
    assert res.status_code == 200, res.text
    # POST: the regional office's tools create and match enquiries from another origin
    assert {"PUT", "DELETE", "POST"} <= {
        m.strip() for m in res.headers["access-control-allow-methods"].split(",")
    }
    allowed = res.headers["access-control-allow-headers"].lower()
    assert "if-match" in allowed and "if-unmodified-since" in allowed
