"""A Gaussian policy's standard deviation: a learned parameter (the default) or,
with `policy_std="softplus"`, `softplus(Dense(h)) + policy_std_floor` of the
policy's last hidden layer h, one per state (gymnax-blines' and Brax's PPO)."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jppo
from jppo import envs
from jppo.core import distributions, train
from jppo.core.config import PPOConfig
from jppo.core.networks import init_params, make_network

KEY = jax.random.PRNGKey(0)
SOFTPLUS = PPOConfig(policy_std="softplus", log_std_init=-0.5, policy_hidden=(16, 8))


def numpy_policy(params, obs, floor):
    """The softplus policy written out in numpy: tanh MLP, mean head, std head."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    h = np.asarray(obs, np.float64)
    for layer in ("Dense_0", "Dense_1"):
        h = np.tanh(h @ p["policy_torso"][layer]["kernel"] + p["policy_torso"][layer]["bias"])
    mean = h @ p["policy_head"]["kernel"] + p["policy_head"]["bias"]
    pre = h @ p["policy_std_head"]["kernel"] + p["policy_std_head"]["bias"]
    return mean, np.log(np.log1p(np.exp(pre)) + floor)


def test_the_softplus_std_depends_on_the_state_as_numpy_computes_it():
    network = make_network(SOFTPLUS, 2, discrete=False)
    params = init_params(network, KEY, 3, SOFTPLUS.hparams())
    assert "policy_log_std" not in params["params"]
    kernel = jax.random.normal(KEY, params["params"]["policy_std_head"]["kernel"].shape)
    params["params"]["policy_std_head"]["kernel"] = kernel  # make the state matter
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    (mean, log_std), _ = network.apply(params, obs)
    want_mean, want_log_std = numpy_policy(params, obs, SOFTPLUS.policy_std_floor)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_std, want_log_std, rtol=1e-5, atol=1e-6)
    assert log_std.shape == (5, 2) and np.ptp(np.asarray(log_std), axis=0).min() > 1e-2


@pytest.mark.parametrize("log_std_init", [0.0, -0.5, -2.0])
def test_the_initial_std_is_exp_log_std_init_in_every_state(log_std_init):
    config = PPOConfig(policy_std="softplus", log_std_init=log_std_init)
    network = make_network(config, 2, discrete=False)
    params = init_params(network, KEY, 3, config.hparams())
    bias = np.asarray(params["params"]["policy_std_head"]["bias"], np.float64)
    np.testing.assert_allclose(np.log1p(np.exp(bias)) + config.policy_std_floor,
                               math.exp(log_std_init), rtol=1e-5)
    (_, log_std), _ = network.apply(params, 10 * jax.random.normal(KEY, (64, 3)))
    np.testing.assert_allclose(log_std, log_std_init, atol=0.05)  # the kernel is small


def test_the_floor_bounds_the_std_from_below():
    network = make_network(SOFTPLUS, 1, discrete=False)
    params = init_params(network, KEY, 3, SOFTPLUS.hparams())
    params["params"]["policy_std_head"]["bias"] = jnp.full((1,), -200.0)
    (_, log_std), _ = network.apply(params, jnp.zeros((1, 3)))
    np.testing.assert_allclose(np.exp(log_std), SOFTPLUS.policy_std_floor, rtol=1e-6)


def test_the_mean_log_std_metric_is_read_from_the_entropy_of_a_state_dependent_std():
    log_std = jax.random.normal(KEY, (32, 3))  # per state and action dimension
    entropy = jnp.mean(distributions.entropy((jnp.zeros((32, 3)), log_std), False))
    setup = train.make_setup(SOFTPLUS, *envs.make("Pendulum-v1"))
    params = {"params": {}}  # no log-std parameter: the entropy is read
    setup = dataclasses.replace(setup, spec=dataclasses.replace(setup.spec, action_dim=3))
    got = train.mean_log_std(setup, params, {"entropy": entropy})
    np.testing.assert_allclose(got, np.mean(np.asarray(log_std)), rtol=1e-5)


def test_a_softplus_policy_trains_and_reports_its_mean_log_std():
    config = SOFTPLUS.replace(num_envs=4, num_steps=16, num_minibatches=2, update_epochs=1,
                              total_timesteps=4 * 16 * 2, lr=1e-5, eval_every=0)
    result = jppo.make_train(config, *envs.make("Pendulum-v1"))(KEY)
    log_std_mean = np.asarray(result.metrics["log_std_mean"])
    assert log_std_mean.shape == (2,) and np.isfinite(log_std_mean).all()
    np.testing.assert_allclose(log_std_mean, -0.5, atol=0.05)  # barely moved at lr 1e-5
    assert "policy_std_head" in result.state.params["params"]


def test_a_floor_above_the_initial_std_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"policy_std_floor=0\.5 is invalid with "
                                         r"log_std_init=-1\.0: .* allowed is a floor below"):
        PPOConfig(policy_std="softplus", log_std_init=-1.0, policy_std_floor=0.5).validate()
    with pytest.raises(ValueError, match="policy_std='gaussian' is invalid"):
        PPOConfig(policy_std="gaussian").validate()
