"""Variant families as registries of small pure strategies.

Every static variant knob (`value_target`, `value_loss`, `value_clip_mode`,
`advantage_norm`, `lr_schedule`, `ent_schedule`, `grad_clip`, `policy_loss`) names a member of
one registry; `of(config)` resolves them all, and the train step, the optimizer,
the config's combination checks and the diagnosis ask the resolved strategies
instead of comparing names. A variant registered here, from any module, is a
valid value of its knob everywhere: Python, TOML experiment files (`imports`),
`--set` and `jppo config`.

    @jppo.register_value_loss("log_cosh")
    def log_cosh(v):
        return jnp.mean(jnp.logaddexp(v.pred - v.target, v.target - v.pred) - jnp.log(2.0))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from jppo.core.strategies.advantages import ADVANTAGE_NORMS, AdvantageNorm
from jppo.core.strategies.clipping import GRAD_CLIPS, GradClip
from jppo.core.strategies.contracts import StrategyError, checked
from jppo.core.strategies.policy import POLICY_LOSSES, PolicyLoss, PolicyLossInputs
from jppo.core.strategies.registry import Registry
from jppo.core.strategies.schedules import ENT_SCHEDULES, LR_SCHEDULES, Schedule
from jppo.core.strategies.value import (
    HISTOGRAM,
    QUANTILES,
    SCALAR,
    VALUE_CLIP_MODES,
    VALUE_LOSSES,
    VALUE_TARGETS,
    ValueClipMode,
    ValueHead,
    ValueLoss,
    ValueLossInputs,
    ValueTarget,
    hl_gauss_support,
)

__all__ = [
    "ADVANTAGE_NORMS", "ENT_SCHEDULES", "GRAD_CLIPS", "HISTOGRAM", "LR_SCHEDULES",
    "QUANTILES", "REGISTRIES", "SCALAR", "StrategyError", "VALUE_CLIP_MODES", "VALUE_LOSSES",
    "VALUE_TARGETS",
    "AdvantageNorm", "GradClip", "Registry", "Schedule", "Strategies", "ValueClipMode",
    "ValueHead", "ValueLoss", "ValueLossInputs", "ValueTarget", "hl_gauss_support", "of",
    "register_advantage_norm", "register_value_loss", "register_value_target",
    "POLICY_LOSSES", "PolicyLoss", "PolicyLossInputs", "register_policy_loss",
]

# config field -> its registry
REGISTRIES: dict[str, Registry[Any]] = {
    r.field: r for r in (VALUE_TARGETS, VALUE_LOSSES, VALUE_CLIP_MODES, ADVANTAGE_NORMS,
                         LR_SCHEDULES, ENT_SCHEDULES, GRAD_CLIPS, POLICY_LOSSES)
}


# the names jppo itself registers: any other member is a user's own strategy
BUILTIN_NAMES: dict[str, frozenset[str]] = {field: frozenset(r.names())
                                            for field, r in REGISTRIES.items()}
# per loss term, the strategy knobs whose functions compute it (user code can make it NaN)
TERM_STRATEGIES: dict[str, tuple[str, ...]] = {
    "policy_loss": ("advantage_norm", "policy_loss"),
    "entropy": (),
    "value_loss": ("value_loss", "value_target", "value_clip_mode"),
}


def user_strategies(config: Any, term: str) -> list[str]:
    """'value_loss='my_loss'' for each user-registered strategy `config` names that
    computes the loss term `term`."""
    return [f"{field}={getattr(config, field)!r}" for field in TERM_STRATEGIES[term]
            if getattr(config, field) not in BUILTIN_NAMES[field]]


class Strategies(NamedTuple):
    """The strategies a config names, resolved once per program."""

    value_target: ValueTarget
    value_loss: ValueLoss
    value_clip_mode: ValueClipMode
    advantage_norm: AdvantageNorm
    lr_schedule: Schedule
    ent_schedule: Schedule
    grad_clip: GradClip
    policy_loss: PolicyLoss


def of(config: Any) -> Strategies:
    """Resolve every variant knob of `config` (a PPOConfig) to its strategy."""
    return Strategies(*(REGISTRIES[field].get(getattr(config, field))
                        for field in Strategies._fields))


T = TypeVar("T")


def _registrar(registry: Registry[T], cls: type[T], main: str) -> Callable[..., Any]:
    """`register(name, strategy)`, `register(name, fn, **facts)` or `register(name,
    **fields)`; without `main` among them, a decorator of the `main` function."""

    def add(name: str, strategy: T, replace: bool) -> T:
        return registry.register(name, checked(registry.field, name, strategy), replace=replace)

    def build(name: str, **fields: Any) -> T:
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            allowed = ", ".join(f.name for f in dataclasses.fields(cls))
            raise StrategyError(f"{registry.field} {name!r}: {unknown[0]}= is invalid: allowed "
                                f"are the {cls.__name__} fields {allowed}")
        return cls(**fields)

    def register(name: str, strategy: T | Callable[..., Any] | None = None, *,
                 replace: bool = False, **fields: Any) -> Any:
        if isinstance(strategy, cls):
            if fields:
                strategy = dataclasses.replace(strategy, **fields)
            return add(name, strategy, replace)
        if strategy is not None:
            return add(name, build(name, **{main: strategy}, **fields), replace)
        if main not in fields:
            def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
                add(name, build(name, **{main: fn}, **fields), replace)
                return fn
            return decorator
        return add(name, build(name, **fields), replace)

    register.__doc__ = (f"Register a `{cls.__name__}` as {registry.field}=NAME: pass one, its "
                        f"`{main}` function and other fields, or use as a decorator of `{main}`.")
    return register


register_value_loss = _registrar(VALUE_LOSSES, ValueLoss, "loss")
register_value_target = _registrar(VALUE_TARGETS, ValueTarget, "encode")
register_advantage_norm = _registrar(ADVANTAGE_NORMS, AdvantageNorm, "minibatch")
register_policy_loss = _registrar(POLICY_LOSSES, PolicyLoss, "loss")
