"""The inventory's change detection: the 64-bit content hash sees every change of a
measured value or of the shape, and nothing else."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sample_store import sample_data

from omw_sites.layers import SITE_COLUMNS
from omw_sites.store.hashing import content_hash, geometry_hash
from omw_sites.store.update import derived_columns, multi_sites, tracked_columns


@pytest.fixture(scope="module")
def sites() -> gpd.GeoDataFrame:
    frame, _, _ = sample_data(200, seed=5)
    return multi_sites(frame).reset_index(drop=True)


def _hash(frame: gpd.GeoDataFrame) -> np.ndarray:
    return content_hash(frame, tracked_columns(frame.columns))


def test_equal_content_hashes_equal_and_sites_differ(sites):
    h = _hash(sites)
    assert h.dtype == np.int64
    assert np.array_equal(h, _hash(sites.copy()))
    assert len(np.unique(h)) == len(sites)  # 200 different sites, 200 different hashes


@pytest.mark.parametrize("column", ["dist_sewer_m", "zoning_symbol", "n_parcels", "water_on_site"])
def test_a_change_in_any_one_column_changes_only_that_sites_hash(sites, column):
    new = sites.copy()
    value = new.loc[7, column]
    if isinstance(value, str):
        new.loc[7, column] = value + "x"
    elif isinstance(value, bool | np.bool_):
        new.loc[7, column] = not value
    else:
        new.loc[7, column] = value + 1
    before, after = _hash(sites), _hash(new)
    assert before[7] != after[7]
    assert np.array_equal(np.delete(before, 7), np.delete(after, 7))


def test_every_tracked_column_counts(sites):
    """Each tracked column in turn: a changed value changes the hash."""
    base = _hash(sites)
    for col in tracked_columns(sites.columns):
        new = sites.copy()
        s = new[col]
        if pd.api.types.is_float_dtype(s):
            new.loc[3, col] = (0.0 if np.isnan(s[3]) else s[3]) + 0.5
        elif pd.api.types.is_bool_dtype(s):
            new.loc[3, col] = not s[3]
        elif pd.api.types.is_integer_dtype(s):
            new.loc[3, col] = s[3] + 1
        else:
            new.loc[3, col] = f"{s[3]}-changed"
        assert _hash(new)[3] != base[3], col


def test_float_noise_nan_and_negative_zero_are_no_change(sites):
    new = sites.copy()
    new["dist_sewer_m"] = new["dist_sewer_m"] + 1e-9  # below the 6th decimal
    new.loc[0, "dist_gas_m"] = np.nan
    sites_nan = sites.copy()
    sites_nan.loc[0, "dist_gas_m"] = np.nan
    assert np.array_equal(_hash(new), _hash(sites_nan))
    a, b = sites.copy(), sites.copy()
    a.loc[0, "dist_gas_m"], b.loc[0, "dist_gas_m"] = 0.0, -0.0
    assert _hash(a)[0] == _hash(b)[0]
    c = sites.copy()
    c.loc[0, "dist_gas_m"] = 1e-5  # a real change at the 5th decimal
    assert _hash(c)[0] != _hash(a)[0]


def test_text_null_empty_and_order(sites):
    frame = gpd.GeoDataFrame(
        {"t": pd.Series(["ab", "ba", "", None, "ab"], dtype=object)},
        geometry=[shapely.Point(0, 0)] * 5,
        crs=2180,
    )
    h = content_hash(frame, ["t"], geometry=False)
    assert h[0] == h[4]
    assert len({h[0], h[1], h[2], h[3]}) == 4  # order, empty and NULL all differ


def test_low_and_high_cardinality_text_hash_the_same_way():
    """A column of few values is hashed through its dictionary, a column of many value by
    value: the same text gives the same hash either way."""
    few = pd.Series(["P", "U", "P/U", None] * 5000, dtype="str")
    many = pd.Series([f"id{i}" for i in range(19_996)] + ["P", "U", "P/U", None], dtype="str")
    geoms = [shapely.Point(0, 0)] * 20_000
    hf = content_hash(gpd.GeoDataFrame({"t": few}, geometry=geoms, crs=2180), ["t"], False)
    hm = content_hash(gpd.GeoDataFrame({"t": many}, geometry=geoms, crs=2180), ["t"], False)
    assert np.array_equal(hf[:4], hm[-4:])


def test_geometry_hash_sees_a_moved_vertex_and_ignores_sub_millimetre_noise():
    square = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)])
    moved = shapely.Polygon([(0, 0), (10, 0), (10, 10.01), (0, 10)])
    noisy = shapely.Polygon([(0, 0), (10.0000001, 0), (10, 10), (0, 10)])
    rotated = shapely.Polygon([(10, 0), (10, 10), (0, 10), (0, 0)])
    h = geometry_hash(np.array([square, moved, noisy, rotated], dtype=object))
    assert h[0] != h[1] and h[0] == h[2] and h[0] != h[3]


def test_scores_hash_covers_scores_not_measurements(sites):
    cols = derived_columns(sites.columns)
    assert cols and not set(cols) & set(tracked_columns(sites.columns))
    new = sites.copy()
    new.loc[5, cols[0]] = 0.123456 if new.loc[5, cols[0]] != 0.123456 else 0.5
    new.loc[6, "dist_sewer_m"] = 1.0 + new.loc[6, "dist_sewer_m"]
    a = content_hash(sites, cols, geometry=False)
    b = content_hash(new, cols, geometry=False)
    assert a[5] != b[5] and a[6] == b[6]


def test_hash_values_are_those_stored_by_earlier_versions(sites):
    """Stored hashes are compared with new ones on every update: the values must not
    change when the code computing them does (these were computed by the numpy-only
    implementation of session 3, and kept by the C absorber that followed it)."""
    # recorded on the columns measured then (up to slope_max_pct); a column added since
    # adds its word to the hash, as it must
    names = list(SITE_COLUMNS)
    recorded = set(names[: names.index("slope_max_pct") + 1])
    h = content_hash(sites, [c for c in tracked_columns(sites.columns) if c in recorded])
    assert h[:3].tolist() == [4238997255726209370, -4876665136213074113, -674267768492205766]
    assert int(np.bitwise_xor.reduce(h.view(np.uint64))) == 13054654250085788042
    g = content_hash(sites, derived_columns(sites.columns), geometry=False)
    assert g[:3].tolist() == [4730196905398245622, -7458813312644851504, 6312857493146492213]
    assert int(np.bitwise_xor.reduce(g.view(np.uint64))) == 11020665098040892705
    edge = np.array([0.0, -0.0, 1e-7, 4.9999995e-7, 5e-7, 1.5e-6, 2.5e-6, -2.5e-6, np.nan,
                     np.inf, -np.inf, 1e300, -1e300, 9.2233720368547758e12,
                     -9.2233720368547758e12, 9.3e12, 123.4567895, 2**53,
                     1.7976931348623157e308])  # fmt: skip
    frame = pd.DataFrame({"a": edge, "b": pd.array([1, None] * 9 + [3], dtype="Float64")})
    assert content_hash(frame, ["a", "b"], geometry=False).tolist() == [
        8792951458605872999, -2269738387694016090, 8792951458605872999, -2269738387694016090,
        8792951458605872999, 6116734999238058157, -5659882678931396042, 5595229008977610382,
        8181552530373113322, -1448935821685383028, 8181552530373113322, 4959414175729967201,
        -2023495484062683199, 4959414175729967201, -2023495484062683199, 4959414175729967201,
        5783612303354542800, 4959414175729967201, 8089094719742711400,
    ]  # fmt: skip


def test_text_as_a_categorical_hashes_as_the_text_itself(sites):
    """Text given as a pandas Categorical hashes as the plain text (NULLs and an all-NULL
    column included): a column's dtype is no change of the site."""
    frame = sites[["zoning_symbol", "gmina"]].copy()
    frame.loc[[2, 5], "zoning_symbol"] = None
    frame["nothing"] = pd.Series([None] * len(frame), dtype="str")
    coded = frame.astype("category")
    cols = list(frame.columns)
    assert np.array_equal(
        content_hash(frame, cols, geometry=False), content_hash(coded, cols, geometry=False)
    )
