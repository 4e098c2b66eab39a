"""The `jppo` command: train, compare, resume, plot, diagnose, fix, summary, eval, export,
envs, config, bench (`jppo --version` prints the version).

Every command is a typed function; `jppo COMMAND --help` lists its flags.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from jppo.bench.options import BenchOptions
from jppo.core import knobs
from jppo.core.config import PPOConfig

Repeated = Annotated[tuple[str, ...], tyro.conf.UseAppendAction]


def _set_help(what: str) -> str:
    """`--set` help listing the knobs, traced ones first (read from their declarations)."""
    split = knobs.names_by_kind(PPOConfig)
    return (f"{what}; traced (variants differing only in these share a compile): "
            f"{', '.join(split['traced'])}; static: {', '.join(split['static'])}. "
            "`jppo config` describes each.")


SetField = Annotated[Repeated, tyro.conf.arg(help=_set_help(
    "override a PPOConfig field, FIELD=VALUE"))]
SetVariantField = Annotated[Repeated, tyro.conf.arg(help=_set_help(
    "FIELD=VALUE for every variant, VARIANT.FIELD=VALUE for one, or sweep.FIELD=[...] for an "
    "axis of the file's [sweep] grid"))]
Progress = Literal["auto", "bar", "lines", "off"]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a run executes and where its results go (shared by train and compare)."""

    out: str | None = None
    """run directory; default: a new runs/<experiment name>-<time>."""
    resume: bool = False
    """continue the run in --out from its last checkpoints."""
    devices: int | None = None
    """shard the seeds over this many devices; default: as many as help (CPU: one per core)."""
    chunk_updates: int | None = None
    """updates per jitted chunk between progress updates."""
    checkpoint_every: int | None = None
    """chunks between checkpoints."""
    stop_when_diverged: bool = False
    """stop a program once all its runs diverged (a NaN/inf loss, gradient or parameter);
    also the experiment file's `stop_when_diverged = true`."""
    progress: Progress = "auto"
    """live view: a bar (terminal, notebook), plain lines (pipes), or off."""
    tensorboard: bool = False
    """stream each variant's median and IQR across seeds to OUT/tensorboard/ after every
    chunk (`tensorboard --logdir OUT/tensorboard`); also `tensorboard = true` in the file."""
    imports: tuple[str, ...] = ()
    """modules to import first, e.g. ones that register your own variants (added to the
    experiment file's `imports`)."""
    coordinator: str | None = None
    """several processes (hosts) run the experiment together: HOST:PORT that process 0
    listens on, the same in every process (which also all need the same --out)."""
    num_processes: int = 1
    """with --coordinator: how many processes run the experiment."""
    process_id: int = 0
    """with --coordinator: this process's index, 0..num_processes-1 (0 writes the results)."""
    join_timeout: float = 300.0
    """with --coordinator: seconds to wait for the coordinator and every process to join."""


Options = Annotated[RunOptions, tyro.conf.OmitArgPrefixes]


def train(
    experiment: Annotated[str | None, tyro.conf.Positional] = None,
    env: str | None = None,
    variant: str | None = None,
    seeds: int | None = None,
    total_timesteps: float | None = None,
    set: SetField = (),
    env_param: Repeated = (),
    reward_scale: float | None = None,
    first_seed: int | None = None,
    run: Options = RunOptions(),
) -> int:
    """Train one config on many seeds at once, then print the summary, write plots
    and the diagnosis.

    Args:
        experiment: TOML experiment file; default: the embedded CartPole-v1 experiment.
        env: environment: a gymnax id (see `jppo envs`) or an import path
            package.module:factory (your own env); default: the experiment's first.
        variant: which variant of the experiment; default: its baseline.
        seeds: seeds run in parallel.
        total_timesteps: env steps per seed.
        env_param: NAME=VALUE: override an EnvParams field; for an import path, a
            keyword its factory accepts is passed to the factory instead.
        reward_scale: multiply rewards (a return-scale stress test).
        first_seed: seed of the first run.
    """
    _join_processes(run)  # before the import below: it starts JAX
    from jppo.runs import experiment as experiments

    exp = _load(experiment, set, run, seeds=seeds,
                total_timesteps=_as_int(total_timesteps), reward_scale=reward_scale,
                first_seed=first_seed)
    env_names = (env,) if env is not None else exp.envs[:1]
    params = ({env_names[0]: experiments.parse_assignments(env_param, "--env-param")}
              if env_param else None)
    exp = exp.select(variants=(variant or exp.baseline_variant,), env_names=env_names,
                     env_params=params)
    return _execute(exp, run, "train")


def compare(
    experiment: Annotated[str, tyro.conf.Positional],
    variants: tuple[str, ...] = (),
    envs: tuple[str, ...] = (),
    seeds: int | None = None,
    total_timesteps: float | None = None,
    set: SetVariantField = (),
    run: Options = RunOptions(),
) -> int:
    """Run variants x environments x seeds of an experiment file, then print the
    statistics table, write plots and the diagnosis.

    Args:
        experiment: TOML experiment file.
        variants: run only these variants; default: all.
        envs: run only these environments; default: the file's.
        seeds: seeds per (variant, environment).
        total_timesteps: env steps per seed.
    """
    _join_processes(run)
    exp = _load(experiment, set, run, seeds=seeds, total_timesteps=_as_int(total_timesteps))
    exp = exp.select(variants=variants, env_names=envs)
    return _execute(exp, run, "compare")


def resume(
    run: Annotated[str, tyro.conf.Positional],
    devices: int | None = None,
    progress: Progress = "auto",
    coordinator: str | None = None,
    num_processes: int = 1,
    process_id: int = 0,
    join_timeout: float = 300.0,
) -> int:
    """Continue a stopped run exactly as its run.json recorded it (experiment,
    overrides, seeds, devices), then print the summary, write plots and the diagnosis.

    Args:
        run: run directory.
        devices: shard the seeds over this many devices; default: as recorded.
        progress: live view: a bar (terminal, notebook), plain lines (pipes), or off.
        coordinator: several processes resume together: HOST:PORT of process 0.
        num_processes: with --coordinator: how many processes.
        process_id: with --coordinator: this process's index.
        join_timeout: with --coordinator: seconds to wait for every process to join.
    """
    joined = RunOptions(out=run, coordinator=coordinator, num_processes=num_processes,
                        process_id=process_id, join_timeout=join_timeout)
    _join_processes(joined)  # before the import below: it starts JAX
    from jppo.runs import rundir

    exp, recorded = rundir.recorded_experiment(run)
    options = dataclasses.replace(joined, resume=True, progress=progress,
                                  devices=recorded if devices is None else devices)
    return _execute(exp, options, "resume")


def plot(run: Annotated[str, tyro.conf.Positional]) -> int:
    """Write the learning curves and diagnostics panels of a run directory.

    Args:
        run: run directory.
    """
    from jppo.analysis import plots

    for path in plots.write_plots(Path(run)):
        print(f"wrote {path}")
    return 0


def diagnose(paths: Annotated[tuple[str, ...], tyro.conf.Positional],
             source: str = "auto",
             map: Repeated = (),
             map_file: str | None = None, group: str | None = None,
             baseline: str | None = None, report: str = "diagnosis.md") -> int:
    """Name the failure modes of a jppo run (writes RUN/diagnosis.md) or of other
    trainers' logs: SB3 TensorBoard folders or progress.csv, CleanRL TensorBoard folders,
    Brax progress metrics (JSON lines / CSV), W&B history CSV, plain CSV / Parquet.

    Args:
        paths: a jppo run directory, or log files / folders (searched recursively); runs
            in one folder are the seeds of one cell, each folder a configuration.
        source: the logs' trainer: auto (detected from the tags / columns), sb3, cleanrl,
            brax, csv or jppo.
        map: OURS=THEIRS: read their column THEIRS as jppo's metric OURS (repeatable).
        map_file: a TOML with [map] (OURS = "THEIRS"), [scale] (OURS = factor),
            [config] (PPOConfig fields; [config.GROUP] for one group's runs) and
            [source] (env, action_dim, Brax's entropy_cost, vf_loss_coefficient) tables.
        group: a regex; its first group (or match) in a run's path names its cell.
        baseline: the cell the summary's P(> baseline) compares the others with.
        report: where the Markdown report of logs goes (a jppo run: RUN/diagnosis.md).
    """
    from jppo.analysis import diagnose as diagnosis
    from jppo.analysis.logs import diagnose_logs, discover
    from jppo.runs import results

    if len(paths) == 1 and source in ("auto", "jppo") and (Path(paths[0]) / "run.json").exists():
        run = Path(paths[0])
        findings = diagnosis.diagnose_run(run)
        print(diagnosis.format_terminal(findings, diagnosis.incomplete_notes(run)))
        print(f"report: {run / 'diagnosis.md'}")
        return 0
    discover.check_source(source)
    options = discover.read_options(map, map_file)
    found = diagnose_logs(paths, source, options, group, baseline)
    print(found.terminal)
    results.atomic_write_text(Path(report), found.markdown)
    print(f"report: {report}")
    return 0


def fix(paths: Annotated[tuple[str, ...], tyro.conf.Positional],
        seeds: int = 16, budget: float | None = None, dry_run: bool = False,
        variant: str | None = None, top: int | None = None, resume: bool = False,
        source: str = "auto", progress: Progress = "auto") -> int:
    """Turn a run's diagnosis into candidate config changes (RUN/fix/experiment.toml),
    run them next to the original config and recommend the smallest change that
    removes the finding and improves the return with confidence. For SB3 / CleanRL
    logs: print the plan in that trainer's parameter names, run nothing.

    Args:
        paths: a jppo run directory, or SB3 / CleanRL log files / folders.
        seeds: seeds per candidate (and for the original config).
        budget: cap on env steps per seed; default: the run's total_timesteps.
        dry_run: write the plan only.
        variant: the run's variant to fix; default: its baseline.
        top: run only the first N kept candidates (root causes first).
        resume: run RUN/fix/experiment.toml as it stands (e.g. edited) and continue
            RUN/fix/run from its checkpoints (after `jppo resume RUN/fix/run` too).
        source: the logs' trainer: auto, sb3 or cleanrl (a jppo run: ignored).
        progress: live view: a bar (terminal, notebook), plain lines (pipes), or off.
    """
    from jppo.analysis import fix as fixing
    from jppo.analysis.fix import outcome, trainers

    if not (len(paths) == 1 and (Path(paths[0]) / "run.json").exists()) and paths and \
            all(Path(p).exists() for p in paths):
        print(trainers.format_logs_plan(trainers.plan_logs(paths, source)))
        return 0
    if len(paths) != 1:
        raise ValueError(f"paths={list(paths)!r} is invalid: allowed is one jppo run "
                         "directory, or existing SB3 / CleanRL log files / folders")
    plan = fixing.prepare(paths[0], seeds=seeds, budget=_as_int(budget, "budget"),
                          variant=variant, top=top, resume=resume)
    if plan.path is None or dry_run:
        print(outcome.format_outcome(outcome.plan_table(plan)))
        return 0
    what = f"{plan.path} as it stands" if resume else \
        f"{len(plan.kept)} candidate(s) and the original x {plan.seeds} seeds x " \
        f"{plan.total_timesteps:,} steps (plan: {plan.path})"
    print(f"jppo fix: {what} -> {plan.run_out}", flush=True)
    fixing.run_candidates(plan, resume=resume, progress=progress)
    table = fixing.report(plan)
    print(outcome.format_outcome(table))
    print(f"\nreport: {table.attrs['report']}")
    return 0


def summary(run: Annotated[str, tyro.conf.Positional], reps: int = 2000) -> int:
    """Print (and write summary.md/.csv) the final-return statistics of a run.

    Args:
        run: run directory.
        reps: bootstrap resamples.
    """
    from jppo.analysis import stats

    print(stats.format_summary(stats.summarize_run(Path(run), reps=reps)))
    return 0


def evaluate(
    run: Annotated[str, tyro.conf.Positional],
    variant: str | None = None,
    env: str | None = None,
    episodes: int | None = None,
    key: int = 0,
    stochastic: bool = False,
) -> int:
    """Evaluate every seed's final policy of a run (its latest checkpoint): N
    episodes per seed, one table row per seed.

    Args:
        run: run directory.
        variant: which variant; default: the run's baseline.
        env: which environment; default: the run's first.
        episodes: episodes per seed; default: the run's eval_episodes.
        key: episodes use keys from PRNGKey(KEY), the same for every seed.
        stochastic: sample actions instead of taking the mode (greedy / mean action).
    """
    import jax

    from jppo.runs import policies

    if episodes is not None and episodes < 1:
        raise ValueError(f"episodes={episodes} is invalid: allowed is an integer >= 1")
    seeds, loaded = policies.load_run_policies(Path(run), variant, env)
    rows = []
    for seed, policy in zip(seeds, loaded, strict=True):
        result = policy.evaluate(jax.random.PRNGKey(key), episodes,
                                 deterministic=not stochastic)
        rows.append((seed, jax.device_get(result.returns), jax.device_get(result.lengths)))
    first = loaded[0].source
    print(f"{first['variant']} / {first['env']}: "
          f"{'sampled' if stochastic else 'deterministic'} actions, keys from PRNGKey({key})")
    print(policies.format_evaluation(rows))
    return 0


def export(
    run: Annotated[str, tyro.conf.Positional],
    out: str,
    seed: int | None = None,
    variant: str | None = None,
    env: str | None = None,
) -> int:
    """Write one seed's final policy as a self-contained file (parameters,
    observation statistics, network spec) that `jppo.load_policy(PATH)` reads.

    Args:
        run: run directory.
        out: policy file to write.
        seed: which seed; default: the run's first.
        variant: which variant; default: the run's baseline.
        env: which environment; default: the run's first.
    """
    from jppo.runs import policies

    policy = policies.load_policy(Path(run), variant=variant, env=env, seed=seed)
    path = policy.save(out)
    print(f"wrote {path} ({policy.source['variant']} / {policy.source['env']}, seed "
          f"{policy.source['seed']}, after {policy.source['updates']} updates)")
    return 0


def envs() -> int:
    """List the gymnax environment ids, the brax/<env> and playground/<EnvName> ids
    of the installed extras, then the partially observable variants (any import
    path package.module:factory works too)."""
    from jppo import envs as envs_lib

    print("\n".join(envs_lib.list_envs(include_brax=True) + envs_lib.list_masked_envs()))
    return 0


def config(markdown: bool = False, imports: tuple[str, ...] = ()) -> int:
    """List every PPOConfig knob: default, allowed values, traced or static, and
    what it does.

    Args:
        markdown: print a Markdown table (the manual's knob page, docs/reference/knobs.md).
        imports: modules to import first; the variants they register are listed.
    """
    from jppo.runs.experiment import import_modules

    import_modules(imports)
    print(knobs.markdown(PPOConfig) if markdown else knobs.text(PPOConfig))
    return 0


BENCH_DEFAULTS = BenchOptions()


def bench(options: Annotated[BenchOptions, tyro.conf.OmitArgPrefixes] = BENCH_DEFAULTS) -> int:
    """Throughput, compile time, memory and fraction of peak, as JSON (the flags are
    `jppo.bench.options.BenchOptions`, shared with `python -m jppo.bench`)."""
    from jppo.bench import children

    if options.spawns_children():
        children.leave_accelerator_memory_to_children()
    from jppo.bench import throughput  # starts JAX: after the line above

    return throughput.benchmark(options)


COMMANDS: dict[str, Callable[..., int]] = {
    "train": train, "compare": compare, "resume": resume, "plot": plot, "diagnose": diagnose,
    "fix": fix, "summary": summary, "eval": evaluate, "export": export, "envs": envs,
    "config": config, "bench": bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; bad input (exit 2), OS faults (exit 1) and Ctrl-C (exit 130)
    end in one line on stderr, never a traceback."""
    from jppo.runs import faults
    from jppo.runs.devices import use_host_cores

    if list(sys.argv[1:] if argv is None else argv) in (["--version"], ["-V"]):
        from jppo import __version__

        print(f"jppo {__version__}")
        return 0
    use_host_cores()  # before anything starts JAX: one CPU device per core
    try:
        return tyro.extras.subcommand_cli_from_dict(
            COMMANDS, prog="jppo", description=__doc__, args=argv
        )
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"jppo: error: {error}", file=sys.stderr)
        return 2
    except (faults.RunError, OSError) as error:
        print(f"jppo: error: {faults.describe(error, 'write')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:
        print(f"jppo: {error or 'interrupted'}", file=sys.stderr)
        return 130


# ------------------------------------------------------------------ helpers
def _as_int(value: float | None, name: str = "total_timesteps") -> int | None:
    """Accept `--total-timesteps 5e5`."""
    if value is None:
        return None
    if not float(value).is_integer():
        raise ValueError(f"{name}={value!r} is invalid: allowed is a whole number")
    return int(value)


def _join_processes(options: RunOptions) -> None:
    """With --coordinator, join the other processes before anything starts JAX."""
    if options.coordinator is None:
        if (options.num_processes, options.process_id) != (1, 0):
            raise ValueError("--num-processes and --process-id need --coordinator HOST:PORT "
                             "(the address process 0 listens on)")
        return
    if options.out is None:
        raise ValueError("--coordinator needs --out: one run directory, on a file system "
                         "every process sees")
    from jppo.runs import multihost

    multihost.initialize(options.coordinator, options.num_processes, options.process_id,
                         options.join_timeout)


def _load(path: str | None, overrides: Sequence[str], options: RunOptions, **fields: Any):
    from jppo.runs import experiment as experiments

    fields |= {"chunk_updates": options.chunk_updates,
               "checkpoint_every": options.checkpoint_every, "imports": options.imports,
               "tensorboard": options.tensorboard or None,
               "stop_when_diverged": options.stop_when_diverged or None}
    if path is None:
        return experiments.default_experiment(overrides, **fields)
    return experiments.load(path, overrides, **fields)


def _execute(exp: Any, options: RunOptions, command: str) -> int:
    from jppo.analysis import diagnose as diagnosis
    from jppo.analysis import plots, stats
    from jppo.runs import multihost, results
    from jppo.runs.experiment import KnobHasNoEffect, TimestepsRounded, knob_notes, timestep_notes
    from jppo.runs.runner import run_experiment

    if options.out is None and options.resume:
        raise ValueError("--resume needs --out: the run directory to continue")
    out_dir = Path(options.out) if options.out is not None else results.fresh_run_dir(exp.name)
    runs = exp.seeds * len(exp.variants)
    print(f"jppo {command}: {exp.name}: {', '.join(exp.envs)} x {len(exp.variants)} variant(s) "
          f"x {exp.seeds} seeds ({runs} runs per environment) -> {out_dir}", flush=True)
    for note in [*timestep_notes(exp), *knob_notes(exp)]:
        print(f"jppo {command}: note: {note}", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TimestepsRounded)  # printed above
        warnings.simplefilter("ignore", KnobHasNoEffect)
        result = run_experiment(exp, out_dir, resume=options.resume, devices=options.devices,
                                progress=options.progress)
    if not multihost.is_main():
        print(f"process {options.process_id}: done; process 0 writes the summary, plots "
              "and diagnosis")
        return 0
    for timing in result.timings:
        stop = "" if timing.stopped_after is None else \
            f"; stopped after {timing.stopped_after} updates: all runs diverged"
        print(f"{timing.name}: compile {timing.compile_seconds:.1f} s, run "
              f"{timing.run_seconds:.1f} s, {timing.steps_per_second:,.0f} env-steps/s "
              f"over {timing.runs} runs{stop}")
    table = stats.summarize_run(out_dir)
    print()
    print(stats.format_summary(table))
    for path in plots.write_plots(out_dir):
        print(f"plot: {path}")
    findings = diagnosis.diagnose_run(out_dir)
    print()
    print(diagnosis.format_terminal(findings))
    board = ", tensorboard/" if exp.tensorboard else ""
    print(f"\nrun directory: {out_dir}/ (run.json, metrics/, summary.md, summary.csv, plots/, "
          f"diagnosis.md{board})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
