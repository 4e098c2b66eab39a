"""Generalized advantage estimation by a reverse `lax.scan`.

Time-limit truncation is handled by the caller passing `next_values` =
V(final observation) for every step: the TD error then bootstraps through a
truncation (`terminated` = 0) but not through a termination, while `done`
(terminated or truncated) cuts the recursion at every episode boundary.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: jax.Array,
    lambdas: jax.Array,
    unroll: int = 1,
) -> jax.Array:
    """Advantages for one or several lambdas in a single scan.

    Shapes: `rewards`, `values`, `next_values`, `terminated`, `done` are
    `(T, ...)`; `lambdas` is `(L,)`. Returns `(L, T, ...)`. `unroll` steps run
    per loop trip (same result; fewer trips matter on a GPU).
    """
    not_terminated = 1.0 - terminated.astype(values.dtype)
    not_done = 1.0 - done.astype(values.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values
    lam = jnp.reshape(lambdas, (-1,) + (1,) * (values.ndim - 1))

    def backward(next_adv: jax.Array, step: tuple[jax.Array, jax.Array]):
        delta, keep = step
        adv = delta + gamma * lam * keep * next_adv
        return adv, adv

    init = jnp.zeros(lam.shape[:1] + values.shape[1:], values.dtype)
    _, adv = jax.lax.scan(backward, init, (deltas, not_done), reverse=True, unroll=unroll)
    return jnp.moveaxis(adv, 1, 0)


def actor_critic_targets(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: jax.Array,
    actor_lambda: jax.Array,
    critic_lambda: jax.Array,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """(actor advantages with `actor_lambda`, critic targets with `critic_lambda`).

    Decoupled lambdas (VC-PPO) let the critic regress on low-bias lambda=1
    returns while the actor keeps lower-variance advantages.
    """
    done = jnp.logical_or(terminated, truncated)
    adv = gae(
        rewards, values, next_values, terminated, done, gamma,
        jnp.stack([actor_lambda, critic_lambda]), unroll,
    )
    return adv[0], adv[1] + values
