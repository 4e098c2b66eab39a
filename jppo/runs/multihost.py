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

from typing import Any

import jax

CPU_COLLECTIVES = "gloo"  # CPU processes exchange arrays over TCP


def initialize(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join process `process_id` of `num_processes` to the run coordinated at
    `coordinator` ("HOST:PORT", reachable from every host; process 0 serves it).
    Must run before anything starts JAX; raises before joining on bad input."""
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator={coordinator!r} is invalid: allowed is HOST:PORT "
                         "with a port in 1..65535, e.g. 10.0.0.1:8476")
    if num_processes < 1:
        raise ValueError(f"num_processes={num_processes} is invalid: allowed is 1 or more")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} is invalid: allowed is "
                         f"0..{num_processes - 1} (num_processes={num_processes})")
    jax.config.update("jax_cpu_collectives_implementation", CPU_COLLECTIVES)
    jax.distributed.initialize(coordinator, num_processes, process_id)


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
