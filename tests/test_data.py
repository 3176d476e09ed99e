"""Tests for the toy data (data.py) and prompt encoding of mmr1.py: determinism, families, rationales in the reward
format, answers that need the image, image-token bookkeeping, prompt batches with M-RoPE, and the MMR1-schema round trip
with its error messages. Small sizes, no model: a few seconds."""
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mmr1  # noqa: E402
from data import (COLOURS, FAMILIES, SHAPES, Example, blind_baseline, export_data, load_data,  # noqa: E402
                  make_geometry_dataset, toy_splits)

SIZE = 56  # 56 px -> (56 / 14)^2 = 16 patches -> 16 / 2^2 = 4 image tokens: cheap


@pytest.fixture(scope="module")
def data():
    return make_geometry_dataset(30, seed=0, size=SIZE)


@pytest.fixture(scope="module")
def tokenizer(data):
    return mmr1.build_tokenizer([e.question + " " + e.rationale for e in data])


def _pixels(image):
    return np.asarray(image.convert("RGB"))


# ---------------------------------------------------------------- the generator

def test_same_seed_same_data(data):
    again = make_geometry_dataset(30, seed=0, size=SIZE)
    assert [(e.id, e.question, e.answer, e.rationale, e.family, e.difficulty) for e in again] == \
           [(e.id, e.question, e.answer, e.rationale, e.family, e.difficulty) for e in data]
    assert all(a.image.tobytes() == b.image.tobytes() for a, b in zip(again, data))


def test_other_seed_other_data(data):
    other = make_geometry_dataset(30, seed=1, size=SIZE)
    assert [e.answer for e in other] != [e.answer for e in data]
    assert sum(a.image.tobytes() == b.image.tobytes() for a, b in zip(other, data)) == 0


def test_items_are_well_formed(data):
    assert len(data) == 30 and len({e.id for e in data}) == 30
    assert {e.family for e in data} == set(FAMILIES)  # every family appears
    for e in data:
        assert e.image.size == (SIZE, SIZE) and e.answer.strip() and e.question.strip()
        assert 1 <= e.difficulty <= 3


def test_rationales_score_full_reward_on_their_own_answer(data):
    for e in data:
        assert mmr1.reward(e.rationale, e.answer) == (1.0, 1.0, 2.0), e.rationale


def test_rationales_survive_the_word_tokenizer(data, tokenizer):
    # what SFT teaches, decoded as a rollout would be (tokens joined by spaces), still scores 2
    for e in data:
        ids = tokenizer(e.rationale, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id not in ids
        assert mmr1.reward(tokenizer.decode(ids, skip_special_tokens=True), e.answer) == (1.0, 1.0, 2.0)


def test_answers_need_the_image():
    # within each family one question text carries several answers: the text alone cannot tell them apart
    train = make_geometry_dataset(300, seed=1, size=SIZE)
    answers = defaultdict(set)
    for e in train:
        answers[(e.family, e.question)].add(e.answer)
    for family in FAMILIES:
        assert max(len(a) for (f, _), a in answers.items() if f == family) >= 2, family
    # the best image-blind guess (most common answer per question) is near chance (1/6, 1/6, 1/5, 1/5 per
    # family: 0.18); measured 0.189 here. test_every_answer_can_be_read_off_the_pixels shows the image suffices
    test = make_geometry_dataset(90, seed=2, size=SIZE)
    assert blind_baseline(train, test) < 0.25


# ---------------------------------------------------------------- answers from the pixels

PALETTE = np.array(list(COLOURS.values()))  # (6, 3)
# a regular n-gon fills n sin(2 pi / n) / (2 pi) of its circumscribed circle: 0.41, 0.64, 0.76, 0.83; a circle 1
FILL = {s: 1.0 if n == 0 else n * np.sin(2 * np.pi / n) / (2 * np.pi) for s, n in SHAPES.items()}


def components(mask: np.ndarray) -> list[np.ndarray]:
    """The 4-connected components of a boolean mask (H, W), by flood fill: grow a seed pixel inside the mask
    until it stops growing, then start again from a pixel no component holds yet."""
    found, left = [], mask.copy()
    while left.any():
        comp = np.zeros_like(mask)
        comp[tuple(np.argwhere(left)[0])] = True
        while True:
            grown = comp.copy()
            grown[1:] |= comp[:-1]
            grown[:-1] |= comp[1:]
            grown[:, 1:] |= comp[:, :-1]
            grown[:, :-1] |= comp[:, 1:]
            grown &= mask
            if (grown == comp).all():
                break
            comp = grown
        found.append(comp)
        left &= ~comp
    return found


def read_answer(ex: Example) -> str:
    """What the picture says, by the family's question: colour -> the colour of the ink, biggest -> the colour
    with the most pixels, count -> the number of connected blobs of ink, shape -> how much of its circumscribed
    circle the one blob fills. Ink = pixels near a palette colour (the drawing is not antialiased; anything
    else, and blobs under 4 pixels, would be edge noise and is ignored)."""
    px = _pixels(ex.image).astype(int)  # (H, W, 3)
    dist = ((px[:, :, None] - PALETTE[None, None]) ** 2).sum(-1)  # (H, W, 6)
    ink, colour = dist.min(-1) < 30 ** 2, dist.argmin(-1)
    names = np.array(list(COLOURS))
    blobs = [b for b in components(ink) if b.sum() >= 4]
    if ex.family in ("colour", "biggest"):
        return names[np.bincount(colour[ink], minlength=len(names)).argmax()]
    if ex.family == "count":
        return str(len(blobs))
    (blob,) = blobs  # shape: exactly one
    ys, xs = np.nonzero(blob)
    radius = np.sqrt((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2).max()
    fill = blob.sum() / (np.pi * radius ** 2)
    return min(FILL, key=lambda shape: abs(FILL[shape] - fill))


def test_every_answer_can_be_read_off_the_pixels():
    """The answer is a function of the image: recovered from the pixels for all 200 items (default 112 px)."""
    data = make_geometry_dataset(200, seed=0)
    wrong = [(e.id, e.family, e.answer, read_answer(e)) for e in data if read_answer(e) != e.answer]
    assert not wrong
    one_colour = [e for e in data if e.family in ("colour", "shape")]
    assert all(len(np.unique(_pixels(e.image).reshape(-1, 3), axis=0)) == 2 for e in one_colour)  # white + ink
    biggest = [e for e in data if e.family == "biggest"]
    assert all(len(np.unique(_pixels(e.image).reshape(-1, 3), axis=0)) == 3 for e in biggest)  # two colours


def test_the_pixel_reader_is_not_trivially_right():
    """read_answer tells items apart: a picture of another item gives another answer, in every family."""
    data = make_geometry_dataset(40, seed=3)
    for family in FAMILIES:
        items = [e for e in data if e.family == family]
        assert len({read_answer(e) for e in items}) >= 2, family
        swapped = [read_answer(dataclasses.replace(a, image=b.image)) == a.answer for a, b in zip(items, items[1:])]
        assert not all(swapped), family


def test_blind_baseline_hand_computed():
    # train: q1 -> a, a, b (guess a); overall most common answer a. test: (q1, a) right, (q1, b) wrong,
    # (q2 unseen -> overall a, answer "A" normalises to a) right -> 2 / 3
    ex = lambda q, a: Example("x", None, q, a, "", "f", 1)  # noqa: E731
    train = [ex("q1", "a"), ex("q1", "a"), ex("q1", "b")]
    test = [ex("q1", "a"), ex("q1", "b"), ex("q2", "A")]
    assert blind_baseline(train, test) == pytest.approx(2 / 3)


def test_toy_splits_are_disjoint():
    args = mmr1.parse_args(["--num-sft", "12", "--num-rl", "9", "--num-test", "6", "--image-size", str(SIZE)])
    splits = toy_splits(args)
    assert {k: len(v) for k, v in splits.items()} == {"sft": 12, "rl": 9, "test": 6}
    ids = [set(e.id for e in s) for s in splits.values()]
    images = [set(e.image.tobytes() for e in s) for s in splits.values()]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not ids[a] & ids[b] and not images[a] & images[b]  # no id and no picture shared
    assert toy_splits(args)["test"][0].image.tobytes() == splits["test"][0].image.tobytes()


# ---------------------------------------------------------------- encoding

def test_image_tokens_match_the_image_processor(data, tokenizer):
    pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for size in (SIZE, 112):
        processor = mmr1.build_image_processor(size)
        merge = processor.merge_size
        image = make_geometry_dataset(1, seed=0, size=size)[0].image
        p = mmr1.encode_prompt(tokenizer, processor, image, data[0].question)
        n = p.ids.count(pad)
        assert n == int(p.grid_thw.prod()) // merge ** 2 == p.pixel_values.shape[0] // merge ** 2
        # hand: 56 px -> 4 x 4 patches of 14 px -> 16 / 4 = 4 tokens; 112 px -> 8 x 8 = 64 / 4 = 16 tokens
        assert n == {56: 4, 112: 16}[size]
        assert p.grid_thw.tolist() == [[1, size // 14, size // 14]]
        # the placeholder run sits between <|vision_start|> and <|vision_end|>, in one block
        start = p.ids.index(tokenizer.convert_tokens_to_ids("<|vision_start|>"))
        assert p.ids[start + 1:start + 1 + n] == [pad] * n
        assert p.ids[start + 1 + n] == tokenizer.convert_tokens_to_ids("<|vision_end|>")
        assert tokenizer.unk_token_id not in p.ids


def test_prompt_batch_left_pads_and_gives_m_rope_positions(data, tokenizer):
    """Prompts end at the same column; M-RoPE: text counts up on all three axes, the 2 x 2 image tokens of a
    56-px image sit at (t, h, w) = (s, s + i, s + j) on their grid, the text after them goes on from s + 2."""
    processor = mmr1.build_image_processor(SIZE)
    by_question = {e.question: e for e in data}
    short, long = sorted((mmr1.encode_prompt(tokenizer, processor, e.image, q) for q, e in by_question.items()),
                         key=lambda p: len(p.ids))[::len(by_question) - 1]
    policy = mmr1.Policy(mmr1.build_tiny_model(tokenizer, SIZE), tokenizer, processor,
                         tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id, [])
    batch = mmr1.prompt_batch(policy, [short, long], "cpu")
    width, gap, pad = len(long.ids), len(long.ids) - len(short.ids), tokenizer.pad_token_id
    assert gap > 0 and batch["input_ids"].tolist() == [[pad] * gap + short.ids, long.ids]
    assert batch["attention_mask"].tolist() == [[0] * gap + [1] * len(short.ids), [1] * width]
    assert torch.equal(batch["pixel_values"], torch.cat([short.pixel_values, long.pixel_values]))
    image = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for row, p in enumerate([short, long]):
        pos = batch["position_ids"][:, row, width - len(p.ids):]  # (3, L) this prompt's real columns
        s = p.ids.index(image)  # text before the image: 0, 1, ..., s - 1 on every axis
        assert pos[:, :s].tolist() == [list(range(s))] * 3
        assert pos[:, s:s + 4].tolist() == [[s] * 4, [s, s, s + 1, s + 1], [s, s + 1, s, s + 1]]
        rest = len(p.ids) - s - 4  # then from the largest position + 1 = s + 2, on every axis
        assert pos[:, s + 4:].tolist() == [list(range(s + 2, s + 2 + rest))] * 3
        assert batch["next_position"][row] == s + 2 + rest  # where the completion starts


# ---------------------------------------------------------------- MMR1 schema on disk

def _splits():
    return {name: make_geometry_dataset(4, seed=k, size=SIZE, prefix=f"{name}-")
            for k, name in enumerate(("sft", "rl", "test"))}


def test_export_then_load_round_trip(tmp_path):
    splits = _splits()
    export_data(splits, str(tmp_path))
    row = json.loads((tmp_path / "rl.jsonl").read_text().splitlines()[0])
    assert row["problem"].startswith("<image>") and row["images"] == ["images/rl-0.png"]  # MMR1's schema
    loaded = load_data(str(tmp_path))
    assert loaded.keys() == splits.keys()
    for name in splits:
        for a, b in zip(splits[name], loaded[name], strict=True):
            assert (a.id, a.question, a.answer, a.rationale, a.family, a.difficulty) == \
                   (b.id, b.question, b.answer, b.rationale, b.family, b.difficulty)
            assert np.array_equal(_pixels(a.image), _pixels(b.image))  # PNG is lossless


def test_a_row_with_two_images_puts_each_at_its_placeholder(tmp_path, tokenizer):
    export_data(_splits(), str(tmp_path))
    _rewrite_line(tmp_path / "rl.jsonl", 1, lambda row: row.update(
        problem="<image> , <image> What colour is the biggest shape?", images=["images/rl-1.png", "images/rl-2.png"]))
    ex = load_data(str(tmp_path))["rl"][0]
    assert isinstance(ex.image, list) and len(ex.image) == 2
    assert np.array_equal(_pixels(ex.image[1]), _pixels(_splits()["rl"][2].image))  # in order
    p = mmr1.encode_prompt(tokenizer, mmr1.build_image_processor(SIZE), ex.image, ex.question)
    text = tokenizer.decode(p.ids).replace(" ", "")
    block = "<|vision_start|>" + "<|image_pad|>" * 4 + "<|vision_end|>"  # 56 px: 4 tokens each
    assert f"user\n{block},{block}Whatcolouristhebiggestshape?<|im_end|>".replace("\n", "") in text
    assert p.grid_thw.tolist() == [[1, 4, 4], [1, 4, 4]] and p.pixel_values.shape[0] == 2 * 16
    _rewrite_line(tmp_path / "rl.jsonl", 1, lambda row: row.update(problem="Only one <image> here"))
    with pytest.raises(SystemExit, match=r"rl\.jsonl, line 1\b.*1 <image> placeholders for 2 images"):
        load_data(str(tmp_path))


def _rewrite_line(path, line_no, edit):
    lines = path.read_text().splitlines()
    row = json.loads(lines[line_no - 1])
    edit(row)
    lines[line_no - 1] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")


def test_load_row_without_answer_names_file_and_line(tmp_path):
    export_data(_splits(), str(tmp_path))
    _rewrite_line(tmp_path / "rl.jsonl", 2, lambda row: row.pop("answer"))
    with pytest.raises(SystemExit, match=r"rl\.jsonl, line 2\b"):
        load_data(str(tmp_path))


def test_load_row_with_empty_answer_names_file_and_line(tmp_path):
    export_data(_splits(), str(tmp_path))
    _rewrite_line(tmp_path / "sft.jsonl", 4, lambda row: row.update(answer="  "))
    with pytest.raises(SystemExit, match=r"sft\.jsonl, line 4\b"):
        load_data(str(tmp_path))


def test_load_missing_image_names_file_and_line(tmp_path):
    export_data(_splits(), str(tmp_path))
    os.remove(tmp_path / "images" / "test-2.png")  # test.jsonl, line 3
    with pytest.raises(SystemExit, match=r"test\.jsonl, line 3\b") as err:
        load_data(str(tmp_path))
    assert "test-2.png" in str(err.value)


def test_load_bad_json_names_file_and_line(tmp_path):
    export_data(_splits(), str(tmp_path))
    with open(tmp_path / "test.jsonl", "a") as f:
        f.write("{not json\n")  # line 5
    with pytest.raises(SystemExit, match=r"test\.jsonl, line 5\b"):
        load_data(str(tmp_path))


def test_load_missing_directory_or_file(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit, match="nowhere"):
        load_data(str(missing))
    export_data(_splits(), str(tmp_path))
    os.remove(tmp_path / "rl.jsonl")
    with pytest.raises(SystemExit, match=r"rl\.jsonl"):
        load_data(str(tmp_path))


def test_a_count_rationale_enumerates_the_colours_it_sees():
    """A count's rationale names the colours in the picture, in the fixed order of COLOURS, each with its
    running number: "Counting : red 1 , blue 2 , purple 3 . There are 3 ." for three shapes."""
    for e in make_geometry_dataset(200, seed=4, size=112):
        if e.family != "count":
            continue
        steps = re.search(r"Counting : (.*) \. There are (\d) \.", e.rationale).groups()
        named = [pair.split() for pair in steps[0].split(" , ")]
        assert [int(k) for _, k in named] == list(range(1, int(e.answer) + 1)) and steps[1] == e.answer
        order = list(COLOURS)
        assert sorted(order.index(c) for c, _ in named) == [order.index(c) for c, _ in named]
        seen = {tuple(COLOURS[c]) for c, _ in named}
        pixels = {tuple(p) for p in _pixels(e.image).reshape(-1, 3)}  # drawn without anti-aliasing
        assert seen <= pixels and not ({tuple(v) for v in COLOURS.values()} - seen) & pixels


def test_teacher_error_flaws_only_the_answer_of_biggest_shape_items():
    """--teacher-error: a "biggest" rationale names both colours right, then may answer with the small
    one's colour; every other rationale, and every answer, stays the truth."""
    clean = make_geometry_dataset(90, seed=3, size=56)
    flawed = make_geometry_dataset(90, seed=3, size=56, teacher_error=1.0)
    assert [e.answer for e in clean] == [e.answer for e in flawed]  # same items, same truth
    for c, f in zip(clean, flawed):
        assert mmr1.reward(c.rationale, c.answer) == (1.0, 1.0, 2.0)
        if c.family == "biggest":
            small = re.search(r"the small one is (\w+)", c.rationale).group(1)
            assert small != c.answer and f.rationale.split("</think>")[0] == c.rationale.split("</think>")[0]
            assert mmr1.reward(f.rationale, c.answer)[1] == 0 and mmr1.reward(f.rationale, small)[1] == 1
        else:
            assert f.rationale == c.rationale
    assert sum(e.family == "biggest" for e in clean) > 10


@pytest.mark.parametrize("size", [28, 112])
def test_biggest_items_show_both_shapes_apart_at_any_allowed_size(size):
    """The small shape is placed clear of the big one, also at the smallest --image-size (28 px), where
    a fixed pixel margin could leave no room; both colours show, the big one on more pixels."""
    data = [e for e in make_geometry_dataset(200, seed=1, size=size) if e.family == "biggest"]
    assert len(data) == 50
    for e in data:
        small = re.search(r"the small one is (\w+)", e.rationale).group(1)
        pixels = np.asarray(e.image).reshape(-1, 3)
        count = {c: int((pixels == COLOURS[c]).all(1).sum()) for c in (e.answer, small)}
        assert count[e.answer] > count[small] > 0, (e.id, count)


@pytest.mark.parametrize("module, absent", [("data", ("torch", "numpy", "transformers")),
                                            ("vas", ("torch", "transformers"))])
def test_the_parts_apart_import_alone(module, absent):
    """data.py needs Pillow alone, vas.py numpy alone: each can be read, taught and reused without the model."""
    code = f"import sys, {module}; print([m for m in {absent!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
