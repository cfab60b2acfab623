"""Experiment 8: depth — an MLP and a deep linear net are non-convex; the culprit is the curvature term H − GGN.

For L(θ) = (1/n) Σ_i ℓ(z_i(θ)) the chain rule splits the Hessian (Schraudolph 2002; Martens 2020):

    ∇²L = Jᵀ H_ℓ J  +  Σ_i (∂ℓ/∂z_i) ∇²z_i,     J = ∂z/∂θ,  H_ℓ = ∂²ℓ/∂z².
          └ GGN ┘      └ H − GGN: curvature of the model in θ ┘

The Gauss–Newton part is positive semi-definite whenever ℓ is convex in z (squared loss). The second
part vanishes identically when z is affine in θ — polynomial bases, random features, a linearized
network — so there H = GGN ⪰ 0 everywhere and the loss is convex. A network that learns its features has
∇²z_i ≠ 0, and this term can carry H below zero. A deep *linear* net z = W₂W₁W₀x + … is linear in x but
multilinear in (W₀, W₁, W₂): ∇²z_i ≠ 0 and the loss is still non-convex (Baldi & Hornik 1989; Kawaguchi 2016).

Measured: certified chord witnesses (``check_convexity``), the extreme Hessian eigenvalues with their
residual bounds (``curvature.eigs``, thick-restart Lanczos), the spectral density of H and of the GGN by
stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019), and ‖H − GGN‖_F / ‖H‖_F
(``curvature.nonlinearity_curvature``; dense for small p, else ``curvature.frobenius_norm``), at the
initial and the trained point, against a random-features model and the linearized MLP on the same data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import curvature, data
from ..convexity import check_convexity
from ..fit import train
from ..models import ACTIVATIONS, MLP, Linearized, RandomFeatures
from ..problem import Problem
from ._nonconvex import witness_claim, witness_numbers
from .base import Claim, Measured, claim
from .settings import Integer, Integers, OneOf, Real, Rule, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "DepthMeasured", "DepthSettings", "claims", "curvature_summary", "end_to_end_map", "measure"]


DENSE_MAX_PARAMS = 1024  # up to this p the Frobenius norms are exact (p operator products); beyond, Hutchinson-type estimates
LANCZOS_RESOLUTION = 1e-6  # eigs' default (gap criterion, tol 1e-12) drives residuals to √tol·‖H‖: eigenvalues resolved to 1e-6·‖H‖
LINEARIZED = "linearized MLP (at the trained weights)"
WIDTHS = Integers(1, min_len=3)


@dataclass(frozen=True)
class DepthSettings(Settings):
    """Settings of the depth experiment (defaults: the full run)."""

    n: int = setting(128, Integer(2), "training examples from a random two-layer tanh teacher (inputs N(0, I), d_in = widths[0])")
    teacher_width: int = setting(4, Integer(1), "the teacher's hidden units")
    noise: float = setting(0.05, Real(0), "standard deviation of the label noise")
    widths: tuple[int, ...] = setting((2, 16, 16, 1), WIDTHS, "the MLP's layer widths: d_in, hidden…, 1 (at least one hidden layer)")
    activation: str = setting("tanh", OneOf(tuple(ACTIVATIONS)), "the MLP's activation (identity makes it a deep linear net too)")
    linear_widths: tuple[int, ...] = setting((2, 4, 4, 1), WIDTHS,
                                             "the deep linear net's widths: d_in, hidden…, 1 (at least one hidden layer)")
    train_steps: int = setting(1500, Integer(1), "Adam steps training the MLP")
    lr: float = setting(0.01, Real(0, low_open=True), "Adam's learning rate")
    budget: int = setting(600, Integer(30), "chords the witness search may evaluate per network")
    probes: int = setting(8, Integer(1), "stochastic Lanczos quadrature probes per density")
    lanczos_steps: int = setting(40, Integer(2), "Lanczos steps per probe")

    RULES = (
        Rule(lambda s: s.widths[-1] == 1, "widths to end with 1 (one output unit)", ("widths",), {"widths": (2, 16, 2)}),
        Rule(lambda s: s.linear_widths[-1] == 1, "linear_widths to end with 1 (one output unit)", ("linear_widths",),
             {"linear_widths": (2, 4, 3)}),
        Rule(lambda s: s.linear_widths[0] == s.widths[0], "linear_widths[0] == widths[0] (the same d_in)",
             ("linear_widths", "widths"), {"linear_widths": (3, 4, 1)}),
    )


QUICK = {"train_steps": 400, "budget": 300, "probes": 4, "lanczos_steps": 30}


def curvature_summary(problem: Problem, theta: torch.Tensor, *, seed: int) -> dict:
    """Extreme Hessian eigenvalues with bounds, and ‖H − GGN‖_F / ‖H‖_F at θ.

    Returns a dict with ``min``, ``min_bound``, ``max``, ``max_bound`` (Lanczos, rigorous residual
    bounds), ``nonlinear_fro`` = ‖H − GGN‖_F, ``hessian_fro`` = ‖H‖_F, ``ratio``, and ``method``
    ("dense" for p ≤ DENSE_MAX_PARAMS, else "estimate": ``curvature.frobenius_norm`` with 64 probes).
    """
    res = curvature.eigs(problem, theta, k=2, which="both", seed=seed)
    out = {"min": float(res.values[0]), "min_bound": float(res.bounds[0]), "max": float(res.values[-1]), "max_bound": float(res.bounds[-1])}
    hess, nonlin = curvature.HessianOperator(problem, theta), curvature.nonlinearity_curvature(problem, theta)
    if problem.n_params <= DENSE_MAX_PARAMS:
        n_fro, h_fro, method = float(torch.linalg.norm(nonlin.to_dense())), float(torch.linalg.norm(hess.to_dense())), "dense"
    else:
        n_fro = curvature.frobenius_norm(nonlin, samples=64, seed=seed).estimate
        h_fro = curvature.frobenius_norm(hess, samples=64, seed=seed).estimate
        method = "estimate"
    return out | {"nonlinear_fro": n_fro, "hessian_fro": h_fro, "ratio": n_fro / h_fro if h_fro > 0 else math.nan, "method": method}


def end_to_end_map(model: MLP, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, c) with f(x) = A x + c for an MLP with identity activations: A = W_L ⋯ W_0, c = Σ_l W_L ⋯ W_{l+1} b_l.

    Example:
        >>> net = MLP([2, 3, 3, 1], "identity")
        >>> params = net.init(seed=0)
        >>> A, c = end_to_end_map(net, params)
        >>> X = torch.linspace(-1, 1, 8, dtype=torch.float64).reshape(4, 2)
        >>> A.shape, bool(torch.allclose(net.apply(params, X), (X @ A.T + c)[:, 0]))
        (torch.Size([1, 2]), True)
    """
    A, c = params["W0"], params["b0"]
    for i in range(1, model.depth):
        A, c = params[f"W{i}"] @ A, params[f"W{i}"] @ c + params[f"b{i}"]
    return A, c


@dataclass(frozen=True)
class DepthMeasured(Measured):
    """What the depth experiment measured.

    A curvature summary (:func:`curvature_summary`) is a dict min, min_bound, max, max_bound, nonlinear_fro,
    hessian_fro, ratio, method; a witness is :func:`~losslab.experiments._nonconvex.witness_numbers`.
    """

    mlp_witness: dict  # the MLP's certified chord at its initial point
    deep_linear_witness: dict
    deep_linear_defect: float  # max |f(X) − (XAᵀ + c)| / max |f(X)|, A = W_L⋯W_0
    mlp_init: dict  # curvature summaries
    mlp_trained: dict
    deep_linear_init: dict
    fixed_features: dict  # model name → curvature summary
    fixed_feature_verdicts: dict  # model name → check_convexity verdict
    spectral_moments: dict  # "init H", "trained GGN", … → [first, second moment] of the SLQ density
    negative_mass: dict  # the same keys → SLQ mass below 0
    densities: dict[str, dict[str, torch.Tensor]]  # the same keys → {"grid": (G,), "density": (G,)} (the SLQ density, for the figure)
    widths: list[int]
    linear_widths: list[int]
    activation: str
    mlp_params: int
    deep_linear_params: int
    fixed_feature_params: dict  # model name → parameters


def measure(settings: DepthSettings, seed: int, say) -> DepthMeasured:
    """Witnesses, extreme eigenvalues, spectral densities and the size of H − GGN for an MLP, a deep linear net and fixed-feature models."""
    s = settings
    X, y = data.teacher(s.n, d_in=s.widths[0], width=s.teacher_width, noise=s.noise, seed=seed)
    mlp, deep_linear = MLP(list(s.widths), s.activation), MLP(list(s.linear_widths), "identity")
    problem, linear_problem = Problem(mlp, X, y), Problem(deep_linear, X, y)
    theta0, linear0 = problem.init(seed), linear_problem.init(seed)

    say("witness search: MLP and deep linear net")
    mlp_report = check_convexity(problem, at=theta0, seed=seed, budget=s.budget, train_steps=0, by_group=False)
    linear_report = check_convexity(linear_problem, at=linear0, seed=seed, budget=s.budget, train_steps=0, by_group=False)
    mlp_witness, lin_witness = witness_numbers(mlp_report, problem), witness_numbers(linear_report, linear_problem)
    A, c = end_to_end_map(deep_linear, linear_problem.unflatten(linear0))
    out = linear_problem.output(linear0)
    linear_defect = float((out - (X @ A.T + c)[:, 0]).abs().max() / out.abs().max())

    say(f"training the MLP ({s.train_steps} Adam steps)")
    trained = train(problem, optimizer="adam", lr=s.lr, steps=s.train_steps, seed=seed, theta0=theta0).theta

    say("Hessian extremes and ‖H − GGN‖ at init and trained points; fixed-feature models")
    at_init, at_trained = curvature_summary(problem, theta0, seed=seed), curvature_summary(problem, trained, seed=seed)
    at_linear = curvature_summary(linear_problem, linear0, seed=seed)
    features = Problem(RandomFeatures(s.widths[0], s.widths[1], s.activation, seed=seed), X, y)
    linearized = Problem(Linearized(mlp, problem.unflatten(theta0)), X, y)
    fixed_problems = {"random features": (features, features.init(seed)), LINEARIZED: (linearized, trained)}
    fixed = {name: curvature_summary(p, theta, seed=seed) for name, (p, theta) in fixed_problems.items()}
    fixed_verdicts = {name: check_convexity(p, seed=seed).verdict for name, (p, _) in fixed_problems.items()}

    say(f"spectral densities ({s.probes} probes × {s.lanczos_steps} Lanczos steps)")
    densities = {}
    for where, theta in (("init", theta0), ("trained", trained)):
        for which, op in (("H", curvature.HessianOperator(problem, theta)), ("GGN", curvature.GGNOperator(problem, theta))):
            densities[f"{where} {which}"] = curvature.spectral_density(op, probes=s.probes, steps=s.lanczos_steps, seed=seed)
    return DepthMeasured(
        mlp_witness=mlp_witness, deep_linear_witness=lin_witness, deep_linear_defect=linear_defect, mlp_init=at_init,
        mlp_trained=at_trained, deep_linear_init=at_linear, fixed_features=fixed, fixed_feature_verdicts=fixed_verdicts,
        spectral_moments={k: [d.moment(1), d.moment(2)] for k, d in densities.items()},
        negative_mass={k: float(d.cdf(0.0)) for k, d in densities.items()},
        densities={k: {"grid": d.grid, "density": d.density} for k, d in densities.items()},
        widths=list(s.widths), linear_widths=list(s.linear_widths), activation=s.activation, mlp_params=problem.n_params,
        deep_linear_params=linear_problem.n_params,
        fixed_feature_params={name: p.n_params for name, (p, _) in fixed_problems.items()},
    )


WITNESS_PLAIN = ("At a point between two parameter vectors the loss lies above the straight line joining their losses, by more "
                 "than rounding errors could explain: a convex loss never does that.")
LANCZOS_PLAIN = ("Lanczos finds the extreme eigenvalues of the Hessian from Hessian–vector products alone; the ± is a guaranteed "
                 "bound on its error.")


def claims(settings: DepthSettings, m: DepthMeasured) -> tuple[Claim, ...]:
    """Both networks are certified non-convex (the deep linear one while linear in x); negative curvature at init;
    a sizeable H − GGN for the MLP, none for the fixed-feature models."""
    at_init, at_trained, rf, lin = m.mlp_init, m.mlp_trained, m.fixed_features["random features"], m.fixed_features[LINEARIZED]
    return (
        witness_claim("mlp-non-convex", f"the MLP {m.widths} ({m.activation}) has a non-convex loss (certified chord)", m.mlp_witness),
        claim(
            "deep-linear-is-linear-in-x", "the deep linear net is a linear function of its input x: f(x) = (W_L⋯W_0)x + c",
            m.deep_linear_defect <= 1e-12,
            "max |f(X) − (XAᵀ + c)| / max |f(X)| = {defect:.1e} ≤ 1e-12 with A = W_L⋯W_0",
            defect=m.deep_linear_defect,
        ),
        witness_claim("deep-linear-non-convex", f"the deep linear net {m.linear_widths} has a non-convex loss too (certified chord)",
                      m.deep_linear_witness),
        claim(
            "negative-curvature-at-init",
            "at the MLP's initial point the Hessian has a negative eigenvalue (negative curvature, a saddle-like direction)",
            at_init["min"] + at_init["min_bound"] < 0,
            "Lanczos λ_min = {lo:.4g} ± {b:.1e} (rigorous residual bound) < 0; λ_max = {hi:.4g}",
            plain=LANCZOS_PLAIN + " Even at the top of that error band the smallest eigenvalue is below 0.",
            lo=at_init["min"], b=at_init["min_bound"], hi=at_init["max"],
        ),
        claim(
            "curvature-term-sizeable",
            "the MLP's curvature term H − GGN (the model's own curvature in θ) is a sizeable part of its Hessian",
            at_init["ratio"] > 1e-3,
            "‖H − GGN‖_F / ‖H‖_F = {ratio:.3g} > 1e-3 at init ({method}); {trained:.3g} at the trained point, where the residuals "
            "that weight it are small",
            plain="The part of the Hessian that comes from the network bending in its parameters is a visible fraction of the "
                  "whole (sizes measured as root-sum-of-squares of the matrix entries).",
            ratio=at_init["ratio"], method=at_init["method"], trained=at_trained["ratio"],
        ),
        claim(
            "fixed-features-h-equals-ggn",
            "fixed-feature models on the same data have no curvature term: H = GGN, positive semi-definite",
            all(f["nonlinear_fro"] == 0.0 and f["min"] - f["min_bound"] >= -LANCZOS_RESOLUTION * f["max"]
                for f in m.fixed_features.values()),
            "‖H − GGN‖_F = {rf:g} (random features), {lin:g} (linearized MLP), exactly; λ_min = {rf_min:.2g} ± {rf_b:.1g}, "
            "{lin_min:.2g} ± {lin_b:.1g}: no eigenvalue below 0 beyond Lanczos' resolution 1e-6·λ_max",
            plain=LANCZOS_PLAIN + " For models whose features are fixed the Hessian is exactly its Gauss–Newton part, and no "
                  "eigenvalue is below 0 by more than that error.",
            rf=rf["nonlinear_fro"], lin=lin["nonlinear_fro"], rf_min=rf["min"], rf_b=rf["min_bound"], lin_min=lin["min"],
            lin_b=lin["min_bound"],
        ),
    )


EXPERIMENT = from_argument("depth", settings=DepthSettings, quick=QUICK, measure=measure, claims=claims)
