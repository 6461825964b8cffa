"""Texts people read, in Polish and English: message catalogues, language choice, numbers.

One gettext catalogue per language, ``locale/<lang>/LC_MESSAGES/omw_sites.po``, read
with Babel when first used (no compiled ``.mo`` to keep in sync). Message ids are the
English texts, so the English catalogue only lists them (empty translations fall back
to the id) and the Polish one translates them.

How a module adds its strings:

1. In Python, call ``gettext(lang, "English text")`` (``lang`` from :func:`negotiate`
   or the caller); in a Jinja template rendered by :func:`environment`, write
   ``{{ _("English text") }}`` or ``{% trans %}English text{% endtrans %}``; placeholders
   are named: ``_("%(n)s sites", n=count)``.
2. Add the message id with its Polish translation to ``locale/pl/LC_MESSAGES/omw_sites.po``
   and the id (empty ``msgstr``) to ``locale/en/LC_MESSAGES/omw_sites.po``.
   ``tests/test_catalogue.py`` checks that every ``_()`` in the API templates has a
   Polish translation and that both catalogues list the same ids;
   ``tests/test_message_catalogue.py`` checks every id Babel's extractors find in
   ``reports/`` and ``maps/`` (``gettext(lang, …)``, ``_()``, ``N_()`` markers of label
   tables, templates).
3. Format numbers with :func:`format_number` (or the ``num`` template filter): a decimal
   comma and a non-breaking-space thousands separator in Polish.

Language negotiation (:func:`negotiate`): an explicit ``?lang=pl|en`` wins, then the
first supported language of ``Accept-Language`` by quality, then Polish.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LANGUAGES = ("pl", "en")
DEFAULT_LANGUAGE = "pl"
DOMAIN = "omw_sites"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGE_NAMES = {"pl": "polski", "en": "English"}


def catalogue_path(lang: str) -> Path:
    """The ``.po`` file of ``lang``."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> Translations:
    """The gettext translations of ``lang`` (a supported language), read once."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; supported: {', '.join(LANGUAGES)}")
    with catalogue_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)  # Babel reads catalogues; gettext's runtime reads .mo bytes
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def gettext(lang: str, msgid: str, **values: Any) -> str:
    """``msgid`` in ``lang`` (the id itself when untranslated), with ``%(name)s`` filled."""
    text = translations(lang).gettext(msgid)
    return text % values if values else text


def N_(msgid: str) -> str:  # noqa: N802 — gettext's usual name for a marker
    """``msgid`` unchanged: marks a text kept in a table for Babel's extractor; it is
    translated where it is shown, with :func:`gettext`."""
    return msgid


def negotiate(lang: str | None = None, accept_language: str | None = None) -> str:
    """The language to answer in: ``lang`` if supported, else ``Accept-Language``'s best
    supported language (``pl-PL`` counts as ``pl``), else Polish."""
    if lang:
        code = lang.strip().lower()[:2]
        if code in LANGUAGES:
            return code
    best: tuple[float, int, str] | None = None
    for pos, part in enumerate((accept_language or "").split(",")):
        fields = part.strip().split(";")
        code = fields[0].strip().lower().split("-")[0]
        quality = 1.0
        for param in fields[1:]:
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if code in LANGUAGES and quality > 0:
            candidate = (-quality, pos, code)
            if best is None or candidate < best:
                best = candidate
    return best[2] if best else DEFAULT_LANGUAGE


def format_number(value: Any, lang: str, decimals: int = 1) -> str:
    """``value`` with at most ``decimals`` decimals in ``lang``'s format ("" when missing):
    ``12 345,6`` in Polish (the group separator a non-breaking space), ``12,345.6`` in
    English."""
    if value is None or isinstance(value, str) and not value:
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != number:  # NaN
        return ""
    fmt = "#,##0" + ("." + "#" * decimals if decimals > 0 else "")
    return format_decimal(number, format=fmt, locale=lang)


@cache
def environment(package: str, folder: str, lang: str) -> jinja2.Environment:
    """A Jinja environment over ``package``'s ``folder`` of templates, autoescaped, with
    ``_``/``gettext``/``ngettext`` in ``lang`` (``jinja2.ext.i18n``), the ``num`` filter
    (:func:`format_number`) and ``lang`` as a global."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, folder),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["num"] = lambda value, decimals=1: format_number(value, lang, decimals)
    env.globals["lang"] = lang
    return env
