"""The map of one investor profile: a self-contained Folium page, and a folder of them.

``render_map`` draws one profile from a store; ``write_maps`` writes every profile's page
and the index page linking them, reading the store once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import folium

from omw_sites.files import write_text_atomic
from omw_sites.layers import rank_col, score_col
from omw_sites.maps.assets import RawHtml, check_offline, figure_of
from omw_sites.maps.controls import LegendExtra, MapControl, legend_html, title_html
from omw_sites.maps.index_page import index_html
from omw_sites.maps.map_data import MapData, check_profiles, data_date_text, load_map_data
from omw_sites.maps.map_layers import (
    ABOVE_SITES,
    BELOW_SITES,
    add_hex_layers,
    add_reference,
    add_site_layers,
    base_map,
)
from omw_sites.maps.style import EXCLUDED_COLOR, criterion_fields, score_classes

DEFAULT_MAX_POLYGONS = 5000
DEFAULT_HEX_SIZE_M = 1000.0
DEFAULT_SHEET_URL = "../sites/{id}/sheet"  # as served by the API next to /maps/<profile>


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
) -> str:
    check_profiles([profile], data)
    if max_polygons < 0:
        msg = f"max_polygons must be >= 0, got {max_polygons}"
        raise ValueError(msg)
    meta = data.profiles[profile]
    sites = data.sites
    score = sites[score_col(profile)].astype(float)
    eligible = sites[score.notna()].copy()
    eligible["_rank"] = eligible[rank_col(profile)].astype(float)
    order = [c for c in ("_rank", "site_id") if c in eligible.columns]
    eligible = eligible.sort_values(order, kind="stable").drop(columns="_rank")
    excluded = sites[score.isna()]
    if {"area_ha", "site_id"} <= set(excluded.columns):  # largest first into the budget
        excluded = excluded.sort_values(["area_ha", "site_id"], ascending=[False, True])
    classes = score_classes(eligible[score_col(profile)].to_numpy(dtype=float), 5, classification)
    fields = criterion_fields(sites.columns, data.run_info.get("units"), meta["weights"])

    poly_el, rest_el = eligible.iloc[:max_polygons], eligible.iloc[max_polygons:]
    budget = max(max_polygons - len(poly_el), 0)
    poly_ex, rest_ex = excluded.iloc[:budget], excluded.iloc[budget:]

    m, bounds = base_map(sites, f"{meta['title']} – investment sites (omw-sites)")
    config = {
        "sheetUrl": sheet_url,
        "profile": meta["title"],
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
        if (x := add_reference(m, data, name, tiles)) is not None:
            extras.append(x)
    add_hex_layers(m, rest_el, rest_ex, classes, profile, hex_size_m)
    add_site_layers(m, poly_el, poly_ex, classes, profile, fields)
    for name in ABOVE_SITES:
        if (x := add_reference(m, data, name, tiles)) is not None:
            extras.append(x)

    site_extras = []
    if not rest_el.empty:
        mid = classes.colors[len(classes.colors) // 2]
        site_extras.append(LegendExtra(mid, "other sites per hexagon (best score)", "hex"))
    if not excluded.empty:
        site_extras.append(
            LegendExtra(EXCLUDED_COLOR, f"excluded ({len(excluded):,}; layer off)", "box")
        )
    legend = legend_html(classes, f"Score – {meta['title']}", [*site_extras, *extras])
    lines = [
        f"Investor profile: {profile}",
        f"Data date: {data_date_text(data.run_info)}",
        f"{len(eligible):,} eligible sites, {len(excluded):,} excluded",
    ]
    if not rest_el.empty:
        lines.append(
            f"Best {len(poly_el):,} drawn as polygons; the other {len(rest_el):,} "
            f"summarised in hexagons of {hex_size_m / 1000:g} km radius"
        )
    MapControl(
        title_html(f"{meta['title']}: investment sites", lines), "topleft", "omw-title"
    ).add_to(m)
    MapControl(legend, "bottomright", "omw-legend").add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    if bounds:
        m.fit_bounds(bounds)
    return check_offline(m.get_root().render())


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
    )


def write_maps(
    store_path: str | Path,
    out_dir: str | Path,
    profiles: list[str] | None = None,
    max_polygons: int = DEFAULT_MAX_POLYGONS,
    **kwargs: Any,
) -> list[Path]:
    """Write ``<profile>.html`` for each profile and an ``index.html`` linking them.

    Parameters
    ----------
    store_path : the GeoPackage store
    out_dir : output folder (created if missing)
    profiles : profiles to map; all profiles of the store's run info (or its score columns)
        when None
    max_polygons : see ``render_map``
    **kwargs : further keyword arguments of ``render_map`` (``tiles_url``, ``hex_size_m``, …)

    Returns
    -------
    list of Path
        The profile pages in order, then ``index.html``.
    """
    data = load_map_data(store_path)
    chosen = list(data.profiles) if profiles is None else list(profiles)
    check_profiles(chosen, data)  # fail before writing anything
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
    paths, pages = [], {}
    for profile in chosen:
        path = out / f"{profile}.html"
        write_text_atomic(path, _render(data, profile, max_polygons, **args))
        paths.append(path)
        pages[profile] = path.name
    index = out / "index.html"
    write_text_atomic(index, index_html(data, pages))
    paths.append(index)
    return paths


__all__ = [
    "DEFAULT_HEX_SIZE_M",
    "DEFAULT_MAX_POLYGONS",
    "DEFAULT_SHEET_URL",
    "render_map",
    "write_maps",
]
