"""The synthetic country: several demo regions as tiles, moved apart and re-coded."""

from __future__ import annotations

import filecmp
import json
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from typer.testing import CliRunner

from omw_sites.demo import build_region
from omw_sites.demo.country import build_country
from omw_sites.demo.region import _parcel_digest
from omw_sites.layers import MANIFEST, RAW_LAYERS, WORK_CRS

SEED = 7
PER_TILE = 2000
CODES = ("14", "02", "04")  # the first three tiles' voivodeship codes
POLAND_2180 = (150_000, 130_000, 880_000, 790_000)  # x0, y0, x1, y1 (m)


def _read(root: Path, key: str) -> Any:
    raw = next(r for r in RAW_LAYERS if r.key == key)
    return pyogrio.read_dataframe(root / raw.path, layer=raw.layer, use_arrow=True)


def _bounds(tile: Path) -> tuple[float, float, float, float]:
    """Bounds of everything a tile holds (every vector layer and the DEM), EPSG:2180."""
    boxes = []
    for raw in RAW_LAYERS:
        if raw.key == "dem":
            with rasterio.open(tile / raw.path) as src:
                boxes.append(tuple(src.bounds))
            continue
        gdf = _read(tile, raw.key)
        if len(gdf):
            boxes.append(tuple(gdf.to_crs(WORK_CRS).total_bounds))
    b = np.array(boxes)
    return b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()


@pytest.fixture(scope="module")
def country(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("country") / "raw"
    seen: list[str] = []
    manifest = build_country(
        out, 3 * PER_TILE, seed=SEED, tile_parcels=PER_TILE, progress=lambda s, _n: seen.append(s)
    )
    manifest["_progress"] = seen
    return out, manifest


def test_tiles_are_listed_with_their_codes_seeds_and_offsets(country) -> None:
    root, manifest = country
    assert json.loads((root / MANIFEST).read_text(encoding="utf-8"))["tiles"] == manifest["tiles"]
    tiles = manifest["tiles"]
    assert [t["name"] for t in tiles] == ["tile_14", "tile_02", "tile_04"]
    assert [t["voivodeship"] for t in tiles] == list(CODES)
    assert [t["seed"] for t in tiles] == [SEED, SEED + 1, SEED + 2]
    assert [t["parcels"] for t in tiles] == [PER_TILE] * 3
    assert manifest["parcels"] == 3 * PER_TILE
    assert tiles[0]["offset"] == [0.0, 0.0]
    assert len({tuple(t["offset"]) for t in tiles}) == 3
    assert manifest["data_dates"]["parcels"]  # the ingest takes the dates from here
    for t in tiles:
        tile_manifest = json.loads((root / t["manifest"]).read_text(encoding="utf-8"))
        assert tile_manifest["parcels_sha256"] == t["parcels_sha256"]
        assert all(i.startswith(t["voivodeship"]) for v in tile_manifest["defect_ids"].values()
                   for i in v)  # fmt: skip
    # a line per tile, each after that tile's own stages
    done = [s for s in manifest["_progress"] if "/" not in s]
    assert done == ["tile_14", "tile_02", "tile_04"]
    assert manifest["_progress"].index("tile_02/parcels") > manifest["_progress"].index("tile_14")


def test_parcel_ids_are_unique_and_carry_their_tiles_code(country) -> None:
    root, manifest = country
    ids = []
    for t in manifest["tiles"]:
        parcels = _read(root / t["name"], "parcels")
        assert set(parcels["ID_DZIALKI"].str[:2]) == {t["voivodeship"]}
        # the file holds what the manifest's digest says
        assert _parcel_digest(parcels) == t["parcels_sha256"]
        ids += parcels["ID_DZIALKI"].tolist()
    assert len(ids) == len(set(ids)) == 3 * PER_TILE


def test_every_teryt_of_a_tile_is_recoded(country) -> None:
    root, manifest = country
    for t in manifest["tiles"]:
        tile, code = root / t["name"], t["voivodeship"]
        assert set(_read(tile, "gminy")["JPT_KOD_JE"].str[:2]) == {code}
        zoning = _read(tile, "zoning")
        assert set(zoning["TERYT"].str[:2]) == set(zoning["PLAN_ID"].str[:2]) == {code}
        zones = _read(tile, "plan_zones")
        assert set(zones["TERYT"].str[:2]) == set(zones["lokalnyId"].str[:2]) == {code}
        assert set(_read(tile, "natura2000")["KOD"].str[3:5]) == {code}
        # the GML exports are named by and written for the re-coded units
        assert (tile / f"egib/{code}1803_2_dzialki.gml").is_file()
        assert (tile / f"app/{code}18043_plan_ogolny.gml").is_file()
        assert (tile / f"gesut/{code}18_gesut.gml").is_file()
        egib = (tile / f"egib/{code}1803_2_dzialki.gml").read_text(encoding="utf-8")
        assert f"<egb:idDzialki>{code}1803_2." in egib
        assert code == "14" or "<egb:idDzialki>14" not in egib
        app = (tile / f"app/{code}18043_plan_ogolny.gml").read_text(encoding="utf-8")
        assert f"/{code}18043-POG" in app
    codes = [c for t in manifest["tiles"] for c in _read(root / t["name"], "population")["CODE"]]
    assert len(codes) == len(set(codes))  # census cells stay distinct across tiles


def test_tiles_do_not_overlap_and_lie_in_poland(country) -> None:
    root, manifest = country
    boxes = {t["name"]: _bounds(root / t["name"]) for t in manifest["tiles"]}
    for (a, ba), (b, bb) in combinations(boxes.items(), 2):
        apart = ba[2] < bb[0] or bb[2] < ba[0] or ba[3] < bb[1] or bb[3] < ba[1]
        assert apart, f"{a} {ba} overlaps {b} {bb}"
    x0, y0, x1, y1 = POLAND_2180
    for name, (bx0, by0, bx1, by1) in boxes.items():
        assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1, name


def test_tile_zero_is_the_region_and_same_seed_gives_same_tiles(country, tmp_path) -> None:
    root, manifest = country
    region = tmp_path / "region"
    build_region(region, parcels=PER_TILE, seed=SEED)
    tile0 = root / "tile_14"
    assert (tile0 / MANIFEST).read_bytes() == (region / MANIFEST).read_bytes()
    for name in ("egib/141803_2_dzialki.gml", "app/1418043_plan_ogolny.gml", "nmt/nmt.tif"):
        assert filecmp.cmp(tile0 / name, region / name, shallow=False), name
    # fewer tiles of the same size and seed: the same first tiles, bit for bit
    again = build_country(tmp_path / "again", 2 * PER_TILE, seed=SEED, tile_parcels=PER_TILE)
    assert [t["parcels_sha256"] for t in again["tiles"]] == [
        t["parcels_sha256"] for t in manifest["tiles"][:2]
    ]


def test_the_pipeline_finds_sites_in_every_tile(country, tmp_path) -> None:
    from omw_sites.pipeline import run

    root, manifest = country
    summary = run(raw_dir=root, out_dir=tmp_path / "out")
    sites = pyogrio.read_dataframe(tmp_path / "out" / "omw_sites.gpkg", layer="sites")
    sites = sites[sites["ended_at"].isna()] if "ended_at" in sites else sites
    assert summary.parcels == 3 * PER_TILE
    centres = shapely.centroid(sites.to_crs(WORK_CRS).geometry.to_numpy())
    for t in manifest["tiles"]:
        x0, y0, x1, y1 = _bounds(root / t["name"])
        inside = shapely.contains_xy(shapely.box(x0, y0, x1, y1), shapely.get_coordinates(centres))
        assert inside.sum() > 10, t["name"]
        assert set(sites["teryt"][inside].str[:2]) == {t["voivodeship"]}, t["name"]
        # the tile's GESUT GML replaced its powiat's lines
        assert any(f"powiat {t['voivodeship']}18" in n for n in summary.notes), summary.notes
    # every tile's terrain is read (the DEM sheets are mosaicked)
    assert sites["slope_mean_pct"].notna().mean() > 0.9


def test_refusals(tmp_path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ValueError, match="not a generated region"):
        build_country(precious, 300, tile_parcels=100)
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "keep me"
    with pytest.raises(ValueError, match="at most 16"):
        build_country(tmp_path / "big", 1700, tile_parcels=100)
    with pytest.raises(ValueError, match="at least 100 per tile"):
        build_country(tmp_path / "thin", 150, tile_parcels=100)
    assert not (tmp_path / "big").exists() and not (tmp_path / "thin").exists()


def test_a_failed_build_leaves_the_old_country_untouched(tmp_path) -> None:
    out = tmp_path / "raw"
    first = build_country(out, 100, seed=1, tile_parcels=100)

    def boom(stage: str, _count: int) -> None:
        if stage == "tile_14/parcels":  # the tile's process is stopped mid-way
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_country(out, 200, seed=2, tile_parcels=100, progress=boom)
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8")) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no half-built folder


def test_cli_builds_a_country_above_the_tile_size(tmp_path) -> None:
    from omw_sites.cli import app

    out = tmp_path / "raw"
    res = CliRunner().invoke(
        app, ["demo", "build", "--parcels", "200", "--tile-parcels", "100", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "demo country: 200 parcels" in res.output
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "tile_02", "tile_14"]
    plain = tmp_path / "plain"
    res = CliRunner().invoke(app, ["demo", "build", "--parcels", "150", "--out", str(plain)])
    assert res.exit_code == 0, res.output
    assert (plain / "egib" / "dzialki.gpkg").is_file()  # a plain region at or below it
    res = CliRunner().invoke(
        app,
        ["demo", "build", "--parcels", "200", "--tile-parcels", "100", "--out", str(out.parent)],
    )
    assert res.exit_code == 2
    assert "not a generated region" in res.output
