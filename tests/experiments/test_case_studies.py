"""The case studies (experiments/case_studies/NAME.toml) and their runner.

Every case file found is checked: it resolves the way `jppo compare` resolves it
(every variant's config valid, before any compile), runs >= 16 seeds and has its
NAME/README.md; and a smoke run on a tiny budget (2 seeds, one or two updates,
4 envs x 8 steps where every variant stays valid with that) finishes with finite
losses and writes a diagnosis.

Compiling dominates a smoke run: about 20 s of one core per distinct static
config, so all variants of five cases would take minutes. By default each case
therefore smoke-runs the compiled program of its baseline (the reproduction):
the baseline and every variant that differs from it only in traced knobs, which
run batched with it for free, without the periodic evaluation (its own compile).
`JPPO_CASE_SMOKE=full` smoke-runs every variant of every case, evaluation
included (minutes; before committing a case). The runner's copy step and
`--refresh` are tested on synthetic run directories.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from analysis.test_plots import make_run  # tests/analysis (tests/ is on sys.path)

from experiments.case_studies import run_all
from jppo.analysis import diagnose
from jppo.runs import experiment, results
from jppo.runs.runner import run_experiment

CASES = run_all.case_files()
MIN_SEEDS = 16
FULL_SMOKE = os.environ.get("JPPO_CASE_SMOKE") == "full"
# Tried in order: the first that keeps every variant valid is the smoke run's shape.
SMOKE_SHAPES = (("num_envs=4", "num_steps=8"), ("num_steps=8",), ())
NO_EVALUATION = () if FULL_SMOKE else ("eval_every=0",)
SMOKE_UPDATES = 2
# Losses and statistics of every update: NaN or inf here means the step broke.
FINITE_METRICS = ("value_loss", "entropy", "approx_kl", "explained_variance", "advantage_std")


def case_params():
    return [pytest.param(path, id=name) for name, path in CASES.items()] or [
        pytest.param(None, marks=pytest.mark.skip(
            reason="no experiments/case_studies/*.toml yet: the case-study checks run once "
                   "one exists"))]


@pytest.mark.parametrize("case_file", case_params())
def test_case_resolves_like_jppo_compare(case_file):
    exp = experiment.load(case_file)  # what `jppo compare` validates before compiling
    assert exp.seeds >= MIN_SEEDS, f"{case_file.name}: seeds={exp.seeds}, at least {MIN_SEEDS}"
    for variant in exp.variants:
        exp.variant_config(variant)
    readme = case_file.with_suffix("") / "README.md"
    assert readme.is_file(), f"{case_file.name} has no {readme.relative_to(run_all.ROOT)}"
    assert readme.read_text().strip()


def smoke_experiment(case_file) -> experiment.Experiment:
    """The case on a tiny budget, in the first of SMOKE_SHAPES valid for every variant."""
    for shape in SMOKE_SHAPES:
        shape = (*shape, *NO_EVALUATION)
        try:
            exp = experiment.load(case_file, shape, seeds=2)
        except ValueError:
            continue
        rollout = max(exp.variant_config(v).batch_size for v in exp.variants)
        return experiment.load(case_file, shape, seeds=2, total_timesteps=SMOKE_UPDATES * rollout,
                               chunk_updates=SMOKE_UPDATES)
    raise AssertionError(f"{case_file.name}: no smoke shape keeps every variant valid")


def smoke_variants(exp: experiment.Experiment) -> list[str]:
    """The baseline and the variants compiled with it (every variant if FULL_SMOKE)."""
    key = experiment.static_key(exp.variant_config(exp.baseline_variant))
    return [v for v in exp.variants
            if FULL_SMOKE or experiment.static_key(exp.variant_config(v)) == key]


@pytest.mark.parametrize("case_file", case_params())
def test_case_smoke_run_is_finite_and_diagnosed(case_file, tmp_path):
    exp = smoke_experiment(case_file)
    chosen = smoke_variants(exp)
    run_experiment(exp.select(variants=chosen), tmp_path, progress="off")
    frame = results.read_metrics(tmp_path)
    assert sorted(frame["variant"].unique()) == sorted(chosen)
    for (variant, env), rows in frame.groupby(["variant", "env"]):
        assert rows["update"].nunique() >= 1
        for metric in FINITE_METRICS:
            if metric in rows:
                values = rows[metric].to_numpy(np.float64)
                assert np.isfinite(values).all(), f"{variant} / {env}: {metric} = {values}"
    findings = diagnose.diagnose_run(tmp_path)
    assert isinstance(findings, list)
    assert (tmp_path / "diagnosis.md").read_text().strip()


# ------------------------------------------------------------------ the runner


REPS = 200  # bootstrap resamples of the test summaries: the statistics are not under test


@pytest.fixture(scope="module")
def rendered_run(tmp_path_factory):
    """A synthetic run directory with metrics, run.json, summary, diagnosis and plots."""
    run_dir = tmp_path_factory.mktemp("finished")
    make_run(run_dir, ["report", "fix"], ["CartPole-v1"], num_updates=12)
    run_all.render(run_dir, reps=REPS)
    return run_dir


@pytest.fixture
def finished_run(rendered_run, tmp_path):
    """A fresh copy of `rendered_run` for one test to change."""
    return Path(shutil.copytree(rendered_run, tmp_path / "run"))


def test_copy_outputs_copies_every_output_and_leaves_the_readme(finished_run, tmp_path):
    run_dir = finished_run
    dest = tmp_path / "cases" / "case"
    dest.mkdir(parents=True)
    (dest / "README.md").write_text("the write-up")
    (dest / "diagnostics_OldEnv.png").write_bytes(b"stale")  # an env the case no longer has
    (dest / "notes.txt").write_text("not an output")
    copied = run_all.copy_outputs(run_dir, dest)
    names = sorted(path.name for path in copied)
    assert names == sorted(["summary.md", "summary.csv", "diagnosis.md",
                            "learning_curves.png", "diagnostics_CartPole-v1.png"])
    for name in names:
        source = run_dir / name if name.endswith((".md", ".csv")) else run_dir / "plots" / name
        assert (dest / name).read_bytes() == source.read_bytes()
    assert (dest / "README.md").read_text() == "the write-up"
    assert (dest / "notes.txt").exists() and not (dest / "diagnostics_OldEnv.png").exists()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_copy_outputs_refuses_an_unfinished_run(finished_run, tmp_path):
    run_dir = finished_run
    (run_dir / "diagnosis.md").unlink()
    dest = tmp_path / "case"
    with pytest.raises(run_all.CaseFailed, match=r"diagnosis\.md"):
        run_all.copy_outputs(run_dir, dest)
    assert not dest.exists()


def test_refresh_rewrites_outputs_from_the_run_dir(finished_run, tmp_path, capsys):
    out, cases_dir = tmp_path / "runs", tmp_path / "cases"
    out.mkdir()
    finished_run.rename(out / "alpha")
    (cases_dir / "alpha").mkdir(parents=True)
    (cases_dir / "alpha" / "README.md").write_text("alpha")
    for name in ("summary.md", "diagnosis.md", "plots/learning_curves.png"):
        (out / "alpha" / name).write_text("outdated")  # as if rules and plots changed since
    cases = {"alpha": cases_dir / "alpha.toml", "missing": cases_dir / "missing.toml"}
    code = run_all.run_all(cases, out, refresh=True, cases_dir=cases_dir, reps=REPS)
    assert code == 1  # "missing" has no run directory: reported, the others still copied
    for name in ("summary.md", "diagnosis.md"):
        text = (cases_dir / "alpha" / name).read_text()
        assert text == (out / "alpha" / name).read_text() and text != "outdated"
    assert "report" in (cases_dir / "alpha" / "summary.md").read_text()
    png = (cases_dir / "alpha" / "learning_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert (cases_dir / "alpha" / "README.md").read_text() == "alpha"
    captured = capsys.readouterr()
    assert "alpha: re-rendered in" in captured.out and "total" in captured.out
    assert "missing: failed" in captured.err and "run.json missing" in captured.err
    assert not (cases_dir / "missing").exists()


def test_only_names_known_cases(tmp_path):
    (tmp_path / "a.toml").write_text("")
    (tmp_path / "b.toml").write_text("")
    cases = run_all.case_files(tmp_path)
    assert list(cases) == ["a", "b"]
    assert list(run_all.select(cases, ["b"])) == ["b"]
    assert list(run_all.select(cases, [])) == ["a", "b"]
    with pytest.raises(ValueError, match=r"--only 'c'.*allowed: a, b"):
        run_all.select(cases, ["c"])


def test_smoke_budget_is_one_or_two_updates_for_every_variant(tmp_path):
    """The smoke shape falls back when 4 envs cannot make a recurrent variant's minibatches."""
    case = tmp_path / "case.toml"
    case.write_text('envs = ["CartPole-v1"]\nseeds = 16\n'
                    "[config]\nnum_envs = 16\nnum_minibatches = 8\npolicy_rnn = 8\n"
                    "[variants.a]\n[variants.b]\nnum_steps = 32\n")
    exp = smoke_experiment(case)
    assert exp.seeds == 2 and exp.chunk_updates == SMOKE_UPDATES
    for variant in exp.variants:
        config = exp.variant_config(variant)
        assert (config.num_envs, config.num_steps) == (16, 8)
        assert 1 <= config.num_updates <= SMOKE_UPDATES
    small = tmp_path / "small.toml"
    small.write_text('envs = ["CartPole-v1"]\nseeds = 16\n[variants.a]\n[variants.b]\n'
                     "num_envs = 32\nnum_steps = 64\n")
    for variant in (exp := smoke_experiment(small)).variants:
        config = exp.variant_config(variant)
        assert (config.num_envs, config.num_steps, config.num_updates) == (4, 8, SMOKE_UPDATES)


def test_smoke_variants_are_the_baselines_program(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text('envs = ["CartPole-v1"]\nseeds = 16\nbaseline = "report"\n'
                    "[variants.fix]\nvalue_loss = 'mse'\n[variants.report]\n"
                    "[variants.report_vf]\nvf_coef = 0.05\n")  # vf_coef is traced
    exp = smoke_experiment(case)
    assert smoke_variants(exp) == (list(exp.variants) if FULL_SMOKE else ["report", "report_vf"])


def test_an_interrupt_keeps_the_finished_cases(rendered_run, tmp_path, monkeypatch, capsys):
    out, cases_dir = tmp_path / "runs", tmp_path / "cases"

    def train(case_file, run_dir, *, resume):
        if case_file.stem == "second":
            raise KeyboardInterrupt
        shutil.copytree(rendered_run, run_dir)

    monkeypatch.setattr(run_all, "train", train)
    cases = {name: cases_dir / f"{name}.toml" for name in ("first", "second", "third")}
    assert run_all.run_all(cases, out, cases_dir=cases_dir) == 130
    assert (cases_dir / "first" / "summary.md").read_bytes() == \
        (rendered_run / "summary.md").read_bytes()
    assert not (cases_dir / "second").exists() and not (out / "third").exists()
    assert "interrupted during second; finished and copied: first" in capsys.readouterr().err


def test_train_replaces_a_run_or_resumes_it(tmp_path, monkeypatch):
    commands, codes = [], [0, 0, 3, 130]

    class FakeProcess:
        """Stands in for `jppo compare`: records its command, exits with the next code."""

        def __init__(self, command, cwd):
            assert cwd == run_all.ROOT
            commands.append(command)

        def wait(self, timeout=None):
            return codes[len(commands) - 1]

    monkeypatch.setattr(run_all.subprocess, "Popen", FakeProcess)
    case, run_dir = tmp_path / "case.toml", tmp_path / "case"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{}")
    run_all.train(case, run_dir, resume=True)
    assert commands[-1][-3:] == ["--out", str(run_dir), "--resume"] and run_dir.exists()
    run_all.train(case, run_dir, resume=False)
    assert commands[-1][1:5] == ["-m", "jppo.cli", "compare", str(case)]
    assert commands[-1][-1] == str(run_dir) and not run_dir.exists()
    with pytest.raises(run_all.CaseFailed, match="status 3"):
        run_all.train(case, run_dir, resume=False)
    with pytest.raises(KeyboardInterrupt):
        run_all.train(case, run_dir, resume=False)


def test_fix_verification_agrees_only_on_a_recommended_change_of_the_best_fix():
    from experiments.case_studies import verify_fix

    best = ("reward_scaling=True", "value_lr=0.001")
    latent = ("recommended for the latent findings: reward_scaling=True (reward_scaling-"
              "true): removes critic_collapse and keeps the return: P(> original) 0.50")
    assert verify_fix.agrees(latent, best) == "yes"
    assert verify_fix.agrees("recommended: value_lr=0.00025 (value_lr-0.00025): removes "
                             "critic_collapse", best) == "no"
    # a change named only in the reason, after the candidate's name, is no agreement
    assert verify_fix.agrees("recommended: clip_eps=0.2 (x): removes r; reward_scaling=True",
                             best) == "no"
    assert verify_fix.agrees("no candidate helps: the best, reward_scaling=True (r)",
                             best) == "no (no candidate recommended)"
    assert verify_fix.agrees("nothing to fix: the diagnosis found no failure",
                             best) == "no (nothing to fix)"
    assert set(verify_fix.BEST_FIX) == set(run_all.case_files())  # every case study
