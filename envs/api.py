"""What jppo needs from an environment object, checked up front, and wrapping one.

Any object with the gymnax ``Environment`` API trains: jppo never subclasses or
registers it. The check runs ``reset`` and ``step`` under ``jax.eval_shape``
(tracing only, no compile), so a wrong object fails in milliseconds with one
line naming what is missing, before a compile or a run directory.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from .spaces import MultiDiscrete
from .wrappers import (
    ClipAction,
    EpisodeStatistics,
    FlattenObservation,
    RewardScale,
    Wrapper,
    check_reward_scale,
)

API = (
    "an object with the gymnax Environment API: reset(key, params) -> (obs, state), "
    "step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info) "
    "with info['final_observation'], observation_space(params) and action_space(params) "
    "(gymnax Discrete or Box, or envs.MultiDiscrete actions), and default_params"
)
METHODS = ("reset", "step", "observation_space", "action_space")


def object_name(env: Any) -> str:
    """How an in-memory env is named in results: its ``name`` (gymnax envs have
    one), else its class name."""
    name = getattr(env, "name", None)
    return name if isinstance(name, str) and name.strip() else type(env).__name__


def _fail(label: str, problem: str) -> ValueError:
    return ValueError(f"env {label!r}: {problem}; allowed is {API}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _check_space(env: Any, which: str, params: Any, label: str) -> Any:
    try:
        space = getattr(env, which)(params)
    except Exception as error:
        raise _fail(label, f"{which}(params) raised {_first_line(error)}") from None
    allowed = (spaces.Discrete, spaces.Box)
    if which == "action_space":
        allowed += (MultiDiscrete,)
    if not isinstance(space, allowed):
        raise _fail(label, f"{which}(params) returned {type(space).__name__}")
    return space


def _zero_action(space: Any) -> jax.Array:
    integer = isinstance(space, spaces.Discrete | MultiDiscrete)
    return jnp.zeros(tuple(space.shape), jnp.int32 if integer else jnp.float32)


def _trace_step(env: Any, params: Any, action_space: Any, label: str) -> tuple[Any, Any]:
    """Shapes of ``reset`` and of one ``step`` after it, traced, never compiled."""
    key = jax.random.PRNGKey(0)
    try:
        reset = jax.eval_shape(lambda k: env.reset(k, params), key)
    except Exception as error:
        raise _fail(label, f"reset(key, params) raised {_first_line(error)}") from None
    if not isinstance(reset, tuple) or len(reset) != 2:
        raise _fail(label, "reset(key, params) must return (obs, state)")

    def reset_and_step(k: jax.Array) -> Any:
        _, state = env.reset(k, params)
        return env.step(k, state, _zero_action(action_space), params)

    try:
        step = jax.eval_shape(reset_and_step, key)
    except Exception as error:
        raise _fail(label, f"step(key, state, action, params) raised {_first_line(error)}"
                    ) from None
    return reset, step


def _check_step_output(reset: Any, step: Any, label: str) -> None:
    if isinstance(step, tuple) and len(step) == 5:
        raise _fail(label, "step returns the old 5-tuple (obs, state, reward, done, info) "
                    "without separate terminated and truncated flags")
    if not isinstance(step, tuple) or len(step) != 6:
        size = len(step) if isinstance(step, tuple) else type(step).__name__
        raise _fail(label, f"step returns {size} values instead of 6")
    obs, _, reward, terminated, truncated, info = step
    for field, value in (("reward", reward), ("terminated", terminated),
                         ("truncated", truncated)):
        if getattr(value, "shape", None) != ():
            raise _fail(label, f"step's {field} has shape {getattr(value, 'shape', None)}, "
                        "not a scalar")
    if not isinstance(info, dict) or "final_observation" not in info:
        raise _fail(label, "step's info has no 'final_observation' (the observation before "
                    "the auto-reset, needed to bootstrap truncated episodes)")
    shapes = {jnp.shape(reset[0]), jnp.shape(obs), jnp.shape(info["final_observation"])}
    if len(shapes) != 1:
        raise _fail(label, f"reset's obs, step's obs and info['final_observation'] differ "
                    f"in shape: {sorted(shapes)}")


def _check_observation_space(env: Any, params: Any, reset: Any, label: str) -> None:
    """The networks are sized from observation_space: observations of another
    size would fail deep in a compile (a reshape error) instead of here."""
    declared = tuple(int(n) for n in env.observation_space(params).shape)
    shape = tuple(jnp.shape(reset[0]))
    if math.prod(declared) != math.prod(shape):
        raise ValueError(
            f"env {label!r}: observation_space(params).shape={declared} ({math.prod(declared)} "
            f"entries) but reset returns observations of shape {shape} ({math.prod(shape)} "
            "entries); allowed is an observation_space whose shape is that of the observations")


def check_env_api(env: Any, params: Any = None, label: str | None = None) -> Any:
    """Raise a one-line ValueError unless ``env`` has the API jppo trains on;
    return the params to use (``env.default_params`` when ``params`` is None)."""
    label = label or object_name(env)
    for method in METHODS:
        if not callable(getattr(env, method, None)):
            raise _fail(label, f"no {method} method")
    if params is None:
        try:
            params = env.default_params
        except AttributeError:
            raise _fail(label, "no default_params (and no params were given)") from None
    _check_space(env, "observation_space", params, label)
    action_space = _check_space(env, "action_space", params, label)
    reset, step = _trace_step(env, params, action_space, label)
    _check_step_output(reset, step, label)
    _check_observation_space(env, params, reset, label)
    return params


def _layers(env: Any) -> list[type]:
    """Types of the jppo wrappers around ``env``, outermost first."""
    found = []
    while isinstance(env, Wrapper):
        found.append(type(env))
        env = env._env
    return found


def is_wrapped(env: Any) -> bool:
    """Whether ``env`` is already wrapped for training (``EpisodeStatistics``
    outermost, as ``envs.make`` and ``wrap`` leave it)."""
    return isinstance(env, EpisodeStatistics)


def wrap(
    env: Any, params: Any = None, *, reward_scale: float | None = None, name: str | None = None
) -> tuple[EpisodeStatistics, Any]:
    """Wrap any gymnax-API ``env`` for training; return it with its params.

    Wrapping, innermost first: FlattenObservation, ClipAction (Box action
    spaces only), RewardScale (if ``reward_scale`` is given), EpisodeStatistics.
    Layers ``env`` already has are not added twice, and an env that is already
    wrapped comes back unchanged. ``name`` labels error messages.
    """
    label = name or object_name(env)
    if is_wrapped(env):
        if reward_scale is not None:
            raise ValueError(
                f"reward_scale={reward_scale!r} is invalid for env {label!r}: it is already "
                "wrapped (EpisodeStatistics outermost); allowed is reward_scale=None, or "
                "passing the bare env")
        return env, env.default_params if params is None else params
    if EpisodeStatistics in _layers(env):
        raise ValueError(f"env {label!r}: EpisodeStatistics is not the outermost wrapper; "
                         "allowed is it outermost, or the bare env")
    scale = None if reward_scale is None else check_reward_scale(reward_scale)
    params = check_env_api(env, params, label)
    layers = _layers(env)
    if FlattenObservation not in layers:
        env = FlattenObservation(env)
    if isinstance(env.action_space(params), spaces.Box) and ClipAction not in layers:
        env = ClipAction(env)
    if scale is not None:
        env = RewardScale(env, scale)
    return EpisodeStatistics(env), params
