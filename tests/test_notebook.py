"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel of this interpreter."""

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow
def test_the_quickstart_notebook_runs(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The "python3" kernel is launched with this interpreter (jupyter_client's rule for the
    # native kernel); the first cell checks it, so that a stray kernelspec fails loudly.
    check = f"import sys\nassert sys.prefix == {sys.prefix!r}, sys.executable"
    notebook.cells.insert(0, nbformat.v4.new_code_cell(check))
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails

    text = "\n".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "C+S_best" in text and "test accuracy" in text
    images = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 2  # the swap grid and the t-SNE
    (run_dir,) = (tmp_path / "outputs" / "quickstart").iterdir()
    assert (run_dir / "codes.npz").is_file() and (run_dir / "swap_view0.png").is_file()
