"""Brax continuous-control environments behind the gymnax step contract.

``brax/<env>`` (e.g. ``brax/inverted_pendulum``, ``brax/ant``) names a raw
``brax.envs`` environment. Brax's own ``EpisodeWrapper``/``AutoResetWrapper``
report a time limit in ``state.info["truncation"]``, reset to one cached first
state and hide the last observation of an episode; PPO needs none of that. This
adapter drives the raw env itself so that, like a gymnax env, ``step`` returns
``(obs, state, reward, terminated, truncated, info)``:

* ``terminated``: brax's ``done`` (the task failed, no bootstrap),
* ``truncated``: the step count reached ``max_steps_in_episode`` (bootstrap),
* ``info["final_observation"]``: the observation the step produced, before the
  auto-reset replaced it with a fresh episode's first observation, drawn from
  the step's key exactly as gymnax does.

Brax is an optional dependency: this module imports it only when a brax env is
built or listed, and says how to install it when it is missing.
"""

from __future__ import annotations

import contextlib
import difflib
import io
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from .params import apply_param_overrides

PREFIX = "brax/"
INSTALL_HINT = "pip install 'jppo[brax]'"
# Physics pipelines of brax's PipelineEnv: "generalized" (MuJoCo-like
# generalized coordinates, brax's default), the cheaper "positional" and
# "spring", and "mjx" (MuJoCo XLA, needs mujoco-mjx).
BACKENDS = ("generalized", "positional", "spring", "mjx")


def is_brax_name(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def _brax_envs() -> Any:
    """``brax.envs``, or a one-line ImportError naming the extra to install."""
    try:
        # mujoco.mjx prints a note when its optional GPU backend (warp) is absent;
        # jppo never uses that backend, so the note would only mislead.
        with contextlib.redirect_stdout(io.StringIO()):
            import brax.envs
    except ImportError as err:
        raise ImportError(
            f"Brax environments need the brax extra, which is not installed ({err}): "
            f"{INSTALL_HINT}"
        ) from None
    return brax.envs


def list_brax_envs() -> list[str]:
    """Sorted ``brax/<env>`` ids of brax's registry; empty without brax installed."""
    try:
        registry = _brax_envs()._envs
    except ImportError:
        return []
    return sorted(PREFIX + env_id for env_id in registry)


def check_brax_name(name: str) -> str:
    """The brax registry id of ``brax/<id>``; a one-line error listing the valid ones."""
    known = sorted(_brax_envs()._envs)  # ImportError naming the extra without brax
    env_id = name.removeprefix(PREFIX)
    if env_id not in known:
        close = difflib.get_close_matches(env_id.lower(), known, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(repr(PREFIX + c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown brax environment {name!r}.{hint} "
            f"Valid: {', '.join(PREFIX + k for k in known)}"
        )
    return env_id


@struct.dataclass
class BraxParams:
    """Episode limit (traced, so it can differ per run) and physics backend
    (static: it picks the compiled pipeline, so it is fixed when the env is built)."""

    max_steps_in_episode: int = 1000
    backend: str = struct.field(pytree_node=False, default="generalized")


def check_params(params: BraxParams) -> BraxParams:
    """One-line errors for an episode limit or backend brax cannot use."""
    steps = params.max_steps_in_episode
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"max_steps_in_episode must be an integer >= 1, got {steps!r}")
    if params.backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(BACKENDS)}, got {params.backend!r}"
        )
    return params


@struct.dataclass
class BraxEnvState:
    """Brax's own state plus the step count that decides truncation."""

    brax_state: Any  # brax.envs.State: pipeline state, obs, reward, done, metrics, info
    time: jax.Array  # int32, steps taken in the current episode


class BraxEnv:
    """A raw brax-style env with gymnax's ``reset``/``step`` signatures and spaces.

    Any env with brax's interface fits: ``reset(key) -> State``,
    ``step(State, action) -> State`` with ``obs``, ``reward``, ``done``, and
    ``action_size`` (brax's envs, or MuJoCo Playground's MJX envs).
    """

    # The automatic `scan_unroll` on a GPU is capped at this: unrolling copies the
    # physics step (thousands of ops) into the program per unrolled step, and
    # compile time grows with it (experiments/scan_unroll.json).
    max_scan_unroll = 1

    def __init__(self, raw_env: Any, name: str, backend: str = "generalized"):
        self.brax_env = raw_env
        self._name = name
        self.backend = backend
        # Shapes by abstract evaluation: no compile, no physics step.
        reset_shape = jax.eval_shape(raw_env.reset, jax.random.PRNGKey(0))
        self.obs_size = int(reset_shape.obs.shape[-1])
        self.action_size = int(raw_env.action_size)

    def __repr__(self) -> str:
        return f"BraxEnv({self._name!r}, backend={self.backend!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self.action_size

    @property
    def default_params(self) -> BraxParams:
        return BraxParams(backend=self.backend)

    def observation_space(self, params: BraxParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self.obs_size,), jnp.float32)

    def action_space(self, params: BraxParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self.action_size,), jnp.float32)

    def reset(
        self, key: jax.Array, params: BraxParams | None = None
    ) -> tuple[jax.Array, BraxEnvState]:
        self._check_backend(params)
        brax_state = self.brax_env.reset(key)
        return brax_state.obs, BraxEnvState(brax_state, jnp.zeros((), jnp.int32))

    def step(
        self,
        key: jax.Array,
        state: BraxEnvState,
        action: jax.Array,
        params: BraxParams | None = None,
    ) -> tuple[jax.Array, BraxEnvState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One physics step, then gymnax-style auto-reset from the step's key."""
        params = self._check_backend(params)
        stepped = self.brax_env.step(state.brax_state, jnp.asarray(action, jnp.float32))
        time = state.time + 1
        terminated = stepped.done > 0.5
        truncated = time >= params.max_steps_in_episode
        done = jnp.logical_or(terminated, truncated)
        _, reset_key = jax.random.split(key)
        reset_obs, reset_state = self.reset(reset_key, params)
        next_state = jax.tree.map(
            lambda r, s: jax.lax.select(done, r, s), reset_state,
            BraxEnvState(stepped, time),
        )
        obs = jax.lax.select(done, reset_obs, stepped.obs)
        info = {"terminated": terminated, "truncated": truncated,
                "final_observation": stepped.obs}
        reward = jnp.asarray(stepped.reward, jnp.float32)
        return obs, next_state, reward, terminated, truncated, info

    def _check_backend(self, params: BraxParams | None) -> BraxParams:
        params = self.default_params if params is None else params
        if params.backend != self.backend:
            raise ValueError(
                f"backend {params.backend!r} in the params, but {self.name} was built "
                f"with backend {self.backend!r}: rebuild it with envs.make(..., "
                f"backend={params.backend!r})"
            )
        return params


def build(name: str, overrides: dict[str, Any]) -> tuple[BraxEnv, BraxParams]:
    """The bare adapter for ``brax/<env>`` and its params; ``envs.make`` wraps it
    like any other env (FlattenObservation is a no-op on brax's flat vectors)."""
    env_id = check_brax_name(name)
    params = check_params(apply_param_overrides(BraxParams(), overrides, check_values=False))
    raw_env = _brax_envs().get_environment(env_id, backend=params.backend)
    return BraxEnv(raw_env, name, params.backend), params
