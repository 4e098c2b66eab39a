"""DeliveryChain: an example of bringing your own environment to jppo.

A courier drives a parcel along a chain of ``length`` depots, from depot 0 to
the customer at depot ``length - 1``. Each step it chooses to drive back (0),
drive forward (1) or cash out (2: sell the parcel where it is, ending the
episode). A drive slips (goes nowhere) with probability ``slip_prob``.

The reward is the sum of four components, with a return scale in the
thousands, as in many research tasks (raw costs and revenues, not a tuned
+-1): progress ``+progress_reward`` per depot gained (minus per depot lost),
fuel ``-fuel_cost`` every step, delivery ``+delivery_bonus`` on reaching the
customer, and cash-out ``cashout_rate * depot``. ``info["reward_components"]``
reports each. Delivering or cashing out *terminates* the episode; running out
of time (``max_steps_in_episode``) *truncates* it, so both kinds of episode end
occur. Observations are the one-hot depot plus the fraction of time used.

With the defaults (length 8) the best return is 7 * (150 - 20) + 2000 = 2910;
the uniform random policy mostly cashes out early (about 60). Standard PPO
(`jppo train --env experiments.custom_env:make_env`, default config) learns
to deliver within 50k steps, about 10 s on a CPU (4 seeds: final returns
2851-2886).

Written without subclassing anything: jppo accepts any object with this API
(reset, step returning ``(obs, state, reward, terminated, truncated, info)``
with ``info["final_observation"]``, observation/action spaces, default_params).
``length`` fixes the observation shape, so it is a factory argument; the rest
are ``DeliveryParams`` fields. From the command line both are ``--env-param``:
``--env-param length=12 --env-param slip_prob=0.2``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

BACK, FORWARD, CASH_OUT = 0, 1, 2


@struct.dataclass
class DeliveryParams:
    slip_prob: float = 0.1
    progress_reward: float = 150.0
    fuel_cost: float = 20.0
    delivery_bonus: float = 2000.0
    cashout_rate: float = 50.0
    max_steps_in_episode: int = 24


@struct.dataclass
class DeliveryState:
    depot: jax.Array  # int32
    time: jax.Array  # int32, steps taken in this episode


class DeliveryChain:
    """The chain task; ``length`` (>= 2 depots) is static: it sets the obs size."""

    def __init__(self, length: int = 8):
        if not isinstance(length, int) or length < 2:
            raise ValueError(f"length={length!r} is invalid: allowed is an integer >= 2")
        self.length = length

    @property
    def name(self) -> str:
        return "DeliveryChain"

    @property
    def default_params(self) -> DeliveryParams:
        return DeliveryParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.length + 1,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(3)

    def observe(self, state: DeliveryState, params: DeliveryParams) -> jax.Array:
        onehot = jax.nn.one_hot(state.depot, self.length, dtype=jnp.float32)
        used = state.time.astype(jnp.float32) / params.max_steps_in_episode
        return jnp.concatenate([onehot, used[None]])

    def reset(self, key: jax.Array, params: DeliveryParams | None = None
              ) -> tuple[jax.Array, DeliveryState]:
        params = self.default_params if params is None else params
        state = DeliveryState(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
        return self.observe(state, params), state

    def transition(self, key: jax.Array, state: DeliveryState, action: jax.Array,
                   params: DeliveryParams) -> tuple[DeliveryState, dict[str, jax.Array]]:
        """One step without the auto-reset: the next state and the reward parts."""
        slipped = jax.random.uniform(key) < params.slip_prob
        drive = jnp.where(action == FORWARD, 1, jnp.where(action == BACK, -1, 0))
        depot = jnp.clip(state.depot + jnp.where(slipped, 0, drive), 0, self.length - 1)
        components = {
            "progress": params.progress_reward * (depot - state.depot).astype(jnp.float32),
            "fuel": -jnp.float32(params.fuel_cost),
            "delivery": jnp.where(depot == self.length - 1, params.delivery_bonus, 0.0),
            "cash_out": jnp.where(action == CASH_OUT, params.cashout_rate * state.depot, 0.0),
        }
        components = {k: jnp.asarray(v, jnp.float32) for k, v in components.items()}
        return DeliveryState(depot.astype(jnp.int32), state.time + 1), components

    def step(self, key: jax.Array, state: DeliveryState, action: jax.Array,
             params: DeliveryParams | None = None) -> tuple[Any, ...]:
        """Step, then reset if the episode ended; ``info["final_observation"]``
        is the observation before that reset (to bootstrap truncated episodes)."""
        params = self.default_params if params is None else params
        step_key, reset_key = jax.random.split(key)
        next_state, components = self.transition(step_key, state, action, params)
        terminated = (next_state.depot == self.length - 1) | (action == CASH_OUT)
        truncated = (next_state.time >= params.max_steps_in_episode) & ~terminated
        final_obs = self.observe(next_state, params)
        reset_obs, reset_state = self.reset(reset_key, params)
        done = terminated | truncated
        state = jax.tree.map(lambda a, b: jnp.where(done, a, b), reset_state, next_state)
        obs = jnp.where(done, reset_obs, final_obs)
        reward = sum(components.values())
        info = {"final_observation": final_obs, "reward_components": components}
        return obs, state, reward, terminated, truncated, info


def make_env(length: int = 8) -> tuple[DeliveryChain, DeliveryParams]:
    """The factory the import path names: ``experiments.custom_env:make_env``."""
    env = DeliveryChain(length)
    return env, env.default_params
