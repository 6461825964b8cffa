"""Investor enquiries: the record with its history on both backends, known-answer
matching on a hand-made region (who passes, who nearly does and why, the order, the cap
per gmina), the gminy's answers, the status lifecycle and the confidential contact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sample_store import sample_data

from omw_sites.reports.balance import balanced_shortlist
from omw_sites.scoring.matching import (
    RequirementError,
    check_text,
    match,
    parse_preferences,
    parse_requirements,
    shortfall_text,
    site_lines,
)
from omw_sites.scoring.profiles import builtin_dir, load_profile
from omw_sites.store import InventoryError, open_inventory
from omw_sites.store import enquiries as E

A, B, C = "1465011", "1418043", "1421062"
NaN = float("nan")
# (gmina, area ha, minutes to a junction, free power MW, ownership, status)
HAND = [
    (A, 10, 5, 8, "municipal", "available"),  # 0 passes, score 0.7714
    (A, 20, 8, 6, "state", "available"),  # 1 passes, 0.5786
    (A, 15, 3, 10, "municipal", "available"),  # 2 passes, 0.9 (best)
    (A, 12, 6, NaN, "municipal", "available"),  # 3 passes, power unknown, 0.7071
    (B, 30, 12, 9, "municipal", "available"),  # 4 near miss: 12 min > 10 (20 % over)
    (B, 25, 4, 3, "state", "available"),  # 5 near miss: 3 MW < 5 (40 % short)
    (C, 8, 2, 7, "private", "available"),  # 6 near miss: ownership
    (C, 50, 2, 20, "municipal", "sold"),  # 7 sold: never listed (and too large)
    (C, 3, 20, 1, "municipal", "available"),  # 8 fails three requirements
    (B, 10, 9, 5, "municipal", "reserved"),  # 9 passes (5 MW is enough), 0.5143
    (C, 10, 8, 6, "state", "available"),  # 10 passes, ties with 1 (0.5786)
]
ENQUIRY = {
    "code_name": "Falcon",
    "sector": "logistics",
    "deadline": "2026-12-14",
    "contact": "Jan Tajny, +48 600 100 200, falcon@investor.example",
    "requirements": {
        "area_ha": [5, 40],
        "ownership": ["municipal", "state"],
        "limits": {"time_junction_min": {"max": 10}, "power_capacity_mw": {"min": 5}},
    },
    # only the minutes to a junction rank (piecewise 0→1, 3→0.9, 10→0.45, 25→0)
    "preferences": {
        "profile": "logistics",
        "weights": {
            **dict.fromkeys(load_profile(builtin_dir() / "logistics.toml").weights, 0.0),
            "time_junction_min": 1.0,
        },
    },
}


def hand_sites() -> tuple:
    sites, reference, info = sample_data(len(HAND), seed=3)
    for i, (teryt, area, minutes, power, owner, _status) in enumerate(HAND):
        sites.loc[i, ["teryt", "ownership"]] = [teryt, owner]
        sites.loc[i, ["area_ha", "time_junction_min", "power_capacity_mw"]] = [area, minutes, power]
    sites["gmina"] = sites["teryt"].map({A: "Warszawa", B: "Marki", C: "Nadarzyn"})
    sites.loc[5, "dist_substation_m"] = 2100.0
    sites.loc[3, "dist_substation_m"] = 4500.0
    return sites, reference, info


@pytest.fixture
def inv(target):
    inv = open_inventory(target)
    inv.apply(*hand_sites())
    for i, (*_, status) in enumerate(HAND):
        if status != "available":
            inv.set_status(f"S{i:010x}", status, "test")
    return inv


def sid(i: int) -> str:
    return f"S{i:010x}"


def test_known_answer_match_near_misses_order_and_cap(inv):
    sites = inv.read_sites(read_geometry=False)
    req = parse_requirements(ENQUIRY["requirements"])
    prefs = parse_preferences(ENQUIRY["preferences"], req)

    plain = match(sites, req, prefs, top=10)
    assert [s["site_id"] for s in plain.shortlist] == [sid(i) for i in (2, 0, 3, 1, 10, 9)]
    assert [s["score"] for s in plain.shortlist] == pytest.approx(
        [0.9, 0.771429, 0.707143, 0.578571, 0.578571, 0.514286], abs=1e-6
    )
    assert plain.candidates == 6
    # every listed site meets every requirement (none failed); the unknown one says so
    by_id = sites.set_index("site_id")
    for item in plain.shortlist:
        row = by_id.loc[item["site_id"]]
        assert 5 <= row["area_ha"] <= 40 and row["time_junction_min"] <= 10
        assert row["ownership"] in ("municipal", "state") and row["status"] != "sold"
        assert not np.nan_to_num(row["power_capacity_mw"], nan=5) < 5
        assert all(c["state"] != "fail" for c in item["checks"])
    unknown = site_lines(plain.shortlist[2], "en")["uncertain"]
    assert unknown == ["power: no data (at least 5 MW asked) — substation 4.5 km"]
    assert site_lines(plain.shortlist[2], "pl")["uncertain"] == [
        "moc: brak danych (wymagane: co najmniej 5 MW) — GPZ 4,5 km"
    ]

    # near misses: each fails exactly the one named requirement, the closest first
    assert [(s["site_id"], s["failed"]) for s in plain.near_misses] == [
        (sid(4), "time_junction_min"),
        (sid(5), "power_capacity_mw"),
        (sid(6), "ownership"),
    ]
    for item in plain.near_misses:
        failed = [c["key"] for c in item["checks"] if c["state"] == "fail"]
        assert failed == [item["failed"]]
    power = site_lines(plain.near_misses[1], "en")["missing"]
    assert power == ["power: 3 MW available, at least 5 MW asked — substation 2.1 km"]
    assert site_lines(plain.near_misses[1], "pl")["missing"] == [
        "moc: dostępne 3 MW, wymagane co najmniej 5 MW — GPZ 2,1 km"
    ]
    assert shortfall_text(plain.near_misses[1], "en") == "2 MW too little"
    assert shortfall_text(plain.near_misses[0], "pl") == "o 2 min za dużo"
    own = [c for c in plain.near_misses[2]["checks"] if c["key"] == "ownership"][0]
    assert check_text(own, "en") == "ownership: private, not one of municipal, state"

    # the cap per gmina (balance's rule): two of Warszawa, then the others
    capped = match(sites, req, prefs, top=10, cap=2, spread=balanced_shortlist)
    assert [s["site_id"] for s in capped.shortlist] == [sid(i) for i in (2, 0, 10, 9)]
    per = pd.Series([s["teryt"] for s in capped.shortlist]).value_counts()
    assert per.max() <= 2
    top3 = match(sites, req, prefs, top=3, cap=1, near=1, spread=balanced_shortlist)
    assert [s["site_id"] for s in top3.shortlist] == [sid(i) for i in (2, 10, 9)]
    assert [s["site_id"] for s in top3.near_misses] == [sid(4)]
    # the same input gives the same answer, whatever the row order
    again = match(sites.iloc[::-1], req, prefs, top=10, cap=2, spread=balanced_shortlist)
    assert again.to_json() == capped.to_json()


def test_enquiry_record_history_answers_and_lifecycle(inv):
    rec = E.add(inv, ENQUIRY, "office")
    eid = rec["enquiry_id"]
    assert (eid, rec["status"], rec["contact"]) == ("E0001", "new", ENQUIRY["contact"])
    assert "contact" not in E.public_view(rec)
    assert "contact" not in E.listing(inv).columns
    assert E.add(inv, {**ENQUIRY, "code_name": "Heron"}, "office")["enquiry_id"] == "E0002"

    sites = inv.read_sites(read_geometry=False)
    req = parse_requirements(rec["requirements"])
    prefs = parse_preferences(rec["preferences"], req)
    result = match(sites, req, prefs, top=10, cap=2, spread=balanced_shortlist)
    rec = E.record_match(inv, eid, result, "office")
    assert rec["status"] == "matched"
    assert [s["site_id"] for s in rec["match"]["shortlist"]] == [sid(i) for i in (2, 0, 10, 9)]
    rows = E.matched_sites(inv, eid)
    assert rows["role"].tolist() == ["shortlist"] * 4 + ["near_miss"] * 3

    # the gminy answer for their own sites only, and only for shortlisted ones
    E.answer(inv, eid, sid(0), False, "gmina.warszawa", gminy=frozenset([A]))
    row = E.answer(inv, eid, sid(10), True, "gmina.nadarzyn", price=180.0, contact="UG Nadarzyn")
    assert (row["answer"], row["answer_price_pln_m2"]) == ("confirmed", 180.0)
    with pytest.raises(InventoryError) as err:
        E.answer(inv, eid, sid(9), True, "gmina.nadarzyn", gminy=frozenset([C]))
    assert err.value.status == 403
    with pytest.raises(InventoryError) as err:
        E.answer(inv, eid, sid(4), True, "gmina.marki")
    assert err.value.status == 409 and "not on the shortlist" in str(err.value)

    with pytest.raises(InventoryError) as err:  # not sent yet
        E.set_status(inv, eid, "site_visit", "office")
    assert err.value.status == 409
    E.mark_offered(inv, eid, [sid(2), sid(10), sid(9)], "office")
    E.set_status(inv, eid, "site_visit", "office", reason="visit on 2026-12-20")
    with pytest.raises(InventoryError):
        E.set_status(inv, eid, "won", "office")  # the reason is required
    with pytest.raises(InventoryError):
        E.set_status(inv, eid, "won", "office", reason="x", site=sid(0))  # not offered
    rec = E.set_status(inv, eid, "won", "office", reason="signed", site=sid(10))
    assert (rec["status"], rec["chosen_site"]) == ("won", sid(10))
    with pytest.raises(InventoryError) as err:
        E.set_status(inv, eid, "lost", "office", reason="x")
    assert err.value.status == 409 and "final" in str(err.value)

    hist = E.history(inv, eid)
    kinds = hist["kind"].tolist()
    assert kinds.count("matched") == 1 and kinds.count("offer") == 1
    assert (hist["kind"] == "answer").sum() == 4  # withdrawn; confirmed, price, contact
    status = hist[hist["field"] == "status"]
    assert status["new_value"].tolist() == ["matched", "sent", "site_visit", "won"]
    assert hist["changed_at"].is_monotonic_increasing
    assert hist["source"].str.startswith("user:").all()
    assert not hist.astype(str).apply(lambda c: c.str.contains("Tajny")).any().any()

    summary = E.summary(inv).set_index("teryt")
    assert summary.loc[A, "shortlisted"] == 1 and summary.loc[A, "offered"] == 1
    assert summary.loc[C, "chosen"] == 1 and summary.loc[A, "chosen"] == 0
    assert summary.loc[B, "most_failed"] == "power_capacity_mw"  # tie: by name
    assert E.summary(inv, since="2100-01-01").empty


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        (
            {"requirements": {"time_to_junction": {"max": 10}}},
            "requirements.time_to_junction",
            "closest known: time_junction_min",
        ),
        (
            {"requirements": {"limits": {"power_mw": {"min": 5}}}},
            "requirements.limits.power_mw",
            "closest known: power_capacity_mw",
        ),
        ({"requirements": {"area_ha": [40, 10]}}, "requirements.area_ha", "above maximum"),
        ({"requirements": {"statuses": ["sold"]}}, "requirements.statuses", "never offered"),
        (
            {"requirements": {"profile": "logistic"}},
            "requirements.profile",
            "closest known: logistics",
        ),
        (
            {"preferences": {"profile": "office", "weights": {"slope": 3}}},
            "preferences.weights.slope",
            "not in profile",
        ),
        ({"deadline": "next week"}, "deadline", "not a date"),
        ({"code_nam": "x"}, "code_nam", "closest known: code_name"),
    ],
)
def test_bad_enquiries_are_refused_naming_field_and_rule(doc, field, words):
    base = {"code_name": "Falcon", "requirements": {"profile": "logistics"}}
    with pytest.raises(RequirementError) as err:
        E.validated({**base, **doc})
    assert err.value.field == field and words in str(err.value)


def test_gminy_answer_until_the_deadline_the_office_after_it(inv):
    rec = E.add(inv, ENQUIRY, "office")  # deadline 2026-12-14
    eid = rec["enquiry_id"]
    sites = inv.read_sites(read_geometry=False)
    req = parse_requirements(rec["requirements"])
    result = match(sites, req, parse_preferences(rec["preferences"], req), top=10, cap=2,
                   spread=balanced_shortlist)  # fmt: skip
    E.record_match(inv, eid, result, "office", now="2026-12-08T09:00:00Z")
    on_the_day = E.answer(inv, eid, sid(0), True, "gmina.warszawa", gminy=frozenset([A]),
                          now="2026-12-14T22:00:00Z")  # fmt: skip
    assert on_the_day["answer"] == "confirmed"
    with pytest.raises(InventoryError) as err:
        E.answer(inv, eid, sid(0), False, "gmina.warszawa", gminy=frozenset([A]),
                 now="2026-12-15T08:00:00Z")  # fmt: skip
    assert err.value.status == 409 and "2026-12-14" in str(err.value)
    late = E.answer(inv, eid, sid(0), False, "office", now="2026-12-15T09:00:00Z")
    assert late["answer"] == "withdrawn"


def test_answers_stand_over_a_new_match_and_the_gmina_feed_is_public(inv):
    eid = E.add(inv, ENQUIRY, "office")["enquiry_id"]
    req = parse_requirements(ENQUIRY["requirements"])
    prefs = parse_preferences(ENQUIRY["preferences"], req)
    sites = inv.read_sites(read_geometry=False)
    E.record_match(inv, eid, match(sites, req, prefs, top=10), "office")
    E.answer(inv, eid, sid(2), True, "gmina.warszawa", price=99.5, gminy=frozenset([A]))
    E.answer(inv, eid, sid(9), False, "gmina.marki", gminy=frozenset([B]))

    feed = E.gmina_feed(inv, frozenset([B]))
    assert [f["enquiry_id"] for f in feed] == [eid]
    assert [s["site_id"] for s in feed[0]["sites"]] == [sid(9)]
    assert feed[0]["sites"][0]["answer"] == "withdrawn"
    assert "contact" not in feed[0] and "Tajny" not in str(feed)
    assert E.gmina_feed(inv, frozenset(["1432013"])) == []
    assert {s["teryt"] for s in E.gmina_feed(inv, frozenset(["*"]))[0]["sites"]} == {A, B, C}

    # a new match (cap 2): answers of sites still shortlisted stand, the others go
    again = match(sites, req, prefs, top=10, cap=2, spread=balanced_shortlist)
    E.record_match(inv, eid, again, "office")
    rows = E.matched_sites(inv, eid, "shortlist").set_index("site_id")
    assert rows.index.tolist() == [sid(i) for i in (2, 0, 10, 9)]
    assert set(rows["match_no"]) == {2}
    assert (rows.loc[sid(2), "answer"], rows.loc[sid(2), "answer_price_pln_m2"]) == (
        "confirmed",
        99.5,
    )
    assert rows.loc[sid(9), "answer"] == "withdrawn"
    assert pd.isna(rows.loc[sid(0), "answer"])
    assert E.history(inv, eid)["kind"].tolist().count("matched") == 2


def test_the_command_line_on_postgis(postgis_url, tmp_path):
    import json
    import uuid

    from cli_run import cli

    target = f"{postgis_url}?schema=t_{uuid.uuid4().hex[:10]}"
    inv = open_inventory(target)
    inv.apply(*hand_sites())
    file = tmp_path / "falcon.json"
    file.write_text(json.dumps(ENQUIRY), encoding="utf-8")
    res = cli("enquiry", "add", str(file), "--by", "office", "--store", target)
    assert res.returncode == 0, res.stderr
    eid = res.stdout.strip()
    res = cli("enquiry", "match", eid, "--by", "office", "--cap-per-gmina", "2", "--lang", "en",
              "--store", target)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "power: 3 MW available, at least 5 MW asked — substation 2.1 km" in res.stdout
    shortlist = [s["site_id"] for s in E.get(inv, eid)["match"]["shortlist"]]
    assert shortlist == [sid(i) for i in (2, 0, 10, 9)]
    for i in (2, 0, 10, 9):
        res = cli("enquiry", "answer", eid, "--site", sid(i), "--withdraw", "--by", "gmina",
                  "--store", target)  # fmt: skip
        assert res.returncode == 0, res.stderr
    res = cli("enquiry", "offer", eid, "--by", "office", "--out", str(tmp_path), "--store", target)
    assert res.returncode == 2 and "no site of its shortlist is on offer" in res.stderr
    assert not list(tmp_path.glob("offer_*"))
    res = cli("enquiry", "match", eid, "--by", "office", "--store", target)
    assert res.returncode == 0, res.stderr  # the answers stand: every one withdrawn
    res = cli("enquiry", "answer", eid, "--site", sid(3), "--confirm", "--by", "gmina",
              "--gmina", A, "--store", target)  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = cli("enquiry", "offer", eid, "--lang", "pl", "--by", "office", "--out", str(tmp_path),
              "--store", target)  # fmt: skip
    assert res.returncode == 0, res.stderr
    html = (tmp_path / f"offer_{eid}_pl.html").read_text(encoding="utf-8")
    assert 'data-site="' + sid(3) + '"' in html and "Tajny" not in html
    assert 'data-site="' + sid(2) + '"' not in html
    assert E.get(inv, eid)["status"] == "sent"
    res = cli("enquiry", "summary", "--out", str(tmp_path), "--store", target)
    assert res.returncode == 0, res.stderr
    summary = pd.read_csv(tmp_path / "enquiry_summary.csv", dtype={"teryt": str})
    assert summary.set_index("teryt").loc[A, "offered"] == 1


def test_every_requirement_has_a_name_in_both_languages():
    from omw_sites.i18n import gettext
    from omw_sites.scoring.matching import LIMITABLE, SETS

    for key in [*LIMITABLE, *SETS.values(), "profile"]:
        pl, en = gettext("pl", f"criterion:{key}"), gettext("en", f"criterion:{key}")
        assert (
            pl != f"criterion:{key}" and en != f"criterion:{key}" and pl != en or key in ("status",)
        ), key
