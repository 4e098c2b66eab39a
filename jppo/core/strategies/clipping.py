"""Gradient clipping: one clip over every parameter group, or each group alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from jppo.core.strategies.registry import Registry


@dataclasses.dataclass(frozen=True)
class GradClip:
    """`group_clip(max_norm)` opens each group's chain; `outer_clip(max_norm)`, when
    given, runs first over all groups. `clip_norm(global_norm, group_norms)` is
    the norm the clip compares with max_grad_norm (the `grad_clip_ratio` metric).
    `couples_groups`: one group's gradient can shrink another's step."""

    group_clip: Callable[[jax.Array], optax.GradientTransformation]
    outer_clip: Callable[[jax.Array], optax.GradientTransformation] | None
    clip_norm: Callable[[jax.Array, Mapping[str, jax.Array]], jax.Array]
    needs_group_norms: bool = False
    couples_groups: bool = False


GRAD_CLIPS: Registry[GradClip] = Registry("grad_clip")
GRAD_CLIPS.register("global", GradClip(
    group_clip=lambda max_norm: optax.identity(),
    outer_clip=optax.clip_by_global_norm,
    clip_norm=lambda global_norm, norms: global_norm,
    couples_groups=True))
GRAD_CLIPS.register("per_head", GradClip(
    # per head: a huge value gradient can no longer shrink the policy step
    group_clip=optax.clip_by_global_norm,
    outer_clip=None,
    clip_norm=lambda global_norm, norms: jnp.max(jnp.stack(list(norms.values()))),
    needs_group_norms=True))
