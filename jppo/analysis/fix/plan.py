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


def candidates(findings: Sequence[Finding], config: PPOConfig) -> list[Candidate]:
    """Every fired finding's remedies (root causes first, each rule's remedy order),
    one candidate per distinct change, those that set back a default the run
    changed first, then the combination of the root findings' first kept remedies
    when there are several."""
    fired = sorted((f for f in findings if f.fired), key=lambda f: not f.root)
    found: dict[str, Candidate] = {}
    for finding in fired:
        for remedy in finding.remedies:
            name = candidate_name(remedy.overrides)
            if name in found:
                old = found[name]
                found[name] = dataclasses.replace(old, rules=(*old.rules, finding.rule))
                continue
            reason = prune_reason(remedy, finding, config)
            kept = not reason
            role = "root cause" if finding.root else f"consequence of {finding.caused_by}"
            back = REVERTS if reverts_default(remedy.overrides, config) else ""
            reason = reason or f"kept: answers {finding.rule} ({role}){back}"
            found[name] = Candidate(name, dict(remedy.overrides), (finding.rule,),
                                    remedy.why, kept, reason)
    ordered = sorted(found.values(), key=lambda c: not c.reason.endswith(REVERTS))
    combined = combination(fired, ordered)
    if combined is not None and combined.name not in found:
        ordered.append(combined)
    return ordered


REVERTS = "; it sets back a default the run changed, so it is tried first"


def reverts_default(overrides: Mapping[str, Any], config: PPOConfig) -> bool:
    """The change undoes the run's own departure from the defaults (e.g. clip_eps=0.2
    on a run at clip_eps=1e-4): the likeliest cause is the change the run made."""
    defaults = PPOConfig()
    return any(not _same(getattr(config, key, None), getattr(defaults, key, None))
               and _same(getattr(defaults, key, None), value)
               for key, value in overrides.items() if hasattr(defaults, key))


def combination(fired: Sequence[Finding], found: Sequence[Candidate]) -> Candidate | None:
    """The first kept candidate of each root finding, together, when two or more
    root findings have one and their changes do not set a field differently."""
    picks: list[Candidate] = []
    for rule in dict.fromkeys(f.rule for f in fired if f.root):
        first = next((c for c in found if c.kept and rule in c.rules), None)
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
                     True, f"kept: combines the root findings {', '.join(rules)}")


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
