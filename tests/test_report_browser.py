"""The report in a real browser: headless Chromium (Debian's ``chromium``, installed by ``.ci/run``) opens
index.html from disk, and every figure must load with no console error, no page error, no failed request;
at a phone's, a tablet's and a desktop's width the page must not scroll sideways, and no two text elements
of a plotly figure may overlap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from losslab.experiments import NAMES

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = os.environ.get("LOSSLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "headless Chromium is needed for this test: apt-get install chromium (or set LOSSLAB_CHROMIUM)"
    return path


@dataclass
class PageLoad:
    console_errors: list
    page_errors: list
    failed_requests: list
    images: list  # (src, natural width) per <img>
    plotly_divs: int  # plotly containers on the page
    plotly_drawn: int  # of those, how many plotly drew (an svg inside)
    text: str


def open_in_chromium(index: Path, screenshot: Path | None = None) -> PageLoad:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            console, errors, failed = [], [], []
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(index.resolve().as_uri(), wait_until="load")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=30_000)
            images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
            divs = page.evaluate("document.querySelectorAll('.plotly-graph-div').length")
            drawn = page.evaluate("Array.from(document.querySelectorAll('.plotly-graph-div'))"
                                  ".filter(d => d.querySelector('svg.main-svg')).length")
            text = page.inner_text("body")
            if screenshot is not None:
                page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return PageLoad(console, errors, failed, images, divs, drawn, text)


WIDTHS = (390, 800, 1400)  # a phone, a tablet, a desktop (CSS pixels)

# Per plotly figure: its legend entries (symbol and text), colour bars and every other SVG text (titles, tick
# labels, the colour bar's title), and the pairs of them whose boxes overlap by more than a pixel each way.
_PLOTLY_OVERLAPS = """() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(div => {
  const items = [];
  div.querySelectorAll('g.legend g.traces').forEach(e => items.push(['legend entry “' + e.textContent.trim() + '”', e]));
  div.querySelectorAll('g.colorbar rect.cbfill').forEach(e => items.push(['colour bar', e]));
  div.querySelectorAll('svg text').forEach(e => {
    if (!e.closest('g.legend') && e.textContent.trim()) items.push(['“' + e.textContent.trim() + '”', e]);
  });
  const boxes = items.map(([name, e]) => [name, e.getBoundingClientRect()]);
  const hits = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i][1], b = boxes[j][1];
    if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1)
      hits.push(boxes[i][0] + ' overlaps ' + boxes[j][0]);
  }
  const section = div.closest('section');
  return [section ? section.id : div.id, boxes.length, hits];
})"""

# The outermost elements that stick out past the right edge of the window, not counting those inside a box
# that scrolls or clips them (a wide table in its scrolling box is fine).
_TOO_WIDE = """() => {
  const out = e => e.getBoundingClientRect().right > window.innerWidth + 0.5;
  const boxed = e => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
      if (getComputedStyle(a).overflowX !== 'visible') return true;
    return false;
  };
  return Array.from(document.querySelectorAll('body *')).filter(e => out(e) && !boxed(e) && !out(e.parentElement))
    .map(e => e.outerHTML.slice(0, 120));
}"""


@dataclass
class Layout:
    width: int
    scroll_width: int  # document.documentElement.scrollWidth: more than width means the page scrolls sideways
    too_wide: list  # the outermost elements that stick out past the right edge
    plotly: list  # (section id, number of text elements, overlapping pairs) per plotly figure


def layouts(index: Path, widths=WIDTHS, screenshots: Path | None = None) -> list[Layout]:
    """Open ``index`` afresh at each width (as a device of that width would) and measure its layout."""
    from playwright.sync_api import sync_playwright

    found = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            for width in widths:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(index.resolve().as_uri(), wait_until="load")
                page.wait_for_function("Array.from(document.images).every(i => i.complete) && Array.from("
                                       "document.querySelectorAll('.plotly-graph-div')).every(d => d.querySelector('svg.main-svg'))",
                                       timeout=30_000)
                too_wide = page.evaluate(_TOO_WIDE)
                found.append(Layout(width, page.evaluate("document.documentElement.scrollWidth"), too_wide,
                                    page.evaluate(_PLOTLY_OVERLAPS)))
                if screenshots is not None:
                    page.screenshot(path=str(screenshots / f"report-{width}.png"), full_page=True)
                page.close()
        finally:
            browser.close()
    return found


def assert_loaded_cleanly(load: PageLoad, n_png: int, n_plotly: int) -> None:
    assert load.console_errors == [] and load.page_errors == [] and load.failed_requests == []
    assert len(load.images) == n_png and all(width > 0 for _, width in load.images), load.images
    assert load.plotly_divs == n_plotly and load.plotly_drawn == n_plotly


def test_a_small_report_renders_in_chromium(tmp_path, fake_experiment):
    from losslab.experiments import run_experiment
    from losslab.report import write_report

    index = write_report([run_experiment(fake_experiment, quick=True)], tmp_path / "r", seed=0, quick=True, version="test")
    load = open_in_chromium(index)
    assert_loaded_cleanly(load, n_png=1, n_plotly=1)
    assert "<script>alert('x')</script>" in load.text  # shown as text, not run


def test_a_broken_figure_is_caught(tmp_path, fake_experiment):
    from losslab.experiments import run_experiment
    from losslab.report import write_report

    index = write_report([run_experiment(fake_experiment, quick=True)], tmp_path / "r", seed=0, quick=True, version="test")
    (index.parent / "figures" / "fake-line.png").unlink()
    (index.parent / "plotly.min.js").unlink()
    load = open_in_chromium(index)
    assert load.failed_requests and [w for _, w in load.images] == [0] and load.plotly_drawn == 0
    assert load.page_errors  # "Plotly is not defined"


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "report"
    proc = subprocess.run([sys.executable, "-m", "losslab.cli", "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_quick_demo_report_renders_every_figure_in_chromium(quick_demo):
    out, _ = quick_demo
    payload = json.loads((out / "results.json").read_text())
    figures = [f for e in payload["experiments"] for f in e["figures"]]
    n_png = sum(f["kind"] == "png" for f in figures)
    n_plotly = sum(f["kind"] == "plotly" for f in figures)
    assert [e["name"] for e in payload["experiments"]] == list(NAMES) and n_png >= len(NAMES) and n_plotly >= 2
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(
        f"{e['name']}-{f['name']}.png" for e in payload["experiments"] for f in e["figures"] if f["kind"] == "png")
    load = open_in_chromium(out / "index.html")
    assert_loaded_cleanly(load, n_png=n_png, n_plotly=n_plotly)
    for e in payload["experiments"]:
        assert e["title"] in load.text
        for c in e["claims"]:
            assert c["statement"] in load.text


def test_quick_demo_prints_every_claim_and_where_the_report_is(quick_demo):
    out, proc = quick_demo
    payload = json.loads((out / "results.json").read_text())
    assert f"{payload['claims_held']} of {payload['claims_total']} claims hold; wrote {out / 'index.html'}" in " ".join(proc.stdout.split())
    assert payload["claims_total"] >= 26 and payload["quick"] is True and payload["seed"] == 0


def test_quick_demo_numbers_equal_in_process_runs_at_the_same_seed(quick_demo, quick_result):
    """Same seed, same numbers: the demo's subprocess and this process agree bit for bit, for every experiment."""
    out, _ = quick_demo
    payload = json.loads((out / "results.json").read_text())
    for e in payload["experiments"]:
        mine = json.loads(json.dumps(quick_result(e["name"]).to_dict()))
        assert e["numbers"] == mine["numbers"], e["name"]
        assert [c["holds"] for c in e["claims"]] == [c["holds"] for c in mine["claims"]], e["name"]


def test_the_quick_demo_report_fits_every_width_and_its_plotly_text_does_not_collide(quick_demo):
    out, _ = quick_demo
    for layout in layouts(out / "index.html"):
        assert layout.scroll_width <= layout.width, (layout.width, layout.scroll_width, layout.too_wide)
        assert [(section, overlaps) for section, _, overlaps in layout.plotly if overlaps] == [], layout.width


LAYOUT_EXPERIMENTS = ("linear-in-parameters", "underfitting", "two-layer", "gd-vs-sgd")  # wide tables, both figure kinds


@pytest.fixture(scope="module")
def layout_report(tmp_path_factory, quick_result):
    """A quick report of a few experiments (two of them with plotly figures), written once for this module."""
    from losslab.report import write_report

    out = tmp_path_factory.mktemp("layout") / "report"
    return write_report([quick_result(n) for n in LAYOUT_EXPERIMENTS], out, seed=0, quick=True, version="test")


def test_the_page_fits_phone_tablet_and_desktop_and_plotly_text_does_not_collide(layout_report):
    found = layouts(layout_report)
    for layout in found:
        assert layout.scroll_width <= layout.width, (layout.width, layout.scroll_width, layout.too_wide)
        assert layout.too_wide == []
        for section, n_texts, overlaps in layout.plotly:
            assert n_texts >= 3 and overlaps == [], (layout.width, section, overlaps)
    assert [[section for section, _, _ in layout.plotly] for layout in found] == [["linear-in-parameters", "two-layer"]] * 3
