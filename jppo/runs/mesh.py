"""Seeds on devices: the per-seed keys, the 1-D "seeds" mesh and the padding to it.

Kept apart from the runner so the benchmarks shard and seed their programs the
way the runner does (`jppo.bench` imports this, never the runner).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh


def seed_keys(num_seeds: int, first_seed: int = 0) -> jax.Array:
    """Seed i's key is `PRNGKey(first_seed + i)`, so seed i of a batch equals a solo run."""
    return jax.vmap(jax.random.PRNGKey)(jnp.arange(first_seed, first_seed + num_seeds))


def device_count_for(runs: int, available: int) -> int:
    """How many devices a batch of `runs` should use: the fewest that reach the
    shortest per-device batch, ceil(runs / n). 64 runs on 8 devices use 8; 10
    runs on 8 use 5 (2 each, no padding) rather than 8 (padded to 16)."""
    return min(range(1, available + 1), key=lambda n: (-(-runs // n), n))


def seed_mesh(devices: Sequence[jax.Device] | int | None = None, runs: int | None = None
              ) -> Mesh:
    """A 1-D mesh named "seeds" over `devices`: an int takes the first n; None
    takes `device_count_for(runs, ...)` of them (all if `runs` is None)."""
    available = jax.devices()
    if devices is None:
        several = jax.process_count() > 1  # every process must own part of the mesh
        chosen = available[:device_count_for(runs, len(available))] \
            if runs and not several else available
    elif isinstance(devices, int):
        if jax.process_count() > 1 and devices != len(available):
            raise ValueError(f"devices={devices} is invalid with {jax.process_count()} "
                             f"processes: allowed is None or {len(available)} (every device "
                             "of every process)")
        if not 1 <= devices <= len(available):
            raise ValueError(f"devices={devices} is invalid: allowed is 1..{len(available)} "
                             f"(devices here: {len(available)})")
        chosen = available[:devices]
    else:
        chosen = list(devices)
    return Mesh(np.asarray(chosen), ("seeds",))


def batch_inputs(program: Any, exp: Any, num_devices: int) -> tuple[jax.Array, Any]:
    """Keys and hparams for a program's runs (variant-major, seed i of every variant
    uses the same key), padded to a multiple of the device count by repeating the
    last run."""
    keys = jnp.tile(seed_keys(exp.seeds, exp.first_seed), (len(program.variants), 1))
    hparams = jax.tree.map(lambda x: jnp.repeat(x, exp.seeds, axis=0), program.hparams)
    runs = keys.shape[0]
    padded = -(-runs // num_devices) * num_devices
    if padded != runs:
        index = jnp.minimum(jnp.arange(padded), runs - 1)
        keys, hparams = jax.tree.map(lambda x: x[index], (keys, hparams))
    return keys, hparams
