"""Take the README's screenshots of the web app (docs/images/explorer.png, rating.png).

Serves the given direction sets with ``latentdirs serve`` and drives Debian's Chromium with
Playwright (``pip install -e ".[browser]"``, ``apt-get install chromium``). The README's shots
(2026-12-06) are the W comparison's seed-0 LD and SeFa sets of the shipped ``shapes3d``, copied
to folders named after the methods (the served sets are named after their folders)::

    mkdir -p scratch/shots
    cp -r docs/compare/dcgan-w-w/ld-ortho/seed0/directions scratch/shots/ld-disentangle
    cp -r docs/compare/dcgan-w-w/sefa/seed0/directions scratch/shots/sefa
    python docs/screenshots.py scratch/shots/ld-disentangle scratch/shots/sefa --shifts 2,-1.5 --out docs/images
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def serve(run_dirs: list[str], db: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "latentdirs.cli", "serve", *run_dirs, "--port", "0",
                                "--db", str(db), "--threads", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if match:
            return process, match.group(1)
    raise RuntimeError("latentdirs serve did not start")


def settle(page, selector: str) -> None:
    """Until the <img> has loaded its picture (the pages' CSP forbids eval-based waits)."""
    deadline = time.monotonic() + 60
    while not page.locator(selector).evaluate("img => img.complete && img.naturalWidth > 0"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{selector} did not load")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", help="direction sets of one generator")
    parser.add_argument("--out", default="docs/images", help="folder of explorer.png and rating.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--shifts", default="4,-3", help="slider values of the first directions in the explorer shot")
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / ".screenshots.sqlite"
    process, url = serve(args.run_dirs, db)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url + "/")
            sliders = page.locator("#sliders input[type=range]")
            for i, value in enumerate(args.shifts.split(",")):
                sliders.nth(i).fill(value.strip())
            expect(page.locator("#image")).to_have_attribute("data-url", re.compile(r"shifts=.+$"))
            settle(page, "#chart")
            settle(page, "#image")
            page.screenshot(path=str(out / "explorer.png"))
            page.goto(url + "/rate")
            page.fill("#assessor", "screenshot")
            page.click("#login-form button[type=submit]")
            expect(page.locator("#session")).to_be_visible()
            settle(page, "#rating-chart")
            page.screenshot(path=str(out / "rating.png"))
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=20)
        for path in out.glob(".screenshots.sqlite*"):
            path.unlink()
    print(f"wrote {out / 'explorer.png'} and {out / 'rating.png'}")


if __name__ == "__main__":
    main()
