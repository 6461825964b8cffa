"""PostGIS store: the inventory in one schema of a PostgreSQL database, via psycopg 3.

Every table has ``fid bigserial primary key``; spatial ones (``sites`` and the reference
layers) also ``geom geometry(Geometry, 2180)`` with a GiST index. Data moves in with
psycopg's ``COPY … FROM STDIN`` (binary, one ``write_row`` per row, geometry as WKB) and
out with ``COPY … TO STDOUT`` in CSV form parsed by pyarrow. A one-row ``store_meta``
table holds a version counter bumped by every write (its row lock and a transaction-level
advisory lock serialise the writers); :meth:`PostGISBackend.signature` and
:meth:`PostGISBackend.version` read it. A unique partial index allows one current record
per site ID. Driver errors become one-line :class:`~omw_sites.store.base.StoreError`
exceptions (lock timeout ``OMW_LOCK_TIMEOUT``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql

from omw_sites.store.base import (
    BOOKKEEPING_TABLES,
    ENQUIRY_TABLES,
    RUN_INFO_COLUMNS,
    Backend,
    Derive,
    StagedLayer,
    StagedLoad,
    StagedSites,
    StoreConflict,
    StoreError,
    Transaction,
    duplicates_message,
    kind_of,
    lock_timeout_setting,
    with_derived,
)
from omw_sites.store.hashing import layer_digest

log = logging.getLogger(__name__)

SRID = 2180
RUN_INFO = "run_info"
META = "store_meta"
CURRENT_INDEX = "sites_current_site_id_key"  # unique: one current record per site ID
FID = "fid"
GEOM = "geom"
#: column kind → PostgreSQL type
PG_TYPES = {"text": "text", "float": "double precision", "int": "bigint", "bool": "boolean"}
ARROW_TYPES = {"text": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
#: column kind → the type psycopg dumps it as in a binary COPY (WKB goes as bytea: the
#: server's geometry receive function reads WKB, and plain WKB takes the column's SRID)
COPY_TYPES = {"text": "text", "float": "float8", "int": "int8", "bool": "bool", "wkb": "bytea"}
#: rows converted to Python values at a time: bounds client memory on large loads
CHUNK_ROWS = 20_000
# attribute indexes the inventory's lookups use: a site's record and history by ID, the
# change feed by time (the GeoPackage backend keeps the same ones)
_INDEXED = {"sites": ["site_id", "updated_at"], "site_history": ["site_id", "changed_at"]}
# what an update reads of every current site (Inventory._current), in one partial index
_CURRENT_COVER = ("site_id", "teryt", "content_hash", "scores_hash")


def _kind_of_pg(type_name: str) -> str:
    """Column kind of a PostgreSQL type name (``format_type`` output)."""
    if type_name.startswith("geometry"):
        return "geometry"
    if type_name in {"double precision", "real"} or type_name.startswith("numeric"):
        return "float"
    if type_name in {"bigint", "integer", "smallint"}:
        return "int"
    if type_name == "boolean":
        return "bool"
    return "text"


def _wider(a: str, b: str) -> str:
    """The kind that holds values of kinds ``a`` and ``b`` (text holds any)."""
    if a == b:
        return a
    if {a, b} <= {"int", "float", "bool"}:
        return "float" if "float" in (a, b) else "int"
    return "text"


def display_url(url: str) -> str:
    """``url`` without its password (for messages and :attr:`PostGISBackend.target`)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", url)
    user = f"{info['user']}@" if info.get("user") else ""
    host = info.get("host") or info.get("hostaddr") or ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{host}{port}/{info.get('dbname', '')}"


def translate_placeholders(query: str) -> str:
    """``?`` placeholders → psycopg ``%s`` (outside quotes); literal ``%`` → ``%%``."""
    out: list[str] = []
    quote: str | None = None
    for ch in query:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


class _Table:
    """Columns of one table as stored: ``{name: kind}`` (without fid) and the geometry."""

    def __init__(self, name: str, types: dict[str, str]) -> None:
        self.name = name
        self.spatial = _kind_of_pg(types.pop(GEOM, "")) == "geometry"
        self.types = types  # PostgreSQL type names
        self.kinds = {c: _kind_of_pg(t) for c, t in types.items()}

    def binary_ok(self, columns: Sequence[str]) -> bool:
        """True when ``columns`` have the types the store creates (binary COPY writes
        those; a table made elsewhere, e.g. with ``varchar`` or ``integer``, gets text)."""
        return all(self.types[c] == PG_TYPES[self.kinds[c]] for c in columns)


# ---------------------------------------------------------------- frames → COPY rows


def _split_geometry(frame: pd.DataFrame, table: str) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Attribute columns and geometry array (EPSG:2180) of ``frame``."""
    name = None
    if isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name in frame.columns:
        name = frame._geometry_column_name
        crs = frame.crs
        if crs is None:
            msg = f"layer {table!r} has no CRS; refusing to write it to the store"
            raise StoreError(msg)
        if crs.to_epsg() != SRID:
            frame = frame.to_crs(SRID)
    elif "geometry" in frame.columns:
        name = "geometry"
    if name is None:
        return frame, None
    geoms = np.asarray(frame[name], dtype=object)
    return frame.drop(columns=[name]), geoms


def _text_array(series: pd.Series) -> pa.Array:
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return pa.array(values.astype(object).where(series.notna(), None), type=pa.string())
    try:
        return pa.array(series, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        values = [
            None if v is None or (isinstance(v, float) and v != v) else str(v) for v in series
        ]
        return pa.array(values, type=pa.string())


def _arrow_column(series: pd.Series, kind: str, where: str) -> pa.Array:
    """``series`` as an Arrow array of ``kind`` (NaN/NA become NULL); one clear error for
    values the kind cannot hold."""
    if kind == "text":
        return _text_array(series)
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    try:
        return pa.array(series, type=ARROW_TYPES[kind], from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        msg = f"{where}: column {series.name!r} cannot be stored as {kind}: {err}"
        raise StoreError(msg) from err


def _copy_rows(
    conn: psycopg.Connection,
    target: sql.Composable,
    attrs: pd.DataFrame,
    kinds: Mapping[str, str],
    geoms: np.ndarray | None,
    where: str,
    *,
    binary: bool = True,
    fid_start: int | None = None,
    freeze: bool = False,
) -> None:
    """``COPY target FROM STDIN`` of ``attrs`` (``kinds`` order), then the geometry.

    With ``fid_start`` the rows get ``fid`` values counting from it. Binary COPY (psycopg
    dumps every value as its column kind) or, for tables of other column types, text
    COPY (the server parses every value; geometry goes as hex WKB).
    """
    columns = ({FID: "int"} if fid_start is not None else {}) | dict(kinds)
    columns |= {GEOM: "wkb"} if geoms is not None else {}
    options = "FORMAT binary" if binary else "FORMAT text"
    stmt = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(
        target,
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.SQL(options + (", FREEZE" if freeze else "")),
    )
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        if binary:
            copy.set_types([COPY_TYPES[k] for k in columns.values()])
        for start in range(0, len(attrs), CHUNK_ROWS):
            part = attrs.iloc[start : start + CHUNK_ROWS]
            values: list[Sequence[Any]] = []
            if fid_start is not None:
                values.append(range(fid_start + start, fid_start + start + len(part)))
            values += [_arrow_column(part[c], k, where).to_pylist() for c, k in kinds.items()]
            if geoms is not None:
                values.append(shapely.to_wkb(geoms[start : start + CHUNK_ROWS], hex=not binary))
            for row in zip(*values, strict=True):
                copy.write_row(row)


# ---------------------------------------------------------------- CSV from COPY → frames


def _read_csv(data: bytes, names: list[str], kinds: list[str]) -> pa.Table:
    types = {f"c{i}": ARROW_TYPES.get(k, pa.string()) for i, k in enumerate(kinds)}
    cols = list(types)
    if not data:
        return pa.Table.from_arrays([pa.array([], type=types[c]) for c in cols], names=names)
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=cols, block_size=1 << 26),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    return table.rename_columns(names)


class _PgTransaction(Transaction):
    def __init__(self, backend: PostGISBackend, conn: psycopg.Connection) -> None:
        self.backend = backend
        self.conn = conn

    def _table(self, table: str) -> _Table:
        return self.backend._describe(self.conn, table)

    def add_columns(self, table: str, columns: Mapping[str, str]) -> None:
        self._table(table)  # must exist
        ident = self.backend._ident(table)
        for name, kind in columns.items():
            if kind not in PG_TYPES:
                msg = f"column {name!r}: unknown kind {kind!r} (text, float, int, bool)"
                raise StoreError(msg)
            self.conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    ident, sql.Identifier(name), sql.SQL(PG_TYPES[kind])
                )
            )

    def _prepare(
        self, table: str, rows: pd.DataFrame
    ) -> tuple[_Table, pd.DataFrame, dict[str, str], np.ndarray | None]:
        info = self._table(table)
        attrs, geoms = _split_geometry(rows, table)
        unknown = [c for c in attrs.columns if c not in info.kinds]
        if unknown:
            msg = f"table {table!r} has no column(s) {unknown}; call add_columns first"
            raise StoreError(msg)
        if geoms is not None and not info.spatial:
            msg = f"table {table!r} has no geometry column"
            raise StoreError(msg)
        kinds = {c: info.kinds[c] for c in attrs.columns}
        return info, attrs, kinds, geoms

    def insert(self, table: str, rows: pd.DataFrame | gpd.GeoDataFrame) -> None:
        if len(rows) == 0:
            self._table(table)
            return
        info, attrs, kinds, geoms = self._prepare(table, rows)
        _copy_rows(
            self.conn,
            self.backend._ident(table),
            attrs,
            kinds,
            geoms,
            f"insert into {table}",
            binary=info.binary_ok(list(kinds)),
        )

    def update(self, table: str, key: str, rows: pd.DataFrame) -> None:
        info = self._table(table)
        by_fid = key == "fid" and info.spatial  # the feature id every spatial table has
        if key not in rows.columns or (key not in info.kinds and not by_fid):
            msg = f"update of {table!r}: key column {key!r} missing from the rows or the table"
            raise StoreError(msg)
        if len(rows) == 0:
            return
        if by_fid:
            _, attrs, kinds, geoms = self._prepare(table, rows.drop(columns=[key]))
            attrs = attrs.copy()
            attrs.insert(0, key, rows[key].to_numpy(dtype="int64"))
            kinds = {key: "int", **kinds}
        else:
            _, attrs, kinds, geoms = self._prepare(table, rows)
        tmp = sql.Identifier(f"omw_upd_{uuid.uuid4().hex[:12]}")
        defs = [
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(PG_TYPES[k]))
            for c, k in kinds.items()
        ]
        if geoms is not None:
            defs.append(sql.SQL("{} geometry(Geometry, 2180)").format(sql.Identifier(GEOM)))
        self.conn.execute(
            sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
                tmp, sql.SQL(", ").join(defs)
            )
        )
        _copy_rows(self.conn, tmp, attrs, kinds, geoms, f"update of {table}")
        self.conn.execute(sql.SQL("ANALYZE {}").format(tmp))
        targets = [c for c in kinds if c != key] + ([GEOM] if geoms is not None else [])
        if not targets:
            return
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = s.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in targets
        )
        self.conn.execute(
            sql.SQL("UPDATE {} AS t SET {} FROM {} AS s WHERE t.{} = s.{}").format(
                self.backend._ident(table),
                assignments,
                tmp,
                sql.Identifier(key),
                sql.Identifier(key),
            )
        )
        self.conn.execute(sql.SQL("DROP TABLE {}").format(tmp))

    def replace(self, table: str, rows: pd.DataFrame | gpd.GeoDataFrame | StagedLayer) -> None:
        if isinstance(rows, StagedLayer):
            self._adopt(table, rows)
            return
        self._table(table)
        self.conn.execute(sql.SQL("DELETE FROM {}").format(self.backend._ident(table)))
        self.insert(table, rows)

    def _adopt(self, table: str, staged: StagedLayer) -> None:
        """Replace ``table``'s rows by its staged copy's, inside the database (the rows
        never come to this process); a table the store lacks is moved in whole."""
        source = self.backend._describe(self.conn, table, staged.schema)
        ident = self.backend._ident(table)
        try:
            info = self._table(table)
        except StoreError:  # a layer this store has not held yet
            self.conn.execute(
                sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                    sql.Identifier(staged.schema, table), sql.Identifier(self.backend.schema)
                )
            )
            return
        self.add_columns(table, {c: k for c, k in source.kinds.items() if c not in info.kinds})
        cols = [sql.Identifier(c) for c in [*source.kinds, *([GEOM] if source.spatial else [])]]
        listed = sql.SQL(", ").join(cols)
        self.conn.execute(sql.SQL("DELETE FROM {}").format(ident))
        self.conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {}").format(
                ident, listed, listed, sql.Identifier(staged.schema, table), sql.Identifier(FID)
            )
        )

    def query(self, sql_text: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return _fetch(self.conn, sql_text, params)

    def conditional_update(
        self, table: str, fid: int, values: Mapping[str, Any], expect: Mapping[str, Any]
    ) -> int:
        if not values:
            return 0
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in values)
        conds = sql.SQL("").join(
            sql.SQL(" AND {} IS NOT DISTINCT FROM %s").format(sql.Identifier(n)) for n in expect
        )
        # READ COMMITTED: a row another transaction changed meanwhile is re-checked
        # against the WHERE clause once that transaction commits
        cur = self.conn.execute(
            sql.SQL("UPDATE {} SET {} WHERE {} = %s{}").format(
                self.backend._ident(table), sets, sql.Identifier(FID), conds
            ),
            (*values.values(), int(fid), *expect.values()),
        )
        return cur.rowcount


class PostGISBackend(Backend):
    """The inventory in one schema of a PostGIS database (``postgresql://…`` URL)."""

    takes_staged = True

    def __init__(self, url: str, schema: str = "public") -> None:
        self.url = url
        self.schema = schema
        self.target = display_url(url) + ("" if schema == "public" else f"#{schema}")
        self._read_conn: psycopg.Connection | None = None
        self._write_conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        # one write connection per backend: its transactions are one thread's at a time
        self._write_lock = threading.RLock()
        #: seconds a writer waits for another one's lock before giving up
        self.lock_timeout = lock_timeout_setting()

    # ------------------------------------------------------------------ connections
    def _connect(self) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as err:
            msg = f"cannot connect to the PostGIS store {display_url(self.url)}: {err}"
            raise StoreError(msg.replace(self.url, display_url(self.url))) from err
        try:
            conn.execute(
                sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema))
            )
            # a writer waiting for another's lock gives up with one clear line
            timeout = max(int(self.lock_timeout * 1000), 1)
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{timeout}ms")))
        except psycopg.Error as err:
            conn.close()
            raise self._error("opening", err) from err
        return conn

    def _error(self, action: str, err: BaseException) -> StoreError:
        """One line for a failed access: what was being done and why, in words."""
        text = " ".join(str(err).split()) or type(err).__name__
        if isinstance(err, psycopg.errors.LockNotAvailable):
            why = (
                f"another writer has held its lock for more than {self.lock_timeout:g} s "
                "(a long update or a stuck writer); nothing was written, try again later"
            )
        elif isinstance(err, psycopg.errors.DiskFull):
            why = f"the database server's disk is full; nothing was written ({text})"
        elif isinstance(err, psycopg.errors.InsufficientPrivilege):
            why = f"permission denied ({text})"
        elif isinstance(err, psycopg.errors.UniqueViolation) and CURRENT_INDEX in text:
            why = f"it would hold two current records of one site ID ({text})"
        elif isinstance(err, psycopg.OperationalError):
            why = f"the database server cannot be reached or went away ({text})"
        else:
            why = text
        return StoreError(f"{action} store {self.target} failed: {why}")

    @contextmanager
    def _reading(self, action: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as err:
            raise self._error(action, err) from err

    def _serialise(self, conn: psycopg.Connection) -> None:
        """Wait for the other writers of this schema (until this transaction ends): also
        serialises creating the schema and its bookkeeping, which ``IF NOT EXISTS`` alone
        does not make safe between two sessions."""
        key = int.from_bytes(
            hashlib.blake2b(f"omw_sites:{self.schema}".encode(), digest_size=8).digest(),
            "big",
            signed=True,
        )
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))

    def _reader(self) -> psycopg.Connection:
        """The connection for reads (autocommit: every statement sees committed data)."""
        with self._lock:
            if self._read_conn is None or self._read_conn.closed or self._read_conn.broken:
                self._read_conn = self._connect()
            return self._read_conn

    def _writer(self) -> psycopg.Connection:
        """A separate connection for writes, so reads never see uncommitted data."""
        with self._lock:
            if self._write_conn is None or self._write_conn.closed or self._write_conn.broken:
                self._write_conn = self._connect()
            return self._write_conn

    def close(self) -> None:
        with self._lock:
            for conn in (self._read_conn, self._write_conn):
                if conn is not None:
                    conn.close()
            self._read_conn = self._write_conn = None

    def _ident(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    def _describe(self, conn: psycopg.Connection, table: str, schema: str | None = None) -> _Table:
        rows = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            (schema or self.schema, table),
        ).fetchall()
        if not rows:
            where = f"store {self.target}" if schema is None else f"staging schema {schema}"
            msg = f"{where} has no layer {table!r}"
            raise StoreError(msg)
        return _Table(table, {n: t for n, t in rows if n != FID})

    def _tables(self, conn: psycopg.Connection) -> list[str]:
        """Tables of the schema in creation order, without PostGIS's own and store_meta."""
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname <> %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
            "AND d.objid = c.oid AND d.deptype = 'e') ORDER BY c.oid",
            (self.schema, META),
        ).fetchall()
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ reading
    def exists(self) -> bool:
        with self._reading("reading"):
            have = set(self._tables(self._reader()))
        return set(BOOKKEEPING_TABLES) | {RUN_INFO} <= have

    def signature(self) -> tuple:
        return (self.target, self.version())

    def version(self) -> int:
        conn = self._reader()
        with self._reading("reading the version of"):
            try:
                row = conn.execute(
                    sql.SQL("SELECT max(version) FROM {}").format(self._ident(META))
                ).fetchone()
            except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
                row = None
        return int(row[0] or 0) if row else 0

    def list_layers(self) -> list[str]:
        with self._reading("listing the layers of"):
            return self._tables(self._reader())

    def columns(self, table: str) -> list[str]:
        with self._reading(f"reading the columns of {table!r} in"):
            return list(self._describe(self._reader(), table).kinds)

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
        conn = self._reader()
        with self._reading(f"reading layer {name!r} of"):
            info = self._describe(conn, name)
        if columns is None:
            wanted = list(info.kinds)
        else:
            unknown = [c for c in columns if c not in info.kinds]
            if unknown:
                msg = f"layer {name!r} of store {self.target} has no column(s) {unknown}"
                raise StoreError(msg)
            wanted = [c for c in info.kinds if c in set(columns)]
        geometry = info.spatial and read_geometry
        select: list[sql.Composable] = [sql.Identifier(c) for c in [FID, *wanted]]
        if geometry:
            select.append(sql.SQL("encode(ST_AsBinary({}), 'hex')").format(sql.Identifier(GEOM)))
        conditions: list[sql.Composable] = []
        if where:
            conditions.append(sql.SQL("(") + sql.SQL(where) + sql.SQL(")"))
        if bbox is not None and info.spatial:
            xmin, ymin, xmax, ymax = (float(v) for v in bbox)
            conditions.append(
                sql.SQL("{} && ST_MakeEnvelope({}, {}, {}, {}, {})").format(
                    sql.Identifier(GEOM), *(sql.Literal(v) for v in (xmin, ymin, xmax, ymax, SRID))
                )
            )
        stmt = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(select), self._ident(name))
        if conditions:
            stmt += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
        stmt += sql.SQL(" ORDER BY {}").format(sql.Identifier(FID))
        if max_features is not None:
            stmt += sql.SQL(" LIMIT {}").format(sql.Literal(int(max_features)))
        names = [FID, *wanted] + (["geometry"] if geometry else [])
        kinds = ["int", *(info.kinds[c] for c in wanted)] + (["text"] if geometry else [])
        data = bytearray()
        try:
            with conn.cursor() as cur:
                copy_stmt = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(stmt)
                with cur.copy(copy_stmt) as copy:
                    for block in copy:
                        data += block
        except psycopg.Error as err:
            msg = f"reading layer {name!r} of store {self.target} failed: {err}"
            raise StoreError(msg) from err
        table = _read_csv(bytes(data), names, kinds)
        geoms = None
        if geometry:  # shapely (GEOS) reads hex WKB as it is
            geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
            table = table.drop_columns(["geometry"])
        frame = table.to_pandas()
        fids = frame.pop(FID)
        if fid_as_index:
            frame.index = pd.Index(fids.to_numpy(dtype=np.int64), name=FID)
        if geoms is None:
            return frame
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index), crs=SRID)

    def query(self, sql_text: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        try:
            return _fetch(self._reader(), sql_text, params)
        except psycopg.Error as err:
            msg = f"query on store {self.target} failed: {err}"
            raise StoreError(msg) from err

    # ------------------------------------------------------------------ writing
    def _create_meta(self, conn: psycopg.Connection) -> None:
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (version bigint NOT NULL)").format(
                self._ident(META)
            )
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {0} (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM {0})"
            ).format(self._ident(META))
        )

    def _schema_objects(self, conn: psycopg.Connection) -> set[str]:
        """Names of the schema's tables and indexes (store_meta's included)."""
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'i')",
            (self.schema,),
        ).fetchall()
        return {r[0] for r in rows}

    def _create_lookup_indexes(self, conn: psycopg.Connection) -> None:
        """``_INDEXED`` on the tables that have the columns (stores made before an index
        was added get it here, once)."""
        for name, cols in _INDEXED.items():
            rows = conn.execute(
                "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
                "AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
                (self.schema, name),
            ).fetchall()
            have = {r[0] for r in rows}
            for col in (c for c in cols if c in have):
                conn.execute(
                    sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                        sql.Identifier(f"{name}_{col}_idx"), self._ident(name), sql.Identifier(col)
                    )
                )
            if name == "sites" and {"site_id", "ended_at"} <= have:
                self._create_current_index(conn, self._ident(name))

    def _create_current_index(self, conn: psycopg.Connection, table: sql.Composable) -> None:
        """The unique index allowing one current record per site ID. A store that already
        holds two (from before the index) gets a warning naming them instead."""
        try:
            with conn.transaction():  # a savepoint: a refusal leaves the rest standing
                conn.execute(
                    sql.SQL(
                        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (site_id) "
                        "WHERE ended_at IS NULL"
                    ).format(sql.Identifier(CURRENT_INDEX), table)
                )
        except psycopg.errors.UniqueViolation:
            rows = conn.execute(
                sql.SQL(
                    "SELECT site_id FROM {} WHERE ended_at IS NULL GROUP BY site_id "
                    "HAVING count(*) > 1 ORDER BY site_id"
                ).format(table)
            ).fetchall()
            log.warning(duplicates_message(self.target, [str(r[0]) for r in rows]))

    def _bump(self, conn: psycopg.Connection, expect_version: int | None = None) -> int:
        """Next version (returned); the row lock also serialises concurrent writers. With
        ``expect_version``: :class:`StoreConflict` unless the version was that before."""
        try:
            row = conn.execute(
                sql.SQL("UPDATE {} SET version = version + 1 RETURNING version").format(
                    self._ident(META)
                )
            ).fetchone()
        except psycopg.errors.UndefinedTable as err:
            msg = f"store {self.target} is not initialised; run `omw-sites db init`"
            raise StoreError(msg) from err
        if row is None:  # the version row was deleted by hand; init puts it back
            msg = f"store {self.target} has no version row; run `omw-sites db init`"
            raise StoreError(msg)
        version = int(row[0])
        if expect_version is not None and version - 1 != expect_version:
            msg = (
                f"store {self.target} changed meanwhile (version {version - 1}, not "
                f"{expect_version}); nothing was written"
            )
            raise StoreConflict(msg)
        return version

    def _create_table(
        self,
        conn: psycopg.Connection,
        ident: sql.Composable,
        kinds: Mapping[str, str],
        spatial: bool,
        if_not_exists: bool = False,
        primary_key: bool = True,
    ) -> None:
        pk = " PRIMARY KEY" if primary_key else ""
        defs = [sql.SQL("{} bigserial" + pk).format(sql.Identifier(FID))]
        defs += [
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(PG_TYPES[k]))
            for c, k in kinds.items()
        ]
        if spatial:
            defs.append(sql.SQL("{} geometry(Geometry, 2180)").format(sql.Identifier(GEOM)))
        head = "CREATE TABLE IF NOT EXISTS {} ({})" if if_not_exists else "CREATE TABLE {} ({})"
        conn.execute(sql.SQL(head).format(ident, sql.SQL(", ").join(defs)))

    def init(self) -> None:
        """Create what is missing; the version moves only if something was created, so
        readers (the API's snapshot) do not reload a store that did not change."""
        with self._write_lock:
            conn = self._writer()
            try:
                with conn.transaction():
                    self._serialise(conn)
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            sql.Identifier(self.schema)
                        )
                    )
                    before = self._schema_objects(conn)
                    self._create_meta(conn)
                    tables = {**BOOKKEEPING_TABLES, RUN_INFO: RUN_INFO_COLUMNS, **ENQUIRY_TABLES}
                    for name, cols in tables.items():
                        self._create_table(conn, self._ident(name), cols, False, if_not_exists=True)
                    self._create_lookup_indexes(conn)
                    if self._schema_objects(conn) != before:
                        self._bump(conn)
            except psycopg.Error as err:
                raise self._error("initialising", err) from err

    @contextmanager
    def transaction(self, expect_version: int | None = None) -> Iterator[Transaction]:
        with self._write_lock:
            conn = self._writer()
            try:
                with conn.transaction():
                    self._serialise(conn)
                    self._bump(conn, expect_version)
                    yield _PgTransaction(self, conn)
            except psycopg.Error as err:
                if conn.broken:
                    msg = (
                        f"a write to store {self.target} lost its connection to the "
                        f"database server; whether it committed is unknown — check "
                        f"`omw-sites db status` ({' '.join(str(err).split())})"
                    )
                    raise StoreError(msg) from err
                raise self._error("a write (rolled back) to", err) from err

    # ------------------------------------------------------------------ staging
    def stage(
        self, stage: str, layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame]
    ) -> dict[str, StagedLayer]:
        """Write ``layers`` as tables of the schema ``stage`` of this database (created;
        outside the store: no reader sees it, no writer waits for it), indexed as a first
        load indexes them, in one commit of its own. A process that holds big reference
        layers (a partitioned run's network task) writes them here while others work;
        :meth:`Inventory.apply` then takes the returned :class:`StagedLayer` values and
        moves the tables into the store inside its own transaction. The caller drops the
        schema afterwards (:meth:`drop_stage`), whether or not the store took them."""
        out: dict[str, StagedLayer] = {}
        conn = self._connect()
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(stage))
                )
                conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
                for name, frame in layers.items():
                    self._load_one(conn, stage, name, frame)
                    out[name] = StagedLayer(stage, layer_digest(frame), len(frame))
        except psycopg.Error as err:
            raise self._error(f"staging layers (schema {stage}) beside", err) from err
        finally:
            conn.close()
        return out

    def stage_sites(self, stage: str, part: str, sites: gpd.GeoDataFrame) -> int:
        """Write measured ``sites`` (EPSG:2180, multipolygons) as the table
        ``sites_<part>`` of the schema ``stage``, indexed by ``site_id``, in one commit of
        its own: the processes that measured the sites write them at the same time, each
        its own table (:meth:`staged_sites` joins them). Returns the rows written."""
        table = f"sites_{part}"
        attrs, geoms = _split_geometry(sites, table)
        kinds = {str(c): kind_of(attrs[c]) for c in attrs.columns}
        ident = sql.Identifier(stage, table)
        conn = self._connect()
        try:
            try:  # several writers may create the schema at once: one of them wins
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(stage))
                )
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema):
                pass
            with conn.transaction():
                self._create_table(conn, ident, kinds, geoms is not None)
                _copy_rows(conn, ident, attrs, kinds, geoms, f"staging sites of {part}")
                conn.execute(sql.SQL("CREATE INDEX ON {} (site_id)").format(ident))
        except psycopg.Error as err:
            raise self._error(f"staging sites (schema {stage}) beside", err) from err
        finally:
            conn.close()
        return len(attrs)

    def staged_sites(self, stage: str, parts: Sequence[str]) -> StagedSites:
        """The tables :meth:`stage_sites` wrote for ``parts`` as one view ``sites`` of
        the schema ``stage``: the first part's columns in its order, then any others;
        a column absent from a part is NULL there, and one whose kind differs between
        parts (a column empty in one) takes the wider kind."""
        conn = self._connect()
        try:
            tables = [self._describe(conn, f"sites_{p}", stage) for p in parts]
            kinds: dict[str, str] = {}
            for t in tables:
                for c, k in t.kinds.items():
                    kinds[c] = _wider(kinds[c], k) if c in kinds else k
            rows = 0
            selects: list[sql.Composable] = []
            for p, t in zip(parts, tables, strict=True):
                cols = [
                    sql.SQL("{}::{} AS {}").format(
                        sql.Identifier(c) if c in t.kinds else sql.NULL,
                        sql.SQL(PG_TYPES[k]),
                        sql.Identifier(c),
                    )
                    for c, k in kinds.items()
                ]
                selects.append(
                    sql.SQL("SELECT {}, {} FROM {}").format(
                        sql.Identifier(FID),
                        sql.SQL(", ").join([*cols, sql.Identifier(GEOM)]),
                        sql.Identifier(stage, f"sites_{p}"),
                    )
                )
                rows += int(
                    conn.execute(
                        sql.SQL("SELECT count(*) FROM {}").format(
                            sql.Identifier(stage, f"sites_{p}")
                        )
                    ).fetchone()[0]  # type: ignore[index]
                )
            conn.execute(
                sql.SQL("CREATE VIEW {} AS {}").format(
                    sql.Identifier(stage, "sites"), sql.SQL(" UNION ALL ").join(selects)
                )
            )
        except psycopg.Error as err:
            raise self._error(f"joining the staged sites (schema {stage}) beside", err) from err
        finally:
            conn.close()
        return StagedSites(stage, tuple(kinds), kinds, rows)

    def read_staged(
        self, staged: StagedSites, ids: Sequence[str] | None = None
    ) -> gpd.GeoDataFrame:
        where = None
        if ids is not None:
            if not len(ids):
                where = "false"
            else:
                where = "site_id IN ({})".format(
                    ", ".join("'" + str(i).replace("'", "''") + "'" for i in ids)
                )
        reader = PostGISBackend(self.url, schema=staged.schema)
        try:
            frame = reader.read_layer("sites", where=where)
        finally:
            reader.close()
        return frame.sort_values("site_id", ignore_index=True)

    def drop_stage(self, stage: str) -> None:
        """Drop the schema ``stage`` and what is left in it (nothing, if it never was)."""
        conn = self._connect()
        try:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(stage)))
        except psycopg.Error as err:
            raise self._error(f"dropping the staging schema {stage} beside", err) from err
        finally:
            conn.close()

    def bulk_load(
        self,
        sites: gpd.GeoDataFrame | StagedLoad,
        layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame | StagedLayer],
        derive: Derive | None = None,
        check: Callable[[], None] | None = None,
        expect_version: int | None = None,
    ) -> None:
        frames: dict[str, pd.DataFrame | StagedLayer | StagedLoad] = {
            "sites": sites if isinstance(sites, StagedLoad) else with_derived(sites, derive),
            **layers,
        }
        for name in frames:
            if name == META:
                msg = f"{META!r} is reserved for the store's own bookkeeping"
                raise StoreError(msg)
        stage = f"omw_load_{uuid.uuid4().hex[:12]}"
        with self._write_lock:
            conn = self._writer()
            try:
                with conn.transaction():
                    self._load_all(conn, stage, frames, check, expect_version)
            except psycopg.errors.UniqueViolation as err:
                if check is not None:
                    check()  # a repeated site ID (the unique index refused it) said clearly
                raise self._error("a first load of", err) from err
            except psycopg.Error as err:
                raise self._error("a first load of", err) from err

    def _load_all(
        self,
        conn: psycopg.Connection,
        stage: str,
        frames: Mapping[str, pd.DataFrame | StagedLayer | StagedLoad],
        check: Callable[[], None] | None,
        expect_version: int | None,
    ) -> None:
        """The first load inside its transaction: every table into a staging schema, then
        the swap. Other writers wait from the start (the version row stays locked), so the
        store is replaced only if it is still at ``expect_version``."""
        self._serialise(conn)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        self._create_meta(conn)
        self._bump(conn, expect_version)
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(stage)))
        for name, frame in frames.items():
            if isinstance(frame, StagedLayer):  # written beforehand: moved, not copied
                conn.execute(
                    sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                        sql.Identifier(frame.schema, name), sql.Identifier(stage)
                    )
                )
            elif isinstance(frame, StagedLoad):
                self._load_staged(conn, stage, name, frame)
            else:
                self._load_one(conn, stage, name, frame)
        if check is not None:
            check()  # raising rolls the whole load back
        # the swap: only now do readers of the old tables wait (briefly)
        for old in self._tables(conn):
            conn.execute(sql.SQL("DROP TABLE {} CASCADE").format(self._ident(old)))
        for name in frames:
            conn.execute(
                sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                    sql.Identifier(stage, name), sql.Identifier(self.schema)
                )
            )
        conn.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(stage)))

    def _load_one(
        self, conn: psycopg.Connection, stage: str, name: str, frame: pd.DataFrame
    ) -> None:
        where = f"bulk load of {name}"
        attrs, geoms = _split_geometry(frame, name)
        spatial = geoms is not None
        for reserved in (FID, GEOM):
            if reserved in attrs.columns:
                msg = f"{where}: column name {reserved!r} is reserved by the store"
                raise StoreError(msg)
        kinds = {str(c): kind_of(attrs[c]) for c in attrs.columns}
        ident = sql.Identifier(stage, name)
        # indexes (primary key included) are built after the data is in
        self._create_table(conn, ident, kinds, spatial, primary_key=False)
        _copy_rows(conn, ident, attrs, kinds, geoms, where, fid_start=1, freeze=True)
        self._index_loaded(conn, stage, name, kinds, spatial, len(attrs))

    def _load_staged(
        self, conn: psycopg.Connection, stage: str, name: str, load: StagedLoad
    ) -> None:
        """The site table of a first load joined, inside the database, from the staged
        measured sites and the records' other columns (copied in here): the measured
        rows never pass through this process."""
        records = load.records
        where = f"bulk load of {name}"
        extra = {c: kind_of(records[c]) for c in records.columns}
        lean = sql.Identifier(stage, f"{name}_records")
        self._create_table(conn, lean, extra, False, primary_key=False)
        _copy_rows(conn, lean, records, extra, None, where, fid_start=1, freeze=True)
        conn.execute(sql.SQL("CREATE INDEX ON {} (site_id)").format(lean))
        ident = sql.Identifier(stage, name)
        self._create_table(conn, ident, load.columns, True, primary_key=False)
        measured = set(load.staged.kinds) - set(records.columns)
        picks = [
            sql.SQL("{}.{}::{}").format(
                sql.Identifier("m" if c in measured else "r"),
                sql.Identifier(c),
                sql.SQL(PG_TYPES[k]),
            )
            for c, k in load.columns.items()
        ]
        done = conn.execute(
            sql.SQL(
                "INSERT INTO {} ({}) SELECT r.{}, {}, m.{} FROM {} r "
                "JOIN {} m ON m.site_id = r.site_id ORDER BY r.{}"
            ).format(
                ident,
                sql.SQL(", ").join(sql.Identifier(c) for c in [FID, *load.columns, GEOM]),
                sql.Identifier(FID),
                sql.SQL(", ").join(picks),
                sql.Identifier(GEOM),
                lean,
                sql.Identifier(load.staged.schema, "sites"),
                sql.Identifier(FID),
            )
        )
        if done.rowcount != len(records):
            msg = (
                f"{where}: the staged sites in schema {load.staged.schema} do not match the "
                f"run's ({done.rowcount:,} rows joined for {len(records):,} sites)"
            )
            raise StoreError(msg)
        conn.execute(sql.SQL("DROP TABLE {}").format(lean))
        self._index_loaded(conn, stage, name, load.columns, True, len(records))

    def _index_loaded(
        self,
        conn: psycopg.Connection,
        stage: str,
        name: str,
        kinds: Mapping[str, str],
        spatial: bool,
        n: int,
    ) -> None:
        """The sequence, keys and indexes of a table a load has just filled."""
        ident = sql.Identifier(stage, name)
        conn.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'fid'), %s, %s)",
            (ident.as_string(conn), max(n, 1), n > 0),
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                ident, sql.Identifier(f"{name}_pkey"), sql.Identifier(FID)
            )
        )
        if spatial:
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} USING gist ({})").format(
                    sql.Identifier(f"{name}_geom_idx"), ident, sql.Identifier(GEOM)
                )
            )
        indexed = [FID] + ([GEOM] if spatial else [])
        for col in _INDEXED.get(name, []):
            if col in kinds:
                conn.execute(
                    sql.SQL("CREATE INDEX {} ON {} ({})").format(
                        sql.Identifier(f"{name}_{col}_idx"), ident, sql.Identifier(col)
                    )
                )
                indexed.append(col)
        covered = [c for c in _CURRENT_COVER if c in kinds]
        if name == "sites" and "ended_at" in kinds and covered:
            # the inventory reads ID, gmina and hashes of every current record on each
            # update: an index-only scan of this partial covering index reads a few
            # dozen MB instead of the ~1 GB heap of a million wide rows (COPY FREEZE
            # above leaves the pages all-visible, so no heap visits)
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} ({}) INCLUDE ({}) WHERE ended_at IS NULL").format(
                    sql.Identifier(f"{name}_current_idx"),
                    ident,
                    sql.Identifier(FID),
                    sql.SQL(", ").join(sql.Identifier(c) for c in covered),
                )
            )
            indexed.append("ended_at")
        if name == "sites" and {"site_id", "ended_at"} <= set(kinds):
            # one current record per site ID (a repeated ID stops the load here)
            conn.execute(
                sql.SQL("CREATE UNIQUE INDEX {} ON {} (site_id) WHERE ended_at IS NULL").format(
                    sql.Identifier(CURRENT_INDEX), ident
                )
            )
        # statistics for the planner on the indexed columns only (all ~100 would take
        # seconds per million rows); autovacuum completes them later
        conn.execute(
            sql.SQL("ANALYZE {} ({})").format(
                ident, sql.SQL(", ").join(sql.Identifier(c) for c in indexed)
            )
        )


def _fetch(conn: psycopg.Connection, sql_text: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """The rows of a query with ``?`` placeholders, as a frame of typed columns."""
    params = list(params)
    stmt = translate_placeholders(sql_text) if params else sql_text
    with conn.cursor() as cur:
        cur.execute(stmt, params or None)
        if cur.description is None:
            return pd.DataFrame()
        names = [d.name for d in cur.description]
        types = [d.type_code for d in cur.description]
        rows = cur.fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return pd.DataFrame(
        {n: _typed(values, oid) for n, values, oid in zip(names, columns, types, strict=True)},
        columns=names,
    )


def _typed(values: Sequence[Any], oid: int) -> pd.Series:
    """A result column with the dtype pyogrio would give (float64, int64, bool, str)."""
    if oid in (700, 701, 1700):  # float4, float8, numeric
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    if oid in (20, 21, 23):  # int8, int2, int4
        if any(v is None for v in values):
            return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
        return pd.Series(values, dtype="int64")
    if oid == 16:
        if any(v is None for v in values):
            return pd.Series(values, dtype=object)
        return pd.Series(values, dtype="bool")
    if oid in (25, 1043, 1042, 19):  # text, varchar, bpchar, name
        return pd.Series(values, dtype="str")
    return pd.Series(values, dtype=object)
