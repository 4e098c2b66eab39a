"""Metric definitions and reductions over `(seeds, updates)` metric arrays.

Every metric is one scalar per update per seed. This module documents each
name in one line and reduces the arrays to per-seed final returns.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

METRIC_DOCS: dict[str, str] = {
    "episode_return": "mean return of the episodes that finished in the update (NaN if none)",
    "episode_length": "mean length of the episodes that finished in the update (NaN if none)",
    "episodes_finished": "number of episodes that finished in the update, over all envs",
    "eval_return": "mean return of eval_episodes deterministic (greedy/mean action) episodes "
    "after the update, every eval_every updates (NaN on the others)",
    "eval_length": "mean length of those evaluation episodes (NaN between evaluations)",
    "policy_loss": "policy objective (policy_loss; the clipped surrogate by default), mean over "
    "minibatch steps",
    "value_loss": "value loss (before vf_coef), mean over minibatch steps",
    "entropy": "policy entropy, mean over minibatch steps",
    "total_loss": "policy_loss + vf_coef * value_loss - ent_coef * entropy",
    "approx_kl": "KL(pi_old || pi) by the k3 estimator E[(r-1) - log r], mean over steps",
    "approx_kl_k1": "KL(pi_old || pi) by the k1 estimator E[-log r], mean over steps",
    "clip_fraction": "share of samples with |ratio - 1| > clip_eps",
    "value_clip_fraction": "share of samples with |V - V_old| > value_clip_eps",
    "grad_norm": "global gradient norm before clipping, mean over minibatch steps",
    "grad_clipped": "share of minibatch steps clipped (global norm, or any head's under "
    "per-head clipping)",
    "grad_clip_ratio": "clipped norm / max_grad_norm, mean over steps (> 10: updates throttled)",
    "grad_norm_policy": "pre-clip gradient norm of the policy parameters",
    "grad_norm_value": "pre-clip gradient norm of the value parameters",
    "grad_norm_torso": "pre-clip gradient norm of the shared torso (0 without one)",
    "grad_norm_policy_term_torso": "norm of the policy-loss (+entropy) gradient on the shared "
    "torso (first minibatch of the update)",
    "grad_norm_value_term_torso": "norm of the vf_coef * value-loss gradient on the shared torso "
    "(first minibatch of the update)",
    "epochs_completed": "epochs of optimizer steps applied before a KL early stop "
    "(update_epochs if none)",
    "ent_coef": "entropy coefficient in force (entropy schedule)",
    "value_std": "std of the critic predictions on the rollout",
    "target_abs_max": "largest |critic target| in the rollout (return scale)",
    "normalizer_sigma": "PopArt sigma, or the reward scaler's return std, else 1",
    "log_std_mean": "mean log-std of a Gaussian policy",
    "explained_variance": "1 - Var[R - V]/Var[R] of the rollout's critic targets (< 0: worse than "
    "the mean)",
    "value_mean": "mean critic prediction on the rollout",
    "target_mean": "mean critic target (lambda-return) on the rollout",
    "target_std": "std of the critic targets on the rollout",
    "advantage_mean": "mean actor advantage before normalization",
    "advantage_std": "std of the actor advantages before normalization",
    "reward_mean": "mean per-step reward seen by the learner",
    "lr_policy": "policy learning rate, mean over the update's planned optimizer steps",
    "lr_value": "value learning rate, mean over the update's planned optimizer steps",
    "lr_torso": "shared-torso learning rate, mean over the update's planned optimizer steps",
    "nonfinite": "1 if a loss, the global gradient norm or a parameter was NaN or inf in the "
    "update (the run diverged), else 0",
    "nonfinite_reward": "1 if the env returned a NaN or inf reward in the update's rollout",
    "nonfinite_obs": "1 if an observation the networks saw in the rollout was NaN or inf",
    "nonfinite_policy_loss": "1 if the policy loss was NaN or inf at the update's first "
    "optimizer step (at the parameters the update started from)",
    "nonfinite_entropy": "1 if the policy entropy was NaN or inf at the update's first "
    "optimizer step",
    "nonfinite_value_loss": "1 if the value loss was NaN or inf at the update's first "
    "optimizer step",
    "policy_coef": "coefficient an adaptive policy_loss used in the update (kl_penalty: beta; "
    "only for such objectives)",
    "policy_kl_final": "approx KL (k3) of the policy the update ended at, on the whole batch "
    "(what the adaptive coefficient reacts to; only for such objectives)",
    "return_spread_scale": "advantage_norm='return_percentile': the advantages' divisor, "
    "max(1, EMA P95 - EMA P5 of the returns)",
    "pfo_loss": "pfo only: PFO's penalty, the squared change of the actor's pre-activations "
    "since the rollout, mean over minibatch steps (0 at each update's first step)",
}
# Recorded only by the variants that produce them.
VARIANT_METRICS = frozenset({"policy_coef", "policy_kl_final", "return_spread_scale",
                             "pfo_loss"})


def final_window(num_updates: int, fraction: float = 0.1) -> int:
    """How many trailing updates count as 'final' (at least one)."""
    return max(1, round(num_updates * fraction))


def final_episode_return(metrics: Mapping[str, np.ndarray], fraction: float = 0.1) -> np.ndarray:
    """Per-seed mean return of all episodes finished in the last `fraction` of updates.

    Episodes, not updates, are averaged: an update in which no episode ended
    (common when episodes outlast a rollout) contributes nothing. A finished
    episode whose return is NaN or inf makes the seed's mean NaN, never a number.
    """
    returns = np.asarray(metrics["episode_return"], np.float64)
    counts = np.asarray(metrics["episodes_finished"], np.float64)
    window = final_window(returns.shape[-1], fraction)
    returns, counts = returns[..., -window:], counts[..., -window:]
    with np.errstate(invalid="ignore"):
        total = np.where(counts > 0, returns * counts, 0.0).sum(axis=-1)
    n = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def nonfinite_final_returns(metrics: Mapping[str, np.ndarray], fraction: float = 0.1
                            ) -> np.ndarray:
    """Per seed, whether an episode finished in the last `fraction` of updates
    returned NaN or inf (the env paid a non-finite reward): its final return is
    NaN for that reason, not for want of episodes."""
    returns = np.asarray(metrics["episode_return"], np.float64)
    counts = np.asarray(metrics["episodes_finished"], np.float64)
    window = final_window(returns.shape[-1], fraction)
    return ((counts[..., -window:] > 0) & ~np.isfinite(returns[..., -window:])).any(axis=-1)


def first_nonfinite_update(metrics: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Per seed, the position of the first update flagged `nonfinite` (-1: none):
    from there on the seed's parameters are void, though its env-computed
    returns stay finite. None when the flag was not recorded."""
    flags = metrics.get("nonfinite")
    if flags is None or not np.any(np.isfinite(flags)):
        return None
    bad = np.asarray(flags) > 0
    return np.where(bad.any(axis=-1), bad.argmax(axis=-1), -1)


EVAL_RETURN = "eval_return"
TRAINING_RETURN = "episode_return"
RETURN_LABELS = {
    EVAL_RETURN: "evaluation return (deterministic policy)",
    TRAINING_RETURN: "training return (sampled actions)",
}


def return_metric(metrics: Mapping[str, np.ndarray]) -> str:
    """Which return a final score uses: `eval_return` when any evaluation was
    recorded, else `episode_return` (evaluation off, or a run from before it)."""
    values = metrics.get(EVAL_RETURN)
    if values is not None and np.isfinite(np.asarray(values, np.float64)).any():
        return EVAL_RETURN
    return TRAINING_RETURN


def final_eval_return(metrics: Mapping[str, np.ndarray], fraction: float = 0.1) -> np.ndarray:
    """Per-seed mean of the evaluations in the last `fraction` of updates; a
    seed with none there scores its last evaluation (NaN if it has none)."""
    returns = np.atleast_2d(np.asarray(metrics[EVAL_RETURN], np.float64))
    window = final_window(returns.shape[-1], fraction)
    recent = returns[..., -window:]
    seen = np.isfinite(recent)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(seen, recent, 0.0).sum(axis=-1) / seen.sum(axis=-1)
    last = np.array([row[np.isfinite(row)][-1] if np.isfinite(row).any() else np.nan
                     for row in returns])
    return np.where(seen.any(axis=-1), mean, last)


def final_return(metrics: Mapping[str, np.ndarray], fraction: float = 0.1
                 ) -> tuple[np.ndarray, str]:
    """Per-seed final return and the metric it comes from (see `return_metric`)."""
    name = return_metric(metrics)
    if name == EVAL_RETURN:
        return final_eval_return(metrics, fraction), name
    return final_episode_return(metrics, fraction), name
