"""The end of the report: the argument tied back to the claims that checked it, and its sources.

:func:`closing_html` draws, after the experiments, one paragraph per step of the argument (:data:`STEPS`),
each followed by what this run's claims say about it — counted from the results, so a step whose claims
failed is reported as not borne out, and a step whose experiments were not run (``demo --only``) is left
out and named. Then the sources (:data:`SOURCES`): the works the argument and the experiments' methods
come from, each one as the code's docstrings cite it (a test finds every ``cited`` string in the source).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

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
)
"""The argument's steps, in its order; every built-in experiment checks exactly one of them."""

_CONCLUSION = (
    "Convexity is a property of the loss as a function of the parameters, not of the model as a function of its "
    "input. A fixed-feature model keeps it and pays in features: the modeller must choose them, and in high "
    "dimension there are too many to choose. A network gives it up and gains the features: it finds the directions "
    "that matter, at the price of a loss with many minima that no regulariser or optimiser removes."
)

_CONVEXITY = ("linear-in-parameters", "two-layer", "depth", "sigmoid-loss", "relu-surface", "regularization")
_LANCZOS = ("depth", "regularization", "sigmoid-mlp", "gd-vs-sgd")
_POLYFITS = ("underfitting", "overfitting", "more-data")
_FITS = ("linear-in-parameters", "underfitting", "overfitting", "more-data", "bias-variance", "two-layer", "feature-learning")
_TRAINED = ("two-layer", "depth", "feature-learning", "regularization")
_CLASSIFY = ("sigmoid-mlp", "gd-vs-sgd")

ARGUMENT_SOURCES = (
    Source("Boyd & Vandenberghe 2004", "S. Boyd and L. Vandenberghe", "2004", "Convex Optimization", "Cambridge University Press",
           "convexity proofs by composition (§3.2), logistic regression (§7.1)", _CONVEXITY),
    Source("Rahimi & Recht 2007", "A. Rahimi and B. Recht", "2007", "Random features for large-scale kernel machines",
           "Advances in Neural Information Processing Systems 20", "random features: a network's hidden layer, frozen",
           ("two-layer", "feature-learning", "depth")),
    Source("Hastie, Tibshirani & Friedman 2009", "T. Hastie, R. Tibshirani and J. Friedman", "2009",
           "The Elements of Statistical Learning, 2nd ed.", "Springer", "the bias–variance decomposition (§7.3)", ("bias-variance",)),
    Source("Ghorbani, Mei, Misiakiewicz & Montanari (2019, 2021)", "B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari", "2019",
           "Limitations of lazy training of two-layers neural networks", "Advances in Neural Information Processing Systems 32",
           "the limits of random features and linearized networks", ("feature-learning",)),
    Source("Ghorbani, Mei, Misiakiewicz & Montanari (2019, 2021)", "B. Ghorbani, S. Mei, T. Misiakiewicz and A. Montanari", "2021",
           "Linearized two-layers neural networks in high dimension", "Annals of Statistics 49(2)",
           "the limits of kernels and linearized networks in high dimension", ("feature-learning",)),
    Source("Damian, Lee & Soltanolkotabi (2022)", "A. Damian, J. D. Lee and M. Soltanolkotabi", "2022",
           "Neural networks can learn representations with gradient descent", "Conference on Learning Theory (COLT)",
           "networks learning the hidden directions", ("feature-learning",)),
    Source("Abbe, Boix-Adserà & Misiakiewicz", "E. Abbe, E. Boix-Adserà and T. Misiakiewicz", "2022",
           "The merged-staircase property: a necessary and nearly sufficient condition for SGD learning of sparse functions "
           "on two-layer neural networks", "Conference on Learning Theory (COLT)", "networks learning the hidden directions",
           ("feature-learning",)),
    Source("Goodfellow, Bengio & Courville 2016", "I. Goodfellow, Y. Bengio and A. Courville", "2016", "Deep Learning", "MIT Press",
           "weight-space symmetry as a certificate of non-convexity (§8.2.2)", ("two-layer", "depth")),
    Source("Baldi & Hornik 1989", "P. Baldi and K. Hornik", "1989",
           "Neural networks and principal component analysis: learning from examples without local minima",
           "Neural Networks 2(1)", "deep linear networks", ("depth",)),
    Source("Kawaguchi 2016", "K. Kawaguchi", "2016", "Deep learning without poor local minima",
           "Advances in Neural Information Processing Systems 29", "deep linear networks", ("depth",)),
    Source("Schraudolph 2002", "N. N. Schraudolph", "2002", "Fast curvature matrix-vector products for second-order gradient descent",
           "Neural Computation 14(7)", "the Hessian as Gauss–Newton plus the model's curvature", ("depth",)),
    Source("Martens 2020", "J. Martens", "2020", "New insights and perspectives on the natural gradient method",
           "Journal of Machine Learning Research 21", "the Hessian as Gauss–Newton plus the model's curvature", ("depth",)),
    Source("Chen, Lu & Hecht-Nielsen 1993", "A. M. Chen, H. Lu and R. Hecht-Nielsen", "1993",
           "On the geometry of feedforward neural network error surfaces", "Neural Computation 5(6)",
           "symmetric copies of a network, counted as one minimum", ("gd-vs-sgd",)),
    Source("Fukumizu & Amari 2000", "K. Fukumizu and S. Amari", "2000",
           "Local minima and plateaus in hierarchical structures of multilayer perceptrons", "Neural Networks 13(3)",
           "saddles from a narrower network embedded in a wider one", ("sigmoid-mlp",)),
    Source("Srivastava et al. 2014", "N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever and R. Salakhutdinov", "2014",
           "Dropout: a simple way to prevent neural networks from overfitting", "Journal of Machine Learning Research 15",
           "dropout", ("regularization",)),
    Source("Wager, Wang & Liang 2013", "S. Wager, S. Wang and P. Liang", "2013", "Dropout training as adaptive regularization",
           "Advances in Neural Information Processing Systems 26", "dropout as an L2 penalty in expectation", ("regularization",)),
    Source("Keskar et al. 2017", "N. S. Keskar, D. Mudigere, J. Nocedal, M. Smelyanskiy and P. T. P. Tang", "2017",
           "On large-batch training for deep learning: generalization gap and sharp minima",
           "International Conference on Learning Representations", "the claim that SGD's noise escapes poor minima", ("gd-vs-sgd",)),
    Source("Zhu et al. 2019", "Z. Zhu, J. Wu, B. Yu, L. Wu and J. Ma", "2019",
           "The anisotropic noise in stochastic gradient descent: its behavior of escaping from sharp minima and "
           "regularization effects", "International Conference on Machine Learning", "the claim that SGD's noise escapes poor minima",
           ("gd-vs-sgd",)),
)
"""The works the argument's steps come from, as the code cites them."""

METHOD_SOURCES = (
    Source("Li, Xu, Taylor, Studer & Goldstein 2018", "H. Li, Z. Xu, G. Taylor, C. Studer and T. Goldstein", "2018",
           "Visualizing the loss landscape of neural nets", "Advances in Neural Information Processing Systems 31",
           "plane slices with filter-normalised directions", ("linear-in-parameters", "two-layer")),
    Source("Goodfellow, Vinyals & Saxe (2015)", "I. J. Goodfellow, O. Vinyals and A. M. Saxe", "2015",
           "Qualitatively characterizing neural network optimization problems", "International Conference on Learning Representations",
           "the loss along a line between two points", ("sigmoid-loss",)),
    Source("Golub & Welsch 1969", "G. H. Golub and J. H. Welsch", "1969", "Calculation of Gauss quadrature rules",
           "Mathematics of Computation 23(106)", "exact population errors by Gauss–Legendre quadrature", _POLYFITS),
    Source("Higham 2002", "N. J. Higham", "2002", "Accuracy and Stability of Numerical Algorithms, 2nd ed.", "SIAM",
           "float64 rounding bounds of dot products and least squares", ("linear-in-parameters", "overfitting")),
    Source("Golub & Van Loan", "G. H. Golub and C. F. Van Loan", "2013", "Matrix Computations, 4th ed.", "Johns Hopkins University Press",
           "least squares (§5.3, §6.1) and the Lanczos method (§10.1)", _FITS + _LANCZOS),
    Source("Saunders, Gammerman & Vovk 1998", "C. Saunders, A. Gammerman and V. Vovk", "1998",
           "Ridge regression learning algorithm in dual variables", "International Conference on Machine Learning",
           "kernel ridge regression", ("feature-learning",)),
    Source("Kingma & Ba 2015", "D. P. Kingma and J. Ba", "2015", "Adam: a method for stochastic optimization",
           "International Conference on Learning Representations", "the Adam optimiser", _TRAINED),
    Source("Rumelhart, Hinton & Williams 1986", "D. E. Rumelhart, G. E. Hinton and R. J. Williams", "1986",
           "Learning representations by back-propagating errors", "Nature 323", "backpropagation by hand", ("sigmoid-mlp",)),
    Source("Pearlmutter 1994", "B. A. Pearlmutter", "1994", "Fast exact multiplication by the Hessian", "Neural Computation 6(1)",
           "Hessian-vector products", _CONVEXITY + _LANCZOS),
    Source("Lanczos 1950", "C. Lanczos", "1950",
           "An iteration method for the solution of the eigenvalue problem of linear differential and integral operators",
           "Journal of Research of the National Bureau of Standards 45(4)", "extreme Hessian eigenvalues", _LANCZOS),
    Source("Wu & Simon 2000", "K. Wu and H. Simon", "2000", "Thick-restart Lanczos method for large symmetric eigenvalue problems",
           "SIAM Journal on Matrix Analysis and Applications 22(2)", "restarting Lanczos", _LANCZOS),
    Source("Parlett", "B. N. Parlett", "1998", "The Symmetric Eigenvalue Problem", "SIAM (Classics in Applied Mathematics 20)",
           "residual bounds of Ritz values (Thm 4.5.1)", _LANCZOS),
    Source("Kato–Temple", "T. Kato", "1949", "On the upper and lower bounds of eigenvalues", "Journal of the Physical Society of Japan 4",
           "the quadratic (Kato–Temple) error bound of Ritz values", _LANCZOS),
    Source("Kato–Temple", "G. Temple", "1928", "The theory of Rayleigh's principle as applied to continuous systems",
           "Proceedings of the Royal Society of London A 119", "the quadratic (Kato–Temple) error bound of Ritz values", _LANCZOS),
    Source("Mathias 1998", "R. Mathias", "1998", "Quadratic residual bounds for the Hermitian eigenvalue problem",
           "SIAM Journal on Matrix Analysis and Applications 19(2)", "the Kato–Temple bound for clusters of eigenvalues", _LANCZOS),
    Source("Nocedal & Wright", "J. Nocedal and S. J. Wright", "2006", "Numerical Optimization, 2nd ed.", "Springer",
           "the second-order test: minimum, saddle or maximum (Thm 2.3–2.4)", _CLASSIFY),
    Source("Hutchinson (1989)", "M. F. Hutchinson", "1989",
           "A stochastic estimator of the trace of the influence matrix for Laplacian smoothing splines",
           "Communications in Statistics – Simulation and Computation 18(3)", "stochastic trace and norm estimates",
           ("depth", *_CLASSIFY)),
    Source("Ghorbani, Krishnan & Xiao 2019", "B. Ghorbani, S. Krishnan and Y. Xiao", "2019",
           "An investigation into neural net optimization via Hessian eigenvalue density", "International Conference on Machine Learning",
           "Hessian spectral densities by stochastic Lanczos quadrature", ("depth",)),
    Source("Lin, Saad & Yang 2016", "L. Lin, Y. Saad and C. Yang", "2016", "Approximating spectral densities of large matrices",
           "SIAM Review 58(1)", "spectral densities", ("depth",)),
    Source("Golub & Meurant", "G. H. Golub and G. Meurant", "2010", "Matrices, Moments and Quadrature with Applications",
           "Princeton University Press", "Gauss quadrature from Lanczos", ("depth",)),
    Source("McNemar's z", "Q. McNemar", "1947",
           "Note on the sampling error of the difference between correlated proportions or percentages", "Psychometrika 12(2)",
           "McNemar's test for paired outcomes", ("gd-vs-sgd",)),
)
"""The works the methods of the built-in experiments come from, as the code cites them."""

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
        text = f"This run bears it out: {f'all {held} claims hold' if held > 1 else 'its one claim holds'} — {where}."
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
    for s in steps:
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
    argument, methods = ([s for s in group if any(n in by_name for n in s.experiments)] for group in (ARGUMENT_SOURCES, METHOD_SOURCES))
    return (
        "<section id='closing'><h2>What the experiments add up to</h2>" + "".join(paragraphs)
        + f"<h3>In sum</h3><p>{_e(_CONCLUSION)}</p><p class='verdict'>{tally}</p></section>"
        "<section id='sources'><h2>Sources</h2><p>The works the argument and the experiments' methods come from, as "
        "losslab's code cites them; each names the sections that use it.</p>"
        f"<h3>The argument</h3><ol class='sources'>{''.join(_source_html(s, by_name) for s in argument)}</ol>"
        f"<h3>The methods</h3><ol class='sources'>{''.join(_source_html(s, by_name) for s in methods)}</ol></section>"
    )
