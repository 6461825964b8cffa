"""Streaming GML 3.2 reading: namespaces, features, geometries in EPSG axis order, limits."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
import shapely
from lxml import etree
from pyproj import CRS

from omw_sites.etl.errors import IngestError

GML_NAMESPACES = ("http://www.opengis.net/gml/3.2", "http://www.opengis.net/gml")
XLINK = "{http://www.w3.org/1999/xlink}"
_HREF = f"{XLINK}href"
_EPSG = re.compile(r"EPSG(?::|::|/0/|/)(\d{4,5})\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """Input limits; a file beyond them is refused before anything is written.

    Parameters
    ----------
    max_bytes : largest file accepted, in bytes
    max_features : most features accepted from one file
    """

    max_bytes: int = 8 * 1024**3
    max_features: int = 20_000_000


DEFAULT_LIMITS = Limits()


def check_size(path: Path, limits: Limits) -> int:
    """Size of ``path`` in bytes; IngestError when empty or beyond ``limits.max_bytes``."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise IngestError(path, f"cannot open the file: {exc.strerror}") from exc
    if size == 0:
        raise IngestError(path, "the file is empty", rule="non-empty file")
    if size > limits.max_bytes:
        msg = f"the file is {size:,} bytes, beyond the limit of {limits.max_bytes:,} bytes"
        raise IngestError(path, msg, rule="size limit")
    return size


def root_info(path: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[str, dict[str, str]]:
    """Root element tag (``{ns}local``) and every namespace declared before it.

    Reads only the start of the file, so a huge or truncated file is sniffed cheaply.
    """
    check_size(path, limits)
    namespaces: dict[str, str] = {}
    try:
        for event, item in etree.iterparse(str(path), events=("start-ns", "start")):
            if event == "start-ns":
                prefix, uri = item
                namespaces[prefix or ""] = uri
            else:
                return item.tag, namespaces
    except etree.XMLSyntaxError as exc:
        raise _xml_error(path, exc) from exc
    raise IngestError(path, "no XML root element", rule="well-formed XML")


_CONTAINER_NS = (*GML_NAMESPACES, "http://www.opengis.net/wfs/2.0", "http://www.opengis.net/wfs")


def feature_namespace(path: Path, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """Namespace of the first feature in the file (files often declare many more).

    Falls back to None for a collection without features.
    """
    check_size(path, limits)
    try:
        for _, el in etree.iterparse(str(path), events=("start",)):
            ns = el.tag[1:].partition("}")[0] if el.tag.startswith("{") else ""
            if el.getparent() is not None and ns not in _CONTAINER_NS:
                return ns
    except etree.XMLSyntaxError as exc:
        raise _xml_error(path, exc) from exc
    return None


def pick_namespace(
    path: Path, namespaces: dict[str, str], accept, limits: Limits = DEFAULT_LIMITS
) -> str | None:
    """The declared namespace ``accept`` takes, preferring the first feature's own."""
    candidates = [u for u in dict.fromkeys(namespaces.values()) if accept(u)]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    used = feature_namespace(path, limits)
    return used if used in candidates else candidates[0]


def require_namespace(path: Path, accept, expected: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """The file's namespace that ``accept`` takes, or an IngestError naming ``expected``.

    ``expected`` completes "not a … GML file: no … namespace", e.g.
    ``"a GESUT GML file: no geodezyjnaEwidencjaSieciUzbrojeniaTerenu:1.0"``.
    """
    _, namespaces = root_info(path, limits)
    ns = pick_namespace(path, namespaces, accept, limits)
    if ns is None:
        found = ", ".join(sorted(set(namespaces.values()))) or "none"
        msg = f"not {expected} namespace (found: {found})"
        raise IngestError(path, msg, rule="known namespace")
    return ns


def _xml_error(path: Path, exc: etree.XMLSyntaxError) -> IngestError:
    text = str(exc)
    if "UTF-8" in text or "encoding" in text.lower() or "Char 0x" in text:
        rule = "text in the declared encoding (UTF-8)"
    elif "Premature end" in text or "EndTag" in text or "end of data" in text.lower():
        rule = "complete file (truncated?)"
    else:
        rule = "well-formed XML"
    return IngestError(path, f"malformed XML: {text}", rule=rule)


def localname(tag: str) -> str:
    """``{ns}name`` → ``name``."""
    return tag.rsplit("}", 1)[-1]


def iter_features(
    path: Path, namespace: str, names: Iterable[str], limits: Limits = DEFAULT_LIMITS
) -> Iterator[etree._Element]:
    """Yield each feature element named in ``names`` (local names in ``namespace``).

    Memory stays bounded: every feature is cleared after use together with the
    members before it. XML errors (truncated file, bad encoding) become IngestError.
    """
    tags = [f"{{{namespace}}}{n}" for n in names]
    n = 0
    ctx = etree.iterparse(
        str(path), events=("end",), tag=tags, huge_tree=True, remove_comments=True
    )
    try:
        for _, el in ctx:
            n += 1
            if n > limits.max_features:
                msg = f"more than {limits.max_features:,} features"
                raise IngestError(path, msg, layer=localname(el.tag), rule="feature limit")
            yield el
            el.clear()
            node = el
            while node is not None:
                while node.getprevious() is not None:
                    del node.getparent()[0]
                node = node.getparent()
    except etree.XMLSyntaxError as exc:
        raise _xml_error(path, exc) from exc


# ----------------------------------------------------------------------------- properties


def properties(el: etree._Element, skip_gml: bool = True) -> dict[str, list[str]]:
    """Every descendant's text and xlink values, keyed by local name.

    Code-list values come as ``name@title`` and ``name@href``; values are lists because
    properties repeat (``profilPodstawowy``). Geometry subtrees are skipped.
    """
    out: dict[str, list[str]] = {}
    stack = list(el)
    while stack:
        child = stack.pop()
        tag = child.tag
        if not isinstance(tag, str):
            continue
        ns, _, name = tag[1:].partition("}")
        if skip_gml and ns in GML_NAMESPACES:
            continue
        text = child.text.strip() if child.text else ""
        if text:
            out.setdefault(name, []).append(text)
        for attr in ("title", "href"):
            v = child.get(f"{XLINK}{attr}")
            if v:
                out.setdefault(f"{name}@{attr}", []).append(v)
        if len(child):
            stack.extend(child)
    for v in out.values():
        v.reverse()
    return out


@overload
def first(props: dict[str, list[str]], name: str, default: str) -> str: ...
@overload
def first(props: dict[str, list[str]], name: str, default: None = None) -> str | None: ...
def first(props: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    """First value of a property, or ``default``."""
    v = props.get(name)
    return v[0] if v else default


_WILDCARD_TAGS: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple] = {}
_GML_NS_SET = frozenset(GML_NAMESPACES)


def named_values(
    el: etree._Element, names: Iterable[str], hrefs: Iterable[str] = ()
) -> dict[str, list[str]]:
    """The :func:`properties` of ``el`` restricted to ``names`` (and ``hrefs`` links).

    lxml picks the wanted elements (any namespace) in C, in document order, so the
    per-feature cost does not grow with the properties a reader does not need.
    Values under GML-namespace elements are skipped, as in :func:`properties`.
    """
    names = tuple(names)
    hrefs = tuple(hrefs)
    spec = _WILDCARD_TAGS.get((names, hrefs))
    if spec is None:
        tags = [f"{{*}}{n}" for n in dict.fromkeys(names + hrefs)]
        spec = _WILDCARD_TAGS[names, hrefs] = (tags, frozenset(names), frozenset(hrefs))
    tags, text_names, href_names = spec
    out: dict[str, list[str]] = {}
    for c in el.iter(*tags):
        tag = c.tag
        cut = tag.rfind("}")
        if tag[1:cut] in _GML_NS_SET:
            continue
        name = tag[cut + 1 :]
        text = c.text
        if text and name in text_names and (text := text.strip()):
            values = out.get(name)
            if values is None:
                out[name] = [text]
            else:
                values.append(text)
        if name in href_names:
            v = c.get(_HREF)
            if v:
                out.setdefault(f"{name}@href", []).append(v)
    return out


# ----------------------------------------------------------------------------- geometry
_SURFACE_MEMBERS = ("surfaceMember", "polygonMember", "surfaceMembers", "patches")


def geometry(el: etree._Element | None) -> tuple[shapely.Geometry | None, str | None]:
    """Shapely geometry of the first GML geometry under ``el``, and its ``srsName``.

    Coordinates are returned in the file's axis order; :func:`axis_swap` tells whether
    to swap them (EPSG:2176–2180 and 4326 in URN/URI form are northing/latitude first).
    """
    if el is None:
        return None, None
    geom_el = next((c for c in el.iter() if _is_gml(c) and localname(c.tag)[0].isupper()), None)
    if geom_el is None:
        return None, None
    srs = geom_el.get("srsName")
    if srs is None:
        srs = next((c.get("srsName") for c in geom_el.iter() if c.get("srsName")), None)
    return _geom(geom_el), srs


def _is_gml(el: etree._Element) -> bool:
    return isinstance(el.tag, str) and el.tag[1:].partition("}")[0] in GML_NAMESPACES


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str) and localname(c.tag) == name]


def _coords(el: etree._Element) -> np.ndarray:
    """Coordinates of a posList / pos* / coordinates element set (n × 2)."""
    for c in el:
        if not isinstance(c.tag, str):
            continue
        name = localname(c.tag)
        if name == "posList":
            dim = int(c.get("srsDimension") or el.get("srsDimension") or 2)
            values = np.array((c.text or "").split(), dtype=float)
            if values.size % dim:
                msg = f"posList with {values.size} numbers is not a list of {dim}-D points"
                raise ValueError(msg)
            return values.reshape(-1, dim)[:, :2]
        if name == "coordinates":
            pts = [p.split(",") for p in (c.text or "").split()]
            return np.array(pts, dtype=float)[:, :2]
    pos = [np.array(p.text.split(), dtype=float)[:2] for p in el if localname(p.tag) == "pos"]
    if pos:
        return np.vstack(pos)
    points = [_coords(pt) for m in el if localname(m.tag) == "pointProperty" for pt in m if len(pt)]
    return np.vstack(points) if points else np.empty((0, 2))


def _ring(el: etree._Element) -> np.ndarray:
    ring = next((c for c in el if isinstance(c.tag, str)), None)
    if ring is None:
        return np.empty((0, 2))
    if localname(ring.tag) == "Ring":  # curveMember / Curve / segments
        parts = [_line_coords(cur) for m in ring for cur in m if isinstance(cur.tag, str)]
        return np.vstack(parts) if parts else np.empty((0, 2))
    return _coords(ring)


def _line_coords(el: etree._Element) -> np.ndarray:
    name = localname(el.tag)
    if name in ("Curve", "OrientableCurve", "CompositeCurve"):
        parts = [_line_coords(seg) for holder in el for seg in holder if isinstance(seg.tag, str)]
        parts = [p for p in parts if len(p)]
        if not parts:
            return np.empty((0, 2))
        out = [parts[0]] + [
            p[1:] if np.allclose(p[0], q[-1]) else p for q, p in zip(parts, parts[1:], strict=False)
        ]
        return np.vstack(out)
    return _coords(el)


def _polygon(el: etree._Element) -> shapely.Polygon:
    if localname(el.tag) == "Surface":
        polys = [_polygon(p) for h in el for p in h if isinstance(p.tag, str)]
        return polys[0] if len(polys) == 1 else shapely.union_all(polys)
    shell = None
    holes = []
    for c in el:
        if not isinstance(c.tag, str):
            continue
        name = localname(c.tag)
        if name in ("exterior", "outerBoundaryIs"):
            shell = _ring(c)
        elif name in ("interior", "innerBoundaryIs"):
            holes.append(_ring(c))
    if shell is None or len(shell) < 4:
        return shapely.Polygon()
    return shapely.Polygon(shell, [h for h in holes if len(h) >= 4])


def _geom(el: etree._Element) -> shapely.Geometry | None:
    name = localname(el.tag)
    if name == "Point":
        xy = _coords(el)
        return shapely.Point(xy[0]) if len(xy) else shapely.Point()
    if name in ("LineString", "LineStringSegment", "Curve", "CompositeCurve", "OrientableCurve"):
        xy = _line_coords(el)
        return shapely.LineString(xy) if len(xy) >= 2 else shapely.LineString()
    if name in ("Polygon", "PolygonPatch", "Surface"):
        return _polygon(el)
    if name in ("MultiSurface", "MultiPolygon", "CompositeSurface"):
        polys = []
        for m in el:
            if isinstance(m.tag, str) and localname(m.tag) in (*_SURFACE_MEMBERS, "surfaceMember"):
                polys += [_polygon(p) for p in m if isinstance(p.tag, str)]
        parts = []
        for p in polys:
            parts += list(shapely.get_parts(p))
        return shapely.MultiPolygon(parts) if parts else shapely.MultiPolygon()
    if name in ("MultiCurve", "MultiLineString"):
        lines = [
            _geom(c) for m in el if isinstance(m.tag, str) for c in m if isinstance(c.tag, str)
        ]
        return shapely.MultiLineString([g for g in lines if g is not None and not g.is_empty])
    if name == "MultiPoint":
        pts = [_geom(c) for m in el if isinstance(m.tag, str) for c in m if isinstance(c.tag, str)]
        return shapely.MultiPoint([p for p in pts if p is not None and not p.is_empty])
    return None


_POLYGON_TAGS = frozenset(f"{{{ns}}}Polygon" for ns in GML_NAMESPACES)
_EXTERIOR = frozenset(f"{{{ns}}}exterior" for ns in GML_NAMESPACES)
_INTERIOR = frozenset(f"{{{ns}}}interior" for ns in GML_NAMESPACES)
_LINEAR_RING = frozenset(f"{{{ns}}}LinearRing" for ns in GML_NAMESPACES)
_POS_LIST = frozenset(f"{{{ns}}}posList" for ns in GML_NAMESPACES)


class PolygonBatch:
    """Plain GML polygons gathered while streaming, then built and reprojected in one call.

    :meth:`add` queues a ``gml:Polygon`` whose rings are 2-D ``posList``s of at least
    four points (what EGiB exports hold); anything else is refused and left to
    :func:`geometry`. :meth:`build` parses every coordinate at once, puts easting first
    where the ``srsName`` is northing-first, reprojects to EPSG:2180 with one pyproj
    call per CRS and creates the polygons with ``shapely.from_ragged_array``.
    """

    CHUNK = 1_000_000  # coordinate values held as text before they are parsed

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.tokens: list[str] = []
        self.ring_sizes: list[int] = []
        self.poly_rings: list[int] = []
        self.where: list[int] = []
        self.srs: list[str | None] = []

    def add(self, i: int, el: etree._Element | None) -> bool:
        """Queue geometry element ``el`` of feature ``i``; False when it is not plain."""
        if el is None or el.tag not in _POLYGON_TAGS or el.get("srsDimension", "2") != "2":
            return False
        rings: list[list[str]] = []
        expect = _EXTERIOR
        for c in el:
            if c.tag not in expect or len(c) != 1:
                return False
            expect = _INTERIOR
            ring = c[0]
            if ring.tag not in _LINEAR_RING or len(ring) != 1:
                return False
            pos = ring[0]
            if pos.tag not in _POS_LIST or pos.get("srsDimension", "2") != "2":
                return False
            values = pos.text.split() if pos.text else []
            if len(values) < 8 or len(values) % 2 or ring.get("srsDimension", "2") != "2":
                return False
            rings.append(values)
        if not rings:
            return False
        srs = el.get("srsName")
        if srs is None:
            srs = next((c.get("srsName") for c in el.iter() if c.get("srsName")), None)
        for values in rings:
            self.tokens += values
            self.ring_sizes.append(len(values) >> 1)
        if len(self.tokens) >= self.CHUNK:  # bounded memory: numbers, not strings
            self.chunks.append(np.array(self.tokens, dtype=float))
            self.tokens = []
        self.poly_rings.append(len(rings))
        self.where.append(i)
        self.srs.append(srs)
        return True

    def __len__(self) -> int:
        return len(self.where)

    def build(self, geoms: np.ndarray, done: np.ndarray) -> None:
        """Put the queued polygons into ``geoms`` (object array, by feature index).

        Polygons whose ``srsName`` names an EPSG code are written in EPSG:2180 and
        marked in ``done``; the others keep the file's coordinates for
        :func:`to_work_crs` (which applies ``--crs`` or refuses them).

        Raises
        ------
        ValueError
            A coordinate is not a number (also from :meth:`add`, which parses them in
            chunks of :attr:`CHUNK` values).
        """
        if not self.where:
            return
        arrays = self.arrays()
        arrays.to_work_crs()
        arrays.build(geoms, done)

    def arrays(self) -> PolygonArrays:
        """The queued polygons as plain arrays, coordinates as written in the file.

        What :meth:`build` makes polygons of; plain arrays travel cheaply between
        processes (see :mod:`omw_sites.etl.gml_chunks`), and no PROJ call is needed.

        Raises
        ------
        ValueError
            A coordinate is not a number.
        """
        self.chunks.append(np.array(self.tokens, dtype=float))
        xy = np.concatenate(self.chunks).reshape(-1, 2)
        self.chunks, self.tokens = [], []
        names: dict[str, int] = {}
        codes = np.array([names.setdefault(s or "", len(names)) for s in self.srs], dtype=np.int32)
        return PolygonArrays(
            xy,
            np.asarray(self.ring_sizes, dtype=np.int64),
            np.asarray(self.poly_rings, dtype=np.int64),
            np.asarray(self.where, dtype=np.int64),
            codes,
            list(names),
        )


@dataclass
class PolygonArrays:
    """Polygons as arrays: points (n × 2), points per ring, rings per polygon, feature index.

    ``srs_codes`` index ``srs_names`` (one ``srsName`` per polygon, "" for none);
    ``known`` marks the polygons whose points :meth:`to_work_crs` put in EPSG:2180.
    """

    xy: np.ndarray
    ring_sizes: np.ndarray
    poly_rings: np.ndarray
    where: np.ndarray
    srs_codes: np.ndarray
    srs_names: list[str]
    known: np.ndarray | None = None

    @classmethod
    def concat(cls, parts: list[PolygonArrays], offsets: list[int]) -> PolygonArrays:
        """One set of the (unprojected) ``parts``; ``offsets`` shift their feature indices."""
        names: dict[str, int] = {}
        codes = []
        for p in parts:
            remap = np.array(
                [names.setdefault(n, len(names)) for n in p.srs_names] or [0], dtype=np.int32
            )
            codes.append(remap[p.srs_codes])

        def cat(values: list[np.ndarray], dtype) -> np.ndarray:
            return np.concatenate(values) if values else np.zeros(0, dtype)

        return cls(
            cat([p.xy for p in parts], float).reshape(-1, 2),
            cat([p.ring_sizes for p in parts], np.int64),
            cat([p.poly_rings for p in parts], np.int64),
            cat([p.where + o for p, o in zip(parts, offsets, strict=True)], np.int64),
            cat(codes, np.int32),
            list(names),
        )

    def to_work_crs(self) -> None:
        """Points of polygons whose ``srsName`` names an EPSG code → EPSG:2180, in place.

        Northing-first CRSs are swapped to easting first; one pyproj call per CRS.
        """
        known = np.zeros(len(self.where), dtype=bool)
        self.known = known
        if not len(self.where):
            return
        poly_offsets = np.concatenate([[0], np.cumsum(self.poly_rings)])
        points_per_poly = np.add.reduceat(self.ring_sizes, poly_offsets[:-1])
        xy = self.xy
        for k, name in enumerate(self.srs_names):
            code = epsg_of(name)
            if code is None:
                continue
            polys = self.srs_codes == k
            known |= polys
            at = np.repeat(polys, points_per_poly)
            part = xy[at]
            if axis_swap(name):
                part = part[:, ::-1]
            if code != 2180:
                try:
                    t = _transformer_to_2180(code)
                except Exception:  # unknown code: to_work_crs reports it
                    known &= ~polys
                    continue
                part = np.column_stack(t.transform(part[:, 0], part[:, 1]))
            xy[at] = part

    def build(self, geoms: np.ndarray, done: np.ndarray) -> None:
        """Create the polygons in one call into ``geoms[where]``; mark ``done[where[known]]``."""
        if not len(self.where):
            return
        ring_offsets = np.concatenate([[0], np.cumsum(self.ring_sizes)])
        poly_offsets = np.concatenate([[0], np.cumsum(self.poly_rings)])
        built = shapely.from_ragged_array(
            shapely.GeometryType.POLYGON, self.xy, (ring_offsets, poly_offsets)
        )
        geoms[self.where] = built
        if self.known is not None:
            done[self.where[self.known]] = True


@functools.lru_cache(maxsize=64)
def _transformer_to_2180(code: int):
    from pyproj import Transformer

    return Transformer.from_crs(code, 2180, always_xy=True)


def _transformer_from_2180(code: int):
    from pyproj import Transformer

    return Transformer.from_crs(2180, code, always_xy=True)


# ----------------------------------------------------------------------------- CRS


def epsg_of(srs_name: str | None) -> int | None:
    """EPSG code in an ``srsName`` (URN, OGC URI or ``EPSG:n``); None if there is none."""
    if not srs_name:
        return None
    m = _EPSG.search(srs_name.strip())
    return int(m.group(1)) if m else None


def axis_swap(srs_name: str | None) -> bool:
    """True when coordinates under ``srs_name`` are northing/latitude first.

    URN (``urn:ogc:def:crs:EPSG::2180``) and URI (``…/def/crs/EPSG/0/2180``) forms follow
    the EPSG axis order, which is northing-easting for EPSG:2176–2180 and lat-lon for
    4326; the short ``EPSG:2180`` form is read easting first, as GDAL does.
    """
    return _axis_swap(srs_name)


@functools.lru_cache(maxsize=256)
def _axis_swap(srs_name: str | None) -> bool:
    code = epsg_of(srs_name)
    if code is None or not srs_name or not ("urn:" in srs_name or "/def/crs/" in srs_name):
        return False
    try:
        axis = CRS.from_epsg(code).axis_info
    except Exception:  # unknown code: leave as read
        return False
    return bool(axis) and axis[0].direction.lower() in ("north", "south")


def swap_xy(geoms: np.ndarray) -> np.ndarray:
    """Swap x and y of every geometry (vectorised)."""
    return shapely.transform(geoms, lambda xy: xy[:, ::-1])


def to_work_crs(
    path: Path,
    layer: str,
    geoms: Sequence[shapely.Geometry | None] | np.ndarray,
    srs_names: list[str | None],
    crs: str | int | None = None,
    done: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Geometries reprojected to EPSG:2180 per ``srsName``; also the input CRS as text.

    Features without an ``srsName`` take ``crs`` (the user's ``--crs``); without it the
    file is refused, naming the layer. ``done`` marks geometries already in EPSG:2180
    (built by :class:`PolygonBatch`): their ``srsName`` is only reported.
    """
    import geopandas as gpd

    from omw_sites.etl.crs import check_extent, resolve_epsg

    if isinstance(geoms, np.ndarray) and geoms.dtype == object:
        arr = geoms
    else:
        arr = np.empty(len(geoms), dtype=object)
        arr[:] = geoms
    srs = np.array([s or "" for s in srs_names], dtype=object)
    todo = np.ones(len(arr), dtype=bool) if done is None else ~done
    seen: list[str] = []
    for s in dict.fromkeys(srs.tolist()):
        mask = (srs == s) & todo
        if s == "":
            if crs is None:
                msg = "geometry has no srsName; give the CRS explicitly (--crs EPSG:n)"
                raise IngestError(path, msg, layer=layer, rule="layer has a CRS")
            # the short EPSG:n form is read easting first as GDAL does; a URN or URI
            # given by the user means the authority's axis order, as in a srsName
            code, swap = resolve_epsg(crs), isinstance(crs, str) and axis_swap(crs)
        else:
            code, swap = epsg_of(s), axis_swap(s)
            if code is None:
                try:
                    code = resolve_epsg(s)
                except Exception:
                    code = None
        if code is None:
            raise IngestError(path, f"unrecognised CRS {s or crs!r}", layer=layer, rule="known CRS")
        seen.append(f"EPSG:{code}")
        if done is not None:  # built in EPSG:2180 already: judge them by their own bounds
            _check_done_extent(path, layer, arr[(srs == s) & done], code)
        if not mask.any():
            continue
        part = arr[mask]
        if swap:
            part = swap_xy(part)
        check_extent(path, tuple(shapely.total_bounds(part).tolist()), code, layer)
        if code != 2180:
            part = gpd.GeoSeries(part, crs=code).to_crs(2180).to_numpy()
        arr[mask] = part
    return arr, ", ".join(dict.fromkeys(seen)) or "EPSG:2180"


def _check_done_extent(path: Path, layer: str, geoms: np.ndarray, code: int) -> None:
    """:func:`~omw_sites.etl.crs.check_extent` for geometries already put in EPSG:2180 from
    ``code``: their bounds are taken back to ``code`` first (coordinates that could not be
    in ``code`` come out of the transformation as infinities)."""
    from omw_sites.etl.crs import check_extent

    if not len(geoms):
        return
    x0, y0, x1, y1 = shapely.total_bounds(geoms).tolist()
    if code != 2180 and all(map(np.isfinite, (x0, y0, x1, y1))):
        back = _transformer_from_2180(code)
        xs, ys = back.transform([x0, x1, x0, x1], [y0, y0, y1, y1])
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    elif code != 2180:
        msg = f"coordinates cannot be read in the declared CRS EPSG:{code} (they do not transform)"
        raise IngestError(path, msg, layer=layer, rule="layer lies in Poland in its CRS")
    check_extent(path, (x0, y0, x1, y1), code, layer)
