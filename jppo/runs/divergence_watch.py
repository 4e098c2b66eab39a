"""Numerical divergence seen from the host, between chunks.

The jitted update flags per update a non-finite loss, gradient norm or
parameter (`nonfinite`) and, apart from it, a non-finite reward or observation
(`nonfinite_reward`, `nonfinite_obs`). A run so flagged has diverged: its
parameters are NaN from then on, while the returns the env computes stay
finite and look like those of a weak policy. `DivergenceWatch` keeps each
run's first flagged update over the chunks of a program, words what the live
view says about new divergences, and tells the runner when every run of the
program has diverged (`Experiment.stop_when_diverged` then stops it: the rest
of a diverged run only computes NaNs). A stop is recorded in run.json under
`stopped_early`, so a resume skips the program and the reports say why its
runs are short.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from jppo.runs import results
from jppo.runs.reductions import first_nonfinite_update

STOPPED_EARLY = "stopped_early"  # run.json key: checkpoint name -> what stopped
SHOWN_RUNS = 8  # runs named in one live-view message; the rest are counted


@dataclasses.dataclass
class DivergenceWatch:
    """The first non-finite update of each run of a program (variant-major, as
    the runner batches them); -1 while a run is finite."""

    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    first: np.ndarray
    stopped_after: int | None = None  # updates run when stop_when_diverged stopped it

    @classmethod
    def start(cls, variants: Sequence[str], seeds: Sequence[int]) -> DivergenceWatch:
        return cls(tuple(variants), tuple(seeds), np.full(len(variants) * len(seeds), -1))

    @property
    def diverged(self) -> int:
        return int(np.sum(self.first >= 0))

    @property
    def all_diverged(self) -> bool:
        return bool(np.all(self.first >= 0))

    def observe(self, metrics: Mapping[str, np.ndarray], first_update: int) -> list[int]:
        """Record one chunk's `(runs, updates)` flags; the runs that diverged in it."""
        firsts = first_nonfinite_update(metrics)
        if firsts is None:
            return []
        new = np.flatnonzero((self.first < 0) & (firsts >= 0))
        self.first[new] = first_update + firsts[new]
        return new.tolist()

    def label(self, run: int) -> str:
        seed = f"seed {self.seeds[run % len(self.seeds)]}"
        return seed if len(self.variants) == 1 else \
            f"{self.variants[run // len(self.seeds)]} {seed}"

    def message(self, new: Sequence[int], metrics: Mapping[str, np.ndarray],
                first_update: int) -> str:
        """One line naming the runs that diverged in a chunk, where and from what."""
        named = [f"{self.label(run)} at update {self.first[run]} "
                 f"({input_source(metrics, run, self.first[run] - first_update)})"
                 for run in new[:SHOWN_RUNS]]
        more = f" and {len(new) - SHOWN_RUNS} more" if len(new) > SHOWN_RUNS else ""
        return (f"diverged (NaN/inf): {', '.join(named)}{more}; "
                f"{self.diverged}/{len(self.first)} runs diverged")

    def seed_from(self, run_dir: Path, env: str, chunks: int) -> None:
        """On resume: the first non-finite updates in the metric files of the
        chunks before `chunks`, so the view and the stop rule see the whole run."""
        for v, variant in enumerate(self.variants):
            flags = read_flags(run_dir, variant, env, chunks, self.seeds)
            if flags is not None:
                firsts = first_nonfinite_update({"nonfinite": flags})
                block = slice(v * len(self.seeds), (v + 1) * len(self.seeds))
                self.first[block] = firsts if firsts is not None else -1


def input_source(metrics: Mapping[str, np.ndarray], run: int, position: int) -> str:
    """What the update at `position` of a run met first: the env's inputs or the learner's."""
    for name, words in (("nonfinite_reward", "env reward"), ("nonfinite_obs", "observation")):
        values = metrics.get(name)
        if values is not None and values[run, position] > 0:
            return words
    return "loss, gradient or parameters"


def read_flags(run_dir: Path, variant: str, env: str, chunks: int, seeds: Sequence[int]
               ) -> np.ndarray | None:
    """`(seeds, updates)` `nonfinite` flags of a (variant, env)'s first `chunks`
    chunks on disk; None where they were not recorded."""
    pattern = f"{variant}__{results.file_part(env)}__*.parquet"
    paths = sorted(p for p in (Path(run_dir) / results.METRICS_DIR).glob(pattern)
                   if int(p.stem.rsplit("__", 1)[1]) < chunks)
    tables = [pq.read_table(p, columns=["seed", "update", "nonfinite"]) for p in paths
              if "nonfinite" in pq.read_schema(p).names]
    if not tables:
        return None
    frame = pd.concat([table.to_pandas() for table in tables], ignore_index=True)
    wide = frame.pivot(index="seed", columns="update", values="nonfinite")
    return wide.reindex(list(seeds)).to_numpy(np.float64)


def record_stop(run_dir: Path, checkpoint_name: str, entry: Mapping[str, Any]) -> None:
    """Note in run.json that a program stopped early, and why."""
    info = results.read_run_info(run_dir)
    info.setdefault(STOPPED_EARLY, {})[checkpoint_name] = dict(entry)
    results.write_run_info(run_dir, info)


def stopped_early(info: Mapping[str, Any] | None, variant: str, env: str
                  ) -> Mapping[str, Any] | None:
    """run.json's record of the program of (variant, env) stopping early, if it did."""
    for entry in ((info or {}).get(STOPPED_EARLY) or {}).values():
        if entry.get("env") == env and variant in entry.get("variants", ()):
            return entry
    return None
