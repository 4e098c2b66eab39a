"""The learning-results table (README and manual): standard PPO on each environment
family, many seeds each.

    make results        # or: python experiments/learning_results.py [--only CartPole-v1]

Classic control and the custom environment run on this CPU; Breakout-MinAtar
(a CNN torso at the published 10M-step budget) and the Brax task at their full
budgets are GPU runs (`experiments/gpu/run_families.sh`), and `make results`
skips them on a CPU unless named with `--only` (`--cpu-budget` shrinks them to
what a CPU allows).

Writes experiments/learning_results.md (the table) and .json (per-seed finals).
Final return = mean return of the episodes that finished in the last 10% of
updates, per seed; the table shows its mean, std and min over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import re
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
# PureJaxRL's MinAtar PPO settings (64 envs x 128 steps, 8 minibatches, lr 5e-4,
# ReLU); the torso is the MinAtar conv encoder, chosen for image observations.
MINATAR = dict(num_envs=64, num_steps=128, num_minibatches=8, update_epochs=4, lr=5e-4,
               activation="relu", total_timesteps=10_000_000)
# Brax's published PPO settings for inverted_pendulum (discount 0.97, lr 3e-4,
# observation normalization, reward scaling), on jppo's rollout layout.
BRAX_PENDULUM = dict(num_envs=64, num_steps=32, num_minibatches=16, update_epochs=4, lr=3e-4,
                     gamma=0.97, obs_norm=True, reward_scaling=True, value_loss="mse",
                     total_timesteps=2_000_000)
# The memory check: CartPole with the velocities hidden (x and theta only), the
# same PPO with and without a GRU in each network. Whole env sequences per
# minibatch (8 envs, 4 minibatches of 2 envs x 128 steps).
MASKED = dict(num_envs=8, num_steps=128, num_minibatches=4, lr=5e-4, total_timesteps=500_000)
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
    "experiments.custom_env:make_env": dict(
        seeds=16, target=2500.0, config=PPOConfig(total_timesteps=200_000),
        note="default PPOConfig; DeliveryChain (experiments/custom_env.py), best return 2910"),
    "Breakout-MinAtar": dict(
        seeds=16, target=28.0, gpu=True, config=PPOConfig(**MINATAR),
        cpu_budget=dict(seeds=8, total_timesteps=1_000_000),
        note="64 envs x 128 steps, 8 minibatches, lr 5e-4, ReLU, CNN torso; target = the "
             "published gymnax-blines PPO return at 10M steps (gymnax README)"),
    "brax/inverted_pendulum": dict(
        seeds=16, target=900.0, gpu=True, config=PPOConfig(**BRAX_PENDULUM),
        cpu_budget=dict(seeds=8, total_timesteps=300_000),
        note="64 envs x 32 steps, 16 minibatches, lr 3e-4, gamma 0.97, obs norm, reward "
             "scaling, mse value loss (max return 1000)"),
    "CartPole-NoVelocity-v1 (feed-forward)": dict(
        env="CartPole-NoVelocity-v1", seeds=8, target=None, config=PPOConfig(**MASKED),
        note="velocities hidden; 8 envs x 128 steps, 4 minibatches, lr 5e-4; no memory"),
    "CartPole-NoVelocity-v1 (GRU)": dict(
        env="CartPole-NoVelocity-v1", seeds=8, target=400.0,
        config=PPOConfig(**MASKED, policy_rnn=64, value_rnn=64),
        note="velocities hidden; as the row above, with a 64-unit GRU in the policy and in "
             "the critic"),
}


def task_settings(task: dict, cpu_budget: bool) -> tuple[PPOConfig, int]:
    """The task's config and seed count, shrunk to its CPU budget if asked."""
    if not cpu_budget or "cpu_budget" not in task:
        return task["config"], task["seeds"]
    budget = task["cpu_budget"]
    config = dataclasses.replace(task["config"], total_timesteps=budget["total_timesteps"])
    return config, budget["seeds"]


def default_tasks() -> list[str]:
    """Every task on an accelerator; the CPU ones only on a CPU."""
    on_gpu = jax.default_backend() != "cpu"
    return [name for name, task in TASKS.items() if on_gpu or not task.get("gpu")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None, choices=list(TASKS))
    parser.add_argument("--cpu-budget", action="store_true",
                        help="run the GPU tasks at their smaller CPU budget")
    parser.add_argument("--json", type=Path, default=HERE / "learning_results.json")
    parser.add_argument("--merge", type=Path, metavar="JSON",
                        help="add the rows of another machine's results file, run nothing")
    args = parser.parse_args()
    only = args.only if args.only is not None else default_tasks()
    if args.merge:
        only = []

    json_path = args.json
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    if args.merge:
        results.update(json.loads(args.merge.read_text()))
        json_path.write_text(json.dumps(results, indent=2))
    for env_name in only:
        task = TASKS[env_name]
        config, seeds = task_settings(task, args.cpu_budget)
        print(f"== {env_name}: {seeds} seeds x {config.total_timesteps:,} steps")
        out = run(config, task.get("env", env_name), seeds,
                  fresh_run_dir("results-" + re.sub(r"[^\w.-]+", "-", env_name).strip("-")),
                  chunk_updates=100, progress="lines")
        final = final_episode_return(out.metrics())
        timing = out.timings[0]
        results[env_name] = {
            "machine": machine(),
            "seeds": seeds,
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


def machine() -> str:
    """Where a row was measured: the backend, the device kind and jax's version."""
    device = jax.devices()[0]
    kind = platform.machine() if device.platform == "cpu" else device.device_kind
    return f"{kind} {device.platform.upper()}, jax {jax.__version__}"


def table(results: dict) -> str:
    lines = [
        "Measured with `make results` (CPU rows) and `experiments/gpu/run_families.sh` "
        "(GPU rows).",
        "",
        "| environment | seeds | steps/seed | final return mean ± std | min seed | target "
        "| machine | config |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for env_name, r in results.items():
        where = r.get("machine", "x86_64 CPU, jax 0.10.2")
        lines.append(
            f"| {env_name} | {r['seeds']} | {r['total_timesteps']:,} | "
            f"{r['mean']:.1f} ± {r['std']:.1f} | {r['min']:.1f} | {target_text(r['target'])} | "
            f"{where} | {r['note']} |"
        )
    return "\n".join(lines) + "\n"


def target_text(target: float | None) -> str:
    """None: a row that shows what fails (no target to reach)."""
    return "—" if target is None else f">= {target:g}"


if __name__ == "__main__":
    main()
