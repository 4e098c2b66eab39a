"""Episodes to their first end without gymnax's auto-reset: for evaluation.

A gymnax `Environment.step` steps, then draws a fresh episode (`reset_env`)
and selects it wherever the step ended one. An evaluation runs each episode to
its first end and counts nothing after it, so that fresh episode is wasted;
on a CPU its random draws were most of an evaluation step's time (threefry
runs there as a rolled loop, and the key split feeding it stays alive only for
the reset when `step_env` reads no key, as CartPole's does).
`without_auto_reset(env)` is the same wrapper stack over a step that skips
the reset: the same observations, rewards and flags up to each episode's end,
bit for bit; after it a lane keeps its finished episode instead of a new one.
Envs whose `step` is not gymnax's own (Brax, custom steps) come back unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

import jax
from gymnax.environments.environment import Environment

from .wrappers import StepResult, Wrapper


class NoAutoReset(Wrapper):
    """Gymnax's `step` (key split, `step_env`, `is_truncated`, the info keys)
    without the reset and the select."""

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None) -> StepResult:
        env = self._env
        params = env.default_params if params is None else params
        key_step, _ = jax.random.split(key)  # gymnax's split: step_env reads the same key
        obs, state, reward, terminated, info = env.step_env(key_step, state, action, params)
        truncated = env.is_truncated(state, params)
        info = {**info, "terminated": terminated, "truncated": truncated,
                "final_observation": obs}
        return obs, state, reward, terminated, truncated, info


def without_auto_reset(env: Any) -> Any:
    """`env`'s wrapper stack over a non-resetting step, or `env` itself when its
    innermost env does not use gymnax's `Environment.step`."""
    if isinstance(env, Wrapper):
        inner = without_auto_reset(env._env)
        if inner is env._env:
            return env
        outer = copy.copy(env)
        outer._env = inner
        return outer
    if isinstance(env, Environment) and type(env).step is Environment.step:
        return NoAutoReset(env)
    return env
