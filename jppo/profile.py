"""`jppo bench --profile`: where the time of one PPO update goes.

Each phase of `Trainer.update` (see `Trainer.phases`) is compiled on its own,
vmapped over the seeds, and timed as the median of repeated calls:

- rollout: `num_steps` sequential policy + env steps (the `lax.scan`);
- critic + GAE: learner rewards, the two batched critic passes, the reverse
  GAE scan and target tracking (collect minus rollout);
- learn: the `update_epochs` x `num_minibatches` optimizer steps, with the
  per-minibatch diagnostics;
- metrics + rest: the whole update minus collect and learn.

XLA's cost analysis gives each phase's FLOPs and bytes accessed; divided by the
device's measured matmul rate and copy bandwidth they give the time the phase
could not go below (its bound), so the table says how far each phase is from it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import envs
from jppo.config import PPOConfig
from jppo.runner import seed_keys
from jppo.train import make_train


def copy_gbytes_per_s(megabytes: int = 256, repeats: int = 10) -> float:
    """Measured device copy bandwidth, counting bytes read plus bytes written."""
    x = jnp.ones((megabytes * 2**20 // 4,), jnp.float32)
    copy = jax.jit(lambda a: a + 1.0)
    jax.block_until_ready(copy(x))
    start = time.perf_counter()
    for _ in range(repeats):
        y = copy(x)
    jax.block_until_ready(y)
    return 2 * x.nbytes * repeats / (time.perf_counter() - start) / 1e9


def _timed(compiled: Callable, args: tuple, repeats: int) -> float:
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cost(compiled: Any) -> tuple[float, float]:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):  # older jax: one dict per computation
        analysis = analysis[0] if analysis else {}
    analysis = analysis or {}
    return float(analysis.get("flops", 0.0)), float(analysis.get("bytes accessed", 0.0))


def phase_programs(config: PPOConfig, env_name: str, num_seeds: int
                   ) -> dict[str, tuple[Callable, tuple]]:
    """name -> (vmapped function, its arguments) for each phase of one update."""
    env, env_params = envs.make(env_name)
    trainer = make_train(config, env, env_params)
    hp = config.hparams()
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
    """Time, FLOPs and bytes of each phase of one update at `num_seeds`."""
    measured = {}
    for name, (fn, args) in phase_programs(config, env_name, num_seeds).items():
        compiled = jax.jit(fn).lower(*args).compile()
        measured[name] = (_timed(compiled, args, repeats), *_cost(compiled))
    return {"seeds": num_seeds, "phases": split_phases(measured, config)}


def split_phases(measured: dict[str, tuple[float, float, float]], config: PPOConfig
                 ) -> dict[str, dict[str, float]]:
    """The table's rows from the measured programs: differences where phases nest."""
    def minus(a: tuple, *others: tuple) -> tuple:
        return tuple(max(a[i] - sum(o[i] for o in others), 0.0) for i in range(3))

    rows = {
        "rollout": measured["rollout"],
        "critic + GAE": minus(measured["collect"], measured["rollout"]),
        "learn (all minibatch steps)": measured["learn"],
        "metrics + rest": minus(measured["update"], measured["collect"], measured["learn"]),
        "update": measured["update"],
    }
    steps = config.update_epochs * config.num_minibatches
    learn = measured["learn"]
    rows["one minibatch step"] = tuple(v / steps for v in learn)
    return {name: {"ms": 1e3 * t, "gflop": f / 1e9, "mbytes": b / 2**20}
            for name, (t, f, b) in rows.items()}


def with_bounds(report: dict[str, Any], gflop_per_s: float, gbyte_per_s: float
                ) -> dict[str, Any]:
    """Add each phase's bound (max of compute time and memory time) and its distance."""
    for row in report["phases"].values():
        bound_ms = 1e3 * max(row["gflop"] / gflop_per_s, row["mbytes"] * 2**20 / 1e9
                             / gbyte_per_s)
        row["bound_ms"] = bound_ms
        row["x_bound"] = row["ms"] / bound_ms if bound_ms > 0 else float("inf")
    return report


def markdown(reports: list[dict[str, Any]]) -> str:
    lines = ["| seeds | phase | ms per update | share | GFLOP | MB accessed | bound ms | x bound |",
             "|---|---|---|---|---|---|---|---|"]
    for report in reports:
        total = report["phases"]["update"]["ms"]
        for name, row in report["phases"].items():
            share = "" if name in ("update", "one minibatch step") else \
                f"{100 * row['ms'] / total:.0f}%"
            lines.append(f"| {report['seeds']} | {name} | {row['ms']:.3f} | {share} | "
                         f"{row['gflop']:.4f} | {row['mbytes']:.2f} | "
                         f"{row.get('bound_ms', 0):.4f} | {row.get('x_bound', 0):.0f} |")
    return "\n".join(lines)
