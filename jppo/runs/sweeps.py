"""Grids over traced hyperparameters, run as one vmapped program.

    grid = jppo.sweep(config, vf_coef=[0.05, 0.5, 1.0], value_lr=[1e-4, 3e-4])
    keys, hparams = grid.tile(num_seeds=16)          # (6 * 16,) leading axis
    jppo.validate_hparams(hparams)                   # after editing hparams: jit cannot check
    result = jax.jit(jax.vmap(trainer))(keys, hparams)
    per_variant = grid.split(result.metrics)         # (6, 16, updates) per metric
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jppo.core.config import TRACED_FIELDS, HParams, PPOConfig, check_fields, validate_hparams


@dataclasses.dataclass(frozen=True)
class Sweep:
    settings: list[dict[str, Any]]  # one dict of overrides per grid point
    hparams: HParams  # leaves of shape (len(settings),)

    def __len__(self) -> int:
        return len(self.settings)

    def tile(self, num_seeds: int, first_seed: int = 0) -> tuple[jax.Array, HParams]:
        """Keys and hparams for every (grid point, seed): point-major, seed i of
        every point uses `PRNGKey(first_seed + i)`, so variants share seeds."""
        keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(first_seed, first_seed + num_seeds))
        keys = jnp.tile(keys, (len(self), 1))
        hparams = jax.tree.map(lambda x: jnp.repeat(x, num_seeds, axis=0), self.hparams)
        return keys, hparams

    def split(self, metrics: dict[str, Any]) -> dict[str, np.ndarray]:
        """(points * seeds, updates) arrays -> (points, seeds, updates)."""
        return {k: np.asarray(v).reshape(len(self), -1, *np.shape(v)[1:])
                for k, v in metrics.items()}


def sweep(base: PPOConfig, **grid: Sequence[float]) -> Sweep:
    """Cartesian product over traced hyperparameters of `base`.

    Only traced fields can share a compiled program; a static field (a shape or
    a variant choice) raises a ValueError naming it. An experiment file's
    `[sweep]` table expands with the same `grid_points`, static fields included
    (each static setting is then a program of its own).
    """
    check_fields(grid, "PPOConfig")
    for name in grid:
        if name not in TRACED_FIELDS:
            raise ValueError(
                f"sweep over {name!r} is invalid: it is a static field (part of the compiled "
                f"program); sweepable fields are {sorted(TRACED_FIELDS)}"
            )
    settings = grid_points(grid)
    points = [base.replace(**setting).hparams() for setting in settings]
    hparams = jax.tree.map(lambda *xs: jnp.stack(xs), *points)
    validate_hparams(hparams)
    return Sweep(settings=settings, hparams=hparams)


def grid_points(grid: Mapping[str, Any], where: str = "sweep") -> list[dict[str, Any]]:
    """Every point of the cartesian product of `grid` (field -> non-empty list of
    distinct values), in the grid's order with the last field varying fastest."""
    lists = {name: _value_list(name, values, where) for name, values in grid.items()}
    return [dict(zip(lists, point, strict=True)) for point in itertools.product(*lists.values())]


def point_name(point: Mapping[str, Any]) -> str:
    """A grid point as a variant name, `vf_coef=0.05,value_output_gain=0.01`: readable,
    the same for the same values, and free of '/', '__' and glob characters, so it
    names run-directory files and TensorBoard folders as it is."""
    return ",".join(f"{name}={value_label(value)}" for name, value in point.items())


def value_label(value: Any) -> str:
    """A value as written in a name: floats by their shortest repr (0.05, 1e-05),
    bools as in TOML, sequences joined by 'x' (layer widths 256x128)."""
    if isinstance(value, np.generic):  # np.float32(0.05) reads as 0.05
        value = float(str(value)) if isinstance(value, np.floating) else value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return "x".join(value_label(v) for v in value) or "()"
    return repr(value) if isinstance(value, float) else str(value)


def _value_list(name: str, values: Any, where: str) -> list[Any]:
    if isinstance(values, np.ndarray):
        values = values.ravel().tolist()
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{where}.{name}={values!r} is invalid: allowed is a non-empty list "
                         "of values, e.g. [0.05, 0.5]")
    labels = [value_label(v) for v in values]
    repeated = next((label for i, label in enumerate(labels) if label in labels[:i]), None)
    if repeated is not None:
        raise ValueError(f"{where}.{name}={list(values)!r} is invalid: allowed is a list of "
                         f"distinct values ({repeated} appears twice)")
    return list(values)
