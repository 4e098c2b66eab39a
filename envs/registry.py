"""Environment names, resolved in one place.

A name is an import path ``package.module:factory`` if it contains ``':'``
(see ``envs.imported``), a Brax env if it starts with ``brax/`` (see
``envs.brax``), a partially observable variant such as ``CartPole-NoVelocity-v1``
(see ``envs.masked``), else a gymnax id (``envs.list_envs()``). ``family`` is the
whole dispatch: a new family of names is one more branch there.
"""

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnax

from . import brax as brax_family
from . import imported, masked
from .api import wrap
from .params import checked_overrides
from .wrappers import EpisodeStatistics


class EnvFamily(NamedTuple):
    """How one family of environment names is checked and built."""

    check: Callable[[str], None]  # a one-line ValueError if the name cannot resolve
    build: Callable[[str, dict[str, Any]], tuple[Any, Any]]  # (bare env, params)


def list_envs(include_brax: bool = False) -> list[str]:
    """Sorted ids of every registered gymnax environment; with ``include_brax``,
    then the ``brax/<env>`` ids when brax is installed."""
    names = sorted(gymnax.registered_envs)
    return names + brax_family.list_brax_envs() if include_brax else names


def _unknown_env_message(name: str, known: list[str]) -> str:
    # Match case-insensitively: "cartpole-v1" should still point at "CartPole-v1".
    by_lower = {env_id.lower(): env_id for env_id in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    hint = (
        f" (did you mean {', '.join(repr(by_lower[c]) for c in close)}?)" if close else ""
    )
    return (f"unknown environment {name!r}{hint}; allowed is a gymnax id (envs.list_envs() "
            f"lists all) or {imported.FORM}")


def _check_gymnax(name: str) -> None:
    known = list_envs()
    if name not in known:
        raise ValueError(_unknown_env_message(name, known))


def _build_gymnax(name: str, overrides: dict[str, Any]) -> tuple[Any, Any]:
    try:
        env, params = gymnax.make(name)
    except OSError as err:
        # e.g. MNISTBandit-bsuite downloads MNIST on construction.
        raise RuntimeError(
            f"Could not build {name!r}: it needs data that gymnax downloads on "
            f"first use, and that failed ({err})."
        ) from err
    return env, apply_param_overrides(params, overrides)


def family(name: str) -> EnvFamily:
    """The family a name belongs to: the only place names are dispatched."""
    if ":" in name:
        return EnvFamily(imported.check, imported.build)
    if brax_family.is_brax_name(name):
        return EnvFamily(brax_family.check_brax_name, brax_family.build)
    if masked.is_masked_name(name):
        return EnvFamily(masked.check, masked.build)
    return EnvFamily(_check_gymnax, _build_gymnax)


def check_env_name(name: Any) -> None:
    """Raise a one-line ValueError unless ``name`` resolves to an environment.
    Cheap: an import path's module is imported but nothing is built."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"environment name {name!r} is invalid: allowed is a gymnax id "
                         f"or {imported.FORM}")
    family(name).check(name)


def resolve(name: str, **overrides: Any) -> tuple[Any, Any]:
    """The bare (unwrapped) env ``name`` denotes and its params, overridden."""
    check_env_name(name)
    return family(name).build(name, dict(overrides))


def apply_param_overrides(params: Any, overrides: dict[str, Any], *,
                          check_values: bool = True) -> Any:
    """``params.replace(**overrides)``, rejecting fields the params do not have
    and (``check_values``) values of the wrong type or range (``envs.params``);
    a family whose params have a validator of their own (Brax) passes False.

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
    if not overrides:
        return params
    return params.replace(**(checked_overrides(params, overrides) if check_values else overrides))


def make(
    name: str, *, reward_scale: float | None = None, **param_overrides: Any
) -> tuple[EpisodeStatistics, Any]:
    """Build the env ``name`` denotes, wrapped for training (``envs.wrap``), and
    its params with ``param_overrides`` applied (for an import path they may
    also be factory arguments, see ``envs.imported``)."""
    env, params = resolve(name, **param_overrides)
    return wrap(env, params, reward_scale=reward_scale, name=name)
