"""Hidden-unit permutations of a chain of affine layers with elementwise activations.

For a model whose forward is h_{l+1} = σ_l(W_l h_l + b_l), l = 0 … L−1 (a layer spec,
:mod:`losslab.models.layers`), reordering the units of a hidden layer l < L−1 by a permutation π_l —
the rows of W_l and entries of b_l, and the columns of W_{l+1} —

    W_l ← P_l W_l P_{l−1}ᵀ,   b_l ← P_l b_l,   (P_l)_{ij} = [j = π_l(i)],   P_{−1} = P_{L−1} = I,

leaves the function unchanged on every input, because an elementwise σ commutes with a permutation
(Hecht-Nielsen 1990; Ainsworth, Hayase & Srinivasa 2023, §2). The output units are never permuted.
Reused by :mod:`losslab.symmetry.weight_matching`; the random single-symmetry witnesses of the
convexity search live in :mod:`losslab.convexity.symmetry` (through each model's ``symmetries``).
"""

from __future__ import annotations

import torch

from .._checks import LosslabError
from ..landscape.fast import layer_spec
from ..models.base import Params
from ..models.layers import Layer
from ..problem import Problem

__all__ = ["moved_groups", "permutable_layers", "permute_hidden_units"]

SUPPORTED = ("TwoLayer, MLP, or a Module wrapping an nn.Sequential of nn.Linear and elementwise activations "
             "(ReLU, Tanh, Sigmoid, GELU, Identity)")


def permutable_layers(problem: Problem, what: str = "weight matching") -> tuple[Layer, ...]:
    """The layer spec of ``problem``'s model, checked to be permutable: every group a permutation moves is free in θ.

    Raises:
        LosslabError: a model without a layer spec (convolutions, normalisation or attention layers, a custom
            forward, tuple/dict inputs), or a group the permutations move held fixed (``problem.restrict``, a frozen
            parameter); the output layer's bias may be fixed.
    """
    if not isinstance(problem, Problem):
        raise LosslabError(f"expected a losslab Problem for {what}, got {type(problem).__name__}")
    spec = layer_spec(problem)
    if spec is None:
        raise LosslabError(f"expected for {what} a model that is a chain of affine layers with elementwise activations — "
                           f"{SUPPORTED} — with one tensor of inputs, got {problem.model.describe()}")
    held = [g for g in moved_groups(spec) if g not in problem.free]
    if held:
        raise LosslabError(f"expected every group a hidden-unit permutation moves to be free in θ for {what}, got {held} "
                           "held fixed; use problem.full() (or un-freeze those parameters)")
    return spec


def moved_groups(spec: tuple[Layer, ...]) -> list[str]:
    """The groups a permutation of hidden units changes: every hidden layer's weight and bias, and every later layer's weight."""
    hidden = [g for layer in spec[:-1] for g in (layer.weight, layer.bias) if g is not None]
    return [*hidden, spec[-1].weight] if len(spec) > 1 else []


def permute_hidden_units(spec: tuple[Layer, ...], params: Params, perms: list[torch.Tensor]) -> Params:
    """``params`` with the units of hidden layer l reordered by ``perms[l]``: new unit i is old unit ``perms[l][i]``.

    Args:
        spec: the layer spec, L layers.
        params: every group the spec names (others are copied unchanged).
        perms: L − 1 int64 tensors, ``perms[l]`` a permutation of range(width of hidden layer l).

    Returns:
        A new dict; the model computes the same function with it, to rounding (exactly, in exact arithmetic).
    """
    if len(perms) != len(spec) - 1:
        raise LosslabError(f"expected {len(spec) - 1} permutations (one per hidden layer), got {len(perms)}")
    out = dict(params)
    for layer, perm in zip(spec[:-1], perms, strict=True):
        out[layer.weight] = out[layer.weight][perm]
        if layer.bias is not None:
            out[layer.bias] = out[layer.bias][perm]
    for layer, perm in zip(spec[1:], perms, strict=True):
        out[layer.weight] = out[layer.weight][..., perm]
    return out
