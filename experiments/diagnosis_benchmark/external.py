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
from jppo.analysis.logs.discover import read_options

EXTERNAL = Path(__file__).parent.parent / "external_logs"
SETTINGS = EXTERNAL / "settings.toml"
TRAINERS = ("sb3", "cleanrl")
HEADING = "## External logs (SB3, CleanRL)"


def diagnose_fixtures(labels: dict[str, scoring.Label],
                      settings: Options | None = None) -> list[dict[str, Any]]:
    """Per cell of every trainer's fixtures: its label, the modes fired and not judged;
    with `settings`, each group's [config.GROUP] fields (settings.toml) as given."""
    from experiments.diagnosis_benchmark.run import check_injections, first_and_final
    from jppo.runs import results

    rows = []
    for trainer, folders, env_id in fixture_groups():
        found = diagnose_logs(folders, map=options_for(folders, env_id, settings))
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


def options_for(folders: list[Path], env_id: str | None,
                settings: Options | None) -> Options:
    """The env, and the settings' tables of the groups among these folders (a CleanRL
    folder holds its groups one level down)."""
    if settings is None:
        return Options(env=env_id)
    names = {f.name for f in folders} | {g.name for f in folders for g in f.iterdir()
                                         if g.is_dir()}
    groups = {g: c for g, c in settings.group_config.items() if g in names}
    return Options(config=settings.config, env=env_id, group_config=groups)


def expressible_recall(rows: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """Recall over the runs whose logs judged the label's rule, and over those of them
    whose injection was valid (the target's measure)."""
    judged = [r for r in rows if r["label"] == mode and mode not in r["not_judged"]]
    valid = [r for r in judged if r["valid"]]

    def recall(runs: list[dict[str, Any]]) -> float | None:
        return sum(mode in r["fired"] for r in runs) / len(runs) if runs else None

    return {"labelled_expressible": len(judged), "recall_expressible": recall(judged),
            "valid_expressible": len(valid), "recall_valid_expressible": recall(valid),
            "not_judged_runs": sum(mode in r["not_judged"] for r in rows)}


def run(modes: list[str]) -> dict[str, Any]:
    """The fixtures scored on their logs alone, and (`with_settings`) on their logs and
    the settings their reports ask for (settings.toml: SB3's n_epochs and target_kl)."""
    labels = scoring.read_labels(EXTERNAL / "labels.toml")
    scoring.check_labels(labels, modes)
    logs_only = scored_pass(labels, modes, None)
    settings = read_options(map_file=SETTINGS)
    return logs_only | {"with_settings": scored_pass(labels, modes, settings)}


def scored_pass(labels: dict[str, scoring.Label], modes: list[str],
                settings: Options | None) -> dict[str, Any]:
    start = time.perf_counter()
    rows = diagnose_fixtures(labels, settings)
    seconds = time.perf_counter() - start
    results = scoring.score([scoring.scored(r["label"], r["also"], r["fired"], r["valid"])
                             for r in rows], modes)
    for mode, counts in results["modes"].items():
        counts |= expressible_recall(rows, mode)
    return results | {"diagnose_seconds": round(seconds, 1), "per_run": rows}


def _cell(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"


def mode_table(results: dict[str, Any]) -> list[str]:
    lines = ["| mode | labelled | recall | valid injections | recall (valid) | judged and "
             "valid | recall (judged, valid) | precision | TP | FP | runs not judged "
             "(metrics not logged) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, c in results["modes"].items():
        lines.append(f"| {mode} | {c['labelled']} | {_cell(c['recall'])} | "
                     f"{c['valid_injections']} | {_cell(c['recall_valid'])} | "
                     f"{c['valid_expressible']} | {_cell(c['recall_valid_expressible'])} | "
                     f"{_cell(c['precision'])} | {c['true_positives']} | "
                     f"{c['false_positives']} | {c['not_judged_runs']} |")
    return lines


def markdown(results: dict[str, Any]) -> list[str]:
    """The section of results.md: per mode recall / precision, not-judged counts, runs;
    then the same with the settings the reports ask for."""
    lines = ["", HEADING, "",
             f"{results['runs']} runs (configuration cells of SB3 / CleanRL PPO fixtures, "
             f"3 seeds each), {results['healthy_runs']} healthy. False alarm rate: "
             f"**{results['false_alarm_rate']:.1%}**. Diagnosis: "
             f"{results['diagnose_seconds']:.1f} s. Labels: experiments/external_logs/"
             "labels.toml. *Judged*: the label's rule had the metrics it needs in the "
             "logs; *valid*: the injection cost the run its return (the check below).", "",
             "Logs alone:", "", *mode_table(results)]
    settings = results.get("with_settings")
    if settings:
        lines += ["", "Logs and the settings their reports ask for (experiments/external_logs/"
                  "settings.toml: SB3's n_epochs and target_kl, which SB3 does not log): "
                  f"false alarm rate **{settings['false_alarm_rate']:.1%}**.", "",
                  *mode_table(settings), "", "Runs whose diagnosis the settings changed:", ""]
        before = {(r["variant"], r["env"]): r for r in results["per_run"]}
        lines += [run_line(r) for r in settings["per_run"]
                  if r["fired"] != before[(r["variant"], r["env"])]["fired"]] or ["- none"]
    lines += ["", "Runs (logs alone):", ""]
    return lines + [run_line(r) for r in results["per_run"]]


def run_line(r: dict[str, Any]) -> str:
    missed = "" if r["label"] in r["fired"] or (r["label"] == "healthy" and not r["fired"]) \
        else " **(missed)**" if r["label"] != "healthy" else " **(false alarm)**"
    check = "" if r["deficit"] is None else f"; check: deficit {_cell(r['deficit'])} " + (
        "(valid)" if r["valid"] else "**(invalid injection)**")
    return (f"- {r['variant']} / {r['env']} ({r['seeds']} seeds): label {r['label']}; "
            f"fired: {', '.join(r['fired']) or 'nothing'}{missed}; root causes: "
            f"{', '.join(r.get('roots', r['fired'])) or 'nothing'}; not judged: "
            f"{', '.join(r['not_judged']) or 'none'}{check}")
