"""Tests for jppo.analysis.plots: the learning-curve reduction against numpy, and PNG output."""

import numpy as np
import pytest
from matplotlib.image import imread

from jppo.analysis import plots
from jppo.runs import results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAN = np.nan

# 3 seeds x 8 updates; NaN return exactly where no episode finished.
RETURNS = np.array(
    [
        [1.0, 3.0, NAN, NAN, 5.0, 6.0, NAN, NAN],
        [2.0, NAN, NAN, 4.0, 7.0, 1.0, NAN, NAN],
        [NAN, 5.0, NAN, 3.0, 2.0, 2.0, NAN, 9.0],
    ]
)
COUNTS = np.array(
    [
        [1, 3, 0, 0, 2, 1, 0, 0],
        [4, 0, 0, 1, 1, 1, 0, 0],
        [0, 2, 0, 2, 1, 3, 0, 1],
    ],
    np.float64,
)


def direct_windows(values, counts, width):
    """Episode-weighted mean per seed per window of `width` updates, by explicit loops."""
    seeds, updates = values.shape
    out = np.full((seeds, updates // width), np.nan)
    for s in range(seeds):
        for w in range(updates // width):
            v, c = values[s, w * width : (w + 1) * width], counts[s, w * width : (w + 1) * width]
            if c.sum() > 0:
                out[s, w] = sum(vi * ci for vi, ci in zip(v, c, strict=True) if ci > 0) / c.sum()
    return out


def test_learning_curve_matches_direct_computation():
    x_index, mean, lo, hi = plots.learning_curve(RETURNS, COUNTS, num_points=4, n_resamples=200)
    per_seed = direct_windows(RETURNS, COUNTS, width=2)
    assert per_seed[0, 0] == pytest.approx((1 * 1 + 3 * 3) / 4)  # weighted, not (1 + 3) / 2
    np.testing.assert_array_equal(x_index, [1, 3, 5, 7])
    expected = [np.mean(col[np.isfinite(col)]) for col in per_seed.T]
    np.testing.assert_allclose(mean, expected)
    # Windows 0-2 have >= 2 seeds: a real band around the mean.
    assert np.all(lo[:3] <= mean[:3]) and np.all(mean[:3] <= hi[:3])
    assert np.all(hi[:3] - lo[:3] > 0)
    # Window 3 has one seed: the band collapses onto it.
    assert lo[3] == hi[3] == mean[3]


def test_learning_curve_band_is_reproducible_and_handles_empty_windows():
    values = np.where(np.arange(8) < 2, NAN, RETURNS)  # no seed has data in window 0
    counts = np.where(np.isfinite(values), COUNTS, 0.0)
    first = plots.learning_curve(values, counts, num_points=4, n_resamples=200, seed=5)
    again = plots.learning_curve(values, counts, num_points=4, n_resamples=200, seed=5)
    other = plots.learning_curve(values, counts, num_points=4, n_resamples=200, seed=6)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[2][1:3], other[2][1:3])
    assert np.isnan([first[1][0], first[2][0], first[3][0]]).all()


def test_learning_curve_windows_cover_all_updates():
    values = np.ones((2, 10))
    x_index, mean, _, _ = plots.learning_curve(values, values, num_points=3, n_resamples=50)
    assert len(x_index) == 3 and x_index[-1] == 9
    np.testing.assert_allclose(mean, 1.0)
    assert len(plots.learning_curve(values, values, num_points=100, n_resamples=50)[0]) == 10


def make_run(run_dir, variants, envs, num_seeds=3, num_updates=24, drop=()):
    """A tiny run directory of synthetic metrics (no training), minus the `drop` metrics."""
    rng = np.random.default_rng(0)
    for i, variant in enumerate(variants):
        for env in envs:
            shape = (num_seeds, num_updates)
            counts = rng.integers(0, 3, size=shape).astype(np.float64)
            trend = np.linspace(0.0, 10.0 + i, num_updates)
            metrics = {
                "episode_return": np.where(counts > 0, trend + rng.normal(size=shape), NAN),
                "episodes_finished": counts,
                "explained_variance": rng.uniform(-0.5, 1.0, shape),
                "value_loss": rng.lognormal(size=shape),
                "grad_clip_ratio": rng.lognormal(2.0, size=shape),
                "approx_kl": rng.lognormal(-7.0, size=shape),
                "entropy": rng.uniform(0.5, 1.0, shape),
                "advantage_std": rng.lognormal(size=shape),
            }
            metrics = {k: v for k, v in metrics.items() if k not in drop}
            table = results.metrics_table(
                metrics,
                variant=variant,
                env=env,
                seeds=range(num_seeds),
                first_update=0,
                steps_per_update=128,
            )
            results.write_part(run_dir, variant, env, 0, table)
    info = {"envs": envs, "variants": {v: {} for v in variants}, "baseline": variants[0]}
    results.write_run_info(run_dir, info)


def assert_png(path, min_size=(200, 200)):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    height, width, _ = imread(path).shape
    assert height >= min_size[0] and width >= min_size[1]


def test_write_plots_writes_valid_pngs(tmp_path):
    make_run(tmp_path, ["standard", "popart"], ["CartPole-v1", "Pong (MinAtar)"])
    paths = plots.write_plots(tmp_path)
    names = [p.name for p in paths]
    assert names == [
        "learning_curves.png",
        "diagnostics_CartPole-v1.png",
        "diagnostics_Pong_MinAtar.png",
    ]
    for path in paths:
        assert path.parent == tmp_path / plots.PLOTS_DIR
        assert_png(path)


def test_missing_metrics_do_not_crash(tmp_path):
    make_run(tmp_path, ["standard"], ["CartPole-v1"], drop=("approx_kl", "episodes_finished"))
    frame = results.read_metrics(tmp_path).drop(columns=["grad_clip_ratio"])
    diagnostics = plots.plot_diagnostics(frame, tmp_path / "d.png", env="CartPole-v1")
    curves = plots.plot_learning_curves(frame, tmp_path / "c.png")
    assert_png(diagnostics)
    assert_png(curves)
