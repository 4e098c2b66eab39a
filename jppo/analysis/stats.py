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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics as rly_metrics

from jppo.analysis.metrics import RETURN_LABELS, final_return
from jppo.runs import results

STATISTICS = ("mean", "median", "iqm")
COLUMNS = (
    "env",
    "variant",
    "seeds",
    *(f"{name}{suffix}" for name in (*STATISTICS, "p_improve") for suffix in ("", "_lo", "_hi")),
    "return",  # the metric the final return comes from: eval_return or episode_return
)
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
    return np.array(
        [np.mean(scores), np.median(scores), rly_metrics.aggregate_iqm(scores)], np.float64
    )


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
    """rliable's percentile stratified bootstrap of `func` -> (point, (2, ...) interval)."""
    with seeded_global_rng(seed):
        points, intervals = rly.get_interval_estimates(
            {"cell": data}, func, reps=reps, confidence_interval_size=confidence
        )
    return np.asarray(points["cell"], np.float64), np.asarray(intervals["cell"], np.float64)


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
        point = float(rly_metrics.probability_of_improvement(x, y))
    if len(x) >= 2 and len(y) >= 2:
        _, interval = bootstrap_interval(
            [x, y],
            rly_metrics.probability_of_improvement,
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


def decimals(*values: float) -> int:
    """Decimals that show about four significant digits of the largest value (1 to 3)."""
    finite = [abs(v) for v in values if np.isfinite(v) and v != 0]
    if not finite:
        return 2
    return min(3, max(1, 3 - math.floor(math.log10(max(finite)))))


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
    cells = [str(row["env"]), str(row["variant"]), str(row["seeds"])]
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
    return "\n".join([render(lines[0]), render(rule), *(render(cells) for cells in lines[1:])])


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
        f"{versus}\n\n{format_table(table)}\n"
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
    table (rows grouped by env, in run.json's env and variant order)."""
    info = results.read_run_info(run_dir)
    scores = final_scores(results.read_metrics(run_dir), FINAL_FRACTION)
    keys = ordered_keys(list(scores), list(info.get("envs", [])), list(info.get("variants", {})))
    table = summary_table(
        {key: scores[key][0] for key in keys}, info.get("baseline"), reps=reps, seed=seed,
        return_metrics={key: scores[key][1] for key in keys},
    )
    table.attrs["fraction"] = FINAL_FRACTION
    write_summary(run_dir, table)
    return table
