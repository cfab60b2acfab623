"""Experiment 1: a polynomial basis is linear in its parameters and nonlinear in x.

The model f(x; θ) = Σ_α θ_α x^α = φ(x)ᵀθ (:class:`~losslab.models.Polynomial`, here d = 1 of degree 5
and d = 2 of degree 3) has *fixed* features φ(x): however curved f is as a function of x, it is a
linear function of θ,

    f(x; θ + θ') = f(x; θ) + f(x; θ'),    f(x; cθ) = c·f(x; θ),

checked on every data point for random θ, θ', c against the float64 rounding bound of the dot
products (|fl(φᵀθ) − φᵀθ| ≤ γ_p·|φ|ᵀ|θ|, γ_p = p·u/(1 − p·u), Higham 2002, §3.1). The same f fails
the midpoint test in x, f(½(x + x')) ≠ ½(f(x) + f(x')), by a sizeable fraction of its range.

Hence the squared loss L(θ) = (1/n)‖Φθ − y‖² is a convex quadratic — ``check_convexity`` proves it
from the model's structure — and its minimiser solves the normal equations ΦᵀΦθ = Φᵀy, i.e.

    mean_i[(f(x_i; θ*) − y_i)·φ_m(x_i)] = 0   for every feature φ_m:

the residual is orthogonal to every feature (the fit is the projection of y onto their span).

Data: the 1-D problem is ``polynomial_1d(n, coefs=truth, noise=noise, seed=child_seed(seed, "data", 1))``;
the 2-D problem has X ~ Uniform([−1, 1]²) and y = sin(2x₁) + x₁x₂² + noise·ε, both drawn from
``generator(seed, "data", 2)`` (X first). The linearity checks of case k (0: 1-D, 1: 2-D) use
``linearity_errors(model, X, child_seed(seed, "probes", k))``; the plane's directions come from the
``"directions"`` stream of ``seed`` (:mod:`losslab.random_streams`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..convexity import check_convexity
from ..fit import least_squares_result
from ..landscape import plane
from ..models import Polynomial
from ..problem import Problem
from ..random_streams import child_seed, generator
from ._polyfit import CUBIC, TRUTH, draw
from .base import Claim, Measured, claim
from .settings import Integer, Real, Settings, setting
from .story import from_argument

__all__ = [
    "EXPERIMENT", "QUICK", "BasisChecks", "LinearInParametersMeasured", "LinearInParametersSettings", "PlaneNumbers", "claims",
    "linearity_errors", "measure", "midpoint_defect", "normal_equations_residual",
]


UNIT_ROUNDOFF = 2.0**-53


@dataclass(frozen=True)
class LinearInParametersSettings(Settings):
    """Settings of the linear-in-parameters experiment (defaults: the full run)."""

    n: int = setting(50, Integer(2), "examples of the 1-D problem (noisy truth on x ~ Uniform(−1, 1))")
    degree: int = setting(5, Integer(2, 20), "degree of the 1-D polynomial basis")
    n_2d: int = setting(100, Integer(2), "examples of the 2-D problem")
    degree_2d: int = setting(3, Integer(2, 10), "total degree of the 2-D polynomial basis")
    noise: float = setting(0.1, Real(0), "standard deviation of the label noise (both problems)")
    truth: tuple[float, ...] = setting(CUBIC, TRUTH, "the 1-D target's coefficients, constant term first")
    steps: int = setting(41, Integer(5, 61), "grid points per axis of the loss surface on a plane through θ* (embedded in the report)")


QUICK = {"steps": 25}


def linearity_errors(model: Polynomial, X: torch.Tensor, seed: int) -> dict[str, float]:
    """How far f(x; θ) is from linear in θ on X (n, d): additivity and homogeneity, against their rounding bounds.

    For θ, θ' = ``model.init(seed)``, ``model.init(child_seed(seed, "restarts", 1))`` scaled by 3
    and c ~ N(0, 9) from ``generator(seed, "probes")`` (:mod:`losslab.random_streams`):

        add = max_i |f(x_i; θ + θ') − f(x_i; θ) − f(x_i; θ')|,   bound 4(p + 1)u·max_i |φ(x_i)|ᵀ(|θ| + |θ'|)
        hom = max_i |f(x_i; cθ) − c·f(x_i; θ)|,                   bound 4(p + 1)u·|c|·max_i |φ(x_i)|ᵀ|θ|

    (u = 2⁻⁵³; each bound exceeds the worst-case rounding of the three dot products and the sums.)

    Returns:
        ``{"add", "add_bound", "hom", "hom_bound", "c"}`` as floats.
    """
    a, b = (3 * model.init(seed=s)["coef"] for s in (seed, child_seed(seed, "restarts", 1)))
    c = 3 * float(torch.randn(1, generator=generator(seed, "probes"), dtype=torch.float64))

    def f(theta: torch.Tensor) -> torch.Tensor:
        return model.apply({"coef": theta}, X)

    size = model.features(X).abs()
    gamma = 4 * (model.n_params + 1) * UNIT_ROUNDOFF
    return {
        "add": float((f(a + b) - f(a) - f(b)).abs().max()),
        "add_bound": gamma * float((size @ (a.abs() + b.abs())).max()),
        "hom": float((f(c * a) - c * f(a)).abs().max()),
        "hom_bound": gamma * abs(c) * float((size @ a.abs()).max()),
        "c": c,
    }


def midpoint_defect(model: Polynomial, theta: torch.Tensor, X: torch.Tensor) -> float:
    """max over pairs of rows of X of |f(½(x + x')) − ½(f(x) + f(x'))|, relative to max_i |f(x_i)|.

    Zero for any function affine in x; X (n, d), pairs (x_i, x_{n−1−i}).
    """
    params = {"coef": theta}
    Xr = X.flip(0)
    gap = model.apply(params, (X + Xr) / 2) - (model.apply(params, X) + model.apply(params, Xr)) / 2
    return float(gap.abs().max() / model.apply(params, X).abs().max())


def normal_equations_residual(problem: Problem, theta: torch.Tensor) -> float:
    """max_m |mean_i[(f(x_i; θ) − y_i)·φ_m(x_i)]| / (rms(y)·rms(φ_m)): 0 at the least-squares solution."""
    features = problem.model.features(problem.X)
    resid = problem.output(theta) - problem.y
    scale = problem.y.pow(2).mean().sqrt() * features.pow(2).mean(0).sqrt()
    return float(((features * resid[:, None]).mean(0) / scale).abs().max())


def _data_2d(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    X = 2 * torch.rand(n, 2, generator=g, dtype=torch.float64) - 1
    y = torch.sin(2 * X[:, 0]) + X[:, 0] * X[:, 1] ** 2 + noise * torch.randn(n, generator=g, dtype=torch.float64)
    return X, y


@dataclass(frozen=True)
class BasisChecks:
    """The checks of one problem (1-D or 2-D): linearity in θ, the midpoint test in x, the convexity proof, the fit.

    ``add``/``hom`` and their bounds, and ``c``, are :func:`linearity_errors`; ``midpoint_defect_x`` is
    :func:`midpoint_defect` at a random θ; ``verdict``, ``proof`` and ``declaration_check`` come from
    ``check_convexity``; ``normal_equations`` is :func:`normal_equations_residual` at the least-squares
    fit ``theta`` (numerical ``rank``, training MSE ``train_mse``, ``condition`` = cond(Φ)).
    """

    model: str
    n: int
    p: int
    add: float
    add_bound: float
    hom: float
    hom_bound: float
    c: float
    midpoint_defect_x: float
    verdict: str
    proof: str
    declaration_check: float
    normal_equations: float
    theta: torch.Tensor
    rank: int
    train_mse: float
    condition: float


@dataclass(frozen=True)
class PlaneNumbers:
    """The loss on a plane through the 1-D fit θ*: how it was computed, its range, and the grid (losses[i, j] at αᵢ, βⱼ)."""

    method: str
    min: float
    max: float
    alphas: torch.Tensor
    betas: torch.Tensor
    losses: torch.Tensor


@dataclass(frozen=True)
class LinearInParametersMeasured(Measured):
    """What the linear-in-parameters experiment measured: the checks of both problems, the 1-D data and the plane."""

    one_d: BasisChecks
    two_d: BasisChecks
    plane: PlaneNumbers
    degree: int  # the 1-D basis and its data, for the figure
    truth: tuple[float, ...]
    x: torch.Tensor
    y: torch.Tensor


def _checks(problem: Problem, seed: int, probe_seed: int) -> BasisChecks:
    model = problem.model
    fitted = least_squares_result(problem)
    lin = linearity_errors(model, problem.X, probe_seed)
    report = check_convexity(problem, seed=seed)
    return BasisChecks(
        model=model.describe(), n=problem.n, p=model.n_params, **lin,
        midpoint_defect_x=midpoint_defect(model, 3 * model.init(seed=probe_seed)["coef"], problem.X),
        verdict=report.verdict, proof=report.explanation(),
        declaration_check=report.proof.declaration_check if report.proof else math.nan,
        normal_equations=normal_equations_residual(problem, fitted.theta),
        theta=fitted.theta, rank=fitted.rank, train_mse=fitted.residual, condition=float(torch.linalg.cond(fitted.features)),
    )


def measure(settings: LinearInParametersSettings, seed: int, say) -> LinearInParametersMeasured:
    """Check linearity in θ, nonlinearity in x, the convexity proof and the normal equations (1-D and 2-D); the loss on a plane."""
    X1, y1 = draw(settings.n, settings.truth, settings.noise, child_seed(seed, "data", 1))
    X2, y2 = _data_2d(settings.n_2d, settings.noise, generator(seed, "data", 2))
    problems = (Problem(Polynomial(1, settings.degree), X1, y1), Problem(Polynomial(2, settings.degree_2d), X2, y2))
    checks = []
    for k, (label, problem) in enumerate(zip(("1-D", "2-D"), problems, strict=True)):
        say(f"{label}: {problem.model.describe()}")
        checks.append(_checks(problem, seed, child_seed(seed, "probes", k)))
    one, two = checks
    say("loss surface on a plane through θ*")
    slice_ = plane(problems[0], problems[0].as_theta(one.theta), steps=settings.steps, seed=seed)
    surface = PlaneNumbers(method=slice_.method, min=float(slice_.losses.min()), max=float(slice_.losses.max()),
                           alphas=slice_.alphas, betas=slice_.betas, losses=slice_.losses)
    return LinearInParametersMeasured(one_d=one, two_d=two, plane=surface, degree=settings.degree, truth=settings.truth,
                                      x=X1[:, 0], y=y1)


def claims(settings: LinearInParametersSettings, m: LinearInParametersMeasured) -> tuple[Claim, ...]:
    """Linear in θ (to rounding), not linear in x, convex by proof, and the fit solves the normal equations."""
    one, two = m.one_d, m.two_d
    worst = max(getattr(r, kind) / getattr(r, f"{kind}_bound") for r in (one, two) for kind in ("add", "hom"))
    return (
        claim("linear-in-theta", "f(x; θ) is linear in θ: f(θ + θ') = f(θ) + f(θ') and f(cθ) = c·f(θ) on every data point",
              worst <= 1,
              "1-D: additivity {a1:.1e} (bound {ab1:.1e}), homogeneity {h1:.1e} (bound {hb1:.1e}); 2-D: additivity {a2:.1e} "
              "(bound {ab2:.1e}), homogeneity {h2:.1e} (bound {hb2:.1e}); worst error/bound = {worst:.2f} ≤ 1 "
              "(float64 rounding bound 4(p + 1)u·|φ|ᵀ|θ|)",
              plain="Both identities hold on every data point up to the tiny error that floating-point rounding alone can cause.",
              a1=one.add, ab1=one.add_bound, h1=one.hom, hb1=one.hom_bound,
              a2=two.add, ab2=two.add_bound, h2=two.hom, hb2=two.hom_bound, worst=worst),
        claim("not-linear-in-x", "the same f is not linear in x: the midpoint test f(½(x + x')) = ½(f(x) + f(x')) fails",
              min(one.midpoint_defect_x, two.midpoint_defect_x) >= 0.01,
              "max |f(½(x + x')) − ½(f(x) + f(x'))| / max|f| = {d1:.3f} (1-D), {d2:.3f} (2-D) ≥ 0.01 (0 for any affine function of x)",
              d1=one.midpoint_defect_x, d2=two.midpoint_defect_x),
        claim("convex-by-proof", "the squared loss is convex in θ, proven from the model's structure",
              one.verdict == "convex" and two.verdict == "convex",
              "check_convexity: 1-D '{v1}', 2-D '{v2}' — {proof} (affine-declaration check {dc:.1e})",
              plain="The model is linear in θ and the squared error is convex in the model's output, so the loss is convex in θ.",
              v1=one.verdict, v2=two.verdict, proof=one.proof, dc=max(one.declaration_check, two.declaration_check)),
        claim("normal-equations", "the closed-form fit solves the normal equations: the residual is orthogonal to every feature",
              max(one.normal_equations, two.normal_equations) <= 1e-10,
              "max_m |mean((f − y)·φ_m)| / (rms(y)·rms(φ_m)) = {r1:.1e} (1-D, cond(Φ) = {c1:.1e}), {r2:.1e} "
              "(2-D, cond(Φ) = {c2:.1e}) ≤ 1e-10",
              plain="At the fit, the leftover errors are uncorrelated with every feature, so no feature could reduce them further.",
              r1=one.normal_equations, c1=one.condition, r2=two.normal_equations, c2=two.condition),
    )


EXPERIMENT = from_argument("linear-in-parameters", settings=LinearInParametersSettings, quick=QUICK, measure=measure, claims=claims)
