"""What Lanczos itself costs per product, beside what one Hessian-vector product costs.

Run by hand:

    OMP_WAIT_POLICY=PASSIVE python benchmarks/lanczos_overhead.py

``eigs`` spends its time in operator products and in its own bookkeeping (Gram–Schmidt against
the basis, the small eigenproblem, convergence tests). On a real Hessian the products dominate
and the machine's noise hides the rest, so the bookkeeping is measured here on an operator whose
product is nearly free: a diagonal p × p float32 matrix with p = 71 425 (the size of the MLP
20-256-256-1 of ``spectrum_top5.py``) and that MLP's top-8 eigenvalues above a bulk in [0, 4).
``eigs(k=5, tol=1e-12, max_iter=33)`` runs 33 products, as on the MLP, one thick restart
included (this easier spectrum would converge sooner at the default tol). The same
run times one Hessian-vector product of the MLP (n = 4096), so the overhead is also printed as a
fraction of a product, measured side by side: medians of interleaved repeats.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import torch

from losslab import Problem
from losslab.curvature import HessianOperator, eigs
from losslab.curvature.operator import CurvatureOperator
from losslab.models import Module

P = 71_425
PRODUCTS = 33
REPEATS = 15


class Diagonal(CurvatureOperator):
    """diag(d) (p × p): a product is one elementwise multiply."""

    def __init__(self, d: torch.Tensor):
        super().__init__(len(d), d.dtype)
        self.d = d

    def _apply_rows(self, V: torch.Tensor) -> torch.Tensor:
        return V * self.d


def main() -> None:
    torch.set_num_threads(2)
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )
    g = torch.Generator().manual_seed(0)
    top = torch.tensor([7.37, 5.60, 5.20, 4.83, 4.63, 4.36, 4.24, 4.10])
    op = Diagonal(torch.cat([top, 4.0 * torch.rand(P - len(top), generator=g) ** 3]).float())

    sys.path.insert(0, os.path.dirname(__file__))
    from spectrum_top5 import setup  # the MLP, its data and its initial point

    net, X, y = setup()
    problem = Problem(Module(net), X, y)
    hessian = HessianOperator(problem, problem.default_theta())
    v = torch.randn(P, generator=g)

    lanczos, product, diagonal = [], [], []
    for _ in range(REPEATS + 1):  # the first round is a warm-up
        start = time.perf_counter()
        res = eigs(op, k=5, tol=1e-12, max_iter=PRODUCTS)
        lanczos.append((time.perf_counter() - start) / res.matvecs)
        start = time.perf_counter()
        hessian.matvec(v)
        product.append(time.perf_counter() - start)
        start = time.perf_counter()
        op.matvec(v)
        diagonal.append(time.perf_counter() - start)
    per_step = statistics.median(lanczos[1:]) - statistics.median(diagonal[1:])
    hvp = statistics.median(product[1:])
    print(
        f"eigs(k=5), {res.matvecs} products on a diagonal operator, p = {P}: {1e3 * per_step:.2f} ms of bookkeeping per product "
        f"(median of {REPEATS}; the diagonal product itself, {1e3 * statistics.median(diagonal[1:]):.2f} ms, taken out)"
    )
    print(f"one Hessian-vector product of the MLP (n = {len(X)}): {1e3 * hvp:.1f} ms; bookkeeping = {per_step / hvp:.1%} of it")


if __name__ == "__main__":
    main()
