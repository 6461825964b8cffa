"""BDOT10k layers (roads, rail, protected areas, water, forest, power lines): GML/GPKG/SHP."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from omw_sites.etl.errors import IngestError
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
from omw_sites.etl.numbers import to_number
from omw_sites.etl.result import LayerResult, concat_quarantine, quarantine_rows
from omw_sites.etl.validate import repair_geometries
from omw_sites.etl.vector import read_vector_file
from omw_sites.layers import WORK_CRS

BDOT_NS = "urn:gugik:specyfikacje:gmlas:bazaDanychObiektowTopograficznych10k:"
# BDOT10k class → canonical layer
CLASS_LAYER = {
    "SKDR": "roads",
    "SKJZ": "roads",
    "SKTR": "rail",
    "TCON": "natura2000",
    "TCPK": "landscape_parks",
    "TCPN": "national_parks",
    "TCRZ": "nature_reserves",
    "PTWP": "water",
    "PTLZ": "forest",
    "SULN": "power_lines",
    "BUBD": "buildings",
}
ROAD_CLASSES = {
    "A": "motorway",
    "S": "expressway",
    "GP": "main accelerated",
    "G": "main",
    "Z": "collector",
    "L": "local",
    "D": "access",
    "I": "other",
}
MANAGEMENT = {
    "K": "national",
    "W": "voivodeship",
    "P": "powiat",
    "G": "gmina",
    "Z": "internal",
    "I": "other",
}
# full attribute names (upper case) — SHP truncates them to 10 characters
ATTRIBUTES = (
    "KLASADROGI",
    "KATZARZADZANIA",
    "NUMERDROGI",
    "MATERIALNAWIERZCHNI",
    "LICZBAJEZDNI",
    "SZEROKOSCNAWIERZCHNI",
    "SZERNAWIERZCHNI",  # carriageway width as the BDOT10k classes name it (SKJZ, SKDR)
    "NAZWA",
    "KOD",
    "LINIA",
    "NAPIECIE",
    "X_KOD",
    "RODZAJ",
)


def expand_columns(columns: list[str]) -> dict[str, str]:
    """Map 10-character SHP column names (upper-cased) back to the full BDOT10k names."""
    out = {}
    for c in columns:
        u = c.upper()
        if u in ATTRIBUTES:
            continue
        full = [a for a in ATTRIBUTES if len(u) >= 8 and a.startswith(u)]
        if len(full) == 1:
            out[c] = full[0]
    return out


def bdot_class(name: str) -> str | None:
    """BDOT10k class code (``SKDR``) in a file or layer name such as ``OT_SKDR_L``."""
    for cls in CLASS_LAYER:
        if (
            f"_{cls}_" in name.upper()
            or name.upper().startswith(f"OT_{cls}")
            or cls in name.upper()
        ):
            return cls
    return None


def read_bdot(
    path: str | Path,
    layer: str | None = None,
    cls: str | None = None,
    crs: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> LayerResult:
    """Read one BDOT10k class from GML, GPKG (upper-case 2021 columns) or SHP.

    The class comes from ``cls``, the layer name or the file name (``…OT_SKDR_L…``);
    files with a ``klasaDrogi`` column are roads. SHP column names truncated to 10
    characters are expanded, ESRI ``ETRS_1989_UWPP_1992`` is EPSG:2180.
    """
    path = Path(path)
    if path.suffix.lower() in (".xml", ".gml"):
        gdf, fmt, layer, crs_in = _read_gml(path, cls, crs, limits)
    else:
        gdf, fmt, layer, crs_in = read_vector_file(path, layer, crs, limits=limits)
        gdf = gdf.rename(columns=expand_columns(list(gdf.columns)))
    cls = cls or bdot_class(layer or "") or bdot_class(path.name)
    if cls is None and "KLASADROGI" in gdf:
        cls = "SKDR"
    if cls is None:
        msg = "cannot tell the BDOT10k class (name the layer OT_<CLASS>_<A|L|P> or give it)"
        raise IngestError(path, msg, layer=layer, rule="known BDOT10k class")
    key = CLASS_LAYER[cls]
    n_read = len(gdf)
    gdf, q, repaired = repair_geometries(gdf, layer, str(path))
    frame, q2 = _MAPPERS.get(key, _named)(gdf, path, layer)
    return LayerResult(key, frame, concat_quarantine([q, q2]), fmt, layer, crs_in, n_read, repaired)


def _col(gdf: pd.DataFrame, name: str, default: object = "") -> pd.Series:
    if name in gdf:
        return gdf[name]
    return pd.Series(default, index=gdf.index, dtype=object)


def road_width(gdf: pd.DataFrame) -> pd.Series:
    """Carriageway width (m) under either name BDOT10k exports use; NaN where not given
    (0, as some exports write an unknown width, is not a width)."""
    width = to_number(_col(gdf, "SZERNAWIERZCHNI", None))
    width = width.fillna(to_number(_col(gdf, "SZEROKOSCNAWIERZCHNI", None))).astype(float)
    return width.where(width > 0)


def _roads(gdf, path, layer):
    klass = _col(gdf, "KLASADROGI").fillna("").astype(str).str.strip().str.upper()
    mgmt = _col(gdf, "KATZARZADZANIA").fillna("").astype(str).str.strip().str.upper()
    frame = gpd.GeoDataFrame(
        {
            "road_class": klass.to_numpy(),
            "road_class_name": klass.map(ROAD_CLASSES).fillna("unknown").to_numpy(),
            "management": mgmt.to_numpy(),
            "management_name": mgmt.map(MANAGEMENT).fillna("unknown").to_numpy(),
            "number": _col(gdf, "NUMERDROGI").fillna("").astype(str).to_numpy(),
            "surface": _col(gdf, "MATERIALNAWIERZCHNI").fillna("").astype(str).to_numpy(),
            "width_m": road_width(gdf).to_numpy(),
        },
        geometry=gdf.geometry.to_numpy(),
        crs=WORK_CRS,
    )
    unknown = ~klass.isin(ROAD_CLASSES).to_numpy()
    q = quarantine_rows(  # kept, and reported
        path,
        layer,
        gdf.index[unknown].astype(str),
        "known road class (A, S, GP, G, Z, L, D, I)",
        "kept with its raw class: " + klass[unknown],
    )
    return frame, q


def _rail(gdf, path, layer):
    line = _col(gdf, "LINIA", None).fillna(_col(gdf, "NAZWA", "")).fillna("").astype(str)
    return gpd.GeoDataFrame(
        {"line": line.to_numpy()}, geometry=gdf.geometry.to_numpy(), crs=WORK_CRS
    ), concat_quarantine([])


def _named(gdf, path, layer):
    cols = {
        "code": _col(gdf, "KOD").fillna("").astype(str).to_numpy(),
        "name": _col(gdf, "NAZWA").fillna("").astype(str).to_numpy(),
    }
    return gpd.GeoDataFrame(cols, geometry=gdf.geometry.to_numpy(), crs=WORK_CRS), (
        concat_quarantine([])
    )


def _power(gdf, path, layer):
    kv = to_number(_col(gdf, "NAPIECIE", None))
    return gpd.GeoDataFrame(
        {"voltage_kv": kv.to_numpy()}, geometry=gdf.geometry.to_numpy(), crs=WORK_CRS
    ), concat_quarantine([])


_MAPPERS = {"roads": _roads, "rail": _rail, "power_lines": _power}


def _read_gml(path: Path, cls: str | None, crs, limits: Limits):
    ns = require_namespace(
        path, lambda u: u.startswith(BDOT_NS), f"a BDOT10k GML file: no {BDOT_NS}1.0/2.0", limits
    )
    cls = cls or bdot_class(path.name)
    names = (
        [f"OT_{cls}_{k}" for k in "ALP"]
        if cls
        else [f"OT_{c}_{k}" for c in CLASS_LAYER for k in "ALP"]
    )
    rows, geoms, srs, layer = [], [], [], ""
    for el in iter_features(path, ns, names, limits):
        layer = layer or localname(el.tag)
        props = properties(el)
        g, s = geometry(next((c for c in el if localname(c.tag) == "geometria"), None))
        geoms.append(g)
        srs.append(s)
        rows.append({a: first(props, _camel(a)) for a in ATTRIBUTES})
    if not rows:
        raise IngestError(path, "no BDOT10k features", rule="features present")
    arr, crs_in = to_work_crs(path, layer, geoms, srs, crs)
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=list(arr), crs=WORK_CRS)
    return gdf, f"bdot10k-gml-{ns.rsplit(':', 1)[-1]}", layer, crs_in


_CAMEL = {
    "KLASADROGI": "klasaDrogi",
    "KATZARZADZANIA": "katZarzadzania",
    "NUMERDROGI": "numerDrogi",
    "MATERIALNAWIERZCHNI": "materialNawierzchni",
    "LICZBAJEZDNI": "liczbaJezdni",
    "SZEROKOSCNAWIERZCHNI": "szerokoscNawierzchni",
    "NAZWA": "nazwa",
    "KOD": "kod",
    "LINIA": "linia",
    "NAPIECIE": "napiecie",
    "X_KOD": "x_kod",
    "RODZAJ": "rodzaj",
}


def _camel(name: str) -> str:
    return _CAMEL.get(name, name.lower())
