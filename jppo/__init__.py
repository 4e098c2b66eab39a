"""jppo: fully jitted, seed-vectorized PPO on gymnax.

Names are imported on first use, so `jppo.runs.devices.use_host_cores()` (and the
`jppo` command) can set XLA flags before anything starts JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jppo.analysis.diagnose import Remedy, Rule, register_rule
    from jppo.analysis.fix import fix
    from jppo.analysis.logs import diagnose_logs
    from jppo.core.config import HParams, PPOConfig, make_config, validate_hparams
    from jppo.core.strategies import (
        register_advantage_norm,
        register_policy_loss,
        register_value_loss,
        register_value_target,
    )
    from jppo.core.train import Trainer, TrainResult, TrainState, make_train
    from jppo.runs.experiment import Experiment, default_experiment
    from jppo.runs.experiment import from_dict as experiment_from_dict
    from jppo.runs.experiment import load as load_experiment
    from jppo.runs.policies import Policy, load_policy
    from jppo.runs.runner import ExperimentResult, run, run_experiment
    from jppo.runs.sweeps import Sweep, sweep

__version__ = "0.1.0"

_EXPORTS = {
    "HParams": ("jppo.core.config", "HParams"),
    "PPOConfig": ("jppo.core.config", "PPOConfig"),
    "make_config": ("jppo.core.config", "make_config"),
    "validate_hparams": ("jppo.core.config", "validate_hparams"),
    "Remedy": ("jppo.analysis.diagnose", "Remedy"),
    "Rule": ("jppo.analysis.diagnose", "Rule"),
    "register_rule": ("jppo.analysis.diagnose", "register_rule"),
    "diagnose_logs": ("jppo.analysis.logs", "diagnose_logs"),
    "fix": ("jppo.analysis.fix", "fix"),
    "register_advantage_norm": ("jppo.core.strategies", "register_advantage_norm"),
    "register_policy_loss": ("jppo.core.strategies", "register_policy_loss"),
    "register_value_loss": ("jppo.core.strategies", "register_value_loss"),
    "register_value_target": ("jppo.core.strategies", "register_value_target"),
    "Experiment": ("jppo.runs.experiment", "Experiment"),
    "default_experiment": ("jppo.runs.experiment", "default_experiment"),
    "experiment_from_dict": ("jppo.runs.experiment", "from_dict"),
    "load_experiment": ("jppo.runs.experiment", "load"),
    "ExperimentResult": ("jppo.runs.runner", "ExperimentResult"),
    "Policy": ("jppo.runs.policies", "Policy"),
    "load_policy": ("jppo.runs.policies", "load_policy"),
    "run": ("jppo.runs.runner", "run"),
    "run_experiment": ("jppo.runs.runner", "run_experiment"),
    "Sweep": ("jppo.runs.sweeps", "Sweep"),
    "sweep": ("jppo.runs.sweeps", "sweep"),
    "Trainer": ("jppo.core.train", "Trainer"),
    "TrainResult": ("jppo.core.train", "TrainResult"),
    "TrainState": ("jppo.core.train", "TrainState"),
    "make_train": ("jppo.core.train", "make_train"),
}

__all__ = [
    "Experiment",
    "ExperimentResult",
    "HParams",
    "PPOConfig",
    "Policy",
    "Remedy",
    "Rule",
    "Sweep",
    "TrainResult",
    "TrainState",
    "Trainer",
    "__version__",
    "default_experiment",
    "diagnose_logs",
    "experiment_from_dict",
    "fix",
    "load_experiment",
    "load_policy",
    "make_config",
    "make_train",
    "register_advantage_norm",
    "register_policy_loss",
    "register_rule",
    "register_value_loss",
    "register_value_target",
    "run",
    "run_experiment",
    "sweep",
    "validate_hparams",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jppo' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
