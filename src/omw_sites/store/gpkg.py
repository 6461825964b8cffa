"""GeoPackage store: all-or-nothing writes of the site table, reference layers and run info."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from omw_sites.layers import RUN_INFO, SITES, WORK_CRS


class StoreError(RuntimeError):
    """The store file is missing or does not hold what a reader needs."""


def write_store(
    path: str | Path,
    sites: gpd.GeoDataFrame,
    reference: Mapping[str, gpd.GeoDataFrame] | None = None,
    run_info: Mapping[str, Any] | None = None,
    extra_tables: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Write the whole store to ``path`` atomically.

    Everything goes to a temporary file in the same folder first; only when every layer
    is written is it renamed over ``path`` (``os.replace`` is atomic on POSIX). A failed
    or interrupted write leaves the previous store untouched.

    Parameters
    ----------
    path : the GeoPackage to (re)create
    sites : site table in EPSG:2180
    reference : further spatial layers (junctions, utilities, …), EPSG:2180
    run_info : JSON-serialisable metadata, stored as key/value rows in ``run_info``
    extra_tables : non-spatial tables (e.g. ``quarantine``)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp.gpkg", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # GDAL wants to create the file itself
    try:
        _write_layer(tmp, SITES, sites)
        for name, gdf in (reference or {}).items():
            _write_layer(tmp, name, gdf)
        info = {
            k: json.dumps(v, ensure_ascii=False, default=str) for k, v in (run_info or {}).items()
        }
        info_df = pd.DataFrame({"key": list(info.keys()), "value": list(info.values())})
        pyogrio.write_dataframe(info_df, tmp, layer=RUN_INFO, driver="GPKG")
        for name, df in (extra_tables or {}).items():
            if len(df.columns) == 0:
                continue
            pyogrio.write_dataframe(pd.DataFrame(df), tmp, layer=name, driver="GPKG")
        with open(tmp, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_layer(path: Path, name: str, gdf: gpd.GeoDataFrame) -> None:
    if gdf.crs is None:
        msg = f"layer {name!r} has no CRS; refusing to write it to the store"
        raise StoreError(msg)
    gdf = gdf.to_crs(WORK_CRS) if gdf.crs.to_epsg() != 2180 else gdf
    pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG", use_arrow=True)


def _check(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        msg = f"store {path} does not exist; run `omw-sites run` first"
        raise StoreError(msg)
    return path


def list_layers(path: str | Path) -> list[str]:
    """Names of the layers (spatial and not) in the store."""
    return [str(name) for name, _ in pyogrio.list_layers(_check(path))]


def read_layer(path: str | Path, name: str, **kwargs: Any) -> gpd.GeoDataFrame:
    """Read one spatial layer of the store (EPSG:2180)."""
    path = _check(path)
    if name not in list_layers(path):
        msg = f"store {path} has no layer {name!r}"
        raise StoreError(msg)
    return pyogrio.read_dataframe(path, layer=name, use_arrow=True, **kwargs)


def read_sites(path: str | Path, **kwargs: Any) -> gpd.GeoDataFrame:
    """Read the site table (EPSG:2180)."""
    return read_layer(path, SITES, **kwargs)


def read_run_info(path: str | Path) -> dict[str, Any]:
    """Run metadata: run id, time, profiles (name, title, hash, weights), data dates."""
    path = _check(path)
    if RUN_INFO not in list_layers(path):
        return {}
    df = pyogrio.read_dataframe(path, layer=RUN_INFO, read_geometry=False)
    return {k: json.loads(v) for k, v in zip(df["key"], df["value"], strict=True)}
