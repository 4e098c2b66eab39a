"""Tests for the PPO loss terms and diagnostics (jppo.core.losses) against hand computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jppo.core import losses

EPS = 0.2

# One sample per case of the clipped surrogate, eps = 0.2:
#   ratio  adv   r*A    clip(r)*A   min    which term wins
#   1.5    +2    3.0    2.4         2.4    clipped   (too optimistic -> no gradient)
#   1.5    -2   -3.0   -2.4        -3.0    unclipped (keeps the gradient)
#   0.5    +2    1.0    1.6         1.0    unclipped
#   0.5    -2   -1.0   -1.6        -1.6    clipped   (no gradient)
#   1.1    +1    1.1    1.1         1.1    inside the trust region
RATIOS = np.array([1.5, 1.5, 0.5, 0.5, 1.1])
ADVANTAGES = np.array([2.0, -2.0, 2.0, -2.0, 1.0], np.float32)
PESSIMISTIC_CLIPPED = np.array([True, False, False, True, False])


def _log_probs():
    return jnp.asarray(np.log(RATIOS), jnp.float32), jnp.zeros(len(RATIOS))


def test_clipped_surrogate_hand_computed():
    log_prob, old_log_prob = _log_probs()
    loss = losses.clipped_surrogate(log_prob, old_log_prob, ADVANTAGES, EPS)
    # -(2.4 - 3.0 + 1.0 - 1.6 + 1.1) / 5 = 0.02
    np.testing.assert_allclose(loss, 0.02, atol=1e-6)


def test_clipped_surrogate_matches_numpy_on_random_data():
    rng = np.random.default_rng(0)
    log_prob = rng.normal(scale=0.3, size=256).astype(np.float32)
    old_log_prob = rng.normal(scale=0.3, size=256).astype(np.float32)
    adv = rng.normal(size=256).astype(np.float32)
    ratio = np.exp(log_prob.astype(np.float64) - old_log_prob)
    expected = -np.mean(np.minimum(ratio * adv, np.clip(ratio, 1 - EPS, 1 + EPS) * adv))
    loss = losses.clipped_surrogate(log_prob, old_log_prob, adv, EPS)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_clipped_surrogate_gradient_is_zero_exactly_where_the_clip_is_pessimistic():
    log_prob, old_log_prob = _log_probs()
    grad = jax.grad(losses.clipped_surrogate)(log_prob, old_log_prob, ADVANTAGES, EPS)
    # d/dlogp of -(1/n) r A is -(1/n) r A on unclipped samples, 0 on clipped ones
    expected = np.where(PESSIMISTIC_CLIPPED, 0.0, -RATIOS * ADVANTAGES / len(RATIOS))
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)
    assert np.all(grad[PESSIMISTIC_CLIPPED] == 0.0)
    assert np.all(grad[~PESSIMISTIC_CLIPPED] != 0.0)


def test_clipped_surrogate_at_ratio_one_is_minus_mean_advantage():
    adv = jnp.array([1.0, -3.0, 0.5])
    zeros = jnp.zeros(3)
    np.testing.assert_allclose(losses.clipped_surrogate(zeros, zeros, adv, EPS), 0.5, rtol=1e-6)


def test_mse_value_loss_hand_computed():
    # squared errors 1, 0, 4 -> 0.5 * 5/3
    loss = losses.mse_value_loss(jnp.array([1.0, 2.0, 3.0]), jnp.array([0.0, 2.0, 5.0]))
    np.testing.assert_allclose(loss, 5.0 / 6.0, rtol=1e-6)


# old value 0, eps = 0.2:
#   V     R     (V-R)^2   V_clip  (V_clip-R)^2  max
#   1     2     1         0.2     3.24          3.24  clipped on the upper side
#  -1    -2     1        -0.2     3.24          3.24  clipped on the lower side
#   1    -1     4         0.2     1.44          4     moved away from the target: unclipped
#   0.1   1     0.81      0.1     0.81          0.81  inside the clip range
VALUES = jnp.array([1.0, -1.0, 1.0, 0.1])
OLD_VALUES = jnp.zeros(4)
TARGETS = jnp.array([2.0, -2.0, -1.0, 1.0])


def test_clipped_value_loss_hand_computed_both_sides():
    loss = losses.clipped_value_loss(VALUES, OLD_VALUES, TARGETS, EPS)
    np.testing.assert_allclose(loss, 0.5 * (3.24 + 3.24 + 4.0 + 0.81) / 4, rtol=1e-6)


def test_clipped_value_loss_gradient_vanishes_on_clipped_samples():
    grad = jax.grad(losses.clipped_value_loss)(VALUES, OLD_VALUES, TARGETS, EPS)
    # unclipped samples: d/dV 0.5/n (V-R)^2 = (V-R)/n
    np.testing.assert_allclose(grad, [0.0, 0.0, 2.0 / 4, -0.9 / 4], rtol=1e-6, atol=1e-7)


def test_clipped_value_loss_with_wide_clip_equals_mse():
    rng = np.random.default_rng(1)
    values, old_values, targets = rng.normal(size=(3, 64)).astype(np.float32)
    np.testing.assert_allclose(
        losses.clipped_value_loss(values, old_values, targets, 1e6),
        losses.mse_value_loss(values, targets),
        rtol=1e-6,
    )


def test_value_clip_fraction():
    np.testing.assert_allclose(losses.value_clip_fraction(VALUES, OLD_VALUES, EPS), 0.75)


def test_approx_kl_hand_computed():
    # log r = log 2, -log 2, 0: k1 = 0; k3 = ((1 - log 2) + (-1/2 + log 2) + 0) / 3 = 1/6
    log_prob = jnp.array([np.log(2.0), -np.log(2.0), 0.0], jnp.float32)
    k1, k3 = losses.approx_kl(log_prob, jnp.zeros(3))
    np.testing.assert_allclose(k1, 0.0, atol=1e-7)
    np.testing.assert_allclose(k3, 1.0 / 6.0, rtol=1e-6)


def test_approx_kl_estimators_are_exact_on_a_sample_that_matches_pi_old():
    """Samples in exact proportion to pi_old make both estimators equal KL(pi_old || pi)."""
    p_old = np.array([0.5, 0.25, 0.25])
    p_new = np.array([0.2, 0.3, 0.5])
    actions = np.array([0, 0, 1, 2])  # frequencies 1/2, 1/4, 1/4
    k1, k3 = losses.approx_kl(jnp.log(p_new[actions]), jnp.log(p_old[actions]))
    expected = scipy.stats.entropy(p_old, p_new)
    np.testing.assert_allclose(k1, expected, rtol=1e-5)
    np.testing.assert_allclose(k3, expected, rtol=1e-5)


def test_approx_kl_k1_can_be_negative_but_k3_cannot():
    rng = np.random.default_rng(2)
    log_ratio = np.abs(rng.normal(size=100)).astype(np.float32)  # every ratio > 1
    k1, k3 = losses.approx_kl(jnp.asarray(log_ratio), jnp.zeros(100))
    assert k1 < 0
    assert k3 > 0
    for seed in range(5):
        log_ratio = np.random.default_rng(seed).normal(size=50).astype(np.float32)
        _, k3 = losses.approx_kl(jnp.asarray(log_ratio), jnp.zeros(50))
        np.testing.assert_allclose(k3, np.mean(np.expm1(log_ratio) - log_ratio), rtol=1e-5)
        assert k3 >= 0


def test_clip_fraction_counts_both_sides():
    log_prob, old_log_prob = _log_probs()  # ratios 1.5, 1.5, 0.5, 0.5, 1.1
    np.testing.assert_allclose(losses.clip_fraction(log_prob, old_log_prob, EPS), 0.8)
    np.testing.assert_allclose(losses.clip_fraction(log_prob, old_log_prob, 0.6), 0.0)
    np.testing.assert_allclose(losses.clip_fraction(log_prob, old_log_prob, 0.05), 1.0)


def test_explained_variance_reference_values():
    rng = np.random.default_rng(3)
    targets = rng.normal(size=200).astype(np.float32)
    noisy = targets + 0.5 * rng.normal(size=200).astype(np.float32)
    expected = 1.0 - np.var(targets - noisy) / np.var(targets)
    np.testing.assert_allclose(losses.explained_variance(noisy, targets), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.explained_variance(targets, targets), 1.0)
    # a constant prediction (even a wrong one) explains nothing
    np.testing.assert_allclose(
        losses.explained_variance(jnp.full(200, 7.0), targets), 0.0, atol=1e-6
    )


def test_explained_variance_is_negative_for_predictions_worse_than_the_mean():
    targets = jnp.array([1.0, 2.0, 3.0, 4.0])
    # Var[R - (-R)] / Var[R] = 4  ->  1 - 4 = -3
    np.testing.assert_allclose(losses.explained_variance(-targets, targets), -3.0, rtol=1e-6)


def test_explained_variance_is_nan_for_constant_targets():
    ev = losses.explained_variance(jnp.array([1.0, 2.0, 3.0]), jnp.full(3, 5.0))
    assert np.isnan(ev)


def test_normalize_matches_numpy():
    rng = np.random.default_rng(4)
    x = (3.0 + 5.0 * rng.normal(size=128)).astype(np.float32)
    out = losses.normalize(jnp.asarray(x))
    np.testing.assert_allclose(out, (x - x.mean()) / (x.std() + 1e-8), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(jnp.mean(out), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(out), 1.0, rtol=1e-5)


@pytest.mark.parametrize(("scale", "shift"), [(0.01, -4.0), (100.0, 3.0)])
def test_normalize_is_invariant_to_positive_affine_maps(scale, shift):
    x = jnp.asarray(np.random.default_rng(5).normal(size=64), jnp.float32)
    np.testing.assert_allclose(
        losses.normalize(scale * x + shift), losses.normalize(x), rtol=1e-3, atol=1e-3
    )


def test_normalize_of_a_constant_is_finite_zero():
    np.testing.assert_array_equal(losses.normalize(jnp.full(8, 3.0)), np.zeros(8))


# Found by `make mutants` on jppo.core.losses: each test below fails for a mutant
# that survived the suite (value + old value, a variance floor of 1, a std floor of 1).
def test_value_clip_fraction_counts_moves_away_from_nonzero_old_values():
    old = np.array([10.0, -10.0, 5.0, 0.0], np.float32)
    new = old + np.array([0.1, -0.3, 0.25, 0.05], np.float32)
    expected = np.mean(np.abs(new - old) > 0.2)  # 2 of 4
    got = losses.value_clip_fraction(jnp.asarray(new), jnp.asarray(old), jnp.float32(0.2))
    np.testing.assert_allclose(float(got), expected)
    assert expected == 0.5


def test_explained_variance_of_small_scale_targets():
    rng = np.random.default_rng(0)
    targets = 0.01 * rng.normal(size=256).astype(np.float32)  # variance ~1e-4
    predictions = targets + 0.003 * rng.normal(size=256).astype(np.float32)
    expected = 1.0 - np.var(targets - predictions) / np.var(targets)
    got = float(losses.explained_variance(jnp.asarray(predictions), jnp.asarray(targets)))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert 0.5 < got < 1.0


def test_robust_normalize_scales_a_std_between_threshold_and_one():
    x = np.array([0.0, 0.2, 0.4, 0.6], np.float32)  # std ~0.22: above 1e-3, below 1
    expected = (x - x.mean()) / x.std()
    got = losses.robust_normalize(jnp.asarray(x), jnp.float32(1e-3))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)
