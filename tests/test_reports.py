"""Reports: regional balance on hand-made regions and the real store; site sheet HTML and PDF."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from conftest import need
from typer.testing import CliRunner

from omw_sites.commands.reporting import register
from omw_sites.layers import rank_col, score_col
from omw_sites.maps.assets import check_offline, external_references
from omw_sites.reports import (
    UnknownSiteError,
    balanced_shortlist,
    gini,
    regional_balance,
    render_sheet,
    sheet_pdf,
)
from omw_sites.reports.balance import gmina_supply, plain_top
from omw_sites.store import read_run_info, read_sites

P = "logistics"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _sites(rows: list[tuple[str, str, float, float, str, str]]) -> pd.DataFrame:
    """Hand-made site table: (site_id, teryt, area_ha, score or NaN, tier, ownership)."""
    df = pd.DataFrame(rows, columns=["site_id", "teryt", "area_ha", "score", "tier", "own"])
    score = df["score"].to_numpy(float)
    rank = pd.Series(score).rank(ascending=False, method="min").fillna(0).astype(int)
    return pd.DataFrame(
        {
            "site_id": df["site_id"],
            "teryt": df["teryt"],
            "gmina": df["teryt"].map({"1465011": "Warszawa", "1": "A", "2": "B", "3": "C"}),
            "area_ha": df["area_ha"],
            "ownership": df["own"],
            score_col(P): score,
            rank_col(P): rank.to_numpy(),
            f"tier_{P}": df["tier"],
        }
    )


@pytest.fixture()
def region() -> pd.DataFrame:
    # gmina 1 holds the three best sites; 2 and 3 one each; 1465011 (core) one excluded site
    return _sites(
        [
            ("S01", "1", 10.0, 0.90, "A", "private"),
            ("S02", "1", 20.0, 0.85, "B", "municipal"),
            ("S03", "1", 30.0, 0.80, "B", "private"),
            ("S04", "2", 5.0, 0.60, "C", "state"),
            ("S05", "3", 2.0, 0.50, "A", "private"),
            ("S06", "1465011", 7.0, np.nan, "C", "municipal"),
        ]
    )


# --------------------------------------------------------------------------------------
# Balance: measures and the rule, where the right answer is known
# --------------------------------------------------------------------------------------


def test_gini_known_values() -> None:
    assert gini([3, 3, 3, 3]) == 0.0
    assert gini([0, 0, 0, 8]) == pytest.approx(0.75)  # (n - 1) / n
    assert gini([1, 2, 3]) == pytest.approx(8 / 36)
    assert gini([0, 0]) == 0.0 and gini([5]) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        gini([1, -1])


def test_balanced_rule_cap_decay_and_plain(region: pd.DataFrame) -> None:
    ids = lambda df: df["site_id"].tolist()  # noqa: E731
    assert ids(plain_top(region, P, 3)) == ["S01", "S02", "S03"]
    # no bonus, no cap = plain top-K
    assert ids(balanced_shortlist(region, P, 3)) == ["S01", "S02", "S03"]
    # cap 1: one per gmina
    assert ids(balanced_shortlist(region, P, 3, cap=1)) == ["S01", "S04", "S05"]
    # decay 0.8: 0.85·0.8 = 0.68 beats 0.60; then 0.80·0.64 = 0.512 loses to 0.60
    short = balanced_shortlist(region, P, 3, decay=0.8)
    assert ids(short) == ["S01", "S02", "S04"]
    assert short["adjusted_score"].tolist() == pytest.approx([0.9, 0.68, 0.6])
    # the cap leaves too few: shorter list, never an excluded site
    assert ids(balanced_shortlist(region, P, 10, cap=1)) == ["S01", "S04", "S05"]
    with pytest.raises(ValueError, match="decay"):
        balanced_shortlist(region, P, 3, decay=0)
    with pytest.raises(ValueError, match="profile 'nope'"):
        balanced_shortlist(region, "nope", 3)


def test_balanced_ties_are_deterministic() -> None:
    sites = _sites([("S09", "2", 1.0, 0.5, "A", "private"), ("S08", "1", 1.0, 0.5, "A", "private")])
    assert balanced_shortlist(sites, P, 1)["site_id"].tolist() == ["S08"]
    assert balanced_shortlist(sites.iloc[::-1], P, 1)["site_id"].tolist() == ["S08"]


def test_supply_per_gmina(region: pd.DataFrame) -> None:
    gminy = pd.DataFrame({"teryt": ["1", "2", "3", "1465011", "9"], "name": list("ABCWZ")})
    t = gmina_supply(region, P, top_n=3, gminy=gminy).set_index("teryt")
    assert len(t) == 5 and t.loc["9", "sites"] == 0 and t.loc["9", "ha"] == 0  # no sites
    a = t.loc["1"]
    assert (a["sites"], a["ha"], a["eligible_sites"]) == (3, 60.0, 3)
    assert (a["sites_tier_A"], a["ha_tier_A"], a["sites_tier_B"], a["ha_tier_B"]) == (1, 10, 2, 50)
    assert (a["ha_private"], a["ha_municipal"], a["ha_state"]) == (40.0, 20.0, 0.0)
    assert a["best_score"] == pytest.approx(0.9) and a["median_score"] == pytest.approx(0.85)
    assert (a["top_sites"], a["top_ha"], a["top_share_ha"]) == (3, 60.0, 1.0)
    w = t.loc["1465011"]
    assert (w["sites"], w["eligible_sites"], w["top_sites"]) == (1, 0, 0)
    assert np.isnan(w["best_score"])


def test_regional_balance_compares_plain_and_balanced(region: pd.DataFrame) -> None:
    gminy = pd.DataFrame({"teryt": ["1", "2", "3", "1465011"], "name": list("ABCW")})
    rep = regional_balance(region, P, k=3, cap=1, decay=1.0, gminy=gminy)
    plain, bal, reg = rep.summary["plain"], rep.summary["balanced"], rep.summary["region"]
    assert plain["gminy_covered"] == 1 and bal["gminy_covered"] == 3
    assert plain["gini_sites"] == pytest.approx(0.75)  # all in one of four gminy
    assert bal["gini_sites"] == pytest.approx(gini([1, 1, 1, 0]))
    assert plain["mean_score"] == pytest.approx(0.85)
    assert bal["mean_score"] == pytest.approx((0.9 + 0.6 + 0.5) / 3)
    assert rep.score_lost == pytest.approx(0.85 - 2.0 / 3, abs=1e-6)
    assert reg["gini_top_ha"] == pytest.approx(0.75) and reg["core_share_top_ha"] == 0.0
    t = rep.table.set_index("teryt")
    assert t["plain_k_sites"].to_dict() == {"1": 3, "2": 0, "3": 0, "1465011": 0}
    assert t["balanced_k_sites"].to_dict() == {"1": 1, "2": 1, "3": 1, "1465011": 0}


# --------------------------------------------------------------------------------------
# Balance on the real pipeline's store, through the command
# --------------------------------------------------------------------------------------


def _png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_balance_command_on_demo_store(demo_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "bal"
    args = ["balance", "--profile", P, "--k", "15", "--cap", "3", "--store", str(demo_store)]
    res = CliRunner().invoke(_app(), [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    sites = read_sites(demo_store, read_geometry=False)
    table = pd.read_csv(out / f"balance_{P}.csv", dtype={"teryt": str})
    assert table["sites"].sum() == len(sites)
    assert table["ha"].sum() == pytest.approx(sites["area_ha"].sum(), rel=1e-6)
    assert table["plain_k_sites"].sum() == 15
    assert table["balanced_k_sites"].max() <= 3
    assert table["top_share_ha"].sum() == pytest.approx(1.0, abs=1e-3)
    short = pd.read_csv(out / f"balance_{P}_shortlist.csv", dtype={"teryt": str})
    plain = short[short["shortlist"] == "plain"]
    best = sites[sites[rank_col(P)] > 0].sort_values([rank_col(P), "site_id"]).head(15)
    assert plain["site_id"].tolist() == best["site_id"].tolist()
    bal = short[short["shortlist"] == "balanced"]
    assert bal["teryt"].nunique() >= plain["teryt"].nunique()
    assert bal["score"].mean() <= plain["score"].mean() + 1e-9
    page = (out / f"balance_{P}.html").read_text(encoding="utf-8")
    assert external_references(page) == []
    assert "Gini" in page and "cap" in page
    # labelled columns with units, in a scrolling box; shares in per cent
    heads = re.findall(r"<th>([^<]*)</th>", page)
    assert {"Gmina", "Area [ha]", "Tier A area [ha]", "Share of top-N area [%]"} <= set(heads)
    assert not {"ha_tier_A", "top_share_ha", "eligible_ha"} & set(heads)
    assert page.count('<div class="scroll">') == 3
    res = CliRunner().invoke(_app(), ["balance", "--profile", P, "--store", str(demo_store),
                                      "--out", str(tmp_path / "nocap")])  # fmt: skip
    nocap = (tmp_path / "nocap" / f"balance_{P}.html").read_text(encoding="utf-8")
    assert "none site(s)" not in nocap and "no gmina has a cap" in nocap
    b64 = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert b64, "the chart is not embedded"
    px = _png_pixels(base64.b64decode(b64.group(1)))
    assert px.shape[0] > 100 and px.shape[1] > 300
    assert ((px[..., 2] > 150) & (px[..., 0] < 100)).sum() > 200  # blue "balanced" bars


def test_balance_command_unknown_profile(demo_store: Path, tmp_path: Path) -> None:
    args = ["balance", "--profile", "nope", "--store", str(demo_store), "--out", str(tmp_path)]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 2 and "nope" in res.output and "logistics" in res.output


# --------------------------------------------------------------------------------------
# Site sheet
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def best_site(demo_store: Path) -> pd.Series:
    sites = read_sites(demo_store, read_geometry=False)
    return sites[sites[rank_col(P)] == 1].iloc[0]


def _pl(v: float, digits: int) -> str:
    return f"{v:,.{digits}f}".replace(",", "\u00a0").replace(".", ",")


def test_sheet_html_has_the_facts_in_both_languages(demo_store: Path, best_site) -> None:
    sid = best_site["site_id"]
    info = read_run_info(demo_store)
    pages = {lang: render_sheet(demo_store, sid, lang) for lang in ("pl", "en")}
    for lang, page in pages.items():
        assert external_references(page) == []
        assert '<svg class="location"' in page and 'class="site"' in page
        # every line of the location map stops at the frame (560 × 400 px)
        svg = page[page.index('<svg class="location"') : page.index("</svg>")]
        xy = np.array(re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", svg), dtype=float)
        assert len(xy) > 10 and xy.min() >= -0.5 and xy[:, 0].max() <= 560.5
        assert xy[:, 1].max() <= 400.5
        # a key of the map's symbols and the parcels numbered as in the parcel table
        assert 'class="key"' in page and svg.count('class="parcel-no"') == len(
            best_site["parcel_ids"].split(",")
        )
        assert f'<html lang="{lang}">' in page
        for pid in best_site["parcel_ids"].split(","):
            assert pid.strip() in page
        assert best_site["teryt"] in page and best_site["gmina"] in page
        for p in info["profiles"]:
            assert html.escape(p["title"]) in page or lang == "pl"
        assert info["data_dates"]["parcels"] in page and info["data_dates"]["flood"] in page
    pl, en = pages["pl"], pages["en"]
    assert "Karta terenu inwestycyjnego" in pl and "Investment site sheet" in en
    assert "Logistyka i magazyny" in pl and "Logistics and warehousing" in en
    assert f"{_pl(best_site['area_ha'], 2)}\u00a0ha" in pl
    assert f"{best_site['area_ha']:,.2f}\u00a0ha" in en
    assert f"{best_site['registered_area_ha']:,.2f}\u00a0ha" in en
    assert f"{_pl(best_site['time_junction_min'], 1)}\u00a0min" in pl
    assert f"{best_site['time_junction_min']:,.1f}\u00a0min" in en
    if not pd.isna(best_site["power_capacity_mw"]):
        assert f"{_pl(best_site['power_capacity_mw'], 1)}\u00a0MW" in pl
        assert f"{best_site['power_capacity_mw']:,.1f}\u00a0MW" in en
    assert "Uzbrojenie terenu" in pl and "Utilities" in en
    assert "Obszar zagrożenia powodziowego Q1%" in pl and "Q1% flood hazard zone" in en
    assert "Instrument planistyczny" in pl and "Planning instrument" in en
    assert str(best_site["zoning_symbol"]) in pl and str(best_site["zoning_symbol"]) in en
    assert "1 z " in pl and "1 of " in en  # rank 1 of the eligible sites for logistics


def test_sheet_unknown_site_and_language(demo_store: Path, best_site, tmp_path: Path) -> None:
    with pytest.raises(UnknownSiteError, match="S0000000bad"):
        render_sheet(demo_store, "S0000000bad")
    with pytest.raises(UnknownSiteError, match="x' OR '1'='1"):
        render_sheet(demo_store, "x' OR '1'='1")  # quoted, not injected
    with pytest.raises(ValueError, match="'de'"):
        render_sheet(demo_store, best_site["site_id"], "de")
    args = ["sheet", "S0000000bad", "--store", str(demo_store), "--out", str(tmp_path)]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 2 and "S0000000bad" in res.output
    assert not list(tmp_path.iterdir())


def test_sheet_command_writes_html(demo_store: Path, best_site, tmp_path: Path) -> None:
    sid = best_site["site_id"]
    args = ["sheet", sid, "--lang", "en", "--store", str(demo_store), "--out", str(tmp_path)]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    page = (tmp_path / f"sheet_{sid}_en.html").read_text(encoding="utf-8")
    assert "Investment site sheet" in page and sid in page


@pytest.mark.browser
def test_sheet_pdf_renders(demo_store: Path, best_site, tmp_path: Path) -> None:
    need(bool(shutil.which("chromium") or Path("/usr/bin/chromium").exists()), "chromium missing")
    try:
        import pypdfium2 as pdfium
    except ImportError:
        need(False, "pypdfium2 is not installed (pip install pypdfium2)")
    sid = best_site["site_id"]
    pdf_path = sheet_pdf(demo_store, sid, tmp_path / "sheet.pdf", lang="pl")
    assert pdf_path.read_bytes()[:5] == b"%PDF-"
    doc = pdfium.PdfDocument(str(pdf_path))
    assert 1 <= len(doc) <= 6
    page = doc[0]
    text = page.get_textpage().get_text_range()
    assert "Karta terenu inwestycyjnego" in text and sid in text
    px = np.asarray(page.render(scale=1).to_pil().convert("RGB")).astype(int)
    assert px.shape[0] > 700 and px.shape[1] > 500  # A4 at 72 dpi: 595 × 842
    ink = (px.sum(axis=2) < 600).mean()
    assert ink > 0.02, f"page 1 is nearly blank ({ink:.3%} ink)"
    red = (px[..., 0] > 150) & (px[..., 1] < 90) & (px[..., 2] < 90)
    assert red.sum() > 500  # the title and the site outline on the map


def test_servicing_plan_on_a_hand_made_region(tmp_path: Path) -> None:
    from omw_sites.reports.servicing import plan_extensions
    from omw_sites.scoring import load_profile

    path = tmp_path / "sewer_only.toml"
    path.write_text(
        """
name = "sewer_only"
[criteria.dist_sewer_m]
weight = 1
direction = "cost"
bounds = [0, 2000]
[[readiness]]
expr = "dist_sewer_m < 300"
gap = "no sewer within 300 m"
""",
        encoding="utf-8",
    )
    prof = load_profile(path)
    sites = pd.DataFrame(
        {
            "site_id": ["A", "B", "C"],
            "gmina": ["g1", "g2", "g3"],
            "area_ha": [10.0, 5.0, 2.0],
            "dist_sewer_m": [1000.0, 0.0, 1500.0],
            "zoning_class": "P",
            "planning_instrument": "mpzp",
            "plan_zone": "",
            "ownership": "private",
        }
    )
    plan = plan_extensions(sites, prof, {"sewer": 1000.0})
    t = plan.table.set_index("site_id")
    assert list(plan.table["site_id"]) == ["A", "C"]  # B is on the sewer already
    assert t.loc["A", "length_m"] == 1000 and t.loc["A", "cost_pln"] == 1_000_000
    assert t.loc["A", "score_before"] == pytest.approx(0.5)
    assert t.loc["A", "score_after"] == pytest.approx(1.0)
    assert (t.loc["A", "rank_before"], t.loc["A", "rank_after"]) == (2, 1)  # ties with B
    assert (t.loc["C", "rank_before"], t.loc["C", "rank_after"]) == (3, 1)
    assert t.loc["A", "value_per_mpln"] == pytest.approx(0.5 * 10 / 1.0)
    assert t.loc["C", "value_per_mpln"] == pytest.approx(0.75 * 2 / 1.5)
    assert (t["tier_after"] == "A").all() and (t["tier_before"] == "B").all()
    assert t.loc["A", "ha_into_tier_a"] == 10.0
    with pytest.raises(ValueError, match="positive"):
        plan_extensions(sites, prof, {"sewer": 0.0})


def test_servicing_command_on_the_pipeline_store(demo_store: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run(
        [
            sys.executable, "-m", "omw_sites", "servicing", "--profile", "manufacturing",
            "--store", str(demo_store), "--out", str(tmp_path), "--cost", "water=800",
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(tmp_path / "servicing_manufacturing.csv")
    assert len(table) > 0 and (table["score_gain"] >= 0).all()
    assert table["value_per_mpln"].is_monotonic_decreasing
    water = table[table["network"] == "water"]
    assert (water["cost_pln"] - water["length_m"] * 800).abs().max() <= 50  # rounded to 100
    from omw_sites.reports.formatting import coded

    page = (tmp_path / "servicing_manufacturing.html").read_text(encoding="utf-8")
    check_offline(page)
    assert "extensions" in page
    # a legend of the networks drawn and the ranked table, with labelled columns
    boxes = "\n".join(
        json.loads(m) for m in re.findall(r'div\.innerHTML = ("(?:[^"\\]|\\.)*");', page)
    )
    assert "omw-legend-title" in boxes and "site it serves" in boxes
    for net in table["network"].head(200).unique():  # networks in words, from the catalogue
        assert f"{coded('network', net, 'en')} extension (" in boxes
    ranked = re.search(r'<table class="omw-ranked-table">(.*?)</table>', boxes, re.S).group(1)
    assert "Length [m]" in ranked and "Cost [PLN]" in ranked
    first = re.findall(r"<td>([^<]*)</td>", ranked.split("<tbody>")[1])[:4]
    assert first == [
        "1",
        table["site_id"].iloc[0],
        coded("network", table["network"].iloc[0], "en"),
        f"{table['length_m'].iloc[0]:,.0f}",
    ]

    from omw_sites.reports.servicing import extension_lines, plan_from_store

    plan = plan_from_store(demo_store, "manufacturing")
    lines = extension_lines(demo_store, plan, top=30)
    # each drawn extension runs from the nearest existing line to the site: its length is
    # the measured distance to that network
    assert np.allclose(lines.geometry.length, lines["length_m"], atol=0.5)
    bad = subprocess.run(
        [sys.executable, "-m", "omw_sites", "servicing", "--profile", "manufacturing",
         "--store", str(demo_store), "--cost", "water=lots"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert bad.returncode == 2 and "water=lots" in bad.stderr


def test_report_command_writes_a_self_contained_analysis(demo_store: Path, tmp_path: Path):
    import base64
    import io
    import re
    import subprocess
    import sys

    from PIL import Image

    from omw_sites.store import read_sites

    res = subprocess.run(
        [sys.executable, "-m", "omw_sites", "report", "--profile", "logistics",
         "--draws", "100", "--store", str(demo_store), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "report_logistics.html").read_text(encoding="utf-8")
    check_offline(page)
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 3  # distributions, rank intervals, balance
    for data in images:
        img = Image.open(io.BytesIO(base64.b64decode(data))).convert("L")
        assert img.size[0] > 300 and len(np.unique(np.asarray(img))) > 20  # a drawn chart
    sites = read_sites(demo_store, read_geometry=False)
    first = sites.loc[sites["rank_logistics"] == 1, "site_id"].iloc[0]
    assert first in page and "Regional balance" in page and "Utility extensions" in page


def test_supply_by_data_driven_segment() -> None:
    from omw_sites.reports.balance import gmina_supply

    sites = pd.DataFrame(
        {
            "site_id": ["a", "b", "c", "d"],
            "teryt": ["1", "1", "2", "2"],
            "gmina": ["G1", "G1", "G2", "G2"],
            "area_ha": [1.0, 2.0, 4.0, 8.0],
            "score_p": [0.9, 0.8, 0.7, np.nan],
            "rank_p": [1, 2, 3, 0],
            "ownership": "private",
            "segment_p": [0, 1, 1, -1],  # d was not segmented (excluded)
        }
    )
    t = gmina_supply(sites, "p", top_n=2).set_index("teryt")
    assert t.loc["1", "sites_segment_0"] == 1 and t.loc["1", "ha_segment_1"] == 2.0
    assert t.loc["2", "sites_segment_1"] == 1 and t.loc["2", "ha_segment_1"] == 4.0
    assert t["ha_segment_0"].sum() + t["ha_segment_1"].sum() == 7.0


def test_sheet_escapes_what_the_store_holds(tmp_path: Path) -> None:
    # the sheet's words come from the store (gmina names, explanations): markup in them is
    # shown as text, never interpreted
    from sample_store import sample_data

    from omw_sites.store import open_inventory

    sites, reference, info = sample_data(20)
    sites.loc[0, "gmina"] = "<script>alert(1)</script> & Co"
    sites.loc[0, f"drivers_{P}"] = 'near "the" <b>road</b>'
    path = tmp_path / "omw_sites.gpkg"
    open_inventory(path).apply(sites, reference, info)
    page = render_sheet(path, sites.loc[0, "site_id"], "en")
    assert "<script>" not in page and "<b>road" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    assert "&lt;b&gt;road&lt;/b&gt;" in page


# --------------------------------------------------------------------------------------
# The offer sheet: what `site edit` records is printed; drivers and gaps in the language
# --------------------------------------------------------------------------------------


def test_drivers_and_gaps_in_polish_and_english_known_values() -> None:
    from omw_sites.scoring.explain import readiness_rules, site_drivers, site_gaps
    from omw_sites.scoring.profiles import load_profiles

    prof = load_profiles(["logistics"])[0]
    # only the junction measured: 6 min on the piecewise [[0,1],[3,0.9],[10,0.45],[25,0]]
    # → value 0.9 − 3/7·0.45 = 0.7071; lift 0.35 · (0.7071 − 0.5) = 0.0725
    site = {"time_junction_min": 6.0, "area_ha": np.nan}
    assert site_drivers(site, prof, "en") == ["+ motorway junction 6.0 min (+0.07)"]
    assert site_drivers(site, prof, "pl") == [
        "+ węzeł autostrady/drogi ekspresowej 6,0 min (+0,07)"
    ]
    # water at 100 m, sewer at 659 m: only the sewer fails the "water and sewer" check
    site = {
        "area_ha": 10.0,
        "zoning_class": "P",
        "planning_instrument": "mpzp",
        "plan_zone": "",
        "ownership": "private",
        "dist_power_m": 50.0,
        "dist_water_m": 100.0,
        "dist_sewer_m": 659.0,
    }
    assert site_gaps(site, prof, "en")[0] == "no sewer within 300 m"
    assert site_gaps(site, prof, "pl")[0] == "brak kanalizacji w promieniu 300 m"
    assert site_gaps({**site, "dist_water_m": 400.0}, prof, "en")[0] == (
        "no water and sewer within 300 m"  # both fail: the profile's own words
    )
    assert site_gaps({**site, "area_ha": 1.0, "zoning_class": "MN"}, prof, "pl")[:2] == [
        "poniżej 2 ha",
        "przeznaczenie w planie niezgodne z profilem",
    ]
    assert readiness_rules(prof, "en") == [
        "at least 2 ha",
        "zoning compatible",
        "power line within 300 m",
        "water main within 300 m + sewer within 300 m",
    ]
    assert readiness_rules(prof, "pl")[2] == "linia elektroenergetyczna w promieniu 300 m"
    with pytest.raises(ValueError, match="'de'"):
        site_drivers(site, prof, "de")


def test_english_drivers_are_the_stored_text(demo_store: Path) -> None:
    # rebuilt from the criterion values and the run's weights, they read as the engine wrote
    from omw_sites.scoring.explain import site_drivers, site_gaps
    from omw_sites.scoring.profiles import load_profiles

    sites = read_sites(demo_store, read_geometry=False)
    info = read_run_info(demo_store)
    partial = 0
    for prof in load_profiles([p["name"] for p in info["profiles"]]):
        weights = info["scoring"][prof.name]["weights"]
        for _, r in sites.iterrows():
            en = site_drivers(r, prof, "en", weights)
            assert "; ".join(en) == r[f"drivers_{prof.name}"], (prof.name, r["site_id"])
            pl = site_drivers(r, prof, "pl", weights)
            lifts = lambda xs: re.findall(r"\([+−][\d.,]+\)$", "\n".join(xs), re.M)  # noqa: E731
            assert lifts(pl) == [x.replace(".", ",") for x in lifts(en)]
            assert len(pl) == len(en)
            gaps = "; ".join(site_gaps(r, prof, "en"))
            stored = r[f"gaps_{prof.name}"]
            assert gaps == stored, (prof.name, r["site_id"])  # the same failing terms
            partial += "no sewer within" in gaps or "no water main within" in gaps
    assert partial > 0


def _store_copy(demo_store: Path, tmp_path: Path) -> Path:
    store = tmp_path / "omw_sites.gpkg"
    shutil.copyfile(demo_store, store)
    return store


def _pdf_text(path: Path) -> str:
    try:
        import pypdfium2 as pdfium
    except ImportError:
        need(False, "pypdfium2 is not installed (pip install pypdfium2)")
    doc = pdfium.PdfDocument(str(path))
    return "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))


@pytest.mark.browser
def test_offer_sheet_prints_what_site_edit_recorded(
    demo_store: Path, best_site, tmp_path: Path
) -> None:
    need(bool(shutil.which("chromium") or Path("/usr/bin/chromium").exists()), "chromium missing")
    from omw_sites.cli import app

    store, out = _store_copy(demo_store, tmp_path), tmp_path / "sheets"
    sid = best_site["site_id"]
    run = lambda *a: CliRunner().invoke(app, [*a, "--store", str(store)])  # noqa: E731
    res = run(
        "site", "edit", sid, "--by", "test", "--price", "320",
        "--contact", "COI Marki, coi@example.pl",
        "--document", "MPZP uchwała=https://bip.example.pl/mpzp.pdf",
        "--document", "internal:Wycena=https://intranet.example/wycena.pdf",
        "--sez", "PSI: decyzja o wsparciu", "--notes", "Wjazd od ul. Polnej",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert run("site", "set-status", sid, "reserved", "--by", "test").exit_code == 0
    for lang in ("pl", "en"):
        res = run("sheet", sid, "--lang", lang, "--pdf", "--out", str(out))
        assert res.exit_code == 0, res.output
    pages = {lang: (out / f"sheet_{sid}_{lang}.html").read_text("utf-8") for lang in ("pl", "en")}
    for lang, page in pages.items():
        offer = page[
            page.index('class="offer"') : page.index("</section>", page.index('class="offer"'))
        ]
        assert "coi@example.pl" in offer and "PSI: decyzja o wsparciu" in offer
        assert "Wjazd od ul. Polnej" in offer
        assert '<a href="https://bip.example.pl/mpzp.pdf">MPZP uchwała</a>' in offer
        assert "intranet.example" not in page and "Wycena" not in page  # not public
        assert "brak w inwentaryzacji" not in offer and "not in the inventory" not in offer
        assert (out / f"sheet_{sid}_{lang}.pdf").stat().st_mode & 0o777 == 0o644
        assert (out / f"sheet_{sid}_{lang}.html").stat().st_mode & 0o777 == 0o644
    pl, en = (_pdf_text(out / f"sheet_{sid}_{lang}.pdf") for lang in ("pl", "en"))
    assert "320,00\u00a0zł/m²" in pl and "320.00\u00a0PLN/m²" in en
    assert "zarezerwowany" in pl and "reserved" in en
    # a readable title: gmina, precinct, hectares, designation; the ID only as a reference
    precinct = best_site["parcel_ids"].split(",")[0].split(".")[1]
    area = f"{best_site['area_ha']:.2f}"
    head_pl = f"{best_site['gmina']}, obręb {precinct} · {area.replace('.', ',')}\u00a0ha"
    assert head_pl in pl.splitlines()[1]
    assert f"{best_site['gmina']}, precinct {precinct} · {area}\u00a0ha" in en.splitlines()[1]
    assert best_site["zoning_symbol"] in pl.splitlines()[1]
    # nearest places by name (the demo region's reference layers name them)
    airports = read_layer_names(store, "airports")
    assert any(a in pl for a in airports) and any(a in en for a in airports)
    assert str(best_site["junction_name"]) in pl
    # drivers and gaps in Polish; the gap names only the network that fails
    assert "węzeł autostrady/drogi ekspresowej" in pl and "motorway junction" not in pl
    gaps_pl = " ".join(pl.split())
    if best_site["dist_water_m"] < 300 <= best_site["dist_sewer_m"]:
        assert "brak kanalizacji w promieniu 300 m" in gaps_pl
        assert "brak wodociągu w promieniu 300 m" not in gaps_pl
    assert "Gotowość A/B/C" in pl and "Readiness tiers A/B/C" in en
    assert "at least 2 ha" in " ".join(en.split())  # the logistics tier conditions
    assert re.search(r"\d\.\d ha", pl.replace("EPSG", "")) is None  # no dot decimals


def read_layer_names(store: Path, layer: str) -> list[str]:
    from omw_sites.store import read_layer

    return [str(n) for n in read_layer(store, layer)["name"]]
