"""Root causes and consequences: the fired findings of one cell ordered by a causal
graph of the failure modes, so a diagnosis names the first cause, not its symptoms.

One failure drags others along: a value gradient that holds the global clip
leaves the policy a gradient near adam_eps (a stalled policy), a critic starved
by the same clip explains nothing (critic collapse), a deterministic policy's
KL is ~0 (a stall again). Each `Link` of `LINKS` is one such mechanism, cause ->
consequence, with a test on the cell's metrics (`Link.evidence`) that says
whether the mechanism is at work here, quoting the numbers that decided. A
finding is a *consequence* of another fired finding when a link between them
holds and the cause's onset does not come after the consequence's (the first
update from which its condition holds on most of the next `ONSET_WINDOW`
updates, median over the affected seeds; `ONSET_SLACK` of the updates of
tolerance); every other fired finding is a *root cause*. Only root causes are
the run's diagnosis: `jppo diagnose` heads its report with them and lists the
consequences under them.

Where two findings explain each other (a cycle), the one earlier in `PRIORITY`
is the root: divergence voids everything after it, a huge value loss explains
the gradients it makes, and so on down to the symptoms of a policy that does
not move.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from jppo.analysis.diagnose.divergence_source import DIVERGENCE
from jppo.analysis.diagnose.engine import (
    FLAT_TARGETS,
    Cell,
    Criterion,
    Finding,
    Rule,
    Signal,
    Verdict,
    judge,
    reached_scale,
    return_scale,
    short_number,
)
from jppo.analysis.diagnose.rules import (
    DOMINANCE_RATIO,
    ENTROPY_FRACTION,
    LARGE_RETURN_SCALE,
    NOISE_EV,
    STALL_KL,
    STUCK_LOG_STD_DROP,
    THROTTLE_RATIO,
    squared_error_in_return_units,
)
from jppo.analysis.metrics import first_nonfinite_update

ONSET_WINDOW = 0.05  # of the updates (at least 5): a condition must hold on most of them
ONSET_SLACK = 0.05  # of the updates: a cause may start this much after its consequence
# The policy head's own pre-clip gradient norm / max_grad_norm: at or above this the
# clip is too tight for the policy alone (throttled updates, not value dominance);
# below it, the policy would pass the clip and it is the value gradient that holds it.
POLICY_OVER_CLIP = THROTTLE_RATIO
# A critic this far below the batch mean's explained variance fails on targets a
# constant would fit: its own failure (a frozen or mis-scaled critic), not the flat
# or shifting targets of a policy that does not move.
OWN_FAILURE_EV = NOISE_EV
# Median approx_kl on the critic's failing updates below this: the policy did not move
# there, so the targets the critic failed on are those of a stalled policy.
STILL_KL = 10 * STALL_KL
STANDARD_VF_COEF = 0.5  # PPOConfig's default weight of the value loss
# Return scale (max |target|) from which the scale alone explains a failing critic: 10x
# the exploding-loss line (rewards x1000: 1e4-1e5; Acrobot's own returns of ~130 are
# within reach of a critic that learns, so one that fails there fails of itself).
EXPLAINS_SCALE = 10 * LARGE_RETURN_SCALE
# An entropy's decline starts a collapse's effects before it crosses the collapse line:
# as a cause, entropy collapse starts where entropy first falls below this share of its
# first value (a Gaussian: its std below it).
DECLINE_SHARE = 0.5
# A critic whose mean closed at least this share of its gap to the targets' mean over
# the judged updates learns (rewards x300: 0.1-0.15); a frozen or epoch-starved one
# closes less (a KL stop at 1.5e-7: 0.014).
CLOSING_CRITIC = 0.05

PRIORITY = (DIVERGENCE, "exploding_value_loss", "throttled_updates", "value_dominance",
            "kl_cut_epochs", "entropy_collapse", "noise_advantages", "critic_collapse",
            "policy_stall")

Evidence = Callable[[Cell, Mapping[str, Verdict]], "str | None"]


@dataclasses.dataclass(frozen=True)
class Link:
    """cause -> consequence: the mechanism in words, and the test on the cell that says
    it is at work here (the numbers that decided, or None: the link does not hold)."""

    cause: str
    consequence: str
    mechanism: str
    evidence: Evidence


def _median(values: np.ndarray | None, mask: np.ndarray) -> float:
    if values is None:
        return math.nan
    picked = np.broadcast_to(values, mask.shape)[mask]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(picked)) if picked.size else math.nan


def condition_of(verdict: Verdict) -> np.ndarray:
    """(seeds, updates): where any of the verdict's signals holds."""
    shape = verdict.evaluated.shape
    if not verdict.signals:
        return np.zeros(shape, bool)
    return np.logical_or.reduce([s.holds(shape) for s in verdict.signals])


def failing_updates(verdict: Verdict) -> np.ndarray:
    """The evaluated updates of the affected seeds on which the condition held."""
    return condition_of(verdict) & verdict.evaluated & verdict.affected[:, None]


def onset(verdict: Verdict) -> float:
    """Median over the affected seeds of the first update position at which the
    condition holds, and on more than half of the ONSET_WINDOW updates from it (NaN:
    never); on the updates the rule evaluates, so never within the warm-up, where
    an untrained critic fails every test."""
    condition = condition_of(verdict) & verdict.evaluated
    n = condition.shape[1]
    width = max(5, round(ONSET_WINDOW * n))
    firsts = []
    for row in np.flatnonzero(verdict.affected):
        held = condition[row].astype(np.float64)
        share = np.convolve(held, np.ones(width) / width, "full")[width - 1:]
        starts = np.flatnonzero((share > 0.5) & (held > 0))
        if starts.size:
            firsts.append(starts[0])
    return float(np.median(firsts)) if firsts else math.nan


def decline_onset(cell: Cell, verdict: Verdict) -> float:
    """The onset of the entropy's decline below DECLINE_SHARE of its first value (a
    Gaussian's std), on the entropy rule's evaluated updates of its affected seeds."""
    log_std, entropy = cell.get("log_std_mean"), cell.get("entropy")
    if log_std is not None:
        values, threshold = log_std[:, :1] - log_std, -math.log(DECLINE_SHARE)
        criterion = Criterion("log-std drop", values, ">=", threshold)
    elif entropy is not None:
        criterion = Criterion("entropy / initial", entropy / entropy[:, :1], "<",
                              DECLINE_SHARE)
    else:
        return math.nan
    signal = Signal((criterion,))
    return onset(Verdict(verdict.affected, verdict.evaluated, signals=(signal,)))


# ------------------------------------------------------------ link evidence


def _always(text: str) -> Evidence:
    """A mechanism that holds whenever both findings fired (the cause's own test is
    the evidence)."""
    return lambda cell, verdicts: text


def _value_holds_clip(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    """The policy head alone would pass the clip: it is the value gradient that holds it."""
    policy = cell.get("grad_norm_policy")
    if policy is None or not np.isfinite(cell.config.max_grad_norm):
        return None
    over = _median(policy / cell.config.max_grad_norm, failing_updates(verdicts[
        "value_dominance"]))
    if not over < POLICY_OVER_CLIP:
        return None
    return (f"the policy head's own gradient is {short_number(over)}x max_grad_norm "
            f"(< {short_number(POLICY_OVER_CLIP)}): the value gradient is what holds the clip")


def _clip_too_tight(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    """The policy head alone exceeds the clip many times: the clip, not the value, is
    what throttles (a tiny max_grad_norm)."""
    policy = cell.get("grad_norm_policy")
    if policy is None or not np.isfinite(cell.config.max_grad_norm):
        return None
    over = _median(policy / cell.config.max_grad_norm, failing_updates(verdicts[
        "throttled_updates"]))
    if not over >= POLICY_OVER_CLIP:
        return None
    return (f"the policy head's own gradient alone is {short_number(over)}x max_grad_norm "
            f"(>= {short_number(POLICY_OVER_CLIP)}): the clip is too tight for either head")


def _critic_not_own_failure(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    """The critic's failing updates are updates where the policy did not move, and it is
    not far below a constant predictor: its targets are a stalled policy's."""
    mask = failing_updates(verdicts["critic_collapse"])
    ev = _median(cell.get("explained_variance"), mask)
    kl = _median(cell.get("approx_kl"), mask)
    if not ev >= OWN_FAILURE_EV or not kl < STILL_KL:
        return None
    return (f"on the critic's failing updates approx_kl {short_number(kl)} < "
            f"{short_number(STILL_KL)} (the policy does not move, so neither do its targets) "
            f"and explained_variance {short_number(ev)} >= {short_number(OWN_FAILURE_EV)} "
            "(not far below a constant predictor)")


def _epochs_cut(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    epochs = cell.get("epochs_completed")
    if epochs is None:
        return None
    share = _median(epochs / cell.config.update_epochs, verdicts["kl_cut_epochs"].evaluated)
    return (f"epochs_completed / update_epochs {short_number(share)}: the KL stop ends both "
            "heads' epochs, so the critic trains as little as the policy")


def _advantages_without_signal(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    """Noise advantages that fired on the returns (tiny advantages at the return scale,
    flat targets), not on the critic's error alone: the returns carry no signal, so any
    critic explains nothing of them."""
    verdict = verdicts["noise_advantages"]
    mask = verdict.evaluated & verdict.affected[:, None]
    returns_based = [s for s in verdict.signals if "explained_variance" not in
                     s.criteria[0].name]
    held = [(s, _share(s.holds(mask.shape), mask)) for s in returns_based]
    best = max(held, key=lambda pair: pair[1], default=None)
    if best is None or not best[1] > 0.5:
        return None
    criterion = best[0].criteria[0]
    value = _median(criterion.values, mask)
    return (f"{criterion.name} {short_number(value)} {criterion.op} "
            f"{short_number(criterion.threshold)} on {best[1]:.0%} of the updates: the "
            "returns carry no signal a critic could explain")


def _critic_error_drives(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    """Noise advantages that fired on the critic's error (explained variance far below 0)
    rather than on the returns: the critic's failure makes the noise."""
    if _advantages_without_signal(cell, verdicts) is not None:
        return None
    ev = _median(cell.get("explained_variance"), failing_updates(verdicts["critic_collapse"]))
    return f"explained_variance {short_number(ev)}: the advantages are the critic's error"


def _critic_failed_first(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    """A critic far below a constant predictor (its own failure) from before the policy
    stalled: the advantages it makes give the policy nothing consistent to follow."""
    ev = _median(cell.get("explained_variance"), failing_updates(verdicts["critic_collapse"]))
    first, then = onset(verdicts["critic_collapse"]), onset(verdicts["policy_stall"])
    if not ev < OWN_FAILURE_EV or not first + ONSET_SLACK * len(cell.updates) < then:
        return None
    return (f"explained_variance {short_number(ev)} < {short_number(OWN_FAILURE_EV)} (far "
            "below a constant predictor) from before the stall")


def _stalled_without_signal(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    """Noise advantages on the returns (flat targets, tiny advantages) of a policy that
    does not move: a still policy on an unsolved task sees the same poor return."""
    returns = _advantages_without_signal(cell, verdicts)
    kl = _median(cell.get("approx_kl"), failing_updates(verdicts["noise_advantages"]))
    if returns is None or not kl < STILL_KL:
        return None
    return f"approx_kl {short_number(kl)} < {short_number(STILL_KL)} there; {returns}"


def _critic_failed_while_exploring(cell: Cell, verdicts: Mapping[str, Verdict]
                                   ) -> str | None:
    """The critic failed on updates where the policy still explored (entropy above the
    collapse line): its failure came first, not from a deterministic policy."""
    mask = failing_updates(verdicts["critic_collapse"])
    log_std, entropy = cell.get("log_std_mean"), cell.get("entropy")
    if log_std is not None:
        drop = _median(log_std[:, :1] - log_std, mask)
        if not drop < STUCK_LOG_STD_DROP:
            return None
        return f"on the critic's failing updates the std was {short_number(math.exp(-drop))}" \
            " of its first value: the policy still explored"
    if entropy is None:
        return None
    share = _median(entropy / entropy[:, :1], mask)
    if not share >= ENTROPY_FRACTION:
        return None
    return (f"on the critic's failing updates entropy was {short_number(share)} of its first "
            "value: the policy still explored")


def _outgrown(cell: Cell, verdicts: Mapping[str, Verdict], mode: str) -> str | None:
    """A critic whose outputs have not grown to the targets' spread (value_std under
    FLAT_TARGETS of target_std) while its mean climbs toward theirs: it learns at its
    optimizer's pace, and the scale is what it cannot reach (Breakout, rewards x300, no
    gradient clip: value_std 0.001 against target_std 159, its mean 0 -> 35 toward 250).
    A frozen critic's outputs keep their spread at initialization."""
    value_std, target_std = cell.get("value_std"), cell.get("target_std")
    value, target = cell.get("value_mean"), cell.get("target_mean")
    verdict = verdicts[mode]
    if value_std is None or target_std is None or value is None or target is None:
        return None
    spread = _median(value_std / target_std, failing_updates(verdict))
    closed = []
    for row in np.flatnonzero(verdict.affected):
        at = np.flatnonzero(verdict.evaluated[row] & np.isfinite(value[row]))
        if len(at) > 1:
            gap = np.nanmedian(target[row, at]) - value[row, at[0]]
            closed.append((value[row, at[-1]] - value[row, at[0]]) / gap if gap else 0.0)
    toward = float(np.median(closed)) if closed else math.nan
    if not spread < FLAT_TARGETS or not toward >= CLOSING_CRITIC:
        return None
    return (f"value_std / target_std {short_number(spread)} < {FLAT_TARGETS:g} while the "
            f"critic's mean closed {short_number(toward)} of its gap to the targets' mean: its "
            "outputs have not grown to the return scale")


def _scale_explains(cell: Cell, verdicts: Mapping[str, Verdict], mode: str, large: bool
                    ) -> str | None:
    """Whether the return scale on the mode's failing updates is far beyond the
    exploding-loss line, or the critic learns but has not grown to it (`large`: the
    scale explains a critic's failure), or neither (a critic that fails at that scale
    fails of itself)."""
    scale = return_scale(cell)
    value = _median(scale, failing_updates(verdicts[mode]))
    if math.isnan(value):
        return None
    outgrown = _outgrown(cell, verdicts, "critic_collapse") \
        if "critic_collapse" in verdicts else None
    if (value >= EXPLAINS_SCALE or outgrown is not None) != large:
        return None
    side = ">=" if value >= EXPLAINS_SCALE else "<"
    text = f"return scale max|target| {short_number(value)} {side} {EXPLAINS_SCALE:g}"
    return text if outgrown is None or value >= EXPLAINS_SCALE else f"{text}; {outgrown}"


def standard_weight_dominance(cell: Cell, mode: str, verdicts: Mapping[str, Verdict]
                              ) -> float:
    """The value/policy head gradient ratio on the mode's failing updates, rescaled to
    the standard vf_coef 0.5: what the return scale alone makes of it."""
    value, policy = cell.get("grad_norm_value"), cell.get("grad_norm_policy")
    if value is None or policy is None or not cell.config.vf_coef > 0:
        return math.nan
    heads = value / policy * (STANDARD_VF_COEF / cell.config.vf_coef)
    return _median(heads, failing_updates(verdicts[mode]))


def _scale_dominates(mode: str) -> Evidence:
    """The exploding loss explains a gradient finding where, at the standard vf_coef, the
    value gradient would still outweigh the policy's: the return scale, not the weight."""
    def evidence(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
        heads = standard_weight_dominance(cell, mode, verdicts)
        if heads < DOMINANCE_RATIO:
            return None
        shown = "not logged" if math.isnan(heads) else short_number(heads)
        return (f"at the standard vf_coef {STANDARD_VF_COEF:g} the value/policy head "
                f"gradient would be {shown} (>= {DOMINANCE_RATIO:g} where logged): the "
                "return scale makes it")
    return evidence


def _weight_dominates(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    """A loss that does not come down because the value term's weight (not the return
    scale) holds the clip, which throttles the critic with everything else."""
    heads = standard_weight_dominance(cell, "exploding_value_loss", verdicts)
    if not heads < DOMINANCE_RATIO:
        return None
    return (f"at the standard vf_coef {STANDARD_VF_COEF:g} the value/policy head gradient "
            f"would be {short_number(heads)} (< {DOMINANCE_RATIO:g}): vf_coef "
            f"{cell.config.vf_coef:g}, not the return scale, makes the value term dominate")


def _share(held: np.ndarray, mask: np.ndarray) -> float:
    return float((held & mask).sum() / mask.sum()) if mask.any() else 0.0


def _entropy_first(cell: Cell, verdicts: Mapping[str, Verdict]) -> str | None:
    entropy = cell.get("entropy")
    mask = failing_updates(verdicts["policy_stall"])
    if entropy is None:
        return "a deterministic policy's probabilities saturate: ratio ~1, KL ~0"
    share = _median(entropy / entropy[:, :1], mask)
    return (f"entropy at {short_number(share)} of its first value on the stalled updates: a "
            "deterministic policy's probabilities saturate (ratio ~1, KL ~0)")


def _fails_of_itself(cell: Cell, mask: np.ndarray) -> bool:
    """Explained variance far below a constant predictor's, from an error that is not
    negligible at the return scale the targets have reached: a deterministic policy's
    returns barely vary, so a critic off by 1% of the scale scores an explained
    variance of -30 (Breakout at policy_lr 0.05) without failing of itself."""
    ev = _median(cell.get("explained_variance"), mask)
    if not ev < OWN_FAILURE_EV:
        return False
    loss, scale = cell.get("value_loss"), reached_scale(cell)
    if loss is None or scale is None or not squared_error_in_return_units(cell.config):
        return True
    error = _median(np.sqrt(2.0 * np.fmax(loss, 0.0)) / scale, mask)
    return not error < FLAT_TARGETS


def _deterministic_policy(cell: Cell, verdicts: Mapping[str, Verdict], mode: str
                          ) -> str | None:
    """The policy had collapsed to (near) determinism on the mode's failing updates."""
    mask = failing_updates(verdicts[mode])
    if _fails_of_itself(cell, mask):
        return None
    log_std, entropy = cell.get("log_std_mean"), cell.get("entropy")
    if log_std is not None:
        drop = _median(log_std[:, :1] - log_std, mask)
        if not drop >= STUCK_LOG_STD_DROP:
            return None
        return (f"the Gaussian's std at {short_number(math.exp(-drop))} of its first value on "
                f"the {mode} updates: the returns of a near-deterministic policy barely "
                "depend on its actions")
    if entropy is None:
        return None
    share = _median(entropy / entropy[:, :1], mask)
    if not share < ENTROPY_FRACTION:
        return None
    return (f"entropy at {short_number(share)} of its first value on the {mode} updates: "
            "the returns of a (near) deterministic policy barely depend on its actions")


LINKS: tuple[Link, ...] = (
    Link("exploding_value_loss", "value_dominance", "errors of the squared return scale "
         "make the value gradient outweigh the policy's", _scale_dominates("value_dominance")),
    Link("exploding_value_loss", "throttled_updates", "the value gradient of a huge loss "
         "holds the global clip", _scale_dominates("throttled_updates")),
    Link("exploding_value_loss", "critic_collapse", "the critic cannot reach targets of that "
         "scale (an absolute value clip keeps it from following)",
         lambda cell, v: _scale_explains(cell, v, "critic_collapse", True)),
    Link("critic_collapse", "exploding_value_loss", "a critic that does not learn cannot "
         "bring its loss down, at a scale it could reach",
         lambda cell, v: _scale_explains(cell, v, "exploding_value_loss", False)),
    Link("exploding_value_loss", "policy_stall", "the clip set by the value gradient leaves "
         "the policy a gradient near adam_eps", _scale_dominates("policy_stall")),
    Link("exploding_value_loss", "noise_advantages", "a critic that cannot reach its "
         "targets makes the advantages its error",
         lambda cell, v: _scale_explains(cell, v, "noise_advantages", True)),
    Link("value_dominance", "exploding_value_loss", "the clip the value term holds throttles "
         "the critic too: its loss cannot come down", _weight_dominates),
    Link("throttled_updates", "exploding_value_loss", "a clip too tight for either head "
         "keeps the critic's loss from coming down", _clip_too_tight),
    Link("policy_stall", "noise_advantages", "a policy that does not move sees the same "
         "returns every rollout: the advantages carry no signal", _stalled_without_signal),
    Link("critic_collapse", "entropy_collapse", "a critic's error that is a fixed function "
         "of the state makes advantages that consistently favor some actions: the policy "
         "converges on them", _critic_failed_while_exploring),
    Link("entropy_collapse", "value_dominance", "a deterministic policy's gradient vanishes: "
         "any value gradient outweighs it",
         lambda cell, v: _deterministic_policy(cell, v, "value_dominance")),
    Link("entropy_collapse", "throttled_updates", "a deterministic policy's vanishing "
         "gradient is what the clip leaves near adam_eps",
         lambda cell, v: _deterministic_policy(cell, v, "throttled_updates")),
    Link("value_dominance", "throttled_updates", "the value gradient sets the pre-clip "
         "norm", _value_holds_clip),
    Link("throttled_updates", "value_dominance", "a clip too tight for either head leaves "
         "the policy near adam_eps whatever the value gradient", _clip_too_tight),
    Link("value_dominance", "policy_stall", "the clip set by the value gradient leaves the "
         "policy a gradient near adam_eps", _always("the policy's clipped gradient near "
         "adam_eps")),
    Link("throttled_updates", "policy_stall", "a clipped gradient near adam_eps barely moves "
         "the policy", _always("the policy's clipped gradient near adam_eps")),
    Link("value_dominance", "critic_collapse", "the policy does not move under the clip the "
         "value gradient holds, and the clip throttles the critic too",
         _always("one global clip shrinks both heads")),
    Link("throttled_updates", "critic_collapse", "the clip shrinks the critic's gradient as "
         "well: it cannot follow the returns", _always("one global clip shrinks both heads")),
    Link("throttled_updates", "noise_advantages", "a throttled critic makes the advantages "
         "its error", _always("one global clip shrinks both heads")),
    Link("kl_cut_epochs", "policy_stall", "the KL stop ends each update after a step or "
         "two: the policy barely moves", _epochs_cut),
    Link("kl_cut_epochs", "critic_collapse", "the KL stop ends the critic's epochs too",
         _epochs_cut),
    Link("kl_cut_epochs", "exploding_value_loss", "the KL stop ends the critic's epochs "
         "too: its loss cannot come down", _epochs_cut),
    Link("entropy_collapse", "policy_stall", "a deterministic policy's probabilities "
         "saturate: ratio ~1 and KL ~0 between rollouts", _entropy_first),
    Link("entropy_collapse", "critic_collapse", "a deterministic policy stops moving: the "
         "critic's targets are those of one fixed policy, whose returns its actions barely "
         "change", lambda cell, v: _deterministic_policy(cell, v, "critic_collapse")),
    Link("entropy_collapse", "noise_advantages", "a deterministic policy's actions barely "
         "change its return: the advantages carry no signal",
         lambda cell, v: _deterministic_policy(cell, v, "noise_advantages")),
    Link("policy_stall", "critic_collapse", "a policy that does not move leaves the critic "
         "flat or stale targets: explained variance says nothing of the critic",
         _critic_not_own_failure),
    Link("critic_collapse", "policy_stall", "advantages made of the critic's error give "
         "the policy no consistent direction: its steps cancel and it stops moving",
         _critic_failed_first),
    Link("noise_advantages", "critic_collapse", "returns without signal give explained "
         "variance nothing to explain", _advantages_without_signal),
    Link("critic_collapse", "noise_advantages", "a critic worse than the batch mean makes "
         "the advantages its error", _critic_error_drives),
)


@dataclasses.dataclass(frozen=True)
class Cause:
    """Why a fired finding is a consequence: of which finding, by which mechanism,
    with the numbers and the onsets (update positions) that decided."""

    cause: str
    mechanism: str
    evidence: str
    cause_onset: float
    consequence_onset: float

    def text(self, updates: np.ndarray) -> str:
        def at(position: float) -> str:
            return "-" if math.isnan(position) else str(int(updates[int(position)]))
        return (f"{self.mechanism}; {self.evidence}; onset: update {at(self.cause_onset)} "
                f"vs {at(self.consequence_onset)}")


def _diverged_first(cell: Cell, finding: Finding, divergence: Finding) -> Cause | None:
    """Divergence voids a seed's run: a finding all of whose seeds diverged is its
    consequence (its metrics before the NaN are the run heading for it)."""
    firsts = first_nonfinite_update(cell.arrays)
    if firsts is None or not set(finding.seeds) <= set(divergence.seeds):
        return None
    first = float(np.median([firsts[list(cell.seeds).index(s)] for s in finding.seeds]))
    return Cause(DIVERGENCE, "a NaN or inf voids the seed's parameters",
                 "every affected seed diverged", first, first)


def explained_by(cell: Cell, fired: Mapping[str, Finding], verdicts: Mapping[str, Verdict]
                 ) -> dict[str, list[Cause]]:
    """Per fired finding, the causes among the other fired findings whose link holds
    and whose onset does not come after its own."""
    onsets = {name: onset(v) for name, v in verdicts.items()}
    causes_at = dict(onsets)
    if "entropy_collapse" in verdicts:
        causes_at["entropy_collapse"] = min(onsets["entropy_collapse"],
                                            decline_onset(cell, verdicts["entropy_collapse"]))
    slack = ONSET_SLACK * len(cell.updates)
    found: dict[str, list[Cause]] = {name: [] for name in fired}
    for name, finding in fired.items():
        if DIVERGENCE in fired and name != DIVERGENCE:
            cause = _diverged_first(cell, finding, fired[DIVERGENCE])
            found[name] += [] if cause is None else [cause]
    for link in LINKS:
        if link.cause not in verdicts or link.consequence not in verdicts:
            continue
        first, then = causes_at[link.cause], onsets[link.consequence]
        if first > then + slack:
            continue
        evidence = link.evidence(cell, verdicts)
        if evidence is not None:
            found[link.consequence].append(Cause(link.cause, link.mechanism, evidence,
                                                 first, then))
    return found


def roots_of(explained: Mapping[str, Sequence[Cause]]) -> list[str]:
    """The fired findings no other explains; in a cycle (each explains another) the
    one earlier in PRIORITY (then in the given order) is the root."""
    names = list(explained)
    roots = [n for n in names if not explained[n]]
    reached = _reachable(roots, explained)
    for name in sorted(names, key=_rank):
        if name not in reached:
            roots.append(name)
            reached |= _reachable([name], explained)
    return [n for n in names if n in roots]


def _rank(name: str) -> int:
    return PRIORITY.index(name) if name in PRIORITY else len(PRIORITY)


def _reachable(starts: Sequence[str], explained: Mapping[str, Sequence[Cause]]) -> set[str]:
    """The findings reachable from `starts` by cause -> consequence links."""
    seen, todo = set(starts), list(starts)
    while todo:
        current = todo.pop()
        for name, causes in explained.items():
            if name not in seen and any(c.cause == current for c in causes):
                seen.add(name)
                todo.append(name)
    return seen


def order(cell: Cell, findings: Sequence[Finding], rules: Sequence[Rule]) -> list[Finding]:
    """The cell's findings with root / consequence marked on the fired ones, each
    consequence naming the cause it is listed under (a root, or a consequence of one)."""
    fired = {f.rule: f for f in findings if f.fired}
    if len(fired) < 2:
        return list(findings)
    by_name = {rule.name: rule for rule in rules}
    verdicts = {name: judge(cell, by_name[name]) for name in fired if name in by_name}
    explained = explained_by(cell, fired, verdicts)
    roots = roots_of(explained)
    marked = []
    for finding in findings:
        if not finding.fired or finding.rule in roots:
            marked.append(finding)
            continue
        causes = explained[finding.rule]
        chosen = min(causes, key=lambda c: (c.cause not in roots, _rank(c.cause)))
        marked.append(dataclasses.replace(finding, root=False, caused_by=chosen.cause,
                                          cause_text=chosen.text(cell.updates)))
    return marked


def root_findings(findings: Sequence[Finding]) -> list[Finding]:
    """The fired findings that are root causes: the run's diagnosis."""
    return [f for f in findings if f.fired and f.root]
