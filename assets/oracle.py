"""How few all-equal groups a sampler can draw on a dead pool, from a given cold start.

An oracle knows which prompts are live and never draws a dead one: it trains on a pool of only the live ("biggest")
prompts, as many as the dead pool holds (26 of 256 at d = 0.9; `--dead-share 0.0001` rounds to no dead prompt), for
the protocol's 10,240 rollouts (80 steps of 16 x 8) at the report's setting, drawing uniformly or by focusing VAS.
Its share of all-equal groups from step 10 on is what a sampler that draws no dead prompt would see: live prompts
that have been learnt agree too. Runs resume like decide.py's; `--gather` writes assets/oracle.json from them:
    python assets/oracle.py --init-from runs/decide/cold-8/sft --workdir runs/oracle --lane 0/2  # and 1/2 beside it
    python assets/oracle.py --init-from runs/decide/cold-8/sft --workdir runs/oracle --gather
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "assets"))
import decide  # noqa: E402
import mmr1  # noqa: E402

ARMS = ("uniform", "vas-select")


def flags(a, live: int) -> list[str]:
    """One oracle run's flags, beside --seed and the arm's: the live-only pool, the report's setting, 80 steps."""
    defaults = mmr1.Args()
    steps = decide.PROTOCOL["budget"] // (defaults.prompts_per_step * defaults.group_size)
    setting = decide.SETTINGS[json.load(open(os.path.join(ROOT, "assets", "decide.json")))["setting"]]
    return ["--init-from", a.init_from, "--num-rl", str(live), "--dead-share", "0.0001", *setting,
            "--rl-steps", str(steps), "--eval-every", "0", "--num-test", "40"]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init-from", required=True, help="the cold start's sft/ directory")
    p.add_argument("--workdir", default=os.path.join(ROOT, "runs", "oracle"))
    p.add_argument("--out", default=os.path.join(ROOT, "assets", "oracle.json"))
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--live", type=int, default=26, help="the live prompts of the default 256 at d = 0.9")
    p.add_argument("--lane", default="0/1", help="i/n: run every n-th run, from the i-th")
    p.add_argument("--gather", action="store_true", help="run nothing: gather the finished runs")
    a, extra = p.parse_known_args(argv)  # extra: flags for every run (tests: a tiny model)
    lane, lanes = map(int, a.lane.split("/"))
    runs = [(arm, seed) for seed in range(a.seeds) for arm in ARMS]
    for i, (arm, seed) in enumerate(runs):
        if not a.gather and i % lanes == lane:
            decide.run_one([*flags(a, a.live), *extra, "--seed", str(seed), *decide.ARMS[arm]],
                           os.path.join(a.workdir, arm, f"seed{seed}"))
    done = {arm: [decide.read_run(os.path.join(a.workdir, arm, f"seed{s}")) for s in range(a.seeds)
                  if os.path.exists(os.path.join(a.workdir, arm, f"seed{s}", "summary.json"))] for arm in ARMS}
    out = {"command": "python assets/oracle.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "cold_start": decide.cold_start(a.init_from), "live": a.live, "flags": flags(a, a.live),
           "all_equal": {arm: [r["all_equal"] for r in records] for arm, records in done.items()}}
    if a.gather:
        json.dump(out, open(a.out, "w"), indent=1)
    print(json.dumps(out["all_equal"]))
    return out


if __name__ == "__main__":
    main()
