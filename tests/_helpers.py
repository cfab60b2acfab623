"""Small helpers shared by the test modules (on the path through pytest's ``pythonpath``)."""

from __future__ import annotations

import torch

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
