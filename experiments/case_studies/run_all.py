"""Run every case study and put its outputs next to its README.

    python -m experiments.case_studies.run_all                    # every case (make case-studies)
    python -m experiments.case_studies.run_all --only kl_early_stop value_dominance
    python -m experiments.case_studies.run_all --refresh          # re-render, no training

Each `experiments/case_studies/NAME.toml` runs with `jppo compare` into `OUT/NAME`
(default `runs/case-studies/NAME`; a run already there is replaced, or continued
with `--resume`), then its summary.md, summary.csv, diagnosis.md and plots/*.png
are copied into `experiments/case_studies/NAME/` (README.md there is never
touched). `--refresh` trains nothing: it rewrites the summary, diagnosis and plots
of the existing run directories with the current code, then copies them; seconds,
not minutes, after a change to the diagnosis rules or the plots.

Each case trains in its own `jppo` process, so one that crashes leaves the
others running, and its outputs are copied as soon as it finishes, so a crash
or Ctrl-C later keeps every finished case's outputs. Prints each case's wall
time and the total; exits 1 if a case failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

CASES_DIR = Path(__file__).resolve().parent
ROOT = CASES_DIR.parents[1]  # the repository: `jppo compare` runs here, so env modules import
DEFAULT_OUT = Path("runs/case-studies")
OUTPUT_FILES = ("summary.md", "summary.csv", "diagnosis.md")
PLOTS = "plots"
STALE_PATTERNS = ("learning_curves*.png", "diagnostics_*.png")  # replaced by each copy
INTERRUPT_GRACE_SECONDS = 60  # an interrupted case's time to write its checkpoint


class CaseFailed(Exception):
    """One case could not be run or rendered; the others go on."""


def case_files(cases_dir: Path = CASES_DIR) -> dict[str, Path]:
    """NAME -> NAME.toml for every case study, in name order."""
    return {path.stem: path for path in sorted(cases_dir.glob("*.toml"))}


def select(cases: dict[str, Path], only: Sequence[str]) -> dict[str, Path]:
    """The cases named in `only` (all when empty); an unknown name is a one-line error."""
    unknown = [name for name in only if name not in cases]
    if unknown:
        raise ValueError(f"--only {unknown[0]!r}: no experiments/case_studies/{unknown[0]}.toml;"
                         f" allowed: {', '.join(cases) or 'none (no case study exists yet)'}")
    return {name: path for name, path in cases.items() if not only or name in only}


def train(case_file: Path, run_dir: Path, *, resume: bool) -> None:
    """`jppo compare CASE --out RUN_DIR` in its own process (fresh unless `resume`)."""
    command = [sys.executable, "-m", "jppo.cli", "compare", str(case_file),
               "--out", str(run_dir)]
    if resume and (run_dir / "run.json").exists():
        command.append("--resume")
    elif run_dir.exists():
        shutil.rmtree(run_dir)
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        code = process.wait()
    except KeyboardInterrupt:  # the child got the same Ctrl-C: let it save a checkpoint
        try:
            process.wait(timeout=INTERRUPT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
        raise
    if code == 130:  # interrupted on its own (a signal to it alone)
        raise KeyboardInterrupt
    if code != 0:
        raise CaseFailed(f"jppo compare exited with status {code}")


def render(run_dir: Path, *, reps: int = 2000) -> None:
    """Rewrite a run directory's summary (`reps` bootstrap resamples, as `jppo
    summary`), plots and diagnosis from its metrics."""
    from jppo.analysis import diagnose, plots, stats

    if not (run_dir / "run.json").is_file():
        raise CaseFailed(f"{run_dir} holds no finished run (run.json missing); run the case "
                         "without --refresh first")
    stats.summarize_run(run_dir, reps=reps)
    plots.write_plots(run_dir)
    diagnose.diagnose_run(run_dir)


def copy_outputs(run_dir: Path, dest: Path) -> list[Path]:
    """Copy the run's summary, diagnosis and plots into `dest`, each file replaced
    atomically; PNGs of an earlier run that this one did not write are removed."""
    sources = [run_dir / name for name in OUTPUT_FILES]
    sources += sorted((run_dir / PLOTS).glob("*.png"))
    missing = [str(path) for path in sources[: len(OUTPUT_FILES)] if not path.is_file()]
    if missing or len(sources) == len(OUTPUT_FILES):
        raise CaseFailed(f"{run_dir} lacks {', '.join(missing) or 'plots/*.png'}: the run "
                         "did not finish")
    dest.mkdir(parents=True, exist_ok=True)
    written = {source.name for source in sources}
    for pattern in STALE_PATTERNS:
        for old in dest.glob(pattern):
            if old.name not in written:
                old.unlink()
    return [atomic_copy(source, dest / source.name) for source in sources]


def atomic_copy(source: Path, target: Path) -> Path:
    """Copy with the run directory's atomic write: an interrupted copy never leaves
    a half-written file, and the copy gets the results' file mode."""
    from jppo.runs import results

    results.atomic_write_bytes(target, source.read_bytes())
    return target


def run_case(name: str, case_file: Path, out: Path, *, refresh: bool, resume: bool,
             cases_dir: Path = CASES_DIR, reps: int = 2000) -> float:
    """Train (or with `refresh`, re-render) one case and copy its outputs; seconds taken."""
    start = time.perf_counter()
    run_dir = out / name
    if refresh:
        render(run_dir, reps=reps)
    else:
        train(case_file, run_dir, resume=resume)
    copied = copy_outputs(run_dir, cases_dir / name)
    seconds = time.perf_counter() - start
    action = "re-rendered" if refresh else "ran"
    print(f"case-studies: {name}: {action} in {seconds:.1f} s; copied {len(copied)} files "
          f"to {cases_dir / name}/", flush=True)
    return seconds


def run_all(cases: dict[str, Path], out: Path, *, refresh: bool = False, resume: bool = False,
            cases_dir: Path = CASES_DIR, reps: int = 2000) -> int:
    """Every case in turn; a failed case is reported and skipped. Exit status.
    `reps`: bootstrap resamples of a refreshed summary."""
    start, failed, done = time.perf_counter(), [], []
    out = out.absolute()  # `jppo compare` runs in the repository root
    for name, case_file in cases.items():
        try:
            run_case(name, case_file, out, refresh=refresh, resume=resume, cases_dir=cases_dir,
                     reps=reps)
            done.append(name)
        except (CaseFailed, ValueError, OSError) as error:
            print(f"case-studies: {name}: failed: {error}", file=sys.stderr, flush=True)
            failed.append(name)
        except KeyboardInterrupt:
            print(f"case-studies: interrupted during {name}; finished and copied: "
                  f"{', '.join(done) or 'none'}", file=sys.stderr)
            return 130
    total = time.perf_counter() - start
    print(f"case-studies: total {total:.1f} s for {len(done)} case(s)"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.case_studies.run_all",
        description="Run every experiments/case_studies/*.toml with `jppo compare` and copy "
                    "its summary, diagnosis and plots into experiments/case_studies/NAME/.")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME",
                        help="run only these cases (NAME of NAME.toml)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder of the run directories, one per case (default: %(default)s)")
    parser.add_argument("--refresh", action="store_true",
                        help="train nothing: rewrite summary, diagnosis and plots of the runs "
                             "in --out with the current code, and copy them")
    parser.add_argument("--resume", action="store_true",
                        help="continue a case's interrupted run in --out instead of replacing it")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.refresh and args.resume:
        print("case-studies: error: --refresh trains nothing; --resume is for a training run",
              file=sys.stderr)
        return 2
    try:
        cases = select(case_files(), args.only)
    except ValueError as error:
        print(f"case-studies: error: {error}", file=sys.stderr)
        return 2
    if not cases:
        print("case-studies: no experiments/case_studies/*.toml to run", file=sys.stderr)
        return 2
    return run_all(cases, args.out, refresh=args.refresh, resume=args.resume)


if __name__ == "__main__":
    raise SystemExit(main())
