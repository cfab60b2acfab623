"""Permutation witnesses: points the model's symmetries map onto each other.

Permuting the hidden units of a network (and, for odd activations, flipping a unit's signs;
for relu, rescaling it) gives a different parameter point with the same output on every input,
hence the same loss. If the loss were convex, the whole segment between two such points would
lie at or below that loss; at a trained point the middle of the segment — the network with
averaged hidden units — is typically worse, which is the classic certificate that learning
features makes the loss non-convex (e.g. Goodfellow, Bengio & Courville 2016, §8.2.2).
"""

from __future__ import annotations

import torch

from ..problem import Problem

__all__ = ["symmetry_pairs"]


def symmetry_pairs(problem: Problem, theta: torch.Tensor, generator: torch.Generator) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, θ, σ(θ)) for each model symmetry σ that moves only the free groups of ``problem``.

    θ and σ(θ) are vectors of ``problem``'s free groups, shape (p,).
    """
    params = problem.unflatten(theta)
    out = []
    for name, image in problem.model.symmetries(params, generator):
        if any(not torch.equal(image[g], params[g]) for g in problem.fixed):
            continue  # the symmetry moves a fixed group: not a point of this restricted problem
        other = problem.flatten(image)
        if not torch.equal(other, theta):
            out.append((name, theta, other))
    return out
