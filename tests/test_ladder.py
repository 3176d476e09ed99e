"""assets/ladder.py and docs/experiments.md: the ladder runs and gathers on a tiny configuration, its figure redraws
from the committed metrics alone, every command on the page parses, every number on the page is in the metrics."""
import json
import os
import re
import shlex
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
import ladder  # noqa: E402
import mmr1  # noqa: E402
from helpers import FROM_COLD_START  # noqa: E402

PAGE, METRICS = os.path.join(ROOT, "docs", "experiments.md"), os.path.join(ROOT, "assets", "ladder.json")
TINY = [*FROM_COLD_START, "--num-rl", "8", "--num-test", "8", "--prompts-per-step", "2", "--group-size", "4",
        "--rl-steps", "2", "--eval-every", "1"]


def test_ladder_runs_its_rows_and_gathers(tmp_path, cold_start):
    argv = ["--init-from", cold_start, "--workdir", str(tmp_path / "runs"), "--out", str(tmp_path),
            "--rows", "uniform", "no-kl", "--seeds", "0", "1", "--", *TINY]
    result = ladder.main(argv)
    uniform, no_kl = result["rows"]["uniform"], result["rows"]["no-kl"]
    run = uniform["runs"][0]
    assert [e["step"] for e in run["evals"]] == [0, 1, 2] and [e["rollouts"] for e in run["evals"]] == [0, 8, 16]
    assert run["evals"][0]["accuracy"] == uniform["runs"][1]["evals"][0]["accuracy"]  # one cold start
    assert sorted(run["evals"][-1]) == sorted(["step", "rollouts", "accuracy", *ladder.FAMILIES])
    acc = [100 * r["evals"][-1]["accuracy"] for r in no_kl["runs"].values()]
    assert no_kl["final"]["accuracy"]["seeds"] == acc
    assert no_kl["vs_base"]["accuracy"][0] == pytest.approx(
        round(sum(acc) / 2 - uniform["final"]["accuracy"]["mean"], 1), abs=0.051)
    assert json.load(open(tmp_path / "runs" / "no-kl-1" / "args.json"))["kl_coef"] == 0
    assert (tmp_path / "ladder.png").stat().st_size > 10_000
    lines = (tmp_path / "runs" / "uniform-0" / "metrics.jsonl").read_text().count("\n")
    ladder.main(argv)  # a finished run is skipped
    assert (tmp_path / "runs" / "uniform-0" / "metrics.jsonl").read_text().count("\n") == lines


def test_the_figure_redraws_from_the_committed_metrics_alone(tmp_path):
    shutil.copy(METRICS, tmp_path / "ladder.json")
    ladder.main(["--plot", "--out", str(tmp_path)])
    assert (tmp_path / "ladder.png").stat().st_size > 10_000


def page_commands() -> list[str]:
    text = open(PAGE).read()
    spans = re.findall(r"`(python mmr1\.py[^`]*)`", text) + re.findall(r"^(python mmr1\.py.*)$", text, re.M)
    return [s.split("#")[0].strip() for s in spans]


def test_every_mmr1_command_on_the_page_parses_and_each_row_has_its_own():
    commands = page_commands()
    for command in commands:  # S: a seed
        mmr1.parse_args(["0" if w == "S" else w for w in shlex.split(command)[2:]])
    for flags in ladder.ROWS.values():
        assert " ".join(["python mmr1.py --init-from runs/cold-1/sft --seed S", *flags]) in commands


def numbers_in(text: str) -> set[str]:
    """The numbers a reader sees in prose and tables: code spans and blocks, links and headings aside."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`|\]\([^)]*\)|^#.*$", "", text, flags=re.M)
    return set(re.findall(r"(?<![\w.])[+-]?\d+(?:,\d{3})*(?:\.\d+)?", text))


def leaves(tree) -> set[str]:
    """Every number in the metrics file, as the page may print it."""
    if isinstance(tree, dict):
        return set().union(*map(leaves, tree.values()))
    if isinstance(tree, list):
        return set().union(set(), *map(leaves, tree))
    if isinstance(tree, bool) or not isinstance(tree, (int, float)):
        return set()
    return {f"{tree:,.{d}f}" for d in range(5)} | {f"{tree:.{d}f}" for d in range(5)}


def test_every_number_on_the_page_is_in_the_metrics():
    data = json.load(open(METRICS))
    page, tables = open(PAGE).read(), "\n".join(ladder.tables(data))
    allowed = numbers_in(tables) | leaves(data)
    assert [n for n in sorted(numbers_in(page)) if n.lstrip("+-") not in allowed and n not in allowed] == []
    for line in tables.splitlines():  # the tables themselves, as the script writes them
        assert line in page, line
