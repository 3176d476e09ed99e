"""assets/bench_rl.py end to end on a tiny configuration (mmr1 only), and TRL's prompt against mmr1's."""
import json
import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
import bench_rl  # noqa: E402
import data  # noqa: E402
import mmr1  # noqa: E402  (bench_rl puts the repository root on the path)

TINY = ["--image-size", "56", "--num-sft", "16", "--num-rl", "8", "--num-test", "4", "--sft-batch", "4",
        "--prompts-per-step", "2", "--group-size", "2", "--max-new-tokens", "6"]


def test_bench_times_mmr1_and_writes_json(tmp_path):
    bench_rl.main(["--skip-trl", "--sft-steps", "2", "--steps", "3", "--out", str(tmp_path), "--", *TINY])
    res = json.load(open(tmp_path / "bench_rl.json"))
    assert res["trl"] is None and res["machine"]["torch_threads"] >= 1
    assert res["settings"]["prompts_per_step"] == 2 and res["settings"]["timed_steps"] == 1  # `--` flags win
    m = res["mmr1"]
    # step_s is the difference of two runs' wall times: over one tiny step it is noise, of either sign
    assert m["step_s_metric"] > 0 and math.isfinite(m["step_s"]) and 1 <= m["completion_len"] <= 6
    assert set(m["rl_s"]) == {"2", "3"}  # the 2-step run is what the 3-step run's time is measured against


def test_trl_prompt_ids_equal_mmr1s(tmp_path):
    pytest.importorskip("trl")
    mmr1.main([*TINY, "--sft-steps", "1", "--rl-steps", "0", "--out", str(tmp_path)])
    example = data.toy_splits(mmr1.parse_args(TINY))["rl"][0]
    assert bench_rl.check_prompt(str(tmp_path / "sft"), example)["ids_match"]  # it asserts ids and pixels
