"""Comparison map of two profiles or scenarios: where the rankings differ."""

from __future__ import annotations

from pathlib import Path

import folium
import numpy as np
import pandas as pd

from omw_sites.files import write_text_atomic
from omw_sites.i18n import N_, format_number, gettext
from omw_sites.layers import rank_col
from omw_sites.maps.assets import check_offline, render
from omw_sites.maps.controls import LegendExtra, MapControl, extra_rows, title_html
from omw_sites.maps.geojson import feature_collection, web_geometries
from omw_sites.maps.map_data import check_profiles, data_date_text, load_map_data
from omw_sites.maps.map_layers import ABOVE_SITES, BELOW_SITES, add_reference, base_map
from omw_sites.maps.style import darken
from omw_sites.reports.formatting import check_lang, profile_title

# change of a site's rank percentile from A to B (positive: better in B); |change| < 0.05
# is "about the same", ≥ 0.2 is "much" (ColorBrewer RdBu)
CHANGE_CLASSES = (
    (N_("much higher in B"), "#2166ac"),
    (N_("higher in B"), "#67a9cf"),
    (N_("about the same"), "#f7f7f7"),
    (N_("lower in B"), "#ef8a62"),
    (N_("much lower in B"), "#b2182b"),
)
ONLY_A = (N_("eligible in A only"), "#8c510a")
ONLY_B = (N_("eligible in B only"), "#01665e")


def rank_changes(sites: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Per site: ranks under A and B, percentile change (B better > 0) and its class.

    Ranks are turned into percentiles of each profile's eligible sites (rank 1 of 300 →
    0.0033) so that profiles with different numbers of eligible sites compare fairly.
    Sites excluded under both profiles are dropped.
    """
    ra = sites[rank_col(a)].fillna(0).astype(int).to_numpy()
    rb = sites[rank_col(b)].fillna(0).astype(int).to_numpy()
    na, nb = max(int((ra > 0).sum()), 1), max(int((rb > 0).sum()), 1)
    pa = np.where(ra > 0, ra / na, np.nan)
    pb = np.where(rb > 0, rb / nb, np.nan)
    change = np.round(pa - pb, 9)  # 1/20 − 2/20 must be exactly −0.05
    size = np.abs(change)
    label = np.full(len(sites), "", dtype=object)
    label[size < 0.05] = "about the same"
    label[(change >= 0.05) & (change < 0.2)] = "higher in B"
    label[change >= 0.2] = "much higher in B"
    label[(change <= -0.05) & (change > -0.2)] = "lower in B"
    label[change <= -0.2] = "much lower in B"
    label[(ra > 0) & (rb == 0)] = ONLY_A[0]
    label[(ra == 0) & (rb > 0)] = ONLY_B[0]
    out = pd.DataFrame(
        {"rank_a": ra, "rank_b": rb, "change": np.round(change, 4), "class": label},
        index=sites.index,
    )
    return out[(ra > 0) | (rb > 0)]


def render_comparison(
    store_path: str | Path, a: str, b: str, max_polygons: int = 5000, lang: str = "en"
) -> str:
    """One self-contained HTML page comparing the rankings of profiles ``a`` and ``b``,
    its words and numbers in ``lang``.

    Sites are coloured by how their rank percentile changes from A to B (diverging
    classes), with separate colours for sites eligible under only one of them. The
    ``max_polygons`` sites with the best rank under either profile are drawn; the page
    carries its own Leaflet (no CDN) and the store's basemap layers.
    """
    data = load_map_data(store_path)
    check_profiles([a, b], data)
    check_lang(lang)
    if a == b:
        msg = f"compare two different profiles (got {a!r} twice)"
        raise ValueError(msg)

    def n(value: float) -> str:
        return format_number(value, lang, 0)

    sites = data.sites
    ch = rank_changes(sites, a, b)
    best = np.where(ch["rank_a"] > 0, ch["rank_a"], np.inf)
    best = np.minimum(best, np.where(ch["rank_b"] > 0, ch["rank_b"], np.inf))
    ch = ch.assign(_best=best).sort_values(["_best", "rank_a"]).drop(columns="_best")
    drawn = ch.iloc[:max_polygons]
    title_a = profile_title(a, data.profiles[a]["title"], lang)
    title_b = profile_title(b, data.profiles[b]["title"], lang)
    title = gettext(lang, "%(a)s vs %(b)s", a=title_a, b=title_b)

    m, bounds = base_map(sites, gettext(lang, "%(title)s – rank changes (omw-sites)", title=title))
    extras: list[LegendExtra] = []
    for name in BELOW_SITES:
        if (x := add_reference(m, data, name, False, lang)) is not None:
            extras.append(x)
    colors = dict(CHANGE_CLASSES) | dict([ONLY_A, ONLY_B])
    sub = sites.loc[drawn.index]
    geoms = web_geometries(sub.geometry, 5.0)
    excluded = gettext(lang, "excluded")
    fields = ["site", "gmina", "rank_a", "rank_b"]
    aliases = [
        gettext(lang, "Site"),
        gettext(lang, "Gmina"),
        gettext(lang, "Rank (%(profile)s)", profile=title_a),
        gettext(lang, "Rank (%(profile)s)", profile=title_b),
    ]
    for name, color in colors.items():
        sel = (drawn["class"] == name).to_numpy()
        if not sel.any():
            continue
        props = [
            {"site": sid, "gmina": gm, "rank_a": n(r1) if r1 else excluded,
             "rank_b": n(r2) if r2 else excluded}
            for sid, gm, r1, r2 in zip(
                sub["site_id"].to_numpy()[sel],
                sub["gmina"].to_numpy()[sel],
                drawn["rank_a"].to_numpy()[sel],
                drawn["rank_b"].to_numpy()[sel],
                strict=True,
            )
        ]  # fmt: skip
        style = {"color": darken(color), "weight": 1, "fillColor": color, "fillOpacity": 0.85}
        folium.GeoJson(
            feature_collection(geoms[sel], props),
            name=f"{gettext(lang, name)} ({n(int(sel.sum()))})",
            style_function=lambda _f, s=style: s,
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases),
        ).add_to(m)
    for name in ABOVE_SITES:
        if (x := add_reference(m, data, name, False, lang)) is not None:
            extras.append(x)
    counts = ch["class"].value_counts()
    rows = [
        {
            "color": c,
            "border": darken(c),
            "label": gettext(lang, name),
            "shape": None,
            "count": gettext(lang, "%(n)s sites", n=n(int(counts.get(name, 0)))),
        }
        for name, c in colors.items()
    ]
    legend = render(
        "legend.html.j2",
        title=gettext(lang, "Rank change: A = %(a)s, B = %(b)s", a=title_a, b=title_b),
        subtitle=gettext(lang, "change of rank percentile among eligible sites"),
        rows=rows + extra_rows(extras),
    )
    both = (ch["rank_a"] > 0) & (ch["rank_b"] > 0)
    rho = (
        float(pd.Series(ch.loc[both, "rank_a"]).corr(ch.loc[both, "rank_b"], method="spearman"))
        if both.sum() > 2
        else float("nan")
    )
    lines = [
        f"A: {a} · B: {b}",
        gettext(lang, "Data date: %(date)s", date=data_date_text(data.run_info, lang)),
        gettext(
            lang,
            "%(n)s sites eligible under both; Spearman ρ of their ranks %(rho)s",
            n=n(int(both.sum())),
            rho=format_number(rho, lang, 2) or "–",
        ),
        gettext(
            lang,
            "%(drawn)s of %(n)s sites drawn (best rank under either profile first)",
            drawn=n(len(drawn)),
            n=n(len(ch)),
        ),
    ]
    MapControl(title_html(title, lines), "topleft", "omw-title").add_to(m)
    MapControl(legend, "bottomright", "omw-legend").add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    if bounds:
        m.fit_bounds(bounds)
    return check_offline(m.get_root().render())


def comparison_file(a: str, b: str, lang: str) -> str:
    """The file name of the comparison map of ``a`` and ``b`` in ``lang`` (English without
    a suffix, as the profile maps are named)."""
    return f"compare_{a}_{b}.html" if lang == "en" else f"compare_{a}_{b}_{lang}.html"


def write_comparison(
    store_path: str | Path,
    a: str,
    b: str,
    out_dir: str | Path,
    langs: tuple[str, ...] = ("en", "pl"),
) -> list[Path]:
    """Write the comparison map of ``a`` and ``b`` in each of ``langs`` into ``out_dir``."""
    out = Path(out_dir)
    pages = {lang: render_comparison(store_path, a, b, lang=lang) for lang in langs}
    return [
        write_text_atomic(out / comparison_file(a, b, lang), page) for lang, page in pages.items()
    ]
