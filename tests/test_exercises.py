"""Classroom exercises: ten concepts of GRPO and VAS, each with a check that tells a right implementation from a
wrong one.

A student replaces the body of a function in mmr1.py or vas.py and runs that exercise's test, e.g.
    python -m pytest -q tests/test_exercises.py -k exercise_advantage
EXERCISES.md lists the exercises, their commands and hints. A teacher blanks the reference bodies with
    python tests/test_exercises.py --blank              # all exercises; or name some: --blank advantage kl
and `git checkout -- mmr1.py vas.py` brings the references back.

Each `check_<name>` takes the implementation as an argument and raises AssertionError with a hint when it is wrong.
`test_exercise_<name>` runs it on the functions of mmr1.py / vas.py. The meta-tests at the end run every check on
the blanked body (which raises NotImplementedError) and on common mistakes (population std, the KL's d with the
wrong sign, min instead of max, a mean over sequences, diversity on padded responses, ...), and require it to fail.
"""
import argparse
import ast
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

# exercise -> the functions a student writes for it ("file:qualified name"); grpo_step writes nothing new
EXERCISES = {
    "advantage": ["mmr1:group_advantages"],
    "kl": ["mmr1:kl_k3"],
    "surrogate": ["mmr1:grpo_loss"],
    "token_mean": ["mmr1:grpo_loss"],
    "mask": ["mmr1:completion_mask"],
    "reward": ["mmr1:last_boxed"],
    "ovs": ["vas:outcome_variance_score"],
    "tds": ["vas:trajectory_diversity_score"],
    "vps": ["vas:variance_promotion_score", "vas:VarianceAwareSampler.probabilities"],
    "grpo_step": ["mmr1:group_advantages", "mmr1:grpo_loss"],
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

def _one_token(grpo_loss, ratio, adv, **kw):
    """Loss and d loss / d logp of a single token whose ratio pi / pi_old is `ratio`."""
    logp = torch.tensor([[math.log(ratio)]], dtype=torch.float64, requires_grad=True)
    loss = grpo_loss(logp, torch.zeros(1, 1, dtype=torch.float64), kw.pop("ref", None),
                     torch.tensor([adv], dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64), **kw)[0]
    assert loss.requires_grad, "the loss must depend on logp through the ratio exp(logp - old_logp): no detach"
    loss.backward()
    return loss.item(), logp.grad.item()


def check_surrogate(grpo_loss):
    cases = [  # (ratio, A, clip_low, clip_high, loss = max(-A rho, -A clip(rho)), d loss / d log rho)
        (1.5, 1.0, 0.2, 0.2, -1.2, 0.0),  # pushed up past 1 + eps: clipped, no gradient
        (0.5, 1.0, 0.2, 0.2, -0.5, -0.5),  # A > 0 but rho fell: unclipped, keeps pushing up
        (1.5, -1.0, 0.2, 0.2, 1.5, 1.5),  # A < 0 but rho rose: unclipped
        (0.5, -1.0, 0.2, 0.2, 0.8, 0.0),  # pushed down past 1 - eps: clipped
        (1.5, 1.0, 0.1, 0.3, -1.3, 0.0),  # asymmetric: the upper bound is 1 + clip_high
        (0.5, -1.0, 0.1, 0.3, 0.9, 0.0),  # and the lower one 1 - clip_low
    ]
    for ratio, adv, lo, hi, want, want_grad in cases:
        loss, grad = _one_token(grpo_loss, ratio, adv, clip_low=lo, clip_high=hi, kl_coef=0.0)
        with_min = min(-adv * ratio, -adv * min(max(ratio, 1 - lo), 1 + hi))
        assert abs(loss - want) < 1e-6, (
            f"ratio {ratio}, A {adv}, clip [{1 - lo}, {1 + hi}]: loss should be max(-A rho, -A clip(rho)) = {want}, "
            f"got {loss:.4f}" + (" (that is min instead of max)" if abs(loss - with_min) < 1e-6 else ""))
        assert abs(grad - want_grad) < 1e-6, (
            f"ratio {ratio}, A {adv}: d loss / d logp should be {want_grad}, got {grad:.4f}; the ratio must be "
            "exp(logp - old_logp) with logp *not* detached, and a clipped token has no gradient")
    # the KL term: A = 0, rho = 1, ref - logp = ln 2 -> beta * (2 - ln 2 - 1)
    loss, _ = _one_token(grpo_loss, 1.0, 0.0, ref=torch.tensor([[math.log(2.0)]], dtype=torch.float64), kl_coef=0.1)
    assert abs(loss - 0.1 * (1 - math.log(2))) < 1e-6, f"loss = surrogate + kl_coef * k3; got {loss:.6f}"
    loss, _ = _one_token(grpo_loss, 1.0, 0.0, kl_coef=0.5)
    assert loss == 0.0, "no reference policy (ref_logp None): no KL term"


# ------------------------------------------------------------------------------------------ 4. token-mean

def check_token_mean(grpo_loss):
    # on-policy (old = logp), no KL: every real token's loss is -A_i. Row 0: A = 1, 3 tokens; row 1: A = -1, 1 token.
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    clean = torch.log(torch.tensor([[0.3, 0.6, 0.9], [0.2, 0.7, 0.4]], dtype=torch.float64))
    garbage = torch.tensor([[0.0, 0.0, 0.0], [0.0, 9.0, -7.0]], dtype=torch.float64)  # values in padding slots
    adv = torch.tensor([1.0, -1.0], dtype=torch.float64)
    for pad in (0.0, 1.0):
        logp = (clean + pad * garbage).requires_grad_(True)
        loss, _ = grpo_loss(logp, clean - pad * garbage, None, adv, mask, kl_coef=0.0)
        loss.backward()
        assert abs(loss.item() - (-0.5)) < 1e-6, (
            f"token-mean: (-1 - 1 - 1 + 1) / 4 real tokens = -0.5, got {loss.item():.4f}"
            + (" (that is the mean over sequences, (-1 + 1) / 2)" if abs(loss.item()) < 1e-6 else "")
            + ("; padding positions must not count" if pad else ""))
        assert close(logp.grad, [[-0.25, -0.25, -0.25], [0.25, 0.0, 0.0]], 1e-6), (
            "d loss / d logp = -A_i / (real tokens in the batch) at real tokens, 0 at padding; got "
            f"{logp.grad.tolist()}")
    seq, _ = grpo_loss(clean, clean, None, adv, mask, kl_coef=0.0, seq_mean=True)
    assert abs(seq.item()) < 1e-6, "seq_mean=True: mean per sequence, then over sequences = (-1 + 1) / 2 = 0"


# ------------------------------------------------------------------------------------------ 5. completion mask

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


# ------------------------------------------------------------------------------------------ 6. reward parser

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


# ------------------------------------------------------------------------------------------ 7. OVS

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


# ------------------------------------------------------------------------------------------ 8. TDS

def check_tds(trajectory_diversity_score):
    methods = ("self_bleu", "distinct", "edit")
    hand = {"self_bleu": 1 - (1 / 12) ** (1 / 3), "distinct": 1.0, "edit": 0.5}  # "a b c d" vs "a b e f"
    for method in methods:
        same = trajectory_diversity_score(["a b c d"] * 4, method)
        assert abs(same) < 1e-9, f"{method}: identical responses have diversity 0, got {same}"
        got = trajectory_diversity_score(["a b c d", "a b e f"], method)
        assert abs(got - hand[method]) < 1e-9, (
            f"{method}: TDS('a b c d', 'a b e f') should be {hand[method]:.4f}, got {got:.4f}"
            + (" (that is self-BLEU, a similarity: TDS is 1 - self-BLEU)" if abs(got - (1 - hand[method])) < 1e-9
               else ""))
        # responses of different lengths with no token in common: completely diverse, whatever their lengths
        responses = [[1, 2], [3, 4], [5, 6, 7, 8, 9, 10]]
        for form in (responses, [np.array(r) for r in responses], [torch.tensor(r) for r in responses]):
            got = trajectory_diversity_score(form, method)
            assert abs(got - 1.0) < 1e-9, (
                f"{method}: {responses} share no token, so TDS = 1, got {got:.4f}: score each response on its own "
                "tokens; padding them to one length makes the pad runs look alike")
    for bad in ((["a b"], "self_bleu"), (["a b", "c d"], "cosine")):
        try:
            trajectory_diversity_score(*bad)
        except ValueError:
            continue
        raise AssertionError(f"TDS{bad}: raise ValueError for fewer than 2 responses or an unknown method")


# ------------------------------------------------------------------------------------------ 9. VPS-weighted sampling

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


# ------------------------------------------------------------------------------------------ 10. one GRPO step

def check_grpo_step(group_advantages, grpo_loss):
    """A softmax policy over 3 tokens, logits theta = 0 (uniform). One group of G = 4 one-token completions:
    tokens [0, 0, 1, 2] with rewards [1, 1, 0, 0]. On-policy, no KL, token-mean over 4 tokens, so
        d loss / d theta = -(1/4) sum_i A_i (onehot(y_i) - pi) = -(1/4) sum_i A_i onehot(y_i)   (sum_i A_i = 0)
    with A = [a, a, -a, -a], a = 0.5 / (sqrt(1/3) + 1e-6) = 0.866: grad = [-a/2, a/4, a/4], and one SGD step
    of lr 1 gives theta = [a/2, -a/4, -a/4]: p(rewarded token 0) rises from 1/3 to 0.4891."""
    def step(rewards, tokens=(0, 0, 1, 2)):
        theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        logp = torch.log_softmax(theta, -1)[list(tokens)].view(4, 1)  # (G, C = 1)
        adv = group_advantages(torch.tensor(rewards, dtype=torch.float64), 4)
        loss, _ = grpo_loss(logp, logp.detach(), None, adv, torch.ones(4, 1, dtype=torch.float64), kl_coef=0.0)
        assert loss.requires_grad, "on-policy, rho = exp(logp - logp.detach()) = 1 in value but not in gradient"
        loss.backward()
        with torch.no_grad():
            new = theta - 1.0 * theta.grad  # one SGD step, lr 1
        return theta.grad, torch.softmax(new, -1)
    a = 0.5 / (math.sqrt(1 / 3) + 1e-6)
    grad, probs = step([1.0, 1.0, 0.0, 0.0])
    want = torch.softmax(torch.tensor([a / 2, -a / 4, -a / 4]), -1)
    assert close(grad, [-a / 2, a / 4, a / 4], 1e-6), (
        f"gradient on the logits should be [-0.433, 0.217, 0.217], got {grad.tolist()}")
    assert abs(probs[0].item() - want[0].item()) < 1e-6 and abs(want[0].item() - 0.4891) < 1e-4, (
        f"after one step p(rewarded token) should rise from 1/3 to 0.4891, got {probs[0].item():.4f}")
    grad, probs = step([1.0, 1.0, 1.0, 1.0])
    assert torch.equal(grad, torch.zeros(3)), "an all-equal group gives no gradient: the policy does not move"


CHECKS = {"advantage": check_advantage, "kl": check_kl, "surrogate": check_surrogate, "token_mean": check_token_mean,
          "mask": check_mask, "reward": check_reward, "ovs": check_ovs, "tds": check_tds, "vps": check_vps,
          "grpo_step": check_grpo_step}


def implementations(modules):
    """The arguments of each check, taken from `modules` = {"mmr1": module, "vas": module}."""
    m, v = modules["mmr1"], modules["vas"]
    return {"advantage": (m.group_advantages,), "kl": (m.kl_k3,), "surrogate": (m.grpo_loss,),
            "token_mean": (m.grpo_loss,), "mask": (m.completion_mask,), "reward": (m.last_boxed,),
            "ovs": (v.outcome_variance_score,), "tds": (v.trajectory_diversity_score,),
            "vps": (v.variance_promotion_score, v.VarianceAwareSampler), "grpo_step": (m.group_advantages, m.grpo_loss)}


# ------------------------------------------------------------------------------------------ the exercises

def test_exercise_advantage():
    check_advantage(mmr1.group_advantages)


def test_exercise_kl():
    check_kl(mmr1.kl_k3)


def test_exercise_surrogate():
    check_surrogate(mmr1.grpo_loss)


def test_exercise_token_mean():
    check_token_mean(mmr1.grpo_loss)


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
    check_grpo_step(mmr1.group_advantages, mmr1.grpo_loss)


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


def loss_with(surrogate="max", reduce="token", detach_ratio=False, kl_sign=1.0, swap_clip=False, sign=1.0):
    """A GRPO loss with one mistake switched on."""
    def grpo_loss(logp, old_logp, ref_logp, advantages, mask, clip_low=0.2, clip_high=0.2, kl_coef=0.01,
                  seq_mean=False):
        lo, hi = (clip_high, clip_low) if swap_clip else (clip_low, clip_high)
        ratio = torch.exp((logp.detach() if detach_ratio else logp) - old_logp)
        adv = advantages.unsqueeze(1)
        pick = torch.max if surrogate == "max" else torch.min
        per_token = sign * pick(-adv * ratio, -adv * torch.clamp(ratio, 1 - lo, 1 + hi))
        if ref_logp is not None:
            per_token = per_token + kl_sign * kl_coef * mmr1.kl_k3(logp, ref_logp)
        if reduce == "seq" or seq_mean:
            loss = ((per_token * mask).sum(1) / mask.sum(1)).mean()
        elif reduce == "all":  # padding counted in the denominator
            loss = (per_token * mask).sum() / mask.numel()
        else:
            loss = (per_token * mask).sum() / mask.sum()
        return loss, {}
    return grpo_loss


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


MISTAKES = {  # exercise -> {mistake: arguments of the check}
    "advantage": {"population_std": (adv_population_std,), "no_eps": (adv_no_eps,),
                  "strided_groups": (adv_strided_groups,)},
    "kl": {"flipped_d": (kl_flipped_d,), "k1": (kl_k1,)},
    "surrogate": {"min_not_max": (loss_with(surrogate="min"),), "swapped_clip": (loss_with(swap_clip=True),),
                  "detached_ratio": (loss_with(detach_ratio=True),), "kl_subtracted": (loss_with(kl_sign=-1.0),)},
    "token_mean": {"mean_over_sequences": (loss_with(reduce="seq"),), "padding_in_mean": (loss_with(reduce="all"),)},
    "mask": {kind: (mask_mistake(kind),) for kind in ("padding_counted", "eos_dropped", "last_eos", "not_padding")},
    "reward": {"lazy_regex": (boxed_lazy_regex,), "first_box": (boxed_first,)},
    "ovs": {"sample_variance": (ovs_sample_variance,), "std": (ovs_std,)},
    "tds": {"padded": (tds_padded,), "similarity": (tds_similarity,)},
    "vps": {"swapped_weights": (vps_swapped, vas.VarianceAwareSampler),
            "min_max": (vas.variance_promotion_score, MinMaxSampler),
            "softmax": (vas.variance_promotion_score, SoftmaxSampler)},
    "grpo_step": {"ascends_the_loss": (mmr1.group_advantages, loss_with(sign=-1.0)),
                  "detached_ratio": (mmr1.group_advantages, loss_with(detach_ratio=True)),
                  "population_std": (adv_population_std, mmr1.grpo_loss)},
}


# ------------------------------------------------------------------------------------------ meta-tests

def test_checks_and_mistakes_cover_every_exercise():
    assert set(CHECKS) == set(EXERCISES) == set(MISTAKES) and len(EXERCISES) >= 8
    assert all(len(m) >= 1 for m in MISTAKES.values())


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_check_catches_blank(name):
    blanked = load_blanked([name], name)
    with pytest.raises(NotImplementedError):
        CHECKS[name](*implementations({"mmr1": mmr1, "vas": vas, **blanked})[name])


@pytest.mark.parametrize("name, mistake", [(n, m) for n in sorted(MISTAKES) for m in MISTAKES[n]])
def test_check_catches_mistake(name, mistake):
    with pytest.raises(AssertionError):
        CHECKS[name](*MISTAKES[name][mistake])


def test_blanked_modules_import_and_keep_signatures_and_docstrings():
    blanked, real = load_blanked(sorted(EXERCISES), "all"), {"mmr1": mmr1, "vas": vas}
    for file, qualnames in targets(EXERCISES).items():
        for qualname in qualnames:
            new, old = blanked[file], real[file]
            for part in qualname.split("."):
                new, old = getattr(new, part), getattr(old, part)
            assert new.__doc__ == old.__doc__ and inspect.signature(new) == inspect.signature(old)
    assert blanked["mmr1"].normalise(" 3.0 ") == "3" and blanked["vas"].DIVERSITY_METHODS  # the rest is untouched
    with pytest.raises(NotImplementedError, match="EXERCISES.md"):
        blanked["vas"].outcome_variance_score([1, 0])


def main(argv=None):
    parser = argparse.ArgumentParser(description="Blank the reference bodies of the exercises' functions in place.")
    parser.add_argument("--blank", nargs="*", metavar="EXERCISE", help=f"exercises to blank (default all): "
                        f"{', '.join(EXERCISES)}")
    parser.add_argument("--list", action="store_true", help="list the exercises and their functions")
    args = parser.parse_args(argv)
    if args.list or args.blank is None:
        for name, funcs in EXERCISES.items():
            print(f"{name:<12} {', '.join(funcs)}")
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
