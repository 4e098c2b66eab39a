"""Code shape: no function in jppo/ or envs/ is longer than MAX_LINES, so each
can be read in one screen, and no variant name is compared in the train step,
the optimizer or the diagnosis (they ask the config's strategies). The layout
shows the architecture: each layer imports only the layers below it
(`ALLOWED_IMPORTS`, every import including those inside functions), and no
module imports itself back through others (no import cycle)."""

import ast
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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


# ------------------------------------------------------------ the import contract
# Layer -> the layers its modules may import. A layer is a top-level folder of the
# package (`envs/` is installed as `jppo.envs`); "jppo" is the package's own
# `__init__` (its public surface) and "cli" the `jppo` command. Imports inside a
# layer are free (the no-cycle check still applies).
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "envs": frozenset(),  # environments: gymnax, Brax, wrappers; knows nothing of PPO
    "core": frozenset({"envs"}),  # the jitted engine
    "runs": frozenset({"core", "envs"}),  # driving it: experiments, runner, results
    "analysis": frozenset({"runs", "core", "envs"}),  # reading what runs wrote
    "bench": frozenset({"runs", "core", "envs"}),  # measuring the engine
    "jppo": frozenset({"analysis", "runs", "core", "envs"}),  # the public names
    "cli": frozenset({"jppo", "bench", "analysis", "runs", "core", "envs"}),
}


def module_name(path: Path) -> str:
    """`envs/brax.py` -> `jppo.envs.brax`, `jppo/runs/__init__.py` -> `jppo.runs`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "envs":
        parts.insert(0, "jppo")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_targets(module: str, is_package: bool, tree: ast.AST,
                     known: Iterable[str]) -> set[str]:
    """The package modules `module` imports anywhere (inside functions too),
    relative imports resolved: `from x import y` is `x.y` when that is a module."""
    known = set(known)

    def nearest(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[:len(module.split(".")) - node.level + is_package]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(nearest(f"{base}.{alias.name}") or nearest(base))
        elif isinstance(node, ast.Import):
            found.update(nearest(alias.name) for alias in node.names)
    return found - {None, module}


@functools.cache
def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for folder in ("jppo", "envs")
             for p in sorted((ROOT / folder).rglob("*.py"))}
    return {name: imported_targets(name, path.name == "__init__.py",
                                   ast.parse(path.read_text()), paths)
            for name, path in paths.items()}


def layer(module: str) -> str:
    """`jppo.runs.runner` -> "runs", `jppo.cli` -> "cli", `jppo` -> "jppo"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def contract_violations(graph: Mapping[str, set[str]],
                        allowed: Mapping[str, frozenset[str]]) -> list[str]:
    """Every import from one layer into another that `allowed` does not list;
    a module of a layer the table does not know is a violation too."""
    found = []
    for module, targets in sorted(graph.items()):
        if layer(module) not in allowed:
            found.append(f"{module}: layer {layer(module)!r} is not in the table")
            continue
        found += [f"{module} -> {target}" for target in sorted(targets)
                  if layer(target) != layer(module)
                  and layer(target) not in allowed[layer(module)]]
    return found


def import_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's
    algorithm): each holds at least one cycle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_every_layer_imports_only_the_layers_below_it():
    assert not contract_violations(import_graph(), ALLOWED_IMPORTS)


def test_no_module_imports_itself_back():
    assert import_cycles(import_graph()) == []


def test_the_table_covers_every_layer_of_the_package():
    assert {layer(module) for module in import_graph()} == set(ALLOWED_IMPORTS)


def test_the_graph_sees_relative_function_level_and_from_imports():
    graph = import_graph()
    assert "jppo.envs.params" in graph["jppo.envs.brax"]  # from .params import ...
    assert "jppo.envs.brax" in graph["jppo.envs.registry"]  # from . import brax as ...
    assert "jppo.bench.profile" in graph["jppo.bench.throughput"]  # inside a function
    assert "jppo.runs.runner" in graph["jppo"]  # under TYPE_CHECKING
    tree = ast.parse("def f():\n    from ..core import train\n    import jppo.runs.results\n")
    assert imported_targets("jppo.envs.x", False, tree, ["jppo.core.train", "jppo.runs.results"]
                            ) == {"jppo.core.train", "jppo.runs.results"}


def test_the_contract_check_reports_a_planted_upward_import():
    graph = {"jppo.runs.runner": {"jppo.analysis.metrics", "jppo.core.train"},
             "jppo.analysis.metrics": {"jppo.runs.results"},
             "jppo.core.train": {"jppo.envs"}, "jppo.envs": set(),
             "jppo.runs.results": set(), "jppo.tools.x": set()}
    assert contract_violations(graph, ALLOWED_IMPORTS) == [
        "jppo.runs.runner -> jppo.analysis.metrics",
        "jppo.tools.x: layer 'tools' is not in the table"]


def test_the_cycle_check_reports_a_planted_cycle_hidden_in_a_function():
    tree = ast.parse("def build():\n    from .registry import resolve\n")
    known = ["jppo.envs.registry", "jppo.envs.masked", "jppo.envs.api"]
    graph = {"jppo.envs.registry": {"jppo.envs.masked", "jppo.envs.api"},
             "jppo.envs.masked": imported_targets("jppo.envs.masked", False, tree, known),
             "jppo.envs.api": set()}
    assert import_cycles(graph) == [["jppo.envs.masked", "jppo.envs.registry"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
