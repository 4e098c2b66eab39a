"""Experiment files: what a TOML file and command-line overrides resolve to, and
the errors a typo gets (before anything compiles)."""

import textwrap

import pytest

from jppo.core.config import PPOConfig
from jppo.runs import experiment

FILE = textwrap.dedent("""
    name = "clip-study"
    envs = ["CartPole-v1", "Acrobot-v1"]
    seeds = 8
    total_timesteps = 2e4
    baseline = "standard"

    [config]
    num_envs = 8
    lr = 1e-3

    [env_params.CartPole-v1]
    max_steps_in_episode = 200

    [variants.standard]

    [variants.relative_clip]
    value_clip_mode = "relative"
    value_clip_eps = 0.3

    [variants.big_critic]
    value_hidden = [256, 128, 64]
    value_layer_norm = true
""")


@pytest.fixture
def path(tmp_path):
    file = tmp_path / "clip.toml"
    file.write_text(FILE)
    return file


def test_file_resolves_to_one_config_per_variant(path):
    exp = experiment.load(path)
    assert exp.envs == ("CartPole-v1", "Acrobot-v1") and exp.seeds == 8
    assert list(exp.variants) == ["standard", "relative_clip", "big_critic"]
    standard = exp.variant_config("standard")
    assert standard == PPOConfig(num_envs=8, lr=1e-3, total_timesteps=20_000)
    relative = exp.variant_config("relative_clip")
    assert (relative.value_clip_mode, relative.value_clip_eps, relative.num_envs) == (
        "relative", 0.3, 8)
    big = exp.variant_config("big_critic")
    assert big.value_hidden == (256, 128, 64) and big.value_layer_norm is True
    assert exp.env_params == {"CartPole-v1": {"max_steps_in_episode": 200}}


def test_command_line_overrides_win(path):
    exp = experiment.load(path, ["num_envs=4", "relative_clip.value_clip_eps=0.5",
                                 "value_loss=mse", "big_critic.value_hidden=(32,32)"],
                          seeds=3, total_timesteps=None)
    assert exp.seeds == 3 and exp.total_timesteps == 20_000  # None leaves the file's
    for name in exp.variants:
        config = exp.variant_config(name)
        assert config.num_envs == 4 and config.value_loss == "mse"
    assert exp.variant_config("relative_clip").value_clip_eps == 0.5
    assert exp.variant_config("standard").value_clip_eps is None
    assert exp.variant_config("big_critic").value_hidden == (32, 32)


def test_a_base_override_replaces_a_variant_value(path):
    exp = experiment.load(path, ["value_clip_eps=0.1"])
    assert exp.variant_config("relative_clip").value_clip_eps == 0.1


@pytest.mark.parametrize("text, overrides, message", [
    ("seedz = 3\n", [], "unknown top-level key 'seedz' (did you mean 'seeds'?)"),
    ("[variants.standard]\nvf_coeff = 1.0\n", [],
     "variants.standard: unknown PPOConfig field 'vf_coeff' (did you mean 'vf_coef'"),
    ("", ["num_envz=3"], "unknown PPOConfig field 'num_envz'"),
    ("", ["relativ_clip.lr=1e-3"], "unknown variant 'relativ_clip'"),
    ("[variants.standard]\nnum_envs = \"eight\"\n", [],
     "num_envs='eight' is invalid: allowed is an integer >= 1"),
    ("", ["value_clip_mode=relativ"], "value_clip_mode='relativ' is invalid: allowed is one of"),
    ("", ["lr=-1"], "lr=-1 is invalid"),
    ("", ["max_grad_norm=fast"], "max_grad_norm"),
])
def test_bad_field_variant_or_type_is_named(tmp_path, text, overrides, message):
    file = tmp_path / "bad.toml"
    file.write_text('envs = ["CartPole-v1"]\n' + text)
    with pytest.raises(ValueError) as error:
        experiment.load(file, overrides)
    assert message in str(error.value)


@pytest.mark.parametrize("fields, message", [
    (dict(envs=["CartPol-v1"]), "unknown environment 'CartPol-v1' (did you mean 'CartPole-v1'"),
    (dict(envs=["CartPole-v1"], seeds=0), "seeds=0 is invalid: allowed is an integer >= 1"),
    (dict(envs=["CartPole-v1"], seeds="8"), "seeds='8' is invalid"),
    (dict(envs=["CartPole-v1"], baseline="b"), "baseline: unknown variant 'b'; valid: default"),
    (dict(envs=["CartPole-v1"], env_params={"Acrobot-v1": {}}),
     "env_params.Acrobot-v1: unknown environment"),
    (dict(envs=["CartPole-v1"], env_params={"CartPole-v1": {"gravityy": 1.0}}), "gravityy"),
    (dict(envs=["CartPole-v1"], variants={"a__b": {}}), "variant name='a__b' is invalid"),
    (dict(envs=["CartPole-v1"], reward_scale=-2.0), "reward_scale=-2.0 is invalid"),
    (dict(seeds=2), "envs"),
])
def test_bad_experiment_fields(fields, message):
    with pytest.raises(ValueError) as error:
        experiment.from_dict(fields)
    assert message in str(error.value)


def test_invalid_toml_and_missing_file(tmp_path):
    file = tmp_path / "broken.toml"
    file.write_text("envs = [CartPole-v1\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        experiment.load(file)
    with pytest.raises(ValueError, match="does not exist"):
        experiment.load(tmp_path / "missing.toml")


def test_values_parse_as_toml_or_python_literals():
    parsed = experiment.parse_assignments(
        ["lr=3e-4", "value_hidden=(256,128)", "torso_hidden=()", "value_loss=mse",
         "obs_norm=true", "kl_early_stop=True", "value_activation=None", "hl_gauss_range=[-5, 5]"],
        "--set")
    assert parsed == {"lr": 3e-4, "value_hidden": [256, 128], "torso_hidden": [],
                      "value_loss": "mse", "obs_norm": True, "kl_early_stop": True,
                      "value_activation": None, "hl_gauss_range": [-5, 5]}
    with pytest.raises(ValueError, match="allowed is NAME=VALUE"):
        experiment.parse_assignments(["lr"], "--set")


def test_select_and_default_experiment(path):
    exp = experiment.load(path).select(variants=["relative_clip"], env_names=["Acrobot-v1"])
    assert list(exp.variants) == ["relative_clip"] and exp.envs == ("Acrobot-v1",)
    assert exp.env_params == {} and exp.baseline_variant == "relative_clip"
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        experiment.load(path).select(variants=["nope"])
    default = experiment.default_experiment()
    assert default.envs == ("CartPole-v1",) and default.seeds == 64
    assert default.variant_config("default") == PPOConfig()


def test_static_key_groups_variants_that_share_a_program():
    base = PPOConfig(num_envs=8)
    same = [base.replace(vf_coef=0.1), base.replace(lr=1e-3, value_clip_eps=1e6),
            base.replace(value_output_gain=0.01, gamma=0.9)]
    assert {experiment.static_key(c) for c in same} == {experiment.static_key(base)}
    different = [base.replace(value_loss="mse"), base.replace(num_envs=4),
                 base.replace(value_hidden=(32,))]
    assert len({experiment.static_key(c) for c in [base, *different]}) == 4


def test_traced_fields_are_exactly_the_hparams():
    """A field missing here would merge variants that need separate programs."""
    from jppo.core.config import HPARAM_FIELDS

    assert set(experiment.TRACED_CONFIG_FIELDS) == {*HPARAM_FIELDS, "lr"}
