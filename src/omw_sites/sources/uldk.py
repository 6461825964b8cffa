"""ULDK, GUGiK's parcel location service (``uldk.gugik.gov.pl``): gmina boundaries by
TERYT (``GetCommuneById``) and single parcels by EGiB ID (``GetParcelById``), for
nomination lists.

The answer is text: a status line (``0`` found, ``-1 …`` not) and then
``SRID=2180;<WKT>|<id>`` per object, as asked with ``result=geom_wkt,teryt``. The
answers are turned into GeoPackages the raw folder reads: gminy with ``JPT_KOD_JE`` (the
7-digit TERYT) and parcels with ``ID_DZIALKI``.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import shapely

from omw_sites.config import Settings
from omw_sites.sources import answers
from omw_sites.sources.answers import BadAnswer
from omw_sites.sources.spec import (
    Area,
    BBox,
    Download,
    NotConfigured,
    uldk_unit,
    with_query,
)

NAME = "boundaries"
PARCELS = "parcels-uldk"
LICENCE = {
    "pl": "PRG i ULDK (GUGiK): dane udostępniane nieodpłatnie (art. 40a ust. 2 pkt 1 "
    "ustawy Prawo geodezyjne i kartograficzne); geometria działek z powiatowych baz EGiB",
    "en": "PRG and ULDK (GUGiK): free of charge (Art. 40a(2)(1) of the Geodetic and "
    "Cartographic Law); parcel geometry from the powiat EGiB databases",
}
GIVES = {
    "pl": "granice gmin obszaru (PRG, przez ULDK) i jego zasięg",
    "en": "the area's gmina boundaries (PRG, through ULDK) and its extent",
}
GIVES_PARCELS = {
    "pl": "działki z listy identyfikatorów (--parcels-by-id), np. zgłoszone przez gminę",
    "en": "parcels of an ID list (--parcels-by-id), e.g. those a gmina nominates",
}


def downloads(area: Area, settings: Settings) -> list[Download]:
    if not area.gminy:  # an area given by --bbox only
        return []
    urls = [
        with_query(
            settings.source_uldk_url,
            {"request": "GetCommuneById", "id": uldk_unit(t), "result": "geom_wkt,teryt,commune"},
        )
        for t in area.gminy
    ]
    return [Download("admin/gminy_uldk.gpkg", urls, answers.uldk_text, convert=_gminy)]


def parcel_downloads(area: Area, settings: Settings) -> list[Download]:
    if not area.parcel_ids:
        raise NotConfigured("no parcel IDs: give --parcels-by-id FILE")
    urls = [
        with_query(
            settings.source_uldk_url,
            {"request": "GetParcelById", "id": pid, "result": "geom_wkt,teryt", "srid": "2180"},
        )
        for pid in area.parcel_ids
    ]
    return [Download("egib/dzialki_uldk.gpkg", urls, answers.uldk_text, convert=_parcels)]


# spacing of the points whose powiat is asked (GetCountyByXY) to find every powiat the
# buffered area touches; a powiat narrower than this between two points can be missed
# (name it with --powiat)
COUNTY_GRID_M = 7_500.0


def county_urls(bbox: BBox, settings: Settings) -> list[str]:
    """``GetCountyByXY`` for a grid of points over ``bbox`` (corners and edges included);
    ``xy`` is easting, northing and the SRID, as ULDK's clients send it."""
    xmin, ymin, xmax, ymax = bbox
    nx = max(1, math.ceil((xmax - xmin) / COUNTY_GRID_M))
    ny = max(1, math.ceil((ymax - ymin) / COUNTY_GRID_M))
    urls = []
    for i in range(nx + 1):
        for j in range(ny + 1):
            x, y = xmin + (xmax - xmin) * i / nx, ymin + (ymax - ymin) * j / ny
            params = {"request": "GetCountyByXY", "xy": f"{x:.0f},{y:.0f},2180", "result": "teryt"}
            urls.append(with_query(settings.source_uldk_url, params))
    return urls


def county(path: Path) -> str:
    """The powiat code of a ``GetCountyByXY`` answer."""
    code = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[1].strip()
    if not (len(code) == 4 and code.isdigit()):
        raise BadAnswer(f"not a powiat code: {code[:40]!r}")
    return code


def _rows(path: Path) -> list[tuple[shapely.Geometry, list[str]]]:
    """Each object line of an answer: geometry and the fields after it."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[1:]:
        wkt, *fields = line.strip().split("|")
        srid, _, body = wkt.partition(";") if wkt.startswith("SRID=") else ("SRID=2180", "", wkt)
        if srid != "SRID=2180":
            raise BadAnswer(f"geometry in {srid}, asked for 2180")
        try:
            out.append((shapely.from_wkt(body), fields))
        except shapely.errors.GEOSException as exc:
            raise BadAnswer(f"unreadable WKT ({exc})") from exc
    return out


def _gminy(paths: list[Path], target: Path) -> None:
    geoms, codes, names = [], [], []
    for p in paths:
        for geom, fields in _rows(p):
            unit = fields[0] if fields else ""
            geoms.append(geom)
            codes.append(unit.replace("_", ""))
            names.append(fields[1] if len(fields) > 1 else "")
    frame = {"JPT_KOD_JE": codes, "JPT_NAZWA_": names}
    gpd.GeoDataFrame(frame, geometry=geoms, crs=2180).to_file(target, driver="GPKG", layer="gminy")


def _parcels(paths: list[Path], target: Path) -> None:
    geoms, ids = [], []
    for p in paths:
        for geom, fields in _rows(p):
            geoms.append(geom)
            ids.append(fields[0] if fields else "")
    gpd.GeoDataFrame({"ID_DZIALKI": ids}, geometry=geoms, crs=2180).to_file(
        target, driver="GPKG", layer="dzialki"
    )
