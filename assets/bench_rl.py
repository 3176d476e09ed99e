"""Time one GRPO step of mmr1 against TRL's GRPOTrainer on the same checkpoint, prompts and settings.

Both sides start RL from one SFT checkpoint and draw from the same toy RL pool (each shuffles it its own
way, so completion lengths differ a little and are reported): B = 16 prompts x G = 8
rollouts per step, at most 40 new tokens, temperature 1 (top-p 1, no top-k), beta_KL = 0.01, lr 1e-4,
one AdamW step per rollout batch (TRL: num_iterations 1, the 128 rollouts of one generation make one
optimizer step), token-mean loss (TRL's "dapo"), float32, gradient checkpointing off, no VAS.

    python assets/bench_rl.py --sft-dir runs/default-seed0/sft      # reuse a cold start
    python assets/bench_rl.py                                       # train the cold start first
    python assets/bench_rl.py --skip-trl --steps 3 -- --image-size 56   # mmr1 flags after `--`: both sides

The TRL half runs when `import trl` works (pip install trl==1.16.0, best in its own venv:
`python -m venv --system-site-packages ENV && ENV/bin/pip install trl==1.16.0`, then run with ENV/bin/python).
Seconds per step, whole step wall time with loading, evaluation and two warm-up steps left out:
mmr1: (RL-stage wall time of an N-step run - that of a 2-step run) / (N - 2), from summary.json's
time/rl_s (both runs load the same checkpoint and end with the same evaluation, so those cancel); TRL: in
one N-step run, (end of step N - end of step 2) / (N - 2), from a TrainerCallback. "In-loop step time" is
each side's own per-step timer (mmr1's perf/step_s, TRL's on_step_begin..on_step_end), over the same steps.
Tokens/s = generated completion tokens per step (end-of-turn included) / seconds per step.
Run it alone on the machine, and set OMP_NUM_THREADS: the table prints the thread count it ran with.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import time

import numpy as np
import torch
import transformers
from transformers import AutoTokenizer, Qwen2_5_VLProcessor, Qwen2VLImageProcessorPil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import data  # noqa: E402
import mmr1  # noqa: E402

# the benchmark's RL settings, as mmr1 flags; flags after `--` come later and win, on both sides
SETTINGS = ["--prompts-per-step", "16", "--group-size", "8", "--max-new-tokens", "40", "--kl-coef", "0.01",
            "--temperature", "1", "--rl-lr", "1e-4", "--no-vas", "--eval-every", "0",
            "--save-every", "0", "--num-test", "16", "--update-epochs", "1", "--micro-batch", "0",
            "--freeze-vision", "none"]  # TRL trains the vision tower too
VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]  # never sampled
# mmr1's prompt (see mmr1.encode_prompt) as a chat template: the processor expands the one <|image_pad|>
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.content is string %}{{ m.content }}{% else %}{% for p in m.content %}"
    "{% if p.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif p.type == 'text' %}{{ p.text }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def run_mmr1(argv: list[str], out: str) -> tuple[dict, list[dict]]:
    """One mmr1 run from scratch in `out`: its summary.json and its RL lines of metrics.jsonl."""
    shutil.rmtree(out, ignore_errors=True)  # mmr1 refuses an --out that holds a run
    summary = mmr1.main([*argv, "--out", out])
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    return summary, [r for r in rows if r["stage"] == "rl"]


def result(step_s: float, lengths: list[float], rollouts: int, **extra) -> dict:
    length = float(np.mean(lengths))
    return dict(step_s=step_s, completion_len=length, tokens_per_s=rollouts * length / step_s, **extra)


def time_mmr1(sft_dir: str, argv: list[str], a: mmr1.Args, o: argparse.Namespace) -> dict:
    """mmr1's CLI, N and 2 RL steps from the checkpoint; its own metrics give the per-step numbers."""
    rl_s = {}
    for n in (2, o.steps):
        print(f"mmr1: {n} RL steps", flush=True)
        summary, rows = run_mmr1([*argv, "--init-from", sft_dir, "--rl-steps", str(n)], f"{o.out}/mmr1-{n}")
        rl_s[n] = summary["time/rl_s"]  # the whole RL stage: pi_ref copy, steps, final eval, checkpoint
    timed = rows[2:]  # steps 3..N of the N-step run: the ones the difference measures
    return result((rl_s[o.steps] - rl_s[2]) / (o.steps - 2), [r["reward/completion_len"] for r in timed],
                  a.prompts_per_step * a.group_size, rl_s=rl_s,
                  step_s_metric=float(np.mean([r["perf/step_s"] for r in timed])))  # excludes logging


class ImageOnlyProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor without its video processor, which needs torchvision. The processor's
    sub-processors are the arguments of __init__, so leaving video_processor out of the signature drops it
    (passing video_processor=None fails the type check of ProcessorMixin in transformers 5.24)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


def trl_processor(sft_dir: str) -> ImageOnlyProcessor:
    # padding on the left, as TRL's own AutoProcessor call does: generation appends on the right
    tokenizer = AutoTokenizer.from_pretrained(sft_dir, padding_side="left")
    return ImageOnlyProcessor(Qwen2VLImageProcessorPil.from_pretrained(sft_dir), tokenizer, CHAT_TEMPLATE)


def trl_prompt(ex: data.Example) -> list[dict]:
    return [{"role": "system", "content": mmr1.SYSTEM_PROMPT}, {"role": "user", "content": ex.question}]


def check_prompt(sft_dir: str, ex: data.Example) -> dict:
    """TRL's prompt for one example, rendered as GRPOTrainer renders it (image placed before the user's
    text, then the processor's chat template), against mmr1's encode_prompt: ids and pixels must agree."""
    from trl.data_utils import prepare_multimodal_messages
    processor = trl_processor(sft_dir)
    trl = processor.apply_chat_template([prepare_multimodal_messages(trl_prompt(ex), images=[ex.image])],
                                        add_generation_prompt=True, tokenize=True, return_dict=True)
    ours = mmr1.encode_prompt(processor.tokenizer, processor.image_processor, ex.image, ex.question)
    assert list(trl["input_ids"][0]) == ours.ids, "TRL's prompt ids differ from mmr1's"
    assert torch.equal(torch.as_tensor(trl["pixel_values"]), ours.pixel_values), "TRL's pixels differ from mmr1's"
    return dict(prompt_tokens=len(ours.ids), ids_match=True)


def time_trl(sft_dir: str, a: mmr1.Args, o: argparse.Namespace) -> dict:
    """TRL's GRPOTrainer, N steps from the checkpoint, on mmr1's RL pool with mmr1's reward."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    pool = data.toy_splits(a)["rl"]
    check = check_prompt(sft_dir, pool[0])
    dataset = Dataset.from_list([{"prompt": trl_prompt(e), "image": e.image, "answer": e.answer} for e in pool])
    rollouts, lengths, begins, ends = a.prompts_per_step * a.group_size, [], [], []

    def reward(completions, answer, completion_ids, **_):  # format + accuracy, exactly mmr1's
        lengths.append(float(np.mean([len(c) for c in completion_ids])))  # one call per step
        return [mmr1.reward(c[0]["content"], x)[2] for c, x in zip(completions, answer)]

    class StepTimer(TrainerCallback):  # on_step_end comes after the optimizer step, before any logging
        def on_step_begin(self, *_, **__):
            begins.append(time.perf_counter())

        def on_step_end(self, *_, **__):
            ends.append(time.perf_counter())

    processor = trl_processor(sft_dir)
    config = GRPOConfig(
        output_dir=f"{o.out}/trl", max_steps=o.steps, seed=a.seed, use_cpu=True, bf16=False, fp16=False,
        per_device_train_batch_size=o.trl_batch, gradient_accumulation_steps=rollouts // o.trl_batch,
        num_generations=a.group_size, num_iterations=1, max_completion_length=a.max_new_tokens,
        # sampling set in full, so that nothing comes from a generation_config default
        temperature=a.temperature, top_p=1.0, top_k=0, min_p=None, repetition_penalty=1.0,
        generation_kwargs={"suppress_tokens": processor.tokenizer.convert_tokens_to_ids(VISION_TOKENS)},
        beta=a.kl_coef, epsilon=a.clip_low, epsilon_high=a.clip_high, loss_type="dapo", scale_rewards="group",
        learning_rate=a.rl_lr, weight_decay=a.weight_decay, lr_scheduler_type="constant", warmup_steps=0,
        max_grad_norm=1.0, activation_checkpointing=False, report_to="none", logging_strategy="no",
        save_strategy="no", eval_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=sft_dir, reward_funcs=reward, args=config, train_dataset=dataset,
                          processing_class=processor, callbacks=[StepTimer()])
    print(f"TRL: {o.steps} GRPO steps", flush=True)
    t0 = time.perf_counter()
    trainer.train()
    assert not trainer.model.is_activation_checkpointing  # TRL's default is on: both sides must run without
    # one run, from the end of step 2 to the end of step N: the whole loop (data, generation, update), with
    # train()'s first-call set-up left out (timing train() for N and for 2 steps put ~4 s of it in the 2)
    return result((ends[-1] - ends[1]) / (o.steps - 2), lengths[2:], rollouts, train_s=time.perf_counter() - t0,
                  step_s_metric=float(np.mean([e - b for b, e in zip(begins[2:], ends[2:])])), **check)


def machine() -> dict:
    trl = getattr(sys.modules.get("trl"), "__version__", None)  # main() has tried to import it
    return dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                cores_usable=len(os.sched_getaffinity(0)), torch_threads=torch.get_num_threads(),
                omp_num_threads=os.environ.get("OMP_NUM_THREADS"), python=platform.python_version(),
                torch=torch.__version__, transformers=transformers.__version__, trl=trl)


def print_table(res: dict) -> None:
    m, t = res["mmr1"], res["trl"]
    print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in res["machine"].items()))
    print(f"settings: {res['settings']}\n")
    print(f"| | mmr1 | TRL {res['machine']['trl'] or '(not run)'} | mmr1 / TRL |\n| --- | --- | --- | --- |")

    def speedup(x: float, y: float) -> str:  # TRL's seconds / mmr1's
        return f"speed-up {y / x:.2f}x"

    rows = [("seconds per RL step", "step_s", "{:.2f}", speedup),
            ("  in-loop step time only", "step_s_metric", "{:.2f}", speedup),
            ("mean completion length (tokens)", "completion_len", "{:.1f}", lambda x, y: f"{x / y:.2f}"),
            ("generated tokens / s", "tokens_per_s", "{:.0f}", lambda x, y: f"{x / y:.2f}x")]
    for name, key, fmt, ratio in rows:
        print(f"| {name} | {fmt.format(m[key])} | {fmt.format(t[key]) if t else '-'} | "
              f"{ratio(m[key], t[key]) if t else '-'} |")


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="mmr1 flags after `--` (e.g. -- --image-size 56) go to every mmr1 run and "
                                "set the TRL side's sizes too. The TRL half needs `pip install trl==1.16.0`.")
    p.add_argument("--steps", type=int, default=8, help="N: RL steps of the long run; N - 2 steps are timed")
    p.add_argument("--sft-dir", default="", help="SFT checkpoint to start RL from (e.g. runs/default-seed0/sft); "
                   "default: train one first into <out>/sft/sft")
    p.add_argument("--sft-steps", type=int, default=300, help="steps of that cold start (300: about 4 min on "
                   "one thread; reuse it afterwards with --sft-dir <out>/sft/sft)")
    p.add_argument("--out", default=os.path.join(ROOT, "runs", "bench"), help="runs and bench_rl.json go here")
    p.add_argument("--skip-trl", action="store_true", help="time mmr1 only, even when trl is installed")
    p.add_argument("--seed", type=int, default=0, help="seed of both sides (sampling, prompt order)")
    p.add_argument("--trl-batch", type=int, default=0, help="TRL's per_device_train_batch_size: a step's "
                   "rollouts go through in rollouts/this gradient-accumulation passes; 0 = all in one, like mmr1")
    o = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if o.steps < 3:
        p.error("--steps must be >= 3: two warm-up steps are subtracted")
    mmr1_argv = [*SETTINGS, "--seed", str(o.seed), *extra]
    a = mmr1.parse_args(mmr1_argv)  # both sides read their settings from here
    o.trl_batch = o.trl_batch or a.prompts_per_step * a.group_size
    if (a.prompts_per_step * a.group_size) % o.trl_batch:
        p.error("--trl-batch must divide the rollouts per step (prompts per step x group size)")
    sft_dir = o.sft_dir
    if not sft_dir:
        print(f"cold start: {o.sft_steps} SFT steps", flush=True)
        run_mmr1([*mmr1_argv, "--rl-steps", "0", "--sft-steps", str(o.sft_steps)], f"{o.out}/sft")
        sft_dir = f"{o.out}/sft/sft"
    try:
        import trl  # noqa: F401
        run_trl = not o.skip_trl
    except ImportError:
        print("trl is not installed: timing mmr1 only. For the comparison: pip install trl==1.16.0")
        run_trl = False
    settings = dict(prompts_per_step=a.prompts_per_step, group_size=a.group_size, max_new_tokens=a.max_new_tokens,
                    kl_coef=a.kl_coef, temperature=a.temperature, top_p=1.0, rl_lr=a.rl_lr, dtype=a.dtype,
                    steps=o.steps, timed_steps=o.steps - 2, sft_dir=sft_dir, seed=o.seed, trl_batch=o.trl_batch)
    res = dict(machine=machine(), settings=settings, mmr1=time_mmr1(sft_dir, mmr1_argv, a, o),
               trl=time_trl(sft_dir, a, o) if run_trl else None)
    if res["trl"]:
        res["speedup"] = res["trl"]["step_s"] / res["mmr1"]["step_s"]
        res["tokens_per_s_ratio"] = res["mmr1"]["tokens_per_s"] / res["trl"]["tokens_per_s"]
    res["command"] = "python assets/bench_rl.py " + " ".join(argv)
    print_table(res)
    json.dump(res, open(os.path.join(o.out, "bench_rl.json"), "w"), indent=1)
    print(f"\nwrote {o.out}/bench_rl.json")
    return res


if __name__ == "__main__":
    main()
