"""The contract of an experiment, enforced at the boundary (issue #11): each broken promise is one LosslabError line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from losslab import LosslabError
from losslab.cli.demo import _overrides, run_all
from losslab.experiments import claim, get_experiment, run_experiment
from losslab.report import draw, register_drawings


@pytest.mark.parametrize("holds", [float("nan"), "False", 1, np.array([True, False]), torch.tensor([True, True]), None])
def test_a_claim_holds_only_by_a_truth_value(holds):
    with pytest.raises(LosslabError, match="claim 'k': expected holds to be True or False"):
        claim("k", "s", holds, "e")


@pytest.mark.parametrize(("holds", "expected"), [(np.float64(1.0) < 2, True), (torch.tensor(1.0) > 2, False), (False, False)])
def test_numpy_and_torch_comparisons_are_truth_values(holds, expected):
    assert claim("k", "s", holds, "e").holds is expected


@pytest.mark.parametrize("name", ["../../escaped", "sub/dir", "Upper", "", None])
def test_an_experiment_name_names_files_so_it_is_checked(name, fake_experiment):
    with pytest.raises(LosslabError, match="experiment name: expected lower-case words joined by '-'"):
        dataclasses.replace(fake_experiment, name=name)


def test_measure_and_claims_must_keep_their_contract(fake_experiment):
    bad_measure = dataclasses.replace(fake_experiment, name="fake-dict", measure=lambda s, seed, say: {"n": 1})
    with pytest.raises(LosslabError, match=r"expected measure.* to return a Measured .*got dict"):
        run_experiment(bad_measure)
    for claims, match in ((lambda s, m: None, "to return a tuple of Claim"),
                          (lambda s, m: (claim("a", "s", True, "e"), claim("a", "t", False, "e")), r"distinct claim keys, got \['a'\]")):
        with pytest.raises(LosslabError, match=match):
            run_experiment(dataclasses.replace(fake_experiment, name="fake-claims", claims=claims))
    with pytest.raises(LosslabError, match="its quick settings: unknown setting 'nope'"):
        dataclasses.replace(fake_experiment, quick={"nope": 1}).make_settings(quick=True)


def test_drawings_are_registered_for_own_experiments_only_with_distinct_names(fake_experiment):
    with pytest.raises(LosslabError, match="'overfitting' is a built-in experiment"):
        register_drawings("overfitting", figures=())
    with pytest.raises(LosslabError, match="expected tuples of functions"):
        register_drawings("fake-gen", figures=(f for f in [print]))
    line = __import__("conftest")._fake_line
    register_drawings("fake-twice", figures=(line, line))
    with pytest.raises(LosslabError, match=r"distinct figure names .*got \['line', 'line'\]"):
        draw(run_experiment(dataclasses.replace(fake_experiment, name="fake-twice"), quick=True))


@pytest.mark.parametrize(("overrides", "match"), [
    ({"truth": "1,,2"}, r"got truth='1,,2'"), ({"truth": "1,2,"}, r"got truth='1,2,'"),
    ({"truth": "0,0,0,0"}, "the last \\(highest degree\\) nonzero"), ({"truth": (1.0, 0.0)}, "the last \\(highest degree\\) nonzero"),
    ({"noise": 10**400}, "expected noise to be a finite number > 0"),
])
def test_settings_never_change_the_objective_silently(overrides, match):
    with pytest.raises(LosslabError, match=match):
        get_experiment("overfitting").make_settings(overrides=overrides)


def test_a_setting_given_twice_is_refused():
    with pytest.raises(LosslabError, match="expected each setting once, got --set n twice \\('16', '3'\\)"):
        _overrides(["n=16", "n=3"])


def test_running_out_of_memory_with_changed_settings_is_the_users_error_not_a_bug(fake_experiment):
    def huge(settings, seed, say):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: not enough memory: you tried to "
                           "allocate 80000000000 bytes.")

    big = dataclasses.replace(fake_experiment, name="fake-big", measure=huge)
    with pytest.raises(LosslabError, match=r"experiment 'fake-big' ran out of memory with these settings .*lower its sizes"):
        run_all([big], seed=0, quick=True, overrides={"n": 40})
    results, crashed = run_all([big], seed=0, quick=True)  # at its own settings it is a bug: reported as one
    assert crashed == ["fake-big"] and not results[0].passed
