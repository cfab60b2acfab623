"""benchmarks/gpu_check.py runs (on the CPU here, against the CPU): every row holds, and it says plainly when no GPU is present."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_runs_every_analysis_and_every_check_holds():
    result = subprocess.run([sys.executable, str(SCRIPT), "--small"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    if not torch.cuda.is_available():
        assert out.startswith("No GPU present")
    for analysis in ("loss (float64)", "grad", "hvp", "loss_batch", "plane", "line", "eigs", "trace", "density", "classify",
                     "H − GGN", "train (GD", "train (Adam", "check_convexity (joint)", "check_convexity (last layer)",
                     "int64 ids kept", "Module(Embedding, BatchNorm): hvp"):
        assert f"| {analysis}" in out, analysis
    assert "FAIL" not in out and "22 of 22 checks hold" in out
