"""`jppo` end to end on a tiny budget: compare writes the statistics, plots and
diagnosis; the analysis commands re-read a run directory; errors name the field."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from jppo import cli
from jppo.runs import results

EXPERIMENT = textwrap.dedent("""
    name = "tiny-compare"
    envs = ["CartPole-v1"]
    seeds = 3
    total_timesteps = 1536
    chunk_updates = 3
    baseline = "standard"

    [config]
    num_envs = 4
    num_steps = 64

    [variants.standard]
    [variants.low_vf]
    vf_coef = 0.1
""")


@pytest.fixture(autouse=True)
def keep_xla_flags(monkeypatch):
    """`cli.main` asks for one CPU device per core through XLA_FLAGS; keep that
    from leaking into later subprocesses of the suite."""
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    file = folder / "tiny.toml"
    file.write_text(EXPERIMENT)
    out = folder / "run"
    done = subprocess.run(
        [sys.executable, "-m", "jppo.cli", "compare", str(file), "--out", str(out),
         "--set", "low_vf.activation=relu", "--progress", "lines"],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return file, out, done.stdout


def test_compare_writes_the_whole_run_directory(compared):
    _, out, stdout = compared
    assert "steps/seed" in stdout and "env-steps/s" in stdout  # the live view
    assert "| low_vf" in stdout and "IQM" in stdout  # the statistics table
    for name in ("run.json", "summary.md", "summary.csv", "diagnosis.md",
                 "plots/learning_curves.png", "plots/diagnostics_CartPole-v1.png"):
        assert (out / name).is_file(), name
    frame = results.read_metrics(out)
    assert set(frame["variant"]) == {"standard", "low_vf"} and frame["seed"].nunique() == 3
    assert results.read_run_info(out)["variants"]["low_vf"]["config"]["activation"] == "relu"
    table = pd.read_csv(out / "summary.csv")
    assert list(table["variant"]) == ["standard", "low_vf"]


def test_analysis_commands_reread_the_run(compared, capsys):
    _, out, _ = compared
    (out / "diagnosis.md").unlink()
    assert cli.main(["diagnose", str(out)]) == 0
    assert (out / "diagnosis.md").is_file()
    assert cli.main(["summary", str(out), "--reps", "200"]) == 0
    assert "low_vf" in capsys.readouterr().out
    assert cli.main(["plot", str(out)]) == 0
    assert "learning_curves.png" in capsys.readouterr().out


def test_resuming_a_finished_run_recomputes_nothing(compared, capsys):
    file, out, _ = compared
    assert cli.main(["compare", str(file), "--out", str(out), "--set", "low_vf.activation=relu",
                     "--resume", "--progress", "off"]) == 0
    assert "compile 0.0 s, run 0.0 s" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--set", "num_envz=3"], "unknown PPOConfig field 'num_envz'"),
    (["train", "--env", "CartPol-v1"], "unknown environment 'CartPol-v1'"),
    (["train", "--variant", "fast"], "unknown variant 'fast'"),
    (["train", "--total-timesteps", "100"], "total_timesteps=100 is invalid"),
    (["train", "--total-timesteps", "1500.5"], "total_timesteps=1500.5 is invalid"),
    (["compare", "missing.toml"], "does not exist"),
    (["diagnose", "not-a-run"], "not-a-run"),
])
def test_errors_name_the_bad_input_before_compiling(argv, message, capsys, tmp_path):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_envs_lists_gymnax_ids(capsys):
    assert cli.main(["envs"]) == 0
    assert "CartPole-v1" in capsys.readouterr().out.split()


FIX_ERRORS = [
    (["fix", "nowhere"], "run='nowhere' is invalid: allowed is a jppo run directory"),
    (["fix", "{run}", "--seeds", "0"], "seeds=0 is invalid: allowed is a whole number >= 2"),
    (["fix", "{run}", "--seeds", "1"], "seeds=1 is invalid: allowed is a whole number >= 2"),
    (["fix", "{run}", "--budget", "1.5"], "budget=1.5 is invalid: allowed is a whole number"),
    (["fix", "{run}"], "records no experiment"),
    (["fix", "{run}", "--top", "0"], "top=0 is invalid: allowed is a whole number >= 1"),
]


@pytest.mark.parametrize("argv, message", FIX_ERRORS)
def test_fix_refuses_bad_input_in_one_line(argv, message, capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    assert cli.main([a.format(run=run) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jppo: error: ") and message in err and err.count("\n") == 1
    assert not (run / "fix").exists()


def test_fix_of_other_trainers_logs_prints_their_names_and_runs_nothing(capsys):
    fixtures = Path(__file__).resolve().parents[2] / "experiments/external_logs/fixtures"
    before = sorted(p.name for p in os.scandir(f"{fixtures}/cleanrl/cleanrl_tiny_lr"))
    assert cli.main(["fix", f"{fixtures}/cleanrl/cleanrl_tiny_lr"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cleanrl_tiny_lr (CleanRL): ") and "try: --no-clip-vloss" in out
    assert "nothing was run" in out
    assert sorted(p.name for p in os.scandir(f"{fixtures}/cleanrl/cleanrl_tiny_lr")) == before
    assert cli.main(["fix", f"{fixtures}/sb3/sb3_vf_coef_20"]) == 0
    out = capsys.readouterr().out
    assert "try: vf_coef=0.1" in out and "try: max_grad_norm=2.0" in out


def test_fix_runs_the_plan_next_to_the_original_and_reports(tmp_path, capsys):
    run = tmp_path / "stalled"
    tiny = ["--set", "num_envs=4", "--set", "num_steps=16", "--set", "num_minibatches=2",
            "--set", "update_epochs=1"]
    assert cli.main(["train", "--seeds", "2", "--total-timesteps", "1280", "--set",
                     "clip_eps=1e-4", *tiny, "--out", str(run), "--progress", "off"]) == 0
    capsys.readouterr()
    assert cli.main(["fix", str(run), "--dry-run", "--seeds", "2"]) == 0
    dry = capsys.readouterr().out
    assert "| clip_eps-0.2 | clip_eps=0.2 | policy_stall |" in dry
    assert not (run / "fix" / "run").exists()
    assert cli.main(["fix", str(run), "--seeds", "2", "--budget", "640", "--top", "1",
                     "--progress", "off"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("jppo fix: 1 candidate(s) and the original x 2 seeds x 640 steps")
    assert "| original | CartPole-v1 | (the run's config) |" in out
    assert "| clip_eps-0.2 | CartPole-v1 | clip_eps=0.2 |" in out
    assert "shared with original" in out
    assert "recommended: clip_eps=0.2" in out or "no candidate helps" in out
    assert f"report: {run / 'fix' / 'report.md'}" in out
