"""`jppo bench --study N`: a whole study as one jppo program against the
single-file reference run once per variant, wall time including compiles.

A study here is N variants that differ only in traced knobs (a grid over
`vf_coef` x `value_output_gain`) times S seeds. jppo builds one program for
all N * S runs (`jppo.sweep(...).tile(S)`: the hyperparameters are data) and
compiles it once; the reference bakes its settings into its program, so a user
of a single-file PPO compiles and runs it once per variant, S seeds vmapped.
Each side's wall time covers building, compiling and running everything;
rounds alternate which side goes first and the ratio is the median of the
per-round ratios (reference time / jppo time).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import jax

from jppo import envs
from jppo.bench.reference import make_reference_train
from jppo.bench.versus import reference_settings
from jppo.core.config import PPOConfig
from jppo.core.train import make_train
from jppo.runs.mesh import seed_keys
from jppo.runs.sweeps import sweep

VALUE_OUTPUT_GAINS = (1.0, 0.1)


def study_grid(num_variants: int) -> dict[str, list[float]]:
    """The traced grid of `num_variants` points: two value-output gains (one
    if odd) times geometric vf_coef values from 0.25 up by factors of 2**0.5."""
    gains = VALUE_OUTPUT_GAINS[: 2 if num_variants % 2 == 0 else 1]
    coefs = [round(0.25 * math.sqrt(2.0) ** i, 4) for i in range(num_variants // len(gains))]
    return {"vf_coef": coefs, "value_output_gain": list(gains)}


def run_jppo_study(env_name: str, config: PPOConfig, num_variants: int, num_seeds: int
                   ) -> float:
    """Seconds to build, compile and run every variant and seed as one program."""
    start = time.perf_counter()
    trainer = make_train(config, *envs.make(env_name))
    points = sweep(config, **study_grid(num_variants))
    keys, hparams = points.tile(num_seeds)
    returns = jax.jit(jax.vmap(trainer))(keys, hparams).metrics["episode_return"]
    jax.block_until_ready(returns)
    return time.perf_counter() - start


def run_reference_loop(env_name: str, config: PPOConfig, num_variants: int, num_seeds: int
                       ) -> float:
    """Seconds to build, compile and run the reference once per variant."""
    start = time.perf_counter()
    keys = seed_keys(num_seeds)
    for setting in sweep(config, **study_grid(num_variants)).settings:
        train = make_reference_train(reference_settings(config.replace(**setting)), env_name)
        jax.block_until_ready(jax.jit(jax.vmap(train))(keys))
    return time.perf_counter() - start


def study(env_name: str, config: PPOConfig, num_variants: int, num_seeds: int,
          rounds: int = 3) -> dict[str, Any]:
    """Alternating rounds of both sides; medians and the median round ratio."""
    config = config.replace(eval_every=0)  # the reference has no evaluation: like for like
    if num_variants < 1 or num_seeds < 1 or rounds < 1:
        raise ValueError(f"study={num_variants} x seeds={num_seeds} x rounds={rounds} is "
                         "invalid: allowed is each an integer >= 1")
    sides = {"jppo": run_jppo_study, "reference": run_reference_loop}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(rounds):
        for name in (("jppo", "reference") if round_ % 2 == 0 else ("reference", "jppo")):
            seconds[name].append(sides[name](env_name, config, num_variants, num_seeds))
    ratios = [r / j for j, r in zip(seconds["jppo"], seconds["reference"], strict=True)]
    env_steps = num_variants * num_seeds * config.num_updates * config.batch_size
    return {"variants": num_variants, "seeds": num_seeds, "grid": study_grid(num_variants),
            "env_steps": env_steps, "rounds": rounds,
            "jppo_wall_s_median": round(statistics.median(seconds["jppo"]), 2),
            "reference_wall_s_median": round(statistics.median(seconds["reference"]), 2),
            "jppo_wall_s": [round(s, 2) for s in seconds["jppo"]],
            "reference_wall_s": [round(s, 2) for s in seconds["reference"]],
            "ratio_median": round(statistics.median(ratios), 3),
            "ratios": [round(r, 3) for r in ratios]}
