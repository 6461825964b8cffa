"""Values survive the PostGIS store's COPY both ways, known answers: NULLs, empty and
multi-line text, extreme integers, NaN and infinities, nullable booleans, timestamps,
NULL geometry, row order across COPY chunks — for a first load (binary COPY), an insert
in a transaction, and a table of other column types (text COPY)."""

from __future__ import annotations

import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import omw_sites.store.postgis as pg
from omw_sites.store import open_backend

N = 257
BIG = np.iinfo(np.int64).min


def _name(i: int) -> str | None:
    return None if i % 7 == 0 else ("" if i % 5 == 0 else f'Zażółć {i}, "q"\t\\\n')


def _frame(n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "name": [_name(i) for i in range(n)],
            "count": pd.array([None if i % 11 == 0 else i * 10**12 for i in range(n)], "Int64"),
            "big": BIG + np.arange(n),
            "share": [np.nan if i % 4 == 0 else (np.inf if i == 1 else i / 8) for i in range(n)],
            "flag": pd.array([None if i % 13 == 0 else i % 2 == 0 for i in range(n)], "boolean"),
            "when": pd.to_datetime(
                [None if i % 3 == 0 else f"2026-11-27T01:02:{i % 60:02d}Z" for i in range(n)]
            ),
        },
        geometry=[None if i == 5 else shapely.Point(600_000 + i, 480_000 - i) for i in range(n)],
        crs=2180,
    )


def _assert_rows(got: pd.DataFrame, first: int, n: int) -> None:
    """``got`` holds rows ``first .. first + n - 1`` of :func:`_frame` as the store reads
    them back (an int column with NULLs comes as float64, a bool one as object)."""
    ids = range(first, first + n)
    assert got.index.tolist() == [i + 1 for i in ids]  # fid counts from 1, in order
    assert [None if pd.isna(v) else v for v in got["name"]] == [_name(i) for i in ids]
    assert got["count"].dtype == np.float64
    assert [None if np.isnan(v) else int(v) for v in got["count"]] == [
        None if i % 11 == 0 else i * 10**12 for i in ids
    ]
    assert got["big"].dtype == np.int64 and got["big"].tolist() == [BIG + i for i in ids]
    share = got["share"].to_numpy()
    assert np.isnan(share[[i % 4 == 0 for i in ids]]).all()
    assert [v for i, v in zip(ids, share, strict=True) if i % 4] == [
        np.inf if i == 1 else i / 8 for i in ids if i % 4
    ]
    assert got["flag"].tolist() == [None if i % 13 == 0 else i % 2 == 0 for i in ids]
    assert [None if pd.isna(v) else v for v in got["when"]] == [
        None if i % 3 == 0 else f"2026-11-27T01:02:{i % 60:02d}.000000Z" for i in ids
    ]
    if "geometry" in got:
        xy = [None if g is None else (g.x, g.y) for g in got.geometry]
        assert xy == [None if i == 5 else (600_000 + i, 480_000 - i) for i in ids]


@pytest.fixture
def backend(postgis_url, monkeypatch):
    monkeypatch.setattr(pg, "CHUNK_ROWS", 100)  # 257 rows cross two chunk boundaries
    b = open_backend(f"{postgis_url}?schema=v_{uuid.uuid4().hex[:10]}")
    yield b
    b.close()


def test_first_load_and_insert_round_trip(backend):
    backend.bulk_load(_frame(N), {})
    _assert_rows(backend.read_layer("sites", fid_as_index=True), 0, N)
    more = _frame(N + 3).iloc[N:]
    with backend.transaction() as tx:
        tx.insert("sites", more)
    _assert_rows(backend.read_layer("sites", fid_as_index=True), 0, N + 3)


@pytest.mark.parametrize(
    "columns",
    [["name"], ["count", "big"], ["share", "flag", "when"], ["name", "count", "flag", "when"]],
)
def test_reads_of_some_columns_and_rows(backend, columns):
    backend.bulk_load(_frame(N), {})
    got = backend.read_layer(
        "sites", columns=columns, where="fid % 3 = 0", read_geometry=False, fid_as_index=True
    )
    assert list(got.columns) == [c for c in _frame(1).columns if c in columns]
    assert got.index.tolist() == list(range(3, N + 1, 3))
    whole = backend.read_layer("sites", read_geometry=False, fid_as_index=True)
    pd.testing.assert_frame_equal(got, whole.loc[got.index, got.columns])
    assert backend.read_layer("sites", columns=columns, where="fid < 0").empty


def test_table_of_other_types_takes_text_copy(backend):
    """A table made outside the store (timestamptz, jsonb, integer, varchar) is written
    with text COPY: the server parses the values."""
    import psycopg
    from psycopg import sql

    backend.bulk_load(_frame(3), {})
    with psycopg.connect(backend.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (fid bigserial PRIMARY KEY, at timestamptz, doc jsonb, "
                "n integer, code varchar(8), geom geometry(Point, 2180))"
            ).format(sql.Identifier(backend.schema, "legacy"))
        )
    rows = gpd.GeoDataFrame(
        {
            "at": ["2026-11-27T01:02:03Z", None],
            "doc": ['{"a": [1, "ż"]}', None],
            "n": [7, -3],
            "code": ["ŁÓD\tX", ""],
        },
        geometry=[shapely.Point(1, 2), None],
        crs=2180,
    )
    with backend.transaction() as tx:
        tx.insert("legacy", rows)
    got = backend.query(
        "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at, "
        "doc -> 'a' ->> 1 AS doc, n, code, ST_AsText(geom) AS wkt FROM legacy ORDER BY fid"
    )
    assert got["at"].iloc[0] == "2026-11-27 01:02:03" and pd.isna(got["at"].iloc[1])
    assert got["doc"].iloc[0] == "ż" and pd.isna(got["doc"].iloc[1])
    assert got["n"].tolist() == [7, -3] and got["code"].tolist() == ["ŁÓD\tX", ""]
    assert got["wkt"].iloc[0] == "POINT(1 2)" and pd.isna(got["wkt"].iloc[1])
