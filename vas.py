"""Variance-Aware Sampling (VAS) of MMR1 (Leng et al. 2025, arXiv 2509.21268), on its own.

GRPO learns nothing from a prompt whose G rollouts all get the same reward (every advantage is 0),
so VAS draws prompts in proportion to a Variance Promotion Score that predicts reward variance:
    OVS(x) = P(x) (1 - P(x))               Outcome Variance Score; P = pass rate of N rollouts
    TDS(x) = diversity of the N responses  Trajectory Diversity Score in [0, 1]; 1 - self-BLEU
    VPS(x) = alpha OVS(x) + beta TDS(x)    Variance Promotion Score; alpha = 0.8, beta = 0.2
    batch  = floor(lambda B) prompts drawn with replacement in proportion to VPS, the rest
             uniformly from an epoch-long shuffle                    (Algorithm 1; lambda = 0.5)
Lines that implement these carry a `# VAS:` marker. Numpy only; CPU or GPU makes no difference:
    python -c "import vas; print(vas.outcome_variance_score([1, 1, 0, 0]))"    # 0.25
    python -m pytest tests/test_vas.py -q
Where the official MMR1 code differs we follow the paper, and say so at the line:
1. TDS is 1 - self-BLEU, a diversity; the official code adds raw self-BLEU, a similarity.
2. Diversity is measured on each response's own tokens, never on padding.
3. VPS is used as is, not min-max normalised (that starves the lowest prompt, crashes on ties).
4. Edit distance is normalised by the longer length, so it stays in [0, 1] like the rest.
Beyond the paper, since it names the cost of re-scoring (N rollouts of every prompt every T_update
steps) as VAS's main limitation: with `decay` set, each prompt's pass rate is a Beta posterior fed by
every group it gets, in training for free (and in scoring, if any): VAS then needs no scoring rollouts
at all (MoPPS, arXiv 2507.04632, and VADE, 2511.18902, do the same; GRESO, 2506.02177, skips prompts
whose recent groups agreed):
      prior      Beta(a0, b0), a0 = b0 = 0.1, weak beside a group's G = 8 outcomes: a prompt never
                 drawn has OVS 0.042, above any prompt that has shown it is dead (one group all right
                 or all wrong: 0.011, and less as groups come), below a live one (4 of 8: 0.22)
      update     a += right answers, b += wrong ones, for each group of G training rollouts
      forgetting every step, every prompt's evidence (right, wrong, TDS) is multiplied by `decay`
                 (0.98: a group weighs half after 34 steps), so the posterior follows a policy that
                 moves, and a prompt left alone drifts back to the prior and is drawn again
      OVS        the posterior's expected P (1 - P)
      TDS        the mean TDS of its recent groups, with a0 pseudo-groups at 0.5
  A scoring refresh (`score_pool`, with N > 0) is one more update: on its steps the evidence decays twice.
  a0 and the decay were chosen by a simulation of the toy pools (`python assets/sim_posterior.py`).
Focusing (`select=True`, `--vas-select`, beyond the paper): drawing in proportion to VPS cannot focus a
mostly dead pool: at dead share 0.9, 230 prompts that each score a little outweigh 26 live ones (`--vas`
drew 0.80 dead prompts after step 10 in the runs of docs/protocol.md). So the weighted part is selected
instead: the floor(lambda B) prompts of highest posterior VPS, none twice (GRESO, arXiv 2506.02177, skips
prompts its history predicts dead; MoPPS, 2507.04632, takes those whose posterior draw is nearest a target).
The prior explores: a prompt never drawn has TDS 0.5 by it (VPS 0.133 at prior 0.1), above every prompt
shown dead and below a live one, so each prompt is tried early, then left while it looks dead, until
forgetting brings it back. With prior 0.02 and decay 0.99 (one group marks a prompt dead, for longer) one
of those runs drew 0.14 dead prompts after step 10 (0.30 with P first drawn from each posterior, Thompson
sampling: 230 dead posteriors' tails keep a few of them on top); the reporting runs, at the tuned learning
rate, 0.23 from one cold start (0.45 in steps 10 to 29, 0.14 after) and 0.12 from another. Where most
prompts are live it loses: it gives half its groups to "shape" prompts, live but not learnt under any arm
(held-out "shape" 54% after SFT, 39 to 42% after RL), and spreads them like 65 prompts of 256
(docs/when-vas-pays.md).
"""
import math
from collections import Counter

import numpy as np

DIVERSITY_METHODS = ("self_bleu", "distinct", "edit")
EVIDENCE = ("right", "wrong", "groups", "tds")  # the posterior's, per prompt: answers, groups, their TDS sum


def outcome_variance_score(correct):
    """The Outcome Variance Score of each prompt from its N 0/1 outcomes on the last axis: (..., N) -> (...).

    OVS = P (1 - P), P = the mean of the outcomes: the Bernoulli variance of the reward.
    [1, 1, 0, 0] -> 0.25 (P = 0.5, the most informative prompt); [1, 1, 1, 1] -> 0.0 (GRPO
    advantages all 0, the case VAS avoids); [[1, 0, 0, 0], [0, 0, 0, 0]] -> [0.1875, 0.0].
    """
    p = np.mean(np.asarray(correct, dtype=float), axis=-1)
    return p * (1.0 - p)  # VAS: OVS(x) = P(x)(1 - P(x)), the Bernoulli variance of the reward


# ---------------------------------------------------------------- trajectory diversity (TDS)

def _tokens(response):
    # The official code scores padded sequences, where shared pad runs make unrelated responses
    # look alike; we take the response's own tokens only (strings split on whitespace).
    tokens = response.tolist() if hasattr(response, "tolist") else response  # array, tensor
    return tokens.split() if isinstance(tokens, str) else list(tokens)


def _ngrams(tokens, k):
    return Counter(tuple(tokens[i:i + k]) for i in range(len(tokens) - k + 1))


def _bleu(hyp, refs, n):
    """Sentence BLEU, in [0, 1], of the tokens hyp against the token lists refs, with 1..n-grams.

    Clipped k-gram precisions, k = 1..n, uniform weights, add-one smoothing for k > 1, brevity
    penalty against the closest reference length."""
    if not hyp:  # an empty response equals an empty reference and shares nothing with the rest
        return float(any(len(r) == 0 for r in refs))
    log_p = 0.0
    for k in range(1, n + 1):
        counts = _ngrams(hyp, k)
        max_ref = Counter()
        for r in refs:  # multi-reference clipping: a k-gram counts up to its max count in any ref
            max_ref |= _ngrams(r, k)
        matches, total = sum(min(c, max_ref[g]) for g, c in counts.items()), sum(counts.values())
        if k == 1 and matches == 0:
            return 0.0  # no word in common: BLEU is exactly 0, so disjoint responses get TDS 1
        # Add-one for k > 1 (Lin & Och 2004) keeps short responses from collapsing to 0.
        log_p += math.log((matches + (k > 1)) / (total + (k > 1))) / n
    ref_len = min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]  # closest, ties -> shorter
    brevity = 1.0 if len(hyp) >= ref_len else math.exp(1.0 - ref_len / len(hyp))
    return brevity * math.exp(log_p)


def _edit_distance(a, b):
    """Token-level Levenshtein distance, one numpy row of the DP table at a time."""
    cols = prev = np.arange(len(b) + 1)  # row 0: turning "" into b[:j] takes j insertions
    for i, tok in enumerate(a, 1):
        keep = np.minimum(prev[1:] + 1, prev[:-1] + (b != tok))  # delete a_i, or substitute
        row = np.concatenate([[i], keep])
        prev = np.minimum.accumulate(row - cols) + cols  # insert b_j: row[j] <= row[j-1] + 1
    return int(prev[-1])


def trajectory_diversity_score(responses, method="self_bleu", n=3):
    """TDS of one prompt's N >= 2 unpadded responses (token-id lists or strings) -> float in [0, 1].

    Higher = more diverse. ["a b c d"] * 4 -> 0.0 with every method;
    ["a b c d", "e f g h"] -> 1.0 with every method; ["a b c d", "a b e f"] -> self_bleu 0.56,
    distinct (n=3) 1.0, edit 0.5. Methods:
      "self_bleu": 1 - mean over i of BLEU(response i | the other N - 1), 1..n-grams (default);
      "distinct":  unique n-grams / all n-grams over the N responses, rescaled so N identical
                   responses give 0 and N disjoint ones 1 (raw distinct-n gives 1/N to identical);
      "edit":      mean pairwise token edit distance / the longer length of the pair.
    Empty responses do not crash: two empty ones count as identical, empty vs non-empty as disjoint;
    "distinct" gives 0 when no response has n tokens.
    """
    if method not in DIVERSITY_METHODS:
        raise ValueError(f"unknown diversity method {method!r}, not in {DIVERSITY_METHODS}")
    if len(responses) < 2:
        raise ValueError(f"TDS needs at least 2 responses per prompt, got {len(responses)}")
    toks = [_tokens(r) for r in responses]
    N = len(toks)
    if method == "self_bleu":
        bleu = [_bleu(t, toks[:i] + toks[i + 1:], n) for i, t in enumerate(toks)]
        # VAS: TDS = 1 - self-BLEU. The official code adds raw self-BLEU (a similarity) with a
        # positive weight, which favours *less* diverse prompts; the paper asks for diversity.
        return 1.0 - float(np.mean(bleu))
    if method == "distinct":
        grams = sum((_ngrams(t, n) for t in toks), Counter())
        if not grams:
            return 0.0
        distinct = len(grams) / sum(grams.values())  # VAS: distinct-n over the N responses
        return float(np.clip((distinct - 1 / N) / (1 - 1 / N), 0.0, 1.0))
    vocab = {}  # map tokens to ints so the edit-distance rows compare as numpy arrays
    ids = [np.array([vocab.setdefault(t, len(vocab)) for t in ts], dtype=np.int64) for ts in toks]
    # VAS: mean pairwise edit distance. The official code leaves it unnormalised (hundreds of
    # tokens), which swamps OVS <= 0.25; dividing by the longer length keeps TDS in [0, 1].
    dists = [_edit_distance(ids[i], ids[j]) / max(len(ids[i]), len(ids[j]), 1)
             for i in range(N) for j in range(i + 1, N)]
    return float(np.mean(dists))


def variance_promotion_score(ovs, tds, alpha=0.8, beta=0.2):
    """VPS = alpha OVS + beta TDS (paper defaults alpha = 0.8, beta = 0.2); arrays broadcast.

    OVS 0.25, TDS 0.5 -> 0.8 * 0.25 + 0.2 * 0.5 = 0.3; an all-right prompt with TDS 0.1 -> 0.02.
    """
    return alpha * np.asarray(ovs, dtype=float) + beta * np.asarray(tds, dtype=float)  # VAS: VPS


# ---------------------------------------------------------------- the mixed sampler (Algorithm 1)

class VarianceAwareSampler:
    """Batches of prompt indices (Algorithm 1): `next_batch()` returns B ints, the first
    `num_weighted` = floor(lambda B) drawn with replacement by VPS, the rest uniformly from an
    epoch-long shuffle. Until scores are set every VPS is 0, so both parts are uniform.
    Example: VarianceAwareSampler(4, batch_size=4).set_scores([0, 0, 0.1, 0.3]) gives
    probabilities() [0, 0, 0.25, 0.75]: each batch is 2 draws from {2, 3}, then 2 shuffled prompts.
    """

    def __init__(self, num_prompts, batch_size, mixture_ratio=0.5, seed=0,
                 alpha=0.8, beta=0.2, diversity="self_bleu", n=3, decay=None, prior=0.1, select=False):
        for name, value in (("num_prompts", num_prompts), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0.0 <= mixture_ratio <= 1.0:
            raise ValueError(f"mixture_ratio (lambda) must be in [0, 1], got {mixture_ratio}")
        if diversity not in DIVERSITY_METHODS:
            raise ValueError(f"unknown diversity method {diversity!r}, not in {DIVERSITY_METHODS}")
        # lambda, the weighted share of each batch
        self.num_prompts, self.batch_size, self.mixture_ratio = num_prompts, batch_size, mixture_ratio
        self.alpha, self.beta, self.diversity, self.n = alpha, beta, diversity, n
        # VAS: B_w = floor(lambda B); the epsilon stops 0.29 * 100 = 28.999... from losing a draw.
        self.num_weighted = int(math.floor(mixture_ratio * batch_size + 1e-9))
        self.rng = np.random.default_rng(seed)
        self.scores = np.zeros(num_prompts)  # VPS per prompt; all 0 = uniform until scored
        # Per-prompt ingredients of VPS, kept for `update`; NaN until measured.
        self.pass_rate, self.tds = np.full(num_prompts, np.nan), np.full(num_prompts, np.nan)
        self._order, self._cursor, self.epoch = np.arange(0), 0, 0  # the uniform part's shuffle
        # With `decay`: the evidence of the posterior (EVIDENCE: right and wrong answers, groups, the sum of
        # their TDS), forgotten by `decay` a step; `prior` pseudo-counts (Beta(prior, prior) on P)
        self.decay, self.prior, self.select = decay, prior, select
        self.evidence = {name: np.zeros(num_prompts) for name in EVIDENCE}
        if decay is not None:
            self._posterior()

    def set_scores(self, vps):
        """Replace every VPS with raw scores: one finite, non-negative float per prompt."""
        vps = np.asarray(vps, dtype=float)
        if vps.shape != (self.num_prompts,):
            raise ValueError(f"expected {self.num_prompts} scores, one per prompt, got {vps.shape}")
        bad = np.flatnonzero(~(np.isfinite(vps) & (vps >= 0)))  # NaN, inf or negative
        if bad.size:
            raise ValueError(f"scores must be finite and >= 0, got {vps[bad[0]]} at {bad[0]}")
        self.scores = vps.copy()

    def update(self, prompt_ids, correct, responses, group=None):
        """Re-score prompt_ids[k] from its rollouts: 0/1 outcomes correct[k], unpadded responses[k].
        Pass rate and TDS are *replaced* by the ones measured here, then VPS is recomputed; a prompt
        drawn twice is scored once on its pooled rollouts. With `decay` (one call a step; a refresh's
        scoring is one more), every prompt's evidence is multiplied by it and these rollouts added to
        the posterior instead. TDS is the mean over consecutive chunks of
        `group` of a prompt's responses (default: all as one set; a last, shorter chunk is left out),
        because self-BLEU against 7 references is not on the scale of self-BLEU against 31: scored from
        N = 32 in chunks of G = 8, a prompt's TDS compares with the TDS of its G training rollouts.
        E.g. update([2, 2], [[1, 0], [1, 1]], [["a b", "c d"], ["a b", "a b"]]) sets pass_rate[2] =
        0.75 and TDS on all four responses; with group=2, tds[2] = mean(1.0, 0.0) = 0.5."""
        pooled = {}
        for pid, c, r in zip(prompt_ids, correct, responses, strict=True):
            answers, texts = pooled.setdefault(int(pid), ([], []))
            answers.extend(np.asarray(c, dtype=float).ravel())  # 0/1 each
            texts.extend(r)
        if self.decay is not None:
            self.forget()
        for pid, (answers, texts) in pooled.items():
            size = min(group or len(texts), len(texts))
            tds = [trajectory_diversity_score(texts[i:i + size], self.diversity, self.n)
                   for i in range(0, len(texts) - size + 1, size)]  # VAS: TDS(x) per chunk of G
            if self.decay is not None:  # VAS (posterior): add to the posterior
                for name, x in zip(EVIDENCE, (sum(answers), len(answers) - sum(answers), len(tds), sum(tds))):
                    self.evidence[name][pid] += x
                continue
            self.pass_rate[pid], self.tds[pid] = np.mean(answers), np.mean(tds)  # VAS: P(x), TDS(x)
            self.scores[pid] = variance_promotion_score(outcome_variance_score(answers), self.tds[pid],
                                                        self.alpha, self.beta)
        if self.decay is not None:
            self._posterior()

    def forget(self):
        """Forget one step: every prompt's evidence, drawn this step or not, multiplied by `decay`.

        Old groups fade, and a prompt left alone drifts back to the prior."""
        for values in self.evidence.values():
            values *= self.decay  # VAS (posterior): forgetting

    def _posterior(self):
        """Set every prompt's `pass_rate`, `tds` and `scores` (VPS) from its posterior: Beta(prior + right,
        prior + wrong) on P, OVS its expected P (1 - P), TDS the mean of its groups' and of `prior`
        pseudo-groups at 0.5.

        Beta(0.1, 0.1), never drawn: OVS = 0.01 / (0.2 * 1.2) = 0.042, VPS = 0.8 * 0.042 + 0.2 * 0.5 = 0.133;
        after 16 right of 16 (two groups of G = 8) with identical answers (TDS 0): a = 16.1, b = 0.1,
        OVS = 1.61 / (16.2 * 17.2) = 0.0058, TDS = 0.05 / 2.1 = 0.024,
        VPS = 0.8 * 0.0058 + 0.2 * 0.024 = 0.0094."""
        a, b = self.prior + self.evidence["right"], self.prior + self.evidence["wrong"]
        self.pass_rate = a / (a + b)  # the posterior mean
        # `prior` pseudo-groups at TDS 0.5
        self.tds = (self.evidence["tds"] + 0.5 * self.prior) / (self.evidence["groups"] + self.prior)
        ovs = a * b / ((a + b) * (a + b + 1))  # VAS: E[P (1 - P)] under Beta(a, b)
        self.scores = variance_promotion_score(ovs, self.tds, self.alpha, self.beta)

    def selected(self):
        """The focusing sampler's weighted part: the floor(lambda B) prompts of highest posterior VPS, without
        replacement, ties in random order. Prior 0.1, beta 0.2: a prompt never drawn has VPS 0.133, one
        shown dead (8 right of 8, identical answers: Beta(8.1, 0.1), TDS 0.05 / 1.1) 0.8 * 0.0107 + 0.2 *
        0.045 = 0.018, one half right (4 of 8, TDS 0.3) 0.8 * 0.223 + 0.2 * 0.32 = 0.24: at B_w = 2 the
        live prompt and the one never drawn are taken, never the dead one."""
        order = self.rng.permutation(self.num_prompts)  # ties (prompts never drawn) in random order
        # VAS (focusing): the floor(lambda B) highest posterior VPS (in turn again, in a smaller pool)
        return np.resize(order[np.argsort(-self.scores[order], kind="stable")], self.num_weighted)

    def score_pool(self, correct_per_prompt, responses_per_prompt, group=None):
        """Full refresh (every T_update steps): N scoring rollouts for each prompt of the pool, TDS
        on chunks of `group` (G) of them, as `update` measures it."""
        if not len(correct_per_prompt) == len(responses_per_prompt) == self.num_prompts:
            raise ValueError(f"need all {self.num_prompts} prompts' rollouts, "
                             f"got {len(correct_per_prompt)} and {len(responses_per_prompt)}")
        self.update(range(self.num_prompts), correct_per_prompt, responses_per_prompt, group)

    def probabilities(self):
        """The distribution the weighted part of a batch is drawn from: one probability per prompt.

        VPS / sum(VPS), or uniform if every VPS is 0."""
        total = self.scores.sum()
        # VAS: p(x) = VPS(x) / sum VPS. The official code min-max normalises VPS first: the lowest
        # prompt then has weight 0 for ever, and equal scores divide by zero. We use VPS as is.
        return self.scores / total if total > 0 else np.full(self.num_prompts, 1.0 / self.num_prompts)

    def next_batch(self):
        """B prompt indices: the first `num_weighted` by VPS, the rest uniform (see class doc)."""
        # VAS: B_w draws with replacement, proportional to VPS (Algorithm 1); focusing: selected
        weighted = (self.selected() if self.select else
                    self.rng.choice(self.num_prompts, size=self.num_weighted, p=self.probabilities()))
        uniform = []  # VAS: the other B - B_w uniformly, without replacement inside an epoch
        for _ in range(self.batch_size - self.num_weighted):
            if self._cursor == len(self._order):  # epoch used up, even mid-batch: reshuffle
                self._order, self._cursor = self.rng.permutation(self.num_prompts), 0
                self.epoch += 1
            uniform.append(int(self._order[self._cursor]))
            self._cursor += 1
        return [int(i) for i in weighted] + uniform

    def state_dict(self):
        """Plain lists, ints, floats (RNG state too): loads with torch.load(weights_only=True)."""
        return dict(num_prompts=self.num_prompts, scores=self.scores.tolist(), tds=self.tds.tolist(),
                    pass_rate=self.pass_rate.tolist(), order=self._order.tolist(), cursor=self._cursor,
                    epoch=self.epoch, rng=self.rng.bit_generator.state,
                    evidence={name: values.tolist() for name, values in self.evidence.items()})

    def load_state_dict(self, state):
        """Restore a state so the future batches are exactly those the saved sampler would give."""
        if state["num_prompts"] != self.num_prompts:
            raise ValueError(f"state has {state['num_prompts']} prompts, not {self.num_prompts}")
        self.scores, self.pass_rate, self.tds = (
            np.asarray(state[key], dtype=float) for key in ("scores", "pass_rate", "tds"))
        self._order = np.asarray(state["order"], dtype=np.int64)
        self.evidence = {name: np.asarray(state["evidence"][name], dtype=float) for name in EVIDENCE}
        self._cursor, self.epoch = int(state["cursor"]), int(state["epoch"])
        self.rng.bit_generator.state = state["rng"]

