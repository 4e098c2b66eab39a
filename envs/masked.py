"""Partially observable variants of gymnax tasks: observation entries hidden.

``ObservationMask(env, keep)`` shows the policy only the entries ``keep`` of a
flat observation, in reset, step and ``info["final_observation"]`` alike, so a
feed-forward policy cannot read what was hidden and a recurrent one must infer
it from the observations it has seen. The registered names below hide the
velocities of classic-control tasks (each is then a function of two successive
positions), the standard memory check for recurrent policies:

    envs.make("CartPole-NoVelocity-v1")   # x and theta only; x_dot, theta_dot hidden
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from gymnax.environments import spaces

from . import gymnax_family
from .wrappers import StepResult, Wrapper

# name -> (gymnax id, observation entries kept)
MASKED: dict[str, tuple[str, tuple[int, ...]]] = {
    "CartPole-NoVelocity-v1": ("CartPole-v1", (0, 2)),  # x, theta
    "Pendulum-NoVelocity-v1": ("Pendulum-v1", (0, 1)),  # cos theta, sin theta
    "Acrobot-NoVelocity-v1": ("Acrobot-v1", (0, 1, 2, 3)),  # cos/sin of both joint angles
}


def is_masked_name(name: Any) -> bool:
    return isinstance(name, str) and name in MASKED


def list_masked_envs() -> list[str]:
    """Sorted names of the registered partially observable variants."""
    return sorted(MASKED)


class ObservationMask(Wrapper):
    """Keeps the entries ``keep`` (indices into a flat vector observation);
    ``name`` names the variant (default: the inner env's name)."""

    def __init__(self, env: Any, keep: Sequence[int], name: str | None = None):
        super().__init__(env)
        self._name = name
        keep = tuple(keep)
        if not keep or len(set(keep)) != len(keep) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in keep):
            raise ValueError(f"keep={keep!r} is invalid: allowed is a non-empty tuple of "
                             "distinct observation indices >= 0")
        self.keep = keep

    @property
    def name(self) -> str:
        return self._name or self._env.name

    def observation_space(self, params: Any = None) -> spaces.Box:
        space = self._env.observation_space(self._params(params))
        shape = tuple(getattr(space, "shape", ()))
        if not isinstance(space, spaces.Box) or len(shape) != 1 or max(self.keep) >= shape[0]:
            raise ValueError(f"keep={self.keep!r} is invalid for observations {space!r}: "
                             "allowed is indices of a flat Box observation")
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape)
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape)
        return spaces.Box(self._mask(low), self._mask(high), (len(self.keep),), jnp.float32)

    def _mask(self, obs: Any) -> Any:
        return jnp.asarray(obs)[..., jnp.asarray(self.keep)]

    def reset(self, key: Any, params: Any = None) -> tuple[Any, Any]:
        obs, state = self._env.reset(key, params)
        return self._mask(obs), state

    def step(self, key: Any, state: Any, action: Any, params: Any = None) -> StepResult:
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, action, params)
        if "final_observation" in info:
            info = {**info, "final_observation": self._mask(info["final_observation"])}
        return self._mask(obs), state, reward, terminated, truncated, info


def build(name: str, overrides: dict[str, Any]) -> tuple[ObservationMask, Any]:
    """The masked variant ``name`` of its gymnax task, and the task's params."""
    base, keep = MASKED[name]
    gymnax_family.check(base)
    env, params = gymnax_family.build(base, overrides)
    return ObservationMask(env, keep, name), params


def check(name: str) -> None:
    if not is_masked_name(name):
        raise ValueError(f"unknown partially observable environment {name!r}; allowed is "
                         f"one of {list_masked_envs()}")
