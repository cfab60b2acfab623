"""Small helpers shared by the test modules (on the path through pytest's ``pythonpath``).

The dense float64 references (Hessians, GGNs, losses written out) live in ``references.py``.
"""

from __future__ import annotations

import math
import re

import torch

from losslab.models.base import Model

from references import hand_loss  # a reference: tests/references.py

DT = torch.float64


def gen(seed: int) -> torch.Generator:
    """A fresh CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def rand_X(n: int, d: int, seed: int) -> torch.Tensor:
    """n points uniform in [-1, 1]^d, float64, shape (n, d)."""
    return 2 * torch.rand(n, d, generator=gen(seed), dtype=DT) - 1


def moved(params: dict, direction: dict, t: float) -> dict:
    """params + t·direction, group by group (groups without a direction unchanged)."""
    return {k: v + t * direction[k] if k in direction else v for k, v in params.items()}


def relclose(a, b, rtol: float) -> bool:
    """|a − b| ≤ rtol·(1e-3 + |b|) elementwise, in float64."""
    a, b = torch.as_tensor(a, dtype=DT), torch.as_tensor(b, dtype=DT)
    return bool(((a - b).abs() <= rtol * (1e-3 + b.abs())).all())


def rounding_bound(A: torch.Tensor) -> float:
    """c·ε·‖A‖₂·p: the largest rounding floor a trace estimate of the dense symmetric A may report (losslab.tolerances)."""
    from losslab.tolerances import ROUNDING_C

    return ROUNDING_C * torch.finfo(A.dtype).eps * float(torch.linalg.matrix_norm(A, 2)) * A.shape[0]


_NUMBER = re.compile(r"[-+−]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?%?")


def _shown(value: float, evidence: str) -> bool:
    """Whether some number printed in ``evidence`` is ``value`` rounded to the digits it was printed with."""
    for token in _NUMBER.findall(evidence):
        text = token.replace(",", "").replace("−", "-")
        percent = text.endswith("%")
        mantissa, _, exponent = text.rstrip("%").lower().partition("e")
        decimals = len(mantissa.partition(".")[2])
        resolution = 10.0 ** (int(exponent or 0) - decimals) / (100 if percent else 1)
        printed = float(mantissa) * 10.0 ** int(exponent or 0) / (100 if percent else 1)
        for candidate in (printed, abs(printed)):  # a sign may belong to the sentence ("θ = −10·θ̂" for span 10)
            if abs(candidate - value) <= 0.5 * resolution * (1 + 1e-9) + 1e-12 * abs(value):
                return True
    return False


def assert_evidence_shows_values(claim) -> None:
    """Each number, flag and name a claim was judged on appears in its evidence (to the digits printed).

    ``claim.values`` are the numbers passed to ``claim(...)``: a claim whose evidence drops or garbles
    one of them fails here, which a check for "some digit" could not do.
    """
    assert claim.values, f"no values behind: {claim.statement}"
    for key, value in claim.values.items():
        if isinstance(value, bool):
            assert str(value) in claim.evidence, (key, value, claim.evidence)
        elif isinstance(value, int | float):
            if math.isfinite(value):
                assert _shown(float(value), claim.evidence), (key, value, claim.evidence)
            else:
                assert str(value) in claim.evidence or "inf" in claim.evidence, (key, value, claim.evidence)
        elif isinstance(value, str):
            assert value in claim.evidence, (key, value, claim.evidence)


def assert_certified(problem, witness) -> None:
    """A witness holds through ``verify`` *and* by :func:`hand_loss`: its hand-computed gap exceeds its bound."""
    assert witness is not None and witness.verify(problem).holds
    a, b, lam = witness.a.to(DT), witness.b.to(DT), witness.lam
    la, lb, lm = (hand_loss(problem, t) for t in (a, b, lam * a + (1 - lam) * b))
    gap = lm - lam * la - (1 - lam) * lb
    assert gap > witness.bound > 0, (gap, witness.bound)


def with_spectrum(values, seed: int = 0, dtype: torch.dtype = DT) -> torch.Tensor:
    """Q diag(values) Qᵀ with a random orthogonal Q from ``gen(seed)``: a symmetric matrix of known spectrum (built in
    float64, then cast to ``dtype``)."""
    values = torch.as_tensor(values, dtype=DT)
    Q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=gen(seed), dtype=DT))
    A = Q @ torch.diag(values) @ Q.T
    return ((A + A.T) / 2).to(dtype)


def wanted_eigenvalues(true: torch.Tensor, k: int, which: str) -> torch.Tensor:
    """The eigenvalues (ascending ``true``) that ``eigs`` promises: ⌊k/2⌋ smallest and ⌈k/2⌉ largest for "both"."""
    if which == "largest":
        return true[-k:]
    if which == "smallest":
        return true[:k]
    return torch.cat([true[: k // 2], true[len(true) - (k - k // 2) :]])


class Untraced(torch.nn.Module):
    """x ↦ w·x + b behind a branch on a tensor value that torch.fx cannot trace: affine, so convex losses, but no proof."""

    def __init__(self, d_in: int):
        super().__init__()
        self.lin = torch.nn.Linear(d_in, 1).double()

    def forward(self, x):
        return self.lin(x) if bool(x.abs().sum() >= 0) else -self.lin(x)


class SquaredWeight(Model):
    """w²·x: with one example x = 1 and target Y, L(w) = (w² − Y)², concave around w = 0 for Y > 0."""

    d_in, shapes, affine_sets = 1, {"w": (1,)}, ()

    def init(self, *, seed: int = 0, dtype: torch.dtype = DT):
        return {"w": torch.zeros(1, dtype=dtype)}

    def logit(self, params, X):
        return params["w"] ** 2 * X[:, 0]
