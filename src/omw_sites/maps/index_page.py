"""The index page of a folder of maps (``templates/index.html.j2``), one per language
(``index.html`` English, ``index_pl.html`` Polish): every profile map, comparison map,
report and site sheet the folder holds, found by their file names, each linked in both
languages where both are present."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omw_sites.i18n import LANGUAGE_NAMES, environment, format_number
from omw_sites.layers import rank_col, score_col
from omw_sites.maps.map_data import MapData, data_date_text
from omw_sites.reports.formatting import check_lang, profile_title

# what `omw-sites map --compare`, `balance`, `servicing` and `report` name their pages:
# ``<kind>_<name>.html`` in English, ``<kind>_<name>_pl.html`` in Polish
KINDS = ("compare", "balance", "servicing", "report")
PAGE = re.compile(r"(compare|balance|servicing|report)_(\w+?)(?:_(pl))?\.html$")
SHEET = re.compile(r"sheet_(S[0-9a-f]+)_(pl|en)\.(html|pdf)$")


def index_file(lang: str) -> str:
    """The index page's file name in ``lang``."""
    return "index.html" if lang == "en" else f"index_{lang}.html"


def _store_name(target: str) -> str:
    """A GeoPackage's file name, or the database URL (already without password)."""
    return target if "://" in target else Path(target).name


def _title(data: MapData, profile: str, lang: str) -> str:
    meta = data.profiles.get(profile)
    return profile_title(profile, str(meta["title"]), lang) if meta else profile


def _names(data: MapData, kind: str, rest: str) -> list[str]:
    """The profile names in a page's file name: two for a comparison (profile names may
    hold underscores, so the store's profiles tell where the second begins), else one."""
    if kind == "compare":
        for a in sorted(data.profiles, key=len, reverse=True):
            if rest.startswith(f"{a}_") and rest[len(a) + 1 :]:
                return [a, rest[len(a) + 1 :]]
        first, _, second = rest.partition("_")
        return [first, second]
    return [rest]


def _others(data: MapData, folder: Path, lang: str) -> dict[str, list[dict[str, str]]]:
    """Comparison maps and reports in ``folder``, by kind, each with its page in either
    language."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for path in sorted(folder.glob("*.html")):
        if m := PAGE.fullmatch(path.name):
            kind, rest, page_lang = m[1], m[2], m[3] or "en"
            found.setdefault((kind, rest), {})[page_lang] = path.name
    out: dict[str, list[dict[str, str]]] = {kind: [] for kind in KINDS}
    for (kind, rest), pages in found.items():
        names = " – ".join(_title(data, g, lang) for g in _names(data, kind, rest))
        other = "pl" if lang == "en" else "en"
        out[kind].append(
            {
                "href": pages.get(lang, pages.get(other, "")),
                "title": names,
                "other": pages.get(other, "") if lang in pages else "",
            }
        )
    return out


def _sheets(data: MapData, folder: Path, lang: str) -> list[dict[str, Any]]:
    """One row per site with a sheet in ``folder`` or ``folder/sheets``: its files."""
    rows: dict[str, dict[str, Any]] = {}
    for sub in (folder, folder / "sheets"):
        for path in sorted(sub.glob("sheet_*")) if sub.is_dir() else ():
            if m := SHEET.fullmatch(path.name):
                row = rows.setdefault(m[1], {"id": m[1], "files": []})
                row["files"].append(
                    {
                        "href": path.relative_to(folder).as_posix(),
                        "label": f"{LANGUAGE_NAMES[m[2]]} ({m[3].upper()})",
                        "lang": m[2],
                    }
                )
    sites = data.sites.set_index("site_id") if "site_id" in data.sites else None
    for sid, row in rows.items():
        if sites is not None and sid in sites.index:
            s = sites.loc[sid]
            area = format_number(float(s.get("area_ha", 0)), lang, 2)
            row["name"] = f"{s.get('gmina', '')} · {area}\u00a0ha"
        else:
            row["name"] = ""
    return list(rows.values())


def index_html(data: MapData, folder: Path, lang: str = "en") -> str:
    """The index page of ``folder`` in ``lang``: the profile maps there (with each one's
    site counts), comparison maps, balance / servicing / analysis reports and sheets."""
    check_lang(lang)
    n = len(data.sites)
    other = "pl" if lang == "en" else "en"

    def map_file(profile: str, code: str) -> str:
        return f"{profile}.html" if code == "en" else f"{profile}_{code}.html"

    maps = [
        {
            "href": map_file(profile, lang)
            if (folder / map_file(profile, lang)).is_file()
            else map_file(profile, other),
            "other": map_file(profile, other)
            if (folder / map_file(profile, other)).is_file()
            and (folder / map_file(profile, lang)).is_file()
            else "",
            "title": _title(data, profile, lang),
            "profile": profile,
            "eligible": format_number(
                int((data.sites[rank_col(profile)].fillna(0) > 0).sum()), lang, 0
            ),
        }
        for profile in data.profiles
        if score_col(profile) in data.sites
        and any((folder / map_file(profile, code)).is_file() for code in (lang, other))
    ]
    template = environment("omw_sites.maps", "templates", lang).get_template("index.html.j2")
    return template.render(
        data_date=data_date_text(data.run_info, lang),
        run_id=str(data.run_info.get("run_id", "")),
        store=_store_name(data.path),
        pages=maps,
        others=_others(data, folder, lang),
        sheets=_sheets(data, folder, lang),
        n_sites=format_number(n, lang, 0),
        other_lang=other,
        other_index=index_file(other),
    )
