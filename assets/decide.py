"""Does VAS help, and where? The runs of docs/protocol.md: the baseline's tuning sweep, then the reporting runs.

Two phases, each from its own cold start (`python mmr1.py --rl-steps 0 --seed S`, run first if missing):
    tune     uniform sampling at every --rl-lr x --update-epochs of SETTINGS, 3 seeds, dead share 0.9
    report   the arms of ARMS (uniform, posterior VAS as shipped, focusing VAS) at dead shares 0.9 and 0 (the
             default pool), 20 seeds, with the setting the sweep chose; then 5 seeds more at a time, to 40, for
             a share whose primary interval against uniform is still wider than +-4 points (the protocol's rule)
Every run is `python mmr1.py --init-from <cold start>/sft --seed S` plus the protocol's clock (`clock`: 10,240
rollouts, evaluated on 800 held-out items, 200 a family, each 1,280 rollouts) and its setting's or arm's flags, run
in this process, in <workdir>/<phase>/d<share>/<setting or arm>/seed<S>:
    python assets/decide.py tune --cold-seed 7 --workdir runs/decide --lane 0/2   # and --lane 1/2 beside it
    python assets/decide.py report --cold-seed 8 --workdir runs/decide --lane 0/2 # and --lane 1/2 beside it
    python assets/decide.py report --gather      # run nothing: JSON, tables and figure from the finished runs
    python assets/decide.py report --gather --deviation "what, when, why"   # listed in the report, kept
A finished run (its summary.json exists) is skipped; an unfinished one continues from its last checkpoint
(`mmr1.py --resume`, exact), so a killed lane resumes where it stopped. A lane takes every n-th run of the phase's
plan; a lane with nothing left waits for the others before it gathers (and, in the report phase, before it plans
more seeds). Writes to --out (default assets/) tuning.* (tune) or decide.* (report): .json (every run: its
evaluation curve on the rollout clock, per family, all-equal share and dead-drawn share after step 10, wall time,
flags; each arm's endpoints; tune: the chosen setting), .md (the tables), .png (one colour per arm or setting,
fixed by its name).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "assets"))
import endpoints  # noqa: E402
import mmr1  # noqa: E402

SETTINGS = {f"lr{lr}-e{e}": ["--rl-lr", lr, "--update-epochs", e]
            for lr in ("5e-5", "1e-4", "2e-4") for e in ("1", "2", "4")}
ARMS = {"uniform": ["--no-vas"],
        "vas": ["--vas"],  # posterior VAS as shipped: lambda 0.5, drawn in proportion to the posterior's VPS
        # focusing VAS, lambda 1, with the prior and decay of docs/protocol.md's amendment 1
        "vas-select": ["--vas", "--vas-select", "--mixture-ratio", "1.0", "--vas-prior", "0.02",
                       "--vas-decay", "0.99"]}
# one colour per arm and per setting, by name: the same in every panel whatever the panel holds
COLOURS = {"uniform": "tab:blue", "vas": "tab:orange", "vas-select": "tab:green",
           **{name: f"C{i}" for i, name in enumerate(SETTINGS)}}
FAMILIES = ("colour", "biggest", "shape", "count")
NAME = {"tune": "tuning", "report": "decide"}  # the files a phase writes: <name>.json, .md, .png
CURVE = {0.9: "biggest", 0.0: "all"}  # the primary endpoint's curve per dead share: the live family, or overall
PROTOCOL = dict(budget=10240, eval_rollouts=1280, num_test=800, last_k=4, target=0.8, target_family="biggest",
                after_step=10, margin=4.0, seeds=20, add_seeds=5, max_seeds=40, tune_seeds=3, tune_share=0.9)


def clock(p: dict) -> list[str]:
    """The flags that put every run on the protocol's clock and evaluation."""
    return ["--rl-steps", "100000", "--rollout-budget", str(p["budget"]), "--eval-rollouts", str(p["eval_rollouts"]),
            "--num-test", str(p["num_test"]), "--save-every", "10"]  # a killed run loses at most 10 steps


def run_one(argv: list[str], out: str) -> None:
    """One mmr1 run in this process: skipped when finished, continued from its checkpoint when begun."""
    if not os.path.exists(os.path.join(out, "summary.json")):
        begun = os.path.exists(os.path.join(out, "args.json"))
        mmr1.main([*argv, "--out", out, *(["--resume", out] if begun else [])])


def read_run(out: str, after: int = PROTOCOL["after_step"]) -> dict:
    """A finished run's record: the evaluations (the cold start's at 0 rollouts, then each one RL made) on the
    rollout clock, overall and per family; the means over steps `after` on of the all-equal share and (on a dead
    pool) of the drawn prompts dead by construction; the flags; the run's seconds."""
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    rl = [r for r in rows if r["stage"] == "rl"]
    evals = [dict(r, **{"rollouts/total": 0}) for r in rows if r["stage"] == "sft_done"][-1:]
    evals += [r for r in rl if "eval/accuracy" in r]
    late = [r for r in rl if r["step"] >= after]
    mean = lambda key, rs: float(np.mean([r[key] for r in rs])) if rs and key in rs[0] else None  # noqa: E731
    summary, args = (json.load(open(os.path.join(out, name))) for name in ("summary.json", "args.json"))
    return {"rollouts": [r["rollouts/total"] for r in evals],
            "accuracy": {"all": [r["eval/accuracy"] for r in evals],
                         **{f: [r[f"eval/accuracy_{f}"] for r in evals] for f in FAMILIES}},
            "steps": len(rl), "all_equal": mean("reward/zero_std_frac", late),
            "all_equal_all_steps": mean("reward/zero_std_frac", rl), "dead_drawn": mean("vas/dead_drawn", late),
            "scoring_rollouts": args["num_scoring"] * args["num_rl"] * sum("vas/refresh_s" in r for r in rl),
            "wall_s": summary["time/total_s"], "rl_s": summary["time/rl_s"],
            "flags": {k: args[k] for k in ("seed", "dead_share", "rl_lr", "update_epochs", "vas", "vas_select",
                                           "mixture_ratio", "vas_decay", "num_scoring") if k in args}}


def plan(phase: str, a, finished) -> list[tuple[float, str, int, list[str]]]:
    """The phase's runs as (share, setting or arm, seed, flags), seed-major so that a stopped phase is balanced.
    Report: the protocol's seeds, then blocks of more for a share whose widest interval against uniform is above
    the margin, once every run planned for that share has finished (`finished(share, arm, seed)` -> record)."""
    p = a.protocol
    if phase == "tune":
        return [(s, name, seed, SETTINGS[name]) for seed in range(p["tune_seeds"]) for s in a.shares
                for name in a.settings]
    runs, n, first = [], {s: p["seeds"] for s in a.shares}, p.get("first_seed", 0)  # a replication: other seeds
    setting = SETTINGS[a.setting] if a.setting else []
    while True:
        runs = [(s, arm, seed, [*setting, *ARMS[arm]]) for seed in range(first, first + max(n.values()))
                for s in a.shares if seed - first < n[s] for arm in a.arms]
        grow = [s for s in a.shares if n[s] < p["max_seeds"] and widest(s, a, finished, n[s]) > p["margin"]]
        if not grow:
            return runs
        for s in grow:
            n[s] += p["add_seeds"]


def widest(share: float, a, finished, n: int) -> float:
    """The widest half-width, over arms, of the primary endpoint's interval against uniform at this share with
    the first n seeds; 0 while any of those runs is unfinished (no decision on part of a block)."""
    first = a.protocol.get("first_seed", 0)
    records = {arm: [finished(share, arm, seed) for seed in range(first, first + n)] for arm in a.arms}
    if any(r is None for rs in records.values() for r in rs) or "uniform" not in records:
        return 0.0
    got = endpoints.compare(records, CURVE[share], a.protocol["budget"], a.protocol["last_k"], a.protocol["target"])
    return max([v["primary_vs_base"]["half"] for v in got.values() if "primary_vs_base" in v], default=0.0)


def run_dir(a, phase: str, share: float, name: str, seed: int) -> str:
    return os.path.join(a.workdir, phase, f"d{share:g}", name, f"seed{seed}")


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # flags for every run (tests: a tiny model)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("phase", choices=("tune", "report"))
    p.add_argument("--cold-seed", type=int, help="the cold start's seed (tune: 7, report: 8), run first if missing")
    p.add_argument("--init-from", default="", help="a cold start's sft/ directory instead of --cold-seed")
    p.add_argument("--workdir", default=os.path.join(ROOT, "runs", "decide"))
    p.add_argument("--out", default=os.path.join(ROOT, "assets"), help="where tuning.* or decide.* go")
    p.add_argument("--lane", default="0/1", help="i/n: run every n-th run of the plan, from the i-th")
    p.add_argument("--shares", type=float, nargs="+", help="dead shares (tune: 0.9; report: 0.9 0)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS), help="tune: the grid")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), help="report: the arms")
    p.add_argument("--setting", default=None, help="report: the shared setting; default: tuning.json's choice")
    p.add_argument("--protocol", default="{}", help="JSON overriding PROTOCOL's values (tests: a tiny clock)")
    p.add_argument("--gather", action="store_true", help="run nothing: gather the finished runs")
    p.add_argument("--deviation", action="append", default=[],
                   help="a departure from the protocol and its reason, kept in the JSON for the report (repeatable)")
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    a.protocol = {**PROTOCOL, **json.loads(a.protocol)}
    a.shares = a.shares or ([a.protocol["tune_share"]] if a.phase == "tune" else [0.9, 0.0])
    if a.phase == "report" and a.setting is None:
        tuning = os.path.join(a.out, "tuning.json")
        a.setting = json.load(open(tuning))["chosen"] if os.path.exists(tuning) else ""
        if a.setting is None:
            p.error(f"{tuning}: the tuning sweep has not finished, so no setting is chosen; finish it "
                    "(decide.py tune) or name one with --setting")
    lane, lanes = map(int, a.lane.split("/"))
    cold = a.init_from
    made = os.path.join(a.workdir, f"cold-{a.cold_seed}", "sft")
    if not cold and a.gather and a.cold_seed is not None and os.path.isdir(made):
        cold = made  # the gather names the cold start its runs came from
    if not cold and not a.gather:
        if a.cold_seed is None:
            p.error("--cold-seed S or --init-from DIR: the cold start every run of the phase starts from")
        cold_dir = os.path.join(a.workdir, f"cold-{a.cold_seed}")
        if lane == 0:  # one lane makes it, the others wait for it
            run_one([*extra, "--rl-steps", "0", "--seed", str(a.cold_seed)], cold_dir)
        while not os.path.exists(os.path.join(cold_dir, "summary.json")):
            time.sleep(30)
        cold = os.path.join(cold_dir, "sft")

    records = committed(a, cold)

    def finished(share, name, seed):  # the run's record once it has finished, else None
        out = run_dir(a, a.phase, share, name, seed)
        if out not in records and os.path.exists(os.path.join(out, "summary.json")):
            records[out] = read_run(out, a.protocol["after_step"])
        return records.get(out)

    t0 = time.time()
    while not a.gather:
        runs = plan(a.phase, a, finished)
        todo = [(i, r) for i, r in enumerate(runs) if i % lanes == lane and finished(*r[:3]) is None]
        if todo:
            i, (share, name, seed, flags) = todo[0]
            out = run_dir(a, a.phase, share, name, seed)
            print(f"[{time.time() - t0:7.0f} s] run {i + 1} of {len(runs)}: d = {share:g}, {name}, seed {seed}",
                  flush=True)
            run_one([*clock(a.protocol), *extra, "--dead-share", str(share), "--init-from", cold, "--seed", str(seed),
                     *flags], out)
        elif all(finished(*r[:3]) for r in runs):
            break
        else:  # the other lanes' runs: wait, then plan again (a report share may need more seeds)
            time.sleep(30)
    return gather(a, argv, cold, finished)


def cold_start(cold: str) -> dict:
    """What identifies a cold start: its held-out accuracies after SFT (overall and per family)."""
    summary = os.path.join(os.path.dirname(cold), "summary.json")
    if not os.path.exists(summary):
        return {}
    return {k: v for k, v in json.load(open(summary)).items() if "accuracy_after_sft" in k}


def committed(a, cold: str) -> dict:
    """The runs of the committed tuning.json / decide.json by directory: a later session whose run directories
    are gone keeps them instead of running them again, if its cold start and protocol are theirs."""
    path = os.path.join(a.out, NAME[a.phase] + ".json")
    saved = json.load(open(path)) if os.path.exists(path) else {"runs": {}}
    a.cold_start = cold_start(cold) if cold else saved.get("cold_start", {})  # --gather alone: as committed
    a.checkpoint = saved.get("checkpoint", "")
    if saved.get("protocol", a.protocol) != a.protocol:  # another clock or evaluation: not these runs
        saved = {"runs": {}}
    kept = saved.get("deviations", [])
    a.deviations = kept + [d for d in a.deviation if d not in kept]
    if saved.get("cold_start") and a.cold_start and saved["cold_start"] != a.cold_start:
        raise SystemExit(f"{path} holds runs from another cold start ({saved['cold_start']}), not {cold}'s "
                         f"({cold_start(cold)}): use that one, or another --out")
    return {run_dir(a, a.phase, float(share), name, int(seed)): record for share, by in saved["runs"].items()
            for name, seeds in by.items() for seed, record in seeds.items()}


def gather(a, argv: list[str], cold: str, finished) -> dict:
    """tuning.json, .md and .png (tune) or decide.json, .md and .png (report) from the phase's finished runs."""
    results = {}
    for share, name, seed, _ in plan(a.phase, a, finished):
        record = finished(share, name, seed)
        if record is not None:
            results.setdefault(f"{share:g}", {}).setdefault(name, {})[seed] = record
    p = a.protocol
    summary = {share: endpoints.compare({n: list(s.values()) for n, s in by.items()}, CURVE[float(share)],
                                        p["budget"], p["last_k"], p["target"],
                                        base="uniform" if a.phase == "report" else a.settings[0])
               for share, by in results.items()}
    shown = [x for i, x in enumerate(argv) if "--deviation" not in (x, argv[i - 1] if i else "")]  # kept apart
    out = {"command": ("python assets/decide.py " + shlex.join(shown)).strip(), "checkpoint": cold or a.checkpoint,
           "cold_start": a.cold_start, "protocol": p, "protocol_commit": protocol_commit(),
           "setting": a.setting if a.phase == "report" else None, "deviations": a.deviations, "summary": summary,
           "runs": results}
    if a.phase == "tune":  # only once the whole grid has finished: a part of the sweep chooses nothing
        out["chosen"] = choose(summary, p) if all(finished(*r[:3]) for r in plan(a.phase, a, finished)) else None
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, NAME[a.phase])
    json.dump(out, open(path + ".json", "w"), indent=1)
    open(path + ".md", "w").write("\n".join(tables(out)) + "\n")
    if results:
        fig = plot(results, p)
        fig.savefig(path + ".png", dpi=100)
        plt.close(fig)
    print("\n".join(tables(out)))
    return out


def protocol_commit() -> str:
    """The commit of docs/protocol.md the runs ran under (this checkout's last change to it), or "" outside git."""
    git = subprocess.run(["git", "log", "-1", "--format=%h", "--", "docs/protocol.md"], cwd=ROOT,
                         capture_output=True, text=True)
    return git.stdout.strip() if git.returncode == 0 else ""


def choose(summary: dict, p: dict, default: str = "lr5e-5-e1") -> str | None:
    """The tuning rule (docs/protocol.md): at the tuning share, the settings within half the margin of the highest
    mean primary endpoint count as tied (3 seeds cannot separate them) and the cheapest of them is taken: fewest
    update epochs, then the smallest learning rate; after them the rest, best first. Where the default pool was
    swept too, a setting more than the margin below the default setting there is passed over."""
    tune, pool = summary.get(f"{p['tune_share']:g}", {}), summary.get("0", {})
    if not tune:
        return None
    best = max(v["primary"] for v in tune.values())
    near = sorted((n for n in tune if tune[n]["primary"] >= best - p["margin"] / 2),
                  key=lambda n: (int(SETTINGS[n][3]), float(SETTINGS[n][1])))
    rest = sorted((n for n in tune if n not in near), key=lambda n: -tune[n]["primary"])
    floor = pool[default]["primary"] - p["margin"] if default in pool else -np.inf
    return next((n for n in near + rest if n not in pool or pool[n]["primary"] >= floor), None)


def tables(out: dict) -> list[str]:
    """Markdown: per share, each arm's (or setting's) endpoints and its difference to the base."""
    p, lines = out["protocol"], [f"Regenerate: `{out['command']}`", ""]
    if "chosen" in out:
        lines += [f"Chosen setting: {out['chosen']} (`{' '.join(SETTINGS[out['chosen']])}`)" if out["chosen"]
                  else f"Chosen setting: none (the rule needs every run of the grid at d = {p['tune_share']:g})", ""]
    lines += [f"| dead share | arm | seeds | primary: last {p['last_k']} evaluations (95%) | vs base (95% Welch) "
              f"| rank test p | area | vs base | rollouts to {100 * p['target']:.0f}% {p['target_family']} "
              f"(restricted mean; reached) | all-equal after step {p['after_step']} | dead drawn | run s |",
              "|" + " --- |" * 12]
    for share, by in out["summary"].items():
        for name, s in by.items():
            runs = list(out["runs"][share][name].values())
            vs = {k: "{diff:+.1f} [{low:+.1f}, {high:+.1f}]".format(**s[f"{k}_vs_base"]) if f"{k}_vs_base" in s
                  else "" for k in ("primary", "area")}
            rank = f"{s['primary_vs_base']['rank']['p']:.3f}" if "primary_vs_base" in s else ""
            lines.append(f"| {share} | {name} | {s['seeds']} | {s['primary']:.1f} ± {s['primary_half']:.1f} "
                         f"| {vs['primary']} | {rank} | {s['area']:.1f} | {vs['area']} "
                         f"| {s['to_target']:,.0f} ± {s['to_target_se']:,.0f}; {s['reached']:.2f} "
                         f"| {mean_of(runs, 'all_equal')} | {mean_of(runs, 'dead_drawn')} "
                         f"| {np.mean([r['wall_s'] for r in runs]):.0f} |")
    return lines


def mean_of(runs: list[dict], key: str) -> str:
    """The mean over runs of a value some runs may lack (None: no step after step 10, no dead pool), or "-"."""
    values = [r[key] for r in runs if r[key] is not None]
    return f"{np.mean(values):.2f}" if values else "-"


def plot(results: dict, p: dict):
    """Per share, a column: the primary curve (mean over seeds, band min-max) against rollouts, then the
    all-families curve. Each arm (setting) one colour, by name, in every panel; every arm in the legend; each
    panel's title gives its own seeds per arm."""
    shares = list(results)
    fig, axes = plt.subplots(2, len(shares), figsize=(5.5 * len(shares), 8), squeeze=False)
    for col, share in enumerate(shares):
        primary = CURVE[float(share)]
        for row, curve in enumerate((primary, "all") if primary != "all" else ("all", "biggest")):
            ax = axes[row, col]
            for name, seeds in results[share].items():
                runs = list(seeds.values())
                grid = np.linspace(0, min(r["rollouts"][-1] for r in runs), 200)
                ys = 100 * np.array([np.interp(grid, r["rollouts"], r["accuracy"][curve]) for r in runs])
                ax.plot(grid, ys.mean(0), color=COLOURS[name], label=name)
                ax.fill_between(grid, ys.min(0), ys.max(0), color=COLOURS[name], alpha=0.12)
            counts = ", ".join(f"{name} {len(s)}" for name, s in results[share].items())
            ax.set(title=f"dead share {share}: {'all families' if curve == 'all' else curve}\nseeds: {counts}",
                   xlabel="rollouts generated", ylabel="held-out accuracy (%)")
            ax.grid(alpha=0.3)
    names = list(dict.fromkeys(n for by in results.values() for n in by))  # every arm of any panel
    handles = [plt.Line2D([], [], color=COLOURS[n], label=n) for n in names]
    fig.legend(handles=handles, loc="lower center", ncol=len(names))
    fig.suptitle(f"Held-out accuracy against rollouts ({p['num_test']} items, every {p['eval_rollouts']:,}): "
                 "mean over seeds, band = min-max")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


if __name__ == "__main__":
    main()
