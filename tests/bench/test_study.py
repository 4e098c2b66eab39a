"""`jppo bench --study N`: the grid is N traced points, the reference honours the
value-output gain it is swept over, and a tiny study reports both sides' wall
times and their ratio."""

import jax
import numpy as np
import pytest

import jppo
from jppo.bench import study as bench_study
from jppo.bench.reference import ReferenceActorCritic
from jppo.bench.versus import reference_settings
from jppo.runs.sweeps import sweep

TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 2, update_epochs=1,
            num_minibatches=2)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_grid_has_n_traced_points_over_vf_coef_and_the_value_gain(n):
    grid = bench_study.study_grid(n)
    points = sweep(jppo.PPOConfig(), **grid)  # a static field would raise here
    assert len(points) == n and len({tuple(sorted(s.items())) for s in points.settings}) == n
    assert grid["value_output_gain"] == ([1.0, 0.1] if n % 2 == 0 else [1.0])


def test_reference_critic_output_layer_scales_with_the_value_output_gain():
    x = np.ones((1, 4), np.float32)
    kernels = []
    for gain in (1.0, 0.1):
        params = ReferenceActorCritic(2, 8, gain).init(jax.random.PRNGKey(0), x)["params"]
        kernels.append(np.asarray(params["Dense_5"]["kernel"]))
    np.testing.assert_allclose(kernels[1], 0.1 * kernels[0], rtol=1e-6)
    settings = reference_settings(jppo.PPOConfig(value_output_gain=0.3, vf_coef=2.0))
    assert (settings.value_output_gain, settings.vf_coef) == (0.3, 2.0)


def test_tiny_study_times_both_sides_and_reports_the_median_ratio():
    row = bench_study.study("CartPole-v1", jppo.PPOConfig(**TINY), 2, 2, rounds=1)
    assert row["env_steps"] == 2 * 2 * 2 * 64
    assert len(row["jppo_wall_s"]) == len(row["reference_wall_s"]) == len(row["ratios"]) == 1
    expected = [r / j for j, r in zip(row["jppo_wall_s"], row["reference_wall_s"], strict=True)]
    np.testing.assert_allclose(sorted(row["ratios"]), sorted(expected), rtol=0.02)
    assert row["ratio_median"] == pytest.approx(np.median(row["ratios"]), abs=1e-3)
    with pytest.raises(ValueError, match=r"^study=0 x seeds=2 x rounds=1 is invalid"):
        bench_study.study("CartPole-v1", jppo.PPOConfig(**TINY), 0, 2, rounds=1)


def test_cli_bench_forwards_the_study_flags(monkeypatch):
    import os

    from jppo import cli
    from jppo.bench import children
    from jppo.bench import throughput as bench

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    seen = []
    monkeypatch.setattr(bench, "benchmark", lambda options: seen.append(options) or 0)
    cli.main(["bench", "--seeds", "16", "--study", "8", "--rounds", "5"])
    (options,) = seen
    assert options.study == 8 and options.rounds == 5
    assert not options.spawns_children()  # measured in this process
    assert not children.spawns_children(["--seeds", "16", "--study", "8"])
