"""Grids over traced hyperparameters, run as one vmapped program.

    grid = jppo.sweep(config, vf_coef=[0.05, 0.5, 1.0], value_lr=[1e-4, 3e-4])
    keys, hparams = grid.tile(num_seeds=16)          # (6 * 16,) leading axis
    result = jax.jit(jax.vmap(trainer))(keys, hparams)
    per_variant = grid.split(result.metrics)         # (6, 16, updates) per metric
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
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
    a variant choice) raises a ValueError naming it.
    """
    check_fields(grid, "PPOConfig")
    for name, values in grid.items():
        if name not in TRACED_FIELDS:
            raise ValueError(
                f"sweep over {name!r} is invalid: it is a static field (part of the compiled "
                f"program); sweepable fields are {sorted(TRACED_FIELDS)}"
            )
        if isinstance(values, np.ndarray):
            values = grid[name] = values.ravel().tolist()
        if isinstance(values, str) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"sweep {name}={values!r} is invalid: allowed is a non-empty list")
    names = list(grid)
    settings = [dict(zip(names, point, strict=True))
                for point in itertools.product(*(grid[n] for n in names))]
    points = [base.replace(**setting).hparams() for setting in settings]
    hparams = jax.tree.map(lambda *xs: jnp.stack(xs), *points)
    validate_hparams(hparams)
    return Sweep(settings=settings, hparams=hparams)
