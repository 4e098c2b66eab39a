"""Before / after on the benchmark's splits: root_causes.md and precision.md.

    python -m experiments.diagnosis_benchmark.compare

root_causes.md reads, per split, the scores of the diagnosis as it was before root-cause ordering
(`results_before_dev.json`, `results_before_test.json`: the rules of the commit that
sealed the test split, every fired finding counted, a mode in the label's `also`
excused) and after (`results.json`, `results_test.json`: root causes only, strictly),
on the same run directories; writes per split the per-mode recall and precision and
the false alarm rate before and after, the confusion table of root causes, and the
runs whose diagnosis changed, three of them with the numbers that decided.

precision.md does the same for the precision rules (a one-step discount and returns
below the critic's resolution as noise advantages, the clipped policy gradient per
parameter, a critic learning toward an unreachable scale as the scale's consequence):
`before_precision/{dev,test}.json` are the same run directories scored by the rules of
the commit before them, root causes against root causes; the holdout split, scored
once with the final rules, has no "before".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
FILES = {"dev": ("results_before_dev.json", "results.json"),
         "test": ("results_before_test.json", "results_test.json")}
PRECISION_FILES = {"dev": ("before_precision/dev.json", "results.json"),
                   "test": ("before_precision/test.json", "results_test.json")}
DETAILED = 3  # changed runs shown with their numbers


def _cell(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.2f}"


def mode_rows(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = ["| mode | labelled | recall before | recall after | recall after (valid) | "
             "precision before | precision after | FP before | FP after |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, new in after["modes"].items():
        old = before["modes"].get(mode, {})
        lines.append(f"| {mode} | {new['labelled']} | {_cell(old.get('recall'))} | "
                     f"{_cell(new['recall'])} | {_cell(new['recall_valid'])} | "
                     f"{_cell(old.get('precision'))} | {_cell(new['precision'])} | "
                     f"{old.get('false_positives', '-')} | {new['false_positives']} |")
    lines += ["", f"False alarm rate (healthy runs with any finding before, any root "
              f"after): {before['false_alarm_rate']:.1%} before, "
              f"{after['false_alarm_rate']:.1%} after."]
    return lines


def confusion_rows(after: dict[str, Any]) -> list[str]:
    columns = list(next(iter(after["confusion"].values())))
    lines = ["| label | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for label, counts in after["confusion"].items():
        lines.append(f"| {label} | " + " | ".join(str(counts.get(c, 0)) for c in columns)
                     + " |")
    return lines


def changed_runs(before: dict[str, Any], after: dict[str, Any],
                 named: str = "fired") -> list[dict[str, Any]]:
    """Runs whose diagnosis changed: before, the findings under `named` (every fired
    finding, or the roots); after, the roots."""
    old = {(r["variant"], r["env"]): r for r in before["per_run"]}
    changed = []
    for row in after["per_run"]:
        previous = old.get((row["variant"], row["env"]))
        if previous is not None and set(previous[named]) != set(row["roots"]):
            changed.append(row | {"before": previous[named]})
    return changed


def detail(row: dict[str, Any]) -> list[str]:
    """One changed run: what was named before and after, the quotes of its roots and
    the links that made the rest consequences."""
    lines = [f"**{row['variant']} / {row['env']}** (label {row['label']}): before "
             f"{', '.join(row['before']) or 'nothing'}; after, root "
             f"{', '.join(row['roots']) or 'nothing'}.", ""]
    for mode in row["roots"]:
        lines.append(f"- root {mode}: {row['quotes'].get(mode, '')}")
    for mode, cause in row.get("consequences", {}).items():
        lines.append(f"- {mode} <- {cause}: {row['links'].get(mode, '')}")
    return [*lines, ""]


def pick(changed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to DETAILED changed runs with different labels: first those whose label was
    not named before and is now, then the others now right, then the rest."""
    right = sorted((r for r in changed if r["label"] in r["roots"]),
                   key=lambda r: r["label"] in r["before"])
    chosen, labels = [], set()
    for row in right + [r for r in changed if r not in right]:
        if row["label"] not in labels:
            chosen.append(row)
            labels.add(row["label"])
        if len(chosen) == DETAILED:
            break
    return chosen


def split_section(name: str, before: dict[str, Any], after: dict[str, Any],
                  named: str = "fired") -> list[str]:
    changed = changed_runs(before, after, named)
    lines = [f"## {name} split ({after['runs']} runs, {after['healthy_runs']} healthy)", ""]
    if before["runs"] != after["runs"]:
        lines += [f"The before columns score the {before['runs']} runs the split had then "
                  f"({before['healthy_runs']} healthy); the changed runs below are among them.",
                  ""]
    lines += [*mode_rows(before, after), "", "Confusion table of root causes (after):", "",
             *confusion_rows(after), "", f"{len(changed)} runs changed diagnosis:", ""]
    lines += [f"- {r['variant']} / {r['env']} ({r['label']}): {', '.join(r['before']) or '-'}"
              f" -> {', '.join(r['roots']) or '-'}" for r in changed]
    lines += ["", "With the numbers that decided:", ""]
    for row in pick(changed):
        lines += detail(row)
    return lines


def _load(name: str, every_finding: bool) -> dict[str, Any]:
    scores = json.loads((HERE / name).read_text())
    if every_finding:
        scores = scores.get("all_findings", scores) | {"per_run": scores["per_run"]}
    return scores


def root_causes_report() -> list[str]:
    lines = ["# Root causes: before and after, on both splits", "",
             "Before: the diagnosis before root-cause ordering, every fired finding counted "
             "(a mode in the label's `also` excused). After: root causes only (no `also`). "
             "Same run directories. Written by `python -m "
             "experiments.diagnosis_benchmark.compare`.", ""]
    for name, (old, new) in FILES.items():
        if (HERE / old).exists() and (HERE / new).exists():
            lines += split_section(name, _load(old, True), _load(new, False))
    return lines


def holdout_section(scores: dict[str, Any]) -> list[str]:
    lines = [f"## holdout split ({scores['runs']} runs, {scores['healthy_runs']} healthy), "
             f"scored once with the final rules", "",
             "| mode | labelled | recall | recall (valid) | precision | FP |",
             "|---|---:|---:|---:|---:|---:|"]
    for mode, row in scores["modes"].items():
        lines.append(f"| {mode} | {row['labelled']} | {_cell(row['recall'])} | "
                     f"{_cell(row['recall_valid'])} | {_cell(row['precision'])} | "
                     f"{row['false_positives']} |")
    misses = [r for r in scores["per_run"] if r["label"] != "healthy"
              and r["label"] not in r["roots"]]
    lines += ["", f"False alarm rate: {scores['false_alarm_rate']:.1%}. Misses:", ""]
    lines += [f"- {r['variant']} / {r['env']} ({r['label']}): root "
              f"{', '.join(r['roots']) or 'nothing'}, fired {', '.join(r['fired']) or 'nothing'}"
              for r in misses] or ["- none"]
    return [*lines, ""]


def precision_report() -> list[str]:
    lines = ["# The precision rules: before and after", "",
             "Before: the same run directories scored by the rules before the precision "
             "changes (`before_precision/`). After: the final rules. Both columns count root "
             "causes only. Written by `python -m experiments.diagnosis_benchmark.compare`.",
             ""]
    for name, (old, new) in PRECISION_FILES.items():
        if (HERE / old).exists() and (HERE / new).exists():
            lines += split_section(name, _load(old, False), _load(new, False), "roots")
    if (HERE / "results_holdout.json").exists():
        lines += holdout_section(_load("results_holdout.json", False))
    return lines


def main() -> None:
    for name, lines in (("root_causes.md", root_causes_report()),
                        ("precision.md", precision_report())):
        (HERE / name).write_text("\n".join(lines) + "\n")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
