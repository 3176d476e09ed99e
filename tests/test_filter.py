"""Dynamic sampling (--filter-groups K, DAPO's Sec. 3.2) with hand-built rewards: groups whose G rewards all
agree are dropped, more batches are drawn until B groups differ or K batches were drawn, every rollout is
counted; and in a real run, the rollout counters add up step by step."""
import types

import pytest
import torch

import mmr1
from helpers import FROM_COLD_START, InOrder, fixed_rollout, rows

G, B = 2, 4
POLICY = types.SimpleNamespace(eos=2, pad=0)
POOL = [types.SimpleNamespace(id=str(k)) for k in range(12)]
# batch 1 = prompts 0-3, batch 2 = 4-7, batch 3 = 8-11; "-" marks the groups whose rewards all agree
TABLE = {0: [1, 1], 1: [0, 1], 2: [0, 0], 3: [2, 0],  # - live - live
         4: [1, 0], 5: [1, 1], 6: [0, 2], 7: [1, 0],  # live - live live
         8: [0, 0], 9: [0, 0], 10: [2, 2], 11: [1, 1]}  # all dead


def draw(monkeypatch, filter_groups, table=TABLE):
    monkeypatch.setattr(mmr1, "rollout", fixed_rollout(table, model=False))
    args = mmr1.parse_args(["--group-size", str(G), "--prompts-per-step", str(B),
                            "--filter-groups", str(filter_groups)])
    ro, drawn, outcomes, kept = mmr1.draw_groups(POLICY, POOL, InOrder(B), args)
    return ro, drawn, outcomes.rewards, kept


def test_all_equal_groups_are_dropped_and_refilled_from_the_next_batch(monkeypatch):
    ro, drawn, rewards, kept = draw(monkeypatch, 3)
    assert [p.id for p in ro.prompts] == ["1", "3", "4", "6"]  # the first four that differ, in order drawn
    assert ro.rewards.tolist() == [0, 1, 2, 0, 1, 0, 0, 2] and kept == 4
    assert drawn == list(range(8))  # full after two batches: the third is never drawn
    assert len(rewards) == 16 and len(ro.completions) == 8 and ro.mask.shape[0] == 8  # 16 generated, 8 kept
    assert ro.mask.sum(1).tolist() == [len(c) for c in ro.completions]  # each row keeps its own completion


def test_the_cap_ends_the_refill_with_fewer_groups(monkeypatch):
    table = {**TABLE, 4: [1, 1], 7: [0, 0]}  # batch 2 now holds one live group (6)
    ro, drawn, rewards, kept = draw(monkeypatch, 2, table)
    assert [p.id for p in ro.prompts] == ["1", "3", "6"] and kept == 3  # 2 batches drawn, no more
    assert drawn == list(range(8)) and len(rewards) == 16 and ro.rewards.tolist() == [0, 1, 2, 0, 0, 2]
    ro, drawn, rewards, kept = draw(monkeypatch, 1, table)  # one batch: only its two live groups
    assert [p.id for p in ro.prompts] == ["1", "3"] and drawn == [0, 1, 2, 3]


def test_without_filtering_every_group_is_kept(monkeypatch):
    ro, drawn, rewards, kept = draw(monkeypatch, 0)
    assert [p.id for p in ro.prompts] == ["0", "1", "2", "3"] and drawn == [0, 1, 2, 3] and kept == 4
    assert torch.equal(ro.rewards, rewards)


def test_missing_groups_are_padded_with_weightless_copies(monkeypatch):
    """Under torchrun every rank trains on as many groups (FSDP gathers need every rank): a rank that kept fewer
    gets copies of a group whose mask is 0, so they add nothing to the loss."""
    ro = draw(monkeypatch, 0)[0]
    padded = mmr1.select([(ro, [1])], G, 3, POLICY.pad)
    assert [p.id for p in padded.prompts] == ["1", "3", "3"]
    assert padded.mask[:G].sum() > 0 and padded.mask[G:].sum() == 0
    assert torch.equal(padded.completion_ids[G:], ro.completion_ids[3 * G:].repeat(2, 1)[:, :padded.mask.shape[1]])


@pytest.mark.parametrize("vas", [False, True])
def test_a_run_counts_training_scoring_and_dropped_rollouts(cold_start, tmp_path, vas):
    flags = ["--init-from", cold_start, *FROM_COLD_START, "--num-rl", "6", "--num-test", "4", "--rl-steps", "3",
             "--prompts-per-step", "2", "--group-size", "4", "--filter-groups", "3", "--eval-every", "0",
             "--num-scoring", "3", "--refresh-every", "2"] + ["--vas"] * vas
    mmr1.main([*flags, "--out", str(tmp_path)])
    total = dropped = 0
    for r in rows(tmp_path, "rl"):
        scoring = 6 * 3 if "vas/refresh_s" in r else 0  # the pool x N, at steps 0 and 2
        assert ("vas/refresh_s" in r) == (vas and r["step"] in (0, 2))
        trained = r["rollouts/total"] - total - scoring  # generated for training this step
        new_dropped, kept = r["rollouts/dropped"] - dropped, trained - (r["rollouts/dropped"] - dropped)
        assert trained in (8, 16, 24) and kept % 4 == 0 and 0 <= kept <= 8  # whole batches drawn, whole groups
        assert kept == 8 or trained == 24  # refilled until full, or until the cap of 3 batches
        # every all-equal group is dropped, and so are the live ones of the last batch beyond B
        assert new_dropped / trained >= r["reward/zero_std_frac"] - 1e-9
        total, dropped = r["rollouts/total"], r["rollouts/dropped"]
