"""First-order training of a :class:`~losslab.Problem`: full-batch GD, minibatch SGD, Adam — with stopping rules
and curvature tracking.

gd and sgd take the step θ ← θ − lr·g as written (lr·g rounded, then subtracted: the arithmetic of
:func:`~losslab.fit.train_ensemble` and of a hand-written loop ``theta = theta - lr * problem.grad(theta)``);
adam is PyTorch's ``torch.optim.Adam`` (Kingma & Ba 2015) on one leaf tensor θ of shape (p,).

What is computed when. A full-batch step (gd; adam without ``batch_size``) computes L(θ_t) and
∇L(θ_t) on all the data anyway, so the loss and the gradient norm are recorded at every step and
the stopping rules are checked at every step. A minibatch step (sgd; adam with ``batch_size``)
sees only its batch, so the full-batch loss and gradient norm (one forward and one backward on
all the data) are computed only on the recording schedule — every ``record_every`` steps, the
first and the last — and the stopping rules are checked there. θ is kept on that schedule too
(snapshots for landscape plots, PCA of a trajectory, Li et al. 2018), and curvature every
``every`` steps (:mod:`losslab.fit.tracking`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch

from .._checks import LosslabError, NonFiniteError, choice, finite_float, positive_int, seed_int
from .._threads import with_analysis_threads
from ..problem import Problem
from ..random_streams import generator
from .minibatches import batch_indices, minibatch_size
from .tracking import DEFAULT_TRACK_SAMPLES, CurvatureTracker, tracked_quantities, tracking_cost
from .trajectory import STOP_REASONS, TrainingDiverged, Trajectory

__all__ = ["OPTIMIZERS", "STOP_REASONS", "TrainingDiverged", "Trajectory", "train"]

OPTIMIZERS = ("gd", "sgd", "adam")
DEFAULT_SNAPSHOTS = 100


def _progress(enabled: bool, steps: int, note: str | None):
    """A rich progress bar (or a no-op) with an ``update(t, loss)`` callback; ``note`` is printed above it first."""
    if not enabled:
        return contextlib.nullcontext(lambda t, loss: None)

    @contextlib.contextmanager
    def bar():
        from rich.progress import Progress

        every = max(1, steps // 200)
        with Progress(transient=True) as progress:
            if note:
                progress.console.print(note, soft_wrap=True, markup=False, highlight=False)
            task = progress.add_task("training", total=steps)

            def update(t: int, loss: float) -> None:
                if t % every == 0 or t == steps:
                    progress.update(task, completed=t, description=f"training  loss {loss:.4e}")

            yield update

    return bar()


def _threshold(name: str, value: object) -> float | None:
    return None if value is None else finite_float(name, value, nonnegative=True)


def _callback(value: object) -> Callable | None:
    if value is not None and not callable(value):
        raise LosslabError(
            f"expected callback to be a function callback(step, theta, loss) -> bool | None, got callback={value!r}"
        )
    return value


class _Records:
    """The losses, gradient norms and snapshots of a run so far, and the :class:`Trajectory` they make."""

    def __init__(self, problem: Problem, meta: dict):
        self.problem, self.meta = problem, meta
        self.loss_steps: list[int] = []
        self.losses: list[float] = []
        self.norms: list[float] = []
        self.steps: list[int] = []
        self.thetas: list[torch.Tensor] = []

    def loss(self, t: int, value: float, norm: float) -> None:
        self.loss_steps.append(t)
        self.losses.append(value)
        self.norms.append(norm)

    def snapshot(self, t: int, theta: torch.Tensor) -> None:
        if not self.steps or self.steps[-1] != t:
            self.steps.append(t)
            self.thetas.append(theta)

    def trajectory(self, last: int, final: torch.Tensor, stopped: str, tracker: CurvatureTracker | None) -> Trajectory:
        self.snapshot(last, final)
        return Trajectory(
            losses=torch.tensor(self.losses, dtype=torch.float64),
            loss_steps=torch.tensor(self.loss_steps, dtype=torch.int64),
            grad_norms=torch.tensor(self.norms, dtype=torch.float64),
            steps=torch.tensor(self.steps, dtype=torch.int64),
            thetas=torch.stack(self.thetas),
            theta=final,
            params=self.problem.unflatten(final),
            stopped=stopped,
            stopped_at=last,
            curvature=None if tracker is None else tracker.result(),
            **self.meta,
        )


def _full_loss_and_grad(problem: Problem, theta: torch.Tensor, graph: bool) -> tuple[float, torch.Tensor | None]:
    """(L(θ) on all the data, ∇L(θ) or None where L is not finite).

    ``graph``: by one backward through ``problem.loss`` (a full-batch step's own gradient, or a record of a
    minibatch run on in-memory data); else by :meth:`Problem.grad` (over a DataLoader: batch by batch, one
    batch's graph at a time; None if it overflows).
    """
    if graph:
        with torch.enable_grad():
            loss = problem.loss(theta)
        value = float(loss.detach())
        return value, (torch.autograd.grad(loss, theta)[0] if math.isfinite(value) else None)
    with torch.no_grad():
        value = float(problem.loss(theta))
    if not math.isfinite(value):
        return value, None
    try:
        return value, problem.grad(theta.detach())
    except NonFiniteError:
        return value, None


def _norm(grad: torch.Tensor | None) -> float:
    return math.inf if grad is None else float(torch.linalg.vector_norm(grad))


@with_analysis_threads
def train(
    problem: Problem,
    *,
    optimizer: str = "gd",
    lr: float = 1e-2,
    steps: int = 1000,
    batch_size: int | None = None,
    seed: int = 0,
    theta0: object = None,
    record_every: int | None = None,
    until_loss: float | None = None,
    until_grad_norm: float | None = None,
    callback: Callable | None = None,
    track: object = (),
    every: int | None = None,
    track_samples: int = DEFAULT_TRACK_SAMPLES,
    progress: bool = False,
) -> Trajectory:
    """Minimise ``problem.loss`` from θ_0 with gradient descent, SGD or Adam; stop early on a rule; track curvature.

    gd: θ_{t+1} = θ_t − lr·∇L(θ_t) on all the data. sgd: the same with ∇ of the loss on a
    minibatch, batches drawn without replacement within each epoch (a fresh seeded permutation
    of the n examples per epoch; the last batch of an epoch may be smaller). adam: Adam with
    PyTorch's default betas, full batch unless ``batch_size`` is given. The module docstring says
    which steps record the full-batch loss (every step for full-batch optimisers, the recording
    schedule for minibatch ones).

    Stopping. After each step t whose loss is recorded, the run ends at θ_t when L(θ_t) ≤ ``until_loss``,
    when ‖∇L(θ_t)‖₂ ≤ ``until_grad_norm`` (full batch), or when ``callback(t, θ_t, L(θ_t))`` returns True
    (θ_t a copy; the callback is called at every step whose loss is recorded, also when a rule ends the
    run there). ``Trajectory.stopped`` names the first of these that holds, in that order, or ``"steps"``,
    and ``stopped_at`` the step. The start θ_0 is step 0 and is checked too.

    Args:
        problem: the :class:`~losslab.Problem` to train (its free groups are trained).
        optimizer: ``"gd"``, ``"sgd"`` or ``"adam"``.
        lr: learning rate (> 0).
        steps: the most updates (>= 1).
        batch_size: minibatch size in [1, n]: default 32 (or n if smaller) for sgd, full batch
            for adam; gd is always full batch. For a problem over a DataLoader it must be None:
            sgd then steps through the loader's batches in order, epoch after epoch.
        seed: seeds θ_0 = ``problem.init(seed)`` (when ``theta0`` is None; the ``"init"`` stream),
            the batch order (the ``"minibatches"`` stream, :mod:`losslab.random_streams`) and the
            curvature records' random vectors (:mod:`losslab.fit.tracking`).
        theta0: the start, a θ (p,) or a params dict; default ``problem.init(seed)``.
        record_every: keep θ (and, for minibatch optimisers, compute the full-batch loss) every
            ``record_every`` steps and at the first and last; default ``max(1, steps // 100)``.
        until_loss: stop once the full-batch loss is ≤ this (>= 0), or None.
        until_grad_norm: stop once ‖∇L(θ_t)‖₂ on all the data is ≤ this (>= 0), or None.
        callback: ``callback(step, theta, loss) -> bool | None``; True stops the run.
        track: curvature to record along the run, names from ``("lambda_max", "trace",
            "nonlinearity")`` (:mod:`losslab.fit.tracking`): λ_max by Lanczos with its error bound,
            tr ∇²L by Hutch++, ‖H − GGN‖_F by Frobenius probes. On a ``Problem.from_objective``
            problem the GGN is zero, so "nonlinearity" records ‖∇²L‖_F, the whole Hessian's norm.
        every: track every ``every`` steps (and at the last step); default ``record_every``'s value.
        track_samples: operator products per trace and per ‖H − GGN‖_F record (>= 6).
        progress: show a rich progress bar (for interactive use; off by default), with the tracking
            cost (:func:`~losslab.fit.tracking.tracking_cost`) printed above it.
        threads: ``"auto"`` (default: one intra-op thread for a small CPU problem, the caller's count
            restored afterwards), None (torch's setting as it is) or an int ≥ 1 (:mod:`losslab._threads`).

    Returns:
        A :class:`Trajectory`.

    Raises:
        LosslabError: a bad argument (a negative or NaN threshold, a callback that is not callable or
            returns something other than True/False/None, an unknown tracked quantity), or a non-finite
            loss at θ_0.
        TrainingDiverged: the loss or θ became NaN/inf; it carries the partial trajectory.

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 20, dtype=torch.float64)
        >>> run = train(Problem(Polynomial(1, 1), x, 2 * x + 1), lr=0.5, steps=200)
        >>> run.losses.shape, run.final_loss < 1e-12
        (torch.Size([201]), True)
        >>> early = train(Problem(Polynomial(1, 1), x, 2 * x + 1), lr=0.5, steps=200, until_grad_norm=1e-6)
        >>> early.stopped, early.stopped_at < 200, float(early.grad_norms[-1]) <= 1e-6
        ('until_grad_norm', True, True)
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
    optimizer = choice("optimizer", optimizer, OPTIMIZERS)
    lr = finite_float("lr", lr, positive=True)
    steps = positive_int("steps", steps)
    seed = seed_int("seed", seed)
    until_loss, until_grad_norm = _threshold("until_loss", until_loss), _threshold("until_grad_norm", until_grad_norm)
    callback = _callback(callback)
    loader = problem.data.count > 1  # a DataLoader: sgd steps through its own batches, in order
    if loader and batch_size is not None:
        raise LosslabError(
            f"expected batch_size=None for a problem over {problem.data.origin} (sgd steps through its batches, "
            f"gd and adam accumulate all of them), got batch_size={batch_size!r}; set the DataLoader's batch_size instead"
        )
    if loader:
        batch = problem.data.first().size if optimizer == "sgd" else None
    else:
        batch = minibatch_size(optimizer, batch_size, problem.n)
    record = max(1, steps // DEFAULT_SNAPSHOTS) if record_every is None else positive_int("record_every", record_every)
    quantities = tracked_quantities(track)
    if every is not None and not quantities:
        raise LosslabError(f"every={every!r} sets how often track= quantities are recorded, got track=(); "
                           "pass e.g. track=('lambda_max',), or record_every= for snapshots")
    cost = tracking_cost(problem, quantities, record if every is None else every, steps, samples=track_samples) if quantities else None
    start = problem.init(seed) if theta0 is None else problem.as_theta(theta0, "theta0")

    theta = start.detach().clone().requires_grad_(True)
    adam = torch.optim.Adam([theta], lr=lr) if optimizer == "adam" else None
    full_batch = batch is None
    if full_batch:
        batches = None
    elif loader:
        batches = (b for _ in iter(int, 1) for b in problem.batches())  # epoch after epoch, in the loader's order
    else:
        batches = batch_indices(problem.n, batch, generator(seed, "minibatches"))
    records = _Records(problem, {"optimizer": optimizer, "lr": lr, "seed": seed, "batch_size": batch})
    tracker = CurvatureTracker(problem, cost, track_samples, seed) if cost else None

    def diverged(t: int, what: str, previous: torch.Tensor) -> LosslabError:
        if t == 0:
            return LosslabError(f"expected a finite loss at the start theta0, got {what} before any step; "
                                "check the data scale and theta0 (lr is not the cause)")
        if records.loss_steps[-1] != t - 1:  # a minibatch run: the partial trajectory ends with its loss recorded
            value, grad = _full_loss_and_grad(problem, previous, graph=False)
            records.loss(t - 1, value, _norm(grad))
        return TrainingDiverged(
            f"training diverged at step {t} of {steps}: {what} ({optimizer}, lr={lr:g}); lower lr (got lr={lr:g}), e.g. lr={lr / 10:g}",
            step=t, trajectory=records.trajectory(t - 1, previous, "steps", tracker),
        )

    previous, stopped, t = theta.detach().clone(), "steps", 0
    with _progress(progress, steps, cost.line() if cost else None) as update:
        for t in range(steps + 1):
            current = theta.detach().clone()
            scheduled = t % record == 0 or t == steps
            checked = full_batch or scheduled  # the full-batch loss (and the stopping rules) at this step
            if checked:
                value, grad = _full_loss_and_grad(problem, theta, graph=full_batch or not loader)
                if not (math.isfinite(value) and bool(torch.isfinite(current).all())):
                    what = f"the loss became {value}" if not math.isfinite(value) else "θ became non-finite"
                    raise diverged(t, f"loss={value}" if t == 0 else what, previous)
                norm = _norm(grad)
                records.loss(t, value, norm)
                update(t, value)
            if scheduled:
                records.snapshot(t, current)
            if tracker is not None and tracker.due(t, steps):
                tracker.record(t, current)
            if checked:
                stopped = _stop_reason(t, current, value, norm, until_loss, until_grad_norm, callback)
                if stopped != "steps":
                    if tracker is not None and not tracker.due(t, steps):
                        tracker.record(t, current)
                    break
            if t == steps:
                break
            if not full_batch:
                step_loss = problem.minibatch_loss(theta, next(batches)) if loader else problem.loss(theta, indices=next(batches))
                value = float(step_loss.detach())
                if not (math.isfinite(value) and bool(torch.isfinite(current).all())):
                    raise diverged(t, f"the minibatch loss became {value}" if not math.isfinite(value) else "θ became non-finite",
                                   previous)
                (grad,) = torch.autograd.grad(step_loss, theta)
            if adam is not None:
                theta.grad = grad
                adam.step()
            else:
                with torch.no_grad():
                    theta.sub_(grad * lr)
            previous = current
    return records.trajectory(t, current, stopped, tracker)


def _stop_reason(t: int, theta: torch.Tensor, loss: float, grad_norm: float, until_loss: float | None,
                 until_grad_norm: float | None, callback: Callable | None) -> str:
    """The first stopping rule θ_t meets, in the order until_loss, until_grad_norm, callback; ``"steps"`` if none."""
    asked = None
    if callback is not None:
        asked = callback(t, theta.clone(), loss)
        if asked is not None and not isinstance(asked, bool):
            raise LosslabError(f"expected callback(step, theta, loss) to return True, False or None, got {asked!r} "
                               f"at step {t}; return True to stop")
    if until_loss is not None and loss <= until_loss:
        return "until_loss"
    if until_grad_norm is not None and grad_norm <= until_grad_norm:
        return "until_grad_norm"
    return "callback" if asked else "steps"
