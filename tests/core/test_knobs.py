"""Knob declarations (jppo.core.knobs): what is derived from them equals the hand-written
lists they replaced, the `jppo config` listing covers every field, the manual's
knob page holds the generated table, and the runner's program key ignores exactly the
traced knobs."""

import dataclasses
import math
import os
import re
from pathlib import Path

import pytest

from jppo import cli
from jppo.core import config, knobs
from jppo.core.config import HPARAM_FIELDS, KNOBS, TRACED_FIELDS, HParams, PPOConfig
from jppo.runs import experiment
from jppo.runs.sweeps import sweep

# The hand-written lists these declarations replaced, copied as the independent
# reference: HParams' fields in order, and the other lists of traced fields.
HPARAMS_BEFORE = (
    "policy_lr", "value_lr", "torso_lr", "adam_eps", "max_grad_norm", "gamma", "gae_lambda",
    "critic_lambda", "clip_eps", "value_clip_eps", "ent_coef", "vf_coef",
    "policy_output_gain", "value_output_gain", "log_std_init", "huber_delta",
    "adv_std_threshold", "target_kl", "ent_coef_final", "obs_clip", "reward_clip",
    "popart_step", "hl_gauss_sigma",
    "kl_coef", "dpo_alpha", "dpo_beta",  # the policy objectives
    "shrink_perturb_alpha", "shrink_perturb_sigma", "pfo_coef",  # the network variants
)
TRACED_BEFORE = ("lr", *HPARAMS_BEFORE)
_P, _NN, _PI = (0.0, math.inf, False, False), (0.0, math.inf, True, False), \
    (0.0, math.inf, False, True)
RANGES_BEFORE = {
    "policy_lr": _P, "value_lr": _P, "torso_lr": _P, "adam_eps": _P, "max_grad_norm": _PI,
    "gamma": (0.0, 1.0, False, True), "gae_lambda": (0.0, 1.0, True, True),
    "critic_lambda": (0.0, 1.0, True, True), "clip_eps": _P, "value_clip_eps": _PI,
    "ent_coef": _NN, "vf_coef": _NN, "policy_output_gain": _P, "value_output_gain": _P,
    "log_std_init": (-math.inf, math.inf, False, False), "huber_delta": _P,
    "adv_std_threshold": _NN, "target_kl": _P, "ent_coef_final": _NN, "obs_clip": _PI,
    "reward_clip": _PI, "popart_step": (0.0, 1.0, False, True), "hl_gauss_sigma": _P,
    "shrink_perturb_alpha": (0.0, 1.0, True, True), "shrink_perturb_sigma": _NN, "pfo_coef": _NN,
    "kl_coef": _NN, "dpo_alpha": _P, "dpo_beta": _P,
}
FALLBACKS_BEFORE = {"policy_lr": "lr", "value_lr": "lr", "torso_lr": "lr",
                    "critic_lambda": "gae_lambda", "value_clip_eps": "clip_eps",
                    "value_activation": "activation"}
KNOBS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "knobs.md"


@pytest.fixture(autouse=True)
def keep_xla_flags(monkeypatch):
    """`cli.main` sets XLA_FLAGS; keep that from leaking into other tests."""
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))


def test_hparams_is_exactly_the_declared_hparam_knobs_in_the_old_order():
    assert HPARAM_FIELDS == HPARAMS_BEFORE
    assert tuple(f.name for f in dataclasses.fields(HParams)) == HPARAMS_BEFORE
    assert {name for name, k in KNOBS.items() if k.hparam} == set(HPARAMS_BEFORE)


def test_traced_sweepable_and_static_key_sets_equal_the_old_lists():
    assert set(TRACED_FIELDS) == set(TRACED_BEFORE)
    assert experiment.TRACED_CONFIG_FIELDS == TRACED_FIELDS
    with pytest.raises(ValueError, match="sweepable fields are") as info:
        sweep(PPOConfig(), num_envs=[4, 8])
    assert str(info.value).endswith(str(sorted(TRACED_BEFORE)))


def test_ranges_equal_the_old_table():
    for name, (lo, hi, lo_inc, hi_inc) in RANGES_BEFORE.items():
        assert KNOBS[name].allowed == knobs.Interval(lo, hi, lo_inc, hi_inc), name


def test_fallbacks_are_declared_and_followed():
    assert {n: k.fallback for n, k in KNOBS.items() if k.fallback} == FALLBACKS_BEFORE
    hp = PPOConfig(lr=1e-3, gae_lambda=0.8, clip_eps=0.3, value_lr=5e-4).hparams()
    assert [float(hp.policy_lr), float(hp.torso_lr), float(hp.value_lr)] == pytest.approx(
        [1e-3, 1e-3, 5e-4])
    assert float(hp.critic_lambda) == pytest.approx(0.8)
    assert float(hp.value_clip_eps) == pytest.approx(0.3)
    assert PPOConfig(activation="relu").resolved("value_activation") == "relu"


def test_every_field_is_declared_with_a_doc():
    assert tuple(KNOBS) == config.CONFIG_FIELDS
    for name, declaration in KNOBS.items():
        assert declaration.doc and "|" not in declaration.doc, name
        assert declaration.traced or not declaration.hparam, name
        declaration.check(name, getattr(PPOConfig(), name))  # defaults are allowed


def test_a_field_without_a_declaration_is_refused():
    @dataclasses.dataclass
    class Undeclared:
        a: int = knobs.knob(1, "declared", knobs.Integer())
        b: int = 2

    with pytest.raises(TypeError, match=r"Undeclared\.b"):
        knobs.declared(Undeclared)
    with pytest.raises(TypeError, match="traced=True"):
        knobs.knob(1.0, "static but in HParams", knobs.Interval(), hparam=True)


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("hl_gauss_bins", 1, "an integer >= 2"),
    ("value_pretrain_updates", -1, "an integer >= 0"),
    ("grad_clip", "per_layer", "one of ['global', 'per_head']"),
    ("lr", -1, "a number in (0, inf)"),
    ("diagnostics", "yes", "True or False"),
])
def test_errors_describe_the_declared_allowed_values(field, value, allowed):
    with pytest.raises(ValueError) as info:
        PPOConfig(**{field: value})
    assert str(info.value) == f"{field}={value!r} is invalid: allowed is {allowed}"


def test_static_key_ignores_a_traced_knob_and_keeps_a_static_one():
    base = PPOConfig()
    for name in TRACED_BEFORE:
        changed = base.replace(**{name: 0.5 if name != "log_std_init" else -1.0})
        assert experiment.static_key(changed) == experiment.static_key(base), name
    for changes in ({"num_envs": 8}, {"value_loss": "mse"}, {"obs_norm": True},
                    {"hl_gauss_bins": 11}, {"value_hidden": (32,)}):
        assert experiment.static_key(base.replace(**changes)) != experiment.static_key(base)


def test_config_command_lists_every_knob(capsys):
    assert cli.main(["config"]) == 0
    out = capsys.readouterr().out
    for name in config.CONFIG_FIELDS:
        assert re.search(rf"^{name} ", out, re.MULTILINE), name
    assert re.search(r"^gamma +0\.99 +traced +a number in \(0, 1\]$", out, re.MULTILINE)
    assert re.search(r"^value_loss +clipped +static +one of \['clipped'", out, re.MULTILINE)


def test_config_markdown_has_a_row_per_knob(capsys):
    assert cli.main(["config", "--markdown"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(config.CONFIG_FIELDS)
    assert "| `critic_lambda` | `None (= gae_lambda)` |" in out
    assert "| `num_envs` | `4` | an integer >= 1 | static |" in out


def test_manual_knob_table_is_the_generated_one(capsys):
    text = KNOBS_PAGE.read_text()
    (table,) = re.findall(r"<!-- knobs -->\n(.*?)\n<!-- /knobs -->", text, re.DOTALL)
    assert cli.main(["config", "--markdown"]) == 0
    assert table == capsys.readouterr().out.rstrip("\n") == knobs.markdown(PPOConfig), (
        "regenerate with `make docs`")
