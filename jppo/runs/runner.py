"""Host-side loop: experiments run as jitted chunks, seeds sharded over devices.

An experiment is split into *programs* (`jppo.runs.planning`): one per
environment and per set of variants whose configs differ only in traced
hyperparameters. A program's batch is variants x seeds, sharded over a 1-D
device mesh with axis "seeds" (`jppo.runs.mesh`), and runs as a `ProgramRun`
(`jppo.runs.execution`): a jitted `init` plus one jitted chunk of K updates,
reused for every chunk, its metrics streamed to the run directory and its state
checkpointed. A resumed run restores the latest checkpoint, drops metric files
written after it and recomputes them: the same program on the same state gives
bitwise the same metrics, so a killed and resumed run equals an uninterrupted
one. run.json records where the run came from (`jppo.runs.provenance`).

Multi-host (`jppo.runs.multihost.initialize` in every process first): the
mesh spans `jax.devices()`, i.e. every device of every host; metrics are
gathered to every process and only process 0 writes them and shows progress;
orbax checkpoints are written cooperatively.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from jppo import envs
from jppo.core.config import PPOConfig, require_config
from jppo.core.train import TrainState
from jppo.runs import faults, multihost, planning, results, rundir, tensorboard
from jppo.runs.execution import ChunkBudget, ProgramRun, ProgramTiming, Session
from jppo.runs.experiment import (
    DEFAULT_VARIANT,
    Experiment,
    KnobHasNoEffect,
    TimestepsRounded,
    knob_notes,
    timestep_notes,
)
from jppo.runs.mesh import device_count_for, seed_keys, seed_mesh
from jppo.runs.planning import Program, pick_chunk_size, plan
from jppo.runs.progress import ProgressView
from jppo.runs.provenance import prepare_run_dir, resolved_torso_kinds, run_info, versions

# Importable from here as before the runner was split by responsibility.
__all__ = ["ExperimentResult", "Program", "ProgramTiming", "check_run_keywords",
           "device_count_for", "pick_chunk_size", "plan", "resolved_torso_kinds",
           "resume_run", "run", "run_experiment", "run_info", "seed_keys", "seed_mesh",
           "single_experiment", "versions"]


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
    _check_before_compiling(exp, programs, devices)
    board = tensorboard.open_board(out, exp.tensorboard, writes=multihost.is_main())
    if out is not None:
        prepare_run_dir(out, exp, resume, devices)
    if not multihost.is_main():
        progress = "off"  # every process has the same metrics: one view is enough
    view = progress if isinstance(progress, ProgressView) else ProgressView(progress)
    ledger = rundir.Ledger(out, {p.checkpoint_name: planning.chunk_count(p, exp)
                                 for p in programs}) if out is not None else None
    session = Session(exp, out, resume, view, board, ledger, ChunkBudget(stop_after_chunks))
    try:
        with view, board:
            states, timings, tables = _run_programs(programs, session, devices)
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


def _check_before_compiling(exp: Experiment, programs: list[Program], devices: Any) -> None:
    """The notes on the experiment, the size of a large plan and a bad device
    count, all before anything compiles."""
    for note in timestep_notes(exp):
        warnings.warn(note, TimestepsRounded, stacklevel=3)
    for note in knob_notes(exp):
        warnings.warn(note, KnobHasNoEffect, stacklevel=3)
    size = planning.plan_size(exp, programs,
                              lambda p, params: planning.chunk_sizes(p, exp, params))
    if size.large and multihost.is_main():
        faults.notify(planning.plan_line(size))
    seed_mesh(devices)  # a bad device count fails before anything runs


def _run_programs(programs: list[Program], session: Session, devices: Any
                  ) -> tuple[dict[str, TrainState], list[ProgramTiming], list[Any]]:
    states, timings, tables = {}, [], []
    for program in programs:
        mesh = seed_mesh(devices, runs=program.runs(session.exp))
        state, timing, program_tables = ProgramRun(program, session, mesh).run()
        states[program.checkpoint_name] = state
        timings.append(timing)
        tables.extend(program_tables)
    return states, timings, tables


def resume_run(run_dir: str | Path, *, devices: Sequence[jax.Device] | int | None = None,
               progress: str | ProgressView = "auto") -> ExperimentResult:
    """Continue a run directory as its run.json recorded it (experiment, overrides,
    seeds and the device count it asked for): what `jppo resume RUN` does."""
    exp, recorded = rundir.recorded_experiment(run_dir)
    return run_experiment(exp, run_dir, resume=True, devices=recorded if devices is None
                          else devices, progress=progress)


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
