"""The package as a user installs it: the wheel and sdist build, the wheel installs into a
fresh virtual environment (not editable) and its `jppo` command trains, diagnoses and runs
the README's Python example there; the environments are `jppo.envs` only (no top-level
`envs` in site-packages, no second copy of a module under another name).

The fresh environment reuses this one's installed dependencies through a `.pth` line (a
download of jax would be too slow for a test) but not its editable jppo: the `.pth` files
of this environment's site-packages, which hold the editable finder, are not processed
for a directory a `.pth` line adds."""

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from runnable_blocks import shrink_budget

import jppo

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _run(argv, cwd, **env):
    """Run a command, return its stdout; on failure, fail with its whole output."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)
    assert done.returncode == 0, f"{argv} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def readme_python_example() -> str:
    """The README's one-minute Python example (the block after its marker)."""
    text = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"<!-- python-example -->\n```python\n(.*?)```", text, re.S)
    return block


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """Build the sdist, then the wheel from the sdist (as pip does from an sdist), with
    this environment's setuptools (no isolated build environment to download)."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
         cwd=out)
    (wheel,) = out.glob("jppo-*.whl")
    (sdist,) = out.glob("jppo-*.tar.gz")
    return wheel, sdist


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory):
    """A fresh venv with the wheel installed (no editable jppo visible in it)."""
    home = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(home / "env")], cwd=home)
    python = home / "env" / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                cwd=home).strip()
    Path(site, "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "--quiet", str(dist[0])], cwd=home)
    return home, python, Path(site)


def test_wheel_holds_jppo_and_its_envs_only(dist):
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"jppo-{jppo.__version__}.dist-info/METADATA").decode()
    top = {name.split("/")[0] for name in names}
    assert top == {"jppo", f"jppo-{jppo.__version__}.dist-info"}
    assert "jppo/envs/registry.py" in names and "jppo/runs/default_experiment.toml" in names
    assert "License-Expression: Apache-2.0" in metadata
    assert "Classifier: Intended Audience :: Science/Research" in metadata
    assert "Description-Content-Type: text/markdown" in metadata
    assert not re.search(r"Requires-Dist: [\w-]+(\[\w+\])?==", metadata)  # pins: constraints


def test_sdist_builds_the_same_packages(dist):
    """The wheel was built from the sdist, so the sdist holds every module; it also
    carries the license, the README (the long description) and the build config."""
    _, sdist = dist
    import tarfile

    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    root = sdist.name.removesuffix(".tar.gz")
    for path in ("envs/__init__.py", "jppo/cli.py", "LICENSE", "README.md", "pyproject.toml"):
        assert f"{root}/{path}" in names


def test_declared_packages_are_the_package_folders():
    """The explicit package list (needed for the envs -> jppo.envs mapping) misses no
    sub-package and names none that is gone."""
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "jppo").rglob("__init__.py")}
    found |= {".".join(("jppo", *p.parent.relative_to(ROOT).parts))
              for p in (ROOT / "envs").rglob("__init__.py")}  # envs/x/ is jppo.envs.x
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == found
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"jppo.envs": "envs"}


def test_installed_wheel_trains_diagnoses_and_runs_the_readme_example(venv):
    home, python, site = venv
    work = home / "work"  # a cwd with no jppo checkout in it
    work.mkdir()
    assert not (site / "envs").exists() and (site / "jppo" / "envs" / "__init__.py").exists()
    where = _run([str(python), "-c", "import jppo, jppo.envs; print(jppo.__file__); "
                  "print(jppo.envs.__file__)"], cwd=work)
    assert all(line.startswith(str(site)) for line in where.split()), where
    version = _run([str(python.parent / "jppo"), "--version"], cwd=work)
    assert version.strip() == f"jppo {jppo.__version__}"
    # a top-level `envs` is nothing of jppo's: not importable at all here
    missing = subprocess.run([str(python), "-c", "import envs"], cwd=work,
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "No module named 'envs'" in missing.stderr
    out = _run([str(python.parent / "jppo"), "train", "--seeds", "2", "--total-timesteps",
                "4096", "--out", "run", "--progress", "off"], cwd=work)
    assert "CartPole-v1" in out and (work / "run" / "diagnosis.md").exists()
    diagnosis = _run([str(python.parent / "jppo"), "diagnose", "run"], cwd=work)
    assert diagnosis.strip()
    example = shrink_budget(readme_python_example())
    printed = _run([str(python), "-c", example], cwd=work)
    assert re.search(r"\d", printed), printed
    print(version, out, diagnosis, printed, sep="\n")


def test_top_level_envs_import_is_refused_in_a_checkout():
    """From a checkout the folder envs/ is on sys.path; importing it under that name
    would make a second copy of every module, so it refuses with the fix."""
    done = subprocess.run([sys.executable, "-c", "import envs"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ImportError: this package is jppo's environments, imported as 'envs': "
        "use `from jppo import envs`")


def test_editable_install_resolves_jppo_envs_from_any_cwd(tmp_path):
    """`make` installs the checkout editable: `jppo.envs` is the checkout's envs/ folder,
    from the checkout and from elsewhere."""
    for cwd in (ROOT, tmp_path):
        where = _run([sys.executable, "-c", "import jppo.envs; print(jppo.envs.__file__)"],
                     cwd=cwd)
        assert Path(where.strip()) == ROOT / "envs" / "__init__.py"


def test_no_unconverted_envs_imports():
    """Everything imports the environments as `jppo.envs` (the merge rule for new code:
    `import envs` -> `from jppo import envs`, `from envs.x import` -> `from jppo.envs.x
    import`; inside envs/, relative imports)."""
    pattern = re.compile(r"^\s*\"?(import envs\b|from envs[. ])", re.M)
    files = [p for folder in ("jppo", "envs", "tests", "experiments", "examples", "docs")
             for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".ipynb"}]
    files.append(ROOT / "README.md")
    offenders = [str(p.relative_to(ROOT)) for p in files if pattern.search(p.read_text())]
    assert not offenders


def test_makefile_declares_its_phony_targets_once_and_documents_each():
    """`make help` prints the `## target:` lines: every command target has one, and
    one .PHONY line lists them all (a second declaration drifts from the first)."""
    text = (ROOT / "Makefile").read_text()
    phony_lines = re.findall(r"^\.PHONY:(.*)$", text, re.MULTILINE)
    assert len(phony_lines) == 1, phony_lines
    phony = set(phony_lines[0].split())
    documented = set(re.findall(r"^## ([\w-]+):", text, re.MULTILINE))
    targets = set(re.findall(r"^([a-z][\w-]*):(?!=)", text, re.MULTILINE))
    assert documented == phony, (documented ^ phony)
    assert phony <= targets, phony - targets
