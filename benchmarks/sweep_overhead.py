"""What a sweep costs per task: a plain loop against ``losslab sweep`` on the local pool and on Ray (issue #13).

The tasks are what a user sweeps: the user's own file (written to a temporary folder, as a user
would have it), a two-layer tanh net ``nn.Sequential(Linear(5, 16), Tanh(), Linear(16, 1))`` in
float64 trained by full-batch gradient descent (``torch.optim.SGD``, 300 steps) on n = 64 points that
the file's ``make_data()`` builds once; a grid of 4 learning rates × 50 seeds = 200 tasks, each
returning its final loss and weight norm. Three ways, side by side, rounds interleaved:

* **loop**: a plain Python loop over the 200 tasks in this process, torch on one thread (as the
  workers run), nothing stored;
* **local**: ``losslab.sweep.run(config, backend="local", workers=2)``, the real code path: the
  config, the payload built and pickled once, two spawned worker processes, every row committed to
  a fresh SQLite store;
* **ray**: the same with ``backend="ray"`` on ``ray.init(num_cpus=2)``, started once before the
  rounds (its start time is reported on its own, and the ray ratio with it added).

Per way: the median wall time (s), the summed task time Σ (s, the store's ``seconds`` column), and
the overhead per task = (wall × workers − Σ) / tasks, with Σ the way's own or the loop's (the same
work in one warm process), and the sweep's start-up (the wall time of a sweep of 2 one-step tasks,
one per worker: spawning workers or actors, importing torch and losslab there, shipping the payload,
torch's first-call costs, the store). Every way must give bit-identical numbers (checked).
Also measured for docs/sweeps.md: rows per second that ``Store.record`` sustains (synchronous=FULL,
the store's setting) and the pickled payload's size.

Run in the users' environment (no ``OMP_WAIT_POLICY``, torch's default threads in the driver)::

    flock /tmp/losslab-bench.lock python benchmarks/sweep_overhead.py [--repeats 3] [--tasks 200] [--out FILE]

The output is printed and written to ``benchmarks/results/sweep_overhead.txt`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import torch
from _timing import Log

from losslab import sweep
from losslab._user_code import import_user_file
from losslab.sweep.runner import build_payload
from losslab.sweep.store import Store
from losslab.sweep.tasks import Outcome

WORKERS = 2
RESULTS = Path(__file__).resolve().parent / "results" / "sweep_overhead.txt"

USER_FILE = '''\
"""A two-layer net trained by full-batch gradient descent: what a user sweeps over."""
import torch


def make_data(n=64, d=5):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.sin(X @ torch.randn(d, generator=g, dtype=torch.float64))
    return X, y


def train(data, *, seed, lr, width=16, steps=300):
    X, y = data
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], width), torch.nn.Tanh(), torch.nn.Linear(width, 1)).double()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X).squeeze(1), y).backward()
        opt.step()
    with torch.no_grad():
        loss = torch.nn.functional.mse_loss(net(X).squeeze(1), y)
        norm = torch.cat([p.reshape(-1) for p in net.parameters()]).norm()
    return {"loss": float(loss), "weight_norm": float(norm)}
'''


def config_text(seeds: int, steps: int) -> str:
    return textwrap.dedent(f"""\
        [sweep]
        function = "study.py:train"
        factory = "study.py:make_data"
        seeds = {seeds}
        workers = {WORKERS}
        [settings]
        steps = {steps}
        [grid]
        lr = [0.02, 0.05, 0.1, 0.2]
        """)


def plain_loop(folder: Path, config) -> tuple[float, float, dict]:
    """(wall s, Σ task s, key → numbers) of a plain loop over the tasks in this process, torch on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        module = import_user_file("benchmark", folder / "study.py")
        start = time.perf_counter()
        data = module.make_data()
        out, total = {}, 0.0
        for task in sweep.make_tasks(config):
            t0 = time.perf_counter()
            out[task.key] = module.train(data, seed=task.seed, **task.settings)
            total += time.perf_counter() - t0
        return time.perf_counter() - start, total, out
    finally:
        torch.set_num_threads(threads)


def swept(config, backend: str, store: Path, phases: list | None = None) -> tuple[float, float, dict]:
    """(wall s, Σ task s, key → numbers) of ``sweep.run`` into a fresh store; its task phase appended to ``phases``."""
    for p in store.parent.glob(store.name + "*"):
        p.unlink()
    result = sweep.run(config, backend=backend, store=store)
    assert result.done == result.total and result.failed == 0, result
    rows = sweep.read_rows(store)[1]
    phase = max(r["finished"] for r in rows) - min(r["finished"] - r["seconds"] for r in rows)
    if phases is not None:
        phases.append(phase)
    return result.seconds, sum(r["seconds"] for r in rows), {r["key"]: r["numbers"] for r in rows}


def store_rate(folder: Path, rows: int = 500) -> float:
    """Rows per second that Store.record commits (one transaction per row, synchronous=FULL) on this machine's /tmp."""
    config = sweep.load_config(folder / "sweep.toml")
    tasks = sweep.make_tasks(config)[:rows]
    numbers = json.dumps({"loss": 0.123456789012345, "weight_norm": 4.56789012345678})
    path = folder / "rate.sqlite"
    with Store(path, config.identity(), planned=len(tasks)) as db:
        start = time.perf_counter()
        for t in tasks:
            db.record(t, Outcome(t.key, numbers, "", 0.1, platform.node()), 1)
        return len(tasks) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks (a multiple of 4: 4 learning rates × tasks/4 seeds)")
    parser.add_argument("--steps", type=int, default=300, help="gradient-descent steps per task")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    log = Log()
    folder = Path(tempfile.mkdtemp(prefix="losslab-sweep-bench-"))
    (folder / "study.py").write_text(USER_FILE)
    (folder / "sweep.toml").write_text(config_text(args.tasks // 4, args.steps))
    (folder / "startup.toml").write_text(config_text(1, 1).replace("lr = [0.02, 0.05, 0.1, 0.2]", "lr = [0.02, 0.05]"))
    config, startup = sweep.load_config(folder / "sweep.toml"), sweep.load_config(folder / "startup.toml")
    import ray

    log(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, {os.cpu_count()} cores (shared with "
        f"other jobs: compare within a run), torch {torch.__version__}, ray {ray.__version__}, driver's torch threads "
        f"{torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    log(f"{len(sweep.make_tasks(config))} tasks: nn.Sequential(Linear(5, 16), Tanh(), Linear(16, 1)) float64, full-batch GD "
        f"{args.steps} steps, n = 64, grid lr × seeds; {WORKERS} workers, 1 torch thread each; pickled payload "
        f"{len(build_payload(config)[0]):,} bytes")
    start = time.perf_counter()
    ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
    ray_init = time.perf_counter() - start
    log(f"ray.init(num_cpus={WORKERS}): {ray_init:.2f} s (before the rounds, not in the ray times below)")
    phases = {"local": [], "ray": []}  # the task phase of each sweep: max(finished) − min(finished − seconds) over its rows
    try:
        ways = {"loop": lambda: plain_loop(folder, config),
                "local": lambda: swept(config, "local", folder / "local.sqlite", phases["local"]),
                "ray": lambda: swept(config, "ray", folder / "ray.sqlite", phases["ray"])}
        starts = {"local": lambda: swept(startup, "local", folder / "s-local.sqlite")[0],
                  "ray": lambda: swept(startup, "ray", folder / "s-ray.sqlite")[0]}
        for fn in starts.values():  # warm-up: the file cache, Ray's first worker processes
            fn()
        warm = import_user_file("benchmark", folder / "study.py")
        warm.train(warm.make_data(), seed=0, lr=0.1, steps=2)  # the loop's process pays torch's first-call costs here
        walls = {k: [] for k in ways}
        sums = {k: [] for k in ways}
        start_up = {k: [] for k in starts}
        numbers = {}
        for r in range(args.repeats):
            for name, fn in ways.items():
                wall, total, numbers[name] = fn()
                walls[name].append(wall)
                sums[name].append(total)
            for name, fn in starts.items():
                start_up[name].append(fn())
            log(f"  round {r + 1}: " + ", ".join(f"{k} {walls[k][-1]:.2f} s (Σ tasks {sums[k][-1]:.2f} s)" for k in ways)
                + "; start-up " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in start_up.items())
                + f"; load average {os.getloadavg()[0]:.1f}")
        same = {name: numbers[name] == numbers["loop"] for name in ("local", "ray")}
        log(f"numbers identical to the loop's (all {len(numbers['loop'])} tasks, loss and weight norm, compared as floats): "
            + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items()))
    finally:
        ray.shutdown()
    rate = store_rate(folder)
    n = len(sweep.make_tasks(config))
    med = {k: statistics.median(v) for k, v in walls.items()}
    tot = {k: statistics.median(v) for k, v in sums.items()}
    up = {k: statistics.median(v) for k, v in start_up.items()}
    log(f"\nmedians of {args.repeats} rounds; overhead per task = (wall × workers − Σ task time) / {n}, with Σ the way's own "
        "task times (in the workers: their first task pays torch's first-call costs, and they share the 2 cores with the "
        "driver) or the loop's (the same work done in one warm process); start-up = the wall time of a sweep of 2 one-step "
        "tasks (spawn or actor start, imports, payload, first call, store)")
    log("\n| way | wall | Σ task time | mean task | overhead per task (own Σ) | overhead per task (loop's Σ) | start-up |")
    log("|---|---|---|---|---|---|---|")
    for name in ways:
        w = 1 if name == "loop" else WORKERS
        own, vs_loop = (med[name] * w - tot[name]) / n, (med[name] * w - tot["loop"]) / n
        log(f"| {name} ({w} {'process' if w == 1 else 'workers'}) | {med[name]:.2f} s | {tot[name]:.2f} s | "
            f"{1e3 * tot[name] / n:.0f} ms | {1e3 * own:.1f} ms | {1e3 * vs_loop:.1f} ms | "
            f"{f'{up[name]:.2f} s' if name in up else '–'} |")
    for name in ("local", "ray"):
        phase = statistics.median(phases[name])
        log(f"{name}: task phase (first task's start to last row, from the store) {phase:.2f} s, overhead per task within it "
            f"(phase × workers − own Σ) / {n} = {1e3 * (phase * WORKERS - tot[name]) / n:.1f} ms; "
            f"so start-up and shut-down ≈ {med[name] - phase:.2f} s of the wall")
    per_round = [r / lo for r, lo in zip(walls["ray"], walls["local"])]
    ratio = statistics.median(per_round)
    log(f"\nwall ratios (medians): local / loop {med['local'] / med['loop']:.2f}, ray / loop {med['ray'] / med['loop']:.2f}, "
        f"ray / local {med['ray'] / med['local']:.2f}; with ray.init added: ray / local {(med['ray'] + ray_init) / med['local']:.2f}")
    log(f"ray / local within each round: {', '.join(f'{x:.2f}' for x in per_round)}: median **{ratio:.2f}** (goal ≤ 1.10 — "
        f"{'met' if ratio <= 1.1 else 'not met'}); fastest rounds: {min(walls['ray']) / min(walls['local']):.2f}")
    log(f"store: Store.record commits {rate:,.0f} rows/s ({1e3 / rate:.2f} ms per row, one transaction each, "
        f"synchronous=FULL, WAL, on {folder.parent})")
    args.out.write_text("\n".join(log.lines) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    if not all(same.values()):
        raise SystemExit("the numbers differ between ways: see above")


if __name__ == "__main__":
    main()
