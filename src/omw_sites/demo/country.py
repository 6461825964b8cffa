"""A synthetic "country": several demo regions side by side, built one tile at a time.

Benchmarks of a whole-Poland run need raw folders of millions of parcels, more than one
region can hold in memory. A country is up to 16 tiles, each a complete synthetic
region (every layer, the same generator as :func:`omw_sites.demo.region.build_region`)
in its own sub-folder, moved on a grid within Poland and given its own voivodeship code
(the first two digits of every TERYT it carries). Each tile is built in a process of
its own, so a country needs the memory of one tile.
The ingest reads such a folder as it is: it finds files recursively, concatenates a
layer's files and mosaics the DEM sheets.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import Transformer

from omw_sites.demo._common import CENTRE
from omw_sites.demo.elevation import Dem
from omw_sites.demo.region import (
    DATA_DATES,
    GENERATOR,
    GENERATOR_VERSION,
    MIN_PARCELS,
    Progress,
    _build_in_place,
    _generate,
)
from omw_sites.layers import MANIFEST, WORK_CRS

MAX_TILES = 16
TILE_PARCELS = 1_000_000
# Voivodeship codes (TERYT WW) of the tiles in order: tile 0 is the OMW region itself.
VOIVODESHIPS = (
    "14", "02", "04", "06", "08", "10", "12", "16",
    "18", "20", "22", "24", "26", "28", "30", "32",
)  # fmt: skip
HOME = "14"  # the code the generator writes (Mazowieckie)
# Grid step between tiles, m. A region's gminy span at most ~82 km either way (measured
# over 60 seeds), its DEM and census grid about 1 km more: 90 km keeps tiles apart by
# several km, and is a whole number of DEM cells (50 m), so the sheets mosaic on one grid.
GRID_STEP = 90_000.0
# Grid cell (column, row) of each tile, tile 0 (Warsaw) at (0, 0): a 4 x 4 block that
# keeps every tile within Poland's EPSG:2180 extent (x 416–768 km, y 356–707 km).
GRID = (
    (0, 0), (1, 0), (-1, 0), (-2, 0),
    (-2, 1), (-1, 1), (0, 1), (1, 1),
    (-2, -1), (-1, -1), (0, -1), (1, -1),
    (-2, 2), (-1, 2), (0, 2), (1, 2),
)  # fmt: skip
# TERYT-bearing columns of each layer (values start with the voivodeship code)
TERYT_COLUMNS: dict[str, tuple[str, ...]] = {
    "gminy": ("JPT_KOD_JE",),
    "parcels": ("ID_DZIALKI",),
    "zoning": ("TERYT", "PLAN_ID"),
    "plan_zones": ("TERYT", "lokalnyId"),
}
_GRID_CODE = re.compile(r"^CRS3035RES1000mN(\d+)E(\d+)$")


@dataclass(frozen=True)
class Placement:
    """Where a tile goes: a shift (m, EPSG:2180) and its voivodeship code."""

    dx: float
    dy: float
    code: str

    def teryt(self, value: str) -> str:
        """``value`` (a TERYT or an ID beginning with one) in this tile's voivodeship."""
        if not value.startswith(HOME):
            msg = f"{value!r} does not start with the generator's voivodeship code {HOME}"
            raise RuntimeError(msg)
        return self.code + value[len(HOME) :]

    def frames(self, frames: Mapping[str, gpd.GeoDataFrame]) -> None:
        """Move every frame and re-code its TERYTs, in place (no second copy in memory)."""
        done: set[int] = set()
        for key, gdf in frames.items():
            if id(gdf) in done:
                continue
            done.add(id(gdf))
            self._move(gdf)
            for col in TERYT_COLUMNS.get(key, ()):
                gdf[col] = self._recode(gdf[col])
            if key == "natura2000" and len(gdf):  # PLH140001: its 4th–5th digits
                kod = gdf["KOD"].astype(str)
                gdf["KOD"] = kod.str[:3] + self._recode(kod.str[3:])
            if key == "population" and len(gdf):
                gdf["CODE"] = self._grid_codes(gdf["CODE"])

    def dem(self, dem: Dem) -> Dem:
        """The terrain model moved with its tile."""
        shift = rasterio.Affine.translation(self.dx, self.dy)
        return dataclasses.replace(dem, transform=shift * dem.transform)

    def ids(self, ids: Mapping[str, list[str]]) -> dict[str, list[str]]:
        """Parcel ID lists (the manifest's defects) re-coded."""
        return {k: [self.teryt(i) for i in v] for k, v in ids.items()}

    def _recode(self, values: pd.Series) -> pd.Series:
        text = values.astype(str)
        if not text.str.startswith(HOME).all():
            bad = text[~text.str.startswith(HOME)].iloc[0]
            msg = f"{bad!r} does not start with the generator's voivodeship code {HOME}"
            raise RuntimeError(msg)
        return (self.code + text.str[len(HOME) :]).astype(values.dtype)

    def _move(self, gdf: gpd.GeoDataFrame) -> None:
        if not len(gdf):
            return
        offset = np.array([self.dx, self.dy])
        geoms = gdf.geometry.to_numpy()
        if gdf.crs.equals(WORK_CRS):
            moved = shapely.transform(geoms, lambda xy: xy + offset)
        else:  # parcels come in PL-2000: moved in EPSG:2180, written back in their CRS
            there = Transformer.from_crs(gdf.crs, WORK_CRS, always_xy=True)
            back = Transformer.from_crs(WORK_CRS, gdf.crs, always_xy=True)

            def shift(xy: np.ndarray) -> np.ndarray:
                x, y = there.transform(xy[:, 0], xy[:, 1])
                x, y = back.transform(np.asarray(x) + self.dx, np.asarray(y) + self.dy)
                return np.column_stack([x, y])

            moved = shapely.transform(geoms, shift)
        gdf[gdf.geometry.name] = gpd.GeoSeries(moved, index=gdf.index, crs=gdf.crs)

    def _grid_codes(self, codes: pd.Series) -> pd.Series:
        """GUS grid codes moved by the tile's shift, in whole 1 km cells of EPSG:3035
        (the cells stay distinct and name about where they now lie)."""
        to_3035 = Transformer.from_crs(WORK_CRS, "EPSG:3035", always_xy=True)
        (e0, e1), (n0, n1) = to_3035.transform(
            [CENTRE[0], CENTRE[0] + self.dx], [CENTRE[1], CENTRE[1] + self.dy]
        )
        de, dn = round((e1 - e0) / 1000) * 1000, round((n1 - n0) / 1000) * 1000
        parts = codes.astype(str).str.extract(_GRID_CODE)
        if parts.isna().any().any():
            msg = f"unexpected census grid code in {codes.tolist()[:3]}"
            raise RuntimeError(msg)
        n = parts[0].astype(np.int64) + dn
        e = parts[1].astype(np.int64) + de
        return "CRS3035RES1000mN" + n.astype(str) + "E" + e.astype(str)


def placement(k: int) -> Placement:
    """Tile ``k``'s placement (tile 0: the OMW region where it is)."""
    col, row = GRID[k]
    return Placement(col * GRID_STEP, row * GRID_STEP, VOIVODESHIPS[k])


def tile_name(k: int) -> str:
    """Tile ``k``'s folder name, after its voivodeship code."""
    return f"tile_{VOIVODESHIPS[k]}"


def tile_sizes(parcels: int, tile_parcels: int) -> list[int]:
    """Parcels per tile: ``ceil(parcels / tile_parcels)`` tiles, split evenly."""
    n = math.ceil(parcels / tile_parcels)
    base, extra = divmod(parcels, n)
    return [base + (1 if k < extra else 0) for k in range(n)]


def build_country(
    out: str | Path,
    parcels: int,
    seed: int = 42,
    tile_parcels: int = TILE_PARCELS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Generate a multi-region synthetic country into the raw folder ``out``, tile by tile.

    ``ceil(parcels / tile_parcels)`` tiles (at most 16), each a complete region with seed
    ``seed + k`` and an even share of the parcels, are written to ``out/tile_<WW>/``
    (``WW`` its voivodeship code), plus ``out/manifest.json`` listing them. Tile 0 is the
    OMW region exactly as :func:`~omw_sites.demo.region.build_region` makes it; tile k
    is moved by a grid offset and re-coded (every TERYT starts with its own code). Each
    tile is built in a process of its own, so memory is that of one tile. The country is
    built in a temporary sibling folder and swapped in only when complete.

    Parameters
    ----------
    out : the raw folder to (re)create; an existing folder must be empty or hold a
        previously generated region or country (a ``manifest.json``)
    parcels : int
        Number of parcels in all (each tile at least 100).
    seed : int
        Random seed of tile 0 (non-negative).
    tile_parcels : int
        Most parcels per tile (about 1,000,000 is a region's practical top).
    progress : called as ``progress("<tile>/<stage>", count)`` after each stage of a tile
        and ``progress("<tile>", parcels)`` when a tile is complete

    Returns
    -------
    dict
        The country's manifest (also written to ``out/manifest.json``).
    """
    for name, value in (("parcels", parcels), ("tile_parcels", tile_parcels), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            msg = f"{name} must be an integer, got {value!r}"
            raise TypeError(msg)
    if seed < 0:
        msg = f"seed must be a non-negative integer, got {seed!r}"
        raise ValueError(msg)
    if tile_parcels < MIN_PARCELS:
        msg = f"tile_parcels must be at least {MIN_PARCELS}, got {tile_parcels}"
        raise ValueError(msg)
    sizes = tile_sizes(max(int(parcels), 1), int(tile_parcels))
    if len(sizes) > MAX_TILES:
        msg = (
            f"{parcels:,} parcels at {tile_parcels:,} per tile make {len(sizes)} tiles; "
            f"at most {MAX_TILES}: raise tile_parcels"
        )
        raise ValueError(msg)
    if min(sizes) < MIN_PARCELS:
        msg = f"parcels must be at least {MIN_PARCELS} per tile, got {parcels}"
        raise ValueError(msg)
    return _build_in_place(
        Path(out), lambda tmp: _build_tiles(tmp, sizes, int(seed), int(tile_parcels), progress)
    )


def _build_tiles(
    root: Path, sizes: list[int], seed: int, tile_parcels: int, progress: Progress | None
) -> dict[str, Any]:
    say = progress or (lambda _s, _n: None)
    tiles: list[dict[str, Any]] = []
    for k, n in enumerate(sizes):
        name = tile_name(k)
        place = placement(k)

        def stage(s: str, count: int, name: str = name) -> None:
            say(f"{name}/{s}", count)

        folder = root / name
        folder.mkdir()
        # tile 0 is the region as build_region makes it: no placement at all
        tile = _run_tile(folder, n, seed + k, place if k else None, stage)
        tiles.append(
            {
                "name": name,
                "voivodeship": place.code,
                "seed": seed + k,
                "parcels": tile["parcels"],
                "first_parcel": sum(t["parcels"] for t in tiles),
                "offset": [place.dx, place.dy],
                "manifest": f"{name}/{MANIFEST}",
                "parcels_sha256": tile["parcels_sha256"],
            }
        )
        say(name, tiles[-1]["parcels"])
    manifest: dict[str, Any] = {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "kind": "country",
        "seed": seed,
        "parcels": sum(t["parcels"] for t in tiles),
        "parcels_requested": sum(sizes),
        "tile_parcels": tile_parcels,
        "grid_step_m": GRID_STEP,
        "region": "Synthetic country of OMW-like regions (demo)",
        "crs": {"work": WORK_CRS},
        "data_dates": dict(DATA_DATES),
        "tiles": tiles,
    }
    (root / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def _run_tile(
    folder: Path, n: int, seed: int, place: Placement | None, stage: Callable[[str, int], None]
) -> dict[str, Any]:
    """Build one tile in a Python process of its own and return its manifest.

    A process per tile is what keeps a country's memory that of one tile: freed frames
    leave the allocator's heap fragmented, and in one process each further tile peaked
    higher (3 tiles of 1M parcels: +24 %). A plain subprocess, not multiprocessing,
    so the caller's main script is not imported again in the child. The child reports
    one JSON line per stage on its stdout, then its manifest or its error."""
    job = {"folder": str(folder), "n": n, "seed": seed}
    if place is not None:
        job["place"] = dataclasses.asdict(place)
    code = "from omw_sites.demo.country import _tile_process; _tile_process()"
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(job))
            proc.stdin.close()
            for line in proc.stdout:
                msg = json.loads(line)
                if "stage" in msg:
                    stage(msg["stage"], msg["count"])
                elif "manifest" in msg:
                    return dict(msg["manifest"])
                else:
                    raise _ERRORS.get(msg["error"], RuntimeError)(msg["message"])
        except BaseException:
            proc.kill()  # a failure here (or in a progress callback): stop the tile now
            raise
    msg = f"building {folder.name} stopped without a result (exit code {proc.returncode})"
    raise RuntimeError(msg)


_ERRORS: dict[str, type[Exception]] = {"ValueError": ValueError, "TypeError": TypeError}


def _tile_process() -> None:
    """The tile process: the job as JSON on stdin; each stage, then the manifest or the
    error, as JSON lines on stdout (anything else printed goes to stderr)."""
    report = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    job = json.load(sys.stdin)

    def send(msg: dict[str, Any]) -> None:
        report.write(json.dumps(msg, ensure_ascii=False) + "\n")
        report.flush()

    place = Placement(**job["place"]) if "place" in job else None
    try:
        manifest = _generate(
            Path(job["folder"]),
            job["n"],
            job["seed"],
            lambda s, c: send({"stage": s, "count": int(c)}),
            place,
        )
    except Exception as exc:
        traceback.print_exc()
        send({"error": type(exc).__name__, "message": str(exc)})
        sys.exit(1)
    send({"manifest": manifest})
