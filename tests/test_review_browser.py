"""The Review page in a real browser, driven with the keyboard (issue 17, item 1).

On a private copy of the demo (held-out set and the 1.0.0/1.1.0 audits; the copied
``audit.json`` names the copied manifest, so the corrections land beside the copy): set the
reviewer, open the targa → carrera queue, press R twice (relabel to the preset prediction,
carrera) and X once, and check the corrections file holds exactly those three rows. The
reviewer's name survives a reload of the page (cookie). Skipped when the demo store is not
built, or Chromium or playwright is missing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.browser

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from tests.review_copies import copy_demo  # noqa: E402
from tests.test_dashboard_browser import (  # noqa: E402 (skips without Chromium)
    assert_no_traceback,
    browser_tab,
    streamlit_server,
)

HEADER = ["path", "sha256", "old_label", "decision", "new_label", "reviewer", "reason", "time"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    try:
        return copy_demo(tmp_path_factory.mktemp("review"), extras=("explain",))
    except FileNotFoundError as exc:
        pytest.skip(f"demo not built ({exc}); python -m audits demo")


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store, _, _ = demo
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(store, log, wait_s=180) as url:
        yield url


@pytest.fixture(scope="module")
def tab(server: str) -> Iterator[object]:
    with browser_tab(1440, 1400, 180_000) as page:
        yield page


def open_review(tab: object, server: str, run_id: str) -> None:
    tab.goto(f"{server}/review?run={run_id}")
    tab.wait_for_selector(".ma-footer[data-page='review']")


def choose(tab: object, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` (typed into its search)."""
    box = tab.locator('[data-testid="stSelectbox"]', has_text=label).first
    box.click()
    tab.keyboard.type(option.split(" (")[0])
    tab.locator('[role="option"]', has_text=option).first.click()


def wait_pos(tab: object, pos: int) -> str:
    """Until the card shows queue position ``pos``; its image path."""
    card = tab.locator(f".rv-card[data-pos='{pos}'][data-why='confused: targa → carrera']")
    card.wait_for()
    return card.get_attribute("data-path")


def press(tab: object, key: str) -> None:
    tab.locator(".rv-card").first.click()  # focus the page, not a text field
    tab.keyboard.press(key)


def test_review_targa_carrera_with_the_keyboard(tab, server, demo) -> None:
    store, manifest, ids = demo
    file = manifest.with_name("manifest.corrections.csv")
    assert not file.exists()
    started = datetime.now(UTC).replace(microsecond=0)
    open_review(tab, server, ids["1.0.0"])
    field = tab.get_by_role("textbox", name="Reviewer")
    field.fill("Ana O'Neil")
    field.press("Enter")
    choose(tab, "Queue", "targa → carrera (88)")
    shown = [wait_pos(tab, 0)]
    assert tab.locator("text=Other versions").count() >= 1  # 1.1.0's prediction is shown
    for pos, key in ((1, "r"), (2, "r"), (3, "x")):
        press(tab, key)
        shown.append(wait_pos(tab, pos))
    assert_no_traceback(tab)
    tab.get_by_text("3 of 88 reviewed").wait_for()

    with file.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == HEADER
    body = [dict(zip(HEADER, r, strict=True)) for r in rows[1:]]
    assert len(body) == 3
    table = pd.read_parquet(store / ids["1.0.0"] / "predictions.parquet").set_index("path")
    assert [r["path"] for r in body] == shown[:3]
    assert [r["decision"] for r in body] == ["relabel", "relabel", "exclude"]
    assert [r["new_label"] for r in body] == ["carrera", "carrera", ""]
    for r in body:
        assert r["old_label"] == "targa" == table.loc[r["path"], "label"]
        assert r["sha256"] == table.loc[r["path"], "file_sha256"]
        assert r["reviewer"] == "Ana O'Neil"
        when = datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
        assert when.utcoffset().total_seconds() == 0 and r["time"].endswith("Z")
        assert started <= when <= datetime.now(UTC)


def test_reviewer_name_survives_a_reload(tab, server, demo) -> None:
    _, _, ids = demo
    open_review(tab, server, ids["1.0.0"])  # a new session: the name comes from the cookie
    assert tab.get_by_role("textbox", name="Reviewer").input_value() == "Ana O'Neil"


def test_grid_page_confirmed_with_enter(tab, server, demo) -> None:
    """Grid mode: tick one thumbnail, choose "excluded", Enter: that one excluded, the other
    47 of the page kept, in one append; the next page appears."""
    _, manifest, ids = demo
    file = manifest.with_name("manifest.corrections.csv")
    before = len(list(csv.reader(file.open())))
    open_review(tab, server, ids["1.0.0"])
    choose(tab, "Queue", "targa → carrera (88)")
    tab.get_by_text("Grid", exact=True).first.click()
    tab.locator(".rv-grid[data-page='0'][data-n='48']").wait_for()
    cell = tab.locator("[class*='st-key-rv_cell_']").nth(4)
    ticked = cell.locator("img").get_attribute("alt")
    cell.locator("label").click()
    tab.get_by_text("excluded", exact=True).click()
    tab.wait_for_timeout(1500)  # the page settles before the key (as a reviewer's would)
    cell.locator("label").press("Enter")
    tab.locator(".rv-grid[data-page='1']").wait_for()
    assert_no_traceback(tab)
    rows = [dict(zip(HEADER, r, strict=True)) for r in list(csv.reader(file.open()))[before:]]
    assert len(rows) == 48
    assert [r["path"] for r in rows if r["decision"] == "exclude"] == [ticked]
    assert sum(r["decision"] == "keep" for r in rows) == 47
    assert {r["old_label"] for r in rows} == {"targa"}
