"""Reliability, round two: each case ends in one line naming the field, the bad
value and what is allowed (or a note where a setting cannot act), before the
run directory exists and before anything compiles."""

import json
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

import jppo
from jppo import cli
from jppo.core import strategies
from jppo.runs import experiment, runner

FILE = textwrap.dedent("""
    envs = ["CartPole-v1"]
    seeds = 2
    total_timesteps = 1024
    [config]
    num_envs = 4
    num_steps = 16
    num_minibatches = 2
""")


@pytest.fixture
def file(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(FILE)
    return path


def cli_error(argv, capsys, code=2) -> str:
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# ------------------------------------------------- 1. a run's name is a name
@pytest.mark.parametrize("name", ["../escaped", "/abs/escaped", "a/b", "..", ".", ".hidden",
                                  "a\\b", " padded", "tab\there"])
def test_a_name_that_is_a_path_is_refused_before_anything_is_written(
        name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    file = tmp_path / "exp.toml"
    file.write_text(f"name = {json.dumps(name)}\n" + FILE)
    err = cli_error(["compare", str(file)], capsys)
    assert err.startswith(f"jppo: error: name={name!r} is invalid: allowed is a name, not a "
                          "path")
    assert "--out" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.toml"]  # no runs/, nothing else
    with pytest.raises(ValueError, match="is invalid: allowed is a name, not a path"):
        experiment.from_dict({"name": name, "envs": ["CartPole-v1"]})


def test_names_that_are_names_still_work_and_out_chooses_the_place(tmp_path):
    for name in ("value-clip", "sweep 3", "v1.2", "CartPole-v1"):
        assert experiment.from_dict({"name": name, "envs": ["CartPole-v1"]}).name == name
    hidden = tmp_path / ".hidden.toml"
    hidden.write_text(FILE)
    assert experiment.load(hidden).name == "hidden"  # the default name from the file
    from jppo.runs import runner

    exp = runner.single_experiment(__import__("jppo").PPOConfig(), "CartPole-v1", 2)
    assert exp.name == "CartPole-v1"


# ------------------------------------------- 3. honest divergence figures
TINY = dict(num_envs=4, num_steps=8, update_epochs=1, num_minibatches=2, total_timesteps=128)


class NaNPays:
    """Episodes of 3 steps; every reward is NaN (a broken user env)."""

    name = "NaNPays"
    default_params = None

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (3,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)

    def reset(self, key, params=None):
        return jnp.zeros(3), jnp.zeros((), jnp.int32)

    def step(self, key, state, action, params=None):
        t = state + 1
        done = t >= 3
        return (jnp.zeros(3), jnp.where(done, 0, t), jnp.float32(jnp.nan), done,
                jnp.zeros((), bool), {"final_observation": jnp.zeros(3)})


def test_nan_returns_are_never_summarised_as_numbers(tmp_path, capsys):
    out = tmp_path / "run"
    jppo.run(jppo.PPOConfig(**TINY), NaNPays(), 2, out, progress="off")
    capsys.readouterr()
    assert cli.main(["summary", str(out), "--reps", "50"]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("| NaNPays"))
    assert "0.00" not in row and "n/a" in row, row
    assert [cell.strip() for cell in row.split("|")][3] == "0"  # no seed with a final return
    assert ("NaN returns: default / NaNPays: 2 seed(s) (seeds 0, 1) finished episodes whose "
            "return is NaN or inf") in printed
    assert "NaN returns:" in (out / "summary.md").read_text()


def test_a_registered_value_loss_that_returns_nan_is_named_not_the_learning_rate(
        tmp_path, capsys):
    name = "nan_after_mse"
    jppo.register_value_loss(name, lambda v: jnp.mean((v.pred - v.target) ** 2) * jnp.nan,
                             replace=True)
    try:
        out = tmp_path / "run"
        jppo.run(jppo.PPOConfig(**TINY, value_loss=name), "CartPole-v1", 2, out,
                 progress="off")
        capsys.readouterr()
        assert cli.main(["diagnose", str(out)]) == 0
    finally:
        strategies.VALUE_LOSSES.unregister(name)
    printed = capsys.readouterr().out
    assert "learning rate" not in printed and "lr=" not in printed, printed
    assert ("  likely source: value loss (seeds 0, 1): the value loss was NaN or inf at the "
            "update's first optimizer step, at the finite parameters the update started from "
            f"and finite env inputs; it is computed by the registered strategy "
            f"value_loss={name!r}") in printed
    assert 'try: value_loss="clipped"' in printed  # the built-in isolates it


def test_the_learning_rate_is_blamed_only_when_every_loss_term_was_finite_at_the_start():
    from jppo.analysis.diagnose.divergence_source import likely_source
    from jppo.analysis.diagnose.engine import Cell

    updates = 4
    base = {"nonfinite": np.array([[0, 0, 1, 1]], float), "reward_mean": np.ones((1, updates))}
    for term in ("policy_loss", "entropy", "value_loss"):
        base[f"nonfinite_{term}"] = np.zeros((1, updates))

    def source(**flags):
        arrays = {**base, **{f"nonfinite_{k}": np.array([v], float) for k, v in flags.items()}}
        cell = Cell("v", "e", np.array([0]), np.arange(updates), arrays, jppo.PPOConfig())
        return likely_source(cell, 0, 2)

    assert source() == "learning rate"
    assert source(value_loss=[0, 0, 0, 1]) == "learning rate"  # after the first NaN update
    assert source(value_loss=[0, 0, 1, 1]) == "value loss"
    assert source(entropy=[0, 0, 1, 0], value_loss=[0, 0, 1, 1]) == "entropy"  # first computed
    assert source(policy_loss=[0, 0, 1, 1], entropy=[0, 0, 1, 0]) == "policy loss"


# ----------------------------- 4. no half-made run directory blocks a retry
class WrongSpace(NaNPays):
    """Observations of 4 entries under an observation_space of 3."""

    name = "WrongSpace"

    def reset(self, key, params=None):
        return jnp.zeros(4), jnp.zeros((), jnp.int32)

    def step(self, key, state, action, params=None):
        t = state + 1
        return (jnp.zeros(4), jnp.where(t >= 3, 0, t), jnp.float32(1.0), t >= 3,
                jnp.zeros((), bool), {"final_observation": jnp.zeros(4)})


def test_an_observation_space_that_disagrees_with_the_observations_is_one_line_first(
        tmp_path, monkeypatch, capsys):
    module = tmp_path / "my_wrong_env.py"
    module.write_text("from test_checks_before_compiling import WrongSpace\n\n\ndef make():\n"
                      "    return WrongSpace()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    out = tmp_path / "run"
    err = cli_error(["train", "--env", "my_wrong_env:make", "--out", str(out), "--seeds", "2"],
                    capsys)
    assert err == ("jppo: error: env 'my_wrong_env:make': observation_space(params).shape=(3,) "
                   "(3 entries) but reset returns observations of shape (4,) (4 entries); "
                   "allowed is an observation_space whose shape is that of the observations")
    assert not out.exists()
    with pytest.raises(ValueError, match=r"^env 'WrongSpace': observation_space\(params\)"):
        jppo.run(jppo.PPOConfig(**TINY), WrongSpace(), 2, out)
    assert not out.exists()


def test_a_run_that_failed_before_its_first_chunk_does_not_block_the_retry(tmp_path, capsys):
    """The user's loss fails at trace time, after run.json was written: once it is
    fixed, the same command (no --resume) takes the directory over, and says so."""
    name = "broken_then_fixed"

    def broken(v):
        raise RuntimeError("my bug")

    jppo.register_value_loss(name, broken, replace=True)
    out = tmp_path / "run"
    config = jppo.PPOConfig(**TINY, value_loss=name)
    try:
        with pytest.raises(Exception, match="my bug"):
            jppo.run(config, "CartPole-v1", 2, out, progress="off")
        assert (out / "run.json").exists() and not list((out / "metrics").glob("*.parquet"))
        jppo.register_value_loss(name, lambda v: jnp.mean((v.pred - v.target) ** 2),
                                 replace=True)
        capsys.readouterr()
        result = jppo.run(config, "CartPole-v1", 2, out, progress="off")
    finally:
        strategies.VALUE_LOSSES.unregister(name)
    assert len(result.frame) == 2 * 4
    assert capsys.readouterr().err.strip() == (
        f"jppo: out={str(out)!r} holds a run that finished no chunk (it failed or was stopped "
        "before its first): starting over in it")
    with pytest.raises(ValueError, match="already holds a run: pass resume=True"):
        jppo.run(config.replace(value_loss="mse"), "CartPole-v1", 2, out)  # finished chunks


# ------------------------------------------------ 6. no knob silently does nothing
# knob -> (a non-default value, fields where it cannot act, fields where it acts)
INERT_CASES = {
    "torso_lr": (1e-3, {}, {"torso_hidden": (64,)}),
    "value_clip_eps": (0.5, {"value_loss": "mse"}, {}),
    "value_clip_mode": ("relative", {"value_loss": "huber"}, {}),
    "huber_delta": (2.0, {}, {"value_loss": "huber"}),
    "ent_coef_final": (0.001, {}, {"ent_schedule": "linear"}),
    "adv_std_threshold": (0.1, {}, {"advantage_norm": "robust"}),
    "popart_step": (0.1, {}, {"value_target": "popart"}),
    "obs_norm_warmup": (3, {}, {"obs_norm": True}),
    "obs_clip": (5.0, {}, {"obs_norm": True}),
    "reward_clip": (5.0, {}, {"reward_scaling": True}),
    "hl_gauss_bins": (21, {}, {"value_loss": "hl_gauss", "value_target": "symlog"}),
    "hl_gauss_range": ((-5.0, 5.0), {}, {"value_loss": "hl_gauss"}),
    "hl_gauss_sigma": (0.5, {}, {"value_loss": "hl_gauss", "value_target": "symlog"}),
    "target_kl": (0.05, {}, {"kl_early_stop": True}),
    "eval_episodes": (4, {"eval_every": 0}, {}),
    "eval_max_steps": (100, {"eval_every": 0}, {}),
    "eval_every": (50, {"total_timesteps": 4 * 16 * 10}, {"total_timesteps": 4 * 16 * 100}),
    "rnn_cell": ("lstm", {}, {"policy_rnn": 8}),
    "lr_end_factor": (0.1, {"lr_schedule": "constant"}, {}),
    "lr_decay_fraction": (0.5, {"lr_schedule": "constant"}, {"lr_schedule": "cosine"}),
    "kl_coef": (0.3, {}, {"policy_loss": "kl_penalty"}),
    "dpo_alpha": (1.0, {"policy_loss": "kl_penalty"}, {"policy_loss": "dpo"}),
    "dpo_beta": (0.3, {}, {"policy_loss": "dpo"}),
    "quantile_count": (8, {}, {"value_loss": "quantile"}),
    "shrink_perturb_alpha": (0.5, {}, {"shrink_perturb_every": 10}),
    "shrink_perturb_sigma": (0.5, {}, {"shrink_perturb_every": 10}),
    "shrink_perturb_groups": ("value", {}, {"shrink_perturb_every": 10}),
    "pfo_coef": (0.5, {}, {"pfo": True}),
    "policy_std_floor": (0.01, {}, {"policy_std": "softplus"}),
}
SMALL = dict(num_envs=4, num_steps=16, num_minibatches=2, total_timesteps=4 * 16 * 10)


def test_every_knob_is_declared_as_always_acting_or_with_when_it_acts():
    from jppo.core import inert, knobs
    from jppo.core.config import PPOConfig

    declared = set(knobs.declared(PPOConfig))
    conditional, always = set(inert.ACTS_WHEN), set(inert.ALWAYS_ACTS)
    assert not conditional & always
    assert declared == conditional | always, sorted(declared ^ (conditional | always))
    assert set(INERT_CASES) == conditional  # every conditional knob is exercised below


@pytest.mark.parametrize("field", sorted(INERT_CASES))
def test_a_non_default_knob_that_cannot_act_gets_a_note_and_one_that_acts_none(field):
    from jppo.core import inert

    value, inert_fields, acting_fields = INERT_CASES[field]
    idle = jppo.PPOConfig(**{**SMALL, **inert_fields, field: value})
    (note,) = [n for n in inert.notes(idle) if n.startswith(f"{field}=")]
    assert note.startswith(f"{field}={value!r} has no effect: ")
    busy = jppo.PPOConfig(**{**SMALL, **acting_fields, field: value})
    assert not [n for n in inert.notes(busy) if n.startswith(f"{field}=")], inert.notes(busy)
    assert inert.notes(jppo.PPOConfig(**{**SMALL, **inert_fields})) == []  # defaults: silent


def test_the_notes_reach_the_cli_and_python_before_anything_compiles(file, capsys):
    exp = experiment.load(file, ["rnn_cell=lstm"])
    assert experiment.knob_notes(exp) == [
        "rnn_cell='lstm' has no effect: it acts only with a recurrent width (policy_rnn, "
        "value_rnn or torso_rnn > 0)"]
    with (pytest.warns(experiment.KnobHasNoEffect, match="rnn_cell='lstm' has no effect"),
          pytest.raises(ValueError, match="devices=99 is invalid")):
        runner.run_experiment(exp, None, devices=99)  # the notes come first
    sweep = experiment.from_dict({"envs": ["CartPole-v1"], "config": dict(SMALL),
                                  "variants": {"a": {}, "b": {"value_loss": "huber"}},
                                  "sweep": {"huber_delta": [1.0, 2.0]}})
    assert experiment.knob_notes(sweep) == [
        "huber_delta=2.0 has no effect: it acts only with value_loss='huber' (variant "
        "'a,huber_delta=2.0')"]


def test_an_evaluation_of_zero_episodes_is_refused_not_the_default(tmp_path):
    result = jppo.run(jppo.PPOConfig(**TINY), "CartPole-v1", 1, tmp_path / "run",
                      progress="off")
    from jppo.runs import policies

    (loaded,) = policies.load_run_policies(tmp_path / "run", None, None)[1]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=rf"^episodes={bad!r} is invalid: allowed is an "
                                             "integer >= 1, or None"):
            loaded.evaluate(jax.random.PRNGKey(0), bad)
    assert loaded.evaluate(jax.random.PRNGKey(0), np.int64(2)).returns.shape == (2,)
    assert result.frame is not None


# ------------------------------------------------------------ 5. large plans
def large_sweep(static: bool = False) -> experiment.Experiment:
    grid = {"lr": [1e-4 * (i + 1) for i in range(10)], "vf_coef": [0.1 * (i + 1) for i in
                                                                   range(10)],
            "ent_coef": [0.001 * i for i in range(10)]}
    if static:
        grid = {"update_epochs": list(range(1, 21))}
    return experiment.from_dict({"name": "large", "envs": ["CartPole-v1"], "seeds": 2,
                                 "config": dict(SMALL), "sweep": grid})


def test_a_large_plan_says_its_size_in_one_line_before_anything_compiles(capsys):
    from jppo.runs import planning

    exp = large_sweep()
    with pytest.raises(ValueError, match="devices=99 is invalid"):
        runner.run_experiment(exp, None, devices=99)
    (line,) = capsys.readouterr().err.strip().splitlines()
    state = runner.plan(exp)[0]
    size = planning.plan_size(exp, [state], lambda p, params: planning.chunk_sizes(p, exp, params))
    assert line.startswith("jppo: large plan: 1,000 variants x seeds = 2,000 runs in 1 compiled "
                           "program(s), 2 compiles; estimated memory ")
    assert size.memory_bytes > 2000 * 4 * 16 * 4  # at least the rollouts' observations
    static = planning.plan_size(large_sweep(static=True), runner.plan(large_sweep(True)),
                                lambda p, params: {10})
    assert (static.variants, static.programs, static.compiles) == (20, 20, 40)
    assert static.large  # 20 programs > LARGE_PROGRAMS
    small = experiment.from_dict({"envs": ["CartPole-v1"], "config": dict(SMALL)})
    assert not planning.plan_size(small, runner.plan(small), lambda p, params: {10}).large


def test_a_program_of_many_variants_is_named_by_its_first_ones_and_a_count():
    (program,) = runner.plan(large_sweep())
    assert program.name == ("CartPole-v1 · lr=0.0001,vf_coef=0.1,ent_coef=0.0, "
                            "lr=0.0001,vf_coef=0.1,ent_coef=0.001, "
                            "lr=0.0001,vf_coef=0.1,ent_coef=0.002 and 997 more (1,000 variants)")
    few = runner.plan(experiment.from_dict({"envs": ["CartPole-v1"], "config": dict(SMALL),
                                            "sweep": {"lr": [1e-4, 2e-4]}}))[0]
    assert few.name == "CartPole-v1 · lr=0.0001, lr=0.0002"


# --------------------------------------- 8. Python API misuse in one line
def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


def test_a_dict_instead_of_a_config_is_one_line_naming_the_function():
    for call, where in ((lambda: jppo.run({"lr": 1e-3}, "CartPole-v1", 2), "jppo.run"),
                        (lambda: jppo.make_train({"lr": 1e-3}, NaNPays()), "make_train")):
        with pytest.raises(ValueError) as error:
            call()
        assert one_line(error) == (f"{where}: config={{'lr': 0.001}} is invalid: allowed is a "
                                   "jppo.PPOConfig (jppo.PPOConfig(**that_dict), or "
                                   "jppo.make_config(**that_dict))")


def test_a_misspelled_config_field_gets_a_suggestion_like_the_cli():
    for call in (lambda: jppo.PPOConfig(lrr=1e-3), lambda: jppo.PPOConfig().replace(lrr=1e-3),
                 lambda: __import__("dataclasses").replace(jppo.PPOConfig(), lrr=1e-3)):
        with pytest.raises(TypeError) as error:  # still the TypeError a dataclass raises
            call()
        assert isinstance(error.value, ValueError)
        assert one_line(error).startswith("PPOConfig has no field 'lrr' (did you mean 'lr'?); "
                                          "valid fields are ['num_envs', ")


def test_a_wrong_keyword_to_run_names_run_and_its_own_argument():
    with pytest.raises(ValueError) as error:
        jppo.run(jppo.PPOConfig(**TINY), "CartPole-v1", 2, seeds=3)
    assert one_line(error).startswith("jppo.run() has no argument 'seeds' (did you mean "
                                      "num_seeds?); allowed are config, env, num_seeds, out_dir")
    with pytest.raises(ValueError, match=r"has no argument 'progres' \(did you mean progress"):
        jppo.run(jppo.PPOConfig(**TINY), "CartPole-v1", 2, progres="off")


@pytest.mark.parametrize("strategy, message", [
    (3, "value_loss 'bad': loss=3 is invalid: allowed is a function loss(inputs: "
        "ValueLossInputs) -> a scalar loss"),
    (lambda pred, target: 0.0, "value_loss 'bad': loss(pred, target) is invalid: allowed is a "
                               "function taking 1 positional argument(s), loss(inputs: "
                               "ValueLossInputs) -> a scalar loss"),
])
def test_a_strategy_that_cannot_work_is_refused_at_registration(strategy, message):
    with pytest.raises(strategies.StrategyError) as error:
        jppo.register_value_loss("bad", strategy)
    assert one_line(error) == message
    assert "bad" not in strategies.VALUE_LOSSES
    with pytest.raises(strategies.StrategyError, match="minibatch\\(a\\) is invalid: allowed is "
                                                       "a function taking 2 positional"):
        jppo.register_advantage_norm("bad", lambda a: a)


@pytest.mark.parametrize("loss, message", [
    (lambda v: (v.pred - v.target) ** 2, "value_loss 'traced': loss returned an array of shape "
     "(16,): allowed is a scalar (contract: loss(inputs: ValueLossInputs) -> a scalar loss); "
     "e.g. take jnp.mean of it"),
    (lambda v: v.prediction, "value_loss 'traced': loss raised AttributeError: 'ValueLossInputs' "
     "object has no attribute 'prediction' (contract: loss(inputs: ValueLossInputs) -> a "
     "scalar loss)"),
])
def test_a_strategy_failing_at_trace_time_names_itself_and_its_contract(loss, message, capsys):
    jppo.register_value_loss("traced", loss, replace=True)
    try:
        config = jppo.PPOConfig(**TINY, value_loss="traced")
        with pytest.raises(strategies.StrategyError) as error:
            jax.eval_shape(jppo.make_train(config, NaNPays()),
                           jax.random.PRNGKey(0))
        assert one_line(error) == message
        err = cli_error(["train", "--set", "value_loss=traced", "--set", "num_envs=4",
                         "--set", "num_steps=8", "--set", "num_minibatches=2", "--seeds", "1",
                         "--total-timesteps", "64", "--progress", "off"], capsys)
        assert err == f"jppo: error: {message}"
    finally:
        strategies.VALUE_LOSSES.unregister("traced")


def test_a_loaded_policy_names_a_wrong_carry_or_observation_in_one_line(tmp_path):
    out = tmp_path / "run"
    jppo.run(jppo.PPOConfig(**TINY, policy_rnn=4, eval_every=0), "CartPole-v1", 1, out,
             progress="off")
    policy = jppo.load_policy(out)
    key, obs = jax.random.PRNGKey(0), jnp.zeros((3, 4))
    carry = policy.initial_carry(3)
    action, _ = policy.step(obs, key, carry, jnp.zeros(3, bool))
    assert action.shape == (3,)
    for bad in (None, policy.initial_carry(2), jnp.zeros((3, 5))):
        with pytest.raises(ValueError) as error:
            policy.step(obs, key, bad, jnp.zeros(3, bool))
        assert one_line(error).startswith("carry=") and "is invalid for this policy and batch " \
            "(3,): allowed is policy.initial_carry((3,)) (shapes " in one_line(error)
    with pytest.raises(ValueError) as error:
        policy.step(jnp.zeros((3, 6)), key, carry, jnp.zeros(3, bool))
    assert one_line(error) == ("obs of shape (3, 6) is invalid for this policy: allowed is "
                               "CartPole-v1's observations, shape (4,), with any leading batch "
                               "axes")


def test_the_fast_iqm_and_improvement_probability_equal_rliable_bitwise():
    """The summary's bootstrap calls these 2,000 times per cell; they must give
    rliable's numbers exactly, so every table is unchanged, only faster."""
    from rliable import metrics as rly_metrics

    from jppo.analysis import stats

    rng = np.random.default_rng(0)
    for trial in range(300):
        n, m = rng.integers(1, 40, size=2)
        x = rng.normal(size=(n, 1)).round(int(rng.integers(0, 3)))  # ties, often
        y = rng.normal(size=(m, 1)).round(int(rng.integers(0, 3)))
        assert stats.iqm(x) == rly_metrics.aggregate_iqm(x), trial
        assert stats.improvement_probability(x, y) == \
            rly_metrics.probability_of_improvement(x, y), trial
        assert stats.improvement_probability(x, x) == 0.5


def test_plots_of_many_variants_count_them_instead_of_a_legend_and_few_keep_it(tmp_path):
    from analysis.test_plots import make_run  # tests/analysis (tests/ is on sys.path)

    from jppo.analysis import plots
    from jppo.runs import results

    many = [f"v{i}" for i in range(plots.MANY_VARIANTS + 1)]
    make_run(tmp_path / "many", many, ["CartPole-v1"], num_updates=8)
    frame = results.read_metrics(tmp_path / "many")
    for fig in (plots.learning_curves_figure(frame),
                plots.diagnostics_figure(frame, env="CartPole-v1")):
        assert not fig.legends
        assert any(t.get_text().startswith(f"{len(many)} variants, one line each")
                   for t in fig.texts)
        lines = [line for ax in fig.axes for line in ax.get_lines() if line.get_label() in many]
        assert {line.get_label() for line in lines} == set(many)
        assert not any(ax.collections for ax in fig.axes[:1])  # no bands
    few = many[:plots.MANY_VARIANTS]
    make_run(tmp_path / "few", few, ["CartPole-v1"], num_updates=8)
    fig = plots.learning_curves_figure(results.read_metrics(tmp_path / "few"))
    (legend,) = fig.legends
    assert len(legend.get_texts()) == len(few)
