"""What the site columns and the reference layers hold, in Polish and English, on the
API's pages: one catalogue text per column (``column:<name>``) and per reference layer
(``layer:<name>`` title, ``layer_about:<name>`` description). HTML pages show them in
the page's language; the JSON documents stay English.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest
from sample_store import make_sample_store

from omw_sites import i18n
from omw_sites.api.catalog import REFERENCE_TITLES
from omw_sites.layers import RECORD_COLUMNS, REFERENCE_LAYERS, SITE_COLUMNS, SITES

SITE = "S0000000000"
# column -> words its Polish meaning holds
KNOWN = {
    "area_ha": "powierzchnia",
    "time_junction_min": "węzła autostradowego",
    "workforce_30min": "w wieku produkcyjnym",
    "dist_substation_m": "GPZ",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_store(tmp_path_factory.mktemp("column_language") / "omw.gpkg", n=30)


def in_row(page: str, name: str, cell: str, head: str = "td") -> bool:
    """Whether ``page`` has a table row of property ``name`` with a cell ``cell``."""
    row = rf"<{head}>{re.escape(name)}</{head}>(?:(?!</tr>).)*?<td>{re.escape(cell)}</td>"
    return re.search(row, page) is not None


def text_of(client: httpx.Client, url: str, lang: str, **params: str) -> str:
    r = client.get(url, params={"f": "html", "lang": lang, **params})
    assert r.status_code == 200, (url, r.text[:300])
    assert r.headers["content-language"] == lang
    return html.unescape(re.sub(r"\s+", " ", r.text))


def test_every_column_and_reference_layer_has_a_polish_text() -> None:
    for name, (_, meaning) in {**SITE_COLUMNS, **RECORD_COLUMNS}.items():
        # the English text is the meaning stored with each run (layers.py), word for word
        assert i18n.gettext("en", f"column:{name}") == meaning, name
        polish = i18n.gettext("pl", f"column:{name}")
        assert polish != f"column:{name}" and polish != meaning, name
    for name in REFERENCE_LAYERS:
        title, description = REFERENCE_TITLES[name]
        assert i18n.gettext("en", f"layer_about:{name}") == description, name
        assert i18n.gettext("pl", f"layer_about:{name}") not in (description, f"layer_about:{name}")
        polish_title = i18n.gettext("pl", f"layer:{name}")
        assert polish_title != f"layer:{name}", name
        assert polish_title != title or name == "natura2000", name  # a proper name
    for name, word in KNOWN.items():
        assert word in i18n.gettext("pl", f"column:{name}"), name


def test_collection_and_queryables_pages_describe_columns_in_their_language(
    client: httpx.Client,
) -> None:
    for url in (f"/collections/{SITES}", f"/collections/{SITES}/queryables"):
        pl, en = text_of(client, url, "pl"), text_of(client, url, "en")
        for name in KNOWN:
            polish = i18n.gettext("pl", f"column:{name}")
            english = SITE_COLUMNS[name][1]
            unit = SITE_COLUMNS[name][0]
            # the property's row: its meaning with the unit
            assert in_row(pl, name, f"{polish} [{unit}]"), (url, name)
            assert in_row(en, name, f"{english} [{unit}]"), (url, name)
            assert f">{english} [" not in pl and f">{polish} [" not in en, (url, name)
        # the profile columns and the temporal property too
        assert "ocena w profilu logistics" in pl and "score for profile logistics" not in pl
        assert "score for profile logistics" in en
        assert "filtruje parametr datetime" in pl and "the datetime parameter of the items" in en
        assert "S_INTERSECTS i pozostałe funkcje" in pl and "S_INTERSECTS and friends" in en
    # the sites collection's own description
    pl = text_of(client, f"/collections/{SITES}", "pl")
    en = text_of(client, f"/collections/{SITES}", "en")
    assert "Tereny inwestycyjne obszaru metropolitalnego Warszawy" in pl
    assert "Investment sites of the Warsaw" not in pl and "Investment sites of the Warsaw" in en


def test_json_documents_stay_english(client: httpx.Client) -> None:
    for url, english, polish in (
        (f"/collections/{SITES}", "Investment sites of the Warsaw", "Tereny inwestycyjne"),
        (f"/collections/{SITES}/queryables", "polygon area", "powierzchnia obrysu"),
    ):
        r = client.get(url, params={"f": "json"}, headers={"Accept-Language": "pl"})
        assert r.status_code == 200
        assert english in r.text and polish not in r.text, url
    doc = client.get("/collections/roads_main", params={"f": "json", "lang": "pl"}).json()
    assert doc["description"] == REFERENCE_TITLES["roads_main"][1]


def test_reference_layers_described_in_the_page_language(client: httpx.Client) -> None:
    pl, en = text_of(client, "/collections", "pl"), text_of(client, "/collections", "en")
    for name in REFERENCE_LAYERS:
        title, description = REFERENCE_TITLES[name]
        polish = i18n.gettext("pl", f"layer_about:{name}")
        assert f"<td>{polish}</td>" in pl and f"<td>{description}</td>" not in pl, name
        assert f"<td>{description}</td>" in en and f"<td>{polish}</td>" not in en, name
    pl = text_of(client, "/collections/roads_main", "pl")
    assert "sieć dróg głównych (BDOT10k)" in pl and "main road network" not in pl


def test_items_item_and_tileset_pages_in_their_language(client: httpx.Client) -> None:
    items = f"/collections/{SITES}/items"
    pl, en = text_of(client, items, "pl", limit="3"), text_of(client, items, "en", limit="3")
    meaning = i18n.gettext("pl", "column:workforce_30min")
    assert f'<th title="{meaning}">workforce_30min' in pl
    assert f'<th title="{SITE_COLUMNS["workforce_30min"][1]}">workforce_30min' in en
    pl = text_of(client, f"{items}/{SITE}", "pl")
    en = text_of(client, f"{items}/{SITE}", "en")
    for name in KNOWN:
        polish, english = i18n.gettext("pl", f"column:{name}"), SITE_COLUMNS[name][1]
        assert in_row(pl, name, polish, "th") and in_row(en, name, english, "th"), name
        assert f"<td>{english}</td>" not in pl and f"<td>{polish}</td>" not in en, name
    tiles = f"/collections/{SITES}/tiles"
    pl, en = text_of(client, tiles, "pl"), text_of(client, tiles, "en")
    assert "tereny inwestycyjne – kafle wektorowe Mapbox" in pl and "Mapbox vector tiles" not in pl
    assert "Investment sites, Mapbox vector tiles" in en
    pl = text_of(client, f"{tiles}/WebMercatorQuad", "pl")
    en = text_of(client, f"{tiles}/WebMercatorQuad", "en")
    polish = "miejsce w rankingu profilu logistics (1 = najlepsze, 0 = teren wykluczony)"
    assert in_row(pl, "rank_logistics", polish) and "rank for profile" not in pl
    assert in_row(en, "rank_logistics", "rank for profile logistics (1 = best, 0 = excluded)")
