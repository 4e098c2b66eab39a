"""Entropy collapse as an absorbing state: a collapse reached only in the last third of
the judged updates, read through a swinging last-minibatch entropy (CleanRL logs the
last minibatch's), fires; healthy narrowing and a transient dip do not. Hand-made
metric tables, no training."""

import math

import numpy as np
import pandas as pd

from jppo.analysis import diagnose
from jppo.analysis.diagnose import engine, report
from jppo.analysis.logs.discover import representable
from jppo.runs import results

UPDATES = 24  # CleanRL's and SB3's fixtures: 24 updates of 4 envs x 128 steps
WARMUP = math.ceil(engine.WARMUP_FRACTION * UPDATES)  # 5: updates 5..23 are judged


def handmade(num_seeds: int = 3, **metrics) -> pd.DataFrame:
    arrays = {name: np.broadcast_to(np.asarray(value, np.float64), (num_seeds, UPDATES))
              for name, value in metrics.items()}
    return results.metrics_table(arrays, variant="v", env="E", seeds=range(num_seeds),
                                 first_update=0, steps_per_update=512).to_pandas()


def entropy_finding(frame: pd.DataFrame) -> diagnose.Finding:
    (match,) = [f for f in diagnose.diagnose_frame(frame) if f.rule == "entropy_collapse"]
    return match


def swinging_collapse() -> np.ndarray:
    """CartPole's entropy (ln 2 at first) falling to a last-minibatch swing between
    0.01 and 0.35 x its first value, below 0.1 x on 5 of the last 7 updates and on
    only 5 of the 19 judged ones (the shape of CleanRL at lr 0.03 x 10 epochs)."""
    share = np.concatenate([np.linspace(1.0, 0.3, 17),
                            [0.08, 0.014, 0.058, 0.047, 0.22, 0.054, 0.18]])
    return math.log(2.0) * share


def test_a_swinging_entropy_that_collapses_late_fires_on_its_last_third():
    entropy = swinging_collapse()
    below = entropy / entropy[0] < diagnose.ENTROPY_FRACTION
    assert 2 * below[WARMUP:].sum() < UPDATES - WARMUP  # not on most of the judged updates
    found = entropy_finding(handmade(entropy=entropy, episode_return=20.0))
    assert found.fired and found.fraction == 1.0
    # the quote reads the late updates: their median share, not the whole window's
    late = np.median(entropy[-7:] / entropy[0])
    assert f"entropy / initial {engine.short_number(late)} < 0.1" in found.quote
    assert found.late_seeds == 3
    assert "on 3 of them over the last 1/3 of those only" in report.quote_basis(found)
    early = entropy_finding(handmade(entropy=np.concatenate([[0.69], np.full(23, 0.01)]),
                                     episode_return=20.0))
    assert early.fired and early.late_seeds == 0  # collapsed early: the whole window shows it
    assert report.quote_basis(early) == report.QUOTE_BASIS


def test_a_transient_dip_and_healthy_narrowing_do_not_fire():
    entropy = swinging_collapse()
    recovered = np.concatenate([entropy[:10], entropy[17:], np.full(7, 0.6)])  # dips, back
    assert not entropy_finding(handmade(entropy=recovered, episode_return=20.0)).fired
    # healthy jppo Pendulum narrows its std 1.4-2.1x while it learns; SB3's and CleanRL's
    # healthy twins at most 1.06x in 24 updates: a 1.5x narrowing, held from the start
    # or reached at the end, on a flat return, is no collapse
    for log_std in (np.full(UPDATES, -math.log(1.5)), np.linspace(0.0, -math.log(1.5),
                                                                  UPDATES)):
        log_std = np.concatenate([[0.0], log_std[1:]])
        frame = handmade(entropy=1.4, log_std_mean=log_std, episode_return=-1200.0)
        assert not entropy_finding(frame).fired


def test_a_gaussian_std_ten_times_narrower_in_the_last_third_fires():
    """CleanRL Pendulum at ent_coef -0.5: the std at 0.1 x its first value from update
    17 on (of 24), on fewer than half of the judged updates."""
    log_std = -np.log(np.geomspace(1.0, 15.0, UPDATES))
    assert 2 * np.sum(-log_std[WARMUP:] >= diagnose.LOG_STD_DROP) < UPDATES - WARMUP
    found = entropy_finding(handmade(entropy=1.4, log_std_mean=log_std,
                                     episode_return=-1200.0))
    assert found.fired and "log-std drop" in found.quote
    # one late update below the line is not most of the last third
    single = np.concatenate([np.zeros(UPDATES - 1), [-3.0]])
    assert not entropy_finding(handmade(entropy=1.4, log_std_mean=single,
                                        episode_return=-1200.0)).fired


def test_a_late_collapse_on_solved_updates_is_skipped():
    solved = np.concatenate([np.linspace(20.0, 500.0, 16), np.full(8, 500.0)])
    frame = handmade(entropy=swinging_collapse(), episode_return=solved)
    assert not entropy_finding(frame).fired


def test_late_updates_are_the_last_third_of_each_seeds_judged_updates():
    evaluated = np.zeros((3, 30), bool)
    evaluated[0, 5:24] = True  # 19 judged: the last ceil(19 / 3) = 7
    evaluated[1, 10:16] = True  # 6 judged: the last MIN_EVALUATED (5)
    evaluated[2, 0:3] = True  # 3 judged: all of them
    late = engine.late_updates(evaluated)
    assert np.flatnonzero(late[0]).tolist() == list(range(17, 24))
    assert np.flatnonzero(late[1]).tolist() == list(range(11, 16))
    assert np.flatnonzero(late[2]).tolist() == [0, 1, 2]
    condition = np.ones((3, 30), bool)
    affected, shown = engine.persisting(condition & late, evaluated, absorbing=True)
    assert affected.tolist() == [True, True, False]  # seed 2: fewer than MIN_EVALUATED
    assert (shown[0] == late[0]).all()  # 7 of 19: persistent on the late updates only
    assert (shown[1] == evaluated[1]).all()  # 5 of 6: persistent on the whole window
    # not absorbing: only the seed on which it holds on most of the whole window
    assert engine.persisting(condition & late, evaluated)[0].tolist() == [False, True, False]


def test_a_trainer_setting_outside_jppos_range_is_left_at_jppos_default():
    """CleanRL and SB3 accept a negative entropy coefficient; jppo's config does not."""
    kept, notes = representable({"ent_coef": -0.5, "lr": 5e-3, "update_epochs": 10})
    assert kept == {"lr": 5e-3, "update_epochs": 10}
    assert notes == ["ent_coef = -0.5 (read from the logs) is outside jppo's range: judged "
                     "with jppo's default 0.01"]
