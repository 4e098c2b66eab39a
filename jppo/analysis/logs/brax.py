"""Brax PPO (`brax.training.agents.ppo.train`): the metrics its `progress_fn(num_steps,
metrics)` receives, saved one call per line as JSON lines or as CSV rows (with
`num_steps`).

Brax calls `progress_fn` once before training (an evaluation only, dropped here) and
after every training epoch; each such call is one update here, its `training/*` values
means over the epoch's SGD steps. Brax's losses carry their coefficients: `v_loss` is
0.5 x vf_loss_coefficient x the squared error, `entropy_loss` is -entropy_cost x the
entropy; both coefficients are the [source] table's (Brax's defaults otherwise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jppo.analysis.logs.base import (
    Conversion,
    Normalised,
    Options,
    RawRun,
    Source,
    at_steps,
    passthrough_tags,
)

STEP_COLUMNS = ("num_steps", "step", "steps")
MARKERS = ("training/v_loss", "training/entropy_loss", "training/policy_loss")
SETTINGS = {"vf_loss_coefficient": 0.5, "entropy_cost": 1e-4}
DEFAULTS = {"clip_eps": 0.3, "ent_coef": 1e-4, "vf_coef": 0.5, "update_epochs": 2,
            "num_minibatches": 16, "max_grad_norm": float("inf"), "adam_eps": 1e-8,
            "value_loss": "mse", "grad_clip": "global", "advantage_norm": "minibatch",
            "lr_schedule": "constant", "torso_hidden": ()}

CONVERSIONS = (
    Conversion("training/v_loss", "value_loss", "/ vf_loss_coefficient (default 0.5): Brax's "
               "is 0.5 x vf_loss_coefficient x squared error"),
    Conversion("training/entropy_loss", "entropy", "/ -entropy_cost (default 1e-4)"),
    Conversion("training/policy_loss", "policy_loss", "as is"),
    Conversion("training/kl_mean", "approx_kl", "as is: the analytic KL(new || old), where "
               "jppo estimates KL(old || new) (k3); equal to second order"),
    Conversion("training/policy_dist_mean_std", "log_std_mean", "log of the mean std (an "
               "upper bound on the mean log-std)"),
    Conversion("training/learning_rate", "lr_policy, lr_value", "as is"),
    Conversion("eval/episode_reward", "episode_return", "as is: Brax's evaluation samples "
               "actions unless deterministic_eval (then set episode_is_greedy = true in "
               "[source]: it is read as eval_return)"),
    Conversion("eval/avg_episode_length", "episode_length", "as is"),
    Conversion("num_steps", "env_steps", "as is"),
    Conversion("training/NAME", "NAME", "any jppo metric name, in jppo units"),
)

SNIPPETS = {name: '''\
# Brax's PPO does not expose per-head gradients or the rollout's targets to progress_fn;
# they need a change in brax/training/agents/ppo/losses.py: return e.g.
#   'target_std': jnp.std(gae_returns), 'target_mean': jnp.mean(gae_returns),
#   'target_abs_max': jnp.max(jnp.abs(gae_returns)), 'value_mean': jnp.mean(baseline)
# in its metrics dict; they then reach progress_fn as training/NAME.
''' for name in ("grad_norm", "grad_norm_value", "grad_norm_policy", "grad_clip_ratio",
                 "target_mean", "target_std", "target_abs_max", "value_mean",
                 "advantage_std", "clip_fraction", "explained_variance")}


def detect(tags: set[str]) -> bool:
    return any(tag in tags for tag in MARKERS)


def normalise(raw: RawRun, options: Options) -> Normalised:
    long = raw.long
    steps = np.sort(long[long["tag"].isin(MARKERS)]["step"].unique())
    settings = SETTINGS | dict(options.settings)
    columns: dict[str, np.ndarray] = {"update": np.arange(len(steps)), "env_steps": steps}
    columns["value_loss"] = at_steps(long, "training/v_loss", steps) / float(
        settings["vf_loss_coefficient"])
    columns["entropy"] = at_steps(long, "training/entropy_loss", steps) / -float(
        settings["entropy_cost"])
    columns["policy_loss"] = at_steps(long, "training/policy_loss", steps)
    columns["approx_kl"] = at_steps(long, "training/kl_mean", steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["log_std_mean"] = np.log(at_steps(long, "training/policy_dist_mean_std", steps))
    columns["lr_policy"] = columns["lr_value"] = at_steps(long, "training/learning_rate",
                                                          steps)
    greedy = bool(settings.get("episode_is_greedy", False))
    columns["eval_return" if greedy else "episode_return"] = at_steps(
        long, "eval/episode_reward", steps)
    columns["episode_length"] = at_steps(long, "eval/avg_episode_length", steps)
    claimed = {c.theirs for c in CONVERSIONS}
    for name, tag in passthrough_tags(raw.tags, options, claimed).items():
        columns[name] = at_steps(long, tag, steps)
    config = DEFAULTS | {"vf_coef": float(settings["vf_loss_coefficient"]),
                         "ent_coef": float(settings["entropy_cost"])}
    return Normalised(pd.DataFrame(columns), config, options.env)


SOURCE = Source(
    "brax", "Brax PPO progress metrics (JSON lines or CSV)", detect, normalise, CONVERSIONS,
    SNIPPETS, config_note="Brax PPO's defaults (clipping_epsilon 0.3, num_updates_per_batch "
    "2, no gradient clip unless max_grad_norm)",
)
