"""Investor enquiries through the API, end to end on the demo region with a real server
(``omw-sites serve``): the regional office's key (made with ``apikey add --region``)
records and matches an enquiry, the gminy answer under their own keys (403 for a gmina
the enquiry does not concern, 409 for a site not on the shortlist), the office moves it
to won or lost; every write is a history row under the key holder's name; the change
feed; the OpenAPI document. The investor's contact is searched for in every response a
gmina or the public gets, and must never be there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_run import cli, serving
from test_api import assert_problem

from omw_sites.store import enquiries as E
from omw_sites.store import open_inventory

CONTACT_NAME = "Zofia Tajna-Inwestorska"
CONTACT_MAIL = "zofia.tajna@falcon-logistics.example"
CONTACT = f"{CONTACT_NAME}, {CONTACT_MAIL}, +48 601 234 567"
SECRETS = (CONTACT_NAME, CONTACT_MAIL, "601 234 567", "falcon-logistics")
ENQUIRY = {
    "code_name": "Falcon",
    "sector": "logistics",
    "deadline": "2027-03-31",
    "contact": CONTACT,
    "requirements": {
        "profile": "logistics",
        "area_ha": {"min": 1},
        "limits": {"time_junction_min": {"max": 10}, "power_capacity_mw": {"min": 20}},
    },
    "preferences": {"profile": "logistics", "weights": {"time_junction_min": 50}},
}


def _key(store: Path, *args: str) -> str:
    res = cli("apikey", "add", *args, "--store", str(store))
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.fixture(scope="module")
def served(demo_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("enquiry_api") / "omw_sites.gpkg"
    shutil.copy(demo_store, path)
    office = _key(path, "Biuro Obsługi Inwestora OMW", "--region")
    with serving(path) as (url, _), httpx.Client(base_url=url, timeout=60, trust_env=False) as c:
        yield {"store": path, "client": c, "office": office}


class Seen:
    """Every body a gmina or the public got, to search for the investor's contact."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def __call__(self, got: Any) -> Any:
        """Keep a response's body (or a problem body already read); return it as given."""
        text = got.text if isinstance(got, httpx.Response) else json.dumps(got, ensure_ascii=False)
        self.bodies.append(text)
        return got

    def assert_no_contact(self) -> None:
        assert self.bodies
        for body in self.bodies:
            for secret in SECRETS:
                assert secret not in body


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_cli_refuses_a_key_both_regional_and_a_gminas(served) -> None:
    res = cli(
        "apikey", "add", "X", "--region", "--gmina", "1418043", "--store", str(served["store"])
    )
    assert res.returncode == 2 and "--region" in res.stderr
    res = cli("apikey", "add", "X", "--store", str(served["store"]))
    assert res.returncode == 2


def test_enquiry_from_the_office_to_won_with_the_gminy_answering(served, tmp_path) -> None:
    c, office, store = served["client"], served["office"], served["store"]
    seen = Seen()

    # only the office's key records an enquiry
    seen(assert_problem(c.post("/enquiries", json=ENQUIRY), 401, "API key"))
    res = c.post("/enquiries", json=ENQUIRY, headers=_auth(office))
    assert res.status_code == 201, res.text
    view = seen(res).json()  # the public view: what the office may show anyone
    eid = view["enquiry_id"]
    assert res.headers["location"].endswith(f"/enquiries/{eid}")
    assert view["status"] == "new" and view["code_name"] == "Falcon" and "contact" not in view
    assert c.get(res.headers["location"], headers=_auth(office)).json()["contact"] == CONTACT

    # bad bodies: 422 naming the field and the rule
    bad = {**ENQUIRY, "requirements": {"area_ha": {"min": 40, "max": 10}}}
    body = assert_problem(c.post("/enquiries", json=bad, headers=_auth(office)), 422)
    assert body["invalid-params"][0]["name"] == "requirements.area_ha"
    assert "minimum 40 is above maximum 10" in body["detail"]
    body = assert_problem(
        c.post("/enquiries", json={**ENQUIRY, "budget": 5}, headers=_auth(office)), 422
    )
    assert body["invalid-params"][0]["name"] == "budget"

    # the office matches: at most one site per gmina
    res = c.post(f"/enquiries/{eid}/match", json={"cap_per_gmina": 1, "top": 4, "near": 5},
                 headers=_auth(office))  # fmt: skip
    assert res.status_code == 200, res.text
    match = seen(res).json()["match"]
    short, near = match["shortlist"], match["near_misses"]
    assert len(short) == 4 and near
    inv = open_inventory(store)
    sites = inv.read_sites(read_geometry=False).set_index("site_id")
    chosen = sites.loc[[s["site_id"] for s in short]]
    assert (chosen["time_junction_min"] <= 10).all() and (chosen["power_capacity_mw"] >= 20).all()
    assert chosen["teryt"].is_unique  # the balance cap held

    # the gminy, each under its own key
    first, second = short[0], short[1]
    keys = {s["teryt"]: _key(store, f"UG {s['gmina']}", "--gmina", s["teryt"]) for s in short}
    outsider_teryt = next(t for t in sorted(set(sites["teryt"])) if t not in keys)
    outsider = _key(store, "UG spoza listy", "--gmina", outsider_teryt)
    k1 = keys[first["teryt"]]

    feed = seen(c.get("/enquiries", headers=_auth(k1))).json()["enquiries"]
    mine = next(e for e in feed if e["enquiry_id"] == eid)
    assert [s["site_id"] for s in mine["sites"]] == [first["site_id"]]  # its own site only
    assert "match" not in mine and "contact" not in mine
    res = seen(c.get(f"/enquiries?gmina={first['teryt']}", headers={"X-API-Key": k1}))
    assert [e["enquiry_id"] for e in res.json()["enquiries"]] == [eid]
    seen(assert_problem(c.get(f"/enquiries?gmina={second['teryt']}", headers=_auth(k1)), 403))
    one = seen(c.get(f"/enquiries/{eid}", headers=_auth(k1))).json()
    assert one["sites"][0]["site_id"] == first["site_id"] and second["site_id"] not in str(one)
    assert seen(c.get("/enquiries", headers=_auth(outsider))).json()["enquiries"] == []
    seen(assert_problem(c.get(f"/enquiries/{eid}", headers=_auth(outsider)), 403, "not concern"))
    # gminy do not do the office's work
    seen(assert_problem(c.post("/enquiries", json=ENQUIRY, headers=_auth(k1)), 403, "regional"))
    seen(assert_problem(c.post(f"/enquiries/{eid}/match", headers=_auth(k1)), 403))

    answer = {"site_id": first["site_id"], "answer": "confirmed", "price_pln_m2": 185.5,
              "contact": "UG, Wydział Inwestycji, 22 000 00 01"}  # fmt: skip
    res = c.post(f"/enquiries/{eid}/answers", json=answer, headers=_auth(k1))
    assert res.status_code == 200, res.text
    assert seen(res).json()["answer"] == "confirmed"
    other = {"site_id": second["site_id"], "answer": "confirmed"}
    seen(assert_problem(c.post(f"/enquiries/{eid}/answers", json=other, headers=_auth(k1)), 403))
    seen(assert_problem(c.post(f"/enquiries/{eid}/answers", json=answer, headers=_auth(outsider)),
                        403, "not concern"))  # fmt: skip
    miss = {"site_id": near[0]["site_id"], "answer": "confirmed"}
    seen(assert_problem(c.post(f"/enquiries/{eid}/answers", json=miss, headers=_auth(k1)),
                        409, "not on the shortlist"))  # fmt: skip
    body = assert_problem(
        c.post(f"/enquiries/{eid}/answers?lang=pl", json=other, headers=_auth(outsider)), 403
    )
    assert "nie dotyczy klucza" in seen(body)["detail"]  # the problem in Polish
    res = c.post(f"/enquiries/{eid}/answers", json={**other, "answer": "withdrawn"},
                 headers=_auth(keys[second["teryt"]]))  # fmt: skip
    assert seen(res).status_code == 200

    # the change feed: the office sees every row, a gmina only its enquiry's and answers
    rows = c.get("/enquiries/changes?since=2020-01-01", headers=_auth(office)).json()["changes"]
    answered = {r["site_id"] for r in rows if r["kind"] == "answer"}
    assert answered == {first["site_id"], second["site_id"]}
    res = seen(c.get("/enquiries/changes?since=2020-01-01", headers=_auth(k1)))
    gmina_rows = res.json()["changes"]
    assert {r["site_id"] for r in gmina_rows if r["kind"] == "answer"} == {first["site_id"]}
    assert {"created", "matched", "status"} <= {r["kind"] for r in gmina_rows}
    assert (
        seen(c.get("/enquiries/changes?since=2020-01-01", headers=_auth(outsider))).json()[
            "changes"
        ]
        == []
    )
    seen(assert_problem(c.get("/enquiries/changes?since=yesterday", headers=_auth(k1)), 400))

    # the offer goes out (CLI), then won through the API with the chosen site
    res = cli("enquiry", "offer", eid, "--by", "Biuro Obsługi Inwestora OMW", "--lang", "en",
              "--out", str(tmp_path), "--store", str(store))  # fmt: skip
    assert res.returncode == 0, res.stderr
    seen(assert_problem(c.post(f"/enquiries/{eid}/status", json={"status": "won", "reason": "x"},
                               headers=_auth(k1)), 403))  # fmt: skip
    res = c.post(f"/enquiries/{eid}/status", json={"status": "site_visit"}, headers=_auth(office))
    assert seen(res).json()["status"] == "site_visit"
    body = assert_problem(c.post(f"/enquiries/{eid}/status", json={"status": "won"},
                                 headers=_auth(office)), 422)  # fmt: skip
    assert body["invalid-params"][0]["name"] == "reason"
    won = {"status": "won", "reason": "best access to the S8", "site": first["site_id"]}
    res = c.post(f"/enquiries/{eid}/status", json=won, headers=_auth(office))
    assert res.status_code == 200, res.text
    assert seen(res).json()["status"] == "won" and res.json()["chosen_site"] == first["site_id"]
    assert_problem(c.post(f"/enquiries/{eid}/status", json={"status": "lost", "reason": "x"},
                          headers=_auth(office)), 409, "allowed")  # fmt: skip

    # a second enquiry is lost
    res = c.post("/enquiries", json={**ENQUIRY, "code_name": "Kestrel"}, headers=_auth(office))
    lost_id = seen(res).json()["enquiry_id"]
    seen(c.post(f"/enquiries/{lost_id}/match", headers=_auth(office)))
    res = c.post(f"/enquiries/{lost_id}/status", json={"status": "lost", "reason": "went to Łódź"},
                 headers=_auth(office))  # fmt: skip
    assert seen(res).json()["status"] == "lost"

    # every write a history row under the key holder's name
    hist = E.history(inv, eid)
    sources = set(hist["source"])
    assert "user:Biuro Obsługi Inwestora OMW" in sources
    assert f"user:UG {first['gmina']}" in sources and f"user:UG {second['gmina']}" in sources
    answers = hist[hist["kind"] == "answer"]
    assert set(answers["site_id"]) == {first["site_id"], second["site_id"]}
    moves = hist[hist["field"] == "status"]["new_value"].tolist()
    assert moves == ["matched", "sent", "site_visit", "won"]
    assert E.get(inv, lost_id)["status"] == "lost"

    # what the public reads of the region never carries the contact either
    for path in ("/collections/sites/items?limit=1000", "/catalogue?lang=en",
                 f"/collections/sites/items/{first['site_id']}",
                 "/collections/sites/changes?since=2020-01-01", "/openapi.json"):  # fmt: skip
        seen(c.get(path))
    # the office's own view has it: the search above would have found it
    assert CONTACT_MAIL in c.get(f"/enquiries/{eid}", headers=_auth(office)).text
    assert CONTACT_MAIL in c.get("/enquiries", headers=_auth(office)).text
    seen.assert_no_contact()


def test_openapi_declares_the_enquiries_with_their_keys(served) -> None:
    doc = served["client"].get("/openapi.json").json()
    for path, method in (
        ("/enquiries", "post"),
        ("/enquiries", "get"),
        ("/enquiries/changes", "get"),
        ("/enquiries/{enquiryId}", "get"),
        ("/enquiries/{enquiryId}/match", "post"),
        ("/enquiries/{enquiryId}/answers", "post"),
        ("/enquiries/{enquiryId}/status", "post"),
    ):
        op = doc["paths"][path][method]
        assert op["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}], path
        assert "403" in op["responses"] and "401" in op["responses"]
    body = doc["paths"]["/enquiries"]["post"]["requestBody"]["content"]["application/json"]
    assert "contact" in body["schema"]["properties"]
    assert "bearerAuth" in doc["components"]["securitySchemes"]
