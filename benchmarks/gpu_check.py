"""Every public analysis on ``cuda``, checked against the same computation on the CPU, with timings.

    python benchmarks/gpu_check.py            # digits-sized problems (n = 1797, a 64-64-32-10 MLP)
    python benchmarks/gpu_check.py --small    # tiny sizes: seconds (the test suite runs this on the CPU)

What runs, each on the device and on the CPU from the same inputs:

- a Problem over a DataLoader of 4 batches (a tanh MLP on 64 features, 10 classes, cross-entropy),
  moved with ``device=``: loss, gradient, Hessian-vector product (float64 and float32), the
  batched loss of many points, ``check_convexity`` (joint and the last layer), ``plane`` and
  ``line`` (directions drawn on the CPU, so both sides slice the same plane), ``eigs``,
  ``hutchpp``, ``spectral_density``, ``classify``, the H − GGN operator and ``train`` (GD and Adam);
- a ``Module`` with an ``nn.Embedding`` on int64 token ids and a ``BatchNorm1d`` (eval mode):
  loss, gradient, product and the verdict of its last layer.

Deterministic results must agree to float64 rounding (relative 1e-9; float32 rows 5e-4 of the
float64 value, neural-tangents' scale). Random estimators draw their probes from a generator on
their own device, so the two sides see different probes: they must agree within 6 of their
combined standard errors. Eigenvalues within their residual bounds. Verdicts must be equal and
a device witness must hold when re-checked on the CPU.

Without CUDA it says so plainly and runs the same checks on the CPU against the CPU, so that the
script itself is tested. Exit code 1 when a check fails.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from losslab import Problem, check_convexity
from losslab.convexity import chord_gap
from losslab.curvature import classify, eigs, hutchpp, nonlinearity_curvature, spectral_density
from losslab.fit import train
from losslab.landscape import line, plane
from losslab.models import Module

ROWS: list[tuple[str, float, float, str, bool]] = []


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def record(name: str, t_dev: float, t_cpu: float, detail: str, ok: bool) -> None:
    ROWS.append((name, t_dev, t_cpu, detail, ok))
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.as_tensor(a).detach().double().cpu(), torch.as_tensor(b).detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def compare(name: str, fn, dev: torch.device, *, tol: float) -> None:
    """Run ``fn(device)`` on the device and on the CPU; the results agree to ``tol`` relative to their size."""
    got, t_dev = timed(lambda: fn(dev), dev)
    ref, t_cpu = timed(lambda: fn(torch.device("cpu")), torch.device("cpu"))
    if isinstance(got, torch.Tensor) and got.device.type != dev.type:
        record(name, t_dev, t_cpu, f"result on {got.device}, expected {dev.type}", False)
        return
    err = rel(got, ref)
    record(name, t_dev, t_cpu, f"max relative difference {err:.1e} (tolerance {tol:.0e})", err <= tol)


def digits_like(n: int, d: int, classes: int, seed: int = 0):
    """Synthetic digits-shaped data: n examples of d features in [0, 1], labels 0..classes−1."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=gen, dtype=torch.float64)
    y = (X @ torch.randn(d, classes, generator=gen, dtype=torch.float64)).argmax(1)
    return X, y


def mlp(d: int, hidden: tuple[int, ...], classes: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    sizes = (d, *hidden)
    layers: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-1], classes)).double()


class TokenNet(torch.nn.Module):
    """Embedding of int64 ids → mean over tokens → Linear → BatchNorm1d → ReLU → Linear."""

    def __init__(self, vocab: int, dim: int, classes: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.lin = torch.nn.Linear(dim, dim)
        self.norm = torch.nn.BatchNorm1d(dim)
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.lin(self.embed(ids).mean(1)))))


def check_mlp(dev: torch.device, *, n: int, hidden: tuple[int, ...], batches: int, steps: int, budget: int) -> None:
    d, classes = 64, 10
    X, y = digits_like(n, d, classes)
    net = mlp(d, hidden, classes)
    loader = DataLoader(TensorDataset(X, y), batch_size=math.ceil(n / batches))
    problems = {}

    def problem(device: torch.device, dtype=torch.float64) -> Problem:
        key = (device.type, dtype)
        if key not in problems:
            problems[key] = Problem(Module(net), loader, loss="cross_entropy", device=device).to(dtype)
        return problems[key]

    cpu = problem(torch.device("cpu"))
    print(f"MLP: {cpu.describe()}")
    theta = cpu.default_theta()
    gen = torch.Generator().manual_seed(1)
    v, d1, d2 = (torch.randn(cpu.n_params, generator=gen, dtype=torch.float64) for _ in range(3))
    far = theta + 0.5 * torch.randn(cpu.n_params, generator=gen, dtype=torch.float64)
    Theta = theta + 0.1 * torch.randn(64, cpu.n_params, generator=gen, dtype=torch.float64)
    on = lambda t, device: t.to(device)  # every input made on the CPU, moved to each side

    construct, t_dev = timed(lambda: problem(dev), dev)
    for D in {dev, torch.device("cpu")}:  # warm-up, untimed: CUDA context and kernels, optimizer imports
        problem(D).hvp(on(theta, D), on(v, D))
        train(problem(D), optimizer="adam", lr=1e-2, steps=1, theta0=on(theta, D))
    record("Problem(DataLoader, device=...)", t_dev, 0.0, f"on {construct.device}, {construct.data.origin}",
           construct.device.type == dev.type)
    compare("loss (float64)", lambda D: problem(D).loss(on(theta, D)), dev, tol=1e-9)
    single, t_dev = timed(lambda: problem(dev, torch.float32).loss(on(theta, dev).float()), dev)
    double, t_cpu = timed(lambda: cpu.loss(theta), torch.device("cpu"))
    err = rel(single, double)
    record("loss (float32 on the device vs float64 on the CPU)", t_dev, t_cpu, f"relative difference {err:.1e} (tolerance 5e-04)",
           err <= 5e-4)
    compare("grad", lambda D: problem(D).grad(on(theta, D)), dev, tol=1e-9)
    compare("hvp", lambda D: problem(D).hvp(on(theta, D), on(v, D)), dev, tol=1e-9)
    compare("loss_batch (64 points)", lambda D: problem(D).loss_batch(on(Theta, D)), dev, tol=1e-9)
    compare("plane (fixed directions)", lambda D: plane(problem(D), on(theta, D), on(d1, D), on(d2, D), steps=steps, span=0.5).losses,
            dev, tol=1e-9)
    compare("line", lambda D: line(problem(D), on(theta, D), on(far, D), steps=steps).losses, dev, tol=1e-9)
    compare("H − GGN product", lambda D: nonlinearity_curvature(problem(D), on(theta, D)).matvec(on(v, D)), dev, tol=1e-9)
    compare("train (GD, 20 steps)", lambda D: train(problem(D), optimizer="gd", lr=0.1, steps=20, theta0=on(theta, D)).theta, dev, tol=1e-9)
    compare("train (Adam, 20 steps)", lambda D: train(problem(D), optimizer="adam", lr=1e-2, steps=20, theta0=on(theta, D)).theta,
            dev, tol=1e-7)

    (top, t_dev), (ref, t_cpu) = (timed(lambda D=D: eigs(problem(D), on(theta, D), k=3), D) for D in (dev, torch.device("cpu")))
    slack = (top.bounds.cpu() + ref.bounds.cpu()) + 1e-9 * ref.values.abs().max()
    diff = (top.values.cpu() - ref.values.cpu()).abs()
    record("eigs (top 3)", t_dev, t_cpu, f"|Δλ| {float(diff.max()):.1e} within residual bounds {float(slack.max()):.1e}",
           bool((diff <= slack).all()))

    (tr, t_dev), (tr_ref, t_cpu) = (timed(lambda D=D: hutchpp(problem(D), on(theta, D), samples=30, seed=0), D)
                                    for D in (dev, torch.device("cpu")))
    se = math.hypot(tr.stderr, tr_ref.stderr)
    record("trace (Hutch++)", t_dev, t_cpu, f"{tr.estimate:.6g} vs {tr_ref.estimate:.6g} (6 combined stderr = {6 * se:.2g})",
           abs(tr.estimate - tr_ref.estimate) <= 6 * se + 1e-9 * abs(tr_ref.estimate))

    (den, t_dev), (den_ref, t_cpu) = (timed(lambda D=D: spectral_density(problem(D), on(theta, D), probes=8, steps=20, seed=0), D)
                                      for D in (dev, torch.device("cpu")))
    m_dev, m_cpu = den.moment(1) * cpu.n_params, den_ref.moment(1) * cpu.n_params  # ≈ tr(H), from the probes
    record("density (SLQ)", t_dev, t_cpu, f"mass {den.moment(0):.6f}; p·mean {m_dev:.4g} vs {m_cpu:.4g} (vs trace {tr_ref.estimate:.4g})",
           abs(den.moment(0) - 1) < 1e-6 and abs(m_dev - m_cpu) <= 6 * math.sqrt(2) * max(se, abs(m_cpu) / math.sqrt(8)))

    (kind, t_dev), (kind_ref, t_cpu) = (timed(lambda D=D: classify(problem(D), on(theta, D), seed=0), D)
                                        for D in (dev, torch.device("cpu")))
    record("classify", t_dev, t_cpu, f"{kind.kind} vs {kind_ref.kind}", kind.kind == kind_ref.kind)

    for groups, name in ((None, "joint"), ([cpu.groups[-2], cpu.groups[-1]], "last layer")):
        (rep, t_dev), (rep_ref, t_cpu) = (timed(lambda D=D: check_convexity(problem(D), groups, seed=0, budget=budget, by_group=False), D)
                                          for D in (dev, torch.device("cpu")))
        holds = True
        if rep.witness is not None:  # the device's witness, re-checked on the CPU in float64
            w = rep.witness
            holds = chord_gap(cpu, torch.as_tensor(w.a).cpu(), torch.as_tensor(w.b).cpu(), w.lam).holds
        record(f"check_convexity ({name})", t_dev, t_cpu, f"{rep.verdict} vs {rep_ref.verdict}" + ("" if rep.witness is None else
               f", device witness holds on the CPU: {holds}"), rep.verdict == rep_ref.verdict and holds)


def check_tokens(dev: torch.device, *, n: int) -> None:
    torch.manual_seed(0)
    net = TokenNet(vocab=50, dim=16, classes=3).double()
    with torch.no_grad():  # running statistics that are not the defaults
        net.norm.running_mean.uniform_(-0.5, 0.5)
        net.norm.running_var.uniform_(0.5, 2.0)
    gen = torch.Generator().manual_seed(0)
    ids, y = torch.randint(0, 50, (n, 6), generator=gen), torch.randint(0, 3, (n,), generator=gen)
    loader = DataLoader(TensorDataset(ids, y), batch_size=math.ceil(n / 3))
    problems = {D: Problem(Module(net), loader, loss="cross_entropy", device=D) for D in {dev, torch.device("cpu")}}
    cpu = problems[torch.device("cpu")]
    print(f"Embedding + BatchNorm: {cpu.describe()}")
    batch = next(problems[dev].batches())
    record("int64 ids kept on the device", 0.0, 0.0, f"{batch.inputs.dtype} on {batch.inputs.device}",
           batch.inputs.dtype == torch.int64 and batch.inputs.device.type == dev.type)
    theta = cpu.default_theta()
    v = torch.randn(cpu.n_params, generator=gen, dtype=torch.float64)
    compare("Module(Embedding, BatchNorm): loss", lambda D: problems[D].loss(theta.to(D)), dev, tol=1e-9)
    compare("Module(Embedding, BatchNorm): grad", lambda D: problems[D].grad(theta.to(D)), dev, tol=1e-9)
    compare("Module(Embedding, BatchNorm): hvp", lambda D: problems[D].hvp(theta.to(D), v.to(D)), dev, tol=1e-9)
    head = ["head.weight", "head.bias"]
    (rep, t_dev), (rep_ref, t_cpu) = (timed(lambda D=D: check_convexity(problems[D], head, seed=0, by_group=False), D)
                                      for D in (dev, torch.device("cpu")))
    record("Module(Embedding, BatchNorm): verdict of the head", t_dev, t_cpu, f"{rep.verdict} vs {rep_ref.verdict}",
           rep.verdict == rep_ref.verdict == "convex")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes (seconds): what the test suite runs")
    args = parser.parse_args(argv)
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        print(f"GPU: {torch.cuda.get_device_name(dev)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    else:
        dev = torch.device("cpu")
        print(f"No GPU present (torch.cuda.is_available() is False; torch {torch.__version__}): "
              "running the same checks on the CPU against the CPU, which tests this script, not a GPU.")
    if args.small:
        check_mlp(dev, n=90, hidden=(8,), batches=4, steps=5, budget=200)
        check_tokens(dev, n=30)
    else:
        check_mlp(dev, n=1797, hidden=(64, 32), batches=4, steps=21, budget=2000)
        check_tokens(dev, n=1024)
    width = max(len(r[0]) for r in ROWS)
    print(f"\n| {'analysis':<{width}} | {dev.type} s | cpu s | check |")
    print(f"|{'-' * (width + 2)}|------:|------:|-------|")
    for name, t_dev, t_cpu, detail, ok in ROWS:
        print(f"| {name:<{width}} | {t_dev:.3f} | {t_cpu:.3f} | {'ok' if ok else 'FAIL'}: {detail} |")
    failed = [r[0] for r in ROWS if not r[4]]
    print(f"\n{len(ROWS) - len(failed)} of {len(ROWS)} checks hold" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
