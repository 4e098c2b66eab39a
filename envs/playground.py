"""MuJoCo Playground environments behind the gymnax step contract.

``playground/<EnvName>`` (e.g. ``playground/CartpoleBalance``,
``playground/CheetahRun``) names an env of MuJoCo Playground's DM Control Suite
(PyPI ``playground==0.2.0``; the package on the index at 1.0 is a different,
PyTorch project). Its envs have Brax's ``reset(key)``/``step(state, action)``
interface, so ``envs.brax.BraxEnv`` drives them: the same auto-reset from the
step's key, ``terminated`` from the env's ``done`` (a NaN in the physics state
for most tasks), ``truncated`` at ``max_steps_in_episode`` (default: the env's own
``episode_length``, 1000) and the observation before the reset in
``info["final_observation"]``.

Physics runs on MJX's JAX implementation (``impl="jax"``). Playground 0.2.0
defaults to its Warp implementation, which needs an NVIDIA GPU and runs outside
XLA, so it cannot sit inside jppo's seed-vmapped program.

Only the DM Control Suite ships its models inside the wheel. Playground's
locomotion and manipulation envs clone ``mujoco_menagerie`` from GitHub when they
are loaded, which an offline machine or CI cannot do; their names are refused in
one line that says so. Vision variants (pixels) are not offered either: jppo's
Playground family takes flat state observations.

Playground is an optional dependency: this module imports it only when a
Playground env is built or listed, and says how to install it when it is missing.
"""

from __future__ import annotations

import contextlib
import difflib
import io
from typing import Any

from flax import struct

from .brax import BraxEnv
from .params import apply_param_overrides

PREFIX = "playground/"
INSTALL_HINT = "pip install 'jppo[playground]'"
IMPL = "jax"  # MJX's XLA implementation: vmaps, runs on CPU and GPU


def is_playground_name(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def _playground() -> Any:
    """``mujoco_playground``, or a one-line ImportError naming the extra to install."""
    try:
        # Importing mujoco.mjx may print notes about its optional Warp backend;
        # jppo never uses that backend, so they would only mislead.
        with contextlib.redirect_stdout(io.StringIO()):
            import mujoco_playground
    except ImportError as err:
        raise ImportError(
            f"MuJoCo Playground environments need the playground extra, which is not "
            f"installed ({err}): {INSTALL_HINT}"
        ) from None
    return mujoco_playground


def _suites() -> tuple[list[str], list[str]]:
    """(the DM Control Suite ids, whose models ship in the wheel; the locomotion and
    manipulation ids, which download mujoco_menagerie when loaded)."""
    playground = _playground()
    downloading = [*playground.locomotion.ALL_ENVS, *playground.manipulation.ALL_ENVS]
    return sorted(playground.dm_control_suite.ALL_ENVS), sorted(downloading)


def list_playground_envs() -> list[str]:
    """Sorted ``playground/<EnvName>`` ids jppo can build; empty without Playground."""
    try:
        known, _ = _suites()
    except ImportError:
        return []
    return [PREFIX + env_id for env_id in known]


def check_playground_name(name: str) -> str:
    """The Playground id of ``playground/<id>``; a one-line error listing the valid ones."""
    known, downloading = _suites()  # ImportError naming the extra without Playground
    env_id = name.removeprefix(PREFIX)
    valid = f"Valid: {', '.join(PREFIX + k for k in known)}"
    if env_id in downloading:
        raise ValueError(
            f"{name} loads its robot from mujoco_menagerie, which Playground clones from "
            f"GitHub when the env is built; jppo takes only the Playground envs whose "
            f"models ship in the wheel (the DM Control Suite), so that runs work offline "
            f"and in CI. {valid}"
        )
    if env_id not in known:
        close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(repr(PREFIX + c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown MuJoCo Playground environment {name!r}.{hint} {valid}")
    return env_id


@struct.dataclass
class PlaygroundParams:
    """Episode limit (traced, so it can differ per run without a recompile)."""

    max_steps_in_episode: int = 1000


class PlaygroundEnv(BraxEnv):
    """A Playground MJX env (``impl="jax"``) with gymnax's signatures and spaces;
    the stepping, auto-reset and truncation are ``BraxEnv``'s, unchanged."""

    def __init__(self, raw_env: Any, name: str, max_steps_in_episode: int = 1000):
        super().__init__(raw_env, name, backend=IMPL)
        self._default_steps = max_steps_in_episode

    def __repr__(self) -> str:
        return f"PlaygroundEnv({self.name!r}, impl={IMPL!r})"

    @property
    def default_params(self) -> PlaygroundParams:
        return PlaygroundParams(max_steps_in_episode=self._default_steps)

    def _check_backend(self, params: PlaygroundParams | None) -> PlaygroundParams:
        """No backend to check: the implementation is fixed when the env is built."""
        return self.default_params if params is None else params


def playground_config(env_id: str) -> Any:
    """Playground's default config of ``env_id`` on MJX's JAX implementation
    (not its Warp default)."""
    config = _playground().registry.get_default_config(env_id)
    config.impl = IMPL
    return config


def build(name: str, overrides: dict[str, Any]) -> tuple[PlaygroundEnv, PlaygroundParams]:
    """The bare adapter for ``playground/<EnvName>`` and its params; ``envs.make``
    wraps it like any other env. The episode limit defaults to the env's own."""
    env_id = check_playground_name(name)
    config = playground_config(env_id)
    raw_env = _playground().registry.load(env_id, config=config)
    defaults = PlaygroundParams(max_steps_in_episode=int(config.episode_length))
    params = apply_param_overrides(defaults, overrides)
    return PlaygroundEnv(raw_env, name, defaults.max_steps_in_episode), params
