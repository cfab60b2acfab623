"""Elementwise activations σ by name, with the symmetries each one gives a hidden unit.

A hidden unit contributes v·σ(w·x + b). Symmetries that leave every output unchanged:

* any activation: permuting hidden units (rows of W, entries of b and v together);
* odd σ (tanh, identity): (w, b, v) → (−w, −b, −v);
* positively homogeneous σ (relu, identity): (w, b, v) → (αw, αb, v/α) for α > 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import choice

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda z: z,
}
ODD = frozenset({"tanh", "identity"})
POSITIVELY_HOMOGENEOUS = frozenset({"relu", "identity"})


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation called ``name``: one of relu, tanh, sigmoid, identity."""
    return ACTIVATIONS[choice("activation", name, ACTIVATIONS)]
