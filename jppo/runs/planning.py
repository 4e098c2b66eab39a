"""An experiment's plan: its programs, their chunks, and its size, said before
anything compiles when it is large.

An experiment is split into *programs*: one per environment and per set of
variants whose configs differ only in traced hyperparameters (those share a
compile, with the hyperparameters stacked along the batch axis). Each program
runs as chunks of K updates, one compiled chunk reused for every chunk.

A 10 x 10 x 10 `[sweep]` is 1,000 variants: accepted as any other plan, but the
user should learn what they asked for (variants, runs, compiled programs,
compiles, memory) while stopping costs nothing, and the live view must not name
every variant on each line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jppo.core.config import HParams, PPOConfig, divisor_near, validate_hparams
from jppo.runs.experiment import Experiment, static_key

LARGE_VARIANTS = 100  # variants x envs above which the plan's size is said first
LARGE_PROGRAMS = 16  # compiled programs above which the same
SHOWN_VARIANTS = 3  # variants a program's name lists before counting the rest
LISTED_VARIANTS = 8  # up to this many, a program's name lists them all


@dataclasses.dataclass(frozen=True)
class PlanSize:
    variants: int  # variants x envs
    runs: int  # variants x envs x seeds
    programs: int
    compiles: int  # init and each chunk size, per program
    largest_runs: int  # runs of the largest program (programs run one after another)
    memory_bytes: int  # estimate for the largest program: train state and one rollout

    @property
    def large(self) -> bool:
        return self.variants > LARGE_VARIANTS or self.programs > LARGE_PROGRAMS


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
        return program_label(self.env, self.variants)

    @property
    def checkpoint_name(self) -> str:
        return f"program-{self.index:03d}"

    def runs(self, exp: Experiment) -> int:
        """Variants x seeds: the batch the program trains at once."""
        return len(self.variants) * exp.seeds


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


def chunk_sizes(program: Program, exp: Experiment, env_params: Any) -> set[int]:
    """The chunk lengths a program compiles (as the runner picks them)."""
    from jppo.core.train import evaluation_plan

    config = program.config
    every, _ = evaluation_plan(config, env_params, program.env)
    chunk = pick_chunk_size(config.num_updates, exp.chunk_updates, every)
    return {chunk, config.num_updates % chunk} - {0}


def chunk_count(program: Program, exp: Experiment) -> int:
    """Chunks of the program as the run directory's ledger counts them."""
    updates = program.config.num_updates
    return math.ceil(updates / pick_chunk_size(updates, exp.chunk_updates))


def program_label(env: str, variants: Sequence[str]) -> str:
    """'CartPole-v1 · a, b' or, for many, 'CartPole-v1 · a, b, c and 997 more (1,000
    variants)': unique per program, since programs share no variant."""
    if len(variants) <= LISTED_VARIANTS:
        return f"{env} · {', '.join(variants)}"
    shown = ", ".join(variants[:SHOWN_VARIANTS])
    return f"{env} · {shown} and {len(variants) - SHOWN_VARIANTS:,} more " \
           f"({len(variants):,} variants)"


def plan_size(exp: Any, programs: Sequence[Any], chunk_sizes: Any) -> PlanSize:
    """The plan's size; `chunk_sizes(program, env_params)` gives the distinct chunk
    lengths a program compiles (one, or two where the last chunk is shorter).
    The memory is estimated (by tracing, no compile) only for a large plan."""
    built = {env: exp.make_env(env) for env in exp.envs}
    largest = max(programs, key=lambda p: len(p.variants))
    runs = len(largest.variants) * exp.seeds
    size = PlanSize(
        variants=len(exp.variants) * len(exp.envs), runs=len(exp.variants) * len(exp.envs)
        * exp.seeds, programs=len(programs),
        compiles=sum(1 + len(chunk_sizes(p, built[p.env][1])) for p in programs),
        largest_runs=runs, memory_bytes=0)
    if not size.large:
        return size
    return dataclasses.replace(size, memory_bytes=runs * _bytes_per_run(largest,
                                                                         *built[largest.env]))


def _bytes_per_run(program: Any, env: Any, params: Any) -> int:
    """One run's train state (traced, never compiled) plus its rollout buffers."""
    from jppo.core.train import make_train

    trainer = make_train(program.config, env, params)
    hparams = jax.tree.map(lambda x: x[0], program.hparams)
    state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0), hparams)
    state_bytes = sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize
                      for leaf in jax.tree.leaves(state))
    per_step = 3 * trainer.spec.obs_dim + 8  # obs, final and normalized obs; scalars
    return int(state_bytes + 4 * program.config.batch_size * per_step)


def plan_line(size: PlanSize) -> str:
    return (f"large plan: {size.variants:,} variants x seeds = {size.runs:,} runs in "
            f"{size.programs:,} compiled program(s), {size.compiles:,} compiles; estimated "
            f"memory {_mib(size.memory_bytes)} for the largest program ({size.largest_runs:,} "
            "runs at once); progress lines name the first variants of each program")


def _mib(count: int) -> str:
    return f"{count / 2**20:,.0f} MiB" if count >= 2**20 else f"{count / 2**10:,.0f} KiB"
