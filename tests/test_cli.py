"""End-to-end runs of the command line on a tiny configuration, checkpoints and errors."""
import json
import os
import subprocess
import sys

import pytest
import torch

import mmr1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A run small enough for seconds: 3 SFT steps, 2 RL steps with VAS and a refresh at each step.
TINY_RUN = ["--num-sft", "24", "--num-rl", "6", "--num-test", "6", "--image-size", "56", "--sft-steps", "3",
            "--sft-batch", "4", "--rl-steps", "2", "--prompts-per-step", "3", "--group-size", "2",
            "--num-scoring", "2", "--refresh-every", "1", "--eval-every", "1", "--max-new-tokens", "8"]


def run_cli(*flags, env=None):
    return subprocess.run([sys.executable, "mmr1.py", *flags], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    proc = run_cli(*TINY_RUN, "--vas", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_cli_writes_metrics_summary_and_checkpoints(tiny_run):
    out, proc = tiny_run
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    rl_rows = [r for r in rows if r["stage"] == "rl"]
    assert [r["step"] for r in rl_rows] == [0, 1]
    assert len([r for r in rows if r["stage"] == "sft"]) == 3
    for key in ["train/loss", "train/grad_norm", "train/clip_frac", "train/kl", "reward/mean", "reward/accuracy",
                "reward/format", "reward/zero_std_frac", "vas/vps_mean", "perf/step_s",
                "perf/rollout_tokens_per_s", "eval/accuracy"]:
        assert all(key in r for r in rl_rows), key
    assert all("vas/refresh_s" in r for r in rl_rows)  # --refresh-every 1: a VAS refresh at every step
    summary = json.load(open(out / "summary.json"))
    for key in ["eval/accuracy_after_sft", "eval/accuracy_after_rl", "eval/blind_baseline", "time/sft_s",
                "time/rl_s", "time/total_s", "memory/peak_rss_mb"]:
        assert key in summary, key
    for ckpt in ("sft", "final"):
        assert (out / ckpt / "config.json").exists() and (out / ckpt / "tokenizer.json").exists()
    assert "eval/accuracy_after_rl" in proc.stdout  # the final table


def test_saved_checkpoint_loads_through_the_hub_path(tiny_run, tmp_path):
    """--model DIR goes through from_pretrained, like a hub id; the loaded model computes the same."""
    out, _ = tiny_run
    args = mmr1.parse_args(["--model", str(out / "final"), "--image-size", "56"])
    policy = mmr1.load_policy(args, texts=[])
    assert policy.model.config.text_config.hidden_size == mmr1.TINY["hidden"]
    ex = mmr1.make_geometry_dataset(2, seed=5, size=56)
    prompts, ids = [policy.encode(e) for e in ex], torch.tensor([[policy.eos], [policy.eos]])
    again = mmr1.load_policy(args, texts=[])

    def logprobs(p):
        return mmr1.token_logprobs(p.model, p, prompts, ids, torch.ones(2, 1), args)
    with torch.no_grad():
        assert torch.equal(logprobs(policy), logprobs(again))


def test_rl_from_saved_sft_checkpoint(tiny_run, tmp_path):
    out, _ = tiny_run
    summary = mmr1.main([*TINY_RUN, "--init-from", str(out / "sft"), "--rl-steps", "1", "--out", str(tmp_path)])
    assert summary["time/sft_s"] < 1  # SFT skipped
    assert not (tmp_path / "sft").exists() and (tmp_path / "final").exists()


@pytest.mark.parametrize("flag,value", [("--mixture-ratio", "1.5"), ("--group-size", "1"), ("--rl-lr", "0"),
                                        ("--alpha", "-1"), ("--diversity", "bleu"), ("--sft-steps", "-1")])
def test_bad_flag_is_a_clear_argparse_error(flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        mmr1.parse_args([flag, value])
    assert e.value.code == 2
    assert flag in capsys.readouterr().err


def test_unreachable_model_says_how_to_get_it():
    args = mmr1.parse_args(["--model", "nobody/no-such-model"])
    os.environ["HF_HUB_OFFLINE"] = "1"  # no network here, nor in CI
    try:
        with pytest.raises(SystemExit) as e:
            mmr1.load_policy(args, texts=[])
    finally:
        del os.environ["HF_HUB_OFFLINE"]
    assert "nobody/no-such-model" in str(e.value) and "--model DIR" in str(e.value)


def test_presets_set_paper_values_and_flags_win():
    args = mmr1.parse_args(["--model", "Qwen2.5-VL-7B", "--rl-lr", "3e-6"])
    assert args.model == "Qwen/Qwen2.5-VL-7B-Instruct" and args.dtype == "bfloat16"
    assert (args.temperature, args.group_size, args.kl_coef, args.sft_lr) == (0.6, 8, 0.01, 1e-5)
    assert args.rl_lr == 3e-6  # an explicit flag beats the preset


def test_help_explains_every_flag():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for field in mmr1.dataclasses.fields(mmr1.Args):
        assert "--" + field.name.replace("_", "-") in proc.stdout
    assert "lambda" in proc.stdout and "T_update" in proc.stdout
