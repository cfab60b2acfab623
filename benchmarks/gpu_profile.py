"""Where the time of a Hessian-vector product and of check_convexity goes on a GPU (diagnostic, run by hand).

    python benchmarks/gpu_profile.py            # the --large CNN of gpu_check.py: n = 8,192 in 8 batches, float32
    python benchmarks/gpu_profile.py --n 512    # a quick CPU run of the same script

Times, median of 5 with the device synchronised, one product each:

- ``problem.hvp`` (forward-over-reverse, ``jvp(grad(L))``, batch by batch, nothing cached);
- ``HessianOperator.matvec`` (double backward through gradient graphs cached per batch);
- a PyHessian-style product written out in plain autograd (per batch: forward, ``grad`` with
  ``create_graph``, then ``grad`` of g·v), nothing cached, as a floor for an uncached product;
- the same three with the data as one batch of n;

then the profiler's top CUDA kernels of the cached product, and ``check_convexity`` with the
time of each stage it reports.
"""

from __future__ import annotations

import argparse
import time

import torch
from gpu_check import cnn, median_time, sync
from torch.utils.data import DataLoader, TensorDataset

from losslab import Problem, check_convexity
from losslab.curvature import HessianOperator
from losslab.models import Module


def plain_hvp(net, loader, v_list, device):
    """Σ_b (n_b/n) ∇²ℓ_b·v by double backward, the way PyHessian's dataloader_hv_product does it."""
    params = [p for p in net.parameters() if p.requires_grad]
    n = len(loader.dataset)
    out = [torch.zeros_like(p) for p in params]
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        loss = torch.nn.functional.cross_entropy(net(X), y)
        g = torch.autograd.grad(loss, params, create_graph=True)
        hv = torch.autograd.grad(g, params, grad_outputs=v_list)
        for o, h in zip(out, hv):
            o.add_(h, alpha=len(y) / n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8192)
    args = parser.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n = args.n
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, 16, 16, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    net = cnn()
    print(f"device {dev}, n = {n}, p = {sum(p.numel() for p in net.parameters())}")
    for batches in (8, 1):
        loader = DataLoader(TensorDataset(X, y), batch_size=n // batches)
        P = Problem(Module(net), loader, loss="cross_entropy", device=dev).to(torch.float32)
        theta = P.default_theta()
        v = torch.randn(theta.numel(), generator=gen).to(dev)
        op = HessianOperator(P, theta)
        net_dev = cnn().to(dev)
        v_list = [piece.view_as(p) for piece, p in zip(v.split([p.numel() for p in net_dev.parameters()]), net_dev.parameters())]
        rows = {
            "problem.hvp (jvp of grad, uncached)": lambda: P.hvp(theta, v),
            "HessianOperator.matvec (cached graphs)": lambda: op.matvec(v),
            "plain autograd double backward (uncached)": lambda: plain_hvp(net_dev, loader, v_list, dev),
        }
        for name, fn in rows.items():
            fn()
            _, t = median_time(fn, dev)
            print(f"  {batches} batch(es): {name:<44} {1e3 * t:8.1f} ms")
        ref = torch.cat([h.reshape(-1) for h in plain_hvp(net_dev, loader, v_list, dev)])
        got = P.hvp(theta, v)
        print(f"  {batches} batch(es): relative difference problem.hvp vs plain: {float((got - ref).norm() / ref.norm()):.1e}")
        if batches == 8 and dev.type == "cuda":
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA, torch.profiler.ProfilerActivity.CPU]) as prof:
                op.matvec(v)
                sync(dev)
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60))
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA, torch.profiler.ProfilerActivity.CPU]) as prof:
                P.hvp(theta, v)
                sync(dev)
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60))
        op = None  # frees the cached graphs
    loader = DataLoader(TensorDataset(X, y), batch_size=n // 8)
    P = Problem(Module(net), loader, loss="cross_entropy", device=dev).to(torch.float32)
    start = last = time.perf_counter()

    def stage(msg: str) -> None:
        nonlocal last
        sync(dev)
        now = time.perf_counter()
        print(f"  check_convexity +{now - last:6.2f} s (at {now - start:6.2f} s): {msg}", flush=True)
        last = now

    rep = check_convexity(P, seed=0, by_group=False, progress=stage)
    sync(dev)
    print(f"check_convexity: {rep.verdict} in {time.perf_counter() - start:.2f} s; {rep.search}")


if __name__ == "__main__":
    main()
