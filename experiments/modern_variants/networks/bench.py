"""`jppo bench` cost of each network variant relative to standard PPO.

    python experiments/modern_variants/networks/bench.py [--rounds 3] [--seeds 16]

Each variant is one `jppo bench` process (its own compile; throughput is the
steady-state env-steps/s after it). Rounds alternate standard PPO and every
variant in the same session, so a change of machine load hits both; the
figure is the median over rounds of variant / standard measured in that round.
Writes bench.json next to this file and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
JPPO = Path(sys.executable).parent / "jppo"
VARIANTS: dict[str, list[str]] = {
    "standard": [],
    "quantile": ["value_loss=quantile"],
    "simba_value": ["value_block=simba"],
    "policy_layer_norm": ["policy_layer_norm=true", "value_layer_norm=true"],
    "shrink_perturb": ["shrink_perturb_every=20"],
    "pfo": ["pfo=true"],
    "popart": ["value_target=popart"],
    "hl_gauss": ["value_target=symlog", "value_loss=hl_gauss"],
}


def throughput(changes: list[str], seeds: int, steps: int) -> float:
    """env-steps/s of one `jppo bench` run of standard PPO with `changes`."""
    command = [str(JPPO), "bench", "--seeds", str(seeds), "--steps", str(steps)]
    for change in changes:
        command += ["--set", change]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout)["results"][0]["env_steps_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=51_200)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, changes in VARIANTS.items():
            rates[name].append(throughput(changes, args.seeds, args.steps))
    ratios = {name: [v / s for v, s in zip(rates[name], rates["standard"], strict=True)]
              for name in VARIANTS}
    result = {"seeds": args.seeds, "steps": args.steps, "rounds": args.rounds,
              "env_steps_per_s": rates,
              "median_ratio_to_standard": {n: statistics.median(r) for n, r in ratios.items()}}
    (HERE / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| variant | env-steps/s (median) | relative to standard |\n| --- | ---: | ---: |")
    for name in VARIANTS:
        print(f"| {name} | {statistics.median(rates[name]):,.0f} | "
              f"{result['median_ratio_to_standard'][name]:.2f} |")


if __name__ == "__main__":
    main()
