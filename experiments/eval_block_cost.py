"""What one evaluation costs against the training between two, from a trained state.

A whole default run (976 updates x 64 seeds) takes minutes per side on a
2-core CPU, so this measures its repeating unit instead: one block of the
default schedule (`eval_every` updates, then an evaluation) against the same
updates without it, both from the state a short warm-up run ended with (its
greedy episodes run to CartPole's 500-step limit: evaluation at its dearest),
alternating, median over rounds.

    python experiments/eval_block_cost.py --seeds 64 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax

from jppo import envs
from jppo.core.config import PPOConfig
from jppo.core.train import make_train
from jppo.runs.mesh import seed_keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-steps", type=int, default=65_536, help="env steps per seed")
    args = parser.parse_args(argv)
    env, env_params = envs.make("CartPole-v1")
    config = PPOConfig()  # the default experiment's config
    keys = seed_keys(args.seeds)
    warm = make_train(config.replace(total_timesteps=args.warm_steps, eval_every=0), env,
                      env_params)
    state = jax.block_until_ready(jax.jit(jax.vmap(warm))(keys).state)
    on = make_train(config, env, env_params)
    every = on.eval_every
    off = make_train(config.replace(eval_every=0), env, env_params)
    hparams = config.hparams()
    programs = {name: jax.jit(jax.vmap(lambda s, t=trainer: t.run_updates(s, hparams, every)))
                .lower(state).compile() for name, trainer in (("on", on), ("off", off))}
    seconds: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    for round_ in range(args.rounds):
        for name in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
            start, cpu_start = time.perf_counter(), time.process_time()
            jax.block_until_ready(programs[name](state))
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    costs = [1 - off_s / on_s for on_s, off_s in zip(seconds["on"], seconds["off"], strict=True)]
    median = {name: statistics.median(values) for name, values in cpu.items()}
    print(json.dumps({"seeds": args.seeds, "eval_every": every,
                      "evaluations_per_run": config.num_updates // every,
                      "block_s_on": [round(s, 3) for s in seconds["on"]],
                      "block_s_off": [round(s, 3) for s in seconds["off"]],
                      "cost_fractions": [round(c, 4) for c in costs],
                      "cost_fraction_median": round(statistics.median(costs), 4),
                      "cpu_s_on": [round(s, 3) for s in cpu["on"]],
                      "cpu_s_off": [round(s, 3) for s in cpu["off"]],
                      "cpu_cost_fraction_of_medians": round(1 - median["off"] / median["on"], 4)},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
