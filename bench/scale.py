"""Dashboard pages and exports on a 1,000,000-prediction, 250-class run (issue 16 item 4).

Builds (once, cached under ``bench/out/scale-<rows>``) a synthetic store with
``python -m fixtures.synthetic_store --extras``: the main run (probabilities float16
[rows, 250], embeddings float16 [rows, 64] — d = 64 keeps the synthetic store small; no page
or export reads the embeddings), its previous version, integrity and explain results, a drift
run and the comparison. Then measures, each in its own process where memory is reported:

* the store build: wall seconds and peak RSS of the builder;
* every dashboard page in Debian Chromium (playwright) against a real ``streamlit run``
  server: the second click on each page (warm, caches filled), from the sidebar click to the
  page's footer drawn and its images loaded; the server's peak RSS (``VmHWM``);
* every page's script in Streamlit's AppTest, cold (caches cleared) and warm (``--apptest``);
* every export format in a fresh ``python -m audits export`` process: wall seconds and peak RSS.

Run from the repository root on a quiet machine:
``python bench/scale.py [--rows 1000000] [--apptest] [--write]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO,
    add_write,
    dashboard_page,
    load_average,
    make_parser,
    open_when_up,
    write_section,
)
from bench.dashboard import BUDGET_S, PAGES, machine  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Page

SECTION = "## Scale: a 1,000,000-prediction run (issue 16)"
FORMATS = ("json", "csv", "html", "pdf")
EXPORT_BUDGET_S = 60.0


def child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MiB, stdout) of one child process run under GNU time; fails
    loudly on a non-zero exit. CPU seconds say what a loaded machine's wall time cannot."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    # RUSAGE_CHILDREN's peak is a maximum over all children, so each measured command runs
    # under GNU time, whose report gives that one child's peak RSS and CPU seconds.
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}\n{err[-2000:]}")
    return wall, _from_time(err, "User time") + _from_time(err, "System time"), _peak(err), out


def timed_cmd(args: list[str]) -> list[str]:
    """``args`` under GNU time (-v), whose report gives the child's own peak RSS."""
    gnu_time = shutil.which("time") or "/usr/bin/time"
    return [gnu_time, "-v", *args]


def _from_time(stderr: str, field: str) -> float:
    """One number of GNU time's ``-v`` report (NaN when absent)."""
    for line in stderr.splitlines():
        if line.strip().startswith(field):
            return float(line.rsplit(":", 1)[1])
    return float("nan")


def _peak(stderr: str) -> float:
    return _from_time(stderr, "Maximum resident set size") / 1024.0


def build_store(store: Path, classes: int, rows: int) -> tuple[Path, tuple[float, float, float]]:
    """The cached store's main run, with the build's (wall s, CPU s, peak MiB); NaN when cached."""
    from audits.store import list_runs

    runs = [r for r in list_runs(store, kind="audit") if "prev" not in r.path.name]
    if runs:
        return runs[0].path, (float("nan"),) * 3
    args = [sys.executable, "-m", "fixtures.synthetic_store", "--extras"]
    args += ["--classes", str(classes), "--rows", str(rows), "--store", str(store)]
    wall, cpu, peak, out = child(timed_cmd(args))
    return Path(out.strip().splitlines()[-1]), (wall, cpu, peak)


def server_peak_mib(pid: int) -> float:
    """A running process's peak resident memory (``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def click_through(page: Page, url: str, pid: int) -> dict[str, tuple[float, float]]:
    """bench/dashboard.py's sidebar walk (twice; the second is timed), with the server's CPU
    seconds per page beside the wall time: on a loaded machine the CPU is the steadier figure."""
    open_when_up(page, url + "/")
    page.wait_for_selector(".ma-footer[data-page='overview']")
    out: dict[str, tuple[float, float]] = {}
    for rnd in range(2):
        for key, label in [*PAGES[1:], PAGES[0]]:
            t0, c0 = time.perf_counter(), process_cpu(pid)
            page.locator('[data-testid="stSidebarNav"]').get_by_text(label, exact=True).click()
            page.wait_for_selector(f".ma-footer[data-page='{key}']")
            page.wait_for_function("() => [...document.images].every(i => i.complete)")
            if rnd:
                out[key] = (time.perf_counter() - t0, process_cpu(pid) - c0)
    return out


def time_browser(store: Path) -> tuple[dict[str, tuple[float, float]], float]:
    """Warm (wall s, server CPU s) per page in Chromium, and the server's peak RSS (MiB)."""
    with dashboard_page(store, timeout_ms=600_000) as (page, url, proc):
        times = click_through(page, url, proc.pid)
        return times, server_peak_mib(proc.pid)


def time_exports(run: Path) -> dict[str, tuple[float, float, float]]:
    """(wall s, CPU s, peak MiB) of ``python -m audits export RUN --format F`` per format."""
    out: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="scale-export-") as tmp:
        for fmt in FORMATS:
            args = [sys.executable, "-m", "audits", "export", str(run), "--format", fmt]
            wall, cpu, peak, _ = child(timed_cmd([*args, "--out", str(Path(tmp) / fmt)]))
            out[fmt] = (wall, cpu, peak)
    return out


def report(
    rows: int,
    build: tuple[float, float, float],
    pages: dict[str, tuple[float, float]],
    server_peak: float,
    apptest: dict[str, tuple[float, float]] | None,
    exports: dict[str, tuple[float, float, float]],
) -> str:
    """The markdown tables: pages (browser warm, AppTest cold/warm), exports, memory."""
    nan = float("nan")
    lines = [
        "| page | browser, warm | server CPU |"
        + (" AppTest cold | AppTest warm |" if apptest else "")
    ]
    lines.append("| --- | ---: | ---: |" + (" ---: | ---: |" if apptest else ""))
    for key, label in PAGES:
        wall, cpu = pages.get(key, (nan, nan))
        row = f"| {label} | {wall:.2f} s | {cpu:.2f} s |"
        if apptest:
            cold, warm = apptest.get(key, (float("nan"), float("nan")))
            row += f" {cold:.2f} s | {warm:.2f} s |"
        lines.append(row)
    worst = max(w for w, _ in pages.values()) if pages else nan
    lines += [
        "",
        f"Slowest warm page: {worst:.2f} s ({'within' if worst < BUDGET_S else 'OVER'} the "
        f"{BUDGET_S:.0f} s budget); the server's peak RSS: {server_peak:,.0f} MiB.",
        "",
        "| export | wall | CPU | peak RSS |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {f} | {w:.1f} s | {c:.1f} s | {m:,.0f} MiB |" for f, (w, c, m) in exports.items()]
    slowest = max((w for w, _, _ in exports.values()), default=float("nan"))
    verdict = "within" if slowest < EXPORT_BUDGET_S else "OVER or not measured:"
    lines += [
        "",
        f"Slowest export: {slowest:.1f} s ({verdict} the {EXPORT_BUDGET_S:.0f} s budget). Store "
        f"of {rows:,} predictions built in {build[0]:.1f} s ({build[1]:.1f} s CPU), builder peak "
        f"{build[2]:,.0f} MiB "
        "(NaN: reused from bench/out).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=250)
    parser.add_argument("--store", type=Path, default=None, help="default bench/out/scale-<rows>")
    parser.add_argument("--apptest", action="store_true", help="also time pages in AppTest")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    parser.add_argument("--no-exports", action="store_true", help="skip the export timings")
    add_write(parser, "update the Scale section of bench/RESULTS.md")
    args = parser.parse_args()
    store = args.store or REPO / "bench" / "out" / f"scale-{args.rows}"
    load0 = load_average()
    run, build = build_store(store, args.classes, args.rows)
    print(f"run {run}: build (wall s, CPU s, peak MiB) {build}", file=sys.stderr)
    exports = {} if args.no_exports else time_exports(run)
    print(f"exports: {exports}", file=sys.stderr)
    pages, server_peak = ({}, float("nan")) if args.no_browser else time_browser(store)
    apptest = None
    if args.apptest:
        from bench.dashboard import time_apptest

        apptest = time_apptest(store, 1)[1]
    result = report(args.rows, build, pages, server_peak, apptest, exports)
    load = f"load average {load0:.1f} at the start, {load_average():.1f} at the end"
    print(f"Machine: {machine()}; {load}.\n\n{result}")
    if args.write:
        text = (
            f"{SECTION}\n\n`python bench/scale.py --write` on {time.strftime('%Y-%m-%d')}: "
            f"{args.rows:,} predictions x {args.classes} classes (synthetic). Machine: "
            f"{machine()}; {load}.\n\n{result}\n"
        )
        print(f"wrote {write_section(SECTION, text)}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
