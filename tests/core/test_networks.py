"""Tests for the actor-critic networks (jppo.core.networks): shapes, init scales, param groups."""

import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jppo.core.config import PPOConfig
from jppo.core.networks import (
    HIDDEN_GAIN,
    ActorCritic,
    ConvEncoder,
    PatchConv,
    init_params,
    make_network,
    orthogonal,
    param_group,
    param_labels,
    resolve_torso_kind,
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


# ------------------------------------------------------------- pixel observations

IMAGE = (10, 10, 4)  # Breakout-MinAtar


def build_for(config, obs_shape, action_dim=3, discrete=True, key=KEY):
    network = make_network(config, action_dim, discrete, obs_shape)
    return network, init_params(network, key, obs_shape, config.hparams())


def test_auto_torso_is_cnn_on_images_and_mlp_on_vectors():
    assert make_network(PPOConfig(), 3, True, IMAGE).torso_kind == "cnn"
    assert make_network(PPOConfig(), 3, True, (4,)).torso_kind == "mlp"
    assert make_network(PPOConfig(), 3, True, (10, 5)).torso_kind == "mlp"  # Catch: 2-D
    assert make_network(PPOConfig(), 3, True).torso_kind == "mlp"  # no shape: a vector
    assert resolve_torso_kind("auto", (30, 40, 3)) == "cnn"


def test_cnn_torso_shapes_with_separate_networks():
    network, params = build_for(PPOConfig(), IMAGE)
    inner = params["params"]
    # one conv per network: the critic is a separate network down to the pixels
    for head in ("policy", "value"):
        chex.assert_shape(inner[f"{head}_encoder"]["Conv_0"]["kernel"], (3, 3, 4, 16))
        chex.assert_shape(inner[f"{head}_encoder"]["Conv_0"]["bias"], (16,))
        # 3x3 VALID conv: 10x10 -> 8x8 positions x 16 channels, flattened
        chex.assert_shape(inner[f"{head}_torso"]["Dense_0"]["kernel"], (8 * 8 * 16, 64))
    assert "torso_encoder" not in inner
    obs = jax.random.bernoulli(KEY, 0.2, (BATCH, *IMAGE)).astype(jnp.float32)
    (logits,), value = network.apply(params, obs)
    chex.assert_shape(logits, (BATCH, 3))
    chex.assert_shape(value, (BATCH,))
    # any leading batch axes, as the rollout's (num_steps, num_envs, ...) critic call
    chex.assert_shape(network.apply(params, obs.reshape(1, BATCH, *IMAGE),
                                    method=ActorCritic.value), (1, BATCH))
    labels = param_labels(params)["params"]
    assert set(jax.tree.leaves(labels["policy_encoder"])) == {"policy"}
    assert set(jax.tree.leaves(labels["value_encoder"])) == {"value"}


def test_cnn_conv_kernel_is_orthogonal_with_gain_sqrt2():
    _, params = build_for(PPOConfig(), IMAGE)
    for head in ("policy", "value"):
        conv = params["params"][f"{head}_encoder"]["Conv_0"]
        kernel = np.asarray(conv["kernel"], np.float64).reshape(3 * 3 * 4, 16)
        np.testing.assert_allclose(singular_values(kernel), np.full(16, math.sqrt(2.0)),
                                   rtol=1e-5)
        # orthonormal columns scaled by sqrt 2: entry std sqrt(2 * 16 / (36 * 16))
        np.testing.assert_allclose(kernel.std(), math.sqrt(2.0 / 36), rtol=0.05)
        np.testing.assert_array_equal(conv["bias"], 0.0)
    assert not np.allclose(params["params"]["policy_encoder"]["Conv_0"]["kernel"],
                           params["params"]["value_encoder"]["Conv_0"]["kernel"])


def _reference_conv(features):
    """flax's own convolution, the reference `PatchConv` must equal."""
    return nn.Conv(features, (3, 3), strides=1, padding="VALID")


@pytest.mark.parametrize("features", [16, 7])
def test_patch_conv_equals_flax_conv_in_value_and_kernel_gradient(features):
    # non-square, C_in != 16, two leading batch axes
    x = jax.random.normal(KEY, (2, 3, 9, 13, 5))
    conv = PatchConv(features, 3)
    params = conv.init(jax.random.PRNGKey(1), x)
    bias = jax.random.normal(jax.random.PRNGKey(2), (features,))
    params = {"params": {**params["params"], "bias": bias}}
    chex.assert_shape(params["params"]["kernel"], (3, 3, 5, features))
    reference = _reference_conv(features)
    out = conv.apply(params, x)
    chex.assert_shape(out, (2, 3, 7, 11, features))
    np.testing.assert_allclose(out, reference.apply(params, x), atol=1e-5, rtol=1e-5)

    def loss(module):
        return lambda p: jnp.sum(jnp.tanh(module.apply(p, x)) ** 2)

    grad = jax.grad(loss(conv))(params)["params"]
    expected = jax.grad(loss(reference))(params)["params"]
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(grad[name], expected[name], atol=1e-4, rtol=1e-5)


class _FlaxConvEncoder(nn.Module):
    """`ConvEncoder` as it was: nn.Conv, relu, flatten (same init and param path)."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(16, (3, 3), padding="VALID", kernel_init=orthogonal(HIDDEN_GAIN),
                    bias_init=nn.initializers.zeros)(x)
        return nn.relu(x).reshape((*x.shape[:-3], -1))


def test_conv_encoder_keeps_flax_conv_params_init_and_outputs():
    x = jax.random.bernoulli(KEY, 0.3, (4, 6, 11, 3)).astype(jnp.float32)
    encoder, reference = ConvEncoder(), _FlaxConvEncoder()
    params = encoder.init(jax.random.PRNGKey(3), x)
    # same names, shapes and draws as nn.Conv's: old checkpoints load unchanged
    chex.assert_trees_all_equal(params, reference.init(jax.random.PRNGKey(3), x))
    out = encoder.apply(params, x)
    chex.assert_shape(out, (4, 4 * 9 * 16))
    np.testing.assert_allclose(out, reference.apply(params, x), atol=1e-5, rtol=1e-5)


def test_vmapped_per_seed_conv_is_no_grouped_convolution():
    # every seed owns its kernel; vmap of lax.conv over a batched kernel is a
    # grouped convolution, which XLA runs very slowly. The encoder has none.
    seeds, x = 4, jax.random.normal(KEY, (4, 8, *IMAGE))
    params = jax.vmap(ConvEncoder().init)(jax.random.split(KEY, seeds), x)

    def loss(p, obs):
        return jnp.sum(ConvEncoder().apply(p, obs) ** 2)

    per_seed = jax.vmap(jax.value_and_grad(loss))
    hlo = jax.jit(per_seed).lower(params, x).as_text()
    assert "convolution" not in hlo
    value, grad = per_seed(params, x)
    expected_value, expected_grad = jax.vmap(jax.value_and_grad(
        lambda p, obs: jnp.sum(_FlaxConvEncoder().apply(p, obs) ** 2)))(params, x)
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    chex.assert_trees_all_close(grad, expected_grad, atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("gain", [0.01, 1.0])
def test_output_gains_apply_on_the_cnn_torso(gain):
    config = PPOConfig(policy_output_gain=gain, value_output_gain=2 * gain)
    _, params = build_for(config, IMAGE)
    np.testing.assert_allclose(singular_values(params["params"]["policy_head"]["kernel"]),
                               np.full(3, gain), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(params["params"]["value_head"]["kernel"]),
                               2 * gain, rtol=1e-5)


def test_value_head_stays_configurable_on_the_cnn_torso():
    config = PPOConfig(value_hidden=(256, 128), value_layer_norm=True, value_activation="relu",
                       policy_hidden=(32,))
    network, params = build_for(config, IMAGE)
    value_torso = params["params"]["value_torso"]
    chex.assert_shape(value_torso["Dense_0"]["kernel"], (1024, 256))
    chex.assert_shape(value_torso["Dense_1"]["kernel"], (256, 128))
    chex.assert_shape(value_torso["LayerNorm_1"]["scale"], (128,))
    chex.assert_shape(params["params"]["policy_torso"]["Dense_0"]["kernel"], (1024, 32))
    assert not any(k.startswith("LayerNorm") for k in params["params"]["policy_torso"])
    chex.assert_shape(network.apply(params, jnp.ones((BATCH, *IMAGE)),
                                    method=ActorCritic.value), (BATCH,))


def test_shared_torso_shares_one_conv():
    config = PPOConfig(torso_hidden=(128,), policy_hidden=(), value_hidden=())
    _, params = build_for(config, IMAGE)
    inner = params["params"]
    assert set(inner) == {"torso_encoder", "torso", "policy_head", "value_head"}
    chex.assert_shape(inner["torso"]["Dense_0"]["kernel"], (1024, 128))
    assert set(jax.tree.leaves(param_labels(params)["params"]["torso_encoder"])) == {"torso"}


def test_config_override_to_mlp_flattens_the_image_inside_the_network():
    config = PPOConfig(torso_kind="mlp")
    network, params = build_for(config, IMAGE)
    assert network.torso_kind == "mlp"
    inner = params["params"]
    assert not any(name.endswith("encoder") for name in inner)  # the flatten has no params
    chex.assert_shape(inner["policy_torso"]["Dense_0"]["kernel"], (400, 64))
    obs = jax.random.normal(KEY, (BATCH, *IMAGE))
    # the same parameters on the pre-flattened observation give the same outputs
    flat_network = make_network(config, 3, True, (400,))
    chex.assert_trees_all_close(network.apply(params, obs),
                                flat_network.apply(params, obs.reshape(BATCH, 400)))


def test_cnn_on_vector_observations_is_a_one_line_error_naming_the_choices():
    with pytest.raises(ValueError, match=r"^torso_kind='cnn' is invalid: allowed is one of "
                                         r"\['auto', 'mlp'\] for observations of shape \(4,\)"):
        make_network(PPOConfig(torso_kind="cnn"), 2, True, (4,))
    with pytest.raises(ValueError, match=r"torso_kind='conv' is invalid: allowed is one of "
                                         r"\['auto', 'mlp', 'cnn'\]"):
        PPOConfig(torso_kind="conv")
