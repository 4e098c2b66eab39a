"""The manual's reference tables, rendered from the objects they describe: the metric
docs (`METRIC_DOCS`) and the diagnosis rules (their thresholds, tests and remedies), so
the manual cannot say something the code does not do. `jppo config --markdown` renders
the knob table the same way (`jppo.core.knobs.markdown`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from jppo.analysis.diagnose.engine import Rule


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def metrics_markdown(docs: Mapping[str, str] | None = None) -> str:
    """A table row per metric: its name and its one-line doc."""
    if docs is None:
        from jppo.analysis.metrics import METRIC_DOCS as docs
    lines = ["| metric | what it is |", "|---|---|"]
    lines += [f"| `{name}` | {_cell(doc)} |" for name, doc in docs.items()]
    return "\n".join(lines)


def _threshold_value(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def rule_markdown(rule: Rule) -> str:
    """One rule's section: what it names, its full test with the numbers it compares
    against, where it applies, the evidence it tabulates and its remedies."""
    lines = [f"## {rule.title}", "", f"`{rule.name}`: {rule.description}", "",
             f"**Fires when** {rule.threshold}.", ""]
    if rule.scope:
        lines += [f"**Applies to** runs with {rule.scope}.", ""]
    if rule.latent_when_solved:
        lines += ["**Latent when solved:** on a run that solved its task the rule is judged "
                  "again over the solved updates, and a finding there is reported as "
                  "*latent* (listed, not counted as a failure).", ""]
    lines += ["| threshold | value |", "|---|---:|"]
    lines += [f"| `{name}` | {_threshold_value(value)} |"
              for name, value in rule.thresholds.items()]
    lines += ["", "Evidence table metrics: " + ", ".join(f"`{m}`" for m in rule.metrics) + ".",
              "", "Remedies:", ""]
    lines += [f"- `{remedy.text() or '(none)'}`: {_cell(remedy.why)}" for remedy in rule.remedies]
    return "\n".join(lines)


def rules_markdown(rules: Iterable[Rule] | None = None) -> str:
    """Every rule's section, in the order findings are listed."""
    if rules is None:
        from jppo.analysis.diagnose.rules import RULES as rules
    return "\n\n".join(rule_markdown(rule) for rule in rules)
