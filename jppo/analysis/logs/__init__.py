"""Diagnosing PPO runs of other trainers from their logs: Stable-Baselines3, CleanRL,
Brax, W&B history exports and plain tables.

One module per source (`sb3`, `cleanrl`, `brax`, `plain`) turns a run's logs into the
metric table jppo's rules read (one row per update, jppo's names and units, see each
module's CONVERSIONS); `events` and `tables` read the files; `discover` finds the runs
under the paths given and groups them into cells (runs of one configuration are the
seeds of one cell); `diagnose_logs` judges every cell with jppo's rules.
"""

from __future__ import annotations

from jppo.analysis.logs.base import Options, Source
from jppo.analysis.logs.diagnosis import LogDiagnosis, diagnose_logs
from jppo.analysis.logs.discover import (
    SOURCES,
    LogRun,
    assemble,
    find_runs,
    read_options,
)
from jppo.analysis.logs.events import LogError

__all__ = ["SOURCES", "LogDiagnosis", "LogError", "LogRun", "Options", "Source", "assemble",
           "diagnose_logs", "find_runs", "read_options"]
