"""The diagnosis benchmark: its scoring against a hand count, and its files (every
variant labelled with a real failure mode, every override a PPOConfig field,
the committed results scored from those labels)."""

import json
import math

import numpy as np
import pytest

from experiments.diagnosis_benchmark import run as bench
from experiments.diagnosis_benchmark import score
from jppo.core.config import CONFIG_FIELDS
from jppo.runs import experiment

MODES = ["a", "b", "c"]


def example() -> list[score.Scored]:
    """Seven runs, counted by hand below."""
    return [
        score.scored("a", [], ["a"]),            # a: TP
        score.scored("a", ["b"], ["a", "b"]),    # a: TP; b fired, declared also: not an FP
        score.scored("a", [], []),               # a: missed
        score.scored("b", [], ["a"]),            # b: missed; a: FP
        score.scored("c", [], ["c", "b"]),       # c: TP; b: FP
        score.scored("healthy", [], []),
        score.scored("healthy", [], ["b"]),      # false alarm; b: FP
    ]


def test_scores_match_a_hand_count():
    runs = example()
    a, b, c = (score.mode_counts(runs, m) for m in MODES)
    assert (a["labelled"], a["true_positives"], a["false_positives"], a["missed"]) == (3, 2, 1, 1)
    assert a["recall"] == pytest.approx(2 / 3) and a["precision"] == pytest.approx(2 / 3)
    assert (b["labelled"], b["true_positives"], b["false_positives"]) == (1, 0, 2)
    assert b["fired_where_also"] == 1 and b["recall"] == 0.0 and b["precision"] == 0.0
    assert c["recall"] == 1.0 and c["precision"] == 1.0
    assert score.false_alarm_rate(runs) == 0.5
    table = score.confusion(runs, MODES)
    assert table["a"] == {"a": 2, "b": 1, "c": 0, "none": 1}
    assert table["b"] == {"a": 1, "b": 0, "c": 0, "none": 0}
    assert table["healthy"] == {"a": 0, "b": 1, "c": 0, "none": 1}
    never = score.mode_counts([score.scored("healthy", [], [])], "a")
    assert math.isnan(never["recall"]) and math.isnan(never["precision"])


def benchmark_files() -> list[experiment.Experiment]:
    return [experiment.load(bench.HERE / f"{stem}.toml") for stem in bench.FILES]


def test_every_benchmark_variant_is_labelled_with_a_real_mode():
    labels = score.read_labels(bench.HERE / "labels.toml")
    modes = bench.modes()
    assert "kl_cut_epochs" in modes and "numerical_divergence" in modes
    score.check_labels(labels, modes)  # raises on an unknown mode or an unexplained also
    used = set()
    runs = 0
    for exp in benchmark_files():
        for name, overrides in exp.variants.items():
            assert name in labels, (exp.name, name)
            assert set(overrides) <= set(CONFIG_FIELDS), (exp.name, name)
            used.add(name)
            runs += len(exp.envs)
        assert set(exp.config) <= set(CONFIG_FIELDS), exp.name
    assert used == set(labels)  # no label without a run
    assert runs >= 40
    counts = {m: sum(labels[v].label == m for v in used) for m in modes}
    assert all(count >= 1 for count in counts.values()), counts
    with pytest.raises(ValueError, match="not a mode"):
        score.check_labels({"x": score.Label("no_such_mode", (), "")}, modes)
    with pytest.raises(ValueError, match="without a why"):
        score.check_labels({"x": score.Label(modes[0], (modes[1],), "")}, modes)


def test_committed_results_are_scored_from_the_labels():
    labels = score.read_labels(bench.HERE / "labels.toml")
    results = json.loads((bench.HERE / "results.json").read_text())
    rows = results["per_run"]
    assert len(rows) == results["runs"] >= 40
    for row in rows:
        assert row["label"] == labels[row["variant"]].label
        assert row["also"] == list(labels[row["variant"]].also)
    rescored = score.score(bench.scored_rows(rows), list(results["modes"]))
    assert rescored["confusion"] == results["all_findings"]["confusion"]
    assert rescored["false_alarm_rate"] == pytest.approx(
        results["all_findings"]["false_alarm_rate"])
    roots = score.score(bench.root_rows(rows), list(results["modes"]))  # the headline
    assert roots["confusion"] == results["confusion"]
    assert roots["false_alarm_rate"] == pytest.approx(results["false_alarm_rate"])
    for row in rows:
        assert set(row["roots"]) <= set(row["fired"])
        assert set(row["consequences"]) == set(row["fired"]) - set(row["roots"])


def test_the_injection_check_is_a_return_deficit_against_the_healthy_runs():
    """Learning range from -1200 (untrained) to the worst healthy run, -200: an
    injected run at -336 ends 13.6% of it below (valid at the 10% limit), one at
    -198 ends above it (invalid), one that is not finite is a failure."""
    healthy = [-180.0, -200.0]
    assert score.injection_deficit(-336.0, healthy, -1200.0) == pytest.approx(0.136)
    assert score.injection_valid(score.injection_deficit(-336.0, healthy, -1200.0))
    assert not score.injection_valid(score.injection_deficit(-198.0, healthy, -1200.0))
    assert not score.injection_valid(score.injection_deficit(-299.0, healthy, -1200.0))
    assert score.injection_valid(score.injection_deficit(-301.0, healthy, -1200.0))
    assert score.injection_deficit(math.nan, healthy, -1200.0) == math.inf
    assert math.isnan(score.injection_deficit(-336.0, [], -1200.0))
    assert not score.injection_valid(math.nan)  # nothing to compare with: not shown valid


def test_recall_over_valid_injections_leaves_out_the_invalid_ones():
    runs = [score.scored("a", [], ["a"]), score.scored("a", [], [], valid=False),
            score.scored("a", [], [], valid=True), score.scored("healthy", [], [])]
    a = score.mode_counts(runs, "a")
    assert (a["labelled"], a["valid_injections"]) == (3, 2)
    assert a["recall"] == pytest.approx(1 / 3) and a["recall_valid"] == pytest.approx(1 / 2)


def test_the_final_return_of_a_run_is_its_last_updates_over_the_reward_scale():
    returns = np.array([[np.nan, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0],
                        [5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 110.0]])
    first, final = bench.first_and_final({"episode_return": returns}, 10.0)
    assert first == pytest.approx(np.median([1.0, 0.5]))
    assert final == pytest.approx(np.median([9.0, 11.0]))  # the last 10%: one update
    rows = [{"env": "E", "label": "healthy", "first_return": 0.0, "final_return": 10.0},
            {"env": "E", "label": "a", "first_return": 0.0, "final_return": 5.0},
            {"env": "F", "label": "a", "first_return": 0.0, "final_return": 5.0}]
    checked = bench.check_injections(rows)
    assert checked[0]["deficit"] is None and checked[0]["valid"]
    assert checked[1]["deficit"] == pytest.approx(0.5) and checked[1]["valid"]
    assert math.isnan(checked[2]["deficit"]) and not checked[2]["valid"]


def test_committed_external_results_are_scored_from_their_labels():
    """The external-logs section: every fixture cell labelled before its diagnosis,
    re-scored from the committed rows, and re-diagnosed from the committed fixtures."""
    from experiments.diagnosis_benchmark import external

    labels = score.read_labels(external.EXTERNAL / "labels.toml")
    section = json.loads((bench.HERE / "results.json").read_text())["external"]
    rows = section["per_run"]
    assert {r["variant"] for r in rows} == set(labels)
    for row in rows:
        assert row["label"] == labels[row["variant"]].label
    rescored = score.score([score.scored(r["label"], r["also"], r["fired"], r["valid"])
                            for r in rows], list(section["modes"]))
    assert rescored["confusion"] == section["confusion"]
    fresh = external.run(bench.modes())
    assert [(r["variant"], r["fired"], r["not_judged"]) for r in fresh["per_run"]] == \
        [(r["variant"], r["fired"], r["not_judged"]) for r in rows]
    given = section["with_settings"]["per_run"]
    assert [(r["variant"], r["fired"], r["not_judged"]) for r in fresh["with_settings"][
        "per_run"]] == [(r["variant"], r["fired"], r["not_judged"]) for r in given]


def test_the_external_settings_are_each_sb3_configurations_own():
    """settings.toml gives each SB3 fixture folder the n_epochs (SB3's default 10) and
    target_kl it was trained with, and nothing else; with them, the only diagnosis that
    changes is the one whose cut SB3's logs hide (every update cut at its first epoch)."""
    from experiments.diagnosis_benchmark import external
    from experiments.external_logs.generate import SB3_CONFIGS
    from jppo.analysis.logs.discover import read_options

    settings = read_options(map_file=external.SETTINGS)
    assert settings.config == {} and set(settings.group_config) == set(SB3_CONFIGS)
    for name, (_, kwargs, _, _) in SB3_CONFIGS.items():
        expected = {"update_epochs": kwargs.get("n_epochs", 10),
                    "kl_early_stop": "target_kl" in kwargs}
        expected |= {"target_kl": kwargs["target_kl"]} if "target_kl" in kwargs else {}
        assert settings.group_config[name] == expected
    section = json.loads((bench.HERE / "results.json").read_text())["external"]
    changed = [a["variant"] for a, b in zip(section["per_run"],
                                            section["with_settings"]["per_run"], strict=True)
               if a["fired"] != b["fired"]]
    assert changed == ["sb3_target_kl_tiny"]
