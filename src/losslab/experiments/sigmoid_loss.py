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
from .._checks import LosslabError, finite_float, positive_int
from ..convexity import check_convexity
from ..fit import train
from ..landscape import discrete_convexity, line, plane
from ..models import Linear
from ..problem import Problem
from ._legacy import Outcome, Table, claim, legacy_experiment, png_figure
from ._nonconvex import contour, proof_claim, witness_claim

__all__ = ["EXPERIMENT", "QUICK", "Settings", "run"]


@dataclass(frozen=True)
class Settings:
    """Settings of the sigmoid-loss experiment.

    Attributes:
        n: examples x ~ N(0, I) with labels y ~ Bernoulli(σ(w*·x)).
        d_in: input dimension (1: the plane slice is the whole (w, c) space).
        scale: ‖w*‖ of the logistic teacher (larger: cleaner labels).
        budget: chords the witness search may evaluate.
        fit_steps: gradient-descent steps fitting each loss (to mark the minima).
        lr: the gradient-descent step size.
        steps: grid points per axis of the (w₁, c) plane.
        span: half-width of the plane in w₁ and c; the far point is at this distance from 0.
    """

    n: int = 100
    d_in: int = 1
    scale: float = 3.0
    budget: int = 300
    fit_steps: int = 300
    lr: float = 1.0
    steps: int = 41
    span: float = 10.0

    def __post_init__(self) -> None:
        positive_int("n", self.n, minimum=2)
        positive_int("d_in", self.d_in)
        finite_float("scale", self.scale, positive=True)
        positive_int("budget", self.budget, minimum=30)
        positive_int("fit_steps", self.fit_steps)
        finite_float("lr", self.lr, positive=True)
        positive_int("steps", self.steps, minimum=5)
        finite_float("span", self.span, positive=True)
        if self.steps > 81:
            raise LosslabError(f"expected steps <= 81 (the slices are drawn and embedded in the report), got steps={self.steps}")


QUICK = {"budget": 100, "fit_steps": 150, "steps": 31}
FAR_RATIO = 0.1  # the plateau claim: ‖∇L_mse‖ < FAR_RATIO·‖∇L_bce‖ far from the fit (theory: ~e^{−span·|x|} vs E|x|)


def run(settings: Settings, seed: int, say) -> Outcome:
    """Prove cross-entropy convex, certify the squared loss non-convex, and draw both landscapes."""
    s = settings
    X, y = data.logistic_labels(s.n, d_in=s.d_in, scale=s.scale, seed=seed)
    model = Linear(s.d_in, output="sigmoid")
    bce, mse = Problem(model, X, y, loss="bce"), Problem(model, X, y, loss="mse")
    theta0 = mse.init(seed)

    say("verdicts: cross-entropy and squared loss")
    bce_report = check_convexity(bce, at=theta0, seed=seed)
    mse_report = check_convexity(mse, at=theta0, seed=seed, budget=s.budget, train_steps=0)
    mse_claim, witness = witness_claim("with the squared loss, σ(w·x + c) has a non-convex loss (certified chord)", mse_report, mse)
    claims = [proof_claim("logistic regression — cross-entropy of σ(w·x + c) — is convex in (w, c)", bce_report), mse_claim]

    say(f"fits ({s.fit_steps} GD steps each) and the (w₁, c) plane ({s.steps}×{s.steps})")
    fit_bce = train(bce, optimizer="gd", lr=s.lr, steps=s.fit_steps, seed=seed, theta0=theta0).theta
    fit_mse = train(mse, optimizer="gd", lr=s.lr, steps=s.fit_steps, seed=seed, theta0=theta0).theta
    center = torch.zeros(mse.n_params, dtype=mse.dtype)
    d1, d2 = torch.zeros_like(center), torch.zeros_like(center)
    d1[0], d2[-1] = 1.0, 1.0  # w₁ and c
    slices = {name: plane(p, center, d1, d2, steps=s.steps, span=s.span) for name, p in (("bce", bce), ("mse", mse))}
    checks = {name: discrete_convexity(slices[name], problem=p) for name, p in (("bce", bce), ("mse", mse))}
    claims.append(claim(
        "on the (w₁, c) plane the cross-entropy has no negative second difference; the squared loss has many",
        checks["bce"].clean and checks["mse"].violations > 0,
        "cross-entropy: {bv} of {checked} second differences < −tol; squared loss: {mv} of {checked} (confirmed in float64), "
        "most negative D = {worst:.3g}",
        bv=checks["bce"].violations, mv=checks["mse"].violations, checked=checks["mse"].checked, worst=checks["mse"].most_negative,
    ))

    far = -s.span * fit_bce / fit_bce.norm()
    grad_bce, grad_mse = float(bce.grad(far).norm()), float(mse.grad(far).norm())
    claims.append(claim(
        "far from the fit (a confidently wrong classifier) the squared loss is on a plateau, the cross-entropy is not",
        grad_mse < FAR_RATIO * grad_bce,
        "at θ = −{span:g}·θ̂_bce/‖θ̂_bce‖: ‖∇L_mse‖ = {gm:.3g} < 0.1 × ‖∇L_bce‖ = 0.1 × {gb:.3g} (L_mse = {lm:.3g}, L_bce = {lb:.3g})",
        span=s.span, gm=grad_mse, gb=grad_bce, lm=float(mse.loss(far)), lb=float(bce.loss(far)),
    ))

    say("both losses along the witness's line")
    chord_line = {}
    if mse_report.witness is not None:
        a, b = mse_report.witness.a, mse_report.witness.b
        chord_line = {name: line(p, a, b, steps=61, extend=(0.5, 0.5)) for name, p in (("bce", bce), ("mse", mse))}
    figures = _figures(slices, checks, chord_line, mse_report.witness, fit_bce, fit_mse, s)
    table = Table(
        "The two losses at their fits (gradient descent from the same start) and far from them",
        ("point", "w", "c", "cross-entropy", "squared loss"),
        tuple((name, [round(float(v), 4) for v in t[:-1]], float(t[-1]), float(bce.loss(t)), float(mse.loss(t)))
              for name, t in (("cross-entropy fit", fit_bce), ("squared-loss fit", fit_mse), ("far point", far))),
    )
    numbers = {
        "proof_rule": bce_report.proof.rule if bce_report.proof else None,
        "witness": witness,
        "fit_bce": fit_bce.tolist(), "fit_mse": fit_mse.tolist(), "far_point": far.tolist(),
        "far_grad_norm": {"bce": grad_bce, "mse": grad_mse},
        "plane_violations": {k: v.violations for k, v in checks.items()},
        "plane_checked": checks["mse"].checked,
        "mse_most_negative": checks["mse"].most_negative,
    }
    return Outcome(numbers=numbers, claims=tuple(claims), figures=figures, tables=(table,))


def _figures(slices, checks, chord_line, witness, fit_bce, fit_mse, s: Settings):
    from ..report.figures import subplots


    fig, axes = subplots(1, 2, figsize=(9, 3.6))
    labels = ("w" if s.d_in == 1 else "w₁", "c")
    for ax, name, title, fit in ((axes[0], "bce", "cross-entropy: convex", fit_bce), (axes[1], "mse", "squared loss: not convex", fit_mse)):
        contour(ax, slices[name], title=title, discrete=checks[name], labels=labels)
        if s.d_in == 1:
            ax.plot([float(fit[0])], [float(fit[-1])], "o", color="white", mec="k", ms=6)
    if witness is not None and s.d_in == 1:
        a, b = witness.a.numpy(), witness.b.numpy()
        axes[1].plot([a[0], b[0]], [a[-1], b[-1]], "-", color="orange", lw=2, label="witness chord")
        axes[1].legend(loc="upper right", fontsize=7, framealpha=0.8)
    fig.subplots_adjust(wspace=0.3)
    planes = png_figure(
        fig, "planes",
        "The two losses of σ(w·x + c) over " + ("the whole (w, c) plane" if s.d_in == 1 else "the (w₁, c) plane through 0")
        + " (white dot: the fit). The cross-entropy (left) is a single smooth valley with no negative second difference. The "
        "squared loss (right) flattens into plateaus where the sigmoid saturates and bends down on the shoulders between "
        "(red dots: negative second differences, confirmed in float64); the orange segment is the certified chord.",
    )
    if not chord_line:
        return (planes,)
    fig, axes = subplots(1, 2, figsize=(9, 3.4))
    lam = witness.lam
    for ax, name, title in ((axes[0], "mse", "squared loss"), (axes[1], "bce", "cross-entropy")):
        sl = chord_line[name]
        t, L = sl.t.numpy(), sl.losses.numpy()
        ends = [float(L[(t == 0).nonzero()[0][0]]), float(L[(t == 1).nonzero()[0][0]])]
        ax.plot(t, L, color="C0", lw=2, label=f"L((1−t)a + t·b), {title}")
        ax.plot([0, 1], ends, "--", color="C3", lw=1.5, label="chord between a and b")
        ax.axvline(1 - lam, color="0.6", lw=1, ls=":")
        if name == "mse":  # the certificate: the loss at the middle point against the chord there
            ax.plot([1 - lam] * 2, [witness.losses[2], lam * witness.losses[0] + (1 - lam) * witness.losses[1]], "o-",
                    color="k", ms=4, lw=1, label=f"gap {witness.gap:.2g} at t = {1 - lam:g}")
        ax.set(xlabel="t  (a at t = 0, b at t = 1)", ylabel="loss", title=title)
        ax.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.3)
    chord = png_figure(
        fig, "chord",
        f"Both losses on the line through the witness points a (t = 0) and b (t = 1), extended by half its length on each "
        f"side. The squared loss (left) rises above its chord (dashed) at the dotted line, t = {1 - lam:g}: the certificate of "
        "non-convexity; it is flat where σ saturates. The cross-entropy (right) stays below every chord.",
    )
    return (planes, chord)


EXPERIMENT = legacy_experiment(
    name="sigmoid-loss",
    number=9,
    title="Linear model with a sigmoid: the loss decides",
    intro=(
        "A linear model through a sigmoid, σ(w·x + c), is not linear in its parameters, yet logistic regression is convex: "
        "the cross-entropy is a convex function of the affine logit w·x + c. Fit the same model with the squared loss "
        "instead and convexity is lost — the loss saturates into plateaus and bends down on the shoulders between them. "
        "Non-convexity comes from how the parameters enter the loss, not from the model alone."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
