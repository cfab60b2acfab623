"""Section 8, depth: the Hessian and Gauss–Newton spectral densities of the MLP, and the curvature per model."""

from __future__ import annotations

from ...experiments.depth import DepthMeasured
from ..drawn import Figure, Table, png_figure
from ..figures import subplots

__all__ = ["FIGURES", "TABLES", "curvature_table", "spectrum"]


def spectrum(m: DepthMeasured) -> Figure:
    """SLQ densities of H and the GGN (log scale) at the initial and the trained point, with Lanczos' extreme eigenvalues."""
    fig, axes = subplots(1, 2, figsize=(9, 3.6))
    for ax, where, extremes in zip(axes, ("init", "trained"), (m.mlp_init, m.mlp_trained), strict=True):
        peak = max(float(m.densities[f"{where} {k}"]["density"].max()) for k in ("H", "GGN"))
        floor = peak * 1e-6
        for k, color in (("GGN", "C2"), ("H", "C0")):
            d = m.densities[f"{where} {k}"]
            ax.semilogy(d["grid"].numpy(), d["density"].clamp_min(floor).numpy(), color=color, lw=1.4, label=f"{k} (SLQ)")
        ax.plot([extremes["min"], extremes["max"]], [peak * 2] * 2, "|", color="C3", ms=12, label="Lanczos λ_min, λ_max")
        ax.axvline(0.0, color="0.5", lw=1, ls="--")
        ax.set(xlabel="eigenvalue λ", ylabel="density", ylim=(floor, peak * 5),
               title=f"{where}: λ_min = {extremes['min']:.2g}, ‖H−GGN‖/‖H‖ = {extremes['ratio']:.2g}")
        ax.title.set_fontsize(9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(wspace=0.3, bottom=0.25)
    return png_figure(
        fig, "spectrum",
        f"Hessian (blue) and Gauss–Newton (green) spectral densities of the MLP {m.widths} at its initial point (left) and "
        "after training (right), with the extreme eigenvalues from Lanczos (red ticks). The Gauss–Newton matrix has no negative "
        "eigenvalue (its density's small tail left of 0, the dashed line, is the smoothing of the estimate); "
        "the mass left of 0 in the Hessian is the model's own curvature H − GGN, which is weighted by the "
        "residuals and so shrinks as the fit improves.",
    )


def curvature_table(m: DepthMeasured) -> Table:
    """Per model and point: parameters, verdict, extreme Hessian eigenvalues and ‖H − GGN‖_F / ‖H‖_F."""
    mlp_name = f"MLP {m.widths} {m.activation}"
    init, trained, linear = m.mlp_init, m.mlp_trained, m.deep_linear_init
    rows = (
        (f"{mlp_name}, init", m.mlp_params, m.mlp_witness["verdict"], init["min"], init["max"], init["ratio"]),
        (f"{mlp_name}, trained", m.mlp_params, f"{m.mlp_witness['verdict']} (the same loss)", trained["min"], trained["max"],
         trained["ratio"]),
        (f"deep linear {m.linear_widths}, init", m.deep_linear_params, m.deep_linear_witness["verdict"], linear["min"], linear["max"],
         linear["ratio"]),
        *((name, m.fixed_feature_params[name], m.fixed_feature_verdicts[name], f["min"], f["max"], f["ratio"])
          for name, f in m.fixed_features.items()),
    )
    return Table(
        "Curvature per model: the verdict, the extreme Hessian eigenvalues (Lanczos) and the share of the Hessian that the "
        "model's own curvature contributes",
        ("model and point", "parameters", "verdict", "λ_min", "λ_max", "‖H − GGN‖_F / ‖H‖_F"), rows,
    )


FIGURES = (spectrum,)
TABLES = (curvature_table,)
