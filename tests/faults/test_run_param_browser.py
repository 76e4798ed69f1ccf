"""A ``?run=`` link cannot put a link (or any Markdown) on the page (issue 14, found 8).

``streamlit run`` on a one-run synthetic store, driven by Debian Chromium via playwright (as in
``tests/test_dashboard_browser.py``). The hostile value closes the code span the warning put it
in and adds a Markdown link; the page must show it as text and hold no anchor to its target.
Skipped when Chromium or playwright is missing.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.browser

PAYLOADS = [
    "x` [phish](https://evil.example) `",
    "x [phish](https://evil.example) https://evil.example www.evil.example :red[boo]",
]

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from tests.test_dashboard_browser import (  # noqa: E402 (skips without Chromium)
    browser_tab,
    streamlit_server,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run`` over a store with one small synthetic audit; always stopped."""
    from fixtures.synthetic_store import write_synthetic_run

    store = tmp_path_factory.mktemp("run-param") / "store"
    write_synthetic_run(store, 4, 120, 0, version="1.0")
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(store, log, wait_s=180) as url:
        yield url


@pytest.fixture(scope="module")
def tab(server: str) -> Iterator[object]:
    with browser_tab(1280, 1200, 180_000) as page:
        yield page


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
