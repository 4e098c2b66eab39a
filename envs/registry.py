"""Environment names, resolved in one place.

A name is an import path ``package.module:factory`` if it contains ``':'``
(see ``envs.imported``), a Brax env if it starts with ``brax/`` (see
``envs.brax``), a MuJoCo Playground env if it starts with ``playground/`` (see
``envs.playground``), a partially observable variant such as ``CartPole-NoVelocity-v1``
(see ``envs.masked``), else a gymnax id (``envs.list_envs()``). ``family`` is the
whole dispatch: a new family of names is one more branch there.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

from . import brax as brax_family
from . import gymnax_family, imported, masked
from . import playground as playground_family
from .api import wrap
from .wrappers import EpisodeStatistics


class EnvFamily(NamedTuple):
    """How one family of environment names is checked and built."""

    check: Callable[[str], None]  # a one-line ValueError if the name cannot resolve
    build: Callable[[str, dict[str, Any]], tuple[Any, Any]]  # (bare env, params)


def list_envs(include_brax: bool = False) -> list[str]:
    """Sorted ids of every registered gymnax environment; with ``include_brax``,
    then the ``brax/<env>`` ids when brax is installed and the
    ``playground/<EnvName>`` ids when MuJoCo Playground is."""
    names = gymnax_family.list_gymnax_envs()
    if not include_brax:
        return names
    return names + brax_family.list_brax_envs() + playground_family.list_playground_envs()


def family(name: str) -> EnvFamily:
    """The family a name belongs to: the only place names are dispatched."""
    if ":" in name:
        return EnvFamily(imported.check, imported.build)
    if brax_family.is_brax_name(name):
        return EnvFamily(brax_family.check_brax_name, brax_family.build)
    if playground_family.is_playground_name(name):
        return EnvFamily(playground_family.check_playground_name, playground_family.build)
    if masked.is_masked_name(name):
        return EnvFamily(masked.check, masked.build)
    return EnvFamily(gymnax_family.check, gymnax_family.build)


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


def make(
    name: str, *, reward_scale: float | None = None, **param_overrides: Any
) -> tuple[EpisodeStatistics, Any]:
    """Build the env ``name`` denotes, wrapped for training (``envs.wrap``), and
    its params with ``param_overrides`` applied (for an import path they may
    also be factory arguments, see ``envs.imported``)."""
    env, params = resolve(name, **param_overrides)
    return wrap(env, params, reward_scale=reward_scale, name=name)
