"""Peak memory of `mmr1.token_logprobs`, forward + backward, at Qwen's vocabulary, on the CPU.

The tiny model with its embedding (tied to the lm_head) grown to V rows, one toy prompt, G completions of
C random tokens. Memory is the growth of the resident set over the call, read every millisecond from
/proc/self/statm by a thread, after a warm-up call that allocates the gradients; it is reported also as a
multiple of one (N, C, V) float32 tensor, the logits of the whole micro-batch (N = G):
    python assets/bench_logprob_memory.py --vocab 151936 --group 8 --completion 256
Run it in a fresh process: the resident set of a process that did other work first says little.
"""
import argparse
import json
import os
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
import mmr1  # noqa: E402


def rss() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")  # bytes resident


def peak_growth(fn) -> tuple[int, float]:
    """Largest resident-set growth while fn() runs (bytes), sampled every millisecond; and fn's seconds."""
    base, peak, done = rss(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss() - base)
            time.sleep(0.001)
    thread = threading.Thread(target=watch)
    thread.start()
    t0 = time.time()
    fn()
    seconds = time.time() - t0
    done.set()
    thread.join()
    return peak[0], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=151936, help="V, rows of the lm_head (Qwen: 151,936)")
    parser.add_argument("--group", type=int, default=8, help="G, completions of the one prompt")
    parser.add_argument("--completion", type=int, default=256, help="C, tokens per completion")
    cli = parser.parse_args()
    torch.set_num_threads(1)
    args = mmr1.parse_args(["--image-size", "56", "--group-size", str(cli.group), "--device", "cpu"])
    example = data.make_geometry_dataset(1, seed=0, size=56)[0]
    mmr1.set_seed(0)
    policy = mmr1.load_policy(args, [example.question + " " + example.rationale])
    policy.model.resize_token_embeddings(cli.vocab, mean_resizing=False)  # extra rows: random, as the rest
    prompts = [policy.encode(example)]
    first = len(mmr1.CHAT_TOKENS) + 5  # past the special tokens: no end-of-turn, no vision token
    ids = torch.randint(first, cli.vocab, (cli.group, cli.completion),
                        generator=torch.Generator().manual_seed(0))  # (N, C)
    mask = torch.ones(ids.shape)  # (N, C)

    def forward_backward():
        mmr1.token_logprobs(policy.model, policy, prompts, ids, mask, args).sum().backward()
    forward_backward()  # warm-up: gradients allocated, kernels chosen
    growth, seconds = peak_growth(forward_backward)
    logits_bytes = cli.group * cli.completion * cli.vocab * 4  # one (N, C, V) float32 tensor
    print(json.dumps(dict(vocab=cli.vocab, group=cli.group, completion=cli.completion,
                          seconds=round(seconds, 2),
                          peak_growth_gb=round(growth / 1e9, 3), logits_gb=round(logits_bytes / 1e9, 3),
                          ratio=round(growth / logits_bytes, 2))))


if __name__ == "__main__":
    main()
