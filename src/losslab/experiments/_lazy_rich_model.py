"""The two-layer network of the lazy-vs-rich experiment, and how one is trained and measured.

    h(θ, x) = m^(−α) Σ_j v_j tanh(w_j·x/√d + b_j),   α = 1/2 (NTK parameterisation) or 1 (mean field),
    f(θ, x) = τ·(h(θ, x) − h(θ₀, x))   (centred)   or   τ·h(θ, x)   (not centred),

with every parameter drawn N(0, 1) (the ``"init"`` stream of the seed). The centring makes f(θ₀, ·) = 0, as in
Chizat, Oyallon & Bach 2019 ("On lazy training in differentiable programming", NeurIPS), whose scaled model is
α·(h(w) − h(w₀)) trained on the loss R(α·h)/α²; τ here is their α. f is linear in v, so ``affine_sets``
declares {v}.

:func:`train_and_measure` trains one network by full-batch gradient descent and follows its Linearized twin;
:func:`width_sweep` trains several initialisations of each width at once (:func:`losslab.fit.train_ensemble`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import choice, finite_float, positive_int
from ..curvature import HessianOperator, frobenius_norm, nonlinearity_curvature
from ..fit import train_ensemble
from ..kernels import empirical_ntk
from ..models.base import Model, Params
from ..problem import Problem
from ..random_streams import generator

PARAMETERISATIONS = {"ntk": 0.5, "mean-field": 1.0}


class ScaledTwoLayer(Model):
    """f(θ, x) = τ·(h(θ, x) − h(θ₀, x)) with θ₀ = ``centre``, or τ·h(θ, x) when ``centre`` is None (module docstring)."""

    def __init__(self, d_in: int, width: int, parameterisation: str, tau: float, centre: Params | None = None):
        self.d_in = positive_int("d_in", d_in)
        self.width = positive_int("width", width)
        self.parameterisation = choice("parameterisation", parameterisation, PARAMETERISATIONS)
        self.tau = finite_float("tau", tau, positive=True)
        self.shapes = {"W": (self.width, self.d_in), "b": (self.width,), "v": (self.width,)}
        self.affine_sets = (frozenset({"v"}),)
        self.centre = None if centre is None else {k: v.detach().clone() for k, v in centre.items()}
        self._scale = self.width ** -PARAMETERISATIONS[self.parameterisation]

    def init(self, *, seed: int = 0, dtype: torch.dtype = torch.float64) -> Params:
        g = generator(seed, "init")
        return {name: self._draw(g, shape, 1.0, dtype) for name, shape in self.shapes.items()}

    def features(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        """The hidden units tanh(XWᵀ/√d + b), shape (n, width)."""
        return torch.tanh(X @ params["W"].T / math.sqrt(self.d_in) + params["b"])

    def uncentred(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        """h(θ, X), shape (n,)."""
        return self._scale * (self.features(params, X) @ params["v"])

    def logit(self, params: Params, X: torch.Tensor) -> torch.Tensor:
        if self.centre is None:
            return self.tau * self.uncentred(params, X)
        with torch.no_grad():
            h0 = self.uncentred({k: v.to(X.dtype) for k, v in self.centre.items()}, X)
        return self.tau * (self.uncentred(params, X) - h0)

    def activations_per_example(self, x: torch.Tensor | None = None) -> int:
        return 6 * self.width + self.d_in

    def affine_reason(self) -> str:
        return "f = τ·(m^(−α) v·tanh(Wx/√d + b) − h(θ₀, x)) is linear in v with W, b fixed"

    def describe(self) -> str:
        centred = ", centred" if self.centre is not None else ""
        return f"ScaledTwoLayer(d_in={self.d_in}, width={self.width}, {self.parameterisation}, τ={self.tau:g}{centred})"


def step_size(model: ScaledTwoLayer, lr: float) -> float:
    """The step GD takes: lr/τ² (Chizat et al.'s 1/α² loss scaling), times the width in mean field (Mei et al. 2018)."""
    return lr / model.tau**2 * (model.width if model.parameterisation == "mean-field" else 1)


@dataclass(frozen=True)
class Run:
    """One network trained by full-batch GD, measured along its trajectory (see :func:`train_and_measure`).

    Attributes:
        checkpoints: the steps t where the trajectory was measured (t > 0), last = steps.
        weight_travel: ‖θ_t − θ₀‖/‖θ₀‖ at each checkpoint.
        linear_distance: ‖f(θ_t, X*) − f_lin,t(X*)‖/‖f_lin,t(X*)‖ at each checkpoint, f_lin,t the Linearized twin's outputs.
        ntk_change: ‖Θ_T − Θ₀‖_F/‖Θ₀‖_F on the first ``ntk_points`` training inputs, at the end.
        test_error, linear_test_error: mean (f − f*)² / var f* on the test inputs, of the network and of its twin.
        train_loss: the final training loss.
        nonlinear_share: ‖H − GGN‖_F/‖H‖_F at the end (:func:`~losslab.curvature.frobenius_norm` estimates).
    """

    checkpoints: list[int]
    weight_travel: list[float]
    linear_distance: list[float]
    ntk_change: float
    test_error: float
    linear_test_error: float
    train_loss: float
    nonlinear_share: float


def relative_error(f: torch.Tensor, target: torch.Tensor) -> float:
    """mean (f − f*)² / var f*: the test error as a share of the target's variance."""
    return float(((f - target) ** 2).mean() / target.var())


def linearized_outputs(problem: Problem, theta0: torch.Tensor, X_test: torch.Tensor, lr: float, at: list[int]) -> list[torch.Tensor]:
    """The test outputs of the Linearized twin trained by GD with step ``lr`` from θ₀, at the steps ``at``.

    GD on the twin's loss mean((f_lin − y)²) moves its training outputs u and test outputs u* by exactly
    u ← u − (2·lr/n)·Θ(X, X)(u − y) and u* ← u* − (2·lr/n)·Θ(X*, X)(u − y), Θ the empirical NTK at θ₀: the same
    numbers as GD on :class:`~losslab.models.Linearized` (tests check it), without a Jacobian–vector product per step.
    """
    X, y = problem.X, problem.y
    K, K_test = empirical_ntk(problem, theta0, X), empirical_ntk(problem, theta0, X_test, X)
    u, u_test = problem.output(theta0), problem.output(theta0, X_test)
    kept = []
    for t in range(1, at[-1] + 1):
        r = (2 * lr / problem.n) * (u - y)
        u, u_test = u - K @ r, u_test - K_test @ r
        if t in at:
            kept.append(u_test)
    return kept


def _descend(problem: Problem, theta: torch.Tensor, lr: float, at: list[int]) -> list[torch.Tensor]:
    """Full-batch GD θ ← θ − lr·∇L(θ) (``problem.grad``) up to step at[-1]; θ at the steps in ``at``."""
    kept = []
    for t in range(1, at[-1] + 1):
        theta = theta - lr * problem.grad(theta)
        if t in at:
            kept.append(theta)
    return kept


def train_and_measure(model: ScaledTwoLayer, data: tuple, how: dict, seed: int) -> Run:
    """GD on the squared loss of the centred ``model`` from its centre θ₀, and its Linearized twin alike.

    ``data`` = (X, y, X_test, f*_test); ``how``: ``lr`` (before :func:`step_size`), ``steps``, ``checkpoints``
    (how many), ``ntk_points``, ``probes``. ``seed`` seeds the curvature probes.
    """
    X, y, X_test, f_test = data
    problem = Problem(model, X, y)
    theta0 = problem.flatten(model.centre)
    lr, steps = step_size(model, how["lr"]), how["steps"]
    at = sorted({max(1, round(steps * (k + 1) / how["checkpoints"])) for k in range(how["checkpoints"])})
    thetas = _descend(problem, theta0, lr, at)
    norm0 = float(theta0.norm())
    points = X[: how["ntk_points"]]
    K0 = empirical_ntk(problem, theta0, points)
    twin = linearized_outputs(problem, theta0, X_test, lr, at)
    distance = [float((problem.output(t, X_test) - u).norm() / u.norm()) for t, u in zip(thetas, twin, strict=True)]
    end = thetas[-1]
    hess = frobenius_norm(HessianOperator(problem, end), samples=how["probes"], seed=seed).estimate
    nonlin = frobenius_norm(nonlinearity_curvature(problem, end), samples=how["probes"], seed=seed).estimate
    return Run(at, [float((t - theta0).norm()) / norm0 for t in thetas], distance,
               float((empirical_ntk(problem, end, points) - K0).norm() / K0.norm()),
               relative_error(problem.output(end, X_test), f_test), relative_error(twin[-1], f_test),
               float(problem.loss(end)), nonlin / hess)


def width_sweep(parameterisation: str, widths: list[int], starts: list[int], data: tuple, how: dict) -> dict[str, list[list[float]]]:
    """For each width, the not-centred τ = 1 network from each start seed, trained together by GD for ``how["steps"]``.

    Returns ``{"weight_travel", "ntk_change", "test_error"}``, each [start][width]: ‖θ_T − θ₀‖/‖θ₀‖,
    ‖Θ_T − Θ₀‖_F/‖Θ₀‖_F on the first ``how["ntk_points"]`` training inputs, and the relative test error.
    """
    X, y, X_test, f_test = data
    out: dict[str, list[list[float]]] = {"weight_travel": [], "ntk_change": [], "test_error": []}
    columns = []
    for m in widths:
        model = ScaledTwoLayer(X.shape[1], m, parameterisation, 1.0)
        problem = Problem(model, X, y)
        run = train_ensemble(problem, seeds=starts, lr=step_size(model, how["lr"]), steps=how["steps"], record_every=how["steps"])
        points = X[: how["ntk_points"]]
        column = []
        for theta0, theta in zip(run.theta0, run.theta, strict=True):
            K0 = empirical_ntk(problem, theta0, points)
            column.append((float((theta - theta0).norm() / theta0.norm()),
                           float((empirical_ntk(problem, theta, points) - K0).norm() / K0.norm()),
                           relative_error(problem.output(theta, X_test), f_test)))
        columns.append(column)
    for i, key in enumerate(out):
        out[key] = [[columns[w][k][i] for w in range(len(widths))] for k in range(len(starts))]
    return out
