"""The Jinja environments of the report pages: templates in ``reports/templates``, one
environment per language with the message catalogue installed (``_()`` in templates).

Python prepares the values (already formatted, in the page's language); the templates lay
them out and write their own words through ``_()``. Every value is escaped unless it is
markup made by another template. The ``num`` filter formats a number in the page's
language with a fixed number of decimals (``12 345,6`` in Polish).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from omw_sites.i18n import translations
from omw_sites.reports.formatting import check_lang, fixed


@cache
def environment(lang: str) -> jinja2.Environment:
    """The report templates' environment in ``lang``."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("omw_sites.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(check_lang(lang)), newstyle=True)  # type: ignore[attr-defined]
    env.filters["num"] = lambda value, digits=0: fixed(value, lang, digits)
    env.globals["lang"] = lang
    return env


def render(template: str, lang: str, **context: Any) -> Markup:
    """``template`` filled with ``context`` in ``lang``; markup, so it can go into another
    page as is."""
    return Markup(environment(lang).get_template(template).render(lang=lang, **context))
