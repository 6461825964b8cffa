"""EGiB cadastral parcels: parcel-ID parsing and ownership classes."""

from __future__ import annotations

import numpy as np
import pandas as pd

# WWPPGG_R.OOOO[.AR_n].NR[/sub] — matched all 4,413 real Mokotów IDs (FORMATS.md)
PARCEL_ID_PATTERN = (
    r"^(?P<teryt6>\d{6})_(?P<kind>\d)\.(?P<obreb>\d{4})\."
    r"(?:AR_(?P<sheet>\d+)\.)?(?P<number>\d+(?:/\d+)?)$"
)

# registered ownership groups (grupy rejestrowe) → ownership class (FORMATS.md)
OWNERSHIP_BY_GROUP = {
    1: "state",
    2: "state",
    3: "state",
    6: "state",
    4: "municipal",
    5: "municipal",
    15: "municipal",
    7: "private",
    8: "private",
    9: "private",
    10: "private",
}
# textual classes as found in side tables (e.g. the Mokotów ownership.csv)
OWNERSHIP_BY_TEXT = {
    "miejska": "municipal",
    "gminna": "municipal",
    "skarbu_panstwa": "state",
    "skarb_panstwa": "state",
    "prywatna": "private",
}


def parse_parcel_ids(ids: pd.Series) -> pd.DataFrame:
    """Split EGiB parcel IDs into their parts (vectorised).

    Returns a frame with ``teryt`` (7 digits: WWPPGG + gmina type R), ``obreb``,
    ``sheet`` (map sheet, may be missing), ``number`` and ``valid`` (bool). Malformed IDs
    have ``valid == False`` and missing parts.
    """
    parts = ids.astype(str).str.strip().str.extract(PARCEL_ID_PATTERN)
    out = pd.DataFrame(
        {
            "teryt": parts["teryt6"] + parts["kind"],
            "obreb": parts["obreb"],
            "sheet": parts["sheet"],
            "number": parts["number"],
        },
        index=ids.index,
    )
    out["valid"] = parts["teryt6"].notna().to_numpy()
    return out


def ownership_class(groups: pd.Series) -> pd.Series:
    """Map registered ownership groups (int codes or text classes) to an ownership class.

    Returns ``municipal``, ``state``, ``private`` or ``other`` (unknown or missing).
    """
    numeric = pd.to_numeric(groups, errors="coerce")
    by_code = numeric.map(OWNERSHIP_BY_GROUP)
    by_text = groups.astype(str).str.strip().str.lower().map(OWNERSHIP_BY_TEXT)
    return by_code.fillna(by_text).fillna("other").astype(str)


def area_mismatch(
    polygon_ha: np.ndarray, registered_ha: np.ndarray, tolerance: float
) -> np.ndarray:
    """True where registered and polygon area differ by more than ``tolerance`` (share)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(polygon_ha - registered_ha) / np.where(
            registered_ha > 0, registered_ha, np.nan
        )
    return np.nan_to_num(rel, nan=0.0) > tolerance
