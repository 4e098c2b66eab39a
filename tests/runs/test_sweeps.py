"""`[sweep]` tables in experiment files: a cartesian grid expanded into named
variants, crossed with `[variants]`, overridable with `--set`, grouped by the
runner into one compiled program when only traced fields differ (a sweep run to
the end, with its names in the run directory, is in test_tensorboard.py)."""

import itertools
import re
import textwrap

import numpy as np
import pytest

import jppo
from jppo.core.config import PPOConfig
from jppo.runs import experiment, runner, sweeps

HEAD = textwrap.dedent("""
    envs = ["CartPole-v1"]
    seeds = 2
    total_timesteps = 1024
    [config]
    num_envs = 4
    num_steps = 16
    num_minibatches = 2
""")
SWEEP = "[sweep]\nvf_coef = [0.05, 0.5, 1.0]\nvalue_output_gain = [1.0, 0.01]\n"
VARIANTS = "[variants.standard]\n[variants.relative]\nvalue_clip_mode = \"relative\"\n"


def load(tmp_path, text, overrides=()):
    file = tmp_path / "exp.toml"
    file.write_text(HEAD + text)
    return experiment.load(file, overrides)


def test_a_sweep_without_variants_expands_into_named_points(tmp_path):
    exp = load(tmp_path, SWEEP)
    grid = itertools.product([0.05, 0.5, 1.0], [1.0, 0.01])  # last field fastest
    expected = {f"vf_coef={a},value_output_gain={b}": (a, b) for a, b in grid}
    assert list(exp.variants) == list(expected)
    for name, (vf_coef, gain) in expected.items():
        config = exp.variant_config(name)
        assert (config.vf_coef, config.value_output_gain) == (vf_coef, gain)
        assert config == PPOConfig(num_envs=4, num_steps=16, num_minibatches=2,
                                   total_timesteps=1024, vf_coef=vf_coef,
                                   value_output_gain=gain)
    assert exp.baseline_variant == "vf_coef=0.05,value_output_gain=1.0"


def test_traced_points_share_one_program_and_static_ones_split(tmp_path):
    programs = runner.plan(load(tmp_path, SWEEP))
    assert len(programs) == 1 and len(programs[0].variants) == 6
    np.testing.assert_allclose(programs[0].hparams.vf_coef, [0.05, 0.05, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(programs[0].hparams.value_output_gain, [1.0, 0.01] * 3)
    # a static field in [sweep] is allowed in a file: one program per static setting
    exp = load(tmp_path, "[sweep]\nvalue_loss = [\"mse\", \"huber\"]\nvf_coef = [0.1, 1.0]\n")
    assert [p.variants for p in runner.plan(exp)] == [
        ("value_loss=mse,vf_coef=0.1", "value_loss=mse,vf_coef=1.0"),
        ("value_loss=huber,vf_coef=0.1", "value_loss=huber,vf_coef=1.0")]


def test_sweep_and_variants_cross(tmp_path):
    exp = load(tmp_path, VARIANTS + "[sweep]\nvf_coef = [0.1, 1.0]\n")
    assert list(exp.variants) == ["standard,vf_coef=0.1", "standard,vf_coef=1.0",
                                  "relative,vf_coef=0.1", "relative,vf_coef=1.0"]
    config = exp.variant_config("relative,vf_coef=1.0")
    assert config.value_clip_mode == "relative" and config.vf_coef == 1.0
    # value_clip_mode is static: two programs of two variants each
    assert [len(p.variants) for p in runner.plan(exp)] == [2, 2]


def test_set_overrides_the_base_a_variant_or_the_grid(tmp_path):
    exp = load(tmp_path, VARIANTS + SWEEP, ["num_envs=8", "relative.value_clip_eps=0.3",
                                            "sweep.vf_coef=[0.2, 2.0]"])
    assert list(exp.variants)[:2] == ["standard,vf_coef=0.2,value_output_gain=1.0",
                                      "standard,vf_coef=0.2,value_output_gain=0.01"]
    assert len(exp.variants) == 2 * 2 * 2
    for name in exp.variants:
        config = exp.variant_config(name)
        assert config.num_envs == 8 and config.vf_coef in (0.2, 2.0)
        assert config.value_clip_eps == (0.3 if name.startswith("relative,") else None)
    # FIELD=VALUE for every variant wins over the file's axis, which then goes away
    exp = load(tmp_path, SWEEP, ["vf_coef=0.3"])
    assert list(exp.variants) == ["value_output_gain=1.0", "value_output_gain=0.01"]
    assert {exp.variant_config(v).vf_coef for v in exp.variants} == {0.3}


def test_names_are_readable_stable_and_usable_as_file_names():
    assert sweeps.point_name({"vf_coef": 0.05, "value_output_gain": 0.01}) == (
        "vf_coef=0.05,value_output_gain=0.01")
    assert sweeps.point_name({"lr": 3e-5, "obs_norm": True, "value_hidden": [256, 128],
                              "value_loss": "mse", "num_envs": 8}) == (
        "lr=3e-05,obs_norm=true,value_hidden=256x128,value_loss=mse,num_envs=8")
    assert sweeps.point_name({"vf_coef": np.float64(0.5), "gamma": np.float32(0.99)}) == (
        "vf_coef=0.5,gamma=0.99")
    names = [sweeps.point_name(p) for p in sweeps.grid_points(
        {"max_grad_norm": [float("inf"), 0.5], "torso_hidden": [[], [64]]})]
    assert names == ["max_grad_norm=inf,torso_hidden=()", "max_grad_norm=inf,torso_hidden=64",
                     "max_grad_norm=0.5,torso_hidden=()", "max_grad_norm=0.5,torso_hidden=64"]
    for name in names:
        assert not set(name) & set("/*?[]") and "__" not in name


@pytest.mark.parametrize("text, overrides, message", [
    ("[sweep]\nvf_coeff = [0.1]\n", [],
     "sweep: unknown PPOConfig field 'vf_coeff' (did you mean 'vf_coef'"),
    ("[sweep]\nvf_coef = 0.1\n", [],
     "sweep.vf_coef=0.1 is invalid: allowed is a non-empty list of values, e.g. [0.05, 0.5]"),
    ("[sweep]\nvf_coef = []\n", [], "sweep.vf_coef=[] is invalid: allowed is a non-empty list"),
    ("[sweep]\nvf_coef = [0.1, 0.1]\n", [],
     "sweep.vf_coef=[0.1, 0.1] is invalid: allowed is a list of distinct values "
     "(0.1 appears twice)"),
    ("[sweep]\n", [], "sweep={} is invalid: allowed is a table of FIELD = [values]"),
    ("[sweep]\nvf_coef = [0.1, -1.0]\n", [],
     "variant 'vf_coef=-1.0': vf_coef=-1.0 is invalid: allowed is a number in [0, inf)"),
    ("[sweep]\nvf_coef = [0.1]\n", ["sweep.vf_coeff=[1.0]"],
     "sweep: unknown PPOConfig field 'vf_coeff'"),
    ("[variants.low]\nvf_coef = 0.1\n[sweep]\nvf_coef = [0.5, 1.0]\n", [],
     "variants.low: vf_coef is set there and swept in [sweep]; allowed is one of the two"),
    ("[sweep]\nvf_coef = [0.1]\n", ["standard.vf_coef=1.0"],
     "--set standard.vf_coef: unknown variant 'standard'"),
])
def test_bad_sweeps_are_named(tmp_path, text, overrides, message):
    file = tmp_path / "bad.toml"
    file.write_text(HEAD + text)
    with pytest.raises(ValueError) as error:
        experiment.load(file, overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_baseline_names_an_expanded_variant(tmp_path):
    file = tmp_path / "exp.toml"
    file.write_text(HEAD + VARIANTS + "[sweep]\nvf_coef = [0.1]\n")
    with pytest.raises(ValueError, match=re.escape("baseline: unknown variant 'standard'; "
                       "valid: standard,vf_coef=0.1, relative,vf_coef=0.1")):
        experiment.load(file, baseline="standard")
    exp = experiment.load(file, baseline="relative,vf_coef=0.1")
    assert exp.baseline_variant == "relative,vf_coef=0.1"


def test_jppo_sweep_keeps_rejecting_static_fields():
    """`jppo.sweep` is one compiled program: only traced fields."""
    with pytest.raises(ValueError, match="sweep over 'value_loss' is invalid: it is a static "
                       "field"):
        jppo.sweep(PPOConfig(), value_loss=["mse", "huber"])
    with pytest.raises(ValueError, match="PPOConfig has no field 'vf_coeff'"):
        jppo.sweep(PPOConfig(), vf_coeff=[0.1])
    grid = jppo.sweep(PPOConfig(), vf_coef=[0.05, 0.5], value_lr=[1e-4, 1e-3])
    assert grid.settings == sweeps.grid_points({"vf_coef": [0.05, 0.5],
                                                "value_lr": [1e-4, 1e-3]})
