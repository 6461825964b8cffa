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


def test_criterion_without_its_parameters_is_refused_when_made():
    # a value function's parameters are checked where the criterion is made, not at the
    # first site scored (which failed with "cannot unpack non-iterable NoneType")
    with pytest.raises(ValueError, match="'d': linear needs bounds"):
        Criterion("d", 1.0, "linear")
    with pytest.raises(ValueError, match="'g': gaussian needs spread"):
        Criterion("g", 1.0, "gaussian", ideal=6)
    assert Criterion("b", 1.0, "boolean").bounds is None


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


# ------------------------------------------------------------ profiles, engine, explain


def _full_sites(n: int = 400, seed: int = 1) -> pd.DataFrame:
    from omw_sites.layers import SITE_COLUMNS

    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for col, (unit, _) in SITE_COLUMNS.items():
        if unit == "share":
            data[col] = np.where(rng.random(n) < 0.9, 0.0, rng.random(n))
        elif unit in ("m", "%", "MW", "ha", "min", "mm", "persons"):
            top = {"m": 15000, "%": 6, "MW": 60, "ha": 25, "min": 40, "mm": 600}.get(unit, 2e6)
            data[col] = rng.uniform(0, top, n)
        else:
            data[col] = [f"{col}{i}" for i in range(n)]
    data["zoning_class"] = rng.choice(["P", "U", "P/U", "MN"], n)
    data["planning_instrument"] = "mpzp"
    data["plan_zone"] = ""
    data["ownership"] = "private"
    data["site_id"] = [f"S{i:010x}" for i in range(n)]
    return pd.DataFrame(data)


def test_all_builtin_profiles_have_rationale_readiness_and_five_kinds():
    profs = {p.name: p for p in load_profiles()}
    assert {"data_centre", "technology_park"} <= set(profs)
    dc = profs["data_centre"]
    assert dc.weighting == "ahp" and dc.ahp_cr is not None and dc.ahp_cr < 0.1
    assert max(dc.weights, key=dc.weights.get) == "power_capacity_mw"
    assert profs["technology_park"].method == "topsis"
    funcs = {c.function for p in profs.values() for c in p.criteria}
    assert {"linear", "piecewise", "gaussian", "threshold"} <= funcs
    for p in profs.values():
        assert p.readiness, p.name
        assert len(p.rationale) > 200, p.name


def test_value_functions_threshold_and_gaussian():
    thr = Criterion("dist_sewer_m", 1.0, "threshold", "cost", threshold=2000)
    assert value(thr, np.array([0, 2000, 2001, np.nan])).tolist() == [1, 1, 0, 0]
    ben = Criterion("area_ha", 1.0, "threshold", "benefit", threshold=2)
    assert value(ben, np.array([1.9, 2.0, 50])).tolist() == [0, 1, 1]
    g = Criterion("area_ha", 1.0, "gaussian", ideal=6, spread=2)
    got = value(g, np.array([6.0, 8.0, 2.0, np.nan]))
    np.testing.assert_allclose(got, [1.0, np.exp(-0.5), np.exp(-2.0), 0.0])


def test_profile_ahp_entropy_and_method_validation(tmp_path):
    base = "[criteria.area_ha]\nbounds = [0, 10]\n[criteria.dist_centre_m]\nbounds = [0, 9]\n"
    ok = _write(
        tmp_path,
        '[weights]\nmethod = "ahp"\norder = ["area_ha", "dist_centre_m"]\n'
        'matrix = [[1, 3], ["1/3", 1]]\n' + base,
    )
    prof = load_profile(ok)
    assert prof.weights["area_ha"] == pytest.approx(0.75)
    bad = (
        '[weights]\nmethod = "ahp"\norder = ["area_ha", "dist_centre_m", "slope_mean_pct"]\n'
        'matrix = [[1, 9, "1/9"], ["1/9", 1, 9], [9, "1/9", 1]]\n'
        + base
        + "[criteria.slope_mean_pct]\nbounds = [0, 9]\n"
    )
    with pytest.raises(ProfileError, match="consistency ratio .* revise"):
        load_profile(_write(tmp_path, bad))
    ent = load_profile(_write(tmp_path, '[weights]\nmethod = "entropy"\n' + base))
    assert ent.weighting == "entropy"
    with pytest.raises(ProfileError, match="method 'electre' not one of"):
        load_profile(_write(tmp_path, 'method = "electre"\n[weights]\nmethod = "entropy"\n' + base))
    with pytest.raises(ProfileError, match="gaussian needs"):
        load_profile(_write(tmp_path, '[criteria.area_ha]\nweight = 1\nfunction = "gaussian"\n'))


def test_method_and_weight_overrides_change_hash():
    prof = load_profiles(["logistics"])[0]
    topsis_prof = prof.with_method("topsis")
    assert topsis_prof.method == "topsis" and topsis_prof.hash != prof.hash
    w = prof.with_weights({"area_ha": 100})
    assert w.weights["area_ha"] > 0.7 and w.hash not in (prof.hash, topsis_prof.hash)
    assert sum(w.weights.values()) == pytest.approx(1.0)
    with pytest.raises(ProfileError, match="not in profile"):
        prof.with_weights({"dist_to_moon_m": 1})
    with pytest.raises(ProfileError, match="not one of"):
        prof.with_method("electre")


@pytest.mark.parametrize("method", ["wlc", "topsis", "vikor", "promethee2"])
def test_every_method_scores_ranks_and_is_independent_of_other_sites(method):
    prof = load_profiles(["logistics"])[0].with_method(method)
    df = _full_sites()
    res = score_profile(df, prof)
    rank = res["rank_logistics"].to_numpy()
    score = res["score_logistics"].to_numpy()
    eligible = rank > 0
    assert eligible.sum() > 20
    assert np.isnan(score[~eligible]).all() and (score[eligible] >= 0).all()
    assert (score[eligible] <= 1).all()
    assert rank[eligible].min() == 1
    assert sorted(rank[eligible]) == sorted(rank_scores(-rank[eligible], eligible[eligible]))
    if method != "promethee2":  # the shortlist re-ranks by flows, not by the score
        order = np.argsort(rank[eligible])
        assert np.all(np.diff(score[eligible][order]) <= 1e-12)
        part = score_profile(df.iloc[:150], prof)["score_logistics"].to_numpy()
        np.testing.assert_array_equal(part, score[:150])


def test_promethee_profile_reranks_only_the_shortlist(tmp_path):
    prof = load_profiles(["logistics"])[0]
    from dataclasses import replace

    prof = replace(prof.with_method("promethee2"), shortlist=10)
    res = score_profile(_full_sites(), prof)
    rank = res["rank_logistics"].to_numpy()
    wlc_rank = score_profile(_full_sites(), load_profiles(["logistics"])[0])["rank_logistics"]
    short = (wlc_rank > 0) & (wlc_rank <= 10)
    assert set(rank[short.to_numpy()]) <= set(range(1, 11))
    assert (rank[(wlc_rank > 10).to_numpy()] > 10).all()


def test_drivers_in_words_and_explanation_table():
    from omw_sites.scoring.engine import evaluate_profile
    from omw_sites.scoring.explain import explain_table

    prof = load_profiles(["logistics"])[0]
    df = _full_sites()
    df.loc[0, ["time_junction_min", "dist_sewer_m", "zoning_class", "area_ha"]] = [
        1.0,
        5000.0,
        "P",
        10.0,
    ]
    df.loc[0, ["flood_share", "natura_share"]] = 0.0
    df.loc[0, ["time_rail_freight_min", "dist_power_m"]] = [5.0, 100.0]  # sewer: worst gap
    res = score_profile(df, prof)
    text = res["drivers_logistics"].iloc[0]
    # 1 min → value 0.967 on [[0, 1], [3, 0.9]]; lift 0.35 × (0.967 − 0.5) = +0.16
    assert text.startswith("+ motorway junction 1.0 min (+0.16)")
    assert "\u2212 no sewer within 2.0 km (\u22120.03)" in text
    excluded = res[res["rank_logistics"] == 0]
    assert excluded["drivers_logistics"].str.startswith("excluded: ").all()
    assert (excluded["drivers_logistics"] == "excluded: " + excluded["excluded_logistics"]).all()
    ev = evaluate_profile(df, prof)
    tab = explain_table(ev, df["site_id"].to_numpy())
    assert len(tab) == len(df) * len(prof.criteria)
    one = tab[tab["site_id"] == df["site_id"].iloc[0]]
    assert one["contribution"].sum() == pytest.approx(res["score_logistics"].iloc[0], abs=1e-3)
    row = one.set_index("criterion").loc["time_junction_min"]
    assert row["raw"] == 1.0 and row["unit"] == "min" and row["weight"] == pytest.approx(0.35)
    assert one["lift"].sum() == pytest.approx(res["score_logistics"].iloc[0] - 0.5, abs=1e-3)


def test_readiness_tiers_count_gaps():
    prof = load_profiles(["logistics"])[0]
    df = _full_sites(4)
    df["zoning_class"] = ["P", "P", "P", "MN"]
    df["area_ha"] = [5.0, 5.0, 5.0, 1.0]
    df["dist_power_m"] = [100.0, 100.0, 900.0, 900.0]
    df["dist_water_m"] = [100.0, 900.0, 900.0, 100.0]
    df["dist_sewer_m"] = 100.0
    res = score_profile(df, prof)
    assert res["tier_logistics"].tolist() == ["A", "B", "C", "C"]
    assert res["gaps_logistics"].iloc[1] == "no water main within 300 m"  # sewer is near
    assert res["gaps_logistics"].iloc[2] == "no power line within 300 m; no water main within 300 m"
    assert "below 2 ha" in res["gaps_logistics"].iloc[3]


def test_entropy_profile_weights_from_data(tmp_path):
    body = (
        '[weights]\nmethod = "entropy"\n'
        "[criteria.area_ha]\nbounds = [0, 25]\n"
        '[criteria.dist_centre_m]\ndirection = "cost"\nbounds = [0, 15000]\n'
    )
    prof = load_profile(_write(tmp_path, body))
    from omw_sites.scoring.engine import evaluate_profile

    df = _full_sites()
    df["area_ha"] = 12.5 + df["area_ha"] * 0.001  # nearly constant → low entropy weight
    ev = evaluate_profile(df, prof)
    assert ev.weights.sum() == pytest.approx(1.0) and ev.weights[1] > 0.9


def test_score_sites_keeps_the_pipeline_call():
    from omw_sites.scoring import score_sites

    profs = load_profiles()
    out = score_sites(_full_sites(50), profs)
    for p in profs:
        for prefix in ("score_", "rank_", "excluded_", "drivers_", "tier_", "gaps_"):
            assert f"{prefix}{p.name}" in out.columns
    # no column other than a profile's own may start with rank_/score_ (the API and maps
    # treat every rank_<x> as a profile)
    names = {p.name for p in profs}
    assert {c[5:] for c in out.columns if c.startswith("rank_")} == names


# ------------------------------------------------------------ missing data (issue 16)


def _three_criteria(tmp_path, constraint: str = ""):
    body = (
        'name = "mini"\n'
        + (f'[[constraints]]\nexpr = "{constraint}"\nreason = "too wet"\n' if constraint else "")
        + "[criteria.area_ha]\nweight = 2\nbounds = [0, 10]\n"
        + "[criteria.dist_sewer_m]\nweight = 1\ndirection = 'cost'\nbounds = [0, 1000]\n"
        + "[criteria.time_junction_min]\nweight = 1\ndirection = 'cost'\nbounds = [0, 40]\n"
    )
    return load_profile(_write(tmp_path, body))


def _mini_sites() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": ["Sa", "Sb", "Sc"],
            "area_ha": [5.0, 5.0, 10.0],
            "dist_sewer_m": [500.0, np.nan, 0.0],
            "time_junction_min": [np.nan, np.nan, np.nan],  # no junction layer in the run
            "flood_share": [0.0, np.nan, 0.5],
            "zoning_class": ["P"] * 3,
            "planning_instrument": ["mpzp"] * 3,
            "plan_zone": [""] * 3,
            "ownership": ["private"] * 3,
        }
    )


def test_criteria_without_data_are_left_out_and_weights_renormalised(tmp_path):
    """A criterion no site has data for gets weight 0, the rest are renormalised; a site
    missing one more criterion scores on what it has (never NaN → worst value)."""
    prof = _three_criteria(tmp_path)
    notes: dict = {}
    res = score_profile(_mini_sites(), prof, notes=notes)
    got = notes["mini"]
    assert got["criteria_without_data"] == ["time_junction_min"]
    assert got["weights"] == pytest.approx(
        {"area_ha": 2 / 3, "dist_sewer_m": 1 / 3, "time_junction_min": 0.0}
    )
    score = res["score_mini"].to_numpy()
    # a: 2/3 · 0.5 + 1/3 · 0.5; b: only the area is measured → its value 0.5
    assert score[:2] == pytest.approx([0.5, 0.5]) and score[2] == pytest.approx(1.0)
    assert "no data: dist_sewer_m, time_junction_min" in res["gaps_mini"].iloc[1]
    assert "dist_sewer_m" not in res["drivers_mini"].iloc[1]


def test_constraint_is_not_applied_where_its_data_is_missing(tmp_path):
    prof = _three_criteria(tmp_path, "flood_share < 0.05")
    notes: dict = {}
    res = score_profile(_mini_sites(), prof, notes=notes)
    assert res["excluded_mini"].tolist() == ["", "", "too wet"]
    assert notes["mini"]["constraints_not_applied"] == {"too wet": 1}


def test_sites_are_explained_a_slice_at_a_time_with_the_same_words(monkeypatch):
    """Drivers, tiers and gaps are built a slice of sites at a time (bounded memory on a
    national table); the words are those of the whole table at once, missing data
    included, and so are the weights (entropy: from every site, not from a slice)."""
    import omw_sites.scoring.engine as engine

    df = _full_sites(200)
    df.loc[df.index[::7], "dist_sewer_m"] = np.nan  # "no data: …" in some gaps
    df.loc[df.index[::11], "area_ha"] = 0.5  # excluded: "excluded: …" drivers
    profs = load_profiles()
    whole = engine.score_sites(df, profs)
    monkeypatch.setattr(engine, "EXPLAIN_ROWS", 7)
    sliced = engine.score_sites(df, profs)
    pd.testing.assert_frame_equal(sliced, whole)
    assert whole["gaps_logistics"].str.contains("no data").any()
    assert whole["drivers_logistics"].str.startswith("excluded: ").any()
