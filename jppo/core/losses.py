"""PPO loss terms as pure functions of arrays (no network calls), so each can
be checked against a hand computation."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def clipped_surrogate(
    log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, clip_eps: jax.Array
) -> jax.Array:
    """-E[min(r A, clip(r, 1-eps, 1+eps) A)] with r = pi/pi_old."""
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -jnp.mean(jnp.minimum(unclipped, clipped))


def mse_value_loss(values: jax.Array, targets: jax.Array) -> jax.Array:
    """0.5 E[(V - R)^2]."""
    return 0.5 * jnp.mean((values - targets) ** 2)


def clipped_value_loss(
    values: jax.Array, old_values: jax.Array, targets: jax.Array, clip_eps: jax.Array
) -> jax.Array:
    """0.5 E[max((V - R)^2, (V_old + clip(V - V_old, +-eps) - R)^2)].

    `clip_eps` is in return units, which is why it silently freezes the critic
    when returns are in the thousands.
    """
    clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum((values - targets) ** 2, (clipped - targets) ** 2))


def value_clip_fraction(
    values: jax.Array, old_values: jax.Array, clip_eps: jax.Array
) -> jax.Array:
    """Share of samples whose value moved further than the clip allows."""
    return jnp.mean((jnp.abs(values - old_values) > clip_eps).astype(jnp.float32))


def normalize(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    return (x - jnp.mean(x)) / (jnp.std(x) + eps)


def approx_kl(log_prob: jax.Array, old_log_prob: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(k1, k3) estimators of KL(pi_old || pi) from samples of pi_old.

    k1 = E[-log r] is unbiased but noisy and can go negative; k3 = E[(r - 1) - log r]
    is unbiased and always >= 0 (Schulman, "Approximating KL divergence").
    """
    log_ratio = log_prob - old_log_prob
    k1 = jnp.mean(-log_ratio)
    k3 = jnp.mean(jnp.expm1(log_ratio) - log_ratio)
    return k1, k3


def clip_fraction(log_prob: jax.Array, old_log_prob: jax.Array, clip_eps: jax.Array) -> jax.Array:
    ratio = jnp.exp(log_prob - old_log_prob)
    return jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32))


def explained_variance(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """1 - Var[R - V] / Var[R]; negative means worse than predicting the mean.

    NaN when the targets have zero variance (nothing to explain).
    """
    var_targets = jnp.var(targets)
    return jnp.where(var_targets > 0, 1.0 - jnp.var(targets - predictions) / var_targets, jnp.nan)


def huber_value_loss(values: jax.Array, targets: jax.Array, delta: jax.Array) -> jax.Array:
    """E[huber_delta(V - R)]: quadratic within `delta`, linear beyond, so a few
    huge returns cannot dominate the critic gradient."""
    error = jnp.abs(values - targets)
    quadratic = jnp.minimum(error, delta)
    return jnp.mean(0.5 * quadratic**2 + delta * (error - quadratic))


def standardize(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Zero mean, unit std over the whole array."""
    return (x - jnp.mean(x)) / (jnp.std(x) + eps)


def robust_normalize(x: jax.Array, threshold: jax.Array) -> jax.Array:
    """Center; divide by the std only when it exceeds `threshold`, so that
    near-constant advantages are not blown up into unit-variance noise."""
    centered = x - jnp.mean(x)
    std = jnp.std(x)
    return jnp.where(std > threshold, centered / jnp.maximum(std, 1e-8), centered)


def hl_gauss_targets(
    targets: jax.Array, bin_edges: jax.Array, sigma: jax.Array
) -> jax.Array:
    """Histogram targets: the mass of N(target, sigma^2) falling in each bin
    (Farebrother et al. 2024), renormalized over the support. Targets are first
    clipped to the support, as in the paper, so an out-of-range return still
    pulls toward the edge instead of yielding an all-zero row."""
    targets = jnp.clip(targets, bin_edges[0], bin_edges[-1])
    cdf = jax.scipy.special.erf((bin_edges - targets[..., None]) / (jnp.sqrt(2.0) * sigma))
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / jnp.maximum(jnp.sum(mass, axis=-1, keepdims=True), 1e-12)


def hl_gauss_loss(
    logits: jax.Array, targets: jax.Array, bin_edges: jax.Array, sigma: jax.Array
) -> jax.Array:
    """Cross-entropy of the critic's bin logits against the HL-Gauss histogram."""
    probs = hl_gauss_targets(targets, bin_edges, sigma)
    return -jnp.mean(jnp.sum(probs * jax.nn.log_softmax(logits), axis=-1))


def hl_gauss_value(logits: jax.Array, bin_edges: jax.Array) -> jax.Array:
    """The critic's scalar prediction: expected bin center under softmax(logits)."""
    centers = 0.5 * (bin_edges[1:] + bin_edges[:-1])
    return jnp.sum(jax.nn.softmax(logits) * centers, axis=-1)


def kl_penalty_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array,
                         kl_coef: jax.Array) -> jax.Array:
    """-E[r A] + beta KL(pi_old || pi), PPO's adaptive-KL objective (Schulman et
    al. 2017, eq. 8). The KL is the k3 sample estimate E[(r - 1) - log r] on the
    stored actions: the batch keeps old log-probabilities, not old distributions."""
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    kl = jnp.mean(jnp.expm1(log_ratio) - log_ratio)
    return -jnp.mean(ratio * advantages) + kl_coef * kl


def dpo_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array,
                  alpha: jax.Array, beta: jax.Array) -> jax.Array:
    """-E[r A - drift(r, A)], Discovered Policy Optimisation (Lu et al. 2022):

        drift = relu((r - 1) A - alpha tanh((r - 1) A / alpha))   where A >= 0
        drift = relu(log(r) A - beta tanh(log(r) A / beta))       where A < 0

    A smooth trust region discovered by meta-learning: zero drift near r = 1,
    growing once the ratio moves in the direction the advantage rewards."""
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    gain, log_gain = (ratio - 1.0) * advantages, log_ratio * advantages
    drift_pos = jax.nn.relu(gain - alpha * jnp.tanh(gain / alpha))
    drift_neg = jax.nn.relu(log_gain - beta * jnp.tanh(log_gain / beta))
    drift = jnp.where(advantages >= 0.0, drift_pos, drift_neg)
    return -jnp.mean(ratio * advantages - drift)
