"""The failure modes, one block per rule: its thresholds, where it applies, its
check, and its `Rule` entry (evidence metrics, remedies), kept together.

Condition texts are templates filled from each rule's `thresholds`, the same
constants its check compares against. The failure modes, their evidence and
their fixes come from the design notes (`STABILIZATION.md`) and the seed
failure reports. `RULES` fixes the order findings are listed in; `register_rule` appends a user's
rule to every diagnosis.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from jppo.analysis.diagnose.engine import (
    FLAT_TARGETS,
    Cell,
    Remedy,
    Rule,
    Verdict,
    finite,
    flat_targets,
    not_recorded,
    nothing_judged,
    persistent,
    ratio,
    return_scale,
    solved,
)
from jppo.core import strategies
from jppo.core.config import PPOConfig
from jppo.core.strategies import Registry

# Remedies that address several failure modes.
PER_HEAD_CLIP = Remedy({"grad_clip": "per_head"}, "each head is clipped alone, so a huge value "
                       "gradient cannot shrink the policy step (seed 003)")
REWARD_SCALING = Remedy({"reward_scaling": True}, "divides rewards by the running return std, "
                        "so targets and value gradients are of unit scale (37 implementation "
                        "details; seeds 001, 002)")
POPART = Remedy({"value_target": "popart"}, "the critic learns normalized targets with an "
                "output-preserving rescale (van Hasselt et al. 2016)")


# ------------------------------------------------------------ value dominance
DOMINANCE_RATIO = 10.0  # value / policy gradient norm
CLIP_ACTIVE = 1.0  # grad_clip_ratio above which the global clip shrinks the step


def _one_global_clip(config: PPOConfig) -> bool:
    """Under one global clip the value gradient sets how much the policy step shrinks."""
    return strategies.of(config).grad_clip.couples_groups


class _Signal(NamedTuple):
    name: str
    values: np.ndarray
    condition: np.ndarray
    evaluated: np.ndarray
    basis: str


def _torso_signal(cell: Cell) -> _Signal | None:
    """Value-loss vs policy-loss gradient on a shared torso, where the two meet."""
    value_term = cell.get("grad_norm_value_term_torso")
    policy_term = cell.get("grad_norm_policy_term_torso")
    if value_term is None or policy_term is None or not np.nanmax(value_term) > 0:
        return None
    torso = ratio(value_term, policy_term)
    return _Signal("torso value/policy term", torso, torso > DOMINANCE_RATIO,
                   finite(value_term, policy_term),
                   "value-loss vs policy-loss gradient on the shared torso")


def _head_signal(cell: Cell) -> _Signal | None:
    """Separate networks: value vs policy head norm while the global clip acts."""
    value, policy = cell.get("grad_norm_value"), cell.get("grad_norm_policy")
    clip = cell.get("grad_clip_ratio")
    if not _one_global_clip(cell.config) or value is None or policy is None or clip is None:
        return None
    heads = ratio(value, policy)
    return _Signal("value/policy grad", heads, (heads > DOMINANCE_RATIO) & (clip > CLIP_ACTIVE),
                   finite(value, policy, clip),
                   "value vs policy head gradient norm under the global clip")


def _check_value_dominance(cell: Cell) -> Verdict:
    signals = [s for s in (_torso_signal(cell), _head_signal(cell)) if s is not None]
    if not signals:
        if not _one_global_clip(cell.config):
            return nothing_judged(cell, "separate networks clipped per head: the value "
                                  "gradient cannot reach the policy step")
        names = ["grad_norm_value", "grad_norm_policy", "grad_clip_ratio"]
        return not_recorded(cell, names) or nothing_judged(cell, "not evaluated")
    evaluated = np.logical_or.reduce([s.evaluated for s in signals]) & cell.window
    condition = np.logical_or.reduce([s.condition for s in signals])
    return Verdict(persistent(condition, evaluated), evaluated, signals[0].name,
                   signals[0].values, {s.name: s.values for s in signals},
                   "; ".join(s.basis for s in signals))


VALUE_DOMINANCE = Rule(
    name="value_dominance",
    title="Value dominance",
    description="The value-loss gradient outweighs the policy gradient where they meet, "
    "so the critic's error sets the size of the policy step (seed 000).",
    thresholds={"ratio": DOMINANCE_RATIO, "clip_active": CLIP_ACTIVE},
    condition_template="value/policy gradient norm > {ratio:g}",
    threshold_template="value/policy gradient norm > {ratio:g}: on the shared torso "
    "(value-loss vs policy-loss term), or with separate networks between the heads while "
    "the global clip is active (grad_clip_ratio > {clip_active:g})",
    metrics=("grad_norm_value", "grad_norm_policy", "grad_norm_value_term_torso",
             "grad_norm_policy_term_torso", "grad_clip_ratio", "value_loss"),
    remedies=(
        PER_HEAD_CLIP,
        REWARD_SCALING,
        POPART,
        Remedy({"vf_coef": 0.1}, "down-weights the value term (seeds 000, 002); eases the "
               "symptom, not the scale"),
        Remedy({"torso_hidden": ()}, "separate networks share no parameters for the value "
               "term to take over (seed 000; Andrychowicz et al. 2020)"),
    ),
    check=_check_value_dominance,
)


# ------------------------------------------------------------ critic collapse
EXPLAINED_VARIANCE_FLOOR = 0.0  # below: worse than predicting the batch mean


def _check_critic_collapse(cell: Cell) -> Verdict:
    """Explained variance below the floor, skipping updates whose targets are flat."""
    missing = not_recorded(cell, ["explained_variance"])
    if missing:
        return missing
    ev = cell.get("explained_variance")
    flat = flat_targets(cell)
    evaluated = cell.window & np.isfinite(ev) & ~flat
    basis = "explained variance"
    share = np.mean(flat[cell.window])
    if share > 0:
        basis += (f"; {share:.0%} of the post-warm-up updates had flat targets "
                  f"(target_std < {FLAT_TARGETS:.0%} of the return scale) and were skipped")
    return Verdict(persistent(ev < EXPLAINED_VARIANCE_FLOOR, evaluated), evaluated,
                   "explained_variance", ev, basis=basis)


CRITIC_COLLAPSE = Rule(
    name="critic_collapse",
    title="Critic collapse",
    description="The critic predicts worse than the batch mean, so advantages carry its "
    "error instead of the return signal (seeds 001, 003, 004).",
    thresholds={"floor": EXPLAINED_VARIANCE_FLOOR, "flat": FLAT_TARGETS},
    condition_template="explained_variance < {floor:g}",
    threshold_template="explained variance < {floor:g}; updates whose target_std < {flat:.0%} "
    "of the return scale (max |target|) are skipped, since a near-zero Var[R] (e.g. solved "
    "CartPole, every return 500) makes explained variance meaningless",
    metrics=("explained_variance", "value_loss", "value_mean", "target_mean", "target_std",
             "value_std"),
    remedies=(
        Remedy({"value_pretrain_updates": 10}, "critic-only updates with lambda = 1 before "
               "PPO starts (VC-PPO, Yuan et al. 2025)"),
        Remedy({"critic_lambda": 1.0}, "unbiased lambda = 1 targets for the critic, the "
               "actor keeps its own lambda (VC-PPO)"),
        Remedy({"value_hidden": (256, 128, 64), "value_layer_norm": True}, "a deeper "
               "LayerNorm value head (seed 003's fix)"),
        Remedy({"value_output_gain": 0.01}, "initial predictions near zero instead of "
               "large random values (seed 003)"),
        Remedy({"value_lr": 1e-3}, "lets the critic catch up (seed 001 ran it at 3x the "
               "actor's lr)"),
    ),
    check=_check_critic_collapse,
)


# ---------------------------------------------------------- throttled updates
THROTTLE_RATIO = 10.0  # pre-clip gradient norm / max_grad_norm; plots draw this line


def _check_throttled_updates(cell: Cell) -> Verdict:
    missing = not_recorded(cell, ["grad_clip_ratio"])
    if missing:
        return missing
    clip = cell.get("grad_clip_ratio")
    evaluated = cell.window & np.isfinite(clip)
    return Verdict(persistent(clip > THROTTLE_RATIO, evaluated), evaluated, "grad_clip_ratio",
                   clip, basis="pre-clip gradient norm / max_grad_norm")


THROTTLED_UPDATES = Rule(
    name="throttled_updates",
    title="Throttled updates",
    description="The pre-clip gradient norm is many times max_grad_norm: the clip shrinks "
    "every gradient to a few percent of its size, at a scale set by its largest term "
    "(seed 003: 10-73x).",
    thresholds={"ratio": THROTTLE_RATIO},
    condition_template="grad_clip_ratio > {ratio:g}",
    threshold_template="grad_clip_ratio (pre-clip norm / max_grad_norm) > {ratio:g}",
    metrics=("grad_clip_ratio", "grad_norm", "grad_norm_value", "grad_norm_policy",
             "value_loss"),
    remedies=(
        PER_HEAD_CLIP,
        Remedy({"value_output_gain": 0.01}, "a smaller initial value error breaks the "
               "clipping feedback loop (seed 003)"),
        REWARD_SCALING,
        Remedy({"max_grad_norm": 2.0}, "seed 003's next step when norms stay above 10x"),
    ),
    check=_check_throttled_updates,
)


# --------------------------------------------------------------- policy stall
STALL_KL = 1e-4
STALL_CLIP_FRACTION = 1e-3
ANNEALED_LR = 0.25  # of its peak: below, a small step is the schedule's doing


def _check_policy_stall(cell: Cell) -> Verdict:
    """Tiny KL with no clipped samples, while the lr is in force and the seed has
    not solved the task."""
    missing = not_recorded(cell, ["approx_kl", "clip_fraction"])
    if missing:
        return missing
    kl, clipped = cell.get("approx_kl"), cell.get("clip_fraction")
    evaluated = cell.window & finite(kl, clipped) & ~solved(cell)
    lr = cell.get("lr_policy")
    basis = "approx KL (k3) and clip fraction"
    if lr is not None:
        annealed = lr < ANNEALED_LR * np.nanmax(lr, axis=1, keepdims=True)
        evaluated &= ~annealed
        if np.any(annealed & cell.window):
            basis += f"; updates with the lr annealed below {ANNEALED_LR:.0%} of its peak skipped"
    stalled = (kl < STALL_KL) & (clipped < STALL_CLIP_FRACTION)
    return Verdict(persistent(stalled, evaluated), evaluated, "approx_kl", kl, basis=basis)


POLICY_STALL = Rule(
    name="policy_stall",
    title="Policy stall",
    description="The policy barely changes between rollouts and no sample reaches the "
    "clip range (seeds 001, 003: KL 2e-7 to 2e-5).",
    thresholds={"kl": STALL_KL, "clip": STALL_CLIP_FRACTION, "annealed": ANNEALED_LR},
    condition_template="approx_kl < {kl:g} and clip_fraction < {clip:g}",
    threshold_template="approx_kl < {kl:g} and clip_fraction < {clip:g}; updates where the "
    "seed is solved or the lr has annealed below {annealed:.0%} of its peak are skipped",
    metrics=("approx_kl", "clip_fraction", "entropy", "grad_clip_ratio", "advantage_std"),
    remedies=(
        Remedy({"grad_clip": "per_head"}, "frees the policy step when the value gradient "
               "holds the global clip (seed 003's cascade)"),
        REWARD_SCALING,
        Remedy({"value_loss": "mse"}, "drops value clipping, seed 003's fix when KL stays "
               "near zero"),
        Remedy({"policy_lr": 1e-3}, "a larger actor lr (seed 001: 3e-4 -> 1e-3)"),
    ),
    check=_check_policy_stall,
)


# ----------------------------------------------------------- entropy collapse
ENTROPY_FRACTION = 0.1  # of the first update's entropy (discrete policies)
LOG_STD_DROP = math.log(10.0)  # mean log-std below its first value (Gaussian policies)


def _check_entropy_collapse(cell: Cell) -> Verdict:
    """Discrete: entropy below a fraction of its first value. Gaussian: mean
    log-std down by LOG_STD_DROP. Solved updates are skipped."""
    log_std = cell.get("log_std_mean")
    if log_std is not None:
        drop = log_std[:, :1] - log_std
        evaluated = cell.window & np.isfinite(drop) & ~solved(cell)
        return Verdict(persistent(drop >= LOG_STD_DROP, evaluated), evaluated,
                       "log-std drop", drop, {"log-std drop": drop},
                       "mean log-std of the Gaussian policy vs its first update")
    missing = not_recorded(cell, ["entropy"])
    if missing:
        return missing
    entropy = cell.get("entropy")
    share = ratio(entropy, entropy[:, :1])
    evaluated = cell.window & np.isfinite(share) & ~solved(cell)
    return Verdict(persistent(share < ENTROPY_FRACTION, evaluated), evaluated,
                   "entropy / initial", share, {"entropy / initial": share},
                   "policy entropy vs its first update")


ENTROPY_COLLAPSE = Rule(
    name="entropy_collapse",
    title="Entropy collapse",
    description="The policy turns deterministic before it solves the task and stops "
    "exploring (seed 004).",
    thresholds={"fraction": ENTROPY_FRACTION, "drop": LOG_STD_DROP,
                "std_fraction": math.exp(-LOG_STD_DROP)},
    condition_template="entropy < {fraction:g} x initial (Gaussian: std < {std_fraction:g} x "
    "initial)",
    threshold_template="entropy < {fraction:g} x its first-update value (discrete), or mean "
    "log-std {drop:.2f} below its first-update value, the std at {std_fraction:g} x its "
    "initial value (Gaussian); updates where the seed is solved are skipped",
    metrics=("entropy", "log_std_mean", "approx_kl", "ent_coef", "epochs_completed"),
    remedies=(
        Remedy({"kl_early_stop": True}, "stops an update's epochs once KL > 1.5 "
               "target_kl (SB3; seed 004)"),
        Remedy({"ent_coef": 0.05, "ent_schedule": "linear"}, "more exploration early, "
               "decayed to ent_coef_final (seed 004; Brax PR #660)"),
        Remedy({"update_epochs": 4}, "fewer epochs per rollout over-optimize less "
               "(seed 004: 20 -> 5-8)"),
    ),
    check=_check_entropy_collapse,
)


# ------------------------------------------------------- exploding value loss
LARGE_RETURN_SCALE = 100.0  # max |target| above which raw regression struggles
MEAN_PREDICTOR_LOSS = 0.5  # x Var[R]: the loss of predicting the batch mean
EARLY_FRACTION = 0.1  # of the run: the "start" level of the loss
LATE_PARTS = 3  # the loss's "end" level: the last 1/LATE_PARTS of the window
TINY_ABSOLUTE_CLIP = 0.01  # x the return scale: an absolute value clip this small


def _squared_error_in_return_units(config: PPOConfig) -> bool:
    """Only then does the loss compare with Var[R] of the raw targets."""
    chosen = strategies.of(config)
    return chosen.value_loss.squared_error and chosen.value_target.return_units


def _absolute_value_clip(config: PPOConfig) -> float | None:
    """The eps of a value clip measured in return units, None without one."""
    chosen = strategies.of(config)
    if not (chosen.value_loss.uses_value_clip and chosen.value_clip_mode.return_units):
        return None
    return float(config.resolved("value_clip_eps"))


def _not_falling(loss: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Per seed: the median loss over the last 1/LATE_PARTS of the window is at
    least its median over the first EARLY_FRACTION of the run."""
    n = loss.shape[1]
    start = max(1, math.ceil(EARLY_FRACTION * n))
    last = window & (np.arange(n) >= n - max(1, int(window[0].sum()) // LATE_PARTS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        early = np.nanmedian(loss[:, :start], axis=1)
        late = np.nanmedian(np.where(last, loss, np.nan), axis=1)
    return late >= early


def _absolute_clip_note(config: PPOConfig, scale: np.ndarray) -> str:
    """An absolute value clip of 0.2 is meaningless at returns of 1000+: it stops
    almost every sample's pull on the critic."""
    eps = _absolute_value_clip(config)
    typical = float(np.nanmedian(scale))
    if eps is None or not eps < TINY_ABSOLUTE_CLIP * typical:
        return ""
    return (f"the absolute value clip eps={eps:g} is {eps / typical:.1e} of the return scale "
            f"{typical:.3g}: wherever the clipped error is the larger, a sample stops pulling "
            "the critic once it moved eps from its old value")


def _check_exploding_value_loss(cell: Cell) -> Verdict:
    """A large return scale and a loss above the mean predictor's, not coming down."""
    scale = return_scale(cell)
    missing = not_recorded(cell, ["value_loss", "target_std"])
    if missing:
        return missing
    if scale is None:
        return nothing_judged(cell, "not evaluated: target_abs_max not recorded")
    loss, std = cell.get("value_loss"), cell.get("target_std")
    excess = ratio(loss, MEAN_PREDICTOR_LOSS * std**2)
    evaluated = cell.window & finite(loss, excess, scale)
    large = (scale > LARGE_RETURN_SCALE) & (excess > 1.0)
    affected = persistent(large, evaluated) & _not_falling(loss, cell.window)
    return Verdict(affected, evaluated, "value_loss", loss,
                   {f"loss / ({MEAN_PREDICTOR_LOSS:g} Var[R])": excess},
                   "value loss vs target variance at the return scale",
                   _absolute_clip_note(cell.config, scale))


EXPLODING_VALUE_LOSS = Rule(
    name="exploding_value_loss",
    title="Exploding value loss at large return scale",
    description="Returns far beyond unit scale leave the critic unable to reach them: the "
    "value loss is of the squared return scale and does not come down (seeds 000, 002).",
    thresholds={"scale": LARGE_RETURN_SCALE, "mean_loss": MEAN_PREDICTOR_LOSS,
                "early": EARLY_FRACTION, "late": LATE_PARTS},
    condition_template="value_loss > {mean_loss:g} target_std^2 at max|target| > {scale:g}, "
    "not falling",
    threshold_template="return scale max|target| > {scale:g} and value_loss > {mean_loss:g} "
    "target_std^2 (worse than predicting the batch mean), and the median loss over the last "
    "1/{late:g} of the window >= its median over the first {early:.0%} of updates; "
    "squared-error losses on raw targets only",
    metrics=("value_loss", "target_abs_max", "target_mean", "target_std", "value_mean",
             "value_clip_fraction"),
    remedies=(
        Remedy({"value_clip_mode": "relative"}, "value clip eps in units of the return "
               "std instead of return units (seed 002, fix 1)"),
        REWARD_SCALING,
        POPART,
        Remedy({"value_target": "symlog", "value_loss": "hl_gauss"}, "compressed targets "
               "on a fixed support, classification instead of regression (DreamerV3; "
               "Farebrother et al. 2024)"),
        Remedy({"vf_coef": 0.1}, "down-weights the value term (seed 002, fix 3)"),
    ),
    check=_check_exploding_value_loss,
    applies=_squared_error_in_return_units,
    scope="squared-error value losses in return units (value_loss clipped or mse with "
    "value_target raw)",
)


# ----------------------------------------------------------- noise advantages
NOISE_ADVANTAGE = 1e-3  # advantage std / max(1, return scale)


def _divides_by_advantage_std(config: PPOConfig) -> bool:
    """Only a normalization that divides by the std blows near-zero noise up."""
    return strategies.of(config).advantage_norm.divides_by_std


def _check_noise_advantages(cell: Cell) -> Verdict:
    """Pre-normalization advantage std below NOISE_ADVANTAGE x max(1, return scale),
    while the seed has not solved the task."""
    missing = not_recorded(cell, ["advantage_std"])
    if missing:
        return missing
    std = cell.get("advantage_std")
    scale = return_scale(cell)
    floor = np.ones_like(std) if scale is None else np.fmax(scale, 1.0)
    relative = ratio(std, floor)
    evaluated = cell.window & np.isfinite(relative) & ~solved(cell)
    return Verdict(persistent(relative < NOISE_ADVANTAGE, evaluated), evaluated,
                   "advantage_std", std, {"adv std / scale": relative},
                   "advantage std before normalization vs the return scale")


NOISE_ADVANTAGES = Rule(
    name="noise_advantages",
    title="Noise advantages",
    description="Raw advantages are near zero, so per-minibatch normalization blows noise "
    "up to unit std and the policy follows it (seed 001).",
    thresholds={"ratio": NOISE_ADVANTAGE},
    condition_template="advantage_std < {ratio:g} x max(1, return scale)",
    threshold_template="advantage_std before normalization < {ratio:g} x max(1, return "
    "scale), while advantages are divided by their std; updates where the seed is solved "
    "are skipped",
    metrics=("advantage_std", "advantage_mean", "target_std", "explained_variance"),
    remedies=(
        Remedy({"advantage_norm": "robust"}, "divides by the std only above "
               "adv_std_threshold, else only centers (seed 001)"),
        REWARD_SCALING,
        Remedy({"value_lr": 1e-3}, "a critic that catches up restores the advantage "
               "signal (seed 001)"),
    ),
    check=_check_noise_advantages,
    applies=_divides_by_advantage_std,
    scope="advantage normalizations that divide by the std (advantage_norm minibatch or "
    "batch)",
)


# ----------------------------------------------------------------- registry
RULES: tuple[Rule, ...] = (VALUE_DOMINANCE, CRITIC_COLLAPSE, THROTTLED_UPDATES, POLICY_STALL,
                           ENTROPY_COLLAPSE, EXPLODING_VALUE_LOSS, NOISE_ADVANTAGES)
REGISTERED_RULES: Registry[Rule] = Registry("diagnosis rule")
for _rule in RULES:
    REGISTERED_RULES.register(_rule.name, _rule)


def register_rule(rule: Rule, *, replace: bool = False) -> Rule:
    """Add a failure mode to every diagnosis (`jppo diagnose`, `diagnose_run`), after
    the built-in rules; its `applies(config)` should ask the config's strategies
    (`jppo.core.strategies.of(config)`) so that variants registered later are judged."""
    return REGISTERED_RULES.register(rule.name, rule, replace=replace)


def registered_rules() -> tuple[Rule, ...]:
    """The built-in rules, then the registered ones, in registration order."""
    return tuple(REGISTERED_RULES.get(name) for name in REGISTERED_RULES)
