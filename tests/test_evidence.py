"""assets/evidence.py and docs/when-vas-pays.md: every block of the page is what the committed files give, every
other number is a setting the code names, a difference is worded by what its interval decides, each sampler has
one name, and the six-seed record the README quotes is consistent with itself."""
import os
import re
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
import compare_vas  # noqa: E402
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


def test_seed_0_is_worded_by_its_sign():
    r = evidence.default_run()
    assert "posterior VAS ends 2.0 points behind uniform on this seed" in evidence.readme_first_run(r)
    r["diff"] = np.where(r["seed"] == 0, 1.5, r["diff"])
    assert "posterior VAS ends 1.5 points ahead of uniform on this seed" in evidence.readme_first_run(r)


def test_the_six_seed_record_agrees_with_itself():
    """Its printed differences are the printed accuracies' to the rounding of each; six seeds, 0 to 5."""
    r = evidence.default_run()
    assert list(r["seed"]) == list(range(6))
    assert np.all(np.abs(r["diff"] - (r["vas"] - r["uniform"])) <= 0.1 + 1e-9)
    assert r["time"][0] <= r["time"][1] and r["time"][2] in r["seed"]


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
