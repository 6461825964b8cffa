"""CRS recognition: EPSG codes, including ESRI's UWPP names GDAL does not map by itself."""

from __future__ import annotations

import math
import re
from typing import Any

from pyproj import CRS

# ESRI WKT names of the Polish grids (FORMATS.md): ETRS_1989_UWPP_1992 and
# ETRS_1989_UWPP_2000_PAS_5..8 (PL-2000 zones 5–8 = EPSG:2176–2179)
_UWPP_1992 = re.compile(r"UWPP_1992|CS92|PUWG.?1992", re.IGNORECASE)
_UWPP_2000 = re.compile(r"UWPP_2000_PAS_([5-8])|CS2000.?zone.?([5-8])", re.IGNORECASE)


def resolve_epsg(crs: CRS | str | int | None) -> int | None:
    """EPSG code of ``crs``, recognising Polish grids by their ESRI names; None if unknown."""
    if crs is None:
        return None
    crs = CRS.from_user_input(crs)
    code = crs.to_epsg(min_confidence=70)
    if code is not None:
        return code
    name = f"{crs.name} {crs.to_wkt()}"
    if m := _UWPP_2000.search(name):
        return 2171 + int(m.group(1) or m.group(2))
    if _UWPP_1992.search(name):
        return 2180
    return None


# Poland in longitude/latitude, with a margin of about a degree: a layer whose coordinates,
# read in its declared CRS, fall wholly outside this box has a wrong CRS label (a PL-2000
# file labelled EPSG:2180 lands in the Indian Ocean; metres labelled EPSG:4326 do not
# transform at all) and would silently end every site of a run.
POLAND_LONLAT = (13.0, 48.0, 25.2, 55.9)
# what a mislabelled Polish layer most often really is
LIKELY_CRS = (2180, 2176, 2177, 2178, 2179, 4326, 3857, 2172, 2173, 2174, 2175)


def _lonlat_box(
    bounds: tuple[float, float, float, float], epsg: int, swap: bool = False
) -> tuple[float, float, float, float] | None:
    """``bounds`` (x = easting/longitude first) read in ``epsg`` as a lon/lat box; None when
    the coordinates cannot be in that CRS (outside its range, not finite)."""
    from pyproj import Transformer

    x0, y0, x1, y1 = bounds
    xs = [x0, x1, x0, x1, (x0 + x1) / 2]
    ys = [y0, y0, y1, y1, (y0 + y1) / 2]
    if swap:
        xs, ys = ys, xs
    crs = CRS.from_epsg(epsg)
    in_range = all(-180 <= x <= 180 for x in xs) and all(-90 <= y <= 90 for y in ys)
    if crs.is_geographic and not in_range:
        return None
    try:
        t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = t.transform(xs, ys, errcheck=True)
    except Exception:  # pyproj.ProjError: not a position in this CRS
        return None
    if not all(map(math.isfinite, [*lon, *lat])):
        return None
    return min(lon), min(lat), max(lon), max(lat)


def _in_poland(box: tuple[float, float, float, float] | None, *, whole: bool) -> bool:
    if box is None:
        return False
    px0, py0, px1, py1 = POLAND_LONLAT
    x0, y0, x1, y1 = box
    if whole:
        return px0 <= x0 and py0 <= y0 and x1 <= px1 and y1 <= py1
    return x0 <= px1 and px0 <= x1 and y0 <= py1 and py0 <= y1


def likely_crs(bounds: tuple[float, float, float, float]) -> str | None:
    """The CRS in which coordinates with these ``bounds`` lie in Poland, as text."""
    for code in LIKELY_CRS:
        if _in_poland(_lonlat_box(bounds, code), whole=True):
            return f"EPSG:{code}"
    for code in LIKELY_CRS:  # the axes the other way round (GML's authority order)
        if _in_poland(_lonlat_box(bounds, code, swap=True), whole=True):
            first = "latitude" if CRS.from_epsg(code).is_geographic else "northing"
            return f"EPSG:{code} written {first} first (urn:ogc:def:crs:EPSG::{code})"
    return None


def extent_problem(bounds: tuple[float, float, float, float], epsg: int) -> str | None:
    """Why a layer with raw coordinate ``bounds`` cannot be in EPSG ``epsg`` (None: it can).

    The layer must overlap Poland once read in its declared CRS; the message names the
    CRS the coordinates most likely are in.
    """
    if not all(map(math.isfinite, bounds)):
        return None  # no geometry to judge by
    if _in_poland(_lonlat_box(bounds, epsg), whole=False):
        return None
    x0, y0, x1, y1 = (f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}" for v in bounds)
    text = (
        f"coordinates x {x0}..{x1}, y {y0}..{y1} lie outside Poland "
        f"when read in the declared CRS EPSG:{epsg}"
    )
    guess = likely_crs(bounds)
    if guess:
        text += f"; they are most likely {guess}: fix the CRS label (.prj / srsName / SRS)"
    return text


def check_extent(
    file: Any, bounds: tuple[float, float, float, float], epsg: int, layer: str | None = None
) -> None:
    """Raise an :class:`~omw_sites.etl.errors.IngestError` when ``bounds`` (raw coordinates,
    easting first) cannot be in ``epsg`` (see :func:`extent_problem`)."""
    problem = extent_problem(bounds, epsg)
    if problem:
        from omw_sites.etl.errors import IngestError

        raise IngestError(file, problem, layer=layer, rule="layer lies in Poland in its CRS")
