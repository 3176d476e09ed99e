"""Tests for the GRPO math in mmr1.py: group advantages, the k3 KL and the clipped surrogate loss.

Hand-computed values (the arithmetic is in the comments) and a naive per-token loop as the reference for
the vectorised loss. Pure tensor functions: no model, runs in well under a second.
"""
import math
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmr1 import grpo_loss, group_advantages, kl_k3  # noqa: E402

EPS = 1e-6


def approx(values, abs=1e-6):
    return pytest.approx(values, abs=abs)


# ---------------------------------------------------------------- group advantage

def test_advantage_binary_group_uses_unbiased_std():
    # [1, 1, 0, 0]: mean 0.5, deviations +-0.5, unbiased var = 4 * 0.25 / 3 = 1/3, std = 0.57735
    # A = 0.5 / (0.57735 + 1e-6) = 0.866024 (the population std 0.5 would give 0.999998)
    adv = group_advantages(torch.tensor([1.0, 1.0, 0.0, 0.0]), 4)
    a = 0.5 / (math.sqrt(1 / 3) + EPS)
    assert adv.tolist() == approx([a, a, -a, -a])
    assert adv[0].item() != approx(0.5 / (0.5 + EPS), abs=1e-3)  # population std would be caught


def test_advantage_three_groups_non_binary():
    # G = 3, groups are rows 0-2, 3-5, 6-8
    # [2, 1, 0]: mean 1, dev [1, 0, -1], var = (1 + 0 + 1) / 2 = 1, std 1 -> A = [1, 0, -1] / (1 + 1e-6)
    # [0, 0, 0]: all equal -> 0 / (0 + 1e-6) = 0 exactly
    # [3, 0, 0]: mean 1, dev [2, -1, -1], var = (4 + 1 + 1) / 2 = 3, std 1.73205
    #            -> A = [2, -1, -1] / (1.73205 + 1e-6) = [1.154700, -0.577350, -0.577350]
    adv = group_advantages(torch.tensor([2, 1, 0, 0, 0, 0, 3, 0, 0]), 3)  # integer rewards are fine too
    assert adv.shape == (9,)
    one, s3 = 1 / (1 + EPS), math.sqrt(3) + EPS
    assert adv.tolist() == approx([one, 0, -one, 0, 0, 0, 2 / s3, -1 / s3, -1 / s3])
    # population std for [3, 0, 0] is sqrt(6 / 3) = 1.41421 -> 2 / 1.41421 = 1.414214: a different number
    assert adv[6].item() != approx(1.414214, abs=1e-3)


def test_advantage_format_plus_accuracy_rewards():
    # rewards in {0, 1, 2}: [2, 2, 1, 0], mean 1.25, dev [0.75, 0.75, -0.25, -1.25]
    # sum of squares = 0.5625 + 0.5625 + 0.0625 + 1.5625 = 2.75, var = 2.75 / 3 = 0.916667, std = 0.957427
    # A = [0.75, 0.75, -0.25, -1.25] / (0.957427 + 1e-6) = [0.783348, 0.783348, -0.261116, -1.305580]
    adv = group_advantages(torch.tensor([2.0, 2.0, 1.0, 0.0]), 4)
    std = math.sqrt(2.75 / 3) + EPS
    assert adv.tolist() == approx([0.75 / std, 0.75 / std, -0.25 / std, -1.25 / std])


def test_advantage_all_equal_group_is_exactly_zero():
    for value in (0.0, 1.0, 2.0):
        adv = group_advantages(torch.full((8,), value), 8)
        assert torch.equal(adv, torch.zeros(8))  # no gradient: the vanishing VAS fights


def test_advantage_dr_grpo_is_centred_only():
    # scale_std=False: A = r - mean(r); [2, 1, 0] -> [1, 0, -1]; [3, 0, 0] -> [2, -1, -1]; [1, 1, 1] -> 0
    adv = group_advantages(torch.tensor([2.0, 1, 0, 3, 0, 0, 1, 1, 1]), 3, scale_std=False)
    assert adv.tolist() == approx([1, 0, -1, 2, -1, -1, 0, 0, 0])


def test_advantage_groups_are_consecutive_rows():
    # [1, 0, 1, 0] with G = 2 is the groups [1, 0] and [1, 0] -> each: mean 0.5, std sqrt(0.5) = 0.707107
    # -> A = +-0.5 / (0.707107 + 1e-6) = +-0.707106. Strided groups ([1, 1], [0, 0]) would give all zeros.
    adv = group_advantages(torch.tensor([1.0, 0.0, 1.0, 0.0]), 2)
    a = 0.5 / (math.sqrt(0.5) + EPS)
    assert adv.tolist() == approx([a, -a, a, -a])


def test_advantage_eps():
    # [1, 0] with eps = 0.5: std = 0.707107, A = 0.5 / 1.207107 = 0.414214
    adv = group_advantages(torch.tensor([1.0, 0.0]), 2, eps=0.5)
    assert adv.tolist() == approx([0.414214, -0.414214])


# ---------------------------------------------------------------- k3 KL

def test_kl_k3_hand_values_and_sign_convention():
    # d = ref - logp = log 0.25 - log 0.5 = -ln 2: exp(-ln 2) - (-ln 2) - 1 = 0.5 + 0.693147 - 1 = 0.193147
    # flipped (d = +ln 2) would be 2 - 0.693147 - 1 = 0.306853
    kl = kl_k3(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)]))
    assert kl.item() == approx(0.193147)
    assert kl.item() != approx(0.306853, abs=1e-2)
    # d = 1: e - 1 - 1 = 0.718282; d = -1: 1/e + 1 - 1 = 0.367879
    kl = kl_k3(torch.tensor([0.0, 0.0]), torch.tensor([1.0, -1.0]))
    assert kl.tolist() == approx([0.718282, 0.367879])


def test_kl_k3_non_negative_and_zero_when_equal():
    g = torch.Generator().manual_seed(0)
    logp, ref = -5 * torch.rand(4, 7, generator=g), -5 * torch.rand(4, 7, generator=g)
    kl = kl_k3(logp, ref)
    assert kl.shape == (4, 7)
    assert (kl > 0).all()  # exp(d) > 1 + d whenever d != 0
    assert torch.equal(kl_k3(logp, logp), torch.zeros(4, 7))


# ---------------------------------------------------------------- GRPO loss

def naive_grpo_loss(logp, old, ref, adv, mask, clip_low, clip_high, kl_coef, seq_mean):
    """The formula of DESIGN.md, one token at a time: (loss, clip_frac, kl, ratio) as python floats."""
    logp, old, mask, adv = logp.tolist(), old.tolist(), mask.tolist(), adv.tolist()
    ref = ref.tolist() if ref is not None else None
    rows, n_clipped, kls, ratios = [], 0, [], []
    for i in range(len(logp)):
        terms = []
        for t in range(len(logp[i])):
            if not mask[i][t]:
                continue
            rho = math.exp(logp[i][t] - old[i][t])
            unclipped = -adv[i] * rho
            clipped = -adv[i] * min(max(rho, 1 - clip_low), 1 + clip_high)
            d = ref[i][t] - logp[i][t] if ref is not None else 0.0
            kl = math.exp(d) - d - 1
            terms.append(max(unclipped, clipped) + kl_coef * kl)
            n_clipped += clipped > unclipped
            kls.append(kl)
            ratios.append(rho)
        rows.append(terms)
    n = len(kls)
    if seq_mean:
        loss = sum(sum(r) / len(r) for r in rows) / len(rows)
    else:
        loss = sum(sum(r) for r in rows) / n
    return loss, n_clipped / n, sum(kls) / n, sum(ratios) / n


def random_batch(seed, rows=6, cols=9):
    """Log-probs with ratios well outside [0.8, 1.2], advantages of both signs, rows of different lengths."""
    g = torch.Generator().manual_seed(seed)
    logp = torch.log(torch.rand(rows, cols, generator=g, dtype=torch.float64) * 0.9 + 0.05)
    old = logp + (torch.rand(rows, cols, generator=g, dtype=torch.float64) - 0.5) * 1.2  # ratio in [0.55, 1.82]
    ref = logp + (torch.rand(rows, cols, generator=g, dtype=torch.float64) - 0.5) * 2.0
    adv = torch.randn(rows, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, cols + 1, (rows,), generator=g)
    lengths[0], lengths[1] = cols, 2  # at least one full row and one short row
    mask = (torch.arange(cols) < lengths.unsqueeze(1)).double()
    ratio = torch.exp(logp - old)[mask.bool()]
    assert (ratio > 1.2).any() and (ratio < 0.8).any() and (adv > 0).any() and (adv < 0).any()
    return logp, old, ref, adv, mask


def test_loss_hand_computed():
    # old = 0, so rho = exp(logp). Row 0: A = +1, row 1: A = -1; both with rho = [1.5, 0.5].
    # A=+1, rho=1.5: max(-1.5, -1.2) = -1.2 (clipped)   A=+1, rho=0.5: max(-0.5, -0.8) = -0.5
    # A=-1, rho=1.5: max( 1.5,  1.2) =  1.5             A=-1, rho=0.5: max( 0.5,  0.8) =  0.8 (clipped)
    # token-mean = (-1.2 - 0.5 + 1.5 + 0.8) / 4 = 0.15; clip_frac = 2 / 4; mean ratio = 4 / 4 = 1
    logp = torch.log(torch.tensor([[1.5, 0.5], [1.5, 0.5]]))
    loss, stats = grpo_loss(logp, torch.zeros(2, 2), None, torch.tensor([1.0, -1.0]), torch.ones(2, 2))
    assert loss.item() == approx(0.15)
    assert stats["clip_frac"] == approx(0.5) and stats["ratio"] == approx(1.0) and stats["kl"] == 0.0


@pytest.mark.parametrize("seq_mean", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_matches_naive_loop(seed, seq_mean):
    logp, old, ref, adv, mask = random_batch(seed)
    loss, stats = grpo_loss(logp, old, ref, adv, mask, 0.2, 0.28, 0.05, seq_mean)  # asymmetric clip
    want, clip_frac, kl, ratio = naive_grpo_loss(logp, old, ref, adv, mask, 0.2, 0.28, 0.05, seq_mean)
    assert loss.item() == approx(want, abs=1e-10)
    assert 0 < clip_frac < 1  # clipping is exercised
    assert stats["clip_frac"] == approx(clip_frac, abs=1e-12)
    assert stats["kl"] == approx(kl, abs=1e-10)
    assert stats["ratio"] == approx(ratio, abs=1e-10)


def test_loss_defaults_are_the_papers():
    # clip 0.2 / 0.2, beta_KL = 0.01, token-mean
    logp, old, ref, adv, mask = random_batch(3)
    want = naive_grpo_loss(logp, old, ref, adv, mask, 0.2, 0.2, 0.01, False)[0]
    assert grpo_loss(logp, old, ref, adv, mask)[0].item() == approx(want, abs=1e-10)


def test_masked_tokens_do_not_influence_loss_stats_or_grad():
    logp, old, ref, adv, mask = random_batch(4)
    garbage = torch.randn(logp.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 30
    out = mask == 0
    results = []
    for noise in (0.0, 1.0):  # clean inputs, then padding positions overwritten by values up to ~+-100
        lp = torch.where(out, logp + noise * garbage, logp).requires_grad_(True)
        o = torch.where(out, old - noise * garbage, old)
        r = torch.where(out, ref + noise * garbage, ref)
        loss, stats = grpo_loss(lp, o, r, adv, mask)
        loss.backward()
        results.append((loss.item(), stats, lp.grad))
    (loss_a, stats_a, grad_a), (loss_b, stats_b, grad_b) = results
    assert loss_a == approx(loss_b, abs=1e-12)
    assert stats_a == approx(stats_b, abs=1e-12)
    assert torch.allclose(grad_a, grad_b, atol=1e-15) and (grad_b[out] == 0).all()


def test_masked_tokens_extreme_values_stay_finite():
    # float32 padding positions where logp - old = 2000 and ref - logp = 2000: exp overflows to inf
    logp = torch.tensor([[-1.0, -2.0, 1000.0]], requires_grad=True)
    old = torch.tensor([[-1.0, -2.0, -1000.0]])
    ref = torch.tensor([[-1.5, -2.0, 3000.0]])
    loss, stats = grpo_loss(logp, old, ref, torch.tensor([1.0]), torch.tensor([[1.0, 1.0, 0.0]]))
    loss.backward()
    assert torch.isfinite(loss) and math.isfinite(stats["kl"]) and math.isfinite(stats["ratio"])
    assert torch.isfinite(logp.grad).all()


def test_on_policy_gradient_is_policy_gradient():
    # old = logp.detach(): rho = 1 in value, d rho / d logp = 1, clip inactive; kl_coef = 0.
    # d loss / d logp[i, t] = -A_i / (masked tokens) = -A_i / 4 here:
    # row 0 (A = 1.0): -1 / 4 = -0.25 at its 3 tokens; row 1 (A = -0.5): 0.5 / 4 = 0.125 at its 1 token
    logp = torch.log(torch.tensor([[0.3, 0.6, 0.9], [0.2, 0.7, 0.4]])).requires_grad_(True)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    ref = torch.zeros(2, 3)  # ignored: kl_coef = 0
    loss, stats = grpo_loss(logp, logp.detach(), ref, torch.tensor([1.0, -0.5]), mask, kl_coef=0.0)
    loss.backward()
    assert logp.grad.flatten().tolist() == approx([-0.25, -0.25, -0.25, 0.125, 0.0, 0.0])
    assert stats["ratio"] == 1.0 and stats["clip_frac"] == 0.0
    # value: -A * 1 per token -> (-1 - 1 - 1 + 0.5) / 4 = -0.625
    assert loss.item() == approx(-0.625)


def test_on_policy_kl_gradient_pulls_towards_reference():
    # d/d logp of beta * (exp(ref - logp) - (ref - logp) - 1) = beta * (1 - exp(ref - logp));
    # A = 0, one token, beta = 0.1, ref - logp = ln 2: 0.1 * (1 - 2) = -0.1 (gradient descent raises logp)
    logp = torch.tensor([[math.log(0.25)]], requires_grad=True)
    ref = torch.tensor([[math.log(0.5)]])
    loss, _ = grpo_loss(logp, logp.detach(), ref, torch.tensor([0.0]), torch.ones(1, 1), kl_coef=0.1)
    loss.backward()
    assert logp.grad.item() == approx(-0.1)
    # value: 0.1 * (2 - ln 2 - 1) = 0.1 * 0.306853 = 0.0306853
    assert loss.item() == approx(0.0306853)


def test_token_mean_differs_from_seq_mean_when_lengths_differ():
    # on-policy, no KL: per-token loss = -A. Row 0: A = 1, 3 tokens -> -1 each; row 1: A = -1, 1 token -> +1.
    # token-mean = (-1 - 1 - 1 + 1) / 4 = -0.5;  seq-mean = ((-3 / 3) + (1 / 1)) / 2 = 0
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    adv = torch.tensor([1.0, -1.0])
    token, _ = grpo_loss(logp, logp, None, adv, mask, kl_coef=0.0)
    seq, _ = grpo_loss(logp, logp, None, adv, mask, kl_coef=0.0, seq_mean=True)
    assert token.item() == approx(-0.5)
    assert seq.item() == approx(0.0)


def test_no_reference_means_no_kl_term():
    logp, old, ref, adv, mask = random_batch(6)
    without_ref, stats = grpo_loss(logp, old, None, adv, mask, kl_coef=0.5)
    zero_coef, _ = grpo_loss(logp, old, ref, adv, mask, kl_coef=0.0)
    with_kl, _ = grpo_loss(logp, old, ref, adv, mask, kl_coef=0.5)
    assert without_ref.item() == approx(zero_coef.item(), abs=1e-12)
    assert stats["kl"] == 0.0
    assert with_kl.item() > without_ref.item() + 1e-3  # the KL term is there when ref is given
