"""Gymnax environments wrapped for PPO: float32 observations (flat vectors, or
(H, W, C) images), clipped continuous actions, optional reward scaling and cheap
episode statistics; `MultiDiscrete` action spaces for user environments."""

from envs.registry import apply_param_overrides, list_envs, make
from envs.spaces import MultiDiscrete
from envs.spec import EnvSpec, env_spec
from envs.wrappers import (
    ClipAction,
    EpisodeStatistics,
    EpisodeStatsState,
    FlattenObservation,
    RewardScale,
    Wrapper,
    episode_totals,
    reset_episode_totals,
)

__all__ = [
    "ClipAction",
    "EnvSpec",
    "EpisodeStatistics",
    "EpisodeStatsState",
    "FlattenObservation",
    "MultiDiscrete",
    "RewardScale",
    "Wrapper",
    "apply_param_overrides",
    "env_spec",
    "episode_totals",
    "list_envs",
    "make",
    "reset_episode_totals",
]
