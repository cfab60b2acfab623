"""One table of per-dtype tolerances, used by the library and by the tests.

Every tolerance in losslab is *relative*: to the problem's scale (‖H‖₂ for curvature, the
loss values for slices and chords, the gradient's own Cauchy–Schwarz scale for criticality) and
to the dtype's machine epsilon ε. Nothing compares a number with an absolute threshold, so a
verdict, kind or count does not change when y, the loss or the parameters are rescaled by
powers of ten (tests/test_scale_invariance.py checks it over 1e-8 … 1e8 in both dtypes).

The rounding floor of a curvature operator. A product A·v computed in a dtype with machine
epsilon ε differs from the exact one by at most about c·ε·‖A‖₂·‖v‖, with c = :data:`ROUNDING_C`
(measured: ≤ 3 on the test problems of tests/test_tolerances.py, float32 against a float64
dense Hessian — a two-layer tanh net, an MLP with 1,281 parameters, a polynomial basis, random
features, and a linear model on inputs of size 1e4; c = 16 leaves a factor 5). By Weyl's
inequality every eigenvalue of the operator as evaluated is then within c·ε·‖A‖₂ of the exact
one, and a Hutchinson sample zᵀAz (‖z‖² = p) within c·ε·‖A‖₂·p. No eigenvalue bound and no
trace error is reported below these floors, and a ``tol`` below c·ε is refused.

Sources: Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed. (2002), §3.5
(rounding of inner products and matrix–vector products); Weyl's inequality (Horn & Johnson,
*Matrix Analysis*, Thm 4.3.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._checks import LosslabError, finite_float

__all__ = [
    "AFFINE_DEFECT", "ROUNDING_C", "SLICE_RTOL", "TOLERANCES", "WITNESS_FLOOR", "Tolerances", "rounding_floor", "smallest_usable",
    "tolerances",
]

ROUNDING_C = 16.0  # products are within ROUNDING_C · eps · ‖A‖₂ · ‖v‖ of exact (module docstring)
SLICE_RTOL = 64.0  # discrete_convexity: each loss value trusted to SLICE_RTOL · eps · (|L| + max |L|) (landscape.discrete)
WITNESS_FLOOR = 1e-12  # a float64 witness's gap must exceed this · (|L(mid)| + the chord's |terms|) (convexity.witness)
AFFINE_DEFECT = 1e-9  # an affine-in-θ claim holds when the relative defect on the data is at most this (convexity.structure)


@dataclass(frozen=True)
class Tolerances:
    """The tolerances of one dtype, all relative (see the module docstring for what to).

    Attributes:
        dtype: the floating dtype.
        eps: its machine epsilon (2⁻²³ float32, 2⁻⁵² float64).
        rounding: c·ε, the relative rounding floor of operator products (times ‖A‖₂).
        grad: :func:`~losslab.curvature.classify`'s criticality tolerance: θ is critical when every
            group's ‖∇_G L‖ ≤ grad · its Cauchy–Schwarz scale (classify's docstring).
        zero_curvature: classify's zero band, times ‖H‖₂: curvature within it counts as zero.
        eig_gap: :func:`~losslab.curvature.eigs`'s default tol for ``criterion="gap"`` (times ‖A‖₂).
        eig_residual: eigs' default tol for ``criterion="residual"`` (times ‖A‖₂).
        slice_rtol: :func:`~losslab.landscape.discrete_convexity`'s rounding factor, in units of ε.
        chord_screen: the relative chord gap above which a chord found in this dtype is re-checked
            in float64 (:mod:`losslab.convexity.chords`): 1e-10 in float64, 64·ε in float32.
    """

    dtype: torch.dtype
    eps: float
    rounding: float
    grad: float
    zero_curvature: float
    eig_gap: float
    eig_residual: float
    slice_rtol: float
    chord_screen: float


def _table(dtype: torch.dtype, grad: float, zero: float, gap: float, residual: float) -> Tolerances:
    eps = torch.finfo(dtype).eps
    return Tolerances(dtype, eps, ROUNDING_C * eps, grad, zero, gap, residual, SLICE_RTOL, max(1e-10, 64 * eps))


TOLERANCES: dict[torch.dtype, Tolerances] = {
    torch.float64: _table(torch.float64, grad=1e-6, zero=1e-6, gap=1e-10, residual=1e-8),
    # float32: ε = 1.2e-7, so the rounding floor c·ε is 1.9e-6; the defaults sit 6× above it.
    torch.float32: _table(torch.float32, grad=1e-3, zero=1e-3, gap=100 * torch.finfo(torch.float32).eps,
                          residual=100 * torch.finfo(torch.float32).eps),
}


def tolerances(dtype: torch.dtype) -> Tolerances:
    """The :class:`Tolerances` row of ``dtype`` (float32 or float64).

    Raises:
        LosslabError: another dtype (losslab analyses float32 and float64 problems only).
    """
    if dtype in ("float32", "float64"):
        dtype = getattr(torch, dtype)
    if not isinstance(dtype, torch.dtype) or dtype not in TOLERANCES:
        raise LosslabError(f"expected a float32 or float64 dtype, got {dtype!r}: convert with problem.to(torch.float64)")
    return TOLERANCES[dtype]


def rounding_floor(dtype: torch.dtype, norm: float) -> float:
    """c·ε(dtype)·‖A‖₂: how far any eigenvalue of an operator evaluated in ``dtype`` may be from the exact one."""
    row = tolerances(dtype)
    return row.rounding * abs(finite_float("norm", norm))


def smallest_usable(floor: float) -> float:
    """``floor`` rounded *up* to two significant digits (1.907e-6 → 2.0e-6): a value to quote in an error message that passes."""
    floor = finite_float("floor", floor, nonnegative=True)
    if floor == 0:
        return 0.0
    step = 10.0 ** (math.floor(math.log10(floor)) - 1)
    return math.ceil(floor / step * (1 - 1e-12)) * step
