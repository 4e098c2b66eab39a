"""Tests for the final-return statistics table (jppo.stats) against direct numpy/scipy."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import trim_mean

from jppo import results, stats
from jppo.diagnostics import final_episode_return

REPS = 300
# Skewed on purpose: mean, median and IQM all differ.
SCORES = np.array([1.0, 2.0, 2.5, 3.0, 4.0, 7.0, 8.0, 30.0])
BASELINE = np.array([0.5, 2.0, 2.0, 3.5, 4.0, 5.0, 6.0, 9.0])


def row(table: pd.DataFrame, variant: str, env: str = "env") -> pd.Series:
    match = table[(table["variant"] == variant) & (table["env"] == env)]
    assert len(match) == 1
    return match.iloc[0]


def test_point_estimates_match_numpy_and_scipy():
    table = stats.summary_table({("a", "env"): SCORES}, None, reps=REPS)
    r = row(table, "a")
    assert r["seeds"] == len(SCORES)
    assert r["mean"] == pytest.approx(np.mean(SCORES))
    assert r["median"] == pytest.approx(np.median(SCORES))
    assert r["iqm"] == pytest.approx(trim_mean(SCORES, 0.25))
    assert len({r["mean"], r["median"], r["iqm"]}) == 3
    assert np.isnan(r[["p_improve", "p_improve_lo", "p_improve_hi"]].astype(float)).all()


def test_probability_of_improvement_matches_pairwise_count():
    greater = (SCORES[:, None] > BASELINE[None, :]).mean()
    ties = (SCORES[:, None] == BASELINE[None, :]).mean()
    table = stats.summary_table(
        {("base", "env"): BASELINE, ("new", "env"): SCORES}, "base", reps=REPS
    )
    new = row(table, "new")
    assert ties > 0
    assert new["p_improve"] == pytest.approx(greater + 0.5 * ties)
    assert new["p_improve_lo"] <= new["p_improve"] <= new["p_improve_hi"]
    assert np.isnan(row(table, "base")["p_improve"])
    assert list(table["variant"]) == ["base", "new"]


def test_intervals_contain_estimates_and_shrink_with_more_seeds():
    scores = np.random.default_rng(1).normal(10.0, 3.0, size=64)
    table = stats.summary_table(
        {("few", "env"): scores[:8], ("many", "env"): scores}, None, reps=REPS
    )
    few, many = row(table, "few"), row(table, "many")
    for name in stats.STATISTICS:
        for r in (few, many):
            assert r[f"{name}_lo"] <= r[name] <= r[f"{name}_hi"]
        assert many[f"{name}_hi"] - many[f"{name}_lo"] < few[f"{name}_hi"] - few[f"{name}_lo"]


def test_same_seed_same_table_and_global_rng_untouched():
    scores = {("base", "env"): BASELINE, ("new", "env"): SCORES}
    np.random.seed(123)
    expected_draw = np.random.rand()
    np.random.seed(123)
    first = stats.summary_table(scores, "base", reps=REPS, seed=3)
    assert np.random.rand() == expected_draw
    pd.testing.assert_frame_equal(first, stats.summary_table(scores, "base", reps=REPS, seed=3))
    other = stats.summary_table(scores, "base", reps=REPS, seed=4)
    assert not np.allclose(first["mean_lo"], other["mean_lo"])


def test_nan_seeds_are_dropped_and_counted():
    with_nan = np.array([1.0, np.nan, 3.0, 4.0, np.nan, 6.0])
    scores = {
        ("base", "env"): np.array([2.0, np.nan, np.nan]),
        ("some", "env"): with_nan,
        ("none", "env"): np.full(4, np.nan),
    }
    table = stats.summary_table(scores, "base", reps=REPS)
    some, base, none = row(table, "some"), row(table, "base"), row(table, "none")
    assert some["seeds"] == 4
    assert some["mean"] == pytest.approx(np.nanmean(with_nan))
    assert some["median"] == pytest.approx(np.nanmedian(with_nan))
    assert some["mean_lo"] <= some["mean"] <= some["mean_hi"]
    # One finite score: point estimates, no intervals; P(improve) from 4 vs 1 run.
    assert base["seeds"] == 1 and base["mean"] == 2.0
    assert np.isnan(base["mean_lo"]) and np.isnan(base["iqm_hi"])
    assert some["p_improve"] == pytest.approx(0.75)
    assert np.isnan(some["p_improve_lo"])
    assert none["seeds"] == 0 and np.isnan(none["mean"]) and np.isnan(none["p_improve"])
    assert "n/a" in stats.format_table(table)


def test_bad_baseline_names_it_and_lists_variants():
    with pytest.raises(ValueError, match=r"'nope'.*'a'.*'b'"):
        stats.summary_table({("a", "env"): SCORES, ("b", "env"): BASELINE}, "nope", reps=REPS)


def test_baseline_missing_on_one_env_gives_nan_there():
    scores = {("base", "e1"): BASELINE, ("new", "e1"): SCORES, ("new", "e2"): SCORES}
    table = stats.summary_table(scores, "base", reps=REPS)
    assert np.isfinite(row(table, "new", "e1")["p_improve"])
    assert np.isnan(row(table, "new", "e2")["p_improve"])


def test_format_table_has_a_line_per_row_and_marks_the_baseline():
    table = stats.summary_table(
        {("base", "env"): BASELINE, ("new", "env"): SCORES}, "base", reps=REPS
    )
    lines = stats.format_table(table).splitlines()
    assert len(lines) == 2 + len(table)
    assert lines[0].startswith("| env") and "P(> base)" in lines[0]
    assert "baseline" in lines[2] and "[" in lines[3]
    assert len({len(line) for line in lines}) == 1  # columns line up


def make_run(run_dir, variants, envs, num_seeds=5, num_updates=20, baseline=None):
    """A tiny run directory from synthetic metric arrays, written in two chunks."""
    rng = np.random.default_rng(0)
    arrays = {}
    for i, variant in enumerate(variants):
        for env in envs:
            counts = rng.integers(0, 3, size=(num_seeds, num_updates)).astype(np.float64)
            returns = rng.normal(10.0 * i, 1.0, size=counts.shape)
            metrics = {
                "episode_return": np.where(counts > 0, returns, np.nan),
                "episodes_finished": counts,
                "value_loss": rng.random(counts.shape),
            }
            arrays[variant, env] = metrics
            half = num_updates // 2
            for chunk, (a, b) in enumerate([(0, half), (half, num_updates)]):
                part = {k: v[:, a:b] for k, v in metrics.items()}
                table = results.metrics_table(
                    part,
                    variant=variant,
                    env=env,
                    seeds=range(num_seeds),
                    first_update=a,
                    steps_per_update=64,
                )
                results.write_part(run_dir, variant, env, chunk, table)
    info = {
        "name": "tiny",
        "envs": envs,
        "seeds": num_seeds,
        "first_seed": 0,
        "baseline": baseline,
        "variants": {v: {"overrides": {}, "config": {}} for v in variants},
    }
    results.write_run_info(run_dir, info)
    return arrays


def test_summarize_run_writes_markdown_and_round_tripping_csv(tmp_path):
    variants, envs = ["zeta", "alpha"], ["Pong", "Breakout"]
    arrays = make_run(tmp_path, variants, envs, baseline="zeta")
    table = stats.summarize_run(tmp_path, reps=REPS)

    # run.json order (not the alphabetical order of the metrics files), grouped by env
    assert list(zip(table["env"], table["variant"], strict=True)) == [
        (e, v) for e in envs for v in variants
    ]
    for (variant, env), metrics in arrays.items():
        final = final_episode_return(metrics)
        r = row(table, variant, env)
        assert r["seeds"] == np.isfinite(final).sum()
        assert r["mean"] == pytest.approx(np.nanmean(final), rel=1e-6)
    assert np.isnan(table.loc[table["variant"] == "zeta", "p_improve"]).all()
    assert (table.loc[table["variant"] == "alpha", "p_improve"] > 0.5).all()

    md = (tmp_path / stats.SUMMARY_MD).read_text()
    assert md.startswith("# ") and "stratified bootstrap" in md and f"{REPS} reps" in md
    assert stats.format_table(table) in md
    back = pd.read_csv(tmp_path / stats.SUMMARY_CSV, float_precision="round_trip")
    assert list(back.columns) == list(stats.COLUMNS)
    pd.testing.assert_frame_equal(back, table, check_exact=True)
