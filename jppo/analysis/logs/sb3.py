"""Stable-Baselines3 PPO: its TensorBoard folders and `progress.csv`.

SB3 dumps its logger once per rollout (`log_interval` 1), after collecting the rollout
and *before* training on it: a dump holds that rollout's `rollout/*` and `time/*`
values and the `train/*` values of the update on the rollout before. So update u (on
rollout u) takes its `rollout/*` from dump u and its `train/*` from dump u + 1, and the
last rollout's update, never dumped, is not in the logs. `train/*` are means over all
the update's minibatches and epochs, except `train/approx_kl` (its last epoch's
minibatches) and `train/loss` (its last minibatch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from jppo.analysis.logs.base import (
    Conversion,
    Normalised,
    Options,
    RawRun,
    Source,
    at_steps,
    nonfinite_flags,
    passthrough_tags,
)
from jppo.analysis.logs.events import LogError

# the losses (and the callback's gradient norm) whose NaN or inf is jppo's `nonfinite`
LOSS_TAGS = ("train/value_loss", "train/policy_gradient_loss", "train/entropy_loss",
             "train/approx_kl", "train/loss", "train/grad_norm")
STEP_COLUMN = "time/total_timesteps"  # progress.csv; TensorBoard's step is the same count
MARKERS = ("train/policy_gradient_loss", "train/entropy_loss", "rollout/ep_rew_mean")
DEFAULTS = {"lr": 3e-4, "update_epochs": 10, "num_minibatches": 32, "clip_eps": 0.2,
            "ent_coef": 0.0, "vf_coef": 0.5, "max_grad_norm": 0.5, "adam_eps": 1e-5,
            "gamma": 0.99, "gae_lambda": 0.95, "value_loss": "mse", "grad_clip": "global",
            "advantage_norm": "minibatch", "lr_schedule": "constant", "torso_hidden": ()}

CONVERSIONS = (
    Conversion("train/value_loss", "value_loss", "x 0.5: SB3 logs the mean squared error "
               "F.mse_loss(returns, values), jppo 0.5 x squared error"),
    Conversion("train/policy_gradient_loss", "policy_loss", "as is"),
    Conversion("train/entropy_loss", "entropy", "x -1: SB3's entropy loss is minus the mean "
               "entropy"),
    Conversion("train/approx_kl", "approx_kl", "as is (k3 estimator, mean over the last "
               "epoch's minibatches)"),
    Conversion("train/clip_fraction", "clip_fraction", "as is"),
    Conversion("train/explained_variance", "explained_variance", "as is (rollout values vs "
               "returns, before the update)"),
    Conversion("train/std", "log_std_mean", "log: SB3 logs mean(exp(log_std)); exact for one "
               "action dimension, an upper bound (Jensen) otherwise"),
    Conversion("train/learning_rate", "lr_policy, lr_value", "as is (one optimizer)"),
    Conversion("train/n_updates", "epochs_completed", "difference between dumps "
               "(progress.csv only: SB3 keeps it out of TensorBoard): the epochs run, the "
               "one target_kl cut included (SB3 >= 1.8; before, n_epochs cut or not)"),
    Conversion("(most epochs_completed of any seed)", "config update_epochs, kl_early_stop",
               "update_epochs: the most epochs any update of the cell's seeds ran; "
               "kl_early_stop: some update ran fewer"),
    Conversion("train/clip_range, train/clip_range_vf", "config clip_eps, value_clip_eps",
               "last value; clip_range_vf also sets value_loss = clipped"),
    Conversion("(train/value_loss, policy_gradient_loss, entropy_loss, approx_kl, loss, "
               "grad_norm)", "nonfinite", "1 where one of them was logged inf (progress.csv: "
               "its NaN cells read as not logged) or NaN (TensorBoard), else 0"),
    Conversion("rollout/ep_rew_mean", "episode_return", "as is: the mean over the last 100 "
               "episodes (stats_window_size), smoother than jppo's per-update mean"),
    Conversion("rollout/ep_len_mean", "episode_length", "as is (same window)"),
    Conversion("time/total_timesteps (TensorBoard: the step)", "env_steps", "as is: env steps "
               "over all envs after the rollout"),
    Conversion("train/NAME, rollout/NAME", "NAME", "any jppo metric name logged by a "
               "callback, in jppo units (train/: aligned as train/*, rollout/: as rollout/*)"),
)

GRADIENTS = '''\
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

class JppoDiagnostics(BaseCallback):
    """Logs what jppo's diagnosis reads beyond SB3's own logs: per-head pre-clip
    gradient norms, the clip ratio and the rollout's target statistics."""

    def _on_training_start(self):
        self.clip = clip = th.nn.utils.clip_grad_norm_
        policy = self.model.policy
        heads = {"value": [*policy.mlp_extractor.value_net.parameters(),
                           *policy.value_net.parameters()],
                 "policy": [*policy.mlp_extractor.policy_net.parameters(),
                            *policy.action_net.parameters()]}

        def logged_clip(parameters, max_norm, *args, **kwargs):
            for head, params in heads.items():
                norms = [p.grad.norm() for p in params if p.grad is not None]
                if norms:
                    self.logger.record_mean(f"train/grad_norm_{head}",
                                            th.stack(norms).norm().item())
            total = clip(parameters, max_norm, *args, **kwargs)
            self.logger.record_mean("train/grad_norm", total.item())
            self.logger.record_mean("train/grad_clip_ratio", total.item() / max_norm)
            return total

        th.nn.utils.clip_grad_norm_ = logged_clip

    def _on_training_end(self):
        th.nn.utils.clip_grad_norm_ = self.clip

    def _on_rollout_end(self):
        buffer = self.model.rollout_buffer
        self.logger.record("rollout/target_mean", float(buffer.returns.mean()))
        self.logger.record("rollout/target_std", float(buffer.returns.std()))
        self.logger.record("rollout/target_abs_max", float(abs(buffer.returns).max()))
        self.logger.record("rollout/value_mean", float(buffer.values.mean()))
        self.logger.record("rollout/advantage_std", float(buffer.advantages.std()))

    def _on_step(self):
        return True

# model.learn(total_timesteps, callback=JppoDiagnostics())
'''
SNIPPETS = {name: GRADIENTS for name in (
    "grad_norm", "grad_norm_value", "grad_norm_policy", "grad_clip_ratio", "target_mean",
    "target_std", "target_abs_max", "value_mean", "advantage_std")} | {
    "epochs_completed": "# epochs_completed: log to progress.csv as well (SB3 keeps "
    "train/n_updates out of TensorBoard)\nfrom stable_baselines3.common.logger import "
    "configure\nmodel.set_logger(configure(folder, [\"csv\", \"tensorboard\"]))\n"}


def detect(tags: set[str]) -> bool:
    return any(tag in tags for tag in MARKERS)


def _dump_steps(raw: RawRun) -> np.ndarray:
    steps = np.sort(raw.long["step"].unique())
    if len(steps) < 2:
        raise LogError(f"{raw.path}: SB3 logs {len(steps)} dump(s); a logged update takes two "
                       "(its train/* values come with the next rollout's dump)")
    return steps


def normalise(raw: RawRun, options: Options) -> Normalised:
    """Per update: train/* from the next dump, rollout/* and the step from this one."""
    long, steps = raw.long, _dump_steps(raw)
    train_steps, own = steps[1:], steps[:-1]  # update u: rollout dump u, train dump u + 1
    columns: dict[str, np.ndarray] = {"update": np.arange(len(own)), "env_steps": own}

    def train(tag: str) -> np.ndarray:
        return at_steps(long, tag, train_steps)

    columns["value_loss"] = 0.5 * train("train/value_loss")
    columns["policy_loss"] = train("train/policy_gradient_loss")
    columns["entropy"] = -train("train/entropy_loss")
    columns["approx_kl"] = train("train/approx_kl")
    columns["clip_fraction"] = train("train/clip_fraction")
    columns["explained_variance"] = train("train/explained_variance")
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["log_std_mean"] = np.log(train("train/std"))
    columns["lr_policy"] = columns["lr_value"] = train("train/learning_rate")
    counter = at_steps(long, "train/n_updates", train_steps)
    columns["epochs_completed"] = np.diff(counter, prepend=0.0)
    columns["nonfinite"] = nonfinite_flags(long, LOSS_TAGS, train_steps)
    columns["episode_return"] = at_steps(long, "rollout/ep_rew_mean", own)
    columns["episode_length"] = at_steps(long, "rollout/ep_len_mean", own)
    claimed = {c.theirs for c in CONVERSIONS} | {"train/loss", "time/fps", "train/clip_range",
                                                 "train/clip_range_vf", "train/n_updates"}
    for name, tag in passthrough_tags(raw.tags, options, claimed).items():
        columns[name] = at_steps(long, tag, own if tag.startswith("rollout/") else train_steps)
    epochs = columns["epochs_completed"]
    return Normalised(pd.DataFrame(columns), _config(raw, epochs), options.env)


EPOCH_FIELDS = ("update_epochs", "kl_early_stop")
NO_COUNTER = ("no train/n_updates (SB3 keeps it out of TensorBoard): the epochs run are not "
              "logged, so update_epochs is SB3's default 10 without early stopping "
              "(kl_cut_epochs not applicable); log progress.csv as well, or set "
              "update_epochs and kl_early_stop in the [config] table of --map-file")


def pool(runs: Sequence[Normalised]) -> tuple[dict, list[str]]:
    """A cell's update_epochs and kl_early_stop from the epoch counts of all its seeds.

    SB3 >= 1.8 (stable-baselines3 PR #1311; 2.9.2 made the fixtures) adds 1 to
    n_updates per epoch it ran, the one the KL stop broke in included; before, it added
    n_epochs cut or not. So the increment is the epochs run, and n_epochs (logged
    nowhere) is at least the most any update of any seed ran: one seed's counts can
    make a cut look like the plan (sb3_target_kl_small: 8 at most on one seed, 10 on
    another). An update that ran fewer than that was cut by target_kl."""
    if all(field in runs[0].given for field in EPOCH_FIELDS):
        return {}, []
    counts = np.concatenate([r.metrics["epochs_completed"].to_numpy(np.float64)
                             for r in runs])
    finite = counts[np.isfinite(counts)]
    if not finite.size:
        return {}, [NO_COUNTER]
    planned = int(finite.max())
    config = {"update_epochs": planned, "kl_early_stop": bool(finite.min() < planned)}
    return config, _constant_epochs_note(finite)


def _constant_epochs_note(finite: np.ndarray) -> list[str]:
    """Where every update of every seed ran the same count, a target_kl that cut each
    update at that epoch reads the same as n_epochs = that count without early stopping
    (SB3 >= 1.8 counts the epochs run; before 1.8 it counted n_epochs, cut or not), so
    the report says what it assumed and how to tell it otherwise (below SB3's default
    n_epochs only: at or above it nothing was cut)."""
    if finite.size < 2 or finite.min() < finite.max() or finite[0] >= DEFAULTS["update_epochs"]:
        return []
    count = int(finite[0])
    return [f"every update of every seed ran {count} epoch(s): read as update_epochs = "
            f"{count} without early stopping (kl_cut_epochs not applicable); SB3 logs "
            "neither n_epochs nor target_kl, and its n_updates counts the epochs run, so a "
            "target_kl that cut every update at that epoch reads the same: set "
            "update_epochs and kl_early_stop = true in the [config] table of --map-file"]


def _config(raw: RawRun, epochs: np.ndarray) -> dict:
    """SB3's PPO defaults, with what the logs tell: the clip ranges and, from the epochs
    counter, update_epochs and whether target_kl cut epochs."""
    config = dict(DEFAULTS)
    tags = raw.tags
    for tag, field in (("train/clip_range", "clip_eps"), ("train/clip_range_vf",
                                                          "value_clip_eps")):
        if tag in tags:
            config[field] = float(raw.long[raw.long["tag"] == tag]["value"].iloc[-1])
    if "train/clip_range_vf" in tags:
        config["value_loss"] = "clipped"
    finite = epochs[np.isfinite(epochs)]
    if finite.size:
        config["update_epochs"] = int(finite.max())
        config["kl_early_stop"] = bool(finite.min() < finite.max())
    lr = raw.long[raw.long["tag"] == "train/learning_rate"]["value"]
    if len(lr) and not math.isclose(lr.iloc[0], lr.iloc[-1]):
        config["lr_schedule"] = "linear"
    return config


SOURCE = Source(
    "sb3", "Stable-Baselines3 PPO (TensorBoard folder or progress.csv)", detect, normalise,
    CONVERSIONS, SNIPPETS,
    config_note="SB3's PPO defaults (MlpPolicy: separate 64x64 networks, one Adam with "
    "eps 1e-5, one global clip at max_grad_norm 0.5, advantages normalized per minibatch)",
    pool=pool,
)
