"""Tests for posterior VAS (vas.py's Beta posterior with forgetting; no scoring rollouts) and for
the toy pool of dead prompts (data.dead_pool, data.toy_splits with --dead-share). Hand-computed numbers,
numpy and Pillow only (no model): about a second."""
import json
import math
import os
import random
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
from helpers import ROOT  # noqa: E402
import vas  # noqa: E402

SAME = ["x y z"] * 8  # a group of G = 8 identical responses: TDS 0
DISJOINT = ["a b", "c d"]  # no word in common: TDS 1


def sampler(num_prompts=4, decay=0.9, seed=0, batch_size=4, prior=0.5):
    """Beta(0.5, 0.5) here, whose numbers are rounder by hand; the default prior (0.1) has a test of its own."""
    return vas.VarianceAwareSampler(num_prompts, batch_size, 0.5, seed, alpha=0.8, beta=0.2, decay=decay,
                                    prior=prior)


def vps(right, wrong, groups, tds_sum, prior=0.5):
    """The posterior's VPS, written out once more: a check on the numbers below, not on vas.py."""
    a, b = prior + right, prior + wrong
    return 0.8 * a * b / ((a + b) * (a + b + 1)) + 0.2 * (tds_sum + 0.5 * prior) / (groups + prior)


# ---------------------------------------------------------------- the posterior, by hand

def evidence(s):
    """The posterior's evidence as rows right, wrong, groups, TDS sum (4, prompts)."""
    return np.stack([s.evidence[name] for name in vas.EVIDENCE])


def test_fresh_posterior_is_the_prior():
    s = sampler()
    # Beta(0.5, 0.5): P = 0.5, OVS = 0.25 / (1 * 2) = 0.125; TDS = 0.25 / 0.5 = 0.5; VPS = 0.1 + 0.1 = 0.2
    np.testing.assert_array_equal(evidence(s), np.zeros((4, 4)))
    np.testing.assert_allclose(s.pass_rate, 0.5)
    np.testing.assert_allclose(s.tds, 0.5)
    np.testing.assert_allclose(s.scores, 0.2)
    np.testing.assert_allclose(s.probabilities(), 0.25)


def test_the_default_prior_by_hand():
    s = vas.VarianceAwareSampler(3, 2, decay=0.98)  # Beta(0.1, 0.1), as mmr1 uses it
    # never drawn: OVS = 0.01 / (0.2 * 1.2) = 0.0417, TDS 0.5, VPS = 0.8 * 0.0417 + 0.2 * 0.5 = 0.1333
    np.testing.assert_allclose(s.scores, 0.8 * 0.01 / 0.24 + 0.1)
    s.update([0, 0], [[1] * 8, [1] * 8], [SAME, SAME], group=8)  # 16 right of 16, identical answers
    # a = 16.1, b = 0.1: OVS = 1.61 / (16.2 * 17.2) = 0.00578; TDS = 0.05 / 2.1 = 0.0238; VPS = 0.00938
    assert s.scores[0] == pytest.approx(0.8 * 1.61 / (16.2 * 17.2) + 0.2 * 0.05 / 2.1) == pytest.approx(0.00938, abs=1e-5)
    assert s.scores[0] < s.scores[1] / 10  # a known-dead prompt far below one never drawn


def test_update_decays_all_then_adds_hand_computed():
    s = sampler(decay=0.9)
    s.update([0], [[1] * 8], [SAME], group=8)
    # step 1: zeros * 0.9, then prompt 0 += (8 right, 0 wrong, 1 group, TDS 0)
    np.testing.assert_allclose(evidence(s)[:, 0], [8, 0, 1, 0])
    # a = 8.5, b = 0.5: P = 8.5 / 9, OVS = 4.25 / (9 * 10) = 0.047222; TDS = 0.25 / 1.5 = 1/6
    # VPS = 0.8 * 0.047222 + 0.2 / 6 = 0.037778 + 0.033333 = 0.071111
    assert s.pass_rate[0] == pytest.approx(8.5 / 9)
    assert s.tds[0] == pytest.approx(1 / 6)
    assert s.scores[0] == pytest.approx(0.071111, abs=1e-6)
    np.testing.assert_allclose(s.scores[1:], 0.2)  # the others are still the prior's

    s.update([1], [[1, 0]], [DISJOINT], group=2)
    # step 2: prompt 0 decays to (7.2, 0, 0.9, 0): a = 7.7, b = 0.5, OVS = 3.85 / (8.2 * 9.2) = 0.051034,
    # TDS = 0.25 / 1.4 = 0.178571, VPS = 0.040827 + 0.035714 = 0.076541
    # prompt 1 gets (1, 1, 1, 1): a = b = 1.5, OVS = 2.25 / (3 * 4) = 0.1875, TDS = 1.25 / 1.5,
    # VPS = 0.15 + 0.166667 = 0.316667
    np.testing.assert_allclose(evidence(s), [[7.2, 1, 0, 0], [0, 1, 0, 0], [0.9, 1, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_allclose(s.scores, [0.076541, 0.316667, 0.2, 0.2], atol=1e-6)
    assert s.scores[0] == pytest.approx(vps(7.2, 0, 0.9, 0))


def test_a_prompt_listed_twice_is_pooled_and_decayed_once():
    s = sampler(decay=0.5)
    s.update([3], [[1, 1]], [DISJOINT], group=2)  # (2, 0, 1, 1)
    s.update([3, 3], [[1, 0], [0, 0]], [["a b", "a b"], DISJOINT], group=2)
    # one decay for the call: (1, 0, 0.5, 0.5); + pooled (1 right, 3 wrong, 2 groups, TDS 0 + 1)
    np.testing.assert_allclose(evidence(s)[:, 3], [2, 3, 2.5, 1.5])
    assert s.scores[3] == pytest.approx(vps(2, 3, 2.5, 1.5))  # a = 2.5, b = 3.5: 0.8 * 8.75 / 42 + 0.2 * 1.75 / 3
    assert s.scores[3] == pytest.approx(0.8 * 8.75 / 42 + 0.2 * 1.75 / 3)


def test_never_seen_ranks_between_dead_and_live():
    s = sampler(decay=0.97)
    live = [f"w{i} v{i}" for i in range(8)]  # 8 responses with no word in common: TDS 1
    for _ in range(3):
        s.update([0, 1, 2], [[1] * 8, [0] * 8, [1, 0] * 4], [SAME, SAME, live], group=8)
    # after 3 groups each holds k = 1 + 0.97 + 0.97^2 = 2.9109 decayed groups:
    #   all right (0): a = 0.5 + 8k = 23.787, b = 0.5: OVS = 0.0194, TDS = 0.25 / 3.41 = 0.073, VPS ~ 0.030
    #   all wrong (1): the mirror image, the same VPS
    #   live (2):      a = b = 0.5 + 4k = 12.14: OVS = 0.240, TDS = (k + 0.25) / (k + 0.5) = 0.927, VPS ~ 0.377
    #   never seen (3): the prior, 0.2
    k = 1 + 0.97 + 0.97 ** 2
    np.testing.assert_allclose(evidence(s)[:, 0], [8 * k, 0, k, 0])
    np.testing.assert_allclose(evidence(s)[:, 2], [4 * k, 4 * k, k, k])
    np.testing.assert_allclose(s.scores, [vps(8 * k, 0, k, 0), vps(0, 8 * k, k, 0), vps(4 * k, 4 * k, k, k), 0.2])
    assert s.scores[0] == pytest.approx(0.0302, abs=1e-4) and s.scores[1] == pytest.approx(s.scores[0])
    assert s.scores[2] == pytest.approx(0.3775, abs=1e-4)
    assert s.scores[3] == pytest.approx(0.2)
    assert s.scores[0] < s.scores[3] < s.scores[2]  # dead < never seen < live
    assert np.argmax(s.probabilities()) == 2


def test_a_prompt_left_alone_drifts_back_to_the_prior():
    s = sampler(decay=0.9)
    s.update([0], [[1] * 8], [SAME], group=8)  # VPS 0.071111, far below the prior's 0.2
    gaps = [abs(s.scores[0] - 0.2)]
    for _ in range(30):  # 30 steps that train prompt 1 only
        s.update([1], [[1, 0]], [DISJOINT], group=2)
        gaps.append(abs(s.scores[0] - 0.2))
    # prompt 0's evidence is (8, 0, 1, 0) * 0.9^30 = (0.339, 0, 0.042, 0): VPS 0.199
    np.testing.assert_allclose(evidence(s)[:, 0], np.array([8, 0, 1, 0]) * 0.9 ** 30)
    assert s.scores[0] == pytest.approx(vps(8 * 0.9 ** 30, 0, 0.9 ** 30, 0))
    assert s.scores[0] == pytest.approx(0.2, abs=2e-3)
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:]))  # closer every step

    keep = sampler(decay=1.0)  # decay 1 forgets nothing
    keep.update([0], [[1] * 8], [SAME], group=8)
    for _ in range(30):
        keep.update([1], [[1, 0]], [DISJOINT], group=2)
    np.testing.assert_array_equal(evidence(keep)[:, 0], [8, 0, 1, 0])
    assert keep.scores[0] == pytest.approx(0.071111, abs=1e-6)
    np.testing.assert_allclose(evidence(keep)[:, 1], [30, 30, 30, 30])


def test_without_decay_update_replaces_listed_prompts_only():
    s = sampler(decay=None)
    np.testing.assert_array_equal(s.scores, np.zeros(4))  # unscored: 0, so probabilities() is uniform
    s.update([2], [[1, 0, 0, 0]], [["a b"] * 4])
    # P = 0.25: OVS = 0.1875, TDS 0: VPS = 0.8 * 0.1875 = 0.15; nobody else changes
    np.testing.assert_allclose(s.scores, [0, 0, 0.15, 0])
    assert s.pass_rate[2] == 0.25 and s.tds[2] == 0.0
    assert np.isnan(s.pass_rate[[0, 1, 3]]).all()
    s.update([2], [[1, 1]], [DISJOINT])  # replaced, not pooled with the old: P = 1, OVS 0, TDS 1 -> 0.2
    np.testing.assert_allclose(s.scores, [0, 0, 0.2, 0])
    assert s.pass_rate[2] == 1.0 and s.tds[2] == 1.0
    np.testing.assert_array_equal(evidence(s), np.zeros((4, 4)))  # no posterior kept


# ---------------------------------------------------------------- checkpoints

def test_state_round_trip_keeps_the_evidence():
    def step(s, t):  # one training step: a batch, then the update from its groups
        batch = s.next_batch()
        s.update(batch, [[(t + i) % 2, 1] for i in batch], [DISJOINT if i % 2 else ["p q", "p q"] for i in batch],
                 group=2)
        return batch

    original = sampler(num_prompts=6, decay=0.9, seed=1, batch_size=4)
    for t in range(5):
        step(original, t)
    state = json.loads(json.dumps(original.state_dict()))  # plain lists and numbers
    restored = sampler(num_prompts=6, decay=0.9, seed=99, batch_size=4)
    restored.load_state_dict(state)
    np.testing.assert_array_equal(evidence(restored), evidence(original))
    for t in range(5, 10):
        assert step(restored, t) == step(original, t)
        np.testing.assert_array_equal(restored.scores, original.scores)
        np.testing.assert_array_equal(evidence(restored), evidence(original))


# ---------------------------------------------------------------- the dead pool

@pytest.mark.parametrize("n, share, always, never, live", [
    (20, 0.25, 3, 2, 15),  # round(5): 3 always solved (the odd one), 2 never
    (20, 0.75, 8, 7, 5),  # round(15)
    (10, 0.9, 5, 4, 1),  # round(9)
    (12, 0.5, 3, 3, 6),  # round(6): even split
    (9, 0.75, 4, 3, 2),  # round(6.75) = 7, rounded, not cut to 6
    (8, 0.0, 0, 0, 8),  # no dead prompts: all live
])
def test_dead_pool_counts_and_kinds(n, share, always, never, live):
    pool = data.dead_pool(n, share, seed=0, size=56)
    kinds = ["always"] * always + ["never"] * never + ["live"] * live  # in blocks, in this order
    assert len(pool) == n
    for ex, kind in zip(pool, kinds, strict=True):
        if kind == "always":
            assert ex.family == "colour" and ex.answer in data.COLOURS
        elif kind == "never":
            assert (ex.family, ex.answer, ex.question) == ("shape", "octagon", "What shape is shown?")
        else:
            assert ex.family == "biggest" and ex.answer in data.COLOURS
    assert [ex.id for ex in pool] == [f"rl-{i}" for i in range(n)]


def test_dead_pool_is_deterministic_per_seed():
    def fingerprint(pool):
        return [(ex.id, ex.question, ex.answer, ex.rationale, ex.image.tobytes()) for ex in pool]

    assert fingerprint(data.dead_pool(12, 0.5, seed=3, size=56)) == fingerprint(data.dead_pool(12, 0.5, 3, 56))
    assert fingerprint(data.dead_pool(12, 0.5, seed=3, size=56)) != fingerprint(data.dead_pool(12, 0.5, 4, 56))


def _area_over_circumradius2(image):
    """Shape pixels / (largest distance from their centroid)^2: a regular n-gon gives (n/2) sin(2 pi / n),
    hexagon 2.598, octagon 2.828, circle pi (within ~0.05 at 112 px)."""
    ys, xs = np.nonzero((np.asarray(image) != 255).any(-1))
    return len(ys) / ((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2).max()


def test_octagons_are_drawn_with_eight_corners():
    octagons = [ex for ex in data.dead_pool(20, 1.0, seed=0, size=112) if ex.answer == "octagon"]
    assert len(octagons) == 10
    for ex in octagons:
        assert _area_over_circumradius2(ex.image) == pytest.approx(4 * math.sin(math.pi / 4), abs=0.1)
    # the same draw (one seed) as a hexagon: the same circle, fewer pixels inside it
    hexagon, octagon = (data._toy_example(0, random.Random(5), 112, "", 0.0, "shape", shape)
                        for shape in ("hexagon", "octagon"))
    assert hexagon.image.tobytes() != octagon.image.tobytes()
    assert _area_over_circumradius2(hexagon.image) == pytest.approx(3 * math.sin(math.pi / 3), abs=0.1)


def test_the_cold_start_never_reads_octagon():
    sft = data.make_geometry_dataset(400, seed=0, size=28, teacher_error=0.6)
    assert {ex.answer for ex in sft if ex.family == "shape"} == set(data.SHAPES)  # every other shape is named
    assert not any("octagon" in ex.question + ex.rationale + ex.answer for ex in sft)


def test_toy_splits_with_dead_share():
    import mmr1
    flags = ["--num-rl", "20", "--num-sft", "8", "--num-test", "8", "--image-size", "56"]
    dead, every = (data.toy_splits(mmr1.parse_args(extra + flags)) for extra in (["--dead-share", "0.5"], []))

    def fingerprint(pool):
        return [(ex.id, ex.question, ex.answer, ex.image.tobytes()) for ex in pool]

    assert fingerprint(dead["rl"]) == fingerprint(data.dead_pool(20, 0.5, seed=1, size=56))  # data_seed 0: 3 * 0 + 1
    assert [ex.family for ex in dead["rl"]] == ["colour"] * 5 + ["shape"] * 5 + ["biggest"] * 10
    assert fingerprint(dead["test"]) == fingerprint(every["test"])  # the test split: every family, unchanged
    assert fingerprint(dead["sft"]) == fingerprint(every["sft"])
    assert {ex.family for ex in dead["test"]} == set(data.FAMILIES)


def test_the_simulation_that_set_the_prior_runs_and_ranks_the_samplers():
    """assets/sim_posterior.py, the simulation that chose posterior VAS's prior and decay (docs/when-vas-pays.md
    points to it, docs/protocol.md quotes its numbers): at d = 0.9 the posterior finds more groups that differ than
    uniform sampling, on one seed."""
    sys.path.insert(0, os.path.join(ROOT, "assets"))
    import sim_posterior
    uniform, posterior = (sim_posterior.simulate(mode, 0.9, seed=0) for mode in ("uniform", "posterior"))
    assert posterior[0] > 1.5 * uniform[0] and posterior[1] > 2 * uniform[1]  # groups that differ, live drawn
