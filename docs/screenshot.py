"""Take the README's screenshot of a report: ``python docs/screenshot.py losslab-report docs/report.png``.

Opens ``REPORT/index.html`` from disk in headless Chromium (Debian's ``chromium``; Playwright from
the test extras drives it) and saves the top of the page, ``--height`` pixels tall.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a report folder written by losslab demo")
    parser.add_argument("png", type=Path, help="where to save the screenshot")
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--section", default=None, help="scroll to this experiment's section first (its name)")
    args = parser.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": args.height}, device_scale_factor=1)
        page.goto((args.report / "index.html").resolve().as_uri(), wait_until="load")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        if args.section:
            page.evaluate(f"document.getElementById({args.section!r}).scrollIntoView()")
        page.screenshot(path=str(args.png))
        browser.close()


if __name__ == "__main__":
    main()
