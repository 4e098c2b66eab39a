"""Final-return statistics per variant and environment, with bootstrap intervals.

Point estimates (mean, median, interquartile mean) and the probability of
improvement over a baseline variant come with stratified-bootstrap confidence
intervals from rliable (Agarwal et al., 2021), since a handful of seeds makes
a bare mean misleading. Each (variant, env) cell is one task, so scores go to
rliable as `(seeds, 1)` arrays and the aggregates are taken over seeds only:
rliable's own `aggregate_median` is a median over tasks of per-task means,
which for one task is just the mean.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rliable import library as rly

from jppo.analysis.metrics import (
    RETURN_LABELS,
    TRAINING_RETURN,
    final_return,
    first_nonfinite_update,
    nonfinite_final_returns,
)
from jppo.runs import results
from jppo.runs.divergence_watch import STOPPED_EARLY

STATISTICS = ("mean", "median", "iqm")
COLUMNS = (
    "env",
    "variant",
    "seeds",
    *(f"{name}{suffix}" for name in (*STATISTICS, "p_improve") for suffix in ("", "_lo", "_hi")),
    "return",  # the metric the final return comes from: eval_return or episode_return
)
# Added to a run's table when it recorded the divergence flags (nonfinite_check).
DIVERGENCE_COLUMNS = ("subset", "diverged")
ALL_RUNS, WITHOUT_DIVERGED = "all", "without diverged"
SHOWN_SEEDS = 20  # diverged seeds named per cell in the note under the table
SUMMARY_MD = "summary.md"
SUMMARY_CSV = "summary.csv"
FINAL_FRACTION = 0.1


def final_returns(frame: pd.DataFrame, fraction: float = 0.1) -> dict[tuple[str, str], np.ndarray]:
    """Per-seed final return (last `fraction` of updates) per (variant, env), in
    the frame's order of appearance: of the evaluations where recorded, else
    episode-weighted over the training episodes (see `final_scores`)."""
    return {key: scores for key, (scores, _) in final_scores(frame, fraction).items()}


def final_scores(frame: pd.DataFrame, fraction: float = 0.1
                 ) -> dict[tuple[str, str], tuple[np.ndarray, str]]:
    """Per (variant, env): the per-seed final returns and the metric they come
    from (`eval_return` or `episode_return`)."""
    return {
        (variant, env): final_return(results.metric_arrays(frame, variant, env), fraction)
        for variant, env in results.groups(frame)
    }


def point_estimates(scores: np.ndarray) -> np.ndarray:
    """[mean, median, IQM] of a `(runs, 1)` score array (flattened over runs)."""
    return np.array([np.mean(scores), np.median(scores), iqm(scores)], np.float64)


def iqm(scores: np.ndarray) -> float:
    """rliable's `aggregate_iqm` (scipy's 25% `trim_mean` over all entries), the same
    operations without scipy's per-call overhead: the bootstrap calls it 2,000
    times per cell, which made a 1,000-variant summary take hours."""
    flat = np.asarray(scores).ravel()
    lowercut = int(0.25 * flat.size)
    uppercut = flat.size - lowercut
    return np.mean(np.partition(flat, (lowercut, uppercut - 1))[lowercut:uppercut])


def improvement_probability(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """rliable's `probability_of_improvement` for one task (columns averaged): the
    Mann-Whitney U of x over y / (n_x n_y), counted pairwise (ties half), which is
    exact in floating point, instead of scipy's ranks per bootstrap replicate."""
    probabilities = []
    for task in range(scores_x.shape[1]):
        x, y = scores_x[:, task], scores_y[:, task]
        if np.array_equal(x, y):
            probabilities.append(0.5)
            continue
        greater = np.sum(x[:, None] > y[None, :]) + 0.5 * np.sum(x[:, None] == y[None, :])
        probabilities.append(greater / (len(x) * len(y)))
    return np.mean(probabilities)


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for the block and restore its state afterwards.

    rliable draws its bootstrap indices with `np.random.choice` whatever
    `random_state` is passed (arch only uses that for its own generator, and
    warns it is deprecated), so the global RNG is the only handle on
    reproducibility; restoring it keeps the caller's random stream untouched.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def cell_seed(seed: int, *names: str) -> int:
    """A bootstrap seed per cell from `seed` and the cell's names, so a cell's
    intervals do not depend on which other cells share the table, and
    different cells do not reuse the same resampling indices."""
    entropy = [seed, *(zlib.crc32(name.encode()) for name in names)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def bootstrap_interval(
    data: np.ndarray | list[np.ndarray],
    func: Callable[..., np.ndarray],
    *,
    reps: int,
    confidence: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """rliable's percentile stratified bootstrap of `func` -> (point, (2, ...) interval).

    For this module's two statistics on one task with equal run counts, the
    replicates are computed all at once (`vectorized_interval`), bit for bit
    rliable's: its Python loop of 2,000 replicates per cell made a 1,000-variant
    summary take minutes."""
    arrays = [data] if isinstance(data, np.ndarray) else list(data)
    with seeded_global_rng(seed):
        if func in REPLICATE_STATISTICS and _equal_single_task(arrays):
            return vectorized_interval(arrays, func, reps=reps, confidence=confidence)
        points, intervals = rly.get_interval_estimates(
            {"cell": data}, func, reps=reps, confidence_interval_size=confidence
        )
    return np.asarray(points["cell"], np.float64), np.asarray(intervals["cell"], np.float64)


def _equal_single_task(arrays: list[np.ndarray]) -> bool:
    """All `(runs, 1)` with one `runs`: what `vectorized_interval` draws for."""
    shape = np.shape(arrays[0])
    return len(shape) == 2 and shape[1] == 1 and all(np.shape(a) == shape for a in arrays)


def vectorized_interval(arrays: list[np.ndarray], func: Callable[..., np.ndarray], *,
                        reps: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """rliable's stratified bootstrap for `(runs, 1)` arrays of equal size, from the
    global RNG as rliable draws it: per replicate, `np.random.choice(runs, (runs,
    1))` for each array in turn, which is one draw of shape (reps, arrays, runs);
    then arch's percentile interval of the replicates' statistics."""
    runs = arrays[0].shape[0]
    draws = np.random.choice(runs, (reps, len(arrays), runs), replace=True)
    resampled = [np.asarray(a, np.float64)[:, 0][draws[:, i]] for i, a in enumerate(arrays)]
    values = REPLICATE_STATISTICS[func](*resampled)  # (reps, statistics)
    alpha = (1.0 - confidence) / 2
    percentiles = [100 * alpha, 100 * (1.0 - alpha)]
    bounds = np.array([np.percentile(values[:, i], percentiles) for i in range(values.shape[1])])
    return np.asarray(func(*arrays), np.float64), bounds.T.reshape(2, -1)


def point_estimate_rows(scores: np.ndarray) -> np.ndarray:
    """`point_estimates` of each row of a (reps, runs) array: (reps, 3)."""
    runs = scores.shape[1]
    lowercut = int(0.25 * runs)
    uppercut = runs - lowercut
    middle = np.partition(scores, (lowercut, uppercut - 1), axis=1)[:, lowercut:uppercut]
    return np.stack([np.mean(scores, axis=1), np.median(scores, axis=1),
                     np.mean(middle, axis=1)], axis=1)


def improvement_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`improvement_probability` of each row pair of two (reps, runs) arrays: (reps, 1)."""
    greater = (np.sum(x[:, :, None] > y[:, None, :], axis=(1, 2))
               + 0.5 * np.sum(x[:, :, None] == y[:, None, :], axis=(1, 2)))
    probability = greater / (x.shape[1] * y.shape[1])
    return np.where(np.all(x == y, axis=1), 0.5, probability)[:, None]


# The statistics `bootstrap_interval` computes for all replicates at once.
REPLICATE_STATISTICS: dict[Callable[..., np.ndarray], Callable[..., np.ndarray]] = {
    point_estimates: point_estimate_rows, improvement_probability: improvement_rows}


def cell_statistics(
    scores: np.ndarray, *, reps: int, confidence: float, seed: int
) -> dict[str, float]:
    """Mean, median and IQM with CIs; NaN CIs (and NaN points if empty) below 2 runs."""
    finite = np.asarray(scores, np.float64)
    finite = finite[np.isfinite(finite)].reshape(-1, 1)
    nan3 = np.full(3, np.nan)
    if len(finite) == 0:
        points, lo, hi = nan3, nan3, nan3
    elif len(finite) < 2:
        points, lo, hi = point_estimates(finite), nan3, nan3
    else:
        points, (lo, hi) = bootstrap_interval(
            finite, point_estimates, reps=reps, confidence=confidence, seed=seed
        )
    row: dict[str, float] = {"seeds": len(finite)}
    for i, name in enumerate(STATISTICS):
        row |= {name: points[i], f"{name}_lo": lo[i], f"{name}_hi": hi[i]}
    return row


def probability_of_improvement(
    scores: np.ndarray, baseline: np.ndarray, *, reps: int, confidence: float, seed: int
) -> dict[str, float]:
    """P(a run of the variant beats a run of the baseline), ties counting half, with
    an independent stratified-bootstrap CI (NaN CI below 2 runs on either side)."""
    x, y = (np.asarray(s, np.float64) for s in (scores, baseline))
    x, y = x[np.isfinite(x)].reshape(-1, 1), y[np.isfinite(y)].reshape(-1, 1)
    point = lo = hi = math.nan
    if len(x) and len(y):
        point = float(improvement_probability(x, y))
    if len(x) >= 2 and len(y) >= 2:
        _, interval = bootstrap_interval(
            [x, y],
            improvement_probability,
            reps=reps,
            confidence=confidence,
            seed=seed,
        )
        lo, hi = interval.reshape(-1)
    return {"p_improve": point, "p_improve_lo": lo, "p_improve_hi": hi}


def summary_table(
    scores: Mapping[tuple[str, str], np.ndarray],
    baseline: str | None,
    *,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    return_metrics: Mapping[tuple[str, str], str] | None = None,
) -> pd.DataFrame:
    """One row per (variant, env) key of `scores`, in its order: final-return
    statistics with bootstrap CIs and P(variant > baseline) on the same env;
    `return` names the metric each row's scores come from (`return_metrics`,
    empty where not given).

    Non-finite scores (seeds that finished no episode in the final window) are
    dropped; `seeds` counts what is left. The same input and `seed` give the
    same table.
    """
    variants = list(dict.fromkeys(variant for variant, _ in scores))
    if baseline is not None and baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not a variant; variants are {variants}")
    rows = []
    for (variant, env), cell in scores.items():
        row: dict[str, object] = {"env": env, "variant": variant}
        options = {"reps": reps, "confidence": confidence}
        row |= cell_statistics(cell, seed=cell_seed(seed, env, variant), **options)
        reference = scores.get((baseline, env)) if baseline is not None else None
        if reference is None or variant == baseline:
            row |= {"p_improve": math.nan, "p_improve_lo": math.nan, "p_improve_hi": math.nan}
        else:
            pair_seed = cell_seed(seed, env, variant, baseline)
            row |= probability_of_improvement(cell, reference, seed=pair_seed, **options)
        row["return"] = (return_metrics or {}).get((variant, env), "")
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["seeds"] = table["seeds"].astype(np.int64)
    table.attrs.update(baseline=baseline, reps=reps, confidence=confidence)
    return table


MAX_DECIMALS = 8  # returns of order 1e-4 (tiny reward scales) keep 4 significant digits


def decimals(*values: float) -> int:
    """Decimals that show about four significant digits of the largest value (at
    least 1; 3 for values in [1, 10)), so a run with returns of 1e-4 does not
    print as a column of zeros."""
    finite = [abs(v) for v in values if np.isfinite(v) and v != 0]
    if not finite:
        return 2
    return min(MAX_DECIMALS, max(1, 3 - math.floor(math.log10(max(finite)))))


def format_estimate(point: float, lo: float, hi: float, digits: int) -> str:
    """'12.3 [10.1, 14.0]'; the bare point where the CI is missing; 'n/a' without data."""
    if not np.isfinite(point):
        return "n/a"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def format_row(row: pd.Series, baseline: str | None) -> list[str]:
    """One table row as text cells; returns share the row's precision."""
    bounds = [row[f"{name}{suffix}"] for name in STATISTICS for suffix in ("", "_lo", "_hi")]
    digits = decimals(*bounds)
    cells = [str(row["env"]), variant_label(row), str(row["seeds"])]
    for name in STATISTICS:
        cells.append(format_estimate(row[name], row[f"{name}_lo"], row[f"{name}_hi"], digits))
    if baseline is not None and row["variant"] == baseline:
        cells.append("baseline")
    else:
        cells.append(format_estimate(row["p_improve"], row["p_improve_lo"], row["p_improve_hi"], 2))
    cells.append(RETURN_NAMES.get(row.get("return", ""), ""))
    return cells


def format_table(table: pd.DataFrame) -> str:
    """The summary table as Markdown, padded so it also lines up in a terminal."""
    baseline = table.attrs.get("baseline")
    ci = f"{table.attrs.get('confidence', 0.95):.0%} CI"
    versus = f"P(> {baseline})" if baseline else "P(> baseline)"
    header = ["env", "variant", "seeds", f"mean [{ci}]", f"median [{ci}]", f"IQM [{ci}]"]
    lines = [[*header, f"{versus} [{ci}]", "return"]]
    lines += [format_row(row, baseline) for _, row in table.iterrows()]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    numeric = [False, False, True, True, True, True, True, False]

    def render(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * (w - 1) + ":" if right else "-" * w for w, right in zip(widths, numeric, strict=True)
    ]
    text = "\n".join([render(lines[0]), render(rule), *(render(cells) for cells in lines[1:])])
    notes = results.incomplete_lines(table.attrs.get("incomplete", {}))
    return "\n\n".join([text, "\n".join(notes)]) if notes else text


def write_summary(run_dir: str | Path, table: pd.DataFrame) -> tuple[Path, Path]:
    """Write `summary.md` (explanation + table) and `summary.csv` (full precision)."""
    run_dir = Path(run_dir)
    reps = table.attrs.get("reps", 2000)
    confidence = table.attrs.get("confidence", 0.95)
    baseline = table.attrs.get("baseline")
    fraction = table.attrs.get("fraction", 0.1)
    versus = (
        f" P(> {baseline}) = probability that a seed of the variant ends above a seed of "
        f"{baseline} on the same env (ties count half)."
        if baseline
        else ""
    )
    text = (
        "# Final return per variant and environment\n\n"
        f"{final_return_text(table, fraction)} CIs = {confidence:.0%} stratified bootstrap "
        f"over seeds (rliable, {reps} reps); seeds = seeds with a final return."
        f"{versus}\n\n{format_table(table)}\n{_paragraph(divergence_note(table))}"
    )
    md_path, csv_path = run_dir / SUMMARY_MD, run_dir / SUMMARY_CSV
    results.atomic_write_text(md_path, text)
    results.atomic_write_text(csv_path, table.to_csv(index=False))
    return md_path, csv_path


RETURN_NAMES = {"eval_return": "eval", "episode_return": "training"}


def final_return_text(table: pd.DataFrame, fraction: float) -> str:
    """What the final return of the table's rows is, for each metric they use."""
    used = set(table["return"]) if "return" in table else set()
    parts = []
    if "eval_return" in used:
        parts.append(f"eval = {RETURN_LABELS['eval_return']}: per seed, the mean evaluation "
                     f"return (eval_return) of the evaluations in the last {fraction:.0%} of "
                     "updates, or the last evaluation if none falls there.")
    if "episode_return" in used or not parts:
        parts.append(f"training = {RETURN_LABELS['episode_return']}: per seed, the mean return "
                     "of the training episodes (episode_return) that finished in the last "
                     f"{fraction:.0%} of updates.")
    return "Final return (column `return`): " + " ".join(parts)


def ordered_keys(
    keys: list[tuple[str, str]], envs: list[str], variants: list[str]
) -> list[tuple[str, str]]:
    """(variant, env) keys grouped by env, envs and variants in the given order first,
    anything else after in its order of appearance."""
    env_order = list(dict.fromkeys([*envs, *(e for _, e in keys)]))
    variant_order = list(dict.fromkeys([*variants, *(v for v, _ in keys)]))
    present = set(keys)
    return [(v, e) for e in env_order for v in variant_order if (v, e) in present]


def summarize_run(run_dir: str | Path, *, reps: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Read a run's metrics and run.json, write summary.md and summary.csv, return the
    table (rows grouped by env, in run.json's env and variant order). A run that
    stopped early is labelled 'incomplete: k of n updates' under the table."""
    info = results.read_run_info(run_dir)
    frame = results.read_metrics(run_dir)
    scores = final_scores(frame, FINAL_FRACTION)
    keys = ordered_keys(list(scores), list(info.get("envs", [])), list(info.get("variants", {})))
    ordered = {key: scores[key][0] for key in keys}
    options = {"reps": reps, "seed": seed,
               "return_metrics": {key: scores[key][1] for key in keys}}
    firsts = first_divergences(frame)
    if firsts is None:  # the run did not record the flags: the plain table
        table = summary_table(ordered, info.get("baseline"), **options)
    else:
        table = summary_with_divergence(ordered, firsts, info.get("baseline"), **options)
    table.attrs.update(fraction=FINAL_FRACTION, stopped_early=info.get(STOPPED_EARLY) or {},
                       incomplete=results.incomplete_cells(frame, info),  # a stopped run
                       nonfinite_returns=nonfinite_return_seeds(frame, keys, scores))
    write_summary(run_dir, table)
    return table


def nonfinite_return_seeds(frame: pd.DataFrame, keys: Sequence[tuple[str, str]],
                           scores: Mapping[tuple[str, str], tuple[np.ndarray, str]]
                           ) -> dict[tuple[str, str], list[int]]:
    """Per (variant, env), the seeds whose final training return is NaN because an
    episode returned NaN or inf: left out of the statistics, and said so."""
    found = {}
    for key in keys:
        if scores[key][1] != TRAINING_RETURN:
            continue
        arrays = results.metric_arrays(frame, *key)
        bad = nonfinite_final_returns(arrays, FINAL_FRACTION)
        seeds = np.sort(frame.loc[(frame["variant"] == key[0]) & (frame["env"] == key[1]),
                                  "seed"].unique())
        if bad.any():
            found[key] = [int(seed) for seed in seeds[bad]]
    return found


def nonfinite_return_note(table: pd.DataFrame) -> str:
    found = table.attrs.get("nonfinite_returns") or {}
    if not found:
        return ""
    cells = "; ".join(f"{variant} / {env}: {len(seeds)} seed(s) ({_listed(seeds)})"
                      for (variant, env), seeds in found.items())
    return (f"NaN returns: {cells} finished episodes whose return is NaN or inf (the env paid "
            "a non-finite reward): their final return is NaN, left out of the statistics "
            "(the seeds column counts the rest; n/a where none is left).")


def _listed(seeds: Sequence[int]) -> str:
    more = f" and {len(seeds) - SHOWN_SEEDS} more" if len(seeds) > SHOWN_SEEDS else ""
    return "seeds " + ", ".join(map(str, seeds[:SHOWN_SEEDS])) + more


# ------------------------------------------------------------ diverged runs


def first_divergences(frame: pd.DataFrame) -> dict[tuple[str, str], pd.Series] | None:
    """Per (variant, env), each seed's first non-finite update (-1: none), indexed
    by seed; None when the run did not record the `nonfinite` flags."""
    if "nonfinite" not in frame.columns:
        return None
    found = {}
    for variant, env in results.groups(frame):
        arrays = results.metric_arrays(frame, variant, env)
        seeds = np.sort(frame.loc[(frame["variant"] == variant) & (frame["env"] == env),
                                  "seed"].unique())
        firsts = first_nonfinite_update(arrays)
        found[variant, env] = pd.Series(np.full(len(seeds), -1) if firsts is None else firsts,
                                        index=seeds, name="first_nonfinite_update")
    return found


def summary_with_divergence(
    scores: Mapping[tuple[str, str], np.ndarray],
    firsts: Mapping[tuple[str, str], pd.Series],
    baseline: str | None,
    **options: float,
) -> pd.DataFrame:
    """`summary_table` over all runs, with each cell's count of diverged runs
    (`diverged`, `subset="all"`); below a cell that has any, its statistics
    without them (`subset="without diverged"`; P(> baseline) against the
    baseline's runs that did not diverge). A diverged run's final return is
    that of a policy frozen at its first non-finite update, so both views are
    shown, and the table's text says which row is which."""
    table = summary_table(scores, baseline, **options)
    diverged = {key: firsts[key].to_numpy() >= 0 for key in scores}
    table["subset"] = ALL_RUNS
    table["diverged"] = np.array([diverged[key].sum() for key in scores], np.int64)
    hit = [key for key in scores if diverged[key].any()]
    runs = {key: {int(seed): int(first) for seed, first in firsts[key].items() if first >= 0}
            for key in hit}
    if not hit:
        table.attrs["diverged_runs"] = runs
        return table
    kept = {key: np.asarray(scores[key])[~diverged[key]] for key in scores}
    needed = dict.fromkeys([*hit, *((baseline, env) for _, env in hit if (baseline, env) in kept)])
    present = baseline if any(variant == baseline for variant, _ in needed) else None
    without = summary_table({key: kept[key] for key in needed}, present, **options)
    without["subset"] = WITHOUT_DIVERGED
    without["diverged"] = [int(diverged[key].sum()) for key in needed]
    position = {key: i for i, key in enumerate(needed)}
    parts = []
    for i, key in enumerate(scores):
        parts.append(table.iloc[[i]])
        if key in hit:
            parts.append(without.iloc[[position[key]]])
    merged = pd.concat(parts, ignore_index=True)
    merged.attrs = {**table.attrs, "diverged_runs": runs}
    return merged


def variant_label(row: pd.Series) -> str:
    """The variant as the table shows it: marked on a cell with diverged runs."""
    diverged = row.get("diverged", 0)
    if pd.isna(diverged) or not diverged:
        return str(row["variant"])
    if row.get("subset") == WITHOUT_DIVERGED:
        return f"{row['variant']} (without the {int(diverged)} diverged)"
    return f"{row['variant']} ({int(diverged)} diverged)"


def divergence_note(table: pd.DataFrame) -> str:
    """The runs that diverged and the programs stopped early, and how the table
    shows them; empty when there are none."""
    found = table.attrs.get("diverged_runs") or {}
    sentences = [nonfinite_return_note(table)] if nonfinite_return_note(table) else []
    if found:
        cells = "; ".join(f"{variant} / {env}: {_seeds_by_update(firsts)}"
                          for (variant, env), firsts in found.items())
        sentences.append(
            "Diverged runs (a loss, gradient or parameter became NaN or inf; from that update "
            "on the policy no longer learns, though the env still reports finite returns): "
            f"{cells}. Rows marked '(N diverged)' include them; the rows '(without the N "
            "diverged)' below give the same statistics over the other runs.")
    for entry in (table.attrs.get("stopped_early") or {}).values():
        sentences.append(
            f"Stopped early (stop_when_diverged): {entry['env']} · "
            f"{', '.join(entry['variants'])} after {entry['updates']} of "
            f"{entry['num_updates']} updates: {entry['reason']}.")
    return " ".join(sentences)


def _seeds_by_update(firsts: Mapping[int, int]) -> str:
    """'seeds 0, 1 at update 2; seed 5 at update 9' from {seed: first non-finite
    update}, at most SHOWN_SEEDS seeds named."""
    by_update: dict[int, list[str]] = {}
    for seed, update in list(firsts.items())[:SHOWN_SEEDS]:
        by_update.setdefault(update, []).append(str(seed))
    groups = [f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)} at update {update}"
              for update, seeds in sorted(by_update.items())]
    more = f"; {len(firsts) - SHOWN_SEEDS} more" if len(firsts) > SHOWN_SEEDS else ""
    return "; ".join(groups) + more


def format_summary(table: pd.DataFrame) -> str:
    """The table for a terminal, with the note on diverged runs below it if any."""
    note = divergence_note(table)
    return format_table(table) + (f"\n\n{note}" if note else "")


def _paragraph(text: str) -> str:
    return f"\n{text}\n" if text else ""
