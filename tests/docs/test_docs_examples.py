"""The manual cannot drift from the code: every fenced example the README or a manual
page marks `<!-- runnable -->` runs, on a tiny budget (tests/runnable_blocks.py), and
the generated reference pages (knobs, metrics, diagnosis rules) are current.

A page's blocks run in page order in one scratch folder, consecutive Python blocks as
one program (a later block may use an earlier one's names, as a reader would), shell
blocks with this environment's `jppo` on PATH; `experiments/` and `examples/` are linked into
the folder so the paths the pages use resolve."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from runnable_blocks import TINY_SEEDS, TINY_STEPS, markdown_files, runnable_blocks, shrink_budget

ROOT = Path(__file__).resolve().parents[2]
PAGES = [p for p in markdown_files(ROOT) if runnable_blocks(p.read_text())]


def _run(language: str, code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(cwd)}
    argv = ([sys.executable, "-c", code] if language == "python"
            else ["bash", "-euo", "pipefail", "-c", code])
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _groups(blocks):
    """The blocks in page order, consecutive Python blocks joined into one program."""
    groups: list[tuple[str, str, int]] = []
    for block in blocks:
        code = shrink_budget(block.code)
        if block.language == "python" and groups and groups[-1][0] == "python":
            groups[-1] = ("python", groups[-1][1] + "\n" + code, groups[-1][2])
        else:
            groups.append((block.language, code, block.line))
    return groups


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_runnable_examples_run(page, tmp_path):
    for folder in ("experiments", "examples"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    for language, code, line in _groups(runnable_blocks(page.read_text())):
        done = _run(language, code, tmp_path)
        assert done.returncode == 0, f"{page.name}:{line}\n{done.stdout}\n{done.stderr}"


def test_the_manual_marks_examples_runnable():
    """The README and the getting-started page (at least) carry runnable examples."""
    names = {p.name for p in PAGES}
    assert {"README.md", "getting-started.md", "python.md"} <= names


def test_shrink_budget_rewrites_every_budget_form():
    code = ('jppo train --seeds 16 --total-timesteps 2e5\n'
            'jppo.run(jppo.PPOConfig(total_timesteps=500_000), "CartPole-v1", num_seeds=64)\n'
            'train(jax.random.split(jax.random.PRNGKey(0), 64))\n'
            'jppo.load_experiment("x.toml", ["seeds=4", "total_timesteps=100_000"])\n')
    assert shrink_budget(code) == (
        f'jppo train --seeds {TINY_SEEDS} --total-timesteps {TINY_STEPS}\n'
        f'jppo.run(jppo.PPOConfig(total_timesteps={TINY_STEPS}), "CartPole-v1", '
        f'num_seeds={TINY_SEEDS})\n'
        f'train(jax.random.split(jax.random.PRNGKey(0), {TINY_SEEDS}))\n'
        f'jppo.load_experiment("x.toml", ["seeds={TINY_SEEDS}", '
        f'"total_timesteps={TINY_STEPS}"])\n')


def test_runnable_blocks_are_found_by_their_marker_only():
    text = ("intro\n<!-- runnable -->\n```bash\necho a\n```\n\n```bash\necho b\n```\n"
            "<!-- runnable -->\n```python title=\"x\"\nprint(1)\n```\n")
    blocks = runnable_blocks(text)
    assert [(b.language, b.code, b.line) for b in blocks] == [
        ("bash", "echo a\n", 3), ("python", "print(1)\n", 11)]


def test_generated_reference_pages_are_current():
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "generate.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_rules_page_lists_every_rule_with_its_thresholds():
    """Generated from the rule objects: each rule's title, its filled-in test and every
    threshold value appear on the page."""
    from jppo.analysis.diagnose.rules import RULES

    text = (ROOT / "docs" / "reference" / "rules.md").read_text()
    for rule in RULES:
        assert f"## {rule.title}" in text and rule.threshold in text
        for name, value in rule.thresholds.items():
            assert f"| `{name}` | {value:g} |" in text


def test_metrics_page_lists_every_metric():
    from jppo.analysis.metrics import METRIC_DOCS

    text = (ROOT / "docs" / "reference" / "metrics.md").read_text()
    rows = [line.split("`")[1] for line in text.splitlines() if line.startswith("| `")]
    assert rows == list(METRIC_DOCS)


def test_nothing_cites_files_outside_the_repository():
    """The README, the manual and the package speak of the project only: no design
    notes that are not part of the repository are cited."""
    outside = ("STABILIZATION" + ".md", "DESIGN" + ".md")
    files = [*markdown_files(ROOT), *(ROOT / "jppo").rglob("*.py"), *(ROOT / "envs").rglob("*.py")]
    cited = [(str(p.relative_to(ROOT)), name) for p in files for name in outside
             if name in p.read_text()]
    assert not cited
