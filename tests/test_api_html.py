"""``f=html``: collections, collection, item pages and single features as plain HTML pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sample_store import make_sample_store
from test_api import EPSG2180, assert_problem, strict_json
from test_api_crs import EPSG2178, EPSG4326, append_site

N_SITES = 120
NASTY_ID = "SHTML000001"
NASTY_GMINA = '<script>alert("x")</script> & Ząbki'
ITEMS = "/collections/sites/items"


class Page(HTMLParser):
    """Anchors (href, rel, text), table cells and headings of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str]] = []
        self.cells: list[str] = []
        self.rows = 0
        self._anchor: dict[str, str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._anchor = {k: v or "" for k, v in attrs} | {"text": ""}
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "tr":
            self.rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._anchor is not None:
            self.links.append(self._anchor)
            self._anchor = None
        elif tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._anchor["text"] += data
        if self._cell is not None:
            self._cell.append(data)

    def rel(self, rel: str) -> str:
        found = [a["href"] for a in self.links if a.get("rel") == rel]
        assert len(found) >= 1, f"no link rel={rel}"
        return found[0]

    def typed(self, media: str) -> str:
        found = [a["href"] for a in self.links if a.get("type") == media]
        assert found, f"no link of type {media}"
        return found[0]


def query(href: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(href).query).items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_sample_store(tmp_path_factory.mktemp("api_html") / "omw.gpkg", n=N_SITES, seed=9)
    append_site(path, NASTY_ID, gmina=NASTY_GMINA)
    return path


def get_html(client: httpx.Client, url: str, **params: str) -> Page:
    r = client.get(url, params=params or None)  # {} would drop the query of a link
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.text.lstrip().lower().startswith("<!doctype html>")
    return Page(r.text)


def test_collections_page(client: httpx.Client, base_url: str) -> None:
    page = get_html(client, "/collections", f="html")
    hrefs = [a["href"] for a in page.links]
    assert f"{base_url}/collections/sites?f=html" in hrefs
    assert f"{base_url}/collections/rail/items?f=html" in hrefs
    assert f"{base_url}/collections/sites/items?f=json" in hrefs  # GeoJSON
    assert "sites" in page.cells and f"{N_SITES + 1:,}" in page.cells  # id and count
    # the JSON of the same resource, which itself links back to the HTML
    doc = strict_json(client.get(page.typed("application/json")))
    assert {c["id"] for c in doc["collections"]} >= {"sites", "rail"}
    alternate = [ln for ln in doc["links"] if ln["rel"] == "alternate"]
    assert alternate and alternate[0]["type"] == "text/html"


def test_collection_page(client: httpx.Client, base_url: str) -> None:
    page = get_html(client, "/collections/sites", f="html")
    text = " ".join(page.cells)
    for crs in (EPSG2180, EPSG2178, EPSG4326):
        assert crs in text
    assert "area_ha" in page.cells and "ha" in page.cells  # a property with its unit
    hrefs = [a["href"] for a in page.links]
    assert f"{base_url}/collections/sites/items?f=html" in hrefs
    assert f"{base_url}/collections/sites/queryables?f=json" in hrefs
    r = client.get(page.typed("application/json"))
    assert r.headers["content-type"].startswith("application/json")
    assert strict_json(r)["id"] == "sites"


def test_items_page_pages_like_the_json(client: httpx.Client) -> None:
    page = get_html(client, ITEMS, f="html", limit="7", offset="14", sortby="-area_ha")
    json_doc = strict_json(
        client.get(ITEMS, params={"limit": 7, "offset": 14, "sortby": "-area_ha"})
    )
    ids = [a["text"] for a in page.links if "/items/" in a["href"]]
    assert ids == [f["id"] for f in json_doc["features"]]
    assert page.rows == 1 + 7  # header + one row per feature
    for rel, offset in (("next", "21"), ("prev", "7")):
        href = page.rel(rel)
        q = query(href)
        assert q["f"] == "html" and q["offset"] == offset and q["limit"] == "7"
        assert q["sortby"] == "-area_ha"  # the query is kept
        following = get_html(client, href)
        assert len([a for a in following.links if "/items/" in a["href"]]) == 7
    geojson = page.typed("application/geo+json")
    r = client.get(geojson)
    assert r.headers["content-type"].startswith("application/geo+json")
    assert [f["id"] for f in strict_json(r)["features"]] == ids


def test_items_page_first_and_last(client: httpx.Client) -> None:
    first = get_html(client, ITEMS, f="html", limit="50")
    assert not [a for a in first.links if a.get("rel") == "prev"]
    last = get_html(client, ITEMS, f="html", limit="50", offset="100")
    assert not [a for a in last.links if a.get("rel") == "next"]
    assert len([a for a in last.links if "/items/" in a["href"]]) == N_SITES + 1 - 100


def test_values_are_escaped(client: httpx.Client) -> None:
    for url, params in (
        (ITEMS, {"f": "html", "site_id": NASTY_ID}),
        (f"{ITEMS}/{NASTY_ID}", {"f": "html"}),
    ):
        r = client.get(url, params=params)
        assert r.status_code == 200
        assert "<script>" not in r.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Ząbki" in r.text
        assert NASTY_GMINA in Page(r.text).cells  # the value itself, unescaped by a parser


def test_single_item_page(client: httpx.Client, base_url: str) -> None:
    page = get_html(client, f"{ITEMS}/{NASTY_ID}", f="html")
    cells = page.cells
    assert cells[cells.index("site_id") + 1] == NASTY_ID  # property, value, unit
    assert f"{base_url}/collections/sites?f=html" in [a["href"] for a in page.links]
    r = client.get(page.typed("application/geo+json"))
    assert r.headers["content-type"].startswith("application/geo+json")
    assert strict_json(r)["id"] == NASTY_ID
    in_2180 = client.get(f"{ITEMS}/{NASTY_ID}", params={"f": "html", "crs": EPSG2180})
    assert EPSG2180 in in_2180.text


def test_landing_and_conformance_pages(client: httpx.Client) -> None:
    landing = get_html(client, "/", f="html")
    assert any(a["href"].endswith("/collections?f=html") for a in landing.links)
    conformance = get_html(client, "/conformance", f="html")
    html_class = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html"
    assert html_class in [a["href"] for a in conformance.links]
    assert html_class in strict_json(client.get("/conformance"))["conformsTo"]


def test_unknown_format_is_400(client: httpx.Client) -> None:
    for url in ("/collections", "/collections/sites", ITEMS, f"{ITEMS}/{NASTY_ID}"):
        assert_problem(client.get(url, params={"f": "xml"}), 400, "'f'")
    assert_problem(client.get("/collections/nope", params={"f": "html"}), 404)


def test_item_page_has_a_map_units_and_numbers_in_the_language(client: httpx.Client, sites) -> None:
    row = sites[sites["site_id"] != NASTY_ID].iloc[0]
    sid = row["site_id"]
    pages = {}
    for lang in ("pl", "en"):
        r = client.get(f"{ITEMS}/{sid}", params={"f": "html"}, headers={"Accept-Language": lang})
        assert r.status_code == 200 and r.headers["content-language"] == lang
        pages[lang] = r.text
        page = Page(r.text)
        cells = page.cells
        # a small map of the site's outline
        assert '<svg class="small-map"' in r.text and re.search(r'<path d="M[\d.]+,', r.text)
        # numbers with the unit's decimals, never a raw float
        area = cells[cells.index("area_ha") + 1]
        want = f"{row['area_ha']:,.2f}".rstrip("0").rstrip(".")
        assert area == (want.replace(",", "\u00a0").replace(".", ",") if lang == "pl" else want)
        assert cells[cells.index("area_ha") + 2] == "ha"
        assert not [c for c in cells if re.fullmatch(r"-?\d+[.,]\d{4,}", c)]
        # readable title and the sheet in the same language
        assert row["gmina"] in r.text.split("<h1>")[1].split("</h1>")[0]
        sheet = next(a["href"] for a in page.links if "/sheet" in a["href"])
        assert sheet.endswith(f"/sites/{sid}/sheet?lang={lang}")
        s = client.get(sheet)
        assert s.status_code == 200 and f'<html lang="{lang}">' in s.text
    assert '<html lang="pl">' in pages["pl"] and '<html lang="en">' in pages["en"]


def test_a_page_cached_in_one_language_is_not_revalidated_for_the_other(
    client: httpx.Client, sites
) -> None:
    """The validator depends on the language: a Polish page's ETag does not make the
    English page a 304 (a browser would show the Polish copy)."""
    sid = sites[sites["site_id"] != NASTY_ID].iloc[0]["site_id"]
    url, params = f"{ITEMS}/{sid}", {"f": "html"}
    pl = client.get(url, params=params, headers={"Accept-Language": "pl"})
    again = client.get(
        url, params=params, headers={"Accept-Language": "pl", "If-None-Match": pl.headers["etag"]}
    )
    assert again.status_code == 304
    en = client.get(
        url, params=params, headers={"Accept-Language": "en", "If-None-Match": pl.headers["etag"]}
    )
    assert en.status_code == 200 and en.headers["content-language"] == "en"
