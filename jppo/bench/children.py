"""Accelerator memory for the throughput benchmark's measuring processes.

`python -m jppo.bench` measures each seed count in a fresh child process. The
parent only reads the env's spec and times a matmul, but importing gymnax
starts JAX, which preallocates 75% of a GPU's memory: each child would get the
rest and XLA's autotuner runs out of memory. So the parent allocates on demand
and its children get the environment the user started it with. This module
imports no JAX: it must run before anything does.
"""

from __future__ import annotations

import os

PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"
SAVED = "JPPO_BENCH_USER_PREALLOCATE"  # the user's setting, or UNSET
UNSET = "<unset>"
PARENT_ONLY_FLAGS = ("--one", "--vs-reference", "--profile", "--init-check", "--study",
                     "--eval-cost")


def spawns_children(argv: list[str]) -> bool:
    """Whether these `python -m jppo.bench` arguments measure in child processes."""
    return not any(flag in argv for flag in PARENT_ONLY_FLAGS)


def leave_accelerator_memory_to_children() -> None:
    """Make this process allocate on demand; remember the user's setting."""
    os.environ.setdefault(SAVED, os.environ.get(PREALLOCATE, UNSET))
    os.environ[PREALLOCATE] = "false"


def child_environ() -> dict[str, str]:
    """This process's environment with the user's preallocation setting restored."""
    env = dict(os.environ)
    saved = env.pop(SAVED, None)
    if saved == UNSET:
        env.pop(PREALLOCATE, None)
    elif saved is not None:
        env[PREALLOCATE] = saved
    return env
