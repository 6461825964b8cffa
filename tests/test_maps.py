"""Offline Folium maps: self-contained HTML, legend, popups with units, and a headless render."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import zlib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sample_store import make_sample_store

from omw_sites.browser import CHROMIUM_TIMEOUT_S, chromium_command, find_chromium
from omw_sites.layers import PROFILES_DEFAULT
from omw_sites.maps import available_profiles, render_map, write_maps
from omw_sites.maps.assets import (
    LEAFLET_VERSION,
    check_offline,
    external_references,
    leaflet_css,
)
from omw_sites.maps.hexbins import hex_cells, hex_polygons
from omw_sites.maps.style import criterion_fields, palette, score_classes
from omw_sites.store import open_inventory, read_sites


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_store(tmp_path_factory.mktemp("maps") / "omw_sites.gpkg", n=500)


@pytest.fixture(scope="module")
def page(store: Path) -> str:
    return render_map(store, "logistics")


def _config(html: str) -> dict:
    match = re.search(r"omw\.configure\((\{.*?\})\);</script>", html)
    assert match, "the page does not configure the popup fields"
    return json.loads(match.group(1))


def _controls(html: str) -> str:
    """The HTML of the title box and legend (embedded as JS strings)."""
    return "\n".join(
        json.loads(m) for m in re.findall(r'div\.innerHTML = ("(?:[^"\\]|\\.)*");', html)
    )


def _site_features(html: str) -> list[dict]:
    """Site features (those with an ``i`` property) from the embedded GeoJSON layers."""
    feats = []
    for match in re.finditer(r"_add\((\{\"features\".*?)\);\n", html):
        fc = json.loads(match.group(1))
        feats += [f for f in fc["features"] if "i" in f["properties"]]
    return feats


# --------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------


def test_page_has_no_external_urls(page: str) -> None:
    assert external_references(page) == []
    for tag in re.findall(r"<(?:script|link)\b[^>]*>", page, flags=re.IGNORECASE):
        assert "http://" not in tag and "https://" not in tag, tag
        assert "src=" not in tag.lower() and "href=" not in tag.lower(), tag
    for cdn in ("cdn.jsdelivr", "code.jquery", "cdnjs.cloudflare", "bootstrapcdn"):
        assert cdn not in page
    assert f"Leaflet {LEAFLET_VERSION}, a JS library" in page  # vendored Leaflet is inlined
    assert "images/layers.png" not in page and "data:image/png;base64," in page


def test_check_offline_refuses_cdn_links() -> None:
    bad = '<html><head><script src="https://cdn.example.org/x.js"></script></head></html>'
    assert external_references(bad) == ["https://cdn.example.org/x.js"]
    with pytest.raises(RuntimeError, match="external resource"):
        check_offline(bad)
    assert "url(images/" not in leaflet_css()


def test_legend_and_title(store: Path, page: str) -> None:
    boxes = _controls(page)
    assert "omw-legend" in page and "omw-swatch" in boxes
    assert "Score – Logistics" in boxes
    sites = read_sites(store, read_geometry=False)
    classes = score_classes(sites["score_logistics"].to_numpy())
    for i in range(classes.k):
        assert classes.label(i) in boxes
        assert classes.colors[i] in boxes
        assert f"{classes.counts[i]:,} sites" in boxes
    n_excluded = int(sites["score_logistics"].isna().sum())
    assert n_excluded > 0 and f"excluded ({n_excluded:,}; layer off)" in boxes
    assert "Logistics: investment sites" in boxes
    assert "Data date: parcels 2026-10-01" in boxes  # from run_info
    assert "<title>Logistics – investment sites (omw-sites)</title>" in page


def test_layers_present(page: str) -> None:
    for name in (
        "Motorway junctions",
        "Rail",
        "Rail stations",
        "Airports",
        "Utilities: water",
        "Utilities: power",
        "Substations",
        "Flood hazard zone (Q1%)",
        "Natura 2000",
        "Gminy (boundaries)",
        "Main roads",
        "Excluded sites",
    ):
        assert f'"{name}' in page, name
    assert "L.control.layers" in page


def test_popups_carry_units(store: Path, page: str) -> None:
    config = _config(page)
    sites = read_sites(store, read_geometry=False).set_index("site_id")
    by_label = {f.label: f for f in criterion_fields(sites.columns)}
    # a popup lists a handful of criteria (the profile's heaviest), each with its unit
    assert 1 <= len(config["fields"]) <= 5
    for f in config["fields"]:
        assert f["unit"] == by_label[f["label"]].unit
    assert config["nEligible"] == int(sites["score_logistics"].notna().sum())
    # criteria values are stored in the display unit: metres -> km, share -> %
    feats = _site_features(page)
    assert len(feats) == 500  # all sites fit the polygon budget
    for feat in feats[:20]:
        p = feat["properties"]
        row = sites.loc[p["i"]]
        for k, f in enumerate(config["fields"]):
            field = by_label[f["label"]]
            want = row[field.column] * field.factor
            assert p["c"][k] == pytest.approx(want, abs=10**-field.decimals)
        assert p["g"] == row["gmina"] and p["t"] == row["teryt"]
        if row["excluded_logistics"]:
            assert p["x"] == row["excluded_logistics"] and "r" not in p
        else:
            assert p["r"] == row["rank_logistics"]


def test_criterion_fields_units_and_weights() -> None:
    cols = ["dist_junction_m", "flood_share", "power_capacity_mw", "slope_mean_pct", "area_ha"]
    fields = criterion_fields(cols, weights={"power_capacity_mw": 0.2, "dist_junction": 0.5})
    assert [f.column for f in fields] == [
        "dist_junction_m",
        "power_capacity_mw",
        "flood_share",
        "slope_mean_pct",
    ]
    assert [f.unit for f in fields] == ["km", "MW", "%", "%"]
    assert fields[0].weight == 0.5 and fields[2].weight is None


def test_every_profile_renders_and_index_links_them(store: Path, tmp_path: Path) -> None:
    assert list(available_profiles(store)) == list(PROFILES_DEFAULT)
    paths = write_maps(store, tmp_path / "maps", sheets=0)
    names = [n for p in PROFILES_DEFAULT for n in (f"{p}.html", f"{p}_pl.html")]
    assert [p.name for p in paths] == [*names, "index.html", "index_pl.html"]
    index = paths[-2].read_text(encoding="utf-8")
    index_pl = paths[-1].read_text(encoding="utf-8")  # the Polish index: Polish maps first
    assert 'href="index_pl.html"' in index and 'href="index.html"' in index_pl
    assert "Mapy według profilu inwestora" in index_pl and '<html lang="pl">' in index_pl
    for profile in PROFILES_DEFAULT:
        html = (tmp_path / "maps" / f"{profile}.html").read_text(encoding="utf-8")
        assert external_references(html) == []
        assert f"Investor profile: {profile}" in html
        assert f'href="{profile}.html"' in index and f'href="{profile}_pl.html"' in index
        assert f'href="{profile}_pl.html"' in index_pl and f'href="{profile}.html"' in index_pl
        pl = (tmp_path / "maps" / f"{profile}_pl.html").read_text(encoding="utf-8")
        assert external_references(pl) == []
        assert f"Profil inwestora: {profile}" in _controls(pl) and "Ocena – " in _controls(pl)
        assert _config(pl)["lang"] == "pl" and _config(pl)["words"]["price"] == "Cena"


def test_unknown_profile_names_the_valid_ones(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid profiles: logistics, manufacturing, office"):
        render_map(store, "datacentre")
    with pytest.raises(ValueError, match="datacentre"):
        write_maps(store, tmp_path / "none", ["logistics", "datacentre"])
    assert not (tmp_path / "none" / "logistics.html").exists()  # nothing half-written


def test_polygon_budget_and_hexagon_summary(store: Path) -> None:
    html = render_map(store, "office", max_polygons=50)
    feats = _site_features(html)
    assert len(feats) == 50
    ranks = sorted(f["properties"]["r"] for f in feats)
    assert ranks == list(range(1, 51))  # the best 50 by rank (no ties in the sample)
    assert "Other eligible sites, per hexagon" in html
    assert "Excluded sites, per hexagon" in html  # budget spent, excluded summarised
    assert "summarised in hexagons" in html


def test_minimal_store_without_run_info_or_reference_layers(tmp_path: Path) -> None:
    sites = read_sites(make_sample_store(tmp_path / "full.gpkg", n=40))
    slim = sites[["site_id", "score_office", "rank_office", "geometry"]]
    path = tmp_path / "slim.gpkg"
    open_inventory(path).apply(slim)
    assert available_profiles(path) == {"office": "Office"}
    html = render_map(path, "office")
    assert external_references(html) == []
    assert len(_site_features(html)) == 40
    assert "Data date: unknown" in _controls(html)


def test_tiles_url_is_optional(store: Path) -> None:
    url = "http://127.0.0.1:8080/tiles/{z}/{x}/{y}.png"
    html = render_map(store, "logistics", tiles_url=url, tiles_attribution="local tiles")
    assert "L.tileLayer" in html and url in html
    assert external_references(html) == []  # tiles are fetched by Leaflet, not <script>
    assert "L.tileLayer" not in render_map(store, "logistics")


def test_score_classes() -> None:
    scores = np.r_[np.random.default_rng(2).uniform(0, 1, 1000), np.nan]
    quint = score_classes(scores)
    assert quint.k == 5 and sum(quint.counts) == 1000
    assert max(quint.counts) - min(quint.counts) <= 2
    assert quint.colors == palette(5)
    assert quint.classify([np.nan])[0] == -1
    fixed = score_classes(scores, method="fixed")
    assert fixed.label(0) == "0.00–0.20" and fixed.label(4) == "0.80–1.00"
    assert list(fixed.classify([0.05, 0.2, 0.99, 1.0])) == [0, 1, 4, 4]
    assert score_classes([0.5, 0.5]).k == 1
    with pytest.raises(ValueError, match="quantile"):
        score_classes(scores, method="jenks")


def test_hex_cells_hold_their_points() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(600000, 640000, 2000), rng.uniform(470000, 500000, 2000)
    q, r = hex_cells(x, y, 750.0)
    hexes = hex_polygons(q, r, 750.0)
    assert shapely.covers(hexes, shapely.points(x, y)).all()
    assert np.allclose(shapely.area(hexes), 1.5 * np.sqrt(3) * 750.0**2)


# --------------------------------------------------------------------------------------
# Headless Chromium: the page draws offline
# --------------------------------------------------------------------------------------


def _chromium() -> str:
    try:
        return find_chromium()
    except FileNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def _run_chromium(exe: str, profile_dir: Path, url: str, *args: str) -> bytes:
    cmd = chromium_command(
        exe, profile_dir, "--virtual-time-budget=5000", "--window-size=1200,900", *args, url
    )
    proc = subprocess.run(cmd, capture_output=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc.stdout


def _decode_png(data: bytes) -> np.ndarray:
    """RGB(A) pixels of an 8-bit PNG (Pillow when installed, else a small zlib decoder)."""
    try:
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except ImportError:
        pass
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int64)
    for row in range(height):
        kind = raw[row * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, row * (stride + 1) + 1).astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            cur = (line + prev) % 256
        else:  # Average, Paeth: sequential within the row
            cur_b, up, ln = bytearray(stride), prev.tolist(), line.tolist()
            for i in range(stride):
                a = cur_b[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    cur_b[i] = (ln[i] + ((a + b) >> 1)) & 0xFF
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                    cur_b[i] = (ln[i] + pred) & 0xFF
            cur = np.frombuffer(bytes(cur_b), np.uint8).astype(np.int64)
        out[row] = cur
        prev = cur
    return out.reshape(height, width, bpp)[:, :, :3]


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


@pytest.mark.browser
def test_map_draws_in_headless_chromium(store: Path, page: str, tmp_path: Path) -> None:
    exe = _chromium()
    html_path = tmp_path / "logistics.html"
    html_path.write_text(page, encoding="utf-8")
    png = tmp_path / "map.png"
    _run_chromium(exe, tmp_path / "profile-shot", html_path.as_uri(), f"--screenshot={png}")

    # a copy that opens the best site's popup, to check its rendered text
    map_name = re.search(r"var (map_[0-9a-f]+) = L\.map\(", page).group(1)
    opener = (
        "<script>(function () { var done = false; "
        f"{map_name}.eachLayer(function (l) {{ var p = l.feature && l.feature.properties; "
        "if (!done && p && p.r === 1 && l.openPopup) { l.openPopup(); done = true; } }); "
        "})();</script>"
    )
    popup_path = tmp_path / "popup.html"
    popup_path.write_text(page.replace("</html>", opener + "</html>"), encoding="utf-8")
    dom = _run_chromium(exe, tmp_path / "profile-dom", popup_path.as_uri(), "--dump-dom")
    dom_text = dom.decode("utf-8", errors="replace")

    assert "leaflet-container" in dom_text, "Leaflet did not initialise (assets not loaded?)"
    n_paths = len(re.findall(r'<path[^>]*class="leaflet-interactive"', dom_text))
    assert n_paths >= 400, f"only {n_paths} SVG paths drawn"  # ~409 eligible sites + layers
    assert "omw-legend" in dom_text and "leaflet-control-layers" in dom_text
    popup = re.search(r'<div class="leaflet-popup-content"[^>]*>(.*?)</div></div>', dom_text)
    assert popup, "the popup of the best site did not open"
    text = popup.group(1)
    for expected in ("S0", "rank", "of ", " ha", "Status", "Price", "TERYT"):
        assert expected.lower() in text.lower(), (expected, text)

    pixels = _decode_png(png.read_bytes())
    assert pixels.shape[:2] == (900, 1200)
    flat = pixels.reshape(-1, 3).astype(float)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50, f"screenshot has only {len(colours)} colours (blank page?)"
    background = _hex_rgb("#e4e2dc")
    not_bg = np.abs(flat - background).max(axis=1) > 12
    assert not_bg.mean() > 0.03, f"only {not_bg.mean():.1%} of the screenshot is drawn"
    # the sites: pixels close to the score palette (fill blended over the background)
    hits = []
    for color in palette(5):
        for under in (background, _hex_rgb("#fbfaf6")):
            blended = 0.85 * _hex_rgb(color) + 0.15 * under
            hits.append(int((np.abs(flat - blended).max(axis=1) < 14).sum()))
    per_class = [hits[i] + hits[i + 1] for i in range(0, len(hits), 2)]
    assert sum(c >= 20 for c in per_class) >= 4, f"palette pixels per class: {per_class}"


def test_large_utility_layers_keep_only_merged_trunk_lines() -> None:
    from shapely import LineString

    from omw_sites.maps.map_data import trunk_lines

    n = 6000
    lines = [
        LineString([(600000 + 10 * i, 480000), (600000 + 10 * i + 10, 480000)]) for i in range(n)
    ]
    gdf = gpd.GeoDataFrame(
        {
            "network": ["power", "water", "telecom"] * (n // 3),
            "status": "existing",
            "voltage": ["s", "", ""] * (n // 3),
            "diameter_mm": [np.nan, 250.0, np.nan] * (n // 3),
        },
        geometry=lines,
        crs="EPSG:2180",
    )
    gdf.loc[gdf.index[1::6], "diameter_mm"] = 100.0  # half the water pipes are service pipes
    out, cols = trunk_lines(gdf, ["network", "status"])
    assert sorted(out["network"]) == ["power", "water"]  # telecom has no trunk lines
    assert cols == ["network", "status", "trunk"]
    power = out.loc[out["network"] == "power"].geometry.iloc[0]
    assert power.length == pytest.approx(10.0 * (n // 3))
    water = out.loc[out["network"] == "water"].geometry.iloc[0]
    assert water.length == pytest.approx(10.0 * (n // 6))


def test_rank_changes_classes() -> None:
    from omw_sites.maps.comparison_map import rank_changes

    # 5 sites eligible under A and 5 under B; the last site is excluded under both
    sites = pd.DataFrame({"rank_a": [1, 2, 3, 4, 0, 5, 0], "rank_b": [4, 2, 1, 0, 3, 5, 5]})
    sites.loc[6, "rank_a"] = 0
    sites.loc[6, "rank_b"] = 0
    sites.loc[5, "rank_b"] = 5
    sites.loc[0, "rank_b"] = 4  # B eligible: ranks 4, 2, 1, 3, 5
    ch = rank_changes(sites, "a", "b")
    assert list(ch.index) == [0, 1, 2, 3, 4, 5]
    # percentiles: A rank/5, B rank/5; change = A − B (B better > 0)
    assert ch.loc[[0, 1, 2, 5], "change"].tolist() == pytest.approx([-0.6, 0.0, 0.4, 0.0])
    assert ch["class"].tolist() == [
        "much lower in B",
        "about the same",
        "much higher in B",
        "eligible in A only",
        "eligible in B only",
        "about the same",
    ]
    small = pd.DataFrame({"rank_a": list(range(1, 21)), "rank_b": [2, 1] + list(range(3, 21))})
    assert rank_changes(small, "a", "b")["class"].iloc[:2].tolist() == [
        "lower in B",  # 1/20 → 2/20: −0.05 is "lower", not "the same"
        "higher in B",
    ]


def test_comparison_map_is_offline_and_counts_classes(store: Path) -> None:
    from omw_sites.maps import render_comparison
    from omw_sites.maps.comparison_map import rank_changes

    page = render_comparison(store, "logistics", "office")
    check_offline(page)
    sites = read_sites(store, read_geometry=False)
    counts = rank_changes(sites, "logistics", "office")["class"].value_counts()
    assert counts.sum() > 0
    for name, n in counts.items():
        assert name in page and f"{n:,} sites" in page
    assert "Rank change: A = Logistics" in page
    with pytest.raises(ValueError, match="valid profiles"):
        render_comparison(store, "logistics", "nope")
    with pytest.raises(ValueError, match="two different"):
        render_comparison(store, "office", "office")


# --------------------------------------------------------------------------------------
# A folder of maps a planner opens from disk: Playwright driving Debian's chromium
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo store with a price, a reserved and a sold site; its maps, sheets, a
    comparison map and a balance report written into one folder."""
    import shutil

    from typer.testing import CliRunner

    from omw_sites.cli import app
    from omw_sites.maps import load_map_data, render_comparison, write_index

    tmp = tmp_path_factory.mktemp("folder")
    store = tmp / "omw_sites.gpkg"
    shutil.copyfile(demo_store, store)
    sites = read_sites(store, read_geometry=False)
    ranked = sites[sites["rank_logistics"] > 0].sort_values("rank_logistics")
    best, reserved, sold = (str(s) for s in ranked["site_id"].iloc[:3])
    inv = open_inventory(store)
    inv.edit(best, {"price_pln_m2": 320.0, "contact": "COI"}, "test")
    inv.set_status(reserved, "reserved", "test")
    inv.set_status(sold, "sold", "test")
    out = tmp / "maps"
    write_maps(store, out, ["logistics", "office"], sheets=2)
    (out / "compare_logistics_office.html").write_text(
        render_comparison(store, "logistics", "office"), encoding="utf-8"
    )
    res = CliRunner().invoke(
        app, ["balance", "--profile", "logistics", "--store", str(store), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    write_index(out, load_map_data(store))
    return {
        "store": store,
        "demo_store": demo_store,
        "out": out,
        "best": best,
        "reserved": reserved,
        "sold": sold,
    }


def test_outputs_are_world_readable_and_the_index_links_them_all(folder: dict) -> None:
    out = folder["out"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o644, path
    assert folder["demo_store"].stat().st_mode & 0o777 == 0o600  # the store stays private
    index = (out / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', index))
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")} - {"index.html"}
    assert pages <= links, pages - links
    assert {"logistics.html", "office.html", "compare_logistics_office.html"} <= links
    assert "balance_logistics.html" in links
    assert f"sheets/sheet_{folder['best']}_pl.html" in links
    assert all((out / link).is_file() for link in links)


def _open_best_popup(page, site_id: str) -> None:
    page.evaluate(
        """(id) => { for (const k in window) { const m = window[k];
             if (k.startsWith('map_') && m && m.eachLayer) { m.eachLayer(l => {
               const p = l.feature && l.feature.properties;
               if (p && p.i === id && l.openPopup) { l.openPopup(); } }); } } }""",
        site_id,
    )
    page.wait_for_selector(".leaflet-popup-content .omw-popup")


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [(1200, 900), (390, 844)], ids=["desktop", "phone"])
def test_map_from_disk_symbols_popup_and_sheet_link(
    folder: dict, viewport: tuple[int, int], tmp_path: Path
) -> None:
    exe = _chromium()
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    out, best = folder["out"], folder["best"]
    w, h = viewport
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": w, "height": h})
        page.goto((out / "logistics.html").as_uri())
        page.wait_for_selector(".omw-legend")
        # airports, junctions and stations drawn filled, as the legend's dots show
        for fill in ("#54278f", "#ffffff", "#4292c6"):
            marks = page.locator(f'path.leaflet-interactive[fill="{fill}"]')
            assert marks.count() > 0, fill
            assert marks.first.get_attribute("fill-opacity") == "1"
        dot = page.locator(".omw-legend .omw-swatch-dot").first
        assert "rgb(84, 39, 143)" in [
            page.locator(".omw-legend .omw-swatch-dot")
            .nth(i)
            .evaluate("e => getComputedStyle(e).backgroundColor")
            for i in range(page.locator(".omw-legend .omw-swatch-dot").count())
        ]
        assert dot.is_visible() or w < 500
        # gmina names on the map
        names = read_layer_names(folder["store"], "gminy")
        labels = page.locator(".leaflet-tooltip.omw-place").all_inner_texts()
        assert sorted(labels) == sorted(names)
        # the reserved site: dashed outline; legend rows for reserved and sold
        legend = page.locator(".omw-legend").inner_text()
        assert "reserved (1)" in legend and "sold or withdrawn (1)" in legend
        assert page.locator('path[stroke-dasharray="5 4"]').count() == 1
        # the scale bar in metric units only (no miles or feet)
        scale = page.locator(".leaflet-control-scale-line").all_inner_texts()
        assert len(scale) == 1 and scale[0].endswith(("m", "km")), scale
        # the popup: a few facts, status and price, no wider than the window
        _open_best_popup(page, best)
        popup = page.locator(".leaflet-popup")
        box = popup.bounding_box()
        assert box is not None and box["width"] <= min(w, 400), box
        content = page.locator(".leaflet-popup-content")
        # nothing spills: no horizontal overflow, every value cell wide enough to read
        assert content.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        tds = content.locator("td")
        widths = [tds.nth(i).bounding_box()["width"] for i in range(tds.count())]
        assert min(widths) >= 30, widths
        inside = "e => { const r = e.getBoundingClientRect(); "
        inside += "return r.left >= 0 && r.right <= innerWidth; }"
        assert content.evaluate(inside)
        rows = page.locator(".leaflet-popup-content tr")
        assert 6 <= rows.count() <= 11, rows.count()
        text = page.locator(".leaflet-popup-content").inner_text()
        assert "Status" in text and "available" in text and "320.00 PLN/m²" in text
        shot = _decode_png(page.screenshot())
        assert shot.shape[:2] == (h, w)
        purple = (np.abs(shot.astype(int) - _hex_rgb("#54278f")).max(axis=2) < 20).sum()
        assert purple >= 20  # the airports' fill on screen, not a hollow ring
        # the sheet link works from disk
        href = page.locator(".leaflet-popup-content .omw-sheet a").get_attribute("href")
        assert href == f"sheets/sheet_{best}_en.html"
        sheet = browser.new_page()
        sheet.goto((out / href).as_uri())
        assert "Investment site sheet" in sheet.title() or "Investment site sheet" in (
            sheet.locator("body").inner_text()
        )
        assert "320.00" in sheet.locator("section.offer").inner_text()
        # the Polish map: its words, Polish numbers and the Polish sheet
        page.goto((out / "logistics_pl.html").as_uri())
        page.wait_for_selector(".omw-legend")
        assert "Lotniska" in page.locator(".omw-legend").inner_text()
        _open_best_popup(page, best)
        text = page.locator(".leaflet-popup-content").inner_text()
        assert "Cena" in text and "320,00 zł/m²" in text and "dostępny" in text
        href = page.locator(".leaflet-popup-content .omw-sheet a").get_attribute("href")
        assert href == f"sheets/sheet_{best}_pl.html" and (out / href).is_file()
        browser.close()


def read_layer_names(store: Path, layer: str) -> list[str]:
    from omw_sites.store import read_layer

    return [str(n) for n in read_layer(store, layer)["name"]]
