"""The catalogue's minimum filters of issue 21: working-age people within 30 minutes by
road and the plan's maximum building height, "at least N".

A minimum is the investor's hard requirement, so a site whose figure is not known does
not match it. The list's count must equal the API's ``numberMatched`` for the same CQL2
filter and a pandas count on the store; the map must draw the same sites (the pattern
of ``tests/test_catalogue.py``, on a hand-made store where some sites have no figure).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cli_run import serving
from sample_store import sample_data

from omw_sites import i18n
from omw_sites.api.routes import catalogue as cat
from omw_sites.store import open_backend, open_inventory, read_sites


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 sample sites; every fifth has no workforce figure, every seventh no height."""
    path = tmp_path_factory.mktemp("catalogue_criteria") / "omw_sites.gpkg"
    sites, ref, info = sample_data(300, seed=5)
    rows = np.arange(len(sites))
    sites.loc[rows % 5 == 0, "workforce_30min"] = np.nan
    sites.loc[rows % 7 == 0, "max_height_m"] = np.nan
    sites["workforce_30min"] = (sites["workforce_30min"] * 100).round(0)  # people, 0..2M
    sites["max_height_m"] = (sites["max_height_m"] / 500).round(1)  # 0..40 m
    open_inventory(path).apply(sites, ref, info)
    return path


@pytest.fixture(scope="module")
def sites(store: Path) -> Any:
    return read_sites(open_backend(store))


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[str]:
    with serving(store) as (url, _):
        yield url


def _wait_ready(page: Any, contains: str = "") -> None:
    page.wait_for_function(
        "s => window.catalogue && window.catalogue.ready && window.catalogue.filter.includes(s)",
        arg=contains,
        timeout=30000,
    )


def _drawn_ids(page: Any) -> list[str]:
    return page.evaluate(
        """async () => {
            const c = window.catalogue, m = c.map;
            m.fitBounds(c.config.bounds, {padding: 20, animate: false});
            await new Promise((r) => { m.once('idle', r); m.triggerRepaint(); });
            return c.drawnIds();
        }"""
    )


def test_minimum_workforce_and_height_filter_list_api_and_map_alike(
    server: str, sites: Any, browser: Any
) -> None:
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/catalogue?lang=en")
    _wait_ready(page)
    page.click("text=Workforce and building height")
    assert "does not match a minimum" in page.locator("#f-min-help").inner_text()
    page.fill("#f-min-workforce", "500000")
    _wait_ready(page, "workforce_30min >= 500000")
    page.fill("#f-min-height", "12")
    _wait_ready(page, "max_height_m >= 12")
    state = page.evaluate("({f: window.catalogue.filter, n: window.catalogue.matched})")
    shown = int(page.get_attribute("#count", "data-count"))
    api = httpx.get(
        f"{server}/collections/sites/items",
        params={"filter": state["f"], "limit": 1000, "properties": "site_id"},
        trust_env=False,
    ).json()
    available = sites["status"] == "available"
    expected = sites[
        available & (sites["workforce_30min"] >= 500000) & (sites["max_height_m"] >= 12)
    ]
    assert shown == state["n"] == api["numberMatched"] == len(expected)
    assert 0 < shown < int(available.sum())
    # sites with no figure are not matched, though they would be by any figure
    assert (available & sites["workforce_30min"].isna()).sum() > 0
    assert not set(expected["site_id"]) & set(sites.loc[sites["max_height_m"].isna(), "site_id"])
    api_ids = sorted(f["properties"]["site_id"] for f in api["features"])
    assert api_ids == sorted(expected["site_id"])
    assert _drawn_ids(page) == api_ids  # the map drew exactly the listed sites
    # the URL keeps the state, in Polish with a decimal comma accepted
    page.goto(f"{server}/catalogue?lang=pl&min_workforce=500000&min_height=12,0")
    _wait_ready(page, "max_height_m >= 12")
    assert int(page.get_attribute("#count", "data-count")) == shown
    assert "nie spełnia" in page.locator("#f-min-help").inner_text()
    assert not errors


def test_a_bad_minimum_is_a_400_problem(server: str) -> None:
    for query in ("min_height=tall", "min_workforce=-5"):
        r = httpx.get(f"{server}/catalogue/matches?{query}", trust_env=False)
        assert r.status_code == 400, query
        assert r.headers["content-type"].startswith("application/problem+json")
        assert query.split("=")[0] in r.json()["detail"]


def test_the_minimum_filters_speak_both_languages() -> None:
    for key in cat.MINIMUMS:
        pl, en = (i18n.gettext(lang, f"minimum:{key}") for lang in ("pl", "en"))
        assert pl != en and f"minimum:{key}" not in (pl, en)
