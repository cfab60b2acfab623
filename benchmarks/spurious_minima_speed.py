"""train_ensemble against a loop of train on the Safran–Shamir runs (issue #12: goal ≥ 5×).

The runs of the spurious-minima experiment: the closed-form population loss of a k = 8 ReLU student against the
k = 8 identity teacher (``losslab.objectives.relu_teacher_problem``), K = 200 Xavier starts, full-batch GD at
η = 1.5/λ_max(teacher), the same fixed number of steps for both, so both do the same arithmetic:

* ``train_ensemble``: the K starts in one ``torch.func.vmap`` per step;
* ``a loop of train``: ``losslab.fit.train(optimizer="gd")`` once per start (torch.optim.SGD on one θ).

Also timed: ``train_ensemble(until_grad_norm=1e-4)`` with the experiment's step budget, which drops converged runs
from the batch (the experiment's own call).

Side by side in one run, interleaved rounds, medians (≥ 3). Run as ``python benchmarks/spurious_minima_speed.py
[--rounds R] [--starts K] [--steps S]`` in the users' environment: no OMP_WAIT_POLICY, torch's default threads.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from losslab.fit import train, train_ensemble
from losslab.objectives import relu_teacher_problem

K_TEACHER = 8
LAMBDA_MAX = 2.602  # λ_max(∇²F) at W = I_8 (losslab.curvature.eigs; the experiment computes it each run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--starts", type=int, default=200)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    problem = relu_teacher_problem(K_TEACHER, K_TEACHER)
    lr = 1.5 / LAMBDA_MAX
    seeds = list(range(args.starts))
    theta0 = torch.stack([problem.init(s) for s in seeds])

    def ensemble():
        return train_ensemble(problem, theta0=theta0, seeds=seeds, lr=lr, steps=args.steps, record_every=args.steps).theta

    def loop():
        return torch.stack([train(problem, lr=lr, steps=args.steps, theta0=t, record_every=args.steps).theta for t in theta0])

    def until():
        return train_ensemble(problem, theta0=theta0, seeds=seeds, lr=lr, steps=6000, until_grad_norm=1e-4).theta

    same = float((ensemble() - loop()).abs().max())
    times: dict[str, list[float]] = {"train_ensemble": [], "loop of train": [], "train_ensemble(until_grad_norm=1e-4)": []}
    for _ in range(args.rounds):
        for name, fn in (("train_ensemble", ensemble), ("loop of train", loop), ("train_ensemble(until_grad_norm=1e-4)", until)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"{platform.processor() or 'cpu'}")
    print(f"k = n = {K_TEACHER}, {args.starts} starts, {args.steps} GD steps, lr = {lr:.4f}, {args.rounds} rounds; "
          f"largest |θ_ensemble − θ_loop| = {same:.2e}")
    for name, v in med.items():
        print(f"  {name:40s} median {v:8.3f} s   rounds {', '.join(f'{t:.3f}' for t in times[name])}")
    print(f"  ratio loop / ensemble: {med['loop of train'] / med['train_ensemble']:.1f}× (goal ≥ 5×)")


if __name__ == "__main__":
    main()
