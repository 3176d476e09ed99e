"""The ablation ladder (docs/experiments.md): one change a row against the default RL, from one cold start.

Every row is `python mmr1.py --init-from <cold start> --seed S` plus the row's flags (the default RL: 60 steps of
16 prompts x 8 rollouts, evaluated on the 450 held-out items every 20 steps). For each run the held-out accuracy
(overall and per family) at every evaluation with the rollouts generated so far, and the means over its steps of
the all-equal share, the clip fraction, the KL to the reference and the completion length.

    python assets/ladder.py --init-from runs/cold-1/sft --workdir runs/ladder   # run what is missing, then gather
    python assets/ladder.py --plot                    # redraw assets/ladder.png from assets/ladder.json alone
A finished run (its summary.json exists) is skipped, so an interrupted ladder resumes and several processes may
share it (--rows / --seeds split the work; the last call, over everything, gathers). Writes assets/ladder.json
(every run, a row's means) and assets/ladder.png; prints the tables of docs/experiments.md.
"""
import argparse
import json
import os
import sys
import time

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
from compare_vas import difference, run_arm  # noqa: E402

ROWS = {"uniform": [],  # the default RL (--no-vas)
        "vas-paper": ["--vas", "--no-vas-online", "--num-scoring", "8"],  # the paper's VAS: N = 8 at steps 0 and 30
        "vas": ["--vas"],  # posterior VAS: no scoring rollouts, the posterior fed by training groups
        "dr-grpo": ["--no-scale-std"],
        "no-kl": ["--kl-coef", "0"],
        "seq-mean": ["--seq-mean"],
        "epochs-4": ["--update-epochs", "4"],
        "dynamic-sampling": ["--filter-groups", "4"],
        "dead-0.9": ["--dead-share", "0.9"],
        "dead-0.9-vas": ["--dead-share", "0.9", "--vas"]}
BASE = {"dead-0.9-vas": "dead-0.9"}  # the row each is compared with; every other: uniform
FAMILIES = ["colour", "biggest", "shape", "count"]
TRAIN = {"zero_std": "reward/zero_std_frac", "clip_frac": "train/clip_frac", "kl": "train/kl",
         "length": "reward/completion_len"}


def read_run(out: str) -> dict:
    """One run: its evaluations (step, rollouts, accuracy overall and per family) and its training means."""
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    rl = [r for r in rows if r["stage"] == "rl"]
    evals = [dict(r, step=0, **{"rollouts/total": 0}) for r in rows if r["stage"] == "sft_done"][-1:]
    evals += [dict(r, step=r["step"] + 1) for r in rl if "eval/accuracy" in r]
    return {"evals": [{"step": r["step"], "rollouts": r["rollouts/total"], "accuracy": r["eval/accuracy"],
                       **{f: r[f"eval/accuracy_{f}"] for f in FAMILIES}} for r in evals],
            **{k: float(np.mean([r[key] for r in rl if key in r])) for k, key in TRAIN.items()},
            "rollouts": rl[-1]["rollouts/total"],
            "total_s": json.load(open(os.path.join(out, "summary.json")))["time/total_s"]}


def row_stats(runs: list[dict]) -> dict:
    """A row's final values over its seeds: mean and sample standard deviation, percentages in points."""
    final = {k: [100 * r["evals"][-1][k] for r in runs] for k in ["accuracy", *FAMILIES]}
    final.update({k: [r[k] for r in runs] for k in [*TRAIN, "rollouts"]})
    final["zero_std"] = [100 * x for x in final["zero_std"]]
    return {k: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "seeds": v}
            for k, v in final.items()}


def versus(ladder: dict, row: str, key: str) -> list[float]:
    """The row's mean minus its base row's, with a 95% Welch interval over seeds."""
    a, b = (np.array(ladder["rows"][r]["final"][key]["seeds"]) for r in (row, BASE.get(row, "uniform")))
    return [round(x, 1) for x in difference(a, b)]


def tables(ladder: dict) -> list[str]:
    """The tables of docs/experiments.md, every number from `ladder`."""
    fmt = lambda s, d=1: f"{s['mean']:.{d}f} ± {s['sd']:.{d}f}"  # noqa: E731
    lines = ["| row | held-out | vs base (95%) | colour | biggest | shape | count |", "|" + " --- |" * 7]
    for row, r in ladder["rows"].items():
        diff = "" if row == "uniform" else "{:+.1f} [{:+.1f}, {:+.1f}]".format(*r["vs_base"]["accuracy"])
        lines.append(f"| {row} | {fmt(r['final']['accuracy'])} | {diff} | "
                     + " | ".join(fmt(r["final"][f]) for f in FAMILIES) + " |")
    lines += ["", "| row | rollouts | all-equal groups % | clip fraction | KL | completion tokens | flags |",
              "|" + " --- |" * 7]
    for row, r in ladder["rows"].items():
        f = r["final"]
        lines.append(f"| {row} | {f['rollouts']['mean']:,.0f} | {fmt(f['zero_std'])} | {fmt(f['clip_frac'], 4)} "
                     f"| {fmt(f['kl'], 4)} | {fmt(f['length'])} | `{' '.join(r['flags']) or '(none)'}` |")
    return lines


def plot(ladder: dict, path: str) -> None:
    """Final held-out accuracy per row (overall and the live family, a dot per seed) and the all-equal share."""
    rows = list(ladder["rows"])
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), sharey=True)
    for ax, key, name in zip(axes, ("accuracy", "biggest", "zero_std"),
                             ("held-out accuracy, all families (%)", 'held-out accuracy, "biggest" (%)',
                              "drawn groups whose rewards all agree (%)")):
        for y, row in enumerate(rows):
            s = ladder["rows"][row]["final"][key]
            ax.scatter(s["seeds"], [y] * len(s["seeds"]), color="C0", alpha=0.5, s=18)
            ax.errorbar(s["mean"], y, xerr=s["sd"], fmt="o", color="black", capsize=3)
        if "uniform" in ladder["rows"]:  # the base every row is read against
            ax.axvline(ladder["rows"]["uniform"]["final"][key]["mean"], color="grey", ls=":", lw=1)
        ax.set(xlabel=name)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(range(len(rows)), rows)
    axes[0].invert_yaxis()
    fig.suptitle(f"One change a row from one cold start: mean ± sd over {len(ladder['seeds'])} seeds (dots: seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init-from", default="", help="the cold start's sft/ directory (python mmr1.py --rl-steps 0)")
    p.add_argument("--workdir", default=os.path.join(ROOT, "runs", "ladder"), help="one run per row and seed")
    p.add_argument("--out", default=os.path.join(ROOT, "assets"), help="where ladder.json and ladder.png go")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--plot", action="store_true", help="run nothing: redraw ladder.png from ladder.json")
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    json_path = os.path.join(a.out, "ladder.json")
    if a.plot:
        ladder = json.load(open(json_path))
        plot(ladder, os.path.join(a.out, "ladder.png"))
        return ladder
    if not a.init_from:
        p.error("--init-from: the cold start's sft/ directory, from python mmr1.py --rl-steps 0 --seed 1")
    t0, runs = time.time(), {}
    for row in a.rows:
        for seed in a.seeds:
            out = os.path.join(a.workdir, f"{row}-{seed}")
            print(f"[{time.time() - t0:6.0f} s] {row}, seed {seed} -> {out}", flush=True)
            run_arm([*extra, "--init-from", a.init_from, "--seed", str(seed), *ROWS[row]], out)
            runs.setdefault(row, {})[seed] = read_run(out)
    first = os.path.join(a.workdir, f"{a.rows[0]}-{a.seeds[0]}")
    first_run = runs[a.rows[0]][a.seeds[0]]
    ladder = {"command": ("python assets/ladder.py " + " ".join(argv)).strip(), "checkpoint": a.init_from,
              "seeds": a.seeds, "extra_flags": extra, "runs": sum(map(len, runs.values())),
              "settings": json.load(open(os.path.join(first, "args.json"))),  # the first run's flags
              "cold_start": {k: 100 * v for k, v in first_run["evals"][0].items() if k not in ("step", "rollouts")},
              "one_thread_min": sum(r["total_s"] for seeds in runs.values() for r in seeds.values()) / 60,
              "rows": {row: {"flags": ROWS[row], "runs": seeds, "final": row_stats(list(seeds.values()))}
                       for row, seeds in runs.items()}}
    if "uniform" in runs:
        for row in ladder["rows"]:
            if row != "uniform" and BASE.get(row, "uniform") in runs:
                ladder["rows"][row]["vs_base"] = {k: versus(ladder, row, k) for k in ["accuracy", "biggest", "count"]}
    os.makedirs(a.out, exist_ok=True)
    json.dump(ladder, open(json_path, "w"), indent=1)
    plot(ladder, os.path.join(a.out, "ladder.png"))
    if all(row in ladder["rows"] for row in ROWS):
        print("\n".join(tables(ladder)))
    print(f"\nwrote {json_path} and ladder.png")
    return ladder


if __name__ == "__main__":
    main()
