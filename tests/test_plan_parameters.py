"""What the plan allows: height, coverage, intensity and biologically active share.

Read from a municipal MPZP layer (text with a decimal comma or a dot, as real layers mix
them), from a plan ogólny exported to GPKG and from the real APP 2.0 GML fixture; then
measured per site from the MPZP designation covering most of it, else from its plan
ogólny zone; and used by the built-in profiles' constraints, where a site without the
plan's parameters is not excluded.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely import box

from omw_sites.criteria.measure import measure
from omw_sites.etl.ingest import QUARANTINE_COLUMNS, RawData, _merge_app_zones, read_raw_layer
from omw_sites.etl.mpzp import read_mpzp
from omw_sites.layers import RAW_BY_KEY, SITE_COLUMNS, WORK_CRS
from omw_sites.scoring import load_profiles, score_profile

X0, Y0 = 640_000.0, 480_000.0
PARAMS = ("max_height_m", "max_coverage_share", "intensity_min", "intensity_max")
PARAMS += ("min_bio_active_share",)


def _mpzp_file(tmp_path: Path) -> Path:
    """1P/U in both decimal styles; 2KDD (a street) with no parameters."""
    gdf = gpd.GeoDataFrame(
        {
            "SYMBOL": ["1P/U", "2P", "3KDD"],
            "WYS_MAX": ["12,5", "18.0", None],
            "POW_ZAB_MAX": ["60", "70,5", None],
            "INTENS_MIN": ["0,2", "0.1", None],
            "INTENS_MAX": ["1,5", "2", None],
            "PBC_MIN": ["25", "10,0", None],
        },
        geometry=[
            box(X0, Y0, X0 + 70, Y0 + 100),
            box(X0 + 70, Y0, X0 + 300, Y0 + 100),
            box(X0, Y0 - 20, X0 + 300, Y0),
        ],
        crs=WORK_CRS,
    )
    path = tmp_path / "mpzp.gpkg"
    gdf.to_file(path, layer="przeznaczenie")
    return path


def test_mpzp_parameters_in_both_decimal_styles(tmp_path):
    path = _mpzp_file(tmp_path)
    for frame in (read_raw_layer(path, RAW_BY_KEY["zoning"])[0], read_mpzp(path).frame):
        assert frame["max_height_m"].tolist()[:2] == [12.5, 18.0]
        assert frame["max_coverage_pct"].tolist()[:2] == [60.0, 70.5]
        assert frame["intensity_min"].tolist()[:2] == [0.2, 0.1]
        assert frame["intensity_max"].tolist()[:2] == [1.5, 2.0]
        assert frame["min_bio_active_pct"].tolist()[:2] == [25.0, 10.0]
        assert frame.iloc[2][["max_height_m", "intensity_max"]].isna().all()


def test_plan_ogolny_parameters_from_gpkg_and_from_the_real_app_gml(tmp_path, fixtures_dir):
    gdf = gpd.GeoDataFrame(
        {
            "symbol": ["SP"],
            "maksWysokoscZabudowy": ["20,0"],
            "maksUdzialPowierzchniZabudowy": ["60"],
            "maksNadziemnaIntensywnoscZabudowy": ["1,8"],
            "minUdzialPowierzchniBiologicznieCzynnej": ["20"],
        },
        geometry=[box(X0, Y0, X0 + 1000, Y0 + 1000)],
        crs=WORK_CRS,
    )
    path = tmp_path / "plan_ogolny.gpkg"
    gdf.to_file(path, layer="StrefaPlanistyczna")
    zones = read_raw_layer(path, RAW_BY_KEY["plan_zones"])[0]
    row = zones.iloc[0]
    assert (row["max_height_m"], row["max_building_share_pct"]) == (20.0, 60.0)
    assert (row["max_intensity"], row["min_biologically_active_pct"]) == (1.8, 20.0)
    gml = fixtures_dir / "app_pog" / "set1" / "strefy" / "StrefaPlanistyczna.gml"
    merged, _, _ = _merge_app_zones(None, [gml], {})
    assert merged is not None
    first = merged.iloc[0]  # <app:maksWysokoscZabudowy uom="m">15.0</…> and its kin
    assert (first["max_height_m"], first["max_building_share_pct"]) == (15.0, 50.0)
    assert (first["max_intensity"], first["min_biologically_active_pct"]) == (0.8, 50.0)
    # zones without the parameters (SI, SN, …, where the law asks none) stay unknown
    assert merged["max_height_m"].isna().sum() == 10


def _raw(layers: dict) -> RawData:
    return RawData(dict(layers), None, {}, pd.DataFrame(columns=QUARANTINE_COLUMNS))


def test_each_site_gets_the_parameters_of_the_plan_covering_most_of_it(tmp_path):
    """A: 70 % under 1P/U (30 % under 2P): 1P/U's values. B: no MPZP, in the SP zone:
    the plan ogólny's (no minimum intensity there). C: neither: unknown."""
    zoning = read_raw_layer(_mpzp_file(tmp_path), RAW_BY_KEY["zoning"])[0]
    plan = gpd.GeoDataFrame(
        {
            "symbol": ["SP"],
            "teryt": ["1465011"],
            "max_height_m": [20.0],
            "max_building_share_pct": [60.0],
            "max_intensity": [1.8],
            "min_biologically_active_pct": [20.0],
        },
        geometry=[box(X0 - 1000, Y0 - 1000, X0 + 1000, Y0 + 1000)],
        crs=WORK_CRS,
    )
    sites = gpd.GeoDataFrame(
        {"site_id": ["A", "B", "C"], "teryt": ["1465011"] * 3, "area_ha": [1.0, 1.0, 1.0]},
        geometry=[
            box(X0, Y0, X0 + 100, Y0 + 100),
            box(X0 + 500, Y0 + 500, X0 + 600, Y0 + 600),
            box(X0 + 5000, Y0, X0 + 5100, Y0 + 100),
        ],
        crs=WORK_CRS,
    )
    out, cov = measure(sites, _raw({"zoning": zoning, "plan_zones": plan}))
    got = out[list(PARAMS)].to_numpy(dtype=float)
    want = np.array(
        [
            [12.5, 0.6, 0.2, 1.5, 0.25],
            [20.0, 0.6, np.nan, 1.8, 0.2],
            [np.nan] * 5,
        ]
    )
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert not set(PARAMS) & set(cov.not_measured)
    # no zoning layers at all: not measured, and said why
    out, cov = measure(sites, _raw({}))
    assert out[list(PARAMS)].isna().all(axis=None)
    assert all(c in cov.not_measured for c in PARAMS)


def _profile_sites(height: list[float]) -> pd.DataFrame:
    n = len(height)
    data = {c: np.full(n, np.nan) for c in SITE_COLUMNS}
    data.update(
        site_id=[f"S{i}" for i in range(n)],
        area_ha=np.full(n, 10.0),
        zoning_class=["P"] * n,
        planning_instrument=["mpzp"] * n,
        plan_zone=[""] * n,
        ownership=["private"] * n,
        flood_share=np.zeros(n),
        natura_share=np.zeros(n),
        time_junction_min=np.full(n, 5.0),
        max_height_m=np.asarray(height, dtype=float),
    )
    return pd.DataFrame(data)


@pytest.mark.parametrize(("profile", "limit"), [("logistics", 12), ("manufacturing", 10)])
def test_a_plan_too_low_for_the_profile_excludes_and_unknown_does_not(profile, limit):
    prof = load_profiles([profile])[0]
    res = score_profile(_profile_sites([limit - 3, limit, np.nan]), prof)
    excluded = res[f"excluded_{profile}"].tolist()
    assert excluded[0].startswith(f"the plan allows buildings under {limit} m")
    assert excluded[1] == "" and excluded[2] == ""
    assert (res[f"rank_{profile}"].to_numpy()[1:] > 0).all()


def test_a_store_from_before_these_columns_still_scores():
    """Sites measured before the plan parameters and the workforce existed (an older
    inventory rescored): the height constraint is not applied and the workforce criterion
    drops out — no error, nobody excluded for it."""
    prof = load_profiles(["logistics"])[0]
    old = _profile_sites([9.0, 12.0]).drop(columns=["max_height_m", "workforce_30min"])
    res = score_profile(old, prof)
    assert res["excluded_logistics"].tolist() == ["", ""]
    assert (res["rank_logistics"] > 0).all()
