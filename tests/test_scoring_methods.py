"""MCDA methods and weights against the published cases in ../shared/mcda_cases/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omw_sites.scoring.methods import promethee2, rank_values, topsis, vikor, wlc
from omw_sites.scoring.weights import ahp, entropy

CASES = Path(__file__).resolve().parents[2] / "shared" / "mcda_cases"


def case(name: str) -> dict:
    path = CASES / f"{name}.json"
    if not path.exists():  # the published cases are part of the shared fixtures
        pytest.fail(f"published MCDA case missing: {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def test_topsis_tzeng_huang_2011():
    c = case("topsis_tzeng_huang2011")
    i, tol = c["inputs"], c["tolerance"]["closeness_abs"]
    got = topsis(i["matrix"], i["weights"], i["types"])
    np.testing.assert_allclose(got, c["expected"]["closeness"], atol=tol)
    assert rank_values(got).tolist() == c["expected"]["rank"]
    mm = topsis(i["matrix"], i["weights"], i["types"], normalization="minmax")
    np.testing.assert_allclose(mm, c["negative_checks"]["minmax_normalisation_gives"], atol=tol)


def test_promethee2_zhao_2013():
    c = case("promethee2_zhao2013")
    i = c["inputs"]
    got = promethee2(i["matrix"], i["weights"], i["types"])
    np.testing.assert_allclose(got, c["expected"]["net_flow"], atol=c["tolerance"]["net_flow_abs"])
    assert rank_values(got).tolist() == c["expected"]["rank"]


def test_entropy_elsayed_2017_and_zero_log_zero():
    c = case("entropy_elsayed2017")
    m = np.array(c["inputs"]["matrix"], dtype=float)
    tol = c["tolerance"]["weights_abs"]
    np.testing.assert_allclose(entropy(m), c["expected"]["weights"], atol=tol)
    m[0, 0] = 0.0
    want = c["edge_case_computed_here"]["weights_with_0ln0_eq_0 (scikit-criteria and our code)"]
    np.testing.assert_allclose(entropy(m), want, atol=1e-4)


def test_ahp_saaty_2008_drinks():
    c = case("ahp_saaty2008_drinks")
    res = ahp(c["inputs"]["pairwise_matrix"], c["criteria"])
    tol = c["tolerance"]
    np.testing.assert_allclose(res.weights, c["expected"]["weights"], atol=tol["weights_abs"])
    assert res.cr == pytest.approx(c["expected"]["CR"], abs=tol["CR_abs"])
    assert res.lambda_max == pytest.approx(c["computed_here_not_published"]["lambda_max"], abs=1e-3)
    assert res.ci == pytest.approx(c["computed_here_not_published"]["CI"], abs=1e-3)
    assert res.consistent and "acceptable" in res.advice()


def test_ahp_inconsistent_names_the_worst_judgement():
    # a > b (3), b > c (3) but c > a (3): circular
    m = [[1, 3, "1/3"], ["1/3", 1, 3], [3, "1/3", 1]]
    res = ahp(m, ["junction", "power", "sewer"])
    assert res.cr > 0.1 and not res.consistent
    advice = res.advice()
    assert "revise" in advice and "junction" in advice
    assert res.worst and res.worst[0].error > 0.5
    with pytest.raises(ValueError, match="not reciprocal"):
        ahp([[1, 3], [3, 1]])
    with pytest.raises(ValueError, match="square"):
        ahp([[1, 2, 3], [1, 2, 3]])
    assert ahp([[1, 2], ["1/2", 1]]).cr == 0.0


def test_ahp_random_index_table():
    from omw_sites.scoring.weights import RANDOM_INDEX

    assert RANDOM_INDEX == (0, 0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49)


def test_nan_and_zero_column_errors_name_the_criterion():
    import pandas as pd

    df = pd.DataFrame({"dist_sewer_m": [1.0, np.nan], "area_ha": [1.0, 2.0]})
    for fn in (
        lambda m: wlc(m, [1, 1]),
        lambda m: topsis(m, [1, 1], [-1, 1]),
        lambda m: vikor(m, [1, 1], [-1, 1]),
        lambda m: promethee2(m, [1, 1], [-1, 1]),
        entropy,
    ):
        with pytest.raises(ValueError, match="dist_sewer_m"):
            fn(df)
    zero = pd.DataFrame({"dist_sewer_m": [1.0, 2.0], "power_capacity_mw": [0.0, 0.0]})
    for fn in (lambda m: topsis(m, [1, 1], [-1, 1]), entropy):
        with pytest.raises(ValueError, match="power_capacity_mw.*zero for every"):
            fn(zero)
    with pytest.raises(ValueError, match="criterion #2"):
        topsis(np.array([[1.0, 0.0], [2.0, 0.0]]), [1, 1], [1, 1])
    with pytest.raises(ValueError, match="do not match"):
        wlc(np.ones((2, 2)), [1.0])
    with pytest.raises(ValueError, match=r"\+1 \(benefit\) or -1"):
        topsis(np.ones((2, 2)) + np.eye(2), [1, 1], [1, 0])


def test_min_tie_ranks():
    assert rank_values(np.array([0.9, 0.5, 0.5, 0.1])).tolist() == [1, 2, 2, 4]
    assert rank_values(np.array([0.1, 0.5, 0.5, 0.9]), higher_is_better=False).tolist() == [
        1,
        2,
        2,
        4,
    ]
    assert rank_values(np.array([0.9, np.nan, 0.9])).tolist() == [1, 0, 1]


def test_vikor_hand_computed():
    # two criteria, benefit and cost; best = (3, 1), worst = (1, 5)
    m = np.array([[3.0, 5.0], [1.0, 1.0], [2.0, 3.0]])
    res = vikor(m, [0.6, 0.4], [1, -1], v=0.5)
    np.testing.assert_allclose(res.S, [0.4, 0.6, 0.5])
    np.testing.assert_allclose(res.R, [0.4, 0.6, 0.3])
    # Q = 0.5·(S−0.4)/0.2 + 0.5·(R−0.3)/0.3
    np.testing.assert_allclose(res.Q, [1 / 6, 1.0, 0.25])
    with pytest.raises(ValueError, match="v must be"):
        vikor(m, [1, 1], [1, 1], v=2)


def test_promethee_preference_functions_and_size_limit():
    m = np.array([[0.0], [1.0], [3.0]])
    usual = promethee2(m, [1], [1])
    np.testing.assert_allclose(usual, [-1.0, 0.0, 1.0])
    vshape = promethee2(m, [1], [1], preference="vshape", p=2.0)
    # P(1>0)=0.5, P(3>0)=1, P(3>1)=1 → φ = [(0−1.5)/2, (0.5−1)/2, (2−0)/2]
    np.testing.assert_allclose(vshape, [-0.75, -0.25, 1.0])
    linear = promethee2(m, [1], [1], preference="linear", q=0.5, p=2.5)
    # P(1>0)=0.25, P(3>0)=1, P(3>1)=0.75
    np.testing.assert_allclose(linear, [-0.625, -0.25, 0.875])
    assert promethee2(-m, [1], [-1]).tolist() == pytest.approx(usual.tolist())
    with pytest.raises(ValueError, match="needs the preference threshold"):
        promethee2(m, [1], [1], preference="vshape")
    with pytest.raises(ValueError, match="above the limit of 2"):
        promethee2(m, [1], [1], max_alternatives=2)


def test_wlc_is_weighted_mean_and_topsis_cost_direction():
    m = np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(wlc(m, [3, 1]), [0.75, 0.5])
    cost = topsis(np.array([[1.0], [2.0], [4.0]]), [1], [-1])
    assert cost[0] == pytest.approx(1.0) and cost[2] == pytest.approx(0.0)
