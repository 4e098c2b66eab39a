"""Tests for the envs package: construction, wrappers and episode statistics."""

import dataclasses
import os

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from jppo import envs
from jppo.envs.wrappers import ClipAction

MNIST_DIR = "/tmp/mnist"
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
HAS_MNIST = all(os.path.exists(os.path.join(MNIST_DIR, f)) for f in MNIST_FILES)


def _env_param(name: str):
    if name == "MNISTBandit-bsuite" and not HAS_MNIST:
        return pytest.param(
            name,
            marks=pytest.mark.skip(
                reason="MNISTBandit-bsuite downloads MNIST into /tmp/mnist when "
                "constructed; the data is not available offline"
            ),
        )
    return name


def _rollout(env, params, key, actions):
    """Reset, then step through ``actions``; returns per-step outputs."""

    @jax.jit
    def run(key, actions):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)

        def body(carry, action):
            state, key = carry
            key, step_key = jax.random.split(key)
            obs, state, reward, terminated, truncated, info = env.step(
                step_key, state, action, params
            )
            out = (obs, reward, terminated, truncated, info["final_observation"])
            return (state, key), out

        (state, _), outs = jax.lax.scan(body, (state, key), actions)
        return obs, state, outs

    return run(key, actions)


# --- construction -----------------------------------------------------------


def test_list_envs_sorted_and_complete():
    names = envs.list_envs()
    assert names == sorted(names)
    assert set(names) == set(gymnax.registered_envs)
    assert "CartPole-v1" in names


@pytest.mark.parametrize("name", [_env_param(n) for n in envs.list_envs()])
def test_make_every_env(name):
    env, params = envs.make(name)
    spec = envs.env_spec(env, params)

    @jax.jit
    def reset_and_step(key):
        reset_key, action_key, step_key = jax.random.split(key, 3)
        obs, state = env.reset(reset_key, params)
        action = env.action_space(params).sample(action_key)
        return obs, env.step(step_key, state, action, params)

    obs0, (obs, state, reward, terminated, truncated, info) = reset_and_step(
        jax.random.PRNGKey(0)
    )
    # Images (rank 3: MinAtar, Pong-misc) keep their (H, W, C) shape; the rest is flat.
    inner_shape = tuple(env.unwrapped.observation_space(params).shape)
    expected = inner_shape if len(inner_shape) == 3 else (spec.obs_dim,)
    assert spec.obs_shape == expected and np.prod(expected) == spec.obs_dim
    for o in (obs0, obs, info["final_observation"]):
        chex.assert_shape(o, expected)
        chex.assert_type(o, jnp.float32)
    chex.assert_shape([reward, terminated, truncated], ())
    chex.assert_type(reward, jnp.float32)
    assert isinstance(state, envs.EpisodeStatsState)
    assert env.observation_space(params).shape == expected
    if spec.discrete:
        assert spec.num_actions == env.action_space(params).n >= 2
        assert spec.action_dim == 1 and spec.action_low is None
    else:
        assert spec.num_actions == 0
        assert len(spec.action_low) == len(spec.action_high) == spec.action_dim
        assert all(lo < hi for lo, hi in zip(spec.action_low, spec.action_high, strict=False))


def test_wrapper_stack_and_forwarding():
    env, params = envs.make("Pendulum-v1", reward_scale=2.0)
    assert isinstance(env, envs.EpisodeStatistics)
    assert isinstance(env._env, envs.RewardScale)
    assert isinstance(env._env._env, envs.ClipAction)
    assert isinstance(env._env._env._env, envs.FlattenObservation)
    assert env.name == env.unwrapped.name == "Pendulum-v1"
    assert env.num_actions == env.unwrapped.num_actions
    assert type(env.default_params) is type(params)

    discrete_env, _ = envs.make("CartPole-v1")
    assert isinstance(discrete_env._env, envs.FlattenObservation)  # no ClipAction


def test_flattened_observation_space():
    env, params = envs.make("Catch-bsuite")
    inner = env.unwrapped.observation_space(params)
    space = env.observation_space(params)
    assert isinstance(space, spaces.Box)
    assert space.shape == (int(np.prod(inner.shape)),) == (50,)
    chex.assert_shape([space.low, space.high], (50,))

    # An image keeps its shape (a conv torso reads it); keep_images=False flattens it.
    env, params = envs.make("Breakout-MinAtar")
    space = env.observation_space(params)
    assert space.shape == (10, 10, 4)
    chex.assert_shape([space.low, space.high], (10, 10, 4))
    flat = envs.FlattenObservation(env.unwrapped, keep_images=False)
    assert flat.observation_space(params).shape == (400,)
    obs, _ = flat.reset(jax.random.PRNGKey(0), params)
    kept, _ = envs.FlattenObservation(env.unwrapped).reset(jax.random.PRNGKey(0), params)
    np.testing.assert_array_equal(obs, np.asarray(kept).reshape(-1))

    # A Discrete observation (FrozenLake's cell index) becomes a length-1 Box.
    env, params = envs.make("FrozenLake-misc")
    space = env.observation_space(params)
    assert space.shape == (1,)
    assert envs.env_spec(env, params).obs_dim == 1


def test_unknown_env_suggests_close_matches():
    with pytest.raises(ValueError) as err:
        envs.make("CartPole-v0")
    msg = str(err.value)
    assert "CartPole-v0" in msg and "CartPole-v1" in msg
    assert "envs.list_envs()" in msg

    with pytest.raises(ValueError, match="CartPole-v1"):
        envs.make("cartpole-v1")  # case-insensitive suggestions


def test_param_overrides():
    _, params = envs.make("CartPole-v1", max_steps_in_episode=10)
    assert params.max_steps_in_episode == 10

    with pytest.raises(ValueError) as err:
        envs.make("CartPole-v1", max_step=10)
    assert "max_step" in str(err.value)
    assert "max_steps_in_episode" in str(err.value)  # lists valid fields


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan")])
def test_reward_scale_validation(scale):
    with pytest.raises(ValueError, match="reward_scale"):
        envs.make("CartPole-v1", reward_scale=scale)
    env, _ = envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="reward_scale"):
        envs.RewardScale(env, scale)


def test_env_spec():
    env, params = envs.make("CartPole-v1")
    assert envs.env_spec(env, params) == envs.EnvSpec(
        name="CartPole-v1", obs_dim=4, discrete=True, num_actions=2, action_dim=1,
        obs_shape=(4,),
    )
    env, params = envs.make("Pendulum-v1")
    spec = envs.env_spec(env, params)
    assert (spec.obs_dim, spec.discrete, spec.num_actions, spec.action_dim) == (
        3,
        False,
        0,
        1,
    )
    assert spec.action_low == (-2.0,) and spec.action_high == (2.0,)
    hash(spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.obs_dim = 5


# --- episode statistics -----------------------------------------------------


def _cartpole_actions(n: int) -> jnp.ndarray:
    # Alternating actions keep the pole up (episodes truncate at 10 steps);
    # a constant push tips it over (episodes terminate early).
    alternating = np.arange(n // 2) % 2
    constant = np.ones(n - n // 2, dtype=np.int64)
    return jnp.asarray(np.concatenate([alternating, constant]), jnp.int32)


def _hand_episode_stats(rewards, terminated, truncated):
    """Plain-Python episode bookkeeping from step outputs."""
    finished_returns, finished_lengths = [], []
    ret, length = 0.0, 0
    for r, te, tr in zip(rewards.tolist(), terminated.tolist(), truncated.tolist(), strict=False):
        ret += r
        length += 1
        if te or tr:
            finished_returns.append(ret)
            finished_lengths.append(length)
            ret, length = 0.0, 0
    return finished_returns, finished_lengths, ret, length


def test_episode_statistics_match_hand_loop():
    env, params = envs.make("CartPole-v1", max_steps_in_episode=10)
    n = 80
    _, state, (_, rewards, terminated, truncated, _) = _rollout(
        env, params, jax.random.PRNGKey(1), _cartpole_actions(n)
    )
    rewards, terminated, truncated = map(np.asarray, (rewards, terminated, truncated))
    # The scenario must exercise both ways an episode can end.
    assert truncated.any() and terminated.any()

    returns, lengths, running_ret, running_len = _hand_episode_stats(
        rewards, terminated, truncated
    )
    return_sum, length_sum, count = envs.episode_totals(state)
    assert int(count) == len(returns) == int((terminated | truncated).sum())
    np.testing.assert_allclose(float(return_sum), sum(returns), rtol=1e-6)
    np.testing.assert_allclose(float(length_sum), sum(lengths), rtol=1e-6)
    np.testing.assert_allclose(float(state.episode_return), running_ret, rtol=1e-6)
    assert int(state.episode_length) == running_len
    chex.assert_type(
        [state.episode_return, state.finished_return_sum, state.finished_length_sum],
        jnp.float32,
    )
    chex.assert_type([state.episode_length, state.finished_count], jnp.int32)


def test_episode_statistics_vmapped_over_envs():
    env, params = envs.make("CartPole-v1", max_steps_in_episode=10)
    n, num_envs = 40, 3
    keys = jax.random.split(jax.random.PRNGKey(2), num_envs)
    actions = _cartpole_actions(n)
    _, state, (_, rewards, terminated, truncated, _) = jax.vmap(
        lambda k: _rollout(env, params, k, actions)
    )(keys)
    chex.assert_shape(state.finished_count, (num_envs,))

    expected_returns, expected_lengths = [], []
    for i in range(num_envs):
        returns, lengths, _, _ = _hand_episode_stats(
            np.asarray(rewards[i]), np.asarray(terminated[i]), np.asarray(truncated[i])
        )
        expected_returns += returns
        expected_lengths += lengths
    return_sum, length_sum, count = envs.episode_totals(state)
    chex.assert_shape([return_sum, length_sum, count], ())
    assert int(count) == len(expected_returns) > 0
    np.testing.assert_allclose(float(return_sum), sum(expected_returns), rtol=1e-6)
    np.testing.assert_allclose(float(length_sum), sum(expected_lengths), rtol=1e-6)


def test_reset_episode_totals_keeps_running_episode():
    env, params = envs.make("CartPole-v1", max_steps_in_episode=10)
    # 25 alternating steps: two truncated episodes plus 5 steps into a third.
    actions = jnp.asarray(np.arange(25) % 2, jnp.int32)
    _, state, _ = _rollout(env, params, jax.random.PRNGKey(3), actions)
    assert int(state.finished_count) == 2 and int(state.episode_length) == 5

    cleared = envs.reset_episode_totals(state)
    assert [int(x) for x in envs.episode_totals(cleared)] == [0, 0, 0]
    chex.assert_trees_all_equal(
        (cleared.env_state, cleared.episode_return, cleared.episode_length),
        (state.env_state, state.episode_return, state.episode_length),
    )
    chex.assert_trees_all_equal_dtypes(cleared, state)


def test_reset_starts_statistics_at_zero():
    env, params = envs.make("CartPole-v1")
    _, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)
    for leaf in (
        state.episode_return,
        state.episode_length,
        *envs.episode_totals(state),
    ):
        assert float(leaf) == 0.0


# --- observations, actions, rewards ------------------------------------------


def test_final_observation_flattened_and_differs_only_at_done():
    env, params = envs.make("Catch-bsuite")  # 10x5 image -> 50-vector
    n = 30  # Catch episodes last 9 steps
    actions = jnp.ones((n,), jnp.int32)
    _, _, (obs, _, terminated, truncated, final_obs) = _rollout(
        env, params, jax.random.PRNGKey(4), actions
    )
    chex.assert_shape([obs, final_obs], (n, 50))
    chex.assert_type(final_obs, jnp.float32)
    done = np.asarray(terminated | truncated)
    assert done.sum() >= 3
    differs = np.any(np.asarray(obs) != np.asarray(final_obs), axis=-1)
    np.testing.assert_array_equal(differs, done)


class _EchoEnv:
    """Minimal env whose observation is the action it received."""

    default_params = None
    name = "Echo"
    num_actions = 2

    def action_space(self, params):
        return spaces.Box(jnp.array([-1.0, 0.0]), jnp.array([1.0, 0.5]), (2,))

    def reset(self, key, params=None):
        return jnp.zeros(2), jnp.zeros(())

    def step(self, key, state, action, params=None):
        false = jnp.zeros((), bool)
        return action, state, jnp.zeros(()), false, false, {}


def test_clip_action_clips_to_box():
    env = ClipAction(_EchoEnv())
    obs, *_ = env.step(None, None, jnp.array([5.0, -3.0]))
    np.testing.assert_allclose(obs, [1.0, 0.0])
    obs, *_ = env.step(None, None, jnp.array([0.25, 0.25]))
    np.testing.assert_allclose(obs, [0.25, 0.25])


def test_pendulum_out_of_range_action_acts_like_bound():
    env, params = envs.make("Pendulum-v1")
    key = jax.random.PRNGKey(5)
    _, state = env.reset(key, params)
    step = jax.jit(env.step)
    big = step(key, state, jnp.array([10.0]), params)
    bound = step(key, state, jnp.array([2.0]), params)
    chex.assert_trees_all_close(big[:4], bound[:4])


def test_reward_scale_multiplies_rewards_and_returns():
    actions = _cartpole_actions(40)
    key = jax.random.PRNGKey(6)
    env, params = envs.make("CartPole-v1", max_steps_in_episode=10)
    scaled_env, _ = envs.make(
        "CartPole-v1", reward_scale=1000.0, max_steps_in_episode=10
    )
    _, state, (obs, rewards, *_) = _rollout(env, params, key, actions)
    _, scaled_state, (scaled_obs, scaled_rewards, *_) = _rollout(
        scaled_env, params, key, actions
    )
    np.testing.assert_array_equal(obs, scaled_obs)
    np.testing.assert_allclose(scaled_rewards, 1000.0 * rewards)
    ret, length, count = envs.episode_totals(state)
    scaled_ret, scaled_length, scaled_count = envs.episode_totals(scaled_state)
    np.testing.assert_allclose(scaled_ret, 1000.0 * ret, rtol=1e-6)
    assert (int(scaled_count), float(scaled_length)) == (int(count), float(length))


def test_params_default_to_env_defaults():
    env, params = envs.make("Pendulum-v1")
    key = jax.random.PRNGKey(7)
    obs, state = env.reset(key)
    explicit = env.step(key, state, jnp.array([3.0]), params)
    implicit = env.step(key, state, jnp.array([3.0]))
    chex.assert_trees_all_close(explicit[:5], implicit[:5])
    chex.assert_shape(obs, (3,))
