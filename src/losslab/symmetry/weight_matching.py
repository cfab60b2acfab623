"""Weight matching: permute the hidden units of one network to match another's (Git Re-Basin).

Two networks a and b trained from different seeds compute similar functions with their hidden units in
different orders. Weight matching (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin: merging models modulo
permutation symmetries", ICLR 2023, §3.2 and Algorithm 1) chooses the permutations π = (π_0, …, π_{L−2}) of
b's hidden layers (:mod:`losslab.symmetry.permutations`) that bring its weights closest to a's:

    max_π  Σ_l ⟨W_l^a, P_l W_l^b P_{l−1}ᵀ⟩_F + ⟨b_l^a, P_l b_l^b⟩   ⇔   min_π ‖θ_a − π(θ_b)‖²,

over the groups the permutations move (the output layer's bias adds a constant). With every other
permutation fixed, the objective is linear in P_l:
⟨P_l, C_l⟩ with the unit-similarity matrix

    C_l = W_l^a P_{l−1} (W_l^b)ᵀ + b_l^a (b_l^b)ᵀ + (W_{l+1}^a)ᵀ P_{l+1} W_{l+1}^b        (h_l × h_l),

a linear assignment problem solved exactly by ``scipy.optimize.linear_sum_assignment`` (the Hungarian
method / Jonker–Volgenant). With one hidden layer P_{−1} = P_1 = I, and one assignment is the exact
optimum. With more, the layers are visited in turn (coordinate descent, Algorithm 1) until a full sweep
improves nothing; the paper visits them in a random order, here in the fixed order 0, 1, …, L−2, so the
result needs no seed. Each step cannot lower the objective, and a step is taken only when it raises it,
so the sweeps end at a point where no single layer's permutation improves it (not necessarily the global
optimum, an NP-hard problem for L > 2 in general, the paper's §3.2).

The start (a choice of this implementation, not the paper's, which starts from the identity): one forward
pass matching each layer by its incoming weights and bias only, W_l^a P_{l−1} (W_l^b)ᵀ + b_l^a (b_l^b)ᵀ,
with P_{l−1} from the step before (the outgoing term needs P_{l+1}, not chosen yet) — or the identity, if
that scores higher. By the Cauchy–Schwarz inequality this pass alone recovers a planted permutation
(b = π(a), distinct units) exactly, where coordinate descent from the identity can stop at a worse fixed
point in networks of three or more hidden layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .._checks import positive_int
from ..models.layers import Layer
from ..problem import Problem
from .permutations import moved_groups, permutable_layers, permute_hidden_units

__all__ = ["WeightMatching", "align", "matching_objective", "weight_matching"]

IMPROVEMENT_RTOL = 1e-12  # a layer's new assignment is taken only if it raises the objective by more than this · scale


@dataclass(frozen=True)
class WeightMatching:
    """The result of :func:`weight_matching`.

    Attributes:
        theta: π(θ_b), b with its hidden units permuted, shape (p,): the same function as b.
        perms: one int64 tensor per hidden layer; unit i of the aligned network is unit ``perms[l][i]`` of b.
        objective: Σ over the groups the permutations move of ⟨a_g, π(b)_g⟩ at the returned permutations
            (:func:`matching_objective`; the output bias, never moved, is left out). The matching itself runs on
            a and b divided by their largest entries (the same optimum: the objective is bilinear), so it stays
            finite for any finite θ; this value may still overflow to ±inf in float64 for |θ| near 1e160.
        objective_before: the same at the identity (b as given).
        sweeps: how many passes over the hidden layers were made (the last improved nothing when ``converged``).
        converged: whether a sweep ended without improvement within ``max_sweeps``.
    """

    theta: torch.Tensor
    perms: tuple[torch.Tensor, ...]
    objective: float
    objective_before: float
    sweeps: int
    converged: bool


def matching_objective(spec: tuple[Layer, ...], a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Σ_g ⟨a_g, b_g⟩ over the groups a hidden-unit permutation moves (:func:`moved_groups`), in float64.

    The other groups of the spec (the output layer's bias) add a constant, left out.
    """
    return float(sum((a[g].double() * b[g].double()).sum() for g in moved_groups(spec)))


def _similarity(spec: tuple[Layer, ...], layer_index: int, a: dict, b: dict, perms: list[torch.Tensor],
                outgoing: bool = True) -> np.ndarray:
    """C_l (h_l × h_l): C[i, j] = how well unit j of b, its neighbours permuted by the other π's, matches unit i of a
    (without the outgoing weights' term when ``outgoing`` is False)."""
    l = layer_index  # noqa: E741 (the paper's name)
    layer, nxt = spec[l], spec[l + 1]
    wb = b[layer.weight].double()
    if l > 0:
        wb = wb[:, perms[l - 1]]
    C = a[layer.weight].double().reshape(wb.shape[0], -1) @ wb.reshape(wb.shape[0], -1).T
    if layer.bias is not None:
        C = C + torch.outer(a[layer.bias].double(), b[layer.bias].double())
    if outgoing:
        va, vb = a[nxt.weight].double(), b[nxt.weight].double()
        if va.ndim == 1:  # one output unit (TwoLayer's v)
            C = C + torch.outer(va, vb)
        else:
            C = C + va.T @ (vb[perms[l + 1]] if l + 1 < len(spec) - 1 else vb)
    return C.cpu().numpy()


def _check_points(problem: Problem, a: object, b: object) -> tuple[torch.Tensor, torch.Tensor]:
    return problem.as_theta(a, "a"), problem.as_theta(b, "b")


def weight_matching(problem: Problem, a: torch.Tensor, b: torch.Tensor, *, max_sweeps: int = 100) -> WeightMatching:
    """The permutations of b's hidden units that maximise Σ_l ⟨W_l^a, π(W_l^b)⟩ + ⟨b_l^a, π(b_l^b)⟩ (Ainsworth et al. 2023).

    Args:
        problem: its model is a chain of affine layers with elementwise activations (TwoLayer, MLP, or a
            Module wrapping an ``nn.Sequential`` of ``nn.Linear`` and activations from
            :data:`~losslab.symmetry.ELEMENTWISE`); θ's coordinates are its free groups.
        a: the reference network, θ_a of shape (p,) (or a params dict).
        b: the network to permute, θ_b of shape (p,).
        max_sweeps: the most passes of coordinate descent over the hidden layers (one suffices for one hidden layer).

    Returns:
        A :class:`WeightMatching`; its ``theta`` computes the same function as b.

    Raises:
        LosslabError: a model that is not such a chain (the message names the first unsupported layer by its
            index and class, e.g. a convolution or a normalisation layer, and lists what is supported),
            a layer group held fixed, a or b not of shape (p,) or not finite, a bad ``max_sweeps``.

    Example:
        >>> from losslab import Problem
        >>> from losslab.models import TwoLayer
        >>> x = torch.linspace(-1, 1, 8, dtype=torch.float64)[:, None]
        >>> prob = Problem(TwoLayer(1, 4, "tanh"), x, x[:, 0])
        >>> m = weight_matching(prob, prob.init(0), prob.init(1))
        >>> m.objective >= m.objective_before, [len(p) for p in m.perms]
        (True, [4])
    """
    spec = permutable_layers(problem)
    a, b = _check_points(problem, a, b)
    max_sweeps = positive_int("max_sweeps", max_sweeps)
    pa, pb = problem.unflatten(a), problem.unflatten(b)
    # The objective is bilinear, so a/α and b/β have the same best permutations; matching on them keeps the products
    # finite for any finite θ (|θ| near 1e200 would overflow the float64 similarity matrices).
    alpha, beta = _magnitude(spec, pa), _magnitude(spec, pb)
    original_b = pb
    pa = {g: v.double() / alpha for g, v in pa.items()}
    pb = {g: v.double() / beta for g, v in pb.items()}
    widths = [pa[layer.weight].shape[0] for layer in spec[:-1]]
    perms = [torch.arange(w) for w in widths]
    before = current = matching_objective(spec, pa, pb)
    forward = perms.copy()
    for l in range(len(forward)):  # noqa: E741 (the paper's layer index)
        _, cols = linear_sum_assignment(_similarity(spec, l, pa, pb, forward, outgoing=False), maximize=True)
        forward[l] = torch.as_tensor(cols, dtype=torch.int64)
    start = matching_objective(spec, pa, permute_hidden_units(spec, pb, forward)) if forward else before
    if start > current:
        perms, current = forward, start
    scale = sum(float(pa[g].double().norm() * pb[g].double().norm()) for g in moved_groups(spec))
    sweeps, converged = 0, not perms
    while perms and sweeps < max_sweeps and not converged:
        sweeps += 1
        improved = False
        for l in range(len(perms)):  # noqa: E741 (the paper's layer index)
            _, cols = linear_sum_assignment(_similarity(spec, l, pa, pb, perms), maximize=True)
            trial = perms.copy()
            trial[l] = torch.as_tensor(cols, dtype=torch.int64)
            value = matching_objective(spec, pa, permute_hidden_units(spec, pb, trial))
            if value > current + IMPROVEMENT_RTOL * scale:
                perms, current, improved = trial, value, True
        converged = not improved
    aligned = problem.flatten(permute_hidden_units(spec, original_b, perms))
    return WeightMatching(theta=aligned, perms=tuple(perms), objective=current * alpha * beta,
                          objective_before=before * alpha * beta, sweeps=sweeps, converged=converged)


def _magnitude(spec: tuple[Layer, ...], params: dict[str, torch.Tensor]) -> float:
    """The largest |entry| over the groups the permutations move, or 1 when they are all 0."""
    largest = max((float(params[g].abs().max()) for g in moved_groups(spec) if params[g].numel()), default=0.0)
    return largest if largest > 0 else 1.0


def align(problem: Problem, a: torch.Tensor, b: torch.Tensor, *, max_sweeps: int = 100) -> torch.Tensor:
    """b with its hidden units permuted to match a by weight matching: ``weight_matching(...).theta``, shape (p,).

    The returned network computes the same function as b (a permutation of hidden units commutes with
    elementwise activations), and its parameters are as close to a's as the matching found
    (Ainsworth, Hayase & Srinivasa 2023). See :func:`weight_matching` for the objective, arguments and errors.
    """
    return weight_matching(problem, a, b, max_sweeps=max_sweeps).theta
