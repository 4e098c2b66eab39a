"""Run configuration: what is static (shapes, structure, variant choices) and what
is traced (`HParams`), so that a batch of hyperparameters runs under one compile.

`PPOConfig` is the single object a user edits. `config.hparams()` extracts the
traced part; `jax.vmap` over a batched `HParams` runs a sweep without
recompiling, while changing a `PPOConfig` field changes the program.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

ACTIVATIONS = ("tanh", "relu", "gelu", "silu", "elu", "leaky_relu")
LR_SCHEDULES = ("linear", "cosine", "constant")
VALUE_LOSSES = ("clipped", "mse", "huber", "hl_gauss")
VALUE_CLIP_MODES = ("absolute", "relative")
VALUE_TARGETS = ("raw", "symlog", "popart", "batch_standardize")
ADVANTAGE_NORMS = ("minibatch", "batch", "off", "robust")
GRAD_CLIPS = ("global", "per_head")
ENT_SCHEDULES = ("constant", "linear", "cosine")
INT_FIELDS = ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches",
              "hl_gauss_bins", "value_pretrain_updates")
POSITIVE_INT_FIELDS = INT_FIELDS[:5]


@struct.dataclass
class HParams:
    """Continuous hyperparameters, traced inside the jitted program.

    Every leaf is a float32 scalar (or a `(n,)` array after `jppo.sweep` /
    stacking), so `jax.vmap(train)(keys, hparams)` sweeps over them.
    """

    policy_lr: jax.Array
    value_lr: jax.Array
    torso_lr: jax.Array
    adam_eps: jax.Array
    max_grad_norm: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    critic_lambda: jax.Array
    clip_eps: jax.Array
    value_clip_eps: jax.Array
    ent_coef: jax.Array
    vf_coef: jax.Array
    policy_output_gain: jax.Array
    value_output_gain: jax.Array
    log_std_init: jax.Array
    huber_delta: jax.Array
    adv_std_threshold: jax.Array
    target_kl: jax.Array
    ent_coef_final: jax.Array
    obs_clip: jax.Array
    reward_clip: jax.Array
    popart_step: jax.Array
    hl_gauss_sigma: jax.Array


HPARAM_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(HParams))

# (lower, upper, lower_inclusive, upper_inclusive) for each traced field.
_POSITIVE = (0.0, math.inf, False, False)
_NON_NEGATIVE = (0.0, math.inf, True, False)
_POSITIVE_OR_INF = (0.0, math.inf, False, True)  # inf switches a clip off
_UNIT = (0.0, 1.0, True, True)
_HPARAM_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "policy_lr": _POSITIVE,
    "value_lr": _POSITIVE,
    "torso_lr": _POSITIVE,
    "adam_eps": _POSITIVE,
    "max_grad_norm": _POSITIVE_OR_INF,
    "gamma": (0.0, 1.0, False, True),
    "gae_lambda": _UNIT,
    "critic_lambda": _UNIT,
    "clip_eps": _POSITIVE,
    "value_clip_eps": _POSITIVE_OR_INF,
    "ent_coef": _NON_NEGATIVE,
    "vf_coef": _NON_NEGATIVE,
    "policy_output_gain": _POSITIVE,
    "value_output_gain": _POSITIVE,
    "log_std_init": (-math.inf, math.inf, False, False),
    "huber_delta": _POSITIVE,
    "adv_std_threshold": _NON_NEGATIVE,
    "target_kl": _POSITIVE,
    "ent_coef_final": _NON_NEGATIVE,
    "obs_clip": _POSITIVE_OR_INF,
    "reward_clip": _POSITIVE_OR_INF,
    "popart_step": (0.0, 1.0, False, True),
    "hl_gauss_sigma": _POSITIVE,
}


def _describe_range(lo: float, hi: float, lo_inc: bool, hi_inc: bool) -> str:
    left = ("[" if lo_inc else "(") + f"{lo:g}"
    right = f"{hi:g}" + ("]" if hi_inc else ")")
    return f"a number in {left}, {right}"


def check_value(field: str, value: Any) -> None:
    """Raise a ValueError naming `field` if any entry of `value` is out of range."""
    lo, hi, lo_inc, hi_inc = _HPARAM_RANGES[field]
    allowed = _describe_range(lo, hi, lo_inc, hi_inc)
    if isinstance(value, str | bytes | bool):
        raise ValueError(f"{field}={value!r} is invalid: allowed is {allowed}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{field}={value!r} is invalid: allowed is {allowed}") from None
    ok_lo = array >= lo if lo_inc else array > lo
    ok_hi = array <= hi if hi_inc else array < hi
    bad = ~(ok_lo & ok_hi) | np.isnan(array)
    if np.any(bad):
        shown = float(array[bad].ravel()[0])
        where = f" (entry {int(np.argmax(bad.ravel()))} of a batch)" if array.ndim else ""
        raise ValueError(f"{field}={shown!r}{where} is invalid: allowed is {allowed}")


def validate_hparams(hparams: HParams) -> None:
    """Check concrete hyperparameters on the host; traced ones are skipped.

    Called before compilation by `train` and `sweep`, so a bad learning rate
    fails in milliseconds instead of after a compile.
    """
    for field in HPARAM_FIELDS:
        value = getattr(hparams, field)
        if isinstance(value, jax.core.Tracer):
            continue
        check_value(field, value)


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Everything that defines a PPO run. Defaults are standard PPO
    (CleanRL / PureJaxRL CartPole settings).

    Fields marked *traced* are copied into `HParams` by `hparams()`; the rest
    are static and part of the compiled program.
    """

    # --- rollout and batch shape (static)
    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
    update_epochs: int = 4
    num_minibatches: int = 4
    # --- optimisation (traced except the schedule kind)
    lr: float = 2.5e-4
    policy_lr: float | None = None  # None: use `lr`
    value_lr: float | None = None  # None: use `lr`
    torso_lr: float | None = None  # None: use `lr`
    lr_schedule: str = "linear"  # decays per minibatch step
    adam_eps: float = 1e-5
    max_grad_norm: float = 0.5
    # --- returns and advantages (traced)
    gamma: float = 0.99
    gae_lambda: float = 0.95  # actor advantages
    critic_lambda: float | None = None  # critic targets; None: use gae_lambda
    # --- losses
    clip_eps: float = 0.2
    value_loss: str = "clipped"  # "clipped" (PureJaxRL/CleanRL), "mse", "huber", "hl_gauss"
    value_clip_eps: float | None = None  # None: use clip_eps
    value_clip_mode: str = "absolute"  # "relative": eps x running std of the value targets
    huber_delta: float = 1.0
    ent_coef: float = 0.01
    ent_schedule: str = "constant"  # decays ent_coef -> ent_coef_final over training
    ent_coef_final: float = 0.0
    vf_coef: float = 0.5
    advantage_norm: str = "minibatch"  # "batch", "off", "robust"
    adv_std_threshold: float = 1e-3  # "robust": divide by std only above this
    # --- value target scale
    value_target: str = "raw"  # "symlog", "popart", "batch_standardize"
    popart_step: float = 0.01  # EMA step per update for PopArt's target moments
    obs_norm: bool = False
    obs_clip: float = 10.0
    reward_scaling: bool = False  # divide by running std of the discounted return
    reward_clip: float = 10.0
    hl_gauss_bins: int = 51
    hl_gauss_range: tuple[float, float] = (-10.0, 10.0)  # support, in critic space
    hl_gauss_sigma: float = 0.75  # in bin widths
    # --- optimisation extras
    grad_clip: str = "global"  # "per_head": each group clipped to max_grad_norm
    kl_early_stop: bool = False  # stop the update's epochs once KL > 1.5 target_kl
    target_kl: float = 0.01
    value_pretrain_updates: int = 0  # critic-only updates (lambda = 1) before PPO
    diagnostics: bool = True  # per-head / per-term gradient norms and target stats
    # --- network (static structure, traced init scales)
    activation: str = "tanh"
    torso_hidden: tuple[int, ...] = ()  # shared torso layers; () = separate nets
    policy_hidden: tuple[int, ...] = (64, 64)
    value_hidden: tuple[int, ...] = (64, 64)
    value_activation: str | None = None  # None: use `activation`
    value_layer_norm: bool = False
    policy_output_gain: float = 0.01
    value_output_gain: float = 1.0
    log_std_init: float = 0.0  # Gaussian policies only

    def __post_init__(self) -> None:
        # Accept what TOML / CLI / notebooks naturally produce: lists for layer
        # sizes and integral floats such as 5e5 for counts.
        for name in ("policy_hidden", "value_hidden", "torso_hidden", "hl_gauss_range"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        for name in INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))
        self.validate()

    # ------------------------------------------------------------------ derived
    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def steps_per_update(self) -> int:
        """Optimizer steps in one PPO iteration (the schedule's unit)."""
        return self.update_epochs * self.num_minibatches

    def replace(self, **changes: Any) -> PPOConfig:
        """A copy with `changes`; unknown field names raise a ValueError."""
        check_fields(changes, "PPOConfig")
        return dataclasses.replace(self, **changes)

    def hparams(self) -> HParams:
        """The traced hyperparameters implied by this config (float32 scalars)."""
        values = {
            "policy_lr": _default(self.policy_lr, self.lr),
            "value_lr": _default(self.value_lr, self.lr),
            "torso_lr": _default(self.torso_lr, self.lr),
            "adam_eps": self.adam_eps,
            "max_grad_norm": self.max_grad_norm,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "critic_lambda": _default(self.critic_lambda, self.gae_lambda),
            "clip_eps": self.clip_eps,
            "value_clip_eps": _default(self.value_clip_eps, self.clip_eps),
            "ent_coef": self.ent_coef,
            "vf_coef": self.vf_coef,
            "policy_output_gain": self.policy_output_gain,
            "value_output_gain": self.value_output_gain,
            "log_std_init": self.log_std_init,
            "huber_delta": self.huber_delta,
            "adv_std_threshold": self.adv_std_threshold,
            "target_kl": self.target_kl,
            "ent_coef_final": self.ent_coef_final,
            "obs_clip": self.obs_clip,
            "reward_clip": self.reward_clip,
            "popart_step": self.popart_step,
            "hl_gauss_sigma": self.hl_gauss_sigma,
        }
        return HParams(**{k: jnp.asarray(v, jnp.float32) for k, v in values.items()})

    # --------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise a ValueError naming the first bad field, its value and what is allowed."""
        for name in POSITIVE_INT_FIELDS:
            _require_positive_int(name, getattr(self, name))
        if self.num_minibatches > self.batch_size:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} is invalid: a minibatch would be "
                f"empty; allowed is at most num_envs*num_steps={self.batch_size}"
            )
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} is invalid: the rollout batch "
                f"num_envs*num_steps={self.batch_size} must divide evenly into minibatches"
            )
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is invalid: allowed is at least "
                f"one rollout, num_envs*num_steps={self.batch_size}"
            )
        _require_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _require_choice("value_loss", self.value_loss, VALUE_LOSSES)
        _require_choice("value_clip_mode", self.value_clip_mode, VALUE_CLIP_MODES)
        _require_choice("value_target", self.value_target, VALUE_TARGETS)
        _require_choice("advantage_norm", self.advantage_norm, ADVANTAGE_NORMS)
        _require_choice("grad_clip", self.grad_clip, GRAD_CLIPS)
        _require_choice("ent_schedule", self.ent_schedule, ENT_SCHEDULES)
        if self.value_pretrain_updates != 0:
            _require_positive_int("value_pretrain_updates", self.value_pretrain_updates)
        if self.value_loss == "hl_gauss":
            if not isinstance(self.hl_gauss_bins, int) or self.hl_gauss_bins < 2:
                raise ValueError(f"hl_gauss_bins={self.hl_gauss_bins!r} is invalid: allowed is "
                                 "an integer >= 2")
            support = self.hl_gauss_range
            if not (isinstance(support, tuple) and len(support) == 2
                    and all(isinstance(x, numbers.Real) and math.isfinite(x) for x in support)
                    and support[0] < support[1]):
                raise ValueError(f"hl_gauss_range={support!r} is invalid: allowed is a finite "
                                 "(low, high) pair with low < high")
            if self.value_target == "popart":
                raise ValueError("value_loss='hl_gauss' with value_target='popart' is invalid: "
                                 "PopArt rescales a scalar output layer, HL-Gauss outputs bin "
                                 "logits over a fixed support; use value_target 'raw' or "
                                 "'symlog' with hl_gauss")
        if self.value_target == "batch_standardize" and self.value_loss == "hl_gauss":
            raise ValueError("value_target='batch_standardize' with value_loss='hl_gauss' is "
                             "invalid: the bins need a fixed target scale")
        _require_choice("activation", self.activation, ACTIVATIONS)
        if self.value_activation is not None:
            _require_choice("value_activation", self.value_activation, ACTIVATIONS)
        for name in ("policy_hidden", "value_hidden", "torso_hidden"):
            sizes = getattr(self, name)
            if not isinstance(sizes, tuple) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes
            ):
                raise ValueError(
                    f"{name}={sizes!r} is invalid: allowed is a tuple of positive ints"
                )
        for name in ("value_layer_norm", "obs_norm", "reward_scaling", "kl_early_stop",
                     "diagnostics"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is invalid: allowed is True or False"
                )
        _check_lr(self.lr)
        for field in HPARAM_FIELDS:
            value = getattr(self, field)
            if value is not None:
                check_value(field, value)


def _check_lr(lr: Any) -> None:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < math.inf:
        raise ValueError(f"lr={lr!r} is invalid: allowed is a finite number > 0")


def _default(value: float | None, fallback: float) -> float:
    return fallback if value is None else value


def _require_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid: allowed is an integer >= 1")


def _require_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is invalid: allowed is one of {list(allowed)}")


CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PPOConfig))


def check_fields(changes: Mapping[str, Any], owner: str) -> None:
    """Reject unknown field names with the list of valid ones."""
    unknown = sorted(set(changes) - set(CONFIG_FIELDS))
    if unknown:
        raise ValueError(
            f"{owner} has no field {unknown[0]!r}; valid fields are {list(CONFIG_FIELDS)}"
        )


def make_config(**fields: Any) -> PPOConfig:
    """`PPOConfig(**fields)` with a clear error naming an unknown field."""
    check_fields(fields, "PPOConfig")
    return PPOConfig(**fields)
