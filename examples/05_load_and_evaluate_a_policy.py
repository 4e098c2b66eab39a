"""Load a trained policy, act with it, evaluate it, and round-trip it through a
policy file: everything a finished run is good for after training.

    python examples/05_load_and_evaluate_a_policy.py            # 4 seeds, 100k steps each
    python examples/05_load_and_evaluate_a_policy.py --seeds 2 --total-timesteps 4096

`jppo export RUN --seed S --out FILE` and `jppo eval RUN` do the same from a terminal.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

import jppo
from jppo import envs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-timesteps", type=float, default=100_000,
                        help="env steps per seed (the budget)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--out", default=None, help="run directory; default: a temporary one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(args.out or Path(scratch) / "run")
        config = jppo.PPOConfig(total_timesteps=int(args.total_timesteps))
        jppo.run(config, "CartPole-v1", num_seeds=args.seeds, out_dir=run_dir, progress="off")

        policy = jppo.load_policy(run_dir, seed=args.seeds - 1)  # the run's last seed
        env, params = envs.make("CartPole-v1")
        obs, _ = env.reset(jax.random.PRNGKey(0), params)
        act = jax.jit(policy.act, static_argnames="deterministic")
        print("greedy action at the first observation:", int(act(obs, jax.random.PRNGKey(1))))

        returns = np.asarray(policy.evaluate(jax.random.PRNGKey(2), episodes=16).returns)
        print(f"loaded from the run: mean return {returns.mean():.1f} over 16 episodes")

        file = Path(scratch) / "cartpole.policy"
        policy.save(file)  # one self-contained file: parameters, obs statistics, spec
        again = np.asarray(jppo.load_policy(file).evaluate(jax.random.PRNGKey(2),
                                                            episodes=16).returns)
        print(f"loaded from {file.name}: mean return {again.mean():.1f} (same keys, same "
              f"episodes: {'identical' if np.array_equal(returns, again) else 'DIFFERENT'})")
    return 0 if np.array_equal(returns, again) else 1


if __name__ == "__main__":
    raise SystemExit(main())
