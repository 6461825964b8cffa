"""Rank stability, scenario comparison, segments and the scoring commands on a store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sample_store import make_sample_store
from typer.testing import CliRunner

from omw_sites.cli import app
from omw_sites.scoring.segments import describe_centroid, segment_sites
from omw_sites.scoring.sensitivity import (
    _rank_rows,
    compare_rankings,
    draw_weights,
    rank_stability,
    ws_coefficient,
)


def test_dirichlet_draws_centre_on_the_weights_and_are_seeded():
    w = np.array([0.5, 0.3, 0.2, 0.0])
    d = draw_weights(w, 4000, concentration=50, seed=3)
    np.testing.assert_allclose(d.sum(axis=1), 1.0)
    np.testing.assert_allclose(d.mean(axis=0), w, atol=0.01)
    assert (d[:, 3] == 0).all()
    np.testing.assert_array_equal(d, draw_weights(w, 4000, concentration=50, seed=3))
    assert not np.array_equal(d, draw_weights(w, 4000, concentration=50, seed=4))


def test_rank_rows_min_ties():
    assert _rank_rows(np.array([[3.0, 1.0, 3.0, 2.0]])).tolist() == [[1, 4, 1, 3]]


def test_rank_stability_dominance_and_brute_force():
    rng = np.random.default_rng(0)
    values = rng.random((60, 4))
    values[0] = 1.0  # dominates every other site under any weights
    values[1] = 0.0  # dominated by all
    w = np.array([0.4, 0.3, 0.2, 0.1])
    st = rank_stability(values, w, draws=200, top_n=5, seed=1, workers=2, chunk=7)
    assert st.p5[0] == st.p95[0] == 1 and st.p_top[0] == 1.0
    assert st.p5[1] == 60 and st.p_top[1] == 0.0
    assert (st.p5 <= st.median).all() and (st.median <= st.p95).all()
    # brute force: same draws, pandas ranks
    draws = draw_weights(w, 200, seed=1)
    ranks = np.array(
        [pd.Series(values @ d).rank(ascending=False, method="min").to_numpy() for d in draws]
    )
    np.testing.assert_allclose(st.p_top, (ranks <= 5).mean(axis=0))
    np.testing.assert_array_equal(st.p95, np.sort(ranks, axis=0)[int(0.95 * 199)])
    again = rank_stability(values, w, draws=200, top_n=5, seed=1, workers=1)
    np.testing.assert_array_equal(again.p95, st.p95)
    for method in ("topsis", "vikor"):
        s = rank_stability(values, w, draws=50, top_n=5, seed=1, method=method)
        assert s.p5[0] == 1 and s.p95[1] == 60


def test_ws_coefficient_and_comparison():
    x = np.array([1, 2, 3, 4, 5.0])
    assert ws_coefficient(x, x) == 1.0
    # Sałabun & Urbaniak (2020): swapping the last two matters little, the first two a lot
    assert ws_coefficient(x, np.array([1, 3, 2, 5, 4.0])) == pytest.approx(0.8255208, abs=1e-6)
    top_swap = ws_coefficient(x, np.array([2, 1, 3, 4, 5.0]))
    tail_swap = ws_coefficient(x, np.array([1, 2, 3, 5, 4.0]))
    assert top_swap < tail_swap
    ids = np.array(["a", "b", "c", "d", "e", "f"])
    ra = np.array([1, 2, 3, 4, 5, 0])
    rb = np.array([5, 2, 3, 4, 1, 6])
    cmp = compare_rankings(ids, ra, rb, n_movers=2)
    assert cmp.common == 5 and cmp.only_a == 0 and cmp.only_b == 1
    assert cmp.spearman == pytest.approx(1 - 6 * 32 / (5 * 24))  # d = (−4, 0, 0, 0, 4)
    assert set(cmp.movers["site_id"]) == {"a", "e"}
    assert cmp.movers.set_index("site_id").loc["e", "change"] == 4
    with pytest.raises(ValueError, match="share 1"):
        compare_rankings(ids, ra, np.array([1, 0, 0, 0, 0, 0]))


def test_segments_kmeans_and_gmm_find_planted_groups():
    rng = np.random.default_rng(2)
    n = 300
    big_close = pd.DataFrame(
        {"area_ha": rng.normal(30, 2, n), "dist_junction_m": rng.normal(800, 100, n)}
    )
    small_far = pd.DataFrame(
        {"area_ha": rng.normal(2, 0.3, n), "dist_junction_m": rng.normal(20000, 1000, n)}
    )
    df = pd.concat([big_close, small_far], ignore_index=True)
    for method in ("kmeans", "gmm"):
        seg = segment_sites(df, ["area_ha", "dist_junction_m"], method, (2, 3, 4), seed=0)
        assert seg.k == 2, (method, seg.scores)
        a, b = seg.labels[0], seg.labels[n]
        assert (seg.labels[:n] == a).all() and (seg.labels[n:] == b).all()
        assert set(seg.descriptions[a].split(", ")) == {"large", "motorway-close"}
        assert set(seg.descriptions[b].split(", ")) == {"small", "far from motorways"}
        again = segment_sites(df, ["area_ha", "dist_junction_m"], method, (2, 3, 4), seed=0)
        np.testing.assert_array_equal(again.labels, seg.labels)
    assert describe_centroid(pd.Series({"area_ha": 0.1})) == "typical"
    with pytest.raises(ValueError, match="no column"):
        segment_sites(df, ["dist_to_moon_m"])


# ------------------------------------------------------------------------ commands


@pytest.fixture
def store(tmp_path):
    return make_sample_store(tmp_path / "omw_sites.gpkg", n=300, seed=1)


def test_score_compare_stability_commands_write_back(store, tmp_path):
    from omw_sites.store import list_layers, read_run_info, read_sites

    runner = CliRunner()
    layers = set(list_layers(store))
    res = runner.invoke(app, ["score", "--profile", "logistics", "--store", str(store)])
    assert res.exit_code == 0, res.output
    weights = tmp_path / "w.toml"
    weights.write_text("time_junction_min = 10\narea_ha = 60\n", encoding="utf-8")
    res = runner.invoke(
        app,
        ["score", "--profile", "logistics", "--method", "topsis", "--weights", str(weights)]
        + ["--segments", "kmeans", "--store", str(store)],
    )
    assert res.exit_code == 0, res.output
    sites = read_sites(store, read_geometry=False)
    info = read_run_info(store)
    entry = {p["name"]: p for p in info["profiles"]}
    assert entry["logistics_topsis_w"]["method"] == "topsis"
    assert entry["logistics_topsis_w"]["hash"] != entry["logistics"]["hash"]
    assert entry["logistics"]["scored_at"] and entry["logistics_topsis_w"]["segments"]["k"] >= 2
    assert entry["logistics_topsis_w"]["weights"]["area_ha"] > 0.5
    assert (sites["rank_logistics_topsis_w"] > 0).sum() >= 2
    assert set(layers) <= set(list_layers(store))  # reference layers carried over
    assert sites["drivers_logistics"].str.len().gt(0).all()

    res = runner.invoke(app, ["compare", "logistics", "logistics_topsis_w", "--store", str(store)])
    assert res.exit_code == 0, res.output
    assert "Spearman" in res.output and "WS" in res.output

    res = runner.invoke(
        app, ["stability", "--profile", "logistics", "--draws", "50", "--store", str(store)]
    )
    assert res.exit_code == 0, res.output
    sites = read_sites(store, read_geometry=False)
    ok = sites["rank_logistics"] > 0
    assert (sites.loc[ok, "stab_p5_logistics"] <= sites.loc[ok, "stab_p95_logistics"]).all()
    assert sites.loc[ok, "stab_ptop_logistics"].between(0, 1).all()
    assert read_run_info(store)["stability"]["logistics"]["draws"] == 50


def test_command_errors_are_clean(store, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["compare", "logistics", "nosuch", "--store", str(store)])
    assert res.exit_code == 2 and "nosuch" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["score", "--profile", "logistics", "--method", "electre"])
    assert res.exit_code == 2 and "electre" in res.output
    res = runner.invoke(
        app, ["score", "--profile", "logistics", "--store", str(tmp_path / "none.gpkg")]
    )
    assert res.exit_code == 2 and "does not exist" in res.output


def test_ahp_command(tmp_path):
    runner = CliRunner()
    good = tmp_path / "good.toml"
    good.write_text('order = ["a", "b"]\nmatrix = [[1, 3], ["1/3", 1]]\n', encoding="utf-8")
    res = runner.invoke(app, ["ahp", str(good)])
    assert res.exit_code == 0, res.output
    assert "0.7500" in res.output and "CR = 0.0000" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'order = ["a", "b", "c"]\nmatrix = [[1, 9, "1/9"], ["1/9", 1, 9], [9, "1/9", 1]]\n',
        encoding="utf-8",
    )
    res = runner.invoke(app, ["ahp", str(bad)])
    assert res.exit_code == 1 and "revise" in res.output
    res = runner.invoke(app, ["ahp", str(tmp_path / "missing.toml")])
    assert res.exit_code == 2 and "not found" in res.output
