"""Curvature along a training run: λ_max, tr ∇²L and ‖H − GGN‖_F every k steps, at a cost stated before it starts.

What is recorded at a tracked step t, at the point θ_t the step starts from:

* ``"lambda_max"``: the sharpness λ_max(∇²L(θ_t)) by thick-restart Lanczos
  (:func:`~losslab.curvature.eigs`, k = 1, ``which="largest"``, default tolerance), with its rigorous
  error bound ‖Hy − λ̂y‖ (Parlett, Thm 4.5.1). A Ritz value is a Rayleigh quotient, so λ̂ ≤ λ_max.
  The number of Hessian-vector products is not known in advance (Lanczos stops at convergence):
  the cost states the cap, ``max_iter`` = :data:`LANCZOS_MAX_PRODUCTS` (p products when p ≤ 30:
  the dense path), and the records the products actually used.
* ``"trace"``: tr ∇²L(θ_t) by Hutch++ (:func:`~losslab.curvature.hutchpp`; Meyer, Musco, Musco &
  Woodruff 2021, "Hutch++: optimal stochastic trace estimation", SOSA), ``samples`` products
  (2p when the sketch of ⌊samples/3⌋ columns spans R^p: the trace is then exact), with the standard
  error of its Hutchinson part.
* ``"nonlinearity"``: ‖H − GGN‖_F at θ_t, the size of the curvature from the model being nonlinear
  in θ (Σ_i (∂ℓ/∂z_i) ∇²z_i, :class:`~losslab.curvature.NonlinearityOperator`; zero for a model
  affine in θ), by ‖A‖_F² = E‖Az‖² with ``samples`` Rademacher probes
  (:func:`~losslab.curvature.frobenius_norm`), with the delta method's standard error. Its products
  are backward passes through the cached graph of Jᵀr, each about as costly as a Hessian-vector product.
  When ``samples`` ≥ p the norm is exact instead: Σ_i ‖A e_i‖² over the p unit vectors (p products,
  standard error 0), as the trace is exact there.
  On an objective problem (``Problem.from_objective``) the GGN is zero (the identity loss has no
  curvature in its output), so this records ‖∇²L‖_F, the Frobenius norm of the whole Hessian.

Seeds. Every record draws its random vectors from the run's ``seed``, the same at every step
(common random numbers): the Lanczos start vector from the ``"lanczos"`` stream of ``seed`` (the
numbers of ``eigs(problem, θ_t, k=1, seed=seed)``), the Hutch++ sketch and probes from the
``"probes"`` stream of ``seed`` (those of ``hutchpp(problem, θ_t, seed=seed)``), the Frobenius probes
from the ``"probes"`` stream of ``child_seed(seed, "probes", 2)`` (independent of the trace's).
A curve along training then changes only because θ_t does, not because the probes do; each
record's own error is in its standard error. The same seed gives the same records.

Cost. Building the operators at θ_t costs one forward and one gradient graph each (not counted);
everything else is operator products, counted in :class:`TrackingCost` (before the run, from
:func:`tracking_cost`) and in :attr:`CurvatureTrack.products` (what each record used).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._checks import LosslabError, positive_int
from ..curvature.eigs import eigs
from ..curvature.operator import HessianOperator, NonlinearityOperator
from ..curvature.trace import frobenius_norm, hutchpp
from ..problem import Problem
from ..random_streams import child_seed

__all__ = ["DEFAULT_TRACK_SAMPLES", "LANCZOS_MAX_PRODUCTS", "TRACKABLE", "CurvatureTrack", "TrackingCost", "tracking_cost"]

TRACKABLE = ("lambda_max", "trace", "nonlinearity")
LANCZOS_MAX_PRODUCTS = 300
"""Lanczos' cap on products per λ_max record: ``eigs``' default ``max_iter`` for its default basis of ≤ 30 vectors."""
DEFAULT_TRACK_SAMPLES = 30
"""Products per trace record (Hutch++: a sketch of 10 columns, 10 products with its basis, 10 deflated probes) and per
‖H − GGN‖_F record (30 probes)."""
_NAMES = {"lambda_max": "λ_max (Lanczos)", "trace": "tr H (Hutch++)", "nonlinearity": "‖H − GGN‖_F (Frobenius probes)"}
_FROBENIUS_STREAM = 2  # child_seed(seed, "probes", 2): the Frobenius probes (key 1 is classify's gradient scale)


def tracked_quantities(track: object) -> tuple[str, ...]:
    """``track`` as a tuple of distinct names from :data:`TRACKABLE` (a single name is accepted as a string)."""
    names = (track,) if isinstance(track, str) else track
    if not isinstance(names, Sequence) or not all(isinstance(q, str) for q in names):
        raise LosslabError(
            f"expected track to be a tuple of names from {TRACKABLE}, got track={track!r}; e.g. track=('lambda_max',)"
        )
    for q in names:
        if q not in TRACKABLE:
            raise LosslabError(f"unknown tracked quantity {q!r}: expected names from {', '.join(map(repr, TRACKABLE))}")
    if len(set(names)) != len(names):
        raise LosslabError(f"expected each tracked quantity once, got track={tuple(names)!r}")
    return tuple(names)


def record_count(steps: int, every: int) -> int:
    """Records of a run of ``steps`` steps tracked every ``every`` steps: t = 0, every, 2·every, …, and the last step."""
    return steps // every + 1 + (steps % every != 0)


@dataclass(frozen=True)
class TrackingCost:
    """What tracking curvature costs, in operator–vector products, known before the run starts.

    Attributes:
        quantities: the tracked names (from :data:`TRACKABLE`).
        every: a record every ``every`` steps (and at the last step).
        records: records in a run of all its steps (fewer when a stopping rule ends it early).
        per_record: products per record, by quantity; for ``"lambda_max"`` the cap (Lanczos stops earlier).
        per_record_total: their sum, products per record.
        total: per_record_total · records: the most the run's tracking can cost.
        p: the number of parameters.
    """

    quantities: tuple[str, ...]
    every: int
    records: int
    per_record: dict[str, int]
    per_record_total: int
    total: int
    p: int

    @property
    def capped(self) -> bool:
        """Whether the counts are caps rather than exact (λ_max by Lanczos is tracked)."""
        return "lambda_max" in self.quantities and self.per_record["lambda_max"] == LANCZOS_MAX_PRODUCTS

    def line(self) -> str:
        """One line for a progress bar or a log: the products per record, per quantity, and in total."""
        up = "≤ " if self.capped else ""
        parts = ", ".join(f"{_NAMES[q]} {up if q == 'lambda_max' else ''}{self.per_record[q]:,}" for q in self.quantities)
        return (f"tracking curvature every {self.every} steps ({self.records:,} records): {parts} products per record, "
                f"{up}{self.total:,} in total (p = {self.p:,})")


def tracking_cost(problem: Problem, track: object, every: int, steps: int, *, samples: int = DEFAULT_TRACK_SAMPLES) -> TrackingCost:
    """The operator–vector products that ``train(problem, steps=steps, track=track, every=every)`` spends on tracking.

    Per record: λ_max at most :data:`LANCZOS_MAX_PRODUCTS` (p when p ≤ 30, where ``eigs`` assembles the
    matrix); the trace ``samples`` (2p when ⌊samples/3⌋ ≥ p: Hutch++'s sketch spans R^p); ‖H − GGN‖_F
    ``samples`` (p when samples ≥ p: exact over the unit vectors). Records: t = 0, every, 2·every, … and
    the last step, ``steps // every + 1`` (+1 when ``every`` does not divide ``steps``).

    Args:
        problem: the :class:`~losslab.Problem` to be trained.
        track: names from :data:`TRACKABLE` (a tuple, or one name).
        every: steps between records (>= 1).
        steps: training steps (>= 1).
        samples: products per trace and per ‖H − GGN‖_F record (>= 6; Hutch++'s minimum).

    Returns:
        A :class:`TrackingCost`; its :meth:`~TrackingCost.line` is what ``train(progress=True)`` prints.

    Raises:
        LosslabError: not a Problem, an unknown or repeated name, every/steps/samples not integers >= 1 (6 for samples).

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 20, dtype=torch.float64)
        >>> cost = tracking_cost(Problem(Polynomial(1, 1), x, x), ("lambda_max",), every=10, steps=100)
        >>> cost.records, cost.per_record, cost.total
        (11, {'lambda_max': 2}, 22)
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
    quantities = tracked_quantities(track)
    if not quantities:
        raise LosslabError("expected at least one tracked quantity, got track=(); e.g. track=('lambda_max',)")
    every = positive_int("every", every)
    steps = positive_int("steps", steps)
    samples = positive_int("samples", samples, minimum=6)
    p = problem.n_params
    per = {
        "lambda_max": p if p <= 30 else LANCZOS_MAX_PRODUCTS,
        "trace": 2 * p if samples // 3 >= p else samples,
        "nonlinearity": p if samples >= p else samples,
    }
    per_record = {q: per[q] for q in quantities}
    records = record_count(steps, every)
    total = sum(per_record.values())
    return TrackingCost(quantities, every, records, per_record, total, total * records, p)


@dataclass(frozen=True)
class CurvatureTrack:
    """Curvature recorded along a training run (module docstring): one entry per tracked step.

    A quantity not tracked is None. Tensors are float64 of shape (r,), r the number of records.

    Attributes:
        steps: int64 (r,): the steps t whose θ_t was analysed (0, every, 2·every, …, and the last step).
        lambda_max: λ̂_max(∇²L(θ_t)), a Ritz value (≤ the true λ_max).
        lambda_max_bound: its rigorous error bound ‖Hy − λ̂y‖: some eigenvalue lies within it.
        lambda_max_converged: bool (r,): whether Lanczos met its tolerance.
        trace: the Hutch++ estimate of tr ∇²L(θ_t).
        trace_stderr: its standard error (of the Hutchinson part, conditional on the sketch).
        nonlinearity: the estimate of ‖∇²L − GGN‖_F at θ_t.
        nonlinearity_stderr: its standard error (delta method; 0 where it is exact, samples ≥ p).
        products: int64 (r,): operator–vector products each record used, all quantities together.
        cost: the :class:`TrackingCost` stated before the run.
        seed: the seed of every record's random vectors (module docstring).
    """

    steps: torch.Tensor
    lambda_max: torch.Tensor | None
    lambda_max_bound: torch.Tensor | None
    lambda_max_converged: torch.Tensor | None
    trace: torch.Tensor | None
    trace_stderr: torch.Tensor | None
    nonlinearity: torch.Tensor | None
    nonlinearity_stderr: torch.Tensor | None
    products: torch.Tensor
    cost: TrackingCost
    seed: int

    @property
    def total_products(self) -> int:
        """Operator–vector products used by all records (at most ``cost.total``)."""
        return int(self.products.sum())


class CurvatureTracker:
    """Records the tracked quantities at the steps it is given; :meth:`result` gives the :class:`CurvatureTrack`."""

    def __init__(self, problem: Problem, cost: TrackingCost, samples: int, seed: int):
        self.problem, self.cost, self.samples, self.seed = problem, cost, samples, seed
        self.rows: dict[str, list] = {k: [] for k in ("steps", "products", "lam", "bound", "conv", "tr", "tr_se", "nl", "nl_se")}

    def due(self, t: int, last: int) -> bool:
        """Whether step t is a tracked step of a run whose last step is ``last``."""
        return t % self.cost.every == 0 or t == last

    def record(self, t: int, theta: torch.Tensor) -> None:
        """Analyse θ_t (detached) and append the record of step t."""
        quantities, rows, used = self.cost.quantities, self.rows, 0
        if "lambda_max" in quantities or "trace" in quantities:
            H = HessianOperator(self.problem, theta)
            if "lambda_max" in quantities:
                top = eigs(H, k=1, which="largest", max_iter=LANCZOS_MAX_PRODUCTS, seed=self.seed, threads=None)
                rows["lam"].append(float(top.values[-1]))
                rows["bound"].append(float(top.bounds[-1]))
                rows["conv"].append(bool(top.converged.all()))
                used += top.matvecs
            if "trace" in quantities:
                est = hutchpp(H, samples=self.samples, seed=self.seed, threads=None)
                rows["tr"].append(est.estimate)
                rows["tr_se"].append(est.stderr)
                used += est.matvecs
        if "nonlinearity" in quantities:
            op = NonlinearityOperator(self.problem, theta)
            p = self.problem.n_params
            if self.samples >= p:  # exact: ‖A‖_F² = Σ_i ‖A e_i‖², p products
                norm = float(op.matmat(torch.eye(p, dtype=theta.dtype, device=theta.device)).double().square().sum().sqrt())
                rows["nl"].append(norm)
                rows["nl_se"].append(0.0)
                used += p
            else:
                est = frobenius_norm(op, samples=self.samples, seed=child_seed(self.seed, "probes", _FROBENIUS_STREAM))
                rows["nl"].append(est.estimate)
                rows["nl_se"].append(est.stderr)
                used += est.matvecs
        rows["steps"].append(t)
        rows["products"].append(used)

    def result(self) -> CurvatureTrack:
        rows, q = self.rows, self.cost.quantities

        def col(key: str, name: str, dtype=torch.float64):
            return torch.tensor(rows[key], dtype=dtype) if name in q else None

        return CurvatureTrack(
            steps=torch.tensor(rows["steps"], dtype=torch.int64),
            lambda_max=col("lam", "lambda_max"), lambda_max_bound=col("bound", "lambda_max"),
            lambda_max_converged=col("conv", "lambda_max", torch.bool),
            trace=col("tr", "trace"), trace_stderr=col("tr_se", "trace"),
            nonlinearity=col("nl", "nonlinearity"), nonlinearity_stderr=col("nl_se", "nonlinearity"),
            products=torch.tensor(rows["products"], dtype=torch.int64), cost=self.cost, seed=self.seed,
        )
