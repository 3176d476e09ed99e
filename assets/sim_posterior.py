"""How the posterior of VAS with no scoring bill was set: an offline simulation of the toy pools, no model.

A pool of 256 prompts at dead share d: half the dead always solved (P = 0.99, identical answers: TDS 0), half never
(P = 0, diverse wrong answers: TDS 0.4), the live ones' pass rate rising from 0.4 to 0.97 over 60 steps (as
"biggest" does in the default run; TDS 0.3). Each step draws B = 16 prompts (lambda = 1 for VAS), G = 8 outcomes
each; the paper's VAS scores the pool with N = 8 every 30 steps, and its scoring counts against the budget of
10,240 rollouts. Printed: groups whose outcomes differ (the ones with a gradient) and live prompts drawn, mean of
5 seeds, for uniform, the paper's VAS, and the posterior at several priors and decays.
    python assets/sim_posterior.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import vas  # noqa: E402


def simulate(mode, d, seed, prior=0.1, decay=0.98, budget=10240, B=16, G=8, N=8, T=30, n=256):
    rng = np.random.default_rng(seed)
    n_dead = round(d * n)
    kind = np.array([0] * (n_dead - n_dead // 2) + [1] * (n_dead // 2) + [2] * (n - n_dead))  # always, never, live
    tds = np.array([0.0, 0.4, 0.3])[kind]
    s = vas.VarianceAwareSampler(n, B, 0.0 if mode == "uniform" else 1.0, seed,
                                 decay=decay if mode == "posterior" else None, prior=prior)
    rollouts = differ = live = step = 0
    while rollouts < budget:
        p = np.where(kind == 0, 0.99, np.where(kind == 1, 0.0, 0.4 + 0.57 * min(step / 60, 1)))
        if mode == "paper" and step % T == 0:  # N rollouts of every prompt: P and TDS as measured
            s.set_scores(vas.variance_promotion_score(vas.outcome_variance_score(rng.random((n, N)) < p[:, None]), tds))
            rollouts += n * N
        ids = s.next_batch()
        right = (rng.random((B, G)) < p[ids][:, None]).sum(1)
        differ, live, rollouts = differ + int(((right > 0) & (right < G)).sum()), live + int((kind[ids] == 2).sum()), rollouts + B * G
        if mode == "posterior":  # what VarianceAwareSampler.update does with these outcomes, without the texts
            s.evidence *= decay
            np.add.at(s.evidence, (slice(None), ids), np.stack([right, G - right, np.ones(B), tds[ids]]))
            s._posterior()
        step += 1
    return differ, live


if __name__ == "__main__":
    arms = [("uniform", {}), ("paper", {})] + [("posterior", dict(prior=a, decay=g))
                                               for a in (0.5, 0.1, 0.05) for g in (0.97, 0.98, 0.99)]
    for d in (0.25, 0.9):
        for mode, kw in arms:
            differ, live = np.mean([simulate(mode, d, seed, **kw) for seed in range(5)], axis=0)
            print(f"d = {d}  {mode:<9} {str(kw):<28} groups that differ {differ:5.0f}   live prompts drawn {live:5.0f}")
