"""The web app in a real headless Chromium (Debian's `chromium`, driven by Playwright).

Run with ``python -m pytest -m browser``. The server runs in a subprocess, as a user runs
it; the test moves a slider, rates two sets blind, restarts the server and checks that the
answers and the MOS survived. With ``LATENTDIRS_SCREENSHOTS=docs/images`` it also writes
the README's screenshots (explorer.png, rating.png).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("LATENTDIRS_CHROMIUM", "/usr/bin/chromium")
SIZES = {"setA": 4, "setB": 2}  # directions per set
NAMES = ("size", "hue", "left-right", "background", "up-down", "brightness")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    import latentdirs
    gen = latentdirs.load_generator("planted")
    root = tmp_path_factory.mktemp("runs")
    paths = []
    for name, seed in (("setA", 0), ("setB", 1)):
        ds = latentdirs.DirectionSet.random(gen.latent_dim, SIZES[name], seed=seed)
        ds.meta["generator"] = gen.describe()
        ds.save(root / name / "directions")
        paths.append(root / name)
    return paths


class Server:
    """``latentdirs serve`` in a subprocess on a free loopback port (``--port 0``)."""

    def __init__(self, run_dirs, db: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "latentdirs.cli", "serve", *map(str, run_dirs), "--port", "0", "--db", str(db),
             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        deadline, seen = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if match:
                self.url = match.group(1)
                return
        self.stop()
        raise RuntimeError("the server did not start:\n" + "".join(seen))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def _page(browser, errors: list):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return page


def _wait_loaded(image, timeout: float = 60) -> None:
    """Until an <img> has finished loading a picture (polled: the pages forbid eval, so no wait_for_function)."""
    deadline = time.monotonic() + timeout
    while not image.evaluate("img => img.complete && img.naturalWidth > 0"):
        assert time.monotonic() < deadline, "image did not load"
        time.sleep(0.05)


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("LATENTDIRS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


def _rate(page, url: str, assessor: str, verdict, count: int | None = None) -> None:
    """Rate ``count`` directions (all when None); ``verdict(position) -> (q1, q2, category, name)``."""
    from playwright.sync_api import expect
    page.goto(f"{url}/rate")
    page.fill("#assessor", assessor)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#session")).to_be_visible()
    answered = 0
    while count is None or answered < count:
        if page.locator("#done").is_visible():
            break
        title = page.locator("#progress-title").inner_text()
        position = int(re.search(r"Direction (\d+) of", title).group(1)) - 1
        expect(page.locator("#rating-chart")).to_have_attribute("src", re.compile(rf"position={position}$"))
        _wait_loaded(page.locator("#rating-chart"))
        q1, q2, category, name = verdict(position)
        page.check(f"input[name=consistent][value={'yes' if q1 else 'no'}]")
        page.check(f"input[name=single_factor][value={'yes' if q2 else 'no'}]")
        if category:
            page.check(f"input[name=category][value={category}]")
        page.fill("#direction-name", name)
        if position == 0 and assessor == "alice":
            _screenshot(page, "rating.png")
        with page.expect_response("**/api/rating/answer") as response:
            page.click("#submit")
        answered += 1
        # once the answer is stored, the next direction (or the end) appears
        if response.value.json()["next"] is None:
            expect(page.locator("#done")).to_be_visible()
        else:
            expect(page.locator("#progress-title")).not_to_have_text(title)


def test_explorer_rating_and_restart(browser, run_dirs, tmp_path):
    from playwright.sync_api import expect
    from latentdirs.web import ratings
    db = tmp_path / "answers.sqlite"
    errors: list[str] = []
    server = Server(run_dirs, db)
    try:
        page = _page(browser, errors)
        # -- explorer: a slider changes the image -------------------------------------
        page.goto(server.url + "/")
        image = page.locator("#image")
        expect(image).to_have_attribute("data-url", re.compile(r"shifts=$"))
        before_url, before_src = image.get_attribute("data-url"), image.get_attribute("src")
        assert image.evaluate("img => img.complete && img.naturalWidth") > 0
        page.locator("#sliders input[type=range]").nth(1).fill("6")
        expect(image).to_have_attribute("data-url", re.compile(r"shifts=1%3A6$"))
        after_url = image.get_attribute("data-url")
        assert image.get_attribute("src") != before_src
        before_png = page.request.get(server.url + before_url).body()
        after_png = page.request.get(server.url + after_url).body()
        assert before_png[:8] == b"\x89PNG\r\n\x1a\n" and before_png != after_png
        assert "shifts=1%3A6" in page.locator("#download").get_attribute("href")
        expect(page.locator("#chart-title")).to_contain_text("#1")
        page.locator("#sliders input[type=range]").nth(0).fill("-4")  # two sliders at once
        expect(image).to_have_attribute("data-url", re.compile(r"shifts=0%3A-4%2C1%3A6$"))
        expect(page.locator("#caption")).to_contain_text("#0 -4")
        _wait_loaded(page.locator("#chart"))
        _wait_loaded(image)
        _screenshot(page, "explorer.png")

        # -- rating: alice rates everything, bob stops halfway --------------------------
        items = [(name, k) for name, size in SIZES.items() for k in range(size)]
        alice_order = ratings.rating_order(items, "alice")

        def alice(position):  # interpretable exactly for setA's directions
            set_name, k = alice_order[position]
            return True, set_name == "setA", "geometry" if set_name == "setA" else None, NAMES[position]

        _rate(page, server.url, "alice", alice)
        expect(page.locator("#done")).to_be_visible()
        _rate(page, server.url, "bob", lambda position: (True, True, "colour", ""), count=2)
        assert len(ratings.RatingStore(db).answers()) == len(items) + 2
        page.wait_for_load_state("networkidle")  # let the prefetched chart arrive before the server goes
        page.close()
    finally:
        server.stop()

    # -- a new server process: nothing lost ---------------------------------------------
    server = Server(run_dirs, db)
    try:
        page = _page(browser, errors)
        page.goto(server.url + "/results")
        rows = page.locator("#mos-table tbody tr")
        expect(rows).to_have_count(2)
        table = {row.locator("td").nth(0).inner_text(): row.locator("td").nth(1).inner_text()
                 for row in rows.all()}
        # alice: 1 for setA's directions, 0 for setB's; bob: 1 for his first two, whichever sets they are
        bob_first = [set_name for set_name, _ in ratings.rating_order(items, "bob")[:2]]
        expected = {name: (size * (name == "setA") + bob_first.count(name)) / (size + bob_first.count(name))
                    for name, size in SIZES.items()}
        assert table == {name: f"{mos:.3f}" for name, mos in expected.items()}
        expect(page.locator("#assessor-table tbody tr")).to_have_count(2)
        expect(page.locator("#assessor-table")).to_contain_text("alice")
        # bob resumes at his third direction
        page.goto(server.url + "/rate")
        page.fill("#assessor", "bob")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#progress-title")).to_have_text(f"Direction 3 of {len(items)}")
        expect(page.locator("#who")).to_contain_text(f"2 of {len(items)} answered")
        # alice is done; her stored answer comes back when she reviews
        page.goto(server.url + "/rate")
        page.fill("#assessor", "alice")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#done")).to_be_visible()
        page.click("#review")
        expect(page.locator("#direction-name")).to_have_value(NAMES[0])
        page.wait_for_load_state("networkidle")
        page.close()
    finally:
        server.stop()
    assert not errors, errors
