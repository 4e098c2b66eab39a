"""jppo: fully jitted, seed-vectorized PPO on gymnax.

Names are imported on first use, so `jppo.devices.use_host_cores()` (and the
`jppo` command) can set XLA flags before anything starts JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jppo.config import HParams, PPOConfig, make_config, validate_hparams
    from jppo.diagnose import Remedy, Rule, register_rule
    from jppo.experiment import Experiment, default_experiment
    from jppo.experiment import from_dict as experiment_from_dict
    from jppo.experiment import load as load_experiment
    from jppo.runner import ExperimentResult, run, run_experiment
    from jppo.strategies import (
        register_advantage_norm,
        register_value_loss,
        register_value_target,
    )
    from jppo.sweeps import Sweep, sweep
    from jppo.train import Trainer, TrainResult, TrainState, make_train

__version__ = "0.1.0"

_EXPORTS = {
    "HParams": ("jppo.config", "HParams"),
    "PPOConfig": ("jppo.config", "PPOConfig"),
    "make_config": ("jppo.config", "make_config"),
    "validate_hparams": ("jppo.config", "validate_hparams"),
    "Remedy": ("jppo.diagnose", "Remedy"),
    "Rule": ("jppo.diagnose", "Rule"),
    "register_rule": ("jppo.diagnose", "register_rule"),
    "register_advantage_norm": ("jppo.strategies", "register_advantage_norm"),
    "register_value_loss": ("jppo.strategies", "register_value_loss"),
    "register_value_target": ("jppo.strategies", "register_value_target"),
    "Experiment": ("jppo.experiment", "Experiment"),
    "default_experiment": ("jppo.experiment", "default_experiment"),
    "experiment_from_dict": ("jppo.experiment", "from_dict"),
    "load_experiment": ("jppo.experiment", "load"),
    "ExperimentResult": ("jppo.runner", "ExperimentResult"),
    "run": ("jppo.runner", "run"),
    "run_experiment": ("jppo.runner", "run_experiment"),
    "Sweep": ("jppo.sweeps", "Sweep"),
    "sweep": ("jppo.sweeps", "sweep"),
    "Trainer": ("jppo.train", "Trainer"),
    "TrainResult": ("jppo.train", "TrainResult"),
    "TrainState": ("jppo.train", "TrainState"),
    "make_train": ("jppo.train", "make_train"),
}

__all__ = [
    "Experiment",
    "ExperimentResult",
    "HParams",
    "PPOConfig",
    "Remedy",
    "Rule",
    "Sweep",
    "TrainResult",
    "TrainState",
    "Trainer",
    "__version__",
    "default_experiment",
    "experiment_from_dict",
    "load_experiment",
    "make_config",
    "make_train",
    "register_advantage_norm",
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
