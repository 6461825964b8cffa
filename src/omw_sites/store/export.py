"""Export the inventory's sites to GeoPackage, GeoJSON, CSV, XLSX or GeoParquet."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from omw_sites.layers import WEB_CRS
from omw_sites.store.base import HISTORY
from omw_sites.store.inventory import Inventory

FORMATS = {
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
}
EXCEL_CELL_MAX = 32_767


def format_of(path: Path, fmt: str | None) -> str:
    """The export format named by ``fmt`` or by the file's suffix."""
    if fmt:
        fmt = fmt.lower()
        if fmt not in set(FORMATS.values()):
            msg = (
                f"unknown export format {fmt!r}; one of {', '.join(sorted(set(FORMATS.values())))}"
            )
            raise ValueError(msg)
        return fmt
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        msg = (
            f"cannot tell the export format from {path.name!r}; use a suffix "
            f"({', '.join(FORMATS)}) or --format"
        )
        raise ValueError(msg) from None


def _flat(sites: gpd.GeoDataFrame) -> pd.DataFrame:
    """Attributes plus representative point (lon/lat, CRS84) and the EPSG:2180 WKT."""
    point = shapely.point_on_surface(sites.geometry.to_numpy())
    lonlat = gpd.GeoSeries(point, crs=sites.crs).to_crs(WEB_CRS)
    out = pd.DataFrame(sites.drop(columns="geometry"))
    out["lon"] = lonlat.x.round(7).to_numpy()
    out["lat"] = lonlat.y.round(7).to_numpy()
    out["wkt_epsg2180"] = shapely.to_wkt(sites.geometry.to_numpy(), rounding_precision=2)
    return out


def export_sites(
    inventory: Inventory,
    path: str | Path,
    fmt: str | None = None,
    include_ended: bool = False,
    with_history: bool = True,
) -> tuple[Path, int]:
    """Write the inventory's sites to ``path`` atomically; returns (path, sites written).

    GeoPackage keeps EPSG:2180 and, with ``with_history``, the history table; GeoJSON is
    RFC 7946 (CRS84); CSV and XLSX carry a representative point's lon/lat and the
    EPSG:2180 geometry as WKT (XLSX cells longer than Excel's limit are cut);
    GeoParquet keeps EPSG:2180.
    """
    path = Path(path)
    kind = format_of(path, fmt)
    sites = inventory.read_sites(include_ended=include_ended)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        if kind == "gpkg":
            pyogrio.write_dataframe(sites, tmp, layer="sites", driver="GPKG", use_arrow=True)
            if with_history:
                hist = inventory.backend.read_layer(HISTORY, read_geometry=False)
                pyogrio.write_dataframe(pd.DataFrame(hist), tmp, layer=HISTORY, driver="GPKG")
        elif kind == "geojson":
            pyogrio.write_dataframe(
                sites.to_crs(WEB_CRS), tmp, driver="GeoJSON", layer_options={"RFC7946": "YES"}
            )
        elif kind == "csv":
            _flat(sites).to_csv(tmp, index=False)
        elif kind == "xlsx":
            flat = _flat(sites)
            for c in flat.columns:
                if flat[c].dtype == object:
                    flat[c] = flat[c].map(lambda v: v[:EXCEL_CELL_MAX] if isinstance(v, str) else v)
            flat.to_excel(tmp, index=False, sheet_name="sites", engine="openpyxl")
        else:
            sites.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path, len(sites)
