"""MuJoCo Playground envs (`playground/<EnvName>`) behind the gymnax step contract:
the adapter against a hand-stepped raw Playground episode, spaces, names, a tiny
seed-vmapped training run, and the one-line hint when Playground is not installed.

Only playground/CartpoleBalance is stepped (one 10 ms physics step per env step,
contacts off: the cheapest to compile); every rollout below reuses one compiled
program (the episode limit is traced). Its episodes end in `terminated` only when
the physics state turns NaN (Playground's `done` for every DM Control task), so a
NaN action is what makes one terminate here."""

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
from jppo.core.train import scan_unroll
from jppo.envs.playground import PlaygroundParams
from jppo.runs import experiment, results
from jppo.runs.runner import run

NAME = "playground/CartpoleBalance"
NAN_AT = 9  # the step whose action is NaN in the terminating scenario


@pytest.fixture(scope="module")
def registry():
    return pytest.importorskip("mujoco_playground").registry


@pytest.fixture(scope="module")
def cartpole(registry):
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
    """The same steps on the raw Playground env, auto-reset written out by hand."""
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


@functools.cache
def _scenario(cartpole, max_steps, nan_action):
    env, params = cartpole
    params = params.replace(max_steps_in_episode=max_steps)
    actions = np.full((20, 1), 0.5, np.float32)  # within the bounds
    actions[0] = 3.0  # beyond the bound: clipped to 1 by both
    if nan_action:
        actions[NAN_AT] = np.nan
    reset_key, steps_key = jax.random.split(jax.random.PRNGKey(3))
    step_keys = jax.random.split(steps_key, len(actions))
    got = _rollout(env, params, reset_key, step_keys, jnp.asarray(actions))
    want = _hand_episode(env.unwrapped.brax_env, max_steps, reset_key, step_keys,
                         jnp.asarray(actions))
    return got, want


@pytest.mark.parametrize("max_steps, nan_action", [(6, False), (1000, True)])
def test_steps_match_a_hand_stepped_playground_episode(cartpole, max_steps, nan_action):
    (_, state, (obs, reward, terminated, truncated, final_obs)), want = _scenario(
        cartpole, max_steps, nan_action)
    want_obs, want_reward, want_term, want_trunc, want_final = map(list, zip(*want, strict=True))
    np.testing.assert_array_equal(terminated, want_term)
    np.testing.assert_array_equal(truncated, want_trunc)
    np.testing.assert_allclose(obs, np.stack(want_obs), atol=1e-5)
    np.testing.assert_allclose(final_obs, np.stack(want_final), atol=1e-5)  # NaN == NaN
    np.testing.assert_allclose(reward, want_reward, atol=1e-6)
    assert not (terminated & truncated).any()
    if nan_action:  # the NaN step terminates, nothing truncates, the next obs is finite
        assert np.flatnonzero(terminated).tolist() == [NAN_AT] and not truncated.any()
        assert np.isnan(final_obs[NAN_AT]).any() and np.isfinite(obs).all()
    else:
        assert np.flatnonzero(truncated).tolist() == [5, 11, 17] and not terminated.any()
    chex.assert_type([reward, final_obs], jnp.float32)
    done = np.asarray(terminated | truncated)
    assert int(envs.episode_totals(state)[2]) == done.sum()


def test_reset_after_done_starts_a_fresh_episode(cartpole):
    (obs0, state, (obs, _, _, _, final_obs)), _ = _scenario(cartpole, 6, False)
    # The observation after a truncation is a new episode's first: not the last one,
    # not the first episode's; before it the two agree.
    assert not np.allclose(obs[5], final_obs[5]) and not np.allclose(obs[5], obs0)
    np.testing.assert_array_equal(obs[:5], final_obs[:5])
    # 20 steps = 3 episodes of 6 + 2 steps: the step counter and statistics restarted.
    assert int(state.env_state.time) == 2 and int(state.episode_length) == 2


def test_spaces_and_spec(cartpole, registry):
    env, params = cartpole
    assert params == PlaygroundParams(max_steps_in_episode=6)
    obs_space, action_space = env.observation_space(params), env.action_space(params)
    assert isinstance(obs_space, spaces.Box) and obs_space.shape == (5,)
    assert isinstance(action_space, spaces.Box) and action_space.shape == (1,)
    assert envs.env_spec(env, params) == envs.EnvSpec(
        name=NAME, obs_dim=5, discrete=False, num_actions=0, action_dim=1,
        action_low=(-1.0,), action_high=(1.0,), obs_shape=(5,))
    # Spaces come from abstract evaluation: a contact-rich env builds without a compile,
    # on MJX's JAX implementation, with its own episode length as the default limit.
    cheetah, cheetah_params = envs.make("playground/CheetahRun")
    raw = cheetah.unwrapped.brax_env  # Playground's own sizes: its eval_shape, its model
    spec = envs.env_spec(cheetah, cheetah_params)
    assert (spec.obs_dim, spec.action_dim) == (raw.observation_size, raw.mj_model.nu) == (17, 6)
    assert raw.mjx_model.impl.value == "jax"
    assert cheetah_params.max_steps_in_episode == 1000
    assert env.max_scan_unroll == 1 == cheetah.max_scan_unroll  # through the wrappers
    # The automatic scan_unroll: 1 on a GPU (8 for a gymnax env) as on a CPU.
    config = jppo.PPOConfig()
    assert scan_unroll(config, cheetah, backend="gpu") == 1 == scan_unroll(config, cheetah, "cpu")
    assert scan_unroll(config, envs.make("Pendulum-v1")[0], backend="gpu") == 8


def test_names_and_params_are_checked(registry):
    with pytest.raises(ValueError) as err:
        envs.make("playground/Nope")
    message = str(err.value)
    assert "\n" not in message and "'playground/Nope'" in message
    for valid in (NAME, "playground/CheetahRun", "playground/WalkerWalk"):
        assert valid in message
    with pytest.raises(ValueError, match="Did you mean: 'playground/CartpoleBalance'"):
        envs.make("playground/CartpoleBalanc")
    # A locomotion env would clone mujoco_menagerie from GitHub: refused in one line.
    with pytest.raises(ValueError, match="Go1Getup loads its robot from mujoco_menagerie") as err:
        envs.make("playground/Go1Getup")
    assert "\n" not in str(err.value) and NAME in str(err.value)
    with pytest.raises(ValueError, match="max_steps_in_episode=0 is invalid"):
        envs.make(NAME, max_steps_in_episode=0)
    with pytest.raises(ValueError, match="valid fields: max_steps_in_episode"):
        envs.make(NAME, impl="warp")
    listed = envs.list_envs(include_brax=True)
    assert NAME in listed and "playground/Go1Getup" not in listed and NAME not in envs.list_envs()
    with pytest.raises(ValueError, match="Unknown MuJoCo Playground environment"):
        experiment.from_dict(dict(envs=["playground/Nope"]))
    experiment.from_dict(dict(envs=[NAME]))


def test_a_tiny_seed_vmapped_run_trains_and_counts_truncations(registry, tmp_path):
    config = jppo.PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2,
                            update_epochs=1, num_minibatches=2, eval_every=0)
    result = run(config, NAME, 2, out_dir=tmp_path, progress="off",
                 env_overrides={"max_steps_in_episode": 8})
    metrics = result.metrics()
    for name in ("policy_loss", "value_loss", "episode_return", "explained_variance"):
        assert np.isfinite(metrics[name]).all(), name
    assert metrics["episodes_finished"].shape == (2, 2)  # 2 seeds x 2 updates
    # 16 steps per update and env, episodes of exactly 8 (nothing terminates).
    assert (metrics["episodes_finished"] == 4 * 2).all()
    assert (metrics["episode_length"] == 8).all()
    # A dense reward in [0, 1] per step: an 8-step return lies in [0, 8].
    assert ((metrics["episode_return"] > 0) & (metrics["episode_return"] <= 8)).all()
    # Seeds differ: each is its own run inside the one vmapped program.
    assert not np.allclose(metrics["policy_loss"][0], metrics["policy_loss"][1])
    assert results.part_path(tmp_path, "default", NAME, 0).exists()


def test_without_playground_a_playground_name_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco_playground", None)  # the import now fails
    with pytest.raises(ImportError, match=r"pip install 'jppo\[playground\]'") as err:
        envs.make(NAME)
    assert "\n" not in str(err.value)
    with pytest.raises(ImportError, match="jppo"):
        experiment.from_dict(dict(envs=[NAME]))
    assert envs.list_playground_envs() == []
    assert not any(name.startswith("playground/") for name in envs.list_envs(include_brax=True))
