"""Variance-Aware Sampling against uniform sampling, at toy scale: the paper's Fig. 2 and Tables 3/4.

From one cold-start checkpoint, GRPO runs once per arm and seed with the same steps, prompts per step and
rollouts, and two update epochs per batch (so the ratio leaves 1 and the clip can act):
    uniform          prompts from an epoch-long shuffle (the paper's baseline)
    vas-0.5          VAS, lambda = 0.5: full re-scoring every T_update steps plus online updates (default)
    vas-1.0          VAS, lambda = 1.0: every prompt drawn by VPS
    vas-0.5-online   scored once at step 0, then only online updates from training rollouts (cheap)
    vas-0.5-rescore  full re-scoring every T_update steps only (the paper's schedule)
The paper claims VAS raises the gradient norm (fewer all-equal groups, whose advantages are 0), raises
the clip fraction, and converges faster to a higher accuracy, and that lambda = 0.5 keeps most of it.

    python assets/compare_vas.py      # 3 seeds x 5 arms x 40 RL steps: about 1.5 h on 2 idle CPU cores
    python assets/compare_vas.py --init-from runs/X/sft --seeds 0 1 2 -- --refresh-every 10
Flags after `--` go to every `mmr1.py` run (cold start included). Runs land in --workdir, one directory
per arm and seed; a finished run (its summary.json exists) is skipped, so an interrupted comparison
resumes (after changing flags, use a fresh --workdir). Writes to --out: vas_compare.png (curves: mean
over seeds, min-max band), vas_compare.md (the table, the command and its wall time) and
vas_compare.json (every per-seed number and curve).
VAS overhead = seconds of full pool re-scoring / RL wall seconds (RL wall time includes the periodic
held-out evaluation; the online update is inside the step time and not counted as overhead).
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
import mmr1  # noqa: E402

ARMS = {"uniform": ["--no-vas"],
        "vas-0.5": ["--vas", "--mixture-ratio", "0.5", "--vas-online"],
        "vas-1.0": ["--vas", "--mixture-ratio", "1.0", "--vas-online"],
        "vas-0.5-online": ["--vas", "--mixture-ratio", "0.5", "--vas-online", "--refresh-every", "0"],
        "vas-0.5-rescore": ["--vas", "--mixture-ratio", "0.5", "--no-vas-online"]}
COMMON = ["--update-epochs", "2", "--eval-every", "10"]  # flags after `--` may override these
SMOOTH = 5  # trailing moving mean over this many steps for the per-step training curves


def run_arm(argv: list[str], out: str) -> dict:
    """One mmr1 run in this process, skipped when already finished. metrics.jsonl is appended to,
    so an unfinished run is removed and restarted rather than continued."""
    if not os.path.exists(os.path.join(out, "summary.json")):
        shutil.rmtree(out, ignore_errors=True)
        mmr1.main([*argv, "--out", out])
    return json.load(open(os.path.join(out, "summary.json")))


def read_run(out: str) -> dict:
    """Per-step curves of one run, and the numbers of the table."""
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    rl = [r for r in rows if r["stage"] == "rl"]
    start = [r for r in rows if r["stage"] == "sft_done"][-1]["eval/accuracy"]  # held-out acc at step 0
    evals = [(0, start)] + [(r["step"] + 1, r["eval/accuracy"]) for r in rl if "eval/accuracy" in r]
    summary = json.load(open(os.path.join(out, "summary.json")))
    curve = {k: [r[k] for r in rl] for k in ("reward/accuracy", "reward/zero_std_frac", "train/grad_norm",
                                              "train/clip_frac", "vas/refresh_s_total")}
    vas_s, rl_s = curve["vas/refresh_s_total"][-1], summary["time/rl_s"]
    return {"final_accuracy": summary["eval/accuracy_after_rl"], "grad_norm": float(np.mean(curve["train/grad_norm"])),
            "clip_frac": float(np.mean(curve["train/clip_frac"])),
            "zero_std_frac": float(np.mean(curve["reward/zero_std_frac"])),
            "vas_s": vas_s, "rl_s": rl_s, "overhead_pct": 100 * vas_s / rl_s, "total_s": summary["time/total_s"],
            "eval_steps": [s for s, _ in evals], "eval_accuracy": [a for _, a in evals], "curves": curve}


def smooth(x: list[float]) -> np.ndarray:
    return np.array([np.mean(x[max(0, i - SMOOTH + 1):i + 1]) for i in range(len(x))])


def plot(results: dict, path: str) -> None:
    panels = [("held-out accuracy (greedy)", None), ("reward/accuracy", "training accuracy of rollouts"),
              ("reward/zero_std_frac", "zero-variance group fraction"), ("train/grad_norm", "gradient norm"),
              ("train/clip_frac", "clip fraction (2nd epoch)"),
              ("vas/refresh_s_total", "VAS scoring seconds, cumulative")]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (key, title) in zip(axes.flat, panels):
        for i, (arm, seeds) in enumerate(results.items()):
            runs = list(seeds.values())
            if key.startswith("held-out"):
                steps, ys = runs[0]["eval_steps"], np.array([r["eval_accuracy"] for r in runs])
            else:
                ys = np.array([r["curves"][key] if key.startswith("vas/") else smooth(r["curves"][key]) for r in runs])
                steps = np.arange(ys.shape[1])  # step k: rollouts and gradient of the policy after k updates
            colour = f"C{i}"
            ax.plot(steps, ys.mean(0), color=colour, label=arm, marker="o" if key.startswith("held") else None)
            ax.fill_between(steps, ys.min(0), ys.max(0), color=colour, alpha=0.15)  # min-max over seeds
        smoothed = "" if key.startswith(("held", "vas/")) else f" (moving mean of {SMOOTH})"
        ax.set(title=(title or key) + smoothed, xlabel="RL step")
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    n_seeds = len(next(iter(results.values())))
    fig.suptitle(f"GRPO with uniform sampling vs VAS: mean over {n_seeds} seeds, band = min-max")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# Student's t, 97.5% quantile, by degrees of freedom (1..10; beyond 10 the normal's 1.96 is within 0.27)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def difference(acc: np.ndarray, base: np.ndarray) -> str:
    """mean(acc) - mean(base) with a 95% Welch t interval (different seeds, unequal variances), in points."""
    if len(acc) < 2 or len(base) < 2:
        return "-"
    va, vb = acc.var(ddof=1) / len(acc), base.var(ddof=1) / len(base)
    df = (va + vb) ** 2 / (va ** 2 / (len(acc) - 1) + vb ** 2 / (len(base) - 1)) if va + vb > 0 else 1e9
    half = (T975[int(df) - 1] if df < 11 else 1.96) * np.sqrt(va + vb)
    d = acc.mean() - base.mean()
    return f"{d:+.1f} [{d - half:+.1f}, {d + half:+.1f}]"


def table(results: dict, sft_accuracy: float, command: str, wall_s: float, compute_s: float) -> str:
    lines = [f"Held-out accuracy of the shared SFT checkpoint: {100 * sft_accuracy:.1f}%. Means over RL steps "
             "for grad norm, clip fraction and zero-variance fraction; std over seeds with n - 1.", "",
             "| arm | held-out acc after RL | per seed | vs uniform, 95% interval | grad norm | clip frac "
             "| zero-var frac | VAS scoring s | VAS overhead | RL wall s |", "|" + " --- |" * 10]
    final = {arm: np.array([100 * r["final_accuracy"] for r in seeds.values()]) for arm, seeds in results.items()}
    for arm, seeds in results.items():
        acc = final[arm]
        versus = difference(acc, final["uniform"]) if "uniform" in final and arm != "uniform" else "-"
        mean = {k: np.mean([r[k] for r in seeds.values()]) for k in next(iter(seeds.values())) if k not in
                ("eval_steps", "eval_accuracy", "curves")}
        std = acc.std(ddof=1) if len(acc) > 1 else 0.0
        lines.append(f"| {arm} | {acc.mean():.1f} ± {std:.1f}% | {', '.join(f'{a:.1f}' for a in acc)} | {versus} "
                     f"| {mean['grad_norm']:.3f} | {mean['clip_frac']:.4f} | {mean['zero_std_frac']:.3f} "
                     f"| {mean['vas_s']:.1f} | {mean['overhead_pct']:.1f}% | {mean['rl_s']:.0f} |")
    lines += ["", f"Regenerate: `{command}`", "",
              f"Wall time of this invocation: {wall_s / 60:.1f} min (finished runs are skipped); "
              f"all runs' own wall time, cold start included: {compute_s / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init-from", default="", help="SFT checkpoint; default: run the cold start once first")
    p.add_argument("--out", default=os.path.join(ROOT, "assets"), help="where the figure and tables go")
    p.add_argument("--workdir", default=os.path.join(ROOT, "runs", "compare_vas"), help="one run per arm and seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rl-steps", type=int, default=40)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    ckpt, compute_s = a.init_from, 0.0
    if not ckpt:  # the cold start, once, shared by every arm and seed
        print("cold start ...", flush=True)
        compute_s += run_arm([*extra, "--rl-steps", "0"], os.path.join(a.workdir, "sft"))["time/total_s"]
        ckpt = os.path.join(a.workdir, "sft", "sft")
    results = {arm: {} for arm in a.arms}
    for arm in a.arms:
        for seed in a.seeds:
            out = os.path.join(a.workdir, f"{arm}-{seed}")
            print(f"[{time.time() - t0:6.0f} s] {arm}, seed {seed} -> {out}", flush=True)
            # flags after `--` override COMMON; the arm's own flags come last and win
            run_arm([*COMMON, "--rl-steps", str(a.rl_steps), *extra, "--init-from", ckpt, "--seed", str(seed),
                     *ARMS[arm]], out)
            results[arm][seed] = read_run(out)
            compute_s += results[arm][seed]["total_s"]
    first = next(iter(results[a.arms[0]].values()))
    command = "python assets/compare_vas.py " + " ".join(argv)
    plot(results, os.path.join(a.out, "vas_compare.png"))
    md = table(results, first["eval_accuracy"][0], command.strip(), time.time() - t0, compute_s)
    open(os.path.join(a.out, "vas_compare.md"), "w").write(md)
    json.dump({"command": command.strip(), "checkpoint": ckpt, "results": results},
              open(os.path.join(a.out, "vas_compare.json"), "w"), indent=1)
    print("\n" + md + f"\nwrote {a.out}/vas_compare.png, vas_compare.md, vas_compare.json")
    return results


if __name__ == "__main__":
    main()
