"""The train step's module-level pieces, called alone on one collected batch:
the losses against numpy, the total-loss identity, the strategy wiring, and
the advantage statistics logged before normalization."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jppo
from jppo import envs
from jppo.core import train

ONE_STEP = dict(num_envs=4, num_steps=16, total_timesteps=64, update_epochs=1,
                num_minibatches=1, diagnostics=False)


@functools.cache
def collected(**overrides):
    """(setup, hparams, one collected rollout) for one config on CartPole."""
    config = jppo.PPOConfig(**{**ONE_STEP, **overrides})
    setup = train.make_setup(config, *envs.make("CartPole-v1"))
    hp = setup.config.hparams()
    state = jax.jit(functools.partial(train.init, setup))(jax.random.PRNGKey(0), hp)
    c = jax.jit(functools.partial(train.collect, setup))(state, hp, jax.random.PRNGKey(1),
                                                         hp.critic_lambda)
    return setup, hp, c


def batch_and_ctx(setup, hp, c):
    adv = setup.strategies.advantage_norm.batch(c.advantages, hp)
    ctx = train.LossContext(c.norm, hp, hp.ent_coef,
                            setup.strategies.value_target.loss_scale(c.targets))
    return train.batch_of(setup, c, adv), ctx


def np_value_loss(kind, pred, old, target, eps, delta):
    if kind == "mse":
        return 0.5 * np.mean((pred - target) ** 2)
    if kind == "huber":
        err = np.abs(pred - target)
        quad = np.minimum(err, delta)
        return np.mean(0.5 * quad**2 + delta * (err - quad))
    clipped = old + np.clip(pred - old, -eps, eps)
    return 0.5 * np.mean(np.maximum((pred - target) ** 2, (clipped - target) ** 2))


@pytest.mark.parametrize(("loss", "target"), [("clipped", "raw"), ("mse", "raw"),
                                              ("huber", "raw"), ("mse", "symlog"),
                                              ("mse", "batch_standardize")])
def test_value_loss_on_a_collected_batch_against_numpy(loss, target):
    setup, hp, c = collected(value_loss=loss, value_target=target, huber_delta=0.5)
    batch, ctx = batch_and_ctx(setup, hp, c)
    # the critic that collected: V_old, so move the parameters to make the loss non-trivial
    params = jax.tree.map(lambda x: x * 1.1, c.params)
    got, _ = train.value_loss(setup, params, batch, ctx.norm, hp, ctx.loss_scale)
    encode = {"raw": lambda x: x, "batch_standardize": lambda x: x,
              "symlog": lambda x: np.sign(x) * np.log1p(np.abs(x))}[target]
    scale = np.std(np.asarray(c.targets)) + 1e-8 if target == "batch_standardize" else 1.0
    pred = np.asarray(train.critic_head(setup, params, batch.obs), np.float64) / scale
    old = encode(np.asarray(batch.value, np.float64)) / scale
    want = encode(np.asarray(batch.target, np.float64)) / scale
    expected = np_value_loss(loss, pred, old, want, 0.2 / 1.0, 0.5)
    np.testing.assert_allclose(got, expected, rtol=2e-4)


@pytest.mark.parametrize("norm", ["minibatch", "batch", "off", "robust"])
def test_total_loss_is_policy_plus_value_minus_entropy(norm):
    setup, hp, c = collected(advantage_norm=norm)
    batch, ctx = batch_and_ctx(setup, hp, c)
    total, stats = train.total_loss(setup, c.params, batch, ctx)
    expected = (stats["policy_loss"] + hp.vf_coef * stats["value_loss"]
                - hp.ent_coef * stats["entropy"])
    np.testing.assert_allclose(total, expected, rtol=1e-6)
    np.testing.assert_allclose(stats["total_loss"], total)
    # at the collecting policy the ratio is 1: the surrogate is -mean(normalized advantage)
    adv = np.asarray(c.advantages, np.float64).ravel()
    normalized = {"minibatch": (adv - adv.mean()) / (adv.std() + 1e-8),
                  "batch": (adv - adv.mean()) / (adv.std() + 1e-8),
                  "off": adv, "robust": (adv - adv.mean()) / adv.std()}[norm]
    np.testing.assert_allclose(stats["policy_loss"], -normalized.mean(), atol=1e-5)


def test_learn_reports_the_advantage_std_before_normalization():
    _, _, c = collected(advantage_norm="batch")
    metrics = train.rollout_metrics(c)
    np.testing.assert_allclose(metrics["advantage_std"], np.std(np.asarray(c.advantages)),
                               rtol=1e-5)
    assert abs(float(metrics["advantage_std"]) - 1.0) > 1e-3  # not the normalized one


def test_entropy_coefficient_follows_its_schedule_per_update():
    setup, hp, _ = collected(ent_schedule="linear", ent_coef=0.04, ent_coef_final=0.0,
                             total_timesteps=64 * 5)
    values = [float(train.entropy_coef(setup, jnp.int32(u), hp)) for u in range(5)]
    np.testing.assert_allclose(values, [0.04, 0.03, 0.02, 0.01, 0.0], atol=1e-7)


def test_truncation_bootstraps_and_termination_does_not():
    """GAE inside the train step: with a constant critic V = v, a one-step
    truncation target is r + gamma v, a termination target is r."""
    setup, hp, c = collected()
    traj = jax.tree.map(lambda x: x[:1], c.rollout.traj)  # one step
    rewards = jnp.ones((1, setup.config.num_envs))
    terminated = jnp.asarray([[True, False, False, False]])
    truncated = jnp.asarray([[False, True, False, False]])
    traj = traj.replace(terminated=terminated, truncated=truncated)
    v = jax.tree.map(jnp.zeros_like, c.params)
    v["params"]["value_head"]["bias"] = jnp.full_like(v["params"]["value_head"]["bias"], 2.0)
    params = {"params": {**c.params["params"], "value_head": v["params"]["value_head"]}}
    _, _, targets = train.advantages_and_targets(setup, params, traj, rewards, c.norm, hp,
                                                 jnp.float32(1.0))
    gamma = float(hp.gamma)
    np.testing.assert_allclose(targets[0, :2], [1.0, 1.0 + gamma * 2.0], rtol=1e-6)
