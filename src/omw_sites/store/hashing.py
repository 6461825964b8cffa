"""Content hashes: how the inventory tells a changed site (or reference layer) from an
unchanged one.

Every update compares the hashes it computes with those stored by earlier runs, so the
values must never change when this code does (tests/test_content_hash.py holds known
values).

A site's hash covers a list of columns and, optionally, its shape. Each column gives one
64-bit word per row — floats in whole millionths, integers and booleans by value, text
by its SipHash (pandas' ``hash_array``), NaN/NULL of any kind one fixed word — and the
words are absorbed in column order by xor, an odd multiply and an xor-shift: each step a
bijection, so a change in any one column always changes the hash. splitmix64's
finaliser mixes the result.
"""

from __future__ import annotations

import hashlib
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from omw_sites.store.base import kind_of

LAYER_DIGESTS = "layer_digests"  # run_info key: reference layer name → layer_digest

_SEED = np.uint64(0x2545F4914F6CDD1D)  # every row's state before the first column
_NULL = np.uint64(0x6A09E667F3BCC909)  # NaN / NULL of any kind
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
# a float whose millionths are outside int64: the word x86-64's cast gives (INT64_MIN)
_OUT_OF_RANGE = np.uint64(0x8000000000000000)


def content_hash(
    sites: pd.DataFrame, columns: list[str] | tuple[str, ...], geometry: bool = True
) -> np.ndarray:
    """A 64-bit hash (int64) per row of ``columns`` and, with ``geometry``, of the shape
    (see the module docstring)."""
    h = np.full(len(sites), _SEED, dtype=np.uint64)
    tmp = np.empty_like(h)
    for c in columns:
        _absorb(h, _words(sites[c]), tmp)
    if geometry:
        _absorb(h, geometry_hash(sites.geometry.to_numpy()), tmp)
    return _mix(h).view(np.int64)


def _absorb(h: np.ndarray, words: np.ndarray, tmp: np.ndarray) -> None:
    """h = (h ^ w) * M1; h ^= h >> 32 — in place (uint64 arithmetic wraps)."""
    np.bitwise_xor(h, words, out=h)
    np.multiply(h, _M1, out=h)
    np.right_shift(h, np.uint64(32), out=tmp)
    np.bitwise_xor(h, tmp, out=h)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic; ``h`` is reused)."""
    tmp = np.empty_like(h)
    for shift, mult in ((30, _M1), (27, _M2), (31, None)):
        np.right_shift(h, np.uint64(shift), out=tmp)
        np.bitwise_xor(h, tmp, out=h)
        if mult is not None:
            np.multiply(h, mult, out=h)
    return h


def _float_words(x: np.ndarray) -> np.ndarray:
    """Floats as their value in whole millionths (rounded half to even) as int64 bits;
    NaN and ±inf (also after scaling) the NULL word."""
    with np.errstate(over="ignore", invalid="ignore"):  # huge values become inf: NULL
        m = np.rint(x * 1e6)
    words = np.full(len(m), _OUT_OF_RANGE, dtype=np.uint64)
    fits = (m >= -(2.0**63)) & (m < 2.0**63)  # False for NaN
    words[fits] = m[fits].astype(np.int64).view(np.uint64)
    words[~np.isfinite(m)] = _NULL
    return words


def _words(s: pd.Series) -> np.ndarray:
    """One 64-bit word per value of a column (see the module docstring)."""
    if pd.api.types.is_float_dtype(s):
        return _float_words(s.to_numpy(dtype="float64", na_value=np.nan))
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_integer_dtype(s):
        na = s.isna().to_numpy()
        if not na.any():
            return s.to_numpy().astype(np.int64).view(np.uint64)
        words = s.to_numpy(dtype="float64", na_value=0).astype(np.int64).view(np.uint64)
        words[na] = _NULL
        return words
    if isinstance(s.dtype, pd.CategoricalDtype):
        # text given dictionary-encoded: the same words as for the plain text
        codes = s.cat.codes.to_numpy()
        if len(s.cat.categories) == 0:
            return np.full(len(s), _NULL, dtype=np.uint64)
        words = _text_hash(_arrow_text(pd.Series(s.cat.categories)))[np.maximum(codes, 0)]
        words[codes < 0] = _NULL
        return words
    return _text_hash(_arrow_text(s))


def _arrow_text(s: pd.Series) -> pa.Array:
    """A column as one Arrow large_string array (non-text values by their ``str``)."""
    if isinstance(s.dtype, pd.StringDtype) or str(s.dtype) in ("str", "string"):
        arr = pa.array(s.array, type=pa.large_string(), from_pandas=True)
    else:
        values = s.astype(object).where(s.notna(), None).to_numpy()
        arr = pa.array(
            [v if v is None or isinstance(v, str) else str(v) for v in values],
            type=pa.large_string(),
        )
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _siphash(words: pa.Array) -> np.ndarray:
    values = words.to_numpy(zero_copy_only=False)
    out = pd.util.hash_array(values, categorize=False)
    if words.null_count:
        out[np.asarray(words.is_null())] = _NULL
    return out


def _text_hash(arr: pa.Array) -> np.ndarray:
    """SipHash of each string (NULL apart). A column of few distinct values (judged on a
    sample) is hashed through its Arrow dictionary: each distinct value once."""
    sample = arr.slice(0, 2048)
    if len(arr) <= 4 * len(sample) or pc.count_distinct(sample).as_py() * 4 > len(sample):
        return _siphash(arr)
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    return _siphash(enc.dictionary)[np.asarray(enc.indices).astype(np.int64)]


def geometry_hash(geoms: np.ndarray) -> np.ndarray:
    """A 64-bit hash per geometry of its coordinates rounded to the millimetre, in order,
    and its structure (vertices and parts) — equal shapes hash equal, any moved vertex
    or reordered ring changes it."""
    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):  # an empty layer (real downloads have them)
        return np.zeros(0, dtype=np.uint64)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    coords *= 1000.0  # whole millimetres, as float bits (-0.0 made 0.0)
    np.rint(coords, out=coords)
    coords += 0.0
    bits = coords.view(np.uint64)
    h = _mix(bits[:, 0] * np.uint64(0x9E3779B97F4A7C15) ^ bits[:, 1])
    counts = np.bincount(owner, minlength=len(geoms))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(owner)) - np.repeat(starts, counts)
    h = h * (np.uint64(2) * position.astype(np.uint64) + np.uint64(1))  # order-sensitive
    out = np.zeros(len(geoms), dtype=np.uint64)
    if len(h):  # owner is sorted: one reduceat sums each geometry's run (wrapping mod 2**64)
        has = counts > 0
        out[has] = np.add.reduceat(h, starts[has])
    parts = shapely.get_num_geometries(geoms).astype(np.uint64)
    return out ^ _mix(counts.astype(np.uint64)) ^ (parts << np.uint64(32))


def layer_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a layer: its column names and kinds, and every row's
    :func:`content_hash` in row order (floats to 6 decimals, shapes to the millimetre,
    as for sites)."""
    geometry = isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name in frame
    geom_col = frame.geometry.name if geometry else None
    cols = [str(c) for c in frame.columns if c != geom_col]
    digest = hashlib.sha256(json.dumps([[c, kind_of(frame[c])] for c in cols]).encode())
    digest.update(f"geometry={geom_col}".encode())
    digest.update(content_hash(frame, cols, geometry=geometry).tobytes())
    return digest.hexdigest()


def stored_hashes(stored: pd.Series) -> np.ndarray:
    """Stored hashes as int64; anything else (NULL, an older text hash) never matches."""
    values = pd.to_numeric(stored, errors="coerce")
    out = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)
    ok = values.notna().to_numpy()
    if values.dtype.kind in "iu":
        out[ok] = values[ok].to_numpy(dtype=np.int64)
    # a float column (NULLs read through a lossy path) cannot hold 64-bit hashes exactly:
    # leave the sentinel, so those records are rewritten rather than wrongly kept
    return out
