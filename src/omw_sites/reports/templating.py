"""The Jinja environment of the report pages: templates in ``reports/templates``.

Python prepares the values (already formatted, in the page's language); the templates lay
them out. Every value is escaped unless it is markup made by another template.
"""

from __future__ import annotations

from typing import Any

import jinja2
from markupsafe import Markup

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("omw_sites.reports", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,  # a misspelt name fails instead of printing nothing
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _num(value: float, digits: int = 0) -> str:
    """``1,234.5``: thousands separated, ``digits`` decimals (the English reports)."""
    return f"{value:,.{digits}f}"


TEMPLATES.filters["num"] = _num


def render(template: str, **context: Any) -> Markup:
    """``template`` filled with ``context``; markup, so it can go into another page as is."""
    return Markup(TEMPLATES.get_template(template).render(**context))
