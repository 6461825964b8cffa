"""Land-use and soil-class contours and buildings of an EGiB GML export (2015 and 2021).

``EGB_KonturUzytkuGruntowego`` (``OFU``: the land use), ``EGB_KonturKlasyfikacyjny``
(``OZU``, ``OZK``: the soil classification) and ``EGB_Budynek`` (footprints), current
versions only (no ``koniecWersjaObiekt`` or ``koniecObiekt``), in EPSG:2180, as the
canonical layers ``land_use``, ``soil_classes`` and ``buildings``. The parcels of the same
file are read by :func:`omw_sites.etl.egib.read_egib_gml`.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import geopandas as gpd
import pandas as pd

from omw_sites.etl.egib import egib_schema
from omw_sites.etl.gml import (
    DEFAULT_LIMITS,
    Limits,
    first,
    geometry,
    iter_features,
    localname,
    properties,
    require_namespace,
    to_work_crs,
)
from omw_sites.layers import WORK_CRS

LAND_USE = "EGB_KonturUzytkuGruntowego"
SOIL = "EGB_KonturKlasyfikacyjny"
BUILDING = "EGB_Budynek"
FEATURE_KEYS = {LAND_USE: "land_use", SOIL: "soil_classes", BUILDING: "buildings"}


def holds_land(path: str | Path) -> bool:
    """Whether the file names any contour or building feature: a byte search, so a parcel
    export without them is not parsed a second time."""
    with open(path, "rb") as f:
        if Path(path).stat().st_size == 0:
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return any(mm.find(name.encode()) >= 0 for name in FEATURE_KEYS)


def read_egib_land(
    path: str | Path, crs: str | int | None = None, limits: Limits = DEFAULT_LIMITS
) -> dict[str, gpd.GeoDataFrame]:
    """The current contours and buildings of an EGiB GML file, per canonical layer (a
    layer the file does not hold is left out)."""
    path = Path(path)
    expected = "an EGiB GML file: no ewidencjaGruntowBudynkow or ewidencjaGruntowIBudynkow"
    ns = require_namespace(path, egib_schema, expected, limits)
    rows: dict[str, list[dict[str, str]]] = {k: [] for k in FEATURE_KEYS}
    geoms: dict[str, list] = {k: [] for k in FEATURE_KEYS}
    srs: dict[str, list] = {k: [] for k in FEATURE_KEYS}
    for el in iter_features(path, ns, tuple(FEATURE_KEYS), limits):
        props = properties(el)
        if first(props, "koniecWersjaObiekt") or first(props, "koniecObiekt"):
            continue  # an earlier version, or an object that no longer exists
        name = localname(el.tag)
        g, s = geometry(next((c for c in el if c.tag == f"{{{ns}}}geometria"), None))
        geoms[name].append(g)
        srs[name].append(s)
        rows[name].append(
            {
                "id": first(props, "idUzytku") or first(props, "idKonturu") or "",
                "ofu": first(props, "OFU", ""),
                "ozu": first(props, "OZU", ""),
                "ozk": (first(props, "OZK", "")).upper(),
            }
        )
    out = {}
    columns = {LAND_USE: ["ofu"], SOIL: ["ozu", "ozk"], BUILDING: []}
    for name, key in FEATURE_KEYS.items():
        if not rows[name]:
            continue
        arr, _ = to_work_crs(path, name, geoms[name], srs[name], crs)
        frame = pd.DataFrame(rows[name])[columns[name]]
        gdf = gpd.GeoDataFrame(frame, geometry=list(arr), crs=WORK_CRS)
        out[key] = gdf[~gdf.geometry.isna().to_numpy() & ~gdf.geometry.is_empty.to_numpy()]
        out[key] = out[key].reset_index(drop=True)
    return out


def merged(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Frames of one canonical layer as one (EPSG:2180)."""
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WORK_CRS)
