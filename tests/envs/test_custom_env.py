"""Your own environment: an object with the gymnax API, or an import path
`package.module:factory`, runs through `make_train`, `jppo.run`, TOML experiments
and the CLI, resumes bitwise, and a wrong one fails early with one line.

The envs below are defined here and named by import path as
`tests.envs.test_custom_env:...` (the repository root is on `sys.path`)."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from flax import struct
from gymnax.environments import spaces

import jppo
from experiments import custom_env
from jppo import cli, envs
from jppo.analysis.metrics import final_episode_return
from jppo.runs import experiment, results, runner

ROOT = Path(__file__).resolve().parents[2]
HERE = "tests.envs.test_custom_env"
TICKER = f"{HERE}:make_ticker"
TINY = dict(num_envs=4, num_steps=16, update_epochs=1, num_minibatches=2)
UPDATES = 4
CONFIG = jppo.PPOConfig(total_timesteps=4 * 16 * UPDATES, **TINY)
REWARD = 1000.0 + 7.0  # the Ticker's two reward components


@struct.dataclass
class TickParams:
    terminate_at: int = 3
    max_steps_in_episode: int = 5


class Ticker:
    """Pays 1000 (base) + 7 (bonus) every step whatever the action; the episode
    terminates at step `terminate_at` and is truncated at `max_steps_in_episode`,
    so every episode lasts min of the two. `width` sets the observation size."""

    name = "Ticker"

    def __init__(self, width: int = 2):
        self.width = width

    @property
    def default_params(self):
        return TickParams()

    def observation_space(self, params):
        return spaces.Box(0.0, 100.0, (self.width,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)

    def _obs(self, t):
        return jnp.full((self.width,), t, jnp.float32)

    def reset(self, key, params=None):
        return self._obs(0), jnp.zeros((), jnp.int32)

    def step(self, key, t, action, params=None):
        params = self.default_params if params is None else params
        t = t + 1
        terminated = t >= params.terminate_at
        truncated = (t >= params.max_steps_in_episode) & ~terminated
        after = jnp.where(terminated | truncated, 0, t)
        reward = jnp.float32(1000.0) + jnp.float32(7.0)
        return self._obs(after), after, reward, terminated, truncated, {
            "final_observation": self._obs(t)}


def make_ticker(width: int = 2):
    """A factory returning the env alone (its default_params are used)."""
    return Ticker(width)


def ticker_with_kwargs(**fields):
    """A `**kwargs` factory: it receives every env param."""
    return Ticker(fields.pop("width", 2)), TickParams(**fields)


class NoStep(Ticker):
    step = None


class OldStep(Ticker):
    def step(self, key, t, action, params=None):
        obs, t, reward, terminated, truncated, info = super().step(key, t, action, params)
        return obs, t, reward, terminated | truncated, info


class NoFinalObservation(Ticker):
    def step(self, key, t, action, params=None):
        *head, _ = super().step(key, t, action, params)
        return (*head, {})


def old_step():
    return OldStep()


def no_step():
    return NoStep()


def expected_episodes(length: int, updates: int = UPDATES, num_envs: int = 4,
                      num_steps: int = 16) -> np.ndarray:
    """Episodes finished per update when every episode lasts `length` steps."""
    t = np.arange(updates * num_steps).reshape(updates, num_steps)
    return ((t + 1) % length == 0).sum(axis=1) * num_envs


def check_episode_stats(metrics, length: int) -> None:
    count = expected_episodes(length)
    np.testing.assert_array_equal(np.asarray(metrics["episodes_finished"])[0], count)
    ended = count > 0
    np.testing.assert_allclose(np.asarray(metrics["episode_length"])[0][ended], length)
    np.testing.assert_allclose(np.asarray(metrics["episode_return"])[0][ended],
                               length * REWARD, rtol=1e-6)


@pytest.fixture(autouse=True)
def repo_root_importable(monkeypatch):
    """Import paths `tests.…` and `experiments.…` resolve from the repository root;
    `cli.main` sets XLA_FLAGS, kept from leaking into later subprocesses."""
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))


# ------------------------------------------------------------------ make_train
@pytest.mark.parametrize("params, length", [
    (TickParams(terminate_at=3, max_steps_in_episode=5), 3),  # every episode terminates
    (TickParams(terminate_at=9, max_steps_in_episode=4), 4),  # every episode is truncated
])
def test_bare_env_trains_and_counts_terminations_and_truncations(params, length):
    """`make_train` wraps the bare env itself; its episode statistics match a
    count made by hand, truncated episodes included."""
    result = jax.jit(jax.vmap(jppo.make_train(CONFIG, Ticker(), params)))(runner.seed_keys(2))
    for name, value in result.metrics.items():
        assert value.shape == (2, UPDATES), name  # one scalar per update per seed
    check_episode_stats(result.metrics, length)


def layers(env):
    found = []
    while isinstance(env, envs.Wrapper):
        found.append(type(env).__name__)
        env = env._env
    return [*found, type(env).__name__]


def test_wrap_adds_each_layer_once_and_make_uses_it():
    env, params = envs.wrap(Ticker())
    assert params == TickParams()
    assert layers(env) == ["EpisodeStatistics", "FlattenObservation", "Ticker"]
    assert envs.wrap(env, params)[0] is env  # already wrapped: unchanged
    flat = envs.FlattenObservation(Ticker())
    assert envs.wrap(flat)[0]._env is flat  # a layer it has is not added again
    made, made_params = envs.make(TICKER)  # envs.make wraps the same way
    assert layers(made) == layers(env)  # (made's Ticker: `import tests.envs.test_custom_env`)
    assert dataclasses.astuple(made_params) == dataclasses.astuple(TickParams())
    with pytest.raises(ValueError, match="already wrapped"):
        envs.wrap(env, reward_scale=10.0)
    scaled, _ = envs.wrap(Ticker(), reward_scale=10.0)
    assert layers(scaled) == ["EpisodeStatistics", "RewardScale", "FlattenObservation",
                              "Ticker"]


# ------------------------------------------------------------------ env params
def test_env_params_go_to_the_factory_or_override_its_params():
    env, params = envs.make(TICKER, width=3, terminate_at=2)
    assert envs.env_spec(env, params).obs_dim == 3  # factory keyword
    assert dataclasses.astuple(params) == (2, 5)  # a params field
    env, params = envs.make(f"{HERE}:ticker_with_kwargs", width=5, max_steps_in_episode=7)
    assert envs.env_spec(env, params).obs_dim == 5 and params.max_steps_in_episode == 7
    with pytest.raises(ValueError) as error:
        envs.make(TICKER, widht=3)
    message = str(error.value)
    assert "unknown env param(s) 'widht'" in message and "(width)" in message
    assert "max_steps_in_episode, terminate_at" in message and "\n" not in message


# -------------------------------------------------------- jppo.run and resume
def test_run_with_an_object_names_it_and_resumes_bitwise(tmp_path):
    """The shipped DeliveryChain (random slips, so the env's key is exercised):
    stopped after 2 of 4 chunks and resumed with the same object, it equals the
    uninterrupted run bit for bit."""
    chain = custom_env.DeliveryChain()
    uninterrupted = jppo.run(CONFIG, chain, 2, chunk_updates=1, progress="off")
    out = tmp_path / "run"
    jppo.run(CONFIG, chain, 2, out, chunk_updates=1, progress="off", stop_after_chunks=2)
    assert results.read_metrics(out)["update"].max() == 1
    resumed = jppo.run(CONFIG, chain, 2, out, chunk_updates=1, progress="off", resume=True)
    pd.testing.assert_frame_equal(resumed.frame, uninterrupted.frame, check_exact=True)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed.states),
                 jax.device_get(uninterrupted.states))
    assert results.read_run_info(out)["envs"] == ["DeliveryChain"]
    assert set(resumed.frame["env"]) == {"DeliveryChain"}


TOML = textwrap.dedent(f"""
    name = "ticker"
    envs = ["{TICKER}"]
    seeds = 2
    total_timesteps = {4 * 16 * UPDATES}
    chunk_updates = 1

    [config]
    num_envs = 4
    num_steps = 16
    update_epochs = 1
    num_minibatches = 2

    [env_params."{TICKER}"]
    width = 3
    terminate_at = 2
""")


@pytest.fixture(scope="module")
def in_memory():
    """The reference: the same env and params given as objects."""
    return jppo.run(CONFIG, (Ticker(3), TickParams(terminate_at=2)), 2, chunk_updates=1,
                    progress="off")


def numbers(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["env"]).reset_index(drop=True)


def test_toml_import_path_equals_the_object_and_resumes_from_the_cli(tmp_path, in_memory,
                                                                     capsys):
    file = tmp_path / "ticker.toml"
    file.write_text(TOML)
    exp = experiment.load(file)
    assert exp.envs == (TICKER,) and exp.env_params[TICKER] == {"width": 3, "terminate_at": 2}
    out = tmp_path / "run"
    runner.run_experiment(exp, out, progress="off", stop_after_chunks=2)
    assert results.read_run_info(out)["envs"] == [TICKER]
    assert cli.main(["compare", str(file), "--out", str(out), "--resume",
                     "--progress", "off"]) == 0
    frame = results.read_metrics(out)
    assert set(frame["env"]) == {TICKER}
    pd.testing.assert_frame_equal(numbers(frame), numbers(in_memory.frame), check_exact=True)
    check_episode_stats(results.metric_arrays(frame, "default", TICKER), 2)
    assert (out / "summary.md").is_file() and "ticker" in capsys.readouterr().out


def test_cli_train_with_import_path_and_env_params(tmp_path, in_memory, capsys):
    """`jppo train --env package.module:factory --env-param ...` in a fresh
    process, its 2 seeds sharded over 2 devices; summary, plot and diagnose
    re-read the run directory."""
    from conftest import with_devices  # here, not at the top: the child imports this module

    file = tmp_path / "cartpole.toml"
    file.write_text(TOML.replace(f'"{TICKER}"', '"CartPole-v1"').split("[env_params")[0])
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "jppo.cli", "train", str(file), "--env", TICKER,
         "--env-param", "width=3", "--env-param", "terminate_at=2", "--devices", "2",
         "--out", str(out), "--progress", "off"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env=dict(os.environ, XLA_FLAGS=with_devices(2)))
    assert done.returncode == 0, done.stderr[-3000:]
    info = results.read_run_info(out)
    assert info["envs"] == [TICKER]
    assert info["experiment"]["env_params"] == {TICKER: {"width": 3, "terminate_at": 2}}
    frame = results.read_metrics(out)
    pd.testing.assert_frame_equal(numbers(frame), numbers(in_memory.frame), check_exact=False,
                                  rtol=1e-4, atol=1e-5)
    for command in (["summary", str(out), "--reps", "100"], ["plot", str(out)],
                    ["diagnose", str(out)]):
        assert cli.main(command) == 0, command
    assert TICKER in capsys.readouterr().out


# ---------------------------------------------------------------- clear errors
@pytest.mark.parametrize("env, message", [
    (NoStep(), "env 'Ticker': no step method; allowed is an object with the gymnax"),
    (OldStep(), "step returns the old 5-tuple (obs, state, reward, done, info)"),
    (NoFinalObservation(), "step's info has no 'final_observation'"),
    (f"{HERE}:old_step", f"env '{HERE}:old_step': step returns the old 5-tuple"),
    (f"{HERE}:nothing_here", f"env '{HERE}:nothing_here': module '{HERE}' has no "
                             "attribute 'nothing_here'"),
    ("no_such_module_xyz:make", "env 'no_such_module_xyz:make': module 'no_such_module_xyz' "
                                "cannot be imported (No module named 'no_such_module_xyz')"),
    ("tests/test_custom_env.py:make", "not a valid import path; allowed is an import path "
                                      "package.module:factory"),
    ("CartPol-v1", "unknown environment 'CartPol-v1' (did you mean 'CartPole-v1'"),
    ("CartPol-v1", "allowed is a gymnax id (envs.list_envs() lists all) or an import path"),
])
def test_a_wrong_env_fails_in_one_line_before_a_run_directory(tmp_path, env, message):
    out = tmp_path / "run"
    with pytest.raises(ValueError) as error:
        jppo.run(CONFIG, env, 2, out, progress="off")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not out.exists()


def test_a_wrong_env_fails_before_compiling_from_the_cli(capsys):
    assert cli.main(["train", "--env", f"{HERE}:no_step", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "no step method" in err and err.count("\n") == 1


def test_make_train_rejects_the_old_api_before_tracing_the_program():
    with pytest.raises(ValueError, match="old 5-tuple"):
        jppo.make_train(CONFIG, OldStep(), None)


# ---------------------------------------------------- the shipped environment
def chain_episode(actions, length=8, **fields):
    """Returns, flags and final observations of one episode played by `actions`."""
    env = custom_env.DeliveryChain(length)
    params = custom_env.DeliveryParams(slip_prob=0.0, **fields)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    out = []
    for action in actions:
        _, state, reward, terminated, truncated, info = env.step(
            jax.random.PRNGKey(1), state, jnp.int32(action), params)
        out.append((float(reward), bool(terminated), bool(truncated),
                    np.asarray(info["final_observation"])))
    return out


def test_delivery_chain_rewards_sum_their_components():
    delivered = chain_episode([1] * 7)
    assert sum(r for r, *_ in delivered) == 7 * (150 - 20) + 2000
    assert [t for _, t, _, _ in delivered] == [False] * 6 + [True]
    np.testing.assert_array_equal(delivered[-1][3][:8], np.eye(8)[7])
    cashed = chain_episode([1, 1, 1, 2])
    assert [r for r, *_ in cashed] == [130.0] * 3 + [50 * 3 - 20]
    assert cashed[-1][1:3] == (True, False)
    stuck = chain_episode([0] * 5, max_steps_in_episode=5)
    assert [r for r, *_ in stuck] == [-20.0] * 5
    assert [f[1:3] for f in stuck] == [(False, False)] * 4 + [(False, True)]
    assert stuck[-1][3][-1] == 1.0  # the whole time used, seen before the reset


def test_standard_ppo_learns_the_delivery_chain():
    """Default PPO, 2 seeds, 50k steps: from about 60 (random) to near the
    best return, 2910."""
    result = jppo.run(jppo.PPOConfig(total_timesteps=50_000), "experiments.custom_env:make_env",
                      2, progress="off")
    metrics = result.metrics()
    first = np.nanmean(metrics["episode_return"][:, :3])
    assert first < 500
    final = final_episode_return(metrics)
    assert np.all(final > 2500), final
    assert json.dumps(result.experiment.to_dict())  # recorded by name, serializable
