"""Format detection and ingest of arbitrary files: which reader, then canonical layers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from omw_sites.config import STREAM_BATCH_ROWS
from omw_sites.etl.bdot import BDOT_NS, bdot_class, read_bdot
from omw_sites.etl.egib import (
    ID_COLUMNS,
    egib_schema,
    iter_egib_vector,
    read_egib_gml,
    read_egib_vector,
)
from omw_sites.etl.errors import IngestError
from omw_sites.etl.gesut import is_gesut, read_gesut
from omw_sites.etl.gml import DEFAULT_LIMITS, Limits, check_size, feature_namespace, root_info
from omw_sites.etl.mpzp import read_mpzp
from omw_sites.etl.planning_acts import app_version, read_app
from omw_sites.etl.raster import read_dem
from omw_sites.etl.result import LayerResult, concat_quarantine
from omw_sites.layers import GPKG_SQL_KIND, MANIFEST, kind_of

VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json")
RASTER_SUFFIXES = (".asc", ".tif", ".tiff")
GML_SUFFIXES = (".gml", ".xml")
SKIP_SUFFIXES = (".gfs", ".xsd", ".prj", ".dbf", ".shx", ".cpg", ".qmd", ".md", ".txt")


def detect_format(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> str:
    """Detected format of ``path``.

    One of ``egib-gml-2015``, ``egib-gml-2021``, ``app-gml-1.0``, ``app-gml-2.0``,
    ``gesut-gml-2021``, ``bdot10k-gml``, ``egib-vector``, ``bdot10k-vector``,
    ``mpzp-vector``, ``nmt-asc``, ``nmt-geotiff``, ``ownership-csv``.

    Raises
    ------
    IngestError
        Empty, unreadable or of no known format (naming what was found).
    """
    path = Path(path)
    check_size(path, limits)
    suffix = path.suffix.lower()
    if suffix in GML_SUFFIXES:
        return _gml_format(path, limits)
    if suffix in _FORMAT_BY_SUFFIX:
        return _FORMAT_BY_SUFFIX[suffix]
    if suffix in VECTOR_SUFFIXES:
        return _vector_format(path)
    raise IngestError(path, f"unknown file type {suffix or '(none)'}", rule="known format")


# formats told by the file's suffix alone
_FORMAT_BY_SUFFIX = {
    ".asc": "nmt-asc",
    ".tif": "nmt-geotiff",
    ".tiff": "nmt-geotiff",
    ".csv": "ownership-csv",
}


def _gml_format(path: Path, limits: Limits) -> str:
    """A GML file's format, from the namespace its features use (else its root's)."""
    _, namespaces = root_info(path, limits)
    uris = set(namespaces.values())
    used = feature_namespace(path, limits)
    if used:
        uris = {used}
    for uri in uris:
        if schema := egib_schema(uri):
            return f"egib-gml-{schema}"
    for uri in uris:
        if version := app_version(uri):
            return f"app-gml-{version}"
    if any(is_gesut(u) for u in uris):
        return "gesut-gml-2021"
    if any(u.startswith(BDOT_NS) for u in uris):
        return "bdot10k-gml"
    msg = (
        "unknown GML namespace(s): "
        f"{', '.join(sorted(uris)) or 'none'}; expected EGiB, APP, GESUT or BDOT10k"
    )
    raise IngestError(path, msg, rule="known namespace")


def _vector_format(path: Path) -> str:
    """A vector file's format, from its first layer's columns and name."""
    try:
        info = pyogrio.read_info(path, layer=0)  # the first layer, as the readers
    except Exception as exc:
        raise IngestError(path, f"cannot read the file: {exc}") from exc
    cols = {str(c).upper() for c in info["fields"]}
    if cols & set(ID_COLUMNS) - {"FID"} or ("FID" in cols and {"NR_DZIALKI", "NR_OBREBU"} & cols):
        return "egib-vector"
    if "KLASADROGI" in cols or bdot_class(path.stem) or bdot_class(str(info.get("layer_name", ""))):
        return "bdot10k-vector"
    specs = _raw_layout_files().get(path.name, [])
    if specs and not {s.key for s in specs} & _DEDICATED:
        return "raw-layout"  # a file of the raw folder's own layout (see layers.RAW_LAYERS)
    if cols & {"SYMBOL", "OZNACZENIE", "PRZEZNACZENIE"}:
        return "mpzp-vector"
    if "RODZAJSIECI" in cols:  # GESUT lines/devices in the raw layout's columns
        return "raw-layout"
    msg = f"cannot tell what the layer holds from its columns ({', '.join(sorted(cols))})"
    raise IngestError(path, msg, rule="known format")


def ingest_file(
    path: str | Path,
    crs: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    fmt: str | None = None,
) -> list[LayerResult]:
    """Read one file with the reader its format (``fmt``: detected when not given) calls
    for; canonical layers in EPSG:2180."""
    path = Path(path)
    fmt = fmt or detect_format(path, limits)
    if fmt.startswith("egib-gml"):
        return [read_egib_gml(path, crs, limits)]
    if fmt == "egib-vector":
        owners = _ownership_beside(path)
        return [read_egib_vector(path, crs=crs, ownership_table=owners, limits=limits)]
    if fmt.startswith("app-gml"):
        data = read_app(path, crs, limits)
        return [r for r in (data.acts, data.zones) if r.read]
    if fmt == "gesut-gml-2021":
        return list(read_gesut(path, crs, limits))
    if fmt == "bdot10k-vector":
        # a BDOT10k GeoPackage holds one layer per class (OT_SKDR_L, OT_SKTR_L, OT_TCON_A …)
        names = [str(n) for n, _ in pyogrio.list_layers(path)]
        classes = [n for n in names if bdot_class(n)] if len(names) > 1 else [None]
        return [read_bdot(path, layer=n, crs=crs, limits=limits) for n in classes or [None]]
    if fmt == "bdot10k-gml":
        return [read_bdot(path, crs=crs, limits=limits)]
    if fmt == "mpzp-vector":
        return [read_mpzp(path, crs=crs, limits=limits)]
    if fmt == "raw-layout":
        return _read_raw_layout(path, fmt)
    if fmt.startswith("nmt"):
        dem = read_dem(path, crs, limits)
        frame = gpd.GeoDataFrame({"cells": [dem.heights.size]}, geometry=[None], crs=2180)
        return [
            LayerResult(
                "dem", frame, concat_quarantine([]), fmt, path.name, f"EPSG:{dem.epsg}",
                int(dem.heights.size), extra={"nodata_cells": int(pd.isna(dem.heights).sum())},
            )
        ]  # fmt: skip
    # ownership side table: reported; joined when the parcels come from the same folder
    try:
        table = pd.read_csv(path, dtype=str, encoding="utf-8")
    except UnicodeDecodeError as exc:
        msg = f"not UTF-8 text at byte {exc.start}; re-save the table as UTF-8"
        raise IngestError(path, msg, rule="text in UTF-8") from exc
    frame = gpd.GeoDataFrame(table, geometry=[None] * len(table), crs=2180)
    return [LayerResult("ownership", frame, concat_quarantine([]), fmt, path.name, "", len(table))]


# layers with a reader of their own (EGiB, MPZP, BDOT10k): a raw-layout file holding one of
# them goes to that reader, which checks more (IDs, symbols, road classes)
_DEDICATED = frozenset({"parcels", "zoning", "roads"})


def _raw_layout_files() -> dict[str, list]:
    """File name → the vector layers ``layers.RAW_LAYERS`` expects in it."""
    from omw_sites.layers import RAW_LAYERS

    out: dict[str, list] = {}
    for spec in RAW_LAYERS:
        if spec.geom != "raster":
            out.setdefault(Path(spec.path).name, []).append(spec)
    return out


def _read_raw_layout(path: Path, fmt: str) -> list[LayerResult]:
    """The layers of a raw-folder file (gminy, transport points, GESUT lines and devices,
    flood …), read exactly as ``omw-sites run`` reads them."""
    from omw_sites.etl.ingest import read_raw_layer
    from omw_sites.layers import RAW_BY_KEY

    names = [str(n) for n, _ in pyogrio.list_layers(path)]
    specs = _raw_layout_files().get(path.name) or [
        RAW_BY_KEY["utilities"],
        RAW_BY_KEY["substations"],
    ]
    out = []
    for spec in specs:
        if spec.layer not in names:
            if len(names) > 1:
                continue
            kind = str(pyogrio.read_info(path, layer=0)["geometry_type"]).lower()
            if spec.geom not in kind:  # a single-layer file (SHP): pick by geometry
                continue
            spec = dataclasses.replace(spec, layer=None)
        info = pyogrio.read_info(path, layer=spec.layer)
        frame, q1, q2, n_read, repaired = read_raw_layer(path, spec)
        out.append(
            LayerResult(
                spec.key, frame, concat_quarantine([q1, q2]), fmt, spec.layer or path.stem,
                str(info.get("crs") or ""), n_read, repaired,
            )
        )  # fmt: skip
    if not out:
        msg = f"none of the layers expected in {path.name} (the file has: {', '.join(names)})"
        raise IngestError(path, msg, rule="required layers")
    return out


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and the data files inside folders named (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() not in SKIP_SUFFIXES
                and not f.name.startswith(".") and not f.name.startswith("LICENSE")
                and f.name != MANIFEST
            )  # fmt: skip
        elif p.exists():
            out.append(p)
        else:
            raise IngestError(p, "no such file or folder")
    return out


def ingest_paths(
    paths: Iterable[str | Path], crs: str | int | None = None, limits: Limits = DEFAULT_LIMITS
) -> list[LayerResult]:
    """Read every file whole; any IngestError stops the whole batch (nothing is written)."""
    return list(iter_ingest(paths, crs, limits, batch_rows=None))


def iter_ingest(
    paths: Iterable[str | Path],
    crs: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    batch_rows: int | None = STREAM_BATCH_ROWS,
) -> Iterator[LayerResult]:
    """Every file's layers one result at a time; an EGiB GPKG/SHP/GeoJSON export of more
    than ``batch_rows`` features (None: never) comes as several results, one per batch
    (see :func:`~omw_sites.etl.egib.iter_egib_vector`), so that a caller who writes each
    one out and lets it go holds one batch in memory, whatever the file's size."""
    for path in expand_paths(paths):
        fmt = detect_format(path, limits)
        if fmt == "egib-vector" and batch_rows is not None and _features(path) > batch_rows:
            results: Iterable[LayerResult] = iter_egib_vector(
                path, crs=crs, ownership_table=_ownership_beside(path), limits=limits,
                batch_rows=batch_rows,
            )  # fmt: skip
        else:
            results = ingest_file(path, crs, limits, fmt)
        for r in results:
            r.extra.setdefault("file", str(path))
            yield r


def _ownership_beside(path: Path) -> Path | None:
    """The ownership side table of an EGiB export: ``ownership.csv`` in its folder."""
    side = path.parent / "ownership.csv"
    return side if side.exists() else None


def _features(path: Path) -> int:
    """Features in the first layer (the one the EGiB reader takes); -1 when unknown."""
    try:
        return int(pyogrio.read_info(path, layer=0)["features"])
    except Exception:  # the reader itself reports what is wrong with the file
        return -1


class ResultWriter:
    """Canonical layers and one ``quarantine`` table written to a GeoPackage as results
    come, into a temporary file renamed over ``out`` by :meth:`close` (nothing is
    half-written: :meth:`abort`, or an exception inside ``with``, removes it).

    Results of the same layer are appended by column name: a column the layer lacks is
    added to it (earlier rows hold nulls there); one the result lacks is null.
    Polygon and line layers are written as their multi-part types, so that parts of one
    layer from different files or batches fit one geometry type.
    """

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.tmp = self.out.with_name(f".{self.out.stem}.tmp.gpkg")
        self.tmp.unlink(missing_ok=True)
        self.columns: dict[str, list[str]] = {}
        self.promote: dict[str, bool] = {}
        self.quarantine: list[pd.DataFrame] = []
        self.quarantined = 0

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            self.abort()

    def add(self, r: LayerResult) -> None:
        """Append one result's layer and keep its quarantine rows for :meth:`close`."""
        if len(r.quarantine):
            self.quarantine.append(r.quarantine)
            self.quarantined += len(r.quarantine)
        if r.key in ("dem", "ownership") or not len(r.frame):
            return
        frame = r.frame.assign(source_file=str(r.extra.get("file", "")))
        geom = frame.geometry.name
        cols = [c for c in frame.columns if c != geom]
        known = self.columns.get(r.key)
        if known is None:
            kinds = set(frame.geometry.geom_type.dropna().unique())
            self.promote[r.key] = bool(kinds) and kinds <= {
                "Polygon", "MultiPolygon", "LineString", "MultiLineString",
            }  # fmt: skip
            self.columns[r.key] = cols
        else:
            new = [c for c in cols if c not in known]
            if new:
                self._add_columns(r.key, frame[new])
                known += new
            # pyogrio appends fields by position: put them in the layer's order
            frame = frame.reindex(columns=[*known, geom])
        pyogrio.write_dataframe(
            frame, self.tmp, layer=r.key, driver="GPKG", append=known is not None,
            promote_to_multi=self.promote[r.key] or None,
        )  # fmt: skip

    def _add_columns(self, layer: str, values: pd.DataFrame) -> None:
        import sqlite3

        conn = sqlite3.connect(self.tmp)
        try:
            with conn:
                for c in values.columns:
                    kind = GPKG_SQL_KIND[kind_of(values[c])]
                    name = c.replace('"', '""')
                    conn.execute(f'ALTER TABLE "{layer}" ADD COLUMN "{name}" {kind}')
        finally:
            conn.close()

    def close(self) -> Path:
        """Write the quarantine table and put the file in place."""
        import os

        q = concat_quarantine(self.quarantine).astype(str)
        pyogrio.write_dataframe(q, self.tmp, layer="quarantine", driver="GPKG")
        os.replace(self.tmp, self.out)
        return self.out

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


def write_results(results: Iterable[LayerResult], out: str | Path) -> Path:
    """Write the layers and one ``quarantine`` table to a GeoPackage, atomically."""
    with ResultWriter(out) as writer:
        for r in results:
            writer.add(r)
        return writer.close()
