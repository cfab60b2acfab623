"""Top-5 Hessian eigenvalues of an MLP: losslab against PyHessian and SciPy's eigsh, side by side.

Run by hand (``pip install -e ".[bench]"`` first):

    OMP_WAIT_POLICY=PASSIVE python benchmarks/spectrum_top5.py

(without ``OMP_WAIT_POLICY=PASSIVE`` torch's idle OpenMP threads spin and steal the cores from
everything between two torch calls: Python-side loops, SciPy's BLAS). Torch runs on 2 threads.

The problem: the MLP 20-256-256-1 (tanh, p = 71 425) at its ``nn.Module`` default
initialisation under ``torch.manual_seed(0)``, mean squared error on n = 4096 float32 points
X ~ N(0, I), y = sin(X[:, 0]). For each method it prints the Hessian-vector products used, the
median wall time of 5 rounds (whole calls, graph construction included; the methods take turns
within each round, so a change in the machine's load hits them alike, and the round-by-round
ratios of losslab's time to PyHessian's are printed too), the largest relative error of the 5
eigenvalues against a float64 reference, the smallest |cos| between its eigenvectors and the
reference's, and the ratios to PyHessian:

* ``pyhessian.hessian(...).eigenvalues(top_n=5)`` (pip package PyHessian 0.1, its defaults:
  power iteration with deflation, at most ``maxIter`` = 100 products per eigenvalue, stopping
  when two successive estimates differ by < ``tol`` = 1e-3 relatively); products counted by
  wrapping the ``hessian_vector_product`` that its ``eigenvalues`` calls;
* ``losslab.curvature.eigs(problem, θ, k=5)`` (thick-restart Lanczos, defaults: the "gap"
  criterion, eigenvalue error bound r²/δ (Kato–Temple, gap δ estimated from the other Ritz
  values) ≤ 100·eps₃₂·‖H‖ ≈ 1.2e-5·‖H‖ and rigorous residual bound r ≤ √(1.2e-5)·‖H‖; both
  bounds are printed);
* the same at tol = 1e-4 (eigenvalues to about 1e-4·‖H‖): what asking for less accuracy saves;
* at equal accuracy, once: PyHessian with ``maxIter=2000, tol=1e-6``, which reaches an error
  comparable to losslab's default;
* ``scipy.sparse.linalg.eigsh`` (ARPACK, k=5, which="LA") on ``HessianOperator(...).to_scipy()``
  with its default tol=0 (machine precision) and with tol = 1.2e-5 (losslab's), SciPy's BLAS
  held to one thread (threadpoolctl) so that it does not fight torch's two.

The reference is the float64 problem (same θ, X, y promoted exactly), solved by losslab's
``eigs`` at tol=1e-12 and checked by ``eigsh`` in float64 at tol=0; both must agree to ~1e-10.
PyHessian's ``nn.MSELoss()`` on outputs (n, 1) and targets (n, 1) is mean((f − y)²), losslab's
"mse" likewise, so the Hessians are the same matrix: checked on one product below.
"""

from __future__ import annotations

import copy
import inspect
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import scipy
import torch
from scipy.sparse.linalg import eigsh
from threadpoolctl import threadpool_limits

from losslab import Problem
from losslab.curvature import HessianOperator, eigs
from losslab.models import Module

K = 5
REPEATS = 5  # timed rounds (every method once per round), after one warm-up run each
SEED = 0


def timed_rounds(methods: dict, repeats: int = REPEATS) -> tuple[dict, dict]:
    """Each method once as a warm-up, then ``repeats`` rounds of every method in turn (interleaved,
    so that a change in the machine's load hits all methods alike).

    Returns ({label: list of seconds, one per round}, {label: the last run's result}).
    """
    for fn in methods.values():
        fn()
    times, out = {label: [] for label in methods}, {}
    for _ in range(repeats):
        for label, fn in methods.items():
            start = time.perf_counter()
            out[label] = fn()
            times[label].append(time.perf_counter() - start)
    return times, out


def setup():
    g = torch.Generator().manual_seed(SEED)
    X = torch.randn(4096, 20, generator=g)
    y = torch.sin(X[:, 0])
    torch.manual_seed(SEED)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 256), torch.nn.Tanh(), torch.nn.Linear(256, 256), torch.nn.Tanh(), torch.nn.Linear(256, 1)
    )
    return net, X, y


def descending(values, vectors):
    """Eigenpairs as float64 numpy, sorted by decreasing eigenvalue: ((k,), (p, k))."""
    values, vectors = np.asarray(values, dtype=np.float64), np.asarray(vectors, dtype=np.float64)
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def main() -> None:
    import pyhessian

    ph_module = sys.modules["pyhessian.hessian"]  # the package re-exports the class under the same name
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", message=".*create_graph=True.*")  # PyHessian's loss.backward(create_graph=True)
    print(
        f"{platform.machine()} ({platform.platform()}), {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, SciPy {scipy.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )

    net, X, y = setup()
    problem = Problem(Module(net), X, y)
    theta = problem.default_theta()
    p = problem.n_params
    print(f"MLP 20-256-256-1 tanh, mse, n={len(X)}, p={p}, float32; top-{K} Hessian eigenvalues at the default init")

    # ---- reference: float64, two methods ------------------------------------------------------
    problem64 = Problem(Module(net), X.double(), y.double())
    theta64 = theta.double()
    start = time.perf_counter()
    ref = eigs(problem64, theta64, k=K, which="largest", tol=1e-12)
    ref_seconds = time.perf_counter() - start
    ref_values, ref_vectors = descending(ref.values, ref.vectors)
    op64 = HessianOperator(problem64, theta64)
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        check_values, _ = eigsh(op64.to_scipy(), k=K, which="LA", tol=0, v0=np.random.default_rng(SEED).standard_normal(p))
    check_seconds = time.perf_counter() - start
    check_values = np.sort(check_values)[::-1]
    ref_agree = float(np.max(np.abs(check_values - ref_values) / np.abs(ref_values)))
    print(f"reference (float64): {np.array2string(ref_values, precision=10, separator=', ')}")
    print(
        f"  losslab eigs tol=1e-12: {ref.matvecs} products, {ref_seconds:.1f} s, max bound {float(ref.bounds.max()):.1e}; "
        f"SciPy eigsh tol=0: {op64.products} products, {check_seconds:.1f} s; max relative difference {ref_agree:.1e}"
    )
    del op64

    # ---- the Hessians are the same matrix ----------------------------------------------------------
    ph_net = copy.deepcopy(net)
    torch.manual_seed(SEED)
    h = pyhessian.hessian(ph_net, criterion=torch.nn.MSELoss(), data=(X, y[:, None]), cuda=False)
    v = torch.randn(p, generator=torch.Generator().manual_seed(SEED))
    pieces = [c.reshape(q.shape) for c, q in zip(v.split([q.numel() for q in h.params]), h.params)]
    ph_hv = torch.cat([t.reshape(-1) for t in ph_module.hessian_vector_product(h.gradsH, h.params, pieces)]).detach().double()
    ll_hv = HessianOperator(problem, theta).matvec(v).double()
    hv64 = HessianOperator(problem64, theta64).matvec(v.double())
    with torch.no_grad():
        ph_loss = float(torch.nn.MSELoss()(ph_net(X), y[:, None]))
    del h
    ph_net.zero_grad(set_to_none=True)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))

    print(
        f"same Hessian: loss {ph_loss:.7f} (PyHessian) vs {float(problem.loss(theta)):.7f} (losslab); one product, relative "
        f"difference PyHessian–losslab {rel(ph_hv, ll_hv):.1e}, PyHessian–float64 {rel(ph_hv, hv64):.1e}, "
        f"losslab–float64 {rel(ll_hv, hv64):.1e}"
    )

    # ---- the methods ---------------------------------------------------------------------------------
    counter = {"products": 0}
    original_hvp = ph_module.hessian_vector_product

    def counted_hvp(gradsH, params, v):
        counter["products"] += 1
        return original_hvp(gradsH, params, v)

    ph_module.hessian_vector_product = counted_hvp
    defaults = {k: v.default for k, v in inspect.signature(pyhessian.hessian.eigenvalues).parameters.items() if k in ("maxIter", "tol")}

    def run_pyhessian(**options):
        model = copy.deepcopy(net)
        torch.manual_seed(SEED)  # PyHessian draws its start vectors from the global generator
        counter["products"] = 0
        hess = pyhessian.hessian(model, criterion=torch.nn.MSELoss(), data=(X, y[:, None]), cuda=False)
        values, vectors = hess.eigenvalues(top_n=K, **options)
        model.zero_grad(set_to_none=True)  # drop the gradient graph it left on the parameters
        flat = torch.stack([torch.cat([t.reshape(-1) for t in vec]) for vec in vectors], 1).detach()
        return values, flat, counter["products"]

    last = {}

    def run_losslab(tol: float | None = None):
        def run():
            res = eigs(Problem(Module(net), X, y), theta, k=K, which="largest", tol=tol)
            last[tol] = res
            return res.values.numpy(), res.vectors.numpy(), res.matvecs

        return run

    def run_scipy(tol: float):
        def run():
            op = HessianOperator(Problem(Module(net), X, y), theta)
            v0 = np.random.default_rng(SEED).standard_normal(p)
            with threadpool_limits(limits=1, user_api="blas"):
                values, vectors = eigsh(op.to_scipy(), k=K, which="LA", tol=tol, v0=v0)
            return values, vectors, op.products

        return run

    try:
        methods = {
            f"PyHessian (maxIter={defaults['maxIter']}, tol={defaults['tol']:g})": run_pyhessian,
            "losslab eigs (default tol)": run_losslab(),
            "losslab eigs tol=1e-4": run_losslab(1e-4),
            "SciPy eigsh tol=0 (default)": run_scipy(0.0),
            "SciPy eigsh tol=1.2e-5": run_scipy(100 * torch.finfo(torch.float32).eps),
        }
        times, outs = timed_rounds(methods)
        base_label = next(iter(methods))
        rows, round_ratios = {}, {}
        for label, (values, vectors, products) in outs.items():
            values, vectors = descending(values, vectors)
            error = float(np.max(np.abs(values - ref_values) / np.abs(ref_values)))
            cosine = float(np.min(np.abs(np.sum(vectors * ref_vectors, 0)) / np.linalg.norm(vectors, axis=0)))
            rows[label] = (products, statistics.median(times[label]), error, cosine, values)
            round_ratios[label] = [a / b for a, b in zip(times[label], times[base_label])]
        # At equal accuracy: PyHessian asked for ~1e-6 (one run; its tol is a relative change between iterations).
        start = time.perf_counter()
        tight_values, _, tight_products = run_pyhessian(maxIter=2000, tol=1e-6)
        tight_seconds = time.perf_counter() - start
        tight_error = float(np.max(np.abs(np.sort(np.asarray(tight_values))[::-1] - ref_values) / np.abs(ref_values)))
    finally:
        ph_module.hessian_vector_product = original_hvp

    base_products, base_seconds, base_error, *_ = next(iter(rows.values()))
    print(
        f"{'method':36s} {'HVPs':>5s} {'time':>8s} {'ms/HVP':>7s} {'max rel err':>11s} {'min |cos|':>10s}   "
        "ratios to PyHessian: time, HVPs, error"
    )
    for label, (products, seconds, error, cosine, _) in rows.items():
        print(
            f"{label:36s} {products:5d} {seconds:7.2f}s {1e3 * seconds / products:7.1f} {error:11.1e} {cosine:10.6f}   "
            f"{seconds / base_seconds:6.3f}× {products / base_products:6.3f}× {error / base_error:8.1e}×"
        )
    for label, (*_, values) in rows.items():
        print(f"  {label:34s} {np.array2string(values, precision=7, separator=', ')}")
    res = last[None]
    print(
        f"  losslab eigs bounds relative to |value|: rigorous residual ≤ {float((res.bounds / res.values.abs()).max()):.1e}, "
        f"gap (Kato–Temple, estimated gap) ≤ {float((res.gap_bounds / res.values.abs()).max()):.1e}; converged: {res.all_converged}"
    )
    ours = round_ratios["losslab eigs (default tol)"]
    print(
        f"  losslab eigs / PyHessian time, round by round ({REPEATS} interleaved rounds): "
        f"{', '.join(f'{r:.3f}' for r in ours)}; median {statistics.median(ours):.3f}, range {min(ours):.3f}–{max(ours):.3f}"
    )
    products, seconds, error, *_ = rows["losslab eigs (default tol)"]
    print(
        f"at equal accuracy: PyHessian with maxIter=2000, tol=1e-6 (one run) takes {tight_products} HVPs and {tight_seconds:.2f} s "
        f"for a max relative error of {tight_error:.1e}; losslab's default ({error:.1e}) takes {seconds / tight_seconds:.3f}× its time "
        f"and {products / tight_products:.3f}× its HVPs"
    )
    time_ratio = statistics.median(ours)  # the side-by-side statistic; the ratio of the medians is in the table
    met = time_ratio <= 0.25 and products <= base_products / 4 and error * 100 <= base_error
    print(
        f"goal (≤ 1/4 of PyHessian's time and HVPs, ≥ 100× smaller error): losslab {'meets' if met else 'MISSES'} it — "
        f"time {time_ratio:.3f}× (median round), {products / base_products:.3f}× the HVPs, {base_error / error:.0f}× smaller error"
    )


if __name__ == "__main__":
    main()
