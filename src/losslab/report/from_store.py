"""The report of experiment sweeps, drawn from their stores: each experiment's figures, and its claims over the sweep.

For each store of an experiment sweep (:mod:`losslab.sweep`), the report's section for that
experiment shows

* the figures and tables of one run, drawn from the stored numbers alone: the first finished task
  in the sweep's order, its Measured rebuilt from JSON (:meth:`~losslab.experiments.Measured.from_dict`)
  and its claims as they were judged in the worker;
* a table "claims over the sweep": for each grid point and claim, in how many of the finished runs
  (seeds) the claim held, with the 95% Wilson score interval of that rate (Wilson 1927; Brown, Cai &
  DasGupta 2001, "Interval estimation for a binomial proportion", Statist. Sci. 16(2), recommend it
  for small n; computed by ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``).

Nothing is recomputed: the report reads the store, read-only, while a sweep may still write to it.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Sequence
from pathlib import Path

from .._checks import LosslabError
from .drawn import Table

__all__ = ["claim_rates", "results_from_store", "write_store_report"]

CONFIDENCE = 0.95


def _measured_type(experiment) -> type:
    hints = typing.get_type_hints(experiment.measure)
    kind = hints.get("return")
    if not isinstance(kind, type):
        raise LosslabError(f"expected experiment {experiment.name!r}'s measure to be annotated with its Measured type, got "
                           f"{kind!r}; annotate measure(...) -> YourMeasured to draw it from a store")
    return kind


def _grid_label(settings: dict, grid_keys: Sequence[str]) -> str:
    return ", ".join(f"{k}={json.dumps(settings.get(k))}" for k in grid_keys) or "(one setting)"


def claim_rates(rows: Sequence[dict], grid_keys: Sequence[str], drawn: str = "") -> Table:
    """The table of claim rates: per grid point and claim, k of n finished runs held, rate, 95% Wilson interval.

    ``drawn`` names the run the section's figures are of (added to the caption)."""
    from scipy.stats import binomtest

    groups: dict[str, dict[str, list[bool]]] = {}
    for row in rows:
        if row["status"] != "done" or not isinstance(row["numbers"], dict):
            continue
        point = groups.setdefault(_grid_label(row["settings"], grid_keys), {})
        for c in row["numbers"].get("claims", []):
            point.setdefault(c["key"], []).append(bool(c["holds"]))
    out = []
    for label, claims in groups.items():
        for key, holds in claims.items():
            k, n = sum(holds), len(holds)
            ci = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
            out.append((label, key, f"{k} of {n}", f"{k / n:.0%}", f"{ci.low:.0%} – {ci.high:.0%}"))
    return Table(caption="Claims over the sweep: for each grid point, in how many runs (seeds) each claim held, with the 95% Wilson "
                         f"interval of the rate.{drawn}",
                 columns=("settings", "claim", "held", "rate", "95% interval (Wilson)"), rows=tuple(out))


def results_from_store(store: str | Path):
    """The Result of one experiment sweep's store: its first finished run, drawn, plus the claim-rate table.

    Raises:
        LosslabError: not an experiment sweep's store, no finished run, or numbers that do not rebuild its Measured.
    """
    from ..experiments import Claim, Result, get_experiment
    from ..sweep import read_rows
    from .sections import draw

    identity, rows = read_rows(store)
    rows = [r for r in rows if r["planned"]]  # the last run's grid
    if identity.get("kind") != "experiment":
        raise LosslabError(f"expected the store of an experiment sweep, got one of a {identity.get('kind')!r} sweep ({store}); "
                           "a report draws experiments: use losslab sweep export for other stores")
    experiment = get_experiment(identity["target"])
    done = [r for r in rows if r["status"] == "done"]
    if not done:
        raise LosslabError(f"expected at least one finished run in {store}, got none ({len(rows)} rows, none done); "
                           "run the sweep first (losslab sweep CONFIG)")
    first = done[0]
    numbers = first["numbers"]
    try:
        measured = _measured_type(experiment).from_dict(numbers["numbers"])
        claims = tuple(Claim(c["key"], c["statement"], bool(c["holds"]), c["evidence"], dict(c.get("values", {})), c.get("plain", ""))
                       for c in numbers["claims"])
        settings = dict(numbers["settings"])
    except (KeyError, TypeError, AttributeError) as err:
        raise LosslabError(f"expected task {first['key']} in {store} to hold an experiment's numbers, claims and settings, got "
                           f"{type(err).__name__}: {err} (a damaged store); rerun the sweep into a new store") from None
    grid_keys = sorted({k for r in rows for k in r["settings"]} - set(_fixed(rows)))
    failed = len(rows) - len(done)
    intro = (f"Drawn from the sweep store {Path(store).name}: {len(rows)} runs, {len(done)} finished"
             f"{f', {failed} failed or unfinished (not counted)' if failed else ''}. The figures and claims below are of one run "
             f"({_grid_label(first['settings'], grid_keys)}, seed {first['seed']}, the first in the sweep's order); the last table "
             f"gives every claim's rate over the sweep.\n\n{experiment.intro}")
    result = Result(name=experiment.name, number=experiment.number, title=experiment.title, intro=intro,
                    seed=first["seed"], quick=bool(identity.get("quick")), settings=settings, seconds=first["seconds"] or 0.0,
                    measured=measured, claims=claims)
    result = draw(result)
    drawn = f" The figures above are of one run: {_grid_label(first['settings'], grid_keys)}, seed {first['seed']}."
    return dataclasses.replace(result, tables=(*result.tables, claim_rates(rows, grid_keys, drawn)))


def _fixed(rows: Sequence[dict]) -> set[str]:
    """Settings with one value in every row ([settings] of the config)."""
    values: dict[str, set[str]] = {}
    for r in rows:
        for k, v in r["settings"].items():
            values.setdefault(k, set()).add(json.dumps(v, sort_keys=True))
    return {k for k, v in values.items() if len(v) == 1 and len(rows) > 1}


def write_store_report(stores: Sequence[str | Path], out: str | Path, *, version: str) -> Path:
    """Write the HTML report of the experiment sweeps in ``stores`` (one section each, in the argument's order) into ``out``.

    Returns the path of index.html (see :func:`~losslab.report.html.write_report`).
    """
    from .html import check_report_target, write_report

    if not stores:
        raise LosslabError("expected at least one sweep store for the report, got none; e.g. losslab sweep report runs.sqlite --out DIR")
    out = check_report_target(out)
    results = [results_from_store(s) for s in stores]
    names = [r.name for r in results]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise LosslabError(f"expected one store per experiment, got {twice[0]!r} twice; report them separately")
    results.sort(key=lambda r: r.number)
    return write_report(results, out, seed=results[0].seed, quick=all(r.quick for r in results), version=version)
