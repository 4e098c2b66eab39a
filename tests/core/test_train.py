"""The train program: shapes, determinism, seed/hparam vectorization, and a
learning check that a sign error or broken GAE would fail."""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jppo
from jppo import envs
from jppo.analysis.metrics import final_episode_return
from jppo.runs.runner import run, seed_keys

TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2,
            num_minibatches=2)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    # NaN == NaN (episode metrics are NaN in updates where no episode ended).
    jax.tree.map(lambda x, y: np.testing.assert_allclose(
        np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, equal_nan=True), a, b)


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


@pytest.fixture(scope="module")
def tiny_trainer(cartpole):
    return jppo.make_train(jppo.PPOConfig(**TINY), *cartpole)


@pytest.fixture(scope="module")
def solo(tiny_trainer):
    """One seed, hparams as an argument: every solo call below reuses one compile."""
    return jax.jit(tiny_trainer)


@pytest.fixture(scope="module")
def batched(tiny_trainer):
    return jax.jit(jax.vmap(tiny_trainer))


def test_metrics_are_one_scalar_per_update_per_seed(tiny_trainer, batched):
    result = batched(seed_keys(3), jax.tree.map(lambda x: jnp.stack([x] * 3),
                                                 tiny_trainer.config.hparams()))
    assert tiny_trainer.num_updates == 3
    for name, values in result.metrics.items():
        chex.assert_shape(values, (3, 3), custom_message=name)
    assert set(result.metrics) <= set(jppo.analysis.metrics.METRIC_DOCS)


def test_same_key_gives_same_result(solo, tiny_trainer):
    hp = tiny_trainer.config.hparams()
    a = solo(jax.random.PRNGKey(7), hp)
    b = solo(jax.random.PRNGKey(7), hp)
    c = solo(jax.random.PRNGKey(8), hp)
    assert_trees_close(a, b, rtol=0, atol=0)
    assert not np.allclose(a.metrics["policy_loss"], c.metrics["policy_loss"])


def test_vmapped_seed_equals_solo_seed(solo, batched, tiny_trainer):
    hp = tiny_trainer.config.hparams()
    keys = seed_keys(4)
    together = batched(keys, jax.tree.map(lambda x: jnp.stack([x] * 4), hp))
    for i in (0, 3):
        alone = solo(keys[i], hp)
        assert_trees_close(jax.tree.map(lambda x, i=i: x[i], together.metrics), alone.metrics)
        assert_trees_close(jax.tree.map(lambda x, i=i: x[i], together.state.params),
                           alone.state.params)


def test_hparam_batch_equals_solo_runs(solo, batched, tiny_trainer):
    base = tiny_trainer.config
    configs = [base.replace(lr=1e-3, ent_coef=0.0), base.replace(lr=1e-4, clip_eps=0.1,
                                                                 gamma=0.9)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[c.hparams() for c in configs])
    key = jax.random.PRNGKey(3)
    together = batched(jnp.stack([key, key]), stacked)
    for i, config in enumerate(configs):
        alone = solo(key, config.hparams())
        assert_trees_close(jax.tree.map(lambda x, i=i: x[i], together.metrics), alone.metrics)
    # and the two settings really differ
    assert not np.allclose(together.metrics["policy_loss"][0], together.metrics["policy_loss"][1])


def test_bad_hparams_fail_before_compiling(tiny_trainer):
    bad = tiny_trainer.config.hparams().replace(policy_lr=jnp.asarray(-1.0))
    with pytest.raises(ValueError, match="policy_lr"):
        tiny_trainer(jax.random.PRNGKey(0), bad)


def test_continuous_and_shared_torso_programs_run(tiny_trainer):
    env, params = envs.make("Pendulum-v1")
    config = jppo.PPOConfig(**TINY, torso_hidden=(32,), policy_hidden=(), value_hidden=(16,),
                            log_std_init=-0.5)
    trainer = jppo.make_train(config, env, params)
    result = jax.jit(trainer)(jax.random.PRNGKey(0))
    assert trainer.spec.discrete is False
    chex.assert_tree_all_finite(result.state.params)
    labels = set(result.state.params["params"])
    assert {"torso", "policy_head", "policy_log_std", "value_torso", "value_head"} <= labels
    # a Gaussian policy's entropy starts at the log-std it was given
    expected = 0.5 + 0.5 * np.log(2 * np.pi) - 0.5
    np.testing.assert_allclose(result.metrics["entropy"][0], expected, atol=0.05)


def test_cartpole_learns_on_a_small_budget():
    """Random play scores ~22; four seeds of standard PPO pass 150 within 1e5 steps.

    Flipping the advantage sign, dropping the bootstrap or breaking the GAE
    recursion keeps the return near random.
    """
    config = jppo.PPOConfig(total_timesteps=100_000)
    metrics = run(config, "CartPole-v1", 4, chunk_updates=200).metrics()
    final = final_episode_return(metrics)
    assert np.mean(final) > 150, final
    ev = metrics["explained_variance"][:, -20:]
    assert np.nanmean(ev) > 0.0, "the critic explains the returns better than their mean"


def test_unrolled_time_scans_give_the_same_run(cartpole):
    """`scan_unroll` only changes how many env steps one loop trip runs (the GPU
    default is 8): rollout, GAE and every metric stay the same."""
    key = jax.random.PRNGKey(7)
    plain = jax.jit(jppo.make_train(jppo.PPOConfig(**TINY, scan_unroll=1), *cartpole))(key)
    unrolled = jax.jit(jppo.make_train(jppo.PPOConfig(**TINY, scan_unroll=5), *cartpole))(key)
    assert_trees_close(plain.metrics, unrolled.metrics)
    assert_trees_close(plain.state.params, unrolled.state.params)


def test_scan_unroll_resolves_per_backend_and_rejects_negatives():
    from jppo.core.train import scan_unroll

    assert scan_unroll(jppo.PPOConfig(**TINY)) == 1  # auto on CPU: no unrolling
    assert scan_unroll(jppo.PPOConfig(**TINY, scan_unroll=5)) == 5
    assert scan_unroll(jppo.PPOConfig(**TINY, scan_unroll=64)) == 16  # capped at num_steps
    with pytest.raises(ValueError, match=r"scan_unroll=-1 is invalid: allowed is an integer >= 0"):
        jppo.PPOConfig(**TINY, scan_unroll=-1)


def test_a_physics_env_caps_the_automatic_unroll_on_an_accelerator():
    """On a GPU the automatic unroll is 8 (capped at num_steps), unless the env
    caps it (`max_scan_unroll`, 1 for Brax): an explicit value always wins."""
    from jppo.core.train import scan_unroll

    class PhysicsEnv:
        max_scan_unroll = 1

    gymnax_env, _ = envs.make("CartPole-v1")
    auto = jppo.PPOConfig(**TINY)
    assert scan_unroll(auto, gymnax_env, backend="gpu") == 8
    assert scan_unroll(jppo.PPOConfig(**{**TINY, "num_steps": 4}), gymnax_env, "gpu") == 4
    assert scan_unroll(auto, PhysicsEnv(), backend="gpu") == 1
    assert scan_unroll(auto, PhysicsEnv(), backend="cpu") == 1
    assert scan_unroll(jppo.PPOConfig(**TINY, scan_unroll=8), PhysicsEnv(), "gpu") == 8
