"""`jppo fix`: candidates from a diagnosis, pruned by the run's own config and
numbers; the plan file is an experiment file (`experiment.load` reads it back
with each candidate's config); a healthy run has nothing to fix; SB3 and CleanRL
logs get the plan in their trainer's names; and a reproduced failure at a tiny
budget is run next to its candidate and re-diagnosed (one compile, slow).
"""

import dataclasses
import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jppo
from jppo.analysis import diagnose
from jppo.analysis import fix as fixing
from jppo.analysis.fix import outcome, plan, trainers
from jppo.core.config import PPOConfig
from jppo.runs import experiment, results

UPDATES = 40
FIXTURES = Path(__file__).resolve().parents[2] / "experiments/external_logs/fixtures"


def handmade_run(run_dir, config: dict, **metrics):
    """A run directory (run.json with its experiment, one metrics part) of hand-made
    `(seeds, updates)` metrics on CartPole-v1: no training."""
    arrays = {name: np.broadcast_to(np.asarray(value, np.float64), (4, UPDATES))
              for name, value in metrics.items()}
    table = results.metrics_table(arrays, variant="default", env="CartPole-v1",
                                  seeds=range(4), first_update=0, steps_per_update=64)
    results.write_part(run_dir, "default", "CartPole-v1", 0, table)
    full = dataclasses.asdict(PPOConfig(**config))
    results.write_run_info(run_dir, {
        "name": "hand", "envs": ["CartPole-v1"], "seeds": 4, "first_seed": 0,
        "baseline": None, "variants": {"default": {"overrides": config, "config": full}},
        "experiment": {"name": "hand", "envs": ["CartPole-v1"], "variants": {"default": {}},
                       "config": config, "seeds": 4, "total_timesteps": 2560},
    })
    return run_dir


STALLED = {"approx_kl": 1e-8, "clip_fraction": 0.5, "episode_return": 20.0}
TINY_CLIP = {"clip_eps": 1e-4, "num_envs": 4, "num_steps": 16}


def test_a_stalled_run_gets_a_plan_that_sets_its_clip_back_first(tmp_path):
    run = handmade_run(tmp_path / "run", TINY_CLIP, **STALLED)
    table = fixing.fix(run, seeds=4, budget=640, dry_run=True)
    assert table["candidate"].iloc[0] == "clip_eps-0.2"  # the run's own change, undone
    assert "sets back a default the run changed" in table["reason"].iloc[0]
    assert (run / "diagnosis.md").is_file() and not (run / "fix" / "run").exists()
    assert "policy_stall" in set(table["answers"])


def test_the_plan_file_loads_as_an_experiment_with_each_candidates_config(tmp_path):
    run = handmade_run(tmp_path / "run", TINY_CLIP, **STALLED)
    table = fixing.fix(run, seeds=3, budget=640, dry_run=True)
    path = run / "fix" / "experiment.toml"
    exp = experiment.load(path)
    kept = table[table["kept"]]
    assert list(exp.variants) == ["original", *kept["candidate"]]
    assert exp.baseline_variant == "original" and exp.seeds == 3
    assert exp.total_timesteps == 640  # the budget caps the run's 2560
    assert exp.variant_config("original") == PPOConfig(**TINY_CLIP, total_timesteps=640)
    found = {c.name: c for c in fixing.make_plan(run, seeds=3, write=False).candidates}
    for name in kept["candidate"]:
        assert exp.variant_config(name) == PPOConfig(**{**TINY_CLIP, **found[name].overrides},
                                                     total_timesteps=640), name
    text = path.read_text()
    for name in table[~table["kept"]]["candidate"]:  # pruned: a comment with its reason
        assert f'# [variants."{name}"]' in text
    assert tomllib.loads(text)["variants"].keys() == exp.variants.keys()


def test_a_healthy_run_has_nothing_to_fix_and_gets_no_plan(tmp_path):
    run = handmade_run(tmp_path / "run", TINY_CLIP, approx_kl=1e-2, clip_fraction=0.1,
                       episode_return=np.linspace(20.0, 500.0, UPDATES))
    table = jppo.fix(run, seeds=4)  # the public name, for notebooks
    assert table.empty
    assert table.attrs["recommendation"].startswith(f"nothing to fix: the diagnosis of {run}")
    assert not (run / "fix").exists()


def finding(rule: str, *remedies: dict, root: bool = True, quote: str = "",
            caused_by: str = "") -> diagnose.Finding:
    return diagnose.Finding(
        "v", "E", rule, rule, 1.0, [0], 1, True, pd.DataFrame(),
        [diagnose.Remedy(r, f"why {rule}") for r in remedies], "", "", "", "", math.nan,
        quote=quote, root=root, caused_by=caused_by)


def test_remedies_already_in_the_config_or_moot_for_it_are_pruned_with_the_reason():
    config = PPOConfig(grad_clip="per_head", vf_coef=0.1, value_loss="mse")
    found = plan.candidates([finding("value_dominance", {"grad_clip": "per_head"},
                                     {"vf_coef": 0.1}, {"reward_scaling": True}),
                             finding("exploding_value_loss",
                                     {"value_clip_mode": "relative"})], config)
    reasons = {c.name: c.reason for c in found}
    assert reasons["vf_coef-0.1"] == "pruned: the run already has vf_coef=0.1"
    assert reasons["grad_clip-per_head"].startswith("pruned: the run already has")
    assert "does not clip the value" in reasons["value_clip_mode-relative"]
    assert [c.name for c in found if c.kept] == ["reward_scaling-true"]
    # a per-head clip at another norm is still moot where each head is clipped alone
    remedy = diagnose.Remedy({"grad_clip": "per_head", "max_grad_norm": 1.0}, "")
    moot = plan.prune_reason(remedy, finding("throttled_updates"),
                             PPOConfig(grad_clip="per_head"))
    assert moot.startswith("pruned: grad_clip='per_head' already clips each head alone")
    assert plan.prune_reason(remedy, finding("throttled_updates"), PPOConfig()) == ""


def test_value_pretraining_is_pruned_for_a_starved_critic_only():
    remedy = {"value_pretrain_updates": 10}
    starved = finding("critic_collapse", remedy, quote="explained_variance 0.01 < 0.05 "
                      "while |value_mean - target_mean| / |target_mean| 0.5 > 0.25")
    worse = finding("critic_collapse", remedy, quote="explained_variance -0.8 < -0.1")
    by_name = {c.name: c for c in plan.candidates([starved], PPOConfig())}
    pruned = by_name["value_pretrain_updates-10"]
    (kept,) = plan.candidates([worse], PPOConfig())
    # the starved critic gets reward scaling instead, tried before the rule's remedies
    assert list(by_name) == ["reward_scaling-true", "value_pretrain_updates-10"]
    assert by_name["reward_scaling-true"].kept
    assert not pruned.kept and "starved" in pruned.reason and "value_dominance" in pruned.reason
    assert kept.kept


def test_two_root_findings_are_also_tried_together_and_a_finding_shared_merges():
    found = plan.candidates([
        finding("policy_stall", {"policy_lr": 1e-3}, {"vf_coef": 0.1}),
        finding("value_dominance", {"vf_coef": 0.1}, {"reward_scaling": True}),
        finding("throttled_updates", {"max_grad_norm": 2.0}, root=False,
                caused_by="value_dominance")], PPOConfig())
    by_name = {c.name: c for c in found}
    assert by_name["vf_coef-0.1"].rules == ("policy_stall", "value_dominance")
    assert found[-1].name == "policy_lr-0.001+vf_coef-0.1"
    assert found[-1].overrides == {"policy_lr": 1e-3, "vf_coef": 0.1}
    assert found[-1].rules == ("policy_stall", "value_dominance")
    assert "consequence of value_dominance" in by_name["max_grad_norm-2.0"].reason


def test_a_combination_that_sets_one_field_twice_is_not_made():
    found = plan.candidates([finding("a", {"vf_coef": 0.1}), finding("b", {"vf_coef": 2.0})],
                            PPOConfig())
    assert [c.name for c in found] == ["vf_coef-0.1", "vf_coef-2.0"]


def test_bad_input_is_refused_in_one_line_before_anything_runs(tmp_path):
    run = handmade_run(tmp_path / "run", TINY_CLIP, **STALLED)
    cases = [({"seeds": 0}, "seeds=0 is invalid: allowed is a whole number >= 2"),
             ({"budget": 10}, "budget=10 is invalid: allowed is a whole number of env steps "
              "per seed >= one rollout (num_envs*num_steps = 64)"),
             ({"top": 0}, "top=0 is invalid"),
             ({"variant": "nope"}, "variant='nope' is invalid: allowed are the run's "
              "variants default")]
    for keywords, message in cases:
        with pytest.raises(ValueError, match="^" + re.escape(message)):
            fixing.fix(run, **{"seeds": 4, **keywords})
    assert not (run / "fix").exists()
    with pytest.raises(ValueError, match="is invalid: allowed is a jppo run directory"):
        fixing.fix(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    results.write_run_info(tmp_path / "empty", {"experiment": {"variants": {"d": {}}}})
    with pytest.raises(ValueError, match="no diagnosis is possible, it has no metrics"):
        fixing.fix(tmp_path / "empty")


def test_sb3_and_cleanrl_plans_speak_their_trainers_names():
    (sb3,) = trainers.plan_logs([f"{FIXTURES}/sb3/sb3_vf_coef_20"])
    (cleanrl,) = trainers.plan_logs([f"{FIXTURES}/cleanrl/cleanrl_tiny_lr"])
    assert sb3[1] == "sb3" and cleanrl[1] == "cleanrl"
    text = trainers.format_logs_plan([sb3, cleanrl])
    assert "try: vf_coef=0.1" in text and "VecNormalize(env, norm_reward=True)" in text
    assert "try: --no-clip-vloss" in text
    assert "no SB3 counterpart: jppo's value_target='popart'" in text
    assert text.endswith("nothing was run: change the trainer's parameters above and train "
                         "again")
    config = PPOConfig(value_clip_eps=0.3, target_kl=0.02)
    assert trainers.translate({"value_loss": "clipped", "kl_early_stop": True,
                               "advantage_norm": "minibatch"}, "sb3", config) == [
        "clip_range_vf=0.3", "target_kl=0.02", "normalize_advantage=True"]
    assert trainers.translate({"max_grad_norm": 2.0, "advantage_norm": "minibatch",
                               "lr_schedule": "constant"}, "cleanrl", config) == [
        "--max-grad-norm 2.0", "--norm-adv", "--no-anneal-lr"]


def test_recommendation_is_the_smallest_helping_change_else_the_numbers():
    def row(name, gone, p, lo, size):
        return {"candidate": name, "env": "E", "changes": name, "answers": "r",
                "remaining": "" if gone else "r", "gone": gone, "p_improve": p,
                "p_improve_lo": lo, "p_improve_hi": 1.0}
    table = pd.DataFrame([row("original", False, math.nan, math.nan, 0),
                          row("big", True, 0.95, 0.8, 2), row("small", True, 0.7, 0.6, 1),
                          row("unsure", True, 0.9, 0.4, 1), row("stays", False, 0.99, 0.9, 1)])
    kept = [plan.Candidate("big", {"a": 1, "b": 2}, ("r",), "", True, ""),
            plan.Candidate("small", {"a": 1}, ("r",), "", True, ""),
            plan.Candidate("unsure", {"c": 1}, ("r",), "", True, ""),
            plan.Candidate("stays", {"d": 1}, ("r",), "", True, "")]
    assert outcome.recommendation(table, kept).startswith("recommended: small (small)")
    none = outcome.recommendation(table[table["candidate"] != "small"].iloc[[0, 2, 3]], kept)
    assert none.startswith("no candidate helps: the best, stays (stays), has P(> original) "
                           "0.99 [0.90, 1.00] on E (still r)")


def test_latent_findings_are_planned_only_where_nothing_fired():
    latent = dataclasses.replace(finding("exploding_value_loss", {"value_target": "popart"}),
                                 fired=False, latent=True)
    fired = finding("policy_stall", {"clip_eps": 0.2})
    alone = plan.candidates([latent], PPOConfig())
    assert [c.name for c in alone] == ["value_target-popart"]
    assert alone[0].kept and alone[0].reason.startswith("kept: answers exploding_value_loss "
                                                        "(latent, root cause)")
    beside = plan.candidates([latent, fired], PPOConfig())
    assert [c.name for c in beside] == ["clip_eps-0.2"]  # a failure comes first
    assert plan.FixPlan(Path("r"), "v", [latent], alone, None, 1, 2).latent
    assert not plan.FixPlan(Path("r"), "v", [latent, fired], beside, None, 1, 2).latent


def test_a_latent_plan_recommends_the_smallest_change_that_removes_them_and_keeps_the_return():
    def row(name, gone, p, lo, hi):
        return {"candidate": name, "env": "E", "changes": name, "answers": "r",
                "remaining": "" if gone else "r", "gone": gone, "p_improve": p,
                "p_improve_lo": lo, "p_improve_hi": hi, "iqm": 2172.0}
    table = pd.DataFrame([row("original", False, math.nan, math.nan, math.nan),
                          row("worse", True, 0.2, 0.05, 0.4),
                          row("ties", True, 0.5, 0.3, 0.7),
                          row("stays", False, 0.55, 0.35, 0.75)])
    kept = [plan.Candidate(n, {n: 1}, ("r",), "", True, "") for n in ("worse", "ties",
                                                                      "stays")]
    text = outcome.recommendation(table, kept, latent=True)
    assert text.startswith("recommended for the latent findings: ties (ties): removes r "
                           "and keeps the return")
    # the same numbers are no improvement when the findings had fired
    assert outcome.recommendation(table, kept).startswith("no candidate helps")
    none = outcome.recommendation(table.iloc[[0, 1, 3]], kept, latent=True)
    assert none.startswith("no candidate helps: the best, stays (stays)")
    assert "upper end at or above 0.5" in none


def test_a_candidate_that_removes_the_root_cause_helps_though_its_consequence_stays():
    roots = {"policy_stall"}
    both = ("policy_stall", "critic_collapse")
    assert outcome.is_gone(both, ["critic_collapse"], roots)  # the root went
    assert not outcome.is_gone(both, ["policy_stall"], roots)
    assert not outcome.is_gone(("critic_collapse",), ["critic_collapse"], roots)
    assert outcome.is_gone(("critic_collapse",), [], roots)
    table = pd.DataFrame([
        {"candidate": "original", "env": "E", "changes": "-", "answers": ", ".join(both),
         "remaining": ", ".join(both), "gone": False, "p_improve": math.nan,
         "p_improve_lo": math.nan, "p_improve_hi": math.nan, "iqm": 45.0},
        {"candidate": "rs", "env": "E", "changes": "reward_scaling=True",
         "answers": ", ".join(both), "remaining": "critic_collapse", "gone": True,
         "p_improve": 0.95, "p_improve_lo": 0.83, "p_improve_hi": 1.0, "iqm": 52.9}])
    kept = [plan.Candidate("rs", {"reward_scaling": True}, both, "", True, "")]
    assert outcome.recommendation(table, kept) == (
        "recommended: reward_scaling=True (rs): removes policy_stall (critic_collapse "
        "remains: a consequence in the original) and improves the return: P(> original) "
        "0.95 [0.83, 1.00] on E")
    assert outcome._finding_state(", ".join(both), "critic_collapse", False, True) == (
        "gone: policy_stall; remain: critic_collapse (a consequence in the original)")


@pytest.fixture(scope="module")
def stalled_run(tmp_path_factory):
    """A reproduced policy stall: clip_eps 1e-4 on CartPole at a tiny budget."""
    out = tmp_path_factory.mktemp("stalled") / "run"
    config = jppo.make_config(clip_eps=1e-4, num_envs=4, num_steps=16, num_minibatches=2,
                              update_epochs=1, total_timesteps=1280)
    jppo.run(config, "CartPole-v1", 2, out_dir=out, progress="off")
    return out


def test_a_reproduced_failure_is_fixed_next_to_the_original_and_re_diagnosed(stalled_run):
    table = fixing.fix(stalled_run, seeds=2, budget=1280, top=1)
    assert list(table["candidate"]) == ["original", "clip_eps-0.2"]
    original, candidate = (table.iloc[i] for i in range(2))
    assert "policy_stall" in original["remaining"]  # the failure reproduces
    assert candidate["changes"] == "clip_eps=0.2" and "policy_stall" in candidate["answers"]
    rediagnosed = diagnose.diagnose_frame(results.read_metrics(stalled_run / "fix" / "run"),
                                          results.read_run_info(stalled_run / "fix" / "run"))
    still = {f.rule for f in rediagnosed if f.fired and f.variant == "clip_eps-0.2"}
    assert candidate["gone"] == ("policy_stall" not in still)
    assert 0.0 <= candidate["p_improve_lo"] <= candidate["p_improve"] <= candidate[
        "p_improve_hi"] <= 1.0
    assert candidate["env_steps"] == 1280 * 2
    assert candidate["program"] == "shared with original"  # clip_eps is traced
    summary = pd.read_csv(stalled_run / "fix" / "run" / "summary.csv")
    assert np.isclose(summary["iqm"].iloc[1], candidate["iqm"])
    helps = candidate["gone"] and candidate["p_improve_lo"] > outcome.CONFIDENT
    assert table.attrs["recommendation"].startswith(
        "recommended: clip_eps=0.2" if helps else "no candidate helps")
    assert (stalled_run / "fix" / "run" / "diagnosis.md").is_file()
    report = (stalled_run / "fix" / "report.md").read_text()
    assert "| clip_eps-0.2 | CartPole-v1 | clip_eps=0.2 |" in report
    assert report.rstrip().endswith(table.attrs["recommendation"])
    # resuming the finished candidates' run with the plan as written recomputes nothing
    again = fixing.fix(stalled_run, seeds=2, budget=1280, top=1, resume=True)
    pd.testing.assert_frame_equal(again, table)


def test_brax_plans_speak_brax_ppo_train_arguments():
    """Brax's names are ppo.train's arguments (Brax 0.14); changes Brax has no knob for
    (running-std reward scaling, KL early stop) say so instead of a wrong argument."""
    config = PPOConfig(clip_eps=0.2, value_clip_eps=None, target_kl=0.02)
    assert trainers.translate({"vf_coef": 0.1, "ent_coef": 0.05, "gamma": 0.99,
                               "update_epochs": 4, "clip_eps": 0.2, "value_loss": "clipped",
                               "advantage_norm": "none", "lr_schedule": "constant"},
                              "brax", config) == [
        "vf_loss_coefficient=0.1", "entropy_cost=0.05", "discounting=0.99",
        "num_updates_per_batch=4", "clipping_epsilon=0.2", "clipping_epsilon_value=0.2",
        "normalize_advantage=False", "learning_rate_schedule='NONE'"]
    assert trainers.translate({"reward_scaling": True, "kl_early_stop": True}, "brax",
                              config) == [
        "no Brax counterpart: jppo's reward_scaling=True",
        "no Brax counterpart: jppo's kl_early_stop=True"]
    candidate = plan.Candidate("c", {"lr": 1e-3}, ("policy_stall",), "why", True, "kept")
    text = trainers.format_logs_plan([("cell", "brax", [candidate], config)])
    assert text.startswith("cell (Brax): 1 candidate change(s)\n  try: learning_rate=0.001")


def with_evidence(found: diagnose.Finding, seeds: int = 1, **columns) -> diagnose.Finding:
    return dataclasses.replace(found, evidence=pd.DataFrame(columns),
                               seeds=list(range(seeds)), num_seeds=max(seeds, 1))


def test_the_relative_clip_is_pruned_once_the_return_std_exceeds_its_scale():
    relative = {"value_clip_mode": "relative"}
    config = PPOConfig(value_loss="clipped", value_clip_mode="absolute")
    at_scale = with_evidence(finding("exploding_value_loss", relative),
                             target_std=[480.0, 500.0, np.nan, 520.0])
    unit = with_evidence(finding("exploding_value_loss", relative), target_std=[0.8, 1.2])
    unlogged = finding("exploding_value_loss", relative)  # no target_std: kept
    (pruned,), (kept,), (blind,) = (plan.candidates([f], config)
                                    for f in (at_scale, unit, unlogged))
    assert not pruned.kept and "return std 500 exceeds 10" in pruned.reason
    assert "band (100 return units)" in pruned.reason  # 0.2 x the median std
    assert "value_clip_scale" in pruned.reason
    assert kept.kept and blind.kept
    just_past = with_evidence(finding("exploding_value_loss", relative), target_std=[10.5])
    assert not plan.candidates([just_past], config)[0].kept


def test_margin_is_decades_past_the_threshold_and_zero_short_of_it():
    assert plan.margin(1e-8, "<", 1e-6) == pytest.approx(2.0)
    assert plan.margin(7.4e3, ">", 10.0) == pytest.approx(math.log10(740))
    assert plan.margin(-9.05, "<", 0.05) == pytest.approx(math.log10(1 + 9.1))
    assert plan.margin(0.2, "<", 0.05) == 0.0  # on the wrong side: no evidence
    assert plan.margin(1e9, ">", 1.0) == plan.MAX_MARGIN  # capped


def test_the_ordering_weighs_how_far_past_its_line_and_on_how_many_seeds():
    weak = with_evidence(finding("throttled_updates", {"max_grad_norm": 2.0},
                                 quote="grad_clip_ratio 11 > 10"), seeds=3)
    strong = with_evidence(finding("value_dominance", {"vf_coef": 0.1},
                                   quote="torso value/policy 1.5e5 > 100"), seeds=16)
    wide = with_evidence(finding("throttled_updates", {"max_grad_norm": 2.0},
                                 quote="grad_clip_ratio 7e3 > 10"), seeds=3)
    assert plan.evidence_strength(weak) == pytest.approx(3 * (1 + math.log10(1.1)))
    for given in ([weak, strong], [strong, weak]):
        assert [c.name for c in plan.candidates(given, PPOConfig())][:2] == [
            "vf_coef-0.1", "max_grad_norm-2.0"]
    # the same seeds but further past the line outrank the weak finding
    many = with_evidence(weak, seeds=4)
    assert plan.evidence_strength(many) < plan.evidence_strength(
        with_evidence(wide, seeds=4))
    # a consequence counts half: 16 seeds as a consequence vs 16 as a root
    consequence = dataclasses.replace(strong, root=False, caused_by="x")
    assert plan.candidates([consequence], PPOConfig())[0].weight == pytest.approx(
        plan.candidates([strong], PPOConfig())[0].weight / 2)


def test_a_tiny_lr_stall_gets_the_default_lr_first_and_a_normal_one_does_not():
    stall = finding("policy_stall", {"grad_clip": "per_head"})
    tiny = plan.candidates([stall], PPOConfig(lr=5e-5))
    assert tiny[0].name == "lr-0.00025" and tiny[0].kept
    assert "sets back a default" in tiny[0].reason and "kl_early_stop" in tiny[0].why
    assert [c.name for c in plan.candidates([stall], PPOConfig(lr=3e-4))] == [
        "grad_clip-per_head"]
    # an own policy lr that is tiny is raised on its own, the shared lr left alone
    own = plan.candidates([stall], PPOConfig(policy_lr=1e-7))
    assert own[0].overrides == {"policy_lr": 2.5e-4}
    # a critic at a tiny value lr likewise; a policy finding ignores the value lr
    critic = finding("critic_collapse", {"critic_lambda": 1.0})
    assert plan.candidates([critic], PPOConfig(value_lr=2.5e-5))[0].overrides == {
        "value_lr": 2.5e-4}
    assert [c.name for c in plan.candidates([stall], PPOConfig(value_lr=2.5e-5))] == [
        "grad_clip-per_head"]


def test_among_equally_sure_changes_of_one_size_the_larger_iqm_is_recommended():
    def row(name, iqm):
        return {"candidate": name, "env": "E", "changes": name, "answers": "r",
                "remaining": "", "gone": True, "iqm": iqm, "p_improve": 1.0,
                "p_improve_lo": 1.0, "p_improve_hi": 1.0}
    table = pd.DataFrame([row("original", 150.0), row("a_first", 280.0),
                          row("b_second", 500.0)])
    kept = [plan.Candidate("a_first", {"a": 1}, ("r",), "", True, ""),
            plan.Candidate("b_second", {"b": 1}, ("r",), "", True, "")]
    assert outcome.recommendation(table, kept).startswith("recommended: b_second")


def test_nothing_to_fix_names_the_latent_findings_a_solved_task_hides(tmp_path):
    latent = dataclasses.replace(finding("exploding_value_loss"), fired=False, latent=True)
    quiet = dataclasses.replace(finding("policy_stall"), fired=False)
    made = plan.FixPlan(tmp_path, "v", [latent, quiet], [], None, 100, 2)
    text = outcome.nothing_text(made)
    assert text.startswith("nothing to fix") and "latent" in text
    assert "exploding_value_loss" in text and "policy_stall" not in text
    clean = plan.FixPlan(tmp_path, "v", [quiet], [], None, 100, 2)
    assert "latent" not in outcome.nothing_text(clean)
