"""From a diagnosis to candidate fixes: each fired finding's remedies become config
changes on top of the run's own config, pruned where the run already has them or
where the remedy's stated condition is contradicted by the run's config or numbers,
plus the combination of the root findings' first kept remedies.

A plan is written as an ordinary experiment file (`RUN/fix/experiment.toml`): the
run's config as `[config]`, `original` as the baseline variant, one variant per kept
candidate, and every candidate's reason (kept or pruned) as comments above it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jppo.analysis.diagnose import Finding, Remedy
from jppo.core import strategies
from jppo.core.config import PPOConfig
from jppo.runs import results

ORIGINAL = "original"  # the baseline variant: the run's config unchanged
PLAN_DIR = "fix"
PLAN_FILE = "experiment.toml"
RUN_DIR = "run"  # RUN/fix/run: the candidates' run directory


@dataclasses.dataclass(frozen=True)
class Condition:
    """When a remedy touching `field` is expected to do nothing, from the run's
    config and the finding it answers: `moot` returns why, or "" where it may help."""

    field: str
    moot: Callable[[PPOConfig, Finding], str]
    source: str  # the case study or measurement the condition rests on


def _clipped_alone(config: PPOConfig, finding: Finding) -> str:
    if strategies.of(config).grad_clip.couples_groups:
        return ""
    return (f"grad_clip={config.grad_clip!r} already clips each head alone: the value "
            "gradient cannot shrink the policy step")


def _starved_critic(config: PPOConfig, finding: Finding) -> str:
    if finding.rule != "critic_collapse" or "value_mean" not in finding.quote:
        return ""
    return ("the critic is starved (it lags the targets' mean: " + finding.quote + "); "
            "critic-only updates before PPO do not make it follow returns that rise later")


def _no_value_clip(config: PPOConfig, finding: Finding) -> str:
    if strategies.of(config).value_loss.uses_value_clip and not (
            config.value_clip_eps is not None and math.isinf(config.value_clip_eps)):
        return ""
    return (f"value_loss={config.value_loss!r} does not clip the value (or its clip is "
            "off): there is no clip range to put in return-std units")


# The relative clip's band is value_clip_eps x the targets' std: at a std past this
# the band is wider than the critic moves in an update, so the clip never binds and
# the run becomes unclipped MSE on raw targets (value_clip_scale: std ~500, band ~100
# return units, the critic moving 0.30 per update; explained variance 1e-5 as with
# no clip at all, early return 535 vs 1462).
RELATIVE_CLIP_STD_SCALE = 10.0


def finding_median(finding: Finding, column: str) -> float | None:
    """The median over the finding's evidence rows of one logged quantity."""
    if column not in getattr(finding.evidence, "columns", ()):
        return None
    values = finding.evidence[column].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def _relative_clip_wide(config: PPOConfig, finding: Finding) -> str:
    std = finding_median(finding, "target_std")
    if std is None or not std > RELATIVE_CLIP_STD_SCALE:
        return ""
    band = float(config.resolved("value_clip_eps")) * std
    return (f"the return std {std:.3g} exceeds {RELATIVE_CLIP_STD_SCALE:g}: the relative clip's "
            f"band ({band:.3g} return units) never binds, so the critic still regresses raw "
            "returns, as with no clip")


def _lambda_one(config: PPOConfig, finding: Finding) -> str:
    if config.critic_lambda is None and config.gae_lambda == 1.0:
        return "gae_lambda is already 1: the critic's targets are already lambda = 1 returns"
    return ""


CONDITIONS: tuple[Condition, ...] = (
    Condition("grad_clip", _clipped_alone, "case study: throttled_gradients (per-head clip "
              "frees the policy step only under one global clip)"),
    Condition("value_pretrain_updates", _starved_critic, "case study: value_dominance "
              "(starved critic: EV 0.001-0.009, value_mean at 39-63% of target_mean)"),
    Condition("value_clip_mode", _no_value_clip, "case study: value_clip_scale (fix 1 "
              "changes the clip of the clipped value loss)"),
    Condition("value_clip_mode", _relative_clip_wide, "case study: value_clip_scale "
              "(relative clip at a return std of ~500: explained variance 1e-5, identical "
              "to no clip)"),
    Condition("critic_lambda", _lambda_one, "VC-PPO: lambda = 1 critic targets"),
)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One config change to try: its overrides, the findings it answers, why it was
    proposed, whether it is kept for the run, and the reason for that."""

    name: str
    overrides: Mapping[str, Any]
    rules: tuple[str, ...]
    why: str
    kept: bool
    reason: str
    weight: float = 0.0  # the evidence it answers (`evidence_strength`, summed)

    def text(self) -> str:
        return Remedy(self.overrides, self.why).text()


def candidate_name(overrides: Mapping[str, Any]) -> str:
    """A variant name from the overrides, e.g. `grad_clip-per_head+vf_coef-0.1`."""
    parts = []
    for key, value in overrides.items():
        shown = "-".join(map(str, value)) if isinstance(value, tuple | list) else value
        parts.append(f"{key}-{str(shown).lower() or 'none'}")
    return "+".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", part) for part in parts) or "empty"


def prune_reason(remedy: Remedy, finding: Finding, config: PPOConfig) -> str:
    """Why a remedy is pruned for this run ("" where it is kept)."""
    if all(_same(getattr(config, key, None), value) for key, value in remedy.overrides.items()):
        return f"pruned: the run already has {remedy.text()}"
    for condition in CONDITIONS:
        if condition.field in remedy.overrides:
            why = condition.moot(config, finding)
            if why:
                return f"pruned: {why} ({condition.source})"
    return ""


def _same(current: Any, wanted: Any) -> bool:
    if isinstance(current, tuple | list) or isinstance(wanted, tuple | list):
        return isinstance(current, tuple | list) and tuple(current) == tuple(wanted)
    if isinstance(current, bool) or isinstance(wanted, bool):
        return current is wanted
    return current == wanted


# ------------------------------------------------ the size of the evidence
CRITERION = re.compile(r"(-?\d[\d.]*(?:e[+-]?\d+)?) (<=|>=|<|>) (-?\d[\d.]*(?:e[+-]?\d+)?)")
MAX_MARGIN = 3.0  # decades past a threshold: beyond that, further distance says nothing new
CONSEQUENCE_WEIGHT = 0.5  # a consequence's evidence counts half: its cause may be the fix


def margin(value: float, op: str, threshold: float) -> float:
    """How far past its threshold a quoted median lies, in decades (0 at the line,
    at most MAX_MARGIN); a threshold at or below 0 is measured in units of max(|t|, 1)."""
    past = value - threshold if ">" in op else threshold - value
    if past <= 0:
        return 0.0
    if value > 0 and threshold > 0:
        folds = value / threshold if ">" in op else threshold / value
    else:
        folds = 1.0 + past / max(abs(threshold), 1.0)
    return float(min(MAX_MARGIN, math.log10(folds)))


def evidence_strength(finding: Finding) -> float:
    """Affected seeds x (1 + the mean margin of the criteria its quote names): a
    finding on 16 seeds far past its lines outweighs one on 3 seeds just past them."""
    margins = [margin(float(v), op, float(t)) for v, op, t in CRITERION.findall(finding.quote)]
    return len(finding.seeds) * (1.0 + (sum(margins) / len(margins) if margins else 0.0))


def _weight(finding: Finding) -> float:
    return evidence_strength(finding) * (1.0 if finding.root else CONSEQUENCE_WEIGHT)


# ------------------------------------------------ remedies from the run's context
TINY_LR = 1e-4  # below 40% of the default 2.5e-4: every Adam step is a fraction of PPO's
LR_GROUP = {"policy_stall": "policy_lr", "critic_collapse": "value_lr"}


def context_remedies(finding: Finding, config: PPOConfig) -> list[Remedy]:
    """Remedies the rules cannot list because they depend on the run's config and
    numbers: a stalled policy or a collapsed critic trained at a tiny lr gets the
    default lr; a starved critic (lagging the targets' mean) gets reward scaling."""
    found = []
    group = LR_GROUP.get(finding.rule)
    if group is not None and config.resolved(group) < TINY_LR:
        field = "lr" if getattr(config, group) is None else group
        default = PPOConfig().lr
        found.append(Remedy({field: default}, f"{field} {config.resolved(group):g} is below "
                            f"{TINY_LR:g}: the default {default:g} (case study: kl_early_stop, "
                            "lr 5e-5 -> 3e-4: MRR 0.486 -> 0.519; diagnosis benchmark: the "
                            "tiny-lr policy stall)"))
    if _starved_critic(config, finding) and not config.reward_scaling:
        found.append(Remedy({"reward_scaling": True}, "a starved critic follows targets of "
                            "unit scale (case studies: value_dominance 500 vs 153, "
                            "frozen_policy 17.2e-4 vs -6.2e-4)"))
    return found


def remedies_of(finding: Finding, config: PPOConfig) -> list[Remedy]:
    """The ones the run's context adds (chosen on its numbers), then the rule's."""
    return [*context_remedies(finding, config), *finding.remedies]


def targets(findings: Sequence[Finding]) -> list[Finding]:
    """The findings a plan answers: the fired ones; where none fired, the latent ones
    (a critic defect a solved task hid, which a harder task or a larger return scale
    would turn into a failure)."""
    fired = [f for f in findings if f.fired]
    return fired or [f for f in findings if f.latent]


def candidates(findings: Sequence[Finding], config: PPOConfig) -> list[Candidate]:
    """Every target finding's remedies, one candidate per distinct change, ordered:
    those that set back a default the run changed first, then by the weight of the
    evidence they answer (root findings in full, consequences at half); then the
    combination of the root findings' first kept remedies when there are several."""
    fired = sorted(targets(findings), key=lambda f: (not f.root, -_weight(f)))
    found: dict[str, Candidate] = {}
    for finding in fired:
        for remedy in remedies_of(finding, config):
            name = candidate_name(remedy.overrides)
            if name in found:
                old = found[name]
                found[name] = dataclasses.replace(old, rules=(*old.rules, finding.rule),
                                                  weight=old.weight + _weight(finding))
                continue
            found[name] = _candidate(name, remedy, finding, config)
    ordered = sorted(found.values(),
                     key=lambda c: (not c.reason.endswith(REVERTS), -c.weight))
    combined = combination(fired, found, config)
    if combined is not None and combined.name not in found:
        ordered.append(combined)
    return ordered


def _candidate(name: str, remedy: Remedy, finding: Finding, config: PPOConfig) -> Candidate:
    reason = prune_reason(remedy, finding, config)
    role = "root cause" if finding.root else f"consequence of {finding.caused_by}"
    role = f"latent, {role}" if finding.latent else role
    back = REVERTS if not reason and reverts_default(remedy.overrides, config) else ""
    reason = reason or f"kept: answers {finding.rule} ({role}){back}"
    return Candidate(name, dict(remedy.overrides), (finding.rule,), remedy.why, not reason
                     .startswith("pruned"), reason, _weight(finding))


REVERTS = "; it sets back a default the run changed, so it is tried first"


def reverts_default(overrides: Mapping[str, Any], config: PPOConfig) -> bool:
    """The change undoes the run's own departure from the defaults (e.g. clip_eps=0.2
    on a run at clip_eps=1e-4): the likeliest cause is the change the run made."""
    defaults = PPOConfig()
    return any(not _same(getattr(config, key, None), getattr(defaults, key, None))
               and _same(getattr(defaults, key, None), value)
               for key, value in overrides.items() if hasattr(defaults, key))


def combination(fired: Sequence[Finding], found: Mapping[str, Candidate],
                config: PPOConfig) -> Candidate | None:
    """The first kept remedy of each root finding (in its rule's order), together,
    when two or more root findings have one and their changes do not set a field
    differently."""
    picks: list[Candidate] = []
    for finding in _first_per_rule(fired):
        first = next((found[candidate_name(r.overrides)] for r in remedies_of(finding, config)
                      if found[candidate_name(r.overrides)].kept), None)
        if first is not None and first not in picks:
            picks.append(first)
    if len(picks) < 2:
        return None
    overrides: dict[str, Any] = {}
    for pick in picks:
        for key, value in pick.overrides.items():
            if key in overrides and not _same(overrides[key], value):
                return None
            overrides[key] = value
    rules = tuple(dict.fromkeys(r for pick in picks for r in pick.rules))
    return Candidate(candidate_name(overrides), overrides, rules,
                     "the first kept change of each root finding, together",
                     True, f"kept: combines the root findings {', '.join(rules)}",
                     sum(pick.weight for pick in picks))


def _first_per_rule(fired: Sequence[Finding]) -> list[Finding]:
    """The root findings, one per rule (its first), in the fired order."""
    seen: dict[str, Finding] = {}
    for finding in fired:
        if finding.root:
            seen.setdefault(finding.rule, finding)
    return list(seen.values())


@dataclasses.dataclass
class FixPlan:
    """What `jppo fix` will run: the run's fired findings on its variant, every
    candidate (kept and pruned) and the plan file (None: nothing to fix)."""

    run_dir: Path
    variant: str
    findings: list[Finding]
    candidates: list[Candidate]
    path: Path | None
    total_timesteps: int
    seeds: int

    @property
    def kept(self) -> list[Candidate]:
        return [c for c in self.candidates if c.kept]

    @property
    def fired(self) -> list[Finding]:
        return [f for f in self.findings if f.fired]

    @property
    def targets(self) -> list[Finding]:
        """What the candidates answer: the fired findings, else the latent ones."""
        return targets(self.findings)

    @property
    def latent(self) -> bool:
        """The plan answers latent findings only: the return cannot show a gain, so a
        candidate must remove them without lowering it."""
        return not self.fired and bool(self.targets)

    @property
    def run_out(self) -> Path:
        return self.run_dir / PLAN_DIR / RUN_DIR


# ------------------------------------------------------------ the plan file
def toml_value(value: Any) -> str:
    """A TOML literal of a config value (str, bool, int, float, tuple of numbers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else
                                                "-inf" if value == -math.inf else repr(value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {value!r} ({type(value).__name__}) to a TOML plan")


def _table(values: Mapping[str, Any]) -> list[str]:
    return [f"{key} = {toml_value(value)}" for key, value in values.items()
            if value is not None]


def plan_text(experiment: Mapping[str, Any], config: Mapping[str, Any],
              found: Sequence[Candidate], header: Sequence[str]) -> str:
    """The plan as an experiment file: `experiment` holds its top-level fields."""
    lines = [f"# {line}" for line in header] + [""]
    lines += [*_table(experiment), "", "[config]", *_table(config), ""]
    lines += [f"[variants.{ORIGINAL}]", "# the run's own config, unchanged (the baseline)", ""]
    for candidate in found:
        comment = [f"# {candidate.reason}", f"# answers: {', '.join(candidate.rules)}",
                   f"# why: {candidate.why}"]
        body = [f'[variants."{candidate.name}"]', *_table(candidate.overrides)]
        lines += comment + (body if candidate.kept else [f"# {line}" for line in body]) + [""]
    return "\n".join(lines)


def env_params_tables(params: Mapping[str, Mapping[str, Any]]) -> str:
    """The run's `[env_params.ENV]` tables, after the variants."""
    lines = []
    for env, values in params.items():
        lines += [f'[env_params."{env}"]', *_table(values), ""]
    return "\n".join(lines)


def write_plan(path: Path, text: str) -> Path:
    """Atomically, as every run file: a crash never leaves half a plan."""
    results.atomic_write_text(path, text)
    return path
