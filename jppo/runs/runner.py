"""Host-side loop: experiments run as jitted chunks, seeds sharded over devices.

An experiment is split into *programs*: one per environment and per set of
variants whose configs differ only in traced hyperparameters (those share a
compile, with the hyperparameters stacked along the batch axis). A program's
batch is variants x seeds, sharded over a 1-D device mesh with axis "seeds".

Each program is a jitted `init` plus one jitted chunk of K updates, reused for
every chunk. Between chunks the host appends the chunk's metrics to the run
directory (one Parquet file per chunk, atomically), updates the live view and,
every `checkpoint_every` chunks, saves the whole train state with orbax. A
resumed run restores the latest checkpoint, drops metric files written after
it and recomputes them: the same program on the same state gives bitwise the
same metrics, so a killed and resumed run equals an uninterrupted one.

Multi-host (`jppo.runs.multihost.initialize` in every process first): the
mesh spans `jax.devices()`, i.e. every device of every host; metrics are
gathered to every process and only process 0 writes them and shows progress;
orbax checkpoints are written cooperatively.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pyarrow as pa
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jppo import envs
from jppo.core.config import (
    HParams,
    PPOConfig,
    divisor_near,
    require_config,
    validate_hparams,
)
from jppo.core.train import Trainer, TrainState, evaluation_plan, make_train
from jppo.runs import (
    checkpoint,
    faults,
    multihost,
    planning,
    results,
    rundir,
    tensorboard,
)
from jppo.runs.divergence import STOPPED_EARLY, DivergenceWatch, record_stop
from jppo.runs.experiment import (
    DEFAULT_VARIANT,
    Experiment,
    KnobHasNoEffect,
    TimestepsRounded,
    knob_notes,
    static_key,
    timestep_notes,
)
from jppo.runs.mesh import device_count_for, seed_keys, seed_mesh  # noqa: F401  (public here)
from jppo.runs.progress import ProgressView
from jppo.runs.provenance import (  # noqa: F401  (public here)
    prepare_run_dir,
    resolved_torso_kinds,
    run_info,
    versions,
)
from jppo.runs.reductions import final_episode_return


@dataclasses.dataclass(frozen=True)
class Program:
    """Variants of one environment that share a compiled program."""

    env: str
    variants: tuple[str, ...]
    config: PPOConfig  # any member's config: the static part is common
    hparams: HParams  # stacked, leading axis = variants
    index: int  # position in the experiment, names its checkpoints

    @property
    def name(self) -> str:
        return planning.program_label(self.env, self.variants)

    @property
    def checkpoint_name(self) -> str:
        return f"program-{self.index:03d}"


@dataclasses.dataclass
class ProgramTiming:
    name: str
    runs: int  # variants x seeds
    compile_seconds: float
    run_seconds: float
    env_steps: int  # over all runs, this session only
    stopped_after: int | None = None  # updates run, if stop_when_diverged stopped it

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / max(self.run_seconds, 1e-9)


@dataclasses.dataclass
class ExperimentResult:
    experiment: Experiment
    frame: pd.DataFrame  # wide metrics table, see jppo.runs.results
    states: dict[str, TrainState]  # final state per program (leading axis = runs)
    timings: list[ProgramTiming]
    out_dir: Path | None

    def metrics(self, variant: str | None = None, env: str | None = None) -> dict[str, np.ndarray]:
        """`(seeds, updates)` arrays of one (variant, env); defaults: the first of each."""
        variant = variant or next(iter(self.experiment.variants))
        env = env or self.experiment.envs[0]
        return results.metric_arrays(self.frame, variant, env)


def pick_chunk_size(num_updates: int, target: int, multiple_of: int = 1) -> int:
    """The largest divisor of `num_updates` not above `target`, so one compiled
    chunk covers the run; falls back to `target` (one extra compile for the
    remainder) when the divisors are all tiny. With `multiple_of` (the
    updates between evaluations) the chunk is a multiple of it, so every
    chunk evaluates after the same updates as one whole-run call would."""
    if multiple_of > 1 and num_updates >= multiple_of:
        blocks = pick_chunk_size(num_updates // multiple_of, round(target / multiple_of))
        return multiple_of * blocks
    return divisor_near(num_updates, target)


def plan(exp: Experiment) -> list[Program]:
    """Group each environment's variants by their static config."""
    programs: list[Program] = []
    for env in exp.envs:
        by_key: dict[PPOConfig, list[str]] = {}
        for variant in exp.variants:
            by_key.setdefault(static_key(exp.variant_config(variant)), []).append(variant)
        for members in by_key.values():
            configs = [exp.variant_config(v) for v in members]
            hparams = jax.tree.map(lambda *xs: jnp.stack(xs), *[c.hparams() for c in configs])
            validate_hparams(hparams)
            programs.append(Program(env, tuple(members), configs[0], hparams, len(programs)))
    return programs


def run_experiment(
    exp: Experiment,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    devices: Sequence[jax.Device] | int | None = None,
    progress: str | ProgressView = "auto",
    stop_after_chunks: int | None = None,
) -> ExperimentResult:
    """Run every (variant, env) of `exp` for `exp.seeds` seeds.

    With `out_dir`, results stream into it (see `jppo.runs.results`) and checkpoints
    are kept; `resume=True` continues a run directory from its newest readable
    checkpoint. An unwritable `out_dir` fails in one line before compiling; an OS
    fault during the run raises `faults.RunError` and Ctrl-C `faults.RunInterrupted`,
    each saying what is saved and how to resume. `stop_after_chunks` stops (as a
    crash would) after that many chunks in this session: it exists to test resuming.
    """
    out = Path(out_dir).absolute() if out_dir is not None else None
    programs = plan(exp)
    for note in timestep_notes(exp):
        warnings.warn(note, TimestepsRounded, stacklevel=2)
    for note in knob_notes(exp):
        warnings.warn(note, KnobHasNoEffect, stacklevel=2)
    size = planning.plan_size(exp, programs, lambda p, params: _chunk_sizes(p, exp, params))
    if size.large and multihost.is_main():
        faults.notify(planning.plan_line(size))  # before anything compiles
    seed_mesh(devices)  # a bad device count fails before anything runs
    board = tensorboard.open_board(out, exp.tensorboard, writes=multihost.is_main())
    if out is not None:
        prepare_run_dir(out, exp, resume, devices)
    if not multihost.is_main():
        progress = "off"  # every process has the same metrics: one view is enough
    view = progress if isinstance(progress, ProgressView) else ProgressView(progress)
    ledger = rundir.Ledger(out, {p.checkpoint_name: _chunk_count(p, exp) for p in programs}) \
        if out is not None else None
    budget = [stop_after_chunks]
    try:
        with view, board:
            states, timings, tables = _run_programs(programs, exp, out, devices, view, resume,
                                                    budget, ledger, board)
    except KeyboardInterrupt:
        if ledger is None:
            raise
        raise faults.RunInterrupted(ledger.interrupted()) from None
    except (OSError, faults.RunError) as error:
        if ledger is None:
            raise
        raise faults.RunError(ledger.failed(error)) from None
    if out is not None:
        multihost.barrier("jppo: metrics written")  # process 0 wrote them
    frame = results.read_metrics(out) if out is not None else results.concat_tables(tables)
    return ExperimentResult(exp, frame, states, timings, out)


def resume_run(run_dir: str | Path, *, devices: Sequence[jax.Device] | int | None = None,
               progress: str | ProgressView = "auto") -> ExperimentResult:
    """Continue a run directory as its run.json recorded it (experiment, overrides,
    seeds and the device count it asked for): what `jppo resume RUN` does."""
    exp, recorded = rundir.recorded_experiment(run_dir)
    return run_experiment(exp, run_dir, resume=True, devices=recorded if devices is None
                          else devices, progress=progress)


def _run_programs(programs: list[Program], exp: Experiment, out: Path | None, devices: Any,
                  view: ProgressView, resume: bool, budget: list[int | None],
                  ledger: rundir.Ledger | None, board: tensorboard.Board):
    states, timings, tables = {}, [], []
    for program in programs:
        mesh = seed_mesh(devices, runs=len(program.variants) * exp.seeds)
        state, timing, program_tables = _run_program(
            program, exp, out, mesh, view, resume, budget, board, ledger
        )
        states[program.checkpoint_name] = state
        timings.append(timing)
        tables.extend(program_tables)
    return states, timings, tables


def _chunk_sizes(program: Program, exp: Experiment, env_params: Any) -> set[int]:
    """The chunk lengths a program compiles (as `_run_program` picks them)."""
    config = program.config
    every, _ = evaluation_plan(config, env_params, program.env)
    chunk = pick_chunk_size(config.num_updates, exp.chunk_updates, every)
    return {chunk, config.num_updates % chunk} - {0}


def _chunk_count(program: Program, exp: Experiment) -> int:
    updates = program.config.num_updates
    return math.ceil(updates / pick_chunk_size(updates, exp.chunk_updates))


def run(
    config: PPOConfig,
    env: str | Any,
    num_seeds: int,
    out_dir: str | Path | None = None,
    *,
    first_seed: int = 0,
    env_overrides: dict[str, Any] | None = None,
    reward_scale: float | None = None,
    chunk_updates: int = 50,
    progress: str = "auto",
    tensorboard: bool = False,
    stop_when_diverged: bool = False,
    **kwargs: Any,
) -> ExperimentResult:
    """One config on one environment: `run_experiment` of a one-variant experiment.

    `env` is a gymnax id, an import path `package.module:factory`, or an env
    object (or `(env, env_params)`) with the gymnax API, named in the results by
    `envs.object_name`; resuming such a run needs the same object again.
    `tensorboard=True` streams medians and IQRs across seeds to
    `out_dir/tensorboard/` (`jppo.runs.tensorboard`). `stop_when_diverged` stops
    the run once every seed went NaN/inf.
    """
    require_config(config, "jppo.run")
    check_run_keywords(kwargs)
    exp = single_experiment(config, env, num_seeds, first_seed=first_seed,
                            env_overrides=env_overrides, reward_scale=reward_scale,
                            chunk_updates=chunk_updates, tensorboard=tensorboard,
                            stop_when_diverged=stop_when_diverged)
    return run_experiment(exp, out_dir, progress=progress, **kwargs)


RUN_KEYWORDS = ("resume", "devices", "stop_after_chunks")  # passed on to run_experiment
# what users of other APIs (or of run_experiment's Experiment) write for run's own arguments
RUN_SYNONYMS = {"seeds": "num_seeds", "n_seeds": "num_seeds", "out": "out_dir",
                "output": "out_dir", "run_dir": "out_dir", "env_params": "env_overrides",
                "total_timesteps": "config=PPOConfig(total_timesteps=...)"}


def check_run_keywords(kwargs: dict[str, Any]) -> None:
    """`jppo.run(..., seeds=3)` names jppo.run and its own argument, not the
    run_experiment it passes the rest to."""
    own = [name for name in inspect.signature(run).parameters if name != "kwargs"]
    for name in kwargs:
        if name in RUN_KEYWORDS:
            continue
        close = RUN_SYNONYMS.get(name) or next(iter(difflib.get_close_matches(
            name, [*own, *RUN_KEYWORDS], n=1, cutoff=0.6)), None)
        hint = f" (did you mean {close}?)" if close else ""
        raise ValueError(f"jppo.run() has no argument {name!r}{hint}; allowed are "
                         f"{', '.join([*own, *RUN_KEYWORDS])}")


def single_experiment(config: PPOConfig, env: str | Any, num_seeds: int, **fields: Any
                      ) -> Experiment:
    is_pair = isinstance(env, tuple) and len(env) == 2
    env_name = env if isinstance(env, str) else envs.object_name(env[0] if is_pair else env)
    defaults = PPOConfig()
    changed = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
               if getattr(config, f.name) != getattr(defaults, f.name)}
    env_overrides = fields.pop("env_overrides", None)
    return Experiment(
        name=env_name.replace("/", "-"),  # brax/ant: a name, not a path
        envs=(env,), variants={DEFAULT_VARIANT: {}}, config=changed,
        seeds=num_seeds, env_params={env_name: env_overrides} if env_overrides else {},
        **fields,
    )


# ---------------------------------------------------------------- one program
def _run_program(
    program: Program, exp: Experiment, out: Path | None, mesh: Mesh, view: ProgressView,
    resume: bool, budget: list[int | None], board: tensorboard.Board,
    ledger: rundir.Ledger | None = None,
) -> tuple[TrainState, ProgramTiming, list[pa.Table]]:
    config = program.config
    env, env_params = exp.make_env(program.env)
    trainer = make_train(config, env, env_params)
    runs = len(program.variants) * exp.seeds
    sharding = NamedSharding(mesh, PartitionSpec("seeds"))
    keys, hparams = _batch_inputs(program, exp, mesh.size)
    keys, hparams = jax.device_put((keys, hparams), sharding)

    init = jax.jit(jax.vmap(trainer.init), out_shardings=sharding)
    chunk = pick_chunk_size(config.num_updates, exp.chunk_updates, trainer.eval_every)
    num_chunks = math.ceil(config.num_updates / chunk)
    manager = checkpoint.manager(out, program.checkpoint_name) if out is not None else None
    restored = _restore(program, manager, jax.eval_shape(init, keys, hparams), runs, sharding) \
        if manager is not None and resume else checkpoint.Restored(0, None, [])
    first_chunk = restored.step
    if ledger is not None:
        ledger.start(program.checkpoint_name, first_chunk)
    stopped = _stopped_before(out, program) if resume else None
    if first_chunk == num_chunks or stopped:  # finished before: nothing to compile
        manager.close()
        return restored.state, ProgramTiming(program.name, runs, 0.0, 0.0, 0, stopped), []

    t0 = time.perf_counter()
    state = init(keys, hparams)
    sizes = {chunk, config.num_updates % chunk} - {0}
    chunk_programs = {size: _compile_chunk(trainer, state, hparams, size, sharding)
                      for size in sizes}
    jax.block_until_ready(state)
    compile_seconds = time.perf_counter() - t0
    if first_chunk:
        state = restored.state
    if out is not None and multihost.is_main():
        for variant in program.variants:
            results.remove_parts_after(out, variant, program.env, first_chunk - 1)

    view.start(program.name, config.num_updates * config.batch_size,
               note=f"{runs} runs ({len(program.variants)} variants x {exp.seeds} seeds) on "
                    f"{mesh.size} device(s), compiled in {compile_seconds:.1f} s")
    chunks = _Chunks(chunk, num_chunks, chunk_programs, manager, board, ledger)
    watch = DivergenceWatch.start(program.variants, range(exp.first_seed,
                                                          exp.first_seed + exp.seeds))
    if first_chunk and out is not None:
        watch.seed_from(out, program.env, first_chunk)
    state, run_seconds, steps_run, tables = _run_chunks(program, exp, out, view, budget, chunks,
                                                        first_chunk, state, hparams, watch)
    if manager is not None:
        manager.close()
    timing = ProgramTiming(program.name, runs, compile_seconds, run_seconds, steps_run,
                           watch.stopped_after)
    return state, timing, tables


class _Chunks(NamedTuple):
    size: int  # updates per chunk (the last may be shorter)
    count: int
    programs: dict[int, Any]  # chunk size -> compiled chunk
    manager: Any  # checkpoint manager, None without a run directory
    board: tensorboard.Board  # live dashboards (a no-op one unless enabled)
    ledger: rundir.Ledger | None = None  # what is on disk, for fault messages


def _run_chunks(program: Program, exp: Experiment, out: Path | None, view: ProgressView,
                budget: list[int | None], chunks: _Chunks, first_chunk: int,
                state: TrainState, hparams: HParams, watch: DivergenceWatch
                ) -> tuple[TrainState, float, int, list[pa.Table]]:
    """Chunks `first_chunk`.. of a program: run, write, checkpoint, report progress
    and divergences; stop once every run diverged if the experiment says so."""
    config, runs = program.config, len(program.variants) * exp.seeds
    steps_per_update = config.batch_size
    total_steps = config.num_updates * steps_per_update
    tables: list[pa.Table] = []
    run_seconds, steps_run = 0.0, 0
    for index in range(first_chunk, chunks.count):
        if budget[0] is not None:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        first_update = index * chunks.size
        size = min(chunks.size, config.num_updates - first_update)
        t = time.perf_counter()
        state, metrics = chunks.programs[size](state, hparams)
        metrics = _to_host(metrics, runs)
        run_seconds += time.perf_counter() - t
        steps_run += size * steps_per_update * runs
        chunk_tables = _chunk_tables(program, exp, metrics, first_update, steps_per_update)
        if out is not None:
            with faults.deferred_interrupt():  # Ctrl-C waits until the chunk is on disk
                _save_chunk(program, exp, out, chunks, index, chunk_tables, state)
        else:
            tables.extend(chunk_tables)
        chunks.board.write(chunk_tables)  # after the metrics are safe on disk
        done = (first_update + size) * steps_per_update
        new = watch.observe(metrics, first_update)
        if new:
            view.note(program.name, watch.message(new, metrics, first_update))
        view.update(program.name, done, total_steps, steps_run / max(run_seconds, 1e-9),
                    _mean_return(metrics), runs, diverged=watch.diverged)
        if exp.stop_when_diverged and watch.all_diverged and index + 1 < chunks.count:
            _stop_early(program, exp, out, view, chunks, index, state, watch,
                        first_update + size)
            break
    return state, run_seconds, steps_run, tables


def _save_chunk(program: Program, exp: Experiment, out: Path, chunks: _Chunks, index: int,
                chunk_tables: list[pa.Table], state: TrainState) -> None:
    """Write a chunk's metrics and, when due, its checkpoint; tell the ledger."""
    if multihost.is_main():
        for variant, table in zip(program.variants, chunk_tables, strict=True):
            results.write_part(out, variant, program.env, index, table)
    ledger = chunks.ledger
    if ledger is not None:
        ledger.written[program.checkpoint_name] = index + 1
    if (index + 1) % exp.checkpoint_every == 0 or index + 1 == chunks.count:
        checkpoint.save(chunks.manager, index + 1, state, len(program.variants) * exp.seeds)
        if ledger is not None:
            ledger.checkpointed[program.checkpoint_name] = index + 1


def _restore(program: Program, manager: Any, shapes: Any, runs: int,
             sharding: NamedSharding) -> checkpoint.Restored:
    """The newest readable checkpoint; says which newer steps were skipped and why."""
    restored = checkpoint.restore_newest_readable(manager, shapes, runs, sharding)
    for step, why in restored.skipped:
        faults.notify(f"resume: {program.name}: skipped checkpoint {step} ({why}); "
                      f"resuming from checkpoint {restored.step}")
    checkpoint.drop(manager, [step for step, _ in restored.skipped])
    return restored


def _stop_early(program: Program, exp: Experiment, out: Path | None, view: ProgressView,
                chunks: _Chunks, index: int, state: TrainState, watch: DivergenceWatch,
                updates: int) -> None:
    """Every run diverged: checkpoint where the program stops, record it in run.json
    (a resume then skips the program) and say so."""
    runs = len(watch.first)
    watch.stopped_after = updates
    reason = f"all {runs} runs diverged (non-finite losses, gradients or parameters)"
    if out is not None:
        if (index + 1) % exp.checkpoint_every:  # not saved with the chunk
            checkpoint.save(chunks.manager, index + 1, state, runs)
        if multihost.is_main():
            record_stop(out, program.checkpoint_name, {
                "env": program.env, "variants": list(program.variants), "updates": updates,
                "num_updates": program.config.num_updates, "reason": reason})
    view.note(program.name, f"stopped early after {updates} of {program.config.num_updates} "
                            f"updates: {reason} (stop_when_diverged)")


def _stopped_before(out: Path | None, program: Program) -> int | None:
    """Updates a program ran before stop_when_diverged stopped it in an earlier
    session (run.json), so a resume does not run it on."""
    if out is None or not (out / results.RUN_INFO).exists():
        return None
    entry = results.read_run_info(out).get(STOPPED_EARLY, {}).get(program.checkpoint_name)
    return None if entry is None else int(entry["updates"])


def _mean_return(metrics: dict[str, np.ndarray]) -> float:
    """Mean over runs of the chunk's episode return (NaN if no episode ended)."""
    finals = final_episode_return(metrics, fraction=1.0)
    finite = finals[np.isfinite(finals)]
    return float(finite.mean()) if finite.size else math.nan


def _batch_inputs(program: Program, exp: Experiment, num_devices: int):
    """Keys and hparams for runs (variant-major, seed i of every variant uses the
    same key), padded to a multiple of the device count by repeating the last run."""
    keys = jnp.tile(seed_keys(exp.seeds, exp.first_seed), (len(program.variants), 1))
    hparams = jax.tree.map(lambda x: jnp.repeat(x, exp.seeds, axis=0), program.hparams)
    runs = keys.shape[0]
    padded = -(-runs // num_devices) * num_devices
    if padded != runs:
        index = jnp.minimum(jnp.arange(padded), runs - 1)
        keys, hparams = jax.tree.map(lambda x: x[index], (keys, hparams))
    return keys, hparams


def _compile_chunk(trainer: Trainer, state: TrainState, hparams: HParams, size: int,
                   sharding: NamedSharding):
    def chunk(state: TrainState, hparams: HParams):
        return trainer.run_updates(state, hparams, size)

    program = jax.jit(jax.vmap(chunk), in_shardings=(sharding, sharding),
                      out_shardings=(sharding, sharding), donate_argnums=0)
    return program.lower(state, hparams).compile()


def _to_host(metrics: dict[str, jax.Array], runs: int) -> dict[str, np.ndarray]:
    """Gather a chunk's metrics to the host (from every process if multi-host)
    and drop the padding runs."""
    return {name: np.asarray(value)[:runs] for name, value in multihost.gather(metrics).items()}


def _chunk_tables(program: Program, exp: Experiment, metrics: dict[str, np.ndarray],
                  first_update: int, steps_per_update: int) -> list[pa.Table]:
    seeds = range(exp.first_seed, exp.first_seed + exp.seeds)
    pretrain_steps = program.config.value_pretrain_updates * program.config.batch_size
    tables = []
    for i, variant in enumerate(program.variants):
        rows = {name: value[i * exp.seeds:(i + 1) * exp.seeds] for name, value in metrics.items()}
        tables.append(results.metrics_table(rows, variant=variant, env=program.env, seeds=seeds,
                                            first_update=first_update,
                                            steps_per_update=steps_per_update,
                                            pretrain_steps=pretrain_steps))
    return tables
