"""Rendering findings: the run's `diagnosis.md` and a short terminal summary.

Works from `Finding`s alone (each carries its rule's title, description and
condition), so a report can be rendered without re-running any rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jppo.analysis.diagnose.engine import (
    ABSORBING_LATE_PARTS,
    FIRE_FRACTION,
    MIN_EVALUATED,
    WARMUP_FRACTION,
    Finding,
)

QUOTE_BASIS = "medians over the affected seeds' updates after warm-up"
# an absorbing state (engine.persisting) reached late: its quote reads the late updates
LATE_BASIS = "on {late} of them over the last 1/{parts} of those only: reached late, it " \
    "does not recover"
LATENT = "on updates where the task is solved"  # a latent finding: not a failure here


def quote_basis(finding: Finding) -> str:
    """Which updates a finding's quoted medians read."""
    if not finding.late_seeds:
        return QUOTE_BASIS
    late = LATE_BASIS.format(late=finding.late_seeds, parts=ABSORBING_LATE_PARTS)
    return f"{QUOTE_BASIS}; {late}"


def format_markdown(findings: Sequence[Finding], info: Mapping[str, Any] | None = None,
                    notes: Sequence[str] = ()) -> str:
    """The report: `notes` (e.g. that the run is incomplete), per (variant, env)
    what fired, with evidence and remedies, then a rule x cell table of the
    fraction of seeds affected."""
    name = (info or {}).get("name")
    lines = [f"# Diagnosis{f': {name}' if name else ''}", "",
             f"Each rule is judged per seed after a warm-up of the first "
             f"{WARMUP_FRACTION:.0%} of updates; a seed is affected when the condition holds "
             f"on more than half of the updates the rule evaluates (at least {MIN_EVALUATED}), "
             f"and a failure mode is reported when at least {FIRE_FRACTION:.0%} of the seeds "
             "are affected; numerical divergence (a NaN or inf in an update) is reported "
             "for any seed at any update. Evidence tables show the median across seeds.",
             "", solved_gate_text(findings), ""]
    if any(f.latent for f in findings):
        lines += ["A finding marked *latent* held only once updates where the task is solved "
                  "are judged too: a defect of the critic that this task did not punish, not "
                  "a failure of this run.", ""]
    lines += [*(f"**{note}**" for note in notes), ""] if notes else []
    for (variant, env), cell in group_findings(findings).items():
        lines += _cell_markdown(variant, env, cell)
    lines += _summary_markdown(findings)
    return "\n".join(lines)


def _cell_markdown(variant: str, env: str, cell: Sequence[Finding]) -> list[str]:
    lines = [f"## {variant} / {env} ({cell[0].num_seeds} seeds)", ""]
    fired = causal_order(cell)
    unjudged = [f for f in cell if f.missing]
    if not fired:
        checked = f"{len(cell) - len(unjudged)} of {len(cell)} rules judged" if unjudged \
            else f"{len(cell)} rules checked"
        lines += [f"No failure mode detected ({checked}).", ""]
    else:
        lines += [headline(cell), ""]
    for finding in fired:
        lines += _finding_markdown(finding)
    for finding in (f for f in cell if f.latent):
        lines += _finding_markdown(finding)
    below = [f for f in cell if f.seeds and not f.fired and not f.latent]
    if below:
        text = ", ".join(f"{f.title} {len(f.seeds)}/{f.num_seeds}" for f in below)
        lines += [f"Below the reporting line: {text} seeds.", ""]
    lines += not_judged_markdown(cell)
    return lines


def causal_order(cell: Sequence[Finding]) -> list[Finding]:
    """The fired findings, each root cause followed by the consequences listed under it
    (depth first: a consequence of a consequence follows its cause)."""
    fired = [f for f in cell if f.fired]
    ordered: list[Finding] = []

    def add(finding: Finding) -> None:
        ordered.append(finding)
        for other in fired:
            if not other.root and other.caused_by == finding.rule and other not in ordered:
                add(other)

    for finding in (f for f in fired if f.root):
        add(finding)
    return ordered + [f for f in fired if f not in ordered]


def headline(cell: Sequence[Finding]) -> str:
    """'**Diagnosis**: root cause(s), each with its consequences': what to fix first."""
    titles = {f.rule: f.title for f in cell}
    parts = []
    for root in (f for f in cell if f.fired and f.root):
        after = [titles[f.rule] for f in causal_order(cell)
                 if not f.root and _root_of(f, cell) == root.rule]
        parts.append(root.title + (f" (consequences: {', '.join(after)})" if after else ""))
    word = "root cause" if len(parts) == 1 else "root causes"
    return f"**Diagnosis** ({word}): " + "; ".join(parts) + "."


def _root_of(finding: Finding, cell: Sequence[Finding]) -> str:
    by_rule = {f.rule: f for f in cell}
    seen = set()
    while not finding.root and finding.caused_by in by_rule and finding.rule not in seen:
        seen.add(finding.rule)
        finding = by_rule[finding.caused_by]
    return finding.rule


def not_judged_markdown(cell: Sequence[Finding]) -> list[str]:
    """The rules that could not run for lack of a metric, and those that judged on fewer
    signals than they can read: never a silent "no failure found"."""
    lines = [f"- **{f.title}**: not judged: {f.unjudged or f.needs_text + ' not logged'}"
             for f in cell if f.missing]
    lines += [f"- {f.title}: judged on {f.criterion}; sharper with {', '.join(f.unlogged)} "
              "(not logged)" for f in cell if f.unlogged]
    return ["What the logs could not show:", "", *lines, ""] if lines else []


def _finding_markdown(finding: Finding) -> list[str]:
    latent = f"latent, {LATENT} " if finding.latent else ""
    role = "" if not finding.fired else " (root cause)" if finding.root else \
        f" (consequence of {finding.caused_by})"
    lines = [f"### {finding.title}{role}: {len(finding.seeds)}/{finding.num_seeds} seeds "
             f"({latent}{finding.fraction:.0%})", ""]
    if finding.fired and not finding.root:
        lines += [f"Consequence of {finding.caused_by}: {finding.cause_text}.", ""]
    if finding.quote:
        lines += [f"Fired on: {finding.quote} ({quote_basis(finding)}).", ""]
    lines += [finding.description, "",
              f"- threshold: {finding.threshold}",
              f"- evidence: {finding.basis}",
              f"- seeds affected: {', '.join(map(str, finding.seeds))}"]
    if finding.note:
        lines.append(f"- note: {finding.note}")
    lines += [f"- {line}" for line in finding.lines]
    lines += ["", markdown_table(finding.evidence), "", "Remedies:", ""]
    lines += [f"- `{r.text()}`: {r.why}" for r in finding.remedies] or ["- none left to try"]
    return [*lines, ""]


def _summary_markdown(findings: Sequence[Finding]) -> list[str]:
    """Rule x cell: the fraction of seeds affected, bold where the rule fired."""
    cells = list(group_findings(findings))
    if not cells:
        return ["No metrics to diagnose."]
    titles = {f.rule: f.title for f in findings}  # rule order of the findings
    found = {(f.rule, f.variant, f.env): f for f in findings}
    rows = []
    for rule, title in titles.items():
        row = [title]
        for variant, env in cells:
            f = found.get((rule, variant, env))
            text = "" if f is None else f"{f.fraction:.0%}"
            text = f"{text} (latent)" if f is not None and f.latent else text
            row.append(f"**{text}**" if f is not None and f.fired else text)
        rows.append(row)
    header = ["failure mode", *(f"{v} / {e}" for v, e in cells)]
    return ["## Summary: fraction of seeds affected", "",
            markdown_table(pd.DataFrame(rows, columns=header)), ""]


def solved_gate_text(findings: Sequence[Finding]) -> str:
    """Which return the solved gate read, per the cells' metrics."""
    used = sorted({f.returns for f in findings})
    if used == ["eval_return"]:
        return ("Solved is judged on the evaluation return (eval_return: deterministic "
                "episodes every eval_every updates) and on the training return of the "
                "sampled policy, which the updates move: both near their best.")
    if used == ["episode_return"] or not used:
        return ("Solved is judged on the training return (episode_return: episodes of the "
                "sampled policy).")
    return ("Solved is judged on the evaluation return (eval_return) where a cell has one, "
            "else on the training return (episode_return).")


def format_terminal(findings: Sequence[Finding], notes: Sequence[str] = ()) -> str:
    """`notes` first, then a few lines per fired finding, one line for the healthy cells."""
    lines, healthy = list(notes), []
    for (variant, env), cell in group_findings(findings).items():
        fired = [f for f in cell if f.fired]
        if not fired:
            partly = " (by the rules judged)" if any(f.missing for f in cell) else ""
            healthy.append(f"{variant} / {env}{partly}")
        if fired:
            lines.append(f"{variant} / {env}: {headline(cell).replace('**', '')}")
        for f in [*causal_order(cell), *(f for f in cell if f.latent)]:
            latent = f" (latent: {LATENT})" if f.latent else ""
            if f.fired and not f.root:
                lines.append(f"{variant} / {env}: {f.title} in {len(f.seeds)}/{f.num_seeds} "
                             f"seeds ({f.fraction:.0%}), consequence of {f.caused_by}: "
                             f"{f.cause_text}")
                continue
            lines.append(f"{variant} / {env}: {f.title} in {len(f.seeds)}/{f.num_seeds} "
                         f"seeds ({f.fraction:.0%}){latent}")
            lines += [f"  {line}" for line in f.lines]
            if f.quote:
                lines.append(f"  fired on: {f.quote} ({quote_basis(f)})")
            if f.remedies:
                lines.append("  try: " + "; ".join(r.text() for r in f.remedies[:3]))
        missing = [f"{f.title} ({', '.join(f.missing)})" for f in cell
                   if f.missing and not f.unjudged]
        if missing:
            lines.append(f"{variant} / {env}: not judged, metrics not logged: "
                         + "; ".join(missing))
        lines += [f"{variant} / {env}: {f.title} not judged: {f.unjudged}" for f in cell
                  if f.unjudged]
    if healthy:
        lines.append(f"no failure mode detected: {', '.join(healthy)}")
    return "\n".join(lines)


def group_findings(findings: Sequence[Finding]) -> dict[tuple[str, str], list[Finding]]:
    """Findings per (variant, env), in the order they come."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.variant, f.env), []).append(f)
    return groups


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs an extra dependency)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---"
                          for c in frame.columns) + "|"
    body = ["| " + " | ".join(_number(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _number(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}"
