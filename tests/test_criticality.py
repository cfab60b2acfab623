"""classify's criticality scale against an exact computation: ‖∇_G L‖ ≤ ‖J_G‖_F·‖∂L/∂f‖ (Cauchy–Schwarz).

The exact ‖J_G‖_F comes from torch.func.jacrev of the model's outputs; ∂L/∂f from the
hand-written mean squared error; the gradient from torch.func.grad of that loss (tests/references.py). The estimate
is exact for groups of at most 8 parameters and uses 8 Rademacher probes for larger ones, so it
is compared within a factor, over ten seeds, on a net whose W, b, v have 12 parameters each.
"""

from __future__ import annotations

import math

import torch

from losslab import Problem, data
from losslab.curvature.criticality import gradient_ratios, worst_ratio
from losslab.models import TwoLayer

from references import dense_gradient, dense_jacobian, mse_of, outputs_of

F64 = torch.float64


def test_scales_match_the_exact_cauchy_schwarz_bound_and_bound_the_gradient():
    x, y = data.cubic(40, seed=0)
    problem = Problem(TwoLayer(1, 12, "tanh"), x, y)
    theta = problem.init(3)
    where = problem.slices()

    outputs = outputs_of(problem)
    grad = dense_gradient(mse_of(problem), theta)
    J = dense_jacobian(outputs, theta)  # (n, p)
    f = outputs(theta)
    r_now = float((2 * (f - problem.y) / len(f)).norm())
    r_zero = float((2 * (0 - problem.y) / len(f)).norm())
    r_ref = max(r_now, r_zero)
    for seed in range(10):
        ratios = gradient_ratios(problem, theta, grad, torch.Generator().manual_seed(seed))
        assert set(ratios) == set(where) == {"W", "b", "v"}
        for g, sl in where.items():
            norm, scale = ratios[g]
            exact_scale = float(J[:, sl].norm()) * r_ref
            assert math.isclose(norm, float(grad[sl].norm()), rel_tol=1e-12)
            assert norm <= float(J[:, sl].norm()) * r_now * (1 + 1e-12)  # Cauchy–Schwarz, exactly
            assert 0.3 < scale / exact_scale < 3.0  # eight probes: the right order of magnitude
    small = Problem(TwoLayer(1, 3, "tanh"), x, y)  # groups of 3 parameters: exact, whatever the seed
    t3 = small.init(0)
    J3 = dense_jacobian(outputs_of(small), t3)
    g3 = small.grad(t3)
    r3 = max(float((2 * (small.model.apply(small.unflatten(t3), small.X) - small.y) / 40).norm()), r_zero)
    for g, (_, scale) in gradient_ratios(small, t3, g3, torch.Generator().manual_seed(0)).items():
        assert math.isclose(scale, float(J3[:, small.slices()[g]].norm()) * r3, rel_tol=1e-9)
    rho, group = worst_ratio({"a": (1.0, 4.0), "b": (3.0, 4.0), "c": (0.0, 0.0)})
    assert (rho, group) == (0.75, "b")
    assert worst_ratio({"a": (1.0, 0.0)}) == (math.inf, "a")  # a gradient with no scale to hide in
