"""What a source asks for: the area, and each file it puts into the raw folder."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

BBox = tuple[float, float, float, float]  # EPSG:2180: xmin, ymin, xmax, ymax (E, N)


@dataclass
class Area:
    """The area of one fetch: its gminy (7-digit TERYT), the powiaty whose packages it
    needs, and its extent in EPSG:2180 (buffered; None until the boundaries arrive)."""

    gminy: list[str]
    powiaty: list[str]
    bbox: BBox | None = None
    parcel_ids: list[str] = field(default_factory=list)  # --parcels-by-id


@dataclass
class Download:
    """One file of the raw folder: ``target`` (relative to the folder) from the answers
    to ``urls``, each checked by ``check``; ``convert`` makes the file from the answers
    (ULDK's text answers become a GeoPackage), else the one answer is kept as is."""

    target: str
    urls: list[str]
    check: Callable[[Path], None]
    data: bytes | None = None  # a POST body (Overpass)
    convert: Callable[[list[Path], Path], None] | None = None


class NotConfigured(Exception):
    """A source with no national address whose address the settings do not give."""


GMINA = re.compile(r"^(\d{6})_?(\d)$")


def gmina_teryt(value: str) -> str:
    """A gmina's 7-digit TERYT (``1465011``) from ``1465011`` or ``146501_1``.

    Raises
    ------
    ValueError
        Anything else (a powiat's 4 digits, a parcel ID …).
    """
    m = GMINA.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a gmina TERYT (7 digits, e.g. 1465011 or 146501_1)")
    return m.group(1) + m.group(2)


def uldk_unit(teryt: str) -> str:
    """ULDK's form of a gmina code: ``146501_1``."""
    return f"{teryt[:6]}_{teryt[6]}"


def with_query(base: str, params: dict[str, str]) -> str:
    """``base`` with ``params`` added to its query (``base`` may carry its own)."""
    sep = "&" if "?" in base else "?"
    return base + sep + urlencode(params, safe=",:()")


def wfs_bbox(bbox: BBox) -> str:
    """A WFS 2.0 BBOX in EPSG:2180 by URN, whose axis order is northing, easting."""
    xmin, ymin, xmax, ymax = bbox
    return f"{ymin:.0f},{xmin:.0f},{ymax:.0f},{xmax:.0f},urn:ogc:def:crs:EPSG::2180"
