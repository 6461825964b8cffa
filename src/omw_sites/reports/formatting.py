"""Figures of the report pages in one language: words from the message catalogue
(:mod:`omw_sites.i18n`), numbers with units, distances, shares, flags, coded values.

Numbers keep a fixed number of decimals (a sheet or table column reads ``320,00`` next to
``12,50``), formatted by Babel with the same locale data as :func:`omw_sites.i18n.format_number`:
``12 345,6`` in Polish (non-breaking space), ``12,345.6`` in English.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from babel.dates import format_date
from babel.numbers import format_decimal

from omw_sites.i18n import LANGUAGES, gettext

LANGS = LANGUAGES


def check_lang(lang: str) -> str:
    """``lang`` if supported, else ValueError naming the supported ones."""
    if lang not in LANGS:
        msg = f"language {lang!r} is not supported; use one of: {', '.join(LANGS)}"
        raise ValueError(msg)
    return lang


def fixed(value: Any, lang: str, digits: int = 0) -> str:
    """``value`` with exactly ``digits`` decimals in ``lang`` ("–" when missing)."""
    if missing(value):
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return str(format_decimal(float(value), format=pattern, locale=lang))


def date_text(value: Any, lang: str) -> str:
    """An ISO date or timestamp (``2026-12-07``, ``2026-12-07T10:11:12+00:00``) as people
    write it: ``7 grudnia 2026`` in Polish, ``December 7, 2026`` in English; anything else
    as it is."""
    text = "" if missing(value) else str(value)
    try:
        day = dt.date.fromisoformat(text[:10])
    except ValueError:
        return text
    return str(format_date(day, format="long", locale=lang))


def coded(kind: str, value: Any, lang: str) -> str:
    """A coded value in words (``ownership`` ``state`` → "Skarbu Państwa"): the catalogue's
    ``kind:value`` message, or the value itself when the catalogue has none."""
    key = f"{kind}:{value}"
    text = gettext(lang, key)
    return str(value) if text == key else text


def profile_title(name: str, title: str, lang: str) -> str:
    """A profile's title in ``lang``: the catalogue's ``profile:<name>`` in Polish for a
    built-in profile, else the title its file gives."""
    if lang == "en":
        return title
    key = f"profile:{name}"
    text = gettext(lang, key)
    return title if text == key else text


class Formatter:
    """Words, numbers, units, flags and coded values in one language."""

    def __init__(self, lang: str):
        self.lang = check_lang(lang)

    def t(self, msgid: str, **values: Any) -> str:
        """``msgid`` (English) from the catalogue in this language."""
        return gettext(self.lang, msgid, **values)

    def profile(self, name: str, title: str) -> str:
        """A profile's title in this language (the profile's own title if not built in)."""
        return profile_title(name, title, self.lang)

    def layer(self, name: str) -> str:
        return coded("layer", name, self.lang)

    def value(self, column: str, v: Any) -> str:
        if missing(v) or v == "":
            return self.t("no data")
        return coded(column, v, self.lang) if column else str(v)

    def num(self, v: Any, digits: int = 1, unit: str = "") -> str:
        if missing(v):
            return self.t("no data")
        text = fixed(v, self.lang, digits)
        return f"{text}\u00a0{unit}" if unit else text

    def dist(self, v: Any) -> str:
        if missing(v):
            return self.t("no data")
        v = float(v)
        return self.num(v, 0, "m") if v < 1000 else self.num(v / 1000, 1, "km")

    def share(self, v: Any) -> str:
        return self.t("no data") if missing(v) else self.num(100 * float(v), 0, "%")

    def flag(self, v: Any) -> str:
        if missing(v):
            return self.t("no data")
        return self.t("yes") if bool(v) else self.t("no")


def missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
