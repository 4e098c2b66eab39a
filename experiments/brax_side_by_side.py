"""jppo against Brax's own PPO trainer on one Brax or Playground env, same config and budget.

`--env` is a Brax id (`inverted_pendulum`, jppo's `brax/inverted_pendulum`) or a
MuJoCo Playground name as jppo spells it (`playground/CartpoleBalance`). A
Playground env is loaded once per side the same way (DM Control Suite, MJX's
`impl="jax"`): jppo through `playground/<EnvName>`, Brax's trainer with
Playground's own `wrapper.wrap_for_brax_training`, as Playground's notebooks run it.

Brax's trainer (`brax.training.agents.ppo.train`, installed with the brax extra)
runs one seed per call, as its users run it; jppo runs all seeds in one
vmapped program. Both are timed end to end (compiles included) in the same
process, alternating which goes first per round, and both report the return
of their last deterministic evaluation (Brax: `eval/episode_reward` over
`num_eval_envs` episodes with `deterministic_eval=True`; jppo: `eval_return`
over `eval_episodes`). The config is Brax's, mapped onto jppo's knobs:

- `num_envs`, `unroll_length`, `batch_size`, `num_minibatches` -> `num_envs`,
  `num_steps = unroll_length * batch_size * num_minibatches / num_envs`,
  `num_minibatches`; `num_updates_per_batch` -> `update_epochs`;
- `learning_rate` (constant), Adam eps 1e-8 -> `lr`, `lr_schedule="constant"`,
  `adam_eps=1e-8`;
- `discounting`, `gae_lambda`, `clipping_epsilon`, `entropy_cost` -> `gamma`,
  `gae_lambda`, `clip_eps`, `ent_coef`;
- value loss `0.5 * vf_loss_coefficient * mean(err^2)`, no clip -> `value_loss="mse"`
  (0.5 mean err^2), `vf_coef`;
- `normalize_advantage=True` -> `advantage_norm="minibatch"`;
  `normalize_observations=True` -> `obs_norm=True`; `max_grad_norm=None` ->
  `max_grad_norm=inf`;
- `bootstrap_on_timeout=False` (a time limit ends the return) -> `truncation="terminal"`;
- policy 4x32, value 5x256, swish, std `softplus(x) + 0.001` -> `policy_hidden`,
  `value_hidden`, `activation="silu"`, `policy_std="softplus"`.

What cannot be matched: Brax squashes actions with tanh (jppo clips them to the
action bounds), computes GAE per unroll of `unroll_length` steps (jppo over its
whole rollout), and shuffles whole unrolls into minibatches (jppo shuffles
steps). Brax's `reward_scaling` multiplies rewards and is left at 1.

Brax 0.14's trainer calls `jax.device_put_replicated`, which jax 0.10 removed;
this script puts back a stand-in (a stack along a new device axis, what `pmap`
takes) before importing it. Nothing of Brax's trainer is changed.

    python experiments/brax_side_by_side.py --env inverted_double_pendulum \\
        --steps 1000000 --seeds 4 --rounds 1 --out experiments/brax_side_by_side.json
    python experiments/brax_side_by_side.py --env playground/CartpoleBalance \\
        --steps 524288 --seeds 2 --evaluations 4 --rounds 1 \\
        --out experiments/brax_side_by_side_playground_cartpole_balance.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jppo
from jppo import envs
from jppo.analysis.metrics import final_eval_return
from jppo.analysis.stats import cell_statistics
from jppo.runs import results
from jppo.runs.provenance import versions

BRAX = {"num_envs": 64, "unroll_length": 16, "batch_size": 64, "num_minibatches": 8,
        "num_updates_per_batch": 4, "learning_rate": 3e-4, "discounting": 0.97,
        "gae_lambda": 0.95, "clipping_epsilon": 0.3, "entropy_cost": 1e-2,
        "vf_loss_coefficient": 0.5, "normalize_observations": True, "episode_length": 1000,
        "reward_scaling": 1.0, "normalize_advantage": True, "bootstrap_on_timeout": False,
        "num_eval_envs": 32, "deterministic_eval": True}
POLICY, VALUE = (32,) * 4, (256,) * 5  # Brax's default network sizes


def jppo_config(steps: int, evaluations: int) -> jppo.PPOConfig:
    """Brax's config (`BRAX`) in jppo's knobs; see the module docstring's table."""
    b = BRAX
    rollout = b["unroll_length"] * b["batch_size"] * b["num_minibatches"] // b["num_envs"]
    updates = steps // (rollout * b["num_envs"])
    return jppo.PPOConfig(
        num_envs=b["num_envs"], num_steps=rollout, num_minibatches=b["num_minibatches"],
        update_epochs=b["num_updates_per_batch"], total_timesteps=steps, lr=b["learning_rate"],
        lr_schedule="constant", adam_eps=1e-8, gamma=b["discounting"],
        gae_lambda=b["gae_lambda"], clip_eps=b["clipping_epsilon"], ent_coef=b["entropy_cost"],
        vf_coef=b["vf_loss_coefficient"], value_loss="mse", advantage_norm="minibatch",
        obs_norm=b["normalize_observations"], max_grad_norm=math.inf, truncation="terminal",
        policy_hidden=POLICY, value_hidden=VALUE, activation="silu", policy_std="softplus",
        eval_every=max(1, updates // evaluations), eval_episodes=b["num_eval_envs"])


def brax_trainer():
    """Brax's `ppo.train`, with the one jax function it needs and jax 0.10 lacks."""
    if not hasattr(jax, "device_put_replicated"):
        jax.device_put_replicated = lambda tree, devices: jax.tree.map(
            lambda x: jnp.stack([jnp.asarray(x)] * len(devices)), tree)
    from brax.training.agents.ppo import train as ppo

    return ppo.train


def jppo_name(env_name: str) -> str:
    """The name jppo resolves: a Playground name as given, a Brax id under `brax/`."""
    return env_name if envs.is_playground_name(env_name) else f"brax/{env_name}"


def brax_side_env(env_name: str) -> tuple[object, dict]:
    """The raw env Brax's trainer gets, and the extra `train` arguments it needs."""
    if envs.is_playground_name(env_name):
        from mujoco_playground import wrapper

        env, _ = envs.resolve(env_name)  # the same raw env jppo steps (impl="jax")
        return env.brax_env, {"wrap_env_fn": wrapper.wrap_for_brax_training}
    from brax import envs as brax_envs

    return brax_envs.get_environment(env_name, backend="generalized"), {}


def run_brax(env_name: str, steps: int, seeds: int, evaluations: int) -> dict:
    """Brax's trainer once per seed (as its users run seeds): last evaluation each."""
    train = brax_trainer()
    start, finals = time.perf_counter(), []
    for seed in range(seeds):
        env, extra = brax_side_env(env_name)
        _, _, metrics = train(environment=env, num_timesteps=steps, seed=seed,
                              num_evals=evaluations + 1, **BRAX, **extra)
        finals.append(float(metrics["eval/episode_reward"]))
    return {"wall_s": time.perf_counter() - start, "per_seed": finals}


def run_jppo(env_name: str, steps: int, seeds: int, evaluations: int) -> dict:
    """All seeds in one jppo program (compile included): last evaluation each."""
    config = jppo_config(steps, evaluations)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        jppo.run(config, jppo_name(env_name), seeds, out, progress="off")
        wall = time.perf_counter() - start
        frame = results.read_metrics(Path(out))
        variant, env = results.groups(frame)[0]
        per_seed = final_eval_return(results.metric_arrays(frame, variant, env))
    return {"wall_s": wall, "per_seed": [float(v) for v in per_seed]}


def summary(samples: list[dict]) -> dict:
    """Returns over seeds (mean, 95% bootstrap CI) and the median wall time."""
    per_seed = np.asarray(samples[0]["per_seed"], np.float64)  # every round: same seeds
    cell = cell_statistics(per_seed, reps=2000, confidence=0.95, seed=0)
    return {"per_seed": [round(float(v), 2) for v in per_seed],
            "mean": round(cell["mean"], 2), "ci_low": round(cell["mean_lo"], 2),
            "ci_high": round(cell["mean_hi"], 2),
            "wall_s": [round(s["wall_s"], 1) for s in samples],
            "wall_s_median": round(float(np.median([s["wall_s"] for s in samples])), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="inverted_double_pendulum")
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps per seed")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--evaluations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runners = {"brax": run_brax, "jppo": run_jppo}
    samples: dict[str, list[dict]] = {name: [] for name in runners}
    for round_ in range(args.rounds):
        for name in (list(runners) if round_ % 2 == 0 else list(runners)[::-1]):
            samples[name].append(runners[name](args.env, args.steps, args.seeds,
                                               args.evaluations))
            print(f"round {round_} {name}: {samples[name][-1]}", flush=True)
    record = {"env": jppo_name(args.env), "steps_per_seed": args.steps, "seeds": args.seeds,
              "brax_config": BRAX, "backend": jax.default_backend(), "versions": versions(),
              **{name: summary(s) for name, s in samples.items()}}
    print(json.dumps(record, indent=2))
    if args.out:
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
