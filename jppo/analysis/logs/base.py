"""What every source shares: a raw run (its logs as long rows), the normalised run
(one row per update in jppo's metric names and units), a source's declaration (how it
is detected, its name-by-name conversions for the docs, the lines that log a metric it
lacks) and helpers over the long rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jppo.analysis.logs.events import LogError
from jppo.analysis.metrics import METRIC_DOCS

METRIC_NAMES = tuple(METRIC_DOCS)


@dataclasses.dataclass(frozen=True)
class RawRun:
    """One run's logs: `long` has a row per logged (tag, step, value); `texts` the text
    summaries (CleanRL's hyperparameters); `path` the folder or file it came from."""

    path: Path
    long: pd.DataFrame
    texts: Mapping[str, str] = dataclasses.field(default_factory=dict)
    file_kind: str = "tensorboard"  # or "table"

    @property
    def tags(self) -> set[str]:
        return set(self.long["tag"].unique())


@dataclasses.dataclass(frozen=True)
class Options:
    """What a source cannot read from the logs: `map` (ours -> theirs), `scale` (ours ->
    factor), `config` (PPOConfig fields; `group_config` per group, from `[config.GROUP]`
    sub-tables: runs of several configurations diagnosed at once), and `settings` of
    the trainer (e.g. Brax's entropy_cost) from the `[map]`, `[scale]`, `[config]` and
    `[source]` TOML tables."""

    map: Mapping[str, str] = dataclasses.field(default_factory=dict)
    scale: Mapping[str, float] = dataclasses.field(default_factory=dict)
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    env: str | None = None
    # PPOConfig fields of one group only (a `[config.GROUP]` table), over `config`
    group_config: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def config_of(self, group: str) -> dict[str, Any]:
        """The [config] fields a run of `group` is judged with: the group's over all's."""
        return dict(self.config) | dict(self.group_config.get(group, {}))


@dataclasses.dataclass
class Normalised:
    """A run in jppo's terms: `metrics` has `update`, `env_steps` and metric columns."""

    metrics: pd.DataFrame
    config: dict[str, Any]
    env: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    seed: int | None = None
    given: frozenset[str] = frozenset()  # config fields set by [config]: kept as given


@dataclasses.dataclass(frozen=True)
class Conversion:
    """One row of a source's mapping table: their name, jppo's, and the conversion."""

    theirs: str
    ours: str
    how: str


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    title: str
    detect: Callable[[set[str]], bool]
    normalise: Callable[[RawRun, Options], Normalised]
    conversions: tuple[Conversion, ...]
    snippets: Mapping[str, str] = dataclasses.field(default_factory=dict)  # metric -> code
    config_note: str = ""
    # The config fields a source infers from the data rather than reads as a setting,
    # pooled over the seeds of a cell (their metrics), with notes; None: none inferred.
    pool: Callable[[Sequence[Normalised]], tuple[dict[str, Any], list[str]]] | None = None


def series(long: pd.DataFrame, tag: str) -> pd.Series:
    """The tag's values by step (the mean of several values at one step)."""
    rows = long[long["tag"] == tag]
    return rows.groupby("step")["value"].mean().sort_index()


def at_steps(long: pd.DataFrame, tag: str, steps: np.ndarray) -> np.ndarray:
    """The tag's value at each of `steps` (NaN where it was not logged)."""
    return series(long, tag).reindex(steps).to_numpy(np.float64)


def nonfinite_flags(long: pd.DataFrame, tags: tuple[str, ...], steps: np.ndarray) -> np.ndarray:
    """jppo's `nonfinite` flag at each of `steps`, from the losses a trainer logs: 1 where
    one of `tags` was logged NaN or inf there, 0 where they were all logged finite, NaN
    where none was logged. Read from the rows themselves, since `at_steps` averages a
    step's values (skipping NaNs) and gives NaN for a tag not logged: a loss that overflowed
    would otherwise look like a gap, and the divergence finding, which only the flag
    triggers, would never report it. (A table keeps an inf but not a NaN: its NaN cells
    are read as not logged.)"""
    rows = long[long["tag"].isin(tags)]
    bad = pd.Series(~np.isfinite(rows["value"].to_numpy(np.float64)),
                    index=rows["step"].to_numpy()).astype(np.float64)
    return bad.groupby(level=0).max().reindex(steps).to_numpy(np.float64)


def passthrough_tags(tags: set[str], options: Options, claimed: set[str]) -> dict[str, str]:
    """jppo metric -> tag for tags the source does not convert: those named in `--map`,
    and those whose last part is a jppo metric name (`train/grad_norm_value`), in jppo
    units already."""
    found = {}
    for tag in sorted(tags - claimed):
        name = tag.rsplit("/", 1)[-1]
        if name in METRIC_NAMES:
            found[name] = tag
    return found | dict(options.map)


def check_map(options: Options, tags: set[str], path: Path) -> None:
    """A one-line error for a `--map` entry naming a metric or a column that is not there."""
    for ours, theirs in options.map.items():
        if ours not in METRIC_NAMES and ours not in ("env_steps", "update"):
            raise LogError(f"--map {ours}={theirs}: {ours!r} is not a jppo metric; valid: "
                           f"update, env_steps, {', '.join(METRIC_NAMES)}")
        if theirs not in tags:
            raise LogError(f"--map {ours}={theirs}: {path} has no {theirs!r}; it has: "
                           f"{', '.join(sorted(tags))}")


def apply_scale(frame: pd.DataFrame, options: Options) -> pd.DataFrame:
    """Multiply the `[scale]` metrics by their factor (e.g. value_loss = 0.5 for a loss
    logged as the full squared error)."""
    for name, factor in options.scale.items():
        if name not in frame.columns:
            raise LogError(f"[scale] {name}: not a metric of this run; it has: "
                           f"{', '.join(c for c in frame.columns if c != 'update')}")
        frame[name] = frame[name] * float(factor)
    return frame


def first_number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None
