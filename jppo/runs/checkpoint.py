"""Orbax save/restore of a program's batched train state, verified on resume.

Only the real runs are saved (not the padding that fills the last device), so
a run can resume on another number of devices.

Saves are synchronous: a chunk boundary waits for its checkpoint, so a write
that fails (disk full) is reported at that chunk with the OS's reason, and a
Ctrl-C never leaves a half-written step behind. After each save the step's
files are hashed into `<program>.digests.json`; a resume checks the newest
step's files against it (and that it restores), and falls back to the newest
step that passes, saying which step it skipped and why: a bit flipped on disk
restores without any error from orbax, so the digest is what catches it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jppo.runs import faults, results

CHECKPOINTS_DIR = "checkpoints"


class Restored(NamedTuple):
    step: int  # 0: no checkpoint to restore, `state` is None
    state: Any
    skipped: list[tuple[int, str]]  # unreadable newer steps and why


def manager(out: Path, name: str) -> Any:
    """A checkpoint manager keeping the last two checkpoints of program `name`;
    temporary folders of a save cut short by a kill are removed."""
    import orbax.checkpoint as ocp

    logging.getLogger("absl").setLevel(logging.CRITICAL)  # errors are raised, told once
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True,
                                           enable_async_checkpointing=False,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(out / CHECKPOINTS_DIR / name, options=options)


def save(manager: Any, step: int, state: Any, runs: int) -> None:
    """Checkpoint the real runs only: the padding depends on the device count,
    so a run can resume on another number of devices. A failed write raises a
    one-line `RunError` naming the folder and the OS's reason."""
    import orbax.checkpoint as ocp

    folder = Path(manager.directory)
    try:
        manager.save(step, args=ocp.args.StandardSave(_storable(_unpadded(state, runs))))
        manager.wait_until_finished()
        if jax.process_index() == 0:
            _record_digests(folder, manager.all_steps(), step)
    except Exception as error:  # orbax and tensorstore raise ValueError for OS faults
        faults.quiet_orphaned_writes()
        raise faults.RunError(f"cannot write checkpoint {step} to {str(folder)!r}: "
                              f"{faults.reason(error)}") from None


@functools.partial(jax.jit, static_argnums=1)
def _unpadded(state: Any, runs: int) -> Any:
    return jax.tree.map(lambda x: x[:runs], state)


def _is_empty(shape: tuple[int, ...]) -> bool:
    return int(np.prod(shape)) == 0


def _storable(tree: Any) -> Any:
    """Orbax refuses arrays of zero size, and an env state can hold some (MJX's
    physics state of a model without actuator activations has `act` of shape (0,)).
    They hold no values: a one-element stand-in is saved in their place, and
    `restore` rebuilds them from the shapes. Trees without one are saved unchanged."""
    return jax.tree.map(lambda x: np.zeros((1,), x.dtype) if _is_empty(x.shape) else x, tree)


def restore_newest_readable(manager: Any, shapes: Any, runs: int, sharding: NamedSharding
                            ) -> Restored:
    """The newest checkpoint whose files match their digest and that restores;
    newer unreadable steps are deleted (they will be recomputed) and listed in
    `skipped`. No checkpoint at all gives step 0; none readable raises RunError."""
    steps = sorted(manager.all_steps(), reverse=True)
    skipped: list[tuple[int, str]] = []
    for step in steps:
        problem = verify(Path(manager.directory), step)
        if problem is None:
            try:
                return Restored(step, restore(manager, step, shapes, runs, sharding), skipped)
            except Exception as error:  # whatever a damaged step makes orbax raise
                problem = faults.reason(error)
        skipped.append((step, problem))
    if steps:
        why = "; ".join(f"checkpoint {step}: {problem}" for step, problem in skipped)
        raise faults.RunError(f"resume: no readable checkpoint in {str(manager.directory)!r} "
                              f"({why}); start a new run directory")
    return Restored(0, None, skipped)


def drop(manager: Any, steps: list[int]) -> None:
    """Delete skipped steps so the resumed run can write them again."""
    for step in steps:
        manager.delete(step)
    if steps and jax.process_index() == 0:
        folder = Path(manager.directory)
        kept = {k: v for k, v in _read_digests(folder).items() if int(k) not in steps}
        results.atomic_write_text(digest_path(folder), json.dumps(kept, indent=1))


def restore(manager: Any, step: int, shapes: Any, runs: int, sharding: NamedSharding) -> Any:
    """Restore the runs replicated, then pad (repeat the last run, as the batch
    does) and shard them as this session's mesh wants."""
    import orbax.checkpoint as ocp

    replicated = NamedSharding(sharding.mesh, PartitionSpec())

    def saved(x: Any) -> jax.ShapeDtypeStruct:
        shape = (runs, *x.shape[1:])
        return jax.ShapeDtypeStruct((1,) if _is_empty(shape) else shape, x.dtype,
                                    sharding=replicated)

    stored = manager.restore(step, args=ocp.args.StandardRestore(jax.tree.map(saved, shapes)))
    state = jax.tree.map(  # the zero-size arrays `_storable` stood in for
        lambda x, s: np.zeros((runs, *x.shape[1:]), x.dtype) if _is_empty(x.shape[1:]) else s,
        shapes, stored)
    padded = jax.tree.leaves(shapes)[0].shape[0]
    index = np.minimum(np.arange(padded), runs - 1)
    return jax.jit(lambda tree: jax.tree.map(lambda x: x[index], tree),
                   out_shardings=sharding)(state)


# ---------------------------------------------------------------- digests
def digest_path(folder: Path) -> Path:
    return folder.parent / f"{folder.name}.digests.json"


def step_digest(step_dir: Path) -> str:
    """SHA-256 over every file of a step folder: relative paths and contents."""
    digest = hashlib.sha256()
    for path in sorted(p for p in step_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(step_dir)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _read_digests(folder: Path) -> dict[str, str]:
    try:
        return json.loads(digest_path(folder).read_text())
    except (OSError, ValueError):
        return {}  # none yet (or an older run): steps are then checked by restoring


def _record_digests(folder: Path, steps: Any, saved: int) -> None:
    """Digest the step just saved; keep the others' (dropping deleted steps)."""
    known = _read_digests(folder)
    digests = {str(s): step_digest(folder / str(s)) if s == saved or str(s) not in known
               else known[str(s)] for s in steps}
    results.atomic_write_text(digest_path(folder), json.dumps(digests, indent=1))


def verify(folder: Path, step: int) -> str | None:
    """Why step `step` cannot be trusted, or None: its files differ from the
    digest taken when it was written (a step without a digest passes)."""
    expected = _read_digests(folder).get(str(step))
    if expected is None:
        return None
    try:
        actual = step_digest(folder / str(step))
    except OSError as error:
        return f"its files cannot be read ({faults.reason(error)})"
    return None if actual == expected else "its files changed since they were written " \
                                             "(checksum mismatch)"
