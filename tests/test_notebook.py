"""demo.ipynb: it runs top to bottom without an error, each of its assertions fails when what it claims is made
false, and the committed copy carries the outputs of a full run of the current mmr1.py, vas.py and data.py.

The executed run uses MMR1_DEMO_FAST=1, which the notebook reads to shrink its sizes: the same cells, the smallest
sizes at which every assertion still runs and holds, about a minute on one thread. Then, in the same kernel, each
asserting cell is run again with what it claims made false (the optimiser step skipped, the advantages' sign
flipped or their baseline removed, prompts drawn uniformly, the committed results edited), and must fail on its own
assertion. The sections must come in the order of the argument: why variance matters, what VAS does, does it pay.
The pictures a reader sees come from the committed full run, which is stamped with the sha256 of the mmr1.py,
vas.py and data.py it ran; after changing one, execute and stamp it again (about a minute):
    python tests/test_notebook.py --stamp        # then commit demo.ipynb
and check the stamp alone with
    python -m pytest -q tests/test_notebook.py -m stamp
"""
import argparse
import ast
import contextlib
import copy
import hashlib
import os
import re
import sys

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

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


@contextlib.contextmanager
def environment(fast: bool):
    """What the kernel inherits: FAST sizes or full, and one thread (tiny tensors: one is as fast)."""
    old = {k: os.environ.get(k) for k in ("MMR1_DEMO_FAST", "OMP_NUM_THREADS")}
    os.environ["OMP_NUM_THREADS"] = "1"
    if fast:
        os.environ["MMR1_DEMO_FAST"] = "1"
    else:
        os.environ.pop("MMR1_DEMO_FAST", None)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def client(nb, timeout: int):
    from nbclient import NotebookClient

    return NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": ROOT}})


def execute(nb, fast: bool, timeout: int = 300) -> None:
    """Run every cell in a fresh kernel, in the repository root; raises CellExecutionError at the first error."""
    with environment(fast):
        client(nb, timeout).execute()


@contextlib.contextmanager
def kernel(nb, fast: bool, timeout: int = 300):
    """A fresh kernel that has run every cell of `nb` top to bottom, as `execute` does, and stays up: yields a
    function that runs more code in it, in the notebook's namespace (raising CellExecutionError on an error)."""
    runner = client(nb, timeout)
    with environment(fast), runner.setup_kernel():
        for index, cell in enumerate(nb.cells):
            runner.execute_cell(cell, index, execution_count=runner.code_cells_executed + 1)
        yield lambda source: runner.execute_cell(nbformat.v4.new_code_cell(source), 0)


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


@pytest.fixture(scope="module")
def fast_run():
    """The notebook run top to bottom at FAST sizes (its outputs: `ran`), and its kernel, still up."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with kernel(nb, fast=True) as run:  # raises CellExecutionError, naming the cell, at the first error
        yield copy.deepcopy(nb), run


def test_notebook_runs_top_to_bottom(fast_run):
    ran, _ = fast_run
    assert images(ran) >= 9
    assert "FAST sizes" in code_cells(ran)[-1].outputs[0]["text"]


# What each asserting cell claims, made false. A mutation is code run in the notebook's kernel; then the code cells
# are run again from the one that begins with `rerun` to the end of its section, and one of them must fail on the
# assertion whose message begins with `fails`; `undo` restores the kernel. Section 9 asserts one sentence at a time
# (its `claims`, drift guards on the committed results): at least one mutation for each, each made false by editing
# the committed results in a copy (a sentence that claims two things, one for each).
FLIP = ("_loss = mmr1.grpo_loss\n"
        "mmr1.grpo_loss = lambda logp, old, ref, adv, *a, **k: _loss(logp, old, ref, -adv, *a, **k)")


def section_9(edit: str, fails: str) -> dict:
    """A section 9 mutation: `edit` changes a copy of the committed results, the claims are asserted again."""
    return dict(patch="_saved, results = results, copy.deepcopy(results)\n" + edit, undo="results = _saved",
                rerun="runs = lambda", fails=fails)


MUTATIONS = {
    "6: skip the optimiser step": dict(
        patch="_step = torch.optim.AdamW.step\ntorch.optim.AdamW.step = lambda self, closure=None: None",
        undo="torch.optim.AdamW.step = _step", rerun="step_policy =", fails="rewarded must rise"),
    "6: flip the advantages' sign in the loss": dict(
        patch=FLIP, undo="mmr1.grpo_loss = _loss", rerun="step_policy =", fails="rewarded must rise"),
    "7: advantages without the group's baseline (the raw reward)": dict(
        patch="_advantages = mmr1.group_advantages\n"
              "mmr1.group_advantages = lambda rewards, group_size, eps=1e-6, scale_std=True: rewards.clone()",
        undo="mmr1.group_advantages = _advantages", rerun="mmr1.set_seed(2)",
        fails="an all-equal group has a gradient"),
    "7: flip the advantages' sign in the loss": dict(
        patch=FLIP, undo="mmr1.grpo_loss = _loss", rerun="mmr1.set_seed(2)", fails="one step does not raise"),
    "8: draw uniformly": dict(
        patch="_probabilities = vas.VarianceAwareSampler.probabilities\n"
              "vas.VarianceAwareSampler.probabilities = lambda self: np.full(self.num_prompts, 1 / self.num_prompts)",
        undo="vas.VarianceAwareSampler.probabilities = _probabilities", rerun="pool, N =",
        fails="prompts drawn by VPS agree as often"),
    "9: posterior VAS at lambda 1 draws only all-equal groups on the default pool": section_9(
        "for run in results['0.0']['vas-free'].values():\n    run['zero_std_frac'] = 1.0",
        "**Fewer all-equal groups"),
    "9: posterior VAS at lambda 1 ends every run at 100% at d = 0.9 (its interval above 0)": section_9(
        "for run in results['0.9']['vas-free'].values():\n"
        "    run['target_accuracy'] = [1.0] * len(run['target_accuracy'])",
        "**Where many prompts are dead, no interval excludes 0"),
    "9: posterior VAS at lambda 1 ends every run at 100% on the default pool (its interval above 0)": section_9(
        "for run in results['0.0']['vas-free'].values():\n"
        "    run['target_accuracy'] = [1.0] * len(run['target_accuracy'])",
        "**No interval decides"),
    "9: the paper's VAS reaches the target as uniform does at d = 0.25": section_9(
        "for mine, theirs in zip(results['0.25']['vas-paper'].values(), results['0.25']['uniform'].values()):\n"
        "    mine.update(rollouts=theirs['rollouts'], target_accuracy=theirs['target_accuracy'])",
        "**The paper's VAS is slower to"),
    "9: dynamic sampling runs as uniform at d = 0.9 (not lower there, its interval about 0)": section_9(
        "results['0.9']['filter'] = results['0.9']['uniform']",
        "**Dynamic sampling**"),
    "9: dynamic sampling ends every run at 0% at d = 0.25 (its interval below 0 there too)": section_9(
        "for run in results['0.25']['filter'].values():\n"
        "    run['target_accuracy'] = [0.0] * len(run['target_accuracy'])",
        "**Dynamic sampling**"),
}


def rerun(nb, run, first: str) -> None:
    """Run again the code cells from the one that begins with `first` to the end of its section."""
    start = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.source.startswith(first))
    for cell in nb.cells[start:]:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            break
        if cell.cell_type == "code":
            run(cell.source)


@pytest.mark.parametrize("name", MUTATIONS)
def test_each_assertion_fails_when_its_claim_is_made_false(fast_run, name):
    ran, run = fast_run
    mutation = MUTATIONS[name]
    run(mutation["patch"])
    try:
        with pytest.raises(CellExecutionError) as failed:
            rerun(ran, run, mutation["rerun"])
    finally:
        run(mutation["undo"])
    assert failed.value.ename == "AssertionError", failed.value
    assert failed.value.evalue.startswith(mutation["fails"]), failed.value.evalue


def test_every_assertion_has_a_mutation(fast_run):
    """Every assert of the notebook is one that a mutation above makes fail: by its message, or, for section 9's
    `assert holds, sentence`, a mutation (or more) for each sentence the run printed, each naming one sentence."""
    ran, _ = fast_run
    fails = [m["fails"] for m in MUTATIONS.values()]
    asserts = [node for cell in code_cells(ran) for node in ast.walk(ast.parse(cell.source))
               if isinstance(node, ast.Assert)]
    for node in asserts:
        assert node.msg is not None, f"an assert without a message: {ast.unparse(node)}"
        if isinstance(node.msg, ast.Constant):
            assert any(node.msg.value.startswith(f) for f in fails), f"no mutation makes this fail: {node.msg.value}"
        else:
            assert ast.unparse(node) == "assert holds, sentence", ast.unparse(node)
    claims = next(cell for cell in code_cells(ran) if "claims = [" in cell.source)
    shown = "".join(out.get("data", {}).get("text/markdown", "") for out in claims.outputs)
    sentences = [line[2:] for line in shown.splitlines() if line.startswith("- ")]
    section_9 = sorted({m["fails"] for m in MUTATIONS.values() if m["rerun"] == "runs = lambda"})
    assert sorted([f for f in section_9 if s.startswith(f)] for s in sentences) == sorted([f] for f in section_9), \
        f"each sentence needs one mutation of its own: {sentences}"


@pytest.mark.stamp
def test_committed_outputs_come_from_the_current_code():
    stamped = nbformat.read(NOTEBOOK, as_version=4).metadata.get("mmr1", {}).get("source_sha256")
    assert stamped == source_sha256(), ("demo.ipynb's outputs were not computed with the current mmr1.py, vas.py "
                                        "and data.py (or carry no stamp): run `python tests/test_notebook.py --stamp` "
                                        "and commit it")


SECTIONS = ["The toy data", "How an image becomes tokens", "The tiny Qwen2.5-VL", "Cold-start SFT", "GRPO by hand",
            "One GRPO step by hand", "Why variance matters", "What VAS does", "Does it pay?"]


def test_the_sections_come_in_the_order_of_the_argument():
    """Each step is there, numbered in its order: why variance matters, then what VAS does, then whether it pays."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    titles = [cell.source.splitlines()[0] for cell in nb.cells
              if cell.cell_type == "markdown" and cell.source.startswith("## ")]
    assert len(titles) == len(SECTIONS), titles
    for number, (title, section) in enumerate(zip(titles, SECTIONS), 1):
        assert title.startswith(f"## {number}. {section}"), (title, section)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Execute demo.ipynb at full sizes and stamp it with the "
                                                 "sha256 of mmr1.py, vas.py and data.py.")
    parser.add_argument("--stamp", action="store_true", required=True)
    parser.parse_args()
    stamp()
