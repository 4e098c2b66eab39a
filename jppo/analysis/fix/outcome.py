"""What the candidates' run says: per candidate and env, whether each finding it
answers is gone (the run re-diagnosed), the final return (IQM, 95% CI), P(improvement)
over `original` with its CI, and the cost; then the recommendation.

A candidate *helps* where the findings it answers are gone on every env and the
lower end of P(improvement)'s CI is above 1/2 there. Gone means the root causes it
answers: a consequence of the original's root (a poor critic under a stalled
policy) may remain, reported as such, since the root was the run's diagnosis; a
candidate that answers consequences only must remove them; the recommendation is the
helping candidate with the fewest overrides (the smallest change), the larger
P(improvement) breaking ties. A plan for latent findings only (the original solved
its task, so its return cannot be beaten) asks instead that the findings are gone,
latent or fired, and that the return is not lower with confidence (the upper end of
P(improvement)'s CI reaches 1/2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from jppo.analysis import diagnose, stats
from jppo.analysis.fix.plan import ORIGINAL, Candidate, FixPlan
from jppo.runs import results
from jppo.runs.experiment import static_key

PLAN_COLUMNS = ("candidate", "changes", "answers", "kept", "reason")
COLUMNS = ("candidate", "env", "changes", "answers", "remaining", "gone", "iqm", "iqm_lo",
           "iqm_hi", "p_improve", "p_improve_lo", "p_improve_hi", "env_steps", "program")
CONFIDENT = 0.5  # the lower end of P(improvement)'s CI above this: an improvement


def plan_table(plan: FixPlan) -> pd.DataFrame:
    """Every candidate, kept or pruned, with why (a dry run, or nothing to fix)."""
    rows = [{"candidate": c.name, "changes": c.text(), "answers": ", ".join(c.rules),
             "kept": c.kept, "reason": c.reason} for c in plan.candidates]
    table = pd.DataFrame(rows, columns=list(PLAN_COLUMNS))
    table.attrs.update(recommendation=nothing_text(plan) if not plan.kept else
                       f"plan written to {plan.path}; not run (dry run)", plan=str(plan.path))
    return table


def nothing_text(plan: FixPlan) -> str:
    """Why there is no plan: every remedy pruned, or no failure (naming the rules
    not judged, and the latent findings a solved task hides)."""
    if plan.fired:
        return (f"nothing to try: every remedy of {', '.join(f.rule for f in plan.fired)} "
                "was pruned (see the reasons)")
    unjudged = [f.rule for f in plan.findings if f.missing]
    tail = f" ({len(unjudged)} rules not judged: {', '.join(unjudged)})" if unjudged else ""
    latent = [f.rule for f in plan.findings if f.latent]
    if latent:  # a defect the solved task hides: no change can raise its final return
        tail += (f"; latent, where the task is solved: {', '.join(latent)} (the final "
                 "return has nothing to gain; no remedy of theirs is left "
                 "to try, see the reasons)")
    return f"nothing to fix: the diagnosis of {plan.run_dir} found no failure{tail}"


def _answers(plan: FixPlan, name: str) -> tuple[str, ...]:
    """The findings a variant answers: its candidate's; `original` and variants added
    to the plan by hand answer every fired finding."""
    for candidate in plan.candidates:
        if candidate.name == name:
            return candidate.rules
    return tuple(dict.fromkeys(f.rule for f in plan.targets))


def outcome_table(plan: FixPlan) -> pd.DataFrame:
    """Re-diagnose and summarize RUN/fix/run, one row per (variant, env) of it."""
    out = plan.run_out
    info = results.read_run_info(out)
    findings = diagnose.diagnose_run(out)
    summary = stats.summarize_run(out)
    fired = {(f.variant, f.env, f.rule) for f in findings
             if f.fired or (plan.latent and f.latent)}
    original = _static(info, ORIGINAL)
    rows = []
    for _, row in summary.iterrows():
        name, env = row["variant"], row["env"]
        answers = _answers(plan, name)
        remaining = [rule for rule in answers if (name, env, rule) in fired]
        rows.append({"candidate": name, "env": env, "changes": _changes(info, name),
                     "answers": ", ".join(answers), "remaining": ", ".join(remaining),
                     "gone": is_gone(answers, remaining, roots(plan)),
                     **{k: row[k] for k in COLUMNS[6:12]},
                     "env_steps": _steps(info, name),
                     "program": _program(name, _static(info, name) == original)})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table.attrs.update(recommendation=recommendation(table, plan.kept, latent=plan.latent),
                       run=str(out))
    return table


def roots(plan: FixPlan) -> set[str]:
    """The rules that were root causes in the original's diagnosis."""
    return {f.rule for f in plan.targets if f.root}


def is_gone(answers: Sequence[str], remaining: Sequence[str], root_rules: set[str]) -> bool:
    """The root causes a candidate answers are gone (a consequence may stay); one
    that answers consequences only must remove them all."""
    if any(rule in root_rules for rule in answers):
        return not any(rule in root_rules for rule in remaining)
    return not remaining


def _program(name: str, shared: bool) -> str:
    """Traced changes run in the original's compiled program; static ones compile."""
    if name == ORIGINAL:
        return "baseline"
    return "shared with original" if shared else "own compile"


def _changes(info: dict[str, Any], name: str) -> str:
    overrides = info["experiment"]["variants"].get(name) or {}
    return Candidate(name, overrides, (), "", True, "").text() or "(the run's config)"


def _steps(info: dict[str, Any], name: str) -> int:
    """Env steps the candidate cost: per seed times seeds."""
    config = info["variants"][name]["config"]
    per_update = config["num_envs"] * config["num_steps"]
    return (config["total_timesteps"] // per_update) * per_update * int(info["seeds"])


def _static(info: dict[str, Any], name: str) -> Any:
    return static_key(diagnose.engine.cell_config(info, name))


def recommendation(table: pd.DataFrame, kept: Sequence[Candidate] = (), *,
                   latent: bool = False) -> str:
    """The smallest change that removes its findings and improves the return with
    confidence on every env (for latent findings: keeps the return), or "no
    candidate helps" with the best numbers."""
    size = {c.name: len(c.overrides) for c in kept}
    tried = table[table["candidate"] != ORIGINAL]
    helping = []
    for name, rows in tried.groupby("candidate", sort=False):
        if rows["gone"].all() and _return_holds(rows, latent):
            helping.append((size.get(name, math.inf), -rows["p_improve"].min(),
                            -rows.get("iqm", pd.Series([0.0])).mean(), name))
    if helping:  # the smallest change; among equals the surest, then the larger IQM
        name = min(helping)[-1]
        rows = tried[tried["candidate"] == name]
        verdict = ("keeps the return (the original solved its task, so it cannot gain)"
                   if latent else "improves the return")
        kind = " for the latent findings" if latent else ""
        return (f"recommended{kind}: {rows['changes'].iloc[0]} ({name}): removes "
                f"{_removed(rows)} and {verdict}: P(> original) {_p(rows)} on "
                f"{', '.join(rows['env'])}")
    if tried.empty:
        return "no candidate helps: none was run"
    return _none_helps(tried, latent)


def _removed(rows: pd.DataFrame) -> str:
    """What the candidate removed, and the original's consequences it left."""
    left = sorted({rule for text in rows["remaining"] for rule in text.split(", ") if rule})
    removed = _without(rows["answers"].iloc[0], left)
    return f"{removed} ({', '.join(left)} remains: a consequence in the original)" \
        if left else removed


def _without(answers: str, left: Sequence[str]) -> str:
    """The rules of `answers` (a ", "-joined list) not in `left`: those removed."""
    return ", ".join(rule for rule in answers.split(", ") if rule not in left)


def _return_holds(rows: pd.DataFrame, latent: bool) -> bool:
    """An improvement with confidence; for latent findings, no loss with confidence."""
    if latent:
        return bool((rows["p_improve_hi"] >= CONFIDENT).all())
    return bool((rows["p_improve_lo"] > CONFIDENT).all())


def _none_helps(tried: pd.DataFrame, latent: bool) -> str:
    best = tried.sort_values("p_improve", ascending=False).iloc[0]
    gone = "its findings gone" if best["gone"] else f"still {best['remaining']}"
    need = (f"the findings gone and the CI's upper end at or above {CONFIDENT:g}"
            if latent else f"the CI above {CONFIDENT:g} and the findings gone")
    return (f"no candidate helps: the best, {best['changes']} ({best['candidate']}), has "
            f"P(> original) {best['p_improve']:.2f} [{best['p_improve_lo']:.2f}, "
            f"{best['p_improve_hi']:.2f}] on {best['env']} ({gone}); "
            f"{'keeping' if latent else 'an improvement'} needs {need}")


def _p(rows: pd.DataFrame) -> str:
    return ", ".join(f"{r.p_improve:.2f} [{r.p_improve_lo:.2f}, {r.p_improve_hi:.2f}]"
                     for r in rows.itertuples())


def format_outcome(table: pd.DataFrame) -> str:
    """The candidates' table in Markdown, then the recommendation."""
    if "iqm" not in table.columns:
        head = "| candidate | changes | answers | kept or pruned |\n| --- | --- | --- | --- |"
        body = [f"| {r.candidate} | {r.changes} | {r.answers} | {_cell(r.reason)} |"
                for r in table.itertuples()]
        return "\n".join([head, *body, "", table.attrs["recommendation"]])
    head = ("| candidate | env | changes | findings | IQM [95% CI] | P(> original) [95% CI] "
            "| env steps | program |\n| --- | --- | --- | --- | ---: | ---: | ---: | --- |")
    body = []
    for r in table.itertuples():
        digits = stats.decimals(r.iqm, r.iqm_lo, r.iqm_hi)
        iqm = stats.format_estimate(r.iqm, r.iqm_lo, r.iqm_hi, digits)
        p = "baseline" if r.candidate == ORIGINAL else stats.format_estimate(
            r.p_improve, r.p_improve_lo, r.p_improve_hi, 2)
        state = _finding_state(r.answers, r.remaining, r.candidate == ORIGINAL, r.gone)
        body.append(f"| {r.candidate} | {r.env} | {r.changes} | {state} | {iqm} | {p} | "
                    f"{r.env_steps:,} | {r.program} |")
    return "\n".join([head, *body, "", table.attrs["recommendation"]])


def _cell(text: str) -> str:
    """A Markdown table cell: the quotes' `|value_mean - target_mean|` escaped."""
    return text.replace("|", "\\|")


def _finding_state(answers: str, remaining: str, original: bool, gone: bool = False) -> str:
    if original:
        return f"still: {remaining}" if remaining else "did not reproduce at this budget"
    if not answers:
        return "-"
    if not remaining:
        return f"gone: {answers}"
    if gone:  # its roots gone, consequences of the original's root left
        solved = _without(answers, remaining.split(", "))
        return f"gone: {solved}; remain: {remaining} (a consequence in the original)"
    return f"remain: {remaining}"
