"""`diagnose_logs`: jppo's rules on the runs of other trainers, and the report: jppo's
diagnosis, then per source the lines that would log each metric a rule lacked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jppo.analysis import diagnose, stats
from jppo.analysis.logs.base import METRIC_NAMES, Options
from jppo.analysis.logs.discover import (
    SOURCES,
    LogRun,
    assemble,
    check_groups,
    runs_under,
    seed_lines,
)
from jppo.analysis.logs.events import LogError


@dataclasses.dataclass
class LogDiagnosis:
    """The findings of every cell, the metrics table they were judged on, the runs
    behind each seed, and the report (`markdown`, `terminal`)."""

    findings: list[diagnose.Finding]
    frame: pd.DataFrame
    info: dict[str, Any]
    runs: list[LogRun]
    notes: list[str]
    baseline: str | None = None  # the cell the summary's P(> baseline) compares with

    @property
    def summary(self) -> pd.DataFrame | None:
        """jppo's final-return statistics per cell (None without logged returns)."""
        return summary_table(self.frame, self.baseline) if self.info else None

    @property
    def markdown(self) -> str:
        table = self.summary
        summary = [] if table is None else [
            "## Final return per cell", "",
            stats.final_return_text(table, stats.FINAL_FRACTION) + " CIs = 95% stratified "
            f"bootstrap over seeds (rliable, {table.attrs['reps']} reps).", "",
            stats.format_table(table), ""]
        report = diagnose.format_markdown(self.findings, self.info, self.notes)
        return "\n".join([report, *summary, *snippet_markdown(self.findings, self.info)])

    @property
    def terminal(self) -> str:
        table = self.summary
        text = diagnose.format_terminal(self.findings, self.notes)
        return text if table is None else f"{stats.format_table(table)}\n\n{text}"

    def _repr_markdown_(self) -> str:
        return self.markdown


def is_jppo_run(path: Path) -> bool:
    return (path / "run.json").exists() or (path / "metrics").is_dir()


def diagnose_logs(paths: str | Path | Sequence[str | Path], source: str = "auto",
                  map: Options | dict[str, str] | None = None,
                  group: str | None = None, baseline: str | None = None) -> LogDiagnosis:
    """Diagnose the runs under `paths` (TensorBoard folders, SB3 progress.csv, Brax JSON
    lines, W&B or plain CSV / Parquet; a jppo run directory too): runs of one group are
    the seeds of one cell. `map` renames columns (ours -> theirs) or is a full `Options`
    (`read_options`); `group` is a regex whose first group names a run's cell;
    `baseline` the cell the summary's P(> baseline) compares the others with."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if not paths:
        raise LogError("no PATH given: a jppo run directory, or log files / folders")
    options = map if isinstance(map, Options) else Options(map=dict(map or {}))
    jppo_runs = [Path(p) for p in paths if source in ("auto", "jppo") and is_jppo_run(Path(p))]
    if jppo_runs:
        return _jppo(jppo_runs, paths)
    if source == "jppo":
        raise LogError(f"{paths[0]}: not a jppo run directory (no run.json or metrics/)")
    runs = runs_under(paths, source, options, group)
    frame, info = assemble(runs)
    notes = seed_lines(info) + run_notes(runs, info)
    groups = list(info["variants"])
    check_groups(options, groups)
    if baseline is not None and baseline not in groups:
        raise LogError(f"--baseline {baseline!r} is not a cell; cells: {', '.join(groups)}")
    findings = [with_their_names(f, info, options) for f in diagnose.diagnose_frame(frame, info)]
    return LogDiagnosis(findings, frame, info, runs, notes, baseline)


def run_notes(runs: Sequence[LogRun], info: dict[str, Any]) -> list[str]:
    """The readers' notes: once per cell where every seed of it has the note (a setting
    of the configuration), else per run; then the cell's own (`discover.cell_config`)."""
    notes = []
    for group, variant in info["variants"].items():
        members = [r for r in runs if str(r.path) in variant["runs"]]
        shared = set.intersection(*(set(r.normalised.notes) for r in members))
        notes += [f"{group}: {note}" for note in members[0].normalised.notes if note in shared]
        notes += [f"{r.path}: {note}" for r in members for note in r.normalised.notes
                  if note not in shared]
        notes += [f"{group}: {note}" for note in variant["notes"]]
    return notes


def their_names(source: str, options: Options) -> dict[str, str]:
    """jppo metric -> the trainer's name it was read from (its conversion table, --map)."""
    names = {}
    for conversion in SOURCES[source].conversions if source in SOURCES else ():
        tag = conversion.theirs.split(" ")[0].rstrip(",")
        for ours in conversion.ours.split(", "):
            if ours in (*METRIC_NAMES, "env_steps") and "/" in tag and tag[0] != "(":
                names.setdefault(ours, tag)
    return names | dict(options.map)


def with_their_names(finding: diagnose.Finding, info: dict[str, Any],
                     options: Options) -> diagnose.Finding:
    """The evidence columns named as jppo's metric and the trainer's tag it was converted
    from: 'value_loss (from train/value_loss)'."""
    source = info["variants"].get(finding.variant, {}).get("source", "")
    names = their_names(source, options)
    evidence = finding.evidence.rename(columns=lambda c: f"{c} (from {names[c]})"
                                       if c in names else c)
    return dataclasses.replace(finding, evidence=evidence)


def _jppo(runs: list[Path], paths: Sequence[str | Path]) -> LogDiagnosis:
    if len(runs) != len(paths) or len(runs) > 1:
        raise LogError("a jppo run directory is diagnosed alone: `jppo diagnose RUN`")
    from jppo.runs import results

    findings = diagnose.diagnose_run(runs[0])
    frame = results.read_metrics(runs[0])
    return LogDiagnosis(findings, frame, {}, [], diagnose.incomplete_notes(runs[0]))


def summary_table(frame: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame | None:
    """`stats.summary_table` over the cells that logged returns. Trainers that log a
    windowed mean per update (SB3's ep_rew_mean) give no episode counts: each logged
    update then weighs one."""
    if "episode_return" not in frame.columns and "eval_return" not in frame.columns:
        return None
    frame = frame.copy()
    returns = frame.get("episode_return", pd.Series(np.nan, index=frame.index))
    counts = frame.get("episodes_finished", pd.Series(np.nan, index=frame.index))
    frame["episodes_finished"] = counts.fillna(np.isfinite(returns).astype(np.float64))
    scores = stats.final_scores(frame, stats.FINAL_FRACTION)
    scores = {key: value for key, value in scores.items() if np.isfinite(value[0]).any()}
    if not scores:
        return None
    table = stats.summary_table({k: v[0] for k, v in scores.items()}, baseline,
                                return_metrics={k: v[1] for k, v in scores.items()})
    table.attrs["fraction"] = stats.FINAL_FRACTION
    return table


def snippet_markdown(findings: Sequence[diagnose.Finding], info: dict[str, Any]) -> list[str]:
    """Per source: the trainer's lines that log the metrics a rule lacked (not judged) or
    would be sharper with, under names its reader takes as they are."""
    wanted: dict[str, dict[str, None]] = {}
    for f in (f for f in findings if not f.unjudged):  # unjudged: logged, mostly NaN
        source = info.get("variants", {}).get(f.variant, {}).get("source", "")
        wanted.setdefault(source, {}).update(dict.fromkeys([*f.missing, *f.unlogged]))
    lines: list[str] = []
    for name, metrics in wanted.items():
        source = SOURCES.get(name)
        if source is None or not metrics:
            continue
        snippets = dict.fromkeys(source.snippets[m] for m in metrics if m in source.snippets)
        lines += ["", f"## Logging what the rules lacked: {source.title}", "",
                  f"Not logged: {', '.join(metrics)}. These lines log them under names "
                  "the reader takes as they are:", ""]
        lines += [block for snippet in snippets for block in ("```python", snippet.rstrip(),
                                                              "```", "")]
    return lines
