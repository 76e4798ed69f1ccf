"""The history of a model family at 500 runs: ``python -m audits history`` and the History page.

Writes (once per folder) ``--runs`` synthetic audits of one family with ``--comparisons``
stored comparisons between consecutive versions and a few audits on a corrected child set
(``fixtures.synthetic_history``), then times:

* the command as a whole process (``python -m audits history NAME``, the Rich table and
  ``--json``; ``python -m audits list``), wall and CPU seconds (median of ``--repeats``);
* the same work in-process: the light listing (``audits.history_records``), the history and
  the JSON payload;
* with ``--browser``: the History page warm in Debian Chromium (playwright), from navigation
  to the recall heatmap drawn (the first load fills the caches; the next ones are timed);
* with ``--dashboard``: the dashboard's cold start in Chromium (server start to the Overview
  drawn) and every sidebar page, on its first visit and warm.

The audits written here carry the listing sidecar (``.listing.json``, written at run creation);
a store written before it (or copied without its files' times) is read from ``audit.json``.
Budgets (issue 17): ``history`` < 2 s, page < 3 s warm, dashboard cold start < 10 s. Run from
the repository root: ``python bench/history.py --classes 20 --browser`` and
``python bench/history.py --classes 250 --dashboard``.
The results are printed as a Markdown table (and written to ``bench/out/history-<classes>.md``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO,
    Stopwatch,
    add_repeats,
    dashboard_page,
    load_average,
    make_parser,
    open_when_up,
)
from bench.dashboard import machine  # noqa: E402

FAMILY = "synthetic-cars"
CLI_BUDGET_S, PAGE_BUDGET_S, COLD_BUDGET_S = 2.0, 3.0, 10.0
HEATMAP = ".js-plotly-plot .heatmaplayer image"


def ensure_store(store: Path, runs: int, classes: int, comparisons: int) -> float:
    """Write the store unless a complete one is there; seconds spent writing (0 when reused)."""
    from fixtures.synthetic_history import write_history

    done = store / ".complete"
    if done.is_file() and done.read_text() == f"{runs} {classes} {comparisons}":
        return 0.0
    if store.exists():
        raise SystemExit(f"{store}: exists but is not a finished store of this size; remove it")
    started = time.perf_counter()
    write_history(store, runs, classes, 1000, comparisons, n_child=5)
    done.write_text(f"{runs} {classes} {comparisons}")  # hidden: the store ignores it
    return time.perf_counter() - started


def time_process(
    store: Path, repeats: int, *extra: str, command: str = "history"
) -> tuple[float, float]:
    """Median wall and CPU seconds of ``python -m audits history`` (or ``list``) as a fresh
    process."""
    walls, cpus = [], []
    args = [FAMILY] if command == "history" else []
    cmd = [sys.executable, "-m", "audits", command, *args, "--store", str(store), *extra]
    env = dict(os.environ, COLUMNS="160")
    for _ in range(repeats):
        with Stopwatch(children=True) as sw:
            subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
        walls.append(sw.wall)
        cpus.append(sw.cpu)
    return statistics.median(walls), statistics.median(cpus)


def time_in_process(store: Path, repeats: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each step, in this process."""
    from auditapp.json_output import dumps
    from audits.history import build_history, payload
    from audits.history_records import read_records

    steps: dict[str, list[tuple[float, float]]] = {"read": [], "build": [], "json": []}
    for _ in range(repeats):
        with Stopwatch() as sw:
            found = read_records(store)
        steps["read"].append((sw.wall, sw.cpu))
        with Stopwatch() as sw:
            h = build_history(found.audits, found.comparisons, FAMILY, store=str(store))
        steps["build"].append((sw.wall, sw.cpu))
        with Stopwatch() as sw:
            dumps(payload(h, str(store)))
        steps["json"].append((sw.wall, sw.cpu))
    return {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in steps.items()
    }


def time_apptest(store: Path, repeats: int) -> tuple[float, float]:
    """The page script's warm run in Streamlit's AppTest (server side): median wall and CPU s."""
    from streamlit.testing.v1 import AppTest

    os.environ["AUDIT_STORE"] = str(store)
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=1800).run()
    at.switch_page("dashboard/pages/history.py").run()  # cold: fills the caches
    walls, cpus = [], []
    for _ in range(repeats):
        with Stopwatch() as sw:
            at.run()
        walls.append(sw.wall)
        cpus.append(sw.cpu)
    return statistics.median(walls), statistics.median(cpus)


def time_page(store: Path, repeats: int) -> dict[str, list[float]]:
    """Warm seconds to the History page's heatmap drawn in Chromium: after a click in the
    sidebar (from Overview), and after a full navigation to its address (a new session)."""
    from audits.history_records import read_records

    newest = max(read_records(store).audits, key=lambda a: (a.created, a.run_id)).run_id
    out: dict[str, list[float]] = {"click": [], "navigation": [], "overview": []}
    with dashboard_page(store, timeout_ms=300_000) as (page, base, _proc):
        open_when_up(page, f"{base}/history?run={newest}")
        # Cold: fills the caches (the first visit of the History page reads every record).
        page.wait_for_selector(HEATMAP, state="visible", timeout=1_800_000)
        nav = page.locator('[data-testid="stSidebarNav"]')
        for _ in range(repeats):
            started = time.perf_counter()
            nav.get_by_text("Overview", exact=True).click()
            page.wait_for_selector(".ma-footer[data-page='overview']")
            out["overview"].append(time.perf_counter() - started)  # a control: load
            started = time.perf_counter()
            nav.get_by_text("History", exact=True).click()
            page.wait_for_selector(HEATMAP, state="visible")
            out["click"].append(time.perf_counter() - started)
        for _ in range(repeats):
            started = time.perf_counter()
            page.goto(f"{base}/history?run={newest}")
            page.wait_for_selector(HEATMAP, state="visible")
            out["navigation"].append(time.perf_counter() - started)
        page.wait_for_selector(".ma-footer[data-page='history']")
        shot = REPO / "bench" / "out" / "screenshots" / f"history-{store.name}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    return out


def footer_key(title: str) -> str:
    """The ``data-page`` of a page's footer (``dashboard.page.run_page``: its title's first word)."""
    return title.split()[0].lower()


def time_dashboard(store: Path, repeats: int) -> dict[str, list[float]]:
    """The dashboard on ``store`` in Chromium: ``cold`` is from starting the server to the
    Overview drawn (the sidebar's run pickers and related runs are read then); then every
    page of the sidebar by a click, to its footer drawn: ``first:<page>`` on its first visit,
    ``warm:<page>`` on the ``repeats`` rounds after."""
    from dashboard.app import SECTIONS

    titles = [title for items in SECTIONS.values() for _, title, _ in items]
    titles = titles[1:] + titles[:1]  # start away from the Overview, end on it
    out: dict[str, list[float]] = {"cold": []}
    started = time.perf_counter()
    with dashboard_page(store, timeout_ms=1_800_000) as (page, base, _proc):
        open_when_up(page, base)
        page.wait_for_selector(".ma-footer[data-page='overview']")
        out["cold"].append(time.perf_counter() - started)
        nav = page.locator('[data-testid="stSidebarNav"]')
        for round_ in range(repeats + 1):
            for title in titles:
                started = time.perf_counter()
                nav.get_by_text(title, exact=True).click()
                page.wait_for_selector(f".ma-footer[data-page='{footer_key(title)}']")
                key = f"{'warm' if round_ else 'first'}:{title}"
                out.setdefault(key, []).append(time.perf_counter() - started)
    return out


def dashboard_lines(times: dict[str, list[float]]) -> list[str]:
    """The dashboard's rows of the results table."""
    lines = [
        f"| dashboard cold start in Chromium, server start → Overview drawn | "
        f"{times['cold'][0]:.2f} | | < {COLD_BUDGET_S:g} |"
    ]
    for key, values in times.items():
        if key == "cold":
            continue
        when, title = key.split(":", 1)
        budget = f"< {PAGE_BUDGET_S:g}" if when == "warm" else ""
        lines.append(
            f"| {title} page, sidebar click → footer drawn, {when} | "
            f"{statistics.median(values):.2f} (max {max(values):.2f}) | | {budget} |"
        )
    return lines


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--comparisons", type=int, default=200)
    parser.add_argument("--store", type=Path, help="default: bench/out/history-<classes>")
    parser.add_argument("--browser", action="store_true", help="also time the page in Chromium")
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="also time the dashboard's cold start and every page switch in Chromium",
    )
    add_repeats(parser, 3)
    args = parser.parse_args()
    store = args.store or REPO / "bench" / "out" / f"history-{args.classes}"
    written = ensure_store(store, args.runs, args.classes, args.comparisons)
    load = load_average()
    table_wall, table_cpu = time_process(store, args.repeats)
    json_wall, json_cpu = time_process(store, args.repeats, "--json")
    list_wall, list_cpu = time_process(store, args.repeats, command="list")
    steps = time_in_process(store, args.repeats)
    print(
        f"history: {table_wall:.2f} s (CPU {table_cpu:.2f}), --json: {json_wall:.2f} s", flush=True
    )
    server_wall, server_cpu = time_apptest(store, args.repeats)
    print(f"page script warm: {server_wall:.2f} s (CPU {server_cpu:.2f})", flush=True)
    page = time_page(store, args.repeats) if args.browser else {}
    dashboard = time_dashboard(store, args.repeats) if args.dashboard else {}
    lines = [
        f"### History of a model family: {args.runs} runs, {args.classes} classes, "
        f"{args.comparisons} comparisons",
        "",
        f"Machine: {machine()}; 1-minute load average {load:.1f} when timing started.",
        f"Store written in {written:.0f} s" if written else "Store reused.",
        "",
        "| what | wall (s, median) | CPU (s) | budget |",
        "| --- | --- | --- | --- |",
        f"| `history` process, Rich table | {table_wall:.2f} | {table_cpu:.2f} | < {CLI_BUDGET_S:g} |",
        f"| `history --json` process | {json_wall:.2f} | {json_cpu:.2f} | < {CLI_BUDGET_S:g} |",
        f"| `list` process | {list_wall:.2f} | {list_cpu:.2f} | |",
        *(f"| in-process: {k} | {w:.3f} | {c:.3f} | |" for k, (w, c) in steps.items()),
    ]
    lines.append(
        f"| History page script, warm (AppTest, server side) | {server_wall:.2f} | "
        f"{server_cpu:.2f} | < {PAGE_BUDGET_S:g} |"
    )
    for how, what in (
        ("click", "History page warm in Chromium, sidebar click → heatmap drawn"),
        ("navigation", "History page warm in Chromium, full navigation to its URL → heatmap drawn"),
        ("overview", "control: Overview page warm in Chromium, sidebar click → footer drawn"),
    ):
        if page.get(how):
            lines.append(
                f"| {what} | "
                f"{statistics.median(page[how]):.2f} (max {max(page[how]):.2f}) | | "
                f"< {PAGE_BUDGET_S:g} |"
            )
    if dashboard:
        lines += dashboard_lines(dashboard)
    text = "\n".join(lines) + "\n"
    out = REPO / "bench" / "out" / f"history-{args.classes}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
