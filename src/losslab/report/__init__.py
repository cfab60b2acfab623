"""Drawing: matplotlib PNGs, self-contained plotly HTML, and the HTML report of the experiments."""

from .figures import line_png, plane_contour_png, plane_surface_html, spectrum_png
from .html import check_report_target, render_index, report_payload, write_report
from .out_folder import MANIFEST, check_out_folder, writing_folder
from .sections import draw, register_drawings

__all__ = [
    "MANIFEST",
    "check_out_folder",
    "check_report_target",
    "draw",
    "line_png",
    "plane_contour_png",
    "plane_surface_html",
    "register_drawings",
    "render_index",
    "report_payload",
    "spectrum_png",
    "write_report",
    "writing_folder",
]
