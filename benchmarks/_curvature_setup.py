"""The shared case of benchmarks/curvature_dataloader.py: a BatchNorm CNN on sklearn's 8×8 digits through a DataLoader.

Everything here is the same for every library: the network (eval mode, BatchNorm running statistics
set from the data, briefly trained so the point is not a random one), the DataLoader (shuffle=False,
uneven batches: 7 × 256 + 5), the loss (mean cross-entropy over all 1797 images), and the float64
reference (the dense Hessian from losslab's HessianOperator.to_dense(), columns checked against torch.func
products of the hand-written full-batch loss, then ``eigvalsh``).
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn

BATCH = 256


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1797 digits as (N, 1, 8, 8) float32 in [0, 1] and int64 labels."""
    d = load_digits()
    X = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    return X, torch.tensor(d.target, dtype=torch.int64)


def cnn() -> nn.Module:
    """Conv(1→8, 3) – BN – ReLU – Conv(8→16, 3) – BN – ReLU – MaxPool(2) – Linear(64→10): p = 1,946."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10),
    )


def trained_net(X: torch.Tensor, y: torch.Tensor, steps: int = 60, seed: int = 0) -> nn.Module:
    """The CNN after ``steps`` Adam steps in train mode (BN statistics cumulative over them), returned in eval mode."""
    torch.manual_seed(seed)
    net = cnn()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average: the running statistics are those of the data
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(X), (BATCH,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
        opt.step()
    return net.eval()


def loader(X: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH) -> torch.utils.data.DataLoader:
    """A DataLoader of (inputs, labels), fixed order, last batch short."""
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch_size, shuffle=False)


def dense_reference(net: nn.Module, X: torch.Tensor, y: torch.Tensor, columns: int = 3) -> torch.Tensor:
    """The full-batch Hessian in float64 (p × p): losslab's HessianOperator.to_dense() over the DataLoader, float64.

    Checked here, column by column (``columns`` of them), against forward-over-reverse products
    (``torch.func.jvp`` of ``torch.func.grad``, as ``torch.func.hessian`` computes) of the hand-written
    full-batch mean cross-entropy on all 1797 images at once; raises if they differ by more than 1e-10.
    """
    from losslab import Problem
    from losslab.curvature import HessianOperator
    from losslab.models import Module

    net64 = _copy64(net)
    problem = Problem(Module(net64), loader(X.to(torch.float64), y), loss="cross_entropy")
    H = HessianOperator(problem, problem.default_theta()).to_dense()
    names = [n for n, _ in net64.named_parameters()]
    sizes = [p.numel() for _, p in net64.named_parameters()]
    shapes = [p.shape for _, p in net64.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in net64.parameters()])
    X64 = X.to(torch.float64)

    def loss(t: torch.Tensor) -> torch.Tensor:
        params = {n: piece.reshape(s) for n, piece, s in zip(names, t.split(sizes), shapes)}
        return nn.functional.cross_entropy(torch.func.functional_call(net64, params, (X64,)), y)

    for j in torch.linspace(0, len(theta) - 1, columns).long().tolist():
        e = torch.zeros_like(theta)
        e[j] = 1.0
        col = torch.func.jvp(torch.func.grad(loss), (theta,), (e,))[1]
        err = float((col - H[:, j]).abs().max() / H.abs().max())
        if err > 1e-10:
            raise AssertionError(f"reference Hessian column {j} differs from torch.func by {err:.2e}")
    return (H + H.T) / 2


def _copy64(net: nn.Module) -> nn.Module:
    out = cnn().to(torch.float64)
    out.load_state_dict({k: v.to(torch.float64) if v.is_floating_point() else v for k, v in net.state_dict().items()})
    return out.eval()


def cdf_distance(nodes: torch.Tensor, weights: torch.Tensor, eigenvalues: torch.Tensor) -> float:
    """W₁ between a discrete spectral measure (nodes, weights summing to 1) and the true one, over the spectral range.

    W₁ = ∫ |F(t) − F_true(t)| dt, with F the cumulative distribution of each measure; divided by
    λ_max − λ_min so that 0.01 means "the eigenvalue mass is misplaced by 1 % of the spectrum's width on average".
    """
    nodes, weights = nodes.reshape(-1).to(torch.float64), weights.reshape(-1).to(torch.float64)
    weights = weights / weights.sum()
    lam = eigenvalues.to(torch.float64)
    points = torch.cat([nodes, lam]).sort().values
    F = (weights[None, :] * (nodes[None, :] <= points[:, None])).sum(1)
    G = (lam[None, :] <= points[:, None]).to(torch.float64).mean(1)
    w1 = float(((F - G).abs()[:-1] * points.diff()).sum())
    return w1 / float(lam.max() - lam.min())


def grid_cdf_distance(grid: torch.Tensor, density: torch.Tensor, eigenvalues: torch.Tensor) -> float:
    """:func:`cdf_distance` for a density given on a grid (curvlinops): its mass at each grid point, normalised."""
    mass = density.to(torch.float64).clamp_min(0) * torch.gradient(grid.to(torch.float64))[0]
    return cdf_distance(grid, mass, eigenvalues)
