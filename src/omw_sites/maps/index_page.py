"""The index page of a folder of maps: one link per profile page (``templates/index.html.j2``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from omw_sites.layers import score_col
from omw_sites.maps.assets import render
from omw_sites.maps.map_data import MapData, data_date_text


def _store_name(target: str) -> str:
    """A GeoPackage's file name, or the database URL (already without password)."""
    return target if "://" in target else Path(target).name


def index_html(data: MapData, pages: Mapping[str, str]) -> str:
    """The index page linking ``pages`` (profile -> file name) with each one's site counts."""
    n = len(data.sites)
    links = [
        {
            "href": filename,
            "title": data.profiles[profile]["title"],
            "profile": profile,
            "eligible": f"{int(data.sites[score_col(profile)].notna().sum()):,}",
        }
        for profile, filename in pages.items()
    ]
    return render(
        "index.html.j2",
        data_date=data_date_text(data.run_info),
        run_id=str(data.run_info.get("run_id", "")),
        store=_store_name(data.path),
        pages=links,
        n_sites=f"{n:,}",
    )
