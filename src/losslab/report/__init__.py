"""Drawing: matplotlib PNGs and self-contained plotly HTML. Analyses never draw; this does."""

from .figures import line_png, plane_contour_png, plane_surface_html, spectrum_png

__all__ = ["line_png", "plane_contour_png", "plane_surface_html", "spectrum_png"]
