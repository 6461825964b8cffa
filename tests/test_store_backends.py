"""The store protocol, run against both backends (GeoPackage file and PostGIS schema)."""

from __future__ import annotations

import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from omw_sites.store.base import (
    BOOKKEEPING_TABLES,
    RUNS_COLUMNS,
    StoreError,
    empty_table,
)

POLISH = "Zażółć gęślą jaźń ąęłńóśźż ĄĘŁŃÓŚŹŻ"


class Boom(RuntimeError):
    """Raised on purpose inside a transaction."""


@pytest.fixture(params=["gpkg", "postgis"])
def opener(request, tmp_path):
    """A function opening (another connection to) one fresh, empty store."""
    opened = []
    if request.param == "gpkg":
        try:
            from omw_sites.store.gpkg_backend import GeoPackageBackend
        except ImportError:
            pytest.skip("GeoPackage backend not written yet")
        path = tmp_path / "store.gpkg"

        def open_store():
            opened.append(GeoPackageBackend(path))
            return opened[-1]

        yield open_store
        for b in opened:
            b.close()
        return

    from omw_sites.store.postgis import PostGISBackend

    url = request.getfixturevalue("postgis_url")
    schema = f"t_{uuid.uuid4().hex[:16]}"

    def open_store():
        opened.append(PostGISBackend(url, schema=schema))
        return opened[-1]

    yield open_store
    for b in opened:
        b.close()
    _drop_schema(url, schema)


def _drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def backend(opener):
    return opener()


def make_sites() -> gpd.GeoDataFrame:
    """Four sites: mixed kinds, NULLs, Polish text, Polygon and MultiPolygon geometry."""
    geoms = [
        shapely.MultiPolygon(
            [
                shapely.box(600_000, 480_000, 600_100, 480_100),
                shapely.box(600_200, 480_000, 600_260, 480_050),
            ]
        ),  # fmt: skip
        shapely.MultiPolygon([shapely.box(640_000, 500_000, 640_300, 500_200)]),
        shapely.MultiPolygon(
            [
                shapely.Polygon(
                    [(700_000, 450_000), (700_500, 450_000), (700_250, 450_400)], holes=None
                )
            ]  # fmt: skip
        ),
        shapely.MultiPolygon([shapely.box(610_000, 490_000, 610_050, 490_050)]),
    ]
    return gpd.GeoDataFrame(
        {
            "site_id": ["S1", "S2", "S3", "S4"],
            "gmina": ["1465011", "1432042", "1417052", "1465011"],
            "name": [POLISH, "", None, "Łódź-Północ"],
            "area_ha": [1.25, np.nan, 3.0e-7, 12345.678901234],
            "parcels": [3, 1, 7, 2],
            "flood": [True, False, False, True],
            "status": ["available", "reserved", None, "available"],
            "ended_at": [None, None, "2026-11-27T01:02:03.123456Z", None],
        },
        geometry=geoms,
        crs=2180,
    )


def make_layers() -> dict[str, pd.DataFrame]:
    gminy = gpd.GeoDataFrame(
        {"teryt": ["1465011", "1432042"], "name": ["Warszawa", "Łomianki"]},
        geometry=[
            shapely.box(590_000, 470_000, 620_000, 495_000),
            shapely.box(630_000, 495_000, 650_000, 505_000),
        ],  # fmt: skip
        crs=2180,
    )
    quarantine = pd.DataFrame(
        {"record": ["d1", "d2"], "rule": ["geometry invalid", "brak ID_DZIAŁKI"], "row": [4, 9]}
    )
    return {
        "gminy": gminy,
        "quarantine": quarantine,
        **{name: empty_table(cols) for name, cols in BOOKKEEPING_TABLES.items()},
        "run_info": pd.DataFrame({"key": ["profile"], "value": ['{"name": "logistyka"}']}),
    }


def pyogrio_dtypes(frame: pd.DataFrame, tmp_path) -> dict[str, object]:
    """The dtypes pyogrio gives the same data read back from a GeoPackage."""
    path = tmp_path / "reference.gpkg"
    pyogrio.write_dataframe(frame, path, layer="ref", driver="GPKG")
    back = pyogrio.read_dataframe(path, layer="ref", use_arrow=True)
    return {c: back[c].dtype for c in back.columns if c != "geometry"}


def assert_geoms_equal(left, right) -> None:
    left, right = np.asarray(left, dtype=object), np.asarray(right, dtype=object)
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        if a is None or b is None:
            assert a is None and b is None
        else:
            assert a.geom_type == b.geom_type, (a.geom_type, b.geom_type)
            assert shapely.equals(a, b), (a.wkt, b.wkt)


def snapshot(backend) -> dict[str, pd.DataFrame]:
    """Every layer of the store, with geometry as WKB for exact comparison."""
    out = {}
    for name in backend.list_layers():
        frame = backend.read_layer(name, fid_as_index=True)
        if isinstance(frame, gpd.GeoDataFrame):
            wkb = shapely.to_wkb(frame.geometry.values)
            frame = pd.DataFrame(frame).assign(geometry=wkb)
        out[name] = frame
    return out


def assert_same_snapshot(before, after) -> None:
    assert list(before) == list(after)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], check_dtype=True)


@pytest.fixture
def loaded(backend):
    backend.bulk_load(make_sites(), make_layers())
    return backend


# ---------------------------------------------------------------- init and bulk load


def test_init_is_idempotent_and_exists_follows_it(backend):
    assert not backend.exists()
    backend.init()
    assert backend.exists()
    assert {"site_history", "runs", "provenance", "run_info"} <= set(backend.list_layers())
    assert backend.columns("runs") == list(RUNS_COLUMNS)
    values = ["r1", "2026-11-27T00:00:00Z", "load", "all", "demo", 1, 0, 0, 0, 0, "{}"]
    runs = pd.DataFrame({c: [v] for c, v in zip(RUNS_COLUMNS, values, strict=True)})
    with backend.transaction() as tx:
        tx.insert("runs", runs)
    backend.init()
    assert backend.exists()
    got = backend.read_layer("runs")
    assert got["run_id"].tolist() == ["r1"]
    assert got["added"].tolist() == [1]


def test_init_of_a_ready_store_leaves_its_version_alone(loaded):
    """Every update calls init(): a store that has everything must not look changed to
    readers (the API reloads its snapshot when the signature moves)."""
    loaded.init()  # the bookkeeping tables a bulk load does not make
    first = loaded.signature()
    loaded.init()
    assert loaded.signature() == first
    with loaded.transaction() as tx:
        tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S1"], "status": ["sold"]}))
    assert loaded.signature() != first


def test_bulk_load_round_trip(loaded, tmp_path):
    sites = make_sites()
    expected_layers = {"sites", "gminy", "quarantine", "run_info", *BOOKKEEPING_TABLES}
    assert set(loaded.list_layers()) == expected_layers
    assert loaded.exists()
    assert loaded.columns("sites") == [c for c in sites.columns if c != "geometry"]
    got = loaded.read_layer("sites")
    assert isinstance(got, gpd.GeoDataFrame)
    assert got.crs.to_epsg() == 2180
    assert list(got.columns) == list(sites.columns)
    assert {c: got[c].dtype for c in got.columns if c != "geometry"} == pyogrio_dtypes(
        sites, tmp_path
    )
    assert got["name"].iloc[0] == POLISH
    assert got["name"].iloc[1] == ""  # empty text stays empty, not NULL
    assert pd.isna(got["name"].iloc[2])  # NULL stays NULL
    assert np.isnan(got["area_ha"].iloc[1])
    assert got["area_ha"].tolist()[2:] == [3.0e-7, 12345.678901234]  # exact floats
    assert got["parcels"].tolist() == [3, 1, 7, 2]
    assert got["flood"].tolist() == [True, False, False, True]
    expected = pd.DataFrame(sites.drop(columns="geometry"))
    pd.testing.assert_frame_equal(
        pd.DataFrame(got.drop(columns="geometry")), expected, check_dtype=False
    )
    assert_geoms_equal(got.geometry, sites.geometry)

    gminy = loaded.read_layer("gminy")
    assert isinstance(gminy, gpd.GeoDataFrame)
    assert gminy["name"].tolist() == ["Warszawa", "Łomianki"]
    quarantine = loaded.read_layer("quarantine")
    assert not isinstance(quarantine, gpd.GeoDataFrame)
    assert quarantine["rule"].tolist() == ["geometry invalid", "brak ID_DZIAŁKI"]
    assert quarantine["row"].dtype == np.int64
    history = loaded.read_layer("site_history")
    assert len(history) == 0 and list(history.columns) == list(BOOKKEEPING_TABLES["site_history"])


def test_bulk_load_replaces_the_previous_store(loaded):
    smaller = make_sites().iloc[:2]
    layers = make_layers()
    del layers["gminy"]
    loaded.bulk_load(smaller, layers)
    assert "gminy" not in loaded.list_layers()
    assert loaded.read_layer("sites")["site_id"].tolist() == ["S1", "S2"]


def test_failed_bulk_load_leaves_the_store_as_it_was(loaded):
    before = snapshot(loaded)
    signature = loaded.signature()
    layers = make_layers()
    layers["gminy"] = layers["gminy"].set_crs(None, allow_override=True)  # refused: no CRS
    with pytest.raises(StoreError):
        loaded.bulk_load(make_sites().iloc[:1], layers)
    assert_same_snapshot(before, snapshot(loaded))
    assert loaded.signature() == signature


# ---------------------------------------------------------------- reading


def test_read_layer_options(loaded):
    got = loaded.read_layer("sites", columns=["parcels", "site_id"])
    assert list(got.columns) == ["site_id", "parcels", "geometry"]  # table order
    got = loaded.read_layer("sites", where="ended_at IS NULL AND gmina = '1465011'")
    assert got["site_id"].tolist() == ["S1", "S4"]
    got = loaded.read_layer("sites", bbox=(599_000, 479_000, 612_000, 492_000))
    assert got["site_id"].tolist() == ["S1", "S4"]
    got = loaded.read_layer("sites", bbox=(0, 0, 10, 10))
    assert len(got) == 0 and isinstance(got, gpd.GeoDataFrame)
    got = loaded.read_layer("sites", max_features=2)
    assert got["site_id"].tolist() == ["S1", "S2"]
    got = loaded.read_layer("sites", fid_as_index=True)
    assert got.index.name == "fid" and got.index.tolist() == [1, 2, 3, 4]
    got = loaded.read_layer("sites", columns=["site_id"], read_geometry=False)
    assert not isinstance(got, gpd.GeoDataFrame)
    assert list(got.columns) == ["site_id"]
    with pytest.raises(StoreError):
        loaded.read_layer("no_such_layer")


def test_query_binds_question_mark_parameters(loaded):
    got = loaded.query(
        "SELECT site_id, parcels FROM sites WHERE parcels >= ? AND gmina = ? "
        "AND site_id <> '?' ORDER BY site_id",
        [2, "1465011"],
    )
    assert got["site_id"].tolist() == ["S1", "S4"]
    assert got["parcels"].tolist() == [3, 2]
    got = loaded.query("SELECT count(*) AS n FROM sites WHERE name LIKE 'Zaż%'")
    assert int(got["n"].iloc[0]) == 1


# ---------------------------------------------------------------- transactions


def test_transaction_insert_update_replace_add_columns(loaded):
    new = gpd.GeoDataFrame(
        {"site_id": ["S5"], "name": ["Świętokrzyska"], "parcels": [4], "flood": [False]},
        geometry=[shapely.MultiPolygon([shapely.box(620_000, 480_000, 620_100, 480_100)])],
        crs=2180,
    )
    moved = shapely.MultiPolygon([shapely.box(601_000, 481_000, 601_010, 481_010)])
    with loaded.transaction() as tx:
        tx.add_columns("sites", {"score_logistics": "float", "rank": "int", "name": "text"})
        tx.insert("sites", new)
        tx.update(
            "sites",
            "site_id",
            pd.DataFrame(
                {
                    "site_id": ["S1", "S3"],
                    "status": ["sold", "withdrawn"],
                    "score_logistics": [0.75, 0.25],
                    "rank": [1, 2],
                    "geometry": [moved, None],
                }
            ),
        )
        tx.replace("run_info", pd.DataFrame({"key": ["a", "b"], "value": ['{"x": 1}', "ąę"]}))
    assert loaded.columns("sites")[-2:] == ["score_logistics", "rank"]
    got = loaded.read_layer("sites")
    assert got["site_id"].tolist() == ["S1", "S2", "S3", "S4", "S5"]
    assert got["status"].tolist()[:2] == ["sold", "reserved"]
    assert got["status"].iloc[2] == "withdrawn"
    assert got["score_logistics"].iloc[0] == 0.75 and np.isnan(got["score_logistics"].iloc[1])
    assert got["name"].iloc[4] == "Świętokrzyska"
    assert got.geometry.iloc[0].equals(moved)
    assert got.geometry.iloc[2] is None
    assert got.geometry.iloc[4].equals(new.geometry.iloc[0])
    assert pd.isna(got["area_ha"].iloc[4])
    assert loaded.read_layer("run_info")["value"].tolist() == ['{"x": 1}', "ąę"]
    assert loaded.read_layer("sites", bbox=(600_990, 480_990, 601_020, 481_020))[
        "site_id"
    ].tolist() == ["S1"]  # the spatial index follows the moved geometry


def test_insert_of_unknown_column_is_refused(loaded):
    before = snapshot(loaded)
    with pytest.raises(StoreError), loaded.transaction() as tx:
        tx.insert("quarantine", pd.DataFrame({"record": ["x"], "nope": [1]}))
    assert_same_snapshot(before, snapshot(loaded))


def test_exception_inside_a_transaction_rolls_everything_back(loaded):
    before = snapshot(loaded)
    signature = loaded.signature()
    with pytest.raises(Boom), loaded.transaction() as tx:
        tx.add_columns("sites", {"extra": "text"})
        tx.insert("sites", make_sites().iloc[:1].assign(site_id="S9"))  # S1 is current
        tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S2"], "status": ["sold"]}))
        tx.replace("gminy", make_layers()["gminy"].iloc[:0])
        tx.replace("run_info", pd.DataFrame({"key": ["k"], "value": ["v"]}))
        raise Boom("half-way")
    assert_same_snapshot(before, snapshot(loaded))
    assert loaded.columns("sites") == list(before["sites"].columns.drop("geometry"))
    assert loaded.signature() == signature


def test_signature_changes_on_every_commit(loaded):
    first = loaded.signature()
    with loaded.transaction() as tx:
        tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S1"], "status": ["sold"]}))
    second = loaded.signature()
    assert second != first
    with loaded.transaction() as tx:
        tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S1"], "status": ["reserved"]}))
    assert loaded.signature() not in (first, second)


READ_ELSEWHERE = """
import json, sys
from omw_sites.store.gpkg_backend import GeoPackageBackend
b = GeoPackageBackend(sys.argv[1])
statuses = b.read_layer("sites", columns=["site_id", "status"])["status"].tolist()
print(json.dumps([statuses, len(b.read_layer("quarantine"))]))
"""


def test_reader_sees_old_state_during_an_open_write(loaded, opener):
    """A reader of another connection (PostGIS) or another process (GeoPackage: within a
    process, GDAL must not read the file while sqlite3 holds its write lock) sees the
    state before the open write, then after it."""
    import json
    import subprocess
    import sys

    if isinstance(loaded.target, str) and loaded.target.endswith(".gpkg"):

        def read() -> tuple[list, int]:
            res = subprocess.run(
                [sys.executable, "-c", READ_ELSEWHERE, loaded.target],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert res.returncode == 0, res.stderr
            statuses, n = json.loads(res.stdout)
            return statuses, n
    else:
        reader = opener()

        def read() -> tuple[list, int]:
            statuses = reader.read_layer("sites", columns=["site_id", "status"])["status"]
            return statuses.tolist(), len(reader.read_layer("quarantine"))

    with loaded.transaction() as tx:
        tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S2"], "status": ["sold"]}))
        tx.insert("quarantine", pd.DataFrame({"record": ["d3"], "rule": ["x"], "row": [1]}))
        statuses, n = read()
        assert statuses[:2] == ["available", "reserved"] and n == 2
    statuses, n = read()
    assert statuses[:2] == ["available", "sold"] and n == 3


def test_gdal_inside_a_sqlite_write_of_the_same_file_is_refused(tmp_path):
    """Within one process and thread, a GDAL read of the store while this thread's
    sqlite3 transaction holds the write lock would drop that lock: refused, not done."""
    from omw_sites.store.gpkg_backend import GeoPackageBackend

    store = GeoPackageBackend(tmp_path / "s.gpkg")
    store.bulk_load(make_sites(), make_layers())
    with pytest.raises(StoreError, match="GDAL and sqlite3"), store.transaction():
        GeoPackageBackend(tmp_path / "s.gpkg").read_layer("sites")
    assert len(store.read_layer("sites")) == 4


# ---------------------------------------------------------------- PostGIS specifics


@pytest.fixture
def pg(postgis_url):
    """A loaded PostGIS store in a fresh schema (no GeoPackage counterpart)."""
    from omw_sites.store.postgis import PostGISBackend

    backend = PostGISBackend(postgis_url, schema=f"t_{uuid.uuid4().hex[:16]}")
    backend.bulk_load(make_sites(), make_layers())
    yield backend
    _drop_schema(postgis_url, backend.schema)
    backend.close()


def test_postgis_tables_have_typed_columns_and_indexes(pg):
    cols = pg.query(
        "SELECT column_name, data_type, udt_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = 'sites' ORDER BY ordinal_position",
        [pg.schema],
    )
    types = dict(zip(cols["column_name"], cols["data_type"], strict=True))
    assert types["fid"] == "bigint" and types["parcels"] == "bigint"
    assert types["area_ha"] == "double precision" and types["flood"] == "boolean"
    assert types["name"] == "text" and types["geom"] == "USER-DEFINED"
    geom = pg.query(
        "SELECT type, srid FROM geometry_columns WHERE f_table_schema = ? "
        "AND f_table_name = 'sites'",
        [pg.schema],
    )
    assert geom.to_dict("records") == [{"type": "GEOMETRY", "srid": 2180}]
    idx = pg.query("SELECT indexdef FROM pg_indexes WHERE schemaname = ?", [pg.schema])
    defs = " | ".join(idx["indexdef"])
    assert "sites USING gist (geom)" in defs and "gminy USING gist (geom)" in defs
    assert "sites USING btree (site_id)" in defs and "sites USING btree (fid)" in defs
    pg.init()  # the change feed's and the history's lookups are indexed too
    idx = pg.query("SELECT indexname FROM pg_indexes WHERE schemaname = ?", [pg.schema])
    assert {"site_history_site_id_idx", "site_history_changed_at_idx"} <= set(idx["indexname"])
    assert "store_meta" not in pg.list_layers()
    assert "spatial_ref_sys" not in pg.list_layers()
    with pg.transaction() as tx:  # fid keeps counting after the bulk load
        tx.insert("quarantine", pd.DataFrame({"record": ["d3"]}))
    assert pg.read_layer("quarantine", fid_as_index=True).index.tolist() == [1, 2, 3]


def test_postgis_connection_error_names_url_without_password():
    from omw_sites.store.postgis import PostGISBackend

    b = PostGISBackend("postgresql://omw:s3cret@127.0.0.1:1/omw")
    with pytest.raises(StoreError) as err:
        b.exists()
    assert "127.0.0.1:1/omw" in str(err.value) and "s3cret" not in str(err.value)
    assert "s3cret" not in b.target


def test_placeholder_translation():
    from omw_sites.store.postgis import translate_placeholders

    assert (
        translate_placeholders("SELECT * FROM t WHERE a = ? AND b LIKE 'x?%' AND \"c?\" = ?")
        == "SELECT * FROM t WHERE a = %s AND b LIKE 'x?%%' AND \"c?\" = %s"
    )


def test_postgis_tables_of_other_types_take_the_csv_path(pg):
    """Columns the binary COPY encoder does not write (integer, varchar) still load."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (fid bigserial PRIMARY KEY, code varchar(8), n integer, "
                "share real)"
            ).format(sql.Identifier(pg.schema, "legacy"))  # fmt: skip
        )
    rows = pd.DataFrame({"code": ["ŁÓD", None, ""], "n": [1, 2, 3], "share": [0.5, np.nan, 2.0]})
    with pg.transaction() as tx:
        tx.insert("legacy", rows)
    got = pg.read_layer("legacy")
    assert got["code"].iloc[0] == "ŁÓD" and pd.isna(got["code"].iloc[1])
    assert got["code"].iloc[2] == ""
    assert got["n"].tolist() == [1, 2, 3] and got["n"].dtype == np.int64
    assert got["share"].iloc[0] == 0.5 and np.isnan(got["share"].iloc[1])


def test_postgis_bulk_load_edge_values(pg):
    """Zero rows, all-NULL columns, infinities, long text and NULL geometry survive."""
    empty = make_sites().iloc[:0]
    pg.bulk_load(empty, make_layers())
    got = pg.read_layer("sites")
    assert len(got) == 0 and list(got.columns) == list(empty.columns)
    sites = make_sites()
    sites["area_ha"] = [np.inf, -np.inf, np.nan, 0.0]
    sites["notes"] = pd.Series([None] * 4, dtype=object)
    sites["long"] = ["ż" * 100_000, "a\nb\tc\\d\"e'f,g", None, "x"]
    sites.loc[1, "geometry"] = None
    pg.bulk_load(sites, make_layers())
    got = pg.read_layer("sites")
    assert got["area_ha"].tolist()[:2] == [np.inf, -np.inf] and np.isnan(got["area_ha"].iloc[2])
    assert got["notes"].isna().all()
    assert got["long"].iloc[0] == "ż" * 100_000
    assert got["long"].iloc[1] == "a\nb\tc\\d\"e'f,g"
    assert got.geometry.iloc[1] is None
    assert_geoms_equal(got.geometry.iloc[[0, 2, 3]], sites.geometry.iloc[[0, 2, 3]])


# ---------------------------------------------------------------- versions and conflicts


def test_every_commit_raises_the_version_by_one(backend):
    assert backend.version() == 0  # not created yet
    backend.bulk_load(make_sites(), make_layers())
    loaded = backend.version()
    assert loaded > 0
    backend.init()
    start = backend.version()
    backend.init()  # nothing to make: no write
    assert backend.version() == start
    for i in range(3):
        with backend.transaction() as tx:
            tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S1"], "status": [str(i)]}))
        assert backend.version() == start + i + 1
    with pytest.raises(Boom), backend.transaction():
        raise Boom("rolled back: no new version")
    assert backend.version() == start + 3
    backend.bulk_load(make_sites(), make_layers())  # a replaced store counts on
    assert backend.version() > start + 3


def test_a_write_from_a_stale_version_is_refused_and_writes_nothing(loaded):
    from omw_sites.store.base import StoreConflict

    seen = loaded.version()
    with loaded.transaction(expect_version=seen) as tx:
        tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S1"], "status": ["sold"]}))
    before = snapshot(loaded)
    with pytest.raises(StoreConflict, match="changed meanwhile"):
        with loaded.transaction(expect_version=seen) as tx:
            tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S2"], "status": ["x"]}))
    assert_same_snapshot(before, snapshot(loaded))
    assert loaded.version() == seen + 1
    # a first load prepared before that commit does not replace the store either
    with pytest.raises(StoreConflict):
        loaded.bulk_load(make_sites().iloc[:1], make_layers(), expect_version=seen)
    assert_same_snapshot(before, snapshot(loaded))
    loaded.bulk_load(make_sites().iloc[:1], make_layers(), expect_version=seen + 1)
    assert len(loaded.read_layer("sites")) == 1


def test_two_current_records_of_one_site_id_are_impossible(loaded):
    with pytest.raises(StoreError, match="two current records"):
        with loaded.transaction() as tx:
            tx.insert("sites", make_sites().iloc[:1])  # S1 is current
    ended = make_sites().iloc[[0]].assign(ended_at="2026-12-01T00:00:00.000000Z")
    with loaded.transaction() as tx:  # an ended record of S1 (history) is fine
        tx.insert("sites", ended)
    sites = loaded.read_layer("sites")
    assert (sites["site_id"] == "S1").sum() == 2
    # a first load holding one ID twice is refused before the store is replaced
    twice = pd.concat([make_sites(), make_sites().iloc[[1]]], ignore_index=True)
    with pytest.raises(StoreError):
        loaded.bulk_load(gpd.GeoDataFrame(twice, crs=2180), make_layers())
    assert len(loaded.read_layer("sites")) == 5


def test_an_old_store_with_two_current_records_is_named_not_refused(opener, caplog):
    """A store from before the unique index may already hold two current records of one
    site ID: init() says which (one line) and carries on; the index follows once they
    are ended."""
    backend = opener()
    backend.bulk_load(make_sites(), make_layers())
    _drop_current_index(backend)
    with backend.transaction() as tx:
        tx.insert("sites", make_sites().iloc[[1, 3]])  # S2 and S4 twice
    with caplog.at_level("WARNING", logger="omw_sites.store"):
        backend.init()
    lines = [r.getMessage() for r in caplog.records if "current record" in r.getMessage()]
    assert len(lines) == 1 and "S2, S4" in lines[0] and "\n" not in lines[0]
    from omw_sites.store import Inventory

    assert Inventory(backend).duplicate_current_ids() == ["S2", "S4"]
    found = backend.read_layer("sites", where="site_id IN ('S2', 'S4')", fid_as_index=True)
    newer = found.reset_index().groupby("site_id")["fid"].max()  # the records inserted last
    extra = pd.DataFrame({"fid": newer.to_numpy(), "ended_at": ["2026-12-01T00:00:00Z"] * 2})
    with backend.transaction() as tx:
        tx.update("sites", "fid", extra)
    backend.init()
    assert Inventory(backend).duplicate_current_ids() == []
    with pytest.raises(StoreError, match="two current records"), backend.transaction() as tx:
        tx.insert("sites", make_sites().iloc[[1]])


def _drop_current_index(backend) -> None:
    if hasattr(backend, "path"):
        import sqlite3

        with sqlite3.connect(backend.path) as conn:
            conn.execute("DROP INDEX IF EXISTS idx_sites_current_site_id")
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(backend.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP INDEX IF EXISTS {}").format(
                sql.Identifier(backend.schema, "sites_current_site_id_key")
            )
        )


# ---------------------------------------------------------------- storage errors

HOLD = """
import sys, time
from omw_sites.store import open_backend
backend = open_backend(sys.argv[1])
with backend.transaction():
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_write_lock(target: str, seconds: float):
    """Another process holding the store's write lock (an open write transaction)."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, target, str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.strip() == "holding", proc.stderr.read()
    return proc


def _target_of(backend) -> str:
    if hasattr(backend, "path"):
        return str(backend.path)
    return f"{backend.url}?schema={backend.schema}"


def test_a_lock_held_too_long_is_one_clear_error_and_the_store_intact(loaded, monkeypatch):
    import time

    from omw_sites.store import open_backend

    target = _target_of(loaded)
    monkeypatch.setenv("OMW_LOCK_TIMEOUT", "1")
    waiting = open_backend(target) if hasattr(loaded, "path") else _fresh_pg(loaded)
    before = snapshot(loaded)
    proc = _hold_write_lock(target, 20)
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError) as err:
            with waiting.transaction() as tx:
                tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S1"], "status": ["x"]}))
        waited = time.monotonic() - t0
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    message = str(err.value)
    assert "lock" in message and "1 s" in message and "\n" not in message, message
    assert waited < 10
    assert_same_snapshot(before, snapshot(loaded))
    waiting.close()


def _fresh_pg(backend):
    from omw_sites.store.postgis import PostGISBackend

    return PostGISBackend(backend.url, schema=backend.schema)  # reads OMW_LOCK_TIMEOUT


def test_a_failing_close_after_commit_is_not_a_failed_write(tmp_path, monkeypatch):
    """Once COMMIT succeeded the write is reported as done, whatever happens after."""
    import sqlite3

    from omw_sites.store.gpkg_backend import GeoPackageBackend

    store = GeoPackageBackend(tmp_path / "s.gpkg")
    store.bulk_load(make_sites(), make_layers())

    class Flaky(sqlite3.Connection):
        def close(self):
            super().close()
            raise sqlite3.OperationalError("disk I/O error (simulated, after commit)")

    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real(*a, factory=Flaky, **k))
    with store.transaction() as tx:
        tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S1"], "status": ["sold"]}))
    monkeypatch.setattr(sqlite3, "connect", real)
    assert store.read_layer("sites")["status"].iloc[0] == "sold"


DISK_FULL = """
import resource, signal, sys
import pandas as pd
from omw_sites.store.base import RUNS_COLUMNS, StoreError
from omw_sites.store.gpkg_backend import GeoPackageBackend
store = GeoPackageBackend(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
rows = pd.DataFrame({c: ["x" * 2000] * 400 if k == "text" else [0] * 400
                     for c, k in RUNS_COLUMNS.items()})
try:
    with store.transaction() as tx:
        tx.insert("runs", rows)
except StoreError as exc:
    print(exc)
    sys.exit(2)
"""


def test_a_full_disk_is_one_clear_error_and_the_store_intact(tmp_path):
    """The file may not grow (a file size limit: the write fails as on a full disk)."""
    import sqlite3
    import subprocess
    import sys

    from omw_sites.store.gpkg_backend import GeoPackageBackend

    path = tmp_path / "s.gpkg"
    store = GeoPackageBackend(path)
    store.bulk_load(make_sites(), make_layers())
    store.init()
    before = snapshot(store)
    res = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(path), str(path.stat().st_size + 8192)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    line = res.stdout.strip()
    assert "\n" not in line and "disk" in line and str(path) in line, line
    assert_same_snapshot(before, snapshot(store))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_damaged_store_is_an_error_never_replaced(tmp_path):
    """A file that is not a GeoPackage (damaged, or something else) is not "a store
    without sites" that a first load may replace."""
    from sample_store import sample_data

    from omw_sites.store import open_inventory

    path = tmp_path / "s.gpkg"
    path.write_bytes(b"not a database " * 100)
    sites, reference, info = sample_data(10, seed=1)
    with pytest.raises(StoreError, match="damaged or not a GeoPackage"):
        open_inventory(path).apply(sites, reference, info)
    assert path.read_bytes() == b"not a database " * 100


def test_new_store_files_are_readable_by_their_owner_only(tmp_path):
    import stat

    from omw_sites.store.gpkg_backend import GeoPackageBackend

    def mode(p) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    made = tmp_path / "init.gpkg"
    GeoPackageBackend(made).init()
    loaded = tmp_path / "load.gpkg"
    GeoPackageBackend(loaded).bulk_load(make_sites(), make_layers())
    assert mode(made) == mode(loaded) == 0o600
    GeoPackageBackend(loaded).bulk_load(make_sites(), make_layers())  # replaced by rename
    assert mode(loaded) == 0o600
    loaded.chmod(0o644)  # made by an older version: the group may keep reading, no one else
    GeoPackageBackend(loaded).bulk_load(make_sites(), make_layers())
    assert mode(loaded) == 0o640
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file or folder left
