"""Code shape: no function in jppo/ or envs/ is longer than MAX_LINES, so each
can be read in one screen, and no variant name is compared in the train step,
the optimizer or the diagnosis (they ask the config's strategies). The layout
shows the architecture: `jppo.core` (the jitted engine) never imports the
layers that drive it (`jppo.runs`) or read its output (`jppo.analysis`)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60
VARIANT_FIELDS = ("value_loss", "value_target", "value_clip_mode", "advantage_norm",
                  "lr_schedule", "ent_schedule", "grad_clip", "torso_kind")


def functions(folder: str):
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield path.relative_to(ROOT), node


@pytest.mark.parametrize("folder", ["jppo", "envs"])
def test_no_function_is_longer_than_a_screen(folder):
    long = [f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, node in functions(folder)
            if node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, long


def test_the_length_check_sees_nested_functions_and_counts_every_line():
    source = "def outer():\n" + "    x = 1\n" * 70 + "    def inner():\n        pass\n"
    nodes = {n.name: n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
    assert nodes["outer"].end_lineno - nodes["outer"].lineno + 1 == 73
    assert "inner" in nodes


@pytest.mark.parametrize("module", ["jppo/core/train.py", "jppo/core/optim.py",
                                    "jppo/core/networks.py", "jppo/core/config.py",
                                    "jppo/analysis/diagnose/rules.py",
                                    "jppo/analysis/diagnose/engine.py"])
def test_no_variant_name_is_compared(module):
    text = (ROOT / module).read_text()
    pattern = re.compile(rf"\b({'|'.join(VARIANT_FIELDS)})\s*(==|!=|\bin\b|\bnot in\b)")
    assert not pattern.findall(text), module


def test_the_comparison_check_catches_the_forms_it_forbids():
    pattern = re.compile(rf"\b({'|'.join(VARIANT_FIELDS)})\s*(==|!=|\bin\b|\bnot in\b)")
    for line in ('if config.value_loss == "hl_gauss":', 'config.grad_clip != "global"',
                 'config.advantage_norm not in ("robust", "off")',
                 'config.value_target in ("raw",)'):
        assert pattern.search(line), line
    assert not pattern.search('Remedy({"value_loss": "mse"}, "why")')


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_engine_does_not_import_the_layers_above_it():
    upward = {f"{path.relative_to(ROOT)}: {name}"
              for path in sorted((ROOT / "jppo" / "core").rglob("*.py"))
              for name in imported_modules(path)
              if name.startswith(("jppo.runs", "jppo.analysis", "jppo.bench", "jppo.cli"))}
    assert not upward, upward


def test_the_import_check_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n"
                      "    from jppo.runs import results\n"
                      "    import jppo.analysis.stats\n")
    assert {"jppo.runs.results", "jppo.analysis.stats"} <= imported_modules(module)


def test_the_package_is_split_into_engine_runs_analysis_and_benchmarks():
    top = sorted(p.name for p in (ROOT / "jppo").iterdir() if not p.name.startswith((".", "_")))
    assert top == ["analysis", "bench", "cli.py", "core", "runs"]
