"""The signals that name the cause where a symptom used to be named: a one-step discount
and returns below the critic's resolution (noise advantages), a KL limit at the stall
line (cut epochs), the clipped policy gradient per parameter (value dominance), a
critic that learns but has not grown to the return scale (exploding value loss, not
critic collapse), and targets flat against the scale they had reached. Hand-made
metric tables and hand-counted networks, no training."""

import math

import numpy as np
import pandas as pd

from jppo.analysis import diagnose
from jppo.analysis.diagnose import causes, engine, network_size, rules
from jppo.core.config import PPOConfig
from jppo.runs import results

UPDATES = 60


def table(num_seeds: int = 3, **metrics) -> pd.DataFrame:
    arrays = {name: np.broadcast_to(np.asarray(value, np.float64), (num_seeds, UPDATES))
              for name, value in metrics.items()}
    return results.metrics_table(arrays, variant="v", env="E", seeds=range(num_seeds),
                                 first_update=0, steps_per_update=1024).to_pandas()


def info(**config) -> dict:
    return {"variants": {"v": {"config": config}}}


def finding(frame: pd.DataFrame, rule: str, run: dict | None = None) -> diagnose.Finding:
    (match,) = [f for f in diagnose.diagnose_frame(frame, run) if f.rule == rule]
    return match


def catch_like(**extra) -> pd.DataFrame:
    """Catch's numbers at a myopic discount: 9-step episodes, advantages and targets
    of ordinary size, a critic that explains half the targets, a return that rises a
    little (-0.7 -> -0.1)."""
    metrics = dict(episode_return=np.linspace(-0.7, -0.1, UPDATES), episode_length=9.0,
                   advantage_std=0.25, target_std=0.33, target_mean=0.0,
                   target_abs_max=1.0, explained_variance=0.5, lr_value=2.5e-4)
    return table(**{**metrics, **extra})


def test_a_one_step_discount_on_long_episodes_is_noise_advantages():
    found = finding(catch_like(), "noise_advantages", info(gamma=1e-4))
    assert found.fired and "discount horizon 1/(1-gamma) 1 < 2" in found.quote
    # the standard discount, and a bandit (one-step episodes), are not myopic
    assert not finding(catch_like(), "noise_advantages", info(gamma=0.99)).fired
    bandit = catch_like(episode_length=1.0)
    assert not finding(bandit, "noise_advantages", info(gamma=1e-4)).fired


def test_returns_below_the_critics_lr_are_below_its_resolution():
    tiny = catch_like(episode_return=np.full(UPDATES, -6e-6), target_abs_max=0.01,
                      target_std=0.0015, advantage_std=0.008)
    found = finding(tiny, "noise_advantages", info())
    # max |return| 6e-6 over the value lr 2.5e-4 = 0.024 < 1
    assert found.fired and "max |episode return| / value lr 0.024 < 1" in found.quote
    # rewards scaled by their running std reach the critic at unit scale
    assert not finding(tiny, "noise_advantages", info(reward_scaling=True)).fired


def test_a_kl_limit_at_the_stall_line_cuts_epochs_even_on_a_rising_return():
    rising = table(episode_return=np.linspace(-0.7, 0.0, UPDATES), epochs_completed=1.0)
    found = finding(rising, "kl_cut_epochs", info(kl_early_stop=True, target_kl=3e-6))
    # 1.5 x 3e-6 = 4.5e-6 < 10 x the stall KL 1e-6
    assert found.fired and "KL stop 1.5 target_kl 4.5e-6 < 1e-5" in found.quote
    # a usual target_kl with the same cut epochs costs nothing while the return rises
    assert not finding(rising, "kl_cut_epochs", info(kl_early_stop=True, target_kl=0.01)).fired


def test_the_default_cartpole_policy_has_the_hand_counted_parameters():
    # 4 -> 64 -> 64 -> 2 logits: (4*64 + 64) + (64*64 + 64) + (64*2 + 2)
    assert network_size.policy_parameters(PPOConfig(), "CartPole-v1") == 320 + 4160 + 130
    assert network_size.policy_parameters(PPOConfig(), "NoSuchEnv-v0") is None


def test_the_clipped_policy_gradient_is_judged_per_parameter_where_the_size_is_known():
    frame = table(grad_norm_policy=0.35, grad_norm_value=95.0, grad_clip_ratio=270.0)
    (cell,) = engine.make_cells(frame)
    eps = PPOConfig().adam_eps
    whole = rules.clipped_policy_gradient(cell)
    np.testing.assert_allclose(whole, 0.35 / 270.0 / eps)  # 130 eps: above the 100 line
    sized = engine.dataclasses.replace(cell, policy_parameters=30_000)
    per = rules.clipped_policy_gradient(sized)
    np.testing.assert_allclose(per, 0.35 / 270.0 / eps / math.sqrt(30_000))  # 0.75 eps
    assert rules._crushed(sized).holds(per.shape).all()
    assert not rules._crushed(cell).holds(whole.shape).any()
    # another trainer's logs get no size: its network is not jppo's
    sourced = {"variants": {"v": {"source": "sb3"}}}
    assert engine.make_cells(frame, sourced)[0].policy_parameters is None


def test_targets_are_flat_against_the_scale_they_had_reached():
    tail = UPDATES - 3
    scale = np.concatenate([[1.27, 1.9, 0.03], np.full(tail, 3e-8)])
    std = np.concatenate([[0.37, 0.5, 0.004], np.full(tail, 3e-9)])
    (cell,) = engine.make_cells(table(target_abs_max=scale, target_mean=0.0,
                                      target_std=std))
    np.testing.assert_allclose(engine.reached_scale(cell)[0],
                               np.concatenate([[1.27], np.full(UPDATES - 1, 1.9)]))
    assert engine.flat_targets(cell)[0].tolist() == [False, False] + [True] * (UPDATES - 2)


def large_returns(value_std: np.ndarray | float, value_mean: np.ndarray) -> pd.DataFrame:
    """Rewards x300: targets of mean 250, std 150, max 600; a loss far above the mean
    predictor's that does not come down; a critic that explains nothing."""
    return table(value_std=value_std, value_mean=value_mean, target_mean=250.0,
                 target_std=150.0, target_abs_max=600.0, value_loss=3.5e4,
                 explained_variance=1e-5, episode_return=np.linspace(100, 500, UPDATES))


def roots(frame: pd.DataFrame) -> list[str]:
    return [f.rule for f in causes.root_findings(diagnose.diagnose_frame(frame))]


def test_a_critic_that_learns_toward_a_scale_it_cannot_reach_is_the_scales_consequence():
    climbing = large_returns(0.001, np.linspace(0.0, 35.0, UPDATES))
    assert roots(climbing) == ["exploding_value_loss"]
    consequence = next(f for f in diagnose.diagnose_frame(climbing)
                       if f.rule == "critic_collapse")
    assert consequence.caused_by == "exploding_value_loss"
    assert "outputs have not grown to the return scale" in consequence.cause_text
    # a frozen critic keeps its spread and its mean: it fails of itself at this scale
    frozen = large_returns(140.0, np.full(UPDATES, -30.0))
    assert roots(frozen) == ["critic_collapse"]


def test_a_critic_off_by_a_hair_of_the_reached_scale_does_not_fail_of_itself():
    """A policy turned deterministic scores 0 every episode: its targets' variance is
    ~0, so an error of 1% of the scale they had reached reads as explained variance
    -30; only an error large at that scale is the critic's own failure."""
    scale = np.concatenate([[1.9], np.full(UPDATES - 1, 1e-3)])
    frame = table(explained_variance=-30.0, value_loss=0.5 * (0.01 * 1.9) ** 2,
                  target_abs_max=scale, target_mean=0.0, target_std=1e-4)
    (cell,) = engine.make_cells(frame)
    every = np.ones(cell.window.shape, bool)
    assert not causes._fails_of_itself(cell, every)
    wrong = engine.make_cells(table(explained_variance=-30.0, value_loss=0.5 * 1.9 ** 2,
                                    target_abs_max=scale, target_mean=0.0,
                                    target_std=1e-4))[0]
    assert causes._fails_of_itself(wrong, every)
