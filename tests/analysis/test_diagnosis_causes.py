"""Root-cause ordering on hand-built metric tables: which fired finding is the cause,
which its consequence, and the benchmark's split scoring against a hand count."""

import numpy as np
import pytest

from experiments.diagnosis_benchmark import score
from jppo.analysis import diagnose
from jppo.runs import results

UPDATES = 40
TARGETS = {"target_std": 20.0, "target_abs_max": 100.0, "target_mean": 50.0,
           "value_mean": 50.0, "episode_return": 20.0}


def table(**metrics) -> "object":
    arrays = {name: np.broadcast_to(np.asarray(value, np.float64), (4, UPDATES))
              for name, value in metrics.items()}
    return results.metrics_table(arrays, variant="v", env="E", seeds=range(4),
                                 first_update=0, steps_per_update=100).to_pandas()


def fired(frame, config: dict | None = None) -> dict[str, diagnose.Finding]:
    info = None if config is None else {"variants": {"v": {"overrides": config}}}
    return {f.rule: f for f in diagnose.diagnose_frame(frame, info) if f.fired}


def step(before: float, after: float, at: int) -> np.ndarray:
    return np.where(np.arange(UPDATES) < at, before, after)


def test_a_stalled_policy_is_the_root_of_a_poor_critic():
    """KL 1e-8 and no clipped sample from the start, EV -0.5 (poor, but not far below a
    constant predictor): the critic fails on the flat targets of a policy that does not
    move, so policy stall is the root and critic collapse its consequence."""
    found = fired(table(approx_kl=1e-8, clip_fraction=0.0, explained_variance=-0.5,
                        **TARGETS))
    assert set(found) == {"policy_stall", "critic_collapse"}
    assert found["policy_stall"].root
    critic = found["critic_collapse"]
    assert not critic.root and critic.caused_by == "policy_stall"
    assert "approx_kl 1e-8 < 1e-5" in critic.cause_text and "onset: update 8 vs 8" in \
        critic.cause_text
    assert [f.rule for f in diagnose.root_findings(list(found.values()))] == ["policy_stall"]


def test_a_critic_failing_first_is_the_root_of_the_stall_that_follows():
    """The reverse: EV -10 (far below a constant predictor) from update 0, the policy
    moving (KL 1e-3) until update 20 and stalled after: critic collapse is the root,
    policy stall and the noise advantages its consequences."""
    found = fired(table(approx_kl=step(1e-3, 1e-8, 20), clip_fraction=step(0.1, 0.0, 20),
                        explained_variance=-10.0, **TARGETS))
    assert {"policy_stall", "critic_collapse", "noise_advantages"} <= set(found)
    assert found["critic_collapse"].root
    stall = found["policy_stall"]
    assert not stall.root and stall.caused_by == "critic_collapse"
    assert "onset: update 8 vs 20" in stall.cause_text  # after the warm-up
    noise = found["noise_advantages"]
    assert not noise.root and noise.caused_by == "critic_collapse"


def test_the_causal_order_needs_the_mechanism_not_just_both_findings():
    """Both stalled from the start and a critic at EV -10: the critic fails on targets a
    constant would fit, so the stall does not explain it, and the critic did not come
    first: two roots."""
    found = fired(table(approx_kl=1e-8, clip_fraction=0.0, explained_variance=-10.0,
                        **TARGETS))
    assert found["policy_stall"].root and found["critic_collapse"].root


def test_the_report_heads_with_the_root_and_lists_consequences_under_it():
    findings = diagnose.diagnose_frame(table(approx_kl=1e-8, clip_fraction=0.0,
                                             explained_variance=-0.5, **TARGETS))
    text = diagnose.format_markdown(findings)
    assert "**Diagnosis** (root cause): Policy stall (consequences: Critic collapse)." in text
    assert text.index("### Policy stall (root cause)") < \
        text.index("### Critic collapse (consequence of policy_stall)")
    terminal = diagnose.format_terminal(findings)
    assert "v / E: Critic collapse in 4/4 seeds (100%), consequence of policy_stall: " in \
        terminal


def test_roots_of_a_cycle_follow_the_priority():
    cause = diagnose.causes.Cause
    explained = {"value_dominance": [cause("throttled_updates", "", "", 0, 0)],
                 "throttled_updates": [cause("value_dominance", "", "", 0, 0)],
                 "policy_stall": [cause("value_dominance", "", "", 0, 0)]}
    assert diagnose.causes.roots_of(explained) == ["throttled_updates"]
    explained["critic_collapse"] = []
    assert diagnose.causes.roots_of(explained) == ["throttled_updates", "critic_collapse"]


def test_splits_are_scored_apart_against_a_hand_count():
    """dev: a named right (TP), a run whose root is its consequence b (a missed, b FP),
    a healthy run quiet; test: b right, one healthy run with a root (a false alarm) and
    one quiet."""
    splits = {
        "dev": [score.root_scored("a", ["a"]), score.root_scored("a", ["b"]),
                score.root_scored("healthy", [])],
        "test": [score.root_scored("b", ["b"]), score.root_scored("healthy", ["a"]),
                 score.root_scored("healthy", [])],
    }
    scored = score.score_splits(splits, ["a", "b"])
    dev, test = scored["dev"], scored["test"]
    assert dev["modes"]["a"]["recall"] == pytest.approx(0.5)
    assert dev["modes"]["a"]["precision"] == 1.0
    assert dev["modes"]["b"]["precision"] == 0.0 and dev["modes"]["b"]["false_positives"] == 1
    assert dev["false_alarm_rate"] == 0.0 and test["false_alarm_rate"] == 0.5
    assert test["modes"]["b"]["recall"] == 1.0 and test["modes"]["a"]["false_positives"] == 1
    assert dev["confusion"]["a"] == {"a": 1, "b": 1, "none": 0}
    # on roots no `also` excuses a consequence named as the cause
    assert score.root_scored("a", ["b"]).also == frozenset()


def test_a_clip_range_that_holds_the_policy_is_a_stall_not_a_critic_collapse():
    """clip_eps 1e-4 on CartPole (development split): KL 1e-8 with 27-82% of the samples
    clipped, the value clip as narrow, a starved critic (EV 0.04, value_mean at a quarter
    of target_mean). The stall is named first; the starved critic is its consequence."""
    starved = {**TARGETS, "value_mean": 12.0, "explained_variance": 0.04}
    found = fired(table(approx_kl=1e-8, clip_fraction=0.4, **starved), {"clip_eps": 1e-4})
    stall = found["policy_stall"]
    assert stall.root and "clip_fraction 0.4 > 0.1" in stall.quote
    assert found["critic_collapse"].caused_by == "policy_stall"
    assert any(r.overrides == {"clip_eps": 0.2} for r in stall.remedies)
    # samples clipped at a KL that small, but few: neither a still policy nor a held one
    assert "policy_stall" not in fired(table(approx_kl=1e-8, clip_fraction=0.05, **starved))


def test_the_test_split_has_its_own_envs_and_injections_all_labelled():
    from experiments.diagnosis_benchmark import run as bench
    from jppo.runs import experiment

    def load(split):
        return [experiment.load(split.folder / f"{s}.toml") for s in split.files]

    dev, test = load(bench.SPLITS["dev"]), load(bench.SPLITS["test"])
    labels = score.read_labels(bench.SPLITS["test"].labels)
    score.check_labels(labels, bench.modes())
    dev_envs = {e for exp in dev for e in exp.envs}
    test_envs = {e for exp in test for e in exp.envs}
    assert not test_envs & dev_envs and len(test_envs) >= 2
    used = {name for exp in test for name in exp.variants}
    assert used == set(labels)
    # a setting: the variant's overrides and its file's reward scale
    dev_settings = [(o, exp.reward_scale) for exp in dev for o in exp.variants.values()]
    test_settings = {name: (o, exp.reward_scale) for exp in test
                     for name, o in exp.variants.items()}
    for mode in bench.modes():
        settings = {name for name in used if labels[name].label == mode}
        assert len(settings) >= 2, mode
        for name in settings:  # injection values of its own
            assert test_settings[name] not in dev_settings, name


def test_the_holdout_split_has_envs_and_injections_neither_other_split_has():
    from experiments.diagnosis_benchmark import run as bench
    from jppo.runs import experiment

    def load(name):
        split = bench.SPLITS[name]
        return [experiment.load(split.folder / f"{s}.toml") for s in split.files]

    earlier, holdout = load("dev") + load("test"), load("holdout")
    labels = score.read_labels(bench.SPLITS["holdout"].labels)
    score.check_labels(labels, bench.modes())
    envs = {e for exp in holdout for e in exp.envs}
    assert not envs & {e for exp in earlier for e in exp.envs} and len(envs) >= 2
    used = {name for exp in holdout for name in exp.variants}
    assert used == set(labels)
    earlier_settings = [(o, exp.reward_scale) for exp in earlier for o in exp.variants.values()]
    settings = {name: (o, exp.reward_scale) for exp in holdout for name, o in exp.variants.items()}
    for mode in bench.modes():
        named = {name for name in used if labels[name].label == mode}
        assert len(named) >= 2, mode
        for name in named:  # injection values of its own
            assert settings[name] not in earlier_settings, name
