"""The network variants (quantile critic, SimBa blocks, policy LayerNorm,
shrink-and-perturb, PFO) against numpy references written from their formulas,
and wired into the compiled update (as tests/core/test_train_step_by_hand.py does: one optimizer
step on the whole batch, so each loss metric is a function of the collected
batch and the parameters the step starts from). Two compiles in all."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jppo
from jppo import envs
from jppo.core import plasticity, quantiles
from jppo.core.networks import init_params as eager_init_params
from jppo.core.networks import make_network
from jppo.core.train import FRESH_INIT_STREAM

init_params = jax.jit(eager_init_params, static_argnums=(0, 2))
BASE = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2, update_epochs=1,
            num_minibatches=1, policy_hidden=(16, 16), value_hidden=(16, 16))
VARIANTS = dict(value_loss="quantile", quantile_count=7, value_block="simba",
                policy_layer_norm=True, pfo=True, pfo_coef=0.7, shrink_perturb_every=1,
                shrink_perturb_groups="value")


# ------------------------------------------------------------------ references


def np_quantile_huber(theta, target, kappa=1.0):
    """QR-DQN's quantile-Huber, element by element, divided by the quantile count."""
    n_states, n = theta.shape
    total = 0.0
    for s in range(n_states):
        for i in range(n):
            tau = (2 * i + 1) / (2 * n)
            u = target[s] - theta[s, i]
            huber = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
            total += abs(tau - (1.0 if u < 0 else 0.0)) * huber / kappa
    return total / (n_states * n)


def np_dense(layer, x):
    return x @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)


def np_layer_norm(layer, x, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * np.asarray(layer["scale"]) + np.asarray(layer["bias"])


def np_mlp_with_layer_norm(module, x, widths):
    """Dense -> LayerNorm -> tanh per width; (output, pre-activations)."""
    pre = []
    for k in range(len(widths)):
        x = np_layer_norm(module[f"LayerNorm_{k}"], np_dense(module[f"Dense_{k}"], x))
        pre.append(x)
        x = np.tanh(x)
    return x, pre


def np_simba(module, x, blocks):
    """Embed, `blocks` x (x + W2 tanh(W1 LN(x))), final LN; flax numbers the
    Dense layers in call order (embed, then W1, W2 per block)."""
    x = np_dense(module["Dense_0"], x)
    for b in range(blocks):
        y = np_dense(module[f"Dense_{2 * b + 1}"], np_layer_norm(module[f"LayerNorm_{b}"], x))
        x = x + np_dense(module[f"Dense_{2 * b + 2}"], np.tanh(y))
    return np_layer_norm(module[f"LayerNorm_{blocks}"], x)


def np_policy(params, obs):
    p = params["params"]
    hidden, pre = np_mlp_with_layer_norm(p["policy_torso"], obs, (16, 16))
    return np_dense(p["policy_head"], hidden), pre


def np_value_quantiles(params, obs):
    p = params["params"]
    return np_dense(p["value_head"], np_simba(p["value_torso"], obs, 2))


def as_numpy(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


# ------------------------------------------------------------------ unit tests


def test_quantile_huber_matches_the_elementwise_definition():
    rng = np.random.default_rng(0)
    theta = rng.normal(0, 2, (9, 5)).astype(np.float32)
    target = rng.normal(0, 2, 9).astype(np.float32)  # |u| on both sides of kappa
    got = float(quantiles.quantile_huber_loss(jnp.asarray(theta), jnp.asarray(target)))
    assert got == pytest.approx(np_quantile_huber(theta, target), rel=1e-5)
    np.testing.assert_allclose(quantiles.midpoints(4), [0.125, 0.375, 0.625, 0.875])


def test_quantile_huber_over_sequences_equals_the_flattened_batch():
    """A recurrent minibatch is (envs, time): the loss pairs each step's target with
    that step's quantiles, as numpy's on the flattened batch does (a target broadcast
    along the wrong axis fails or mixes steps)."""
    rng = np.random.default_rng(1)
    theta = rng.normal(0, 2, (3, 4, 5)).astype(np.float32)
    target = rng.normal(0, 2, (3, 4)).astype(np.float32)
    got = float(quantiles.quantile_huber_loss(jnp.asarray(theta), jnp.asarray(target)))
    assert got == pytest.approx(np_quantile_huber(theta.reshape(12, 5), target.reshape(12)),
                                rel=1e-5)


def test_a_recurrent_quantile_critic_trains_one_update():
    """The quantile loss inside a recurrent learn phase (whole-sequence minibatches):
    one update compiles and its value loss is finite and positive."""
    config = jppo.PPOConfig(**BASE, value_loss="quantile", quantile_count=5, rnn_cell="lstm",
                            policy_rnn=8, value_rnn=8)
    trainer = jppo.make_train(config, *envs.make("CartPole-v1"))
    hparams = config.hparams()
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0), hparams)
    _, metrics = jax.jit(trainer.update)(state, hparams)
    assert np.isfinite(float(metrics["value_loss"])) and float(metrics["value_loss"]) > 0


def test_quantile_regression_recovers_the_target_quantiles():
    """Minimizing the loss over constant quantiles puts theta_i near the tau_i
    quantile of the targets (the property that makes their mean the value);
    exactly so as the targets' spread grows past kappa = 1, as here."""
    targets = jnp.asarray(np.random.default_rng(1).exponential(30.0, 4000), jnp.float32)
    theta = jnp.zeros((1, 4))
    grad = jax.jit(jax.grad(lambda t: quantiles.quantile_huber_loss(
        jnp.broadcast_to(t, (targets.size, 4)), targets)))
    for _ in range(3000):
        theta = theta - 20.0 * grad(theta)
    expected = np.quantile(np.asarray(targets), [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_allclose(theta[0], expected, atol=0.5)


def test_shrink_perturb_mixes_only_the_chosen_groups():
    rng = np.random.default_rng(2)

    def tree():
        return {"params": {name: {"kernel": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)}
                           for name in ("policy_torso", "value_head", "torso")}
                | {"policy_log_std": jnp.asarray(rng.normal(size=2), jnp.float32)}}

    params, fresh = tree(), tree()
    mixed = plasticity.shrink_perturb(params, fresh, 0.6, 0.3, ("policy", "torso"))
    p, f, m = (as_numpy(t)["params"] for t in (params, fresh, mixed))
    for name in ("policy_torso", "torso"):
        np.testing.assert_allclose(m[name]["kernel"], 0.6 * p[name]["kernel"]
                                   + 0.3 * f[name]["kernel"], rtol=1e-6)
    np.testing.assert_array_equal(m["value_head"]["kernel"], p["value_head"]["kernel"])
    np.testing.assert_array_equal(m["policy_log_std"], p["policy_log_std"])  # never touched
    at = functools.partial(plasticity.scheduled_shrink_perturb, params, lambda: fresh,
                           every=3, alpha=0.6, sigma=0.3, groups=("policy",))
    np.testing.assert_array_equal(at(jnp.int32(4))["params"]["policy_torso"]["kernel"],
                                  params["params"]["policy_torso"]["kernel"])  # 4 % 3 != 0
    np.testing.assert_allclose(at(jnp.int32(6))["params"]["policy_torso"]["kernel"],
                               m["policy_torso"]["kernel"], rtol=1e-6)


def test_pfo_penalty_and_pre_activations_match_numpy():
    config = jppo.PPOConfig(**BASE, **VARIANTS)
    network = make_network(config, 2, True, (4,))
    hparams = config.hparams()
    now, old = (init_params(network, jax.random.PRNGKey(k), 4, hparams) for k in (0, 1))
    obs = np.random.default_rng(3).normal(size=(6, 4)).astype(np.float32)
    logits, pre_now = np_policy(as_numpy(now), obs)
    _, pre_old = np_policy(as_numpy(old), obs)
    np.testing.assert_allclose(network.apply(now, obs, method="policy")[0], logits,
                               rtol=1e-4, atol=1e-5)  # LayerNorm in the policy
    preactivations = jax.jit(plasticity.policy_preactivations, static_argnums=0)
    got = preactivations(network, now, obs)
    for g, p in zip(got, pre_now, strict=True):
        np.testing.assert_allclose(g, p, rtol=1e-4, atol=1e-5)
    expected = np.mean(sum(np.sum((a - b) ** 2, axis=-1)
                           for a, b in zip(pre_now, pre_old, strict=True)))
    penalty = plasticity.pfo_penalty(got, preactivations(network, old, obs))
    assert float(penalty) == pytest.approx(expected, rel=1e-4)
    np.testing.assert_allclose(network.apply(now, obs, method="value"),
                               np_value_quantiles(as_numpy(now), obs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("changes", "message"), [
    (dict(value_block="simba", value_hidden=(64, 32)), "value_hidden=(64, 32) is invalid"),
    (dict(policy_block="simba", policy_hidden=()), "policy_hidden=() is invalid"),
    (dict(value_block="simba", value_layer_norm=True), "value_layer_norm=True is invalid"),
    (dict(pfo=True, policy_rnn=8), "pfo=True is invalid with a recurrent policy"),
    (dict(shrink_perturb_groups="actor"), "shrink_perturb_groups='actor' is invalid"),
    (dict(quantile_count=1), "quantile_count=1 is invalid"),
])
def test_bad_combinations_are_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        jppo.PPOConfig(**changes)


# ------------------------------------------------------------ inside the update


@functools.cache
def prepared():
    """The one compiled configuration both tests below read: trainer, hparams, state."""
    config = jppo.PPOConfig(**BASE, **VARIANTS)
    trainer = jppo.make_train(config, *envs.make("CartPole-v1", max_steps_in_episode=5))
    hparams = config.hparams()
    return trainer, hparams, jax.jit(trainer.init)(jax.random.PRNGKey(0), hparams)


def test_quantile_simba_critic_and_pfo_in_one_compiled_step():
    """The learn phase's losses, from parameters away from those that acted (so
    PFO is not zero), equal numpy's on the collected batch: a quantile loss on
    the wrong axis, a value that is not the quantiles' mean, a PFO against the
    wrong parameters or missing from the total all fail here."""
    trainer, hparams, state = prepared()
    _, rollout_key, learn_key = jax.random.split(state.key, 3)
    c = jax.jit(trainer.phases["collect"])(state, hparams, rollout_key, hparams.critic_lambda)
    obs = np.asarray(c.rollout.traj.obs, np.float64).reshape(-1, 4)
    np.testing.assert_allclose(np.asarray(c.values).reshape(-1),
                               np_value_quantiles(as_numpy(state.params), obs).mean(-1),
                               rtol=1e-4, atol=1e-5)  # V = the quantiles' mean
    leaves, treedef = jax.tree.flatten(c.params)
    keys = jax.random.split(jax.random.PRNGKey(5), len(leaves))
    nearby = jax.tree.unflatten(treedef, [x + 0.1 * jax.random.normal(k, x.shape)
                                          for x, k in zip(leaves, keys, strict=True)])
    _, _, stats = jax.jit(trainer.phases["learn"])(state, c._replace(params=nearby), hparams,
                                                   learn_key)
    stats = as_numpy(stats)
    theta = np_value_quantiles(as_numpy(nearby), obs)
    value_loss = np_quantile_huber(theta, np.asarray(c.targets, np.float64).reshape(-1))
    assert stats["value_loss"] == pytest.approx(value_loss, rel=1e-4)
    _, pre_now = np_policy(as_numpy(nearby), obs)
    _, pre_old = np_policy(as_numpy(state.params), obs)
    pfo = np.mean(sum(np.sum((a - b) ** 2, axis=-1)
                      for a, b in zip(pre_now, pre_old, strict=True)))
    assert pfo > 1e-3 and stats["pfo_loss"] == pytest.approx(pfo, rel=1e-4)
    total = (stats["policy_loss"] - 0.01 * stats["entropy"] + 0.5 * stats["value_loss"]
             + 0.7 * stats["pfo_loss"])
    assert stats["total_loss"] == pytest.approx(total, rel=1e-5)
    assert stats["value_clip_fraction"] == 0.0


def test_shrink_perturb_inside_the_update_mixes_toward_a_fresh_init():
    """With every=1 and groups 'value', one update's value parameters are alpha
    x the learned ones + sigma x the network's init on the folded key; the
    policy's are the learned ones (alpha=1, sigma=0 gives the learned, in the
    same compile: alpha and sigma are traced)."""
    trainer, hparams, state = prepared()
    update = jax.jit(trainer.update)
    identity = hparams.replace(shrink_perturb_alpha=jnp.float32(1.0),
                               shrink_perturb_sigma=jnp.float32(0.0))
    learned = as_numpy(update(state, identity)[0].params)["params"]
    mixed_hp = hparams.replace(shrink_perturb_alpha=jnp.float32(0.5),
                               shrink_perturb_sigma=jnp.float32(0.3))
    mixed = as_numpy(update(state, mixed_hp)[0].params)["params"]
    fresh = as_numpy(init_params(trainer.network, jax.random.fold_in(state.key,
                                                                     FRESH_INIT_STREAM),
                                 4, mixed_hp))["params"]
    for name in ("value_torso", "value_head"):
        jax.tree.map(lambda m, le, f: np.testing.assert_allclose(m, 0.5 * le + 0.3 * f,
                                                                 rtol=1e-5, atol=1e-6),
                     mixed[name], learned[name], fresh[name])
    jax.tree.map(np.testing.assert_array_equal, mixed["policy_torso"], learned["policy_torso"])
    assert not np.allclose(fresh["value_head"]["kernel"], learned["value_head"]["kernel"])
