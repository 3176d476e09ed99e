"""The focusing VAS (`select=True`, `--vas-select`): the weighted part of a batch is the floor(lambda B) prompts of
highest posterior VPS, without replacement, ties in random order; by hand, against a naive loop, through a resume,
and in a run (tests/test_clock.py runs it in 2 processes against 1)."""
import json

import numpy as np
import pytest

import mmr1
import vas
from helpers import FROM_COLD_START, rows


def focusing(n=3, batch_size=3, mixture=1.0, seed=0, beta=0.0, **evidence):
    """A focusing sampler over n prompts with the given evidence per prompt (lists of n), decay 0.9."""
    s = vas.VarianceAwareSampler(n, batch_size, mixture, seed, alpha=1.0 - beta, beta=beta, decay=0.9, select=True)
    for name, values in evidence.items():
        s.evidence[name] = np.asarray(values, dtype=float)
    s._posterior()
    return s


def test_a_live_prompt_and_an_unseen_one_are_taken_over_a_dead_one_by_hand():
    """vas.VarianceAwareSampler.selected's example, prior 0.1, alpha 0.8, beta 0.2. Prompt 0 shown dead (8 right of
    8, identical answers: Beta(8.1, 0.1), TDS (0 + 0.05) / 1.1): VPS 0.8 * 0.81 / (8.2 * 9.2) + 0.2 * 0.045 =
    0.0177; prompt 1 half right (4 of 8, TDS 0.3): 0.8 * 16.81 / 75.44 + 0.2 * 0.35 / 1.1 = 0.2419; prompt 2 never
    drawn: 0.8 * 0.01 / 0.24 + 0.2 * 0.5 = 0.1333. At B_w = 2 every batch is [1, 2]."""
    s = focusing(batch_size=2, beta=0.2, right=[8, 4, 0], wrong=[0, 4, 0], groups=[1, 1, 0], tds=[0.0, 0.3, 0.0])
    assert s.scores == pytest.approx([0.0177, 0.2419, 0.1333], abs=1e-4)
    assert [s.next_batch() for _ in range(20)] == [[1, 2]] * 20


def test_selection_is_the_top_posterior_vps_against_a_naive_loop():
    """By hand on the same random tie-break: a_i = 0.1 + right_i, b_i = 0.1 + wrong_i, OVS_i = a b / ((a + b)
    (a + b + 1)), TDS_i = (tds_i + 0.05) / (groups_i + 0.1), VPS_i = 0.8 OVS_i + 0.2 TDS_i; the B_w largest, in
    order, each once; two prompts never drawn tie, and the permutation decides between them."""
    right, wrong, groups, tds = [8, 0, 3, 1, 5, 0, 0], [0, 8, 5, 1, 2, 0, 0], [1, 1, 1, 1, 1, 0, 0], \
        [0.0, 0.4, 0.3, 0.5, 0.2, 0.0, 0.0]
    s = focusing(n=7, batch_size=5, seed=3, beta=0.2, right=right, wrong=wrong, groups=groups, tds=tds)
    twin = np.random.default_rng()
    twin.bit_generator.state = s.rng.bit_generator.state
    place = {int(p): k for k, p in enumerate(twin.permutation(7))}
    vps = [0.8 * (0.1 + r) * (0.1 + w) / ((0.2 + r + w) * (1.2 + r + w)) + 0.2 * (t + 0.05) / (g + 0.1)
           for r, w, g, t in zip(right, wrong, groups, tds)]
    by_hand = sorted(range(7), key=lambda i: (-round(vps[i], 12), place[i]))[:5]
    assert s.next_batch() == by_hand and len(set(by_hand)) == 5 and {5, 6} & set(by_hand)


def test_ties_are_broken_at_random_not_by_index():
    """Eight prompts never drawn score the same: 200 batches of 4 take each about 100 times (binomial sd 7)."""
    s = focusing(n=8, batch_size=4)
    counts = np.bincount(np.concatenate([s.next_batch() for _ in range(200)]), minlength=8)
    assert counts.min() > 60 and counts.max() < 140, counts


def test_lambda_below_one_keeps_the_uniform_part_and_a_small_pool_cycles():
    s = focusing(n=4, batch_size=4, mixture=0.5, right=[8, 0, 4, 0], wrong=[0, 8, 4, 0])
    batch = s.next_batch()
    assert len(batch) == 4 and len(set(batch[:2])) == 2  # 2 selected, each once; then 2 from the shuffle
    small = focusing(n=2, batch_size=5, mixture=1.0)
    assert sorted(small.next_batch()) in ([0, 0, 0, 1, 1], [0, 0, 1, 1, 1])  # 5 from 2 prompts: in turn


def test_select_needs_the_posterior():
    with pytest.raises(SystemExit):
        mmr1.parse_args(["--vas-select"])  # not without --vas


def test_a_resumed_focusing_sampler_draws_the_same_batches():
    a = focusing(n=8, batch_size=4, mixture=0.75, seed=5, right=[8, 0, 3, 1, 5, 0, 2, 2], wrong=[0, 8, 5, 1, 2, 0, 6, 2])
    a.next_batch()
    a.update([1, 2], [[0, 1, 1, 0], [1, 1, 1, 1]], [[[1], [2], [3], [4]], [[1], [1], [1], [1]]], group=4)
    state = json.loads(json.dumps(a.state_dict()))  # as a checkpoint stores it: plain lists and numbers
    b = vas.VarianceAwareSampler(8, 4, 0.75, seed=99, alpha=1.0, beta=0.0, decay=0.9, select=True)  # same flags
    b.load_state_dict(state)
    assert [a.next_batch() for _ in range(5)] == [b.next_batch() for _ in range(5)]


def test_a_focusing_run_logs_its_dead_draws(cold_start, tmp_path):
    """On a dead pool the run logs the share of drawn prompts dead by construction; --vas-select resumes like
    any run (the sampler's RNG and posterior are checkpointed: tests/test_clock.py checks the rest)."""
    flags = ["--init-from", cold_start, *FROM_COLD_START, "--num-rl", "10", "--num-test", "4", "--rl-steps", "2",
             "--prompts-per-step", "4", "--group-size", "2", "--dead-share", "0.8", "--eval-every", "0",
             "--vas", "--vas-select", "--mixture-ratio", "1.0"]
    mmr1.main([*flags, "--out", str(tmp_path)])
    logged = [r["vas/dead_drawn"] for r in rows(tmp_path, "rl")]
    assert len(logged) == 2 and all(x in (0, 0.25, 0.5, 0.75, 1.0) for x in logged)
