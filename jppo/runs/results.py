"""The run directory's results: metrics as Parquet, read back as a DataFrame.

Layout of a run directory::

    run.json                  resolved experiment: envs, variants and their configs,
                              seeds, library versions, devices
    metrics/                  one Parquet file per (variant, env, chunk), written
                              atomically after every chunk
    checkpoints/              orbax checkpoints of the full train state
    summary.md, summary.csv   final-return statistics per variant and environment
    plots/*.png               learning curves and the diagnostics panel
    diagnosis.md              the automatic diagnosis

The metrics table is *wide*: one row per (variant, env, seed, update) with the
identifier columns `ID_COLUMNS` followed by one float column per metric (see
`jppo.analysis.metrics.METRIC_DOCS`). Any dataframe library reads the folder:
`pandas.read_parquet(run / "metrics")`, `polars.read_parquet(run / "metrics/*.parquet")`,
or `jppo.runs.results.read_metrics(run)`, which also sorts the rows.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ID_COLUMNS = ("variant", "env", "seed", "update", "env_steps")
METRICS_DIR = "metrics"
RUN_INFO = "run.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`,
    so a reader (or a crash) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, file_mode())  # mkstemp's 0600 would hide results from a group
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def file_mode() -> int:
    """The mode `open` gives a new file: 0666 less the process's umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


# `atomic_write_bytes`' temporary files (mkstemp: the name, a dot, 8 random characters)
_TEMPORARY = re.compile(r"^\..+\.(parquet|json|md|csv)\.[A-Za-z0-9_]{8}$|^\.jppo-write-probe-\d+$")


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the temporary files a killed writer left in a run directory (they
    never hold finished results: those are renamed into place whole)."""
    run_dir = Path(run_dir)
    folders = (run_dir, run_dir / METRICS_DIR, run_dir / "checkpoints")
    stale = [path for folder in folders if folder.is_dir() for path in folder.iterdir()
             if path.is_file() and _TEMPORARY.match(path.name)]
    for path in stale:
        path.unlink()
    return stale


def metrics_table(
    metrics: Mapping[str, np.ndarray],
    *,
    variant: str,
    env: str,
    seeds: Sequence[int],
    first_update: int,
    steps_per_update: int,
    pretrain_steps: int = 0,
) -> pa.Table:
    """`(seeds, updates)` metric arrays -> a wide Arrow table, seed-major rows.

    `first_update` is the 0-based index of the first update in the arrays and
    `steps_per_update` the env steps one update collects per seed, so
    `env_steps` is the number of env steps a seed has taken after that update,
    counting the `pretrain_steps` it took before the first (value pretraining):
    sample efficiency is measured in all the env steps a method consumes.
    """
    names = sorted(metrics)
    num_seeds, num_updates = np.shape(metrics[names[0]])
    if len(seeds) != num_seeds:
        raise ValueError(f"seeds has {len(seeds)} entries for {num_seeds} rows of metrics")
    updates = np.arange(first_update, first_update + num_updates, dtype=np.int64)
    columns: dict[str, Any] = {
        "variant": pa.array([variant] * (num_seeds * num_updates), pa.string()),
        "env": pa.array([env] * (num_seeds * num_updates), pa.string()),
        "seed": np.repeat(np.asarray(seeds, np.int64), num_updates),
        "update": np.tile(updates, num_seeds),
        "env_steps": np.tile(pretrain_steps + (updates + 1) * steps_per_update, num_seeds),
    }
    for name in names:
        columns[name] = np.asarray(metrics[name], np.float32).reshape(-1)
    return pa.table(columns)


def file_part(env: str) -> str:
    """An env id as one file-name part: `brax/ant` -> `brax+ant` (a '/' would
    make a folder; the id itself is a column of the table)."""
    return env.replace("/", "+")


def part_path(run_dir: Path, variant: str, env: str, chunk: int) -> Path:
    return Path(run_dir) / METRICS_DIR / f"{variant}__{file_part(env)}__{chunk:05d}.parquet"


def write_part(run_dir: Path, variant: str, env: str, chunk: int, table: pa.Table) -> Path:
    """Write one chunk's rows atomically; rewriting a chunk replaces it."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    path = part_path(run_dir, variant, env, chunk)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def remove_parts_after(run_dir: Path, variant: str, env: str, chunk: int) -> None:
    """Drop a (variant, env)'s chunks beyond `chunk`: they were written after the
    checkpoint a resume starts from, and will be recomputed."""
    for path in (Path(run_dir) / METRICS_DIR).glob(f"{variant}__{file_part(env)}__*.parquet"):
        if int(path.stem.rsplit("__", 1)[1]) > chunk:
            path.unlink()


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """All metric rows of a run, sorted by (variant, env, seed, update).

    Files are read one by one so a missing metric (e.g. `log_std_mean` for a
    discrete policy next to a continuous one) becomes NaN instead of an error.
    """
    folder = Path(run_dir) / METRICS_DIR
    paths = sorted(folder.glob("*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no metrics in {folder}: is {run_dir} a jppo run directory?")
    return concat_tables([pq.read_table(p) for p in paths])


def concat_tables(tables: Sequence[pa.Table]) -> pd.DataFrame:
    """Metric tables as one DataFrame sorted by (variant, env, seed, update); a
    metric missing from some tables becomes NaN there."""
    frame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    return frame.sort_values(list(ID_COLUMNS[:4]), kind="stable").reset_index(drop=True)


def metric_arrays(frame: pd.DataFrame, variant: str, env: str) -> dict[str, np.ndarray]:
    """The rows of one (variant, env) back as `(seeds, updates)` arrays per metric."""
    rows = frame[(frame["variant"] == variant) & (frame["env"] == env)]
    if rows.empty:
        raise ValueError(f"no rows for variant={variant!r}, env={env!r}")
    rows = rows.sort_values(["seed", "update"])
    num_seeds = rows["seed"].nunique()
    arrays = {}
    for name in rows.columns:
        if name in ID_COLUMNS:
            continue
        arrays[name] = rows[name].to_numpy(np.float64).reshape(num_seeds, -1)
    arrays["env_steps"] = rows["env_steps"].to_numpy(np.int64).reshape(num_seeds, -1)
    return arrays


def groups(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(variant, env) pairs in order of first appearance."""
    pairs = frame[["variant", "env"]].drop_duplicates()
    return [(v, e) for v, e in pairs.itertuples(index=False)]


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_INFO
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a jppo run directory?")
    return json.loads(path.read_text())


def write_run_info(run_dir: Path, info: Mapping[str, Any]) -> None:
    atomic_write_text(Path(run_dir) / RUN_INFO, json.dumps(info, indent=2, default=str))


def planned_updates(info: Mapping[str, Any]) -> dict[str, int]:
    """Updates each variant of a run.json was to run (its recorded config); a
    variant whose record lacks the budget is left out (nothing to compare with)."""
    planned = {}
    for name, body in info.get("variants", {}).items():
        config = body.get("config", {}) if isinstance(body, Mapping) else {}
        if all(key in config for key in ("total_timesteps", "num_envs", "num_steps")):
            planned[name] = int(config["total_timesteps"]) // (
                int(config["num_envs"]) * int(config["num_steps"]))
    return planned


def incomplete_cells(frame: pd.DataFrame, info: Mapping[str, Any]
                     ) -> dict[tuple[str, str], tuple[int, int]]:
    """(variant, env) -> (updates on disk, updates planned), for the cells of a
    run that stopped before its end (an interrupted run not resumed yet)."""
    done = frame.groupby(["variant", "env"], sort=False)["update"].nunique().to_dict()
    found = {}
    for variant, planned in planned_updates(info).items():
        for env in info.get("envs", []):
            updates = int(done.get((variant, env), 0))
            if updates < planned:
                found[(variant, env)] = (updates, planned)
    return found


def incomplete_label(done: int, planned: int) -> str:
    return f"incomplete: {done} of {planned} updates"


def incomplete_lines(cells: Mapping[tuple[str, str], tuple[int, int]]) -> list[str]:
    """One line per incomplete cell, for every report of the run."""
    return [f"{variant} / {env}: {incomplete_label(*counts)} (the run stopped early; "
            "its statistics cover only these updates)"
            for (variant, env), counts in cells.items()]


def fresh_run_dir(name: str, root: Path = Path("runs")) -> Path:
    """runs/NAME-YYYYmmdd-HHMMSS, so a repeated command never meets an old run."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = root / f"{name}-{stamp}", 1
    while path.exists():
        n += 1
        path = root / f"{name}-{stamp}-{n}"
    return path


def jsonable(value: Any) -> Any:
    """Tuples become lists, as after a JSON round trip, so recorded configs
    compare equal to live ones."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
