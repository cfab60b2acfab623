"""Every public analysis on ``cuda``, checked against the same computation on the CPU, with timings.

    python benchmarks/gpu_check.py            # digits-sized problems (n = 1797, a 64-64-32-10 MLP)
    python benchmarks/gpu_check.py --small    # tiny sizes: seconds (the test suite runs this on the CPU)
    python benchmarks/gpu_check.py --large    # also a float32 BatchNorm CNN on 8,192 images: device timings

What runs, each on the device and on the CPU from the same inputs:

- a Problem over a DataLoader of 4 batches (a tanh MLP on 64 features, 10 classes, cross-entropy),
  moved with ``device=``: loss, gradient, Hessian-vector product (float64 and float32), the
  batched loss of many points, ``check_convexity`` (joint and the last layer), ``plane`` and
  ``line`` (directions drawn on the CPU, so both sides slice the same plane), ``eigs``,
  ``hutchpp``, ``spectral_density``, ``classify``, the H − GGN operator and ``train`` (GD and Adam);
- a ``Module`` with an ``nn.Embedding`` on int64 token ids and a ``BatchNorm1d`` (eval mode):
  loss, gradient, product and the verdict of its last layer.

Deterministic results must agree to float64 rounding (relative 1e-9; float32 rows 5e-4 of the
float64 value, neural-tangents' scale). Random estimators (Lanczos start vectors, Hutch++ and SLQ
probes) draw on the CPU and move the draws, so a seed gives both sides the same probes: their
estimates must agree to 1e-6 of their size, far inside the stated standard errors. Eigenvalues
within their residual bounds. Verdicts must be equal and a device witness must hold when
re-checked on the CPU.

``--large`` adds timings at a size where a GPU matters: a float32 CNN with BatchNorm (eval mode)
on 8,192 synthetic 3×16×16 images through a DataLoader of 8 batches. The device and the CPU both
run one loss, gradient and product (float32 timed, float64 compared); the analyses built on many
products (eigs, Hutch++, SLQ, a plane, check_convexity, train) are timed on the device alone.

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


def problem_cache(net: torch.nn.Module, loader: DataLoader, default: torch.dtype):
    """problem(device, dtype=default): one cross-entropy Problem of ``net`` over ``loader`` per (device, dtype), built once."""
    problems = {}

    def problem(device: torch.device, dtype: torch.dtype = default) -> Problem:
        key = (device.type, dtype)
        if key not in problems:
            problems[key] = Problem(Module(net), loader, loss="cross_entropy", device=device).to(dtype)
        return problems[key]

    return problem


def check_mlp(dev: torch.device, *, n: int, hidden: tuple[int, ...], batches: int, steps: int, budget: int) -> None:
    d, classes = 64, 10
    X, y = digits_like(n, d, classes)
    net = mlp(d, hidden, classes)
    loader = DataLoader(TensorDataset(X, y), batch_size=math.ceil(n / batches))
    problem = problem_cache(net, loader, torch.float64)

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
    scale = abs(tr_ref.estimate) + tr_ref.stderr
    record("trace (Hutch++)", t_dev, t_cpu, f"{tr.estimate:.9g} vs {tr_ref.estimate:.9g} (same probes; stderr {se:.2g})",
           abs(tr.estimate - tr_ref.estimate) <= 1e-6 * scale)

    (den, t_dev), (den_ref, t_cpu) = (timed(lambda D=D: spectral_density(problem(D), on(theta, D), probes=8, steps=20, seed=0), D)
                                      for D in (dev, torch.device("cpu")))
    m_dev, m_cpu = den.moment(1) * cpu.n_params, den_ref.moment(1) * cpu.n_params  # ≈ tr(H), from the probes
    record("density (SLQ)", t_dev, t_cpu, f"mass {den.moment(0):.6f}; p·mean {m_dev:.9g} vs {m_cpu:.9g} (same probes)",
           abs(den.moment(0) - 1) < 1e-6 and abs(m_dev - m_cpu) <= 1e-6 * (abs(m_cpu) + scale))

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


def cnn(classes: int = 10) -> torch.nn.Module:
    """Conv(3→16, 3) – BN – ReLU – Conv(16→32, 3) – BN – ReLU – MaxPool(2) – Conv(32→32, 3) – ReLU – pool – Linear(→classes)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(128, classes),
    )
    with torch.no_grad():  # running statistics that are not the defaults
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def median_time(fn, device: torch.device, repeats: int = 5):
    times = []
    for _ in range(repeats):
        out, t = timed(fn, device)
        times.append(t)
    return out, sorted(times)[len(times) // 2]


def check_large(dev: torch.device, *, n: int = 8192, batches: int = 8) -> None:
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, 16, 16, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    loader = DataLoader(TensorDataset(X, y), batch_size=n // batches)
    net = cnn()
    cpu = torch.device("cpu")
    problem = problem_cache(net, loader, torch.float32)

    built, t_dev = timed(lambda: problem(dev), dev)
    print(f"CNN: {built.describe()}")
    theta = problem(cpu).default_theta()
    v = torch.randn(theta.numel(), generator=gen)
    problem(dev).hvp(theta.to(dev), v.to(dev))  # warm-up, untimed
    record("CNN: Problem(DataLoader, device=...), float32", t_dev, float("nan"), f"on {built.device}, {built.data.origin}",
           built.device.type == dev.type)
    theta64, v64 = theta.double(), v.double()
    ops = (("loss", lambda P, t, u: P.loss(t)), ("grad", lambda P, t, u: P.grad(t)), ("hvp", lambda P, t, u: P.hvp(t, u)))
    for name, op in ops:  # float32 on both sides, timed; each against the CPU's float64 (TF32 convolutions on a GPU round at 2^-11)
        got, t_dev = median_time(lambda: op(problem(dev), theta.to(dev), v.to(dev)), dev)
        got_cpu, t_cpu = median_time(lambda: op(problem(cpu), theta, v), cpu, repeats=3)
        exact = op(problem(cpu, torch.float64), theta64, v64)
        err, err_cpu = rel(got, exact), rel(got_cpu, exact)
        record(f"CNN: {name} (float32, median)", t_dev, t_cpu, f"relative difference to float64: {err:.1e} on {dev.type}, "
               f"{err_cpu:.1e} on cpu (tolerance 1e-2)", err <= 1e-2)
    got, t_dev = timed(lambda: problem(dev, torch.float64).hvp(theta64.to(dev), v64.to(dev)), dev)
    ref, t_cpu = timed(lambda: problem(cpu, torch.float64).hvp(theta64, v64), cpu)
    err = rel(got, ref)
    record("CNN: hvp (float64)", t_dev, t_cpu, f"max relative difference {err:.1e} (tolerance 1e-9)", err <= 1e-9)

    P, t0 = problem(dev), theta.to(dev)
    top, t_dev = timed(lambda: eigs(P, t0, k=5), dev)
    record("CNN: eigs (top 5, float32)", t_dev, float("nan"), f"λ1 {float(top.values[0]):.5g}, {top.matvecs} products, "
           f"converged {bool(top.converged.all()) if isinstance(top.converged, torch.Tensor) else top.converged}",
           bool(torch.isfinite(top.values).all()))
    tr, t_dev = timed(lambda: hutchpp(P, t0, samples=99, seed=0), dev)
    record("CNN: trace (Hutch++, 99 products)", t_dev, float("nan"), f"{tr.estimate:.5g} ± {tr.stderr:.2g}", math.isfinite(tr.estimate))
    den, t_dev = timed(lambda: spectral_density(P, t0, probes=8, steps=40, seed=0), dev)
    record("CNN: density (SLQ, 8 probes × 40 steps)", t_dev, float("nan"), f"mass {den.moment(0):.6f}", abs(den.moment(0) - 1) < 1e-5)
    sl, t_dev = timed(lambda: plane(P, t0, steps=21, seed=0), dev)
    record("CNN: plane (21×21, filter-normalised)", t_dev, float("nan"), f"{sl.losses.numel()} points, all finite: "
           f"{bool(torch.isfinite(torch.as_tensor(sl.losses)).all())}", bool(torch.isfinite(torch.as_tensor(sl.losses)).all()))
    rep, t_dev = timed(lambda: check_convexity(P, seed=0, by_group=False), dev)
    holds = True
    if rep.witness is not None:  # re-checked on the CPU in float64
        w = rep.witness
        a, b = (torch.as_tensor(t).cpu().double() for t in (w.a, w.b))
        holds = chord_gap(problem(cpu, torch.float64), a, b, w.lam).holds
    record("CNN: check_convexity (joint)", t_dev, float("nan"), f"{rep.verdict}; witness holds on the CPU in float64: {holds}",
           rep.verdict == "non-convex" and holds)
    run, t_dev = timed(lambda: train(P, optimizer="adam", lr=1e-3, steps=50, theta0=t0), dev)
    drop = float(P.loss(run.theta)) - float(P.loss(t0))
    record("CNN: train (Adam, 50 full-batch steps)", t_dev, float("nan"), f"loss change {drop:+.3g}", drop < 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes (seconds): what the test suite runs")
    parser.add_argument("--large", action="store_true", help="also time a float32 BatchNorm CNN on 8,192 images (device timings)")
    args = parser.parse_args(argv)
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        print(f"GPU: {torch.cuda.get_device_name(dev)}; torch {torch.__version__}, CUDA {torch.version.cuda}; TF32 allowed in "
              f"convolutions: {torch.backends.cudnn.allow_tf32}, in matrix products: {torch.backends.cuda.matmul.allow_tf32}")
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
    if args.large:
        check_large(dev, n=512 if args.small else 8192)
    width = max(len(r[0]) for r in ROWS)
    print(f"\n| {'analysis':<{width}} | {dev.type} s | cpu s | check |")
    print(f"|{'-' * (width + 2)}|------:|------:|-------|")
    for name, t_dev, t_cpu, detail, ok in ROWS:
        cpu_s = "—" if math.isnan(t_cpu) else f"{t_cpu:.3f}"
        print(f"| {name:<{width}} | {t_dev:.3f} | {cpu_s} | {'ok' if ok else 'FAIL'}: {detail} |")
    failed = [r[0] for r in ROWS if not r[4]]
    print(f"\n{len(ROWS) - len(failed)} of {len(ROWS)} checks hold" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
