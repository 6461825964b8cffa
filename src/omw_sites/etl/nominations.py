"""Nominated sites: the parcels a gmina offers, by EGiB parcel ID, with the offer.

A nomination list is a CSV or XLSX table with a ``parcel_id`` column and, optionally,
``name``, ``contact``, ``price_pln_m2`` and ``notes``. ``omw-sites run --nominated FILE``
makes the listed parcels candidates whatever the zoning says. The list is checked whole
before anything is read from the raw folder: a defect stops the run with one line naming
the file, the record and the rule.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from omw_sites.etl.egib import parse_parcel_ids
from omw_sites.etl.errors import IngestError
from omw_sites.etl.numbers import to_number

NOMINATION_COLUMNS = ("parcel_id", "name", "contact", "price_pln_m2", "notes")
# header names accepted for each column (compared lower-case, spaces as underscores)
ALIASES = {
    "parcel_id": ("parcel_id", "id_dzialki", "identyfikator_dzialki", "identyfikator"),
    "name": ("name", "nazwa"),
    "contact": ("contact", "kontakt"),
    "price_pln_m2": ("price_pln_m2", "cena_pln_m2", "price", "cena"),
    "notes": ("notes", "uwagi"),
}
ID_RULE = "parcel ID WWPPGG_R.OOOO[.AR_n].NR[/sub]"
MAX_PRICE_PLN_M2 = 1_000_000.0  # what the inventory accepts as an asking price


@dataclass(frozen=True)
class Nominations:
    """A checked nomination list: one row per parcel (``NOMINATION_COLUMNS`` and
    ``row``, the record's row in the file, the header being row 1)."""

    path: Path
    frame: pd.DataFrame

    @property
    def ids(self) -> set[str]:
        return set(self.frame["parcel_id"])

    def __len__(self) -> int:
        return len(self.frame)


def read_nominations(path: str | Path) -> Nominations:
    """Read and check a nomination list (CSV in UTF-8 or Windows-1250, separated by
    commas, semicolons or tabs; or the first sheet of an XLSX workbook).

    Raises
    ------
    IngestError
        The file is missing or unreadable, has no ``parcel_id`` column or no rows, or a
        record has an empty or malformed parcel ID, lists a parcel twice, or has a price
        that is not a number from 0 to 1,000,000 PLN/m².
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "nomination list not found", rule="nomination list")
    table = _read_table(path)
    table.columns = [_norm(c) for c in table.columns]
    found: dict[str, str] = {}
    for canon, names in ALIASES.items():
        col = next((c for c in table.columns if c in names), None)
        if col is not None:
            found[canon] = col
    if "parcel_id" not in found:
        have = ", ".join(str(c) for c in table.columns) or "none"
        msg = f"no parcel_id column (the file has: {have})"
        raise IngestError(path, msg, rule="nomination list columns: parcel_id")
    rows = np.arange(len(table)) + 2  # the header is row 1
    blank = table.apply(lambda col: col.astype(str).str.strip() == "").all(axis=1).to_numpy()
    table, rows = table[~blank].reset_index(drop=True), rows[~blank]
    if not len(table):
        raise IngestError(path, "the list names no parcel", rule="non-empty nomination list")
    out = pd.DataFrame({"row": rows})
    for canon in NOMINATION_COLUMNS:
        col = found.get(canon)
        text = table[col].astype(str).str.strip() if col else pd.Series("", index=table.index)
        out[canon] = text.to_numpy()
    ids = out["parcel_id"]
    empty = (ids == "").to_numpy()
    if empty.any():
        _fail(path, rows[empty][0], "parcel_id is empty", "parcel_id present")
    parts = parse_parcel_ids(ids)
    bad = ~parts["valid"].to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        why = str(parts["reason"].iloc[i]) or "not an EGiB parcel ID"
        _fail(path, rows[i], f"{ids.iloc[i]!r}: {why}", ID_RULE)
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        first = ids[dup].iloc[0]
        where = rows[(ids == first).to_numpy()]
        msg = f"parcel {first} is listed {len(where)} times (rows {', '.join(map(str, where))})"
        raise IngestError(path, msg, record=f"row {where[1]}", rule="each parcel once")
    price_text = out["price_pln_m2"]
    given = (price_text != "").to_numpy()
    price = to_number(price_text.where(given)).to_numpy(dtype=float)
    wrong = given & ~((price >= 0) & (price <= MAX_PRICE_PLN_M2))
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        _fail(
            path,
            rows[i],
            f"price_pln_m2 {price_text.iloc[i]!r} is not a price",
            f"price_pln_m2 a number from 0 to {MAX_PRICE_PLN_M2:,.0f}",
        )
    out["price_pln_m2"] = price
    return Nominations(path, out[["row", *NOMINATION_COLUMNS]])


def _fail(path: Path, row: int, problem: str, rule: str) -> None:
    raise IngestError(path, problem, record=f"row {row}", rule=rule)


def _norm(name: object) -> str:
    return str(name).strip().lower().replace(" ", "_")


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            return pd.read_excel(path, sheet_name=0, dtype=str, engine="openpyxl").fillna("")
        except Exception as exc:
            raise IngestError(path, f"cannot read the workbook: {exc}") from exc
    if suffix == ".xls":
        msg = "an old Excel .xls workbook; save it as .xlsx or .csv"
        raise IngestError(path, msg, rule="nomination list format")
    if suffix not in (".csv", ".txt", ".tsv"):
        msg = f"not a CSV or XLSX file ({suffix or 'no suffix'})"
        raise IngestError(path, msg, rule="nomination list format")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # what Excel writes for a Polish Windows: its "CSV" is Windows-1250
        try:
            text = data.decode("cp1250")
        except UnicodeDecodeError as exc:
            msg = f"not UTF-8 or Windows-1250 text at byte {exc.start}; save it as UTF-8"
            raise IngestError(path, msg, rule="text encoding") from exc
    header = text.split("\n", 1)[0]
    sep = max((";", "\t", ","), key=header.count) if header.strip() else ","
    try:
        return pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=True
        )
    except Exception as exc:
        raise IngestError(path, f"cannot read the list: {exc}", rule="CSV table") from exc
