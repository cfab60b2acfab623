"""Directions in parameter space along which a landscape is sliced.

All directions are flat vectors of shape (p,) in ``problem``'s coordinates (its free groups,
in ``problem.slices()`` order) and dtype.

* :func:`random_direction`: d ~ N(0, I_p), seeded.
* :func:`filter_normalized`: a direction rescaled filter by filter to the size of the centre
  (Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets"),
  so that slices of networks with different weight scales are comparable.
* :func:`pca_directions`: principal directions of a training trajectory around its final point
  (Li et al. 2018, section 7), with the fraction of the movement each one explains.
* :func:`eigenvector_directions`: top or bottom eigenvectors of the Hessian ∇²L(θ), by Lanczos
  on Hessian-vector products (the Hessian is never formed).
* :func:`as_direction`: validates a user-given direction (a (p,) vector or a params dict).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import eigsh

from .._checks import LosslabError, as_tensor, choice, finite_float, positive_int, seed_int, shape
from .._problem_objective import Objective
from ..curvature.operator import HessianOperator
from ..problem import Problem
from ..random_streams import generator, numpy_generator
from ..tolerances import tolerances

__all__ = [
    "EigenDirections",
    "PCADirections",
    "as_direction",
    "eigenvector_directions",
    "filter_normalized",
    "is_bias",
    "pca_directions",
    "random_direction",
]

_BIAS_NAME = re.compile(r"(^[bc]\d*$)|(bias$)")


def _gaussian(problem: Problem, generator: torch.Generator, k: int) -> torch.Tensor:
    """k rows of N(0, I_p), drawn one after the other in float64 (same numbers in every dtype), shape (k, p).

    Row by row, so that the first row equals ``random_direction`` with the generator's seed
    (torch draws a (k, p) block in a different order than k draws of (p,)).
    """
    rows = [torch.randn(problem.n_params, generator=generator, dtype=torch.float64) for _ in range(k)]
    return torch.stack(rows).to(device=problem.device, dtype=problem.dtype)  # drawn on the CPU: same numbers on every device


def random_direction(problem: Problem, *, seed: int = 0) -> torch.Tensor:
    """A Gaussian direction d ~ N(0, I_p), shape (p,), in ``problem.dtype``.

    Drawn in float64 on the CPU from the ``"directions"`` stream of ``seed``
    (:func:`losslab.random_streams.generator`): the same seed gives the same direction (rounded
    to the problem's dtype), independent of ``problem.init(seed)`` and of the Lanczos start.

    Example:
        >>> from losslab.models import Polynomial
        >>> prob = Problem(Polynomial(1, 2), [0.0, 1.0], [0.0, 1.0])
        >>> random_direction(prob, seed=3).shape
        torch.Size([3])
    """
    seed = seed_int("seed", seed)
    return _gaussian(problem, generator(seed, "directions"), 1)[0]


def as_direction(problem: Problem, direction: object, name: str = "direction") -> torch.Tensor:
    """Validate a direction: a (p,) tensor/array, or a dict of free groups (missing groups are 0).

    Returns:
        The direction as a tensor of shape (p,) in ``problem.dtype``.

    Raises:
        LosslabError: wrong shape, unknown or fixed groups, NaN/inf, or an all-zero direction.
    """
    p = problem.n_params
    if isinstance(direction, dict):
        unknown = [g for g in direction if g not in problem.groups]
        if unknown:
            fixed = [g for g in unknown if g in problem.model.shapes]
            hint = f"; {fixed} are fixed in this problem (restricted to {list(problem.groups)})" if fixed else ""
            raise LosslabError(f"expected {name} groups among {list(problem.groups)}, got {list(direction)}{hint}")
        parts = []
        for g in problem.groups:
            want = problem.model.shapes[g]
            if g in direction:
                part = as_tensor(f"{name}[{g!r}]", direction[g], dtype=problem.dtype)
                shape(f"{name}[{g!r}]", part, want)
            else:
                part = torch.zeros(want, dtype=problem.dtype, device=problem.device)
            parts.append(part.reshape(-1))
        vec = torch.cat(parts)
    else:
        vec = as_tensor(name, direction, dtype=problem.dtype)
        if tuple(vec.shape) != (p,):
            hint = ""
            if vec.ndim == 1 and problem.fixed and vec.numel() == problem.full().n_params:
                hint = (
                    f"; this is a vector of all parameters, but the problem is restricted to {list(problem.groups)}: "
                    "pass a dict of those groups or a vector of length p"
                )
            raise LosslabError(f"expected {name} of shape ({p},), got shape {tuple(vec.shape)}{hint}")
    if not bool((vec != 0).any()):
        raise LosslabError(f"expected a non-zero {name}, got all zeros")
    return vec


def is_bias(name: str, group_shape: tuple[int, ...]) -> bool:
    """Whether filter normalisation treats a parameter group as a bias.

    A bias is a group of at most one axis whose name is a bias name: losslab's ``b``, ``c``,
    ``b0``, ``b1``, … or a wrapped module's ``….bias``. Other one-axis groups (``v`` of
    :class:`~losslab.models.TwoLayer`, ``coef`` of a polynomial, ``w`` of a linear model) are
    weight vectors: the single filter of a (1, m) weight matrix.
    """
    return len(group_shape) <= 1 and bool(_BIAS_NAME.search(name))


def filter_normalized(
    problem: Problem, center: object, direction: object = None, *, seed: int = 0, ignore_biases: bool = True
) -> torch.Tensor:
    """Li et al. (2018) filter normalisation of a direction to the scale of ``center``.

    For every free group with rows (filters) d_r of the direction and c_r of the centre,

        d_r ← d_r · ‖c_r‖ / ‖d_r‖,

    so each filter of the result has exactly the norm of the centre's filter. Filters are the
    slices along the first axis of groups with two or more axes (rows of a weight matrix,
    output channels of a convolution). A weight group with one axis (or none) is one filter
    (see :func:`is_bias`). Biases are set to 0 when ``ignore_biases`` (Li et al.'s default),
    else normalised like one filter of the whole bias vector. A filter of the direction that is
    0 stays 0; a filter of the centre that is 0 makes the direction's filter 0.

    Args:
        problem: the problem whose coordinates θ (p,) the direction lives in.
        center: the point θ (p,) (or params dict) whose filter norms are used.
        direction: the direction to normalise, (p,) or dict; default ``random_direction(seed=seed)``.
        seed: the seed of the default random direction.
        ignore_biases: zero the bias groups.

    Returns:
        The normalised direction, shape (p,), ``problem.dtype``.

    Raises:
        LosslabError: the result is all zeros (e.g. the centre is 0, or has only biases; for an objective
            problem, whose centre is 0, the message asks for explicit directions).

    Example:
        >>> from losslab.models import TwoLayer
        >>> prob = Problem(TwoLayer(2, 3, "tanh"), torch.zeros(4, 2), torch.zeros(4))
        >>> theta = prob.init(seed=0)
        >>> d = filter_normalized(prob, theta, seed=1)
        >>> W, W_d = theta[prob.slices()["W"]].reshape(3, 2), d[prob.slices()["W"]].reshape(3, 2)
        >>> torch.allclose(W_d.norm(dim=1), W.norm(dim=1)), bool((d[prob.slices()["b"]] == 0).all())
        (True, True)
    """
    center = problem.as_theta(center, "center")
    d = random_direction(problem, seed=seed) if direction is None else as_direction(problem, direction)
    out = torch.zeros_like(d)
    for g, where in problem.slices().items():
        group_shape = problem.model.shapes[g]
        if is_bias(g, group_shape) and ignore_biases:
            continue
        rows = group_shape[0] if len(group_shape) >= 2 else 1
        c_rows, d_rows = center[where].reshape(rows, -1), d[where].reshape(rows, -1)
        c_norm, d_norm = c_rows.norm(dim=1, keepdim=True), d_rows.norm(dim=1, keepdim=True)
        scaled = torch.where(d_norm > 0, d_rows * (c_norm / torch.where(d_norm > 0, d_norm, 1.0)), 0.0)
        out[where] = scaled.reshape(-1)
    if not bool((out != 0).any()):
        if isinstance(problem.model, Objective):
            raise LosslabError(
                f"expected a centre with a non-zero parameter group to scale a filter-normalised direction by, got "
                f"{'a zero centre' if not bool((center != 0).any()) else 'zeros in every scaled group'} of the objective "
                f"{problem.model.name!r}, which has no filters: pass your own directions, e.g. unit coordinate vectors "
                f"(plane(problem, center, d1, d2)), or random_direction(problem, seed=...)"
            )
        raise LosslabError(
            "expected a filter-normalised direction that is not all zeros, got zeros: the centre's filters are 0"
            + (" or the problem has only biases (pass ignore_biases=False)" if ignore_biases else "")
            + "; use random_direction(problem, seed=...) instead"
        )
    return out


@dataclass(frozen=True, eq=False)
class PCADirections:
    """Principal directions of a trajectory around a centre.

    Attributes:
        directions: (k, p) orthonormal rows, the top-k right singular vectors of Θ − center.
        explained_variance_ratio: (k,), s_i² / Σ_j s_j²: the share of Σ_t ‖θ_t − center‖² along each.
        singular_values: (k,), s_1 ≥ … ≥ s_k.
        center: (p,), the point subtracted (default the final θ).
        coords: (m, k), the trajectory in these coordinates: (θ_t − center)·directions_i.
    """

    directions: torch.Tensor
    explained_variance_ratio: torch.Tensor
    singular_values: torch.Tensor
    center: torch.Tensor
    coords: torch.Tensor


def _sign_fix(vectors: np.ndarray) -> np.ndarray:
    """Flip each row so that its largest-magnitude entry is positive (a deterministic sign)."""
    idx = np.argmax(np.abs(vectors), axis=1)
    return vectors * np.sign(vectors[np.arange(len(vectors)), idx])[:, None]


def pca_directions(thetas: object, k: int = 2, center: object = None) -> PCADirections:
    """The top-k principal directions of a trajectory θ_1..θ_m around its final point (Li et al. 2018).

    With M = Θ − 1·centerᵀ (m, p) and its SVD M = U S Vᵀ, the directions are the first k rows
    of Vᵀ (signs fixed so each row's largest entry is positive) and the explained variance
    ratios s_i² / Σ_j s_j². As in Li et al. the centre is the final point, so a plane through
    it with these directions contains the largest share of the path's movement. (Their code
    passes the differences to scikit-learn's PCA, which also subtracts the differences' mean;
    here nothing else is subtracted, so the directions describe displacements from the centre.)
    Computed in float64; returned in the dtype of ``thetas``.

    Args:
        thetas: (m, p) snapshots (e.g. ``Trajectory.thetas``), or an object with ``.thetas``.
        k: number of directions, 1 ≤ k ≤ min(m, p), at most the rank of Θ − center.
        center: the point (p,) to subtract; default ``thetas[-1]``.

    Example:
        >>> path = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
        >>> pca = pca_directions(path, k=1)
        >>> pca.directions.shape, round(float(pca.explained_variance_ratio[0]), 3)
        (torch.Size([1, 3]), 0.971)
    """
    if hasattr(thetas, "thetas") and not isinstance(thetas, (torch.Tensor, np.ndarray)):
        thetas = thetas.thetas
    T = as_tensor("thetas", thetas)
    if not T.dtype.is_floating_point:
        T = T.to(torch.float64)
    shape("thetas", T, (None, None))
    m, p = T.shape
    if m < 2:
        raise LosslabError(f"expected thetas with at least 2 snapshots (rows), got {m}")
    k = positive_int("k", k)
    if k > min(m, p):
        raise LosslabError(f"expected k <= min(m, p) = {min(m, p)} for thetas of shape {(m, p)}, got k={k}")
    c = T[-1] if center is None else as_tensor("center", center, dtype=T.dtype)
    shape("center", c, (p,))
    M = (T - c.to(T.device)).to(torch.float64).cpu().numpy()
    _, s, vt = np.linalg.svd(M, full_matrices=False)
    total = float((s**2).sum())
    if total == 0.0:
        raise LosslabError("expected a trajectory that moves away from the centre, got every snapshot equal to it")
    rank = int((s > max(m, p) * np.finfo(np.float64).eps * s[0]).sum())
    if k > rank:
        raise LosslabError(f"expected k <= {rank}, the number of directions the trajectory moves in, got k={k}; use k={rank}")
    vecs = _sign_fix(vt[:k])
    coords = M @ vecs.T
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device=T.device, dtype=T.dtype)
    return PCADirections(to(vecs), to(s[:k] ** 2 / total), to(s[:k]), c.clone(), to(coords))


@dataclass(frozen=True, eq=False)
class EigenDirections:
    """Hessian eigenvectors at θ.

    Attributes:
        directions: (k, p) orthonormal eigenvectors, signs fixed (largest entry positive).
        eigenvalues: (k,) float64, descending for ``"largest"``, ascending for ``"smallest"``.
        which: ``"largest"`` or ``"smallest"``.
        hvps: the number of Hessian-vector products used.
    """

    directions: torch.Tensor
    eigenvalues: torch.Tensor
    which: str
    hvps: int


def eigenvector_directions(
    problem: Problem, theta: object, k: int = 2, which: str = "largest", *, seed: int = 0, tol: float | None = None
) -> EigenDirections:
    """The k largest or smallest (algebraic) eigenpairs of ∇²L(θ), by Lanczos on HVPs.

    SciPy's ``eigsh`` (implicitly restarted Lanczos, Lehoucq, Sorensen & Yang 1998) runs in
    float64 on :class:`~losslab.curvature.HessianOperator`'s products (double backward through
    one cached graph, in the problem's dtype), from a seeded start vector.
    When k ≥ p − 1 (where ARPACK cannot run) the p × p matrix is assembled from p HVPs instead.

    Args:
        problem: the problem (its free groups).
        theta: the point θ (p,) or params dict.
        k: number of eigenvectors, 1 ≤ k ≤ p.
        which: ``"largest"`` or ``"smallest"``.
        seed: seed of Lanczos' start vector (its ``"lanczos"`` stream, drawn with
            :func:`losslab.random_streams.numpy_generator`).
        tol: relative accuracy asked of ``eigsh`` (default: the ``eig_gap`` tolerance of the problem's
            dtype, :data:`losslab.tolerances.TOLERANCES`).

    Returns:
        An :class:`EigenDirections`; ``directions`` in ``problem.dtype``.
    """
    theta = problem.as_theta(theta)
    which = choice("which", which, ("largest", "smallest"))
    seed = seed_int("seed", seed)
    tol = tolerances(problem.dtype).eig_gap if tol is None else finite_float("tol", tol, positive=True)
    p = problem.n_params
    k = positive_int("k", k)
    if k > p:
        raise LosslabError(f"expected k <= p = {p} (the number of parameters), got k={k}")
    hessian = HessianOperator(problem, theta)
    if k >= p - 1:
        H = hessian.to_dense().to(torch.float64).cpu().numpy()
        vals, vecs = np.linalg.eigh((H + H.T) / 2)
    else:
        v0 = numpy_generator(seed, "lanczos").standard_normal(p)
        vals, vecs = eigsh(
            hessian.to_scipy(), k=k, which="LA" if which == "largest" else "SA", v0=v0, tol=tol, maxiter=max(1000, 20 * p)
        )
    order = np.argsort(-vals if which == "largest" else vals)[:k]
    directions = _sign_fix(vecs[:, order].T)
    return EigenDirections(
        torch.from_numpy(np.ascontiguousarray(directions)).to(device=problem.device, dtype=problem.dtype),
        torch.from_numpy(vals[order].copy()), which, hessian.products
    )
