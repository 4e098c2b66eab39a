"""Run the diagnosis benchmark: train every benchmark file of a split, diagnose each
run, score the findings against the split's labels, write results.json and results.md.

    python -m experiments.diagnosis_benchmark.run [--split dev|test|holdout] [--out DIR]
        [--skip-train] [--stem results] [--external-only]   (make diagnosis-benchmark)

Two splits (`SPLITS`): `dev`, the files beside this script, on which the rules were
designed and tuned; `test`, the files and labels under test/, with environments and
injection values of their own, fixed in one commit before the root-cause rules were
written, and scored once; `holdout`, the files and labels under holdout/, a second
sealed split (its own environments, SpaceInvaders-MinAtar and brax/inverted_pendulum,
and injection values), fixed in one commit after the test split was scored and
before any rule changed in answer to it, to be scored once when that work ends.
The score counts a run's *root causes* (`causes.py`): a finding explained by another
one on the same seeds is a consequence, not the diagnosis; the scores of every fired
finding (with the labels' `also`) are kept beside them (`all_findings`).

`--skip-train` re-diagnoses the run directories already under `--out` (the
diagnosis alone takes seconds), e.g. after a rule changed; `--stem` names the
written files (default results for dev, results_test for test, results_holdout
for holdout);
`--train-only` trains and stops (nothing diagnosed or scored: a sealed split
trained ahead of its one scoring, which is then `--skip-train`);
`--external-only` re-scores only the external-logs section (`external`: the committed
SB3 / CleanRL fixtures, external.py) in the files already written.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from experiments.diagnosis_benchmark import external
from experiments.diagnosis_benchmark import score as scoring
from jppo.analysis import diagnose
from jppo.analysis.diagnose.engine import short_number
from jppo.runs import experiment, results
from jppo.runs.runner import run_experiment

HERE = Path(__file__).parent
FILES = ("cartpole", "acrobot", "pendulum", "delivery", "large_returns", "small_rewards")
TEST_FILES = ("catch", "breakout", "large_returns", "huge_returns", "small_rewards")
HOLDOUT_FILES = ("spaceinvaders", "inverted_pendulum", "large_returns", "huge_returns",
                 "small_rewards")


class Split(NamedTuple):
    """A set of benchmark files, their labels and where their runs go by default."""

    folder: Path
    files: tuple[str, ...]
    out: str
    stem: str

    @property
    def labels(self) -> Path:
        return self.folder / "labels.toml"


SPLITS = {"dev": Split(HERE, FILES, "runs/diagnosis-benchmark", "results"),
          "test": Split(HERE / "test", TEST_FILES, "runs/diagnosis-benchmark-test",
                        "results_test"),
          "holdout": Split(HERE / "holdout", HOLDOUT_FILES,
                           "runs/diagnosis-benchmark-holdout", "results_holdout")}
FINAL_FRACTION = 0.1  # of the updates: the window of the final training return


def modes() -> list[str]:
    """Every failure mode a diagnosis can report: the registered rules, then divergence."""
    return [rule.name for rule in diagnose.registered_rules()] + [diagnose.DIVERGENCE]


def train(out: Path, split: Split = SPLITS["dev"]) -> float:
    """Run every benchmark file of the split into `out/NAME`; the wall time in seconds."""
    start = time.perf_counter()
    for stem in split.files:
        exp = experiment.load(split.folder / f"{stem}.toml")
        run_dir = out / exp.name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_experiment(exp, run_dir, progress="lines")
    return time.perf_counter() - start


def first_and_final(arrays: dict[str, np.ndarray], scale: float) -> tuple[float, float]:
    """Median over seeds of the first training return and of its mean over the last
    FINAL_FRACTION of the updates, divided by the experiment's reward scale."""
    returns = np.asarray(arrays["episode_return"], np.float64) / scale
    firsts = [row[np.isfinite(row)][0] for row in returns if np.isfinite(row).any()]
    last = max(1, round(FINAL_FRACTION * returns.shape[1]))
    with np.errstate(invalid="ignore"):
        finals = np.nanmean(returns[:, -last:], axis=1) if np.isfinite(
            returns[:, -last:]).any() else np.full(len(returns), np.nan)
    return (float(np.median(firsts)) if firsts else math.nan,
            float(np.median(finals)) if np.isfinite(finals).all() else math.nan)


def diagnose_runs(out: Path, labels: dict[str, scoring.Label],
                  split: Split = SPLITS["dev"]) -> list[dict[str, Any]]:
    """Per (variant, env) of every benchmark run of the split: its label, the modes that
    fired, its root causes (and each consequence's cause), and its first and final
    training return (in unscaled reward units)."""
    rows = []
    for stem in split.files:
        exp = experiment.load(split.folder / f"{stem}.toml")
        if not (out / exp.name / "metrics").exists():
            print(f"{exp.name}: not trained under {out}, left out")
            continue
        findings = diagnose.diagnose_run(out / exp.name)
        frame = results.read_metrics(out / exp.name)
        for (variant, env), cell in diagnose.report.group_findings(findings).items():
            entry = labels[variant]
            first, final = first_and_final(results.metric_arrays(frame, variant, env),
                                           exp.reward_scale or 1.0)
            rows.append({"experiment": exp.name, "variant": variant, "env": env,
                         "label": entry.label, "also": list(entry.also),
                         "fired": [f.rule for f in cell if f.fired],
                         "roots": [f.rule for f in cell if f.fired and getattr(f, "root", True)],
                         "consequences": {f.rule: f.caused_by for f in cell
                                          if f.fired and not getattr(f, "root", True)},
                         "quotes": {f.rule: f.quote for f in cell if f.fired},
                         "links": {f.rule: getattr(f, "cause_text", "") for f in cell
                                   if f.fired and not getattr(f, "root", True)},
                         "first_return": first, "final_return": final})
    return check_injections(rows)


def check_injections(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each injected run's deficit vs the healthy runs on its environment and whether
    the injection is valid (score.injection_valid); healthy runs are not checked."""
    for row in rows:
        if row["label"] == scoring.HEALTHY:
            row["deficit"], row["valid"] = None, True
            continue
        same_env = [r for r in rows if r["env"] == row["env"]]
        healthy = [r["final_return"] for r in same_env if r["label"] == scoring.HEALTHY]
        start = float(np.nanmedian([r["first_return"] for r in same_env]))
        deficit = scoring.injection_deficit(row["final_return"], healthy, start)
        row["deficit"], row["valid"] = deficit, scoring.injection_valid(deficit)
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
    """Every fired finding counted, a mode in the label's `also` not a false positive."""
    return [scoring.scored(r["label"], r["also"], r["fired"], r.get("valid", True))
            for r in rows]


def root_rows(rows: list[dict[str, Any]]) -> list[scoring.Scored]:
    """Root causes only, strictly: a root other than the label is a false positive."""
    return [scoring.root_scored(r["label"], r.get("roots", r["fired"]), r.get("valid", True))
            for r in rows]


def _cell(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def markdown(results: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The tables: per mode precision / recall of the root causes and their confusion
    table, the same of every fired finding, per-run lines."""
    split = results.get("split", "dev")
    lines = [f"# Diagnosis benchmark: {split} split", "",
             f"{results['runs']} runs ((variant, env) cells of {results['seeds']} seeds), "
             f"{results['healthy_runs']} of them healthy. False alarm rate (healthy runs "
             f"with any finding): **{results['false_alarm_rate']:.1%}**. Wall time: "
             f"training {results['train_seconds']:.0f} s, diagnosis "
             f"{results['diagnose_seconds']:.1f} s.", "",
             f"Injection check (independent of the diagnosis): an injected run is valid "
             f"when its final training return is at least "
             f"{scoring.INJECTION_DEFICIT:.0%} of the learning range below the worst "
             "healthy run on its environment (or not finite).", ""]
    if results.get("sealed_commit"):
        sealed = "holdout" if split == "holdout" else "test"
        before = ("before any rule change in answer to the test split's scores"
                  if sealed == "holdout" else "before any root-cause rule")
        lines += [f"Configs and labels of the {sealed} split fixed in commit "
                  f"`{results['sealed_commit']}`, {before}.", ""]
    lines += ["## Root causes (the diagnosis): a root other than the label is a false "
              "positive", ""]
    lines += mode_table(results["modes"], also=False)
    lines += confusion_lines(results["confusion"], "root causes")
    everything = results.get("all_findings")
    if everything:
        lines += ["", "## Every fired finding (a mode in the label's `also` is no false "
                  f"positive); false alarm rate {everything['false_alarm_rate']:.1%}", ""]
        lines += mode_table(everything["modes"], also=True)
        lines += confusion_lines(everything["confusion"], "any finding")
    lines += ["", "## Runs", "",
              "Roots: the diagnosis; consequences: a finding explained by another "
              "(`consequence <- cause`). Final: the final training return (unscaled); "
              "check: the injection check's deficit (fraction of the learning range below "
              "the worst healthy run).", ""]
    lines += [_run_line(r) for r in rows]
    if "external" in results:
        lines += external.markdown(results["external"])
    return "\n".join(lines) + "\n"


def mode_table(modes: dict[str, dict[str, Any]], also: bool) -> list[str]:
    """Per mode: labelled runs, recall (all and valid injections), precision, TP, FP."""
    extra = " fired where declared also |" if also else ""
    lines = ["| mode | labelled | recall | valid injections | recall (valid) | precision | TP "
             "| FP |" + extra, "|---|---:|---:|---:|---:|---:|---:|---:|" +
             ("---:|" if also else "")]
    for mode, c in modes.items():
        cells = (f"| {mode} | {c['labelled']} | {_cell(c['recall'])} | "
                 f"{c['valid_injections']} | {_cell(c['recall_valid'])} | "
                 f"{_cell(c['precision'])} | {c['true_positives']} | {c['false_positives']} |")
        lines.append(cells + (f" {c['fired_where_also']} |" if also else ""))
    return lines


def confusion_lines(confusion: dict[str, dict[str, int]], what: str) -> list[str]:
    columns = list(next(iter(confusion.values())))
    lines = ["", f"Confusion: runs per label (rows) with each mode among their {what} "
             "(columns)", "", "| label | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for label, counts in confusion.items():
        lines.append(f"| {label} | " + " | ".join(str(counts.get(c, 0)) for c in columns)
                     + " |")
    return lines


def _run_line(r: dict[str, Any]) -> str:
    also = f" (also: {', '.join(r['also'])})" if r["also"] else ""
    roots = r.get("roots", r["fired"])
    named = ", ".join(roots) or "nothing"
    mark = "" if r["label"] in roots or (r["label"] == "healthy" and not roots) \
        else " **(missed)**" if r["label"] != "healthy" else " **(false alarm)**"
    wrong = [m for m in roots if m != r["label"]]
    mark += f" **(wrong root: {', '.join(wrong)})**" if wrong and r["label"] != "healthy" \
        else ""
    then = "; ".join(f"{m} <- {c}" for m, c in r.get("consequences", {}).items())
    then = f"; consequences: {then}" if then else ""
    check = ""
    if r.get("deficit") is not None or r["label"] != "healthy":
        deficit = r.get("deficit")
        shown = "-" if deficit is None or math.isnan(deficit) else f"{deficit:.2f}"
        check = f"; check: deficit {shown} " + ("(valid)" if r.get("valid", True)
                                                 else "**(invalid injection)**")
    final = r.get("final_return")
    final_text = "" if final is None else f"; final {short_number(final)}"
    return (f"- {r['variant']} / {r['env']}: label {r['label']}{also}; roots: "
            f"{named}{mark}{then}{final_text}{check}")


TRAINED = "train_seconds.json"  # OUT/: a --train-only run's wall time, for the scoring


def previous_train_seconds(stem: str, out: Path | None = None) -> float:
    """The training wall time recorded by the run that trained (re-diagnosing keeps it):
    the results file's, else that of a --train-only run into `out`."""
    for path in (HERE / f"{stem}.json", *((out / TRAINED,) if out else ())):
        if path.exists():
            return json.loads(path.read_text()).get("train_seconds", 0.0)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="dev")
    parser.add_argument("--out", default=None)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--stem", default=None)
    parser.add_argument("--external-only", action="store_true")
    parser.add_argument("--train-only", action="store_true",
                        help="train the split's runs and stop: nothing diagnosed or scored "
                        "(a sealed split trained ahead of its one scoring)")
    args = parser.parse_args()
    split = SPLITS[args.split]
    stem = args.stem or split.stem
    if args.external_only:
        return external_only(stem)
    out = Path(args.out or split.out)
    labels = scoring.read_labels(split.labels)
    scoring.check_labels(labels, modes())
    if args.train_only:
        train_s = train(out, split)
        (out / TRAINED).write_text(json.dumps({"train_seconds": round(train_s, 1)}) + "\n")
        return print(f"trained into {out} in {train_s:.0f} s; not diagnosed or scored")
    train_s = previous_train_seconds(stem, out) if args.skip_train else train(out, split)
    start = time.perf_counter()
    rows = diagnose_runs(out, labels, split)
    diagnose_s = time.perf_counter() - start
    results = benchmark_results(rows, split, args.split)
    results |= {"train_seconds": round(train_s, 1), "diagnose_seconds": round(diagnose_s, 1)}
    (HERE / f"{stem}.json").write_text(json.dumps(jsonable(results), indent=1) + "\n")
    (HERE / f"{stem}.md").write_text(markdown(results, rows))
    print(markdown(results, rows))
    print(f"wall time: training {train_s:.0f} s, diagnosis {diagnose_s:.1f} s")


# The commit that fixed each sealed split's configs and labels (named in its results;
# the dev split's results name the test split's).
SEALED = {"test": "48727b359438d05a601dba4bbfe6a401d8a5bacf",
          "holdout": "c31e59d997606dcd11d431b4fc5da8908e25f5ed"}


def benchmark_results(rows: list[dict[str, Any]], split: Split, name: str) -> dict[str, Any]:
    """The root-cause scores, the scores of every fired finding, the per-run rows (and
    for the dev split the external-logs section)."""
    results = scoring.score(root_rows(rows), modes())
    results |= {"split": name, "all_findings": scoring.score(scored_rows(rows), modes()),
                "seeds": experiment.load(split.folder / f"{split.files[0]}.toml").seeds,
                "per_run": rows, "sealed_commit": SEALED.get(name, SEALED["test"])}
    if name == "dev":
        results["external"] = external.run(modes())
    return results


def external_only(stem: str) -> None:
    """Re-score the external section in the written results; the rest of both files is
    left as written (results.md is not re-rendered from the JSON, whose NaNs are null)."""
    path = HERE / f"{stem}.json"
    results = json.loads(path.read_text())
    results["external"] = external.run(modes())
    path.write_text(json.dumps(jsonable(results), indent=1) + "\n")
    text = (HERE / f"{stem}.md").read_text().split(external.HEADING)[0].rstrip("\n")
    section = "\n".join(external.markdown(results["external"]))
    (HERE / f"{stem}.md").write_text(text + "\n" + section + "\n")
    print(section)


if __name__ == "__main__":
    main()
