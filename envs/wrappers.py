"""Wrappers around gymnax environments.

Every wrapper keeps the gymnax call signatures, ``reset(key, params=None)`` and
``step(key, state, action, params=None)`` returning
``(obs, state, reward, terminated, truncated, info)``, so wrappers stack in any
order and a trainer cannot tell a wrapped env from a bare one.
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

StepResult = tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]


class Wrapper:
    """Base wrapper: forwards everything it does not override to the inner env."""

    def __init__(self, env: Any):
        self._env = env

    def __getattr__(self, name: str) -> Any:
        # Guard against recursion when ``_env`` is not set yet (copy, pickle).
        if name == "_env" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._env, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._env!r})"

    @property
    def unwrapped(self) -> Any:
        """The bare gymnax environment underneath all wrappers."""
        return getattr(self._env, "unwrapped", self._env)

    @property
    def default_params(self) -> Any:
        return self._env.default_params

    @property
    def name(self) -> str:
        return self._env.name

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def action_space(self, params: Any = None) -> Any:
        return self._env.action_space(self._params(params))

    def observation_space(self, params: Any = None) -> Any:
        return self._env.observation_space(self._params(params))

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        return self._env.reset(key, params)

    def step(
        self, key: jax.Array, state: Any, action: Any, params: Any = None
    ) -> StepResult:
        return self._env.step(key, state, action, params)

    def _params(self, params: Any) -> Any:
        return self.default_params if params is None else params


IMAGE_RANK = 3  # an (H, W, C) observation, e.g. MinAtar's 10x10xchannels grids


def is_image(shape: tuple[int, ...]) -> bool:
    """Rank-3 observations are images (H, W, C): a conv torso reads them unflattened."""
    return len(shape) == IMAGE_RANK


def flatten_obs(obs: jax.Array) -> jax.Array:
    """Reshape one observation to 1-D float32 so every env feeds an MLP."""
    return jnp.reshape(jnp.asarray(obs), (-1,)).astype(jnp.float32)


def prepare_obs(obs: jax.Array, keep_images: bool = True) -> jax.Array:
    """One observation as float32: images keep their (H, W, C) shape when
    `keep_images`, everything else becomes a vector."""
    obs = jnp.asarray(obs)
    if keep_images and is_image(obs.shape):
        return obs.astype(jnp.float32)
    return flatten_obs(obs)


class FlattenObservation(Wrapper):
    """Observations (and ``info["final_observation"]``) become float32 vectors,
    except images.

    Scalar (FrozenLake), vector and 2-D (Catch, DeepSea) observations reach the
    policy as flat vectors. Rank-3 (H, W, C) images (MinAtar, Pong-misc) keep
    their shape, so a convolutional torso sees the pixel neighbourhoods; the
    MLP torso flattens them itself (`jppo.core.networks`), so either torso
    works on the same env. ``keep_images=False`` flattens images too.
    """

    def __init__(self, env: Any, keep_images: bool = True):
        super().__init__(env)
        self.keep_images = keep_images

    def observation_space(self, params: Any = None) -> spaces.Box:
        space = self._env.observation_space(self._params(params))
        if isinstance(space, spaces.Discrete):
            # A discrete observation is an index in [0, n); flattened it is a
            # length-1 vector with the same range.
            return spaces.Box(0.0, float(space.n - 1), (1,), jnp.float32)
        shape = tuple(space.shape)
        kept = shape if self.keep_images and is_image(shape) else (math.prod(shape),)
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), shape)
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), shape)
        return spaces.Box(jnp.reshape(low, kept), jnp.reshape(high, kept), kept, jnp.float32)

    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        obs, state = self._env.reset(key, params)
        return prepare_obs(obs, self.keep_images), state

    def step(
        self, key: jax.Array, state: Any, action: Any, params: Any = None
    ) -> StepResult:
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, action, params
        )
        if "final_observation" in info:
            final = prepare_obs(info["final_observation"], self.keep_images)
            info = {**info, "final_observation": final}
        return prepare_obs(obs, self.keep_images), state, reward, terminated, truncated, info


class ClipAction(Wrapper):
    """Clips continuous actions to the Box bounds.

    A Gaussian policy samples unbounded actions; clipping at the env keeps the
    dynamics valid while the stored (unclipped) action keeps log-probs exact.
    """

    def step(
        self, key: jax.Array, state: Any, action: Any, params: Any = None
    ) -> StepResult:
        space = self._env.action_space(self._params(params))
        action = jnp.clip(action, space.low, space.high)
        return self._env.step(key, state, action, params)


def check_reward_scale(reward_scale: float) -> float:
    """Validate a reward multiplier; zero or negative scales make no sense."""
    scale = float(reward_scale)
    if not math.isfinite(scale) or scale <= 0.0:
        raise ValueError(
            f"reward_scale must be a positive finite number, got {reward_scale!r}"
        )
    return scale


class RewardScale(Wrapper):
    """Multiplies every reward by a constant.

    A stress-test variant: scaling rewards by e.g. 1000 reproduces the failure
    modes of environments with large return scales (exploding value loss,
    badly conditioned advantages) on otherwise easy tasks.
    """

    def __init__(self, env: Any, reward_scale: float):
        super().__init__(env)
        self.reward_scale = check_reward_scale(reward_scale)

    def step(
        self, key: jax.Array, state: Any, action: Any, params: Any = None
    ) -> StepResult:
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, action, params
        )
        reward = jnp.asarray(reward, jnp.float32) * jnp.float32(self.reward_scale)
        return obs, state, reward, terminated, truncated, info


@struct.dataclass
class EpisodeStatsState:
    """Env state plus running and finished-episode statistics.

    The accumulators only ever grow (until ``reset_episode_totals``), so a
    trainer gets the mean return of episodes finished during an update from
    three scalars per env instead of per-step logs.
    """

    env_state: Any
    episode_return: jax.Array  # float32, current (unfinished) episode
    episode_length: jax.Array  # int32, current (unfinished) episode
    finished_return_sum: jax.Array  # float32
    finished_length_sum: jax.Array  # float32
    finished_count: jax.Array  # int32


def init_episode_stats(env_state: Any) -> EpisodeStatsState:
    """All-zero statistics around a freshly reset env state."""
    return EpisodeStatsState(
        env_state=env_state,
        episode_return=jnp.zeros((), jnp.float32),
        episode_length=jnp.zeros((), jnp.int32),
        finished_return_sum=jnp.zeros((), jnp.float32),
        finished_length_sum=jnp.zeros((), jnp.float32),
        finished_count=jnp.zeros((), jnp.int32),
    )


def update_episode_stats(
    stats: EpisodeStatsState,
    env_state: Any,
    reward: jax.Array,
    done: jax.Array,
) -> EpisodeStatsState:
    """Fold one transition into the statistics; ``done`` closes the episode."""
    done = jnp.asarray(done, jnp.bool_)
    episode_return = stats.episode_return + jnp.asarray(reward, jnp.float32)
    episode_length = stats.episode_length + 1
    return EpisodeStatsState(
        env_state=env_state,
        episode_return=jnp.where(done, 0.0, episode_return).astype(jnp.float32),
        episode_length=jnp.where(done, 0, episode_length).astype(jnp.int32),
        finished_return_sum=stats.finished_return_sum
        + jnp.where(done, episode_return, 0.0).astype(jnp.float32),
        finished_length_sum=stats.finished_length_sum
        + jnp.where(done, episode_length, 0).astype(jnp.float32),
        finished_count=stats.finished_count + done.astype(jnp.int32),
    )


def episode_totals(
    state: EpisodeStatsState,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(return_sum, length_sum, count)`` of finished episodes.

    Sums over any leading batch axes, so it accepts a state vmapped over envs.
    Mean return is ``return_sum / max(count, 1)``.
    """
    return (
        jnp.sum(state.finished_return_sum),
        jnp.sum(state.finished_length_sum),
        jnp.sum(state.finished_count),
    )


def reset_episode_totals(state: EpisodeStatsState) -> EpisodeStatsState:
    """Zero the finished-episode accumulators; the running episode continues."""
    return state.replace(
        finished_return_sum=jnp.zeros_like(state.finished_return_sum),
        finished_length_sum=jnp.zeros_like(state.finished_length_sum),
        finished_count=jnp.zeros_like(state.finished_count),
    )


class EpisodeStatistics(Wrapper):
    """Tracks returns and lengths of episodes ended by termination or truncation.

    Rewards are counted as this wrapper sees them, i.e. after any inner
    ``RewardScale``. Rewards are returned as float32 (some gymnax envs emit
    int32) so downstream buffers have one dtype.
    """

    def reset(
        self, key: jax.Array, params: Any = None
    ) -> tuple[jax.Array, EpisodeStatsState]:
        obs, env_state = self._env.reset(key, params)
        return obs, init_episode_stats(env_state)

    def step(
        self,
        key: jax.Array,
        state: EpisodeStatsState,
        action: Any,
        params: Any = None,
    ) -> StepResult:
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        reward = jnp.asarray(reward, jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        state = update_episode_stats(state, env_state, reward, done)
        return obs, state, reward, terminated, truncated, info
