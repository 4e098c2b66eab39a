"""Variants and diagnosis rules registered from a user's module, without editing
jppo: used from Python, from a TOML experiment (`imports`), from `--set`, in a
compiled run, and by `examples/03_your_own_variant.py`."""

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import jppo
from jppo import cli, envs
from jppo.analysis import diagnose
from jppo.analysis.diagnose.rules import REGISTERED_RULES
from jppo.core import strategies
from jppo.runs import experiment

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count()

USER_MODULE = '''
import jax.numpy as jnp
import numpy as np
import jppo
from jppo.core import strategies
from jppo.analysis.diagnose import Verdict


@jppo.register_value_loss("{loss}", squared_error=True)
def half_squared_error(v):
    return 0.5 * jnp.mean((v.pred - v.target) ** 2)


jppo.register_advantage_norm("{norm}", minibatch=lambda adv, hp: adv - jnp.mean(adv))


def _check(cell):
    loss = cell.get("value_loss")
    evaluated = cell.window & np.isfinite(loss)
    return Verdict(np.all(loss > 1.0, axis=1), evaluated, "value_loss", loss)


jppo.register_rule(jppo.Rule(
    name="{rule}", title="Large value loss", description="the value loss stays above 1",
    thresholds={{"limit": 1.0}}, condition_template="value_loss > {{limit:g}}",
    threshold_template="value_loss > {{limit:g}} on every update", metrics=("value_loss",),
    remedies=(jppo.Remedy({{"value_loss": "huber"}}, "linear tails"),), check=_check,
    applies=lambda config: strategies.of(config).value_loss.squared_error))
'''


@pytest.fixture
def user_module(tmp_path):
    """A module in its own folder that registers a value loss, an advantage
    normalization and a rule; everything it registered is removed afterwards."""
    n = next(_ids)
    names = {"module": f"user_variants_{n}", "loss": f"half_se_{n}", "norm": f"center_{n}",
             "rule": f"large_value_loss_{n}"}
    (tmp_path / f"{names['module']}.py").write_text(USER_MODULE.format(**names))
    yield names, tmp_path
    for registry, key in ((strategies.VALUE_LOSSES, "loss"), (strategies.ADVANTAGE_NORMS, "norm"),
                          (REGISTERED_RULES, "rule")):
        if names[key] in registry:
            registry.unregister(names[key])
    sys.modules.pop(names["module"], None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_a_registered_loss_is_a_valid_config_value_from_python(user_module):
    names, folder = user_module
    with pytest.raises(ValueError, match=rf"^value_loss='{names['loss']}' is invalid"):
        jppo.PPOConfig(value_loss=names["loss"])
    experiment.import_modules([names["module"]], folder)
    config = jppo.PPOConfig(value_loss=names["loss"], advantage_norm=names["norm"])
    assert strategies.of(config).value_loss is strategies.VALUE_LOSSES.get(names["loss"])
    typo = names["loss"].replace("half", "hlaf")
    with pytest.raises(ValueError, match=rf"^value_loss='{typo}' is invalid: allowed is one of "
                                         rf"\['clipped', 'mse', 'huber', 'hl_gauss', .*"
                                         rf"'{names['loss']}'\]"):
        jppo.PPOConfig(value_loss=typo)


def test_a_registered_loss_from_a_toml_file_with_imports_and_from_set(user_module):
    names, folder = user_module
    path = folder / "exp.toml"
    path.write_text(textwrap.dedent(f'''
        imports = ["{names['module']}"]
        envs = ["CartPole-v1"]
        [variants.standard]
        [variants.mine]
        value_loss = "{names['loss']}"
    '''))
    exp = experiment.load(path)
    assert exp.imports == (names["module"],)
    assert exp.variant_config("mine").value_loss == names["loss"]
    overridden = experiment.load(path, [f"value_loss={names['loss']}",
                                        f"advantage_norm={names['norm']}"])
    assert overridden.variant_config("standard").value_loss == names["loss"]
    assert overridden.variant_config("standard").advantage_norm == names["norm"]
    with pytest.raises(ValueError, match=rf"value_loss='typo' is invalid: allowed is one of "
                                         rf"\[.*'{names['loss']}'\]"):
        experiment.load(path, ["value_loss=typo"])


def test_imports_from_the_command_line_and_jppo_config(user_module, capsys, monkeypatch):
    names, folder = user_module
    monkeypatch.chdir(folder)  # found in the working directory
    assert cli.main(["config", "--imports", names["module"]]) == 0
    assert f"'{names['loss']}'" in capsys.readouterr().out
    exp = experiment.default_experiment([f"value_loss={names['loss']}"])
    assert exp.variant_config(exp.baseline_variant).value_loss == names["loss"]
    with pytest.raises(ValueError, match="imports: module 'no_such_module_x' cannot be imported"):
        experiment.default_experiment(imports=("no_such_module_x",))


def test_a_registered_rule_joins_every_diagnosis_where_it_applies(user_module):
    names, folder = user_module
    experiment.import_modules([names["module"]], folder)
    assert diagnose.registered_rules()[-1].name == names["rule"]
    frame = _handmade_frame(value_loss=5.0)
    rule = names["rule"]
    info = {"variants": {"v": {"overrides": {"value_loss": names["loss"]}}}}
    (mine,) = [f for f in diagnose.diagnose_frame(frame, info) if f.rule == rule]
    assert mine.fired
    info = {"variants": {"v": {"overrides": {"value_loss": "huber"}}}}
    (huber,) = [f for f in diagnose.diagnose_frame(frame, info) if f.rule == rule]
    assert not huber.fired  # a huber loss is no squared error: the rule does not apply


def _handmade_frame(**metrics):
    from jppo.runs import results

    arrays = {name: np.full((2, 20), value, np.float64) for name, value in metrics.items()}
    return results.metrics_table(arrays, variant="v", env="E", seeds=range(2), first_update=0,
                                 steps_per_update=100).to_pandas()


def test_a_registered_loss_runs_compiled_exactly_like_its_built_in_twin(user_module):
    """The user's 0.5 E[(V - R)^2] and the built-in mse train to the same numbers."""
    names, folder = user_module
    experiment.import_modules([names["module"]], folder)
    env, env_params = envs.make("CartPole-v1")
    tiny = dict(num_envs=2, num_steps=8, total_timesteps=32, update_epochs=1, num_minibatches=2)
    key = jax.random.PRNGKey(3)
    mine = jax.jit(jppo.make_train(jppo.PPOConfig(**tiny, value_loss=names["loss"]), env,
                                   env_params))(key)
    mse = jax.jit(jppo.make_train(jppo.PPOConfig(**tiny, value_loss="mse"), env,
                                  env_params))(key)
    for name in ("value_loss", "total_loss", "explained_variance"):
        np.testing.assert_allclose(mine.metrics[name], mse.metrics[name], rtol=1e-6,
                                   err_msg=name)


def test_custom_variant_example_runs_on_a_tiny_budget():
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "03_your_own_variant.py"), "--total-timesteps",
         "64", "--seeds", "2", "--num-envs", "2", "--num-steps", "16"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "log_cosh" in done.stdout and "standard" in done.stdout
