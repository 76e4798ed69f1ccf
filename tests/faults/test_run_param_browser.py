"""A ``?run=`` link cannot put a link (or any Markdown) on the page (issue 14, found 8).

``streamlit run`` on a one-run synthetic store, driven by Debian Chromium via playwright (as in
``tests/test_dashboard_browser.py``). The hostile value closes the code span the warning put it
in and adds a Markdown link; the page must show it as text and hold no anchor to its target.
Skipped when Chromium or playwright is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
PAYLOADS = [
    "x` [phish](https://evil.example) `",
    "x [phish](https://evil.example) https://evil.example www.evil.example :red[boo]",
]

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).is_file():
    pytest.skip(
        "Debian chromium is not installed (apt-get install -y chromium)", allow_module_level=True
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run`` over a store with one small synthetic audit; always stopped."""
    from fixtures.synthetic_store import write_synthetic_run

    store = tmp_path_factory.mktemp("run-param") / "store"
    write_synthetic_run(store, 4, 120, 0, version="1.0")
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = dict(os.environ, AUDIT_STORE=str(store))
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
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
def tab(server: str) -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1200})
        page.set_default_timeout(180_000)  # a cold start on a loaded machine is slow
        yield page
        browser.close()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_run_parameter_renders_as_text(tab: object, server: str, payload: str) -> None:
    tab.goto(f"{server}/?run={urllib.parse.quote(payload, safe='')}")
    tab.wait_for_selector(".ma-footer[data-page='overview']")
    alert = tab.locator('[data-testid="stAlert"]', has_text="The link names run").first
    alert.wait_for()
    assert tab.locator('a[href*="evil.example"]').count() == 0
    assert "[phish](https://evil.example)" in alert.inner_text()  # shown as typed
    assert "evil.example" not in "".join(
        tab.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    )
