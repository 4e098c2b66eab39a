"""The experiment runner: programs shared by variants, chunks streamed to Parquet,
checkpoints and bitwise resume after a kill, and seeds sharded over devices."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import with_devices

import jppo
from jppo import envs
from jppo.runs import experiment, mesh, results, runner

TINY = dict(num_envs=4, num_steps=16, update_epochs=2, num_minibatches=2)


def tiny_experiment(**fields):
    data = dict(name="tiny", envs=["CartPole-v1"], seeds=2, total_timesteps=4 * 16 * 6,
                chunk_updates=2, config=dict(TINY),
                variants={"standard": {}, "low_vf": {"vf_coef": 0.1},
                          "mse": {"value_loss": "mse"}})
    data.update(fields)
    return experiment.from_dict(data)


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run, kept in memory."""
    return runner.run_experiment(tiny_experiment(), None, progress="off")


def test_plan_shares_a_program_between_traced_variants():
    programs = runner.plan(tiny_experiment(envs=["CartPole-v1", "Acrobot-v1"]))
    assert [(p.env, p.variants) for p in programs] == [
        ("CartPole-v1", ("standard", "low_vf")), ("CartPole-v1", ("mse",)),
        ("Acrobot-v1", ("standard", "low_vf")), ("Acrobot-v1", ("mse",))]
    np.testing.assert_allclose(programs[0].hparams.vf_coef, [0.5, 0.1])


def test_every_variant_equals_its_own_solo_run(reference):
    """Stacked hyperparameters and the chunked loop change nothing: each
    (variant, seed) equals `make_train` run alone with that config and key."""
    exp = tiny_experiment()
    env, params = envs.make("CartPole-v1")
    for variant in exp.variants:
        config = exp.variant_config(variant)
        solo = jax.jit(jax.vmap(jppo.make_train(config, env, params)))(runner.seed_keys(2))
        ours = reference.metrics(variant, "CartPole-v1")
        for name, values in jax.device_get(solo.metrics).items():
            np.testing.assert_allclose(ours[name], values, rtol=1e-5, atol=1e-6,
                                       equal_nan=True, err_msg=f"{variant}: {name}")
    frame = reference.frame
    assert len(frame) == 3 * 2 * 6 and set(frame["seed"]) == {0, 1}
    assert frame["env_steps"].max() == 6 * 64


def test_run_directory_streams_metrics_and_refuses_to_overwrite(tmp_path, reference):
    out = tmp_path / "run"
    result = runner.run_experiment(tiny_experiment(), out, progress="off")
    pd.testing.assert_frame_equal(result.frame, reference.frame, check_exact=True)
    assert len(list((out / "metrics").glob("*.parquet"))) == 3 * 3  # variants x chunks
    assert pd.read_parquet(out / "metrics").shape == reference.frame.shape
    info = results.read_run_info(out)
    assert info["variants"]["mse"]["config"]["value_loss"] == "mse"
    assert info["baseline"] == "standard" and "orbax-checkpoint" in info["versions"]
    with pytest.raises(ValueError, match="already holds a run"):
        runner.run_experiment(tiny_experiment(), out, progress="off")
    with pytest.raises(ValueError, match="different experiment"):
        runner.run_experiment(tiny_experiment(seeds=3), out, resume=True, progress="off")
    with pytest.raises(ValueError, match="no run to resume"):
        runner.run_experiment(tiny_experiment(), tmp_path / "empty", resume=True)


def test_resume_after_a_stop_is_bitwise_identical(tmp_path, reference):
    out = tmp_path / "run"
    runner.run_experiment(tiny_experiment(checkpoint_every=2), out, progress="off",
                          stop_after_chunks=5)
    partial = results.read_metrics(out)  # readable after the stop
    assert 0 < len(partial) < len(reference.frame)
    resumed = runner.run_experiment(tiny_experiment(checkpoint_every=2), out, resume=True,
                                    progress="off")
    pd.testing.assert_frame_equal(resumed.frame, reference.frame, check_exact=True)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed.states),
                 jax.device_get(reference.states))


KILLED_RUN = textwrap.dedent("""
    name = "killed"
    envs = ["CartPole-v1"]
    seeds = 2
    total_timesteps = 3840
    chunk_updates = 1

    [config]
    num_envs = 4
    num_steps = 16
    update_epochs = 2
    num_minibatches = 2

    [variants.standard]
""")


def test_resume_after_sigkill_is_bitwise_identical(tmp_path):
    """A run killed mid-flight keeps a readable results folder; `--resume`
    finishes it with exactly the metrics of an uninterrupted run."""
    file = tmp_path / "killed.toml"
    file.write_text(KILLED_RUN)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "jppo.cli", "train", str(file), "--out", str(out),
           "--progress", "lines"]
    one_device = dict(os.environ, XLA_FLAGS=with_devices(1))
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=one_device)
    lines = 0
    for line in process.stdout:
        lines += "steps/seed" in line
        if lines == 8:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    killed = results.read_metrics(out)
    assert 8 * 2 <= len(killed) < 60 * 2, "finished chunks are on disk, the run is not done"

    exp = experiment.load(file)
    resumed = runner.run_experiment(exp, out, resume=True, progress="off")
    uninterrupted = runner.run_experiment(exp, None, progress="off")
    pd.testing.assert_frame_equal(resumed.frame, uninterrupted.frame, check_exact=True)


SHARDED = textwrap.dedent("""
    import json, sys
    import jax
    from jppo.runs import experiment
    from jppo.runs import runner
    exp = experiment.from_dict(json.loads(sys.argv[1]))
    one = runner.run_experiment(exp, None, devices=1, progress="off")
    one.frame.to_parquet(sys.argv[3])
    two = runner.run_experiment(exp, sys.argv[2], devices=2, progress="off", stop_after_chunks=3)
    state = two.states["program-000"]
    print("devices", len(jax.devices()), len(state.obs.sharding.device_set))
""")


def test_seeds_sharded_over_two_devices_equal_one_device_and_resume_on_one(tmp_path):
    """3 seeds of 2 programs, sharded over 2 forced host devices (each batch of 3
    runs padded to 4), give the 1-device metrics up to float32 rounding: per-device
    batch shapes differ, so XLA may vectorize reductions differently. The run,
    stopped after 3 chunks, resumes on 1 device: checkpoints hold the real runs
    only, never the padding."""
    data = dict(name="sharded", envs=["CartPole-v1"], seeds=3, total_timesteps=4 * 16 * 6,
                chunk_updates=2, config=dict(TINY),
                variants={"standard": {}, "mse": {"value_loss": "mse"}})
    out, one_device = tmp_path / "started-on-two", tmp_path / "one.parquet"
    env = dict(os.environ, XLA_FLAGS=with_devices(2))
    done = subprocess.run([sys.executable, "-c", SHARDED, json.dumps(data), str(out),
                           str(one_device)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "devices 2 2" in done.stdout
    reference = pd.read_parquet(one_device)
    sharded = results.read_metrics(out)
    assert 0 < len(sharded) < len(reference)
    keys = list(results.ID_COLUMNS[:4])
    same_rows = reference.merge(sharded[keys], on=keys)
    pd.testing.assert_frame_equal(sharded, same_rows, check_exact=False, rtol=1e-4, atol=1e-5)
    resumed = runner.run_experiment(experiment.from_dict(data), out, resume=True,
                                    progress="off")
    pd.testing.assert_frame_equal(resumed.frame, reference, check_exact=False,
                                  rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("runs, available, used", [
    (64, 2, 2), (64, 8, 8), (10, 8, 5), (7, 2, 2), (1, 4, 1), (100, 8, 8), (3, 2, 2),
    (48, 16, 16), (20, 16, 10)])
def test_device_count_is_the_fewest_reaching_the_shortest_batch(runs, available, used):
    assert runner.device_count_for(runs, available) == used


def test_padding_runs_to_the_device_count():
    program = runner.plan(tiny_experiment())[0]
    keys, hparams = mesh.batch_inputs(program, tiny_experiment(seeds=3), 4)
    assert keys.shape == (8, 2)  # 6 runs padded to 8
    np.testing.assert_array_equal(keys[6], keys[5])
    np.testing.assert_array_equal(keys[:3], keys[3:6])  # variants share seeds
    np.testing.assert_allclose(hparams.vf_coef, [0.5] * 3 + [0.1] * 5)


def test_single_config_run_helper(tmp_path):
    config = jppo.PPOConfig(**TINY, total_timesteps=4 * 16 * 3)
    result = runner.run(config, "CartPole-v1", 2, tmp_path / "one", chunk_updates=1)
    info = json.loads((tmp_path / "one" / "run.json").read_text())
    assert info["variants"]["default"]["config"]["num_steps"] == 16
    assert result.metrics()["policy_loss"].shape == (2, 3)
