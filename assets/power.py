"""How many seeds docs/protocol.md needs: the per-run variance of each candidate endpoint in the committed comparison
(assets/vas_compare.json: one cold start, 200 held-out items of which 50 "biggest", evaluated every 640 rollouts),
pooled within arms, and the seeds per arm that give a 95% Welch half-width of at most 4 points between two arms.

Candidates: the final evaluation; the mean of the last 8 or 4 evaluations; the area under accuracy-vs-rollouts
over the 10,240-rollout budget; and, read from every second evaluation (the 1,280-rollout grid the protocol
uses), the mean of its last 4 (the evaluations at 6,400 to 10,240 rollouts) or 2, and its area; and the mean of
the last 2 of every fourth evaluation (at 7,680 and 10,240 rollouts, a 2,560 grid). "Seeds" solves
t975(2n - 2) sqrt(2 s^2 / n) <= 4 for the pooled s^2; "seeds, 80%" for s^2 at its upper 80% confidence bound
(s^2 df / chi2_0.2(df), Wilson-Hilferty), since 3 to 5 seeds an arm estimate s^2 loosely.
    python assets/power.py
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import endpoints as E  # noqa: E402

BUDGET, HALF = 10240, 4.0


def candidates(x, y) -> dict:
    """Each candidate endpoint of one curve, in points: x rollouts, y accuracy in %."""
    x2, y2 = x[::2], y[::2]  # every second evaluation: the one past each multiple of 1,280
    return {"final": y[-1], "last 8": E.last_k_mean(y, 8), "last 4": E.last_k_mean(y, 4),
            "area": E.area(x, y, BUDGET), "1,280 grid: last 4": E.last_k_mean(y2, 4),
            "1,280 grid: last 2": E.last_k_mean(y2, 2), "1,280 grid: area": E.area(x2, y2, BUDGET),
            "2,560 grid: last 2": E.last_k_mean(y[::4], 2)}


def seeds_for(var: float, half: float = HALF) -> int:
    n = 2
    while E.t975(2 * n - 2) * np.sqrt(2 * var / n) > half:
        n += 1
    return n


def chi2_20(df: int) -> float:
    """chi-square's 20% quantile (Wilson-Hilferty): 14.58 at 20 degrees of freedom (exact 14.58)."""
    return df * (1 - 2 / (9 * df) - 0.8416 * np.sqrt(2 / (9 * df))) ** 3


def table(results: dict, share: str, curve: str) -> list[str]:
    per_arm = {arm: [candidates(np.array(r["rollouts"], float), 100 * np.array(r[curve])) for r in seeds.values()]
               for arm, seeds in results[share].items()}
    lines = [f"dead share {share}, {'biggest' if curve == 'target_accuracy' else 'all families'}: arms "
             + ", ".join(f"{arm} ({len(v)})" for arm, v in per_arm.items()),
             f"  {'endpoint':<20} {'pooled s^2':>10} {'df':>3} {'uniform s^2':>11} {'seeds':>5} {'seeds, 80%':>10}"]
    for key in per_arm["uniform"][0]:
        groups = [np.array([c[key] for c in runs]) for runs in per_arm.values()]
        df = sum(len(g) - 1 for g in groups)
        var = sum(((g - g.mean()) ** 2).sum() for g in groups) / df
        lines.append(f"  {key:<20} {var:10.1f} {df:3d} {groups[0].var(ddof=1):11.1f} {seeds_for(var):5d} "
                     f"{seeds_for(var * df / chi2_20(df)):10d}")
    return lines


if __name__ == "__main__":
    results = json.load(open(os.path.join(HERE, "vas_compare.json")))["results"]
    print("\n".join(table(results, "0.9", "target_accuracy") + table(results, "0.0", "accuracy")
                    + table(results, "0.0", "target_accuracy")))
