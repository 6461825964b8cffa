"""The map of one investor profile: a self-contained Folium page, and a folder of them.

``render_map`` draws one profile from a store; ``write_maps`` writes every profile's page
and the index page linking them, reading the store once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import folium

from omw_sites.files import write_text_atomic
from omw_sites.i18n import N_, format_number, gettext
from omw_sites.layers import rank_col, score_col
from omw_sites.maps.assets import RawHtml, check_offline, figure_of
from omw_sites.maps.controls import LegendExtra, MapControl, legend_html, title_html
from omw_sites.maps.index_page import index_file, index_html
from omw_sites.maps.map_data import MapData, check_profiles, data_date_text, load_map_data
from omw_sites.maps.map_layers import (
    ABOVE_SITES,
    BELOW_SITES,
    add_hex_layers,
    add_reference,
    add_site_layers,
    base_map,
)
from omw_sites.maps.style import (
    CRITERION_LABELS,
    EXCLUDED_COLOR,
    criterion_fields,
    score_classes,
)
from omw_sites.reports.formatting import check_lang, profile_title

DEFAULT_MAX_POLYGONS = 5000
DEFAULT_HEX_SIZE_M = 1000.0
DEFAULT_SHEET_URL = "../sites/{id}/sheet"  # as served by the API next to /maps/<profile>
FOLDER_SHEET_URL = "sheets/sheet_{id}_en.html"  # the sheets `write_maps` writes beside the maps
DEFAULT_SHEETS = 10  # sheets written beside the maps: each profile's best N sites
POPUP_CRITERIA = 4  # the profile's heaviest criteria shown in a popup
# what every popup shows besides them (omw_map.js): workforce within 30 min, max height
POPUP_FIXED = ("workforce_30min", "max_height_m")


def _json_script(js_call: str, payload: Any) -> str:
    text = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
    return f"<script>{js_call}({text});</script>"


def _render(
    data: MapData,
    profile: str,
    max_polygons: int,
    tiles_url: str | None,
    tiles_attribution: str | None,
    hex_size_m: float,
    classification: str,
    sheet_url: str | None = DEFAULT_SHEET_URL,
    sheet_ids: list[str] | None = None,
    lang: str = "en",
) -> str:
    check_lang(lang)
    check_profiles([profile], data)
    if max_polygons < 0:
        msg = f"max_polygons must be >= 0, got {max_polygons}"
        raise ValueError(msg)
    meta = data.profiles[profile]
    sites = data.sites
    # ranked sites (rank > 0): a sold or withdrawn site keeps its score but has no rank
    ranked = sites[rank_col(profile)].fillna(0).astype(float) > 0
    eligible = sites[ranked].copy()
    eligible["_rank"] = eligible[rank_col(profile)].astype(float)
    order = [c for c in ("_rank", "site_id") if c in eligible.columns]
    eligible = eligible.sort_values(order, kind="stable").drop(columns="_rank")
    excluded = sites[~ranked]
    if {"area_ha", "site_id"} <= set(excluded.columns):  # largest first into the budget
        excluded = excluded.sort_values(["area_ha", "site_id"], ascending=[False, True])
    classes = score_classes(eligible[score_col(profile)].to_numpy(dtype=float), 5, classification)
    fields = criterion_fields(sites.columns, data.run_info.get("units"), meta["weights"])
    # a popup lists the profile's heaviest criteria, not every measured column
    fields = [f for f in fields if f.column not in POPUP_FIXED]
    fields = [f for f in fields if f.weight][:POPUP_CRITERIA] or fields[:POPUP_CRITERIA]
    fields = [replace(f, label=field_label(f.column, f.label, lang)) for f in fields]
    title = profile_title(profile, meta["title"], lang)

    poly_el, rest_el = eligible.iloc[:max_polygons], eligible.iloc[max_polygons:]
    budget = max(max_polygons - len(poly_el), 0)
    poly_ex, rest_ex = excluded.iloc[:budget], excluded.iloc[budget:]

    m, bounds = base_map(
        sites, gettext(lang, "%(title)s – investment sites (omw-sites)", title=title)
    )
    config = {
        "lang": lang,
        "words": script_words(lang),
        "sheetUrl": sheet_url,
        "sheetIds": sheet_ids,
        "profile": title,
        "nEligible": len(eligible),
        "fields": [f.to_js() for f in fields],
    }
    figure_of(m).header.add_child(RawHtml(_json_script("omw.configure", config)), name="omw_config")
    if tiles_url:
        folium.TileLayer(
            tiles=tiles_url,
            attr=tiles_attribution or "Map tiles",
            name="Tiles",
            overlay=False,
            control=True,
        ).add_to(m)

    extras: list[LegendExtra] = []
    tiles = bool(tiles_url)
    for name in BELOW_SITES:
        if (x := add_reference(m, data, name, tiles, lang)) is not None:
            extras.append(x)
    add_hex_layers(m, rest_el, rest_ex, classes, profile, hex_size_m, lang)
    add_site_layers(m, poly_el, poly_ex, classes, profile, fields, lang)
    for name in ABOVE_SITES:
        if (x := add_reference(m, data, name, tiles, lang)) is not None:
            extras.append(x)

    site_extras = _site_legend(sites, classes, rest_el.empty, len(excluded), lang)
    legend = legend_html(
        classes, gettext(lang, "Score – %(title)s", title=title), [*site_extras, *extras], lang
    )
    n = lambda v: format_number(v, lang, 0)  # noqa: E731
    lines = [
        gettext(lang, "Investor profile: %(profile)s", profile=profile),
        gettext(lang, "Data date: %(date)s", date=data_date_text(data.run_info, lang)),
        gettext(
            lang,
            "%(eligible)s eligible sites, %(excluded)s excluded",
            eligible=n(len(eligible)),
            excluded=n(len(excluded)),
        ),
    ]
    if not rest_el.empty:
        lines.append(
            gettext(
                lang,
                "Best %(n)s drawn as polygons; the other %(rest)s summarised in hexagons of "
                "%(km)s km radius",
                n=n(len(poly_el)),
                rest=n(len(rest_el)),
                km=format_number(hex_size_m / 1000, lang, 2),
            )
        )
    MapControl(
        title_html(gettext(lang, "%(title)s: investment sites", title=title), lines),
        "topleft",
        "omw-title",
    ).add_to(m)
    MapControl(legend, "bottomright", "omw-legend").add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    if bounds:
        m.fit_bounds(bounds)
    return check_offline(m.get_root().render())


def _site_legend(
    sites: Any, classes: Any, all_drawn: bool, n_excluded: int, lang: str
) -> list[LegendExtra]:
    """Legend rows of the sites besides the score classes: hexagons, excluded, status."""
    rows = []
    if not all_drawn:
        mid = classes.colors[len(classes.colors) // 2]
        rows.append(LegendExtra(mid, gettext(lang, "other sites per hexagon (best score)"), "hex"))
    if n_excluded:
        label = gettext(lang, "excluded (%(n)s; layer off)", n=format_number(n_excluded, lang, 0))
        rows.append(LegendExtra(EXCLUDED_COLOR, label, "box"))
    status = sites["status"].fillna("").astype(str) if "status" in sites else None
    if status is not None and (n := int((status == "reserved").sum())):
        label = gettext(lang, "reserved (%(n)s): dashed outline", n=format_number(n, lang, 0))
        rows.append(LegendExtra("#ffffff", label, "box", "#000"))
    if status is not None and (n := int(status.isin(("sold", "withdrawn")).sum())):
        label = gettext(lang, "sold or withdrawn (%(n)s): not ranked", n=format_number(n, lang, 0))
        rows.append(LegendExtra(EXCLUDED_COLOR, label, "box"))
    return rows


def field_label(column: str, label: str, lang: str) -> str:
    """A criterion's label in a popup: the map's own short label, else the catalogue's
    name of the criterion (``criterion:<column>``), else the column's description."""
    if column in CRITERION_LABELS:
        return gettext(lang, label)
    key = f"criterion:{column}"
    text = gettext(lang, key)
    return label if text == key or not text else text[:1].upper() + text[1:]


# the words of the popups, drawn by static/omw_map.js (``config.words``)
SCRIPT_WORDS = {
    "site": N_("Site"),
    "status": N_("Status"),
    "price": N_("Price"),
    "perM2": N_("PLN/m²"),
    "lease": N_("PLN/m² a year (lease)"),
    "askGmina": N_("ask the gmina office"),
    "scoreRank": N_("Score · rank"),
    "score": N_("Score"),
    "of": N_("of"),
    "junction": N_("Junction"),
    "workforce": N_("Working-age people within 30 min"),
    "height": N_("Maximum building height"),
    "why": N_("Why:"),
    "sheet": N_("Site sheet (karta terenu)"),
    "excluded": N_("excluded"),
    "rank": N_("rank"),
    "available": N_("status:available"),
    "reserved": N_("status:reserved"),
    "sold": N_("status:sold"),
    "withdrawn": N_("status:withdrawn"),
    "inHexagon": N_("in this hexagon"),
    "sites": N_("sites"),
    "oneSite": N_("site"),
    "bestRank": N_("Best rank"),
    "bestScore": N_("Best score"),
    "medianScore": N_("Median score"),
    "below": N_("These sites rank below the ones drawn as polygons."),
    "more": N_("more"),
}


def script_words(lang: str) -> dict[str, str]:
    """The popups' words in ``lang``, for ``omw.configure``."""
    return {key: gettext(check_lang(lang), msgid) for key, msgid in SCRIPT_WORDS.items()}


def render_map(
    store_path: str | Path,
    profile: str,
    max_polygons: int = DEFAULT_MAX_POLYGONS,
    *,
    tiles_url: str | None = None,
    tiles_attribution: str | None = None,
    hex_size_m: float = DEFAULT_HEX_SIZE_M,
    classification: str = "quantile",
    sheet_url: str | None = DEFAULT_SHEET_URL,
    lang: str = "en",
) -> str:
    """Render the map of one investor profile as one self-contained HTML page.

    The page inlines Leaflet and every style/script it needs (no CDN, works offline). Sites
    are coloured by ``score_<profile>`` in 5 classes; the best ``max_polygons`` eligible sites
    are drawn as polygons (one layer per class), the others are summarised per hexagon.
    Excluded sites are grey, in their own layer, off by default (as polygons while the
    ``max_polygons`` budget lasts, then per hexagon). Reference layers in the store
    (junctions, rail, stations, airports, utilities by network, substations, flood zone,
    Natura 2000, gminy, main roads) are overlays; gminy, flood and roads draw the basemap.

    Parameters
    ----------
    store_path : the GeoPackage store
    profile : investor profile name (see ``available_profiles``)
    max_polygons : how many sites at most are drawn as polygons
    tiles_url : optional XYZ tile URL template (``https://…/{z}/{x}/{y}.png``) when a tile
        server is reachable; by default no tiles are used
    tiles_attribution : attribution shown with ``tiles_url``
    hex_size_m : hexagon circumradius in metres for the summary layers
    classification : ``"quantile"`` (default) or ``"fixed"`` (0–0.2, …, 0.8–1.0)
    sheet_url : link to each site's sheet in its popup, ``{id}`` replaced by the site ID;
        the default is relative to ``/maps/<profile>`` of the API; None drops the link
        (``write_maps`` links the sheets it writes beside the maps)
    lang : ``"en"`` or ``"pl"``: the words of the title, legend, layers and popups

    Returns
    -------
    str
        The complete HTML page.

    Raises
    ------
    ValueError
        Unknown profile (the message names the valid ones) or bad arguments.
    omw_sites.store.StoreError
        Missing store or site layer.
    """
    data = load_map_data(store_path)
    return _render(
        data,
        profile,
        max_polygons,
        tiles_url,
        tiles_attribution,
        hex_size_m,
        classification,
        sheet_url,
        lang=lang,
    )


def map_file(profile: str, lang: str) -> str:
    """The file name of a profile's map in ``lang`` (English without a suffix)."""
    return f"{profile}.html" if lang == "en" else f"{profile}_{lang}.html"


def write_maps(
    store_path: str | Path,
    out_dir: str | Path,
    profiles: list[str] | None = None,
    max_polygons: int = DEFAULT_MAX_POLYGONS,
    sheets: int = DEFAULT_SHEETS,
    langs: tuple[str, ...] = ("en", "pl"),
    **kwargs: Any,
) -> list[Path]:
    """Write ``<profile>.html`` (English) and ``<profile>_pl.html`` (Polish) for each
    profile, the sheets of each profile's best
    ``sheets`` sites in ``sheets/`` (Polish and English, linked from those sites'
    popups: the links work from disk), and an ``index.html`` linking every map,
    comparison map, report and sheet in the folder (``index_pl.html`` in Polish).

    Parameters
    ----------
    store_path : the GeoPackage store
    out_dir : output folder (created if missing)
    profiles : profiles to map; all profiles of the store's run info (or its score columns)
        when None
    max_polygons : see ``render_map``
    sheets : how many of each profile's best sites get a sheet beside the maps (0: none,
        and no sheet link in the popups)
    langs : the languages of the maps
    **kwargs : further keyword arguments of ``render_map`` (``tiles_url``, ``hex_size_m``, …)

    Returns
    -------
    list of Path
        The profile pages in order (each profile in every language), the sheets, then
        ``index.html``.
    """
    data = load_map_data(store_path)
    chosen = list(data.profiles) if profiles is None else list(profiles)
    check_profiles(chosen, data)  # fail before writing anything
    for lang in langs:
        check_lang(lang)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    args: dict[str, Any] = {
        "tiles_url": None,
        "tiles_attribution": None,
        "hex_size_m": DEFAULT_HEX_SIZE_M,
        "classification": "quantile",
    }
    unknown = set(kwargs) - set(args)
    if unknown:
        msg = f"unknown map option(s): {', '.join(sorted(unknown))}; use {', '.join(args)}"
        raise TypeError(msg)
    args |= kwargs
    ids = _best_sites(data, chosen, sheets)
    sheet_paths = write_folder_sheets(store_path, ids, out / "sheets")
    paths = []
    for profile in chosen:
        for lang in langs:
            url = FOLDER_SHEET_URL.replace("_en.html", f"_{lang}.html")
            link = {"sheet_url": url, "sheet_ids": ids} if ids else {"sheet_url": None}
            path = out / map_file(profile, lang)
            page = _render(data, profile, max_polygons, **args, **link, lang=lang)
            write_text_atomic(path, page)
            paths.append(path)
    paths += sheet_paths
    paths += write_index(out, data)
    return paths


def _best_sites(data: MapData, profiles: list[str], n: int) -> list[str]:
    """The IDs of each profile's best ``n`` ranked sites, in order, without repeats."""
    ids: list[str] = []
    for profile in profiles:
        rank = data.sites[rank_col(profile)].astype(float)
        best = data.sites[rank > 0].assign(_r=rank).sort_values(["_r", "site_id"]).head(n)
        ids += [i for i in best["site_id"].astype(str) if i not in ids]
    return ids if n > 0 else []


def write_folder_sheets(store_path: str | Path, ids: list[str], out: Path) -> list[Path]:
    """The sheets of ``ids`` in Polish and English, written into ``out``."""
    from omw_sites.reports.sheet import write_sheet

    paths: list[Path] = []
    for site_id in ids:
        for lang in ("en", "pl"):
            paths += write_sheet(store_path, site_id, out, lang=lang).values()
    return paths


def write_index(out_dir: str | Path, data: MapData) -> list[Path]:
    """(Re)write the index pages of a maps folder, ``index.html`` (English) and
    ``index_pl.html`` (Polish): every profile map, comparison map, report and sheet the
    folder holds (also after ``omw-sites map --compare``)."""
    paths = []
    for lang in ("en", "pl"):
        index = Path(out_dir) / index_file(lang)
        paths.append(write_text_atomic(index, index_html(data, Path(out_dir), lang)))
    return paths


__all__ = [
    "DEFAULT_HEX_SIZE_M",
    "DEFAULT_SHEETS",
    "DEFAULT_MAX_POLYGONS",
    "DEFAULT_SHEET_URL",
    "render_map",
    "write_index",
    "write_maps",
]
