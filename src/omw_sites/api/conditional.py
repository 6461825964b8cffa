"""Conditional requests: ETags and Last-Modified, 304 for reads, preconditions for writes.

Reads carry a weak ETag of the store version and the representation, and the newest
record update as ``Last-Modified``; ``If-None-Match`` (or, without it,
``If-Modified-Since``) answers 304. A site feature carries a strong ETag made of its
record version (:func:`omw_sites.store.lifecycle.record_version`) and the representation
served; a write compares the version part with ``If-Match`` (strong comparison, ``*``
allowed) or, without it, honours ``If-Unmodified-Since``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from email.utils import format_datetime, parsedate_to_datetime

import pandas as pd
from starlette.requests import Request
from starlette.responses import Response

from omw_sites.api.catalog import Snapshot
from omw_sites.api.negotiation import VARY
from omw_sites.api.served_layer import Layer
from omw_sites.layers import SITES
from omw_sites.store.lifecycle import VERSION_COLUMNS, parse_stamp, record_version, version_of

# ------------------------------------------------------------------------------- reads


def cache_headers(request: Request, snap: Snapshot, variant: str = "") -> dict[str, str]:
    """ETag (store version, the URL, the format and the language served) and
    Last-Modified (the newest record update), with ``Vary: Accept`` (the format may come
    from that header; HTML pages add ``Accept-Language``)."""
    accept = variant or request.headers.get("accept", "")
    language = request.headers.get("accept-language", "")
    key = repr((snap.signature, str(request.url), accept, language))
    tag = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    modified = snap.modified
    return {
        "ETag": f'W/"{tag}"',
        "Last-Modified": format_datetime(modified, usegmt=True),
        "Cache-Control": "no-cache",
        "Vary": VARY,
    }


def not_modified(request: Request, headers: dict[str, str]) -> Response | None:
    """A 304 when ``If-None-Match`` (or, without it, ``If-Modified-Since``) says so."""
    match = request.headers.get("if-none-match")
    if match is not None:
        ours = headers["ETag"].removeprefix("W/")
        tags = [t.strip().removeprefix("W/") for t in match.split(",")]
        if "*" in tags or ours in tags:
            return Response(status_code=304, headers=headers)
        return None
    since = request.headers.get("if-modified-since")
    if since:
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is not None and parsedate_to_datetime(headers["Last-Modified"]) <= when:
            return Response(status_code=304, headers=headers)
    return None


# ------------------------------------------------------------------ record versions


def feature_etag(layer: Layer, row: int, request: Request, variant: str = "") -> str | None:
    """The strong ETag of one served site feature: its record version (from the snapshot
    row) and the representation (URL with its query, format, Accept, Accept-Language), or
    None for a layer without record versions. Read it *before* the feature's bytes: a
    snapshot is never changed in place, so tag and bytes come from the same state."""
    if layer.name != SITES or not set(VERSION_COLUMNS) <= set(layer.table.columns):
        return None
    table = layer.table
    version = version_of(*(table[c].iat[row] for c in VERSION_COLUMNS))
    return etag(version, request, variant)


def etag(version: str, request: Request, variant: str = "") -> str:
    """``"<version>-<representation>"``: the version part is what ``If-Match`` compares."""
    headers = request.headers
    key = repr(
        (str(request.url), variant, headers.get("accept", ""), headers.get("accept-language", ""))
    )
    shape = hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
    return f'"{version}-{shape}"'


# ------------------------------------------------------------------------------ writes


def if_match_versions(header: str | None) -> list[str] | None:
    """Record versions an ``If-Match`` header accepts (``["*"]``: any), None without one.
    Weak tags never match (strong comparison)."""
    if header is None:
        return None
    tags = [t.strip() for t in header.split(",") if t.strip()]
    if "*" in tags:
        return ["*"]
    return [t.strip('"').split("-")[0] for t in tags if not t.startswith("W/")]


def if_unmodified_since(request: Request) -> dt.datetime | None:
    """``If-Unmodified-Since`` as a datetime, when there is no ``If-Match`` (RFC 9110
    §13.2.2); an invalid date is ignored."""
    text = request.headers.get("if-unmodified-since")
    if not text or request.headers.get("if-match") is not None:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def written_headers(record: pd.Series, request: Request, variant: str) -> dict[str, str]:
    """ETag and Last-Modified of a site record as a write left it."""
    headers = {"ETag": etag(record_version(record), request, variant)}
    stamp = record.get("updated_at")
    if isinstance(stamp, str) and stamp:
        headers["Last-Modified"] = format_datetime(parse_stamp(stamp), usegmt=True)
    return headers
