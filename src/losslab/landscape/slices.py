"""One- and two-dimensional slices of a loss landscape.

* :func:`line`: the loss on the segment between two points, L((1 − t)·a + t·b), optionally
  beyond its ends — the linear interpolation of Goodfellow, Vinyals & Saxe (2015),
  "Qualitatively characterizing neural network optimization problems".
* :func:`plane`: the loss on the plane L(c + α·d₁ + β·d₂) for α, β on
  ``span·linspace(−1, 1, steps)`` — Li, Xu, Taylor, Studer & Goldstein (2018), with
  filter-normalised random directions by default.

Every point is computed from its coordinates directly (no walking the weights in place, so
no drift), and all points go through :func:`~losslab.landscape.evaluate.evaluate_combinations`
in memory-budget chunks. For a model affine in the sliced groups under the squared loss the
plane is an exact quadratic, computed from one gradient and two HVPs
(:mod:`losslab.landscape.quadratic`); the result says which ``method`` produced it.

Results are frozen dataclasses of tensors; ``save``/``load`` use ``.npz`` files of plain arrays
and strings (loaded with ``allow_pickle=False`` and validated: :mod:`losslab.landscape.slice_files`),
written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import LosslabError, choice, finite_float, positive_int, seed_int
from ..problem import Problem
from ..random_streams import generator
from .directions import _gaussian, as_direction, filter_normalized
from .evaluate import combine, evaluate_combinations
from .quadratic import exact_quadratic_reason, quadratic_coefficients, quadratic_values
from .slice_files import FORMAT_VERSION, load_npz, save_npz, slice_kind

__all__ = ["METHODS", "LineSlice", "PlaneSlice", "directions_cosine", "line", "line_coordinates", "load_slice", "plane",
           "plane_coordinates", "plane_directions"]

METHODS = ("auto", "grid", "exact quadratic")


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


@dataclass(frozen=True, eq=False)
class LineSlice:
    """The loss along a line through two points.

    Attributes:
        t: (steps,) coordinates, from −extend[0] to 1 + extend[1]; 0 and 1 are among them exactly.
        losses: (steps,) L((1 − t_i)·a + t_i·b), in the problem's dtype.
        a, b: (p,) the points at t = 0 and t = 1.
        description: the problem it was computed on (``Problem.describe()``).
    """

    t: torch.Tensor
    losses: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    description: str = ""

    def points(self) -> torch.Tensor:
        """The evaluated points (1 − t_i)·a + t_i·b, shape (steps, p), bit for bit."""
        return combine(torch.stack([1 - self.t, self.t], dim=1), torch.stack([self.a, self.b]))

    def point(self, i: int) -> torch.Tensor:
        """The i-th evaluated point (1 − t_i)·a + t_i·b, shape (p,), bit for bit."""
        t = self.t[i : i + 1] if i != -1 else self.t[-1:]
        return combine(torch.stack([1 - t, t], dim=1), torch.stack([self.a, self.b]))[0]

    def save(self, path: str | os.PathLike) -> None:
        """Write to ``path`` as .npz (plain arrays; atomic)."""
        names = ("t", "losses", "a", "b")
        arrays = {k: _to_numpy(getattr(self, k)) for k in names}
        meta = {"kind": np.array("line"), "version": np.array(FORMAT_VERSION), "description": np.array(self.description)}
        save_npz(path, {**meta, **arrays})

    @classmethod
    def load(cls, path: str | os.PathLike) -> LineSlice:
        """Read a slice written by :meth:`save`, validated first (LosslabError: one line per problem found)."""
        arr = load_npz(path, "line")
        return cls(*(torch.from_numpy(arr[k].copy()) for k in ("t", "losses", "a", "b")), str(arr.get("description", "")))


@dataclass(frozen=True, eq=False)
class PlaneSlice:
    """The loss on a plane through a centre.

    Attributes:
        alphas, betas: (steps,) coordinates, ``span·linspace(−1, 1, steps)``, with exact ±span ends
            (and exact 0 when steps is odd).
        losses: (steps, steps) L(center + alphas[i]·d1 + betas[j]·d2) at [i, j], problem's dtype.
        center, d1, d2: (p,) the centre and the two directions.
        seed: the seed recorded with the directions (None when none was given or used).
        method: ``"grid"`` (every point evaluated) or ``"exact quadratic"`` (see module docstring).
        coefficients: for ``"exact quadratic"``, float64 (6,): (L₀, g₁, g₂, H₁₁, H₁₂, H₂₂); else None.
        description: the problem it was computed on (``Problem.describe()``).
    """

    alphas: torch.Tensor
    betas: torch.Tensor
    losses: torch.Tensor
    center: torch.Tensor
    d1: torch.Tensor
    d2: torch.Tensor
    seed: int | None = None
    method: str = "grid"
    coefficients: torch.Tensor | None = None
    description: str = ""

    def _coords(self) -> torch.Tensor:
        a, b = torch.meshgrid(self.alphas, self.betas, indexing="ij")
        return torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)

    def points(self) -> torch.Tensor:
        """All points center + α·d1 + β·d2, shape (steps, steps, p) (memory: steps²·p numbers)."""
        steps = len(self.alphas)
        return combine(self._coords(), torch.stack([self.d1, self.d2]), self.center).reshape(steps, len(self.betas), -1)

    def point(self, i: int, j: int) -> torch.Tensor:
        """The point at [i, j], center + alphas[i]·d1 + betas[j]·d2, shape (p,), bit for bit as evaluated."""
        coords = torch.stack([self.alphas[i], self.betas[j]])[None]
        return combine(coords, torch.stack([self.d1, self.d2]), self.center)[0]

    def save(self, path: str | os.PathLike) -> None:
        """Write to ``path`` as .npz (plain arrays and strings; atomic)."""
        names = ("alphas", "betas", "losses", "center", "d1", "d2")
        arrays = {k: _to_numpy(getattr(self, k)) for k in names}
        arrays["seed"] = np.array([] if self.seed is None else [self.seed], dtype=np.int64)
        arrays["coefficients"] = np.zeros(0) if self.coefficients is None else _to_numpy(self.coefficients)
        meta = {"kind": np.array("plane"), "version": np.array(FORMAT_VERSION), "method": np.array(self.method)}
        save_npz(path, {**meta, "description": np.array(self.description), **arrays})

    @classmethod
    def load(cls, path: str | os.PathLike) -> PlaneSlice:
        """Read a slice written by :meth:`save`, validated first (LosslabError: one line per problem found)."""
        names = ("alphas", "betas", "losses", "center", "d1", "d2")
        arr = load_npz(path, "plane")
        tensors = [torch.from_numpy(arr[k].copy()) for k in names]
        seed = int(arr["seed"][0]) if arr["seed"].size else None
        coef = torch.from_numpy(arr["coefficients"].copy()) if arr["coefficients"].size else None
        return cls(*tensors, seed=seed, method=str(arr["method"]), coefficients=coef, description=str(arr.get("description", "")))


def load_slice(path: str | os.PathLike) -> LineSlice | PlaneSlice:
    """Read a :class:`LineSlice` or :class:`PlaneSlice` written by its ``save``.

    The file is validated before any array is used (kind, format version, every array present with
    a numeric dtype, agreeing shapes, finite points and coordinates, losses that are numbers); every
    problem found is one line of one LosslabError (:mod:`losslab.landscape.slice_files`).
    """
    kind = slice_kind(path)
    if kind not in ("line", "plane"):
        load_npz(path, None)  # raises: not a slice file
    return PlaneSlice.load(path) if kind == "plane" else LineSlice.load(path)


def _extend(extend: object) -> tuple[float, float]:
    pair = (extend, extend) if isinstance(extend, (int, float)) and not isinstance(extend, bool) else extend
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise LosslabError(f"expected extend as a pair (before, after) of numbers >= 0, got extend={extend!r}")
    return finite_float("extend[0]", pair[0], nonnegative=True), finite_float("extend[1]", pair[1], nonnegative=True)


def line_coordinates(steps: int, extend: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """The t grid of :func:`line` in float64: (steps,), from −extend[0] to 1 + extend[1].

    The interval is cut at 0 and 1 into up to three pieces, each an even grid; the steps are
    shared in proportion to the pieces' lengths, so t holds 0 and 1 exactly and the spacing
    is even across the whole range whenever the proportions allow it (e.g. extend=(0.5, 0.5)
    with steps=61: spacing 1/30 everywhere).
    """
    e0, e1 = extend
    intervals = steps - 1
    sides = int(e0 > 0) + int(e1 > 0)
    if intervals < 1 + sides:
        raise LosslabError(f"expected steps >= {2 + sides} to include t=0 and t=1 with extend={extend}, got steps={steps}")
    inner = min(max(1, round(intervals / (1 + e0 + e1))), intervals - sides)
    rest = intervals - inner
    n0 = 0 if e0 == 0 else (rest if e1 == 0 else min(max(1, round(rest * e0 / (e0 + e1))), rest - 1))
    n2 = rest - n0
    left = [-e0 * (n0 - i) / n0 for i in range(n0)]
    middle = [i / inner for i in range(inner + 1)]
    right = [1 + e1 * i / n2 for i in range(1, n2 + 1)]
    return torch.tensor(left + middle + right, dtype=torch.float64)


def line(
    problem: Problem, a: object, b: object, *, steps: int = 51, extend: object = (0.0, 0.0), implementation: str = "auto"
) -> LineSlice:
    """The loss on the line through ``a`` and ``b``: L((1 − t)·a + t·b) (Goodfellow et al. 2015).

    Args:
        problem: the problem.
        a, b: the points at t = 0 and t = 1: θ (p,) or params dicts; a ≠ b.
        steps: number of points (>= 2; one more per extended side).
        extend: how far to go beyond the ends, (before a, after b) in units of ‖b − a‖, or one
            number for both; t runs over [−extend[0], 1 + extend[1]] (see :func:`line_coordinates`).
        implementation: how the points are evaluated (see :func:`~losslab.landscape.evaluate.evaluate_points`).

    Returns:
        A :class:`LineSlice`. Its points at t = 0 and t = 1 are a and b bit for bit, since
        (1 − 0)·a + 0·b = a and 0·a + 1·b = b exactly.

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)
        >>> prob = Problem(Polynomial(1, 1), x, x)
        >>> s = line(prob, [0.0, 0.0], [0.0, 1.0], steps=3)
        >>> s.t.tolist(), s.losses.tolist()
        ([0.0, 0.5, 1.0], [0.5, 0.125, 0.0])
    """
    steps = positive_int("steps", steps, minimum=2)
    extend = _extend(extend)
    a, b = problem.as_theta(a, "a"), problem.as_theta(b, "b")
    if torch.equal(a, b):
        raise LosslabError("expected two different points a and b, got a == b (a line needs a non-zero direction b − a)")
    t = line_coordinates(steps, extend).to(device=problem.device, dtype=problem.dtype)
    losses = evaluate_combinations(problem, torch.stack([1 - t, t], dim=1), torch.stack([a, b]), implementation=implementation)
    return LineSlice(t, losses, a.clone(), b.clone(), problem.describe())


def plane_coordinates(steps: int, span: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """span·(2i − (steps − 1))/(steps − 1), i = 0..steps−1: exact ±span ends, exact 0 for odd steps."""
    i = torch.arange(steps, dtype=torch.float64)
    return (span * ((2 * i - (steps - 1)) / (steps - 1))).to(dtype)


def plane_directions(problem: Problem, center: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The directions :func:`plane` draws when none are given: two filter-normalised Gaussian directions (Li et al. 2018)
    around ``center`` (p,), from the first and second draws of the ``"directions"`` stream of ``seed``; each (p,)."""
    drawn = _gaussian(problem, generator(seed, "directions"), 2)
    return filter_normalized(problem, center, drawn[0]), filter_normalized(problem, center, drawn[1])


def directions_cosine(d1: torch.Tensor, d2: torch.Tensor) -> float:
    """cos∠(d1, d2) = ⟨d1, d2⟩ / (‖d1‖‖d2‖), in float64; ±1 for parallel directions, whose plane is a line."""
    return float(torch.dot(d1.double(), d2.double()) / (d1.double().norm() * d2.double().norm()))


def plane(
    problem: Problem,
    center: object,
    d1: object = None,
    d2: object = None,
    *,
    steps: int = 41,
    span: float = 1.0,
    seed: int | None = None,
    method: str = "auto",
    implementation: str = "auto",
) -> PlaneSlice:
    """The loss on the plane L(center + α·d1 + β·d2), α, β on ``span·linspace(−1, 1, steps)``.

    Args:
        problem: the problem.
        center: θ (p,) or params dict.
        d1, d2: directions, (p,) or params dicts of free groups; a direction not given is a
            filter-normalised Gaussian direction (Li et al. 2018) drawn with ``seed``: d1 from
            the first and d2 from the second draw of the ``"directions"`` stream of ``seed``
            (:func:`losslab.random_streams.generator`; d1 before normalising is
            ``random_direction(problem, seed=seed)``).
        steps: grid points per axis (>= 2); the grid has steps² points.
        span: half-width of the grid in units of the directions (> 0).
        seed: seed of drawn directions (default 0 when one is drawn); recorded in the result.
        method: ``"grid"`` evaluates every point; ``"exact quadratic"`` computes the plane from
            L, ∇L and two HVPs at the centre, exact when the model is affine in the sliced groups
            with mse and no link (else an error); ``"auto"`` uses it exactly then.
        implementation: how grid points are evaluated (see :func:`~losslab.landscape.evaluate.evaluate_points`).

    Returns:
        A :class:`PlaneSlice` with ``losses[i, j] = L(center + alphas[i]·d1 + betas[j]·d2)``.

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)
        >>> prob = Problem(Polynomial(1, 1), x, x)
        >>> s = plane(prob, [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], steps=3)
        >>> s.method, s.losses.shape, float(s.losses[1, 1])
        ('exact quadratic', torch.Size([3, 3]), 0.0)
    """
    steps = positive_int("steps", steps, minimum=2)
    span = finite_float("span", span, positive=True)
    method = choice("method", method, METHODS)
    if seed is not None:
        seed = seed_int("seed", seed)
    center = problem.as_theta(center, "center")
    if d1 is None or d2 is None:
        seed = 0 if seed is None else seed
        drawn = plane_directions(problem, center, seed)
    d1 = drawn[0] if d1 is None else as_direction(problem, d1, "d1")
    d2 = drawn[1] if d2 is None else as_direction(problem, d2, "d2")
    cosine = directions_cosine(d1, d2)
    if abs(cosine) > 1 - 1e-9:
        raise LosslabError(f"expected two independent directions d1 and d2, got parallel ones (cosine {cosine:.12g}): the plane is a line; "
                           "pass another d2, or use line()")
    reason = exact_quadratic_reason(problem)
    if method == "exact quadratic" and reason is not None:
        raise LosslabError(
            f"expected a problem whose planes are exact quadratics for method='exact quadratic' (a model affine in the sliced "
            f"groups, mse, no link), got one where {reason}; use method='grid' or 'auto'"
        )
    alphas = plane_coordinates(steps, span, problem.dtype).to(problem.device)
    betas = alphas.clone()
    base = dict(alphas=alphas, betas=betas, center=center.clone(), d1=d1, d2=d2, seed=seed, description=problem.describe())
    if method != "grid" and reason is None:
        coef = quadratic_coefficients(problem, center, d1, d2)
        losses = quadratic_values(coef, alphas, betas).to(problem.dtype)
        return PlaneSlice(losses=losses, method="exact quadratic", coefficients=coef, **base)
    A, B = torch.meshgrid(alphas, betas, indexing="ij")
    coords = torch.stack([A.reshape(-1), B.reshape(-1)], dim=1)
    losses = evaluate_combinations(problem, coords, torch.stack([d1, d2]), center, implementation=implementation)
    losses = losses.reshape(steps, steps)
    return PlaneSlice(losses=losses, method="grid", **base)
