"""The investor's enquiry form (``/catalogue/enquiry``) in a browser: Debian's Chromium
driven by Playwright against ``omw-sites serve`` on the demo store, in Polish and
English. A good enquiry is recorded (status new, by "catalogue form") and the page
shows only its number; refused input is named next to its field; the honeypot records
nothing; the sixth enquiry within the hour from one address gets the 429 page. The
investor's contact is never in a response. Screenshots are decoded and checked not
blank."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from cli_run import serving

from omw_sites.api.routes.enquiry_form import RateLimit
from omw_sites.store import enquiries as E
from omw_sites.store import open_inventory, read_sites

MAIL_PL = "jan.kowalski@przyklad-inwestor.example"
MAIL_EN = "j.smith@example-investor.example"
PHONE = "+48 22 555 12 34"


@pytest.fixture(scope="module")
def store(demo_store, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("enquiry_form") / "omw_sites.gpkg"
    shutil.copy(demo_store, path)
    return path


@pytest.fixture(scope="module")
def server(store):
    env = {"OMW_ENQUIRY_FORM_LIMIT": ""}  # the default: 5 an hour per address
    with serving(store, env=env) as (url, _):
        yield url


def _not_blank(png: bytes) -> None:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape[0] > 300 and img.shape[1] > 300
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # text and borders, not blank
    assert (img.min(axis=2) < 100).mean() > 0.002  # dark text drawn


def _enquiries(store: Path) -> list[dict]:
    return E.records(open_inventory(store))


def _fill_good(page, mail: str, sector: str = "logistics") -> None:
    page.select_option("#f-sector", sector)
    page.fill("#f-company", "Projekt Żuraw")
    page.fill("#f-area-min", "2")
    page.fill("#f-area-max", "40")
    page.fill("#f-max-junction", "15")
    page.fill("#f-power", "5")
    page.fill("#f-email", mail)
    page.fill("#f-phone", PHONE)
    page.fill("#f-message", "Szukamy terenu pod magazyn, start budowy w 2027.")
    page.check("#f-consent")


def test_rate_limit_window() -> None:
    limit = RateLimit(2, 60)
    limit.hit("a", now=0)
    assert limit.wait("a", now=1) == 0
    limit.hit("a", now=1)
    assert limit.wait("a", now=2) == 58 and limit.wait("b", now=2) == 0
    assert limit.wait("a", now=60.5) == 0  # the first one left the window


def test_the_form_in_both_languages(server, store, browser) -> None:
    sites = read_sites(open_inventory(store).backend)
    ids = sites.sort_values("site_id")["site_id"].tolist()[:2]
    before = len(_enquiries(store))

    # Polish: reached from the comparison, the shortlisted sites prefilled
    page = browser.new_context(locale="pl-PL").new_page()
    page.goto(f"{server}/catalogue/compare?ids={','.join(ids)}&lang=pl")
    page.click("a.enquiry-link")
    assert page.locator("html").get_attribute("lang") == "pl"
    assert page.locator("h1").inner_text() == "Wyślij zapytanie ofertowe"
    assert page.input_value("#f-sites") == ", ".join(ids)
    _fill_good(page, MAIL_PL)
    page.click("button[type=submit]")
    page.wait_for_selector("#enquiry-number")
    number = page.locator("#enquiry-number").inner_text()
    assert "Dziękujemy" in page.content() and "/catalogue/enquiry/sent" in page.url
    for secret in (MAIL_PL, PHONE, "Żuraw", "magazyn"):
        assert secret not in page.content()
    _not_blank(page.screenshot(full_page=True))
    recs = _enquiries(store)
    assert len(recs) == before + 1
    rec = next(r for r in recs if r["enquiry_id"] == number)
    assert rec["status"] == "new" and rec["created_by"] == "catalogue form"
    assert rec["sector"] == "logistics" and rec["preferences"] == {"profile": "logistics"}
    assert rec["requirements"]["limits"] == {
        "area_ha": {"min": 2.0, "max": 40.0},
        "time_junction_min": {"max": 15.0},
        "power_capacity_mw": {"min": 5.0},
    }
    for secret in (MAIL_PL, PHONE, "Projekt Żuraw", *ids, "language: pl"):
        assert secret in rec["contact"]  # all the investor wrote, kept confidential
    assert MAIL_PL not in rec["code_name"]

    # English, with no script at all: refused input is named next to its field
    ctx = browser.new_context(locale="en-GB", java_script_enabled=False)
    page = ctx.new_page()
    page.goto(f"{server}/catalogue?lang=en")
    assert page.locator("a", has_text="Send an enquiry").count() == 1
    page.goto(f"{server}/catalogue/enquiry")  # language from Accept-Language
    assert page.locator("h1").inner_text() == "Send an enquiry"
    _fill_good(page, MAIL_EN)
    page.fill("#f-email", "")
    page.fill("#f-phone", "")
    page.fill("#f-area-min", "50")  # above the largest area
    with page.expect_response(lambda r: r.request.method == "POST") as sent:
        page.click("button[type=submit]")
    assert sent.value.status == 422
    assert page.locator("#e-email").inner_text() == "Give an e-mail address or a phone number."
    assert page.locator("#e-area_max").inner_text() == "The largest area is below the smallest."
    assert page.get_attribute("#f-area-max", "aria-describedby") == "e-area_max"
    assert page.locator(".error").count() == 2
    assert page.input_value("#f-area-min") == "50"  # the rest is kept …
    assert page.input_value("#f-message") == ""  # … but not what says who the investor is
    assert "Projekt" not in page.content()
    _not_blank(page.screenshot(full_page=True))
    page.fill("#f-email", "not-an-address")
    page.fill("#f-area-min", "5")
    page.fill("#f-deadline", "2001-01-01")
    page.click("button[type=submit]")
    assert page.locator("#e-email").inner_text().startswith("This is not an e-mail address")
    assert page.locator("#e-deadline").inner_text().startswith("The deadline has passed")
    assert len(_enquiries(store)) == before + 1  # nothing recorded
    page.fill("#f-email", MAIL_EN)
    page.fill("#f-deadline", "")
    page.fill("#f-company", "")
    page.fill("#f-message", "")
    page.check("#f-consent")
    page.click("button[type=submit]")
    assert page.locator("#enquiry-number").count() == 1
    assert MAIL_EN not in page.content() and "received" in page.content()
    assert len(_enquiries(store)) == before + 2

    # Polish words for the same refusal
    page = browser.new_context().new_page()
    page.goto(f"{server}/catalogue/enquiry?lang=pl")
    page.fill("#f-area-min", "9")
    page.fill("#f-area-max", "3")
    page.click("button[type=submit]")
    assert page.locator("#e-email").inner_text() == "Podaj adres e-mail lub numer telefonu."
    assert page.locator("#e-consent").inner_text().startswith("Bez Twojej zgody")
    assert page.locator("#e-area_max").inner_text().startswith("Największa powierzchnia")

    # a robot fills the field people do not see: it looks sent, nothing is recorded
    page.goto(f"{server}/catalogue/enquiry?lang=pl")
    _fill_good(page, "bot@spam.example")
    page.evaluate("document.getElementById('f-website').value = 'http://spam.example'")
    page.click("button[type=submit]")
    assert "Dziękujemy" in page.content() and page.locator("#enquiry-number").count() == 0
    assert len(_enquiries(store)) == before + 2
    assert "bot@spam.example" not in str(_enquiries(store))

    # counted so far: two enquiries and the honeypot; two more, and the sixth is refused
    good = {"lang": "en", "sector": "logistics", "email": "x@example.com", "consent": "1"}
    for _ in range(2):
        res = httpx.post(f"{server}/catalogue/enquiry", data=good, trust_env=False)
        assert res.status_code == 303 and "number=E" in res.headers["location"]
    page.goto(f"{server}/catalogue/enquiry?lang=en")
    _fill_good(page, MAIL_EN)
    page.click("button[type=submit]")
    assert page.locator("#too-many").count() == 1
    assert "Too many enquiries" in page.locator("h1").inner_text()
    _not_blank(page.screenshot(full_page=True))
    res = httpx.post(f"{server}/catalogue/enquiry", data={**good, "lang": "pl"}, trust_env=False)
    assert res.status_code == 429
    assert 3000 < int(res.headers["retry-after"]) <= 3600
    assert "Spróbuj ponownie za" in res.text
    assert len(_enquiries(store)) == before + 4


def test_form_bodies_are_bounded_and_typed(server) -> None:
    res = httpx.post(
        f"{server}/catalogue/enquiry", json={"email": "a@b.pl"}, trust_env=False, timeout=30
    )
    assert res.status_code == 415
    assert res.headers["content-type"].startswith("application/problem+json")
    res = httpx.post(
        f"{server}/catalogue/enquiry",
        content=b"message=" + b"x" * 20000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        trust_env=False,
    )
    assert res.status_code == 413
    assert httpx.get(f"{server}/catalogue/enquiry?lang=en", trust_env=False).status_code == 200


def test_no_serious_accessibility_violations(store, browser) -> None:
    from test_catalogue import _axe_source

    source = _axe_source()
    # its own server: the module's has used up its address's enquiries for the hour
    with serving(store, env={"OMW_ENQUIRY_FORM_LIMIT": "100/3600"}) as (server, _):
        for lang in ("pl", "en"):
            _axe_form(browser, source, f"{server}/catalogue/enquiry?lang={lang}")


def _axe_form(browser, source: str, url: str) -> None:
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(url)
    page.fill("#f-area-min", "9")
    page.fill("#f-area-max", "3")
    page.click("button[type=submit]")  # the page with its errors shown
    assert page.locator(".error").count() >= 2
    page.add_script_tag(content=source)
    result = page.evaluate("axe.run(document)")
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, bad
