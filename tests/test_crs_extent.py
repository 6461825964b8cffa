"""A layer whose coordinates are not in its declared CRS is refused before anything is
measured, naming the file and the CRS it most likely is (issue: a PL-2000 file labelled
EPSG:2180 ended 1,270 of 1,297 sites; one labelled EPSG:4326 gave a GEOS traceback)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyogrio
import pytest
from cli_run import cli

from omw_sites.etl.crs import extent_problem, likely_crs
from omw_sites.etl.errors import IngestError
from omw_sites.etl.vector import read_vector_file

WARSAW_2180 = (630_000.0, 480_000.0, 640_000.0, 490_000.0)
WARSAW_2178 = (7_495_000.0, 5_785_000.0, 7_505_000.0, 5_795_000.0)
WARSAW_LONLAT = (20.9, 52.1, 21.1, 52.3)


@pytest.mark.parametrize(
    ("bounds", "declared", "guess"),
    [
        (WARSAW_2178, 2180, "EPSG:2178"),
        (WARSAW_2180, 2178, "EPSG:2180"),
        (WARSAW_2180, 4326, "EPSG:2180"),
        (WARSAW_LONLAT, 2180, "EPSG:4326"),
        ((52.1, 20.9, 52.3, 21.1), 4326, "EPSG:4326 written latitude first"),
        ((5_785_000.0, 7_495_000.0, 5_795_000.0, 7_505_000.0), 2178, "EPSG:2178 written northing"),
        ((2_330_000.0, 6_840_000.0, 2_340_000.0, 6_850_000.0), 2180, "EPSG:3857"),
    ],
)
def test_mislabelled_extent_names_the_likely_crs(bounds, declared, guess):
    problem = extent_problem(bounds, declared)
    assert problem is not None and f"declared CRS EPSG:{declared}" in problem
    assert f"most likely {guess}" in problem


@pytest.mark.parametrize(
    ("bounds", "declared"),
    [
        (WARSAW_2180, 2180),
        (WARSAW_2178, 2178),
        (WARSAW_LONLAT, 4326),
        ((14.1, 49.0, 24.2, 54.9), 4326),
    ],
)
def test_layers_in_poland_pass(bounds, declared):
    assert extent_problem(bounds, declared) is None
    assert likely_crs(bounds) is not None


def test_a_layer_across_the_border_passes():
    # a Natura 2000 or OSM extract reaching into Germany and Lithuania still overlaps Poland
    assert extent_problem((12.0, 50.0, 26.0, 56.5), 4326) is None


def _relabel(src: Path, dst: Path, epsg: int) -> None:
    """``src`` written to ``dst`` with the same coordinates and another CRS label."""
    gdf = pyogrio.read_dataframe(src)
    pyogrio.write_dataframe(gdf.set_crs(epsg, allow_override=True), dst)


def test_reader_refuses_a_mislabelled_gpkg(demo_raw: Path, tmp_path: Path):
    parcels = demo_raw / "egib" / "dzialki.gpkg"
    assert pyogrio.read_info(parcels)["crs"] == "EPSG:2178"
    bad = tmp_path / "dzialki.gpkg"
    _relabel(parcels, bad, 2180)
    with pytest.raises(IngestError) as err:
        read_vector_file(bad)
    assert err.value.rule == "layer lies in Poland in its CRS"
    assert "most likely EPSG:2178" in str(err.value) and str(bad) in str(err.value)


@pytest.mark.parametrize(("label", "named"), [(2180, "EPSG:2178"), (4326, "EPSG:2178")])
def test_run_refuses_mislabelled_parcels_and_keeps_the_store(
    demo_raw: Path, demo_store: Path, tmp_path: Path, label: int, named: str
):
    raw = tmp_path / "raw"
    shutil.copytree(demo_raw, raw)
    (raw / "egib" / "dzialki.gpkg").unlink()
    _relabel(demo_raw / "egib" / "dzialki.gpkg", raw / "egib" / "dzialki.gpkg", label)
    store = tmp_path / "out" / "omw_sites.gpkg"
    store.parent.mkdir()
    shutil.copy(demo_store, store)
    before = store.read_bytes()
    done = cli("run", "--raw", str(raw), "--out", str(store.parent), "--store", str(store))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error:") and "Traceback" not in done.stderr
    assert "dzialki.gpkg" in lines[-1] and f"EPSG:{label}" in lines[-1]
    assert f"most likely {named}" in lines[-1]
    assert store.read_bytes() == before
