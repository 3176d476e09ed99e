"""The focusing VAS (`select=True`, `--vas-select`): the weighted part of a batch is the floor(lambda B) prompts of
highest VPS under one draw of P from each posterior, without replacement; by hand, against a naive loop, through a
resume, and in a run."""
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


def test_a_live_prompt_is_taken_over_dead_ones_by_hand():
    """Prompt 0 always right (100 of 100: Beta(100.1, 0.1)), 1 half right (4 of 8: Beta(4.1, 4.1)), 2 never
    (Beta(0.1, 100.1)); B_w = 1, OVS alone (beta = 0). The live prompt's draw gives P (1 - P) = 0.25 - (P - 0.5)^2,
    about 0.22; a dead prompt's draw puts P within 0.01 of its end 98 times in 100, so P (1 - P) < 0.01, and
    above the live one's almost never (simulated: 5 draws in 10^7). The live prompt is taken every time."""
    s = focusing(batch_size=3, mixture=1 / 3, right=[100, 4, 0], wrong=[0, 4, 100])
    assert s.num_weighted == 1
    firsts = [s.next_batch()[0] for _ in range(500)]
    assert firsts.count(1) == 500


def test_selection_is_the_top_of_one_posterior_draw():
    """Against a naive loop on the same random draw: P_i ~ Beta(a_i, b_i) for every prompt, VPS_i = alpha P_i (1 -
    P_i) + beta TDS_i, the B_w largest, in order, each once."""
    s = focusing(n=6, batch_size=4, mixture=1.0, seed=3, beta=0.2, right=[8, 0, 3, 1, 5, 0], wrong=[0, 8, 5, 1, 2, 0],
                 groups=[1, 1, 1, 1, 1, 0], tds=[0.0, 0.4, 0.3, 0.5, 0.2, 0.0])
    twin = np.random.default_rng()
    twin.bit_generator.state = s.rng.bit_generator.state
    draws = [twin.beta(0.1 + r, 0.1 + w) for r, w in zip([8, 0, 3, 1, 5, 0], [0, 8, 5, 1, 2, 0])]
    tds = [(t + 0.05) / (g + 0.1) for t, g in zip([0.0, 0.4, 0.3, 0.5, 0.2, 0.0], [1, 1, 1, 1, 1, 0])]
    vps = [0.8 * p * (1 - p) + 0.2 * t for p, t in zip(draws, tds)]
    by_hand = sorted(range(6), key=lambda i: -vps[i])[:4]
    assert s.next_batch() == by_hand and len(set(by_hand)) == 4


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
