"""Live TensorBoard dashboards: per-variant medians and IQRs across seeds, after every chunk.

With `tensorboard = true` in an experiment file (`--tensorboard`,
`jppo.run(..., tensorboard=True)`), the runner hands each chunk's metric
tables to a `Board`, which writes with tensorboardX:

    RUN/tensorboard/<variant>/events.out.tfevents.*    one TensorBoard run per variant

so the variants overlay in every chart of `tensorboard --logdir RUN/tensorboard`.
Tags are `<env>/<metric>/median` and `<env>/<metric>/iqr` (the interquartile
range, q75 - q25, across seeds; NaN seeds, e.g. no finished episode, are left
out and an update where every seed is NaN gets no point). The step of a point
is the env steps each seed has taken after that update (the `env_steps` column
of the metrics table), so runs of different rollout sizes line up.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

BOARD_DIR = "tensorboard"
# The returns and the diagnostics of the plots' diagnostics panel, and the two
# losses and clip fraction that go with them.
METRICS = ("episode_return", "episode_length", "explained_variance", "value_loss",
           "policy_loss", "approx_kl", "clip_fraction", "entropy", "grad_clip_ratio",
           "advantage_std")


def tag_part(env: str) -> str:
    """An env id as one tag part: characters a tag does not take ('/', ':', '+')
    become '_', as tensorboardX itself would replace them (`brax/ant` -> `brax_ant`)."""
    return re.sub(r"[^-\w.]", "_", env)


def median_iqr(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and interquartile range over axis 0 of `(seeds, updates)`, ignoring
    NaN; NaN where a whole column is NaN."""
    values = np.asarray(values, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        low, median, high = np.nanpercentile(values, [25.0, 50.0, 75.0], axis=0)
    return median, high - low


def scalars(frame: pd.DataFrame, metrics: Sequence[str] = METRICS
            ) -> Iterator[tuple[str, float, int]]:
    """`(tag, value, step)` of one (variant, env)'s rows: per update and metric,
    the median and IQR across seeds at the env steps after the update."""
    env = tag_part(str(frame["env"].iloc[0]))
    steps = frame.groupby("update")["env_steps"].first()
    for metric in metrics:
        if metric not in frame.columns:
            continue
        table = frame.pivot(index="seed", columns="update", values=metric)[steps.index]
        median, iqr = median_iqr(table.to_numpy())
        for step, mid, spread in zip(steps.to_numpy(), median, iqr, strict=True):
            if np.isfinite(mid):
                yield f"{env}/{metric}/median", float(mid), int(step)
                yield f"{env}/{metric}/iqr", float(spread), int(step)


class Board:
    """One tensorboardX `SummaryWriter` per variant under `root`, opened on its
    first chunk and flushed after every chunk; `root=None` writes nothing."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._writers: dict[str, Any] = {}

    def write(self, tables: Sequence[pa.Table]) -> None:
        """The aggregates of one chunk's tables (one per variant of a program)."""
        if self.root is None:
            return
        for table in tables:
            frame = table.to_pandas()
            writer = self._writer(str(frame["variant"].iloc[0]))
            for tag, value, step in scalars(frame):
                writer.add_scalar(tag, value, step)
            writer.flush()

    def _writer(self, variant: str) -> Any:
        if variant not in self._writers:
            from tensorboardX import SummaryWriter

            self._writers[variant] = SummaryWriter(logdir=str(self.root / variant))
        return self._writers[variant]

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_board(out: Path | None, enabled: bool, writes: bool = True) -> Board:
    """The run's board: writing to `out/tensorboard` when `enabled` (and this
    process `writes`: process 0 of a multi-host run), else a no-op one.
    Enabled without a run directory is an error, raised before anything runs."""
    if enabled and out is None:
        raise ValueError("tensorboard=True is invalid without a run directory: allowed is "
                         f"an out_dir (the event files go to OUT/{BOARD_DIR}/VARIANT/)")
    return Board(Path(out) / BOARD_DIR if enabled and writes else None)
