"""Authorised writes and the change feed through a real HTTP server, on both backends:
per-gmina API keys, 401/403/404/409/415/422 problem bodies, history, reload, sync feed."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sample_store import sample_data
from test_api import assert_problem, running_server

from omw_sites.store import open_inventory

GMINA_A = "1418043"  # Piaseczno
GMINA_B = "1421062"  # Raszyn


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request, tmp_path_factory) -> Iterator[dict]:
    if request.param == "gpkg":
        target = str(tmp_path_factory.mktemp("write") / "inventory.gpkg")
    else:
        url = request.getfixturevalue("postgis_url")
        target = f"{url}?schema=w_{uuid.uuid4().hex[:10]}"
    sites, reference, info = sample_data(80, seed=5)
    inv = open_inventory(target)
    inv.apply(sites, reference, info)
    keys = {
        "a": inv.add_api_key("COI Piaseczno", [GMINA_A]),
        "region": inv.add_api_key("Biuro Obsługi Inwestora OMW", ["*"]),
        "revoked": inv.add_api_key("Old key", [GMINA_B]),
    }
    inv.revoke_api_key("Old key")
    with running_server(target) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield {"inv": inv, "sites": sites, "keys": keys, "client": client}
    inv.backend.close()


def _site(served, teryt: str, k: int = 0) -> str:
    sites = served["sites"]
    return sites.loc[sites["teryt"] == teryt, "site_id"].iloc[k]


def _patch(client, sid, body, key=None, header="authorization", headers=None, **kw):
    headers = dict(headers or {})
    if key:
        headers.update(
            {"Authorization": f"Bearer {key}"} if header == "authorization" else {"X-API-Key": key}
        )
    return client.patch(f"/collections/sites/items/{sid}", json=body, headers=headers, **kw)


def test_patch_by_the_gminas_key_lands_in_history_and_is_served(served):
    client, inv = served["client"], served["inv"]
    sid = _site(served, GMINA_A)
    body = {
        "status": "reserved",
        "price_pln_m2": 275.5,
        "contact": "inwestycje@piaseczno.eu",
        "documents": [
            {"title": "Wypis i wyrys z MPZP", "url": "https://bip.piaseczno.eu/mpzp/12.pdf"},
            {
                "title": "Operat szacunkowy",
                "url": "https://intra.piaseczno.eu/o.pdf",
                "public": False,
            },
        ],
    }
    res = _patch(client, sid, body, served["keys"]["a"])
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("application/geo+json")
    feature = res.json()
    assert feature["id"] == sid
    props = feature["properties"]
    assert props["status"] == "reserved" and props["price_pln_m2"] == 275.5
    assert "intra.piaseczno.eu" not in str(props["documents"])  # internal docs stay private
    assert "content_hash" not in props
    h = inv.history(sid)
    rows = h[h["source"] == "user:COI Piaseczno"]
    # status_date is today's date, as it was when the site was loaded today: no change
    assert set(rows["field"]) == {"status", "price_pln_m2", "contact", "documents"}
    # the read side reloads and serves the change
    deadline = time.monotonic() + 20
    while True:
        got = client.get(f"/collections/sites/items/{sid}").json()["properties"]
        if got["status"] == "reserved" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got["status"] == "reserved" and got["price_pln_m2"] == 275.5
    assert "intra.piaseczno.eu" not in str(got["documents"])


def test_x_api_key_header_and_regional_key(served):
    client = served["client"]
    sid = _site(served, GMINA_B)
    res = _patch(client, sid, {"notes": "uzbrojenie 2027"}, served["keys"]["region"], "x")
    assert res.status_code == 200, res.text
    assert res.json()["properties"]["notes"] == "uzbrojenie 2027"


def test_no_key_unknown_key_and_revoked_key_are_401(served):
    client = served["client"]
    sid = _site(served, GMINA_A, 1)
    for key in (None, "omw_not-a-key", served["keys"]["revoked"]):
        res = _patch(client, sid, {"notes": "x"}, key)
        assert_problem(res, 401)
        assert res.headers["www-authenticate"].startswith("Bearer")
    # the auth check comes before the body check
    assert_problem(_patch(client, sid, {"price_pln_m2": "cheap"}), 401)


def test_key_of_another_gmina_is_403_and_changes_nothing(served):
    client, inv = served["client"], served["inv"]
    sid = _site(served, GMINA_B, 1)
    before = inv.history(sid)
    body = assert_problem(_patch(client, sid, {"notes": "x"}, served["keys"]["a"]), 403, GMINA_B)
    assert "COI Piaseczno" in body["detail"]
    assert len(inv.history(sid)) == len(before)


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"price_pln_m2": -1}, "price_pln_m2", 422),
        ({"price_pln_m2": "cheap"}, "price_pln_m2", 422),
        ({"status": "rented"}, "status", 422),
        ({"documents": [{"title": "x", "url": "ftp:/broken"}]}, "documents.0.url", 422),
        ({"site_id": "S1"}, "site_id", 422),
        ({}, "body", 422),
        ([1, 2], "body", 422),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(served, body, field, status):
    client = served["client"]
    sid = _site(served, GMINA_A, 2)
    res = _patch(client, sid, body, served["keys"]["a"])
    problem = assert_problem(res, status)
    assert problem["invalid-params"][0]["name"] == field


def test_unknown_site_404_bad_transition_409_and_non_json_415(served):
    client, key = served["client"], served["keys"]["region"]
    assert_problem(_patch(client, "Snothere000", {"notes": "x"}, key), 404, "Snothere000")
    sid = _site(served, GMINA_A, 3)
    assert _patch(client, sid, {"status": "sold"}, key).status_code == 200
    assert_problem(_patch(client, sid, {"status": "available"}, key), 409, "sold is final")
    res = client.patch(
        f"/collections/sites/items/{sid}",
        content=b"status=sold",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "text/plain"},
    )
    assert_problem(res, 415)
    res = client.patch(
        f"/collections/sites/items/{sid}",
        content=b"{not json",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert_problem(res, 422, "not valid JSON")


def test_change_feed_lists_writes_and_pages(served):
    client, key = served["client"], served["keys"]["region"]
    t0 = client.get("/collections/sites/changes", params={"since": "2000-01-01"}).json()
    assert t0["numberMatched"] == 80  # every record was created after 2000
    # now, to the microsecond as the store stamps its changes: after the load, however
    # quickly it ran (a marker a whole second back could include the sites' creation)
    marker = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sid = _site(served, GMINA_B, 2)
    assert _patch(client, sid, {"sez_status": "PSI 2026/7"}, key).status_code == 200
    feed = client.get("/collections/sites/changes", params={"since": marker}).json()
    changed = {c["site_id"]: c for c in feed["changes"]}
    assert changed[sid]["change"] == "changed" and changed[sid]["fields"] == "sez_status"
    page = client.get("/collections/sites/changes", params={"since": "2000-01-01", "limit": 30})
    doc = page.json()
    assert doc["numberReturned"] == 30
    nxt = next(ln["href"] for ln in doc["links"] if ln["rel"] == "next")
    assert "offset=30" in nxt
    assert_problem(client.get("/collections/sites/changes", params={"since": "last week"}), 400)
    assert_problem(client.get("/collections/sites/changes"), 400)


def test_openapi_documents_the_write(served):
    doc = served["client"].get("/openapi.json").json()
    op = doc["paths"]["/collections/sites/items/{featureId}"]["patch"]
    schema = op["requestBody"]["content"]["application/merge-patch+json"]["schema"]
    assert {"status", "price_pln_m2", "documents"} <= set(schema["properties"])
    assert {"401", "403", "404", "409", "422"} <= set(op["responses"])
    assert "/collections/sites/changes" in doc["paths"]


def test_datetime_selects_sites_by_when_their_record_changed(served):
    client, key = served["client"], served["keys"]["region"]
    marker = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # the store's format
    sid = _site(served, GMINA_B, 3)
    assert _patch(client, sid, {"notes": "teren po rekultywacji"}, key).status_code == 200
    deadline = time.monotonic() + 20
    while True:  # the read side reloads after the write
        doc = client.get(
            "/collections/sites/items", params={"datetime": f"{marker}/..", "limit": 1000}
        ).json()
        ids = {f["id"] for f in doc["features"]}
        if sid in ids or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sid in ids
    stamps = [f["properties"]["updated_at"] for f in doc["features"]]
    assert all(t >= marker for t in stamps), (marker, stamps)
    assert doc["numberMatched"] < 80  # the other records changed before the marker
    old = client.get("/collections/sites/items", params={"datetime": "2000-01-01/2000-12-31"})
    assert old.json()["numberMatched"] == 0
    created = served["inv"].read_sites(columns=["created_at"], read_geometry=False)
    today = created["created_at"].iloc[0][:10]  # every record was loaded in one apply
    whole_day = client.get("/collections/sites/items", params={"datetime": today, "limit": 1})
    assert whole_day.json()["numberMatched"] == 80  # loaded today: a date is the whole day
    assert_problem(
        client.get("/collections/sites/items", params={"datetime": "2026-12-01/2026-11-01"}), 400
    )
    # reference layers have no temporal property: datetime does not restrict them
    rail = client.get("/collections/rail/items", params={"datetime": "2000-01-01"}).json()
    assert rail["numberMatched"] == 10


def test_cross_origin_portal_may_patch(served):
    """A browser portal on another origin: the CORS preflight allows PATCH with a key."""
    res = served["client"].options(
        "/collections/sites/items/S1",
        headers={
            "Origin": "https://inwestor.example.pl",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert res.status_code == 200, res.text
    assert "PATCH" in res.headers["access-control-allow-methods"]
    allowed = res.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


def test_two_clients_with_the_same_etag_the_second_is_412(served):
    """Strong per-feature ETags: a PATCH with a stale If-Match is refused, the response of
    an accepted one carries the new ETag, and the write lands once."""
    client, key, inv = served["client"], served["keys"]["a"], served["inv"]
    sid = _site(served, GMINA_A, 4)
    tag = client.get(f"/collections/sites/items/{sid}").headers["etag"]
    assert not tag.startswith("W/")
    first = _patch(client, sid, {"notes": "klient 1"}, key, headers={"If-Match": tag})
    assert first.status_code == 200, first.text
    assert first.headers["etag"] != tag and not first.headers["etag"].startswith("W/")
    second = _patch(client, sid, {"notes": "klient 2"}, key, headers={"If-Match": tag})
    assert_problem(second, 412)
    h = inv.history(sid)
    assert h.loc[h["field"] == "notes", "new_value"].tolist() == ["klient 1"]
    third = _patch(
        client, sid, {"notes": "klient 2"}, key, headers={"If-Match": first.headers["etag"]}
    )
    assert third.status_code == 200, third.text
