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
        tx.insert("sites", make_sites().iloc[:1])
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


def test_reader_sees_old_state_during_an_open_write(loaded, opener):
    reader = opener()
    with loaded.transaction() as tx:
        tx.update("sites", "site_id", pd.DataFrame({"site_id": ["S2"], "status": ["sold"]}))
        tx.insert("quarantine", pd.DataFrame({"record": ["d3"], "rule": ["x"], "row": [1]}))
        during = reader.read_layer("sites", columns=["site_id", "status"])
        assert during["status"].tolist()[:2] == ["available", "reserved"]
        assert len(reader.read_layer("quarantine")) == 2
    after = reader.read_layer("sites", columns=["site_id", "status"])
    assert after["status"].tolist()[:2] == ["available", "sold"]
    assert len(reader.read_layer("quarantine")) == 3


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
