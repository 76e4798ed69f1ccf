"""The dashboard in a real browser: ``streamlit run`` driven by Debian Chromium via playwright.

Clicks through every page from the sidebar, checks the key elements and that no traceback
reaches the page, clicks a confusion-matrix cell, changes the run in the picker (the URL
follows), and saves a screenshot per page to ``bench/out/screenshots/`` (or
$DASHBOARD_SCREENSHOTS). Uses the demo store when it has been built, else a small store built
here. Skipped when Chromium or playwright is missing (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
PAGES = [  # (sidebar label, footer key, text that must show)
    ("Overview", "overview", "In plain words"),
    ("Classes", "classes", "Precision, recall and F1 per class"),
    ("Confusion", "confusion", "Images behind a cell"),
    ("Failures", "failures", "misclassified"),
    ("Drift", "drift", "Drift"),
    ("Compare", "compare", "against"),
    ("Integrity & claims", "integrity", "Leakage"),
    ("Export", "export", "Exports of run"),
]

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).is_file():
    pytest.skip(
        "Debian chromium is not installed (apt-get install -y chromium)", allow_module_level=True
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dashboard.catalog import scan

    demo = Path(os.environ.get("DASHBOARD_DEMO_STORE", REPO / "audit-store"))
    if demo.is_dir() and scan(demo).audits:
        return demo
    from tests.test_dashboard_apptest import build_small_store

    return build_small_store(tmp_path_factory.mktemp("browser-store"))


@contextmanager
def browser_tab(width: int, height: int, timeout_ms: int = 120_000) -> Iterator[object]:
    """A page of headless Debian Chromium (``timeout_ms``: a cold start on a loaded machine
    is slow); the browser closes on leaving."""
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


@contextmanager
def streamlit_server(store: Path, log: Path, wait_s: float = 90) -> Iterator[str]:
    """``streamlit run`` on ``store`` at a free port; its URL; always stopped."""
    port = free_port()
    env = dict(os.environ, AUDIT_STORE=str(store))
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with streamlit_server(store, tmp_path_factory.mktemp("streamlit") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS", REPO / "bench" / "out" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    with browser_tab(1440, 1800, 90_000) as tab:
        tab.goto(server + "/")
        wait_page(tab, "overview")
        yield tab


def wait_page(tab: object, key: str) -> None:
    """Until the page's footer is drawn (the script ran to the end) and its images loaded."""
    tab.wait_for_selector(f".ma-footer[data-page='{key}']")
    tab.wait_for_function("() => [...document.images].every(i => i.complete)")
    tab.wait_for_timeout(800)  # let plotly finish drawing before the screenshot


def assert_no_traceback(tab: object) -> None:
    assert tab.locator('[data-testid="stException"]').count() == 0
    assert "Traceback (most recent call last)" not in tab.inner_text("body")


def test_every_page_from_the_sidebar(page: object, shots: Path) -> None:
    for label, key, needle in PAGES:
        page.locator('[data-testid="stSidebarNav"]').get_by_text(label, exact=True).click()
        wait_page(page, key)
        assert page.locator("h1").first.inner_text().strip() == label
        assert needle in page.inner_text("[data-testid='stMain']")
        assert_no_traceback(page)
        assert "run=" in page.url  # the selection travels with every page's URL
        if key in ("classes", "confusion", "failures"):
            assert page.locator(".js-plotly-plot").count() >= 1
        page.screenshot(path=str(shots / f"{key}.png"), full_page=True)


def test_clicking_a_confusion_cell_selects_it(page: object, shots: Path) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Confusion", exact=True).click()
    wait_page(page, "confusion")
    plot = page.locator(".js-plotly-plot").first
    box = plot.locator(".nsewdrag").first.bounding_box()
    ys = plot.locator(".ytick text")
    xs = plot.locator(".xtick text")
    n = ys.count()
    assert n >= 2 and xs.count() == n
    row, col = n - 1, 0  # bottom-left cell
    x = box["x"] + box["width"] * (col + 0.5) / n
    y = box["y"] + box["height"] * (row + 0.5) / n

    def nearest(ticks: object, axis: str, value: float) -> str:
        centres = []
        for i in range(ticks.count()):
            b = ticks.nth(i).bounding_box()
            centres.append(
                (
                    abs(b[axis] + b["width" if axis == "x" else "height"] / 2 - value),
                    ticks.nth(i).text_content(),
                )
            )
        return min(centres)[1]

    true, pred = nearest(ys, "y", y), nearest(xs, "x", x)
    page.mouse.click(x, y)
    page.wait_for_function(
        "([t, p]) => document.body.innerText.includes(`images of ${t} predicted as ${p}`)",
        arg=[true, pred],
    )
    wait_page(page, "confusion")
    assert_no_traceback(page)
    page.screenshot(path=str(shots / "confusion-cell.png"), full_page=True)


def test_picking_another_run_updates_the_url(page: object) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Overview", exact=True).click()
    wait_page(page, "overview")
    before = page.url
    version = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1)
    version.click()
    options = page.locator('[role="option"]')
    if options.count() < 2:
        pytest.skip("the store has one version only")
    current = re.search(r"run=([^&]+)", before).group(1)
    target = next(
        options.nth(i) for i in range(options.count()) if options.nth(i).inner_text() not in current
    )
    target.click()
    page.wait_for_function("(old) => location.href !== old", arg=before)
    wait_page(page, "overview")
    assert "run=" in page.url and page.url != before
    assert_no_traceback(page)


def test_export_download_is_made_on_click(page: object, tmp_path: Path) -> None:
    import json

    page.locator('[data-testid="stSidebarNav"]').get_by_text("Export", exact=True).click()
    wait_page(page, "export")
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name=re.compile("Download JSON")).click()
    file = tmp_path / info.value.suggested_filename
    info.value.save_as(file)
    assert file.name.endswith("-audit.json")
    doc = json.loads(file.read_text(encoding="utf-8"))
    assert doc  # the export's own tests check its content; here: it downloads and parses
    assert_no_traceback(page)
