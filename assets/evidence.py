"""The sentences and tables with which README.md's first screen and docs/when-vas-pays.md report the evidence,
computed from the committed files, so that no number there drifts from its source.

Sources:
    assets/vas_compare.json   the dead-share comparison (assets/compare_vas.py): every run, every curve
    assets/ladder.json        the ablation ladder (assets/ladder.py, docs/experiments.md)
    docs/toy-task.md          the default run on six seeds, uniform beside posterior VAS: its per-seed table is the
                              only committed record of those runs (no JSON of them is), with their one clean timing
    mmr1.py, compare_vas.py   the settings the text names: the flags' defaults, the comparison's arms and clock
Each block sits in its page between `<!-- evidence: NAME -->` and `<!-- /evidence -->`:

    python assets/evidence.py            # print every block
    python assets/evidence.py --write    # rewrite the blocks in README.md and docs/when-vas-pays.md
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
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "assets"))
import compare_vas  # noqa: E402
import mmr1  # noqa: E402

README, PAGE = os.path.join(ROOT, "README.md"), os.path.join(ROOT, "docs", "when-vas-pays.md")
COMPARISON, LADDER = os.path.join(ROOT, "assets", "vas_compare.json"), os.path.join(ROOT, "assets", "ladder.json")
TOY_TASK = os.path.join(ROOT, "docs", "toy-task.md")
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
    text = (f"{lead} From one cold start, each sampler ran to the same {num(clock()['rollout-budget'], 0)} rollouts "
            f"(scoring rollouts count) on pools of {DEFAULTS.num_rl} prompts with a dead share d, {seeds} seeds an arm "
            f"(`assets/vas_compare.json`, 95% Welch intervals). Held-out \"{fam}\" (the toy question RL learns) at the "
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
    """The six-seed table of docs/toy-task.md: per seed, held-out and "biggest" accuracy after SFT, after RL under
    uniform and under posterior VAS (percent, as printed), and the held-out difference as printed (from the
    unrounded accuracies); the one clean timing of a run; the commit whose code made them."""
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
    said = [f"{k} (`{' '.join(r['flags'])}`), {decided(r['vs_base']['accuracy'], str(len(lad['seeds'])))}"
            + (" at the same rollouts" if r["final"]["rollouts"]["mean"] == lad["rows"]["uniform"]["final"]["rollouts"]
               ["mean"] else "") for k, r in rows.items()]
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
                f"{num(main[4], 0)}-prompt pool, {num(bill(presets), 0)} under the 3B and 7B presets "
                f"(`--model Qwen2.5-VL-3B`, which set the paper's hyperparameters but keep B = "
                f"{DEFAULTS.prompts_per_step}).")


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
        f"dead share d of {listed([share(d) for d in shares[1:]])}, half of the dead prompts always solved "
        f"(\"colour\"), half never (\"octagon\"), the rest live (\"{c['family']}\"). Every run generates "
        f"{num(ck['rollout-budget'], 0)} rollouts ({steps} uniform steps of {DEFAULTS.prompts_per_step} × "
        f"{DEFAULTS.group_size}) and is evaluated each {ck['eval-rollouts']} rollouts generated on {ck['num-test']} "
        f"held-out items of all four families: training, scoring and dropped rollouts count alike. The paper's VAS "
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


def choice(c: dict) -> str:
    """Which VAS `--vas` runs, and what the comparison says about that choice."""
    split = [f"{arm_name(a)} at d = {share(d)}" for d, arms in c["shares"].items() for a in arms if is_vas(a) and any(
        separable(arms[a]["vs"][k]) for k in ("target_accuracy", "accuracy"))]
    _, n, t, b, pool = BILLS[3]  # the presets
    bill = compare_vas.scoring_bill(pool, n, t, b, DEFAULTS.group_size)
    return fill(
        f"`--vas` runs posterior VAS because it costs no scoring rollouts, where the paper's VAS at its main N and "
        f"T_update costs {num(bill, 0)} scoring rollouts per training rollout under the presets. On held-out accuracy "
        + (f"this comparison separates {listed(split)} from uniform. " if split else
           "this comparison separates no VAS from uniform at its seeds, so it does not show that either VAS pays. ")
        + "The experiment that is to decide, its endpoint and seeds fixed before its runs: [protocol.md](protocol.md).")


def comparison_blocks(c: dict) -> dict[str, str]:
    """docs/when-vas-pays.md's comparison section, from assets/vas_compare.json alone."""
    figure = "![held-out accuracy against rollouts by dead share](../assets/vas_compare.png)\n"
    figure += fill(figure_caption(c))
    return {"setup": setup(c), "figure": figure, "to-target": to_target_table(c), "final": final_table(c),
            "decides": decides(c), "choice": choice(c)}


def blocks() -> dict[str, dict[str, str]]:
    """Every generated block, by page and name."""
    c = comparison()
    return {README: {"answer": readme_answer(c), "first-run": readme_first_run(default_run()),
                     "bill": bill_sentence(), "ladder": ladder_sentence()},
            PAGE: {"bill": bill_table(), **comparison_blocks(c)}}


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
    """The page with each block this script makes replaced; any other block left as it is."""
    return BLOCK.sub(lambda m: f"<!-- evidence: {m[1]} -->\n{new.get(m[1], m[2])}\n<!-- /evidence -->", text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="rewrite the blocks in README.md and docs/when-vas-pays.md")
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
                print(f"{page}: block {name} " + ("missing: add its markers" if name not in old else
                                                  "rewritten" if a.write else "differs"))
        stray = stray_numbers(path)
        if stray and (a.write or a.check):
            stale += 1
            print(f"{page}: numbers outside a block that are no setting: {stray}")
        if a.write:
            open(path, "w", encoding="utf-8").write(rewrite(text, new))
    return 1 if a.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
