"""assets/default_runs.py, the default run on six seeds (README's "What to expect"): on a tiny model it runs both
arms from scratch and writes the JSON assets/evidence.py reads; a second call runs nothing, a begun run resumes, a
run made with other flags stops it; lanes split the plan, seed-major, and a lane with nothing left waits."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets"))
import default_runs  # noqa: E402
import evidence  # noqa: E402
import mmr1  # noqa: E402

TINY = ["--sft-steps", "2", "--sft-batch", "4", "--rl-steps", "1", "--num-rl", "8", "--num-test", "4",
        "--prompts-per-step", "2", "--group-size", "2", "--eval-every", "0", "--num-sft", "16", "--image-size", "56",
        "--max-new-tokens", "4"]


def tool(tmp_path, *flags, tiny=TINY):
    return default_runs.main(["--workdir", str(tmp_path / "runs"), "--out", str(tmp_path / "default_runs.json"),
                              *flags, "--", *tiny])


def test_both_arms_run_gather_and_skip_what_is_finished(tmp_path, monkeypatch):
    out = tool(tmp_path, "--seeds", "0", "1")
    assert json.load(open(tmp_path / "default_runs.json")) == json.loads(json.dumps(out))
    assert out["commit"] == subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=default_runs.ROOT,
                                           capture_output=True, text=True).stdout.strip()
    assert out["runs_command"]["vas"].startswith("python mmr1.py --vas --seed S --sft-steps 2")
    assert out["settings"]["rl_steps"] == 1 and out["settings"]["num_test"] == 4  # the runs' flags ...
    assert out["settings"]["rl_lr"] == mmr1.Args().rl_lr  # ... and mmr1.py's defaults
    assert (out["planned"], out["finished"], out["seeds"]) == (4, 4, [0, 1])
    assert sorted(out["runs"]) == ["uniform", "vas"] and all(sorted(by) == ["0", "1"] for by in out["runs"].values())
    for arm, vas in (("uniform", False), ("vas", True)):  # each arm's own flag, each seed its own run from scratch
        args = json.load(open(tmp_path / "runs" / arm / "seed1" / "args.json"))
        assert (args["vas"], args["seed"], args["init_from"], args["sft_steps"]) == (vas, 1, "", 2)
    run = out["runs"]["vas"]["1"]
    assert sorted(run) == ["all_equal", "code_changed", "commit", "curve", "resumed", "rl", "rl_s", "sft", "sft_s",
                           "steps", "wall_s"]
    assert sorted(run["sft"]) == sorted(run["rl"]) == ["all", "biggest"] and 0 <= run["rl"]["biggest"] <= 1
    assert run["curve"]["rollouts"] == [0, 4] and run["curve"]["all"] == [run["sft"]["all"], run["rl"]["all"]]
    assert run["steps"] == 1 and 0 <= run["all_equal"] <= 1 and run["wall_s"] > 0 and run["resumed"] is False
    assert run["commit"] == out["commit"]
    assert out["runs"]["uniform"]["0"]["sft"] == out["runs"]["vas"]["0"]["sft"]  # one seed, one SFT

    calls = []  # all finished: a second call runs nothing and gathers the same
    monkeypatch.setattr(mmr1, "main", lambda argv: calls.append(argv))
    again = tool(tmp_path, "--seeds", "0", "1")
    assert calls == [] and again["runs"] == out["runs"]

    begun = tmp_path / "runs" / "uniform" / "seed1"  # a begun run (no summary yet) continues from its checkpoint
    summary = (begun / "summary.json").read_text()
    os.remove(begun / "summary.json")
    monkeypatch.setattr(mmr1, "main", lambda argv: calls.append(argv) or (begun / "summary.json").write_text(summary))
    resumed = tool(tmp_path, "--seeds", "0", "1")
    assert calls == [["--no-vas", "--seed", "1", *TINY, "--out", str(begun), "--resume", str(begun)]]
    assert resumed["runs"]["uniform"]["1"]["resumed"] is True  # its seconds: the last process's only

    with pytest.raises(SystemExit, match="other flags"):  # runs of another setting are not taken for these
        tool(tmp_path, "--seeds", "0", "1", tiny=[*TINY, "--rl-lr", "2e-4"])
    assert len(calls) == 1


def fake_run(argv):
    """A stand-in for mmr1.main: a finished run whose held-out accuracy is 0.5 after SFT, 0.5 + seed / 10 (+ 0.05
    under VAS) after RL, "biggest" half that."""
    args = mmr1.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    json.dump(dataclasses.asdict(args), open(os.path.join(args.out, "args.json"), "w"))
    acc = lambda x: {"eval/accuracy": x, "eval/accuracy_biggest": x / 2,  # noqa: E731
                     **{f"eval/accuracy_{f}": x for f in ("colour", "shape", "count")}}
    rows = [{"stage": "sft_done", **acc(0.5)},
            {"stage": "rl", "step": 0, "rollouts/total": 4, "reward/zero_std_frac": 0.5,
             **acc(0.5 + args.seed / 10 + 0.05 * args.vas)}]
    open(os.path.join(args.out, "metrics.jsonl"), "w").write("".join(json.dumps(r) + "\n" for r in rows))
    json.dump({"time/total_s": 500.0 + args.seed, "time/sft_s": 400.0, "time/rl_s": 100.0},
              open(os.path.join(args.out, "summary.json"), "w"))


class Waits(Exception):
    pass


def test_lanes_split_the_plan_and_a_lane_with_nothing_left_waits(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(mmr1, "main", lambda argv: ran.append((argv[0], int(argv[2]))) or fake_run(argv))

    def sleep(s):
        raise Waits

    monkeypatch.setattr(default_runs.time, "sleep", sleep)
    with pytest.raises(Waits):  # lane 1 of 2: every other run of the seed-major plan, then it waits for lane 0
        tool(tmp_path, "--lane", "1/2", "--seeds", "0", "1", "2")
    assert ran == [("--vas", 0), ("--vas", 1), ("--vas", 2)] and not (tmp_path / "default_runs.json").exists()
    ran.clear()
    out = tool(tmp_path, "--lane", "0/2", "--seeds", "0", "1", "2")  # the rest; then all are finished: it gathers
    assert ran == [("--no-vas", 0), ("--no-vas", 1), ("--no-vas", 2)] and out["finished"] == 6
    run = out["runs"]["vas"]["2"]
    assert run["sft"] == {"all": 0.5, "biggest": 0.25} and run["rl"] == pytest.approx({"all": 0.75, "biggest": 0.375})
    assert run["all_equal"] == 0.5 and run["wall_s"] == 502
    r = evidence.default_run_json(json.load(open(tmp_path / "default_runs.json")))  # what README's block reads
    assert list(r["seed"]) == [0, 1, 2] and r["diff"] == pytest.approx([5, 5, 5]) and r["time"] == (500, 500, 0)
