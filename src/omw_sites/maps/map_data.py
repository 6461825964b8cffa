"""What the maps read from a store: the site columns, the reference layers, the profiles.

Read once per store and shared by every page (profile maps, the comparison map, the
servicing map); reference layers are turned into lon/lat GeoJSON on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from omw_sites.i18n import gettext
from omw_sites.layers import (
    REFERENCE_COLUMNS,
    REFERENCE_LAYERS,
    SITES,
    WORK_CRS,
    excluded_col,
    rank_col,
    score_col,
)
from omw_sites.maps.geojson import (
    REFERENCE_TOLERANCE_M,
    feature_collection,
    records,
    web_geometries,
)
from omw_sites.maps.style import criterion_fields
from omw_sites.reports.formatting import date_text
from omw_sites.store import display_target, list_layers, read_layer, read_run_info, read_sites

# site-table columns every map reads (besides the profile and criteria columns)
_SITE_BASE = (
    "site_id",
    "gmina",
    "teryt",
    "area_ha",
    "zoning_symbol",
    "zoning_class",
    "status",
    "price_pln_m2",
    "lease_pln_m2_year",
    "junction_name",
    "time_junction_min",
    "workforce_30min",
    "max_height_m",
)
MAX_UTILITY_FEATURES = 5_000  # above this, only trunk lines, merged per network and status
TRUNK_MIN_DIAMETER_MM = 200
TRUNK_VOLTAGES = ("ww", "w", "s")  # extra high, high, medium


@dataclass
class MapData:
    """What the maps need from one store, read once and shared by every profile's map."""

    path: str  # store target: GeoPackage path or PostGIS URL (shown without password)
    run_info: dict[str, Any]
    profiles: dict[str, dict[str, Any]]  # name -> {"title": ..., "weights": {...}}
    sites: gpd.GeoDataFrame
    reference: dict[str, gpd.GeoDataFrame]
    _reference_geojson: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reference_geojson(self, name: str) -> dict[str, Any]:
        """A reference layer as lon/lat GeoJSON (simplified ~15 m), cached."""
        if name not in self._reference_geojson:
            gdf = self.reference[name]
            cols = [c for c in REFERENCE_COLUMNS.get(name, ()) if c in gdf.columns]
            if name == "utilities" and len(gdf) > MAX_UTILITY_FEATURES:
                gdf, cols = trunk_lines(gdf, [c for c in ("network", "status") if c in cols])
            geoms = web_geometries(gdf.geometry, REFERENCE_TOLERANCE_M)
            self._reference_geojson[name] = feature_collection(geoms, records(gdf[cols]))
        return self._reference_geojson[name]


def trunk_lines(gdf: gpd.GeoDataFrame, keys: list[str]) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Trunk utility lines (HV/MV power, pipes ≥ 200 mm), one multi-line per ``keys`` group.

    A region's GESUT holds ~10⁵ service segments; drawn one feature each they make the
    page tens of MB. The region map shows the trunk networks; a site's own distances to
    every network are in its popup.
    """
    diameter = pd.to_numeric(gdf.get("diameter_mm"), errors="coerce")
    voltage = gdf["voltage"].astype(str) if "voltage" in gdf else pd.Series("", index=gdf.index)
    network = gdf["network"].astype(str)
    trunk = ((network == "power") & voltage.isin(TRUNK_VOLTAGES)) | (
        diameter >= TRUNK_MIN_DIAMETER_MM
    )
    rows, geoms = [], []
    for values, group in gdf[trunk.to_numpy()].groupby(keys, sort=True):
        merged = shapely.line_merge(shapely.multilinestrings(group.geometry.to_numpy()))
        values = values if isinstance(values, tuple) else (values,)
        rows.append(dict(zip(keys, values, strict=True)) | {"trunk": True})
        geoms.append(merged)
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=gdf.crs), [*keys, "trunk"]


def _profiles_from(info: Mapping[str, Any], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    raw = info.get("profiles")
    items: list[tuple[str, Any]] = []
    if isinstance(raw, Mapping):
        items = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping) and item.get("name"):
                items.append((str(item["name"]), item))
            elif isinstance(item, str):
                items.append((item, {}))
    out: dict[str, dict[str, Any]] = {}
    for name, meta in items:
        meta = meta if isinstance(meta, Mapping) else {}
        weights = meta.get("weights")
        out[name] = {
            "title": str(meta.get("title") or name.replace("_", " ").title()),
            "weights": dict(weights) if isinstance(weights, Mapping) else {},
        }
    if not out:  # no run info: every score_<profile> column is a profile
        for col in columns:
            if col.startswith("score_"):
                name = col.removeprefix("score_")
                out[name] = {"title": name.replace("_", " ").title(), "weights": {}}
    return out


def available_profiles(store_path: str | Path) -> dict[str, str]:
    """Profiles the store can map: name -> title (from run info, else the score columns)."""
    info = read_run_info(store_path)
    columns = list(read_sites(store_path, read_geometry=False, max_features=1).columns)
    return {k: v["title"] for k, v in _profiles_from(info, columns).items()}


def check_profiles(requested: Sequence[str], data: MapData) -> None:
    valid = ", ".join(sorted(data.profiles)) or "(none: the store has no score_* columns)"
    for profile in requested:
        if profile not in data.profiles:
            msg = f"unknown profile {profile!r} for store {data.path}; valid profiles: {valid}"
            raise ValueError(msg)
        missing = [
            c for c in (score_col(profile), rank_col(profile)) if c not in data.sites.columns
        ]
        if missing:
            msg = (
                f"store {data.path} lists profile {profile!r} but its {SITES!r} layer has no "
                f"{', '.join(missing)} column; re-run `omw-sites run`"
            )
            raise ValueError(msg)


def load_map_data(store_path: str | Path) -> MapData:
    """Read the site columns the maps use, the reference layers and the run info.

    Parameters
    ----------
    store_path : the GeoPackage store (``data/processed/omw_sites.gpkg``)

    Returns
    -------
    MapData
    """
    path = display_target(store_path)
    store = store_path
    info = read_run_info(store)
    columns = list(read_sites(store, read_geometry=False, max_features=1).columns)
    profiles = _profiles_from(info, columns)
    wanted = [c for c in _SITE_BASE if c in columns]
    for p in profiles:
        per_profile = (score_col(p), rank_col(p), excluded_col(p), f"drivers_{p}")
        wanted += [c for c in per_profile if c in columns]
    wanted += [f.column for f in criterion_fields(columns, info.get("units"))]
    sites = read_sites(store, columns=list(dict.fromkeys(wanted)))
    if sites.crs is None:
        sites = sites.set_crs(WORK_CRS)
    layers = set(list_layers(store))
    reference = {name: read_layer(store, name) for name in REFERENCE_LAYERS if name in layers}
    reference = {k: v for k, v in reference.items() if not v.empty}
    return MapData(path, info, profiles, sites, reference)


def data_date_text(info: Mapping[str, Any], lang: str = "en") -> str:
    """The data date shown on the maps: parcels first, then the span of the other inputs."""
    dates = info.get("data_dates")
    if isinstance(dates, Mapping) and dates:
        # parcels first (the inventory's own date), then the range of the other inputs
        parcels = dates.get("parcels")
        others = sorted(str(v) for k, v in dates.items() if k != "parcels" and v)
        parts = [gettext(lang, "parcels %(date)s", date=parcels)] if parcels else []
        if others:
            span = others[0] if others[0] == others[-1] else f"{others[0]} – {others[-1]}"
            parts.append(gettext(lang, "other layers %(span)s", span=span))
        return "; ".join(parts)
    created = info.get("created")
    return (
        gettext(lang, "run of %(date)s", date=date_text(created, lang))
        if created
        else gettext(lang, "unknown")
    )
