"""The endpoints and tests of docs/protocol.md: one number per run from its evaluation curve, and two arms compared.

Pure numpy (and the standard library): a run is its evaluation curve on the rollout clock, `rollouts` (generated so
far, 0 = the cold start) and `acc` (held-out accuracy, a fraction, at each of them). Worked numbers below use the
curve rollouts [0, 640, 1280, 1920], acc [0.2, 0.4, 0.6, 0.8].
    last_k_mean        mean of the last k evaluations: k = 2 -> 0.7
    area               area under accuracy-vs-rollouts up to the budget, over the budget: 1920 -> 0.5
    first_reached      rollouts when acc first reached a target: 0.6 -> 1280; 0.9 -> None (censored)
    restricted_mean    rollouts to target as a Kaplan-Meier restricted mean up to the budget, and the share that
                       reached it; runs that never did count as censored at their last rollouts, not left out
    welch              difference of means with a 95% Welch interval
    mann_whitney       the rank test: U, its two-sided p (normal approximation, ties corrected) and the
                       Hodges-Lehmann shift with its 95% interval
Why not compare_vas.difference: its t quantile is 1.96 beyond 10 degrees of freedom (at 20 seeds an arm, ~38: the
interval 3% too narrow, at 11: 11%), and compare_vas imports mmr1 and torch; here t975 is the Cornish-Fisher series.
"""
import math

import numpy as np


def last_k_mean(acc, k: int) -> float:
    """Mean of the last k evaluations of a curve: [0.2, 0.4, 0.6, 0.8], k = 2 -> 0.7. Late evaluations of a run that
    breaks through late or early differ less than its final value alone, so they make a steadier endpoint."""
    acc = np.asarray(acc, dtype=float)
    if not 1 <= k <= len(acc):
        raise ValueError(f"k = {k} evaluations asked of a curve of {len(acc)}")
    return float(acc[-k:].mean())


def area(rollouts, acc, budget: float) -> float:
    """Area under accuracy against rollouts generated, from 0 to `budget`, divided by `budget`: the run's mean
    accuracy over its rollouts, in the units of acc. Trapezoids between evaluations (accuracy taken as linear
    between two of them), the curve cut at the budget by linear interpolation and held flat after its last
    evaluation if it ends short. The evaluations are at the first step past each multiple of --eval-rollouts, so
    every arm is read on the same grid. [0, 640, 1280, 1920], [0.2, 0.4, 0.6, 0.8], budget 1920 -> 0.5;
    budget 960 -> (0.2 + 0.4) / 2 * 640 / 960 + (0.4 + 0.5) / 2 * 320 / 960 = 0.35."""
    x, y = np.asarray(rollouts, dtype=float), np.asarray(acc, dtype=float)
    if x[0] != 0 or np.any(np.diff(x) <= 0):
        raise ValueError("the curve must start at 0 rollouts (the cold start) and rise")
    grid = np.union1d(x[x < budget], [budget])
    ys = np.interp(grid, x, y)  # beyond the last evaluation: its value
    return float(np.sum((ys[1:] + ys[:-1]) / 2 * np.diff(grid)) / budget)


def first_reached(rollouts, acc, target: float):
    """Rollouts generated when acc first reached `target` (to 1e-9, since 0.8 of 200 items is 160 / 200), or None
    if it never did: [0, 640, 1280], [0.2, 0.5, 0.8], target 0.5 -> 640; target 0.9 -> None."""
    return next((float(n) for n, a in zip(rollouts, acc) if a >= target - 1e-9), None)


def kaplan_meier(times, reached):
    """The Kaplan-Meier curve of time to target: the distinct times at which runs reached it, the share of runs
    not yet there just after each (S), and the runs still at risk and reaching at each. A run that never reached
    it (reached False) is censored at its time: it counts at risk up to there, and is then dropped, not counted
    as reaching. Four runs, two reaching at 640 and 1280, two censored at 1920: S = 3/4 after 640, 2/4 after 1280."""
    t, e = np.asarray(times, dtype=float), np.asarray(reached, dtype=bool)
    events = np.unique(t[e])
    at_risk = np.array([np.sum(t >= u) for u in events])  # still running and not yet there just before u
    hits = np.array([np.sum((t == u) & e) for u in events])
    return events, np.cumprod(1 - hits / np.maximum(at_risk, 1)), at_risk, hits


def restricted_mean(times, reached, horizon: float) -> tuple[float, float, float]:
    """Rollouts to target as the Kaplan-Meier restricted mean up to `horizon` (the budget): the area under the
    share-not-yet-there curve S(t) from 0 to the horizon, i.e. the mean of min(time to target, horizon), with
    censored runs handled by the curve instead of dropped (dropping them favours the fast runs) or counted as
    reaching at the horizon. Returns (restricted mean, its standard error by Greenwood's formula, the share that
    reached the target by the horizon = 1 - S(horizon)). The example above, horizon 1920:
    640 * 1 + 640 * 3/4 + 640 * 2/4 = 1440; share reached 0.5."""
    events, surv, at_risk, hits = kaplan_meier(times, reached)
    keep = events <= horizon
    events, surv, at_risk, hits = events[keep], surv[keep], at_risk[keep], hits[keep]
    knots = np.concatenate([[0.0], events, [horizon]])
    levels = np.concatenate([[1.0], surv])  # S on each interval between knots
    pieces = levels * np.diff(knots)
    rmst = float(pieces.sum())
    # Greenwood: Var = sum over event times u of A(u)^2 d / (n (n - d)), A(u) = the area under S after u
    after = np.cumsum(pieces[::-1])[::-1][1:]  # A at each event time
    n, d = at_risk.astype(float), hits.astype(float)
    terms = np.where(n > d, after ** 2 * d / np.maximum(n * (n - d), 1e-12), 0.0)  # S = 0 after: A = 0
    return rmst, float(math.sqrt(terms.sum())), float(1 - levels[-1])


def t975(df: float) -> float:
    """Student's t 97.5% quantile: from a table for 1 to 3 degrees of freedom, the Cornish-Fisher series in 1/df
    beyond (Abramowitz & Stegun 26.7.5; within 0.001 from 4 on): 12.706, 4.303, 3.182, ..., 2.086 at 20, 2.024 at
    38, 1.96 in the limit. A fractional df (Welch's) is rounded down in the table, as the conservative side."""
    if df < 1:
        return float("nan")
    if df < 4:
        return (12.706, 4.303, 3.182)[int(df) - 1]
    z, v = 1.959964, float(df)
    return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3)
            + (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / (92160 * v ** 4))


def welch(a, b) -> tuple[float, float, float]:
    """mean(a) - mean(b) with its 95% Welch interval (different seeds, unequal variances), as (diff, low, high).
    [1, 2, 3] against [0, 0, 0]: 2.0, with half-width t975(2) * sqrt(1 / 3) = 2.484."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else 1e9
    diff, half = float(a.mean() - b.mean()), t975(df) * math.sqrt(va + vb)
    return diff, diff - half, diff + half


def mann_whitney(a, b) -> dict:
    """The rank test beside Welch, for outcomes in two humps (seeds that break through and seeds that do not).
    U = the pairs (x from a, y from b) with x > y, ties counting 1/2; its two-sided p from the normal approximation
    with the tie correction (no continuity correction); the Hodges-Lehmann shift (the median of all x - y) and its
    95% interval from the order statistics of those differences (Lehmann's normal-approximation rank k).
    [3, 4, 5] against [1, 2, 3]: U = 8.5 of 9 pairs, p = 0.077, shift 2."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n, m = len(a), len(b)
    diffs = np.sort((a[:, None] - b[None, :]).ravel())
    u = float(np.sum(diffs > 0) + 0.5 * np.sum(diffs == 0))
    _, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    var = n * m / 12 * ((n + m + 1) - np.sum(counts ** 3 - counts) / ((n + m) * (n + m - 1)))
    p = math.erfc(abs(u - n * m / 2) / math.sqrt(2 * var)) if var > 0 else 1.0
    k = int(math.floor(n * m / 2 - 1.959964 * math.sqrt(n * m * (n + m + 1) / 12)))  # the order statistic's rank
    low, high = (diffs[k], diffs[-k - 1]) if k >= 0 else (-math.inf, math.inf)
    return {"u": u, "p": float(p), "shift": float(np.median(diffs)), "low": float(low), "high": float(high)}


# ---------------------------------------------------------------- a run's endpoints, and arms against a base

def run_endpoints(run: dict, curve: str, budget: float, k: int, target: float) -> dict:
    """The endpoints of one run (docs/protocol.md) from its record: run["rollouts"], and run["accuracy"][curve]
    the held-out accuracy curve ("all", or a family) read, in points: primary = the mean of the last k evaluations,
    area = mean accuracy over the budget, final; and time to `target` (None if never) with the rollouts the run
    ended at, where a run that never got there is censored."""
    x, y = run["rollouts"], 100 * np.asarray(run["accuracy"][curve], dtype=float)
    return {"primary": last_k_mean(y, k), "area": area(x, y, budget), "final": float(y[-1]),
            "reached_at": first_reached(x, y, 100 * target), "ended_at": float(x[-1])}


def compare(arms: dict, curve: str, budget: float, k: int, target: float, base: str = "uniform") -> dict:
    """Each arm's endpoints over its seeds, and against `base`: arms = {arm: [run record, ...]}. Per arm: seeds,
    primary (mean and 95% t interval), area, final, rollouts to target (restricted mean up to the budget, its
    standard error, the share reached), and, for every arm but the base, the primary and area against the base
    (Welch 95%, half-width, the rank test) and the restricted mean against the base (normal 95%)."""
    ends = {arm: [run_endpoints(r, curve, budget, k, target) for r in runs] for arm, runs in arms.items()}
    col = {arm: {key: np.array([e[key] for e in ends[arm]]) for key in ("primary", "area", "final")} for arm in arms}
    out = {}
    for arm, e in ends.items():
        times = [x["reached_at"] if x["reached_at"] is not None else x["ended_at"] for x in e]
        rmst, se, share = restricted_mean(times, [x["reached_at"] is not None for x in e], budget)
        p, n = col[arm]["primary"], len(e)
        out[arm] = {"seeds": n, "primary": float(p.mean()),
                    "primary_half": float(t975(n - 1) * p.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                    "area": float(col[arm]["area"].mean()), "final": float(col[arm]["final"].mean()),
                    "to_target": rmst, "to_target_se": se, "reached": share, "per_seed": p.tolist()}
    for arm in arms:
        if arm == base or base not in arms or min(len(ends[arm]), len(ends[base])) < 2:
            continue
        for key in ("primary", "area"):
            diff, low, high = welch(col[arm][key], col[base][key])
            out[arm][f"{key}_vs_base"] = {"diff": diff, "low": low, "high": high, "half": (high - low) / 2,
                                          "rank": mann_whitney(col[arm][key], col[base][key])}
        d = out[arm]["to_target"] - out[base]["to_target"]
        half = 1.959964 * math.hypot(out[arm]["to_target_se"], out[base]["to_target_se"])
        out[arm]["to_target_vs_base"] = {"diff": d, "low": d - half, "high": d + half}
    return out


def verdict(low: float, high: float, margin: float) -> str:
    """What an interval against the base decides, with the margin that counts as equal (docs/protocol.md):
    [+1, +7] -> "ahead"; [+1, +3], margin 4 -> "ahead, by less than 4"; [-3, +2] -> "equal within 4";
    [-6, +2] -> "not decided"."""
    if low > 0 or high < 0:
        side = "ahead" if low > 0 else "behind"
        return f"{side}, by less than {margin:g}" if -margin < low and high < margin else side
    return f"equal within {margin:g}" if -margin < low and high < margin else "not decided"
