"""NMT terrain: ESRI ASCII grids (xllcenter/xllcorner, non-integer cells, nodata) and GeoTIFF."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from omw_sites.etl.crs import resolve_epsg
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import DEFAULT_LIMITS, Limits, check_size

_HEADER_KEYS = {
    "ncols", "nrows", "xllcorner", "yllcorner", "xllcenter", "yllcenter", "cellsize",
    "dx", "dy", "nodata_value",
}  # fmt: skip


@dataclass
class Dem:
    """A terrain grid: heights (m, NaN for nodata), north-up transform, EPSG code."""

    heights: np.ndarray
    transform: Affine
    epsg: int
    nodata: float | None
    source_format: str

    @property
    def cell_size(self) -> tuple[float, float]:
        return float(self.transform.a), float(-self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        h, w = self.heights.shape
        x0, y0 = self.transform.c, self.transform.f
        return x0, y0 + h * self.transform.e, x0 + w * self.transform.a, y0


def read_asc(
    path: str | Path, crs: str | int | None = None, limits: Limits = DEFAULT_LIMITS
) -> Dem:
    """Read an ESRI ASCII grid as GUGiK publishes NMT.

    Both ``xllcorner/yllcorner`` and ``xllcenter/yllcenter`` headers are accepted (the
    centre form is shifted by half a cell); ``cellsize`` may be non-integer, ``dx/dy``
    may replace it; ``NODATA_value`` cells become NaN. The CRS comes from a ``.prj``
    next to the file or ``crs``; EPSG:2180 is not assumed.
    """
    path = Path(path)
    check_size(path, limits)
    header: dict[str, float] = {}
    try:
        with path.open("r", encoding="ascii") as f:
            pos = 0
            while True:
                line = f.readline()
                parts = line.split()
                if len(parts) != 2 or parts[0].lower() not in _HEADER_KEYS:
                    break
                header[parts[0].lower()] = float(parts[1])
                pos = f.tell()
            f.seek(pos)
            values = np.array(f.read().split(), dtype=float)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngestError(path, f"not an ESRI ASCII grid: {exc}", rule="ASC grid") from exc
    missing = [k for k in ("ncols", "nrows") if k not in header]
    has_x = ("xllcorner" in header) or ("xllcenter" in header)
    # the y origin of the same kind as the x one (read together below)
    has_y = ("yllcenter" if "xllcenter" in header else "yllcorner") in header
    has_cell = "cellsize" in header or ("dx" in header and "dy" in header)
    if missing or not has_x or not has_y or not has_cell:
        msg = "ASC header needs ncols, nrows, xllcorner|xllcenter, yll…, cellsize"
        raise IngestError(path, msg, rule="ASC header")
    ncols, nrows = int(header["ncols"]), int(header["nrows"])
    if values.size != ncols * nrows:
        msg = f"{values.size:,} values for a {nrows} × {ncols} grid (truncated?)"
        raise IngestError(path, msg, rule="complete file (truncated?)")
    dx = header["dx"] if "dx" in header else header["cellsize"]
    dy = header["dy"] if "dy" in header else header["cellsize"]
    if "xllcenter" in header:
        x0, y0 = header["xllcenter"] - dx / 2, header["yllcenter"] - dy / 2
    else:
        x0, y0 = header["xllcorner"], header["yllcorner"]
    heights = values.reshape(nrows, ncols)
    nodata = header.get("nodata_value")
    if nodata is not None:
        heights = np.where(heights == nodata, np.nan, heights)
    transform = Affine(dx, 0.0, x0, 0.0, -dy, y0 + nrows * dy)
    prj = path.with_suffix(".prj")
    source = prj.read_text(encoding="utf-8", errors="replace") if prj.exists() else crs
    if source is None:
        msg = "grid has no CRS: add a .prj next to it or give --crs EPSG:n"
        raise IngestError(path, msg, rule="layer has a CRS")
    epsg = resolve_epsg(source)
    if epsg is None:
        raise IngestError(path, f"unrecognised CRS in {prj.name}", rule="known CRS")
    return Dem(heights, transform, epsg, nodata, "asc")


def xyz_crs(path: Path, bounds: tuple[float, float, float, float]) -> str | None:
    """The CRS of an XYZ grid: its ``.prj``, else the one its coordinates can only be in
    (GUGiK publishes NMT as XYZ with no CRS; PL-1992 and the PL-2000 zones do not
    overlap in their coordinates), else None."""
    prj = path.with_suffix(".prj")
    if prj.exists():
        return prj.read_text(encoding="utf-8", errors="replace")
    from omw_sites.etl.crs import likely_crs

    guess = likely_crs(bounds)
    return guess if guess is not None and " " not in guess else None


def read_dem(
    path: str | Path, crs: str | int | None = None, limits: Limits = DEFAULT_LIMITS
) -> Dem:
    """Read an NMT grid (ASC, GeoTIFF or XYZ) with its CRS; heights NaN where nodata."""
    path = Path(path)
    if path.suffix.lower() in (".asc", ".txt"):
        return read_asc(path, crs, limits)
    check_size(path, limits)
    try:
        with rasterio.open(path) as src:
            heights = src.read(1, masked=True).astype(float).filled(np.nan)
            src_crs = src.crs.to_wkt() if src.crs else crs
            if src_crs is None and path.suffix.lower() == ".xyz":
                src_crs = xyz_crs(path, tuple(src.bounds))
            transform, nodata = src.transform, src.nodata
    except Exception as exc:
        raise IngestError(path, f"cannot read the raster: {exc}") from exc
    if src_crs is None:
        raise IngestError(path, "raster has no CRS; give --crs EPSG:n", rule="layer has a CRS")
    epsg = resolve_epsg(src_crs)
    if epsg is None:
        raise IngestError(path, f"unrecognised raster CRS {src_crs}", rule="known CRS")
    kind = "xyz" if path.suffix.lower() == ".xyz" else "geotiff"
    return Dem(heights, transform, epsg, nodata, kind)
