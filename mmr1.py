"""MMR1's trainer in one file: cold-start SFT, then GRPO with Variance-Aware Sampling, on Qwen2.5-VL.

Implements Leng et al., 2025, "MMR1: Enhancing Multimodal Reasoning with Variance-Aware Sampling and
Open Resources" (arXiv 2509.21268): a supervised cold start on chain-of-thought data, then GRPO
(Shao et al., 2024) whose prompts are drawn by Variance-Aware Sampling (VAS, `vas.py`). The data it trains
on, the toy geometry task or MMR1-format files, comes from `data.py`.

Why VAS: a group whose G rewards all agree has advantage 0 everywhere, so its G rollouts cost compute and move
nothing. VAS predicts before rolling out which prompts will disagree (it scores the pool every T_update steps,
N rollouts a prompt, and draws by VPS); DAPO's dynamic sampling (`--filter-groups`) finds out after rolling
out and pays for the dropped groups. Either gains only where many prompts are dead (always or never solved),
as happens late in real training (README, "When VAS pays").

Run it:
    python mmr1.py --vas                # tiny Qwen2.5-VL from scratch on toy geometry, 2 CPU cores, ~9 min
    python mmr1.py --model Qwen2.5-VL-3B --vas --data DIR   # the paper's 3B setting on one GPU
    torchrun --nproc_per_node 8 mmr1.py --model Qwen2.5-VL-7B --vas --fsdp --data DIR
    python mmr1.py --help               # every flag, with the paper's symbol and value

Deviations from the paper, and why:
1. The default model is a tiny, randomly initialised Qwen2.5-VL (same architecture: vision tower, patch
   merger, M-RoPE) with a word-level tokenizer, trained on procedurally drawn geometry, so the whole
   pipeline runs on a laptop CPU in minutes. `--model Qwen2.5-VL-3B/7B` restores the paper's setting.
2. One optimiser step per rollout batch by default (the ratio is then 1 in value, see `clipped_surrogate`);
   `--update-epochs` > 1 gives PPO-style reuse with clipping.
3. VAS as the paper defines it, not as the official code computes it (see `vas.py`): diversity is
   1 - self-BLEU on unpadded responses, and VPS is used unnormalised.
4. Beyond the paper: `--vas` keeps a posterior of each prompt's pass rate, fed by its G training rollouts
   for free, and needs no scoring rollouts (`--num-scoring 0`, the default; `vas.py`): the paper's
   re-scoring of the pool every T_update steps is VAS's main cost. `--vas --no-vas-online --num-scoring N`
   is the paper's VAS.
5. The toy cold-start rationales come from a flawed teacher (`--teacher-error`): on "biggest shape"
   items it reasons right, then answers for the small shape, as distilled chain-of-thought errs, while
   the data's answer stays true: imitation copies the flaw, RL with a verifier can undo it.
6. The tiny model's RL keeps its vision tower frozen (`--freeze-vision rl`; the presets freeze it in SFT
   too) and weighs the KL at 0.1 (the paper: 0.01, at a learning rate 50 times smaller): RL's few, noisy
   updates otherwise wear away what the cold start learned to see.

Sections, in file order:
    Flags ........................ Args (one dataclass, parsed into argparse), the paper's presets
    Model and tokenizer .......... the tiny Qwen2.5-VL, or a checkpoint; fp32 master weights
    Prompt encoding .............. chat text, <|image_pad|> per merged patch, M-RoPE positions
    Reward ....................... format + accuracy (Math-Verify for math answers)
    Rollouts and log-probs ....... the KV-cache sampler; shared-prefix, vocabulary-chunked log-probs
    GRPO ......................... group advantage, k3 KL, the clipped surrogate, token-mean, the loss
    Training loops ............... SFT, the GRPO update and step, RL with VAS (Algorithm 1), dynamic
                                   sampling, evaluation
    Main ......................... the two stages, the summary
    Plumbing ..................... torchrun / FSDP2, checkpoints and exact resume, logs
"""
from __future__ import annotations

import argparse, contextlib, copy, dataclasses, gc, json, math, os, random, re, resource, shutil, signal, sys
import threading, time
from collections import Counter

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch.utils.checkpoint import checkpoint
from tqdm.auto import tqdm

import data, vas
from data import Example

# ----------------------------------------------------------------------------------------------------
# Flags


def flag(default, help_text: str, choices: tuple | None = None, valid: str = "[0, inf)") -> dataclasses.Field:
    """A field of Args with its --help text and the values it takes: one of a few `choices`, or a number in
    the interval `valid` ("[2, inf)": 2 or more; "(0, 1]": above 0, at most 1). No flag takes a negative."""
    return dataclasses.field(default=default, metadata=dict(help=help_text, choices=choices, valid=valid))


@dataclasses.dataclass
class Args:
    # general
    model: str = flag("tiny", '"tiny", "Qwen2.5-VL-3B", "Qwen2.5-VL-7B", a hub id or a local directory')
    seed: int = flag(0, "seeds python, numpy and torch; the toy data has its own --data-seed")
    out: str = flag("", "output directory; default runs/<timestamp>")
    device: str = flag("auto", '"auto" (cuda if available), "cpu" or "cuda"', ("auto", "cpu", "cuda"))
    dtype: str = flag("float32", "bfloat16: autocast, fp32 master weights (presets)", ("float32", "bfloat16"))
    init_from: str = flag("", "start from this checkpoint (a run's sft/ or final/ directory) and skip SFT")
    resume: str = flag("", "continue the run in this directory exactly where its last checkpoint.pt left off")
    save_every: int = flag(50, "write checkpoint.pt every this many steps (also at the end and on Ctrl-C)")
    fsdp: bool = flag(False, "under torchrun: shard parameters with FSDP2 instead of replicating them")
    # data
    data: str = flag("", "read sft/rl/test.jsonl in MMR1's schema from this directory instead of toy data")
    export_data: str = flag("", "write the splits these flags give to this directory in MMR1's schema, exit")
    data_seed: int = flag(0, "seed of the toy geometry generator")
    num_sft: int = flag(6000, "toy cold-start examples (the paper: ~1.6M long-CoT items)", valid="[1, inf)")
    num_rl: int = flag(256, "toy RL prompt pool (the paper: ~15k prompts)", valid="[1, inf)")
    num_test: int = flag(450, "toy held-out test examples", valid="[1, inf)")
    image_size: int = flag(112, "toy image side in pixels (112 px -> 16 image tokens)", valid="[28, inf)")
    min_pixels: int = flag(0, "images resized to at least this many pixels; 0: the model's (paper: 7056)")
    max_pixels: int = flag(0, "images resized to at most this many pixels; 0: the model's (paper: 1048576)")
    teacher_error: float = flag(0.6, 'share of "biggest" rationales naming the small shape', valid="[0, 1]")
    dead_share: float = flag(0.0, "toy RL pool with this dead share (data.dead_pool); 0: the default pool")
    # model
    grad_checkpointing: bool = flag(False, "trade compute for memory (the presets turn it on)")
    freeze_vision: str = flag("rl", 'stages with a frozen vision tower ("rl": it learns to see in SFT only)',
                              ("none", "rl", "all"))
    micro_batch: int = flag(0, "sequences per forward/backward pass; 0 = whole batch at once")
    rollout_batch: int = flag(0, "sequences per sampling call (KV cache memory); 0 = the whole batch at once")
    # cold-start SFT
    sft_steps: int = flag(500, "optimiser steps of supervised fine-tuning; 0 skips SFT")
    sft_batch: int = flag(32, "examples per SFT step (the paper: effective batch 32)", valid="[1, inf)")
    sft_lr: float = flag(1e-3, "peak lr, cosine with 10% warm-up (the paper: 1e-5)", valid="(0, inf)")
    # GRPO
    rl_steps: int = flag(60, "RL optimiser steps; 0 skips RL")
    rollout_budget: int = flag(0, "stop RL after the step that reaches this many rollouts generated; 0: no")
    prompts_per_step: int = flag(16, "B, prompts per RL step (the paper: 512)", valid="[1, inf)")
    group_size: int = flag(8, "G, rollouts per prompt (the paper: 8)", valid="[2, inf)")  # 1: no variance
    rl_lr: float = flag(5e-5, "RL learning rate (the paper: 1e-6)", valid="(0, inf)")
    weight_decay: float = flag(0.01, "AdamW weight decay in RL (the paper: 0.01)")
    temperature: float = flag(1.0, "of sampling, and of the log-probs (the paper: 0.6)", valid="(0, inf)")
    max_new_tokens: int = flag(40, "completion budget, cut off scores 0 (the paper: 4096)", valid="[1, inf)")
    clip_low: float = flag(0.2, "epsilon_low of the clipped surrogate (the paper: 0.2)")
    clip_high: float = flag(0.2, "epsilon_high of the clipped surrogate (the paper: 0.2)")
    kl_coef: float = flag(0.1, "beta_KL, weight of the k3 KL to the reference policy (the paper: 0.01)")
    update_epochs: int = flag(1, "optimiser passes over each rollout batch (1 = on-policy)", valid="[1, inf)")
    scale_std: bool = flag(True, "divide advantages by the group's std; --no-scale-std is Dr. GRPO")
    seq_mean: bool = flag(False, "average the loss per sequence, then over sequences (default: token-mean)")
    eval_every: int = flag(20, "evaluate on the test split every this many RL steps; 0 = only at the end")
    eval_rollouts: int = flag(0, "evaluate instead each time this many more rollouts are generated; 0: off")
    # VAS
    vas: bool = flag(False, "Variance-Aware Sampling (posterior VAS unless --no-vas-online); off: uniform")
    mixture_ratio: float = flag(0.5, "lambda, share of a batch drawn by VPS (the paper: 0.5)", valid="[0, 1]")
    num_scoring: int = flag(0, "N, rollouts a prompt when scoring the pool (the paper: 32); 0: no scoring")
    refresh_every: int = flag(30, "T_update, RL steps between full re-scorings (the paper: 35); 0 = never")
    alpha: float = flag(0.8, "alpha, weight of OVS in VPS (the paper: 0.8)")
    beta: float = flag(0.2, "beta, weight of TDS in VPS (the paper: 0.2)")
    diversity: str = flag("self_bleu", "TDS method", ("self_bleu", "distinct", "edit"))
    vas_online: bool = flag(True, "posterior VAS: VPS from training groups; off: the paper's VAS (N > 0)")
    vas_decay: float = flag(0.98, "evidence kept each step (half-life 34; each refresh too)", valid="(0, 1]")
    vas_prior: float = flag(0.1, "a0 of the posterior's Beta(a0, a0) prior on a pass rate", valid="(0, inf)")
    vas_select: bool = flag(False, "focusing VAS: the lambda*B prompts of highest posterior VPS, none twice")
    filter_groups: int = flag(0, "DAPO's dynamic sampling: drop all-equal groups, refill from <= K batches")


# The paper's hyper-parameters (Sec. 6.1 and Appendix Table 6) for the released checkpoints; flags still win.
PRESETS = {"Qwen2.5-VL-3B": "Qwen/Qwen2.5-VL-3B-Instruct", "Qwen2.5-VL-7B": "Qwen/Qwen2.5-VL-7B-Instruct"}
# micro_batch: 4 sequences x 6,144 tokens of checkpointed activations (~14 GiB) fit in 80 GB (README).
# B stays --prompts-per-step 16 (the paper: 512, on 8 GPUs with vLLM): this sampler decodes in Python, and
# 512 x 8 rollouts of up to 4,096 tokens would take hours a step on one GPU; with more GPUs, set 512.
# rollout_batch, the KV cache: 36 layers x 2 (K, V) x 2 heads x 128 x 2 B = 36 KB a token for 3B (57 KB
# for 7B); 64 rollouts x (2048 + 4096) tokens = 14 GB (22 GB), beside 60 GB of weights, gradients, moments
PAPER_SETTINGS = dict(sft_lr=1e-5, rl_lr=1e-6, temperature=0.6, group_size=8, kl_coef=0.01, clip_low=0.2,
                      clip_high=0.2, max_new_tokens=4096, refresh_every=35, dtype="bfloat16",
                      grad_checkpointing=True, freeze_vision="all", min_pixels=7056, max_pixels=1048576,
                      micro_batch=4, rollout_batch=64)


def parse_args(argv: list[str] | None = None) -> Args:
    """The flags of Args (a preset's defaults under them); a flag out of range is a one-line error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    kinds = {"bool": dict(action=argparse.BooleanOptionalAction), "int": dict(type=int),
             "float": dict(type=float), "str": dict(type=str)}
    for f in dataclasses.fields(Args):  # argparse reads % in a help text as a format: "10%" becomes "10%%"
        parser.add_argument("--" + f.name.replace("_", "-"), **kinds[f.type], default=f.default,
                            choices=f.metadata["choices"], help=f.metadata["help"].replace("%", "%%"))
    args = parser.parse_args(argv)
    if args.model in PRESETS:  # a preset changes the defaults, then we parse again so flags win
        parser.set_defaults(**PAPER_SETTINGS)
        args = parser.parse_args(argv)
        args.model = PRESETS[args.model]
    world = int(os.environ.get("WORLD_SIZE", 1))  # torchrun's processes each take a share of a batch
    checks = [(f.type not in ("int", "float") or inside(getattr(args, f.name), f.metadata["valid"]),
               f"--{f.name.replace('_', '-')} {getattr(args, f.name)}: must be in {f.metadata['valid']}")
              for f in dataclasses.fields(Args)]  # each number in the interval its flag declares
    checks += [
        (not args.max_pixels or args.min_pixels <= args.max_pixels, "--min-pixels must be <= --max-pixels"),
        (args.num_scoring != 1 and (args.num_scoring or args.vas_online or not args.vas),  # 1: no pass rate
         f"--num-scoring {args.num_scoring}: 0 (none) or 2+; --no-vas-online (the paper's VAS) needs 2+"),
        (args.model in ("tiny", *PRESETS.values()) or "/" in args.model or os.path.isdir(args.model),
         f"--model {args.model}: unknown; use tiny, {', '.join(PRESETS)}, a hub id (org/name) or a dir"),
        (not args.fsdp or "WORLD_SIZE" in os.environ, "--fsdp needs torchrun: torchrun --nproc_per_node K"),
        (not args.vas_select or args.vas and args.vas_online, "--vas-select draws from the posterior: --vas"),
        (args.prompts_per_step % world == 0 and args.sft_batch % world == 0,
         f"--prompts-per-step and --sft-batch must be divisible by the {world} processes of torchrun"),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    return Args(**vars(args))


def inside(value: float, interval: str) -> bool:
    """Is value in the interval: "[0, 1]" holds 0 and 1, "(0, 1]" holds 1 but not 0, "[2, inf)" 2 and more."""
    low, high = (float(x) for x in interval[1:-1].split(","))
    above_low = low < value or interval[0] == "[" and value == low
    return above_low and (value < high or interval[-1] == "]" and value == high)


# ----------------------------------------------------------------------------------------------------
# Model and tokenizer

# The paper's system prompt, shortened: every token of it is paid for in every sequence on a CPU
SYSTEM_PROMPT = ("Analyse the image , reason step by step in <think> </think> , then answer in "
                 "<answer> </answer> with the result in \\boxed{} .")
CHAT_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
               "<|image_pad|>", "<|video_pad|>"]  # Qwen's special tokens; <|endoftext|> pads
VISION_TOKENS = CHAT_TOKENS[3:]  # never sampled: a stray <|image_pad|> breaks the next forward


def build_tokenizer(texts: list[str]):
    """A word-level tokenizer over the words of `texts`, carrying Qwen's chat special tokens.

    Words are runs of letters or digits; `\\boxed` and each other symbol are tokens of their own, so
    "\\boxed{3}" -> ["\\boxed", "{", "3", "}"]. Decoding joins tokens with spaces, which the reward
    parser allows. Word-level keeps sequences short: the whole toy completion is ~20 tokens.
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    split = pre_tokenizers.Split(Regex(r"\\boxed|[A-Za-z]+|\d+|[^\sA-Za-z\d]"), behavior="isolated")
    pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), split])
    tags = ["<think>", "</think>", "<answer>", "</answer>"]
    words = {w for text in texts + [SYSTEM_PROMPT, "system user assistant"]
             for w, _ in pre.pre_tokenize_str(re.sub("|".join(tags), " ", text))}
    vocab = {t: i for i, t in enumerate(CHAT_TOKENS + ["[UNK]"] + tags + sorted(words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    tok.add_special_tokens(CHAT_TOKENS)
    tok.add_tokens(tags)  # matched whole before pre-tokenising, kept when decoding
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="<|endoftext|>",
                                   eos_token="<|im_end|>", extra_special_tokens=CHAT_TOKENS[1:])


TINY = dict(hidden=192, heads=6, layers=4, vision_depth=2, vision_hidden=128)  # the default model's size


def build_tiny_model(tokenizer, image_size: int):
    """A randomly initialised Qwen2.5-VL, ~3M parameters: the 3B/7B architecture, scaled down."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in CHAT_TOKENS}
    hidden, depth, vision_hidden = TINY["hidden"], TINY["vision_depth"], TINY["vision_hidden"]
    text = dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
                num_hidden_layers=TINY["layers"], num_attention_heads=TINY["heads"], num_key_value_heads=2,
                max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=None,
                eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                # M-RoPE: head_dim/2 = 16 rotary frequencies split over (time, height, width)
                rope_parameters=dict(rope_type="default", rope_theta=10000.0, mrope_section=[4, 6, 6]))
    vision = dict(depth=depth, hidden_size=vision_hidden, intermediate_size=2 * vision_hidden, num_heads=4,
                  out_hidden_size=hidden, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                  window_size=image_size, fullatt_block_indexes=[depth - 1])
    config = Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=True, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"])
    return Qwen2_5_VLForConditionalGeneration(config)


def build_image_processor(image_size: int):
    from transformers import Qwen2VLImageProcessorPil  # the PIL backend: no torchvision needed
    # keep toy images at their size: (size/14)^2 patches, merged 2x2 into (size/28)^2 tokens
    return Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=image_size * image_size)


@dataclasses.dataclass
class Policy:
    """What the loops need of a model: the network, its tokenizer and image processor, special ids."""
    model: torch.nn.Module
    tokenizer: object
    processor: object
    eos: int  # <|im_end|>, the end of the assistant's turn
    pad: int  # <|endoftext|>
    suppress: list[int]  # vision special tokens, never sampled

    def encode(self, ex: Example) -> Prompt:
        return encode_prompt(self.tokenizer, self.processor, ex.image, ex.question)

    def save(self, path: str) -> None:
        """Model, tokenizer and image processor in save_pretrained format: what --init-from loads."""
        state = full_state(self.model) if dist.is_initialized() else None  # all ranks: FSDP gathers shards
        if rank() == 0:  # written under a temporary name, then renamed: never half-written
            shutil.rmtree(path + ".tmp", ignore_errors=True)
            self.model.save_pretrained(path + ".tmp", state_dict=state)
            for obj in (self.tokenizer, self.processor):
                obj.save_pretrained(path + ".tmp")
            shutil.rmtree(path, ignore_errors=True)
            os.rename(path + ".tmp", path)


def load_policy(args: Args, texts: list[str]) -> Policy:
    """The tiny model built in-process, or a checkpoint: a hub id or a directory our runs wrote."""
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil
    name = args.init_from or args.model
    if name == "tiny":
        tokenizer, processor = build_tokenizer(texts), build_image_processor(args.image_size)
        model = build_tiny_model(tokenizer, args.image_size)
    else:
        try:
            # fp32 master weights whatever --dtype says: bf16 weights updated in place lose small updates
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(name)
            processor = Qwen2VLImageProcessorPil.from_pretrained(name)
        except (OSError, ValueError) as e:
            raise SystemExit(f"could not load model {name!r}: {str(e).splitlines()[0]}; download it first, "
                             f"e.g. `hf download {name} --local-dir DIR`, then pass --model DIR (or --model "
                             "tiny, which needs none; offline, HF_HUB_OFFLINE=1 skips the retries)") from None
    if args.min_pixels or args.max_pixels:  # the paper's bounds: a huge image must not become 16,000 tokens
        processor.size = {"shortest_edge": args.min_pixels or processor.size["shortest_edge"],  # in pixels
                          "longest_edge": args.max_pixels or processor.size["longest_edge"]}
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    for cfg in (model.config, model.config.text_config, model.generation_config):
        cfg.eos_token_id, cfg.pad_token_id = eos, pad
    return Policy(model, tokenizer, processor, eos, pad, tokenizer.convert_tokens_to_ids(VISION_TOKENS))


# ----------------------------------------------------------------------------------------------------
# Prompt encoding: chat text, then the image placeholder expanded to one <|image_pad|> per merged patch


@dataclasses.dataclass
class Prompt:
    ids: list[int]  # chat-formatted prompt, image placeholder already expanded
    pixel_values: torch.Tensor  # (patches, 3*2*14*14) from the image processor
    grid_thw: torch.Tensor  # (1, 3): grid_t, grid_h, grid_w in 14-px patches


def encode_prompt(tokenizer, image_processor, image: Image.Image | list, question: str) -> Prompt:
    """One prompt for SFT, rollouts and evaluation alike (Qwen2.5-VL's chat format, by hand). Each image
    becomes <|vision_start|>, one <|image_pad|> per merged 2x2 patch block, <|vision_end|>, placed at its
    <image> in the question (before the question if it has none)."""
    images = image if isinstance(image, list) else [image]
    vision = image_processor(images=images, return_tensors="pt")
    grid = vision["image_grid_thw"]  # (images, 3)
    n_tokens = [int(g.prod()) // image_processor.merge_size ** 2 for g in grid]  # 2x2 patches -> one token
    blocks = [f"<|vision_start|>{'<|image_pad|>' * n}<|vision_end|>" for n in n_tokens]
    pieces = (question if "<image>" in question else "<image>" * len(images) + question).split("<image>")
    user = pieces[0] + "".join(block + piece for block, piece in zip(blocks, pieces[1:]))
    text = (f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            f"<|im_start|>assistant\n")
    return Prompt(tokenizer(text, add_special_tokens=False)["input_ids"], vision["pixel_values"], grid)


def prompt_batch(policy: Policy, prompts: list[Prompt], device) -> dict[str, torch.Tensor]:
    """B prompts, left-padded so that every completion starts at the same column, with M-RoPE positions.

    Qwen2.5-VL's M-RoPE gives each token a (time, height, width) position: text tokens count up on all three
    axes alike, an image's tokens take their patch's (t, h, w) on its grid, and the text after an image
    continues from the largest position so far. `next_position` (B,) is where each completion starts.
    """
    width = max(len(p.ids) for p in prompts)
    ids = torch.tensor([[policy.pad] * (width - len(p.ids)) + p.ids for p in prompts])  # (B, L) left-padded
    attn = (ids != policy.pad).long()  # (B, L) no prompt holds the pad token
    grid = torch.cat([p.grid_thw for p in prompts])  # (images, 3)
    is_image = (ids == policy.model.config.image_token_id).int()  # (B, L)
    positions, _ = policy.model.model.get_rope_index(ids, is_image, grid, attention_mask=attn)  # (3, B, L)
    pixels = torch.cat([p.pixel_values for p in prompts])
    batch = dict(input_ids=ids, attention_mask=attn, position_ids=positions, image_grid_thw=grid,
                 pixel_values=pixels, next_position=positions.amax((0, 2)) + 1)
    return {k: v.to(device) for k, v in batch.items()}


# ----------------------------------------------------------------------------------------------------
# Reward: format + accuracy (Sec. 6.1: 1 * format + 1 * accuracy)

FORMAT_RE = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.S)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.S)
BOXED_RE = re.compile(r"\\boxed\s*\{", re.S)


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...}, braces balanced: '\\boxed{\\frac{1}{2}}' -> '\\frac{1}{2}'."""
    starts = [m.end() for m in BOXED_RE.finditer(text)]
    if not starts:
        return None
    depth, i = 1, starts[-1]
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[starts[-1]:i - 1] if depth == 0 else None


def normalise(text: str) -> str:
    """'  \\text{Red }. ' -> 'red'; '3.0' -> '3'. Spaces are dropped: the word tokenizer adds them."""
    text = re.sub(r"\\text\s*\{(.*?)\}", r"\1", text).lower()
    text = re.sub(r"\s+", "", text).strip(".$")
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def answers_match(given: str, truth: str) -> bool:
    """Equal after `normalise` ('Red' = 'red', '3.0' = '3'); for a mathematical truth (a digit or LaTeX) also
    equal by Math-Verify, as the paper checks: '\\frac{1}{2}' = '0.5', '2\\pi' = '2 \\pi'. Words never go
    to the math parser, which would read 'red' as the product e*d*r."""
    if normalise(given) == normalise(truth):
        return True
    if not re.search(r"[\d\\]", truth):
        return False
    from math_verify import LatexExtractionConfig, parse, verify  # imported here: sympy takes a second
    latex = [LatexExtractionConfig()]  # the whole answer as one expression: no number fished out of prose
    try:
        return bool(verify(parse(f"${truth}$", latex), parse(f"${given}$", latex)))
    except Exception:  # an answer it cannot parse is not a right one
        return False


def reward(completion: str, answer: str) -> tuple[float, float, float]:
    """(format, accuracy, total) of one decoded completion.

    format = 1 iff the completion is <think>...</think><answer>...</answer>; accuracy = 1 iff the
    \\boxed{} inside <answer> (or the answer text when there is no box) matches after normalisation.
    reward("<think> 2 + 1 </think><answer> \\boxed{3} </answer>", "3") -> (1.0, 1.0, 2.0)
    """
    fmt = float(bool(FORMAT_RE.match(completion)))
    inside = ANSWER_RE.search(completion)
    span = inside.group(1) if inside else completion
    boxed = last_boxed(span)
    acc = float(answers_match(boxed if boxed is not None else span, answer))
    return fmt, acc, fmt + acc


# ----------------------------------------------------------------------------------------------------
# Rollouts and log-probabilities


@dataclasses.dataclass
class Rollouts:
    prompts: list[Prompt]  # the B distinct prompts; rows p*G .. p*G+G-1 below belong to prompt p
    completion_ids: torch.Tensor  # (B*G, C) sampled ids; padding after the first end-of-turn
    mask: torch.Tensor  # (B*G, C) 1 at real completion tokens, the end-of-turn included
    completions: list[list[int]]  # the same ids, each cut after its end-of-turn
    logp: torch.Tensor  # (B*G, C) log pi_old of each sampled token, as the sampler drew it
    texts: list[str]  # decoded completions
    rewards: torch.Tensor  # (B*G,) format + accuracy
    correct: torch.Tensor  # (B*G,) accuracy only: the verifier V(x, y) of VAS
    formats: torch.Tensor  # (B*G,)


def autocast(args: Args, device) -> contextlib.AbstractContextManager:
    """--dtype bfloat16: products in bf16, weights and their updates in fp32 (torch's mixed precision)."""
    return torch.autocast(torch.device(device).type, torch.bfloat16, enabled=args.dtype == "bfloat16")


def log_policy(logits: torch.Tensor, args: Args, policy: Policy) -> torch.Tensor:
    """log pi over the vocabulary, float32: logits / T with the vision tokens excluded. Sampling draws from
    exactly this distribution (no top-p or top-k: the paper's top-p is 1) and training scores with it."""
    logits = logits.float().index_fill(-1, torch.tensor(policy.suppress, device=logits.device), -math.inf)
    return torch.log_softmax(logits / args.temperature, -1)


def completion_mask(completions: torch.Tensor, eos: int) -> torch.Tensor:
    """1 at each real completion token, the end-of-turn included (the model must learn to stop), 0 after it.

    Whatever follows the first end-of-turn is padding, never trained on. With eos = 2:
    [[7, 2, 0, 0], [7, 8, 9, 9], [2, 5, 2, 0]] -> [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]] (the second row
    was cut off by the budget: all of it is real).
    """
    is_eos = (completions == eos).long()  # (N, C)
    return (is_eos.cumsum(1) - is_eos == 0).float()  # no end-of-turn strictly before this column


def micro_batches(prompts: list, group: int, size: int) -> list[tuple[slice, list, torch.Tensor]]:
    """The rows of len(prompts) groups of `group`, `size` rows a part (0: all at once), a group split between
    parts where `size` is not a multiple of G. Each part: its rows, its prompts, each row's prompt among them.
    micro_batches([x, y], 4, 2) -> (rows 0:2, [x], [0, 0]), (2:4, [x], [0, 0]), (4:6, [y], [0, 0]), ..."""
    n = len(prompts) * group
    parts = [slice(a, min(n, a + (size or n))) for a in range(0, n, size or max(n, 1))]
    return [(r, prompts[r.start // group:(r.stop - 1) // group + 1],
             torch.arange(r.start, r.stop) // group - r.start // group) for r in parts]


def last_hidden(net, **inputs):
    """net's forward with one position's logits, and the final norm's output (N, L, H), what the lm_head
    reads, taken by a hook: output_hidden_states would keep every layer's output, 37 tensors at 3B."""
    normed = []
    hook = net.model.language_model.norm.register_forward_hook(lambda module, args, out: normed.append(out))
    try:
        return net(**inputs, logits_to_keep=1), normed[0]
    finally:
        hook.remove()


def prefill(net, batch: dict, index: torch.Tensor):
    """One forward over each distinct prompt, its KV cache then copied to every row that continues it (row i
    continues prompt index[i]): the prompt (and the vision tower) runs once per group. Returns the cache and
    the hidden state of each row's last prompt position (N, 1, H): it predicts the first completion token."""
    out, hidden = last_hidden(net, **{k: v for k, v in batch.items() if k != "next_position"}, use_cache=True)
    out.cache.batch_select_indices(index)  # copied, not recomputed
    return out.cache, hidden[index, -1:]


@torch.no_grad()
def sample(policy: Policy, batch: dict, index: torch.Tensor, args: Args, greedy: bool = False):
    """A completion for each row, row i continuing prompt index[i] ([0, 0, 1, 1]: two a prompt), with a KV
    cache: `prefill`, then one token per row per forward. Only
    the flags decide sampling (the temperature), never the checkpoint's generation_config: a repetition
    penalty there would make the rollouts off-policy. Returns completions (B*G, C), their mask and each
    sampled token's log-prob (its gap to the training forward's is logged). C: the longest completion."""
    model, n, (cache, hidden) = policy.model, len(index), prefill(policy.model, batch, index)
    logits = model.lm_head(hidden[:, -1])  # (N, V) the first completion token
    attn = batch["attention_mask"][index]  # (N, L)
    position = batch["next_position"][index]  # (N,) the prompt's rope offset, carried on
    done, tokens, logps = torch.zeros(n, dtype=torch.bool, device=logits.device), [], []
    for _ in range(args.max_new_tokens):
        logp_all = log_policy(logits, args, policy)  # (N, V)
        token = (logp_all.argmax(-1) if greedy
                 else torch.multinomial(logp_all.exp(), 1)[:, 0])  # (N,) top-p 1, as the paper
        token = token.masked_fill(done, policy.pad)  # a finished row only pads
        tokens.append(token)
        logps.append(logp_all.gather(-1, token[:, None])[:, 0])
        done |= token == policy.eos
        if all_sum((~done).sum()).item() == 0:  # every row of every rank has ended (FSDP needs all ranks)
            break
        attn = torch.cat([attn, attn.new_ones(n, 1)], 1)
        out = model(input_ids=token[:, None], attention_mask=attn, cache=cache, use_cache=True,
                    position_ids=position.view(1, n, 1).expand(3, n, 1))  # text: one position, 3 axes
        logits, position = out.logits[:, -1], position + 1
    completions = torch.stack(tokens, 1)  # (N, C)
    mask = completion_mask(completions, policy.eos)  # (N, C)
    return completions, mask, torch.stack(logps, 1) * mask


@torch.no_grad()
def rollout(policy: Policy, examples: list[Example], args: Args, group: int, greedy=False) -> Rollouts:
    """`group` rewarded completions per example, consecutive: rows p*group .. p*group+group-1 belong to
    example p. Sampled --rollout-batch sequences at a time, padded to one width. A completion cut off by
    --max-new-tokens before its end of turn scores 0, however right its text."""
    model, device = policy.model, next(policy.model.parameters()).device
    prompts = [policy.encode(ex) for ex in examples]
    was_training = model.training
    model.eval()  # sampling is inference: no dropout, and gradient checkpointing would drop the cache
    with autocast(args, device), gathered(model):  # under FSDP: one all-gather per module, not per token
        parts = [sample(policy, prompt_batch(policy, part, device), index.to(device), args, greedy)
                 for _, part, index in micro_batches(prompts, group, args.rollout_batch)]  # KV cache memory
    model.train(was_training)
    # each call's columns padded to the widest: ids, mask, log-probs
    completions, mask, logp = (cat_padded(list(col), v) for col, v in zip(zip(*parts), (policy.pad, 0, 0)))
    ids = [row[:int(m.sum())] for row, m in zip(completions.tolist(), mask)]
    texts = policy.tokenizer.batch_decode(ids, skip_special_tokens=True)
    # (B*G, 3); a completion without its end of turn was cut off by the budget: it scores 0
    scores = torch.tensor([reward(t, examples[i // group].answer) if ids[i][-1:] == [policy.eos]
                           else (0.0, 0.0, 0.0) for i, t in enumerate(texts)])
    return Rollouts(prompts, completions, mask, ids, logp, texts, scores[:, 2], scores[:, 1], scores[:, 0])


def completion_logprobs(logits: torch.Tensor, completions: torch.Tensor,
                        temperature: float = 1.0) -> torch.Tensor:
    """log pi(y_t | x, y_<t) of each completion token (N, C), from teacher-forced logits (N, L, V) whose
    last C positions are the completion's (L >= C + 1), float32 and at the sampling temperature.

    Position t's logits predict token t + 1: the completion's first token is predicted by the prompt's last
    position, and the last position predicts past the end. With C = 2, logits[:, -3] scores completions[:, 0]
    and logits[:, -2] scores completions[:, 1]. Taking logits[:, -C:] instead trains each token to predict
    itself: the loss falls, and the policy learns nothing it can sample.
    """
    logits = logits[:, -completions.shape[1] - 1:-1].float()  # (N, C, V): position t predicts token t + 1
    logp = torch.log_softmax(logits / temperature, -1)  # (N, C, V)
    return logp.gather(-1, completions.unsqueeze(-1)).squeeze(-1)  # (N, C)


LOGIT_CHUNK = 16  # completion columns scored at a time: (8, 16, 151,936) float32 logits are 78 MB


def chosen_logprobs(hidden: torch.Tensor, head: torch.Tensor, ids: torch.Tensor, args: Args, policy: Policy):
    """log pi of the tokens ids (N, c) read off the hidden states (N, c + 1, H) of the positions before them
    by the lm_head weight (V, H): `completion_logprobs` over a few columns, so (N, c, V) stays small. Vision
    tokens get -inf, as in sampling (`log_policy`): training scores the distribution sampling draws from."""
    logits = (hidden @ head.T).index_fill(-1, torch.tensor(policy.suppress, device=hidden.device), -math.inf)
    return completion_logprobs(logits, ids, args.temperature)  # (N, c)


def token_logprobs(net, policy: Policy, prompts: list[Prompt], completions: torch.Tensor, mask: torch.Tensor,
                   args: Args, shared: bool = True, index: torch.Tensor | None = None) -> torch.Tensor:
    """log pi(y_t | x, y_<t) of each completion token (B*G, C), teacher-forced, float32, logits / T.
    shared: `prefill`, then one forward over the completion tokens alone, the gradient flowing back into
    the prompt through the cache: the numbers of one full row per rollout (shared=False), G times cheaper
    in the prompt. Row i continues prompts[index[i]] (default: equal groups, in order). The logits (N, C, V)
    are never held: LOGIT_CHUNK columns at a time, recomputed in the backward."""
    device, (n, c) = completions.device, completions.shape
    batch = prompt_batch(policy, prompts, device)
    index = torch.arange(n, device=device) // (n // len(prompts)) if index is None else index.to(device)
    attn = torch.cat([batch["attention_mask"][index], mask.long()], 1)  # (N, L + C)
    position = batch["next_position"][index][:, None] + torch.arange(c, device=device)
    position = position.unsqueeze(0).expand(3, n, c)  # text: the same position on all three M-RoPE axes
    # transformers keeps no KV cache under gradient checkpointing: full rows then, in every pass, so that
    # pi_old and pi_ref are computed the way the training pass computes pi (and pi_ref, fp32 weights like the
    # policy's, `frozen_copy`, rounds like it in bf16)
    shared = shared and not args.grad_checkpointing
    with autocast(args, device):
        if shared:  # the prompt's last position (N, 1, H), then the completions over the expanded cache
            cache, last_prompt = prefill(net, batch, index)
            inputs = dict(input_ids=completions, position_ids=position, cache=cache)
        else:
            rows = prompt_batch(policy, [prompts[i] for i in index], device)
            inputs = dict(input_ids=torch.cat([rows["input_ids"], completions], 1),
                          position_ids=torch.cat([rows["position_ids"], position], 2),
                          pixel_values=rows["pixel_values"], image_grid_thw=rows["image_grid_thw"])
        hidden = last_hidden(net, attention_mask=attn, **inputs)[1]  # (N, [L +] C, H), not the logits
        # the prompt's last position, then the completion's: `completion_logprobs` shifts them by one token
        hidden = torch.cat([last_prompt, hidden], 1) if shared else hidden[:, -c - 1:]  # (N, C + 1, H)
        logp = [checkpoint(chosen_logprobs, hidden[:, i:i + LOGIT_CHUNK + 1], net.lm_head.weight,
                           completions[:, i:i + LOGIT_CHUNK], args, policy, use_reentrant=False)
                for i in range(0, c, LOGIT_CHUNK)]  # each chunk's logits are recomputed in the backward
    if hasattr(net, "reshard") and not torch.is_grad_enabled():
        net.reshard()  # FSDP's root keeps its parameters after the forward for the backward: none comes
    return torch.cat(logp, 1)  # (N, C)


# ----------------------------------------------------------------------------------------------------
# GRPO: group advantage, k3 KL, clipped surrogate, token-mean


def group_advantages(rewards: torch.Tensor, group_size: int, eps=1e-6, scale_std=True) -> torch.Tensor:
    """GRPO's advantage (P*G,) of each rollout within its group, the G consecutive rollouts of one prompt;
    with scale_std=False, Dr. GRPO's.

    A_i = (r_i - mean(r)) / (std(r) + eps), the std the unbiased one (divides by G - 1).
    rewards [1, 1, 0, 0] -> [0.87, 0.87, -0.87, -0.87];
    a group [1, 1, 1, 1] -> [0, 0, 0, 0]: every rollout equal, no gradient at all. That vanishing
    signal is what VAS fights. scale_std=False gives Dr. GRPO's A_i = r_i - mean(r).
    """
    r = rewards.float().view(-1, group_size)  # (P, G)
    adv = r - r.mean(dim=1, keepdim=True)  # GRPO: centre within the group
    if scale_std:
        adv = adv / (r.std(dim=1, keepdim=True) + eps)  # GRPO: scale by the group's (unbiased) std
    return adv.view(-1)  # (P*G,)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimate of KL(pi || pi_ref) at each token, from the log-probs of tokens sampled from pi.

    With d = log pi_ref - log pi, k3 = exp(d) - d - 1: unbiased for tokens sampled from pi, and never
    negative. kl_k3(log 0.5, log 0.25): d = -ln 2, so
    exp(-ln 2) + ln 2 - 1 = 0.5 + 0.693 - 1 = 0.193.
    """
    d = ref_logp - logp  # (B, C)
    return torch.exp(d) - d - 1  # (B, C)


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      clip_low: float = 0.2, clip_high: float = 0.2) -> torch.Tensor:
    """PPO's clipped surrogate objective of each token (B, C), negated: a loss to minimise.

    With ratio rho = pi_theta / pi_old,
        l = max(-A_i * rho, -A_i * clip(rho, 1 - eps_low, 1 + eps_high))
    the pessimistic bound: once rho leaves the clip range in the direction A pushes it, the token's
    gradient is 0. On the first update pi_old = pi_theta, so rho = 1 in value and the clip is inactive, yet
    d rho / d theta = grad log pi: the gradient is exactly the policy gradient -A * grad log pi.
    rho = 1.5, A = +1 -> max(-1.5, -1.2) = -1.2, clipped, no gradient; rho = 1.5, A = -1 -> 1.5.
    """
    ratio = torch.exp(logp - old_logp)  # (B, C) logp not detached: the gradient flows through rho
    adv = advantages.unsqueeze(1)  # (B, 1)
    return torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - clip_low, 1 + clip_high))  # GRPO: (B, C)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, seq_mean: bool = False) -> torch.Tensor:
    """Mean of `values` (B, C) over the real tokens (mask 1); padding, whatever it holds, counts nowhere.

    Token-mean (default, as DAPO and Dr. GRPO; EasyR1 averages micro-batch means): every token of the batch
    weighs the same, so long completions are not down-weighted. seq_mean=True: each sequence's mean, then the
    mean over the sequences with a real token (a row of mask 0 is filler, not a sequence).
    values [[-1, -1, -1], [1, x, x]], mask [[1, 1, 1], [1, 0, 0]] -> (-1 - 1 - 1 + 1) / 4 = -0.5;
    per sequence 0.
    """
    if seq_mean:
        return ((values * mask).sum(1) / mask.sum(1).clamp(min=1)).sum() / mask.amax(1).sum().clamp(min=1)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, clip_low: float = 0.2, clip_high: float = 0.2,
              kl_coef: float = 0.01, seq_mean: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """The GRPO objective as a loss to minimise: per completion token, `clipped_surrogate` + beta_KL *
    `kl_k3`, then `masked_mean` over the batch's real tokens (Shao et al., 2024, eq. 3, averages per sequence,
    then over sequences: that is seq_mean=True; the token-mean default is DAPO's).
    Returns (loss, stats): clip_frac, kl and ratio, each averaged over real tokens.
    """
    real = mask.bool()  # padding positions may hold any value: keep them out of exp(), or inf * 0 = NaN
    logp, old_logp = logp.where(real, 0.0), old_logp.where(real, 0.0)
    per_token = clipped_surrogate(logp, old_logp, advantages, clip_low, clip_high)  # (B, C)
    kl = kl_k3(logp, ref_logp.where(real, 0.0)) if ref_logp is not None else torch.zeros_like(logp)  # (B, C)
    loss = masked_mean(per_token + kl_coef * kl, mask, seq_mean)  # GRPO: KL as a loss term, not in the reward
    ratio = torch.exp(logp - old_logp)  # (B, C) a token is clipped where max() took the clipped term:
    clipped = per_token > -advantages.unsqueeze(1) * ratio  # (B, C) the clipped term is the larger one
    stats = dict(clip_frac=clipped.float(), kl=kl, ratio=ratio)  # (B, C)
    return loss, {k: (v * mask).sum().item() / mask.sum().clamp(min=1).item() for k, v in stats.items()}


# ----------------------------------------------------------------------------------------------------
# Training loops: cold-start SFT, then GRPO with VAS (Algorithm 1)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_lr(step: int, total: int, warmup_frac: float = 0.1) -> float:
    """Multiplier of the peak lr: linear warm-up over the first 10% of steps, then cosine to 0."""
    warmup = max(1, int(warmup_frac * total))
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def sft(policy: Policy, examples: list[Example], args: Args, metrics_file, state: dict | None = None) -> None:
    """Cold-start SFT: token-mean cross-entropy on the assistant's tokens (rationale + end-of-turn) only."""
    model, device = policy.model, next(policy.model.parameters()).device
    if missing := [ex.id for ex in examples if not ex.rationale]:  # else it learns to answer unreasoned
        raise SystemExit(f"SFT trains on each sft row's `rationale` (<think>...</think><answer>...): "
                         f"{len(missing)} have none, first {missing[0]}; add them, or skip SFT (--init-from)")
    targets = [policy.tokenizer(ex.rationale, add_special_tokens=False)["input_ids"] + [policy.eos]
               for ex in examples]
    opt = torch.optim.AdamW(model.parameters(), lr=args.sft_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_lr(s, args.sft_steps))
    run = restore(state, model, opt, dict(step=0, order=np.random.permutation(len(examples)).tolist(), pos=0),
                  scheduler=sched)  # --resume: everything as it was after the checkpoint's step
    sft_args = dataclasses.replace(args, temperature=1.0)  # cross-entropy on the model's own distribution
    for step in (bar := progress(range(run["step"], args.sft_steps), "sft")):
        if run["pos"] + args.sft_batch > len(examples):  # a new shuffled epoch
            run.update(order=np.random.permutation(len(examples)).tolist(), pos=0)
        rows = shard(run["order"][run["pos"]:run["pos"] + args.sft_batch])  # this rank's share of the batch
        run["pos"] += args.sft_batch
        t0 = time.time()
        prompts = [policy.encode(examples[i]) for i in rows]
        ids = cat_padded([torch.tensor([targets[i]]) for i in rows], policy.pad).to(device)  # (B, C)
        mask = completion_mask(ids, policy.eos)  # (B, C) each target ends with its end-of-turn
        total, loss_sum = all_sum(mask.sum()), 0.0
        model.train()
        for part, part_prompts, _ in micro_batches(prompts, 1, args.micro_batch):
            logp = token_logprobs(model, policy, part_prompts, ids[part], mask[part], sft_args)  # (part, C)
            loss = -masked_mean(logp, mask[part])  # this part's token-mean
            loss_sum += loss.item() * backward(loss, mask[part].sum(), total)
        loss, _, grad_norm, _ = step_optimiser(model, opt, args, loss_sum, {})
        sched.step()
        bar.set_postfix(loss=f"{loss:.3f}")
        log(metrics_file, {"stage": "sft", "step": step, "sft/loss": loss, "sft/grad_norm": grad_norm,
                           "sft/lr": sched.get_last_lr()[0], "perf/step_s": time.time() - t0})
        end_of_step(args, model, opt, metrics_file, dict(run, step=step + 1, stage="sft"),
                    step + 1 == args.sft_steps, scheduler=sched)


def backward(loss: torch.Tensor, units: torch.Tensor, total: torch.Tensor) -> float:
    """Backward of one micro-batch's mean `loss` over its `units` (tokens, or sequences), such that the
    gradients of every part on every rank add up to that of the mean over the global batch's `total` units.
    Returns the weight the part's loss got.

    The weight is the part's share of the `total` units of the global batch, every rank's included: the
    parts then add up to the global batch's mean (as num_items_in_batch does in TRL). Ranks' gradients are
    averaged, so x K makes that their sum."""
    share = float(units / total)
    (loss * share * world()).backward()
    return share


def grpo_update(policy: Policy, opt, rollouts: Rollouts, adv: torch.Tensor, ref_logp: torch.Tensor | None,
                args: Args, old_logp: torch.Tensor | None = None) -> tuple[float, dict, float, bool]:
    """One GRPO optimiser step on this rank's rollouts: `grpo_loss` averaged over every completion token of
    the global batch, backward --micro-batch sequences at a time, then `step_optimiser`. Its stats are means
    over the batch's completion tokens, whatever the loss averages over. pi_old is `old_logp`, or (None, as
    with one update epoch) the training forward's own log-prob, detached: the ratio is then 1 exactly in any
    dtype and the gradient is the policy gradient. Not the sampler's: in bf16 the KV-cached decode and the
    teacher-forced forward differ, and a ratio off 1 would clip tokens on the first epoch."""
    model, G, ids_all, mask_all = policy.model, args.group_size, rollouts.completion_ids, rollouts.mask
    # what the loss averages over: every token of the global batch, or every real sequence with --seq-mean
    units = mask_all.amax(1) if args.seq_mean else mask_all.sum(1)  # (B*G,) filler rows: 0
    total, tokens, sums = all_sum(units.sum()), all_sum(mask_all.sum()), Counter()
    model.train()  # however the run started (from_pretrained returns eval mode): checkpointing needs it
    for rows, prompts, index in micro_batches(rollouts.prompts, G, args.micro_batch):
        c = max(1, int(mask_all[rows].sum(1).max()))  # cut to the longest completion
        mask = mask_all[rows, :c]  # (n, c)
        logp = token_logprobs(model, policy, prompts, ids_all[rows, :c], mask, args, True, index)  # (n, c)
        old = logp.detach() if old_logp is None else old_logp[rows, :c]  # (n, c) pi_old
        ref = None if ref_logp is None else ref_logp[rows, :c]  # (n, c)
        loss, stats = grpo_loss(logp, old, ref, adv[rows], mask, args.clip_low, args.clip_high, args.kl_coef,
                                args.seq_mean)  # GRPO: this part's token-mean
        # how far the sampler's log-probs are from pi_old's: rounding in float32, more in bf16 (TRL logs it)
        stats["sampler_gap"] = masked_mean((rollouts.logp[rows, :c] - old).abs(), mask).item()
        share = backward(loss, units[rows].sum(), total)  # the loss's weight; the stats' is the tokens'
        sums.update({k: v * float(mask.sum() / tokens) for k, v in stats.items()}, loss=loss.item() * share)
    return step_optimiser(model, opt, args, sums.pop("loss"), sums)


def grpo_step(policy: Policy, opt, rollouts: Rollouts, ref_logp: torch.Tensor | None, args: Args) -> tuple:
    """One GRPO step on a batch of rewarded rollouts (Algorithm 1, lines 18-20). Returns the last pass's loss,
    stats and gradient norm, and how many passes were skipped.

    The group advantages of the rewards (format + accuracy), then --update-epochs `grpo_update` passes over
    the same batch, the first on-policy."""
    adv = group_advantages(rollouts.rewards, args.group_size, scale_std=args.scale_std)  # (B*G,)
    adv = adv.to(rollouts.mask.device)
    # pi_old for every epoch: the first epoch's own forward, or with more epochs one pass before them
    old = frozen_logprobs(policy.model, policy, rollouts, args) if args.update_epochs > 1 else None
    skipped = 0
    for _ in range(args.update_epochs):  # GRPO: 1 = on-policy; more reuse the batch and the clip acts
        loss, stats, grad_norm, stepped = grpo_update(policy, opt, rollouts, adv, ref_logp, args, old)
        skipped += not stepped  # a non-finite loss or gradient: skipped, training goes on
    return loss, stats, grad_norm, skipped


@torch.no_grad()
def frozen_logprobs(net, policy: Policy, rollouts: Rollouts, args: Args) -> torch.Tensor:
    """log pi of every completion token (B*G, C) under `net` without gradient, --micro-batch rows at a time:
    pi_ref for the KL term, or pi_old before several update epochs."""
    ids, mask = rollouts.completion_ids, rollouts.mask
    parts = micro_batches(rollouts.prompts, args.group_size, args.micro_batch)
    return torch.cat([token_logprobs(net, policy, prompts, ids[rows], mask[rows], args, True, index)
                      for rows, prompts, index in parts])


def rl(policy: Policy, pool: list[Example], test: list[Example], args: Args, metrics_file, state=None):
    """GRPO with prompts drawn by VAS (--vas) or by a uniform shuffle: the paper's Algorithm 1, whose line
    numbers the comments give. Each step (`rl_step`): every T_update steps score the pool (VPS), draw B
    prompts (lambda*B by VPS, the rest uniform), roll out G completions of each, reward them, the update."""
    model = policy.model
    ref = frozen_copy(model, args) if args.kl_coef > 0 else None  # pi_ref: the policy as RL begins
    model.model.visual.requires_grad_(args.freeze_vision == "none")  # RL's noisy updates would wear it away
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.rl_lr,
                            weight_decay=args.weight_decay)
    # lambda = 0 without VAS: every prompt from the epoch shuffle; decay: the posterior, None: the paper's VAS
    sampler = vas.VarianceAwareSampler(len(pool), args.prompts_per_step, args.mixture_ratio * args.vas,
                                       args.seed, args.alpha, args.beta, args.diversity, prior=args.vas_prior,
                                       decay=args.vas_decay if args.vas and args.vas_online else None,
                                       select=args.vas_select)
    counters = dict(step=0, skipped=0, refresh_s=0.0, rollouts=0, dropped=0, wall_s=0.0, evaluated=0)
    run = restore(state, model, opt, counters, sampler=sampler)  # checkpointed, so resume goes on exactly
    for step in (bar := progress(range(run["step"], args.rl_steps), "rl")):  # line 6
        if 0 < args.rollout_budget <= run["rollouts"]:  # reached by the step before, or by the run resumed
            break
        before = run["rollouts"]  # the rollout clock: training, VAS scoring and dropped groups alike
        metrics = rl_step(policy, ref, opt, sampler, pool, run, step, args)
        last = step + 1 == args.rl_steps or 0 < args.rollout_budget <= run["rollouts"]
        due = (run["rollouts"] // args.eval_rollouts > before // args.eval_rollouts if args.eval_rollouts
               else args.eval_every and (step + 1) % args.eval_every == 0)
        if due or last:
            metrics.update(evaluate(policy, test, args))
            run["evaluated"] = step + 1
        log(metrics_file, metrics)
        bar.set_postfix(acc=f"{metrics['reward/accuracy']:.2f}",
                        zero_std=f"{metrics['reward/zero_std_frac']:.2f}")
        end_of_step(args, model, opt, metrics_file, dict(run, step=step + 1, stage="rl"), last,
                    sampler=sampler)


def rl_step(policy: Policy, ref, opt, sampler: vas.VarianceAwareSampler, pool: list[Example], run: dict,
            step: int, args: Args) -> dict:
    """One RL step (Algorithm 1, lines 2-20). Advances `run`'s counters, the rollout clock among them, and
    returns the step's metrics, over every rollout it generated, dropped groups too (README: each key)."""
    G, t_start = args.group_size, time.time()
    refresh = bool(args.vas and args.num_scoring) and step % (args.refresh_every or 10 ** 9) == 0  # 0: step 0
    if refresh:  # lines 2-5 (step 0), 7-11: VAS: N rollouts of every prompt -> P, OVS, TDS, VPS
        score_pool(policy, pool, sampler, args)
    t_draw = time.time()
    rollouts, drawn, outcomes, kept = draw_groups(policy, pool, sampler, args)  # lines 12-17: B x G
    t_sampled = time.time()
    ref_logp = frozen_logprobs(ref, policy, rollouts, args) if kept and ref is not None else None  # (B*G, C)
    t_ref = time.time()
    # lines 18-20: GRPO advantages, loss, update; none when dynamic sampling kept no group
    update = grpo_step(policy, opt, rollouts, ref_logp, args) if kept else None
    if args.vas and args.vas_online:  # VAS (beyond the paper): the posterior fed by training groups
        sampler.update(drawn, outcomes.correct.view(-1, G).numpy(), outcomes.responses, group=G)
    # every rollout generated counts: training, dropped groups, VAS scoring (each rank its padded share)
    generated = len(outcomes.rewards) + refresh * len(shard(pool)) * world() * args.num_scoring
    (loss, stats, grad_norm, skipped), now = update or (0.0, {}, 0.0, 0), time.time()
    run.update(rollouts=run["rollouts"] + generated, dropped=run["dropped"] + len(outcomes.rewards) - kept*G,
               skipped=run["skipped"] + skipped, wall_s=run["wall_s"] + now - t_start,
               refresh_s=run["refresh_s"] + (t_draw - t_start if refresh else 0.0))
    n_tokens, rewards, correct = outcomes.lengths.sum().item(), outcomes.rewards, outcomes.correct
    return {"stage": "rl", "step": step, **({"vas/refresh_s": t_draw - t_start} if refresh else {}),
            "reward/mean": rewards.mean().item(), "reward/accuracy": correct.mean().item(),
            "reward/format": (rewards - correct).mean().item(),  # reward = format + accuracy
            "reward/zero_std_frac": (rewards.view(-1, G).std(1) == 0).float().mean().item(),
            "reward/completion_len": n_tokens / len(rewards), "train/skipped_steps": run["skipped"],
            **({"train/loss": loss, "train/grad_norm": grad_norm} if update else {}),  # no update: no train/
            **{f"train/{k}": v for k, v in stats.items()}, "vas/vps_mean": float(sampler.scores.mean()),
            **({"vas/dead_drawn": float(np.mean([data.dead_by_construction(pool[i]) for i in drawn]))}
               if args.dead_share else {}),  # the toy's dead pools: drawn prompts dead by construction
            "vas/refresh_s_total": run["refresh_s"], "rollouts/total": run["rollouts"],
            "rollouts/dropped": run["dropped"], "perf/wall_s": run["wall_s"], "perf/step_s": now - t_draw,
            "perf/sample_s": t_sampled - t_draw, "perf/ref_s": t_ref - t_sampled, "perf/update_s": now-t_ref,
            "perf/rollout_tokens_per_s": n_tokens / (t_sampled - t_draw)}


@dataclasses.dataclass
class Outcomes:
    """What every rank keeps of the groups a step drew (every rank's, in the order drawn, dropped groups too):
    VAS and the metrics read it. The batch trained on (`Rollouts`) holds this rank's kept groups only."""
    rewards: torch.Tensor  # (n*G,) format + accuracy
    correct: torch.Tensor  # (n*G,) accuracy only: the verifier V(x, y) of VAS
    lengths: torch.Tensor  # (n*G,) completion tokens, the end-of-turn included
    responses: list[list[list[int]]]  # per group, its G responses' token ids without the end-of-turn


def joined(parts: list[Outcomes]) -> Outcomes:
    """Several Outcomes as one, in order."""
    return Outcomes(*(torch.cat(v) if torch.is_tensor(v[0]) else sum(v, [])
                      for v in zip(*(vars(p).values() for p in parts))))


def draw_groups(policy: Policy, pool: list[Example], sampler: vas.VarianceAwareSampler, args: Args):
    """B prompts and G rollouts each (Algorithm 1, lines 12-17): this rank's Rollouts to train on, every
    prompt id drawn, every rank's Outcomes and the number of groups kept. With --filter-groups K, DAPO's
    dynamic sampling (Yu et al., 2025, Sec. 3.2): a group whose G rewards all agree has advantage 0 and
    teaches nothing, so it is dropped and another batch drawn, up to K batches, until B groups remain. The
    first groups to differ, in the order drawn, are kept: the same on every rank, as in one process."""
    G, B = args.group_size, args.prompts_per_step
    parts, drawn, outcomes, kept = [], [], [], 0
    for _ in range(max(1, args.filter_groups)):
        ids = sampler.next_batch()  # VAS: floor(lambda*B) by VPS, the rest uniform; same on every rank
        rollouts = rollout(policy, [pool[i] for i in shard(ids)], args, group=G)  # G rewarded rollouts each
        # every rank needs every outcome: the VAS sampler and the kept groups must be the same on all of them
        ours = joined(gather(Outcomes(rollouts.rewards, rollouts.correct, rollouts.mask.sum(1),
                                      _responses(rollouts.completions, policy, G))))
        differ = ours.rewards.view(-1, G).std(1) > 0  # (B,)
        keep = differ.nonzero()[:B - kept, 0].tolist() if args.filter_groups else list(range(B))  # DAPO
        per_rank = B // world()  # shard() gave each rank a contiguous block of this many groups
        parts.append((rollouts, [g - rank() * per_rank for g in keep if g // per_rank == rank()]))
        drawn, kept, outcomes = drawn + ids, kept + len(keep), outcomes + [ours]
        if kept == B:
            break
    passes = max(gather(sum(len(k) for _, k in parts)))  # FSDP: every rank runs as many forward passes
    return select(parts, G, passes, policy.pad), drawn, joined(outcomes), kept


def select(parts: list[tuple[Rollouts, list[int]]], group: int, groups: int, pad: int) -> Rollouts:
    """The chosen groups of several Rollouts as one batch of `groups` groups, padded where fewer were chosen
    with copies of the last group whose mask is 0: they weigh nothing in the loss."""
    n_pad = groups - sum(len(keep) for _, keep in parts)
    parts = parts + [(parts[-1][0], [len(parts[-1][0].prompts) - 1] * n_pad)]
    rows = [[g * group + i for g in keep for i in range(group)] for _, keep in parts]  # each part's rows
    fields = {"prompts": [r.prompts[g] for r, keep in parts for g in keep]}  # one a group
    for name in ("completions", "texts"):  # lists, one a row
        fields[name] = [getattr(r, name)[i] for (r, _), part_rows in zip(parts, rows) for i in part_rows]
    for name in ("completion_ids", "mask", "logp", "rewards", "correct", "formats"):  # tensors, one a row
        picked = [getattr(r, name)[part_rows] for (r, _), part_rows in zip(parts, rows)]
        fields[name] = cat_padded(picked, pad if name == "completion_ids" else 0)
    fields["mask"][len(fields["mask"]) - n_pad * group:] = 0
    return Rollouts(**fields)


def cat_padded(tensors: list[torch.Tensor], value: float) -> torch.Tensor:
    """Tensors (n_i, C_i) joined along the rows, each padded on the right with `value` to the widest C."""
    if tensors[0].dim() == 1:  # (n_i,): nothing to pad
        return torch.cat(tensors)
    width = max(t.shape[1] for t in tensors)
    return torch.cat([torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value) for t in tensors])


@torch.no_grad()
def rollout_all(policy: Policy, examples: list[Example], args: Args, group: int, greedy: bool = False,
                chunk: int = 64, desc: str = "") -> tuple[list, list, list]:
    """`group` rollouts of every example, `chunk` examples a call, each rank its share, gathered in order: per
    example its outcomes (0/1), format scores and responses (token ids, end-of-turn and padding dropped)."""
    correct, formats, responses, ours = [], [], [], shard(examples)
    for s in progress(range(0, len(ours), chunk), desc, leave=False):
        rollouts = rollout(policy, ours[s:s + chunk], args, group, greedy)
        correct += rollouts.correct.view(-1, group).tolist()
        formats += rollouts.formats.view(-1, group).tolist()
        responses += _responses(rollouts.completions, policy, group)
    return gather_all((correct, formats, responses), len(examples))


def score_pool(policy: Policy, pool: list[Example], sampler: vas.VarianceAwareSampler, args: Args) -> None:
    """VAS: N rollouts per prompt of the pool -> pass rate, diversity -> VPS (Algorithm 1, lines 3-4, 9)."""
    chunk = max(1, 256 // args.num_scoring)  # prompts a sampling call: 256 rollouts
    correct, _, responses = rollout_all(policy, pool, args, args.num_scoring, chunk=chunk, desc="vas scoring")
    # TDS: the paper's over all N; for the posterior over G at a time, as training groups are scored
    sampler.score_pool(np.array(correct), responses, group=args.group_size if args.vas_online else None)


def _responses(completions: list[list[int]], policy: Policy, group: int) -> list[list[list[int]]]:
    """Group completions per prompt, dropping the end-of-turn: diversity is measured on real tokens only."""
    clean = [[t for t in c if t not in (policy.eos, policy.pad)] for c in completions]
    return [clean[i:i + group] for i in range(0, len(clean), group)]


def evaluate(policy: Policy, examples: list[Example], args: Args, desc: str = "eval") -> dict[str, float]:
    """Greedy decoding on the held-out split: accuracy overall and per family, format rate."""
    correct, formats, _ = rollout_all(policy, examples, args, 1, greedy=True, desc=desc)  # (n, 1) each
    return {"eval/accuracy": float(np.mean(correct)), "eval/format": float(np.mean(formats)),
            **{f"eval/accuracy_{f}": float(np.mean([c for c, e in zip(correct, examples) if e.family == f]))
               for f in sorted({e.family for e in examples})}}


# ----------------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    t_start = time.time()
    splits = data.load_data(args.data) if args.data else data.toy_splits(args)
    if args.export_data:  # the splits in MMR1's schema: to see the format, or to start one's own data from
        return print(f"wrote {data.export_data(splits, args.export_data)}") or {}
    device = setup_device(args)
    ckpt = open_run_dir(args)  # sets args.out; the checkpoint to continue from (--resume), or None
    stage, sft_dir = ckpt["stage"] if ckpt else "", os.path.join(args.out, "sft")
    sft_done = bool(args.resume) and os.path.isdir(sft_dir)  # then RL starts from the run's SFT checkpoint
    set_seed(args.seed)
    # the tiny model's words: the questions' and the SFT targets' (the dead pools' "octagon" is none of them)
    texts = [e.question + " " + e.rationale * (name == "sft") for name in splits for e in splits[name]]
    policy = load_policy(dataclasses.replace(args, init_from=sft_dir) if sft_done else args, texts)
    summary = {"model/parameters": sum(p.numel() for p in policy.model.parameters()),
               "eval/blind_baseline": data.blind_baseline(splits["sft"], splits["test"])}
    prepare(policy, args, device, splits["test"][0])
    with stop_on_signal(), open_metrics(args, ckpt) as metrics_file:
        t0 = time.time()
        if args.sft_steps and not args.init_from and not sft_done:
            sft(policy, splits["sft"], args, metrics_file, state=ckpt if stage == "sft" else None)
            policy.save(sft_dir)
        elif stage == "sft":  # SFT had ended: RL begins from the random state it had then
            set_rng_state(ckpt["rng"][rank()])
        summary["time/sft_s"], t0 = time.time() - t0, time.time()
        if stage != "rl":  # else the evaluation after SFT is in metrics.jsonl already
            after_sft = evaluate(policy, splits["test"], args, "eval after sft")
            log(metrics_file, {"stage": "sft_done", **after_sft})
        if args.rl_steps:
            rl(policy, splits["rl"], splits["test"], args, metrics_file,
               state=ckpt if stage == "rl" else None)
        summary["time/rl_s"] = time.time() - t0
    for stage, name in (("sft_done", "after_sft"), ("rl", "after_rl")):  # also when a finished run is resumed
        summary.update({k.replace("accuracy", f"accuracy_{name}"): v
                        for k, v in last_eval(args.out, stage).items() if k.startswith("eval/accuracy")})
    policy.save(os.path.join(args.out, "final"))
    summary.update({"time/total_s": time.time() - t_start,  # ru_maxrss: kB on Linux
                    "memory/peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    if rank() == 0:
        json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=1)
        print(f"\n{'metric':<40} value", *(f"{k:<40} {v:.3f}" if isinstance(v, float) else f"{k:<40} {v}"
                                           for k, v in summary.items()), sep="\n")
        print(f"\nwrote {args.out}/: metrics.jsonl, summary.json, final/ (assets/curves.py {args.out})")
    if dist.is_initialized():
        dist.barrier()  # rank 0 may still be writing: no rank tears the group down under another
        dist.destroy_process_group()
    return summary


# ----------------------------------------------------------------------------------------------------
# Plumbing: many processes (torchrun), checkpoints and resume, logs. Nothing of the method below.


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def shard(items: list) -> list:
    """This rank's contiguous block of items (whole prompts, so whole groups), padded with the last item so
    that every rank runs as many forward passes: FSDP's all-gathers need all ranks. gather_all() undoes it."""
    per = -(-len(items) // world())
    return [items[min(i, len(items) - 1)] for i in range(rank() * per, (rank() + 1) * per)]


def gather(obj) -> list:
    """obj of every rank, in rank order."""
    out = [obj] * world()
    if world() > 1:
        dist.all_gather_object(out, obj)
    return out


def gather_all(lists: tuple[list, ...], n: int) -> list[list]:
    """Each of `lists` joined over the ranks in rank order, cut to the n items that shard() handed out."""
    return [[x for per_rank in column for x in per_rank][:n] for column in zip(*gather(lists))]


def all_sum(x: torch.Tensor) -> torch.Tensor:
    if world() > 1:  # nccl reduces on the GPU, gloo on the CPU
        x = x.to("cuda" if dist.get_backend() == "nccl" else "cpu", copy=True)
        dist.all_reduce(x)
    return x


def step_optimiser(model, opt, args: Args, loss: float, stats: dict) -> tuple:
    """Average the gradients over the ranks, clip their norm to 1 and step, unless the loss or the gradient
    is not finite. Returns loss and stats summed over ranks, the norm before clipping, whether it stepped."""
    if world() > 1 and not args.fsdp:  # replicated weights: all-reduce, as DDP would (FSDP2 reduces itself)
        for grad in [p.grad for p in model.parameters() if p.grad is not None]:
            dist.all_reduce(grad)
            grad /= world()
    loss, *values = all_sum(torch.tensor([loss, *stats.values()], dtype=torch.float64)).tolist()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm  # FSDP: a DTensor
    stepped = bool(torch.isfinite(grad_norm)) and math.isfinite(loss)
    if stepped:
        opt.step()
    opt.zero_grad(set_to_none=True)
    return loss, dict(zip(stats, values)), grad_norm.item(), stepped


def setup_device(args: Args) -> str:
    """This process's device; under torchrun it also joins the process group (nccl on GPU, gloo on CPU)."""
    device = args.device if args.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    if "WORLD_SIZE" in os.environ and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            device = f"cuda:{os.environ['LOCAL_RANK']}"
            torch.cuda.set_device(device)
    return device


def run_dir(args: Args) -> str:
    """--resume, --out or runs/<time>: rank 0's name, for all processes (clocks may be a second apart)."""
    return gather(args.resume or args.out or os.path.join("runs", time.strftime("%Y%m%d-%H%M%S")))[0]


def prepare(policy: Policy, args: Args, device: str, example: Example) -> None:
    """Move the model, turn on checkpointing and freezing, and under torchrun with --fsdp shard it."""
    if world() > 1:  # the model is the same on every rank; the sampling noise must not be
        torch.manual_seed(args.seed + rank())
    policy.model.to(device)
    if args.grad_checkpointing:
        policy.model.activation_checkpointing_enable()
    policy.model.model.visual.requires_grad_(args.freeze_vision != "all")  # "all": frozen in SFT too
    if args.fsdp:
        fsdp_shard(policy.model, args)
        with torch.no_grad():  # FSDP finds its root on the first forward, which sampling's would not be
            eos = torch.tensor([[policy.eos]], device=next(policy.model.parameters()).device)
            token_logprobs(policy.model, policy, [policy.encode(example)], eos, torch.ones_like(eos), args)


def fsdp_shard(model: torch.nn.Module, args: Args) -> torch.nn.Module:
    """FSDP2: each decoder layer, vision block, the vision tower and the rest are sharded over the ranks. The
    root (embeddings, lm_head) keeps its parameters from the forward to the backward, which reshards it: the
    log-probs apply its lm_head after the forward (`token_logprobs` reshards it when no backward comes)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard  # imported here: it takes a second
    # bf16: parameters gathered in bf16 for compute, gradients reduced in fp32 into the fp32 shards
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if args.dtype == "bfloat16" else None,
                              reduce_dtype=torch.float32)
    for block in [*model.model.language_model.layers, *model.model.visual.blocks, model.model.visual]:
        fully_shard(block, mp_policy=mp)
    return fully_shard(model, reshard_after_forward=False, mp_policy=mp)


@contextlib.contextmanager
def gathered(model: torch.nn.Module):
    """Under FSDP, each module's parameters all-gathered once, at its first forward, and kept through the rest
    (a sampling call runs one forward per token), then resharded. Without FSDP, nothing."""
    fsdp = [m for m in model.modules() if hasattr(m, "set_reshard_after_forward")]
    for m in fsdp:
        m.set_reshard_after_forward(False, recurse=False)
    try:
        yield
    finally:  # whatever raised inside: the shards as fsdp_shard left them
        for m in fsdp:
            m.set_reshard_after_forward(m is not model, recurse=False)
            m.reshard()


def full_state(model: torch.nn.Module, rank0_only: bool = True) -> dict:
    """The whole state dict, gathered from the shards under FSDP (call it on every rank)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=rank0_only))


def frozen_copy(model: torch.nn.Module, args: Args) -> torch.nn.Module:
    """pi_ref, a frozen copy of the policy that computes what the policy computes at RL step 0, bit for bit,
    bf16 included: the weights of its Linear layers in the compute dtype (autocast casts the policy's to it at
    every call: the same bits, held once), every other tensor fp32 as the policy's (norms, embeddings: a bf16
    copy of those would round the residual stream otherwise, a spurious KL). Under FSDP both gather bf16
    parameters alike; FSDP modules cannot be deep-copied, and a whole copy on every rank would not fit: the
    copy is built on the meta device, sharded the same way, and each rank copies its own shards into it."""
    dtype = getattr(torch, args.dtype)
    if not args.fsdp:
        ref = copy.deepcopy(model).eval().requires_grad_(False)
        for m in ref.modules():  # a Linear tied to the embedding (the tiny model's lm_head) stays fp32
            if isinstance(m, torch.nn.Linear) and m.weight is not ref.get_input_embeddings().weight:
                m.to(dtype)
        return ref
    from transformers import Qwen2_5_VLForConditionalGeneration
    with torch.device("meta"):  # shapes only, no memory
        ref = fsdp_shard(Qwen2_5_VLForConditionalGeneration._from_config(model.config, dtype=dtype), args)
    ref.to_empty(device=next(model.parameters()).device)
    copies, originals = (dict([*m.named_parameters(), *m.named_buffers()]) for m in (ref, model))
    if copies.keys() != originals.keys():
        raise RuntimeError(f"pi_ref and the policy differ in {sorted(copies.keys() ^ originals.keys())[:5]}")
    with torch.no_grad():  # DTensor to DTensor by name: this rank's shard, cast to the compute dtype
        for name, tensor in copies.items():
            tensor.copy_(originals[name])
    return ref.eval().requires_grad_(False)


STOP = []  # signals received: the loops end their step, write a checkpoint and exit


@contextlib.contextmanager
def stop_on_signal():
    """Ctrl-C (SIGINT) and SIGTERM ask to stop after the current step: stopping between steps, never inside
    one, is what lets --resume continue exactly."""
    def request(signum, frame):
        STOP.append(signum)
        print(f"\nsignal {signum}: stopping after this step, once a checkpoint is written", file=sys.stderr)
    STOP.clear()
    main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM) if main_thread}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        STOP.clear()


def set_rng_state(state: dict) -> None:
    name, keys, *rest = state["numpy"]
    random.setstate(state["python"])
    np.random.set_state((name, np.array(keys, np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def restore(state: dict | None, model, opt, run: dict, **objects) -> dict:
    """A loop's state at its start: `run` as given, or, with a checkpoint (--resume), the weights, optimiser,
    `objects` (scheduler, sampler: anything with load_state_dict), this rank's RNGs and `run`'s values as
    they were after the checkpoint's step (FSDP cuts out its shards)."""
    if state is None:
        return run
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
                   options=StateDictOptions(full_state_dict=True))
    for name, obj in objects.items():
        obj.load_state_dict(state[name])
    set_rng_state(state["rng"][rank()])
    return {k: state[k] for k in run}


def end_of_step(args: Args, model, opt, metrics_file, run: dict, last: bool = False, **objects) -> None:
    """After each step: every --save-every steps, at the last step and when a signal asked to stop, write
    checkpoint.pt, all it takes to go on exactly: weights, optimiser, `objects`' state dicts, every rank's
    RNGs, the loop's `run` values and the length of metrics.jsonl. Then stop, if asked to."""
    stop = all_sum(torch.tensor(float(len(STOP)))).item() > 0  # the ranks stop together
    if args.out and (stop or last or args.save_every and run["step"] % args.save_every == 0):  # else: Python
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict
        weights, optimiser = get_state_dict(model, opt, options=StateDictOptions(full_state_dict=True,
                                                                                 cpu_offload=True))
        name, keys, *rest = np.random.get_state()
        rng = dict(python=random.getstate(), numpy=[name, keys.tolist(), *rest], torch=torch.get_rng_state(),
                   cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])
        # tensors, lists and numbers only, so it loads with weights_only=True
        state = dict(run, **{k: obj.state_dict() for k, obj in objects.items()}, model=weights,
                     optimizer=optimiser, rng=gather(rng), metrics_bytes=metrics_file.tell())
        if rank() == 0:  # under a temporary name, then renamed: never half-written
            torch.save(state, os.path.join(args.out, "checkpoint.tmp"))
            os.replace(os.path.join(args.out, "checkpoint.tmp"), os.path.join(args.out, "checkpoint.pt"))
    if stop:
        print(f"stopped after step {run['step']}; go on: --resume {args.out} (same flags)", file=sys.stderr)
        raise SystemExit(130)


# flags a continued run may change: how long it runs, how often it logs and saves, where and on what (bit-
# exact on the same device and sharding; --micro-batch and --rollout-batch change sums and sampling draws)
MAY_DIFFER_ON_RESUME = ("out", "resume", "rl_steps", "rollout_budget", "eval_every", "eval_rollouts",
                        "save_every", "device", "fsdp")


def open_run_dir(args: Args) -> dict | None:
    """Names the run directory (args.out) and returns the checkpoint to resume from, if any. Before anything
    is written, refuses to start a run where one is already, or to resume one with flags other than its own or
    with another number of processes."""
    args.out = run_dir(args)
    path, ckpt = os.path.join(args.out, "args.json"), os.path.join(args.out, "checkpoint.pt")
    if not os.path.exists(path):
        if args.resume:
            raise SystemExit(f"--resume {args.out}: no args.json there, so no run to continue")
        return None
    saved, now = json.load(open(path)), dataclasses.asdict(args)
    # a flag newer than the saved run counts as its default, which does what the older code did
    diff = ", ".join(f"--{k.replace('_', '-')} {saved.get(k)!r} there, {now[k]!r} now" for k in now
                     if k not in MAY_DIFFER_ON_RESUME and saved.get(k, getattr(Args, k)) != now[k])
    if not args.resume:
        raise SystemExit(f"--out {args.out} holds {f'a different run ({diff})' if diff else 'a run'}; "
                         f"continue it with --resume {args.out}, or choose another --out")
    if diff:
        raise SystemExit(f"--resume {args.out}: that run had other flags ({diff}); resume with its own")
    state = torch.load(ckpt, weights_only=True, mmap=True) if os.path.exists(ckpt) else None
    if state and state["stage"] == "rl" and state["evaluated"] < state["step"] and (  # final/ newer than
            state["step"] >= args.rl_steps or 0 < args.rollout_budget <= state["rollouts"]):  # summary.json
        raise SystemExit(f"--resume {args.out}: past --rl-steps {args.rl_steps} or --rollout-budget "
                         f"{args.rollout_budget} at step {state['step']}, never evaluated since: raise them")
    if state and len(state["rng"]) != world():
        n = len(state["rng"])
        raise SystemExit(f"--resume {args.out}: it ran as {n} processes; use torchrun --nproc_per_node {n}")
    return state


def open_metrics(args: Args, ckpt: dict | None):
    """metrics.jsonl, opened to append, cut back to where a resumed run's checkpoint was written."""
    if rank() > 0:  # rank 0 writes, args.json too
        return open(os.devnull, "a")
    os.makedirs(args.out, exist_ok=True)
    json.dump(dataclasses.asdict(args), open(os.path.join(args.out, "args.json"), "w"), indent=1)
    path = os.path.join(args.out, "metrics.jsonl")
    with open(path, "a") as f:
        f.truncate(ckpt["metrics_bytes"] if ckpt else 0)
    return open(path, "a")


def log(metrics_file, metrics: dict) -> None:
    metrics_file.write(json.dumps(metrics) + "\n")
    metrics_file.flush()


def last_eval(out: str, stage: str) -> dict:
    """The newest evaluation of `stage` in metrics.jsonl, made in this run or before a --resume."""
    if rank() > 0:
        return {}
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl")) if f'"{stage}"' in line]
    return next((r for r in reversed(rows) if "eval/accuracy" in r), {})


def progress(items, desc: str, **kwargs):
    return tqdm(items, desc=desc, dynamic_ncols=True, disable=rank() > 0, **kwargs)  # rank 0 shows progress


if __name__ == "__main__":
    main()
    gc.collect()  # FSDP modules hold process groups in reference cycles: freed at exit, gloo may abort
