"""Automatic diagnosis of a run: rules over the per-update diagnostics that name
PPO's value-function failure modes, with evidence and the config overrides
that address each.

Four modules: `engine` judges every rule the same way, `rules` holds one
block per failure mode (thresholds, check, evidence metrics, remedies),
`divergence` reports seeds whose update met a NaN or inf (with the first such
update and its likely source) and `report` renders findings. Every rule is
judged per seed:

* the first `WARMUP_FRACTION` of updates are skipped (the critic and the
  gradient norms start far from their steady state in any healthy run), and so
  are a seed's updates from its first non-finite one on (its parameters are
  void; the divergence finding reports it);
* a seed is affected when the rule's condition holds on more than half of
  the updates it evaluates, and it evaluates at least `MIN_EVALUATED`;
* a finding *fires* when at least `FIRE_FRACTION` of the seeds are affected.

Two gates keep solved tasks quiet. Targets are *flat* when their std is below
`FLAT_TARGETS` of the return scale: explained variance then divides by a
near-zero Var[R] and says nothing about the critic. A seed is *solved* at an
update when its latest episode return is within `SOLVED_TOLERANCE` of the
learning range (first return to best) below the best return on the
environment (for a run that evaluates, its evaluation return and its training
return both): a policy that stopped changing there has nothing left to move
to. Policy stall, entropy collapse, noise advantages, value dominance,
throttled updates and the exploding value loss skip solved updates.

A rule's check returns a `Verdict`; built from `Signal`s of `Criterion`s
(`verdict_of`), each finding quotes the criteria that held on its affected
seeds, e.g. "explained_variance -0.8 < 0".

`diagnose_run(run_dir)` writes the run's `diagnosis.md`; `diagnose_frame` works
on any metrics table, and `format_markdown` / `format_terminal` render findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from jppo.analysis.diagnose import causes
from jppo.analysis.diagnose.causes import LINKS, Link, root_findings
from jppo.analysis.diagnose.divergence_source import (
    DIVERGENCE,
    LARGE_REWARD,
    divergence_finding,
    likely_source,
)
from jppo.analysis.diagnose.engine import (
    EVIDENCE_ROWS,
    FIRE_FRACTION,
    FLAT_TARGETS,
    MIN_EVALUATED,
    SAMPLED_TOLERANCE,
    SMOOTHING_FRACTION,
    SOLVED_TOLERANCE,
    WARMUP_FRACTION,
    Cell,
    Criterion,
    Finding,
    Remedy,
    Rule,
    Signal,
    Verdict,
    best_return,
    diagnose_cell,
    flat_targets,
    make_cell,
    make_cells,
    persistent,
    return_scale,
    smoothed_returns,
    solved,
    verdict_of,
)
from jppo.analysis.diagnose.report import format_markdown, format_terminal
from jppo.analysis.diagnose.rules import (
    ANNEALED_LR,
    CRUSHED_EPS,
    DOMINANCE_RATIO,
    ENTROPY_FRACTION,
    EXPLAINED_VARIANCE_FLOOR,
    KL_CUT_FRACTION,
    LARGE_RETURN_SCALE,
    LOG_STD_DROP,
    NOISE_ADVANTAGE,
    NOISE_EV,
    RULES,
    STALL_CLIP_FRACTION,
    STALL_KL,
    STALL_PROGRESS,
    STARVED_BIAS,
    STARVED_EV,
    STUCK_LOG_STD_DROP,
    THROTTLE_RATIO,
    TINY_ABSOLUTE_CLIP,
    TORSO_DOMINANCE_RATIO,
    clipped_policy_gradient,
    register_rule,
    registered_rules,
)
from jppo.runs import results
from jppo.runs.experiment import import_modules

__all__ = [
    "ANNEALED_LR", "DOMINANCE_RATIO", "ENTROPY_FRACTION", "EVIDENCE_ROWS", "FIRE_FRACTION",
    "KL_CUT_FRACTION", "CRUSHED_EPS", "EXPLAINED_VARIANCE_FLOOR", "NOISE_EV", "STARVED_BIAS",
    "STARVED_EV", "STUCK_LOG_STD_DROP", "STALL_PROGRESS", "TORSO_DOMINANCE_RATIO",
    "clipped_policy_gradient",
    "FLAT_TARGETS", "LARGE_RETURN_SCALE", "LOG_STD_DROP", "MIN_EVALUATED", "NOISE_ADVANTAGE",
    "RULES", "SAMPLED_TOLERANCE", "SMOOTHING_FRACTION", "SOLVED_TOLERANCE",
    "STALL_CLIP_FRACTION", "STALL_KL",
    "THROTTLE_RATIO", "TINY_ABSOLUTE_CLIP", "WARMUP_FRACTION", "Cell", "Finding", "Remedy",
    "Rule", "Signal", "Verdict", "Criterion", "verdict_of", "best_return", "diagnose_cell",
    "diagnose_frame", "diagnose_run",
    "flat_targets", "format_markdown", "format_terminal", "make_cell", "persistent",
    "incomplete_notes", "register_rule", "registered_rules", "return_scale",
    "smoothed_returns", "solved", "DIVERGENCE", "LARGE_REWARD", "divergence_finding",
    "likely_source", "causes", "LINKS", "Link", "root_findings",
]


def diagnose_frame(frame: pd.DataFrame, info: Mapping[str, Any] | None = None,
                   rules: Sequence[Rule] | None = None) -> list[Finding]:
    """Every rule (default: the registered ones) on every (variant, env) of a metrics
    table, in rule order per cell, after the cell's numerical divergence finding
    if any of its seeds diverged (see `divergence`); fired findings are marked root
    cause or consequence (`causes.order`).

    Cells come in the run's order (run.json) when `info` is given. "Solved" is
    judged against the best return any variant reached on the environment, so a
    variant that plateaus far below another one is not excused as solved.
    """
    rules = registered_rules() if rules is None else rules
    findings = []
    for cell in make_cells(frame, info):
        diverged = divergence_finding(cell, info)
        found = [] if diverged is None else [diverged]
        found += [diagnose_cell(cell, rule) for rule in rules]
        findings += causes.order(cell, found, rules)
    return findings


def diagnose_run(run_dir: str | Path, rules: Sequence[Rule] | None = None) -> list[Finding]:
    """Diagnose a run directory and write its `diagnosis.md`; the experiment's
    `imports` are imported first, so its registered variants and rules exist."""
    run_dir = Path(run_dir)
    frame = results.read_metrics(run_dir)
    try:
        info = results.read_run_info(run_dir)
    except FileNotFoundError:
        info = None
    if info is not None:
        import_modules(info.get("experiment", {}).get("imports", ()))
    findings = diagnose_frame(frame, info, rules)
    notes = results.incomplete_lines(results.incomplete_cells(frame, info)) if info else []
    results.atomic_write_text(run_dir / "diagnosis.md", format_markdown(findings, info, notes))
    return findings


def incomplete_notes(run_dir: str | Path) -> list[str]:
    """'VARIANT / ENV: incomplete: k of n updates ...' per cell of a run that stopped early."""
    try:
        info = results.read_run_info(run_dir)
    except FileNotFoundError:
        return []
    return results.incomplete_lines(results.incomplete_cells(results.read_metrics(run_dir), info))
