"""Shared tiny cases: (model, X, y, loss) in float64, small enough for dense Hessians.

Every case is built fresh for each test (models are cheap), so a test that mutates a model
cannot leak into another. Helpers that several test files need live on :class:`Case` as
methods, because test modules are imported with ``--import-mode=importlib`` and cannot import
each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from losslab import Problem
from losslab.experiments import Experiment, Integer, Measured, Settings, claim, setting
from losslab.models import MLP, Linear, Linearized, Model, Module, Params, Polynomial, RandomFeatures, TwoLayer
from losslab.report.sections import register_drawings

DT = torch.float64


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class Case:
    """One tiny problem: a model, float64 data and a loss name."""

    name: str
    model: Model
    X: torch.Tensor
    y: torch.Tensor
    loss: str

    def problem(self, **kwargs) -> Problem:
        return Problem(self.model, self.X, self.y, self.loss, **kwargs)

    def params(self, seed: int = 0) -> Params:
        """A generic parameter point: the model's init(seed) plus a seeded perturbation.

        The perturbation moves Linearized models off their expansion point and keeps
        every model away from special points (zero biases, c = 0).
        """
        base = self.model.init(seed=seed, dtype=DT)
        g = generator(1000 + seed)
        return {k: v + 0.3 * torch.randn(v.shape, generator=g, dtype=DT) for k, v in base.items()}

    def direction(self, groups, seed: int) -> Params:
        """A random direction supported on ``groups`` (a dict with only those keys)."""
        g = generator(2000 + seed)
        return {k: torch.randn(self.model.shapes[k], generator=g, dtype=DT) for k in self.model.groups if k in set(groups)}

    def theta(self, problem: Problem, seed: int = 0) -> torch.Tensor:
        """A generic flat θ for ``problem`` (float64)."""
        return problem.flatten(self.params(seed))


def _X(n: int, d: int, seed: int) -> torch.Tensor:
    return 2 * torch.rand(n, d, generator=generator(seed), dtype=DT) - 1


def _y(n: int, loss: str, seed: int, k: int = 3) -> torch.Tensor:
    g = generator(100 + seed)
    if loss == "mse":
        return torch.randn(n, generator=g, dtype=DT)
    if loss == "bce":  # soft targets in [0, 1], with the two ends present
        y = torch.rand(n, generator=g, dtype=DT)
        y[0], y[1] = 0.0, 1.0
        return y
    return torch.randint(0, k, (n,), generator=g)


def _case(name: str, model: Model, n: int, loss: str, seed: int) -> Case:
    return Case(name, model, _X(n, model.d_in, seed), _y(n, loss, seed), loss)


def _torch_module() -> Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).to(DT)
    return Module(net, d_in=2)


def _linearized() -> Linearized:
    net = TwoLayer(d_in=2, width=4, activation="tanh")
    return Linearized(net, net.init(seed=3))


FACTORIES: dict[str, Callable[[], Case]] = {
    "poly-1d-deg3": lambda: _case("poly-1d-deg3", Polynomial(1, 3), 9, "mse", 1),
    "poly-2d-deg2": lambda: _case("poly-2d-deg2", Polynomial(2, 2), 11, "mse", 2),
    "random-features": lambda: _case("random-features", RandomFeatures(d_in=2, width=5, activation="tanh", seed=4), 10, "mse", 3),
    "linear-mse": lambda: _case("linear-mse", Linear(3), 8, "mse", 4),
    "linear-bce": lambda: _case("linear-bce", Linear(2), 12, "bce", 5),
    "linear-sigmoid-mse": lambda: _case("linear-sigmoid-mse", Linear(2, output="sigmoid"), 10, "mse", 6),
    "linear-sigmoid-bce": lambda: _case("linear-sigmoid-bce", Linear(2, output="sigmoid"), 13, "bce", 7),
    **{
        f"two-layer-{act}{'-c' if bias else ''}": (
            lambda act=act, bias=bias: _case(
                f"two-layer-{act}{'-c' if bias else ''}", TwoLayer(d_in=2, width=4, activation=act, out_bias=bias), 9, "mse", 8
            )
        )
        for act in ("relu", "tanh", "sigmoid", "identity")
        for bias in (False, True)
    },
    "mlp-relu": lambda: _case("mlp-relu", MLP([2, 3, 3, 1], "relu"), 10, "mse", 9),
    "mlp-seed-relu-relu": lambda: _case("mlp-seed-relu-relu", MLP([1, 1, 1], "relu", out_activation="relu"), 14, "mse", 10),
    "mlp-cross-entropy": lambda: _case("mlp-cross-entropy", MLP([2, 3, 3]), 12, "cross_entropy", 11),
    "mlp-deep-linear": lambda: _case("mlp-deep-linear", MLP([1, 2, 2, 1], "identity"), 8, "mse", 12),
    "torch-module": lambda: _case("torch-module", _torch_module(), 9, "mse", 13),
    "linearized-two-layer": lambda: _case("linearized-two-layer", _linearized(), 10, "mse", 14),
}
CASE_NAMES = list(FACTORIES)
SMOOTH_CASE_NAMES = [n for n in CASE_NAMES if "relu" not in n and n != "mlp-cross-entropy"]  # no relu kinks


@pytest.fixture(params=CASE_NAMES)
def case(request) -> Case:
    """Every tiny (model, X, y, loss) case."""
    return FACTORIES[request.param]()


@pytest.fixture(params=SMOOTH_CASE_NAMES)
def smooth_case(request) -> Case:
    """The cases whose loss is twice differentiable everywhere (finite differences are reliable)."""
    return FACTORIES[request.param]()


@pytest.fixture
def make_case() -> Callable[[str], Case]:
    """Build a named case (for tests about one kind of model)."""
    return lambda name: FACTORIES[name]()


@pytest.fixture(scope="session")
def quick_result():
    """``quick_result(name)``: the experiment's ``--quick`` Result at seed 0, drawn, computed once per test session."""
    from losslab.experiments import get_experiment, run_experiment
    from losslab.report.sections import draw

    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = draw(run_experiment(get_experiment(name), seed=0, quick=True))
        return cache[name]

    return get


# A fake experiment for the report tests: a failing claim, a PNG and a plotly figure, a table, and
# user strings with markup in them (which must reach the page escaped).
FAKE_EVIL = "<script>alert('x')</script>"


@dataclass(frozen=True)
class FakeSettings(Settings):
    n: int = setting(3, Integer(2, 50), "points on the line")
    label: str = FAKE_EVIL


@dataclass(frozen=True)
class FakeMeasured(Measured):
    n: int
    seed: int
    label: str


def _fake_measure(settings: FakeSettings, seed: int, say) -> FakeMeasured:
    return FakeMeasured(n=settings.n, seed=seed, label=settings.label)


def _fake_claims(settings: FakeSettings, m: FakeMeasured) -> tuple:
    return (claim("holds", f"a claim about {m.label}", True, "x = {x:.2f} ≤ 1", x=0.5),
            claim("fails", "a claim that fails", False, "y = {y} > 1", plain="two is more than one", y=2))


def _fake_line(m: FakeMeasured):
    from losslab.report.drawn import png_figure
    from losslab.report.figures import subplots

    fig, ax = subplots(figsize=(3, 2))
    ax.plot(range(m.n), range(m.n))
    return png_figure(fig, "line", "a line " + FAKE_EVIL)


def _fake_surface(m: FakeMeasured):
    import plotly.graph_objects as go

    from losslab.report.drawn import plotly_figure

    return plotly_figure(go.Figure(go.Surface(z=[[0, 1], [1, 0]])), "surface", "a surface")


def _fake_table(m: FakeMeasured):
    from losslab.report.drawn import Table

    return Table("a table", ("k", "value"), ((1, 0.25), (FAKE_EVIL, 10**6)))


FAKE = Experiment(name="fake", number=1, title="A fake " + FAKE_EVIL, intro="intro " + FAKE_EVIL, settings=FakeSettings,
                  quick={"n": 2}, measure=_fake_measure, claims=_fake_claims)
register_drawings("fake", figures=(_fake_line, _fake_surface), tables=(_fake_table,))


@pytest.fixture
def fake_experiment() -> Experiment:
    """:data:`FAKE`: a tiny experiment with a failing claim, both figure kinds and markup in its strings."""
    return FAKE
