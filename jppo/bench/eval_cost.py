"""`jppo bench --eval-cost`: what the default in-program evaluation costs.

The same training program is compiled twice, with the config's evaluation
schedule and with `eval_every=0`, for the same seeds, and both are run whole
(`jax.jit(jax.vmap(train))`, the program `jppo bench` times) in rounds that
alternate which goes first. The cost is the median over rounds of
1 - (env-steps/s with evaluation) / (env-steps/s without), so a slow drift of
a shared machine hits both sides of a round alike; the same from the process's
CPU time is reported beside it, which other jobs on a shared machine disturb
less than the wall time (on an idle one the two agree).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import jax

from jppo import envs
from jppo.core.config import PPOConfig
from jppo.core.train import make_train
from jppo.runs.mesh import seed_keys


def compiled_train(env_name: str, config: PPOConfig, keys: jax.Array) -> tuple[Any, float]:
    """The vmapped whole-run program for `config`, compiled, and its compile seconds."""
    trainer = make_train(config, *envs.make(env_name))
    start = time.perf_counter()
    program = jax.jit(jax.vmap(trainer)).lower(keys).compile()
    return program, time.perf_counter() - start


def eval_cost(env_name: str, config: PPOConfig, num_seeds: int, rounds: int = 3
              ) -> dict[str, Any]:
    """Alternating whole runs with and without evaluation; medians and the cost."""
    if rounds < 1 or num_seeds < 1:
        raise ValueError(f"seeds={num_seeds} x rounds={rounds} is invalid: allowed are "
                         "seeds >= 1 and rounds >= 1")
    trainer = make_train(config, *envs.make(env_name))
    if not trainer.eval_every:
        raise ValueError(f"eval_every={config.eval_every} is invalid for --eval-cost: this "
                         f"run of {config.num_updates} updates on {env_name} evaluates never; "
                         "allowed is a config that evaluates (eval_every None or >= 1)")
    keys = seed_keys(num_seeds)
    sides = {"on": config, "off": config.replace(eval_every=0)}
    programs, compile_s = {}, {}
    for name, side in sides.items():
        programs[name], compile_s[name] = compiled_train(env_name, side, keys)
    env_steps = num_seeds * config.num_updates * config.batch_size
    rates: dict[str, list[float]] = {"on": [], "off": []}
    cpu_s: dict[str, list[float]] = {"on": [], "off": []}
    for round_ in range(rounds):
        for name in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
            start, cpu_start = time.perf_counter(), time.process_time()
            jax.block_until_ready(programs[name](keys))
            rates[name].append(env_steps / (time.perf_counter() - start))
            cpu_s[name].append(time.process_time() - cpu_start)
    costs = [1.0 - on / off for on, off in zip(rates["on"], rates["off"], strict=True)]
    cpu_costs = [1.0 - off / on for on, off in zip(cpu_s["on"], cpu_s["off"], strict=True)]
    return {
        "seeds": num_seeds,
        "env_steps": env_steps,
        "eval_every": trainer.eval_every,
        "evaluations": config.num_updates // trainer.eval_every,
        "eval_episodes": config.eval_episodes,
        "env_steps_per_s_on": round(statistics.median(rates["on"])),
        "env_steps_per_s_off": round(statistics.median(rates["off"])),
        "cost_fraction_median": round(statistics.median(costs), 4),
        "cost_fractions": [round(c, 4) for c in costs],
        "cpu_cost_fraction_median": round(statistics.median(cpu_costs), 4),
        "cpu_s_on": [round(c, 4) for c in cpu_s["on"]],
        "cpu_s_off": [round(c, 4) for c in cpu_s["off"]],
        "rates_on": [round(r) for r in rates["on"]],
        "rates_off": [round(r) for r in rates["off"]],
        "compile_s": {name: round(s, 2) for name, s in compile_s.items()},
    }
