"""Orbax save/restore of a program's batched train state.

Only the real runs are saved (not the padding that fills the last device), so
a run can resume on another number of devices.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

CHECKPOINTS_DIR = "checkpoints"


def manager(out: Path, name: str) -> Any:
    """A checkpoint manager keeping the last two checkpoints of program `name`."""
    import orbax.checkpoint as ocp

    logging.getLogger("absl").setLevel(logging.WARNING)
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
    return ocp.CheckpointManager(out / CHECKPOINTS_DIR / name, options=options)


def save(manager: Any, step: int, state: Any, runs: int) -> None:
    """Checkpoint the real runs only: the padding depends on the device count,
    so a run can resume on another number of devices."""
    import orbax.checkpoint as ocp

    manager.save(step, args=ocp.args.StandardSave(_unpadded(state, runs)))


@functools.partial(jax.jit, static_argnums=1)
def _unpadded(state: Any, runs: int) -> Any:
    return jax.tree.map(lambda x: x[:runs], state)


def restore(manager: Any, step: int, shapes: Any, runs: int, sharding: NamedSharding) -> Any:
    """Restore the runs replicated, then pad (repeat the last run, as the batch
    does) and shard them as this session's mesh wants."""
    import orbax.checkpoint as ocp

    replicated = NamedSharding(sharding.mesh, PartitionSpec())
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct((runs, *x.shape[1:]), x.dtype, sharding=replicated),
        shapes)
    state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    padded = jax.tree.leaves(shapes)[0].shape[0]
    index = np.minimum(np.arange(padded), runs - 1)
    return jax.jit(lambda tree: jax.tree.map(lambda x: x[index], tree),
                   out_shardings=sharding)(state)
