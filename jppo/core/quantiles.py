"""The quantile critic's loss: quantile regression with the Huber loss (QR-DQN,
Dabney et al. 2018), kappa = 1.

The critic predicts `n` values theta_i, the tau_i = (2i + 1) / (2n) quantiles
of the return (the midpoints of n equal probability bins); the value is their
mean, which estimates the expectation. For a target R and u_i = R - theta_i,

    rho_i(u) = |tau_i - 1{u < 0}| * L(u) / kappa,
    L(u) = u^2 / 2 if |u| <= kappa else kappa * (|u| - kappa / 2),

and the loss is the mean over states of (1/n) sum_i rho_i(u_i). QR-DQN sums over
the quantiles; dividing by n keeps the loss on the scale of one Huber term, so
`vf_coef` means the same whatever `quantile_count` is.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

KAPPA = 1.0


def midpoints(n: int) -> jax.Array:
    """tau_i = (2i + 1) / (2n), i = 0..n-1: the quantile levels each output regresses."""
    return (2.0 * jnp.arange(n) + 1.0) / (2.0 * n)


def quantile_huber_loss(quantiles: jax.Array, targets: jax.Array,
                        kappa: float = KAPPA) -> jax.Array:
    """Mean over states and quantiles of rho_tau^kappa(R - theta); `quantiles`
    (..., n), `targets` (...): (N,) for a feed-forward minibatch, (envs, time) for a
    recurrent one."""
    u = targets[..., None] - quantiles
    tau = midpoints(quantiles.shape[-1])
    abs_u = jnp.abs(u)
    huber = jnp.where(abs_u <= kappa, 0.5 * u**2, kappa * (abs_u - 0.5 * kappa))
    weight = jnp.abs(tau - (u < 0).astype(u.dtype))
    return jnp.mean(weight * huber / kappa)


def quantile_value(quantiles: jax.Array) -> jax.Array:
    """The value of a quantile head: the mean of its quantiles."""
    return jnp.mean(quantiles, axis=-1)
