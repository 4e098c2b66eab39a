"""Settings for reproducing other trainers: `layer_init`, `bias_init_max` and
`truncation`.

gymnax-blines' PPO (the source of the published gymnax returns) initialises
its layers with flax's default LeCun-normal kernels and biases drawn from
[0, 0.05], and its GAE reads every `done`, time limits included, as terminal.
jppo's own choices (orthogonal kernels, zero biases, a bootstrap through
truncations) stay the defaults; these knobs let a published run be matched.
Each test names the wrong implementation it catches.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import jppo
from jppo import envs
from jppo.core.networks import ActorCritic, make_network
from jppo.core.networks import init_params as eager_init_params

init_params = jax.jit(eager_init_params, static_argnums=(0, 2))
OBS = 12  # the observation width of the networks below


def network_for(**knobs):
    config = jppo.PPOConfig(policy_hidden=(256, 64), value_hidden=(256,), **knobs)
    return config, make_network(config, 3, True)


def flat(params) -> dict[tuple[str, ...], np.ndarray]:
    leaves = jax.tree_util.tree_leaves_with_path(params["params"])
    return {tuple(k.key for k in path): np.asarray(leaf, np.float64) for path, leaf in leaves}


def test_the_default_init_is_unchanged_by_the_new_knobs():
    """Catches the re-draw running (or the key being consumed differently) in the
    default config: orthogonal kernels with zero biases, as before."""
    config, network = network_for()
    params = flat(init_params(network, jax.random.PRNGKey(0), OBS, config.hparams()))
    for path, leaf in params.items():
        if path[-1] == "bias":
            np.testing.assert_array_equal(leaf, 0.0)
    hidden = params[("policy_torso", "Dense_1", "kernel")]  # 256 -> 64: orthogonal columns
    np.testing.assert_allclose(hidden.T @ hidden, 2.0 * np.eye(64), atol=1e-4)


def test_lecun_kernels_have_the_truncated_normal_spread_of_flax_defaults():
    """Catches a wrong fan (fan_out), a plain instead of truncated normal, or the
    orthogonal gains left on LeCun kernels: each kernel's spread matches
    flax's lecun_normal, sqrt(1 / fan_in), and no entry lies past 2 sigma of
    the untruncated normal it is cut from."""
    config, network = network_for(layer_init="lecun_normal", policy_output_gain=1.0)
    params = flat(init_params(network, jax.random.PRNGKey(1), OBS, config.hparams()))
    for path in [("policy_torso", "Dense_0", "kernel"), ("policy_torso", "Dense_1", "kernel"),
                 ("value_torso", "Dense_0", "kernel"), ("policy_head", "kernel")]:
        kernel = params[path]
        fan_in = kernel.shape[0]
        # flax divides the target std by the std of a standard normal cut at +-2
        cut = 1.0 / scipy.stats.truncnorm.std(-2.0, 2.0)
        sigma = np.sqrt(1.0 / fan_in) * cut
        assert np.abs(kernel).max() <= 2.0 * sigma + 1e-6, path
        np.testing.assert_allclose(kernel.std(), np.sqrt(1.0 / fan_in), rtol=0.1, err_msg=path)
        with pytest.raises(AssertionError):  # not orthogonal any more
            np.testing.assert_allclose(kernel.T @ kernel, (kernel**2).sum(0) * np.eye(
                kernel.shape[1]), atol=1e-3)


def test_biases_are_uniform_in_the_range_and_layer_norm_keeps_its_own():
    """Catches biases drawn from [-max, max] or one draw shared by every layer,
    and LayerNorm's scale/bias re-drawn (they must stay 1 and 0)."""
    config, network = network_for(bias_init_max=0.05, value_layer_norm=True)
    params = flat(init_params(network, jax.random.PRNGKey(2), OBS, config.hparams()))
    biases = {p: v for p, v in params.items() if p[-1] == "bias" and "LayerNorm" not in p[1]}
    assert len(biases) == 5  # 2 policy hidden, 1 value hidden, 2 heads
    for path, bias in biases.items():
        assert bias.min() >= 0.0 and bias.max() < 0.05, path
    wide = biases[("policy_torso", "Dense_0", "bias")]
    np.testing.assert_allclose(wide.mean(), 0.025, atol=0.006)  # U[0, 0.05] over 256 draws
    assert not np.allclose(wide[:64], biases[("policy_torso", "Dense_1", "bias")])
    np.testing.assert_array_equal(params[("value_torso", "LayerNorm_0", "scale")], 1.0)
    np.testing.assert_array_equal(params[("value_torso", "LayerNorm_0", "bias")], 0.0)


def test_output_gains_still_scale_lecun_heads_of_the_same_draw():
    """Catches the gains dropped (or applied before the re-draw) under lecun_normal."""
    config, network = network_for(layer_init="lecun_normal", bias_init_max=0.05)
    unit = config.hparams().replace(policy_output_gain=jnp.float32(1.0),
                                    value_output_gain=jnp.float32(1.0))
    gained = unit.replace(policy_output_gain=jnp.float32(0.1), value_output_gain=jnp.float32(2.0))
    key = jax.random.PRNGKey(3)
    a, b = flat(init_params(network, key, OBS, unit)), flat(init_params(network, key, OBS, gained))
    np.testing.assert_allclose(b[("policy_head", "kernel")], 0.1 * a[("policy_head", "kernel")],
                               rtol=1e-6)
    np.testing.assert_allclose(b[("value_head", "kernel")], 2.0 * a[("value_head", "kernel")],
                               rtol=1e-6)
    np.testing.assert_array_equal(a[("policy_head", "bias")], b[("policy_head", "bias")])


def test_recurrent_cells_keep_their_init():
    """Catches the re-draw reaching into a GRU (its recurrent kernels are
    orthogonal by design): the cell's parameters equal the default init's."""
    base, network = network_for(policy_rnn=8)
    _, lecun = network_for(policy_rnn=8, layer_init="lecun_normal", bias_init_max=0.05)
    key, hp = jax.random.PRNGKey(4), base.hparams()
    a, b = flat(init_params(network, key, OBS, hp)), flat(init_params(lecun, key, OBS, hp))
    cell = [p for p in a if p[0] == "policy_cell"]
    assert cell
    for path in cell:
        np.testing.assert_array_equal(a[path], b[path])
    assert not np.allclose(a[("policy_head", "kernel")], b[("policy_head", "kernel")])


# ---------------------------------------------------------------- truncation

TIME_LIMIT = 5
BASE = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2, update_epochs=1,
            num_minibatches=1, policy_hidden=(16,), value_hidden=(16,))


@functools.cache
def collected(truncation: str):
    """One rollout of CartPole with a 5-step time limit (every episode ends by
    truncation) and its advantages/targets, under `truncation`."""
    config = jppo.PPOConfig(**BASE, truncation=truncation)
    trainer = jppo.make_train(config, *envs.make("CartPole-v1", max_steps_in_episode=TIME_LIMIT))
    hparams = config.hparams()
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0), hparams)
    _, rollout_key, _ = jax.random.split(state.key, 3)
    batch = jax.jit(trainer.phases["collect"])(state, hparams, rollout_key, hparams.critic_lambda)
    return trainer, hparams, batch


def numpy_gae(rewards, values, next_values, cut, gamma, lam):
    """GAE with no bootstrap and no recursion across the steps where `cut`."""
    advantages, running = np.zeros_like(values), np.zeros(values.shape[1])
    for t in reversed(range(len(values))):
        keep = 1.0 - cut[t]
        delta = rewards[t] + gamma * keep * next_values[t] - values[t]
        running = delta + gamma * lam * keep * running
        advantages[t] = running
    return advantages


def test_terminal_truncation_drops_the_bootstrap_at_time_limits():
    """Catches `truncation` ignored (the bootstrap kept) or applied to acting: the
    rollout is the same under both settings, and under "terminal" the
    advantages are a numpy GAE that stops at every time limit with nothing
    added after it."""
    trainer, hp, c = collected("terminal")
    _, _, reference = collected("bootstrap")
    np.testing.assert_array_equal(np.asarray(c.rollout.traj.obs),
                                  np.asarray(reference.rollout.traj.obs))
    truncated = np.asarray(c.rollout.traj.truncated, np.float64)
    assert truncated.sum() >= 8 and not np.asarray(c.rollout.traj.terminated).any()
    value = functools.partial(trainer.network.apply, c.params, method=ActorCritic.value)
    values = np.asarray(value(c.rollout.traj.obs), np.float64)
    next_values = np.concatenate([values[1:], np.asarray(value(c.rollout.obs))[None]], axis=0)
    rewards, gamma = np.asarray(c.rewards, np.float64), float(hp.gamma)
    expected = numpy_gae(rewards, values, next_values, truncated, gamma, float(hp.gae_lambda))
    np.testing.assert_allclose(np.asarray(c.advantages), expected, rtol=1e-4, atol=1e-5)
    at_limit = truncated > 0
    np.testing.assert_allclose(np.asarray(c.targets)[at_limit], rewards[at_limit], rtol=1e-5)
    differs = np.abs(np.asarray(c.advantages) - np.asarray(reference.advantages))[at_limit]
    assert differs.min() > 1e-4  # the bootstrap really went
