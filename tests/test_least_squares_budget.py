"""least_squares within memory_budget: the refusal threshold, its message, and the Jacobian built in chunks.

The features Φ (N × p, float64) and the solve are held while one point's graph is evaluated beside them
(``losslab.memory.least_squares_bytes``): the refusal comes exactly when those bytes plus ``point_bytes``
exceed the budget, and the Jacobian's products run on as many tangents at a time as fit in what is left.
The chunks are seen through the model itself: its logit passes through an identity autograd Function that
counts its forward-mode (jvp) and reverse-mode (backward) calls, one per vmapped chunk.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from losslab import MemoryBudgetError, Problem
from losslab.fit import least_squares_result
from losslab.memory import mib
from losslab.models import Polynomial
from losslab.models.base import Model

F64 = torch.float64
BYTES = 8  # float64


class _Tap(torch.autograd.Function):
    """The identity, counting the jvp and backward calls made through it (one per vmapped chunk)."""

    generate_vmap_rule = True
    calls: ClassVar[dict[str, int]] = {"jvp": 0, "backward": 0}

    @staticmethod
    def forward(x):
        return x.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        _Tap.calls["backward"] += 1
        return grad

    @staticmethod
    def jvp(ctx, tangent):
        _Tap.calls["jvp"] += 1
        return tangent


class _TappedLinear(Model):
    """X·w through :class:`_Tap`: Φ = X exactly; one activation per example, so a point's graph is small next to Φ."""

    def __init__(self, d_in: int):
        self.d_in, self.shapes, self.affine_sets = d_in, {"w": (d_in,)}, (frozenset({"w"}),)

    def init(self, *, seed: int = 0, dtype: torch.dtype = F64):
        return {"w": torch.zeros(self.d_in, dtype=dtype)}

    def logit(self, params, X):
        return _Tap.apply(X @ params["w"])

    def activations_per_example(self, x=None) -> int:
        return 1


def _data(n: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n * 100 + d)
    return torch.randn(n, d, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)


def _held_bytes(N: int, p: int, lam: float) -> int:
    """Φ and the Jacobian's own copy (2Np), plus the solver's: a copy of Φ and r (λ = 0), the augmented
    (N + p) × p system and its copy (λ > 0, p ≤ N), or the dual N × N matrix and its factor (λ > 0, p > N)."""
    if lam == 0:
        solve = N * p + N
    elif p > N:
        solve = 2 * N * N
    else:
        solve = 2 * (N + p) * p
    return BYTES * (2 * N * p + solve)


@pytest.mark.parametrize(("n", "d", "l2", "ridge"), [(40, 5, 0.0, 0.0), (40, 5, 0.0, 0.5), (40, 5, 0.25, 0.0), (6, 9, 0.0, 0.1)])
def test_refused_exactly_when_phi_the_solve_and_one_point_exceed_the_budget(n, d, l2, ridge):
    X, y = _data(n, d)
    prob = Problem(_TappedLinear(d), X, y, l2=l2)
    needed = _held_bytes(n, d, l2 + ridge) + prob.point_bytes
    prob = prob.with_memory_budget(needed)
    res = least_squares_result(prob, ridge=ridge)  # fits exactly
    ref = Ridge(alpha=n * (l2 + ridge), fit_intercept=False, solver="svd").fit(X.numpy(), y.numpy()) if l2 + ridge else None
    expected = ref.coef_ if ref is not None else np.linalg.lstsq(X.numpy(), y.numpy(), rcond=None)[0]
    np.testing.assert_allclose(res.theta.numpy(), expected, rtol=0, atol=1e-10)
    prob = prob.with_memory_budget(needed - 1)
    with pytest.raises(MemoryBudgetError):
        least_squares_result(prob, ridge=ridge)


def test_refusal_message_names_the_sizes_the_bytes_and_the_setting():
    # N = 1,200, p = 3: Φ is 8·1200·3 = 28,800 bytes = 28.1 KiB; with λ = 0 the refusal needs
    # 8·(2·3600 + 3600 + 1200) = 96,000 bytes plus one point's graph
    x = torch.linspace(-1, 1, 1200, dtype=F64)
    prob = Problem(Polynomial(1, 2), x, x**2)
    prob = prob.with_memory_budget(2**16)  # 64.0 KiB
    with pytest.raises(MemoryBudgetError) as info:
        least_squares_result(prob)
    needed = 96_000 + prob.point_bytes
    assert str(info.value) == (
        "closed-form least squares with N = 1,200 outputs and p = 3 parameters (Φ is N × p float64: 28.1 KiB) "
        f"needs {mib(needed)}, over memory_budget 64.0 KiB: lower the number of samples or parameters "
        "(or raise memory_budget)"
    )


@pytest.mark.parametrize("ridge", [0.0, 0.3])
@pytest.mark.parametrize("tangents", [1, 2, 3])
def test_jacobian_columns_are_built_as_many_at_a_time_as_fit(ridge, tangents):
    """p ≤ N: forward mode, ⌈p/k⌉ vmapped jvp calls for k tangents beside Φ; Φ is X whatever the chunks."""
    n, d = 30, 7
    X, y = _data(n, d)
    prob = Problem(_TappedLinear(d), X, y)
    prob = prob.with_memory_budget(_held_bytes(n, d, ridge) + tangents * prob.point_bytes)
    _Tap.calls.update(jvp=0, backward=0)
    res = least_squares_result(prob, ridge=ridge)
    assert _Tap.calls == {"jvp": math.ceil(d / tangents), "backward": 0}
    torch.testing.assert_close(res.features, X, rtol=0, atol=0)
    assert res.features.dtype == F64
    ref = (
        Ridge(alpha=n * ridge, fit_intercept=False, solver="svd").fit(X.numpy(), y.numpy()).coef_
        if ridge
        else np.linalg.lstsq(X.numpy(), y.numpy(), rcond=None)[0]
    )
    np.testing.assert_allclose(res.theta.numpy(), ref, rtol=0, atol=1e-10)


def test_jacobian_columns_all_at_once_when_they_fit():
    n, d = 30, 7
    X, y = _data(n, d)
    prob = Problem(_TappedLinear(d), X, y)
    prob = prob.with_memory_budget(_held_bytes(n, d, 0.0) + d * prob.point_bytes)
    _Tap.calls.update(jvp=0, backward=0)
    torch.testing.assert_close(least_squares_result(prob).features, X, rtol=0, atol=0)
    assert _Tap.calls == {"jvp": 1, "backward": 0}


@pytest.mark.parametrize("outputs", [1, 2, 4])
def test_wide_jacobian_rows_are_built_as_many_at_a_time_as_fit(outputs):
    """p > N: reverse mode, ⌈N/k⌉ vmapped backward calls for k outputs beside Φ."""
    n, d = 5, 12
    X, y = _data(n, d)
    prob = Problem(_TappedLinear(d), X, y)
    prob = prob.with_memory_budget(_held_bytes(n, d, 0.1) + outputs * prob.point_bytes)
    _Tap.calls.update(jvp=0, backward=0)
    res = least_squares_result(prob, ridge=0.1)
    assert _Tap.calls == {"jvp": 0, "backward": math.ceil(n / outputs)}
    torch.testing.assert_close(res.features, X, rtol=0, atol=0)
    ref = Ridge(alpha=n * 0.1, fit_intercept=False, solver="svd").fit(X.numpy(), y.numpy()).coef_
    np.testing.assert_allclose(res.theta.numpy(), ref, rtol=0, atol=1e-10)
