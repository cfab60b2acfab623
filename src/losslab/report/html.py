"""The HTML report of experiment results: one page that opens from disk, with no server and no network.

Layout of a report folder::

    index.html        the page: the argument, a summary of every claim, one section per experiment, then the
                      argument closed from the claims and its sources (:mod:`losslab.report.closing`)
    results.json      every number, setting and claim result
    figures/*.png     matplotlib figures
    plotly.min.js     plotly.js, beside the page (only when an experiment has an interactive figure)
    losslab-manifest.json   the files above, so a re-run recognises its own folder

:func:`write_report` builds the folder under a temporary name next to ``out`` and renames it into
place only when complete, so a killed run never leaves a report that looks finished; ``out`` follows
the rule of every losslab output folder (:mod:`losslab.report.out_folder`). Every string that
reaches the page is escaped. The page fits a phone's width: wide tables scroll sideways in their own box, figures
scale down, long evidence wraps.
"""

from __future__ import annotations

import html
import json
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path

from .closing import closing_html
from .out_folder import check_out_folder, writing_folder

__all__ = ["ARGUMENT", "check_report_target", "render_index", "report_payload", "write_report"]

ARGUMENT = (
    "A model that is linear in its parameters — a polynomial basis, random features, a network linearized "
    "around its initial weights — has fixed features. With the squared loss its training loss is convex and "
    "solved in closed form, but it cannot adapt its features: too few and it underfits, too many and it "
    "overfits, and in high dimension the basis it would need explodes. A neural network v·σ(Wx+b) learns its "
    "features: it is linear in v with W, b fixed, but nonlinear in (W, b, v) jointly — and that, not "
    "nonlinearity in x, is what makes its loss non-convex. Part I checks this argument step by step on real "
    "computations: the claim, the figure, the numbers, and whether the numbers bear it out. Part II goes on to "
    "what comes next (lazy and rich training, symmetric minima, spurious minima, double descent, the edge of "
    "stability), each checked against published values."
)

_CSS = """
body{font:16px/1.55 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;max-width:64rem;margin:0 auto;
     padding:1.5rem 1.25rem 4rem;overflow-wrap:break-word}
h1{font-size:2rem;margin:.2em 0}h2{margin-top:2.6rem;border-top:1px solid #e3e6ec;padding-top:1.4rem}h3{margin:1.4rem 0 .3rem}
.lede{font-size:1.08rem;color:#333b4d}.part-title{font-size:1.7rem;border-top:3px solid #3451b2}.meta{color:#667;font-size:.9rem}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;margin:.4rem 0 .8rem;font-size:.93rem}
th,td{border-bottom:1px solid #e3e6ec;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f6f9;vertical-align:bottom}.num{font-variant-numeric:tabular-nums;text-align:right}
td.num{white-space:nowrap}
.badge{display:inline-block;border-radius:.8em;padding:.05em .65em;font-size:.8rem;font-weight:600;white-space:nowrap}
.held{background:#e3f6e8;color:#146c2e}.failed{background:#fde4e4;color:#a31515}
.claim{margin:.55rem 0;padding:.45rem .7rem;border-left:4px solid #cfd5e1;background:#fafbfc}
.step{border-left:4px solid #cfd5e1;padding-left:.8rem}.verdict{font-size:.93rem;color:#333b4d}
.claim.failed-claim,.step.failed-step{border-left-color:#d33}.claim.held-claim,.step.held-step{border-left-color:#2e9b4f}
.evidence{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;color:#3c4458;overflow-wrap:anywhere}
.plain{font-size:.93rem;color:#333b4d;margin-top:.2rem}
.sources li{margin:.35rem 0}.use{color:#555d70;font-size:.9rem}
figure{margin:1rem 0}figure img{display:block;max-width:100%;height:auto;border:1px solid #eceef2}
figcaption{font-size:.88rem;color:#555d70}.plotly-figure{width:100%;height:480px}.plotly-graph-div{max-width:100%}
details{margin:.5rem 0}summary{cursor:pointer;color:#3451b2}
pre{background:#f5f6f9;padding:.6rem;overflow:auto;max-width:100%;font-size:.8rem}
@media (max-width:40rem){body{padding:1rem .8rem 3rem}h1{font-size:1.6rem}table{font-size:.82rem}th,td{padding:.3rem .35rem}}
"""


def report_payload(results: Sequence, *, seed: int, quick: bool, version: str) -> dict:
    """The JSON document of a report: every result's numbers, settings and claims, and the run's context."""
    import torch

    claims = [c for r in results for c in r.claims]
    return {
        "losslab": version,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seed": seed,
        "quick": quick,
        "claims_held": sum(c.holds for c in claims),
        "claims_total": len(claims),
        "seconds": round(sum(r.seconds for r in results), 3),
        "experiments": [r.to_dict() for r in results],
    }


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _badge(holds: bool) -> str:
    return "<span class='badge held'>holds</span>" if holds else "<span class='badge failed'>fails</span>"


_PLACEHOLDERS = frozenset({"", "-", "–", "—", "n/a"})
_NUMBER = re.compile(r"[-+−]?[\d,]*\.?\d+(e[-+−]?\d+)?%?( ± [\d.]+(e[-+−]?\d+)?%?)?", re.IGNORECASE)


def _is_number(x: object) -> bool:
    """Whether a table cell is a number: an int or float, or a string such as "0.26 ± 0.06" or "1e-3"."""
    if isinstance(x, bool):
        return False
    return isinstance(x, (int, float)) or (isinstance(x, str) and _NUMBER.fullmatch(x.strip()) is not None)


def _is_blank(x: object) -> bool:
    return x is None or (isinstance(x, str) and x.strip() in _PLACEHOLDERS)


def _numeric_columns(columns: Sequence, rows: Sequence) -> list[bool]:
    """Per column: every cell a number or a placeholder ("", "-", None), and at least one number."""
    cells = [[row[j] if j < len(row) else None for row in rows] for j in range(len(columns))]
    return [any(_is_number(x) for x in col) and all(_is_number(x) or _is_blank(x) for x in col) for col in cells]


def _cell(x: object, numeric: bool) -> str:
    attr = " class='num'" if numeric else ""
    if isinstance(x, float):
        return f"<td{attr}>{_e(f'{x:.4g}')}</td>"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"<td{attr}>{x:,}</td>"
    return f"<td{attr}>{_e(x)}</td>"


def _table_html(t) -> str:
    """A table under its caption, in a box that scrolls sideways when the table is wider than the page."""
    numeric = _numeric_columns(t.columns, t.rows)
    head = "".join(f"<th class='num'>{_e(c)}</th>" if n else f"<th>{_e(c)}</th>" for c, n in zip(t.columns, numeric))
    body = "".join(f"<tr>{''.join(_cell(x, n) for x, n in zip(row, numeric))}</tr>" for row in t.rows)
    return (f"<figure class='table'><figcaption>{_e(t.caption)}</figcaption>"
            f"<div class='table-wrap' tabindex='0'><table><tr>{head}</tr>{body}</table></div></figure>")


def _figure_html(result, fig, plotly_div) -> str:
    caption = f"<figcaption>{_e(fig.caption)}</figcaption>"
    if fig.png is not None:
        src = f"figures/{_e(result.name)}-{_e(fig.name)}.png"
        img = f"<img src='{src}' alt='{_e(fig.caption)}' loading='eager'>"
        return f"<figure><a href='{src}' title='open the figure at full size'>{img}</a>{caption}</figure>"
    return f"<figure>{plotly_div(fig)}{caption}</figure>"


def _section(result, plotly_div) -> str:
    claims = "".join(
        f"<div class='claim {'held' if c.holds else 'failed'}-claim'>{_badge(c.holds)} {_e(c.statement)}"
        f"<div class='evidence'>{_e(c.evidence)}</div>"
        + (f"<div class='plain'>In plain words: {_e(c.plain)}</div>" if c.plain else "")
        + "</div>"
        for c in result.claims
    )
    figures = "".join(_figure_html(result, f, plotly_div) for f in result.figures)
    tables = "".join(_table_html(t) for t in result.tables)
    held = sum(c.holds for c in result.claims)
    as_dict = result.to_dict()
    numbers, settings = json.dumps(as_dict["numbers"], indent=1), json.dumps(as_dict["settings"], indent=1)
    return (
        f"<section id='{_e(result.name)}'><h2>{result.number}. {_e(result.title)} "
        f"<span class='badge {'held' if result.passed else 'failed'}'>{held}/{len(result.claims)} claims hold</span></h2>"
        f"<p>{_e(result.intro)}</p>{claims}{figures}{tables}"
        f"<details><summary>numbers</summary><pre>{_e(numbers)}</pre></details>"
        f"<details><summary>settings ({result.seconds:.1f} s)</summary><pre>{_e(settings)}</pre></details></section>"
    )


def _part_openings(results: Sequence) -> dict[str, object]:
    """Experiment name → the part of the argument whose heading goes before it (the first result of each part)."""
    from ..experiments.story import parts

    part_of = {name: part for part in parts() for name in part.experiments}
    openings, shown = {}, set()
    for r in results:
        part = part_of.get(r.name)
        if part is not None and part.numeral not in shown:
            shown.add(part.numeral)
            openings[r.name] = part
    return openings


def _part_html(part) -> str:
    return (f"<section class='part' id='part-{_e(part.numeral.lower())}'><h2 class='part-title'>Part {_e(part.numeral)}. "
            f"{_e(part.title)}</h2><p class='lede'>{_e(part.intro)}</p></section>")


def _has_plotly(results: Sequence) -> bool:
    """Whether any figure is interactive (then plotly.min.js goes beside the page)."""
    return any(f.plotly_json is not None for r in results for f in r.figures)


def render_index(results: Sequence, payload: dict) -> str:
    """The report page for ``results`` (PNG figures referenced under ``figures/``, plotly from ``plotly.min.js``)."""
    import plotly.io as pio

    counter = iter(range(10**9))

    def plotly_div(fig) -> str:
        figure = pio.from_json(fig.plotly_json)
        return pio.to_html(figure, include_plotlyjs=False, full_html=False, div_id=f"plotly-{next(counter)}",
                           default_width="100%", default_height="480px", config={"displaylogo": False, "responsive": True})

    openings = _part_openings(results)
    summary = "".join(
        (f"<tr><th colspan='3'>Part {_e(openings[r.name].numeral)}. {_e(openings[r.name].title)}</th></tr>"
         if r.name in openings and i == 0 else "")
        + "<tr>"
        + (f"<td rowspan='{len(r.claims)}'><a href='#{_e(r.name)}'>{r.number}. {_e(r.title)}</a></td>" if i == 0 else "")
        + f"<td>{_e(c.statement)}</td><td>{_badge(c.holds)}</td></tr>"
        for r in results for i, c in enumerate(r.claims)
    )
    sections = "".join((_part_html(openings[r.name]) if r.name in openings else "") + _section(r, plotly_div)
                       for r in results)
    mode = "quick" if payload["quick"] else "full"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'><title>losslab report</title>"
        f"<style>{_CSS}</style>"
        + ("<script src='plotly.min.js'></script>" if _has_plotly(results) else "")
        + "</head><body><header><h1>Why is a neural network's loss non-convex?</h1>"
        f"<p class='lede'>{_e(ARGUMENT)}</p>"
        f"<p class='meta'>losslab {_e(payload['losslab'])} · torch {_e(payload['torch'])} · Python {_e(payload['python'])} · "
        f"seed {payload['seed']} · {mode} run · {payload['seconds']:.0f} s of computation · "
        f"<b>{payload['claims_held']} of {payload['claims_total']} claims hold</b> · every number is in "
        "<a href='results.json'>results.json</a></p></header>"
        "<h2>Summary of claims</h2><p>Each claim's evidence — the numbers that decide it — is in its section.</p>"
        "<div class='table-wrap'><table><tr><th>experiment</th><th>claim</th><th></th></tr>"
        f"{summary}</table></div>{sections}{closing_html(results)}"
        "<footer class='meta'><p>A claim <i>holds</i> when its measured numbers pass the threshold stated with it; a claim that "
        "fails is shown as failed. Convexity verdicts are <b>convex</b> only with a proof and <b>non-convex</b> only with a "
        "witness re-checked in float64.</p></footer></body></html>"
    )


def check_report_target(out: str | os.PathLike) -> Path:
    """``out`` as a Path if a report may be written there (see :func:`~losslab.report.out_folder.check_out_folder`)."""
    return check_out_folder(out, "report")


def write_report(results: Sequence, out: str | os.PathLike, *, seed: int, quick: bool, version: str) -> Path:
    """Write index.html, results.json and the figures of ``results`` into the folder ``out``, atomically.

    The folder is built as a hidden sibling and renamed into place when complete; an earlier report at
    ``out`` is replaced only then (:func:`~losslab.report.out_folder.writing_folder`, which also
    refuses a folder holding files losslab did not write). Returns the path of index.html.
    """
    from .sections import draw

    results = [r if r.figures or r.tables else draw(r) for r in results]
    payload = report_payload(results, seed=seed, quick=quick, version=version)
    with writing_folder(out, "report", version=version) as tmp:
        figures = tmp / "figures"
        figures.mkdir()
        for r in results:
            for f in r.figures:
                if f.png is not None:
                    (figures / f"{r.name}-{f.name}.png").write_bytes(f.png)
        if _has_plotly(results):
            from plotly.offline import get_plotlyjs

            (tmp / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
        (tmp / "results.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
        (tmp / "index.html").write_text(render_index(results, payload), encoding="utf-8")
    return Path(out) / "index.html"
