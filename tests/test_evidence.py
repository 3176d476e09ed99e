"""assets/evidence.py and docs/when-vas-pays.md: every block of the page is what the committed files give, every
other number is a setting the code names, a difference is worded by what its interval decides, each sampler has
one name, and the six-seed record the README quotes is consistent with itself."""
import json
import os
import re
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
import compare_vas  # noqa: E402
import decide  # noqa: E402
import endpoints  # noqa: E402
import evidence  # noqa: E402


def test_every_block_of_the_page_is_what_the_committed_files_give():
    text = open(evidence.PAGE, encoding="utf-8").read()
    have, want = evidence.page_blocks(text), evidence.blocks()[evidence.PAGE]
    assert sorted(have) == sorted(want)
    for name, block in want.items():
        assert have[name] == block, f"docs/when-vas-pays.md block {name}: run python assets/evidence.py --write"


def test_every_other_number_on_the_page_is_a_setting():
    assert evidence.stray_numbers(evidence.PAGE) == []


def test_a_number_outside_a_block_is_caught(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("Posterior VAS at λ = 0.5 ends 9.2 points ahead.\n<!-- evidence: x -->\n12.5\n<!-- /evidence -->\n")
    monkeypatch.setattr(evidence, "PAGE", str(page))
    assert evidence.stray_numbers(str(page)) == ["9.2"]  # 0.5 is the flag's default; 12.5 sits in a block


def test_a_difference_is_worded_by_what_its_interval_decides():
    assert evidence.decided((9.2, -6.6, 25.0), "5") == "+9.2 points [−6.6, +25.0], not separable at 5 seeds"
    assert evidence.decided((-22.8, -39.4, -6.2), "5") == "22.8 points behind [−39.4, −6.2]"
    assert evidence.decided((9.2, 7.0, 11.4), "3") == "9.2 points ahead [+7.0, +11.4]"
    assert evidence.decided((2560, 670, 4450), "5", "rollouts", "more", "fewer", 0) == \
        "2,560 rollouts more [+670, +4,450]"
    assert evidence.decided((-0.11, -0.12, -0.10), "5", "", "more", "fewer", 2) == "0.11 fewer [−0.12, −0.10]"
    assert evidence.num(-0.04) == "0.0" and evidence.signed(-0.04) == "+0.0"  # no −0


def test_a_page_never_says_ahead_of_an_interval_that_holds_0():
    """Every 'ahead' or 'behind' on the first screen and the page comes with an interval that excludes 0."""
    for path in (evidence.README, evidence.PAGE):
        text = evidence.checked_text(path)
        for m in re.finditer(r"(ahead|behind)( of uniform)? \[([^\]]+)\]", text):
            lo, hi = (float(x.replace("−", "-").replace(",", "")) for x in m[3].split(", "))
            assert lo > 0 or hi < 0, m[0]
        assert "not separable" in text


def test_the_answer_changes_its_words_when_an_interval_decides(monkeypatch):
    c = evidence.comparison()
    assert "Not separably" in evidence.readme_answer(c)
    top = list(c["shares"])[-1]
    c["shares"][top]["vas-free"]["vs"]["target_accuracy"] = (9.2, 1.0, 17.4)  # as if it excluded 0
    answer = evidence.readme_answer(c)
    assert "Not separably" not in answer and "9.2 points ahead [+1.0, +17.4]" in answer


def test_seed_0_is_worded_by_its_sign(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "DEFAULT_RUNS", str(tmp_path / "none.json"))  # docs/toy-task.md's table
    r = evidence.default_run()
    assert "posterior VAS ends 2.0 points behind uniform on this seed" in evidence.readme_first_run(r)
    r["diff"] = np.where(r["seed"] == 0, 1.5, r["diff"])
    assert "posterior VAS ends 1.5 points ahead of uniform on this seed" in evidence.readme_first_run(r)


def test_the_six_seed_record_agrees_with_itself(tmp_path, monkeypatch):
    """docs/toy-task.md's table: its printed differences are the printed accuracies' to the rounding of each; six
    seeds, 0 to 5."""
    monkeypatch.setattr(evidence, "DEFAULT_RUNS", str(tmp_path / "none.json"))
    r = evidence.default_run()
    assert list(r["seed"]) == list(range(6))
    assert np.all(np.abs(r["diff"] - (r["vas"] - r["uniform"])) <= 0.1 + 1e-9)
    assert r["time"][0] <= r["time"][1] and r["time"][2] in r["seed"]


def default_runs_json(path) -> None:
    """A hand-made assets/default_runs.json (assets/default_runs.py's structure): seeds 0 to 2 in both arms, seed 3
    in uniform alone (unfinished in VAS); seed 1's runs resumed (their seconds are of their last process only)."""
    acc = lambda sft, rl, big=(0.2, 0.5): {"sft": {"all": sft, "biggest": big[0]},  # noqa: E731
                                          "rl": {"all": rl, "biggest": big[1]}}
    run = lambda wall, resumed=False, **a: {**a, "all_equal": 0.4, "wall_s": wall, "resumed": resumed}  # noqa: E731
    uniform = {"0": run(500.2, **acc(0.5691, 0.7441, (0.221, 0.832))), "1": run(100.0, True, **acc(0.651, 0.724)),
               "2": run(544.6, **acc(0.72, 0.807)), "3": run(520.0, **acc(0.6, 0.7))}
    vas = {"0": run(560.0, **acc(0.5701, 0.7237, (0.2, 0.823))), "1": run(110.0, True, **acc(0.651, 0.838)),
           "2": run(530.4, **acc(0.72, 0.767))}
    json.dump({"commit": "abc1234", "settings": {"rl_lr": 2e-4}, "runs": {"uniform": uniform, "vas": vas}},
              open(path, "w"))


def test_the_default_run_is_read_from_its_json_when_it_exists(tmp_path, monkeypatch):
    default_runs_json(tmp_path / "default_runs.json")
    monkeypatch.setattr(evidence, "DEFAULT_RUNS", str(tmp_path / "default_runs.json"))
    r = evidence.default_run()
    assert list(r["seed"]) == [0, 1, 2]  # the seeds both arms finished
    assert r["commit"] == "abc1234" and r["settings"] == {"rl_lr": 2e-4}  # the JSON's, not the table's
    assert r["sft"][0] == pytest.approx(56.91) and r["sft_big"][0] == pytest.approx(22.1)  # the uniform run's SFT
    assert r["uniform"][0] == pytest.approx(74.41) and r["vas_big"][0] == pytest.approx(82.3)  # percent, after RL
    assert r["diff"] == pytest.approx([-2.04, 11.4, -4.0])  # VAS − uniform, unrounded
    assert r["time"] == (530, 545, 2)  # seed 1 resumed; of the rest, the smallest slower run (seed 0's: 560 s)
    text = evidence.readme_first_run(r)
    assert "about 9 minutes on one CPU thread (one measurement: 530 to 545 s, seed 2, two runs side by side" in text
    assert "expect 56.9% held-out after SFT, then 74.4% under uniform and 72.4% under posterior VAS: posterior " \
           "VAS ends 2.0 points behind uniform on this seed. Seeds 0 to 2" in " ".join(text.split())
    assert "Seed 1's +11.4 carries most of the mean difference" in text and "Code of commit abc1234;" in text


def test_the_default_run_falls_back_to_the_table_without_its_json(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "DEFAULT_RUNS", str(tmp_path / "none.json"))
    r = evidence.default_run()
    assert r["commit"] == "19771a3" and list(r["seed"]) == list(range(6))  # docs/toy-task.md's
    assert r["time"] == (542, 545, 5) and r["diff"][0] == -2.0
    assert "Code of commit 19771a3;" in evidence.readme_first_run(r)


def test_one_name_a_sampler():
    assert {arm: evidence.arm_name(arm) for arm in compare_vas.ARMS} == {
        "uniform": "uniform", "vas-paper": "the paper's VAS at λ = 1", "vas-paper-0.5": "the paper's VAS at λ = 0.5",
        "vas-free": "posterior VAS at λ = 1", "vas-free-0.5": "posterior VAS at λ = 0.5", "filter": "dynamic sampling"}
    assert evidence.name_of(["--vas", "--vas-select"]) == "focusing VAS at λ = 0.5"
    for path in (evidence.README, evidence.PAGE):
        text = open(path, encoding="utf-8").read()
        for old in ("no scoring bill", "no bill", "VAS (λ = 1)", "(the paper's)", "the focusing VAS"):
            assert old not in text, (path, old)
    # the comparison's arms always with their lambda
    blocks = evidence.comparison_blocks(evidence.comparison())
    for block in (blocks[k] for k in ("setup", "figure", "to-target", "final", "decides")):
        assert not re.search(r"(the paper.s|posterior) VAS(?!\s+at\s+λ\s+=)(?!es)", block), block


@pytest.mark.parametrize("name", ["answer", "first-run", "bill", "ladder"])
def test_the_readme_holds_each_block_once(name):
    assert open(evidence.README, encoding="utf-8").read().count(f"<!-- evidence: {name} -->") == 1


def test_each_bullet_is_its_own_list_item():
    """A bullet's continuation lines are indented and never start another list item or a heading."""
    lines = evidence.decides(evidence.comparison()).splitlines()
    assert sum(line.startswith("- **") for line in lines) >= 5
    for line in lines:
        assert line.startswith("- **") or (line.startswith("  ") and not re.match(r"\s*([-+*#>]|\d+[.)])\s", line))


# ---------------------------------------------------------------- the decisive comparison (assets/decide.json)
# A small decide.json of the real structure: hand-made run records, their summary from endpoints.compare as
# decide.gather makes it. 4 seeds an arm, 4 evaluations (0 to 3,840 rollouts), the primary endpoint the mean of the
# last 2, each run's last two evaluations both at its value. Uniform's seeds are 61, 61, 63, 63 (mean 62, variance
# 4/3); against an arm of the same spread Welch's df is 6, t975(6) = 2.447, half-width 2.447 * sqrt(2 / 3) = 2.0.
# 4 seeds are also the most (max_seeds): an interval wider than the margin calls no more seeds, except where said.

PROTOCOL = {**decide.PROTOCOL, "budget": 3840, "last_k": 2, "seeds": 4, "add_seeds": 2, "max_seeds": 4}
BASE = {"0.9": {"uniform": [61, 61, 63, 63], "vas": [71, 71, 73, 73], "vas-select": [56, 58, 62, 64]},
        "0": {"uniform": [61, 61, 63, 63], "vas": [62, 62, 64, 64], "vas-select": [55, 55, 57, 57]}}


def run_record(d: str, arm: str, seed: int, primary: float) -> dict:
    """A run as decide.read_run records it. At d = 0.9, posterior VAS's seed 0 reaches 80% "biggest" at 1,280
    rollouts; no other run reaches it. Focusing VAS's dead-drawn shares: 0.10, 0.20, 0.15, 0.15."""
    curve, other = decide.CURVE[float(d)], "all" if d == "0.9" else "biggest"
    reach = d == "0.9" and arm == "vas" and seed == 0
    return {"rollouts": [0, 1280, 2560, 3840],
            "accuracy": {curve: [0.3, 0.8 if reach else 0.5, primary / 100, primary / 100],
                         other: [0.5, 0.6, 0.7, 0.7], "colour": [1.0] * 4, "shape": [0.5] * 4, "count": [0.9] * 4},
            "steps": 30, "all_equal": 0.6, "dead_drawn": [0.10, 0.20, 0.15, 0.15][seed] if d == "0.9" else None,
            "wall_s": 100.0, "flags": {"seed": seed}}


def write_decide(path, monkeypatch, values=None, protocol=PROTOCOL, drop=(), base=BASE, source="DECIDE") -> dict:
    """decide.json at `path` from `base` with `values` ({(share, arm): seeds' primaries}) in place, without the
    runs `drop` names ((share, arm, seed)); evidence reads it from there (its `source`)."""
    values = {**{(d, a): v for d, by in base.items() for a, v in by.items()}, **(values or {})}
    runs = {}
    for (d, arm), primaries in values.items():
        for seed, x in enumerate(primaries):
            if (d, arm, seed) not in drop:
                runs.setdefault(d, {}).setdefault(arm, {})[str(seed)] = run_record(d, arm, seed, x)
    summary = {d: endpoints.compare({a: list(s.values()) for a, s in by.items()}, decide.CURVE[float(d)],
                                    protocol["budget"], protocol["last_k"], protocol["target"])
               for d, by in runs.items()}
    data = {"command": "python assets/decide.py report --gather", "checkpoint": "runs/decide/cold-8/sft",
            "cold_start": {"eval/accuracy_after_sft": 0.66, "eval/accuracy_after_sft_biggest": 0.265},
            "protocol": protocol, "setting": "lr5e-5-e1", "summary": summary, "runs": runs}
    json.dump(data, open(path, "w"))
    monkeypatch.setattr(evidence, source, str(path))
    return data


def verdict_cell(table: str, arm: str) -> str:
    """The verdict column of an arm's row."""
    return next(line for line in table.splitlines() if line.startswith(f"| {arm} |")).split(" | ")[5]


@pytest.mark.parametrize("d, arm, values, said", [
    # each verdict as the base gives it, then one mutation of the seeds that moves its interval across a bound;
    # what follows the interval (the rank test, the margin) is checked below
    ("0.9", "vas", None, "posterior VAS at λ = 0.5 ahead (+10.0 [+8.0, +12.0]"),
    ("0.9", "vas", [62, 62, 64, 64], "posterior VAS at λ = 0.5 equal within 4 points (+1.0 [−1.0, +3.0]"),
    ("0", "vas-select", None, "focusing VAS at λ = 1 behind (−6.0 [−8.0, −4.0]"),
    ("0", "vas-select", [60, 60, 62, 62], "focusing VAS at λ = 1 equal within 4 points (−1.0 [−3.0, +1.0]"),
    ("0", "vas", None, "posterior VAS at λ = 0.5 equal within 4 points (+1.0 [−1.0, +3.0]"),
    # 59, 61, 65, 67: variance 40/3, df = (11/3)^2 / ((10/3)^2 / 3 + (1/3)^2 / 3) = 3.59, t975(3) = 3.182,
    # half-width 3.182 * sqrt(11/3) = 6.09
    ("0", "vas", [59, 61, 65, 67], "posterior VAS at λ = 0.5 not decided (+1.0 [−5.1, +7.1]"),
    ("0.9", "vas-select", None, "focusing VAS at λ = 1 not decided (−2.0 [−8.1, +4.1]"),  # 56, 58, 62, 64: so too
    ("0.9", "vas-select", [55, 55, 57, 57], "focusing VAS at λ = 1 behind (−6.0 [−8.0, −4.0]"),
])
def test_each_verdict_follows_its_interval(tmp_path, monkeypatch, d, arm, values, said):
    data = write_decide(tmp_path / "decide.json", monkeypatch, {(d, arm): values} if values else None)
    section = evidence.blocks()[evidence.PAGE]["decisive"]
    assert said in evidence.share_decides(data, d) and said in section.replace("\n", " ")
    word = said.split(" (")[0].split("λ = 1 " if arm == "vas-select" else "λ = 0.5 ")[1]
    assert verdict_cell(evidence.share_table(data, d), evidence.name_of(decide.ARMS[arm])) == word
    assert said in evidence.blocks()[evidence.README]["answer"].replace("\n", " ")


def test_the_rank_test_the_margin_and_not_hurting_are_said_where_they_count(tmp_path, monkeypatch):
    data = write_decide(tmp_path / "decide.json", monkeypatch)
    said = evidence.share_decides(data, "0.9")
    assert "rank test" not in said and "ahead (+10.0 [+8.0, +12.0]);" in said  # the rank test agrees; within ±4
    hurt = "the check that it does not hurt here, a lower end above −4, is"
    assert f"{hurt} not met" in evidence.share_decides(data, "0")
    # 64, 64, 64, 90 against 61, 61, 63, 63: mean +8.5; Welch df 3.05, t975(3) = 3.182, half-width
    # 3.182 * sqrt(169 / 4 + 1 / 3) = 20.8; the 16 differences 1 (6), 3 (6), 27, 27, 29, 29, Lehmann's rank
    # k = floor(8 - 1.96 * sqrt(16 * 9 / 12)) = 1: [+1, +29], which excludes 0.
    data = write_decide(tmp_path / "decide.json", monkeypatch, {("0.9", "vas"): [64, 64, 64, 90],
                                                               ("0", "vas-select"): [60, 60, 62, 62]})
    assert ("posterior VAS at λ = 0.5 not decided (+8.5 [−12.3, +29.3]; the rank test points the other way: its "
            "interval [+1.0, +29.0] excludes 0; its half-width, 20.8 points at 4 seeds, is above the margin)"
            ) in evidence.share_decides(data, "0.9")
    assert f"{hurt} met" in evidence.share_decides(data, "0")


def test_focusing_vas_own_checks_are_met_or_not_by_their_numbers(tmp_path, monkeypatch):
    data = write_decide(tmp_path / "decide.json", monkeypatch)
    said = evidence.focus_checks(data)  # dead drawn (0.10 + 0.20 + 0.15 + 0.15) / 4 = 0.15; all-equal 0.60
    assert "0.15 of its drawn prompts dead by construction, at most 0.20: met;" in said
    assert "0.60 of its groups all-equal, at most 0.55: not met." in said
    for r in data["runs"]["0.9"]["vas-select"].values():
        r["dead_drawn"], r["all_equal"] = 0.25, 0.5
    said = evidence.focus_checks(data)
    assert "0.25 of its drawn prompts dead by construction, at most 0.20: not met;" in said
    assert "0.50 of its groups all-equal, at most 0.55: met." in said
    # beside them the simulation's oracle, as docs/protocol.md quotes it: 0.35 when "biggest" rises to 0.97 over
    # 60 steps, 0.63 when it is solved within 40
    assert "live prompts only 0.35 of its groups all-equal" in said and "0.63 when it reaches 0.99" in said
    # and, from the same cold start only, the measured oracle of assets/oracle.json: mean (lowest to highest)
    oracle = {"command": "python assets/oracle.py", "cold_start": data["cold_start"], "live": 26,
              "all_equal": {"uniform": [0.6, 0.7, 0.8], "vas-select": [0.5, 0.7, 0.75]}}
    json.dump(oracle, open(tmp_path / "oracle.json", "w"))
    monkeypatch.setattr(evidence, "ORACLE", str(tmp_path / "oracle.json"))
    said = evidence.focus_checks(data).replace("\n", " ")
    assert (" Measured from this cold start (`python assets/oracle.py`, 3 seeds an arm), an oracle that knows the "
            'live prompts, a pool of only the 26 "biggest" prompts for the same rollouts, draws its groups '
            "all-equal: uniform 0.70 (0.60 to 0.80) and focusing VAS at λ = 1 0.65 (0.50 to 0.75); each above the "
            "check's 0.55: from this cold start, drawing no dead prompt does not meet it.") in said
    oracle["all_equal"]["vas-select"] = [0.5, 0.5, 0.6]  # 0.53: one oracle meets it, no such conclusion
    json.dump(oracle, open(tmp_path / "oracle.json", "w"))
    assert "focusing VAS at λ = 1 0.53 (0.50 to 0.60)." in evidence.focus_checks(data).replace("\n", " ")
    oracle["cold_start"] = {"eval/accuracy_after_sft": 0.5}
    json.dump(oracle, open(tmp_path / "oracle.json", "w"))
    assert "Measured from this cold start" not in evidence.focus_checks(data)


def test_the_departures_from_the_protocol_are_listed_whether_or_not_the_runs_are_in(tmp_path, monkeypatch):
    for drop in ((), [("0", "vas", 3)]):
        data = write_decide(tmp_path / "decide.json", monkeypatch, drop=drop)
        assert "Departures from the protocol: none listed." in evidence.decisive_section(data)
        data["deviations"] = ["Lanes paused 4 minutes.", "A run rerun."]
        json.dump(data, open(tmp_path / "decide.json", "w"))
        section = evidence.blocks()[evidence.PAGE]["decisive"].replace("\n", " ")
        assert "Departures from the protocol: (1) Lanes paused 4 minutes. (2) A run rerun." in section


def test_where_each_vas_arm_spent_its_groups_is_tabled_by_family(tmp_path, monkeypatch):
    """assets/draws.json's shares beside each arm's last-2 accuracy on the family (run_record: "shape" 0.5 every
    evaluation, "biggest" at d = 0 the other curve, 0.7 at the last two); absent, the section has no such table."""
    data = write_decide(tmp_path / "decide.json", monkeypatch)
    monkeypatch.setattr(evidence, "DRAWS", str(tmp_path / "absent.json"))
    assert "Where each VAS arm spent its groups" not in evidence.decisive_section(data)
    pool = {"biggest": 0.25, "colour": 0.25, "count": 0.25, "shape": 0.25}
    draws = {"command": "python assets/draws.py", "shares": {"0": {
        "pool": pool, "vas": {"seeds": 4, "families": pool},
        "vas-select": {"seeds": 4, "families": {"biggest": 0.2, "colour": 0.05, "count": 0.15, "shape": 0.6}}}}}
    json.dump(draws, open(tmp_path / "draws.json", "w"))
    monkeypatch.setattr(evidence, "DRAWS", str(tmp_path / "draws.json"))
    section = evidence.blocks()[evidence.PAGE]["decisive"]
    assert "(`python assets/draws.py`, 4 seeds an arm)" in section.replace("\n", " ")
    assert '| 0 | "shape" | 0.25 | 0.25 | 0.60 | 50.0 | 50.0 | 50.0 |' in section
    assert '| 0 | "biggest" | 0.25 | 0.25 | 0.20 | 70.0 | 70.0 | 70.0 |' in section
    assert "| 0.9 |" not in section.split("Where each VAS arm")[1]  # no share draws.json lacks
    # where the arm behind uniform lost: the family it drew most beyond its share, then the families it lost on
    said = ('At d = 0 focusing VAS at λ = 1, behind uniform, gave "shape" 0.60 of its groups (the pool: 0.25) and '
            'ended +0.0 [+0.0, +0.0] points on it against uniform (last 2, 95% Welch); ')
    assert said + "no family lost by an interval that excludes 0." in section.replace("\n", " ")
    assert "Spread over the prompts" not in section  # a draws.json without `effective`
    # its "count" at 80, 80, 82, 82 against uniform's 90s: -9.0, se^2 = (4/3) / 4, Welch df 3, t975(3) = 3.182,
    # half-width 3.182 * sqrt(1/3) = 1.84; its "colour" at 96, 100, 100, 100: -1.0 [-4.2, +2.2], holds 0, not said
    for seed, x, y in zip("0123", (0.80, 0.80, 0.82, 0.82), (0.96, 1.0, 1.0, 1.0)):
        data["runs"]["0"]["vas-select"][seed]["accuracy"].update(count=[0.9, 0.9, x, x], colour=[1.0, 1.0, y, y])
    json.dump(data, open(tmp_path / "decide.json", "w"))
    for arm, effective in (("vas", 250.4), ("vas-select", 39.6)):
        draws["shares"]["0"][arm]["effective"] = effective
    json.dump(draws, open(tmp_path / "draws.json", "w"))
    section = evidence.blocks()[evidence.PAGE]["decisive"].replace("\n", " ")
    assert "every prompt weighs the same): at d = 0, posterior VAS at λ = 0.5 250 and focusing VAS at λ = 1 40." \
        in section
    assert said + 'it lost, by intervals that exclude 0, on "count" (0.15 of its groups) −9.0 [−10.8, −7.2].' in section
    assert "When the dead draws came" not in section  # no by_steps: no such sentence
    pool = {"biggest": 0.1, "colour": 0.45, "shape": 0.45}
    draws["shares"]["0.9"] = {"pool": pool, "vas-select": {"seeds": 4, "families": pool, "by_steps": {
        "vas/dead_drawn": [0.456, 0.1], "reward/zero_std_frac": [0.7, 0.8]}}}
    json.dump(draws, open(tmp_path / "draws.json", "w"))
    section = evidence.blocks()[evidence.PAGE]["decisive"].replace("\n", " ")
    assert ("at d = 0.9 focusing VAS at λ = 1 drew 0.46 of its prompts dead in steps 10 to 29 and 0.10 from step 30 "
            "on, its groups all-equal 0.70, then 0.80. A first pass over the pool takes 16 steps at least (256 "
            "prompts, 16 a step).") in section


def test_which_vas_to_type_follows_the_decisive_verdicts_once_they_are_in(tmp_path, monkeypatch):
    write_decide(tmp_path / "decide.json", monkeypatch, drop=[("0", "vas", 3)])  # one run missing: decides nothing
    said = evidence.blocks()[evidence.PAGE]["choice"].replace("\n", " ")
    assert said.endswith("its endpoint and seeds fixed before its runs: [protocol.md](protocol.md).")
    write_decide(tmp_path / "decide.json", monkeypatch)
    said = evidence.blocks()[evidence.PAGE]["choice"].replace("\n", " ")
    assert said.endswith("decides: posterior VAS at λ = 0.5: ahead at d = 0.9, equal within 4 points at d = 0 (it "
                         "pays at d = 0.9); focusing VAS at λ = 1: not decided at d = 0.9, behind at d = 0 (it costs at "
                         "d = 0: do not type it there).")
    write_decide(tmp_path / "decide.json", monkeypatch, {("0.9", "vas-select"): [71, 71, 73, 73]})
    said = evidence.blocks()[evidence.PAGE]["choice"].replace("\n", " ")
    assert "focusing VAS at λ = 1: ahead at d = 0.9, behind at d = 0 (it pays at d = 0.9 and costs at d = 0: the " \
           "pool decides whether to type it)." in said


def test_rollouts_to_the_target_are_a_restricted_mean(tmp_path, monkeypatch):
    """Posterior VAS at d = 0.9: one of 4 seeds reaches 80% at 1,280, three never (censored at 3,840): the
    restricted mean 1,280 + 2,560 * 3/4 = 3,200, reached 0.25; Greenwood: (2,560 * 3/4)^2 / (4 * 3), its root 554.3;
    uniform never, 3,840 with no error: -640 +- 1.96 * 554.3 = [-1,726, +446]."""
    data = write_decide(tmp_path / "decide.json", monkeypatch)
    table = evidence.share_table(data, "0.9")
    assert "| 3,200 (0.25); −640 [−1,726, +446] |" in table
    assert next(line for line in table.splitlines() if line.startswith("| uniform |")).count("| 3,840 (0.00) |") == 1


DECISIONS = ("ahead", "behind", "equal within", "not decided", "met", "the intervals decide")


def test_an_incomplete_experiment_decides_nothing(tmp_path, monkeypatch):
    vas_compare = evidence.readme_answer(evidence.comparison())
    data = write_decide(tmp_path / "decide.json", monkeypatch)
    assert evidence.complete(data) and "the intervals decide" in evidence.blocks()[evidence.PAGE]["decisive"]
    # one run missing: 23 of 3 arms x 2 shares x 4 seeds
    write_decide(tmp_path / "decide.json", monkeypatch, drop=[("0", "vas", 3)])
    blocks = evidence.blocks()
    section = blocks[evidence.PAGE]["decisive"].replace("\n", " ")
    assert "23 of 24 runs have finished (d = 0.9: 12 of 12; d = 0: 11 of 12)" in section
    assert not any(word in section for word in DECISIONS)
    assert blocks[evidence.README]["answer"] == vas_compare


def test_a_block_of_seeds_due_decides_nothing(tmp_path, monkeypatch):
    """Every run in, but an interval wider than the margin at 4 seeds where the most is 6: the protocol adds 2 seeds
    an arm at d = 0.9."""
    data = write_decide(tmp_path / "decide.json", monkeypatch, {("0.9", "vas"): [64, 64, 64, 90]},
                        {**PROTOCOL, "max_seeds": 6})
    section = evidence.decisive_section(data).replace("\n", " ")
    assert "24 of 30 runs have finished (d = 0.9: 12 of 18; d = 0: 12 of 12)" in section
    assert not any(word in section for word in DECISIONS)


def test_a_gain_the_other_curve_pays_for_is_said_with_it(tmp_path, monkeypatch):
    """run_record's other curve ends at 0.7 for every run; here focusing VAS's falls to 0.6 at d = 0.9 (and
    posterior VAS's to 0.69, an interval that holds 0), so its gain on "biggest" (+10.0) costs all families
    -10.0 [-10.0, -10.0]."""
    data = write_decide(tmp_path / "decide.json", monkeypatch, {("0.9", "vas-select"): [71, 71, 73, 73]})
    assert evidence.trade_offs(data) == []
    for arm, last in (("vas-select", [0.6] * 4), ("vas", [0.69, 0.7, 0.7, 0.7])):
        for r, x in zip(data["runs"]["0.9"][arm].values(), last):
            r["accuracy"]["all"][-2:] = [x, x]
    json.dump(data, open(tmp_path / "decide.json", "w"))
    said = ('focusing VAS at λ = 1 ahead at d = 0.9 on "biggest" only: on all families it is −10.0 [−10.0, −10.0]')
    assert evidence.trade_offs(data) == [said]
    assert f"{said[0].upper()}{said[1:]} (a secondary endpoint)." in \
        evidence.blocks()[evidence.README]["answer"].replace("\n", " ")
    assert evidence.decisive_choice(data).endswith(f"A secondary endpoint points the other way: {said}.")


def test_the_readme_answer_switches_to_the_decisive_comparison(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "DECIDE", str(tmp_path / "absent.json"))
    blocks = evidence.blocks()
    assert "decisive" not in blocks[evidence.PAGE]
    assert blocks[evidence.README]["answer"] == evidence.readme_answer(evidence.comparison())
    assert "`assets/vas_compare.json`" in blocks[evidence.README]["answer"]
    write_decide(tmp_path / "decide.json", monkeypatch)
    blocks = evidence.blocks()
    answer = blocks[evidence.README]["answer"]
    assert "`assets/decide.json`" in answer and "vas_compare" not in answer and "assets/decide.png" in answer
    assert answer.startswith("**Does it pay?** Yes: posterior VAS at λ = 0.5 (d = 0.9) ahead of uniform; focusing "
                             "VAS at λ = 1 (d = 0) behind it.")
    assert "every arm at the tuned RL setting `--rl-lr 5e-5 --update-epochs 1`;" in answer.replace("\n", " ")
    # --write puts the answer on the first screen, the first run's block still whole on it, and the page's section
    # before the earlier comparison's
    readme = evidence.rewrite(open(evidence.README, encoding="utf-8").read(), blocks[evidence.README])
    lines = readme.splitlines()
    assert evidence.page_blocks(readme)["answer"] == answer
    assert lines.index("<!-- /evidence -->", lines.index("<!-- evidence: first-run -->")) <= evidence.FIRST_SCREEN
    assert len(lines) <= 250  # tests/test_readme.py's bound, kept once the answer switches
    page = evidence.rewrite(open(evidence.PAGE, encoding="utf-8").read(), blocks[evidence.PAGE])
    assert evidence.page_blocks(page) == blocks[evidence.PAGE]
    assert page.index("<!-- evidence: decisive -->") < page.index("## The comparison (`assets/vas_compare.json`)")


def test_the_tuning_sweep_is_tabled_by_its_json_and_its_choice_said_by_its_interval():
    """A hand-made sweep of two settings: the table puts each at its --rl-lr and --update-epochs, the choice is
    worded by its interval, and the default-pool check appears only once its JSON exists."""
    def summary(values: dict) -> dict:  # (mean, half-width, interval against lr5e-5-e1, the first)
        base = values["lr5e-5-e1"][0]
        return {n: {"seeds": 3, "primary": x, "primary_half": h,
                    **({"primary_vs_base": {"diff": x - base, "low": lo, "high": hi}} if lo is not None else {})}
                for n, (x, h, lo, hi) in values.items()}
    tuning = {"protocol": decide.PROTOCOL, "command": "python assets/decide.py tune --gather", "chosen": "lr2e-4-e2",
              "checkpoint": "runs/decide/cold-7/sft",
              "cold_start": {"eval/accuracy_after_sft": 0.667, "eval/accuracy_after_sft_biggest": 0.265},
              "summary": {"0.9": summary({"lr5e-5-e1": (50.0, 6.0, None, None), "lr2e-4-e2": (60.0, 5.0, 2.0, 18.0)})}}
    said = evidence.tuning_section(tuning, None)
    assert "| 5e-5 | 50.0 ± 6.0 |  |" in said and "| 2e-4 |  | 60.0 ± 5.0 |" in said
    assert "chose `lr2e-4-e2` (`--rl-lr 2e-4 --update-epochs 2`): 60.0 against the default's 50.0, 10.0 points " \
           "ahead [+2.0, +18.0]" in said.replace("\n", " ")
    assert "default pool" not in said
    runs = {n: {str(seed): run_record("0", n, seed, x) for seed in range(3)} for n, x in (("lr5e-5-e1", 70),
                                                                                          ("lr2e-4-e2", 69))}
    for r in runs["lr2e-4-e2"].values():  # the faster setting forgets shape: its last two evaluations at 30%
        r["accuracy"]["shape"] = [0.5, 0.5, 0.3, 0.3]
    pool = {"command": "python assets/decide.py tune --gather --shares 0", "protocol": PROTOCOL, "runs": {"0": runs},
            "summary": {"0": summary({"lr5e-5-e1": (70.0, 2.0, None, None), "lr2e-4-e2": (69.0, 3.0, -4.0, 2.0)})}}
    said = evidence.tuning_section(tuning, pool).replace("\n", " ")
    assert "`lr2e-4-e2` 69.0 against the default's 70.0, −1.0 points [−4.0, +2.0], not separable at 3 seeds" in said
    # run_record's last two evaluations: "biggest" 0.7, colour 1, shape 0.5 (here 0.3), count 0.9
    assert ('By family (last 2, the mean over seeds, the difference with its 95% Welch interval): "colour" 100.0 '
            'against 100.0, +0.0 [+0.0, +0.0]; "biggest" 70.0 against 70.0, +0.0 [+0.0, +0.0]; "shape" 30.0 against '
            '50.0, −20.0 [−20.0, −20.0]; "count" 90.0 against 90.0, +0.0 [+0.0, +0.0].') in said
    tuning["chosen"] = None  # a sweep not finished chooses nothing, and says no more
    assert "chose" not in evidence.tuning_section(tuning, pool) and "default pool" not in evidence.tuning_section(
        tuning, pool)


@pytest.mark.parametrize("focus, said, outcome", [
    # the replication's verdict, against uniform's 61, 61, 63, 63 (the first cold start's: -2.0 [-8.1, +4.1])
    ([71, 71, 73, 73], "ahead (+10.0 [+8.0, +12.0])", "holds"),
    ([55, 55, 57, 57], "behind (−6.0 [−8.0, −4.0])", "is contradicted"),
    ([62, 62, 64, 64], "equal within 4 points (+1.0 [−1.0, +3.0])", "is not replicated: it rests on one cold start"),
    ([56, 58, 62, 64], "not decided (−2.0 [−8.1, +4.1]; its half-width, 6.1 points at 4 seeds, is above the margin)",
     "is not replicated: it rests on one cold start"),
])
def test_the_replication_says_whether_the_first_cold_starts_lead_holds(tmp_path, monkeypatch, focus, said, outcome):
    write_decide(tmp_path / "decide.json", monkeypatch)
    two = {"0.9": {"uniform": [61, 61, 63, 63], "vas-select": focus}}
    write_decide(tmp_path / "replicate.json", monkeypatch, base=two, source="REPLICATE")
    blocks = evidence.blocks()
    text = blocks[evidence.REPLICATION]["replication"].replace("\n", " ")
    assert f"focusing VAS at λ = 1 {said}." in text and f"lead at d = 0.9 {outcome}." in text
    answer = blocks[evidence.README]["answer"].replace("\n", " ")  # README's answer says it in one sentence
    assert (f"From a second cold start ([docs/replication.md](docs/replication.md)), 4 seeds an arm, focusing VAS "
            f"at λ = 1 at d = 0.9 against uniform: {said[said.index('(') + 1:said.index(']') + 1]}; its lead "
            f"{outcome.split(':')[0]}.") in answer
    assert "4 seeds an arm: −2.0 [−8.1, +4.1]." in text  # the first cold start's interval beside it
    assert "| focusing VAS at λ = 1 | 4 |" in text and "posterior VAS" not in text  # the table: its two arms


def test_the_replication_decides_nothing_until_its_planned_runs_are_in(tmp_path, monkeypatch):
    write_decide(tmp_path / "decide.json", monkeypatch)
    two = {"0.9": {"uniform": [61, 61, 63, 63], "vas-select": [71, 71, 73, 73]}}
    write_decide(tmp_path / "replicate.json", monkeypatch, base=two, source="REPLICATE", drop=[("0.9", "uniform", 3)])
    blocks = evidence.blocks()
    text = blocks[evidence.REPLICATION]["replication"]
    assert "7 of 8 runs have finished" in text and "holds" not in text
    assert "second cold start" not in blocks[evidence.README]["answer"]
    # all 4 in, but the interval (half-width 6.1) wider than the margin while 6 seeds are allowed: 2 more an arm
    wide = {"0.9": {"uniform": [61, 61, 63, 63], "vas-select": [56, 58, 62, 64]}}
    write_decide(tmp_path / "replicate.json", monkeypatch, base=wide, source="REPLICATE",
                 protocol={**PROTOCOL, "max_seeds": 6})
    assert "8 of 12 runs have finished" in evidence.blocks()[evidence.REPLICATION]["replication"]
