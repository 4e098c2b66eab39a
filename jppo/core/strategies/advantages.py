"""Advantage normalizations: what happens to the advantages over the whole batch
(once per update) and per minibatch (inside each loss)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from jppo.core import losses
from jppo.core.strategies.registry import Registry


def _unchanged(advantages: jax.Array, hparams: Any) -> jax.Array:
    return advantages


@dataclasses.dataclass(frozen=True)
class AdvantageNorm:
    """`batch(adv, hparams)` runs on the update's whole batch, `minibatch(adv, hparams)`
    on each minibatch. `divides_by_std`: near-constant advantages are blown up
    to unit std (the noise-advantages diagnosis applies). `by_return_spread`:
    after `batch`, the advantages are divided by max(1, P95 - P5) of the
    returns, each percentile an EMA carried in `NormState.return_spread`
    (DreamerV3's return normalization; `jppo.core.normalize.ReturnSpread`)."""

    minibatch: Callable[[jax.Array, Any], jax.Array] = _unchanged
    batch: Callable[[jax.Array, Any], jax.Array] = _unchanged
    divides_by_std: bool = False
    by_return_spread: bool = False


ADVANTAGE_NORMS: Registry[AdvantageNorm] = Registry("advantage_norm")
ADVANTAGE_NORMS.register("minibatch", AdvantageNorm(
    minibatch=lambda adv, hp: losses.normalize(adv), divides_by_std=True))
ADVANTAGE_NORMS.register("batch", AdvantageNorm(
    batch=lambda adv, hp: losses.normalize(adv), divides_by_std=True))
ADVANTAGE_NORMS.register("off", AdvantageNorm())
ADVANTAGE_NORMS.register("robust", AdvantageNorm(
    minibatch=lambda adv, hp: losses.robust_normalize(adv, hp.adv_std_threshold)))
# DreamerV3: advantages / max(1, EMA(P95(R)) - EMA(P5(R))), no centering, so a
# task whose returns spread less than 1 keeps its advantages as they are.
ADVANTAGE_NORMS.register("return_percentile", AdvantageNorm(by_return_spread=True))
