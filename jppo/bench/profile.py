"""`jppo bench --profile`: where the time of one PPO update goes.

Each phase of `Trainer.update` (see `Trainer.phases`) is compiled on its own,
vmapped over the seeds, and timed as the median of repeated calls:

- rollout: `num_steps` sequential policy + env steps (the `lax.scan`);
- critic + GAE: learner rewards, the two batched critic passes, the reverse
  GAE scan and target tracking (collect minus rollout);
- learn: the `update_epochs` x `num_minibatches` optimizer steps, with the
  per-minibatch diagnostics;
- metrics + rest: the whole update minus collect and learn.

Each phase's network FLOPs are counted analytically (`jppo.bench.flops.
flops_per_env_step`; XLA's cost analysis counts a loop body once, not once per
iteration); divided by the device's measured matmul rate they give the time the
phase could not go below (its compute bound), so the table says how far each
phase is from it. Environment dynamics, sampling and the optimizer's
elementwise work are not in the count: a phase far above its bound is spending
its time there or in per-operation overhead.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax

from jppo import envs
from jppo.bench.flops import flops_per_env_step
from jppo.core.config import PPOConfig
from jppo.core.train import Trainer, make_train
from jppo.runs.mesh import seed_keys


def _timed(compiled: Callable, args: tuple, repeats: int) -> float:
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def phase_programs(trainer: Trainer, num_seeds: int) -> dict[str, tuple[Callable, tuple]]:
    """name -> (vmapped function, its arguments) for each phase of one update."""
    hp = trainer.config.hparams()
    phases = trainer.phases
    keys = seed_keys(num_seeds)
    state = jax.jit(jax.vmap(lambda k: trainer.init(k, hp)))(keys)
    collected = jax.jit(jax.vmap(
        lambda s, k: phases["collect"](s, hp, k, hp.critic_lambda)))(state, keys)
    return {
        "rollout": (jax.vmap(lambda s, k: phases["rollout"](s, hp, k)), (state, keys)),
        "collect": (jax.vmap(lambda s, k: phases["collect"](s, hp, k, hp.critic_lambda)),
                    (state, keys)),
        "learn": (jax.vmap(lambda s, c, k: phases["learn"](s, c, hp, k)),
                  (state, collected, keys)),
        "update": (jax.vmap(lambda s: trainer.update(s, hp)), (state,)),
    }


def profile(config: PPOConfig, env_name: str, num_seeds: int, repeats: int = 20
            ) -> dict[str, Any]:
    """Time and network FLOPs of each phase of one update at `num_seeds`."""
    trainer = make_train(config, *envs.make(env_name))
    seconds = {}
    for name, (fn, args) in phase_programs(trainer, num_seeds).items():
        compiled = jax.jit(fn).lower(*args).compile()
        seconds[name] = _timed(compiled, args, repeats)
    per_step = flops_per_env_step(config, trainer.spec)
    flops = {name: count * config.batch_size * num_seeds for name, count in per_step.items()}
    return {"seeds": num_seeds, "phases": split_phases(seconds, flops, config)}


def split_phases(seconds: dict[str, float], flops: dict[str, float], config: PPOConfig
                 ) -> dict[str, dict[str, float]]:
    """The table's rows: measured programs, differences where phases nest, and the
    network FLOPs (rollout / critic / learn / total) of each."""
    rows = {
        "rollout": (seconds["rollout"], flops["rollout"]),
        "critic + GAE": (max(seconds["collect"] - seconds["rollout"], 0.0), flops["critic"]),
        "learn (all minibatch steps)": (seconds["learn"], flops["learn"]),
        "metrics + rest": (max(seconds["update"] - seconds["collect"] - seconds["learn"], 0.0),
                           0.0),
        "update": (seconds["update"], flops["total"]),
    }
    steps = config.update_epochs * config.num_minibatches
    rows["one minibatch step"] = (seconds["learn"] / steps, flops["learn"] / steps)
    return {name: {"ms": 1e3 * t, "gflop": f / 1e9} for name, (t, f) in rows.items()}


def with_bounds(report: dict[str, Any], gflop_per_s: float) -> dict[str, Any]:
    """Add each phase's compute bound at `gflop_per_s` and how far it is from it."""
    for row in report["phases"].values():
        row["bound_ms"] = 1e3 * row["gflop"] / gflop_per_s
        row["x_bound"] = row["ms"] / row["bound_ms"] if row["bound_ms"] > 0 else None
    return report


def top_ops(trainer: Trainer, num_seeds: int, phase: str = "learn", calls: int = 5,
            count: int = 12) -> list[tuple[str, float]]:
    """The XLA operations that take the most time in one call of `phase`, from a
    `jax.profiler` trace: (HLO op name, milliseconds per call), summed over the
    threads that ran it. Names match `compiled.as_text()`."""
    import collections
    import tempfile
    from pathlib import Path

    fn, args = phase_programs(trainer, num_seeds)[phase]
    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(calls):
                jax.block_until_ready(compiled(*args))
        (path,) = Path(folder).rglob("*.xplane.pb")
        data = jax.profiler.ProfileData.from_file(str(path))
    totals: collections.Counter = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            if "XLAEigen" not in line.name:  # the threads that run compiled ops
                continue
            for event in line.events:
                if not event.name.startswith("ThunkExecutor"):
                    totals[event.name] += event.duration_ns
    return [(name, ns / calls / 1e6) for name, ns in totals.most_common(count)]


def markdown(reports: list[dict[str, Any]]) -> str:
    lines = ["| seeds | phase | ms per update | share | network GFLOP | bound ms | x bound |",
             "|---|---|---|---|---|---|---|"]
    for report in reports:
        total = report["phases"]["update"]["ms"]
        for name, row in report["phases"].items():
            share = "" if name in ("update", "one minibatch step") else \
                f"{100 * row['ms'] / total:.0f}%"
            distance = "" if row.get("x_bound") is None else f"{row['x_bound']:.1f}"
            lines.append(f"| {report['seeds']} | {name} | {row['ms']:.3f} | {share} | "
                         f"{row['gflop']:.4f} | {row.get('bound_ms', 0):.3f} | {distance} |")
    return "\n".join(lines)
