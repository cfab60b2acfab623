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
from .._checks import LosslabError, finite_float, positive_int
from ..convexity import check_convexity, chord_gap
from ..curvature import eigs
from ..fit import train
from ..models import TwoLayer
from ..problem import Problem
from ..random_streams import child_seed, generator
from ._legacy import Outcome, Table, claim, legacy_experiment, png_figure

__all__ = ["EXPERIMENT", "QUICK", "Settings", "dropout_closed_form", "run", "scaling_chord"]

SHIFT_RTOL = 1e-9  # |λ_min(H_λ) − λ_min(H₀) − 2λ| relative to ‖H‖ + 2λ: ~1e6 ulps above the eigensolver's backward error
MC_SIGMAS = 4.0  # a Monte Carlo mean more than 4 standard errors from the truth has probability < 1e-4
BETA = math.atanh(math.sqrt(2 / 3))  # where tanh² is most concave: (tanh²)''(β) = −2/3


@dataclass(frozen=True)
class Settings:
    """Settings of the regularisation experiment.

    Attributes:
        n: training examples of the noisy cubic y = x³ − x + noise·ε.
        noise: the noise level.
        width: hidden units of the tanh TwoLayer net.
        lambdas: the L2 weights λ of the sweep (loss + λ‖θ‖²), each >= 0.
        train_steps: Adam steps (lr 0.01, λ = 0) to the trained point where curvature is also measured.
        budget: chords the generic witness search (check_convexity) may try per λ.
        chord_half_width: h, the constructed chord runs from c − h·e_b to c + h·e_b.
        keep_prob: dropout's keep probability p.
        masks: Monte Carlo dropout masks.
    """

    n: int = 20
    noise: float = 0.1
    width: int = 3
    lambdas: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
    train_steps: int = 2000
    budget: int = 600
    chord_half_width: float = 0.25
    keep_prob: float = 0.8
    masks: int = 20000

    def __post_init__(self) -> None:
        positive_int("n", self.n, minimum=2)
        finite_float("noise", self.noise, nonnegative=True)
        positive_int("width", self.width)
        if not isinstance(self.lambdas, tuple) or len(self.lambdas) < 2:
            raise LosslabError(f"expected lambdas as a tuple of at least 2 numbers >= 0, got lambdas={self.lambdas!r}")
        if not all(isinstance(lam, (int, float)) and not isinstance(lam, bool) and math.isfinite(lam) and lam >= 0 for lam in self.lambdas):
            raise LosslabError(f"expected every L2 weight in lambdas to be a finite number >= 0, got lambdas={self.lambdas!r}")
        positive_int("train_steps", self.train_steps)
        positive_int("budget", self.budget, minimum=30)
        finite_float("chord_half_width", self.chord_half_width, positive=True)
        p = finite_float("keep_prob", self.keep_prob, positive=True)
        if not p < 1:
            raise LosslabError(f"expected keep_prob in (0, 1) (1 would mean no dropout), got keep_prob={self.keep_prob!r}")
        positive_int("masks", self.masks, minimum=100)


QUICK = {"lambdas": (0.0, 0.01, 0.1, 1.0, 10.0), "train_steps": 500, "budget": 300, "masks": 4000}


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


def run(settings: Settings, seed: int, say) -> Outcome:
    """Sweep λ: Hessian shift, local convexity, witnesses; then dropout's expected loss by Monte Carlo."""
    s = settings
    X, y = data.cubic(s.n, noise=s.noise, seed=seed)
    net = TwoLayer(1, s.width, "tanh")
    base = Problem(net, X, y)
    theta_init = base.init(seed)
    say(f"training to a trained point ({s.train_steps} Adam steps)")
    theta_trained = train(base, optimizer="adam", lr=0.01, steps=s.train_steps, theta0=theta_init, seed=seed).theta.detach()

    rows, curv, witnesses = [], {"init": [], "trained": []}, []
    for i, lam in enumerate(s.lambdas):
        say(f"λ = {lam:g}: curvature, witness search, constructed chord")
        problem = Problem(net, X, y, l2=lam)
        for name, theta in (("init", theta_init), ("trained", theta_trained)):
            res = eigs(problem, theta, k=2, which="both", seed=seed)
            curv[name].append((float(res.values[0]), float(res.bounds[0]), float(res.values[-1])))
        report = check_convexity(problem, at=theta_init, seed=child_seed(seed, "chords", i), budget=s.budget, train_steps=0, by_group=False)
        found = report.witness is not None and report.witness.verify(problem).holds
        a, b, radius = scaling_chord(problem, s.chord_half_width)
        check = chord_gap(problem, a, b, 0.5)
        witnesses.append({"lambda": lam, "search": report.verdict, "search_verified": found, "gap": check.gap, "bound": check.bound,
                          "holds": check.holds, "radius": radius, "search_radius": _radius(report)})
        rows.append((lam, curv["init"][-1][0], curv["trained"][-1][0], report.verdict, check.gap, check.bound, radius))

    i0, imax = s.lambdas.index(min(s.lambdas)), s.lambdas.index(max(s.lambdas))
    shifts = []  # (error, tolerance) of λ_min(H_λ) − λ_min(H_λ0) = 2(λ − λ0), per point and λ
    for name in curv:
        lo0, b0, top0 = curv[name][i0]
        for lam, (lo, b, _) in zip(s.lambdas, curv[name]):
            err = abs(lo - lo0 - 2 * (lam - s.lambdas[i0]))
            shifts.append((err, SHIFT_RTOL * (abs(top0) + 2 * lam) + b + b0))
    shift_err, shift_tol = max(shifts, key=lambda et: et[0] / et[1])

    init_lo = [c[0] for c in curv["init"]]
    init_b = [c[1] for c in curv["init"]]
    predicted = [init_lo[i0] + 2 * (lam - s.lambdas[i0]) for lam in s.lambdas]
    signs_agree = all((lo > b) == (pred > 0) for lo, b, pred in zip(init_lo, init_b, predicted) if abs(pred) > 2 * max(init_b))
    say(f"dropout: {s.masks} Monte Carlo masks")
    params = base.unflatten(theta_trained)
    features = net.hidden(params, base.X)
    plain, expected = dropout_closed_form(features, params["v"], base.y, s.keep_prob)
    samples = _dropout_samples(features, params["v"], base.y, s.keep_prob, s.masks, seed)
    mc_mean, mc_se = float(samples.mean()), float(samples.std() / math.sqrt(len(samples)))

    claims = (
        claim(
            "L2 shifts every Hessian eigenvalue by exactly 2λ: λ_min(H + 2λI) = λ_min(H) + 2λ (at the initial and the trained point)",
            shift_err <= shift_tol,
            "worst |λ_min(H_λ) − λ_min(H_0) − 2λ| = {err:.1e} ≤ {tol:.1e} (1e-9·(‖H‖ + 2λ) plus the Lanczos bounds), over {k} values of λ",
            err=shift_err, tol=shift_tol, k=len(s.lambdas),
        ),
        claim(
            "a large λ makes the loss locally convex at a given point: at the initial point λ_min < 0 without L2, and > 0 "
            "once λ > −λ_min(H_0)/2",
            init_lo[i0] + init_b[i0] < 0 and init_lo[imax] - init_b[imax] > 0 and signs_agree,
            "λ_min(H) at θ_0 = {lo0:.3g} at λ = {l0:g} (threshold λ* = {star:.3g}), {lom:.3g} at λ = {lm:g}; "
            "the sign agrees with λ_min(H_0) + 2λ at every λ of the sweep: {agree}",
            lo0=init_lo[i0], l0=s.lambdas[i0], star=max(-init_lo[i0], 0.0) / 2, lom=init_lo[imax], lm=s.lambdas[imax], agree=signs_agree,
        ),
        claim(
            "but no λ makes it convex: for every λ in the sweep a chord lies above the loss (certified in float64), "
            "at a radius that grows like √λ",
            all(w["holds"] or w["search_verified"] for w in witnesses),
            "certified at {ok} of {k} values of λ (constructed chord: smallest gap/bound = {ratio:.3g} > 1, radius {r0:.3g} → {r1:.3g}); "
            "the generic search check_convexity found one at {found} of {k}",
            ok=sum(w["holds"] or w["search_verified"] for w in witnesses), k=len(witnesses),
            ratio=min(w["gap"] / w["bound"] for w in witnesses), r0=witnesses[0]["radius"], r1=witnesses[-1]["radius"],
            found=sum(w["search_verified"] for w in witnesses),
        ),
        claim(
            "dropout's expected loss for a model linear in v is the plain loss plus a data-dependent L2 penalty "
            "((1−p)/p)(1/n)Σ_j v_j²‖φ_j‖² (Monte Carlo within its standard error)",
            abs(mc_mean - expected) <= MC_SIGMAS * mc_se,
            "Monte Carlo over {m} masks: {mc:.6g} ± {se:.2g}; closed form {cf:.6g} (plain loss {plain:.6g}); "
            "|difference| = {diff:.2g} ≤ 4·SE = {tol:.2g}",
            m=s.masks, mc=mc_mean, se=mc_se, cf=expected, plain=plain, diff=abs(mc_mean - expected), tol=MC_SIGMAS * mc_se,
        ),
    )
    numbers = {
        "lambdas": list(s.lambdas),
        "lambda_min_init": init_lo,
        "lambda_min_trained": [c[0] for c in curv["trained"]],
        "shift_error": shift_err,
        "witnesses": witnesses,
        "dropout": {"keep_prob": s.keep_prob, "plain": plain, "closed_form": expected, "mc_mean": mc_mean, "mc_se": mc_se},
    }
    table = Table(
        "The L2 sweep: smallest Hessian eigenvalue at the initial and trained points, the generic search's verdict, and the "
        "constructed chord (gap, rounding bound, radius ‖c‖ of its centre)",
        ("λ", "λ_min at θ_0", "λ_min trained", "check_convexity", "chord gap", "bound", "radius"), tuple(rows),
    )
    figures = _figures(s, curv, witnesses, samples, plain, expected)
    return Outcome(numbers=numbers, claims=claims, figures=figures, tables=(table,))


def _radius(report) -> float:
    """‖midpoint‖ of the generic search's witness, or NaN when it found none."""
    w = report.witness
    return float((w.lam * w.a + (1 - w.lam) * w.b).norm()) if w is not None else math.nan


def _figures(s, curv, witnesses, samples, plain, expected):
    """λ_min against λ; witness gap and radius against λ; the Monte Carlo dropout loss converging."""
    from ..report.figures import subplots

    lams = list(s.lambdas)
    positive = [x for x in lams if x > 0]
    linthresh = min(positive) if positive else 1.0
    out = []
    i0 = lams.index(min(lams))
    dense = [min(lams), *torch.logspace(math.log10(linthresh), math.log10(max(max(lams), linthresh)), 100).tolist()]
    fig, ax = subplots(figsize=(6, 4))
    for name, color in (("init", "C0"), ("trained", "C1")):
        lo = [c[0] for c in curv[name]]
        ax.plot(lams, lo, "o", color=color, label=f"λ_min(H) at the {name} point")
        ax.plot(dense, [lo[i0] + 2 * (x - lams[i0]) for x in dense], "--", color=color, lw=0.8, alpha=0.7)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_xlim(left=min(lams))
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set(xlabel="L2 weight λ", ylabel="smallest Hessian eigenvalue", title="L2 lifts the spectrum by 2λ")
    ax.legend(fontsize=8)
    out.append(png_figure(fig, "lambda-min",
                          "Smallest Hessian eigenvalue against λ (dots: measured; dashed: λ_min(H₀) + 2λ). It crosses zero at "
                          "λ = −λ_min(H₀)/2: beyond it the loss is convex near that point — only near it."))

    fig, ax = subplots(figsize=(6, 4))
    x = [max(v, linthresh / 10) for v in lams]
    ax.plot(x, [w["gap"] for w in witnesses], "o-", color="C3", label="constructed chord: gap")
    ax.plot(x, [w["bound"] for w in witnesses], "--", color="0.5", label="its rounding bound")
    ax.plot(x, [w["radius"] for w in witnesses], "s-", color="C2", label="its radius ‖c‖")
    found = [(xi, w["search_radius"]) for xi, w in zip(x, witnesses) if w["search_verified"]]
    if found:
        ax.plot(*zip(*found), "x", color="C0", ms=8, label="generic search: radius of its witness")
    ax.set(xscale="log", yscale="log", xlabel="L2 weight λ (λ = 0 drawn at the left edge)", title="a chord above the loss for every λ")
    ax.legend(fontsize=8)
    out.append(png_figure(fig, "witness",
                          "For every λ the constructed chord's gap exceeds its float64 rounding bound: the loss is not convex. "
                          "The witness moves out like √λ — L2 pushes non-convexity away from the origin, it does not remove it."))

    n = torch.arange(1, len(samples) + 1, dtype=torch.float64)
    mean = torch.cumsum(samples, 0) / n
    sq = torch.cumsum(samples**2, 0) / n
    se = ((sq - mean**2).clamp_min(0) / n).sqrt()
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(n, mean, color="C0", lw=1, label="Monte Carlo mean of the dropout loss")
    ax.fill_between(n.numpy(), (mean - 2 * se).numpy(), (mean + 2 * se).numpy(), color="C0", alpha=0.2, label="± 2 standard errors")
    ax.axhline(expected, color="C3", lw=1.2, label="closed form: plain loss + L2 penalty")
    ax.axhline(plain, color="k", lw=1, ls="--", label="plain (deterministic) loss")
    ax.set(xscale="log", xlabel="masks", ylabel="loss", title=f"dropout (keep p = {s.keep_prob:g}) as an L2 penalty")
    ax.legend(fontsize=8)
    out.append(png_figure(fig, "dropout",
                          "The average dropout loss over more and more random masks settles on the closed form, above the plain "
                          "loss by ((1−p)/p)(1/n)Σ_j v_j²‖φ_j‖²: in expectation dropout is a data-dependent L2 penalty."))
    return tuple(out)


EXPERIMENT = legacy_experiment(
    name="regularization",
    number=12,
    title="L2 convexifies locally, never globally; dropout is an L2 penalty",
    intro=(
        "Adding λ‖θ‖² to the loss adds 2λ to every Hessian eigenvalue, so a large enough λ makes the loss convex near any "
        "given point. It cannot make a network's loss convex everywhere: the penalty's curvature is fixed while the data "
        "term's grows with the weights, so a chord above the loss reappears farther out. Dropout, averaged over its random "
        "masks, is the plain loss plus a data-dependent L2 penalty."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
