"""The published-vs-jppo table: the rows (published figure, source, budget), a
results record per row from a run's metrics, results.json, its Markdown table,
and the splice of that table into the README between two markers.

A record's `mean`, `ci_low`, `ci_high` are the deterministic evaluation return
(the publisher also scores test episodes, 164 per evaluation); `train` holds
the same statistics of the training return (episodes of the sampled policy).
Both are per seed the mean over the last 10% of the updates run, and the CI is
rliable's 95% bootstrap of the mean over seeds.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jppo.analysis.metrics import (
    EVAL_RETURN,
    TRAINING_RETURN,
    final_episode_return,
    final_eval_return,
)
from jppo.analysis.stats import cell_seed, cell_statistics

HERE = Path(__file__).parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "results.md"
LOGS_JSON = HERE / "publisher_logs.json"  # experiments/published/publisher_logs.py writes it
BEGIN, END = "<!-- published-results:begin -->", "<!-- published-results:end -->"
SOURCE = "gymnax-blines agents/{env}/ppo.yaml; gymnax README, Ckpt (Return)"
MEASURE = "eval_return: deterministic policy, eval_episodes per evaluation, final 10% of updates"
CONFIDENCE, REPS = 0.95, 2000


@dataclasses.dataclass(frozen=True)
class Row:
    """One benchmark row: its experiment file, the published return and where it
    runs in full (`cpu`: this machine at the published budget; `gpu`: needs one)."""

    name: str
    env: str
    published: float
    steps: int
    machine: str

    @property
    def file(self) -> Path:
        return HERE / f"{self.name}.toml"

    @property
    def source(self) -> str:
        return SOURCE.format(env=self.env)


ROWS: dict[str, Row] = {row.name: row for row in (
    Row("cartpole", "CartPole-v1", 500.0, 150_000, "cpu"),
    Row("acrobot", "Acrobot-v1", -80.0, 500_000, "cpu"),
    Row("pendulum", "Pendulum-v1", -130.0, 1_000_000, "cpu"),
    Row("mountaincar", "MountainCar-v0", -118.0, 250_000, "cpu"),
    Row("mountaincar_continuous", "MountainCarContinuous-v0", 92.0, 1_000_000, "cpu"),
    Row("breakout", "Breakout-MinAtar", 28.0, 10_000_000, "gpu"),
    Row("asterix", "Asterix-MinAtar", 15.0, 10_000_000, "gpu"),
    Row("freeway", "Freeway-MinAtar", 58.0, 10_000_000, "gpu"),
    Row("space_invaders", "SpaceInvaders-MinAtar", 131.0, 10_000_000, "gpu"),
)}


def measure_stats(per_seed: np.ndarray, published: float, seed: int) -> dict[str, Any]:
    """Mean with its 95% bootstrap CI over seeds, the per-seed values and how
    many seeds reach the published figure (every row's return: higher is better)."""
    values = np.asarray(per_seed, np.float64)
    cell = cell_statistics(values, reps=REPS, confidence=CONFIDENCE, seed=seed)
    shown = [_number(v) for v in values]  # rounded: float32 500s can average 499.99997
    return {
        "mean": _number(cell["mean"]), "ci_low": _number(cell["mean_lo"]),
        "ci_high": _number(cell["mean_hi"]), "per_seed": shown,
        "seeds_reaching": sum(v >= published for v in shown if v is not None),
    }


def row_record(row: Row, metrics: Mapping[str, np.ndarray], *, steps: int, wall_s: float,
               machine: str, config_steps: int) -> dict[str, Any]:
    """The results.json entry of `row` from its `(seeds, updates)` metric arrays."""
    seed = cell_seed(0, row.name)
    evaluated = EVAL_RETURN in metrics  # absent when the run had evaluation off
    eval_returns = final_eval_return(metrics) if evaluated else \
        np.full(len(metrics[TRAINING_RETURN]), np.nan)
    evaluation = measure_stats(eval_returns, row.published, seed)
    training = measure_stats(final_episode_return(metrics), row.published, seed)
    return {
        "env": row.env, "source": row.source, "published": row.published,
        "mean": evaluation["mean"], "ci_low": evaluation["ci_low"],
        "ci_high": evaluation["ci_high"], "seeds": len(evaluation["per_seed"]),
        "steps": int(steps), "planned_steps": int(config_steps),
        "published_steps": row.steps, "machine": machine, "wall_s": round(float(wall_s), 1),
        "measure": MEASURE, "eval": evaluation, "train": training,
        "reached": _reached(evaluation, row.published),
    }


def _reached(evaluation: Mapping[str, Any], published: float) -> bool:
    """The target: the CI of the mean evaluation return reaches the published figure."""
    return evaluation["ci_high"] is not None and evaluation["ci_high"] >= published


def _number(value: float) -> float | None:
    """Two decimals; None for NaN (a seed or a statistic with no episode), so
    results.json stays standard JSON."""
    return None if not math.isfinite(value) else round(float(value), 2)


# ------------------------------------------------------------------ files


def read_results(path: Path = RESULTS_JSON) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def write_results(results: Mapping[str, Any], path: Path = RESULTS_JSON) -> None:
    """results.json in ROWS order (unknown rows after), written atomically."""
    from jppo.runs.results import atomic_write_text

    ordered = {name: results[name] for name in [*ROWS, *results] if name in results}
    atomic_write_text(path, json.dumps(ordered, indent=2) + "\n")


def markdown(results: Mapping[str, Any], rows: Sequence[Row] = tuple(ROWS.values())) -> str:
    """published vs jppo, one line per row; a row not run yet says what it waits for."""
    lines = [
        "| env | published | jppo eval return (95% CI) | seeds >= published | training "
        "return (95% CI) | seeds | steps | machine | wall | |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for row in rows:
        lines.append(_line(row, results.get(row.name)))
    return "\n".join(lines) + "\n"


def _line(row: Row, record: Mapping[str, Any] | None) -> str:
    if record is None:
        waits = "waits for a GPU" if row.machine == "gpu" else "not run yet"
        return (f"| {row.env} | {row.published:g} | — | — | — | — | {row.steps:,} | — | — "
                f"| {waits} |")
    evaluation, training = record["eval"], record["train"]
    budget = "" if full_budget(record["steps"], row.steps) else \
        f"reduced budget ({record['steps']:,} of {row.steps:,} steps)"
    status = "reaches" if record["reached"] else "below"
    note = "; ".join(x for x in (status, budget, _origin_note(record.get("publisher"))) if x)
    return (f"| {row.env} | {row.published:g} | {_estimate(evaluation)} | "
            f"{evaluation['seeds_reaching']}/{record['seeds']} | {_estimate(training)} | "
            f"{record['seeds']} | {record['steps']:,} | {record['machine']} | "
            f"{_duration(record['wall_s'])} | {note} |")


# -------------------------------------------------- the publisher's own runs


def read_publisher_logs(path: Path = LOGS_JSON) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def row_config(row: Row) -> Any:
    """The PPOConfig of the row's experiment file (its baseline variant)."""
    from jppo.runs import experiment

    exp = experiment.load(row.file)
    return exp.variant_config(exp.baseline_variant)


def same_config(logged: Mapping[str, Any], config: Any) -> bool:
    """A publisher's PPO run at the row's rollout, epochs, learning rate and budget."""
    return (logged.get("train_type") == "PPO"
            and logged["num_train_envs"] == config.num_envs
            and logged["n_steps"] == config.num_steps
            and logged["epoch_ppo"] == config.update_epochs
            and math.isclose(float(logged["lr_begin"]), config.lr)
            and logged["num_train_steps"] == config.total_timesteps)


def publisher_evidence(row: Row, logs: Mapping[str, Any], config: Any) -> dict | None:
    """Which logged run the published figure is (the one whose last evaluation is
    nearest to it, PPO or ES) and the publisher's PPO runs at the row's config;
    None without logs for the row's env."""
    runs = logs.get("runs", {}).get(row.env)
    if not runs:
        return None
    nearest = min(runs, key=lambda run: abs(run["final"] - row.published))

    def brief(run: Mapping[str, Any]) -> dict[str, Any]:
        return {k: run[k] for k in ("file", "date", "final", "last_10pct_mean")}

    ppo = [run for run in runs if run["config"].get("train_type") == "PPO"]
    return {"published_by": nearest["config"]["train_type"], "published_run": brief(nearest),
            "ppo_at_config": [brief(r) for r in ppo if same_config(r["config"], config)],
            "best_ppo_final": max((r["final"] for r in ppo), default=None)}


def publisher_markdown(results: Mapping[str, Any], logs: Mapping[str, Any],
                       rows: Sequence[Row] = tuple(ROWS.values())) -> str:
    """The published figure next to the publisher's own logged runs and jppo's
    seeds on the same measure (the sampled policy: jppo's training return)."""
    lines = [
        "| env | published | the figure is | publisher's PPO runs at this config: last "
        "evaluation (mean of its last 10%) | best last evaluation of any publisher PPO run | "
        "jppo training return per seed | jppo seeds >= the publisher's PPO (last 10%) |",
        "|---|---:|---|---|---:|---|---|",
    ]
    for row in rows:
        evidence = publisher_evidence(row, logs, row_config(row))
        if evidence is None:
            continue
        ppo = evidence["ppo_at_config"]
        logged = ", ".join(f"{r['final']:.1f} ({r['last_10pct_mean']:.1f})" for r in ppo) or "—"
        run, best = evidence["published_run"], evidence["best_ppo_final"]
        origin = f"{evidence['published_by']} ({run['file'].split('/')[-1]}, {run['date']}: " \
                 f"{run['final']:.1f})"
        lines.append(f"| {row.env} | {row.published:g} | {origin} | {logged} | "
                     f"{'—' if best is None else f'{best:.1f}'} | "
                     f"{_seed_range(results.get(row.name))} | "
                     f"{_seeds_reaching(results.get(row.name), ppo)} |")
    return "\n".join(lines) + "\n"


def _seed_range(record: Mapping[str, Any] | None) -> str:
    values = [v for v in (record or {}).get("train", {}).get("per_seed", []) if v is not None]
    return f"{min(values):.1f} to {max(values):.1f}" if values else "—"


def _seeds_reaching(record: Mapping[str, Any] | None, ppo: Sequence[Mapping[str, Any]]) -> str:
    values = [v for v in (record or {}).get("train", {}).get("per_seed", []) if v is not None]
    if not values or not ppo:
        return "—"
    return ", ".join(f"{sum(v >= r['last_10pct_mean'] for v in values)}/{len(values)}"
                     for r in ppo)


def _origin_note(evidence: Mapping[str, Any] | None) -> str:
    """Said when the published figure is not a PPO run's (the column is "PPO, ES")."""
    if not evidence or evidence["published_by"] == "PPO":
        return ""
    ppo = ", ".join(f"{r['final']:.1f} (last 10%: {r['last_10pct_mean']:.1f})"
                    for r in evidence["ppo_at_config"])
    logged = f"logged {ppo}" if ppo else "has no committed run"
    return (f"the figure is {evidence['published_by']}'s; the publisher's PPO at this config "
            f"{logged}, its best PPO run of any config {evidence['best_ppo_final']:.1f}")


def full_budget(steps: int, published_steps: int) -> bool:
    """At the published budget: whole rollouts lose less than 1% of it to rounding."""
    return steps >= 0.99 * published_steps


def _estimate(stats: Mapping[str, Any]) -> str:
    if stats["mean"] is None:
        return "—"
    if stats["ci_low"] is None:
        return f"{stats['mean']:.1f}"
    return f"{stats['mean']:.1f} [{stats['ci_low']:.1f}, {stats['ci_high']:.1f}]"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def splice(text: str, table: str) -> str | None:
    """`text` with `table` between the published-results markers, or None when
    the markers are absent (or out of order)."""
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        return None
    return text[:start + len(BEGIN)] + "\n" + table.rstrip("\n") + "\n" + text[stop:]


def splice_into(path: Path, table: str) -> bool:
    """Write `table` into the file at `path` between the markers; False (the
    file untouched) when it has none."""
    if not path.exists():
        return False
    spliced = splice(path.read_text(), table)
    if spliced is None:
        return False
    path.write_text(spliced)
    return True
