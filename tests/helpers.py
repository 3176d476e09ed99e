"""What the end-to-end tests share: the cold start's flags, reading a run's outputs, comparing states."""
import json
import os

import torch

import mmr1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("mmr1.py", "vas.py", "data.py")  # the code: the notebook's stamp and the cached cold start hash it

# A cold start that RL can learn from. A checkpoint that has learned nothing gives RL nothing to learn from:
# every completion scores 0, every group is all-equal (reward/zero_std_frac = 1), every advantage and
# gradient is 0, and a resume or torchrun comparison then compares zeros. 60 SFT steps of 16 examples at
# 56 px (15-30 s on one CPU thread; the loss falls from ~4.4 to ~0.3) learn the answer format (greedy format
# rate 1) but not yet the answers (held-out accuracy ~25%): sampled groups mix right, wrong and cut-off
# answers, and RL steps from it have gradients (measured: zero_std_frac 0-0.25, grad norm 0.5-2 at G = 4).
COLD_START = ["--image-size", "56", "--num-sft", "400", "--num-rl", "8", "--num-test", "24", "--sft-steps", "60",
              "--sft-batch", "16", "--rl-steps", "0", "--max-new-tokens", "30", "--seed", "0"]
# An RL run from it needs completions that fit: the longest rationale (five shapes counted) is 30 tokens with
# the end of turn
FROM_COLD_START = ["--image-size", "56", "--max-new-tokens", "30"]


def rows(out, stage=None) -> list[dict]:
    """metrics.jsonl of a run, optionally of one stage."""
    return [r for r in map(json.loads, open(os.path.join(out, "metrics.jsonl"))) if stage in (None, r["stage"])]


def weights(model_dir) -> dict[str, torch.Tensor]:
    """The weights of a save_pretrained directory (a run's sft/ or final/), loaded as --model DIR loads them."""
    return mmr1.load_policy(mmr1.parse_args(["--model", str(model_dir)]), texts=[]).model.state_dict()


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def moved(a: dict, b: dict) -> float:
    """The largest change of any weight between two state dicts."""
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def assert_learning_signal(out, start_dir) -> list[dict]:
    """The RL steps of the run in `out` had something to learn from: a group with unequal rewards, a non-zero
    gradient at every step, and final weights that differ from where RL started (`start_dir`)."""
    rl = rows(out, "rl")
    assert rl, "no RL step"
    assert min(r["reward/zero_std_frac"] for r in rl) < 1, [r["reward/zero_std_frac"] for r in rl]
    assert all(r["train/grad_norm"] > 1e-3 for r in rl), [r["train/grad_norm"] for r in rl]
    assert moved(weights(os.path.join(out, "final")), weights(start_dir)) > 1e-5
    return rl


CLOCK = ("refresh_s", "wall_s", "metrics_bytes")  # checkpoint entries that hold seconds, or the length of timed metrics


def assert_same_state(a, b, where="checkpoint") -> None:
    """Two checkpoints (or any nesting of dicts, lists, tensors and numbers) hold the same values exactly:
    weights, AdamW moments and step counts, scheduler, sampler, every RNG; only the clock may differ."""
    if isinstance(a, dict):
        keys = [k for k in a if k not in CLOCK]
        assert sorted(keys, key=str) == sorted((k for k in b if k not in CLOCK), key=str), where
        for k in keys:
            assert_same_state(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def checkpoint(out) -> dict:
    return torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)


def fixed_rollout(table: dict[int, list[float]], model: bool = True):
    """A stand-in for mmr1.rollout with hand-built outcomes: example k (its id is "k") gets rewards table[k]
    (one per rollout) and completions of 1..3 tokens plus the end of turn, the same in every process. With
    `model`, prompts are encoded and log pi_old is the policy's own (on-policy); without, no model is needed."""
    def rollout(policy, examples, args, group, greedy=False):
        ks = [int(e.id) for e in examples]
        completions = [[20 + (3 * k + j) % 30 for j in range(1 + (k + i) % 3)] + [policy.eos]
                       for k in ks for i in range(group)]
        ids = torch.tensor([c + [policy.pad] * (4 - len(c)) for c in completions])  # (N, 4)
        mask = mmr1.completion_mask(ids, policy.eos)
        prompts = [policy.encode(e) for e in examples] if model else list(examples)
        logp = torch.zeros(ids.shape)
        if model:
            with torch.no_grad():
                logp = mmr1.token_logprobs(policy.model, policy, prompts, ids, mask, args) * mask
        rewards = torch.tensor([float(table[k][i]) for k in ks for i in range(group)])
        return mmr1.Rollouts(prompts, ids, mask, completions, logp, [""] * len(ids), rewards, rewards.clamp(max=1),
                             torch.ones_like(rewards))
    return rollout


class InOrder:
    """A stand-in for the prompt sampler: batches of `batch` prompts in order, 0..batch-1, then the next ones."""
    def __init__(self, batch: int):
        self.batch, self.batches = batch, 0

    def next_batch(self) -> list[int]:
        self.batches += 1
        return list(range(self.batch * (self.batches - 1), self.batch * self.batches))
