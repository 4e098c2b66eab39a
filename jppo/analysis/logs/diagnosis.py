"""`diagnose_logs`: jppo's rules on the runs of other trainers, and the report: jppo's
diagnosis, then per source the lines that would log each metric a rule lacked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from jppo.analysis import diagnose
from jppo.analysis.logs.base import Options
from jppo.analysis.logs.discover import SOURCES, LogRun, assemble, runs_under, seed_lines
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

    @property
    def markdown(self) -> str:
        return diagnose.format_markdown(self.findings, self.info, self.notes) + \
            "\n".join(snippet_markdown(self.findings, self.info))

    @property
    def terminal(self) -> str:
        return diagnose.format_terminal(self.findings, self.notes)

    def _repr_markdown_(self) -> str:
        return self.markdown


def is_jppo_run(path: Path) -> bool:
    return (path / "run.json").exists() or (path / "metrics").is_dir()


def diagnose_logs(paths: str | Path | Sequence[str | Path], source: str = "auto",
                  map: Options | dict[str, str] | None = None,
                  group: str | None = None) -> LogDiagnosis:
    """Diagnose the runs under `paths` (TensorBoard folders, SB3 progress.csv, Brax JSON
    lines, W&B or plain CSV / Parquet; a jppo run directory too): runs of one group are
    the seeds of one cell. `map` renames columns (ours -> theirs) or is a full `Options`
    (`read_options`); `group` is a regex whose first group names a run's cell."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    options = map if isinstance(map, Options) else Options(map=dict(map or {}))
    jppo_runs = [Path(p) for p in paths if source in ("auto", "jppo") and is_jppo_run(Path(p))]
    if jppo_runs:
        return _jppo(jppo_runs, paths)
    if source == "jppo":
        raise LogError(f"{paths[0]}: not a jppo run directory (no run.json or metrics/)")
    runs = runs_under(paths, source, options, group)
    frame, info = assemble(runs)
    notes = seed_lines(info) + [f"{run.path}: {note}" for run in runs
                                for note in run.normalised.notes]
    return LogDiagnosis(diagnose.diagnose_frame(frame, info), frame, info, runs, notes)


def _jppo(runs: list[Path], paths: Sequence[str | Path]) -> LogDiagnosis:
    if len(runs) != len(paths) or len(runs) > 1:
        raise LogError("a jppo run directory is diagnosed alone: `jppo diagnose RUN`")
    from jppo.runs import results

    findings = diagnose.diagnose_run(runs[0])
    frame = results.read_metrics(runs[0])
    return LogDiagnosis(findings, frame, {}, [], diagnose.incomplete_notes(runs[0]))


def snippet_markdown(findings: Sequence[diagnose.Finding], info: dict[str, Any]) -> list[str]:
    """Per source: the trainer's lines that log the metrics a rule lacked (not judged) or
    would be sharper with, under names its reader takes as they are."""
    wanted: dict[str, dict[str, None]] = {}
    for f in findings:
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
