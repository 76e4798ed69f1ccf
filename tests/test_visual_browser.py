"""Visual checks in a real browser (Debian Chromium via playwright), measured from element boxes.

- the "What was audited" cards on Overview: at 1100, 1440 and 1920 px no label or value runs
  out of its card, and the cards do not overlap (a long data path once ran over the Audit card);
- the Failures page's heat-map panels are wide enough to read (not ~90 px).

Uses the server and store fixtures of ``test_dashboard_browser`` (the demo store when built).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.test_dashboard_browser import CHROMIUM, FLAGS, playwright_api, server, store, wait_page

pytestmark = pytest.mark.browser
__all__ = ["server", "store"]  # fixtures used by name

_BOXES = """() => [...document.querySelectorAll('.ma-kv')].map(kv => {
  const col = kv.closest('[data-testid="stColumn"]').getBoundingClientRect();
  const parts = [...kv.querySelectorAll('dt, dd, code')].map(e => e.getBoundingClientRect());
  return {left: col.left, right: col.right, top: col.top, bottom: col.bottom,
          overflow: Math.max(0, ...parts.map(r => r.right - col.right))};
})"""


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _overview(browser: object, server: str, width: int) -> object:
    tab = browser.new_page(viewport={"width": width, "height": 1400})
    tab.set_default_timeout(120_000)
    tab.goto(server + "/")
    wait_page(tab, "overview")
    # The style layer arrives with the page script: measure once it applies.
    tab.wait_for_function(
        "() => document.querySelectorAll('.ma-kv').length >= 3 && "
        "getComputedStyle(document.querySelector('.ma-kv')).display === 'grid'"
    )
    return tab


@pytest.mark.parametrize("width", [1100, 1440, 1920])
def test_what_was_audited_cards_do_not_overlap(browser: object, server: str, width: int) -> None:
    tab = _overview(browser, server, width)
    try:
        cards = tab.evaluate(_BOXES)[:3]
    finally:
        tab.close()
    assert len(cards) == 3
    for card in cards:
        assert card["overflow"] <= 1, f"a value runs {card['overflow']:.0f}px out of its card"
    for a, b in zip(cards, cards[1:], strict=False):
        assert a["right"] <= b["left"] + 1, "cards overlap"


def test_failure_heatmaps_are_readable_and_open_enlarged(browser: object, server: str) -> None:
    tab = browser.new_page(viewport={"width": 1440, "height": 1600})
    tab.set_default_timeout(120_000)
    try:
        tab.goto(server + "/failures")
        wait_page(tab, "failures")
        enlarge = tab.get_by_role("button", name="Enlarge")
        if enlarge.count() == 0:
            pytest.skip("this store has no Grad-CAM overlays")
        strips = tab.evaluate(
            "() => [...document.querySelectorAll('[data-testid=stMain] img')]"
            ".map(i => i.getBoundingClientRect().width)"
        )
        # An overlay strip holds three panels: each must be well over the old ~90 px.
        assert strips and min(strips) / 3 >= 140
        enlarge.first.click()
        tab.wait_for_selector('[role="dialog"] img')
        dialog = tab.locator('[role="dialog"]')
        assert dialog.get_by_text("Heat-map opacity").count() == 1
        panels = tab.evaluate(
            "() => [...document.querySelectorAll('[role=dialog] img')]"
            ".map(i => i.getBoundingClientRect().width)"
        )
        assert len(panels) == 3 and min(panels) >= 250
        assert "why the model said" in dialog.inner_text()
    finally:
        tab.close()


def test_first_pdf_build_shows_its_progress(browser: object, server: str) -> None:
    tab = browser.new_page(viewport={"width": 1440, "height": 1200})
    tab.set_default_timeout(240_000)  # the PDF takes seconds, minutes on a loaded machine
    try:
        tab.goto(server + "/export")
        wait_page(tab, "export")
        tab.get_by_role("button", name="Make the PDF").click()
        # The progress shows at once, long before the file is ready.
        tab.wait_for_selector("text=Making the PDF report", timeout=15_000)
        assert tab.get_by_text("drawing the charts and laying out the pages").count() == 1
        tab.get_by_role("button", name="Download PDF").wait_for()
    finally:
        tab.close()
