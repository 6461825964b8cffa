"""Build a whole synthetic OMW region and write it in the raw-folder layout."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from omw_sites.demo._common import CENTRE, stage_rng
from omw_sites.demo.elevation import build_dem
from omw_sites.demo.environment import build_environment
from omw_sites.demo.geography import build_geography
from omw_sites.demo.gml_export import write_app_2_0, write_egib_2021, write_gesut_2021
from omw_sites.demo.land import build_buildings, build_land
from omw_sites.demo.parcels import PARCEL_CRS, build_parcels
from omw_sites.demo.population import build_population
from omw_sites.demo.settlement import (
    build_sectors,
    candidate_tiles,
    lattice_roads,
    select_tiles,
)
from omw_sites.demo.transport import assemble_roads, build_backbone, carriageway_widths
from omw_sites.demo.utilities import build_utilities
from omw_sites.demo.zoning import build_mpzp, build_plan_zones
from omw_sites.etl.gesut import in_powiat
from omw_sites.layers import (
    APP_GML_DIR,
    EGIB_GML_DIR,
    GESUT_GML_DIR,
    MANIFEST,
    RAW_BY_KEY,
    RAW_LAYERS,
    WORK_CRS,
)

if TYPE_CHECKING:
    from omw_sites.demo.country import Placement

GENERATOR = "omw_sites.demo"
GENERATOR_VERSION = "1.0.0"
MIN_PARCELS = 100

# as-of dates of each source layer (ISO), as a real download would carry them
DATA_DATES: dict[str, str] = {
    "gminy": "2026-01-01",
    "parcels": "2026-09-30",
    "zoning": "2026-07-15",
    "plan_zones": "2026-06-30",
    "roads": "2026-06-15",
    "rail": "2026-06-15",
    "natura2000": "2026-06-15",
    "forest": "2026-06-15",
    "water": "2026-06-15",
    "power_lines": "2026-06-15",
    "junctions": "2026-05-01",
    "stations": "2026-05-01",
    "airports": "2026-05-01",
    "utilities": "2026-08-01",
    "substations": "2026-08-01",
    "flood": "2024-03-01",
    "dem": "2025-11-20",
    "population": "2021-03-31",
    "buildings": "2026-06-15",
    "land_use": "2026-09-30",
    "soil_classes": "2026-09-30",
}

Progress = Callable[[str, int], None]


def build_region(
    out: str | Path,
    parcels: int = 20000,
    seed: int = 42,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Generate a synthetic Warsaw metropolitan region into the raw folder ``out``.

    Every layer of ``omw_sites.layers.RAW_LAYERS`` is written to its path (GeoPackage
    layers, the DEM as GeoTIFF), plus ``manifest.json``. The same ``seed`` and
    ``parcels`` give the same data. The region is built in a temporary sibling folder
    and swapped in only when complete, so an existing region is never left half-written.

    Parameters
    ----------
    out : the raw folder to (re)create; an existing folder must be empty or hold a
        previously generated region (a ``manifest.json``)
    parcels : int
        Number of parcels to place (at least 100; about 1,000,000 is the practical top).
    seed : int
        Random seed (non-negative).
    progress : called as ``progress(stage, count)`` after each stage

    Returns
    -------
    dict
        The manifest (also written to ``out/manifest.json``).
    """
    if isinstance(parcels, bool) or not isinstance(parcels, int | np.integer):
        msg = f"parcels must be an integer, got {parcels!r}"
        raise TypeError(msg)
    if parcels < MIN_PARCELS:
        msg = f"parcels must be at least {MIN_PARCELS}, got {parcels}"
        raise ValueError(msg)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        msg = f"seed must be a non-negative integer, got {seed!r}"
        raise ValueError(msg)
    say = progress or (lambda _s, _n: None)
    return _build_in_place(Path(out), lambda tmp: _generate(tmp, int(parcels), int(seed), say))


def _build_in_place(out: Path, fill: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run ``fill`` on a temporary sibling of ``out`` and swap it in when it returns.

    ``out`` must be absent, empty or a generated region; on any failure the temporary
    folder is removed and ``out`` is left as it was. Returns what ``fill`` returned."""
    if out.exists() and not _is_region(out):
        msg = (
            f"{out} exists and is not a generated region (no {MANIFEST}); "
            "choose an empty or new folder"
        )
        raise ValueError(msg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a region is a normal folder
    try:
        manifest = fill(tmp)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _is_region(path: Path) -> bool:
    return path.is_dir() and ((path / MANIFEST).is_file() or not any(path.iterdir()))


def _swap_in(tmp: Path, out: Path) -> None:
    """Put the finished folder in place of ``out`` (old one removed only afterwards)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _generate(
    root: Path,
    n_parcels: int,
    seed: int,
    progress: Progress,
    placement: Placement | None = None,
) -> dict[str, Any]:
    """Build the region into ``root``; ``placement`` moves and re-codes it (a country's
    tile, :mod:`omw_sites.demo.country`) before anything is written."""
    geo = build_geography(stage_rng(seed, "geography"))
    progress("gminy", len(geo.gminy))
    env = build_environment(stage_rng(seed, "environment"), geo.region)
    progress("environment", len(env.water) + len(env.flood) + len(env.forest) + len(env.natura))
    backbone = build_backbone(stage_rng(seed, "backbone"), geo.region)
    progress("backbone", len(backbone.roads) + len(backbone.rail))

    sectors = build_sectors(stage_rng(seed, "sectors"), geo, env, backbone)
    cand = candidate_tiles(sectors, geo, env, backbone)
    tiles = select_tiles(stage_rng(seed, "selection"), sectors, cand, geo, n_parcels)
    progress("tiles", int(tiles.selected.sum()))
    parcels = build_parcels(stage_rng(seed, "parcels"), sectors, tiles, geo)
    progress("parcels", len(parcels.frame))

    local = pd.concat([sectors.edges, lattice_roads(sectors, tiles, env)], ignore_index=True)
    roads, junctions = assemble_roads(backbone, local)
    roads["SZERNAWIERZCHNI"] = carriageway_widths(stage_rng(seed, "road_width"), roads)
    progress("roads", len(roads))
    zoning = build_mpzp(stage_rng(seed, "mpzp"), sectors, tiles, parcels, geo)
    plan_zones = build_plan_zones(stage_rng(seed, "plan_zones"), tiles, geo, backbone)
    progress("zoning", len(zoning) + len(plan_zones))
    utilities = build_utilities(stage_rng(seed, "utilities"), geo, sectors, tiles, backbone, roads)
    progress("utilities", len(utilities.lines) + len(utilities.devices))
    dem = build_dem(stage_rng(seed, "terrain"), env, geo.region)
    progress("dem", int(dem.heights.size))
    population = build_population(stage_rng(seed, "population"), tiles, geo)
    land_use, soil = build_land(stage_rng(seed, "land"), tiles)
    buildings = build_buildings(stage_rng(seed, "buildings"), tiles, parcels)
    progress("land", len(population) + len(land_use) + len(soil) + len(buildings))

    frames: dict[str, gpd.GeoDataFrame] = {
        "gminy": geo.gminy,
        "parcels": parcels.frame,
        "zoning": zoning,
        "plan_zones": plan_zones,
        "roads": roads,
        "rail": backbone.rail,
        "natura2000": env.natura,
        "forest": env.forest,
        "water": env.water,
        "power_lines": utilities.power_lines,
        "junctions": junctions,
        "stations": backbone.stations,
        "airports": backbone.airports,
        "utilities": utilities.lines,
        "substations": utilities.devices,
        "flood": env.flood,
        "population": population,
        "buildings": buildings,
        "land_use": land_use,
        "soil_classes": soil,
    }
    code: Callable[[str], str] = str
    defects = parcels.defects
    if placement is not None:
        placement.frames(frames)
        dem = placement.dem(dem)
        code, defects = placement.teryt, placement.ids(defects)
    layers = _write_all(root, frames)
    # one gmina's parcels also come as the powiat's EGiB 2021 GML export (the official
    # exchange format); the ingest takes that gmina from the GML instead of the GPKG
    unit = code(GML_UNIT)
    gml_parcels = parcels.frame[parcels.frame["ID_DZIALKI"].str.startswith(unit + ".")]
    gml_path = root / EGIB_GML_DIR / f"{unit}_dzialki.gml"
    n_gml = write_egib_2021(gml_parcels, gml_path, DATA_DATES["parcels"])
    layers["parcels_gml"] = {
        "path": str(gml_path.relative_to(root)),
        "layer": "EGB_DzialkaEwidencyjna",
        "count": n_gml,
        "crs": gml_parcels.crs.to_string(),
    }
    # one gmina's plan ogólny also comes as its APP 2.0 GML (in PL-2000 zone 7)
    app_gmina = code(APP_GMINA)
    pog = plan_zones[plan_zones["TERYT"] == app_gmina].to_crs(PARCEL_CRS)
    app_path = root / APP_GML_DIR / f"{app_gmina}_plan_ogolny.gml"
    n_app = write_app_2_0(pog, app_path, app_gmina, DATA_DATES["plan_zones"])
    layers["plan_zones_gml"] = {
        "path": str(app_path.relative_to(root)),
        "layer": "StrefaPlanistyczna",
        "count": n_app,
        "crs": PARCEL_CRS,
    }
    # one powiat's utility lines also come as its GESUT 2021 GML export (PL-2000 zone 7);
    # the ingest takes that powiat's lines from the GML instead of the GPKG
    lines = utilities.lines
    powiat = code(GESUT_POWIAT)
    ours = in_powiat(lines.geometry.to_numpy(), geo.gminy, powiat)
    gesut_lines = lines[ours].to_crs(PARCEL_CRS)
    gesut_path = root / GESUT_GML_DIR / f"{powiat}_gesut.gml"
    n_gesut = write_gesut_2021(gesut_lines, gesut_path, powiat, DATA_DATES["utilities"])
    layers["utilities_gml"] = {
        "path": str(gesut_path.relative_to(root)),
        "layer": "GES_Przewod*",
        "count": n_gesut,
        "crs": PARCEL_CRS,
    }
    dem_layer = RAW_BY_KEY["dem"]
    (root / dem_layer.path).parent.mkdir(parents=True, exist_ok=True)
    dem.write(root / dem_layer.path)
    layers["dem"] = {
        "path": dem_layer.path,
        "layer": None,
        "count": int(dem.heights.size),
        "crs": WORK_CRS,
        "cell_m": float(dem.transform.a),
        "shape": list(dem.heights.shape),
    }
    progress("write", len(layers))

    manifest: dict[str, Any] = {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "parcels": len(parcels.frame),
        "parcels_requested": n_parcels,
        "created": (
            dt.datetime(2026, 10, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seed % 86_400)
        ).isoformat(),
        "region": "Obszar Metropolitalny Warszawy (synthetic demo)",
        "centre": {
            "x": float(CENTRE[0]) + (placement.dx if placement else 0.0),
            "y": float(CENTRE[1]) + (placement.dy if placement else 0.0),
            "crs": WORK_CRS,
        },
        "crs": {"work": WORK_CRS, "parcels": PARCEL_CRS},
        "data_dates": {r.key: DATA_DATES[r.key] for r in RAW_LAYERS},
        "layers": layers,
        "defects": {k: len(v) for k, v in defects.items()},
        "defect_ids": defects,
        "parcels_sha256": _parcel_digest(parcels.frame),
    }
    if placement is not None:
        manifest["placement"] = {
            "dx": placement.dx,
            "dy": placement.dy,
            "voivodeship": placement.code,
        }
    (root / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


GML_UNIT = "141803_2"  # Lesznowola: its parcels are also written as EGiB 2021 GML
APP_GMINA = "1418043"  # Piaseczno: its plan ogólny is also written as APP 2.0 GML
GESUT_POWIAT = "1418"  # powiat piaseczyński: its utility lines are also written as GESUT GML


def _write_all(root: Path, frames: Mapping[str, gpd.GeoDataFrame]) -> dict[str, dict[str, Any]]:
    """Write every vector layer to its GeoPackage; return the manifest entries."""
    out: dict[str, dict[str, Any]] = {}
    for raw in RAW_LAYERS:
        if raw.key not in frames:
            continue
        gdf = frames[raw.key]
        missing = [c for c in raw.columns if c not in gdf.columns]
        if missing:
            msg = f"layer {raw.key!r} lacks the contract columns {missing}"
            raise RuntimeError(msg)
        path = root / raw.path
        path.parent.mkdir(parents=True, exist_ok=True)
        pyogrio.write_dataframe(
            gdf.reset_index(drop=True), path, layer=raw.layer, driver="GPKG", use_arrow=True
        )
        out[raw.key] = {
            "path": raw.path,
            "layer": raw.layer,
            "count": len(gdf),
            "crs": gdf.crs.to_string(),
        }
    return out


def _parcel_digest(frame: gpd.GeoDataFrame) -> str:
    """SHA-256 of the parcel IDs and geometries (same seed and count, same digest)."""
    h = hashlib.sha256()
    h.update("\n".join(frame["ID_DZIALKI"].tolist()).encode())
    wkb = shapely.to_wkb(frame.geometry.values, output_dimension=2, byte_order=1)
    h.update(b"".join(wkb.tolist()))
    return h.hexdigest()
