"""assets/qwen_like.py: a random checkpoint in the format of Qwen2.5-VL-3B/7B-Instruct, and mmr1 run on it."""
import json
import os
import subprocess
import sys

import pytest
import torch

import data
import mmr1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
import qwen_like  # noqa: E402

# the published ids (Qwen2.5's tokenizer_config.json)
QWEN_IDS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|object_ref_start|>": 151646,
            "<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|vision_pad|>": 151654, "<|image_pad|>": 151655,
            "<|video_pad|>": 151656, "<tool_call>": 151657, "<|file_sep|>": 151664}
# the CPU run of the test: the presets' flags (bf16, checkpointing, frozen vision) at toy sizes
PRESET_FLAGS = ["--dtype", "bfloat16", "--grad-checkpointing", "--freeze-vision", "all"]
SMALL = ["--rl-steps", "1", "--prompts-per-step", "2", "--group-size", "2", "--max-new-tokens", "6", "--num-sft", "8",
         "--num-rl", "4", "--num-test", "4", "--image-size", "56", "--eval-every", "0"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """Written by the command line: python assets/qwen_like.py --size test --out DIR."""
    path = tmp_path_factory.mktemp("qwen") / "ckpt"
    proc = subprocess.run([sys.executable, "assets/qwen_like.py", "--size", "test", "--out", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def policy(ckpt):
    """Loaded the way the CLI loads --model DIR."""
    return mmr1.load_policy(mmr1.parse_args(["--model", str(ckpt), *PRESET_FLAGS, "--image-size", "56"]), texts=[])


def test_special_tokens_sit_at_qwens_ids(policy):
    tok = policy.tokenizer
    assert {t: tok.convert_tokens_to_ids(t) for t in QWEN_IDS} == QWEN_IDS
    assert len(tok) == 151665  # 151,643 ordinary + 22 added, as published
    assert (policy.eos, policy.pad) == (151645, 151643)
    assert tok.decode([151652, 151655, 151653], skip_special_tokens=True) == ""


def test_toy_text_round_trips_with_whole_tags(policy):
    ex = data.make_geometry_dataset(1, seed=3, size=56)[0]
    ids = policy.tokenizer(ex.rationale, add_special_tokens=False)["input_ids"]
    assert max(ids) < 151643 and policy.tokenizer.unk_token_id not in ids
    assert mmr1.reward(policy.tokenizer.decode(ids + [policy.eos], skip_special_tokens=True), ex.answer) == (1, 1, 2)


def test_model_has_the_published_vocabulary_rows_and_config(ckpt, policy):
    assert policy.model.get_input_embeddings().weight.shape == (151936, 64)
    assert policy.model.lm_head.weight is policy.model.get_input_embeddings().weight  # tied, as the 3B
    config = json.load(open(ckpt / "config.json"))  # the flat 2025 format, as published
    assert config["rope_scaling"] == {"type": "mrope", "mrope_section": [2, 3, 3]} and config["vocab_size"] == 151936
    assert (config["image_token_id"], config["vision_start_token_id"]) == (151655, 151652)


def test_generation_and_preprocessor_configs_are_the_published_ones(ckpt, policy):
    from transformers import GenerationConfig
    gen = GenerationConfig.from_pretrained(ckpt)
    assert (gen.do_sample, gen.temperature, gen.repetition_penalty) == (True, 1e-6, 1.05)
    assert gen.eos_token_id == [151645, 151643]
    assert json.load(open(ckpt / "preprocessor_config.json"))["max_pixels"] == 12845056
    assert (policy.processor.size["shortest_edge"], policy.processor.size["longest_edge"]) == (3136, 12845056)


def test_chat_template_is_qwens(policy):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What shape is shown?"}]}]
    assert policy.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>What shape is shown?<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("size,params,trainable,tied", [("3B", 3_754_622_976, 3_085_938_688, True),
                                                        ("7B", 8_292_166_656, 7_615_616_512, False)])
def test_published_sizes_build_on_the_meta_device(size, params, trainable, tied):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    with torch.device("meta"):  # shapes only, no memory
        model = Qwen2_5_VLForConditionalGeneration._from_config(Qwen2_5_VLConfig(**qwen_like.qwen_config(size)))
    assert all(p.is_meta for p in model.parameters())
    vision = sum(p.numel() for p in model.model.visual.parameters())
    assert sum(p.numel() for p in model.parameters()) == params  # ~3.75B / ~8.29B
    assert sum(p.numel() for p in model.parameters()) - vision == trainable  # with --freeze-vision
    assert (model.lm_head.weight is model.get_input_embeddings().weight) == tied


def test_cli_runs_on_the_checkpoint_with_the_presets_flags(ckpt, tmp_path):
    proc = subprocess.run([sys.executable, "mmr1.py", "--model", str(ckpt), *PRESET_FLAGS, *SMALL, "--sft-steps", "2",
                           "--sft-batch", "2", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "summary.json").exists()


def test_bench_runs_the_preset_with_init_from_on_the_cpu(tmp_path):
    """The GPU benchmark's code on the CPU: `--model Qwen2.5-VL-3B --init-from CKPT`, preset settings, our weights."""
    result = qwen_like.bench("test", str(tmp_path), [*SMALL, "--num-scoring", "2", "--micro-batch", "2"], device="cpu")
    args = json.load(open(tmp_path / "args.json"))
    assert args["model"] == "Qwen/Qwen2.5-VL-3B-Instruct" and (args["dtype"], args["rl_lr"]) == ("bfloat16", 1e-6)
    assert result["summary"]["model/parameters"] == 9_871_232  # the test checkpoint, not the hub's 3B
    assert len(result["perf/step_s"]) == 1 and result["cuda/max_memory_allocated_gb"] is None
    rl = [json.loads(line) for line in open(tmp_path / "metrics.jsonl") if '"rl"' in line]
    assert "vas/refresh_s" in rl[0]  # VAS scored the pool
