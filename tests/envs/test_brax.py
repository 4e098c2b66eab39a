"""Brax envs (`brax/<env>`) behind the gymnax step contract: the adapter against
a hand-stepped raw brax env, auto-reset, spaces, names, a tiny training run,
and the one-line hint when brax is not installed.

Only brax/inverted_pendulum is stepped (the cheapest to compile); every
rollout below reuses one compiled program (the episode limit is traced)."""

import functools
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

import jppo
from jppo import envs
from jppo.envs.brax import BraxParams
from jppo.runs import experiment, results
from jppo.runs.runner import run

NAME = "brax/inverted_pendulum"


@pytest.fixture(scope="module")
def brax_envs():
    return pytest.importorskip("brax.envs")


@pytest.fixture(scope="module")
def pendulum(brax_envs):
    return envs.make(NAME, max_steps_in_episode=6)


@functools.partial(jax.jit, static_argnums=0)
def _rollout(env, params, reset_key, step_keys, actions):
    obs0, state = env.reset(reset_key, params)

    def body(state, xs):
        key, action = xs
        obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
        return state, (obs, reward, terminated, truncated, info["final_observation"])

    state, outs = jax.lax.scan(body, state, (step_keys, actions))
    return obs0, state, outs


@functools.cache
def _jitted(raw):
    return jax.jit(raw.reset), jax.jit(raw.step)


def _hand_episode(raw, max_steps, reset_key, step_keys, actions):
    """The same steps on the raw brax env, auto-reset written out by hand."""
    raw_reset, raw_step = _jitted(raw)
    state, time, rows = raw_reset(reset_key), 0, []
    for key, action in zip(step_keys, actions, strict=True):
        state = raw_step(state, jnp.clip(action, -1.0, 1.0))
        time += 1
        final_obs, reward = state.obs, float(state.reward)
        terminated, truncated = bool(state.done), time >= max_steps
        if terminated or truncated:
            state, time = raw_reset(jax.random.split(key)[1]), 0
        rows.append((state.obs, reward, terminated, truncated, final_obs))
    return rows


def _scenario(pendulum, max_steps, actions):
    env, params = pendulum
    params = params.replace(max_steps_in_episode=max_steps)
    reset_key, steps_key = jax.random.split(jax.random.PRNGKey(3))
    step_keys = jax.random.split(steps_key, len(actions))
    actions = jnp.asarray(actions, jnp.float32)[:, None]
    got = _rollout(env, params, reset_key, step_keys, actions)
    want = _hand_episode(env.unwrapped.brax_env, max_steps, reset_key, step_keys, actions)
    return got, want


@functools.cache
def _cached_scenario(pendulum, max_steps, push):
    return _scenario(pendulum, max_steps, np.full(20, 3.0 * push))


@pytest.mark.parametrize("max_steps, push", [(6, 0.0), (1000, 1.0)])
def test_steps_match_a_hand_stepped_brax_episode(pendulum, max_steps, push):
    # No push: the pole stays up and episodes are truncated every 6 steps;
    # a constant push (beyond the action bound: clipped) tips it over.
    (_, state, (obs, reward, terminated, truncated, final_obs)), want = _cached_scenario(
        pendulum, max_steps, push)
    want_obs, want_reward, want_term, want_trunc, want_final = map(list, zip(*want, strict=True))
    np.testing.assert_array_equal(terminated, want_term)
    np.testing.assert_array_equal(truncated, want_trunc)
    np.testing.assert_allclose(obs, np.stack(want_obs), atol=1e-5)
    np.testing.assert_allclose(final_obs, np.stack(want_final), atol=1e-5)
    np.testing.assert_allclose(reward, want_reward, atol=1e-6)
    done = np.asarray(terminated | truncated)
    assert done.sum() >= 1 and (terminated.any() if push else truncated.sum() == 3)
    assert not (terminated & truncated).any()
    chex.assert_type([reward, final_obs], jnp.float32)
    assert int(envs.episode_totals(state)[2]) == done.sum()


def test_reset_after_done_starts_a_fresh_episode(pendulum):
    (obs0, state, (obs, _, _, truncated, final_obs)), _ = _cached_scenario(pendulum, 6, 0.0)
    done_at = int(np.argmax(truncated))
    assert done_at == 5
    # The next observation is a new episode's first: not the last one, not the first episode's.
    assert not np.allclose(obs[done_at], final_obs[done_at])
    assert not np.allclose(obs[done_at], obs0)
    np.testing.assert_array_equal(obs[:done_at], final_obs[:done_at])
    # 20 steps = 3 episodes of 6 + 2 steps: the step counter and running statistics restarted.
    assert int(state.env_state.time) == 2 and int(state.episode_length) == 2


def test_spaces_and_spec(pendulum, brax_envs):
    env, params = pendulum
    assert params == BraxParams(max_steps_in_episode=6, backend="generalized")
    obs_space, action_space = env.observation_space(params), env.action_space(params)
    assert isinstance(obs_space, spaces.Box) and obs_space.shape == (4,)
    assert isinstance(action_space, spaces.Box) and action_space.shape == (1,)
    assert float(action_space.low) == -1.0 and float(action_space.high) == 1.0
    assert envs.env_spec(env, params) == envs.EnvSpec(
        name=NAME, obs_dim=4, discrete=False, num_actions=0, action_dim=1,
        action_low=(-1.0,), action_high=(1.0,), obs_shape=(4,))
    # Spaces come from abstract evaluation: a bigger env builds without a compile.
    ant, ant_params = envs.make("brax/ant")
    assert envs.env_spec(ant, ant_params).action_dim == brax_envs.get_environment("ant").action_size
    assert env.max_scan_unroll == 1 == ant.max_scan_unroll  # through the wrappers
    assert ant_params.max_steps_in_episode == 1000


def test_names_and_params_are_checked(brax_envs, pendulum):
    env, params = pendulum
    with pytest.raises(ValueError, match="built with backend 'generalized'"):
        env.reset(jax.random.PRNGKey(0), params.replace(backend="mjx"))  # backend is static
    with pytest.raises(ValueError) as err:
        envs.make("brax/nope")
    message = str(err.value)
    assert "brax/nope" in message and "brax/ant" in message and NAME in message
    with pytest.raises(ValueError, match="Did you mean: 'brax/ant'"):
        envs.make("brax/ants")
    with pytest.raises(ValueError, match="backend must be one of generalized"):
        envs.make(NAME, backend="warp")
    with pytest.raises(ValueError, match="max_steps_in_episode must be an integer >= 1"):
        envs.make(NAME, max_steps_in_episode=0)
    with pytest.raises(ValueError, match="valid fields: backend, max_steps_in_episode"):
        envs.make(NAME, max_steps=3)
    assert NAME in envs.list_envs(include_brax=True) and NAME not in envs.list_envs()
    with pytest.raises(ValueError, match="Unknown brax environment 'brax/nope'"):
        experiment.from_dict(dict(envs=["brax/nope"]))
    experiment.from_dict(dict(envs=[NAME]))


def test_a_tiny_run_trains_and_counts_truncations(brax_envs, tmp_path):
    config = jppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3,
                            update_epochs=1, num_minibatches=2)
    result = run(config, NAME, 1, out_dir=tmp_path, progress="off",
                 env_overrides={"max_steps_in_episode": 8})
    metrics = result.metrics()
    for name in ("policy_loss", "value_loss", "episode_return", "explained_variance"):
        assert np.isfinite(metrics[name]).all(), name
    # 16 steps per update and env, episodes of at most 8: every env ends at least 2.
    assert (metrics["episodes_finished"] >= 4 * 2).all()
    assert (metrics["episode_length"] <= 8).all()
    assert results.part_path(tmp_path, "default", NAME, 0).exists()


def test_without_brax_a_brax_name_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "brax", None)  # `import brax` now fails
    monkeypatch.setitem(sys.modules, "brax.envs", None)
    monkeypatch.setitem(sys.modules, "mujoco_playground", None)  # Playground requires brax
    with pytest.raises(ImportError, match=r"pip install 'jppo\[brax\]'") as err:
        envs.make("brax/ant")
    assert "\n" not in str(err.value)
    with pytest.raises(ImportError, match="jppo"):
        experiment.from_dict(dict(envs=["brax/ant"]))
    assert envs.list_brax_envs() == []
    assert envs.list_envs(include_brax=True) == envs.list_envs()
    env, _ = envs.make("Pendulum-v1")  # gymnax envs are untouched
    assert env.name == "Pendulum-v1"
