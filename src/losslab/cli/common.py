"""What the commands share: building a Problem from options, one-line errors."""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import torch
import typer
from rich.console import Console

from .. import data
from .._checks import LosslabError, choice, positive_int
from ..examples import EXAMPLES, get_example
from ..fit import train
from ..memory import DEFAULT_MEMORY_BUDGET, MemoryBudgetError, mib
from ..models import MLP, Linear, Model, Module, Polynomial, RandomFeatures, TwoLayer
from ..problem import Problem
from .user_files import apply_weights, is_data_file, load_data, load_model_file, load_weights

if TYPE_CHECKING:
    from .estimate import Cost

out = Console()
err_console = Console(stderr=True)
MODELS = ("polynomial", "random-features", "linear", "logistic", "two-layer", "mlp", "deep-linear")
POINTS = {"init": "initial point", "trained": "trained point", "weights": "given weights"}  # --at, in words
COLORS = {"convex": "green", "non-convex": "red", "no violation found": "yellow"}


def _option(kind: object, flag: str, help: str) -> object:
    """A command-line option: ``kind`` annotated with typer's ``flag`` and ``help`` (its default is the parameter's)."""
    return Annotated[kind, typer.Option(flag, help=help)]


# Options shared by every command that builds a problem.
ModelOpt = _option(str, "--model", f"a built-in model: {', '.join(MODELS)} (or your own: --model-file)")
DataOpt = _option(str, "--data",
    f"a built-in data set ({', '.join(data.DATASETS)}) or a file: .npz (no pickle), .pt (weights_only) or "
    ".safetensors, holding arrays X (inputs) and y (targets)")
NOpt = _option(int, "--n", "number of examples of a built-in data set")
LossOpt = _option(str, "--loss", "mse, bce or cross_entropy")
WidthOpt = _option(int, "--width", "hidden width (two-layer, random-features)")
ActivationOpt = _option(str, "--activation", "relu, tanh, sigmoid or identity")
DegreeOpt = _option(int, "--degree", "polynomial degree")
HiddenOpt = _option(str, "--hidden", "mlp hidden widths, comma-separated")
OutBiasOpt = _option(bool, "--out-bias", "two-layer: add an output bias c")
GroupOpt = _option(list[str] | None, "--group", "analyse these groups only (repeatable), the others fixed")
L2Opt = _option(float, "--l2", "weight of l2·‖θ‖²")
ExampleOpt = _option(str | None, "--example", f"a built-in example instead of --model/--data: {', '.join(EXAMPLES)}")
SeedOpt = _option(int, "--seed", "seed for data, init and every random choice")
JsonOpt = _option(bool, "--json", "print machine-readable JSON")
AtOpt = _option(str | None, "--at",
    "the point to analyse: init, trained (Adam from init), or weights (a --model-file module's own weights, "
    "the default with --model-file; trained otherwise)")
ModelFileOpt = _option(str | None, "--model-file",
    "your own model: FILE.py:FUNCTION, a function that returns a torch.nn.Module (your code, imported and run)")
WeightsOpt = _option(str | None, "--weights", "a state dict for --model-file: .pt (torch.load weights_only=True) or .safetensors")
XKeyOpt = _option(list[str] | None, "--x-key",
    "name of the inputs in a --data file (default X); repeat for a dict of inputs, passed as module(**inputs)")
YKeyOpt = _option(str, "--y-key", "name of the targets in a --data file")
DeviceOpt = _option(str | None, "--device", "where to compute: cpu, cuda, cuda:1, … (default: the model's)")
BatchSizeOpt = _option(int | None, "--batch-size",
    "evaluate the data in batches of this many examples (memory); the loss is the same, accumulated exactly "
    "(except in --mode train, where BatchNorm uses each batch's statistics)")
ModeOpt = _option(str | None, "--mode",
    "--model-file: eval (default: running BatchNorm statistics, no dropout) or train (batch statistics)")
ParamsOpt = _option(str | None, "--params",
    "--model-file: the parameters analysed: trainable (default, requires_grad=True), all, or comma-separated names")
TrainStepsOpt = _option(int, "--train-steps", "Adam steps to the trained point")
MemoryBudgetOpt = _option(int, "--memory-budget",
    "MiB of intermediates an analysis may allocate (the Problem's memory_budget); larger requests are "
    "done in blocks that fit, or refused up front")

LARGE = {"points": 250_000, "chords": 100_000, "probes": 200}
"""Sizes that run only with --yes: a slice of more points (a 500×500 plane), a check of more chords, a spectrum of more
probes; also any request whose kept arrays exceed the memory budget. Deterministic: the time estimate printed beside
them is measured on the machine (a few of the request's own operations, timed) and only informs."""
YesOpt = _option(bool, "--yes",
    "run a large request: a slice of over 250,000 points, a check of over 100,000 chords, a spectrum of over 200 "
    "probes, or one needing more than --memory-budget (else it is refused, with an estimate of its time and memory)")


def confirm_large(what: str, *, size: int, unit: str, cost: Cost, budget: int, yes: bool) -> None:
    """Refuse a large request without ``--yes``, saying the estimate; with ``--yes``, say it on stderr and go on.

    Large: ``size`` over ``LARGE[unit]``, or ``cost.needed`` over ``budget`` bytes of kept intermediates. The seconds
    are only reported, so they are timed only for a large request.
    """
    over = [f"{size:,} {unit} > {LARGE[unit]:,}"] if size > LARGE[unit] else []
    over += [f"{mib(cost.needed)} > --memory-budget {mib(budget)}"] if cost.needed > budget else []
    if not over:
        return
    seconds = cost.seconds
    minutes = f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"
    estimate = f"{what}: {' and '.join(over)} (estimated {minutes} and {mib(cost.needed)} of intermediates on this machine)"
    if not yes:
        raise LosslabError(f"{estimate}; pass --yes to run it, or choose smaller sizes")
    err_console.print(f"{estimate}; running it (--yes)", highlight=False)


def friendly_errors(command):
    """Turn a LosslabError (or running out of memory) in ``command`` into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LosslabError as err:
            message = str(err)
            if isinstance(err, MemoryBudgetError):  # the library's names of the settings, as options
                message = message.replace("Problem(...)'s batch_size", "--batch-size").replace("memory_budget", "--memory-budget")
            print(f"error: {message}", file=sys.stderr)
            raise typer.Exit(2) from None
        except (MemoryError, RuntimeError) as err:
            if not isinstance(err, MemoryError) and "allocate" not in str(err):
                raise
            print(f"error: out of memory ({str(err).splitlines()[0]}); choose smaller sizes", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper


def build_model(
    name: str, d_in: int, *, width: int, activation: str, degree: int, hidden: str, out_bias: bool, seed: int, d_out: int = 1
) -> Model:
    """The model a CLI name and options describe, for inputs of width ``d_in`` (and ``d_out`` logits: mlp only)."""
    name = choice("model", name, MODELS)
    if d_out != 1 and name not in ("mlp", "deep-linear"):
        raise LosslabError(f"expected --model mlp or deep-linear for {d_out} class logits (cross_entropy), got --model {name}")
    if name == "polynomial":
        return Polynomial(d_in, degree)
    if name == "random-features":
        return RandomFeatures(d_in, width, activation, seed=seed)
    if name in ("linear", "logistic"):
        return Linear(d_in, output="sigmoid" if name == "logistic" else None)
    if name == "two-layer":
        return TwoLayer(d_in, width, activation, out_bias=out_bias)
    try:
        sizes = [int(w) for w in hidden.split(",") if w.strip()]
    except ValueError:
        raise LosslabError(f"expected --hidden as comma-separated widths like 8,8, got {hidden!r}") from None
    return MLP([d_in, *sizes, d_out], "identity" if name == "deep-linear" else activation)


BUILT_IN = ("model", "width", "activation", "degree", "hidden", "out_bias")  # options of the built-in models


def make_problem(
    *, model: str, data_name: str, n: int, loss: str, width: int, activation: str, degree: int, hidden: str,
    out_bias: bool, l2: float, example: str | None, group: list[str] | None, seed: int,
    model_file: str | None = None, weights: str | None = None, x_key: list[str] | None = None, y_key: str = "y",
    device: str | None = None, batch_size: int | None = None, mode: str | None = None, params: str | None = None,
    changed: tuple[str, ...] = (), memory_budget: int = DEFAULT_MEMORY_BUDGET // 2**20,
) -> tuple[Problem, list[str] | None]:
    """The problem (and groups to analyse) the shared options describe.

    ``changed`` names the options given a value other than their default (to refuse mixing a
    ``--model-file`` with the built-in models' options). ``memory_budget`` is in MiB.
    """
    memory_budget = positive_int("--memory-budget", memory_budget)
    if example:
        if group:
            raise LosslabError(f"expected either --example or --group, got both (--example {example} fixes its own groups)")
        if model_file or (user_data(data_name) and "data_name" in changed):
            raise LosslabError(f"expected either --example or your own --model-file/--data, got --example {example} with them")
        problem, groups = get_example(example).build(seed)
        return problem.with_memory_budget(memory_budget * 2**20), groups
    if model_file is None:
        given = [f"--{name.replace('_', '-')}" for name, value in (("weights", weights), ("mode", mode), ("params", params)) if value]
        if given:
            raise LosslabError(f"expected {', '.join(given)} only with --model-file FILE.py:FUNCTION, got it with --model {model}")
    else:
        mixed = [f"--{name.replace('_', '-')}" for name in BUILT_IN if name in changed]
        if mixed:
            raise LosslabError(f"expected either --model-file or the built-in model options, got --model-file with {', '.join(mixed)}")
    if user_data(data_name):
        if "n" in changed:
            raise LosslabError(f"expected --n only with a built-in data set, got --n {n} with --data {data_name}")
        X, y = load_data(data_name, x_keys=list(x_key or ["X"]), y_key=y_key)
    else:
        if x_key or "y_key" in changed:
            raise LosslabError(f"expected --x-key/--y-key only with a --data file, got them with --data {data_name}")
        X, y = data.make(data_name, n, seed=seed)
    if model_file is None:
        if not isinstance(X, torch.Tensor) or X.ndim not in (1, 2):
            raise LosslabError(f"expected inputs X of shape (n, d) for --model {model}, got {_shape(X)}; use --model-file for other inputs")
        classes = int(y.max()) + 1 if loss == "cross_entropy" and not y.dtype.is_floating_point else 1
        net = build_model(model, X.shape[1] if X.ndim == 2 else 1, width=width, activation=activation, degree=degree, hidden=hidden,
                          out_bias=out_bias, seed=seed, d_out=classes)
    else:
        user = load_model_file(model_file)
        if weights:
            apply_weights(user, load_weights(weights), weights)
        chosen = params or "trainable"
        chosen = chosen if chosen in ("trainable", "all") else [w.strip() for w in chosen.split(",") if w.strip()]
        net = Module(user, mode=choice("--mode", mode or "eval", ("eval", "train")), params=chosen)
    problem = Problem(net, X, y, loss=loss, l2=l2, device=device, batch_size=batch_size, memory_budget=memory_budget * 2**20)
    return problem, (list(group) if group else None)


def user_data(data_name: str) -> bool:
    """Whether ``--data`` names a file rather than a built-in data set."""
    return data_name not in data.DATASETS and is_data_file(data_name)


def _shape(X: object) -> str:
    return f"a dict of inputs {list(X)}" if isinstance(X, dict) else f"shape {tuple(X.shape)}"


def module_mode(problem: Problem) -> str | None:
    """The wrapped module's mode (``"eval"``/``"train"``), None for a built-in model."""
    return problem.model.mode if isinstance(problem.model, Module) else None


def resolve_at(problem: Problem, at: str | None) -> str:
    """``--at``: default ``weights`` for a wrapped module, ``trained`` for a built-in model."""
    if at is None:
        return "weights" if isinstance(problem.model, Module) else "trained"
    choice("--at", at, ("init", "trained", "weights"))
    if at == "weights" and not isinstance(problem.model, Module):
        raise LosslabError("expected --at init or trained for a built-in model, got --at weights (only --model-file has its own weights)")
    if at == "init" and isinstance(problem.model, Module):
        raise LosslabError(
            "expected --at weights or trained with --model-file, got --at init: the point is your module's weights (--at weights, "
            "the default: as build() returns them, or as loaded by --weights) or where Adam goes from them (--at trained)"
        )
    return at


SHARED = (
    ("model", ModelOpt, "two-layer"), ("data_name", DataOpt, "cubic"), ("n", NOpt, 200), ("loss", LossOpt, "mse"),
    ("width", WidthOpt, 8), ("activation", ActivationOpt, "relu"), ("degree", DegreeOpt, 3), ("hidden", HiddenOpt, "8,8"),
    ("out_bias", OutBiasOpt, False), ("group", GroupOpt, None), ("l2", L2Opt, 0.0), ("example", ExampleOpt, None),
    ("seed", SeedOpt, 0), ("model_file", ModelFileOpt, None), ("weights", WeightsOpt, None), ("x_key", XKeyOpt, None),
    ("y_key", YKeyOpt, "y"), ("device", DeviceOpt, None), ("batch_size", BatchSizeOpt, None), ("mode", ModeOpt, None),
    ("params", ParamsOpt, None), ("memory_budget", MemoryBudgetOpt, DEFAULT_MEMORY_BUDGET // 2**20),
)


def writes_options(name: str, files: str) -> tuple[tuple[str, object, object], ...]:
    """The options that end a command writing a folder of ``files``: ``--out`` (``out_dir``, default ``losslab-NAME``),
    ``--json`` (``as_json``) and ``--yes`` (``yes``)."""
    out_opt = _option(Path, "--out", f"folder for {files}: new (its parent must exist), empty, or an earlier {name}'s (replaced whole)")
    return ("out_dir", out_opt, Path(f"losslab-{name}")), ("as_json", JsonOpt, False), ("yes", YesOpt, False)


def problem_command(*, writes: tuple[str, str] | None = None, **defaults):
    """Give a command the shared problem options; it receives ``problem`` (restricted to ``--group``), ``groups``, ``seed``.

    ``defaults`` overrides the shared defaults (e.g. ``activation="tanh"``). The command's own
    options follow the shared ones on its command line; errors become one line (``friendly_errors``).
    ``writes=(name, files)``: the command writes a folder, and its own options are followed by
    :func:`writes_options` (it receives ``out_dir``, ``as_json`` and ``yes``).
    """
    tail = writes_options(*writes) if writes else ()

    def decorate(command):
        hints = typing.get_type_hints(command, include_extras=True)
        given = ("problem", "groups", "seed", *(name for name, _, _ in tail))
        own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values() if p.name not in given]
        keyword = lambda name, kind, default: inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
        shared = [keyword(name, kind, defaults.get(name, default)) for name, kind, default in SHARED]

        @functools.wraps(command)
        def wrapper(**kwargs):
            options = {name: kwargs.pop(name) for name, _, _ in SHARED}
            changed = tuple(name for name, _, default in SHARED if options[name] != defaults.get(name, default))
            full, groups = make_problem(data_name=options.pop("data_name"), changed=changed, **options)
            problem = full if groups is None else full.restrict(groups, at=full.default_theta(options["seed"]))
            return command(problem=problem, groups=groups, seed=options["seed"], **kwargs)

        params = shared + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + [keyword(*option) for option in tail]
        wrapper.__signature__ = inspect.Signature(params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return friendly_errors(wrapper)

    return decorate


def analysis_point(problem: Problem, at: str, *, train_steps: int, seed: int, lr: float = 1e-2):
    """θ to analyse at, and the trajectory: ``"init"``/``"weights"`` (the model's initial point: a module's own weights) or
    ``"trained"`` (Adam from it)."""
    at = resolve_at(problem, at)
    start = problem.default_theta(seed)
    if at != "trained":
        return start, None
    if train_steps < 1:
        raise LosslabError(f"expected --train-steps >= 1 with --at trained, got --train-steps {train_steps}")
    with err_console.status(f"training ({train_steps} Adam steps)…"):
        run = train(problem, optimizer="adam", lr=lr, steps=train_steps, seed=seed, theta0=start)
    return run.theta.detach(), run
