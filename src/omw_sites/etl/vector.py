"""Reading GPKG / SHP / GeoJSON / GML layers with GDAL: CRS recognition, encoding, columns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio

from omw_sites.config import STREAM_BATCH_ROWS
from omw_sites.etl import window
from omw_sites.etl.crs import check_extent, resolve_epsg
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import DEFAULT_LIMITS, Limits, check_size

_FORMATS = {".gpkg": "gpkg", ".shp": "shp", ".geojson": "geojson", ".json": "geojson"}


def vector_format(path: Path) -> str:
    """Short format name from the suffix (``gpkg``, ``shp``, ``geojson``, else ``gdal``)."""
    return _FORMATS.get(path.suffix.lower(), "gdal")


class VectorRead(NamedTuple):
    """One layer read by :func:`read_vector_file`."""

    frame: gpd.GeoDataFrame  # EPSG:2180, upper-case attribute columns
    format: str  # gpkg, shp, geojson or gdal
    layer: str
    crs_in: str  # the layer's own CRS, EPSG:n (OGC:CRS84 for GeoJSON)


def read_vector_file(
    path: str | Path,
    layer: str | None = None,
    crs: str | int | None = None,
    required: tuple[str, ...] = (),
    limits: Limits = DEFAULT_LIMITS,
    encoding: str | None = None,
) -> VectorRead:
    """Read one layer with GDAL (``pyogrio.read_dataframe``) into EPSG:2180 with
    upper-case column names.

    The CRS comes from the layer (GPKG SRS, ``.prj`` incl. ESRI ``ETRS_1989_UWPP_*``,
    GeoJSON = CRS84); a layer without one needs ``crs``. Text that is not valid in
    the file's encoding is an error, never silently replaced.
    """
    src = _open_layer(Path(path), layer, limits, encoding)
    bbox = window.layer_bbox(src.path, src.layer)
    with _gdal_errors(src):
        gdf = pyogrio.read_dataframe(
            src.path, layer=src.layer, encoding=src.read_encoding, use_arrow=True,
            bbox=bbox, fid_as_index=bbox is not None,
        )  # fmt: skip
        if bbox is not None:  # records keep the numbers and order a whole read gives
            gdf.index = gdf.index.to_numpy() - (1 if src.format == "gpkg" else 0)
            gdf = gdf.sort_index()  # (a spatial index returns them in its own order)
        if src.undeclared:
            _recode_utf8(gdf, src.path, src.layer)
    return _finish(src, gdf, crs, required)


def iter_vector_file(
    path: str | Path,
    layer: str | None = None,
    crs: str | int | None = None,
    required: tuple[str, ...] = (),
    limits: Limits = DEFAULT_LIMITS,
    encoding: str | None = None,
    batch_rows: int = STREAM_BATCH_ROWS,
) -> Iterator[VectorRead]:
    """:func:`read_vector_file` one batch of ``batch_rows`` features at a time (GDAL's
    Arrow stream, ``pyogrio.open_arrow``), so that memory holds one batch whatever the
    file's size. Each batch's frame is indexed by the features' positions in the layer
    (0-based), so errors name the same record as a whole read would."""
    src = _open_layer(Path(path), layer, limits, encoding)
    offset = 0
    with _gdal_errors(src), pyogrio.open_arrow(
        src.path, layer=src.layer, encoding=src.read_encoding, batch_size=batch_rows,
        use_pyarrow=True,
    ) as (meta, reader):  # fmt: skip
        geom_col = meta["geometry_name"] or "wkb_geometry"
        for batch in reader:
            table = pa.Table.from_batches([batch])
            gdf = gpd.GeoDataFrame.from_arrow(table, geometry=geom_col)
            gdf = gdf.rename_geometry("geometry")
            if gdf.crs is None and meta["crs"]:
                gdf = gdf.set_crs(meta["crs"])
            gdf.index = pd.RangeIndex(offset, offset + len(gdf))
            if src.undeclared:
                _recode_utf8(gdf, src.path, src.layer, offset)
            yield _finish(src, gdf, crs, required)
            offset += len(gdf)


class _Source(NamedTuple):
    """A layer opened and checked by :func:`_open_layer`, before any feature is read."""

    path: Path
    format: str
    layer: str
    encoding: str | None  # what the caller declared
    undeclared: bool  # shapefile with no code page anywhere: read as bytes, test as UTF-8

    @property
    def read_encoding(self) -> str | None:
        return "ISO-8859-1" if self.undeclared else self.encoding


def _open_layer(path: Path, layer: str | None, limits: Limits, encoding: str | None) -> _Source:
    """Size and feature limits, the layer (the first unless named), its geometry column."""
    check_size(path, limits)
    fmt = vector_format(path)
    try:
        names = [str(n) for n, _ in pyogrio.list_layers(path)]
    except Exception as exc:
        raise IngestError(path, f"cannot read the file: {exc}") from exc
    if layer is None:
        layer = names[0] if names else None
    elif layer not in names:
        msg = f"layer {layer!r} not found (the file has: {', '.join(names) or 'none'})"
        raise IngestError(path, msg, layer=layer, rule="required layers")
    if layer is None:
        raise IngestError(path, "the file holds no layer", rule="non-empty file")
    src = _Source(path, fmt, layer, encoding, False)
    with _gdal_errors(src):
        info = pyogrio.read_info(path, layer=layer)
    if info["features"] > limits.max_features:
        msg = f"{info['features']:,} features, beyond the limit of {limits.max_features:,}"
        raise IngestError(path, msg, layer=layer, rule="feature limit")
    if info["geometry_type"] is None:
        msg = "the layer has no geometry column"
        raise IngestError(path, msg, layer=layer, rule="layer has geometry")
    # a shapefile with no .cpg and no DBF code page: GDAL would assume ISO-8859-1,
    # which has no Polish letters; read the bytes as they are and test them as UTF-8
    undeclared = encoding is None and _undeclared_dbf_encoding(path)
    return src._replace(undeclared=undeclared)


@contextmanager
def _gdal_errors(src: _Source) -> Iterator[None]:
    """GDAL's own errors (unreadable, truncated, wrong format, bad text) as IngestErrors."""
    try:
        yield
    except IngestError:
        raise
    except Exception as exc:
        text = str(exc).lower()
        if isinstance(exc, UnicodeError) or any(
            w in text for w in ("utf", "decode", "invalid", "wrapping")
        ):
            _raise_bad_text(src.path, src.layer, src.encoding, exc)
        raise IngestError(src.path, f"cannot read the file: {exc}", layer=src.layer) from exc


def _finish(
    src: _Source,
    gdf: gpd.GeoDataFrame,
    crs: str | int | None,
    required: tuple[str, ...],
) -> VectorRead:
    """Text checked, CRS recognised, upper-case columns, required ones present, EPSG:2180."""
    path, layer = src.path, src.layer
    _check_text(gdf, path, layer, src.encoding)
    if gdf.crs is None:
        if crs is None:
            raise IngestError(
                path,
                "layer has no coordinate reference system; add a .prj / srsName / GPKG SRS "
                "or give --crs EPSG:n",
                layer=layer,
                rule="layer has a CRS",
            )
        gdf = gdf.set_crs(crs)
    epsg = resolve_epsg(gdf.crs)
    if epsg is None:
        msg = f"unrecognised CRS {gdf.crs.name!r}"
        raise IngestError(path, msg, layer=layer, rule="known CRS")
    gdf = gdf.rename(columns={c: c.upper() for c in gdf.columns if c != gdf.geometry.name})
    missing = [c for c in required if c.upper() not in gdf.columns]
    if missing:
        msg = f"missing required column(s) {', '.join(missing)}"
        raise IngestError(path, msg, layer=layer, rule="required columns")
    if gdf.crs.to_epsg() != epsg:
        gdf = gdf.set_crs(epsg, allow_override=True)
    if len(gdf):
        check_extent(path, tuple(gdf.total_bounds.tolist()), epsg, layer)
    fmt = src.format
    crs_in = "OGC:CRS84" if epsg == 4326 and fmt == "geojson" else f"EPSG:{epsg}"
    if epsg != 2180:
        gdf = gdf.to_crs(2180)
    return VectorRead(gdf, fmt, layer, crs_in)


_TEXT_RULE = "text in the declared encoding"
_CPG_HINT = "add a .cpg file naming the code page (1250 for Windows Polish, UTF-8, …)"


def _undeclared_dbf_encoding(path: Path) -> bool:
    """True for a shapefile whose encoding is declared nowhere (no .cpg, DBF code page 0)."""
    if path.suffix.lower() != ".shp":
        return False
    siblings = {p.name.lower(): p for p in path.parent.glob(f"{path.stem}.*")}
    if f"{path.stem.lower()}.cpg" in siblings:
        return False
    dbf = siblings.get(f"{path.stem.lower()}.dbf")
    if dbf is None:
        return False
    with dbf.open("rb") as f:
        head = f.read(32)
    return len(head) > 29 and head[29] == 0


def _text_columns(gdf: pd.DataFrame) -> list[str]:
    geom = getattr(gdf, "_geometry_column_name", None)
    return [
        c
        for c in gdf.columns
        if c != geom and (gdf[c].dtype == object or pd.api.types.is_string_dtype(gdf[c].dtype))
    ]


def _recode_utf8(gdf: gpd.GeoDataFrame, path: Path, layer: str, offset: int = 0) -> None:
    """Text read byte for byte (ISO-8859-1) re-read as UTF-8, in place; refuse if it is not.
    ``offset``: the layer position of the frame's first row (for the error's record)."""
    for col in _text_columns(gdf):
        s = gdf[col]
        ascii_only = s.isna() | s.astype(str).str.isascii()
        if ascii_only.all():
            continue
        values = s.to_numpy(dtype=object).copy()
        for i in np.flatnonzero(~ascii_only.to_numpy()):
            raw = str(values[i]).encode("latin-1")
            try:
                values[i] = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                msg = (
                    f"attribute {col!r} is not UTF-8 ({raw[exc.start : exc.start + 4]!r}…) and "
                    f"the shapefile declares no encoding; {_CPG_HINT}"
                )
                raise IngestError(
                    path, msg, layer=layer, record=f"row {offset + i}", rule=_TEXT_RULE
                ) from exc
        gdf[col] = pd.Series(values, index=gdf.index, dtype=s.dtype)


def _raise_bad_text(path: Path, layer: str, encoding: str | None, exc: Exception) -> None:
    """IngestError naming the first record whose text is not in the declared encoding."""
    declared = encoding or "UTF-8"
    try:
        raw = pyogrio.read_dataframe(
            path, layer=layer, read_geometry=False, encoding="ISO-8859-1", fid_as_index=True
        )
    except Exception:
        raw = None
    if raw is not None:
        for col in _text_columns(raw):
            for fid, v in raw[col].dropna().items():
                data = str(v).encode("latin-1")
                try:
                    data.decode(declared)
                except UnicodeDecodeError as bad:
                    msg = (
                        f"attribute {col!r} is not valid {declared} text "
                        f"({data[bad.start : bad.start + 4]!r}… at byte {bad.start}); re-save "
                        f"the layer as {declared}"
                        + (f" or {_CPG_HINT}" if path.suffix.lower() == ".shp" else "")
                    )
                    raise IngestError(
                        path, msg, layer=layer, record=f"FID {fid}", rule=_TEXT_RULE
                    ) from exc
    msg = f"attribute text is not valid {declared}: {exc}"
    raise IngestError(path, msg, layer=layer, rule=_TEXT_RULE) from exc


def _check_text(gdf: gpd.GeoDataFrame, path: Path, layer: str, encoding: str | None = None) -> None:
    """Refuse text that is not valid UTF-8 or that GDAL decoded with replacement characters.

    GDAL hands GPKG / GeoJSON text over as stored; Arrow strings are checked in full
    (a vectorised UTF-8 validation) so bad bytes never reach the store.
    """
    for col in _text_columns(gdf):
        s = gdf[col]
        arrow = getattr(s.array, "_pa_array", None)
        if arrow is not None:
            try:
                arrow.validate(full=True)
            except Exception as exc:
                _raise_bad_text(path, layer, encoding, exc)
        if s.dtype == object:
            s = s.dropna()
            s = s[s.map(lambda v: isinstance(v, str))]
        bad = s.str.contains("\ufffd", regex=False).to_numpy(dtype=bool, na_value=False)
        if bad.any():
            i = s.index[np.argmax(bad)]
            msg = f"attribute {col!r} is not valid text in the file's encoding: {s[i]!r}"
            raise IngestError(path, msg, layer=layer, record=str(i), rule=_TEXT_RULE)
