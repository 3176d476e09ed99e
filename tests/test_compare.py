"""assets/compare_vas.py end to end on a tiny configuration: cold start, two arms, one seed, outputs."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
import compare_vas  # noqa: E402
from helpers import FROM_COLD_START, assert_learning_signal  # noqa: E402

# the script's own cold start is 1 SFT step on top of the session's (at a low lr: it keeps the answer format),
# so its RL arms have groups with unequal rewards: 2 prompts x G = 4 per step
TINY = [*FROM_COLD_START, "--num-sft", "16", "--num-rl", "4", "--num-test", "4", "--sft-steps", "1", "--sft-batch", "4",
        "--sft-lr", "1e-4", "--prompts-per-step", "2", "--group-size", "4", "--num-scoring", "2", "--refresh-every",
        "1", "--eval-every", "1"]


def test_compare_writes_figure_table_and_json_and_resumes(tmp_path, cold_start):
    argv = ["--out", str(tmp_path), "--workdir", str(tmp_path / "runs"), "--seeds", "3", "--rl-steps", "2",
            "--arms", "uniform", "vas-0.5", "--", "--model", cold_start, *TINY]
    compare_vas.main(argv)
    for arm in ("uniform", "vas-0.5"):  # both arms learned something, from the shared cold start
        assert_learning_signal(tmp_path / "runs" / f"{arm}-3", tmp_path / "runs" / "sft" / "sft")
    assert (tmp_path / "vas_compare.png").stat().st_size > 10_000
    rows = [line for line in (tmp_path / "vas_compare.md").read_text().splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[2:]] == ["uniform", "vas-0.5"]  # header, rule, a row per arm
    results = json.load(open(tmp_path / "vas_compare.json"))["results"]
    assert set(results) == {"uniform", "vas-0.5"} and all(set(r) == {"3"} for r in results.values())
    run = results["vas-0.5"]["3"]
    assert run["eval_steps"] == [0, 1, 2] and len(run["curves"]["train/grad_norm"]) == 2
    assert min(run["curves"]["reward/zero_std_frac"]) < 1 and min(run["curves"]["train/grad_norm"]) > 0
    assert run["vas_s"] > 0 and results["uniform"]["3"]["vas_s"] == 0  # VAS scoring is timed, uniform has none
    # every arm starts from the shared cold start, with two update epochs, its seed and its own flags
    args = json.load(open(tmp_path / "runs" / "vas-0.5-3" / "args.json"))
    assert (args["update_epochs"], args["seed"], args["vas"], args["mixture_ratio"]) == (2, 3, True, 0.5)
    assert args["init_from"] == str(tmp_path / "runs" / "sft" / "sft")
    # a second call finds every run finished and only redraws
    metrics = tmp_path / "runs" / "uniform-3" / "metrics.jsonl"
    lines = metrics.read_text().count("\n")
    compare_vas.main(argv)
    assert metrics.read_text().count("\n") == lines
