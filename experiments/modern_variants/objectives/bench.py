"""The throughput cost of each policy-objective variant relative to standard PPO.

`jppo bench --seeds 16 --set policy_loss=dpo` measures one variant in a fresh process
(compile excluded, best of two runs); on a shared, noisy machine the variants must be
measured side by side instead. This script compiles each variant's seed-vmapped
`train` once, exactly as `jppo bench` does, then times the variants in alternation,
round after round, and reports the median per variant and its ratio to standard,
so a change of load moves every variant alike.

    python experiments/modern_variants/objectives/bench.py            # 5 rounds, 16 seeds
    python experiments/modern_variants/objectives/bench.py --rounds 9 --seeds 64

Writes bench.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax

from jppo import envs
from jppo.core.config import make_config
from jppo.core.train import make_train
from jppo.runs.experiment import parse_assignments
from jppo.runs.runner import seed_keys

HERE = Path(__file__).resolve().parent
VARIANTS = {  # the study's variants (objectives.toml), as --set overrides
    "standard": [],
    "kl_penalty": ["policy_loss=kl_penalty"],
    "dpo": ["policy_loss=dpo"],
    "adaptive_lr": ["kl_adaptive_lr=true", "lr_schedule=constant"],
    "return_percentile": ["advantage_norm=return_percentile"],
}


def compiled_variant(overrides: list[str], seeds: int, steps: int, env: str):
    """(the compiled seed-vmapped train, its keys, env steps per call, compile seconds)."""
    config = make_config(**{**parse_assignments(overrides, "--set"), "total_timesteps": steps})
    trainer = make_train(config, *envs.make(env))
    keys = seed_keys(seeds)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(trainer)).lower(keys).compile()
    return compiled, keys, seeds * config.num_updates * config.batch_size, \
        time.perf_counter() - start


def timed(compiled, keys) -> float:
    start = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    return time.perf_counter() - start


def table(medians: dict[str, float]) -> str:
    base = medians["standard"]
    rows = ["| variant | env-steps/s (median) | relative to standard |", "|---|---|---|"]
    rows += [f"| {name} | {sps:,.0f} | {sps / base:.2f} |" for name, sps in medians.items()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=32_768, help="env steps per seed")
    parser.add_argument("--env", default="CartPole-v1")
    args = parser.parse_args(argv)
    programs = {name: compiled_variant(o, args.seeds, args.steps, args.env)
                for name, o in VARIANTS.items()}
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(args.rounds):
        for name, (compiled, keys, env_steps, _) in programs.items():
            samples[name].append(env_steps / timed(compiled, keys))
            print(f"# round {round_ + 1}: {name} {samples[name][-1]:,.0f} env-steps/s",
                  file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    (HERE / "bench.json").write_text(json.dumps(
        {"env": args.env, "seeds": args.seeds, "steps_per_seed": args.steps,
         "rounds": args.rounds, "backend": jax.default_backend(),
         "compile_s": {name: round(p[3], 1) for name, p in programs.items()},
         "samples": samples, "medians": medians}, indent=1) + "\n")
    print(table(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
