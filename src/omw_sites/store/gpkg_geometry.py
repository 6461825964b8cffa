"""GeoPackage geometry blobs, as the ``sqlite3`` writes of the GeoPackage store need them:
a header (magic, version, flags, SRS id, envelope) followed by ISO WKB
(GeoPackage 1.3, clause 2.1.3), and the ``ST_*`` SQL functions GDAL's R-tree triggers call
on them."""

from __future__ import annotations

import sqlite3
import struct

import numpy as np
import shapely

SRS_ID = 2180
FLAG_EMPTY = 0b0001_0000
_LITTLE_ENDIAN = 0b0000_0001
_ENVELOPE_XY = 0b0000_0010  # envelope [minx, maxx, miny, maxy]


def gpkg_blobs(geoms: np.ndarray) -> list[bytes | None]:
    """GeoPackage geometry blobs of shapely geometries (None where missing); an empty
    geometry has no envelope."""
    geoms = np.asarray(geoms, dtype=object)
    wkb = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
    bounds = shapely.bounds(geoms)
    empty = shapely.is_empty(geoms)
    out: list[bytes | None] = []
    for w, (x0, y0, x1, y1), no_envelope in zip(wkb, bounds, empty, strict=True):
        if w is None:
            out.append(None)
        elif no_envelope:
            out.append(struct.pack("<2sBBi", b"GP", 0, _LITTLE_ENDIAN | FLAG_EMPTY, SRS_ID) + w)
        else:
            flags = _LITTLE_ENDIAN | _ENVELOPE_XY
            out.append(struct.pack("<2sBBi4d", b"GP", 0, flags, SRS_ID, x0, x1, y0, y1) + w)
    return out


def envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) of a GeoPackage geometry blob; None if NULL or empty."""
    if blob is None or len(blob) < 8 or blob[3] & FLAG_EMPTY:
        return None
    if (blob[3] >> 1) & 0b111 == 1:
        return struct.unpack_from("<4d", blob, 8)
    wkb_start = 8 + {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(blob[3] >> 1) & 0b111]
    x0, y0, x1, y1 = shapely.bounds(shapely.from_wkb(blob[wkb_start:]))
    return (x0, x1, y0, y1)


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions GDAL's GeoPackage R-tree triggers call."""

    def is_empty(blob: bytes | None) -> int | None:
        return None if blob is None else int(envelope(blob) is None)

    def part(i: int):
        def f(blob: bytes | None) -> float | None:
            env = envelope(blob)
            return None if env is None else env[i]

        return f

    conn.create_function("ST_IsEmpty", 1, is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, part(i), deterministic=True)
