"""assets/endpoints.py, the endpoints and tests of docs/protocol.md, on hand-made curves and a small hand-made JSON
of runs, every number computed by hand in the comments. Numpy only: well under a second."""
import json
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets"))
import endpoints as E  # noqa: E402

X, Y = [0, 640, 1280, 1920], [0.2, 0.4, 0.6, 0.8]

# Two arms of three seeds each on a budget of 1,920 rollouts, evaluated every 640 (accuracies in %/100): "a" ends
# higher; of its seeds two reach 80% (at 1,280 and 1,920), of the base's one (at 1,920) and two never do.
RUNS = json.loads("""{
 "base": [{"rollouts": [0, 640, 1280, 1920], "accuracy": {"biggest": [0.2, 0.4, 0.6, 0.6]}},
          {"rollouts": [0, 640, 1280, 1920], "accuracy": {"biggest": [0.2, 0.4, 0.5, 0.7]}},
          {"rollouts": [0, 640, 1280, 1920], "accuracy": {"biggest": [0.2, 0.6, 0.7, 0.8]}}],
 "a":    [{"rollouts": [0, 640, 1280, 1920], "accuracy": {"biggest": [0.2, 0.6, 0.8, 0.8]}},
          {"rollouts": [0, 640, 1280, 1920], "accuracy": {"biggest": [0.2, 0.5, 0.7, 0.9]}},
          {"rollouts": [0, 640, 1280, 1920], "accuracy": {"biggest": [0.2, 0.4, 0.6, 0.7]}}]}""")


def test_last_k_mean():
    assert E.last_k_mean(Y, 2) == pytest.approx(0.7)  # (0.6 + 0.8) / 2
    assert E.last_k_mean(Y, 1) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        E.last_k_mean(Y, 5)


def test_area_is_the_trapezoid_over_the_budget():
    # (0.3 + 0.5 + 0.7) * 640 / 1920 = 0.5
    assert E.area(X, Y, 1920) == pytest.approx(0.5)
    # cut at 960 by interpolation (0.5 there): (0.3 * 640 + 0.45 * 320) / 960 = 0.35
    assert E.area(X, Y, 960) == pytest.approx(0.35)
    # past the last evaluation the curve is held: (0.5 * 1920 + 0.8 * 640) / 2560 = 0.575
    assert E.area(X, Y, 2560) == pytest.approx(0.575)


def test_first_reached_and_censored():
    assert E.first_reached(X, Y, 0.6) == 1280
    assert E.first_reached(X, [0.2, 0.4, 0.6 - 1e-12, 0.8], 0.6) == 1280  # a float a hair below counts
    assert E.first_reached(X, Y, 0.9) is None


def test_kaplan_meier_drops_censored_runs_from_the_risk_set():
    # reached at 640 and 1280, two censored at 1920: S = 3/4 after 640, 3/4 * 2/3 = 1/2 after 1280
    events, surv, at_risk, hits = E.kaplan_meier([640, 1280, 1920, 1920], [True, True, False, False])
    assert events.tolist() == [640, 1280] and at_risk.tolist() == [4, 3] and hits.tolist() == [1, 1]
    assert surv.tolist() == pytest.approx([0.75, 0.5])
    # censored at 960, before the second event: at risk at 1280 is 2, not 3; S = 3/4 * 1/2 = 3/8
    events, surv, at_risk, _ = E.kaplan_meier([640, 960, 1280, 1920], [True, False, True, False])
    assert at_risk.tolist() == [4, 2] and surv.tolist() == pytest.approx([0.75, 0.375])


def test_restricted_mean_counts_the_runs_that_never_reached():
    rmst, se, share = E.restricted_mean([640, 1280, 1920, 1920], [True, True, False, False], 1920)
    assert rmst == pytest.approx(640 + 640 * 0.75 + 640 * 0.5)  # 1440; the reached-only mean would say 960
    assert share == pytest.approx(0.5)
    # Greenwood: A(640) = 480 + 320 = 800, A(1280) = 320: 800^2 / (4 * 3) + 320^2 / (3 * 2) = 70,400
    assert se == pytest.approx(math.sqrt(800 ** 2 / 12 + 320 ** 2 / 6))
    # every run reached at 640: S = 0 after, restricted mean 640, no variance
    assert E.restricted_mean([640, 640], [True, True], 1920) == pytest.approx((640, 0, 1))
    # nobody reached: the horizon, share 0
    assert E.restricted_mean([1920, 1920], [False, False], 1920) == pytest.approx((1920, 0, 0))


def test_t975_and_welch():
    assert [round(E.t975(df), 3) for df in (1, 2, 3, 4, 10, 20, 38, 1e9)] == \
        [12.706, 4.303, 3.182, 2.776, 2.228, 2.086, 2.024, 1.960]
    # [1, 2, 3] vs [0, 0, 0]: diff 2, variance of the mean 1/3 + 0, df = (1/3)^2 / ((1/3)^2 / 2) = 2
    diff, low, high = E.welch([1, 2, 3], [0, 0, 0])
    assert diff == 2 and high - diff == pytest.approx(4.303 * math.sqrt(1 / 3))
    # unequal sizes and variances: [1, 3] (var 2, /2 = 1) vs [0, 1, 2] (var 1, /3): df = (4/3)^2 / (1 + 1/18)
    diff, low, high = E.welch([1, 3], [0, 1, 2])
    df = (4 / 3) ** 2 / (1 / 1 + (1 / 3) ** 2 / 2)
    assert diff == 1 and high - diff == pytest.approx(E.t975(df) * math.sqrt(4 / 3))


def test_mann_whitney_with_ties():
    # [3, 4, 5] vs [1, 2, 3]: 8 pairs won, one tie (3 = 3): U = 8.5; ties (3 twice) t^3 - t = 6:
    # var = 9/12 * (7 - 6 / 30) = 5.1; z = (8.5 - 4.5) / sqrt(5.1) = 1.7712; p = 0.0765
    r = E.mann_whitney([3, 4, 5], [1, 2, 3])
    assert r["u"] == 8.5 and r["p"] == pytest.approx(0.076523, abs=1e-5)
    # differences 0 1 1 2 2 2 3 3 4: Hodges-Lehmann 2; k = floor(4.5 - 1.96 sqrt(5.25)) = 0: [0, 4]
    assert (r["shift"], r["low"], r["high"]) == (2, 0, 4)
    assert E.mann_whitney([1, 2, 10], [0])["shift"] == 2  # the median difference, not the mean (4.33)
    assert E.mann_whitney([1, 2, 3], [3, 4, 5])["u"] == 0.5  # the other way round: 9 - 8.5
    assert E.mann_whitney([1, 1], [1, 1])["p"] == 1.0  # all tied: nothing to rank


def test_endpoints_of_a_run_from_the_json():
    e = E.run_endpoints(RUNS["a"][0], "biggest", 1920, 2, 0.8)
    # last 2: (80 + 80) / 2; area: (40 + 70 + 80) * 640 / 1920 = 63.33; reached 80% at 1280
    assert e == pytest.approx({"primary": 80.0, "area": 190 / 3, "final": 80.0, "reached_at": 1280, "ended_at": 1920})
    assert E.run_endpoints(RUNS["base"][0], "biggest", 1920, 2, 0.8)["reached_at"] is None


def test_compare_arms_from_the_json():
    got = E.compare(RUNS, "biggest", 1920, 2, 0.8, base="base")
    base, a = got["base"], got["a"]
    # primary, last 2: base 60, 60, 75 (mean 65); a 80, 80, 65 (mean 75)
    assert base["per_seed"] == pytest.approx([60, 60, 75]) and a["per_seed"] == pytest.approx([80, 80, 65])
    assert a["primary_vs_base"]["diff"] == pytest.approx(10)
    # both variances 75, /3 = 25 each: df = 50^2 / (2 * 25^2 / 2) = 4, half = 2.776 * sqrt(50)
    assert a["primary_vs_base"]["half"] == pytest.approx(E.t975(4) * math.sqrt(50))
    assert a["primary_half"] == pytest.approx(E.t975(2) * 5)  # sd sqrt(75), / sqrt(3)
    # rank test: a's 80, 80, 65 vs 60, 60, 75: 80 beats all 3 (twice), 65 beats 60, 60: U = 8
    assert a["primary_vs_base"]["rank"]["u"] == 8
    # areas: base (30 + 50 + 60, 30 + 45 + 60, 40 + 65 + 75) / 3 = 46.67, 45, 60; a (40 + 70 + 80, 35 + 60 + 80,
    # 30 + 50 + 65) / 3 = 63.33, 58.33, 48.33
    assert base["area"] == pytest.approx((140 + 135 + 180) / 9) and a["area"] == pytest.approx((190 + 175 + 145) / 9)
    # to 80%: base reached at 1920 once, two censored at 1920: S(1920) = 2/3, restricted mean 1920 (nobody
    # earlier), share 1/3; a reached at 1280 and 1920, one censored at 1920: 1280 + 640 * 2/3 = 1706.67
    assert (base["to_target"], base["reached"]) == pytest.approx((1920, 1 / 3))
    assert (a["to_target"], a["reached"]) == pytest.approx((1280 + 640 * 2 / 3, 2 / 3))
    assert a["to_target_vs_base"]["diff"] == pytest.approx(-640 / 3)
    assert "primary_vs_base" not in base


def test_verdict():
    assert E.verdict(1, 7, 4) == "ahead"
    assert E.verdict(1, 3, 4) == "ahead, by less than 4"
    assert E.verdict(-7, -1, 4) == "behind"
    assert E.verdict(-3, 2, 4) == "equal within 4"
    assert E.verdict(-6, 2, 4) == "not decided"
