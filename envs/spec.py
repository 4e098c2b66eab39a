"""Static description of an environment's observation and action shapes."""

import dataclasses
import math
from typing import Any

import numpy as np
from gymnax.environments import spaces

from .spaces import MultiDiscrete


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """What a policy network needs to know about an env, as plain Python values.

    Plain ints/floats/tuples (no arrays) so the spec is hashable and can be a
    static argument or part of a config.
    """

    name: str
    obs_dim: int  # number of entries of one observation
    discrete: bool
    num_actions: int  # number of logits: n, or sum(nvec) for MultiDiscrete; 0 if continuous
    action_dim: int  # 1 for Discrete, len(nvec) for MultiDiscrete, flattened Box size
    action_low: tuple[float, ...] | None = None  # None for discrete
    action_high: tuple[float, ...] | None = None  # None for discrete
    obs_shape: tuple[int, ...] = ()  # one observation's shape, e.g. (10, 10, 4) for an image
    action_nvec: tuple[int, ...] | None = None  # MultiDiscrete: choices per component


def _bound(value: Any, shape: tuple[int, ...]) -> tuple[float, ...]:
    array = np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
    return tuple(float(v) for v in array.reshape(-1))


def env_spec(env: Any, params: Any = None) -> EnvSpec:
    """Read an :class:`EnvSpec` from ``env``'s spaces (concrete params only)."""
    if params is None:
        params = env.default_params
    obs_shape = tuple(int(n) for n in env.observation_space(params).shape)
    obs = {"obs_dim": math.prod(obs_shape), "obs_shape": obs_shape}
    action_space = env.action_space(params)
    if isinstance(action_space, spaces.Discrete):
        return EnvSpec(
            name=env.name,
            **obs,
            discrete=True,
            num_actions=int(action_space.n),
            action_dim=1,
        )
    if isinstance(action_space, MultiDiscrete):
        return EnvSpec(
            name=env.name,
            **obs,
            discrete=True,
            num_actions=sum(action_space.nvec),
            action_dim=len(action_space.nvec),
            action_nvec=action_space.nvec,
        )
    if isinstance(action_space, spaces.Box):
        shape = tuple(action_space.shape)
        return EnvSpec(
            name=env.name,
            **obs,
            discrete=False,
            num_actions=0,
            action_dim=int(math.prod(shape)),
            action_low=_bound(action_space.low, shape),
            action_high=_bound(action_space.high, shape),
        )
    raise TypeError(
        f"unsupported action space {type(action_space).__name__} for {env.name}: allowed "
        "are Discrete, Box and envs.spaces.MultiDiscrete"
    )
