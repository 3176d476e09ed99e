"""When does Variance-Aware Sampling pay? Uniform sampling, VAS and dynamic sampling at equal compute.

A group whose G rewards all agree has advantage 0: it costs G rollouts and moves nothing. VAS predicts which
prompts will disagree before rolling out (it scores the pool and draws by VPS); dynamic sampling (DAPO) filters
after rolling out (drops the all-equal groups, draws more). Both can only gain where many prompts are dead,
so this script trains on RL pools with a chosen dead share d (`mmr1.py --dead-share d`, data.dead_pool):
    d / 2 of the pool  "colour" prompts: the cold start answers them right (its groups agree: dead)
    d / 2 of the pool  "octagon" prompts: a shape it never saw named, never answered (its groups agree: dead)
    1 - d of the pool  "biggest shape" prompts: sometimes right, the family RL fixes (live)
and share 0 is the default pool of every family. Every run starts from one cold start and is evaluated on the
standard held-out split (all four families). Arms (flags after `--` go to every run; the arm's own flags win):
    uniform       prompts from an epoch-long shuffle (the paper's baseline)
    vas-paper     the paper's VAS at lambda = 1: N = 8 scoring rollouts of every prompt at step 0 and every
                  T_update = 30 steps, no online updates (vas-paper-0.5: the paper's VAS, lambda = 0.5)
    vas-free      posterior VAS at lambda = 1: no scoring rollouts, a decayed Beta posterior per prompt fed by the
                  training groups (vas-free-0.5: posterior VAS, lambda = 0.5)
    filter        dynamic sampling: --filter-groups 4 (up to 4 batches drawn a step to keep B groups that differ)
Every arm runs on one clock: to the same budget of rollouts generated (training, VAS scoring and dropped
groups alike) and evaluated at the first step past each multiple of --eval-rollouts. For each arm the rollouts
needed until held-out accuracy on --target-family first reaches each target, with a 95% interval over seeds,
and each arm against uniform (Welch); accuracy at the budget's end.

    python assets/compare_vas.py --init-from runs/cold/sft      # the README's experiment (see there)
Runs land in --workdir, one directory per share, arm and seed; a finished run (its summary.json exists) is
skipped, so an interrupted comparison resumes and several processes may share the work (--shares / --arms /
--seeds split it; the last call, over everything, gathers). Writes vas_compare.png (a column of panels per share,
one colour per arm in every panel), vas_compare.md (the tables, the command) and vas_compare.json (every run, every
curve) to --out. The figure alone, from the vas_compare.json in --out, without the runs:
    python assets/compare_vas.py --replot
"""
import argparse
import json
import os
import shutil
import sys
import time

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import data  # noqa: E402
import mmr1  # noqa: E402

ARMS = {"uniform": ["--no-vas"],
        "vas-paper": ["--vas", "--no-vas-online", "--num-scoring", "8", "--mixture-ratio", "1.0"],
        "vas-paper-0.5": ["--vas", "--no-vas-online", "--num-scoring", "8", "--mixture-ratio", "0.5"],
        "vas-free": ["--vas", "--num-scoring", "0", "--mixture-ratio", "1.0"],
        "vas-free-0.5": ["--vas", "--num-scoring", "0", "--mixture-ratio", "0.5"],
        "filter": ["--no-vas", "--filter-groups", "4"]}
# one colour per arm, by name: the same in every panel whatever arms the panel holds
COLOURS = {"uniform": "tab:blue", "vas-paper": "tab:orange", "vas-paper-0.5": "tab:purple", "vas-free": "tab:green",
           "vas-free-0.5": "tab:brown", "filter": "tab:red"}
# one clock: every arm to the same rollouts generated, evaluated every 640 (five uniform steps of 16 x 8)
COMMON = ["--rl-steps", "100000", "--rollout-budget", "10240", "--eval-rollouts", "640", "--num-test", "200"]


def run_arm(argv: list[str], out: str) -> dict:
    """One mmr1 run in this process, skipped when already finished. metrics.jsonl is appended to,
    so an unfinished run is removed and restarted rather than continued."""
    if not os.path.exists(os.path.join(out, "summary.json")):
        shutil.rmtree(out, ignore_errors=True)
        mmr1.main([*argv, "--out", out])
    return json.load(open(os.path.join(out, "summary.json")))


def read_run(out: str, family: str) -> dict:
    """Held-out accuracy (overall and of `family`) against rollouts generated, and the run's means."""
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    args, rl = json.load(open(os.path.join(out, "args.json"))), [r for r in rows if r["stage"] == "rl"]
    evals = [dict(r, **{"rollouts/total": 0}) for r in rows if r["stage"] == "sft_done"][-1:]
    evals += [r for r in rl if "eval/accuracy" in r]
    return {"steps": len(rl), "eval_steps": [r.get("step", -1) + 1 for r in evals],
            "rollouts": [r["rollouts/total"] for r in evals],
            "accuracy": [r["eval/accuracy"] for r in evals],
            "target_accuracy": [r[f"eval/accuracy_{family}"] for r in evals],
            "family_accuracy": {k.split("_", 1)[1]: [r[k] for r in evals] for k in evals[0] if "accuracy_" in k},
            "zero_std_frac": float(np.mean([r["reward/zero_std_frac"] for r in rl])),
            "zero_std_start": float(np.mean([r["reward/zero_std_frac"] for r in rl[:5]])),  # the pool as it began
            "dropped_frac": rl[-1]["rollouts/dropped"] / rl[-1]["rollouts/total"],
            "scoring_rollouts": sum("vas/refresh_s" in r for r in rl) * args["num_rl"] * args["num_scoring"],
            "grad_norm": float(np.median([r["train/grad_norm"] for r in rl if "train/grad_norm" in r])),
            "wall_s": rl[-1]["perf/wall_s"]}


def scoring_bill(pool: int, num_scoring: int, refresh_every: int, prompts_per_step: int, group_size: int) -> float:
    """VAS's scoring rollouts over the training rollouts of the same window: pool * N every T_update steps
    against B * G a step. The paper's main text on MMR1-RL's 15k prompts: 15000 * 32 / (512 * 8 * 35) = 3.35;
    its Table 6 (N = 16, T_update = 56): 1.05."""
    return pool * num_scoring / (prompts_per_step * group_size * refresh_every)


def to_target(run: dict, target: float) -> float | None:
    """Rollouts generated when held-out accuracy on the target family first reached `target` (None: never)."""
    return next((n for n, a in zip(run["rollouts"], run["target_accuracy"]) if a >= target - 1e-9), None)


# Student's t, 97.5% quantile, by degrees of freedom (1..10; beyond 10 the normal's 1.96 is within 0.27)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def t975(df: float) -> float:
    return T975[max(1, int(df)) - 1] if df < 11 else 1.96


def mean_interval(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and its 95% t interval over seeds."""
    half = t975(len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.nan
    return x.mean(), x.mean() - half, x.mean() + half


def difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """mean(a) - mean(b) with a 95% Welch t interval (different seeds, unequal variances)."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else 1e9
    d, half = a.mean() - b.mean(), t975(df) * np.sqrt(va + vb)
    return d, d - half, d + half


def on_grid(runs: list[dict], key: str, grid: np.ndarray) -> np.ndarray:
    """Each run's eval curve interpolated at `grid` rollouts (step-wise: the last evaluation so far)."""
    return np.array([[r[key][np.searchsorted(r["rollouts"], x, side="right") - 1] for x in grid] for r in runs])


def seeds_per_arm(arms: dict) -> str:
    """A panel's seeds: '5 seeds per arm', or each arm's count where they differ."""
    counts = {arm: len(seeds) for arm, seeds in arms.items()}
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} seeds per arm"
    return "seeds: " + ", ".join(f"{arm} {n}" for arm, n in counts.items())


def plot(results: dict, family: str, target: float | list[float]):
    """Per dead share, a column: held-out accuracy on `family`, then on all families, against rollouts generated
    (mean over seeds, band min-max). Each arm one colour, fixed by its name (COLOURS), in every panel, whatever arms
    the panel holds; every arm of any panel in the figure's one legend; each panel's title gives its own seeds."""
    shares = list(results)
    fig, axes = plt.subplots(2, len(shares), figsize=(5.5 * len(shares), 8), squeeze=False)
    for col, share in enumerate(shares):
        for row, (key, name) in enumerate((("target_accuracy", f"held-out accuracy, {family}"),
                                           ("accuracy", "held-out accuracy, all families"))):
            ax = axes[row, col]
            for arm, seeds in results[share].items():
                runs = list(seeds.values())
                grid = np.linspace(0, min(r["rollouts"][-1] for r in runs), 200)
                ys = 100 * on_grid(runs, key, grid)
                ax.plot(grid, ys.mean(0), color=COLOURS[arm], label=arm)
                ax.fill_between(grid, ys.min(0), ys.max(0), color=COLOURS[arm], alpha=0.12)  # min-max over seeds
            for t in ([target] if isinstance(target, float) else target) if row == 0 else []:
                ax.axhline(100 * t, color="grey", ls=":", lw=1)
            ax.set(title=f"dead share {share}: {name}\n{seeds_per_arm(results[share])}",
                   xlabel="rollouts generated (training + scoring + dropped)", ylabel="%")
            ax.grid(alpha=0.3)
    names = [arm for arm in COLOURS if any(arm in arms for arms in results.values())]  # every arm of any panel
    fig.legend(handles=[plt.Line2D([], [], color=COLOURS[n], label=n) for n in names], loc="lower center",
               ncol=len(names))
    fig.suptitle("Uniform vs VAS vs dynamic sampling at equal rollouts: mean over seeds, band = min-max")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def save(fig, path: str) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(results: dict, family: str, targets: float | list[float]) -> list[str]:
    """Markdown: for each target, the rollouts each arm needed to reach it and the difference to uniform; then
    each arm's run statistics. A run that never reached a target counts, in the difference only, at the rollouts
    it had generated by its end: where only uniform's runs fall short, the difference is then a bound ("<="),
    the true saving being larger."""
    lines = []
    for target in [targets] if isinstance(targets, float) else targets:
        lines += [f"Rollouts generated until held-out {family} accuracy first reached {100 * target:.0f}%:", "",
                  "| dead share | arm | rollouts (95% interval) | reached | vs uniform (95% Welch) |",
                  "|" + " --- |" * 5]
        for share, arms in results.items():
            base = [to_target(r, target) for r in arms.get("uniform", {}).values()]
            base_at = np.array([x if x is not None else r["rollouts"][-1]
                                for x, r in zip(base, arms.get("uniform", {}).values())], float)
            for arm, seeds in arms.items():
                hits = [to_target(r, target) for r in seeds.values()]
                got = np.array([x for x in hits if x is not None], float)
                cost = "-" if not len(got) else f"{got.mean():,.0f}" if len(got) == 1 else \
                    "{:,.0f} [{:,.0f}, {:,.0f}]".format(*mean_interval(got))
                versus = "-"
                if arm != "uniform" and len(base) > 1 and None not in hits and len(hits) > 1:
                    d, lo, hi = difference(got, base_at)
                    versus = ("<= " if None in base else "") + f"{d:+,.0f} [{lo:+,.0f}, {hi:+,.0f}]"
                lines.append(f"| {share} | {arm} | {cost} | {len(got)}/{len(hits)} | {versus} |")
        lines.append("")
    lines += [f"Held-out accuracy at equal rollouts: each share's smallest final rollout count over its runs "
              "(the last evaluation before it):", "",
              f"| dead share | rollouts | arm | {family} | vs uniform (95% Welch) | overall | vs uniform |",
              "|" + " --- |" * 7]
    for share, arms in results.items():
        budget = min(r["rollouts"][-1] for seeds in arms.values() for r in seeds.values())
        at = {arm: {k: 100 * on_grid(list(seeds.values()), k, np.array([budget]))[:, 0]
                    for k in ("target_accuracy", "accuracy")} for arm, seeds in arms.items()}
        for arm, acc in at.items():
            versus = {k: "{:+.1f} [{:+.1f}, {:+.1f}]".format(*difference(v, at["uniform"][k]))
                      if "uniform" in at and arm != "uniform" and len(v) > 1 else "-" for k, v in acc.items()}
            lines.append(f"| {share} | {budget:,} | {arm} | {acc['target_accuracy'].mean():.1f}% "
                         f"| {versus['target_accuracy']} | {acc['accuracy'].mean():.1f}% | {versus['accuracy']} |")
    lines += ["", "| dead share | arm | final " + family + " | final overall | all-equal groups, steps 1-5 / all "
              "| dropped | scoring rollouts | rollouts in all | median grad norm |", "|" + " --- |" * 9]
    for share, arms in results.items():
        for arm, seeds in arms.items():
            runs = list(seeds.values())
            mean = lambda k: np.mean([r[k] for r in runs])  # noqa: E731
            final = lambda k: 100 * np.mean([r[k][-1] for r in runs])  # noqa: E731
            lines.append(f"| {share} | {arm} | {final('target_accuracy'):.1f}% | {final('accuracy'):.1f}% "
                         f"| {mean('zero_std_start'):.2f} / {mean('zero_std_frac'):.2f} "
                         f"| {100 * mean('dropped_frac'):.0f}% | {mean('scoring_rollouts'):,.0f} "
                         f"| {np.mean([r['rollouts'][-1] for r in runs]):,.0f} | {mean('grad_norm'):.3f} |")
    return lines


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init-from", default="", help="SFT checkpoint; default: run the cold start once first")
    p.add_argument("--out", default=os.path.join(ROOT, "assets"), help="where the figure and tables go")
    p.add_argument("--workdir", default=os.path.join(ROOT, "runs", "compare_vas"), help="one run per arm and seed")
    p.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.25, 0.75, 0.9],
                   help="dead shares d of the pool; 0: the default pool, every family")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--gather", action="store_true", help="run nothing: tables and figure from the finished runs")
    p.add_argument("--replot", action="store_true",
                   help="run and read no run: redraw vas_compare.png from the vas_compare.json in --out")
    p.add_argument("--target-family", default=data.LIVE, help="the family whose held-out accuracy sets the target")
    p.add_argument("--targets", type=float, nargs="+", default=[0.7, 0.8, 0.9],
                   help="held-out accuracies to reach on --target-family (the notebook shows the middle one)")
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    if a.replot:  # the figure from the committed JSON alone: its runs need not be on this machine
        saved = json.load(open(os.path.join(a.out, "vas_compare.json")))
        save(plot(saved["results"], saved["target_family"], saved["targets"]), os.path.join(a.out, "vas_compare.png"))
        print(f"wrote {a.out}/vas_compare.png from {a.out}/vas_compare.json")
        return saved["results"]
    ckpt = a.init_from
    if not ckpt:  # the cold start, once, shared by every share, arm and seed
        print("cold start ...", flush=True)
        run_arm([*extra, "--rl-steps", "0"], os.path.join(a.workdir, "sft"))
        ckpt = os.path.join(a.workdir, "sft", "sft")
    results = {}
    for share in a.shares:
        results[share] = {arm: {} for arm in a.arms}
        for arm in a.arms:
            for seed in a.seeds:
                out = os.path.join(a.workdir, f"d{share}", f"{arm}-{seed}")
                if a.gather and not os.path.exists(os.path.join(out, "summary.json")):
                    continue  # this share runs this arm with other seeds, or not at all
                print(f"[{time.time() - t0:6.0f} s] dead share {share}, {arm}, seed {seed} -> {out}", flush=True)
                run_arm([*COMMON, *extra, "--dead-share", str(share), "--init-from", ckpt, "--seed", str(seed),
                         *ARMS[arm]], out)
                results[share][arm][seed] = read_run(out, a.target_family)
        results[share] = {arm: seeds for arm, seeds in results[share].items() if seeds}
    command = ("python assets/compare_vas.py " + " ".join(argv)).strip()
    save(plot(results, a.target_family, a.targets), os.path.join(a.out, "vas_compare.png"))
    md = "\n".join(table(results, a.target_family, a.targets) + ["", f"Regenerate: `{command}`"]) + "\n"
    open(os.path.join(a.out, "vas_compare.md"), "w").write(md)
    json.dump({"command": command, "checkpoint": ckpt, "target_family": a.target_family, "targets": a.targets,
               "target": a.targets[len(a.targets) // 2], "results": results}, open(os.path.join(a.out, "vas_compare.json"), "w"), indent=1)
    print("\n" + md + f"\nwrote {a.out}/vas_compare.png, vas_compare.md, vas_compare.json")
    return results


if __name__ == "__main__":
    main()
