"""Experiment 12: L2 regularisation convexifies a network's loss locally, never globally; dropout is an L2 penalty.

With weight decay, losslab's loss is L_λ(θ) = L(θ) + λ‖θ‖², so its Hessian is ∇²L_λ = ∇²L + 2λI and every
eigenvalue moves by exactly 2λ: λ_min(H_λ) = λ_min(H₀) + 2λ. At any fixed point θ, a large enough
λ > −λ_min(H₀)/2 makes the Hessian positive definite — the loss is locally convex there.

It never makes the loss of a network convex everywhere: the penalty's curvature is the constant 2λ,
while the data term's curvature grows with the size of the weights. For the tanh net f(x) = Σ_j v_j
tanh(w_j x + b_j), take the point c where only unit 0 is active, w₀ = 0, b₀ = β, v₀ = t (all other
weights 0). Along b₀ the data loss is t²·tanh²(b₀) − 2tȳ·tanh(b₀) + const, whose second derivative
is t²·(tanh²)''(β) − 2tȳ·tanh''(β); at β = atanh(√(2/3)), where tanh² is most concave ((tanh²)'' = −2/3),
and t of the sign of −ȳ, it is ≤ −(2/3)t², so the regularised loss is concave along b₀ once
t² > 3λ. The chord from c − h·e_{b₀} to c + h·e_{b₀} then lies below the loss: a witness of
non-convexity at radius ≈ 2√(3λ), for *every* λ (the data term is quartic-like in the weights where
the penalty is quadratic). The experiment certifies that chord in float64 (``convexity.chord_gap``)
for each λ of a sweep, next to what the generic witness search (``check_convexity``) finds on its own.

Dropout (Srivastava et al. 2014) with keep probability p multiplies each hidden activation by an
independent m_ij ~ Bernoulli(p)/p. For a model linear in v (fixed features Φ, n × h) its expected
squared loss is the plain loss plus a data-dependent L2 penalty (Wager, Wang & Liang 2013):

    E (1/n)‖y − ((M ⊙ Φ)/p) v‖² = (1/n)‖y − Φv‖² + ((1 − p)/p)·(1/n)·Σ_j v_j² ‖φ_j‖²,

since E[m/p] = 1 and Var[m/p] = (1 − p)/p. A Monte Carlo average over seeded masks must match it
within its standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import data
from ..convexity import check_convexity, chord_gap
from ..curvature import eigs
from ..fit import train
from ..models import TwoLayer
from ..problem import Problem
from ..random_streams import child_seed, generator
from .base import Claim, Measured, claim
from .settings import Integer, Real, Reals, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "DropoutCheck", "RegularizationMeasured", "RegularizationSettings", "claims",
           "dropout_closed_form", "measure", "scaling_chord"]


SHIFT_RTOL = 1e-9  # |λ_min(H_λ) − λ_min(H₀) − 2λ| relative to ‖H‖ + 2λ: ~1e6 ulps above the eigensolver's backward error
MC_SIGMAS = 4.0  # a Monte Carlo mean more than 4 standard errors from the truth has probability < 1e-4
BETA = math.atanh(math.sqrt(2 / 3))  # where tanh² is most concave: (tanh²)''(β) = −2/3


@dataclass(frozen=True)
class RegularizationSettings(Settings):
    """Settings of the regularisation experiment (defaults: the full run)."""

    n: int = setting(20, Integer(2), "training examples of the noisy cubic y = x³ − x + noise·ε")
    noise: float = setting(0.1, Real(0), "the noise level")
    width: int = setting(3, Integer(1), "hidden units of the tanh TwoLayer net")
    lambdas: tuple[float, ...] = setting((0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), Reals(0, min_len=2),
                                         "the L2 weights λ of the sweep (loss + λ‖θ‖²)")
    train_steps: int = setting(2000, Integer(1), "Adam steps (lr 0.01, λ = 0) to the trained point")
    budget: int = setting(600, Integer(30), "chords the generic witness search (check_convexity) may try per λ")
    chord_half_width: float = setting(0.25, Real(0, low_open=True), "h: the constructed chord runs from c − h·e_b to c + h·e_b")
    keep_prob: float = setting(0.8, Real(0, 1, low_open=True, high_open=True), "dropout's keep probability p (1: no dropout)")
    masks: int = setting(20000, Integer(100), "Monte Carlo dropout masks")


QUICK = {"lambdas": (0.0, 0.01, 0.1, 1.0, 10.0), "train_steps": 500, "budget": 300, "masks": 4000}


@dataclass(frozen=True)
class DropoutCheck:
    """Dropout's loss at the trained point: plain, closed-form expectation, and its Monte Carlo mean ± standard error."""

    keep_prob: float
    plain: float
    closed_form: float
    mc_mean: float
    mc_se: float


@dataclass(frozen=True)
class RegularizationMeasured(Measured):
    """What the regularisation experiment measured, per λ of the sweep (in the settings' order)."""

    lambdas: list[float]
    lambda_min_init: list[float]  # smallest Hessian eigenvalue (Ritz value) at the initial point
    lambda_min_trained: list[float]  # … at the trained point
    shift_error: float  # worst |λ_min(H_λ) − λ_min(H_λ0) − 2(λ − λ0)| over both points and every λ
    witnesses: list[dict]  # per λ: the generic search's verdict and witness radius, the constructed chord's gap, bound, radius
    dropout: DropoutCheck
    shift_tolerance: float  # the tolerance of that worst error: 1e-9·(‖H‖ + 2λ) plus both residual bounds
    lambda_min_init_bound: list[float]  # residual bound of lambda_min_init
    dropout_samples: torch.Tensor  # the loss under each Monte Carlo mask (masks,)


def scaling_chord(problem: Problem, half_width: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The chord (a, b, radius) along b₀ at the point c where only unit 0 is on (module docstring).

    c: w₀ = 0, b₀ = atanh(√(2/3)), v₀ = −sign(ȳ)·max(1, 2√(3λ)), every other weight 0 (λ = ``problem.l2``);
    a, b = c ± half_width·e_{b₀}. Returns a, b (P,) and ‖c‖₂.
    """
    params = {g: torch.zeros(problem.model.shapes[g], dtype=torch.float64) for g in problem.model.groups}
    t = max(1.0, 2 * math.sqrt(3 * problem.l2))
    params["b"][0] = BETA
    params["v"][0] = -t if float(problem.y.mean()) > 0 else t
    full = problem.full()
    center = full.flatten(params)
    step = torch.zeros_like(center)
    step[full.slices()["b"].start] = half_width
    return center + step, center - step, float(center.norm())


def dropout_closed_form(features: torch.Tensor, v: torch.Tensor, y: torch.Tensor, keep_prob: float) -> tuple[float, float]:
    """(plain loss (1/n)‖y − Φv‖², expected dropout loss = plain + ((1−p)/p)(1/n)Σ_j v_j²‖φ_j‖²) for Φ (n, h), v (h,)."""
    n = len(y)
    plain = float(((y - features @ v) ** 2).mean())
    penalty = (1 - keep_prob) / keep_prob * float((v**2 * (features**2).sum(0)).sum()) / n
    return plain, plain + penalty


def _dropout_samples(features, v, y, keep_prob, masks, seed) -> torch.Tensor:
    """Loss (1/n)‖y − ((M ⊙ Φ)/p)v‖² for ``masks`` Bernoulli(p) masks M (n, h) from the ``"masks"`` stream of ``seed``: shape (masks,)."""
    g = generator(seed, "masks")
    out = []
    for chunk in torch.arange(masks).split(2000):
        M = (torch.rand(len(chunk), *features.shape, generator=g, dtype=torch.float64) < keep_prob).to(torch.float64)
        pred = ((M * features) / keep_prob) @ v
        out.append(((y - pred) ** 2).mean(1))
    return torch.cat(out)


def _radius(report) -> float:
    """‖midpoint‖ of the generic search's witness, or NaN when it found none."""
    w = report.witness
    return float((w.lam * w.a + (1 - w.lam) * w.b).norm()) if w is not None else math.nan


def _sweep(base: Problem, points: dict[str, torch.Tensor], s: RegularizationSettings, seed: int, say) -> tuple[dict, list[dict]]:
    """Per λ: (λ_min, its bound, λ_max) at each point of ``points``; the generic search and the constructed chord."""
    curv, witnesses = {name: [] for name in points}, []
    for i, lam in enumerate(s.lambdas):
        say(f"λ = {lam:g}: curvature, witness search, constructed chord")
        problem = Problem(base.model, base.X, base.y, l2=lam)
        for name, theta in points.items():
            res = eigs(problem, theta, k=2, which="both", seed=seed)
            curv[name].append((float(res.values[0]), float(res.bounds[0]), float(res.values[-1])))
        report = check_convexity(problem, at=points["init"], seed=child_seed(seed, "chords", i), budget=s.budget, train_steps=0,
                                 by_group=False)
        found = report.witness is not None and report.witness.verify(problem).holds
        a, b, radius = scaling_chord(problem, s.chord_half_width)
        check = chord_gap(problem, a, b, 0.5)
        witnesses.append({"lambda": lam, "search": report.verdict, "search_verified": found, "gap": check.gap, "bound": check.bound,
                          "holds": check.holds, "radius": radius, "search_radius": _radius(report)})
    return curv, witnesses


def _worst_shift(lambdas: tuple[float, ...], curv: dict) -> tuple[float, float]:
    """(error, tolerance) of λ_min(H_λ) − λ_min(H_λ0) = 2(λ − λ0) with the largest error/tolerance, over points and λ."""
    i0 = lambdas.index(min(lambdas))
    shifts = []
    for name in curv:
        lo0, b0, top0 = curv[name][i0]
        for lam, (lo, b, _) in zip(lambdas, curv[name]):
            err = abs(lo - lo0 - 2 * (lam - lambdas[i0]))
            shifts.append((err, SHIFT_RTOL * (abs(top0) + 2 * lam) + b + b0))
    return max(shifts, key=lambda et: et[0] / et[1])


def measure(settings: RegularizationSettings, seed: int, say) -> RegularizationMeasured:
    """Sweep λ: Hessian shift, local convexity, witnesses; then dropout's expected loss by Monte Carlo."""
    s = settings
    X, y = data.cubic(s.n, noise=s.noise, seed=seed)
    net = TwoLayer(1, s.width, "tanh")
    base = Problem(net, X, y)
    theta_init = base.init(seed)
    say(f"training to a trained point ({s.train_steps} Adam steps)")
    theta_trained = train(base, optimizer="adam", lr=0.01, steps=s.train_steps, theta0=theta_init, seed=seed).theta.detach()
    curv, witnesses = _sweep(base, {"init": theta_init, "trained": theta_trained}, s, seed, say)
    shift_err, shift_tol = _worst_shift(s.lambdas, curv)

    say(f"dropout: {s.masks} Monte Carlo masks")
    params = base.unflatten(theta_trained)
    features = net.hidden(params, base.X)
    plain, expected = dropout_closed_form(features, params["v"], base.y, s.keep_prob)
    samples = _dropout_samples(features, params["v"], base.y, s.keep_prob, s.masks, seed)
    mc_mean, mc_se = float(samples.mean()), float(samples.std() / math.sqrt(len(samples)))
    return RegularizationMeasured(
        lambdas=list(s.lambdas), lambda_min_init=[c[0] for c in curv["init"]], lambda_min_trained=[c[0] for c in curv["trained"]],
        shift_error=shift_err, witnesses=witnesses, dropout=DropoutCheck(s.keep_prob, plain, expected, mc_mean, mc_se),
        shift_tolerance=shift_tol, lambda_min_init_bound=[c[1] for c in curv["init"]], dropout_samples=samples,
    )


def _dropout_claim(d: DropoutCheck, masks: int) -> Claim:
    """Dropout's Monte Carlo mean against the closed form (built directly: one of its values is called ``plain``)."""
    values = {"m": masks, "mc": d.mc_mean, "se": d.mc_se, "cf": d.closed_form, "plain": d.plain, "diff": abs(d.mc_mean - d.closed_form),
              "tol": MC_SIGMAS * d.mc_se}
    return Claim(
        "dropout-is-l2-penalty",
        "dropout's expected loss for a model linear in v is the plain loss plus a data-dependent L2 penalty "
        "((1−p)/p)(1/n)Σ_j v_j²‖φ_j‖² (Monte Carlo within its standard error)",
        values["diff"] <= values["tol"],
        "Monte Carlo over {m} masks: {mc:.6g} ± {se:.2g}; closed form {cf:.6g} (plain loss {plain:.6g}); "
        "|difference| = {diff:.2g} ≤ 4·SE = {tol:.2g}".format(**values),
        values,
        plain="Averaging the dropout loss over thousands of random masks gives the formula's value, up to the small wobble "
              "expected from a finite random average (four standard errors).",
    )


def claims(settings: RegularizationSettings, m: RegularizationMeasured) -> tuple[Claim, ...]:
    """L2 shifts the spectrum by 2λ; a large λ convexifies locally; no λ globally; dropout is an L2 penalty in expectation."""
    lams, init_lo, init_b, witnesses = m.lambdas, m.lambda_min_init, m.lambda_min_init_bound, m.witnesses
    i0, imax = lams.index(min(lams)), lams.index(max(lams))
    predicted = [init_lo[i0] + 2 * (lam - lams[i0]) for lam in lams]
    signs_agree = all((lo > b) == (pred > 0) for lo, b, pred in zip(init_lo, init_b, predicted) if abs(pred) > 2 * max(init_b))
    return (
        claim(
            "l2-shifts-eigenvalues-by-2-lambda",
            "L2 shifts every Hessian eigenvalue by exactly 2λ: λ_min(H + 2λI) = λ_min(H) + 2λ (at the initial and the trained point)",
            m.shift_error <= m.shift_tolerance,
            "worst |λ_min(H_λ) − λ_min(H_0) − 2λ| = {err:.1e} ≤ {tol:.1e} (1e-9·(‖H‖ + 2λ) plus the Lanczos bounds), over {k} values of λ",
            plain="Adding λ‖θ‖² raises the smallest curvature by exactly 2λ at every λ tried: the measured shifts match 2λ to "
                  "within rounding and the error bars of the eigenvalue estimates (Lanczos method).",
            err=m.shift_error, tol=m.shift_tolerance, k=len(lams),
        ),
        claim(
            "large-lambda-locally-convex",
            "a large λ makes the loss locally convex at a given point: at the initial point λ_min < 0 without L2, and > 0 "
            "once λ > −λ_min(H_0)/2",
            init_lo[i0] + init_b[i0] < 0 and init_lo[imax] - init_b[imax] > 0 and signs_agree,
            "λ_min(H) at θ_0 = {lo0:.3g} at λ = {l0:g} (threshold λ* = {star:.3g}), {lom:.3g} at λ = {lm:g}; "
            "the sign agrees with λ_min(H_0) + 2λ at every λ of the sweep: {agree}",
            lo0=init_lo[i0], l0=lams[i0], star=max(-init_lo[i0], 0.0) / 2, lom=init_lo[imax], lm=lams[imax], agree=signs_agree,
        ),
        claim(
            "no-lambda-globally-convex",
            "but no λ makes it convex: for every λ in the sweep the loss rises above one of its chords (certified in float64), "
            "at a radius that grows like √λ",
            all(w["holds"] or w["search_verified"] for w in witnesses),
            "certified at {ok} of {k} values of λ (constructed chord: smallest gap/bound = {ratio:.3g} > 1, radius {r0:.3g} → {r1:.3g}); "
            "the generic search check_convexity found one at {found} of {k}",
            plain="For every λ there are two points whose connecting straight line passes below the loss at its midpoint, by "
                  "far more than floating-point rounding could explain, so the loss is not convex; the two points just sit "
                  "farther from the origin as λ grows.",
            ok=sum(w["holds"] or w["search_verified"] for w in witnesses), k=len(witnesses),
            ratio=min(w["gap"] / w["bound"] for w in witnesses), r0=witnesses[0]["radius"], r1=witnesses[-1]["radius"],
            found=sum(w["search_verified"] for w in witnesses),
        ),
        _dropout_claim(m.dropout, settings.masks),
    )


EXPERIMENT = from_argument("regularization", settings=RegularizationSettings, quick=QUICK, measure=measure, claims=claims)
