"""Gymnax environments (and, with the brax extra, Brax's as ``brax/<env>``)
wrapped for PPO: flat float32 observations, clipped continuous actions,
optional reward scaling and cheap episode statistics."""

from envs.brax import is_brax_name, list_brax_envs
from envs.registry import apply_param_overrides, check_env_name, list_envs, make
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
    "RewardScale",
    "Wrapper",
    "apply_param_overrides",
    "check_env_name",
    "env_spec",
    "episode_totals",
    "is_brax_name",
    "list_brax_envs",
    "list_envs",
    "make",
    "reset_episode_totals",
]
