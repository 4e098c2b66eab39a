"""Tests for run configuration (jppo.core.config): validation messages, coercions, HParams."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jppo.core.config import (
    HPARAM_FIELDS,
    HParams,
    PPOConfig,
    check_value,
    make_config,
    validate_hparams,
)

# (overrides, field the error must name). Every message starts with "<field>=".
INVALID = [
    # batch shape
    (dict(num_envs=4, num_steps=10, num_minibatches=3), "num_minibatches"),
    (dict(num_envs=2, num_steps=2, num_minibatches=8), "num_minibatches"),
    (dict(total_timesteps=100), "total_timesteps"),  # one rollout is 4 * 128 = 512
    (dict(num_envs=0), "num_envs"),
    (dict(num_steps=-1), "num_steps"),
    (dict(update_epochs=2.5), "update_epochs"),
    (dict(num_minibatches=True), "num_minibatches"),
    # learning rates
    (dict(lr=0.0), "lr"),
    (dict(lr=-1e-3), "lr"),
    (dict(lr="1e-3"), "lr"),
    (dict(policy_lr=0.0), "policy_lr"),
    (dict(policy_lr=-1e-4), "policy_lr"),
    (dict(value_lr=0.0), "value_lr"),
    (dict(value_lr=-1.0), "value_lr"),
    (dict(torso_lr=0.0), "torso_lr"),
    (dict(adam_eps=0.0), "adam_eps"),
    (dict(max_grad_norm=0.0), "max_grad_norm"),
    # returns and losses
    (dict(gamma=1.01), "gamma"),
    (dict(gamma=0.0), "gamma"),
    (dict(gamma=math.nan), "gamma"),
    (dict(gae_lambda=-0.1), "gae_lambda"),
    (dict(gae_lambda=1.5), "gae_lambda"),
    (dict(critic_lambda=1.1), "critic_lambda"),
    (dict(clip_eps=0.0), "clip_eps"),
    (dict(value_clip_eps=-0.2), "value_clip_eps"),
    (dict(ent_coef=-0.01), "ent_coef"),
    (dict(vf_coef=-0.5), "vf_coef"),
    (dict(policy_output_gain=0.0), "policy_output_gain"),
    (dict(value_output_gain=-1.0), "value_output_gain"),
    (dict(log_std_init=math.inf), "log_std_init"),
    # static choices
    (dict(activation="sigmoid"), "activation"),
    (dict(value_activation="softplus"), "value_activation"),
    (dict(lr_schedule="exponential"), "lr_schedule"),
    (dict(value_loss="expectile"), "value_loss"),
    # network structure
    (dict(policy_hidden=(64, 0)), "policy_hidden"),
    (dict(value_hidden=(-64,)), "value_hidden"),
    (dict(torso_hidden=(64.0,)), "torso_hidden"),
    (dict(value_hidden=(True,)), "value_hidden"),
    (dict(policy_hidden="64"), "policy_hidden"),
    (dict(value_layer_norm=1), "value_layer_norm"),
    (dict(value_layer_norm="yes"), "value_layer_norm"),
    (dict(obs_norm=0), "obs_norm"),
]


@pytest.mark.parametrize(
    ("overrides", "field"), INVALID, ids=[f"{f}-{i}" for i, (_, f) in enumerate(INVALID)]
)
def test_invalid_value_error_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=rf"^{field}=.* is invalid"):
        PPOConfig(**overrides)
    # the same check runs on replace() and make_config()
    with pytest.raises(ValueError, match=rf"^{field}="):
        PPOConfig().replace(**overrides)
    with pytest.raises(ValueError, match=rf"^{field}="):
        make_config(**overrides)


def test_invalid_value_error_shows_the_plain_value():
    with pytest.raises(ValueError, match=r"^gamma=1\.5 is invalid"):
        PPOConfig(gamma=1.5)


def test_non_numeric_hyperparameter_error_names_the_field():
    with pytest.raises(ValueError, match=r"^gamma="):
        PPOConfig(gamma="abc")


def test_infinite_lr_is_rejected_like_the_group_learning_rates():
    with pytest.raises(ValueError, match=r"^lr="):
        PPOConfig(lr=math.inf)


def test_a_valid_config_yields_valid_hparams():
    for config in (PPOConfig(), PPOConfig(lr=1.0, gamma=1.0, gae_lambda=0.0, ent_coef=0.0)):
        validate_hparams(config.hparams())


@pytest.mark.parametrize("factory", [PPOConfig().replace, make_config])
def test_unknown_field_is_named(factory):
    with pytest.raises(ValueError, match="'bogus'"):
        factory(bogus=1)


def test_integral_floats_and_lists_are_coerced():
    config = PPOConfig(total_timesteps=5e5, num_envs=8.0, policy_hidden=[32, 16])
    assert config.total_timesteps == 500_000
    assert type(config.total_timesteps) is int
    assert type(config.num_envs) is int
    assert config.policy_hidden == (32, 16)
    assert config.num_updates == 500_000 // (8 * 128)


def test_derived_sizes():
    config = PPOConfig(num_envs=8, num_steps=32, total_timesteps=10_000, num_minibatches=4,
                       update_epochs=3)
    assert config.batch_size == 256
    assert config.minibatch_size == 64
    assert config.num_updates == 39
    assert config.steps_per_update == 12


def test_hparams_defaults_fall_back_to_shared_values():
    config = PPOConfig(lr=1e-3, gae_lambda=0.9, clip_eps=0.3)
    hp = config.hparams()
    for name in ("policy_lr", "value_lr", "torso_lr"):
        np.testing.assert_allclose(getattr(hp, name), 1e-3, rtol=1e-6)
    np.testing.assert_allclose(hp.critic_lambda, 0.9, rtol=1e-6)
    np.testing.assert_allclose(hp.value_clip_eps, 0.3, rtol=1e-6)
    assert tuple(vars(hp)) == HPARAM_FIELDS
    for leaf in jax.tree.leaves(hp):
        chex.assert_shape(leaf, ())
        chex.assert_type(leaf, jnp.float32)


def test_hparams_explicit_values_override_the_fallbacks():
    config = PPOConfig(lr=1e-3, policy_lr=3e-4, value_lr=2e-3, torso_lr=5e-4,
                       critic_lambda=1.0, value_clip_eps=10.0)
    hp = config.hparams()
    np.testing.assert_allclose(
        [hp.policy_lr, hp.value_lr, hp.torso_lr, hp.critic_lambda, hp.value_clip_eps],
        [3e-4, 2e-3, 5e-4, 1.0, 10.0],
        rtol=1e-6,
    )
    np.testing.assert_allclose(hp.gae_lambda, 0.95, rtol=1e-6)


def _batched(hparams: HParams, n: int = 3) -> HParams:
    return jax.tree.map(lambda x: jnp.stack([x] * n), hparams)


def test_validate_hparams_rejects_one_bad_entry_in_a_batch():
    batched = _batched(PPOConfig().hparams())
    validate_hparams(batched)
    bad = batched.replace(clip_eps=jnp.array([0.2, -0.1, 0.2]))
    with pytest.raises(ValueError, match=r"^clip_eps="):
        validate_hparams(bad)
    bad = batched.replace(gamma=jnp.array([0.99, 0.9, 1.5]))
    with pytest.raises(ValueError, match=r"^gamma="):
        validate_hparams(bad)


def test_validate_hparams_skips_tracers():
    """Inside jit the values are unknown; validation must not fail (nor concretize)."""
    bad = PPOConfig().hparams().replace(gamma=jnp.float32(3.0))

    def f(hp):
        validate_hparams(hp)
        return hp.gamma * 2.0

    np.testing.assert_allclose(jax.jit(f)(bad), 6.0)
    np.testing.assert_allclose(jax.vmap(f)(_batched(bad)), [6.0] * 3)


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("gamma", [1.0, 1e-3], [0.0, 1.0001]),
        ("gae_lambda", [0.0, 1.0], [-1e-6, 1.0001]),
        ("ent_coef", [0.0, 10.0], [-1e-6, math.inf]),
        ("max_grad_norm", [1e-8, math.inf], [0.0, -1.0]),
    ],
)
def test_check_value_range_edges(field, good, bad):
    for value in good:
        check_value(field, value)
    for value in bad:
        with pytest.raises(ValueError, match=rf"^{field}="):
            check_value(field, value)
