"""How long the reports of a 1,000-variant sweep take: a 10 x 10 x 10 `[sweep]`
of traced knobs (one compiled program) on CartPole-v1, 2 seeds, a few tiny
updates, then `summary`, `plot` and `diagnose` of the run directory, each timed
(median of --repeats runs, alternating nothing: one code base per call).

    python experiments/large_plan/benchmark.py --out /tmp/large-plan [--repeats 3]

Prints one JSON object: the training wall time, the first progress line's
length, and the seconds of each report.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

EXPERIMENT = """
name = "large-plan"
envs = ["CartPole-v1"]
seeds = 2
total_timesteps = 256
chunk_updates = 4

[config]
num_envs = 4
num_steps = 16
update_epochs = 1
num_minibatches = 1

[sweep]
lr = [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4, 9e-4, 1e-3]
vf_coef = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
ent_coef = [0.0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009]
"""


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from jppo.runs.devices import use_host_cores

    use_host_cores()
    from jppo.analysis import diagnose, plots, stats
    from jppo.runs import experiment, runner
    from jppo.runs.progress import ProgressView

    args.out.mkdir(parents=True, exist_ok=True)
    file = args.out / "large_plan.toml"
    file.write_text(EXPERIMENT)
    run = args.out / "run"
    lines: list[str] = []
    err = io.StringIO()
    stderr, sys.stderr = sys.stderr, err
    try:
        train = timed(lambda: runner.run_experiment(
            experiment.load(file), run, resume=(run / "run.json").exists(),
            progress=ProgressView("lines", write=lines.append)))
    finally:
        sys.stderr = stderr
    reports = {"summary": lambda: stats.summarize_run(run, reps=2000),
               "plot": lambda: plots.write_plots(run),
               "diagnose": lambda: diagnose.diagnose_run(run)}
    seconds = {name: [] for name in reports}
    for _ in range(args.repeats):
        for name, report in reports.items():
            seconds[name].append(timed(report))
    print(json.dumps({
        "variants": 1000, "train_seconds": round(train, 1),
        "longest_progress_line": max((len(line) for line in lines), default=0),
        "stderr_lines": err.getvalue().strip().splitlines()[:3],
        **{f"{name}_seconds": round(statistics.median(values), 2)
           for name, values in seconds.items()},
        "repeats": args.repeats}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
