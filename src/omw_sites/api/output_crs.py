"""The coordinate reference systems the API answers in (OGC API Features Part 2): their
URIs, axis order and rounding, and the transformation from the storage CRS."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyproj
import shapely

from omw_sites.layers import WORK_CRS

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326_URI = "http://www.opengis.net/def/crs/EPSG/0/4326"
STORAGE_CRS_URI = "http://www.opengis.net/def/crs/EPSG/0/2180"
EPSG4258_URI = "http://www.opengis.net/def/crs/EPSG/0/4258"
EPSG2178_URI = "http://www.opengis.net/def/crs/EPSG/0/2178"
PL2000_ZONES = {5: 2176, 6: 2177, 7: 2178, 8: 2179}  # PL-2000 zone -> EPSG code
COORD_DECIMALS = 7  # CRS84 degrees: ~1 cm at Warsaw's latitude
STORAGE_DECIMALS = 2  # EPSG:2180 metres: 1 cm


@dataclass(frozen=True)
class OutputCrs:
    """A CRS the API answers in: its pyproj code, authority axis order and rounding."""

    uri: str
    code: str  # what pyproj.CRS understands
    swap: bool  # authority axis order is (y, x): (latitude, longitude) or (northing, easting)
    geographic: bool  # degrees (x = longitude) rather than projected metres
    decimals: int


# CRS84 first: the default; EPSG:4326 (WGS 84) and EPSG:4258 (ETRS89) in (latitude,
# longitude) as the EPSG definitions say; the storage CRS and the four PL-2000 zones (5-8,
# zone 7 is Warsaw's) in their EPSG axis order (northing, easting).
OUTPUT_CRS: dict[str, OutputCrs] = {
    c.uri: c
    for c in (
        OutputCrs(CRS84_URI, "OGC:CRS84", False, True, COORD_DECIMALS),
        OutputCrs(EPSG4326_URI, "EPSG:4326", True, True, COORD_DECIMALS),
        OutputCrs(EPSG4258_URI, "EPSG:4258", True, True, COORD_DECIMALS),
        OutputCrs(STORAGE_CRS_URI, WORK_CRS, True, False, STORAGE_DECIMALS),
        *(
            OutputCrs(f"http://www.opengis.net/def/crs/EPSG/0/{code}", f"EPSG:{code}", True,
                      False, STORAGE_DECIMALS)
            for code in PL2000_ZONES.values()
        ),
    )
}  # fmt: skip


@functools.cache
def storage_transformer(uri: str) -> pyproj.Transformer:
    """EPSG:2180 (easting, northing) → ``uri`` in (x, y) = (lon, lat) or (E, N); built once.

    pyproj Transformers are thread-safe (pyproj ≥ 3.1), so one per CRS serves every thread.
    """
    return pyproj.Transformer.from_crs(WORK_CRS, OUTPUT_CRS[uri].code, always_xy=True)


def to_crs_xy(geoms: np.ndarray, uri: str) -> np.ndarray:
    """Storage geometries in ``uri``'s (x, y) order, all coordinates in one pyproj call."""
    transformer = storage_transformer(uri)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack((x, y))

    return shapely.transform(geoms, project)
