"""RL on one rollout clock: --eval-rollouts and --rollout-budget count every rollout (training, VAS scoring,
dropped groups); posterior VAS (--vas --num-scoring 0) in a run, resumed, and under torchrun; and
the dynamic-sampling step that keeps no group. Run by torchrun, this file is the 2-process side of the last."""
import collections
import dataclasses
import gc
import inspect
import os
import signal
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import mmr1  # noqa: E402
import vas  # noqa: E402
from helpers import (FROM_COLD_START, assert_same_state, assert_same_weights, checkpoint,  # noqa: E402
                     fixed_rollout, rows, weights)

B, G = 2, 4  # a step trains on B * G = 8 rollouts; the pool holds 8 prompts


def rl_flags(cold_start, *more):
    return ["--init-from", cold_start, *FROM_COLD_START, "--num-rl", "8", "--num-test", "4",
            "--prompts-per-step", str(B), "--group-size", str(G), "--device", "cpu", *more]


def by_number(table):
    """helpers.fixed_rollout on the toy splits, whose ids are "rl-5", "test-2": example k gets table[k]."""
    inner = fixed_rollout(table)
    return lambda policy, examples, args, group, greedy=False: inner(
        policy, [dataclasses.replace(e, id=e.id.rsplit("-", 1)[1]) for e in examples], args, group, greedy)


def metrics(out, stage="rl"):
    """metrics.jsonl without what depends on the clock of the wall."""
    return [{k: v for k, v in r.items() if not k.startswith("perf/") and "refresh_s" not in k}
            for r in rows(out, stage)]


def evaluated(out):
    return [r["step"] for r in rows(out, "rl") if "eval/accuracy" in r]


# ---------------------------------------------------------------- the rollout clock

# uniform: 8 rollouts a step. Totals 8 16 24 32 40 48: 20 is passed at step 2 (24), 40 reached at step 4, and
# the budget of 44 at step 5, the last (48), which evaluates for being last (48 // 20 = 40 // 20)
# VAS, N = 2, refresh at steps 0 and 3: + 8 prompts x 2 = 16 there. Totals 24 32 40 64 72: 20 passed at step 0,
# 40 reached at 2, 60 passed at 3; the budget of 72 reached at step 4 exactly, the last (72 // 20 = 64 // 20)
CLOCKS = {"uniform": (["--rollout-budget", "44"], [8, 16, 24, 32, 40, 48], [2, 4, 5]),
          "vas": (["--vas", "--num-scoring", "2", "--refresh-every", "3", "--rollout-budget", "72"],
                  [24, 32, 40, 64, 72], [0, 2, 3, 4])}


@pytest.fixture(scope="module", params=list(CLOCKS))
def clock_run(request, cold_start, tmp_path_factory):
    """A run of CLOCKS' flags with every sampler.update call recorded: its name, out, the expected totals and
    eval steps, the calls as {argument: value}."""
    flags, totals, evals = CLOCKS[request.param]
    out, calls, real = tmp_path_factory.mktemp(request.param), [], vas.VarianceAwareSampler.update

    def update(self, *args, **kwargs):
        calls.append(dict(inspect.signature(real).bind(self, *args, **kwargs).arguments))
        return real(self, *args, **kwargs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vas.VarianceAwareSampler, "update", update)
        mmr1.main(rl_flags(cold_start, "--rl-steps", "100", "--eval-rollouts", "20", *flags, "--out", str(out)))
    return request.param, out, totals, evals, calls


def test_evaluations_and_the_budget_follow_every_rollout(clock_run):
    _, out, totals, evals, _ = clock_run
    assert [r["rollouts/total"] for r in rows(out, "rl")] == totals  # scoring counted, stopped at the budget
    assert evaluated(out) == evals
    assert checkpoint(out)["step"] == len(totals) and (out / "final").exists()  # a finished run


def test_resuming_a_run_that_spent_its_budget_takes_no_step(clock_run, cold_start):
    name, out, totals, evals, _ = clock_run
    flags = CLOCKS[name][0]
    mmr1.main(rl_flags(cold_start, "--rl-steps", "100", "--eval-rollouts", "20", *flags, "--out", str(out),
                       "--resume", str(out)))
    assert [r["rollouts/total"] for r in rows(out, "rl")] == totals and evaluated(out) == evals


def test_online_updates_measure_diversity_on_groups_of_g(clock_run):
    """TDS on chunks of G, as the refresh scores it, so that both are on one scale (self-BLEU against 3 others
    is not self-BLEU against 7)."""
    mode, _, totals, _, calls = clock_run
    if mode == "uniform":
        assert calls == []  # uniform: no VAS at all
        return
    online = [c for c in calls if not isinstance(c["prompt_ids"], range)]  # the refresh passes range(pool)
    assert len(online) == len(totals) and len(calls) == len(totals) + 2  # every step; refreshes at 0 and 3
    assert [c.get("group") for c in calls] == [G] * len(calls)


# ---------------------------------------------------------------- posterior VAS (no scoring rollouts)

FREE = ["--vas", "--num-scoring", "0", "--refresh-every", "1", "--vas-decay", "0.9", "--rl-steps", "3",
        "--eval-every", "0"]


@pytest.fixture(scope="module")
def free_run(cold_start, tmp_path_factory):
    out = tmp_path_factory.mktemp("free")
    mmr1.main(rl_flags(cold_start, *FREE, "--out", str(out)))
    return out


def test_vas_with_no_scoring_pays_only_for_training(free_run):
    rl = rows(free_run, "rl")
    assert [r["rollouts/total"] for r in rl] == [8, 16, 24] and not any("vas/refresh_s" in r for r in rl)
    # the prior Beta(0.1, 0.1) gives every prompt VPS 0.8 * 0.0417 + 0.2 * 0.5 = 0.133; the groups move it
    assert all(abs(r["vas/vps_mean"] - (0.8 * 0.01 / 0.24 + 0.1)) > 1e-4 for r in rl), [r["vas/vps_mean"] for r in rl]
    right, wrong, groups, _ = torch.tensor(list(checkpoint(free_run)["sampler"]["evidence"].values())).sum(1)
    # training outcomes only, forgotten by 0.9 a step: 8 x (0.9^2 + 0.9 + 1) = 21.68 in 2 x 2.71 = 5.42 groups
    assert float(right + wrong) == pytest.approx(21.68) and float(groups) == pytest.approx(5.42)


def send_sigint_in_rl_step(monkeypatch, step: int) -> None:
    """Ctrl-C from the first reward computed in RL step `step` (tests/test_robust.py does it for every stage)."""
    armed, real_log, real_reward = [], mmr1.log, mmr1.reward

    def log(metrics_file, row):
        real_log(metrics_file, row)
        if (row["stage"], row.get("step")) == (("sft_done", None) if step == 0 else ("rl", step - 1)):
            armed.append(True)

    def reward(*args, **kwargs):
        if armed:
            armed.clear()
            # without the run's handler, SIGINT would stop pytest itself
            assert signal.getsignal(signal.SIGINT) not in (signal.SIG_DFL, signal.default_int_handler)
            os.kill(os.getpid(), signal.SIGINT)
        return real_reward(*args, **kwargs)
    monkeypatch.setattr(mmr1, "log", log)
    monkeypatch.setattr(mmr1, "reward", reward)


def test_a_signal_then_resume_equals_the_uninterrupted_run(cold_start, free_run, tmp_path, monkeypatch):
    """The posterior (evidence decayed every step) and the sampler's RNG travel in the checkpoint."""
    send_sigint_in_rl_step(monkeypatch, 1)
    with pytest.raises(SystemExit) as stop:
        mmr1.main(rl_flags(cold_start, *FREE, "--out", str(tmp_path)))
    monkeypatch.undo()
    assert stop.value.code == 130 and checkpoint(tmp_path)["step"] == 2  # step 1 finished, then stopped
    mmr1.main(rl_flags(cold_start, *FREE, "--resume", str(tmp_path)))
    assert metrics(tmp_path) == metrics(free_run)
    assert_same_weights(weights(tmp_path / "final"), weights(free_run / "final"))
    assert_same_state(checkpoint(tmp_path), checkpoint(free_run))


# ---------------------------------------------------------------- a step where every group is dead

def test_a_step_that_keeps_no_group_counts_its_rollouts_and_updates_nothing(cold_start, tmp_path, monkeypatch):
    """Every group all-equal: --filter-groups 2 draws 2 batches, drops both, and takes no step (it crashed)."""
    monkeypatch.setattr(mmr1, "rollout", by_number(collections.defaultdict(lambda: [1.0] * G)))
    # 2 batches x 8 = 16 rollouts a step, all dropped: totals 16 32 48; 24 passed at step 1, 48 reached at 2,
    # the budget of 48 too. Were the dropped ones not on the clock, it would run all 4 steps and evaluate once
    mmr1.main(rl_flags(cold_start, "--filter-groups", "2", "--rl-steps", "4", "--eval-rollouts", "24",
                       "--rollout-budget", "48", "--out", str(tmp_path)))
    rl = rows(tmp_path, "rl")
    assert [(r["rollouts/total"], r["rollouts/dropped"]) for r in rl] == [(16, 16), (32, 32), (48, 48)]
    assert not any("train/loss" in r or "train/grad_norm" in r for r in rl)  # no update, no train/ numbers
    assert [r["reward/zero_std_frac"] for r in rl] == [1, 1, 1] and evaluated(tmp_path) == [1, 2]
    assert_same_weights(weights(tmp_path / "final"), weights(cold_start))  # not even AdamW's weight decay


# ---------------------------------------------------------------- 2 processes against 1

# Each rank samples with its own noise (torch seed + rank), so a sampled run under torchrun is another run than
# one process's. With rollouts that do not depend on the noise (helpers.fixed_rollout), everything must agree.
# prompt k: k % 3 == 0 all right (a dead group), else mixed; correct is reward clamped to 1
TABLE = {k: [[1, 1, 1, 1], [0, 1, 2, 1], [2, 0, 0, 1]][k % 3] for k in range(64)}
FOCUS = ["--vas-select", "--mixture-ratio", "1.0"]  # the fixed runs select (the focusing VAS), the sampled ones draw


@pytest.fixture(scope="module")
def two_processes(cold_start, tmp_path_factory):
    out = tmp_path_factory.mktemp("torchrun")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           os.path.abspath(__file__), str(out), *rl_flags(cold_start, *FREE)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def one_process_fixed(cold_start, tmp_path_factory):
    out = tmp_path_factory.mktemp("fixed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mmr1, "rollout", by_number(TABLE))
        mmr1.main(rl_flags(cold_start, *FREE, *FOCUS, "--out", str(out)))
    return out


def test_two_processes_give_one_process_metrics_and_sampler(two_processes, one_process_fixed):
    one, two = metrics(one_process_fixed), metrics(two_processes / "fixed")
    assert [r.keys() for r in one] == [r.keys() for r in two]
    for a, b in zip(one, two):  # rewards, rollouts, VPS, evaluation: exactly; the update to float rounding
        assert {k: v for k, v in a.items() if not k.startswith("train/")} == \
               {k: v for k, v in b.items() if not k.startswith("train/")}
        assert {k: v for k, v in b.items() if k.startswith("train/")} == \
               pytest.approx({k: v for k, v in a.items() if k.startswith("train/")}, rel=1e-4, abs=1e-6)
    assert min(r["train/grad_norm"] for r in one) > 1e-3  # there was something to learn
    state_one, state_two = checkpoint(one_process_fixed), checkpoint(two_processes / "fixed")
    assert state_one["sampler"] == state_two["sampler"]  # draws, posterior, scores: bit for bit
    assert (len(state_one["rng"]), len(state_two["rng"])) == (1, 2)
    a, b = weights(one_process_fixed / "final"), weights(two_processes / "fixed" / "final")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5


def test_two_processes_sample_apart_on_the_same_clock_and_draws(two_processes, free_run):
    """The command line's own sampling: each rank's noise differs, so rewards and VPS do; what does not
    depend on the outcomes is the same as in one process: the counts, the sampler's RNG and shuffle, the
    posterior's total evidence."""
    one, two = rows(free_run, "rl"), rows(two_processes / "sampled", "rl")
    for key in ("rollouts/total", "rollouts/dropped"):
        assert [r[key] for r in one] == [r[key] for r in two]
    assert not any("vas/refresh_s" in r for r in two)
    assert all(abs(8 * r["reward/accuracy"] - round(8 * r["reward/accuracy"])) < 1e-4 for r in two)  # 8 gathered
    s1, s2 = checkpoint(free_run)["sampler"], checkpoint(two_processes / "sampled")["sampler"]
    assert (s1["rng"], s1["order"], s1["cursor"], s1["epoch"]) == (s2["rng"], s2["order"], s2["cursor"], s2["epoch"])
    (r1, w1, g1, _), (r2, w2, g2, _) = (torch.tensor(list(s["evidence"].values())).sum(1) for s in (s1, s2))
    # outcomes (right + wrong) and groups, decayed: the same totals, however they split
    assert float(r1 + w1) == pytest.approx(float(r2 + w2)) and float(g1) == pytest.approx(float(g2))
    assert len(checkpoint(two_processes / "sampled")["rng"]) == 2


if __name__ == "__main__":  # the torchrun side: OUT_DIR FLAGS...; a sampled run, then one with TABLE's rollouts
    out, flags = sys.argv[1], sys.argv[2:]
    destroy = torch.distributed.destroy_process_group
    torch.distributed.destroy_process_group = lambda: None  # one process group for both runs: a second init hangs
    mmr1.main([*flags, "--out", os.path.join(out, "sampled")])
    mmr1.rollout = by_number(TABLE)
    mmr1.main([*flags, *FOCUS, "--out", os.path.join(out, "fixed")])
    gc.collect()
    torch.distributed.barrier()
    destroy()
