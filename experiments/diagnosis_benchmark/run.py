"""Run the diagnosis benchmark: train every benchmark file, diagnose each run,
score the findings against labels.toml, write results.json and results.md.

    python -m experiments.diagnosis_benchmark.run [--out DIR] [--skip-train]
        [--stem results]                                 (make diagnosis-benchmark)

`--skip-train` re-diagnoses the run directories already under `--out` (the
diagnosis alone takes seconds), e.g. after a rule changed; `--stem` names the
written files (results_before.json for a diagnosis with the old rules).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from experiments.diagnosis_benchmark import score as scoring
from jppo.analysis import diagnose
from jppo.runs import experiment
from jppo.runs.runner import run_experiment

HERE = Path(__file__).parent
FILES = ("cartpole", "acrobot", "pendulum", "delivery", "large_returns", "small_rewards")


def modes() -> list[str]:
    """Every failure mode a diagnosis can report: the registered rules, then divergence."""
    return [rule.name for rule in diagnose.registered_rules()] + [diagnose.DIVERGENCE]


def train(out: Path) -> float:
    """Run every benchmark file into `out/NAME`; the wall time in seconds."""
    start = time.perf_counter()
    for stem in FILES:
        exp = experiment.load(HERE / f"{stem}.toml")
        run_dir = out / exp.name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_experiment(exp, run_dir, progress="lines")
    return time.perf_counter() - start


def diagnose_runs(out: Path, labels: dict[str, scoring.Label]) -> list[dict[str, Any]]:
    """Per (variant, env) of every benchmark run: its label and the modes that fired."""
    rows = []
    for stem in FILES:
        exp = experiment.load(HERE / f"{stem}.toml")
        findings = diagnose.diagnose_run(out / exp.name)
        for (variant, env), cell in diagnose.report.group_findings(findings).items():
            entry = labels[variant]
            rows.append({"experiment": exp.name, "variant": variant, "env": env,
                         "label": entry.label, "also": list(entry.also),
                         "fired": [f.rule for f in cell if f.fired]})
    return rows


def jsonable(value: Any) -> Any:
    """NaN (a precision of a mode that never fired) as null: strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def scored_rows(rows: list[dict[str, Any]]) -> list[scoring.Scored]:
    return [scoring.scored(r["label"], r["also"], r["fired"]) for r in rows]


def _cell(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def markdown(results: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The tables: per mode precision / recall, the confusion table, per-run lines."""
    lines = ["# Diagnosis benchmark", "",
             f"{results['runs']} runs ((variant, env) cells of {results['seeds']} seeds), "
             f"{results['healthy_runs']} of them healthy. False alarm rate (healthy runs "
             f"with any finding): **{results['false_alarm_rate']:.1%}**. Wall time: "
             f"training {results['train_seconds']:.0f} s, diagnosis "
             f"{results['diagnose_seconds']:.1f} s.", "",
             "| mode | labelled | recall | precision | TP | FP | fired where declared also |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for mode, c in results["modes"].items():
        lines.append(f"| {mode} | {c['labelled']} | {_cell(c['recall'])} | "
                     f"{_cell(c['precision'])} | {c['true_positives']} | "
                     f"{c['false_positives']} | {c['fired_where_also']} |")
    columns = list(next(iter(results["confusion"].values())))
    lines += ["", "## Confusion: runs per label (rows) on which each mode fired (columns)", "",
              "| label | " + " | ".join(columns) + " |",
              "|---|" + "---:|" * len(columns)]
    for label, counts in results["confusion"].items():
        lines.append(f"| {label} | " + " | ".join(str(counts[c]) for c in columns) + " |")
    lines += ["", "## Runs", ""]
    for r in rows:
        also = f" (also: {', '.join(r['also'])})" if r["also"] else ""
        fired = ", ".join(r["fired"]) or "nothing"
        mark = "" if r["label"] in r["fired"] or (r["label"] == "healthy" and not r["fired"]) \
            else " **(missed)**" if r["label"] != "healthy" else " **(false alarm)**"
        lines.append(f"- {r['variant']} / {r['env']}: label {r['label']}{also}; "
                     f"fired: {fired}{mark}")
    return "\n".join(lines) + "\n"


def previous_train_seconds(stem: str) -> float:
    """The training wall time recorded by the run that trained (re-diagnosing keeps it)."""
    for path in (HERE / f"{stem}.json", HERE / "results.json"):
        if path.exists():
            return json.loads(path.read_text()).get("train_seconds", 0.0)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/diagnosis-benchmark")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--stem", default="results")
    args = parser.parse_args()
    out = Path(args.out)
    labels = scoring.read_labels(HERE / "labels.toml")
    scoring.check_labels(labels, modes())
    train_s = previous_train_seconds(args.stem) if args.skip_train else train(out)
    start = time.perf_counter()
    rows = diagnose_runs(out, labels)
    diagnose_s = time.perf_counter() - start
    results = scoring.score(scored_rows(rows), modes())
    results |= {"seeds": experiment.load(HERE / f"{FILES[0]}.toml").seeds,
                "train_seconds": round(train_s, 1), "diagnose_seconds": round(diagnose_s, 1),
                "per_run": rows}
    (HERE / f"{args.stem}.json").write_text(json.dumps(jsonable(results), indent=1) + "\n")
    (HERE / f"{args.stem}.md").write_text(markdown(results, rows))
    print(markdown(results, rows))
    print(f"wall time: training {train_s:.0f} s, diagnosis {diagnose_s:.1f} s")


if __name__ == "__main__":
    main()
