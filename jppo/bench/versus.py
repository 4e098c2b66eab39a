"""`jppo bench --vs-reference`: jppo against the single-file reference PPO, in
one process, on the same devices, alternating.

Both programs are compiled as a jitted `init` plus one chunk of K updates (the
way the runner runs jppo), with the seeds sharded along the "seeds" mesh axis.
A measurement runs chunks back to back until `seconds` have passed and divides
env steps by wall time, so a measurement takes about the same time at 1 seed
and at 16,384. Pairs alternate which program goes first; the ratio reported is
the median of the per-pair ratios, which cancels slow drifts of a shared
machine.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec

from jppo import envs
from jppo.bench.reference import ReferenceSettings, make_reference_train
from jppo.core.config import PPOConfig
from jppo.core.train import make_train
from jppo.runs.mesh import seed_keys, seed_mesh

# Env steps one compiled chunk should cover: long enough that dispatch is noise,
# short enough that a chunk at 16,384 seeds is still one update.
CHUNK_ENV_STEPS = 2**21
MAX_CHUNK_UPDATES = 50


@dataclasses.dataclass
class Timed:
    """A compiled chunked program, ready to be measured again and again."""

    name: str
    step: Callable[[Any], Any]
    state: Any
    env_steps_per_chunk: int
    compile_s: float
    program_mb: float | None

    def measure(self, seconds: float) -> float:
        """Env steps per second over at least `seconds` (and two chunks)."""
        chunks, start = 0, time.perf_counter()
        while chunks < 2 or time.perf_counter() - start < seconds:
            self.state = self.step(self.state)
            jax.block_until_ready(self.state)
            chunks += 1
        return chunks * self.env_steps_per_chunk / (time.perf_counter() - start)


def reference_settings(config: PPOConfig) -> ReferenceSettings:
    """The reference at `config`'s shape and standard-PPO numbers."""
    fields = ReferenceSettings._fields
    return ReferenceSettings(**{f: getattr(config, f) for f in fields if hasattr(config, f)},
                             hidden=config.policy_hidden[0])


def chunk_updates(num_seeds: int, batch_size: int) -> int:
    return max(1, min(MAX_CHUNK_UPDATES, CHUNK_ENV_STEPS // (num_seeds * batch_size)))


def _compile(name: str, init: Callable, run: Callable, num_seeds: int, updates: int,
             batch_size: int, devices: int) -> Timed:
    sharding = NamedSharding(seed_mesh(devices), PartitionSpec("seeds"))
    keys = jax.device_put(seed_keys(num_seeds), sharding)
    start = time.perf_counter()
    init_program = jax.jit(jax.vmap(init), in_shardings=sharding, out_shardings=sharding)
    state = init_program.lower(keys).compile()(keys)
    chunk = jax.jit(lambda s: jax.vmap(run)(s)[0], in_shardings=sharding,
                    out_shardings=sharding, donate_argnums=0)
    compiled = chunk.lower(state).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    program_mb = None if memory is None else round(
        (memory.temp_size_in_bytes + memory.argument_size_in_bytes
         + memory.output_size_in_bytes) / 2**20, 2)
    state = jax.block_until_ready(compiled(state))  # warm-up chunk
    return Timed(name, compiled, state, num_seeds * updates * batch_size, compile_s,
                 program_mb)


def build_pair(env_name: str, num_seeds: int, config: PPOConfig, devices: int,
               reference_devices: int) -> tuple[Timed, Timed]:
    """jppo and the reference, compiled for the same seeds and chunk."""
    updates = chunk_updates(num_seeds, config.batch_size)
    env, env_params = envs.make(env_name)
    config = config.replace(eval_every=0)  # the reference has no evaluation: like for like
    trainer = make_train(config, env, env_params)
    hparams = config.hparams()
    ours = _compile("jppo", lambda k: trainer.init(k, hparams),
                    lambda s: trainer.run_updates(s, hparams, updates),
                    num_seeds, updates, config.batch_size, devices)
    reference = make_reference_train(reference_settings(config), env_name)
    theirs = _compile("reference", reference.init,
                      lambda s: reference.run_updates(s, updates),
                      num_seeds, updates, config.batch_size, reference_devices)
    return ours, theirs


def versus(env_name: str, num_seeds: int, config: PPOConfig, devices: int = 1,
           pairs: int = 3, seconds: float = 3.0, reference_devices: int | None = None
           ) -> dict[str, Any]:
    """Alternating measurements of jppo (on `devices`) and the reference (on
    `reference_devices`, default the same); medians and the median pair ratio."""
    reference_devices = reference_devices or devices
    ours, theirs = build_pair(env_name, num_seeds, config, devices, reference_devices)
    rates: dict[str, list[float]] = {"jppo": [], "reference": []}
    for pair in range(pairs):
        order = (ours, theirs) if pair % 2 == 0 else (theirs, ours)
        for program in order:
            rates[program.name].append(program.measure(seconds))
    ratios = [a / b for a, b in zip(rates["jppo"], rates["reference"], strict=True)]
    return {
        "seeds": num_seeds,
        "devices": devices,
        "reference_devices": reference_devices,
        "chunk_updates": chunk_updates(num_seeds, config.batch_size),
        "jppo_env_steps_per_s": round(statistics.median(rates["jppo"])),
        "reference_env_steps_per_s": round(statistics.median(rates["reference"])),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "jppo_compile_s": round(ours.compile_s, 2),
        "reference_compile_s": round(theirs.compile_s, 2),
        "jppo_program_mb": ours.program_mb,
        "reference_program_mb": theirs.program_mb,
        **device_peak_memory(),
    }


def device_peak_memory() -> dict[str, float]:
    """Peak device memory so far (GPU/TPU only; CPU devices report none)."""
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return {} if peak is None else {"device_peak_mb": round(peak / 2**20, 1)}
