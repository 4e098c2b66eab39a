"""Your own value loss, registered from outside jppo and compared against the
standard clipped loss on the same seeds.

    python examples/03_your_own_variant.py                         # 16 seeds, 200k steps each
    python examples/03_your_own_variant.py --seeds 4 --total-timesteps 20000

The registration below is all a new variant needs: `value_loss="log_cosh"` is
then valid in `PPOConfig`, in experiment files that list this module under
`imports`, and in `--set value_loss=log_cosh`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import jax.numpy as jnp

import jppo
from jppo.analysis import stats
from jppo.core.strategies import ValueLossInputs


@jppo.register_value_loss("log_cosh", replace=True)
def log_cosh(v: ValueLossInputs) -> jnp.ndarray:
    """E[log cosh(V - R)] in return units: quadratic near zero like the MSE, linear
    in the tails like Huber (no delta to tune), smooth everywhere. Written as
    logaddexp(e, -e) - log 2 so that large errors do not overflow cosh."""
    error = v.pred - v.target
    return jnp.mean(jnp.logaddexp(error, -error) - jnp.log(2.0))


def experiment(total_timesteps: int, seeds: int, env: str, num_envs: int,
               num_steps: int) -> jppo.Experiment:
    """The standard loss against log-cosh; everything else is the default config."""
    return jppo.Experiment(
        name="custom-variant", envs=(env,), seeds=seeds, total_timesteps=total_timesteps,
        baseline="standard", config={"num_envs": num_envs, "num_steps": num_steps},
        variants={"standard": {}, "log_cosh": {"value_loss": "log_cosh"}},
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-timesteps", type=float, default=200_000,
                        help="env steps per seed (the budget)")
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--num-steps", type=int, default=128)
    parser.add_argument("--out", default=None, help="run directory; default: in memory only")
    args = parser.parse_args(argv)
    exp = experiment(int(args.total_timesteps), args.seeds, args.env, args.num_envs,
                     args.num_steps)
    result = jppo.run_experiment(exp, args.out, progress="off")
    scores = stats.final_returns(result.frame)
    keys = stats.ordered_keys(list(scores), list(exp.envs), list(exp.variants))
    table = stats.summary_table({key: scores[key] for key in keys}, exp.baseline_variant,
                                reps=500)
    print(stats.format_table(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
