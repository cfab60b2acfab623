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

from .._checks import LosslabError, finite_float, positive_int
from ..convexity import check_convexity
from ..fit import least_squares_result
from ..landscape import plane
from ..models import Polynomial
from ..problem import Problem
from ..random_streams import child_seed, generator
from ._legacy import Outcome, Table, claim, legacy_experiment, plotly_figure, png_figure
from ._polyfit import CUBIC, check_truth, draw, polyval, two_panels

__all__ = ["EXPERIMENT", "QUICK", "Settings", "linearity_errors", "midpoint_defect", "run"]

UNIT_ROUNDOFF = 2.0**-53


@dataclass(frozen=True)
class Settings:
    """Settings of the linear-in-parameters experiment.

    Attributes:
        n: examples of the 1-D problem (noisy ``truth`` on x ~ Uniform(−1, 1)).
        degree: degree of the 1-D polynomial basis.
        n_2d: examples of the 2-D problem.
        degree_2d: total degree of the 2-D polynomial basis.
        noise: standard deviation of the label noise (both problems).
        truth: the 1-D target's coefficients, constant term first (default x³ − x).
        steps: grid points per axis of the loss surface on a plane through θ*.
    """

    n: int = 50
    degree: int = 5
    n_2d: int = 100
    degree_2d: int = 3
    noise: float = 0.1
    truth: tuple[float, ...] = CUBIC
    steps: int = 41

    def __post_init__(self) -> None:
        positive_int("n", self.n, minimum=2)
        positive_int("degree", self.degree, minimum=2)
        positive_int("n_2d", self.n_2d, minimum=2)
        positive_int("degree_2d", self.degree_2d, minimum=2)
        finite_float("noise", self.noise, nonnegative=True)
        check_truth(self.truth)
        positive_int("steps", self.steps, minimum=5)
        if self.degree > 20 or self.degree_2d > 10:
            raise LosslabError(f"expected degree <= 20 and degree_2d <= 10, got degree={self.degree}, degree_2d={self.degree_2d}")
        if self.steps > 61:
            raise LosslabError(f"expected steps <= 61 (the surface is embedded in the report), got steps={self.steps}")


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


def _figure_basis(model: Polynomial, X: torch.Tensor, y: torch.Tensor, theta: torch.Tensor, truth: tuple[float, ...]):
    grid = torch.linspace(-1, 1, 201, dtype=torch.float64)
    fig, left, right = two_panels("the fixed features $φ_k(x) = x^k$", "$f(x; θ^*) = Σ_k θ^*_k x^k$: curved in x")
    feats = model.features(grid[:, None])
    for k in range(model.n_params):
        left.plot(grid, feats[:, k], lw=1.5, label=f"$x^{{{k}}}$")
    left.set(xlabel="x")
    left.legend(fontsize=7, ncol=2)
    right.scatter(X[:, 0], y, s=10, color="0.5", label="data")
    right.plot(grid, polyval(truth, grid), "k--", lw=1, label="truth")
    right.plot(grid, model.apply({"coef": theta}, grid[:, None]), color="C3", lw=2, label="least-squares fit")
    right.set(xlabel="x")
    right.legend(fontsize=8)
    return fig


def _surface(slice_) -> object:
    import plotly.graph_objects as go

    fig = go.Figure(go.Surface(x=slice_.alphas.numpy(), y=slice_.betas.numpy(), z=slice_.losses.T.numpy(), colorscale="Viridis"))
    fig.update_layout(scene={"xaxis_title": "α", "yaxis_title": "β", "zaxis_title": "loss"}, margin={"l": 0, "r": 0, "t": 30, "b": 0},
                      title="L(θ* + α·d₁ + β·d₂), polynomial basis")
    return fig


def run(settings: Settings, seed: int, say) -> Outcome:
    """Check linearity in θ, nonlinearity in x, the convexity proof and the normal equations (1-D and 2-D)."""
    X1, y1 = draw(settings.n, settings.truth, settings.noise, child_seed(seed, "data", 1))
    X2, y2 = _data_2d(settings.n_2d, settings.noise, generator(seed, "data", 2))
    cases = {"1-D": (Polynomial(1, settings.degree), X1, y1), "2-D": (Polynomial(2, settings.degree_2d), X2, y2)}
    numbers: dict = {}
    rows, problems = [], {}
    for k, (label, (model, X, y)) in enumerate(cases.items()):
        say(f"{label}: {model.describe()}")
        problem = problems[label] = Problem(model, X, y)
        fitted = least_squares_result(problem)
        probe_seed = child_seed(seed, "probes", k)
        lin = linearity_errors(model, X, probe_seed)
        report = check_convexity(problem, seed=seed)
        numbers[label] = {
            "model": model.describe(), "n": problem.n, "p": model.n_params, **lin,
            "midpoint_defect_x": midpoint_defect(model, 3 * model.init(seed=probe_seed)["coef"], X),
            "verdict": report.verdict, "proof": report.explanation(),
            "declaration_check": report.proof.declaration_check if report.proof else math.nan,
            "normal_equations": normal_equations_residual(problem, fitted.theta),
            "theta": fitted.theta, "rank": fitted.rank, "train_mse": fitted.residual,
            "condition": float(torch.linalg.cond(fitted.features)),
        }
        rows.append((label, model.describe(), lin["add"], lin["add_bound"], lin["hom"], lin["hom_bound"],
                     numbers[label]["normal_equations"], report.verdict))
    one, two = numbers["1-D"], numbers["2-D"]
    worst = max(r[kind] / r[f"{kind}_bound"] for r in (one, two) for kind in ("add", "hom"))
    claims = (
        claim("f(x; θ) is linear in θ: f(θ + θ') = f(θ) + f(θ') and f(cθ) = c·f(θ) on every data point",
              worst <= 1,
              "1-D: additivity {a1:.1e} (bound {ab1:.1e}), homogeneity {h1:.1e} (bound {hb1:.1e}); 2-D: additivity {a2:.1e} "
              "(bound {ab2:.1e}), homogeneity {h2:.1e} (bound {hb2:.1e}); worst error/bound = {worst:.2f} ≤ 1 "
              "(float64 rounding bound 4(p + 1)u·|φ|ᵀ|θ|)",
              a1=one["add"], ab1=one["add_bound"], h1=one["hom"], hb1=one["hom_bound"],
              a2=two["add"], ab2=two["add_bound"], h2=two["hom"], hb2=two["hom_bound"], worst=worst),
        claim("the same f is not linear in x: the midpoint test f(½(x + x')) = ½(f(x) + f(x')) fails",
              min(one["midpoint_defect_x"], two["midpoint_defect_x"]) >= 0.01,
              "max |f(½(x + x')) − ½(f(x) + f(x'))| / max|f| = {d1:.3f} (1-D), {d2:.3f} (2-D) ≥ 0.01 (0 for any affine function of x)",
              d1=one["midpoint_defect_x"], d2=two["midpoint_defect_x"]),
        claim("the squared loss is convex in θ, proven from the model's structure",
              one["verdict"] == "convex" and two["verdict"] == "convex",
              "check_convexity: 1-D '{v1}', 2-D '{v2}' — {proof} (affine-declaration check {dc:.1e})",
              v1=one["verdict"], v2=two["verdict"], proof=one["proof"], dc=max(one["declaration_check"], two["declaration_check"])),
        claim("the closed-form fit solves the normal equations: the residual is orthogonal to every feature",
              max(one["normal_equations"], two["normal_equations"]) <= 1e-10,
              "max_m |mean((f − y)·φ_m)| / (rms(y)·rms(φ_m)) = {r1:.1e} (1-D, cond(Φ) = {c1:.1e}), {r2:.1e} "
              "(2-D, cond(Φ) = {c2:.1e}) ≤ 1e-10",
              r1=one["normal_equations"], c1=one["condition"], r2=two["normal_equations"], c2=two["condition"]),
    )
    model1, problem1 = cases["1-D"][0], problems["1-D"]
    theta1 = problem1.as_theta(one["theta"])
    say("loss surface on a plane through θ*")
    slice_ = plane(problem1, theta1, steps=settings.steps, seed=seed)
    numbers["plane"] = {"method": slice_.method, "min": float(slice_.losses.min()), "max": float(slice_.losses.max())}
    figures = (
        png_figure(_figure_basis(model1, X1, y1, theta1, settings.truth), "basis-and-fit",
                   f"Left: the fixed features 1, x, …, x^{settings.degree} — curved in x, and never changed by training. Right: the "
                   "least-squares fit Σθ*_k x^k to the noisy data: a curve in x built as a linear combination of the features."),
        plotly_figure(_surface(slice_), "loss-bowl",
                      "The squared loss on a random plane through the fit θ* (filter-normalised directions): a paraboloid bowl with "
                      "its bottom at θ* — the loss is a convex quadratic in θ. Drag to rotate."),
    )
    table = Table("Linearity in θ (errors against float64 rounding bounds) and the normal equations",
                  ("problem", "model", "additivity", "bound", "homogeneity", "bound", "normal eq.", "verdict"), tuple(rows))
    return Outcome(numbers=numbers, claims=claims, figures=figures, tables=(table,))


EXPERIMENT = legacy_experiment(
    name="linear-in-parameters",
    number=1,
    title="Linear in parameters, nonlinear in x",
    intro=(
        "A polynomial f(x; θ) = Σ θ_k x^k is a curved function of x, but a linear function of its coefficients θ: the features "
        "x^k are fixed, and θ only mixes them. Because f is linear in θ, the squared loss is a convex quadratic in θ with a "
        "closed-form minimiser, which makes the residual orthogonal to every feature (the normal equations)."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
