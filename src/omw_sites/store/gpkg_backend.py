"""GeoPackage backend: one SQLite file that opens in QGIS; SQLite transactions for updates.

Reads go through GDAL (pyogrio, Arrow). Writes inside :meth:`GeoPackageBackend.transaction`
go through one ``sqlite3`` connection and one ``BEGIN IMMEDIATE … COMMIT``: SQLite's
rollback journal makes them all-or-nothing even when the process is killed (the next open
rolls a hot journal back), and readers in other processes see the state before or after.
Geometries are written as GeoPackage binary blobs (header with envelope + ISO WKB); the
``ST_*`` functions GDAL's R-tree triggers call are registered on the connection, so the
spatial index stays exact. A first load (:meth:`bulk_load`) writes a new file — the sites
through :mod:`omw_sites.store.gpkg_bulk` (C column binding, packed R-tree), every other
table with GDAL — and renames it over the old one.
"""

from __future__ import annotations

import glob
import os
import sqlite3
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from omw_sites.layers import GPKG_SQL_KIND, RUN_INFO, WORK_CRS
from omw_sites.store import gpkg_bulk
from omw_sites.store.base import (
    BOOKKEEPING_TABLES,
    RUN_INFO_COLUMNS,
    Backend,
    Derive,
    StoreError,
    Transaction,
    empty_table,
    with_derived,
)
from omw_sites.store.gpkg_bulk import FLAG_EMPTY, SRS_ID, gpkg_blob_array

# bytes per SQLite page of a bulk-loaded store. Measured at 1M sites × 97 columns: 8 KiB
# pages load ≈ 1.2 s faster than 4 KiB, 16 KiB ≈ 4 s, but a 1 % update touches one page per
# changed site and journals each whole page: 4 KiB updates fastest (4.5–5.0 s against
# 5.5 s at 8 KiB and 7.5 s at 16 KiB). Updates are the everyday operation.
PAGE_SIZE = 4096
CACHE_KIB = 1_048_576  # page cache of a writing connection (an upper bound, not an allocation)


def gpkg_blobs(geoms: np.ndarray) -> list[bytes | None]:
    """GeoPackage geometry blobs (header + envelope + ISO WKB) of shapely geometries."""
    return gpkg_blob_array(geoms)[0].to_pylist()


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    if blob is None or len(blob) < 8 or blob[3] & FLAG_EMPTY:
        return None
    if (blob[3] >> 1) & 0b111 == 1:
        return struct.unpack_from("<4d", blob, 8)
    wkb_start = 8 + {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(blob[3] >> 1) & 0b111]
    x0, y0, x1, y1 = shapely.bounds(shapely.from_wkb(blob[wkb_start:]))
    return (x0, x1, y0, y1)


def _register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions GDAL's GeoPackage R-tree triggers call."""

    def is_empty(blob: bytes | None) -> int | None:
        return None if blob is None else int(_envelope(blob) is None)

    def part(i: int):
        def f(blob: bytes | None) -> float | None:
            env = _envelope(blob)
            return None if env is None else env[i]

        return f

    conn.create_function("ST_IsEmpty", 1, is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, part(i), deterministic=True)


def _python_values(frame: pd.DataFrame) -> list[list[Any]]:
    """Columns of ``frame`` as Python lists with NaN/NA → None (for sqlite3)."""
    cols = []
    for name in frame.columns:
        s = frame[name]
        if pd.api.types.is_float_dtype(s):
            values = s.to_numpy(dtype="float64")
            cols.append([None if v != v else v for v in values.tolist()])
        elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_integer_dtype(s):
            cols.append([None if pd.isna(v) else int(v) for v in s.tolist()])
        else:
            cols.append(
                [None if v is None or (isinstance(v, float) and v != v) else v for v in s.tolist()]
            )
    return cols


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _GpkgTransaction(Transaction):
    def __init__(self, backend: GeoPackageBackend, conn: sqlite3.Connection) -> None:
        self.backend = backend
        self.conn = conn
        self.inserted: dict[str, int] = {}  # rows added per table (for GDAL's counts)
        self.replaced: set[str] = set()

    def _geom_column(self, table: str) -> str | None:
        row = self.conn.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE lower(table_name) = lower(?)",
            (table,),
        ).fetchone()
        return row[0] if row else None

    def _table_columns(self, table: str) -> list[str]:
        return [r[1] for r in self.conn.execute(f"PRAGMA table_info({_q(table)})")]

    def add_columns(self, table: str, columns: Mapping[str, str]) -> None:
        have = set(self._table_columns(table))
        for name, kind in columns.items():
            if name not in have:
                self.conn.execute(
                    f"ALTER TABLE {_q(table)} ADD COLUMN {_q(name)} {GPKG_SQL_KIND[kind]}"
                )

    def _prepare(self, table: str, rows: pd.DataFrame) -> tuple[list[str], list[list[Any]]]:
        have = set(self._table_columns(table))
        geom_col = self._geom_column(table)
        names, values = [], []
        attrs = rows.drop(columns=["geometry"], errors="ignore")
        missing = [c for c in attrs.columns if c not in have]
        if missing:
            msg = f"table {table!r} of {self.backend.target} has no column(s) {missing}"
            raise StoreError(msg)
        names.extend(attrs.columns)
        values.extend(_python_values(attrs))
        if "geometry" in rows.columns and geom_col is not None:
            geoms = rows["geometry"].to_numpy()
            if isinstance(rows, gpd.GeoDataFrame) and rows.crs is not None:
                if rows.crs.to_epsg() != SRS_ID:
                    geoms = rows.to_crs(WORK_CRS)["geometry"].to_numpy()
            names.append(geom_col)
            values.append(gpkg_blobs(geoms))
        return names, values

    def insert(self, table: str, rows: pd.DataFrame | gpd.GeoDataFrame) -> None:
        if rows.empty:
            return
        names, values = self._prepare(table, rows)
        sql = (
            f"INSERT INTO {_q(table)} ({', '.join(map(_q, names))}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        self.conn.executemany(sql, zip(*values, strict=True))
        self.inserted[table] = self.inserted.get(table, 0) + len(rows)

    def update(self, table: str, key: str, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        keys = rows[key].tolist()
        names, values = self._prepare(table, rows.drop(columns=[key]))
        if not names:
            return
        sets = ", ".join(f"{_q(n)} = ?" for n in names)
        sql = f"UPDATE {_q(table)} SET {sets} WHERE {_q(key)} = ?"
        self.conn.executemany(sql, zip(*values, keys, strict=True))

    def replace(self, table: str, rows: pd.DataFrame | gpd.GeoDataFrame) -> None:
        self.conn.execute(f"DELETE FROM {_q(table)}")
        self.replaced.add(table)
        self.insert(table, rows)


class GeoPackageBackend(Backend):
    """The inventory in one GeoPackage file (the default store)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.target = str(self.path)

    # ------------------------------------------------------------------ reading
    def exists(self) -> bool:
        if not self.path.exists():
            return False
        return set(BOOKKEEPING_TABLES) | {RUN_INFO} <= set(self.list_layers())

    def _check(self) -> Path:
        if not self.path.exists():
            msg = f"store {self.path} does not exist; run `omw-sites run` or `omw-sites db init`"
            raise StoreError(msg)
        if self.path.with_name(self.path.name + "-journal").exists():
            self._recover()
        return self.path

    def _recover(self) -> None:
        """Roll back what a killed writer left (a *hot* rollback journal) before GDAL reads.

        GDAL opens the file read-only, and a read-only SQLite connection cannot roll a hot
        journal back ("attempt to write a readonly database"). A read on a read-write
        connection does it; while a live writer holds the journal, this read just waits
        for its commit (busy timeout) and changes nothing."""
        try:
            conn = sqlite3.connect(self.path, timeout=60)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            msg = f"store {self.path} cannot be recovered after an interrupted write: {exc}"
            raise StoreError(msg) from exc

    def signature(self) -> tuple:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0, 0)
        journal = self.path.with_name(self.path.name + "-journal")
        return (st.st_mtime_ns, st.st_size, st.st_ino, journal.exists())

    def list_layers(self) -> list[str]:
        return [str(name) for name, _ in pyogrio.list_layers(self._check())]

    def columns(self, table: str) -> list[str]:
        info = pyogrio.read_info(self._check(), layer=table)
        return [str(c) for c in info["fields"]]

    def read_layer(
        self,
        name: str,
        columns: Sequence[str] | None = None,
        where: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        read_geometry: bool = True,
        max_features: int | None = None,
        fid_as_index: bool = False,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        path = self._check()
        if name not in self.list_layers():
            msg = f"store {path} has no layer {name!r}"
            raise StoreError(msg)
        kwargs: dict[str, Any] = {"read_geometry": read_geometry, "fid_as_index": fid_as_index}
        if columns is not None:
            kwargs["columns"] = list(columns)
        if where:
            kwargs["where"] = where
        if bbox is not None:
            kwargs["bbox"] = tuple(bbox)
        if max_features is not None:
            kwargs["max_features"] = max_features
        return pyogrio.read_dataframe(path, layer=name, use_arrow=True, **kwargs)

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        conn = sqlite3.connect(f"file:{self._check()}?mode=ro", uri=True, timeout=60)
        try:
            return pd.read_sql_query(sql, conn, params=list(params))
        finally:
            conn.close()

    # ------------------------------------------------------------------ writing
    def init(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        have = set(self.list_layers()) if self.path.exists() else set()
        wanted = {**BOOKKEEPING_TABLES, RUN_INFO: RUN_INFO_COLUMNS}
        for name, cols in wanted.items():
            if name not in have:
                pyogrio.write_dataframe(
                    empty_table(cols), self.path, layer=name, driver="GPKG", append=False
                )
        with self._connect() as conn:
            _create_indexes(conn)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self._check(), timeout=60, isolation_level=None)
        try:
            _register_functions(conn)
            conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("PRAGMA synchronous = FULL")
            # changed pages stay in memory until COMMIT (no mid-transaction spills,
            # each of which syncs the journal and writes pages twice)
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                tx = _GpkgTransaction(self, conn)
                yield tx
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._touch_contents(conn, tx)
            conn.execute("COMMIT")

    @staticmethod
    def _touch_contents(conn: sqlite3.Connection, tx: _GpkgTransaction) -> None:
        """Keep GDAL's cached feature counts and last-change stamps honest: a replaced
        table is counted, an appended one adds what was inserted unless GDAL's own
        triggers count it (no scan of a big table)."""
        tables = [r[0] for r in conn.execute("SELECT table_name FROM gpkg_ogr_contents")]
        counted = {
            r[0].lower()
            for r in conn.execute(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'trigger_insert_feature_count_%'"
            )
        }
        for t in tables:
            if t in tx.replaced:
                conn.execute(
                    "UPDATE gpkg_ogr_contents SET feature_count = (SELECT count(*) FROM "
                    f"{_q(t)}) WHERE table_name = ?",
                    (t,),
                )
            elif tx.inserted.get(t) and t.lower() not in counted:
                conn.execute(
                    "UPDATE gpkg_ogr_contents SET feature_count = feature_count + ? "
                    "WHERE table_name = ?",
                    (tx.inserted[t], t),
                )
        conn.execute("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now')")

    def _remove_orphans(self) -> None:
        """Delete the temporary files of first loads whose process died before the rename
        (a killed load leaves its file, up to the store's size, and maybe its SQLite
        journal; the store is untouched). The writer's PID is in the name; a file of a
        live process is left alone."""
        pattern = f".{glob.escape(self.path.stem)}-*-*.tmp.gpkg*"  # with -journal, -wal …
        for old in self.path.parent.glob(pattern):
            pid = old.name[len(self.path.stem) + 2 :].split("-", 1)[0]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                old.unlink(missing_ok=True)
            except PermissionError:
                pass  # alive, another user's

    def bulk_load(
        self,
        sites: gpd.GeoDataFrame,
        layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
        derive: Derive | None = None,
        check: Callable[[], None] | None = None,
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_orphans()
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{self.path.stem}-{os.getpid()}-", suffix=".tmp.gpkg", dir=self.path.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.unlink()  # GDAL wants to create the file itself
        # the temporary file is fsync'ed before the rename, so SQLite need neither sync
        # nor journal as it builds it; a bigger page cache speeds up writing wide rows
        fast = {
            "OGR_SQLITE_SYNCHRONOUS": "OFF",
            "OGR_SQLITE_JOURNAL": "OFF",
            "OGR_SQLITE_CACHE": "512",
            "OGR_SQLITE_PRAGMA": f"page_size={PAGE_SIZE}",
        }
        pyogrio.set_gdal_config_options(fast)
        try:
            sites = _in_work_crs("sites", sites)
            if not gpkg_bulk.write_features(
                tmp, "sites", sites, _create_layer, derive, sort_by="site_id"
            ):
                _write(tmp, "sites", with_derived(sites, derive))
            for name, frame in layers.items():
                _write(tmp, name, frame)
            pyogrio.set_gdal_config_options({k: None for k in fast})
            # the written tables start going to disk while SQLite sorts the indexes, so
            # the final fsync has little left to flush
            early = threading.Thread(target=gpkg_bulk.fsync_file, args=(tmp,), name="omw-fsync")
            early.start()
            conn = sqlite3.connect(tmp)
            try:
                # sorting for the attribute indexes in memory, not in temp files
                conn.execute("PRAGMA cache_size = -262144")
                conn.execute("PRAGMA temp_store = MEMORY")
                conn.execute("PRAGMA journal_mode = OFF")
                conn.execute("PRAGMA synchronous = OFF")
                _create_indexes(conn)
            finally:
                conn.close()
                early.join()
            if check is not None:
                check()  # raising leaves the store as it was (the temporary file goes)
            gpkg_bulk.fsync_file(tmp)  # make the bytes durable before the rename
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            pyogrio.set_gdal_config_options({k: None for k in fast})
            tmp.unlink(missing_ok=True)
            raise


# attribute indexes the inventory's lookups use (GDAL creates only the spatial one)
INDEXES = {
    "sites": ("site_id", "updated_at"),
    "site_history": ("site_id", "changed_at"),
}


def _create_indexes(conn: sqlite3.Connection) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table, columns in INDEXES.items():
        if table not in tables:
            continue
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({_q(table)})")}
        for col in columns:
            if col in have:
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {_q(f'idx_{table}_{col}')} "
                    f"ON {_q(table)} ({_q(col)})"
                )
    conn.commit()


def _create_layer(path: Path, name: str, empty: gpd.GeoDataFrame, geometry_type: str) -> None:
    """An empty layer and its attribute indexes, kept up as rows are appended: cheaper
    than indexing 1M rows after (two scans of a 1 GB table)."""
    _write(path, name, empty, geometry_type)
    conn = sqlite3.connect(path)
    try:
        _create_indexes(conn)
    finally:
        conn.close()


def _in_work_crs(name: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if frame.crs is None:
        msg = f"layer {name!r} has no CRS; refusing to write it to the store"
        raise StoreError(msg)
    return frame.to_crs(WORK_CRS) if frame.crs.to_epsg() != SRS_ID else frame


def _write(
    path: Path,
    name: str,
    frame: pd.DataFrame | gpd.GeoDataFrame,
    geometry_type: str | None = None,
) -> None:
    if isinstance(frame, gpd.GeoDataFrame) and "geometry" in frame.columns:
        pyogrio.write_dataframe(
            _in_work_crs(name, frame),
            path,
            layer=name,
            driver="GPKG",
            use_arrow=True,
            promote_to_multi=None,
            geometry_type=geometry_type,
        )
    else:
        pyogrio.write_dataframe(pd.DataFrame(frame), path, layer=name, driver="GPKG")
