"""What investors ask first (issue 21), where they read it: the workforce within 30 and
45 minutes, named access, what the plan allows and the land, on the catalogue's site
page, the offer sheet, the comparison CSV and the map popups, in Polish and English.

The stores are hand-made (``sample_store.sample_data``) with known values set on one
site and none on another; an "old" store lacks the columns issue 21 added, and its names
must still be found in the reference layers, as before.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import shapely
from cli_run import serving
from sample_store import sample_data

from omw_sites.layers import SITE_COLUMNS, TEXT_COLUMNS
from omw_sites.store import open_inventory

NBSP = "\u00a0"
KNOWN = {  # the known site's values, as the pipeline would have measured them
    "population_30min": 1234567.0,
    "workforce_30min": 812345.6,
    "population_45min": 2345678.0,
    "workforce_45min": 1500000.0,
    "max_height_m": 12.5,
    "max_coverage_share": 0.6,
    "intensity_min": 0.2,
    "intensity_max": 1.5,
    "min_bio_active_share": 0.25,
    "agri_share": 0.8,
    "soil_i_iii_share": 0.35,
    "soil_iv_vi_share": 0.45,
    "forest_land_share": 0.05,
    "built_up_share": 0.0,
    "junction_name": "S8 Konotopa",
    "junction_road": "S8",
    "airport_name": "Lotnisko Chopina w Warszawie (WAW)",
    "station_name": "Warszawa Zachodnia",
    "rail_freight_name": "Warszawa Gołąbki Towarowa",
    "national_road": "7",
    "dist_national_road_m": 1234.0,
    "voivodeship_road": "631",
    "dist_voivodeship_road_m": 850.0,
    "access_road_class": "L",
    "access_road_width_m": 6.0,
}
LATER = list(SITE_COLUMNS)[list(SITE_COLUMNS).index("population_30min") :]


def _data(n: int = 20) -> tuple[Any, dict, dict]:
    """Sample data: site 0 holds ``KNOWN``, site 1 has no data in any issue-21 column;
    stations are passenger and freight ones (the name search tells them apart)."""
    sites, ref, info = sample_data(n, seed=3)
    for col, value in KNOWN.items():
        sites.loc[0, col] = value
    for col in LATER:
        if col in TEXT_COLUMNS:
            sites.loc[1, col] = ""
        elif col != "brownfield":
            sites.loc[1, col] = np.nan
    sites.loc[2, "national_road"] = "A2"  # a motorway that is a national road
    flags = [False, None] + [bool(i % 2) for i in range(n - 2)]
    sites["brownfield"] = pd.array(flags, dtype="boolean")
    ref["stations"]["kind"] = ["passenger", "freight"] * 5
    return sites, ref, info


@pytest.fixture(scope="module")
def new_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict]:
    path = tmp_path_factory.mktemp("criteria") / "omw_sites.gpkg"
    sites, ref, info = _data()
    open_inventory(path).apply(sites, ref, info)
    return path, sites, ref


@pytest.fixture(scope="module")
def old_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict]:
    """A store made before issue 21: no name columns; site 0's stored distances are
    those to the nearest airport and stations of its reference layers."""
    path = tmp_path_factory.mktemp("criteria_old") / "omw_sites.gpkg"
    sites, ref, info = _data()
    sites = sites.drop(columns=LATER)
    geom = sites.geometry.iloc[0]
    sites.loc[0, "dist_airport_m"] = shapely.distance(geom, ref["airports"].geometry).min()
    for col, kind in (("dist_station_m", "passenger"), ("dist_rail_freight_m", "freight")):
        stations = ref["stations"][ref["stations"]["kind"] == kind]
        sites.loc[0, col] = shapely.distance(geom, stations.geometry).min()
    open_inventory(path).apply(sites, ref, info)
    return path, sites, ref


@pytest.fixture(scope="module")
def url(new_store: tuple[Path, Any, dict]) -> Iterator[str]:
    with serving(new_store[0]) as (base, _proc):
        yield base


@pytest.fixture(scope="module")
def old_url(old_store: tuple[Path, Any, dict]) -> Iterator[str]:
    with serving(old_store[0]) as (base, _proc):
        yield base


def _text(fragment: str) -> str:
    """A page's fragment as a person reads it: tags out, one space between cells."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", fragment))
    return re.sub(r"[ \t\r\n]+", " ", text)  # a no-break space stays what it is


def _section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    return _text(page[start : page.index("</section>", start)])


def _page(url: str, site_id: str, lang: str) -> str:
    r = httpx.get(f"{url}/catalogue/sites/{site_id}?lang={lang}", trust_env=False)
    assert r.status_code == 200, r.text
    return r.text


def _nearest_name(sites: Any, ref: dict, layer: str, kind: str = "") -> str:
    gdf = ref[layer] if not kind else ref[layer][ref[layer]["kind"] == kind]
    row = gdf.iloc[int(np.argmin(shapely.distance(sites.geometry.iloc[0], gdf.geometry)))]
    return str(row["name"]) + (f" ({row['iata']})" if layer == "airports" else "")


# ------------------------------------------------------------------------ site page


PAGE_FIGURES = {  # language -> what the known site's page must say
    "pl": {
        "h-workforce": [
            f"Mieszkańcy w zasięgu 30 min dojazdu 1{NBSP}234{NBSP}567",
            f"Osoby w wieku produkcyjnym (15–64) w zasięgu 30 min dojazdu 812{NBSP}346",
            f"Mieszkańcy w zasięgu 45 min dojazdu 2{NBSP}345{NBSP}678",
            f"(15–64) w zasięgu 45 min dojazdu 1{NBSP}500{NBSP}000",
        ],
        "h-plan-limits": [
            f"Maksymalna wysokość zabudowy 12,5{NBSP}m",
            f"Maksymalna powierzchnia zabudowy 60{NBSP}%",
            "Minimalna intensywność zabudowy 0,20",
            "Maksymalna intensywność zabudowy 1,50",
            f"biologicznie czynnej 25{NBSP}%",
        ],
        "h-land": [
            f"Użytki rolne (EGiB) 80{NBSP}%",
            f"Grunty rolne klas I–III 35{NBSP}%",
            f"Grunty rolne klas IV–VI 45{NBSP}%",
            f"Grunty leśne (EGiB) 5{NBSP}%",
            f"Pod istniejącą zabudową 0{NBSP}%",
            "Greenfield czy brownfield greenfield (bez zabudowy)",
            "wyłączenie z produkcji rolnej",
        ],
        "h-access": [
            "S8 Konotopa",
            "Lotnisko Chopina w Warszawie (WAW)",
            "Warszawa Zachodnia",
            "Warszawa Gołąbki Towarowa",
            f"Droga krajowa DK 7 — 1,2{NBSP}km",
            f"Droga wojewódzka DW 631 — 850{NBSP}m",
            f"L — droga lokalna, szerokość jezdni: 6,0{NBSP}m",
        ],
    },
    "en": {
        "h-workforce": [
            "People within 30 min by road 1,234,567",
            "Working-age people (15–64) within 30 min by road 812,346",
            "People within 45 min by road 2,345,678",
        ],
        "h-plan-limits": [
            f"Maximum building height 12.5{NBSP}m",
            f"Maximum building coverage 60{NBSP}%",
            "Minimum building intensity 0.20",
            f"Minimum biologically active share 25{NBSP}%",
        ],
        "h-land": [
            f"Agricultural soil of classes I–III 35{NBSP}%",
            "Greenfield or brownfield greenfield (no buildings)",
            "consent to take it out of agricultural use",
        ],
        "h-access": [
            "S8 Konotopa",
            "Lotnisko Chopina w Warszawie (WAW)",
            f"National road DK 7 — 1.2{NBSP}km",
            f"Voivodeship road DW 631 — 850{NBSP}m",
            f"L — local road, carriageway width: 6.0{NBSP}m",
        ],
    },
}


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_site_page_shows_the_new_facts(url: str, new_store: Any, lang: str) -> None:
    _, sites, ref = new_store
    page = _page(url, str(sites["site_id"].iloc[0]), lang)
    for heading, texts in PAGE_FIGURES[lang].items():
        shown = _section(page, heading)
        for text in texts:
            assert text in shown, (heading, text, shown)
    # the stored names win over a search of the reference layers at render time
    assert _nearest_name(sites, ref, "airports") not in _section(page, "h-access")
    motorway = _section(_page(url, str(sites["site_id"].iloc[2]), lang), "h-access")
    assert " A2 " in motorway and "DK A2" not in motorway
    facts = _section(page, "h-facts")  # the key facts carry workforce and height too
    height = f"12,5{NBSP}m" if lang == "pl" else f"12.5{NBSP}m"
    assert height in facts and ("812" + (NBSP if lang == "pl" else ",") + "346") in facts


@pytest.mark.parametrize(("lang", "none"), [("pl", "brak danych"), ("en", "no data")])
def test_site_page_says_no_data_where_nothing_was_measured(
    url: str, new_store: Any, lang: str, none: str
) -> None:
    _, sites, _ = new_store
    page = _page(url, str(sites["site_id"].iloc[1]), lang)
    for heading, rows in (("h-workforce", 4), ("h-plan-limits", 5), ("h-land", 6)):
        assert _section(page, heading).count(none) == rows, heading
    assert "wyłączenie z produkcji" not in page and "agricultural use" not in page
    access = _section(page, "h-access")
    assert access.count(none) >= 5  # two road numbers and distances, the road's width


def test_old_store_names_are_searched_in_the_reference_layers(old_url: str, old_store: Any) -> None:
    _, sites, ref = old_store
    page = _page(old_url, str(sites["site_id"].iloc[0]), "en")
    access = _section(page, "h-access")
    for layer, kind in (("airports", ""), ("stations", "passenger"), ("stations", "freight")):
        assert _nearest_name(sites, ref, layer, kind) in access, (layer, kind, access)
    assert "National road" not in access  # not measured in that store: no row at all
    assert _section(page, "h-workforce").count("no data") == 4


# ------------------------------------------------------------------ sheet and compare


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_offer_sheet_shows_the_new_facts(new_store: Any, lang: str) -> None:
    from omw_sites.reports.sheet import render_sheet

    path, sites, _ = new_store
    known = _text(render_sheet(path, str(sites["site_id"].iloc[0]), lang))
    empty = _text(render_sheet(path, str(sites["site_id"].iloc[1]), lang))
    if lang == "pl":
        expected = [
            "Zasoby pracy",
            f"Osoby w wieku produkcyjnym (15–64) w zasięgu 30 min dojazdu 812{NBSP}346",
            f"Maksymalna wysokość zabudowy 12,5{NBSP}m",
            "Maksymalna intensywność zabudowy 1,50",
            f"Grunty rolne klas I–III 35{NBSP}%",
            "greenfield (bez zabudowy)",
            "wyłączenie z produkcji rolnej",
            "lotnisko: Lotnisko Chopina w Warszawie (WAW)",
            "kolejowy terminal towarowy: Warszawa Gołąbki Towarowa",
            f"Droga krajowa: DK 7 – 1,2{NBSP}km",
            "Klasa drogi dojazdowej (BDOT10k) L — droga lokalna",
            f"Szerokość drogi dojazdowej 6,0{NBSP}m",
        ]
        none = "brak danych"
    else:
        expected = [
            "Workforce",
            "People within 45 min by road 2,345,678",
            f"Maximum building coverage 60{NBSP}%",
            "airport: Lotnisko Chopina w Warszawie (WAW)",
            "passenger rail station: Warszawa Zachodnia",
            f"Voivodeship road: DW 631 – 850{NBSP}m",
            "consent to take it out of agricultural use",
        ]
        none = "no data"
    for text in expected:
        assert text in known, (text, known)
    # the site with nothing measured: 4 workforce, 5 plan, 6 land rows say so
    start = empty.index("Co dopuszcza plan" if lang == "pl" else "What the plan allows")
    assert empty[start:].count(none) >= 15
    assert "agricultural use" not in empty and "produkcji rolnej" not in empty


def test_old_store_sheet_names_are_searched(old_store: Any) -> None:
    from omw_sites.reports.sheet import render_sheet

    path, sites, ref = old_store
    sheet = _text(render_sheet(path, str(sites["site_id"].iloc[0]), "en"))
    assert f"airport: {_nearest_name(sites, ref, 'airports')}" in sheet
    assert f"passenger rail station: {_nearest_name(sites, ref, 'stations', 'passenger')}" in sheet
    assert f"rail freight terminal: {_nearest_name(sites, ref, 'stations', 'freight')}" in sheet
    assert "National road" not in sheet


def test_compare_csv_has_workforce_and_height_rows(url: str, new_store: Any) -> None:
    _, sites, _ = new_store
    ids = ",".join(sites["site_id"].iloc[:2])
    labels = {
        "pl": (
            "Osoby w wieku produkcyjnym w zasięgu 30 min dojazdu",
            "Maksymalna wysokość zabudowy",
        ),
        "en": ("Working-age people within 30 min by road", "Maximum building height"),
    }
    for lang, sep, height in (("pl", ";", "12,5"), ("en", ",", "12.5")):
        r = httpx.get(f"{url}/catalogue/compare?ids={ids}&lang={lang}&f=csv", trust_env=False)
        assert r.status_code == 200
        text = r.content.decode("utf-8-sig")
        rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(text), delimiter=sep)}
        work, tall = labels[lang]
        assert rows[work] == ["812346", ""]  # the site with no data: an empty cell
        assert rows[f"{tall} [m]"] == [height, ""]
    page = httpx.get(f"{url}/catalogue/compare?ids={ids}&lang=pl", trust_env=False).text
    assert "Osoby w wieku produkcyjnym w zasięgu 30 min dojazdu" in page


# ---------------------------------------------------------------------- map popups


def test_map_popups_carry_workforce_and_height(new_store: Any) -> None:
    from omw_sites.maps.profile_map import render_map

    path, sites, _ = new_store
    page = render_map(path, "logistics", lang="pl")
    sid = str(sites["site_id"].iloc[0])
    props = re.search(r'\{[^{}]*"i": ?"' + sid + r'"[^{}]*\}', page)
    assert props, "the known site's popup properties"
    assert re.search(r'"wf": ?812346(\.0)?[,}]', props.group(0)), props.group(0)
    assert re.search(r'"mh": ?12\.5[,}]', props.group(0)), props.group(0)
    none = re.search(r'\{[^{}]*"i": ?"' + str(sites["site_id"].iloc[1]) + r'"[^{}]*\}', page)
    assert none and '"wf"' not in none.group(0) and '"mh"' not in none.group(0)
    assert "Osoby w wieku produkcyjnym w zasięgu 30 min" in page  # the popup's word
    config = re.search(r'"fields": (\[[^\]]*\])', page)
    assert config and len(re.findall(r'"label"', config.group(1))) <= 4
