"""Scoring units: profiles load and validate, value functions, WLC, ranks, constraints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omw_sites.scoring import ProfileError, load_profile, load_profiles
from omw_sites.scoring.engine import score_profile
from omw_sites.scoring.expr import ExpressionError, evaluate
from omw_sites.scoring.methods import rank_scores, wlc
from omw_sites.scoring.profiles import Criterion
from omw_sites.scoring.value import value


def test_builtin_profiles_load_with_normalised_weights():
    profs = {p.name: p for p in load_profiles()}
    assert {"logistics", "manufacturing", "office"} <= set(profs)
    for p in profs.values():
        assert sum(p.weights.values()) == pytest.approx(1.0)
        assert p.rationale and len(p.hash) == 12 and p.constraints


def _write(tmp_path, body: str):
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_unknown_criterion_names_file_and_criterion(tmp_path):
    path = _write(tmp_path, "[criteria.dist_to_moon_m]\nweight = 1\nbounds = [0, 1]\n")
    with pytest.raises(ProfileError, match=r"bad\.toml.*dist_to_moon_m"):
        load_profile(path)


def test_weights_must_sum_positive(tmp_path):
    body = (
        "[criteria.area_ha]\nweight = 0\nbounds = [0, 1]\n"
        "[criteria.dist_centre_m]\nweight = 0\nbounds = [0, 9]\n"
    )
    with pytest.raises(ProfileError, match="sum to a positive"):
        load_profile(_write(tmp_path, body))


def test_negative_weight_and_bad_constraint(tmp_path):
    with pytest.raises(ProfileError, match="weight must be"):
        load_profile(_write(tmp_path, "[criteria.area_ha]\nweight = -1\nbounds = [0, 1]\n"))
    body = (
        "[[constraints]]\nexpr = \"__import__('os')\"\n"
        "[criteria.area_ha]\nweight = 1\nbounds = [0, 1]\n"
    )
    with pytest.raises(ProfileError, match="not allowed|unknown"):
        load_profile(_write(tmp_path, body))


def test_value_functions():
    lin = Criterion("d", 1.0, "linear", "cost", bounds=(0, 100))
    assert value(lin, np.array([0, 50, 200, np.nan, np.inf])).tolist() == [1, 0.5, 0, 0, 0]
    pw = Criterion("d", 1.0, "piecewise", points=((0, 1), (10, 0.5), (20, 0)))
    assert value(pw, np.array([5, 15, 99])).tolist() == [0.75, 0.25, 0]
    boolean = Criterion("b", 1.0, "boolean")
    assert value(boolean, np.array([1, 0])).tolist() == [1, 0]


def test_wlc_and_min_ties():
    m = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.0, 0.0]])
    s = wlc(m, np.array([3.0, 1.0]))
    assert s.tolist() == pytest.approx([0.75, 0.5, 0.5, 0.0])
    r = rank_scores(s, np.array([True, True, True, True]))
    assert r.tolist() == [1, 2, 2, 4]
    r = rank_scores(s, np.array([False, True, True, True]))
    assert r.tolist() == [0, 1, 1, 3]
    with pytest.raises(ValueError, match="do not match"):
        wlc(m, np.array([1.0]))


def test_expression_evaluation_is_safe():
    cols = {"a": np.array([1, 5]), "z": np.array(["P", "MN"])}
    assert evaluate("a < 3 and z in ['P', 'U']", cols).tolist() == [True, False]
    assert evaluate("not (a >= 3)", cols).tolist() == [True, False]
    with pytest.raises(ExpressionError):
        evaluate("a.__class__", cols)
    with pytest.raises(ExpressionError):
        evaluate("open('x')", cols)


def _sites(n=4):
    return pd.DataFrame(
        {
            "area_ha": [5.0, 5.0, 0.5, 10.0][:n],
            "dist_junction_m": [1000.0, 20000.0, 500.0, 2000.0][:n],
            "flood_share": [0.0, 0.0, 0.0, 0.5][:n],
            "natura_share": [0.0] * n,
            "zoning_class": ["P", "P/U", "P", "P"][:n],
            "planning_instrument": ["mpzp"] * n,
            "plan_zone": [""] * n,
            "ownership": ["private"] * n,
        }
    )


def test_profile_scores_excludes_and_ranks(tmp_path):
    body = """
name = "t"
min_area_ha = 1
compatible_classes = ["P"]
[[constraints]]
expr = "flood_share < 0.05"
reason = "flooded"
[criteria.dist_junction_m]
weight = 1
direction = "cost"
bounds = [0, 10000]
"""
    prof = load_profile(_write(tmp_path, body))
    res = score_profile(_sites(), prof)
    assert res["excluded_t"].tolist() == ["", "", "area below 1 ha", "flooded"]
    assert res["rank_t"].tolist() == [1, 2, 0, 0]
    assert res["score_t"].iloc[0] == pytest.approx(0.9)
    assert np.isnan(res["score_t"].iloc[3])


def test_fixed_bounds_make_scores_independent_of_other_sites(tmp_path):
    prof = load_profile(load_profiles(["logistics"])[0].source)
    df = _sites()
    df = df.assign(**{c: 100.0 for c in prof.weights if c not in df})
    full = score_profile(df, prof)["score_logistics"]
    part = score_profile(df.iloc[:2], prof)["score_logistics"]
    assert full.iloc[:2].tolist() == part.tolist()
