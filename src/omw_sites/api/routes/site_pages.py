"""The catalogue's page per site and the shortlist comparison (HTML, CSV, PDF).

``/catalogue/sites/{siteId}``: a site as an investor reads it (facts with units, the
offer, scores with drivers and readiness in the chosen language, a map, data dates, the
PDF sheet). ``/catalogue/compare?ids=S…,S…``: up to ``MAX_COMPARED`` sites side by side,
the same facts as rows (``site_facts.FACTS``), exported as CSV (UTF-8 with BOM, ``;`` and
decimal comma in Polish) or printed to PDF by headless Chromium. The shortlist itself
lives in the browser (``static/site/shortlist.js``: localStorage and the compare URL),
so the catalogue's list adds to it without any API.
"""

from __future__ import annotations

import csv
import io
import tempfile
import threading
from pathlib import Path as FilePath
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse, Response

from omw_sites import i18n
from omw_sites.api import site_facts
from omw_sites.api.catalog import Snapshot
from omw_sites.api.negotiation import negotiate, offers
from omw_sites.api.pages import language_switch
from omw_sites.api.params import check_params, snapshot
from omw_sites.api.problems import ProblemError, bad_parameter
from omw_sites.api.site_facts import FACTS, MAX_COMPARED, SiteGone, Words
from omw_sites.api.site_map import site_map
from omw_sites.layers import SITES

router = APIRouter()

STATIC_DIR = FilePath(__file__).resolve().parents[1] / "static" / "site"
COMPARE_FORMATS = offers(
    {"html": ("text/html",), "csv": ("text/csv",), "pdf": ("application/pdf",)}
)
PDF = "application/pdf"
PDF_WORKERS = threading.BoundedSemaphore(2)  # Chromium prints at most two at a time
PDF_WAIT_S = 60
_pdf_cache: dict[tuple, bytes] = {}  # (store signature, what, lang) -> PDF, a few kept
PDF_CACHE_SIZE = 16
_pdf_cache_lock = threading.Lock()


def _language(request: Request, lang: str | None) -> str:
    """``lang`` when given (400 if not pl/en), else Accept-Language, else Polish."""
    if lang is not None and lang not in i18n.LANGUAGES:
        raise bad_parameter("lang", f"must be one of {', '.join(i18n.LANGUAGES)}, not {lang!r}")
    return i18n.negotiate(lang, request.headers.get("accept-language"))


def _page_links(request: Request, lang: str) -> dict[str, str]:
    return {
        **language_switch(request, lang),
        "home": str(request.url_for("landing")) + "?f=html",
        "catalogue": str(request.url_for("catalogue")) + f"?lang={lang}",
        "compare": str(request.url_for("catalogue_compare")),
        "static": str(request.url_for("static", path="")),
        "site_base": str(request.url_for("catalogue_site", siteId="SITE_ID")),
    }


def _render(template: str, lang: str, **context: Any) -> str:
    env = i18n.environment("omw_sites.api", "templates", lang)
    return str(env.get_template(template).render(**context))


def _inline_assets() -> dict[str, str]:
    """The page's style and script, inlined into a page printed from a file."""
    return {"css": (STATIC_DIR / "site.css").read_text(encoding="utf-8")}


def _gone(exc: SiteGone, request: Request, lang: str) -> Response:
    """404 problem for an unknown site; for one that ended into others, a page (410)
    linking its successors."""
    if not exc.successors:
        raise ProblemError(404, str(exc))
    w = Words(lang)
    links = _page_links(request, lang)
    base = links["site_base"]
    page = _render(
        "site_page_gone.html",
        lang,
        title=w.t("This site has ended"),
        site_id=exc.site_id,
        successors=[(s, base.replace("SITE_ID", s) + f"?lang={lang}") for s in exc.successors],
        **links,
    )
    return HTMLResponse(page, status_code=410, headers={"Content-Language": lang})


# --------------------------------------------------------------------------------------
# The site page
# --------------------------------------------------------------------------------------


def site_context(snap: Snapshot, site_id: str, lang: str) -> dict[str, Any]:
    """Everything the site page shows (raises ``SiteGone``)."""
    row = site_facts.locate(snap, site_id)
    w = Words(lang)
    rec = site_facts.record(snap, row)
    geom = snap.layers[SITES].storage_geometries[row]
    drawn = site_map(snap, row) if geom is not None and not geom.is_empty else None
    return {
        "site_id": site_id,
        "title": site_facts.title(rec, w),
        "facts": [
            (site_facts.fact_label(f, w), site_facts.fact_text(f, rec, w))
            for f in FACTS
            if f.key in KEY_FACTS
        ],
        "offer": site_facts.offer(rec, w),
        "scores": site_facts.scores(snap, rec, w),
        "access": site_facts.access(snap, rec, geom, w),
        "utilities": site_facts.utilities(rec, w),
        "planning": site_facts.planning(rec, w),
        "workforce": site_facts.workforce(rec, w),
        "plan_limits": site_facts.plan_limits(rec, w),
        "land": site_facts.land(rec, w),
        "farmland_consent": site_facts.needs_farmland_consent(rec),
        "constraints": site_facts.constraints(rec, w),
        "parcels": [p.strip() for p in str(rec.get("parcel_ids") or "").split(",") if p.strip()],
        "data_dates": site_facts.data_dates(snap, w),
        "run": {k: str(snap.run_info.get(k, "")) for k in ("run_id", "created")},
        "updated_at": str(rec.get("updated_at") or ""),
        "map": drawn,
        "map_key": [(c, w.t(label)) for c, label in MAP_KEY if drawn and c in drawn["present"]],
    }


MAP_KEY = (  # CSS class of a map symbol -> its words in the key
    ("other-site", "other sites of the inventory"),
    ("road", "main road"),
    ("rail", "railway"),
    ("gmina", "gmina boundary"),
    ("flood", "Q1% flood hazard zone"),
    ("natura", "Natura 2000"),
    *((f"util-{n}", f"network:{n}") for n in ("water", "sewer", "power", "gas", "heat", "telecom")),
    ("junction", "motorway junction"),
    ("station", "passenger rail station"),
    ("freight", "rail freight terminal"),
    ("airport", "airport"),
)
KEY_FACTS = (
    "gmina",
    "precinct",
    "area_ha",
    "n_parcels",
    "ownership",
    "designation",
    "planning_instrument",
    "time_junction_min",
    "workforce_30min",
    "max_height_m",
    "power_capacity_mw",
    "buildable_share",
    "slope_mean_pct",
)


@router.get(
    "/catalogue/sites/{siteId}",
    name="catalogue_site",
    summary="A site's page for investors (HTML, Polish or English)",
    response_class=HTMLResponse,
    include_in_schema=False,  # a page of the catalogue, not a resource of the API
)
async def site_page(
    request: Request,
    site_id: str = Path(alias="siteId", max_length=64),
    lang: str | None = Query(None),
) -> Response:
    check_params(request, frozenset({"lang"}))
    lang = _language(request, lang)
    snap = await snapshot(request)
    try:
        context = await anyio.to_thread.run_sync(site_context, snap, site_id, lang)
    except SiteGone as exc:
        return _gone(exc, request, lang)
    links = _page_links(request, lang)
    sheet = str(request.url_for("site_sheet", siteId=site_id))
    pdf = str(request.url_for("catalogue_site_pdf", siteId=site_id))
    page = _render(
        "site_page.html",
        lang,
        sheet_html=f"{sheet}?lang={lang}",
        sheet_pdf=f"{pdf}?lang={lang}",
        max_compared=MAX_COMPARED,
        **context,
        **links,
    )
    return HTMLResponse(page, headers={"Vary": "Accept-Language", "Content-Language": lang})


# --------------------------------------------------------------------------------------
# PDF: the site sheet, the comparison
# --------------------------------------------------------------------------------------


def _print_pdf(key: tuple, make_html: Any) -> bytes:
    """The PDF of the page ``make_html()`` returns, printed by headless Chromium (cached
    per store version; 503 when the printers stay busy)."""
    from omw_sites.reports.sheet import html_to_pdf

    found = _pdf_cache.get(key)
    if found is not None:
        return found
    if not PDF_WORKERS.acquire(timeout=PDF_WAIT_S):
        raise ProblemError(503, "every PDF printer is busy; try again in a minute")
    try:
        with tempfile.TemporaryDirectory(prefix="omw-pdf-") as tmp:
            path = html_to_pdf(make_html(), FilePath(tmp) / "page.pdf")
            body = path.read_bytes()
    except FileNotFoundError as exc:  # no Chromium on this server
        raise ProblemError(503, f"PDF printing is not available here: {exc}") from None
    finally:
        PDF_WORKERS.release()
    with _pdf_cache_lock:
        while len(_pdf_cache) >= PDF_CACHE_SIZE:
            _pdf_cache.pop(next(iter(_pdf_cache)))
        _pdf_cache[key] = body
    return body


def _pdf_response(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type=PDF,
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


@router.get(
    "/catalogue/sites/{siteId}/sheet.pdf",
    name="catalogue_site_pdf",
    summary="A site's offer sheet as PDF (Polish or English)",
    response_class=Response,
    include_in_schema=False,
)
async def site_pdf(
    request: Request,
    site_id: str = Path(alias="siteId", max_length=64),
    lang: str | None = Query(None),
) -> Response:
    from omw_sites.reports.sheet import render_sheet

    check_params(request, frozenset({"lang"}))
    lang = _language(request, lang)
    snap = await snapshot(request)
    try:
        site_facts.locate(snap, site_id)
    except SiteGone as exc:
        raise ProblemError(404, str(exc)) from None
    store = request.app.state.catalog.store_path
    key = (snap.signature, "sheet", site_id, lang)
    body = await anyio.to_thread.run_sync(
        _print_pdf, key, lambda: render_sheet(store, site_id, lang)
    )
    return _pdf_response(body, f"sheet_{site_id}_{lang}.pdf")


# --------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------


def parse_ids(text: str | None) -> list[str]:
    """The site IDs of ``ids=S…,S…`` in order, each once; 400 over ``MAX_COMPARED``."""
    ids: list[str] = []
    for part in (text or "").split(","):
        part = part.strip()
        if part and part not in ids:
            ids.append(part)
    if len(ids) > MAX_COMPARED:
        raise bad_parameter("ids", f"at most {MAX_COMPARED} sites can be compared, not {len(ids)}")
    return ids


def compare_table(snap: Snapshot, ids: list[str], lang: str) -> dict[str, Any]:
    """Rows of facts (label, unit, the value per site as text and as a cell) and the
    per-profile score rows; 404 naming an ID that is not a current site."""
    w = Words(lang)
    recs = []
    for sid in ids:
        try:
            recs.append(site_facts.record(snap, site_facts.locate(snap, sid)))
        except SiteGone as exc:
            raise ProblemError(404, str(exc)) from None
    rows = [
        {
            "label": site_facts.fact_label(f, w),
            "header": site_facts.fact_label(f, w, with_unit=True),
            "texts": [site_facts.fact_text(f, r, w) for r in recs],
            "cells": [site_facts.fact_cell(f, r, w) for r in recs],
        }
        for f in FACTS
    ]
    for name, prof in snap.profiles.items():
        title = site_facts.profile_title(name, prof.title, w)
        ranked = site_facts.ranked_count(snap, name)
        score = [w.num(r.get(f"score_{name}"), 3) for r in recs]
        cells = [w.num(r.get(f"score_{name}"), 3, grouping=False) for r in recs]
        ranks = [int(r.get(f"rank_{name}") or 0) for r in recs]
        tiers = [str(r.get(f"tier_{name}") or "") for r in recs]
        rank_texts = [
            w.t("%(rank)s of %(count)s", rank=k, count=ranked) if k > 0 else w.t("not ranked")
            for k in ranks
        ]
        rows += [
            {"label": f"{title}: {w.t('Score')}", "header": f"{title}: {w.t('Score')} [0–1]",
             "texts": score, "cells": cells},
            {"label": f"{title}: {w.t('Rank')}", "header": f"{title}: {w.t('Rank')}",
             "texts": rank_texts, "cells": [str(k) if k > 0 else "" for k in ranks]},
            {"label": f"{title}: {w.t('Tier')}", "header": f"{title}: {w.t('Tier')}",
             "texts": tiers, "cells": tiers},
        ]  # fmt: skip
    sites = [
        {"id": sid, "title": site_facts.title(r, w), "status": str(r.get("status") or "")}
        for sid, r in zip(ids, recs, strict=True)
    ]
    return {"sites": sites, "rows": rows}


def compare_csv(table: dict[str, Any], lang: str) -> bytes:
    """The comparison as CSV for a spreadsheet in ``lang``: a row per fact, a column per
    site; Polish Excel reads ``;`` with decimal commas, English ``,`` with dots; UTF-8
    with a BOM, or Excel takes it for the local code page."""
    w = Words(lang)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if lang == "pl" else ",", lineterminator="\r\n")
    writer.writerow([w.t("Site"), *(s["id"] for s in table["sites"])])
    writer.writerow([w.t("Name"), *(s["title"] for s in table["sites"])])
    for row in table["rows"]:
        writer.writerow([row["header"], *row["cells"]])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


@router.get(
    "/catalogue/compare",
    name="catalogue_compare",
    summary="Up to 10 shortlisted sites side by side (HTML, CSV or PDF)",
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def compare(
    request: Request,
    ids: str | None = Query(None, max_length=1000),
    lang: str | None = Query(None),
    f: str | None = Query(None),
) -> Response:
    check_params(request, frozenset({"ids", "lang", "f"}))
    lang = _language(request, lang)
    chosen = parse_ids(ids)
    fmt = negotiate(request, f, COMPARE_FORMATS)
    snap = await snapshot(request)
    table = compare_table(snap, chosen, lang)
    w = Words(lang)
    stem = "porownanie" if lang == "pl" else "comparison"
    if fmt == "csv":
        if not chosen:
            raise bad_parameter("ids", "name the sites to export: ids=S…,S…")
        return Response(
            compare_csv(table, lang),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
        )
    links = _page_links(request, lang)
    query = urlencode({"ids": ",".join(chosen), "lang": lang})
    context = {
        "title": w.t("Compare sites"),
        "table": table,
        "max_compared": MAX_COMPARED,
        "csv_href": f"{links['compare']}?{query}&f=csv",
        "pdf_href": f"{links['compare']}?{query}&f=pdf",
        **links,
    }
    if fmt == "pdf":
        if not chosen:
            raise bad_parameter("ids", "name the sites to print: ids=S…,S…")
        key = (snap.signature, "compare", tuple(chosen), lang)

        def printed() -> str:
            return _render("compare.html", lang, printed=True, **_inline_assets(), **context)

        body = await anyio.to_thread.run_sync(_print_pdf, key, printed)
        return _pdf_response(body, f"{stem}.pdf")
    page = _render("compare.html", lang, printed=False, **context)
    return HTMLResponse(page, headers={"Vary": "Accept, Accept-Language", "Content-Language": lang})
