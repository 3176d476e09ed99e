"""Shared fixtures. `cold_start`: a tiny SFT checkpoint trained once per test session, for the end-to-end RL
tests (helpers.COLD_START says why). To keep it between sessions while working on the tests, set
MMR1_TEST_CACHE=DIR: it is then trained once per version of mmr1.py / vas.py / data.py and reused from DIR."""
import hashlib
import pathlib
import os

import pytest

import mmr1
from helpers import COLD_START, ROOT, SOURCES


@pytest.fixture(scope="session")
def cold_start_run(tmp_path_factory):
    """The directory of the cold-start run: metrics.jsonl, summary.json, sft/ and final/ (the same weights)."""
    cache = os.environ.get("MMR1_TEST_CACHE")
    if not cache:
        out = tmp_path_factory.mktemp("cold_start")
        mmr1.main([*COLD_START, "--out", str(out)])
        return out
    key = hashlib.sha256(" ".join(COLD_START).encode())
    for name in SOURCES:
        key.update(open(os.path.join(ROOT, name), "rb").read())
    out = pathlib.Path(cache) / f"cold_start-{key.hexdigest()[:12]}"
    if not (out / "summary.json").exists():
        mmr1.main([*COLD_START, "--out", str(out)] + ["--resume", str(out)] * (out / "args.json").exists())
    return out


@pytest.fixture(scope="session")
def cold_start(cold_start_run):
    """The cold-start checkpoint, in save_pretrained format: for --init-from (RL only) or --model (more SFT)."""
    return str(cold_start_run / "sft")
