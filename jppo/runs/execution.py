"""Running one program of an experiment: restore, compile, run its chunks, save, stop early.

A `ProgramRun` is one program while it runs: its compiled init and chunks, its
checkpoint manager, its divergence watch and its timing, with the `Session`
every program of one `run_experiment` call shares (experiment, run directory,
progress view, dashboards, ledger, chunk budget). Between chunks the host
appends the chunk's metrics to the run directory (one Parquet file per chunk,
atomically), updates the live view and, every `checkpoint_every` chunks, saves
the whole train state with orbax. A resumed program restores the newest
readable checkpoint and recomputes the metrics written after it: the same
program on the same state gives bitwise the same metrics.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pyarrow as pa
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jppo.core.config import HParams
from jppo.core.train import Trainer, TrainState, make_train
from jppo.runs import checkpoint, faults, multihost, results, rundir, tensorboard
from jppo.runs.divergence_watch import STOPPED_EARLY, DivergenceWatch, record_stop
from jppo.runs.experiment import Experiment
from jppo.runs.mesh import batch_inputs
from jppo.runs.planning import Program, pick_chunk_size
from jppo.runs.progress import ProgressView
from jppo.runs.reductions import final_episode_return


@dataclasses.dataclass
class ChunkBudget:
    """Chunks this session may still run (None: no limit). `stop_after_chunks`
    stops a run as a crash would, after that many chunks over all programs: it
    exists to test resuming."""

    left: int | None = None

    def take(self) -> bool:
        """Whether one more chunk may run; counts it if so."""
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


@dataclasses.dataclass(frozen=True)
class Session:
    """What every program of one `run_experiment` call shares."""

    exp: Experiment
    out: Path | None  # the run directory, None to keep the metrics in memory
    resume: bool
    view: ProgressView
    board: tensorboard.Board  # live dashboards (a no-op one unless enabled)
    ledger: rundir.Ledger | None  # what is on disk, for fault messages
    budget: ChunkBudget


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


class Chunk(NamedTuple):
    """One chunk's outcome: the state after it and its metrics on the host."""

    state: TrainState
    metrics: dict[str, np.ndarray]
    first_update: int
    updates: int


class ProgramRun:
    """One program on its mesh: built (traced, not compiled) on construction."""

    def __init__(self, program: Program, session: Session, mesh: Mesh) -> None:
        exp = session.exp
        self.program, self.session, self.mesh = program, session, mesh
        self.trainer = make_train(program.config, *exp.make_env(program.env))
        self.runs = program.runs(exp)
        self.sharding = NamedSharding(mesh, PartitionSpec("seeds"))
        self.keys, self.hparams = jax.device_put(batch_inputs(program, exp, mesh.size),
                                                 self.sharding)
        self.init = jax.jit(jax.vmap(self.trainer.init), out_shardings=self.sharding)
        updates = program.config.num_updates
        self.chunk_size = pick_chunk_size(updates, exp.chunk_updates, self.trainer.eval_every)
        self.num_chunks = math.ceil(updates / self.chunk_size)
        self.manager = checkpoint.manager(session.out, program.checkpoint_name) \
            if session.out is not None else None
        self.compiled: dict[int, Any] = {}  # chunk size -> compiled chunk
        self.watch = DivergenceWatch.start(program.variants, range(exp.first_seed,
                                                                   exp.first_seed + exp.seeds))
        self.run_seconds, self.env_steps = 0.0, 0

    def run(self) -> tuple[TrainState, ProgramTiming, list[pa.Table]]:
        """Restore, compile, run the remaining chunks; the final state, the timing
        and (without a run directory) the metric tables."""
        program, session = self.program, self.session
        restored = self.restore()
        if session.ledger is not None:
            session.ledger.start(program.checkpoint_name, restored.step)
        stopped = self.stopped_before() if session.resume else None
        if restored.step == self.num_chunks or stopped:  # finished before: nothing to compile
            self.close()
            return restored.state, ProgramTiming(program.name, self.runs, 0.0, 0.0, 0,
                                                 stopped), []
        state, compile_seconds = self.compile()
        if restored.step:
            state = restored.state
        self.drop_metrics_after(restored.step)
        session.view.start(program.name, program.config.num_updates * program.config.batch_size,
                           note=f"{self.runs} runs ({len(program.variants)} variants x "
                                f"{session.exp.seeds} seeds) on {self.mesh.size} device(s), "
                                f"compiled in {compile_seconds:.1f} s")
        if restored.step and session.out is not None:
            self.watch.seed_from(session.out, program.env, restored.step)
        state, tables = self.run_chunks(restored.step, state)
        self.close()
        return state, ProgramTiming(program.name, self.runs, compile_seconds, self.run_seconds,
                                    self.env_steps, self.watch.stopped_after), tables

    def restore(self) -> checkpoint.Restored:
        """On resume, the newest readable checkpoint (saying which newer steps were
        skipped and why); else step 0 and no state."""
        if self.manager is None or not self.session.resume:
            return checkpoint.Restored(0, None, [])
        shapes = jax.eval_shape(self.init, self.keys, self.hparams)
        restored = checkpoint.restore_newest_readable(self.manager, shapes, self.runs,
                                                      self.sharding)
        for step, why in restored.skipped:
            faults.notify(f"resume: {self.program.name}: skipped checkpoint {step} ({why}); "
                          f"resuming from checkpoint {restored.step}")
        checkpoint.drop(self.manager, [step for step, _ in restored.skipped])
        return restored

    def compile(self) -> tuple[TrainState, float]:
        """The initial state and every chunk length the program runs, compiled;
        the seconds that took."""
        start = time.perf_counter()
        state = self.init(self.keys, self.hparams)
        updates = self.program.config.num_updates
        self.compiled = {size: compile_chunk(self.trainer, state, self.hparams, size,
                                             self.sharding)
                         for size in {self.chunk_size, updates % self.chunk_size} - {0}}
        jax.block_until_ready(state)
        return state, time.perf_counter() - start

    def run_chunks(self, first_chunk: int, state: TrainState
                   ) -> tuple[TrainState, list[pa.Table]]:
        """Chunks `first_chunk`.. : run, write, checkpoint, report progress and
        divergences; stop once every run diverged if the experiment says so."""
        session, tables = self.session, []
        for index in range(first_chunk, self.num_chunks):
            if not session.budget.take():
                break
            chunk = self.run_chunk(index, state)
            state = chunk.state
            chunk_tables = self.tables(chunk)
            if session.out is not None:
                with faults.deferred_interrupt():  # Ctrl-C waits until the chunk is on disk
                    self.save(index, chunk_tables, state)
            else:
                tables.extend(chunk_tables)
            session.board.write(chunk_tables)  # after the metrics are safe on disk
            self.report(chunk)
            if session.exp.stop_when_diverged and self.watch.all_diverged \
                    and index + 1 < self.num_chunks:
                self.stop_early(index, state, chunk.first_update + chunk.updates)
                break
        return state, tables

    def run_chunk(self, index: int, state: TrainState) -> Chunk:
        """Chunk `index` on the devices, its metrics gathered to the host."""
        first_update = index * self.chunk_size
        updates = min(self.chunk_size, self.program.config.num_updates - first_update)
        start = time.perf_counter()
        state, metrics = self.compiled[updates](state, self.hparams)
        metrics = to_host(metrics, self.runs)
        self.run_seconds += time.perf_counter() - start
        self.env_steps += updates * self.program.config.batch_size * self.runs
        return Chunk(state, metrics, first_update, updates)

    def tables(self, chunk: Chunk) -> list[pa.Table]:
        """The chunk's metrics as one table per variant."""
        exp, program = self.session.exp, self.program
        seeds = range(exp.first_seed, exp.first_seed + exp.seeds)
        config = program.config
        return [results.metrics_table(
            {name: value[i * exp.seeds:(i + 1) * exp.seeds]
             for name, value in chunk.metrics.items()},
            variant=variant, env=program.env, seeds=seeds, first_update=chunk.first_update,
            steps_per_update=config.batch_size,
            pretrain_steps=config.value_pretrain_updates * config.batch_size)
            for i, variant in enumerate(program.variants)]

    def report(self, chunk: Chunk) -> None:
        """The chunk's progress and any new divergence, in the live view."""
        view, name, config = self.session.view, self.program.name, self.program.config
        new = self.watch.observe(chunk.metrics, chunk.first_update)
        if new:
            view.note(name, self.watch.message(new, chunk.metrics, chunk.first_update))
        view.update(name, (chunk.first_update + chunk.updates) * config.batch_size,
                    config.num_updates * config.batch_size,
                    self.env_steps / max(self.run_seconds, 1e-9), mean_return(chunk.metrics),
                    self.runs, diverged=self.watch.diverged)

    def save(self, index: int, chunk_tables: list[pa.Table], state: TrainState) -> None:
        """Write a chunk's metrics and, when due, its checkpoint; tell the ledger."""
        out, program, ledger = self.session.out, self.program, self.session.ledger
        if multihost.is_main():
            for variant, table in zip(program.variants, chunk_tables, strict=True):
                results.write_part(out, variant, program.env, index, table)
        if ledger is not None:
            ledger.written[program.checkpoint_name] = index + 1
        if (index + 1) % self.session.exp.checkpoint_every == 0 or index + 1 == self.num_chunks:
            checkpoint.save(self.manager, index + 1, state, self.runs)
            if ledger is not None:
                ledger.checkpointed[program.checkpoint_name] = index + 1

    def stop_early(self, index: int, state: TrainState, updates: int) -> None:
        """Every run diverged: checkpoint where the program stops, record it in
        run.json (a resume then skips the program) and say so."""
        program, out = self.program, self.session.out
        runs = len(self.watch.first)
        self.watch.stopped_after = updates
        reason = f"all {runs} runs diverged (non-finite losses, gradients or parameters)"
        if out is not None:
            if (index + 1) % self.session.exp.checkpoint_every:  # not saved with the chunk
                checkpoint.save(self.manager, index + 1, state, runs)
            if multihost.is_main():
                record_stop(out, program.checkpoint_name, {
                    "env": program.env, "variants": list(program.variants), "updates": updates,
                    "num_updates": program.config.num_updates, "reason": reason})
        self.session.view.note(program.name, f"stopped early after {updates} of "
                                             f"{program.config.num_updates} updates: {reason} "
                                             "(stop_when_diverged)")

    def stopped_before(self) -> int | None:
        """Updates the program ran before stop_when_diverged stopped it in an
        earlier session (run.json), so a resume does not run it on."""
        out = self.session.out
        if out is None or not (out / results.RUN_INFO).exists():
            return None
        entry = results.read_run_info(out).get(STOPPED_EARLY, {}).get(
            self.program.checkpoint_name)
        return None if entry is None else int(entry["updates"])

    def drop_metrics_after(self, first_chunk: int) -> None:
        """A resume recomputes the chunks after its checkpoint: their files go first."""
        out = self.session.out
        if out is not None and multihost.is_main():
            for variant in self.program.variants:
                results.remove_parts_after(out, variant, self.program.env, first_chunk - 1)

    def close(self) -> None:
        """Wait for the checkpoint writes in flight (none without a run directory)."""
        if self.manager is not None:
            self.manager.close()


def compile_chunk(trainer: Trainer, state: TrainState, hparams: HParams, size: int,
                  sharding: NamedSharding) -> Any:
    def chunk(state: TrainState, hparams: HParams):
        return trainer.run_updates(state, hparams, size)

    program = jax.jit(jax.vmap(chunk), in_shardings=(sharding, sharding),
                      out_shardings=(sharding, sharding), donate_argnums=0)
    return program.lower(state, hparams).compile()


def to_host(metrics: dict[str, jax.Array], runs: int) -> dict[str, np.ndarray]:
    """Gather a chunk's metrics to the host (from every process if multi-host)
    and drop the padding runs."""
    return {name: np.asarray(value)[:runs] for name, value in multihost.gather(metrics).items()}


def mean_return(metrics: dict[str, np.ndarray]) -> float:
    """Mean over runs of the chunk's episode return (NaN if no episode ended)."""
    finals = final_episode_return(metrics, fraction=1.0)
    finite = finals[np.isfinite(finals)]
    return float(finite.mean()) if finite.size else math.nan
