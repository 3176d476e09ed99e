"""assets/decide.py, the runner of docs/protocol.md: on a tiny model it runs a phase from its own cold start and
gathers the JSON, tables and figure; a second call runs nothing; a run stopped part-way continues from its
checkpoint to the same numbers; the add-seeds rule plans more seeds only where an interval is too wide, and only on
finished blocks; the figure gives each arm one colour, by name, in every panel, and a legend that names them all."""
import json
import os
import shutil
import subprocess
import sys

import matplotlib.pyplot as plt
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets"))
import decide  # noqa: E402
import mmr1  # noqa: E402
from helpers import FROM_COLD_START  # noqa: E402

RL = ["--num-rl", "8", "--num-test", "8", "--prompts-per-step", "2", "--group-size", "2"]  # 4 rollouts a step
TINY = ["--sft-steps", "2", "--num-sft", "16", "--image-size", "56", "--max-new-tokens", "4", *RL]
CLOCK = {"budget": 8, "eval_rollouts": 4, "num_test": 8, "last_k": 2, "tune_seeds": 1, "after_step": 1}  # 2 steps


def tune(tmp_path, workdir="runs", start=("--cold-seed", "3"), tiny=TINY, settings=("lr5e-5-e1", "lr2e-4-e2"),
         **clock):
    return decide.main(["tune", *start, "--workdir", str(tmp_path / workdir), "--out", str(tmp_path),
                        "--settings", *settings, "--protocol", json.dumps({**CLOCK, **clock}), "--", *tiny])


def test_a_phase_runs_gathers_and_skips_what_is_finished(tmp_path, monkeypatch):
    out = tune(tmp_path)
    runs = out["runs"]["0.9"]
    assert sorted(runs) == ["lr2e-4-e2", "lr5e-5-e1"] and list(runs["lr5e-5-e1"]) == [0]
    run = runs["lr2e-4-e2"][0]
    assert run["rollouts"] == [0, 4, 8]  # the cold start's evaluation, then one every 4 rollouts
    assert sorted(run["accuracy"]) == ["all", "biggest", "colour", "count", "shape"]
    assert all(len(v) == 3 for v in run["accuracy"].values())
    assert run["steps"] == 2 and 0 <= run["all_equal"] <= 1  # step 1's all-equal share (after_step 1)
    assert run["dead_drawn"] is None or 0 <= run["dead_drawn"] <= 1  # logged on dead pools by newer mmr1.py
    assert run["flags"]["rl_lr"] == 2e-4 and run["flags"]["update_epochs"] == 2 and run["flags"]["dead_share"] == 0.9
    args = json.load(open(tmp_path / "runs" / "tune" / "d0.9" / "lr2e-4-e2" / "seed0" / "args.json"))
    assert args["num_test"] == 8 and args["rollout_budget"] == 8 and args["init_from"].endswith("cold-3/sft")
    assert out["chosen"] in ("lr5e-5-e1", "lr2e-4-e2") and out["summary"]["0.9"]["lr2e-4-e2"]["seeds"] == 1
    assert json.load(open(tmp_path / "tuning.json"))["chosen"] == out["chosen"]
    protocol = subprocess.run(["git", "log", "-1", "--format=%h", "--", "docs/protocol.md"], cwd=decide.ROOT,
                              capture_output=True, text=True).stdout.strip()
    assert out["protocol_commit"] == protocol and len(protocol) >= 7  # the protocol the runs ran under
    assert (tmp_path / "tuning.png").stat().st_size > 10_000 and "lr2e-4-e2" in (tmp_path / "tuning.md").read_text()
    calls = []  # everything is finished: a second call runs nothing, and gathers the same
    monkeypatch.setattr(mmr1, "main", lambda argv: calls.append(argv))
    again = tune(tmp_path)
    assert calls == [] and again["runs"] == out["runs"]
    shutil.rmtree(tmp_path / "runs" / "tune")  # a later session: the run directories gone, tuning.json committed
    assert tune(tmp_path)["runs"] == out["runs"] and calls == []  # kept from the JSON, nothing run again
    saved = json.load(open(tmp_path / "tuning.json"))
    saved["cold_start"]["eval/accuracy_after_sft"] += 0.5  # as if the cold start were made anew, differently
    json.dump(saved, open(tmp_path / "tuning.json", "w"))
    with pytest.raises(SystemExit, match="another cold start"):
        tune(tmp_path)


def finished_by_hand(run):
    """A finished run's files, made by hand: one RL step, evaluated."""
    run.mkdir(parents=True)
    rows = [{"stage": "sft_done", "eval/accuracy": 0.5, **{f"eval/accuracy_{f}": 0.5 for f in decide.FAMILIES}},
            {"stage": "rl", "step": 0, "reward/zero_std_frac": 0.5, "rollouts/total": 8, "eval/accuracy": 0.75,
             **{f"eval/accuracy_{f}": 0.75 for f in decide.FAMILIES}}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "summary.json").write_text(json.dumps({"time/total_s": 1.0, "time/rl_s": 1.0}))
    (run / "args.json").write_text(json.dumps(vars(mmr1.parse_args(["--dead-share", "0.9"]))))


def test_a_sweep_not_finished_chooses_nothing_and_the_report_waits_for_it(tmp_path):
    """A part of the grid (here none of it) gathered: no setting chosen, and the report phase refuses to start
    without one rather than take a choice made on some of the runs."""
    finished_by_hand(tmp_path / "part" / "tune" / "d0.9" / "lr5e-5-e1" / "seed0")  # one of the grid's two
    flags = ["--workdir", str(tmp_path / "part"), "--out", str(tmp_path), "--protocol", json.dumps(CLOCK)]
    out = decide.main(["tune", "--gather", "--settings", "lr5e-5-e1", "lr2e-4-e2", *flags])
    assert list(out["runs"]["0.9"]) == ["lr5e-5-e1"] and out["chosen"] is None
    said = (tmp_path / "tuning.md").read_text()
    assert "Chosen setting: none (the rule needs every run of the grid at d = 0.9)" in said
    with pytest.raises(SystemExit):
        decide.main(["report", "--gather", *flags])


def test_deviations_are_kept_across_gathers_once_each_and_only_for_their_protocol(tmp_path):
    """The report lists every departure from the protocol: one named at a gather stays in the JSON for the later
    gathers, is not listed twice, and does not follow the file into an experiment with another protocol."""
    finished_by_hand(tmp_path / "runs" / "tune" / "d0.9" / "lr5e-5-e1" / "seed0")

    def gather(*deviations, clock=CLOCK):
        return decide.main(["tune", "--gather", "--settings", "lr5e-5-e1", "--workdir", str(tmp_path / "runs"),
                            "--out", str(tmp_path), "--protocol", json.dumps(clock),
                            *(x for d in deviations for x in ("--deviation", d))])["deviations"]

    assert gather() == []
    assert gather("lanes paused 4 min") == ["lanes paused 4 min"]
    assert gather() == ["lanes paused 4 min"]  # kept from the JSON
    assert gather("run rerun", "lanes paused 4 min") == ["lanes paused 4 min", "run rerun"]
    saved = json.load(open(tmp_path / "tuning.json"))
    assert saved["deviations"] == ["lanes paused 4 min", "run rerun"]
    assert saved["command"].startswith("python assets/decide.py tune --gather") and "rerun" not in saved["command"]
    assert gather(clock={**CLOCK, "num_test": 4}) == []  # another experiment: not its deviations


def test_a_run_stopped_part_way_continues_to_the_same_numbers(tmp_path, cold_start):
    # from the tests' cold start, which answers some items right (the tiny one above answers none)
    start, tiny, one = ("--init-from", cold_start), [*FROM_COLD_START, *RL], ["lr2e-4-e2"]  # 2 update epochs
    whole = tune(tmp_path, "whole", start, tiny, one, budget=12)["runs"]["0.9"]
    tune(tmp_path, "cut", start, tiny, one, budget=4)  # as if stopped after its first step: its checkpoint, no summary
    run = tmp_path / "cut" / "tune" / "d0.9" / one[0] / "seed0"
    os.remove(run / "summary.json")
    before = (run / "metrics.jsonl").read_text()
    cut = tune(tmp_path, "cut", start, tiny, one, budget=12)["runs"]["0.9"]  # continued with --resume to 12
    assert (run / "metrics.jsonl").read_text().startswith(before)  # continued, not restarted: its first step kept
    assert any(a > 0 for run in whole.values() for a in run[0]["accuracy"]["all"])  # numbers worth comparing
    for name in whole:
        assert cut[name][0]["rollouts"] == [0, 4, 8, 12]
        for key in ("rollouts", "accuracy", "all_equal", "all_equal_all_steps", "steps"):
            assert cut[name][0][key] == whole[name][0][key], (name, key)


def test_a_run_record_by_hand(tmp_path):
    rows = [{"stage": "sft_done", "eval/accuracy": 0.5, **{f"eval/accuracy_{f}": 0.5 for f in decide.FAMILIES}}]
    for step in range(12):  # all-equal shares 0, 0.1, ..., 1.1; the dead-drawn share logged from step 10 on
        rows.append({"stage": "rl", "step": step, "reward/zero_std_frac": step / 10, "rollouts/total": 128 * (step + 1),
                     **({"vas/dead_drawn": step / 100} if step >= 10 else {})})
    rows[-1].update({"eval/accuracy": 0.75, **{f"eval/accuracy_{f}": 0.25 * i for i, f in enumerate(decide.FAMILIES)}})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "summary.json").write_text(json.dumps({"time/total_s": 300.0, "time/rl_s": 200.0}))
    (tmp_path / "args.json").write_text(json.dumps(vars(mmr1.parse_args(["--dead-share", "0.9", "--seed", "3"]))))
    run = decide.read_run(str(tmp_path), after=10)
    assert run["rollouts"] == [0, 1536] and run["accuracy"]["all"] == [0.5, 0.75]
    assert run["accuracy"]["shape"] == [0.5, 0.5] and run["accuracy"]["count"] == [0.5, 0.75]
    assert run["all_equal"] == pytest.approx(1.05) and run["all_equal_all_steps"] == pytest.approx(0.55)
    assert run["dead_drawn"] == pytest.approx(0.105) and run["steps"] == 12 and run["wall_s"] == 300
    assert run["flags"]["seed"] == 3 and run["flags"]["dead_share"] == 0.9 and run["scoring_rollouts"] == 0


def record(primary: float) -> dict:
    """A run whose primary curve ("biggest", or overall on the default pool) is flat at `primary` %."""
    return {"rollouts": [0, 1280], "accuracy": {"biggest": [primary / 100] * 2, "all": [primary / 100] * 2}}


def test_more_seeds_only_where_the_interval_is_too_wide_and_the_block_finished():
    a = type("A", (), {})()
    a.protocol = {**decide.PROTOCOL, "seeds": 4, "add_seeds": 2, "max_seeds": 8, "last_k": 1}
    a.shares, a.arms, a.setting = [0.9, 0.0], ["uniform", "vas"], ""
    spread = {0.9: [40, 60, 40, 60, 40, 60, 40, 60], 0.0: [50, 50.5, 50, 50.5, 50, 50.5, 50, 50.5]}  # sd 11.5, 0.3

    def finished(share, arm, seed):
        return record(spread[share][seed] + (arm == "vas"))

    runs = decide.plan("report", a, finished)
    seeds = lambda share: sorted({s for sh, _, s, _ in runs if sh == share})  # noqa: E731
    assert seeds(0.0) == [0, 1, 2, 3]  # half-width ~0.5: decided at 4 seeds
    assert seeds(0.9) == list(range(8))  # half-width ~20 at 4, still ~10 at 6: to the cap of 8
    assert {arm for _, arm, _, _ in runs} == {"uniform", "vas"}
    assert runs[0][:3] == (0.9, "uniform", 0) and runs[1][:3] == (0.9, "vas", 0)  # seed-major
    assert len(decide.plan("report", a, lambda share, arm, seed: None)) == 2 * 2 * 4  # unfinished: no decision
    a.protocol["first_seed"] = 100  # a replication's other seeds, under the same rule
    runs = decide.plan("report", a, lambda share, arm, seed: finished(share, arm, seed - 100))
    assert seeds(0.0) == [100, 101, 102, 103] and seeds(0.9) == list(range(100, 108))


def test_each_arm_has_one_colour_in_every_panel_and_the_legend_names_every_arm():
    # d = 0.9 holds all three arms, the default pool only two of them (the figure that misnamed lines had that)
    results = {"0": {arm: {0: record(70)} for arm in ("vas", "uniform")},
               "0.9": {arm: {0: record(50), 1: record(60)} for arm in ("vas-select", "uniform", "vas")}}
    fig = decide.plot(results, decide.PROTOCOL)
    try:
        for ax in fig.axes:
            for line in ax.get_lines():
                assert line.get_color() == decide.COLOURS[line.get_label()]
        assert sorted(t.get_text() for t in fig.legends[0].get_texts()) == ["uniform", "vas", "vas-select"]
        assert len({decide.COLOURS[arm] for arm in decide.ARMS}) == len(decide.ARMS)
        titles = [ax.get_title() for ax in fig.axes]
        assert "vas 1, uniform 1" in titles[0] and "vas-select 2, uniform 2, vas 2" in titles[1]
    finally:
        plt.close(fig)


@pytest.mark.parametrize("arm", list(decide.ARMS))
def test_every_arm_and_setting_parses(arm):
    for flags in (decide.ARMS[arm], *decide.SETTINGS.values()):
        mmr1.parse_args([*decide.clock(decide.PROTOCOL), *flags])


def test_the_tuning_rule():
    p = decide.PROTOCOL  # margin 4: within 2 points of the best counts as tied
    at = lambda **primary: {name.replace("_", "-"): {"primary": v} for name, v in primary.items()}  # noqa: E731
    tune = at(lr5e_5_e1=50, lr1e_4_e4=70, lr2e_4_e2=68.5, lr2e_4_e1=60)
    assert decide.choose({"0.9": tune}, p) == "lr2e-4-e2"  # tied with the best (70 - 68.5 < 2), fewer epochs
    assert decide.choose({"0.9": at(lr1e_4_e4=70, lr2e_4_e2=67.9)}, p) == "lr1e-4-e4"  # 2.1 behind: not tied
    assert decide.choose({"0.9": at(lr2e_4_e1=70, lr1e_4_e1=69)}, p) == "lr1e-4-e1"  # tied: the smaller lr
    # on the default pool lr2e-4-e2 is 5 points below the default setting: passed over, for the best of the rest
    pool = at(lr5e_5_e1=75, lr1e_4_e4=74, lr2e_4_e2=70, lr2e_4_e1=76)
    assert decide.choose({"0.9": tune, "0": pool}, p) == "lr1e-4-e4"
    assert decide.choose({}, p) is None


def test_the_protocol_page_states_what_the_runner_runs():
    page = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "protocol.md")).read()
    for arm, flags in decide.ARMS.items():
        assert f"| `{arm}` | `{' '.join(flags)}` |" in page
    assert f"`{' '.join(decide.clock(decide.PROTOCOL)[:8])}" in page.replace("\n", " ")
    p = decide.PROTOCOL
    assert (p["budget"], p["eval_rollouts"], p["num_test"], p["last_k"], p["margin"]) == (10240, 1280, 800, 4, 4.0)
    assert (p["seeds"], p["add_seeds"], p["max_seeds"], p["tune_seeds"], p["target"]) == (20, 5, 40, 3, 0.8)
    assert decide.CURVE == {0.9: "biggest", 0.0: "all"} and "last 4 evaluations" in page


def test_draws_shares_each_family_of_the_runs_own_pool(tmp_path):
    """assets/draws.py: a family's share of a run's (decayed) groups is the sum over its prompts over the total;
    the pool is rebuilt from the run's args.json. At d = 0.9 the default 256 prompts hold round(0.9 * 256) = 230
    dead, 115 always-solved "colour" and 115 never-solved "shape", and 26 live "biggest"."""
    import draws
    assert draws.family_shares(["a", "b", "a", "c"], [1, 2, 3, 0]) == {"a": 4 / 6, "b": 2 / 6, "c": 0.0}
    assert draws.effective_prompts([1, 1, 0, 0]) == pytest.approx(2.0)  # two prompts alike, two never drawn
    assert draws.effective_prompts([2, 1, 1]) == pytest.approx(2 ** 1.5)  # shares 1/2, 1/4, 1/4: entropy 1.5 bits
    for seed, weight in ((0, 1.0), (1, 3.0)):  # every prompt drawn alike; the scale of the counts cancels
        run = tmp_path / "report" / "d0.9" / "vas-select" / f"seed{seed}"
        finished_by_hand(run)
        torch.save({"sampler": {"evidence": {"groups": [weight] * 256}}}, run / "checkpoint.pt")
        rows = [{"stage": "rl", "step": s, "vas/dead_drawn": 0.5 * (s < 30) + 0.125 * seed,  # 0.5, then 0.0 (+ 1/8)
                 "reward/zero_std_frac": s / 100} for s in range(40)]  # steps 10-29: 0.195; 30-39: 0.345
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    finished_by_hand(tmp_path / "report" / "d0.9" / "vas" / "seed0")  # begun, never finished: left out
    (tmp_path / "report" / "d0.9" / "vas" / "seed0" / "summary.json").unlink()
    out = draws.main(["--workdir", str(tmp_path), "--out", str(tmp_path / "draws.json")])
    pool = {"biggest": 26 / 256, "colour": 115 / 256, "shape": 115 / 256}
    assert out["shares"]["0.9"]["pool"] == pytest.approx(pool) and list(out["shares"]["0"]) == []
    assert out["shares"]["0.9"]["vas-select"] == {"seeds": 2, "families": pytest.approx(pool),
                                                  "effective": pytest.approx(256), "by_steps": {
        "vas/dead_drawn": pytest.approx([0.5625, 0.0625]), "reward/zero_std_frac": pytest.approx([0.195, 0.345])}}
    assert "vas" not in out["shares"]["0.9"] and json.load(open(tmp_path / "draws.json")) == out


def test_the_oracle_gathers_each_arms_all_equal_share_from_step_10_on(tmp_path):
    """assets/oracle.py: a pool of only the 26 live prompts, 10,240 // (16 * 8) = 80 steps at decide.json's setting;
    each finished run's all-equal share over steps 10 on (steps 0-19 at step / 100: (0.10 + 0.19) / 2 = 0.145, plus
    the seed's 0.1 * seed), a run not finished left out, and the cold start named by its accuracies after SFT."""
    import oracle
    cold = tmp_path / "cold" / "sft"
    cold.mkdir(parents=True)
    (cold.parent / "summary.json").write_text(json.dumps({"eval/accuracy_after_sft": 0.6, "time/rl_s": 0.0}))
    for arm, seeds in (("uniform", (0, 1)), ("vas-select", (0,))):
        for seed in seeds:
            run = tmp_path / "work" / arm / f"seed{seed}"
            finished_by_hand(run)
            rows = [{"stage": "rl", "step": s, "reward/zero_std_frac": s / 100 + 0.1 * seed} for s in range(20)]
            (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = oracle.main(["--init-from", str(cold), "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "o.json"),
                       "--seeds", "2", "--gather"])
    assert out["all_equal"] == {"uniform": pytest.approx([0.145, 0.245]), "vas-select": pytest.approx([0.145])}
    assert out["cold_start"] == {"eval/accuracy_after_sft": 0.6} and json.load(open(tmp_path / "o.json")) == out
    setting = decide.SETTINGS[json.load(open(os.path.join(decide.ROOT, "assets", "decide.json")))["setting"]]
    assert out["flags"] == ["--init-from", str(cold), "--num-rl", "26", "--dead-share", "0.0001", *setting,
                            "--rl-steps", "80", "--eval-every", "0", "--num-test", "40"]
    import data
    pool = data.toy_splits(mmr1.Args(num_rl=26, dead_share=0.0001, num_sft=0, num_test=0))["rl"]
    assert [ex.family for ex in pool] == ["biggest"] * 26  # 0.0001 rounds to no dead prompt: all live
