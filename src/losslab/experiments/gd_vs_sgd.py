"""Experiment 13: full-batch GD against minibatch SGD from many starts on a non-convex loss.

On a convex loss every descent method from every start ends at the same minimum value. A network's
loss has several minima, and which one a run reaches depends on the start — and perhaps on the
optimiser: the common claim is that SGD's minibatch noise lets it escape shallow local minima that
trap full-batch GD (e.g. Keskar et al. 2017; Zhu et al. 2019, "The anisotropic noise in stochastic
gradient descent"). Here it is measured, not assumed.

Setup: a tanh TwoLayer net on a noisy sine, a small weight decay (so minima are isolated points, not
valleys running to infinity), K starts θ₀^k = ``init(child_seed(seed, "restarts", k))``
(:mod:`losslab.random_streams`), trained by

* GD: full batch, ``epochs`` steps;
* SGD: minibatches of ``batch_size``, the same learning rate and the same number of epochs (so
  ⌈n/B⌉ times as many steps), each start with its own seeded minibatch order;
* a control, GD with as many steps as SGD — to tell noise from the extra steps.

All K starts of a method run at once (:func:`~losslab.fit.ensemble.train_ensemble`, one ``vmap`` per
step). Each end point is then polished alike by damped Newton (Levenberg–Marquardt), a descent method
that finishes in the minimum of the basin the run ended in, so runs are compared by *which* minimum
they reached, not by how far down it they got. A run is at a critical point when ‖∇L‖ ≤ ``grad_tol``.

Counting minima. Loss values are grouped at relative tolerance 1e-6 (distinct minima differ by far
more; one minimum's runs agree to ~‖∇L‖²/λ_min). Parameter points are compared after
canonicalisation: hidden units are sign-normalised (tanh is odd: (w, b, v) → (−w, −b, −v) leaves the
output unchanged) and sorted, so the h!·2ʰ symmetric copies of a network map to one point
(:func:`._minima.canonical_two_layer`); then points within 1e-4 (Euclidean) are one minimum. A run
"reaches the best level" when its polished loss is within 1% of the lowest critical loss any run found.
The methods start from the same K points, so they are compared pairwise: with b starts where only
SGD reaches the best level and c where only the other method does, the b + c *discordant* starts
are those where the optimiser, not the start, decided the outcome. On a convex loss b + c = 0
(every method reaches the one minimum value). The claims are that b + c is at least 5% of the
starts, against GD with the same epochs and against GD with as many steps as SGD (so the
difference is the minibatch noise, not the extra steps). McNemar's z = (b − c)/√(b + c) (≈ N(0, 1)
when neither is better) is reported beside them, but no direction is claimed: the folklore "SGD's
noise finds the better minima" did not hold up at these settings. Measured at seed 0–3 with two
different random-stream schemes (docs/random-streams.md; 8 data draws), SGD reached the best level
significantly more often than GD (z > 2) in 2 draws and significantly less often (z < −2) in 5; the
discordant starts were many in every draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import data
from ..curvature import classify
from ..fit.ensemble import train_ensemble
from ..models import TwoLayer
from ..problem import Problem
from ..random_streams import child_seed
from ._minima import canonical_two_layer, cluster_points, cluster_values, damped_newton
from .base import Claim, Measured, claim
from .settings import Integer, Real, Rule, Settings, setting
from .story import from_argument

__all__ = ["EXPERIMENT", "QUICK", "GdVsSgdMeasured", "GdVsSgdSettings", "claims", "mcnemar_z", "measure"]


LEVEL_RTOL = 1e-6  # loss values of one minimum agree far better; distinct minima differ by far more
POINT_TOL = 1e-4  # Euclidean: a run with ‖∇L‖ ≤ 1e-8 is within ‖∇L‖/λ_min ≈ 1e-5 of its minimum
BEST_BAND = 0.01  # "reaches the best level": polished loss ≤ 1.01 × the lowest found
DISCORDANT = 0.05  # the optimiser decides the outcome for at least this share of the starts


@dataclass(frozen=True)
class GdVsSgdSettings(Settings):
    """Settings of the GD-against-SGD experiment (defaults: the full run)."""

    n: int = setting(32, Integer(2), "training examples of the noisy sine y = sin(frequency·x) + noise·ε on [−π, π]")
    frequency: float = setting(3.0, Real(0, low_open=True), "the sine's frequency")
    noise: float = setting(0.1, Real(0), "the noise level")
    width: int = setting(4, Integer(2), "hidden units of the tanh TwoLayer net")
    l2: float = setting(1e-3, Real(0, low_open=True), "weight decay (> 0: isolated minima)")
    starts: int = setting(200, Integer(10), "K, the starts shared by every method")
    epochs: int = setting(500, Integer(1), "passes over the data for every method (GD: one step per epoch)")
    lr: float = setting(0.2, Real(0, low_open=True), "the learning rate of every method")
    batch_size: int = setting(4, Integer(1), "SGD's minibatch size")
    polish_steps: int = setting(100, Integer(1), "damped-Newton iterations applied to every end point")
    grad_tol: float = setting(1e-8, Real(0, low_open=True), "a polished run with ‖∇L‖₂ ≤ grad_tol is at a critical point")

    RULES = (
        Rule(lambda s: s.batch_size < s.n, "batch_size < n (else SGD is GD)", ("batch_size", "n"), {"batch_size": 32}),
    )


QUICK = {"starts": 50, "epochs": 150}


@dataclass(frozen=True)
class GdVsSgdMeasured(Measured):
    """What the GD-against-SGD experiment measured; per-method dicts in the order GD, SGD, GD with SGD's step count."""

    best_loss: float  # the lowest polished loss of any run at a critical point
    levels: list[float]  # distinct polished loss levels (relative tolerance LEVEL_RTOL), ascending
    level_kinds: list[str]  # each level's kind by curvature
    level_points: list[torch.Tensor]  # one run's θ per level
    per_method: dict[str, dict]  # steps, fraction_best (± se), critical, levels, minima (canonical), median_raw, diverged
    mcnemar: dict  # SGD against GD: z, sgd_only, gd_only
    mcnemar_control: dict  # SGD against GD with SGD's step count: z, sgd_only, gd_long_only
    best_level_raw_clusters: int  # clusters of the raw parameters of the runs at the lowest level
    best_level_canonical_clusters: int  # … of their canonical forms
    final_losses: dict[str, torch.Tensor]  # loss at the end of training, before polishing (inf: diverged)
    polished_losses: dict[str, torch.Tensor]
    critical: dict[str, torch.Tensor]  # polished run at a critical point (bool)
    best_level_runs: int  # runs (all methods) at the lowest level
    level_runs: list[list[int]]  # per level: how many runs of each method end there


def mcnemar_z(first: torch.Tensor, second: torch.Tensor) -> tuple[float, int, int]:
    """McNemar's statistic for paired successes: (z = (b − c)/√(b + c), b, c), b = #(first only), c = #(second only).

    z is 0 when there are no discordant pairs.

    Example:
        >>> mcnemar_z(torch.tensor([True, True, True, False]), torch.tensor([False, False, True, False]))
        (1.414213562373095, 2, 0)
    """
    b = int((first & ~second).sum())
    c = int((~first & second).sum())
    return ((b - c) / math.sqrt(b + c) if b + c else 0.0), b, c


def _run_methods(problem: Problem, seeds: list[int], s: GdVsSgdSettings, say) -> dict[str, dict]:
    """Train every start by each method, then polish every end point by damped Newton."""
    per_epoch = math.ceil(s.n / s.batch_size)
    methods = {
        "GD": {"optimizer": "gd", "steps": s.epochs},
        "SGD": {"optimizer": "sgd", "steps": s.epochs * per_epoch, "batch_size": s.batch_size},
        "GD, SGD's step count": {"optimizer": "gd", "steps": s.epochs * per_epoch},
    }
    runs = {}
    for name, kw in methods.items():
        say(f"{name}: {s.starts} starts × {kw['steps']} steps, then {s.polish_steps} damped-Newton steps")
        ens = train_ensemble(problem, seeds=seeds, lr=s.lr, **kw)
        theta, grad_norms = damped_newton(problem, ens.theta, iterations=s.polish_steps, tol=s.grad_tol / 100)
        runs[name] = {"ens": ens, "theta": theta, "grad_norm": grad_norms[-1], "loss": problem.loss_batch(theta),
                      "raw": torch.where(ens.diverged, math.inf, ens.final_losses), "steps": kw["steps"]}
    return runs


def _minima_up_to_symmetry(problem: Problem, theta: torch.Tensor) -> int:
    """Clusters (POINT_TOL) of the canonical forms of the rows of θ: distinct networks up to permutations and sign flips."""
    if not len(theta):
        return 0
    canon = canonical_two_layer(problem.model, torch.func.vmap(problem.unflatten)(theta))
    return int(cluster_points(canon, POINT_TOL).max()) + 1


def _per_method(problem: Problem, runs: dict, critical: dict, reach: dict, starts: int) -> dict[str, dict]:
    """Each method's share of starts at the best level (± binomial SE), critical runs, levels, minima, median raw loss."""
    out = {}
    for m, r in runs.items():
        crit_theta = r["theta"][critical[m]]
        n_levels = len(cluster_values(r["loss"][critical[m]], LEVEL_RTOL)[1]) if len(crit_theta) else 0
        frac = float(reach[m].to(torch.float64).mean())
        out[m] = {"steps": r["steps"], "fraction_best": frac, "se": math.sqrt(frac * (1 - frac) / starts),
                  "critical": int(critical[m].sum()), "levels": n_levels, "minima": _minima_up_to_symmetry(problem, crit_theta),
                  "median_raw": float(r["raw"].median()), "diverged": int(r["ens"].diverged.sum())}
    return out


def _level_runs(labels: torch.Tensor | None, critical: dict, n_levels: int) -> list[list[int]]:
    """Per level: the runs of each method there (``labels`` numbers the pooled critical runs, method after method)."""
    all_labels = labels if labels is not None else torch.zeros(0, dtype=torch.int64)
    offsets, start = [], 0
    for crit in critical.values():
        offsets.append((start, start + int(crit.sum())))
        start = offsets[-1][1]
    return [[int((all_labels[a:e] == c).sum()) for a, e in offsets] for c in range(n_levels)]


def measure(settings: GdVsSgdSettings, seed: int, say) -> GdVsSgdMeasured:
    """Train K starts by GD, SGD and long GD; polish; count minima; compare the methods."""
    s = settings
    X, y = data.sine(s.n, noise=s.noise, frequency=s.frequency, seed=seed)
    problem = Problem(TwoLayer(1, s.width, "tanh"), X, y, l2=s.l2)
    runs = _run_methods(problem, [child_seed(seed, "restarts", k) for k in range(s.starts)], s, say)

    critical = {m: r["grad_norm"] <= s.grad_tol for m, r in runs.items()}
    pooled = torch.cat([r["loss"][critical[m]] for m, r in runs.items()])
    best = float(pooled.min()) if len(pooled) else math.nan
    labels, levels = cluster_values(pooled, LEVEL_RTOL) if len(pooled) else (None, pooled)
    reach = {m: r["loss"] <= best * (1 + BEST_BAND) for m, r in runs.items()}

    say(f"classifying the {len(levels)} loss levels")
    all_theta = torch.cat([r["theta"][critical[m]] for m, r in runs.items()])
    level_points = [all_theta[int(torch.nonzero(labels == c)[0, 0])] for c in range(len(levels))]
    kinds = [classify(problem, t, grad_tol=s.grad_tol, seed=seed).kind for t in level_points]

    # canonical forms at the lowest level: symmetric copies collapse
    at_best = all_theta[labels == 0] if len(levels) else all_theta
    raw_clusters = int(cluster_points(at_best, POINT_TOL).max()) + 1 if len(at_best) else 0
    per_method = _per_method(problem, runs, critical, reach, s.starts)
    z, b, c = mcnemar_z(reach["SGD"], reach["GD"])
    zc, bc, cc = mcnemar_z(reach["SGD"], reach["GD, SGD's step count"])
    return GdVsSgdMeasured(
        best_loss=best, levels=levels.tolist(), level_kinds=kinds, level_points=level_points, per_method=per_method,
        mcnemar={"z": z, "sgd_only": b, "gd_only": c}, mcnemar_control={"z": zc, "sgd_only": bc, "gd_long_only": cc},
        best_level_raw_clusters=raw_clusters, best_level_canonical_clusters=_minima_up_to_symmetry(problem, at_best),
        final_losses={m: r["raw"] for m, r in runs.items()}, polished_losses={m: r["loss"] for m, r in runs.items()},
        critical=critical, best_level_runs=len(at_best), level_runs=_level_runs(labels, critical, len(levels)),
    )


Z_PLAIN = ("McNemar's z (the difference of the two one-sided counts over its expected spread) is shown, not judged: beyond "
           "about ±2 it would say that one method reaches the best level more often at these settings (negative: GD, positive: "
           "SGD); this experiment claims no direction.")


def claims(settings: GdVsSgdSettings, m: GdVsSgdMeasured) -> tuple[Claim, ...]:
    """Several minima; the best level is one network up to symmetry; the optimiser, and SGD's noise, decide which minimum."""
    minima_levels = [float(v) for v, k in zip(m.levels, m.level_kinds) if k == "minimum"]
    gd, sgd, long = m.per_method["GD"], m.per_method["SGD"], m.per_method["GD, SGD's step count"]
    b, c, bc, cc = m.mcnemar["sgd_only"], m.mcnemar["gd_only"], m.mcnemar_control["sgd_only"], m.mcnemar_control["gd_long_only"]
    thr = DISCORDANT * settings.starts
    return (
        claim(
            "several-minima",
            "the loss has several minima: polished runs end at two or more distinct loss levels that the curvature certifies as minima",
            len(minima_levels) >= 2,
            "{nmin} of {nlev} loss levels are certified minima (‖∇L‖ ≤ {tol:g}, λ_min > 0 beyond its bound): {vals}",
            plain="After polishing, runs stop at several different loss values, and at each of them the slope is zero and the "
                  "loss curves upward in every direction (the smallest curvature estimate is positive beyond its error bar).",
            nmin=len(minima_levels), nlev=len(m.levels), tol=settings.grad_tol, vals=", ".join(f"{v:.6g}" for v in minima_levels[:6]),
        ),
        claim(
            "best-level-one-network-up-to-symmetry",
            "runs at the lowest loss level are one network up to hidden-unit permutations and sign flips: their canonical forms "
            "coincide, their raw parameters do not",
            m.best_level_canonical_clusters == 1 and m.best_level_raw_clusters > 1,
            "{k} runs at the lowest level {best:.6g}: {raw} clusters of raw parameters, {canon} after canonicalisation "
            "(Euclidean tolerance 1e-4)",
            plain="The runs that reach the lowest loss have different weights, but after reordering the hidden units and "
                  "flipping their signs into one standard form (which leaves the network's output unchanged) they are all the "
                  "same network.",
            k=m.best_level_runs, best=m.best_loss, raw=m.best_level_raw_clusters, canon=m.best_level_canonical_clusters,
        ),
        claim(
            "optimiser-decides-minimum",
            "the optimiser, not only the start, decides which minimum is reached: from the same starts, SGD and GD (same lr, "
            "same epochs) disagree about reaching the best loss level (within 1% of the lowest found) for at least 5% of the starts",
            b + c >= thr,
            "{d} of {k} starts discordant (SGD only: {b}, GD only: {c}; threshold {thr:g}); SGD {fs:.3f} ± {ses:.3f} vs GD "
            "{fg:.3f} ± {seg:.3f}; McNemar z = {z:.2f} (no direction claimed)",
            plain="For each shared start we ask whether SGD and GD both reach the best level or differ; the starts where they "
                  "differ show that the optimiser, not only the start, decides the outcome. " + Z_PLAIN,
            d=b + c, k=settings.starts, b=b, c=c, thr=thr, fs=sgd["fraction_best"], ses=sgd["se"], fg=gd["fraction_best"],
            seg=gd["se"], z=m.mcnemar["z"],
        ),
        claim(
            "sgd-noise-not-extra-steps",
            "it is SGD's noise, not its extra steps: SGD and GD given as many steps still disagree about reaching the best "
            "loss level for at least 5% of the starts",
            bc + cc >= thr,
            "{d} of {k} starts discordant (SGD only: {b}, GD with SGD's {steps} steps only: {c}; threshold {thr:g}); "
            "SGD {fs:.3f} ± {ses:.3f} vs GD with SGD's steps {fl:.3f} ± {sel:.3f}; McNemar z = {z:.2f} (no direction claimed)",
            plain="GD given as many steps as SGD still disagrees with SGD on many starts, so the difference comes from SGD's "
                  "random minibatches, not from its extra steps. " + Z_PLAIN,
            d=bc + cc, k=settings.starts, b=bc, c=cc, steps=sgd["steps"], thr=thr, fs=sgd["fraction_best"], ses=sgd["se"],
            fl=long["fraction_best"], sel=long["se"], z=m.mcnemar_control["z"],
        ),
    )


EXPERIMENT = from_argument("gd-vs-sgd", settings=GdVsSgdSettings, quick=QUICK, measure=measure, claims=claims)
