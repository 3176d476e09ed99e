"""Tests for the reward of mmr1.py: format (<think>...</think><answer>...</answer>) + accuracy (the last
\\boxed{} inside <answer>, or the answer text, matched after normalisation). Pure string functions."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import mmr1  # noqa: E402
from mmr1 import normalise, reward  # noqa: E402


def test_well_formed_and_right():
    assert reward("<think> 2 + 1 </think><answer> \\boxed{3} </answer>", "3") == (1.0, 1.0, 2.0)


def test_well_formed_and_wrong():
    assert reward("<think> 2 + 2 </think><answer> \\boxed{4} </answer>", "3") == (1.0, 0.0, 1.0)


def test_missing_think_is_bad_format_but_can_be_right():
    assert reward("<answer> \\boxed{3} </answer>", "3") == (0.0, 1.0, 1.0)
    assert reward("<think> 2 + 1 <answer> \\boxed{3} </answer>", "3") == (0.0, 1.0, 1.0)  # no </think>


def test_text_after_answer_is_bad_format():
    assert reward("<think> x </think><answer> \\boxed{3} </answer> and more", "3") == (0.0, 1.0, 1.0)
    assert reward("<think> x </think><answer> \\boxed{3} </answer> \n ", "3") == (1.0, 1.0, 2.0)  # spaces ok


def test_text_before_think_is_bad_format():
    assert reward("so <think> x </think><answer> \\boxed{3} </answer>", "3") == (0.0, 1.0, 1.0)


def test_boxed_inside_answer_is_what_counts():
    # with a box, the words around it are ignored
    assert reward("<think> x </think><answer> the answer is \\boxed{3} </answer>", "3") == (1.0, 1.0, 2.0)
    # without a box the whole answer text is compared: "3" is right, "the answer is 3" is not
    assert reward("<think> x </think><answer> 3 </answer>", "3") == (1.0, 1.0, 2.0)
    assert reward("<think> x </think><answer> the answer is 3 </answer>", "3") == (1.0, 0.0, 1.0)


def test_box_outside_answer_tags_is_ignored_when_tags_exist():
    assert reward("<think> \\boxed{3} </think><answer> \\boxed{4} </answer>", "3") == (1.0, 0.0, 1.0)
    assert reward("<think> \\boxed{3} </think><answer> 4 </answer>", "3") == (1.0, 0.0, 1.0)


def test_no_tags_at_all_reads_the_whole_completion():
    # no <answer>: the box (or text) of the whole completion is graded, format is 0
    assert reward("\\boxed{3}", "3") == (0.0, 1.0, 1.0)
    assert reward("I think it is \\boxed{3} .", "3") == (0.0, 1.0, 1.0)
    assert reward("3", "3") == (0.0, 1.0, 1.0)
    assert reward("I think it is 3", "3") == (0.0, 0.0, 0.0)


def test_spaces_from_the_word_tokenizer():
    # decoding joins tokens with spaces: "\boxed { 3 }", "</think> <answer>"
    text = "<think> There are 3 shapes . </think> <answer> \\boxed { 3 } </answer>"
    assert reward(text, "3") == (1.0, 1.0, 2.0)
    assert reward("<think> x </think> <answer> \\boxed { light blue } </answer>", "lightblue") == (1.0, 1.0, 2.0)


def test_broken_tag_is_not_a_tag():
    # "< answer>" is not <answer>: bad format, and the box is graded from the whole text
    assert reward("<think> x </think>< answer> \\boxed{3} </answer>", "3") == (0.0, 1.0, 1.0)
    assert reward("<think> x </think>< answer> 3 </answer>", "3") == (0.0, 0.0, 0.0)


def test_numeric_normalisation():
    assert normalise("3.0") == normalise("3") == "3"
    assert normalise(" 3. ") == "3"  # trailing period of a sentence
    assert normalise("$2.50$") == "2.5"
    assert reward("<think> x </think><answer> \\boxed{3.0} </answer>", "3") == (1.0, 1.0, 2.0)
    assert reward("<think> x </think><answer> \\boxed{3.01} </answer>", "3") == (1.0, 0.0, 1.0)


def test_case_and_text_wrapper_insensitive():
    assert normalise("  \\text{Red }. ") == "red"  # the docstring's example
    assert reward("<think> x </think><answer> \\boxed{Red} </answer>", "red") == (1.0, 1.0, 2.0)
    assert reward("<think> x </think><answer> \\text{RED} </answer>", "Red") == (1.0, 1.0, 2.0)  # no box
    assert reward("<think> x </think><answer> \\boxed{blue} </answer>", "red") == (1.0, 0.0, 1.0)


def test_last_box_wins():
    assert reward("<think> x </think><answer> \\boxed{4} or \\boxed{3} </answer>", "3") == (1.0, 1.0, 2.0)
    assert reward("<think> x </think><answer> \\boxed{3} or \\boxed{4} </answer>", "3") == (1.0, 0.0, 1.0)


def test_empty_completion():
    assert reward("", "3") == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("boxed, answer", [("\\frac{1}{2}", "\\frac{1}{2}"), ("\\text{RED}", "red")])
def test_nested_braces_in_box(boxed, answer):
    assert reward(f"<think> x </think><answer> \\boxed{{{boxed}}} </answer>", answer) == (1.0, 1.0, 2.0)


@pytest.mark.parametrize("given, truth", [("\\frac{1}{2}", "0.5"), ("0.5", "\\frac{1}{2}"), ("\\sqrt 2", "\\sqrt{2}"),
                                          ("2 \\pi", "2\\pi"), ("1/2", "0.5"), ("B", "B"), ("b", "B")])
def test_math_answers_are_checked_by_value(given, truth):
    assert mmr1.answers_match(given, truth)
    assert mmr1.reward(f"<think> . </think><answer> \\boxed{{{given}}} </answer>", truth) == (1.0, 1.0, 2.0)


@pytest.mark.parametrize("given, truth", [("\\frac{1}{3}", "0.5"), ("\\sqrt{3}", "\\sqrt{2}"), ("3\\pi", "2\\pi"),
                                          ("C", "B"), ("der", "red"), ("4", "3")])
def test_different_answers_stay_different(given, truth):
    assert not mmr1.answers_match(given, truth)  # 'der' vs 'red': words never reach the math parser
