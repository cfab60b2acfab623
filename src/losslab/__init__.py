"""losslab: is this loss convex in the parameters, and why (not)?

The names below are imported on first use (PEP 562), so ``losslab --version`` answers without
importing torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {  # public name -> the module that defines it (a subpackage is its own module)
    "curvature": ".curvature",
    "data": ".data",
    "fit": ".fit",
    "kernels": ".kernels",
    "landscape": ".landscape",
    "models": ".models",
    "sweep": ".sweep",
    "symmetry": ".symmetry",
    "LosslabError": "._checks",
    "ConvexityReport": ".convexity",
    "check_convexity": ".convexity",
    "Verdict": ".convexity",
    "CriticalKind": ".curvature",
    "Implementation": ".landscape",
    "MemoryBudgetError": ".memory",
    "LOSSES": ".losses",
    "Loss": ".losses",
    "Problem": ".problem",
}

__all__ = [
    "LOSSES",
    "ConvexityReport",
    "CriticalKind",
    "Implementation",
    "Loss",
    "LosslabError",
    "MemoryBudgetError",
    "Problem",
    "Verdict",
    "__version__",
    "check_convexity",
    "curvature",
    "data",
    "fit",
    "kernels",
    "landscape",
    "models",
    "sweep",
    "symmetry",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'losslab' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = module if _LAZY[name] == f".{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
