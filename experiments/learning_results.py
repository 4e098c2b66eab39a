"""The README's learning table: standard PPO on three gymnax tasks, many seeds each.

    make results        # or: python experiments/learning_results.py [--only CartPole-v1]

Writes experiments/learning_results.md (the table) and .json (per-seed finals).
Final return = mean return of the episodes that finished in the last 10% of
updates, per seed; the table shows its mean, std and min over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
from pathlib import Path

import jax
import numpy as np

from jppo import PPOConfig
from jppo.analysis.metrics import final_episode_return
from jppo.runs.results import fresh_run_dir
from jppo.runs.runner import run

HERE = Path(__file__).parent

# Pendulum and Acrobot use the per-task settings of gymnax-blines' PPO configs
# (32x16 and 16x32 rollouts, constant lr 5e-4, grad norm 1.0, ReLU) with a
# state-independent log-std. Pendulum adds reward scaling and an unclipped value
# loss: without them 16 seeds averaged -298.8 +- 97.7 (worst seed -571.5).
BLINES = dict(
    update_epochs=4, num_minibatches=4, lr=5e-4, lr_schedule="constant",
    max_grad_norm=1.0, activation="relu",
)
TASKS = {
    "CartPole-v1": dict(seeds=64, config=PPOConfig(), target=470.0,
                        note="default PPOConfig"),
    "Acrobot-v1": dict(seeds=16, target=-100.0,
                       config=PPOConfig(num_envs=16, num_steps=32, total_timesteps=500_000,
                                        **BLINES),
                       note="16 envs x 32 steps, constant lr 5e-4, grad norm 1.0, ReLU"),
    "Pendulum-v1": dict(seeds=16, target=-300.0,
                        config=PPOConfig(num_envs=32, num_steps=16, total_timesteps=1_000_000,
                                         value_loss="mse", reward_scaling=True, **BLINES),
                        note="32 envs x 16 steps, constant lr 5e-4, grad norm 1.0, ReLU, "
                             "mse value loss, reward scaling"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=list(TASKS), choices=list(TASKS))
    args = parser.parse_args()

    json_path = HERE / "learning_results.json"
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    for env_name in args.only:
        task = TASKS[env_name]
        config: PPOConfig = task["config"]
        print(f"== {env_name}: {task['seeds']} seeds x {config.total_timesteps:,} steps")
        out = run(config, env_name, task["seeds"], fresh_run_dir(f"results-{env_name}"),
                  chunk_updates=100, progress="lines")
        final = final_episode_return(out.metrics())
        timing = out.timings[0]
        results[env_name] = {
            "seeds": task["seeds"],
            "total_timesteps": config.total_timesteps,
            "final_return_per_seed": [round(float(x), 2) for x in final],
            "mean": float(np.mean(final)),
            "std": float(np.std(final)),
            "min": float(np.min(final)),
            "target": task["target"],
            "compile_s": timing.compile_seconds,
            "run_s": timing.run_seconds,
            "note": task["note"],
            "config_changes": {
                f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                if getattr(config, f.name) != getattr(PPOConfig(), f.name)
            },
        }
        json_path.write_text(json.dumps(results, indent=2))
    (HERE / "learning_results.md").write_text(table(results))
    print(table(results))


def table(results: dict) -> str:
    lines = [
        f"Measured with `make results` on {platform.machine()} {jax.default_backend().upper()} "
        f"({jax.device_count()} device), jax {jax.__version__}.",
        "",
        "| environment | seeds | steps/seed | final return mean ± std | min seed | target "
        "| config |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for env_name, r in results.items():
        lines.append(
            f"| {env_name} | {r['seeds']} | {r['total_timesteps']:,} | "
            f"{r['mean']:.1f} ± {r['std']:.1f} | {r['min']:.1f} | >= {r['target']:g} | "
            f"{r['note']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
