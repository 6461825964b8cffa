"""MPZP designations: split numbered symbols (``12P/U``) into number, raw symbol and classes."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import DEFAULT_LIMITS, Limits
from omw_sites.etl.numbers import to_number
from omw_sites.etl.result import LayerResult, concat_quarantine, quarantine_rows

# 2023 land-use code list (KPT), FORMATS.md
KPT_CLASSES = frozenset(
    "C G H I K KDA KDS KDR KDG KDZ KK KKL KL KO KW L ML MN MW P PEB PEF PEG PEO PEW PS RA RN "
    "RZM RZP RZW U UA UE UG UH UHD UK UL UN UR US UT UZ W ZB ZD ZN ZP".split()
)
# 2003-regulation symbols still in force in older plans, and the compact forms plans
# write (MNU for MN/U, PU for P/U) → 2023 classes
LEGACY_TO_KPT = {
    "R": "RN",
    "RM": "RZM",
    "ZL": "L",
    "ZE": "ZN",
    "ZC": "C",  # cemeteries
    "WS": "W",
    "KS": "K",  # car parks, transport service
    "KD": "K",
    "KDD": "KDZ",
    "KDL": "KDZ",
    "KDW": "KDZ",  # internal road
    "KDX": "K",
    "KDGP": "KDG",
    "KDZ": "KDZ",
    "KDG": "KDG",
    "KP": "K",  # footway
    "KPJ": "K",  # pedestrian and vehicle way
    "KPR": "K",
    "KX": "K",
    "E": "PEO",
    "IT": "I",
    "UC": "UH",  # large-format retail
    "UKR": "UK",  # religious worship
    "UO": "U",
    "MN/U": "MN/U",
    "MNU": "MN/U",
    "MWU": "MW/U",
    "PU": "P/U",
    "UP": "U/P",
}

# ``B7.MN``, ``C1.MW/U``: a plan area's own label before a dot; then an optional number,
# the letters (classes joined by / , + or -) and an optional number after them
_AREA = r"(?:(?P<area>[A-Za-z]{1,3}\d+[A-Za-z]?)\s*\.\s*)?"
_SYMBOL = (
    r"^\s*" + _AREA + r"(?P<number>\d+)?\s*[.\-]?\s*"
    r"(?P<symbol>[A-Za-z][A-Za-z/\-,+ ]*?)\s*(?:[.\-]?\s*(?P<suffix>\d+[a-z]?))?\s*$"
)
_SPLIT = re.compile(r"\s*[/,+]\s*")


def parse_symbols(symbols: pd.Series) -> pd.DataFrame:
    """Split designation symbols into ``number``, ``symbol`` (raw letters) and ``classes``.

    Forms as Polish plans write them: ``12P/U``, ``7 MW``, ``MN1``, ``12KPJ``, area labels
    (``B7.MN``, ``C1.MW/U``, ``A12.U``), classes joined by ``/``, ``,``, ``+`` or ``-``
    (``MW-U``; but ``KD-GP`` is one road class), lower-case sub-types (``UKr``, ``Uo``).
    ``classes`` is the normalised list joined with ``/`` (``12U/P`` → ``U/P``,
    ``3KD-D`` → ``KDZ``, ``MNU`` → ``MN/U``); ``number`` is the number before the letters,
    else the one after them, else the area label's; ``known`` is False where a part is
    not in the 2023 code list or the legacy table — such records are kept and reported,
    never dropped.
    """
    parts = symbols.astype(str).str.extract(_SYMBOL)
    letters = parts["symbol"].fillna("").str.replace(" ", "", regex=False)
    raw = letters.str.upper()
    normalised = letters.map(_normalise)
    number = parts["number"].fillna(parts["suffix"].str.extract(r"(\d+)", expand=False))
    number = number.fillna(parts["area"].str.extract(r"(\d+)", expand=False))  # B7.MN: 7
    out = pd.DataFrame(
        {
            "number": pd.to_numeric(number, errors="coerce").astype("Int64"),
            "symbol": raw,
            "classes": normalised.map(lambda t: t[0]),
            "known": normalised.map(lambda t: t[1]).astype(bool),
        },
        index=symbols.index,
    )
    return out


def _class(token: str) -> str | None:
    """One symbol as a 2023 class (``a/b`` for a compact pair), None when unknown."""
    upper = token.upper()
    if upper in LEGACY_TO_KPT:
        return LEGACY_TO_KPT[upper]
    if upper in KPT_CLASSES:
        return upper
    head = re.fullmatch(r"([A-Z]+)[a-z]+", token)  # a lower-case sub-type: Uo, MNe, UKr
    if head:
        return _class(head.group(1))
    return None


def _normalise(letters: str) -> tuple[str, bool]:
    if not letters:
        return "", False
    whole = _class(letters.replace("-", ""))
    if whole is not None and (letters.upper().startswith("KD") or "-" not in letters):
        return whole, True  # KD-GP, KD-D: one road class written with a hyphen
    mapped: list[str] = []
    known = True
    for piece in _SPLIT.split(letters):
        if not piece:
            continue
        subs = piece.split("-")
        classes = [_class(p) for p in subs if p]
        if len(subs) > 1 and all(classes):  # MW-U: two classes
            mapped += [c for c in classes if c]
            continue
        one = _class(piece.replace("-", ""))
        known &= one is not None
        mapped.append(one if one is not None else piece.replace("-", "").upper())
    return "/".join(dict.fromkeys(mapped)), known and bool(mapped)


# the designation column under the names municipal layers use (Warsaw's: fun_symb)
DESIGNATION_COLUMNS = ("SYMBOL", "FUN_SYMB", "OZNACZENIE", "PRZEZNACZENIE", "SYMB", "OZN")


def read_mpzp(
    path: str | Path,
    layer: str | None = None,
    crs: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> LayerResult:
    """Read a vector MPZP designation layer (GPKG/SHP/GML/GeoJSON) into ``zoning``.

    Needs a designation column (``SYMBOL``, ``fun_symb``, ``OZNACZENIE`` …, see
    :data:`DESIGNATION_COLUMNS`); unknown symbols
    are kept with their raw text and reported in the quarantine, never dropped.
    """
    from omw_sites.etl.validate import repair_geometries
    from omw_sites.etl.vector import read_vector_file

    path = Path(path)
    gdf, fmt, layer, crs_in = read_vector_file(path, layer, crs, limits=limits)
    col = next((c for c in DESIGNATION_COLUMNS if c in gdf), None)
    if col is None:
        msg = f"no designation column ({', '.join(DESIGNATION_COLUMNS)})"
        raise IngestError(path, msg, layer=layer, rule="required columns")
    n_read = len(gdf)
    gdf, q, repaired = repair_geometries(gdf, layer, str(path))
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
            **{k: v.to_numpy() for k, v in plan_parameters(gdf).items()},
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


# What a plan allows to build, under the names municipal MPZP layers and APP 2.0 exports
# give it (upper case). Percentages as plans write them (coverage 60 = 60 %); intensity is
# floor area over plot area. Text such as "12,5" (decimal comma) is read as a number.
PARAMETER_COLUMNS: dict[str, tuple[str, ...]] = {
    "max_height_m": ("MAKSWYSOKOSCZABUDOWY", "WYS_MAX", "MAX_WYS", "MAX_WYSOKOSC", "WYSOKOSC"),
    "max_coverage_pct": (
        "MAKSUDZIALPOWIERZCHNIZABUDOWY",
        "POW_ZAB_MAX",
        "MAX_POW_ZAB",
        "POW_ZABUD",
        "POW_ZAB",
    ),
    "intensity_min": ("MININTENSYWNOSCZABUDOWY", "INTENS_MIN", "MIN_INTENS", "INT_MIN"),
    "intensity_max": (
        "MAKSNADZIEMNAINTENSYWNOSCZABUDOWY",
        "MAKSINTENSYWNOSCZABUDOWY",
        "INTENS_MAX",
        "MAX_INTENS",
        "INT_MAX",
    ),
    "min_bio_active_pct": (
        "MINUDZIALPOWIERZCHNIBIOLOGICZNIECZYNNEJ",
        "PBC_MIN",
        "MIN_PBC",
        "PBC",
    ),
}


def plan_parameters(gdf: pd.DataFrame) -> dict[str, pd.Series]:
    """The plan parameters of each designation (:data:`PARAMETER_COLUMNS`), NaN where the
    layer has no such column or no value."""
    upper = {str(c).upper(): c for c in gdf.columns}
    out = {}
    for name, aliases in PARAMETER_COLUMNS.items():
        col = next((upper[a] for a in aliases if a in upper), None)
        values = gdf[col] if col is not None else pd.Series(np.nan, index=gdf.index)
        out[name] = to_number(values).astype(float)
    return out
