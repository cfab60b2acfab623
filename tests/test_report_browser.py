"""The report in a real browser: headless Chromium (Debian's ``chromium``, installed by ``.ci/run``) opens
index.html from disk, and every figure must load with no console error, no page error, no failed request.
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
    assert len(payload["experiments"]) == 13 and n_png >= 13 and n_plotly >= 2
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
