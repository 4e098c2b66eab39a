"""Pixel observations: MinAtar images reach the network unflattened, the conv
torso is chosen for them, observation normalization keeps their shape, a few
updates train, and run.json records the torso each (variant, env) resolved to."""

import json

import chex
import jax
import numpy as np
import pytest

import jppo
from jppo import envs
from jppo.core.train import TrainResult
from jppo.runs import results
from jppo.runs.experiment import Experiment
from jppo.runs.provenance import prepare_run_dir, run_info

PIXELS = "Breakout-MinAtar"
TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2,
            num_minibatches=2, policy_hidden=(32,), value_hidden=(32,))


@pytest.fixture(scope="module")
def pixel_run():
    env, params = envs.make(PIXELS)
    config = jppo.PPOConfig(**TINY, obs_norm=True)
    trainer = jppo.make_train(config, env, params)
    hparams = config.hparams()
    init = jax.jit(trainer.init)(jax.random.PRNGKey(0), hparams)
    run = jax.jit(trainer.run_updates, static_argnums=2)
    state, metrics = run(init, hparams, trainer.num_updates)
    return trainer, init, TrainResult(state, metrics)


def test_the_image_reaches_the_network_unflattened(pixel_run):
    trainer, init, _ = pixel_run
    assert trainer.spec.obs_shape == (10, 10, 4)
    assert trainer.network.torso_kind == "cnn"
    chex.assert_shape(init.obs, (4, 10, 10, 4))


def test_obs_norm_statistics_are_per_pixel(pixel_run):
    _, init, result = pixel_run
    chex.assert_shape([init.norm.obs.mean, init.norm.obs.m2], (10, 10, 4))
    # reset + one warm-up rollout of 4 envs x 16 steps, then 3 updates
    np.testing.assert_allclose(float(result.state.norm.obs.count), 4 + 4 * 16 * 4, rtol=1e-5)


def test_a_pixel_env_trains_a_few_updates(pixel_run):
    _, init, result = pixel_run
    metrics = jax.tree.map(np.asarray, result.metrics)
    for name in ("policy_loss", "value_loss", "entropy", "total_loss", "grad_norm"):
        chex.assert_shape(metrics[name], (3,))
        assert np.all(np.isfinite(metrics[name])), name
    assert np.all(metrics["grad_norm_policy"] > 0) and np.all(metrics["grad_norm_value"] > 0)
    for head in ("policy", "value"):  # the conv layers learn
        before = init.params["params"][f"{head}_encoder"]["Conv_0"]["kernel"]
        after = result.state.params["params"][f"{head}_encoder"]["Conv_0"]["kernel"]
        assert not np.allclose(before, after), head


def test_run_json_records_the_resolved_torso(tmp_path):
    exp = Experiment(name="pixels", envs=(PIXELS, "CartPole-v1"),
                     variants={"auto": {}, "flat": {"torso_kind": "mlp"}},
                     config=dict(TINY), seeds=1)
    expected = {"auto": {PIXELS: "cnn", "CartPole-v1": "mlp"},
                "flat": {PIXELS: "mlp", "CartPole-v1": "mlp"}}
    assert run_info(exp)["torso_kind"] == expected
    prepare_run_dir(tmp_path, exp, resume=False)
    written = results.read_run_info(tmp_path)
    assert written["torso_kind"] == expected
    assert written["variants"]["auto"]["config"]["torso_kind"] == "auto"
    json.dumps(written)
