"""`jppo bench --eval-cost`: both sides are the same training, one with the
config's evaluation and one without; the cost is computed from the timed rates
of each round; a config that never evaluates is refused before compiling."""

import numpy as np
import pytest

import jppo
from jppo.bench import eval_cost as bench_eval

TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 4, update_epochs=1,
            num_minibatches=1, eval_episodes=2, policy_hidden=(8,), value_hidden=(8,),
            diagnostics=False, nonfinite_check=False)


def test_tiny_eval_cost_times_both_sides_and_reports_the_median_cost():
    row = bench_eval.eval_cost("CartPole-v1", jppo.PPOConfig(**TINY, eval_every=2), 2, rounds=2)
    assert (row["eval_every"], row["evaluations"], row["env_steps"]) == (2, 2, 2 * 4 * 64)
    assert len(row["rates_on"]) == len(row["rates_off"]) == len(row["cost_fractions"]) == 2
    expected = [1 - on / off for on, off in zip(row["rates_on"], row["rates_off"], strict=True)]
    np.testing.assert_allclose(row["cost_fractions"], expected, atol=1e-3)
    assert row["cost_fraction_median"] == pytest.approx(np.median(expected), abs=1e-3)
    assert abs(row["env_steps_per_s_on"] - np.median(row["rates_on"])) <= 1
    cpu = [1 - off / on for on, off in zip(row["cpu_s_on"], row["cpu_s_off"], strict=True)]
    assert row["cpu_cost_fraction_median"] == pytest.approx(np.median(cpu), abs=0.02)


def test_a_config_that_never_evaluates_is_refused():
    with pytest.raises(ValueError, match=r"^eval_every=0 is invalid for --eval-cost: this run "
                                         r"of 4 updates on CartPole-v1 evaluates never"):
        bench_eval.eval_cost("CartPole-v1", jppo.PPOConfig(**TINY, eval_every=0), 2)
    with pytest.raises(ValueError, match=r"^seeds=0 x rounds=1 is invalid"):
        bench_eval.eval_cost("CartPole-v1", jppo.PPOConfig(**TINY), 0, rounds=1)


def test_cli_bench_forwards_the_eval_cost_flag(monkeypatch):
    import os

    from jppo import cli
    from jppo.bench import children
    from jppo.bench import throughput as bench

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    seen = []
    monkeypatch.setattr(bench, "benchmark", lambda options: seen.append(options) or 0)
    cli.main(["bench", "--seeds", "64", "--eval-cost", "--rounds", "5"])
    (options,) = seen
    assert options.eval_cost and options.rounds == 5 and options.seeds == (64,)
    assert not options.spawns_children()  # measured in this process
    assert not children.spawns_children(["--seeds", "64", "--eval-cost"])
