"""Content negotiation: the ``f`` query parameter, else the ``Accept`` header (RFC 9110 §12).

Every resource offers a few formats (``json``, ``html``, …), each answered for one or more
media types. ``f=`` names the format outright and wins over ``Accept``; without it the
offered media type with the highest quality in ``Accept`` is served, ties going to the
server's order (JSON first), so ``*/*``, a missing header, GDAL's and OWSLib's requests get
JSON and a browser's ``text/html,…,*/*;q=0.8`` gets HTML. Nothing acceptable is a 406.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.requests import Request

from omw_sites.api.problems import ProblemError, bad_parameter

VARY = "Accept"  # the header negotiated responses vary on


@dataclass(frozen=True)
class Format:
    """One format a resource offers: its ``f`` name(s) and the media types it answers."""

    names: tuple[str, ...]  # the first is the canonical ``f`` value
    media_types: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float

    def specificity(self, media_type: str) -> int:
        """-1 when this range does not cover ``media_type``; else 0 (*/*), 1 (x/*), 2 (x/y)."""
        kind, _, sub = media_type.partition("/")
        if self.type == "*":
            return 0
        if self.type != kind:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == sub else -1


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an ``Accept`` header; malformed entries are skipped."""
    ranges = []
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub or (kind == "*" and sub != "*"):
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            ranges.append(MediaRange(kind, sub, q))
    return ranges


def quality(ranges: Sequence[MediaRange], media_type: str) -> float:
    """The quality ``ranges`` give ``media_type``: that of the most specific range covering it."""
    best, q = -1, 0.0
    for r in ranges:
        s = r.specificity(media_type)
        if s > best:
            best, q = s, r.q
    return q


def choose(accept: str | None, offers: Sequence[Format]) -> Format | None:
    """The offer ``accept`` prefers (the first offer for no header); None when none is
    acceptable."""
    if not accept or not accept.strip():
        return offers[0]
    ranges = parse_accept(accept)
    if not ranges:  # nothing parseable: as if the header were absent
        return offers[0]
    best: Format | None = None
    best_q = 0.0
    for offer in offers:
        q = max(quality(ranges, m) for m in offer.media_types)
        if q > best_q:
            best, best_q = offer, q
    return best


def negotiate(request: Request, f: str | None, offers: Sequence[Format]) -> str:
    """The format to answer ``request`` in: ``f`` if given (a 400 if not offered), else the
    best offer for its ``Accept`` header (a 406 problem if none is acceptable)."""
    if f is not None:
        for offer in offers:
            if f in offer.names:
                return offer.name
        names = ", ".join(n for o in offers for n in o.names)
        raise bad_parameter(
            "f", "must be one of %(valid)s, not %(value)s", valid=names, value=repr(f)
        )
    accept = request.headers.get("accept")
    chosen = choose(accept, offers)
    if chosen is None:
        served = ", ".join(m for o in offers for m in o.media_types)
        names = "|".join(o.name for o in offers)
        msg = (
            "nothing this resource serves is acceptable (%(accept)s); it is served as "
            "%(served)s (or ask with f=%(names)s)"
        )
        raise ProblemError(
            406, msg, headers={"Vary": VARY}, accept=repr(accept), served=served, names=names
        )
    return chosen.name


def offers(spec: Mapping[str, Sequence[str]]) -> tuple[Format, ...]:
    """``{"json|geojson": (media, …), "html": (…)}`` as formats, in that order."""
    return tuple(Format(tuple(k.split("|")), tuple(v)) for k, v in spec.items())


# What each resource is offered as: f names (the first canonical) -> media types answered.
# JSON first: it is the default for */*, a missing Accept and ties.
DOC_FORMATS = offers({"json": ("application/json",), "html": ("text/html",)})
FEATURE_FORMATS = offers(
    {"json|geojson": ("application/geo+json", "application/json"), "html": ("text/html",)}
)
SCHEMA_FORMATS = offers(
    {"json": ("application/schema+json", "application/json"), "html": ("text/html",)}
)
HTML_ONLY = offers({"html": ("text/html",)})  # pages without a JSON twin
