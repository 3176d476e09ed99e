"""The training pass as the presets run it, checked on the tiny model: --micro-batch counts sequences whatever G
is, a pass keeps one hidden state, pi_old comes from the training forward (the ratio is 1 exactly, bf16
too), filler rows weigh nothing under --seq-mean, a cut-off completion scores 0, and what must fail loudly
does (SFT rows without a rationale, a reference whose tensors do not match, shards left gathered)."""
import json
import os
import subprocess
import sys

import pytest
import torch

import data
import mmr1
from helpers import ROOT

SIZE, G = 56, 4


@pytest.fixture(scope="module")
def tiny():
    """The tiny model with weights spread wider than at initialisation (its tokens vary), and 3 prompts."""
    examples = data.make_geometry_dataset(3, seed=0, size=SIZE)
    args = mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6"])
    torch.manual_seed(0)
    policy = mmr1.load_policy(args, [e.question + " " + e.rationale for e in data.make_geometry_dataset(40, 0, SIZE)])
    with torch.no_grad():
        for w in policy.model.model.language_model.parameters():
            w.add_(torch.randn_like(w) * 0.05)
    return policy, examples


class Recorder:
    """An optimiser that keeps the (clipped) gradient step_optimiser hands it, and changes no weight."""
    def __init__(self, model):
        self.params = list(model.parameters())

    def step(self):
        self.grads = [p.grad.clone() for p in self.params if p.grad is not None]

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None


def rollouts(policy, examples, args):
    torch.manual_seed(1)
    ro = mmr1.rollout(policy, examples, args, G)
    ro.rewards = torch.tensor([0, 1, 2, 1, 1, 1, 0, 2, 2, 0, 0, 1.0])  # (B*G,) groups that differ
    return ro


def rows_per_forward(model):
    """Records the rows (the batch size) of every forward of `model`: sampling, prefill and training alike."""
    seen = []
    handle = model.register_forward_pre_hook(lambda m, a, kw: seen.append(len(kw["input_ids"])), with_kwargs=True)
    return seen, handle


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_micro_batches_split_groups_and_give_the_same_gradient(tiny, dtype):
    policy, examples = tiny
    args = mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6", "--group-size", str(G),
                            "--dtype", dtype])
    ro = rollouts(policy, examples, args)
    adv = mmr1.group_advantages(ro.rewards, G)
    grads, norms = {}, {}
    for size in (G // 2, G, 2 * G, 0):  # 2 G does not divide 3 groups: the last part holds half of one
        seen, handle = rows_per_forward(policy.model)
        opt = Recorder(policy.model)
        _, _, norms[size], _ = mmr1.grpo_update(policy, opt, ro, adv, None,
                                                mmr1.dataclasses.replace(args, micro_batch=size))
        handle.remove()
        assert max(seen) <= (size or len(ro.rewards)), (size, seen)  # no pass holds more rows than the flag
        grads[size] = opt.grads
    # Split in parts, the same sums are rounded in other places. Each of the ~2 x 3 x layers matmuls a row
    # passes through, forward and backward, can round apart: by 2^-8 in bf16 (its unit roundoff: 8 significant
    # bits), or by 2^-24 for each of the sqrt(4 * hidden) terms of a float32 dot product; independent roundings
    # add like a random walk, so the whole gradient may differ by sqrt(count) times that (bf16: 0.019, float32:
    # 8e-6; measured 0.0104 and 1.2e-6)
    roundings = 2 * 3 * mmr1.TINY["layers"]
    unit = 2 ** -24 * (4 * mmr1.TINY["hidden"]) ** 0.5 if dtype == "float32" else 2 ** -8
    tol = roundings ** 0.5 * unit
    flat = {size: torch.cat([g.flatten() for g in gs]) for size, gs in grads.items()}  # the whole gradient
    for size in (G // 2, G, 2 * G):
        assert norms[size] == pytest.approx(norms[0], rel=tol)
        assert (flat[size] - flat[0]).norm() <= tol * flat[0].norm()


def test_rollout_batch_counts_sequences_too(tiny):
    policy, examples = tiny
    args = mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6", "--rollout-batch", "3"])
    seen, handle = rows_per_forward(policy.model)
    ro = mmr1.rollout(policy, examples, args, G)
    handle.remove()
    assert len(ro.rewards) == 3 * G and max(seen) <= 3, seen


def test_every_pass_keeps_one_hidden_state(tiny):
    """output_hidden_states keeps every layer's output (5 tensors on the 4-layer model, 37 at 3B); the
    final norm's output alone is what the lm_head reads."""
    policy, examples = tiny
    args = mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6"])
    outputs = []
    handle = policy.model.register_forward_hook(lambda m, a, out: outputs.append(out))
    ro = mmr1.rollout(policy, examples, args, 2)
    mmr1.token_logprobs(policy.model, policy, ro.prompts, ro.completion_ids, ro.mask, args).sum().backward()
    handle.remove()
    policy.model.zero_grad(set_to_none=True)
    assert len(outputs) > 3 and all(out.hidden_states is None for out in outputs)


def test_pi_old_is_the_training_forward_so_the_first_ratio_is_one_in_bf16(tiny):
    policy, examples = tiny
    args = mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6", "--group-size", str(G),
                            "--dtype", "bfloat16"])
    ro = rollouts(policy, examples, args)
    _, stats, _, _ = mmr1.grpo_update(policy, Recorder(policy.model), ro, mmr1.group_advantages(ro.rewards, G),
                                      None, args)
    assert stats["ratio"] == 1.0 and stats["clip_frac"] == 0.0  # the sampler's log-probs gave neither
    assert stats.get("sampler_gap", 0) > 1e-4  # in bf16 the KV-cached decode and teacher forcing differ


def test_several_epochs_take_pi_old_from_a_pass_on_the_training_path(tiny, monkeypatch):
    policy, examples = tiny
    args = mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6", "--group-size", str(G),
                            "--update-epochs", "2", "--micro-batch", "6", "--kl-coef", "0"])
    ro = rollouts(policy, examples, args)
    calls, real = [], mmr1.grpo_loss
    monkeypatch.setattr(mmr1, "grpo_loss", lambda logp, old, *a, **k: calls.append((logp.detach(), old, a[2]))
                        or real(logp, old, *a, **k))
    opt = torch.optim.AdamW(policy.model.parameters(), lr=1e-3)
    state = {k: v.clone() for k, v in policy.model.state_dict().items()}
    mmr1.grpo_step(policy, opt, ro, None, args)
    policy.model.load_state_dict(state)
    first, second = calls[:2], calls[2:]  # two micro-batches an epoch
    for logp, old, mask in first:  # the first epoch is on-policy to the bit
        assert torch.equal(logp * mask, old * mask)
    assert any(not torch.equal(logp * mask, old * mask) for logp, old, mask in second)  # the policy moved


def test_seq_mean_gives_filler_rows_no_weight(tiny):
    """Dynamic sampling pads a rank that kept fewer groups with copies whose mask is 0 (mmr1.select)."""
    policy, examples = tiny
    args = mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6", "--group-size", str(G),
                            "--seq-mean"])
    ro = rollouts(policy, examples, args)
    padded = mmr1.select([(ro, [0, 1, 2])], G, 5, policy.pad)  # 3 groups + 2 filler groups
    norms, grads = [], []
    for batch in (ro, padded):
        opt = Recorder(policy.model)
        norms.append(mmr1.grpo_update(policy, opt, batch, mmr1.group_advantages(batch.rewards, G), None, args)[2])
        grads.append(torch.cat([g.flatten() for g in opt.grads]))
    assert norms[0] > 1e-3 and norms[1] == pytest.approx(norms[0], rel=1e-5)  # not shrunk by 3 / 5
    assert (grads[1] - grads[0]).norm() <= 1e-5 * grads[0].norm()


def test_masked_mean_per_sequence_skips_filler_rows_by_hand():
    values, mask = torch.tensor([[-1.0, -1.0], [3.0, 5.0], [7.0, 7.0]]), torch.tensor([[1, 1], [1, 0], [0, 0.0]])
    assert mmr1.masked_mean(values, mask, seq_mean=True).item() == pytest.approx((-1 + 3) / 2)  # not / 3


def test_a_completion_cut_off_before_its_end_of_turn_scores_zero(tiny, monkeypatch):
    policy, examples = tiny
    ex = examples[0]
    text = ids = policy.tokenizer(ex.rationale, add_special_tokens=False)["input_ids"]
    assert mmr1.reward(policy.tokenizer.decode(text, skip_special_tokens=True), ex.answer)[1] == 1.0
    # two rows of one group: the answer and its end of turn; the same answer cut off by the budget (a repeated
    # last token where the end of turn would be: the text still holds the right answer)
    fake = torch.tensor([ids + [policy.eos], ids + [ids[-1]]])
    monkeypatch.setattr(mmr1, "sample", lambda policy, batch, *a, **k: (fake, mmr1.completion_mask(
        fake, policy.eos), torch.zeros(fake.shape)))
    ro = mmr1.rollout(policy, [ex], mmr1.parse_args(["--image-size", str(SIZE)]), 2)
    assert ro.correct.tolist() == [1.0, 0.0] and ro.rewards.tolist() == [2.0, 0.0]


def test_sft_rows_without_a_rationale_stop_with_a_clear_error(tmp_path):
    splits = {k: data.make_geometry_dataset(4, seed=i, size=SIZE) for i, k in enumerate(("sft", "rl", "test"))}
    data.export_data(splits, str(tmp_path / "data"))
    path = tmp_path / "data" / "sft.jsonl"
    rows = [json.loads(line) for line in open(path)]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "rationale"}) + "\n" for r in rows))
    with pytest.raises(SystemExit, match="rationale"):
        mmr1.main(["--data", str(tmp_path / "data"), "--sft-steps", "1", "--rl-steps", "0", "--sft-batch", "2",
                   "--out", str(tmp_path / "run")])


def test_gathered_reshards_whatever_raises_inside():
    class Sharded(torch.nn.Module):  # FSDP2's two methods, recorded
        def __init__(self):
            super().__init__()
            self.calls = []

        def set_reshard_after_forward(self, value, recurse):
            self.calls.append(value)

        def reshard(self):
            self.calls.append("reshard")
    root = Sharded()
    root.block = Sharded()
    with pytest.raises(KeyboardInterrupt):
        with mmr1.gathered(root):
            raise KeyboardInterrupt  # Ctrl-C in the middle of sampling
    assert root.block.calls == [False, True, "reshard"] and root.calls == [False, False, "reshard"]


FROZEN_COPY = """
import os, sys, torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1])
import data, mmr1
dist.init_process_group("gloo")
args = mmr1.parse_args(["--image-size", "56", "--fsdp", "--device", "cpu"])
policy = mmr1.load_policy(args, [e.question + " " + e.rationale for e in data.make_geometry_dataset(8, 0, 56)])
mmr1.fsdp_shard(policy.model, args)
ref = mmr1.frozen_copy(policy.model, args)
theirs = dict(policy.model.named_parameters())
assert all(torch.equal(p.full_tensor(), theirs[n].full_tensor()) for n, p in ref.named_parameters())
policy.model.register_buffer("extra", torch.zeros(3))  # the policy now holds a tensor the reference lacks
try:
    mmr1.frozen_copy(policy.model, args)
    print("no error")
except RuntimeError as e:
    print("error:", e)
dist.destroy_process_group()
"""


def test_the_fsdp_reference_copies_by_name_and_fails_loudly_on_a_mismatch(tmp_path):
    script = tmp_path / "frozen_copy.py"
    script.write_text(FROZEN_COPY)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT="29613", WORLD_SIZE="1", RANK="0",
               LOCAL_RANK="0", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script), ROOT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "error:" in proc.stdout and "extra" in proc.stdout, proc.stdout
