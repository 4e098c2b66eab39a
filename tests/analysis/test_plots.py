"""Tests for jppo.analysis.plots: the learning-curve reduction against numpy, and PNG output."""

import numpy as np
import pytest
from matplotlib.image import imread

from jppo.analysis import plots
from jppo.analysis.metrics import RETURN_LABELS
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


LONG_NAMES = [
    "standard_ppo_reproduction_of_the_reported_setting",
    "relative_value_clip_scaled_by_return_std",
    "reward_scaling_by_running_return_std",
    "popart_normalized_value_target_with_layer_norm",
    "hl_gauss_histogram_loss_over_symlog_returns",
    "kl_early_stopping_with_target_kl_of_0.03",
]


def assert_inside_figure(fig, legend):
    """Every legend label and handle lies inside the figure once it is drawn."""
    fig.canvas.draw()
    box = fig.bbox
    artists = [*legend.get_texts(), *legend.legend_handles]
    assert len(legend.get_texts()) == len(set(t.get_text() for t in legend.get_texts()))
    for artist in artists:
        extent = artist.get_window_extent()
        assert box.x0 - 0.5 <= extent.x0 and extent.x1 <= box.x1 + 0.5, artist
        assert box.y0 - 0.5 <= extent.y0 and extent.y1 <= box.y1 + 0.5, artist


@pytest.mark.parametrize("count", [4, 5, 6])
def test_legend_with_many_long_names_fits_inside_the_figure(tmp_path, count):
    names = LONG_NAMES[:count]
    make_run(tmp_path, names, ["CartPole-v1"], num_updates=8)
    frame = results.read_metrics(tmp_path)
    for fig in (plots.learning_curves_figure(frame),
                plots.diagnostics_figure(frame, env="CartPole-v1")):
        (legend,) = fig.legends
        assert sorted(t.get_text() for t in legend.get_texts()) == sorted(names)
        assert_inside_figure(fig, legend)


def test_legend_uses_one_row_when_the_names_fit(tmp_path):
    make_run(tmp_path, ["a", "b", "c", "d"], ["CartPole-v1"], num_updates=8)
    fig = plots.learning_curves_figure(results.read_metrics(tmp_path))
    fig.canvas.draw()
    (legend,) = fig.legends
    rows = {round(t.get_window_extent().y0) for t in legend.get_texts()}
    assert len(rows) == 1


@pytest.mark.parametrize(("steps", "label"), [
    (0, "0"), (500, "500"), (1500, "1.5k"), (50_000, "50k"), (1_000_000, "1M"),
    (2_500_000, "2.5M"), (1_250_000, "1.25M"),
])
def test_step_ticks_are_compact(steps, label):
    assert plots.step_formatter()(steps) == label


def test_step_axis_has_few_compact_ticks(tmp_path):
    make_run(tmp_path, ["standard"], ["CartPole-v1"], num_updates=40)  # 128 steps per update
    fig = plots.learning_curves_figure(results.read_metrics(tmp_path))
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert 2 <= len(ticks) <= plots.STEP_TICKS + 1
    labels = [label.get_text() for label in ax.get_xticklabels() if label.get_text()]
    assert labels and all(len(text) <= 5 for text in labels), labels
    assert any(text.endswith("k") for text in labels), labels


def units_note_texts(fig):
    return {ax.get_title(): child.get_text() for ax in fig.axes for child in ax.get_children()
            if child.get_gid() == plots.UNITS_NOTE_GID}


def run_with_configs(run_dir, configs):
    """A synthetic run whose run.json records `configs` (variant -> overrides)."""
    make_run(run_dir, list(configs), ["CartPole-v1"], num_updates=8)
    info = results.read_run_info(run_dir)
    info["variants"] = {name: {"overrides": fields} for name, fields in configs.items()}
    results.write_run_info(run_dir, info)
    return results.read_metrics(run_dir), info


@pytest.mark.parametrize(("configs", "noted"), [
    ({"standard": {}, "relative_clip": {"value_clip_mode": "relative"},
      "mse": {"value_loss": "mse"}}, set()),
    ({"standard": {}, "reward_scaling": {"reward_scaling": True}},
     {"value_loss", "advantage_std"}),
    ({"standard": {}, "hl_gauss": {"value_loss": "hl_gauss", "value_target": "symlog"}},
     {"value_loss"}),
    ({"standard": {}, "popart": {"value_target": "popart"}}, {"value_loss"}),
    ({"scaled": {"reward_scaling": True}, "scaled_mse": {"reward_scaling": True,
                                                          "value_loss": "mse"}}, set()),
])
def test_units_note_appears_exactly_when_variants_differ_in_units(tmp_path, configs, noted):
    frame, info = run_with_configs(tmp_path, configs)
    fig = plots.diagnostics_figure(frame, env="CartPole-v1", info=info)
    notes = units_note_texts(fig)
    assert set(notes) == noted
    for text in notes.values():
        for variant in configs:
            assert variant in text
    by_title = {ax.get_title(): ax for ax in fig.axes}
    for metric in plots.UNIT_METRICS:
        label = by_title[metric].get_ylabel()
        assert ("mixed units" in label) == (metric in noted), (metric, label)


def test_units_name_what_each_variant_records():
    standard = plots.metric_units({})
    assert standard == {"value_loss": "return units\N{SUPERSCRIPT TWO}",
                        "advantage_std": "return units"}
    scaled = plots.metric_units({"reward_scaling": True})
    assert scaled["advantage_std"] == "scaled-reward units"
    assert "scaled-reward" in scaled["value_loss"]
    assert "nats" in plots.metric_units({"value_loss": "hl_gauss", "value_target": "symlog"})[
        "value_loss"]
    assert "popart" in plots.metric_units({"value_target": "popart"})["value_loss"]
    assert "huber" in plots.metric_units({"value_loss": "huber"})["value_loss"]
    note = plots.units_note({"a": "x", "b": "y", "c": "x"})
    assert note.splitlines()[1:] == ["x: a, c", "y: b"]
    many = {f"v{i}": "x" for i in range(plots.NOTE_LIST_MAX + 1)} | {"odd": "y", "odd2": "y"}
    assert plots.units_note(many).splitlines()[1:] == [
        "y: odd, odd2", f"x: every other variant ({plots.NOTE_LIST_MAX + 1})"]
    assert plots.units_note({"a": "x", "b": "x"}) is None


def test_units_note_lies_inside_the_figure(tmp_path):
    configs = {name: ({"reward_scaling": True} if i % 2 else {})
               for i, name in enumerate(LONG_NAMES)}
    frame, info = run_with_configs(tmp_path, configs)
    fig = plots.diagnostics_figure(frame, env="CartPole-v1", info=info)
    fig.canvas.draw()
    notes = [child for ax in fig.axes for child in ax.get_children()
             if child.get_gid() == plots.UNITS_NOTE_GID]
    assert len(notes) == 2
    for text in notes:
        extent = text.get_window_extent()
        assert fig.bbox.x0 <= extent.x0 and extent.x1 <= fig.bbox.x1
        assert fig.bbox.y0 <= extent.y0 and extent.y1 <= fig.bbox.y1


@pytest.mark.parametrize("count", [4, 5, 7])
def test_legend_reads_row_by_row_in_variant_order(tmp_path, count):
    names = [f"variant_number_{i}_with_a_long_descriptive_name" for i in range(count)]
    make_run(tmp_path, names, ["CartPole-v1"], num_updates=8)
    fig = plots.diagnostics_figure(results.read_metrics(tmp_path), env="CartPole-v1")
    fig.canvas.draw()
    (legend,) = fig.legends
    texts = legend.get_texts()
    rows = sorted({round(t.get_window_extent().y0) for t in texts}, reverse=True)
    assert 1 < len(rows) < count  # wrapped, yet more than one per row
    reading = sorted(texts, key=lambda t: (-round(t.get_window_extent().y0),
                                           t.get_window_extent().x0))
    assert [t.get_text() for t in reading] == names


def test_units_come_from_the_strategies_not_the_names(tmp_path):
    """A registered loss is judged by what it declares; one this process does not
    know is named as unknown, and the figure still draws."""
    from jppo.core.strategies import VALUE_LOSSES, ValueLoss, register_value_loss

    register_value_loss("squared_copy", ValueLoss(VALUE_LOSSES.get("mse").loss,
                                                  squared_error=True))
    try:
        assert plots.metric_units({"value_loss": "squared_copy"}) == plots.metric_units({})
        frame, info = run_with_configs(tmp_path, {"standard": {},
                                                  "copy": {"value_loss": "squared_copy"},
                                                  "elsewhere": {"value_loss": "not_here"}})
        notes = units_note_texts(plots.diagnostics_figure(frame, env="CartPole-v1", info=info))
    finally:
        VALUE_LOSSES.unregister("squared_copy")
    assert set(notes) == {"value_loss"}
    groups = dict(line.split(": ", 1) for line in notes["value_loss"].splitlines()[1:]
                  if ": " in line)
    assert set(groups["return units\N{SUPERSCRIPT TWO}"].split(", ")) == {"standard", "copy"}
    assert "unknown units" in notes["value_loss"] and "elsewhere" in notes["value_loss"]


def test_variants_past_ten_share_no_color_and_style(tmp_path):
    names = [f"v{i:02d}" for i in range(23)]
    make_run(tmp_path, names, ["CartPole-v1"], num_updates=4)
    fig = plots.learning_curves_figure(results.read_metrics(tmp_path), variants=names)
    styles = {(line.get_color(), line.get_linestyle()) for line in fig.axes[0].get_lines()}
    assert len(styles) == len(names)
    assert plots.variant_color("v03", names) == plots.variant_color("v13", names)
    assert plots.variant_linestyle("v03", names) != plots.variant_linestyle("v13", names)


def test_an_evaluated_run_also_gets_its_training_return_curves(tmp_path):
    """A greedy evaluation can sit at the optimum while the sampled policy still
    differs by variant: the training-return figure shows the latter."""
    make_run(tmp_path, ["standard", "popart"], ["CartPole-v1"])
    assert [p.name for p in plots.write_plots(tmp_path)][:2] == ["learning_curves.png",
                                                                   "diagnostics_CartPole-v1.png"]
    frame = results.read_metrics(tmp_path)
    frame["eval_return"] = np.where(frame["update"] % 6 == 5, 100.0, NAN)
    names = [p.name for p in plots.write_plots(tmp_path, frame=frame)]
    assert names[:2] == ["learning_curves.png", plots.TRAINING_CURVES]
    evaluated = plots.learning_curves_figure(frame)
    training = plots.learning_curves_figure(frame, returns="episode_return")
    assert evaluated.axes[0].get_ylabel() == RETURN_LABELS["eval_return"]
    assert training.axes[0].get_ylabel() == RETURN_LABELS["episode_return"]
    flat = [line.get_ydata() for line in evaluated.axes[0].get_lines()]
    assert all(np.allclose(y[np.isfinite(y)], 100.0) for y in flat)
    rising = [line.get_ydata() for line in training.axes[0].get_lines()]
    assert all(y[np.isfinite(y)][-1] > y[np.isfinite(y)][0] for y in rising)


def test_kl_early_stopping_variants_add_an_epochs_panel(tmp_path):
    make_run(tmp_path, ["standard", "kl_stop"], ["CartPole-v1"], num_updates=8)
    frame = results.read_metrics(tmp_path)
    frame["epochs_completed"] = np.where(frame["variant"] == "kl_stop", 1.5, 4.0)
    plain = {"variants": {"standard": {"config": {}}, "kl_stop": {"config": {}}}}
    stopping = {"variants": {"standard": {"config": {}},
                             "kl_stop": {"config": {"kl_early_stop": True}}}}
    titles = [ax.get_title() for ax in
              plots.diagnostics_figure(frame, env="CartPole-v1", info=plain).axes]
    assert "epochs_completed" not in titles and len(titles) == 6
    fig = plots.diagnostics_figure(frame, env="CartPole-v1", info=stopping)
    panel = next(ax for ax in fig.axes if ax.get_title() == "epochs_completed")
    medians = sorted(float(np.nanmedian(line.get_ydata())) for line in panel.get_lines())
    assert medians == [1.5, 4.0]
