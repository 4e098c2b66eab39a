"""The modern-variants study files: each loads as a valid experiment, its committed
summary holds exactly its variants, and each case-study file runs its case study's
setting (a drifted [config], env or budget would compare the new variants with a
different failure)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from jppo.runs import experiment

ROOT = Path(__file__).resolve().parents[2] / "experiments"
STUDY = ROOT / "modern_variants"
FILES = sorted(STUDY.glob("*/*.toml"))
CASES = sorted((STUDY / "case_studies").glob("*.toml"))
SETTING = ("envs", "config", "env_params", "seeds", "total_timesteps", "reward_scale",
           "chunk_updates")


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_study_file_loads_and_its_summary_holds_its_variants(path):
    study = experiment.load(path)
    assert study.baseline in study.variants
    summary = path.parent / path.stem / "summary.csv"
    if not summary.exists():  # objectives keep theirs beside the file
        summary = path.parent / "summary.csv"
    with summary.open() as file:
        rows = list(csv.DictReader(file))
    assert {r["variant"] for r in rows} == set(study.variants)
    assert {r["env"] for r in rows} == set(study.envs)


def test_the_case_study_files_are_the_whole_set_in_the_make_recipe():
    names = {p.stem for p in CASES}
    assert names == {p.stem for p in (ROOT / "case_studies").glob("*.toml")}
    call = "$(call run_study,experiments/modern_variants/case_studies,"
    (line,) = [x for x in (ROOT.parent / "Makefile").read_text().splitlines() if call in x]
    assert set(line.split(call)[1].rstrip(")").split()) == names


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_each_case_study_file_runs_its_case_studys_setting(path):
    study, case = experiment.load(path), experiment.load(ROOT / "case_studies" / path.name)
    for field in SETTING:
        assert getattr(study, field) == getattr(case, field), field
    # the rows named after the case study's variants are the case study's
    for name, changes in study.variants.items():
        if name in case.variants:
            assert changes == case.variants[name], name
