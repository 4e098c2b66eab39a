"""Reductions of `(seeds, updates)` metric arrays to per-seed scores.

They sit in `jppo.runs` because the runner reduces each chunk (the live view's
mean return, the divergence watch's first non-finite update) and `jppo.analysis`
reduces whole runs with the same definitions; `jppo.analysis.metrics` re-exports
them beside the metric docs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


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
