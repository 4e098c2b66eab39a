"""A plain table of one row per update, for any trainer: columns in jppo's metric names
and units (METRIC_DOCS), or renamed by `--map OURS=THEIRS` / the `[map]` TOML table and
rescaled by `[scale]`. One file per run (seed); optional columns: `update` (else the
row order) and `env_steps` (else the update).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jppo.analysis.logs.base import (
    METRIC_NAMES,
    Conversion,
    Normalised,
    Options,
    RawRun,
    Source,
    passthrough_tags,
    series,
)
from jppo.analysis.metrics import METRIC_DOCS

CONVERSIONS = (
    Conversion("NAME (a jppo metric name)", "NAME", "as is: jppo's units (value_loss = 0.5 x "
               "squared error, entropy positive, approx_kl by k3)"),
    Conversion("THEIRS with --map OURS=THEIRS", "OURS", "as is, x the [scale] factor of OURS"),
    Conversion("update / env_steps / step", "update, env_steps", "the row's update; without "
               "one, the row order"),
)
SNIPPETS = {name: f"# log one column named {name} per update: {doc}\n"
            for name, doc in METRIC_DOCS.items()}
STEP_COLUMNS = ("update", "env_steps", "step", "global_step")


def detect(tags: set[str]) -> bool:
    return bool(tags & set(METRIC_NAMES))


def normalise(raw: RawRun, options: Options) -> Normalised:
    """The mapped and jppo-named columns, one row per logged step."""
    long = raw.long
    steps = np.sort(long["step"].unique())
    columns: dict[str, np.ndarray] = {"update": np.arange(len(steps))}
    names = passthrough_tags(raw.tags, options, set())
    env_steps = names.pop("env_steps", "env_steps" if "env_steps" in raw.tags else None)
    names.pop("update", None)
    columns["env_steps"] = steps if env_steps is None else \
        series(long, env_steps).reindex(steps).to_numpy(np.float64)
    for name, tag in names.items():
        columns[name] = series(long, tag).reindex(steps).to_numpy(np.float64)
    frame = pd.DataFrame(columns)
    return Normalised(frame, dict(options.config), options.env)


SOURCE = Source("csv", "a plain CSV / Parquet table (jppo names, or --map)", detect,
                normalise, CONVERSIONS, SNIPPETS,
                config_note="jppo's PPOConfig defaults, with the [config] table's fields")
