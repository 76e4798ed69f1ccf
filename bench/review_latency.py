"""Review page latency in a real browser: key press to the next image (single) or page (grid).

On a private copy of the demo (``tests/review_copies.py``: the held-out set and the 1.0.0 and
1.1.0 audits, the copy's ``audit.json`` naming the copied manifest), ``streamlit run`` is
driven by Debian Chromium (playwright), warm (after ``--warmup`` presses):

* single: the targa → carrera queue; K (keep) until the card shows the next image and its
  image has loaded;
* grid: the least-confident queue, 48 thumbnails a page; Enter (confirm page) until the next
  page's 48 thumbnails have loaded.

Prints the median and p95 of each; target < 300 ms. ``--write`` replaces the "## Review queue
(issue 17)" section of bench/RESULTS.md. Run from the repository root:
``python bench/review_latency.py [--presses 30] [--write]``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, add_write, load_average, make_parser, write_section  # noqa: E402
from bench.dashboard import machine  # noqa: E402

SECTION = "## Review queue (issue 17)"
BUDGET_MS = 300.0
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
IMAGES_LOADED = "() => [...document.images].every(i => i.complete)"
#: Streamlit shows its status widget only while a script (or fragment) runs.
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"] *')"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _choose(tab, label: str, option: str) -> None:
    tab.locator('[data-testid="stSelectbox"]', has_text=label).first.click()
    tab.keyboard.type(option.split(" (")[0])
    tab.locator('[role="option"]', has_text=option).first.click()


def single(tab, presses: int, warmup: int) -> list[float]:
    """Milliseconds from K to the next card with its image loaded."""
    _choose(tab, "Queue", "targa → carrera (88)")
    sel = ".rv-card[data-pos='{}'][data-why='confused: targa → carrera']"
    tab.locator(sel.format(0)).wait_for()
    out = []
    for i in range(warmup + presses):
        tab.wait_for_function(IDLE)
        tab.locator(".rv-card").first.click()
        t0 = time.perf_counter()
        tab.keyboard.press("k")
        tab.locator(sel.format(i + 1)).wait_for()
        tab.wait_for_function(IMAGES_LOADED, polling="raf")
        if i >= warmup:
            out.append((time.perf_counter() - t0) * 1000)
    return out


def grid(tab, presses: int, warmup: int) -> list[float]:
    """Milliseconds from Enter (confirm page) to the next 48 thumbnails loaded."""
    _choose(tab, "Queue", "Least confident in the given label")
    tab.get_by_text("Grid", exact=True).first.click()
    tab.locator(".rv-grid[data-page='0'][data-n='48']").wait_for()
    tab.wait_for_function(IMAGES_LOADED)
    tab.wait_for_timeout(1000)  # the mode switch settles (not measured)
    out = []
    for i in range(warmup + presses):
        tab.wait_for_function(IDLE)
        # A reviewer's focus is in the page of thumbnails (a tick, or a click on an image).
        tab.locator("[class*='st-key-rv_cell_'] img").first.click()
        t0 = time.perf_counter()
        tab.keyboard.press("Enter")
        try:
            tab.locator(f".rv-grid[data-page='{i + 1}']").wait_for(state="attached", timeout=20000)
        except Exception:
            print(
                "at",
                tab.locator(".rv-grid").first.get_attribute("data-page"),
                i,
                tab.evaluate(
                    """() => [!!window.__maReviewKey, !!document.getElementById('ma-review-keys'), document.querySelectorAll('.st-key-rv_confirm button').length, String(document.activeElement && document.activeElement.outerHTML.slice(0,120))]"""
                ),
                file=sys.stderr,
            )
            raise
        tab.wait_for_function(IMAGES_LOADED, polling="raf")
        if i >= warmup:
            out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(presses: int, warmup: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    from tests.review_copies import copy_demo
    from tests.test_dashboard_browser import CHROMIUM, streamlit_server

    with tempfile.TemporaryDirectory(prefix="review-bench-") as tmp:
        store, _, ids = copy_demo(Path(tmp))
        with (
            streamlit_server(store, Path(tmp) / "server.log", wait_s=180) as url,
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            tab = browser.new_page(viewport={"width": 1440, "height": 1400})
            tab.set_default_timeout(120_000)
            tab.goto(f"{url}/review?run={ids['1.0.0']}")
            tab.wait_for_selector(".ma-footer[data-page='review']")
            field = tab.get_by_role("textbox", name="Reviewer")
            field.fill("bench")
            field.press("Enter")
            try:
                times = {"single": single(tab, presses, warmup)}
                times["grid"] = grid(tab, min(presses, 4), 1)  # 5 pages of 48 of carrera
            except Exception:
                shot = REPO / "bench" / "out" / "review_latency_failure.png"
                tab.screenshot(path=str(shot), full_page=True)
                print(f"failed; the page is in {shot}", file=sys.stderr)
                raise
            browser.close()
    return times


def table(times: dict[str, list[float]]) -> str:
    lines = [
        SECTION,
        "",
        f"Machine: {machine()}; load average {load_average():.1f} while measured.",
        "",
        "| step | presses | median | p95 | target |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    what = {"single": "next image (single, K)", "grid": "next page of 48 (grid, Enter)"}
    for key, values in times.items():
        lines.append(
            f"| {what[key]} | {len(values)} | {statistics.median(values):.0f} ms | "
            f"{p95(values):.0f} ms | < {BUDGET_MS:.0f} ms |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--presses", type=int, default=30, help="measured presses per mode")
    parser.add_argument("--warmup", type=int, default=3, help="presses before measuring")
    add_write(parser, "replace this section of bench/RESULTS.md")
    args = parser.parse_args()
    text = table(measure(args.presses, args.warmup))
    print(text)
    if args.write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
