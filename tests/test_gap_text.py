"""The stored gap text (``gaps_<profile>``) names exactly the networks and rules that fail."""

from __future__ import annotations

from test_scoring import _full_sites

from omw_sites.scoring.engine import score_profile
from omw_sites.scoring.profiles import load_profiles


def test_only_the_failing_network_is_named() -> None:
    prof = load_profiles(["logistics"])[0]  # check: dist_water_m < 300 and dist_sewer_m < 300
    df = _full_sites(4)
    df["zoning_class"] = "P"
    df["area_ha"] = 5.0
    df["dist_power_m"] = 100.0
    df["dist_water_m"] = [100.0, 900.0, 900.0, 100.0]
    df["dist_sewer_m"] = [659.0, 100.0, 900.0, 100.0]
    res = score_profile(df, prof)
    assert res["gaps_logistics"].tolist() == [
        "no sewer within 300 m",  # water at 100 m: only the sewer fails
        "no water main within 300 m",
        "no water and sewer within 300 m",  # both fail: the profile's own words
        "",
    ]
    # one failed check is one gap, however many of its terms fail
    assert res["tier_logistics"].tolist() == ["B", "B", "B", "A"]
