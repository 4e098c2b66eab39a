"""Action spaces gymnax does not have.

gymnax 1.0 has Discrete, Box, Tuple and Dict, and none of its own environments
acts in more than one discrete choice per step. A user environment that picks
several discrete values at once (a factorized action: "k digits", "move and
fire") declares `MultiDiscrete(nvec)`, and the policy becomes one categorical
per component (see `jppo.core.distributions`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from gymnax.environments import spaces


class MultiDiscrete(spaces.Space):
    """Integer vectors `a` with `0 <= a[i] < nvec[i]`, as `int32` arrays of shape `(len(nvec),)`.

    `nvec` is kept as a tuple of Python ints: it fixes the policy's shape, so
    it must be static.
    """

    def __init__(self, nvec: Sequence[int]):
        nvec = tuple(nvec)
        if not nvec or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                               for n in nvec):
            raise ValueError(f"nvec={nvec!r} is invalid: allowed is a non-empty sequence of "
                             "ints >= 1")
        self.nvec = nvec
        self.shape = (len(nvec),)
        self.dtype = jnp.int32

    def __repr__(self) -> str:
        return f"MultiDiscrete({list(self.nvec)})"

    def sample(self, key: jax.Array) -> jax.Array:
        """Each component uniform over its own range."""
        return jax.random.randint(key, self.shape, 0, jnp.asarray(self.nvec, jnp.int32),
                                  dtype=jnp.int32)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        inside = (x >= 0) & (x < jnp.asarray(self.nvec))
        return jnp.logical_and(x.shape == self.shape, jnp.all(inside))
