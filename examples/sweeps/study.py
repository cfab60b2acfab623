"""The user's side of the sweeps in docs/sweeps.md: a data factory, an analysis, and a problem for a plane.

``make_data`` runs once, in the driver; its result is shipped once to each worker. ``analyse`` runs
once per task (a grid point and a seed) and returns a dict of numbers: one row of the store.
``problem`` returns the losslab Problem whose loss plane ``plane.toml`` evaluates in tiles.
"""

from losslab import Problem
from losslab import data as D
from losslab.fit import train
from losslab.models import MLP, TwoLayer


def make_data():
    """n = 200 noisy samples of a cubic (float64), the same in every worker."""
    return D.cubic(200, noise=0.1, seed=0)


def analyse(data, *, seed, width, lr, steps=200):
    """Train v·tanh(Wx + b) of ``width`` units by gradient descent from the seed's initial point: where it ends."""
    X, y = data
    problem = Problem(TwoLayer(d_in=1, width=width, activation="tanh"), X, y)
    run = train(problem, lr=lr, steps=steps, seed=seed)
    return {"final_loss": float(run.losses[-1]), "grad_norm": float(run.grad_norms[-1]),
            "distance": float((run.theta - run.thetas[0]).norm())}


def problem():
    """A tanh MLP 1-32-32-1 on 256 cubic samples; the plane is centred at its default initial point (seed of the sweep)."""
    X, y = D.cubic(256, noise=0.1, seed=0)
    return Problem(MLP([1, 32, 32, 1], "tanh"), X, y)
