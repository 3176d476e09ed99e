"""demo.ipynb: it runs top to bottom without an error, and the committed copy carries the outputs of a full run
of the current mmr1.py, vas.py and data.py.

The executed run uses MMR1_DEMO_FAST=1, which the notebook reads to shrink its step counts: the same cells, tiny
sizes, well under a minute. The pictures a reader sees come from the committed full run, which is stamped with
the sha256 of the mmr1.py, vas.py and data.py it ran; after changing one, execute and stamp it again (75 s):
    python tests/test_notebook.py --stamp        # then commit demo.ipynb
and check the stamp alone with
    python -m pytest -q tests/test_notebook.py -m stamp
"""
import argparse
import hashlib
import os
import re
import sys

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script (--stamp), this file needs the repository root too
import mmr1  # noqa: E402
import vas  # noqa: E402
from helpers import SOURCES  # noqa: E402

NOTEBOOK = os.path.join(ROOT, "demo.ipynb")
SCREEN = 35  # lines: no code cell longer than a screen


def source_sha256() -> str:
    """What the committed outputs were computed with: mmr1.py, vas.py and data.py, byte for byte."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(open(os.path.join(ROOT, name), "rb").read())
    return digest.hexdigest()


def execute(nb, fast: bool, timeout: int = 300) -> None:
    """Run every cell in a fresh kernel, in the repository root; raises CellExecutionError at the first error."""
    from nbclient import NotebookClient

    env = {"MMR1_DEMO_FAST": "1"} if fast else {}
    old = {k: os.environ.get(k) for k in ("MMR1_DEMO_FAST", "OMP_NUM_THREADS")}
    os.environ.update({**env, "OMP_NUM_THREADS": "1"})  # the kernel inherits this; tiny tensors: one thread is as fast
    if not fast:
        os.environ.pop("MMR1_DEMO_FAST", None)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def stamp() -> None:
    """Execute demo.ipynb at full sizes and write it with its outputs and the stamp of the sources it ran."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    execute(nb, fast=False, timeout=1800)
    nb.metadata["mmr1"] = {"source_sha256": source_sha256()}
    nbformat.write(nb, NOTEBOOK)
    print(f"executed and stamped {NOTEBOOK} ({source_sha256()[:12]}): commit it")


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def images(nb):
    return sum("image/png" in out.get("data", {}) for cell in code_cells(nb) for out in cell.outputs)


def test_notebook_runs_top_to_bottom():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    execute(nb, fast=True)  # raises CellExecutionError, naming the cell, at the first error
    assert images(nb) >= 10
    assert "FAST sizes" in code_cells(nb)[-1].outputs[0]["text"]


def test_committed_notebook_has_the_outputs_of_a_full_run():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = code_cells(nb)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), "run top to bottom once"
    assert not any(out.output_type == "error" for cell in cells for out in cell.outputs)
    assert images(nb) >= 10, "the pictures are committed, so a reader on the web sees them"
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


@pytest.mark.stamp
def test_committed_outputs_come_from_the_current_code():
    stamped = nbformat.read(NOTEBOOK, as_version=4).metadata.get("mmr1", {}).get("source_sha256")
    assert stamped == source_sha256(), ("demo.ipynb's outputs were not computed with the current mmr1.py, vas.py "
                                        "and data.py (or carry no stamp): run `python tests/test_notebook.py --stamp` "
                                        "and commit it")


@pytest.mark.parametrize("section", ["The toy data", "How an image becomes tokens", "The tiny Qwen2.5-VL",
                                     "Cold-start SFT", "GRPO by hand", "One GRPO step by hand",
                                     "VAS on real rollouts",
                                     "with and without VAS", "Variance-Progress theorem"])
def test_every_step_is_there(section):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert any(cell.cell_type == "markdown" and section in cell.source for cell in nb.cells)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Execute demo.ipynb at full sizes and stamp it with the "
                                                 "sha256 of mmr1.py, vas.py and data.py.")
    parser.add_argument("--stamp", action="store_true", required=True)
    parser.parse_args()
    stamp()
