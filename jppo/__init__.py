"""jppo: fully jitted, seed-vectorized PPO on gymnax."""

from jppo.config import HParams, PPOConfig, make_config, validate_hparams
from jppo.sweep import Sweep, sweep
from jppo.train import Trainer, TrainResult, TrainState, make_train

__version__ = "0.1.0"

__all__ = [
    "HParams",
    "PPOConfig",
    "Sweep",
    "TrainResult",
    "TrainState",
    "Trainer",
    "__version__",
    "make_config",
    "make_train",
    "sweep",
    "validate_hparams",
]
