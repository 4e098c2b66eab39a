"""One XLA compilation cache for the whole test session.

Many test files compile the same small programs (the same tiny CartPole config,
the same chunk sizes), and the CLI and multi-process tests compile them again in
subprocesses. JAX's persistent compilation cache, in a folder made for this
session and shared by the xdist workers and every subprocess they start (through
the environment), compiles each program once. A cached executable is the one XLA
built, so bitwise comparisons are unaffected; the cache key covers the program,
the devices and XLA_FLAGS. Set JAX_COMPILATION_CACHE_DIR yourself to keep a cache
between sessions.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

CACHE_VARIABLE = "JAX_COMPILATION_CACHE_DIR"
_MADE_HERE = "JPPO_TEST_CACHE_MADE_HERE"


def pytest_configure(config) -> None:
    """Runs in the controller before the workers start, so they inherit the folder."""
    if os.environ.get(CACHE_VARIABLE) or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    os.environ[CACHE_VARIABLE] = tempfile.mkdtemp(prefix="jppo-test-xla-cache-")
    os.environ[_MADE_HERE] = "1"
    if "jax" in sys.modules:  # imported before the variable was set: tell it directly
        sys.modules["jax"].config.update("jax_compilation_cache_dir",
                                         os.environ[CACHE_VARIABLE])


def pytest_unconfigure(config) -> None:
    if os.environ.get(_MADE_HERE) and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(os.environ.pop(CACHE_VARIABLE), ignore_errors=True)
        os.environ.pop(_MADE_HERE, None)


# ------------------------------------------------------------------ the slow tests
# `make test-fast` (`-m "not slow"`) runs the rest in under two minutes on 2 cores;
# `make test` runs everything. A test is slow when it compiles training programs
# (seconds each on a CPU) or starts processes; an entry is a file (all its tests)
# or a file::test (every parametrization). tests/architecture/test_test_layout.py
# checks that each entry names a file and test that exist.
SLOW: tuple[str, ...] = ()


def pytest_collection_modifyitems(config, items) -> None:
    import pytest

    for item in items:
        path, _, name = item.nodeid.partition("::")
        if path in SLOW or f"{path}::{name.partition('[')[0]}" in SLOW:
            item.add_marker(pytest.mark.slow)
