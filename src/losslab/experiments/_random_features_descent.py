"""The random-features half of experiment 17: min-norm and tuned-ridge fits of N ReLU random features against N/n.

Setting (Mei & Montanari 2019, "The generalization error of random features regression: precise asymptotics and double
descent curve", arXiv:1908.05355): inputs x uniform on the sphere of radius √d in R^d, a linear target f*(x) = ⟨β, x⟩
with ‖β‖ = 1, labels y = f*(x) + τε with ε ~ N(0, 1). The model is :class:`~losslab.models.RandomFeatures` with ReLU:
f(x; v) = Σ_{i ≤ N} v_i·relu(w_i·x + b_i), w_i ~ N(0, I_d/d) and b_i ~ N(0, 1) drawn once and fixed (the library's
features, not Mei & Montanari's spherical w_i without a bias), linear in v. For each of ``draws`` independent draws
(β, data, features), every width N of the grid uses the first N of the same N_max features (nested models), and

* the ridgeless fit is the minimum-norm least-squares solution v̂ = Φ⁺y (LAPACK ``gelsd``, as
  :func:`losslab.fit.least_squares_result`); for N > n it interpolates the n training labels;
* the tuned-ridge fit minimises (1/n)‖Φv − y‖² + λ‖v‖² (the library's convention), v_λ = V diag(s/(s² + nλ)) Uᵀy from
  one SVD Φ = U diag(s) Vᵀ, with λ chosen per N and per draw from :data:`RIDGES` as the one of least mean squared
  error on a held-out validation set of n_val = n fresh examples (optimally tuned ridge as in Nakkiran, Venkat, Kakade
  & Ma 2021, "Optimal regularization can mitigate double descent", ICLR 2021, who tune it on a validation set).

The test error of a fit v is (1/n_test)Σ_j (f(x_j; v) − f*(x_j))² + τ² over n_test fresh inputs: the mean squared error
on fresh noisy labels, with the label noise averaged exactly.

Data: the k-th draw takes β from ``generator(seed, "target", k)``; its inputs (n + n_val + n_test rows: training,
validation, test) then its training and validation noise from ``generator(seed, "data", k, 1)`` (the key 1 sets it
apart from the Gaussian half's ``("data", k)``); its features are ``RandomFeatures(d, N_max, "relu",
seed=child_seed(seed, "features", k))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..fit import least_squares_result
from ..models import RandomFeatures
from ..problem import Problem
from ..random_streams import child_seed, generator

__all__ = ["RIDGES", "RandomFeaturesCurves", "random_features_curves", "widths"]

#: the ridge grid λ ∈ {10⁻⁶, 10⁻⁵·⁵, ..., 10¹} (15 values, half a decade apart) the validation set chooses from
RIDGES = tuple(10.0 ** (-6 + k / 2) for k in range(15))


@dataclass(frozen=True)
class RandomFeaturesCurves:
    """Per width N (increasing), over the draws: test errors of the ridgeless and the tuned-ridge fits.

    ``ridgeless`` and ``ridge`` are (len(widths), draws) float64 tensors; ``lambdas`` the chosen λ, same shape;
    ``library_gap`` the largest relative difference, on draw 0 at the largest width, between these fits and
    :func:`losslab.fit.least_squares_result` (ridge 0 and the chosen λ).
    """

    widths: list[int]
    ridgeless: torch.Tensor
    ridge: torch.Tensor
    lambdas: torch.Tensor
    library_gap: float


def widths(n: int, ratios: tuple[float, ...]) -> list[int]:
    """The widths N = round(r·n) (at least 1) of the ratios r, sorted, without repeats."""
    return sorted({max(1, round(r * n)) for r in ratios})


def _sphere(rows: int, d: int, g: torch.Generator) -> torch.Tensor:
    """``rows`` points uniform on the sphere of radius √d in R^d (normalised Gaussians), shape (rows, d)."""
    z = torch.randn(rows, d, generator=g, dtype=torch.float64)
    return z * (math.sqrt(d) / z.norm(dim=1, keepdim=True))


def _draw(n: int, d: int, noise: float, test: int, seed: int, k: int):
    """The k-th draw: (X (n + n + test, d), y (2n,) training then validation labels, f* at the test inputs (test,))."""
    beta = torch.randn(d, generator=generator(seed, "target", k), dtype=torch.float64)
    beta = beta / beta.norm()
    g = generator(seed, "data", k, 1)
    X = _sphere(2 * n + test, d, g)
    f = X @ beta
    y = f[: 2 * n] + noise * torch.randn(2 * n, generator=g, dtype=torch.float64)
    return X, y, f[2 * n:]


def _test_error(F: torch.Tensor, V: torch.Tensor, target: torch.Tensor, noise: float) -> torch.Tensor:
    """Test errors of the fits V (N, m) on features F (test, N): mean over rows of (Fv − f*)², plus τ²; shape (m,)."""
    return (F @ V - target[:, None]).pow(2).mean(0) + noise**2


def random_features_curves(n: int, d: int, ratios: tuple[float, ...], draws: int, noise: float, test: int, seed: int
                           ) -> RandomFeaturesCurves:
    """Fit every width of the grid to every draw, ridgeless and with tuned ridge; see the module docstring."""
    Ns = widths(n, ratios)
    ridges = torch.tensor(RIDGES, dtype=torch.float64)
    ridgeless = torch.empty(len(Ns), draws, dtype=torch.float64)
    ridge, lambdas = torch.empty_like(ridgeless), torch.empty_like(ridgeless)
    gap = math.nan
    for k in range(draws):
        X, y, target = _draw(n, d, noise, test, seed, k)
        rf = RandomFeatures(d, Ns[-1], "relu", seed=child_seed(seed, "features", k))
        F = rf.features(X)
        train, val, tst = F[:n], F[n:2 * n], F[2 * n:]
        for i, N in enumerate(Ns):
            phi = train[:, :N]
            v0 = torch.linalg.lstsq(phi, y[:n, None], driver="gelsd").solution  # minimum norm, (N, 1)
            ridgeless[i, k] = _test_error(tst[:, :N], v0, target, noise)[0]
            U, s, Vh = torch.linalg.svd(phi, full_matrices=False)
            V = Vh.T @ ((s / (s**2 + n * ridges[:, None])) * (U.T @ y[:n])).T  # (N, len(RIDGES)): v_λ for every λ
            best = int((val[:, :N] @ V - y[n:, None]).pow(2).mean(0).argmin())
            ridge[i, k] = _test_error(tst[:, :N], V[:, best:best + 1], target, noise)[0]
            lambdas[i, k] = RIDGES[best]
            if k == 0 and i == len(Ns) - 1:
                gap = _library_gap(rf, X[:n], y[:n], (v0[:, 0], 0.0), (V[:, best], RIDGES[best]))
    return RandomFeaturesCurves(widths=Ns, ridgeless=ridgeless, ridge=ridge, lambdas=lambdas, library_gap=gap)


def _library_gap(rf: RandomFeatures, X: torch.Tensor, y: torch.Tensor, *fits: tuple[torch.Tensor, float]) -> float:
    """max over ``fits`` (v, λ) of max |v − least_squares_result(problem, ridge=λ).theta| / max |that θ|."""
    problem = Problem(rf, X, y)
    worst = 0.0
    for v, lam in fits:
        ref = least_squares_result(problem, ridge=lam).theta
        worst = max(worst, float((v - ref).abs().max() / ref.abs().max()))
    return worst
