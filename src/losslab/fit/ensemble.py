"""Many training runs at once: full-batch GD or minibatch SGD from K starts, one ``vmap`` per step.

An ensemble is K parameter vectors Θ (K, p) trained on the same data with the same optimiser.
Each step evaluates all K losses in one ``torch.func.vmap(problem.loss)`` call, takes all K
gradients in one backward pass through their sum (the rows are independent computations), and
updates Θ ← Θ − lr·∇L(Θ) row by row — the same update as :func:`~losslab.fit.train` with
``optimizer="gd"``/``"sgd"`` (``torch.optim.SGD`` without momentum), so run k of an ensemble is
``train(problem, optimizer=..., lr=lr, steps=steps, batch_size=batch_size, seed=seeds[k],
theta0=Θ0[k])`` up to the rounding of batched gradients.

Minibatches (SGD). Each epoch is a fresh random permutation of the n examples cut into batches of
``batch_size`` (the last one may be smaller), as in :func:`~losslab.fit.train`:

* ``minibatches="per-start"`` (default): start k draws its permutations from
  the ``"minibatches"`` stream of ``seeds[k]`` (:func:`losslab.random_streams.generator`) —
  exactly the sequence ``train(seed=seeds[k])`` uses —
  so the starts see independent minibatch sequences;
* ``minibatches="shared"``: every start sees the one sequence drawn from ``seeds[0]``, so the
  starts differ only in θ₀ (a controlled comparison of starting points).

Until convergence (``until_grad_norm=ε``, full-batch GD only). Before each update the full-batch gradient of
every running start is computed; a start with ‖∇L(θ_t)‖₂ ≤ ε is frozen at θ_t (no further update: ``converged``
is True, ``converged_at`` is t, the number of updates it took) and leaves the vmapped batch, so it costs nothing
from then on; a start whose loss or θ becomes NaN/inf leaves it too (``diverged``). The ensemble stops as soon
as no start is running, or after ``steps`` updates; runs still above ε then have ``converged`` False. A frozen
start's recorded loss and gradient norm stay those at its θ. This replaces chaining fixed-length runs by hand.

Memory: the K starts, current points and gradients (K × p each) must fit the problem's
``memory_budget`` (else a MemoryBudgetError before anything is drawn); the vmapped forward and
backward run on as many starts at a time as their graphs fit beside them (rows are independent,
so the result is the same to rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._checks import LosslabError, as_tensor, choice, finite_float, positive_int, seed_int, shape
from .._threads import with_analysis_threads
from ..memory import blocks, ensemble_bytes, fits, require
from ..problem import Problem
from ..random_streams import generator
from .minibatches import batch_indices, minibatch_size

__all__ = ["ENSEMBLE_OPTIMIZERS", "MINIBATCHES", "EnsembleTrajectory", "train_ensemble"]

ENSEMBLE_OPTIMIZERS = ("gd", "sgd")
MINIBATCHES = ("per-start", "shared")
DEFAULT_RECORDS = 100


@dataclass(frozen=True)
class EnsembleTrajectory:
    """K training runs: full-batch losses and gradient norms at recorded steps, and the final points.

    Attributes:
        steps: int64 (m,): the recorded step indices, first 0 and last ``steps``.
        losses: float64 (m, K): the full-batch loss L(θ_t^k) at the recorded steps.
        grad_norms: float64 (m, K): ‖∇L(θ_t^k)‖₂ on all the data at the recorded steps.
        theta0: (K, p): the starts.
        theta: (K, p): the final points, in ``problem.dtype``.
        diverged: bool (K,): runs whose loss or θ became NaN/inf (their rows hold NaN/inf from then on).
        optimizer: ``"gd"`` or ``"sgd"``.
        lr: the learning rate.
        batch_size: the minibatch size, or None for full-batch steps.
        seeds: the K seeds (of θ₀ when drawn, and of the minibatch orders).
        minibatches: ``"per-start"`` or ``"shared"`` (meaningful for sgd).
        until_grad_norm: the threshold ε of ``until_grad_norm`` (None without it).
        converged: bool (K,): runs frozen because ‖∇L‖₂ ≤ ε (None without ``until_grad_norm``).
        converged_at: int64 (K,): the step (updates taken) at which each run converged, −1 where it did not
            (None without ``until_grad_norm``).
    """

    steps: torch.Tensor
    losses: torch.Tensor
    grad_norms: torch.Tensor
    theta0: torch.Tensor
    theta: torch.Tensor
    diverged: torch.Tensor
    optimizer: str
    lr: float
    batch_size: int | None
    seeds: tuple[int, ...]
    minibatches: str
    until_grad_norm: float | None = None
    converged: torch.Tensor | None = None
    converged_at: torch.Tensor | None = None

    @property
    def final_losses(self) -> torch.Tensor:
        """The full-batch loss at the final points, shape (K,)."""
        return self.losses[-1]


def _seeds(seeds: object, theta0: torch.Tensor | None) -> tuple[int, ...]:
    if seeds is None:
        if theta0 is None:
            raise LosslabError("expected seeds (a sequence of K integers) or theta0 of shape (K, p), got neither")
        return tuple(range(len(theta0)))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise LosslabError(f"expected seeds as a non-empty sequence of integers, got seeds={seeds!r}")
    return tuple(seed_int(f"seeds[{k}]", s) for k, s in enumerate(seeds))


def _chunked_grads_and_losses(batched_loss, theta: torch.Tensor, size: int, indices: torch.Tensor | None = None,
                              per_start: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_grads_and_losses` on ``size`` rows of Θ at a time (the minibatch indices per start, or shared)."""
    if len(theta) <= size:
        return _grads_and_losses(batched_loss, theta, *(() if indices is None else (indices,)))
    grads, losses = torch.empty_like(theta), theta.new_empty(len(theta))
    for rows in blocks(len(theta), size):
        args = () if indices is None else (indices[rows] if per_start else indices,)
        grads[rows], losses[rows] = _grads_and_losses(batched_loss, theta[rows], *args)
    return grads, losses


def _grads_and_losses(batched_loss, theta: torch.Tensor, *args) -> tuple[torch.Tensor, torch.Tensor]:
    """(∇L of each row (K, p), L of each row (K,)) by one backward pass through the vmapped losses.

    The rows are independent computations, so the gradient of their sum with respect to Θ holds
    each row's own gradient.
    """
    theta = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        losses = batched_loss(theta, *args)
        (grads,) = torch.autograd.grad(losses.sum(), theta)
    return grads, losses.detach()


def _require_batching(problem: Problem, full_loss, theta0: torch.Tensor) -> None:
    """Raise one line unless ``torch.func.vmap`` batches the model (train_ensemble has no one-start-at-a-time path)."""
    if problem.batching_note is None:
        try:
            _grads_and_losses(full_loss, theta0[:1])
        except RuntimeError as err:
            problem.stop_batching(err)  # the problem learns it, as losses_at_points does, and says why
    if problem.batching_note is not None:
        raise LosslabError(f"expected a model torch.func.vmap can batch (train_ensemble runs all starts in one vmapped "
                           f"call), got: {problem.batching_note}; train the starts one at a time with losslab.fit.train, or make the "
                           "forward vmap-compatible (no .item(), no if on a tensor's value, no in-place buffer updates)")


@with_analysis_threads
def train_ensemble(
    problem: Problem,
    *,
    seeds: Sequence[int] | None = None,
    theta0: object = None,
    optimizer: str = "gd",
    lr: float = 1e-2,
    steps: int = 1000,
    batch_size: int | None = None,
    minibatches: str = "per-start",
    record_every: int | None = None,
    until_grad_norm: float | None = None,
) -> EnsembleTrajectory:
    """Train K starts of ``problem`` at once with full-batch GD or minibatch SGD.

    Args:
        problem: the :class:`~losslab.Problem` (its free groups are trained).
        seeds: K seeds: θ₀^k = ``problem.init(seeds[k])`` when ``theta0`` is None, and the minibatch
            order of start k (``"per-start"``) or of all starts (``"shared"``: ``seeds[0]``).
            Default ``range(K)`` when ``theta0`` is given.
        theta0: the starts, shape (K, p); default drawn from ``seeds``.
        optimizer: ``"gd"`` (full batch) or ``"sgd"`` (minibatches).
        lr: learning rate (> 0).
        steps: updates per start (>= 1).
        batch_size: sgd minibatch size in [1, n], default min(32, n); gd is always full batch.
        minibatches: ``"per-start"`` or ``"shared"`` (module docstring).
        record_every: record the full-batch loss and gradient norm every ``record_every`` steps (and
            always at the first and last); default ``max(1, steps // 100)``.
        until_grad_norm: ε > 0: freeze each start once its full-batch ‖∇L‖₂ ≤ ε and stop when all are frozen
            (module docstring; ``optimizer="gd"`` only); ``steps`` is then the most updates a start takes.

    Returns:
        An :class:`EnsembleTrajectory`. Runs that diverge are flagged in ``diverged``, not raised:
        the other runs are unaffected (each row is its own computation). With ``until_grad_norm`` it also
        says which runs ``converged`` and at which step (``converged_at``); its last recorded step is the
        one the ensemble stopped at.

    Raises:
        LosslabError: bad arguments; a MemoryBudgetError when the starts, points and gradients
            (4·K·p values, :func:`losslab.memory.ensemble_bytes`) and one start's graph exceed the
            problem's ``memory_budget`` (lower the number of starts).

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 20, dtype=torch.float64)
        >>> runs = train_ensemble(Problem(Polynomial(1, 1), x, 2 * x + 1), seeds=range(3), lr=0.5, steps=200)
        >>> runs.theta.shape, bool((runs.final_losses < 1e-12).all())
        (torch.Size([3, 2]), True)
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
    optimizer = choice("optimizer", optimizer, ENSEMBLE_OPTIMIZERS)
    minibatches = choice("minibatches", minibatches, MINIBATCHES)
    lr = finite_float("lr", lr, positive=True)
    steps = positive_int("steps", steps)
    batch = minibatch_size(optimizer, batch_size, problem.n)
    if batch is not None and problem.data.count > 1:
        raise LosslabError(
            f"expected full-batch training (optimizer='gd') for a problem over {problem.data.origin}, got {optimizer} with "
            f"minibatches of {batch}; use losslab.fit.train(optimizer='sgd'), which steps through the loader's own batches"
        )
    every = max(1, steps // DEFAULT_RECORDS) if record_every is None else positive_int("record_every", record_every)
    if until_grad_norm is not None:
        until_grad_norm = finite_float("until_grad_norm", until_grad_norm, positive=True)
        if optimizer != "gd":
            raise LosslabError(f"expected optimizer='gd' with until_grad_norm (a full-batch gradient at every step), got "
                               f"optimizer={optimizer!r}; drop until_grad_norm or use optimizer='gd'")
    if theta0 is not None:
        theta0 = as_tensor("theta0", theta0, dtype=problem.dtype)
        shape("theta0", theta0, (None, problem.n_params))
    if seeds is not None and not isinstance(seeds, Sequence):
        if not hasattr(seeds, "__iter__"):
            raise LosslabError(f"expected seeds as a sequence of integers, got seeds={seeds!r}; e.g. seeds=range({seeds!r})"
                               if isinstance(seeds, int) else f"expected seeds as a sequence of integers, got seeds={seeds!r}")
        seeds = list(seeds)
    seeds = _seeds(seeds, theta0)
    K, p, itemsize = len(seeds), problem.n_params, torch.finfo(problem.dtype).bits // 8
    held = ensemble_bytes(K, p, itemsize)
    require(held + problem.point_bytes, problem.memory_budget, f"an ensemble of {K} starts of p = {p:,} parameters",
            "the number of starts (seeds)")
    size = fits(problem.point_bytes, problem.memory_budget, held)  # starts whose forward and backward run at once
    if theta0 is None:
        theta0 = torch.stack([problem.init(s) for s in seeds])
    elif len(seeds) != len(theta0):
        raise LosslabError(f"expected one seed per start: {len(theta0)} starts in theta0, got {len(seeds)} seeds")

    full_loss = torch.func.vmap(problem.loss)
    _require_batching(problem, full_loss, theta0)
    if until_grad_norm is not None:
        return _until_converged(full_loss, theta0, size, lr=lr, steps=steps, every=every, eps=until_grad_norm,
                                seeds=tuple(seeds), minibatches=minibatches)
    batch_loss = torch.func.vmap(lambda th, idx: problem.loss(th, indices=idx), in_dims=(0, 0 if minibatches == "per-start" else None))
    streams = []
    if batch is not None:
        order = seeds[:1] if minibatches == "shared" else seeds
        streams = [batch_indices(problem.n, batch, generator(s, "minibatches")) for s in order]

    theta = theta0.clone()
    rec_steps, rec_losses, rec_norms = [], [], []
    with torch.no_grad():
        for t in range(steps + 1):
            recording = t % every == 0 or t == steps
            if recording or batch is None:
                grads, losses = _chunked_grads_and_losses(full_loss, theta, size)
                if recording:
                    rec_steps.append(t)
                    rec_losses.append(losses.to(torch.float64))
                    rec_norms.append(torch.linalg.vector_norm(grads, dim=1).to(torch.float64))
            if t == steps:
                break
            if batch is not None:
                indices = next(streams[0]) if minibatches == "shared" else torch.stack([next(s) for s in streams])
                grads, _ = _chunked_grads_and_losses(batch_loss, theta, size, indices, minibatches == "per-start")
            theta.sub_(grads.mul_(lr))  # Θ − lr·∇L(Θ), in place (two K × p arrays, not four)
    losses = torch.stack(rec_losses)
    diverged = ~(torch.isfinite(losses).all(0) & torch.isfinite(theta).all(1))
    return EnsembleTrajectory(
        steps=torch.tensor(rec_steps, dtype=torch.int64), losses=losses, grad_norms=torch.stack(rec_norms),
        theta0=theta0, theta=theta, diverged=diverged, optimizer=optimizer, lr=lr, batch_size=batch,
        seeds=tuple(seeds), minibatches=minibatches,
    )


def _until_converged(full_loss, theta0: torch.Tensor, size: int, *, lr: float, steps: int, every: int, eps: float,
                     seeds: tuple[int, ...], minibatches: str) -> EnsembleTrajectory:
    """Full-batch GD on the running rows only; a row leaves once ‖∇L‖₂ ≤ ``eps`` (converged) or non-finite (diverged)."""
    K = len(theta0)
    theta = theta0.clone()
    losses = torch.full((K,), torch.nan, dtype=torch.float64)
    norms = torch.full((K,), torch.nan, dtype=torch.float64)
    converged = torch.zeros(K, dtype=torch.bool)
    converged_at = torch.full((K,), -1, dtype=torch.int64)
    diverged = torch.zeros(K, dtype=torch.bool)
    running = torch.arange(K)
    rec_steps, rec_losses, rec_norms = [], [], []
    with torch.no_grad():
        for t in range(steps + 1):
            grads, values = _chunked_grads_and_losses(full_loss, theta[running], size)
            g = torch.linalg.vector_norm(grads, dim=1)
            losses[running], norms[running] = values.to(torch.float64), g.to(torch.float64)
            bad = ~(torch.isfinite(values) & torch.isfinite(g) & torch.isfinite(theta[running]).all(1))
            done = (g <= eps) & ~bad
            converged[running[done]] = True
            converged_at[running[done]] = t
            diverged[running[bad]] = True
            keep = ~(done | bad)
            running, grads = running[keep], grads[keep]
            last = t == steps or not len(running)
            if t % every == 0 or last:
                rec_steps.append(t)
                rec_losses.append(losses.clone())
                rec_norms.append(norms.clone())
            if last:
                break
            theta[running] = theta[running] - lr * grads
    return EnsembleTrajectory(
        steps=torch.tensor(rec_steps, dtype=torch.int64), losses=torch.stack(rec_losses), grad_norms=torch.stack(rec_norms),
        theta0=theta0, theta=theta, diverged=diverged, optimizer="gd", lr=lr, batch_size=None, seeds=seeds,
        minibatches=minibatches, until_grad_norm=eps, converged=converged, converged_at=converged_at,
    )
