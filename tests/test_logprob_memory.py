"""Training log-probs at a large vocabulary: `token_logprobs` scores the lm_head a chunk of positions at a
time and recomputes each chunk in the backward. Its values and gradients equal the definition (every logit
at once, log-softmax over the vocabulary), and its peak memory stays under one (N, C, V) float32 tensor
(measured by assets/bench_logprob_memory.py in a fresh process, so no other test's allocations count)."""
import json
import os
import subprocess
import sys

import pytest
import torch

import data
import mmr1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE, G = 56, 3


def naive_token_logprobs(net, policy, prompts, completions, mask, args):
    """The definition: one full row per rollout, all (N, C, V) logits at once, log-softmax over the vocabulary
    with the vision tokens excluded. Position t predicts token t + 1."""
    group, (n, c) = len(completions) // len(prompts), completions.shape
    rows = mmr1.prompt_batch(policy, [p for p in prompts for _ in range(group)], "cpu")
    position = (rows["next_position"][:, None] + torch.arange(c)).unsqueeze(0).expand(3, n, c)
    out = net(input_ids=torch.cat([rows["input_ids"], completions], 1),
              attention_mask=torch.cat([rows["attention_mask"], mask.long()], 1),
              position_ids=torch.cat([rows["position_ids"], position], 2),
              pixel_values=rows["pixel_values"], image_grid_thw=rows["image_grid_thw"])
    logits = out.logits[:, -c - 1:-1].float()  # (N, C, V)
    logits[..., policy.suppress] = float("-inf")
    return torch.log_softmax(logits / args.temperature, -1).gather(-1, completions.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("shared", [True, False])
def test_chunked_logprobs_and_gradients_equal_the_definition(monkeypatch, shared):
    examples = data.make_geometry_dataset(2, seed=0, size=SIZE)
    args = mmr1.parse_args(["--image-size", str(SIZE), "--temperature", "0.7"])
    torch.manual_seed(0)
    policy = mmr1.load_policy(args, [e.question + " " + e.rationale for e in examples])
    model, prompts = policy.model.train(), [policy.encode(e) for e in examples]
    vocab = model.lm_head.weight.shape[0]
    monkeypatch.setattr(mmr1, "LOGIT_CHUNK", 3)  # 4 completion columns: chunks of 3 and 1
    ids = torch.randint(12, vocab, (2 * G, 4), generator=torch.Generator().manual_seed(0))  # (N, C)
    ids[1, 2:] = policy.eos  # an end of turn, then padding
    mask = mmr1.completion_mask(ids, policy.eos)
    params = [p for p in model.parameters() if p.requires_grad]
    results = []
    for fn in (lambda *a: mmr1.token_logprobs(*a, shared=shared), naive_token_logprobs):
        logp = fn(model, policy, prompts, ids, mask, args) * mask  # (N, C)
        results.append((logp, torch.autograd.grad((logp * torch.arange(1.0, 5.0)).sum(), params)))
    (chunked, grads), (naive, naive_grads) = results
    assert chunked.shape == naive.shape == (2 * G, 4) and (chunked < 0).all() == (mask > 0).all()
    assert (chunked - naive).abs().max() < 1e-5
    for a, b in zip(grads, naive_grads):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max() + 1e-8


def test_peak_memory_stays_under_one_logits_tensor():
    """Less than half Qwen's vocabulary and C = 128, to be quick. What shrinks with N C is the logits; what
    does not is the model's own activations and the few (V, H) gradients of the lm_head (tied to the
    embedding): ~0.73 of (N, C, V) here (3.1 with LOGIT_CHUNK past C: no chunking), ~0.35 at V = 151,936."""
    proc = subprocess.run([sys.executable, "assets/bench_logprob_memory.py", "--vocab", "65536", "--group",
                           "8", "--completion", "128"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["logits_gb"] > 0.25 and result["ratio"] <= 1.0, result
