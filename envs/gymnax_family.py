"""The gymnax family of environment names: the ids gymnax registers.

Apart from the registry so the families built on a gymnax task (the masked,
partially observable variants) check and build their base task without
importing the registry back.
"""

from __future__ import annotations

import difflib
from typing import Any

import gymnax

from . import imported
from .params import apply_param_overrides


def list_gymnax_envs() -> list[str]:
    """Sorted ids of every registered gymnax environment."""
    return sorted(gymnax.registered_envs)


def unknown_env_message(name: str, known: list[str]) -> str:
    # Match case-insensitively: "cartpole-v1" should still point at "CartPole-v1".
    by_lower = {env_id.lower(): env_id for env_id in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    hint = (
        f" (did you mean {', '.join(repr(by_lower[c]) for c in close)}?)" if close else ""
    )
    return (f"unknown environment {name!r}{hint}; allowed is a gymnax id (envs.list_envs() "
            f"lists all) or {imported.FORM}")


def check(name: str) -> None:
    known = list_gymnax_envs()
    if name not in known:
        raise ValueError(unknown_env_message(name, known))


def build(name: str, overrides: dict[str, Any]) -> tuple[Any, Any]:
    try:
        env, params = gymnax.make(name)
    except OSError as err:
        # e.g. MNISTBandit-bsuite downloads MNIST on construction.
        raise RuntimeError(
            f"Could not build {name!r}: it needs data that gymnax downloads on "
            f"first use, and that failed ({err})."
        ) from err
    return env, apply_param_overrides(params, overrides)
