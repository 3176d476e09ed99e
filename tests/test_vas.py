"""Tests for vas.py: hand-computed scores, the sampler's statistics with fixed seeds, state round trips,
and every bad input. Deterministic and fast (a few seconds on a laptop CPU)."""
import io
import math
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import vas  # noqa: E402
from vas import (VarianceAwareSampler, outcome_variance_score,  # noqa: E402
                 trajectory_diversity_score, variance_promotion_score)

METHODS = ["self_bleu", "distinct", "edit"]


# ---------------------------------------------------------------- OVS

def test_ovs_hand_computed():
    assert outcome_variance_score([1, 1, 0, 0]) == 0.25  # P = 0.5, the maximum
    assert outcome_variance_score([1, 1, 1, 1]) == 0.0  # all right: GRPO advantages all 0
    assert outcome_variance_score([0, 0, 0, 0]) == 0.0  # all wrong: same
    assert outcome_variance_score([1, 0, 0, 0]) == 0.1875  # 1/4 * 3/4
    assert outcome_variance_score([True, False, False]) == pytest.approx(2 / 9)  # 1/3 * 2/3


def test_ovs_reduces_last_axis_only():
    correct = np.array([[[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]]] * 2)  # (2, 3, N=4)
    ovs = outcome_variance_score(correct)
    assert ovs.shape == (2, 3)
    np.testing.assert_array_equal(ovs[1], [0.1875, 0.0, 0.25])


# ---------------------------------------------------------------- TDS

def _responses(kind, as_strings, n_resp=4, length=10):
    """N responses of `length` tokens: identical, sharing their first half, or with no token in common."""
    if kind == "identical":
        toks = [list(range(length))] * n_resp
    elif kind == "half":
        toks = [list(range(length // 2)) + [1000 * (k + 1) + i for i in range(length - length // 2)]
                for k in range(n_resp)]
    else:
        toks = [[1000 * (k + 1) + i for i in range(length)] for k in range(n_resp)]
    return [" ".join(f"w{t}" for t in ts) for ts in toks] if as_strings else toks


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("as_strings", [False, True])
def test_tds_range_and_orientation(method, as_strings):
    identical, half, disjoint = (trajectory_diversity_score(_responses(k, as_strings), method)
                                 for k in ("identical", "half", "disjoint"))
    assert identical == pytest.approx(0.0, abs=1e-12)
    assert disjoint > 0.9  # no token in common: about 1
    assert 0.0 <= identical < half < disjoint <= 1.0


@pytest.mark.parametrize("method", METHODS)
def test_tds_same_on_lists_strings_arrays_and_tensors(method):
    ids = [[1, 2, 3, 4, 5], [1, 2, 9, 4, 5], [7, 2, 3]]
    expected = trajectory_diversity_score(ids, method)
    assert trajectory_diversity_score([" ".join(map(str, r)) for r in ids], method) == expected
    assert trajectory_diversity_score([np.array(r) for r in ids], method) == expected
    assert trajectory_diversity_score([torch.tensor(r) for r in ids], method) == expected


def test_self_bleu_hand_computed():
    # "a b c d" against "a b e f": p1 = 2/4, p2 = (1 + 1)/(3 + 1), p3 = (0 + 1)/(2 + 1), no brevity
    # penalty; both directions are symmetric here, so TDS = 1 - (1/2 * 1/2 * 1/3) ** (1/3).
    tds = trajectory_diversity_score(["a b c d", "a b e f"])
    assert tds == pytest.approx(1 - (1 / 12) ** (1 / 3), abs=1e-12)
    assert round(tds, 2) == 0.56  # the docstring's number


def test_self_bleu_brevity_penalty_and_clipping():
    # "a b" vs ref "a b c d": all n-grams match, but the brevity penalty is exp(1 - 4/2) = e^-1.
    assert vas._bleu(["a", "b"], [["a", "b", "c", "d"]], 3) == pytest.approx(math.exp(-1))
    # "a a a a" vs ref "a x": unigram "a" clipped to 1 of 4; bigrams 0 of 3, trigrams 0 of 2.
    expected = (1 / 4 * 1 / 4 * 1 / 3) ** (1 / 3)
    assert vas._bleu(["a"] * 4, [["a", "x"]], 3) == pytest.approx(expected)
    # Multi-reference clipping takes the max count over refs, not the sum: "a a" is fully matched
    # by ref 2, while "a a a" gets 2 of 3 although the refs hold 4 a's between them.
    assert vas._bleu(["a", "a"], [["a", "x"], ["a", "a"]], 2) == pytest.approx(1.0)
    assert vas._bleu(["a"] * 3, [["a", "a", "x"], ["a", "a", "y"]], 1) == pytest.approx(2 / 3)


def test_distinct_hand_computed():
    # Trigrams abc, bcd, abc, bce: 3 unique of 4 -> 0.75; rescaled with N = 2: (0.75 - 0.5) / 0.5.
    assert trajectory_diversity_score(["a b c d", "a b c e"], "distinct") == pytest.approx(0.5)
    # Unigrams a b c d a b c e: 5 unique of 8 -> 0.625; rescaled: (0.625 - 0.5) / 0.5 = 0.25.
    assert trajectory_diversity_score(["a b c d", "a b c e"], "distinct", n=1) == pytest.approx(0.25)


def test_edit_hand_computed_and_against_naive_dp():
    # Pairs: (abc, axc) 1/3, (abc, ab) 1/3, (axc, ab) 2/3 -> mean 4/9.
    assert trajectory_diversity_score(["a b c", "a x c", "a b"], "edit") == pytest.approx(4 / 9)

    def naive(a, b):  # the textbook O(len(a) len(b)) table
        d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
        return d[-1][-1]

    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = rng.integers(0, 4, rng.integers(0, 9)), rng.integers(0, 4, rng.integers(0, 9))
        assert vas._edit_distance(a, b) == naive(list(a), list(b))


@pytest.mark.parametrize("method", METHODS)
def test_tds_empty_responses_do_not_crash(method):
    assert trajectory_diversity_score(["", ""], method) == 0.0  # two empty responses are identical
    assert trajectory_diversity_score([[], [1, 2, 3]], method) == 1.0  # empty vs non-empty: disjoint
    assert 0.0 <= trajectory_diversity_score(["", "a b c", "a b c"], method) <= 1.0


def test_tds_ignores_padding_by_contract():
    # Two unrelated responses stay maximally diverse: the caller passes tokens without padding,
    # whereas a shared run of pad ids (as in the official code) would make them look alike.
    assert trajectory_diversity_score([[5, 6, 7, 8], [9, 10, 11, 12]]) == 1.0
    assert trajectory_diversity_score([[5, 6, 7, 8] + [0] * 20, [9, 10, 11, 12] + [0] * 20]) < 0.5


# ---------------------------------------------------------------- VPS

def test_vps_hand_computed():
    assert variance_promotion_score(0.25, 0.5) == pytest.approx(0.3)  # 0.8 * 0.25 + 0.2 * 0.5
    assert variance_promotion_score(0.0, 0.1) == pytest.approx(0.02)
    assert variance_promotion_score(0.25, 1.0, alpha=0.5, beta=0.5) == pytest.approx(0.625)
    np.testing.assert_allclose(variance_promotion_score([0.0, 0.25], [1.0, 0.0]), [0.2, 0.2])


# ---------------------------------------------------------------- sampler

def test_weighted_draws_follow_vps():
    vps = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    sampler = VarianceAwareSampler(5, batch_size=100, mixture_ratio=1.0, seed=0)
    sampler.set_scores(vps)
    np.testing.assert_allclose(sampler.probabilities(), vps / vps.sum())
    draws = np.concatenate([sampler.next_batch() for _ in range(200)])  # 20,000 weighted draws
    freq = np.bincount(draws, minlength=5) / draws.size
    assert freq[0] == 0.0  # a zero-score prompt is never drawn at lambda = 1
    np.testing.assert_allclose(freq, vps / vps.sum(), atol=0.01)  # ~3 standard errors


@pytest.mark.parametrize("lam, batch_size, expected", [(0.0, 8, 0), (0.5, 8, 4), (0.3, 10, 3),
                                                       (0.29, 100, 29), (1.0, 7, 7), (0.5, 5, 2)])
def test_exact_lambda_split(lam, batch_size, expected):
    sampler = VarianceAwareSampler(10, batch_size, mixture_ratio=lam, seed=1)
    assert sampler.num_weighted == expected  # floor(lambda B)
    sampler.set_scores(np.eye(10)[7])  # all weight on prompt 7: the weighted part is all 7s
    for _ in range(5):
        batch = sampler.next_batch()
        assert len(batch) == batch_size and all(type(i) is int for i in batch)
        assert batch[:expected] == [7] * expected


def test_zero_score_prompt_reachable_through_uniform_part():
    sampler = VarianceAwareSampler(4, batch_size=4, mixture_ratio=0.5, seed=0)
    sampler.set_scores([0.0, 1.0, 1.0, 1.0])
    batches = [sampler.next_batch() for _ in range(20)]
    assert all(0 not in b[:2] for b in batches)  # never in the weighted part
    assert sum(0 in b[2:] for b in batches) == 10  # once per epoch of 4 uniform draws


@pytest.mark.parametrize("num_prompts, batch_size, lam", [(12, 8, 0.5), (3, 8, 0.0), (5, 3, 0.4)])
def test_uniform_part_is_a_permutation_per_epoch(num_prompts, batch_size, lam):
    # Covers an epoch ending mid-batch and a batch larger than the whole pool.
    sampler = VarianceAwareSampler(num_prompts, batch_size, mixture_ratio=lam, seed=3)
    sampler.set_scores(np.arange(num_prompts, dtype=float))
    uniform = np.concatenate([sampler.next_batch()[sampler.num_weighted:] for _ in range(30)])
    epochs = uniform[: len(uniform) // num_prompts * num_prompts].reshape(-1, num_prompts)
    assert len(epochs) >= 3
    for epoch in epochs:
        assert sorted(epoch) == list(range(num_prompts))
    assert len({tuple(e) for e in epochs}) > 1  # reshuffled, not the same order every epoch


def test_all_zero_scores_fall_back_to_uniform():
    sampler = VarianceAwareSampler(4, batch_size=400, mixture_ratio=1.0, seed=0)
    np.testing.assert_array_equal(sampler.probabilities(), [0.25] * 4)  # unscored = all zero
    sampler.set_scores([0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(sampler.probabilities(), [0.25] * 4)
    freq = np.bincount(sampler.next_batch(), minlength=4) / 400
    np.testing.assert_allclose(freq, 0.25, atol=0.06)


def test_equal_scores_do_not_crash():  # the official min-max normalisation divides by 0 here
    sampler = VarianceAwareSampler(3, batch_size=6, seed=0)
    sampler.set_scores([0.2, 0.2, 0.2])
    np.testing.assert_allclose(sampler.probabilities(), [1 / 3] * 3)
    assert len(sampler.next_batch()) == 6


def _is_plain(x):
    if isinstance(x, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_is_plain(v) for v in x)
    return type(x) in (int, float, str)


def test_state_round_trip_restores_future_batches():
    sampler = VarianceAwareSampler(7, batch_size=5, mixture_ratio=0.4, seed=11)
    sampler.set_scores([0.1, 0.0, 0.3, 0.2, 0.05, 0.0, 0.25])
    for _ in range(3):
        sampler.next_batch()  # now mid-epoch: the cursor and the shuffle must travel too
    state = sampler.state_dict()
    assert _is_plain(state)
    expected = [sampler.next_batch() for _ in range(10)]

    restored = VarianceAwareSampler(7, batch_size=5, mixture_ratio=0.4, seed=999)
    restored.load_state_dict(state)
    assert [restored.next_batch() for _ in range(10)] == expected
    np.testing.assert_array_equal(restored.scores, sampler.scores)

    buffer = io.BytesIO()  # the trainer's checkpoint path: torch.save -> torch.load(weights_only=True)
    torch.save({"sampler": state}, buffer)
    buffer.seek(0)
    from_disk = VarianceAwareSampler(7, batch_size=5, mixture_ratio=0.4, seed=5)
    from_disk.load_state_dict(torch.load(buffer, weights_only=True)["sampler"])
    assert [from_disk.next_batch() for _ in range(10)] == expected


def test_update_replaces_ingredients_and_pools_repeated_prompts():
    sampler = VarianceAwareSampler(4, batch_size=4, seed=0)
    sampler.set_scores([0.1, 0.1, 0.1, 0.1])
    # Prompt 2 was drawn twice in the batch: its 2 + 2 rollouts are scored together.
    sampler.update([2, 0, 2], [[1, 0], [1, 1], [1, 1]],
                   [["a b c", "d e f"], ["x y", "x y"], ["a b c", "a b c"]])
    assert sampler.pass_rate[2] == 0.75 and sampler.pass_rate[0] == 1.0
    tds2 = trajectory_diversity_score(["a b c", "d e f", "a b c", "a b c"])
    assert sampler.tds[2] == pytest.approx(tds2) and sampler.tds[0] == 0.0
    assert sampler.scores[2] == pytest.approx(0.8 * 0.1875 + 0.2 * tds2)
    assert sampler.scores[0] == 0.0  # all right, identical responses: no variance to promote
    np.testing.assert_array_equal(sampler.scores[[1, 3]], [0.1, 0.1])  # untouched
    assert np.isnan(sampler.pass_rate[1])  # never measured
    sampler.update([2, 2], [[1, 0], [1, 1]], [["a b c", "d e f"], ["a b c", "a b c"]], group=2)
    assert sampler.tds[2] == 0.5  # TDS group by group: the mean of 1.0 and 0.0


def test_score_pool_matches_the_functions():
    correct = [[1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 1]]
    responses = [["a b", "c d", "a b", "e f"], ["x"] * 4, ["p q r", "p q s", "t u v", "p q r"]]
    sampler = VarianceAwareSampler(3, batch_size=2, alpha=0.5, beta=0.5, diversity="edit")
    sampler.score_pool(correct, responses)
    tds = [trajectory_diversity_score(r, "edit") for r in responses]
    expected = variance_promotion_score(outcome_variance_score(correct), tds, 0.5, 0.5)
    np.testing.assert_allclose(sampler.scores, expected)
    np.testing.assert_allclose(sampler.pass_rate, [0.5, 1.0, 0.25])


def test_tds_on_one_scale_whether_scored_from_n_or_from_g_rollouts():
    """Self-BLEU grows with the number of references: random responses scored as one set of N = 32 look
    less diverse than the same responses in groups of G = 8. Scored in chunks of G, a prompt's TDS from
    its N scoring rollouts is the mean of what its G-rollout groups give online."""
    rng = np.random.default_rng(0)
    pool = [[" ".join(rng.choice(list("abcdef"), 6)) for _ in range(32)] for _ in range(20)]  # 20 prompts x N
    correct = [[i % 2 for i in range(32)]] * 20
    scored, online, whole = (VarianceAwareSampler(20, batch_size=4) for _ in range(3))
    scored.score_pool(correct, pool, group=8)  # N = 32 in chunks of G = 8
    for k in range(4):  # the same prompts, from four batches of G = 8 training rollouts
        online.update(range(20), [c[8 * k:8 * k + 8] for c in correct], [r[8 * k:8 * k + 8] for r in pool])
        assert online.tds[0] == pytest.approx(trajectory_diversity_score(pool[0][8 * k:8 * k + 8]))
    whole.score_pool(correct, pool)  # all 32 as one set: another scale
    g_scale = np.mean([trajectory_diversity_score(r[8 * k:8 * k + 8]) for r in pool for k in range(4)])
    np.testing.assert_allclose(scored.tds.mean(), g_scale)
    assert abs(online.tds.mean() - g_scale) < 0.02 and whole.tds.mean() < g_scale - 0.05
    np.testing.assert_allclose(scored.tds[3], np.mean([trajectory_diversity_score(pool[3][i:i + 8])
                                                       for i in (0, 8, 16, 24)]))


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, match", [
    ({"mixture_ratio": -0.1}, "-0.1"), ({"mixture_ratio": 1.5}, "1.5"),
    ({"mixture_ratio": float("nan")}, r"lambda\) must be in \[0, 1\], got nan"),
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"), ({"num_prompts": 0}, "num_prompts .* got 0"),
    ({"diversity": "bleu4"}, "'bleu4'"),
])
def test_bad_sampler_arguments(kwargs, match):
    args = {"num_prompts": 4, "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        VarianceAwareSampler(**args)


@pytest.mark.parametrize("scores, match", [
    ([0.1, -0.2, 0.0], "-0.2"), ([0.1, float("nan"), 0.0], "nan"), ([0.1, float("inf"), 0.0], "inf"),
    ([0.1, 0.2], r"expected 3 scores, one per prompt, got \(2,\)"),
])
def test_bad_scores(scores, match):
    with pytest.raises(ValueError, match=match):
        VarianceAwareSampler(3, batch_size=2).set_scores(scores)


def test_bad_tds_inputs():
    with pytest.raises(ValueError, match="at least 2 responses.*got 1"):
        trajectory_diversity_score(["only one"])
    with pytest.raises(ValueError, match="got 0"):
        trajectory_diversity_score([])
    with pytest.raises(ValueError, match="'rouge'"):
        trajectory_diversity_score(["a", "b"], method="rouge")


def test_bad_pool_and_state():
    sampler = VarianceAwareSampler(3, batch_size=2)
    with pytest.raises(ValueError, match="all 3 prompts' rollouts, got 2"):
        sampler.score_pool([[1, 0], [0, 1]], [["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match="state has 5 prompts"):
        sampler.load_state_dict(VarianceAwareSampler(5, batch_size=2).state_dict())
