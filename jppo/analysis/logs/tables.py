"""Tabular logs: CSV, Parquet and JSON lines files as one wide table (a row per logged
step), and a wide table as the long (tag, step, value) rows every source reads.

W&B's history export is a CSV like any other; its bookkeeping columns (`_step`,
`_runtime`, `_timestamp`) are dropped after `_step` served as the step where nothing
better is logged, and the metric columns keep the trainer's own names (SB3's, CleanRL's),
so the source is detected from them as from TensorBoard tags.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from jppo.analysis.logs.events import LogError

TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json")
WANDB_COLUMNS = ("_step", "_runtime", "_timestamp")


def read_table(path: Path) -> pd.DataFrame:
    """The file's rows; a one-line LogError naming it when it cannot be parsed or is empty."""
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix in (".jsonl", ".json"):
            frame = _read_json_lines(path)
        else:
            frame = pd.read_csv(path)
    except LogError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LogError(f"{path}: cannot be read as {path.suffix[1:]}: {first}") from None
    if frame.empty:
        raise LogError(f"{path}: no rows")
    return frame


def _read_json_lines(path: Path) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise LogError(f"{path}: line {number} is not JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise LogError(f"{path}: line {number} is not a JSON object")
        rows.append(row)
    return pd.DataFrame(rows)


def is_wandb_history(frame: pd.DataFrame) -> bool:
    return "_step" in frame.columns and ("_runtime" in frame.columns
                                         or "_timestamp" in frame.columns)


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
            or pd.api.types.is_bool_dtype(frame[c])]


def long_rows(frame: pd.DataFrame, step: str | None) -> pd.DataFrame:
    """(tag, step, value) rows of every numeric column but the step's, NaNs dropped;
    without a step column the row number is the step."""
    steps = frame[step].to_numpy(np.float64) if step is not None else \
        np.arange(len(frame), dtype=np.float64)
    parts = []
    drop = {step, *WANDB_COLUMNS} if is_wandb_history(frame) else {step}
    for column in numeric_columns(frame):
        if column in drop:
            continue
        values = frame[column].to_numpy(np.float64)
        keep = ~np.isnan(values) & ~np.isnan(steps)
        parts.append(pd.DataFrame({"tag": column, "step": steps[keep], "value": values[keep]}))
    if not parts:
        return pd.DataFrame(columns=["tag", "step", "value"])
    return pd.concat(parts, ignore_index=True)
