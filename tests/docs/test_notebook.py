"""examples/01_quickstart.ipynb runs top to bottom (on a tiny budget), and is committed
with its outputs (plots included) for a reader on the web."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "examples" / "01_quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("JPPO_QUICKSTART_STEPS", "2048")
    monkeypatch.setenv("JPPO_QUICKSTART_SEEDS", "8")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "final return over 8 seeds" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # curve, panel, comparison curves
    runs = list(tmp_path.glob("runs/quickstart-*/compare/diagnosis.md"))
    assert len(runs) == 1 and "relative_clip" in (runs[0].parent / "summary.md").read_text()


def test_quickstart_notebook_is_committed_with_its_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code)  # every cell was run
    outputs = [o for cell in code for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) >= 3
