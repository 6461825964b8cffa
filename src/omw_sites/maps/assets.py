"""Files the maps ship with: vendored Leaflet and the map's own JS/CSS, inlined so a page
works with no internet, and the Jinja templates of the HTML the maps hold."""

from __future__ import annotations

import base64
import re
from functools import cache
from pathlib import Path
from typing import Any

import folium
import jinja2
from branca.element import Element, Figure

STATIC_DIR = Path(__file__).parent / "static"
LEAFLET_DIR = STATIC_DIR / "leaflet"
LEAFLET_VERSION = "1.9.4"

# <script src=…>, <link href=…> or CSS url(…)/@import pointing off the page (http, https or
# protocol-relative). A self-contained page must have none of them.
_EXTERNAL_RE = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["']?(?P<script>[^"'\s>]+)"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?(?P<link>[^"'\s>]+)"""
    r"""|url\(\s*["']?(?P<url>(?:https?:)?//[^"')\s]+)"""
    r"""|@import\s+["'](?P<import>[^"']+)""",
    re.IGNORECASE,
)
_CSS_URL_RE = re.compile(r"""url\(\s*["']?(?!data:|#)(?P<path>[^"')\s]+)["']?\s*\)""")
_SOURCE_MAP_RE = re.compile(r"^\s*//# sourceMappingURL=.*$", re.MULTILINE)
_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif"}

# the index page and the HTML inside the map controls (title box, legend); every value escaped
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("omw_sites.maps", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **context: Any) -> str:
    """``maps/templates/<template>`` filled with ``context``."""
    return TEMPLATES.get_template(template).render(**context)


class RawHtml(Element):
    """An element rendered verbatim, without Jinja (for large inlined scripts and styles)."""

    def __init__(self, text: str):
        super().__init__()
        self._name = "RawHtml"
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


def _read(path: Path) -> str:
    if not path.exists():
        msg = f"vendored asset {path} is missing; reinstall omw-sites (see maps/static/README.md)"
        raise FileNotFoundError(msg)
    return path.read_text(encoding="utf-8")


def _data_uri(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        msg = f"cannot inline {path}: unknown image type {path.suffix!r}"
        raise ValueError(msg)
    if not path.exists():
        msg = f"vendored image {path} is missing; reinstall omw-sites"
        raise FileNotFoundError(msg)
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def inline_css_urls(css: str, base: Path) -> str:
    """Replace relative ``url(...)`` references in ``css`` by ``data:`` URIs.

    Parameters
    ----------
    css : stylesheet text
    base : folder the relative URLs are resolved against

    Returns
    -------
    str
        The stylesheet with every relative image inlined; ``data:`` and ``#`` URLs are kept.
    """

    def repl(match: re.Match[str]) -> str:
        return f'url("{_data_uri(base / match.group("path"))}")'

    return _CSS_URL_RE.sub(repl, css)


def _script(js: str) -> str:
    if re.search(r"</script", js, re.IGNORECASE):
        js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
    return f"<script>\n{js}\n</script>"


def _style(css: str) -> str:
    return f"<style>\n{css}\n</style>"


@cache
def leaflet_js() -> str:
    """Leaflet's minified JS (source-map comment removed)."""
    return _SOURCE_MAP_RE.sub("", _read(LEAFLET_DIR / "leaflet.js"))


@cache
def leaflet_css() -> str:
    """Leaflet's CSS with its images inlined as ``data:`` URIs."""
    return inline_css_urls(_read(LEAFLET_DIR / "leaflet.css"), LEAFLET_DIR)


@cache
def omw_js() -> str:
    """The map's own helpers (popups, tooltips)."""
    return _read(STATIC_DIR / "omw_map.js")


@cache
def omw_css() -> str:
    """The map's own stylesheet (background, title box, legend, popups)."""
    return _read(STATIC_DIR / "omw_map.css")


def figure_of(m: folium.Map) -> Figure:
    """The page a folium map renders into (typed: ``get_root`` promises only an Element)."""
    root = m.get_root()
    assert isinstance(root, Figure)  # folium.Map puts itself in a Figure when it is made
    return root


def make_offline(m: folium.Map) -> folium.Map:
    """Make ``m`` render without any CDN reference.

    Folium's default JS/CSS links (Leaflet, jQuery, Bootstrap, awesome-markers, Font
    Awesome) are dropped for this map, and the vendored Leaflet plus the map's own JS/CSS
    are inlined into the page header. Only plain Leaflet features may be used on ``m``
    afterwards (GeoJson, CircleMarker, LayerControl, …; no awesome-markers icons).

    Parameters
    ----------
    m : the map, before it is rendered

    Returns
    -------
    folium.Map
        The same map, for chaining.
    """
    m.default_js = []
    m.default_css = []
    header = figure_of(m).header
    header.add_child(RawHtml(_style(leaflet_css())), name="omw_leaflet_css")
    header.add_child(RawHtml(_style(omw_css())), name="omw_css")
    header.add_child(RawHtml(_script(leaflet_js())), name="omw_leaflet_js")
    header.add_child(RawHtml(_script(omw_js())), name="omw_js")
    return m


def external_references(html: str) -> list[str]:
    """External resources a page would load: script/link URLs, CSS ``url()`` and ``@import``.

    ``data:`` URIs are not external. Plain ``<a href>`` links (e.g. Leaflet's attribution)
    are not loaded by the browser and are not reported.
    """
    found = []
    for match in _EXTERNAL_RE.finditer(html):
        url = next(v for v in match.groupdict().values() if v is not None)
        if not url.lower().startswith("data:"):
            found.append(url)
    return found


def check_offline(html: str) -> str:
    """Return ``html`` unchanged, or raise ``RuntimeError`` if it loads anything external."""
    refs = external_references(html)
    if refs:
        shown = ", ".join(sorted(set(refs))[:5])
        msg = (
            f"map page still references {len(refs)} external resource(s) ({shown}); "
            "vendor them into omw_sites/maps/static/ and inline them in maps/assets.py"
        )
        raise RuntimeError(msg)
    return html
