"""A checkpoint directory in the format of Qwen2.5-VL-3B/7B-Instruct, randomly initialised: no download.

It holds what the published checkpoints hold, so `mmr1.py --model DIR` / `--init-from DIR` meets what it
would meet on the real thing: the flat config.json of 2025 (`rope_scaling` with "mrope"), weights under the
original key names, 151,936 embedding rows (7B: 152,064), Qwen's 22 added tokens at ids 151643..151664, the
chat template, the published generation_config.json (sampling on, temperature 1e-6, repetition penalty 1.05:
what a trainer must not inherit) and preprocessor_config.json (up to 12,845,056 pixels). Only the ordinary
vocabulary differs: the toy data's words plus inert fillers fill ids 0..151642, where Qwen has a byte-level
BPE. Sizes: "test" is tiny (a CPU, seconds); "3B" and "7B" are the published shapes.

    python assets/qwen_like.py --size test --out /tmp/qwen-test   # then: python mmr1.py --model /tmp/qwen-test ...
    python assets/qwen_like.py --size 3B --out DIR                 # 7.5 GB of random bf16 weights
    python assets/qwen_like.py --size 3B --gpu-bench --out DIR     # one GPU: a few RL steps of the preset, timed;
                                                                   # DIR gets bench.json, the checkpoints stay in TMPDIR
Sources, found in public code: the 3B's and the 7B's config.json (verbatim copies); preprocessor_config.json
(a copy "trimmed from Qwen/Qwen2.5-VL-7B-Instruct"); the added tokens' ids; the VL chat template. Assumed from
the hub cards, not seen verbatim: generation_config.json, and which added tokens are special.
"""
import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
import mmr1  # noqa: E402

# Qwen/Qwen2.5-VL-3B-Instruct config.json, verbatim but for "architectures" and version fields
CONFIG_3B = dict(
    model_type="qwen2_5_vl", vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
    num_attention_heads=16, num_key_value_heads=2, hidden_act="silu", max_position_embeddings=128000,
    rms_norm_eps=1e-6, rope_theta=1000000.0, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
    tie_word_embeddings=True, attention_dropout=0.0, initializer_range=0.02, max_window_layers=70,
    sliding_window=32768, use_sliding_window=False, use_cache=True, torch_dtype="bfloat16",
    bos_token_id=151643, eos_token_id=151645, vision_start_token_id=151652, vision_end_token_id=151653,
    vision_token_id=151654, image_token_id=151655, video_token_id=151656,
    vision_config=dict(depth=32, hidden_act="silu", hidden_size=1280, intermediate_size=3420, num_heads=16,
                       in_chans=3, out_hidden_size=2048, patch_size=14, spatial_merge_size=2, spatial_patch_size=14,
                       window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2,
                       temporal_patch_size=2))
# what each size changes: the 7B's are its published config.json's (it pads its embedding to 152,064 rows)
SIZES = {"3B": ({}, {}),
         "7B": (dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, max_window_layers=28, tie_word_embeddings=False),
                dict(out_hidden_size=3584)),
         # tiny: head_dim 16 -> 8 rotary frequencies split (2, 3, 3) over (time, height, width) like (16, 24, 24)
         "test": (dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}),
                  dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                       fullatt_block_indexes=[0]))}
# Qwen2.5's added tokens, in id order from 151643; the first 14 are special (skipped when decoding)
ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
         "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
         "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
         "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
FIRST_ADDED, N_SPECIAL = 151643, 14
GENERATION_CONFIG = dict(bos_token_id=151643, pad_token_id=151643, do_sample=True, eos_token_id=[151645, 151643],
                         repetition_penalty=1.05, temperature=1e-6)
PREPROCESSOR_CONFIG = dict(min_pixels=3136, max_pixels=12845056, patch_size=14, temporal_patch_size=2, merge_size=2,
                           image_mean=[0.48145466, 0.4578275, 0.40821073],  # CLIP's mean and std
                           image_std=[0.26862954, 0.26130258, 0.27577711],
                           image_processor_type="Qwen2VLImageProcessor", processor_class="Qwen2_5_VLProcessor")
# Qwen2-VL's and Qwen2.5-VL's chat template (chat_template.json)
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}")


def qwen_config(size: str) -> dict:
    """The published config.json (flat, as of 2025) with the size's changes; a deep copy, since building a
    Qwen2_5_VLConfig from it edits `rope_scaling` in place."""
    text, vision = SIZES[size]
    return copy.deepcopy({**CONFIG_3B, **text, "vision_config": {**CONFIG_3B["vision_config"], **vision}})


def qwen_tokenizer(texts: list[str]):
    """Word-level over the words of `texts`, padded with fillers to id 151642, then Qwen's added tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # the reward's tags are words of their own, so decoding (tokens joined by spaces) keeps them whole
    split = pre_tokenizers.Split(Regex(r"</?think>|</?answer>|\\boxed|[A-Za-z]+|\d+|[^\sA-Za-z\d]"), "isolated")
    pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), split])
    texts = texts + [mmr1.SYSTEM_PROMPT, "system user assistant"]
    words = sorted({w for t in texts for w, _ in pre.pre_tokenize_str(t)})
    fillers = [f"[unused{i}]" for i in range(FIRST_ADDED - 1 - len(words))]  # never produced: "[" is split off
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[UNK]"] + words + fillers)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ADDED[:N_SPECIAL]])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED[N_SPECIAL:]])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", extra_special_tokens=ADDED[1:N_SPECIAL],
                                   model_max_length=131072, chat_template=CHAT_TEMPLATE)


def toy_texts() -> list[str]:
    """Questions and rationales of the toy data: every word the toy task uses."""
    return [e.question + " " + e.rationale for e in data.make_geometry_dataset(200, seed=0, size=56, teacher_error=0.5)]


def save_qwen_like(path: str, size: str = "test", texts: list[str] | None = None, device: str = "cpu") -> None:
    """Write a randomly initialised Qwen2.5-VL checkpoint of `size` to `path` (bf16, as published)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    with torch.device(device):  # on a GPU the 3B is initialised there, in seconds
        model = Qwen2_5_VLForConditionalGeneration._from_config(Qwen2_5_VLConfig(**qwen_config(size)),
                                                                dtype=torch.bfloat16)
    model.save_pretrained(path)  # weights under the original key names (model.layers.*, visual.*)
    del model
    tokenizer = qwen_tokenizer(texts or toy_texts())
    tokenizer.save_pretrained(path)
    # save_pretrained wrote today's nested config and a bare generation config: put the published files back
    config = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], **qwen_config(size)}
    for name, content in [("config.json", config),
                          ("generation_config.json", GENERATION_CONFIG),
                          ("preprocessor_config.json", PREPROCESSOR_CONFIG),
                          ("chat_template.json", {"chat_template": CHAT_TEMPLATE})]:
        json.dump(content, open(os.path.join(path, name), "w"), indent=2)


# A few RL steps of the preset on the toy data, sized for ~4 min on one H100 (estimated, not measured). A random
# model rarely ends its turn, so every rollout runs to --max-new-tokens: a worst case for that budget. Memory
# depends on the preset's --micro-batch and the length, not on the number of prompts, so 4 prompts x G = 8 do.
BENCH_FLAGS = ["--rl-steps", "3", "--prompts-per-step", "4", "--group-size", "8", "--max-new-tokens", "256",
               "--num-sft", "8", "--num-rl", "4", "--num-test", "8", "--eval-every", "0", "--vas", "--num-scoring", "8",
               "--save-every", "0"]


def bench(size: str, out: str, extra: list[str] = (), device: str = "cuda") -> dict:
    """Build the random checkpoint on `device`, run mmr1 in-process as `--model Qwen2.5-VL-<size> --init-from
    CKPT` (the preset's settings, these weights), report step times and peak GPU memory. Checkpoints stay in
    a temporary directory; `out` gets the small files. `extra` flags override BENCH_FLAGS (argparse: last wins)."""
    tmp = tempfile.mkdtemp()
    ckpt, run, cuda = os.path.join(tmp, "ckpt"), os.path.join(tmp, "run"), device == "cuda"
    t0 = time.time()
    save_qwen_like(ckpt, size, device=device)
    build_s = time.time() - t0
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()  # measure the run, not the build
    preset = "Qwen2.5-VL-7B" if size == "7B" else "Qwen2.5-VL-3B"  # "test" is the 3B scaled down
    # what is timed is training, not writing a 45 GB checkpoint.pt (fp32 weights and AdamW moments) and final/
    kept = mmr1.end_of_step, mmr1.Policy.save
    mmr1.end_of_step, mmr1.Policy.save = (lambda *a, **k: None), (lambda *a, **k: None)
    print(f"checkpoint built and saved in {build_s:.0f} s; now mmr1 --model {preset} --init-from it", flush=True)
    try:
        summary = mmr1.main(["--model", preset, "--init-from", ckpt, "--device", device, *BENCH_FLAGS, *extra,
                             "--out", run])
    except BaseException as e:  # out of memory, say: still report the memory and the steps done
        summary = {"error": f"{type(e).__name__}: {e}"[:2000]}
    finally:
        mmr1.end_of_step, mmr1.Policy.save = kept
    metrics = os.path.join(run, "metrics.jsonl")
    rl = [r for r in map(json.loads, open(metrics) if os.path.exists(metrics) else []) if r["stage"] == "rl"]
    peak = [torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30] if cuda else [None] * 2
    result = {"size": size, "device": torch.cuda.get_device_name() if cuda else "cpu", "build_and_save_s": build_s,
              "flags": BENCH_FLAGS + list(extra), "perf/step_s": [r["perf/step_s"] for r in rl],
              **{k: [r.get(k) for r in rl] for k in ("perf/sample_s", "perf/ref_s", "perf/update_s",
                                                     "perf/rollout_tokens_per_s", "train/grad_norm", "train/kl")},
              "reward/completion_len": [r["reward/completion_len"] for r in rl],
              "cuda/max_memory_allocated_gb": peak[0], "cuda/max_memory_reserved_gb": peak[1], "summary": summary}
    os.makedirs(out, exist_ok=True)
    for name in ("metrics.jsonl", "summary.json", "args.json"):
        if os.path.exists(os.path.join(run, name)):
            shutil.copy(os.path.join(run, name), out)
    json.dump(result, open(os.path.join(out, "bench.json"), "w"), indent=1)
    shutil.rmtree(tmp)
    print(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=1))
    if "error" in summary:
        sys.exit(f"mmr1 failed: {summary['error']}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="test")
    parser.add_argument("--out", required=True, help="checkpoint directory; with --gpu-bench: where results go")
    parser.add_argument("--gpu-bench", action="store_true", help="time a few RL steps of the preset on a GPU")
    args, extra = parser.parse_known_args()  # with --gpu-bench, unknown flags go on to mmr1.py
    if args.gpu_bench:
        bench(args.size, args.out, extra)
    elif extra:
        parser.error(f"unknown flags {extra}")
    else:
        save_qwen_like(args.out, args.size)
        print(f"wrote {args.out}: load with python mmr1.py --model {args.out} (or --init-from {args.out})")
