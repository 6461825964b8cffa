"""Numbers as Polish files write them: a decimal comma (``2,5``), spaces between thousands."""

from __future__ import annotations

from typing import Any

import pandas as pd


def to_number(values: Any) -> pd.Series:
    """``values`` as floats (NaN where not a number); text may use a decimal comma and
    spaces or non-breaking spaces between thousands (``1 234,5``), as Polish registers
    and municipal layers often do. Numbers stay as they are."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return pd.to_numeric(s, errors="coerce")
    text = s.astype("string").str.strip()
    text = text.str.replace(r"[\s\u00a0\u202f]", "", regex=True).str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce")
