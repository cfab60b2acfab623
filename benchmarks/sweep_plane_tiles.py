"""A big landscape plane as tiles of a plane sweep: 2 workers against 1, and ``landscape.plane`` in one process (issue #13).

The problem is the user's file (written to a temporary folder, as a user would have it): a tanh
``MLP([20, 256, 256, 1])`` (71,425 parameters) with squared loss over a ``DataLoader`` of n = 2,048
random points in batches of 256 (8 batches), at its default initial point; a 41×41 plane through
it along two filter-normalised directions (seed 0), span 1. Float32: the dtype of the users'
``nn.Module`` s and DataLoaders (and of ``landscape_plane.py``'s DataLoader row); in float64 every
way takes about twice as long and the comparison is the same.

Four ways, side by side, rounds interleaved:

* **tiles, 2 workers**: ``losslab.sweep.run`` of the plane sweep (``tile_rows`` 3: 14 tiles of 3 rows,
  the default) on the local pool with 2 workers, each on one torch thread; the real code path
  (the driver builds the problem, centre and directions once and ships them once per worker; each
  tile is a row of the SQLite store; the plane is then assembled by ``sweep.plane_slice``);
* **tiles, 1 worker**: the same with ``workers = 1``;
  (for both, also the tile phase alone: from the first tile's start to the last tile's row in the store);
* **plane, 1 thread** and **plane, default threads**: ``losslab.landscape.plane(problem, centre,
  steps=41, span=1, seed=0, method="grid")`` in this process, torch on one thread and on its
  default threads.

Checked every round: the two tiled planes are bit-identical; reported: max |Δ| between the tiled
plane and ``landscape.plane`` (relative to the largest loss on the plane). Goal: tiles on 2 workers
≥ 1.8× faster than on 1. Run in the users' environment (no ``OMP_WAIT_POLICY``, torch's default
threads in the driver)::

    flock /tmp/losslab-bench.lock python benchmarks/sweep_plane_tiles.py [--repeats 3] [--steps 41] [--n 2048] [--out FILE]

The output is printed and written to ``benchmarks/results/sweep_plane_tiles.txt`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _timing import Log

from losslab import sweep
from losslab.landscape import plane
from losslab.sweep.runner import build_payload, plane_parts

RESULTS = Path(__file__).resolve().parent / "results" / "sweep_plane_tiles.txt"

USER_FILE = '''\
"""A 20-256-256-1 tanh MLP over a DataLoader: the problem whose loss plane is swept in tiles."""
import torch
from torch.utils.data import DataLoader, TensorDataset

from losslab import Problem
from losslab.models import MLP

N = {n}


def problem():
    g = torch.Generator().manual_seed(2)
    X = torch.rand(N, 20, generator=g) * 2 - 1
    y = torch.sin(2 * X[:, 0]) + X[:, 1:].sum(1) ** 2 / 20
    loader = DataLoader(TensorDataset(X, y), batch_size=256)
    return Problem(MLP([20, 256, 256, 1], "tanh"), loader, loss="mse")
'''


def tiled(config, workers: int, store: Path) -> tuple[float, float, torch.Tensor]:
    """(wall s of the sweep, s of its tile phase, the assembled losses) of the plane sweep on ``workers`` local workers.

    The tile phase runs from the first tile's start to the last tile's row in the store: max(finished) − min(finished −
    seconds) over the store's rows (the sweep's start-up, i.e. building the payload and spawning the workers, is before it).
    """
    for p in store.parent.glob(store.name + "*"):
        p.unlink()
    result = sweep.run(config, backend="local", workers=workers, store=store)
    assert result.done == result.total and result.failed == 0, result
    rows = sweep.read_rows(store)[1]
    phase = max(r["finished"] for r in rows) - min(r["finished"] - r["seconds"] for r in rows)
    return result.seconds, phase, sweep.plane_slice(store).losses


def in_process(parts: dict, steps: int, threads: int | None) -> tuple[float, float, torch.Tensor]:
    """(wall s, the same, losses) of landscape.plane in this process on ``threads`` torch threads (None: torch's default)."""
    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    try:
        start = time.perf_counter()
        s = plane(parts["problem"], parts["center"], steps=steps, span=1.0, seed=0, method="grid")
        wall = time.perf_counter() - start
        return wall, wall, s.losses
    finally:
        torch.set_num_threads(default)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=41)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    log = Log()
    folder = Path(tempfile.mkdtemp(prefix="losslab-plane-bench-"))
    (folder / "mlp_plane.py").write_text(USER_FILE.replace("{n}", str(args.n)))
    (folder / "plane.toml").write_text(f'[sweep]\nplane = "mlp_plane.py:problem"\nsteps = {args.steps}\nspan = 1.0\nseed = 0\n')
    config = sweep.load_config(folder / "plane.toml")
    parts = plane_parts(config)[1]
    problem = parts["problem"]
    log(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, {os.cpu_count()} cores (shared with "
        f"other jobs: compare within a run), torch {torch.__version__}, driver's torch threads {torch.get_num_threads()}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    log(f"{problem.describe()}; {args.steps}×{args.steps} plane, {len(sweep.make_tasks(config))} tiles of "
        f"{config.plane['tile_rows']} rows; pickled payload (problem with its DataLoader, centre, directions, coordinates) "
        f"{len(build_payload(config)[0]):,} bytes")
    ways = {"tiles, 2 workers": lambda: tiled(config, 2, folder / "two.sqlite"),
            "tiles, 1 worker": lambda: tiled(config, 1, folder / "one.sqlite"),
            "plane, 1 thread": lambda: in_process(parts, args.steps, 1),
            "plane, default threads": lambda: in_process(parts, args.steps, None)}
    walls = {k: [] for k in ways}
    sums = {k: [] for k in ways}
    tiled(config, 2, folder / "warm.sqlite")  # warm-up: the file cache, the DataLoader's first iteration in this process
    in_process(parts, args.steps, None)
    bit_identical, deltas = [], []
    for r in range(args.repeats):
        losses = {}
        for name, fn in ways.items():
            wall, total, losses[name] = fn()
            walls[name].append(wall)
            sums[name].append(total)
        two, one = losses["tiles, 2 workers"], losses["tiles, 1 worker"]
        bit_identical.append(bool(torch.equal(two, one)))
        scale = float(two.abs().max())
        deltas.append({k: float((two.double() - losses[k].double()).abs().max()) / scale
                       for k in ("plane, 1 thread", "plane, default threads")})
        log(f"  round {r + 1}: " + ", ".join(f"{k} {walls[k][-1]:.2f} s" for k in ways)
            + f"; tiled planes bit-identical: {bit_identical[-1]}; load average {os.getloadavg()[0]:.1f}")
    med = {k: statistics.median(v) for k, v in walls.items()}
    tot = {k: statistics.median(v) for k, v in sums.items()}
    log(f"\nmedians of {args.repeats} rounds (sweep walls: the whole sweep.run, i.e. building the problem and directions "
        "in the driver, pickling the payload, spawning the workers, the tiles and the store; tile phase: from the first "
        "tile's start to the last tile's row, from the store's finished and seconds columns)")
    log("\n| way | wall | speed-up over tiles on 1 worker | tile phase | its speed-up over 1 worker's |")
    log("|---|---|---|---|---|")
    for name in ways:
        phase = f"{tot[name]:.2f} s | {tot['tiles, 1 worker'] / tot[name]:.2f}×" if name.startswith("tiles") else "– | –"
        log(f"| {name} | {med[name]:.2f} s | {med['tiles, 1 worker'] / med[name]:.2f}× | {phase} |")
    speedup = med["tiles, 1 worker"] / med["tiles, 2 workers"]
    per_round = [a / b for a, b in zip(walls["tiles, 1 worker"], walls["tiles, 2 workers"])]
    within = statistics.median(per_round)
    log(f"\ntiles on 2 workers vs 1: medians {speedup:.2f}×; within each round {', '.join(f'{x:.2f}×' for x in per_round)}: median "
        f"**{within:.2f}×** (goal ≥ 1.8× — {'met' if within >= 1.8 else 'not met'}); fastest rounds "
        f"{min(walls['tiles, 1 worker']) / min(walls['tiles, 2 workers']):.2f}×; tile phase alone "
        f"{statistics.median(a / b for a, b in zip(sums['tiles, 1 worker'], sums['tiles, 2 workers'])):.2f}× (median within rounds)")
    log(f"the two tiled planes bit-identical in every round: {all(bit_identical)}; max |Δ| / max |L| against landscape.plane: "
        + ", ".join(f"{k} {max(d[k] for d in deltas):.1e}" for k in deltas[0]) + f" ({problem.dtype})")
    args.out.write_text("\n".join(log.lines) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    if not all(bit_identical):
        raise SystemExit("the tiled planes on 1 and 2 workers differ: see above")


if __name__ == "__main__":
    main()
