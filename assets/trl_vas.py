"""Variance-Aware Sampling in TRL: `VASGRPOTrainer`, a GRPOTrainer that draws its prompts with vas.py.

TRL draws each generation's prompts from a fixed shuffle (`RepeatSampler`) and has no hook for weights that
change (TRL issue #2801, closed: "subclass the trainer and override `_get_train_sampler`"). This subclass
does that and one more thing: it hands the 0/1 correctness of every rollout TRL rewards to
`vas.VarianceAwareSampler` as posterior VAS (`mmr1.py --vas`: each prompt's pass rate a Beta posterior
fed by its training groups, forgotten by 0.98 a generation; lambda = 0.5, half of each batch by VPS and half
uniform). No scoring rollouts: the training rollouts are the evidence.

    from assets.trl_vas import VASGRPOTrainer     # from the repository root; or copy vas.py and this file
                                                  # next to your script and `from trl_vas import ...`
    trainer = VASGRPOTrainer(model=..., reward_funcs=[fmt, accuracy], vas_reward="accuracy",
                             args=GRPOConfig(...), train_dataset=dataset)   # the rest as GRPOTrainer
    trainer.train()                               # trainer.vas is the sampler: probabilities(), pass_rate

`vas_reward` names the reward function that says right (> 0) or wrong (0 or None): a rollout's correctness,
not its shaped reward. `vas_options=dict(...)` goes to VarianceAwareSampler (mixture_ratio, decay, alpha..).
The README's "VAS in your TRL run" has a whole run; `python assets/trl_vas_measure.py` measures it.

What TRL does with a batch, and how the sampler keeps to it:
1. Groups. Each drawn prompt index is yielded `num_generations` times in a row, as RepeatSampler does, so
   TRL's groups are VAS's groups. The weighted half draws with replacement: a prompt drawn twice is two
   groups, and the posterior pools both.
2. Keys. A column `vas_index` (the row's position in the dataset) is added to the dataset, so every rollout
   carries its prompt's index into `_calculate_rewards`; reward functions see it as one more keyword.
3. Several processes. TRL gathers every process's rewards before it normalises them; the indices and
   completions are gathered the same way, so each process updates its own sampler with the same evidence.
   Same seed, same evidence: every process draws the same prompts, which RepeatSampler's contract needs.
4. Generation ahead of the optimiser. One generation batch (`generation_batch_size // num_generations`
   prompts) is one `next_batch()` and one `update()`, i.e. one step of the posterior's decay, however
   many optimiser steps (`steps_per_generation`, `num_iterations`) TRL then takes from it; the sampler
   yields it `steps_per_generation x num_iterations` times in a row, as RepeatSampler does.

How late the posterior sees a generation's rewards. The Trainer fetches an optimiser step's batches (one per
gradient-accumulation step) as the step begins, and accelerate's dataloader fetches one more ahead; a
generation's prompts are drawn when its first batch is fetched, its rewards come in when that batch is
trained on. So where one generation feeds one optimiser step (steps_per_generation x num_iterations =
gradient_accumulation_steps: TRL's default), generation k + 1 is drawn while generation k is rolled out, and
generation k is drawn from the rewards of generations 0 .. k - 2: one generation late (the first generation
of an epoch is not: nothing is fetched across an epoch's end). Where a generation feeds several optimiser
steps (steps_per_generation > gradient_accumulation_steps, or num_iterations > 1), there is no delay. Why
one generation is fine: the posterior weighs ~34 generations of evidence (0.98 a generation), so one more
generation of age barely moves a weight; a prompt just found dead keeps its old weight for one more draw;
and no reward is lost, only counted a generation later (tests/test_trl_vas.py replays the draws on exactly
this schedule). With dataloader_num_workers > 0, torch fetches prefetch_factor batches per worker ahead:
that many more generations late.

Deviations from `mmr1.py --vas`: the decay counts generations, not optimiser steps (the same in TRL's
default); the sampler's state is not in TRL's checkpoints (a resumed run starts from the prior); an
IterableDataset cannot be sampled by index, so it is refused.
"""
import os
import sys

import torch
from accelerate.utils import gather_object
from datasets import Dataset
from trl import GRPOTrainer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # vas.py, at the root
import vas  # noqa: E402

INDEX = "vas_index"  # the dataset column that carries each prompt's index to the rewards
DEFAULTS = dict(mixture_ratio=0.5, decay=0.98)  # `mmr1.py --vas`: lambda = 0.5, the posterior


class VASRepeatSampler(torch.utils.data.Sampler):
    """RepeatSampler's layout with VAS's prompts: per generation, `next_batch()` gives P prompt indices,
    each is yielded G times in a row (one group), that block `repeat` times (TRL takes one slice of each).
    P = 2, G = 2, repeat = 2, next_batch() -> [7, 3]: 7 7 3 3 7 7 3 3, then the next generation."""

    def __init__(self, sampler: vas.VarianceAwareSampler, num_prompts: int, P: int, G: int, repeat: int):
        self.vas, self.P, self.G, self.repeat = sampler, P, G, repeat
        self.generations = num_prompts // P  # an "epoch", as long as RepeatSampler's
        self.drawn = []  # every generation's prompts, in order: what the test compares with TRL's

    def __iter__(self):
        for _ in range(self.generations):
            prompts = self.vas.next_batch()  # VAS: lambda B by VPS, the rest from an epoch shuffle
            self.drawn.append(prompts)
            for _ in range(self.repeat):
                yield from (i for i in prompts for _ in range(self.G))

    def __len__(self):
        return self.generations * self.P * self.G * self.repeat


class VASGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose prompts come from vas.VarianceAwareSampler, fed by the reward `vas_reward`."""

    def __init__(self, model, reward_funcs=None, args=None, train_dataset=None, *rest,
                 vas_reward: str | None = None, vas_options: dict | None = None, **kwargs):
        if not isinstance(train_dataset, Dataset):
            raise TypeError(f"VAS draws prompts by index: train_dataset must be a datasets.Dataset, "
                            f"not {type(train_dataset).__name__}")
        if INDEX not in train_dataset.column_names:  # the key that comes back with each rollout's reward
            train_dataset = train_dataset.add_column(INDEX, list(range(len(train_dataset))))
        super().__init__(model, reward_funcs, args, train_dataset, *rest, **kwargs)
        names = self.reward_func_names
        if (vas_reward is None and len(names) > 1) or (vas_reward is not None and vas_reward not in names):
            raise ValueError(f"vas_reward={vas_reward!r}: name the reward that says right or wrong: {names}")
        self.vas_column = names.index(vas_reward) if vas_reward else 0
        n, P = len(self.train_dataset), self.args.generation_batch_size // self.num_generations  # P: B of VAS
        options = {"seed": self.args.seed, **DEFAULTS, **(vas_options or {})}  # vas_options win
        self.vas = vas.VarianceAwareSampler(n, P, **options)
        self.vas_sampler = VASRepeatSampler(self.vas, n, P, self.num_generations,
                                            self.num_iterations * self.args.steps_per_generation)

    def _get_train_sampler(self, dataset=None):
        return self.vas_sampler  # the one TRL's dataloader reads; the same object every epoch

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # (rows of all processes, reward functions)
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if not self.model.training:  # evaluation rollouts are not the training pool's evidence
            return rewards
        # TRL gathered the rewards of every process, in process order; gather the keys the same way
        ids = gather_object([int(x[INDEX]) for x in inputs])
        texts = gather_object([list(map(int, c)) for c in completion_ids_list])  # unpadded, for TDS
        right = (rewards[:, self.vas_column].nan_to_num(0.0) > 0).int().tolist()  # None counts as wrong
        G = self.num_generations
        groups = range(0, len(ids), G)
        if any(len(set(ids[k:k + G])) != 1 for k in groups):  # TRL's groups must be our groups
            raise RuntimeError("a group of num_generations rollouts mixes prompts: is the sampler replaced?")
        # VAS: one generation's groups into the posterior (one step of its decay)
        self.vas.update([ids[k] for k in groups], [right[k:k + G] for k in groups],
                        [texts[k:k + G] for k in groups], group=G)
        return rewards
