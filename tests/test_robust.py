"""Never lose a run: Ctrl-C writes a checkpoint, --resume continues bit-exactly, a NaN step is skipped,
and bad input stops with one line that names what is wrong, before anything is written."""
import json
import os
import signal

import pytest
import torch

import mmr1

# 2 SFT steps, then 3 RL steps with VAS re-scoring the pool at steps 0 and 2
RUN = ["--num-sft", "16", "--num-rl", "4", "--num-test", "4", "--image-size", "56", "--sft-steps", "2",
       "--sft-batch", "4", "--rl-steps", "3", "--prompts-per-step", "2", "--group-size", "2", "--num-scoring", "2",
       "--refresh-every", "2", "--eval-every", "2", "--max-new-tokens", "6", "--vas"]


def metrics(out, stage=None):
    """metrics.jsonl without what depends on the clock."""
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    return [{k: v for k, v in r.items() if not k.startswith("perf/") and "refresh_s" not in k}
            for r in rows if stage in (None, r["stage"])]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    mmr1.main([*RUN, "--out", str(out)])
    return out


def test_ctrl_c_then_resume_equals_the_uninterrupted_run(straight_run, tmp_path, monkeypatch):
    out, real = str(tmp_path), mmr1.token_logprobs

    def ctrl_c_in_first_step(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C were pressed during SFT step 1
        return real(*args, **kwargs)
    monkeypatch.setattr(mmr1, "token_logprobs", ctrl_c_in_first_step)
    with pytest.raises(SystemExit) as stop:  # the step is finished, a checkpoint written, and the run exits
        mmr1.main([*RUN, "--out", out])
    monkeypatch.undo()
    assert stop.value.code == 130 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    state = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    assert (state["stage"], state["step"]) == ("sft", 1) and len(metrics(out)) == 1
    assert not os.path.exists(os.path.join(out, "checkpoint.tmp"))
    # resume without RL: SFT goes on from step 1; its last step writes a checkpoint, then sft/
    mmr1.main([*RUN, "--resume", out, "--rl-steps", "0"])
    assert torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)["step"] == 2
    # resume for 2 RL steps: they start from sft/ and the RNGs as SFT left them
    mmr1.main([*RUN, "--resume", out, "--rl-steps", "2"])
    state = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    assert (state["stage"], state["step"], len(state["rng"])) == ("rl", 2, 1)
    # resume to step 3: SFT is skipped, pi_ref comes from sft/, the sampler, optimiser and RNGs from the
    # checkpoint, and step 2 (a VAS refresh included) repeats the uninterrupted run to the last bit
    summary = mmr1.main([*RUN, "--resume", out])
    assert metrics(out) == metrics(straight_run)
    assert summary["eval/accuracy_after_rl"] == json.load(open(straight_run / "summary.json"))["eval/accuracy_after_rl"]


def test_a_nan_step_is_skipped_and_counted(tmp_path, monkeypatch):
    real = mmr1.grpo_loss
    monkeypatch.setattr(mmr1, "grpo_loss", lambda *a, **k: (real(*a, **k)[0] * float("nan"), real(*a, **k)[1]))
    mmr1.main([*RUN, "--sft-steps", "0", "--rl-steps", "1", "--no-vas", "--out", str(tmp_path)])
    monkeypatch.undo()  # the next step is a normal one
    mmr1.main([*RUN, "--sft-steps", "0", "--rl-steps", "2", "--no-vas", "--resume", str(tmp_path)])
    rows = metrics(tmp_path, "rl")
    assert [r["train/skipped_steps"] for r in rows] == [1, 1]
    assert all(r["train/loss"] == r["train/loss"] for r in rows[1:])  # finite again: training went on
    weights = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.isfinite(w).all() for w in weights.values())


# ---------------------------------------------------------------- bad input: one line, nothing written


def one_line_error(argv, *words):
    with pytest.raises(SystemExit) as e:
        mmr1.main(argv)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message
    return message


def test_out_dir_that_holds_a_run(straight_run):
    before = open(straight_run / "metrics.jsonl").read()
    one_line_error([*RUN, "--seed", "1", "--out", str(straight_run)], "different run", "--seed 0 there, 1 now")
    one_line_error([*RUN, "--out", str(straight_run)], "holds a run", "--resume")  # the same flags: still no
    assert open(straight_run / "metrics.jsonl").read() == before


def test_resume_with_other_flags(straight_run):
    before = open(straight_run / "metrics.jsonl").read()
    one_line_error([*RUN, "--group-size", "3", "--resume", str(straight_run)], "--group-size", "other flags")
    assert open(straight_run / "metrics.jsonl").read() == before


def test_resume_a_directory_without_a_run(tmp_path):
    one_line_error([*RUN, "--resume", str(tmp_path)], "args.json")
    assert os.listdir(tmp_path) == []


def test_data_dir_missing_or_unreadable(tmp_path):
    one_line_error(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")], "nowhere")
    splits = {name: mmr1.make_geometry_dataset(2, 0, 56, name) for name in ("sft", "rl", "test")}
    mmr1.export_data(splits, str(tmp_path))
    open(tmp_path / "rl.jsonl", "wb").write(b"\xff\xfe not text")
    one_line_error(["--data", str(tmp_path), "--out", str(tmp_path / "run")], "rl.jsonl", "UTF-8")
    open(tmp_path / "rl.jsonl", "w").write("")
    one_line_error(["--data", str(tmp_path), "--out", str(tmp_path / "run")], "rl.jsonl", "no rows")
    assert not (tmp_path / "run").exists()


def test_unreadable_image_names_file_and_line(tmp_path):
    splits = {name: mmr1.make_geometry_dataset(3, 0, 56, name) for name in ("sft", "rl", "test")}
    mmr1.export_data(splits, str(tmp_path))
    image = json.loads(open(tmp_path / "test.jsonl").read().splitlines()[1])["images"][0]
    open(tmp_path / image, "wb").write(b"not a png")  # the file is there, but no image
    one_line_error(["--data", str(tmp_path), "--out", str(tmp_path / "run")], "test.jsonl, line 2")
    assert not (tmp_path / "run").exists()


def test_unknown_model_suggests_the_presets(capsys):
    with pytest.raises(SystemExit):
        mmr1.parse_args(["--model", "Qwen2.5-VL-13B"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Qwen2.5-VL-13B" in err and "Qwen2.5-VL-3B" in err and "Qwen2.5-VL-7B" in err


def test_a_model_that_cannot_be_loaded_writes_nothing(tmp_path):
    one_line_error([*RUN, "--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "run")],
                   "no-such-model", "--model DIR")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag,value", [("--beta", "-0.1"), ("--mixture-ratio", "-0.1"), ("--group-size", "0"),
                                        ("--sft-lr", "0"), ("--rl-lr", "-1e-6"), ("--rl-steps", "-1"),
                                        ("--save-every", "-1"), ("--prompts-per-step", "0")])
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
        assert a.model == hub and a.dtype == "bfloat16" and a.grad_checkpointing and a.freeze_vision
        assert (a.rl_lr, a.sft_lr, a.temperature, a.group_size, a.kl_coef) == (1e-6, 1e-5, 0.6, 8, 0.01)
