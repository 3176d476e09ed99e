"""README.md: a first screen that says what VAS does, what the committed evidence says (with its figure) and what
the first commands take and give, seed 0 first, every number of it computed by assets/evidence.py; the Algorithm
1 table names only functions that exist; the whole at most 250 lines, its links alive."""
import functools
import os
import re
import sys

import mmr1
import vas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
import evidence  # noqa: E402


def algorithm_table() -> tuple[int, list[str]]:
    """The line where the table of Algorithm 1's steps starts, and the `mmr1.x` / `vas.X.y` names it gives."""
    lines = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## Algorithm 1"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    return start, re.findall(r"`((?:mmr1|vas)(?:\.\w+)+)`", "\n".join(lines[start:end]))


def test_every_function_the_algorithm_table_names_exists():
    _, names = algorithm_table()
    assert len(names) >= 12
    for name in names:
        module, *path = name.split(".")
        obj = functools.reduce(getattr, path, {"mmr1": mmr1, "vas": vas}[module])
        assert callable(obj), name


def readme() -> list[str]:
    return open(os.path.join(ROOT, "README.md"), encoding="utf-8").read().splitlines()


def block_lines(lines: list[str], name: str) -> range:
    """The lines of a generated block, its markers excluded."""
    start = lines.index(f"<!-- evidence: {name} -->")
    return range(start + 1, lines.index("<!-- /evidence -->", start))


def test_the_first_screen_says_what_vas_does_what_the_evidence_says_and_what_to_expect():
    lines = readme()
    screen = "\n".join(lines[:evidence.FIRST_SCREEN])
    assert "python -m pytest -q -n 2 --dist loadfile tests" in "\n".join(lines[:40])
    assert "pip install -r requirements.txt" in screen
    assert "What VAS does" in screen and "*dead*" in screen and "*scoring rollouts*" in screen
    for name in ("uniform", "the paper's VAS", "posterior VAS", "focusing VAS"):  # each defined before the evidence
        assert screen.index(f"**{name}**" if name != "focusing VAS" else "**Focusing VAS**") < screen.index(
            "<!-- evidence: answer -->"), name
    assert "python mmr1.py --no-vas --seed 0" in screen and "python mmr1.py --vas --seed 0" in screen
    figure = re.search(r"!\[[^]]*\]\((assets/[^)]+\.png)\)", screen)
    assert figure and os.path.exists(os.path.join(ROOT, figure[1]))
    for name in ("answer", "first-run"):  # both generated blocks whole on the first screen, after the quick start
        assert block_lines(lines, name)[-1] < evidence.FIRST_SCREEN, name
    table = [lines[i] for i in block_lines(lines, "first-run") if lines[i].startswith("| ")]
    assert "uniform" in table[0] and "posterior VAS" in table[0] and len(table) >= 4  # header, rule, two rows
    assert "on this seed" in screen and "under uniform" in screen  # seed 0, uniform beside posterior VAS
    start, _ = algorithm_table()
    assert block_lines(lines, "first-run")[-1] < start


def test_every_block_and_every_first_screen_number_is_computed_from_the_committed_files():
    text = open(evidence.README, encoding="utf-8").read()
    have, want = evidence.page_blocks(text), evidence.blocks()[evidence.README]
    for name, block in want.items():
        assert have.get(name) == block, f"README block {name}: run python assets/evidence.py --write"
    assert evidence.stray_numbers(evidence.README) == []


def test_the_readme_is_short_and_its_links_resolve():
    lines = readme()
    assert len(lines) <= 250
    for target in re.findall(r"\]\(([^)#]+)\)", "\n".join(lines)):
        assert os.path.exists(os.path.join(ROOT, target)), target
