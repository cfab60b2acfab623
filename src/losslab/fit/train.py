"""First-order training of a :class:`~losslab.Problem`: full-batch GD, minibatch SGD, Adam.

The optimisers are PyTorch's own (``torch.optim.SGD``, ``torch.optim.Adam``; Kingma & Ba 2015)
acting on one leaf tensor θ of shape (p,). Every step records the full-batch loss, so a
trajectory is a curve L(θ_t), t = 0..steps, plus snapshots θ_t for landscape plots (PCA of a
trajectory, Li et al. 2018).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from .._checks import LosslabError, choice, finite_float, positive_int, seed_int
from .._threads import with_analysis_threads
from ..models.base import Params
from ..problem import Problem
from ..random_streams import generator
from .minibatches import batch_indices, minibatch_size

__all__ = ["OPTIMIZERS", "TrainingDiverged", "Trajectory", "train"]

OPTIMIZERS = ("gd", "sgd", "adam")
DEFAULT_SNAPSHOTS = 100


@dataclass(frozen=True)
class Trajectory:
    """A training run: the full-batch loss at every step and θ at recorded steps.

    Attributes:
        losses: float64 tensor (steps + 1,): L(θ_t) on all the data, t = 0..steps (θ_0 the start).
        steps: int64 tensor (m,): the recorded step indices, first 0 and last ``steps``.
        thetas: tensor (m, p): θ at the recorded steps, in ``problem.dtype``.
        theta: the final θ, shape (p,).
        params: the final full parameter dict (fixed groups included).
        optimizer: ``"gd"``, ``"sgd"`` or ``"adam"``.
        lr: the learning rate.
        seed: the seed of θ_0 (when drawn) and of the minibatch order.
        batch_size: the minibatch size, or None for full-batch steps.
    """

    losses: torch.Tensor
    steps: torch.Tensor
    thetas: torch.Tensor
    theta: torch.Tensor
    params: Params
    optimizer: str
    lr: float
    seed: int
    batch_size: int | None

    @property
    def final_loss(self) -> float:
        """The last recorded full-batch loss."""
        return float(self.losses[-1])


class TrainingDiverged(LosslabError):
    """The loss or θ became NaN/inf during training.

    Attributes:
        step: the step at which the non-finite value appeared (after ``step`` updates).
        trajectory: the run up to the last finite step (a :class:`Trajectory`).
    """

    def __init__(self, message: str, *, step: int, trajectory: Trajectory):
        super().__init__(message)
        self.step = step
        self.trajectory = trajectory


def _progress(enabled: bool, steps: int):
    """A rich progress bar (or a no-op) with an ``update(t, loss)`` callback."""
    if not enabled:
        return contextlib.nullcontext(lambda t, loss: None)

    @contextlib.contextmanager
    def bar():
        from rich.progress import Progress

        every = max(1, steps // 200)
        with Progress(transient=True) as progress:
            task = progress.add_task("training", total=steps)

            def update(t: int, loss: float) -> None:
                if t % every == 0 or t == steps:
                    progress.update(task, completed=t, description=f"training  loss {loss:.4e}")

            yield update

    return bar()


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
    progress: bool = False,
) -> Trajectory:
    """Minimise ``problem.loss`` from θ_0 with gradient descent, SGD or Adam.

    gd: θ_{t+1} = θ_t − lr·∇L(θ_t) on all the data. sgd: the same with ∇ of the loss on a
    minibatch, batches drawn without replacement within each epoch (a fresh seeded permutation
    of the n examples per epoch; the last batch of an epoch may be smaller). adam: Adam with
    PyTorch's default betas, full batch unless ``batch_size`` is given. The full-batch loss is
    recorded at every step.

    Args:
        problem: the :class:`~losslab.Problem` to train (its free groups are trained).
        optimizer: ``"gd"``, ``"sgd"`` or ``"adam"``.
        lr: learning rate (> 0).
        steps: number of updates (>= 1).
        batch_size: minibatch size in [1, n]: default 32 (or n if smaller) for sgd, full batch
            for adam; gd is always full batch. For a problem over a DataLoader it must be None:
            sgd then steps through the loader's batches in order, epoch after epoch.
        seed: seeds θ_0 = ``problem.init(seed)`` (when ``theta0`` is None; the ``"init"`` stream)
            and the batch order (the ``"minibatches"`` stream, :mod:`losslab.random_streams`).
        theta0: the start, a θ (p,) or a params dict; default ``problem.init(seed)``.
        record_every: keep θ every ``record_every`` steps (and always the first and last);
            default ``max(1, steps // 100)``.
        progress: show a rich progress bar (for interactive use; off by default).

    Returns:
        A :class:`Trajectory`.

    Raises:
        LosslabError: a bad argument, or a non-finite loss at θ_0.
        TrainingDiverged: the loss or θ became NaN/inf; it carries the partial trajectory.

    Example:
        >>> from losslab.models import Polynomial
        >>> x = torch.linspace(-1, 1, 20, dtype=torch.float64)
        >>> run = train(Problem(Polynomial(1, 1), x, 2 * x + 1), lr=0.5, steps=200)
        >>> run.losses.shape, run.final_loss < 1e-12
        (torch.Size([201]), True)
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab.Problem, got {type(problem).__name__}")
    optimizer = choice("optimizer", optimizer, OPTIMIZERS)
    lr = finite_float("lr", lr, positive=True)
    steps = positive_int("steps", steps)
    seed = seed_int("seed", seed)
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
    every = max(1, steps // DEFAULT_SNAPSHOTS) if record_every is None else positive_int("record_every", record_every)
    start = problem.init(seed) if theta0 is None else problem.as_theta(theta0, "theta0")

    theta = start.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr) if optimizer == "adam" else torch.optim.SGD([theta], lr=lr)
    if batch is None:
        batches = None
    elif loader:
        batches = (b for _ in iter(int, 1) for b in problem.batches())  # epoch after epoch, in the loader's order
    else:
        batches = batch_indices(problem.n, batch, generator(seed, "minibatches"))
    losses = torch.empty(steps + 1, dtype=torch.float64)
    rec_steps: list[int] = []
    rec_thetas: list[torch.Tensor] = []

    def trajectory(last: int, final: torch.Tensor) -> Trajectory:
        ks, ts = list(rec_steps), list(rec_thetas)
        if not ks or ks[-1] != last:
            ks.append(last)
            ts.append(final)
        return Trajectory(
            losses=losses[: last + 1].clone(),
            steps=torch.tensor(ks, dtype=torch.int64),
            thetas=torch.stack(ts),
            theta=final,
            params=problem.unflatten(final),
            optimizer=optimizer,
            lr=lr,
            seed=seed,
            batch_size=batch,
        )

    previous = theta.detach().clone()
    with _progress(progress, steps) as update:
        for t in range(steps + 1):
            full_batch_step = batches is None and t < steps
            with torch.set_grad_enabled(full_batch_step):
                loss = problem.loss(theta)
            value = float(loss.detach())
            current = theta.detach().clone()
            if not (math.isfinite(value) and bool(torch.isfinite(current).all())):
                if t == 0:
                    raise LosslabError(
                        f"expected a finite loss at the start theta0, got loss={value} before any step; "
                        "check the data scale and theta0 (lr is not the cause)"
                    )
                what = f"the loss became {value}" if not math.isfinite(value) else "θ became non-finite"
                raise TrainingDiverged(
                    f"training diverged at step {t} of {steps}: {what} ({optimizer}, lr={lr:g}); "
                    f"lower lr (got lr={lr:g}), e.g. lr={lr / 10:g}",
                    step=t,
                    trajectory=trajectory(t - 1, previous),
                )
            losses[t] = value
            if t % every == 0 or t == steps:
                rec_steps.append(t)
                rec_thetas.append(current)
            update(t, value)
            if t == steps:
                break
            if loader and batches is not None:
                loss = problem.minibatch_loss(theta, next(batches))
            elif batches is not None:
                loss = problem.loss(theta, indices=next(batches))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            previous = current
    return trajectory(steps, current)
