"""Classroom exercises: one function of mmr1.py or vas.py each, with a check that tells a right implementation
from a wrong one; then three experiments, each a short run whose metric the student predicts first.

A student replaces the body of one function and runs that exercise's test, e.g.
    python -m pytest -q tests/test_exercises.py -k exercise_advantage
EXERCISES.md lists the exercises, their commands and hints. A teacher blanks the reference bodies with
    python tests/test_exercises.py --blank              # all exercises; or name some: --blank advantage kl
and `git checkout -- mmr1.py vas.py` brings the references back. No function belongs to two exercises, so a
student can take them one at a time, and the CLI runs on each function as soon as its exercise passes.

Each `check_<name>` takes the implementation as an argument and raises AssertionError with a hint when it is wrong.
`test_exercise_<name>` runs it on the functions of mmr1.py / vas.py. The meta-tests at the end run every check on
the blanked body (which raises NotImplementedError) and on common mistakes (population std, the KL's d with the
wrong sign, min instead of max, a mean over sequences, log-probs not shifted, diversity on padded responses, ...),
and require it to fail; and they check that blanking an exercise changes its functions and nothing else.
`test_experiment_<name>` makes the short runs of an experiment from the tests' cold start and checks that the
answer EXERCISES.md gives holds on them.
"""
import argparse
import ast
import dataclasses
import difflib
import inspect
import math
import os
import sys
import types
from unittest import mock

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import mmr1  # noqa: E402
import vas  # noqa: E402
from helpers import COLD_START, FROM_COLD_START, rows  # noqa: E402

# exercise -> the functions a student writes for it ("file:qualified name"); each function in one exercise only
EXERCISES = {
    "advantage": ["mmr1:group_advantages"],
    "kl": ["mmr1:kl_k3"],
    "surrogate": ["mmr1:clipped_surrogate"],
    "token_mean": ["mmr1:masked_mean"],
    "logprob": ["mmr1:completion_logprobs"],
    "mask": ["mmr1:completion_mask"],
    "reward": ["mmr1:last_boxed"],
    "ovs": ["vas:outcome_variance_score"],
    "tds": ["vas:trajectory_diversity_score"],
    "vps": ["vas:variance_promotion_score", "vas:VarianceAwareSampler.probabilities"],
    "grpo_step": ["mmr1:grpo_step"],
}

# experiment -> {run: flags of `python mmr1.py --init-from COLD/sft ...`}; every run starts from the same cold start
SHORT = [*FROM_COLD_START, "--num-rl", "8", "--num-test", "4", "--eval-every", "0"]
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
}


def close(got, want, tol=1e-5):
    got, want = np.asarray(got.tolist() if hasattr(got, "tolist") else got, dtype=float), np.asarray(want, dtype=float)
    return got.shape == want.shape and np.allclose(got, want, atol=tol, rtol=0)


# ------------------------------------------------------------------------------------------ 1. group advantage

def check_advantage(group_advantages):
    a = 0.5 / (math.sqrt(1 / 3) + 1e-6)  # [1, 1, 0, 0]: mean 0.5, unbiased std sqrt(1/3)
    got = group_advantages(torch.tensor([1.0, 1.0, 0.0, 0.0]), 4)
    assert close(got, [a, a, -a, -a]), (
        f"[1, 1, 0, 0] should give +-0.866, got {got.tolist()}: centre by the group mean and divide by the "
        "*unbiased* std (divide by G - 1; the population std gives +-1.0) plus eps")
    got = group_advantages(torch.tensor([2.0, 1, 0, 0, 0, 0, 3, 0, 0]), 3)  # three groups of G = 3
    s3 = math.sqrt(3) + 1e-6
    assert torch.isfinite(got).all(), "an all-equal group has std 0: eps keeps 0 / (0 + eps) = 0, not NaN"
    assert close(got, [1 / (1 + 1e-6), 0, -1 / (1 + 1e-6), 0, 0, 0, 2 / s3, -1 / s3, -1 / s3]), (
        f"groups are G *consecutive* rewards; got {got.tolist()}")
    assert close(group_advantages(torch.tensor([1.0, 0.0, 1.0, 0.0]), 2), [0.707106, -0.707106] * 2), (
        "[1, 0, 1, 0] with G = 2 is the groups [1, 0] and [1, 0], not [1, 1] and [0, 0]")
    got = group_advantages(torch.full((8,), 2.0), 8)
    assert torch.equal(got, torch.zeros(8)), f"all-equal rewards must give exactly zero advantages, got {got}"
    got = group_advantages(torch.tensor([2.0, 1, 0, 3, 0, 0]), 3, scale_std=False)
    assert close(got, [1, 0, -1, 2, -1, -1]), f"scale_std=False (Dr. GRPO) is r - mean(r) only, got {got.tolist()}"
    assert group_advantages(torch.tensor([1, 0, 0, 0, 1, 1]), 2).shape == (6,), "return one advantage per rollout"


# ------------------------------------------------------------------------------------------ 2. k3 KL

def check_kl(kl_k3):
    got = kl_k3(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])).item()
    assert abs(got - 0.193147) < 1e-5, (
        f"kl_k3(log 0.5, log 0.25) should be exp(d) - d - 1 with d = ref - logp = -ln 2, i.e. 0.193147; got {got:.6f}"
        + (" (that is d = logp - ref: the sign of d is flipped)" if abs(got - 0.306853) < 1e-4 else ""))
    got = kl_k3(torch.tensor([0.0, 0.0]), torch.tensor([1.0, -1.0]))
    assert close(got, [math.e - 2, 1 / math.e]), f"d = +1 gives e - 2, d = -1 gives 1/e; got {got.tolist()}"
    g = torch.Generator().manual_seed(0)
    logp, ref = -5 * torch.rand(4, 7, generator=g), -5 * torch.rand(4, 7, generator=g)
    got = kl_k3(logp, ref)
    assert got.shape == (4, 7), "k3 is per token: same shape as the inputs, no reduction"
    assert (got >= 0).all(), "k3 is never negative (exp(d) >= 1 + d); k1 = -d would be"
    assert torch.equal(kl_k3(logp, logp), torch.zeros(4, 7)), "equal policies: KL exactly 0"


# ------------------------------------------------------------------------------------------ 3. clipped surrogate

def _one_token(clipped_surrogate, ratio, adv, clip_low, clip_high):
    """Loss and d loss / d logp of a single token whose ratio pi / pi_old is `ratio`."""
    logp = torch.tensor([[math.log(ratio)]], dtype=torch.float64, requires_grad=True)
    old, adv = torch.zeros(1, 1, dtype=torch.float64), torch.tensor([adv], dtype=torch.float64)
    per_token = clipped_surrogate(logp, old, adv, clip_low, clip_high)
    assert per_token.shape == (1, 1), f"one loss per token: (B, C) = (1, 1), got {tuple(per_token.shape)}"
    assert per_token.requires_grad, "the loss must depend on logp through the ratio exp(logp - old_logp): no detach"
    per_token.sum().backward()
    return per_token.item(), logp.grad.item()


def check_surrogate(clipped_surrogate):
    cases = [  # (ratio, A, clip_low, clip_high, loss = max(-A rho, -A clip(rho)), d loss / d log rho)
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
            f"ratio {ratio}, A {adv}, clip [{1 - lo}, {1 + hi}]: loss should be max(-A rho, -A clip(rho)) = {want}, "
            f"got {loss:.4f}" + (" (that is min instead of max)" if abs(loss - with_min) < 1e-6 else ""))
        assert abs(grad - want_grad) < 1e-6, (
            f"ratio {ratio}, A {adv}: d loss / d logp should be {want_grad}, got {grad:.4f}; the ratio must be "
            "exp(logp - old_logp) with logp *not* detached, and a clipped token has no gradient")
    # two rollouts of three tokens, on-policy: each row's tokens get its own advantage
    got = clipped_surrogate(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([1.0, -0.5]), 0.2, 0.2)
    assert close(got, [[-1, -1, -1], [0.5, 0.5, 0.5]]), (
        f"advantages (B,) belong to rows: A_i applies to every token of rollout i; got {got.tolist()}")


# ------------------------------------------------------------------------------------------ 4. token-mean

def check_token_mean(masked_mean):
    # per-token losses of two rollouts: row 0 has 3 real tokens, row 1 one; padding slots hold garbage
    values = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 9.0, -3.0]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    loss = masked_mean(values, mask)
    assert abs(loss.item() - (-0.5)) < 1e-9, (
        f"token-mean: (-1 - 1 - 1 + 1) / 4 real tokens = -0.5, got {loss.item():.4f}"
        + (" (that is the mean over sequences, (-1 + 1) / 2)" if abs(loss.item()) < 1e-9 else "")
        + (" (padding counted in the denominator: / 6)" if abs(loss.item() + 1 / 3) < 1e-9 else "")
        + (" (the padding's values counted: multiply by the mask)" if abs(loss.item() - 1) < 1e-9 else ""))
    loss.backward()
    assert close(values.grad, [[0.25, 0.25, 0.25], [0.25, 0.0, 0.0]], 1e-9), (
        f"d loss / d value = 1 / (real tokens in the batch) at real tokens, 0 at padding; got {values.grad.tolist()}")
    seq = masked_mean(values.detach(), mask, seq_mean=True)
    assert abs(seq.item()) < 1e-9, f"seq_mean=True: mean per sequence, then over sequences: (-1 + 1) / 2 = 0, not {seq}"
    empty = masked_mean(torch.ones(2, 3), torch.zeros(2, 3))
    assert torch.isfinite(empty) and empty.item() == 0.0, (
        f"a batch without a real token (padding copies weigh nothing) must give 0, not 0 / 0 = NaN; got {empty}")


# ------------------------------------------------------------------------------------------ 5. log-prob shift

def check_logprob(completion_logprobs):
    # One row, vocabulary of 3, a prompt of 2 positions and a completion of 2 tokens: L = 4 logits positions.
    # Position t predicts token t + 1: position 1 (the prompt's last) scores completion token 0, position 2 scores
    # token 1, and position 3 (the last completion token) predicts past the end and is not used.
    logits = torch.tensor([[[5.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [4.0, 4.0, 0.0]]])  # (1, 4, 3)
    completions = torch.tensor([[1, 2]])
    want = [[2 - math.log(2 + math.exp(2)), 3 - math.log(2 + math.exp(3))]]  # log softmax at the chosen ids
    got = completion_logprobs(logits, completions, 1.0)
    unshifted = [[0 - math.log(1 + math.exp(3) + 1), 0 - math.log(2 * math.exp(4) + 1)]]
    assert got.shape == (1, 2), f"one log-prob per completion token: (N, C) = (1, 2), got {tuple(got.shape)}"
    assert close(got, want, 1e-5), (
        f"want {want}, got {got.tolist()}: completion token t is scored by the logits of the position *before* it "
        "(logits[:, -C - 1:-1]), a log-softmax over the vocabulary (the last axis), at the chosen id"
        + (" (that is logits[:, -C:], not shifted: each token predicts itself)" if close(got, unshifted, 1e-5) else ""))
    # temperature: the distribution sampled from is softmax(logits / T), and training must score that one
    got = completion_logprobs(logits, completions, 0.5)
    want_t = [[4 - math.log(2 + math.exp(4)), 6 - math.log(2 + math.exp(6))]]
    assert close(got, want_t, 1e-5), f"temperature 0.5: log softmax(logits / T), want {want_t}, got {got.tolist()}"
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


# ------------------------------------------------------------------------------------------ 6. completion mask

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


# ------------------------------------------------------------------------------------------ 7. reward parser

def check_reward(last_boxed):
    cases = [("\\boxed{3}", "3"), ("<answer> \\boxed { red } </answer>", "red"),
             ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"), ("\\boxed{1} , no : \\boxed{2}", "2"),
             ("\\boxed{a{b}c} and \\boxed{x{y}}", "x{y}"), ("no box here", None), ("\\boxed{3", None)]
    for text, want in cases:
        got = last_boxed(text)
        got = got.strip() if isinstance(got, str) else got
        assert got == want, (
            f"last_boxed({text!r}) should be {want!r}, got {got!r}: take the *last* \\boxed, count braces so nested "
            "ones close at the matching brace, allow spaces before '{', and return None without a closed box")
    with mock.patch.object(mmr1, "last_boxed", last_boxed):  # the reward reads the answer through it
        assert mmr1.reward("<think> 1 / 2 </think><answer> \\boxed{\\frac{1}{2}} </answer>", "\\frac{1}{2}") == (
            1.0, 1.0, 2.0)
        assert mmr1.reward("<think> a </think><answer> \\boxed{1} then \\boxed{2} </answer>", "1")[1] == 0.0


# ------------------------------------------------------------------------------------------ 8. OVS

def check_ovs(outcome_variance_score):
    for correct, want in (([1, 1, 0, 0], 0.25), ([1, 1, 1, 1], 0.0), ([0, 0, 0, 0], 0.0), ([1, 0, 0, 0], 0.1875),
                          ([True, False, False], 2 / 9)):
        got = float(outcome_variance_score(correct))
        assert abs(got - want) < 1e-9, (
            f"OVS({correct}) = P (1 - P) = {want:.4f}, got {got:.4f}: the Bernoulli variance of the outcomes "
            "(not the sample variance with N - 1, not the std)")
    correct = np.array([[[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]]] * 2)  # (2, 3, N = 4)
    got = np.asarray(outcome_variance_score(correct))
    assert got.shape == (2, 3) and close(got[1], [0.1875, 0.0, 0.25]), "reduce the last axis (N) only"


# ------------------------------------------------------------------------------------------ 9. TDS

def check_tds(trajectory_diversity_score):
    """The paper's definitions, with tolerances that any faithful implementation meets (the smoothing of BLEU,
    raw or rescaled distinct-n, the length that normalises the edit distance may differ)."""
    methods = ("self_bleu", "distinct", "edit")
    for method in methods:
        same = trajectory_diversity_score(["a b c d"] * 4, method)
        top = 1 / 4 + 1e-9 if method == "distinct" else 1e-9  # raw distinct-n gives 1/N to N identical responses
        assert -1e-9 <= same <= top, (
            f"{method}: identical responses have (almost) no diversity, got {same:.4f}"
            + (": that is a similarity, TDS is a diversity (1 - self-BLEU)" if same > 0.9 else ""))
        # responses of different lengths with no token in common: completely diverse, whatever their lengths
        responses = [[1, 2], [3, 4], [5, 6, 7, 8, 9, 10]]
        for form in (["a b c d", "e f g h"], responses, [np.array(r) for r in responses],
                     [torch.tensor(r) for r in responses]):
            got, shown = trajectory_diversity_score(form, method), [r if isinstance(r, str) else list(r) for r in form]
            assert got <= 1 + 1e-9, f"{method}: TDS lies in [0, 1], got {got:.4f} for {shown} (normalise by length)"
            assert 0.9 <= got, (
                f"{method}: {shown} share no token, so TDS is (close to) 1, got {got:.4f}: score each response on its "
                "own tokens; padding them to one length makes the pad runs look alike")
        # more shared n-grams, less diversity: one token changed at the end < half the tokens changed
        near = trajectory_diversity_score(["a b c d e f g h", "a b c d e f g x"], method)
        far = trajectory_diversity_score(["a b c d e f g h", "a b x y z w v u"], method)
        assert 0 < near < far <= 1 + 1e-9, (
            f"{method}: near-copies must score above 0 and below responses that share only a prefix; got "
            f"{near:.4f} and {far:.4f}")
    got = trajectory_diversity_score(["a b c d", "a b e f"], "edit")
    assert abs(got - 0.5) < 1e-6, f"edit: 2 substitutions over 4 tokens = 0.5, got {got:.4f} (normalise by length)"
    got = trajectory_diversity_score(["a b c d", "a b e f"], "self_bleu")
    assert 0.3 <= got <= 0.9, (
        f"self_bleu: 'a b c d' vs 'a b e f' share 2 of 4 unigrams and 1 of 3 bigrams, so BLEU (1..3-grams, smoothed) "
        f"lies between 0.1 and 0.7 and TDS between 0.3 and 0.9; got {got:.4f}")
    for bad in ((["a b"], "self_bleu"), (["a b", "c d"], "cosine")):
        try:
            trajectory_diversity_score(*bad)
        except ValueError:
            continue
        raise AssertionError(f"TDS{bad}: raise ValueError for fewer than 2 responses or an unknown method")


# ------------------------------------------------------------------------------------------ 10. VPS-weighted sampling

def check_vps(variance_promotion_score, sampler_cls):
    assert abs(float(variance_promotion_score(0.25, 0.5)) - 0.3) < 1e-9, "VPS = 0.8 OVS + 0.2 TDS by default"
    assert abs(float(variance_promotion_score(0.0, 0.1)) - 0.02) < 1e-9, "VPS = alpha OVS + beta TDS, alpha = 0.8"
    got = variance_promotion_score(np.array([0.25, 0.0]), np.array([0.5, 1.0]), alpha=0.5, beta=0.5)
    assert close(got, [0.375, 0.5]), "arrays broadcast; alpha and beta are the weights of OVS and TDS"
    sampler = sampler_cls(4, batch_size=4, mixture_ratio=0.5, seed=0)
    assert close(sampler.probabilities(), [0.25] * 4), "before any score every VPS is 0: uniform"
    sampler.set_scores([0.1, 0.2, 0.3, 0.4])
    assert close(sampler.probabilities(), [0.1, 0.2, 0.3, 0.4]), (
        f"p(x) = VPS(x) / sum VPS, got {sampler.probabilities()}: no min-max normalisation (it gives the lowest "
        "prompt probability 0 for ever), no softmax")
    sampler.set_scores([0.0, 0.0, 0.1, 0.3])
    probs = sampler.probabilities()
    assert close(probs, [0.0, 0.0, 0.25, 0.75]), f"p = [0, 0, 0.25, 0.75], got {probs}"
    weighted = np.array([sampler.next_batch()[:2] for _ in range(2000)]).ravel()  # floor(0.5 * 4) = 2 by VPS
    share = np.bincount(weighted, minlength=4) / weighted.size
    assert share[0] == share[1] == 0 and abs(share[3] - 0.75) < 0.03, f"draws by VPS follow p: {share}"
    sampler.set_scores([0.0] * 4)
    assert close(sampler.probabilities(), [0.25] * 4), "every VPS 0: fall back to uniform (no division by 0)"


# ------------------------------------------------------------------------------------------ 11. one GRPO step

class _Toy(torch.nn.Module):
    """A policy with no prompt: a softmax over 3 tokens whose logits theta are the only weights."""
    def __init__(self):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))


def _toy_logprobs(net, policy, prompts, completions, mask, args, *rest, **kwargs):  # for mmr1.token_logprobs
    return torch.log_softmax(net.theta, -1)[completions]  # (N, C)


def _toy_step(grpo_step, rewards, correct, lr=1.0, nan=False, **flags):
    """One call of grpo_step on one group of G = 4 one-token completions [0, 0, 1, 2], sampled from the uniform
    policy (log pi_old = log 1/3), without KL, by plain SGD. Returns grpo_step's result and theta after it."""
    net, tokens = _Toy(), torch.tensor([[0], [0], [1], [2]])
    old_logp = torch.full((4, 1), -math.log(3.0), dtype=torch.float64)
    ro = mmr1.Rollouts([None], tokens, torch.ones(4, 1), tokens.tolist(), old_logp, [""] * 4, torch.tensor(rewards),
                       torch.tensor(correct), torch.ones(4))
    args = dataclasses.replace(mmr1.Args(), group_size=4, prompts_per_step=1, kl_coef=0.0, **flags)
    logprobs = (lambda *a, **k: _toy_logprobs(*a) * math.nan) if nan else _toy_logprobs  # a non-finite loss
    with mock.patch.object(mmr1, "token_logprobs", logprobs), \
            mock.patch.dict(grpo_step.__globals__, token_logprobs=logprobs):
        result = grpo_step(types.SimpleNamespace(model=net), torch.optim.SGD(net.parameters(), lr=lr), ro, None, args)
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
        f"after one step theta should be [a/4, 0, -a/4] = [0.306, 0, -0.306], got {theta.tolist()}: advantages from "
        "ro.rewards (format + accuracy), group by group, then grpo_update"
        + (" (those are advantages of ro.correct, the accuracy alone)" if close(theta, accuracy_only, 1e-6) else ""))
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
    (*_, skipped), got = _toy_step(grpo_step, [2.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], lr=lr, update_epochs=2)
    assert close(got, want, 1e-6), (
        f"--update-epochs 2: two grpo_update passes over the same batch and advantages, theta {want.tolist()}; "
        f"got {got.tolist()}" + (" (that is one pass)" if close(got, theta.detach(), 1e-6) else ""))
    (*_, skipped), _ = _toy_step(grpo_step, [2.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], nan=True, update_epochs=2)
    assert skipped == 2, f"a non-finite loss skips the pass: 2 of 2 passes skipped, got {skipped}"
    (*_, skipped), theta = _toy_step(grpo_step, [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0])
    assert torch.equal(theta, torch.zeros(3, dtype=torch.float64)), "an all-equal group gives no gradient"


# ------------------------------------------------------------------------------------------ 12-14. experiments

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


CHECKS = {"advantage": check_advantage, "kl": check_kl, "surrogate": check_surrogate, "token_mean": check_token_mean,
          "logprob": check_logprob, "mask": check_mask, "reward": check_reward, "ovs": check_ovs, "tds": check_tds,
          "vps": check_vps, "grpo_step": check_grpo_step}
EXPERIMENT_CHECKS = {"epochs": check_epochs, "group_size": check_group_size, "vas_cost": check_vas_cost}


def implementations(modules):
    """The arguments of each check, taken from `modules` = {"mmr1": module, "vas": module}."""
    out = {}
    for name, funcs in EXERCISES.items():
        args = []
        for target in funcs:
            file, qualname = target.split(":")
            obj = modules[file]
            for part in qualname.split("."):
                obj = getattr(obj, part)
            args.append(obj)
        out[name] = tuple(args)
    out["vps"] = (modules["vas"].variance_promotion_score, modules["vas"].VarianceAwareSampler)  # the whole class
    return out


# ------------------------------------------------------------------------------------------ the exercises

def test_exercise_advantage():
    check_advantage(mmr1.group_advantages)


def test_exercise_kl():
    check_kl(mmr1.kl_k3)


def test_exercise_surrogate():
    check_surrogate(mmr1.clipped_surrogate)


def test_exercise_token_mean():
    check_token_mean(mmr1.masked_mean)


def test_exercise_logprob():
    check_logprob(mmr1.completion_logprobs)


def test_exercise_mask():
    check_mask(mmr1.completion_mask)


def test_exercise_reward():
    check_reward(mmr1.last_boxed)


def test_exercise_ovs():
    check_ovs(vas.outcome_variance_score)


def test_exercise_tds():
    check_tds(vas.trajectory_diversity_score)


def test_exercise_vps():
    check_vps(vas.variance_promotion_score, vas.VarianceAwareSampler)


def test_exercise_grpo_step():
    check_grpo_step(mmr1.grpo_step)


def run_experiment(name, cold_start, out_dir):
    """The runs of an experiment, each from the cold start: {run: its RL rows of metrics.jsonl}."""
    runs = {}
    for label, flags in EXPERIMENTS[name].items():
        out = os.path.join(out_dir, label.replace(" ", "_").replace("=", ""))
        mmr1.main(["--init-from", cold_start, *flags, "--out", out])
        runs[label] = rows(out, "rl")
    return runs


def test_experiment_epochs(cold_start, tmp_path):
    check_epochs(run_experiment("epochs", cold_start, str(tmp_path)))


def test_experiment_group_size(cold_start, tmp_path):
    check_group_size(run_experiment("group_size", cold_start, str(tmp_path)))


def test_experiment_vas_cost(cold_start, tmp_path):
    check_vas_cost(run_experiment("vas_cost", cold_start, str(tmp_path)))


# ------------------------------------------------------------------------------------------ blanking

def blank_source(source: str, qualnames: list[str]) -> str:
    """`source` with the bodies of `qualnames` ("f" or "Class.method") replaced by raise NotImplementedError,
    keeping each signature and docstring: what a teacher hands out."""
    tree, lines = ast.parse(source), source.splitlines(keepends=True)
    spans = []
    for qualname in qualnames:
        scope = tree
        for name in qualname.split("."):
            scope = next(node for node in scope.body if getattr(node, "name", None) == name)
        body = scope.body
        has_doc = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
        first = body[1] if has_doc else body[0]
        spans.append((first.lineno, scope.end_lineno, first.col_offset, qualname))
    for start, end, indent, qualname in sorted(spans, reverse=True):  # bottom up: line numbers stay valid
        lines[start - 1:end] = [" " * indent + f'raise NotImplementedError("exercise: write {qualname}, '
                                "see EXERCISES.md\")\n"]
    return "".join(lines)


def targets(names):
    """{"mmr1": [qualnames], "vas": [...]} for the exercises `names`, each function once."""
    out = {"mmr1": [], "vas": []}
    for name in names:
        for target in EXERCISES[name]:
            file, qualname = target.split(":")
            if qualname not in out[file]:
                out[file].append(qualname)
    return out


def load_blanked(names, tag):
    """Fresh copies of mmr1 and vas with the exercises' functions blanked (the real files are not touched)."""
    modules = {}
    for file, qualnames in targets(names).items():
        path = os.path.join(ROOT, f"{file}.py")
        module = types.ModuleType(f"{file}_blank_{tag}")
        module.__file__ = path
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(blank_source(open(path).read(), qualnames), path, "exec"), module.__dict__)
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
        if kind == "mean_over_sequences" or seq_mean:
            return ((values * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
        if kind == "padding_in_denominator":
            return (values * mask).sum() / mask.numel()
        if kind == "padding_values_counted":
            return values.sum() / mask.sum().clamp(min=1)
        return (values * mask).sum() / mask.sum()  # "empty_mask_nan": 0 / 0 when no token is real
    return masked_mean


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
    import re
    found = re.findall(r"\\boxed\s*\{(.*?)\}", text)
    return found[-1] if found else None


def boxed_first(text):
    import re
    m = re.search(r"\\boxed\s*\{", text)
    if not m:
        return None
    depth, i = 1, m.end()
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[m.end():i - 1] if depth == 0 else None


def ovs_sample_variance(correct):
    return np.var(np.asarray(correct, dtype=float), axis=-1, ddof=1)


def ovs_std(correct):
    p = np.mean(np.asarray(correct, dtype=float), axis=-1)
    return np.sqrt(p * (1 - p))


def tds_padded(responses, method="self_bleu", n=3):
    """Pads every response to one length first, as the official code scores padded sequences."""
    toks = [vas._tokens(r) for r in responses]
    width = max(map(len, toks))
    padded = [t + ["<pad>"] * (width - len(t)) for t in toks]
    return vas.trajectory_diversity_score([" ".join(map(str, t)) for t in padded], method, n)


def tds_similarity(responses, method="self_bleu", n=3):
    return 1.0 - vas.trajectory_diversity_score(responses, method, n)  # raw self-BLEU, as the official code adds


def tds_unnormalised_edit(responses, method="self_bleu", n=3):
    """The official code's edit distance: raw token counts, which swamp OVS <= 0.25."""
    if method != "edit":
        return vas.trajectory_diversity_score(responses, method, n)
    toks = [[str(t) for t in vas._tokens(r)] for r in responses]
    vocab = {}
    ids = [np.array([vocab.setdefault(t, len(vocab)) for t in ts]) for ts in toks]
    return float(np.mean([vas._edit_distance(ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids))]))


def vps_swapped(ovs, tds, alpha=0.8, beta=0.2):
    return beta * np.asarray(ovs, dtype=float) + alpha * np.asarray(tds, dtype=float)


class MinMaxSampler(vas.VarianceAwareSampler):
    def probabilities(self):
        with np.errstate(invalid="ignore"):  # equal scores: 0 / 0
            s = (self.scores - self.scores.min()) / (self.scores.max() - self.scores.min())
            return s / s.sum()


class SoftmaxSampler(vas.VarianceAwareSampler):
    def probabilities(self):
        e = np.exp(self.scores)
        return e / e.sum()


def step_with(kind):
    """One GRPO step with one mistake switched on."""
    def grpo_step(policy, opt, ro, ref_logp, args):
        rewards = ro.correct if kind == "accuracy_only" else ro.rewards
        adv = mmr1.group_advantages(rewards, args.group_size, scale_std=args.scale_std or kind == "always_std")
        passes = [mmr1.grpo_update(policy, opt, ro, adv, ref_logp, args)
                  for _ in range(1 if kind == "one_pass" else args.update_epochs)]
        loss, stats, grad_norm, _ = passes[-1]
        return loss, stats, grad_norm, sum(stepped == (kind == "counts_steps") for *_, stepped in passes)
    return grpo_step


MISTAKES = {  # exercise -> {mistake: arguments of the check}
    "advantage": {"population_std": (adv_population_std,), "no_eps": (adv_no_eps,),
                  "strided_groups": (adv_strided_groups,)},
    "kl": {"flipped_d": (kl_flipped_d,), "k1": (kl_k1,)},
    "surrogate": {"min_not_max": (surrogate_with(pick=torch.min),), "swapped_clip": (surrogate_with(swap_clip=True),),
                  "detached_ratio": (surrogate_with(detach_ratio=True),),
                  "inverted_ratio": (surrogate_with(inverted=True),)},
    "token_mean": {kind: (mean_with(kind),) for kind in ("mean_over_sequences", "padding_in_denominator",
                                                          "padding_values_counted", "empty_mask_nan")},
    "logprob": {kind: (logprob_with(kind),) for kind in ("not_shifted", "softmax_over_positions", "no_temperature",
                                                          "temperature_after")},
    "mask": {kind: (mask_mistake(kind),) for kind in ("padding_counted", "eos_dropped", "last_eos", "not_padding")},
    "reward": {"lazy_regex": (boxed_lazy_regex,), "first_box": (boxed_first,)},
    "ovs": {"sample_variance": (ovs_sample_variance,), "std": (ovs_std,)},
    "tds": {"padded": (tds_padded,), "similarity": (tds_similarity,), "unnormalised_edit": (tds_unnormalised_edit,)},
    "vps": {"swapped_weights": (vps_swapped, vas.VarianceAwareSampler),
            "min_max": (vas.variance_promotion_score, MinMaxSampler),
            "softmax": (vas.variance_promotion_score, SoftmaxSampler)},
    "grpo_step": {kind: (step_with(kind),) for kind in ("accuracy_only", "always_std", "one_pass", "counts_steps")},
}


# ------------------------------------------------------------------------------------------ meta-tests

def test_checks_and_mistakes_cover_every_exercise():
    assert set(CHECKS) == set(EXERCISES) == set(MISTAKES) and set(EXPERIMENT_CHECKS) == set(EXPERIMENTS)
    assert all(len(MISTAKES[name]) >= 2 for name in EXERCISES), "every check rejects at least two mistakes"
    functions = [target for funcs in EXERCISES.values() for target in funcs]
    assert len(functions) == len(set(functions)), "a function belongs to one exercise only"


@pytest.mark.parametrize("name", list(EXERCISES))
def test_check_catches_blank(name):
    blanked = load_blanked([name], name)
    with pytest.raises(NotImplementedError):
        CHECKS[name](*implementations({"mmr1": mmr1, "vas": vas, **blanked})[name])


@pytest.mark.parametrize("name, mistake", [(n, m) for n in MISTAKES for m in MISTAKES[n]])
def test_check_catches_mistake(name, mistake):
    with pytest.raises(AssertionError):
        CHECKS[name](*MISTAKES[name][mistake])


def _body_lines(source: str) -> dict[str, range]:
    """{qualified name: 0-based line range of its body after the docstring} of every function and method."""
    spans = {}

    def visit(nodes, prefix):
        for node in nodes:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef):
                first = node.body[1] if ast.get_docstring(node) is not None else node.body[0]
                spans[prefix + node.name] = range(first.lineno - 1, node.end_lineno)
    visit(ast.parse(source).body, "")
    return spans


@pytest.mark.parametrize("name", list(EXERCISES))
def test_blank_changes_only_the_exercises_functions(name):
    """`--blank NAME` replaces the bodies of NAME's functions by one `raise` line each; every other byte of
    mmr1.py and vas.py stays (the lines that differ are found by difflib, not by the blanking code)."""
    for file, qualnames in targets([name]).items():
        source = open(os.path.join(ROOT, f"{file}.py")).read()
        old, new = source.splitlines(keepends=True), blank_source(source, qualnames).splitlines(keepends=True)
        bodies, changed = _body_lines(source), []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            owner = [q for q in qualnames if bodies[q] == range(i1, i2)]
            assert owner and len(new[j1:j2]) == 1 and "raise NotImplementedError" in new[j1], (old[i1:i2], new[j1:j2])
            changed += owner
        assert sorted(changed) == sorted(qualnames), f"{file}.py: blanked {changed}, expected {qualnames}"


def test_blanked_modules_import_and_keep_signatures_and_docstrings():
    blanked, real = load_blanked(list(EXERCISES), "all"), {"mmr1": mmr1, "vas": vas}
    for file, qualnames in targets(EXERCISES).items():
        for qualname in qualnames:
            new, old = blanked[file], real[file]
            for part in qualname.split("."):
                new, old = getattr(new, part), getattr(old, part)
            assert new.__doc__ == old.__doc__ and inspect.signature(new) == inspect.signature(old)
    assert blanked["mmr1"].normalise(" 3.0 ") == "3" and blanked["vas"].DIVERSITY_METHODS  # the rest is untouched
    with pytest.raises(NotImplementedError, match="EXERCISES.md"):
        blanked["vas"].outcome_variance_score([1, 0])


def test_exercises_md_names_every_exercise_function_and_experiment_command():
    text = open(os.path.join(ROOT, "EXERCISES.md")).read()
    for name, funcs in EXERCISES.items():
        assert f"-k exercise_{name}`" in text, name
        for target in funcs:
            assert target.replace(":", ".") in text, target
    for name, runs in EXPERIMENTS.items():
        assert f"-k experiment_{name}`" in text, name
        for flags in runs.values():
            assert " ".join(flags) in text, (name, " ".join(flags))
    assert " ".join(COLD_START) in text


def main(argv=None):
    parser = argparse.ArgumentParser(description="Blank the reference bodies of the exercises' functions in place.")
    parser.add_argument("--blank", nargs="*", metavar="EXERCISE", help=f"exercises to blank (default all): "
                        f"{', '.join(EXERCISES)}")
    parser.add_argument("--list", action="store_true", help="list the exercises, their functions, the experiments")
    args = parser.parse_args(argv)
    if args.list or args.blank is None:
        for name, funcs in EXERCISES.items():
            print(f"{name:<12} {', '.join(funcs)}")
        for name, runs in EXPERIMENTS.items():
            for label, flags in runs.items():
                print(f"{name:<12} {label}: python mmr1.py --init-from COLD/sft {' '.join(flags)}")
        return
    unknown = set(args.blank) - set(EXERCISES)
    if unknown:
        parser.error(f"unknown exercise(s) {sorted(unknown)}; choose from {', '.join(EXERCISES)}")
    for file, qualnames in targets(args.blank or list(EXERCISES)).items():
        if qualnames:
            path = os.path.join(ROOT, f"{file}.py")
            with open(path) as f:
                source = blank_source(f.read(), qualnames)  # read all before writing anything
            with open(path, "w") as f:
                f.write(source)
            print(f"blanked in {file}.py: {', '.join(qualnames)}")
    print("restore the reference implementations with: git checkout -- mmr1.py vas.py")


if __name__ == "__main__":
    main()
