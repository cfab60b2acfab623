"""Independent random streams (losslab.random_streams, issue #10 §3).

References: NumPy's own ``SeedSequence.spawn`` (the child streams must be the ones it hands out),
and a dense ``torch.func.hessian`` in float64 for the eigenvalues the shared stream made Lanczos miss.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from losslab import LosslabError, Problem, data
from losslab.curvature import MatrixOperator, eigs
from losslab.landscape import plane, random_direction
from losslab.models import MLP, Linear, Linearized, Module, Polynomial, RandomFeatures, TwoLayer
from losslab.random_streams import PURPOSES, child_seed, generator, numpy_generator

from _helpers import rand_X
from references import dense_eigenvalues

DT = torch.float64
SEEDS = range(10)


def _module() -> Module:
    torch.manual_seed(0)  # only the wrapped net's own weights; init(seed) re-draws them
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(DT)
    return Module(net, d_in=8)


# Every built-in model at a size where two independent Gaussian vectors have |cos| ~ 1/√p ≈ 0.1 (p >= 60).
# The plane's directions are filter-normalised (Li et al. 2018): each filter (row) is rescaled to θ's, so
# their cosine is a weighted mean of per-filter cosines, whose variance is 1/(filter size): filters of 8
# entries or more keep it near 1/√p too (with filters of 2 entries, |cos(d1, d2)| > 0.5 is a ~1 % event).
MODELS = {
    "Polynomial": (lambda: Polynomial(4, 4), 4),  # 70 monomials
    "RandomFeatures": (lambda: RandomFeatures(8, 60, "tanh"), 8),
    "TwoLayer": (lambda: TwoLayer(8, 8, "tanh"), 8),
    "MLP": (lambda: MLP([8, 8, 8, 1], "tanh"), 8),
    "Linear": (lambda: Linear(79), 79),
    "Linearized": (lambda: Linearized(TwoLayer(8, 8, "tanh"), TwoLayer(8, 8, "tanh").init(seed=0)), 8),
    "Module": (_module, 8),
}


class _Recording(MatrixOperator):
    """A diagonal operator that keeps the first vector it is applied to (Lanczos' start vector)."""

    def __init__(self, p: int):
        super().__init__(torch.diag(torch.arange(1.0, p + 1, dtype=DT)))
        self.first = None

    def _apply_rows(self, V: torch.Tensor) -> torch.Tensor:
        if self.first is None:
            self.first = V.reshape(-1, V.shape[-1])[0].clone()
        return super()._apply_rows(V)


def lanczos_start(p: int, seed: int) -> torch.Tensor:
    op = _Recording(p)
    eigs(op, k=1, max_basis=4, max_iter=4, seed=seed)  # only its first product matters
    return op.first


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.to(DT).reshape(-1), b.to(DT).reshape(-1)
    return float(a @ b / (a.norm() * b.norm()))


def _problem(name: str) -> Problem:
    build, d = MODELS[name]
    X = rand_X(12, d, 0)
    return Problem(build(), X, X.sum(1))


@pytest.mark.parametrize("name", list(MODELS))
def test_start_vector_and_plane_directions_are_not_theta(name):
    """At θ = init(seed), the Lanczos start and the plane's directions are ~orthogonal to θ and to each other."""
    problem = _problem(name)
    assert problem.n_params >= 60
    worst = 0.0
    for seed in SEEDS:
        theta = problem.init(seed)
        assert float(theta.norm()) > 0
        sl = plane(problem, theta, steps=2, seed=seed)
        vectors = {"θ": theta, "lanczos": lanczos_start(problem.n_params, seed), "d1": sl.d1, "d2": sl.d2,
                   "random_direction": random_direction(problem, seed=seed)}
        for (a, u), (b, v) in itertools.combinations(vectors.items(), 2):
            if {a, b} == {"d1", "random_direction"}:
                continue  # d1 is random_direction(seed), filter-normalised: the same draw by design
            c = abs(_cos(u, v))
            assert c < 0.5, f"{name}, seed {seed}: |cos({a}, {b})| = {c:.3f}"
            worst = max(worst, c)
    assert worst > 0  # the vectors were compared at all


@pytest.mark.parametrize("seed", SEEDS)
def test_random_features_are_not_the_initial_output_weights(seed):
    model = RandomFeatures(1, 60, "tanh", seed=seed)
    v = model.init(seed=seed)["v"]
    assert abs(_cos(model.W[:, 0], v)) < 0.5
    assert abs(_cos(model.b, v)) < 0.5


def test_teacher_is_not_the_student_init():
    """teacher(seed=s) draws its weights from the "target" stream: a student init(seed=s) does not start at it."""
    teacher = data.teacher_params(d_in=3, width=30, seed=0)
    student = TwoLayer(3, 30, "tanh").init(seed=0)
    for g in ("W", "b", "v"):
        assert abs(_cos(teacher[g], student[g])) < 0.5


def test_lanczos_finds_the_fifty_fold_zero_eigenvalue_of_random_features():
    """Issue #10's reproducer: at init, the start vector used to be θ, and Lanczos returned 6e-8 … 1e-3, all 'converged'."""
    x = torch.linspace(-2, 2, 10, dtype=DT)
    problem = Problem(RandomFeatures(1, 60, "tanh"), x, x**3)
    theta = problem.init()
    exact = dense_eigenvalues(problem.loss, theta)  # dense float64 reference
    norm = float(exact.abs().max())
    assert int((exact.abs() <= 1e-12 * norm).sum()) == 50  # rank 10: 50 zero eigenvalues
    res = eigs(problem, theta, k=4, which="smallest")
    assert bool(res.converged.all())
    assert float(res.values.abs().max()) <= 1e-8 * norm, res.values


def test_child_streams_are_numpys_spawned_children():
    """child (seed, purpose, *keys) = SeedSequence(seed).spawn(...)[PURPOSES[purpose]] (then .spawn for the keys)."""
    for seed, purpose in itertools.product((0, 1, 12345, 2**63 - 1), PURPOSES):
        child = np.random.SeedSequence(seed).spawn(PURPOSES[purpose] + 1)[PURPOSES[purpose]]
        assert child_seed(seed, purpose) == int(child.generate_state(1, np.uint64)[0]) >> 1
        grandchild = child.spawn(3)[2]
        assert child_seed(seed, purpose, 2) == int(grandchild.generate_state(1, np.uint64)[0]) >> 1
        assert (numpy_generator(seed, purpose).random(3) == np.random.default_rng(child).random(3)).all()


def test_spawn_keys_are_stable():
    """A regression guard, not a reference: these numbers change only if a purpose's spawn key is renumbered."""
    assert PURPOSES["init"] == 0 and PURPOSES["features"] == 1 and PURPOSES["directions"] == 2 and PURPOSES["lanczos"] == 3
    assert len(set(PURPOSES.values())) == len(PURPOSES)
    assert child_seed(0, "init") == int(np.random.SeedSequence(0, spawn_key=(0,)).generate_state(1, np.uint64)[0]) >> 1


def test_same_seed_same_numbers():
    for purpose in PURPOSES:
        a = torch.randn(5, generator=generator(7, purpose, 1), dtype=DT)
        b = torch.randn(5, generator=generator(7, purpose, 1), dtype=DT)
        assert torch.equal(a, b)
    problem = _problem("TwoLayer")
    assert torch.equal(problem.init(3), problem.init(3))
    assert torch.equal(eigs(problem, problem.init(3), k=2, seed=3).values, eigs(problem, problem.init(3), k=2, seed=3).values)
    assert torch.equal(random_direction(problem, seed=3), random_direction(problem, seed=3))


def test_different_purposes_and_keys_draw_different_numbers():
    draws = {}
    for seed, purpose in itertools.product((0, 1), PURPOSES):
        for keys in ((), (0,), (1,), (0, 1), (1, 0)):
            draws[(seed, purpose, keys)] = torch.randn(64, generator=generator(seed, purpose, *keys), dtype=DT)
    for (ka, a), (kb, b) in itertools.combinations(draws.items(), 2):
        assert abs(_cos(a, b)) < 0.6, (ka, kb)  # 64 independent normals: |cos| ~ 0.125


def test_bad_purpose_key_or_seed_is_an_error():
    with pytest.raises(LosslabError, match="unknown random-stream purpose 'lanczoz'"):
        generator(0, "lanczoz")
    with pytest.raises(LosslabError, match="integers >= 0"):
        child_seed(0, "init", -1)
    with pytest.raises(LosslabError, match="integers >= 0"):
        child_seed(0, "init", 1.0)
    with pytest.raises(LosslabError, match="seed"):
        child_seed(-1, "init")
    assert 0 <= child_seed(2**63 - 1, "masks", 5) < 2**63


def test_generator_on_the_requested_device():
    assert generator(0, "probes").device == torch.device("cpu")
    assert generator(0, "probes", device="cpu").device == torch.device("cpu")
    if torch.cuda.is_available():
        assert generator(0, "probes", device="cuda").device.type == "cuda"
