"""The end of the report: the argument tied back to the claims that checked it, and its sources.

:func:`closing_html` draws, after the experiments, one paragraph per step of the argument (:data:`STEPS`),
each followed by what this run's claims say about it — counted from the results, so a step whose claims
failed is reported as not borne out, and a step whose experiments were not run (``demo --only``) is left
out and named. Then the sources (:data:`SOURCES`): the works the argument and the experiments' methods
come from, each one as the code's docstrings cite it (a test finds every ``cited`` string in the source).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..experiments.story import parts

__all__ = ["ARGUMENT_SOURCES", "METHOD_SOURCES", "SOURCES", "STEPS", "Source", "Step", "closing_html"]


@dataclass(frozen=True)
class Step:
    """One step of the argument: a heading, its reasoning (plain text) and the experiments that check it."""

    heading: str
    text: str
    experiments: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """A work the argument or a method comes from.

    Attributes:
        cited: how losslab's docstrings cite it (found verbatim, up to white space, in ``src/losslab``).
        authors, year, title, venue: the reference.
        use: what it is used for here, a few words.
        experiments: the experiments (by name) whose claims or figures rest on it.
    """

    cited: str
    authors: str
    year: str
    title: str
    venue: str
    use: str
    experiments: tuple[str, ...]


STEPS = (
    Step(
        "Fixed features: a convex loss, solved in closed form",
        "A model with fixed features — a polynomial basis, random features, a network linearized around its initial "
        "weights — computes f(x; θ) = φ(x)ᵀθ. However curved f is as a function of x, it is linear in θ. The squared "
        "loss is convex in the model's output, so the training loss is a convex quadratic in θ, and its minimiser "
        "solves the normal equations ΦᵀΦθ = Φᵀy: the residual is orthogonal to every feature. There is no search, "
        "and no bad minimum to fall into.",
        ("linear-in-parameters",),
    ),
    Step(
        "Too few features, too many features",
        "The price of fixed features is that training cannot change them; choosing them is the modeller's job, and "
        "convexity does not help with it. Too few, and the test error stops at a bias floor that no amount of data "
        "removes. Too many for the data, and the fit interpolates the noise: training error zero, test error "
        "exploding. More data tames a large basis, because its excess error is variance, which averages out like "
        "p/n. The bias–variance decomposition puts both failures on one U-shaped curve.",
        ("underfitting", "overfitting", "more-data", "bias-variance"),
    ),
    Step(
        "The fixed basis explodes in high dimension",
        "The basis a fixed-feature model would need grows combinatorially with the input dimension: the monomials of "
        "degree at most k in d variables number C(d + k, k), which is 4,598,126 for degree 4 in 100 variables, and "
        "a least-squares fit needs about as many samples, however simple the target. A target that depends on a few "
        "hidden directions of x is hard for every fixed basis, which cannot aim at them, and easy for a network, "
        "whose first layer can turn towards them.",
        ("feature-learning",),
    ),
    Step(
        "Learned features: non-convex in (W, b, v) jointly",
        "A network v·σ(Wx + b) learns its features. With the hidden layer held fixed it is linear in v (random "
        "features) and its loss is convex again; but the product v·σ(Wx + b) is not affine in (W, b, v) jointly, and "
        "there the loss has chords that pass below it. Nonlinearity in x is not the cause: a polynomial is nonlinear "
        "in x and has a convex loss, and a deep linear network is linear in x and has a non-convex one. Nor is the "
        "sigmoid by itself: logistic regression σ(w·x + c) has a convex cross-entropy, because that loss is convex in "
        "the affine logit, while the squared loss of the same model is not. In the Hessian, the non-convexity is the "
        "model's own curvature H − GGN, which is zero for every model affine in its parameters. On the surface it "
        "shows as flat regions where a relu is dead, curved valleys of minima, and minima and saddles at different "
        "heights.",
        ("two-layer", "depth", "sigmoid-loss", "relu-surface", "sigmoid-mlp"),
    ),
    Step(
        "What regularisation and the optimiser change, and what they do not",
        "L2 weight decay adds 2λ to every Hessian eigenvalue. A large enough λ makes the loss convex near any one "
        "point, but never everywhere: the penalty's curvature stays 2λ while the data term's grows with the weights, "
        "so for every λ there is a chord below the loss, further out. Dropout is, in expectation, a data-dependent "
        "L2 penalty. Which minimum training reaches depends on the start and on the optimiser: from the same starts, "
        "full-batch gradient descent and minibatch SGD often end in different minima. No direction between them is "
        "claimed: in the draws measured when the experiment was designed, the common belief that SGD's noise finds "
        "the better minima did not hold up.",
        ("regularization", "gd-vs-sgd"),
    ),
    Step(
        "Lazy against rich: how near a network trains to its linearisation",
        "Whether a network learns features depends on how it is scaled. Multiply its output by a large τ (and its steps "
        "by 1/τ²), or widen it in the NTK parameterisation, and gradient descent moves each weight less and less: the "
        "trained network stays near its own linearisation at the starting weights, a model with fixed features whose "
        "squared loss is convex (Chizat, Oyallon & Bach; Lee et al.). The relative weight change falls like m^(−1/2) with "
        "the width and the NTK's change faster. That regime is convex and, on a target of a few hidden directions, "
        "worse: the rich network — small τ, or the mean-field parameterisation — moves its features, tests better, and "
        "the curvature of its non-linearity in the weights, H − GGN, is a large part of its Hessian while the fit still has "
        "residuals.",
        ("lazy-vs-rich",),
    ),
    Step(
        "Many minima, connected: mode connectivity modulo permutations",
        "The argument showed that a network's loss has many minima; it did not say how they lie. Two networks trained on "
        "the same digits from different starts reach equally low losses, but the straight segment between their weights "
        "climbs to a barrier. Part of that barrier is bookkeeping: hidden units can be listed in any order, and permuting "
        "one network's units to match the other's (weight matching, Ainsworth et al. 2023) lowers it at every width, and "
        "between the widest networks removes most of it, in the direction of Entezari et al. 2022's conjecture that none "
        "is left; between the narrowest it sometimes removes only a little. And a curved path with one trained bend joins "
        "the two minima at nearly their own loss (Garipov et al. 2018). The loss is non-convex, yet its low regions are "
        "connected. These are trends measured on one small data set with two pairs of networks per width, not theorems.",
        ("mode-connectivity",),
    ),
    Step(
        "How often gradient descent meets a spurious minimum",
        "Non-convexity allows local minima that are not global; whether gradient descent meets them is a question "
        "of measure. On the cleanest case — a ReLU student of a ReLU teacher of the same size, on the exact "
        "population loss of Gaussian inputs, where zero loss is attainable — a growing share of random starts ends at "
        "a genuine local minimum with positive loss as the network grows (Safran & Shamir 2018); one unit more than "
        "the teacher makes those runs rare. The rates here are measured with their binomial error bars on one "
        "setting, not a law for every network.",
        ("spurious-minima",),
    ),
    Step(
        "Convex is not the same as predicting well: fixed features show double descent",
        "Convexity settles whether a fit is found, not how well it predicts. A linear model on the first p of D weak "
        "features, fitted by minimum-norm least squares, has a convex loss for every p, yet its expected test error "
        "rises as p nears the number of examples n, is infinite at the interpolation threshold p = n, and falls again "
        "as p grows past it (Belkin, Hsu & Xu's exact formula, checked here by Monte Carlo): the bump is a matter of "
        "statistics, not of optimisation. Whether the far side beats the best small model depends on the features and "
        "the noise; the experiment reports which at its settings. Random ReLU features show the same bump against the "
        "number of features per example, with its peak near N = n; a ridge penalty tuned on held-out data removes it "
        "(Mei & Montanari 2019; Nakkiran, Venkat, Kakade & Ma 2021).",
        ("double-descent",),
    ),
    Step(
        "How gradient descent moves on such a loss: at the edge of stability",
        "On a quadratic, gradient descent with step size η is stable only while the curvature along every direction is "
        "below 2/η; the classical analyses of training assume the loss's sharpness (its largest Hessian eigenvalue) "
        "stays below that limit. On a network's loss it does not stay put: full-batch gradient descent first makes the "
        "loss sharper as it trains, until the sharpness reaches 2/η, and then keeps it hovering there while the loss "
        "still falls, though no longer at every step. This is an observation about typical runs (Cohen et al. 2021), "
        "checked here on one small network at the report's one seed (the experiment's module records five), not a "
        "theorem: a run whose sharpness levels off below 2/η would not show it.",
        ("edge-of-stability",),
    ),
)
"""The argument's steps, in its order; every built-in experiment checks exactly one of them."""

_CONCLUSION = (
    "Convexity is a property of the loss as a function of the parameters, not of the model as a function of its "
    "input. A fixed-feature model keeps it and pays in features: the modeller must choose them, and in high "
    "dimension there are too many to choose. A network gives it up and gains the features: it finds the directions "
    "that matter, at the price of a loss with many minima that no regulariser or optimiser removes. Part II shows "
    "what lies around that price: scaled to stay lazy, a network falls back to fixed features; its many minima are "
    "largely copies of one another under permutation, joined by low paths; gradient descent meets a spurious one "
    "less often once the network has a unit to spare; and it trains at the edge of stability rather than below it."
)

def _sources(part: str) -> tuple[Source, ...]:
    data = json.loads(Path(__file__).with_name("sources.json").read_text(encoding="utf-8"))[part]
    return tuple(Source(**{**d, "experiments": tuple(d["experiments"])}) for d in data)


#: The works the argument rests on, and those of the methods the experiments use (report/sources.json).
ARGUMENT_SOURCES = _sources("argument")
METHOD_SOURCES = _sources("methods")

SOURCES = ARGUMENT_SOURCES + METHOD_SOURCES


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _link(result, *, count: bool) -> str:
    link = f"<a href='#{_e(result.name)}'>§{result.number} {_e(result.title)}</a>"
    return f"{link} ({sum(c.holds for c in result.claims)} of {len(result.claims)} claims hold)" if count else link


def _verdict(step: Step, by_name: dict) -> tuple[str, bool]:
    """The sentence on what this run's claims say about ``step``, and whether they all hold."""
    present = [by_name[n] for n in step.experiments if n in by_name]
    missing = [n for n in step.experiments if n not in by_name]
    claims = [(r, c) for r in present for c in r.claims]
    held = sum(c.holds for _, c in claims)
    where = "; ".join(_link(r, count=len(present) > 1) for r in present)
    if not claims:
        text = f"Checked in {where}, which judged no claims."
    elif held == len(claims):
        first = "This run bears it out" if not missing else "This run checks part of it"
        text = f"{first}: {f'all {held} claims hold' if held > 1 else 'its one claim holds'} — {where}."
    else:
        failed = "; ".join(f"“{_e(c.statement)}” (§{r.number})" for r, c in claims if not c.holds)
        text = (f"This run does <b>not</b> bear it out in full: {held} of {len(claims)} claims hold — {where}. "
                f"Failed: {failed}.")
    if missing:
        text += f" Not run in this report: {_e(', '.join(missing))}."
    return text, bool(claims) and held == len(claims)


def _source_html(s: Source, by_name: dict) -> str:
    present = sorted({n: by_name[n] for n in s.experiments if n in by_name}.values(), key=lambda r: r.number)
    used = ", ".join(f"<a href='#{_e(r.name)}'>§{r.number}</a>" for r in present)
    return (f"<li>{_e(s.authors)} ({_e(s.year)}). <i>{_e(s.title.rstrip('.'))}</i>. {_e(s.venue)}. "
            f"<span class='use'>Used for: {_e(s.use)}{f' — {used}' if used else ''}.</span></li>")


def closing_html(results: Sequence) -> str:
    """The closing section and the sources, for the experiments in ``results`` ("" if none of them is built in)."""
    by_name = {r.name: r for r in results}
    steps = [s for s in STEPS if any(n in by_name for n in s.experiments)]
    if not steps:
        return ""
    paragraphs = []
    part_of = {name: part for part in parts() for name in part.experiments}
    shown = set()
    for s in steps:
        part = part_of.get(s.experiments[0])
        if part is not None and part.numeral not in shown:
            shown.add(part.numeral)
            paragraphs.append(f"<p class='part-mark'><b>Part {_e(part.numeral)}.</b> {_e(part.title)}</p>")
        verdict, holds = _verdict(s, by_name)
        paragraphs.append(f"<div class='step {'held' if holds else 'failed'}-step'><h3>{_e(s.heading)}</h3><p>{_e(s.text)}</p>"
                          f"<p class='verdict'>{verdict}</p></div>")
    skipped = [s.heading for s in STEPS if s not in steps]
    if skipped:
        paragraphs.append(f"<p class='meta'>Not checked in this report (its experiments were not run): {_e('; '.join(skipped))}.</p>")
    claims = [c for r in results for c in r.claims]
    held = sum(c.holds for c in claims)
    tally = (f"All {held} claims of this report hold." if held == len(claims) > 1 else
             "The one claim of this report holds." if held == len(claims) else
             f"{held} of {len(claims)} claims of this report hold; the steps above say which failed, and the argument "
             "stands only as far as its claims do.")
    ran = sum(n in by_name for s in STEPS for n in s.experiments)
    total = sum(len(s.experiments) for s in STEPS)
    partial = "" if ran == total else f" This report ran {ran} of its {total} experiments, so it checks only part of it."
    lists = "".join(f"<h3>{heading}</h3><ol class='sources'>{''.join(_source_html(s, by_name) for s in used)}</ol>"
                    for heading, group in (("The argument", ARGUMENT_SOURCES), ("The methods", METHOD_SOURCES))
                    if (used := [s for s in group if any(n in by_name for n in s.experiments)]))
    return (
        "<section id='closing'><h2>What the experiments add up to</h2>" + "".join(paragraphs)
        + f"<h3>In sum</h3><p>{_e(_CONCLUSION)}{_e(partial)}</p><p class='verdict'>{tally}</p></section>"
        "<section id='sources'><h2>Sources</h2><p>The works the argument and the experiments' methods come from, as "
        "losslab's code cites them; each names the sections that use it.</p>" + lists + "</section>"
    )
