"""Title box and legend of a map: Leaflet controls holding HTML from ``maps/templates``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from branca.element import MacroElement
from folium.template import Template

from omw_sites.i18n import format_number, gettext
from omw_sites.maps.assets import render
from omw_sites.maps.style import ScoreClasses, darken


class MapControl(MacroElement):
    """A Leaflet control showing fixed HTML (title box, legend) in a corner of the map."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function (map) {
            var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
            div.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, html_text: str, position: str = "bottomright", css_class: str = ""):
        super().__init__()
        self._name = "MapControl"
        self.html = html_text
        self.position = position
        self.css_class = f"omw-box {css_class}".strip()


@dataclass(frozen=True)
class LegendExtra:
    """A legend row besides the score classes: swatch colour, label, optional outline/shape."""

    color: str
    label: str
    shape: str = "box"  # "box" | "hex" | "dot" | "line"
    stroke: str = field(default="rgba(0,0,0,0.35)")


def legend_html(
    classes: ScoreClasses, title: str, extras: Sequence[LegendExtra] = (), lang: str = "en"
) -> str:
    """Classed legend: one swatch per score class (best on top), then ``extras``."""
    rows: list[LegendRow] = [
        {
            "color": classes.colors[i],
            "border": darken(classes.colors[i]),
            "label": classes.label(i, lang),
            "shape": None,
            "count": gettext(lang, "%(n)s sites", n=format_number(classes.counts[i], lang, 0)),
        }
        for i in reversed(range(classes.k))
    ]
    return render(
        "legend.html.j2",
        title=title,
        subtitle=gettext(lang, "score classes: quantiles")
        if classes.method == "quantile"
        else gettext(lang, "score classes: equal intervals"),
        rows=rows + extra_rows(extras),
    )


LegendRow = dict[str, str | None]  # color, border, label, shape, count


def extra_rows(extras: Sequence[LegendExtra]) -> list[LegendRow]:
    """Legend rows of the layers besides the site classes."""
    return [
        {"color": x.color, "border": x.stroke, "label": x.label, "shape": x.shape, "count": None}
        for x in extras
    ]


def render_legend(title: str, subtitle: str, extras: Sequence[LegendExtra]) -> str:
    """A legend of layers only (no score classes): a row per ``extras``."""
    return render("legend.html.j2", title=title, subtitle=subtitle, rows=extra_rows(extras))


def title_html(title: str, lines: Sequence[str]) -> str:
    """Title box: the profile title and a few lines (data date, counts)."""
    return render("title.html.j2", title=title, lines=lines)
