"""Experiment 9: a linear model through a sigmoid — cross-entropy is convex, the squared loss is not.

ŷ = σ(z), z = w·x + c, is the StackExchange comment thread's example: the model is not linear in
(w, c), yet logistic regression is convex, because its loss is a convex function of the *affine* logit:

    −y log σ(z) − (1 − y) log(1 − σ(z)) = softplus(z) − y·z,   d²/dz² = σ(z)(1 − σ(z)) ≥ 0

(Boyd & Vandenberghe 2004, §7.1). The squared error of the same prediction is not: for y = 1,

    d²/dz² (σ(z) − 1)² = 2σ(z)(1 − σ(z))²(3σ(z) − 1) < 0   wherever σ(z) < 1/3, i.e. z < −ln 2,

(and symmetrically z > ln 2 for y = 0): a concave shoulder on the wrong side of the decision boundary,
which flattens into a plateau as σ saturates — there σ' ≈ e^{−|z|} kills the gradient, while the
cross-entropy keeps a slope ≈ E|x| (its gradient is E[(σ(z) − y)x]).

Checked: ``check_convexity`` proves the cross-entropy convex (logistic-regression rule) and certifies the
squared loss non-convex (a chord re-verified in float64); the (w₁, c) plane through 0 is drawn for both
(for d_in = 1 that is the whole parameter space) with its negative second differences; both losses are
drawn along the witness's line; the two gradients are compared far from the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import data
from ..convexity import check_convexity
from ..fit import train
from ..landscape import discrete_convexity, line, plane
from ..models import Linear
from ..problem import Problem
from ._nonconvex import SliceGrid, proof_claim, proof_numbers, slice_grid, witness_claim, witness_numbers
from .base import Claim, Measured, claim
from .settings import Integer, Real, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "SigmoidLossMeasured", "SigmoidLossSettings", "claims", "measure"]


@dataclass(frozen=True)
class SigmoidLossSettings(Settings):
    """Settings of the sigmoid-loss experiment (defaults: the full run)."""

    n: int = setting(100, Integer(2), "examples x ~ N(0, I) with labels y ~ Bernoulli(σ(w*·x))")
    d_in: int = setting(1, Integer(1), "input dimension (1: the plane slice is the whole (w, c) space)")
    scale: float = setting(3.0, Real(0, low_open=True), "‖w*‖ of the logistic teacher (larger: cleaner labels)")
    budget: int = setting(300, Integer(30), "chords the witness search may evaluate")
    fit_steps: int = setting(300, Integer(1), "gradient-descent steps fitting each loss (to mark the minima)")
    lr: float = setting(1.0, Real(0, low_open=True), "the gradient-descent step size")
    steps: int = setting(41, Integer(5, 81), "grid points per axis of the (w₁, c) plane (it is drawn and embedded in the report)")
    span: float = setting(10.0, Real(0, low_open=True), "half-width of the plane in w₁ and c; the far point is at this distance from 0")


QUICK = {"budget": 100, "fit_steps": 150, "steps": 31}
FAR_RATIO = 0.1  # the plateau claim: ‖∇L_mse‖ < FAR_RATIO·‖∇L_bce‖ far from the fit (theory: ~e^{−span·|x|} vs E|x|)
LOSSES = ("bce", "mse")


@dataclass(frozen=True)
class SigmoidLossMeasured(Measured):
    """What the sigmoid-loss experiment measured: both verdicts, both fits, the (w₁, c) planes and the witness's line."""

    d_in: int
    span: float
    proof_rule: str | None  # the rule that proves the cross-entropy convex
    proof: dict  # that verdict (proof_numbers)
    witness: dict  # the squared loss's certified chord (witness_numbers)
    fit_bce: torch.Tensor  # (w, c) fitted by gradient descent on each loss
    fit_mse: torch.Tensor
    far_point: torch.Tensor  # −span·θ̂_bce/‖θ̂_bce‖: a confidently wrong classifier
    far_grad_norm: dict[str, float]  # loss → ‖∇L‖ at the far point
    point_losses: dict[str, dict[str, float]]  # "fit_bce" / "fit_mse" / "far_point" → loss → its value there
    plane_violations: dict[str, int]  # loss → negative second differences on the (w₁, c) plane
    plane_clean: dict[str, bool]  # loss → no violation and every loss finite
    plane_checked: int
    mse_most_negative: float
    planes: dict[str, SliceGrid]  # loss → its (w₁, c) plane, as drawn
    chord_t: torch.Tensor  # the witness's line (1 − t)a + t·b, extended by half on each side (empty without a witness)
    chord_losses: dict[str, torch.Tensor]  # loss → its values along that line


def measure(settings: SigmoidLossSettings, seed: int, say) -> SigmoidLossMeasured:
    """Prove cross-entropy convex, certify the squared loss non-convex, fit both and slice both on the (w₁, c) plane."""
    s = settings
    X, y = data.logistic_labels(s.n, d_in=s.d_in, scale=s.scale, seed=seed)
    model = Linear(s.d_in, output="sigmoid")
    bce, mse = Problem(model, X, y, loss="bce"), Problem(model, X, y, loss="mse")
    problems = {"bce": bce, "mse": mse}
    theta0 = mse.init(seed)

    say("verdicts: cross-entropy and squared loss")
    bce_report = check_convexity(bce, at=theta0, seed=seed)
    mse_report = check_convexity(mse, at=theta0, seed=seed, budget=s.budget, train_steps=0)
    proof, witness = proof_numbers(bce_report), witness_numbers(mse_report, mse)

    say(f"fits ({s.fit_steps} GD steps each) and the (w₁, c) plane ({s.steps}×{s.steps})")
    fit_bce = train(bce, optimizer="gd", lr=s.lr, steps=s.fit_steps, seed=seed, theta0=theta0).theta
    fit_mse = train(mse, optimizer="gd", lr=s.lr, steps=s.fit_steps, seed=seed, theta0=theta0).theta
    center = torch.zeros(mse.n_params, dtype=mse.dtype)
    d1, d2 = torch.zeros_like(center), torch.zeros_like(center)
    d1[0], d2[-1] = 1.0, 1.0  # w₁ and c
    slices = {name: plane(p, center, d1, d2, steps=s.steps, span=s.span) for name, p in problems.items()}
    checks = {name: discrete_convexity(slices[name], problem=p) for name, p in problems.items()}

    far = -s.span * fit_bce / fit_bce.norm()
    grads = {"bce": float(bce.grad(far).norm()), "mse": float(mse.grad(far).norm())}

    say("both losses along the witness's line")
    chord_t, chord_losses = torch.zeros(0, dtype=torch.float64), {}
    if mse_report.witness is not None:
        a, b = mse_report.witness.a, mse_report.witness.b
        lines = {name: line(p, a, b, steps=61, extend=(0.5, 0.5)) for name, p in problems.items()}
        chord_t, chord_losses = lines["mse"].t, {name: sl.losses for name, sl in lines.items()}
    points = {"fit_bce": fit_bce, "fit_mse": fit_mse, "far_point": far}
    return SigmoidLossMeasured(
        d_in=s.d_in, span=s.span, proof_rule=proof["rule"], proof=proof, witness=witness,
        fit_bce=fit_bce, fit_mse=fit_mse, far_point=far, far_grad_norm=grads,
        point_losses={k: {name: float(p.loss(t)) for name, p in problems.items()} for k, t in points.items()},
        plane_violations={k: v.violations for k, v in checks.items()}, plane_clean={k: v.clean for k, v in checks.items()},
        plane_checked=checks["mse"].checked, mse_most_negative=checks["mse"].most_negative,
        planes={name: slice_grid(slices[name], checks[name]) for name in LOSSES}, chord_t=chord_t, chord_losses=chord_losses,
    )


def claims(settings: SigmoidLossSettings, m: SigmoidLossMeasured) -> tuple[Claim, ...]:
    """Cross-entropy convex (proof); squared loss not (certified chord, second differences); the squared loss's plateau."""
    grads, far = m.far_grad_norm, m.point_losses["far_point"]
    return (
        proof_claim("cross-entropy-convex", "logistic regression — cross-entropy of σ(w·x + c) — is convex in (w, c)", m.proof),
        witness_claim("squared-loss-not-convex", "with the squared loss, σ(w·x + c) has a non-convex loss (certified chord)",
                      m.witness),
        claim("plane-second-differences",
              "on the (w₁, c) plane the cross-entropy has no negative second difference; the squared loss has many",
              m.plane_clean["bce"] and m.plane_violations["mse"] > 0,
              "cross-entropy: {bv} of {checked} second differences < −tol; squared loss: {mv} of {checked} (confirmed in float64), "
              "most negative D = {worst:.3g}",
              plain="On a grid over the plane the cross-entropy never bends downward between neighbouring points; the squared "
                    "loss does at many of them.",
              bv=m.plane_violations["bce"], mv=m.plane_violations["mse"], checked=m.plane_checked, worst=m.mse_most_negative),
        claim("squared-loss-plateau",
              "far from the fit (a confidently wrong classifier) the squared loss is on a plateau, the cross-entropy is not",
              grads["mse"] < FAR_RATIO * grads["bce"],
              "at θ = −{span:g}·θ̂_bce/‖θ̂_bce‖: ‖∇L_mse‖ = {gm:.3g} < 0.1 × ‖∇L_bce‖ = 0.1 × {gb:.3g} (L_mse = {lm:.3g}, L_bce = {lb:.3g})",
              span=m.span, gm=grads["mse"], gb=grads["bce"], lm=far["mse"], lb=far["bce"]),
    )


EXPERIMENT = from_argument("sigmoid-loss", settings=SigmoidLossSettings, quick=QUICK, measure=measure, claims=claims)
