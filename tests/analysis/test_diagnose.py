"""The automatic diagnosis: each rule on hand-made metric arrays (its threshold,
its gates, warm-up and persistence), then two trained runs: CartPole with
rewards x1000 and an absolute value clip must be flagged, and a healthy
CartPole run must not. Two compiles in all, each a module-scoped fixture.

The healthy run uses `reward_scaling=True`: with the default config the value
gradient holds the global clip at ~60x max_grad_norm on CartPole, and the
diagnosis rightly reports that (the scaled run solves CartPole sooner).
"""

import dataclasses
import math
import re

import jax
import numpy as np
import pandas as pd
import pytest

import jppo
from jppo import envs
from jppo.analysis import diagnose
from jppo.analysis.metrics import METRIC_DOCS, final_episode_return
from jppo.runs import results
from jppo.runs.runner import seed_keys

UPDATES = 40


def handmade(num_seeds: int = 4, **metrics) -> pd.DataFrame:
    """A metrics table with the given columns: each a scalar, an (updates,) curve,
    or a (seeds, updates) array."""
    arrays = {name: np.broadcast_to(np.asarray(value, np.float64), (num_seeds, UPDATES))
              for name, value in metrics.items()}
    table = results.metrics_table(arrays, variant="v", env="E", seeds=range(num_seeds),
                                  first_update=0, steps_per_update=100)
    return table.to_pandas()


def finding(frame: pd.DataFrame, rule: str, config: dict | None = None) -> diagnose.Finding:
    info = None if config is None else {"variants": {"v": {"overrides": config}}}
    (match,) = [f for f in diagnose.diagnose_frame(frame, info) if f.rule == rule]
    return match


def step(before: float, after: float, at: int) -> np.ndarray:
    return np.where(np.arange(UPDATES) < at, before, after)


# ------------------------------------------------------------------- the rules


def test_rules_are_complete_and_their_remedies_are_valid_configs():
    names = [rule.name for rule in diagnose.RULES]
    assert names == ["value_dominance", "critic_collapse", "throttled_updates", "policy_stall",
                     "entropy_collapse", "exploding_value_loss", "noise_advantages",
                     "kl_cut_epochs"]
    for rule in diagnose.RULES:
        assert set(rule.metrics) <= set(METRIC_DOCS), rule.name
        assert rule.title and rule.description and rule.threshold and rule.remedies
        for remedy in rule.remedies:
            jppo.make_config(**remedy.overrides)  # raises on a bad field or value
            assert remedy.why


def shown(value: float) -> tuple[str, ...]:
    """The ways a rule's text writes a threshold: plain, percent, two decimals."""
    return (f"{value:g}", f"{value:.0%}", f"{value:.2f}")


def test_rule_texts_are_generated_from_their_thresholds():
    for rule in diagnose.RULES:
        assert rule.thresholds, rule.name
        for key, value in rule.thresholds.items():
            assert any(text in rule.threshold for text in shown(value)), (rule.name, key)
            assert "{" + key in rule.threshold_template + rule.condition_template, (rule.name, key)
        first = next(iter(rule.thresholds.values()))
        assert any(text in rule.condition for text in shown(first)), rule.name
        # another number in the thresholds changes the text: nothing is written out by hand
        moved = dataclasses.replace(rule, thresholds={k: v * 7 + 3 for k, v in
                                                      rule.thresholds.items()})
        assert moved.condition != rule.condition and moved.threshold != rule.threshold


@pytest.mark.parametrize("rule, metric", [("throttled_updates", "grad_clip_ratio")])
def test_a_rule_fires_exactly_above_the_threshold_its_text_states(rule, metric):
    (declared,) = [r for r in diagnose.RULES if r.name == rule]
    limit = declared.thresholds["ratio"]
    assert f"> {limit:g}" in declared.condition
    assert finding(handmade(**{metric: limit * 1.01}), rule).fired
    assert not finding(handmade(**{metric: limit * 0.99}), rule).fired


def test_plots_draw_the_rule_threshold():
    from jppo.analysis import plots
    from jppo.analysis.diagnose import rules

    assert plots.THROTTLED_CLIP_RATIO is rules.THROTTLE_RATIO


def test_applicability_is_a_predicate_on_the_config_declared_with_the_rule():
    by_name = {rule.name: rule for rule in diagnose.RULES}
    exploding, noise = by_name["exploding_value_loss"], by_name["noise_advantages"]
    assert exploding.applies(jppo.PPOConfig())
    assert exploding.applies(jppo.PPOConfig(value_loss="mse"))
    for changes in ({"value_loss": "huber"}, {"value_target": "symlog"},
                    {"value_loss": "hl_gauss", "value_target": "symlog"}):
        assert not exploding.applies(jppo.PPOConfig(**changes)), changes
    assert noise.applies(jppo.PPOConfig(advantage_norm="batch"))
    assert not noise.applies(jppo.PPOConfig(advantage_norm="off"))
    huber = finding(handmade(value_loss=1e9, target_abs_max=1e4, target_std=1.0),
                    "exploding_value_loss", {"value_loss": "huber"})
    assert not huber.fired and huber.basis.startswith("not applicable: ")
    assert exploding.scope in huber.basis


def test_critic_collapse_is_gated_on_the_target_scale():
    # Solved CartPole: every return ~100 (gamma 0.99), Var[R] tiny, EV reads -2.
    solved = handmade(explained_variance=-2.0, target_std=0.01, target_mean=100.0,
                      target_abs_max=100.0)
    gated = finding(solved, "critic_collapse")
    assert not gated.fired and gated.fraction == 0.0
    assert "flat targets" in gated.basis
    broken = handmade(explained_variance=-0.5, target_std=20.0, target_mean=50.0,
                      target_abs_max=100.0)
    fired = finding(broken, "critic_collapse")
    assert fired.fired and fired.fraction == 1.0 and fired.seeds == [0, 1, 2, 3]


def test_policy_stall_fires_on_tiny_kl_and_skips_annealed_and_solved_updates():
    assert finding(handmade(approx_kl=1e-7, clip_fraction=0.0), "policy_stall").fired
    assert not finding(handmade(approx_kl=1e-2, clip_fraction=0.1), "policy_stall").fired
    # KL vanishes from update 20 on: a majority after warm-up, but mostly where the
    # linear schedule has taken the lr below 25% of its peak.
    annealed = handmade(approx_kl=step(1e-2, 1e-9, 20), clip_fraction=0.0,
                        lr_policy=np.linspace(2.5e-4, 0.0, UPDATES))
    assert not finding(annealed, "policy_stall").fired
    solved = handmade(approx_kl=1e-9, clip_fraction=0.0, episode_return=step(20.0, 500.0, 4))
    assert not finding(solved, "policy_stall").fired


def test_solved_is_judged_against_the_best_variant_on_the_env():
    """A variant that plateaus at 300 while another reaches 500 is stalled, not
    solved; on its own the plateau is its best level and excuses it."""
    stalled = dict(approx_kl=1e-9, clip_fraction=0.0, episode_return=step(20.0, 300.0, 4))
    alone = handmade(**stalled)
    assert not finding(alone, "policy_stall").fired
    better = handmade(approx_kl=1e-2, clip_fraction=0.1, episode_return=step(20.0, 500.0, 4))
    better["variant"] = "w"
    both = pd.concat([alone, better], ignore_index=True)
    (stall,) = [f for f in diagnose.diagnose_frame(both)
                if f.rule == "policy_stall" and f.variant == "v"]
    assert stall.fired
    # one lucky update is not a level: the smoothed best ignores a single spike
    spiky = np.where(np.arange(UPDATES) == 30, 500.0, step(20.0, 300.0, 4))
    assert not finding(handmade(**{**stalled, "episode_return": spiky}), "policy_stall").fired


def test_findings_follow_the_run_order():
    frames = []
    for variant in ("zeta", "alpha"):
        frame = handmade(approx_kl=1e-2, clip_fraction=0.1)
        frame["variant"] = variant
        frames.append(frame)
    info = {"envs": ["E"], "variants": {"zeta": {}, "alpha": {}}}
    findings = diagnose.diagnose_frame(pd.concat(frames, ignore_index=True), info)
    assert [f.variant for f in findings][:: len(diagnose.RULES)] == ["zeta", "alpha"]


def test_value_dominance_uses_the_torso_terms_or_the_global_clip():
    heads = dict(grad_norm_value=30.0, grad_norm_policy=0.03, grad_clip_ratio=60.0)
    separate = finding(handmade(**heads), "value_dominance")
    assert separate.fired and "global clip" in separate.basis
    assert "value/policy grad" in separate.evidence.columns
    per_head = finding(handmade(**heads), "value_dominance", {"grad_clip": "per_head"})
    assert not per_head.fired and "per head" in per_head.basis
    unclipped = finding(handmade(**{**heads, "grad_clip_ratio": 0.5}), "value_dominance")
    assert not unclipped.fired
    torso = finding(handmade(grad_norm_value_term_torso=50.0, grad_norm_policy_term_torso=0.1),
                    "value_dominance", {"torso_hidden": [64], "grad_clip": "per_head"})
    assert torso.fired and "torso" in torso.basis
    assert all("grad_clip" not in r.overrides for r in torso.remedies)  # already per head


def quoted_numbers(quote: str) -> list[float]:
    """The numbers of a quote ("name 2.5e4 > 10 while ..."), in order."""
    return [float(n) for n in re.findall(r"(?<![\w/])-?\d+(?:\.\d+)?(?:e-?\d+)?", quote)]


def after_warm_up(values: np.ndarray) -> np.ndarray:
    return values[:, math.ceil(diagnose.WARMUP_FRACTION * UPDATES):]


def test_a_finding_quotes_the_criterion_that_held_against_its_threshold():
    """Shared torso under one global clip: the torso terms are balanced (ratio 0.47,
    below its threshold), the heads are not; the finding must quote the head criterion with
    the medians of the hand-made arrays, never the torso ratio."""
    rng = np.random.default_rng(0)
    value, policy = rng.uniform(1e3, 1e4, (4, UPDATES)), rng.uniform(0.1, 0.3, (4, UPDATES))
    clip = rng.uniform(50.0, 500.0, (4, UPDATES))
    frame = handmade(grad_norm_value=value, grad_norm_policy=policy, grad_clip_ratio=clip,
                     grad_norm_value_term_torso=0.47, grad_norm_policy_term_torso=1.0)
    found = finding(frame, "value_dominance", {"torso_hidden": [64]})
    assert found.fired
    assert found.quote.startswith("value/policy head gradient ")
    assert " > 10 while grad_clip_ratio " in found.quote
    assert " > 1 and clipped policy gradient / adam_eps " in found.quote
    assert found.quote.endswith(" < 100")
    assert "torso" not in found.quote and "torso" not in found.basis
    heads, clips = np.median(after_warm_up(value / policy)), np.median(after_warm_up(clip))
    crushed = np.median(after_warm_up(policy / clip / jppo.PPOConfig().adam_eps))
    np.testing.assert_allclose(quoted_numbers(found.quote), [heads, 10, clips, 1, crushed, 100],
                               rtol=5e-3)
    assert found.key_value == pytest.approx(heads)
    assert f"fired on: {found.quote}" in diagnose.format_terminal([found])
    assert f"Fired on: {found.quote}" in diagnose.format_markdown([found])
    # the torso unbalanced, the heads not: the torso criterion is quoted alone
    torso = finding(handmade(grad_norm_value=1.0, grad_norm_policy=1.0, grad_clip_ratio=clip,
                             grad_norm_value_term_torso=value, grad_norm_policy_term_torso=policy),
                    "value_dominance", {"torso_hidden": [64]})
    assert torso.fired and "head" not in torso.quote and "global clip" not in torso.basis
    np.testing.assert_allclose(quoted_numbers(torso.quote), [heads, 100], rtol=5e-3)


def test_a_single_criterion_quote_reads_its_median_over_the_affected_seeds():
    rng = np.random.default_rng(1)
    ev = rng.uniform(-2.0, -0.1, (4, UPDATES))
    ev[3] = 0.9  # a healthy seed: not affected, not in the median
    found = finding(handmade(explained_variance=ev, target_std=20.0, target_abs_max=100.0),
                    "critic_collapse")
    assert found.fired and found.seeds == [0, 1, 2]
    assert found.quote.startswith("explained_variance -") and found.quote.endswith(" < -0.1")
    np.testing.assert_allclose(quoted_numbers(found.quote),
                               [np.median(after_warm_up(ev[:3])), -0.1], rtol=5e-3)
    stall = finding(handmade(approx_kl=2e-7, clip_fraction=0.0), "policy_stall")
    assert stall.quote == "approx_kl 2e-7 < 1e-6 and clip_fraction 0 < 0.001"


def test_warm_up_persistence_and_the_reporting_line():
    # 22 of 40 updates (a majority of the run), but only 14 of the 32 after warm-up
    early = handmade(grad_clip_ratio=step(100.0, 1.0, 22))
    assert finding(early, "throttled_updates").fraction == 0.0
    one_seed = np.ones((8, UPDATES))
    one_seed[3] = 50.0
    lone = finding(handmade(8, grad_clip_ratio=one_seed), "throttled_updates")
    assert lone.seeds == [3] and lone.fraction == 0.125 and not lone.fired
    one_seed[5] = 50.0
    two = finding(handmade(8, grad_clip_ratio=one_seed), "throttled_updates")
    assert two.seeds == [3, 5] and two.fired
    half = finding(handmade(grad_clip_ratio=step(1.0, 50.0, 24)), "throttled_updates")
    assert not half.fired  # 16 of 32 post-warm-up updates is not a majority


def test_entropy_collapse_discrete_gaussian_and_solved():
    falling = np.maximum(0.69 * (1 - np.arange(UPDATES) / 5), 0.01)
    assert finding(handmade(entropy=falling), "entropy_collapse").fired
    assert not finding(handmade(entropy=step(0.69, 0.5, 5)), "entropy_collapse").fired
    solved = handmade(entropy=falling, episode_return=step(20.0, 500.0, 4))
    assert not finding(solved, "entropy_collapse").fired
    gaussian = handmade(entropy=1.4, log_std_mean=step(0.0, -2.5, 5))
    assert finding(gaussian, "entropy_collapse").fired


def test_noise_advantages_relative_to_the_return_scale():
    noise = handmade(advantage_std=1e-5, target_mean=5.0, target_abs_max=10.0)
    assert finding(noise, "noise_advantages").fired
    assert not finding(noise, "noise_advantages", {"advantage_norm": "robust"}).fired
    signal = handmade(advantage_std=0.5, target_mean=5.0, target_abs_max=10.0)
    assert not finding(signal, "noise_advantages").fired


def test_kl_cut_epochs_fires_when_most_epochs_are_cut_under_kl_early_stop():
    """The 20-epoch full-batch setting: updates stopped at epoch 4-11 of 20."""
    rng = np.random.default_rng(2)
    cut = rng.integers(4, 12, (4, UPDATES)).astype(np.float64)
    cut[0] = 20.0  # one seed runs all its epochs
    config = {"kl_early_stop": True, "update_epochs": 20, "num_minibatches": 1}
    found = finding(handmade(epochs_completed=cut), "kl_cut_epochs", config)
    assert found.fired and found.seeds == [1, 2, 3]
    np.testing.assert_allclose(quoted_numbers(found.quote),
                               [np.median(after_warm_up(cut[1:])) / 20, 0.5], rtol=5e-3)
    assert found.quote.startswith("epochs_completed / update_epochs ")
    assert all(r.overrides != {"update_epochs": 20} for r in found.remedies)
    # the limit in the text is the limit of the test: 9 of 20 fires, 11 of 20 does not
    limit = diagnose.KL_CUT_FRACTION * 20
    assert finding(handmade(epochs_completed=limit - 1), "kl_cut_epochs", config).fired
    assert not finding(handmade(epochs_completed=limit + 1), "kl_cut_epochs", config).fired
    # cut only during the warm-up (the first 20% of updates): not persistent
    early = handmade(epochs_completed=step(2.0, 20.0, 8))
    assert not finding(early, "kl_cut_epochs", config).fired
    # without kl_early_stop the rule does not judge (epochs_completed is update_epochs)
    off = finding(handmade(epochs_completed=cut), "kl_cut_epochs", {"update_epochs": 20})
    assert not off.fired and off.basis.startswith("not applicable: ")


def test_exploding_value_loss_needs_scale_and_a_loss_that_stays_up():
    scale = dict(target_abs_max=1.4e4, target_mean=9e3, target_std=4e3)
    growing = handmade(value_loss=np.linspace(3e7, 5e7, UPDATES), **scale)
    fired = finding(growing, "exploding_value_loss")
    assert fired.fired and "value_clip_mode" in fired.remedies[0].overrides
    assert "absolute value clip eps=0.2" in fired.note
    falling = handmade(value_loss=np.linspace(1e8, 2e7, UPDATES), **scale)  # large but falling
    assert not finding(falling, "exploding_value_loss").fired
    small = handmade(value_loss=np.linspace(30.0, 50.0, UPDATES), target_abs_max=50.0,
                     target_mean=30.0, target_std=4.0)
    assert not finding(small, "exploding_value_loss").fired
    popart = finding(growing, "exploding_value_loss", {"value_target": "popart"})
    assert not popart.fired and "not applicable" in popart.basis


def test_policy_progress_is_read_on_the_training_return_when_evaluations_are_flat():
    """A greedy evaluation at the optimum from the start says nothing about the
    sampled policy, which still climbs: a slow policy, not a stalled one."""
    flat_eval = np.where(np.arange(UPDATES) % 5 == 4, 1000.0, np.nan)
    tiny = dict(approx_kl=1e-9, clip_fraction=0.0, eval_return=flat_eval)
    climbing = handmade(episode_return=np.linspace(100.0, 900.0, UPDATES), **tiny)
    assert not finding(climbing, "policy_stall").fired
    stuck = handmade(episode_return=np.full(UPDATES, 100.0),
                     **(tiny | {"eval_return": flat_eval / 10.0}))
    assert finding(stuck, "policy_stall").fired


def test_flat_targets_at_the_best_training_return_are_not_noise():
    """Every sampled episode ending at the best return (CartPole's 500) makes the
    targets flat; a sparse evaluation that dipped must not turn that into noise."""
    updates = np.arange(UPDATES)
    dipping_eval = np.where(updates % 5 == 4, np.where(updates // 10 % 2, 400.0, 500.0), np.nan)
    flat = dict(advantage_std=0.5, target_std=0.01, target_mean=50.0, target_abs_max=60.0,
                eval_return=np.where(np.arange(UPDATES) < 4, 20.0, dipping_eval))
    finished = handmade(episode_return=step(20.0, 500.0, 4), **flat)
    assert not finding(finished, "noise_advantages").fired
    unsolved = handmade(episode_return=np.full(UPDATES, 20.0),
                        **(flat | {"eval_return": np.full(UPDATES, 20.0)}))
    assert finding(unsolved, "noise_advantages").fired


def test_a_critic_defect_on_a_solved_task_is_reported_latent_not_fired():
    """The solved gate keeps a finished run quiet, but a broken critic outlives the
    task: it is judged again without the gate and reported as latent."""
    scale = dict(target_abs_max=1.4e4, target_mean=9e3, target_std=4e3,
                 value_loss=np.linspace(3e7, 5e7, UPDATES))
    solved = finding(handmade(episode_return=step(20.0, 500.0, 4), **scale),
                     "exploding_value_loss")
    assert not solved.fired and solved.latent and solved.fraction == 1.0
    assert "value_loss" in solved.quote
    report = diagnose.format_markdown([solved])
    assert "latent, on updates where the task is solved" in report
    assert "(latent: on updates where the task is solved)" in diagnose.format_terminal([solved])
    learning = finding(handmade(episode_return=np.linspace(20.0, 500.0, UPDATES), **scale),
                       "exploding_value_loss")
    assert learning.fired and not learning.latent
    # a policy rule has no latent form: a converged policy is meant to stop moving
    stalled = finding(handmade(approx_kl=1e-9, clip_fraction=0.0,
                               episode_return=step(20.0, 500.0, 4)), "policy_stall")
    assert not stalled.fired and not stalled.latent


def test_evidence_table_is_the_median_across_seeds_at_spaced_updates():
    values = np.array([1.0, 2.0, 3.0, 100.0])[:, None] * np.ones(UPDATES)
    evidence = finding(handmade(grad_clip_ratio=values), "throttled_updates").evidence
    assert len(evidence) == diagnose.EVIDENCE_ROWS
    assert evidence["update"].iloc[0] == 0 and evidence["update"].iloc[-1] == UPDATES - 1
    assert np.all(np.diff(evidence["update"]) > 0)
    np.testing.assert_allclose(evidence["grad_clip_ratio"], 2.5)
    assert "grad_norm_value" not in evidence.columns  # not recorded: no column


# --------------------------------------------------------------- trained runs


def train_frame(variant: str, config: jppo.PPOConfig, env_args: dict, seeds: int):
    env, env_params = envs.make("CartPole-v1", **env_args)
    train = jax.jit(jax.vmap(jppo.make_train(config, env, env_params)))
    metrics = {k: np.asarray(v) for k, v in jax.device_get(train(seed_keys(seeds)).metrics).items()}
    table = results.metrics_table(metrics, variant=variant, env="CartPole-v1",
                                  seeds=range(seeds), first_update=0,
                                  steps_per_update=config.batch_size)
    return table, metrics


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    """Rewards x1000, value_output_gain 1.0, absolute value clip 0.2 (the defaults)."""
    config = jppo.make_config(total_timesteps=50_000, num_envs=8, num_steps=32,
                              value_output_gain=1.0)
    table, _ = train_frame("failing", config, {"reward_scale": 1000.0}, seeds=4)
    run_dir = tmp_path_factory.mktemp("failing")
    results.write_part(run_dir, "failing", "CartPole-v1", 0, table)
    results.write_run_info(run_dir, {
        "name": "failing", "envs": ["CartPole-v1"], "seeds": 4, "first_seed": 0,
        "baseline": "failing",
        "variants": {"failing": {"overrides": {"value_output_gain": 1.0},
                                 "config": dataclasses.asdict(config)}},
    })
    return run_dir


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    config = jppo.make_config(total_timesteps=100_000, reward_scaling=True)
    table, metrics = train_frame("healthy", config, {}, seeds=8)
    info = {"variants": {"healthy": {"config": dataclasses.asdict(config)}}}
    return table.to_pandas(), info, metrics


def test_failing_run_is_flagged(failing_run):
    frame = results.read_metrics(failing_run)
    findings = diagnose.diagnose_frame(frame, results.read_run_info(failing_run))
    fired = {f.rule: f for f in findings if f.fired}
    assert {"throttled_updates", "value_dominance", "exploding_value_loss"} <= set(fired)
    assert fired["throttled_updates"].fraction == 1.0
    assert fired["throttled_updates"].key_value > 1000  # pre-clip norm >1000x the max
    assert "absolute value clip" in fired["exploding_value_loss"].note


def test_healthy_run_learns_and_flags_nothing(healthy):
    frame, info, metrics = healthy
    assert np.median(final_episode_return(metrics)) >= 450
    findings = diagnose.diagnose_frame(frame, info)
    assert len(findings) == len(diagnose.RULES)
    assert [f.title for f in findings if f.fired] == []
    assert "no failure mode detected: healthy / CartPole-v1" in diagnose.format_terminal(findings)


def test_diagnose_run_writes_the_report(failing_run):
    findings = diagnose.diagnose_run(failing_run)
    report = (failing_run / "diagnosis.md").read_text()
    assert report.startswith("# Diagnosis: failing")
    for f in findings:
        assert (f"### {f.title}" in report) == f.fired
    assert "| update | env_steps | episode_return | grad_clip_ratio |" in report
    assert 'value_clip_mode="relative"' in report
    assert "## Summary: fraction of seeds affected" in report
    assert "| Throttled updates | **100%** |" in report


def test_reports_cover_every_cell(failing_run, healthy):
    frame, info, _ = healthy
    failing = results.read_metrics(failing_run)
    failing["env"] = "CartPole-x1000"  # another return scale: another task
    both = pd.concat([failing, frame], ignore_index=True)
    info = {"variants": {**results.read_run_info(failing_run)["variants"], **info["variants"]}}
    findings = diagnose.diagnose_frame(both, info)
    terminal = diagnose.format_terminal(findings)
    assert "failing / CartPole-x1000: Throttled updates in 4/4 seeds (100%)" in terminal
    assert "no failure mode detected: healthy / CartPole-v1" in terminal
    report = diagnose.format_markdown(findings)
    assert "## healthy / CartPole-v1 (8 seeds)" in report
    assert "No failure mode detected (8 rules checked)." in report
    assert "| failure mode | failing / CartPole-x1000 | healthy / CartPole-v1 |" in report


# ------------------------------------------------ critic collapse and noise margins


def test_critic_collapse_needs_a_margin_below_the_batch_mean():
    """EV -0.05 with value_mean on target_mean is a batch-mean baseline (it learns:
    case study frozen_policy, value_output_gain 0.01); EV -0.15 adds variance."""
    tracking = {"target_std": 20.0, "target_abs_max": 100.0, "target_mean": 50.0,
                "value_mean": 50.0}
    assert not finding(handmade(explained_variance=-0.05, **tracking), "critic_collapse").fired
    worse = finding(handmade(explained_variance=-0.15, **tracking), "critic_collapse")
    assert worse.fired and worse.quote == "explained_variance -0.15 < -0.1"
    assert diagnose.EXPLAINED_VARIANCE_FLOOR == -0.1


def test_a_starved_critic_explains_nothing_and_lags_the_targets_mean():
    """Case study value_dominance: EV 0.001-0.009, value_mean at 39-63% of target_mean."""
    base = {"target_std": 20.0, "target_abs_max": 100.0, "target_mean": 50.0}
    starved = finding(handmade(explained_variance=0.008, value_mean=30.0, **base),
                      "critic_collapse")
    assert starved.fired
    # the bias of 20 / 50 = 0.4 against its limit, and EV against STARVED_EV
    np.testing.assert_allclose(quoted_numbers(starved.quote), [0.008, 0.05, 0.4, 0.25])
    # just inside either limit: EV at 1.2x the limit, or value_mean off by 0.8x the limit
    assert not finding(handmade(explained_variance=0.06, value_mean=30.0, **base),
                       "critic_collapse").fired
    assert not finding(handmade(explained_variance=0.008, value_mean=40.0, **base),
                       "critic_collapse").fired
    assert finding(handmade(explained_variance=0.008, value_mean=37.0, **base),
                   "critic_collapse").fired
    assert finding(handmade(explained_variance=0.008, value_mean=64.0, **base),
                   "critic_collapse").fired  # too high lags as much as too low
    # a seed that has solved the task is not judged (the policy has nothing left to gain)
    solved = handmade(explained_variance=0.008, value_mean=30.0,
                      episode_return=step(20.0, 500.0, 4), **base)
    assert not finding(solved, "critic_collapse").fired


def test_noise_advantages_floor_is_relative_to_small_returns_too():
    """Returns of 1.4e-3 (case study frozen_policy, value_output_gain 0.01, which
    learns): an advantage std of 1.9e-4 is 14% of the scale, signal; the old floor
    1e-3 x max(1, scale) called it noise. 1e-5 is 0.7% of the scale: noise."""
    small = {"target_mean": 7e-4, "target_abs_max": 1.4e-3, "target_std": 3e-4}
    assert not finding(handmade(advantage_std=1.9e-4, **small), "noise_advantages").fired
    tiny = finding(handmade(advantage_std=1e-5, **small), "noise_advantages")
    assert tiny.fired
    np.testing.assert_allclose(quoted_numbers(tiny.quote), [1e-5 / 1.4e-3, 1e-2], rtol=5e-3)
    # the floor is relative at large scales too: 1.5% of a scale of 100 is signal
    assert not finding(handmade(advantage_std=1.5, target_mean=50.0, target_abs_max=100.0,
                                target_std=20.0), "noise_advantages").fired
    assert finding(handmade(advantage_std=0.5, target_mean=50.0, target_abs_max=100.0,
                            target_std=20.0), "noise_advantages").fired


def test_noise_advantages_fire_where_the_critic_error_dwarfs_the_returns():
    """EV -9 (case study frozen_policy): Var[R - V] is 10x Var[R], the advantages are
    mostly the critic's error though their std is far above the floor."""
    scale = {"target_mean": 0.01, "target_abs_max": 0.02, "target_std": 0.005,
             "advantage_std": 0.01}
    error = finding(handmade(explained_variance=-9.0, **scale), "noise_advantages")
    assert error.fired and error.quote == "explained_variance -9 < -3"
    assert not finding(handmade(explained_variance=-2.0, **scale), "noise_advantages").fired
    assert not finding(handmade(explained_variance=-9.0, **scale), "noise_advantages",
                       {"advantage_norm": "robust"}).fired


def test_the_sampled_return_is_held_to_a_looser_tolerance_than_the_evaluation():
    """Greedy evaluations at the best return: a seed whose sampled (training) return is
    10% of the learning range below the best is solved (exploration noise); one 42%
    below is not (the updates still move a policy far from the greedy one's level)."""
    def seeds_at(level: float) -> np.ndarray:
        training = np.stack([step(20.0, 500.0, 4)] + [step(20.0, level, 4)] * 3)
        return training

    noisy = handmade(grad_clip_ratio=50.0, eval_return=step(20.0, 500.0, 4),
                     episode_return=seeds_at(452.0))
    assert not finding(noisy, "throttled_updates").fired
    behind = handmade(grad_clip_ratio=50.0, eval_return=step(20.0, 500.0, 4),
                      episode_return=seeds_at(300.0))
    found = finding(behind, "throttled_updates")
    assert found.fired and found.seeds == [1, 2, 3]
    assert diagnose.SAMPLED_TOLERANCE == 0.25 and diagnose.SOLVED_TOLERANCE == 0.05


def test_kl_cut_epochs_stays_quiet_while_the_return_keeps_rising():
    """Case studies kl_early_stop and frozen_policy: the variants whose epochs are cut
    are the best ones; cut epochs that cost nothing are not a failure."""
    config = {"kl_early_stop": True, "update_epochs": 20, "num_minibatches": 1}
    rising = np.linspace(20.0, 400.0, UPDATES)
    assert not finding(handmade(epochs_completed=6.0, episode_return=rising),
                       "kl_cut_epochs", config).fired
    flat = handmade(epochs_completed=6.0, episode_return=step(20.0, 60.0, 3))
    stuck = finding(flat, "kl_cut_epochs", config)
    assert stuck.fired and "return gain / learning range 0 < 0.1" in stuck.quote


def test_a_gaussian_std_narrowed_threefold_on_a_return_that_does_not_rise_collapses():
    """Pendulum at policy_lr 0.03: the std 3.2x narrower (log-std -1.16) while the
    return falls; healthy Pendulum narrows as much only while it learns."""
    narrowed = step(0.0, -1.16, 5)
    falling = handmade(entropy=0.3, log_std_mean=narrowed, episode_return=step(-180.0, -980.0, 5))
    found = finding(falling, "entropy_collapse")
    assert found.fired and "log-std drop 1.16 >= 1.1" in found.quote
    rising = handmade(entropy=0.3, log_std_mean=narrowed,
                      episode_return=np.linspace(-1200.0, -180.0, UPDATES))
    assert not finding(rising, "entropy_collapse").fired
    # 2.7x narrower (log-std -1.0 < ln 3) on the same falling return: not yet
    short = handmade(entropy=0.3, log_std_mean=step(0.0, -1.0, 5),
                     episode_return=step(-180.0, -980.0, 5))
    assert not finding(short, "entropy_collapse").fired
    assert math.isclose(diagnose.STUCK_LOG_STD_DROP, math.log(3.0))


def test_a_rule_whose_metric_is_finite_on_too_few_updates_is_not_judged():
    """explained_variance -5 (noise advantages: the critic's error dwarfs the returns)
    logged NaN on most updates, as CleanRL does where the returns do not vary: a seed
    with fewer than 5 finite updates after the warm-up (the first 8 of 40), or under a
    quarter of its 32, is not judged, and a cell of such seeds says so with the count
    instead of "no failure"."""
    assert finding(handmade(explained_variance=-5.0), "noise_advantages").fired
    four = finding(handmade(explained_variance=step(-5.0, math.nan, 12)), "noise_advantages")
    assert not four.fired and four.missing == ("explained_variance",)
    # 4 seeds x 28 NaN updates of their 32; each keeps 4
    assert four.unjudged.startswith("explained_variance non-finite on 112 of 128 updates")
    assert "seed 0: 4 of 32" in four.unjudged
    seven = finding(handmade(explained_variance=step(-5.0, math.nan, 15)), "noise_advantages")
    assert not seven.fired and "seed 3: 7 of 32" in seven.unjudged  # 7 < 32 / 4
    eight = finding(handmade(explained_variance=step(-5.0, math.nan, 16)), "noise_advantages")
    assert eight.fired and not eight.unjudged and eight.seeds == [0, 1, 2, 3]
    markdown = diagnose.format_markdown([four])
    assert "not judged: explained_variance non-finite on 112 of 128" in markdown
    assert "No failure mode detected (0 of 1 rules judged)" in markdown


def test_seeds_with_too_few_finite_updates_are_left_out_of_the_rest():
    values = np.full((4, UPDATES), -5.0)
    values[3, 12:] = math.nan
    values[2] = 0.9  # a judged seed without the failure
    partly = finding(handmade(explained_variance=values), "noise_advantages")
    assert partly.seeds == [0, 1] and partly.fired and partly.num_seeds == 4
    assert "not judged on some seeds: explained_variance non-finite on 28 of 32" in \
        partly.note and "seed 3: 4 of 32" in partly.note
    values[1:, 12:] = math.nan  # 1 seed judged of 4: 25%, the reporting line
    assert finding(handmade(explained_variance=values), "noise_advantages").fired
    eight = np.full((8, UPDATES), -5.0)
    eight[1:, 12:] = math.nan  # 1 of 8: could never reach the reporting line
    lone = finding(handmade(8, explained_variance=eight), "noise_advantages")
    assert not lone.fired and lone.unjudged.startswith(
        "explained_variance non-finite on 196 of 224")  # over the 7 seeds left out
