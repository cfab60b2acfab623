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

from .._checks import LosslabError, choice, finite_float, nonnegative_float, positive_int
from ..data.multi_index import LINKS, multi_index, multi_index_target
from ..models import ACTIVATIONS, Polynomial, monomial_exponents
from ..random_streams import child_seed
from . import _feature_learning_models as M
from ._legacy import Outcome, Table, claim, legacy_experiment

COUNT_DIMS = (1, 10, 100, 1000)
COUNT_DEGREES = (1, 2, 3, 4)
MAX_ENUMERATED = 20_000  # brute-force enumeration (monomial_exponents) up to this many monomials
MAX_TREE = 200_000  # Polynomial(d, k).n_params (its product tree) up to this many


@dataclass(frozen=True)
class Settings:
    """Full-run settings of the feature-learning experiment.

    Attributes:
        d: input dimension.
        hidden_dims: r, the number of hidden directions (1..3, fewer than d).
        link: g, one of losslab.data.multi_index.LINKS.
        noise: standard deviation of the label noise.
        degree: k, the degree of the full monomial basis.
        n_values: training-set sizes, increasing, each below C(d + k, k).
        n_test: size of the test set.
        rf_width: number of random features.
        width: hidden units of the network.
        activation: σ of the network and of the random features.
        steps: Adam steps (full batch).
        lr: Adam learning rate.
        l2: the network's weight decay, and the ridge λ of the random features and of the kernel-ridge line.
        max_feature_entries: n·C(d + k, k) up to which the monomial fit materialises its features.
    """

    d: int = 30
    hidden_dims: int = 2
    link: str = "tanh-sum"
    noise: float = 0.1
    degree: int = 3
    n_values: tuple[int, ...] = (250, 500, 1000, 2000, 4000)
    n_test: int = 5000
    rf_width: int = 512
    width: int = 64
    activation: str = "relu"
    steps: int = 2000
    lr: float = 0.01
    l2: float = 1e-3
    max_feature_entries: int = 3_000_000

    def __post_init__(self) -> None:
        d = positive_int("d", self.d, minimum=2)
        r = positive_int("hidden_dims", self.hidden_dims)
        if r > min(3, d - 1):
            raise LosslabError(f"expected hidden_dims between 1 and min(3, d - 1) = {min(3, d - 1)}, got hidden_dims={r}")
        choice("link", self.link, LINKS)
        nonnegative_float("noise", self.noise)
        k = positive_int("degree", self.degree)
        if not isinstance(self.n_values, tuple) or not self.n_values:
            raise LosslabError(f"expected n_values to be a non-empty tuple of sample sizes, got n_values={self.n_values!r}")
        for n in self.n_values:
            positive_int("each of n_values", n, minimum=2)
        if list(self.n_values) != sorted(set(self.n_values)):
            raise LosslabError(f"expected n_values strictly increasing, got n_values={self.n_values!r}")
        count = math.comb(d + k, k)
        if self.n_values[-1] >= count:
            raise LosslabError(
                f"expected every n below C(d + k, k) = {count:,} (the full basis must have more coefficients than samples), "
                f"got n={self.n_values[-1]}; raise d or degree, or lower n_values"
            )
        positive_int("n_test", self.n_test, minimum=10)
        positive_int("rf_width", self.rf_width)
        positive_int("width", self.width)
        choice("activation", self.activation, ACTIVATIONS)
        positive_int("steps", self.steps)
        finite_float("lr", self.lr, positive=True)
        nonnegative_float("l2", self.l2)
        positive_int("max_feature_entries", self.max_feature_entries, minimum=0)


QUICK = {"n_values": (250, 1000, 4000), "n_test": 2000, "steps": 1000, "rf_width": 256}


def count_exponents(d: int, k: int) -> int:
    """#{α ∈ N^d : |α| ≤ k}, counted without the closed form: ways[s] = #{α of the first j variables with |α| = s},
    extended one variable at a time (ways'[s] = Σ_{t ≤ s} ways[s − t], the new variable's exponent being t)."""
    ways = [1] + [0] * k
    for _ in range(d):
        ways = list(itertools.accumulate(ways))
    return sum(ways)


def monomial_counts() -> tuple[Table, dict, bool]:
    """The table of monomial counts, counted by :func:`count_exponents`; ``agree``: the closed form C(d + k, k) and,
    where cheap, brute-force enumeration and Polynomial's own count all give the same numbers."""
    rows, counts, agree = [], {}, True
    for d in COUNT_DIMS:
        row = [d]
        for k in COUNT_DEGREES:
            count = count_exponents(d, k)
            counts[f"d={d},k={k}"] = count
            agree &= math.comb(d + k, k) == count
            if count <= MAX_ENUMERATED:
                agree &= monomial_exponents(d, k).shape[0] == count
            if count <= MAX_TREE:
                agree &= Polynomial(d, k).n_params == count
            row.append(count)
        rows.append(tuple(row))
    table = Table("Monomials of total degree ≤ k in d variables, C(d + k, k): the size of the fixed basis",
                  ("d", *(f"k = {k}" for k in COUNT_DEGREES)), tuple(rows))
    return table, counts, agree


def run(settings: Settings, seed: int, say) -> Outcome:
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
    count_table, counts, counts_agree = monomial_counts()

    target = multi_index_target(d, r, s.link, seed=seed)
    X_all, y_all, U = multi_index(s.n_values[-1], d=d, r=r, link=s.link, noise=s.noise, seed=seed,
                                  sample_seed=child_seed(seed, "data", 0))
    X_test, _, _ = multi_index(s.n_test, d=d, r=r, link=s.link, noise=0.0, seed=seed, sample_seed=child_seed(seed, "data", 1))
    f_test = target(X_test)
    floor = M.linear_floor(target.g, r)

    errors = {key: [] for key, *_ in M.CURVES}
    train_errors = {key: [] for key, *_ in M.CURVES}
    methods, overlaps_after = [], []
    for n in s.n_values:
        say(f"n = {n}: fixed bases and a network of width {s.width}")
        X, y = X_all[:n], y_all[:n]
        var_y = float(y.var(unbiased=False))
        fits = {
            "linear": M.fit_linear(X, y, X_test),
            "monomials": M.fit_monomials(X, y, X_test, degree=k, scale=scale, max_feature_entries=s.max_feature_entries),
            "kernel_ridge": M.fit_kernel_ridge(X, y, X_test, degree=k, scale=scale, ridge=s.l2),
            "random_features": M.fit_random_features(X, y, X_test, width=s.rf_width, activation=s.activation, ridge=s.l2,
                                                     seed=seed),
        }
        fits["network"], start, end = M.train_network(X, y, X_test, width=s.width, activation=s.activation, lr=s.lr,
                                                      steps=s.steps, l2=s.l2, seed=seed)
        for key, fit in fits.items():
            errors[key].append(M.relative_error(fit.test_pred, f_test))
            train_errors[key].append(fit.train_mse / var_y)
        methods.append(fits["monomials"].method)
        overlaps_after.append(M.subspace_fraction(end["W"], U))
    W0, W1 = start["W"], end["W"]

    last = {key: errors[key][-1] for key in errors}
    fixed = {key: v for key, v in last.items() if key != "network"}
    best_key = min(fixed, key=fixed.get)
    ratio = fixed[best_key] / last["network"]
    before, after, expected = M.subspace_fraction(W0, U), M.subspace_fraction(W1, U), math.sqrt(r / d)
    n_max = s.n_values[-1]
    names = {key: label.replace("degree k", f"degree {k}") for key, label, *_ in M.CURVES}

    claims = (
        claim(
            f"The fixed basis explodes with d: degree ≤ k in d variables has C(d + k, k) monomials, and degree 4 in 100 "
            f"variables already has 4,598,126 (here degree {k} in d = {d}: {count:,} > every n)",
            counts["d=100,k=4"] == 4_598_126 and counts_agree,
            "{c:,} exponent vectors with |α| ≤ 4 in d = 100, counted variable by variable (not from the formula); "
            "C(d + k, k), brute-force enumeration and Polynomial's count agree with the counts wherever run: {agree}",
            c=counts["d=100,k=4"], agree=counts_agree,
        ),
        claim(
            f"With n = {n_max} samples the trained network's test error is the lowest, at least 2× below every fixed basis",
            ratio >= 2.0,
            "network {net:.2e} vs best fixed basis ({best}) {best_err:.2e}: {ratio:.1f}× lower (threshold 2×)",
            net=last["network"], best=names[best_key], best_err=fixed[best_key], ratio=ratio,
        ),
        claim(
            f"The full degree-{k} basis ({count:,} coefficients > n) interpolates the noisy samples at every n — it overfits "
            "rather than learns: relative training error ≈ 0, test error well above the network's",
            max(train_errors["monomials"]) <= 1e-6 and last["monomials"] >= 2 * last["network"],
            "max train MSE/Var(y) = {train:.1e} ≤ 1e-6; test error at n = {n} {test:.2e} vs network {net:.2e} (≥ 2×)",
            train=max(train_errors["monomials"]), n=n_max, test=last["monomials"], net=last["network"],
        ),
        claim(
            "The linear basis underfits: at the largest n its test error sits at its bias floor, "
            "1 − ‖E[z g(z)]‖²/Var g (the best any affine function can do), which no amount of data lowers",
            abs(last["linear"] - floor) <= 0.1 * floor,
            "linear test error {lin:.4f} vs floor {floor:.4f} (by quadrature): within {gap:.1%} ≤ 10%",
            lin=last["linear"], floor=floor, gap=abs(last["linear"] - floor) / floor,
        ),
        claim(
            "The network found the hidden directions: the share of its first-layer weights in span(U), ‖WU‖_F/‖W‖_F, "
            f"goes from ≈ √(r/d) = {expected:.3f} at initialisation to close to 1 after training",
            abs(before / expected - 1) <= 0.25 and after >= 0.9,
            "before {before:.3f} (within 25% of √(r/d) = {expected:.3f}: {rel:+.1%}); after (n = {n}) {after:.3f} ≥ 0.9",
            before=before, expected=expected, rel=before / expected - 1, n=n_max, after=after,
        ),
    )

    error_rows = tuple(
        (n, *(round(errors[key][i], 5) for key, *_ in M.CURVES), methods[i]) for i, n in enumerate(s.n_values)
    )
    error_table = Table(
        f"Test error / Var f* against n (d = {d}, r = {r}, link {s.link}, noise {s.noise:g}); the last column says how the "
        f"{count:,}-monomial least-squares fit was computed (materialised features, or the same fit in kernel form)",
        ("n", *(names[key] for key, *_ in M.CURVES), "monomial fit computed as"), error_rows,
    )
    figures = (
        M.error_figure(list(s.n_values), errors, degree=k, count=count, width=s.width, rf_width=s.rf_width),
        M.overlap_figure(W0, W1, U, n=n_max),
    )
    numbers = {
        "monomial_counts": counts, "n_monomials": count, "n_values": list(s.n_values), "test_errors": errors,
        "train_errors": train_errors, "monomial_methods": methods, "linear_floor": floor, "best_fixed": best_key,
        "ratio_best_fixed_to_network": ratio, "overlap_before": before, "overlap_after": after, "overlap_expected": expected,
        "overlap_after_per_n": overlaps_after, "unit_overlaps_after": M.unit_overlaps(W1, U),
        "singular_overlap_before": M.singular_overlap(W0, U), "singular_overlap_after": M.singular_overlap(W1, U),
        "U": U, "W_before": W0, "W_after": W1, "n_params_network": sum(v.numel() for v in end.values()),
    }
    return Outcome(numbers=numbers, claims=claims, figures=figures, tables=(count_table, error_table))


EXPERIMENT = legacy_experiment(
    name="feature-learning",
    number=6,
    title="The curse of the fixed basis, and what feature learning buys",
    intro=(
        "A fixed basis must be chosen before seeing the data, and the full polynomial basis of degree k in d variables has "
        "C(d + k, k) terms: degree 4 in 100 variables is 4,598,126 coefficients. Here the target depends on only a few hidden "
        "directions (r = 2 of d = 30 by default), but no fixed basis knows which; a two-layer network learns its first layer, "
        "turns it towards those directions, and beats every fixed basis with the same samples."
    ),
    settings=Settings,
    quick=QUICK,
    run=run,
)
