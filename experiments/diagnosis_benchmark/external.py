"""The external-logs section of the diagnosis benchmark: jppo's rules on the committed
SB3 and CleanRL fixtures (experiments/external_logs), scored against the labels fixed
in experiments/external_logs/labels.toml before they were diagnosed.

Each (configuration, env) cell of several seeds is one run, scored as the benchmark's
own runs are (score.py), with the same injection check: an injected run is valid when
its final training return ends at least 10% of the learning range below the worst
healthy run of its trainer on its environment. A mode is *expressible* on a run when
its rule was judged there (its metrics were logged); recall is also given over the
labelled runs whose logs express the label (`recall_expressible`), and every rule not
judged is counted per mode.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from experiments.diagnosis_benchmark import score as scoring
from jppo.analysis import diagnose
from jppo.analysis.logs import Options, diagnose_logs

EXTERNAL = Path(__file__).parent.parent / "external_logs"
TRAINERS = ("sb3", "cleanrl")
HEADING = "## External logs (SB3, CleanRL)"


def diagnose_fixtures(labels: dict[str, scoring.Label]) -> list[dict[str, Any]]:
    """Per cell of every trainer's fixtures: its label, the modes fired and not judged."""
    from experiments.diagnosis_benchmark.run import check_injections, first_and_final
    from jppo.runs import results

    rows = []
    for trainer, folders, env_id in fixture_groups():
        found = diagnose_logs(folders, map=Options(env=env_id))
        for (variant, env), cell in diagnose.report.group_findings(found.findings).items():
            entry = labels[variant]
            first, final = first_and_final(results.metric_arrays(found.frame, variant, env),
                                           1.0)
            rows.append({"trainer": trainer, "variant": variant, "env": f"{trainer}:{env}",
                         "seeds": cell[0].num_seeds, "label": entry.label,
                         "also": list(entry.also), "fired": [f.rule for f in cell if f.fired],
                         "roots": [f.rule for f in diagnose.root_findings(cell)],
                         "not_judged": {f.rule: list(f.missing) for f in cell if f.missing},
                         "first_return": first, "final_return": final})
    return check_injections(rows)


def fixture_groups() -> list[tuple[str, list[Path], str | None]]:
    """(trainer, fixture folders, env id) per diagnosis: SB3's logs do not name their
    environment, so its fixtures are diagnosed per env (generate.py's SB3_CONFIGS), each
    env's learning range its own; CleanRL's run folders name theirs."""
    from experiments.external_logs.generate import SB3_CONFIGS

    root = EXTERNAL / "fixtures"
    groups = []
    for env_id in sorted({env for env, *_ in SB3_CONFIGS.values()}):
        folders = [root / "sb3" / name for name, (env, *_) in SB3_CONFIGS.items()
                   if env == env_id and (root / "sb3" / name).is_dir()]
        groups += [("sb3", folders, env_id)] if folders else []
    return [*groups, ("cleanrl", [root / "cleanrl"], None)]


def expressible_recall(rows: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    judged = [r for r in rows if r["label"] == mode and mode not in r["not_judged"]]
    hits = sum(mode in r["fired"] for r in judged)
    return {"labelled_expressible": len(judged),
            "recall_expressible": hits / len(judged) if judged else None,
            "not_judged_runs": sum(mode in r["not_judged"] for r in rows)}


def run(modes: list[str]) -> dict[str, Any]:
    labels = scoring.read_labels(EXTERNAL / "labels.toml")
    scoring.check_labels(labels, modes)
    start = time.perf_counter()
    rows = diagnose_fixtures(labels)
    seconds = time.perf_counter() - start
    results = scoring.score([scoring.scored(r["label"], r["also"], r["fired"], r["valid"])
                             for r in rows], modes)
    for mode, counts in results["modes"].items():
        counts |= expressible_recall(rows, mode)
    return results | {"diagnose_seconds": round(seconds, 1), "per_run": rows}


def _cell(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"


def markdown(results: dict[str, Any]) -> list[str]:
    """The section of results.md: per mode recall / precision, not-judged counts, runs."""
    lines = ["", HEADING, "",
             f"{results['runs']} runs (configuration cells of SB3 / CleanRL PPO fixtures, "
             f"3 seeds each), {results['healthy_runs']} healthy. False alarm rate: "
             f"**{results['false_alarm_rate']:.1%}**. Diagnosis: "
             f"{results['diagnose_seconds']:.1f} s. Labels: experiments/external_logs/"
             "labels.toml.", "",
             "| mode | labelled | recall | valid injections | recall (valid) | precision "
             "| TP | FP | runs not judged (metrics not logged) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, c in results["modes"].items():
        lines.append(f"| {mode} | {c['labelled']} | {_cell(c['recall'])} | "
                     f"{c['valid_injections']} | {_cell(c['recall_valid'])} | "
                     f"{_cell(c['precision'])} | {c['true_positives']} | "
                     f"{c['false_positives']} | {c['not_judged_runs']} |")
    lines += ["", "Runs:", ""]
    for r in results["per_run"]:
        missed = "" if r["label"] in r["fired"] or (r["label"] == "healthy" and not r["fired"]) \
            else " **(missed)**" if r["label"] != "healthy" else " **(false alarm)**"
        check = "" if r["deficit"] is None else f"; check: deficit {_cell(r['deficit'])} " + (
            "(valid)" if r["valid"] else "**(invalid injection)**")
        lines.append(f"- {r['variant']} / {r['env']} ({r['seeds']} seeds): label {r['label']}; "
                     f"fired: {', '.join(r['fired']) or 'nothing'}{missed}; root causes: "
                     f"{', '.join(r.get('roots', r['fired'])) or 'nothing'}; not judged: "
                     f"{', '.join(r['not_judged']) or 'none'}{check}")
    return lines
