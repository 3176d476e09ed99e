"""assets/compare_vas.py end to end on a tiny configuration: a pool with a dead share, the arms on one rollout clock,
the outputs; the figure (one colour an arm in every panel) and its redraw from the JSON alone; its statistics and the
scoring bill by hand."""
import json
import os
import sys

import matplotlib.pyplot as plt
from matplotlib.colors import to_rgba
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
import compare_vas  # noqa: E402
from helpers import FROM_COLD_START  # noqa: E402

TINY = [*FROM_COLD_START, "--num-rl", "8", "--num-test", "8", "--prompts-per-step", "2", "--group-size", "4",
        "--num-scoring", "2", "--refresh-every", "1", "--rollout-budget", "32", "--eval-rollouts", "8"]
ARMS = ["uniform", "vas-paper", "vas-free", "filter"]


def test_compare_runs_the_arms_on_one_rollout_clock_and_resumes(tmp_path, cold_start):
    argv = ["--init-from", cold_start, "--out", str(tmp_path), "--workdir", str(tmp_path / "runs"), "--seeds", "3",
            "--shares", "0.75", "--arms", *ARMS, "--targets", "0.0", "--", *TINY]
    compare_vas.main(argv)
    results = json.load(open(tmp_path / "vas_compare.json"))["results"]["0.75"]
    uniform, paper, free = (results[arm]["3"] for arm in ("uniform", "vas-paper", "vas-free"))
    # a step is 2 prompts x G = 4 = 8 rollouts; evaluated at each multiple of 8, stopped at 32 generated.
    # The paper's VAS (its arm sets N = 8) scores the pool of 8 before the first step: 64 + 8, past the budget
    assert uniform["rollouts"] == [0, 8, 16, 24, 32] and uniform["scoring_rollouts"] == 0
    assert paper["rollouts"] == [0, 72] and paper["scoring_rollouts"] == 64
    assert free["rollouts"] == [0, 8, 16, 24, 32] and free["scoring_rollouts"] == 0  # posterior VAS scores nothing
    assert sorted(free["family_accuracy"]) == ["biggest", "colour", "count", "shape"]  # per family, every evaluation
    assert free["family_accuracy"]["biggest"] == free["target_accuracy"] and len(free["family_accuracy"]["count"]) == 5
    assert compare_vas.to_target(paper, 0.0) == 0 and compare_vas.to_target(paper, 1.01) is None
    for arm in ARMS:
        args = json.load(open(tmp_path / "runs" / "d0.75" / f"{arm}-3" / "args.json"))
        assert (args["dead_share"], args["seed"], args["init_from"]) == (0.75, 3, cold_start)
        assert [args[k] for k in ("vas", "vas_online", "num_scoring", "filter_groups")] == {
            "uniform": [False, True, 2, 0], "vas-paper": [True, False, 8, 0], "vas-free": [True, True, 0, 0],
            "filter": [False, True, 2, 4]}[arm]
    assert (tmp_path / "vas_compare.png").stat().st_size > 10_000
    rows = [line for line in (tmp_path / "vas_compare.md").read_text().splitlines() if line.startswith("| 0.75")]
    arms = [next(c.strip() for c in r.split("|") if c.strip() in compare_vas.ARMS) for r in rows]
    assert arms == ARMS * 3  # rollouts to the target, accuracy at equal rollouts, statistics
    # a second call finds every run finished and only redraws
    metrics = tmp_path / "runs" / "d0.75" / "uniform-3" / "metrics.jsonl"
    lines = metrics.read_text().count("\n")
    compare_vas.main(argv)
    assert metrics.read_text().count("\n") == lines


def test_each_arm_has_one_colour_in_every_panel_and_the_legend_names_every_arm():
    # d = 0.9 holds an arm the default pool lacks, inserted before two others: drawn by position, the committed
    # figure's d = 0.9 lines took the colours the first panel's legend gave other arms
    run = lambda acc: {"rollouts": [0, 640], "target_accuracy": [0.2, acc], "accuracy": [0.6, acc]}  # noqa: E731
    results = {"0.0": {arm: {0: run(0.5), 1: run(0.6)} for arm in ("uniform", "vas-paper", "vas-free", "filter")},
               "0.9": {arm: {s: run(0.4) for s in range(5)}
                       for arm in ("uniform", "vas-paper", "vas-paper-0.5", "vas-free", "filter")}}
    results["0.9"]["filter"] = {0: run(0.3), 1: run(0.3), 2: run(0.3)}
    fig = compare_vas.plot(results, "biggest", [0.8])
    try:
        for ax in fig.axes:
            for line in ax.get_lines():
                if line.get_label() in compare_vas.ARMS:  # the target's dotted line has no arm
                    assert to_rgba(line.get_color()) == to_rgba(compare_vas.COLOURS[line.get_label()]), ax.get_title()
        assert [t.get_text() for t in fig.legends[0].get_texts()] == [
            "uniform", "vas-paper", "vas-paper-0.5", "vas-free", "filter"]
        assert not any(ax.get_legend() for ax in fig.axes)  # one legend, the figure's
        assert sorted(compare_vas.COLOURS) == sorted(compare_vas.ARMS)
        assert len(set(compare_vas.COLOURS.values())) == len(compare_vas.ARMS)
        titles = [ax.get_title() for ax in fig.axes]  # row by row: d = 0, d = 0.9, then the second row
        assert titles[0].endswith("2 seeds per arm") and titles[2].endswith("2 seeds per arm")
        assert titles[1].endswith("seeds: uniform 5, vas-paper 5, vas-paper-0.5 5, vas-free 5, filter 3")
    finally:
        plt.close(fig)


def test_replot_redraws_the_figure_from_the_json_alone(tmp_path):
    """The committed JSON's runs are not on this machine: --replot needs nothing else."""
    json_path = os.path.join(ROOT, "assets", "vas_compare.json")
    (tmp_path / "vas_compare.json").write_bytes(open(json_path, "rb").read())
    results = compare_vas.main(["--replot", "--out", str(tmp_path), "--workdir", str(tmp_path / "absent")])
    assert results == json.load(open(json_path))["results"]
    assert (tmp_path / "vas_compare.png").stat().st_size > 10_000 and not (tmp_path / "absent").exists()
    assert sorted(os.listdir(tmp_path)) == ["vas_compare.json", "vas_compare.png"]


def test_rollouts_to_target_and_intervals_by_hand():
    run = {"rollouts": [0, 100, 200, 300], "target_accuracy": [0.2, 0.5, 0.9, 0.8]}
    assert compare_vas.to_target(run, 0.5) == 100 and compare_vas.to_target(run, 0.85) == 200
    m, lo, hi = compare_vas.mean_interval(compare_vas.np.array([1.0, 3.0]))  # sd 1.414, se 1, t(1) = 12.706
    assert (m, round(lo, 3), round(hi, 3)) == (2.0, -10.706, 14.706)
    d, lo, hi = compare_vas.difference(compare_vas.np.array([1.0, 3.0]), compare_vas.np.array([5.0, 7.0]))
    assert d == -4.0 and round(hi - d, 2) == round(4.303 * 2 ** 0.5, 2)  # Welch df = 2


def test_a_target_uniform_never_reached_bounds_the_difference():
    """Uniform's runs that end short of the target count at their last rollout count: the difference is a bound."""
    run = lambda n, acc: {"rollouts": [0, n, 2 * n], "target_accuracy": [0.1, acc, acc], "accuracy": [0.5] * 3,  # noqa
                          "zero_std_start": 0.5, "zero_std_frac": 0.5, "dropped_frac": 0.0, "scoring_rollouts": 0,
                          "grad_norm": 0.1}
    results = {0.9: {"uniform": {0: run(1000, 0.5), 1: run(1200, 0.95)}, "vas-1.0": {0: run(300, 0.95), 1: run(500, 0.95)}}}
    lines = compare_vas.table(results, "biggest", [0.9])
    uniform, vas_row = (next(x for x in lines if x.startswith(f"| 0.9 | {arm} |")) for arm in ("uniform", "vas-1.0"))
    assert "| 1/2 |" in uniform and "| 2/2 |" in vas_row
    assert "<= -1,200 [" in vas_row  # mean(300, 500) - mean(2000 at its end, 1200)


def test_scoring_bill_hand_computed():
    # pool * N / (B * G * T_update): scoring rollouts per training rollout
    assert compare_vas.scoring_bill(15000, 32, 35, 512, 8) == pytest.approx(3.348, abs=1e-3)  # paper, main text
    assert compare_vas.scoring_bill(15000, 16, 56, 512, 8) == pytest.approx(1.046, abs=1e-3)  # paper, Table 6
    assert compare_vas.scoring_bill(10000, 8, 4, 512, 8) == pytest.approx(4.883, abs=1e-3)  # released config
    assert compare_vas.scoring_bill(256, 8, 30, 16, 8) == pytest.approx(2048 / 3840)  # tiny default: 0.5333
