"""Building wrapped gymnax environments by name (``brax/<env>``: Brax's, see envs.brax)."""

import dataclasses
import difflib
from typing import Any

import gymnax
from gymnax.environments import spaces

from envs import brax as brax_family
from envs.wrappers import (
    ClipAction,
    EpisodeStatistics,
    FlattenObservation,
    RewardScale,
    check_reward_scale,
)


def list_envs(include_brax: bool = False) -> list[str]:
    """Sorted ids of every registered gymnax environment; with ``include_brax``,
    then the ``brax/<env>`` ids when brax is installed."""
    names = sorted(gymnax.registered_envs)
    return names + brax_family.list_brax_envs() if include_brax else names


def check_env_name(name: str) -> None:
    """Raise the one-line error ``make`` gives for a name it cannot build."""
    if brax_family.is_brax_name(name):
        brax_family.check_brax_name(name)
    elif name not in list_envs():
        raise ValueError(_unknown_env_message(name, list_envs()))


def _unknown_env_message(name: str, known: list[str]) -> str:
    # Match case-insensitively: "cartpole-v1" should still point at "CartPole-v1".
    by_lower = {env_id.lower(): env_id for env_id in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    hint = (
        f" Did you mean: {', '.join(repr(by_lower[c]) for c in close)}?"
        if close
        else ""
    )
    return f"Unknown environment {name!r}.{hint} envs.list_envs() lists all."


def apply_param_overrides(params: Any, overrides: dict[str, Any]) -> Any:
    """``params.replace(**overrides)``, rejecting fields the params do not have.

    ``replace`` on a flax dataclass raises an opaque TypeError for a typo;
    naming the field and the valid ones saves a debugging round trip.
    """
    valid = sorted(field.name for field in dataclasses.fields(params))
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown env param field(s) {', '.join(map(repr, unknown))} for "
            f"{type(params).__qualname__}; valid fields: {', '.join(valid)}"
        )
    return params.replace(**overrides) if overrides else params


def make(
    name: str, *, reward_scale: float | None = None, **param_overrides: Any
) -> tuple[EpisodeStatistics, Any]:
    """Build a wrapped gymnax env and its (possibly overridden) params.

    Wrapping, innermost first: FlattenObservation, ClipAction (Box action
    spaces only), RewardScale (if ``reward_scale`` is given), EpisodeStatistics.
    ``brax/<env>`` names build a Brax env (``envs.brax.make_brax``).
    """
    if brax_family.is_brax_name(name):
        return brax_family.make_brax(name, reward_scale=reward_scale, **param_overrides)
    known = list_envs()
    if name not in known:
        raise ValueError(_unknown_env_message(name, known))
    if reward_scale is not None:
        reward_scale = check_reward_scale(reward_scale)

    try:
        env, params = gymnax.make(name)
    except OSError as err:
        # e.g. MNISTBandit-bsuite downloads MNIST on construction.
        raise RuntimeError(
            f"Could not build {name!r}: it needs data that gymnax downloads on "
            f"first use, and that failed ({err})."
        ) from err
    params = apply_param_overrides(params, param_overrides)

    env = FlattenObservation(env)
    if isinstance(env.action_space(params), spaces.Box):
        env = ClipAction(env)
    if reward_scale is not None:
        env = RewardScale(env, reward_scale)
    return EpisodeStatistics(env), params
