"""Tests for the actor-critic networks (jppo.core.networks): shapes, init scales, param groups."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jppo.core.config import PPOConfig
from jppo.core.networks import (
    ActorCritic,
    init_params,
    make_network,
    param_group,
    param_labels,
)

KEY = jax.random.PRNGKey(0)
BATCH = 7


def build(config, obs_dim, action_dim, discrete, key=KEY):
    network = make_network(config, action_dim, discrete)
    return network, init_params(network, key, obs_dim, config.hparams())


def singular_values(kernel):
    return np.linalg.svd(np.asarray(kernel, np.float64), compute_uv=False)


def test_discrete_shapes_cartpole_like():
    network, params = build(PPOConfig(), obs_dim=4, action_dim=2, discrete=True)
    obs = jnp.ones((BATCH, 4))
    (logits,), value = network.apply(params, obs)
    chex.assert_shape(logits, (BATCH, 2))
    chex.assert_shape(value, (BATCH,))
    assert "policy_log_std" not in params["params"]
    chex.assert_trees_all_close(network.apply(params, obs, method=ActorCritic.policy), (logits,))
    chex.assert_trees_all_close(network.apply(params, obs, method=ActorCritic.value), value)


def test_continuous_shapes():
    network, params = build(PPOConfig(), obs_dim=3, action_dim=2, discrete=False)
    (mean, log_std), value = network.apply(params, jnp.ones((BATCH, 3)))
    chex.assert_shape(mean, (BATCH, 2))
    chex.assert_shape(log_std, (2,))
    chex.assert_shape(value, (BATCH,))
    chex.assert_shape(params["params"]["policy_head"]["kernel"], (64, 2))


@pytest.mark.parametrize("gain", [1.0, 0.01])
def test_value_head_kernel_has_norm_equal_to_value_output_gain(gain):
    config = PPOConfig(value_output_gain=gain)
    _, params = build(config, obs_dim=4, action_dim=2, discrete=True)
    kernel = params["params"]["value_head"]["kernel"]
    chex.assert_shape(kernel, (64, 1))
    np.testing.assert_allclose(np.linalg.norm(kernel), gain, rtol=1e-5)
    np.testing.assert_array_equal(params["params"]["value_head"]["bias"], 0.0)


@pytest.mark.parametrize("discrete", [True, False])
def test_policy_head_singular_values_equal_policy_output_gain(discrete):
    config = PPOConfig()
    assert config.policy_output_gain == pytest.approx(0.01)
    _, params = build(config, obs_dim=4, action_dim=3, discrete=discrete)
    kernel = params["params"]["policy_head"]["kernel"]
    np.testing.assert_allclose(singular_values(kernel), np.full(3, 0.01), rtol=1e-5)


def test_output_gain_only_rescales_the_same_orthogonal_kernel():
    _, small = build(PPOConfig(value_output_gain=0.01), 4, 2, True)
    _, unit = build(PPOConfig(value_output_gain=1.0), 4, 2, True)
    np.testing.assert_allclose(
        small["params"]["value_head"]["kernel"],
        0.01 * unit["params"]["value_head"]["kernel"],
        rtol=1e-6,
    )
    chex.assert_trees_all_equal(small["params"]["policy_torso"], unit["params"]["policy_torso"])


def test_hidden_layers_are_orthogonal_with_gain_sqrt2():
    _, params = build(PPOConfig(), obs_dim=4, action_dim=2, discrete=True)
    for torso in ("policy_torso", "value_torso"):
        square = np.asarray(params["params"][torso]["Dense_1"]["kernel"], np.float64)
        chex.assert_shape(square, (64, 64))
        np.testing.assert_allclose(square.T @ square, 2.0 * np.eye(64), atol=1e-5)
        # the (4, 64) input layer has orthonormal rows scaled by sqrt(2)
        first = np.asarray(params["params"][torso]["Dense_0"]["kernel"], np.float64)
        np.testing.assert_allclose(first @ first.T, 2.0 * np.eye(4), atol=1e-5)
        np.testing.assert_allclose(singular_values(first), math.sqrt(2.0), rtol=1e-5)
        np.testing.assert_array_equal(params["params"][torso]["Dense_0"]["bias"], 0.0)


@pytest.mark.parametrize("log_std_init", [0.0, -0.5, 1.25])
def test_log_std_init_is_respected(log_std_init):
    config = PPOConfig(log_std_init=log_std_init)
    network, params = build(config, obs_dim=3, action_dim=2, discrete=False)
    np.testing.assert_allclose(params["params"]["policy_log_std"], [log_std_init] * 2)
    (_, log_std), _ = network.apply(params, jnp.zeros((1, 3)))
    np.testing.assert_allclose(log_std, [log_std_init] * 2)


def test_deep_value_net_with_layer_norm_has_the_right_params():
    config = PPOConfig(value_hidden=(256, 128, 64), value_layer_norm=True)
    network, params = build(config, obs_dim=3, action_dim=2, discrete=False)
    value_torso = params["params"]["value_torso"]
    expected_kernels = {"Dense_0": (3, 256), "Dense_1": (256, 128), "Dense_2": (128, 64)}
    for name, shape in expected_kernels.items():
        chex.assert_shape(value_torso[name]["kernel"], shape)
    for i, width in enumerate((256, 128, 64)):
        chex.assert_shape(value_torso[f"LayerNorm_{i}"]["scale"], (width,))
        chex.assert_shape(value_torso[f"LayerNorm_{i}"]["bias"], (width,))
    assert set(value_torso) == set(expected_kernels) | {f"LayerNorm_{i}" for i in range(3)}
    chex.assert_shape(params["params"]["value_head"]["kernel"], (64, 1))
    # LayerNorm is for the critic only
    assert not any(k.startswith("LayerNorm") for k in params["params"]["policy_torso"])
    chex.assert_shape(network.apply(params, jnp.ones((BATCH, 3)))[1], (BATCH,))


def test_layer_norm_makes_the_initial_value_invariant_to_input_scale():
    """At init (zero biases) LayerNorm cancels a positive rescaling of the observation."""
    obs = jax.random.normal(jax.random.PRNGKey(1), (BATCH, 3))
    with_ln = PPOConfig(value_hidden=(32, 32), value_layer_norm=True)
    network, params = build(with_ln, 3, 2, False)
    v = network.apply(params, obs, method=ActorCritic.value)
    np.testing.assert_allclose(
        network.apply(params, 10.0 * obs, method=ActorCritic.value), v, rtol=1e-4, atol=1e-5
    )
    network, params = build(with_ln.replace(value_layer_norm=False), 3, 2, False)
    v = network.apply(params, obs, method=ActorCritic.value)
    assert not np.allclose(network.apply(params, 10.0 * obs, method=ActorCritic.value), v)


def test_value_activation_defaults_to_activation_and_can_differ():
    assert make_network(PPOConfig(activation="relu"), 2, True).value_activation == "relu"
    config = PPOConfig(activation="tanh", value_activation="relu")
    network = make_network(config, 2, True)
    assert network.value_activation == "relu"
    assert network.activation == "tanh"
    params = init_params(network, KEY, 4, config.hparams())
    obs = jax.random.normal(jax.random.PRNGKey(2), (BATCH, 4))
    tanh_network = make_network(config.replace(value_activation=None), 2, True)
    assert not np.allclose(
        network.apply(params, obs, method=ActorCritic.value),
        tanh_network.apply(params, obs, method=ActorCritic.value),
    )


def test_shared_torso_network():
    config = PPOConfig(torso_hidden=(64,), policy_hidden=(), value_hidden=())
    network, params = build(config, obs_dim=4, action_dim=2, discrete=True)
    assert set(params["params"]) == {"torso", "policy_head", "value_head"}
    chex.assert_shape(params["params"]["torso"]["Dense_0"]["kernel"], (4, 64))
    chex.assert_shape(params["params"]["policy_head"]["kernel"], (64, 2))
    labels = param_labels(params)
    assert set(jax.tree.leaves(labels["params"]["torso"])) == {"torso"}
    chex.assert_trees_all_equal_structs(labels, params)

    # both heads read the shared torso, so both depend on its parameters
    obs = jnp.ones((BATCH, 4))
    for method in (ActorCritic.policy, ActorCritic.value):
        grads = jax.grad(
            lambda p, m=method: jnp.sum(jax.tree.leaves(network.apply(p, obs, method=m))[0])
        )(params)
        assert np.linalg.norm(grads["params"]["torso"]["Dense_0"]["kernel"]) > 0


def test_param_labels_assign_policy_and_value_groups():
    _, params = build(PPOConfig(), obs_dim=3, action_dim=2, discrete=False)
    labels = param_labels(params)
    chex.assert_trees_all_equal_structs(labels, params)
    expected = {
        "policy_torso": "policy",
        "policy_head": "policy",
        "policy_log_std": "policy",
        "value_torso": "value",
        "value_head": "value",
    }
    assert set(labels["params"]) == set(expected)
    for name, group in expected.items():
        assert set(jax.tree.leaves(labels["params"][name])) == {group}


def test_param_group_rejects_unknown_module_names():
    assert param_group("torso") == "torso"
    with pytest.raises(ValueError, match="critic_head"):
        param_group("critic_head")


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (64, 1), (3, 5), (256, 128)])
def test_orthogonal_init_equals_jax_orthogonal(shape):
    """The LAPACK-free initializer (safe to vmap on CPU) draws the same matrices."""
    from jppo.core.networks import orthogonal

    key = jax.random.PRNGKey(sum(shape))
    ours = orthogonal(1.3)(key, shape)
    reference = jax.nn.initializers.orthogonal(1.3)(key, shape)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), atol=1e-5)
