"""Policy objectives: how the probability ratio and the advantages make the
actor's loss. The entropy bonus is added outside, for every objective.

A `PolicyLoss` is a frozen record of pure functions plus the facts the
diagnosis asks about it (`clips_ratio`: whether a zero clip fraction means no
sample was held back by a clip), so no caller compares objective names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jppo.core import losses
from jppo.core.strategies.registry import Registry


class PolicyLossInputs(NamedTuple):
    """What a policy loss sees on one minibatch. `log_prob`/`old_log_prob`: of the
    stored actions under the current and the acting policy; `advantage`: after
    `advantage_norm`; `coef`: the coefficient the objective adapts between
    updates (the KL penalty's beta), carried in `TrainState.policy_coef`."""

    log_prob: jax.Array
    old_log_prob: jax.Array
    advantage: jax.Array
    clip_eps: jax.Array
    coef: jax.Array
    hparams: Any
    config: Any


def _ratio_outside_clip(p: PolicyLossInputs) -> jax.Array:
    return losses.clip_fraction(p.log_prob, p.old_log_prob, p.clip_eps)


@dataclasses.dataclass(frozen=True)
class PolicyLoss:
    """A policy objective: `loss(inputs) -> scalar` (to minimize, without entropy).

    `clip_fraction(inputs)`: the `clip_fraction` metric (by default the share of
    ratios outside 1 +- clip_eps, reported for every objective so runs compare).
    `clips_ratio`: samples past the clip get no gradient, so the clip fraction
    measures how much the objective held back (the policy-stall diagnosis reads
    it only then). `adapt(coef, kl, hparams) -> coef`: the coefficient for the
    next update from the KL the update ended at; None when the objective
    carries none. `uses_clip_eps`: clip_eps changes the loss.
    """

    loss: Callable[[PolicyLossInputs], jax.Array]
    clip_fraction: Callable[[PolicyLossInputs], jax.Array] = _ratio_outside_clip
    clips_ratio: bool = False
    adapt: Callable[[jax.Array, jax.Array, Any], jax.Array] | None = None
    uses_clip_eps: bool = False


def adaptive_kl_coef(coef: jax.Array, kl: jax.Array, target: jax.Array) -> jax.Array:
    """Schulman et al. 2017, section 4: after each policy update, with d the KL
    it reached, beta <- beta / 2 if d < target / 1.5, beta <- 2 beta if
    d > 1.5 target, else unchanged."""
    halved = jnp.where(kl < target / 1.5, coef / 2.0, coef)
    return jnp.where(kl > target * 1.5, coef * 2.0, halved)


POLICY_LOSSES: Registry[PolicyLoss] = Registry("policy_loss")
POLICY_LOSSES.register("clipped", PolicyLoss(
    lambda p: losses.clipped_surrogate(p.log_prob, p.old_log_prob, p.advantage, p.clip_eps),
    clips_ratio=True, uses_clip_eps=True))
POLICY_LOSSES.register("kl_penalty", PolicyLoss(
    lambda p: losses.kl_penalty_surrogate(p.log_prob, p.old_log_prob, p.advantage, p.coef),
    adapt=lambda coef, kl, hp: adaptive_kl_coef(coef, kl, hp.target_kl)))
POLICY_LOSSES.register("dpo", PolicyLoss(
    lambda p: losses.dpo_surrogate(p.log_prob, p.old_log_prob, p.advantage,
                                   p.hparams.dpo_alpha, p.hparams.dpo_beta)))
