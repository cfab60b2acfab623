"""Step 6 of the argument: the curse of the fixed basis, and what feature learning buys.

A model linear in its parameters is a fixed basis. The full monomial basis of degree ≤ k in d
variables has

    p(d, k) = C(d + k, k)

coefficients — degree 4 in 100 variables: 4,598,126 — so a least-squares fit needs n ≳ C(d+k, k)
samples however simple the target. Kernel ridge regression with (1 + x·x'/c)^k fits the same
(weighted) basis through an n × n Gram matrix without materialising it, but it is still that basis.

The target here is a multi-index function y = g(Uᵀx) + ε with x ∈ R^d, U a random d × r
orthonormal matrix, r ≪ d, not told to any model. Four models are fitted on n samples:

(a) all monomials of degree ≤ k, ridgeless (p > n: the minimum-norm interpolant), materialised
    when n·p fits the budget, else in kernel form — the same fit; the same basis with the network's
    ridge λ is shown too, to show it is not the missing regularisation;
(b) the linear basis 1, x_1, …, x_d: underfits, stuck at the floor 1 − ‖E[z g(z)]‖²/Var g;
(c) m random features σ(w_i·x + b_i), W fixed: ridge least squares;
(d) a two-layer network v·σ(Wx + b) + c trained with Adam (and the same λ as weight decay),
    which learns W.

The network can fit g(Uᵀx) with its first layer in span(U); it should beat every fixed basis at
the largest n, and its weights should move into span(U): the share ‖WU‖_F/‖W‖_F is ≈ √(r/d) at a
random init (E[‖WU‖²_F/‖W‖²_F] = r/d exactly) and close to 1 after training. References:
Ghorbani, Mei, Misiakiewicz & Montanari (2019, 2021) on the limits of random features, kernels and
linearized networks; Damian, Lee & Soltanolkotabi (2022) and Abbe, Boix-Adserà & Misiakiewicz
(2022) on networks learning the hidden directions by gradient descent.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from ..data.multi_index import LINKS, multi_index, multi_index_target
from ..models import ACTIVATIONS, Polynomial, monomial_exponents
from ..random_streams import child_seed
from . import _feature_learning_models as M
from .base import Claim, Measured, claim
from .settings import Integer, Integers, OneOf, Real, Rule, Settings, setting
from .story import from_argument

__all__ = [
    "COUNT_DEGREES", "COUNT_DIMS", "EXPERIMENT", "QUICK", "FeatureLearningMeasured", "FeatureLearningSettings", "claims",
    "count_exponents", "measure", "model_names", "monomial_counts",
]


COUNT_DIMS = (1, 10, 100, 1000)
COUNT_DEGREES = (1, 2, 3, 4)
MAX_ENUMERATED = 20_000  # brute-force enumeration (monomial_exponents) up to this many monomials
MAX_TREE = 200_000  # Polynomial(d, k).n_params (its product tree) up to this many


@dataclass(frozen=True)
class FeatureLearningSettings(Settings):
    """Settings of the feature-learning experiment (defaults: the full run)."""

    d: int = setting(30, Integer(2), "input dimension")
    hidden_dims: int = setting(2, Integer(1, 3), "r, the number of hidden directions")
    link: str = setting("tanh-sum", OneOf(tuple(LINKS)), "g, the link of the multi-index target")
    noise: float = setting(0.1, Real(0), "standard deviation of the label noise")
    degree: int = setting(3, Integer(1), "k, the degree of the full monomial basis")
    n_values: tuple[int, ...] = setting((250, 500, 1000, 2000, 4000), Integers(2, increasing=True), "training-set sizes")
    n_test: int = setting(5000, Integer(10), "size of the test set")
    rf_width: int = setting(512, Integer(1), "number of random features")
    width: int = setting(64, Integer(1), "hidden units of the network")
    activation: str = setting("relu", OneOf(tuple(ACTIVATIONS)), "σ of the network and of the random features")
    steps: int = setting(2000, Integer(1), "Adam steps (full batch)")
    lr: float = setting(0.01, Real(0, low_open=True), "Adam's learning rate")
    l2: float = setting(1e-3, Real(0), "the network's weight decay, and the ridge λ of the random features and kernel ridge")
    max_feature_entries: int = setting(3_000_000, Integer(0),
                                       "n·C(d + k, k) up to which the monomial fit materialises its features")

    RULES = (
        Rule(lambda s: s.hidden_dims <= s.d - 1, "hidden_dims <= d - 1 (fewer hidden directions than inputs)",
             ("hidden_dims", "d"), {"d": 2}),
        Rule(lambda s: s.n_values[-1] < math.comb(s.d + s.degree, s.degree),
             "every n below C(d + k, k), k = degree (the full basis must have more coefficients than samples)",
             ("n_values", "d", "degree"), {"n_values": (100, 6000)}),
    )


QUICK = {"n_values": (250, 1000, 4000), "n_test": 2000, "steps": 1000, "rf_width": 256}


def count_exponents(d: int, k: int) -> int:
    """#{α ∈ N^d : |α| ≤ k}, counted without the closed form: ways[s] = #{α of the first j variables with |α| = s},
    extended one variable at a time (ways'[s] = Σ_{t ≤ s} ways[s − t], the new variable's exponent being t)."""
    ways = [1] + [0] * k
    for _ in range(d):
        ways = list(itertools.accumulate(ways))
    return sum(ways)


def monomial_counts() -> tuple[dict[str, int], bool]:
    """The monomial counts ``{"d=D,k=K": count}`` for COUNT_DIMS × COUNT_DEGREES, counted by :func:`count_exponents`;
    ``agree``: the closed form C(d + k, k) and, where cheap, brute-force enumeration and Polynomial's own count all
    give the same numbers."""
    counts, agree = {}, True
    for d in COUNT_DIMS:
        for k in COUNT_DEGREES:
            count = count_exponents(d, k)
            counts[f"d={d},k={k}"] = count
            agree &= math.comb(d + k, k) == count
            if count <= MAX_ENUMERATED:
                agree &= monomial_exponents(d, k).shape[0] == count
            if count <= MAX_TREE:
                agree &= Polynomial(d, k).n_params == count
    return counts, agree


@dataclass(frozen=True)
class FeatureLearningMeasured(Measured):
    """What the feature-learning experiment measured; errors are test MSE / Var f* on fresh inputs."""

    monomial_counts: dict[str, int]  # "d=D,k=K" → #monomials of degree ≤ K in D variables (counted)
    n_monomials: int  # C(d + k, k) of this run
    n_values: list[int]
    test_errors: dict[str, list[float]]  # model key (M.MODELS) → error at each n
    train_errors: dict[str, list[float]]  # training MSE / Var(y)
    monomial_methods: list[str]  # how the monomial fit was computed at each n
    linear_floor: float  # 1 − ‖E[z g(z)]‖²/Var g
    best_fixed: str  # key of the fixed basis with the lowest error at the largest n
    ratio_best_fixed_to_network: float
    overlap_before: float  # ‖WU‖_F/‖W‖_F at init and after training at the largest n
    overlap_after: float
    overlap_expected: float  # √(r/d)
    overlap_after_per_n: list[float]
    unit_overlaps_after: torch.Tensor  # ‖Uᵀw_j‖/‖w_j‖ per hidden unit, after training
    singular_overlap_before: float
    singular_overlap_after: float
    U: torch.Tensor  # (d, r) hidden directions
    W_before: torch.Tensor  # (width, d) first layer at init and after training at the largest n
    W_after: torch.Tensor
    n_params_network: int
    counts_agree: bool  # the counts agree with the closed form, enumeration and Polynomial's count
    d: int
    hidden_dims: int
    link: str
    noise: float
    degree: int
    width: int
    rf_width: int


def measure(settings: FeatureLearningSettings, seed: int, say) -> FeatureLearningMeasured:
    """Fit the four models at every n on nested samples of one multi-index data set; measure errors and overlaps.

    Seeds (:mod:`losslab.random_streams`): U from the ``"target"`` stream of ``seed``; the training pool (the first
    n rows used at each n) from ``multi_index(seed=seed, sample_seed=child_seed(seed, "data", 0))`` and the test
    inputs from ``sample_seed=child_seed(seed, "data", 1)``; the random features ``RandomFeatures(seed=seed)`` (its
    ``"features"`` stream); the network's init and training ``seed`` (its ``"init"`` stream).
    """
    s = settings
    d, r, k = s.d, s.hidden_dims, s.degree
    count = math.comb(d + k, k)
    scale = float(d)
    counts, counts_agree = monomial_counts()

    target = multi_index_target(d, r, s.link, seed=seed)
    X_all, y_all, U = multi_index(s.n_values[-1], d=d, r=r, link=s.link, noise=s.noise, seed=seed,
                                  sample_seed=child_seed(seed, "data", 0))
    X_test, _, _ = multi_index(s.n_test, d=d, r=r, link=s.link, noise=0.0, seed=seed, sample_seed=child_seed(seed, "data", 1))
    f_test = target(X_test)
    floor = M.linear_floor(target.g, r)

    errors = {key: [] for key, _ in M.MODELS}
    train_errors = {key: [] for key, _ in M.MODELS}
    methods, overlaps_after = [], []
    for n in s.n_values:
        say(f"n = {n}: fixed bases and a network of width {s.width}")
        X, y = X_all[:n], y_all[:n]
        var_y = float(y.var(unbiased=False))
        fits = {
            "linear": M.fit_linear(X, y, X_test),
            "monomials": M.fit_monomials(X, y, X_test, degree=k, scale=scale, max_feature_entries=s.max_feature_entries),
            "kernel_ridge": M.fit_kernel_ridge(X, y, X_test, degree=k, scale=scale, ridge=s.l2),
            "random_features": M.fit_random_features(X, y, X_test, s, seed),
        }
        fits["network"], start, end = M.train_network(X, y, X_test, s, seed)
        for key, fit in fits.items():
            errors[key].append(M.relative_error(fit.test_pred, f_test))
            train_errors[key].append(fit.train_mse / var_y)
        methods.append(fits["monomials"].method)
        overlaps_after.append(M.subspace_fraction(end["W"], U))
    W0, W1 = start["W"], end["W"]

    fixed = {key: v[-1] for key, v in errors.items() if key != "network"}
    best_key = min(fixed, key=fixed.get)
    return FeatureLearningMeasured(
        monomial_counts=counts, n_monomials=count, n_values=list(s.n_values), test_errors=errors, train_errors=train_errors,
        monomial_methods=methods, linear_floor=floor, best_fixed=best_key,
        ratio_best_fixed_to_network=fixed[best_key] / errors["network"][-1], overlap_before=M.subspace_fraction(W0, U),
        overlap_after=M.subspace_fraction(W1, U), overlap_expected=math.sqrt(r / d), overlap_after_per_n=overlaps_after,
        unit_overlaps_after=M.unit_overlaps(W1, U), singular_overlap_before=M.singular_overlap(W0, U),
        singular_overlap_after=M.singular_overlap(W1, U), U=U, W_before=W0, W_after=W1,
        n_params_network=sum(v.numel() for v in end.values()), counts_agree=counts_agree, d=d, hidden_dims=r, link=s.link,
        noise=s.noise, degree=k, width=s.width, rf_width=s.rf_width,
    )


def model_names(degree: int) -> dict[str, str]:
    """Model key → its label, with the degree filled in."""
    return {key: label.replace("degree k", f"degree {degree}") for key, label in M.MODELS}


def claims(settings: FeatureLearningSettings, m: FeatureLearningMeasured) -> tuple[Claim, ...]:
    """The basis explodes; the network wins at the largest n; the monomials interpolate; linear sits at its floor;
    the network's first layer turns into span(U)."""
    k, d, count, n_max, counts = m.degree, m.d, m.n_monomials, m.n_values[-1], m.monomial_counts
    last = {key: v[-1] for key, v in m.test_errors.items()}
    train_max = max(m.train_errors["monomials"])
    before, after, expected = m.overlap_before, m.overlap_after, m.overlap_expected
    return (
        claim(
            "fixed-basis-explodes",
            f"The fixed basis explodes with d: degree ≤ k in d variables has C(d + k, k) monomials, and degree 4 in 100 "
            f"variables already has 4,598,126 (here degree {k} in d = {d}: {count:,} > every n)",
            counts["d=100,k=4"] == 4_598_126 and m.counts_agree,
            "{c:,} exponent vectors with |α| ≤ 4 in d = 100, counted variable by variable (not from the formula); "
            "C(d + k, k), brute-force enumeration and Polynomial's count agree with the counts wherever run: {agree}",
            c=counts["d=100,k=4"], agree=m.counts_agree,
        ),
        claim(
            "network-lowest-error",
            f"With n = {n_max} samples the trained network's test error is the lowest, at least 2× below every fixed basis",
            m.ratio_best_fixed_to_network >= 2.0,
            "network {net:.2e} vs best fixed basis ({best}) {best_err:.2e}: {ratio:.1f}× lower (threshold 2×)",
            net=last["network"], best=model_names(k)[m.best_fixed], best_err=last[m.best_fixed], ratio=m.ratio_best_fixed_to_network,
        ),
        claim(
            "monomials-interpolate",
            f"The full degree-{k} basis ({count:,} coefficients > n) interpolates the noisy samples at every n — it overfits "
            "rather than learns: relative training error ≈ 0, test error well above the network's",
            train_max <= 1e-6 and last["monomials"] >= 2 * last["network"],
            "max train MSE/Var(y) = {train:.1e} ≤ 1e-6; test error at n = {n} {test:.2e} vs network {net:.2e} (≥ 2×)",
            train=train_max, n=n_max, test=last["monomials"], net=last["network"],
        ),
        claim(
            "linear-at-bias-floor",
            "The linear basis underfits: at the largest n its test error sits at its bias floor, "
            "1 − ‖E[z g(z)]‖²/Var g (the best any affine function can do), which no amount of data lowers",
            abs(last["linear"] - m.linear_floor) <= 0.1 * m.linear_floor,
            "linear test error {lin:.4f} vs floor {floor:.4f} (by quadrature): within {gap:.1%} ≤ 10%",
            plain="The floor is the error of the best possible straight-line fit, computed by numerical integration over the "
                  "input distribution; the fitted linear model is already there, so more data cannot lower its error. Its "
                  "test error is measured on a finite test set, so it can come out a little below the floor.",
            lin=last["linear"], floor=m.linear_floor, gap=abs(last["linear"] - m.linear_floor) / m.linear_floor,
        ),
        claim(
            "network-finds-hidden-directions",
            "The network found the hidden directions: the share of its first-layer weights in span(U), ‖WU‖_F/‖W‖_F, "
            f"goes from ≈ √(r/d) = {expected:.3f} at initialisation to close to 1 after training",
            abs(before / expected - 1) <= 0.25 and after >= 0.9,
            "before {before:.3f} (within 25% of √(r/d) = {expected:.3f}: {rel:+.1%}); after (n = {n}) {after:.3f} ≥ 0.9",
            plain="The share is how much of the first layer's weights lies in the few directions the target depends on: "
                  "what a random layer would have at the start, nearly all of it after training.",
            before=before, expected=expected, rel=before / expected - 1, n=n_max, after=after,
        ),
    )


EXPERIMENT = from_argument("feature-learning", settings=FeatureLearningSettings, quick=QUICK, measure=measure, claims=claims)
