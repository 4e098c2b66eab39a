"""The throughput benchmark's parent leaves the accelerator's memory to the
processes that measure: it allocates on demand, they get the user's setting."""

import os
import subprocess
import sys

from jppo.bench import children


def test_children_get_the_users_setting_back(monkeypatch):
    monkeypatch.delenv(children.SAVED, raising=False)
    monkeypatch.setenv(children.PREALLOCATE, "true")
    children.leave_accelerator_memory_to_children()
    assert os.environ[children.PREALLOCATE] == "false"
    env = children.child_environ()
    assert env[children.PREALLOCATE] == "true" and children.SAVED not in env


def test_an_unset_preallocation_stays_unset_for_children(monkeypatch):
    monkeypatch.delenv(children.SAVED, raising=False)
    monkeypatch.delenv(children.PREALLOCATE, raising=False)
    children.leave_accelerator_memory_to_children()
    children.leave_accelerator_memory_to_children()  # twice: the user's setting is kept
    assert os.environ[children.PREALLOCATE] == "false"
    assert children.PREALLOCATE not in children.child_environ()


def test_only_the_spawning_mode_gives_memory_away():
    assert children.spawns_children(["--seeds", "1", "64"])
    for flag in children.PARENT_ONLY_FLAGS:
        assert not children.spawns_children(["--seeds", "64", flag])


def test_the_parent_is_set_before_jax_starts():
    """`python -m jppo.bench` imports gymnax (which starts JAX) after the setting."""
    code = ("import sys, runpy; sys.argv = ['jppo.bench', '--seeds', '1', '--help'];\n"
            "try:\n    runpy.run_module('jppo.bench', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "import os; print(os.environ.get('XLA_PYTHON_CLIENT_PREALLOCATE'))")
    env = {k: v for k, v in os.environ.items()
           if k not in (children.PREALLOCATE, children.SAVED)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out.strip().splitlines()[-1] == "false"


def test_the_typed_options_agree_with_the_flag_check():
    """`jppo bench` decides from its parsed options, `python -m jppo.bench` from argv
    before parsing: the same mode either way."""
    from jppo.bench.options import parse

    modes = {"--one": ["--one", "2"], "--vs-reference": ["--vs-reference"],
             "--profile": ["--profile"], "--init-check": ["--init-check"],
             "--study": ["--study", "4"], "--eval-cost": ["--eval-cost"]}
    assert set(modes) == set(children.PARENT_ONLY_FLAGS)
    for argv in [["--seeds", "1", "64"], *modes.values()]:
        assert parse(["--seeds", "64", *argv]).spawns_children() == \
            children.spawns_children(["--seeds", "64", *argv]), argv
