"""Schedules of the learning rate (per optimizer step, to 0) and of the entropy
coefficient (per update, from ent_coef to ent_coef_final), built on optax's
schedule functions. The start and end values are traced hyperparameters, so a
sweep over them shares one program."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import optax

from jppo.core.strategies.registry import Registry


@dataclasses.dataclass(frozen=True)
class Schedule:
    """`make(start, end, steps)`: an `optax.Schedule` from `start` at count 0 to
    `end` at count `steps` and after (a constant schedule stays at `start`)."""

    make: Callable[[jax.Array, jax.Array, int], optax.Schedule]


def _cosine(start: jax.Array, end: jax.Array, steps: int) -> optax.Schedule:
    """Half a cosine from start to end; `end` may exceed `start` or be 0, where
    optax's `alpha = end / start` form would divide by zero."""
    decay = optax.cosine_decay_schedule(1.0, steps)
    return lambda count: end + (start - end) * decay(count)


LINEAR = Schedule(lambda start, end, steps: optax.linear_schedule(start, end, steps))
COSINE = Schedule(_cosine)
CONSTANT = Schedule(lambda start, end, steps: optax.constant_schedule(start))

LR_SCHEDULES: Registry[Schedule] = Registry("lr_schedule")
ENT_SCHEDULES: Registry[Schedule] = Registry("ent_schedule")
for _name, _schedule in (("linear", LINEAR), ("cosine", COSINE), ("constant", CONSTANT)):
    LR_SCHEDULES.register(_name, _schedule)
for _name, _schedule in (("constant", CONSTANT), ("linear", LINEAR), ("cosine", COSINE)):
    ENT_SCHEDULES.register(_name, _schedule)
