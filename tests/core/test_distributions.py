"""Tests for the categorical and diagonal-Gaussian policy distributions
(jppo.core.distributions)."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
import scipy.stats

from jppo.core import distributions

KEY = jax.random.PRNGKey(0)


def _random_logits(shape, seed=0):
    return np.random.default_rng(seed).normal(scale=2.0, size=shape).astype(np.float32)


def test_categorical_log_prob_matches_numpy_log_softmax():
    logits = _random_logits((2, 3, 5))
    actions = np.random.default_rng(1).integers(0, 5, size=(2, 3))
    log_probs = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
    expected = np.take_along_axis(log_probs, actions[..., None], axis=-1)[..., 0]
    out = distributions.categorical_log_prob(jnp.asarray(logits), jnp.asarray(actions))
    chex.assert_shape(out, (2, 3))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_categorical_log_prob_accepts_float_actions():
    """Actions stored in float buffers still index the right logit."""
    logits = jnp.log(jnp.array([[0.1, 0.2, 0.7]]))
    out = distributions.categorical_log_prob(logits, jnp.array([2.0]))
    np.testing.assert_allclose(out, np.log([0.7]), rtol=1e-5)


def test_categorical_entropy_matches_scipy():
    logits = _random_logits((7, 4), seed=2)
    probs = scipy.special.softmax(logits, axis=-1)
    out = distributions.categorical_entropy(jnp.asarray(logits))
    chex.assert_shape(out, (7,))
    np.testing.assert_allclose(out, scipy.stats.entropy(probs, axis=-1), rtol=1e-5)


def test_categorical_entropy_is_log_n_for_uniform_and_zero_for_a_sure_action():
    np.testing.assert_allclose(distributions.categorical_entropy(jnp.zeros(6)), math.log(6))
    peaked = jnp.array([0.0, 200.0, 0.0])
    np.testing.assert_allclose(distributions.categorical_entropy(peaked), 0.0, atol=1e-6)


def test_categorical_sample_frequencies_match_probabilities():
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    n = 40_000
    logits = jnp.broadcast_to(jnp.log(jnp.asarray(probs, jnp.float32)), (n, 4))
    actions = distributions.categorical_sample(KEY, logits)
    chex.assert_shape(actions, (n,))
    chex.assert_type(actions, jnp.int32)
    freq = np.bincount(np.asarray(actions), minlength=4) / n
    # the standard error of each frequency is below 0.0025
    np.testing.assert_allclose(freq, probs, atol=0.015)


def test_gaussian_log_prob_matches_scipy_summed_over_dims():
    rng = np.random.default_rng(3)
    mean = rng.normal(size=(6, 3)).astype(np.float32)
    log_std = rng.normal(scale=0.5, size=(3,)).astype(np.float32)  # shared over the batch
    actions = rng.normal(size=(6, 3)).astype(np.float32)
    expected = scipy.stats.norm.logpdf(actions, loc=mean, scale=np.exp(log_std)).sum(axis=-1)
    out = distributions.gaussian_log_prob(jnp.asarray(mean), jnp.asarray(log_std), actions)
    chex.assert_shape(out, (6,))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_gaussian_entropy_matches_scipy_summed_over_dims():
    log_std = np.array([-1.0, 0.0, 0.7], np.float32)
    expected = scipy.stats.norm.entropy(scale=np.exp(log_std)).sum()
    np.testing.assert_allclose(distributions.gaussian_entropy(log_std), expected, rtol=1e-6)


def test_gaussian_sample_mean_and_std():
    mean = jnp.array([1.0, -2.0, 0.0])
    log_std = jnp.log(jnp.array([0.5, 2.0, 1.0]))
    n = 40_000
    samples = distributions.gaussian_sample(KEY, jnp.broadcast_to(mean, (n, 3)), log_std)
    chex.assert_shape(samples, (n, 3))
    # standard error of the mean is std / 200 <= 0.01
    np.testing.assert_allclose(samples.mean(axis=0), mean, atol=0.05)
    np.testing.assert_allclose(samples.std(axis=0), jnp.exp(log_std), rtol=0.03)


def test_dispatch_discrete():
    logits = jnp.asarray(_random_logits((8, 3), seed=4))
    dist = (logits,)
    actions = distributions.sample(KEY, dist, discrete=True)
    chex.assert_shape(actions, (8,))
    np.testing.assert_allclose(
        distributions.log_prob(dist, actions, discrete=True),
        distributions.categorical_log_prob(logits, actions),
    )
    np.testing.assert_allclose(
        distributions.entropy(dist, discrete=True), distributions.categorical_entropy(logits)
    )


def test_dispatch_continuous_broadcasts_a_shared_log_std():
    mean = jnp.zeros((8, 2))
    log_std = jnp.array([0.0, -1.0])
    dist = (mean, log_std)
    actions = distributions.sample(KEY, dist, discrete=False)
    chex.assert_shape(actions, (8, 2))
    np.testing.assert_allclose(
        distributions.log_prob(dist, actions, discrete=False),
        scipy.stats.norm.logpdf(actions, scale=np.exp(log_std)).sum(-1),
        rtol=1e-5,
    )
    ent = distributions.entropy(dist, discrete=False)
    chex.assert_shape(ent, (8,))
    np.testing.assert_allclose(
        ent, np.full(8, scipy.stats.norm.entropy(scale=np.exp(log_std)).sum()), rtol=1e-6
    )
