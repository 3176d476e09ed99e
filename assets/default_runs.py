"""The default run on seeds 0 to 5, uniform beside posterior VAS: the runs README's "What to expect" quotes.

Each run is the quick start's command at mmr1.py's defaults, from scratch (SFT, then RL), in this process:
    uniform         python mmr1.py --no-vas --seed S
    posterior VAS   python mmr1.py --vas --seed S
in <workdir>/<arm>/seed<S> (arms `uniform` and `vas`). Two lanes on two cores, one thread each, then the JSON:
    OMP_NUM_THREADS=1 python assets/default_runs.py --workdir runs/default --lane 0/2   # and beside it:
    OMP_NUM_THREADS=1 python assets/default_runs.py --workdir runs/default --lane 1/2
    python assets/default_runs.py --workdir runs/default --gather   # run nothing: the JSON from the finished runs
Cost, an estimate: about 9 minutes a run on one CPU thread (README's one measurement: 542 to 545 s, seed 5, two
runs side by side on two cores), so 12 runs in two lanes take about an hour; more with other jobs on the cores.
The plan is seed-major (seed 0 uniform, seed 0 VAS, seed 1 uniform, ...) and a lane takes every n-th run of it,
so with two lanes a seed's two runs run side by side. A finished run (its summary.json exists) is skipped; an
unfinished one continues from its last checkpoint (`mmr1.py --resume`, exact), so a killed lane resumes where it
stopped. A lane with nothing left waits for the others, then gathers. A finished run made with other flags than
the plan's (e.g. before a default changed) stops the tool: use another --workdir.
Flags after `--` go to every run (tests: a tiny model). Writes --out (default assets/default_runs.json): the
command, the code's commit (`git rev-parse --short HEAD` at the gather; each run also keeps the commit it began
under), the settings that matter (the runs' own flags), and per arm and seed: held-out accuracy after SFT and
after RL (overall and "biggest", fractions), the evaluation curve, the all-equal share over the RL steps, and the
run's seconds (summary.json's; `resumed`: the seconds are of its last process only). assets/evidence.py computes
README's "What to expect" from it.
"""
import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "assets"))
import decide  # noqa: E402
import mmr1  # noqa: E402

ARMS = {"uniform": ["--no-vas"], "vas": ["--vas"]}  # uniform, posterior VAS (lambda 0.5): README's two commands
SEEDS = list(range(6))
OUT = os.path.join(ROOT, "assets", "default_runs.json")
# the flags that make the default run what it is, recorded with the runs
SETTINGS = ("sft_steps", "sft_batch", "sft_lr", "num_sft", "rl_steps", "prompts_per_step", "group_size", "rl_lr",
            "update_epochs", "kl_coef", "temperature", "max_new_tokens", "num_rl", "num_test", "eval_every",
            "mixture_ratio", "vas_decay", "vas_prior", "image_size", "teacher_error", "data_seed", "dead_share",
            "freeze_vision", "model", "dtype")
CODE = ("mmr1.py", "vas.py", "data.py")
NOT_COMPARED = ("out", "resume", "save_every", "device", "fsdp")  # flags that do not change a run's numbers
POLL_S = 30  # a lane with nothing left checks the others this often


def run_argv(arm: str, seed: int, extra: list[str]) -> list[str]:
    return [*ARMS[arm], "--seed", str(seed), *extra]


def run_dir(workdir: str, arm: str, seed: int) -> str:
    return os.path.join(workdir, arm, f"seed{seed}")


def plan(seeds: list[int]) -> list[tuple[str, int]]:
    """(arm, seed), seed-major: with two lanes, each seed's two runs run side by side."""
    return [(arm, seed) for seed in seeds for arm in ARMS]


def git(*argv: str) -> str:
    got = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
    return got.stdout.strip() if got.returncode == 0 else ""


def code_state() -> dict:
    """The checkout's commit, and the code files that differ from it."""
    changed = git("status", "--porcelain", "--", *CODE)
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "code_changed": sorted(line[3:] for line in changed.splitlines())}


def check_flags(out: str, argv: list[str]) -> None:
    """A run already there was made with the plan's flags, else stop (its numbers are another setting's)."""
    path = os.path.join(out, "args.json")
    if not os.path.exists(path):
        return
    saved, now = json.load(open(path)), dataclasses.asdict(mmr1.parse_args(argv))
    diff = [f"--{k.replace('_', '-')} {saved.get(k)!r} there, {now[k]!r} now" for k in now
            if k not in NOT_COMPARED and saved.get(k) != now[k]]
    if diff:
        raise SystemExit(f"{out} was run with other flags ({', '.join(diff)}): use another --workdir")


def start(out: str, argv: list[str]) -> None:
    """Run (or continue) one run, first noting in starts.jsonl the code it starts under and whether it resumes."""
    os.makedirs(out, exist_ok=True)
    stamp = {**code_state(), "resume": os.path.exists(os.path.join(out, "args.json")),
             "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    with open(os.path.join(out, "starts.jsonl"), "a") as f:
        f.write(json.dumps(stamp) + "\n")
    decide.run_one(argv, out)


def record(out: str) -> dict:
    """A finished run: accuracy after SFT and after RL (overall and "biggest"), the curve, the all-equal share over
    every RL step, its seconds, the commit it began under."""
    run = decide.read_run(out, after=0)  # after=0: the all-equal share over every RL step
    acc = run["accuracy"]
    path = os.path.join(out, "starts.jsonl")
    starts = [json.loads(line) for line in open(path)] if os.path.exists(path) else []
    summary = json.load(open(os.path.join(out, "summary.json")))
    return {"sft": {"all": acc["all"][0], "biggest": acc["biggest"][0]},
            "rl": {"all": acc["all"][-1], "biggest": acc["biggest"][-1]},
            "all_equal": run["all_equal"], "steps": run["steps"],
            "wall_s": run["wall_s"], "sft_s": summary.get("time/sft_s"), "rl_s": run["rl_s"],
            "resumed": any(s["resume"] for s in starts),
            "commit": starts[0]["commit"] if starts else None,
            "code_changed": sorted({f for s in starts for f in s["code_changed"]}),
            "curve": {"rollouts": run["rollouts"], **acc}}


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # flags for every run (tests: a tiny model)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default=os.path.join(ROOT, "runs", "default"))
    p.add_argument("--out", default=OUT, help="the JSON to write")
    p.add_argument("--lane", default="0/1", help="i/n: run every n-th run of the plan, from the i-th")
    p.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    p.add_argument("--gather", action="store_true", help="run nothing: gather the finished runs")
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    lane, lanes = map(int, a.lane.split("/"))
    if not 0 <= lane < lanes:
        p.error(f"--lane {a.lane}: i/n with 0 <= i < n")
    runs = plan(a.seeds)
    for arm, seed in runs:  # before anything runs: no run of another setting is kept as one of these
        check_flags(run_dir(a.workdir, arm, seed), run_argv(arm, seed, extra))
    finished = lambda arm, seed: os.path.exists(os.path.join(run_dir(a.workdir, arm, seed), "summary.json"))  # noqa
    t0 = time.time()
    while not a.gather:
        todo = [(i, r) for i, r in enumerate(runs) if i % lanes == lane and not finished(*r)]
        if todo:
            i, (arm, seed) = todo[0]
            print(f"[{time.time() - t0:7.0f} s] run {i + 1} of {len(runs)}: {arm}, seed {seed}", flush=True)
            start(run_dir(a.workdir, arm, seed), run_argv(arm, seed, extra))
        elif all(finished(*r) for r in runs):
            break
        else:  # the other lanes' runs
            time.sleep(POLL_S)
    return gather(a, argv, extra, runs, finished)


def gather(a, argv: list[str], extra: list[str], runs: list[tuple[str, int]], finished) -> dict:
    results = {arm: {} for arm in ARMS}
    for arm, seed in runs:
        if finished(arm, seed):
            results[arm][str(seed)] = record(run_dir(a.workdir, arm, seed))
    settings = dataclasses.asdict(mmr1.parse_args(extra))
    out = {"command": ("python assets/default_runs.py " + " ".join(argv)).strip(),
           "runs_command": {arm: " ".join(["python mmr1.py", *run_argv(arm, "S", extra)]) for arm in ARMS},
           **code_state(), "settings": {k: settings[k] for k in SETTINGS}, "extra": extra, "seeds": a.seeds,
           "planned": len(runs), "finished": sum(len(by) for by in results.values()), "runs": results}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = f"{a.out}.{os.getpid()}.tmp"  # lanes may gather at once: each replaces the file whole
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, a.out)
    print(f"wrote {a.out}: {out['finished']} of {out['planned']} runs finished")
    return out


if __name__ == "__main__":
    main()
