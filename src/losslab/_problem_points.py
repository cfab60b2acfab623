"""L at many parameter points of a Problem: ``torch.func.vmap`` in chunks, or one point at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ._checks import shape

if TYPE_CHECKING:
    from .problem import Problem


def losses_at_points(problem: Problem, Theta: object) -> torch.Tensor:
    """:meth:`Problem.loss_batch`: L at each row of Θ (K, p) → (K,), batch by batch.

    Chunks of :meth:`Problem.chunk_size` points go through one vmapped call; a model vmap cannot
    batch is evaluated one point at a time from the first failure on (:meth:`Problem.stop_batching`).
    """
    Theta = torch.as_tensor(Theta)
    shape("Theta", Theta, (None, problem.n_params))
    Theta = Theta.to(device=problem.device, dtype=problem.dtype)
    if not len(Theta):
        return Theta.new_zeros(0)
    total = None
    size = problem.chunk_size()
    with torch.no_grad():
        for i, (b, w) in enumerate(problem._weights()):
            part = None
            if problem._batched:
                fn = torch.func.vmap(lambda t, b=b, w=w, i=i: problem._point_term(t, b, w, i == 0))
                try:
                    part = torch.cat([fn(chunk) for chunk in Theta.split(size)])
                except RuntimeError as err:  # e.g. an in-place update of a held (unbatched) tensor by a batched one
                    problem.stop_batching(err)
            if part is None:
                part = torch.stack([problem._point_term(t, b, w, i == 0) for t in Theta])
            total = part if total is None else total + part
    return total
