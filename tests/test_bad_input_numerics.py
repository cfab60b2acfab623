"""Bad input to the numerics added for honest numbers: each is one LosslabError line, never a traceback or a silent answer.

Found by trying to break them (issue #10's review): tolerances of 1 or more, products whose squares
overflow float64, hand-built slices, huge memory budgets, random streams on a device that has none,
the tolerance table's helpers, and what a slice file must be.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from losslab import LosslabError, Problem, check_convexity, data
from losslab.curvature import MatrixOperator, classify, eigs, spectral_density, xtrace
from losslab.landscape import discrete_convexity, load_slice
from losslab.landscape.slices import LineSlice
from losslab.memory import mib
from losslab.models import TwoLayer
from losslab.random_streams import generator
from losslab.tolerances import rounding_floor, smallest_usable, tolerances

F64 = torch.float64
A = torch.diag(torch.arange(1.0, 51.0, dtype=F64))


def two_layer() -> Problem:
    x, y = data.cubic(30, seed=0)
    return Problem(TwoLayer(1, 3, "tanh"), x, y)


def line(losses, t=None) -> LineSlice:
    th = torch.zeros(3, dtype=F64)
    return LineSlice(torch.linspace(0, 1, 7, dtype=F64) if t is None else t, losses, th, th)


BAD = {
    "eigs tol = 1": (lambda: eigs(MatrixOperator(A), k=2, tol=1.0), "expected tol < 1"),
    "eigs tol as a string": (lambda: eigs(MatrixOperator(A), k=2, tol="1e-3"), "expected tol to be a number > 0, got tol='1e-3'"),
    "classify grad_tol = 1": (lambda: classify(two_layer(), two_layer().init(0), grad_tol=1.0), "expected grad_tol < 1"),
    "classify eig_tol = 2": (lambda: classify(two_layer(), two_layer().init(0), eig_tol=2.0), "expected eig_tol < 1"),
    "eigs of a 1e155 operator": (lambda: eigs(MatrixOperator(A * 1e155), k=2), "products below 1e\\+150"),
    "SLQ of a 1e155 operator": (lambda: spectral_density(MatrixOperator(A * 1e155), probes=1, steps=5), "products below 1e\\+150"),
    "XTrace of a 1e155 operator": (lambda: xtrace(MatrixOperator(A * 1e155), samples=16), "products below 1e\\+150"),
    "integer slice losses": (lambda: discrete_convexity(line(torch.arange(7))), "expected float32 or float64 losses"),
    "repeated slice coordinates": (
        lambda: discrete_convexity(line(torch.zeros(7, dtype=F64), torch.tensor([0, 0, .2, .4, .6, .8, 1.0], dtype=F64))),
        "strictly increasing coordinates"),
    "losses near float64's maximum": (
        lambda: discrete_convexity(line(torch.tensor([0, 1.7e308, 0, 1.7e308, 0, 0, 0], dtype=F64))),
        "expected losses of at most 1e\\+300"),
    "a generator on a device that is not one": (lambda: generator(0, "init", device="nonsense"), "expected a device with a random"),
    "tolerances of a list": (lambda: tolerances([]), "expected a float32 or float64 dtype"),
    "tolerances of float16": (lambda: tolerances(torch.float16), "expected a float32 or float64 dtype"),
    "rounding floor of text": (lambda: rounding_floor(F64, "a"), "expected norm to be a number"),
    "rounding floor of inf": (lambda: rounding_floor(F64, math.inf), "expected norm to be a finite number"),
    "smallest usable of NaN": (lambda: smallest_usable(math.nan), "expected floor to be a finite number"),
    "a slice path that is a number": (lambda: load_slice(3), "expected the path of a slice file"),
    "a slice path that is None": (lambda: load_slice(None), "expected the path of a slice file"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_losslab_error_line(name):
    call, match = BAD[name]
    with pytest.raises(LosslabError, match=match) as err:
        call()
    assert "\n" not in str(err.value)


def test_the_same_calls_work_in_range():
    assert eigs(MatrixOperator(A * 1e100), k=2).values.tolist() == pytest.approx([49e100, 50e100])
    assert discrete_convexity(line(torch.linspace(0, 1, 7, dtype=F64) ** 2)).clean  # convex, finite, increasing t
    assert tolerances("float32").dtype == torch.float32
    assert smallest_usable(1.907e-6) == pytest.approx(2.0e-6)


def test_a_huge_memory_budget_is_just_a_large_one():
    x, y = data.cubic(20, seed=0)
    problem = Problem(TwoLayer(1, 2, "relu"), x, y, memory_budget=10**30)  # budget // bytes per point > 2^63
    assert problem.chunk_size() == 2**31
    assert check_convexity(problem, budget=60, train_steps=0, by_group=False).verdict == "non-convex"


def test_memory_messages_never_say_zero():
    assert [mib(s) for s in (12, 12_000, 2**20, 3 * 2**30, 20 * 2**30)] == [
        "12 bytes", "11.7 KiB", "1.0 MiB", "3,072.0 MiB", "20.0 GiB"]


def test_float16_and_extended_slice_files_are_refused(tmp_path):
    s = line(torch.linspace(0, 1, 7, dtype=F64) ** 2)
    s.save(tmp_path / "ok.npz")
    arrays = dict(np.load(tmp_path / "ok.npz"))
    for dtype in (np.float16, np.longdouble):
        np.savez(tmp_path / "bad.npz", **{**arrays, "losses": arrays["losses"].astype(dtype)})
        with pytest.raises(LosslabError, match=r"losses: dtype .*, expected float32 or float64 numbers"):
            load_slice(tmp_path / "bad.npz")
