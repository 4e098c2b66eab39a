"""Tests for the final-return statistics table (jppo.analysis.stats) against direct numpy/scipy."""

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from scipy.stats import trim_mean

from jppo.analysis import stats
from jppo.analysis.metrics import final_episode_return
from jppo.runs import results

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


def test_final_episode_return_weights_updates_by_episodes_finished():
    """Catches the final return taken as an unweighted mean of per-update means:
    an update that finished 3 episodes counts three times as much as one that
    finished 1, an update that finished none not at all, and updates before the
    final window not at all."""
    nan = np.nan
    metrics = {  # 2 seeds x 5 updates; fraction 0.4 -> the last 2 updates
        "episode_return": np.array([[99.0, 99.0, 99.0, 10.0, 20.0],
                                    [99.0, 99.0, 99.0, nan, 40.0]]),
        "episodes_finished": np.array([[5.0, 5.0, 5.0, 1.0, 3.0],
                                       [5.0, 5.0, 5.0, 0.0, 2.0]]),
    }
    final = final_episode_return(metrics, fraction=0.4)
    # seed 0: (1 * 10 + 3 * 20) / 4 episodes; seed 1: only the update with episodes
    np.testing.assert_allclose(final, [17.5, 40.0])
    none = {"episode_return": np.full((1, 5), nan), "episodes_finished": np.zeros((1, 5))}
    assert np.isnan(final_episode_return(none, fraction=0.4)).all()


def numpy_percentile_bootstrap(scores, level, reps=4000, seed=0):
    """Percentile bootstrap of the mean over runs, from its definition."""
    rng = np.random.default_rng(seed)
    means = rng.choice(scores, size=(reps, len(scores)), replace=True).mean(axis=1)
    return np.percentile(means, [50 * (1 - level), 50 * (1 + level)])


@pytest.mark.parametrize("level", [0.5, 0.95])
def test_confidence_level_sets_the_interval(level):
    """Catches a hard-coded bootstrap confidence level: the interval is rliable's
    percentile bootstrap at the requested level (same draws, exactly) and agrees
    with a numpy percentile bootstrap of the mean within Monte Carlo error."""
    from rliable import library as rly

    seed, reps = 11, 2000
    row = stats.cell_statistics(SCORES, reps=reps, confidence=level, seed=seed)
    np.random.seed(seed)  # rliable draws from the global RNG
    _, intervals = rly.get_interval_estimates(
        {"x": SCORES.reshape(-1, 1)},
        lambda s: np.array([np.mean(s), np.median(s), trim_mean(s.ravel(), 0.25)]),
        reps=reps, confidence_interval_size=level)
    np.testing.assert_allclose([row["mean_lo"], row["median_lo"], row["iqm_lo"]],
                               intervals["x"][0], rtol=1e-12)
    np.testing.assert_allclose([row["mean_hi"], row["median_hi"], row["iqm_hi"]],
                               intervals["x"][1], rtol=1e-12)
    lo, hi = numpy_percentile_bootstrap(SCORES, level)
    wide_lo, wide_hi = numpy_percentile_bootstrap(SCORES, 0.95)
    tolerance = 0.1 * (wide_hi - wide_lo)
    assert row["mean_lo"] == pytest.approx(lo, abs=tolerance)
    assert row["mean_hi"] == pytest.approx(hi, abs=tolerance)


def test_higher_confidence_gives_wider_intervals_in_the_table():
    """The level passed to summary_table reaches every interval, and its header."""
    scores = {("base", "env"): BASELINE, ("new", "env"): SCORES}
    narrow = stats.summary_table(scores, "base", reps=REPS, confidence=0.5)
    wide = stats.summary_table(scores, "base", reps=REPS, confidence=0.95)
    for name in (*stats.STATISTICS, "p_improve"):
        r_narrow, r_wide = row(narrow, "new"), row(wide, "new")
        assert r_narrow[f"{name}_hi"] - r_narrow[f"{name}_lo"] < \
            r_wide[f"{name}_hi"] - r_wide[f"{name}_lo"], name
    assert "50% CI" in stats.format_table(narrow)


@pytest.mark.parametrize(("values", "expected"), [
    ((500.0, 480.0), 1), ((12.3,), 2), ((3.2,), 3), ((0.5,), 4), ((0.0025, -0.001), 6), ((0.0,), 2),
    ((1e-12,), 8),
])
def test_decimals_keep_four_significant_digits_of_small_returns(values, expected):
    assert stats.decimals(*values) == expected
    point = max(values, key=abs)
    if point:
        text = stats.format_estimate(point, point, point, expected)
        assert float(text.split()[0]) == pytest.approx(point, rel=1e-3, abs=10.0 ** -expected)


@pytest.mark.parametrize("runs", [2, 3, 5, 8, 17])
@pytest.mark.parametrize("kind", ["normal", "ties", "identical"])
def test_all_replicates_at_once_equal_rliables_loop_bit_for_bit(runs, kind):
    """The summary computes the bootstrap replicates in one array; each point
    and interval must be exactly what rliable's per-replicate loop gives."""
    rng = np.random.default_rng(runs)
    x, y = rng.normal(size=(runs, 1)), rng.normal(size=(runs, 1))
    if kind == "ties":
        x, y = np.round(x), np.round(y)
    if kind == "identical":
        y = x.copy()
    for data, func in ((x, stats.point_estimates), ([x, y], stats.improvement_probability)):
        with stats.seeded_global_rng(7):
            points, intervals = rly.get_interval_estimates(
                {"cell": data}, func, reps=300, confidence_interval_size=0.9)
        got_points, got_intervals = stats.bootstrap_interval(
            data, func, reps=300, confidence=0.9, seed=7)
        np.testing.assert_array_equal(got_points, np.asarray(points["cell"], np.float64))
        np.testing.assert_array_equal(got_intervals, np.asarray(intervals["cell"], np.float64))
