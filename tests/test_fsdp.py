"""FSDP2 on 2 CPU processes (gloo): a sampling call all-gathers each module's parameters once, however many
tokens it decodes; the frozen reference is built from the policy's shards without gathering them; all
processes write to the run directory rank 0 named.

Run as a script by torchrun, this file is the 2-process side, writing what it counted to OUT_DIR/counts.json:
    python -m torch.distributed.run --nproc_per_node 2 tests/test_fsdp.py OUT_DIR
"""
import gc
import json
import os
import subprocess
import sys

import torch
import torch.distributed as dist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import data  # noqa: E402
import mmr1  # noqa: E402

CALLS = []  # one entry per all-gather


def counting(module, name: str) -> None:
    """Count the calls of module.name: FSDP2 all-gathers shards with dist.all_gather_single, a DTensor's
    full_tensor() (what gathering a state dict does) with the functional all_gather_single."""
    all_gather = getattr(module, name)

    def wrapped(*args, **kwargs):
        CALLS.append(name)
        return all_gather(*args, **kwargs)
    setattr(module, name, wrapped)


def count(fn) -> tuple[int, object]:
    CALLS.clear()
    result = fn()
    return len(CALLS), result


def main(out: str) -> None:
    args = mmr1.parse_args(["--image-size", "56", "--fsdp", "--device", "cpu", "--kl-coef", "0.1"])
    examples = data.make_geometry_dataset(4, seed=1, size=56)
    mmr1.set_seed(0)
    policy = mmr1.load_policy(args, [e.question + " " + e.rationale for e in examples])
    policy.suppress = policy.suppress + [policy.eos]  # no row ends early: every call decodes its whole budget
    mmr1.setup_device(args)
    mmr1.prepare(policy, args, "cpu", examples[0])
    from torch.distributed import _functional_collectives as funcol
    for module, name in ((dist, "all_gather_single"), (dist, "all_gather_into_tensor"),
                         (funcol, "all_gather_single")):
        counting(module, name)
    counts = {}
    for tokens in (2, 12):
        n, ro = count(lambda: mmr1.rollout(policy, mmr1.shard(examples), mmr1.dataclasses.replace(
            args, max_new_tokens=tokens), group=2))
        counts[f"sample_{tokens}_tokens"] = n
        assert ro.completion_ids.shape[1] == tokens
    counts["params_are_shards"] = all(hasattr(p, "to_local") for p in policy.model.parameters())  # resharded
    counts["reference"], ref = count(lambda: mmr1.frozen_copy(policy.model, args))
    full, ref_full = mmr1.full_state(policy.model, False), mmr1.full_state(ref, False)
    counts["reference_equal"] = full.keys() == ref_full.keys() and all(torch.equal(full[k], ref_full[k])
                                                                        for k in full)
    eos, prompt = torch.tensor([[policy.eos]]), policy.encode(examples[0])
    with torch.no_grad():  # the buffers too (the rotary frequencies are in no state dict)
        logps = [mmr1.token_logprobs(net, policy, [prompt], eos, torch.ones_like(eos), args)
                 for net in (policy.model, ref)]
    counts["reference_equal"] &= bool(torch.equal(*logps))
    mmr1.time.strftime = lambda fmt: f"clock-of-rank-{mmr1.rank()}"  # as if the clocks disagreed
    counts["run_dirs"] = mmr1.gather(mmr1.run_dir(args))  # no --out: one name for all, rank 0's
    if mmr1.rank() == 0:
        json.dump(counts, open(os.path.join(out, "counts.json"), "w"))
    dist.barrier()  # no rank tears down the group while another still uses it
    dist.destroy_process_group()


def test_sampling_gathers_once_per_call_the_reference_needs_no_gather_one_run_dir(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           os.path.abspath(__file__), str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    counts = json.load(open(tmp_path / "counts.json"))
    # one all-gather per FSDP module (4 decoder layers, 2 vision blocks, the vision tower, the root): 8
    # (resharding after every forward: 18 and 68, 5 more per token)
    assert counts["sample_2_tokens"] == counts["sample_12_tokens"] == 8, counts
    assert counts["params_are_shards"] and counts["reference_equal"], counts
    assert counts["run_dirs"] == [os.path.join("runs", "clock-of-rank-0")] * 2, counts
    assert counts["reference"] == 0, counts  # built from each rank's own shards (gathering them: 81)


if __name__ == "__main__":
    main(sys.argv[1])
    gc.collect()  # the FSDP modules (reference cycles) die now: left to interpreter exit, gloo may abort
