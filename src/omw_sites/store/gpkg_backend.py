"""GeoPackage backend: one SQLite file that opens in QGIS; SQLite transactions for updates.

Reads go through GDAL (pyogrio, Arrow). Writes inside :meth:`GeoPackageBackend.transaction`
go through one ``sqlite3`` connection and one ``BEGIN IMMEDIATE … COMMIT``: SQLite's
rollback journal makes them all-or-nothing even when the process is killed (the next open
rolls a hot journal back), and readers in other processes see the state before or after.
Geometries are written as GeoPackage binary blobs (header with envelope + ISO WKB); the
``ST_*`` functions GDAL's R-tree triggers call are registered on the connection, so the
spatial index stays exact. A first load (:meth:`bulk_load`) writes a new file with GDAL
(pyogrio, Arrow; GDAL builds the R-tree once at the end) and renames it over the old one
while holding the old one's write lock.

Within a process, GDAL and ``sqlite3`` never use the store file at the same time (see
:class:`FileGate` for why). A one-row table ``store_meta`` holds the store's version,
raised by every commit; writers that read the store pass the version they read and are
refused (:class:`~omw_sites.store.base.StoreConflict`) if another writer committed in
between. A unique index allows one current record per site ID. New store files are
created with mode 0600. Storage errors (locked, disk full, no permission, damaged file)
become one-line :class:`~omw_sites.store.base.StoreError` exceptions.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import shutil
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors

from omw_sites.layers import GPKG_SQL_KIND, RUN_INFO, WORK_CRS
from omw_sites.store.base import (
    BOOKKEEPING_TABLES,
    ENQUIRY_TABLES,
    RUN_INFO_COLUMNS,
    Backend,
    Derive,
    StoreConflict,
    StoreError,
    Transaction,
    duplicates_message,
    empty_table,
    lock_timeout_setting,
    with_derived,
)
from omw_sites.store.gpkg_geometry import SRS_ID, gpkg_blobs, register_functions

log = logging.getLogger(__name__)

# bytes per SQLite page of a loaded store: larger pages load faster, but an update
# journals each whole page it touches (one per changed site), and updates are the everyday
# operation
PAGE_SIZE = 4096
CACHE_KIB = 1_048_576  # page cache of a writing connection (an upper bound, not an allocation)

META = "store_meta"  # one row: the store's version (see Backend.version)
CURRENT_INDEX = "idx_sites_current_site_id"  # unique: one current record per site ID
FILE_MODE = 0o600  # a new store holds contacts and internal document links: owner only
REOPEN_ATTEMPTS = 5  # times a writer follows a store replaced while it waited for its lock


# ---------------------------------------------------------------- one SQLite discipline
class FileGate:
    """Keeps GDAL and Python's ``sqlite3`` apart on one store file within this process.

    Reads go through GDAL (pyogrio), which carries its own copy of SQLite; writes go
    through Python's ``sqlite3``, another copy. SQLite locks a file with POSIX advisory
    locks, which belong to the process, and closing *any* descriptor of the file drops
    all of them. One copy of SQLite knows this and keeps its descriptors open while one
    of its connections holds a lock, but it knows nothing of the other copy: GDAL closing
    its descriptor after a read while a ``sqlite3`` transaction holds the write lock
    silently releases that lock, another process then writes at the same time, and
    COMMITs fail with "disk I/O error", commits are lost or the file is damaged.

    So, within a process, a store file is used by GDAL or by ``sqlite3``, never both at
    once: any number of GDAL reads together, or any number of ``sqlite3`` connections
    together (one SQLite copy manages its own), and a kind waits until the other's last
    user is out; when both wait, they take turns, so neither starves. Reading through
    ``sqlite3`` instead would need a decoder of every column and geometry as fast as
    GDAL's Arrow reader; the gate costs nothing when the other kind is not busy. A thread
    that holds one kind and asks for the other would break the rule (and wait for
    itself): that is an error."""

    KINDS = ("gdal", "sqlite")

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside: str | None = None  # the kind using the file
        self._count = 0  # how many of it
        self._waiting = dict.fromkeys(self.KINDS, 0)
        self._last: str | None = None  # the kind that entered last (for taking turns)
        self._held = threading.local()  # this thread's (kind, depth)

    @contextmanager
    def hold(self, kind: str) -> Iterator[None]:
        held = getattr(self._held, "state", None)
        if held is not None:  # re-entered by the same thread
            if held[0] != kind:
                msg = (
                    f"a {kind} access to a store file inside a {held[0]} one in the same "
                    "thread (GDAL and sqlite3 must not use one file at once)"
                )
                raise StoreError(msg)
            self._held.state = (kind, held[1] + 1)
            try:
                yield
            finally:
                self._held.state = held
            return
        other = self.KINDS[1 - self.KINDS.index(kind)]
        with self._cond:
            self._waiting[kind] += 1
            try:
                while not self._may_enter(kind, other):
                    self._cond.wait()
            finally:
                self._waiting[kind] -= 1
            self._inside, self._last = kind, kind
            self._count += 1
        self._held.state = (kind, 1)
        try:
            yield
        finally:
            self._held.state = None
            with self._cond:
                self._count -= 1
                if not self._count:
                    self._inside = None
                self._cond.notify_all()

    def _may_enter(self, kind: str, other: str) -> bool:
        if self._count:
            # the same kind joins unless the other one is waiting for its turn
            return self._inside == kind and not self._waiting[other]
        return not self._waiting[other] or self._last != kind


_GATES: dict[str, FileGate] = {}
_GATES_LOCK = threading.Lock()


def gate(path: str | Path) -> FileGate:
    """The process's :class:`FileGate` of the file at ``path`` (by its real path)."""
    key = os.path.realpath(path)
    with _GATES_LOCK:
        found = _GATES.get(key)
        if found is None:
            found = _GATES[key] = FileGate()
        return found


# ---------------------------------------------------------------- storage errors
_STORAGE_ERRORS = (
    sqlite3.Error,
    OSError,
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
)


def storage_error(target: str, action: str, exc: BaseException, timeout: float) -> StoreError:
    """One line for a failed access to the GeoPackage ``target``: what was being done and
    why, in words (locked by another writer, disk full, no permission, damaged file)."""
    cause = exc
    while cause.__cause__ is not None and isinstance(cause.__cause__, _STORAGE_ERRORS):
        cause = cause.__cause__  # pandas wraps sqlite3's errors
    name = getattr(cause, "sqlite_errorname", "") or ""
    text = " ".join(str(cause).split())
    low = text.lower()
    code = getattr(cause, "errno", None)
    if name.startswith("SQLITE_BUSY") or "database is locked" in low:
        why = (
            f"another process has held its lock for more than {timeout:g} s "
            "(a long update or a stuck writer); nothing was written, try again later"
        )
    elif name.startswith("SQLITE_FULL") or code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        why = "the disk is full (or the file size limit reached); nothing was written"
    elif (
        name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH"))
        or code in (errno.EACCES, errno.EPERM, errno.EROFS)
        or "permission denied" in low
    ):
        why = f"permission denied or read-only ({text})"
    elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "not recognized" in low:
        why = f"the file is damaged or not a GeoPackage ({text})"
    elif name.startswith("SQLITE_CONSTRAINT_UNIQUE") and "site_id" in low:
        why = f"it would hold two current records of one site ID ({text})"
    elif name.startswith("SQLITE_IOERR") or "disk i/o error" in low:
        why = f"input/output error: the disk is failing or full ({text})"
    elif name.startswith("SQLITE_CANTOPEN") or code == errno.ENOENT:
        why = f"the file cannot be opened ({text})"
    else:
        why = text or type(cause).__name__
    return StoreError(f"{action} store {target} failed: {why}")


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

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return pd.read_sql_query(sql, self.conn, params=list(params))

    def conditional_update(
        self, table: str, fid: int, values: Mapping[str, Any], expect: Mapping[str, Any]
    ) -> int:
        if not values:
            return 0
        sets = ", ".join(f"{_q(n)} = ?" for n in values)
        # ``IS`` is SQLite's NULL-safe equality
        conds = "".join(f" AND {_q(n)} IS ?" for n in expect)
        cur = self.conn.execute(
            f"UPDATE {_q(table)} SET {sets} WHERE fid = ?{conds}",
            (*values.values(), int(fid), *expect.values()),
        )
        return cur.rowcount


class GeoPackageBackend(Backend):
    """The inventory in one GeoPackage file (the default store)."""

    def __init__(self, path: str | Path, lock_timeout: float | None = None) -> None:
        self.path = Path(path)
        self.target = str(self.path)
        #: seconds a writer waits for another one's lock before giving up
        self.lock_timeout = lock_timeout_setting() if lock_timeout is None else lock_timeout

    # ------------------------------------------------------------------ access
    @contextmanager
    def _using(self, kind: str, action: str) -> Iterator[None]:
        """Hold the file's :class:`FileGate` for ``kind`` (``"gdal"`` or ``"sqlite"``) and
        turn the storage errors of the block into one-line :class:`StoreError` exceptions."""
        with gate(self.path).hold(kind):
            try:
                yield
            except StoreError:
                raise
            except _STORAGE_ERRORS as exc:
                raise self._error(action, exc) from exc

    def _error(self, action: str, exc: BaseException) -> StoreError:
        return storage_error(self.target, action, exc, self.lock_timeout)

    # ------------------------------------------------------------------ reading
    def exists(self) -> bool:
        try:
            if self.path.stat().st_size == 0:  # e.g. touched: nothing in it to keep
                return False
        except FileNotFoundError:
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
        with self._using("sqlite", "recovering an interrupted write of"):
            conn = sqlite3.connect(self.path, timeout=self.lock_timeout)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                _close(conn)

    def signature(self) -> tuple:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0, 0)
        journal = self.path.with_name(self.path.name + "-journal")
        return (st.st_mtime_ns, st.st_size, st.st_ino, journal.exists())

    def version(self) -> int:
        if not self.path.exists():
            return 0
        path = self._check()
        with self._using("sqlite", "reading the version of"):
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=self.lock_timeout)
            try:
                return _read_version(conn)
            finally:
                _close(conn)

    def list_layers(self) -> list[str]:
        path = self._check()
        with self._using("gdal", "listing the layers of"):
            return [str(name) for name, _ in pyogrio.list_layers(path)]

    def columns(self, table: str) -> list[str]:
        path = self._check()
        with self._using("gdal", f"reading the columns of {table!r} in"):
            info = pyogrio.read_info(path, layer=table)
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
        kwargs: dict[str, Any] = {"read_geometry": read_geometry, "fid_as_index": fid_as_index}
        if columns is not None:
            kwargs["columns"] = list(columns)
        if where:
            kwargs["where"] = where
        if bbox is not None:
            kwargs["bbox"] = tuple(bbox)
        if max_features is not None:
            kwargs["max_features"] = max_features
        with self._using("gdal", f"reading layer {name!r} of"):
            if name not in {str(n) for n, _ in pyogrio.list_layers(path)}:
                msg = f"store {path} has no layer {name!r}"
                raise StoreError(msg)
            return pyogrio.read_dataframe(path, layer=name, use_arrow=True, **kwargs)

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        path = self._check()
        with self._using("sqlite", "a query on"):
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=self.lock_timeout)
            try:
                return pd.read_sql_query(sql, conn, params=list(params))
            finally:
                _close(conn)

    # ------------------------------------------------------------------ writing
    def init(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._create()
        path = self._check()
        wanted = {**BOOKKEEPING_TABLES, RUN_INFO: RUN_INFO_COLUMNS, **ENQUIRY_TABLES}
        with self._using("gdal", "initialising"):
            have = {str(name) for name, _ in pyogrio.list_layers(path)}
            missing = [name for name in wanted if name not in have]
            for name in missing:
                pyogrio.write_dataframe(
                    empty_table(wanted[name]), path, layer=name, driver="GPKG", append=False
                )
        with self._connect("initialising") as conn:
            if not missing and _ready(conn, self.target):
                return  # nothing to do: no write, so readers see no change
            try:
                conn.execute("BEGIN IMMEDIATE")
                changed = _ensure_meta(conn)
                changed = _create_indexes(conn, self.target) or changed
                if changed or missing:
                    _bump(conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise self._error("initialising", exc) from exc

    def _create(self) -> None:
        """A new, empty store file: made in a private folder, given mode 0600 and linked
        into place (so it is never readable by others, and a store another process made
        meanwhile is kept)."""
        with self._private_folder() as folder:
            tmp = folder / self.path.name
            try:
                pyogrio.write_dataframe(
                    empty_table(RUN_INFO_COLUMNS), tmp, layer=RUN_INFO, driver="GPKG"
                )
                os.chmod(tmp, FILE_MODE)
                fsync_file(tmp)
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    return
            except _STORAGE_ERRORS as exc:
                raise self._error("creating", exc) from exc
            _fsync_folder(self.path.parent)

    @contextmanager
    def _private_folder(self) -> Iterator[Path]:
        """A folder only this user can enter, beside the store (same file system, so its
        files can be renamed over the store); removed afterwards."""
        try:
            folder = Path(
                tempfile.mkdtemp(
                    prefix=f".{self.path.stem}-{os.getpid()}-",
                    suffix=".tmp.gpkg.d",
                    dir=self.path.parent,
                )
            )
        except OSError as exc:
            raise self._error("creating a temporary folder beside", exc) from exc
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def _connect(self, action: str) -> Iterator[sqlite3.Connection]:
        """A read-write ``sqlite3`` connection, the file's gate held while it is open."""
        path = self._check()
        with gate(self.path).hold("sqlite"):
            try:
                conn = sqlite3.connect(path, timeout=self.lock_timeout, isolation_level=None)
            except sqlite3.Error as exc:
                raise self._error(action, exc) from exc
            try:
                try:
                    register_functions(conn)
                    conn.execute("PRAGMA journal_mode = DELETE")
                    conn.execute("PRAGMA synchronous = FULL")
                    # changed pages stay in memory until COMMIT (no mid-transaction
                    # spills, each of which syncs the journal and writes pages twice)
                    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                except sqlite3.Error as exc:
                    raise self._error(action, exc) from exc
                yield conn
            finally:
                _close(conn)

    @contextmanager
    def _begin(self, expect_version: int | None) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE`` (the write lock) on the file that is the
        store now, at ``expect_version`` if given."""
        for _ in range(REOPEN_ATTEMPTS):
            before = _file_id(self.path)
            with self._connect("starting a write to") as conn:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise self._error("starting a write to", exc) from exc
                try:
                    # a first load may have renamed a new file over the store while this
                    # connection waited for the old file's lock: write to the new one
                    if _file_id(self.path) != before:
                        _rollback(conn)
                        continue
                    _ensure_meta(conn)
                    if expect_version is not None:
                        found = _read_version(conn)
                        if found != expect_version:
                            msg = (
                                f"store {self.target} changed meanwhile (version "
                                f"{found}, not {expect_version}); nothing was written"
                            )
                            raise StoreConflict(msg)
                except BaseException as exc:
                    _rollback(conn)
                    if isinstance(exc, sqlite3.Error):
                        raise self._error("starting a write to", exc) from exc
                    raise
                yield conn
                return
        msg = f"store {self.target} kept being replaced while waiting to write to it"
        raise StoreConflict(msg)

    @contextmanager
    def transaction(self, expect_version: int | None = None) -> Iterator[Transaction]:
        with self._begin(expect_version) as conn:
            tx = _GpkgTransaction(self, conn)
            try:
                yield tx
            except BaseException as exc:
                _rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise self._error("a write to", exc) from exc
                raise
            try:
                _bump(conn)
                self._touch_contents(conn, tx)
                conn.execute("COMMIT")
            except BaseException as exc:
                _rollback(conn)  # not committed: SQLite undoes what it had written
                if isinstance(exc, sqlite3.Error):
                    raise self._error("committing a write to", exc) from exc
                raise
            # committed: nothing after this point may report the write as failed (the
            # connection's close in _connect logs its errors instead of raising them)

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
        """Delete the temporary files and folders of first loads whose process died before
        the rename (a killed load leaves its file, up to the store's size, and maybe its
        SQLite journal; the store is untouched). The writer's PID is in the name; those
        of a live process are left alone."""
        pattern = f".{glob.escape(self.path.stem)}-*-*.tmp.gpkg*"  # with -journal, .d …
        for old in self.path.parent.glob(pattern):
            pid = old.name[len(self.path.stem) + 2 :].split("-", 1)[0]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)
            except PermissionError:
                pass  # alive, another user's

    def bulk_load(
        self,
        sites: gpd.GeoDataFrame,
        layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
        derive: Derive | None = None,
        check: Callable[[], None] | None = None,
        expect_version: int | None = None,
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_orphans()
        base = self.version() if expect_version is None else expect_version
        with self._private_folder() as folder:
            tmp = folder / self.path.name
            try:
                self._build(tmp, sites, layers, derive, base + 1)
            except StoreError:
                raise
            except _STORAGE_ERRORS as exc:
                if check is not None:
                    check()  # a repeated site ID (the unique index refused it) said clearly
                raise self._error("a first load of", exc) from exc
            if check is not None:
                check()  # raising leaves the store as it was (the temporary file goes)
            try:
                fsync_file(tmp)  # make the bytes durable before the rename
            except OSError as exc:
                raise self._error("a first load of", exc) from exc
            self._swap(tmp, expect_version, base + 1)

    def _build(
        self,
        tmp: Path,
        sites: gpd.GeoDataFrame,
        layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
        derive: Derive | None,
        version: int,
    ) -> None:
        """Write the whole new store to ``tmp`` (at ``version``)."""
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
            _write(tmp, "sites", with_derived(sites, derive))
            for name, frame in layers.items():
                _write(tmp, name, frame)
        finally:
            pyogrio.set_gdal_config_options({k: None for k in fast})
        # the written tables start going to disk while SQLite sorts the indexes, so
        # the final fsync has little left to flush
        early = threading.Thread(target=fsync_file, args=(tmp,), name="omw-fsync")
        early.start()
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # sorting for the attribute indexes in memory, not in temp files
            conn.execute("PRAGMA cache_size = -262144")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            _create_indexes(conn, str(tmp), new=True)
            _ensure_meta(conn)
            conn.execute(f"UPDATE {META} SET version = ?", (version,))
        finally:
            conn.close()
            early.join()
        os.chmod(tmp, FILE_MODE)

    def _swap(self, tmp: Path, expect_version: int | None, version: int) -> None:
        """Rename ``tmp`` (at ``version``) over the store, holding the store's write lock
        (no writer can commit to the old file in between), if the store is still at
        ``expect_version``."""
        for _ in range(REOPEN_ATTEMPTS):
            if not self.path.exists():
                if expect_version not in (None, 0):
                    msg = f"store {self.target} was removed while it was being loaded"
                    raise StoreConflict(msg)
                try:
                    os.link(tmp, self.path)  # only if there is still no store
                except FileExistsError:
                    continue
                except OSError as exc:
                    raise self._error("a first load of", exc) from exc
                _fsync_folder(self.path.parent)  # done: its errors are only logged
                return
            before = _file_id(self.path)
            try:
                with self._connect("replacing") as conn:
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                        if _file_id(self.path) != before:
                            continue  # replaced meanwhile: lock the new file
                        found = _read_version(conn)
                        if expect_version is not None and found != expect_version:
                            msg = (
                                f"store {self.target} changed while it was being loaded "
                                f"(version {found}, not {expect_version}); not replaced"
                            )
                            raise StoreConflict(msg)
                        if found >= version:  # no version expected: stay above the old one
                            _set_version(tmp, found + 1)
                        old_mode = stat.S_IMODE(os.stat(self.path).st_mode)
                        os.chmod(tmp, FILE_MODE | (old_mode & 0o060))
                        os.replace(tmp, self.path)  # the commit of a first load
                    finally:
                        _rollback(conn)
            except (sqlite3.Error, OSError) as exc:
                raise self._error("replacing", exc) from exc
            _fsync_folder(self.path.parent)  # done: its errors are only logged
            return
        msg = f"store {self.target} kept being replaced during a first load"
        raise StoreConflict(msg)


# ---------------------------------------------------------------- bookkeeping helpers
def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def fsync_file(path: Path) -> None:
    """Flush ``path``'s written pages to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable. It runs after the rename, which is the commit
    of a first load: a failure is logged, not reported as a failed load."""
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        log.warning("syncing folder %s after a rename failed", folder, exc_info=True)


def _close(conn: sqlite3.Connection) -> None:
    """Close without raising: once a transaction committed (or rolled back), a failing
    close must not turn into a reported error."""
    try:
        conn.close()
    except sqlite3.Error:  # pragma: no cover - SQLite's close does not fail in practice
        log.warning("closing a connection failed", exc_info=True)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:  # SQLite rolled back itself (after I/O errors)
            pass


def _ensure_meta(conn: sqlite3.Connection) -> bool:
    """The one-row version table (inside a write transaction); True if it had to be made.
    It is not registered in ``gpkg_contents``, so GDAL and QGIS do not list it."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (META,)
    ).fetchone()
    if found:
        return False
    conn.execute(f"CREATE TABLE {META} (version INTEGER NOT NULL)")
    conn.execute(f"INSERT INTO {META} (version) VALUES (0)")
    return True


def _read_version(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute(f"SELECT max(version) FROM {META}").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0  # a store from before versions were kept
        raise
    return int(row[0] or 0)


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute(f"UPDATE {META} SET version = version + 1")


def _set_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"UPDATE {META} SET version = ?", (version,))
    finally:
        conn.close()
    fsync_file(path)


def _ready(conn: sqlite3.Connection, target: str) -> bool:
    """True when the store has its version table and every index :func:`_create_indexes`
    would make (the unique one only where it can be made)."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    if META not in names:
        return False
    for table, columns in INDEXES.items():
        if table not in names:
            continue
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({_q(table)})")}
        if any(f"idx_{table}_{c}" not in names for c in columns if c in have):
            return False
    if "sites" in names and CURRENT_INDEX not in names:
        have = {r[1] for r in conn.execute("PRAGMA table_info(sites)")}
        if {"site_id", "ended_at"} <= have:
            twice = _duplicate_current(conn)
            if not twice:
                return False
            log.warning(duplicates_message(target, twice))  # said on every init
    return True


def _duplicate_current(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT site_id FROM sites WHERE ended_at IS NULL GROUP BY site_id "
        "HAVING count(*) > 1 ORDER BY site_id"
    ).fetchall()
    return [str(r[0]) for r in rows]


# attribute indexes the inventory's lookups use (GDAL creates only the spatial one)
INDEXES = {
    "sites": ("site_id", "updated_at"),
    "site_history": ("site_id", "changed_at"),
}


def _create_indexes(conn: sqlite3.Connection, target: str, new: bool = False) -> bool:
    """The lookup indexes and the unique index on current site IDs (where the tables have
    the columns); True if any was made. A store that already holds two current records
    of one site ID gets a warning naming them instead of the unique index; a ``new``
    store being loaded is refused (:class:`sqlite3.IntegrityError`)."""
    made = False
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    for table, columns in INDEXES.items():
        if table not in tables:
            continue
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({_q(table)})")}
        for col in columns:
            name = f"idx_{table}_{col}"
            if col in have and name not in indexes:
                conn.execute(f"CREATE INDEX {_q(name)} ON {_q(table)} ({_q(col)})")
                made = True
    if "sites" in tables and CURRENT_INDEX not in indexes:
        have = {r[1] for r in conn.execute("PRAGMA table_info(sites)")}
        if {"site_id", "ended_at"} <= have:
            try:
                conn.execute(
                    f"CREATE UNIQUE INDEX {CURRENT_INDEX} ON sites (site_id) WHERE ended_at IS NULL"
                )
                made = True
            except sqlite3.IntegrityError:
                if new:
                    raise
                log.warning(duplicates_message(target, _duplicate_current(conn)))
    return made


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
