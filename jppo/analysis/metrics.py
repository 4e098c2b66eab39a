"""Metric definitions and reductions over `(seeds, updates)` metric arrays.

Every metric is one scalar per update per seed. This module documents each
name in one line; the reductions to per-seed final returns live in
`jppo.runs.reductions` (the runner uses them too) and are importable from here.
"""

from __future__ import annotations

from jppo.runs.reductions import (  # noqa: F401  (the public place of the reductions)
    EVAL_RETURN,
    RETURN_LABELS,
    TRAINING_RETURN,
    final_episode_return,
    final_eval_return,
    final_return,
    final_window,
    first_nonfinite_update,
    nonfinite_final_returns,
    return_metric,
)

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

