"""Compile time and env-steps/s of one training program at several `scan_unroll` values.

Unrolling the rollout scan copies the env step into the program once per
unrolled step: cheap for a gymnax step, costly for a physics engine. Each round
builds `jax.jit(jax.vmap(train))` afresh per unroll value (alternating the order
between rounds), times `lower().compile()` and then one run; the figures are
medians over the rounds. The result chooses the automatic default per env family
(`max_scan_unroll` on an env caps it on a GPU).

    python experiments/scan_unroll.py --env brax/inverted_pendulum --unrolls 1 8 \\
        --seeds 16 --rounds 3 --out experiments/scan_unroll.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax

import jppo
from jppo import envs
from jppo.runs.runner import versions


def measure(env_name: str, unroll: int, seeds: int, steps: int) -> dict:
    """Seconds to compile the seed-vmapped program, then its env-steps/s."""
    env, params = envs.make(env_name)
    config = jppo.PPOConfig(num_envs=16, num_steps=32, num_minibatches=4, update_epochs=2,
                            total_timesteps=steps, scan_unroll=unroll, eval_every=0)
    program = jax.jit(jax.vmap(jppo.make_train(config, env, params)))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    start = time.perf_counter()
    compiled = program.lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - start
    return {"compile_s": compile_s, "env_steps_per_s": seeds * config.total_timesteps / run_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="brax/inverted_pendulum")
    parser.add_argument("--unrolls", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=16 * 32 * 4, help="env steps per seed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    samples: dict[int, list[dict]] = {u: [] for u in args.unrolls}
    for round_ in range(args.rounds):
        order = args.unrolls if round_ % 2 == 0 else args.unrolls[::-1]
        for unroll in order:
            samples[unroll].append(measure(args.env, unroll, args.seeds, args.steps))
            print(f"round {round_} scan_unroll={unroll}: {samples[unroll][-1]}", flush=True)
    rows = [{"scan_unroll": u, "rounds": len(s),
             "compile_s": round(statistics.median(m["compile_s"] for m in s), 2),
             "env_steps_per_s": round(statistics.median(m["env_steps_per_s"] for m in s))}
            for u, s in samples.items()]
    result = {"env": args.env, "seeds": args.seeds, "steps_per_seed": args.steps,
              "backend": jax.default_backend(), "versions": versions(), "rows": rows}
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
