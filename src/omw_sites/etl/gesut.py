"""GESUT 2021 GML: utility lines and devices per network type, status, voltage, operator."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import (
    DEFAULT_LIMITS,
    GML_NAMESPACES,
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
from omw_sites.etl.result import LayerResult, concat_quarantine
from omw_sites.etl.validate import repair_geometries
from omw_sites.layers import NETWORKS, WORK_CRS

GESUT_NS = "geodezyjnaEwidencjaSieciUzbrojeniaTerenu:1.0"
# feature type suffix → network code (rodzajSieci)
NETWORK_BY_TYPE = {
    "Wodociagow": "w",
    "Kanalizacyj": "k",
    "Elektroenergetyczn": "e",
    "Gazow": "g",
    "Cieplownicz": "c",
    "Telekomunikacyjn": "t",
    "Specjaln": "s",
    "Niezidentyfikowan": "x",
}
NETWORK_NAMES = NETWORKS | {"s": "special", "x": "unidentified"}
LINE_TYPES = tuple(
    f"GES_Przewod{t}"
    for t in (
        "Wodociagowy", "Kanalizacyjny", "Elektroenergetyczny", "Gazowy", "Cieplowniczy",
        "Telekomunikacyjny", "Specjalny", "Niezidentyfikowany",
    )
)  # fmt: skip
DEVICE_TYPES = tuple(
    f"GES_UrzadzeniaSiec{t}"
    for t in (
        "Wodociagowa", "Kanalizacyjna", "Elektroenergetyczna", "Gazowa", "Cieplownicza",
        "Telekomunikacyjna", "Specjalna", "Niezidentyfikowana",
    )
) + ("GES_InneUrzadzeniaTowarzyszace",)  # fmt: skip
VOLTAGE = {"ww": "extra high", "w": "high", "s": "medium", "n": "low"}


def is_gesut(namespace: str) -> bool:
    return "geodezyjnaEwidencjaSieciUzbrojeniaTerenu" in namespace


def read_gesut(
    path: str | Path, crs: str | int | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[LayerResult, LayerResult]:
    """Read a GESUT GML file into ``utilities`` (lines) and ``utility_devices`` (points).

    Only current versions are kept (no ``koniecWersjaObiekt`` / ``koniecObiekt``). The
    network type comes from ``rodzajSieci`` or, where absent, the feature type name.
    """
    path = Path(path)
    ns = require_namespace(path, is_gesut, f"a GESUT GML file: no {GESUT_NS}", limits)
    gml_id = f"{{{GML_NAMESPACES[0]}}}id"
    rows, geoms, srs = [], [], []
    for el in iter_features(path, ns, LINE_TYPES + DEVICE_TYPES, limits):
        props = properties(el)
        kind = localname(el.tag)
        g, s = geometry(next((c for c in el if localname(c.tag) == "geometria"), None))
        geoms.append(g)
        srs.append(s)
        code = (first(props, "rodzajSieci") or _network_of(kind)).lower()
        rows.append(
            {
                "feature_id": el.get(gml_id) or "",
                "feature_type": kind,
                "is_line": kind.startswith("GES_Przewod"),
                "network_code": code,
                "status_code": (first(props, "status") or "i").lower(),
                "in_use": (first(props, "eksploatacja") or "c").lower() == "c",
                "voltage": (first(props, "typPrzewodu") or first(props, "typ") or "").lower()
                if code == "e"
                else "",
                "diameter_mm": first(props, "srednica"),
                "operator": first(props, "wladajacy", ""),
                "ended": bool(first(props, "koniecWersjaObiekt") or first(props, "koniecObiekt")),
                "device_kind": first(props, "rodzajUrzadzenia", ""),
                "namespace": first(props, "przestrzenNazw", ""),
            }
        )
    if not rows:
        raise IngestError(path, "no GESUT lines or devices", rule="features present")
    df = pd.DataFrame(rows)
    arr, crs_in = to_work_crs(path, "GES_*", geoms, srs, crs)
    n_read = len(df)
    df["network"] = df["network_code"].map(NETWORK_NAMES).fillna("other")
    df["status"] = df["status_code"].map({"i": "existing", "p": "planned"}).fillna("existing")
    df["voltage_class"] = df["voltage"].map(VOLTAGE).fillna("")
    df["diameter_mm"] = to_number(df["diameter_mm"])
    live = ~df["ended"].to_numpy()
    out = []
    for key, mask in (
        ("utilities", df["is_line"].to_numpy()),
        ("utility_devices", ~df["is_line"].to_numpy()),
    ):
        sel = live & mask
        gdf = gpd.GeoDataFrame(
            df[sel].drop(columns=["ended", "is_line"]).reset_index(drop=True),
            geometry=list(arr[sel]),
            crs=WORK_CRS,
        )
        gdf, q, repaired = repair_geometries(gdf, key, str(path), "feature_id")
        layer = "GES_Przewod*" if key == "utilities" else "GES_Urzadzenia*"
        result = LayerResult(
            key, gdf.reset_index(drop=True), concat_quarantine([q]), "gesut-gml-2021",
            layer, crs_in, int(mask.sum()), repaired,
            extra={"historical": int((mask & ~live).sum())},
        )  # fmt: skip
        out.append(result)
    assert n_read == out[0].read + out[1].read
    return out[0], out[1]


# GESUT GML exports in this raw-folder subfolder replace the GPKG's utility lines of the
# powiat they come from (``przestrzenNazw`` ``PL.PZGiK.<TERYT4>.GESUT``); belongs beside
# ``EGIB_GML_DIR`` / ``APP_GML_DIR`` in ``omw_sites.layers``
def in_powiat(lines: np.ndarray, gminy: gpd.GeoDataFrame, powiat: str) -> np.ndarray:
    """True for each line whose midpoint lies in a gmina of ``powiat``.

    ``gminy`` holds ``JPT_KOD_JE`` or ``teryt`` (7 digits) and polygons in the lines'
    CRS. The one rule both the demo (which lines it exports) and the ingest (which GPKG
    lines a powiat's GESUT file replaces) use, so the two always agree.
    """
    code = gminy["JPT_KOD_JE"] if "JPT_KOD_JE" in gminy else gminy["teryt"]
    ours = (code.astype(str).str[:4] == powiat).to_numpy()
    area = shapely.union_all(gminy.geometry.to_numpy()[ours])
    mid = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    return shapely.contains_xy(area, shapely.get_x(mid), shapely.get_y(mid))


def powiaty_of_lines(lines: np.ndarray, gminy: gpd.GeoDataFrame, share: float) -> list[str]:
    """The powiaty (TERYT4) holding at least ``share`` of the midpoints of ``lines``,
    told by the gmina boundaries ``gminy`` (``JPT_KOD_JE`` or ``teryt``), sorted."""
    if not len(lines):
        return []
    code = gminy["JPT_KOD_JE"] if "JPT_KOD_JE" in gminy else gminy["teryt"]
    mid = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    tree = shapely.STRtree(gminy.geometry.to_numpy())
    pt, gm = tree.query(mid, predicate="intersects")
    if not len(pt):
        return []
    first = pd.Series(gm).groupby(pt).first()  # a point on a shared border counts once
    powiat = code.astype(str).str[:4].to_numpy()[first.to_numpy()]
    counts = pd.Series(powiat).value_counts()
    return sorted(str(p) for p, n in counts.items() if n >= share * len(lines))


def _network_of(feature_type: str) -> str:
    return next((c for k, c in NETWORK_BY_TYPE.items() if k in feature_type), "x")


def counts_per_network(lines: gpd.GeoDataFrame) -> dict[str, int]:
    """Number of features per network name."""
    return {str(k): int(v) for k, v in lines["network"].value_counts().sort_index().items()}


__all__ = [
    "counts_per_network",
    "in_powiat",
    "powiaty_of_lines",
    "is_gesut",
    "read_gesut",
]
