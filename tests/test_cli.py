"""End-to-end runs of the command line on a tiny configuration, checkpoints and errors."""
import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

import data
import mmr1
from helpers import FROM_COLD_START, assert_learning_signal, assert_same_weights, checkpoint, moved, rows, weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 2 RL steps of 3 prompts x G = 4 from the session's cold start, with VAS re-scoring the pool at every step
TINY_RL = [*FROM_COLD_START, "--num-rl", "6", "--num-test", "6", "--rl-steps", "2", "--prompts-per-step", "3",
           "--group-size", "4", "--num-scoring", "2", "--refresh-every", "1", "--eval-every", "1"]


def run_cli(*flags, env=None):
    return subprocess.run([sys.executable, "mmr1.py", *flags], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def on_grid(x: float, n: int) -> bool:
    """x is k / n for a whole k: a share of n things (float32 rounding allowed)."""
    return abs(x * n - round(x * n)) < 1e-4


def test_cold_start_sft_learns_the_format(cold_start_run):
    """The session's cold start (conftest.py): the SFT loss falls, and greedy answers are well-formed."""
    sft = rows(cold_start_run, "sft")
    assert [r["step"] for r in sft] == list(range(60))
    losses = [r["sft/loss"] for r in sft]
    assert losses[0] > 3 and max(losses[-5:]) < 0.6, losses  # from ~ln(vocab) to a fraction of a nat
    assert max(r["sft/lr"] for r in sft) == pytest.approx(1e-3) and sft[-1]["sft/lr"] < 1e-5  # warm-up, cosine to 0
    (done,) = rows(cold_start_run, "sft_done")
    assert done["eval/format"] == 1 and 0 < done["eval/accuracy"] < 1  # the format learned, the answers not yet
    assert_same_weights(weights(cold_start_run / "sft"), weights(cold_start_run / "final"))  # no RL: the same


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cold_start):
    out = tmp_path_factory.mktemp("run")
    proc = run_cli(*TINY_RL, "--init-from", cold_start, "--vas", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_cli_run_learns_and_writes_metrics_summary_and_checkpoints(tiny_run, cold_start):
    out, proc = tiny_run
    rl = assert_learning_signal(out, cold_start)
    assert [r["step"] for r in rl] == [0, 1] and not rows(out, "sft")  # --init-from: no SFT
    for r in rl:
        assert r["train/clip_frac"] == 0 and r["train/ratio"] == pytest.approx(1, abs=1e-6)  # one epoch: on-policy
        assert r["reward/mean"] == pytest.approx(r["reward/accuracy"] + r["reward/format"])
        assert on_grid(r["reward/accuracy"], 12) and on_grid(r["reward/zero_std_frac"], 3)  # of 12 rollouts, 3 groups
        assert 0 < r["reward/completion_len"] <= 30 and r["train/skipped_steps"] == 0
        assert r["vas/refresh_s"] > 0 and r["vas/vps_mean"] > 0  # --refresh-every 1: a VAS refresh every step
        assert r["perf/step_s"] > 0 and r["perf/rollout_tokens_per_s"] > 0
        assert on_grid(r["eval/accuracy"], 6) and r["eval/format"] > 0  # --eval-every 1, 6 test items
    assert rl[0]["train/kl"] == 0 and rl[1]["train/kl"] > 0  # pi = pi_ref until the first update
    assert rl[1]["vas/refresh_s_total"] == pytest.approx(rl[0]["vas/refresh_s"] + rl[1]["vas/refresh_s"])
    summary = json.load(open(out / "summary.json"))
    (done,) = rows(out, "sft_done")
    assert summary["eval/accuracy_after_sft"] == done["eval/accuracy"]
    assert summary["eval/accuracy_after_rl"] == rl[-1]["eval/accuracy"]
    assert summary["eval/accuracy_after_rl_colour"] == rl[-1]["eval/accuracy_colour"]
    splits = data.toy_splits(mmr1.parse_args(TINY_RL))
    assert summary["eval/blind_baseline"] == data.blind_baseline(splits["sft"], splits["test"])
    assert summary["model/parameters"] == sum(w.numel() for k, w in weights(cold_start).items()
                                              if k != "lm_head.weight")  # tied to the embedding
    assert summary["time/total_s"] >= summary["time/rl_s"] > 0 and summary["memory/peak_rss_mb"] > 100
    assert not (out / "sft").exists() and (out / "final" / "config.json").exists()
    assert (out / "final" / "tokenizer.json").exists() and f"assets/curves.py {out}" in proc.stdout
    table = proc.stdout.split("\nmetric ")[-1]  # the table printed at the end
    assert f"eval/accuracy_after_rl                   {summary['eval/accuracy_after_rl']:.3f}" in table


def test_saved_checkpoint_loads_through_the_hub_path(tiny_run):
    """--model DIR goes through from_pretrained, like a hub id: the weights are those the run ended with."""
    out, _ = tiny_run
    args = mmr1.parse_args(["--model", str(out / "final"), "--image-size", "56"])
    policy = mmr1.load_policy(args, texts=[])
    assert policy.model.config.text_config.hidden_size == mmr1.TINY["hidden"]
    assert_same_weights(policy.model.state_dict(), checkpoint(out)["model"])
    assert policy.tokenizer.convert_tokens_to_ids("<|im_end|>") == policy.eos
    assert policy.model.generation_config.eos_token_id == policy.eos


def test_init_from_starts_rl_from_the_checkpoints_weights(cold_start, tmp_path, monkeypatch):
    loaded, real = [], mmr1.load_policy

    def load_policy(*args, **kwargs):  # what RL starts from: the weights of the policy main() loads
        policy = real(*args, **kwargs)
        loaded.append({k: v.clone() for k, v in policy.model.state_dict().items()})
        return policy
    monkeypatch.setattr(mmr1, "load_policy", load_policy)
    mmr1.main([*TINY_RL, "--init-from", cold_start, "--rl-steps", "1", "--out", str(tmp_path)])
    monkeypatch.undo()
    assert len(loaded) == 1
    assert_same_weights(loaded[0], weights(cold_start))
    assert moved(weights(tmp_path / "final"), loaded[0]) > 1e-5  # and the RL step moved them
    assert not rows(tmp_path, "sft") and not (tmp_path / "sft").exists()


@pytest.mark.parametrize("freeze", ["rl", "none"])
def test_rl_leaves_the_vision_tower_as_sft_taught_it(cold_start, tmp_path, freeze):
    """--freeze-vision rl (the default): RL moves the language model only; none: the vision tower too."""
    mmr1.main([*TINY_RL, "--init-from", cold_start, "--rl-steps", "1", "--eval-every", "0", "--rl-lr", "1e-3",
               "--freeze-vision", freeze, "--out", str(tmp_path)])
    start, end = weights(cold_start), weights(tmp_path / "final")
    vision = [k for k in start if ".visual." in k]
    assert vision and moved({k: end[k] for k in start if k not in vision}, start) > 1e-5
    assert (moved({k: end[k] for k in vision}, {k: start[k] for k in vision}) > 1e-5) == (freeze == "none")


def test_two_update_epochs_clip(cold_start, tmp_path):
    """--update-epochs 2: the second pass is off-policy, its ratios leave [1 - eps, 1 + eps] and the clip acts."""
    mmr1.main([*TINY_RL, "--init-from", cold_start, "--rl-steps", "1", "--update-epochs", "2", "--rl-lr", "1e-3",
               "--eval-every", "0", "--out", str(tmp_path)])
    (row,) = rows(tmp_path, "rl")
    assert row["train/clip_frac"] > 0.01 and row["train/ratio"] != pytest.approx(1, abs=1e-3)
    assert row["train/kl"] > 0  # the second pass is after an update


def test_diversity_is_measured_without_end_of_turn_or_padding():
    """The trainer's responses for TDS: eos and pad dropped, grouped per prompt (two prompts x G = 2)."""
    policy = SimpleNamespace(eos=2, pad=0)
    completions = [[5, 6, 2], [5, 6, 2, 0, 0], [7, 2], [8, 9]]
    assert mmr1._responses(completions, policy, 2) == [[[5, 6], [5, 6]], [[7], [8, 9]]]


@pytest.mark.parametrize("flag,value", [("--mixture-ratio", "1.5"), ("--group-size", "1"), ("--rl-lr", "0"),
                                        ("--alpha", "-1"), ("--diversity", "bleu"), ("--sft-steps", "-1"),
                                        ("--num-scoring", "1")])
def test_bad_flag_is_a_clear_argparse_error(flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        mmr1.parse_args([flag, value])
    assert e.value.code == 2
    assert flag in capsys.readouterr().err


def test_paper_vas_needs_scoring_rollouts(capsys):
    """--no-vas-online is the paper's VAS, which scores the pool: with --num-scoring 0 (the default) it has no VPS."""
    with pytest.raises(SystemExit):
        mmr1.parse_args(["--vas", "--no-vas-online"])
    assert "--no-vas-online (the paper's VAS) needs 2+" in capsys.readouterr().err
    assert mmr1.parse_args(["--vas", "--no-vas-online", "--num-scoring", "8"]).num_scoring == 8


def test_unreachable_model_says_how_to_get_it():
    import huggingface_hub.constants
    assert huggingface_hub.constants.HF_HUB_OFFLINE  # set by ./conftest.py before the import: no network wait
    args = mmr1.parse_args(["--model", "nobody/no-such-model"])
    with pytest.raises(SystemExit) as e:
        mmr1.load_policy(args, texts=[])
    assert "nobody/no-such-model" in str(e.value) and "--model DIR" in str(e.value)
    command = str(e.value).split("`")[1].split()  # the download advice is a command the pinned packages install
    assert command[:2] == ["hf", "download"]
    # the `hf` of this Python's environment, activated or not (bin/ beside the interpreter), else the one on PATH
    beside = os.path.join(os.path.dirname(sys.executable), command[0])
    hf = beside if os.path.exists(beside) else shutil.which(command[0])
    assert hf and subprocess.run([hf, command[1], "--help"], capture_output=True).returncode == 0


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
