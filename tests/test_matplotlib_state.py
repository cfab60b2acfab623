"""Importing losslab and drawing its figures leave matplotlib's global state alone (issue #11: no backend switch).

A notebook user's backend is theirs: losslab draws through ``matplotlib.figure.Figure`` (object API), never
``pyplot``, so it neither switches the backend nor registers figures with pyplot's figure manager.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_losslab_never_switches_the_backend_nor_imports_pyplot(tmp_path):
    script = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        import matplotlib
        matplotlib.use("svg")  # the user's choice, before losslab is imported
        import torch
        import losslab, losslab.experiments, losslab.report
        for mod in pkgutil.walk_packages(losslab.__path__, "losslab."):
            if not mod.name.startswith("losslab.cli"):
                importlib.import_module(mod.name)
        from losslab.report.drawn import png_figure
        from losslab.landscape import LineSlice
        from losslab.report.figures import line_png, subplots
        f64 = torch.float64
        slice_ = LineSlice(torch.linspace(0, 1, 5, dtype=f64), torch.tensor([1.0, 0.2, 0.1, 0.4, 1.3], dtype=f64),
                           torch.zeros(2, dtype=f64), torch.ones(2, dtype=f64))
        line_png(slice_, r"{tmp_path / 'line.png'}")
        fig, ax = subplots(figsize=(2, 2))
        ax.plot([0, 1], [1, 0])
        png = png_figure(fig, "x", "a caption").png
        assert png.startswith(bytes([0x89]) + b"PNG"), png[:8]
        print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "False"]
    assert (tmp_path / "line.png").read_bytes().startswith(bytes([0x89]) + b"PNG")


def test_experiments_measure_and_judge_without_any_drawing_library():
    """Issue #11: experiments/ only computes; every drawing library is imported by report/ alone."""
    script = textwrap.dedent("""
        import sys
        from losslab.experiments import NAMES, get_experiment, run_experiment
        experiments = [get_experiment(n) for n in NAMES]
        result = run_experiment(get_experiment("underfitting"), seed=0, quick=True)
        assert result.claims and not result.figures
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "plotly") or m.startswith("losslab.report")))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
