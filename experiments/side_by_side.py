"""jppo programs (and PureJaxRL's ppo_rnn) side by side on CartPole-v1, alternating.

Each program is `jax.jit(jax.vmap(train))` over the same seeds, compiled once
(compile time reported), then timed in rounds that alternate which program
goes first; the figure is the median env-steps/s (all seeds together) over the
rounds. Programs:

* `jppo:FIELD=VALUE,...`: jppo's `make_train` at CartPole-v1 with those knobs
  (`eval_every=0`: the peers do not evaluate);
* `before:FIELD=VALUE,...`: the same from an older jppo copied to a package
  named `jppo_before` on `--before-path` (imports renamed);
* `purejaxrl`: `make_train` of PureJaxRL's `ppo_rnn.py` from `--purejaxrl-path`
  (a local copy; nothing of it lives in this repository).

    python experiments/side_by_side.py --seeds 2 --steps 8192 \\
        --purejaxrl-path /tmp/pjrl purejaxrl "jppo:torso_hidden=(128,),torso_rnn=128,..."
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import statistics
import sys
import time

import jax

from jppo import envs

PEER = {"LR": 2.5e-4, "NUM_ENVS": 4, "NUM_STEPS": 128, "UPDATE_EPOCHS": 4,
        "NUM_MINIBATCHES": 4, "GAMMA": 0.99, "GAE_LAMBDA": 0.95, "CLIP_EPS": 0.2,
        "ENT_COEF": 0.01, "VF_COEF": 0.5, "MAX_GRAD_NORM": 0.5, "ENV_NAME": "CartPole-v1",
        "ANNEAL_LR": True, "DEBUG": False}


def knobs(text: str) -> dict:
    """`a=1,b=(128,)` -> {"a": 1, "b": (128,)} (values are Python literals or names)."""
    fields, depth, current = [], 0, ""
    for char in text:
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0:
            fields.append(current)
            current = ""
        else:
            current += char
    fields += [current] if current else []
    out = {}
    for field in fields:
        name, value = field.split("=", 1)
        try:
            out[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[name.strip()] = value.strip()
    return out


def train_of(spec: str, steps: int):
    if spec == "purejaxrl":
        return importlib.import_module("ppo_rnn").make_train({**PEER, "TOTAL_TIMESTEPS": steps})
    package, _, fields = spec.partition(":")
    jppo = importlib.import_module({"jppo": "jppo", "before": "jppo_before"}[package])
    config = jppo.PPOConfig(**{"eval_every": 0, **knobs(fields), "total_timesteps": steps})
    return jppo.make_train(config, *envs.make("CartPole-v1"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("programs", nargs="+")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8192, help="env steps per seed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--purejaxrl-path", default=None)
    parser.add_argument("--before-path", default=None)
    args = parser.parse_args(argv)
    sys.path[:0] = [p for p in (args.purejaxrl_path, args.before_path) if p]
    keys = jax.random.split(jax.random.PRNGKey(30), args.seeds)
    compiled, compile_s = {}, {}
    for spec in args.programs:
        start = time.perf_counter()
        compiled[spec] = jax.jit(jax.vmap(train_of(spec, args.steps))).lower(keys).compile()
        compile_s[spec] = round(time.perf_counter() - start, 1)
        print(f"# compiled {spec} in {compile_s[spec]} s", file=sys.stderr, flush=True)
    rates: dict[str, list[float]] = {spec: [] for spec in args.programs}
    cpu_s: dict[str, list[float]] = {spec: [] for spec in args.programs}
    for round_ in range(args.rounds):
        order = args.programs[round_ % len(args.programs):] + args.programs[
            :round_ % len(args.programs)]
        for spec in order:
            start, cpu_start = time.perf_counter(), time.process_time()
            jax.block_until_ready(compiled[spec](keys))
            rates[spec].append(args.seeds * args.steps / (time.perf_counter() - start))
            cpu_s[spec].append(time.process_time() - cpu_start)
        print(f"# round {round_}: " + ", ".join(f"{s}: {rates[s][-1]:,.0f}" for s in order),
              file=sys.stderr, flush=True)
    print(json.dumps({"seeds": args.seeds, "steps_per_seed": args.steps, "rounds": args.rounds,
                      "programs": [{"program": s, "compile_s": compile_s[s],
                                    "env_steps_per_s_median": round(statistics.median(r)),
                                    "env_steps_per_s": [round(x) for x in r],
                                    "cpu_s_median": round(statistics.median(cpu_s[s]), 2),
                                    "cpu_s": [round(x, 2) for x in cpu_s[s]]}
                                   for s, r in rates.items()]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
