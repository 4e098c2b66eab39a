"""The optax chain: gradient clipping (the `grad_clip` strategy), then Adam with a
learning rate and schedule per parameter group (policy, value, shared torso).

The optimizer is built inside the traced program from `HParams`, so learning
rates and the clip norm are sweepable array values rather than constants.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jppo.core import strategies
from jppo.core.config import HParams, PPOConfig
from jppo.core.networks import param_labels


def schedule(kind: str, base_lr: jax.Array, total_steps: int, end_factor: float = 0.0,
             decay_fraction: float = 1.0) -> optax.Schedule:
    """Learning rate as a function of the optimizer step (one per minibatch): the
    registered `lr_schedule` named `kind`, from `base_lr` to `base_lr * end_factor`
    over the first `decay_fraction` of `total_steps`, then held (optax's schedules
    hold their end value past `transition_steps`)."""
    decay_steps = decay_steps_of(total_steps, decay_fraction)
    return strategies.LR_SCHEDULES.get(kind).make(base_lr, base_lr * end_factor, decay_steps)


def decay_steps_of(total_steps: int, decay_fraction: float) -> int:
    """The optimizer steps a decay lasts: `decay_fraction` of `total_steps`, at least 1."""
    return max(1, round(total_steps * decay_fraction))


def config_schedule(config: PPOConfig, base_lr: jax.Array) -> optax.Schedule:
    """The learning-rate schedule of one parameter group of `config`."""
    total_steps = config.num_updates * config.steps_per_update
    return schedule(config.lr_schedule, base_lr, total_steps, config.lr_end_factor,
                    config.lr_decay_fraction)


def group_learning_rates(config: PPOConfig, hparams: HParams) -> dict[str, jax.Array]:
    return {"policy": hparams.policy_lr, "value": hparams.value_lr, "torso": hparams.torso_lr}


def make_optimizer(
    config: PPOConfig, hparams: HParams, params: dict
) -> optax.GradientTransformation:
    groups = sorted(set(jax.tree.leaves(param_labels(params))))
    lrs = group_learning_rates(config, hparams)
    clip = strategies.of(config).grad_clip
    per_group = {
        group: optax.chain(
            clip.group_clip(hparams.max_grad_norm),
            optax.scale_by_adam(eps=hparams.adam_eps),
            optax.scale_by_learning_rate(config_schedule(config, lrs[group])),
        )
        for group in groups
    }
    grouped = optax.multi_transform(per_group, param_labels)
    if config.kl_adaptive_lr:
        grouped = optax.chain(grouped, scale_by_kl_lr_factor())
    if clip.outer_clip is None:
        return grouped
    return optax.chain(clip.outer_clip(hparams.max_grad_norm), grouped)


def schedule_count(opt_state) -> jax.Array:
    """The count the learning-rate schedules read (the same in every group)."""
    states = jax.tree.leaves(opt_state, is_leaf=_is_schedule_state)
    return next(s.count for s in states if _is_schedule_state(s))


def revert_skipped(skipped: jax.Array, new_state, old_state):
    """`old_state` where a step is skipped, except the schedules' counts, which
    advance anyway: the learning rate follows the planned step count (progress,
    as SB3 and CleanRL anneal), not the number of steps applied. Adam's moments
    and its own count (bias correction) are reverted with the parameters."""
    return jax.tree.map(
        lambda new, old: new if _is_schedule_state(new) else jnp.where(skipped, old, new),
        new_state, old_state, is_leaf=_is_schedule_state)


def _is_schedule_state(x) -> bool:
    return isinstance(x, optax.ScaleByScheduleState)


def group_norms(grads: dict) -> dict[str, jax.Array]:
    """L2 norm of the gradient of each parameter group (0 for absent groups)."""
    labels = param_labels(grads)
    norms = {}
    for group in ("policy", "value", "torso"):
        leaves = [g for g, lab in zip(jax.tree.leaves(grads), jax.tree.leaves(labels),
                                      strict=True) if lab == group]
        norms[group] = (optax.tree.norm(leaves) if leaves else jnp.zeros((), jnp.float32))
    return norms


def learning_rates_in_force(
    config: PPOConfig, hparams: HParams, step: jax.Array
) -> dict[str, jax.Array]:
    """The learning rate of each group at optimizer step `step` (a metric)."""
    return {
        group: config_schedule(config, lr)(step)
        for group, lr in group_learning_rates(config, hparams).items()
    }


# ------------------------------------------------- the adaptive-KL learning rate
# rsl_rl's rule (legged-robotics PPO): before each minibatch step, with kl that
# minibatch's KL at the current parameters, lr <- max(lr / 1.5, 1e-5) if
# kl > 2 target, lr <- min(lr * 1.5, 1e-2) if 0 < kl < target / 2.
KL_LR_FACTOR = 1.5
KL_LR_BOUNDS = (1e-5, 1e-2)


class KlLrState(NamedTuple):
    """The factor every group's learning rate is multiplied by; it persists
    across updates in the optimizer state, as rsl_rl's learning rate does."""

    factor: jax.Array


def scale_by_kl_lr_factor() -> optax.GradientTransformation:
    """Multiply the updates by the carried factor (Adam's step is linear in its
    learning rate, so this is the learning rate times the factor)."""

    def init(params):
        return KlLrState(jnp.ones((), jnp.float32))

    def update(updates, state, params=None):
        return jax.tree.map(lambda u: u * state.factor, updates), state

    return optax.GradientTransformation(init, update)


def adapted_lr(lr: jax.Array, kl: jax.Array, target: jax.Array) -> jax.Array:
    """One step of rsl_rl's rule on the learning rate `lr`."""
    low, high = KL_LR_BOUNDS
    lowered = jnp.maximum(lr / KL_LR_FACTOR, low)
    raised = jnp.minimum(lr * KL_LR_FACTOR, high)
    return jnp.where(kl > 2.0 * target, lowered,
                     jnp.where((kl < target / 2.0) & (kl > 0.0), raised, lr))


def adapt_lr_to_kl(opt_state, kl: jax.Array, hparams: HParams):
    """`opt_state` with its factor moved by the rule; the bounds apply to the
    policy group's learning rate (policy_lr x factor), every group follows it."""
    base = hparams.policy_lr
    factor = adapted_lr(base * kl_lr_factor(opt_state), kl, hparams.target_kl) / base
    return jax.tree.map(lambda s: KlLrState(factor) if _is_kl_lr_state(s) else s,
                        opt_state, is_leaf=_is_kl_lr_state)


def kl_lr_factor(opt_state) -> jax.Array:
    states = jax.tree.leaves(opt_state, is_leaf=_is_kl_lr_state)
    return next(s.factor for s in states if _is_kl_lr_state(s))


def _is_kl_lr_state(x) -> bool:
    return isinstance(x, KlLrState)
