"""The investor catalogue (``/catalogue``) and the i18n module it speaks through.

Browser tests drive Debian's Chromium through Playwright against ``omw-sites serve`` on
the demo store: filters set as a person sets them, the list's count checked against the
API's ``numberMatched`` and against the store read with pandas, the sites the map drew
against the sites matched, screenshots decoded, language switched, a phone viewport, the
URL restoring the state, and axe-core (from the npm registry) finding no serious or
critical accessibility violation.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from cli_run import cli, serving
from conftest import need

from omw_sites import i18n
from omw_sites.api.routes import catalogue as cat
from omw_sites.store import open_backend, read_sites

NPM_CACHE = Path(__file__).parent / ".npm-cache"  # git-ignored
TEMPLATES = Path(cat.__file__).parents[1] / "templates"


# ------------------------------------------------------------------------------ i18n


def test_language_negotiation() -> None:
    assert i18n.negotiate("en", "pl") == "en"
    assert i18n.negotiate("EN-gb") == "en"
    assert i18n.negotiate("de", "en-GB,en;q=0.9") == "en"  # unsupported ?lang falls through
    assert i18n.negotiate(None, "de-DE, en;q=0.3, pl;q=0.7") == "pl"
    assert i18n.negotiate(None, "en;q=0, de") == "pl"  # q=0 means "not this one"
    assert i18n.negotiate(None, None) == "pl"


def test_polish_numbers_have_a_decimal_comma_and_a_space_separator() -> None:
    assert i18n.format_number(12345.678, "pl") == "12\xa0345,7"
    assert i18n.format_number(12345.678, "en") == "12,345.7"
    assert i18n.format_number(2.25, "pl", 2) == "2,25"
    assert i18n.format_number(float("nan"), "pl") == ""


def _po_ids(lang: str) -> dict[str, str]:
    from babel.messages.pofile import read_po

    with i18n.catalogue_path(lang).open("rb") as fh:
        return {m.id: m.string for m in read_po(fh) if m.id}


def test_every_catalogue_text_has_a_polish_translation() -> None:
    pl, en = _po_ids("pl"), _po_ids("en")
    assert set(pl) == set(en), "both catalogues list the same message ids"
    assert not [k for k, v in pl.items() if not v], "untranslated Polish messages"
    used = set(cat.JS_MESSAGES) | {"Investment land catalogue", "excluded by the profile"}
    for path in TEMPLATES.glob("catalogue*.html"):
        found = re.findall(r"""_\(["']([^"']+)["']""", path.read_text())
        used |= {m for m in found if not m.endswith(":")}  # "kind:" ~ key: listed below
    used |= {f"sort:{k}" for k in cat.SORTS} | {f"status:{s}" for s in cat.STATUSES}
    used |= {f"network:{n}" for n in cat.NETWORKS} | {f"time:{t}" for t in cat.TIMES}
    used |= {f"ownership:{o}" for o in ("municipal", "state", "private", "other")}
    assert not sorted(used - set(pl)), "texts of the catalogue missing from the catalogues"
    # keys (kind:key) are not English: the English catalogue must spell them out
    assert not [k for k in en if re.fullmatch(r"[a-z_]+:\w+", k) and not en[k]]
    assert i18n.gettext("pl", "Site") == "Teren" and i18n.gettext("en", "Site") == "Site"


# ---------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def store(demo_store, tmp_path_factory) -> Path:
    """A copy of the demo store where, as a gmina would with the CLI, one site got a price
    and was reserved and another was sold."""
    path = tmp_path_factory.mktemp("catalogue") / "omw_sites.gpkg"
    shutil.copy(demo_store, path)
    ids = read_sites(open_backend(path)).sort_values("area_ha")["site_id"].tolist()
    edits = (
        ("edit", ids[-1], "--price", "320", "--contact", "inwestycje@example.pl"),
        ("set-status", ids[-1], "reserved"),
        ("set-status", ids[-2], "reserved"),
        ("set-status", ids[-2], "sold"),
    )
    for args in edits:
        done = cli("site", *args, "--by", "test", "--store", str(path))
        assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def server(store):
    with serving(store) as (url, _):
        yield url


@pytest.fixture(scope="module")
def sites(store):
    return read_sites(open_backend(store))


def test_bad_catalogue_state_is_a_400_problem(server) -> None:
    for query, name in (
        ("area_min=abc", "area_min"),
        ("gmina=0000000", "gmina"),
        ("profile=nope", "profile"),
        ("map=30/52/21", "map"),
        ("colour=red", "colour"),
    ):
        r = httpx.get(f"{server}/catalogue/matches?{query}", trust_env=False)
        assert r.status_code == 400, query
        assert r.headers["content-type"].startswith("application/problem+json")
        assert name in r.json()["detail"]
        assert httpx.get(f"{server}/catalogue?{query}", trust_env=False).status_code == 400


def test_landing_page_links_the_catalogue_first(server) -> None:
    html = httpx.get(f"{server}/?f=html", trust_env=False).text
    first = re.search(r'<a href="([^"]+)"', html.split("<h1>", 1)[1])
    assert first and first.group(1).endswith("/catalogue")


def test_matches_are_the_api_filter_and_a_known_answer(server, sites) -> None:
    r = httpx.get(
        f"{server}/catalogue/matches?area_min=2&util_water=300&status=available&status=reserved",
        trust_env=False,
    )
    doc = r.json()
    assert doc["filter"] == (
        "area_ha >= 2 AND status IN ('available', 'reserved') AND "
        "(water_on_site = TRUE OR dist_water_m <= 300)"
    )
    expected = sites[
        (sites["area_ha"] >= 2)
        & sites["status"].isin(["available", "reserved"])
        & (sites["water_on_site"].fillna(False).astype(bool) | (sites["dist_water_m"] <= 300))
    ]
    assert 0 < len(expected) < len(sites)
    assert sorted(doc["ids"]) == sorted(expected["site_id"])
    api = httpx.get(doc["items"], trust_env=False).json()
    assert api["numberMatched"] == len(expected)


# ------------------------------------------------------------------------ browser


def _open(browser, url: str, **context):
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    _wait_ready(page)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def _wait_ready(page, contains: str = "") -> None:
    page.wait_for_function(
        "s => window.catalogue && window.catalogue.ready && window.catalogue.filter.includes(s)",
        arg=contains,
        timeout=30000,
    )


def _drawn_ids(page) -> list[str]:
    """Fit the map to the whole region, wait until drawn, return the site ids drawn."""
    return page.evaluate(
        """async () => {
            const c = window.catalogue, m = c.map;
            m.fitBounds(c.config.bounds, {padding: 20, animate: false});
            await new Promise((r) => { m.once('idle', r); m.triggerRepaint(); });
            return c.drawnIds();
        }"""
    )


def _colour_pixels(png: bytes, colours: list[str], tol: int = 8) -> dict[str, int]:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    out = {}
    for hexcol in colours:
        rgb = np.array([int(hexcol[i : i + 2], 16) for i in (1, 3, 5)])
        out[hexcol] = int((np.abs(img - rgb).max(axis=2) <= tol).sum())
    return out


def test_filters_list_and_map_show_the_same_sites(server, sites, browser) -> None:
    page = _open(browser, f"{server}/catalogue?lang=en")
    everything = page.evaluate("window.catalogue.matched")
    assert everything == int((sites["status"] == "available").sum())  # available by default
    page.fill("#f-area-min", "2")
    _wait_ready(page, "area_ha >= 2")
    page.click("text=Utilities")
    page.select_option("#f-util-water", "300")
    _wait_ready(page, "dist_water_m <= 300")
    state = page.evaluate("({f: window.catalogue.filter, n: window.catalogue.matched})")
    shown = int(page.get_attribute("#count", "data-count"))
    api = httpx.get(
        f"{server}/collections/sites/items",
        params={"filter": state["f"], "limit": 1000, "properties": "site_id"},
        trust_env=False,
    ).json()
    assert shown == state["n"] == api["numberMatched"]
    expected = sites[
        (sites["area_ha"] >= 2)
        & (sites["status"] == "available")
        & (sites["water_on_site"].fillna(False).astype(bool) | (sites["dist_water_m"] <= 300))
    ]
    assert shown == len(expected) and 0 < shown < everything
    assert page.locator("#count").inner_text() == f"Sites found: {shown}"
    api_ids = sorted(f["properties"]["site_id"] for f in api["features"])
    assert api_ids == sorted(expected["site_id"])
    assert _drawn_ids(page) == api_ids  # the map drew exactly the listed sites
    # the list is the first page of the profile's order
    profile = page.input_value("#f-profile")
    first = httpx.get(
        f"{server}/collections/sites/items",
        params={"filter": state["f"], "profile": profile, "limit": cat.PAGE_SIZE},
        trust_env=False,
    ).json()
    rows = page.eval_on_selector_all("#list tbody tr", "rs => rs.map(r => r.dataset.siteId)")
    assert rows == [f["properties"]["site_id"] for f in first["features"]]
    name = page.locator("#list tbody tr td.name").first.inner_text()
    assert not re.search(r"S[0-9a-f]{10}", name) and " ha" in name  # readable, not the hash
    assert not page.errors  # type: ignore[attr-defined]


def test_offer_and_status_edits_show_in_the_list(server, sites, browser) -> None:
    largest = sites.sort_values("area_ha")["site_id"].tolist()
    reserved, sold = largest[-1], largest[-2]
    page = _open(browser, f"{server}/catalogue?lang=pl&sort=area_desc")
    listed = page.eval_on_selector_all("#list tbody tr", "rs => rs.map(r => r.dataset.siteId)")
    assert reserved not in listed and sold not in listed  # only available sites by default
    page.check("input[name=status][value=reserved]")
    _wait_ready(page, "'reserved'")
    row = page.locator(f'#list tbody tr[data-site-id="{reserved}"]')
    cells = row.locator("td").all_inner_texts()
    assert "320 zł/m²" in cells and "zarezerwowany" in cells
    assert sold not in page.evaluate("window.catalogue.ids")
    page.check("input[name=status][value=sold]")
    _wait_ready(page, "'sold'")
    assert sold in page.evaluate("window.catalogue.ids")
    link = row.locator("a").get_attribute("href")
    assert httpx.get(link, trust_env=False).status_code == 200  # the row's site page


def test_map_screenshot_has_the_score_colours(server, browser) -> None:
    page = _open(browser, f"{server}/catalogue?lang=en", viewport={"width": 1400, "height": 900})
    _drawn_ids(page)
    png = page.locator("#map").screenshot()
    counts = _colour_pixels(png, [*cat.SCORE_COLOURS, cat.EXCLUDED_COLOUR])
    scored = sum(counts[c] for c in cat.SCORE_COLOURS)
    assert scored >= 20, counts  # sites drawn in their score classes
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # not blank: basemap and sites
    basemap = _colour_pixels(png, ["#ecebe4", "#b35806"], tol=6)
    assert basemap["#ecebe4"] > img.shape[0] * img.shape[1] * 0.2  # gminy drawn
    assert basemap["#b35806"] > 100  # main roads drawn
    assert page.locator(".gmina-label").count() > 5  # gmina names


def test_language_switch_and_polish_numbers(server, browser) -> None:
    page = _open(browser, f"{server}/catalogue?lang=en&area_min=2")
    assert page.locator("h1").inner_text() == "Investment land catalogue"
    area = page.locator("#list tbody tr td:nth-child(5)").first.inner_text()
    assert re.fullmatch(r"\d+\.\d\d", area)
    page.click("header a.lang")
    _wait_ready(page, "area_ha >= 2")
    assert page.locator("html").get_attribute("lang") == "pl"
    assert page.locator("h1").inner_text() == "Katalog terenów inwestycyjnych"
    assert page.locator("#list th").nth(2).inner_text() == "Teren"
    area_pl = page.locator("#list tbody tr td:nth-child(5)").first.inner_text()
    assert area_pl == area.replace(".", ",")
    assert page.locator("#count").inner_text().startswith("Znalezione tereny:")
    assert "area_min=2" in page.url  # the state survives the switch
    # Accept-Language chooses when ?lang= is absent
    r = httpx.get(f"{server}/catalogue", headers={"Accept-Language": "en-US"}, trust_env=False)
    assert '<html lang="en">' in r.text


def test_phone_viewport_shows_map_and_list(server, browser) -> None:
    page = _open(
        browser,
        f"{server}/catalogue?lang=pl",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    vw, vh = 390, 844
    box = page.locator("#map").bounding_box()
    assert box and box["width"] >= vw - 2 and 240 <= box["height"] < vh * 0.6
    row = page.locator("#list tbody tr").first.bounding_box()
    assert row and row["y"] + row["height"] <= vh  # the first site is on the first screen
    assert page.evaluate("document.documentElement.scrollWidth") <= vw  # no sideways page
    # usable: the filters are reachable and work with a tap
    page.locator("#f-area-min").scroll_into_view_if_needed()
    page.locator("#f-area-min").tap()
    page.keyboard.type("5")
    _wait_ready(page, "area_ha >= 5")
    png = page.screenshot()
    from PIL import Image

    img = Image.open(io.BytesIO(png))
    assert img.size == (vw * 2, vh * 2)


def test_the_url_restores_the_state(server, browser) -> None:
    page = _open(browser, f"{server}/catalogue?lang=en")
    page.fill("#f-area-max", "4")
    _wait_ready(page, "area_ha <= 4")
    page.select_option("#f-profile", index=1)
    page.check("input[name=status][value=reserved]")
    _wait_ready(page, "'reserved'")
    page.evaluate("window.catalogue.map.jumpTo({center: [20.95, 52.2], zoom: 10.5})")
    page.wait_for_function("location.search.includes('map=10.50')")
    url = page.url
    state = page.evaluate("({f: window.catalogue.filter, n: window.catalogue.matched})")
    again = _open(browser, url)
    assert again.evaluate("window.catalogue.filter") == state["f"]
    assert int(again.get_attribute("#count", "data-count")) == state["n"]
    assert again.input_value("#f-profile") == page.input_value("#f-profile")
    assert again.input_value("#f-area-max") == "4"
    assert again.is_checked("input[name=status][value=reserved]")
    assert again.evaluate("window.catalogue.map.getZoom()") == pytest.approx(10.5)
    centre = again.evaluate("window.catalogue.map.getCenter().toArray()")
    assert centre == pytest.approx([20.95, 52.2], abs=1e-4)


def _axe_source() -> str:
    """axe-core's script, from the npm registry (``npm pack``) into a git-ignored cache."""
    found = sorted(NPM_CACHE.glob("axe-core-*.tgz"))
    if not found:
        need(shutil.which("npm") is not None, "npm not installed (apt-get install npm)")
        NPM_CACHE.mkdir(exist_ok=True)
        done = subprocess.run(
            ["npm", "pack", "axe-core@4", "--silent"],
            cwd=NPM_CACHE,
            capture_output=True,
            text=True,
            timeout=180,
        )
        found = sorted(NPM_CACHE.glob("axe-core-*.tgz"))
        need(bool(found), f"npm pack axe-core failed: {done.stderr[-500:]}")
    with tarfile.open(found[-1]) as tar:
        member = tar.extractfile("package/axe.min.js")
        assert member is not None
        return member.read().decode()


@pytest.mark.parametrize("viewport", [(1400, 900), (390, 844)])
def test_no_serious_accessibility_violations(server, browser, viewport) -> None:
    source = _axe_source()
    for lang in ("pl", "en"):
        page = _open(
            browser,
            f"{server}/catalogue?lang={lang}",
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        page.add_script_tag(content=source)
        result = page.evaluate("axe.run(document)")
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, bad


def test_rows_ticked_in_the_list_are_compared(server, browser) -> None:
    """The list's tick boxes fill the shortlist the site pages use; the compare link
    counts them and opens the comparison of exactly those sites."""
    page = _open(browser, f"{server}/catalogue?lang=en", viewport={"width": 1400, "height": 900})
    rows = page.locator("#list tbody tr")
    ids = [rows.nth(i).get_attribute("data-site-id") for i in range(2)]
    for i in range(2):
        rows.nth(i).locator("input[data-shortlist-id]").check()
    assert page.locator(".shortlist-count").inner_text() == "2"
    page.click("a[data-compare-base]")
    page.wait_for_load_state()
    assert "/catalogue/compare" in page.url
    for sid in ids:
        assert sid in page.url and sid in page.content()
    # back in the list, the chosen rows are ticked
    page.goto(f"{server}/catalogue?lang=en")
    _wait_ready(page)
    boxes = page.locator("#list tbody input[data-shortlist-id]:checked")
    assert sorted(
        boxes.nth(i).get_attribute("data-shortlist-id") for i in range(boxes.count())
    ) == sorted(ids)
