"""Section 1, linear in parameters: the fixed features and the fit, the loss bowl on a plane, and the checks table."""

from __future__ import annotations

import torch

from ...experiments._polyfit import polyval
from ...experiments.linear_in_parameters import LinearInParametersMeasured
from ...models import Polynomial
from ..drawn import Figure, Table, plotly_figure, png_figure
from ..plots.curves import two_panels
from ..plots.surfaces import surface

__all__ = ["FIGURES", "TABLES", "basis_and_fit", "checks_table", "loss_bowl"]


def basis_and_fit(m: LinearInParametersMeasured) -> Figure:
    """Left: the monomial features 1, x, …, x^degree; right: the least-squares fit to the 1-D data beside the truth."""
    model = Polynomial(1, m.degree)
    grid = torch.linspace(-1, 1, 201, dtype=torch.float64)
    fig, left, right = two_panels("the fixed features $φ_k(x) = x^k$", "$f(x; θ^*) = Σ_k θ^*_k x^k$: curved in x")
    feats = model.features(grid[:, None])
    for k in range(model.n_params):
        left.plot(grid, feats[:, k], lw=1.5, label=f"$x^{{{k}}}$")
    left.set(xlabel="x")
    left.legend(fontsize=7, ncol=2)
    right.scatter(m.x, m.y, s=10, color="0.5", label="data")
    right.plot(grid, polyval(m.truth, grid), "k--", lw=1, label="truth")
    right.plot(grid, model.apply({"coef": m.one_d.theta}, grid[:, None]), color="C3", lw=2, label="least-squares fit")
    right.set(xlabel="x")
    right.legend(fontsize=8)
    return png_figure(
        fig, "basis-and-fit",
        f"Left: the fixed features 1, x, …, x^{m.degree} — curved in x, and never changed by training. Right: the least-squares "
        "fit Σθ*_k x^k to the noisy data: a curve in x built as a linear combination of the features.",
    )


def loss_bowl(m: LinearInParametersMeasured) -> Figure:
    """The squared loss of the 1-D problem on a random plane through θ*, as an interactive surface."""
    p = m.plane
    fig = surface(p.alphas, p.betas, p.losses, title="L(θ* + α·d₁ + β·d₂), polynomial basis")
    return plotly_figure(
        fig, "loss-bowl",
        "The squared loss on a random plane through the fit θ* (filter-normalised directions): a paraboloid bowl with its bottom "
        "at θ* — the loss is a convex quadratic in θ. Drag to rotate.",
    )


def checks_table(m: LinearInParametersMeasured) -> Table:
    """Linearity errors against their rounding bounds, the normal-equations residual and the verdict, per problem."""
    rows = tuple((label, r.model, r.add, r.add_bound, r.hom, r.hom_bound, r.normal_equations, r.verdict)
                 for label, r in (("1-D", m.one_d), ("2-D", m.two_d)))
    return Table("Linearity in θ (errors against float64 rounding bounds) and the normal equations",
                 ("problem", "model", "additivity", "bound", "homogeneity", "bound", "normal eq.", "verdict"), rows)


FIGURES = (basis_and_fit, loss_bowl)
TABLES = (checks_table,)
