"""The sampler and the training log-probs: the KV-cache sampler against transformers' generate, its log-probs
against teacher forcing, shared-prefix log-probs and gradients against one full row per rollout, M-RoPE
positions against get_rope_index, sampling decided by the flags alone, mixed precision, pixel bounds."""
import json
import os
import shutil

import pytest
import torch
from PIL import Image

import data
import mmr1

SIZE = 56


@pytest.fixture(scope="module")
def policy():
    """The tiny model with weights spread wider than at initialisation, so that its greedy tokens vary."""
    examples = data.make_geometry_dataset(40, seed=0, size=SIZE, teacher_error=0.6)
    args = mmr1.parse_args(["--image-size", str(SIZE)])
    torch.manual_seed(0)
    p = mmr1.load_policy(args, [e.question + " " + e.rationale for e in examples])
    with torch.no_grad():
        for w in p.model.model.language_model.parameters():
            w.add_(torch.randn_like(w) * 0.05)
    return p


def prompts_of_different_lengths(policy):
    """Four prompts, two of them shortened, so that left padding differs from row to row."""
    prompts = [policy.encode(e) for e in data.make_geometry_dataset(4, seed=3, size=SIZE)]
    for p, cut in zip(prompts, [0, 2, 0, 5]):
        p.ids = p.ids[:2] + p.ids[2 + cut:]  # drop words of the system prompt
    assert len({len(p.ids) for p in prompts}) == 3
    return prompts


def run_args(**kw):
    return mmr1.parse_args(["--image-size", str(SIZE)] + [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()])


def test_greedy_sample_equals_generate(policy):
    prompts, args = prompts_of_different_lengths(policy), run_args(max_new_tokens=12)
    batch = mmr1.prompt_batch(policy, prompts, "cpu")
    ids, mask, _ = mmr1.sample(policy, batch, torch.arange(len(prompts)), args, greedy=True)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw")}
    image_tokens = (batch["input_ids"] == policy.model.config.image_token_id).int()  # M-RoPE for generate too
    out = policy.model.generate(**inputs, mm_token_type_ids=image_tokens, do_sample=False, max_new_tokens=12,
                                suppress_tokens=policy.suppress, eos_token_id=policy.eos, pad_token_id=policy.pad)
    want = out[:, batch["input_ids"].shape[1]:]
    assert len(set(map(tuple, want.tolist()))) > 1 and len(set(want.flatten().tolist())) > 3  # not one token
    assert torch.equal(ids, want[:, :ids.shape[1]]) and (want[:, ids.shape[1]:] == policy.pad).all()


def test_sampled_logprobs_equal_teacher_forcing_and_training_uses_m_rope(policy):
    prompts, args = prompts_of_different_lengths(policy), run_args(max_new_tokens=10, temperature=0.7)
    torch.manual_seed(1)
    ids, mask, logp = mmr1.sample(policy, mmr1.prompt_batch(policy, prompts, "cpu"),
                                  torch.arange(len(prompts)).repeat_interleave(3), args)
    with torch.no_grad():
        forced = mmr1.token_logprobs(policy.model, policy, prompts, ids, mask, args)
        # the same by hand: one full row per rollout, 3D positions straight from get_rope_index
        rows = [p for p in prompts for _ in range(3)]
        width = max(len(p.ids) for p in rows)
        seq = torch.tensor([[policy.pad] * (width - len(p.ids)) + p.ids for p in rows])
        seq = torch.cat([seq, ids], 1)
        attn = torch.cat([(torch.arange(width) >= width - torch.tensor([[len(p.ids)] for p in rows])).long(),
                          mask.long()], 1)
        image_tokens = (seq == policy.model.config.image_token_id).int()
        grid = torch.cat([p.grid_thw for p in rows])
        positions, _ = policy.model.model.get_rope_index(seq, image_tokens, grid, attention_mask=attn)
        logits = policy.model(input_ids=seq, attention_mask=attn, position_ids=positions, image_grid_thw=grid,
                              pixel_values=torch.cat([p.pixel_values for p in rows])).logits[:, width - 1:-1]
        logits[..., policy.suppress] = float("-inf")
        by_hand = torch.log_softmax(logits / 0.7, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    assert mask.sum() > 10
    assert ((logp - forced) * mask).abs().max() < 1e-5
    assert ((forced - by_hand) * mask).abs().max() < 1e-5
    # without M-RoPE (the plain 1D positions a forward gets without them) the numbers differ
    with torch.no_grad():
        plain = policy.model(input_ids=seq, attention_mask=attn, image_grid_thw=grid,
                             pixel_values=torch.cat([p.pixel_values for p in rows])).logits[:, width - 1:-1]
    assert (plain - logits).abs().max() > 1e-3


@pytest.mark.parametrize("which", ["policy", "reference"])
def test_shared_prefix_logprobs_and_gradients_equal_full_rows(policy, which):
    prompts, args = prompts_of_different_lengths(policy), run_args(max_new_tokens=8)
    torch.manual_seed(2)
    ids, mask, _ = mmr1.sample(policy, mmr1.prompt_batch(policy, prompts, "cpu"),
                               torch.arange(len(prompts)).repeat_interleave(4), args)
    model = policy.model.train() if which == "policy" else mmr1.frozen_copy(policy.model, args)
    values, grads = [], []
    for shared in (True, False):
        with torch.set_grad_enabled(which == "policy"):
            logp = mmr1.token_logprobs(model, policy, prompts, ids, mask, args, shared=shared)
        values.append(logp * mask)
        if which == "policy":
            grads.append(torch.autograd.grad((logp * mask).sum(), list(model.parameters())))
    assert (values[0] - values[1]).abs().max() < 1e-5
    for a, b in zip(*grads):
        assert (a - b).norm() <= 1e-5 * b.norm() + 1e-8
    if grads:  # the gradient reaches the prompt: the vision tower is only in the shared prefill
        assert grads[0][list(dict(model.named_parameters())).index("model.visual.patch_embed.proj.weight")].norm() > 0


def test_completion_mask_by_hand():
    got = mmr1.completion_mask(torch.tensor([[7, 2, 0, 0], [7, 8, 9, 9], [2, 5, 2, 0]]), eos=2)
    assert got.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]


RUN = ["--num-sft", "40", "--num-rl", "6", "--num-test", "8", "--image-size", str(SIZE), "--sft-steps", "0",
       "--rl-steps", "2", "--prompts-per-step", "3", "--group-size", "2", "--max-new-tokens", "6",
       "--eval-every", "1", "--seed", "3"]


def clean_metrics(out):
    return [{k: v for k, v in json.loads(line).items() if not k.startswith(("perf/", "time/"))}
            for line in open(os.path.join(out, "metrics.jsonl"))]


def test_a_poisoned_generation_config_changes_nothing(tmp_path):
    """Only the flags decide sampling: Qwen's generation_config (repetition penalty, temperature 1e-6) and worse
    leave the rollouts and every metric as they are with a clean one."""
    mmr1.main([*RUN, "--rl-steps", "0", "--out", str(tmp_path / "base")])
    poisoned = tmp_path / "poisoned"
    shutil.copytree(tmp_path / "base" / "final", poisoned)
    config = json.load(open(poisoned / "generation_config.json"))
    config.update(do_sample=True, repetition_penalty=1000.0, no_repeat_ngram_size=1, temperature=1e-6, top_k=1)
    json.dump(config, open(poisoned / "generation_config.json", "w"))
    for name, init in (("clean", tmp_path / "base" / "final"), ("dirty", poisoned)):
        mmr1.main([*RUN, "--init-from", str(init), "--out", str(tmp_path / name)])
    assert clean_metrics(tmp_path / "clean") == clean_metrics(tmp_path / "dirty")


def test_bf16_compute_keeps_fp32_masters_that_move():
    """--dtype bfloat16 computes under autocast; the weights AdamW updates stay fp32, so even lr 1e-6
    changes them (bf16 weights updated in place lose nearly every such update)."""
    args = mmr1.parse_args([*RUN, "--dtype", "bfloat16", "--sft-steps", "10", "--sft-batch", "4",
                            "--sft-lr", "1e-6", "--rl-steps", "0"])  # no --out: no checkpoint.pt
    splits = data.toy_splits(args)
    mmr1.set_seed(0)
    policy = mmr1.load_policy(args, [e.question + " " + e.rationale for s in splits.values() for e in s])
    before = {k: v.clone() for k, v in policy.model.named_parameters()}
    with open(os.devnull, "w") as f:
        mmr1.sft(policy, splits["sft"], args, f)
    assert all(p.dtype == torch.float32 for p in policy.model.parameters())
    changed = torch.cat([(p != before[k]).flatten() for k, p in policy.model.named_parameters()])
    assert changed.float().mean() >= 0.99, changed.float().mean()


def test_presets_bound_a_huge_image():
    preset = mmr1.parse_args(["--model", "Qwen2.5-VL-3B"])
    assert (preset.min_pixels, preset.max_pixels) == (7056, 1048576)
    args = mmr1.parse_args(["--min-pixels", "7056", "--max-pixels", "1048576"])  # the same bounds, tiny model
    policy = mmr1.load_policy(args, ["What colour is the shape ?"])
    prompt = policy.encode(data.Example("x", Image.new("RGB", (2048, 2048), "white"), "What colour ?", "red", "",
                                        "colour", 1))
    n = prompt.ids.count(policy.model.config.image_token_id)
    assert 1000 < n <= 1337  # 1,048,576 pixels / (28 x 28) per token = 1337.5
    small = policy.encode(data.Example("y", Image.new("RGB", (28, 28), "white"), "What colour ?", "red", "",
                                       "colour", 1))
    assert small.ids.count(policy.model.config.image_token_id) >= 7056 // 28 ** 2  # at least 9 tokens


def test_one_grpo_update_raises_the_rewarded_completion_and_lowers_the_penalised(policy):
    """Through the real model: two rollouts of one prompt, rewards 1 and 0, one GRPO step (no KL): the rewarded
    completion becomes more likely, the penalised one less."""
    args = run_args(max_new_tokens=6, rl_lr=1e-3, kl_coef=0, group_size=2)
    model = mmr1.frozen_copy(policy.model, mmr1.parse_args([])).requires_grad_(True).train()  # a copy to train
    p = mmr1.Policy(model, policy.tokenizer, policy.processor, policy.eos, policy.pad, policy.suppress)
    prompts = [p.encode(data.make_geometry_dataset(1, seed=7, size=SIZE)[0])]
    ids = torch.tensor([[20, 21, 22, p.eos], [23, 24, p.eos, p.pad]])
    mask = mmr1.completion_mask(ids, p.eos)
    with torch.no_grad():
        old = mmr1.token_logprobs(model, p, prompts, ids, mask, args) * mask  # (2, 4) pi_old = pi
    before, rewards = old.sum(1), torch.tensor([1.0, 0.0])
    ro = mmr1.Rollouts(prompts, ids, mask, [], old, [], rewards, rewards, rewards)
    opt = torch.optim.SGD(model.parameters(), lr=args.rl_lr)
    mmr1.grpo_update(p, opt, ro, mmr1.group_advantages(rewards, 2), None, args)
    with torch.no_grad():
        after = (mmr1.token_logprobs(model, p, prompts, ids, mask, args) * mask).sum(1)
    assert after[0] > before[0] + 1e-4 and after[1] < before[1] - 1e-4, (before.tolist(), after.tolist())
