"""Every standard benchmark row at its publisher's config, side by side with the
published return: runs the experiment files in this folder and writes
results.json, results.md and (where it has the markers) the README's table.

    python -m experiments.published.run                  # the CPU rows (make published)
    python -m experiments.published.run --only breakout --seeds 8 --steps 2e6
    python -m experiments.published.run --only breakout --resume   # continue a stopped run
    python -m experiments.published.run --refresh        # rebuild the tables, train nothing
    python -m experiments.published.run --merge gpu-out/published_gpu.json   # a GPU's rows

Each row trains into runs/published/ROW (checkpointed every chunk, so a stopped
row continues with --resume or `jppo resume runs/published/ROW`). `--steps` below
the published budget is recorded as such; the table marks the row "reduced
budget". On a CPU the default rows are the classic-control ones; the MinAtar
rows at 10M steps are for a GPU (experiments/gpu/run_published.sh).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jax

from experiments.published import table
from jppo.runs import experiment, faults, results
from jppo.runs.runner import run_experiment

REPO = Path(__file__).resolve().parents[2]
WALL_FILE = "published_wall.json"  # seconds of training over every session of the row


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(table.ROWS), metavar="ROW",
                        help=f"rows to run, of {list(table.ROWS)}; default: the CPU rows on "
                             "a CPU, every row on an accelerator")
    parser.add_argument("--seeds", type=int, help="seeds per row (default: the file's, 8)")
    parser.add_argument("--steps", type=float, help="env steps per seed (default: published)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a config field of every row (a test or a probe)")
    parser.add_argument("--resume", action="store_true", help="continue runs/published/ROW")
    parser.add_argument("--fresh", action="store_true",
                        help="discard an existing runs/published/ROW and start again")
    parser.add_argument("--refresh", action="store_true",
                        help="rebuild results from the existing run directories, no training")
    parser.add_argument("--merge", type=Path, metavar="JSON",
                        help="add the records of another machine's results file (a GPU's), "
                             "train nothing")
    parser.add_argument("--out-root", type=Path, default=REPO / "runs" / "published")
    parser.add_argument("--json", type=Path, default=table.RESULTS_JSON)
    parser.add_argument("--readme", type=Path, default=REPO / "README.md",
                        help="file whose published-results markers get the table")
    args = parser.parse_args(argv)
    if args.resume and args.fresh:
        parser.error("--resume and --fresh exclude each other")
    return args


def default_rows() -> list[str]:
    on_accelerator = jax.default_backend() != "cpu"
    return [name for name, row in table.ROWS.items() if on_accelerator or row.machine == "cpu"]


def load_row(row: table.Row, args: argparse.Namespace) -> experiment.Experiment:
    """The row's experiment file with the command line's seeds, steps and --set."""
    steps = int(args.steps) if args.steps is not None else None
    return experiment.load(row.file, args.set, seeds=args.seeds, total_timesteps=steps)


def train_row(exp: experiment.Experiment, out: Path, args: argparse.Namespace) -> None:
    """Train (or continue) the row into `out`, adding this session's wall time to
    the row's tally; an existing run needs --resume or --fresh."""
    has_run = (out / results.RUN_INFO).is_file()
    if has_run and args.fresh:
        shutil.rmtree(out)
        has_run = False
    if has_run and not args.resume:
        raise ValueError(f"{out} already holds a run: pass --resume to continue it or --fresh "
                         "to discard it")
    start = time.perf_counter()
    try:
        run_experiment(exp, out, resume=has_run, progress="lines")
    finally:
        add_wall(out, time.perf_counter() - start)


def add_wall(out: Path, seconds: float) -> None:
    """Add `seconds` to the row's wall-time tally and note the machine it ran on."""
    if not out.is_dir():
        return
    tally = {"wall_s": read_tally(out)["wall_s"] + seconds, "machine": machine()}
    results.atomic_write_text(out / WALL_FILE, json.dumps(tally) + "\n")


def read_tally(out: Path) -> dict:
    path = out / WALL_FILE
    return json.loads(path.read_text()) if path.exists() else {"wall_s": 0.0, "machine": "?"}


def machine() -> str:
    """Where a row was measured: the device kind, the backend and jax's version."""
    device = jax.devices()[0]
    kind = platform.machine() if device.platform == "cpu" else device.device_kind
    return f"{kind} {device.platform.upper()}, jax {jax.__version__}"


def summarize_row(row: table.Row, out: Path) -> dict:
    """The row's results record from what its run directory holds (finished or not)."""
    info = results.read_run_info(out)
    frame = results.read_metrics(out)
    variant, env = results.groups(frame)[0]
    metrics = results.metric_arrays(frame, variant, env)
    config = info["variants"][variant]["config"]
    tally = read_tally(out)
    record = table.row_record(row, metrics, steps=int(metrics["env_steps"][0, -1]),
                              wall_s=tally["wall_s"], machine=tally["machine"],
                              config_steps=int(config["total_timesteps"]))
    evidence = table.publisher_evidence(row, table.read_publisher_logs(), table.row_config(row))
    return {**record, "publisher": evidence} if evidence else record


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.only or default_rows()
    records = table.read_results(args.json)
    if args.merge:
        records.update(table.read_results(args.merge))
        table.write_results(records, args.json)
        names = []
    for name in names:
        row = table.ROWS[name]
        out = args.out_root / name
        try:
            if not args.refresh:
                exp = load_row(row, args)
                print(f"== {row.env}: {exp.seeds} seeds x {exp.total_timesteps:,} steps",
                      flush=True)
                train_row(exp, out, args)
            records[name] = summarize_row(row, out)
        except (ValueError, FileNotFoundError, faults.RunError, faults.RunInterrupted) as error:
            print(f"published: {name}: {error}", file=sys.stderr)
            return 1
        table.write_results(records, args.json)
    write_tables(records, args)
    return 0


PUBLISHER_RUNS = ("The publisher's own runs, from the training logs inside its committed "
                  "checkpoints (experiments/published/publisher_logs.json):")


def write_tables(records: dict, args: argparse.Namespace) -> None:
    text = table.markdown(records)
    logs = table.read_publisher_logs()
    own_runs = table.publisher_markdown(records, logs) if logs else ""
    results.atomic_write_text(args.json.with_suffix(".md"),
                              text + (f"\n{PUBLISHER_RUNS}\n\n{own_runs}" if own_runs else ""))
    print(text)
    if table.splice_into(args.readme, text):
        print(f"published: table written into {args.readme}")


if __name__ == "__main__":
    sys.exit(main())
