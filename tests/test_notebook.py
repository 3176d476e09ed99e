"""demo.ipynb: it runs top to bottom without an error, and the committed copy carries the outputs of a full run.

The executed run uses MMR1_DEMO_FAST=1, which the notebook reads to shrink its step counts: the same cells, tiny
sizes, well under a minute. The pictures a reader sees come from the committed full run.
"""
import os
import re

import nbformat
import pytest

import mmr1
import vas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "demo.ipynb")
SCREEN = 35  # lines: no code cell longer than a screen


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def images(nb):
    return sum("image/png" in out.get("data", {}) for cell in code_cells(nb) for out in cell.outputs)


def test_notebook_runs_top_to_bottom(monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("MMR1_DEMO_FAST", "1")  # the kernel inherits this process's environment
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny tensors: one thread is as fast, and safe on a busy machine
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": ROOT}})
    client.execute()  # raises CellExecutionError, naming the cell, at the first error
    assert images(nb) >= 8
    assert "FAST sizes" in code_cells(nb)[-1].outputs[0]["text"]


def test_committed_notebook_has_the_outputs_of_a_full_run():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = code_cells(nb)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), "run top to bottom once"
    assert not any(out.output_type == "error" for cell in cells for out in cell.outputs)
    assert images(nb) >= 8, "the pictures are committed, so a reader on the web sees them"
    assert "full sizes" in cells[-1].outputs[0]["text"], "the committed outputs come from the full run"


def test_cells_are_short_and_import_rather_than_paste():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(cell.source for cell in code_cells(nb))
    assert "import mmr1" in source and "import vas" in source
    for cell in code_cells(nb):
        assert len(cell.source.splitlines()) <= SCREEN, f"a cell longer than a screen:\n{cell.source[:200]}"
    defined = set(re.findall(r"^\s*def (\w+)", source, re.M)) | set(re.findall(r"^\s*class (\w+)", source, re.M))
    pasted = {name for name in defined if hasattr(mmr1, name) or hasattr(vas, name)}
    assert not pasted, f"the notebook redefines {pasted}: import them from mmr1/vas instead"


@pytest.mark.parametrize("section", ["The toy data", "How an image becomes tokens", "The tiny Qwen2.5-VL",
                                     "Cold-start SFT", "GRPO by hand", "VAS on real rollouts",
                                     "with and without VAS", "Variance-Progress theorem"])
def test_every_step_is_there(section):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert any(cell.cell_type == "markdown" and section in cell.source for cell in nb.cells)
