"""How an answer of a service is checked before it is kept: a service that is down may
answer 200 with an error page, an exception report or a cut file, and none of that may
reach the cache or the raw folder.

Each check reads the downloaded file and raises :class:`BadAnswer` naming what is wrong.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from lxml import etree


class BadAnswer(Exception):
    """The service answered, but not with what it publishes."""


class NoResult(BadAnswer):
    """The service answered properly that it has nothing for the request."""


def zip_package(path: Path) -> None:
    """A zip whose every member is whole (CRC checked): GUGiK packages."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        raise BadAnswer(f"not a zip (starts with {head!r})")
    try:
        with zipfile.ZipFile(path) as z:
            if not z.namelist():
                raise BadAnswer("an empty zip")
            if (bad := z.testzip()) is not None:
                raise BadAnswer(f"zip member {bad} is damaged")
    except zipfile.BadZipFile as exc:
        raise BadAnswer(f"a damaged or cut zip ({exc})") from exc


def _xml_root(path: Path) -> etree._Element:
    """The root of a whole, well-formed XML file (a cut file fails here); entities are
    not expanded and nothing is fetched from the network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        return etree.parse(str(path), parser).getroot()
    except etree.XMLSyntaxError as exc:
        raise BadAnswer(f"not well-formed XML, cut or damaged ({exc})") from exc


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def wfs_collection(path: Path) -> None:
    """A WFS GetFeature answer (or a GML file): a whole ``FeatureCollection``, not an OWS
    ``ExceptionReport``."""
    root = _xml_root(path)
    name = _local(root.tag)
    if name in ("ExceptionReport", "ServiceExceptionReport"):
        text = " ".join(t.strip() for t in root.itertext() if t.strip())
        raise BadAnswer(f"the service reported an exception: {text[:300]}")
    if name != "FeatureCollection":
        raise BadAnswer(f"expected a GML FeatureCollection, got <{name}>")
    matched, returned = root.get("numberMatched", ""), root.get("numberReturned", "")
    if matched.isdigit() and returned.isdigit() and int(returned) < int(matched):
        # a service's cap on features per answer: a part of the area is not a dataset
        raise BadAnswer(f"only {returned} of {matched} features returned (a service limit)")


def uldk_text(path: Path) -> None:
    """ULDK's text answer: the first line is the status, ``0`` when found (else ``-1``
    and the reason, e.g. ``-1 brak wyników``), then one line per object."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.strip().splitlines()
    if not lines:
        raise BadAnswer("an empty answer")
    status = lines[0].strip()
    if status != "0":
        raise NoResult(f"ULDK found nothing (status {status[:200]!r})")
    if len(lines) < 2 or "SRID=" not in lines[1] and "(" not in lines[1]:
        raise BadAnswer("no geometry after the status line")


def uldk_status(path: Path) -> None:
    """A ULDK answer without geometry (``result=teryt``): the status line, then values."""
    lines = path.read_bytes().decode("utf-8", errors="replace").strip().splitlines()
    if not lines:
        raise BadAnswer("an empty answer")
    if lines[0].strip() != "0":
        raise NoResult(f"ULDK found nothing (status {lines[0].strip()[:200]!r})")
    if len(lines) < 2 or not lines[1].strip():
        raise BadAnswer("no value after the status line")


# first keywords of an Esri ASCII grid header (either corner or centre origin)
ASC_KEYS = ("ncols", "nrows", "xllcorner", "xllcenter", "yllcorner", "yllcenter", "cellsize")


def elevation_grid(path: Path) -> None:
    """An NMT grid: a GeoTIFF (magic bytes) or an ASC grid (its header)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return
    words = [
        line.split()[0].lower()
        for line in head.decode("ascii", "replace").splitlines()[:6]
        if line.split()
    ]
    if {"ncols", "nrows", "cellsize"} <= set(words) and set(words[:5]) <= set(ASC_KEYS):
        return
    if head.lstrip().startswith(b"<"):
        raise BadAnswer("expected a GeoTIFF or ASC grid, got XML (an exception report?)")
    raise BadAnswer(f"expected a GeoTIFF or ASC grid, starts with {head[:16]!r}")


def osm_xml(path: Path) -> None:
    """An Overpass answer in OSM XML: root ``<osm>``; Overpass reports a timeout or a
    memory limit in a ``<remark>`` with a 200 status."""
    root = _xml_root(path)
    if root.tag != "osm":
        raise BadAnswer(f"expected OSM XML (<osm>), got <{_local(root.tag)}>")
    for remark in root.iter("remark"):
        if "error" in (remark.text or "").lower():
            raise BadAnswer(f"Overpass: {(remark.text or '').strip()[:300]}")
