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
from ..convexity import check_convexity
from ..fit import least_squares_result, train
from ..landscape import discrete_convexity, plane
from ..models import ACTIVATIONS, RandomFeatures, TwoLayer
from ..problem import Problem
from ..random_streams import child_seed
from ._nonconvex import SliceGrid, proof_claim, proof_numbers, slice_grid, witness_claim, witness_numbers
from .base import Claim, Measured, claim
from .settings import Integer, OneOf, Real, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "TwoLayerMeasured", "TwoLayerSettings", "claims", "measure"]


@dataclass(frozen=True)
class TwoLayerSettings(Settings):
    """Settings of the two-layer experiment (defaults: the full run)."""

    n: int = setting(64, Integer(2), "training examples of the noisy cubic y = x³ − x + noise·ε")
    noise: float = setting(0.1, Real(0), "the noise level")
    width: int = setting(16, Integer(1), "hidden units of the net (and random features)")
    activation: str = setting("tanh", OneOf(tuple(ACTIVATIONS)), "the activation σ")
    train_steps: int = setting(2000, Integer(1), "Adam steps for the net and for the random-features model")
    lr: float = setting(0.01, Real(0, low_open=True), "Adam's learning rate")
    budget: int = setting(1000, Integer(30), "chords the witness search may evaluate (the per-group searches use a quarter each)")
    steps: int = setting(41, Integer(5, 81), "grid points per axis of the plane slices (they are drawn and embedded in the report)")
    span: float = setting(1.0, Real(0, low_open=True), "half-width of the slices, in units of the filter-normalised directions")


QUICK = {"train_steps": 500, "budget": 300, "steps": 25}


@dataclass(frozen=True)
class TwoLayerMeasured(Measured):
    """What the two-layer experiment measured: both verdicts, both trainings and both plane slices."""

    activation: str
    proof_rule: str | None  # the rule that proves the loss convex in v alone
    proof: dict  # that verdict (proof_numbers)
    witness: dict  # the joint verdict's certified chord (witness_numbers)
    by_group: dict[str, str]  # group → verdict, the others held at the initial point
    by_group_evidence: dict[str, str]  # group → the proof's rule or the witness's source
    net_params: int
    rf_params: int
    net_initial_loss: float
    rf_initial_loss: float
    net_trained_loss: float
    rf_trained_loss: float
    rf_least_squares_loss: float  # the random-features model's closed-form (global) minimum
    net_slice: dict  # second differences of the net's slice, its most negative one and the loss range
    rf_slice: dict  # the random-features slice: method, second differences, quadratic coefficients, Hessian
    net_plane: SliceGrid  # the slices as drawn
    rf_plane: SliceGrid


def measure(settings: TwoLayerSettings, seed: int, say) -> TwoLayerMeasured:
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
    proof, witness = proof_numbers(in_v), witness_numbers(joint, problem)

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

    return TwoLayerMeasured(
        activation=s.activation, proof_rule=proof["rule"], proof=proof, witness=witness,
        by_group={g: r.verdict for g, r in joint.by_group.items()},
        by_group_evidence={g: r.proof.rule if r.proof else (r.witness.source if r.witness else "-") for g, r in joint.by_group.items()},
        net_params=problem.n_params, rf_params=rf_problem.n_params, net_initial_loss=float(net_run.losses[0]),
        rf_initial_loss=float(rf_run.losses[0]), net_trained_loss=net_run.final_loss, rf_trained_loss=rf_run.final_loss,
        rf_least_squares_loss=rf_best.loss,
        net_slice={"violations": net_dc.violations, "checked": net_dc.checked, "most_negative": net_dc.most_negative,
                   "most_negative_axis": net_dc.most_negative_axis or "-",
                   "most_negative_at": list(net_dc.most_negative_at or (float("nan"),) * 2),
                   "min_loss": float(net_slice.losses.min()), "max_loss": float(net_slice.losses.max())},
        rf_slice={"method": rf_slice.method, "violations": rf_dc.violations, "checked": rf_dc.checked, "clean": rf_dc.clean,
                  "rtol": rf_dc.rtol, "coefficients": coef.tolist(), "hessian_min_eigenvalue": hess_min,
                  "hessian_scale": max(abs(h11), abs(h22)), "gradient": [g1, g2]},
        net_plane=slice_grid(net_slice, net_dc), rf_plane=slice_grid(rf_slice, rf_dc),
    )


def claims(settings: TwoLayerSettings, m: TwoLayerMeasured) -> tuple[Claim, ...]:
    """Convex in v (proof); not convex jointly (certified chord); the random-features slice a bowl, the net's not."""
    rf, net = m.rf_slice, m.net_slice
    return (
        proof_claim("convex-in-v", "with W, b fixed the loss is convex in v (fixed features: the random-features model)", m.proof),
        witness_claim("not-convex-jointly", "jointly in (W, b, v) the loss is not convex (certified chord)", m.witness),
        claim("random-features-slice-convex",
              "the random-features slice is an exact convex quadratic: no negative second difference beyond rounding",
              rf["method"] == "exact quadratic" and rf["clean"] and rf["hessian_min_eigenvalue"] >= -1e-12 * rf["hessian_scale"],
              "method “{method}”; {violations} of {checked} second differences < −tol (rtol {rtol:g}·ε); "
              "smallest eigenvalue of the slice's 2×2 Hessian {hmin:.3g} ≥ −1e-12·{hscale:.3g}",
              plain="On the plane the random-features loss is an exact bowl: it curves upward in every direction and never "
                    "bends down between neighbouring grid points.",
              method=rf["method"], violations=rf["violations"], checked=rf["checked"], rtol=rf["rtol"],
              hmin=rf["hessian_min_eigenvalue"], hscale=rf["hessian_scale"]),
        claim("net-slice-not-convex", "the trained net's slice is not convex: negative second differences, confirmed in float64",
              net["violations"] > 0,
              "{violations} of {checked} second differences < −tol (confirmed in float64); most negative D = {worst:.3g} "
              "along {axis} at (α, β) = ({a:.2f}, {b:.2f})",
              plain="Along some grid lines of the plane the net's loss bends downward, like the top of a hill — a convex "
                    "function never does.",
              violations=net["violations"], checked=net["checked"], worst=net["most_negative"], axis=net["most_negative_axis"],
              a=net["most_negative_at"][0], b=net["most_negative_at"][1]),
    )


EXPERIMENT = from_argument("two-layer", settings=TwoLayerSettings, quick=QUICK, measure=measure, claims=claims)
