"""Per-page render times of the dashboard on a 250-class x 50,000-prediction store.

Builds the store with ``fixtures.synthetic_store.write_synthetic_store`` (the audit run plus a
previous version, integrity and explain results, a drift run and the comparison) in a temp
folder, then times every page with Streamlit's AppTest, which runs the real scripts headless:

* cold: all Streamlit caches cleared first, so the page pays for its own reads;
* warm: the same page again (what a user sees after the first load).

``--browser`` also times Debian Chromium (playwright) from the sidebar click to the page's
last element drawn, warm. ``--write`` replaces the "## Dashboard (issue 8)" section of
bench/RESULTS.md. Run from the repository root: ``python bench/dashboard.py [--write]``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO,
    add_repeats,
    add_write,
    cpu_name,
    dashboard_page,
    make_parser,
    memory_gib,
    open_when_up,
    timed,
    timings,
    write_section,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

PAGES = [
    ("overview", "Overview"), ("classes", "Classes"), ("confusion", "Confusion"), ("failures", "Failures"),
    ("drift", "Drift"), ("compare", "Compare"), ("integrity", "Integrity & claims"), ("export", "Export"),
]  # fmt: skip
SECTION = "## Dashboard (issue 8)"
BUDGET_S = 3.0


def machine() -> str:
    """CPU, cores, memory, OS and Python, for the section's heading."""
    gib = memory_gib()
    mem = f", {gib:.0f} GiB RAM" if gib is not None else ""
    return (
        f"{cpu_name('unknown CPU')}, {os.cpu_count()} cores{mem}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def time_apptest(store: Path, repeats: int) -> tuple[float, dict[str, tuple[float, float]]]:
    """(first app load incl. imports, {page: (cold s, warm s median)})."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["AUDIT_STORE"] = str(store)
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=300)
    first = timed(at.run)
    assert not at.exception, [e.value for e in at.exception]
    out = {}
    for key, _ in PAGES:
        st.cache_data.clear()
        st.cache_resource.clear()
        at.switch_page(f"dashboard/pages/{key}.py")
        cold = timed(at.run)
        problems = [e.value for e in at.exception] + [e.value for e in at.error]
        if problems:
            raise SystemExit(f"{key}: {problems}")
        out[key] = (cold, statistics.median(timings(at.run, repeats)))
    return first, out


def time_browser(store: Path) -> dict[str, float]:
    """Warm click-to-drawn times in Debian Chromium (second pass over the pages)."""
    with dashboard_page(store) as (page, url, _proc):
        return _click_through(page, url)


def _click_through(page: Page, url: str) -> dict[str, float]:
    """Open the app, then click every page twice in the sidebar; the second pass is timed."""
    open_when_up(page, url + "/")
    page.wait_for_selector(".ma-footer[data-page='overview']")
    out: dict[str, float] = {}
    for rnd in range(2):  # the first pass fills the caches; the second is timed
        for key, label in [*PAGES[1:], PAGES[0]]:
            t0 = time.perf_counter()
            page.locator('[data-testid="stSidebarNav"]').get_by_text(label, exact=True).click()
            page.wait_for_selector(f".ma-footer[data-page='{key}']")
            page.wait_for_function("() => [...document.images].every(i => i.complete)")
            if rnd:
                out[key] = time.perf_counter() - t0
    return out


def table(
    first: float, times: dict[str, tuple[float, float]], browser: dict[str, float] | None
) -> str:
    """The markdown table of page times and the budget verdict."""
    head = "| page | cold (caches cleared) | warm (cached reads) |" + (
        " browser, warm |" if browser else ""
    )
    sep = "| --- | ---: | ---: |" + (" ---: |" if browser else "")
    rows = [head, sep]
    for key, label in PAGES:
        cold, warm = times[key]
        row = f"| {label} | {cold:.2f} s | {warm:.2f} s |"
        if browser:
            row += f" {browser.get(key, float('nan')):.2f} s |"
        rows.append(row)
    worst = max(w for _, w in times.values())
    verdict = "within" if worst < BUDGET_S else "OVER"
    rows.append("")
    rows.append(
        "First app load in this process (store scan and Overview; the store builder had already "
        f"imported the libraries): {first:.2f} s. "
        f"Slowest warm page: {worst:.2f} s ({verdict} the {BUDGET_S:.0f} s budget)."
    )
    return "\n".join(rows)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--classes", type=int, default=250)
    parser.add_argument("--rows", type=int, default=50_000)
    add_repeats(parser, help="warm runs per page (median reported)")
    parser.add_argument(
        "--browser", action="store_true", help="also time Debian Chromium via playwright"
    )
    add_write(parser, "update the Dashboard section of bench/RESULTS.md")
    args = parser.parse_args()

    import audits.tv  # noqa: F401 - the torchvision workaround before anything imports it
    from fixtures.synthetic_store import write_synthetic_store

    with tempfile.TemporaryDirectory(prefix="dash-bench-") as tmp:
        store = Path(tmp) / "store"
        t0 = time.perf_counter()
        write_synthetic_store(store, args.classes, args.rows)
        build = time.perf_counter() - t0
        print(
            f"store: {args.classes} classes x {args.rows:,} predictions, built in {build:.1f} s",
            file=sys.stderr,
        )
        first, times = time_apptest(store, args.repeats)
        browser = time_browser(store) if args.browser else None
    result = table(first, times, browser)
    print(result)
    if args.write:
        text = (
            f"{SECTION}\n\n"
            f"`python bench/dashboard.py{' --browser' if args.browser else ''} --write` on "
            f"{time.strftime('%Y-%m-%d')}: every page of the Streamlit dashboard on a synthetic "
            f"store of {args.classes} classes x {args.rows:,} predictions (plus a previous "
            "version, integrity and explain results, a drift run and a comparison). Times are the "
            "page script's run in Streamlit's AppTest (server side, what a user waits for before "
            "the page can draw)"
            + (
                "; the browser column is Debian Chromium from the sidebar click to the page's "
                "last element drawn"
                if browser
                else ""
            )
            + f". Warm = median of {args.repeats} reruns with cached reads.\n\n"
            f"Machine: {machine()} (shared with other jobs while measured).\n\n{result}\n"
        )
        print(f"wrote {write_section(SECTION, text)}", file=sys.stderr)


if __name__ == "__main__":
    main()
