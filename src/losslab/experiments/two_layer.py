"""Experiment 7: the two-layer network v·σ(Wx + b) — convex in v alone, non-convex in (W, b, v).

With the hidden layer (W, b) fixed, f(x) = Σ_i v_i σ(w_i·x + b_i) is linear in v: the random-features
model (Rahimi & Recht 2007), whose squared loss L(v) = (1/n)‖Φv − y‖² is a convex quadratic with
Φ_ij = σ(w_j·x_i + b_j). Letting (W, b) move makes f nonlinear in the parameters jointly — the product
v_i·σ(w_i·x + b_i) is not affine in (w_i, b_i, v_i) — and the loss is no longer convex.

Checked here:

* ``check_convexity(problem, groups=["v"])`` proves convexity in v (affine model ∘ convex loss);
* ``check_convexity(problem)`` finds a chord a, b, λ with L(λa + (1−λ)b) > λL(a) + (1−λ)L(b),
  re-verified in float64 against a rounding bound (``witness.verify``);
* a plane slice L(θ* + α·d₁ + β·d₂) through the trained net θ*, filter-normalised random directions
  (Li et al. 2018), next to the same kind of slice of the random-features model built from the net's
  *initial* hidden layer, trained by the same optimiser from the same start. The latter is an exact
  quadratic q(α, β) with a positive semi-definite 2 × 2 Hessian (``landscape.quadratic``): a bowl; the
  net's slice has negative second differences (``landscape.discrete_convexity``, confirmed in float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import data
from .._checks import LosslabError, choice, finite_float, positive_int
from ..convexity import check_convexity
from ..fit import least_squares_result, train
from ..landscape import discrete_convexity, plane
from ..models import ACTIVATIONS, RandomFeatures, TwoLayer
from ..problem import Problem
from ..random_streams import child_seed
from ._legacy import Outcome, Table, claim, legacy_experiment, plotly_figure, png_figure
from ._nonconvex import contour, proof_claim, surface, witness_claim

__all__ = ["EXPERIMENT", "QUICK", "Settings", "run"]


@dataclass(frozen=True)
class Settings:
    """Settings of the two-layer experiment.

    Attributes:
        n: training examples of the noisy cubic y = x³ − x + noise·ε.
        noise: the noise level.
        width: hidden units of the net (and random features).
        activation: σ, one of relu, tanh, sigmoid, identity.
        train_steps: Adam steps for the net and for the random-features model.
        lr: Adam's learning rate.
        budget: chords the witness search may evaluate (the per-group searches use a quarter each).
        steps: grid points per axis of the plane slices.
        span: half-width of the slices, in units of the filter-normalised directions.
    """

    n: int = 64
    noise: float = 0.1
    width: int = 16
    activation: str = "tanh"
    train_steps: int = 2000
    lr: float = 0.01
    budget: int = 1000
    steps: int = 41
    span: float = 1.0

    def __post_init__(self) -> None:
        positive_int("n", self.n, minimum=2)
        finite_float("noise", self.noise, nonnegative=True)
        positive_int("width", self.width)
        choice("activation", self.activation, ACTIVATIONS)
        positive_int("train_steps", self.train_steps)
        finite_float("lr", self.lr, positive=True)
        positive_int("budget", self.budget, minimum=30)
        positive_int("steps", self.steps, minimum=5)
        finite_float("span", self.span, positive=True)
        if self.steps > 81:
            raise LosslabError(f"expected steps <= 81 (the slices are drawn and embedded in the report), got steps={self.steps}")


QUICK = {"train_steps": 500, "budget": 300, "steps": 25}


def run(settings: Settings, seed: int, say) -> Outcome:
    """Prove convexity in v, certify non-convexity in (W, b, v), and slice the trained net and its random features."""
    s = settings
    X, y = data.cubic(s.n, noise=s.noise, seed=seed)
    net = TwoLayer(1, s.width, s.activation)
    problem = Problem(net, X, y)
    theta0 = problem.init(seed)
    params0 = problem.unflatten(theta0)

    say("verdicts: in v alone, and in (W, b, v)")
    in_v = check_convexity(problem, groups=["v"], at=theta0, seed=seed)
    joint = check_convexity(problem, at=theta0, seed=seed, budget=s.budget, train_steps=0, by_group=True)
    claims = [proof_claim("with W, b fixed the loss is convex in v (fixed features: the random-features model)", in_v)]
    joint_claim, witness = witness_claim("jointly in (W, b, v) the loss is not convex (certified chord)", joint, problem)
    claims.append(joint_claim)

    say(f"training the net and its random-features model ({s.train_steps} Adam steps each)")
    net_run = train(problem, optimizer="adam", lr=s.lr, steps=s.train_steps, seed=seed, theta0=theta0)
    features = RandomFeatures(1, s.width, s.activation, W=params0["W"], b=params0["b"])
    rf_problem = Problem(features, X, y)
    rf_run = train(rf_problem, optimizer="adam", lr=s.lr, steps=s.train_steps, seed=seed, theta0={"v": params0["v"]})
    rf_best = least_squares_result(rf_problem)

    say(f"plane slices ({s.steps}×{s.steps})")
    net_slice = plane(problem, net_run.theta, steps=s.steps, span=s.span, seed=child_seed(seed, "directions", 1))
    rf_slice = plane(rf_problem, rf_run.theta, steps=s.steps, span=s.span, seed=child_seed(seed, "directions", 2))
    net_dc = discrete_convexity(net_slice, problem=problem)
    rf_dc = discrete_convexity(rf_slice, problem=rf_problem)
    coef = rf_slice.coefficients if rf_slice.coefficients is not None else torch.full((6,), float("nan"), dtype=torch.float64)
    _, g1, g2, h11, h12, h22 = coef.tolist()
    hess_min = float(torch.linalg.eigvalsh(torch.tensor([[h11, h12], [h12, h22]], dtype=torch.float64))[0])
    hess_scale = max(abs(h11), abs(h22))

    claims.append(claim(
        "the random-features slice is an exact convex quadratic: no negative second difference beyond rounding",
        rf_slice.method == "exact quadratic" and rf_dc.clean and hess_min >= -1e-12 * hess_scale,
        "method “{method}”; {violations} of {checked} second differences < −tol (rtol {rtol:g}·ε); "
        "smallest eigenvalue of the slice's 2×2 Hessian {hmin:.3g} ≥ −1e-12·{hscale:.3g}",
        method=rf_slice.method, violations=rf_dc.violations, checked=rf_dc.checked, rtol=rf_dc.rtol, hmin=hess_min, hscale=hess_scale,
    ))
    claims.append(claim(
        "the trained net's slice is not convex: negative second differences, confirmed in float64",
        net_dc.violations > 0,
        "{violations} of {checked} second differences < −tol (confirmed in float64); most negative D = {worst:.3g} "
        "along {axis} at (α, β) = ({a:.2f}, {b:.2f})",
        violations=net_dc.violations, checked=net_dc.checked, worst=net_dc.most_negative,
        axis=net_dc.most_negative_axis or "-", a=(net_dc.most_negative_at or (float("nan"),) * 2)[0],
        b=(net_dc.most_negative_at or (float("nan"),) * 2)[1],
    ))

    per_group = [(g, r.verdict, r.proof.rule if r.proof else (r.witness.source if r.witness else "-")) for g, r in joint.by_group.items()]
    tables = (
        Table("Verdict per parameter group, the others held at the initial point", ("group", "verdict", "evidence"), tuple(per_group)),
        Table(
            "Training losses: both models trained by the same Adam run from the same start; the random-features loss is convex, so its "
            "closed-form minimum is its global minimum",
            ("model", "parameters", "initial loss", "trained loss", "closed-form minimum"),
            (
                ("two-layer net (W, b, v)", problem.n_params, float(net_run.losses[0]), net_run.final_loss, "-"),
                ("random features (v)", rf_problem.n_params, float(rf_run.losses[0]), rf_run.final_loss, rf_best.loss),
            ),
        ),
    )
    figures = _figures(net_slice, rf_slice, net_dc, rf_dc, s)
    numbers = {
        "proof_rule": in_v.proof.rule if in_v.proof else None,
        "witness": witness,
        "by_group": {g: v for g, v, _ in per_group},
        "net_initial_loss": float(net_run.losses[0]),
        "net_trained_loss": net_run.final_loss,
        "rf_trained_loss": rf_run.final_loss,
        "rf_least_squares_loss": rf_best.loss,
        "net_slice": {"violations": net_dc.violations, "checked": net_dc.checked, "most_negative": net_dc.most_negative,
                      "min_loss": float(net_slice.losses.min()), "max_loss": float(net_slice.losses.max())},
        "rf_slice": {"method": rf_slice.method, "violations": rf_dc.violations, "checked": rf_dc.checked,
                     "coefficients": coef.tolist(),
                     "hessian_min_eigenvalue": hess_min, "gradient": [g1, g2]},
    }
    return Outcome(numbers=numbers, claims=tuple(claims), figures=figures, tables=tables)


def _figures(net_slice, rf_slice, net_dc, rf_dc, s: Settings):
    from ..report.figures import subplots


    fig, (left, right) = subplots(1, 2, figsize=(9, 3.6))
    contour(left, net_slice, title=f"trained net v·{s.activation}(Wx+b)", discrete=net_dc)
    contour(right, rf_slice, title="its initial features, frozen (random features)", discrete=rf_dc)
    fig.subplots_adjust(wspace=0.3)
    pngs = png_figure(
        fig, "slices",
        "Left: the loss on a random plane (filter-normalised directions) through the trained two-layer net; red dots mark "
        "negative second differences, confirmed in float64 — the surface bends down there. Right: the same kind of plane "
        "through the random-features model that keeps the net's initial hidden layer (trained the same way): an exact "
        "quadratic bowl with no red dots.",
    )
    surf = plotly_figure(
        surface(net_slice, title="trained two-layer net: loss on a random plane"), "surface",
        "The left panel's slice in 3-D: drag to rotate. Look for ridges and saddles — a convex function could have none.",
    )
    return (pngs, surf)


EXPERIMENT = legacy_experiment(
    name="two-layer",
    number=7,
    title="Two-layer network v·σ(Wx+b)",
    intro=(
        "A two-layer network with its hidden layer frozen is the random-features model: linear in v, so its squared loss "
        "is a convex quadratic. Let the hidden layer (W, b) learn as well and the output v·σ(Wx+b) is a product of "
        "parameters, nonlinear in (W, b, v) jointly. This experiment proves the first loss convex and certifies the second "
        "non-convex, and shows both landscapes on a random plane."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
