"""Tests for generalized advantage estimation (jppo.core.gae) against plain numpy loops."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jppo.core.gae import actor_critic_targets, gae

T, N = 17, 5
GAMMA = 0.99


def reference_gae(rewards, values, next_values, terminated, done, gamma, lam):
    """Reverse loop over time, written directly from the GAE recursion."""
    rewards, values, next_values, terminated, done = (
        np.asarray(x, np.float64) for x in (rewards, values, next_values, terminated, done)
    )
    adv = np.zeros_like(values)
    next_adv = np.zeros(values.shape[1:])
    for t in reversed(range(values.shape[0])):
        delta = rewards[t] + gamma * (1.0 - terminated[t]) * next_values[t] - values[t]
        next_adv = delta + gamma * lam * (1.0 - done[t]) * next_adv
        adv[t] = next_adv
    return adv


def reference_returns(rewards, next_values, terminated, truncated, gamma):
    """Discounted Monte-Carlo return, bootstrapped from next_value at truncations and
    at the last step of the rollout, zero after a termination."""
    returns = np.zeros(rewards.shape)
    for n in range(rewards.shape[1]):
        for t in reversed(range(rewards.shape[0])):
            if terminated[t, n]:
                tail = 0.0
            elif truncated[t, n] or t == rewards.shape[0] - 1:
                tail = next_values[t, n]
            else:
                tail = returns[t + 1, n]
            returns[t, n] = rewards[t, n] + gamma * tail
    return returns


def random_rollout(seed=0, consistent=False):
    """Random (T, N) rollout with terminations and truncations in the middle.

    With `consistent`, next_values[t] == values[t + 1] wherever the episode goes on,
    as in a real rollout (V of the same observation); otherwise they are independent.
    """
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    next_values = rng.normal(size=(T, N)).astype(np.float32)
    terminated = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    terminated[[3, 9, 12], [0, 1, 4]] = True
    truncated[[5, 10, 2], [0, 2, 3]] = True
    terminated[7, 3] = truncated[7, 3] = True  # both flags at once
    terminated |= rng.random((T, N)) < 0.05
    truncated |= rng.random((T, N)) < 0.05
    done = terminated | truncated
    if consistent:
        follows = ~done[:-1]
        next_values[:-1][follows] = values[1:][follows]
    return rewards, values, next_values, terminated, truncated


def test_gae_matches_numpy_reference_for_several_lambdas():
    rewards, values, next_values, terminated, truncated = random_rollout()
    done = terminated | truncated
    lambdas = np.array([0.0, 0.5, 0.95, 1.0], np.float32)
    adv = gae(
        jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(next_values),
        jnp.asarray(terminated), jnp.asarray(done), GAMMA, jnp.asarray(lambdas),
    )
    chex.assert_shape(adv, (len(lambdas), T, N))
    for i, lam in enumerate(lambdas):
        expected = reference_gae(rewards, values, next_values, terminated, done, GAMMA, lam)
        np.testing.assert_allclose(adv[i], expected, rtol=1e-5, atol=1e-5)


def test_gae_with_lambda_zero_is_the_one_step_td_error():
    rewards, values, next_values, terminated, truncated = random_rollout(seed=1)
    adv = gae(rewards, values, next_values, terminated, terminated | truncated, GAMMA,
              jnp.array([0.0]))[0]
    td = rewards + GAMMA * (1.0 - terminated) * next_values - values
    np.testing.assert_allclose(adv, td, rtol=1e-6, atol=1e-6)


def test_actor_critic_targets_use_decoupled_lambdas():
    """Actor advantages use actor_lambda; critic targets are critic-lambda advantages + V."""
    rewards, values, next_values, terminated, truncated = random_rollout(seed=2)
    done = terminated | truncated
    adv, targets = actor_critic_targets(
        rewards, values, next_values, terminated, truncated,
        jnp.float32(GAMMA), jnp.float32(0.95), jnp.float32(1.0),
    )
    chex.assert_shape([adv, targets], (T, N))
    expected_adv = reference_gae(rewards, values, next_values, terminated, done, GAMMA, 0.95)
    expected_targets = (
        reference_gae(rewards, values, next_values, terminated, done, GAMMA, 1.0) + values
    )
    np.testing.assert_allclose(adv, expected_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, expected_targets, rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected_adv + values, expected_targets)  # the lambdas matter


def test_critic_targets_with_lambda_one_are_bootstrapped_monte_carlo_returns():
    rewards, values, next_values, terminated, truncated = random_rollout(seed=3, consistent=True)
    _, targets = actor_critic_targets(
        rewards, values, next_values, terminated, truncated,
        jnp.float32(GAMMA), jnp.float32(0.95), jnp.float32(1.0),
    )
    expected = reference_returns(rewards, next_values, terminated, truncated, GAMMA)
    np.testing.assert_allclose(targets, expected, rtol=1e-4, atol=1e-4)


# Three steps, gamma = lambda = 0.5, values chosen so every number is exact in binary.
# TD errors without episode ends: 1 + .5*1 - .5 = 1,  2 + .5*1.5 - 1 = 1.75,  3 + .5*2 - 1.5 = 2.5
@pytest.mark.parametrize(
    ("terminated", "truncated", "expected"),
    [
        # A2 = 2.5, A1 = 1.75 + .25*2.5 = 2.375, A0 = 1 + .25*2.375 = 1.59375
        ([0, 0, 0], [0, 0, 0], [1.59375, 2.375, 2.5]),
        # termination at t=1: delta1 = 2 - 1 = 1 (no bootstrap), A1 = 1, A0 = 1 + .25*1
        ([0, 1, 0], [0, 0, 0], [1.25, 1.0, 2.5]),
        # truncation at t=1: delta1 = 1.75 (bootstraps), A1 = 1.75, A0 = 1 + .25*1.75
        ([0, 0, 0], [0, 1, 0], [1.4375, 1.75, 2.5]),
    ],
    ids=["no-end", "terminated", "truncated"],
)
def test_hand_computed_three_step_example(terminated, truncated, expected):
    rewards = jnp.array([1.0, 2.0, 3.0])
    values = jnp.array([0.5, 1.0, 1.5])
    next_values = jnp.array([1.0, 1.5, 2.0])
    adv, targets = actor_critic_targets(
        rewards, values, next_values, jnp.array(terminated, bool), jnp.array(truncated, bool),
        jnp.float32(0.5), jnp.float32(0.5), jnp.float32(0.5),
    )
    np.testing.assert_array_equal(adv, np.array(expected, np.float32))
    np.testing.assert_array_equal(targets, np.array(expected, np.float32) + values)


def _advantages(next_values, rollout):
    rewards, values, _, terminated, truncated = rollout
    adv, _ = actor_critic_targets(
        rewards, values, next_values, terminated, truncated,
        jnp.float32(GAMMA), jnp.float32(0.95), jnp.float32(1.0),
    )
    return np.asarray(adv)


def test_terminated_step_ignores_next_value_but_truncated_step_bootstraps():
    rollout = random_rollout(seed=4)
    _, _, next_values, terminated, truncated = rollout
    base = _advantages(next_values, rollout)

    t, n = 3, 0
    assert terminated[t, n] and not truncated[t, n]
    changed = next_values.copy()
    changed[t, n] += 10.0
    np.testing.assert_array_equal(_advantages(changed, rollout), base)

    t, n = 5, 0
    assert truncated[t, n] and not terminated[t, n]
    changed = next_values.copy()
    changed[t, n] += 10.0
    diff = _advantages(changed, rollout) - base
    np.testing.assert_allclose(diff[t, n], GAMMA * 10.0, rtol=1e-5)
    # the change reaches earlier steps of the same episode, not the next episode
    assert abs(diff[t - 1, n]) > 0
    np.testing.assert_array_equal(diff[t + 1 :, n], 0.0)
    np.testing.assert_array_equal(np.delete(diff, n, axis=1), 0.0)


def test_gae_is_jittable_with_traced_gamma_and_lambdas():
    rewards, values, next_values, terminated, truncated = random_rollout(seed=5)
    done = terminated | truncated
    jitted = jax.jit(gae)
    lambdas = jnp.array([0.9, 1.0])
    adv = jitted(rewards, values, next_values, terminated, done, jnp.float32(0.9), lambdas)
    eager = gae(rewards, values, next_values, terminated, done, jnp.float32(0.9), lambdas)
    np.testing.assert_allclose(adv, eager, rtol=1e-6, atol=1e-6)
    targets = jax.jit(actor_critic_targets)(
        rewards, values, next_values, terminated, truncated,
        jnp.float32(0.9), jnp.float32(0.9), jnp.float32(1.0),
    )[1]
    np.testing.assert_allclose(targets, eager[1] + values, rtol=1e-6, atol=1e-6)
