"""CRS recognition: EPSG codes, including ESRI's UWPP names GDAL does not map by itself."""

from __future__ import annotations

import re

from pyproj import CRS

# ESRI WKT names of the Polish grids (FORMATS.md): ETRS_1989_UWPP_1992 and
# ETRS_1989_UWPP_2000_PAS_5..8 (PL-2000 zones 5–8 = EPSG:2176–2179)
_UWPP_1992 = re.compile(r"UWPP_1992|CS92|PUWG.?1992", re.IGNORECASE)
_UWPP_2000 = re.compile(r"UWPP_2000_PAS_([5-8])|CS2000.?zone.?([5-8])", re.IGNORECASE)


def resolve_epsg(crs: CRS | str | None) -> int | None:
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
