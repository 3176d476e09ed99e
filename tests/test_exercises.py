"""Classroom exercises: a function (or a branch of one) of mmr1.py, vas.py or tests/derivation.py each, with a check
that tells a right implementation from a wrong one; then four experiments, each a few short runs whose metric the
student predicts first. EXERCISES.md asks, docs/solutions.md answers (a teacher keeps it back).

A student replaces the body of one function and runs that exercise's test, e.g.
    python -m pytest -q tests/test_exercises.py -k exercise_advantage
EXERCISES.md lists the exercises, their commands and hints. A teacher blanks the reference bodies with
    python tests/test_exercises.py --blank              # all exercises; or name some: --blank advantage kl
and `git checkout -- mmr1.py vas.py tests/derivation.py` brings the references back. Blanking keeps a function's
signature and the first paragraph of its docstring (what it returns, not how). No function belongs to two
exercises, so a student can take them one at a time, and the CLI runs on each function as soon as its exercise
passes.

Each `check_<name>` takes the implementation as an argument and raises AssertionError when it is wrong.
`test_exercise_<name>` runs it on the reference functions. The meta-tests at the end run every check on the blanked
body (which raises NotImplementedError) and on common mistakes (population std, the KL's d with the wrong sign, min
instead of max, micro-batch means summed, self-BLEU against one response at a time, OVS of the posterior mean, a
weighted draw without replacement, ...), and require it to fail; they check that blanking an exercise changes its
functions and nothing else, that no kept docstring and nothing in EXERCISES.md holds an expression of the reference
body, and that the solutions answer every exercise under its number, name every mistake its check rejects, and that
none of their answers is in EXERCISES.md or the blanked files. `test_experiment_<name>` makes the short runs of an
experiment from the tests' cold start and checks the results that the solutions give.
"""
import argparse
import ast
import contextlib
import dataclasses
import inspect
import itertools
import math
import os
import re
import sys
import types
from unittest import mock

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import derivation  # noqa: E402
import mmr1  # noqa: E402
import vas  # noqa: E402
from helpers import COLD_START, FROM_COLD_START, rows  # noqa: E402

FILES = {"mmr1": "mmr1.py", "vas": "vas.py", "derivation": "tests/derivation.py"}
# exercise -> what the student writes: "file:qualified name" of a function, or "file:function[label]" for the
# branch of `function` that handles `label`. Each piece belongs to one exercise only.
EXERCISES = {  # in the order of EXERCISES.md: exercise 1 first
    "reward": ["mmr1:last_boxed"],
    "mask": ["mmr1:completion_mask"],
    "logprob": ["mmr1:completion_logprobs"],
    "advantage": ["mmr1:group_advantages"],
    "kl": ["mmr1:kl_k3"],
    "surrogate": ["mmr1:clipped_surrogate"],
    "token_mean": ["mmr1:masked_mean"],
    "normaliser": ["mmr1:backward"],
    "grpo_step": ["mmr1:grpo_step"],
    "agree": ["derivation:agree_probability"],
    "vps": ["vas:outcome_variance_score", "vas:VarianceAwareSampler.probabilities"],
    "tds": ["vas:_bleu", "vas:trajectory_diversity_score[self_bleu]"],
    "posterior": ["vas:VarianceAwareSampler._posterior", "vas:VarianceAwareSampler.forget"],
    "sampler": ["vas:VarianceAwareSampler.next_batch"],
}

# experiment -> {run: flags of `python mmr1.py --init-from COLD/sft ...`}; every run starts from the same cold start
SHORT = [*FROM_COLD_START, "--num-rl", "8", "--num-test", "4", "--eval-every", "0"]
DEAD = [*FROM_COLD_START, "--num-rl", "40", "--num-test", "4", "--eval-every", "0", "--temperature", "0.6",
        "--group-size", "4", "--prompts-per-step", "40", "--rl-steps", "1"]
EXPERIMENTS = {
    "epochs": {"one pass": [*SHORT, "--group-size", "4", "--prompts-per-step", "8", "--rl-steps", "1",
                            "--rl-lr", "5e-4"],
               "two passes": [*SHORT, "--group-size", "4", "--prompts-per-step", "8", "--rl-steps", "1",
                              "--rl-lr", "5e-4", "--update-epochs", "2"]},
    "group_size": {"G = 2": [*SHORT, "--group-size", "2", "--prompts-per-step", "8", "--rl-steps", "2"],
                   "G = 8": [*SHORT, "--group-size", "8", "--prompts-per-step", "8", "--rl-steps", "1"]},
    "vas_cost": {"vas": [*FROM_COLD_START, "--num-rl", "4", "--num-test", "4", "--eval-every", "0", "--vas",
                         "--num-scoring", "4", "--refresh-every", "2", "--group-size", "4", "--prompts-per-step", "2",
                         "--rl-steps", "3"]},
    "dead_share": {"d = 0": [*DEAD, "--dead-share", "0"], "d = 0.9": [*DEAD, "--dead-share", "0.9"]},
}


def close(got, want, tol=1e-5):
    got, want = np.asarray(got.tolist() if hasattr(got, "tolist") else got, dtype=float), np.asarray(want, dtype=float)
    return got.shape == want.shape and np.allclose(got, want, atol=tol, rtol=0)


# ------------------------------------------------------------------------------------------ 1. reward parser

def check_reward(last_boxed):
    cases = [("\\boxed{3}", "3"), ("<answer> \\boxed { red } </answer>", "red"),
             ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"), ("\\boxed{1} , no : \\boxed{2}", "2"),
             ("\\boxed{a{b}c} and \\boxed{x{y}}", "x{y}"), ("no box here", None), ("\\boxed{3", None)]
    for text, want in cases:
        got = last_boxed(text)
        got = got.strip() if isinstance(got, str) else got
        assert got == want, (
            f"last_boxed({text!r}) should be {want!r}, got {got!r}: the *last* box, nested braces closed at their "
            "match, spaces allowed before '{', None without a closed box")
    with mock.patch.object(mmr1, "last_boxed", last_boxed):  # the reward reads the answer through it
        assert mmr1.reward("<think> 1 / 2 </think><answer> \\boxed{\\frac{1}{2}} </answer>", "\\frac{1}{2}") == (
            1.0, 1.0, 2.0)
        assert mmr1.reward("<think> a </think><answer> \\boxed{1} then \\boxed{2} </answer>", "1")[1] == 0.0


# ------------------------------------------------------------------------------------------ 2. completion mask

def check_mask(completion_mask):
    eos, pad = 2, 0
    completions = torch.tensor([[31, 32, eos, pad, pad],  # ended, padded after
                                [41, 42, 43, 44, 45],  # cut off by the budget: every token is real
                                [eos, 7, eos, pad, pad],  # ended at once; whatever follows is never trained on
                                [pad, 51, eos, 9, 9]])  # a sampled <|endoftext|> before the end is a real token
    got = completion_mask(completions, eos)
    want = [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]]
    assert got.shape == completions.shape and got.tolist() == want, (
        f"1 at each token up to and *including* the first end-of-turn (the model must learn to stop), 0 after it; "
        f"want {want}, got {got.tolist()}")
    assert got.dtype.is_floating_point, "the mask multiplies float losses"


# ------------------------------------------------------------------------------------------ 3. log-prob shift

def check_logprob(completion_logprobs):
    # One row, vocabulary of 3, a prompt of 2 positions and a completion of 2 tokens: L = 4 logits positions.
    logits = torch.tensor([[[5.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [4.0, 4.0, 0.0]]])  # (1, 4, 3)
    completions = torch.tensor([[1, 2]])
    want = [[2 - math.log(2 + math.exp(2)), 3 - math.log(2 + math.exp(3))]]  # positions 1 and 2 score tokens 0, 1
    got = completion_logprobs(logits, completions, 1.0)
    unshifted = [[0 - math.log(1 + math.exp(3) + 1), 0 - math.log(2 * math.exp(4) + 1)]]
    assert got.shape == (1, 2), f"one log-prob per completion token: (N, C) = (1, 2), got {tuple(got.shape)}"
    assert close(got, want, 1e-5), (
        f"want {want}, got {got.tolist()}: which position's logits predict completion token t?"
        + (" (these are the logits of token t's own position: each token predicts itself)"
           if close(got, unshifted, 1e-5) else ""))
    # temperature: the distribution sampled from is softmax(logits / T), and training must score that one
    got = completion_logprobs(logits, completions, 0.5)
    want_t = [[4 - math.log(2 + math.exp(4)), 6 - math.log(2 + math.exp(6))]]
    assert close(got, want_t, 1e-5), f"temperature 0.5: want {want_t}, got {got.tolist()}"
    # against a plain loop on random logits: two rows, longer prompts, half precision in, float32 out
    g = torch.Generator().manual_seed(0)
    logits, completions = torch.randn(2, 9, 11, generator=g) * 3, torch.randint(0, 11, (2, 5), generator=g)
    got = completion_logprobs(logits.to(torch.bfloat16), completions, 0.7)
    assert got.dtype == torch.float32, f"log-probs in float32 whatever the logits' dtype, got {got.dtype}"
    half = logits.to(torch.bfloat16).float()
    for n in range(2):
        for t in range(5):
            want = torch.log_softmax(half[n, 9 - 5 - 1 + t] / 0.7, -1)[completions[n, t]].item()
            assert abs(got[n, t].item() - want) < 1e-4, f"row {n}, token {t}: want {want:.5f}, got {got[n, t]:.5f}"
    logits.requires_grad_(True)
    completion_logprobs(logits, completions, 1.0).sum().backward()
    assert logits.grad[:, -1].abs().sum() == 0 and logits.grad[:, :3].abs().sum() == 0, (
        "only the positions that predict a completion token (the prompt's last and the completion's but the last) "
        "get a gradient")


# ------------------------------------------------------------------------------------------ 4. group advantage

def check_advantage(group_advantages):
    a = 0.5 / (math.sqrt(1 / 3) + 1e-6)  # [1, 1, 0, 0]: mean 0.5, unbiased std sqrt(1/3)
    got = group_advantages(torch.tensor([1.0, 1.0, 0.0, 0.0]), 4)
    assert close(got, [a, a, -a, -a]), (
        f"[1, 1, 0, 0] should give +-0.866, got {got.tolist()}"
        + (" (+-1.0: that is the population std)" if close(got, [1, 1, -1, -1], 1e-4) else ""))
    got = group_advantages(torch.tensor([2.0, 1, 0, 0, 0, 0, 3, 0, 0]), 3)  # three groups of G = 3
    s3 = math.sqrt(3) + 1e-6
    assert torch.isfinite(got).all(), f"an all-equal group must not give NaN (0 / 0); got {got.tolist()}"
    assert close(got, [1 / (1 + 1e-6), 0, -1 / (1 + 1e-6), 0, 0, 0, 2 / s3, -1 / s3, -1 / s3]), (
        f"groups are G *consecutive* rewards; got {got.tolist()}")
    assert close(group_advantages(torch.tensor([1.0, 0.0, 1.0, 0.0]), 2), [0.707106, -0.707106] * 2), (
        "[1, 0, 1, 0] with G = 2 is the groups [1, 0] and [1, 0], not [1, 1] and [0, 0]")
    got = group_advantages(torch.full((8,), 2.0), 8)
    assert torch.equal(got, torch.zeros(8)), f"all-equal rewards must give exactly zero advantages, got {got}"
    got = group_advantages(torch.tensor([2.0, 1, 0, 3, 0, 0]), 3, scale_std=False)
    assert close(got, [1, 0, -1, 2, -1, -1]), f"scale_std=False (Dr. GRPO): want [1, 0, -1, 2, -1, -1], got {got}"
    assert group_advantages(torch.tensor([1, 0, 0, 0, 1, 1]), 2).shape == (6,), "return one advantage per rollout"


# ------------------------------------------------------------------------------------------ 5. k3 KL

def check_kl(kl_k3):
    got = kl_k3(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])).item()
    assert abs(got - 0.193147) < 1e-5, (
        f"kl_k3(log 0.5, log 0.25) should be 0.193147; got {got:.6f}"
        + (" (that is the estimate of KL(pi_ref || pi): the sign of d is flipped)" if abs(got - 0.306853) < 1e-4
           else "") + (" (that is k1, which can be negative)" if abs(got - math.log(2)) < 1e-4 else ""))
    got = kl_k3(torch.tensor([0.0, 0.0]), torch.tensor([1.0, -1.0]))
    assert close(got, [math.e - 2, 1 / math.e]), f"log pi_ref - log pi = +1 gives e - 2, -1 gives 1/e; got {got}"
    g = torch.Generator().manual_seed(0)
    logp, ref = -5 * torch.rand(4, 7, generator=g), -5 * torch.rand(4, 7, generator=g)
    got = kl_k3(logp, ref)
    assert got.shape == (4, 7), "k3 is per token: same shape as the inputs, no reduction"
    assert (got >= 0).all(), "k3 is never negative; k1 can be"
    assert torch.equal(kl_k3(logp, logp), torch.zeros(4, 7)), "equal policies: KL exactly 0"


# ------------------------------------------------------------------------------------------ 6. clipped surrogate

def _one_token(clipped_surrogate, ratio, adv, clip_low, clip_high):
    """Loss and d loss / d logp of a single token whose ratio pi / pi_old is `ratio`."""
    logp = torch.tensor([[math.log(ratio)]], dtype=torch.float64, requires_grad=True)
    old, adv = torch.zeros(1, 1, dtype=torch.float64), torch.tensor([adv], dtype=torch.float64)
    per_token = clipped_surrogate(logp, old, adv, clip_low, clip_high)
    assert per_token.shape == (1, 1), f"one loss per token: (B, C) = (1, 1), got {tuple(per_token.shape)}"
    assert per_token.requires_grad, "the loss must depend on logp through the ratio: no detach"
    per_token.sum().backward()
    return per_token.item(), logp.grad.item()


def check_surrogate(clipped_surrogate):
    cases = [  # (ratio, A, clip_low, clip_high, loss, d loss / d log rho)
        (1.5, 1.0, 0.2, 0.2, -1.2, 0.0),  # pushed up past 1 + eps: clipped, no gradient
        (0.5, 1.0, 0.2, 0.2, -0.5, -0.5),  # A > 0 but rho fell: unclipped, keeps pushing up
        (1.5, -1.0, 0.2, 0.2, 1.5, 1.5),  # A < 0 but rho rose: unclipped
        (0.5, -1.0, 0.2, 0.2, 0.8, 0.0),  # pushed down past 1 - eps: clipped
        (1.5, 1.0, 0.1, 0.3, -1.3, 0.0),  # asymmetric: the upper bound is 1 + clip_high
        (0.5, -1.0, 0.1, 0.3, 0.9, 0.0),  # and the lower one 1 - clip_low
        (1.1, 2.0, 0.2, 0.2, -2.2, -2.2),  # inside the clip range: -A rho, d / d log rho = -A rho
    ]
    for ratio, adv, lo, hi, want, want_grad in cases:
        loss, grad = _one_token(clipped_surrogate, ratio, adv, lo, hi)
        with_min = min(-adv * ratio, -adv * min(max(ratio, 1 - lo), 1 + hi))
        assert abs(loss - want) < 1e-6, (
            f"ratio {ratio}, A {adv}, clip range [{1 - lo}, {1 + hi}]: the loss should be {want}, got {loss:.4f}"
            + (" (that is the optimistic bound: min instead of max)" if abs(loss - with_min) < 1e-6 else ""))
        assert abs(grad - want_grad) < 1e-6, (
            f"ratio {ratio}, A {adv}: d loss / d logp should be {want_grad}, got {grad:.4f}: the gradient flows "
            "through the ratio, and a token the clip holds has none")
    # two rollouts of three tokens, on-policy: each row's tokens get its own advantage
    got = clipped_surrogate(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([1.0, -0.5]), 0.2, 0.2)
    assert close(got, [[-1, -1, -1], [0.5, 0.5, 0.5]]), (
        f"advantages (B,) belong to rows: A_i applies to every token of rollout i; got {got.tolist()}")


# ------------------------------------------------------------------------------------------ 7. token-mean

def check_token_mean(masked_mean):
    # per-token losses of two rollouts: row 0 has 3 real tokens, row 1 one; padding slots hold garbage
    values = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 9.0, -3.0]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    loss = masked_mean(values, mask)
    assert abs(loss.item() - (-0.5)) < 1e-9, (
        f"token-mean: (-1 - 1 - 1 + 1) / 4 real tokens = -0.5, got {loss.item():.4f}"
        + (" (that is the mean over sequences, (-1 + 1) / 2)" if abs(loss.item()) < 1e-9 else "")
        + (" (padding counted in the denominator: / 6)" if abs(loss.item() + 1 / 3) < 1e-9 else "")
        + (" (the padding's values counted)" if abs(loss.item() - 1) < 1e-9 else ""))
    loss.backward()
    assert close(values.grad, [[0.25, 0.25, 0.25], [0.25, 0.0, 0.0]], 1e-9), (
        f"d loss / d value = 1 / (real tokens in the batch) at real tokens, 0 at padding; got {values.grad.tolist()}")
    seq = masked_mean(values.detach(), mask, seq_mean=True)
    assert abs(seq.item()) < 1e-9, f"seq_mean=True: mean per sequence, then over sequences: (-1 + 1) / 2 = 0, not {seq}"
    # a filler row (mask all 0, as dynamic sampling pads a batch with weightless groups) is no sequence
    values = torch.tensor([[-1.0, -1.0, -1.0], [3.0, 9.0, -3.0], [5.0, 5.0, 5.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    seq = masked_mean(values, mask, seq_mean=True).item()
    assert abs(seq - 1.0) < 1e-9, (
        f"seq_mean=True with a filler row: (-1 + 3) / 2 sequences = 1, got {seq:.4f}"
        + (" (the filler row counted as a sequence: / 3)" if abs(seq - 2 / 3) < 1e-9 else ""))
    empty = masked_mean(torch.ones(2, 3), torch.zeros(2, 3))
    assert torch.isfinite(empty) and empty.item() == 0.0, (
        f"a batch without a real token (padding copies weigh nothing) must give 0, not 0 / 0 = NaN; got {empty}")


# ------------------------------------------------------------------------------------------ 8. the global normaliser

class _Toy(torch.nn.Module):
    """A policy with no prompt: a softmax over 3 tokens whose logits theta are the only weights."""
    def __init__(self):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))


def _toy_logprobs(net, policy, prompts, completions, mask, args, *rest, **kwargs):  # for mmr1.token_logprobs
    return torch.log_softmax(net.theta, -1)[completions]  # (N, C)


def _toy_loss(logp, old_logp, ref_logp, adv, mask, clip_low, clip_high, kl_coef, seq_mean):  # for mmr1.grpo_loss
    """-A rho over the real tokens: grpo_loss where its clip and KL do not act, as in the toy updates here, so that
    these checks do not need exercises 5-7."""
    per_token = -adv[:, None] * torch.exp(logp - old_logp) * mask  # (N, C)
    loss = (per_token.sum(1) / mask.sum(1)).mean() if seq_mean else per_token.sum() / mask.sum()
    return loss, {}


def _toy_patches(namespaces, **extra):
    """The toy policy's log-probs and loss, and `extra`, in each module namespace (mmr1, or a blanked copy)."""
    stack = contextlib.ExitStack()
    for namespace in namespaces:
        stack.enter_context(mock.patch.dict(namespace, {"token_logprobs": _toy_logprobs, "grpo_loss": _toy_loss,
                                                        "masked_mean": lambda v, m: (v * m).sum() / m.sum(), **extra}))
    return stack


def _split_means(backward, values, mask, parts, total):
    """Each part's token-mean loss through `backward`; returns the logged loss, sum of part loss x weight."""
    logged = 0.0
    for rows in parts:
        m = mask[rows]
        loss = (values[rows] * m).sum() / m.sum()  # (,) this part's token-mean
        logged += loss.item() * backward(loss, m.sum(), total)
    return logged


def _toy_batch(lengths, adv):
    """Rollouts of the 3-token toy policy: two groups of G = 2 completions; row i has lengths[i] real tokens."""
    n, width = len(lengths), max(lengths)
    ids = torch.tensor([[(i + t) % 3 for t in range(width)] for i in range(n)])  # (4, C)
    mask = torch.tensor([[float(t < k) for t in range(width)] for k in lengths])  # (4, C)
    old = torch.full((n, width), -math.log(3.0), dtype=torch.float64)  # the uniform policy sampled them
    r = torch.tensor(adv, dtype=torch.float64)
    return mmr1.Rollouts([None, None], ids, mask, ids.tolist(), old, [""] * n, r, r, torch.ones(n))


def check_normaliser(backward):
    """Per-token losses of 4 rollouts with 5, 1, 3 and 2 real tokens, cut into micro-batches in several ways: the
    gradient and the logged loss must be those of one token-mean over the whole batch, whatever the cut."""
    g = torch.Generator().manual_seed(0)
    values = torch.randn(4, 5, generator=g, dtype=torch.float64).requires_grad_(True)
    mask = torch.tensor([[float(t < k) for t in range(5)] for k in (5, 1, 3, 2)], dtype=torch.float64)
    whole = (values * mask).sum() / mask.sum()  # 11 real tokens
    want = torch.autograd.grad(whole, values)[0]
    for parts in ([[0, 1, 2, 3]], [[0], [1], [2], [3]], [[0, 1], [2, 3]], [[0, 1, 2], [3]]):
        values.grad = None
        logged = _split_means(backward, values, mask, parts, mask.sum())
        assert values.grad is not None, "backward must run the backward pass of the part's loss"
        ratio = (values.grad / want)[mask.bool()]
        assert close(values.grad, want, 1e-9), (
            f"micro-batches {parts}: the summed gradients should be those of the token-mean over all 11 tokens; "
            f"they are {ratio.min().item():.3f} to {ratio.max().item():.3f} times it"
            + (" (each part's mean weighs the same: the short parts' tokens count for more)"
               if len(parts) > 1 and not torch.allclose(ratio, ratio[0]) else ""))
        assert abs(logged - whole.item()) < 1e-9, (
            f"micro-batches {parts}: sum of (part's loss x returned weight) should be the batch's token-mean "
            f"{whole.item():.4f}, got {logged:.4f}")
    # K = 2 ranks, each with two rows; the optimiser step averages the two ranks' gradients
    values.grad = None
    with mock.patch.object(mmr1, "world", lambda: 2), mock.patch.dict(backward.__globals__, world=lambda: 2):
        _split_means(backward, values, mask, [[0, 1], [2, 3]], mask.sum())  # rank 0's part, then rank 1's
    averaged = values.grad / 2  # what the all-reduce in step_optimiser makes of them
    assert close(averaged, want, 1e-9), (
        f"with 2 ranks, the average of the ranks' gradients should be the batch mean's; it is "
        f"{(averaged / want)[mask.bool()].mean().item():.3f} times it (mmr1.world() is the number of ranks)")
    # through grpo_update: one SGD step of the toy policy, the batch cut into parts of 0 (all), 1 and 3 rows
    adv, lengths = [1.0, -1.0, 0.5, -0.5], [3, 1, 2, 1]
    for seq_mean in (False, True):
        theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        rollouts = _toy_batch(lengths, adv)
        logp = torch.log_softmax(theta, -1)[rollouts.completion_ids]  # (4, C) on-policy: ratio 1 in value
        per_token = -torch.tensor(adv, dtype=torch.float64)[:, None] * torch.exp(logp - logp.detach())
        m = rollouts.mask.double()
        loss = ((per_token * m).sum(1) / m.sum(1)).mean() if seq_mean else (per_token * m).sum() / m.sum()
        loss.backward()
        want_theta = -theta.grad  # lr 1
        for micro in (0, 1, 3):
            (got_loss, *_), got = _toy_update(backward, rollouts, adv, micro_batch=micro, seq_mean=seq_mean)
            assert close(got, want_theta, 1e-6), (  # the mask, and so each part's weight, is float32
                f"grpo_update with --micro-batch {micro}{' --seq-mean' if seq_mean else ''}: theta after one step "
                f"should be {want_theta.tolist()}, got {got.tolist()}")
            assert abs(got_loss - loss.item()) < 1e-6, f"logged loss {got_loss}, want {loss.item()}"


def _toy_update(backward, rollouts, adv, **flags):
    """grpo_update of the toy policy (no KL, plain SGD of lr 1) with `backward` as the normaliser."""
    net = _Toy()
    args = dataclasses.replace(mmr1.Args(), group_size=2, prompts_per_step=2, kl_coef=0.0, **flags)
    with _toy_patches([mmr1.__dict__], backward=backward):
        result = mmr1.grpo_update(types.SimpleNamespace(model=net), torch.optim.SGD(net.parameters(), lr=1.0), rollouts,
                                  torch.tensor(adv, dtype=torch.float64), None, args)
    return result, net.theta.detach()


# ------------------------------------------------------------------------------------------ 9. one GRPO step

def _toy_step(grpo_step, rewards, correct, lr=1.0, nan=False, **flags):
    """One call of grpo_step on one group of G = 4 one-token completions [0, 0, 1, 2], sampled from the uniform
    policy (log pi_old = log 1/3), without KL, by plain SGD. Returns grpo_step's result and theta after it."""
    net, tokens = _Toy(), torch.tensor([[0], [0], [1], [2]])
    old_logp = torch.full((4, 1), -math.log(3.0), dtype=torch.float64)
    rollouts = mmr1.Rollouts([None], tokens, torch.ones(4, 1), tokens.tolist(), old_logp, [""] * 4,
                             torch.tensor(rewards), torch.tensor(correct), torch.ones(4))
    args = dataclasses.replace(mmr1.Args(), group_size=4, prompts_per_step=1, kl_coef=0.0, **flags)
    nan_logprobs = {"token_logprobs": lambda *a, **k: _toy_logprobs(*a) * math.nan} if nan else {}  # a NaN loss
    with _toy_patches([mmr1.__dict__, grpo_step.__globals__], **nan_logprobs):
        result = grpo_step(types.SimpleNamespace(model=net), torch.optim.SGD(net.parameters(), lr=lr), rollouts, None,
                           args)
    return result, net.theta.detach()


def check_grpo_step(grpo_step):
    """Rewards (format + accuracy) [2, 1, 1, 0]: mean 1, unbiased std sqrt(2/3), so A = [a, 0, 0, -a] with
    a = 1 / (sqrt(2/3) + 1e-6) = 1.2247. On-policy, token-mean over 4 tokens:
        d loss / d theta = -(1/4) sum_i A_i (onehot(y_i) - pi) = -(1/4) sum_i A_i onehot(y_i)    (sum_i A_i = 0)
    = [-a/4, 0, a/4] for the tokens [0, 0, 1, 2], and one SGD step of lr 1 gives theta = [a/4, 0, -a/4]."""
    a = 1 / (math.sqrt(2 / 3) + 1e-6)
    (loss, stats, grad_norm, skipped), theta = _toy_step(grpo_step, [2.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0])
    accuracy_only = [0.25, -0.125, -0.125]  # A of the accuracy [1, 0, 0, 0] alone: [1.5, -0.5, -0.5, -0.5]
    assert close(theta, [a / 4, 0, -a / 4], 1e-6), (
        f"after one step theta should be [a/4, 0, -a/4] = [0.306, 0, -0.306], got {theta.tolist()}"
        + (" (those are advantages of rollouts.correct, the accuracy alone)" if close(theta, accuracy_only, 1e-6)
           else ""))
    assert skipped == 0 and abs(grad_norm - a * math.sqrt(2) / 4) < 1e-6, (
        f"return the last pass's loss, stats, gradient norm ({a * math.sqrt(2) / 4:.4f}) and the number of skipped "
        f"passes (0); got grad_norm {grad_norm}, skipped {skipped}")
    (*_, skipped), theta = _toy_step(grpo_step, [2.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], scale_std=False)
    assert close(theta, [0.25, 0, -0.25], 1e-6), (
        f"--no-scale-std (Dr. GRPO): A = r - mean(r) = [1, 0, 0, -1], theta = [0.25, 0, -0.25]; got {theta.tolist()}")
    # two passes over the same rollouts: the second starts from theta_1, its ratio pi_theta / pi_old is no longer 1
    lr, adv = 0.1, torch.tensor([a, 0.0, 0.0, -a], dtype=torch.float64)
    theta = torch.tensor([a / 4, 0, -a / 4], dtype=torch.float64) * lr
    theta.requires_grad_(True)
    ratio = torch.exp(torch.log_softmax(theta, -1)[[0, 0, 1, 2]] + math.log(3.0))  # all inside [0.8, 1.2]
    (-(adv * ratio).mean()).backward()
    want = theta.detach() - lr * theta.grad
    fresh = theta.detach() + lr * torch.tensor([a / 4, 0, -a / 4], dtype=torch.float64)  # pass 2 with ratio 1 again
    (*_, skipped), got = _toy_step(grpo_step, [2.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], lr=lr, update_epochs=2)
    assert close(got, want, 1e-6), (
        f"--update-epochs 2: two passes over the same batch and advantages, theta {want.tolist()}; "
        f"got {got.tolist()}" + (" (that is one pass)" if close(got, theta.detach(), 1e-6) else "")
        + (" (pi_old taken afresh on the second pass: its ratio is 1 again)" if close(got, fresh, 1e-6) else ""))
    (*_, skipped), _ = _toy_step(grpo_step, [2.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], nan=True, update_epochs=2)
    assert skipped == 2, f"a non-finite loss skips the pass: 2 of 2 passes skipped, got {skipped}"
    (*_, skipped), theta = _toy_step(grpo_step, [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0])
    assert torch.equal(theta, torch.zeros(3, dtype=torch.float64)), "an all-equal group gives no gradient"


# ------------------------------------------------------------------------------------------ 10. a group that agrees

def check_agree(agree_probability):
    """Exact, by enumeration: the 2^G outcome vectors of a group, each with its probability at pass rate P; the
    group agrees where its G rewards are all equal (then every advantage is 0)."""
    for G in (2, 3, 4, 8):
        outcomes = torch.tensor(list(itertools.product([0.0, 1.0], repeat=G)), dtype=torch.float64)  # (2^G, G)
        agrees, right = (outcomes == outcomes[:, :1]).all(1), outcomes.sum(1)  # (2^G,) each
        for p in (0.0, 0.1, 0.3, 0.5, 0.8, 1.0):
            want = (p ** right * (1 - p) ** (G - right))[agrees].sum().item()
            ovs = p * (1 - p)
            got = float(agree_probability(ovs, G))
            assert abs(got - want) < 1e-9, (
                f"G = {G}, a prompt of pass rate P = {p} (OVS {ovs:.4f}): its group agrees with probability "
                f"{want:.6f}, got {got:.6f}"
                + (" (that counts only the groups where all are right)" if abs(got - max(p, 1 - p) ** G) < 1e-9
                   else "") + (" (a formula of G = 2 or 3, not of G)" if abs(got - (1 - G * ovs)) < 1e-9 else ""))


# ------------------------------------------------------------------------------------------ 11. OVS, VPS distribution

def check_vps(outcome_variance_score, sampler_cls):
    for correct, want in (([1, 1, 0, 0], 0.25), ([1, 1, 1, 1], 0.0), ([0, 0, 0, 0], 0.0), ([1, 0, 0, 0], 0.1875),
                          ([True, False, False], 2 / 9)):
        got = float(outcome_variance_score(correct))
        assert abs(got - want) < 1e-9, (
            f"OVS({correct}) should be {want:.4f}, got {got:.4f}"
            + (" (that is the sample variance, / (N - 1))" if abs(got - np.var(correct, ddof=1)) < 1e-9 else "")
            + (" (that is a std, not a variance)" if abs(got - math.sqrt(want)) < 1e-9 and want else ""))
    correct = np.array([[[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]]] * 2)  # (2, 3, N = 4)
    got = np.asarray(outcome_variance_score(correct))
    assert got.shape == (2, 3) and close(got[1], [0.1875, 0.0, 0.25]), "reduce the last axis (N) only"
    sampler = sampler_cls(4, batch_size=4, mixture_ratio=0.5, seed=0)
    got = sampler.probabilities()
    assert close(got, [0.25] * 4), f"before any score every VPS is 0: every prompt as likely, got {got}"
    sampler.set_scores([0.1, 0.2, 0.3, 0.4])
    got = sampler.probabilities()
    assert close(got, [0.1, 0.2, 0.3, 0.4]), (
        f"scores [0.1, 0.2, 0.3, 0.4] give p = [0.1, 0.2, 0.3, 0.4], got {got}"
        + (" (min-max normalised: the lowest prompt is never drawn)" if close(got, [0, 1 / 6, 2 / 6, 3 / 6]) else "")
        + (" (a softmax: the scores' differences barely count)" if abs(got[3] - got[0]) < 0.1 else ""))
    sampler.set_scores([0.3, 0.3, 0.3, 0.3])
    got = sampler.probabilities()
    assert close(got, [0.25] * 4), f"equal scores: every prompt as likely, got {got}"
    sampler.set_scores([0.0] * 4)
    got = sampler.probabilities()
    assert close(got, [0.25] * 4), f"every VPS 0 (nothing measured yet): every prompt as likely, got {got}"
    # from outcomes to the distribution: 4 prompts' outcomes and TDS -> OVS -> VPS (0.8 OVS + 0.2 TDS) -> p
    ovs = outcome_variance_score([[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    sampler.set_scores(vas.variance_promotion_score(ovs, [0.0, 0.5, 0.5, 0.0]))  # [0, 0.25, 0.3, 0]
    got = sampler.probabilities()
    assert close(got, [0, 0.25 / 0.55, 0.3 / 0.55, 0]), f"want [0, 0.455, 0.545, 0], got {got}"


# ------------------------------------------------------------------------------------------ 12. self-BLEU diversity

def check_tds(trajectory_diversity_score):
    """The paper's default TDS, 1 - self-BLEU, with tolerances that any faithful BLEU meets (its smoothing may
    differ)."""
    tds = lambda responses: trajectory_diversity_score(responses, "self_bleu")  # noqa: E731
    same = tds(["a b c d"] * 4)
    assert -1e-9 <= same <= 1e-9, (
        f"identical responses have no diversity, got {same:.4f}"
        + (": that is a similarity (self-BLEU itself), TDS is a diversity" if same > 0.9 else ""))
    # responses of different lengths with no token in common: completely diverse, whatever their lengths
    responses = [[1, 2], [3, 4], [5, 6, 7, 8, 9, 10]]
    for form in (["a b c d", "e f g h"], responses, [np.array(r) for r in responses],
                 [torch.tensor(r) for r in responses]):
        got, shown = tds(form), [r if isinstance(r, str) else list(r) for r in form]
        assert got <= 1 + 1e-9, f"TDS lies in [0, 1], got {got:.4f} for {shown}"
        assert 0.9 <= got, (
            f"{shown} share no token, so TDS is (close to) 1, got {got:.4f}: score each response on its own tokens; "
            "padding them to one length makes the pad runs look alike")
    near = tds(["a b c d e f g h", "a b c d e f g x"])  # one token changed at the end
    far = tds(["a b c d e f g h", "a b x y z w v u"])  # six of eight changed
    assert 0 < near < far <= 1 + 1e-9, (
        f"near-copies must score above 0 and below responses that share only a prefix; got {near:.4f} and {far:.4f}")
    got = tds(["a b c d", "a b e f"])
    assert 0.3 <= got <= 0.9, (
        f"'a b c d' vs 'a b e f' share 2 of 4 unigrams and 1 of 3 bigrams, so BLEU (1..3-grams, smoothed) lies "
        f"between 0.1 and 0.7 and TDS between 0.3 and 0.9; got {got:.4f}"
        + (" (no trigram in common gave BLEU 0: smooth the k-gram precisions)" if got > 0.99 else ""))
    got = tds(["a b c d", "a b c d", "e f g h"])
    assert abs(got - 1 / 3) < 0.05, (
        f"two copies and a stranger: each copy finds itself among its references (BLEU 1), the stranger finds "
        f"nothing (BLEU 0), so TDS = 1 - 2/3 = 1/3; got {got:.4f}"
        + (" (that scores each response against one other at a time, then averages)" if abs(got - 2 / 3) < 0.05
           else ""))
    got = tds(["a b", "a b c d e f g h"])
    assert got >= 0.6, (
        f"'a b' is the first quarter of 'a b c d e f g h', not a copy of it: TDS >= 0.6, got {got:.4f}"
        + (" (a short response has every n-gram in the long one: BLEU needs its brevity penalty)" if got < 0.5 else ""))


# ------------------------------------------------------------------------------------------ 13. the posterior

def _beta_vps(right, wrong, groups, tds_sum, prior, alpha=0.8, beta=0.2):
    """Pass rate, TDS and VPS of a prompt by hand: Beta(prior + right, prior + wrong) on P, OVS = E[P (1 - P)]
    = E[P] - E[P^2] = a b / ((a + b)(a + b + 1)), TDS the mean over its groups and `prior` pseudo-groups at 0.5."""
    a, b = prior + right, prior + wrong
    tds = (tds_sum + 0.5 * prior) / (groups + prior)
    return a / (a + b), tds, alpha * a * b / ((a + b) * (a + b + 1)) + beta * tds


def _posterior_says(sampler, want, where):
    """Compare the sampler's pass_rate, tds and scores with want = [(pass rate, TDS, VPS) per prompt]."""
    for name, column in zip(("pass_rate", "tds", "scores"), zip(*want)):
        got = np.asarray(getattr(sampler, name), dtype=float)
        assert close(got, column, 1e-6), f"{where}: {name} should be {np.round(column, 4)}, got {np.round(got, 4)}"


def check_posterior(sampler_cls):
    """The posterior VAS that `--vas` runs: `_posterior` (pass rate, TDS and VPS from the evidence) and `forget`,
    through `update`, which forgets once a step and then adds the step's groups."""
    # two prompts never drawn: the prior alone, Beta(0.1, 0.1)
    sampler = sampler_cls(2, batch_size=2, decay=0.98, prior=0.1)
    vps = np.asarray(sampler.scores, dtype=float)
    assert close(vps, [0.8 / 24 + 0.1] * 2, 1e-6), (
        f"a prompt never drawn: OVS = E[P (1 - P)] under Beta(0.1, 0.1) = 1/24 = 0.0417, TDS 0.5 (the prior's "
        f"pseudo-groups), VPS = 0.8 / 24 + 0.2 * 0.5 = 0.1333; got {vps.round(4)}"
        + (" (OVS 0.25: that is P (1 - P) of the mean P, not its expectation)" if close(vps, [0.3] * 2, 1e-6) else "")
        + (" (OVS 0.208: that is the variance of P, not the expected P (1 - P))" if close(vps, [0.8 * 0.01 / (
            0.04 * 1.2) + 0.1] * 2, 1e-6) else "") + (" (NaN: a prompt never drawn has no group, only the prior's)"
                                                        if np.isnan(vps).any() else ""))
    _posterior_says(sampler, [_beta_vps(0, 0, 0, 0, 0.1)] * 2, "never drawn")
    # prompt 0: a group of 8, all right, all alike (TDS 0); prompt 1: 4 of 8, no two sharing a word (TDS 1)
    sampler.update([0, 1], [[1] * 8, [1, 0] * 4], [["a b"] * 8, list("abcdefgh")], group=8)
    got = float(sampler.pass_rate[0])
    assert abs(got - 8.1 / 8.2) < 1e-6, (
        f"8 right of 8 on top of Beta(0.1, 0.1): a = 8.1, b = 0.1, pass rate 8.1 / 8.2 = 0.9878, got {got:.4f}"
        + (" (the step's group was forgotten too: forget first, then add)" if abs(got - 7.94 / 8.04) < 1e-6 else ""))
    _posterior_says(sampler, [_beta_vps(8, 0, 1, 0, 0.1), _beta_vps(4, 4, 1, 1, 0.1)], "after one group each")
    # 34 steps in which only prompt 1 is drawn, a group of two different answers, one right: prompt 0's evidence
    # fades all the same, to 0.98^34 = 0.503 of what it was; prompt 1 holds a sum of fading groups
    for _ in range(34):
        sampler.update([1], [[1, 0]], [["x", "y"]], group=2)
    w, fading = 0.98 ** 34, sum(0.98 ** k for k in range(34))
    _posterior_says(sampler, [_beta_vps(8 * w, 0, w, 0, 0.1),
                              _beta_vps(4 * w + fading, 4 * w + fading, w + fading, w + fading, 0.1)],
                    "after 34 more steps, prompt 1 drawn at each, prompt 0 never (every prompt forgets, every step)")
    # other settings, by hand: prior 1 (Beta(1, 1)), decay 0.5, alpha = beta = 0.5
    sampler = sampler_cls(1, batch_size=1, decay=0.5, prior=1.0, alpha=0.5, beta=0.5)
    sampler.update([0], [[1, 1]], [["a", "a"]], group=2)  # a = 3, b = 1: OVS 3 / 20, TDS 0.5 / 2, VPS 0.2
    assert close(sampler.scores, [0.2], 1e-6), (
        f"prior 1, alpha = beta = 0.5, two alike right answers: a = 3, b = 1, OVS = 0.15, TDS = 0.25, VPS = 0.2; "
        f"got {sampler.scores}: use the sampler's prior, alpha and beta")
    sampler.update([], [], [])  # the evidence halves: a = 2, b = 1, OVS 1/6, TDS 0.5 / 1.5, VPS 0.25
    assert close(sampler.scores, [0.25], 1e-6), (
        f"one step later with decay 0.5: right 1, one half group: a = 2, b = 1, OVS = 1/6, TDS = 1/3, VPS = 0.25; "
        f"got {sampler.scores}")


# ------------------------------------------------------------------------------------------ 14. the mixed sampler

def _sampler(sampler_cls, num_prompts, batch_size, ratio, p, seed=0):
    """A sampler whose weighted part is drawn from p (set as its scores too), whatever probabilities() does."""
    class Fixed(sampler_cls):
        def probabilities(self):
            return np.asarray(p, dtype=float)
    sampler = Fixed(num_prompts, batch_size=batch_size, mixture_ratio=ratio, seed=seed)
    sampler.set_scores(p)
    return sampler


def _not_epochs(draws: list[int], n: int) -> list[list[int]]:
    """The blocks of n consecutive draws (a last, shorter one included) that are not each prompt at most once."""
    blocks = [draws[i:i + n] for i in range(0, len(draws), n)]
    return [b for b in blocks if len(set(b)) != len(b) or not set(b) <= set(range(n))]


def check_sampler(sampler_cls):
    # lambda = 1: the whole batch by p, with replacement
    sampler = _sampler(sampler_cls, 4, 4, 1.0, [0.1, 0.2, 0.3, 0.4])
    batches = [sampler.next_batch() for _ in range(1000)]
    assert all(len(b) == 4 for b in batches), f"B = 4 prompt ids a batch, got {batches[0]}"
    share = np.bincount(np.ravel(batches), minlength=4) / 4000
    assert np.abs(share - [0.1, 0.2, 0.3, 0.4]).max() < 0.03, (
        f"lambda = 1: every prompt drawn from probabilities() [0.1, 0.2, 0.3, 0.4], got shares {share.round(3)}"
        + (" (each prompt once a batch: drawn without replacement)" if all(sorted(b) == [0, 1, 2, 3] for b in batches)
           else "") + (" (p ignored)" if np.abs(share - 0.25).max() < 0.03 else ""))
    try:
        got = _sampler(sampler_cls, 4, 4, 1.0, [0.0, 0.0, 0.0, 1.0]).next_batch()
    except ValueError as e:
        raise AssertionError(f"p = [0, 0, 0, 1]: {e}; the weighted part is drawn with replacement") from e
    assert list(got) == [3, 3, 3, 3], f"p = [0, 0, 0, 1] with lambda = 1 gives [3, 3, 3, 3], got {got}"
    # lambda = 0.5 and B = 5: floor(2.5) = 2 by p (all on prompt 7), then 3 from the epoch-long shuffle of 10
    sampler = _sampler(sampler_cls, 10, 5, 0.5, np.eye(10)[7])
    batches = [sampler.next_batch() for _ in range(10)]
    assert all(list(b[:2]) == [7, 7] for b in batches), f"the first floor(lambda B) = 2 ids by p, got {batches[:3]}"
    uniform = [i for b in batches for i in b[2:]]
    assert not _not_epochs(uniform, 10), (
        f"the other 3 ids of each batch, batch after batch, run through a shuffle of all 10 prompts, each once, then "
        f"a new shuffle; these blocks of 10 are not: {_not_epochs(uniform, 10)}")
    # lambda = 0, 5 prompts, B = 3: an epoch ends inside a batch, and the next one starts in the same batch
    sampler = _sampler(sampler_cls, 5, 3, 0.0, [0.2] * 5)
    draws = [i for _ in range(10) for i in sampler.next_batch()]
    assert not _not_epochs(draws, 5), (
        f"lambda = 0, 5 prompts, batches of 3: the draws in blocks of 5 are each prompt once; got "
        f"{[draws[i:i + 5] for i in range(0, 30, 5)]}")
    assert len({tuple(draws[i:i + 5]) for i in range(0, 30, 5)}) > 1, "a new shuffle each epoch, not the same order"
    # the focusing sampler (select=True): the weighted part is what selected() gives, the rest as before
    class Focus(sampler_cls):
        def _posterior(self):  # scores of no use here: this check needs no exercise 13
            pass

        def selected(self):
            return np.array([4, 4])
    sampler = Focus(6, batch_size=5, mixture_ratio=0.5, decay=0.98, select=True)
    batches = [sampler.next_batch() for _ in range(6)]
    assert all(list(b[:2]) == [4, 4] for b in batches) and not _not_epochs([i for b in batches for i in b[2:]], 6), (
        f"with self.select set, the first floor(lambda B) ids are self.selected()'s ([4, 4] here), the rest from the "
        f"shuffle; got {batches[:3]}")
    # the same seed, the same batches; and a sampler restored from state_dict() goes on exactly as the saved one
    state = np.random.get_state()
    try:
        np.random.seed(0)
        a, b = (_sampler(sampler_cls, 7, 4, 0.5, [0.1, 0.2, 0.0, 0.3, 0.1, 0.2, 0.1], seed=3) for _ in range(2))
        first = [a.next_batch() for _ in range(3)]
        assert [b.next_batch() for _ in range(3)] == first, (
            "two samplers of the same seed must give the same batches: draw from self.rng only")
        saved = a.state_dict()
        c = _sampler(sampler_cls, 7, 4, 0.5, [0.1, 0.2, 0.0, 0.3, 0.1, 0.2, 0.1], seed=99)
        c.load_state_dict(saved)
        later, resumed = [a.next_batch() for _ in range(5)], [c.next_batch() for _ in range(5)]
        assert later == resumed, (
            f"a sampler restored from state_dict() must go on as the saved one: {later} against {resumed}; keep the "
            "shuffle in self._order, self._cursor and self.epoch, and draw from self.rng only")
    finally:
        np.random.set_state(state)


# ------------------------------------------------------------------------------------------ 15-18. experiments

def check_epochs(runs):
    one, two = runs["one pass"][0], runs["two passes"][0]
    assert one["train/clip_frac"] == 0 and abs(one["train/ratio"] - 1) < 1e-4 and one["train/kl"] < 1e-6, (
        f"one pass: pi_old is the policy being trained and the reference too, so ratio 1, clip_frac 0, kl 0; got {one}")
    assert 0.01 < two["train/clip_frac"] < 0.5 and two["train/kl"] > 1e-3, (
        f"two passes: the second pass's stats are logged, after one optimiser step: some ratios leave [0.8, 1.2] "
        f"and the KL to the reference is no longer 0; got {two}")


def check_group_size(runs):
    g2 = np.mean([r["reward/zero_std_frac"] for r in runs["G = 2"]])
    g8 = np.mean([r["reward/zero_std_frac"] for r in runs["G = 8"]])
    assert g2 >= 0.2 and g8 <= 0.25 and g2 > g8 + 0.15, (
        f"all-equal groups: sum over rewards r of q_r^G falls fast with G; got {g2:.3f} at G = 2, {g8:.3f} at G = 8")


def check_vas_cost(runs):
    got = [r["rollouts/total"] for r in runs["vas"]]
    # step 0: a full scoring, 4 prompts x N = 4, plus B x G = 2 x 4 training; step 1: 8 more; step 2: both again
    assert got == [24, 32, 56], f"rollouts/total should be [24, 32, 56], got {got}"


def check_dead_share(runs):
    live, dead = (runs[label][0]["reward/zero_std_frac"] for label in ("d = 0", "d = 0.9"))
    # one step of B = 40 from a pool of 40 draws each prompt once; the 18 octagons of d = 0.9 are never right
    assert dead >= 0.45 and dead > live, (
        f"reward/zero_std_frac: {live:.3f} on the default pool, {dead:.3f} on the pool with 9 dead prompts in 10; "
        "the dead pool wastes more groups, at least the octagons' 18 of 40")
    assert [runs[label][0]["rollouts/total"] for label in runs] == [160, 160], "40 prompts x G = 4 in each run"


CHECKS = {"reward": check_reward, "mask": check_mask, "logprob": check_logprob, "advantage": check_advantage,
          "kl": check_kl, "surrogate": check_surrogate, "token_mean": check_token_mean, "normaliser": check_normaliser,
          "grpo_step": check_grpo_step, "agree": check_agree, "vps": check_vps, "tds": check_tds,
          "posterior": check_posterior, "sampler": check_sampler}
EXPERIMENT_CHECKS = {"epochs": check_epochs, "group_size": check_group_size, "vas_cost": check_vas_cost,
                     "dead_share": check_dead_share}


def implementations(modules):
    """The arguments of each check, taken from `modules` = {"mmr1": module, "vas": module, "derivation": module}."""
    m, v, d = modules["mmr1"], modules["vas"], modules["derivation"]
    return {"reward": (m.last_boxed,), "mask": (m.completion_mask,), "logprob": (m.completion_logprobs,),
            "advantage": (m.group_advantages,), "kl": (m.kl_k3,), "surrogate": (m.clipped_surrogate,),
            "token_mean": (m.masked_mean,), "normaliser": (m.backward,), "grpo_step": (m.grpo_step,),
            "agree": (d.agree_probability,), "vps": (v.outcome_variance_score, v.VarianceAwareSampler),
            "tds": (v.trajectory_diversity_score,), "posterior": (v.VarianceAwareSampler,),
            "sampler": (v.VarianceAwareSampler,)}


REFERENCE = {"mmr1": mmr1, "vas": vas, "derivation": derivation}


# ------------------------------------------------------------------------------------------ the exercises

def test_exercise_reward():
    check_reward(mmr1.last_boxed)


def test_exercise_mask():
    check_mask(mmr1.completion_mask)


def test_exercise_logprob():
    check_logprob(mmr1.completion_logprobs)


def test_exercise_advantage():
    check_advantage(mmr1.group_advantages)


def test_exercise_kl():
    check_kl(mmr1.kl_k3)


def test_exercise_surrogate():
    check_surrogate(mmr1.clipped_surrogate)


def test_exercise_token_mean():
    check_token_mean(mmr1.masked_mean)


def test_exercise_normaliser():
    check_normaliser(mmr1.backward)


def test_exercise_grpo_step():
    check_grpo_step(mmr1.grpo_step)


def test_exercise_agree():
    check_agree(derivation.agree_probability)


def test_exercise_vps():
    check_vps(vas.outcome_variance_score, vas.VarianceAwareSampler)


def test_exercise_tds():
    check_tds(vas.trajectory_diversity_score)


def test_exercise_posterior():
    check_posterior(vas.VarianceAwareSampler)


def test_exercise_sampler():
    check_sampler(vas.VarianceAwareSampler)


def run_experiment(name, cold_start, out_dir):
    """The runs of an experiment, each from the cold start: {run: its RL rows of metrics.jsonl}."""
    runs = {}
    for label, flags in EXPERIMENTS[name].items():
        out = os.path.join(out_dir, re.sub(r"\W+", "_", label))
        mmr1.main(["--init-from", cold_start, *flags, "--out", out])
        runs[label] = rows(out, "rl")
    return runs


def test_experiment_epochs(cold_start, tmp_path):
    check_epochs(run_experiment("epochs", cold_start, str(tmp_path)))


def test_experiment_group_size(cold_start, tmp_path):
    check_group_size(run_experiment("group_size", cold_start, str(tmp_path)))


def test_experiment_vas_cost(cold_start, tmp_path):
    check_vas_cost(run_experiment("vas_cost", cold_start, str(tmp_path)))


def test_experiment_dead_share(cold_start, tmp_path):
    check_dead_share(run_experiment("dead_share", cold_start, str(tmp_path)))


# ------------------------------------------------------------------------------------------ blanking

def _find(tree, qualname):
    """The function node `qualname` ("f" or "Class.method") of a module's tree."""
    scope = tree
    for name in qualname.split("."):
        scope = next(node for node in scope.body if getattr(node, "name", None) == name)
    return scope


def _branch(func, label):
    """The `if` statement of `func` whose test compares with the constant `label`, e.g. `if method == "label":`."""
    return next(node for node in ast.walk(func) if isinstance(node, ast.If) and any(
        isinstance(c, ast.Constant) and c.value == label for c in ast.walk(node.test)))


def _docstring(func):
    body = func.body
    return body[0] if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
        else None


def blank_source(source: str, pieces: list[str]) -> str:
    """`source` with each piece ("f", "Class.method", or "f[label]" for f's branch on `label`) replaced by
    raise NotImplementedError: a function keeps its signature and its docstring's first paragraph (what it returns),
    a branch keeps its `if` line. What a teacher hands out."""
    tree, lines = ast.parse(source), source.splitlines(keepends=True)
    edits = []  # (first line, last line, 1-based and inclusive, replacement lines)
    for piece in pieces:
        qualname, _, label = piece.partition("[")
        func = _find(tree, qualname)
        if label:
            block = _branch(func, label[:-1]).body
            what = f"the {label[:-1]} branch"
            start, kept = block[0].lineno, []
        else:
            block, doc, what = func.body, _docstring(func), qualname
            start, kept = (doc or block[0]).lineno, []
            if doc:
                text = lines[doc.lineno - 1:doc.end_lineno]
                cut = next((i for i, line in enumerate(text) if not line.strip()), None)  # the first blank line
                kept = text if cut is None else text[:cut - 1] + [text[cut - 1].rstrip("\n") + '"""\n']
                block = block[1:]
        indent = " " * block[0].col_offset
        raise_line = f'{indent}raise NotImplementedError("exercise: write {what}, see EXERCISES.md")\n'
        edits.append((start, block[-1].end_lineno, kept + [raise_line]))
    for start, end, new in sorted(edits, reverse=True):  # bottom up: line numbers stay valid
        lines[start - 1:end] = new
    return "".join(lines)


def targets(names):
    """{"mmr1": [pieces], "vas": [...], "derivation": [...]} for the exercises `names`, each piece once."""
    out = {file: [] for file in FILES}
    for name in names:
        for target in EXERCISES[name]:
            file, piece = target.split(":")
            if piece not in out[file]:
                out[file].append(piece)
    return out


def load_blanked(names, tag):
    """Fresh copies of the modules with the exercises' pieces blanked (the real files are not touched)."""
    modules = dict(REFERENCE)
    for file, pieces in targets(names).items():
        if not pieces:
            continue
        path = os.path.join(ROOT, FILES[file])
        module = types.ModuleType(f"{file}_blank_{tag}")
        module.__file__ = path
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(blank_source(open(path).read(), pieces), path, "exec"), module.__dict__)
        modules[file] = module
    return modules


# ------------------------------------------------------------------------------------------ common mistakes

def adv_population_std(rewards, group_size, eps=1e-6, scale_std=True):
    r = rewards.float().view(-1, group_size)
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, unbiased=False, keepdim=True) + eps)).view(-1)


def adv_no_eps(rewards, group_size, eps=1e-6, scale_std=True):
    r = rewards.float().view(-1, group_size)
    return ((r - r.mean(1, keepdim=True)) / r.std(1, keepdim=True)).view(-1)


def adv_strided_groups(rewards, group_size, eps=1e-6, scale_std=True):
    r = rewards.float().view(group_size, -1).T  # groups taken every G-th row
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + eps)).T.reshape(-1)


def kl_flipped_d(logp, ref_logp):
    d = logp - ref_logp
    return torch.exp(d) - d - 1


def kl_k1(logp, ref_logp):
    return logp - ref_logp


def surrogate_with(pick=torch.max, swap_clip=False, detach_ratio=False, inverted=False):
    """A clipped surrogate with one mistake switched on."""
    def clipped_surrogate(logp, old_logp, advantages, clip_low=0.2, clip_high=0.2):
        lo, hi = (clip_high, clip_low) if swap_clip else (clip_low, clip_high)
        log_ratio = (logp.detach() if detach_ratio else logp) - old_logp
        ratio = torch.exp(-log_ratio if inverted else log_ratio)  # inverted: pi_old / pi
        adv = advantages.unsqueeze(1)
        return pick(-adv * ratio, -adv * torch.clamp(ratio, 1 - lo, 1 + hi))
    return clipped_surrogate


def mean_with(kind):
    """A masked mean with one mistake switched on."""
    def masked_mean(values, mask, seq_mean=False):
        if kind == "filler_rows_counted" and seq_mean:
            return ((values * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
        if kind == "mean_over_sequences" or seq_mean:
            return ((values * mask).sum(1) / mask.sum(1).clamp(min=1)).sum() / mask.amax(1).sum().clamp(min=1)
        if kind == "padding_in_denominator":
            return (values * mask).sum() / mask.numel()
        if kind == "padding_values_counted":
            return values.sum() / mask.sum().clamp(min=1)
        if kind == "empty_mask_nan":
            return (values * mask).sum() / mask.sum()  # 0 / 0 when no token is real
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return masked_mean


def normaliser_with(kind):
    """A micro-batch backward with one mistake switched on."""
    def backward(loss, units, total):
        if kind == "sum_of_means":  # every part's mean at weight 1: more parts, a larger gradient
            loss.backward()
            return 1.0
        if kind == "token_sum":  # the part's sum, not its share of the mean
            (loss * units * mmr1.world()).backward()
            return float(units)
        share = float(units / total)
        (loss * share * (1 if kind == "no_world" else mmr1.world())).backward()
        return 1.0 if kind == "weight_not_returned" else share
    return backward


def logprob_with(kind):
    """Completion log-probs with one mistake switched on."""
    def completion_logprobs(logits, completions, temperature=1.0):
        c = completions.shape[1]
        z = logits[:, -c:] if kind == "not_shifted" else logits[:, -c - 1:-1]
        z = z.float() / (1.0 if kind == "no_temperature" else temperature)
        logp = torch.log_softmax(z, 1 if kind == "softmax_over_positions" else -1)
        if kind == "temperature_after":
            logp = torch.log_softmax(z * temperature, -1) / temperature
        return logp.gather(-1, completions.unsqueeze(-1)).squeeze(-1)
    return completion_logprobs


def mask_mistake(kind):
    def completion_mask(completions, eos):
        is_eos = (completions == eos).long()
        if kind == "padding_counted":
            return torch.ones_like(completions, dtype=torch.float)
        if kind == "eos_dropped":  # end-of-turn treated like padding: the model never learns to stop
            return (is_eos.cumsum(1) == 0).float()
        if kind == "last_eos":  # cut at the last end-of-turn: trains on what follows the first
            return (is_eos.flip(1).cumsum(1).flip(1) - is_eos > 0).float() + (is_eos.sum(1, keepdim=True) == 0).float()
        return (completions != 0).float()  # "not padding": a sampled <|endoftext|> and tokens after the end count
    return completion_mask


def boxed_lazy_regex(text):
    found = re.findall(r"\\boxed\s*\{(.*?)\}", text)
    return found[-1] if found else None


def boxed_first(text):
    m = re.search(r"\\boxed\s*\{", text)
    if not m:
        return None
    depth, i = 1, m.end()
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[m.end():i - 1] if depth == 0 else None


def agree_with(kind):
    """The chance that a group agrees, with one mistake switched on."""
    def agree_probability(ovs, group_size):
        p = (1 + math.sqrt(max(0.0, 1 - 4 * ovs))) / 2
        if kind == "all_right_only":  # forgets the groups where every rollout is wrong
            return p ** group_size
        if kind == "linear_in_ovs":  # right for G = 2 and 3 only
            return 1 - group_size * ovs
        if kind == "ovs_as_pass_rate":
            return ovs ** group_size + (1 - ovs) ** group_size
        return 1 - ovs  # "no_group_size": the chance that two rollouts differ is not that of G
    return agree_probability


def ovs_sample_variance(correct):
    return np.var(np.asarray(correct, dtype=float), axis=-1, ddof=1)


def ovs_std(correct):
    p = np.mean(np.asarray(correct, dtype=float), axis=-1)
    return np.sqrt(p * (1 - p))


class MinMaxSampler(vas.VarianceAwareSampler):
    def probabilities(self):
        with np.errstate(invalid="ignore"):  # equal scores: 0 / 0
            s = (self.scores - self.scores.min()) / (self.scores.max() - self.scores.min())
            return s / s.sum()


class SoftmaxSampler(vas.VarianceAwareSampler):
    def probabilities(self):
        e = np.exp(self.scores)
        return e / e.sum()


class NoFallbackSampler(vas.VarianceAwareSampler):
    def probabilities(self):
        with np.errstate(invalid="ignore"):  # every score 0: 0 / 0
            return self.scores / self.scores.sum()


def tds_padded(responses, method="self_bleu", n=3):
    """Pads every response to one length first, as the official code scores padded sequences."""
    toks = [vas._tokens(r) for r in responses]
    width = max(map(len, toks))
    padded = [t + ["<pad>"] * (width - len(t)) for t in toks]
    return vas.trajectory_diversity_score([" ".join(map(str, t)) for t in padded], method, n)


def tds_similarity(responses, method="self_bleu", n=3):
    return 1.0 - vas.trajectory_diversity_score(responses, method, n)  # raw self-BLEU, as the official code adds


def tds_with(bleu):
    """1 - the mean over responses of bleu(response, the others, n)."""
    def trajectory_diversity_score(responses, method="self_bleu", n=3):
        toks = [vas._tokens(r) for r in responses]
        return 1.0 - float(np.mean([bleu(t, toks[:i] + toks[i + 1:], n) for i, t in enumerate(toks)]))
    return trajectory_diversity_score


def bleu_pairwise(hyp, refs, n):  # one reference at a time, averaged: a copy among several is no longer found
    return float(np.mean([vas._bleu(hyp, [r], n) for r in refs]))


def bleu_no_brevity(hyp, refs, n):  # a short prefix of a reference scores as its copy
    ref_len = min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
    brevity = 1.0 if len(hyp) >= ref_len else math.exp(1.0 - ref_len / len(hyp))
    return vas._bleu(hyp, refs, n) / brevity


def bleu_unsmoothed(hyp, refs, n):  # any k-gram order without a match makes BLEU 0
    for k in range(1, n + 1):
        grams = vas._ngrams(hyp, k)
        if not any(g in vas._ngrams(r, k) for r in refs for g in grams):
            return 0.0
    return vas._bleu(hyp, refs, n)


def sampler_with(kind):
    """The mixed sampler with one mistake switched on in next_batch."""
    class Sampler(vas.VarianceAwareSampler):
        def next_batch(self):
            rng = np.random if kind == "global_rng" else self.rng
            k = math.ceil(self.mixture_ratio * self.batch_size) if kind == "rounded_up_split" else self.num_weighted
            if kind == "without_replacement":
                weighted = rng.choice(self.num_prompts, size=k, replace=False, p=self.probabilities())
            elif kind == "weighted_uniformly":
                weighted = rng.choice(self.num_prompts, size=k)
            elif self.select and kind != "select_ignored":
                weighted = self.selected()
            else:
                weighted = rng.choice(self.num_prompts, size=k, p=self.probabilities())
            if kind == "uniform_with_replacement":
                return [int(i) for i in weighted] + [int(i) for i in rng.integers(self.num_prompts,
                                                                                   size=self.batch_size - k)]
            need = self.batch_size - k
            if kind == "leftover_dropped" and self._cursor + need > len(self._order):  # a new epoch for every batch
                self._order, self._cursor = rng.permutation(self.num_prompts), 0  # that the old one cannot fill
            uniform = []
            for _ in range(need):
                if self._cursor == len(self._order):
                    self._order, self._cursor = rng.permutation(self.num_prompts), 0
                    self.epoch += 1
                uniform.append(int(self._order[self._cursor]))
                self._cursor += 1
            return [int(i) for i in weighted] + uniform
    return Sampler


def step_with(kind):
    """One GRPO step with one mistake switched on."""
    def grpo_step(policy, opt, rollouts, ref_logp, args):
        rewards = rollouts.correct if kind == "accuracy_only" else rollouts.rewards
        adv = mmr1.group_advantages(rewards, args.group_size, scale_std=args.scale_std or kind == "always_std")
        frozen = args.update_epochs > 1 and kind != "pi_old_not_frozen"  # else each pass takes its own pi_old
        old = mmr1.frozen_logprobs(policy.model, policy, rollouts, args) if frozen else None
        passes = [mmr1.grpo_update(policy, opt, rollouts, adv, ref_logp, args, old)
                  for _ in range(1 if kind == "one_pass" else args.update_epochs)]
        loss, stats, grad_norm, _ = passes[-1]
        return loss, stats, grad_norm, sum(stepped == (kind == "counts_steps") for *_, stepped in passes)
    return grpo_step


def posterior_with(kind):
    """The posterior sampler with one mistake switched on in _posterior or forget."""
    class Sampler(vas.VarianceAwareSampler):
        def _posterior(self):
            if kind == "forget_after_adding":  # forget() does nothing; the evidence decays once the step's is in
                for values in self.evidence.values():
                    values *= self.decay
            right, wrong, groups, tds = (self.evidence[name] for name in vas.EVIDENCE)
            a, b = self.prior + right, self.prior + wrong
            with np.errstate(invalid="ignore", divide="ignore"):  # the mistakes that divide 0 by 0
                self.pass_rate = right / (right + wrong) if kind == "pass_rate_without_prior" else a / (a + b)
                self.tds = tds / groups if kind == "no_pseudo_groups" else (tds + 0.5 * self.prior) / (
                    groups + self.prior)
            ovs = a * b / ((a + b) * (a + b + 1))  # E[P (1 - P)]
            if kind == "plug_in_ovs":  # P (1 - P) of the posterior mean
                ovs = a / (a + b) * (1 - a / (a + b))
            if kind == "posterior_variance":  # Var[P], the uncertainty about P
                ovs = a * b / ((a + b) ** 2 * (a + b + 1))
            self.scores = vas.variance_promotion_score(ovs, self.tds, self.alpha, self.beta)

        def forget(self):
            if kind == "forget_after_adding":
                return
            for name, values in self.evidence.items():
                if kind == "rebinding":  # a new array under a loop variable: the evidence itself stays
                    values = values * self.decay  # noqa: F841
                elif kind != "tds_not_forgotten" or name in ("right", "wrong"):
                    values *= self.decay
    return Sampler


MISTAKES = {  # exercise -> {mistake: arguments of the check}
    "reward": {"lazy_regex": (boxed_lazy_regex,), "first_box": (boxed_first,)},
    "mask": {kind: (mask_mistake(kind),) for kind in ("padding_counted", "eos_dropped", "last_eos", "not_padding")},
    "logprob": {kind: (logprob_with(kind),) for kind in ("not_shifted", "softmax_over_positions", "no_temperature",
                                                          "temperature_after")},
    "advantage": {"population_std": (adv_population_std,), "no_eps": (adv_no_eps,),
                  "strided_groups": (adv_strided_groups,)},
    "kl": {"flipped_d": (kl_flipped_d,), "k1": (kl_k1,)},
    "surrogate": {"min_not_max": (surrogate_with(pick=torch.min),), "swapped_clip": (surrogate_with(swap_clip=True),),
                  "detached_ratio": (surrogate_with(detach_ratio=True),),
                  "inverted_ratio": (surrogate_with(inverted=True),)},
    "token_mean": {kind: (mean_with(kind),) for kind in ("mean_over_sequences", "padding_in_denominator",
                                                          "padding_values_counted", "empty_mask_nan",
                                                          "filler_rows_counted")},
    "normaliser": {kind: (normaliser_with(kind),) for kind in ("sum_of_means", "token_sum", "no_world",
                                                                "weight_not_returned")},
    "grpo_step": {kind: (step_with(kind),) for kind in ("accuracy_only", "always_std", "one_pass", "counts_steps",
                                                         "pi_old_not_frozen")},
    "agree": {kind: (agree_with(kind),) for kind in ("all_right_only", "linear_in_ovs", "ovs_as_pass_rate",
                                                      "no_group_size")},
    "vps": {"sample_variance": (ovs_sample_variance, vas.VarianceAwareSampler),
            "std": (ovs_std, vas.VarianceAwareSampler),
            "min_max": (vas.outcome_variance_score, MinMaxSampler),
            "softmax": (vas.outcome_variance_score, SoftmaxSampler),
            "no_fallback": (vas.outcome_variance_score, NoFallbackSampler)},
    "tds": {"padded": (tds_padded,), "similarity": (tds_similarity,), "pairwise": (tds_with(bleu_pairwise),),
            "no_brevity_penalty": (tds_with(bleu_no_brevity),), "unsmoothed": (tds_with(bleu_unsmoothed),)},
    "posterior": {kind: (posterior_with(kind),) for kind in ("plug_in_ovs", "posterior_variance",
                                                              "pass_rate_without_prior", "no_pseudo_groups",
                                                              "forget_after_adding", "rebinding", "tds_not_forgotten")},
    "sampler": {kind: (sampler_with(kind),) for kind in ("without_replacement", "weighted_uniformly",
                                                          "uniform_with_replacement", "rounded_up_split",
                                                          "leftover_dropped", "global_rng", "select_ignored")},
}


# ------------------------------------------------------------------------------------------ meta-tests

def test_checks_and_mistakes_cover_every_exercise():
    assert set(CHECKS) == set(EXERCISES) == set(MISTAKES) and set(EXPERIMENT_CHECKS) == set(EXPERIMENTS)
    assert all(len(MISTAKES[name]) >= 2 for name in EXERCISES), "every check rejects at least two mistakes"
    pieces = [target for funcs in EXERCISES.values() for target in funcs]
    assert len(pieces) == len(set(pieces)), "a piece belongs to one exercise only"
    functions = [target.partition("[")[0] for target in pieces]
    assert len(functions) == len(set(functions)), "a function belongs to one exercise only"


@pytest.mark.parametrize("name", list(EXERCISES))
def test_check_catches_blank(name):
    with pytest.raises(NotImplementedError, match="EXERCISES.md"):
        CHECKS[name](*implementations(load_blanked([name], name))[name])


@pytest.mark.parametrize("name, mistake", [(n, m) for n in MISTAKES for m in MISTAKES[n]])
def test_check_catches_mistake(name, mistake):
    with pytest.raises(AssertionError):
        CHECKS[name](*MISTAKES[name][mistake])


def _first_paragraph(doc: str) -> str:
    return inspect.cleandoc(doc).split("\n\n")[0]


def _spans(source: str, pieces: list[str]) -> list[tuple[int, int]]:
    """0-based line ranges [start, end) that blanking may change: of a function, from its docstring (or its first
    statement) to its end; of a branch, its body."""
    tree, spans = ast.parse(source), []
    for piece in pieces:
        qualname, _, label = piece.partition("[")
        func = _find(tree, qualname)
        first = _branch(func, label[:-1]).body[0] if label else func.body[0]
        last = _branch(func, label[:-1]).body[-1] if label else func.body[-1]
        spans.append((first.lineno - 1, last.end_lineno))
    return sorted(spans)


def _outside(lines: list[str], spans) -> list[str]:
    out, at = [], 0
    for start, end in spans:
        out += lines[at:start] + ["<blanked>\n"]
        at = end
    return out + lines[at:]


@pytest.mark.parametrize("name", list(EXERCISES))
def test_blank_changes_only_the_exercises_pieces(name):
    """`--blank NAME` leaves every line outside NAME's pieces as it was (both files cut by their own syntax tree,
    not by the blanking code); a blanked function is its signature, its docstring's first paragraph and one `raise`,
    a blanked branch its `if` line and one `raise`."""
    for file, pieces in targets([name]).items():
        if not pieces:
            continue
        source = open(os.path.join(ROOT, FILES[file])).read()
        blanked = blank_source(source, pieces)
        assert _outside(source.splitlines(True), _spans(source, pieces)) == \
            _outside(blanked.splitlines(True), _spans(blanked, pieces)), f"{file}: lines outside {pieces} changed"
        old, new = ast.parse(source), ast.parse(blanked)
        for piece in pieces:
            qualname, _, label = piece.partition("[")
            before, after = _find(old, qualname), _find(new, qualname)
            body = _branch(after, label[:-1]).body if label else after.body
            if not label:
                assert ast.dump(before.args) == ast.dump(after.args), f"{qualname}: the signature changed"
                assert _docstring(after) and ast.get_docstring(after) == _first_paragraph(ast.get_docstring(before))
                body = body[1:]
            assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{piece}: the body is not one raise"


def _expressions(nodes) -> set[str]:
    """The compound expressions (operators, calls with arguments, subscripts) of `nodes`, unparsed without spaces
    and without the module prefixes torch., np., math. and self. (a call without arguments names an API)."""
    found = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, (ast.BinOp, ast.Subscript, ast.Compare, ast.BoolOp, ast.UnaryOp)) or (
                    isinstance(sub, ast.Call) and (sub.args or sub.keywords)):
                text = re.sub(r"\b(torch|np|math|self)\.", "", ast.unparse(sub)).replace(" ", "")
                if len(text) >= 6:
                    found.add(text)
    return found


def _removed(source: str, piece: str):
    """The statements that blanking `piece` removes."""
    qualname, _, label = piece.partition("[")
    func = _find(ast.parse(source), qualname)
    return _branch(func, label[:-1]).body if label else func.body[1 if _docstring(func) else 0:]


def test_kept_docstrings_say_what_not_how():
    """Each blanked function keeps at least one sentence of its docstring, and no expression of its body."""
    for file, pieces in targets(EXERCISES).items():
        source = open(os.path.join(ROOT, FILES[file])).read()
        blanked = ast.parse(blank_source(source, pieces))
        for piece in pieces:
            doc = ast.get_docstring(_find(blanked, piece.partition("[")[0]))
            assert doc and len(doc.split()) >= 5 and doc.rstrip().endswith("."), f"{piece}: {doc!r}"
            flat = doc.replace(" ", "").replace("\n", "")
            leaked = [e for e in _expressions(_removed(source, piece)) if e in flat]
            assert not leaked, f"{piece}: the kept docstring holds {leaked}"


def test_exercises_md_holds_no_reference_expression():
    """EXERCISES.md, hints included, spells out no expression of a reference body."""
    text = open(os.path.join(ROOT, "EXERCISES.md")).read()
    assert "\n## Hints" in text, "EXERCISES.md keeps its hints in a section of their own"
    flat = text.replace(" ", "").replace("`", "")
    for name in EXERCISES:
        for file, pieces in targets([name]).items():
            source = open(os.path.join(ROOT, FILES[file])).read()
            for piece in pieces:
                leaked = [e for e in _expressions(_removed(source, piece)) if e in flat]
                assert not leaked, f"EXERCISES.md spells out {leaked} of {piece}"


# ------------------------------------------------------------------------------------------ the solutions

SOLUTIONS = os.path.join(ROOT, "docs", "solutions.md")
ITEMS = [*EXERCISES, *EXPERIMENTS]  # exercise or experiment number n is ITEMS[n - 1]
NAME = re.compile(r"[\w./-]+(\(\))?")  # a code span that only names: a function, a flag, a metric, a mistake
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?")  # 1,920 is one number


def _solutions() -> str:
    if not os.path.exists(SOLUTIONS):  # a teacher keeps it back on the students' branch
        pytest.skip("docs/solutions.md is kept back")
    return open(SOLUTIONS).read()


def _sections(text: str) -> dict[int, tuple[str, str]]:
    """{n: (title, body)} of the `### n. title` sections of a markdown text, each body up to the next heading."""
    parts = re.split(r"^### (\d+)\. (.+)$", text, flags=re.M)
    return {int(n): (title, re.split(r"^##+ ", body, flags=re.M)[0])
            for n, title, body in zip(parts[1::3], parts[2::3], parts[3::3])}


def _rejected(body: str) -> dict[str, str]:
    """{mistake: description} of a solution's list "- `mistake`: description" (a description may wrap)."""
    return {m: " ".join(d.split()) for m, d in re.findall(r"^- `(\w+)`: (.+?)(?=^- |\Z)", body, re.M | re.S)}


def _answers(body: str) -> list[str]:
    """A solution's answers: its code spans, but those that only name something, and its rejected mistakes'
    descriptions."""
    rejected = _rejected(body)
    spans = [s for s in re.findall(r"`([^`]+)`", body.split("**Rejected.**")[0]) if not NAME.fullmatch(s)]
    return spans + list(rejected.values())


def _flat(text: str) -> str:
    """Text compared without what may vary: spaces, backticks, the sign of a product, the minus sign."""
    text = text.replace("**", "^").replace("−", "-")
    return re.sub(r"[\s`*·×]", "", text)


def test_solutions_follow_the_exercises():
    """The solutions answer every exercise and experiment under its number and title in EXERCISES.md, whose table,
    hints and numbering follow EXERCISES and EXPERIMENTS; each exercise's solution names exactly the mistakes its
    check rejects."""
    solutions, text = _sections(_solutions()), open(os.path.join(ROOT, "EXERCISES.md")).read()
    exercises = _sections(text)
    numbers = list(range(1, len(ITEMS) + 1))
    assert sorted(exercises) == sorted(solutions) == numbers, (sorted(exercises), sorted(solutions))
    for n, name in enumerate(ITEMS, 1):
        kind = "exercise" if name in EXERCISES else "experiment"
        assert exercises[n][0] == solutions[n][0], f"{n}: {exercises[n][0]!r} in EXERCISES.md, {solutions[n][0]!r}"
        assert re.search(rf"^\| {n} \|.*-k {kind}_{name}`", text, re.M), f"table row {n} is not {kind} {name}"
        body = solutions[n][1]
        if kind == "exercise":
            assert f"<summary>{n}. {exercises[n][0]}</summary>" in text, f"no hint {n}. {exercises[n][0]}"
            assert "**Answer.**" in body and "**Think.**" in body, f"solution {n} lacks its answer or its Think"
            named, rejected = sorted(_rejected(body)), sorted(MISTAKES[name])
            assert named == rejected, f"solution {n} names the mistakes {named}, its check rejects {rejected}"
        else:
            assert "**Expected.**" in body, f"solution {n} gives no expected results"


def test_no_exercise_text_holds_a_solution():
    """No answer of the solutions (a code span that does not only name, a rejected mistake's description) is in
    EXERCISES.md, hints included, nor anywhere in the blanked files, kept docstrings included; the numbers that are
    an experiment's results are not in the prose of that experiment."""
    solutions, text = _sections(_solutions()), open(os.path.join(ROOT, "EXERCISES.md")).read()
    exercises = _sections(text)
    texts = {"EXERCISES.md": _flat(text)}
    for file, pieces in targets(EXERCISES).items():
        texts[f"blanked {FILES[file]}"] = _flat(blank_source(open(os.path.join(ROOT, FILES[file])).read(), pieces))
    for n, (title, body) in solutions.items():
        prose = NUMBER.findall(re.sub(r"```.*?```", "", exercises[n][1], flags=re.S))  # not the commands
        for answer in _answers(body):
            if re.fullmatch(r"[\d.,\s]+", answer):  # an experiment's result
                assert not set(NUMBER.findall(answer)) & set(prose), f"{n}. {title}: EXERCISES.md gives {answer}"
                continue
            leaked = [where for where, flat in texts.items() if _flat(answer) in flat]
            assert not leaked, f"{n}. {title}: {leaked} hold the answer {answer!r}"


def test_blanked_modules_import_and_keep_signatures():
    blanked = load_blanked(list(EXERCISES), "all")
    for file, pieces in targets(EXERCISES).items():
        for piece in pieces:
            new, old = blanked[file], REFERENCE[file]
            for part in piece.partition("[")[0].split("."):
                new, old = getattr(new, part), getattr(old, part)
            assert inspect.signature(new) == inspect.signature(old)
            assert new.__doc__ and _first_paragraph(old.__doc__) == inspect.cleandoc(new.__doc__).split("\n\n")[0]
    assert blanked["mmr1"].normalise(" 3.0 ") == "3" and blanked["vas"].DIVERSITY_METHODS  # the rest is untouched
    assert blanked["vas"].trajectory_diversity_score(["a b", "a c"], "edit") == 0.5  # the other diversity measures
    with pytest.raises(NotImplementedError, match="EXERCISES.md"):
        blanked["vas"].outcome_variance_score([1, 0])


NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split()


def test_exercises_md_names_every_exercise_and_experiment_and_counts_them():
    text = open(os.path.join(ROOT, "EXERCISES.md")).read()
    for name, pieces in EXERCISES.items():
        assert f"-k exercise_{name}`" in text, name
        for target in pieces:
            assert target.partition("[")[0].replace(":", ".") in text, target
    for name, runs in EXPERIMENTS.items():
        assert f"-k experiment_{name}`" in text, name
        for flags in runs.values():
            assert " ".join(flags) in text, (name, " ".join(flags))
    assert " ".join(COLD_START) in text
    single = sum(len(pieces) == 1 and "[" not in pieces[0] for pieces in EXERCISES.values())
    count = (f"{NUMBERS[len(EXERCISES)].capitalize()} exercises, then {NUMBERS[len(EXPERIMENTS)]} experiments. "
             f"{NUMBERS[single].capitalize()} exercises ask for one function, {NUMBERS[len(EXERCISES) - single]} for "
             "two pieces")
    assert count in " ".join(text.split()), count
    # the class time: each exercise and experiment in one lab, "- Lab k, ...: exercises 1–9, then experiment 15."
    labs = [sorted(n for first, last in re.findall(r"(\d+)(?:–(\d+))?", line.split(":")[1].split(".")[0])
                   for n in range(int(first), int(last or first) + 1))
            for line in re.findall(r"^- Lab \d.*$", text, re.M)]
    assert "two labs of 3–4 hours" in text and len(labs) == 2, labs
    assert sorted(n for lab in labs for n in lab) == list(range(1, len(EXERCISES) + len(EXPERIMENTS) + 1)), labs


def main(argv=None):
    parser = argparse.ArgumentParser(description="Blank the reference bodies of the exercises' functions in place.")
    parser.add_argument("--blank", nargs="*", metavar="EXERCISE", help=f"exercises to blank (default all): "
                        f"{', '.join(EXERCISES)}")
    parser.add_argument("--list", action="store_true", help="list the exercises, their functions, the experiments")
    args = parser.parse_args(argv)
    if args.list or args.blank is None:  # numbered as in EXERCISES.md
        for n, (name, pieces) in enumerate(EXERCISES.items(), 1):
            print(f"{n:>2}  {name:<12} {', '.join(pieces)}")
        for n, (name, runs) in enumerate(EXPERIMENTS.items(), len(EXERCISES) + 1):
            for label, flags in runs.items():
                print(f"{n:>2}  {name:<12} {label}: python mmr1.py --init-from COLD/sft {' '.join(flags)}")
        return
    unknown = set(args.blank) - set(EXERCISES)
    if unknown:
        parser.error(f"unknown exercise(s) {sorted(unknown)}; choose from {', '.join(EXERCISES)}")
    for file, pieces in targets(args.blank or list(EXERCISES)).items():
        if pieces:
            path = os.path.join(ROOT, FILES[file])
            with open(path) as f:
                source = blank_source(f.read(), pieces)  # read all before writing anything
            with open(path, "w") as f:
                f.write(source)
            print(f"blanked in {FILES[file]}: {', '.join(pieces)}")
    print(f"restore the reference implementations with: git checkout -- {' '.join(FILES.values())}")


if __name__ == "__main__":
    main()
