"""The index page of a folder of maps (``templates/index.html.j2``): every profile map,
comparison map, report and site sheet the folder holds, found by their file names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omw_sites.layers import rank_col, score_col
from omw_sites.maps.assets import render
from omw_sites.maps.map_data import MapData, data_date_text

# what `omw-sites map --compare`, `balance`, `servicing` and `report` name their pages
KINDS = (
    ("compare", re.compile(r"compare_(\w+?)_(\w+)\.html$")),
    ("balance", re.compile(r"balance_(\w+)\.html$")),
    ("servicing", re.compile(r"servicing_(\w+)\.html$")),
    ("report", re.compile(r"report_(\w+)\.html$")),
)
SHEET = re.compile(r"sheet_(S[0-9a-f]+)_(pl|en)\.(html|pdf)$")


def _store_name(target: str) -> str:
    """A GeoPackage's file name, or the database URL (already without password)."""
    return target if "://" in target else Path(target).name


def _title(data: MapData, profile: str) -> str:
    meta = data.profiles.get(profile)
    return str(meta["title"]) if meta else profile


def _others(data: MapData, folder: Path) -> dict[str, list[dict[str, str]]]:
    """Comparison maps and reports in ``folder``, by kind."""
    out: dict[str, list[dict[str, str]]] = {kind: [] for kind, _ in KINDS}
    for path in sorted(folder.glob("*.html")):
        for kind, pattern in KINDS:
            if m := pattern.fullmatch(path.name):
                names = " – ".join(_title(data, g) for g in m.groups())
                out[kind].append({"href": path.name, "title": names})
                break
    return out


def _sheets(data: MapData, folder: Path) -> list[dict[str, Any]]:
    """One row per site with a sheet in ``folder`` or ``folder/sheets``: its files."""
    rows: dict[str, dict[str, Any]] = {}
    for sub in (folder, folder / "sheets"):
        for path in sorted(sub.glob("sheet_*")) if sub.is_dir() else ():
            if m := SHEET.fullmatch(path.name):
                row = rows.setdefault(m[1], {"id": m[1], "files": []})
                row["files"].append(
                    {"href": path.relative_to(folder).as_posix(), "label": f"{m[2]} {m[3]}"}
                )
    sites = data.sites.set_index("site_id") if "site_id" in data.sites else None
    for sid, row in rows.items():
        if sites is not None and sid in sites.index:
            s = sites.loc[sid]
            row["name"] = f"{s.get('gmina', '')} · {float(s.get('area_ha', 0)):,.2f} ha"
        else:
            row["name"] = ""
    return list(rows.values())


def index_html(data: MapData, folder: Path) -> str:
    """The index page of ``folder``: the profile maps there (with each one's site
    counts), comparison maps, balance / servicing / analysis reports and sheets."""
    n = len(data.sites)
    maps = [
        {
            "href": f"{profile}.html",
            "href_pl": f"{profile}_pl.html" if (folder / f"{profile}_pl.html").is_file() else "",
            "title": data.profiles[profile]["title"],
            "profile": profile,
            "eligible": f"{int((data.sites[rank_col(profile)].fillna(0) > 0).sum()):,}",
        }
        for profile in data.profiles
        if (folder / f"{profile}.html").is_file() and score_col(profile) in data.sites
    ]
    return render(
        "index.html.j2",
        data_date=data_date_text(data.run_info),
        run_id=str(data.run_info.get("run_id", "")),
        store=_store_name(data.path),
        pages=maps,
        others=_others(data, folder),
        sheets=_sheets(data, folder),
        n_sites=f"{n:,}",
    )
