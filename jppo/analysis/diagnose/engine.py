"""How every rule is judged: cells, warm-up, persistence, the flat-target and
solved gates, evidence tables, and evaluating rules into findings.

Rules never see a metrics table: they get one `Cell` (a variant on an
environment, `(seeds, updates)` arrays and its `PPOConfig`) and return a
`Verdict`; the engine turns verdicts into `Finding`s the same way for all of
them, so one noisy seed or the first updates cannot make a finding.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jppo.analysis.diagnose.network_size import policy_parameters
from jppo.analysis.metrics import TRAINING_RETURN, first_nonfinite_update, return_metric
from jppo.core.config import CONFIG_FIELDS, PPOConfig
from jppo.runs import results

WARMUP_FRACTION = 0.2  # of the updates skipped: every run starts far from steady state
MIN_EVALUATED = 5  # fewer evaluated updates cannot show a persistent failure
# A seed whose judged metrics are finite on fewer than MIN_EVALUATED updates of its
# window, or on less than this share of them, is not judged by that rule (a trainer
# that logs NaN most of the time): the rule cannot say "no failure" there.
MIN_FINITE_SHARE = 0.25
FIRE_FRACTION = 0.25  # of the seeds affected before a finding is reported
EVIDENCE_ROWS = 8
FLAT_TARGETS = 0.05  # target std below this x the return scale: Var[R] says nothing
SOLVED_TOLERANCE = 0.05  # of the learning range below the best return: solved
# The same for the training return where evaluations judge "solved": the sampled
# policy's return carries exploration noise that the greedy evaluation removes
# (DeliveryChain at clip_eps 0.3: greedy at the best return, sampled 3-6% of the
# range below it), while a near-uniform sampled policy behind a greedy evaluation
# at the best return sits 90% of the range below it.
SAMPLED_TOLERANCE = 0.25
SMOOTHING_FRACTION = 0.05  # of the updates in the rolling median of returns
# An absorbing failure (a policy turned deterministic: its gradient vanishes, so it
# does not come back) is also persistent where it holds on most of the last
# 1/ABSORBING_LATE_PARTS of the judged updates: a short run may reach it only there.
ABSORBING_LATE_PARTS = 3


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
    config: PPOConfig
    best_return: float | None = None  # best smoothed return of any variant on this env
    best_training: float | None = None  # the same of the training return (episode_return)
    solved_gate: bool = True  # False: judge solved updates too (a latent finding's check)
    # parameters of the policy group where the run's network can be rebuilt (jppo runs);
    # None for other trainers' logs (network_size)
    policy_parameters: int | None = None

    def get(self, name: str) -> np.ndarray | None:
        """The metric, or None when it was not recorded (absent or all NaN)."""
        values = self.arrays.get(name)
        if values is None or not np.any(np.isfinite(values)):
            return None
        return np.asarray(values, np.float64)

    @property
    def return_name(self) -> str:
        """The return the solved gate reads: `eval_return` (deterministic
        evaluations) when recorded, else `episode_return`."""
        return return_metric(self.arrays)

    def returns(self) -> np.ndarray | None:
        return self.get(self.return_name)

    @property
    def window(self) -> np.ndarray:
        """(seeds, updates) mask of the updates after the warm-up and before the
        seed's first non-finite update: from there on its parameters are void, so
        its metrics describe no policy (the divergence finding reports it)."""
        n = len(self.updates)
        mask = np.arange(n) >= min(math.ceil(WARMUP_FRACTION * n), n - 1)
        mask = np.broadcast_to(mask, (len(self.seeds), n))
        firsts = first_nonfinite_update(self.arrays)
        if firsts is None:
            return mask
        void = (firsts[:, None] >= 0) & (np.arange(n)[None, :] >= firsts[:, None])
        return mask & ~void


COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One quantity compared with its threshold at every update: `values op threshold`.
    A per-seed quantity (e.g. a late/early ratio) is passed as `(seeds, 1)`."""

    name: str  # as the summary line quotes it, e.g. "explained_variance"
    values: np.ndarray  # (seeds, updates) or (seeds, 1)
    op: str  # one of COMPARISONS
    threshold: float

    def holds(self, shape: tuple[int, int]) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.broadcast_to(COMPARISONS[self.op](self.values, self.threshold), shape)

    def quote(self, mask: np.ndarray) -> tuple[float, str]:
        """The median over `mask` and "name median op threshold"."""
        values = np.broadcast_to(self.values, mask.shape)[mask]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = float(np.nanmedian(values)) if values.size else math.nan
        text = f"{self.name} {short_number(median)} {self.op} {short_number(self.threshold)}"
        return median, text


@dataclasses.dataclass(frozen=True)
class Signal:
    """Criteria that together make a rule's condition at an update (all must hold);
    a rule's condition holds where any of its signals does."""

    criteria: tuple[Criterion, ...]
    basis: str = ""  # the evidence in words, e.g. "explained variance"
    joiner: str = " and "  # after the first criterion in a quote (the rest: " and ")

    def holds(self, shape: tuple[int, int]) -> np.ndarray:
        return np.logical_and.reduce([c.holds(shape) for c in self.criteria])


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A rule's per-seed result on one cell. `signals` say what the condition
    compares, so a finding quotes the criteria that held on its affected seeds;
    a verdict without them quotes the median of `key_values`."""

    affected: np.ndarray  # (seeds,) bool
    evaluated: np.ndarray  # (seeds, updates) bool: the updates the rule judged
    key: str = ""  # the quantity a summary line quotes
    key_values: np.ndarray | None = None  # (seeds, updates)
    derived: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    basis: str = ""  # which evidence decided
    note: str = ""
    signals: tuple[Signal, ...] = ()
    absorbing: bool = False  # persistent also on most of the late updates (`persisting`)
    late_seeds: int = 0  # affected seeds on which it persisted on the late updates only


def verdict_of(signals: Sequence[Signal], evaluated: np.ndarray, *, basis: str = "",
               derived: Mapping[str, np.ndarray] | None = None, note: str = "",
               absorbing: bool = False) -> Verdict:
    """The verdict of a condition made of `signals` (any of them, each all of its
    criteria) over the `evaluated` updates: a seed is affected where it persists
    (`persisting`; `absorbing`: a state the run does not leave once reached)."""
    shape = evaluated.shape
    condition = np.logical_or.reduce([s.holds(shape) for s in signals])
    first = signals[0].criteria[0]
    affected = persisting(condition, evaluated, absorbing)[0]
    return Verdict(affected, evaluated, first.name, np.broadcast_to(first.values, shape),
                   dict(derived or {}), basis or "; ".join(s.basis for s in signals if s.basis),
                   note, tuple(signals), absorbing,
                   int(np.sum(affected & ~persistent(condition, evaluated))))


def _everywhere(config: PPOConfig) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Needs:
    """A set of metrics a rule can judge a cell on, and that criterion in words; a rule
    with several judges on the first whose metrics are all logged."""

    metrics: tuple[str, ...]
    criterion: str


@dataclasses.dataclass(frozen=True)
class Rule:
    """A named failure mode: its test on a cell and what to change when it fires.

    `condition` and `threshold` are templates filled from `thresholds`, the same
    numbers the check compares against, so the text cannot drift from the test.
    `applies` says from the config alone whether the rule can judge the cell;
    `scope` says in words which configs those are.
    """

    name: str
    title: str
    description: str
    thresholds: Mapping[str, float]
    condition_template: str  # the test in a few words, for one-line summaries
    threshold_template: str  # the full test, gates included
    metrics: tuple[str, ...]
    remedies: tuple[Remedy, ...]
    check: Callable[[Cell], Verdict]
    applies: Callable[[PPOConfig], bool] = _everywhere
    scope: str = ""
    # A defect of the critic outlives a solved task (the next, harder task meets it):
    # such a rule is judged again without the solved gate and reported as latent.
    latent_when_solved: bool = False
    # What the check reads (any one set) and what sharpens it where logged: with no set
    # logged the rule is *not judged*, never "no failure found" (logs of other trainers).
    needs: tuple[Needs, ...] = ()
    sharpens: tuple[str, ...] = ()

    @property
    def condition(self) -> str:
        return self.condition_template.format(**self.thresholds)

    @property
    def threshold(self) -> str:
        return self.threshold_template.format(**self.thresholds)


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
    description: str = ""
    condition: str = ""
    lines: tuple[str, ...] = ()  # further facts, one per line (e.g. a divergence's source)
    returns: str = "episode_return"  # the return the solved gate read
    quote: str = ""  # what held on the affected seeds: "explained_variance -0.8 < 0"
    latent: bool = False  # would fire but for the solved gate: a defect the task hid
    late_seeds: int = 0  # affected seeds whose quote reads their late updates only
    missing: tuple[str, ...] = ()  # not judged: the metrics of its first Needs not logged
    # (or, with `unjudged` set, the metrics logged but finite on too few updates)
    unjudged: str = ""  # not judged for too few finite updates: which, on how many
    needs_text: str = ""  # not judged: every set of metrics it could judge on
    criterion: str = ""  # the Needs it judged on, where a sharpening metric was not logged
    unlogged: tuple[str, ...] = ()  # the sharpening metrics that were not logged
    # Root-cause ordering (causes.py), on fired findings: a consequence names the
    # finding it is listed under and the mechanism, numbers and onsets that decided.
    root: bool = True
    caused_by: str = ""
    cause_text: str = ""


# ------------------------------------------------------- judging one quantity


def persistent(condition: np.ndarray, evaluated: np.ndarray) -> np.ndarray:
    """Per seed: `condition` holds on more than half of the evaluated updates.

    Fewer than `MIN_EVALUATED` evaluated updates (or the whole run, if shorter)
    are too few to call a failure persistent, so such a seed is not affected.
    """
    counts = evaluated.sum(axis=1)
    hits = (condition & evaluated).sum(axis=1)
    enough = counts >= min(MIN_EVALUATED, evaluated.shape[1])
    return enough & (2 * hits > counts)


def late_updates(evaluated: np.ndarray) -> np.ndarray:
    """(seeds, updates): per seed, the last 1/ABSORBING_LATE_PARTS of its evaluated
    updates (at least MIN_EVALUATED of them, or all where it has fewer)."""
    late = np.zeros(evaluated.shape, bool)
    for row, judged in enumerate(evaluated):
        at = np.flatnonzero(judged)
        width = max(math.ceil(len(at) / ABSORBING_LATE_PARTS), min(len(at), MIN_EVALUATED))
        late[row, at[len(at) - width:]] = True
    return late


def persisting(condition: np.ndarray, evaluated: np.ndarray, absorbing: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """(affected seeds, the updates that show it): `persistent` over the evaluated
    updates; for an `absorbing` state, also over the seed's `late_updates` (a seed
    with fewer than MIN_EVALUATED evaluated updates stays unaffected either way)."""
    whole = persistent(condition, evaluated)
    shown = evaluated & whole[:, None]
    if not absorbing:
        return whole, shown
    late = late_updates(evaluated)
    late_only = persistent(condition, late) & ~whole & (
        evaluated.sum(axis=1) >= min(MIN_EVALUATED, evaluated.shape[1]))
    return whole | late_only, shown | (late & late_only[:, None])


def return_scale(cell: Cell) -> np.ndarray | None:
    """max(|G|, |mean G|) of the rollout's critic targets, per seed and update."""
    mean, abs_max = cell.get("target_mean"), cell.get("target_abs_max")
    if mean is None:
        return abs_max
    return np.abs(mean) if abs_max is None else np.fmax(abs_max, np.abs(mean))


def reached_scale(cell: Cell) -> np.ndarray | None:
    """Per seed and update, the largest return scale its targets have had so far: the
    scale a return that fell to a constant is measured against. A policy turned
    deterministic that never scores (Breakout at policy_lr 0.2: max|target| 1.3 ->
    3e-8) shrinks its own max|target| with its returns, so a ratio to that update's
    scale never calls them flat."""
    scale = return_scale(cell)
    if scale is None:
        return None
    return np.fmax.accumulate(scale, axis=1)


def flat_targets(cell: Cell) -> np.ndarray:
    """Updates whose targets barely vary: std < FLAT_TARGETS x the return scale the
    seed's targets have reached (`reached_scale`)."""
    std, scale = cell.get("target_std"), reached_scale(cell)
    if std is None or scale is None:
        return np.zeros(cell.window.shape, bool)
    return std < FLAT_TARGETS * scale


def smoothed_returns(returns: np.ndarray) -> np.ndarray:
    """Per seed, the latest return carried forward (evaluations are sparse), then
    a rolling median over SMOOTHING_FRACTION of the updates: one lucky rollout
    is not a level."""
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
    variant in the run when `cell.best_return` is set, else of this cell's seeds.
    A policy that stopped changing there has nothing left to move to. The
    return is the evaluation's where the run has one (`Cell.return_name`), and
    then the training return must be near its best (`cell.best_training`) too,
    within SAMPLED_TOLERANCE of the range (it carries exploration noise)."""
    returns = cell.returns()
    if returns is None or not cell.solved_gate:
        return np.zeros(cell.window.shape, bool)
    done = _near_best(cell, returns, cell.best_return)
    if cell.return_name != TRAINING_RETURN and cell.get(TRAINING_RETURN) is not None:
        # a greedy evaluation can score the best return while the sampled policy,
        # the one the updates move, is still far from it (e.g. near uniform)
        done &= sampled_near_best(cell)
    return done


def sampled_near_best(cell: Cell) -> np.ndarray:
    """Updates where the sampled policy's training return is within SAMPLED_TOLERANCE
    of the learning range of its best on the env: every episode of the rollout
    already ends near the best return, whatever a sparse evaluation says."""
    training = cell.get(TRAINING_RETURN)
    if training is None:
        return np.zeros(cell.window.shape, bool)
    return _near_best(cell, training, cell.best_training, SAMPLED_TOLERANCE)


def _near_best(cell: Cell, returns: np.ndarray, best: float | None,
               tolerance: float = SOLVED_TOLERANCE) -> np.ndarray:
    level = smoothed_returns(returns)
    start, best = learning_range(cell, returns, best)
    if not best > start:
        return np.zeros(returns.shape, bool)
    with np.errstate(invalid="ignore"):
        return level >= best - tolerance * (best - start)


def learning_range(cell: Cell, returns: np.ndarray, best: float | None = None
                   ) -> tuple[float, float]:
    """(start, best) of the learning range: the median over seeds of the first
    training return (recorded from the first update on; the first evaluation may
    come after the task is solved), else of the first `returns`; and `best`, the
    best smoothed return on the environment (default `cell.best_return`), else
    that of `returns`."""
    first = cell.get(TRAINING_RETURN)
    first = returns if first is None else first
    firsts = [row[np.isfinite(row)][0] for row in first if np.any(np.isfinite(row))]
    start = float(np.median(firsts)) if firsts else math.nan
    best = cell.best_return if best is None else best
    return start, best_return(returns) if best is None else best


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, inf where the denominator is 0 and the numerator not."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def finite(*arrays: np.ndarray) -> np.ndarray:
    return np.logical_and.reduce([np.isfinite(a) for a in arrays])


def nothing_judged(cell: Cell, basis: str) -> Verdict:
    """No seed affected and no update evaluated, with the reason."""
    shape = cell.window.shape
    return Verdict(np.zeros(shape[0], bool), np.zeros(shape, bool), basis=basis)


def not_recorded(cell: Cell, names: Sequence[str]) -> Verdict | None:
    """A not-evaluated verdict naming the metrics the run lacks, or None if all are there."""
    missing = [name for name in names if cell.get(name) is None]
    if not missing:
        return None
    return nothing_judged(cell, f"not evaluated: {', '.join(missing)} not recorded")


# ------------------------------------------------------------------ cells


def cell_config(info: Mapping[str, Any] | None, variant: str) -> PPOConfig:
    """The variant's config from run.json (standard PPO where the file is silent);
    fields this version does not know are ignored."""
    entry = ((info or {}).get("variants") or {}).get(variant) or {}
    fields = entry.get("config") or entry.get("overrides") or {}
    return PPOConfig(**{k: v for k, v in fields.items() if k in CONFIG_FIELDS})


def make_cell(frame: pd.DataFrame, variant: str, env: str,
              info: Mapping[str, Any] | None = None, best: float | None = None) -> Cell:
    """One (variant, env) of a jppo run; its policy's size where the gradient rules
    need it (the run logged per-head gradient norms) and its network can be rebuilt."""
    rows = frame[(frame["variant"] == variant) & (frame["env"] == env)]
    config = cell_config(info, variant)
    entry = ((info or {}).get("variants") or {}).get(variant) or {}
    logged = ("grad_norm_policy" in rows and not entry.get("source")  # not another trainer's
              and bool(np.isfinite(rows["grad_norm_policy"]).any()))
    return Cell(variant, env, np.sort(rows["seed"].unique()), np.sort(rows["update"].unique()),
                results.metric_arrays(frame, variant, env), config, best,
                policy_parameters=policy_parameters(config, env) if logged else None)


def make_cells(frame: pd.DataFrame, info: Mapping[str, Any] | None = None) -> list[Cell]:
    """Every (variant, env) in run order, each knowing the best return on its env, so
    a variant that plateaus far below another one is not excused as solved."""
    pairs = _ordered_pairs(results.groups(frame), info)
    cells = [make_cell(frame, variant, env, info) for variant, env in pairs]
    best: dict[str, float] = {}
    training: dict[str, float] = {}
    for cell in cells:
        for found, returns in ((best, cell.returns()), (training, cell.get(TRAINING_RETURN))):
            if returns is not None:
                found[cell.env] = max(found.get(cell.env, -math.inf), best_return(returns))
    return [dataclasses.replace(cell, best_return=best.get(cell.env),
                                best_training=training.get(cell.env)) for cell in cells]


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


# --------------------------------------------------------------- findings


def judge(cell: Cell, rule: Rule) -> Verdict:
    """The rule's verdict, "not applicable" when its config predicate says so, "not
    judged" when none of its `needs` is logged or its metrics are finite on too few
    updates of too many seeds (`sparse_seeds`); seeds with too few are not affected."""
    if not rule.applies(cell.config):
        return nothing_judged(cell, f"not applicable: {rule.name} judges only {rule.scope}")
    if rule.needs and usable_needs(cell, rule) is None:
        return nothing_judged(cell, f"not judged: {needs_text(cell, rule)} not logged")
    few, reason, _ = sparse_seeds(cell, rule)
    if not few.any():
        return rule.check(cell)
    if unjudgeable(few):
        return nothing_judged(cell, f"not judged: {reason}")
    verdict = rule.check(cell)
    note = "; ".join(n for n in (verdict.note, f"not judged on some seeds: {reason}") if n)
    return dataclasses.replace(verdict, affected=verdict.affected & ~few,
                               evaluated=verdict.evaluated & ~few[:, None], note=note)


def unjudgeable(few: np.ndarray) -> bool:
    """Too few seeds left to judge: even all of them affected would stay below
    FIRE_FRACTION of the cell's seeds, so the rule could only say "no failure"."""
    return int(np.sum(~few)) < FIRE_FRACTION * len(few)


def sparse_seeds(cell: Cell, rule: Rule) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """(seeds, bool) whose judged metrics (the rule's usable `needs`) are finite on fewer
    than MIN_EVALUATED of the window's updates (or all, in a shorter window) or on less
    than MIN_FINITE_SHARE of them; the reason, naming each metric and on how many
    updates it was non-finite; those metrics. `persistent` cannot judge such a seed:
    its few finite updates decide "no failure" on the updates the trainer lost."""
    usable = usable_needs(cell, rule) if rule.needs else None
    none = np.zeros(len(cell.seeds), bool)
    if usable is None:
        return none, "", ()
    window = cell.window
    values = [np.broadcast_to(cell.get(m), window.shape) for m in usable.metrics]
    kept = (window & np.logical_and.reduce([np.isfinite(v) for v in values])).sum(axis=1)
    sizes = window.sum(axis=1)
    few = (sizes > 0) & ((kept < np.minimum(MIN_EVALUATED, sizes))
                         | (kept < MIN_FINITE_SHARE * sizes))
    if not few.any():
        return none, "", ()
    lost = [(m, int(np.sum(window[few] & ~np.isfinite(v[few]))))
            for m, v in zip(usable.metrics, values, strict=True)]
    lost = [(m, n) for m, n in lost if n]
    seeds = ", ".join(f"seed {s}: {k} of {n}" for s, k, n in
                      zip(cell.seeds[few], kept[few], sizes[few], strict=True))
    reason = (", ".join(f"{m} non-finite on {n} of {int(sizes[few].sum())}" for m, n in lost)
              + f" updates after the warm-up ({seeds} finite; a seed needs "
              f"{MIN_EVALUATED} and {MIN_FINITE_SHARE:.0%} of its window)")
    return few, reason, tuple(m for m, _ in lost)


def usable_needs(cell: Cell, rule: Rule) -> Needs | None:
    """The first of the rule's metric sets that the cell logs in full."""
    return next((n for n in rule.needs if all(cell.get(m) is not None for m in n.metrics)),
                None)


def needs_text(cell: Cell, rule: Rule) -> str:
    """'a, b (or c)': the metrics each of the rule's sets lacks."""
    texts = [", ".join(m for m in n.metrics if cell.get(m) is None) for n in rule.needs]
    return texts[0] + "".join(f" (or {t})" for t in texts[1:])


def judged_on(cell: Cell, rule: Rule) -> dict[str, Any]:
    """Finding fields saying what a rule lacked: the metrics it needs (not judged), those
    finite on too few updates to judge (not judged, with the reason), or the criterion
    it judged on and the sharpening metrics that were not logged."""
    if not rule.needs or not rule.applies(cell.config):
        return {}
    usable = usable_needs(cell, rule)
    if usable is None:
        first = rule.needs[0].metrics
        return {"missing": tuple(m for m in first if cell.get(m) is None),
                "needs_text": needs_text(cell, rule)}
    few, reason, lost = sparse_seeds(cell, rule)
    if few.any() and unjudgeable(few):
        return {"missing": lost, "unjudged": reason}
    unlogged = tuple(m for m in rule.sharpens if cell.get(m) is None)
    return {"criterion": usable.criterion, "unlogged": unlogged} if unlogged else {}


def diagnose_cell(cell: Cell, rule: Rule) -> Finding:
    """The rule's finding on the cell; where it does not fire and the rule's defect
    outlives a solved task (`Rule.latent_when_solved`), the finding of the same
    check without the solved gate, marked latent (never fired) when that fires."""
    finding = _finding(cell, rule)
    if finding.fired or not rule.latent_when_solved:
        return finding
    ungated = _finding(dataclasses.replace(cell, solved_gate=False), rule)
    if not ungated.fired:
        return finding
    return dataclasses.replace(ungated, fired=False, latent=True)


def _finding(cell: Cell, rule: Rule) -> Finding:
    verdict = judge(cell, rule)
    affected = [int(s) for s in cell.seeds[verdict.affected]]
    fraction = len(affected) / max(len(cell.seeds), 1)
    key, key_value, quote, basis = quoted(verdict)
    return Finding(
        variant=cell.variant, env=cell.env, rule=rule.name, title=rule.title,
        fraction=fraction, seeds=affected, num_seeds=len(cell.seeds),
        fired=fraction >= FIRE_FRACTION, evidence=evidence_table(cell, rule, verdict),
        remedies=untried(rule.remedies, cell.config), threshold=rule.threshold,
        basis=basis, note=verdict.note, key=key, key_value=key_value,
        description=rule.description, condition=rule.condition, returns=cell.return_name,
        quote=quote, late_seeds=verdict.late_seeds, **judged_on(cell, rule),
    )


def fired_signals(verdict: Verdict) -> list[tuple[Signal, np.ndarray]]:
    """The signals that made the affected seeds affected, each with the updates its
    quote reads: the evaluated updates of the seeds on which it persisted alone (of
    an absorbing state, the late updates where only those show it); failing any
    such, for seeds affected by signals together, the evaluated updates of the
    affected seeds on which it held."""
    evaluated, affected = verdict.evaluated, verdict.affected[:, None]
    alone = [(s, persisting(s.holds(evaluated.shape), evaluated, verdict.absorbing)[1]
              & affected) for s in verdict.signals]
    found = [(s, shown) for s, shown in alone if shown.any()]
    if found:
        return found
    held = [(s, evaluated & affected & s.holds(evaluated.shape)) for s in verdict.signals]
    return [(s, mask) for s, mask in held if mask.any()]


def quoted(verdict: Verdict) -> tuple[str, float, str, str]:
    """(key, its median, the quote, the basis) of a verdict. With affected seeds and
    signals: the criteria of the signals that held on those seeds, each "name
    median op threshold" (medians over the updates `fired_signals` gives), and the
    basis of those signals; else the median of `key_values` over the evaluated
    updates."""
    fired = fired_signals(verdict) if np.any(verdict.affected) else []
    if not fired:
        value = _key_value(verdict)
        quote = f"median {verdict.key} {short_number(value)}" if np.any(verdict.affected) \
            and verdict.key else ""
        return verdict.key, value, quote, verdict.basis
    parts = []
    for signal, mask in fired:
        quotes = [criterion.quote(mask) for criterion in signal.criteria]
        texts = [text for _, text in quotes]
        parts.append(signal.joiner.join([texts[0], " and ".join(texts[1:])]) if len(texts) > 1
                     else texts[0])
    first_signal, first_mask = fired[0]
    key_value = first_signal.criteria[0].quote(first_mask)[0]
    basis = verdict.basis
    if len(verdict.signals) > 1:
        basis = "; ".join(s.basis for s, _ in fired if s.basis) or basis
    return first_signal.criteria[0].name, key_value, "; ".join(parts), basis


def short_number(value: float) -> str:
    """3 significant digits, exponents without padding: 2.5e4, 1e-07 -> 1e-7."""
    text = f"{value:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _key_value(verdict: Verdict) -> float:
    """Median of the quoted quantity over the updates the rule judged."""
    if verdict.key_values is None or not np.any(verdict.evaluated):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(verdict.key_values[verdict.evaluated]))


def evidence_table(cell: Cell, rule: Rule, verdict: Verdict) -> pd.DataFrame:
    """Median across seeds at EVIDENCE_ROWS evenly spaced updates, warm-up included
    (with the latest evaluation return where the run evaluates)."""
    n = len(cell.updates)
    rows = np.unique(np.linspace(0, n - 1, min(EVIDENCE_ROWS, n)).round().astype(int))
    columns: dict[str, Any] = {"update": cell.updates[rows]}
    series = {"env_steps": cell.get("env_steps"), "episode_return": cell.get("episode_return")}
    series |= {name: cell.get(name) for name in rule.metrics}
    series |= dict(verdict.derived)
    series["latest_eval_return"] = latest(cell.get("eval_return"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, values in series.items():
            if values is not None:
                columns[name] = np.nanmedian(values[:, rows], axis=0)
    if "env_steps" in columns:
        columns["env_steps"] = columns["env_steps"].astype(np.int64)
    return pd.DataFrame(columns)


def latest(values: np.ndarray | None) -> np.ndarray | None:
    """Per seed, the latest value carried forward: evaluations are sparse, so the
    evidence rows show the last one before each."""
    return None if values is None else pd.DataFrame(values.T).ffill().to_numpy().T


def untried(remedies: Sequence[Remedy], config: PPOConfig) -> list[Remedy]:
    """The remedies not already in force in `config`."""
    return [r for r in remedies
            if not all(_same(getattr(config, k), v) for k, v in r.overrides.items())]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    return a == b


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
