"""Format detection and ingest of arbitrary files: which reader, then canonical layers."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from omw_sites.config import STREAM_BATCH_ROWS
from omw_sites.etl.bdot import BDOT_NS, CLASS_LAYER, read_bdot
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
from omw_sites.etl.mpzp import DESIGNATION_COLUMNS, read_mpzp
from omw_sites.etl.osm import read_osm
from omw_sites.etl.planning_acts import app_version, read_app
from omw_sites.etl.raster import read_dem
from omw_sites.etl.raw_folder import RawFile
from omw_sites.etl.result import LayerResult, concat_quarantine
from omw_sites.layers import GPKG_SQL_KIND, RAW_LAYERS, kind_of

VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json")
RASTER_SUFFIXES = (".asc", ".tif", ".tiff", ".xyz")
GML_SUFFIXES = (".gml", ".xml")
# a GML of no known schema is told by its columns only below this size (GDAL reads it all)
PLAIN_GML_MAX_BYTES = 256 * 2**20


def detect_format(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> str:
    """Detected format of ``path``.

    One of ``egib-gml-2015``, ``egib-gml-2021``, ``app-gml-1.0``, ``app-gml-2.0``,
    ``gesut-gml-2021``, ``bdot10k-gml``, ``egib-vector``, ``bdot10k-vector``,
    ``mpzp-vector``, ``raw-layout`` (gminy, transport points, GESUT, flood … as vector
    layers), ``nmt-asc``, ``nmt-geotiff``, ``nmt-xyz``, ``ownership-csv``, ``osm-pbf``, ``osm-xml``.

    Raises
    ------
    IngestError
        Empty, unreadable or of no known format (naming what was found).
    """
    path = Path(path)
    check_size(path, limits)
    suffix = path.suffix.lower()
    if suffix in GML_SUFFIXES + (".osm",):
        return _gml_format(path, limits)
    if suffix == ".csv":
        return _table_format(path)
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
    ".xyz": "nmt-xyz",
    ".pbf": "osm-pbf",
}


def _table_format(path: Path) -> str:
    """A CSV table: the EGiB ownership side table (parcel ID and ownership columns)."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        header = f.readline()
    cols = {c.strip().strip('"').upper() for c in re.split(r"[,;\t]", header)}
    if "ID_DZIALKI" in cols and cols & {"OWNERSHIP", "GRUPA_REJESTROWA"}:
        return "ownership-csv"
    msg = (
        f"a table that is not an ownership table (columns {', '.join(sorted(cols))}; "
        "expected ID_DZIALKI and ownership or GRUPA_REJESTROWA)"
    )
    raise IngestError(path, msg, rule="known format")


def _gml_format(path: Path, limits: Limits) -> str:
    """A GML file's format, from the namespace its features use (else its root's)."""
    root, namespaces = root_info(path, limits)
    if root == "osm":  # OpenStreetMap XML: no namespace
        return "osm-xml"
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
    # a GML of plain attributes (PRG boundaries, a gmina's MPZP layer, flood zones as GDAL
    # or a GIS writes them): told by its columns, as a GPKG would be. Parcels and BDOT10k
    # classes only through their own schemas, which their readers check. GDAL reads the
    # whole file to learn its columns: a large file of an unknown schema is not tried
    if path.stat().st_size > PLAIN_GML_MAX_BYTES:
        size = f"{path.stat().st_size / 2**20:,.0f} MB"
        raise IngestError(
            path, f"{msg} ({size}: too large to tell by its columns)", rule="known namespace"
        )
    try:
        fmt = _vector_format(path)
    except IngestError:
        fmt = ""
    if fmt in ("raw-layout", "mpzp-vector"):
        return fmt
    raise IngestError(path, msg, rule="known namespace")


def _vector_format(path: Path) -> str:
    """A vector file's format, from what its layers hold (see :func:`layer_key`)."""
    keys = [key for _, key, _ in classify_layers(path)]
    found = [k for k in keys if k is not None]
    if "parcels" in found:
        return "egib-vector"
    if found and all(k in BDOT_KEYS for k in found):
        return "bdot10k-vector"
    if found == ["zoning"]:
        return "mpzp-vector"
    if found:
        return "raw-layout"  # gminy, transport points, GESUT lines and devices, flood …
    whys = "; ".join(why for _, key, why in classify_layers(path) if key is None)
    raise IngestError(path, whys or "no layer", rule="known format")


# BDOT10k class in a layer or file name: OT_SKDR_L, PL.PZGiK.994.1465__OT_SKDR_L.xml
BDOT_CLASS_NAME = re.compile(r"OT_([A-Z]{4})_[ALP](?![A-Z])")
# BDOT10k classes read only to derive stations and airports (etl.derive)
DERIVE_CLASSES = {"KUKO": "bdot_complexes", "OIKM": "bdot_points"}
BDOT_KEYS = frozenset({*CLASS_LAYER.values(), *DERIVE_CLASSES.values()})
# ISOK flood hazard maps: words of their file and layer names (obszary zagrożenia
# powodziowego, OSZP, Q1%, …); the files carry no column that says so
FLOOD_NAME = re.compile(r"ZAGROZ|ISOK|OSZP|POWODZ|(^|[^A-Z0-9])Q_?0?1([^0-9]|$)")


def bdot_name_class(*names: str) -> str | None:
    """The BDOT10k class code (``SKDR``) in the first of ``names`` that carries one."""
    full = bdot_name(*names)
    return full[3:7] if full else None


def bdot_name(*names: str) -> str | None:
    """The BDOT10k class name (``OT_SKDR_L``) in the first of ``names`` that carries one."""
    for name in names:
        if m := BDOT_CLASS_NAME.search(name.upper()):
            return m.group(0)
    return None


def unused_bdot(*names: str) -> str:
    """Why a BDOT10k class named in ``names`` is not read."""
    return f"BDOT10k class {bdot_name(*names)} is not used"


def layer_key(
    file_name: str, layer: str, columns: Iterable[str], geom: str | None
) -> tuple[str | None, str]:
    """The canonical layer a vector layer holds, told by its columns first and its
    names second; ``(None, why)`` when it holds none the tool uses."""
    cols = {str(c).upper() for c in columns}
    geom = (geom or "").lower()
    stem = Path(file_name).stem
    if cols & set(ID_COLUMNS) - {"FID"} or ("FID" in cols and {"NR_DZIALKI", "NR_OBREBU"} & cols):
        return "parcels", ""
    if "JPT_KOD_JE" in cols:
        return "gminy", ""
    if "strefaplanistyczna" in layer.lower() or {"SYMBOL", "PROFILPODSTAWOWY"} <= cols:
        return "plan_zones", ""
    if "RODZAJSIECI" in cols:
        return ("substations" if "point" in geom else "utilities"), ""
    # GUS census grid (CODE, RES, RES_15_64 …); EGiB land-use and soil-class contours
    if "RES" in cols and ({"CODE", "RES_15_64"} & cols) and "polygon" in geom:
        return "population", ""
    if "OFU" in cols and "polygon" in geom:
        return "land_use", ""
    if "OZK" in cols and "polygon" in geom:
        return "soil_classes", ""
    cls = bdot_name_class(layer, stem) or ("SKDR" if "KLASADROGI" in cols else None)
    if cls is not None:
        key = CLASS_LAYER.get(cls) or DERIVE_CLASSES.get(cls)
        return (key, "") if key else (None, unused_bdot(layer, stem))
    if set(DESIGNATION_COLUMNS) & cols and "polygon" in geom:
        return "zoning", ""
    for spec in RAW_LAYERS:  # the raw layout's own layers (transport points, flood …)
        names = {str(spec.layer).lower(), Path(spec.path).stem.lower()}
        if spec.geom != "raster" and {layer.lower(), stem.lower()} & names:
            return spec.key, ""  # its reader names a required column it lacks
    if "polygon" in geom and (FLOOD_NAME.search(layer.upper()) or FLOOD_NAME.search(stem.upper())):
        return "flood", ""
    shown = ", ".join(sorted(cols)) or "none"
    return None, f"layer {layer!r}: cannot tell what it holds from its columns ({shown})"


def classify_layers(path: Path) -> list[tuple[str, str | None, str]]:
    """Every layer of a vector file as ``(layer, key or None, why not)``."""
    try:
        if path.suffix.lower() in GML_SUFFIXES:
            infos = _gml_layers(path)
        else:
            listed = pyogrio.list_layers(path)
            infos = [
                (str(n), g, pyogrio.read_info(path, layer=str(n))["fields"]) for n, g in listed
            ]
    except Exception as exc:
        raise IngestError(path, f"cannot read the file: {exc}") from exc
    return [(n, *layer_key(path.name, n, cols, g)) for n, g, cols in infos]


def _gml_layers(path: Path) -> list[tuple[str, str, list[str]]]:
    """The feature types of a GML file through GDAL, without the ``.gfs`` schema file
    GDAL would otherwise write beside it (the raw folder stays as downloaded)."""
    out: list[tuple[str, str, list[str]]] = []
    for i in range(MAX_GML_LAYERS):
        try:
            info = pyogrio.read_info(path, layer=i, WRITE_GFS="NO")
        except Exception:
            if not out:
                raise
            break
        out.append((str(info["layer_name"]), str(info["geometry_type"]), list(info["fields"])))
    return out


MAX_GML_LAYERS = 64


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
    if fmt == "bdot10k-gml":
        return [read_bdot(path, cls=bdot_name_class(path.name), crs=crs, limits=limits)]
    if fmt in ("bdot10k-vector", "mpzp-vector", "raw-layout"):
        return _read_layers(path, fmt, crs, limits)
    if fmt.startswith("osm"):
        return read_osm(path)
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


def _read_layers(path: Path, fmt: str, crs, limits: Limits) -> list[LayerResult]:
    """Every layer of a vector file that holds a canonical layer, each with its reader:
    BDOT10k classes and MPZP designations with their own (which check road classes and
    symbols), the raw layout's layers (gminy, transport points, GESUT lines and devices,
    flood …) exactly as ``omw-sites run`` reads them."""
    from omw_sites.etl.ingest import read_raw_layer
    from omw_sites.layers import RAW_BY_KEY

    out = []
    derive_only = False  # transport complexes: read by `run` to derive stations, airports
    for layer, key, _ in classify_layers(path):
        derive_only |= key in DERIVE_CLASSES.values()
        if key is None or key in DERIVE_CLASSES.values():
            continue
        if key in CLASS_LAYER.values():
            out.append(read_bdot(path, layer=layer, crs=crs, limits=limits))
        elif key == "zoning":
            out.append(read_mpzp(path, layer=layer, crs=crs, limits=limits))
        elif key == "parcels":
            owners = _ownership_beside(path)
            out.append(read_egib_vector(path, layer, crs, owners, limits=limits))
        else:
            spec = dataclasses.replace(RAW_BY_KEY[key], layer=layer)
            info = pyogrio.read_info(path, layer=layer)
            frame, q1, q2, n_read, repaired = read_raw_layer(path, spec)
            crs_in = str(info.get("crs") or "")
            quarantine = concat_quarantine([q1, q2])
            out.append(LayerResult(key, frame, quarantine, fmt, layer, crs_in, n_read, repaired))
    if not out and not derive_only:
        msg = "no layer the tool uses: " + "; ".join(w for *_, w in classify_layers(path) if w)
        raise IngestError(path, msg, rule="known format")
    return out


def ingest_paths(
    paths: Iterable[str | Path], crs: str | int | None = None, limits: Limits = DEFAULT_LIMITS
) -> list[LayerResult]:
    """Read every file whole; any IngestError stops the whole batch (nothing is written)."""
    return list(iter_ingest(paths, crs, limits, batch_rows=None))


# files of no data format that a download holds beside the data (schemas, read-me files):
# ``iter_ingest`` passes them by, ``omw-sites ingest`` lists them
DOCUMENT_SUFFIXES = (".xsd", ".md", ".txt", ".pdf", ".html", ".htm", ".doc", ".docx", ".odt")


def iter_ingest(
    paths: Iterable[str | Path],
    crs: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    batch_rows: int | None = STREAM_BATCH_ROWS,
) -> Iterator[LayerResult]:
    """Every file's layers one result at a time (folders recursively, zips opened); a file
    of no known format stops the batch (``omw-sites ingest`` lists it and goes on: see
    :func:`read_file`)."""
    import tempfile

    from omw_sites.etl.raw_folder import discover

    with tempfile.TemporaryDirectory(prefix="omw-ingest-") as scratch:
        for rf in discover(list(paths), Path(scratch), limits):
            if rf.why:
                if rf.path.suffix.lower() in DOCUMENT_SUFFIXES:
                    continue
                exc = rf.error
                if exc is None or rf.zipped:  # named as found, not as unpacked
                    rule = exc.rule if exc is not None else "known format"
                    raise IngestError(rf.name, rf.why, rule=rule)
                raise exc
            yield from read_file(rf, crs, limits, batch_rows)


_DERIVED = " by ingest (run derives stations and airports from it)"


def read_file(
    rf: RawFile,
    crs: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    batch_rows: int | None = STREAM_BATCH_ROWS,
) -> Iterator[LayerResult]:
    """One discovered file's layers one result at a time; an EGiB GPKG/SHP/GeoJSON export
    of more than ``batch_rows`` features (None: never) comes as several results, one per
    batch (see :func:`~omw_sites.etl.egib.iter_egib_vector`), so that a caller who writes
    each one out and lets it go holds one batch in memory, whatever the file's size.
    ``extra['file']`` names the file as found (``pkg.zip/member`` inside a zip)."""
    path, fmt = rf.path, rf.format
    cls = bdot_name_class(path.name) if fmt == "bdot10k-gml" else None
    if cls is not None and cls not in CLASS_LAYER:  # one class of a powiat's package
        rf.skip(unused_bdot(path.name) + (_DERIVED if cls in DERIVE_CLASSES else ""))
        return
    if fmt == "egib-vector" and batch_rows is not None and _features(path) > batch_rows:
        results: Iterable[LayerResult] = iter_egib_vector(
            path, crs=crs, ownership_table=_ownership_beside(path), limits=limits,
            batch_rows=batch_rows,
        )  # fmt: skip
    else:
        results = ingest_file(path, crs, limits, fmt)
    for r in results:
        r.extra.setdefault("file", rf.name)
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
