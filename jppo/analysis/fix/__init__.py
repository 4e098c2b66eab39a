"""`jppo fix RUN`: turn a run's diagnosis into candidate config changes, run them
next to the original config, and say which change removes the finding and
improves the return with confidence.

Three modules: `plan` makes and writes the candidates (each remedy's conditions,
the pruning, the plan file), `outcome` reads the candidates' run back (re-diagnosis,
IQM, P(improvement), cost, the recommendation) and `trainers` translates a plan into
SB3's and CleanRL's parameter names for logs of those trainers.

Everything a plan needs is checked before anything compiles: the run directory,
`seeds` and `budget`, each wrong one named with its value and what is allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from jppo.analysis import diagnose
from jppo.analysis.diagnose import Finding
from jppo.analysis.fix import outcome, trainers
from jppo.analysis.fix.plan import (
    CONDITIONS,
    ORIGINAL,
    PLAN_DIR,
    PLAN_FILE,
    RUN_DIR,
    Candidate,
    Condition,
    FixPlan,
    candidates,
    env_params_tables,
    plan_text,
    write_plan,
)
from jppo.analysis.fix.trainers import translate
from jppo.core.config import PPOConfig
from jppo.runs import results

__all__ = ["CONDITIONS", "ORIGINAL", "PLAN_DIR", "PLAN_FILE", "RUN_DIR", "Candidate",
           "Condition", "FixPlan", "candidates", "check_seeds", "fix", "make_plan",
           "outcome", "plan_text", "prepare", "report", "run_candidates", "trainers",
           "translate"]

DEFAULT_SEEDS = 16
REPORT = "report.md"


def check_seeds(seeds: Any) -> int:
    """P(improvement) and its CI need two runs on either side."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 2:
        raise ValueError(f"seeds={seeds!r} is invalid: allowed is a whole number >= 2 "
                         "(P(improvement) and its CI need two runs per candidate)")
    return seeds


def check_budget(budget: Any, rollout: int) -> int | None:
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < rollout:
        raise ValueError(f"budget={budget!r} is invalid: allowed is a whole number of env "
                         f"steps per seed >= one rollout (num_envs*num_steps = {rollout})")
    return budget


def check_top(top: Any) -> int | None:
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"top={top!r} is invalid: allowed is a whole number >= 1 (the "
                         "number of kept candidates to run), or None for all")
    return top


def first_kept(found: list[Candidate], top: int | None) -> list[Candidate]:
    """The first `top` kept candidates stay kept; the rest are left out, saying so."""
    if top is None:
        return found
    kept = [c.name for c in found if c.kept][:top]
    return [c if not c.kept or c.name in kept else dataclasses.replace(
        c, kept=False, reason=f"left out: beyond the first {top} kept candidates (top)")
        for c in found]


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """run.json of a jppo run that recorded its experiment; one-line errors otherwise."""
    run_dir = Path(run_dir)
    if not (run_dir / results.RUN_INFO).is_file():
        raise ValueError(f"run={str(run_dir)!r} is invalid: allowed is a jppo run directory "
                         f"(it has no {results.RUN_INFO}) or, on the command line, logs of "
                         "SB3 / CleanRL (the plan is printed in their names)")
    info = results.read_run_info(run_dir)
    if "experiment" not in info:
        raise ValueError(f"run={str(run_dir)!r} is invalid: its {results.RUN_INFO} records "
                         "no experiment, so no candidate can be built on its config")
    if info.get("env_objects"):
        raise ValueError(f"run={str(run_dir)!r} is invalid: it trained env objects "
                         f"({', '.join(info['env_objects'])}), which run.json records by "
                         "name only; allowed are runs of named environments")
    if not any((run_dir / results.METRICS_DIR).glob("*.parquet")):
        raise ValueError(f"run={str(run_dir)!r} is invalid: no diagnosis is possible, it "
                         f"has no metrics in {run_dir / results.METRICS_DIR}")
    return info


def _variant(info: Mapping[str, Any], variant: str | None) -> str:
    names = list(info["experiment"]["variants"])
    chosen = variant or info["experiment"].get("baseline") or names[0]
    if chosen not in names:
        raise ValueError(f"variant={chosen!r} is invalid: allowed are the run's variants "
                         f"{', '.join(names)}")
    return chosen


def plan_fields(info: Mapping[str, Any], variant: str, seeds: int,
                total: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan's top-level fields and its [config]: the run's experiment, one
    variant's config as the base, `original` the baseline."""
    recorded = info["experiment"]
    config = {**recorded.get("config", {}), **recorded["variants"][variant]}
    config.pop("total_timesteps", None)
    top = {"name": f"{recorded['name']}-fix", "envs": list(recorded["envs"]),
           "seeds": seeds, "first_seed": recorded.get("first_seed", 0),
           "total_timesteps": total, "baseline": ORIGINAL,
           "reward_scale": recorded.get("reward_scale"),
           "chunk_updates": recorded.get("chunk_updates"),
           "checkpoint_every": recorded.get("checkpoint_every"),
           "stop_when_diverged": recorded.get("stop_when_diverged"),
           "imports": list(recorded.get("imports", ()))}
    return top, config


def make_plan(run_dir: str | Path, *, seeds: int = DEFAULT_SEEDS, budget: int | None = None,
              variant: str | None = None, top: int | None = None,
              write: bool = True) -> FixPlan:
    """Diagnose the run (writing its diagnosis.md), build the candidates for its
    variant and write RUN/fix/experiment.toml where there is something to fix."""
    run_dir = Path(run_dir)
    check_seeds(seeds)
    check_top(top)
    info = read_run(run_dir)
    variant = _variant(info, variant)
    config = diagnose.engine.cell_config(info, variant)
    budget = check_budget(budget, config.num_envs * config.num_steps)
    recorded = info["experiment"].get("total_timesteps") or config.total_timesteps
    total = recorded if budget is None else min(recorded, budget)
    findings = [f for f in diagnose.diagnose_run(run_dir) if f.variant == variant]
    found = first_kept(candidates(findings, config), top)
    plan = FixPlan(run_dir, variant, findings, found, None, total, seeds)
    if not plan.kept or not write:
        return plan
    fields, base = plan_fields(info, variant, seeds, total)
    header = _header(run_dir, variant, plan.targets, config)
    text = plan_text(fields, base, found, header)
    if info["experiment"].get("env_params"):
        text += env_params_tables(info["experiment"]["env_params"])
    plan.path = write_plan(run_dir / PLAN_DIR / PLAN_FILE, text)
    return plan


def _header(run_dir: Path, variant: str, fired: Sequence[Finding],
            config: PPOConfig) -> list[str]:
    lines = [f"jppo fix: candidate changes for {run_dir} (variant {variant}), editable:",
             "`jppo fix RUN --resume` runs this file as it stands (continuing RUN/fix/run);",
             "`jppo compare` runs it like any experiment file.",
             "Findings:"]
    for finding in fired:
        role = "root cause" if finding.root else f"consequence of {finding.caused_by}"
        role = f"latent, where the task is solved; {role}" if finding.latent else role
        lines.append(f"  {finding.env}: {finding.rule} ({role}): {finding.quote}")
    return lines


def fix(run_dir: str | Path, seeds: int = DEFAULT_SEEDS, budget: int | None = None, *,
        variant: str | None = None, top: int | None = None, dry_run: bool = False,
        resume: bool = False, progress: str = "off") -> pd.DataFrame:
    """The candidates' table for a run (for notebooks): one row per candidate and
    env with its findings re-diagnosed, IQM and P(improvement) over `original` with
    95% CIs, and its cost; `attrs["recommendation"]` says which change to make.
    `dry_run` writes the plan only (the table then lists candidates, no numbers);
    `top` runs only the first N kept candidates; `resume` runs the written plan
    file (edited or not) instead of a new one, and continues RUN/fix/run from its
    checkpoints where it was started. The report is also written to RUN/fix/report.md."""
    plan = prepare(run_dir, seeds=seeds, budget=budget, variant=variant, top=top,
                   resume=resume)
    if plan.path is None or dry_run:
        return outcome.plan_table(plan)
    run_candidates(plan, resume=resume, progress=progress)
    return report(plan)


def prepare(run_dir: str | Path, *, seeds: int = DEFAULT_SEEDS, budget: int | None = None,
            variant: str | None = None, top: int | None = None,
            resume: bool = False) -> FixPlan:
    """The plan `fix` runs: a new one written, or with `resume` the plan file as it stands."""
    plan = make_plan(run_dir, seeds=seeds, budget=budget, variant=variant, top=top,
                     write=not resume)
    if resume:
        plan.path = Path(run_dir) / PLAN_DIR / PLAN_FILE
        if not plan.path.is_file():
            raise ValueError(f"resume: {plan.path} does not exist; run `jppo fix {run_dir}` "
                             "first")
    return plan


def report(plan: FixPlan) -> pd.DataFrame:
    """The outcome table of a plan whose run finished, written to RUN/fix/report.md."""
    table = outcome.outcome_table(plan)
    path = plan.run_dir / PLAN_DIR / REPORT
    results.atomic_write_text(path, f"# jppo fix: {plan.run_dir}\n\n"
                              f"{outcome.format_outcome(table)}\n")
    table.attrs["report"] = str(path)
    return table


def run_candidates(plan: FixPlan, *, resume: bool = False, progress: str = "off") -> Path:
    """Run the plan file next to the original config; the run is re-diagnosed."""
    from jppo.runs import experiment
    from jppo.runs.runner import run_experiment

    if plan.path is None:
        raise ValueError(f"{plan.run_dir}: nothing to fix, so there is no plan to run")
    exp = experiment.load(plan.path)  # validated before anything compiles
    again = resume and (plan.run_out / results.RUN_INFO).is_file()
    run_experiment(exp, plan.run_out, resume=again, progress=progress)
    return plan.run_out
