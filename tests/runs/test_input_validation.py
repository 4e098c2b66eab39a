"""Inputs that used to train silently, crash in JAX or leave a stub run directory:
each is now one line naming the field, the bad value and what is allowed, before
anything compiles and before the run directory exists."""

import re
import textwrap
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import jppo
from jppo import cli, envs
from jppo.runs import experiment, runner

PYTHON_PAGE = Path(__file__).resolve().parents[2] / "docs" / "python.md"
FILE = textwrap.dedent("""
    envs = ["CartPole-v1"]
    seeds = 2
    total_timesteps = 1024
    [config]
    num_envs = 4
    num_steps = 16
    num_minibatches = 2
""")


@pytest.fixture
def file(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(FILE)
    return path


def cli_error(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err  # one line, no traceback
    return err


def test_the_manual_sweep_recipe_validates_before_jit():
    """In `jax.jit(jax.vmap(train))(keys, hparams)` the values are tracers that
    `train` cannot check; the recipe calls `jppo.validate_hparams` first, and it
    names the field, the float32 value as written and the batch entry."""
    recipe = next(block for block in re.findall(r"```python\n(.*?)```", PYTHON_PAGE.read_text(),
                                                re.S) if "grid.tile" in block)
    assert recipe.index("jppo.validate_hparams(hparams)") < recipe.index("jax.jit(")
    config = jppo.PPOConfig(num_envs=4, num_steps=16, num_minibatches=2, total_timesteps=128)
    grid = jppo.sweep(config, vf_coef=[0.05, 0.5], value_lr=[1e-4, 1e-3])
    _, hparams = grid.tile(num_seeds=2)
    jppo.validate_hparams(hparams)
    bad = hparams.replace(policy_lr=hparams.policy_lr.at[3].set(-1e-3))
    with pytest.raises(ValueError) as error:
        jppo.validate_hparams(bad)
    assert str(error.value) == ("policy_lr=-0.001 (entry 3 of a batch) is invalid: allowed is "
                                "a number in (0, inf)")
    with pytest.raises(ValueError, match=r"^hparams=dict is invalid: allowed is a jppo.HParams"):
        jppo.validate_hparams({"policy_lr": -1.0})
    # the un-jitted entry point checks before tracing anything
    env, params = envs.make("CartPole-v1")
    train = jppo.make_train(config, env, params)
    with pytest.raises(ValueError, match=r"^policy_lr=-0.001 is invalid"):
        train(jax.random.PRNGKey(0), config.hparams().replace(policy_lr=jnp.float32(-1e-3)))


@pytest.mark.parametrize("value, message", [
    ("long", "env_params.CartPole-v1: max_steps_in_episode='long' is invalid: allowed is an "
             "integer >= 1"),
    ("-5", "env_params.CartPole-v1: max_steps_in_episode=-5 is invalid: allowed is an "
           "integer >= 1"),
])
def test_env_params_are_checked_before_the_run_directory(file, tmp_path, capsys, value,
                                                         message):
    out = tmp_path / "run"
    err = cli_error(["train", str(file), "--env-param", f"max_steps_in_episode={value}",
                     "--out", str(out), "--progress", "off"], capsys)
    assert err == f"jppo: error: {message}"
    assert not out.exists()  # no stub directory to block the next --out


def test_env_param_types_follow_the_field():
    _, params = envs.make("CartPole-v1", max_steps_in_episode=200.0, gravity=3)
    assert (params.max_steps_in_episode, type(params.max_steps_in_episode)) == (200, int)
    assert (params.gravity, type(params.gravity)) == (3.0, float)
    for overrides, message in [({"gravity": "strong"}, "gravity='strong' is invalid: allowed "
                                "is a number (not NaN)"),
                               ({"max_steps_in_episode": 2.5}, "max_steps_in_episode=2.5"),
                               ({"max_steps_in_episode": True}, "max_steps_in_episode=True")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            envs.make("CartPole-v1", **overrides)
    with pytest.raises(ValueError, match=re.escape(
            "env 'experiments.custom_env:make_env': slip_prob=1.5 is invalid: allowed is a "
            "probability in [0, 1]")):
        envs.make("experiments.custom_env:make_env", slip_prob=1.5)


@pytest.mark.parametrize("variants, message", [
    ("variants = { a = 1 }\n", "variants.a=1 is invalid: allowed is a table of PPOConfig "
                               "fields, e.g. [variants.a] with vf_coef = 0.1"),
    ("[variants]\n", "variants={} is invalid: allowed is at least one named table, e.g. "
                     "[variants.standard]; leave [variants] out for one variant named 'default'"),
    ("variants = 3\n", "variants=3 is invalid: allowed is at least one named table, e.g. "
                        "[variants.standard]; leave [variants] out for one variant named "
                        "'default'"),
])
def test_malformed_or_empty_variants_are_errors(tmp_path, capsys, variants, message):
    path = tmp_path / "bad.toml"
    path.write_text('envs = ["CartPole-v1"]\n' + variants)
    err = cli_error(["train", str(path), "--out", str(tmp_path / "run")], capsys)
    assert err == f"jppo: error: {path}: {message}"
    assert not (tmp_path / "run").exists()


def test_a_rounded_total_is_reported(file, tmp_path, capsys):
    """1000 steps at 64 per rollout run 15 updates = 960 steps: said, not silent."""
    note = ("total_timesteps=1000 is not a multiple of one rollout (num_envs*num_steps=64): "
            "each seed runs 15 updates = 960 env steps (40 fewer); a multiple of 64 runs "
            "exactly")
    exp = experiment.load(file, total_timesteps=1000)
    assert experiment.timestep_notes(exp) == [note]
    with pytest.warns(experiment.TimestepsRounded, match=re.escape(note)), \
            pytest.raises(ValueError, match="devices=99 is invalid"):
        runner.run_experiment(exp, None, devices=99)  # fails after the note, before compiling
    cli_argv = ["train", str(file), "--total-timesteps", "1000", "--devices", "99", "--out",
                str(tmp_path / "run")]
    assert cli.main(cli_argv) == 2
    assert f"jppo train: note: {note}" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error", experiment.TimestepsRounded)
        assert experiment.timestep_notes(experiment.load(file)) == []  # 1024 = 16 rollouts
        with pytest.raises(ValueError, match="devices=99"):
            runner.run_experiment(experiment.load(file), None, devices=99)


def test_a_knob_for_another_action_space_is_rejected(file, tmp_path, capsys):
    err = cli_error(["train", str(file), "--set", "log_std_init=-0.5", "--out",
                     str(tmp_path / "run")], capsys)
    assert err == ("jppo: error: variant 'default': log_std_init=-0.5 is invalid for "
                   "CartPole-v1 (discrete actions): it acts on continuous action spaces only; "
                   "allowed is leaving it at its default 0.0")
    assert not (tmp_path / "run").exists()
    pendulum = experiment.load(file, ["log_std_init=-0.5"], envs=["Pendulum-v1"])
    assert pendulum.variant_config("default").log_std_init == -0.5
    mixed = experiment.load(file, ["log_std_init=-0.5"], envs=["CartPole-v1", "Pendulum-v1"])
    assert mixed.envs == ("CartPole-v1", "Pendulum-v1")  # it applies to one of them
