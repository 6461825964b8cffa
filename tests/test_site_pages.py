"""The catalogue's site page, its PDF sheet, the shortlist and the comparison, driven in a
real browser (Playwright for Python on Debian's Chromium) against ``omw-sites serve`` over
a store made by the real pipeline; offers and statuses are changed through the CLI, as a
gmina officer would. Screenshots and PDFs are decoded and checked, not only the DOM."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cli_run import cli, serving

from omw_sites.store import read_layer, read_sites

SITE_RED = (193, 18, 31)  # the site's outline on the map (static/site/site.css)
PRICE, CONTACT = "320", "Biuro Obsługi Inwestora, tel. +48 22 123 45 67"
PUBLIC_DOC = ("Miejscowy plan – uchwała", "https://bip.example.pl/mpzp-uchwala.pdf")
INTERNAL_DOC = ("Wycena rzeczoznawcy", "https://intranet.example.pl/wycena.pdf")


@pytest.fixture(scope="module")
def store(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the pipeline's store: these tests change offers and statuses."""
    path = tmp_path_factory.mktemp("site_pages") / "omw_sites.gpkg"
    shutil.copy(demo_store, path)
    return path


@pytest.fixture(scope="module")
def sites(store: Path) -> Any:
    cols = ["site_id", "gmina", "teryt", "parcel_ids", "area_ha", "zoning_class"]
    cols += ["zoning_symbol", "rank_logistics", "status"]
    return read_sites(store, columns=cols, read_geometry=False)


@pytest.fixture(scope="module")
def url(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("site_pages_log") / "serve.log"
    with serving(store, log=log) as (base, _proc):
        yield base


def _best(sites: Any, n: int = 1) -> list[dict[str, Any]]:
    ranked = sites[sites["rank_logistics"] > 0].sort_values("rank_logistics")
    return ranked.head(n).to_dict("records")


def _expected_title(site: dict[str, Any], lang: str) -> tuple[str, str, str]:
    """(place, hectares, designation) as the title must write them."""
    precinct = site["parcel_ids"].split(",")[0].split(".")[1]
    area = f"{site['area_ha']:.2f}"
    area = area.replace(".", ",") if lang == "pl" else area
    return f"{site['gmina']}, {'obręb' if lang == 'pl' else 'precinct'}", precinct, area


def _image(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _near(img: np.ndarray, rgb: tuple[int, int, int], tol: int = 30) -> int:
    return int((np.abs(img - np.array(rgb)).sum(axis=2) < tol).sum())


def _pdf_text(body: bytes) -> tuple[int, str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(body)
    text = "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    return len(doc), text


# --------------------------------------------------------------------------------------


def test_site_page_in_both_languages_with_the_offer_and_status(
    url: str, store: Path, sites: Any, browser: Any
) -> None:
    site = _best(sites)[0]
    sid = site["site_id"]
    airports = read_layer(store, "airports")["name"].tolist()
    assert airports
    edit = ["site", "edit", sid, "--by", "test", "--price", PRICE, "--contact", CONTACT]
    edit += ["--document", f"{PUBLIC_DOC[0]}={PUBLIC_DOC[1]}"]
    edit += ["--document", f"internal:{INTERNAL_DOC[0]}={INTERNAL_DOC[1]}"]
    edit += ["--sez", "Polska Strefa Inwestycji", "--store", str(store)]
    done = cli(*edit)
    assert done.returncode == 0, done.stderr
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    for lang, price, status in (("pl", "320,00", "dostępny"), ("en", "320.00", "available")):
        page.goto(f"{url}/catalogue/sites/{sid}?lang={lang}")
        h1 = page.locator("h1").inner_text()
        place, precinct, area = _expected_title(site, lang)
        assert place in h1 and precinct in h1 and f"{area}\u00a0ha" in h1, h1
        assert site["zoning_class"] in h1 and sid not in h1  # readable, not the hash
        assert page.locator("html").get_attribute("lang") == lang
        offer = page.locator("#h-offer + table").inner_text()
        assert f"{price}\u00a0PLN/m²" in offer and CONTACT in offer
        assert "Polska Strefa Inwestycji" in offer
        links = page.locator("#h-offer + table a")
        assert links.count() == 1 and links.first.get_attribute("href") == PUBLIC_DOC[1]
        assert INTERNAL_DOC[0] not in page.content()  # internal documents never shown
        assert page.locator(".subtitle .badge").inner_text() == status
        # the access table names the nearest airport from the store's airports layer
        access = page.locator("#h-access ~ .scroll table").first.inner_text()
        assert any(name in access for name in airports), access
    # the Polish page says its drivers in Polish (decimal commas), the English in English
    page.goto(f"{url}/catalogue/sites/{sid}?lang=pl")
    drivers = page.locator("details.profile ul.drivers").first.inner_text()
    assert "," in drivers and "(+0." not in drivers
    # the map: the site's red outline drawn, read back from the screenshot
    shot = _image(page.locator("svg.site-map").screenshot())
    assert _near(shot, SITE_RED) > 200
    badge = _image(page.locator(".subtitle .badge").screenshot()).reshape(-1, 3).mean(axis=0)
    assert badge[1] > badge[0]  # available: green
    # reserved, then sold, through the CLI: the page shows it, the rankings drop it
    for move in ("reserved", "sold"):
        done = cli("site", "set-status", sid, move, "--by", "test", "--store", str(store))
        assert done.returncode == 0, done.stderr
    page.goto(f"{url}/catalogue/sites/{sid}?lang=pl")
    assert page.locator(".subtitle .badge").inner_text() == "sprzedany"
    assert page.locator(".notice.ended-offer").count() == 1
    ranks = page.locator("table.scores tbody").inner_text()
    assert ranks.count("poza rankingiem") == len(page.locator("table.scores tbody tr").all())
    badge = _image(page.locator(".subtitle .badge").screenshot()).reshape(-1, 3).mean(axis=0)
    assert badge[0] > badge[1] + 60  # sold: red
    page.close()


def test_site_pdf_sheet(url: str, sites: Any) -> None:
    site = _best(sites, 3)[2]
    sid = site["site_id"]
    for lang, word in (("pl", "Karta"), ("en", "sheet")):
        r = httpx.get(f"{url}/catalogue/sites/{sid}/sheet.pdf?lang={lang}", timeout=120)
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        pages, text = _pdf_text(r.content)
        assert 1 <= pages <= 6
        assert site["gmina"] in text and sid in text and word in text
    r = httpx.get(f"{url}/catalogue/sites/S0000000000/sheet.pdf", timeout=30)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_unknown_site_and_bad_requests(url: str, sites: Any) -> None:
    r = httpx.get(f"{url}/catalogue/sites/S0000000000", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert "S0000000000" in r.json()["detail"]
    sid = sites["site_id"].iloc[0]
    r = httpx.get(f"{url}/catalogue/sites/{sid}?lang=de")
    assert r.status_code == 400 and "lang" in r.json()["detail"]
    eleven = ",".join(sites["site_id"].iloc[:11])
    r = httpx.get(f"{url}/catalogue/compare?ids={eleven}")
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert "at most 10" in r.json()["detail"]
    r = httpx.get(f"{url}/catalogue/compare?ids={sid},S0000000000&f=csv")
    assert r.status_code == 404 and "S0000000000" in r.json()["detail"]


def _csv(body: bytes, lang: str) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Polish letters
    text = body[3:].decode("utf-8")
    return list(csv.reader(io.StringIO(text), delimiter=";" if lang == "pl" else ","))


def test_shortlist_compare_csv_and_pdf(url: str, sites: Any, browser: Any) -> None:
    chosen = _best(sites, 6)[3:6]
    ids = [s["site_id"] for s in chosen]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    for sid in ids:  # tick each on its page
        page.goto(f"{url}/catalogue/sites/{sid}?lang=en")
        page.locator("input[data-shortlist-id]").check()
    assert page.locator(".shortlist-count").inner_text() == "3"
    page.locator("a.shortlist-link").click()
    page.wait_for_selector("table.compare")
    heads = page.locator("th.site-col").all()
    assert [h.get_attribute("data-site-id") for h in heads] == ids
    rows = {
        r.locator("th").inner_text(): [c.inner_text() for c in r.locator("td").all()]
        for r in page.locator("table.compare tbody tr").all()
    }
    assert rows["Area"] == [f"{s['area_ha']:.2f}\u00a0ha" for s in chosen]
    assert rows["Gmina"] == [f"{s['gmina']} ({s['teryt']})" for s in chosen]
    table = _image(page.locator("table.compare").screenshot())
    assert table.shape[1] > 600 and (table.sum(axis=2) < 200).sum() > 2000  # text drawn
    # removing a site from the comparison takes it off the shortlist and the URL
    page.locator(f"button[data-remove-id='{ids[0]}']").click()
    page.wait_for_function("document.querySelectorAll('th.site-col').length === 2")
    assert ids[0] not in page.url
    assert page.evaluate("window.omwShortlist.read()") == ids[1:]
    # a full shortlist refuses the eleventh site, saying why
    page.evaluate(
        "ids => localStorage.setItem('omw-sites.shortlist', JSON.stringify(ids))",
        list(sites["site_id"].iloc[:10]),
    )
    page.goto(f"{url}/catalogue/sites/{ids[0]}?lang=en")
    page.locator("input[data-shortlist-id]").click()
    assert not page.locator("input[data-shortlist-id]").is_checked()
    assert "at most 10" in page.locator(".shortlist-message").inner_text()
    page.close()
    joined = ",".join(ids)
    for lang, area in (("pl", "{:.2f}"), ("en", "{:.2f}")):
        r = httpx.get(f"{url}/catalogue/compare?ids={joined}&lang={lang}&f=csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        table_rows = _csv(r.content, lang)
        assert table_rows[0][1:] == ids
        by_label = {row[0]: row[1:] for row in table_rows}
        want = [area.format(s["area_ha"]) for s in chosen]
        if lang == "pl":
            want = [a.replace(".", ",") for a in want]
        label = "Powierzchnia [ha]" if lang == "pl" else "Area [ha]"
        assert by_label[label] == want
        assert any(k.endswith("[min]") for k in by_label)
    r = httpx.get(f"{url}/catalogue/compare?ids={joined}&lang=pl&f=pdf", timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    pages, text = _pdf_text(r.content)
    assert 1 <= pages <= 4 and all(sid in text for sid in ids)
    assert "Porównanie terenów" in text and "Powierzchnia" in text


def test_phone_sized_site_page_and_comparison(url: str, sites: Any, browser: Any) -> None:
    site = _best(sites, 2)[1]
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = ctx.new_page()
    page.goto(f"{url}/catalogue/sites/{site['site_id']}?lang=pl")
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone: tables scroll inside their box
    box = page.locator("svg.site-map").bounding_box()
    assert box is not None and box["width"] <= 390
    shot = _image(page.screenshot(full_page=True))
    assert shot.shape[1] == 780  # 390 css px at 2x
    assert _near(shot, SITE_RED) > 200  # the map drawn on the phone too
    ids = ",".join(s["site_id"] for s in _best(sites, 3))
    page.goto(f"{url}/catalogue/compare?ids={ids}&lang=pl")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    assert page.locator("th.site-col").count() == 3
    ctx.close()


@pytest.mark.parametrize("viewport", [(1280, 900), (390, 844)])
def test_no_serious_accessibility_violations(
    url: str, sites: Any, browser: Any, viewport: tuple[int, int]
) -> None:
    from test_catalogue import _axe_source  # axe-core from the npm registry, cached

    source = _axe_source()
    sid = sites["site_id"].iloc[0]
    ids = ",".join(sites["site_id"].iloc[:3])
    paths = [f"/catalogue/sites/{sid}?lang=pl", f"/catalogue/sites/{sid}?lang=en"]
    paths += [f"/catalogue/compare?ids={ids}&lang=pl", "/catalogue/compare?lang=en"]
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    for path in paths:
        page.goto(url + path)
        page.add_script_tag(content=source)
        result = page.evaluate("axe.run(document)")
        bad = [
            (path, v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, bad
    page.close()


def test_an_ended_site_points_to_its_successors(tmp_path: Path) -> None:
    """A site split or merged away answers with the sites made from it (the store's
    ``derived_from``), as a page; an ID never seen is a 404 problem."""
    from fastapi.testclient import TestClient
    from sample_store import sample_data

    from omw_sites.api.server import create_app
    from omw_sites.store import open_inventory

    data, refs, info = sample_data(20, seed=3)
    data.loc[4, "derived_from"] = "S00000fffff,S00000eeeee"  # merged from two ended sites
    path = tmp_path / "omw.gpkg"
    open_inventory(path).apply(data, refs, info)
    client = TestClient(create_app(path))
    r = client.get("/catalogue/sites/S00000eeeee?lang=en")
    assert r.status_code == 410 and r.headers["content-type"].startswith("text/html")
    assert f'href="http://testserver/catalogue/sites/{data.loc[4, "site_id"]}?lang=en"' in r.text
    r = client.get("/catalogue/sites/S00000ddddd?lang=en")
    assert r.status_code == 404 and r.json()["detail"] == "no site 'S00000ddddd' in the inventory"
    r = client.get("/catalogue/sites/S00000e?lang=en")  # a part of an ID is no ID
    assert r.status_code == 404
