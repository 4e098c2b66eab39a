"""Environments wrapped for PPO: float32 observations (flat vectors, or (H, W, C)
images), clipped continuous actions, optional reward scaling and cheap episode
statistics. Gymnax ids, Brax's envs as ``brax/<env>`` (the brax extra), MuJoCo
Playground's DM Control Suite as ``playground/<EnvName>`` (the playground extra), import
paths ``package.module:factory``, partially observable variants with observation
entries hidden (``CartPole-NoVelocity-v1``, ``envs.masked``) and any object with
the gymnax Environment API (``wrap``) are accepted; ``MultiDiscrete`` action
spaces for user environments.

The package is installed, and importable, only as ``jppo.envs``: one module, one
name (a top-level ``envs`` would shadow, or be shadowed by, any other ``envs``)."""

if __name__ != "jppo.envs":
    raise ImportError(f"this package is jppo's environments, imported as {__name__!r}: "
                      "use `from jppo import envs`")

from .api import check_env_api, is_wrapped, object_name, wrap
from .brax import is_brax_name, list_brax_envs
from .masked import MASKED, ObservationMask, list_masked_envs
from .no_reset import NoAutoReset, without_auto_reset
from .params import apply_param_overrides
from .playground import is_playground_name, list_playground_envs
from .registry import (
    EnvFamily,
    check_env_name,
    family,
    list_envs,
    make,
    resolve,
)
from .spaces import MultiDiscrete
from .spec import EnvSpec, env_spec
from .wrappers import (
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
    "EnvFamily",
    "EnvSpec",
    "EpisodeStatistics",
    "EpisodeStatsState",
    "FlattenObservation",
    "MASKED",
    "MultiDiscrete",
    "NoAutoReset",
    "ObservationMask",
    "RewardScale",
    "Wrapper",
    "apply_param_overrides",
    "check_env_api",
    "check_env_name",
    "env_spec",
    "episode_totals",
    "family",
    "is_brax_name",
    "is_playground_name",
    "is_wrapped",
    "list_brax_envs",
    "list_envs",
    "list_masked_envs",
    "list_playground_envs",
    "make",
    "object_name",
    "reset_episode_totals",
    "resolve",
    "without_auto_reset",
    "wrap",
]
