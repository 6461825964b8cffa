"""Request parameters and what they resolve to.

Unknown query parameters are refused and ``f`` names the format; the collection of the
path resolves to a served layer; ``crs``, ``bbox``, ``datetime``, ``sortby`` and
``properties`` are checked and parsed here, each answering a 400 problem naming itself.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from fastapi import Path, Query
from starlette.requests import Request
from starlette.responses import Response

from omw_sites.api.catalog import Catalog, Snapshot
from omw_sites.api.conditional import cache_headers, not_modified
from omw_sites.api.negotiation import DOC_FORMATS, Format, negotiate
from omw_sites.api.output_crs import CRS84_URI, OUTPUT_CRS, STORAGE_CRS_URI
from omw_sites.api.problems import ProblemError, bad_parameter, message
from omw_sites.api.served_layer import Box, Layer
from omw_sites.i18n import LANGUAGES

CRS84 = CRS84_URI
STORAGE_CRS = STORAGE_CRS_URI
SUPPORTED_CRS = tuple(OUTPUT_CRS)  # CRS84 (default), EPSG:4326, 4258, 2180, PL-2000 zones
CRS_LIST = ", ".join(SUPPORTED_CRS)


def _crs_label(uri: str) -> str:
    crs = OUTPUT_CRS[uri]
    order = "lat/lon" if crs.geographic else "northing/easting"
    return f"{crs.code} ({'storage CRS, ' if uri == STORAGE_CRS else ''}{order})"


OUTPUT_CRS_LIST_TEXT = ", ".join(
    f"{uri} = {_crs_label(uri)}" for uri in SUPPORTED_CRS if uri != CRS84
)

# ------------------------------------------------------------ every route: names, f


def check_params(request: Request, allowed: frozenset[str]) -> None:
    """OGC API Features: a query parameter the API does not define is a 400 naming it;
    ``lang``, where allowed, must name a language the pages are written in."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        names = ", ".join(unknown)
        takes = message(", ".join(sorted(allowed)) or "no parameters")
        msg = "unknown query parameter(s) %(names)s; this endpoint takes %(takes)s"
        raise ProblemError(
            400,
            msg,
            invalid_params=[{"name": n, "reason": message("unknown")} for n in unknown],
            names=names,
            takes=takes,
        )
    lang = request.query_params.get("lang")
    if lang is not None and lang not in LANGUAGES:
        valid = ", ".join(LANGUAGES)
        raise bad_parameter(
            "lang", "must be one of %(valid)s, not %(value)s", valid=valid, value=repr(lang)
        )


lang_query = Query(
    None,
    description="language of an HTML page and of problem details: pl or en (default: the "
    "Accept-Language header; pages without either are Polish)",
    json_schema_extra={"enum": list(LANGUAGES)},
)


def check_format(f: str | None, allowed: tuple[str, ...] = ("json",)) -> str:
    """``f`` if it is one of ``allowed`` (the first when absent), else a 400."""
    if f is None:
        return allowed[0]
    if f not in allowed:
        valid = ", ".join(allowed)
        raise bad_parameter(
            "f", "must be one of %(valid)s, not %(value)s", valid=valid, value=repr(f)
        )
    return f


def format_query(*formats: str) -> Any:
    """The ``f`` query parameter: one of ``formats`` (the first is the default)."""
    names = ", ".join(formats)
    return Query(
        None,
        description=f"response format: {names}; without it the Accept header chooses "
        f"({formats[0]} for */*)",
        json_schema_extra={"enum": list(formats)},
    )


# ----------------------------------------------------------------- the collection

collection_id_path = Path(
    alias="collectionId", description="collection: sites or a reference layer"
)


async def snapshot(request: Request) -> Snapshot:
    """The snapshot of the store this request is answered from."""
    catalog: Catalog = request.app.state.catalog
    return await catalog.current()


def get_layer(snap: Snapshot, collection_id: str) -> Layer:
    """The collection ``collection_id`` of ``snap``, or a 404 naming the collections."""
    try:
        return snap.layers[collection_id]
    except KeyError:
        msg = "no collection %(name)s; collections: %(valid)s"
        raise ProblemError(
            404, msg, name=repr(collection_id), valid=", ".join(snap.layers)
        ) from None


async def document_request(
    request: Request, f: str | None, formats: tuple[Format, ...] = DOC_FORMATS
) -> tuple[str, Snapshot, dict[str, str], Response | None]:
    """The common start of a document: check the parameters (only ``f``), negotiate the
    format, take the snapshot, and the cache headers with a 304 response when the
    client's copy is current. Returns (format, snapshot, headers, 304)."""
    check_params(request, frozenset({"f", "lang"}))
    fmt = negotiate(request, f, formats)
    snap = await snapshot(request)
    headers = cache_headers(request, snap, fmt)
    return fmt, snap, headers, not_modified(request, headers)


async def layer_request(
    request: Request,
    collection_id: str,
    f: str | None,
    formats: tuple[Format, ...] = DOC_FORMATS,
    pick: Any = None,
) -> tuple[str, Snapshot, Layer, dict[str, str], Response | None]:
    """The common start of a per-collection document: check the parameters, negotiate
    the format, take the snapshot and the layer (``pick``, default :func:`get_layer`),
    and the cache headers with a 304 response when the client's copy is current.
    Returns (format, snapshot, layer, headers, 304)."""
    fmt, snap, headers, unchanged = await document_request(request, f, formats)
    layer = (pick or get_layer)(snap, collection_id)
    return fmt, snap, layer, headers, unchanged


# ---------------------------------------------------------------------------- CRS

crs_query = Query(
    None,
    description=f"CRS of the returned coordinates, in the CRS's own axis order: {CRS84} "
    f"(default, lon/lat), {OUTPUT_CRS_LIST_TEXT}",
    json_schema_extra={"enum": list(SUPPORTED_CRS)},
)


def check_crs(name: str, value: str | None) -> str:
    """The CRS URI of parameter ``name`` (CRS84 when absent), or a 400 listing them."""
    if value is None:
        return CRS84
    if value not in SUPPORTED_CRS:
        raise bad_parameter(
            name,
            "unsupported CRS %(value)s; supported: %(valid)s",
            value=repr(value),
            valid=CRS_LIST,
        )
    return value


def parse_bbox(text: str, crs: str = CRS84) -> list[Box]:
    """``bbox`` in the axis order of ``crs`` → (minx, miny, maxx, maxy) boxes to query with.

    CRS84: minlon,minlat,maxlon,maxlat (or the 6-number 3D form); a box whose minlon >
    maxlon crosses the antimeridian and is split in two. EPSG:4326 and EPSG:4258: minlat,
    minlon,maxlat,maxlon, returned as (lon, lat) boxes. EPSG:2180 and the PL-2000 zones:
    minN,minE,maxN,maxE (northing first, the CRS's own axis order), returned as (E, N)
    boxes.
    """
    parts = text.split(",")
    if len(parts) not in (4, 6):
        reason = "expected 4 comma-separated numbers minx,miny,maxx,maxy, got %(n)s"
        raise bad_parameter("bbox", reason, n=len(parts))
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise bad_parameter("bbox", "not numbers: %(value)s", value=repr(text)) from None
    if not all(math.isfinite(v) for v in values):
        raise bad_parameter("bbox", "values must be finite numbers")
    if len(values) == 6:  # minx,miny,minz,maxx,maxy,maxz: the data are 2D
        values = [values[0], values[1], values[3], values[4]]
    axes = OUTPUT_CRS[crs]
    if not axes.geographic:  # EPSG:2180, PL-2000: (northing, easting)
        min_n, min_e, max_n, max_e = values
        if min_n > max_n or min_e > max_e:
            raise bad_parameter("bbox", "expected minN,minE,maxN,maxE with min <= max")
        return [(min_e, min_n, max_e, max_n)]
    if axes.swap:  # EPSG:4326, EPSG:4258: minlat,minlon,maxlat,maxlon
        miny, minx, maxy, maxx = values
        order = f"{axes.code} minlat,minlon,maxlat,maxlon"
    else:
        minx, miny, maxx, maxy = values
        order = "CRS84 minlon,minlat,maxlon,maxlat"
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        reason = (
            "expected %(order)s with longitude in [-180, 180], latitude in [-90, 90], "
            "min latitude <= max latitude"
        )
        raise bad_parameter("bbox", reason, order=order)
    if minx > maxx:
        return [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]
    return [(minx, miny, maxx, maxy)]


# ----------------------------------------------------------------------- datetime

INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$", re.IGNORECASE
)
DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_datetime(text: str) -> tuple[str | None, str | None]:
    """An RFC 3339 instant or interval (``..`` or empty for an open end) as a half-open
    ``[start, end)`` range of store timestamps (ISO UTC text); ``None`` for an open end.
    A date-only instant is that whole day; a date-time instant that second."""
    ends = text.split("/")
    if len(ends) > 2 or (len(ends) == 2 and all(e in ("", "..") for e in ends)):
        raise bad_parameter(
            "datetime", "not an RFC 3339 instant or interval: %(value)s", value=repr(text)
        )
    parsed: list[dt.datetime | None] = []
    for given in ends:
        if len(ends) == 2 and given in ("", ".."):
            parsed.append(None)
            continue
        if not INSTANT.match(given):
            raise bad_parameter(
                "datetime", "not an RFC 3339 date-time: %(value)s", value=repr(given)
            )
        try:
            t = dt.datetime.fromisoformat(given.upper().replace("Z", "+00:00"))
        except ValueError:
            raise bad_parameter(
                "datetime", "not a valid date-time: %(value)s", value=repr(given)
            ) from None
        parsed.append(t if t.tzinfo else t.replace(tzinfo=dt.UTC))

    def stamp(t: dt.datetime) -> str:
        return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    if len(parsed) == 1:
        start = parsed[0]
        assert start is not None
        width = dt.timedelta(days=1) if len(ends[0]) == 10 else dt.timedelta(seconds=1)
        return stamp(start), stamp(start + width)
    start, end = parsed
    if len(ends[1]) == 10 and end is not None:  # an end date includes that day
        end = end + dt.timedelta(days=1)
    elif end is not None:
        end = end + dt.timedelta(microseconds=1)  # inclusive end instant
    if start is not None and end is not None and end <= start:
        raise bad_parameter(
            "datetime", "the interval ends before it starts: %(value)s", value=repr(text)
        )
    return (stamp(start) if start else None), (stamp(end) if end else None)


# --------------------------------------------------------------- sortby, properties


def unknown_property(param: str, name: str, layer: Layer) -> ProblemError:
    valid = ", ".join(layer.columns)
    return bad_parameter(
        param, "unknown property %(name)s; queryables: %(valid)s", name=repr(name), valid=valid
    )


def parse_sortby(text: str, layer: Layer) -> list[tuple[str, bool]]:
    """``-score_logistics,area_ha`` → [(column, descending)]; ``+`` or no sign is ascending."""
    keys = []
    for part in text.split(","):
        name = part.strip()
        descending = name.startswith("-")
        name = name.lstrip("+-").strip()
        if not name:
            raise bad_parameter("sortby", "empty sort key in %(value)s", value=repr(text))
        if name not in layer.table.columns:
            raise unknown_property("sortby", name, layer)
        keys.append((name, descending))
    return keys


def parse_properties(text: str, layer: Layer) -> list[str]:
    """``site_id,area_ha`` → the properties to return, each once, in the order given."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in layer.table.columns:
            raise unknown_property("properties", name, layer)
    return list(dict.fromkeys(names))
