"""The optax chain: gradient clipping (the `grad_clip` strategy), then Adam with a
learning rate and schedule per parameter group (policy, value, shared torso).

The optimizer is built inside the traced program from `HParams`, so learning
rates and the clip norm are sweepable array values rather than constants.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jppo.core import strategies
from jppo.core.config import HParams, PPOConfig
from jppo.core.networks import param_labels


def schedule(kind: str, base_lr: jax.Array, total_steps: int) -> optax.Schedule:
    """Learning rate as a function of the optimizer step (one per minibatch): the
    registered `lr_schedule` named `kind`, from `base_lr` to 0 over `total_steps`."""
    return strategies.LR_SCHEDULES.get(kind).make(base_lr, 0.0, total_steps)


def group_learning_rates(config: PPOConfig, hparams: HParams) -> dict[str, jax.Array]:
    return {"policy": hparams.policy_lr, "value": hparams.value_lr, "torso": hparams.torso_lr}


def make_optimizer(
    config: PPOConfig, hparams: HParams, params: dict
) -> optax.GradientTransformation:
    total_steps = config.num_updates * config.steps_per_update
    groups = sorted(set(jax.tree.leaves(param_labels(params))))
    lrs = group_learning_rates(config, hparams)
    clip = strategies.of(config).grad_clip
    per_group = {
        group: optax.chain(
            clip.group_clip(hparams.max_grad_norm),
            optax.scale_by_adam(eps=hparams.adam_eps),
            optax.scale_by_learning_rate(schedule(config.lr_schedule, lrs[group], total_steps)),
        )
        for group in groups
    }
    grouped = optax.multi_transform(per_group, param_labels)
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
    total_steps = config.num_updates * config.steps_per_update
    return {
        group: schedule(config.lr_schedule, lr, total_steps)(step)
        for group, lr in group_learning_rates(config, hparams).items()
    }
