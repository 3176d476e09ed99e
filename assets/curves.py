"""curves.png of a run, from its metrics.jsonl alone: what to watch, against the step (finished or still running).

    python assets/curves.py runs/<time>          # writes runs/<time>/curves.png

Panels: SFT cross-entropy; held-out accuracy (greedy) overall and per family, after SFT (RL step 0) and at each
RL evaluation; the RL reward and its parts; the all-equal group share; KL to the reference; gradient norm; clip
fraction; completion length. The keys are the README's ("Outputs and metrics").
"""
import json
import math
import os
import sys


def plot_curves(out: str) -> str:
    """curves.png beside a run's metrics.jsonl: what to watch in a run, against the step. Returns its path."""
    from matplotlib.figure import Figure  # no pyplot: no window, no backend to choose, nothing to close
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    evals = [dict(r, step=r.get("step", -1) + 1) for r in rows if "eval/accuracy" in r]  # after SFT: step 0
    families = [k for k in (evals or [{}])[0] if k.startswith("eval/accuracy")]
    panels = {"SFT: cross-entropy": ("sft", ["sft/loss"]), "held-out accuracy (greedy)": ("eval", families),
              "reward (format + accuracy)": ("rl", ["reward/mean", "reward/accuracy", "reward/format"]),
              **{key: ("rl", [key]) for key in ("reward/zero_std_frac", "train/kl", "train/grad_norm",
                                                "train/clip_frac", "reward/completion_len")}}
    fig = Figure(figsize=(18, 7))
    for ax, (title, (stage, keys)) in zip(fig.subplots(2, 4).flat, panels.items()):
        points = evals if stage == "eval" else [r for r in rows if r["stage"] == stage]
        for key in keys:
            ax.plot([r["step"] for r in points], [r.get(key, math.nan) for r in points],
                    marker="o" if stage == "eval" else None, label=key.split("/")[1].replace("accuracy_", ""))
        ax.set(title=title, xlabel=("SFT" if stage == "sft" else "RL") + " step")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path := os.path.join(out, "curves.png"), dpi=90)
    return path


if __name__ == "__main__":
    for run in sys.argv[1:] or sys.exit(__doc__):
        print(f"wrote {plot_curves(run)}")
