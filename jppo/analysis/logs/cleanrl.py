"""CleanRL PPO (`ppo.py`, `ppo_continuous_action.py` and their kin): TensorBoard folders.

CleanRL writes its losses once per iteration at the iteration's last `global_step`,
from the *last minibatch* of the last epoch (`v_loss.item()` ...), except `clipfrac`
(the mean over every minibatch) and `explained_variance` (the whole batch, before the
update). Episode returns are written per finished episode at the step it ended; an
update's `episode_return` is the mean of the episodes that ended in its rollout. Its
`hyperparameters` text summary gives the config.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from jppo.analysis.logs.base import (
    Conversion,
    Normalised,
    Options,
    RawRun,
    Source,
    at_steps,
    first_number,
    nonfinite_flags,
    passthrough_tags,
)
from jppo.core.distributions import GAUSSIAN_ENTROPY_AT_ZERO

MARKERS = ("losses/value_loss", "losses/clipfrac", "losses/old_approx_kl")
# the losses (and the added gradient norm) whose NaN or inf is jppo's `nonfinite`
LOSS_TAGS = ("losses/value_loss", "losses/policy_loss", "losses/entropy", "losses/approx_kl",
             "losses/old_approx_kl", "losses/grad_norm")
DEFAULTS = {"lr": 2.5e-4, "update_epochs": 4, "num_minibatches": 4, "clip_eps": 0.2,
            "value_clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5,
            "adam_eps": 1e-5, "value_loss": "clipped", "grad_clip": "global",
            "advantage_norm": "minibatch", "lr_schedule": "linear", "torso_hidden": ()}

CONVERSIONS = (
    Conversion("losses/value_loss", "value_loss", "as is: CleanRL's is 0.5 x the (clipped) "
               "squared error, as jppo's; the last minibatch's, not a mean"),
    Conversion("losses/policy_loss", "policy_loss", "as is (last minibatch)"),
    Conversion("losses/entropy", "entropy", "as is (last minibatch); continuous scripts: "
               "also log_std_mean = entropy / action_dim - 0.5 (1 + log 2 pi)"),
    Conversion("losses/approx_kl", "approx_kl", "as is: k3 estimator (last minibatch)"),
    Conversion("losses/old_approx_kl", "approx_kl_k1", "as is: k1 estimator (last minibatch)"),
    Conversion("losses/clipfrac", "clip_fraction", "as is (mean over all minibatches)"),
    Conversion("losses/explained_variance", "explained_variance", "as is (whole batch, "
               "before the update)"),
    Conversion("(losses/value_loss, policy_loss, entropy, approx_kl, old_approx_kl, "
               "grad_norm)", "nonfinite", "1 where one of them was logged NaN or inf, else 0"),
    Conversion("charts/learning_rate", "lr_policy, lr_value", "as is: the lr of the "
               "iteration (annealed linearly by default)"),
    Conversion("charts/episodic_return", "episode_return", "mean of the episodes that ended "
               "in the update's rollout (steps after the previous update's, up to its own); "
               "continuous scripts log the raw return while training on normalized rewards"),
    Conversion("charts/episodic_length", "episode_length", "the same mean"),
    Conversion("(count of charts/episodic_return)", "episodes_finished", "episodes per update"),
    Conversion("global_step", "env_steps", "as is: env steps over all envs"),
    Conversion("hyperparameters (text)", "config", "learning_rate, update_epochs, "
               "num_minibatches, clip_coef, clip_vloss, norm_adv, ent_coef, vf_coef, "
               "max_grad_norm, target_kl (kl_early_stop; CleanRL stops at target_kl, jppo "
               "at 1.5 target_kl), gamma, gae_lambda, num_envs, num_steps, anneal_lr, env_id"),
    Conversion("losses/NAME, charts/NAME", "NAME", "any jppo metric name, in jppo units"),
)

GRADIENTS = '''\
# in ppo.py, replace the clip line in the minibatch loop with:
value_norm = torch.stack([p.grad.norm() for p in agent.critic.parameters()]).norm()
policy_norm = torch.stack([p.grad.norm() for p in agent.actor.parameters()]).norm()
grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
# and next to the other add_scalar calls after the epochs:
writer.add_scalar("losses/grad_norm", grad_norm.item(), global_step)
writer.add_scalar("losses/grad_norm_value", value_norm.item(), global_step)
writer.add_scalar("losses/grad_norm_policy", policy_norm.item(), global_step)
writer.add_scalar("losses/grad_clip_ratio", grad_norm.item() / args.max_grad_norm, global_step)
'''
TARGETS = '''\
# in ppo.py, next to the other add_scalar calls after the epochs:
writer.add_scalar("losses/target_mean", b_returns.mean().item(), global_step)
writer.add_scalar("losses/target_std", b_returns.std().item(), global_step)
writer.add_scalar("losses/target_abs_max", b_returns.abs().max().item(), global_step)
writer.add_scalar("losses/value_mean", b_values.mean().item(), global_step)
writer.add_scalar("losses/advantage_std", b_advantages.std().item(), global_step)
'''
EPOCHS = '''\
# in ppo.py: count the epochs run before the target_kl break, then log it
writer.add_scalar("losses/epochs_completed", epoch + 1, global_step)
'''
SNIPPETS = {name: GRADIENTS for name in ("grad_norm", "grad_norm_value", "grad_norm_policy",
                                          "grad_clip_ratio")} | {
    name: TARGETS for name in ("target_mean", "target_std", "target_abs_max", "value_mean",
                               "advantage_std")} | {"epochs_completed": EPOCHS}


def detect(tags: set[str]) -> bool:
    return any(tag in tags for tag in MARKERS)


def hyperparameters(texts: dict[str, str]) -> dict[str, str]:
    """CleanRL's `|param|value|` markdown table as a dict."""
    text = texts.get("hyperparameters", "")
    rows = re.findall(r"^\|([^|]+)\|([^|]*)\|\s*$", text, flags=re.MULTILINE)
    return {k.strip(): v.strip() for k, v in rows if k.strip() not in ("param", "-")}


def _config(params: dict[str, str]) -> dict:
    config = dict(DEFAULTS)
    numbers = {"learning_rate": "lr", "update_epochs": "update_epochs", "clip_coef": "clip_eps",
               "num_minibatches": "num_minibatches", "ent_coef": "ent_coef",
               "vf_coef": "vf_coef", "max_grad_norm": "max_grad_norm", "gamma": "gamma",
               "gae_lambda": "gae_lambda", "num_envs": "num_envs", "num_steps": "num_steps"}
    for theirs, ours in numbers.items():
        value = first_number(params.get(theirs, ""))
        if value is not None:
            config[ours] = int(value) if ours in ("update_epochs", "num_minibatches",
                                                  "num_envs", "num_steps") else value
    config["value_clip_eps"] = config["clip_eps"]
    if params.get("clip_vloss") == "False":
        config["value_loss"] = "mse"
    if params.get("norm_adv") == "False":
        config["advantage_norm"] = "off"
    if params.get("anneal_lr") == "False":
        config["lr_schedule"] = "constant"
    target_kl = first_number(params.get("target_kl", ""))
    if target_kl is not None:
        config["kl_early_stop"], config["target_kl"] = True, target_kl / 1.5
    return config


def continuous(raw: RawRun, params: dict[str, str]) -> bool:
    """A Gaussian-policy script: its exp_name (the script's name) or the run folder says so."""
    name = params.get("exp_name", "") + " " + raw.path.name
    return "continuous" in name


def _episodes(long: pd.DataFrame, tag: str, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per update, the mean and count of the tag's episode values logged after the previous
    update's step and up to its own."""
    rows = long[long["tag"] == tag]
    which = np.searchsorted(steps, rows["step"].to_numpy(), side="left")
    inside = which < len(steps)
    frame = pd.DataFrame({"u": which[inside], "v": rows["value"].to_numpy()[inside]})
    grouped = frame.groupby("u")["v"]
    means = grouped.mean().reindex(range(len(steps))).to_numpy(np.float64)
    counts = grouped.size().reindex(range(len(steps))).fillna(0).to_numpy(np.float64)
    return means, counts


def normalise(raw: RawRun, options: Options) -> Normalised:
    long, params = raw.long, hyperparameters(dict(raw.texts))
    steps = np.sort(long[long["tag"] == "losses/value_loss"]["step"].unique())
    columns: dict[str, np.ndarray] = {"update": np.arange(len(steps)), "env_steps": steps}
    for theirs, ours in (("losses/value_loss", "value_loss"), ("losses/policy_loss",
                         "policy_loss"), ("losses/entropy", "entropy"),
                         ("losses/approx_kl", "approx_kl"), ("losses/old_approx_kl",
                         "approx_kl_k1"), ("losses/clipfrac", "clip_fraction"),
                         ("losses/explained_variance", "explained_variance"),
                         ("charts/learning_rate", "lr_policy")):
        columns[ours] = at_steps(long, theirs, steps)
    columns["lr_value"] = columns["lr_policy"]
    columns["nonfinite"] = nonfinite_flags(long, LOSS_TAGS, steps)
    columns["episode_return"], columns["episodes_finished"] = _episodes(
        long, "charts/episodic_return", steps)
    columns["episode_length"], _ = _episodes(long, "charts/episodic_length", steps)
    notes = []
    if continuous(raw, params):
        notes += _gaussian(columns, params, options)
    claimed = {c.theirs for c in CONVERSIONS} | {"charts/SPS"}
    for name, tag in passthrough_tags(raw.tags, options, claimed).items():
        columns[name] = at_steps(long, tag, steps)
    seed = first_number(params.get("seed", ""))
    return Normalised(pd.DataFrame(columns), _config(params), options.env or
                      params.get("env_id") or None, notes,
                      None if seed is None else int(seed))


def _gaussian(columns: dict[str, np.ndarray], params: dict[str, str],
              options: Options) -> list[str]:
    """A Gaussian's entropy is the sum over action dimensions of (0.5 (1 + log 2 pi) +
    log-std): with the dimension known, log_std_mean follows; the entropy itself (negative
    for narrow Gaussians) is no discrete-entropy ratio, so it is dropped either way."""
    entropy = columns.pop("entropy")
    dims = options.settings.get("action_dim") or action_dim(params.get("env_id", ""))
    if not dims:
        return ["a Gaussian policy of unknown action dimension: log_std_mean not derived "
                "from losses/entropy (set action_dim in the [source] table of --map-file)"]
    columns["log_std_mean"] = entropy / dims - GAUSSIAN_ENTROPY_AT_ZERO
    return []


def action_dim(env_id: str) -> int | None:
    """The env's action dimension from gymnasium's registry, where gymnasium can make it."""
    try:
        import gymnasium

        env = gymnasium.make(env_id)
    except Exception:  # any failure: the dimension is unknown, and the report says so
        return None
    shape = getattr(env.action_space, "shape", None)
    env.close()
    return int(np.prod(shape)) if shape else None


SOURCE = Source(
    "cleanrl", "CleanRL PPO (TensorBoard folder)", detect, normalise, CONVERSIONS, SNIPPETS,
    config_note="the run's hyperparameters text, else CleanRL ppo.py's defaults (separate "
    "64x64 networks, one Adam with eps 1e-5, one global clip at 0.5, clipped value loss)",
)
