"""README.md: a first screen of at most 40 lines that says what VAS does and shows uniform beside VAS; the
Algorithm 1 table names only functions that exist and follows it; the whole at most 250 lines, its links alive."""
import functools
import os
import re

import mmr1
import vas

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_the_first_screen_says_what_vas_does_and_shows_uniform_beside_it():
    lines = readme()
    first = "\n".join(lines[:40])  # the first screen
    quick = lines.index("## Quick start")
    assert next(i for i in range(quick + 3, len(lines)) if lines[i] == "```") < 40  # the whole quick start on it
    assert "pip install -r requirements.txt" in first and "python -m pytest -q -n 2 --dist loadfile tests" in first
    assert "What VAS does" in first and "dead" in first
    assert "python mmr1.py --no-vas --seed 0" in first and "python mmr1.py --vas --seed 0" in first
    table = [line for line in first.splitlines() if line.startswith("| ")]
    assert "uniform" in table[0] and "VAS" in table[0] and len(table) >= 4  # header, rule, two rows or more
    start, _ = algorithm_table()
    assert start < 60  # after the first screen and the quick start


def test_the_readme_is_short_and_its_links_resolve():
    lines = readme()
    assert len(lines) <= 250
    for target in re.findall(r"\]\(([^)#]+)\)", "\n".join(lines)):
        assert os.path.exists(os.path.join(ROOT, target)), target
