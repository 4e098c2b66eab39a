"""Scoring a diagnosis against labels fixed before it ran.

A benchmark run is one (variant, env) cell with several seeds. Its `label` is
the failure mode its configuration injects (or "healthy"), and `also` the modes
that injection causes by mechanism as well, declared with the label. Pure
functions over `Scored` rows, so they can be checked against a hand count:

* mode m is a true positive on a run when m fired and m is its label, a false
  positive when m fired and m is neither its label nor in its `also`;
* recall(m) = runs labelled m on which m fired / runs labelled m;
* precision(m) = TP / (TP + FP) (NaN when m never fired);
* false_alarm_rate = healthy runs with any finding fired / healthy runs;
* the confusion table counts, per label (row), the runs on which each mode fired
  (column), plus a "none" column for runs where nothing fired.

Scored on root causes (`root_scored`, the benchmark's headline), `fired` holds a
run's root causes only and `also` is empty: a consequence named as the cause is a
false positive. Each split (development, test) is scored on its own runs
(`score_splits`).

The injection check is independent of the diagnosis and the same for every
injected run: an injection is valid when its final training return falls short
of the worst healthy run on the same environment by at least INJECTION_DEFICIT
of the learning range (from the untrained policy's return to that healthy
return), or is not finite. An injection that leaves the return where healthy
runs end did not produce a failure; recall is reported over all labelled runs
and over the valid ones.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

HEALTHY = "healthy"
NONE_FIRED = "none"
INJECTION_DEFICIT = 0.1  # of the learning range below the worst healthy run: a failure


class Scored(NamedTuple):
    """One run: what it was labelled before the diagnosis, what fired, and whether
    its injection passed the injection check (healthy runs: True)."""

    label: str
    also: frozenset[str]
    fired: frozenset[str]
    valid: bool = True


def scored(label: str, also: Iterable[str], fired: Iterable[str], valid: bool = True
           ) -> Scored:
    return Scored(label, frozenset(also), frozenset(fired), valid)


def injection_deficit(final: float, healthy_finals: Sequence[float], start: float) -> float:
    """How far below the worst healthy run on its environment a run ends, as a
    fraction of the learning range (start: the untrained policy's return); inf
    for a return that is not finite, NaN without a healthy run to compare with."""
    if not math.isfinite(final):
        return math.inf
    worst = min(healthy_finals, default=math.nan)
    if not worst > start:
        return math.nan
    return (worst - final) / (worst - start)


def injection_valid(deficit: float) -> bool:
    """The injection produced a failure: its run ends INJECTION_DEFICIT of the
    learning range or more below every healthy run (or not finite)."""
    return deficit >= INJECTION_DEFICIT


def root_scored(label: str, roots: Iterable[str], valid: bool = True) -> Scored:
    """A run scored on its root causes alone: no `also` excuses a root that is not the
    label (a consequence named as the cause sends the fix after the wrong remedy)."""
    return Scored(label, frozenset(), frozenset(roots), valid)


def mode_counts(runs: Sequence[Scored], mode: str) -> dict[str, Any]:
    """Counts, precision and recall of one mode over the runs."""
    labelled = [r for r in runs if r.label == mode]
    valid = [r for r in labelled if r.valid]
    tp = sum(mode in r.fired for r in labelled)
    tp_valid = sum(mode in r.fired for r in valid)
    fp = sum(mode in r.fired and r.label != mode and mode not in r.also for r in runs)
    explained = sum(mode in r.fired and r.label != mode and mode in r.also for r in runs)
    return {"labelled": len(labelled), "true_positives": tp, "false_positives": fp,
            "fired_where_also": explained, "missed": len(labelled) - tp,
            "recall": tp / len(labelled) if labelled else math.nan,
            "precision": tp / (tp + fp) if tp + fp else math.nan,
            "valid_injections": len(valid),
            "recall_valid": tp_valid / len(valid) if valid else math.nan}


def false_alarm_rate(runs: Sequence[Scored]) -> float:
    healthy = [r for r in runs if r.label == HEALTHY]
    return sum(bool(r.fired) for r in healthy) / len(healthy) if healthy else math.nan


def confusion(runs: Sequence[Scored], modes: Sequence[str]) -> dict[str, dict[str, int]]:
    """label -> {fired mode (or "none") -> runs}, rows and columns in `modes` order
    (healthy first), every cell present."""
    labels = [HEALTHY, *modes]
    table = {label: dict.fromkeys([*modes, NONE_FIRED], 0) for label in labels}
    for run in runs:
        row = table.setdefault(run.label, dict.fromkeys([*modes, NONE_FIRED], 0))
        for mode in run.fired:
            row[mode] = row.get(mode, 0) + 1
        if not run.fired:
            row[NONE_FIRED] += 1
    return table


def score(runs: Sequence[Scored], modes: Sequence[str]) -> dict[str, Any]:
    """Everything results.json holds about the scores."""
    return {"runs": len(runs), "healthy_runs": sum(r.label == HEALTHY for r in runs),
            "false_alarm_rate": false_alarm_rate(runs),
            "modes": {mode: mode_counts(runs, mode) for mode in modes},
            "confusion": confusion(runs, modes)}


def score_splits(splits: Mapping[str, Sequence[Scored]], modes: Sequence[str]
                 ) -> dict[str, dict[str, Any]]:
    """Each split scored on its own runs (a development split's runs never enter the
    test split's figures): split name -> `score`."""
    return {name: score(runs, modes) for name, runs in splits.items()}


# ----------------------------------------------------------------- labels file


class Label(NamedTuple):
    label: str
    also: tuple[str, ...]
    why: str


def read_labels(path: str | Path) -> dict[str, Label]:
    """labels.toml: `[variants.NAME]` with `label`, optional `also` and `why`."""
    data = tomllib.loads(Path(path).read_text())
    out = {}
    for name, body in data["variants"].items():
        unknown = set(body) - {"label", "also", "why"}
        if unknown or "label" not in body:
            raise ValueError(f"labels: variants.{name} must have label (and optional also, "
                             f"why); got {sorted(body)}")
        out[name] = Label(body["label"], tuple(body.get("also", ())), body.get("why", ""))
    return out


def check_labels(labels: Mapping[str, Label], modes: Sequence[str]) -> None:
    """Every label and `also` entry names a mode (or healthy), each `also` has a reason."""
    for name, entry in labels.items():
        if entry.label != HEALTHY and entry.label not in modes:
            raise ValueError(f"labels: variants.{name}.label={entry.label!r} is not a mode; "
                             f"allowed: {HEALTHY}, {', '.join(modes)}")
        for mode in entry.also:
            if mode not in modes or mode == entry.label:
                raise ValueError(f"labels: variants.{name}.also has {mode!r}; allowed: "
                                 "modes other than the label")
        if entry.also and not entry.why:
            raise ValueError(f"labels: variants.{name} declares also= without a why")
