"""One experiment over several processes, usually one per host.

Every process runs the same command (or script) on the same experiment and run
directory, which must lie on a file system every host sees. `initialize` joins
the processes before JAX computes anything; the runner's mesh then spans every
device of every process, each process computes its own devices' share of the
seeds, every chunk's metrics are gathered to every process, process 0 alone
writes run.json and the metrics, and orbax writes each checkpoint
cooperatively (every process its own shards). With one process, every helper
here is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import jax

CPU_COLLECTIVES = "gloo"  # CPU processes exchange arrays over TCP
JOIN_TIMEOUT = 300.0  # seconds a process waits for the coordinator and its peers
JAX_MARGIN = 30  # JAX's own join deadline is later: it aborts with a C++ stack trace
TIMEOUT_EXIT = 1


def initialize(coordinator: str, num_processes: int, process_id: int,
               timeout: float = JOIN_TIMEOUT) -> None:
    """Join process `process_id` of `num_processes` to the run coordinated at
    `coordinator` ("HOST:PORT", reachable from every host; process 0 serves it).
    Must run before anything starts JAX; raises before joining on bad input.
    A process that waits says so once (address, timeout); one whose coordinator
    or peers do not come within `timeout` seconds ends with one line on stderr
    (exit 1): JAX would abort later with a C++ stack trace instead."""
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator={coordinator!r} is invalid: allowed is HOST:PORT "
                         "with a port in 1..65535, e.g. 10.0.0.1:8476")
    if num_processes < 1:
        raise ValueError(f"num_processes={num_processes} is invalid: allowed is 1 or more")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} is invalid: allowed is "
                         f"0..{num_processes - 1} (num_processes={num_processes})")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"join_timeout={timeout!r} is invalid: allowed is a number of seconds "
                         "> 0")
    if jax.distributed.is_initialized():
        return  # joined already (a notebook cell run twice)
    jax.config.update("jax_cpu_collectives_implementation", CPU_COLLECTIVES)
    if num_processes > 1:
        _say(waiting_line(coordinator, num_processes, process_id, timeout))
    with _deadline(timeout, timeout_line(coordinator, num_processes, process_id, timeout)):
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=int(timeout) + JAX_MARGIN)


def waiting_line(coordinator: str, num_processes: int, process_id: int, timeout: float) -> str:
    others = num_processes - 1
    if process_id == 0:
        return (f"process 0 of {num_processes}: serving the coordinator at {coordinator}; "
                f"waiting up to {timeout:g} s for the other {others} process(es) to join")
    return (f"process {process_id} of {num_processes}: joining the coordinator at "
            f"{coordinator}; waiting up to {timeout:g} s for it and the other processes")


def timeout_line(coordinator: str, num_processes: int, process_id: int, timeout: float) -> str:
    who = "the other processes" if process_id == 0 else \
        "the coordinator (process 0) or the other processes"
    return (f"error: process {process_id} of {num_processes}: {who} did not join at "
            f"{coordinator} within {timeout:g} s; start every process with the same "
            "--coordinator and --num-processes (and distinct --process-id), or raise "
            "--join-timeout")


def _say(line: str) -> None:
    print(f"jppo: {line}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _deadline(seconds: float, line: str) -> Iterator[None]:
    """Past `seconds`, print `line` and end the process: the join blocks in C++,
    where nothing in Python can interrupt it."""
    def expire() -> None:
        _say(line)
        os._exit(TIMEOUT_EXIT)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def is_main() -> bool:
    """Whether this process writes the run directory's files (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier `name`, e.g. so that none
    reads a file before process 0 has written it."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def gather(tree: Any) -> Any:
    """Every process gets the whole of each (sharded) array of `tree`, as numpy."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)
