"""From paths to cells: the runs under each path (a TensorBoard folder, a table file, a
folder of them), their source (detected from the tags or columns, or named), their
group (the parent folder's name, or a `--group` pattern), and the metrics table of
every (group, env) cell with its seeds.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jppo.analysis.logs import brax, cleanrl, plain, sb3
from jppo.analysis.logs.base import Normalised, Options, RawRun, Source, apply_scale, check_map
from jppo.analysis.logs.events import EVENT_GLOB, LogError, read_event_folder
from jppo.analysis.logs.tables import TABLE_SUFFIXES, long_rows, read_table
from jppo.core.config import CONFIG_FIELDS, PPOConfig, check_value

SOURCES: dict[str, Source] = {s.name: s for s in (sb3.SOURCE, cleanrl.SOURCE, brax.SOURCE,
                                                  plain.SOURCE)}
SOURCE_NAMES = ("auto", *SOURCES, "jppo")
# the step column of a table, by preference: trainers' own counters, W&B's last
TABLE_STEPS = ("time/total_timesteps", "global_step", *brax.STEP_COLUMNS, "update",
               "env_steps", "_step")


@dataclasses.dataclass(frozen=True)
class LogRun:
    """One run: its logs, the source that reads them, its group and normalised metrics."""

    path: Path
    source: str
    group: str
    normalised: Normalised


def check_source(source: str) -> None:
    if source not in SOURCE_NAMES:
        raise LogError(f"--source {source!r} is not a source; valid: {', '.join(SOURCE_NAMES)}")


def read_options(map_pairs: Sequence[str] = (), map_file: str | Path | None = None,
                 env: str | None = None) -> Options:
    """`--map OURS=THEIRS` pairs over the TOML's `[map]`, with its `[scale]`, `[config]`
    and `[source]` tables."""
    data: dict[str, Any] = {}
    if map_file is not None:
        try:
            data = tomllib.loads(Path(map_file).read_text())
        except tomllib.TOMLDecodeError as error:
            raise LogError(f"{map_file}: not valid TOML ({error})") from None
        unknown = set(data) - {"map", "scale", "config", "source"}
        if unknown:
            raise LogError(f"{map_file}: unknown table(s) {sorted(unknown)}; valid: map, "
                           "scale, config, source")
    pairs = dict(data.get("map", {}))
    for pair in map_pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours or not theirs:
            raise LogError(f"--map {pair!r}: expected OURS=THEIRS, e.g. "
                           "value_loss=train/critic_loss")
        pairs[ours.strip()] = theirs.strip()
    table = dict(data.get("config", {}))
    groups = {name: dict(value) for name, value in table.items() if isinstance(value, dict)}
    config = {name: value for name, value in table.items() if name not in groups}
    for where, fields in [("[config]", config)] + [(f"[config.{g}]", f)
                                                   for g, f in groups.items()]:
        check_config_table(fields, f"{map_file}: {where}")
    source = dict(data.get("source", {}))
    return Options(pairs, dict(data.get("scale", {})), config, source,
                   env or source.pop("env", None), groups)


def check_config_table(fields: Mapping[str, Any], where: str) -> None:
    """A one-line error for a [config] field PPOConfig lacks or a value outside its range."""
    unknown = sorted(set(fields) - set(CONFIG_FIELDS))
    if unknown:
        raise LogError(f"{where} {unknown[0]!r} is not a PPOConfig field; valid: "
                       f"{', '.join(CONFIG_FIELDS)}")
    for name, value in fields.items():
        try:
            check_value(name, value)
        except ValueError as error:
            raise LogError(f"{where} {error}") from None


def check_groups(options: Options, groups: Sequence[str]) -> None:
    """Every `[config.GROUP]` names a group of the runs (a typo would be ignored), and
    holds PPOConfig fields in range (Options built in Python skip read_options)."""
    for group, fields in options.group_config.items():
        check_config_table(fields, f"[config.{group}]")
        if group not in groups:
            raise LogError(f"[config.{group}] names no group of these runs; groups: "
                           f"{', '.join(groups)}")


# ------------------------------------------------------------------- finding runs


def find_runs(path: Path) -> list[Path]:
    """The run folders (holding event files) and table files under `path`; a folder
    with both event files and SB3's progress.csv is one run, read from the csv."""
    if not path.exists():
        raise LogError(f"{path}: no such file or folder")
    if path.is_file():
        return [path.parent if path.name.startswith("events.out.tfevents") else path]
    found: list[Path] = []
    for folder in sorted({p.parent for p in path.rglob(EVENT_GLOB)}):
        progress = folder / "progress.csv"
        found.append(progress if progress.exists() else folder)
    tables = [p for p in sorted(path.rglob("*")) if p.suffix in TABLE_SUFFIXES and p.is_file()
              and p.parent not in {f if f.is_dir() else f.parent for f in found}]
    runs = sorted(found + tables)
    if not runs:
        raise LogError(f"{path}: no logs found (TensorBoard {EVENT_GLOB}, or "
                       f"{', '.join('*' + s for s in TABLE_SUFFIXES)})")
    return runs


def read_raw(run: Path) -> RawRun:
    if run.is_dir():
        long, texts = read_event_folder(run)
        return RawRun(run, long, texts, "tensorboard")
    frame = read_table(run)
    step = next((c for c in TABLE_STEPS if c in frame.columns), None)
    long = long_rows(frame, step)
    if long.empty:
        raise LogError(f"{run}: no numeric columns")
    return RawRun(run, long, {}, "table")


def detect_source(raw: RawRun) -> str:
    tags = raw.tags
    for name in ("sb3", "cleanrl", "brax", "csv"):
        if SOURCES[name].detect(tags):
            return name
    raise LogError(f"{raw.path}: no known metric names (SB3 train/*, CleanRL losses/*, Brax "
                   f"training/*, or jppo's); pass --source and --map OURS=THEIRS; it has: "
                   f"{', '.join(sorted(tags)[:20])}")


def group_of(run: Path, pattern: str | None) -> str:
    """The `--group` pattern's first group (or match) in the run's path, else the name
    of the folder above the run's own (for SB3's progress.csv, above the csv's folder;
    for any other table file, its folder)."""
    own = run.parent if run.name == "progress.csv" else run
    if pattern is not None:
        found = re.search(pattern, str(own))
        if found is None:
            raise LogError(f"--group {pattern!r} does not match {own}")
        return found.group(1) if found.groups() else found.group(0)
    return own.resolve().parent.name


def representable(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The trainer's settings that jppo's config can hold, and a note per setting left
    out: one outside jppo's range (a negative entropy coefficient or gamma 0, which
    CleanRL and SB3 accept) is left at jppo's default instead of failing the diagnosis;
    no rule's test reads those two, and the note says which value was read."""
    kept, notes = {}, []
    for name, value in config.items():
        try:
            check_value(name, value)
        except KeyError:
            continue
        except ValueError:
            notes.append(f"{name} = {value!r} (read from the logs) is outside jppo's range: "
                         f"judged with jppo's default {getattr(PPOConfig(), name)!r}")
            continue
        kept[name] = value
    return kept, notes


def load_run(run: Path, source: str, options: Options,
             pattern: str | None) -> LogRun:
    raw = read_raw(run)
    name = detect_source(raw) if source == "auto" else source
    check_map(options, raw.tags, run)
    normalised = SOURCES[name].normalise(raw, options)
    normalised.metrics = apply_scale(normalised.metrics, options)
    group = group_of(run, pattern)
    given = options.config_of(group)
    kept, notes = representable(normalised.config)
    normalised.config = kept | given
    normalised.notes += [n for n in notes if n.split(" ", 1)[0] not in given]
    normalised.given = frozenset(given)
    if normalised.metrics.empty:
        raise LogError(f"{run}: no updates logged")
    return LogRun(run, name, group, normalised)


# ----------------------------------------------------------------- the cells


def assemble(runs: Sequence[LogRun]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The metrics table of every (group, env) cell, seeds numbered in path order and
    padded with NaN to the cell's longest run, and a run.json-like info (configs)."""
    cells: dict[tuple[str, str], list[LogRun]] = {}
    for run in runs:
        env = run.normalised.env or "env"
        cells.setdefault((run.group, env), []).append(run)
    parts, variants, envs = [], {}, []
    for (group, env), members in cells.items():
        parts += _cell_rows(group, env, members)
        config, notes = cell_config(members)
        variants[group] = {"config": config, "source": members[0].source,
                           "runs": [str(m.path) for m in members], "notes": notes}
        envs += [] if env in envs else [env]
    frame = pd.concat(parts, ignore_index=True)
    return frame, {"name": "logs", "envs": envs, "variants": variants}


def cell_config(members: Sequence[LogRun]) -> tuple[dict[str, Any], list[str]]:
    """One config for the seeds of a cell, and notes: the fields a source infers from
    the data pooled over all seeds (`Source.pool`: SB3's epochs), a [config] field as
    given; any other field on which the seeds disagree is seed 0's, and a note names
    each seed's value (runs grouped into one cell that are not one configuration)."""
    source = SOURCES.get(members[0].source)
    pooled, notes = source.pool([m.normalised for m in members]) if source and \
        source.pool else ({}, [])
    pooled = {k: v for k, v in pooled.items() if k not in members[0].normalised.given}
    configs = [m.normalised.config for m in members]
    config = dict(configs[0]) | pooled
    for name in dict.fromkeys(k for c in configs for k in c):
        if name in pooled:
            continue
        values = [c.get(name) for c in configs]
        if any(v != values[0] for v in values[1:]):  # seed 0's value stays, or the default
            notes.append(f"the seeds disagree on {name} ("
                         + ", ".join(f"seed {i}: {v!r}" for i, v in enumerate(values))
                         + f"): judged with seed 0's {values[0]!r}")
    return config, notes


def _cell_rows(group: str, env: str, members: Sequence[LogRun]) -> list[pd.DataFrame]:
    longest = max(len(m.normalised.metrics) for m in members)
    steps = max((m.normalised.metrics for m in members), key=len)["env_steps"].to_numpy()
    rows = []
    for seed, member in enumerate(members):
        metrics = member.normalised.metrics.set_index("update").reindex(range(longest))
        metrics["env_steps"] = np.where(np.isfinite(metrics["env_steps"]),
                                        metrics["env_steps"], steps).astype(np.int64)
        metrics = metrics.reset_index()
        metrics.insert(0, "seed", seed)
        metrics.insert(0, "env", env)
        metrics.insert(0, "variant", group)
        rows.append(metrics)
    return rows


def runs_under(paths: Sequence[str | Path], source: str, options: Options,
               pattern: str | None) -> list[LogRun]:
    check_source(source)
    runs = []
    for path in map(Path, paths):
        runs += [load_run(run, source, options, pattern) for run in find_runs(path)]
    return runs


def seed_lines(info: Mapping[str, Any]) -> list[str]:
    """'GROUP: seed 0 = PATH, seed 1 = PATH' per cell: which run each seed number is."""
    return [f"{group}: " + ", ".join(f"seed {i} = {path}" for i, path in enumerate(v["runs"]))
            for group, v in info["variants"].items()]
