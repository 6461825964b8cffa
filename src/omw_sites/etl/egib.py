"""EGiB cadastral parcels: parcel IDs, ownership, GML 2015/2021 and vector exports."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from omw_sites.config import AREA_TOLERANCE, STREAM_BATCH_ROWS
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import (
    DEFAULT_LIMITS,
    GML_NAMESPACES,
    Limits,
    PolygonArrays,
    PolygonBatch,
    first,
    geometry,
    iter_features,
    named_values,
    require_namespace,
    to_work_crs,
)
from omw_sites.etl.numbers import to_number
from omw_sites.etl.result import LayerResult, concat_quarantine, quarantine_rows
from omw_sites.etl.vector import VectorRead, iter_vector_file, read_vector_file
from omw_sites.layers import WORK_CRS

# WWPPGG_R.OOOO[.AR_n].NR[/sub] — matched all 4,413 real Mokotów IDs (FORMATS.md)
PARCEL_ID_PATTERN = (
    r"^(?P<teryt6>\d{6})_(?P<kind>\d)\.(?P<obreb>\d{4})\."
    r"(?:AR_(?P<sheet>\d+)\.)?(?P<number>\d+(?:/\d+)?)$"
)

# the same with the number split into base and sub-number (one regex pass)
_PARCEL_ID_PARTS = (
    r"^(?P<teryt6>\d{6})_(?P<kind>\d)\.(?P<obreb>\d{4})\."
    r"(?:AR_(?P<sheet>\d+)\.)?(?P<number>(?P<base>\d+)(?:/(?P<sub>\d+))?)$"
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

    Returns a frame with ``teryt`` (7 digits: WWPPGG + gmina type R), ``unit`` (WWPPGG),
    ``gmina_type`` (R), ``obreb``, ``sheet`` (map sheet, may be missing), ``number``
    (with sub-number), ``base_number``, ``sub_number``, ``valid`` (bool) and ``reason``
    (why an ID is malformed; empty for valid IDs).
    """
    text = ids.astype(str).str.strip()
    # Arrow's RE2 extraction in C++, and the parts stay Arrow strings (pandas' ``str``
    # dtype wraps them without copying), instead of a Python regex per row
    arr = _arrow_strings(text)
    parts = pc.extract_regex(arr, _PARCEL_ID_PARTS)  # one pass: number split too
    valid = pc.is_valid(parts).to_numpy(zero_copy_only=False)
    everything = bool(valid.all())

    def col(values: pa.Array, always: bool = False) -> pa.Array:
        """Null for missing or empty (an unmatched optional group extracts as "").

        ``always`` groups are never empty in a match: with every ID valid, as they are.
        """
        if always and everything:
            return values
        return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)

    table = pa.table(
        {
            "teryt": pc.binary_join_element_wise(parts.field("teryt6"), parts.field("kind"), ""),
            "unit": col(parts.field("teryt6"), True),
            "gmina_type": col(parts.field("kind"), True),
            "obreb": col(parts.field("obreb"), True),
            "sheet": col(parts.field("sheet")),
            "number": col(parts.field("number"), True),
            "base_number": col(parts.field("base"), True),
            "sub_number": col(parts.field("sub")),
        }
    )
    out = table.to_pandas()
    out.index = ids.index
    out["valid"] = valid
    reason = np.full(len(text), "", dtype=object)
    bad = ~valid
    if bad.any():
        t = text[bad]
        conditions = [
            (t.isin(["", "nan", "None"]), "empty parcel ID"),
            (~t.str.match(r"^\d{6}_\d\."), "TERYT unit must be WWPPGG_R (6 digits, '_', 1 digit)"),
            (~t.str.match(r"^\d{6}_\d\.\d{4}\."), "obręb must be 4 digits after the TERYT unit"),
            (~t.str.match(r"^\d{6}_\d\.\d{4}\.(?:AR_\d+\.)?"), "map sheet must be AR_<n>"),
        ]
        why = np.full(len(t), "parcel number must be digits with an optional /sub-number", object)
        for cond, msg in reversed(conditions):
            why = np.where(cond.to_numpy(), msg, why)
        reason[bad] = why
    out["reason"] = reason
    return out


def _arrow_strings(text: pd.Series) -> pa.Array:
    """The Arrow string array behind ``text`` (no copy when it is pandas' ``str`` dtype)."""
    values = text.array
    if hasattr(values, "_pa_array"):
        return pc.cast(values._pa_array.combine_chunks(), pa.string())
    return pa.array(text.to_numpy(dtype=object), type=pa.string(), from_pandas=True)


def ownership_class(groups: pd.Series) -> pd.Series:
    """Map registered ownership groups (int codes or text classes) to an ownership class.

    Returns ``municipal``, ``state``, ``private`` or ``other`` (unknown or missing).
    """
    if not groups.notna().any():  # no group known (exports without the column)
        return _constant_text("other", groups)
    numeric = pd.to_numeric(groups, errors="coerce")
    out = numeric.map(OWNERSHIP_BY_GROUP).astype(object)
    text = out.isna().to_numpy() & groups.notna().to_numpy()
    if text.any():  # only the values that are not codes go through the string mapping
        words = groups[text].astype(str).str.strip().str.lower()
        out[text] = words.map(OWNERSHIP_BY_TEXT).to_numpy(dtype=object)
    return out.fillna("other").astype(str)


def _constant_text(value: str, like: pd.Series) -> pd.Series:
    """``value`` in every row of ``like`` as pandas ``str`` (what ``.astype(str)`` gives)."""
    arr = pa.repeat(pa.scalar(value, pa.large_string()), len(like))
    out = arr.to_pandas()
    out.index, out.name = like.index, like.name
    return out


def area_mismatch(
    polygon_ha: np.ndarray, registered_ha: np.ndarray, tolerance: float
) -> np.ndarray:
    """True where registered and polygon area differ by more than ``tolerance`` (share)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(polygon_ha - registered_ha) / np.where(
            registered_ha > 0, registered_ha, np.nan
        )
    return np.nan_to_num(rel, nan=0.0) > tolerance


# ----------------------------------------------------------------------------- canonical
ID_RULE = "parcel ID WWPPGG_R.OOOO[.AR_n].NR[/sub]"


def canonical_parcels(
    ids: pd.Series,
    geoms: np.ndarray,
    registered_ha: pd.Series,
    groups: pd.Series,
    kw: pd.Series,
    file: object,
    layer: str | None,
    tolerance: float = AREA_TOLERANCE,
    extra: dict[str, pd.Series] | None = None,
    attributes: pd.DataFrame | None = None,
    parsed: tuple[pd.DataFrame, bool] | None = None,
    earlier: np.ndarray | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Canonical ``parcels`` layer (EPSG:2180 geometries) and its quarantine.

    Malformed and duplicate IDs are quarantined with the reason; the first of duplicate
    IDs is kept. Registered area (ha) is kept beside the polygon's area and
    ``area_mismatch`` flags a relative difference above ``tolerance``. ``parsed`` is
    :func:`parse_parcel_ids` of ``ids`` (in their order) and whether they are known
    to be unique, when the caller worked them out already (see :class:`_IdFacts`).
    ``earlier`` marks rows whose ID was kept already from an earlier batch of the same
    file (see :func:`iter_egib_vector`): duplicates too.
    """
    ids = ids.astype(str).str.strip().reset_index(drop=True)
    registered_ha = to_number(registered_ha).reset_index(drop=True)
    groups = groups.reset_index(drop=True)
    kw = kw.reset_index(drop=True)
    attributes = attributes.reset_index(drop=True) if attributes is not None else None
    extra = {k: v.reset_index(drop=True) for k, v in (extra or {}).items()}
    if parsed is None:
        parts, unique = parse_parcel_ids(ids), False
    else:
        parts, unique = parsed[0].reset_index(drop=True), parsed[1]
    bad_id = ~parts["valid"].to_numpy()
    if unique:
        dup = np.zeros(len(ids), dtype=bool)
    else:
        dup = ids.duplicated(keep="first").to_numpy() & ~bad_id
    if earlier is not None:
        dup = dup | (np.asarray(earlier, dtype=bool) & ~bad_id)
    q = [
        quarantine_rows(
            file,
            layer,
            ids[bad_id],
            ID_RULE,
            "malformed parcel ID: " + parts["reason"][bad_id],
            attributes[bad_id] if attributes is not None else None,
        ),
        quarantine_rows(
            file,
            layer,
            ids[dup],
            "unique parcel ID",
            "duplicate parcel ID; the first is kept",
            attributes[dup] if attributes is not None else None,
        ),
    ]
    keep = ~(bad_id | dup)
    everything = bool(keep.all())

    def kept(values: pd.Series) -> pd.api.extensions.ExtensionArray | np.ndarray:
        """Values of the kept rows, positionally (Arrow strings stay Arrow strings)."""
        return (values if everything else values[keep]).array

    geoms = np.asarray(geoms) if everything else np.asarray(geoms)[keep]
    area_ha = shapely.area(geoms) / 1e4
    reg = registered_ha.to_numpy(dtype=float)[keep]
    ownership = ownership_class(groups if everything else groups[keep])
    kw = kw if everything else kw[keep]
    cols = {
        "parcel_id": kept(ids),
        "teryt": kept(parts["teryt"]),
        "obreb": kept(parts["obreb"]),
        "number": kept(parts["number"]),
        "area_ha": area_ha,
        "registered_area_ha": np.where(np.isnan(reg), area_ha, reg),
        "area_mismatch": area_mismatch(area_ha, reg, tolerance),
        "ownership": ownership.array,
        "kw": (
            _constant_text("", kw)
            if kw.dtype == object and not kw.notna().any()
            else kw.fillna("").astype(str)
        ).array,
        "sheet": kept(parts["sheet"].fillna("")),
        "gmina_type": kept(parts["gmina_type"]),
        "base_number": kept(parts["base_number"]),
        "sub_number": kept(parts["sub_number"].fillna("")),
        "registered_area_missing": np.isnan(reg),
    }
    cols |= {k: kept(v) for k, v in extra.items()}
    out = gpd.GeoDataFrame(cols, geometry=geoms, crs=WORK_CRS)
    return out, concat_quarantine(q)


class _IdFacts:
    """Parcel-ID parsing and a uniqueness test run in a thread beside geometry validation.

    Arrow's regex and hashing and GEOS's ``is_valid`` release the GIL, so on a free
    core they overlap. Both are row-wise facts of the IDs before validation:
    :meth:`of` takes the parts of the rows validation kept (uniqueness of all rows
    implies uniqueness of any subset; otherwise duplicates are looked for again).
    """

    def __init__(self, ids: pd.Series) -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        if len(ids) < _THREADS_FROM:  # small: a thread hand-off costs more than it saves
            self._future: Future = Future()
            self._future.set_result(self._work(ids))
            return
        pool = ThreadPoolExecutor(1, thread_name_prefix="parcel-ids")
        self._future = pool.submit(self._work, ids)
        pool.shutdown(wait=False)

    @staticmethod
    def _work(ids: pd.Series) -> tuple[pd.DataFrame, bool]:
        text = ids.astype(str).str.strip()
        return parse_parcel_ids(text), not text.duplicated(keep="first").any()

    def of(self, index: pd.Index) -> tuple[pd.DataFrame, bool]:
        """Parts of the rows labelled ``index`` (validation keeps the labels), uniqueness."""
        parts, unique = self._future.result()
        if not parts.index.equals(index):
            parts = parts.loc[index]
        return parts, unique


_THREADS_FROM = 50_000  # rows; below, one thread does it all (measured on a free 2-core box)


def _repair(
    gdf: gpd.GeoDataFrame, layer: str, file: str
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, int]:
    """:func:`~omw_sites.etl.validate.repair_geometries` of ``gdf``, in two threads.

    Validation is row by row and GEOS releases the GIL, so the two halves' results,
    put together in order, are the whole frame's result, in about half the time on
    two free cores.
    """
    from concurrent.futures import ThreadPoolExecutor

    from omw_sites.etl.validate import repair_geometries

    if len(gdf) < _THREADS_FROM:
        return repair_geometries(gdf, layer, file, "ID_DZIALKI")
    h = len(gdf) // 2
    with ThreadPoolExecutor(2, thread_name_prefix="parcel-geoms") as pool:
        halves = list(
            pool.map(
                lambda part: repair_geometries(part, layer, file, "ID_DZIALKI"),
                (gdf.iloc[:h], gdf.iloc[h:]),
            )
        )
    ok = pd.concat([halves[0][0], halves[1][0]])
    qs = [q for _, q, _ in halves if len(q)]
    q = pd.concat(qs, ignore_index=True) if len(qs) > 1 else (qs or [halves[0][1]])[0]
    return ok, q, halves[0][2] + halves[1][2]


def read_ownership_table(path: str | Path, ids: pd.Series) -> pd.Series:
    """Ownership value per parcel ID from a side table (``ID_DZIALKI`` + ``ownership``).

    The value column may be ``ownership`` (text classes) or ``GRUPA_REJESTROWA`` (codes).
    IDs absent from the table map to missing.
    """
    return ids.astype(str).str.strip().map(load_ownership_table(path))


def load_ownership_table(path: str | Path) -> pd.Series:
    """The side table as a lookup: ownership value indexed by parcel ID (the first row
    of an ID counts)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = f"not UTF-8 text at byte {exc.start}; re-save the table as UTF-8"
        raise IngestError(path, msg, rule="text in UTF-8") from exc
    except OSError as exc:
        raise IngestError(path, f"cannot read the ownership table: {exc}") from exc
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str)
    except Exception as exc:
        raise IngestError(path, f"cannot read the ownership table: {exc}") from exc
    table.columns = [c.strip().upper() for c in table.columns]
    value = next((c for c in ("GRUPA_REJESTROWA", "OWNERSHIP") if c in table), None)
    if "ID_DZIALKI" not in table or value is None:
        raise IngestError(
            path,
            "ownership table needs columns ID_DZIALKI and ownership (or GRUPA_REJESTROWA)",
            rule="required columns",
        )
    return table.drop_duplicates("ID_DZIALKI").set_index("ID_DZIALKI")[value]


# ----------------------------------------------------------------------------- GML
EGIB_2015 = "urn:gugik:specyfikacje:gmlas:ewidencjaGruntowBudynkow:1.0"
EGIB_2021 = "ewidencjaGruntowIBudynkow:1.0"
PARCEL = "EGB_DzialkaEwidencyjna"
JRG = "EGB_JednostkaRejestrowaGruntow"


def egib_schema(namespace: str) -> str | None:
    """``2015`` or ``2021`` for an EGiB namespace, None for anything else."""
    if "ewidencjaGruntowIBudynkow" in namespace:
        return "2021"
    if "ewidencjaGruntowBudynkow" in namespace:
        return "2015"
    return None


def read_egib_gml(
    path: str | Path,
    crs: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    tolerance: float = AREA_TOLERANCE,
) -> LayerResult:
    """Read the parcels of an EGiB GML file (2015 or 2021 schema) into ``parcels``.

    Streams the file; keeps the current version of each parcel (the one without
    ``koniecWersjaObiekt``; the latest ``startWersjaObiekt`` if several), drops parcels
    that ended (``koniecObiekt``), resolves ownership groups through the registration
    unit (``JRG``/``JRG2`` → ``grupaRejestrowa``) where the file holds them, and
    reprojects from the ``srsName`` (EPSG:2176–2180 in northing-easting order).

    Raises
    ------
    IngestError
        Empty, truncated or malformed XML, not EGiB, no parcels, no CRS, limits exceeded.
    """
    path = Path(path)
    expected = (
        "an EGiB GML file: no ewidencjaGruntowBudynkow (2015) or ewidencjaGruntowIBudynkow (2021)"
    )
    ns = require_namespace(path, egib_schema, expected, limits)
    schema = egib_schema(ns)
    assert schema is not None  # require_namespace took ns because it has one
    chunks = _read_parcel_chunks(path, ns, schema, limits)
    if chunks is None:  # serial: one pass of the streaming parser over the whole file
        features = iter_features(path, ns, (PARCEL, JRG), limits)
        chunks = [_read_parcels(features, ns, schema, path)]
    if not sum(c.parcels for c in chunks):
        raise IngestError(path, f"no {PARCEL} features", layer=PARCEL, rule="parcels present")
    df, arr, done, srs, groups = _assemble(chunks)
    arr, crs_in = to_work_crs(path, PARCEL, arr, srs, crs, done)
    n_read = len(df)
    current = _current_versions(df)
    df, arr = df[current].reset_index(drop=True), arr[current]
    if groups:
        df["GRUPA_REJESTROWA"] = df["GRUPA_REJESTROWA"].fillna(df["JRG"].map(groups))
    ids = _IdFacts(df["ID_DZIALKI"])
    frame, q, repaired = _valid_geoms(df, arr, path)
    frame_out, q2 = canonical_parcels(
        frame["ID_DZIALKI"],
        frame.geometry.to_numpy(),
        frame["POLE_EWIDENCYJNE"],
        frame["GRUPA_REJESTROWA"],
        frame["KW"],
        path,
        PARCEL,
        tolerance,
        extra={
            "local_id": frame["LOKALNY_ID"],
            "version_start": frame["START_WERSJA"],
            "land_use": frame["OFU"],
        },
        attributes=frame.drop(columns="geometry"),
        parsed=ids.of(frame.index),
    )
    return LayerResult(
        "parcels",
        frame_out,
        concat_quarantine([q, q2]),
        f"egib-gml-{schema}",
        PARCEL,
        crs_in,
        n_read,
        repaired,
        extra={"versions": n_read, "current": int(current.sum())},
    )


_GML_COLUMNS = [
    "ID_DZIALKI", "LOKALNY_ID", "START_WERSJA", "KONIEC_WERSJA", "KONIEC_OBIEKT",
    "POLE_EWIDENCYJNE", "KW", "GRUPA_REJESTROWA", "JRG", "OFU",
]  # fmt: skip


@dataclass
class _ParcelChunk:
    """Parcels of a run of GML features as plain arrays (cheap to send between processes).

    ``columns`` follow ``_GML_COLUMNS``; ``other`` holds the geometries that are not
    plain polygons (by parcel index in the chunk); ``srs_codes`` index ``srs_names``
    per parcel; ``groups`` map a registration unit's gml:id / local ID to its group.
    """

    features: int
    parcels: int
    columns: list[pa.Array]
    polygons: PolygonArrays | None
    other: dict[int, object]
    srs_codes: np.ndarray
    srs_names: list[str]
    groups: dict[str, str]
    geoms: np.ndarray | None = None
    done: np.ndarray | None = None

    def build(self) -> _ParcelChunk:
        """Make the chunk's geometries (EPSG:2180 where the ``srsName`` says which CRS)."""
        if self.geoms is None:
            geoms = np.empty(self.parcels, dtype=object)
            for i, g in self.other.items():
                geoms[i] = g
            done = np.zeros(self.parcels, dtype=bool)
            polygons = self.polygons
            assert polygons is not None  # dropped only below, once geoms are made
            polygons.to_work_crs()
            polygons.build(geoms, done)
            self.geoms, self.done, self.polygons, self.other = geoms, done, None, {}
        return self


def _read_parcels(features, ns: str, schema: str, path: Path) -> _ParcelChunk:
    """Parcels (and registration units' ownership groups) of GML feature elements.

    Raises
    ------
    IngestError
        A geometry that cannot be read (names the parcel's number in ``features``).
    """
    area_tag = "powierzchniaEwidencyjna" if schema == "2015" else "poleEwidencyjne"
    rows: list[tuple] = []
    other: dict[int, object] = {}
    srs: list = []
    groups: dict[str, str] = {}
    batch = PolygonBatch()  # plain polygons: coordinates parsed at once
    geometria = f"{{{ns}}}geometria"
    jrg_tag = f"{{{ns}}}{JRG}"
    gml_id = f"{{{GML_NAMESPACES[0]}}}id"
    names = (
        ("idDzialki", "lokalnyId", "startWersjaObiekt", "koniecWersjaObiekt", "koniecObiekt",
         area_tag, "numerKW", "grupaRejestrowa", "OFU")
    )  # fmt: skip
    links = ("JRG", "JRG2")
    n_features = 0
    try:
        for el in features:
            n_features += 1
            props = named_values(el, names, links)
            if el.tag == jrg_tag:
                g = first(props, "grupaRejestrowa")
                if g:
                    for key in (el.get(gml_id), first(props, "lokalnyId")):
                        if key:
                            groups[key] = g
                continue
            geom_el = el.find(geometria)
            shape = geom_el[0] if geom_el is not None and len(geom_el) else None
            if batch.add(len(rows), shape):
                srs.append(batch.srs[-1])
            else:
                g, s = geometry(geom_el)
                if g is not None:
                    other[len(rows)] = g
                srs.append(s)
            get = props.get
            jrg = (get("JRG2@href") or get("JRG@href") or ("",))[0]
            rows.append(
                (
                    (get("idDzialki") or ("",))[0],
                    (get("lokalnyId") or ("",))[0],
                    (get("startWersjaObiekt") or ("",))[0],
                    (get("koniecWersjaObiekt") or ("",))[0],
                    (get("koniecObiekt") or ("",))[0],
                    (get(area_tag) or (None,))[0],
                    (get("numerKW") or ("",))[0],
                    (get("grupaRejestrowa") or (None,))[0],
                    jrg.rsplit(":", 1)[-1].lstrip("#") if jrg else "",
                    ",".join(dict.fromkeys(get("OFU", ()))),
                )
            )
    except IngestError:
        raise
    except ValueError as exc:  # a coordinate that is not a number, an odd posList …
        msg = f"bad geometry in feature {len(rows) + 1}: {exc}"
        raise IngestError(path, msg, layer=PARCEL, rule="GML coordinates") from exc
    try:
        polygons = batch.arrays()
    except ValueError as exc:
        msg = f"bad coordinates: {exc}"
        raise IngestError(path, msg, layer=PARCEL, rule="GML coordinates") from exc
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in _GML_COLUMNS]
    srs_names: dict[str, int] = {}
    srs_codes = np.array([srs_names.setdefault(s or "", len(srs_names)) for s in srs], np.int32)
    return _ParcelChunk(
        n_features,
        len(rows),
        [pa.array(c, type=pa.large_string()) for c in columns],
        polygons,
        other,
        srs_codes,
        list(srs_names),
        groups,
    )


_CHUNK_PARSER: dict[str, object] = {}


def _parcel_chunk(
    path: str, head: bytes, tail: bytes, start: int, end: int, ns: str, schema: str, most: int
) -> _ParcelChunk:
    """Worker: the parcels of one byte range of an EGiB GML file (see ``gml_chunks``).

    Raises on anything unusual (bad XML, a feature not directly under a member, more
    than ``most`` features); the caller then reads the file serially.
    """
    from lxml import etree

    from omw_sites.etl.gml_chunks import chunk_document

    parser = _CHUNK_PARSER.get("xml")
    if parser is None:
        parser = _CHUNK_PARSER["xml"] = etree.XMLParser(huge_tree=True, remove_comments=True)
    root = etree.fromstring(chunk_document(path, head, tail, start, end), parser)
    tags = (f"{{{ns}}}{PARCEL}", f"{{{ns}}}{JRG}")

    def features():
        n = 0
        for el in root.iter(tags):
            member = el.getparent()
            # the serial reader clears each feature after use: same result only when
            # features do not nest (each sits in a member of the root)
            if member is None or member.getparent() is not root:
                raise ValueError("a feature that is not a member of the collection")
            n += 1
            if n > most:
                raise ValueError("feature limit")
            yield el

    return _read_parcels(features(), ns, schema, Path(path))


def _read_parcel_chunks(
    path: Path, ns: str, schema: str, limits: Limits
) -> list[_ParcelChunk] | None:
    """Parcels read in several processes, one byte range each; None = read serially.

    Serial for one worker (``OMW_INGEST_WORKERS=1``), small files and files that
    cannot be cut at members; also whenever a range fails, so that every error is the
    serial reader's own (file, record, rule).
    """
    from omw_sites.etl import gml_chunks as gc

    workers = gc.ingest_workers()
    if workers < 2 or path.stat().st_size < gc.MIN_PARALLEL_BYTES:
        return None
    split = gc.split_members(path, gc.CHUNK_BYTES)
    if split is None:
        return None
    workers = min(workers, len(split.ranges))
    most = limits.max_features
    try:  # geometries are built here while the workers parse the next ranges
        chunks = [
            c.build() for c in gc.map_chunks(_parcel_chunk, path, split, workers, ns, schema, most)
        ]
    except gc.ChunksFailed:
        return None
    if sum(c.features for c in chunks) > limits.max_features:
        return None  # the serial reader names the feature beyond the limit
    return chunks


def _assemble(
    chunks: list[_ParcelChunk],
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list, dict[str, str]]:
    """Attributes, geometries, their "already in EPSG:2180" mask, ``srsName``s, groups."""
    n = sum(c.parcels for c in chunks)
    data = {}
    for i, name in enumerate(_GML_COLUMNS):
        col = pa.chunked_array([c.columns[i] for c in chunks], type=pa.large_string())
        if col.null_count == n:  # as pandas infers a column of only None
            data[name] = pd.Series([None] * n, dtype=object)
        else:
            data[name] = col.to_pandas()
    df = pd.DataFrame(data)
    groups: dict[str, str] = {}
    srs_parts = []
    for c in chunks:
        c.build()
        groups.update(c.groups)  # in file order: a later unit wins, as when streaming
        names = np.array(c.srs_names or [""], dtype=object)
        srs_parts.append(names[c.srs_codes])
    geoms = np.concatenate([c.geoms for c in chunks])
    done = np.concatenate([c.done for c in chunks])
    srs = np.concatenate(srs_parts).tolist()
    return df, geoms, done, srs, groups


def _current_versions(df: pd.DataFrame) -> np.ndarray:
    """Mask of the current version of each parcel (by local ID, else parcel ID)."""
    live = (df["KONIEC_WERSJA"] == "") & (df["KONIEC_OBIEKT"] == "")
    key = df["LOKALNY_ID"].where(df["LOKALNY_ID"] != "", df["ID_DZIALKI"])
    if key.is_unique:  # one version per parcel: the current ones are the live ones
        return live.to_numpy(dtype=bool, copy=True)
    order = df.assign(_key=key, _live=live).sort_values(
        ["_key", "_live", "START_WERSJA"], kind="stable"
    )
    last = ~order["_key"].duplicated(keep="last")
    chosen = order.index[last & order["_live"]]
    mask = np.zeros(len(df), dtype=bool)
    mask[chosen] = True
    return mask


def _valid_geoms(
    df: pd.DataFrame, geoms: np.ndarray, path: Path
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, int]:
    gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, crs=WORK_CRS), crs=WORK_CRS)
    return _repair(gdf, PARCEL, str(path))


# ----------------------------------------------------------------------------- vector
# parcel-ID column names seen in exports (EGiB WMS/WFS, ULDK, KIEG; GeoJSON ``fid``)
ID_COLUMNS = ("ID_DZIALKI", "IDDZIALKI", "IDENTYFIKATOR", "ID_PARCEL", "FID")
# attribute columns of the exports longer than a DBF field name (10 characters)
EXPORT_COLUMNS = ("POLE_EWIDENCYJNE", "GRUPA_REJESTROWA", "NAZWA_OBREBU", "IDENTYFIKATOR")


def _export_names(columns: Iterable[object]) -> dict[str, str]:
    """Each column's name in the export schema: upper case, and names that shapefiles cut
    to 10 characters made whole again (POLE_EWIDE → POLE_EWIDENCYJNE …) unless the file
    has the whole name too."""
    upper = {str(c): str(c).upper() for c in columns}
    present = set(upper.values())
    return {
        c: next((f for f in EXPORT_COLUMNS if u == f[:10] != f and f not in present), u)
        for c, u in upper.items()
    }


def _id_column(names: dict[str, str]) -> str | None:
    """The column (a key of ``names``) whose export name comes first in ``ID_COLUMNS``."""
    return next((c for want in ID_COLUMNS for c, n in names.items() if n == want), None)


def read_egib_vector(
    path: str | Path,
    layer: str | None = None,
    crs: str | int | None = None,
    ownership_table: str | Path | None = None,
    tolerance: float = AREA_TOLERANCE,
    limits: Limits = DEFAULT_LIMITS,
) -> LayerResult:
    """Read EGiB parcels from a GPKG / SHP / GeoJSON export (WFS-style columns).

    Needs ``ID_DZIALKI``; uses ``POLE_EWIDENCYJNE`` (ha) and ``GRUPA_REJESTROWA`` / ``KW``
    where present; ``ownership_table`` (e.g. ``ownership.csv``) overrides the group.
    """
    path = Path(path)
    read = read_vector_file(path, layer, crs, limits=limits)
    lookup = load_ownership_table(ownership_table) if ownership_table is not None else None
    return _vector_parcels(read, path, lookup, tolerance)


def iter_egib_vector(
    path: str | Path,
    layer: str | None = None,
    crs: str | int | None = None,
    ownership_table: str | Path | None = None,
    tolerance: float = AREA_TOLERANCE,
    limits: Limits = DEFAULT_LIMITS,
    batch_rows: int = STREAM_BATCH_ROWS,
) -> Iterator[LayerResult]:
    """:func:`read_egib_vector` one batch of ``batch_rows`` features at a time, so that
    memory holds one batch (and the IDs kept so far) whatever the file's size.

    The batches' frames, one after another, are ``read_egib_vector``'s frame and their
    quarantines its quarantine: an ID already kept in an earlier batch is a duplicate
    (the first is kept), as within one batch.
    """
    path = Path(path)
    lookup = load_ownership_table(ownership_table) if ownership_table is not None else None
    seen: set[str] = set()
    for read in iter_vector_file(path, layer, crs, limits=limits, batch_rows=batch_rows):
        result = _vector_parcels(read, path, lookup, tolerance, seen=seen)
        seen.update(result.frame["parcel_id"].tolist())
        yield result


def _vector_parcels(
    read: VectorRead,
    path: Path,
    ownership: pd.Series | None,
    tolerance: float,
    seen: set[str] | None = None,
) -> LayerResult:
    """The ``parcels`` layer of one vector read: export columns named, geometry repaired,
    IDs parsed, ownership joined from the side table's lookup; IDs in ``seen`` are
    duplicates."""
    gdf, fmt, layer, crs_in = read
    gdf = gdf.rename(columns=_export_names(c for c in gdf.columns if c != gdf.geometry.name))
    id_col = _id_column({c: c for c in gdf.columns})
    if id_col is None:
        msg = f"no parcel ID column (one of {', '.join(ID_COLUMNS)})"
        raise IngestError(path, msg, layer=layer, rule="required columns")
    gdf = gdf.rename(columns={id_col: "ID_DZIALKI"})
    n_read = len(gdf)
    ids = _IdFacts(gdf["ID_DZIALKI"]) if gdf.index.is_unique else None
    gdf, q, repaired = _repair(gdf, layer, str(path))
    groups = (
        gdf["GRUPA_REJESTROWA"]
        if "GRUPA_REJESTROWA" in gdf
        else pd.Series(None, index=gdf.index, dtype=object)
    )
    if ownership is not None:
        side = gdf["ID_DZIALKI"].astype(str).str.strip().map(ownership)
        groups = side.astype(object).fillna(groups)  # text classes or group codes
    earlier = None
    if seen:
        text = gdf["ID_DZIALKI"].astype(str).str.strip()
        earlier = np.fromiter((v in seen for v in text), dtype=bool, count=len(text))
    empty = pd.Series(None, index=gdf.index, dtype=object)
    frame, q2 = canonical_parcels(
        gdf["ID_DZIALKI"],
        gdf.geometry.to_numpy(),
        gdf["POLE_EWIDENCYJNE"] if "POLE_EWIDENCYJNE" in gdf else empty,
        groups,
        gdf["KW"] if "KW" in gdf else empty,
        path,
        layer,
        tolerance,
        # the kept rows are the first of their ID, so "known" is the row's own group
        extra={
            **({"obreb_name": gdf["NAZWA_OBREBU"]} if "NAZWA_OBREBU" in gdf else {}),
            "ownership_known": groups.notna(),
        },
        attributes=pd.DataFrame(gdf.drop(columns=gdf.geometry.name)),
        parsed=ids.of(gdf.index) if ids is not None else None,
        earlier=earlier,
    )
    return LayerResult(
        "parcels", frame, concat_quarantine([q, q2]), fmt, layer, crs_in, n_read, repaired
    )
