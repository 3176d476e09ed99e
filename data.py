"""The data mmr1.py trains on: an `Example` per item, the toy geometry task, MMR1's jsonl schema in and out.

The toy task: four families of questions about shapes drawn with Pillow (colour, biggest, shape, count),
whose answers can only be read off the picture; the cold-start rationales come from a flawed teacher. Real
data comes in MMR1's public schema (`problem`, `answer`, image paths), read by `load_data`. Pillow only:
    python -c "import data; print(data.make_geometry_dataset(1, seed=0)[0].question)"
    python mmr1.py --export-data toy/ [data flags]   # the toy splits written in MMR1's schema, to see it
"""
from __future__ import annotations

import dataclasses, json, os, random
from collections import Counter, defaultdict

from PIL import Image, ImageDraw


@dataclasses.dataclass
class Example:
    """One item of any split: the image (or images), the question, the true answer, the cold-start target."""
    id: str
    image: Image.Image | list[Image.Image]  # a list for a row of several images, one <image> each in question
    question: str
    answer: str
    rationale: str  # the cold-start target: <think>...</think><answer>\boxed{...}</answer>
    family: str
    difficulty: int  # 1 (easy) .. 3 (hard)


# ----------------------------------------------------------------------------------------------------
# The toy geometry task: procedural images whose answers can only be read off the picture

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
           "yellow": (230, 200, 30), "purple": (150, 60, 190), "orange": (240, 130, 30)}
SHAPES = {"circle": 0, "triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}  # name -> sides
SIDES = {**SHAPES, "octagon": 8}  # the octagon only in dead_pool's never-solved prompts
FAMILIES = ("colour", "biggest", "shape", "count")


def _draw(draw, shape: str, cx: float, cy: float, r: float, colour: str, rotation: float) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=COLOURS[colour])
    else:
        draw.regular_polygon((cx, cy, r), SIDES[shape], rotation=rotation, fill=COLOURS[colour])


def _toy_example(idx: int, rng: random.Random, size: int, prefix: str, teacher_error: float,
                 family: str = "", shape: str = "") -> Example:
    family = family or FAMILIES[idx % len(FAMILIES)]  # balanced families
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    shape, colour = shape or rng.choice(list(SHAPES)), rng.choice(list(COLOURS))
    if family in ("colour", "shape"):  # one large shape, anywhere: its corners span several 14-px patches
        r = rng.uniform(0.3, 0.42) * size
        _draw(draw, shape, rng.uniform(r, size - r), rng.uniform(r, size - r), r, colour, rng.uniform(0, 360))
    wrong = None  # what the flawed cold-start teacher answers instead, where it errs
    if family == "colour":
        question, answer, difficulty = "What colour is the shape?", colour, 1
        think = f"The shape is {colour} ."
    elif family == "biggest":  # a big and a small shape of two colours; the teacher answers for the small one
        big, small = rng.sample(list(COLOURS), 2)
        r_big, r_small = rng.uniform(0.24, 0.3) * size, rng.uniform(0.1, 0.14) * size
        x, y = rng.uniform(r_big, size - r_big), rng.uniform(r_big, size - r_big)
        while True:  # the small shape goes where it does not touch the big one (a corner always fits)
            u, v = rng.uniform(r_small, size - r_small), rng.uniform(r_small, size - r_small)
            if (u - x) ** 2 + (v - y) ** 2 > (r_big + r_small + size / 56) ** 2:
                break
        _draw(draw, shape, x, y, r_big, big, rng.uniform(0, 360))
        _draw(draw, rng.choice(list(SHAPES)), u, v, r_small, small, rng.uniform(0, 360))
        question, answer, wrong, difficulty = "What colour is the biggest shape?", big, small, 2
        think = f"The biggest shape is {big} , the small one is {small} ."
    elif family == "shape":
        question, answer, difficulty = "What shape is shown?", shape, 2
        think = f"It has {SIDES[shape] or 'no'} corners , so it is a {shape} ."
    else:  # count 1..5 small shapes of distinct colours that do not overlap; more shapes = harder
        n, centres, r = rng.randint(1, 5), [], size * 0.09
        colours = rng.sample(list(COLOURS), n)
        while len(centres) < n:
            c = (rng.uniform(r, size - r), rng.uniform(r, size - r))
            if all((c[0] - x) ** 2 + (c[1] - y) ** 2 > (2.2 * r) ** 2 for x, y in centres):
                _draw(draw, rng.choice(list(SHAPES)), c[0], c[1], r, colours[len(centres)], 0)
                centres.append(c)
        question, answer, difficulty = "How many shapes are there?", str(n), 1 + (n >= 3) + (n >= 5)
        # the count is built by enumeration, each shape named by its colour in a fixed order: every step is
        # a look at the image ("is there a green one?"), not a guess of when to stop
        listed = [c for c in COLOURS if c in colours]
        think = f"Counting : {' , '.join(f'{c} {k}' for k, c in enumerate(listed, 1))} . There are {n} ."
    # the flawed teacher reasons right, then answers for the wrong shape: imitation copies it, a verifier not
    said = wrong if wrong and rng.random() < teacher_error else answer
    rationale = f"<think> {think} </think><answer> \\boxed{{{said}}} </answer>"
    return Example(f"{prefix}{idx}", img, question, answer, rationale, family, difficulty)


def make_geometry_dataset(n: int, seed: int, size: int = 112, prefix: str = "", teacher_error: float = 0.0):
    """n toy examples, identical for the same arguments: colour (easy), biggest, shape, count (hard).

    `teacher_error` is the chance that a "biggest shape" rationale, after naming both colours right,
    answers with the small shape's colour, while `answer` stays the truth: distilled chain-of-thought
    errs like this, and imitation copies the error where a verifier's reward does not.
    """
    rng = random.Random(seed)
    return [_toy_example(i, rng, size, prefix, teacher_error) for i in range(n)]


# A pool's dead prompts: half always solved, half never solved by the cold start
ALWAYS, NEVER, LIVE = "colour", "octagon", "biggest"


def dead_pool(n: int, dead_share: float, seed: int, size: int = 112) -> list[Example]:
    """An RL pool of n prompts, `dead_share` of them dead and the rest live, each kind in a block:
        dead, always solved  "colour": the cold start answers nearly all right, so its groups agree
        dead, never solved   "octagon": "What shape is shown?" of an octagon, a shape no SFT target names
                             (from --init-from a cold start, not even a word of its vocabulary): it answers
                             another shape, in format, so every rollout scores 1 + 0 and teaches nothing
        live                 "biggest": sometimes right, the family RL improves (the cold start's
                             flawed teacher answers for the small shape)
    The dead share is split evenly, the odd prompt to the always-solved kind. All from one seed."""
    n_dead = round(dead_share * n)
    n_never = n_dead // 2
    rng = random.Random(seed)
    kinds = [ALWAYS] * (n_dead - n_never) + [NEVER] * n_never + [LIVE] * (n - n_dead)
    return [_toy_example(i, rng, size, "rl-", 0.0, "shape" if kind == NEVER else kind,
                         "octagon" if kind == NEVER else "") for i, kind in enumerate(kinds)]


def dead_by_construction(ex: Example) -> bool:
    """Is ex one of a dead pool's dead prompts (an always-solved "colour" or a never-solved octagon)? Only
    in a `dead_pool`: the default pool's "colour" prompts are ordinary ones."""
    return ex.family == ALWAYS or ex.answer == NEVER


def blind_baseline(train: list[Example], test: list[Example]) -> float:
    """Answer each distinct question with its most common training answer (case and spaces aside): what a
    model that ignores the image gets."""
    key = lambda answer: "".join(answer.lower().split())  # noqa: E731
    by_question = defaultdict(Counter)
    for ex in train:
        by_question[ex.question][key(ex.answer)] += 1
    overall = Counter(key(ex.answer) for ex in train).most_common(1)[0][0]
    guess = {q: c.most_common(1)[0][0] for q, c in by_question.items()}
    return sum(guess.get(ex.question, overall) == key(ex.answer) for ex in test) / len(test)


def toy_splits(args) -> dict[str, list[Example]]:
    """Deterministic sft / rl / test splits, sized by mmr1's flags; a different seed per split keeps them
    disjoint draws. With --dead-share, the rl split is a `dead_pool` (the test split stays every family's)."""
    sizes = {"sft": args.num_sft, "rl": args.num_rl, "test": args.num_test}
    splits = {name: make_geometry_dataset(n, args.data_seed * 3 + k, args.image_size, f"{name}-",
                                          args.teacher_error if name == "sft" else 0.0)
              for k, (name, n) in enumerate(sizes.items())}
    if args.dead_share:
        splits["rl"] = dead_pool(args.num_rl, args.dead_share, args.data_seed * 3 + 1, args.image_size)
    return splits


# ----------------------------------------------------------------------------------------------------
# MMR1's jsonl schema, out and in: what mmr1.py --export-data writes and --data reads


def export_data(splits: dict[str, list[Example]], out_dir: str) -> str:
    """Write splits in MMR1's public schema: <split>.jsonl rows of problem / answer / images. Returns what it
    wrote, in words."""
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    for name, examples in splits.items():
        with open(os.path.join(out_dir, f"{name}.jsonl"), "w") as f:
            for ex in examples:
                path = f"images/{ex.id}.png"
                ex.image.save(os.path.join(out_dir, path))
                row = dict(id=ex.id, problem="<image>" + ex.question, answer=ex.answer, images=[path],
                           rationale=ex.rationale, family=ex.family, difficulty=ex.difficulty)
                f.write(json.dumps(row) + "\n")
    return f"{', '.join(f'{name}.jsonl' for name in splits)} and images/ to {out_dir}, in MMR1's schema"


def load_data(data_dir: str) -> dict[str, list[Example]]:
    """Read <split>.jsonl (split in sft, rl, test) in MMR1's schema; a broken row names file and line."""
    splits = {}
    for name in ("sft", "rl", "test"):
        path = os.path.join(data_dir, f"{name}.jsonl")
        try:
            lines = open(path, encoding="utf-8").read().splitlines()
            if not lines:
                raise ValueError("no rows")
        except (OSError, ValueError) as e:  # missing, not UTF-8 (a ValueError) or empty
            raise SystemExit(f"--data: cannot read {path} ({e}); the directory needs sft.jsonl, rl.jsonl and "
                             "test.jsonl, UTF-8 JSON lines, a row at least (see --export-data)") from None
        splits[name] = []
        for line_no, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
                if not str(row.get("answer", "")).strip():
                    raise ValueError("no answer")
                images = [Image.open(os.path.join(data_dir, path)).convert("RGB")
                          for path in row.get("images") or [row.get("image")]]
                if len(images) > 1 and row["problem"].count("<image>") not in (0, len(images)):
                    raise ValueError(f"{row['problem'].count('<image>')} <image> placeholders for "
                                     f"{len(images)} images; give one per image, in order")
            except Exception as e:  # one message for every way a row can be broken
                raise SystemExit(f"{path}, line {line_no}: bad row ({e}); fix or remove it") from None
            # one image goes before the question; several go where their placeholders are
            image, question = images, row["problem"].strip()
            if len(images) == 1:
                image, question = images[0], question.replace("<image>", "").strip()
            answer = str(row["answer"])
            rationale = row.get("rationale", "")  # SFT needs it (mmr1.sft says so), RL does not
            splits[name].append(Example(str(row.get("id", f"{name}-{line_no}")), image, question, answer,
                                        rationale, row.get("family", "all"), int(row.get("difficulty", 0))))
    return splits
