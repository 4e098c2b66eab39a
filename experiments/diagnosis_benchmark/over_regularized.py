"""The numbers behind the over-regularized-policy question: does a large entropy bonus
keep the sampled return far below the greedy one, while the diagnosis stays silent?

    python -m experiments.diagnosis_benchmark.over_regularized [--out DIR]

Reads the probe run (over_regularized.toml, trained with the development split), and
per (variant, env) prints and writes over_regularized.md: the final greedy
(evaluation) and sampled (training) returns, their gap as a fraction of the learning
range (first return to the best greedy return on the env), the entropy against its
first value, and the root causes the diagnosis names.
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from jppo.analysis import diagnose
from jppo.analysis.diagnose.engine import short_number
from jppo.runs import experiment, results

HERE = Path(__file__).parent
FINAL_FRACTION = 0.1  # of the updates: the window of the final returns


def final_level(values: np.ndarray) -> np.ndarray:
    """Per seed, the mean over the last FINAL_FRACTION of the updates (evaluations are
    sparse: their latest values carried forward first)."""
    filled = np.asarray(values, np.float64).copy()
    for row in filled:
        for i in range(1, len(row)):
            if not np.isfinite(row[i]):
                row[i] = row[i - 1]
    last = max(1, round(FINAL_FRACTION * filled.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(filled[:, -last:], axis=1)


def gap_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Per (variant, env): greedy and sampled final returns, the gap over the learning
    range, entropy / initial at the end, and the diagnosis's root causes."""
    frame, info = results.read_metrics(run_dir), results.read_run_info(run_dir)
    findings = diagnose.diagnose_frame(frame, info)
    roots: dict[tuple[str, str], list[str]] = {}
    for f in diagnose.root_findings(findings):
        roots.setdefault((f.variant, f.env), []).append(f.rule)
    rows = []
    for variant, env in results.groups(frame):
        arrays = results.metric_arrays(frame, variant, env)
        greedy, sampled = final_level(arrays["eval_return"]), final_level(
            arrays["episode_return"])
        first = np.asarray(arrays["episode_return"], np.float64)
        start = float(np.nanmedian([row[np.isfinite(row)][0] for row in first]))
        entropy = np.asarray(arrays["entropy"], np.float64)
        rows.append({"variant": variant, "env": env, "greedy": float(np.median(greedy)),
                     "sampled": float(np.median(sampled)), "start": start,
                     "entropy_share": float(np.median(final_level(entropy) / entropy[:, 0])),
                     "roots": roots.get((variant, env), [])})
    for row in rows:
        best = max(r["greedy"] for r in rows if r["env"] == row["env"])
        span = best - row["start"]
        row["gap"] = (row["greedy"] - row["sampled"]) / span if span > 0 else math.nan
    return rows


def markdown(rows: list[dict[str, Any]], source: str = "") -> str:
    lines = ["# Over-regularized policy: sampled vs greedy return", "",
             *([f"Run: `{source}`.", ""] if source else []),
             "Gap: (greedy - sampled final return) / learning range (first return to the "
             "best greedy return on the env). Entropy: final / first update.", "",
             "| variant | env | greedy | sampled | gap | entropy | root causes |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['env']} | {short_number(r['greedy'])} | "
                     f"{short_number(r['sampled'])} | {r['gap']:.2f} | "
                     f"{r['entropy_share']:.2f} | {', '.join(r['roots']) or 'nothing'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/diagnosis-benchmark")
    parser.add_argument("--run", default=None, help="another run directory (default: the "
                        "probe's under --out)")
    args = parser.parse_args()
    exp = experiment.load(HERE / "over_regularized.toml")
    run_dir = Path(args.run) if args.run else Path(args.out) / exp.name
    text = markdown(gap_rows(run_dir), str(run_dir))
    (HERE / "over_regularized.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
