"""The sentences and tables with which README.md's first screen and docs/when-vas-pays.md report the evidence,
computed from the committed files, so that no number there drifts from its source.

Sources:
    assets/decide.json        the decisive comparison of docs/protocol.md (assets/decide.py), once its runs are in:
                              then docs/when-vas-pays.md gains its section and README's answer comes from it
    assets/tuning.json        the baseline's tuning sweep (assets/decide.py tune); assets/tuning-d0/tuning.json, the
                              chosen setting beside the default on the default pool, measured after the choice
    assets/draws.json         where each VAS arm of assets/decide.json spent its groups, by family (assets/draws.py)
    assets/oracle.json        the all-equal share of a pool of only live prompts, from decide.json's cold start
                              (assets/oracle.py): beside focusing VAS's own checks
    assets/replicate/decide.json  docs/replication.md's runs (the same runner, a second cold start): once they and
                              assets/decide.json's are all in, that page's results block comes from it
    assets/vas_compare.json   the dead-share comparison (assets/compare_vas.py): every run, every curve
    assets/ladder.json        the ablation ladder (assets/ladder.py, docs/experiments.md)
    assets/default_runs.json  the default run on six seeds, uniform beside posterior VAS (assets/default_runs.py),
                              once measured; until then docs/toy-task.md's per-seed table, their only record
    mmr1.py, compare_vas.py   the settings the text names: the flags' defaults, the comparison's arms and clock
Each block sits in its page between `<!-- evidence: NAME -->` and `<!-- /evidence -->`:

    python assets/evidence.py            # print every block
    python assets/evidence.py --write    # rewrite the blocks in README.md, docs/when-vas-pays.md, replication.md
    python assets/evidence.py --check    # exit 1 when a page's block is not what its source gives

tests/test_evidence.py checks every block, and that every other number on those pages is a setting the code
names. A difference with a 95% interval is worded by what the interval decides: "ahead" or "behind" only when it
excludes 0, "not separable at n seeds" when it holds 0. The comparison's section of docs/when-vas-pays.md comes
from `comparison_blocks` alone, so a later experiment can replace it without touching the rest.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "assets"))
import compare_vas  # noqa: E402
import decide  # noqa: E402
import endpoints  # noqa: E402
import mmr1  # noqa: E402
import sim_posterior  # noqa: E402

README, PAGE = os.path.join(ROOT, "README.md"), os.path.join(ROOT, "docs", "when-vas-pays.md")
COMPARISON, LADDER = os.path.join(ROOT, "assets", "vas_compare.json"), os.path.join(ROOT, "assets", "ladder.json")
TOY_TASK = os.path.join(ROOT, "docs", "toy-task.md")
DEFAULT_RUNS = os.path.join(ROOT, "assets", "default_runs.json")  # the default runs' record, once measured
DECIDE, TUNING = os.path.join(ROOT, "assets", "decide.json"), os.path.join(ROOT, "assets", "tuning.json")
TUNING_POOL = os.path.join(ROOT, "assets", "tuning-d0", "tuning.json")  # two settings on the default pool, after
REPLICATE = os.path.join(ROOT, "assets", "replicate", "decide.json")  # docs/replication.md's runs, once gathered
REPLICATION = os.path.join(ROOT, "docs", "replication.md")
ORACLE = os.path.join(ROOT, "assets", "oracle.json")  # all-equal groups of a live-only pool (assets/oracle.py)
DRAWS = os.path.join(ROOT, "assets", "draws.json")  # where each VAS arm's groups went, by family (assets/draws.py)
DEFAULTS = mmr1.Args()
WIDTH = 115  # the pages' line length

# The paper's VAS settings (MMR1, Sec. 4 and Appendix Table 6; the released mmr1.yaml) and the toy run's, for
# its scoring bill: name, N, T_update, B, pool
BILLS = [("the paper's main text", 32, mmr1.PAPER_SETTINGS["refresh_every"], 512, 15_000),
         ("the paper's Appendix Table 6", 16, 56, 512, 15_000),
         ("the released config", 8, 4, 512, 15_000),
         ("the presets (`--model Qwen2.5-VL-3B` or `7B`), at the paper's main N and T_update", 32,
          mmr1.PAPER_SETTINGS["refresh_every"], DEFAULTS.prompts_per_step, 15_000),
         ("the toy run (`--vas --no-vas-online --num-scoring 8`)", 8, DEFAULTS.refresh_every,
          DEFAULTS.prompts_per_step, DEFAULTS.num_rl)]
RELEASED_POOL = 10_000  # the released config's own pool


# ----------------------------------------------------------------------------------------------------
# Words for numbers


def num(x: float, digits: int = 1) -> str:
    """x rounded, thousands separated, with a true minus sign; -0 printed as 0."""
    return f"{round(x, digits) + 0.0:,.{digits}f}".replace("-", "−")


def signed(x: float, digits: int = 1) -> str:
    return ("+" if round(x, digits) >= 0 else "") + num(x, digits)


def interval(lo: float, hi: float, digits: int = 1) -> str:
    return f"[{signed(lo, digits)}, {signed(hi, digits)}]"


def decided(diff: tuple[float, float, float], seeds: str, unit: str = "points", up: str = "ahead",
            down: str = "behind", digits: int = 1) -> str:
    """A difference with its 95% interval, worded by what the interval decides: 'behind by' only below 0,
    'ahead by' only above, otherwise 'not separable at n seeds'."""
    d, lo, hi = diff
    if lo > 0:
        return f"{num(d, digits)} {unit} {up} {interval(lo, hi, digits)}".replace("  ", " ")
    if hi < 0:
        return f"{num(-d, digits)} {unit} {down} {interval(lo, hi, digits)}".replace("  ", " ")
    return f"{signed(d, digits)} {unit} {interval(lo, hi, digits)}, not separable at {seeds} seeds".replace("  ", " ")


def cell(diff: tuple[float, float, float], digits: int = 1) -> str:
    """A difference and its interval, as a table writes it: +2,560 [+670, +4,450]."""
    return f"{signed(diff[0], digits)} {interval(diff[1], diff[2], digits)}"


def separable(diff: tuple[float, float, float]) -> bool:
    return diff[1] > 0 or diff[2] < 0


def share(d: str) -> str:
    """A dead share as the pages write it: 0, 0.25, 0.75, 0.9."""
    return f"{float(d):g}"


def listed(words: list[str], last: str = "and") -> str:
    return ", ".join(words[:-1]) + f" {last} " + words[-1] if len(words) > 1 else "".join(words)


def fill(text: str, first: str = "", rest: str = "") -> str:
    """One paragraph wrapped at the pages' width, a code span never split and no line read by markdown as the start
    of a list or a heading."""
    text = re.sub(r"`[^`]*`", lambda m: m[0].replace(" ", "\0"), text)
    for width in range(WIDTH, WIDTH - 20, -1):
        lines = textwrap.wrap(text, width, initial_indent=first, subsequent_indent=rest, break_long_words=False,
                              break_on_hyphens=False)
        if not any(re.match(r"\s*([-+*#>]|\d+[.)])\s", line) for line in lines[1:]):
            break
    return "\n".join(lines).replace("\0", " ")


# ----------------------------------------------------------------------------------------------------
# The names of the samplers


def flag_value(flags: list[str], name: str, default):
    return type(default)(flags[flags.index(name) + 1]) if name in flags else default


def name_of(flags: list[str]) -> str:
    """The one name a sampler goes by, from its flags; a VAS always with its lambda."""
    if "--filter-groups" in flags:
        return "dynamic sampling"
    if "--vas" not in flags:
        return "uniform"
    kind = "the paper's VAS" if "--no-vas-online" in flags else \
        "focusing VAS" if "--vas-select" in flags else "posterior VAS"
    return f"{kind} at λ = {flag_value(flags, '--mixture-ratio', DEFAULTS.mixture_ratio):g}"


def arm_name(arm: str) -> str:
    return name_of(compare_vas.ARMS[arm])


def is_vas(arm: str) -> bool:
    return "--vas" in compare_vas.ARMS[arm]


def clock() -> dict:
    """The comparison's clock: rollouts a run generates, an evaluation each, held-out items."""
    common = compare_vas.COMMON
    return {k: int(common[common.index(f"--{k}") + 1]) for k in ("rollout-budget", "eval-rollouts", "num-test")}


# ----------------------------------------------------------------------------------------------------
# The comparison (assets/vas_compare.json)


def accuracy_at(runs: list[dict], key: str, rollouts: int) -> np.ndarray:
    """100 x each run's held-out accuracy (`key`: accuracy, target_accuracy or a family) at `rollouts` generated:
    its last evaluation so far."""
    curves = [r["family_accuracy"][key] if key in r["family_accuracy"] else r[key] for r in runs]
    return np.array([100 * c[np.searchsorted(r["rollouts"], rollouts, side="right") - 1]
                     for c, r in zip(curves, runs)])


def scoring_paid(run: dict, rollouts: int) -> int:
    """Scoring rollouts a run had paid by the evaluation at `rollouts` (no group dropped: training is B x G a step)."""
    i = run["rollouts"].index(rollouts)
    return rollouts - run["eval_steps"][i] * DEFAULTS.prompts_per_step * DEFAULTS.group_size


def comparison() -> dict:
    """Per dead share and arm: the runs, their accuracy at the budget's end, all-equal shares, rollouts to the
    target, and each against uniform (difference of means with a 95% Welch interval)."""
    data = json.load(open(COMPARISON))
    budget, target = clock()["rollout-budget"], data["target"]
    out = {"target": target, "family": data["target_family"], "checkpoint": data["checkpoint"], "shares": {}}
    for d, arms in data["results"].items():
        stats = {}
        for arm, seeds in arms.items():
            runs = list(seeds.values())
            hits = [compare_vas.to_target(r, target) for r in runs]
            s = {"runs": runs, "seeds": len(runs), "hits": hits,
                 "final": {k: accuracy_at(runs, k, budget) for k in ("target_accuracy", "accuracy", "count", "shape")},
                 "zero": np.array([r["zero_std_frac"] for r in runs]),
                 "zero_start": np.array([r["zero_std_start"] for r in runs]),  # steps 1-5
                 "zero_later": np.array([(r["zero_std_frac"] * r["steps"] - 5 * r["zero_std_start"]) / (r["steps"] - 5)
                                         for r in runs]),  # steps 6 to the end
                 "scoring": np.mean([r["scoring_rollouts"] for r in runs]),
                 "dropped": np.mean([r["dropped_frac"] for r in runs])}
            stats[arm] = s
        uniform = stats["uniform"]
        # rollouts to the target: a uniform run that never got there counts at its end (the difference is a bound)
        base = np.array([h if h is not None else r["rollouts"][-1] for h, r in zip(uniform["hits"], uniform["runs"])],
                        float)
        for arm, s in stats.items():
            if arm == "uniform":
                continue
            s["vs"] = {k: compare_vas.difference(v, uniform["final"][k]) for k, v in s["final"].items()}
            s["vs"]["zero"] = compare_vas.difference(s["zero"], uniform["zero"])
            got = [h for h in s["hits"] if h is not None]
            s["vs_target"] = compare_vas.difference(np.array(got, float), base) \
                if len(got) == len(s["hits"]) > 1 else None
            s["bound"] = None in uniform["hits"]
        out["shares"][d] = stats
    return out


def seeds_of(c: dict, d: str, arm: str) -> str:
    n, m = c["shares"][d][arm]["seeds"], c["shares"][d]["uniform"]["seeds"]
    return str(n) if n == m else f"{n} and {m}"


def figure_caption(c: dict, short: bool = False) -> str:
    """The figure's one legend names every arm by its JSON key, one colour an arm in every panel: say which sampler
    each key is."""
    arms = [a for a in compare_vas.ARMS if any(a in by for by in c["shares"].values())]
    by_seeds = {}
    for d, by in c["shares"].items():
        by_seeds.setdefault(by["uniform"]["seeds"], []).append(f"d = {share(d)}")
    if short:
        return (f"Mean over {listed(sorted(map(str, by_seeds)), 'or')} seeds, band min to max; "
                + ", ".join(f"`{a}`: {arm_name(a)}" for a in arms if arm_name(a) != a) + ".")
    seeds = ", ".join(f"{n} at {listed(ds)}" for n, ds in by_seeds.items())
    return (f"Held-out accuracy against rollouts generated, one column of panels per dead share d: the mean over the "
            f"seeds ({seeds}; each panel's title gives its own), the band from the lowest seed to the highest. In the "
            f"legend " + ", ".join(f"`{a}` is {arm_name(a)}" for a in arms if arm_name(a) != a) + ".")


def readme_answer(c: dict) -> str:
    """README: what the comparison decides, in one short paragraph, then its figure."""
    shares, fam, pct = list(c["shares"]), c["family"], f"{100 * c['target']:.0f}%"
    top, default, few = shares[-1], shares[0], shares[1]  # many dead, the default pool, few dead
    seeds = listed([str(n) for n in sorted({s["seeds"] for arms in c["shares"].values() for s in arms.values()})])
    vas_arms = [a for a in c["shares"][top] if is_vas(a) and a in c["shares"][default]]
    at = lambda d, a: c["shares"][d][a]  # noqa: E731
    diffs = {(a, d): at(d, a)["vs"]["target_accuracy"] for a in vas_arms for d in (top, default)}
    if any(map(separable, diffs.values())):  # a decided difference: each worded on its own
        lead = "**Does it pay?**"
        said = "; ".join(f"{arm_name(a)}: " + " and ".join(decided(diffs[a, d], seeds_of(c, d, a))
                                                          for d in (top, default)) for a in vas_arms)
    else:  # none decided: the intervals, then what they decide, once
        lead = "**Does it pay?** Not separably at the seeds run so far."
        said = "; ".join(f"{arm_name(a)}: " + " and ".join(cell(diffs[a, d]) for d in (top, default))
                         for a in vas_arms) + f": none separable at {seeds} seeds"
    zero = ", ".join(f"{arm_name(a)}: " + decided(at(top, a)["vs"]["zero"], seeds_of(c, top, a), "", "more", "fewer", 2)
                     for a in vas_arms)
    text = (f"{lead} From one cold start, each sampler but focusing VAS ran to "
            f"{num(clock()['rollout-budget'], 0)} rollouts (scoring rollouts count; compared at the last evaluation by "
            f"then) on pools of {DEFAULTS.num_rl} prompts with a dead share d, {seeds} seeds an arm "
            f"(`assets/vas_compare.json`, 95% t intervals, a little wide). Held-out \"{fam}\" (the toy question RL learns) at the "
            f"end, against uniform in points, at d = {share(top)} and d = {share(default)} (the default pool): {said}. "
            f"All-equal groups drawn at d = {share(top)}, as a share: {zero}")
    for a in vas_arms:  # rollouts to the target where few prompts are dead, where an interval decides
        v = at(few, a)["vs_target"]
        if v is not None and separable(v):
            needs = decided(v, seeds_of(c, few, a), "rollouts", "more", "fewer", 0)
            text += f"; at d = {share(few)} {arm_name(a)} needs {needs} to first reach {pct} \"{fam}\""
    for a in (a for a in c["shares"][top] if arm_name(a) == "dynamic sampling"):
        text += f"; dynamic sampling ends {decided(at(top, a)['vs']['target_accuracy'], seeds_of(c, top, a))} at " \
                f"d = {share(top)}"
    return fill(text + ".") + "\n\n![held-out accuracy against rollouts by dead share](assets/vas_compare.png)\n" + \
        fill(figure_caption(c, short=True))


# ----------------------------------------------------------------------------------------------------
# The default run on six seeds (docs/toy-task.md) and the ladder (assets/ladder.json)


def default_run() -> dict:
    """The default run on six seeds: per seed, held-out and "biggest" accuracy after SFT, after RL under uniform
    and under posterior VAS (percent), and the held-out difference; the one clean timing of a seed's two runs; the
    commit whose code made them. From assets/default_runs.json (assets/default_runs.py) when it exists, else from
    docs/toy-task.md's table (accuracies as printed, the difference as printed from the unrounded accuracies)."""
    if os.path.exists(DEFAULT_RUNS):
        return default_run_json(json.load(open(DEFAULT_RUNS)))
    text = open(TOY_TASK, encoding="utf-8").read()
    section = text[text.index("## The default run on six seeds"):]
    rows = re.findall(r"^\| (\d+) \| ([\d.]+)% \(([\d.]+)%\) \| ([\d.]+)% \(([\d.]+)%\) \| ([\d.]+)% \(([\d.]+)%\) "
                      r"\| ([+−-][\d.]+) \|", section.split("\n## ")[0], re.M)
    cols = np.array([[float(x.replace("−", "-")) for x in row] for row in rows])
    time = re.search(r"([\d,]+)\s+to\s+([\d,]+)\s+s\s+for\s+seed\s+(\d+)", section)
    commit = re.search(r"the code of commit ([0-9a-f]{7,})", section)[1]
    return {"seed": cols[:, 0].astype(int), "sft": cols[:, 1], "sft_big": cols[:, 2], "uniform": cols[:, 3],
            "uniform_big": cols[:, 4], "vas": cols[:, 5], "vas_big": cols[:, 6], "diff": cols[:, 7],
            "time": (int(time[1]), int(time[2]), int(time[3])), "commit": commit}


def default_run_json(data: dict) -> dict:
    """default_run's record from assets/default_runs.json: the seeds both arms finished, accuracies in percent
    unrounded (after SFT: the uniform run's; a seed's two runs share their SFT), the difference from them; the
    timing: the seed whose two runs, neither resumed, have the smallest slower time (the cleanest measurement,
    two runs side by side); the commit the JSON names."""
    uniform, vas = data["runs"]["uniform"], data["runs"]["vas"]
    seeds = sorted((s for s in uniform if s in vas), key=int)
    if not seeds:
        raise SystemExit(f"{DEFAULT_RUNS}: no seed has finished in both arms (assets/default_runs.py)")
    pct = lambda runs, stage, curve: 100 * np.array([runs[s][stage][curve] for s in seeds])  # noqa: E731
    clean = [s for s in seeds if not uniform[s]["resumed"] and not vas[s]["resumed"]] or seeds
    timed = min(clean, key=lambda s: max(uniform[s]["wall_s"], vas[s]["wall_s"]))
    walls = sorted(run[timed]["wall_s"] for run in (uniform, vas))
    r = {"seed": np.array([int(s) for s in seeds]), "sft": pct(uniform, "sft", "all"),
         "sft_big": pct(uniform, "sft", "biggest"), "uniform": pct(uniform, "rl", "all"),
         "uniform_big": pct(uniform, "rl", "biggest"), "vas": pct(vas, "rl", "all"),
         "vas_big": pct(vas, "rl", "biggest"), "time": (round(walls[0]), round(walls[1]), int(timed)),
         "commit": data["commit"], "settings": data["settings"]}
    return {**r, "diff": r["vas"] - r["uniform"]}


def readme_first_run(r: dict) -> str:
    """README: what the two commands of the quick start take and give, seed 0 first, then six seeds."""
    lo, hi, timed = r["time"]
    i = int(np.flatnonzero(r["seed"] == 0)[0])
    d0 = r["diff"][i]
    verdict = f"posterior VAS ends {num(abs(d0))} points {'behind' if d0 < 0 else 'ahead of'} uniform on this seed" \
        if round(d0, 1) else "the two end level on this seed"
    n = len(r["seed"])
    sd = lambda x: f"{num(x.mean())} ± {num(x.std(ddof=1))}%"  # noqa: E731
    pair = lambda x: decided(compare_vas.mean_interval(x), str(n)).replace("points ", "")  # noqa: E731
    top = int(np.argmax(r["diff"]))
    text = (f"**What to expect.** Each run above: {DEFAULTS.sft_steps} SFT steps of {DEFAULTS.sft_batch} examples, "
            f"{DEFAULTS.rl_steps} GRPO steps of {DEFAULTS.prompts_per_step} prompts × {DEFAULTS.group_size} rollouts, "
            f"{DEFAULTS.num_test} held-out items; about {round((lo + hi) / 2 / 60)} minutes on one CPU thread (one "
            f"measurement: {lo} to {hi} s, seed {timed}, two runs side by side on two cores). On seed 0, the first a "
            f"student runs, expect {num(r['sft'][i])}% held-out after SFT, then {num(r['uniform'][i])}% under uniform "
            f"and {num(r['vas'][i])}% under posterior VAS: {verdict}. Seeds {r['seed'].min()} to {r['seed'].max()} "
            f"([docs/toy-task.md](docs/toy-task.md); mean ± sd, the difference paired by seed, 95% t interval):")
    table = ["| held-out accuracy | after SFT | uniform | posterior VAS | posterior VAS − uniform |",
             "| --- | --- | --- | --- | --- |",
             f"| all families | {sd(r['sft'])} | {sd(r['uniform'])} | {sd(r['vas'])} | {pair(r['diff'])} |",
             f"| \"biggest\" | {sd(r['sft_big'])} | {sd(r['uniform_big'])} | {sd(r['vas_big'])} "
             f"| {pair(r['vas_big'] - r['uniform_big'])} |"]
    rest = np.delete(r["diff"], top)
    carries = "carries most of the mean difference" if r["diff"][top] > r["diff"].sum() / 2 else "is the largest"
    after = (f"Seed {r['seed'][top]}'s {signed(r['diff'][top])} {carries}; the other "
             f"{len(rest)} average {signed(rest.mean())}. Code of commit {r['commit']}; another machine or commit can "
             f"give another cold start for a seed: compare bands, not digits.")
    return fill(text) + "\n\n" + "\n".join(table) + "\n\n" + fill(after)


def ladder_sentence() -> str:
    """README: the ladder's rows whose held-out difference to their base has an interval that excludes 0."""
    lad = json.load(open(LADDER))
    rows = {k: r for k, r in lad["rows"].items() if "vs_base" in r and separable(r["vs_base"]["accuracy"])}
    same = lambda r: r["final"]["rollouts"]["mean"] == lad["rows"]["uniform"]["final"]["rollouts"]["mean"]  # noqa
    passes = lambda r: ", each used for more optimiser passes" if "--update-epochs" in r["flags"] else ""  # noqa
    said = [f"{k} (`{' '.join(r['flags'])}`), {decided(r['vs_base']['accuracy'], str(len(lad['seeds'])))}"
            + (f" at the same rollouts{passes(r)}" if same(r) else "") for k, r in rows.items()]
    n = len(lad["seeds"])
    some = f"{len(rows)} row of the {len(lad['rows']) - 1} moves" if len(rows) == 1 else \
        f"{len(rows)} rows of the {len(lad['rows']) - 1} move"
    return fill(f"At {n} seeds a row, {some} held-out accuracy against its base by an interval that excludes 0: "
                f"{listed(said)}." if rows else
                f"At {n} seeds a row, no row moves held-out accuracy against its base by an interval that excludes 0.")


def bill_sentence() -> str:
    """README: the paper's VAS's scoring rollouts per training rollout, at its settings and under the presets."""
    main, presets = BILLS[0], BILLS[3]
    bill = lambda b: compare_vas.scoring_bill(b[4], b[1], b[2], b[3], DEFAULTS.group_size)  # noqa: E731
    return fill(f"The paper's VAS rolls out every prompt of the pool N times every T_update steps: "
                f"{num(bill(main), 2)} scoring rollouts per training rollout at the paper's main settings on a "
                f"{num(main[4], 0)}-prompt pool, {num(bill(presets), 0)} there with the 3B and 7B presets' B = "
                f"{DEFAULTS.prompts_per_step} (`--model Qwen2.5-VL-3B --vas --no-vas-online --num-scoring "
                f"{presets[1]}`; the presets set T_update, not N).")


# ----------------------------------------------------------------------------------------------------
# docs/when-vas-pays.md


def bill_table() -> str:
    rows = ["| setting | N | T_update | B | pool | scoring rollouts per training rollout |", "|" + " --- |" * 6]
    for name, n, t, b, pool in BILLS:
        bill = compare_vas.scoring_bill(pool, n, t, b, DEFAULTS.group_size)
        extra = f" (on its own {num(RELEASED_POOL, 0)}-prompt pool: " \
                f"{num(compare_vas.scoring_bill(RELEASED_POOL, n, t, b, DEFAULTS.group_size), 2)})" \
            if name == "the released config" else ""
        rows.append(f"| {name} | {n} | {t} | {b} | {num(pool, 0)} | {num(bill, 2 if bill < 10 else 0)}{extra} |")
    rows.append(f"| posterior VAS (`--vas`), anywhere | {DEFAULTS.num_scoring} | | | | {DEFAULTS.num_scoring} |")
    return "\n".join(rows)


def setup(c: dict) -> str:
    ck, shares = clock(), list(c["shares"])
    first = next(iter(c["shares"][shares[0]]["uniform"]["runs"]))
    steps = ck["rollout-budget"] // (DEFAULTS.prompts_per_step * DEFAULTS.group_size)
    arms = {a for arms in c["shares"].values() for a in arms}
    named = "; ".join(f"{arm_name(a)} (`{' '.join(compare_vas.ARMS[a])}`, key `{a}`)"
                      for a in compare_vas.ARMS if a in arms)
    by_seeds = {}
    for d, a in c["shares"].items():
        by_seeds.setdefault(a["uniform"]["seeds"], []).append(share(d))
    runs = sum(s["seeds"] for a in c["shares"].values() for s in a.values())
    wall = sum(r["wall_s"] for a in c["shares"].values() for s in a.values() for r in s["runs"]) / 60
    return fill(
        f"From one cold start (`{c['checkpoint']}`: {num(100 * first['accuracy'][0])}% on the comparison's "
        f"{ck['num-test']} held-out items, {num(100 * first['target_accuracy'][0])}% on \"{c['family']}\"), pools of "
        f"{DEFAULTS.num_rl} RL prompts: the default pool of every family (d = {share(shares[0])}) and pools with a "
        f"dead share d of {listed([share(d) for d in shares[1:]])}, half of the dead prompts nearly always solved "
        f"(\"colour\"), half never (\"octagon\"), the rest live (\"{c['family']}\"). Every run generates at least "
        f"{num(ck['rollout-budget'], 0)} rollouts ({steps} uniform steps of {DEFAULTS.prompts_per_step} × "
        f"{DEFAULTS.group_size}; a run stops after the step that crosses that budget) and is evaluated at the first "
        f"step past each {ck['eval-rollouts']} rollouts generated, on {ck['num-test']} held-out items of all four "
        f"families: training, scoring and dropped rollouts count alike; runs are compared at their last evaluation by "
        f"{num(ck['rollout-budget'], 0)} rollouts. Intervals use the t quantile at the whole degrees of freedom "
        f"below Welch's (`compare_vas.t975`): a little wider than Welch's. The paper's VAS "
        f"scores the pool at step 0 and every {DEFAULTS.refresh_every} steps. The arms, with the JSON keys the figure "
        f"and `assets/vas_compare.md` use: {named}. "
        + "; ".join(f"{n} seeds at d = {listed(ds)}" for n, ds in sorted(by_seeds.items(), reverse=True))
        + f": {runs} runs, whose RL took {wall:.0f} one-thread minutes in all (their `wall_s`, summed).")


def to_target_table(c: dict) -> str:
    arms = [a for a in compare_vas.ARMS if any(a in arms for arms in c["shares"].values())]
    fam, pct = c["family"], f"{100 * c['target']:.0f}%"
    head = (f"Rollouts generated until held-out \"{fam}\" accuracy first reached {pct} (the mean over the seeds that "
            f"did; how many did; against uniform, the difference of means with its 95% Welch interval where every "
            f"seed of the arm got there, \"≤\" where some of uniform's never did and count at their end):")
    rows = ["| dead share | " + " | ".join(arm_name(a) for a in arms) + " |", "|" + " --- |" * (len(arms) + 1)]
    for d, stats in c["shares"].items():
        cells = []
        for a in arms:
            if a not in stats:
                cells.append("")
                continue
            s = stats[a]
            got = [h for h in s["hits"] if h is not None]
            text = (f"{num(np.mean(got), 0)}" if got else "never") + f" ({len(got)}/{s['seeds']})"
            if s.get("vs_target") is not None:
                text += "; " + ("≤ " if s["bound"] else "") + cell(s["vs_target"], 0)
            cells.append(text)
        rows.append(f"| {share(d)} | " + " | ".join(cells) + " |")
    return fill(head) + "\n\n" + "\n".join(rows)


def final_table(c: dict) -> str:
    fam = c["family"]
    head = (f"Held-out accuracy at the budget's end ({num(clock()['rollout-budget'], 0)} rollouts; each run's last "
            f"evaluation by then), against uniform; the share of drawn groups whose rewards all agreed, against "
            f"uniform; the scoring rollouts:")
    rows = [f"| dead share | arm | {fam} | vs uniform | all families | vs uniform | count | shape | all-equal groups "
            f"| vs uniform | scoring |", "|" + " --- |" * 11]
    for d, stats in c["shares"].items():
        for a, s in stats.items():
            vs = lambda k, digits=1: cell(s["vs"][k], digits) if "vs" in s else ""  # noqa: E731
            f = {k: num(v.mean()) + "%" for k, v in s["final"].items()}
            rows.append(f"| {share(d)} | {arm_name(a)} | {f['target_accuracy']} | {vs('target_accuracy')} "
                        f"| {f['accuracy']} | {vs('accuracy')} | {f['count']} | {f['shape']} "
                        f"| {num(s['zero'].mean(), 2)} | {vs('zero', 2)} | {num(s['scoring'], 0)} |")
    return fill(head) + "\n\n" + "\n".join(rows)


def decides(c: dict) -> str:
    """The bullets: what each interval of the comparison decides, and what it does not."""
    shares, fam, pct = list(c["shares"]), c["family"], f"{100 * c['target']:.0f}%"
    top, default, few = shares[-1], shares[0], shares[1]
    vas = [(d, a) for d in shares for a in c["shares"][d] if is_vas(a)]
    diffs = [(d, a, k) for d, a in vas for k in ("target_accuracy", "accuracy")]
    split = [f"{arm_name(a)} on {fam if k == 'target_accuracy' else 'all families'} at d = {share(d)}"
             for d, a, k in diffs if separable(c["shares"][d][a]["vs"][k])]
    u, top_vas = c["shares"][top]["uniform"], [a for a in c["shares"][top] if is_vas(a)]
    ends = lambda x: listed([f"{v:.0f}" for v in x]) + "%"  # noqa: E731
    spread = "; ".join(f"under {arm_name(a)} at {ends(c['shares'][top][a]['final']['target_accuracy'])}"
                       for a in top_vas)
    bullets = [
        f"**Held-out accuracy at the budget's end.** Of the {len(diffs)} differences between a VAS and uniform in "
        f"the table (\"{fam}\" and all families, every dead share), "
        + (f"{len(split)} have an interval that excludes 0: {listed(split)}." if split else
           "none has an interval that excludes 0: at these seeds no VAS is separable from uniform on accuracy.")
        + f" The seeds spread widely: at d = {share(top)} uniform's {u['seeds']} seeds end at "
        + f"{ends(u['final']['target_accuracy'])} on \"{fam}\"; {spread}."]
    # all-equal groups: every VAS against uniform, then the posterior's start against its later steps
    by = {"fewer": [], "more": [], "not separable": []}
    for d, a in vas:
        diff = c["shares"][d][a]["vs"]["zero"]
        word = "fewer" if diff[2] < 0 else "more" if diff[1] > 0 else "not separable"
        by[word].append(f"{arm_name(a)} at d = {share(d)}")
    if len(by["fewer"]) == len(vas):
        text = (f"**Dead groups.** Every VAS draws fewer groups whose rewards all agree than uniform does, at every "
                f"dead share, each interval below 0 (the table's last columns).")
    else:
        text = "**Dead groups.** Groups whose rewards all agree, against uniform: " + "; ".join(
            f"{k} for {listed(v)}" for k, v in by.items() if v) + " (the table's last columns)."
    post = [a for a in top_vas if arm_name(a).startswith("posterior VAS")]
    paper = [a for a in top_vas if arm_name(a).startswith("the paper's VAS")]
    if post and paper:
        p, q = c["shares"][top][post[0]], c["shares"][top][paper[0]]
        text += (f" Posterior VAS starts knowing nothing, every prompt at its prior until drawn: in the first 5 steps "
                 f"at d = {share(top)}, {num(p['zero_start'].mean(), 2)} of its groups agree, against "
                 f"{num(q['zero_start'].mean(), 2)} for {arm_name(paper[0])}, which scored the pool at step 0. "
                 + (f"That start does not explain the gap: from step 6 to the end, {num(p['zero_later'].mean(), 2)} "
                    f"against {num(q['zero_later'].mean(), 2)}." if p["zero_later"].mean() - q["zero_later"].mean()
                    >= 0.05 else f"From step 6 to the end the two are near: {num(p['zero_later'].mean(), 2)} against "
                                 f"{num(q['zero_later'].mean(), 2)}."))
    bullets.append(text)
    # rollouts to the target where every seed got there
    reach = []
    for d in shares:
        for a, s in c["shares"][d].items():
            if a == "uniform" or s.get("vs_target") is None:
                continue
            said = f"{arm_name(a)} at d = {share(d)}, " + ("at most " if s["bound"] else "") + \
                decided(s["vs_target"], seeds_of(c, d, a), "rollouts", "more", "fewer", 0)
            if s["scoring"] and not s["bound"]:
                paid = [scoring_paid(r, h) for r, h in zip(s["runs"], s["hits"])]
                once = min(paid)
                said += (f" ({sum(p == once for p in paid)} of its {s['seeds']} seeds got there having paid "
                         f"{num(once, 0)} scoring rollouts, before its second scoring pass)"
                         if once < max(paid) else "")
            if not separable(s["vs_target"]) and not s["bound"]:
                said += (f" (wider than ±{clock()['eval-rollouts']} rollouts, one evaluation apart: no tie shown "
                         f"either)" if s["vs_target"][2] - s["vs_target"][0] > clock()["eval-rollouts"] else "")
            reach.append(said)
    bullets.append(f"**Rollouts to {pct} \"{fam}\"**, against uniform, where every seed of the arm got there: "
                   + "; ".join(reach) + f". Elsewhere too few seeds reached {pct} for an interval (the table's "
                   f"counts).")
    # dynamic sampling
    dyn = [a for a in c["shares"][top] if arm_name(a) == "dynamic sampling"]
    if dyn:
        a = dyn[0]
        drops = ", ".join(f"{100 * c['shares'][d][a]['dropped']:.0f}% at d = {share(d)}" for d in shares)
        ends = "; ".join(f"d = {share(d)}: {decided(c['shares'][d][a]['vs']['target_accuracy'], seeds_of(c, d, a))}"
                         for d in shares)
        bullets.append(f"**Dynamic sampling** pays for the groups it drops ({drops} of its rollouts). On \"{fam}\" at "
                       f"the budget's end, against uniform: {ends}.")
    # the families the dead pools do not hold
    count = "; ".join(f"{arm_name(a)} {num(c['shares'][top][a]['final']['count'].mean())}% "
                      f"({decided(c['shares'][top][a]['vs']['count'], seeds_of(c, top, a))})" for a in top_vas)
    bullets.append(f"**The other families.** The dead pools hold no count prompts, and their shape prompts are "
                   f"all octagons, never solved. At d = {share(top)} count ends at "
                   f"{num(u['final']['count'].mean())}% under uniform; {count}.")
    most = max(sum(h is not None for h in s["hits"]) for s in c["shares"][default].values())
    bullets.append(f"**The default pool** (d = {share(default)}, every family). No arm reaches {pct} "
                   f"\"{fam}\" on more than {most} of its {c['shares'][default]['uniform']['seeds']} seeds within "
                   f"{num(clock()['rollout-budget'], 0)} rollouts.")
    return "\n".join(fill(b, "- ", "  ") for b in bullets)


def choice(c: dict, data: dict | None = None) -> str:
    """Which VAS `--vas` runs, and what the comparison says about that choice; once the decisive comparison's runs
    are all in, what its intervals decide for each VAS, share by share."""
    split = [f"{arm_name(a)} at d = {share(d)}" for d, arms in c["shares"].items() for a in arms if is_vas(a) and any(
        separable(arms[a]["vs"][k]) for k in ("target_accuracy", "accuracy"))]
    _, n, t, b, pool = BILLS[3]  # the presets
    bill = compare_vas.scoring_bill(pool, n, t, b, DEFAULTS.group_size)
    return fill(
        f"`--vas` runs posterior VAS because it costs no scoring rollouts, where the paper's VAS at its main N and "
        f"T_update costs {num(bill, 0)} scoring rollouts per training rollout at the presets' B on a {num(pool, 0)}-prompt pool. On held-out accuracy "
        + (f"this comparison separates {listed(split)} from uniform. " if split else
           "this comparison separates no VAS from uniform at its seeds, so it does not show that either VAS pays. ")
        + ("The experiment that is to decide, its endpoint and seeds fixed before its runs: [protocol.md](protocol.md)."
           if not complete(data) else decisive_choice(data)))


def trade_offs(data: dict) -> list[str]:
    """Each arm ahead of uniform (or behind) on a share's primary endpoint whose other curve, a secondary endpoint,
    points the other way by an interval that excludes 0: what its gain costs (or its loss buys)."""
    said = []
    for d in SHARES:
        sec = secondary(data, d)
        for arm in (arm for arm in decide.ARMS if arm != "uniform"):
            word = verdict(data["summary"][d][arm]["primary_vs_base"], data["protocol"]["margin"])
            vs = sec[arm]["other"]["primary_vs_base"]
            if (word.startswith("ahead") and vs["high"] < 0) or (word.startswith("behind") and vs["low"] > 0):
                said.append(f"{name_of(decide.ARMS[arm])} {word.split()[0]} at d = {share(d)} on "
                            f"{curve_name(decide.CURVE[float(d)])} only: on {curve_name(sec['other'])} it is "
                            f"{cell((vs['diff'], vs['low'], vs['high']))}")
    return said


def decisive_choice(data: dict) -> str:
    """Per VAS arm, what the decisive comparison's intervals decide at each share, and the choice that follows."""
    said = []
    for arm in (arm for arm in decide.ARMS if arm != "uniform"):
        words = {d: verdict(data["summary"][d][arm]["primary_vs_base"], data["protocol"]["margin"]) for d in SHARES}
        ahead, behind = ([f"d = {share(d)}" for d, w in words.items() if w.startswith(side)]
                         for side in ("ahead", "behind"))
        follows = (f"it pays at {listed(ahead)} and costs at {listed(behind)}: the pool decides whether to type it"
                   if ahead and behind else f"it pays at {listed(ahead)}" if ahead else
                   f"it costs at {listed(behind)}: do not type it there" if behind else "no share shows it pays")
        said.append(f"{name_of(decide.ARMS[arm])}: " + ", ".join(f"{w} at d = {share(d)}" for d, w in words.items())
                    + f" ({follows})")
    trades = trade_offs(data)
    return ("The pre-registered experiment (the decisive comparison above, its primary endpoint against uniform) "
            "decides: " + "; ".join(said) + "." + (f" A secondary endpoint points the other way: {'; '.join(trades)}."
                                                   if trades else ""))


def comparison_blocks(c: dict, data: dict | None = None) -> dict[str, str]:
    """docs/when-vas-pays.md's comparison section, from assets/vas_compare.json alone; its last sentence from
    assets/decide.json once that experiment's runs are all in."""
    figure = "![held-out accuracy against rollouts by dead share](../assets/vas_compare.png)\n"
    figure += fill(figure_caption(c))
    return {"setup": setup(c), "figure": figure, "to-target": to_target_table(c), "final": final_table(c),
            "decides": decides(c), "choice": choice(c, data)}


# ----------------------------------------------------------------------------------------------------
# The decisive comparison (assets/decide.json, the runs of docs/protocol.md)

SHARES = [f"{d:g}" for d in decide.CURVE]  # "0.9" (many dead, primary "biggest"), then "0" (the default pool)
FOCUS = "vas-select"  # focusing VAS, the arm with checks of its own at d = 0.9: at most these shares after step 10
FOCUS_CHECKS = {"dead_drawn": 0.20, "all_equal": 0.55}  # (docs/protocol.md; decide.PROTOCOL does not hold them)
# the page's section goes before this line the first time --write makes it
PLACE = {"decisive": "## The comparison (`assets/vas_compare.json`)", "tuning": "<!-- evidence: decisive -->"}


def load_decide() -> dict | None:
    return json.load(open(DECIDE)) if os.path.exists(DECIDE) else None


def planned_seeds(data: dict, d: str, arms=tuple(decide.ARMS)) -> int:
    """Seeds an arm the protocol plans at share d by now: its seeds, then whole blocks of added ones up to the most
    any arm has; one block more once every arm has them all and an interval is wider than the margin (decide.plan)."""
    p, by = data["protocol"], data["runs"].get(d, {})
    counts = [len(by.get(arm, {})) for arm in arms]
    n = p["seeds"] + -(-max(0, max(counts) - p["seeds"]) // p["add_seeds"]) * p["add_seeds"]
    halves = [v["primary_vs_base"]["half"] for v in data["summary"].get(d, {}).values() if "primary_vs_base" in v]
    if min(counts) == n < p["max_seeds"] and max(halves, default=0) > p["margin"]:
        n += p["add_seeds"]
    return n


def progress(data: dict) -> dict[str, tuple[int, int]]:
    """Per share: runs finished, runs the protocol plans (every arm, the planned seeds)."""
    return {d: (sum(min(len(data["runs"].get(d, {}).get(arm, {})), planned_seeds(data, d)) for arm in decide.ARMS),
                len(decide.ARMS) * planned_seeds(data, d)) for d in SHARES}


def complete(data: dict | None) -> bool:
    return data is not None and all(done == planned for done, planned in progress(data).values())


def curve_name(curve: str) -> str:
    return "all families" if curve == "all" else f"\"{curve}\""


def verdict(vs: dict, margin: float) -> str:
    """What an interval against uniform decides (endpoints.verdict), its margin in points: ahead, behind, equal
    within 4 points, not decided."""
    word = endpoints.verdict(vs["low"], vs["high"], margin)
    return word + " points" if word[-1].isdigit() else word


def last_k(runs: list[dict], curve: str, k: int) -> list[float]:
    """Each run's mean of its last k evaluations on `curve`, in points."""
    return [endpoints.last_k_mean(100 * np.asarray(r["accuracy"][curve]), k) for r in runs]


def runs_of(data: dict, d: str) -> dict[str, list[dict]]:
    """Each arm's (or setting's) run records at share d."""
    return {name: list(seeds.values()) for name, seeds in data["runs"][d].items()}


def secondary(data: dict, d: str) -> dict:
    """The secondary endpoints at share d, per arm, from the runs' curves the way endpoints.compare reads the
    primary one: the other curve's last-k mean against uniform, each family's last-k mean, rollouts to the target
    on the target family (restricted mean, share reached, against uniform), all-equal and dead-drawn shares."""
    p, runs = data["protocol"], runs_of(data, d)
    other = "all" if decide.CURVE[float(d)] != "all" else p["target_family"]
    by = {c: endpoints.compare(runs, c, p["budget"], p["last_k"], p["target"]) for c in {other, p["target_family"]}}
    mean = lambda rs, key: np.mean([r[key] for r in rs if r[key] is not None]) \
        if any(r[key] is not None for r in rs) else None  # noqa: E731
    return {"other": other, **{arm: {
        "other": by[other][arm], "target": by[p["target_family"]][arm],
        "families": {f: np.mean(last_k(rs, f, p["last_k"]))
                     for f in ("colour", "shape", "count")},
        "all_equal": mean(rs, "all_equal"), "dead_drawn": mean(rs, "dead_drawn")} for arm, rs in runs.items()}}


def share_table(data: dict, d: str) -> str:
    """One share's table: per arm the primary endpoint, against uniform with its Welch interval, rank test p and
    verdict; then the secondary endpoints."""
    p, s, sec = data["protocol"], data["summary"][d], secondary(data, d)
    k, pct, fam = p["last_k"], f"{100 * p['target']:.0f}%", p["target_family"]
    arms = [arm for arm in decide.ARMS if arm in s]  # all three, or the replication's two
    dead = any(sec[arm]["dead_drawn"] is not None for arm in arms)
    rows = [f"| arm | seeds | {curve_name(decide.CURVE[float(d)])}, last {k} (95%) | vs uniform (95% Welch) "
            f"| rank test p | verdict | {curve_name(sec['other'])}, last {k}; vs uniform | colour | shape | count "
            f"| area; vs uniform | rollouts to {pct} \"{fam}\" (reached); vs uniform "
            f"| all-equal after step {p['after_step']} |" + (" dead drawn |" if dead else ""),
            "|" + " --- |" * (13 + dead)]
    for arm in arms:
        a, x = s[arm], sec[arm]
        vs = lambda v, digits=1: f"; {cell((v['diff'], v['low'], v['high']), digits)}" if v else ""  # noqa: E731
        base = arm == "uniform"
        rows.append(
            f"| {name_of(decide.ARMS[arm])} | {a['seeds']} | {num(a['primary'])} ± {num(a['primary_half'])} "
            f"| {'' if base else cell(tuple(a['primary_vs_base'][key] for key in ('diff', 'low', 'high')))} "
            f"| {'' if base else num(a['primary_vs_base']['rank']['p'], 3)} "
            f"| {'' if base else verdict(a['primary_vs_base'], p['margin'])} "
            f"| {num(x['other']['primary'])}{vs(x['other'].get('primary_vs_base'))} "
            + "".join(f"| {num(v)} " for v in x["families"].values())
            + f"| {num(a['area'])}{vs(a.get('area_vs_base'))} "
            f"| {num(x['target']['to_target'], 0)} ({num(x['target']['reached'], 2)})"
            f"{vs(x['target'].get('to_target_vs_base'), 0)} | {num(x['all_equal'], 2)} |"
            + (f" {num(x['dead_drawn'], 2)} |" if dead else ""))
    return "\n".join(rows)


def comparison_said(data: dict, d: str, arm: str) -> str:
    """An arm against uniform on the primary endpoint, worded by what its interval decides, with the rank test
    where it points the other way, the margin where the seeds ran out before the interval narrowed to it, and
    focusing VAS's must-not-hurt check on the default pool."""
    p, vs = data["protocol"], data["summary"][d][arm]["primary_vs_base"]
    said = f"{name_of(decide.ARMS[arm])} {verdict(vs, p['margin'])} ({cell((vs['diff'], vs['low'], vs['high']))}"
    rank = vs["rank"]
    if (rank["low"] > 0 or rank["high"] < 0) != (vs["low"] > 0 or vs["high"] < 0):
        said += (f"; the rank test points the other way: its interval {interval(rank['low'], rank['high'])} "
                 + ("excludes 0" if rank["low"] > 0 or rank["high"] < 0 else "holds 0"))
    if vs["half"] > p["margin"]:
        said += (f"; its half-width, {num(vs['half'])} points at {data['summary'][d][arm]['seeds']} seeds, is "
                 f"above the margin")
    said += ")"
    if arm == FOCUS and decide.CURVE[float(d)] == "all":
        said += (f": the check that it does not hurt here, a lower end above {num(-p['margin'], 0)}, is "
                 + ("met" if vs["low"] > -p["margin"] else "not met"))
    return said


def share_decides(data: dict, d: str) -> str:
    """One sentence: what the intervals decide at share d."""
    p, s = data["protocol"], data["summary"][d]
    seeds = listed(sorted({str(s[arm]["seeds"]) for arm in decide.ARMS}))
    return (f"At d = {share(d)} (held-out {curve_name(decide.CURVE[float(d)])}, the mean of the last {p['last_k']} "
            f"evaluations, {seeds} seeds an arm) the intervals decide, against uniform, in points: "
            + "; ".join(comparison_said(data, d, arm) for arm in decide.ARMS if arm != "uniform") + ".")


def focus_checks(data: dict) -> str:
    """Focusing VAS's own checks at d = 0.9, each met or not, with its number."""
    d = SHARES[0]
    runs, x = runs_of(data, d)[FOCUS], secondary(data, d)[FOCUS]
    said = [f"{num(x[key], 2)} {what}, at most {num(most, 2)}: " + ("met" if x[key] <= most else "not met")
            for key, what, most in (("dead_drawn", "of its drawn prompts dead by construction",
                                     FOCUS_CHECKS["dead_drawn"]),
                                    ("all_equal", "of its groups all-equal", FOCUS_CHECKS["all_equal"]))]
    oracle = [sim_posterior.after_step_10("oracle", **kw)["all_equal"] for kw in ({}, {"rise": (0.47, 0.99, 40)})]
    return (f"At d = {share(d)}, the checks {name_of(decide.ARMS[FOCUS])} must meet on its own (steps "
            f"{data['protocol']['after_step']} on, the mean over its {len(runs)} seeds): " + "; ".join(said) + ". "
            f"For scale, the simulation of the toy pools (`python assets/sim_posterior.py`) gives an oracle that "
            f"draws live prompts only {num(oracle[0], 2)} of its groups all-equal when \"biggest\" rises from 0.4 "
            f"to 0.97 over 60 steps, {num(oracle[1], 2)} when it reaches 0.99 within 40: live prompts that are "
            f"learnt agree too." + oracle_said(data))


def oracle_said(data: dict) -> str:
    """The measured oracle from the same cold start (assets/oracle.json), if there is one: its all-equal share per arm,
    the mean over its seeds with their range."""
    measured, most = json.load(open(ORACLE)) if os.path.exists(ORACLE) else {}, FOCUS_CHECKS["all_equal"]
    if measured.get("cold_start") != data.get("cold_start"):
        return ""
    said = [f"{name_of(decide.ARMS[arm])} {num(np.mean(x), 2)} ({num(min(x), 2)} to {num(max(x), 2)})"
            for arm, x in measured["all_equal"].items()]
    seeds = min(len(x) for x in measured["all_equal"].values())
    return (f" Measured from this cold start (`{measured['command']}`, {seeds} seeds an arm), an oracle that knows the live prompts, a pool of only the {measured['live']} "
            f"\"biggest\" prompts for the same rollouts, draws its groups all-equal: " + listed(said)
            + (f"; each above the check's {num(most, 2)}: from this cold start, drawing no dead prompt does not meet it"
               if all(np.mean(x) > most for x in measured["all_equal"].values()) else "") + ".")


def deviations_said(data: dict) -> str:
    """The departures from the protocol decide.json lists (`decide.py report --gather --deviation`)."""
    said = data.get("deviations") or []
    return "Departures from the protocol: " + (" ".join(f"({i}) {d}" for i, d in enumerate(said, 1))
                                               if said else "none listed.")


def draws_table(data: dict, draws: dict) -> str:
    """Where each VAS arm spent its groups (assets/draws.json): per share and family of the pool, its share of the
    pool, each VAS arm's share of the groups, and each arm's last-k held-out accuracy on the family."""
    k, vas = data["protocol"]["last_k"], [arm for arm in decide.ARMS if arm != "uniform"]
    seeds = listed(sorted({str(by[arm]["seeds"]) for by in draws["shares"].values() for arm in vas if arm in by}))
    rows = ["| d | family | pool | " + " | ".join(f"{name_of(decide.ARMS[arm])}: groups" for arm in vas)
            + " | " + " | ".join(f"{name_of(decide.ARMS[arm])}: last {k}" for arm in decide.ARMS) + " |",
            "|" + " --- |" * (3 + len(vas) + len(decide.ARMS))]
    for d in (d for d in SHARES if "pool" in draws["shares"].get(d, {})):
        by, runs = draws["shares"][d], runs_of(data, d)
        for f, pool in by["pool"].items():
            rows.append(f"| {share(d)} | {curve_name(f)} | {num(pool, 2)} | " + " | ".join(
                num(by[arm]["families"][f], 2) if arm in by else "" for arm in vas) + " | " + " | ".join(
                num(np.mean(last_k(runs[arm], f, k)))
                for arm in decide.ARMS) + " |")
    return fill(f"Where each VAS arm spent its groups (`{draws['command']}`, {seeds} seeds an arm): per family of the "
                f"RL pool, the family's share of the pool (a uniform draw's share), each VAS arm's share of its "
                f"groups (counted by its sampler with its own decay, the mean over the seeds), and each arm's "
                f"last-{k} held-out accuracy on the family (the mean over the seeds; the held-out items are every "
                f"family's, whatever the pool holds). In a dead pool the \"colour\" prompts are the always-solved "
                f"ones, the \"shape\" prompts the never-solved octagons, the \"biggest\" prompts the live ones:"
                ) + "\n\n" + "\n".join(rows) + "".join(
        "\n\n" + fill(t) for t in [spread_said(draws), when_said(draws), *draws_said(data, draws)] if t)


def spread_said(draws: dict) -> str:
    """How narrowly each VAS arm focused (assets/draws.json's `effective`), per share; empty without it."""
    said = [listed([f"{name_of(decide.ARMS[arm])} {num(by[arm]['effective'], 0)}" for arm in by
                    if arm != "pool" and "effective" in by[arm]]) for by in draws["shares"].values()]
    return "" if not any(said) else (
        f"Spread over the prompts (the exponential of the entropy of each prompt's share of the groups: how many "
        f"prompts drawn alike would spread them as evenly; {DEFAULTS.num_rl} when every prompt weighs the same): "
        + "; ".join(f"at d = {share(d)}, {x}" for d, x in zip(draws["shares"], said) if x) + ".")


def when_said(draws: dict) -> str:
    """When each VAS arm drew its dead prompts and all-equal groups on a dead pool (assets/draws.json's `by_steps`);
    empty without them."""
    said = [f"at d = {share(d)} {name_of(decide.ARMS[arm])} drew {num(x['vas/dead_drawn'][0], 2)} of its prompts "
            f"dead in steps 10 to 29 and {num(x['vas/dead_drawn'][1], 2)} from step 30 on, its groups all-equal "
            f"{num(x['reward/zero_std_frac'][0], 2)}, then {num(x['reward/zero_std_frac'][1], 2)}"
            for d, by in draws["shares"].items() for arm, x in ((a, v.get("by_steps")) for a, v in by.items()) if x]
    return "" if not said else (
        "When the dead draws came (each run's mean over those steps, the mean over the seeds): " + "; ".join(said)
        + f". A first pass over the pool takes {DEFAULTS.num_rl // DEFAULTS.prompts_per_step} steps at least "
        f"({DEFAULTS.num_rl} prompts, {DEFAULTS.prompts_per_step} a step).")


def draws_said(data: dict, draws: dict) -> list[str]:
    """Where a VAS arm behind uniform lost: the family it drew most beyond the pool's share, and each family it lost
    on by an interval that excludes 0, with its share of the groups and its last-k difference (95% Welch)."""
    k, said = data["protocol"]["last_k"], []
    for d, by in draws["shares"].items():
        runs = runs_of(data, d)
        for arm in (a for a in by if a != "pool" and verdict(data["summary"][d][a]["primary_vs_base"],
                                                              data["protocol"]["margin"]).startswith("behind")):
            groups = by[arm]["families"]
            vs = {f: endpoints.welch(last_k(runs[arm], f, k), last_k(runs["uniform"], f, k)) for f in groups}
            most = max(groups, key=lambda f: groups[f] / by["pool"][f])
            lost = sorted((f for f in vs if vs[f][2] < 0), key=lambda f: vs[f][0])
            said.append(f"At d = {share(d)} {name_of(decide.ARMS[arm])}, behind uniform, gave {curve_name(most)} "
                        f"{num(groups[most], 2)} of its groups (the pool: {num(by['pool'][most], 2)}) and ended "
                        f"{cell(vs[most])} points on it against uniform (last {k}, 95% Welch); "
                        + ("it lost, by intervals that exclude 0, on " + listed(
                            [f"{curve_name(f)} ({num(groups[f], 2)} of its groups) {cell(vs[f])}" for f in lost])
                           if lost else "no family lost by an interval that excludes 0") + ".")
    return said


def protocol_commit(data: dict) -> str:
    """The protocol's commit: as decide.json records it, else docs/protocol.md's last commit at generation."""
    if data.get("protocol_commit"):
        return f"commit {data['protocol_commit']}, under which the runs ran"
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "docs/protocol.md"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return f"commit {commit}, its last when this page was generated" if commit else "commit unknown"


def cold_said(data: dict) -> str:
    """The cold start: its checkpoint and its held-out accuracies after SFT, as decide.json records them."""
    cold, where = data.get("cold_start") or {}, data.get("checkpoint")
    return (f"`{where}`" if where else "its checkpoint not recorded") + (
        f": {num(100 * cold['eval/accuracy_after_sft'])}% held-out after SFT, "
        f"{num(100 * cold['eval/accuracy_after_sft_biggest'])}% on \"biggest\"" if cold else
        ", its accuracies not recorded")


def seeds_said(data: dict) -> str:
    """The seeds an arm, at each share: "20 seeds an arm at d = 0.9 and d = 0", or each share's own."""
    by = {}
    for d in SHARES:
        by.setdefault(data["summary"][d]["uniform"]["seeds"], []).append(f"d = {share(d)}")
    return "; ".join(f"{n} seeds an arm at {listed(ds)}" for n, ds in by.items())


def setting_said(data: dict) -> str:
    """The shared RL setting every arm ran with, and whether it is the one assets/tuning.json chose."""
    name = data.get("setting") or ""
    chosen = json.load(open(TUNING)).get("chosen") if os.path.exists(TUNING) else None
    flags = f"`{' '.join(decide.SETTINGS[name])}`" if name in decide.SETTINGS else "the flags' defaults"
    return (f"Every arm ran with the RL setting `{name}` ({flags}), " if name else f"Every arm ran with {flags}, ") + (
        "the one the tuning sweep chose (`assets/tuning.json`)." if name == chosen else
        f"where the tuning sweep chose `{chosen}` (`assets/tuning.json`): a deviation." if chosen else
        "the tuning sweep having chosen none (`assets/tuning.json`): a deviation.")


def decisive_section(data: dict) -> str:
    """docs/when-vas-pays.md's section on the decisive comparison: its runs' progress until they are all in, then
    its setup, figure, a table and a sentence per share, and focusing VAS's own checks."""
    head = "## The decisive comparison (`assets/decide.json`)\n\n"
    if not complete(data):
        done = progress(data)
        return head + fill(
            f"The runs of [protocol.md](protocol.md) are not all in: {sum(x for x, _ in done.values())} of "
            f"{sum(y for _, y in done.values())} runs have finished ("
            + "; ".join(f"d = {share(d)}: {x} of {y}" for d, (x, y) in done.items())
            + "). Until they have, this section decides nothing.") + "\n\n" + fill(deviations_said(data))
    p = data["protocol"]
    wall = sum(r["wall_s"] for d in SHARES for rs in runs_of(data, d).values() for r in rs) / 3600
    arms = listed([f"{name_of(flags)} (`{' '.join(flags)}`)" for flags in decide.ARMS.values()])
    setup = fill(
        f"The experiment of [protocol.md](protocol.md) ({protocol_commit(data)}), gathered by "
        f"`{data['command']}`. From one cold start ({cold_said(data)}), {arms} ran {seeds_said(data)}, each to "
        f"{num(p['budget'], 0)} rollouts, evaluated on {p['num_test']} held-out items every "
        f"{num(p['eval_rollouts'], 0)}: {wall:.1f} one-thread hours in all (their `wall_s`, summed). "
        f"{setting_said(data)} The primary "
        f"endpoint is the mean of a run's last {p['last_k']} evaluations, in points; against uniform the difference "
        f"of means with its 95% Welch interval, the rank test's two-sided p, and the verdict with the margin of "
        f"{num(p['margin'], 0)} points: ahead or behind when the interval excludes 0 (by less than "
        f"{num(p['margin'], 0)} when it also lies inside ±{num(p['margin'], 0)}), equal within "
        f"{num(p['margin'], 0)} points when it lies inside ±{num(p['margin'], 0)}, not decided otherwise. Beside "
        f"them the secondary endpoints: the other curve's and each family's last-{p['last_k']} mean, the area under "
        f"the primary curve (its mean over the budget), rollouts until \"{p['target_family']}\" first reached "
        f"{100 * p['target']:.0f}% (Kaplan-Meier restricted mean, the share of runs that reached it, the difference "
        f"with a normal 95% interval), and the shares of drawn groups all-equal and of drawn prompts dead by "
        f"construction, steps {p['after_step']} on.")
    figure = ("![held-out accuracy against rollouts, the decisive comparison](../assets/decide.png)\n"
              + fill(f"Per dead share, the primary curve (top) and the other (bottom): the mean over the seeds, the "
                     f"band from the lowest to the highest; " + ", ".join(
                         f"`{arm}` is {name_of(flags)}" for arm, flags in decide.ARMS.items() if arm != "uniform")
                     + "."))
    shares = [f"**d = {share(d)}**\n\n{share_table(data, d)}\n\n{fill(share_decides(data, d))}" for d in SHARES]
    draws = [draws_table(data, json.load(open(DRAWS)))] if os.path.exists(DRAWS) else []
    return head + "\n\n".join([setup, figure, *shares, fill(focus_checks(data)), *draws, fill(deviations_said(data))])


def decisive_answer(data: dict, rep: dict | None = None) -> str:
    """README: what the decisive comparison decides, in one short paragraph, with the replication's verdict once
    its runs are in, then its figure."""
    p = data["protocol"]
    words = {(d, arm): verdict(data["summary"][d][arm]["primary_vs_base"], p["margin"])
             for d in SHARES for arm in decide.ARMS if arm != "uniform"}
    ahead, behind = ([f"{name_of(decide.ARMS[arm])} (d = {share(d)})" for (d, arm), w in words.items()
                      if w.startswith(side)] for side in ("ahead", "behind"))
    if ahead:
        lead = f"Yes: {listed(ahead)} ahead of uniform" + (f"; {listed(behind)} behind it." if behind else ".")
    elif behind:
        lead = f"No: {listed(behind)} behind uniform, no VAS ahead."
    else:
        lead = "Not shown: no VAS ahead of uniform or behind it by an interval that excludes 0."
    said = "; ".join(f"held-out {curve_name(decide.CURVE[float(d)])} at d = {share(d)}: " + ", ".join(
        f"{name_of(decide.ARMS[arm])} {verdict(vs, p['margin'])} ({cell((vs['diff'], vs['low'], vs['high']))})"
        for arm in decide.ARMS if arm != "uniform" for vs in [data["summary"][d][arm]["primary_vs_base"]])
        for d in SHARES)
    text = (f"**Does it pay?** {lead} The pre-registered experiment ([docs/protocol.md](docs/protocol.md), "
            f"`assets/decide.json`): from one cold start, {seeds_said(data)}, each run {num(p['budget'], 0)} rollouts "
            f"on {DEFAULTS.num_rl} prompts with a dead share d, every arm at "
            + (f"the tuned RL setting `{' '.join(decide.SETTINGS[data['setting']])}`"
               if data.get("setting") in decide.SETTINGS else "the default RL setting")
            + f"; against uniform, the mean of the last {p['last_k']} "
            f"evaluations, in points, 95% Welch intervals, margin {num(p['margin'], 0)}: {said}."
            + "".join(f" {t[0].upper()}{t[1:]} (a secondary endpoint)." for t in trade_offs(data)))
    if rep is not None and (said := replicated(rep)) is not None:
        n, vs, outcome = said
        text += (f" From a second cold start ([docs/replication.md](docs/replication.md)), {n} seeds an arm, "
                 f"{name_of(decide.ARMS[FOCUS])} at d = {share(SHARES[0])} against uniform: "
                 f"{cell((vs['diff'], vs['low'], vs['high']))}; its lead {outcome.split(':')[0]}.")
    caption = ("Mean over the seeds, band min to max; " + ", ".join(
        f"`{arm}`: {name_of(flags)}" for arm, flags in decide.ARMS.items() if arm != "uniform") + ".")
    return fill(text) + "\n\n![held-out accuracy against rollouts, the decisive comparison](assets/decide.png)\n" + \
        fill(caption)


def replicated(rep: dict) -> tuple[int, dict, str] | None:
    """The replication's seeds an arm, focusing VAS against uniform at d = 0.9 and what that says of the first cold
    start's lead; None until every planned run is in."""
    d, arms = SHARES[0], ("uniform", FOCUS)
    n = planned_seeds(rep, d, arms)
    if any(len(rep["runs"].get(d, {}).get(arm, {})) < n for arm in arms):
        return None
    vs = rep["summary"][d][FOCUS]["primary_vs_base"]
    word = verdict(vs, rep["protocol"]["margin"])
    return n, vs, ("holds" if word.startswith("ahead") else "is contradicted" if word.startswith("behind") else
                   "is not replicated: it rests on one cold start")


def replication_section(rep: dict, data: dict) -> str:
    """docs/replication.md's results: its runs' progress until they are all in, then focusing VAS against uniform
    at d = 0.9 from the second cold start, what that says of the first one's lead, the table and the checks."""
    d, p, arms = SHARES[0], rep["protocol"], ("uniform", FOCUS)
    head = "## Results (`assets/replicate/decide.json`)\n\n"
    if (said := replicated(rep)) is None:
        n = planned_seeds(rep, d, arms)
        done = sum(min(len(rep["runs"].get(d, {}).get(arm, {})), n) for arm in arms)
        return head + fill(f"{done} of {len(arms) * n} runs have finished; until all have, this section decides "
                           f"nothing.") + "\n\n" + fill(deviations_said(rep))
    n, _, outcome = said
    was = data["summary"][d][FOCUS]["primary_vs_base"]
    text = (f"From the second cold start ({cold_said(rep)}), gathered by `{rep['command']}`, {n} seeds an arm, on "
            f"held-out \"{p['target_family']}\", the mean of the last {p['last_k']} evaluations, in points: "
            f"{comparison_said(rep, d, FOCUS)}. From the first ({cold_said(data)}), "
            f"{data['summary'][d][FOCUS]['seeds']} seeds an arm: {cell((was['diff'], was['low'], was['high']))}. "
            f"So focusing VAS's lead at d = {share(d)} {outcome}.")
    return head + "\n\n".join([fill(text), share_table(rep, d), fill(focus_checks(rep)), fill(deviations_said(rep))])


def tuning_section(tuning: dict, pool: dict | None) -> str:
    """docs/when-vas-pays.md: the baseline's sweep (assets/tuning.json), its rule's choice, and the chosen setting
    beside the default on the default pool (assets/tuning-d0/tuning.json) once measured."""
    p, tune, default = tuning["protocol"], f"{tuning['protocol']['tune_share']:g}", "lr5e-5-e1"
    by = tuning["summary"][tune]
    lrs = sorted({decide.SETTINGS[n][1] for n in by}, key=float)
    epochs = sorted({decide.SETTINGS[n][3] for n in by}, key=int)
    at = {tuple(decide.SETTINGS[n][1::2]): v for n, v in by.items()}
    rows = ["| `--rl-lr` | " + " | ".join(f"`--update-epochs {e}`" for e in epochs) + " |",
            "| --- |" + " --- |" * len(epochs)] + [
        f"| {lr} | " + " | ".join(f"{num(at[lr, e]['primary'])} ± {num(at[lr, e]['primary_half'])}"
                                  if (lr, e) in at else "" for e in epochs) + " |" for lr in lrs]
    chosen, cold, seeds = tuning.get("chosen"), tuning["cold_start"], by[default]["seeds"]
    lr0, e0 = decide.SETTINGS[default][1::2]
    ours = float(lr0) == DEFAULTS.rl_lr and int(e0) == DEFAULTS.update_epochs  # mmr1.py's defaults
    default_s = "the default's" if ours else f"`{default}`'s"
    text = [fill(
        f"Before any reporting run, [protocol.md](protocol.md) tuned the RL setting every arm shares, on uniform "
        f"sampling alone, from a cold start of its own (`{tuning['checkpoint']}`: "
        f"{num(100 * cold['eval/accuracy_after_sft'])}% held-out after SFT, "
        f"{num(100 * cold['eval/accuracy_after_sft_biggest'])}% on \"biggest\"), at d = {share(tune)} "
        f"on the protocol's clock, {seeds} seeds a setting (`{tuning['command']}`, all of it in "
        f"`assets/tuning.md`). The primary endpoint, the mean of a run's last {p['last_k']} evaluations on "
        f"\"biggest\", in points, with its 95% interval over the seeds:"), "\n".join(rows)]
    if chosen:
        vs = by[chosen]["primary_vs_base"]
        text.append(fill(
            f"The rule (the highest mean; settings within {num(p['margin'] / 2, 0)} points of it count as tied and "
            f"the cheapest is taken) chose `{chosen}` (`{' '.join(decide.SETTINGS[chosen])}`): "
            f"{num(by[chosen]['primary'])} against {default_s} {num(by[default]['primary'])}, "
            f"{decided((vs['diff'], vs['low'], vs['high']), str(seeds))}. Every reporting arm runs with it. It is "
            f"the grid's highest learning rate, so a higher one may do better still; no run says."))
    if pool and chosen:
        d = next(iter(pool["summary"]))
        x = pool["summary"][d]
        vs = x[chosen]["primary_vs_base"]
        k, runs = pool["protocol"]["last_k"], runs_of(pool, d)
        last = {n: {f: last_k(rs, f, k) for f in decide.FAMILIES} for n, rs in runs.items()}
        text.append(fill(
            f"On the default pool (d = {share(d)}, the primary endpoint overall), measured after the choice and "
            f"not part of it (`{pool['command']}`, {x[default]['seeds']} seeds each, the same cold start): "
            f"`{chosen}` {num(x[chosen]['primary'])} against {default_s} {num(x[default]['primary'])}, "
            f"{decided((vs['diff'], vs['low'], vs['high']), str(x[default]['seeds']))}. By family (last {k}, the "
            f"mean over seeds, the difference with its 95% Welch interval): " + "; ".join(
                f"{curve_name(f)} {num(np.mean(last[chosen][f]))} against {num(np.mean(last[default][f]))}, "
                f"{cell(endpoints.welch(last[chosen][f], last[default][f]))}" for f in decide.FAMILIES) + "."))
    return "## The baseline, tuned (`assets/tuning.json`)\n\n" + "\n\n".join(text)


def blocks() -> dict[str, dict[str, str]]:
    """Every generated block, by page and name: README's answer from assets/decide.json once its runs are all in,
    from assets/vas_compare.json until then; the page's decisive section once assets/decide.json exists."""
    c, data = comparison(), load_decide()
    tuning, pool = (json.load(open(f)) if os.path.exists(f) else None for f in (TUNING, TUNING_POOL))
    page = {"bill": bill_table(), **({"tuning": tuning_section(tuning, pool)} if tuning else {}),
            **({"decisive": decisive_section(data)} if data else {}), **comparison_blocks(c, data)}
    rep = json.load(open(REPLICATE)) if os.path.exists(REPLICATE) and complete(data) else None
    return {README: {"answer": decisive_answer(data, rep) if complete(data) else readme_answer(c),
                     "first-run": readme_first_run(default_run()), "bill": bill_sentence(),
                     "ladder": ladder_sentence()},
            PAGE: page, **({REPLICATION: {"replication": replication_section(rep, data)}} if rep else {})}


# ----------------------------------------------------------------------------------------------------
# The pages


BLOCK = re.compile(r"<!-- evidence: ([\w-]+) -->\n(.*?)\n?<!-- /evidence -->", re.S)
FIRST_SCREEN = 60  # README's lines whose every number is checked
# names that hold digits and are no measurement: the paper's year and arXiv number, model sizes
IDENTIFIERS = re.compile(r"et al\., \d{4}|arXiv \d+\.\d+|\b\d+B\b")


def page_blocks(text: str) -> dict[str, str]:
    return {m[1]: m[2] for m in BLOCK.finditer(text)}


def checked_text(path: str) -> str:
    """What the checks cover: README's first screen, all of docs/when-vas-pays.md."""
    text = open(path, encoding="utf-8").read()
    return "\n".join(text.splitlines()[:FIRST_SCREEN]) if path == README else text


def numbers_in(text: str) -> list[str]:
    """The numbers a reader sees: prose and tables, without code, link targets, headings and identifiers."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`|\]\([^)]*\)|^#.*$|<!--.*?-->", "", text, flags=re.M)
    return re.findall(r"(?<![\w.])[+−-]?\d+(?:,\d{3})*(?:\.\d+)?", IDENTIFIERS.sub("", text))


def settings() -> set[str]:
    """The numbers a page may write outside a block: the settings the code names (the flags' defaults, the
    comparison's arms, clock, dead shares and targets) and the intervals' level, as the pages print them."""
    data = json.load(open(COMPARISON))
    values = [DEFAULTS.mixture_ratio, DEFAULTS.vas_prior, DEFAULTS.vas_decay, DEFAULTS.group_size,
              DEFAULTS.prompts_per_step, *(flag_value(f, "--mixture-ratio", DEFAULTS.mixture_ratio)
                                           for f in compare_vas.ARMS.values()),
              *map(float, data["results"]), *(round(100 * t) for t in data["targets"]), *clock().values(), 95]
    return {f"{v:g}" for v in values} | {f"{v:,.0f}" for v in values if float(v).is_integer()}


def stray_numbers(path: str) -> list[str]:
    """Numbers in a checked part of a page that neither a block computes nor a setting names."""
    allowed = settings()
    text = re.sub(r"<!-- evidence: [\w-]+ -->.*?(<!-- /evidence -->|\Z)", "", checked_text(path), flags=re.S)
    return [n for n in numbers_in(text) if n.lstrip("+−-") not in allowed]


def rewrite(text: str, new: dict[str, str]) -> str:
    """The page with each block this script makes replaced, a block it lacks added at its PLACE; any other block
    left as it is."""
    for name in (n for n in new if n in PLACE and n not in page_blocks(text)):
        text = text.replace(PLACE[name], f"<!-- evidence: {name} -->\n\n<!-- /evidence -->\n\n{PLACE[name]}", 1)
    return BLOCK.sub(lambda m: f"<!-- evidence: {m[1]} -->\n{new.get(m[1], m[2])}\n<!-- /evidence -->", text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="rewrite the pages' blocks")
    p.add_argument("--check", action="store_true", help="exit 1 when a page's block differs from its source")
    a = p.parse_args(argv)
    stale = 0
    for path, new in blocks().items():
        page, text = os.path.relpath(path, ROOT), open(path, encoding="utf-8").read()
        old = page_blocks(text)
        for name, block in new.items():
            if not (a.write or a.check):
                print(f"<!-- evidence: {name} --> ({page})\n{block}\n")
            elif old.get(name) != block:
                stale += 1
                missing = "missing: --write adds it" if name in PLACE else "missing: add its markers"
                print(f"{page}: block {name} " + (missing if name not in old else
                                                  "rewritten" if a.write else "differs"))
        stray = stray_numbers(path) if path in (README, PAGE) else []  # replication.md: its protocol quotes
        if stray and (a.write or a.check):
            stale += 1
            print(f"{page}: numbers outside a block that are no setting: {stray}")
        if a.write:
            open(path, "w", encoding="utf-8").write(rewrite(text, new))
    return 1 if a.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
