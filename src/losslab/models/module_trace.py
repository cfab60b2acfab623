"""The traced graph of a wrapped ``nn.Module``: tracing, the selected output node, a final sigmoid.

A module whose last operation is a sigmoid outputs probabilities σ(z); the losses want the
logit z (bce from the logit is stable, and the cross-entropy of σ(z) is convex in z). The
logit is computed without that sigmoid, by a module that shares the parameter names:

* a plain ``nn.Sequential`` ending in ``nn.Sigmoid`` (possibly nested): the same children but
  the last, under the same names;
* otherwise, a ``torch.fx.GraphModule`` of the traced forward (``torch.fx.symbolic_trace``,
  Reed et al. 2022, "torch.fx: Practical Program Capture and Transformation for Deep Learning
  in Python") whose output is the sigmoid's input.
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch.fx import GraphModule, Node

from .module_io import Selector

_SIGMOID_FUNCTIONS = {torch.sigmoid, torch.special.expit, torch.nn.functional.sigmoid}


def trace(module: torch.nn.Module) -> tuple[GraphModule | None, str]:
    """``(graph_module, "")``, or ``(None, note)`` with one line saying why tracing failed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.fx.symbolic_trace(module), ""
    except Exception as err:  # anything a user's forward raises on proxies
        first = (str(err).strip().splitlines() or [""])[0][:200]
        return None, f"tracing with torch.fx failed ({type(err).__name__}: {first}), so nothing is proven from the graph"


def output_node(gm: GraphModule, output: Selector) -> Node | None:
    """The graph node of the output the selector picks, or None when it cannot be located."""
    value = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    if isinstance(value, Node) and value.op == "call_function" and isinstance(value.target, type) and output is not None:
        cls, args, kwargs = value.target, value.args, value.kwargs  # a namedtuple or output class built in forward
        fields = list(getattr(cls, "_fields", ()))
        if isinstance(output, str) and output in kwargs:
            value = kwargs[output]
        elif isinstance(output, str) and output in fields and fields.index(output) < len(args):
            value = args[fields.index(output)]
        elif isinstance(output, int) and issubclass(cls, tuple) and output < len(args):
            value = args[output]
        else:
            return None
    elif output is not None:
        if isinstance(value, Mapping) and isinstance(output, str):
            value = value.get(output)
        elif isinstance(value, (tuple, list)) and isinstance(output, int) and output < len(value):
            value = value[output]
        else:
            return None
    return value if isinstance(value, Node) else None


def sigmoid_input(gm: GraphModule, node: Node) -> Node | None:
    """The input of ``node`` when ``node`` is a sigmoid (module, function or method), else None."""
    is_sigmoid = (
        (node.op == "call_module" and isinstance(gm.get_submodule(node.target), torch.nn.Sigmoid))
        or (node.op == "call_function" and node.target in _SIGMOID_FUNCTIONS)
        or (node.op == "call_method" and node.target == "sigmoid")
    )
    arg = node.args[0] if is_sigmoid and node.args else None
    return arg if isinstance(arg, Node) else None


def strip_sequential(module: torch.nn.Module) -> torch.nn.Module | None:
    """A plain ``nn.Sequential`` ending (possibly nested) in ``nn.Sigmoid``, without it; else None.

    The children keep their names, so the parameter names are those of ``module``.
    """
    if not isinstance(module, torch.nn.Sequential) or type(module).forward is not torch.nn.Sequential.forward or not len(module):
        return None
    items = list(module._modules.items())
    name, last = items[-1]
    if isinstance(last, torch.nn.Sigmoid):
        kept = items[:-1]
    else:
        inner = strip_sequential(last)
        if inner is None:
            return None
        kept = [*items[:-1], (name, inner)]
    out = torch.nn.Sequential(OrderedDict(kept))
    out.training = module.training  # not .train(): the shared children keep their own modes
    return out


def strip_graph(root: torch.nn.Module, gm: GraphModule, new_output: Node) -> GraphModule | None:
    """A GraphModule over ``root``'s submodules returning the value of ``new_output`` (a node of ``gm``).

    None when torch.fx cannot rebuild it (the link is then not stripped).
    """
    try:
        return _rebuilt(root, gm, new_output)
    except Exception:  # a graph torch.fx traces but cannot compile back into Python
        return None


def _rebuilt(root: torch.nn.Module, gm: GraphModule, new_output: Node) -> GraphModule:
    graph = copy.deepcopy(gm.graph)
    by_name = {n.name: n for n in graph.nodes}
    out = next(n for n in graph.nodes if n.op == "output")
    out.args = (by_name[new_output.name],)
    stripped = GraphModule(root, graph)
    stripped.graph.eliminate_dead_code()
    stripped.graph.lint()
    stripped.recompile()
    stripped.training = root.training
    return stripped
