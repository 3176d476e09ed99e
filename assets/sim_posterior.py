"""How posterior VAS's prior and decay were set, and where its dead draws come from: an offline
simulation of the toy pools, no model.

A pool of 256 prompts at dead share d: half the dead always solved (P = 0.99, identical answers: TDS 0), half never
(P = 0, diverse wrong answers: TDS 0.4), the live ones' pass rate rising from 0.4 to 0.97 over 60 steps (as
"biggest" does in the default run; TDS 0.3). Each step draws B = 16 prompts (lambda = 1 for VAS), G = 8 outcomes
each; the paper's VAS scores the pool with N = 8 every 30 steps, and its scoring counts against the budget of
10,240 rollouts. Printed first (as before): groups whose outcomes differ (the ones with a gradient) and live prompts
drawn, mean of 5 seeds, for uniform, the paper's VAS, and posterior VAS at several priors and decays.

Then, at d = 0.9, means over steps 10 to the budget's end and over 8 seeds, as shares of the
B prompts drawn a step:
  where the dead draws come from, for posterior VAS (`--vas`: drawn in proportion to VPS; lambda 0.5 and 1): the
  uniform part's dead draws, the weighted part's always-solved and never-solved ones, and the never-solved prompts'
  share of the VPS mass, split into its beta TDS and alpha OVS parts;
  what focusing VAS does (`select=True`, `--vas-select`: the top floor(lambda B) by posterior VPS, none twice) with
  beta 0.2 and 0, lambda 1 and 0.5, at the prior and decay `--vas` ships (0.1, 0.98) and at smaller priors and
  slower forgetting, beside the oracle that draws live prompts only: dead-by-construction draws and the all-equal
  share of the drawn groups;
  last, a policy that solves the live prompts fast, where even the oracle's groups mostly agree.
    python assets/sim_posterior.py            # both parts, ~7 s on one thread
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import vas  # noqa: E402

ALWAYS, NEVER, LIVE = 0, 1, 2


def simulate(mode, d, seed, prior=0.1, decay=0.98, budget=10240, B=16, G=8, N=8, T=30, n=256,
             lam=1.0, beta=0.2, select=False, rise=(0.4, 0.97, 60), after=10, trace=None):
    """Groups that differ and live prompts drawn, over the run. With `trace` (a dict), per step from step `after`
    on, appended to its lists: dead draws of the uniform part, always- and never-solved draws of the weighted part,
    all-equal groups (each a share of B), and the never-solved prompts' share of the VPS mass, its TDS part.
    `rise`: the live prompts' pass rate rises from rise[0] to rise[1] over rise[2] steps."""
    rng = np.random.default_rng(seed)
    n_dead = round(d * n)
    kind = np.array([ALWAYS] * (n_dead - n_dead // 2) + [NEVER] * (n_dead // 2) + [LIVE] * (n - n_dead))
    tds = np.array([0.0, 0.4, 0.3])[kind]
    s = vas.VarianceAwareSampler(n, B, 0.0 if mode in ("uniform", "oracle") else lam, seed, beta=beta,
                                 decay=decay if mode == "posterior" else None, prior=prior, select=select)
    rollouts = differ = live = step = 0
    while rollouts < budget:
        p_live = rise[0] + (rise[1] - rise[0]) * min(step / rise[2], 1)
        p = np.where(kind == ALWAYS, 0.99, np.where(kind == NEVER, 0.0, p_live))
        if mode == "paper" and step % T == 0:  # N rollouts of every prompt: P and TDS as measured
            s.set_scores(vas.variance_promotion_score(vas.outcome_variance_score(rng.random((n, N)) < p[:, None]), tds))
            rollouts += n * N
        scores = s.scores.copy()  # the VPS the weighted part draws by (not used when selecting)
        ids = np.array(s.next_batch() if mode != "oracle" else rng.choice(np.flatnonzero(kind == LIVE), B, False))
        right = (rng.random((B, G)) < p[ids][:, None]).sum(1)
        agree = (right == 0) | (right == G)
        differ, live, rollouts = differ + int((~agree).sum()), live + int((kind[ids] == LIVE).sum()), rollouts + B * G
        if trace is not None and step >= after:  # the weighted part is the batch's first num_weighted
            w, k = s.num_weighted if mode == "posterior" else 0, kind[ids]
            never = scores[kind == NEVER].sum()  # the never-solved prompts' VPS mass, and its beta TDS part
            for key, x in (("uniform_dead", np.sum(k[w:] != LIVE) / B),
                           ("weighted_always", np.sum(k[:w] == ALWAYS) / B),
                           ("weighted_never", np.sum(k[:w] == NEVER) / B), ("all_equal", agree.mean()),
                           ("never_mass", never / max(scores.sum(), 1e-12)),
                           ("never_tds_part", beta * s.tds[kind == NEVER].sum() / max(never, 1e-12))):
                trace.setdefault(key, []).append(x)
        if mode == "posterior":  # what VarianceAwareSampler.update does with these outcomes, without the texts
            for name, x in zip(vas.EVIDENCE, (right, G - right, np.ones(B), tds[ids])):
                s.evidence[name] *= decay
                np.add.at(s.evidence[name], ids, x)
            s._posterior()
        step += 1
    return differ, live


def after_step_10(mode, seeds=8, d=0.9, **kw):
    """The trace's means over steps 10 on and over seeds, with dead draws (all parts) added."""
    trace = {}
    for seed in range(seeds):
        simulate(mode, d, seed, trace=trace, **kw)
    m = {k: float(np.mean(v)) for k, v in trace.items()}
    return dict(m, dead=m["uniform_dead"] + m["weighted_always"] + m["weighted_never"])


if __name__ == "__main__":
    arms = [("uniform", {}), ("paper", {})] + [("posterior", dict(prior=a, decay=g))
                                               for a in (0.5, 0.1, 0.05) for g in (0.97, 0.98, 0.99)]
    for d in (0.25, 0.9):
        for mode, kw in arms:
            differ, live = np.mean([simulate(mode, d, seed, **kw) for seed in range(5)], axis=0)
            print(f"d = {d}  {mode:<9} {str(kw):<28} groups that differ {differ:5.0f}   live prompts drawn {live:5.0f}")
    print("\nd = 0.9, steps 10 to the end, 8 seeds, shares of the B prompts drawn: where the dead draws come from")
    print(f"{'sampler':<44} dead  uniform  w.always  w.never  never's VPS mass (beta TDS part)  all-equal")
    for lam in (0.5, 1.0):
        m = after_step_10("posterior", lam=lam)
        print(f"{f'posterior by VPS (--vas), lambda {lam}':<44} {m['dead']:.2f}  {m['uniform_dead']:7.2f}  "
              f"{m['weighted_always']:8.2f}  {m['weighted_never']:7.2f}  {m['never_mass']:15.2f} "
              f"({m['never_tds_part']:.2f}){'':13} {m['all_equal']:.2f}")
    print(f"\n{'sampler (lambda 1 unless said)':<62} dead  all-equal")
    rows = [("uniform", "uniform", {})] + [
        (f"select, beta {b}, lambda {lam} (prior 0.1, decay 0.98)", "posterior", dict(beta=b, lam=lam, select=True))
        for b in (0.2, 0.0) for lam in (1.0, 0.5)] + [
        (f"select, beta {b}, prior {a}, decay {g}", "posterior", dict(beta=b, prior=a, decay=g, select=True))
        for b in (0.2, 0.0) for a, g in ((0.1, 0.99), (0.02, 0.98), (0.02, 0.99))] + [
        ("oracle: live prompts only", "oracle", {}),
        ("live solved fast (0.47 -> 0.99 in 40 steps): oracle", "oracle", dict(rise=(0.47, 0.99, 40))),
        ("live solved fast: select, beta 0.2, prior 0.02, decay 0.99", "posterior",
         dict(prior=0.02, decay=0.99, select=True, rise=(0.47, 0.99, 40)))]
    for label, mode, kw in rows:
        m = after_step_10(mode, **kw)
        print(f"{label:<62} {m['dead']:.2f}  {m['all_equal']:.2f}")
