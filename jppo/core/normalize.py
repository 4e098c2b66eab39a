"""Running statistics and value-target transforms, as pure functions on pytrees.

- `RunningStats`: count/mean/M2 merged batch-wise (Chan et al.), exact for any
  batch split; used for observation normalization and reward scaling.
- reward scaling: rewards divided by the running std of the discounted return
  (no mean subtraction), clipped; the return is accumulated per env.
- symlog / symexp (DreamerV3).
- PopArt (van Hasselt et al. 2016): EMA of the first and second moments of the
  value targets; when they move, the value head's last layer is rescaled so
  the unnormalized predictions stay exactly the same.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStats:
    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @property
    def var(self) -> jax.Array:
        return self.m2 / jnp.maximum(self.count, 1.0)

    @property
    def std(self) -> jax.Array:
        return jnp.sqrt(self.var)


def init_stats(shape: tuple[int, ...] = ()) -> RunningStats:
    # count starts at a tiny epsilon like SB3's VecNormalize, so the first
    # batch dominates and the variance is never 0/0.
    return RunningStats(jnp.asarray(1e-4, jnp.float32), jnp.zeros(shape, jnp.float32),
                        jnp.full(shape, 1e-4, jnp.float32))


def update_stats(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Merge `batch` (leading axes are samples) into `stats`."""
    feature_shape = stats.mean.shape
    x = batch.reshape((-1, *feature_shape)).astype(jnp.float32)
    n = jnp.asarray(x.shape[0], jnp.float32)
    batch_mean = jnp.mean(x, axis=0)
    batch_m2 = jnp.sum((x - batch_mean) ** 2, axis=0)
    total = stats.count + n
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * n / total
    m2 = stats.m2 + batch_m2 + delta**2 * stats.count * n / total
    return RunningStats(total, mean, m2)


def normalize_obs(obs: jax.Array, stats: RunningStats, clip: jax.Array) -> jax.Array:
    return jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + 1e-8), -clip, clip)


def discounted_returns(
    rewards: jax.Array, done: jax.Array, running: jax.Array, gamma: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Per-env discounted return accumulated along a `(T, N)` rollout and reset at
    episode ends; returns (the accumulator after each step, the final accumulator)."""

    def step(acc, inputs):
        reward, is_done = inputs
        acc = acc * gamma + reward
        return jnp.where(is_done, 0.0, acc), acc

    final, seen = jax.lax.scan(step, running, (rewards, done))
    return seen, final


def scale_rewards(rewards: jax.Array, return_stats: RunningStats, clip: jax.Array) -> jax.Array:
    """r / std(discounted return), clipped to +-clip; no mean subtraction."""
    return jnp.clip(rewards / jnp.sqrt(return_stats.var + 1e-8), -clip, clip)


def symlog(x: jax.Array) -> jax.Array:
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: jax.Array) -> jax.Array:
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


@struct.dataclass
class PopArtStats:
    mean: jax.Array
    second_moment: jax.Array

    def sigma(self, sigma_min: float = 1e-4, sigma_max: float = 1e6) -> jax.Array:
        var = self.second_moment - self.mean**2
        return jnp.clip(jnp.sqrt(jnp.maximum(var, 0.0)), sigma_min, sigma_max)


def init_popart() -> PopArtStats:
    return PopArtStats(jnp.zeros((), jnp.float32), jnp.ones((), jnp.float32))


def popart_update(
    stats: PopArtStats, head: dict, targets: jax.Array, step_size: jax.Array
) -> tuple[PopArtStats, dict]:
    """Move the target moments toward this batch and rescale the value head
    (`{"kernel", "bias"}`, output = sigma * (h W + b) + mu) to preserve outputs:
    W' = W sigma / sigma',  b' = (sigma b + mu - mu') / sigma'."""
    new = PopArtStats(
        (1.0 - step_size) * stats.mean + step_size * jnp.mean(targets),
        (1.0 - step_size) * stats.second_moment + step_size * jnp.mean(targets**2),
    )
    sigma, new_sigma = stats.sigma(), new.sigma()
    rescaled = {
        **head,
        "kernel": head["kernel"] * sigma / new_sigma,
        "bias": (sigma * head["bias"] + stats.mean - new.mean) / new_sigma,
    }
    return new, rescaled


# DreamerV3's return normalizer: the 5th and 95th percentiles of the batch's
# returns, each an EMA with decay 0.99 started at 0 (not bias-corrected).
RETURN_PERCENTILES = (5.0, 95.0)
RETURN_SPREAD_DECAY = 0.99


@struct.dataclass
class ReturnSpread:
    low: jax.Array  # EMA of the 5th percentile of the returns
    high: jax.Array  # EMA of the 95th percentile

    def scale(self) -> jax.Array:
        """max(1, high - low): the divisor of the advantages. Below a spread of 1
        nothing is scaled up, so small returns keep their small advantages."""
        return jnp.maximum(1.0, self.high - self.low)


def init_return_spread() -> ReturnSpread:
    return ReturnSpread(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))


def update_return_spread(spread: ReturnSpread, returns: jax.Array,
                         decay: float = RETURN_SPREAD_DECAY) -> ReturnSpread:
    """Move each percentile EMA toward this batch's (Hafner et al. 2023, DreamerV3)."""
    low, high = jnp.percentile(returns.astype(jnp.float32), jnp.asarray(RETURN_PERCENTILES))
    return ReturnSpread(decay * spread.low + (1.0 - decay) * low,
                        decay * spread.high + (1.0 - decay) * high)
