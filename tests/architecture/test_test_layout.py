"""The tests are laid out like the code: one folder per layer of the package (and
one each for the command, the manual, the packaging checks and the experiments),
each file named after what it specifies; and every entry of the slow list
(tests/conftest.py `SLOW`) names a test that exists, so `make test-fast` cannot
keep running a test that moved or lose one that was renamed."""

import ast
from pathlib import Path

import conftest

TESTS = Path(__file__).resolve().parents[1]
FOLDERS = {"core", "envs", "runs", "analysis", "bench", "architecture", "cli", "docs",
           "experiments"}


def all_test_files() -> list[Path]:
    return sorted(TESTS.rglob("test_*.py"))


def stale_entries(entries, root: Path) -> list[str]:
    """The entries (`tests/x/test_y.py` or `...::test_name`) naming no file, or no
    test function of that name in the file."""
    defined: dict[str, set[str]] = {}
    stale = []
    for entry in entries:
        path, _, name = entry.partition("::")
        file = root / path
        if not file.is_file():
            stale.append(entry)
            continue
        if path not in defined:
            defined[path] = {node.name for node in ast.parse(file.read_text()).body
                             if isinstance(node, ast.FunctionDef)}
        if name and name not in defined[path]:
            stale.append(entry)
    return stale


def test_every_test_file_is_in_the_folder_of_what_it_specifies():
    misplaced = [str(p.relative_to(TESTS)) for p in all_test_files()
                 if p.parent == TESTS or p.relative_to(TESTS).parts[0] not in FOLDERS]
    assert not misplaced, f"move into one of {sorted(FOLDERS)}: {misplaced}"


def test_test_file_names_are_unique():
    """pytest imports test files by their name (no packages): two of one name clash."""
    names = [p.name for p in all_test_files()]
    assert len(names) == len(set(names))


def test_every_slow_entry_names_an_existing_test():
    assert conftest.SLOW, "the slow list is empty: make test-fast would run everything"
    assert stale_entries(conftest.SLOW, TESTS.parent) == []


def test_every_longest_first_entry_names_an_existing_file_once():
    """A file moved or renamed would silently fall back to its usual place."""
    assert conftest.LONGEST_FIRST, "nothing starts first: the longest files may start last"
    assert stale_entries(conftest.LONGEST_FIRST, TESTS.parent) == []
    assert len(set(conftest.LONGEST_FIRST)) == len(conftest.LONGEST_FIRST)


def test_the_longest_files_are_collected_first_in_their_order():
    ranks = [conftest.file_rank(f"{path}::test_x") for path in conftest.LONGEST_FIRST]
    assert ranks == list(range(len(conftest.LONGEST_FIRST)))
    assert conftest.file_rank("tests/architecture/test_test_layout.py::test_x") == len(ranks)


def test_the_session_compiles_cheaply_unless_the_user_chose_otherwise():
    """The fast-compile flags reach os.environ (and so every subprocess); a flag the
    user set keeps its value; a child's device count comes after the session's flags."""
    import os

    flags = os.environ["XLA_FLAGS"].split()
    for name in conftest.FAST_COMPILE_FLAGS:
        assert any(f.startswith(f"{name}=") for f in flags), name
    assert conftest.add_fast_compile_flags("--xla_backend_optimization_level=3 --a=1") == (
        "--xla_backend_optimization_level=3 --a=1 --xla_llvm_disable_expensive_passes=true")
    assert conftest.add_fast_compile_flags("") == (
        "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
    child = conftest.with_devices(2).split()
    assert child[:-1] == flags and child[-1] == "--xla_force_host_platform_device_count=2"


def test_the_slow_list_check_reports_a_moved_file_and_a_renamed_test():
    real = "tests/architecture/test_test_layout.py"
    assert stale_entries([real, f"{real}::test_test_file_names_are_unique",
                          "tests/test_runner.py", f"{real}::test_renamed"],
                         TESTS.parent) == ["tests/test_runner.py", f"{real}::test_renamed"]
