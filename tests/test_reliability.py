"""Reliability, round two: each case ends in one line naming the field, the bad
value and what is allowed (or a note where a setting cannot act), before the
run directory exists and before anything compiles."""

import json
import textwrap

import pytest

from jppo import cli
from jppo.runs import experiment

FILE = textwrap.dedent("""
    envs = ["CartPole-v1"]
    seeds = 2
    total_timesteps = 1024
    [config]
    num_envs = 4
    num_steps = 16
    num_minibatches = 2
""")


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
