"""One XLA device per CPU core, set before JAX starts.

XLA runs one of jppo's small programs on about one CPU core; with N host
devices the seed axis is sharded N ways and N cores work at once (64 CartPole
seeds on this 2-core machine: 218k -> 416k env-steps/s). The flag is read when
JAX creates its CPU client, so this must run before the first JAX computation
(and before importing `envs`, which computes at import time). On a GPU or TPU
machine the extra host devices are unused: `jax.devices()` lists the
accelerators.
"""

from __future__ import annotations

import os

FLAG = "--xla_force_host_platform_device_count"


def use_host_cores(count: int | None = None) -> bool:
    """Ask XLA for `count` (default: every core) CPU devices; a user's own
    setting of the flag wins. Returns whether the flag was set here."""
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG in flags:
        return False
    count = count or os.cpu_count() or 1
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={count}".strip()
    return True
