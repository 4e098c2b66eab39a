"""The benchmark tools: the single-file reference PPO, `--vs-reference` and the
per-phase profile of an update."""

import jax
import numpy as np
import pytest

import jppo
from jppo import envs
from jppo.bench import profile
from jppo.bench import versus as bench_reference
from jppo.bench.reference import ReferenceSettings, make_reference_train
from jppo.runs.runner import seed_keys

TINY = dict(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2,
            num_minibatches=2)


def test_reference_learns_cartpole_on_a_small_budget():
    """Random play scores ~22; the reference is a yardstick only if it is real PPO:
    a sign error in its advantage or a broken GAE keeps it near random."""
    train = make_reference_train(ReferenceSettings(total_timesteps=100_000))
    returns = np.asarray(jax.jit(jax.vmap(train))(seed_keys(4)))
    assert returns.shape == (4, train.num_updates)
    tail = returns[:, -train.num_updates // 10:]
    assert np.nanmean(tail) > 150, np.nanmean(tail, axis=1)


def test_reference_settings_follow_the_config():
    config = jppo.PPOConfig(num_envs=8, num_steps=32, update_epochs=3, num_minibatches=8,
                            lr=1e-3, gamma=0.9, ent_coef=0.0, policy_hidden=(32, 32))
    settings = bench_reference.reference_settings(config)
    assert (settings.num_envs, settings.num_steps, settings.update_epochs,
            settings.num_minibatches) == (8, 32, 3, 8)
    assert (settings.lr, settings.gamma, settings.ent_coef, settings.hidden) == \
        (1e-3, 0.9, 0.0, 32)
    assert settings.max_grad_norm == config.max_grad_norm


@pytest.mark.parametrize(("seeds", "expected"), [(1, 50), (64, 50), (1024, 4), (16384, 1)])
def test_chunk_covers_about_two_million_env_steps(seeds, expected):
    # 2**21 env steps / (seeds x 512 per update), between 1 and 50 updates
    assert bench_reference.chunk_updates(seeds, 512) == expected


def test_versus_reports_medians_and_the_median_pair_ratio():
    row = bench_reference.versus("CartPole-v1", 2, jppo.PPOConfig(**TINY), pairs=3,
                                 seconds=0.01)
    assert len(row["ratios"]) == 3
    assert row["ratio_median"] == pytest.approx(sorted(row["ratios"])[1], abs=1e-3)
    assert row["jppo_env_steps_per_s"] > 0 and row["reference_env_steps_per_s"] > 0
    assert row["jppo_compile_s"] > 0 and row["jppo_program_mb"] > 0


def test_phases_compose_into_the_update():
    """collect then learn, with the update's own keys, is the update: the profile
    times the parts the update really runs."""
    config = jppo.PPOConfig(**TINY)
    trainer = jppo.make_train(config, *envs.make("CartPole-v1"))
    hp = config.hparams()
    state = trainer.init(jax.random.PRNGKey(3), hp)
    new_state, _ = jax.jit(trainer.update)(state, hp)

    def by_phases(state):
        _, rollout_key, epoch_key = jax.random.split(state.key, 3)
        collected = trainer.phases["collect"](state, hp, rollout_key, hp.critic_lambda)
        return trainer.phases["learn"](state, collected, hp, epoch_key)[0]

    params = jax.jit(by_phases)(state)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 params, new_state.params)


def test_split_phases_by_hand():
    seconds = {"rollout": 0.002, "collect": 0.003, "learn": 0.008, "update": 0.012}
    flops = {"rollout": 1e6, "critic": 4e6, "learn": 16e6, "total": 21e6}
    rows = profile.split_phases(seconds, flops,
                                jppo.PPOConfig(update_epochs=4, num_minibatches=4))
    assert rows["rollout"]["ms"] == pytest.approx(2.0)
    assert rows["critic + GAE"]["ms"] == pytest.approx(1.0)
    assert rows["critic + GAE"]["gflop"] == pytest.approx(4e-3)
    assert rows["metrics + rest"]["ms"] == pytest.approx(1.0)
    assert rows["one minibatch step"]["ms"] == pytest.approx(0.5)
    assert rows["one minibatch step"]["gflop"] == pytest.approx(1e-3)


def test_bounds_are_network_flops_at_the_matmul_rate():
    report = {"seeds": 1, "phases": {"learn": {"ms": 4.0, "gflop": 0.1},
                                     "rest": {"ms": 1.0, "gflop": 0.0},
                                     "update": {"ms": 5.0, "gflop": 0.1}}}
    rows = profile.with_bounds(report, gflop_per_s=100.0)["phases"]
    assert rows["learn"]["bound_ms"] == pytest.approx(1.0)  # 0.1 GFLOP at 100 GFLOP/s
    assert rows["learn"]["x_bound"] == pytest.approx(4.0)
    assert rows["rest"]["x_bound"] is None
    assert "| 1 | learn | 4.000 | 80% | 0.1000 | 1.000 | 4.0 |" in profile.markdown([report])


def test_top_ops_names_operations_of_the_compiled_phase():
    config = jppo.PPOConfig(**TINY)
    trainer = jppo.make_train(config, *envs.make("CartPole-v1"))
    ops = profile.top_ops(trainer, 2, count=5)
    assert 0 < len(ops) <= 5
    times = [ms for _, ms in ops]
    assert times == sorted(times, reverse=True) and times[0] > 0
    fn, args = profile.phase_programs(trainer, 2)["learn"]
    hlo = jax.jit(fn).lower(*args).compile().as_text()
    assert all(name in hlo for name, _ in ops)


def test_cli_bench_forwards_the_reference_and_profile_flags(monkeypatch):
    import os

    from jppo import cli
    from jppo.bench import throughput as bench

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # cli sets it
    seen = []
    monkeypatch.setattr(bench, "benchmark", lambda options: seen.append(options) or 0)
    cli.main(["bench", "--seeds", "64", "--devices", "2", "--vs-reference",
              "--reference-devices", "1", "--pairs", "5"])
    cli.main(["bench", "--seeds", "1", "64", "--profile"])
    first, second = seen
    assert first.seeds == (64,)
    assert first.devices == (2,)
    assert first.vs_reference and first.pairs == 5
    assert first.reference_devices == 1
    assert second.profile and not second.vs_reference
