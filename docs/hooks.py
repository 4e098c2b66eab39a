"""MkDocs hooks: serve the repository files the manual links to (figures, experiment
files, examples) from where they live, and list pages that `nav` leaves out."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File
from mkdocs.structure.nav import Section

ROOT = Path(__file__).resolve().parents[1]
# Repository folders whose files pages link to, as if they sat in docs/ (a link from
# docs/page.md to `experiments/value_scale/learning_curves.png` resolves, and a missing
# one fails the strict build).
SERVED = ("experiments", "examples")
SUFFIXES = {".png", ".md", ".toml", ".py", ".json", ".csv", ".ipynb", ".txt", ".sh"}


def on_files(files, config):
    for folder in SERVED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                uri = path.relative_to(ROOT).as_posix()
                if files.get_file_from_path(uri) is None:
                    files.append(File(uri, str(ROOT), config["site_dir"],
                                      config["use_directory_urls"]))
    return files


def on_nav(nav, config, files):
    """Top-level pages of docs/ that `nav` does not list go under "More topics"."""
    listed = {page.file.src_uri for page in nav.pages}
    extra = [f.page for f in files.documentation_pages()
             if "/" not in f.src_uri and f.src_uri not in listed and f.page is not None]
    if extra:
        section = Section("More topics", extra)
        for page in extra:
            page.parent = section
        nav.items.append(section)
        nav.pages.extend(extra)
    return nav
