"""Value-function strategies: what the critic predicts (target), how its error is
scored (loss) and in which units the value clip is measured (clip mode).

Each strategy is a frozen record of pure functions plus the facts other code
asks about it (the diagnosis, the config's combination checks, the network's
output width), so no caller compares variant names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jppo.core import losses, quantiles
from jppo.core import normalize as norm
from jppo.core.strategies.registry import Registry

# ----------------------------------------------------------------- value targets


def _identity(x: jax.Array, ns: Any) -> jax.Array:
    return x


def _untracked(params: Any, ns: Any, targets: jax.Array, hparams: Any) -> tuple[Any, Any]:
    return params, ns


def _unit_scale(targets: jax.Array) -> jax.Array:
    return jnp.ones(())


@dataclasses.dataclass(frozen=True)
class ValueTarget:
    """What the critic regresses on, in its own "head space".

    `encode`/`decode(x, norm_state)` map return units to head space and back.
    `track(params, norm_state, targets, hparams)` updates statistics after each
    rollout (and may rewrite the value head, as PopArt does). `loss_scale(targets)`
    divides the scalar value loss. `sigma(norm_state)` is the normalizer scale the
    metrics report, None when the target keeps none. `return_units`: head space is
    return units (a squared error then compares with Var[R]). `fixed_scale`: the
    head-space scale does not move during training (a fixed support needs it).
    `default_support`: the HL-Gauss support used when `hl_gauss_range` is None;
    None where no range fits every task (raw returns), so the user must set one.
    """

    encode: Callable[[jax.Array, Any], jax.Array] = _identity
    decode: Callable[[jax.Array, Any], jax.Array] = _identity
    track: Callable[[Any, Any, jax.Array, Any], tuple[Any, Any]] = _untracked
    loss_scale: Callable[[jax.Array], jax.Array] = _unit_scale
    sigma: Callable[[Any], jax.Array] | None = None
    return_units: bool = False
    fixed_scale: bool = True
    default_support: tuple[float, float] | None = None


def _popart_track(params: Any, ns: Any, targets: jax.Array, hparams: Any) -> tuple[Any, Any]:
    """Move the target moments and rescale the value head so outputs are preserved."""
    popart, value_head = norm.popart_update(
        ns.popart, params["params"]["value_head"], targets, hparams.popart_step)
    return {"params": {**params["params"], "value_head": value_head}}, ns.replace(popart=popart)


VALUE_TARGETS: Registry[ValueTarget] = Registry("value_target")
VALUE_TARGETS.register("raw", ValueTarget(return_units=True))
# symlog(+-10) is +-22025 in return units: wide enough for any task's returns.
VALUE_TARGETS.register("symlog", ValueTarget(
    encode=lambda x, ns: norm.symlog(x), decode=lambda h, ns: norm.symexp(h),
    default_support=(-10.0, 10.0)))
VALUE_TARGETS.register("popart", ValueTarget(
    encode=lambda x, ns: (x - ns.popart.mean) / ns.popart.sigma(),
    decode=lambda h, ns: h * ns.popart.sigma() + ns.popart.mean,
    track=_popart_track, sigma=lambda ns: ns.popart.sigma(), fixed_scale=False))
# Targets and predictions stay raw; only the value loss (and the relative clip)
# is divided by the batch std of the targets, which keeps the critic's gradient
# scale-free without moving what the head predicts. Named for what it does; the
# old name "batch_standardize" promised a mean subtraction it never did.
VALUE_TARGETS.register("batch_scaled", ValueTarget(
    loss_scale=lambda targets: jnp.std(targets) + 1e-8, fixed_scale=False))
VALUE_TARGETS.alias("batch_standardize", "batch_scaled")


# ------------------------------------------------------------------ value heads


@dataclasses.dataclass(frozen=True)
class ValueHead:
    """How many outputs the value head has and how they read as one value.
    `fixed_support`: the outputs are bins over a fixed range of head space."""

    outputs: Callable[[Any], int]  # config -> width of the last layer
    value: Callable[[jax.Array, Any], jax.Array]  # (output, config) -> head-space value
    fixed_support: bool = False


def hl_gauss_support(config: Any) -> tuple[float, float] | None:
    """`hl_gauss_range`, or when it is None the value target's default support
    (None if the target has none: the config's validation then rejects it)."""
    if config.hl_gauss_range is not None:
        return config.hl_gauss_range
    return VALUE_TARGETS.get(config.value_target).default_support


def bin_edges(config: Any) -> jax.Array:
    """The HL-Gauss support: `hl_gauss_bins` equal bins over `hl_gauss_support`."""
    lo, hi = hl_gauss_support(config)
    return jnp.linspace(lo, hi, config.hl_gauss_bins + 1)


def bin_width(config: Any) -> float:
    lo, hi = hl_gauss_support(config)
    return (hi - lo) / config.hl_gauss_bins


SCALAR = ValueHead(outputs=lambda config: 1, value=lambda out, config: out)
HISTOGRAM = ValueHead(outputs=lambda config: config.hl_gauss_bins,
                      value=lambda out, config: losses.hl_gauss_value(out, bin_edges(config)),
                      fixed_support=True)
# `quantile_count` quantiles of the return (their mean is the value); unlike
# bins they need no support, so any value target's scale may move under them.
QUANTILES = ValueHead(outputs=lambda config: config.quantile_count,
                      value=lambda out, config: quantiles.quantile_value(out))


# ------------------------------------------------------------------- value losses


class ValueLossInputs(NamedTuple):
    """What a value loss sees for one minibatch. `pred`, `old` and `target` are in
    head space divided by the target's loss scale; `clip_eps` is in those units."""

    output: jax.Array  # the value head's raw output: (N,), or (N, bins) for a histogram
    pred: jax.Array  # the prediction, V
    old: jax.Array  # the prediction of the rollout's critic, V_old
    target: jax.Array  # the critic target, R
    clip_eps: jax.Array  # the value clip range
    hparams: Any  # HParams
    config: Any  # PPOConfig (static)
    loss_scale: Any = 1.0  # the target's divisor of head space (`output` is not divided)


def _clip_fraction(v: ValueLossInputs) -> jax.Array:
    return losses.value_clip_fraction(v.pred, v.old, v.clip_eps)


@dataclasses.dataclass(frozen=True)
class ValueLoss:
    """A value loss: `loss(inputs) -> scalar` and the facts the rest asks about it.

    `squared_error`: the loss is 0.5 E[(V - R)^2] up to clipping, so in return
    units it is comparable with Var[R] (the exploding-value-loss diagnosis).
    `uses_value_clip`: value_clip_eps and value_clip_mode change the loss.
    `head`: the value head it needs (a scalar, or bin logits).
    `clip_fraction(inputs)`: the `value_clip_fraction` metric.
    """

    loss: Callable[[ValueLossInputs], jax.Array]
    squared_error: bool = False
    uses_value_clip: bool = False
    head: ValueHead = SCALAR
    clip_fraction: Callable[[ValueLossInputs], jax.Array] = _clip_fraction


def _hl_gauss(v: ValueLossInputs) -> jax.Array:
    sigma = v.hparams.hl_gauss_sigma * bin_width(v.config)
    return losses.hl_gauss_loss(v.output, v.target, bin_edges(v.config), sigma)


VALUE_LOSSES: Registry[ValueLoss] = Registry("value_loss")
VALUE_LOSSES.register("clipped", ValueLoss(
    lambda v: losses.clipped_value_loss(v.pred, v.old, v.target, v.clip_eps),
    squared_error=True, uses_value_clip=True))
VALUE_LOSSES.register("mse", ValueLoss(lambda v: losses.mse_value_loss(v.pred, v.target),
                                       squared_error=True))
VALUE_LOSSES.register("huber", ValueLoss(
    lambda v: losses.huber_value_loss(v.pred, v.target, v.hparams.huber_delta)))
VALUE_LOSSES.register("hl_gauss", ValueLoss(_hl_gauss, head=HISTOGRAM,
                                            clip_fraction=lambda v: jnp.zeros(())))


def _quantile(v: ValueLossInputs) -> jax.Array:
    """Quantile-Huber (kappa = 1) of the head's quantiles against the target,
    both in the loss's units; see `jppo.core.quantiles`."""
    return quantiles.quantile_huber_loss(v.output / v.loss_scale, v.target)


VALUE_LOSSES.register("quantile", ValueLoss(_quantile, head=QUANTILES,
                                            clip_fraction=lambda v: jnp.zeros(())))


# -------------------------------------------------------------- value clip modes


@dataclasses.dataclass(frozen=True)
class ValueClipMode:
    """`clip_eps(eps, norm_state, loss_scale)`: the clip range in the loss's units.
    `return_units`: eps is measured in return units (the trap at returns of
    1000+, where 0.2 return units clips nearly every sample)."""

    clip_eps: Callable[[jax.Array, Any, jax.Array], jax.Array]
    return_units: bool = False


VALUE_CLIP_MODES: Registry[ValueClipMode] = Registry("value_clip_mode")
VALUE_CLIP_MODES.register("absolute", ValueClipMode(lambda eps, ns, scale: eps,
                                                    return_units=True))
VALUE_CLIP_MODES.register("relative", ValueClipMode(
    lambda eps, ns, scale: eps * ns.targets.std / scale))
