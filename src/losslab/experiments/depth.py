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
from .._checks import LosslabError, choice, finite_float, positive_int
from ..convexity import check_convexity
from ..fit import train
from ..models import ACTIVATIONS, MLP, Linearized, RandomFeatures
from ..problem import Problem
from ._legacy import Outcome, Table, claim, legacy_experiment, png_figure
from ._nonconvex import witness_claim, witness_numbers

__all__ = ["EXPERIMENT", "QUICK", "Settings", "run"]

DENSE_MAX_PARAMS = 1024  # up to this p the Frobenius norms are exact (p operator products); beyond, Hutchinson-type estimates
LANCZOS_RESOLUTION = 1e-6  # eigs' default (gap criterion, tol 1e-12) drives residuals to √tol·‖H‖: eigenvalues resolved to 1e-6·‖H‖
LINEARIZED = "linearized MLP (at the trained weights)"


@dataclass(frozen=True)
class Settings:
    """Settings of the depth experiment.

    Attributes:
        n: training examples from a random two-layer tanh teacher (inputs N(0, I), d_in = widths[0]).
        teacher_width: the teacher's hidden units.
        noise: label noise.
        widths: the MLP's layer widths [d_in, h₁, …, 1].
        activation: the MLP's activation (relu, tanh, sigmoid; identity makes it a deep linear net too).
        linear_widths: the deep linear net's widths [d_in, …, 1] (same d_in).
        train_steps: Adam steps training the MLP.
        lr: Adam's learning rate.
        budget: chords the witness search may evaluate per network.
        probes: stochastic Lanczos quadrature probes per density.
        lanczos_steps: Lanczos steps per probe.
    """

    n: int = 128
    teacher_width: int = 4
    noise: float = 0.05
    widths: tuple[int, ...] = (2, 16, 16, 1)
    activation: str = "tanh"
    linear_widths: tuple[int, ...] = (2, 4, 4, 1)
    train_steps: int = 1500
    lr: float = 0.01
    budget: int = 600
    probes: int = 8
    lanczos_steps: int = 40

    def __post_init__(self) -> None:
        positive_int("n", self.n, minimum=2)
        positive_int("teacher_width", self.teacher_width)
        finite_float("noise", self.noise, nonnegative=True)
        for name in ("widths", "linear_widths"):
            w = getattr(self, name)
            if not isinstance(w, tuple) or len(w) < 3 or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in w):
                raise LosslabError(f"expected {name} as >= 3 positive integers [d_in, hidden..., 1] (a hidden layer), got {name}={w!r}")
            if w[-1] != 1:
                raise LosslabError(f"expected {name} to end with one output unit, got {name}={w!r}")
        if self.linear_widths[0] != self.widths[0]:
            raise LosslabError(
                f"expected linear_widths to start with the same d_in as widths ({self.widths[0]}), got linear_widths={self.linear_widths!r}"
            )
        choice("activation", self.activation, ACTIVATIONS)
        positive_int("train_steps", self.train_steps)
        finite_float("lr", self.lr, positive=True)
        positive_int("budget", self.budget, minimum=30)
        positive_int("probes", self.probes)
        positive_int("lanczos_steps", self.lanczos_steps, minimum=2)


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


def run(settings: Settings, seed: int, say) -> Outcome:
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
    mlp_claim = witness_claim("mlp-not-convex", f"the MLP {list(s.widths)} ({s.activation}) has a non-convex loss (certified chord)",
                              mlp_witness)
    lin_claim = witness_claim("deep-linear-not-convex",
                              f"the deep linear net {list(s.linear_widths)} has a non-convex loss too (certified chord)", lin_witness)
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

    claims = [
        mlp_claim,
        claim(
            "the deep linear net is a linear function of its input x: f(x) = (W_L⋯W_0)x + c",
            linear_defect <= 1e-12,
            "max |f(X) − (XAᵀ + c)| / max |f(X)| = {defect:.1e} ≤ 1e-12 with A = W_L⋯W_0",
            defect=linear_defect,
        ),
        lin_claim,
        claim(
            "at the MLP's initial point the Hessian has a negative eigenvalue (negative curvature, a saddle-like direction)",
            at_init["min"] + at_init["min_bound"] < 0,
            "Lanczos λ_min = {lo:.4g} ± {b:.1e} (rigorous residual bound) < 0; λ_max = {hi:.4g}",
            lo=at_init["min"], b=at_init["min_bound"], hi=at_init["max"],
        ),
        claim(
            "the MLP's curvature term H − GGN (the model's own curvature in θ) is a sizeable part of its Hessian",
            at_init["ratio"] > 1e-3,
            "‖H − GGN‖_F / ‖H‖_F = {ratio:.3g} > 1e-3 at init ({method}); {trained:.3g} at the trained point, where the residuals "
            "that weight it are small",
            ratio=at_init["ratio"], method=at_init["method"], trained=at_trained["ratio"],
        ),
        claim(
            "fixed-feature models on the same data have no curvature term: H = GGN, positive semi-definite",
            all(f["nonlinear_fro"] == 0.0 and f["min"] - f["min_bound"] >= -LANCZOS_RESOLUTION * f["max"] for f in fixed.values()),
            "‖H − GGN‖_F = {rf:g} (random features), {lin:g} (linearized MLP), exactly; λ_min = {rf_min:.2g} ± {rf_b:.1g}, "
            "{lin_min:.2g} ± {lin_b:.1g}: no eigenvalue below 0 beyond Lanczos' resolution 1e-6·λ_max",
            rf=fixed["random features"]["nonlinear_fro"], lin=fixed[LINEARIZED]["nonlinear_fro"],
            rf_min=fixed["random features"]["min"], rf_b=fixed["random features"]["min_bound"],
            lin_min=fixed[LINEARIZED]["min"], lin_b=fixed[LINEARIZED]["min_bound"],
        ),
    ]

    say(f"spectral densities ({s.probes} probes × {s.lanczos_steps} Lanczos steps)")
    densities = {}
    for where, theta in (("init", theta0), ("trained", trained)):
        for which, op in (("H", curvature.HessianOperator(problem, theta)), ("GGN", curvature.GGNOperator(problem, theta))):
            densities[where, which] = curvature.spectral_density(op, probes=s.probes, steps=s.lanczos_steps, seed=seed)
    figure = _spectrum_figure(densities, at_init, at_trained, s)

    mlp_name = f"MLP {list(s.widths)} {s.activation}"
    rows = [
        (f"{mlp_name}, init", problem.n_params, mlp_report.verdict, at_init["min"], at_init["max"], at_init["ratio"]),
        (f"{mlp_name}, trained", problem.n_params, "", at_trained["min"], at_trained["max"], at_trained["ratio"]),
        (f"deep linear {list(s.linear_widths)}, init", linear_problem.n_params, linear_report.verdict, at_linear["min"], at_linear["max"],
         at_linear["ratio"]),
        *((name, fixed_problems[name][0].n_params, fixed_verdicts[name], f["min"], f["max"], f["ratio"]) for name, f in fixed.items()),
    ]
    table = Table(
        "Curvature per model: the verdict, the extreme Hessian eigenvalues (Lanczos) and the share of the Hessian that the "
        "model's own curvature contributes",
        ("model and point", "parameters", "verdict", "λ_min", "λ_max", "‖H − GGN‖_F / ‖H‖_F"), tuple(rows),
    )
    numbers = {
        "mlp_witness": mlp_witness, "deep_linear_witness": lin_witness, "deep_linear_defect": linear_defect,
        "mlp_init": at_init, "mlp_trained": at_trained, "deep_linear_init": at_linear, "fixed_features": fixed,
        "fixed_feature_verdicts": fixed_verdicts,
        "spectral_moments": {f"{w} {k}": [d.moment(1), d.moment(2)] for (w, k), d in densities.items()},
        "negative_mass": {f"{w} {k}": float(d.cdf(0.0)) for (w, k), d in densities.items()},
    }
    return Outcome(numbers=numbers, claims=tuple(claims), figures=(figure,), tables=(table,))


def _spectrum_figure(densities: dict, at_init: dict, at_trained: dict, s: Settings):
    from ..report.figures import subplots


    fig, axes = subplots(1, 2, figsize=(9, 3.6))
    for ax, where, extremes in zip(axes, ("init", "trained"), (at_init, at_trained)):
        peak = max(float(densities[where, k].density.max()) for k in ("H", "GGN"))
        floor = peak * 1e-6
        for k, color in (("GGN", "C2"), ("H", "C0")):
            d = densities[where, k]
            ax.semilogy(d.grid.numpy(), d.density.clamp_min(floor).numpy(), color=color, lw=1.4, label=f"{k} (SLQ)")
        ax.plot([extremes["min"], extremes["max"]], [peak * 2] * 2, "|", color="C3", ms=12, label="Lanczos λ_min, λ_max")
        ax.axvline(0.0, color="0.5", lw=1, ls="--")
        ax.set(xlabel="eigenvalue λ", ylabel="density", ylim=(floor, peak * 5),
               title=f"{where}: λ_min = {extremes['min']:.2g}, ‖H−GGN‖/‖H‖ = {extremes['ratio']:.2g}")
        ax.title.set_fontsize(9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(wspace=0.3, bottom=0.25)
    return png_figure(
        fig, "spectrum",
        f"Hessian (blue) and Gauss–Newton (green) spectral densities of the MLP {list(s.widths)} at its initial point (left) and "
        "after training (right), with the extreme eigenvalues from Lanczos (red ticks). The Gauss–Newton part never goes below "
        "0 (dashed line); the mass left of 0 in the Hessian is the model's own curvature H − GGN, which is weighted by the "
        "residuals and so shrinks as the fit improves.",
    )


EXPERIMENT = legacy_experiment(
    name="depth",
    number=8,
    title="Depth: an MLP and a deep linear net",
    intro=(
        "The Hessian of a squared loss is a Gauss–Newton part, never negative, plus the model's own curvature in its "
        "parameters weighted by the residuals. Fixed-feature models have no such term, so their loss is convex; a network "
        "that learns its features does, and it produces negative curvature. A deep linear network is linear in its input "
        "and still non-convex: the product of its weight matrices is not linear in the weights."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
