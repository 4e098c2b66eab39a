"""What a benchmark measures: the one definition of the flags of `jppo bench` and
`python -m jppo.bench` (both parse into `BenchOptions`; tyro writes the flags
from the fields). Imports no JAX: the parent process must decide how to allocate
accelerator memory before anything starts it (see `jppo.bench.children`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Annotated

import tyro


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """Throughput, compile time, memory and fraction of peak, as JSON."""

    env: str = "CartPole-v1"
    """environment id or import path package.module:factory."""
    seeds: tuple[int, ...] = (1, 16, 64)
    """seed counts to measure."""
    devices: tuple[int, ...] = (1,)
    """device counts to shard the seeds over (CPU: forced host devices)."""
    steps: int | None = None
    """env steps per seed; default: a few seconds of work per count."""
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """override a PPOConfig field, FIELD=VALUE (`jppo config` lists them)."""
    vs_reference: bool = False
    """jppo against the single-file reference PPO, in one process, alternating; prints
    the median ratio (see jppo.bench.versus)."""
    pairs: int = 3
    """--vs-reference: alternating measurement pairs per seed count."""
    seconds: float = 3.0
    """--vs-reference: seconds per measurement."""
    reference_devices: int | None = None
    """--vs-reference: devices for the reference (default: as jppo)."""
    profile: bool = False
    """time each phase of one update at each seed count (see jppo.bench.profile) and print
    a Markdown table."""
    study: int = 0
    """N variants differing only in traced knobs x each seed count as one program, against
    the reference compiled and run once per variant (wall time including compiles); prints
    the median ratio (see jppo.bench.study)."""
    rounds: int = 3
    """--study, --eval-cost: alternating rounds (each side once per round)."""
    eval_cost: bool = False
    """whole runs with the config's evaluation and with eval_every=0 at each seed count, in
    one process, alternating; prints the median cost (see jppo.bench.eval_cost)."""
    init_check: bool = False
    """accelerators only: time and compare the Householder and LAPACK orthogonal
    initializers at the largest seed count."""
    one: int | None = None
    """internal: measure this one seed count in this process (the throughput benchmark
    starts one such process per seed count)."""

    def spawns_children(self) -> bool:
        """Whether these options measure in child processes (the throughput mode)."""
        return not (self.one is not None or self.vs_reference or self.profile
                    or self.init_check or self.study or self.eval_cost)


def parse(argv: Sequence[str] | None = None) -> BenchOptions:
    """`python -m jppo.bench ARGS` as options (`--help` lists the flags)."""
    return tyro.cli(BenchOptions, args=argv, prog="python -m jppo.bench")
