"""README.md's first screen: the Algorithm 1 table names only functions that exist, and it sits near the top."""
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


def test_the_table_is_on_the_first_screen():
    start, _ = algorithm_table()
    assert start < 30
