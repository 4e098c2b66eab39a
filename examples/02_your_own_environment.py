"""Your own environment: any object with the gymnax API trains, with nothing to
subclass or register.

    python examples/02_your_own_environment.py                  # 16 seeds, 50k steps each
    python examples/02_your_own_environment.py --seeds 2 --total-timesteps 4096

`Corridor` is a walk to the end of a corridor of `length` cells: stepping right is
+1, each step costs 0.1, and the episode *terminates* at the end, or is *truncated*
after `max_steps_in_episode` steps, so both kinds of episode end occur (jppo
bootstraps a truncated episode from `info["final_observation"]`). The best return is
`length - 1 - 0.1 x (length - 1)` = 6.3 at length 8; a random walk rarely gets there.

A richer one, `experiments/custom_env.py` (DeliveryChain: four reward components in
the thousands), is named by import path on the command line:

    jppo train --env experiments.custom_env:make_env --env-param length=12 --seeds 16
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

import jppo
from jppo.analysis.metrics import final_episode_return


@struct.dataclass
class CorridorParams:
    step_cost: float = 0.1
    max_steps_in_episode: int = 32


@struct.dataclass
class CorridorState:
    cell: jax.Array  # int32
    time: jax.Array  # int32: steps taken in this episode


class Corridor:
    """The gymnax API: reset, step (with the auto-reset), the two spaces and
    default_params. `length` sets the observation size, so it is static."""

    name = "Corridor"  # how results and run.json name it

    def __init__(self, length: int = 8):
        self.length = length

    @property
    def default_params(self) -> CorridorParams:
        return CorridorParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.length,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(2)  # 0: left, 1: right

    def observe(self, state: CorridorState) -> jax.Array:
        return jax.nn.one_hot(state.cell, self.length, dtype=jnp.float32)

    def reset(self, key: jax.Array, params: CorridorParams | None = None):
        state = CorridorState(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
        return self.observe(state), state

    def step(self, key: jax.Array, state: CorridorState, action: jax.Array,
             params: CorridorParams | None = None):
        """Move, then reset where the episode ended; `info["final_observation"]` is the
        observation before that reset."""
        params = self.default_params if params is None else params
        cell = jnp.clip(state.cell + jnp.where(action == 1, 1, -1), 0, self.length - 1)
        reward = (cell - state.cell).astype(jnp.float32) - params.step_cost
        moved = CorridorState(cell.astype(jnp.int32), state.time + 1)
        terminated = cell == self.length - 1
        truncated = (moved.time >= params.max_steps_in_episode) & ~terminated
        final_obs = self.observe(moved)
        reset_obs, reset_state = self.reset(key, params)
        done = terminated | truncated
        state = jax.tree.map(lambda fresh, old: jnp.where(done, fresh, old), reset_state, moved)
        obs = jnp.where(done, reset_obs, final_obs)
        return obs, state, reward, terminated, truncated, {"final_observation": final_obs}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-timesteps", type=float, default=50_000,
                        help="env steps per seed (the budget)")
    parser.add_argument("--seeds", type=int, default=16)
    args = parser.parse_args(argv)
    config = jppo.PPOConfig(total_timesteps=int(args.total_timesteps))
    # An object, or (env, env_params) to change its params: wrapped and checked for you.
    env = (Corridor(length=8), CorridorParams(step_cost=0.1))
    result = jppo.run(config, env, num_seeds=args.seeds, out_dir=None, progress="off")
    returns = final_episode_return(result.metrics())
    print(f"Corridor: final return over {returns.size} seeds {returns.mean():.2f} "
          f"(min {returns.min():.2f}; the best possible is 6.30)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
