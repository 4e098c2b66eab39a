"""Acting with a policy: one step (normalize, policy head, mode or sample) and
whole evaluation episodes, in one place.

The training rollout, the in-program evaluation and a loaded or exported policy
(`jppo.load_policy`) all act through `act_step`, so an exported policy
reproduces the evaluation returns of the run it came from. `act_step` is the
single call into the network: state a policy carries between steps belongs in
its arguments and results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jppo.core import distributions
from jppo.core import normalize as norm
from jppo.core.networks import ActorCritic

# Folded into the training key to get an evaluation key: evaluations never
# draw from the training key's sequence, so they cannot change training.
EVAL_SALT = 0x6576616C  # "eval"


@dataclasses.dataclass(frozen=True)
class Actor:
    """The static part of a policy: its network and action space."""

    network: ActorCritic
    discrete: bool
    nvec: tuple[int, ...] | None  # MultiDiscrete: choices per component
    obs_norm: bool


@struct.dataclass
class PolicyInputs:
    """The data part of a policy: parameters and the observation statistics
    it normalizes with (read, never updated, while acting)."""

    params: Any
    obs_stats: norm.RunningStats
    obs_clip: jax.Array


class EvalResult(struct.PyTreeNode):
    """Per-episode return and length of an evaluation."""

    returns: jax.Array  # (num_episodes,)
    lengths: jax.Array  # (num_episodes,)


def observe(actor: Actor, inputs: PolicyInputs, obs: jax.Array) -> jax.Array:
    """The observation as the network sees it (normalized if `obs_norm`)."""
    if not actor.obs_norm:
        return obs
    return norm.normalize_obs(obs, inputs.obs_stats, inputs.obs_clip)


def distribution(actor: Actor, params: Any, seen: jax.Array) -> tuple[jax.Array, ...]:
    """A feed-forward policy head on seen observations: `(logits,)` or `(mean, log_std)`."""
    return actor.network.apply(params, seen, method=ActorCritic.policy)


def initial_carry(actor: Actor, batch_shape: int | Sequence[int]) -> Any:
    """The policy's state at the start of an episode (None: feed-forward)."""
    return actor.network.initial_carry(batch_shape)["policy"]


def act_step(actor: Actor, inputs: PolicyInputs, obs: jax.Array, key: jax.Array,
             deterministic: bool, carry: Any = None, reset: jax.Array | None = None
             ) -> tuple[jax.Array, jax.Array, tuple[jax.Array, ...], Any]:
    """(action, seen observation, distribution, next carry) for raw `obs` (leading
    batch axes): the distribution's mode if `deterministic`, else a sample. A
    recurrent policy reads `carry` and restarts it where `reset` (the observation
    begins an episode); a feed-forward one takes and returns None."""
    seen = observe(actor, inputs, obs)
    if reset is None:
        reset = jnp.ones(obs.shape[:1], bool)
    dist, carry = actor.network.apply(inputs.params, seen, carry, reset,
                                      method=ActorCritic.policy_step)
    if deterministic:
        action = distributions.mode(dist, actor.discrete, actor.nvec)
    else:
        action = distributions.sample(key, dist, actor.discrete, actor.nvec)
    return action, seen, dist, carry


def act(actor: Actor, inputs: PolicyInputs, obs: jax.Array, key: jax.Array,
        deterministic: bool = True) -> jax.Array:
    """The action of a feed-forward policy for raw `obs` (leading batch axes)."""
    return act_step(actor, inputs, obs, key, deterministic)[0]


def evaluation_key(train_key: jax.Array) -> jax.Array:
    """The key of the evaluation that follows an update whose train state holds
    `train_key` (a fold-in: the training sequence is untouched)."""
    return jax.random.fold_in(train_key, EVAL_SALT)


def evaluate(actor: Actor, inputs: PolicyInputs, env: Any, env_params: Any, key: jax.Array,
             num_episodes: int, max_steps: int, deterministic: bool = True) -> EvalResult:
    """`num_episodes` vmapped episodes of a wrapped env, each run to its first
    end (terminated or truncated), at most `max_steps` steps. The loop stops
    once every episode has ended, so short episodes cost little."""
    reset_key, loop_key = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(reset_key, num_episodes), env_params)
    zeros = jnp.zeros((num_episodes,), jnp.float32)
    alive = jnp.ones((num_episodes,), bool)
    memory = initial_carry(actor, num_episodes)
    carry = (jnp.zeros((), jnp.int32), loop_key, obs, env_state, zeros, zeros, alive, memory)

    def running(carry: tuple) -> jax.Array:
        return jnp.logical_and(carry[0] < max_steps, jnp.any(carry[6]))

    def step(carry: tuple) -> tuple:
        t, key, obs, env_state, total, length, alive, memory = carry
        key, act_key, env_key = jax.random.split(key, 3)
        action, _, _, memory = act_step(actor, inputs, obs, act_key, deterministic, memory,
                                        jnp.broadcast_to(t == 0, alive.shape))
        obs, env_state, reward, terminated, truncated, _ = jax.vmap(
            env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(env_key, num_episodes), env_state, action, env_params)
        total = total + jnp.where(alive, reward.astype(jnp.float32), 0.0)
        length = length + alive.astype(jnp.float32)
        alive = alive & ~jnp.logical_or(terminated, truncated)
        return t + 1, key, obs, env_state, total, length, alive, memory

    *_, total, length, _, _ = jax.lax.while_loop(running, step, carry)
    return EvalResult(total, length)


def episode_limit(env_params: Any, override: int = 0) -> int | None:
    """Steps an evaluation episode may last: `override` if set, else the env's
    `max_steps_in_episode`; None when neither says."""
    if override:
        return override
    limit = getattr(env_params, "max_steps_in_episode", None)
    try:
        return int(limit) if limit is not None and int(limit) >= 1 else None
    except (TypeError, ValueError):  # traced or not a number
        return None


def nvec_of(action_nvec: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if action_nvec is None else tuple(int(n) for n in action_nvec)
