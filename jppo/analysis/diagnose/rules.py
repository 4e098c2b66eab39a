"""The failure modes, one block per rule: its thresholds, where it applies, its
check, and its `Rule` entry (evidence metrics, remedies), kept together.

Condition texts are templates filled from each rule's `thresholds`, the same
constants its check compares against. The failure modes, their evidence and
their fixes come from the PPO literature (each remedy names its source) and the
case studies that reproduce each failure (`experiments/case_studies/NAME`, cited
as "case study: NAME"); the manual's diagnosis rules page is generated from these
objects. `RULES` fixes the order findings are listed in;
`register_rule` appends a user's rule to every diagnosis.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from jppo.analysis.diagnose.engine import (
    ABSORBING_LATE_PARTS,
    FLAT_TARGETS,
    Cell,
    Criterion,
    Needs,
    Remedy,
    Rule,
    Signal,
    Verdict,
    best_return,
    finite,
    flat_targets,
    learning_range,
    not_recorded,
    nothing_judged,
    ratio,
    return_scale,
    sampled_near_best,
    smoothed_returns,
    solved,
    verdict_of,
)
from jppo.core import strategies
from jppo.core.config import PPOConfig
from jppo.core.strategies import Registry

# Remedies that address several failure modes.
PER_HEAD_CLIP = Remedy({"grad_clip": "per_head"}, "each head is clipped alone, so a huge value "
                       "gradient cannot shrink the policy step (case study: throttled_gradients)")
REWARD_SCALING = Remedy({"reward_scaling": True}, "divides rewards by the running return std, "
                        "so targets and value gradients are of unit scale (37 implementation "
                        "details; case studies: frozen_policy, value_clip_scale)")
POPART = Remedy({"value_target": "popart"}, "the critic learns normalized targets with an "
                "output-preserving rescale (van Hasselt et al. 2016)")


# ------------------------------------------------------------ value dominance
DOMINANCE_RATIO = 10.0  # value / policy gradient norm
# value-loss / policy-loss term on a shared torso: healthy CartPole (returns ~100)
# sits at ~40 and learns as well as separate networks do
TORSO_DOMINANCE_RATIO = 100.0
CLIP_ACTIVE = 1.0  # grad_clip_ratio above which the global clip shrinks the step


def _one_global_clip(config: PPOConfig) -> bool:
    """Under one global clip the value gradient sets how much the policy step shrinks."""
    return strategies.of(config).grad_clip.couples_groups


# Adam divides each step by the root of its running mean square gradient, so a clip
# that scales every gradient by the same factor leaves the step unchanged, until
# the scaled gradient nears adam_eps. At a clipped policy-gradient norm of
# CRUSHED_EPS x adam_eps, the ~5k parameters of a 64x64 policy get gradients of
# about adam_eps each: their steps are then about half their size, and shrink in
# proportion below. Healthy runs at returns of 100 (CartPole, clip ratio ~66) keep
# ~400 adam_eps; value gradients 40x larger leave ~10.
CRUSHED_EPS = 100.0
# Per parameter where the policy's size is known (network_size): the clipped norm over
# sqrt(parameters), in adam_eps. Adam halves the step of a parameter whose gradient is
# eps, and gradients across parameters are heavy-tailed, so at an RMS of eps most
# parameters take steps shrunk by more than half. The total-norm line above is that
# RMS line for a policy of 10k parameters; per parameter it holds for any size: value
# gradients ~400x the policy's leave Breakout-MinAtar's 30k-parameter MLP policy an
# RMS of 0.6-0.8 eps (125 eps in all; return 1.9 against 4.3).
CRUSHED_RMS_EPS = 1.0


def _per_parameter(cell: Cell) -> tuple[float, float, str]:
    """(divisor of the norm, crushed line, unit): per parameter where the policy's size
    is known, the whole norm otherwise."""
    if cell.policy_parameters:
        return (math.sqrt(cell.policy_parameters), CRUSHED_RMS_EPS,
                "clipped policy gradient RMS per parameter / adam_eps")
    return 1.0, CRUSHED_EPS, "clipped policy gradient / adam_eps"


def clipped_policy_gradient(cell: Cell) -> np.ndarray | None:
    """The policy's gradient after the clip, in units of adam_eps, per parameter (RMS)
    where the policy's size is known: divided by the global clip ratio, or at most
    max_grad_norm when clipped per head; inf where it was below the crushed line
    before the clip (a saturated policy has no gradient to crush: that is not the
    clip's doing)."""
    policy, clip = cell.get("grad_norm_policy"), cell.get("grad_clip_ratio")
    if policy is None or clip is None:
        return None
    config = cell.config
    if _one_global_clip(config):
        clipped = policy / np.fmax(clip, 1.0)
    else:
        clipped = np.fmin(policy, config.max_grad_norm)
    size, line, _ = _per_parameter(cell)
    with np.errstate(invalid="ignore"):
        return np.where(policy / config.adam_eps / size < line, np.inf,
                        clipped / config.adam_eps / size)


def _crushed(cell: Cell) -> Criterion | None:
    values = clipped_policy_gradient(cell)
    if values is None:
        return None
    _, line, name = _per_parameter(cell)
    return Criterion(name, values, "<", line)


TORSO_COLUMN, HEADS_COLUMN = "torso value/policy term", "value/policy grad"


def _torso_signal(cell: Cell) -> tuple[Signal, np.ndarray, str] | None:
    """Value-loss vs policy-loss gradient on a shared torso, where the two meet;
    with the updates it can judge and its evidence column."""
    value_term = cell.get("grad_norm_value_term_torso")
    policy_term = cell.get("grad_norm_policy_term_torso")
    if value_term is None or policy_term is None or not np.nanmax(value_term) > 0:
        return None
    torso = ratio(value_term, policy_term)
    signal = Signal((Criterion("value/policy loss-term gradient on the torso", torso, ">",
                               TORSO_DOMINANCE_RATIO),),
                    "value-loss vs policy-loss gradient on the shared torso")
    return signal, finite(value_term, policy_term), TORSO_COLUMN


def _head_signal(cell: Cell) -> tuple[Signal, np.ndarray, str] | None:
    """Value vs policy head norm while the global clip acts."""
    value, policy = cell.get("grad_norm_value"), cell.get("grad_norm_policy")
    clip = cell.get("grad_clip_ratio")
    if not _one_global_clip(cell.config) or value is None or policy is None or clip is None:
        return None
    heads = ratio(value, policy)
    signal = Signal((Criterion("value/policy head gradient", heads, ">", DOMINANCE_RATIO),
                     Criterion("grad_clip_ratio", clip, ">", CLIP_ACTIVE), _crushed(cell)),
                    "value vs policy head gradient norm under the global clip, which leaves "
                    "the policy a gradient near adam_eps", " while ")
    return signal, finite(value, policy, clip), HEADS_COLUMN


def _check_value_dominance(cell: Cell) -> Verdict:
    found = [s for s in (_torso_signal(cell), _head_signal(cell)) if s is not None]
    if not found:
        if not _one_global_clip(cell.config):
            return nothing_judged(cell, "separate networks clipped per head: the value "
                                  "gradient cannot reach the policy step")
        names = ["grad_norm_value", "grad_norm_policy", "grad_clip_ratio"]
        return not_recorded(cell, names) or nothing_judged(cell, "not evaluated")
    evaluated = np.logical_or.reduce([judged for _, judged, _ in found]) & cell.window \
        & ~solved(cell)
    derived = {column: s.criteria[0].values for s, _, column in found}
    return verdict_of([s for s, _, _ in found], evaluated, derived=derived)


VALUE_DOMINANCE = Rule(
    name="value_dominance",
    title="Value dominance",
    description="The value-loss gradient outweighs the policy gradient where they meet, "
    "so the critic's error sets the size of the policy step (case study: value_dominance).",
    thresholds={"ratio": DOMINANCE_RATIO, "torso": TORSO_DOMINANCE_RATIO,
                "clip_active": CLIP_ACTIVE, "crushed": CRUSHED_EPS,
                "crushed_rms": CRUSHED_RMS_EPS},
    condition_template="value/policy gradient norm > {ratio:g} under the global clip (shared "
    "torso terms: > {torso:g})",
    threshold_template="on the shared torso, value-loss vs policy-loss term gradient > "
    "{torso:g}; or between the heads value/policy gradient norm > {ratio:g} while the "
    "global clip is active (grad_clip_ratio > {clip_active:g}) and leaves the policy a "
    "gradient RMS per parameter < {crushed_rms:g} adam_eps (a jppo run, whose policy's "
    "size is known) or a gradient norm < {crushed:g} adam_eps (other trainers' logs), "
    "where Adam no longer undoes the clip's scaling",
    metrics=("grad_norm_value", "grad_norm_policy", "grad_norm_value_term_torso",
             "grad_norm_policy_term_torso", "grad_clip_ratio", "value_loss"),
    remedies=(
        PER_HEAD_CLIP,
        REWARD_SCALING,
        POPART,
        Remedy({"vf_coef": 0.1}, "down-weights the value term (case studies: "
               "value_dominance, value_clip_scale); eases the symptom, not the scale"),
        Remedy({"torso_hidden": ()}, "separate networks share no parameters for the value "
               "term to take over (case study: value_dominance; Andrychowicz et al. 2020)"),
    ),
    check=_check_value_dominance,
    needs=(Needs(("grad_norm_value", "grad_norm_policy", "grad_clip_ratio"),
                 "head gradient norms under the global clip"),
           Needs(("grad_norm_value_term_torso", "grad_norm_policy_term_torso"),
                 "loss-term gradients on the shared torso")),
)


# ------------------------------------------------------------ critic collapse
# Explained variance EV = 1 - Var[R - V] / Var[R]. Below 0 the critic is worse
# than the batch mean; only a clear margin below adds variance to the advantages
# (a critic at EV -0.004 that tracks the targets' mean is a batch-mean baseline,
# and its policy learns: case study frozen_policy, value_output_gain 0.01).
EXPLAINED_VARIANCE_FLOOR = -0.1
# A starved critic explains (almost) none of the return variance and lags the
# targets' mean: its lr or loss weight is too small to follow returns that rise as
# the policy learns (case study value_dominance: EV 0.001-0.009, value_mean at
# 39-63% of target_mean). Healthy critics that explain little still track the mean
# (CartPole with separate networks: EV 0.012, value_mean at 86% of target_mean).
STARVED_EV = 0.05
STARVED_BIAS = 0.25  # |value_mean - target_mean| / |target_mean|


def mean_bias(cell: Cell) -> np.ndarray | None:
    """|value_mean - target_mean| / |target_mean| per update, None where not recorded."""
    value, target = cell.get("value_mean"), cell.get("target_mean")
    if value is None or target is None:
        return None
    return ratio(np.abs(value - target), np.abs(target))


def _critic_signals(cell: Cell, ev: np.ndarray) -> list[Signal]:
    signals = [Signal((Criterion("explained_variance", ev, "<", EXPLAINED_VARIANCE_FLOOR),),
                      "explained variance: worse than the batch mean")]
    bias = mean_bias(cell)
    if bias is not None:
        signals.append(Signal((Criterion("explained_variance", ev, "<", STARVED_EV),
                               Criterion("|value_mean - target_mean| / |target_mean|", bias,
                                         ">", STARVED_BIAS)),
                              "a starved critic: it explains almost none of the return "
                              "variance and lags the targets' mean", " while "))
    return signals


def _check_critic_collapse(cell: Cell) -> Verdict:
    """Explained variance below the floor, or a starved critic, skipping updates
    whose targets are flat and those where the seed has solved the task."""
    missing = not_recorded(cell, ["explained_variance"])
    if missing:
        return missing
    ev = cell.get("explained_variance")
    flat = flat_targets(cell)
    evaluated = cell.window & np.isfinite(ev) & ~flat & ~solved(cell)
    signals = _critic_signals(cell, ev)
    share = np.mean(flat[cell.window])
    basis = "; ".join(s.basis for s in signals)
    if share > 0:
        basis += (f"; {share:.0%} of the post-warm-up updates had flat targets "
                  f"(target_std < {FLAT_TARGETS:.0%} of the return scale) and were skipped")
    return verdict_of(signals, evaluated, basis=basis)


CRITIC_COLLAPSE = Rule(
    name="critic_collapse",
    title="Critic collapse",
    description="The critic predicts worse than the batch mean, or is starved (explains "
    "almost nothing and lags the returns), so advantages carry its error instead of the "
    "return signal (case studies: frozen_policy, value_dominance, throttled_gradients, "
    "kl_early_stop).",
    thresholds={"floor": EXPLAINED_VARIANCE_FLOOR, "starved": STARVED_EV,
                "bias": STARVED_BIAS, "flat": FLAT_TARGETS},
    condition_template="explained_variance < {floor:g}, or < {starved:g} with value_mean "
    "off target_mean by > {bias:.0%}",
    threshold_template="explained variance < {floor:g} (worse than the batch mean by a "
    "margin), or a starved critic: explained variance < {starved:g} while |value_mean - "
    "target_mean| > {bias:.0%} of |target_mean|; updates whose target_std < {flat:.0%} "
    "of the return scale (max |target|) are skipped, since a near-zero Var[R] (e.g. solved "
    "CartPole, every return 500) makes explained variance meaningless, and so are updates "
    "where the seed has solved the task",
    metrics=("explained_variance", "value_loss", "value_mean", "target_mean", "target_std",
             "value_std"),
    remedies=(
        Remedy({"value_pretrain_updates": 10}, "critic-only updates with lambda = 1 before "
               "PPO starts (VC-PPO, Yuan et al. 2025)"),
        Remedy({"critic_lambda": 1.0}, "unbiased lambda = 1 targets for the critic, the "
               "actor keeps its own lambda (VC-PPO)"),
        Remedy({"value_hidden": (256, 128, 64), "value_layer_norm": True}, "a deeper "
               "LayerNorm value head (a fix in case study: throttled_gradients)"),
        Remedy({"value_output_gain": 0.01}, "initial predictions near zero instead of "
               "large random values (case study: throttled_gradients)"),
        Remedy({"value_lr": 1e-3}, "lets the critic catch up (case study: frozen_policy "
               "runs it at 3x the actor's lr)"),
    ),
    check=_check_critic_collapse,
    needs=(Needs(("explained_variance",), "explained variance"),),
    sharpens=("value_mean", "target_mean", "target_std"),
    latent_when_solved=True,
)


# ---------------------------------------------------------- throttled updates
THROTTLE_RATIO = 10.0  # pre-clip gradient norm / max_grad_norm; plots draw this line


def _check_throttled_updates(cell: Cell) -> Verdict:
    missing = not_recorded(cell, ["grad_clip_ratio"])
    if missing:
        return missing
    clip = cell.get("grad_clip_ratio")
    evaluated = cell.window & np.isfinite(clip) & ~solved(cell)
    crushed = _crushed(cell)
    if crushed is None:
        signal = Signal((Criterion("grad_clip_ratio", clip, ">", THROTTLE_RATIO),))
        return verdict_of([signal], evaluated, basis="pre-clip gradient norm / max_grad_norm")
    signal = Signal((Criterion("grad_clip_ratio", clip, ">", THROTTLE_RATIO), crushed),
                    joiner=" while ")
    return verdict_of([signal], evaluated, basis="pre-clip gradient norm / max_grad_norm, "
                      "and the policy gradient it leaves vs adam_eps")


THROTTLED_UPDATES = Rule(
    name="throttled_updates",
    title="Throttled updates",
    description="The pre-clip gradient norm is many times max_grad_norm: the clip shrinks "
    "every gradient to a few percent of its size, at a scale set by its largest term "
    "(case study: throttled_gradients: 10-73x). Adam undoes a constant shrink, so the "
    "policy step is throttled once its clipped gradient nears adam_eps.",
    thresholds={"ratio": THROTTLE_RATIO, "crushed": CRUSHED_EPS,
                "crushed_rms": CRUSHED_RMS_EPS},
    condition_template="grad_clip_ratio > {ratio:g} leaving the policy < {crushed:g} adam_eps",
    threshold_template="grad_clip_ratio (pre-clip norm / max_grad_norm) > {ratio:g} while "
    "the clipped policy gradient RMS per parameter < {crushed_rms:g} adam_eps (jppo runs) "
    "or its norm < {crushed:g} adam_eps (other trainers' logs), where recorded: Adam undoes "
    "a clip's constant scaling until the gradients near adam_eps",
    metrics=("grad_clip_ratio", "grad_norm", "grad_norm_value", "grad_norm_policy",
             "value_loss"),
    remedies=(
        PER_HEAD_CLIP,
        Remedy({"value_output_gain": 0.01}, "a smaller initial value error breaks the "
               "clipping feedback loop (case study: throttled_gradients)"),
        REWARD_SCALING,
        Remedy({"max_grad_norm": 2.0}, "the next step when norms stay above 10x, "
               "then 5 (case study: throttled_gradients)"),
    ),
    check=_check_throttled_updates,
    needs=(Needs(("grad_clip_ratio",), "the pre-clip gradient norm / max_grad_norm"),),
    sharpens=("grad_norm_policy",),
)


# --------------------------------------------------------------- policy stall
STALL_KL = 1e-6  # healthy standard CartPole (returns ~250 at 100k steps) keeps 1e-6 to 1e-5
STALL_CLIP_FRACTION = 1e-3
ANNEALED_LR = 0.25  # of its peak: below, a small step is the schedule's doing
STALL_PROGRESS = 0.1  # of the learning range gained over the window: below, no progress
# Samples clipped at a KL below STALL_KL: the ratio leaves a clip range that narrow after
# the first steps and every clipped sample's gradient is zero (clip_eps 1e-4: KL 1e-8
# with 27-82% of the samples clipped; healthy runs clip none at a KL that small).
HELD_CLIP_FRACTION = 0.1


def return_progress(cell: Cell) -> np.ndarray | None:
    """Per seed, `(seeds, 1)`: the smoothed return's gain from the first to the last
    update of the window, as a fraction of the learning range on the environment
    (the first return to the best any variant reached); None without returns. A
    policy that moves little per update but keeps improving is slow, not stalled.
    Progress is read on the training return where recorded: the sampled policy is
    the one the updates move, and a greedy evaluation can sit at the optimum while
    it still climbs."""
    returns, best = cell.get("episode_return"), cell.best_training
    if returns is None:
        returns, best = cell.returns(), None
    if returns is None:
        return None
    level = smoothed_returns(returns)
    start, best = learning_range(cell, returns, best if best is not None
                                 else best_return(returns))
    gains = np.full(len(cell.seeds), np.nan)
    for row, judged in enumerate(cell.window):
        at = np.flatnonzero(judged)
        if len(at) > 1:
            gains[row] = level[row, at[-1]] - level[row, at[0]]
    span = best - start
    return (gains / span if span > 0 else np.zeros_like(gains))[:, None]


def _clips_ratio(config: PPOConfig) -> bool:
    """The policy objective stops the gradient past the ratio clip, so the clip
    fraction measures what it held back (the `policy_loss` strategy says)."""
    return strategies.of(config).policy_loss.clips_ratio


def _check_policy_stall(cell: Cell) -> Verdict:
    """Tiny KL with no clipped samples and no return progress, while the lr is in
    force and the seed has not solved the task."""
    missing = not_recorded(cell, ["approx_kl"])
    if missing:
        return missing
    kl, clipped = cell.get("approx_kl"), cell.get("clip_fraction")
    if not _clips_ratio(cell.config):  # a clip fraction that holds nothing back says nothing
        clipped = None
    # without a logged clip fraction (Brax), or with an objective that does not clip
    # (kl_penalty, dpo), the KL alone judges: no sample clipped is implied by a KL
    # this small at any usual clip_eps
    evaluated = cell.window & finite(kl, kl if clipped is None else clipped) & ~solved(cell)
    lr = cell.get("lr_policy")
    basis = "approx KL (k3)" + ("" if clipped is None else " and clip fraction")
    if lr is not None:
        annealed = lr < ANNEALED_LR * np.nanmax(lr, axis=1, keepdims=True)
        evaluated &= ~annealed
        if np.any(annealed & cell.window):
            basis += f"; updates with the lr annealed below {ANNEALED_LR:.0%} of its peak skipped"
    progress = return_progress(cell)
    gain = [] if progress is None else [Criterion("return gain / learning range", progress,
                                                  "<", STALL_PROGRESS)]
    if progress is not None:
        basis += f"; seeds whose return gained {STALL_PROGRESS:.0%} of the learning range " \
                 "over the window are improving, not stalled"
    if clipped is None:
        return verdict_of([Signal((Criterion("approx_kl", kl, "<", STALL_KL), *gain))],
                          evaluated, basis=basis)
    still = Signal((Criterion("approx_kl", kl, "<", STALL_KL),
                    Criterion("clip_fraction", clipped, "<", STALL_CLIP_FRACTION), *gain),
                   "a policy that barely moves and reaches no clip")
    held = Signal((Criterion("approx_kl", kl, "<", STALL_KL),
                   Criterion("clip_fraction", clipped, ">", HELD_CLIP_FRACTION), *gain),
                  "a clip range so narrow that samples leave it at a KL below the stall "
                  "line: the clip, not the gradient, holds the policy", " while ")
    return verdict_of([still, held], evaluated, basis=basis)


POLICY_STALL = Rule(
    name="policy_stall",
    title="Policy stall",
    description="The policy barely changes between rollouts and no sample reaches the "
    "clip range (case studies: frozen_policy, throttled_gradients: KL 2e-7 to 2e-5), or "
    "samples leave a clip range so narrow that the clip holds the policy still.",
    thresholds={"kl": STALL_KL, "clip": STALL_CLIP_FRACTION, "progress": STALL_PROGRESS,
                "annealed": ANNEALED_LR, "held": HELD_CLIP_FRACTION},
    condition_template="approx_kl < {kl:g} and clip_fraction < {clip:g} (or > {held:g}: a "
    "clip range that holds the policy), return gain < {progress:.0%} of the learning range",
    threshold_template="approx_kl < {kl:g} and clip_fraction < {clip:g} (or clip_fraction "
    "> {held:g}: samples leave a clip range that narrow at a KL that small), and the seed's "
    "smoothed return gained less than {progress:.0%} of the learning range (first return to "
    "the best on the env) over the window; updates where the seed is solved or the lr has "
    "annealed below {annealed:.0%} of its peak are skipped",
    metrics=("approx_kl", "clip_fraction", "entropy", "grad_clip_ratio", "advantage_std"),
    remedies=(
        Remedy({"grad_clip": "per_head"}, "frees the policy step when the value gradient "
               "holds the global clip (the cascade in case study: "
               "throttled_gradients)"),
        REWARD_SCALING,
        Remedy({"value_loss": "mse"}, "drops value clipping, a fix when KL stays near zero "
               "(case study: throttled_gradients)"),
        Remedy({"clip_eps": 0.2}, "the standard clip range: one far narrower zeroes the "
               "gradient of every sample once its ratio left it (PPO, Schulman et al. 2017)"),
        Remedy({"policy_lr": 1e-3}, "a larger actor lr (case study: frozen_policy: "
               "3e-4 -> 1e-3)"),
    ),
    check=_check_policy_stall,
    needs=(Needs(("approx_kl",), "approx KL"),),
    sharpens=("clip_fraction", "episode_return"),
)


# ----------------------------------------------------------- entropy collapse
ENTROPY_FRACTION = 0.1  # of the first update's entropy (discrete policies)
LOG_STD_DROP = math.log(10.0)  # mean log-std below its first value (Gaussian policies)
# A std narrowed 3x is a collapse where the return does not rise meanwhile: a
# policy that narrows while it learns converges (healthy Pendulum narrows ~1.5x on
# its unsolved updates); one that narrows 3x on a falling return (Pendulum at
# policy_lr 0.03: return -180 -> -980) stopped exploring before it learned.
STUCK_LOG_STD_DROP = math.log(3.0)
# A deterministic policy's gradient vanishes, so the collapse is absorbing: it also
# counts where it holds on most of the last third of the judged updates (engine
# `persisting`). A short run may reach it only there, and a logged entropy may swing:
# CleanRL logs the last minibatch's, which on CleanRL CartPole at lr 0.03 x 10
# epochs sits at 0.01-0.34 x its first value over those updates.


def _check_entropy_collapse(cell: Cell) -> Verdict:
    """Discrete: entropy below a fraction of its first value. Gaussian: mean
    log-std down by LOG_STD_DROP. Solved updates are skipped; an absorbing state."""
    log_std = cell.get("log_std_mean")
    if log_std is not None:
        drop = log_std[:, :1] - log_std
        evaluated = cell.window & np.isfinite(drop) & ~solved(cell)
        signals = [Signal((Criterion("log-std drop", drop, ">=", LOG_STD_DROP),),
                          "mean log-std of the Gaussian policy vs its first update")]
        progress = return_progress(cell)
        if progress is not None:
            signals.append(Signal((Criterion("log-std drop", drop, ">=", STUCK_LOG_STD_DROP),
                                   Criterion("return gain / learning range", progress, "<",
                                             STALL_PROGRESS)),
                                  "a std narrowed several-fold on a return that does not "
                                  "rise: the policy stopped exploring without learning",
                                  " while "))
        return verdict_of(signals, evaluated, derived={"log-std drop": drop}, absorbing=True)
    missing = not_recorded(cell, ["entropy"])
    if missing:
        return missing
    entropy = cell.get("entropy")
    share = ratio(entropy, entropy[:, :1])
    evaluated = cell.window & np.isfinite(share) & ~solved(cell)
    signal = Signal((Criterion("entropy / initial", share, "<", ENTROPY_FRACTION),))
    return verdict_of([signal], evaluated, derived={"entropy / initial": share},
                      basis="policy entropy vs its first update", absorbing=True)


ENTROPY_COLLAPSE = Rule(
    name="entropy_collapse",
    title="Entropy collapse",
    description="The policy turns deterministic before it solves the task and stops "
    "exploring (case study: kl_early_stop).",
    thresholds={"fraction": ENTROPY_FRACTION, "drop": LOG_STD_DROP,
                "std_fraction": math.exp(-LOG_STD_DROP), "stuck": STUCK_LOG_STD_DROP,
                "progress": STALL_PROGRESS, "late_share": 1 / ABSORBING_LATE_PARTS},
    condition_template="entropy < {fraction:g} x initial (Gaussian: std < {std_fraction:g} x "
    "initial)",
    threshold_template="entropy < {fraction:g} x its first-update value (discrete), or mean "
    "log-std {drop:.2f} below its first-update value, the std at {std_fraction:g} x its "
    "initial value, or {stuck:.2f} below it while the seed's return gains less than "
    "{progress:.0%} of the learning range over the window (Gaussian), on more than half "
    "of the judged updates or of the last {late_share:.0%} of them (a deterministic "
    "policy's gradient vanishes: the collapse does not recover); updates where the seed "
    "is solved are skipped",
    metrics=("entropy", "log_std_mean", "approx_kl", "ent_coef", "epochs_completed"),
    remedies=(
        Remedy({"kl_early_stop": True}, "stops an update's epochs once KL > 1.5 "
               "target_kl (SB3; case study: kl_early_stop)"),
        Remedy({"ent_coef": 0.05, "ent_schedule": "linear"}, "more exploration early, "
               "decayed to ent_coef_final (case study: kl_early_stop; Brax PR #660)"),
        Remedy({"update_epochs": 4}, "fewer epochs per rollout over-optimize less "
               "(case study: kl_early_stop: 20 -> 5-8)"),
    ),
    check=_check_entropy_collapse,
    needs=(Needs(("log_std_mean",), "the Gaussian's mean log-std"),
           Needs(("entropy",), "the policy entropy")),
    sharpens=("episode_return",),
)


# ------------------------------------------------------- exploding value loss
LARGE_RETURN_SCALE = 100.0  # max |target| above which raw regression struggles
MEAN_PREDICTOR_LOSS = 0.5  # x Var[R]: the loss of predicting the batch mean
EARLY_FRACTION = 0.1  # of the run: the "start" level of the loss
LATE_PARTS = 3  # the loss's "end" level: the last 1/LATE_PARTS of the window
# late / early loss at or above this: not coming down. A loss 15x the mean
# predictor's that creeps down 5-15% over the run (Acrobot, rewards x1000) is as
# stuck as one that grows; one that falls 3x (halving at least) is on its way.
NOT_HALVED = 0.5
TINY_ABSOLUTE_CLIP = 0.01  # x the return scale: an absolute value clip this small


def squared_error_in_return_units(config: PPOConfig) -> bool:
    """Only then does the loss compare with Var[R] of the raw targets."""
    chosen = strategies.of(config)
    return chosen.value_loss.squared_error and chosen.value_target.return_units


def _absolute_value_clip(config: PPOConfig) -> float | None:
    """The eps of a value clip measured in return units, None without one."""
    chosen = strategies.of(config)
    if not (chosen.value_loss.uses_value_clip and chosen.value_clip_mode.return_units):
        return None
    return float(config.resolved("value_clip_eps"))


def _late_over_early(loss: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Per seed, `(seeds, 1)`: the median loss over the last 1/LATE_PARTS of the
    window over its median over the first EARLY_FRACTION of the run (>=
    NOT_HALVED: not coming down)."""
    n = loss.shape[1]
    start = max(1, math.ceil(EARLY_FRACTION * n))
    last = window & (np.arange(n) >= n - max(1, int(window[0].sum()) // LATE_PARTS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        early = np.nanmedian(loss[:, :start], axis=1)
        late = np.nanmedian(np.where(last, loss, np.nan), axis=1)
    return ratio(late, early)[:, None]


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


def _exploding_without_targets(cell: Cell) -> Verdict:
    """Logs without target statistics (SB3, CleanRL): the critic's RMS error stands for
    the return scale (an error of more than LARGE_RETURN_SCALE return units), and
    explained variance below STARVED_EV for a loss no better than the batch mean's."""
    loss, ev = cell.get("value_loss"), cell.get("explained_variance")
    rms = np.sqrt(2.0 * np.fmax(loss, 0.0))
    evaluated = cell.window & finite(loss, ev) & ~solved(cell)
    signal = Signal((Criterion("critic RMS error sqrt(2 value_loss)", rms, ">",
                               LARGE_RETURN_SCALE),
                     Criterion("explained_variance", ev, "<", STARVED_EV),
                     Criterion("late / early value_loss", _late_over_early(loss, cell.window),
                               ">=", NOT_HALVED)))
    return verdict_of([signal], evaluated,
                      derived={"critic RMS error": rms, "explained_variance": ev},
                      basis="no target statistics logged: the critic's RMS error stands for "
                      f"the return scale, explained variance < {STARVED_EV:g} for a loss no "
                      "better than the batch mean's",
                      note=f"judged without target statistics: sqrt(2 value_loss) > "
                      f"{LARGE_RETURN_SCALE:g}, explained_variance < {STARVED_EV:g} and late / "
                      f"early value_loss >= {NOT_HALVED:g} (the threshold above is the test "
                      "with them)")


def _check_exploding_value_loss(cell: Cell) -> Verdict:
    """A large return scale and a loss above the mean predictor's, not coming down."""
    scale = return_scale(cell)
    if scale is None and cell.get("target_std") is None and cell.get("value_loss") is not None \
            and cell.get("explained_variance") is not None:
        return _exploding_without_targets(cell)
    missing = not_recorded(cell, ["value_loss", "target_std"])
    if missing:
        return missing
    if scale is None:
        return nothing_judged(cell, "not evaluated: target_abs_max not recorded")
    loss, std = cell.get("value_loss"), cell.get("target_std")
    excess = ratio(loss, MEAN_PREDICTOR_LOSS * std**2)
    evaluated = cell.window & finite(loss, excess, scale) & ~solved(cell)
    excess_name = f"value_loss / ({MEAN_PREDICTOR_LOSS:g} Var[R])"
    signal = Signal((Criterion("return scale max|target|", scale, ">", LARGE_RETURN_SCALE),
                     Criterion(excess_name, excess, ">", 1.0),
                     Criterion("late / early value_loss", _late_over_early(loss, cell.window),
                               ">=", NOT_HALVED)))
    return verdict_of([signal], evaluated, derived={excess_name: excess},
                      basis="value loss vs target variance at the return scale",
                      note=_absolute_clip_note(cell.config, scale))


EXPLODING_VALUE_LOSS = Rule(
    name="exploding_value_loss",
    title="Exploding value loss at large return scale",
    description="Returns far beyond unit scale leave the critic unable to reach them: the "
    "value loss is of the squared return scale and does not come down (case studies: "
    "value_dominance, value_clip_scale).",
    thresholds={"scale": LARGE_RETURN_SCALE, "mean_loss": MEAN_PREDICTOR_LOSS,
                "early": EARLY_FRACTION, "late": LATE_PARTS, "halved": NOT_HALVED},
    condition_template="value_loss > {mean_loss:g} target_std^2 at max|target| > {scale:g}, "
    "not halving",
    threshold_template="return scale max|target| > {scale:g} and value_loss > {mean_loss:g} "
    "target_std^2 (worse than predicting the batch mean), and the median loss over the last "
    "1/{late:g} of the window >= {halved:g} x its median over the first {early:.0%} of "
    "updates; "
    "squared-error losses on raw targets only",
    metrics=("value_loss", "target_abs_max", "target_mean", "target_std", "value_mean",
             "value_clip_fraction"),
    remedies=(
        Remedy({"value_clip_mode": "relative"}, "value clip eps in units of the return "
               "std instead of return units (case study: value_clip_scale, fix 1)"),
        REWARD_SCALING,
        POPART,
        Remedy({"value_target": "symlog", "value_loss": "hl_gauss"}, "compressed targets "
               "on a fixed support, classification instead of regression (DreamerV3; "
               "Farebrother et al. 2024)"),
        Remedy({"vf_coef": 0.1}, "down-weights the value term (case study: "
               "value_clip_scale, fix 3)"),
    ),
    check=_check_exploding_value_loss,
    needs=(Needs(("value_loss", "target_std", "target_abs_max"),
                 "value loss vs the targets' variance and scale"),
           Needs(("value_loss", "explained_variance"), "value loss and explained variance "
                 "(the critic's RMS error for the return scale)")),
    sharpens=("target_std", "target_abs_max"),
    latent_when_solved=True,
    applies=squared_error_in_return_units,
    scope="squared-error value losses in return units (value_loss clipped or mse with "
    "value_target raw)",
)


# ----------------------------------------------------------- noise advantages
# advantage std / return scale. Relative to the return scale, not to max(1, it):
# returns of 1.4e-3 (rewards x1e-4, case study frozen_policy) give a learning
# critic's advantages a std of 1.9e-4, which is signal at that scale. Below 1% of
# the scale the actions move the return by less than a critic regressed to ~1%
# of its targets errs: Pendulum at gamma ~0 (only the action cost, 0.001 u^2,
# depends on the action) sits at 0.3%; healthy runs at 5-16%.
NOISE_ADVANTAGE = 1e-2
# EV = 1 - Var[R - V] / Var[R]: below -3 the critic's error has twice the std of
# the returns themselves, so >= 80% of the advantages' variance is its error
# (case study frozen_policy: EV -9; rewards x1e-6: EV -7). Healthy Pendulum dips
# to EV -1.2 on a quarter of its updates.
NOISE_EV = -3.0
# A discount horizon 1/(1 - gamma) under 2 steps on episodes longer than
# MYOPIC_EPISODE horizons: the advantages are one-step rewards (Catch at gamma 1e-4:
# 9-step episodes, only the last move gets credit; return 0.07 against 0.9).
MYOPIC_HORIZON = 2.0
MYOPIC_EPISODE = 2.0


def _divides_by_advantage_std(config: PPOConfig) -> bool:
    """Only a normalization that divides by the std blows near-zero noise up."""
    return strategies.of(config).advantage_norm.divides_by_std


def _myopic_signal(cell: Cell) -> Signal | None:
    """A discount whose horizon 1/(1 - gamma) is under MYOPIC_HORIZON steps on episodes
    several times longer: each advantage is the next reward minus the critic's guess,
    so every action but the last before a reward gets no credit for it."""
    lengths = cell.get("episode_length")
    if lengths is None:
        return None
    horizon = np.full(lengths.shape, 1.0 / (1.0 - float(cell.config.gamma)))
    return Signal((Criterion("discount horizon 1/(1-gamma)", horizon, "<", MYOPIC_HORIZON),
                   Criterion("episode_length", lengths, ">", MYOPIC_EPISODE * MYOPIC_HORIZON)),
                  "a discount that sees one step on episodes of many: the advantages carry "
                  "the next reward, not the return", " on ")


def _below_resolution_signal(cell: Cell) -> Signal | None:
    """Returns smaller than the critic's learning rate: Adam moves the critic's output by
    about its lr every step, so it cannot resolve them, and its jitter is the advantages."""
    returns, lr = cell.get("episode_return"), cell.get("lr_value")
    chosen = strategies.of(cell.config)
    if returns is None or lr is None or cell.config.reward_scaling \
            or not chosen.value_target.return_units:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reached = np.nanmax(np.where(cell.window, np.abs(returns), np.nan), axis=1,
                            keepdims=True)
    return Signal((Criterion("max |episode return| / value lr", ratio(
        np.broadcast_to(reached, lr.shape), lr), "<", 1.0),),
        "returns below the critic's resolution: its output moves by about its lr per step")


def _noise_signals(cell: Cell, scale: np.ndarray | None) -> tuple[list[Signal], dict]:
    """Tiny advantages at the return scale, flat targets, advantages made of the
    critic's error, a one-step discount, returns below the critic's resolution; with
    their evidence columns."""
    std = cell.get("advantage_std")
    relative = ratio(std, scale) if scale is not None else std
    signals = [Signal((Criterion("advantage_std / return scale", relative, "<",
                                 NOISE_ADVANTAGE),),
                      "advantage std before normalization vs the return scale")]
    derived = {"adv std / scale": relative}
    target_std = cell.get("target_std")
    if target_std is not None and scale is not None:
        spread = ratio(target_std, scale)
        signals.append(Signal((Criterion("target_std / return scale", spread, "<",
                                         FLAT_TARGETS),),
                              "flat critic targets on an unsolved task: the returns do not "
                              "vary, so the advantages can only be the critic's error"))
        derived["target std / scale"] = spread
    ev = cell.get("explained_variance")
    if ev is not None:
        signals.append(Signal((Criterion("explained_variance", ev, "<", NOISE_EV),),
                              "the critic's error dominates the advantages' variance"))
    signals += [s for s in (_myopic_signal(cell), _below_resolution_signal(cell)) if s]
    return signals, derived


def _check_noise_advantages(cell: Cell) -> Verdict:
    """Pre-normalization advantage std below NOISE_ADVANTAGE x the return scale, flat
    targets, or explained variance below NOISE_EV, while the seed has not solved the task."""
    ev = cell.get("explained_variance")
    if cell.get("advantage_std") is None and ev is not None:
        signal = Signal((Criterion("explained_variance", ev, "<", NOISE_EV),),
                        "no advantage std logged: the critic's error dominates the "
                        "advantages' variance")
        evaluated = cell.window & np.isfinite(ev) & ~solved(cell) & ~sampled_near_best(cell)
        return verdict_of([signal], evaluated)
    missing = not_recorded(cell, ["advantage_std"])
    if missing:
        return missing
    signals, derived = _noise_signals(cell, return_scale(cell))
    relative = signals[0].criteria[0].values
    # flat targets at the best training return: every sampled episode already ends at
    # the best (e.g. CartPole's 500), which is no noise
    evaluated = cell.window & np.isfinite(relative) & ~solved(cell) & ~sampled_near_best(cell)
    return verdict_of(signals, evaluated, derived=derived)


NOISE_ADVANTAGES = Rule(
    name="noise_advantages",
    title="Noise advantages",
    description="The advantages carry no return signal (raw advantages near zero, "
    "returns that do not vary on an unsolved task, or a critic whose error dwarfs the "
    "returns' variance), so per-minibatch normalization blows "
    "the critic's noise up to unit std and the policy follows it (case study: "
    "frozen_policy).",
    thresholds={"ratio": NOISE_ADVANTAGE, "flat": FLAT_TARGETS, "ev": NOISE_EV,
                "horizon": MYOPIC_HORIZON, "episode": MYOPIC_EPISODE * MYOPIC_HORIZON},
    condition_template="advantage_std < {ratio:g} x return scale, or target_std < "
    "{flat:g} x return scale, or explained_variance < {ev:g}, or a discount horizon < "
    "{horizon:g} steps, or returns below the value lr",
    threshold_template="advantage_std before normalization < {ratio:g} x the return "
    "scale, or target_std < {flat:g} x the return scale (returns that do not vary carry no "
    "advantage signal), or explained variance < {ev:g} (the critic's error has twice the "
    "returns' std: most of the advantages' variance is its error), or a discount horizon "
    "1/(1-gamma) < {horizon:g} steps on episodes longer than {episode:g} steps (each "
    "advantage is the next reward), or the largest |episode return| below the value lr "
    "(the critic's output moves by about its lr every step: returns that small are below "
    "its resolution; raw targets without reward scaling only), while advantages are "
    "divided by their std; updates where the seed is solved are skipped",
    metrics=("advantage_std", "advantage_mean", "target_std", "explained_variance",
             "episode_length", "episode_return", "lr_value"),
    remedies=(
        Remedy({"advantage_norm": "robust"}, "divides by the std only above "
               "adv_std_threshold, else only centers (case study: frozen_policy)"),
        REWARD_SCALING,
        Remedy({"value_lr": 1e-3}, "a critic that catches up restores the advantage "
               "signal (case study: frozen_policy)"),
    ),
    check=_check_noise_advantages,
    needs=(Needs(("advantage_std",), "the advantages' std vs the return scale"),
           Needs(("explained_variance",), "explained variance alone")),
    sharpens=("advantage_std", "target_std", "target_abs_max"),
    applies=_divides_by_advantage_std,
    scope="advantage normalizations that divide by the std (advantage_norm minibatch or "
    "batch)",
)


# ------------------------------------------------------------ kl cut epochs
KL_CUT_FRACTION = 0.5  # of update_epochs completed: below, most of the epochs were cut
KL_STOP_FACTOR = 1.5  # the epochs stop once approx_kl > 1.5 target_kl (SB3's rule)
# A KL limit this small keeps every update within 10x of the stall line: the policy
# creeps (Catch at target_kl 3e-6: one epoch of four, return -0.29 against 0.9 while
# still rising), so its cut epochs cost the run whether or not the return climbs.
STILL_POLICY_KL = 10 * STALL_KL


def _kl_early_stop(config: PPOConfig) -> bool:
    return config.kl_early_stop


def _stop_limit(cell: Cell, shape: tuple[int, ...]) -> tuple[np.ndarray, Criterion]:
    """The KL stop's limit 1.5 target_kl at every update, and the test that it is low
    enough to hold every update near the stall line."""
    limit = np.full(shape, KL_STOP_FACTOR * float(cell.config.target_kl))
    return limit, Criterion("KL stop 1.5 target_kl", limit, "<", STILL_POLICY_KL)


def _kl_stop_held(cell: Cell) -> Verdict:
    """Without the epochs run (CleanRL logs none): the stop fired at an update where the
    logged KL is above its limit, and a limit under STILL_POLICY_KL holds that update
    near the stall line however many epochs it cut. Exact where the logged KL is the
    one the stop compares (CleanRL: the last minibatch's, checked after each epoch); a
    logged mean over minibatches (SB3's TensorBoard without progress.csv) can sit below
    the minibatch that tripped the stop, so it misses rather than over-reports."""
    kl = cell.get("approx_kl")
    limit, held = _stop_limit(cell, kl.shape)
    fired = Criterion("approx_kl vs the stop's limit 1.5 target_kl", kl / limit, ">", 1.0)
    signal = Signal((fired, held), "no epochs count logged: the KL stop fired (the logged "
                    "KL, the one the stop compares, is over its limit) at a limit that holds "
                    "every update near the stall line", " at ")
    return verdict_of([signal], cell.window & np.isfinite(kl), derived={"KL / limit": kl / limit})


def _check_kl_cut_epochs(cell: Cell) -> Verdict:
    """Per update, the share of the planned epochs run before the KL stop."""
    if cell.get("epochs_completed") is None and cell.get("approx_kl") is not None:
        return _kl_stop_held(cell)
    missing = not_recorded(cell, ["epochs_completed"])
    if missing:
        return missing
    share = cell.get("epochs_completed") / cell.config.update_epochs
    evaluated = cell.window & np.isfinite(share)
    criteria = [Criterion("epochs_completed / update_epochs", share, "<", KL_CUT_FRACTION)]
    basis = "epochs completed before the KL early stop vs update_epochs"
    progress = return_progress(cell)
    if progress is not None:
        # cut epochs that cost nothing: the seed's return keeps rising (case studies
        # kl_early_stop and frozen_policy: the variants with cut epochs are the best)
        basis += f"; seeds whose return gained {STALL_PROGRESS:.0%} of the learning range " \
                 "over the window are still learning"
        criteria.append(Criterion("return gain / learning range", progress, "<",
                                  STALL_PROGRESS))
    signals = [Signal(tuple(criteria))]
    _, held = _stop_limit(cell, share.shape)
    signals.append(Signal((criteria[0], held),
                          "a KL limit that holds every update near the stall line, whatever "
                          "the return does", " at "))
    return verdict_of(signals, evaluated, derived={"epochs share": share}, basis=basis)


KL_CUT_EPOCHS = Rule(
    name="kl_cut_epochs",
    title="Epochs cut by KL early stopping",
    description="Most of each update's epochs are cut: the first optimizer steps already move "
    "the policy past 1.5 target_kl, so every update is a few large steps and the rest of the "
    "rollout goes unused; the epochs planned are not the epochs run (case study: "
    "kl_early_stop: 20 epochs of one full-batch minibatch stopped at epoch 4-14).",
    thresholds={"fraction": KL_CUT_FRACTION, "progress": STALL_PROGRESS,
                "still": STILL_POLICY_KL},
    condition_template="epochs_completed < {fraction:g} x update_epochs, return not rising "
    "or a KL limit 1.5 target_kl < {still:g}",
    threshold_template="epochs_completed (optimizer epochs applied before the KL stop) < "
    "{fraction:g} x update_epochs while the seed's smoothed return gains less than "
    "{progress:.0%} of the learning range over the window, or while the stop's limit 1.5 "
    "target_kl < {still:g} (10x the stall KL: every update is held near the stall line, "
    "so the cut epochs cost the run even where its return creeps up); without an epochs "
    "count (CleanRL logs none), the logged KL, the one the stop compares, over 1.5 "
    "target_kl at a limit < {still:g}; only with kl_early_stop on",
    metrics=("epochs_completed", "approx_kl", "clip_fraction", "entropy", "lr_policy"),
    remedies=(
        Remedy({"num_minibatches": 8}, "more, smaller minibatches: each step moves the "
               "policy less, so more of an epoch fits under the KL limit; with one "
               "full-batch minibatch every epoch is one big step (case study: kl_early_stop)"),
        Remedy({"policy_lr": 1e-4}, "a lower policy lr: smaller steps reach the KL limit "
               "later in the update"),
        Remedy({"update_epochs": 4}, "fewer epochs, so the ones planned are run (case "
               "study: kl_early_stop: 20 -> 5-8)"),
        Remedy({"target_kl": 0.03}, "a target_kl matched to the epochs: the KL a full "
               "update is meant to reach, since the stop is at 1.5 target_kl"),
    ),
    check=_check_kl_cut_epochs,
    needs=(Needs(("epochs_completed",), "epochs completed before the KL stop"),
           Needs(("approx_kl",), "the KL stop fired at a limit near the stall line (the "
                 f"logged KL over its limit 1.5 target_kl, and that limit < {STILL_POLICY_KL:g}, "
                 "10x the stall KL); the epochs it cut are not logged")),
    sharpens=("episode_return",),
    applies=_kl_early_stop,
    scope="kl_early_stop = true",
)


# ----------------------------------------------------------------- registry
RULES: tuple[Rule, ...] = (VALUE_DOMINANCE, CRITIC_COLLAPSE, THROTTLED_UPDATES, POLICY_STALL,
                           ENTROPY_COLLAPSE, EXPLODING_VALUE_LOSS, NOISE_ADVANTAGES,
                           KL_CUT_EPOCHS)
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
