"""assets/trl_vas.py: VAS inside TRL's own GRPOTrainer, on real training steps (tiny Qwen2.5-VL, CPU).

One 16-step run on a 16-prompt `data.dead_pool` (12 dead, 4 live) with a reward known in advance: "colour"
always right, "octagon" never, "biggest" right on half the completions (the parity of their token ids), so
which prompts are dead is known without a trained model. Checked: TRL rolls out exactly the prompts the
sampler drew, in its groups; the dead prompts are drawn less than under TRL's default sampler; the
posterior holds exactly the rewards TRL computed; a fresh sampler fed them one generation late, as the
docstring says, draws what TRL rolled out. Then the README's example runs (one step, untrained model), its
numbers are those of assets/trl_vas.json, and that file's summary is its runs gathered."""
import argparse
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "assets"))
import data  # noqa: E402
import mmr1  # noqa: E402
import vas  # noqa: E402

G, PROMPTS, STEPS = 4, 4, 16  # group size, prompts a generation, optimiser steps (one generation each)
# VPS from OVS alone (alpha 1, beta 0; MMR1's released config is OVS only): an untrained model's completions
# are random tokens, as diverse for a dead prompt as for a live one, so TDS could not tell them apart here
OPTIONS = dict(alpha=1.0, beta=0.0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pytest.importorskip("trl")
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    import bench_rl  # Qwen2.5-VL's processor without torchvision, mmr1's prompt as TRL's chat template
    from trl_vas import VASGRPOTrainer

    pool = data.dead_pool(16, 0.75, seed=1, size=56)  # 0-5 "colour", 6-11 "octagon", 12-15 "biggest"
    dataset = Dataset.from_list([{"prompt": bench_rl.trl_prompt(e), "image": e.image, "answer": e.answer,
                                  "row": i} for i, e in enumerate(pool)])  # `row`: the test's own key
    record = []  # per generation: (row, correct, completion ids) of every rollout, as TRL rewarded them
    holder = {}

    def accuracy(completion_ids, row, **_):
        right = [1.0 if r < 6 else 0.0 if r < 12 else float(sum(c) % 2) for r, c in zip(row, completion_ids)]
        # how many generations the sampler had drawn when this one's rewards came in
        record.append(dict(rows=list(row), right=right, ids=[list(c) for c in completion_ids],
                           drawn=len(holder["trainer"].vas_sampler.drawn)))
        return right

    torch.manual_seed(0)
    tokenizer = mmr1.build_tokenizer([mmr1.SYSTEM_PROMPT] + [e.question for e in pool])
    tokenizer.padding_side = "left"  # TRL's prompts are left-padded: generation appends on the right
    processor = bench_rl.ImageOnlyProcessor(mmr1.build_image_processor(56), tokenizer, bench_rl.CHAT_TEMPLATE)
    config = GRPOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl")), max_steps=STEPS, seed=0, use_cpu=True, bf16=False,
        per_device_train_batch_size=PROMPTS * G, num_generations=G, max_completion_length=6,
        learning_rate=1e-4, activation_checkpointing=False, logging_steps=1, report_to="none",
        save_strategy="no", disable_tqdm=True,
        generation_kwargs={"suppress_tokens": tokenizer.convert_tokens_to_ids(bench_rl.VISION_TOKENS)})
    kwargs = dict(reward_funcs=accuracy, args=config, train_dataset=dataset, processing_class=processor)
    model = mmr1.build_tiny_model(tokenizer, 56)
    trainer = holder["trainer"] = VASGRPOTrainer(model=model, vas_options=OPTIONS, **kwargs)
    trainer.train()
    # TRL's default sampler for the same data and seed: draws depend on neither model nor rewards
    default = GRPOTrainer(model=mmr1.build_tiny_model(tokenizer, 56), **kwargs)._get_train_sampler()
    default_rows = [i for _ in range(STEPS * PROMPTS // len(pool)) for i in list(default)[::G]]
    return dict(trainer=trainer, record=record, default_rows=default_rows)


def test_trl_rolls_out_the_prompts_the_sampler_drew(run):
    drawn, record = run["trainer"].vas_sampler.drawn, run["record"]
    assert len(record) == STEPS
    rolled = [r["rows"][::G] for r in record]  # each group's prompt, by the dataset's own row column
    assert rolled == drawn[:STEPS]  # generation k rolls out draw k (drawn holds one more: fetched ahead)
    assert all(len(set(r["rows"][k:k + G])) == 1 for r in record for k in range(0, PROMPTS * G, G))


def test_dead_prompts_are_drawn_less_than_under_trls_default(run):
    dead = lambda rows: sum(r < 12 for r in rows)  # noqa: E731  (rows 0-11: colour and octagon)
    vas_rows = [i for r in run["record"] for i in r["rows"][::G]]
    assert len(vas_rows) == len(run["default_rows"]) == STEPS * PROMPTS  # the same rollouts
    assert dead(run["default_rows"]) == 48  # RepeatSampler: every prompt once an epoch, 12 of 16 dead
    # the first epoch (4 generations) is near uniform; then the weighted half goes mostly to the live: 34
    assert dead(vas_rows) < dead(run["default_rows"]), dead(vas_rows)


def test_the_posterior_holds_exactly_the_rewards_trl_computed(run):
    trainer, record = run["trainer"], run["record"]
    fresh = sampler()
    for r in record:  # one update per generation
        update(fresh, r)
    np.testing.assert_allclose(trainer.vas.pass_rate, fresh.pass_rate, rtol=1e-12)
    np.testing.assert_allclose(trainer.vas.scores, fresh.scores, rtol=1e-12)


def test_draws_replay_the_sampler_with_rewards_one_generation_late(run):
    """TRL's default, one generation an optimiser step (the docstring's case of a delay): the dataloader
    fetches one batch ahead, so generation k + 1 is drawn before generation k's rewards are in, except across
    an epoch's end (16 prompts / 4 = 4 generations), which it cannot fetch across. A fresh sampler fed the
    rewards TRL computed on that schedule draws exactly the prompts TRL rolled out."""
    record, epoch = run["record"], 16 // PROMPTS
    fresh, drawn = sampler(), []
    for k, r in enumerate(record):
        while len(drawn) < min(k + 2, (k // epoch + 1) * epoch):  # draws made before generation k's rewards
            drawn.append(fresh.next_batch())
        update(fresh, r)
    assert [r["drawn"] for r in record] == [min(k + 2, (k // epoch + 1) * epoch) for k in range(STEPS)]
    assert drawn[:STEPS] == [r["rows"][::G] for r in record]


def sampler() -> vas.VarianceAwareSampler:
    """A sampler as VASGRPOTrainer makes one: --vas's options (lambda 0.5, decay 0.98), the test's, seed 0."""
    import trl_vas
    return vas.VarianceAwareSampler(16, PROMPTS, **{"seed": 0, **trl_vas.DEFAULTS, **OPTIONS})


def update(sampler: vas.VarianceAwareSampler, r: dict) -> None:
    """One generation's rewards as TRL computed them, keyed by the test's own row column (not vas_index)."""
    k = range(0, PROMPTS * G, G)
    sampler.update([r["rows"][i] for i in k], [r["right"][i:i + G] for i in k],
                   [r["ids"][i:i + G] for i in k], group=G)


def readme_section() -> str:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return text.split("\n## VAS in your TRL run\n")[1].split("\n## ")[0]


def test_the_readmes_example_runs(tmp_path, monkeypatch):
    """The README's example as written, one step of 2 prompts, on an untrained tiny model saved where it
    expects the cold start: it imports, builds the data, the processor and the trainer, and trains."""
    trl = pytest.importorskip("trl")
    code = readme_section().split("```python\n")[1].split("```")[0]
    sft = tmp_path / "sft"
    tokenizer = mmr1.build_tokenizer([mmr1.SYSTEM_PROMPT] + [e.question for e in data.dead_pool(64, 0.9, 1)])
    for part in (mmr1.build_tiny_model(tokenizer, 112), tokenizer, mmr1.build_image_processor(112)):
        part.save_pretrained(sft)
    assert code.count('"runs/cold/sft"') == 2 and code.count("trl-vas") == 1
    real = trl.GRPOConfig
    monkeypatch.setattr(trl, "GRPOConfig", lambda _, **kw: real(  # its own settings, at test size
        str(tmp_path / "out"), **{**kw, "max_steps": 1, "per_device_train_batch_size": 16,
                                  "max_completion_length": 4, "report_to": "none", "save_strategy": "no"}))
    exec(code.replace('"runs/cold/sft"', repr(str(sft))), {})
    assert (tmp_path / "out").exists()


def signed(x: float) -> str:
    return f"{x:+.1f}".replace("-", "\u2212")  # the README's minus sign


def test_readmes_numbers_are_those_in_assets_trl_vas_json():
    res = json.load(open(os.path.join(ROOT, "assets", "trl_vas.json")))
    section = readme_section()
    pct = lambda s: f"{100 * s['mean']:.1f}% [{100 * s['low']:.1f}, {100 * s['high']:.1f}]"  # noqa: E731
    d = {k: 100 * v for k, v in res["difference"].items()}
    row = next(line for line in section.splitlines() if line.startswith("| groups whose rewards all agree"))
    f = res["frac_reward_zero_std"]
    assert row.split(" | ")[1:] == [pct(f["trl"]), pct(f["vas"]), f"{signed(d['mean'])} [{signed(d['low'])}, "
                                    f"{signed(d['high'])}] points |"], row
    dead = next(line for line in section.splitlines() if line.startswith("| dead prompts"))
    assert dead.split(" | ")[1:3] == [pct(res["dead_drawn"]["trl"]), pct(res["dead_drawn"]["vas"])], dead
    assert f"{res['steps']} steps of 16 prompts" in section and f"{len(res['seeds'])} seeds" in section
    assert "OMP_NUM_THREADS=1 " + res["command"] in section


def test_the_committed_summary_is_its_runs_gathered():
    """assets/trl_vas.json's means and intervals come from its own runs: 3 seeds or more, both arms, equal
    rollouts, and TRL's frac_reward_zero_std lower with the adapter over the seeds (the interval below 0)."""
    import trl_vas_measure
    res = json.load(open(os.path.join(ROOT, "assets", "trl_vas.json")))
    assert trl_vas_measure.gather(res["runs"], res["command"], argparse.Namespace(steps=res["steps"])) == res
    assert len(res["runs"]) == 2 * len(res["seeds"]) >= 6
    assert {r["rollouts"] for r in res["runs"]} == {res["steps"] * 16 * 8}
    assert res["difference"]["high"] < 0
