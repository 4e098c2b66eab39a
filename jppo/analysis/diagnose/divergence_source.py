"""Numerical divergence: the seeds whose update met a NaN or inf, the first
such update and its likely source.

Not a `Rule`: a rule judges a persistent condition after a warm-up and is
reported once a quarter of the seeds are affected, while a divergence is an
event that voids the rest of a seed's run (its parameters are NaN; the env
still reports finite returns, those of a frozen policy). So one seed at any
update suffices, and the remedies follow the source. Per seed, at its first
non-finite update:

* reward / observation: the env handed the learner a NaN or inf
  (`nonfinite_reward`, `nonfinite_obs`); no config knob removes it;
* loss scale: the inputs were finite but the rewards the learner saw were
  huge (mean |reward| per step above `LARGE_REWARD` in some update up to it)
  or overflowed the reward scaler: the value loss and its gradients overflow;
* a loss term (policy loss, entropy, value loss, in the order they are
  computed): the term was NaN or inf at the update's first optimizer step, at
  the finite parameters the update started from (`nonfinite_<term>`): the term
  itself, or a user-registered strategy computing it, made the NaN, which the
  finding names;
* learning rate: inputs finite and rewards of ordinary scale, every loss term
  finite at the update's start, yet an optimizer step took the parameters out
  of range.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from jppo.analysis.diagnose.engine import Cell, Finding, Remedy, untried
from jppo.analysis.metrics import first_nonfinite_update
from jppo.core.config import PPOConfig
from jppo.core.strategies import TERM_STRATEGIES, user_strategies
from jppo.runs.divergence_watch import stopped_early

LARGE_REWARD = 1e3  # mean |reward| per step the learner saw: beyond, a loss-scale divergence
EVIDENCE_BEFORE = 5  # updates before each seed's first non-finite one in the evidence table
EVIDENCE_AFTER = 1
EVIDENCE_METRICS = ("episode_return", "nonfinite", "nonfinite_reward", "nonfinite_obs",
                    "nonfinite_policy_loss", "nonfinite_entropy", "nonfinite_value_loss",
                    "reward_mean", "value_loss", "grad_norm", "approx_kl", "target_abs_max",
                    "lr_policy", "lr_value")
SHOWN_GROUPS = 10  # distinct first updates named before the rest are counted

DIVERGENCE = "numerical_divergence"
TITLE = "Numerical divergence"
DESCRIPTION = ("A loss, gradient or parameter became NaN or inf: from that update on the "
               "seed's parameters are void and it no longer learns, though the env keeps "
               "reporting finite returns (those of the frozen policy), which hide it from the "
               "return statistics.")
THRESHOLD = ("any update whose losses, global gradient norm or parameters are non-finite "
             "(the `nonfinite` flag); one seed suffices, no warm-up")
BASIS = ("the update's `nonfinite` flags; the source from `nonfinite_reward`, `nonfinite_obs`, "
         f"the learner's reward scale (mean |reward| > {LARGE_REWARD:g} per step: loss "
         "scale) up to the first non-finite update, then the loss terms at the update's first "
         "optimizer step (`nonfinite_policy_loss`, `nonfinite_entropy`, `nonfinite_value_loss`)")


def likely_source(cell: Cell, seed: int, first: int) -> str:
    """'reward', 'observation', 'loss scale', a loss term ('value loss', ...) or
    'learning rate' for the seed at row `seed` of the cell, whose first
    non-finite update is at position `first`."""
    for name, source in (("nonfinite_reward", "reward"), ("nonfinite_obs", "observation")):
        flags = cell.get(name)
        if flags is not None and flags[seed, first] > 0:
            return source
    rewards = cell.get("reward_mean")
    if rewards is not None:
        seen = np.abs(rewards[seed, : first + 1])
        if not np.isfinite(seen[-1]) or np.nanmax(seen, initial=0.0) > LARGE_REWARD:
            return "loss scale"
    for term in TERM_STRATEGIES:
        flags = cell.get(f"nonfinite_{term}")
        if flags is not None and flags[seed, first] > 0:
            return term.replace("_", " ")
    return "learning rate"


def _term_line(cell: Cell, source: str) -> str:
    """Why a loss term is the likely source, naming the user's strategies computing it."""
    users = user_strategies(cell.config, source.replace(" ", "_"))
    where = (f"it is computed by the registered strategy {' and '.join(users)}: check that it "
             "returns a finite scalar for finite inputs") if users else \
        "the term overflowed at finite inputs (parameters of extreme scale)"
    return (f"the {source} was NaN or inf at the update's first optimizer step, at the finite "
            f"parameters the update started from and finite env inputs; {where}")


def divergence_finding(cell: Cell, info: Mapping[str, Any] | None = None) -> Finding | None:
    """The cell's numerical divergence finding; None when no seed diverged (or the
    run did not record the flags)."""
    firsts = first_nonfinite_update(cell.arrays)
    if firsts is None or not np.any(firsts >= 0):
        return None
    hit = np.flatnonzero(firsts >= 0)
    sources: dict[str, list[int]] = {}
    for row in hit:
        sources.setdefault(likely_source(cell, row, firsts[row]), []).append(row)
    order = sorted(sources, key=lambda source: -len(sources[source]))
    lines = [f"first non-finite update: {first_updates(cell, firsts, hit)}"]
    lines += [source_line(cell, source, sources[source], firsts) for source in order]
    stop = stopped_early(info, cell.variant, cell.env)
    if stop is not None:
        lines.append(f"the program stopped early after {stop['updates']} of "
                     f"{stop['num_updates']} updates: {stop['reason']} (stop_when_diverged)")
    remedies = list({r.text(): r for s in order for r in remedies_for(s, cell.config)}.values())
    return Finding(
        variant=cell.variant, env=cell.env, rule=DIVERGENCE, title=TITLE,
        fraction=len(hit) / len(cell.seeds), seeds=[int(cell.seeds[row]) for row in hit],
        num_seeds=len(cell.seeds), fired=True, evidence=evidence_table(cell, firsts, hit),
        remedies=untried(remedies, cell.config), threshold=THRESHOLD, basis=BASIS, note="",
        key="", key_value=math.nan, description=DESCRIPTION, condition=THRESHOLD,
        lines=tuple(lines),
    )


def first_updates(cell: Cell, firsts: np.ndarray, hit: np.ndarray) -> str:
    """'update 2 (seeds 0, 1); update 7 (seed 3)': the updates, earliest first."""
    groups = []
    for position in np.unique(firsts[hit]):
        seeds = [str(s) for s in cell.seeds[hit][firsts[hit] == position]]
        plural = "s" if len(seeds) > 1 else ""
        groups.append(f"update {cell.updates[position]} (seed{plural} {', '.join(seeds)})")
    more = f"; {len(groups) - SHOWN_GROUPS} more" if len(groups) > SHOWN_GROUPS else ""
    return "; ".join(groups[:SHOWN_GROUPS]) + more


def source_line(cell: Cell, source: str, rows: list[int], firsts: np.ndarray) -> str:
    """The likely source for some seeds, with the numbers it rests on."""
    seeds = ", ".join(str(cell.seeds[row]) for row in rows)
    head = f"likely source: {source} (seed{'s' if len(rows) > 1 else ''} {seeds}): "
    if source in ("reward", "observation"):
        return head + (f"the env returned a NaN or inf {source} in the first non-finite "
                       "update; no config knob removes it (the clips pass NaN through): fix "
                       "or guard the environment (e.g. jnp.nan_to_num)")
    if source.replace(" ", "_") in TERM_STRATEGIES:
        return head + _term_line(cell, source)
    reward = _median_at(cell, "reward_mean", rows, firsts, 0, absolute=True, peak=True)
    if source == "loss scale":
        return head + (f"the learner's rewards reached {_g(reward)} per step (mean |reward| "
                       f"of an update; above {LARGE_REWARD:g}) or overflowed the reward "
                       "scaler, so the value loss and its gradients overflow")
    lrs = ", ".join(f"{name.removeprefix('lr_')} {_g(_median_at(cell, name, rows, firsts, 0))}"
                    for name in ("lr_policy", "lr_value", "lr_torso") if cell.get(name) is not None)
    before = any(firsts[row] > 0 for row in rows)
    kl = _g(_median_at(cell, "approx_kl", rows, firsts, -1)) if before else "none (first update)"
    return head + (f"finite inputs and rewards of ordinary scale (at most {_g(reward)} per "
                   "step), yet an optimizer step took the parameters out of range; learning "
                   f"rates in force: {lrs or 'not recorded'}; approx KL in the update before: "
                   f"{kl}")


def _median_at(cell: Cell, name: str, rows: list[int], firsts: np.ndarray, offset: int, *,
               absolute: bool = False, peak: bool = False) -> float:
    """Median over `rows` of a metric at each seed's first non-finite update plus
    `offset` (or, `peak`, its largest value up to there)."""
    values = cell.get(name)
    if values is None:
        return math.nan
    values = np.abs(values) if absolute else values
    picked = []
    for row in rows:
        at = firsts[row] + offset
        if at >= 0:
            picked.append(np.nanmax(values[row, : at + 1], initial=-np.inf) if peak
                          else values[row, at])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(picked)) if picked else math.nan


def remedies_for(source: str, config: PPOConfig) -> list[Remedy]:
    term = source.replace(" ", "_")
    if term in TERM_STRATEGIES:
        defaults = PPOConfig()
        users = [entry.split("=")[0] for entry in user_strategies(config, term)]
        if users:  # the user's own code: the built-in strategy isolates it
            return [Remedy({field: getattr(defaults, field)}, f"the built-in {field}: if the "
                           "run stays finite, the registered strategy made the NaN")
                    for field in users]
        source = "learning rate"
    if source == "loss scale":
        return [Remedy({"reward_scaling": True}, "divides rewards by the running return std, "
                       "so the value loss is of unit scale"),
                Remedy({"value_target": "popart"}, "the critic learns normalized targets"),
                Remedy({"value_target": "symlog", "value_loss": "hl_gauss"}, "compressed "
                       "targets on a fixed support (DreamerV3)")]
    if source == "learning rate":
        tenth = float(f"{config.lr / 10:.3g}")
        return [Remedy({"lr": tenth}, "a tenth of the learning rate: each Adam step moves a "
                       "parameter by about lr"),
                Remedy({"max_grad_norm": 0.5}, "a finite gradient clip"),
                Remedy({"kl_early_stop": True}, "stops an update's epochs once the policy "
                       "moved past 1.5 target_kl")]
    return []  # the env's own NaN: no config override removes it


def evidence_table(cell: Cell, firsts: np.ndarray, hit: np.ndarray) -> pd.DataFrame:
    """Median across the diverged seeds, aligned on each seed's first non-finite
    update (offset 0), from EVIDENCE_BEFORE updates before to EVIDENCE_AFTER after."""
    offsets = np.arange(-EVIDENCE_BEFORE, EVIDENCE_AFTER + 1)
    at = firsts[hit][:, None] + offsets[None, :]  # (diverged seeds, offsets)
    valid = (at >= 0) & (at < len(cell.updates))
    keep = valid.any(axis=0)
    columns: dict[str, Any] = {"offset": offsets[keep]}
    rows = np.broadcast_to(hit[:, None], at.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in EVIDENCE_METRICS:
            values = cell.get(name)
            if values is not None:
                aligned = np.where(valid, values[rows, np.clip(at, 0, len(cell.updates) - 1)],
                                   np.nan)
                columns[name] = np.nanmedian(aligned, axis=0)[keep]
    return pd.DataFrame(columns)


def _g(value: float) -> str:
    return "not recorded" if math.isnan(value) else f"{value:.3g}"
