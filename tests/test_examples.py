"""Every built-in example gets the verdict theory predicts, and its witness survives the float64 re-check."""

from __future__ import annotations

import pytest

from losslab import LosslabError, check_convexity
from losslab.examples import EXAMPLES, get_example

from _helpers import assert_certified


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_verdict_agrees_with_theory(name):
    example = EXAMPLES[name]
    problem, groups = example.build(0)
    report = check_convexity(problem, groups=groups, seed=0, budget=1000, by_group=False)
    assert report.verdict == example.expected, report.explanation
    if example.expected == "non-convex":
        assert_certified(problem, report.witness)  # verify, and a hand-written float64 loss
    else:
        assert report.proof is not None and report.witness is None


def test_unknown_example_lists_the_valid_ones():
    with pytest.raises(LosslabError, match=r"unknown example 'nope'.*polynomial"):
        get_example("nope")
