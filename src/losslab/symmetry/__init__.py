"""Symmetry of networks: hidden-unit permutations and weight matching (alignment).

* :func:`permute_hidden_units`: reorder the hidden units of a chain of affine layers with elementwise
  activations — the same function, a different parameter point.
* :func:`weight_matching` / :func:`align`: the permutation of b's hidden units that brings it closest to a
  (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin"), layer by layer with
  ``scipy.optimize.linear_sum_assignment``.

Models: :class:`~losslab.models.TwoLayer`, :class:`~losslab.models.MLP`, and a
:class:`~losslab.models.Module` wrapping an ``nn.Sequential`` of ``nn.Linear`` and the parameter-free
elementwise activations of :data:`ELEMENTWISE` (ReLU, LeakyReLU, ELU, GELU, SiLU, Softplus, Sigmoid, Tanh, …).
"""

from .permutations import ELEMENTWISE, SUPPORTED, moved_groups, permutable_layers, permute_hidden_units
from .weight_matching import WeightMatching, align, matching_objective, weight_matching

__all__ = [
    "ELEMENTWISE",
    "SUPPORTED",
    "WeightMatching",
    "align",
    "matching_objective",
    "moved_groups",
    "permutable_layers",
    "permute_hidden_units",
    "weight_matching",
]
