"""Regenerate the README's dashboard screenshots and the PDF examples from the demo store.

Run after ``python -m audits demo``: starts the dashboard on the store, opens each page for the
older demo version (1.0.0, the one with the colour shortcut) in headless Chromium, and renders
pages of its PDF (``reports.page_images``). Writes ``dashboard/screenshots/*.png`` and
``reports/examples/*.png``.

    python scripts/screenshots.py [--store audit-store]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
#: (URL path, footer key, tab to open, file name): the README shows these, for run 1.0.0.
PAGES = [
    ("", "overview", None, "overview.png"),
    ("failures", "failures", None, "failures.png"),
    ("drift", "drift", None, "drift.png"),
    ("confusion", "confusion", None, "confusion.png"),
    ("integrity", "integrity", "Suspect labels", "integrity.png"),
    ("compare", "compare", None, "compare.png"),
    ("review", "review", None, "review.png"),
    ("history", "history", None, "history.png"),
    ("embeddings", "embedding", None, "embeddings.png"),
]


def _review_setup(tab) -> None:
    """The Review page as an expert sees it: a name typed, the targa -> carrera queue chosen."""
    box = tab.get_by_role("textbox", name="Reviewer")
    box.fill("demo-expert")
    box.press("Enter")
    tab.wait_for_timeout(1500)
    tab.locator('[data-testid="stSelectbox"]', has_text="Queue").first.click()
    tab.keyboard.type("targa → carrera")
    tab.locator('[role="option"]', has_text="targa → carrera").first.click()
    tab.locator(".rv-card").first.wait_for()
    tab.wait_for_timeout(2500)


#: Pages that need a step before the shot (footer key -> the step).
SETUP = {"review": _review_setup}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _older_audit(store: Path) -> str:
    from audits.store import list_runs

    audits = [r for r in list_runs(store) if r.kind == "audit"]
    older = [r for r in audits if r.meta.get("model", {}).get("version") == "1.0.0"]
    return (older or audits)[-1].run_id


def dashboard_shots(store: Path, run_id: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = dict(os.environ, AUDIT_STORE=str(store))
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless",
           "true", "--server.port", str(port), "--browser.gatherUsageStats", "false"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            for path, key, open_tab, name in PAGES:
                tab = browser.new_page(viewport={"width": 1280, "height": 1000})
                tab.set_default_timeout(120_000)
                tab.goto(f"{url}/{path}?run={run_id}")
                tab.wait_for_selector(f".ma-footer[data-page='{key}']")
                if open_tab:
                    tab.get_by_role("tab", name=open_tab).click()
                if key in SETUP:
                    SETUP[key](tab)
                tab.wait_for_function("() => [...document.images].every(i => i.complete)")
                tab.wait_for_timeout(1500)
                tab.screenshot(path=str(out / name))
                tab.close()
                print(out / name)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def pdf_pages(store: Path, run_id: str, out: Path) -> None:
    from reports.page_images import examples

    for page in examples(store / run_id, out):
        print(page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="audit-store")
    parser.add_argument("--no-pdf", action="store_true", help="only the dashboard screenshots")
    args = parser.parse_args()
    store = Path(args.store).resolve()
    run_id = _older_audit(store)
    dashboard_shots(store, run_id, REPO / "dashboard" / "screenshots")
    if not args.no_pdf:
        pdf_pages(store, run_id, REPO / "reports" / "examples")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
