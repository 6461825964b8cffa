"""The Polish sheet, maps, balance, servicing and analysis pages: no English label left,
and numbers the Polish way (decimal comma, non-breaking space between thousands).

"English labels" are the catalogue's own: every message id the reports and maps use whose
Polish translation differs from it (found by Babel's extractors, as in
``test_message_catalogue.py``). A Polish page must show none of them. Numbers are checked
against values known from the hand-made region or read from the store and CSV.
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from test_message_catalogue import PACKAGE, catalogue, used_messages
from test_reports import P, _sites
from typer.testing import CliRunner

from omw_sites import i18n
from omw_sites.commands.reporting import register
from omw_sites.layers import rank_col, score_col
from omw_sites.maps import render_map, write_comparison
from omw_sites.maps.style import score_classes
from omw_sites.reports.balance import balance_html, regional_balance
from omw_sites.reports.formatting import fixed
from omw_sites.reports.sheet import render_sheet
from omw_sites.store import read_run_info, read_sites

DOT_DECIMAL = re.compile(r"(?<![\d.])\d+\.\d+(?![\d.])")  # 0.85, 12.5 (not 1.2.3 or dates)


@cache
def english_labels() -> tuple[str, ...]:
    """Message ids of the reports and maps that read differently in Polish: words, not
    codes (``kind:key``) or templates with placeholders; four letters at least."""
    pl = catalogue("pl")
    ids = set(used_messages(PACKAGE / "reports")) | set(used_messages(PACKAGE / "maps"))
    return tuple(
        sorted(
            m
            for m in ids
            if pl.get(m) and pl[m] != m and "%(" not in m and not re.fullmatch(r"\w+:\w+", m)
            and sum(c.isalpha() for c in m) >= 4
        )
    )  # fmt: skip


def english_left(text: str) -> list[str]:
    """The English labels found in ``text`` (whole words, case as written)."""
    text = text.replace("omw-sites", "")  # the tool's name
    return [m for m in english_labels() if re.search(rf"(?<!\w){re.escape(m)}(?!\w)", text)]


def visible_text(page: str) -> str:
    """What a reader sees of an HTML page: no scripts, styles, tags or embedded images."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page)
    return html.unescape(page)


def map_words(page: str) -> str:
    """The words a map page shows: title box and legend, layer names, tooltip labels and
    the popups' words (the page's own Leaflet library is left out)."""
    boxes = [json.loads(m) for m in re.findall(r'div\.innerHTML = ("(?:[^"\\]|\\.)*");', page)]
    names = [
        json.loads(f'"{m}"') for m in re.findall(r'"((?:[^"\\]|\\.)*)"\s*:\s*geo_json_\w+', page)
    ]
    strings = r'\[(?:"(?:[^"\\]|\\.)*"(?:,\s*)?)*\]'  # a JS array of strings
    aliases = [a for m in re.findall(rf"aliases = ({strings})", page) for a in json.loads(m)]
    config = re.search(r"omw\.configure\((\{.*?\})\);</script>", page)
    words = list(json.loads(config.group(1))["words"].values()) if config else []
    title = re.findall(r"<title>(.*?)</title>", page)
    return "\n".join([*map(visible_text, boxes), *names, *aliases, *words, *title])


def test_the_check_finds_english_labels() -> None:
    labels = english_labels()
    assert {"Investment site sheet", "Regional balance", "Main roads", "Cost [PLN]"} <= set(labels)
    assert english_left("Supply per gmina: 12,5 ha") == ["Supply per gmina"]
    assert english_left("Podaż według gmin (omw-sites)") == []


# ------------------------------------------------------------------ balance, hand-made


def test_polish_balance_page_known_values() -> None:
    region = _sites(
        [
            ("S01", "1", 10.0, 0.90, "A", "private"),
            ("S02", "1", 20.0, 0.85, "B", "municipal"),
            ("S03", "1", 30.0, 0.80, "B", "private"),
            ("S04", "2", 5.0, 0.60, "C", "state"),
            ("S05", "3", 2.0, 0.50, "A", "private"),
            ("S06", "1465011", 1234.5, np.nan, "C", "municipal"),
        ]
    )
    gminy = pd.DataFrame({"teryt": ["1", "2", "3", "1465011"], "name": list("ABCW")})
    rep = regional_balance(region, P, k=3, cap=1, decay=1.0, gminy=gminy)
    pl, en = balance_html(rep, "pl"), balance_html(rep, "en")
    text = visible_text(pl)
    assert english_left(text) == []
    assert '<html lang="pl">' in pl and "Bilans regionalny" in text
    # Gini of top-3 land 0.75; mean score lost 0.85 − 2/3; plain mean 0.85; the core
    # city's 1,234.5 ha with a space between thousands
    assert "<b>0,750</b>" in pl and "<b>0.750</b>" in en
    assert "<b>0,1833</b>" in pl and "<b>0.1833</b>" in en
    assert "<td>0,850</td>" in pl and "<td>0.850</td>" in en
    assert "<td>1\u00a0234,50</td>" in pl and "<td>1,234.50</td>" in en
    assert "żadna gmina nie ma limitu" not in text and "gmina, która ma jeden teren" in text
    assert not DOT_DECIMAL.findall(text), DOT_DECIMAL.findall(text)[:5]
    # the English page is English: the same check the other way finds the Polish
    assert "Supply per gmina" in visible_text(en) and "Podaż według gmin" not in en


# ----------------------------------------------------------------- the demo store


def test_polish_sheet_has_no_english_labels(demo_store: Path) -> None:
    sites = read_sites(demo_store, read_geometry=False)
    best = sites[sites[rank_col(P)] == 1].iloc[0]
    page = render_sheet(demo_store, str(best["site_id"]), "pl")
    text = visible_text(page)
    assert english_left(text) == [], english_left(text)
    assert f"{fixed(best['area_ha'], 'pl', 2)}\u00a0ha" in text
    assert f"{fixed(best[score_col(P)], 'pl', 3)}" in text
    unit_dots = re.findall(r"\d\.\d+\u00a0(?:ha|km|m|min|%|MW|mm)\b", text)
    assert not unit_dots, unit_dots
    # every input layer of the run is named in Polish in "Sources and data dates"
    for layer in read_run_info(demo_store).get("data_dates", {}):
        assert i18n.gettext("pl", f"layer:{layer}") != f"layer:{layer}", layer


def test_polish_profile_and_comparison_maps(demo_store: Path, tmp_path: Path) -> None:
    sites = read_sites(demo_store, read_geometry=False)
    page = render_map(demo_store, P, lang="pl")
    words = map_words(page)
    assert english_left(words) == [], english_left(words)
    ranked = sites[rank_col(P)].fillna(0) > 0
    classes = score_classes(sites.loc[ranked, score_col(P)].to_numpy(float), 5)
    for i in range(classes.k):  # the legend's score ranges with a decimal comma
        assert classes.label(i, "pl") in words and "," in classes.label(i, "pl")
    assert not DOT_DECIMAL.findall(words), DOT_DECIMAL.findall(words)[:5]
    paths = write_comparison(demo_store, P, "office", tmp_path)
    assert [p.name for p in paths] == [f"compare_{P}_office.html", f"compare_{P}_office_pl.html"]
    cmp_words = map_words(paths[1].read_text(encoding="utf-8"))
    assert english_left(cmp_words) == [], english_left(cmp_words)
    assert "Zmiana pozycji: A = Logistyka i magazyny" in cmp_words
    assert "much higher in B" in map_words(paths[0].read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pages(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The servicing and analysis pages the commands write, in both languages."""
    out = tmp_path_factory.mktemp("polish")
    app = typer.Typer()
    register(app)
    run = CliRunner().invoke
    args = ["--store", str(demo_store), "--out", str(out)]
    res = run(app, ["servicing", "--profile", "manufacturing", *args])
    assert res.exit_code == 0, res.output
    res = run(app, ["report", "--profile", P, "--draws", "50", *args])
    assert res.exit_code == 0, res.output
    return out


def test_polish_servicing_map(pages: Path) -> None:
    table = pd.read_csv(pages / "servicing_manufacturing.csv")
    page = (pages / "servicing_manufacturing_pl.html").read_text(encoding="utf-8")
    words = map_words(page)
    assert english_left(words) == [], english_left(words)
    boxes = "\n".join(
        json.loads(m) for m in re.findall(r'div\.innerHTML = ("(?:[^"\\]|\\.)*");', page)
    )
    first = re.findall(r"<td>([^<]*)</td>", boxes.split("<tbody>")[1])[:8]
    row = table.iloc[0]
    assert first[:5] == [
        "1",
        row["site_id"],
        i18n.gettext("pl", f"network:{row['network']}"),
        fixed(row["length_m"], "pl", 0),
        fixed(row["cost_pln"], "pl", 0),
    ]
    assert first[5] == fixed(row["score_gain"], "pl", 3) and "," in first[5]
    assert "Długość [m]" in boxes and "Koszt [zł]" in boxes


def test_polish_analysis_report(pages: Path, demo_store: Path) -> None:
    page = (pages / f"report_{P}_pl.html").read_text(encoding="utf-8")
    text = visible_text(page)
    assert english_left(text) == [], english_left(text)
    assert "Rozkłady ocen" in text and 'href="report_logistics.html"' in page
    sites = read_sites(demo_store, read_geometry=False)
    best = sites[sites[rank_col(P)] == 1].iloc[0]
    row = re.search(rf"<tr><td[^>]*>1</td><td>{best['site_id']}</td>.*?</tr>", page)
    assert row, "the best site's row"
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row.group(0))
    assert cells[3] == fixed(best["area_ha"], "pl", 1) and "," in cells[3]
    assert cells[4] == fixed(best[score_col(P)], "pl", 3)
    assert not DOT_DECIMAL.findall(text), DOT_DECIMAL.findall(text)[:5]
