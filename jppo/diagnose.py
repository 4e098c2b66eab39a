"""Automatic diagnosis of a run: rules over the per-update diagnostics that name
PPO's value-function failure modes, with evidence and the config overrides
that address each.

The failure modes, their evidence and their fixes come from the design notes
(`STABILIZATION.md`) and the seed failure reports. Every rule is judged per
seed and in the same way, so one noisy seed cannot make a finding:

* the first `WARMUP_FRACTION` of updates are skipped (the critic and the
  gradient norms start far from their steady state in any healthy run);
* a seed is affected when the rule's condition holds on more than half of
  the updates it evaluates, and it evaluates at least `MIN_EVALUATED`;
* a finding *fires* when at least `FIRE_FRACTION` of the seeds are affected.

Two gates keep solved tasks quiet. Targets are *flat* when their std is below
`FLAT_TARGETS` of the return scale: explained variance then divides by a
near-zero Var[R] and says nothing about the critic. A seed is *solved* at an
update when its latest episode return is within `SOLVED_TOLERANCE` of the
learning range (first return to best) below the best return of the cell: a
policy that stopped changing there has nothing left to move to.

`diagnose_run(run_dir)` writes the run's `diagnosis.md`; `diagnose_frame` works
on any metrics table, and `format_markdown` / `format_terminal` render findings.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jppo import results
from jppo.config import PPOConfig

WARMUP_FRACTION = 0.2
MIN_EVALUATED = 5
FIRE_FRACTION = 0.25
EVIDENCE_ROWS = 8
FLAT_TARGETS = 0.05
SOLVED_TOLERANCE = 0.05
SMOOTHING_FRACTION = 0.05
DOMINANCE_RATIO = 10.0
THROTTLE_RATIO = 10.0
STALL_KL = 1e-4
STALL_CLIP_FRACTION = 1e-3
ANNEALED_LR = 0.25
ENTROPY_FRACTION = 0.1
LOG_STD_DROP = math.log(10.0)
LARGE_RETURN_SCALE = 100.0
NOISE_ADVANTAGE = 1e-3
TINY_ABSOLUTE_CLIP = 0.01

_DEFAULT_CONFIG: dict[str, Any] = dataclasses.asdict(PPOConfig())


@dataclasses.dataclass(frozen=True)
class Remedy:
    """Config overrides that address a failure mode, and why (with the source)."""

    overrides: Mapping[str, Any]
    why: str

    def text(self) -> str:
        """The overrides as `--set` style `field=value` pairs."""
        return ", ".join(f"{k}={_literal(v)}" for k, v in self.overrides.items())


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (variant, env) of a run: `(seeds, updates)` metric arrays and its config."""

    variant: str
    env: str
    seeds: np.ndarray
    updates: np.ndarray
    arrays: Mapping[str, np.ndarray]
    config: Mapping[str, Any]
    best_return: float | None = None  # best smoothed return of any variant on this env

    def get(self, name: str) -> np.ndarray | None:
        """The metric, or None when it was not recorded (absent or all NaN)."""
        values = self.arrays.get(name)
        if values is None or not np.any(np.isfinite(values)):
            return None
        return np.asarray(values, np.float64)

    @property
    def window(self) -> np.ndarray:
        """(seeds, updates) mask of the updates after the warm-up."""
        n = len(self.updates)
        mask = np.arange(n) >= min(math.ceil(WARMUP_FRACTION * n), n - 1)
        return np.broadcast_to(mask, (len(self.seeds), n))


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A rule's per-seed result on one cell."""

    affected: np.ndarray  # (seeds,) bool
    evaluated: np.ndarray  # (seeds, updates) bool: the updates the rule judged
    key: str = ""  # the quantity a summary line quotes
    key_values: np.ndarray | None = None  # (seeds, updates)
    derived: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    basis: str = ""  # which evidence decided
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Rule:
    """A named failure mode: its test on a cell and what to change when it fires."""

    name: str
    title: str
    description: str
    condition: str  # the test in a few words, for one-line summaries
    threshold: str  # the full test, gates included
    metrics: tuple[str, ...]
    remedies: tuple[Remedy, ...]
    check: Callable[[Cell], Verdict]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One rule on one (variant, env): which seeds it affects and the evidence."""

    variant: str
    env: str
    rule: str
    title: str
    fraction: float
    seeds: list[int]
    num_seeds: int
    fired: bool
    evidence: pd.DataFrame
    remedies: list[Remedy]
    threshold: str
    basis: str
    note: str
    key: str
    key_value: float


# ---------------------------------------------------------------- shared pieces


def persistent(condition: np.ndarray, evaluated: np.ndarray) -> np.ndarray:
    """Per seed: `condition` holds on more than half of the evaluated updates.

    Fewer than `MIN_EVALUATED` evaluated updates (or the whole run, if shorter)
    are too few to call a failure persistent, so such a seed is not affected.
    """
    counts = evaluated.sum(axis=1)
    hits = (condition & evaluated).sum(axis=1)
    enough = counts >= min(MIN_EVALUATED, evaluated.shape[1])
    return enough & (2 * hits > counts)


def return_scale(cell: Cell) -> np.ndarray | None:
    """max(|G|, |mean G|) of the rollout's critic targets, per seed and update."""
    mean, abs_max = cell.get("target_mean"), cell.get("target_abs_max")
    if mean is None:
        return abs_max
    return np.abs(mean) if abs_max is None else np.fmax(abs_max, np.abs(mean))


def flat_targets(cell: Cell) -> np.ndarray:
    """Updates whose targets barely vary (std < FLAT_TARGETS x the return scale)."""
    std, scale = cell.get("target_std"), return_scale(cell)
    if std is None or scale is None:
        return np.zeros(cell.window.shape, bool)
    return std < FLAT_TARGETS * scale


def smoothed_returns(returns: np.ndarray) -> np.ndarray:
    """Per seed, the latest episode return carried forward, then a rolling median
    over SMOOTHING_FRACTION of the updates: one lucky rollout is not a level."""
    latest = pd.DataFrame(returns.T).ffill()
    width = max(5, round(SMOOTHING_FRACTION * returns.shape[1]))
    return latest.rolling(width, min_periods=1).median().to_numpy().T


def best_return(returns: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmax(smoothed_returns(returns)))


def solved(cell: Cell) -> np.ndarray:
    """Updates where the seed's smoothed return is within SOLVED_TOLERANCE (of the
    learning range) of the best smoothed return on this environment: of any
    variant in the run when `cell.best_return` is set, else of this cell's seeds."""
    returns = cell.get("episode_return")
    if returns is None:
        return np.zeros(cell.window.shape, bool)
    level = smoothed_returns(returns)
    firsts = [row[np.isfinite(row)][0] for row in returns if np.any(np.isfinite(row))]
    start = float(np.median(firsts))
    best = cell.best_return if cell.best_return is not None else best_return(returns)
    if not best > start:
        return np.zeros(returns.shape, bool)
    with np.errstate(invalid="ignore"):
        return level >= best - SOLVED_TOLERANCE * (best - start)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, inf where the denominator is 0 and the numerator not."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def _finite(*arrays: np.ndarray) -> np.ndarray:
    return np.logical_and.reduce([np.isfinite(a) for a in arrays])


def _not_evaluated(cell: Cell, missing: Sequence[str]) -> Verdict:
    shape = cell.window.shape
    return Verdict(np.zeros(shape[0], bool), np.zeros(shape, bool),
                   basis=f"not evaluated: {', '.join(missing)} not recorded")


def _missing(cell: Cell, names: Sequence[str]) -> list[str]:
    return [name for name in names if cell.get(name) is None]


# ----------------------------------------------------------------------- rules


def _check_value_dominance(cell: Cell) -> Verdict:
    """Shared torso: value-term vs policy-term gradient on the torso. Separate
    networks under global clipping: value vs policy head norm while the clip acts,
    since the value gradient then sets the factor the policy step is shrunk by."""
    conditions, derived, bases = [], {}, []
    value_term = cell.get("grad_norm_value_term_torso")
    policy_term = cell.get("grad_norm_policy_term_torso")
    evaluated = np.zeros(cell.window.shape, bool)
    if value_term is not None and policy_term is not None and np.nanmax(value_term) > 0:
        torso = _ratio(value_term, policy_term)
        derived["torso value/policy term"] = torso
        conditions.append(torso > DOMINANCE_RATIO)
        evaluated |= _finite(value_term, policy_term)
        bases.append("value-loss vs policy-loss gradient on the shared torso")
    value, policy = cell.get("grad_norm_value"), cell.get("grad_norm_policy")
    clip = cell.get("grad_clip_ratio")
    if cell.config.get("grad_clip") == "global" and all(
            x is not None for x in (value, policy, clip)
    ):
        heads = _ratio(value, policy)
        derived["value/policy grad"] = heads
        conditions.append((heads > DOMINANCE_RATIO) & (clip > 1.0))
        evaluated |= _finite(value, policy, clip)
        bases.append("value vs policy head gradient norm under the global clip")
    if not conditions:
        if cell.config.get("grad_clip") == "per_head":
            shape = cell.window.shape
            return Verdict(np.zeros(shape[0], bool), np.zeros(shape, bool),
                           basis="separate networks clipped per head: the value gradient "
                           "cannot reach the policy step")
        return _not_evaluated(cell, ["grad_norm_value", "grad_norm_policy", "grad_clip_ratio"])
    evaluated &= cell.window
    key = next(iter(derived))
    return Verdict(persistent(np.logical_or.reduce(conditions), evaluated), evaluated,
                   key, derived[key], derived, "; ".join(bases))


def _check_critic_collapse(cell: Cell) -> Verdict:
    """Explained variance < 0, skipping updates whose targets are flat."""
    absent = _missing(cell, ["explained_variance"])
    if absent:
        return _not_evaluated(cell, absent)
    ev = cell.get("explained_variance")
    flat = flat_targets(cell)
    evaluated = cell.window & np.isfinite(ev) & ~flat
    basis = "explained variance"
    share = np.mean(flat[cell.window])
    if share > 0:
        basis += (f"; {share:.0%} of the post-warm-up updates had flat targets "
                  "(target_std < 5% of the return scale) and were skipped")
    return Verdict(persistent(ev < 0.0, evaluated), evaluated, "explained_variance", ev,
                   basis=basis)


def _check_throttled_updates(cell: Cell) -> Verdict:
    """Pre-clip gradient norm above THROTTLE_RATIO x max_grad_norm."""
    absent = _missing(cell, ["grad_clip_ratio"])
    if absent:
        return _not_evaluated(cell, absent)
    clip = cell.get("grad_clip_ratio")
    evaluated = cell.window & np.isfinite(clip)
    return Verdict(persistent(clip > THROTTLE_RATIO, evaluated), evaluated, "grad_clip_ratio",
                   clip, basis="pre-clip gradient norm / max_grad_norm")


def _check_policy_stall(cell: Cell) -> Verdict:
    """approx KL < STALL_KL with no clipped samples, while the lr is in force and
    the seed has not solved the task."""
    absent = _missing(cell, ["approx_kl", "clip_fraction"])
    if absent:
        return _not_evaluated(cell, absent)
    kl, clipped = cell.get("approx_kl"), cell.get("clip_fraction")
    evaluated = cell.window & _finite(kl, clipped) & ~solved(cell)
    lr = cell.get("lr_policy")
    basis = "approx KL (k3) and clip fraction"
    if lr is not None:
        annealed = lr < ANNEALED_LR * np.nanmax(lr, axis=1, keepdims=True)
        evaluated &= ~annealed
        if np.any(annealed & cell.window):
            basis += "; updates with the lr annealed below 25% of its peak skipped"
    stalled = (kl < STALL_KL) & (clipped < STALL_CLIP_FRACTION)
    return Verdict(persistent(stalled, evaluated), evaluated, "approx_kl", kl, basis=basis)


def _check_entropy_collapse(cell: Cell) -> Verdict:
    """Discrete: entropy < ENTROPY_FRACTION of its first-update value. Gaussian:
    mean log-std down by ln 10 (the std shrank 10x). Solved updates are skipped."""
    log_std = cell.get("log_std_mean")
    if log_std is not None:
        drop = log_std[:, :1] - log_std
        evaluated = cell.window & np.isfinite(drop) & ~solved(cell)
        return Verdict(persistent(drop >= LOG_STD_DROP, evaluated), evaluated,
                       "log-std drop", drop, {"log-std drop": drop},
                       "mean log-std of the Gaussian policy vs its first update")
    absent = _missing(cell, ["entropy"])
    if absent:
        return _not_evaluated(cell, absent)
    entropy = cell.get("entropy")
    share = _ratio(entropy, entropy[:, :1])
    evaluated = cell.window & np.isfinite(share) & ~solved(cell)
    return Verdict(persistent(share < ENTROPY_FRACTION, evaluated), evaluated,
                   "entropy / initial", share, {"entropy / initial": share},
                   "policy entropy vs its first update")


def _check_exploding_value_loss(cell: Cell) -> Verdict:
    """Return scale > LARGE_RETURN_SCALE and a value loss above what predicting
    the batch mean would cost (0.5 Var[R]), ending no lower than it started."""
    loss_kind = cell.config.get("value_loss")
    target_kind = cell.config.get("value_target")
    if loss_kind not in ("clipped", "mse") or target_kind != "raw":
        shape = cell.window.shape
        return Verdict(np.zeros(shape[0], bool), np.zeros(shape, bool),
                       basis=f"not applicable: value_loss={loss_kind!r} with "
                       f"value_target={target_kind!r} is not a squared error in return units")
    absent = _missing(cell, ["value_loss", "target_std"])
    scale = return_scale(cell)
    if absent or scale is None:
        return _not_evaluated(cell, absent or ["target_abs_max"])
    loss, std = cell.get("value_loss"), cell.get("target_std")
    excess = _ratio(loss, 0.5 * std**2)
    evaluated = cell.window & _finite(loss, excess, scale)
    large = (scale > LARGE_RETURN_SCALE) & (excess > 1.0)
    affected = persistent(large, evaluated) & _not_falling(loss, cell.window)
    note = _absolute_clip_note(cell.config, scale)
    return Verdict(affected, evaluated, "value_loss", loss,
                   {"loss / (0.5 Var[R])": excess},
                   "value loss vs target variance at the return scale", note)


def _not_falling(loss: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Per seed: the median loss over the last third of the window is at least
    its median over the first tenth of the run."""
    n = loss.shape[1]
    start = max(1, math.ceil(0.1 * n))
    last = window & (np.arange(n) >= n - max(1, int(window[0].sum()) // 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        early = np.nanmedian(loss[:, :start], axis=1)
        late = np.nanmedian(np.where(last, loss, np.nan), axis=1)
    return late >= early


def _absolute_clip_note(config: Mapping[str, Any], scale: np.ndarray) -> str:
    """Seed report 002: an absolute value clip of 0.2 is meaningless at returns of 1000+."""
    if config.get("value_loss") != "clipped" or config.get("value_clip_mode") != "absolute":
        return ""
    eps = config.get("value_clip_eps")
    eps = config.get("clip_eps", 0.2) if eps is None else eps
    typical = float(np.nanmedian(scale))
    if not eps < TINY_ABSOLUTE_CLIP * typical:
        return ""
    return (f"the absolute value clip eps={eps:g} is {eps / typical:.1e} of the return scale "
            f"{typical:.3g}: wherever the clipped error is the larger, a sample stops pulling "
            "the critic once it moved eps from its old value (seed report 002)")


def _check_noise_advantages(cell: Cell) -> Verdict:
    """Pre-normalization advantage std below NOISE_ADVANTAGE x max(1, return scale),
    while the advantages are divided by their std and the seed is not solved."""
    mode = cell.config.get("advantage_norm")
    if mode in ("robust", "off"):
        shape = cell.window.shape
        return Verdict(np.zeros(shape[0], bool), np.zeros(shape, bool),
                       basis=f"advantage_norm={mode!r} does not divide by a near-zero std")
    absent = _missing(cell, ["advantage_std"])
    if absent:
        return _not_evaluated(cell, absent)
    std = cell.get("advantage_std")
    scale = return_scale(cell)
    floor = np.ones_like(std) if scale is None else np.fmax(scale, 1.0)
    relative = _ratio(std, floor)
    evaluated = cell.window & np.isfinite(relative) & ~solved(cell)
    return Verdict(persistent(relative < NOISE_ADVANTAGE, evaluated), evaluated,
                   "advantage_std", std, {"adv std / scale": relative},
                   "advantage std before normalization vs the return scale")


_WHY_PER_HEAD = "each head is clipped alone, so a huge value gradient cannot shrink the " \
    "policy step (seed 003)"
_WHY_REWARD_SCALING = "divides rewards by the running return std, so targets and value " \
    "gradients are of unit scale (37 implementation details; seeds 001, 002)"
_WHY_POPART = "the critic learns normalized targets with an output-preserving rescale " \
    "(van Hasselt et al. 2016)"

RULES: tuple[Rule, ...] = (
    Rule(
        name="value_dominance",
        title="Value dominance",
        description="The value-loss gradient outweighs the policy gradient where they meet, "
        "so the critic's error sets the size of the policy step (seed 000).",
        condition=f"value/policy gradient norm > {DOMINANCE_RATIO:g}",
        threshold=f"value/policy gradient norm > {DOMINANCE_RATIO:g}: on the shared torso "
        "(value-loss vs policy-loss term), or with separate networks between the heads while "
        "the global clip is active (grad_clip_ratio > 1)",
        metrics=("grad_norm_value", "grad_norm_policy", "grad_norm_value_term_torso",
                 "grad_norm_policy_term_torso", "grad_clip_ratio", "value_loss"),
        remedies=(
            Remedy({"grad_clip": "per_head"}, _WHY_PER_HEAD),
            Remedy({"reward_scaling": True}, _WHY_REWARD_SCALING),
            Remedy({"value_target": "popart"}, _WHY_POPART),
            Remedy({"vf_coef": 0.1}, "down-weights the value term (seeds 000, 002); eases the "
                   "symptom, not the scale"),
            Remedy({"torso_hidden": ()}, "separate networks share no parameters for the value "
                   "term to take over (seed 000; Andrychowicz et al. 2020)"),
        ),
        check=_check_value_dominance,
    ),
    Rule(
        name="critic_collapse",
        title="Critic collapse",
        description="The critic predicts worse than the batch mean, so advantages carry its "
        "error instead of the return signal (seeds 001, 003, 004).",
        condition="explained_variance < 0",
        threshold=f"explained variance < 0; updates whose target_std < {FLAT_TARGETS:.0%} of "
        "the return scale (max |target|) are skipped, since a near-zero Var[R] (e.g. solved "
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
    ),
    Rule(
        name="throttled_updates",
        title="Throttled updates",
        description="The pre-clip gradient norm is many times max_grad_norm: the clip shrinks "
        "every gradient to a few percent of its size, at a scale set by its largest term "
        "(seed 003: 10-73x).",
        condition=f"grad_clip_ratio > {THROTTLE_RATIO:g}",
        threshold=f"grad_clip_ratio (pre-clip norm / max_grad_norm) > {THROTTLE_RATIO:g}",
        metrics=("grad_clip_ratio", "grad_norm", "grad_norm_value", "grad_norm_policy",
                 "value_loss"),
        remedies=(
            Remedy({"grad_clip": "per_head"}, _WHY_PER_HEAD),
            Remedy({"value_output_gain": 0.01}, "a smaller initial value error breaks the "
                   "clipping feedback loop (seed 003)"),
            Remedy({"reward_scaling": True}, _WHY_REWARD_SCALING),
            Remedy({"max_grad_norm": 2.0}, "seed 003's next step when norms stay above 10x"),
        ),
        check=_check_throttled_updates,
    ),
    Rule(
        name="policy_stall",
        title="Policy stall",
        description="The policy barely changes between rollouts and no sample reaches the "
        "clip range (seeds 001, 003: KL 2e-7 to 2e-5).",
        condition=f"approx_kl < {STALL_KL:g} and clip_fraction < {STALL_CLIP_FRACTION:g}",
        threshold=f"approx_kl < {STALL_KL:g} and clip_fraction < {STALL_CLIP_FRACTION:g}; "
        f"updates where the seed is solved or the lr has annealed below {ANNEALED_LR:.0%} of "
        "its peak are skipped",
        metrics=("approx_kl", "clip_fraction", "entropy", "grad_clip_ratio", "advantage_std"),
        remedies=(
            Remedy({"grad_clip": "per_head"}, "frees the policy step when the value gradient "
                   "holds the global clip (seed 003's cascade)"),
            Remedy({"reward_scaling": True}, _WHY_REWARD_SCALING),
            Remedy({"value_loss": "mse"}, "drops value clipping, seed 003's fix when KL stays "
                   "near zero"),
            Remedy({"policy_lr": 1e-3}, "a larger actor lr (seed 001: 3e-4 -> 1e-3)"),
        ),
        check=_check_policy_stall,
    ),
    Rule(
        name="entropy_collapse",
        title="Entropy collapse",
        description="The policy turns deterministic before it solves the task and stops "
        "exploring (seed 004).",
        condition=f"entropy < {ENTROPY_FRACTION:g} x initial (Gaussian: std < "
        f"{ENTROPY_FRACTION:g} x initial)",
        threshold=f"entropy < {ENTROPY_FRACTION:g} x its first-update value (discrete), or "
        f"mean log-std {LOG_STD_DROP:.2f} (ln 10) below its first-update value (Gaussian); "
        "updates where the seed is solved are skipped",
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
    ),
    Rule(
        name="exploding_value_loss",
        title="Exploding value loss at large return scale",
        description="Returns far beyond unit scale leave the critic unable to reach them: the "
        "value loss is of the squared return scale and does not come down (seeds 000, 002).",
        condition=f"value_loss > 0.5 target_std^2 at max|target| > {LARGE_RETURN_SCALE:g}, "
        "not falling",
        threshold=f"return scale max|target| > {LARGE_RETURN_SCALE:g} and value_loss > 0.5 "
        "target_std^2 (worse than predicting the batch mean), and the median loss over the "
        "last third of the window >= its median over the first 10% of updates; squared-error "
        "losses on raw targets only",
        metrics=("value_loss", "target_abs_max", "target_mean", "target_std", "value_mean",
                 "value_clip_fraction"),
        remedies=(
            Remedy({"value_clip_mode": "relative"}, "value clip eps in units of the return "
                   "std instead of return units (seed 002, fix 1)"),
            Remedy({"reward_scaling": True}, _WHY_REWARD_SCALING),
            Remedy({"value_target": "popart"}, _WHY_POPART),
            Remedy({"value_target": "symlog", "value_loss": "hl_gauss"}, "compressed targets "
                   "on a fixed support, classification instead of regression (DreamerV3; "
                   "Farebrother et al. 2024)"),
            Remedy({"vf_coef": 0.1}, "down-weights the value term (seed 002, fix 3)"),
        ),
        check=_check_exploding_value_loss,
    ),
    Rule(
        name="noise_advantages",
        title="Noise advantages",
        description="Raw advantages are near zero, so per-minibatch normalization blows noise "
        "up to unit std and the policy follows it (seed 001).",
        condition=f"advantage_std < {NOISE_ADVANTAGE:g} x max(1, return scale)",
        threshold=f"advantage_std before normalization < {NOISE_ADVANTAGE:g} x max(1, return "
        "scale), while advantages are divided by their std; updates where the seed is solved "
        "are skipped",
        metrics=("advantage_std", "advantage_mean", "target_std", "explained_variance"),
        remedies=(
            Remedy({"advantage_norm": "robust"}, "divides by the std only above "
                   "adv_std_threshold, else only centers (seed 001)"),
            Remedy({"reward_scaling": True}, _WHY_REWARD_SCALING),
            Remedy({"value_lr": 1e-3}, "a critic that catches up restores the advantage "
                   "signal (seed 001)"),
        ),
        check=_check_noise_advantages,
    ),
)


# ------------------------------------------------------------------ evaluation


def _cell_config(info: Mapping[str, Any] | None, variant: str) -> dict[str, Any]:
    """The variant's full config from run.json, standard PPO defaults for the rest."""
    config = dict(_DEFAULT_CONFIG)
    entry = ((info or {}).get("variants") or {}).get(variant) or {}
    config.update(entry.get("config") or entry.get("overrides") or {})
    return config


def make_cell(frame: pd.DataFrame, variant: str, env: str,
              info: Mapping[str, Any] | None = None, best: float | None = None) -> Cell:
    rows = frame[(frame["variant"] == variant) & (frame["env"] == env)]
    return Cell(variant, env, np.sort(rows["seed"].unique()), np.sort(rows["update"].unique()),
                results.metric_arrays(frame, variant, env), _cell_config(info, variant), best)


def _evidence_table(cell: Cell, rule: Rule, verdict: Verdict) -> pd.DataFrame:
    """Median across seeds at EVIDENCE_ROWS evenly spaced updates, warm-up included."""
    n = len(cell.updates)
    rows = np.unique(np.linspace(0, n - 1, min(EVIDENCE_ROWS, n)).round().astype(int))
    columns: dict[str, Any] = {"update": cell.updates[rows]}
    series = {"env_steps": cell.get("env_steps"), "episode_return": cell.get("episode_return")}
    series |= {name: cell.get(name) for name in rule.metrics}
    series |= dict(verdict.derived)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, values in series.items():
            if values is not None:
                columns[name] = np.nanmedian(values[:, rows], axis=0)
    if "env_steps" in columns:
        columns["env_steps"] = columns["env_steps"].astype(np.int64)
    return pd.DataFrame(columns)


def _applicable(remedies: Sequence[Remedy], config: Mapping[str, Any]) -> list[Remedy]:
    """The remedies not already in force in `config`."""
    return [r for r in remedies
            if not all(_same(config.get(k), v) for k, v in r.overrides.items())]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return a == b


def diagnose_cell(cell: Cell, rule: Rule) -> Finding:
    verdict = rule.check(cell)
    affected = [int(s) for s in cell.seeds[verdict.affected]]
    fraction = len(affected) / max(len(cell.seeds), 1)
    key_value = math.nan
    if verdict.key_values is not None and np.any(verdict.evaluated):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            key_value = float(np.nanmedian(verdict.key_values[verdict.evaluated]))
    return Finding(
        variant=cell.variant, env=cell.env, rule=rule.name, title=rule.title,
        fraction=fraction, seeds=affected, num_seeds=len(cell.seeds),
        fired=fraction >= FIRE_FRACTION, evidence=_evidence_table(cell, rule, verdict),
        remedies=_applicable(rule.remedies, cell.config), threshold=rule.threshold,
        basis=verdict.basis, note=verdict.note, key=verdict.key, key_value=key_value,
    )


def diagnose_frame(frame: pd.DataFrame, info: Mapping[str, Any] | None = None) -> list[Finding]:
    """Every rule on every (variant, env) of a metrics table, in rule order per cell.

    Cells come in the run's order (run.json) when `info` is given. "Solved" is
    judged against the best return any variant reached on the environment, so a
    variant that plateaus far below another one is not excused as solved.
    """
    pairs = _ordered_pairs(results.groups(frame), info)
    cells = [make_cell(frame, variant, env, info) for variant, env in pairs]
    best: dict[str, float] = {}
    for cell in cells:
        returns = cell.get("episode_return")
        if returns is not None:
            best[cell.env] = max(best.get(cell.env, -math.inf), best_return(returns))
    findings = []
    for cell in cells:
        cell = dataclasses.replace(cell, best_return=best.get(cell.env))
        findings.extend(diagnose_cell(cell, rule) for rule in RULES)
    return findings


def _ordered_pairs(pairs: Sequence[tuple[str, str]], info: Mapping[str, Any] | None
                   ) -> list[tuple[str, str]]:
    """Environment-major, in run.json's order of environments and variants."""
    envs_order = list((info or {}).get("envs") or [])
    variants_order = list(((info or {}).get("variants") or {}).keys())

    def rank(pair: tuple[str, str]) -> tuple[int, int]:
        variant, env = pair
        return (envs_order.index(env) if env in envs_order else len(envs_order),
                variants_order.index(variant) if variant in variants_order
                else len(variants_order))

    return sorted(pairs, key=rank)


def diagnose_run(run_dir: str | Path) -> list[Finding]:
    """Diagnose a run directory and write its `diagnosis.md`."""
    run_dir = Path(run_dir)
    frame = results.read_metrics(run_dir)
    try:
        info = results.read_run_info(run_dir)
    except FileNotFoundError:
        info = None
    findings = diagnose_frame(frame, info)
    results.atomic_write_text(run_dir / "diagnosis.md", format_markdown(findings, info))
    return findings


# ------------------------------------------------------------------- reporting


def format_markdown(findings: Sequence[Finding], info: Mapping[str, Any] | None = None) -> str:
    """The report: per (variant, env) what fired, with evidence and remedies,
    then a rule x cell table of the fraction of seeds affected."""
    name = (info or {}).get("name")
    lines = [f"# Diagnosis{f': {name}' if name else ''}", "",
             f"Each rule is judged per seed after a warm-up of the first "
             f"{WARMUP_FRACTION:.0%} of updates; a seed is affected when the condition holds "
             f"on more than half of the updates the rule evaluates (at least {MIN_EVALUATED}), "
             f"and a failure mode is reported when at least {FIRE_FRACTION:.0%} of the seeds "
             "are affected. Evidence tables show the median across seeds.", ""]
    for (variant, env), cell in _group_findings(findings).items():
        lines += [f"## {variant} / {env} ({cell[0].num_seeds} seeds)", ""]
        fired = [f for f in cell if f.fired]
        if not fired:
            lines += [f"No failure mode detected ({len(cell)} rules checked).", ""]
        for finding in fired:
            lines += _finding_markdown(finding)
        below = [f for f in cell if f.seeds and not f.fired]
        if below:
            text = ", ".join(f"{f.title} {len(f.seeds)}/{f.num_seeds}" for f in below)
            lines += [f"Below the reporting line: {text} seeds.", ""]
    lines += _summary_markdown(findings)
    return "\n".join(lines)


def _finding_markdown(finding: Finding) -> list[str]:
    rule = _RULE_BY_NAME[finding.rule]
    lines = [f"### {finding.title}: {len(finding.seeds)}/{finding.num_seeds} seeds "
             f"({finding.fraction:.0%})", "", rule.description, "",
             f"- threshold: {finding.threshold}",
             f"- evidence: {finding.basis}",
             f"- seeds affected: {', '.join(map(str, finding.seeds))}"]
    if finding.key:
        lines.append(f"- median {finding.key} over the evaluated updates: "
                     f"{_number(finding.key_value)}")
    if finding.note:
        lines.append(f"- note: {finding.note}")
    lines += ["", _markdown_table(finding.evidence), "", "Remedies:", ""]
    lines += [f"- `{r.text()}`: {r.why}" for r in finding.remedies] or ["- none left to try"]
    return [*lines, ""]


def _summary_markdown(findings: Sequence[Finding]) -> list[str]:
    cells = list(_group_findings(findings))
    if not cells:
        return ["No metrics to diagnose."]
    header = ["failure mode", *(f"{v} / {e}" for v, e in cells)]
    rows = []
    for rule in RULES:
        by_cell = {(f.variant, f.env): f for f in findings if f.rule == rule.name}
        row = [rule.title]
        for cell in cells:
            f = by_cell.get(cell)
            text = "" if f is None else f"{f.fraction:.0%}"
            row.append(f"**{text}**" if f is not None and f.fired else text)
        rows.append(row)
    return ["## Summary: fraction of seeds affected", "",
            _markdown_table(pd.DataFrame(rows, columns=header)), ""]


def format_terminal(findings: Sequence[Finding]) -> str:
    """A few lines per fired finding, one line for the healthy cells."""
    groups = _group_findings(findings)
    lines = []
    healthy = []
    for (variant, env), cell in groups.items():
        fired = [f for f in cell if f.fired]
        if not fired:
            healthy.append(f"{variant} / {env}")
        for f in fired:
            lines.append(f"{variant} / {env}: {f.title} in {len(f.seeds)}/{f.num_seeds} "
                         f"seeds ({f.fraction:.0%})")
            if f.key:
                lines.append(f"  median {f.key} {_number(f.key_value)} after warm-up; "
                             f"fires on {_RULE_BY_NAME[f.rule].condition}")
            if f.remedies:
                lines.append("  try: " + "; ".join(r.text() for r in f.remedies[:3]))
    if healthy:
        lines.append(f"no failure mode detected: {', '.join(healthy)}")
    return "\n".join(lines)


def _group_findings(findings: Sequence[Finding]) -> dict[tuple[str, str], list[Finding]]:
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.variant, f.env), []).append(f)
    return groups


def _markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs an extra dependency)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---"
                          for c in frame.columns) + "|"
    body = ["| " + " | ".join(_number(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _number(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


_RULE_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
