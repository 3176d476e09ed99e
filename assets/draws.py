"""Where each VAS arm of the decisive comparison spent its groups, by family.

A VAS sampler's evidence holds, per prompt, the groups drawn of it, each multiplied by the decay (`--vas-decay`)
once a step since: at a run's end, a count of its groups that weighs the recent ones a little more. Summed over each
family of the run's own pool and divided by the total, it is the share of the run's groups each family had; a
uniform draw's share is the family's share of the pool. Spread over the prompts, it says how narrowly a sampler
focused: `effective_prompts`. On a dead pool, when its dead draws and all-equal groups came: `by_steps`, from each
run's metrics.jsonl. From each finished run's checkpoint.pt under the work directory of `decide.py report`:
    python assets/draws.py --workdir runs/decide      # writes assets/draws.json
"""
import argparse
import dataclasses
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "assets"))
import data  # noqa: E402
import decide  # noqa: E402
import mmr1  # noqa: E402


def pool_families(run: str) -> list[str]:
    """The family of each prompt of the run's RL pool, in the sampler's order (data.toy_splits of its flags)."""
    saved = json.load(open(os.path.join(run, "args.json")))
    args = mmr1.Args(**{f.name: saved[f.name] for f in dataclasses.fields(mmr1.Args) if f.name in saved})
    return [ex.family for ex in data.toy_splits(dataclasses.replace(args, num_sft=0, num_test=0))["rl"]]


def family_shares(families: list[str], groups) -> dict[str, float]:
    """Each family's share of the (decayed) groups: sum over its prompts, over the total."""
    groups = np.asarray(groups, dtype=float)
    return {f: float(groups[[x == f for x in families]].sum() / groups.sum()) for f in sorted(set(families))}


def effective_prompts(groups) -> float:
    """How many prompts, drawn alike, would spread the groups as evenly: the exponential of the entropy of each
    prompt's share. [1, 1, 0, 0] -> 2.0; [2, 1, 1] -> 2 ** 1.5 = 2.83; n prompts drawn alike -> n."""
    p = np.asarray(groups, dtype=float) / np.sum(groups)
    return float(np.exp(-np.sum(p[p > 0] * np.log(p[p > 0]))))


def by_steps(run: str, key: str, edges=(10, 30)) -> list[float]:
    """The mean of a per-step metric over steps edges[0] to edges[1] - 1, then from edges[1] on (each step counts once,
    as decide.read_run's means after step 10 do): when a sampler drew its dead prompts."""
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    steps = {r["step"]: r[key] for r in rows if r["stage"] == "rl" and key in r}
    return [float(np.mean([x for s, x in steps.items() if lo <= s < hi]))
            for lo, hi in zip(edges, (*edges[1:], np.inf))]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default=os.path.join(ROOT, "runs", "decide"), help="decide.py report's --workdir")
    p.add_argument("--out", default=os.path.join(ROOT, "assets", "draws.json"))
    a = p.parse_args(argv)
    out = {"command": "python assets/draws.py " + " ".join(argv if argv is not None else sys.argv[1:]), "shares": {}}
    for d in decide.CURVE:
        share = out["shares"].setdefault(f"{d:g}", {})
        for arm in (arm for arm, flags in decide.ARMS.items() if "--vas" in flags):
            root = os.path.join(a.workdir, "report", f"d{d:g}", arm)
            runs = sorted(os.path.join(root, s) for s in os.listdir(root) if os.path.exists(
                os.path.join(root, s, "summary.json"))) if os.path.isdir(root) else []
            if not runs:
                continue
            families = pool_families(runs[0])
            share["pool"] = family_shares(families, np.ones(len(families)))
            groups = [torch.load(os.path.join(r, "checkpoint.pt"), weights_only=True)["sampler"]["evidence"]["groups"]
                      for r in runs]
            seeds = [family_shares(families, g) for g in groups]
            share[arm] = {"seeds": len(seeds), "families": {f: float(np.mean([s[f] for s in seeds]))
                                                            for f in seeds[0]},
                          "effective": float(np.mean([effective_prompts(g) for g in groups]))}
            if d:  # a dead pool: its dead draws and all-equal groups, steps 10 to 29 and from 30 on
                share[arm]["by_steps"] = {key: np.mean([by_steps(r, key) for r in runs], axis=0).tolist()
                                          for key in ("vas/dead_drawn", "reward/zero_std_frac")}
    json.dump(out, open(a.out, "w"), indent=1)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
