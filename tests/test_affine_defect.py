"""affine_defect, the numerical premise check of every convexity proof, against a closed-form reference.

The reference below recomputes the defect of a tiny ridge model logit_i(θ) = c·h(x_i·θ) from its
formula: the second directional derivative is c·h''(x_i·θ)·(x_i·d)² in closed form (no autodiff),
the chord defects are evaluated directly, and θ, d and the chord ends are drawn in the documented
order from the ``"affine_check"`` stream. Each case is chosen so that a different term is the
largest (the second derivative; a chord at each of the scales 1, 10, 1e3 and 1e5; a chord whose
size is set by f(a), f(b) or f(midpoint)), so every part of the formula decides a value here.
"""

from __future__ import annotations

import weakref

import pytest
import torch

from losslab import Problem
from losslab.convexity.structure import affine_defect
from losslab.models.base import Model
from losslab.random_streams import generator

DT = torch.float64
X = torch.tensor([[1.0, 0.5], [-0.3, 2.0], [0.7, -1.1]], dtype=DT)
Y = torch.zeros(3, dtype=DT)
SCALES = (1.0, 10.0, 1e3, 1e5)
LAM = 0.3

# h and its second derivative h'', written out by hand
CURVES = {
    "square": (lambda z: z**2, lambda z: 2 * torch.ones_like(z)),
    "tanh": (torch.tanh, lambda z: -2 * torch.tanh(z) / torch.cosh(z) ** 2),
    "relu": (torch.relu, torch.zeros_like),  # a kink only: h'' = 0 almost everywhere
    "cos": (torch.cos, lambda z: -torch.cos(z)),
}


class Ridge(Model):
    """logit_i = c·h(x_i·w): declared affine in w (wrongly, unless h is affine) so that the check runs on it."""

    link = None

    def __init__(self, curve: str, c: float = 1.0, d_in: int = 2):
        self.d_in, self.curve, self.c = d_in, curve, c
        self.shapes = {"w": (d_in,)}
        self.affine_sets = (frozenset({"w"}),)

    def init(self, *, seed: int = 0, dtype: torch.dtype = DT) -> dict[str, torch.Tensor]:
        return {"w": torch.full((self.d_in,), 0.1, dtype=dtype)}

    def logit(self, params, X):
        return self.c * CURVES[self.curve][0](X @ params["w"])


def reference_terms(curve: str, c: float, seed: int, points: int) -> list[tuple[tuple, float]]:
    """Every term of the documented maximum, labelled (point, "second") or (point, scale, which end sets the size)."""
    h, h2 = CURVES[curve]
    f = lambda t: c * h(X @ t)
    g = generator(seed, "affine_check")
    draw = lambda: torch.randn(X.shape[1], generator=g, dtype=DT)
    terms = []
    for k in range(points):
        theta, d = draw(), draw()
        second = c * h2(X @ theta) * (X @ d) ** 2
        terms.append(((k, "second"), float(second.abs().max()) / (1 + float(f(theta).abs().max()))))
        for s in SCALES:
            a, b = theta + s * draw(), theta + s * draw()
            fa, fb, fm = f(a), f(b), f(LAM * a + (1 - LAM) * b)
            sizes = [float(fa.abs().max()), float(fb.abs().max()), float(fm.abs().max())]
            defect = float((fm - LAM * fa - (1 - LAM) * fb).abs().max())
            terms.append(((k, s, "abm"[sizes.index(max(sizes))]), defect / (1 + max(sizes))))
    return terms


def reference(curve: str, c: float, seed: int = 0, points: int = 3) -> float:
    return max(v for _, v in reference_terms(curve, c, seed, points))


# (curve, c, seed) → the term that is the largest, with a clear margin over the next one
CASES = {
    "second derivative": ("square", 1.0, 4, (2, "second")),
    "chord at scale 1, size f(a)": ("tanh", 1.0, 6, (2, 1.0, "a")),
    "chord at scale 10": ("relu", 1.0, 0, (0, 10.0, "a")),
    "chord at scale 1e3, size f(b)": ("square", 1e-3, 3, (1, 1e3, "b")),
    "chord at scale 1e5": ("relu", 1e-3, 8, (0, 1e5, "b")),
    "chord sized by its midpoint": ("cos", 1.0, 3, (1, 1e5, "m")),
}


@pytest.mark.parametrize("name", CASES)
def test_affine_defect_equals_the_closed_form_reference(name):
    curve, c, seed, largest = CASES[name]
    terms = reference_terms(curve, c, seed, 3)
    values = sorted(v for _, v in terms)
    assert max(terms, key=lambda t: t[1])[0] == largest and values[-2] < 0.97 * values[-1]  # the case tests that term
    got = affine_defect(Problem(Ridge(curve, c), X, Y), seed=seed)
    assert got == pytest.approx(reference(curve, c, seed), rel=1e-12)


def test_documented_defaults_seed_0_and_3_points():
    problem = Problem(Ridge("relu", 1e-3), X, Y)
    expected = reference("relu", 1e-3, seed=0, points=3)
    assert reference("relu", 1e-3, seed=0, points=4) > 2 * expected  # a 4th point would show here
    assert reference("relu", 1e-3, seed=1) > 2 * expected  # so would seed 1
    assert affine_defect(problem) == pytest.approx(expected, rel=1e-12)


def test_same_seed_same_defect_whatever_the_global_torch_seed():
    problem = Problem(Ridge("tanh"), X, Y)
    values = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        values.append(affine_defect(problem, seed=2))
    assert values[0] == values[1] == pytest.approx(reference("tanh", 1.0, seed=2), rel=1e-12)


def test_an_affine_model_has_zero_defect_to_rounding():
    problem = Problem(Ridge("square", 0.0), X, Y)  # c = 0: the constant 0, affine
    assert affine_defect(problem) == 0.0


class Watched(Ridge):
    """Records which input tensors are alive at each call: streamed data must not be kept whole."""

    def __init__(self, curve: str):
        super().__init__(curve)
        self.seen: list[weakref.ref] = []
        self.peak = 0

    def logit(self, params, X):
        self.seen.append(weakref.ref(X))
        self.peak = max(self.peak, len({id(r()) for r in self.seen if r() is not None}))
        return super().logit(params, X)


def test_streamed_data_gives_the_same_defect_one_batch_in_memory_at_a_time():
    model = Watched("tanh")
    problem = Problem(model, [(X[i : i + 1], Y[i : i + 1]) for i in range(3)], cache_bytes=0)
    assert problem.data.cached is None  # streamed on every pass
    model.seen.clear()
    model.peak = 0
    assert affine_defect(problem, seed=0) == pytest.approx(reference("tanh", 1.0, seed=0), rel=1e-12)
    assert model.peak == 1


def test_cached_batches_give_the_same_defect_as_one_batch():
    batched = Problem(Ridge("tanh"), X, Y, batch_size=2)
    assert batched.data.count == 2 and batched.data.cached is not None
    assert affine_defect(batched, seed=1) == pytest.approx(reference("tanh", 1.0, seed=1), rel=1e-12)
