"""The offer pack of an investor enquiry: one document in the investor's language.

A cover page (the enquiry's code name, its requirements in words, the date), a
comparison table of the offered sites with why each fits and what is uncertain, an SVG
map of them in the region (the sheet's own path drawing, no tiles), and each site's
sheet (:func:`omw_sites.reports.sheet.render_sheet`), each on new pages; printed to one
PDF with the sheets' Chromium printing.

Offered are the sites of the enquiry's current shortlist that are still current
records on offer and that their gmina has not withdrawn from this offer. The investor's
contact is never in the pack: the pack is made from the enquiry's public view.
Reads the store only; ``omw-sites enquiry offer`` records that the pack went out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from omw_sites.files import write_text_atomic
from omw_sites.i18n import LANGUAGES, environment, format_number, gettext
from omw_sites.scoring.engine import on_offer
from omw_sites.scoring.matching import requirement_lines, site_lines

MAP_SIZE = 520  # px, the longer side of the map
_STYLE = re.compile(r"<style>(.*?)</style>", re.S)
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)


@dataclass
class OfferPack:
    html: str
    site_ids: list[str]  # the sites offered, in the shortlist's order


def _offered(store: str | Path, enquiry_id: str) -> tuple[dict[str, Any], pd.DataFrame, Any]:
    """The enquiry's public view, its shortlist rows still offered, and their records."""
    from omw_sites.store import enquiries, open_inventory, read_sites

    inv = open_inventory(store)
    enquiry = enquiries.public_view(enquiries.get(inv, enquiry_id))
    rows = enquiries.matched_sites(inv, enquiry_id, "shortlist")
    rows = rows[rows["answer"].fillna("") != "withdrawn"]
    ids = [str(s) for s in rows["site_id"]]
    quoted = ", ".join("'" + s.replace("'", "''") + "'" for s in ids) or "''"
    records = read_sites(store, where=f"site_id IN ({quoted})")
    records = records[on_offer(records["status"], len(records))]
    rows = rows[rows["site_id"].isin(set(records["site_id"]))].reset_index(drop=True)
    return enquiry, rows, records.set_index("site_id", drop=False)


def _sheet_parts(html: str) -> tuple[str, Markup]:
    """The style and the body of a site sheet page, to put it into the pack."""
    style = _STYLE.search(html)
    body = _BODY.search(html)
    return (style.group(1) if style else ""), Markup(body.group(1) if body else html)


def _map(store: str | Path, records: Any, ids: list[str]) -> Markup:
    """The region's gminy with the offered sites marked by their numbers."""
    from omw_sites.reports.sheet_maps import svg_path_data
    from omw_sites.store import list_layers, read_layer

    points = np.array([[g.centroid.x, g.centroid.y] for g in records.loc[ids].geometry])
    gminy = read_layer(store, "gminy") if "gminy" in list_layers(store) else None
    # the region's gminy and every offered site, with a margin for the markers
    minx, miny = points.min(axis=0) - 2000
    maxx, maxy = points.max(axis=0) + 2000
    if gminy is not None and len(gminy):
        bounds = gminy.total_bounds
        minx, miny = min(minx, bounds[0]), min(miny, bounds[1])
        maxx, maxy = max(maxx, bounds[2]), max(maxy, bounds[3])
    scale = MAP_SIZE / max(maxx - minx, maxy - miny, 1.0)

    def tf(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(((xy[:, 0] - minx) * scale, (maxy - xy[:, 1]) * scale))

    outline = ""
    if gminy is not None and len(gminy):
        outline = svg_path_data(gminy.geometry.simplify(1.0 / scale).to_numpy(), tf)
    xy = tf(points)
    marks = [
        {"n": n, "x": f"{x:.1f}", "y": f"{y:.1f}", "id": sid}
        for n, (sid, (x, y)) in enumerate(zip(ids, xy, strict=True), 1)
    ]
    width, height = (maxx - minx) * scale, (maxy - miny) * scale
    env = environment("omw_sites.reports", "templates", "en")
    svg = env.get_template("offer_pack_map.svg.j2").render(
        width=f"{width:.0f}", height=f"{height:.0f}", outline=outline, marks=marks
    )
    return Markup(svg)


def _row(n: int, row: Mapping[str, Any], rec: Any, item: Mapping[str, Any], lang: str) -> dict:
    confirmed = row.get("answer") == "confirmed"
    price = row.get("answer_price_pln_m2") if confirmed else None
    if price is None or pd.isna(price):
        price = rec.get("price_pln_m2")
    contact = row.get("answer_contact") if confirmed else None
    if contact is None or pd.isna(contact):
        contact = rec.get("contact")
    lines = site_lines(item, lang)
    return {
        "contact": "" if contact is None or pd.isna(contact) else str(contact),
        "n": n,
        "site_id": str(rec["site_id"]),
        "gmina": f"{rec.get('gmina', '')} ({rec.get('teryt', '')})",
        "area": format_number(rec.get("area_ha"), lang, 2),
        "designation": str(rec.get("zoning_class") or ""),
        "price": "" if price is None or pd.isna(price) else format_number(price, lang, 2),
        "available": (
            gettext(lang, "confirmed by the gmina")
            if confirmed
            else gettext(lang, "not yet confirmed")
        ),
        "score": format_number(item.get("score"), lang, 3),
        "fits": lines["fits"],
        "uncertain": lines["uncertain"],
    }


def offer_pack(store: str | Path, enquiry_id: str, lang: str = "pl") -> OfferPack:
    """The offer pack of one enquiry as a self-contained HTML document in ``lang``."""
    from omw_sites.reports.sheet import render_sheet

    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; supported: {', '.join(LANGUAGES)}")
    enquiry, rows, records = _offered(store, enquiry_id)
    match = enquiry.get("match") or {}
    items = {i["site_id"]: i for i in match.get("shortlist", [])}
    ids = [str(s) for s in rows["site_id"]]
    table = [
        _row(n, row, records.loc[row["site_id"]], items.get(row["site_id"], {}), lang)
        for n, row in enumerate(rows.to_dict("records"), 1)
    ]
    styles, sheets = [], []
    for sid in ids:
        style, body = _sheet_parts(render_sheet(store, sid, lang))
        styles.append(style)
        sheets.append(body)
    prefs = enquiry.get("preferences") or {}
    profile = gettext(lang, f"profile:{prefs.get('profile', '')}") if prefs.get("profile") else ""
    env = environment("omw_sites.reports", "templates", lang)
    html = env.get_template("offer_pack.html.j2").render(
        enquiry=enquiry,
        requirements=requirement_lines(enquiry.get("requirements") or {}, lang),
        profile=profile,
        today=dt.date.today().isoformat(),
        table=table,
        map=_map(store, records, ids) if ids else Markup(""),
        sheet_style=Markup(styles[0] if styles else ""),
        sheets=sheets,
    )
    return OfferPack(html, ids)


def write_offer_pack(
    store: str | Path, enquiry_id: str, out_dir: str | Path, lang: str = "pl", pdf: bool = False
) -> tuple[dict[str, Path], list[str]]:
    """Write ``offer_<enquiry>_<lang>.html`` (and ``.pdf``) into ``out_dir``; returns the
    paths and the sites offered."""
    from omw_sites.reports.sheet import html_to_pdf

    pack = offer_pack(store, enquiry_id, lang)
    if not pack.site_ids:
        msg = (
            f"enquiry {enquiry_id}: no site of its shortlist is on offer (withdrawn from the "
            "offer by their gminy, or no longer available); match it again"
        )
        raise ValueError(msg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"offer_{enquiry_id}_{lang}"
    paths = {"html": out / f"{stem}.html"}
    write_text_atomic(paths["html"], pack.html)
    if pdf:
        paths["pdf"] = html_to_pdf(pack.html, out / f"{stem}.pdf")
    return paths, pack.site_ids
