"""Action distributions as pure functions on arrays.

Kept tiny and dependency-free so that log-probabilities and entropies are easy
to check against scipy, and so that no distribution object crosses a jit
boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

_LOG_2PI = math.log(2.0 * math.pi)
# A Gaussian's entropy per action dimension at log-std 0: 0.5 (1 + log 2 pi)
GAUSSIAN_ENTROPY_AT_ZERO = 0.5 + 0.5 * _LOG_2PI


def categorical_log_prob(logits: jax.Array, actions: jax.Array) -> jax.Array:
    """log pi(a) for integer `actions` under softmax(`logits`) (last axis)."""
    log_probs = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_probs, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def categorical_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    return jax.random.categorical(key, logits).astype(jnp.int32)


def split_logits(logits: jax.Array, nvec: Sequence[int]) -> list[jax.Array]:
    """The `sum(nvec)` logits of a factorized policy, one block per component."""
    return jnp.split(logits, np.cumsum(nvec)[:-1].tolist(), axis=-1)


def multi_categorical_log_prob(logits: jax.Array, actions: jax.Array,
                               nvec: Sequence[int]) -> jax.Array:
    """log pi(a) of a MultiDiscrete action `(..., len(nvec))`: the components
    are independent categoricals, so their log-probabilities add."""
    parts = split_logits(logits, nvec)
    return sum(categorical_log_prob(part, actions[..., i]) for i, part in enumerate(parts))


def multi_categorical_entropy(logits: jax.Array, nvec: Sequence[int]) -> jax.Array:
    """Entropy of independent components: the sum of their entropies."""
    return sum(categorical_entropy(part) for part in split_logits(logits, nvec))


def multi_categorical_sample(key: jax.Array, logits: jax.Array,
                             nvec: Sequence[int]) -> jax.Array:
    """One independent draw per component, stacked on the last axis (int32)."""
    parts = split_logits(logits, nvec)
    keys = jax.random.split(key, len(parts))
    return jnp.stack([categorical_sample(k, part) for k, part in zip(keys, parts, strict=True)],
                     axis=-1)


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, actions: jax.Array) -> jax.Array:
    """log N(a; mean, diag(exp(log_std))^2), summed over the action dimension."""
    z = (actions - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    return jnp.sum(GAUSSIAN_ENTROPY_AT_ZERO + log_std, axis=-1)


def gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)


# The dispatchers: `dist` is `(logits,)` or `(mean, log_std)`; `nvec` (static)
# marks a MultiDiscrete policy whose logits are split per component.


def sample(key: jax.Array, dist: tuple[jax.Array, ...], discrete: bool,
           nvec: Sequence[int] | None = None) -> jax.Array:
    """Draw an action from `dist` (logits) or `(mean, log_std)`."""
    if nvec is not None:
        return multi_categorical_sample(key, dist[0], nvec)
    if discrete:
        return categorical_sample(key, dist[0])
    return gaussian_sample(key, *dist)


def log_prob(dist: tuple[jax.Array, ...], actions: jax.Array, discrete: bool,
             nvec: Sequence[int] | None = None) -> jax.Array:
    if nvec is not None:
        return multi_categorical_log_prob(dist[0], actions, nvec)
    if discrete:
        return categorical_log_prob(dist[0], actions)
    return gaussian_log_prob(*dist, actions)


def entropy(dist: tuple[jax.Array, ...], discrete: bool,
            nvec: Sequence[int] | None = None) -> jax.Array:
    if nvec is not None:
        return multi_categorical_entropy(dist[0], nvec)
    if discrete:
        return categorical_entropy(dist[0])
    mean, log_std = dist
    return gaussian_entropy(jnp.broadcast_to(log_std, mean.shape))


def mode(dist: tuple[jax.Array, ...], discrete: bool,
         nvec: Sequence[int] | None = None) -> jax.Array:
    """The most likely action: the argmax of each categorical (int32), or the
    Gaussian's mean (its density peaks there; `log_std` does not move it)."""
    if nvec is not None:
        return jnp.stack([jnp.argmax(part, axis=-1).astype(jnp.int32)
                          for part in split_logits(dist[0], nvec)], axis=-1)
    if discrete:
        return jnp.argmax(dist[0], axis=-1).astype(jnp.int32)
    return dist[0]
