"""FactoredReach: a movement action plus a factored "configuration" action, with
per-step rewards of order one (the frozen-policy case study scales them down).

An agent in the square [-1, 1]^2 must reach a goal while holding a tool in the
configuration a code asks for. Each step it outputs ``2 + n_config`` numbers
(clipped to [-1, 1]): a 2-D velocity (moves ``speed`` per unit) and one setting
per configuration component, which pays when its sign matches the code's. The
configuration stands in for the large factored part of a game's action space
(which unit, which item, which target): many independent components, each
judged on its own, next to a Gaussian movement action.

Reward per step, the sum of three parts (``info["reward_components"]``):
progress ``progress_reward * (distance before - distance after)``, configuration
``config_reward * mean_k(code_k * setting_k)`` and effort ``-effort_cost *
sum(action**2)``; reaching the goal (within ``goal_radius``) pays
``goal_bonus`` and *terminates*; ``max_steps_in_episode`` *truncates*.
Observations: agent position, goal position, the code (+-1 each), time used,
then ``n_distractors`` features drawn afresh (uniform in [-1, 1]) every step
that nothing depends on: the many task-irrelevant, fast-changing entries of a
game's observation (other units, cooldowns, animation state). A critic that
has not yet learned to ignore them makes an error that changes from one step
to the next, which bootstrapped targets average away.

A Gaussian policy of mean 0 and std 1 earns about -0.35 per step (effort,
nothing else on average). A good one heads straight for the goal (progress pays
10 per unit of distance, up to about 28 per episode), holds every setting at
+-1 on the code's side (+0.5 per step net of its effort) and collects the bonus.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

MOVE_DIMS = 2


@struct.dataclass
class ReachParams:
    speed: float = 0.1
    goal_radius: float = 0.15
    progress_reward: float = 10.0
    config_reward: float = 1.0
    effort_cost: float = 0.1
    goal_bonus: float = 5.0
    max_steps_in_episode: int = 64


@struct.dataclass
class ReachState:
    position: jax.Array  # (2,)
    goal: jax.Array  # (2,)
    code: jax.Array  # (n_config,), +-1
    time: jax.Array  # int32
    distractors: jax.Array  # (n_distractors,), redrawn every step


class FactoredReach:
    """``n_config`` (>= 1) configuration components and ``n_distractors`` (>= 0)
    irrelevant observation features; static: they set the shapes."""

    def __init__(self, n_config: int = 5, n_distractors: int = 16):
        if not isinstance(n_config, int) or n_config < 1:
            raise ValueError(f"n_config={n_config!r} is invalid: allowed is an integer >= 1")
        if not isinstance(n_distractors, int) or n_distractors < 0:
            raise ValueError(f"n_distractors={n_distractors!r} is invalid: allowed is an "
                             "integer >= 0")
        self.n_config = n_config
        self.n_distractors = n_distractors

    @property
    def name(self) -> str:
        return "FactoredReach"

    @property
    def default_params(self) -> ReachParams:
        return ReachParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        size = 2 * MOVE_DIMS + self.n_config + 1 + self.n_distractors
        return spaces.Box(-1.0, 1.0, (size,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (MOVE_DIMS + self.n_config,), jnp.float32)

    def observe(self, state: ReachState, params: ReachParams) -> jax.Array:
        used = state.time.astype(jnp.float32) / params.max_steps_in_episode
        return jnp.concatenate([state.position, state.goal, state.code, used[None],
                                state.distractors])

    def draw_distractors(self, key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, (self.n_distractors,), jnp.float32, -1.0, 1.0)

    def reset(self, key: jax.Array, params: ReachParams | None = None
              ) -> tuple[jax.Array, ReachState]:
        params = self.default_params if params is None else params
        pos_key, goal_key, code_key, noise_key = jax.random.split(key, 4)
        state = ReachState(
            position=jax.random.uniform(pos_key, (MOVE_DIMS,), jnp.float32, -1.0, 1.0),
            goal=jax.random.uniform(goal_key, (MOVE_DIMS,), jnp.float32, -1.0, 1.0),
            code=jnp.where(jax.random.bernoulli(code_key, 0.5, (self.n_config,)), 1.0, -1.0),
            time=jnp.zeros((), jnp.int32), distractors=self.draw_distractors(noise_key))
        return self.observe(state, params), state

    def transition(self, key: jax.Array, state: ReachState, action: jax.Array,
                   params: ReachParams) -> tuple[ReachState, dict[str, jax.Array], jax.Array]:
        """One step without the auto-reset: next state, reward parts, goal reached."""
        action = jnp.clip(action, -1.0, 1.0)
        position = jnp.clip(state.position + params.speed * action[:MOVE_DIMS], -1.0, 1.0)
        before = jnp.linalg.norm(state.goal - state.position)
        after = jnp.linalg.norm(state.goal - position)
        reached = after < params.goal_radius
        components = {
            "progress": params.progress_reward * (before - after),
            "configuration": params.config_reward * jnp.mean(state.code * action[MOVE_DIMS:]),
            "effort": -params.effort_cost * jnp.sum(action**2),
            "goal": jnp.where(reached, params.goal_bonus, 0.0),
        }
        components = {k: jnp.asarray(v, jnp.float32) for k, v in components.items()}
        next_state = state.replace(position=position, time=state.time + 1,
                                   distractors=self.draw_distractors(key))
        return next_state, components, reached

    def step(self, key: jax.Array, state: ReachState, action: jax.Array,
             params: ReachParams | None = None) -> tuple[Any, ...]:
        """Step, then reset if the episode ended; ``info["final_observation"]``
        is the observation before that reset (to bootstrap truncated episodes)."""
        params = self.default_params if params is None else params
        step_key, reset_key = jax.random.split(key)
        next_state, components, terminated = self.transition(step_key, state, action, params)
        truncated = (next_state.time >= params.max_steps_in_episode) & ~terminated
        final_obs = self.observe(next_state, params)
        reset_obs, reset_state = self.reset(reset_key, params)
        done = terminated | truncated
        state = jax.tree.map(lambda a, b: jnp.where(done, a, b), reset_state, next_state)
        obs = jnp.where(done, reset_obs, final_obs)
        reward = sum(components.values())
        info = {"final_observation": final_obs, "reward_components": components}
        return obs, state, reward, terminated, truncated, info


def make_env(n_config: int = 5, n_distractors: int = 16
             ) -> tuple[FactoredReach, ReachParams]:
    """The factory the experiment names:
    ``experiments.case_studies.envs_frozen_policy:make_env``."""
    env = FactoredReach(n_config, n_distractors)
    return env, env.default_params
