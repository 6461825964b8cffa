"""MPZP designations: split numbered symbols (``12P/U``) into number, raw symbol and classes."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import DEFAULT_LIMITS, Limits
from omw_sites.etl.result import LayerResult, concat_quarantine, quarantine_rows

# 2023 land-use code list (KPT), FORMATS.md
KPT_CLASSES = frozenset(
    "C G H I K KDA KDS KDR KDG KDZ KK KKL KL KO KW L ML MN MW P PEB PEF PEG PEO PEW PS RA RN "
    "RZM RZP RZW U UA UE UG UH UHD UK UL UN UR US UT UZ W ZB ZD ZN ZP".split()
)
# 2003-regulation symbols still in force in older plans → 2023 classes
LEGACY_TO_KPT = {
    "R": "RN",
    "RM": "RZM",
    "ZL": "L",
    "ZE": "ZN",
    "WS": "W",
    "KS": "K",
    "KD": "K",
    "KDD": "KDZ",
    "KDL": "KDZ",
    "KDGP": "KDG",
    "KDZ": "KDZ",
    "KDG": "KDG",
    "E": "PEO",
    "MN/U": "MN/U",
}

_SYMBOL = r"^\s*(?P<number>\d+)?\s*\.?\s*(?P<symbol>[A-Za-z][A-Za-z/\-, ]*?)\s*(?P<suffix>\d+)?\s*$"


def parse_symbols(symbols: pd.Series) -> pd.DataFrame:
    """Split designation symbols into ``number``, ``symbol`` (raw letters) and ``classes``.

    ``classes`` is the normalised list joined with ``/`` (``12U/P`` → ``U/P``,
    ``3KD-D`` → ``KDZ``); ``known`` is False where a part is not in the 2023 code list
    or the legacy table — such records are kept and reported, never dropped.
    """
    parts = symbols.astype(str).str.extract(_SYMBOL)
    raw = parts["symbol"].fillna("").str.upper().str.replace(" ", "", regex=False)
    normalised = raw.map(_normalise)
    out = pd.DataFrame(
        {
            "number": pd.to_numeric(parts["number"], errors="coerce").astype("Int64"),
            "symbol": raw,
            "classes": normalised.map(lambda t: t[0]),
            "known": normalised.map(lambda t: t[1]).astype(bool),
        },
        index=symbols.index,
    )
    return out


def _normalise(raw: str) -> tuple[str, bool]:
    if not raw:
        return "", False
    if raw in LEGACY_TO_KPT:
        return LEGACY_TO_KPT[raw], True
    compact = raw.replace("-", "")
    if compact in LEGACY_TO_KPT:
        return LEGACY_TO_KPT[compact], True
    pieces = [p for p in raw.replace(",", "/").split("/") if p]
    mapped = [LEGACY_TO_KPT.get(p.replace("-", ""), p.replace("-", "")) for p in pieces]
    known = all(m in KPT_CLASSES for m in mapped)
    return "/".join(mapped), known


def read_mpzp(
    path: str | Path,
    layer: str | None = None,
    crs: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> LayerResult:
    """Read a vector MPZP designation layer (GPKG/SHP/GML/GeoJSON) into ``zoning``.

    Needs a ``SYMBOL`` (or ``OZNACZENIE`` / ``PRZEZNACZENIE``) column; unknown symbols
    are kept with their raw text and reported in the quarantine, never dropped.
    """
    from omw_sites.etl.validate import repair_geometries
    from omw_sites.etl.vector import read_vector_file

    path = Path(path)
    gdf, fmt, layer, crs_in, valid = read_vector_file(path, layer, crs, limits=limits)
    col = next((c for c in ("SYMBOL", "OZNACZENIE", "PRZEZNACZENIE") if c in gdf), None)
    if col is None:
        msg = "no designation column (SYMBOL, OZNACZENIE or PRZEZNACZENIE)"
        raise IngestError(path, msg, layer=layer, rule="required columns")
    n_read = len(gdf)
    gdf, q, repaired = repair_geometries(gdf, layer, str(path), valid=valid)
    parts = parse_symbols(gdf[col])

    def text(name: str) -> np.ndarray:
        s = gdf[name] if name in gdf else pd.Series("", index=gdf.index)
        return s.fillna("").astype(str).to_numpy()

    frame = gpd.GeoDataFrame(
        {
            "plan_id": text("PLAN_ID"),
            "teryt": text("TERYT"),
            "plan_name": text("NAZWA_PLANU"),
            "adopted": text("DATA_UCHWALENIA"),
            "symbol_raw": gdf[col].astype(str).to_numpy(),
            "number": parts["number"].to_numpy(),
            "symbol": parts["symbol"].to_numpy(),
            "classes": parts["classes"].to_numpy(),
            "known": parts["known"].to_numpy(),
        },
        geometry=gdf.geometry.to_numpy(),
        crs=gdf.crs,
    )
    unknown = ~parts["known"].to_numpy()
    q2 = quarantine_rows(
        path,
        layer,
        gdf[col].astype(str)[unknown],
        "known designation symbol (KPT 2023 code list)",
        "kept with its raw symbol; not matched to a class",
    )
    return LayerResult(
        "zoning", frame, concat_quarantine([q, q2]), fmt, layer, crs_in, n_read, repaired
    )
