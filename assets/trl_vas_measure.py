"""TRL's own `frac_reward_zero_std` with and without VAS (assets/trl_vas.py), on a pool nine in ten dead.

Both arms run TRL's GRPOTrainer from one cold start of mmr1's tiny Qwen2.5-VL on `data.dead_pool` (d = 0.9:
"colour" prompts the cold start always solves, "octagon" prompts it never does, 1 in 10 "biggest" prompts
it sometimes does), with mmr1's reward (format + accuracy) and the same rollouts: S steps of B = 16 prompts
x G = 8. Arm "trl": TRL's default sampler (RepeatSampler, a shuffle an epoch). Arm "vas": VASGRPOTrainer,
the posterior of `mmr1.py --vas` (lambda 0.5, decay 0.98) fed by the accuracy reward. The number is the
share of groups whose G rewards all agree (TRL's `frac_reward_zero_std`, logged each step), averaged over a
run's steps; the README gives each arm's mean and the paired difference over seeds with a 95% t interval.

    OMP_NUM_THREADS=1 python assets/trl_vas_measure.py                 # cold start, 2 arms x 3 seeds, JSON
    OMP_NUM_THREADS=1 python assets/trl_vas_measure.py --seeds 3 4     # more seeds; then gather all:
    python assets/trl_vas_measure.py --seeds 0 1 2 3 4

Needs `pip install -r requirements.txt` (trl). The cold start is mmr1.py's default (500 SFT steps; after 200,
"colour" was still missed often enough at temperature 1 that half of TRL's groups differed: not dead). It and
each finished run are kept in --workdir and skipped when found, so an interrupted measurement resumes; the
runs of the seeds asked for are gathered into --out (assets/trl_vas.json). Settings are TRL's defaults but the
sizes above, at most 40 new tokens, lr 5e-5 (mmr1's), float32 and no activation checkpointing (CPU).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ASSETS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(ASSETS)
sys.path.insert(0, ROOT)
sys.path.insert(0, ASSETS)
import bench_rl  # noqa: E402  (mmr1's prompt as TRL's chat template; the processor without torchvision)
import data  # noqa: E402
import mmr1  # noqa: E402
from compare_vas import mean_interval  # noqa: E402

ARMS = ("trl", "vas")
POOL = ["--dead-share", "0.9", "--num-rl", "64"]  # 58 dead prompts, 6 live: a generation draws 16
COLD = ["--rl-steps", "0", "--num-test", "48", "--seed", "0"]  # the default: 500 SFT steps, 9 CPU minutes


def fmt(completions, **_):
    return [mmr1.reward(c[0]["content"], "")[0] for c in completions]  # 1 iff <think>..</think><answer>..


def train(arm: str, seed: int, sft: str, steps: int, out: str) -> dict:
    """One TRL run; its per-step frac_reward_zero_std and the dead share of the prompts it drew."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from trl_vas import VASGRPOTrainer

    args = mmr1.parse_args(POOL)
    pool = data.toy_splits(args)["rl"]
    dataset = Dataset.from_list([{"prompt": bench_rl.trl_prompt(e), "image": e.image, "answer": e.answer,
                                  "dead": e.family != data.LIVE} for e in pool])
    drawn = []  # the `dead` flag of every rollout, as TRL passes the dataset's columns to a reward

    def accuracy(completions, answer, dead, **_):  # mmr1's verifier, 0 or 1; TRL names it by the function
        drawn.extend(dead)
        return [mmr1.reward(c[0]["content"], a)[1] for c, a in zip(completions, answer)]

    processor = bench_rl.trl_processor(sft)
    suppress = processor.tokenizer.convert_tokens_to_ids(bench_rl.VISION_TOKENS)  # never sampled, as in mmr1
    config = GRPOConfig(
        output_dir=out, max_steps=steps, seed=seed, use_cpu=True, bf16=False, activation_checkpointing=False,
        per_device_train_batch_size=args.prompts_per_step * args.group_size, num_generations=args.group_size,
        max_completion_length=args.max_new_tokens, temperature=args.temperature, learning_rate=args.rl_lr,
        generation_kwargs={"suppress_tokens": suppress},
        logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True)
    kwargs = dict(model=sft, processing_class=processor, reward_funcs=[fmt, accuracy], args=config,
                  train_dataset=dataset)
    trainer = VASGRPOTrainer(vas_reward="accuracy", **kwargs) if arm == "vas" else GRPOTrainer(**kwargs)
    t0 = time.time()
    trainer.train()
    frac = [h["frac_reward_zero_std"] for h in trainer.state.log_history if "frac_reward_zero_std" in h]
    assert len(frac) == steps and len(drawn) == steps * config.per_device_train_batch_size
    return dict(arm=arm, seed=seed, steps=steps, rollouts=len(drawn), frac_reward_zero_std=frac,
                mean_frac_reward_zero_std=float(np.mean(frac)), dead_drawn=float(np.mean(drawn)),
                seconds=time.time() - t0)


def gather(runs: list[dict], command: str, o: argparse.Namespace) -> dict:
    """Each arm's mean over seeds and the paired difference vas - trl, with 95% t intervals."""
    def stats(x):
        return dict(zip(("mean", "low", "high"), map(float, mean_interval(np.array(x)))))
    by = {arm: {r["seed"]: r for r in runs if r["arm"] == arm} for arm in ARMS}
    seeds = sorted(by["trl"])
    frac = {arm: [by[arm][s]["mean_frac_reward_zero_std"] for s in seeds] for arm in ARMS}
    dead = {arm: [by[arm][s]["dead_drawn"] for s in seeds] for arm in ARMS}
    return dict(command=command, seeds=seeds, steps=o.steps, pool=POOL, cold_start=COLD,
                frac_reward_zero_std={arm: stats(frac[arm]) for arm in ARMS},
                difference=stats(np.subtract(frac["vas"], frac["trl"])),
                dead_drawn={arm: stats(dead[arm]) for arm in ARMS}, runs=runs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="RL seeds (sampler, sampling)")
    p.add_argument("--steps", type=int, default=24, help="GRPO steps a run, each B x G = 128 rollouts")
    p.add_argument("--workdir", default=os.path.join(ROOT, "runs", "trl_vas"), help="cold start and runs")
    p.add_argument("--out", default=os.path.join(ASSETS, "trl_vas.json"), help="the gathered results")
    o = p.parse_args(argv)
    cold = os.path.join(o.workdir, "cold")
    if not os.path.exists(os.path.join(cold, "summary.json")):  # mmr1 refuses an --out that holds a run
        resume = ["--resume", cold] * os.path.exists(os.path.join(cold, "args.json"))  # an interrupted one
        mmr1.main([*COLD, "--out", cold, *resume])
    runs = []
    for seed in o.seeds:
        for arm in ARMS:
            path = os.path.join(o.workdir, f"{arm}-seed{seed}-steps{o.steps}.json")
            if not os.path.exists(path):  # a finished run is skipped: the measurement resumes
                print(f"{arm}, seed {seed}: {o.steps} steps", flush=True)
                result = train(arm, seed, os.path.join(cold, "sft"), o.steps, os.path.join(o.workdir, "trl"))
                json.dump(result, open(path + ".tmp", "w"), indent=1)
                os.replace(path + ".tmp", path)
            runs.append(json.load(open(path)))
    argv = sys.argv[1:] if argv is None else argv
    res = gather(runs, " ".join(["python assets/trl_vas_measure.py", *argv]), o)
    json.dump(res, open(o.out, "w"), indent=1)
    f, d = res["frac_reward_zero_std"], res["difference"]
    print(f"frac_reward_zero_std over {len(res['seeds'])} seeds: TRL {f['trl']['mean']:.3f}, VAS "
          f"{f['vas']['mean']:.3f}, VAS - TRL {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]; {o.out}")
    return res


if __name__ == "__main__":
    main()
