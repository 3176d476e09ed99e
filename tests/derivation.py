"""The derivation exercise of EXERCISES.md (exercise 10): why VAS scores a prompt by its outcome variance.

GRPO learns nothing from a group whose G rewards all agree: every advantage is 0. VAS prefers the prompts
with a high Outcome Variance Score, OVS = P (1 - P), P the prompt's pass rate. This file holds one function,
the chance that a group agrees, written from the prompt's OVS alone; the exercise asks why that is possible
and what it says about ranking prompts by OVS. Its check is `python -m pytest -q tests/test_exercises.py -k
exercise_agree`.
"""
import math


def agree_probability(ovs: float, group_size: int) -> float:
    """The probability that the G = group_size rollouts of a prompt whose OVS is `ovs` all get the same 0/1
    reward, so that every advantage of the group is 0.

    Each rollout is right with probability P, independently: the group agrees when all G are right or all
    are wrong, P^G + (1 - P)^G. That sum is symmetric in P and 1 - P, which are the two roots of
    x^2 - x + OVS = 0, so it depends on the prompt through OVS alone. G = 2: 1 - 2 OVS; G = 4:
    1 - 4 OVS + 2 OVS^2. It falls as OVS rises, for every G: ranking prompts by OVS ranks them by the
    chance that their group gives a gradient.
    """
    p = (1 + math.sqrt(max(0.0, 1 - 4 * ovs))) / 2  # a root of x (1 - x) = OVS; the other gives the same sum
    return p ** group_size + (1 - p) ** group_size
