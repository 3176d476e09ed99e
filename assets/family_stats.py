"""What a checkpoint samples, per family and per true count: where RL has a signal and where it has none.

For each prompt of the RL pool (and, for counting, the test split too), G rollouts at the run's
temperature: the sampled accuracy, the share of groups that are all wrong (their advantages are exactly
zero: no gradient) or all right, the mean completion length; for the count family, per true count, also
the mean number the model boxed. Run it on a run's sft/ and final/ to see what RL changed:

    python assets/family_stats.py runs/default-seed2/sft
    python assets/family_stats.py runs/default-seed2/final
    python assets/family_stats.py runs/cold-1/sft --dead-share 0.9   # the pools of "When VAS pays"
"""
import argparse
import os
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
import mmr1  # noqa: E402


def group_stats(policy, examples, args, key) -> dict:
    """key(example) -> one row per group: accuracy, all wrong, all right, length, mean boxed number."""
    G = args.group_size
    ro = mmr1.rollout(policy, examples, args, group=G)
    rows = defaultdict(list)
    for i, ex in enumerate(examples):
        correct, texts = ro.correct[i * G:(i + 1) * G], ro.texts[i * G:(i + 1) * G]
        boxed = [mmr1.last_boxed(t) or "" for t in texts]
        numbers = [float(b.replace(" ", "")) for b in boxed if b.replace(" ", "").isdigit()]
        rows[key(ex)].append([correct.mean().item(), float(correct.sum() == 0), float(correct.sum() == G),
                              ro.mask[i * G:(i + 1) * G].sum(1).mean().item(),
                              np.mean(numbers) if numbers else np.nan])
    return {k: np.array(v) for k, v in sorted(rows.items())}  # (groups, 5) per key


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a run's sft/ or final/ directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dead-share", type=float, default=0.0, help="the RL pool of mmr1.py --dead-share")
    a = p.parse_args(argv)
    # the toy data and sampling flags of the default
    args = mmr1.parse_args(["--init-from", a.checkpoint, "--dead-share", str(a.dead_share)])
    splits = data.toy_splits(args)
    policy = mmr1.load_policy(args, [])
    print(f"{a.checkpoint}: G = {args.group_size} rollouts per prompt at temperature {args.temperature}")
    print(f"{'':<16}{'accuracy':>9}{'all wrong':>10}{'all right':>10}{'length':>8}{'boxed':>7}")
    mmr1.set_seed(a.seed)
    kind = lambda e: "octagon" if e.answer == "octagon" else e.family  # noqa: E731 (dead_pool's never-solved)
    for family, rows in group_stats(policy, splits["rl"], args, kind).items():
        v = rows[:, :4].mean(0)
        print(f"{family:<16}{v[0]:>9.2f}{v[1]:>10.2f}{v[2]:>10.2f}{v[3]:>8.1f}")
    counts = [e for e in splits["rl"] + splits["test"] if e.family == "count"]
    for n, rows in group_stats(policy, counts, args, lambda e: int(e.answer)).items():
        v = rows[:, :4].mean(0)
        print(f"{f'count = {n}':<16}{v[0]:>9.2f}{v[1]:>10.2f}{v[2]:>10.2f}{v[3]:>8.1f}{np.nanmean(rows[:, 4]):>7.2f}")


if __name__ == "__main__":
    main()
