"""PostGIS reads of a few columns come packed (one binary value per column); they must
equal the row-by-row COPY path exactly: values, NULLs, empty text, order, dtypes."""

from __future__ import annotations

import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import omw_sites.store.postgis as pg
from omw_sites.store import open_backend


@pytest.fixture
def backend(postgis_url):
    b = open_backend(f"{postgis_url}?schema=p_{uuid.uuid4().hex[:10]}")
    n = 257
    rng = np.random.default_rng(4)
    frame = gpd.GeoDataFrame(
        {
            "name": [
                None if i % 7 == 0 else ("" if i % 5 == 0 else f'Zażółć {i}, "q"\n')
                for i in range(n)
            ],
            "count": pd.array(
                [None if i % 11 == 0 else i * 10**12 for i in range(n)], dtype="Int64"
            ),
            "big": np.iinfo(np.int64).min + np.arange(n),
            "share": np.where(rng.uniform(size=n) < 0.2, np.nan, rng.uniform(size=n)),
            "flag": pd.array(
                [None if i % 13 == 0 else i % 2 == 0 for i in range(n)], dtype="boolean"
            ),
        },
        geometry=shapely.points(np.arange(n), np.arange(n)),
        crs=2180,
    )
    b.bulk_load(frame, {})
    yield b
    b.close()


@pytest.mark.parametrize(
    "columns",
    [["name"], ["count", "big"], ["share", "flag"], ["name", "count", "big", "share", "flag"]],
)
@pytest.mark.parametrize("where", [None, "fid % 3 = 0", "fid < 0"])
def test_packed_equals_copy(backend, columns, where, monkeypatch):
    packed = backend.read_layer(
        "sites", columns=columns, where=where, read_geometry=False, fid_as_index=True
    )
    monkeypatch.setattr(pg, "PACKED_MAX_COLUMNS", 0)
    copied = backend.read_layer(
        "sites", columns=columns, where=where, read_geometry=False, fid_as_index=True
    )
    pd.testing.assert_frame_equal(packed, copied)
    if where is None:
        assert len(packed) == 257 and packed.index.is_monotonic_increasing
        if "name" in columns:
            assert packed["name"].isna().sum() == 37 and (packed["name"] == "").sum() > 0
        if "big" in columns:
            assert packed["big"].iloc[0] == np.iinfo(np.int64).min
