"""A sweep's TOML config, read with the standard library (:mod:`tomllib`) and checked key by key.

Three kinds of sweep, chosen by which key of ``[sweep]`` is given::

    [sweep]                                   [sweep]                              [sweep]
    experiment = "spurious-minima"            function = "study.py:analyse"        plane = "study.py:problem"
    quick = true                              factory = "study.py:make_data"       steps = 41
    seeds = 10          # or [0, 1, 5]        seeds = [0, 1, 2]                    span = 1.0
                                                                                   seed = 0
    [settings]          # fixed               [settings]                           tile_rows = 4
    starts = 50                               lr = 0.1

    [grid]              # each a list         [grid]
    ks = [[6, 8], [10, 12]]                   width = [16, 32, 64]

* ``experiment``: one run of the experiment per (grid point, seed); the grid and ``[settings]`` name
  its settings (``losslab experiment NAME --show-settings`` lists them).
* ``function``: the user's ``analyse(data, *, seed, **settings) -> dict`` per (grid point, seed);
  ``data`` is what ``factory()`` returns, built once by the driver and shipped once to each
  worker (without ``factory``: ``analyse(*, seed, **settings)``).
* ``plane``: the loss on a plane of the user's problem (``problem()`` returns a
  :class:`~losslab.Problem`, or ``(problem, center)``; the centre defaults to
  ``problem.default_theta(seed)``), split into tiles of ``tile_rows`` grid rows, equal to
  :func:`losslab.landscape.plane` with ``method="grid"`` (``tile_rows`` default: ⌈steps/16⌉).

Every sweep may also give ``store`` (the SQLite file; default: next to the config, its stem +
``.sqlite``), ``backend`` (``"local"`` or ``"ray"``), ``address`` (a Ray cluster),
``workers`` and ``threads`` (torch threads per task, default 1). Paths are relative to the
config file. A bad key is one line naming it and listing the valid ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._checks import LosslabError

__all__ = ["BACKENDS", "KINDS", "SweepConfig", "experiment_overrides", "load_config", "parse_config"]

KINDS = ("experiment", "function", "plane")
BACKENDS = ("local", "ray")
_COMMON = {"store": str, "backend": str, "address": str, "workers": int, "threads": int}
_SWEEP_KEYS = {
    "experiment": {"experiment": str, "quick": bool, "seeds": (int, list), **_COMMON},
    "function": {"function": str, "factory": str, "seeds": (int, list), **_COMMON},
    "plane": {"plane": str, "steps": int, "span": (int, float), "seed": int, "tile_rows": int, **_COMMON},
}
_TABLES = {"experiment": ("sweep", "settings", "grid"), "function": ("sweep", "settings", "grid"), "plane": ("sweep",)}
MAX_TASKS = 10_000_000
MAX_WORKERS = 100_000


@dataclass(frozen=True)
class SweepConfig:
    """A checked sweep: what runs (``kind``, ``target``), over which grid and seeds, and where it is stored.

    Attributes:
        kind: ``"experiment"``, ``"function"`` or ``"plane"``.
        target: the experiment's name, or the ``FILE.py:FUNCTION`` of the analysis / problem (file resolved).
        factory: ``FILE.py:FUNCTION`` of a function sweep's data factory, or ``""``.
        settings: fixed settings of every task.
        grid: setting → the list of its values; the sweep runs their Cartesian product (in key order).
        seeds: the seeds of every grid point (plane: the one directions seed).
        quick: an experiment's ``--quick`` settings as the base.
        plane: ``{"steps", "span", "tile_rows"}`` of a plane sweep.
        store: the SQLite file.
        backend, address, workers, threads: where and how it runs (workers 0: every CPU).
        text: the config file's text, recorded in the store.
    """

    kind: str
    target: str
    store: Path
    factory: str = ""
    settings: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    quick: bool = False
    plane: dict = field(default_factory=dict)
    backend: str = "local"
    address: str = ""
    workers: int = 0
    threads: int = 1
    text: str = ""

    def grid_points(self) -> list[dict]:
        """The settings of each grid point, ``[settings] | point``, in order (the last grid key varies fastest)."""
        keys = list(self.grid)
        return [{**self.settings, **dict(zip(keys, values))} for values in itertools.product(*(self.grid[k] for k in keys))]

    def identity(self) -> dict:
        """What a store's rows depend on besides their grid point and seed; a store refuses a sweep with another identity.

        The kind; the experiment, or the user's files by name (``study.py:analyse``, so a moved project
        still resumes) with the SHA-256 of their contents (``code``: rows of an edited file never mix
        with the old file's); the fixed ``[settings]``; ``quick``; a plane's steps, span, tiles and seed.
        """
        def name(spec: str) -> str:
            file, _, fn = spec.rpartition(":")
            return f"{Path(file).name}:{fn}"

        if self.kind == "experiment":
            return {"kind": self.kind, "target": self.target, "quick": self.quick, "settings": self.settings}
        files = dict.fromkeys(spec.rpartition(":")[0] for spec in (self.target, self.factory) if spec)
        code = hashlib.sha256(b"".join(Path(f).read_bytes() for f in files)).hexdigest()[:16]
        out = {"kind": self.kind, "target": name(self.target), "code": code}
        if self.kind == "function":
            out.update(factory=name(self.factory) if self.factory else "", settings=self.settings)
        else:
            out.update(self.plane, seed=self.seeds[0])
        return out

    def paths(self) -> dict:
        """The user's files as this run found them (absolute ``FILE.py:FUNCTION``), recorded in the store beside the identity."""
        return {"target": self.target, "factory": self.factory} if self.kind != "experiment" else {}


def _toml():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise LosslabError("expected Python 3.11 or later for sweep configs (read with the standard library's tomllib), "
                           "got Python 3.10; use Python 3.11+") from None
    return tomllib


def load_config(path: str | Path) -> SweepConfig:
    """Read and check the TOML sweep config at ``path`` (module docstring).

    Raises:
        LosslabError: a missing or unreadable file, TOML that does not parse, or a bad key or value (one line naming it).
    """
    p = Path(path)
    if not p.is_file():
        raise LosslabError(f"expected a sweep config file (TOML), got {str(path)!r} ({'a folder' if p.is_dir() else 'no such file'})")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LosslabError(f"expected a readable UTF-8 TOML file, got {str(path)!r} ({type(err).__name__}: {err})") from None
    tomllib = _toml()
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LosslabError(f"expected {p.name} to be TOML, got a syntax error: {err}; see the example in `losslab sweep --help`") from None
    return parse_config(doc, where=p.name, folder=p.resolve().parent, default_store=p.with_suffix(".sqlite"), text=text)


def _bad(where: str, key: str, expected: str, got: object, fix: str) -> LosslabError:
    return LosslabError(f"{where}: expected {key} {expected}, got {got!r}; {fix}")


def _typed(where: str, key: str, value: object, kind: type | tuple) -> object:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        words = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list"}
        names = " or ".join(words[k] for k in kinds)
        raise _bad(where, f"[sweep] {key}", f"to be {names}", value, f"write e.g. {key} = {_EXAMPLE[key]}")
    return value


_EXAMPLE = {"experiment": '"spurious-minima"', "function": '"study.py:analyse"', "factory": '"study.py:make_data"',
            "plane": '"study.py:problem"', "quick": "true", "seeds": "10 or [0, 1, 2]", "steps": "41", "span": "1.0", "seed": "0",
            "tile_rows": "4", "store": '"runs.sqlite"', "backend": '"local"', "address": '"10.0.0.1:6379"', "workers": "2",
            "threads": "1"}


def _seeds(where: str, value: object) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_TASKS:
            raise _bad(where, "[sweep] seeds", f"a count from 1 to {MAX_TASKS:,} (seeds 0..N−1) or a list of seeds", value,
                       "write e.g. seeds = 10")
        return tuple(range(value))
    if not value or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63 for s in value):
        raise _bad(where, "[sweep] seeds", "a non-empty list of integers ≥ 0", value, "write e.g. seeds = [0, 1, 2]")
    if len(set(value)) != len(value):
        raise _bad(where, "[sweep] seeds", "distinct seeds", value, "list each seed once")
    return tuple(value)


def _file_spec(where: str, key: str, value: str, folder: Path) -> str:
    file, sep, name = value.rpartition(":")
    if not sep or not file or not name.isidentifier():
        raise _bad(where, f"[sweep] {key}", "as FILE.py:FUNCTION", value, f"write e.g. {key} = {_EXAMPLE[key]}")
    path = (folder / file).resolve()
    if not path.is_file():
        raise _bad(where, f"[sweep] {key}", "to name an existing Python file (relative to the config)", value,
                   f"check the path; it resolves to {path}")
    return f"{path}:{name}"


def canonical(value: object) -> str:
    """The canonical JSON of a grid point or value (sorted keys; NaN and ±inf as JSON's NaN/Infinity tokens, never strings)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _plain(where: str, table: str, key: str, value: object) -> None:
    """A setting's value must be what JSON holds (TOML dates and times are not: a task's settings are stored as JSON)."""
    if isinstance(value, list):
        for v in value:
            _plain(where, table, key, v)
    elif isinstance(value, dict):
        for v in value.values():
            _plain(where, table, key, v)
    elif not (isinstance(value, (str, int, float, bool)) or value is None):
        raise _bad(where, f"[{table}] {key}", "numbers, strings, booleans, or lists and tables of them", value,
                   "write the value as a string, e.g. \"1979-05-27\"")


def _grid(where: str, grid: Mapping) -> dict:
    out = {}
    for key, values in grid.items():
        if not isinstance(values, list):
            raise _bad(where, f"[grid] {key}", "to be a list of values", values, f"write e.g. {key} = [{values!r}]")
        if not values:
            raise _bad(where, f"[grid] {key}", "a non-empty list (an empty grid runs nothing)", values, "give at least one value")
        _plain(where, "grid", key, values)
        texts = [canonical(v) for v in values]  # a task's key is its point's JSON: a repeat is the same task
        if len(set(texts)) != len(texts):
            twice = next(v for v, t in zip(values, texts) if texts.count(t) > 1)
            raise _bad(where, f"[grid] {key}", "to hold distinct values (a repeated value is the same task)", values,
                       f"{twice!r} is there twice: list each value once")
        out[key] = values
    return out


def experiment_overrides(settings: dict) -> dict:
    """An experiment's settings from TOML or JSON: lists as tuples (its sequence settings, e.g. ``ks``, are tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}


def _check_experiment(where: str, name: str, cfg: dict) -> None:
    from ..experiments import get_experiment

    try:
        experiment = get_experiment(name)
    except LosslabError as err:
        raise LosslabError(f"{where}: [sweep] experiment: {err}") from None
    valid = [f.name for f in dataclasses.fields(experiment.settings)]
    for table in ("settings", "grid"):
        unknown = [k for k in cfg[table] if k not in valid]
        if unknown:
            raise LosslabError(f"{where}: unknown setting {unknown[0]!r} in [{table}] for experiment {name!r}; "
                               f"valid settings: {', '.join(valid)}")
    for key, values in cfg["grid"].items():  # each value alone, so the error names the key and value
        for v in values:
            try:
                experiment.make_settings(quick=cfg["quick"], overrides=experiment_overrides({**cfg["settings"], key: v}))
            except LosslabError as err:
                raise LosslabError(f"{where}: [grid] {key} = {v!r}: {str(err).split(': ', 1)[-1]}") from None
    try:
        experiment.make_settings(quick=cfg["quick"], overrides=experiment_overrides(cfg["settings"]))
    except LosslabError as err:
        raise LosslabError(f"{where}: [settings]: {str(err).split(': ', 1)[-1]}") from None


def parse_config(doc: Mapping, *, where: str = "config", folder: Path | None = None, default_store: Path | None = None,
                 text: str = "") -> SweepConfig:
    """Check a parsed TOML document (a dict) and return the :class:`SweepConfig` (see :func:`load_config`)."""
    folder = Path.cwd() if folder is None else folder
    if not isinstance(doc, Mapping):
        raise LosslabError(f"{where}: expected a TOML table, got {type(doc).__name__}")
    sweep = doc.get("sweep")
    if not isinstance(sweep, Mapping):
        raise LosslabError(f"{where}: expected a [sweep] table with one of {', '.join(KINDS)}, got "
                           f"{'none' if sweep is None else type(sweep).__name__}; start the file with [sweep]")
    kinds = [k for k in KINDS if k in sweep]
    if len(kinds) != 1:
        raise LosslabError(f"{where}: expected exactly one of [sweep] {', '.join(KINDS)}, got "
                           f"{' and '.join(kinds) if kinds else 'none'}; e.g. experiment = \"spurious-minima\"")
    kind = kinds[0]
    unknown_tables = [t for t in doc if t not in _TABLES[kind]]
    if unknown_tables:
        raise LosslabError(f"{where}: unknown table or key {unknown_tables[0]!r} for a {kind} sweep; valid tables: "
                           f"{', '.join(f'[{t}]' for t in _TABLES[kind])}")
    valid = _SWEEP_KEYS[kind]
    unknown = [k for k in sweep if k not in valid]
    if unknown:
        raise LosslabError(f"{where}: unknown key {unknown[0]!r} in [sweep] of a {kind} sweep; valid keys: {', '.join(valid)}")
    for key, value in sweep.items():
        _typed(where, key, value, valid[key])
    for table in ("settings", "grid"):
        if table in doc and not isinstance(doc[table], Mapping):
            raise _bad(where, f"[{table}]", "to be a table", doc[table], f"write it as a [{table}] section")
    cfg = {"settings": dict(doc.get("settings", {})), "grid": _grid(where, doc.get("grid", {})), "quick": sweep.get("quick", False)}
    for key, value in cfg["settings"].items():
        _plain(where, "settings", key, value)
    twice = sorted(set(cfg["settings"]) & set(cfg["grid"]))
    if twice:
        raise _bad(where, f"[settings] {twice[0]}", "in [settings] or [grid], not both", twice[0], "keep one")
    backend = sweep.get("backend", "local")
    if backend not in BACKENDS:
        raise _bad(where, "[sweep] backend", f"one of {', '.join(BACKENDS)}", backend, 'write backend = "local" or "ray"')
    if sweep.get("address") and backend != "ray":
        raise _bad(where, "[sweep] address", 'only with backend = "ray"', sweep["address"], 'add backend = "ray" or drop the address')
    workers, threads = sweep.get("workers", 0), sweep.get("threads", 1)
    if not 0 <= workers <= MAX_WORKERS:
        raise _bad(where, "[sweep] workers", f"from 1 to {MAX_WORKERS} (or 0: every CPU)", workers, "write e.g. workers = 2")
    if not 1 <= threads <= 1024:
        raise _bad(where, "[sweep] threads", "from 1 to 1024 (torch threads per task)", threads, "write e.g. threads = 1")
    store = Path(sweep["store"]) if "store" in sweep else (default_store or Path("sweep.sqlite"))
    store = store if store.is_absolute() else (folder / store if "store" in sweep else store)
    common = dict(store=store, backend=backend, address=sweep.get("address", ""), workers=workers, threads=threads, text=text)
    if kind == "plane":
        return _plane_config(where, sweep, folder, common)
    seeds = _seeds(where, sweep.get("seeds", 1))
    if kind == "experiment":
        _check_experiment(where, sweep["experiment"], cfg)
        target = sweep["experiment"]
        factory = ""
    else:
        target = _file_spec(where, "function", sweep["function"], folder)
        factory = _file_spec(where, "factory", sweep["factory"], folder) if "factory" in sweep else ""
        bad = [k for k in (*cfg["settings"], *cfg["grid"]) if not k.isidentifier() or k == "seed"]
        if bad:
            raise _bad(where, f"setting {bad[0]!r}", "a Python identifier other than 'seed' (it is passed as a keyword)", bad[0],
                       "rename it")
    tasks = math.prod(len(v) for v in cfg["grid"].values()) * len(seeds)
    if tasks > MAX_TASKS:
        raise _bad(where, "the grid × seeds", f"at most {MAX_TASKS:,} tasks", tasks, "split the sweep into several stores")
    return SweepConfig(kind=kind, target=target, factory=factory, settings=cfg["settings"], grid=cfg["grid"], seeds=seeds,
                       quick=cfg["quick"], **common)


def _plane_config(where: str, sweep: Mapping, folder: Path, common: dict) -> SweepConfig:
    steps, span = sweep.get("steps", 41), sweep.get("span", 1.0)
    tile_rows = sweep.get("tile_rows", max(1, math.ceil(steps / 16)))  # steps is an int: _typed checked it
    if not 2 <= steps <= 100_000:
        raise _bad(where, "[sweep] steps", "from 2 to 100000 (grid points per axis)", steps, "write e.g. steps = 41")
    if not (math.isfinite(span) and span > 0):
        raise _bad(where, "[sweep] span", "a finite number > 0 (half-width in units of the directions)", span, "write e.g. span = 1.0")
    if not 1 <= tile_rows <= steps:
        raise _bad(where, "[sweep] tile_rows", f"from 1 to steps = {steps} (grid rows per task)", tile_rows,
                   "write e.g. tile_rows = 4")
    seed = sweep.get("seed", 0)
    if not 0 <= seed < 2**63:
        raise _bad(where, "[sweep] seed", "an integer ≥ 0 (the directions' seed)", seed, "write e.g. seed = 0")
    target = _file_spec(where, "plane", sweep["plane"], folder)
    return SweepConfig(kind="plane", target=target, seeds=(seed,), plane={"steps": steps, "span": float(span), "tile_rows": tile_rows},
                       **common)
