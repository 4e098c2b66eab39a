"""The train program: shapes, determinism, seed/hparam vectorization, the host
runner, and a learning check that a sign error or broken GAE would fail."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import jppo
from jppo.diagnostics import final_episode_return
from jppo.runner import load_metrics, run, seed_keys

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
    assert set(result.metrics) <= set(jppo.diagnostics.METRIC_DOCS)


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


def test_runner_chunks_equal_one_program_and_write_results(tmp_path, cartpole, solo,
                                                          tiny_trainer):
    config = tiny_trainer.config
    result = run(config, "CartPole-v1", 2, tmp_path, chunk_updates=1, log=None)
    for i in range(2):
        alone = solo(jax.random.PRNGKey(i), config.hparams())
        assert_trees_close({k: v[i] for k, v in result.metrics.items()}, alone.metrics)
    on_disk = load_metrics(tmp_path / "metrics.npz")
    assert_trees_close(on_disk, result.metrics, rtol=0, atol=0)
    info = json.loads((tmp_path / "config.json").read_text())
    assert info["config"]["num_steps"] == 16 and info["num_seeds"] == 2
    assert "jax" in info["versions"]
    assert json.loads((tmp_path / "summary.json").read_text())["seeds"] == 2


def test_crash_mid_run_keeps_finished_chunks(tmp_path, tiny_trainer):
    calls = []

    def crash_after_two_chunks(line):
        calls.append(line)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tiny_trainer.config, "CartPole-v1", 2, tmp_path, chunk_updates=1,
            log=crash_after_two_chunks)
    saved = load_metrics(tmp_path / "metrics.npz")
    chex.assert_shape(saved["policy_loss"], (2, 2))
    assert not list(tmp_path.glob(".metrics.npz.*")), "no temporary file left behind"


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
    result = run(config, "CartPole-v1", 4, log=None, chunk_updates=200)
    final = final_episode_return(result.metrics)
    assert np.mean(final) > 150, final
    ev = result.metrics["explained_variance"][:, -20:]
    assert np.nanmean(ev) > 0.0, "the critic explains the returns better than their mean"


def test_cli_train_end_to_end(tmp_path):
    """`jppo train` on a tiny budget prints per-seed finals and throughput, writes the run."""
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "jppo.cli", "train", "--env", "CartPole-v1", "--seeds", "2",
           "--total-timesteps", "1024", "--set", "num_envs=4", "--set", "num_steps=64",
           "--set", "activation=relu", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "seeds    0-1" in done.stdout and "env-steps/s" in done.stdout
    assert json.loads((out / "config.json").read_text())["config"]["activation"] == "relu"
    chex.assert_shape(load_metrics(out / "metrics.npz")["policy_loss"], (2, 4))

    bad = subprocess.run([*cmd[:-2], "--set", "num_envz=3"], capture_output=True, text=True,
                         check=False, timeout=120)
    assert bad.returncode == 2 and "num_envz" in bad.stderr
