"""Never lose a run: Ctrl-C writes a checkpoint, --resume continues bit-exactly, a NaN step is skipped,
and bad input stops with one line that names what is wrong, before anything is written."""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

import data
import mmr1
from helpers import (FROM_COLD_START, ROOT, assert_learning_signal, assert_same_state, assert_same_weights,
                     checkpoint, moved, rows, weights)


def send_signal_during(monkeypatch, signum: int, stage: str, step: int) -> None:
    """Send `signum` to this process from inside step `step` of `stage`, as a user or a scheduler would.
    RL: from the first reward computed in that step (its VAS scoring or rollouts), so mid-step. SFT computes no
    reward: as the step's metrics row is written, before its checkpoint. (The one place that knows the loops.)"""
    armed, real_log, real_reward = [], mmr1.log, mmr1.reward

    def send():
        # a handler must be there: without one, SIGINT would stop pytest itself and SIGTERM would kill it
        assert signal.getsignal(signum) not in (signal.SIG_DFL, signal.default_int_handler, OUR_HANDLER), \
            f"the run installed no handler for signal {signum}"
        os.kill(os.getpid(), signum)

    def log(metrics_file, row):
        real_log(metrics_file, row)
        if stage == "sft" and (row["stage"], row.get("step")) == ("sft", step):
            send()
        previous = ("sft_done", None) if step == 0 else ("rl", step - 1)
        if stage == "rl" and (row["stage"], row.get("step")) == previous:
            armed.append(True)  # the next reward is computed inside RL step `step`

    def reward(*args, **kwargs):
        if armed:
            armed.clear()
            send()
        return real_reward(*args, **kwargs)
    monkeypatch.setattr(mmr1, "log", log)
    monkeypatch.setattr(mmr1, "reward", reward)


def OUR_HANDLER(signum, frame):  # what SIGTERM does in these tests outside a run (instead of killing pytest)
    raise AssertionError(f"signal {signum} arrived outside a run")


@pytest.fixture(autouse=True)
def sigterm_does_not_kill_pytest(monkeypatch):
    previous = signal.signal(signal.SIGTERM, OUR_HANDLER)
    yield
    signal.signal(signal.SIGTERM, previous)


def run_flags(cold_start):
    """2 short SFT steps on top of the cold start (at a low lr, so it keeps the answer format), then 3 RL steps
    of 2 prompts x G = 4 with VAS re-scoring the pool at steps 0 and 2: SFT and RL in one run, RL with signal."""
    return ["--model", cold_start, *FROM_COLD_START, "--num-sft", "16", "--num-rl", "6", "--num-test", "4",
            "--sft-steps", "2", "--sft-batch", "4", "--sft-lr", "1e-4", "--rl-steps", "3", "--prompts-per-step", "2",
            "--group-size", "4", "--num-scoring", "3", "--refresh-every", "2", "--eval-every", "2", "--vas"]


def metrics(out, stage=None):
    """metrics.jsonl without what depends on the clock."""
    return [{k: v for k, v in r.items() if not k.startswith("perf/") and "refresh_s" not in k}
            for r in rows(out, stage)]


@pytest.fixture(scope="module")
def run(cold_start):
    return run_flags(cold_start)


@pytest.fixture(scope="module")
def straight_run(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    mmr1.main([*run, "--out", str(out)])
    return out


@pytest.fixture(scope="module")
def straight_sft(run, tmp_path_factory):
    """The same run with no RL: its checkpoint.pt is the one written at the end of SFT (scheduler included)."""
    out = tmp_path_factory.mktemp("straight_sft")
    mmr1.main([*run, "--rl-steps", "0", "--out", str(out)])
    return out


def assert_equals_straight(out, straight) -> None:
    """Metrics, final weights and the whole last checkpoint (weights, AdamW moments and steps, sampler, RNGs)."""
    assert metrics(out) == metrics(straight)
    assert_same_weights(weights(out / "final"), weights(straight / "final"))
    assert_same_state(checkpoint(out), checkpoint(straight))


def test_the_straight_run_learns(straight_run, cold_start):
    rl = assert_learning_signal(straight_run, straight_run / "sft")
    assert [r["step"] for r in rl] == [0, 1, 2] and ["vas/refresh_s" in r for r in rl] == [True, False, True]
    assert moved(weights(straight_run / "sft"), weights(cold_start)) > 0  # the 2 SFT steps moved it too


def test_ctrl_c_in_sft_then_resume_equals_the_uninterrupted_run(run, straight_run, straight_sft, tmp_path,
                                                                monkeypatch):
    out, before = tmp_path, signal.getsignal(signal.SIGINT)  # Python's, or SIG_IGN where pytest runs in the background
    send_signal_during(monkeypatch, signal.SIGINT, "sft", 0)  # Ctrl-C during SFT step 0
    with pytest.raises(SystemExit) as stop:  # the step is finished, a checkpoint written, and the run exits
        mmr1.main([*run, "--out", str(out)])
    monkeypatch.undo()
    assert stop.value.code == 130 and signal.getsignal(signal.SIGINT) is before  # what was there, given back
    assert (checkpoint(out)["stage"], checkpoint(out)["step"]) == ("sft", 1) and len(metrics(out)) == 1
    assert not os.path.exists(out / "checkpoint.tmp")
    # resume without RL: SFT goes on from step 1; its last step writes a checkpoint, then sft/. Both equal the
    # uninterrupted SFT's: weights, AdamW state, scheduler, data order and position, RNGs
    mmr1.main([*run, "--resume", str(out), "--rl-steps", "0"])
    assert_same_state(checkpoint(out), checkpoint(straight_sft))
    assert_same_weights(weights(out / "sft"), weights(straight_run / "sft"))
    # resume for 2 RL steps: they start from sft/ and the RNGs as SFT left them
    mmr1.main([*run, "--resume", str(out), "--rl-steps", "2"])
    state = checkpoint(out)
    assert (state["stage"], state["step"], len(state["rng"])) == ("rl", 2, 1)
    # extend the finished run to step 3: SFT is skipped, pi_ref comes from sft/, the sampler, optimiser and RNGs
    # from the checkpoint, and step 2 (a VAS refresh included) repeats the uninterrupted run to the last bit
    summary = mmr1.main([*run, "--resume", str(out)])
    assert_equals_straight(out, straight_run)
    assert summary["eval/accuracy_after_rl"] == json.load(open(straight_run / "summary.json"))["eval/accuracy_after_rl"]


def test_a_run_started_with_ctrl_c_ignored_still_stops_on_it_and_gives_the_ignore_back(run, tmp_path, monkeypatch):
    """nohup and job schedulers start a background run with SIGINT ignored: the run installs its own handler all
    the same (`kill -INT` stops it after the step, with a checkpoint), and leaves SIGINT ignored as it found it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        send_signal_during(monkeypatch, signal.SIGINT, "sft", 0)
        with pytest.raises(SystemExit) as stop:
            mmr1.main([*run, "--out", str(tmp_path)])
        monkeypatch.undo()
        assert stop.value.code == 130 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert (checkpoint(tmp_path)["stage"], checkpoint(tmp_path)["step"]) == ("sft", 1)
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_in_the_middle_of_rl_then_resume_equals_the_uninterrupted_run(run, straight_run, tmp_path,
                                                                               monkeypatch, signum):
    send_signal_during(monkeypatch, signum, "rl", 1)  # during RL step 1's rollouts
    with pytest.raises(SystemExit) as stop:
        mmr1.main([*run, "--out", str(tmp_path)])
    monkeypatch.undo()
    assert stop.value.code == 130 and signal.getsignal(signal.SIGTERM) is OUR_HANDLER  # handlers given back
    state = checkpoint(tmp_path)
    assert (state["stage"], state["step"]) == ("rl", 2)  # step 1 was finished, then the run stopped
    assert [r["step"] for r in rows(tmp_path, "rl")] == [0, 1] and not (tmp_path / "final").exists()
    mmr1.main([*run, "--resume", str(tmp_path)])
    assert_equals_straight(tmp_path, straight_run)


def test_a_signal_in_a_filtered_step_then_resume_equals_the_uninterrupted_run(run, tmp_path, monkeypatch):
    """--filter-groups draws a varying number of batches a step (refills from the sampler, more sampling noise):
    a resume must still continue on the very same draws."""
    filtered = [*run, "--filter-groups", "3", "--group-size", "2"]  # pairs agree more often than fours
    mmr1.main([*filtered, "--out", str(tmp_path / "straight")])
    assert max(r["rollouts/dropped"] for r in rows(tmp_path / "straight", "rl")) > 0  # something was dropped
    send_signal_during(monkeypatch, signal.SIGTERM, "rl", 1)
    with pytest.raises(SystemExit):
        mmr1.main([*filtered, "--out", str(tmp_path / "resumed")])
    monkeypatch.undo()
    mmr1.main([*filtered, "--resume", str(tmp_path / "resumed")])
    assert_equals_straight(tmp_path / "resumed", tmp_path / "straight")


def test_resumed_rl_updates_in_train_mode_with_checkpointing(run, straight_run, tmp_path, monkeypatch):
    """from_pretrained returns a model in eval mode, which would silently switch gradient checkpointing off:
    after --resume in the middle of RL, every update still runs in train mode with checkpointing on. And a
    resumed run that has nothing left to do still writes the after-RL accuracy into summary.json."""
    flags = [*run, "--grad-checkpointing", "--out", str(tmp_path)]
    send_signal_during(monkeypatch, signal.SIGINT, "rl", 1)
    with pytest.raises(SystemExit):
        mmr1.main(flags)
    monkeypatch.undo()
    subprocess.run([sys.executable, os.path.join(ROOT, "assets", "curves.py"), str(tmp_path)], check=True)
    assert (tmp_path / "curves.png").stat().st_size > 20_000  # an unfinished run's curves so far
    seen, real = [], mmr1.token_logprobs

    def record(net, *args, **kwargs):
        if torch.is_grad_enabled():  # an update, not sampling or the reference
            layers = net.model.language_model.layers
            seen.append(net.training and all(layer.gradient_checkpointing and layer.training for layer in layers))
        return real(net, *args, **kwargs)
    monkeypatch.setattr(mmr1, "token_logprobs", record)
    summary = mmr1.main([*flags, "--resume", str(tmp_path)])
    assert seen and all(seen)  # steps 2 (and its micro-batches), in train mode, checkpointing on
    again = mmr1.main([*flags, "--resume", str(tmp_path)])  # finished: nothing to do, the same summary
    assert "eval/accuracy_after_rl" in summary and again["eval/accuracy_after_rl"] == summary["eval/accuracy_after_rl"]


def test_resume_with_another_process_count_is_refused(run, straight_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(straight_run, out)
    state = checkpoint(out)
    state["rng"] = state["rng"] * 2  # as if 2 torchrun processes had written it
    torch.save(state, out / "checkpoint.pt")
    before = open(out / "metrics.jsonl").read()
    one_line_error([*run, "--resume", str(out)], "ran as 2 processes", "--nproc_per_node 2")
    assert open(out / "metrics.jsonl").read() == before


def rl_only(cold_start, steps):
    """RL from the cold start, no SFT: 2 prompts x G = 4 per step, no VAS."""
    return ["--init-from", cold_start, *FROM_COLD_START, "--num-rl", "6", "--num-test", "4", "--rl-steps", str(steps),
            "--prompts-per-step", "2", "--group-size", "4", "--eval-every", "0"]


def test_a_nan_step_is_skipped_and_counted(cold_start, tmp_path, monkeypatch):
    real = mmr1.grpo_loss
    monkeypatch.setattr(mmr1, "grpo_loss", lambda *a, **k: (real(*a, **k)[0] * float("nan"), real(*a, **k)[1]))
    mmr1.main([*rl_only(cold_start, 1), "--out", str(tmp_path)])
    monkeypatch.undo()
    start = weights(cold_start)
    assert_same_weights(checkpoint(tmp_path)["model"], start)  # the skipped step left the weights as they were
    mmr1.main([*rl_only(cold_start, 2), "--resume", str(tmp_path)])  # the next step is a normal one
    rl = rows(tmp_path, "rl")
    assert [r["train/skipped_steps"] for r in rl] == [1, 1]
    assert rl[1]["train/loss"] == rl[1]["train/loss"] and rl[1]["train/grad_norm"] > 1e-3  # finite: it learns again
    assert rl[1]["reward/zero_std_frac"] < 1 and moved(weights(tmp_path / "final"), start) > 1e-5


def test_a_non_finite_gradient_with_a_finite_loss_is_skipped(cold_start, tmp_path, monkeypatch):
    real_load = mmr1.load_policy

    def load_policy(*args, **kwargs):  # one weight's gradient turns infinite in backward, the loss stays finite
        policy = real_load(*args, **kwargs)
        policy.model.get_input_embeddings().weight.register_hook(lambda grad: torch.full_like(grad, float("inf")))
        return policy
    monkeypatch.setattr(mmr1, "load_policy", load_policy)
    mmr1.main([*rl_only(cold_start, 1), "--out", str(tmp_path)])
    monkeypatch.undo()
    (row,) = rows(tmp_path, "rl")
    assert row["train/skipped_steps"] == 1 and row["reward/zero_std_frac"] < 1  # there was a step to take
    assert row["train/loss"] == row["train/loss"] and abs(row["train/loss"]) < float("inf")
    assert not abs(row["train/grad_norm"]) < float("inf")
    assert_same_weights(weights(tmp_path / "final"), weights(cold_start))


# ---------------------------------------------------------------- bad input: one line, nothing written


def one_line_error(argv, *words):
    with pytest.raises(SystemExit) as e:
        mmr1.main(argv)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message
    return message


def test_out_dir_that_holds_a_run(run, straight_run):
    before = open(straight_run / "metrics.jsonl").read()
    one_line_error([*run, "--seed", "1", "--out", str(straight_run)], "different run", "--seed 0 there, 1 now")
    one_line_error([*run, "--out", str(straight_run)], "holds a run", "--resume")  # the same flags: still no
    assert open(straight_run / "metrics.jsonl").read() == before


def test_resume_with_other_flags(run, straight_run):
    before = open(straight_run / "metrics.jsonl").read()
    one_line_error([*run, "--group-size", "3", "--resume", str(straight_run)], "--group-size", "other flags")
    assert open(straight_run / "metrics.jsonl").read() == before


def test_a_run_made_before_a_flag_existed_resumes_at_its_default(run, straight_run, tmp_path):
    """args.json of an older mmr1.py lacks the flags added since: they count as their defaults, which do what the
    older code did, so its runs still resume; set to anything else, they are other flags."""
    shutil.copytree(straight_run, tmp_path / "old")
    saved = json.load(open(tmp_path / "old" / "args.json"))
    del saved["filter_groups"]  # as if --filter-groups had come after this run
    json.dump(saved, open(tmp_path / "old" / "args.json", "w"))
    assert mmr1.open_run_dir(mmr1.parse_args([*run, "--resume", str(tmp_path / "old")]))["stage"] == "rl"
    one_line_error([*run, "--filter-groups", "2", "--resume", str(tmp_path / "old")], "--filter-groups", "other flags")


def test_resume_a_directory_without_a_run(run, tmp_path):
    one_line_error([*run, "--resume", str(tmp_path)], "args.json")
    assert os.listdir(tmp_path) == []


def test_data_dir_missing_or_unreadable(tmp_path):
    one_line_error(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")], "nowhere")
    splits = {name: data.make_geometry_dataset(2, 0, 56, name) for name in ("sft", "rl", "test")}
    data.export_data(splits, str(tmp_path))
    open(tmp_path / "rl.jsonl", "wb").write(b"\xff\xfe not text")
    one_line_error(["--data", str(tmp_path), "--out", str(tmp_path / "run")], "rl.jsonl", "UTF-8")
    open(tmp_path / "rl.jsonl", "w").write("")
    one_line_error(["--data", str(tmp_path), "--out", str(tmp_path / "run")], "rl.jsonl", "no rows")
    assert not (tmp_path / "run").exists()


def test_unreadable_image_names_file_and_line(tmp_path):
    splits = {name: data.make_geometry_dataset(3, 0, 56, name) for name in ("sft", "rl", "test")}
    data.export_data(splits, str(tmp_path))
    image = json.loads(open(tmp_path / "test.jsonl").read().splitlines()[1])["images"][0]
    open(tmp_path / image, "wb").write(b"not a png")  # the file is there, but no image
    one_line_error(["--data", str(tmp_path), "--out", str(tmp_path / "run")], "test.jsonl, line 2")
    assert not (tmp_path / "run").exists()


def test_unknown_model_suggests_the_presets(capsys):
    with pytest.raises(SystemExit):
        mmr1.parse_args(["--model", "Qwen2.5-VL-13B"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Qwen2.5-VL-13B" in err and "Qwen2.5-VL-3B" in err and "Qwen2.5-VL-7B" in err


def test_a_model_that_cannot_be_loaded_writes_nothing(run, tmp_path):
    one_line_error([*run, "--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "run")],
                   "no-such-model", "--model DIR")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag,value", [("--beta", "-0.1"), ("--mixture-ratio", "-0.1"), ("--group-size", "0"),
                                        ("--sft-lr", "0"), ("--rl-lr", "-1e-6"), ("--rl-steps", "-1"),
                                        ("--save-every", "-1"), ("--prompts-per-step", "0"), ("--filter-groups", "-1"),
                                        ("--freeze-vision", "sft"), ("--dtype", "float16")])
def test_more_bad_flags(flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        mmr1.parse_args([flag, value])
    assert e.value.code == 2 and flag in capsys.readouterr().err


def test_torchrun_flags_are_checked(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        mmr1.parse_args(["--fsdp"])  # not under torchrun
    assert "torchrun" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(SystemExit):
        mmr1.parse_args(["--prompts-per-step", "16", "--sft-batch", "33"])
    assert "divisible" in capsys.readouterr().err


def test_presets_are_the_papers_large_model_settings():
    for name, hub in mmr1.PRESETS.items():
        a = mmr1.parse_args(["--model", name])
        assert a.model == hub and a.dtype == "bfloat16" and a.grad_checkpointing and a.freeze_vision == "all"
        assert (a.rl_lr, a.sft_lr, a.temperature, a.group_size, a.kl_coef) == (1e-6, 1e-5, 0.6, 8, 0.01)
