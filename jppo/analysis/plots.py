"""PNG plots of a run: learning curves with bootstrap bands, and a diagnostics panel.

Figures are built with `matplotlib.figure.Figure` on an Agg canvas rather than
pyplot, so no global backend or figure registry is touched and nothing needs a
display. Per-update metrics are pooled into at most `num_points` windows of
consecutive updates first: that smooths the noise of single updates and keeps
the files small however long the run was.

Made to be read at a glance: the legend wraps into as many rows as the figure's
width needs, env steps read 50k / 1M / 2.5M, and a panel whose variants record a
metric in different units (reward scaling, a normalized or symlog value target,
a cross-entropy value loss) says which variant is in which.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.ticker import EngFormatter, MaxNLocator
from scipy.stats import bootstrap

from jppo.analysis.diagnose.rules import THROTTLE_RATIO
from jppo.analysis.metrics import EVAL_RETURN, RETURN_LABELS, TRAINING_RETURN, return_metric
from jppo.core.config import PPOConfig
from jppo.core.strategies import VALUE_LOSSES, VALUE_TARGETS
from jppo.runs import results
from jppo.runs.experiment import import_modules

PLOTS_DIR = "plots"
# (metric, log y-axis) for the 2x3 diagnostics panel.
DIAGNOSTICS = (
    ("explained_variance", False),
    ("value_loss", True),
    ("grad_clip_ratio", True),
    ("approx_kl", True),
    ("entropy", False),
    ("advantage_std", True),
)
# A seventh panel when some variant stops its epochs early on KL (`kl_early_stop`).
EPOCHS_PANEL = ("epochs_completed", False)
THROTTLED_CLIP_RATIO = THROTTLE_RATIO  # the line the throttled-updates rule fires above
DPI = 110
STEP_TICKS = 5  # at most this many env-step ticks per axis, so their labels never touch
MANY_VARIANTS = 40  # above, a plot draws lines only and counts the variants (no legend)
LEGEND_FILL = 0.96  # the widest a legend row may be, as a fraction of the figure width
NOTE_CHARACTERS = 60  # wrap width of a units note under a diagnostics panel
NOTE_LINE_INCHES = 0.16  # figure height added per line of units notes
NOTE_LIST_MAX = 4  # a larger majority group is noted as "every other variant"
# Diagnostics whose units depend on the variant's config (see `metric_units`).
UNIT_METRICS = ("value_loss", "advantage_std")
LINESTYLES = ("-", "--", ":", "-.")  # per ten variants (`variant_linestyle`)
UNITS_NOTE_GID = "units-note"  # gid of a units note's Text, so it can be found in a figure


def window_starts(num_updates: int, num_points: int) -> np.ndarray:
    """First update index of each of at most `num_points` near-equal windows."""
    num_windows = max(1, min(num_points, num_updates))
    return np.arange(num_windows) * num_updates // num_windows


def window_last(starts: np.ndarray, num_updates: int) -> np.ndarray:
    """Last update index of each window."""
    return np.append(starts[1:], num_updates) - 1


def window_means(values: np.ndarray, weights: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Weighted mean of `(seeds, updates)` values per seed per window; NaN where a
    window has no weight (e.g. no episode finished) or only non-finite values."""
    values, weights = np.asarray(values, np.float64), np.asarray(weights, np.float64)
    weights = np.where(np.isfinite(values) & (weights > 0), weights, 0.0)
    total = np.add.reduceat(np.where(weights > 0, values * weights, 0.0), starts, axis=-1)
    weight = np.add.reduceat(weights, starts, axis=-1)
    return np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan)


def mean_with_band(
    samples: np.ndarray, *, confidence: float, n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Across-seed mean of `(seeds, windows)` samples (NaN = missing) with a
    percentile-bootstrap band from `scipy.stats.bootstrap`.

    Windows are grouped by which seeds have data, so each group is one
    vectorized bootstrap over the seed axis; below 2 seeds the band is the mean.
    """
    finite = np.isfinite(samples)
    present = finite.sum(axis=0)
    total = np.where(finite, samples, 0.0).sum(axis=0)
    mean = np.where(present > 0, total / np.maximum(present, 1), np.nan)
    lo, hi = mean.copy(), mean.copy()
    if n_resamples == 0:  # no band asked for (the plot of many variants draws lines only)
        return mean, lo, hi
    rng = np.random.default_rng(seed)
    patterns, inverse = np.unique(finite.T, axis=0, return_inverse=True)
    for index, pattern in enumerate(patterns):
        if pattern.sum() < 2:
            continue
        columns = np.flatnonzero(inverse.reshape(-1) == index)
        result = bootstrap(
            (samples[np.ix_(pattern, columns)],),
            np.mean,
            axis=0,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            rng=rng,
        )
        lo[columns], hi[columns] = result.confidence_interval
    return mean, lo, hi


def learning_curve(
    values: np.ndarray,
    counts: np.ndarray,
    *,
    num_points: int = 100,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Episode-weighted learning curve of `(seeds, updates)` returns -> (x_index,
    mean, lo, hi) per window.

    `x_index` is the last update of each window; per seed a window's value is
    the mean over the episodes that finished in it (`counts` per update), and
    mean/lo/hi are the across-seed mean and its bootstrap band. Weighting by
    episodes keeps an update with one lucky episode from counting as much as
    one with fifty.
    """
    values = np.atleast_2d(np.asarray(values, np.float64))
    starts = window_starts(values.shape[-1], num_points)
    per_seed = window_means(values, np.atleast_2d(counts), starts)
    mean, lo, hi = mean_with_band(
        per_seed, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return window_last(starts, values.shape[-1]), mean, lo, hi


def seed_quartiles(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """25th, 50th and 75th percentile across seeds (axis 0), NaN where no seed has data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows stay NaN
        q25, q50, q75 = np.nanpercentile(samples, [25, 50, 75], axis=0)
    return q25, q50, q75


def variant_color(variant: str, variants: Sequence[str]) -> str:
    """A fixed color per variant, so it looks the same in every figure of a run."""
    return f"C{list(variants).index(variant) % 10}"


def variant_linestyle(variant: str, variants: Sequence[str]) -> str:
    """Solid for the first ten variants, then dashed, dotted, dash-dotted: past ten
    the colors repeat, and the line style keeps two variants of one color apart."""
    return LINESTYLES[list(variants).index(variant) // 10 % len(LINESTYLES)]


def note(ax: Axes, text: str) -> None:
    """Blank an axis with a centered note (e.g. for a metric that was not recorded)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def has_data(frame: pd.DataFrame, column: str, env: str) -> bool:
    """Whether `column` exists and holds any value for `env` (older runs may lack it)."""
    rows = frame[frame["env"] == env]
    return column in rows.columns and bool(rows[column].notna().any())


def pairs_present(frame: pd.DataFrame) -> set[tuple[str, str]]:
    """(variant, env) pairs with rows; not every variant need run on every env."""
    return set(results.groups(frame))


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure on an Agg canvas, whose renderer can measure
    text before the figure is saved (the legend's width)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | Path) -> Path:
    """Render `fig` to PNG in memory and write it atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    path = Path(path)
    results.atomic_write_bytes(path, buffer.getvalue())
    return path


def order(preferred: Sequence[str] | None, present: Sequence[str]) -> list[str]:
    """`preferred` entries that are present (all present ones, in order, if None)."""
    present = list(dict.fromkeys(present))
    if preferred is None:
        return present
    return [name for name in dict.fromkeys(preferred) if name in present]


def step_formatter() -> EngFormatter:
    """Env steps as 50k, 1M, 2.5M: short labels that do not run into each other."""
    return EngFormatter(sep="")


def steps_axis(ax: Axes) -> None:
    """Label the x axis as env steps per seed, with at most STEP_TICKS compact ticks."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=STEP_TICKS, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(step_formatter())
    ax.set_xlabel("env steps per seed")


def plot_learning_curves(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    variants: Sequence[str] | None = None,
    envs: Sequence[str] | None = None,
    returns: str | None = None,
) -> Path:
    """Write `learning_curves_figure` as a PNG."""
    figure = learning_curves_figure(frame, variants=variants, envs=envs, returns=returns)
    return save_png(figure, path)


def learning_curves_figure(
    frame: pd.DataFrame,
    *,
    variants: Sequence[str] | None = None,
    envs: Sequence[str] | None = None,
    returns: str | None = None,
) -> Figure:
    """One subplot per env: return vs env steps per seed, a line and a bootstrap
    band of the across-seed mean per variant. The return is the deterministic
    evaluation's where the env has one (a variant without it shows its training
    return, marked in the legend), else the training episodes'; the y label says.
    `returns=TRAINING_RETURN` shows the sampled policy's training return instead:
    a greedy evaluation can hide what the stochastic policy still does."""
    variants = order(variants, frame["variant"].unique())
    envs = order(envs, frame["env"].unique())
    if not envs or not variants:
        raise ValueError("no (variant, env) rows to plot")
    ncols = min(3, len(envs))
    nrows = math.ceil(len(envs) / ncols)
    fig = new_figure(max(5.0 * ncols, 7.0), 3.6 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
    present = pairs_present(frame)
    for ax, env in zip(axes, envs, strict=False):
        ax.set_title(env)
        evaluated = returns != TRAINING_RETURN and has_data(frame, EVAL_RETURN, env)
        shown = EVAL_RETURN if evaluated else TRAINING_RETURN
        if not has_data(frame, shown, env):
            note(ax, "no finished episodes recorded")
            continue
        for variant in variants:
            if (variant, env) in present:
                draw_learning_curve(
                    ax, results.metric_arrays(frame, variant, env), variant, variants, shown,
                    bands=len(variants) <= MANY_VARIANTS,
                )
        steps_axis(ax)
        ax.set_ylabel(RETURN_LABELS[shown])
        ax.grid(alpha=0.3)
    for ax in axes[len(envs) :]:
        ax.set_axis_off()
    legend_or_count(fig, axes, variants)
    return fig


def legend_or_count(fig: Figure, axes: Sequence[Axes], variants: Sequence[str]) -> None:
    """The legend; above MANY_VARIANTS a line saying how many variants the lines
    are (a legend of 1,000 names is taller than the plots and names none legibly;
    summary.md names each variant's figures)."""
    if len(variants) <= MANY_VARIANTS:
        add_legend(fig, axes)
        return
    fig.text(0.5, 0.005, f"{len(variants):,} variants, one line each (colours in variant "
             f"order; no legend or bands above {MANY_VARIANTS} variants: summary.md names "
             "each variant's figures)", ha="center", va="bottom", fontsize="small")


def draw_learning_curve(
    ax: Axes, arrays: dict[str, np.ndarray], variant: str, variants: Sequence[str],
    shown: str = TRAINING_RETURN, *, bands: bool = True,
) -> None:
    """One variant's learning curve and band of the `shown` return (its training
    return, labelled so, if it has no evaluations). Evaluations weigh one each
    and windows without one are skipped; training returns are weighted by
    `episodes_finished` (without it every update with a return counts once)."""
    metric = EVAL_RETURN if shown == EVAL_RETURN and return_metric(arrays) == EVAL_RETURN \
        else TRAINING_RETURN
    values = arrays[metric]
    ones = np.isfinite(values).astype(np.float64)
    counts = ones if metric == EVAL_RETURN else arrays.get("episodes_finished", ones)
    x_index, mean, lo, hi = learning_curve(values, counts, n_resamples=1000 if bands else 0)
    if metric == EVAL_RETURN:
        keep = np.isfinite(mean)
        x_index, mean, lo, hi = x_index[keep], mean[keep], lo[keep], hi[keep]
    steps = arrays["env_steps"][0, x_index]
    color = variant_color(variant, variants)
    label = variant if metric == shown else f"{variant} (training return)"
    ax.plot(steps, mean, color=color, linestyle=variant_linestyle(variant, variants),
            label=label)
    if bands:
        ax.fill_between(steps, lo, hi, color=color, alpha=0.2, linewidth=0)


def add_legend(fig: Figure, axes: Sequence[Axes]) -> Legend | None:
    """One figure legend below the plots, each variant once, in as many rows as
    it takes to fit the figure's width (as few as possible, balanced), read row
    by row in the variants' order."""
    labels: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labels.setdefault(label, handle)
    if not labels:
        return None
    renderer = fig.canvas.get_renderer()
    for ncols in range(most_columns(fig, labels, renderer), 0, -1):
        ncols = math.ceil(len(labels) / math.ceil(len(labels) / ncols))  # balanced rows
        names = row_major(list(labels), ncols)
        legend = fig.legend([labels[name] for name in names], names,
                            loc="outside lower center", ncols=ncols)
        if ncols == 1 or legend.get_window_extent(renderer).width <= LEGEND_FILL * fig.bbox.width:
            rows = math.ceil(len(labels) / ncols)  # the figure's height holds one row already
            height = legend.get_window_extent(renderer).height / fig.dpi
            fig.set_figheight(fig.get_figheight() + height * (rows - 1) / rows)
            return legend
        legend.remove()
    return None


def most_columns(fig: Figure, labels: Mapping[str, Any], renderer: Any) -> int:
    """An upper bound of the legend columns that fit the figure's width: each
    column is at least as wide as the narrowest label's text, so the search
    below starts there instead of at one column per variant (with 1,000
    variants, a thousand legends laid out and measured)."""
    legend = fig.legend(list(labels.values()), list(labels), loc="outside lower center")
    narrowest = min(text.get_window_extent(renderer).width for text in legend.get_texts())
    legend.remove()
    fits = math.floor(LEGEND_FILL * fig.bbox.width / max(narrowest, 1.0))
    return max(1, min(len(labels), fits))


def row_major(items: Sequence[str], ncols: int) -> list[str]:
    """`items` reordered so that a legend, which fills its columns one after the
    other (the first `len % ncols` of them one entry longer), reads them row by row."""
    return [item for column in range(ncols) for item in items[column::ncols]]


def plot_diagnostics(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    env: str,
    variants: Sequence[str] | None = None,
    num_points: int = 100,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write `diagnostics_figure` as a PNG."""
    fig = diagnostics_figure(frame, env=env, variants=variants, num_points=num_points, info=info)
    return save_png(fig, path)


def diagnostics_figure(
    frame: pd.DataFrame,
    *,
    env: str,
    variants: Sequence[str] | None = None,
    num_points: int = 100,
    info: Mapping[str, Any] | None = None,
) -> Figure:
    """2x3 panel of training-health metrics for one env: per variant the median
    across seeds with an interquartile band, against env steps per seed. `info`
    (run.json) gives each variant's config, which decides the units of the value
    loss and advantage std (`metric_units`): the y label names a common unit, and
    a note under the panel says which variants are in which when they differ."""
    variants = order(variants, frame["variant"].unique())
    present = pairs_present(frame)
    arrays = {v: results.metric_arrays(frame, v, env) for v in variants if (v, env) in present}
    if not arrays:
        raise ValueError(f"no rows for env {env!r}")
    units = panel_units(arrays, info)
    note_lines = sum(units_note(u).count("\n") + 1 for u in units.values() if units_note(u))
    panels = diagnostic_panels(info, arrays)
    ncols = 3 if len(panels) <= 6 else 4
    fig = new_figure(5.0 * ncols, 7.5 + NOTE_LINE_INCHES * note_lines)  # notes take room
    fig.suptitle(f"{env}: diagnostics (median and interquartile range over seeds)")
    axes = fig.subplots(2, ncols).reshape(-1)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    for ax, (metric, log) in zip(axes, panels, strict=False):
        ax.set_title(metric)
        if not has_data(frame, metric, env):
            note(ax, f"{metric} not recorded")
            continue
        for variant, metrics in arrays.items():
            draw_quartiles(ax, metrics, metric, variant_color(variant, variants), variant,
                           num_points, variant_linestyle(variant, variants),
                           band=len(variants) <= MANY_VARIANTS)
        if metric == "grad_clip_ratio":
            mark_throttled(ax)
        if log and has_positive(frame, metric, env):
            ax.set_yscale("log", nonpositive="mask")
        steps_axis(ax)
        ax.grid(alpha=0.3)
        if metric in UNIT_METRICS:
            label_units(ax, units[metric])
    legend_or_count(fig, axes, variants)
    return fig


def diagnostic_panels(info: Mapping[str, Any] | None,
                      arrays: Mapping[str, Mapping[str, np.ndarray]]) -> list[tuple[str, bool]]:
    """The six standard panels, plus epochs completed per update when a variant
    stops its epochs on KL: how much of the epoch budget each update used."""
    stops = any(variant_fields(info, variant).get("kl_early_stop") for variant in arrays)
    return [*DIAGNOSTICS, EPOCHS_PANEL] if stops else list(DIAGNOSTICS)


def mark_throttled(ax: Axes) -> None:
    """The clip ratio above which the throttled-updates rule fires."""
    ax.axhline(THROTTLED_CLIP_RATIO, color="0.3", linestyle="--", linewidth=1)
    ax.text(0.01, THROTTLED_CLIP_RATIO, " throttled", transform=ax.get_yaxis_transform(),
            va="bottom", fontsize=8, color="0.3")


def panel_units(arrays: Mapping[str, Mapping[str, np.ndarray]],
                info: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """metric -> {variant: unit} for each of UNIT_METRICS, over the variants that
    recorded any finite value of it."""
    units = {variant: metric_units(variant_fields(info, variant)) for variant in arrays}
    return {metric: {variant: units[variant][metric] for variant, metrics in arrays.items()
                     if has_values(metrics, metric)} for metric in UNIT_METRICS}


def has_values(metrics: Mapping[str, np.ndarray], metric: str) -> bool:
    values = metrics.get(metric)
    return values is not None and bool(np.isfinite(values).any())


def variant_fields(info: Mapping[str, Any] | None, variant: str) -> dict[str, Any]:
    """A variant's config fields as run.json records them (its overrides in an
    older record; none at all: standard PPO)."""
    entry = ((info or {}).get("variants") or {}).get(variant) or {}
    return dict(entry.get("config") or entry.get("overrides") or {})


def metric_units(fields: Mapping[str, Any]) -> dict[str, str]:
    """The units of each of UNIT_METRICS under a config (its fields; the rest at
    PPOConfig's defaults), read from the strategies the config names.

    Advantages are in the learner's reward units: return units, or scaled-reward
    units when reward_scaling divides rewards by a running return std. The value
    loss is in the head space of the value target (return units only for a
    target in return units), squared for a squared-error loss; a loss over
    value bins (HL-Gauss) is a cross-entropy, in nats."""
    defaults = PPOConfig()

    def field(name: str) -> Any:
        return fields.get(name, getattr(defaults, name))

    rewards = "scaled-reward units" if field("reward_scaling") else "return units"
    try:
        target = VALUE_TARGETS.get(field("value_target"))
        loss = VALUE_LOSSES.get(field("value_loss"))
    except ValueError:  # a strategy registered by a module this process has not imported
        return {"value_loss": "unknown units (value strategies not registered here)",
                "advantage_std": rewards}
    head = rewards if target.return_units else f"{field('value_target')} units"
    if not target.return_units and field("reward_scaling"):
        head = f"{head} of scaled rewards"
    if loss.head.fixed_support:
        value_loss = "nats (cross-entropy over value bins)"
    elif loss.squared_error:
        value_loss = f"{head}\N{SUPERSCRIPT TWO}"
    else:
        value_loss = f"{field('value_loss')} loss of {head}"
    return {"value_loss": value_loss, "advantage_std": rewards}


def units_note(units: Mapping[str, str]) -> str | None:
    """Which variants are in which units, or None when they all share one. A
    largest group of more than NOTE_LIST_MAX variants is named last as "every
    other variant", so the exceptions stand out."""
    groups: dict[str, list[str]] = {}
    for variant, unit in units.items():
        groups.setdefault(unit, []).append(variant)
    if len(groups) < 2:
        return None
    largest = max(groups, key=lambda unit: len(groups[unit]))
    others = len(groups[largest]) > NOTE_LIST_MAX
    lines = [f"{unit}: {', '.join(names)}" for unit, names in groups.items()
             if not (others and unit == largest)]
    if others:
        lines.append(f"{largest}: every other variant ({len(groups[largest])})")
    wrapped = [textwrap.fill(line, NOTE_CHARACTERS, subsequent_indent="    ") for line in lines]
    return "\n".join(["units differ (not comparable across groups):", *wrapped])


def label_units(ax: Axes, units: Mapping[str, str]) -> None:
    """The y label names the unit the variants share; where they differ, a note
    under the panel lists each unit with its variants."""
    text = units_note(units)
    if text is None:
        if units:
            ax.set_ylabel(next(iter(units.values())))
        return
    ax.set_ylabel("mixed units (see below)")
    ax.annotate(text, xy=(0.0, 0.0), xycoords=("axes fraction", ax.xaxis.label),
                xytext=(0, -4), textcoords="offset points", ha="left", va="top", fontsize=8,
                color="0.25", gid=UNITS_NOTE_GID).set_in_layout(True)


def draw_quartiles(
    ax: Axes,
    metrics: dict[str, np.ndarray],
    metric: str,
    color: str,
    label: str,
    num_points: int,
    linestyle: str = "-",
    band: bool = True,
) -> None:
    """One variant's window-averaged median line and interquartile band for `metric`."""
    values = metrics.get(metric)
    if values is None or not np.isfinite(values).any():
        return
    starts = window_starts(values.shape[-1], num_points)
    per_seed = window_means(values, np.ones_like(values), starts)
    q25, q50, q75 = seed_quartiles(per_seed)
    steps = metrics["env_steps"][0, window_last(starts, values.shape[-1])]
    ax.plot(steps, q50, color=color, linestyle=linestyle, label=label)
    if band:
        ax.fill_between(steps, q25, q75, color=color, alpha=0.2, linewidth=0)


def has_positive(frame: pd.DataFrame, metric: str, env: str) -> bool:
    """Whether a log axis would have anything to show."""
    return bool((frame.loc[frame["env"] == env, metric] > 0).any())


def import_variant_modules(info: Mapping[str, Any]) -> None:
    """Import the experiment's `imports`, so variants registered there have known
    units; one that cannot be imported leaves them unknown, never fails a plot."""
    with contextlib.suppress(ValueError):
        import_modules((info.get("experiment") or {}).get("imports") or ())


def filename_safe(name: str) -> str:
    """An env id as a file-name part: anything but letters, digits, '.', '-', '_' -> '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "env"


TRAINING_CURVES = "learning_curves_training.png"  # written when the run evaluates


def write_plots(
    run_dir: str | Path,
    frame: pd.DataFrame | None = None,
    info: dict[str, Any] | None = None,
) -> list[Path]:
    """Write `plots/learning_curves.png` (and, when the run evaluates,
    `plots/learning_curves_training.png` of the training return) and
    `plots/diagnostics_<env>.png` per env, in run.json's variant and env order
    where known; return the paths."""
    run_dir = Path(run_dir)
    if frame is None:
        frame = results.read_metrics(run_dir)
    if info is None:
        info = results.read_run_info(run_dir) if (run_dir / results.RUN_INFO).exists() else {}
    import_variant_modules(info)
    present_variants, present_envs = frame["variant"].unique(), frame["env"].unique()
    variants = order([*info.get("variants", {}), *present_variants], present_variants)
    envs = order([*info.get("envs", []), *present_envs], present_envs)
    folder = run_dir / PLOTS_DIR
    paths = [
        plot_learning_curves(frame, folder / "learning_curves.png", variants=variants, envs=envs)
    ]
    if any(has_data(frame, EVAL_RETURN, env) for env in envs):
        paths.append(plot_learning_curves(frame, folder / TRAINING_CURVES, variants=variants,
                                          envs=envs, returns=TRAINING_RETURN))
    for env in envs:
        path = folder / f"diagnostics_{filename_safe(env)}.png"
        paths.append(plot_diagnostics(frame, path, env=env, variants=variants, info=info))
    return paths
