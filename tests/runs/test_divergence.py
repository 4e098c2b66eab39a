"""Numerical divergence: the jitted update flags NaN/inf, and the live view,
`summary`, `diagnose` and the early stop report it.

`NaNReward` below pays a NaN reward at a known env step; with 8 steps per
rollout, step 20 falls in the third rollout, so every seed's first non-finite
update is update 2. One run of it (the only compile here) with `stop_when_diverged`
stops after its second chunk; hand-made metric tables test the rest."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from gymnax.environments import spaces

import jppo
from jppo import cli
from jppo.analysis import diagnose, stats
from jppo.analysis.metrics import first_nonfinite_update
from jppo.core.train import Transition, nonfinite_flags
from jppo.runs import experiment, results, runner
from jppo.runs.divergence_watch import DivergenceWatch
from jppo.runs.progress import ProgressView

TINY = dict(num_envs=4, num_steps=8, update_epochs=1, num_minibatches=2)
UPDATES, CHUNK, NAN_STEP = 6, 2, 20
FIRST_BAD = (NAN_STEP - 1) // TINY["num_steps"]  # update 2: env steps 17..24


class NaNReward:
    """Episodes of 5 steps paying 1 (+0.1 for action 1); the `nan_at`-th step of
    each env (counted over episodes) pays NaN instead."""

    def __init__(self, nan_at: int = NAN_STEP, name: str = "NaNReward"):
        self.nan_at, self.name = nan_at, name

    @property
    def default_params(self):
        return None

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (3,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)

    def reset(self, key, params=None):
        return jnp.zeros(3), (jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def step(self, key, state, action, params=None):
        t, total = state[0] + 1, state[1] + 1
        done = t >= 5
        reward = jnp.where(total == self.nan_at, jnp.nan, 1.0 + 0.1 * action)
        after = jnp.where(done, 0, t)
        return (jnp.full(3, 0.1) * after, (after, total), reward, done, jnp.zeros((), bool),
                {"final_observation": jnp.full(3, 0.1) * t})


def nan_experiment(**fields):
    data = dict(name="nan", envs=[NaNReward()], seeds=2,
                total_timesteps=TINY["num_envs"] * TINY["num_steps"] * UPDATES,
                chunk_updates=CHUNK, config=dict(TINY), stop_when_diverged=True,
                checkpoint_every=3,  # the stop saves the checkpoint the chunk did not
                variants={"standard": {}})
    data.update(fields)
    return experiment.from_dict(data)


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nan") / "run"
    lines = []
    result = runner.run_experiment(nan_experiment(), out,
                                   progress=ProgressView("lines", write=lines.append))
    return out, lines, result


# ----------------------------------------------------------- the jitted check


def test_nan_reward_flags_the_known_update_and_its_source(nan_run):
    _, _, result = nan_run
    nan = result.metrics("standard", "NaNReward")
    stopped_at = 2 * CHUNK  # the chunk holding update 2 is the program's last
    expected = (np.arange(stopped_at) >= FIRST_BAD).astype(float)
    np.testing.assert_array_equal(nan["nonfinite"], [expected] * 2)
    np.testing.assert_array_equal(nan["nonfinite_reward"],
                                  [np.arange(stopped_at) == FIRST_BAD] * 2)
    np.testing.assert_array_equal(nan["nonfinite_obs"], 0.0)
    np.testing.assert_array_equal(first_nonfinite_update(nan), [FIRST_BAD] * 2)
    assert np.all(np.isfinite(nan["total_loss"][:, :FIRST_BAD]))
    assert np.all(np.isnan(nan["total_loss"][:, FIRST_BAD:]))


def finite_inputs(**changes):
    zeros = jnp.zeros((8, 4))
    traj = Transition(obs=jnp.zeros((8, 4, 3)), action=zeros, log_prob=zeros, reward=zeros,
                      terminated=zeros, truncated=zeros, final_obs=jnp.zeros((8, 4, 3)),
                      reset=zeros)
    stats_ = {"total_loss": jnp.float32(1.0), "grad_norm": jnp.float32(2.0)}
    params = {"params": {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}}
    for name, value in changes.items():
        if name in stats_:
            stats_[name] = value
        elif name == "w":
            params = {"params": {**params["params"], "w": value}}
        else:
            traj = traj.replace(**{name: value})
    return traj, stats_, params


@pytest.mark.parametrize("changes, expected", [
    ({}, (0, 0, 0)),
    ({"total_loss": jnp.float32(jnp.inf)}, (1, 0, 0)),
    ({"grad_norm": jnp.float32(jnp.nan)}, (1, 0, 0)),
    ({"w": jnp.ones((3, 2)).at[2, 1].set(jnp.inf)}, (1, 0, 0)),  # finite loss and grads
    ({"reward": jnp.zeros((8, 4)).at[5, 3].set(jnp.nan)}, (0, 1, 0)),
    ({"final_obs": jnp.zeros((8, 4, 3)).at[7, 0, 2].set(-jnp.inf)}, (0, 0, 1)),
])
def test_flags_cover_losses_gradients_parameters_and_inputs(changes, expected):
    flags = nonfinite_flags(*finite_inputs(**changes))
    got = tuple(int(flags[name]) for name in ("nonfinite", "nonfinite_reward", "nonfinite_obs"))
    assert got == expected


def test_the_check_has_an_off_switch_that_removes_its_metrics():
    config = jppo.PPOConfig(**TINY, total_timesteps=64)
    shapes = {check: jax.eval_shape(jppo.make_train(config.replace(nonfinite_check=check),
                                                    NaNReward()), jax.random.PRNGKey(0))
              for check in (True, False)}
    flags = {"nonfinite", "nonfinite_reward", "nonfinite_obs", "nonfinite_policy_loss",
             "nonfinite_entropy", "nonfinite_value_loss"}
    assert flags <= set(shapes[True].metrics)
    assert set(shapes[True].metrics) - set(shapes[False].metrics) == flags
    with pytest.raises(ValueError, match="nonfinite_check=1 is invalid: allowed is True or"):
        jppo.PPOConfig(nonfinite_check=1)


# -------------------------------------------------------- live view and stop


def test_progress_names_diverged_seeds_as_they_happen(nan_run):
    _, lines, _ = nan_run
    program = [line for line in lines if line.startswith("[NaNReward")]
    steps = [line for line in program if "steps/seed" in line]
    assert "diverged" not in steps[0]  # chunk 0: updates 0-1 are finite
    assert steps[1].endswith("diverged 2/2")
    (message,) = [line for line in program if "diverged (NaN/inf)" in line]
    assert message == ("[NaNReward · standard] diverged (NaN/inf): seed 0 at update 2 (env "
                       "reward), seed 1 at update 2 (env reward); 2/2 runs diverged")
    assert program.index(message) == program.index(steps[1]) - 1


def test_a_program_whose_runs_all_diverged_stops_early_and_stays_stopped(nan_run):
    out, lines, result = nan_run
    assert ("[NaNReward · standard] stopped early after 4 of 6 updates: all 2 runs diverged "
            "(non-finite losses, gradients or parameters) (stop_when_diverged)") in lines
    assert result.timings[0].stopped_after == 2 * CHUNK
    frame = result.frame
    assert frame["update"].max() == 2 * CHUNK - 1
    entry = results.read_run_info(out)["stopped_early"]["program-000"]
    assert entry == {"env": "NaNReward", "variants": ["standard"], "updates": 4,
                     "num_updates": UPDATES, "reason": "all 2 runs diverged (non-finite "
                     "losses, gradients or parameters)"}
    resumed = runner.run_experiment(nan_experiment(), out, resume=True, progress="off")
    pd.testing.assert_frame_equal(resumed.frame, frame, check_exact=True)
    assert resumed.timings[0].stopped_after == 4 and resumed.timings[0].compile_seconds == 0
    assert "stopped_early" in results.read_run_info(out)


def test_a_resumed_run_knows_the_divergences_on_disk(nan_run):
    """A resume seeds the live view and the stop rule from the metric files of
    the chunks before its checkpoint, not only from what it runs itself."""
    out, _, _ = nan_run
    watch = DivergenceWatch.start(["standard"], [0, 1])
    watch.seed_from(out, "NaNReward", chunks=1)  # chunk 0: updates 0-1, finite
    np.testing.assert_array_equal(watch.first, [-1, -1])
    watch.seed_from(out, "NaNReward", chunks=2)
    np.testing.assert_array_equal(watch.first, [FIRST_BAD, FIRST_BAD])
    assert watch.all_diverged and watch.diverged == 2


def test_stop_when_diverged_is_validated_in_one_line():
    with pytest.raises(ValueError, match=r"^stop_when_diverged='yes' is invalid: allowed is "
                                         r"true or false$"):
        nan_experiment(stop_when_diverged="yes")
    with pytest.raises(ValueError, match=r"^stop_when_diverged=True is invalid with "
                                         r"nonfinite_check=False \(variant 'standard'\)"):
        nan_experiment(config={**TINY, "nonfinite_check": False})


# ----------------------------------------------------------------- summary


def test_summary_marks_diverged_runs_with_and_without_them(nan_run, monkeypatch, capsys):
    out, _, _ = nan_run
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    assert cli.main(["summary", str(out), "--reps", "200"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / stats.SUMMARY_CSV)
    assert list(zip(table["subset"], table["diverged"], table["seeds"], strict=True)) == [
        ("all", 2, 2), ("without diverged", 2, 0)]
    assert "| NaNReward | standard (2 diverged)             |     2 |" in printed
    assert "| NaNReward | standard (without the 2 diverged) |     0 |" in printed
    assert np.isnan(table["mean"].iloc[1]) and np.isfinite(table["mean"].iloc[0])
    assert "standard / NaNReward: seeds 0, 1 at update 2." in printed
    assert "Stopped early (stop_when_diverged): NaNReward · standard after 4 of 6" in printed
    assert "Rows marked '(N diverged)' include them" in (out / stats.SUMMARY_MD).read_text()


def synthetic(firsts: dict[int, int], returns: np.ndarray, variant: str = "v",
              updates: int = 10) -> pd.DataFrame:
    """A metrics table of len(returns) seeds: seed s ends with return returns[s] and
    turns non-finite at update firsts[s] (if listed)."""
    seeds = len(returns)
    flags = np.zeros((seeds, updates))
    for seed, first in firsts.items():
        flags[seed, first:] = 1.0
    arrays = {"episode_return": np.repeat(returns[:, None], updates, axis=1),
              "episodes_finished": np.ones((seeds, updates)), "nonfinite": flags}
    return results.metrics_table(arrays, variant=variant, env="E", seeds=range(seeds),
                                 first_update=0, steps_per_update=8).to_pandas()


def test_statistics_without_diverged_runs_are_those_of_the_others():
    returns = np.array([9.0, 100.0, 9.5, 120.0, 110.0, 130.0])
    base = np.array([50.0, 60.0, 70.0, 80.0, 90.0, 95.0])
    frame = pd.concat([synthetic({}, base, "base"), synthetic({0: 3, 2: 7}, returns, "new")],
                      ignore_index=True)  # the baseline has no diverged run: one row
    firsts = stats.first_divergences(frame)
    np.testing.assert_array_equal(firsts["new", "E"].to_numpy(), [3, -1, 7, -1, -1, -1])
    scores = stats.final_returns(frame)
    table = stats.summary_with_divergence(scores, firsts, "base", reps=200, seed=0)
    assert table["subset"].tolist() == ["all", "all", "without diverged"]
    everything, kept = table.iloc[1], table.iloc[2]
    assert everything["mean"] == pytest.approx(returns.mean())
    assert kept["mean"] == pytest.approx(returns[[1, 3, 4, 5]].mean())
    assert kept["median"] == pytest.approx(np.median(returns[[1, 3, 4, 5]]))
    assert kept["seeds"] == 4 and kept["diverged"] == 2 and everything["diverged"] == 2
    beats = (returns[[1, 3, 4, 5]][:, None] > base[None, :]).mean()
    assert kept["p_improve"] == pytest.approx(beats)
    assert everything["p_improve"] < kept["p_improve"]
    text = stats.format_summary(table)
    assert "new (2 diverged)" in text and "new (without the 2 diverged)" in text
    assert "new / E: seed 0 at update 3; seed 2 at update 7." in text


# ---------------------------------------------------------------- diagnose


def test_diagnose_names_divergence_its_first_update_and_the_reward(nan_run, monkeypatch,
                                                                   capsys):
    out, _, _ = nan_run
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    assert cli.main(["diagnose", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "standard / NaNReward: Numerical divergence in 2/2 seeds (100%)" in printed
    assert "  first non-finite update: update 2 (seeds 0, 1)" in printed
    assert "  likely source: reward (seeds 0, 1): the env returned a NaN or inf reward" in printed
    report = (out / "diagnosis.md").read_text()
    assert "### Numerical divergence (root cause): 2/2 seeds (100%)" in report
    assert "- the program stopped early after 4 of 6 updates" in report
    assert "| offset | episode_return | nonfinite | nonfinite_reward |" in report
    assert "No failure mode" not in report.split("## Summary")[0]


def test_divergence_source_is_loss_scale_or_learning_rate_from_the_evidence():
    updates = 10
    calm = {"reward_mean": np.ones((2, updates)), "lr_policy": np.full((2, updates), 0.3),
            "lr_value": np.full((2, updates), 0.3), "approx_kl": np.full((2, updates), 5.0)}
    frame = synthetic({0: 6, 1: 4}, np.array([9.0, 9.0]))
    for name, value in calm.items():
        frame[name] = value.reshape(-1)
    (found,) = [f for f in diagnose.diagnose_frame(frame) if f.rule == diagnose.DIVERGENCE]
    assert found.fired and found.seeds == [0, 1]
    assert found.lines[0] == "first non-finite update: update 4 (seed 1); update 6 (seed 0)"
    assert found.lines[1].startswith("likely source: learning rate (seeds 0, 1)")
    assert "policy 0.3, value 0.3" in found.lines[1]
    assert found.remedies[0].overrides == {"lr": 2.5e-5}
    huge = frame.copy()
    huge["reward_mean"] = np.where(huge["seed"] == 1, 2 * diagnose.LARGE_REWARD, 1.0)
    (found,) = [f for f in diagnose.diagnose_frame(huge) if f.rule == diagnose.DIVERGENCE]
    assert found.lines[1].startswith("likely source: learning rate (seed 0)")
    assert found.lines[2].startswith("likely source: loss scale (seed 1): the learner's "
                                     "rewards reached 2e+03 per step")
    assert {"reward_scaling": True} in [r.overrides for r in found.remedies]
    evidence = found.evidence.set_index("offset")
    assert evidence.loc[0, "nonfinite"] == 1.0 and evidence.loc[-1, "nonfinite"] == 0.0
    healthy = synthetic({}, np.array([9.0, 9.0]))
    assert all(f.rule != diagnose.DIVERGENCE for f in diagnose.diagnose_frame(healthy))
