"""jppo: fully jitted, seed-vectorized PPO on gymnax."""

from jppo.config import HParams, PPOConfig, make_config, validate_hparams
from jppo.experiment import Experiment, default_experiment
from jppo.experiment import from_dict as experiment_from_dict
from jppo.experiment import load as load_experiment
from jppo.runner import ExperimentResult, run, run_experiment
from jppo.sweep import Sweep, sweep
from jppo.train import Trainer, TrainResult, TrainState, make_train

__version__ = "0.1.0"

__all__ = [
    "Experiment",
    "ExperimentResult",
    "HParams",
    "PPOConfig",
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
    "run",
    "run_experiment",
    "sweep",
    "validate_hparams",
]
