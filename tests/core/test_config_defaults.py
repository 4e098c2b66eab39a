"""The three defaults of issue 8, as decided: observation statistics warmed up
before the first update, no silent HL-Gauss support for raw returns, and the
value target that only scales the loss named for what it does."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jppo
from jppo import envs
from jppo.core import train
from jppo.core.strategies import VALUE_TARGETS, Registry, hl_gauss_support
from jppo.core.strategies.value import bin_edges

CARTPOLE = dict(num_envs=4, num_steps=128, total_timesteps=512, diagnostics=False)


# --------------------------------------------------- observation normalization


@functools.cache
def first_rollout(warmup: int):
    """(initial state, the first rollout's transitions) on CartPole with obs_norm."""
    config = jppo.PPOConfig(**CARTPOLE, obs_norm=True, obs_norm_warmup=warmup)
    setup = train.make_setup(config, *envs.make("CartPole-v1"))
    hp = config.hparams()
    state = jax.jit(functools.partial(train.init, setup))(jax.random.PRNGKey(0), hp)
    traj = jax.jit(functools.partial(train.rollout, setup))(
        state, hp, jax.random.PRNGKey(1)).traj
    return state, traj, float(hp.obs_clip)


def clipped_fraction(warmup: int) -> float:
    _, traj, clip = first_rollout(warmup)
    return float(np.mean(np.abs(np.asarray(traj.obs)) >= clip - 1e-6))


def test_reset_observations_alone_clip_much_of_the_first_rollout():
    """The old behaviour (warm-up 0), kept reachable: about a third clipped."""
    assert clipped_fraction(0) > 0.2


def test_warmed_up_statistics_clip_almost_nothing_in_the_first_rollout():
    assert clipped_fraction(jppo.PPOConfig().obs_norm_warmup) < 0.03


def test_warm_up_only_feeds_the_observation_statistics():
    """Counted against the configuration (reset observations, then one rollout of
    num_envs * num_steps), and nothing else of the state moves: same parameters,
    no update counted."""
    cold, _, _ = first_rollout(0)
    warm, _, _ = first_rollout(1)
    expected = 1e-4 + CARTPOLE["num_envs"] * (1 + CARTPOLE["num_steps"])
    np.testing.assert_allclose(float(warm.norm.obs.count), expected, rtol=1e-6)
    np.testing.assert_allclose(float(cold.norm.obs.count), 1e-4 + CARTPOLE["num_envs"],
                               rtol=1e-6)
    assert int(warm.update_count) == 0
    jax.tree.map(np.testing.assert_array_equal, warm.params, cold.params)


# -------------------------------------------------------------- HL-Gauss support


def test_hl_gauss_on_raw_returns_without_a_support_is_rejected_in_one_line():
    for changes in ({}, {"value_target": "raw"}, {"hl_gauss_range": None}):
        with pytest.raises(ValueError) as info:
            jppo.PPOConfig(value_loss="hl_gauss", **changes)
        message = str(info.value)
        assert "\n" not in message
        for field in ("value_loss='hl_gauss'", "value_target='raw'", "hl_gauss_range",
                      "symlog"):
            assert field in message, message


def test_hl_gauss_support_is_explicit_or_the_targets_default():
    explicit = jppo.PPOConfig(value_loss="hl_gauss", hl_gauss_range=(-5.0, 120.0),
                              hl_gauss_bins=25)
    assert hl_gauss_support(explicit) == (-5.0, 120.0)
    np.testing.assert_allclose(bin_edges(explicit), np.linspace(-5.0, 120.0, 26), atol=1e-5)
    symlog = jppo.PPOConfig(value_loss="hl_gauss", value_target="symlog")
    assert hl_gauss_support(symlog) == (-10.0, 10.0)
    np.testing.assert_allclose(bin_edges(symlog), np.linspace(-10.0, 10.0, 52), atol=1e-5)
    # symlog's default covers returns far beyond any Gym task's
    assert float(np.expm1(10.0)) > 2e4
    assert hl_gauss_support(jppo.PPOConfig()) is None  # unused without hl_gauss


# ------------------------------------------------------ batch_scaled value target


def test_batch_standardize_is_an_old_name_of_batch_scaled():
    assert VALUE_TARGETS.get("batch_standardize") is VALUE_TARGETS.get("batch_scaled")
    assert "batch_standardize" in VALUE_TARGETS
    assert "batch_standardize" not in VALUE_TARGETS.names()
    with pytest.raises(ValueError, match=r"batch_scaled.*'batch_standardize' for "
                                         r"'batch_scaled'"):
        jppo.PPOConfig(value_target="batch_standardise")
    assert jppo.PPOConfig(value_target="batch_standardize").value_target == "batch_standardize"


def test_registry_aliases():
    registry: Registry[int] = Registry("thing")
    registry.register("new", 1)
    with pytest.raises(ValueError, match="thing='missing' is invalid"):
        registry.alias("old", "missing")
    registry.alias("old", "new")
    with pytest.raises(ValueError, match="cannot be an alias"):
        registry.alias("new", "new")
    assert registry.get("old") == 1 and registry.canonical("old") == "new"
    assert registry.describe() == "one of ['new'] (old names: 'old' for 'new')"
    assert [] not in registry
    registry.unregister("new")
    assert "old" not in registry


def test_batch_scaled_value_loss_on_a_collected_batch_against_numpy():
    """Targets and predictions stay raw (no mean is subtracted); the value loss
    is 0.5 mean((V - R)^2) / (std(R) + 1e-8)^2."""
    config = jppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=64, update_epochs=1,
                            num_minibatches=1, diagnostics=False, value_loss="mse",
                            value_target="batch_scaled")
    setup = train.make_setup(config, *envs.make("CartPole-v1"))
    hp = config.hparams()
    state = train.init(setup, jax.random.PRNGKey(0), hp)
    c = train.collect(setup, state, hp, jax.random.PRNGKey(1), hp.critic_lambda)
    batch = train.batch_of(setup, c, c.advantages)
    scale = setup.strategies.value_target.loss_scale(c.targets)
    got, _ = train.value_loss(setup, c.params, batch, c.norm, hp, scale)
    pred = np.asarray(train.critic_head(setup, c.params, batch.obs), np.float64)
    target = np.asarray(batch.target, np.float64)
    expected = 0.5 * np.mean((pred - target) ** 2) / (np.std(target) + 1e-8) ** 2
    np.testing.assert_allclose(float(got), expected, rtol=1e-4)
    assert abs(np.mean(target)) > 1.0  # a mean subtraction would have shown
    np.testing.assert_array_equal(
        np.asarray(setup.strategies.value_target.encode(jnp.asarray(target), c.norm)),
        np.asarray(jnp.asarray(target)))
