"""The `jppo bench` cost of each policy-objective variant relative to standard PPO.

Each measurement is `jppo bench`'s own single measurement (`python -m jppo.bench --one
SEEDS --steps STEPS --set ...`: a fresh process, compile excluded, best of two runs);
the variants alternate within each round, and the median over rounds is reported, so
a noisy machine moves every variant alike.

    python experiments/modern_variants/objectives/bench.py            # 3 rounds, 16 seeds
    python experiments/modern_variants/objectives/bench.py --rounds 5 --seeds 64

Writes bench.json and prints a Markdown table (env-steps/s and its ratio to standard).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {  # the study's variants (objectives.toml), as --set overrides
    "standard": [],
    "kl_penalty": ["policy_loss=kl_penalty"],
    "dpo": ["policy_loss=dpo"],
    "adaptive_lr": ["kl_adaptive_lr=true", "lr_schedule=constant"],
    "return_percentile": ["advantage_norm=return_percentile"],
}


def measure(overrides: list[str], seeds: int, steps: int, env: str) -> float:
    """Env steps per second of one `jppo bench` measurement."""
    cmd = [sys.executable, "-m", "jppo.bench", "--one", str(seeds), "--env", env,
           "--steps", str(steps), *[a for o in overrides for a in ("--set", o)]]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench failed for {overrides}: {done.stderr.strip()[-500:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["env_steps_per_s"])


def table(medians: dict[str, float]) -> str:
    base = medians["standard"]
    rows = ["| variant | env-steps/s (median) | relative to standard |", "|---|---|---|"]
    rows += [f"| {name} | {sps:,.0f} | {sps / base:.2f} |" for name, sps in medians.items()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=65_536, help="env steps per seed")
    parser.add_argument("--env", default="CartPole-v1")
    args = parser.parse_args(argv)
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_ in range(args.rounds):
        for name, overrides in VARIANTS.items():
            samples[name].append(measure(overrides, args.seeds, args.steps, args.env))
            print(f"# round {round_ + 1}: {name} {samples[name][-1]:,.0f} env-steps/s",
                  file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    (HERE / "bench.json").write_text(json.dumps(
        {"env": args.env, "seeds": args.seeds, "steps_per_seed": args.steps,
         "rounds": args.rounds, "samples": samples, "medians": medians}, indent=1) + "\n")
    print(table(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
