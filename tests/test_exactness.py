"""The code does what it says: pi_ref rounds like pi, metrics mean what the README says they mean, resume refuses
what it cannot continue exactly, the dead pools are dead by construction, the paper's VAS scores TDS over all N
rollouts, and no module imports one that imports it back. Each test failed on the code before these fixes."""
import ast
import io
import json
import os
import types

import pytest
import torch

import mmr1
import vas
from helpers import FROM_COLD_START, ROOT, checkpoint, fixed_rollout, rows
from test_training_path import G, SIZE, Recorder, rollouts as sampled, tiny  # noqa: F401 (tiny: a fixture)


@pytest.fixture(scope="module")
def batch(tiny):  # noqa: F811
    """The tiny model of tests/test_training_path.py with its 3 prompts' 12 rollouts, groups that differ."""
    policy, examples = tiny
    return policy, sampled(policy, examples, mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6"]))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_reference_rounds_like_the_policy(batch, dtype):
    """At RL step 0 pi_ref is pi: their log-probs agree to the bit and the KL is 0, in bf16 too (a bf16 copy of
    the weights rounded the norms and the residual stream otherwise: max |delta log p| 5.7e-3 in bf16)."""
    policy, rollouts = batch
    args = mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6", "--group-size", str(G),
                            "--dtype", dtype])
    ref = mmr1.frozen_copy(policy.model, args)
    ref_logp = mmr1.frozen_logprobs(ref, policy, rollouts, args)
    logp = mmr1.frozen_logprobs(policy.model, policy, rollouts, args)
    assert torch.equal(ref_logp * rollouts.mask, logp * rollouts.mask)
    _, stats, _, _ = mmr1.grpo_update(policy, Recorder(policy.model), rollouts,
                                      mmr1.group_advantages(rollouts.rewards, G), ref_logp, args)
    assert stats["kl"] == 0.0
    layer = ref.model.language_model.layers[0]  # and it is held in less memory: Linear weights in the compute dtype
    assert layer.mlp.down_proj.weight.dtype == getattr(torch, dtype)
    assert layer.input_layernorm.weight.dtype == ref.get_input_embeddings().weight.dtype == torch.float32


def test_seq_mean_stats_are_token_means_whatever_the_micro_batch(batch):
    """--seq-mean changes what the loss averages over, not the stats: train/kl is the mean over completion
    tokens at any --micro-batch (before: 0.280174 at 0 and 0.279095 at 1 on a review's batch)."""
    policy, rollouts = batch
    n, c = rollouts.mask.shape
    mask = rollouts.mask * (torch.arange(c) < 1 + torch.arange(n)[:, None] % c)  # rows of 1, 2, ... c tokens
    rollouts = mmr1.dataclasses.replace(rollouts, mask=mask)  # lengths that differ: token and sequence means too
    args = mmr1.parse_args(["--image-size", str(SIZE), "--max-new-tokens", "6", "--group-size", str(G),
                            "--seq-mean", "--kl-coef", "0.1"])
    torch.manual_seed(2)
    ref_logp = mmr1.frozen_logprobs(policy.model, policy, rollouts, args) + torch.randn(rollouts.mask.shape)
    adv = mmr1.group_advantages(rollouts.rewards, G)
    kl, loss = {}, {}
    for size in (0, 1, 5):
        loss[size], stats, _, _ = mmr1.grpo_update(policy, Recorder(policy.model), rollouts, adv, ref_logp,
                                                   mmr1.dataclasses.replace(args, micro_batch=size))
        kl[size] = stats["kl"]
    by_hand = (mmr1.kl_k3(mmr1.frozen_logprobs(policy.model, policy, rollouts, args), ref_logp) * rollouts.mask)
    assert kl[0] == pytest.approx(by_hand.sum().item() / rollouts.mask.sum().item(), rel=1e-5)
    for size in (1, 5):
        assert kl[size] == pytest.approx(kl[0], rel=1e-5) and loss[size] == pytest.approx(loss[0], rel=1e-5)


def test_a_step_of_dropped_groups_reports_the_rollouts_it_generated(monkeypatch):
    """--filter-groups: a step whose every group agreed trains on nothing, yet generated and timed 8 rollouts.
    Their completions (fixed_rollout: 1 + (k + i) % 3 tokens and the end of turn) are 2, 3 / 3, 4 / 4, 2 / 2, 3
    tokens for prompts 0-3: completion_len = 23 / 8 (before: 0.0, the kept groups' only)."""
    monkeypatch.setattr(mmr1, "rollout", fixed_rollout({k: [1, 1] for k in range(4)}, model=False))
    monkeypatch.setattr(mmr1, "evaluate", lambda *a, **k: {})
    args = mmr1.parse_args(["--group-size", "2", "--prompts-per-step", "2", "--filter-groups", "2", "--rl-steps", "1",
                            "--kl-coef", "0", "--freeze-vision", "none"])
    net = torch.nn.Module()  # a stand-in with a vision tower to freeze: nothing is trained in this step
    net.model = torch.nn.Module()
    net.model.visual = torch.nn.Linear(1, 1)
    policy = types.SimpleNamespace(model=net, eos=2, pad=0)
    metrics = io.StringIO()
    mmr1.rl(policy, [types.SimpleNamespace(id=str(k)) for k in range(4)], [], args, metrics)
    row = json.loads(metrics.getvalue())
    assert (row["rollouts/total"], row["rollouts/dropped"], row["reward/zero_std_frac"]) == (8, 8, 1.0)
    assert row["reward/completion_len"] == 23 / 8 and row["perf/rollout_tokens_per_s"] > 0
    assert "train/loss" not in row


def saved_run(tmp_path, flags: list[str]) -> str:
    """A run directory holding the args.json these flags write, as a started run leaves it."""
    json.dump(mmr1.dataclasses.asdict(mmr1.parse_args([*flags, "--out", str(tmp_path)])),
              open(tmp_path / "args.json", "w"))
    return str(tmp_path)


@pytest.mark.parametrize("flag", ["--micro-batch", "--rollout-batch"])
def test_resume_refuses_a_micro_batch_or_rollout_batch_that_would_change_the_numbers(tmp_path, flag):
    """Both change the numbers (the order of the sums; the sampling draws), so a resumed run with another value
    would not continue exactly: it is refused. How long it runs and how often it logs may change."""
    out = saved_run(tmp_path, ["--rl-steps", "4"])
    with pytest.raises(SystemExit, match=flag):
        mmr1.open_run_dir(mmr1.parse_args(["--resume", out, flag, "4"]))
    assert mmr1.open_run_dir(mmr1.parse_args(["--resume", out, "--rl-steps", "8", "--eval-every", "3"])) is None


def interrupt_after_rl_step(monkeypatch, step: int) -> None:
    """Ask the run to stop once RL step `step` is logged, as Ctrl-C would: it checkpoints and exits."""
    real_log = mmr1.log

    def log(metrics_file, row):
        real_log(metrics_file, row)
        if (row["stage"], row.get("step")) == ("rl", step):
            mmr1.STOP.append("test")
    monkeypatch.setattr(mmr1, "log", log)


def test_resume_refuses_to_end_where_the_weights_were_never_evaluated(cold_start, tmp_path, monkeypatch):
    """A run stopped after RL step 1 of 3, evaluated only at its end: resumed with --rl-steps 2 or a budget it has
    reached it would take no step, and summary.json would report an older evaluation than final/'s weights.
    Refused, naming both flags; resumed as it was, it goes on."""
    flags = ["--init-from", cold_start, *FROM_COLD_START, "--num-rl", "4", "--num-test", "4", "--rl-steps", "3",
             "--prompts-per-step", "2", "--group-size", "2", "--eval-every", "0", "--out", str(tmp_path)]
    interrupt_after_rl_step(monkeypatch, 1)
    with pytest.raises(SystemExit):
        mmr1.main(flags)
    monkeypatch.undo()
    state = checkpoint(tmp_path)
    assert (state["step"], state["rollouts"]) == (2, 8) and not [r for r in rows(tmp_path, "rl") if "eval/accuracy" in r]
    for lower in (["--rl-steps", "2"], ["--rollout-budget", "8"]):
        with pytest.raises(SystemExit, match="--rl-steps 2 or --rollout-budget 0|--rl-steps 3 or --rollout-budget 8"):
            mmr1.main([*flags, "--resume", str(tmp_path), *lower])
    summary = mmr1.main([*flags, "--resume", str(tmp_path)])
    assert [r["step"] for r in rows(tmp_path, "rl")] == [0, 1, 2] and "eval/accuracy" in rows(tmp_path, "rl")[-1]
    assert summary["eval/accuracy_after_rl"] == rows(tmp_path, "rl")[-1]["eval/accuracy"]


def test_never_solved_prompts_are_unanswerable_from_scratch(tmp_path):
    """The tiny model's vocabulary holds every question's words and the SFT targets', not the RL split's
    rationales: "octagon" (and its 8 corners), the dead pool's never-solved answer, is no word it can say, with or
    without --init-from (before: from scratch it was in the vocabulary)."""
    mmr1.main(["--dead-share", "0.9", "--num-sft", "8", "--num-rl", "10", "--num-test", "2", "--sft-steps", "0",
               "--rl-steps", "0", "--image-size", "28", "--out", str(tmp_path)])
    vocab = mmr1.load_policy(mmr1.parse_args(["--model", str(tmp_path / "final")]), texts=[]).tokenizer.get_vocab()
    assert "octagon" not in vocab and "8" not in vocab and "shape" in vocab


@pytest.mark.parametrize("online", [False, True])
def test_the_papers_vas_scores_tds_over_all_n_rollouts(monkeypatch, online):
    """N = 4 scoring rollouts at G = 2: the paper's VAS takes TDS over all four responses (its Diversity of the N
    rollouts); the posterior, over chunks of G, as it scores training groups. Responses a b / c d / a b / c d: each has
    its twin among all four (self-BLEU 1: TDS 0), while each chunk of two shares no word (TDS 1)."""
    responses = [[[1, 2], [3, 4], [1, 2], [3, 4]]]
    monkeypatch.setattr(mmr1, "rollout_all", lambda *a, **k: ([[1, 0, 1, 0]], None, responses))
    args = mmr1.parse_args(["--vas", "--num-scoring", "4", "--group-size", "2"] + ["--no-vas-online"] * (not online))
    sampler = vas.VarianceAwareSampler(1, 1, 1.0, decay=args.vas_decay if online else None)
    mmr1.score_pool(None, [None], sampler, args)
    assert sampler.tds[0] == pytest.approx((1 + 1 + 0.5 * 0.1) / (2 + 0.1) if online else 0.0)


def local_imports(path: str) -> set[str]:
    """The project's own modules that a file imports."""
    names = {os.path.splitext(f)[0] for f in os.listdir(ROOT) if f.endswith(".py")}
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found & names


def test_no_module_imports_one_that_imports_it_back():
    """data.py is the data alone, vas.py the sampler alone: mmr1.py imports them, never the other way."""
    graph = {f[:-3]: local_imports(os.path.join(ROOT, f)) - {f[:-3]} for f in os.listdir(ROOT) if f.endswith(".py")}
    assert graph["data"] == set() and graph["vas"] == set() and graph["mmr1"] == {"data", "vas"}
    for a, imported in graph.items():
        for b in imported:
            assert a not in graph.get(b, set()), f"{a} and {b} import each other"
