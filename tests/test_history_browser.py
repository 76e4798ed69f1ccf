"""The History page in a real browser: the heatmap draws, the gates show, and a pair of
versions opens in Compare."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_dashboard_browser import (
    assert_no_traceback,
    browser_tab,
    streamlit_server,
    wait_page,
)

pytestmark = pytest.mark.browser
HEATMAP = ".js-plotly-plot .heatmaplayer image"


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    from fixtures.synthetic_history import write_history

    store = tmp_path_factory.mktemp("history-browser") / "store"
    # Every consecutive pair compared, so the default pair (the last two) has a comparison.
    folders = write_history(store, n_runs=6, n_classes=7, n_rows=200, n_comparisons=5, seed=4)
    return store, folders


@pytest.fixture(scope="module")
def tab(family, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    store, _ = family
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(store, log) as url, browser_tab(1440, 1800) as page:
        page.goto(url + "/")
        wait_page(page, "overview")
        yield page


def test_history_page_draws_and_opens_a_pair_in_compare(tab, family) -> None:
    tab.locator('[data-testid="stSidebarNav"]').get_by_text("History", exact=True).click()
    wait_page(tab, "history")
    tab.wait_for_selector(HEATMAP, state="visible")
    assert_no_traceback(tab)
    main = tab.inner_text("[data-testid='stMain']")
    assert "6 version(s) on held-out set" in main
    assert "Release gate between consecutive versions" in main
    assert "Stored comparison:" in main  # the default pair: 1.0.4 → 1.0.5, compared
    tab.get_by_role("button", name="Open in Compare").click()
    wait_page(tab, "compare")
    assert tab.locator("h1").first.inner_text().strip() == "Compare"
    assert "1.0.5 against 1.0.4" in tab.inner_text("[data-testid='stMain']")
    assert_no_traceback(tab)
